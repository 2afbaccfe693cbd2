"""Read-your-writes across replicas.

A publisher confirm says the broker holds an `index.changed`, not that the replicas have dropped their
cached pages: a client told 201 (or that a delete is done) could still be served the old page by a replica
a few milliseconds behind. So an `index.changed` is announced, then awaited until every live index-api
and web replica says it has applied it (`index.applied`, sent to the announcer's own queue), and only then
does the upload get its verdict or the delete its answer. A `token.revoked` or `access.changed` is awaited
the same way from every live index-api, upload-api and web replica (all cache credentials), so a revoked
token is refused everywhere, and its web sessions are over, by the time `registry-admin token revoke`
returns; a `policy.changed` or `package.status_changed` from every live index-api, upload-api and web
replica (they all read the policies), so the change shows everywhere once its PUT or form returns; a
`hooks.changed` from every live metadata-worker (it caches the hooks), so a new hook hears of everything done
after its POST returned.

An upload's `index.changed` is awaited by the uploading upload-api replica itself rather than by the
metadata-worker that announces it (`Announcer.publish_for`): the answers go to the upload-api's own queue,
and the worker's verdict names the announcement and the replicas to wait for (`Awaited`), so the verdict
travels while the replicas apply the change instead of after (`AnswerBook` matches them up). The 201 still
waits for every one of them.

Liveness: each replica records a heartbeat in MongoDB (`replicas`, with its role) once it consumes events,
renews it every HEARTBEAT_S and removes it when it stops; one that stops renewing is no longer waited for
after STALE_S. The wait is bounded (`INDEX_APPLIED_TIMEOUT`): a replica that is alive but does not answer
is logged and passed over, so a stuck replica slows announcements down but never blocks them.

Announcers look the live replicas up in MongoDB as they publish, but for the metadata-worker's, which
announce every upload: it keeps a `ReplicaView`, read from MongoDB at start and every HEARTBEAT_S, and
told at once of each replica that joins or leaves (`replica.joined` / `replica.left`, which `heartbeat`
publishes after the first beat and after the last), so an upload's announcement costs no lookup.
"""
from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

import aio_pika
import structlog
from aio_pika.abc import AbstractIncomingMessage

from .adapters.amqp import Broker
from .adapters.mongo import Mongo
from .events import (
    AccessChanged,
    Event,
    HooksChanged,
    IndexApplied,
    IndexChanged,
    PackageStatusChanged,
    PolicyChanged,
    ReplicaJoined,
    ReplicaLeft,
    TokenRevoked,
    parse_event,
)
from .logging import get_logger
from .tasks import running
from .topology import REPLICA_VIEW_BINDINGS

log = get_logger()

ROLE = "index-api"
UPLOAD_ROLE = "upload-api"
WEB_ROLE = "web"  # its sessions end when their token is revoked; its package pages when they change
WORKER_ROLE = "metadata-worker"  # it caches each scope's webhooks
HEARTBEAT_S = 2.0
STALE_S = 3 * HEARTBEAT_S
# Whose answers an announced event waits for: the replicas whose caches it changes.
AWAITED_ROLES: dict[type[Event], tuple[str, ...]] = {
    IndexChanged: (ROLE, WEB_ROLE),  # the web interface caches package pages too
    TokenRevoked: (ROLE, UPLOAD_ROLE, WEB_ROLE),
    AccessChanged: (ROLE, UPLOAD_ROLE, WEB_ROLE),
    PolicyChanged: (ROLE, UPLOAD_ROLE, WEB_ROLE),  # the web's badges read the policies and statuses too
    PackageStatusChanged: (ROLE, UPLOAD_ROLE, WEB_ROLE),
    HooksChanged: (WORKER_ROLE,),
}
# Rare administrative changes whose caller must find them applied everywhere (SPEC §9 "by the time its PUT
# returns"): worth a longer bounded wait than an upload's INDEX_APPLIED_TIMEOUT when replicas are busy.
MIN_WAIT_S: dict[type[Event], float] = {PolicyChanged: 15.0, PackageStatusChanged: 15.0}
_VIEWED_ROLES = sorted({role for roles in AWAITED_ROLES.values() for role in roles})


class ReplicaRegistry:
    """The replicas that are consuming events now, as their heartbeats in MongoDB say."""

    def __init__(self, mongo: Mongo, stale_s: float = STALE_S) -> None:
        self.collection = mongo.replicas
        self.stale_s = stale_s

    async def beat(self, replica: str, role: str = ROLE) -> None:
        await self.collection.update_one({"_id": replica}, {"$set": {"role": role, "seen_at": datetime.now(UTC)}},
                                         upsert=True)

    async def leave(self, replica: str) -> None:
        await self.collection.delete_one({"_id": replica})

    async def live(self, roles: tuple[str, ...] = (ROLE,)) -> set[str]:
        return set(await self.seen(roles))

    async def seen(self, roles: Iterable[str]) -> dict[str, tuple[str, datetime]]:
        """The replicas of `roles` that beat within STALE_S: id -> (role, last beat)."""
        roles = list(roles)
        since = datetime.now(UTC) - timedelta(seconds=self.stale_s)
        query = {"role": roles[0] if len(roles) == 1 else {"$in": roles}, "seen_at": {"$gt": since}}
        return {doc["_id"]: (doc["role"], doc["seen_at"]) async for doc in self.collection.find(query)}


@contextlib.asynccontextmanager
async def heartbeat(registry: ReplicaRegistry, replica: str, every: float = HEARTBEAT_S,
                    role: str = ROLE, broker: Broker | None = None) -> AsyncIterator[None]:
    """Beat now and every `every` seconds while the block runs (the replica already consumes its queue);
    leave the registry afterwards. A failed beat is logged; the next one may succeed. With `broker`, the
    first beat and the leaving are published too (`replica.joined`, `replica.left`: `ReplicaView`)."""
    await registry.beat(replica, role)
    if broker is not None:
        await _tell(broker, ReplicaJoined(replica=replica, role=role))

    async def renew() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await registry.beat(replica, role)
            except Exception as exc:  # noqa: BLE001 - MongoDB away: announcers stop waiting for us
                log.warning("replica_heartbeat_failed", replica=replica, error=type(exc).__name__)

    try:
        async with running(renew()):
            yield
    finally:
        with contextlib.suppress(Exception):
            await registry.leave(replica)
        if broker is not None:
            await _tell(broker, ReplicaLeft(replica=replica, role=role))


def replica_name(replica_id: str, role: str) -> str:
    """This process's name among the replicas: unique even where REPLICA_ID is unset or shared (tests start
    several in one process)."""
    return f"{replica_id or role}-{uuid.uuid4().hex[:8]}"


@contextlib.asynccontextmanager
async def serving_as_replica(broker: Broker, registry: ReplicaRegistry, replica_id: str, role: str,
                             bindings: Sequence[str], handle: Callable[[Event], None],
                             forget: Callable[[], None]) -> AsyncIterator[str]:
    """A replica whose caches events keep true: its own queue subscribed first (each event `handle`d, then
    answered with `index.applied`), everything it keeps `forget`ten after a reconnection to the broker
    (events may have been missed), then its heartbeats while the block runs. Yields its name."""
    replica = replica_name(replica_id, role)
    queue = await broker.declare_private_queue(bindings)
    await broker.consume(queue, partial(consume_replica_event, handle=handle,
                                        applied=partial(acknowledge, broker, replica=replica)))
    if broker.connection is not None:
        broker.connection.reconnect_callbacks.add(lambda _connection: forget())
    async with heartbeat(registry, replica, role=role, broker=broker):
        yield replica


async def _tell(broker: Broker, event: Event) -> None:
    """Best effort: a view that misses it catches up from MongoDB within HEARTBEAT_S (a replica that
    left: within STALE_S, as it would after a crash)."""
    try:
        await broker.publish(event, None)
    except Exception as exc:  # noqa: BLE001
        log.warning("replica_change_not_published", kind=event.kind, error=type(exc).__name__)


class ReplicaView:
    """The live replicas as this process last heard, for announcing without a lookup.

    Read from MongoDB when started and every `every` seconds; a `replica.joined` adds a replica at once, a
    `replica.left` removes it at once (and a read from before it, still holding its last beat, does not
    bring it back). A replica found by neither is dropped once its last beat is STALE_S old, as a lookup
    would drop it. Start it with `running(broker)`: its queue is subscribed before the first read, so no
    replica joins unseen in between."""

    def __init__(self, registry: ReplicaRegistry, every: float = HEARTBEAT_S) -> None:
        self.registry = registry
        self.every = every
        self._seen: dict[str, tuple[str, datetime]] = {}
        self._left: dict[str, datetime] = {}  # replica -> when it said it left
        self._changed = asyncio.Event()  # set (and replaced) at each change

    def live(self, roles: Iterable[str]) -> set[str]:
        since = datetime.now(UTC) - timedelta(seconds=self.registry.stale_s)
        wanted = set(roles)
        return {replica for replica, (role, at) in self._seen.items() if role in wanted and at > since}

    async def wait_for(self, check: Callable[[ReplicaView], bool]) -> None:
        """Return once `check(self)` holds (it is tried again after each change)."""
        while not check(self):
            await self._changed.wait()

    async def refresh(self) -> None:
        found = await self.registry.seen(_VIEWED_ROLES)
        since = datetime.now(UTC) - timedelta(seconds=self.registry.stale_s)
        self._left = {replica: at for replica, at in self._left.items() if at > since}
        self._seen = {replica: seen for replica, seen in self._seen.items() if seen[1] > since}
        for replica, (role, at) in found.items():
            if replica in self._left and at <= self._left[replica]:
                continue  # its last beat, read before it left
            known = self._seen.get(replica)
            self._seen[replica] = (role, max(at, known[1]) if known is not None else at)
        self._notify()

    def apply(self, event: Event) -> None:
        if isinstance(event, ReplicaJoined):
            self._left.pop(event.replica, None)
            self._seen[event.replica] = (event.role, datetime.now(UTC))
        elif isinstance(event, ReplicaLeft):
            self._seen.pop(event.replica, None)
            self._left[event.replica] = datetime.now(UTC)
        self._notify()

    @contextlib.asynccontextmanager
    async def running(self, broker: Broker) -> AsyncIterator[ReplicaView]:
        queue = await broker.declare_private_queue(REPLICA_VIEW_BINDINGS)
        await broker.consume(queue, partial(consume_replica_event, handle=self.apply, applied=None))
        await self.refresh()

        async def refresh_often() -> None:
            while True:
                await asyncio.sleep(self.every)
                try:
                    await self.refresh()
                except Exception as exc:  # noqa: BLE001 - MongoDB away: the view keeps what it heard
                    log.warning("replica_view_refresh_failed", error=type(exc).__name__)

        async with running(refresh_often()):
            yield self

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


async def acknowledge(broker: Broker, message: AbstractIncomingMessage, replica: str) -> None:
    """A replica's answer to an applied `index.changed` that asked for one (it carries `reply_to`)."""
    if not message.reply_to or not message.message_id:
        return
    ack = IndexApplied(message_id=message.message_id, replica=replica)
    await broker.channel.default_exchange.publish(
        aio_pika.Message(body=ack.model_dump_json().encode(), content_type="application/json", type=ack.kind,
                         correlation_id=message.correlation_id),
        routing_key=message.reply_to, timeout=10)


@dataclass(frozen=True, slots=True)
class Awaited:
    """An announcement whose answers another process awaits: its message id and the live replicas to wait
    for (those that consumed events when it was published)."""

    message_id: str = ""
    replicas: tuple[str, ...] = ()


async def consume_replica_event(message: AbstractIncomingMessage, handle: Callable[[Event], None],
                                applied: Callable[[AbstractIncomingMessage], Awaitable[None]] | None) -> None:
    """One event on a replica's private queue (cache invalidation): acked once `handle` has applied it, with
    its correlation id bound to the log lines; an unreadable one is logged and dropped (nothing to retry).
    Then the answer its publisher may await (`applied`, e.g. `acknowledge`), best effort: the publisher's
    wait is bounded, and the caches are dropped either way."""
    async with message.process(requeue=False, ignore_processed=True):
        context = {"correlation_id": message.correlation_id} if message.correlation_id else {}
        with structlog.contextvars.bound_contextvars(**context):
            try:
                event = parse_event(message.type, message.body)
            except ValueError as exc:
                log.warning("event_unreadable", type=message.type, error=str(exc)[:200])
                return
            handle(event)
            if applied is not None:
                try:
                    await applied(message)
                except Exception as exc:  # noqa: BLE001 - see above
                    log.warning("index_applied_not_sent", error=type(exc).__name__)


class Announcer:
    """Publishes events; one that changes replicas' caches (AWAITED_ROLES) returns once every live replica
    of those roles has applied it."""

    def __init__(self, broker: Broker, registry: ReplicaRegistry, timeout: float,
                 view: ReplicaView | None = None) -> None:
        self.broker = broker
        self.registry = registry
        self.timeout = timeout
        self.view = view  # whom `publish_for` names, without a lookup (None: looked up in MongoDB)
        self.reply_to = ""
        self._waiting: dict[str, _Wait] = {}

    async def start(self) -> None:
        """This process's answer queue (exclusive, deleted with the connection)."""
        queue = await self.broker.declare_private_queue([])
        self.reply_to = queue.name
        await queue.consume(self._on_answer, no_ack=True)

    async def publish(self, event: Event, correlation_id: str | None, routing_key: str | None = None) -> None:
        roles = AWAITED_ROLES.get(type(event))
        if roles and self.reply_to:
            await self.announce(event, correlation_id, routing_key, roles,
                                wait_s=max(self.timeout, MIN_WAIT_S.get(type(event), 0.0)))
        else:
            await self.broker.publish(event, correlation_id, routing_key)

    async def announce(self, event: Event, correlation_id: str | None, routing_key: str | None = None,
                       roles: tuple[str, ...] = (ROLE,), wait_s: float | None = None) -> None:
        """Publish `event` and wait for every replica of `roles` that was live when it was published.

        The replicas are looked up while the event is on its way (one round trip less on the path), and
        answers that come before the lookup are kept. A replica registers only once it consumes events, so
        every replica found was subscribed by then, but for one that registered within the millisecond of
        the lookup itself: that one may not have received the event and is waited for in vain, up to
        `timeout` (logged), as a replica that stops answering is."""
        wait_s = self.timeout if wait_s is None else wait_s
        message_id = uuid.uuid4().hex
        wait = self._waiting[message_id] = _Wait(asyncio.get_running_loop().create_future())
        try:
            live, _ = await asyncio.gather(
                self.registry.live(roles),
                self.broker.publish(event, correlation_id, routing_key, message_id=message_id, reply_to=self.reply_to))
            wait.expect(live)
            if wait.pending:
                try:
                    await asyncio.wait_for(asyncio.shield(wait.done), wait_s)
                except TimeoutError:
                    log.warning("index_change_not_applied", kind=event.kind, replicas=sorted(wait.pending or ()),
                                timeout_s=wait_s)
        finally:
            self._waiting.pop(message_id, None)
            if not wait.done.done():
                wait.done.cancel()

    async def publish_for(self, event: Event, correlation_id: str | None, answers_to: str) -> Awaited:
        """Publish `event` (one of AWAITED_ROLES) with its answers addressed to the queue `answers_to`, whose
        process waits for them (an `AnswerBook`); return whom it must wait for. Does not wait itself.

        The replicas are this process's view's once the broker has the event (every replica it had heard
        of by then), or looked up while the event is on its way, as `announce` does."""
        message_id = uuid.uuid4().hex
        roles = AWAITED_ROLES[type(event)]
        publishing = self.broker.publish(event, correlation_id, message_id=message_id, reply_to=answers_to)
        if self.view is not None:
            await publishing
            live = self.view.live(roles)
        else:
            live, _ = await asyncio.gather(self.registry.live(roles), publishing)
        return Awaited(message_id=message_id, replicas=tuple(sorted(live)))

    async def _on_answer(self, message: AbstractIncomingMessage) -> None:
        try:
            answer = IndexApplied.model_validate_json(message.body)
        except ValueError:
            log.warning("index_applied_unreadable")
            return
        wait = self._waiting.get(answer.message_id)
        if wait is None:
            return  # a late answer, after the wait gave up
        wait.answered(answer.replica)


class _Wait:
    """The answers one announcement awaits; answers may come before the replicas to wait for are known."""

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.pending: set[str] | None = None  # None until the live replicas are known
        self._early: set[str] = set()

    def expect(self, replicas: set[str]) -> None:
        self.pending = replicas - self._early
        self._settle()

    def answered(self, replica: str) -> None:
        if self.pending is None:
            self._early.add(replica)
            return
        self.pending.discard(replica)
        self._settle()

    def _settle(self) -> None:
        if self.pending is not None and not self.pending and not self.done.done():
            self.done.set_result(None)


class AnswerBook:
    """The `index.applied` answers that reach a process's queue for announcements made on its behalf
    (`Announcer.publish_for`), matched with whom to wait for once that is known (the answers usually come
    first). Bounded: the waits of the `max_waits` most recent announcements are kept, so answers to one whose
    waiter gave up (or never came) do not pile up."""

    def __init__(self, max_waits: int = 10_000) -> None:
        self.max_waits = max_waits
        self._waits: OrderedDict[str, _Wait] = OrderedDict()

    def answered(self, answer: IndexApplied) -> None:
        self._wait(answer.message_id).answered(answer.replica)

    async def wait(self, awaited: Awaited, bound_s: float) -> list[str]:
        """Return once every replica of `awaited` has answered, or after `bound_s` seconds: then the replicas
        that did not answer (logged by the caller), as `Announcer.announce` passes over a silent one."""
        if not awaited.replicas:
            return []
        wait = self._wait(awaited.message_id)
        wait.expect(set(awaited.replicas))
        try:
            if wait.pending:
                await asyncio.wait_for(asyncio.shield(wait.done), bound_s)
            return []
        except TimeoutError:
            return sorted(wait.pending or ())
        finally:
            self._waits.pop(awaited.message_id, None)
            if not wait.done.done():
                wait.done.cancel()

    def _wait(self, message_id: str) -> _Wait:
        wait = self._waits.get(message_id)
        if wait is None:
            wait = self._waits[message_id] = _Wait(asyncio.get_running_loop().create_future())
            while len(self._waits) > self.max_waits:
                _, oldest = self._waits.popitem(last=False)
                if not oldest.done.done():
                    oldest.done.cancel()
        return wait

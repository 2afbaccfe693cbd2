#!/usr/bin/env python3
"""Fault run: no upload is ever stuck or lost (issue 12). Not a test; bounded and self-stopping.

    .venv/bin/python benchmarks/fault_run.py [--uploads 400] [--bodies 2000] [--archives 1000] [--seed N]

Starts its own registry exactly as the e2e tests do (nx-27017 and SeaweedFS on free loopback ports, the
five services and the nginx gateway through deploy/local/stack.py, RabbitMQ from AMQP_URL under an
exchange of its own), then:

1. dependencies: a stream of valid uploads (twine's form, a few concurrent clients) while nx-27017 and
   SeaweedFS are each stopped (SIGTERM) and killed (SIGKILL) in turn, down a few seconds, and started
   again on the same ports and data. Then every upload answered 201/202 must become installable (listed
   on its simple page, downloadable with its sha256), and every other one must succeed when retried
   (honouring Retry-After, a bounded number of times).
2. malformed bodies: fuzzed multipart bodies sent raw on a socket to the gateway's upload URL. No 5xx,
   every answer a 4xx in GitLab's JSON shape (or no answer where we hung up ourselves), nothing left in
   the `distributions` collection.
3. mutated archives: damaged wheels and sdists with a correct form and digest. 201 (then installable:
   served with its sha256, and bytes an installer takes, a wheel's members matching its RECORD) or 400,
   never 5xx, never a 202 that does not resolve; nothing dead-lettered; every refused filename free (the
   valid original uploads under it).

Prints one JSON summary (counts per phase, violations with what reproduces them) and exits 1 if any
invariant failed. Everything it started is stopped on exit, on failure and on Ctrl-C.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
from pymongo import MongoClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from fault_inputs import (  # noqa: E402  (benchmarks/ is not a package)
    ABORT_KINDS,
    ARCHIVE_KINDS,
    BODY_KINDS,
    INVALID_BY_CONSTRUCTION,
    KINDS,
    MUST_REFUSE,
    Dist,
    applicable,
    install_problem,
    malformed_body,
    mutated_archive,
    twine_form,
    valid_dist,
)

from metadata_worker.app import retry_policy  # noqa: E402
from metadata_worker.settings import WorkerSettings  # noqa: E402
from registry_shared.topology import dead_letter_exchange, dead_letter_queue, retry_queue, worker_queue  # noqa: E402
from tests.support.servers import (  # noqa: E402
    VENV_BIN,
    BackingServices,
    RegistryStack,
    ServerProcess,
    launcher,
    settings_from_env,
    start_backing_services,
    unique_suffix,
    wait_until,
)
from tests.support.tenants import Tenant, private_project  # noqa: E402

JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"


# -- what the run records ------------------------------------------------------------------------------
@dataclass
class Report:
    violations: list[dict[str, Any]] = field(default_factory=list)
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)

    def violation(self, phase: str, check: str, **details: Any) -> None:
        self.violations.append({"phase": phase, "check": check, **details})

    def summary(self, config: dict[str, Any], shown: int) -> dict[str, Any]:
        return {"config": config, **self.phases,
                "violations_by_check": dict(Counter(f"{v['phase']}: {v['check']}" for v in self.violations)),
                "violations": self.violations[:shown], "violations_total": len(self.violations),
                "ok": not self.violations}


@dataclass
class Answer:
    status: int | str  # the HTTP status, or "error:<exception>" / "no_answer"
    body: str = ""
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in (201, 202)

    def short(self) -> dict[str, Any]:
        return {"status": self.status, "body": self.body[:300]}


def bounded(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def gitlab_shaped(body: str) -> bool:
    """GitLab's error bodies: a JSON object with `message` or `error`."""
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    return isinstance(doc, dict) and bool({"message", "error"} & set(doc))


# -- HTTP ----------------------------------------------------------------------------------------------
class Client:
    """Uploads with twine's form and reads simple pages, through the gateway."""

    def __init__(self, session: aiohttp.ClientSession, tenant: Tenant) -> None:
        self.session = session
        self.tenant = tenant
        self.auth = {"Authorization": "Basic " + base64.b64encode(f"__token__:{tenant.token}".encode()).decode()}

    async def upload(self, dist: Dist, data: bytes | None = None) -> Answer:
        data = dist.data if data is None else data
        form = aiohttp.FormData(quote_fields=False)
        for key, value in (("name", dist.name), ("version", dist.version), ("filetype", dist.filetype),
                           ("pyversion", "py3" if dist.kind == "wheel" else "source"),
                           ("metadata_version", "2.1"), ("sha256_digest", hashlib.sha256(data).hexdigest()),
                           (":action", "file_upload"), ("protocol_version", "1")):
            form.add_field(key, value)
        form.add_field("content", data, filename=dist.filename, content_type="application/octet-stream")
        try:
            async with self.session.post(self.tenant.upload_url, data=form, headers=self.auth) as response:
                return Answer(response.status, await response.text(errors="replace"),
                              response.headers.get("Retry-After"))
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return Answer(f"error:{type(exc).__name__}", bounded(str(exc)))

    async def installable(self, dist: Dist, sha256: str | None = None) -> bool:
        """Listed on its simple page with `sha256`, and downloadable with those bytes."""
        sha256 = sha256 or dist.sha256
        page_url = f"{self.tenant.upload_url}/simple/{dist.name}/"
        try:
            async with self.session.get(page_url, headers={**self.auth, "Accept": JSON_ACCEPT}) as page:
                if page.status != 200:
                    return False
                files = (await page.json(content_type=None)).get("files", [])
            entry = next((f for f in files if f.get("filename") == dist.filename), None)
            if entry is None or entry.get("hashes", {}).get("sha256") != sha256:
                return False
            async with self.session.get(entry["url"], headers=self.auth) as download:
                return download.status == 200 and hashlib.sha256(await download.read()).hexdigest() == sha256
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
            return False

    async def becomes_installable(self, dist: Dist, deadline: float, sha256: str | None = None) -> bool:
        while True:
            if await self.installable(dist, sha256):
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(1.0)


async def run_bounded(items: list[Any], worker: Callable[[Any], Awaitable[None]], concurrency: int) -> None:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(item: Any) -> None:
        async with semaphore:
            await worker(item)

    await asyncio.gather(*(one(item) for item in items))


# -- the world: backing services, the stack, tenants ---------------------------------------------------
def s3_serving(endpoint: str) -> bool:
    """SeaweedFS stores and returns an object again. (servers.s3_round_trip creates its probe bucket first,
    which answers 409 once the bucket exists, i.e. after a restart.)"""
    try:
        request = urllib.request.Request(f"{endpoint}/fault-run-probe", method="PUT")
        launcher.LOCAL_HTTP.open(request, timeout=5).close()
    except urllib.error.HTTPError as exc:
        if exc.code != 409:
            return False
    except OSError:
        return False
    return s3_object_round_trip(f"{endpoint}/fault-run-probe/probe")


def s3_object_round_trip(url: str) -> bool:
    try:
        for method, body in (("PUT", b"ok"), ("GET", None), ("DELETE", None)):
            with launcher.LOCAL_HTTP.open(urllib.request.Request(url, data=body, method=method), timeout=5) as answer:
                if method == "GET" and answer.read() != b"ok":
                    return False
        return True
    except OSError:
        return False


class World:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.backing: BackingServices | None = None
        self.stack: RegistryStack | None = None
        self.exchange = f"fault-run-{unique_suffix()}"
        self.mongo: MongoClient | None = None

    def start(self) -> None:
        self.backing = start_backing_services(self.workdir / "backing")
        self.stack = RegistryStack(self.workdir / "registry" / "var", self.backing, name="fault-run")
        self.stack.env["AMQP_EXCHANGE"] = self.exchange  # its queues are `<exchange>.*`: nobody else's
        self.stack.up()
        self.mongo = MongoClient(self.stack.env["MONGODB_URL"], serverSelectionTimeoutMS=5000, tz_aware=True)

    def distributions(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        assert self.mongo is not None
        return list(self.mongo.get_default_database().distributions.find(
            query, {"_id": 1, "filename": 1, "state": 1, "lease_until": 1, "upload_id": 1}))

    # -- faults
    def process(self, name: str) -> ServerProcess:
        assert self.backing is not None
        return next(p for p in self.backing.processes if p.name == name)

    def mongo_port(self) -> int:
        assert self.backing is not None
        return int(self.backing.mongodb_url.rsplit(":", 1)[1])

    def restart(self, name: str) -> float:
        """Start `name` again on its port and data dir; seconds until it serves again."""
        assert self.backing is not None
        started = time.monotonic()
        workdir = self.workdir / "backing"
        if name == "nx-27017":
            argv = launcher.nx_argv(VENV_BIN / "python", workdir / "mongo", self.mongo_port())
            proc = ServerProcess.start(name, argv, workdir)
        else:
            s3_port = int(self.backing.s3_endpoint.rsplit(":", 1)[1])
            argv = launcher.weed_argv(VENV_BIN / "weed", workdir / "s3", s3_port, s3_port - 3)
            proc = ServerProcess.start(name, argv, workdir, env=launcher.WEED_ENV)
        self.backing.processes[[p.name for p in self.backing.processes].index(name)] = proc
        wait_until(lambda: proc.check_running() or self.serving(name), 90, f"{name} serving again",
                   interval=0.25, details=proc.tail)
        return time.monotonic() - started

    def serving(self, name: str) -> bool:
        assert self.backing is not None
        if name == "nx-27017":
            return launcher.port_open("127.0.0.1", self.mongo_port())
        return s3_serving(self.backing.s3_endpoint)

    def services_ready(self) -> bool:
        assert self.stack is not None
        return all(launcher.http_status(f"{url}/-/ready") == 200 for url in self.stack.service_urls.values())

    # -- RabbitMQ
    async def queue_depths(self, names: list[str]) -> dict[str, int | None]:
        assert self.stack is not None
        depths: dict[str, int | None] = {}
        connection = await aio_pika.connect(self.stack.env["AMQP_URL"], timeout=10)
        try:
            for name in names:
                channel = await connection.channel()
                try:
                    queue = await channel.declare_queue(name, passive=True)
                    depths[name] = queue.declaration_result.message_count
                    await channel.close()
                except aio_pika.exceptions.ChannelClosed:  # no such queue
                    depths[name] = None
        finally:
            await connection.close()
        return depths

    def work_queue(self) -> str:
        return worker_queue(self.exchange)

    def dead_queue(self) -> str:
        return dead_letter_queue(self.work_queue())

    def retry_queues(self) -> list[str]:
        """The delay queues the worker declares: one per tier of its retry policy, from the same settings
        (WORKER_RETRY_DELAY, _DELAY_MAX, _WINDOW) the stack gave it."""
        assert self.stack is not None
        settings = settings_from_env(WorkerSettings, self.stack.env)
        return [retry_queue(self.work_queue(), ms) for ms in retry_policy(settings).tiers_ms()]

    def own_queues(self) -> list[str]:
        """Our queues as RabbitMQ lists them (`<exchange>.*`), and the ones the worker declares."""
        known = {self.work_queue(), self.dead_queue(), *self.retry_queues()}
        try:
            listed = subprocess.run(["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True, text=True,
                                    timeout=60).stdout.split()
            known |= {q for q in listed if q.startswith(f"{self.exchange}.")}
        except (OSError, subprocess.SubprocessError):
            pass
        return sorted(known)

    async def delete_amqp(self) -> None:
        assert self.stack is not None
        connection = await aio_pika.connect(self.stack.env["AMQP_URL"], timeout=10)
        try:
            channel = await connection.channel()
            for name in self.own_queues():
                await channel.queue_delete(name)
            for name in (dead_letter_exchange(self.exchange), self.exchange):
                await channel.exchange_delete(name)
        finally:
            await connection.close()

    def stop(self) -> None:
        """Everything this run started, each step attempted whatever failed before."""
        if self.mongo is not None:
            self.mongo.close()
        if self.stack is not None:
            try:
                self.stack.down()
            except Exception as exc:  # noqa: BLE001 - go on stopping the rest
                print(f"fault_run: stack down failed: {exc}", file=sys.stderr)
            try:
                asyncio.run(self.delete_amqp())
            except Exception as exc:  # noqa: BLE001
                print(f"fault_run: deleting queues of {self.exchange} failed: {exc}", file=sys.stderr)
        if self.backing is not None:
            self.backing.stop()


# -- phase 1: dependencies stopped and killed during uploads -------------------------------------------
@dataclass
class Upload:
    dist: Dist
    first: Answer | None = None
    outcome: str = ""  # installable | retried_to_success | stuck
    attempts: list[dict[str, Any]] = field(default_factory=list)


async def inject_faults(world: World, plan: list[tuple[str, signal.Signals]], outage: float, settle: float,
                        log: list[dict[str, Any]]) -> None:
    for name, sig in plan:
        await asyncio.sleep(settle)
        at = time.monotonic()
        await asyncio.to_thread(world.process(name).stop, sig)
        await asyncio.sleep(outage)
        serving_after = await asyncio.to_thread(world.restart, name)
        log.append({"target": name, "signal": sig.name, "down_s": round(time.monotonic() - at, 1),
                    "restart_s": round(serving_after, 1)})
        print(f"fault_run: {name} {sig.name}, serving again after {time.monotonic() - at:.1f} s", file=sys.stderr)
    await asyncio.sleep(settle)


async def retry_until_success(client: Client, upload: Upload, retries: int, resolve_s: float) -> bool:
    answer = upload.first
    for _ in range(retries):
        assert answer is not None
        wait = float(answer.retry_after) if (answer.retry_after or "").isdigit() else 2.0
        await asyncio.sleep(min(wait, 30.0))
        answer = await client.upload(upload.dist)
        upload.attempts.append(answer.short())
        if answer.ok:
            return await client.becomes_installable(upload.dist, time.monotonic() + resolve_s)
    return False


async def phase_dependencies(world: World, client: Client, report: Report, args: argparse.Namespace) -> None:
    counter = itertools.count()
    uploads: list[Upload] = []
    stop = asyncio.Event()

    async def uploader() -> None:
        while not stop.is_set():
            i = next(counter)
            if i >= args.uploads:
                return
            upload = Upload(valid_dist(f"dep-{i}", "1.0", KINDS[i % 3]))
            uploads.append(upload)
            upload.first = await client.upload(upload.dist)
            await asyncio.sleep(args.pace)  # spread the stream over the whole fault schedule

    plan = [("nx-27017", signal.SIGTERM), ("seaweedfs", signal.SIGTERM),
            ("nx-27017", signal.SIGKILL), ("seaweedfs", signal.SIGKILL)]
    faults: list[dict[str, Any]] = []
    workers = [asyncio.create_task(uploader()) for _ in range(args.concurrency)]
    try:
        await inject_faults(world, plan, args.outage, args.settle, faults)
    finally:
        stop.set()
        await asyncio.gather(*workers, return_exceptions=True)
    # Everything serves again before the checks (the services reconnect on their own).
    await asyncio.to_thread(wait_until, world.services_ready, 120, "every service ready again", 1.0)
    resolve_deadline = time.monotonic() + args.resolve_timeout

    async def check(upload: Upload) -> None:
        assert upload.first is not None
        if upload.first.ok:
            if await client.becomes_installable(upload.dist, resolve_deadline):
                upload.outcome = "installable"
                return
            upload.outcome = "stuck"
            report.violation("dependencies", "answered 2xx, never installable", filename=upload.dist.filename,
                             first=upload.first.short(), stored=world_docs(world, upload.dist.filename))
        elif await retry_until_success(client, upload, args.retries, args.resolve_timeout):
            upload.outcome = "retried_to_success"
        else:
            upload.outcome = "stuck"
            report.violation("dependencies", "not retryable to success", filename=upload.dist.filename,
                             first=upload.first.short(), retries=upload.attempts,
                             stored=world_docs(world, upload.dist.filename))

    await run_bounded([u for u in uploads if u.first is not None], check, 8)
    statuses = Counter(str(u.first.status) for u in uploads if u.first is not None)
    outcomes = Counter(u.outcome for u in uploads)
    for upload in uploads:
        if upload.first is not None and isinstance(upload.first.status, int) and upload.first.status >= 500 \
                and upload.first.status != 503:
            report.violation("dependencies", "5xx other than 503", filename=upload.dist.filename,
                             first=upload.first.short())
        if upload.first is not None and upload.first.status == 503 and upload.first.retry_after is None:
            report.violation("dependencies", "503 without Retry-After", filename=upload.dist.filename,
                             first=upload.first.short())
    report.phases["dependencies"] = {
        "uploads": len(uploads), "by_first_status": dict(sorted(statuses.items())),
        "installable": outcomes["installable"], "retried_to_success": outcomes["retried_to_success"],
        "stuck": outcomes["stuck"], "faults": faults,
        "dead_letters": await dead_letters(world, report, "dependencies"),
    }


def world_docs(world: World, filename: str) -> list[dict[str, Any]]:
    return [{k: str(v) for k, v in doc.items()} for doc in world.distributions({"filename": filename})]


async def dead_letters(world: World, report: Report, phase: str) -> int | None:
    dead = world.dead_queue()
    depth = (await world.queue_depths([dead]))[dead]
    if depth:
        report.violation(phase, "messages in the dead-letter queue", queue=dead, messages=depth)
    return depth


# -- phase 2: malformed multipart bodies ---------------------------------------------------------------
@dataclass
class RawAnswer:
    status: int | None
    body: bytes
    error: str = ""


async def send_raw(host: str, port: int, path: str, token: str, request: Any, limit: float) -> RawAnswer:
    auth = base64.b64encode(f"__token__:{token}".encode()).decode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Basic {auth}\r\n"
            f"User-Agent: fault-run\r\nContent-Length: {request.declared}\r\nConnection: close\r\n").encode()
    head += b"Content-Type: " + request.content_type + b"\r\n\r\n"
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), limit)
    try:
        try:
            writer.write(head + request.body)
            await writer.drain()
            if request.half_close:
                writer.write_eof()
        except (ConnectionError, OSError) as exc:
            error = type(exc).__name__  # the server may have answered early: read what it sent
        else:
            error = ""
        try:
            raw = await asyncio.wait_for(reader.read(), limit)
        except (ConnectionError, OSError) as exc:
            raw, error = b"", type(exc).__name__
        except TimeoutError:
            return RawAnswer(None, b"", "timeout")
    finally:
        writer.close()
    if not raw.startswith(b"HTTP/1.1 "):
        return RawAnswer(None, raw[:300], error or "no_answer")
    status = int(raw[9:12])
    header_block, _, body = raw.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in header_block.lower():
        body = dechunk(body)
    return RawAnswer(status, body, error)


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            return out + data
        if size == 0:
            return out
        out, data = out + rest[:size], rest[size + 2:]
    return out


def body_case(seed: int, i: int) -> tuple[Dist, Any]:
    """Case `i` of phase 2: the valid distribution and the malformed request made of its form."""
    rng = random.Random(f"{seed}-bodies-{i}")
    dist = valid_dist(f"fzb-{i}", "1.0", KINDS[i % 3])
    form = twine_form(dist, f"fault{rng.getrandbits(48):x}".encode())
    return dist, malformed_body(form, BODY_KINDS[i % len(BODY_KINDS)], rng)


def archive_case(seed: int, i: int, kind: str, dist_kind: str) -> tuple[Dist, bytes, str]:
    """Case `i` of phase 3: the valid original, its damaged bytes, and what was done."""
    rng = random.Random(f"{seed}-archives-{i}")
    original = valid_dist(f"mut-{i}", "1.0", dist_kind)
    data, detail = mutated_archive(original, kind, rng)
    return original, data, detail


def archive_cases(count: int) -> list[tuple[int, str, str]]:
    kinds = [(k, d) for k in ARCHIVE_KINDS for d in KINDS if applicable(k, d)]
    return [(i, *kinds[i % len(kinds)]) for i in range(count)]


async def phase_bodies(world: World, tenant: Tenant, client: Client, report: Report, args: argparse.Namespace) -> None:
    assert world.stack is not None
    host, port = world.stack.base_url.split("//")[1].split(":")
    path = tenant.upload_url.split(world.stack.base_url, 1)[1]
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    accepted: list[tuple[Dist, str, str]] = []
    answered: dict[str, dict[str, Any]] = {}

    async def one(i: int) -> None:
        dist, request = body_case(args.seed, i)
        kind = request.kind
        repro = {"case": i, "kind": kind, "detail": bounded(request.detail, 200), "seed": args.seed}
        try:
            answer = await send_raw(host, int(port), path, tenant.token, request, args.request_timeout)
        except (TimeoutError, OSError) as exc:
            answer = RawAnswer(None, b"", f"connect:{type(exc).__name__}")
        text = answer.body.decode(errors="replace")
        label = str(answer.status) if answer.status is not None else answer.error
        by_kind[kind][label] += 1
        answered[dist.filename] = {**repro, "status": label, "body": bounded(text)}
        if answer.status is None:
            if kind not in ABORT_KINDS:
                report.violation("malformed_bodies", "no answer", **repro, error=answer.error, got=bounded(text))
        elif answer.status >= 500:
            report.violation("malformed_bodies", "5xx", **repro, status=answer.status, body=bounded(text))
        elif answer.status in (201, 202):
            if kind in INVALID_BY_CONSTRUCTION:
                report.violation("malformed_bodies", "2xx for an invalid body", **repro, status=answer.status)
            accepted.append((dist, kind, request.detail))
        elif not (400 <= answer.status < 500 and gitlab_shaped(text)):
            report.violation("malformed_bodies", "answer not a GitLab-shaped 4xx", **repro,
                             status=answer.status, body=bounded(text))

    await run_bounded(list(range(args.bodies)), one, args.concurrency * 2)
    # A benign mutation that was accepted must be as good as any upload; nothing else may stay behind.
    deadline = time.monotonic() + args.resolve_timeout
    for dist, kind, detail in accepted:
        if not await client.becomes_installable(dist, deadline):
            report.violation("malformed_bodies", "accepted body never installable", kind=kind, detail=detail,
                             filename=dist.filename)
    keep = {dist.filename for dist, _, _ in accepted}
    left: list[dict[str, Any]] = []
    deadline = min(deadline, time.monotonic() + 60)  # failed uploads are undone before their answer
    while time.monotonic() < deadline:
        left = [d for d in await asyncio.to_thread(world.distributions, {"project_id": tenant.project["id"]})
                if d["filename"] not in keep]
        if not left:
            break
        await asyncio.sleep(2)
    for doc in left:
        report.violation("malformed_bodies", "left in distributions", filename=doc["filename"],
                         state=doc.get("state"), answered=answered.get(doc["filename"]))
    statuses: Counter[str] = Counter()
    for counts in by_kind.values():
        statuses.update(counts)
    report.phases["malformed_bodies"] = {
        "requests": args.bodies, "by_status": dict(sorted(statuses.items())),
        "by_kind": {k: dict(sorted(v.items())) for k, v in sorted(by_kind.items())},
        "accepted_benign": len(accepted), "left_in_distributions": len(left),
    }


# -- phase 3: mutated archives -------------------------------------------------------------------------
async def phase_archives(world: World, client: Client, report: Report, args: argparse.Namespace) -> None:
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    outcomes: Counter[str] = Counter()
    cases = archive_cases(args.archives)

    async def one(case: tuple[int, str, str]) -> None:
        i, kind, dist_kind = case
        original, data, detail = archive_case(args.seed, i, kind, dist_kind)
        sha = hashlib.sha256(data).hexdigest()
        repro = {"case": i, "kind": kind, "dist": dist_kind, "filename": original.filename,
                 "detail": bounded(detail, 200), "seed": args.seed}
        answer = await client.upload(original, data)
        by_kind[f"{kind}/{dist_kind}"][str(answer.status)] += 1
        if answer.status == 201 or answer.status == 202:
            if kind in MUST_REFUSE:
                report.violation("mutated_archives", "accepted a file the SPEC refuses", **repro, **answer.short())
            deadline = time.monotonic() + args.resolve_timeout
            if await client.becomes_installable(original, deadline, sha):
                # Served as sent; now whether an installer takes those bytes (wheels: against their RECORD).
                problem = install_problem(original, data)
                if problem is None:
                    outcomes["installable"] += 1
                else:
                    report.violation("mutated_archives", "accepted but not installable", **repro,
                                     status=answer.status, problem=problem)
                    outcomes["served_not_installable"] += 1
                return
            docs = world_docs(world, original.filename)
            if answer.status == 202 and not docs:
                # Refused after the client was told 202: the name is free, but the answer was wrong.
                report.violation("mutated_archives", "202 but nothing kept (verdict lost)", **repro)
                outcomes["202_then_refused"] += 1
            else:
                report.violation("mutated_archives", f"{answer.status} never installable", **repro, stored=docs)
                outcomes["stuck"] += 1
            return
        if answer.status != 400 or not gitlab_shaped(answer.body):
            check = "5xx" if isinstance(answer.status, int) and answer.status >= 500 else "not a 400"
            report.violation("mutated_archives", check, **repro, **answer.short())
            outcomes["other"] += 1
        else:
            message = json.loads(answer.body).get("message", "")
            outcomes["invalid_distribution" if "Invalid distribution file" in message else "other_400"] += 1
        # Whatever the answer, the filename must be free for the real file.
        again = await client.upload(original)
        if not (again.ok and await client.becomes_installable(original, time.monotonic() + args.resolve_timeout)):
            report.violation("mutated_archives", "filename not free after a refusal", **repro,
                             first=answer.short(), reupload=again.short(),
                             stored=world_docs(world, original.filename))
            outcomes["reupload_failed"] += 1
        else:
            outcomes["reupload_ok"] += 1

    await run_bounded(cases, one, args.concurrency)
    statuses: Counter[str] = Counter()
    for counts in by_kind.values():
        statuses.update(counts)
    report.phases["mutated_archives"] = {
        "uploads": len(cases), "by_status": dict(sorted(statuses.items())), "outcomes": dict(sorted(outcomes.items())),
        "by_kind": {k: dict(sorted(v.items())) for k, v in sorted(by_kind.items())},
    }
    await asyncio.sleep(2)  # a message the worker nacks reaches the dead-letter queue within moments
    report.phases["mutated_archives"]["dead_letters"] = await dead_letters(world, report, "mutated_archives")


# -- the run -------------------------------------------------------------------------------------------
PHASES = ("dependencies", "bodies", "archives")


async def run_phases(world: World, report: Report, args: argparse.Namespace) -> None:
    assert world.stack is not None
    deps, bodies, muts = (private_project(world.stack, f"fault-{p}", f"fault-{p}/target") for p in PHASES)
    timeout = aiohttp.ClientTimeout(total=args.request_timeout)
    connector = aiohttp.TCPConnector(limit=32, force_close=False)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, trust_env=False) as session:
        for phase, work in (("dependencies", lambda: phase_dependencies(world, Client(session, deps), report, args)),
                            ("bodies", lambda: phase_bodies(world, bodies, Client(session, bodies), report, args)),
                            ("archives", lambda: phase_archives(world, Client(session, muts), report, args))):
            if phase not in args.phases:
                continue
            started = time.monotonic()
            print(f"fault_run: phase {phase}", file=sys.stderr)
            await work()
            key = {"bodies": "malformed_bodies", "archives": "mutated_archives"}.get(phase, phase)
            report.phases[key]["seconds"] = round(time.monotonic() - started, 1)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=400, help="phase 1: at most this many uploads")
    parser.add_argument("--outage", type=float, default=5.0, help="phase 1: seconds each dependency stays down")
    parser.add_argument("--settle", type=float, default=5.0, help="phase 1: seconds of normal service between faults")
    parser.add_argument("--pace", type=float, default=1.0, help="phase 1: seconds each client waits between uploads")
    parser.add_argument("--retries", type=int, default=6, help="phase 1: retries of an upload that failed")
    parser.add_argument("--bodies", type=int, default=2000, help="phase 2: malformed bodies")
    parser.add_argument("--archives", type=int, default=1000, help="phase 3: mutated archives")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent uploads (bodies: twice this)")
    parser.add_argument("--resolve-timeout", type=float, default=180.0,
                        help="seconds for a 2xx upload to become installable")
    parser.add_argument("--request-timeout", type=float, default=120.0, help="seconds per HTTP request")
    parser.add_argument("--max-minutes", type=float, default=30.0, help="the whole run stops after this")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"a subset of {','.join(PHASES)}")
    parser.add_argument("--seed", type=int, default=None, help="reproduce a run's bodies and archives")
    parser.add_argument("--show", type=int, default=100, help="violations listed in full (all are counted)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) after the run")
    parser.add_argument("--dump", metavar="PHASE:CASE", help="write case CASE of phase bodies or archives (with "
                        "--seed) to fault-case-PHASE-CASE.bin, print how it is sent, start nothing")
    args = parser.parse_args(argv)
    args.phases = set(args.phases.split(","))
    if args.seed is None:
        args.seed = random.randrange(1 << 31)
    return args


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def dump(args: argparse.Namespace) -> int:
    """A case's exact bytes, to replay it by hand (the names are the run's own: fzb-<case>, mut-<case>)."""
    phase, _, case = args.dump.partition(":")
    i = int(case)
    out = Path(f"fault-case-{phase}-{i}.bin")
    if phase == "bodies":
        dist, request = body_case(args.seed, i)
        out.write_bytes(request.body)
        print(json.dumps({"kind": request.kind, "detail": request.detail, "content_type": request.content_type.decode(
            errors="replace"), "content_length": request.declared, "half_close": request.half_close,
            "body": str(out), "send": "POST /api/v4/projects/<id>/packages/pypi with these headers, exactly the body"}))
    else:
        (_, kind, dist_kind), = (c for c in archive_cases(i + 1) if c[0] == i)
        original, data, detail = archive_case(args.seed, i, kind, dist_kind)
        out.write_bytes(data)
        print(json.dumps({"kind": kind, "detail": detail, "filename": original.filename, "name": original.name,
                          "version": original.version, "file": str(out),
                          "send": "twine's form with sha256_digest of the file (tests/e2e/clients.post_upload)"}))
    return 0


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.dump:
        return dump(args)
    signal.signal(signal.SIGTERM, _interrupt)  # stop what we started, as on Ctrl-C
    report = Report()
    config = {k: sorted(v) if isinstance(v, set) else v for k, v in vars(args).items()}
    workdir = Path(tempfile.mkdtemp(prefix="fault-run-"))
    world = World(workdir)
    started = time.monotonic()
    try:
        world.start()
        config["exchange"], config["workdir"] = world.exchange, str(workdir)
        asyncio.run(asyncio.wait_for(run_phases(world, report, args), args.max_minutes * 60))
    except TimeoutError as exc:
        report.violation("run", "did not finish in time", error=str(exc))
    except KeyboardInterrupt:
        report.violation("run", "interrupted")
    except Exception as exc:  # noqa: BLE001 - the summary is still printed, with what broke
        report.violation("run", "crashed", error=f"{type(exc).__name__}: {bounded(str(exc), 2000)}")
    finally:
        world.stop()
        config["seconds"] = round(time.monotonic() - started, 1)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report.summary(config, args.show), indent=2))
    return 0 if not report.violations else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))

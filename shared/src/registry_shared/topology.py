"""The AMQP topology's names, declared once: exchanges, queues and routing keys (docs/contracts.md, "Events").

Publishers, consumers, tests and tools (deploy/k8s/tools/dlq_replay.py) all take their names from here, so
a rename cannot leave one of them talking to a queue nobody reads. Every name is a function of the
exchange name (`AMQP_EXCHANGE`, default `registry`), of a queue name, or of the replica an answer is for;
nothing here touches the broker.

- `<exchange>`: the durable topic exchange every event is published to, routed by its kind.
- `<exchange>.dlx`: the direct exchange dead letters go through, routed by the queue they died in.
- `<exchange>.metadata-worker`: metadata-worker's durable work queue, bound to `WORKER_BINDINGS`; its
  dead letters wait in `<exchange>.metadata-worker.dead`, its delayed retries in
  `<exchange>.metadata-worker.retry.<seconds>`.
- `<exchange>.audit`: metadata-worker's audit consumer (SPEC §10), bound to `AUDIT_BINDINGS`; writes one
  record per event (idempotent by `message_id`) and publishes `audit.recorded`.
- `<exchange>.webhooks`: metadata-worker's webhook consumer, bound to `audit.recorded` (it publishes one
  `webhook.delivery` per matching hook) and `webhook.delivery` (it POSTs it), retried through
  `<exchange>.webhooks.retry.<seconds>`.
- `<exchange>.downloads`: metadata-worker's download counter, bound to `downloads.counted`.
- Private (exclusive, auto-deleted, broker-named) queues: every index-api replica's, bound to
  `INDEX_REPLICA_BINDINGS`; every upload-api replica's, bound to `verdict_bindings(reply_to)` and
  `CREDENTIAL_BINDINGS`; every metadata-worker's replica view, bound to `REPLICA_VIEW_BINDINGS`, and its
  own, bound to `WORKER_REPLICA_BINDINGS`.
  `index.applied` answers go to the asker's private queue through the default
  exchange (routing key = that queue's name), so they need no name here.
"""
from __future__ import annotations

from .events import (
    AccessChanged,
    AuditRecorded,
    DistributionIndexed,
    DistributionRejected,
    DistributionStored,
    DownloadsCounted,
    FileDeleted,
    HooksChanged,
    IndexChanged,
    PackageDeleted,
    PackageStatusChanged,
    PackageUnyanked,
    PackageYanked,
    PolicyChanged,
    ProtectionRuleChanged,
    ReplicaJoined,
    ReplicaLeft,
    TokenCreated,
    TokenRevoked,
    WebhookDelivery,
)

WORKER_QUEUE_SUFFIX = "metadata-worker"

# Routing keys are event kinds (events.py declares them); these are the sets each consumer binds.
WORKER_BINDINGS: tuple[str, ...] = (DistributionStored.kind, FileDeleted.kind)
CREDENTIAL_BINDINGS: tuple[str, ...] = (TokenRevoked.kind, AccessChanged.kind)
# Supply-chain policy (SPEC §9): index-api filters pages and downloads by it, upload-api refuses by it.
POLICY_BINDINGS: tuple[str, ...] = (PolicyChanged.kind, PackageStatusChanged.kind)
INDEX_REPLICA_BINDINGS: tuple[str, ...] = (IndexChanged.kind, *CREDENTIAL_BINDINGS, *POLICY_BINDINGS)
# A process that keeps a view of the live replicas (the metadata-worker, for uploads' announcements).
REPLICA_VIEW_BINDINGS: tuple[str, ...] = (ReplicaJoined.kind, ReplicaLeft.kind)
# Every metadata-worker replica's own queue: what its caches hold (the hooks of each scope).
WORKER_REPLICA_BINDINGS: tuple[str, ...] = (HooksChanged.kind,)
VERDICT_KINDS: tuple[str, ...] = (DistributionIndexed.kind, DistributionRejected.kind)
# Verdicts are routed `<kind>.<replica>` (or the bare kind): `#` matches both.
AUDIT_BINDINGS: tuple[str, ...] = (
    f"{DistributionIndexed.kind}.#", f"{DistributionRejected.kind}.#", PackageDeleted.kind, PackageYanked.kind,
    PackageUnyanked.kind, PackageStatusChanged.kind, ProtectionRuleChanged.kind, PolicyChanged.kind,
    TokenCreated.kind, TokenRevoked.kind)
WEBHOOK_BINDINGS: tuple[str, ...] = (AuditRecorded.kind, WebhookDelivery.kind)
DOWNLOAD_BINDINGS: tuple[str, ...] = (DownloadsCounted.kind,)


def audit_queue(exchange: str) -> str:
    """`<exchange>.audit`: the durable queue of the audit consumer."""
    return f"{exchange}.audit"


def webhook_queue(exchange: str) -> str:
    """`<exchange>.webhooks`: the durable queue of the webhook consumer (and of its deliveries)."""
    return f"{exchange}.webhooks"


def download_queue(exchange: str) -> str:
    """`<exchange>.downloads`: the durable queue of the download counter."""
    return f"{exchange}.downloads"


def dead_letter_exchange(exchange: str) -> str:
    """`<exchange>.dlx`: the direct exchange a work queue's rejected messages go through."""
    return f"{exchange}.dlx"


def worker_queue(exchange: str) -> str:
    """`<exchange>.metadata-worker`: the durable queue metadata-worker consumes `distribution.stored` from."""
    return f"{exchange}.{WORKER_QUEUE_SUFFIX}"


def dead_letter_queue(queue: str) -> str:
    """`<queue>.dead`: where a work queue's dead letters wait (dlq_replay.py moves them back)."""
    return f"{queue}.dead"


def retry_queue(queue: str, delay_ms: int) -> str:
    """`<queue>.retry.<seconds>`: the delay queue whose messages wait `delay_ms` before going back to `queue`
    (`...retry.0.2`, `...retry.300`). Exact to the millisecond, so two delays never share a name (nor a TTL)."""
    seconds, ms = divmod(delay_ms, 1000)
    return f"{queue}.retry.{seconds}" + (f".{ms:03d}".rstrip("0") if ms else "")


def verdict_key(kind: str, reply_to: str) -> str:
    """`distribution.indexed.<replica>`: a verdict addressed to the upload-api replica waiting for it, or
    the bare kind when nobody named one."""
    return f"{kind}.{reply_to}" if reply_to else kind


def verdict_bindings(reply_to: str) -> tuple[str, ...]:
    """The routing keys of every verdict addressed to the upload-api replica `reply_to`."""
    return tuple(verdict_key(kind, reply_to) for kind in VERDICT_KINDS)

"""What the upload use case needs from the world, as protocols; `adapters/` implements them.

The use case (service.py) knows nothing of aiohttp, MongoDB, S3 or RabbitMQ: the HTTP edge hands it the
form's fields and its file part as a `Content`, and maps its result or DomainError to a response.
"""
from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from registry_shared.domain.access import AccessFacts, Principal
from registry_shared.events import DistributionIndexed, DistributionRejected, Event
from registry_shared.governance.protection import ProtectionRule
from registry_shared.records.files import StoredFile

Verdict = DistributionIndexed | DistributionRejected


@dataclass(frozen=True)
class StoredBlob:
    """What streaming the file part produced: its size and digests, and the inspector's verdict on it."""

    size: int
    sha256: str
    md5: str
    blake2_256: str
    metadata: bytes | None = None  # the core metadata bytes, when the bytes were inspected on the way


class Content(Protocol):
    """The form's file part, read once, in order."""

    @property
    def filename(self) -> str: ...

    async def read(self, size: int) -> bytes:
        """Up to `size` bytes; b"" at the end. A body that stops short raises a 400 (BadRequest), a client
        that went away ClientDisconnected."""

    async def drain(self, limit: int | None = None) -> bool:
        """Consume the rest without keeping it (False: stopped at `limit`)."""

    async def finish(self) -> None:
        """After the file part: read the rest of the body to its closing boundary. A second file part or a
        malformed end raises a 400, so an upload is only kept once its whole request was well-formed."""


class Inspector(Protocol):
    """Judges the bytes as they stream (registry_shared.inspection.StreamingInspector); blocking calls,
    made from the storing thread: `feed` each chunk then `finish`, or `inspect` a small file held whole."""

    def inspect(self, data: bytes) -> Any: ...

    def feed(self, chunk: bytes) -> None: ...

    def finish(self) -> Any: ...

    def abort(self) -> None: ...


class Access(Protocol):
    """Projects and credentials (SPEC §2, §3.1), cached by the adapter and kept true by events."""

    async def find_project(self, ref: str) -> dict[str, Any] | None: ...

    async def authenticate(self, username: str | None, password: str | None) -> Principal: ...

    async def project_facts(self, principal: Principal, project: dict[str, Any]) -> AccessFacts: ...


class Policies(Protocol):
    """Supply-chain policy (SPEC §9): refuses a blocked file (403) or an archived package's upload (400)."""

    async def check(self, project: dict[str, Any], name: str, version: str, filename: str) -> None: ...


class Protection(Protocol):
    """A project's package protection rules (SPEC §10), cached by the adapter and kept true by events."""

    async def rules(self, project_id: int) -> list[ProtectionRule]: ...


class Reservations(Protocol):
    """The `distributions` documents while they are uploads (registry_shared.adapters.packages)."""

    async def reserve(self, file: StoredFile, lease: float) -> tuple[bool, StoredFile]: ...

    async def renew_lease(self, file_id: int, upload_id: str, lease: float) -> bool: ...

    async def reclaim(self, file: StoredFile) -> bool: ...

    async def release(self, file_id: int, upload_id: str | None = None) -> bool: ...

    async def mark_stored(self, file_id: int, upload_id: str, *, size: int, sha256: str, md5: str,
                          blake2_256: str) -> bool: ...

    async def get_file(self, file_id: int) -> StoredFile | None: ...


@dataclass(frozen=True)
class Held:
    """A file part small enough to be read whole before anything is written: its bytes, their size and
    digests (`blob`, without metadata), and the inspector that will judge them as they are stored."""

    data: bytes
    blob: StoredBlob
    inspector: Inspector | None = None


class Blobs(Protocol):
    async def hold(self, content: Content, limit: int, inspector: Inspector | None) -> Held | Content:
        """A small file part read and hashed (`Held`); a larger one as a `Content` for `put`, what was read of
        it put back in front."""

    async def put_held(self, key: str, held: Held) -> StoredBlob:
        """Store a held file at `key` while its inspector judges it: its blob with the core metadata, or the
        refusal raised (and nothing left, as on any error)."""

    async def put(self, key: str, content: Content, limit: int, inspector: Inspector | None) -> StoredBlob:
        """Stream `content` to `key`, hashing (and inspecting) it on the way; on any error nothing is left."""

    async def delete(self, key: str) -> None: ...


class Publisher(Protocol):
    async def publish(self, event: Event, correlation_id: str | None) -> None:
        """Persistent and confirmed by the broker; raises if it is not."""


class Verdicts(Protocol):
    reply_to: str  # names this replica in the verdicts' routing keys
    answers_to: str  # this replica's queue: the replicas' answers to its files' `index.changed` come there

    def expect(self, upload_id: str) -> asyncio.Future[Verdict]: ...

    def forget(self, upload_id: str) -> None: ...


Fields = Mapping[str, str]

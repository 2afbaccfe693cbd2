"""The `distributions` document: one uploaded file, from its reservation to its deletion (contracts.md).

upload-api creates it (a reservation, `uploading`, leased while its bytes stream and while it awaits the
worker's verdict) and publishes it once stored; the metadata-worker makes it `installable`; upload-api marks it
`processing` (stored and queued, never reclaimed) only when it stops waiting without a verdict; index-api
serves it, and marks it `deleting` when E13 removes it.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from .times import stored_time

# A reservation made before leases existed is given this long from its creation.
LEGACY_LEASE = timedelta(hours=1)


class FileState(StrEnum):
    """The life of a file document, in order."""

    UPLOADING = "uploading"  # reserved; its bytes stream, then await the verdict (held by `lease_until`)
    PROCESSING = "processing"  # stored in S3 and queued, no longer awaited by its upload; the verdict is to come
    INSTALLABLE = "installable"  # indexed: pages, downloads and the Packages API show it
    DELETING = "deleting"  # an E13 delete has begun: shown nowhere; a retried DELETE finishes it


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One `distributions` document. `id` is its `_id` (0 before `PackageRepository.reserve` assigns one).

    A document read through a projection carries the defaults for the fields that were not read.
    """

    id: int
    project_id: int
    filename: str
    state: FileState = FileState.UPLOADING
    upload_id: str = ""
    object_key: str = ""
    kind: str = ""  # `bdist_wheel` | `sdist`
    name: str = ""  # PEP 503 normalised
    display_name: str = ""  # as uploaded
    version: str = ""  # as uploaded
    canonical_version: str = ""
    size: int = 0
    # Declared by the client while uploading (empty: not declared), computed once stored.
    sha256: str = ""
    md5: str = ""
    blake2_256: str = ""
    uploader: dict[str, Any] = field(default_factory=dict)  # Principal.log_fields(): ids and kinds only
    correlation_id: str | None = None
    created_at: datetime | None = None
    lease_until: datetime | None = None
    # Once installable:
    package_id: int | None = None
    metadata_version: str | None = None
    summary: str | None = None
    description: str | None = None
    description_content_type: str | None = None
    keywords: str | None = None
    author_email: str | None = None
    requires_python: str | None = None
    requires_dist: tuple[str, ...] = ()
    metadata_sha256: str | None = None  # sha256 of the core metadata bytes
    indexed_at: datetime | None = None
    yanked: bool | str = False
    # The README as sanitised HTML, rendered once by the worker (SPEC §11); None: no description.
    description_html: str | None = None
    downloads: int = 0  # counted by the worker from index-api's `downloads.counted`
    last_downloaded_at: datetime | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> StoredFile:
        get = doc.get
        size = get("size")
        package_id = get("package_id")
        return cls(
            id=int(doc["_id"]), project_id=int(get("project_id") or 0), filename=get("filename") or "",
            state=FileState(get("state") or FileState.UPLOADING), upload_id=get("upload_id") or "",
            object_key=get("object_key") or "", kind=get("kind") or "", name=get("name") or "",
            display_name=get("display_name") or "", version=get("version") or "",
            canonical_version=get("canonical_version") or "", size=int(size) if size else 0,
            sha256=get("sha256") or "", md5=get("md5") or "", blake2_256=get("blake2_256") or "",
            uploader=get("uploader") or {},
            correlation_id=get("correlation_id"), created_at=stored_time(get("created_at")),
            lease_until=stored_time(get("lease_until")),
            package_id=int(package_id) if package_id is not None else None,
            metadata_version=get("metadata_version"), summary=get("summary"), description=get("description"),
            description_content_type=get("description_content_type"), keywords=get("keywords"),
            author_email=get("author_email"), requires_python=get("requires_python"),
            requires_dist=tuple(get("requires_dist") or ()), metadata_sha256=get("metadata_sha256"),
            indexed_at=stored_time(get("indexed_at")), yanked=get("yanked") or False,
            description_html=get("description_html"),
            downloads=int(get("downloads") or 0), last_downloaded_at=stored_time(get("last_downloaded_at")),
        )

    def to_doc(self) -> dict[str, Any]:
        """The stored document; fields still unset (None, no digest) are left out, as they always were."""
        doc: dict[str, Any] = {"_id": self.id}
        for name in self.__dataclass_fields__:
            if name == "id":
                continue
            value = getattr(self, name)
            if value is None:
                continue
            if name == "state":
                value = str(value)
            elif name == "requires_dist":
                if not value:
                    continue
                value = list(value)
            elif name in ("yanked", "sha256", "md5", "blake2_256", "downloads") and not value:
                continue
            doc[name] = value
        return doc

    def abandoned(self, now: datetime | None = None) -> bool:
        """An `uploading` reservation whose lease ran out: its upload will never finish."""
        if self.state is not FileState.UPLOADING:
            return False
        until = self.lease_until
        if until is None:  # reserved before leases existed: give it an hour from its creation
            if self.created_at is None:
                return False
            until = self.created_at + LEGACY_LEASE
        return until < (now or datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class IndexedFields:
    """What the metadata-worker adds to a file document when it makes it installable."""

    package_id: int
    metadata_sha256: str
    indexed_at: datetime
    metadata_version: str | None = None
    summary: str | None = None
    description: str | None = None
    description_content_type: str | None = None
    keywords: str | None = None
    author_email: str | None = None
    requires_python: str | None = None
    requires_dist: tuple[str, ...] = ()
    description_html: str | None = None
    # The stored bytes' size and digests, as upload-api measured them (`distribution.stored`): a reservation
    # published without being marked stored has only those that were declared.
    stored: StoredBytes | None = None

    @classmethod
    def of(cls, metadata: Mapping[str, object], *, package_id: int, metadata_sha256: str,
           indexed_at: datetime, description_html: str | None = None,
           stored: StoredBytes | None = None) -> IndexedFields:
        """From `domain.metadata.merge_metadata`'s result (already truncated)."""
        def text(name: str) -> str | None:
            value = metadata.get(name)
            return None if value is None else str(value)

        requires = metadata.get("requires_dist")
        return cls(package_id=package_id, metadata_sha256=metadata_sha256, indexed_at=indexed_at,
                   metadata_version=text("metadata_version"), summary=text("summary"),
                   description=text("description"), description_content_type=text("description_content_type"),
                   keywords=text("keywords"), author_email=text("author_email"),
                   requires_python=text("requires_python"), description_html=description_html,
                   requires_dist=tuple(str(r) for r in requires) if isinstance(requires, (list, tuple)) else (),
                   stored=stored)

    def to_set(self) -> dict[str, Any]:
        """The `$set` of these fields (None values included: they clear nothing and say "absent")."""
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "stored"}
        fields["requires_dist"] = list(self.requires_dist)
        if self.stored is not None:
            fields.update(dataclasses.asdict(self.stored))
        return fields


@dataclass(frozen=True, slots=True)
class StoredBytes:
    """A stored file's size and digests."""

    size: int
    sha256: str
    md5: str
    blake2_256: str

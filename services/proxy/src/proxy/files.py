"""A proxied file: an upstream file the proxy has listed on a page it served, and what it has stored of it."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename

from registry_shared.domain.names import normalize_name

from .upstream import UpstreamFile

OBJECT_PREFIX = "proxy"
METADATA_SUFFIX = ".metadata"


def file_key(sha256: str, filename: str) -> str:
    """`_id` of a `proxy_dists` document: one upstream file, by its bytes and its name."""
    return f"{sha256}/{filename}"


@dataclass(frozen=True)
class ProxiedFile:
    name: str  # normalised name of the page that lists it
    file: UpstreamFile
    stored_size: int | None = None  # set once its verified bytes are in S3
    local_metadata_sha256: str | None = None  # core metadata extracted from the stored wheel
    metadata_stored: bool = False  # core metadata bytes are in S3 (extracted, or fetched and verified)

    @property
    def key(self) -> str:
        return file_key(self.file.sha256, self.file.filename)

    @property
    def object_key(self) -> str:
        return f"{OBJECT_PREFIX}/{self.file.sha256}/{self.file.filename}"

    @property
    def metadata_key(self) -> str:
        return self.object_key + METADATA_SUFFIX

    @property
    def size(self) -> int | None:
        return self.stored_size if self.stored_size is not None else self.file.size

    @property
    def metadata_sha256(self) -> str | None:
        """The core metadata the proxy advertises for this file (pages.entries uses the same rule)."""
        return self.file.metadata_sha256 or self.local_metadata_sha256

    @property
    def names(self) -> list[str]:
        """Every project name this file may be installed as: its page's, and the one its filename names.
        index-api refuses the file if any of them exists in the requesting scope."""
        names = {self.name}
        project = project_of(self.file.filename)
        if project:
            names.add(project)
        return sorted(names)

    def stored(self, size: int) -> ProxiedFile:
        return replace(self, stored_size=size)

    def describe(self) -> dict[str, Any]:
        """The lookup answer index-api reads."""
        return {"name": self.name, "names": self.names, "filename": self.file.filename, "sha256": self.file.sha256,
                "size": self.size, "core_metadata_sha256": self.metadata_sha256,
                "stored": self.stored_size is not None,
                # The upstream's upload time and the file's version: index-api applies policy (SPEC §9) by them.
                "upload_time": self.file.upload_time, "version": self.file.version}

    def to_doc(self) -> dict[str, Any]:
        return {"_id": self.key, "name": self.name, **self.file.to_doc()}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> ProxiedFile:
        return cls(doc["name"], UpstreamFile.from_doc(doc), int(doc["stored_size"]) if doc.get("stored") else None,
                   doc.get("local_metadata_sha256"), bool(doc.get("metadata_stored")))


def project_of(filename: str) -> str | None:
    """The normalised project name a wheel's or sdist's filename names, or None."""
    try:
        if filename.endswith(".whl"):
            return normalize_name(str(parse_wheel_filename(filename)[0]))
        if filename.endswith((".tar.gz", ".zip")):
            return normalize_name(str(parse_sdist_filename(filename)[0]))
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return None
    return None

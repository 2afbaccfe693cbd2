"""The `packages` document: one release (project, normalised name, canonical version) (contracts.md).

The metadata-worker creates it with the release's first installable file; index-api lists, shows and deletes
it (the Packages API, E10-E13).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .times import stored_time


@dataclass(frozen=True, slots=True)
class PackageRecord:
    """One `packages` document. `id` is its `_id` (0 before `PackageRepository.ensure_package` assigns one)."""

    id: int
    project_id: int
    name: str  # PEP 503 normalised
    version: str  # canonical
    display_name: str = ""  # as first uploaded
    display_version: str = ""
    created_at: datetime | None = None
    # Governance (SPEC §10): the yank (False, True or its reason) and the download counts, kept on the
    # document by index-api's yank and the worker's download counter.
    yanked: bool | str = False
    downloads: int = 0
    last_downloaded_at: datetime | None = None

    @property
    def shown_name(self) -> str:
        """The name as uploaded (documents without one show the normalised name)."""
        return self.display_name or self.name

    @property
    def shown_version(self) -> str:
        return self.display_version or self.version

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> PackageRecord:
        get = doc.get
        return cls(id=int(doc["_id"]), project_id=int(doc["project_id"]), name=doc["name"], version=doc["version"],
                   display_name=get("display_name") or "", display_version=get("display_version") or "",
                   created_at=stored_time(get("created_at")), yanked=get("yanked") or False,
                   downloads=int(get("downloads") or 0), last_downloaded_at=stored_time(get("last_downloaded_at")))

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"_id": self.id, "project_id": self.project_id, "name": self.name,
                               "version": self.version, "display_name": self.display_name,
                               "display_version": self.display_version}
        if self.created_at is not None:
            doc["created_at"] = self.created_at
        for name in ("yanked", "downloads", "last_downloaded_at"):  # left out while unset, as before
            if getattr(self, name):
                doc[name] = getattr(self, name)
        return doc

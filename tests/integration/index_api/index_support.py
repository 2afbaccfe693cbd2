"""Helpers of the index-api integration tests (imported as `tests.integration.index_api.index_support`:
this directory has no `__init__.py`, since a package named `index_api` would shadow the service).

The seeder writes documents the way registry-admin and the metadata-worker do (installable
`distributions`, `core_metadata`, S3 objects, `simple_pages`), so index-api is tested on its own.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from packaging.version import Version

from registry_shared.adapters.mongo import Mongo
from registry_shared.adapters.packages import INSTALLABLE, PackageRepository
from registry_shared.adapters.s3 import ObjectStore
from registry_shared.adapters.tenancy import TenancyRepository
from registry_shared.domain.access import RegistryAccess, Role, Visibility
from registry_shared.domain.names import normalize_name
from registry_shared.domain.simple import FileEntry

BASE = "https://registry.example.test"  # differs from the test server's Host: links must use this


class Seeder:
    """Writes tenancy and package documents directly, like registry-admin and the worker would."""

    def __init__(self, mongo: Mongo, store: ObjectStore) -> None:
        self.mongo = mongo
        self.store = store
        self.tenancy = TenancyRepository(mongo)
        self.packages = PackageRepository(mongo)
        self.entries: list[tuple[dict[str, Any], str, FileEntry]] = []  # (project, name, entry)

    async def user(self, username: str, admin: bool = False) -> dict[str, Any]:
        return await self.tenancy.create_user(username, admin)

    async def token(self, user: dict[str, Any], scopes: tuple[str, ...] = ("read_api",)) -> str:
        _, token = await self.tenancy.create_personal_token(user["_id"], list(scopes), None)
        return token

    async def group(self, path: str, visibility: str = "public", **fields: Any) -> dict[str, Any]:
        doc = await self.tenancy.create_group(path, None, Visibility(visibility))
        if fields:
            await self.tenancy.update("group", doc["_id"], fields)
            doc.update(fields)
        return doc

    async def project(self, path: str, visibility: str = "public", registry_access: str = "enabled",
                      **fields: Any) -> dict[str, Any]:
        doc = await self.tenancy.create_project(path, None, Visibility(visibility), RegistryAccess(registry_access))
        if fields:
            await self.tenancy.update("project", doc["_id"], fields)
            doc.update(fields)
        return doc

    async def member(self, user: dict[str, Any], kind: str, doc: dict[str, Any], role: Role) -> None:
        await self.tenancy.add_member(user["_id"], kind, doc["_id"], role)

    async def add_file(self, project: dict[str, Any], filename: str, content: bytes, *, name: str, version: str,
                       requires_python: str | None = None, metadata: bytes | None = None) -> FileEntry:
        """An installable file: its document, its object and (optionally) its core metadata."""
        file_id = await self.mongo.next_id("files")
        upload_id = uuid.uuid4().hex
        sha256 = hashlib.sha256(content).hexdigest()
        metadata_sha256 = hashlib.sha256(metadata).hexdigest() if metadata is not None else None
        key = f"files/{project['_id']}/{upload_id}/{filename}"
        await self.store.put_bytes(key, content)
        doc = {"_id": file_id, "project_id": project["_id"], "filename": filename, "state": INSTALLABLE,
               "upload_id": upload_id, "object_key": key, "kind": "sdist" if filename.endswith(".tar.gz") else
               "bdist_wheel", "name": normalize_name(name), "display_name": name, "version": version,
               "canonical_version": version, "size": len(content), "sha256": sha256,
               "md5": hashlib.md5(content).hexdigest(), "requires_python": requires_python,
               "metadata_sha256": metadata_sha256, "created_at": datetime.now(UTC)}
        await self.mongo.distributions.insert_one(doc)
        if metadata is not None:
            await self.packages.put_core_metadata(file_id, metadata)
        entry = FileEntry(filename=filename, sha256=sha256, size=len(content), upload_time="2025-01-02T03:04:05Z",
                          version=version, requires_python=requires_python, core_metadata_sha256=metadata_sha256,
                          project_id=project["_id"])
        self.entries.append((project, normalize_name(name), entry))
        return entry

    async def publish_pages(self) -> None:
        """Rebuild every simple document like the worker: each project, and each ancestor group of it."""
        scopes: dict[tuple[str, int], dict[str, list[FileEntry]]] = {}
        for project, name, entry in self.entries:
            for scope in [("project", project["_id"]), *(("group", g) for g in project["ancestor_ids"])]:
                scopes.setdefault(scope, {}).setdefault(name, []).append(entry)
        for (kind, scope_id), by_name in scopes.items():
            for name, entries in by_name.items():
                entries = sorted(entries, key=lambda e: (Version(e.version), e.filename, e.project_id))
                versions = sorted({e.version for e in entries}, key=Version)
                await self.packages.put_page(kind, scope_id, name, entries, versions)
            await self.packages.put_index(kind, scope_id, sorted(by_name))


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


async def wait_for(check: Callable[[], Awaitable[bool]], what: str, deadline: float = 10.0) -> None:
    """Re-run `check` (each run is a real request, which yields to the server) until it holds or time is up."""
    try:
        async with asyncio.timeout(deadline):
            while not await check():
                pass
    except TimeoutError:
        raise AssertionError(f"not within {deadline} s: {what}") from None



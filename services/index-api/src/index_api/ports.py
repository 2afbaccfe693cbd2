"""What the read path needs from storage, as protocols; `adapters/` implements them."""
from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from registry_shared.records.files import StoredFile
from registry_shared.records.pages import PackagePageDoc, ScopeIndexDoc


class ReadRepository(Protocol):
    async def find_scope(self, kind: str, ref: str) -> dict[str, Any] | None: ...

    async def instance_settings(self) -> dict[str, Any]: ...

    async def groups(self, ids: Sequence[int]) -> list[dict[str, Any]]: ...

    async def descendant_projects(self, group_id: int) -> list[dict[str, Any]]: ...

    async def scope_index(self, kind: str, scope_id: int) -> ScopeIndexDoc | None: ...

    async def package_page(self, kind: str, scope_id: int, name: str) -> PackagePageDoc | None: ...

    async def project_indexes(self, project_ids: Sequence[int]) -> list[ScopeIndexDoc]: ...

    async def installable_file(self, project_ids: Sequence[int], sha256: str,
                               filename: str) -> StoredFile | None: ...

    async def core_metadata(self, file_id: int) -> bytes | None: ...


class Blobs(Protocol):
    async def open(self, key: str, offset: int, length: int) -> AsyncIterator[bytes] | None:
        """The object's bytes (length 0 = to the end), or None when the object does not exist."""

    async def presigned_url(self, key: str, filename: str) -> str: ...

    async def gateway_url(self, key: str) -> str:
        """A presigned GET URL of the object on the store's internal endpoint, for the gateway to fetch."""

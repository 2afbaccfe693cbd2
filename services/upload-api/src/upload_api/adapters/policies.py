"""Supply-chain policy on upload (SPEC §9): a blocked file is refused (403 with the reason), an archived
package's uploads too (400). The compiled policies and statuses are this replica's own copy (a
`PolicyBook`), dropped by `policy.changed` / `package.status_changed` on its private queue."""
from __future__ import annotations

from typing import Any

from registry_shared.adapters.policies import PolicyBook, chain_of
from registry_shared.policy.refusals import check_upload


class UploadPolicies:
    def __init__(self, book: PolicyBook) -> None:
        self.book = book

    async def check(self, project: dict[str, Any], name: str, version: str, filename: str) -> None:
        """Raises BlockedByPolicy (403) or PackageArchived (400); `name` is normalised."""
        policy = await self.book.effective(chain_of("project", project))
        status = await self.book.status(project["_id"], name)
        check_upload(policy, status, name, version, filename)

    def clear(self) -> None:
        self.book.drop()

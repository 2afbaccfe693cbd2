#!/usr/bin/env python3
"""In-process cost of supply-chain policy on the read path (SPEC §9), without the network or other load:
per call of index-api's cached page lookup, the download check and a 300-file page render, with no policy
and with the bench policy (a 72 h cooldown and 1,000 blocked rules, benchmarks/run.py --policy).

    .venv/bin/python benchmarks/policy_eval.py
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import bench_policy  # noqa: E402

from index_api.access import AccessCaches, ReadScope  # noqa: E402
from index_api.cache import PageCache  # noqa: E402
from index_api.policy import ReadPolicy  # noqa: E402
from index_api.service import ReadService, RedirectForwarder  # noqa: E402
from registry_shared.adapters.policies import PolicyBook  # noqa: E402
from registry_shared.domain.simple import JSON_TYPE, FileEntry  # noqa: E402
from registry_shared.policy.document import PolicyDocument, parse_policy  # noqa: E402
from registry_shared.records.files import StoredFile  # noqa: E402
from registry_shared.records.pages import PackagePageDoc  # noqa: E402

FILES = tuple(FileEntry(f"many-{i}.0.tar.gz", "a" * 64, 1000, "2026-01-01T00:00:00.000000Z", f"{i}.0", project_id=1)
              for i in range(300))


class Repo:
    def __init__(self, policies: dict[str, PolicyDocument]) -> None:
        self.policies = policies

    async def package_page(self, kind: str, scope_id: int, name: str) -> PackagePageDoc:
        return PackagePageDoc(kind, scope_id, name, tuple(f.version for f in FILES), FILES)

    async def all(self) -> dict[str, PolicyDocument]:
        return self.policies

    async def all_statuses(self) -> dict[Any, Any]:
        return {}

    async def descendant_projects(self, group_id: int) -> list[dict[str, Any]]:
        return []


async def per_call(fn: Any, n: int) -> float:
    await fn()
    start = time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - start) / n * 1e6


async def measure(policies: dict[str, PolicyDocument]) -> dict[str, float]:
    repo = Repo(policies)
    svc = ReadService(repo, None, PageCache(), AccessCaches(60), RedirectForwarder(), "https://r",  # type: ignore[arg-type]
                      policy=ReadPolicy(PolicyBook(repo), repo))  # type: ignore[arg-type]
    scope = ReadScope("project", 1, "p", True, {"_id": 1, "ancestor_ids": []})
    stored = StoredFile(id=1, project_id=1, filename="many-1.0.tar.gz", name="many", version="1.0",
                        created_at=datetime(2026, 1, 1, tzinfo=UTC))

    async def cached_page() -> None:
        await svc.package_page(scope, "many", JSON_TYPE)

    async def render() -> None:
        svc.page_cache.clear()
        await svc.package_page(scope, "many", JSON_TYPE)

    async def download_check() -> None:
        await svc.check_file(scope, stored)

    return {"cached page (µs)": await per_call(cached_page, 100_000),
            "download check (µs)": await per_call(download_check, 100_000),
            "300-file page render (µs)": await per_call(render, 300)}


def main() -> None:
    without = asyncio.run(measure({}))
    with_policy = asyncio.run(measure({"project:1": parse_policy(json.loads(bench_policy()))}))
    for key in without:
        print(f"{key:28} no policy {without[key]:9.2f}   bench policy {with_policy[key]:9.2f}")


if __name__ == "__main__":
    main()

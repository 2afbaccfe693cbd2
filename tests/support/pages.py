"""The stored `simple_pages` documents as the page builder sees them: tests that read the raw documents go
through here, so they do not depend on how the lists are stored (`records.pages.packed`)."""
from __future__ import annotations

from typing import Any

from registry_shared.adapters.mongo import Mongo
from registry_shared.records.pages import unpacked


async def simple_documents(mongo: Mongo) -> dict[str, dict[str, Any]]:
    """Every simple document by `_id`, its lists unpacked."""
    return {doc["_id"]: unpacked(doc) async for doc in mongo.simple_pages.find({})}

"""Distribution bytes from S3 through the shared ObjectStore (its blocking calls run in threads)."""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from datetime import timedelta

from registry_shared.adapters.s3 import ObjectStore

PRESIGNED_TTL = timedelta(minutes=15)
# URLs for the gateway are signed for 15 minutes and handed out again for 5, so each is used well before
# it expires (the gateway's request to S3 starts within milliseconds), and one key costs one signature
# per 5 minutes however often it is downloaded.
GATEWAY_URL_TTL = timedelta(minutes=15)
GATEWAY_URL_REUSE = 300.0
GATEWAY_URLS_KEPT = 10_000


class S3Blobs:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._signed: OrderedDict[str, tuple[float, str]] = OrderedDict()

    async def open(self, key: str, offset: int, length: int) -> AsyncIterator[bytes] | None:
        """Start the download before any header is sent, so a missing object is a 404, not a cut body."""
        return await self.store.open(key, offset, length)

    async def presigned_url(self, key: str, filename: str) -> str:
        return await asyncio.to_thread(self.store.presigned_get, key, PRESIGNED_TTL, filename)

    async def gateway_url(self, key: str) -> str:
        now = time.monotonic()
        found = self._signed.get(key)
        if found is not None and now - found[0] < GATEWAY_URL_REUSE:
            return found[1]
        # Signing is an HMAC computed here, with no request (the region is configured): about 60 µs,
        # less than a hop to a worker thread, so it runs on the loop.
        url = self.store.presigned_internal_get(key, GATEWAY_URL_TTL)
        self._signed[key] = (now, url)
        self._signed.move_to_end(key)
        while len(self._signed) > GATEWAY_URLS_KEPT:
            self._signed.popitem(last=False)
        return url

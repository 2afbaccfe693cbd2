"""Download counts (SPEC §10): counted in process on the download path (a dict update), reported in
batches as `downloads.counted` by a background task every DOWNLOAD_FLUSH_INTERVAL seconds; the
metadata-worker adds them to the file and package documents. A download never waits for any of it.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Protocol

from registry_shared.events import DownloadCount, DownloadsCounted, Event
from registry_shared.logging import get_logger
from registry_shared.records.files import StoredFile
from registry_shared.tasks import running

log = get_logger()
MAX_BATCH = 5000  # files per message


class Publisher(Protocol):
    async def publish(self, event: Event, correlation_id: str | None, routing_key: str | None = None) -> None: ...


class DownloadCounter:
    def __init__(self, publisher: Publisher, interval: float) -> None:
        self.publisher = publisher
        self.interval = interval
        # file id -> [project id, package id, count, last download (epoch s)]
        self._pending: dict[int, list[float | int | None]] = {}

    def count(self, file: StoredFile) -> None:
        """One download of `file`: no I/O, no await."""
        entry = self._pending.get(file.id)
        now = time.time()
        if entry is None:
            self._pending[file.id] = [file.project_id, file.package_id, 1, now]
        else:
            entry[2] = int(entry[2] or 0) + 1
            entry[3] = now

    async def flush(self) -> int:
        """Publish what was counted since the last flush; on failure keep it for the next one."""
        if not self._pending:
            return 0
        taken, self._pending = self._pending, {}
        counts = [DownloadCount(file_id=fid, project_id=int(e[0] or 0),
                                package_id=int(e[1]) if e[1] is not None else None,
                                count=int(e[2] or 0), last_at=float(e[3] or 0)) for fid, e in taken.items()]
        try:
            for start in range(0, len(counts), MAX_BATCH):
                await self.publisher.publish(DownloadsCounted(counts=counts[start:start + MAX_BATCH]), None)
        except Exception as exc:  # noqa: BLE001 - counted again at the next flush
            for item in counts:
                self._merge(item)
            log.warning("downloads_not_reported", files=len(counts), error=type(exc).__name__)
            return 0
        return len(counts)

    def _merge(self, item: DownloadCount) -> None:
        entry = self._pending.get(item.file_id)
        if entry is None:
            self._pending[item.file_id] = [item.project_id, item.package_id, item.count, item.last_at]
        else:
            entry[2] = int(entry[2] or 0) + item.count
            entry[3] = max(float(entry[3] or 0), item.last_at)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Flush every `interval` seconds while the block runs, and once more at the end."""
        async def loop() -> None:
            while True:
                await asyncio.sleep(self.interval)
                await self.flush()

        try:
            async with running(loop()):
                yield
        finally:
            await self.flush()

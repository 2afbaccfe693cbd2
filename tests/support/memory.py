"""Large uploads without large disks, and the memory of processes while they take them.

- `write_sparse_wheel` makes a valid wheel of any size whose payload is a hole in a sparse file: a 2 GB
  wheel costs a few KB of disk and about a second (the CRC of the zeros).
- `RssSampler` samples the resident memory of process trees (a service and its children) in a thread.
- `post_file` sends a file as twine's multipart form with Content-Length, streamed in 1 MiB blocks and
  without client-side digests, so timing it measures the server, not the client's hashing.
"""
from __future__ import annotations

import base64
import http.client
import io
import os
import threading
import time
import uuid
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

MIB = 1024 * 1024
_HOLE = bytes(MIB)  # the zero block written as a hole


class _SparseWriter(io.RawIOBase):
    """A seekable file that turns writes of the zero block into holes (zipfile writes through it)."""

    def __init__(self, raw: io.BufferedRandom) -> None:
        self._raw = raw

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[no-untyped-def, override]
        if data is _HOLE:  # zipfile hands stored data through unchanged
            self._raw.seek(len(data), os.SEEK_CUR)
            return len(data)
        return self._raw.write(data)

    def tell(self) -> int:
        return self._raw.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def flush(self) -> None:
        self._raw.flush()


def write_sparse_wheel(directory: Path, name: str, version: str, size: int) -> Path:
    """A wheel of about `size` bytes (at least a few KB): METADATA, RECORD and one stored zero payload."""
    module = name.replace("-", "_")
    path = directory / f"{module}-{version}-py3-none-any.whl"
    dist_info = f"{module}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: a large test payload\n"
    wheel = "Wheel-Version: 1.0\nGenerator: tests.support.memory\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    payload = max(0, size - 4096)
    with open(path, "w+b") as raw, zipfile.ZipFile(_SparseWriter(raw), "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{module}/__init__.py", "")
        info = zipfile.ZipInfo(f"{module}/payload.bin", date_time=(2024, 1, 1, 0, 0, 0))
        info.file_size = payload
        with zf.open(info, "w", force_zip64=payload > zipfile.ZIP64_LIMIT) as out:
            for _ in range(payload // MIB):
                out.write(_HOLE)
            out.write(bytes(payload % MIB))
        zf.writestr(f"{dist_info}/METADATA", metadata)
        zf.writestr(f"{dist_info}/WHEEL", wheel)
        # Listed without hashes (the wheel spec's form for what a tool did not hash): the payload is sparse.
        zf.writestr(f"{dist_info}/RECORD", "".join(f"{member},,\n" for member in (
            f"{module}/__init__.py", f"{module}/payload.bin", f"{dist_info}/METADATA", f"{dist_info}/WHEEL",
            f"{dist_info}/RECORD")))
    return path


def disk_free(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


# -- resident memory ---------------------------------------------------------------------------

def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (nginx's workers are children of its master)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                pending.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
    return found


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid` and its descendants (VmRSS, summed)."""
    total = 0
    for member in _tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


@dataclass
class RssSampler:
    """Samples `rss_bytes` of each named process every `interval` seconds while running."""

    pids: dict[str, int]
    interval: float = 0.02
    baseline: dict[str, int] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self.baseline = {name: rss_bytes(pid) for name, pid in self.pids.items()}
        self.peak = dict(self.baseline)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            self.peak[name] = max(self.peak[name], rss_bytes(pid))

    def growth(self) -> dict[str, int]:
        return {name: self.peak[name] - self.baseline[name] for name in self.pids}


# -- a raw streamed upload ---------------------------------------------------------------------

class _MultipartBody(io.RawIOBase):
    """twine's form around a file, read block by block; its length is known up front."""

    def __init__(self, fields: Iterable[tuple[str, str]], path: Path, boundary: str) -> None:
        head = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                        for k, v in fields)
        head += (f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{path.name}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n").encode()
        self._parts: list[io.RawIOBase | io.BufferedReader | io.BytesIO] = [
            io.BytesIO(head), open(path, "rb"), io.BytesIO(f"\r\n--{boundary}--\r\n".encode())]  # noqa: SIM115
        self.length = len(head) + path.stat().st_size + len(f"\r\n--{boundary}--\r\n")

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while self._parts:
            data = self._parts[0].read(size)
            if data:
                return data
            self._parts.pop(0).close()
        return b""

    def close(self) -> None:
        for part in self._parts:
            part.close()
        super().close()


def post_file(upload_url: str, token: str, path: Path, name: str, version: str) -> tuple[int, bytes, float]:
    """(status, body, seconds) of one upload, as twine would send it minus the digests."""
    parts = urlsplit(upload_url)
    boundary = uuid.uuid4().hex
    fields = [(":action", "file_upload"), ("protocol_version", "1"), ("name", name), ("version", version),
              ("filetype", "bdist_wheel"), ("pyversion", "py3"), ("metadata_version", "2.1")]
    body = _MultipartBody(fields, path, boundary)
    auth = base64.b64encode(f"__token__:{token}".encode()).decode()
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600, blocksize=MIB)
    started = time.perf_counter()
    try:
        connection.request("POST", parts.path, body=body, headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(body.length),
            "Authorization": f"Basic {auth}"})
        response = connection.getresponse()
        content = response.read()
        return response.status, content, time.perf_counter() - started
    finally:
        body.close()
        connection.close()

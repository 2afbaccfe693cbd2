"""Object storage through the `minio` client. Its calls block, so each runs in a worker thread."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from minio import Minio
from minio.datatypes import Part
from minio.error import S3Error
from minio.helpers import DictType

from .readers import ForwardReader

DOWNLOAD_CHUNK = 256 * 1024
SMALL_OBJECT = 1024 * 1024  # sent in one PUT without a part buffer
MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NotFound", "NoSuchBucket"})


class ObjectStore:
    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str, region: str = "us-east-1",
                 public_endpoint: str | None = None, prefix: str = "") -> None:
        url = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
        self.bucket = bucket
        self.prefix = prefix
        self.client = Minio(url.netloc, access_key=access_key, secret_key=secret_key,
                            secure=url.scheme == "https", region=region)
        self._presign_client = self.client
        if public_endpoint:
            pub = urlparse(public_endpoint)
            self._presign_client = Minio(pub.netloc, access_key=access_key, secret_key=secret_key,
                                         secure=pub.scheme == "https", region=region)

    @classmethod
    def from_settings(cls, settings: Any) -> ObjectStore:
        return cls(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key, settings.s3_bucket,
                   settings.s3_region, prefix=settings.s3_prefix)

    def _key(self, key: str) -> str:
        return self.prefix + key

    async def ensure_bucket(self) -> None:
        def _ensure() -> None:
            if not self.client.bucket_exists(self.bucket):
                try:
                    self.client.make_bucket(self.bucket)
                except S3Error as exc:
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
        await asyncio.to_thread(_ensure)

    async def ping(self) -> bool:
        try:
            await asyncio.to_thread(self.client.bucket_exists, self.bucket)
            return True
        except Exception:  # noqa: BLE001 - readiness reports any failure as not ready
            return False

    def put_stream_blocking(self, key: str, reader: ForwardReader, part_size: int) -> None:
        """Upload from a blocking reader of unknown length: one PUT when it fits in a part, else multipart.

        One part buffer is filled and sent again and again, so memory stays at one part whatever the size.
        minio's own `put_object` copies each part of a stream of unknown length several times (and glibc
        keeps the freed copies): upload-api's RSS grew by 85 MB during a 500 MB upload with 16 MiB parts.
        minio has no public call for single parts, so its internal ones are used (unchanged through 7.2;
        the version is locked and every upload test runs through here). Any error, the reader's included,
        aborts the multipart upload: a refused upload leaves no parts behind.
        """
        client, name = self.client, self._key(key)
        headers: DictType = {"Content-Type": "application/octet-stream"}
        # Small files (most of them) are sent as read, without a part buffer sized for large ones.
        head = _read_up_to(reader, min(SMALL_OBJECT, part_size))
        if len(head) < min(SMALL_OBJECT, part_size):
            self.put_blocking(key, head)
            return
        view = memoryview(bytearray(part_size))
        view[:len(head)] = head
        filled = len(head) + _fill(reader, view[len(head):])
        del head
        # The part buffer goes to minio as a memoryview, not a bytes copy (that would double memory per part);
        # minio types `data` as bytes but only measures, hashes and sends it, which any buffer allows.
        if filled < part_size:
            client._put_object(self.bucket, name, view[:filled], headers)  # type: ignore[arg-type]  # noqa: SLF001
            return
        upload_id = client._create_multipart_upload(self.bucket, name, dict(headers))  # noqa: SLF001
        try:
            parts: list[Part] = []
            while filled:
                number = len(parts) + 1
                etag = client._upload_part(  # noqa: SLF001
                    self.bucket, name, view[:filled], None, upload_id, number)  # type: ignore[arg-type]  # as above
                parts.append(Part(number, etag))
                filled = _fill(reader, view) if filled == part_size else 0
            client._complete_multipart_upload(self.bucket, name, upload_id, parts)  # noqa: SLF001
        except BaseException:
            with contextlib.suppress(Exception):
                client._abort_multipart_upload(self.bucket, name, upload_id)  # noqa: SLF001
            raise

    def put_blocking(self, key: str, data: bytes) -> None:
        """One PUT of bytes held whole (a small upload), from a worker thread."""
        self.client._put_object(self.bucket, self._key(key), data,  # noqa: SLF001 - as put_stream_blocking
                                {"Content-Type": "application/octet-stream"})

    async def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        import io
        await asyncio.to_thread(self.client.put_object, self.bucket, self._key(key), io.BytesIO(data), len(data),
                                content_type=content_type)

    async def get_range(self, key: str, offset: int, length: int) -> bytes:
        return await asyncio.to_thread(self.get_range_blocking, key, offset, length)

    def get_range_blocking(self, key: str, offset: int, length: int) -> bytes:
        """`length` bytes from `offset` (for readers running in a worker thread)."""
        resp = self.client.get_object(self.bucket, self._key(key), offset=offset, length=length)
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    async def size(self, key: str) -> int | None:
        try:
            stat = await asyncio.to_thread(self.client.stat_object, self.bucket, self._key(key))
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return None
            raise
        return int(stat.size or 0)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.remove_object, self.bucket, self._key(key))

    async def stream(self, key: str, offset: int = 0, length: int = 0) -> AsyncIterator[bytes]:
        """Yield an object's bytes (or a range of them) chunk by chunk, never the whole object at once."""
        resp: Any = await asyncio.to_thread(self.client.get_object, self.bucket, self._key(key), offset=offset,
                                            length=length)
        try:
            iterator = resp.stream(DOWNLOAD_CHUNK)
            while True:
                chunk = await asyncio.to_thread(next, iterator, None)
                if chunk is None:
                    break
                yield chunk
        finally:
            resp.close()
            resp.release_conn()

    async def open(self, key: str, offset: int = 0, length: int = 0) -> AsyncIterator[bytes] | None:
        """`stream`, started before the caller sends any header: None when the object does not exist, so
        a missing object can still be answered with a 404 (or fetched anew), not with a cut body."""
        chunks = self.stream(key, offset=offset, length=length)
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = b""
        except S3Error as exc:
            await chunks.aclose()  # type: ignore[attr-defined]
            if exc.code in MISSING_CODES:
                return None
            raise
        return _prepend(first, chunks)

    def presigned_internal_get(self, key: str, expires: timedelta) -> str:
        """A GET URL of the object on the endpoint the services use (not the public one), with no response
        overrides: for a gateway that fetches the object on the client's behalf (X-Accel-Redirect). Signing
        is local (no request), as the region is known."""
        return self.client.presigned_get_object(self.bucket, self._key(key), expires=expires)

    def presigned_get(self, key: str, expires: timedelta, filename: str) -> str:
        return self._presign_client.presigned_get_object(
            self.bucket, self._key(key), expires=expires,
            response_headers={"response-content-disposition": f'attachment; filename="{filename}"'},
        )


def _fill(reader: ForwardReader, view: memoryview) -> int:
    """Read into `view` until it is full or the reader is exhausted; how many bytes were read."""
    filled = 0
    while filled < len(view):
        data = reader.read(len(view) - filled)
        if not data:
            break
        view[filled:filled + len(data)] = data
        filled += len(data)
    return filled


def _read_up_to(reader: ForwardReader, size: int) -> bytes:
    """Up to `size` bytes of the reader: fewer only at its end."""
    chunks: list[bytes] = []
    got = 0
    while got < size:
        data = reader.read(size - got)
        if not data:
            break
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        if first:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()  # type: ignore[attr-defined]

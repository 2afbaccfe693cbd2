"""Object storage through the `minio` client. Its calls block, so each runs in a worker thread."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import IO, Any
from urllib.parse import urlparse

from minio import Minio
from minio.error import S3Error

DOWNLOAD_CHUNK = 256 * 1024


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
    def from_settings(cls, settings: Any) -> "ObjectStore":
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

    def put_stream_blocking(self, key: str, reader: IO[bytes], part_size: int) -> None:
        """Upload from a blocking reader of unknown length (multipart above `part_size`).

        Sequential parts keep memory at about one part; minio aborts the multipart upload if the reader
        raises, so a refused upload leaves no parts behind.
        """
        self.client.put_object(self.bucket, self._key(key), reader, length=-1, part_size=part_size, num_parallel_uploads=1)

    async def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        import io
        await asyncio.to_thread(self.client.put_object, self.bucket, self._key(key), io.BytesIO(data), len(data),
                                content_type=content_type)

    async def get_range(self, key: str, offset: int, length: int) -> bytes:
        def _get() -> bytes:
            resp = self.client.get_object(self.bucket, self._key(key), offset=offset, length=length)
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()
        return await asyncio.to_thread(_get)

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
        resp: Any = await asyncio.to_thread(self.client.get_object, self.bucket, self._key(key), offset=offset, length=length)
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

    def presigned_get(self, key: str, expires: timedelta, filename: str) -> str:
        return self._presign_client.presigned_get_object(
            self.bucket, self._key(key), expires=expires,
            response_headers={"response-content-disposition": f'attachment; filename="{filename}"'},
        )

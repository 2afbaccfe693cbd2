#!/usr/bin/env python3
"""CPU of upload-api's multipart form reading (`open_form`, the file part, the closing boundary) for one
twine-like upload: 25 fields and a 10 KB file part, over an in-memory body (no network).

    .venv/bin/python benchmarks/upload_form.py [uploads per round] [path of a form.py to time instead]

The second argument times another version of `upload_api/adapters/form.py` (e.g. `git show
main:services/upload-api/src/upload_api/adapters/form.py > /tmp/form_main.py`) for a before/after.
"""
from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from unittest import mock

from aiohttp import streams, web
from aiohttp.test_utils import make_mocked_request

BOUNDARY = "c9f5f3b3b9a84e6e9a8b0d3f6f0a6c1d"
DATA = bytes(range(256)) * 40  # a 10 KB wheel
PROTOCOL = mock.Mock(max_field_size=8190, max_headers=128)
OpenForm = Callable[[web.Request], Awaitable[Any]]


class _Protocol:
    """What StreamReader asks of its transport's protocol."""

    _reading_paused = False

    def pause_reading(self, **_: object) -> None:
        pass

    def resume_reading(self, **_: object) -> None:
        pass


def twine_body() -> bytes:
    """The fields twine 5 sends for a wheel, then the file part."""
    fields = [(":action", "file_upload"), ("protocol_version", "1"), ("metadata_version", "2.1"),
              ("name", "demo"), ("version", "1.0"), ("filetype", "bdist_wheel"), ("pyversion", "py3"),
              ("summary", "A demo package"), ("home_page", ""), ("author", "A. Author"),
              ("author_email", "a@example.org"), ("maintainer", ""), ("maintainer_email", ""), ("license", "MIT"),
              ("description", "long description " * 50), ("keywords", "demo test"), ("classifiers", "A :: B"),
              ("classifiers", "C :: D"), ("download_url", ""), ("comment", ""),
              ("md5_digest", hashlib.md5(DATA).hexdigest()), ("sha256_digest", hashlib.sha256(DATA).hexdigest()),
              ("blake2_256_digest", hashlib.blake2b(DATA, digest_size=32).hexdigest()),
              ("requires_python", ">=3.8"), ("description_content_type", "text/markdown")]
    out = bytearray()
    for key, value in fields:
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
    out += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="content"; filename="demo-1.0-py3-none-any.whl"'
            f'\r\nContent-Type: application/octet-stream\r\n\r\n').encode()
    return bytes(out + DATA + f"\r\n--{BOUNDARY}--\r\n".encode())


async def one(open_form: OpenForm, body: bytes) -> float:
    """Seconds spent reading one upload's form (building the request is not counted)."""
    payload = streams.StreamReader(_Protocol(), 2**16, loop=asyncio.get_running_loop())  # type: ignore[arg-type]
    payload.feed_data(body)
    payload.feed_eof()
    request = make_mocked_request("POST", "/api/v4/projects/1/packages/pypi", payload=payload, protocol=PROTOCOL,
                                  headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    start = time.perf_counter()
    form = await open_form(request)
    while await form.content.read(256 * 1024):
        pass
    await form.content.finish()
    return time.perf_counter() - start


def load_open_form(path: str | None) -> OpenForm:
    if path is None:
        from upload_api.adapters.form import open_form
        return open_form
    spec = importlib.util.spec_from_file_location("form_under_test", Path(path))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.open_form  # type: ignore[no-any-return]


async def main(n: int, path: str | None) -> None:
    open_form, body = load_open_form(path), twine_body()
    for _ in range(200):
        await one(open_form, body)
    rounds = []
    for _ in range(5):
        spent = 0.0
        for _ in range(n):
            spent += await one(open_form, body)
        rounds.append(spent / n * 1e6)
    print(f"{path or 'upload_api.adapters.form'}: {len(body)} bytes, {min(rounds):.0f} us per upload "
          f"(best of 5 rounds of {n}; all {[round(r) for r in rounds]})")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000, sys.argv[2] if len(sys.argv) > 2 else None))

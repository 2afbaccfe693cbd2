"""Upstream indexes for the proxy's tests, never pypi.org:

- `FakeUpstream`: a tiny simple index in aiohttp (HTML or PEP 691 JSON pages, ETags, files whose bytes may
  differ from the advertised sha256, gates that hold a response until the test releases it, request counts);
  in-process for integration tests, or in a thread (`ThreadedServer`) for the stack's proxy process.
- `PypiServer`: pypiserver from PyPI on loopback, serving a directory the test fills with wheels it built.
"""
from __future__ import annotations

import asyncio
import hashlib
import html
import io
import json
import shutil
import threading
import zipfile
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from registry_shared.domain.names import normalize_name
from tests.support.servers import VENV_BIN, ServerProcess, free_port_base, launcher, wait_until

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


@dataclass
class FakeFile:
    filename: str
    content: bytes
    advertised_sha256: str  # what the page says; differs from the content's for a tampered file
    requires_python: str | None = None
    yanked: str | bool = False
    metadata: bytes | None = None  # served as PEP 658 `.metadata` and advertised
    advertised_size: int | None = None  # JSON pages say `size`: the content's length unless set
    upload_time: str | None = "2024-05-06T07:08:09Z"  # JSON pages' `upload-time`; None leaves it out

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class FakeUpstream:
    json_pages: bool = False  # offer PEP 691 JSON when asked for it (HTML otherwise)
    etags: bool = True
    projects: dict[str, list[FakeFile]] = field(default_factory=dict)
    page_requests: Counter = field(default_factory=Counter)
    file_requests: Counter = field(default_factory=Counter)
    head_requests: Counter = field(default_factory=Counter)  # HEADs of files (the proxy learning sizes)
    head_lengths: bool = True  # HEAD of a file says its Content-Length (False: 200 without one)
    head_failing: bool = False  # HEAD of a file answers 500 (pages and downloads still work)
    conditional_requests: Counter = field(default_factory=Counter)
    accept_headers: list[str] = field(default_factory=list)
    failing: bool = False  # every request answers 503
    page_gate: asyncio.Event | None = None  # page responses wait for it
    file_head_gate: asyncio.Event | None = None  # file responses wait for it before their headers
    file_gate: asyncio.Event | None = None  # file responses send one chunk, then wait for it
    # Pages and `.metadata` bodies sent in pieces this many seconds apart, as a slow network delivers
    # them (pypi.org's pages arrive in several reads): a client must read to the end, not once.
    pace: float = 0.0

    def add(self, name: str, filename: str, content: bytes, *, tamper: bool = False, **fields: object) -> FakeFile:
        sha = hashlib.sha256(content).hexdigest()
        if tamper:  # the page advertises other bytes' hash than those served
            sha = hashlib.sha256(content + b"tampered").hexdigest()
        file = FakeFile(filename, content, sha, **fields)  # type: ignore[arg-type]
        self.projects.setdefault(normalize_name(name), []).append(file)
        return file

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/simple/{name}/", self._page)
        app.router.add_get("/files/{filename}", self._file, allow_head=False)
        app.router.add_route("HEAD", "/files/{filename}", self._head)
        return app

    async def _page(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.page_requests[name] += 1
        self.accept_headers.append(request.headers.get("Accept", ""))
        if self.page_gate is not None:
            await self.page_gate.wait()
        if self.failing:
            return web.Response(status=503)
        files = self.projects.get(name)
        if files is None:
            return web.Response(status=404, text="not here")
        wants_json = self.json_pages and JSON_TYPE in request.headers.get("Accept", "")
        body, content_type = (self._json(name, files), JSON_TYPE) if wants_json else (self._html(name, files),
                                                                                        "text/html")
        headers = {"Content-Type": content_type}
        if self.etags:
            headers["ETag"] = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if request.headers.get("If-None-Match") == headers["ETag"]:
                self.conditional_requests[name] += 1
                return web.Response(status=304, headers={"ETag": headers["ETag"]})
        return await self._body(request, body, headers)

    async def _body(self, request: web.Request, body: bytes, headers: dict[str, str]) -> web.StreamResponse:
        if not self.pace:
            return web.Response(body=body, headers=headers)
        response = web.StreamResponse(headers=headers)
        response.content_length = len(body)
        await response.prepare(request)
        step = max(1, len(body) // 4)
        for start in range(0, len(body), step):
            if start:
                await asyncio.sleep(self.pace)  # the network's pace, not a wait for the test's state
            await response.write(body[start:start + step])
        await response.write_eof()
        return response

    def _html(self, name: str, files: list[FakeFile]) -> bytes:
        links = []
        for f in files:
            attrs = f'href="../../files/{f.filename}#sha256={f.advertised_sha256}"'
            if f.requires_python:
                attrs += f' data-requires-python="{html.escape(f.requires_python)}"'
            if f.yanked:
                attrs += f' data-yanked="{html.escape(f.yanked if isinstance(f.yanked, str) else "")}"'
            if f.metadata is not None:
                attrs += f' data-core-metadata="sha256={hashlib.sha256(f.metadata).hexdigest()}"'
            links.append(f"<a {attrs}>{f.filename}</a><br>")
        return f"<html><body><h1>Links for {name}</h1>{''.join(links)}</body></html>".encode()

    def _json(self, name: str, files: list[FakeFile]) -> bytes:
        out = []
        for f in files:
            item: dict[str, object] = {
                "filename": f.filename, "url": f"../../files/{f.filename}", "hashes": {"sha256": f.advertised_sha256},
                "requires-python": f.requires_python, "yanked": f.yanked,
                "core-metadata": {"sha256": hashlib.sha256(f.metadata).hexdigest()} if f.metadata else False,
            }
            if f.upload_time is not None:
                item["upload-time"] = f.upload_time
            item["size"] = len(f.content) if f.advertised_size is None else f.advertised_size
            out.append(item)
        return json.dumps({"meta": {"api-version": "1.1"}, "name": name, "files": out, "versions": []}).encode()

    async def _file(self, request: web.Request) -> web.StreamResponse:
        filename = request.match_info["filename"]
        self.file_requests[filename] += 1
        if self.failing:
            return web.Response(status=503)
        for files in self.projects.values():
            for f in files:
                if filename == f.filename:
                    return await self._send(request, f.content)
                if filename == f.filename + ".metadata" and f.metadata is not None:
                    return await self._body(request, f.metadata, {"Content-Type": "application/octet-stream"})
        return web.Response(status=404)

    async def _head(self, request: web.Request) -> web.StreamResponse:
        filename = request.match_info["filename"]
        self.head_requests[filename] += 1
        if self.failing or self.head_failing:
            return web.Response(status=500)
        for files in self.projects.values():
            for f in files:
                if filename == f.filename:
                    if not self.head_lengths:  # as a server streaming a generated body would answer
                        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
                        response.enable_chunked_encoding()
                        return response
                    return web.Response(headers={"Content-Type": "application/octet-stream",
                                                 "Content-Length": str(len(f.content))})
        return web.Response(status=404)

    async def _send(self, request: web.Request, content: bytes) -> web.StreamResponse:
        if self.file_head_gate is not None:
            await self.file_head_gate.wait()
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = len(content)
        await response.prepare(request)
        half = len(content) // 2
        await response.write(content[:half])
        if self.file_gate is not None:
            await self.file_gate.wait()
        await response.write(content[half:])
        await response.write_eof()
        return response


@asynccontextmanager
async def serving(fake: FakeUpstream) -> AsyncIterator[TestServer]:
    """`fake` on a loopback port of the test's own event loop; its simple index is `make_url("/simple/")`."""
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


def make_wheel(name: str, version: str, body: str = "VALUE = 1\n") -> tuple[str, bytes, bytes]:
    """(filename, wheel bytes, METADATA bytes) of a minimal pure-Python wheel."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Python: >=3.8\n\n".encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{module}/__init__.py", body)
        zf.writestr(f"{dist_info}/METADATA", metadata)
        zf.writestr(f"{dist_info}/WHEEL",
                    "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist_info}/RECORD", "")
    return f"{module}-{version}-py3-none-any.whl", buffer.getvalue(), metadata


class ThreadedServer:
    """An aiohttp application served on 127.0.0.1 from a thread of its own (for processes under test,
    such as the stack's proxy, to reach while the test itself runs synchronously)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.port = free_port_base([0])
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._runner = web.AppRunner(app)

    def start(self) -> ThreadedServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    async def _start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)


class PypiServer:
    """pypiserver (PyPI's `pypiserver`, run by its `pypi-server` command) on loopback, serving `packages`.

    Unknown names are 404 (`--disable-fallback`: pypiserver would otherwise redirect them to pypi.org).
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.packages = workdir / "packages"
        self.packages.mkdir(parents=True, exist_ok=True)
        self.port = free_port_base([0])
        self.url = f"http://127.0.0.1:{self.port}/simple/"
        self.process: ServerProcess | None = None

    def add(self, *files: Path) -> None:
        for path in files:
            shutil.copy(path, self.packages / path.name)

    def start(self) -> PypiServer:
        argv = [str(VENV_BIN / "pypi-server"), "run", "-i", "127.0.0.1", "-p", str(self.port), "-a", ".", "-P", ".",
                "--disable-fallback", "--server", "auto", "--hash-algo", "sha256", str(self.packages)]
        self.process = ServerProcess.start("pypiserver", argv, self.workdir)
        wait_until(lambda: self.process.check_running() or _answers(f"{self.url}"), 30, "pypiserver answering",
                   details=self.process.tail)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def _answers(url: str) -> bool:
    return launcher.http_status(url) == 200

"""A distribution's README as safe HTML, rendered once per upload (SPEC §11) and stored with its file
document; the web interface only reads it. Rendered and sanitised by `readme_renderer`, as pypi.org does:
Markdown (GFM or CommonMark), reStructuredText, or plain text, as `Description-Content-Type` says.

The renderers take time superlinear in some inputs (20,000 nested Markdown quotes: 7 s; deep
reStructuredText lists exhaust the recursion limit), so the worker renders in a separate process and
gives up after RENDER_TIMEOUT seconds (`render_bounded`): a README never holds an upload up for longer.
"""
from __future__ import annotations

import multiprocessing
import threading
from email.message import Message
from multiprocessing.pool import Pool

import readme_renderer.markdown
import readme_renderer.rst
import readme_renderer.txt
import structlog

# A description larger than this is not rendered (the page says so); it bounds the worker's time and the
# stored document, whatever an upload carries.
MAX_SOURCE_CHARS = 512 * 1024
RENDER_TIMEOUT = 5.0
log = structlog.get_logger()


def content_type_parts(content_type: str | None) -> tuple[str, dict[str, str]]:
    """(`text/markdown`, {"variant": "gfm", ...}) of a Description-Content-Type; pypi.org's default is
    reStructuredText."""
    message = Message()
    message["content-type"] = content_type or "text/x-rst"
    params = {key.lower(): str(value) for key, value in message.get_params(failobj=[])[1:]}
    return message.get_content_type(), params


def render_readme(description: str | None, content_type: str | None) -> str | None:
    """Sanitised HTML of the description, or None when there is none (or it is too large to render, or the
    renderers fail on it: a README never costs an upload its index entry)."""
    if not description or not description.strip() or len(description) > MAX_SOURCE_CHARS:
        return None
    try:
        return _render(description, content_type)
    except Exception as exc:  # noqa: BLE001 - docutils and comrak fail in their own ways on odd input
        log.warning("readme_not_rendered", content_type=(content_type or "")[:128], error=type(exc).__name__)
        return None


def _render(description: str, content_type: str | None) -> str | None:
    kind, params = content_type_parts(content_type)
    if kind == "text/markdown":
        rendered = readme_renderer.markdown.render(description, variant=params.get("variant", "GFM"))
    elif kind == "text/x-rst":
        # Invalid reStructuredText: pypi.org refuses the upload; here it is shown as plain text instead.
        rendered = readme_renderer.rst.render(description)
    else:
        rendered = None
    return rendered if rendered is not None else readme_renderer.txt.render(description)


class BoundedRenderer:
    """`render_readme` in a pool of processes (spawned, never forked from this threaded process), each call
    bounded by `timeout`: a render that takes longer is abandoned (None) and the pool replaced. Blocking:
    call it through `asyncio.to_thread`."""

    def __init__(self, timeout: float = RENDER_TIMEOUT, processes: int = 1) -> None:
        self.timeout = timeout
        self.processes = processes
        self._pool: Pool | None = None
        self._lock = threading.Lock()

    def __call__(self, description: str | None, content_type: str | None) -> str | None:
        if not description or not description.strip() or len(description) > MAX_SOURCE_CHARS:
            return None
        pool = self._current()
        try:
            result: str | None = pool.apply_async(render_readme, (description, content_type)).get(self.timeout)
        except multiprocessing.TimeoutError:
            log.warning("readme_not_rendered", content_type=(content_type or "")[:128], error="timeout",
                        timeout_s=self.timeout)
            self._replace(pool)
            return None
        return result

    def _current(self) -> Pool:
        with self._lock:
            if self._pool is None:
                pool = multiprocessing.get_context("spawn").Pool(self.processes)
                # Warmed before any timeout runs: a spawned process imports the renderers first (about a second).
                pool.apply(render_readme, ("warm-up", "text/plain"))
                self._pool = pool
            return self._pool

    def _replace(self, pool: Pool) -> None:
        """Kill the pool stuck on a render (the next call starts a new one)."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.terminate()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()


# The worker's, started on its first upload; two processes, so one slow README does not queue the others.
render_bounded = BoundedRenderer(processes=2)

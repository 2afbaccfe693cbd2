"""A distribution's README as safe HTML, rendered once per upload (SPEC §11) and stored with its file
document; the web interface only reads it. Rendered and sanitised by `readme_renderer`, as pypi.org does:
Markdown (GFM or CommonMark), reStructuredText, or plain text, as `Description-Content-Type` says."""
from __future__ import annotations

from email.message import Message

import readme_renderer.markdown
import readme_renderer.rst
import readme_renderer.txt

# A description larger than this is not rendered (the page says so); it bounds the worker's time and the
# stored document, whatever an upload carries.
MAX_SOURCE_CHARS = 512 * 1024


def content_type_parts(content_type: str | None) -> tuple[str, dict[str, str]]:
    """(`text/markdown`, {"variant": "gfm", ...}) of a Description-Content-Type; pypi.org's default is
    reStructuredText."""
    message = Message()
    message["content-type"] = content_type or "text/x-rst"
    params = {key.lower(): str(value) for key, value in message.get_params(failobj=[])[1:]}
    return message.get_content_type(), params


def render_readme(description: str | None, content_type: str | None) -> str | None:
    """Sanitised HTML of the description, or None when there is none (or it is too large to render)."""
    if not description or not description.strip() or len(description) > MAX_SOURCE_CHARS:
        return None
    kind, params = content_type_parts(content_type)
    if kind == "text/markdown":
        rendered = readme_renderer.markdown.render(description, variant=params.get("variant", "GFM"))
    elif kind == "text/x-rst":
        # Invalid reStructuredText: pypi.org refuses the upload; here it is shown as plain text instead.
        rendered = readme_renderer.rst.render(description)
    else:
        rendered = None
    return rendered if rendered is not None else readme_renderer.txt.render(description)

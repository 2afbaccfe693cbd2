"""Core metadata (METADATA / PKG-INFO): parsed into the fields the registry stores."""
from __future__ import annotations

import email.parser
import email.policy
import re
from collections.abc import Mapping

from .truncation import truncate_fields

# Form field name -> core metadata header.
_HEADERS = {
    "name": "Name",
    "version": "Version",
    "metadata_version": "Metadata-Version",
    "summary": "Summary",
    "keywords": "Keywords",
    "author_email": "Author-email",
    "requires_python": "Requires-Python",
    "description_content_type": "Description-Content-Type",
}

STORED_FIELDS = (
    "metadata_version",
    "summary",
    "description",
    "description_content_type",
    "keywords",
    "author_email",
    "requires_python",
)


# Major versions a reader of today understands: 1.0 to 2.5 are specified, and a later 2.x minor only adds
# fields (the core metadata specification asks tools to warn on an unknown minor version, not to fail).
SUPPORTED_METADATA_MAJORS = (1, 2)
_METADATA_VERSION_RE = re.compile(r"(\d+)\.(\d+)")


def metadata_version_supported(value: str | None) -> bool:
    """Whether a `Metadata-Version` is one the registry reads: `1.x` or `2.x` (2.5, 2.9 included), or absent
    (the form's value then stands in). A `3.0` may change the format itself, so it is refused."""
    if value is None:
        return True
    match = _METADATA_VERSION_RE.fullmatch(value.strip())
    return match is not None and int(match.group(1)) in SUPPORTED_METADATA_MAJORS


def parse_core_metadata(data: bytes) -> dict[str, object]:
    """Parse RFC 822 style core metadata. Returns header fields plus `description` and `requires_dist`."""
    text = data.decode("utf-8", errors="replace")
    msg = email.parser.Parser(policy=email.policy.compat32).parsestr(text)
    out: dict[str, object] = {}
    for field, header in _HEADERS.items():
        value = msg.get(header)
        if value is not None:
            out[field] = _unfold(str(value))
    description = msg.get("Description")
    body = msg.get_payload()
    if isinstance(body, str) and body.strip():
        out["description"] = body
    elif description is not None:
        out["description"] = _dedent_description(str(description))
    out["requires_dist"] = [_unfold(str(v)) for v in (msg.get_all("Requires-Dist") or [])]
    return out


def merge_metadata(from_file: Mapping[str, object], form: Mapping[str, str | None]) -> dict[str, object]:
    """The stored metadata: the distribution's own values where present, the form's otherwise, truncated."""
    merged: dict[str, object] = {}
    for field in STORED_FIELDS:
        value = from_file.get(field)
        if value in (None, ""):
            value = form.get(field)
        merged[field] = value if value not in ("",) else None
    merged = truncate_fields(merged)
    requires_dist = from_file.get("requires_dist")
    merged["requires_dist"] = list(requires_dist) if isinstance(requires_dist, (list, tuple)) else []
    return merged


def _unfold(value: str) -> str:
    return " ".join(line.strip() for line in value.splitlines()).strip()


def _dedent_description(value: str) -> str:
    # Metadata 1.x puts the description in a header continued with 8 spaces and `|`.
    lines = value.splitlines()
    cleaned = [lines[0]] if lines else []
    for line in lines[1:]:
        if line.startswith("       |") or line.startswith(" " * 8):
            cleaned.append(line[8:])
        else:
            cleaned.append(line.lstrip())
    return "\n".join(cleaned)

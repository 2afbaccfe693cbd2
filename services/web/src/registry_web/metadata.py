"""What a package page shows of a file's core metadata (METADATA / PKG-INFO), parsed when the page is
read: license, authors, project URLs and classifiers are not stored as fields of the file document."""
from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ShownMetadata:
    summary: str = ""
    requires_python: str = ""
    license: str = ""
    authors: list[str] = field(default_factory=list)
    maintainers: list[str] = field(default_factory=list)
    urls: list[tuple[str, str]] = field(default_factory=list)  # (label, http(s) URL)
    classifiers: list[str] = field(default_factory=list)
    dependencies: list[str] = field(default_factory=list)
    keywords: str = ""


def safe_url(url: str) -> str | None:
    """An http(s) URL, or None: a `javascript:` or `data:` link never reaches a page."""
    url = url.strip()
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def _people(name: str | None, address: str | None) -> list[str]:
    return [value.strip() for value in (name, address) if value and value.strip() and value.strip() != "UNKNOWN"]


def parse_shown(data: bytes | None) -> ShownMetadata:
    if not data:
        return ShownMetadata()
    msg = email.parser.Parser(policy=email.policy.compat32).parsestr(data.decode("utf-8", errors="replace"),
                                                                     headersonly=True)

    def one(name: str) -> str:
        value = msg.get(name)
        return " ".join(str(value).split()) if value is not None and str(value).strip() != "UNKNOWN" else ""

    urls: list[tuple[str, str]] = []
    home = safe_url(one("Home-page")) if one("Home-page") else None
    if home:
        urls.append(("Homepage", home))
    for entry in msg.get_all("Project-URL") or []:
        label, _, url = str(entry).partition(",")
        checked = safe_url(url)
        if checked and (label.strip(), checked) not in urls:
            urls.append((label.strip() or checked, checked))
    license_text = one("License-Expression") or one("License")
    return ShownMetadata(
        summary=one("Summary"), requires_python=one("Requires-Python"), license=license_text[:300],
        authors=_people(one("Author"), one("Author-email")), maintainers=_people(one("Maintainer"),
                                                                                  one("Maintainer-email")),
        urls=urls, classifiers=[" ".join(str(c).split()) for c in msg.get_all("Classifier") or []],
        dependencies=[" ".join(str(d).split()) for d in msg.get_all("Requires-Dist") or []],
        keywords=one("Keywords"))

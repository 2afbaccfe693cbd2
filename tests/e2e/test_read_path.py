"""pip's read path end to end, through the gateway and on each index-api replica:

- the JSON and HTML variants of the index and package pages of a project and a group validate against
  PEP 503/691 (with PEP 700's `versions`, `size`, `upload-time` and PEP 658/714 metadata attributes);
- `pip install --dry-run --report` and `uv pip install --dry-run` resolve from the JSON pages and the
  `.metadata` files without downloading a distribution (the gateway's access log shows every request);
- a repeated request with the ETag gets 304; a Range request gets exactly the bytes asked for;
- with two index-api replicas, once an upload returns 201 both serve the new file; once a delete (E13)
  returns, neither does.

The validators are written from the PEPs' rules, not from this server's output.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import socket
import subprocess
import sys
import tarfile
import venv
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import jsonschema
import pytest
import requests

from tests.support.servers import VENV_BIN, clean_pip_env

from .clients import post_upload

JSON_V1 = "application/vnd.pypi.simple.v1+json"
JSON_LATEST = "application/vnd.pypi.simple.latest+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
# What pip sends for index pages.
PIP_ACCEPT = f"{JSON_V1}, {HTML_V1}; q=0.1, text/html; q=0.01"
HTML_TYPES = ("text/html", HTML_V1)  # PEP 691: text/html is an alias of the v1 HTML type
# `<` and `>` must reach HTML attributes escaped, and come back intact through an HTML parser.
REQUIRES_PYTHON = ">=3.8, <4"
UPLOAD_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")  # PEP 700
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
NORMALIZED = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

# PEP 691's JSON documents, as JSON Schemas written from the PEP (with PEP 700's api-version 1.1 keys,
# PEP 714's `core-metadata` and PEP 592's `yanked`). Extra keys are allowed: PEP 691 lets servers add them.
_META = {"type": "object", "required": ["api-version"],
         "properties": {"api-version": {"type": "string", "pattern": r"^1\.\d+$"}}}
_HASHES = {"type": "object", "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]+$"}}
_METADATA_FLAG = {"anyOf": [{"type": "boolean"}, _HASHES]}
PEP691_INDEX = {
    "type": "object", "required": ["meta", "projects"],
    "properties": {"meta": _META, "projects": {"type": "array", "items": {
        "type": "object", "required": ["name"], "properties": {"name": {"type": "string", "minLength": 1}}}}},
}
PEP691_PAGE = {
    "type": "object", "required": ["meta", "name", "files", "versions"],
    "properties": {
        "meta": _META,
        "name": {"type": "string", "pattern": NORMALIZED.pattern},
        "versions": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},  # PEP 700
        "files": {"type": "array", "items": {
            "type": "object", "required": ["filename", "url", "hashes", "size"],  # `size`: PEP 700
            "properties": {
                "filename": {"type": "string", "minLength": 1},
                "url": {"type": "string", "minLength": 1},
                "hashes": _HASHES,
                "requires-python": {"type": ["string", "null"]},
                "core-metadata": _METADATA_FLAG,
                "dist-info-metadata": _METADATA_FLAG,
                "gpg-sig": {"type": "boolean"},
                "yanked": {"anyOf": [{"type": "boolean"}, {"type": "string", "minLength": 1}]},
                "size": {"type": "integer", "minimum": 0},
                "upload-time": {"type": "string", "pattern": UPLOAD_TIME.pattern},
            },
        }},
    },
}


# -- distributions, written directly (installable: RECORD lists every member) -----------------------------
def _metadata(name: str, version: str, requires: tuple[str, ...]) -> bytes:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", "Summary: read path test",
             f"Requires-Python: {REQUIRES_PYTHON}", *(f"Requires-Dist: {r}" for r in requires)]
    return ("\n".join(lines) + "\n\n").encode()


def make_wheel(out: Path, name: str, version: str, requires: tuple[str, ...] = (), payload: bytes = b"") -> Path:
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    members = [
        (f"{module}/__init__.py", f"VERSION = {version!r}\n".encode()),
        (f"{module}/payload.bin", payload),
        (f"{dist_info}/METADATA", _metadata(name, version, requires)),
        (f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n\n"),
    ]
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
        for path, data in members) + f"{dist_info}/RECORD,,\n"
    members.append((f"{dist_info}/RECORD", record.encode()))
    path = out / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in members:
            zf.writestr(member, data)
    return path


def make_sdist(out: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    top = f"{name.replace('-', '_')}-{version}"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for member, data in ((f"{top}/PKG-INFO", _metadata(name, version, requires)),
                             (f"{top}/setup.py", b"from setuptools import setup\nsetup()\n")):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = out / f"{top}.tar.gz"
    path.write_bytes(gzip.compress(raw.getvalue()))
    return path


# -- the tenant ----------------------------------------------------------------------------------------
@dataclass
class Site:
    base: str
    project_id: int
    other_project_id: int
    group_id: int
    token: str
    upload_url: str
    workdir: Path
    files: dict[str, bytes] = field(default_factory=dict)  # filename -> bytes, everything uploaded

    @property
    def auth(self) -> tuple[str, str]:
        return ("__token__", self.token)

    def root(self, scope: str, base: str | None = None) -> str:
        base = base or self.base
        if scope == "project":
            return f"{base}/api/v4/projects/{self.project_id}/packages/pypi"
        return f"{base}/api/v4/groups/{self.group_id}/-/packages/pypi"

    def simple(self, scope: str, base: str | None = None) -> str:
        return f"{self.root(scope, base)}/simple"

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return requests.get(url, auth=self.auth, timeout=30, **kwargs)

    def upload(self, path: Path, name: str, version: str, project_id: int | None = None) -> requests.Response:
        url = self.upload_url if project_id is None else self.upload_url.replace(
            f"/projects/{self.project_id}/", f"/projects/{project_id}/")
        response = post_upload(url, self.token, path, name=name, version=version)
        if response.status_code in (200, 201, 202):
            self.files[path.name] = path.read_bytes()
        return response


@pytest.fixture(scope="module")
def site(registry_stack, tmp_path_factory) -> Site:
    """readpath (private group) > readpath/lib and readpath/tools (private projects); a maintainer's token.

    lib: rp-core 1.0.0 (wheel and sdist) and 1.1.0 (wheel), rp-app 1.0.0 (wheel, needs rp-core>=1.1);
    tools: rp-tool 0.1.0 (wheel). Every upload must be answered 201: indexed on every replica.
    """
    admin = registry_stack.admin
    admin("user", "create", "--username", "rp-reader")
    group = admin("group", "create", "--path", "readpath", "--visibility", "private")
    lib = admin("project", "create", "--path", "readpath/lib", "--visibility", "private")
    tools = admin("project", "create", "--path", "readpath/tools", "--visibility", "private")
    admin("member", "add", "--user", "rp-reader", "--group", "readpath", "--role", "maintainer")
    token = admin("token", "create", "--user", "rp-reader", "--scopes", "api")["token"]
    work = tmp_path_factory.mktemp("read-path")
    base = registry_stack.base_url
    site = Site(base, lib["id"], tools["id"], group["id"], token,
                f"{base}/api/v4/projects/{lib['id']}/packages/pypi", work)
    uploads = [
        (make_wheel(work, "rp-core", "1.0.0", payload=bytes(range(256)) * 40), "rp-core", "1.0.0", None),
        (make_sdist(work, "rp-core", "1.0.0"), "rp-core", "1.0.0", None),
        (make_wheel(work, "rp-core", "1.1.0", payload=b"1.1" * 1000), "rp-core", "1.1.0", None),
        (make_wheel(work, "rp-app", "1.0.0", requires=("rp-core>=1.1",)), "rp-app", "1.0.0", None),
        (make_wheel(work, "rp-tool", "0.1.0"), "rp-tool", "0.1.0", tools["id"]),
    ]
    for path, name, version, project_id in uploads:
        response = site.upload(path, name, version, project_id)
        assert response.status_code == 201, (path.name, response.status_code, response.text)
    return site


SCOPE_NAMES = {"project": {"rp-app", "rp-core"}, "group": {"rp-app", "rp-core", "rp-tool"}}


# -- PEP 503 / 691 / 700 / 714 validators ------------------------------------------------------------------
def content_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").split(";")[0].strip().lower()


def validate_meta(doc: dict[str, Any]) -> tuple[int, int]:
    assert isinstance(doc.get("meta"), dict), doc
    version = doc["meta"].get("api-version")
    assert isinstance(version, str) and re.fullmatch(r"\d+\.\d+", version), version
    major, minor = map(int, version.split("."))
    assert major == 1, version
    return major, minor


def validate_index_json(response: requests.Response) -> set[str]:
    """PEP 691 project list: meta.api-version and `projects`, each an object with a `name`."""
    assert response.status_code == 200, response.text
    assert content_type(response) == JSON_V1
    doc = response.json()
    jsonschema.Draft202012Validator(PEP691_INDEX).validate(doc)
    validate_meta(doc)
    assert isinstance(doc.get("projects"), list)
    names = []
    for project in doc["projects"]:
        assert isinstance(project, dict) and isinstance(project.get("name"), str), project
        names.append(project["name"])
    assert len(names) == len(set(names)), names
    return set(names)


def validate_page_json(response: requests.Response, site: Site, page_url: str) -> list[dict[str, Any]]:
    """PEP 691 project detail with PEP 700 (api-version >= 1.1) and PEP 714 keys.

    Checks every hash against the uploaded bytes and every `core-metadata` against the `.metadata` file.
    """
    assert response.status_code == 200, response.text
    assert content_type(response) == JSON_V1
    doc = response.json()
    jsonschema.Draft202012Validator(PEP691_PAGE).validate(doc)
    _, minor = validate_meta(doc)
    assert minor >= 1, "PEP 700 fields need api-version 1.1"
    assert isinstance(doc.get("name"), str) and NORMALIZED.match(doc["name"]), doc.get("name")
    versions = doc.get("versions")
    assert isinstance(versions, list) and all(isinstance(v, str) for v in versions), versions  # PEP 700: required
    assert len(versions) == len(set(versions))
    files = doc.get("files")
    assert isinstance(files, list) and files
    for entry in files:
        filename = entry.get("filename")
        assert isinstance(filename, str) and "/" not in filename, entry
        assert isinstance(entry.get("url"), str), entry
        hashes = entry.get("hashes")
        assert isinstance(hashes, dict) and all(SHA256_HEX.match(v) for k, v in hashes.items() if k == "sha256")
        assert hashes.get("sha256") == hashlib.sha256(site.files[filename]).hexdigest(), filename
        assert entry.get("requires-python") in (None, REQUIRES_PYTHON), entry
        size = entry.get("size")
        assert isinstance(size, int) and not isinstance(size, bool) and size == len(site.files[filename])
        if "upload-time" in entry:  # optional in PEP 700, but when present exactly this format
            assert UPLOAD_TIME.match(entry["upload-time"]), entry["upload-time"]
            datetime.fromisoformat(entry["upload-time"].replace("Z", "+00:00"))
        yanked = entry.get("yanked", False)
        assert yanked is False or yanked is True or (isinstance(yanked, str) and yanked), yanked
        assert file_version(filename) in versions, (filename, versions)
        core = entry.get("core-metadata", entry.get("dist-info-metadata"))
        # PEP 714: the old key, where served, carries the same value as the new one.
        if "dist-info-metadata" in entry and "core-metadata" in entry:
            assert entry["dist-info-metadata"] == entry["core-metadata"], entry
        file_url = urljoin(page_url, entry["url"])
        check_core_metadata(site, file_url, core if isinstance(core, dict) else None, bool(core))
    return files


def file_version(filename: str) -> str:
    if filename.endswith(".whl"):
        return filename.split("-")[1]
    return filename.removesuffix(".tar.gz").rsplit("-", 1)[1]


def check_core_metadata(site: Site, file_url: str, hashes: dict[str, str] | None, advertised: bool) -> None:
    """PEP 658: `{file_url}.metadata` is served exactly where the page says so, with the advertised hash."""
    response = site.get(file_url.split("#", 1)[0] + ".metadata")
    if not advertised:
        assert response.status_code == 404, (file_url, response.status_code)
        return
    assert response.status_code == 200, (file_url, response.status_code)
    assert b"Metadata-Version:" in response.content
    if hashes is not None:
        assert hashes.get("sha256") == hashlib.sha256(response.content).hexdigest(), file_url


@dataclass
class Anchor:
    attrs: dict[str, str | None]
    text: str = ""


class SimpleHTML(HTMLParser):
    """Anchors (attributes unescaped by the parser, as pip reads them) and `<meta>` tags of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[Anchor] = []
        self.meta: dict[str, str] = {}
        self._open: Anchor | None = None
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open = Anchor(dict(attrs))
            self.anchors.append(self._open)
        elif tag == "meta":
            values = dict(attrs)
            if values.get("name"):
                self.meta[values["name"]] = values.get("content") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open.text += data


def parse_html(response: requests.Response) -> SimpleHTML:
    assert response.status_code == 200, response.text
    assert content_type(response) in HTML_TYPES, response.headers.get("Content-Type")
    parser = SimpleHTML()
    parser.feed(response.text)
    parser.close()
    assert parser.doctype.lower() == "doctype html", parser.doctype  # PEP 503: a valid HTML5 page
    version = parser.meta.get("pypi:repository-version")  # PEP 629
    if version is not None:
        assert re.fullmatch(r"1\.\d+", version), version
    return parser


def validate_index_html(response: requests.Response, site: Site) -> set[str]:
    """PEP 503 root: one anchor per project, its text the name, its href that project's page."""
    parser = parse_html(response)
    names = [a.text.strip() for a in parser.anchors]
    assert len(names) == len(set(names)), names
    for anchor in parser.anchors:
        href = urljoin(response.url, anchor.attrs["href"] or "")
        page = site.get(href, headers={"Accept": "text/html"})
        assert page.status_code == 200, href
        assert f"Links for {anchor.text.strip()}" in page.text, href
    return set(names)


def validate_page_html(response: requests.Response, site: Site) -> list[Anchor]:
    """PEP 503 project page with PEP 592/658/714 attributes, checked against the uploaded bytes."""
    parser = parse_html(response)
    raw = response.text
    assert parser.anchors
    for anchor in parser.anchors:
        filename = anchor.text.strip()
        href = anchor.attrs.get("href") or ""
        url, _, fragment = href.partition("#")
        assert urlsplit(url).path.endswith("/" + filename), href
        assert fragment == f"sha256={hashlib.sha256(site.files[filename]).hexdigest()}", href
        requires = anchor.attrs.get("data-requires-python")
        assert requires in (None, REQUIRES_PYTHON), requires  # the parser unescaped `&lt;`
        core = anchor.attrs.get("data-core-metadata")
        legacy = anchor.attrs.get("data-dist-info-metadata")
        assert core == legacy, (core, legacy)  # PEP 714: both, with the same value, or neither
        hashes = None
        if core not in (None, "true"):
            algorithm, _, digest = (core or "").partition("=")
            assert algorithm == "sha256" and SHA256_HEX.match(digest), core
            hashes = {"sha256": digest}
        check_core_metadata(site, urljoin(response.url, url), hashes, core is not None)
    # Attribute values are escaped in the bytes served: no raw `<` inside a data-requires-python value.
    assert "&lt;4" in raw and 'data-requires-python=">=3.8, <4"' not in raw
    return parser.anchors


# -- (a) PEP 691 / 503 documents of both scopes -------------------------------------------------------------
@pytest.mark.parametrize("scope", ["project", "group"])
def test_index_json_and_html_validate(site: Site, scope: str) -> None:
    url = f"{site.simple(scope)}/"
    assert validate_index_json(site.get(url, headers={"Accept": JSON_V1})) == SCOPE_NAMES[scope]
    latest = site.get(url, headers={"Accept": JSON_LATEST})
    assert content_type(latest) == JSON_V1  # PEP 691: `latest` answers with the actual version
    for accept in (HTML_V1, "text/html", None):
        headers = {"Accept": accept} if accept else {}
        assert validate_index_html(site.get(url, headers=headers), site) == SCOPE_NAMES[scope]
    # pip's header picks JSON.
    assert content_type(site.get(url, headers={"Accept": PIP_ACCEPT})) == JSON_V1


@pytest.mark.parametrize("scope", ["project", "group"])
def test_package_pages_json_and_html_validate(site: Site, scope: str) -> None:
    page_url = f"{site.simple(scope)}/rp-core/"
    json_files = validate_page_json(site.get(page_url, headers={"Accept": JSON_V1}), site, page_url)
    doc = site.get(page_url, headers={"Accept": JSON_V1}).json()
    assert doc["name"] == "rp-core"
    assert set(doc["versions"]) == {"1.0.0", "1.1.0"}
    assert {f["filename"] for f in json_files} == {
        "rp_core-1.0.0-py3-none-any.whl", "rp_core-1.0.0.tar.gz", "rp_core-1.1.0-py3-none-any.whl"}
    assert all("upload-time" in f for f in json_files)  # PEP 700 recommends it; the registry promises it
    wheels = [f for f in json_files if f["filename"].endswith(".whl")]
    assert all(isinstance(f["core-metadata"], dict) for f in wheels)  # PEP 658 for every wheel
    for accept in (HTML_V1, "text/html", None):
        anchors = validate_page_html(site.get(page_url, headers={"Accept": accept} if accept else {}), site)
        assert {a.text.strip() for a in anchors} == {f["filename"] for f in json_files}
        # The same metadata is advertised in both variants.
        by_name = {f["filename"]: f for f in json_files}
        for anchor in anchors:
            core = by_name[anchor.text.strip()]["core-metadata"]
            expected = f"sha256={core['sha256']}" if isinstance(core, dict) else None
            assert anchor.attrs.get("data-core-metadata") == expected
    # PEP 503: the name in the URL is normalised before lookup.
    for spelling in ("RP_Core", "rp.core", "Rp-CORE"):
        other = site.get(f"{site.simple(scope)}/{spelling}/", headers={"Accept": JSON_V1})
        assert other.status_code == 200 and other.json() == doc, spelling


def test_group_page_lists_the_files_of_every_project(site: Site) -> None:
    page_url = f"{site.simple('group')}/rp-tool/"
    files = validate_page_json(site.get(page_url, headers={"Accept": JSON_V1}), site, page_url)
    assert [f["filename"] for f in files] == ["rp_tool-0.1.0-py3-none-any.whl"]
    assert site.get(f"{site.simple('project')}/rp-tool/", headers={"Accept": JSON_V1},
                    allow_redirects=False).status_code in (302, 404)  # not in lib: forwarded or 404


# -- (b) pip and uv resolve from JSON pages and .metadata, downloading no distribution ---------------------
def with_credentials(url: str, token: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"__token__:{quote(token, safe='')}@{parts.netloc}"))


def gateway_requests(registry_stack, since: int, agent: str) -> list[dict[str, Any]]:
    """The gateway's access-log records from position `since` on, of requests by `agent` (pip/uv)."""
    return [r for r in registry_stack.read_logs("nginx")[since:] if r.get("user_agent", "").startswith(agent)]


def check_metadata_only(records: list[dict[str, Any]], site: Site, scope: str) -> None:
    paths = [r["path"] for r in records]
    metadata = [p for p in paths if p.endswith(".metadata")]
    downloads = [p for p in paths if p.endswith((".whl", ".tar.gz", ".zip"))]
    assert any(p.endswith("/rp_app-1.0.0-py3-none-any.whl.metadata") for p in metadata), paths
    assert any(p.endswith("/rp_core-1.1.0-py3-none-any.whl.metadata") for p in metadata), paths
    assert downloads == [], f"distributions downloaded during resolution: {downloads}"
    assert all(r["status"] in (200, 304) for r in records), records
    # The pages came as JSON: the bytes sent are exactly the JSON variant's.
    for name in ("rp-app", "rp-core"):
        page = [r for r in records if r["path"].rstrip("/").endswith(f"/simple/{name}")]
        assert page, paths
        json_body = site.get(f"{site.simple(scope)}/{name}/", headers={"Accept": JSON_V1}).content
        html_body = site.get(f"{site.simple(scope)}/{name}/", headers={"Accept": "text/html"}).content
        assert len(json_body) != len(html_body)
        assert all(r["bytes_sent"] == len(json_body) for r in page if r["status"] == 200), page


@pytest.mark.parametrize("scope", ["project", "group"])
def test_pip_dry_run_resolves_from_json_and_metadata(registry_stack, site: Site, scope: str, tmp_path: Path) -> None:
    report, log = tmp_path / "report.json", tmp_path / "pip.log"
    since = len(registry_stack.read_logs("nginx"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-cache-dir",
         "--report", str(report), "--log", str(log), "-v",
         "--index-url", with_credentials(site.simple(scope), site.token), "rp-app"],
        env=clean_pip_env(home=tmp_path / "home"), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    installs = {i["metadata"]["name"]: i for i in json.loads(report.read_text())["install"]}
    assert {n: i["metadata"]["version"] for n, i in installs.items()} == {"rp-app": "1.0.0", "rp-core": "1.1.0"}
    assert installs["rp-core"]["download_info"]["url"].endswith("/rp_core-1.1.0-py3-none-any.whl")
    text = log.read_text()
    assert re.search(r"Fetched page \S+/simple/rp-core/? as application/vnd\.pypi\.simple\.v1\+json", text), text
    assert re.search(r"Obtaining dependency information for rp-core\S* from \S+\.whl\.metadata", text), text
    check_metadata_only(gateway_requests(registry_stack, since, "pip/"), site, scope)


@pytest.fixture(scope="module")
def empty_venv(tmp_path_factory) -> Path:
    """One virtualenv for the module's uv runs: they are dry runs, so it stays empty."""
    target = tmp_path_factory.mktemp("uv-venv") / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    return target / "bin" / "python"


@pytest.mark.parametrize("scope", ["project", "group"])
def test_uv_dry_run_resolves_from_json_and_metadata(registry_stack, site: Site, scope: str, tmp_path: Path,
                                                    empty_venv: Path) -> None:
    since = len(registry_stack.read_logs("nginx"))
    result = subprocess.run(
        [str(VENV_BIN / "uv"), "pip", "install", "--dry-run", "--no-cache", "--python", str(empty_venv),
         "--index-url", with_credentials(site.simple(scope), site.token), "-v", "rp-app"],
        env=clean_pip_env(home=tmp_path / "home"), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "rp-app==1.0.0" in output and "rp-core==1.1.0" in output, output
    check_metadata_only(gateway_requests(registry_stack, since, "uv/"), site, scope)


# -- (c) ETags and 304 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("scope", ["project", "group"])
@pytest.mark.parametrize("page", ["", "rp-core/"])
def test_simple_responses_answer_if_none_match_with_304(site: Site, scope: str, page: str) -> None:
    url = f"{site.simple(scope)}/{page}"
    etags = {}
    for label, accept in (("json", JSON_V1), ("html", "text/html")):
        first = site.get(url, headers={"Accept": accept})
        assert first.status_code == 200
        etag = first.headers.get("ETag", "")
        assert re.fullmatch(r'"[^"]+"', etag), etag  # strong, quoted
        assert "accept" in first.headers.get("Vary", "").lower()
        cache = first.headers.get("Cache-Control", "")
        assert "max-age=0" in cache and "must-revalidate" in cache and "private" in cache, cache
        again = site.get(url, headers={"Accept": accept, "If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers.get("ETag") == etag and "accept" in again.headers.get("Vary", "").lower()
        assert site.get(url, headers={"Accept": accept, "If-None-Match": f'"other", {etag}'}).status_code == 304
        etags[label] = etag
    assert etags["json"] != etags["html"]
    # The other variant's ETag does not validate this one.
    assert site.get(url, headers={"Accept": JSON_V1, "If-None-Match": etags["html"]}).status_code == 200


def test_files_and_metadata_answer_if_none_match_with_304(site: Site) -> None:
    entry = wheel_entry(site, "rp_core-1.0.0-py3-none-any.whl")
    for url in (entry["url"], entry["url"] + ".metadata"):
        first = site.get(url)
        assert first.status_code == 200
        etag = first.headers["ETag"]
        assert "immutable" in first.headers.get("Cache-Control", "")
        again = site.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag


# -- (d) Range and HEAD ---------------------------------------------------------------------------------
def wheel_entry(site: Site, filename: str, base: str | None = None) -> dict[str, Any]:
    page = site.get(f"{site.simple('project', base)}/{filename.split('-')[0].replace('_', '-')}/",
                    headers={"Accept": JSON_V1})
    assert page.status_code == 200, page.text
    for entry in page.json()["files"]:
        if entry["filename"] == filename:
            return {**entry, "url": urljoin(page.url, entry["url"])}
    raise AssertionError(f"{filename} not listed")


def test_range_requests_return_exactly_the_requested_bytes(site: Site) -> None:
    name = "rp_core-1.0.0-py3-none-any.whl"
    data, url = site.files[name], wheel_entry(site, name)["url"]
    size = len(data)
    full = site.get(url)
    assert full.status_code == 200 and full.content == data
    assert full.headers.get("Accept-Ranges") == "bytes" and int(full.headers["Content-Length"]) == size
    for header, start, end in (("bytes=0-99", 0, 99), ("bytes=100-", 100, size - 1), ("bytes=-50", size - 50, size - 1),
                               (f"bytes=1000-{size + 500}", 1000, size - 1), ("bytes=7-7", 7, 7)):
        response = site.get(url, headers={"Range": header})
        assert response.status_code == 206, header
        assert response.headers["Content-Range"] == f"bytes {start}-{end}/{size}", header
        assert int(response.headers["Content-Length"]) == end - start + 1, header
        assert response.content == data[start:end + 1], header
    beyond = site.get(url, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{size}"
    etag = full.headers["ETag"]
    assert site.get(url, headers={"Range": "bytes=0-9", "If-Range": etag}).status_code == 206
    stale = site.get(url, headers={"Range": "bytes=0-9", "If-Range": '"something-else"'})
    assert stale.status_code == 200 and stale.content == data


def raw_request(url: str, method: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """One request on its own connection, read to EOF: the bytes on the wire, not a client's view of them."""
    parts = urlsplit(url)
    lines = [f"{method} {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close",
             *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall("\r\n".join(lines).encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), parsed, body


def test_head_has_content_length_and_no_body(site: Site) -> None:
    name = "rp_core-1.0.0-py3-none-any.whl"
    url = wheel_entry(site, name)["url"]
    auth = "Basic " + base64.b64encode(f"__token__:{site.token}".encode()).decode()
    status, headers, body = raw_request(url, "HEAD", {"Authorization": auth})
    assert status == 200 and int(headers["content-length"]) == len(site.files[name]) and body == b""
    assert headers.get("etag") == f'"{hashlib.sha256(site.files[name]).hexdigest()}"'
    status, headers, body = raw_request(url, "HEAD", {"Authorization": auth, "Range": "bytes=0-9"})
    assert status == 206 and headers["content-length"] == "10" and body == b""
    page_status, page_headers, page_body = raw_request(f"{site.simple('project')}/rp-core/", "HEAD",
                                                       {"Authorization": auth, "Accept": JSON_V1})
    assert page_status == 200 and page_body == b"" and page_headers.get("etag")


# -- (e) two replicas ----------------------------------------------------------------------------------
def on_replica(url: str, replica: str) -> str:
    """A URL of the gateway rewritten to one index-api replica."""
    parts, target = urlsplit(url), urlsplit(replica)
    return urlunsplit(parts._replace(netloc=target.netloc))


def replica_view(site: Site, replica: str, name: str) -> tuple[set[str], dict[str, dict[str, Any]]]:
    """(names in the project and group indexes, files of `name`'s project page) as one replica serves them."""
    names: set[str] = set()
    for scope in ("project", "group"):
        index = site.get(f"{site.simple(scope, replica)}/", headers={"Accept": JSON_V1})
        assert index.status_code == 200
        names |= {p["name"] for p in index.json()["projects"]}
    page = site.get(f"{site.simple('project', replica)}/{name}/", headers={"Accept": JSON_V1}, allow_redirects=False)
    files = {f["filename"]: f for f in page.json()["files"]} if page.status_code == 200 else {}
    return names, files


def test_both_replicas_serve_a_file_once_its_upload_returned_201(registry_stack, site: Site) -> None:
    replicas = registry_stack.index_replica_urls
    assert len(replicas) == 2
    first = make_wheel(site.workdir, "rp-live", "1.0.0", payload=b"first" * 100)
    assert site.upload(first, "rp-live", "1.0.0").status_code == 201
    for replica in replicas:  # warm each replica's page cache, so a stale entry would show
        names, files = replica_view(site, replica, "rp-live")
        assert "rp-live" in names and set(files) == {first.name}
    second = make_wheel(site.workdir, "rp-live", "2.0.0", payload=b"second" * 100)
    fresh = make_wheel(site.workdir, "rp-fresh", "1.0.0")
    assert site.upload(second, "rp-live", "2.0.0").status_code == 201
    assert site.upload(fresh, "rp-fresh", "1.0.0").status_code == 201
    # No waiting: the 201 is only sent once every replica has dropped what changed.
    for replica in replicas:
        names, files = replica_view(site, replica, "rp-live")
        assert "rp-fresh" in names, replica
        assert set(files) == {first.name, second.name}, replica
        url = on_replica(files[second.name]["url"], replica)
        body = site.get(url)
        assert body.status_code == 200 and body.content == site.files[second.name], replica
        metadata = site.get(url + ".metadata")
        assert metadata.status_code == 200 and b"Version: 2.0.0" in metadata.content, replica


def test_neither_replica_serves_a_file_once_its_delete_returned(registry_stack, site: Site) -> None:
    """E13: `DELETE /api/v4/projects/:id/packages/:package_id` (GitLab's Packages API) removes version
    1.0.0; 0.9.0 stays."""
    wheel = make_wheel(site.workdir, "rp-gone", "1.0.0", payload=b"gone" * 100)
    keep = make_wheel(site.workdir, "rp-gone", "0.9.0")
    assert site.upload(keep, "rp-gone", "0.9.0").status_code == 201
    assert site.upload(wheel, "rp-gone", "1.0.0").status_code == 201
    replicas = registry_stack.index_replica_urls
    urls = {}
    for replica in replicas:  # warm both caches, and remember where the file is served
        _, files = replica_view(site, replica, "rp-gone")
        urls[replica] = on_replica(files[wheel.name]["url"], replica)
        assert site.get(urls[replica]).status_code == 200
    packages_url = site.root("project").rsplit("/pypi", 1)[0]  # /api/v4/projects/:id/packages
    listing = site.get(packages_url, params={"package_name": "rp-gone"})
    assert listing.status_code == 200, listing.text
    package_id = next(p["id"] for p in listing.json() if p["name"] == "rp-gone" and p["version"] == "1.0.0")
    response = requests.delete(f"{packages_url}/{package_id}", auth=site.auth, timeout=30)
    assert response.status_code == 204, response.text
    for replica in replicas:
        _, files = replica_view(site, replica, "rp-gone")
        assert wheel.name not in files and keep.name in files, replica
        assert site.get(urls[replica]).status_code == 404, replica
        assert site.get(urls[replica] + ".metadata").status_code == 404, replica

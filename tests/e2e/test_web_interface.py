"""The web interface (SPEC §11) in a real browser (Debian's chromium through Playwright) against the whole
registry behind its gateway: packages uploaded with twine, tenants made with registry-admin."""
from __future__ import annotations

import re
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page

from tests.support.browser import chromium
from tests.support.tenants import private_project

from .clients import fresh_venv, pip_install, twine_upload
from .packages import build_package
from .test_walking_registry import client_env

README = textwrap.dedent("""\
    # Web demo

    A package for the **web interface**.

    ## Usage

    <script>window.pwned = 1; alert("xss")</script>

    <img src="x" onerror="window.pwned = 2">

    [click](javascript:window.pwned=3)
    """)


@pytest.fixture(scope="module")
def site(registry_stack, tmp_path_factory) -> dict[str, Any]:
    """A public project `webpub/tools` with `web-demo` 1.0 and 2.0 (a Markdown README with a script in
    it); a private project `webpriv/secret` with `secret-pkg` 1.0; a maintainer of each."""
    admin = registry_stack.admin
    admin("user", "create", "--username", "web-public-maintainer")
    admin("group", "create", "--path", "webpub", "--visibility", "public")
    public = admin("project", "create", "--path", "webpub/tools", "--visibility", "public")
    admin("member", "add", "--user", "web-public-maintainer", "--project", "webpub/tools", "--role", "maintainer")
    public_token = admin("token", "create", "--user", "web-public-maintainer", "--scopes", "api")["token"]
    private = private_project(registry_stack, "web-private-maintainer", "webpriv/secret", role="maintainer")
    work = tmp_path_factory.mktemp("web")
    upload_url = f"{registry_stack.base_url}/api/v4/projects/{public['id']}/packages/pypi"
    for version in ("1.0", "2.0"):
        dists = build_package(work, "web-demo", version, value=1, readme=README)
        result = twine_upload(dists, client_env(work), "--repository-url", upload_url, "-u", "__token__",
                              "-p", public_token)
        assert result.returncode == 0, result.stdout + result.stderr
    dists = build_package(work, "secret-pkg", "1.0", value=2, readme="Secret things.\n")
    result = twine_upload(dists, client_env(work), "--repository-url", private.upload_url, "-u", "__token__",
                          "-p", private.token)
    assert result.returncode == 0, result.stdout + result.stderr
    return {"public": public, "public_token": public_token, "private": private.project,
            "private_token": private.token}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as found:
        yield found


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context()
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def package_ids(registry_stack, project_id: int, token: str, name: str) -> dict[str, int]:
    """version -> package id, from the Packages API (E10)."""
    answer = requests.get(f"{registry_stack.base_url}/api/v4/projects/{project_id}/packages",
                          params={"package_name": name}, auth=("__token__", token), timeout=30)
    assert answer.status_code == 200, answer.text
    return {p["version"]: p["id"] for p in answer.json()}


def sign_in(page: Page, base: str, token: str) -> None:
    page.goto(f"{base}/-/sign_in")
    page.get_by_label("Personal access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def test_anonymous_visitor_sees_public_packages_only(registry_stack, site, page: Page) -> None:
    base = registry_stack.base_url
    response = page.goto(f"{base}/")
    assert response is not None and response.status == 200
    projects = page.get_by_role("region", name="Projects")
    assert projects.get_by_role("link", name="webpub/tools").count() + projects.get_by_text("webpub/tools").count() > 0
    assert "webpriv" not in page.content()

    page.goto(f"{base}/webpub/tools/-/packages")
    row = page.get_by_role("row", name=re.compile("web-demo"))
    assert "2.0" in row.inner_text() and "End-to-end test package" in row.inner_text()

    secret_ids = package_ids(registry_stack, site["private"]["id"], site["private_token"], "secret-pkg")
    private_pages = ("/webpriv/secret/-/packages", f"/webpriv/secret/-/packages/{secret_ids['1.0']}",
                     "/webpriv/-/packages")
    for path in private_pages:
        response = page.goto(f"{base}{path}")
        assert response is not None and response.status == 404, path
        assert "secret-pkg" not in page.content()


def test_search_filters_by_name_and_summary(registry_stack, site, page: Page) -> None:
    base = registry_stack.base_url
    page.goto(f"{base}/")
    page.get_by_label("Search package names and summaries").fill("web-d")
    page.get_by_role("main").get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/-/search\?q=web-d"))
    results = page.get_by_role("table")
    assert results.get_by_role("link", name="web-demo").count() == 1
    results.get_by_role("link", name="web-demo").click()
    assert page.locator("main > h1").inner_text().startswith("web-demo")

    page.goto(f"{base}/webpub/-/packages")  # the group lists its projects' packages, filterable
    assert page.get_by_role("link", name="web-demo").count() == 1
    page.get_by_label("Filter packages of this group").fill("no-such-package")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"/webpub/-/packages\?q=no-such-package"))
    assert page.get_by_role("link", name="web-demo").count() == 0 and "No packages found." in page.inner_text("main")

    page.goto(f"{base}/-/search?q=end-to-end")  # the summary
    assert page.get_by_role("link", name="web-demo").count() == 1
    page.goto(f"{base}/-/search?q=secret")  # private: not for this visitor
    assert page.get_by_role("link", name="secret-pkg").count() == 0
    assert "0 results" in page.inner_text("main")


def test_readme_renders_markdown_and_never_runs_a_script(registry_stack, site, page: Page) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    ids = package_ids(registry_stack, site["public"]["id"], site["public_token"], "web-demo")
    response = page.goto(f"{registry_stack.base_url}/webpub/tools/-/packages/{ids['2.0']}")
    assert response is not None and response.status == 200
    readme = page.locator("article.readme .rendered")
    assert readme.get_by_role("heading", name="Web demo", level=1).count() == 1
    assert readme.get_by_role("heading", name="Usage", level=2).count() == 1
    assert readme.locator("strong").inner_text() == "web interface"
    assert readme.locator("script").count() == 0  # never reaches the DOM as a tag
    assert readme.locator("[onerror]").count() == 0
    assert readme.locator("a[href^='javascript:']").count() == 0
    assert page.evaluate("window.pwned") is None and dialogs == []
    # The rest of the page: versions, files with their sha256, and install commands without a token.
    versions = page.get_by_role("list", name="Versions")
    assert versions.get_by_role("link", name="1.0").count() == 1
    files = page.get_by_role("table")
    assert files.get_by_text("web_demo-2.0-py3-none-any.whl").count() == 1
    assert re.search(r"[0-9a-f]{64}", files.inner_text())
    assert page.get_by_text("web-public-maintainer").count() >= 1  # the uploader
    commands = page.locator("section.install").inner_text()
    index_url = f"{registry_stack.base_url}/api/v4/projects/{site['public']['id']}/packages/pypi/simple"
    assert f"pip install --index-url {index_url} web-demo==2.0" in commands
    assert "uv pip install" in commands and "poetry add --source registry web-demo==2.0" in commands
    assert site["public_token"] not in page.content()
    assert page.get_by_role("button", name="Delete this version").count() == 0  # anonymous: no forms


def test_sign_in_reveals_private_project_and_revocation_ends_the_session(registry_stack, site, page: Page,
                                                                         context: BrowserContext) -> None:
    admin = registry_stack.admin
    admin("user", "create", "--username", "web-reader")
    admin("member", "add", "--user", "web-reader", "--project", "webpriv/secret", "--role", "reporter")
    created = admin("token", "create", "--user", "web-reader", "--scopes", "read_api")
    base = registry_stack.base_url
    sign_in(page, base, created["token"])
    assert "Signed in as" in page.inner_text("header")
    [cookie] = [c for c in context.cookies() if c["name"] == "registry_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] in ("Lax", "Strict") and created["token"] not in cookie["value"]
    response = page.goto(f"{base}/webpriv/secret/-/packages")
    assert response is not None and response.status == 200
    assert page.get_by_role("link", name="secret-pkg").count() == 1
    page.goto(f"{base}/")
    assert "webpriv/secret" in page.inner_text("main")

    admin("token", "revoke", "--id", str(created["id"]))
    response = page.goto(f"{base}/webpriv/secret/-/packages")  # the very next request
    assert response is not None and response.status == 404
    assert "Signed in as" not in page.inner_text("header")
    assert not [c for c in context.cookies() if c["name"] == "registry_session"]


def test_invalid_token_is_refused_and_sign_out_ends_the_session(registry_stack, site, page: Page) -> None:
    base = registry_stack.base_url
    sign_in(page, base, "glpat-not-a-real-token")
    assert page.get_by_role("alert").inner_text() == "That is not a valid personal access token."
    sign_in(page, base, site["private_token"])
    assert "Signed in as web-private-maintainer" in page.inner_text("header")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/\?notice=signed_out"))
    assert "Signed in as" not in page.inner_text("header")
    response = page.goto(f"{base}/webpriv/secret/-/packages")
    assert response is not None and response.status == 404


def test_maintainer_deletes_a_version_from_the_page(registry_stack, site, page: Page) -> None:
    base = registry_stack.base_url
    project_id = site["public"]["id"]
    ids = package_ids(registry_stack, project_id, site["public_token"], "web-demo")
    simple = f"{base}/api/v4/projects/{project_id}/packages/pypi/simple/web-demo/"
    assert "web_demo-1.0-py3-none-any.whl" in requests.get(simple, timeout=30).text
    sign_in(page, base, site["public_token"])
    page.goto(f"{base}/webpub/tools/-/packages/{ids['1.0']}")
    page.get_by_role("button", name="Delete this version").click()
    page.wait_for_url(re.compile(r"/webpub/tools/-/packages\?notice=deleted"))
    assert page.get_by_role("status").inner_text() == "The version was deleted."
    # Gone from the index at once (the same use case as E13), and from the web pages.
    assert "web_demo-1.0-py3-none-any.whl" not in requests.get(simple, timeout=30).text
    assert "1.0" not in package_ids(registry_stack, project_id, site["public_token"], "web-demo")
    response = page.goto(f"{base}/webpub/tools/-/packages/{ids['1.0']}")
    assert response is not None and response.status == 404


def test_a_form_post_without_its_csrf_token_is_refused(registry_stack, site, page: Page,
                                                       context: BrowserContext) -> None:
    base = registry_stack.base_url
    ids = package_ids(registry_stack, site["public"]["id"], site["public_token"], "web-demo")
    sign_in(page, base, site["public_token"])
    [cookie] = [c for c in context.cookies() if c["name"] == "registry_session"]
    url = f"{base}/webpub/tools/-/packages/{ids['2.0']}/delete"
    for form in ({}, {"csrf_token": "forged"}):
        answer = requests.post(url, data=form, cookies={"registry_session": cookie["value"]}, timeout=30,
                               allow_redirects=False)
        assert answer.status_code == 403, answer.text
        assert "text/html" in answer.headers["Content-Type"]
    # From another site (the browser sends the Lax cookie on no cross-site POST; the token is missing anyway).
    answer = page.request.post(url, form={}, max_redirects=0)
    assert answer.status == 403
    assert "2.0" in package_ids(registry_stack, site["public"]["id"], site["public_token"], "web-demo")


def test_a_cached_package_page_shows_an_upload_once_twine_returns(registry_stack, site, page: Page,
                                                                   tmp_path) -> None:
    base = registry_stack.base_url
    ids = package_ids(registry_stack, site["public"]["id"], site["public_token"], "web-demo")
    url = f"{base}/webpub/tools/-/packages/{ids['2.0']}"
    page.goto(url)  # now in the web replica's page cache
    versions = page.get_by_role("list", name="Versions")
    assert versions.get_by_role("link", name="3.0").count() == 0
    dists = build_package(tmp_path, "web-demo", "3.0", value=3, readme=README)
    upload_url = f"{base}/api/v4/projects/{site['public']['id']}/packages/pypi"
    result = twine_upload(dists, client_env(tmp_path), "--repository-url", upload_url, "-u", "__token__",
                          "-p", site["public_token"])
    assert result.returncode == 0, result.stdout + result.stderr
    page.goto(url)  # the 201 came once every web replica had dropped the page
    assert page.get_by_role("list", name="Versions").get_by_role("link", name="3.0").count() == 1


# -- the maintainer's yank and status forms (SPEC §9, §10, §11) ---------------------------------------

JSON_V1 = "application/vnd.pypi.simple.v1+json"


def upload_versions(registry_stack, site, work: Path, name: str, versions: tuple[str, ...]) -> dict[str, int]:
    upload_url = f"{registry_stack.base_url}/api/v4/projects/{site['public']['id']}/packages/pypi"
    for number, version in enumerate(versions):
        dists = build_package(work, name, version, value=10 + number)
        result = twine_upload(dists, client_env(work), "--repository-url", upload_url, "-u", "__token__",
                              "-p", site["public_token"])
        assert result.returncode == 0, result.stdout + result.stderr
    return package_ids(registry_stack, site["public"]["id"], site["public_token"], name)


def simple_json(registry_stack, site, name: str) -> dict[str, Any]:
    answer = requests.get(f"{registry_stack.base_url}/api/v4/projects/{site['public']['id']}/packages/pypi/simple/"
                          f"{name}/", headers={"Accept": JSON_V1}, timeout=30)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_maintainer_yanks_from_the_page_and_pip_skips_it_unless_pinned(registry_stack, site, page: Page,
                                                                       tmp_path: Path) -> None:
    base = registry_stack.base_url
    ids = upload_versions(registry_stack, site, tmp_path, "web-yank", ("1.0", "2.0"))
    sign_in(page, base, site["public_token"])
    url = f"{base}/webpub/tools/-/packages/{ids['2.0']}"
    page.goto(url)
    form = page.get_by_role("form", name="Yank this version")
    form.get_by_label("Reason (optional)").fill("broken <build>")
    form.get_by_role("button", name="Yank this version").click()
    page.wait_for_url(re.compile(r"\?notice=yanked$"))
    assert page.get_by_role("status").inner_text() == "The version was yanked."
    badge = page.locator("main > h1 .badge.yanked")
    assert badge.inner_text() == "yanked" and badge.get_attribute("title") == "broken <build>"
    states = page.get_by_role("list", name="Status of this version")
    assert "This version is yanked" in states.inner_text() and "Reason: broken <build>" in states.inner_text()
    assert page.get_by_role("button", name="Yank this version", exact=True).count() == 0  # un-yank now
    yanked = {f["filename"]: f["yanked"] for f in simple_json(registry_stack, site, "web-yank")["files"]}
    assert sorted(yanked.values(), key=str) == [False, False, "broken <build>", "broken <build>"], yanked

    python = fresh_venv(tmp_path / "venv")
    index = f"{base}/api/v4/projects/{site['public']['id']}/packages/pypi/simple/"
    env = client_env(tmp_path)
    free = pip_install(python, index, "web-yank", env)
    assert free.returncode == 0 and "web-yank-1.0" in free.stdout, free.stdout + free.stderr
    pinned = pip_install(python, index, "web-yank==2.0", env)
    assert pinned.returncode == 0 and "web-yank-2.0" in pinned.stdout, pinned.stdout + pinned.stderr

    page.get_by_role("button", name="Un-yank this version").click()
    page.wait_for_url(re.compile(r"\?notice=unyanked$"))
    assert page.locator("main > h1 .badge.yanked").count() == 0
    assert all(f["yanked"] is False for f in simple_json(registry_stack, site, "web-yank")["files"])
    removed = subprocess.run([str(python), "-m", "pip", "uninstall", "-y", "web-yank"], capture_output=True,
                             text=True, env=env, timeout=120)
    assert removed.returncode == 0, removed.stderr
    free = pip_install(python, index, "web-yank", env)
    assert free.returncode == 0 and "web-yank-2.0" in free.stdout, free.stdout + free.stderr


def test_maintainer_quarantines_from_the_page_and_the_index_offers_nothing(registry_stack, site, page: Page,
                                                                           tmp_path: Path) -> None:
    base = registry_stack.base_url
    ids = upload_versions(registry_stack, site, tmp_path, "web-status", ("1.0",))
    sign_in(page, base, site["public_token"])
    url = f"{base}/webpub/tools/-/packages/{ids['1.0']}"
    page.goto(url)
    assert page.locator("main > h1 .badge").count() == 0
    form = page.get_by_role("form", name="Set status")
    form.get_by_label("Status").select_option("quarantined")
    form.get_by_label("Reason (optional)").fill("MAL-42 <x>")
    form.get_by_role("button", name="Set status").click()
    page.wait_for_url(re.compile(r"\?notice=status$"))
    badge = page.locator("main > h1 .badge.status-quarantined")
    assert badge.inner_text() == "quarantined" and badge.get_attribute("title") == "MAL-42 <x>"
    assert "Reason: MAL-42 <x>" in page.get_by_role("list", name="Status of this version").inner_text()
    versions = page.get_by_role("list", name="Versions")  # the status holds for every version of the name
    assert versions.locator(".badge.status-quarantined").count() == 1
    body = simple_json(registry_stack, site, "web-status")
    assert body["files"] == [] and body["project-status"] == {"status": "quarantined", "reason": "MAL-42 <x>"}

    # Set back through the API: its answer comes once the web replica dropped what it knew.
    answer = requests.put(f"{base}/api/v4/projects/{site['public']['id']}/packages/pypi/status/web-status",
                          json={"status": "active"}, headers={"PRIVATE-TOKEN": site["public_token"]}, timeout=60)
    assert answer.status_code == 200, answer.text
    page.goto(url)
    assert page.locator("main > h1 .badge").count() == 0
    assert page.get_by_role("form", name="Set status").get_by_label("Status").input_value() == "active"
    assert [f["filename"] for f in simple_json(registry_stack, site, "web-status")["files"]] != []


def test_a_developer_gets_no_maintainer_forms_and_a_forged_post_is_refused(registry_stack, site, page: Page,
                                                                          context: BrowserContext,
                                                                          tmp_path: Path) -> None:
    admin = registry_stack.admin
    admin("user", "create", "--username", "web-developer")
    admin("member", "add", "--user", "web-developer", "--project", "webpub/tools", "--role", "developer")
    developer = admin("token", "create", "--user", "web-developer", "--scopes", "api")["token"]
    base = registry_stack.base_url
    ids = upload_versions(registry_stack, site, tmp_path, "web-guarded", ("1.0",))
    sign_in(page, base, developer)
    page.goto(f"{base}/webpub/tools/-/packages/{ids['1.0']}")
    assert page.get_by_role("region", name="Manage").count() == 0
    for label in ("Yank this version", "Set status", "Delete this version"):
        assert page.get_by_role("button", name=label, exact=True).count() == 0
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    [cookie] = [c for c in context.cookies() if c["name"] == "registry_session"]
    forms = {"yank": {"reason": "forged"}, "unyank": {}, "status": {"status": "quarantined"}, "delete": {}}
    for action, fields in forms.items():
        answer = requests.post(f"{base}/webpub/tools/-/packages/{ids['1.0']}/{action}",
                               data={"csrf_token": csrf, **fields}, cookies={"registry_session": cookie["value"]},
                               timeout=30, allow_redirects=False)
        assert answer.status_code == 403, (action, answer.status_code, answer.text[:300])
    # A project this visitor may not read is a 404, whatever the form.
    secret = package_ids(registry_stack, site["private"]["id"], site["private_token"], "secret-pkg")["1.0"]
    answer = requests.post(f"{base}/webpriv/secret/-/packages/{secret}/yank", data={"csrf_token": csrf},
                           cookies={"registry_session": cookie["value"]}, timeout=30, allow_redirects=False)
    assert answer.status_code == 404, answer.text[:300]
    body = simple_json(registry_stack, site, "web-guarded")
    assert len(body["files"]) == 2 and all(f["yanked"] is False for f in body["files"])
    assert "project-status" not in body or body["project-status"]["status"] == "active"


def test_a_version_the_policy_blocks_shows_a_withheld_badge(registry_stack, site, page: Page, tmp_path: Path) -> None:
    base = registry_stack.base_url
    ids = upload_versions(registry_stack, site, tmp_path, "web-held", ("1.0", "2.0"))
    policy = f"{base}/api/v4/projects/{site['public']['id']}/packages/pypi/policy"
    headers = {"PRIVATE-TOKEN": site["public_token"]}
    rule = {"name": "web-held", "versions": "==1.0", "reason": "MAL-WEB-1"}
    answer = requests.put(policy, json={"blocked": [rule]}, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    try:
        page.goto(f"{base}/webpub/tools/-/packages/{ids['1.0']}")
        badge = page.locator("main > h1 .badge.withheld")
        assert badge.inner_text() == "withheld" and badge.get_attribute("title") == "Blocked by policy: MAL-WEB-1"
        assert page.get_by_role("table").locator(".badge.withheld").count() == 2  # the wheel and the sdist
        page.goto(f"{base}/webpub/tools/-/packages/{ids['2.0']}")
        assert page.locator("main > h1 .badge.withheld").count() == 0
        versions = page.get_by_role("list", name="Versions")
        assert versions.get_by_role("listitem").filter(has_text="1.0").locator(".badge.withheld").count() == 1
        assert versions.get_by_role("listitem").filter(has_text="2.0").locator(".badge.withheld").count() == 0
    finally:
        assert requests.put(policy, json={}, headers=headers, timeout=60).status_code == 200
    page.goto(f"{base}/webpub/tools/-/packages/{ids['1.0']}")  # the policy's answer came once the page knew
    assert page.locator(".badge.withheld").count() == 0


def test_a_delete_protection_rule_refuses_the_maintainer_s_delete_form(registry_stack, site, page: Page,
                                                                       tmp_path: Path) -> None:
    base = registry_stack.base_url
    ids = upload_versions(registry_stack, site, tmp_path, "web-prot", ("1.0",))
    rules = f"{base}/api/v4/projects/{site['public']['id']}/packages/protection/rules"
    headers = {"PRIVATE-TOKEN": site["public_token"]}
    created = requests.post(rules, json={"package_name_pattern": "web-prot*", "package_type": "pypi",
                                         "minimum_access_level_for_delete": "owner"}, headers=headers, timeout=60)
    assert created.status_code == 201, created.text
    try:
        sign_in(page, base, site["public_token"])
        page.goto(f"{base}/webpub/tools/-/packages/{ids['1.0']}")
        with page.expect_response(re.compile(r"/delete$")) as refused:
            page.get_by_role("button", name="Delete this version").click()
        assert refused.value.status == 403
        assert "Package protected." in page.inner_text("main")
        assert "1.0" in package_ids(registry_stack, site["public"]["id"], site["public_token"], "web-prot")
    finally:
        assert requests.delete(f"{rules}/{created.json()['id']}", headers=headers, timeout=60).status_code == 204


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/-/search?q=%00%ff<script>&page=abc", 200),
    ("GET", "/-/search?page=-1", 200),
    ("GET", "/webpub/tools/-/packages?page=999999", 200),
    ("GET", "/webpub/tools/-/packages/999999999999", 404),
    ("GET", "/webpub/tools/-/packages/12345678901234567890", 404),
    ("GET", "/webpub/tools/-/packages/abc", 404),
    ("GET", "/no/such/group/-/packages", 404),
    ("PUT", "/", 405),
    ("POST", "/webpub/tools/-/packages/1/no_such_action", 403),  # no session: refused before anything else
    ("POST", "/upload", 404),  # no such route: not a CSRF refusal
    ("GET", "/-/static/../app.py", 404),
])
def test_bad_input_gets_a_clear_page_never_a_500(registry_stack, site, method: str, path: str, status: int) -> None:
    answer = requests.request(method, f"{registry_stack.base_url}{path}", timeout=30, allow_redirects=False)
    assert answer.status_code == status, answer.text[:300]
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "<script>" not in answer.text.split("<main", 1)[-1]  # what the visitor wrote comes back escaped
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")

#!/usr/bin/env python3
"""Screenshots of the web interface (README.md, "Web interface"), taken with the real browser.

    .venv/bin/python docs/screenshots/make_screenshots.py

Starts a throw-away registry (the test suite's backing servers and deploy/local/stack.py on free ports),
uploads a few packages with twine, and saves the landing, list and package pages as PNGs beside this file
(and a maintainer's view of a version they yanked from its page).
Needs Debian's chromium (`make system-deps`); everything started is stopped again.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.e2e.clients import twine_upload  # noqa: E402
from tests.e2e.test_walking_registry import client_env  # noqa: E402
from tests.support.browser import chromium  # noqa: E402
from tests.support.servers import RegistryStack, start_backing_services  # noqa: E402

OUT = Path(__file__).resolve().parent
README = textwrap.dedent("""\
    # acme-http

    A small, well-typed HTTP client for ACME's internal services: retries, timeouts and tracing built in.

    ## Install

    ```bash
    pip install acme-http
    ```

    ## Usage

    ```python
    from acme_http import Client

    client = Client("https://orders.internal", retries=3)
    print(client.get("/health").json())
    ```

    | Feature   | Since |
    |-----------|-------|
    | Retries   | 1.0   |
    | Tracing   | 1.2   |
    """)
PACKAGES = [  # (name, version, summary, readme)
    ("acme-http", "1.0.0", "HTTP client for ACME services", README),
    ("acme-http", "1.2.0", "HTTP client for ACME services", README),
    ("acme-auth", "0.4.1", "Single sign-on helpers", "Single sign-on helpers for ACME services.\n"),
    ("acme-metrics", "2.1.0", "Prometheus metrics with sensible defaults", "# acme-metrics\n\nMetrics.\n"),
]


def build(workdir: Path, name: str, version: str, summary: str, readme: str) -> list[Path]:
    src = workdir / f"{name}-{version}"
    module = name.replace("-", "_")
    (src / "src" / module).mkdir(parents=True)
    (src / "src" / module / "__init__.py").write_text(f'__version__ = "{version}"\n')
    (src / "README.md").write_text(readme)
    (src / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{name}"
        version = "{version}"
        description = "{summary}"
        readme = {{file = "README.md", content-type = "text/markdown"}}
        requires-python = ">=3.9"
        license = "MIT"
        authors = [{{name = "ACME Platform Team", email = "platform@acme.example"}}]
        dependencies = ["urllib3>=2", "typing-extensions>=4.6; python_version < '3.11'"]
        classifiers = ["Programming Language :: Python :: 3", "Operating System :: OS Independent",
                       "Development Status :: 5 - Production/Stable"]

        [project.urls]
        Homepage = "https://acme.example/{name}"
        Source = "https://git.acme.example/platform/{name}"
        """))
    out = workdir / f"dist-{name}-{version}"
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)], check=True,
                   capture_output=True)
    return sorted(out.iterdir())


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="registry-screenshots-") as tmp:
        work = Path(tmp)
        backing = start_backing_services(work / "backing")
        stack = RegistryStack(work / "var", backing, name="screenshots")
        try:
            stack.up()
            admin = stack.admin
            admin("user", "create", "--username", "ada")
            admin("group", "create", "--path", "acme", "--name", "ACME", "--visibility", "public")
            admin("group", "create", "--path", "acme/platform", "--name", "Platform", "--visibility", "public")
            project = admin("project", "create", "--path", "acme/platform/libs", "--name", "Platform libraries",
                            "--visibility", "public")
            admin("member", "add", "--user", "ada", "--project", "acme/platform/libs", "--role", "maintainer")
            token = admin("token", "create", "--user", "ada", "--scopes", "api")["token"]
            url = f"{stack.base_url}/api/v4/projects/{project['id']}/packages/pypi"
            for name, version, summary, readme in PACKAGES:
                result = twine_upload(build(work, name, version, summary, readme), client_env(work),
                                      "--repository-url", url, "-u", "__token__", "-p", token)
                if result.returncode != 0:
                    raise SystemExit(result.stdout + result.stderr)
            with chromium() as browser:
                page = browser.new_page(viewport={"width": 1200, "height": 800})
                page.goto(f"{stack.base_url}/")
                page.screenshot(path=str(OUT / "landing.png"), full_page=True)
                page.goto(f"{stack.base_url}/acme/platform/libs/-/packages")
                page.screenshot(path=str(OUT / "packages.png"), full_page=True)
                page.get_by_role("link", name="acme-http").click()
                page.wait_for_load_state()
                page.screenshot(path=str(OUT / "package.png"), full_page=True)
                # A maintainer yanks the older release from its page: badges, and the forms of "Manage".
                page.goto(f"{stack.base_url}/-/sign_in")
                page.get_by_label("Personal access token").fill(token)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_load_state()
                page.goto(f"{stack.base_url}/acme/platform/libs/-/packages")
                page.get_by_role("link", name="acme-http").click()
                page.get_by_role("list", name="Versions").get_by_role("link", name="1.0.0").click()
                page.wait_for_load_state()
                form = page.get_by_role("form", name="Yank this version")
                form.get_by_label("Reason (optional)").fill("Retries never stop on HTTP 429: use 1.2.0")
                form.get_by_role("button", name="Yank this version").click()
                page.wait_for_url("**notice=yanked")
                page.screenshot(path=str(OUT / "package-maintainer.png"), full_page=True)
        finally:
            stack.down()
            backing.stop()
    print(f"screenshots written to {OUT}")


if __name__ == "__main__":
    main()

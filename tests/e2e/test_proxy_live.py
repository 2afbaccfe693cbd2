"""The one test against the real pypi.org: pip installs a small public package through a project index of a
whole registry whose proxy's upstream is pypi.org (PROXY_UPSTREAM_URL's default).

Opt-in: it needs the internet and pypi.org, so it runs only with REGISTRY_LIVE_PYPI=1 (never in CI):

    REGISTRY_LIVE_PYPI=1 .venv/bin/python -m pytest tests/e2e/test_proxy_live.py
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import requests

from tests.support.servers import RegistryStack, clean_pip_env

from .clients import fresh_venv, pip_install

pytestmark = [
    pytest.mark.stack, pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("REGISTRY_LIVE_PYPI") != "1",
                       reason="talks to pypi.org: set REGISTRY_LIVE_PYPI=1 to run it"),
]
REQUIREMENT = "iniconfig==2.0.0"  # a small pure-Python wheel without dependencies


def test_pip_installs_a_real_package_from_pypi_through_the_proxy(registry_stack: RegistryStack,
                                                                 tmp_path: Path) -> None:
    admin = registry_stack.admin
    admin("group", "create", "--path", "live", "--visibility", "public")
    project = admin("project", "create", "--path", "live/app", "--visibility", "public")
    simple = f"{registry_stack.base_url}/api/v4/projects/{project['id']}/packages/pypi/simple"

    page = requests.get(f"{simple}/iniconfig/", timeout=120)
    assert page.status_code == 200, page.text
    assert f"{simple.removesuffix('/simple')}/files/" in page.text  # served from the registry, not pypi
    assert "files.pythonhosted.org" not in page.text

    python = fresh_venv(tmp_path / "venv")
    result = pip_install(python, simple, REQUIREMENT, clean_pip_env(home=tmp_path / "home"), "--only-binary", ":all:")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "files.pythonhosted.org" not in result.stdout
    done = subprocess.run([str(python), "-c", "import iniconfig; print(iniconfig.__name__)"], capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.strip() == "iniconfig", done.stderr


def test_a_long_upstream_page_is_listed_whole(registry_stack: RegistryStack) -> None:
    """pypi.org sends long pages in several network reads: every file it lists is listed here too."""
    admin = registry_stack.admin
    admin("group", "create", "--path", "live-long", "--visibility", "public")
    project = admin("project", "create", "--path", "live-long/app", "--visibility", "public")
    simple = f"{registry_stack.base_url}/api/v4/projects/{project['id']}/packages/pypi/simple"
    accept = {"Accept": "application/vnd.pypi.simple.v1+json"}
    upstream = requests.get("https://pypi.org/simple/requests/", headers=accept, timeout=120).json()
    ours = requests.get(f"{simple}/requests/", headers=accept, timeout=120)
    assert ours.status_code == 200, ours.text
    assert len(upstream["files"]) > 100  # a page of tens of kilobytes
    assert sorted(f["filename"] for f in ours.json()["files"]) == sorted(f["filename"] for f in upstream["files"])

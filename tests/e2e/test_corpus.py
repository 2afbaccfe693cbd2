"""Real distributions from PyPI (tests/e2e/corpus.py) upload cleanly with twine (uv for the few twine refuses)
and come back from the registry byte-identical through pip; each file's metadata comes from the file itself."""
from __future__ import annotations

import subprocess
import sys
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from tests.support.servers import clean_pip_env
from tests.support.tenants import private_project

from .clients import twine_upload
from .corpus import CORPUS, Dist, fetch, read_metadata_version, sha256_of


@pytest.fixture(scope="module")
def corpus() -> dict[Dist, Path]:
    with ThreadPoolExecutor(4) as pool:
        return dict(zip(CORPUS, pool.map(fetch, CORPUS), strict=True))


@pytest.fixture(scope="module")
def library(registry_stack) -> dict[str, Any]:
    tenant = private_project(registry_stack, "librarian", "library/pypi-corpus")
    netloc = urllib.parse.urlsplit(registry_stack.base_url).netloc
    index_url = tenant.upload_url.replace(netloc, f"__token__:{tenant.token}@{netloc}") + "/simple"
    return {"project": tenant.project, "token": tenant.token, "upload_url": tenant.upload_url, "index_url": index_url}


def test_corpus_covers_what_the_issue_asks() -> None:
    versions = {d.metadata_version for d in CORPUS}
    assert versions >= {"1.0", "1.1", "1.2", "2.0", "2.1", "2.2", "2.3", "2.4"}
    assert len(CORPUS) >= 15
    assert any(d.filename.endswith(".zip") for d in CORPUS) and any(d.filename.endswith(".tar.gz") for d in CORPUS)
    assert any(d.is_wheel and not d.binary for d in CORPUS) and any("manylinux" in d.filename for d in CORPUS)


def test_metadata_versions_are_those_of_the_files(corpus: dict[Dist, Path]) -> None:
    """The table says what each file's own metadata says (guards the corpus, not the registry)."""
    for dist, path in corpus.items():
        assert read_metadata_version(path) == dist.metadata_version, dist.filename
    assert any(dist.is_wheel and path.stat().st_size > 10 * 1024 * 1024 for dist, path in corpus.items())


def test_corpus_uploads_and_downloads_back_byte_identical(registry_stack, library, corpus: dict[Dist, Path],
                                                          tmp_path: Path) -> None:
    env = clean_pip_env(home=tmp_path / "home")
    by_twine = [path for dist, path in corpus.items() if not dist.twine_refuses]
    by_uv = [path for dist, path in corpus.items() if dist.twine_refuses]
    result = twine_upload(by_twine, env, "--repository-url", library["upload_url"],
                          "-u", "__token__", "-p", library["token"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    published = subprocess.run([str(Path(sys.executable).parent / "uv"), "publish", "--no-progress",
                                "--publish-url", library["upload_url"], "-u", "__token__", "-p", library["token"],
                                *map(str, by_uv)], env=env, capture_output=True, text=True, timeout=300)
    assert published.returncode == 0, published.stdout[-3000:] + published.stderr[-3000:]

    db = MongoClient(registry_stack.env["MONGODB_URL"], tz_aware=True).get_default_database()
    stored = {d["filename"]: d for d in db.distributions.find({"project_id": library["project"]["id"]})}
    for dist, path in corpus.items():
        doc = stored[dist.filename]
        assert doc["state"] == "installable", dist.filename
        assert (doc["sha256"], doc["size"]) == (dist.sha256, path.stat().st_size), dist.filename
        assert doc["metadata_version"] == dist.metadata_version, dist.filename

    def download(dist: Dist) -> tuple[Dist, Path | str]:
        out = tmp_path / "back" / dist.filename
        # Only our index: no pip config (its extra indexes), no cache; sdists' metadata is prepared with the
        # tools of this environment rather than build requirements fetched from an index.
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--no-build-isolation",
               "--index-url", library["index_url"], *dist.pip_selection(), "-d", str(out), dist.requirement]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        got = out / dist.filename
        return dist, got if done.returncode == 0 and got.exists() else done.stdout[-1500:] + done.stderr[-1500:]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(download, corpus))
    for dist, got in results:
        assert isinstance(got, Path), f"pip download {dist.requirement} from the registry failed:\n{got}"
        assert sha256_of(got) == dist.sha256, dist.filename

    # And pip installs from them (pure wheels, so any interpreter will do).
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-cache-dir",
                                "--index-url", library["index_url"], "--target", str(target),
                                "six==1.16.0", "packaging==25.0", "attrs==25.3.0"],
                               env=env, capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    assert (target / "six.py").exists() and (target / "packaging" / "version.py").exists()
    assert (target / "attrs-25.3.0.dist-info" / "RECORD").exists()

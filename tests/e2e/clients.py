"""Real clients as subprocesses (twine, pip, venv) and a raw multipart poster for exact-body checks."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

import requests

BIN = Path(sys.executable).parent


def twine_upload(files: list[Path], env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar", *args, *map(str, files)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def fresh_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    return path / "bin" / "python"


def pip_install(python: Path, index_url: str, requirement: str, env: dict[str, str],
                *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(python), "-m", "pip", "install", "--no-cache-dir", "--index-url", index_url, *extra, requirement]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def post_upload(url: str, token: str, path: Path, *, name: str, version: str, filename: str | None = None,
                content: bytes | None = None, **fields: str) -> requests.Response:
    """POST exactly what twine would, with control over every field."""
    data = content if content is not None else path.read_bytes()
    form = {"name": name, "version": version, "filetype": "bdist_wheel" if path.suffix == ".whl" else "sdist",
            "sha256_digest": hashlib.sha256(data).hexdigest(), ":action": "file_upload", "protocol_version": "1",
            **fields}
    files = {"content": (filename or path.name, data, "application/octet-stream")}
    return requests.post(url, data=form, files=files, auth=("__token__", token), timeout=120)


def without_proxy_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}


def python_env() -> dict[str, str]:
    return dict(os.environ)

"""A corpus of real distributions from PyPI, pinned by version and sha256, cached under `.cache/corpus`.

Chosen to cover what uploads meet in the wild: every core metadata version from 1.0 to 2.4 (read from each
file's own PKG-INFO / METADATA), zip and tar.gz sdists, pure and manylinux wheels, and a wheel over 10 MB.
`pip download` fetches them once (with this machine's normal pip configuration); later runs reuse the cache.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("REGISTRY_CORPUS_DIR") or REPO / ".cache" / "corpus")
# Binary wheels are picked for one platform explicitly, so the corpus is the same whatever runs the tests.
BINARY_TARGET = ("--platform", "manylinux2014_x86_64", "--python-version", "3.11", "--implementation", "cp",
                 "--abi", "cp311")


@dataclass(frozen=True)
class Dist:
    requirement: str  # name==version
    filename: str
    sha256: str
    metadata_version: str  # as the file's own metadata says
    binary: bool = False  # a platform wheel
    # twine validates metadata strictly (packaging's rules) and refuses some files pypi.org accepted; those
    # are published with uv, whose upload is the same form. The reason is what twine says.
    twine_refuses: str = ""

    @property
    def name(self) -> str:
        return self.requirement.split("==")[0]

    @property
    def version(self) -> str:
        return self.requirement.split("==")[1]

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    def pip_selection(self) -> list[str]:
        """pip flags that pick exactly this file of its release."""
        if not self.is_wheel:
            # Only this project from source: with `:all:`, pip would build the sdist's build requirements
            # (Cython for PyYAML) from source too, just to prepare metadata.
            return ["--only-binary", ":all:", "--no-binary", self.name]  # this order: pip lets the later one win
        return ["--only-binary", ":all:", *(BINARY_TARGET if self.binary else ())]


CORPUS = [
    Dist("Markdown==1.7", "markdown-1.7.zip",
         "9600c27dc1266e40f06a94212b0620f97b71195f8dff6521152ac0fcae4b04e9", "1.0"),
    Dist("six==1.1.0", "six-1.1.0.tar.gz",
         "8c421a58100704148fd9ad2e38b05d5646f6d3139ac209dfda4c980d124c75ba", "1.0",
         twine_refuses="classifier introduced in metadata version 1.1, not 1.0"),
    Dist("requests==2.18.4", "requests-2.18.4.tar.gz",
         "9c443e7324ba5b85070c4a818ade28bfabedf16ea10206da1132edaa6dda237e", "1.1"),
    Dist("requests==2.19.1", "requests-2.19.1.tar.gz",
         "ec22d826a36ed72a7358ff3fe56cbd4ba69dd7a6718ffd450ff0e9df7a47ce6a", "1.2",
         twine_refuses="description-content-type introduced in metadata version 2.1, not 1.2"),
    Dist("six==1.10.0", "six-1.10.0-py2.py3-none-any.whl",  # old `wheel` releases wrote 2.0, never a standard
         "0ff78c403d9bccf5a425a6d31a12aa6b47f1c21ca4dc2573a7e2f32a97335eb1", "2.0",
         twine_refuses="'2.0' is not a valid metadata version"),
    Dist("six==1.16.0", "six-1.16.0-py2.py3-none-any.whl",
         "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254", "2.1"),
    Dist("certifi==2024.8.30", "certifi-2024.8.30.tar.gz",
         "bec941d2aa8195e248a60b31ff9f0558284cf01a52591ceda73ea9afffd69fd9", "2.1"),
    Dist("setuptools==75.8.0", "setuptools-75.8.0.tar.gz",
         "c5afc8f407c626b8313a86e10311dd3f661c6cd9c09d4bf8c15c0e11f9f2b0e6", "2.2"),
    Dist("attrs==24.2.0", "attrs-24.2.0-py3-none-any.whl",
         "81921eb96de3191c8258c199618104dd27ac608d9366f5e35d011eae1867ede2", "2.3",
         twine_refuses="license-expression introduced in metadata version 2.4, not 2.3"),
    Dist("packaging==24.2", "packaging-24.2-py3-none-any.whl",
         "09abb1bccd265c01f4a3aa3f7a7db064b36514d2cba19a2f694fe6150451a759", "2.3"),
    Dist("attrs==25.3.0", "attrs-25.3.0-py3-none-any.whl",
         "427318ce031701fea540783410126f03899a97ffc6f61596ad581ac2e40e3bc3", "2.4"),
    Dist("packaging==25.0", "packaging-25.0-py3-none-any.whl",
         "29572ef2b1f17581046b3a2227d5c611fb25ec70ca1ba8554b24b0e69331a484", "2.4"),
    Dist("setuptools==78.1.0", "setuptools-78.1.0.tar.gz",
         "18fd474d4a82a5f83dac888df697af65afa82dec7323d09c3e37d1f14288da54", "2.4"),
    Dist("PyYAML==6.0.2", "pyyaml-6.0.2.tar.gz",
         "d584d9ec91ad65861cc08d42e834324ef890a082e591037abe114850ff7bbc3e", "2.1"),
    Dist("PyYAML==6.0.2", "PyYAML-6.0.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
         "3ad2a3decf9aaba3d29c8f537ac4b243e36bef957511b4766cb0057d32b0be85", "2.1", binary=True),
    Dist("MarkupSafe==3.0.2", "MarkupSafe-3.0.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
         "a123e330ef0853c6e822384873bef7507557d8e4a082961e1defa947aa59ba84", "2.1", binary=True),
    Dist("numpy==2.1.3", "numpy-2.1.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
         "bc6f24b3d1ecc1eebfbf5d6051faa49af40b03be1aaa781ebdadcbc090b4539b", "2.1", binary=True),
]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(dist: Dist, cache: Path = CACHE) -> Path:
    """The cached file, downloaded from PyPI first if missing; fails if its sha256 is not the pinned one."""
    path = cache / dist.filename
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        # Each file into its own scratch directory, then renamed: a half-written download never looks cached.
        scratch = cache / f".download-{dist.filename}"
        scratch.mkdir(exist_ok=True)
        result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                                 *dist.pip_selection(), "-d", str(scratch), dist.requirement],
                                capture_output=True, text=True, timeout=600)
        got = scratch / dist.filename
        if result.returncode != 0 or not got.exists():
            raise RuntimeError(f"pip download {dist.requirement} gave no {dist.filename}:\n"
                               f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
        got.rename(path)
        for leftover in scratch.iterdir():
            leftover.unlink()
        scratch.rmdir()
    digest = sha256_of(path)
    if digest != dist.sha256:
        raise RuntimeError(f"{path} has sha256 {digest}, not the pinned {dist.sha256}: remove it and rerun")
    return path


def read_metadata_version(path: Path) -> str:
    """`Metadata-Version` of a wheel's METADATA or an sdist's top-level PKG-INFO (independent of the worker)."""
    if path.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            wanted = [n for n in names if n.count("/") == 1 and n.endswith((".dist-info/METADATA", "/PKG-INFO"))]
            data = archive.read(wanted[0])
    else:
        with tarfile.open(path) as archive:
            member = next(m for m in archive if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO"))
            extracted = archive.extractfile(member)
            assert extracted is not None
            data = extracted.read()
    found = re.search(rb"^Metadata-Version:[ \t]*(\S+)", data, re.MULTILINE)
    assert found is not None, path
    return found.group(1).decode()

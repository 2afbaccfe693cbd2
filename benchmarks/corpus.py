"""The benchmark corpus, generated deterministically with zipfile/tarfile (BENCHMARKS.md, "Corpus").

- 200 small projects `bench-pkg-000` ... `bench-pkg-199`, version 1.0.0: a ~10 KB wheel and an sdist each;
- `bench-many`: 300 versions (1.0.0 ... 300.0.0), one small wheel each;
- `bench-big` 1.0.0: one wheel of 20 MiB.

The same seed gives the same bytes on every run and machine (fixed timestamps, seeded random payloads),
so uploads of a second run are byte-identical to the first. Every wheel is installable: RECORD lists
each member with its sha256 and size.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import io
import random
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

SMALL_PROJECTS = 200
MANY_VERSIONS = 300
BIG_WHEEL_BYTES = 20 * 1024 * 1024
SMALL_PAYLOAD_BYTES = 9 * 1024  # incompressible bytes in each small wheel: the wheel lands near 10 KB
ZIP_TIME = (2024, 1, 1, 0, 0, 0)
TAR_MTIME = 1704067200  # 2024-01-01T00:00:00Z
REQUIRES_PYTHON = ">=3.8"

SMALL_NAME = "bench-pkg-{:03d}"
MANY_NAME = "bench-many"
BIG_NAME = "bench-big"


@dataclass
class Corpus:
    root: Path
    # One `twine upload` per group: the small projects, the versions of bench-many, the big wheel.
    groups: dict[str, list[Path]] = field(default_factory=dict)

    @property
    def files(self) -> list[Path]:
        return [f for group in self.groups.values() for f in group]

    @property
    def small_name(self) -> str:
        return SMALL_NAME.format(0)

    @property
    def small_wheel(self) -> Path:
        return self.groups["small"][0]

    @property
    def big_wheel(self) -> Path:
        return self.groups["big"][0]


def _module(name: str) -> str:
    return name.replace("-", "_")


def core_metadata(name: str, version: str, summary: str) -> bytes:
    return (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {summary}\n"
            f"Requires-Python: {REQUIRES_PYTHON}\n\n").encode()


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}\n"


def write_wheel(out_dir: Path, name: str, version: str, payload: bytes, summary: str = "Benchmark package") -> Path:
    """`{module}-{version}-py3-none-any.whl` with a package holding `payload` as a data file."""
    module = _module(name)
    dist_info = f"{module}-{version}.dist-info"
    members = [
        (f"{module}/__init__.py", f'VERSION = "{version}"\n'.encode()),
        (f"{module}/payload.bin", payload),
        (f"{dist_info}/METADATA", core_metadata(name, version, summary)),
        (f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: benchmarks.corpus\nRoot-Is-Purelib: true\n"
                               b"Tag: py3-none-any\n\n"),
    ]
    record = "".join(_record_line(path, data) for path, data in members) + f"{dist_info}/RECORD,,\n"
    members.append((f"{dist_info}/RECORD", record.encode()))
    path = out_dir / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in members:
            info = zipfile.ZipInfo(member, ZIP_TIME)
            info.external_attr = 0o644 << 16
            # Payloads are random: deflating them only costs time.
            info.compress_type = zipfile.ZIP_STORED if member.endswith(".bin") else zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return path


def write_sdist(out_dir: Path, name: str, version: str, payload: bytes, summary: str = "Benchmark package") -> Path:
    """`{module}-{version}.tar.gz` with PKG-INFO, pyproject.toml and the package (gzip mtime 0)."""
    module = _module(name)
    top = f"{module}-{version}"
    pyproject = (f'[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
                 f'[project]\nname = "{name}"\nversion = "{version}"\ndescription = "{summary}"\n'
                 f'requires-python = "{REQUIRES_PYTHON}"\n').encode()
    members = [
        (f"{top}/PKG-INFO", core_metadata(name, version, summary)),
        (f"{top}/pyproject.toml", pyproject),
        (f"{top}/src/{module}/__init__.py", f'VERSION = "{version}"\n'.encode()),
        (f"{top}/src/{module}/payload.bin", payload),
    ]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for member, data in members:
            info = tarfile.TarInfo(member)
            info.size, info.mtime, info.mode = len(data), TAR_MTIME, 0o644
            info.uname = info.gname = "bench"
            tar.addfile(info, io.BytesIO(data))
    path = out_dir / f"{top}.tar.gz"
    with open(path, "wb") as out, gzip.GzipFile(filename="", fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return path


def generate(root: Path, seed: int = 2024, small_projects: int = SMALL_PROJECTS,
             many_versions: int = MANY_VERSIONS, big_bytes: int = BIG_WHEEL_BYTES) -> Corpus:
    """Write the corpus under `root` (emptied first); about a second."""
    rng = random.Random(seed)
    corpus = Corpus(root)
    for group in ("small", "many", "big"):
        directory = root / group
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.iterdir():
            old.unlink()
    small: list[Path] = []
    for i in range(small_projects):
        name = SMALL_NAME.format(i)
        payload = rng.randbytes(SMALL_PAYLOAD_BYTES)
        small.append(write_wheel(root / "small", name, "1.0.0", payload))
        small.append(write_sdist(root / "small", name, "1.0.0", payload[:1024]))
    corpus.groups["small"] = small
    corpus.groups["many"] = [write_wheel(root / "many", MANY_NAME, f"{v}.0.0", rng.randbytes(512))
                             for v in range(1, many_versions + 1)]
    corpus.groups["big"] = [write_wheel(root / "big", BIG_NAME, "1.0.0", rng.randbytes(big_bytes))]
    return corpus


if __name__ == "__main__":
    import sys
    import time

    started = time.perf_counter()
    made = generate(Path(sys.argv[1] if len(sys.argv) > 1 else ".bench/corpus"))
    sizes = sum(f.stat().st_size for f in made.files)
    print(f"{len(made.files)} files, {sizes / 2**20:.1f} MiB in {time.perf_counter() - started:.2f} s")

"""What an acceptable distribution is, independent of how its bytes are read: the limits, the verdict
types, and the rules over member names and core metadata (SPEC §4 "Contents are checked").

Limits are read as `rules.NAME` at call time by the readers, so a test may lower one with monkeypatch.
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from registry_shared.adapters.readers import ObjectReadError
from registry_shared.domain.metadata import metadata_version_supported, parse_core_metadata
from registry_shared.domain.names import normalize_name
from registry_shared.domain.text import printable
from registry_shared.domain.versions import canonical_version

MAX_METADATA_SIZE = 5 * 1024 * 1024
# A wheel's RECORD lists every member (about 100 bytes a line): room for far more than MAX_MEMBERS lines.
MAX_RECORD_SIZE = 64 * 1024 * 1024
# A member (or a gzip stream) that expands more than BOMB_RATIO times and beyond BOMB_MIN_SIZE bytes
# is a decompression bomb; small, highly compressible files (a RECORD of zeros) stay legal.
BOMB_RATIO = 100
BOMB_MIN_SIZE = 10 * 1024 * 1024
# Far more members than any real distribution has; bounds the work one upload can cause (and the central
# directory zipfile holds in memory, and the table of members a streamed zip keeps until its end).
MAX_MEMBERS = 200_000
# A central directory entry is 46 bytes plus name, extra field and comment: 64 MiB holds MAX_MEMBERS
# entries with 280-byte names; a larger one is not a distribution.
MAX_CENTRAL_DIRECTORY = 64 * 1024 * 1024
STREAM_CHUNK = 64 * 1024


class InvalidDistribution(Exception):
    """The file is not an acceptable distribution. `reason` is what follows `Invalid distribution file: `."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return f"Invalid distribution file: {self.reason}"


@contextlib.contextmanager
def content_errors(reason: str) -> Iterator[None]:
    """Turn whatever a parser raises over the archive's bytes into `InvalidDistribution(reason)`.

    Malformed bytes reach parsers through paths nobody enumerated (a PAX field that is not a number:
    ValueError; a flipped "version needed" byte: NotImplementedError; struct.error, OverflowError,
    UnicodeError, IndexError ...), and retrying them cannot help. A failing read is the exception:
    `ObjectReadError` propagates, as does `MemoryError` (this process's trouble, not the file's), and
    any BaseException (an aborted stream)."""
    try:
        yield
    except (InvalidDistribution, ObjectReadError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - every other failure over the bytes is a content problem
        raise InvalidDistribution(reason) from exc


class ArchiveFormat(StrEnum):
    WHEEL = "wheel"
    SDIST_ZIP = "sdist-zip"
    SDIST_TAR = "sdist-tar-gz"


@dataclass(frozen=True)
class Expected:
    """What the file's name promised: the normalised name and the canonical version."""

    name: str
    version: str
    # How the uploader spelled them, for messages (`1.0` reads better than its canonical `1`).
    display_name: str = ""
    display_version: str = ""


@dataclass(frozen=True)
class Inspection:
    """An accepted archive: its core metadata bytes, parsed, and where they were found; the members read
    and the bytes they expand to (0 when a stored zip was read through its central directory)."""

    metadata_bytes: bytes
    metadata: dict[str, object]
    metadata_path: str
    members: int = 0
    uncompressed_size: int = 0


def archive_format(filename: str) -> ArchiveFormat:
    """The archive format a distribution's filename promises."""
    lower = filename.lower()
    if lower.endswith(".whl"):
        return ArchiveFormat.WHEEL
    if lower.endswith(".zip"):
        return ArchiveFormat.SDIST_ZIP
    if lower.endswith(".tar.gz"):
        return ArchiveFormat.SDIST_TAR
    raise InvalidDistribution("unsupported file type (expected .whl, .tar.gz or .zip)")


def not_a_zip(fmt: ArchiveFormat) -> str:
    """The reason given when a file named as a zip is not one."""
    if fmt is ArchiveFormat.WHEEL:
        return "a wheel (.whl) must be a zip archive"
    return "a .zip sdist must be a zip archive"


def check_member_path(name: str) -> None:
    """Refuse absolute member paths (`/x`, `\\x`, `C:x`) and any `..` component."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise InvalidDistribution(f"absolute member path {show(name)}")
    if ".." in re.split(r"[/\\]", name):
        raise InvalidDistribution(f"member path {show(name)} contains '..'")


def single_top_level(names: Iterable[str]) -> str:
    """The one top-level directory every member lives under; refuse files at the root or a second one."""
    tops: set[str] = set()
    for name in names:
        first, sep, _rest = name.partition("/")
        if not sep:
            raise InvalidDistribution(f"{show(name)} is outside the top-level directory")
        tops.add(first)
    if not tops:
        raise InvalidDistribution("missing PKG-INFO")
    if len(tops) > 1:
        raise InvalidDistribution("several top-level directories")
    return tops.pop()


def dist_info_project(top: str) -> str:
    """The project a `<name>-<version>.dist-info` directory names, normalised."""
    stem = top[: -len(".dist-info")]
    return normalize_name(stem.rpartition("-")[0] or stem)


def wheel_dist_info(names: Iterable[str], expected: Expected) -> str:
    """The wheel's one `.dist-info` directory, which must name the project and hold METADATA and RECORD."""
    names = set(names)
    tops = {n.split("/", 1)[0] for n in names if "/" in n}
    dist_infos = sorted(t for t in tops if t.endswith(".dist-info"))
    if not dist_infos:
        raise InvalidDistribution("missing .dist-info directory")
    if len(dist_infos) > 1:
        raise InvalidDistribution(f"several .dist-info directories ({', '.join(show(d) for d in dist_infos)})")
    top = dist_infos[0]
    # pip refuses a wheel whose .dist-info directory names another project.
    if dist_info_project(top) != expected.name:
        raise InvalidDistribution(f"the .dist-info directory ({show(top)}) does not match the file name")
    for required in ("METADATA", "RECORD"):
        if f"{top}/{required}" not in names:
            raise InvalidDistribution(f"missing .dist-info/{required}")
    return top


def check_metadata(data: bytes, path: str, expected: Expected) -> Inspection:
    """Parse core metadata and require a Metadata-Version we read, and its Name and Version to be the file's."""
    with content_errors("unreadable core metadata"):
        metadata = parse_core_metadata(data)
    metadata_version = metadata.get("metadata_version")
    if not metadata_version_supported(None if metadata_version is None else str(metadata_version)):
        raise InvalidDistribution(f"unsupported Metadata-Version {show(str(metadata_version))} "
                                  "(1.0 to 2.x are accepted)")
    name = str(metadata.get("name") or "")
    version = str(metadata.get("version") or "")
    if not name:
        raise InvalidDistribution("the core metadata has no Name")
    if not version:
        raise InvalidDistribution("the core metadata has no Version")
    if normalize_name(name) != expected.name:
        raise InvalidDistribution(
            f"the name in the core metadata ({show(name)}) does not match the file name "
            f"({expected.display_name or expected.name})")
    if canonical_version(version) != expected.version:
        raise InvalidDistribution(
            f"the version in the core metadata ({show(version)}) does not match the file name "
            f"({expected.display_version or expected.version})")
    return Inspection(metadata_bytes=data, metadata=metadata, metadata_path=path)


def is_bomb(size: int, compressed: int) -> bool:
    return size > BOMB_MIN_SIZE and size > BOMB_RATIO * max(compressed, 1)


def show(value: str, limit: int = 120) -> str:
    """A member name fit for an error message: printable (no controls, no lone surrogates from undecodable
    bytes, which would make the verdict unserialisable), bounded length, quoted."""
    clean = printable(value)
    if len(clean) > limit:
        clean = clean[: limit - 3] + "..."
    return f"'{clean}'"

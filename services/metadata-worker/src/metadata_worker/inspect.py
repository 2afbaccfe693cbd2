"""Archive inspection: is this file the wheel or sdist its name says, and what is its core metadata?

Pure, blocking functions over file-like objects; callers run them in a worker thread. A wheel or a
`.zip` sdist is read through a seekable file, touching only the central directory (every entry is
checked) and the metadata member. A `.tar.gz` sdist is read through a forward-only stream to its end,
every member header checked as it passes, with memory bounded whatever the member count.

Whatever the bytes make a parser raise (tarfile, zipfile, zlib, the email parser: `ValueError`,
`NotImplementedError`, `struct.error`, ...) is a content problem and raises `InvalidDistribution`. A
failing reader raises `ObjectReadError`, which propagates unchanged, so the caller can tell a bad file
from a storage outage (and retry only the latter).
"""
from __future__ import annotations

import contextlib
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import IO

from registry_shared.adapters.readers import ObjectReadError, PullReader
from registry_shared.domain.metadata import metadata_version_supported, parse_core_metadata
from registry_shared.domain.names import normalize_name
from registry_shared.domain.text import printable
from registry_shared.domain.versions import canonical_version

MAX_METADATA_SIZE = 5 * 1024 * 1024
# A member (or a gzip stream) that expands more than BOMB_RATIO times and beyond BOMB_MIN_SIZE bytes
# is a decompression bomb; small, highly compressible files (a RECORD of zeros) stay legal.
BOMB_RATIO = 100
BOMB_MIN_SIZE = 10 * 1024 * 1024
# Far more members than any real distribution has; bounds the work one upload can cause (and the central
# directory zipfile holds in memory).
MAX_MEMBERS = 200_000
STREAM_CHUNK = 64 * 1024

_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, struct.error, OSError, OverflowError)


class InvalidDistribution(Exception):
    """The file is not an acceptable distribution. `reason` is what follows `Invalid distribution file: `."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return f"Invalid distribution file: {self.reason}"


@contextlib.contextmanager
def _content_errors(reason: str) -> Iterator[None]:
    """Turn whatever a parser raises over the archive's bytes into `InvalidDistribution(reason)`.

    Malformed bytes reach parsers through paths nobody enumerated (a PAX field that is not a number:
    ValueError; a flipped "version needed" byte: NotImplementedError; struct.error, OverflowError,
    UnicodeError, IndexError ...), and retrying them cannot help. A failing read is the exception:
    `ObjectReadError` propagates, as does `MemoryError` (this process's trouble, not the file's)."""
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
    """An accepted archive: its core metadata bytes, parsed, and where they were found."""

    metadata_bytes: bytes
    metadata: dict[str, object]
    metadata_path: str


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


# -- wheels and zip sdists ---------------------------------------------------------------------

def inspect_wheel(fp: IO[bytes], expected: Expected) -> Inspection:
    """Check a wheel read through a seekable file: one `*.dist-info/` with METADATA and RECORD."""
    with _content_errors("corrupt zip archive"), _open_zip(fp, "a wheel (.whl) must be a zip archive") as zf:
        infos = zf.infolist()
        check_zip_members(infos)
        names = {info.filename for info in infos}
        tops = {n.split("/", 1)[0] for n in names if "/" in n}
        dist_infos = sorted(t for t in tops if t.endswith(".dist-info"))
        if not dist_infos:
            raise InvalidDistribution("missing .dist-info directory")
        if len(dist_infos) > 1:
            raise InvalidDistribution(f"several .dist-info directories ({', '.join(_show(d) for d in dist_infos)})")
        top = dist_infos[0]
        # pip refuses a wheel whose .dist-info directory names another project.
        dist_name = top[: -len(".dist-info")].rpartition("-")[0] or top[: -len(".dist-info")]
        if normalize_name(dist_name) != expected.name:
            raise InvalidDistribution(f"the .dist-info directory ({_show(top)}) does not match the file name")
        for required in ("METADATA", "RECORD"):
            if f"{top}/{required}" not in names:
                raise InvalidDistribution(f"missing .dist-info/{required}")
        path = f"{top}/METADATA"
        data = _read_zip_member(zf, zf.getinfo(path), ".dist-info/METADATA")
    return check_metadata(data, path, expected)


def inspect_sdist_zip(fp: IO[bytes], expected: Expected) -> Inspection:
    """Check a `.zip` sdist read through a seekable file: `<top>/PKG-INFO`, one top-level directory."""
    with _content_errors("corrupt zip archive"), _open_zip(fp, "a .zip sdist must be a zip archive") as zf:
        infos = zf.infolist()
        check_zip_members(infos)
        top = single_top_level(info.filename for info in infos)
        path = f"{top}/PKG-INFO"
        info = zf.NameToInfo.get(path)
        if info is None or info.is_dir():
            raise InvalidDistribution("missing PKG-INFO")
        data = _read_zip_member(zf, info, "PKG-INFO")
    return check_metadata(data, path, expected)


def check_zip_members(infos: Iterable[zipfile.ZipInfo]) -> None:
    """Refuse unsafe paths, duplicate members and decompression bombs, judged from every entry of the
    central directory (whatever their order: an unsafe entry after the metadata file is refused too)."""
    seen: set[str] = set()
    total_size = total_compressed = 0
    for info in infos:
        if len(seen) >= MAX_MEMBERS:
            raise InvalidDistribution("too many members")
        check_member_path(info.filename)
        if info.filename in seen:
            raise InvalidDistribution(f"duplicate member {_show(info.filename)}")
        seen.add(info.filename)
        if _is_bomb(info.file_size, info.compress_size):
            raise InvalidDistribution(f"member {_show(info.filename)} has a suspicious compression ratio (zip bomb)")
        total_size += info.file_size
        total_compressed += info.compress_size
    if _is_bomb(total_size, total_compressed):
        raise InvalidDistribution("suspicious compression ratio (zip bomb)")


class _ZipContext:
    """`with _open_zip(...) as zf`: corrupt central directories become InvalidDistribution."""

    def __init__(self, fp: IO[bytes], not_zip: str) -> None:
        self.fp = fp
        self.not_zip = not_zip
        self.zf: zipfile.ZipFile | None = None

    def __enter__(self) -> zipfile.ZipFile:
        try:
            self.zf = zipfile.ZipFile(self.fp)
        except zipfile.BadZipFile as exc:
            raise InvalidDistribution(self.not_zip) from exc
        except _ZIP_ERRORS as exc:
            raise InvalidDistribution("corrupt zip archive") from exc
        return self.zf

    def __exit__(self, *_exc: object) -> None:
        assert self.zf is not None
        self.zf.close()


_open_zip = _ZipContext


def _read_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> bytes:
    if info.file_size > MAX_METADATA_SIZE:
        raise InvalidDistribution(f"{label} is too large")
    try:
        with zf.open(info) as member:
            # Read one byte past the limit: the central directory's size may lie.
            data = member.read(MAX_METADATA_SIZE + 1)
    except NotImplementedError as exc:
        raise InvalidDistribution(f"{label} uses an unsupported compression method") from exc
    except RuntimeError as exc:  # zipfile's way of saying "encrypted"
        raise InvalidDistribution(f"{label} is encrypted") from exc
    except _ZIP_ERRORS as exc:
        raise InvalidDistribution("corrupt zip archive") from exc
    if len(data) > MAX_METADATA_SIZE:
        raise InvalidDistribution(f"{label} is too large")
    return data


# -- .tar.gz sdists ----------------------------------------------------------------------------

def inspect_sdist_tar(stream: IO[bytes], expected: Expected) -> Inspection:
    """Check a `.tar.gz` sdist from a forward-only stream, every member to the end of the archive.

    Each member must have a safe path under the one top-level directory, and each link must stay inside
    it: an unsafe member after PKG-INFO is refused as surely as one before it.
    """
    with _content_errors("corrupt tar.gz archive"):
        gunzip = GunzipReader(stream)
        try:
            tar = tarfile.open(fileobj=gunzip, mode="r|", tarinfo=_StrictTarInfo)  # noqa: SIM115 - closed below
        except (tarfile.TarError, EOFError) as exc:
            raise InvalidDistribution("a .tar.gz sdist must be a gzip-compressed tar archive") from exc
        try:
            inspection = _scan_tar(tar, expected)
        finally:
            tar.close()
        # tarfile stops at the end-of-archive blocks; the gzip stream's last bytes (its CRC-32 and size) are
        # only checked once it is read to its end, so a file cut inside them would otherwise pass.
        while gunzip.read(STREAM_CHUNK):
            pass
        return inspection


class _StrictTarInfo(tarfile.TarInfo):
    """tarfile takes an invalid header after the first member for the end of the archive and stops there,
    while GNU tar skips it and extracts what follows: a member hidden behind a garbage block would go
    unchecked. Only a zero block (or the end of the data) ends an archive here; anything else is corrupt."""

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(tarfile_)
        except (tarfile.InvalidHeaderError, tarfile.TruncatedHeaderError) as exc:
            if tarfile_.offset == 0:
                raise  # not a tar at all: tarfile.open says so
            raise InvalidDistribution("corrupt tar.gz archive: a member header is invalid") from exc


def _scan_tar(tar: tarfile.TarFile, expected: Expected) -> Inspection:
    top: str | None = None
    metadata: bytes | None = None
    seen = 0
    while (member := tar.next()) is not None:
        seen += 1
        if seen > MAX_MEMBERS:
            raise InvalidDistribution("too many members")
        # A stream cannot go back, so tarfile's list of members is useless to us; keep memory flat.
        tar.members.clear()
        name = _strip_dot_slash(member.name)
        if not name:
            continue
        top = _check_tar_member(name, member, top)
        if name == f"{top}/PKG-INFO":
            # Tools disagree on which of two copies wins (the first, the last), so neither can be trusted.
            if metadata is not None:
                raise InvalidDistribution(f"duplicate member {_show(name)}")
            metadata = _read_tar_member(tar, member)
    if top is None or metadata is None:
        raise InvalidDistribution("missing PKG-INFO")
    return check_metadata(metadata, f"{top}/PKG-INFO", expected)


def _check_tar_member(name: str, member: tarfile.TarInfo, top: str | None) -> str:
    """Refuse an unsafe member; returns the archive's top-level directory (this member's, if it is the first)."""
    check_member_path(name)
    first, sep, _rest = name.partition("/")
    if not sep and not member.isdir():
        raise InvalidDistribution(f"{_show(name)} is outside the top-level directory")
    if top is None:
        top = first
    elif first != top:
        raise InvalidDistribution("several top-level directories")
    if member.issym() or member.islnk():
        _check_link_target(name, member, top)
    elif member.ischr() or member.isblk() or member.isfifo():
        raise InvalidDistribution(f"member {_show(name)} is a device or a FIFO")
    return top


def _read_tar_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    if not member.isfile():
        raise InvalidDistribution("PKG-INFO is not a regular file")
    if member.size > MAX_METADATA_SIZE:
        raise InvalidDistribution("PKG-INFO is too large")
    extracted = tar.extractfile(member)
    assert extracted is not None
    return extracted.read(MAX_METADATA_SIZE + 1)


class GunzipReader(PullReader):
    """A blocking `read()` of the gzip-decompressed bytes of `raw`, refusing decompression bombs.

    Decompressing here rather than in tarfile lets the expansion ratio be checked while bytes flow,
    before a bomb has been expanded, and with output bounded to one chunk at a time.
    """

    def __init__(self, raw: IO[bytes], chunk: int = STREAM_CHUNK) -> None:
        super().__init__()
        self._raw = raw
        self._chunk = chunk
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._started = False
        self.compressed = 0
        self.decompressed = 0

    def _read_raw(self) -> bytes:
        data = self._raw.read(self._chunk)
        self.compressed += len(data)
        if not self._started:
            self._started = True
            if not data.startswith(b"\x1f\x8b"):
                raise InvalidDistribution("a .tar.gz sdist must be a gzip-compressed tar archive")
        return data

    def _pull(self) -> None:
        if self._z.unconsumed_tail:
            data = self._z.unconsumed_tail
        elif self._z.eof:
            data = self._z.unused_data or self._read_raw()
            # Another gzip member may follow (concatenated gzip); anything else is trailing padding.
            if not data.startswith(b"\x1f\x8b"):
                self._eof = True
                return
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        else:
            data = self._read_raw()
            if not data:
                raise InvalidDistribution("truncated gzip stream")
        try:
            out = self._z.decompress(data, self._chunk)
        except zlib.error as exc:
            raise InvalidDistribution("corrupt gzip stream") from exc
        self.decompressed += len(out)
        if _is_bomb(self.decompressed, self.compressed):
            raise InvalidDistribution("suspicious compression ratio (gzip bomb)")
        self._buffer += out


# -- shared rules -----------------------------------------------------------------------------

def check_member_path(name: str) -> None:
    """Refuse absolute member paths (`/x`, `\\x`, `C:x`) and any `..` component."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise InvalidDistribution(f"absolute member path {_show(name)}")
    if ".." in re.split(r"[/\\]", name):
        raise InvalidDistribution(f"member path {_show(name)} contains '..'")


def single_top_level(names: Iterable[str]) -> str:
    """The one top-level directory every member lives under; refuse files at the root or a second one."""
    tops: set[str] = set()
    for name in names:
        first, sep, _rest = name.partition("/")
        if not sep:
            raise InvalidDistribution(f"{_show(name)} is outside the top-level directory")
        tops.add(first)
    if not tops:
        raise InvalidDistribution("missing PKG-INFO")
    if len(tops) > 1:
        raise InvalidDistribution("several top-level directories")
    return tops.pop()


def check_metadata(data: bytes, path: str, expected: Expected) -> Inspection:
    """Parse core metadata and require a Metadata-Version we read, and its Name and Version to be the file's."""
    with _content_errors("unreadable core metadata"):
        metadata = parse_core_metadata(data)
    metadata_version = metadata.get("metadata_version")
    if not metadata_version_supported(None if metadata_version is None else str(metadata_version)):
        raise InvalidDistribution(f"unsupported Metadata-Version {_show(str(metadata_version))} "
                                  "(1.0 to 2.x are accepted)")
    name = str(metadata.get("name") or "")
    version = str(metadata.get("version") or "")
    if not name:
        raise InvalidDistribution("the core metadata has no Name")
    if not version:
        raise InvalidDistribution("the core metadata has no Version")
    if normalize_name(name) != expected.name:
        raise InvalidDistribution(
            f"the name in the core metadata ({_show(name)}) does not match the file name "
            f"({expected.display_name or expected.name})")
    if canonical_version(version) != expected.version:
        raise InvalidDistribution(
            f"the version in the core metadata ({_show(version)}) does not match the file name "
            f"({expected.display_version or expected.version})")
    return Inspection(metadata_bytes=data, metadata=metadata, metadata_path=path)


def _check_link_target(name: str, member: tarfile.TarInfo, top: str) -> None:
    """Refuse a link whose target is absolute or resolves outside `top` (or passes through the archive
    root on its way: conservative, as no real sdist needs it). Symlinks resolve from their own
    directory, hard links from the archive root."""
    target = member.linkname
    if target.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", target):
        raise InvalidDistribution(f"link {_show(name)} points to an absolute path")
    outside = InvalidDistribution(f"link {_show(name)} points outside the top-level directory")
    resolved = name.split("/")[:-1] if member.issym() else []
    for part in re.split(r"[/\\]", target):
        if part == "..":
            if len(resolved) <= 1:  # to the archive root, or above it
                raise outside
            resolved.pop()
        elif part not in ("", "."):
            resolved.append(part)
    if not resolved or resolved[0] != top:
        raise outside


def _strip_dot_slash(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return "" if name == "." else name


def _is_bomb(size: int, compressed: int) -> bool:
    return size > BOMB_MIN_SIZE and size > BOMB_RATIO * max(compressed, 1)


def _show(value: str, limit: int = 120) -> str:
    """A member name fit for an error message: printable (no controls, no lone surrogates from undecodable
    bytes, which would make the verdict unserialisable), bounded length, quoted."""
    clean = printable(value)
    if len(clean) > limit:
        clean = clean[: limit - 3] + "..."
    return f"'{clean}'"

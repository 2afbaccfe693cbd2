"""A stored wheel or `.zip` sdist read through a seekable file (a ranged reader over the object store):
zipfile touches only the central directory (every entry is checked) and the metadata member."""
from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterable

from ..adapters.readers import SeekableReader
from . import rules
from .rules import (
    ArchiveFormat,
    Expected,
    Inspection,
    InvalidDistribution,
    check_member_path,
    check_metadata,
    content_errors,
    is_bomb,
    not_a_zip,
    show,
    single_top_level,
    wheel_dist_info,
)

_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, struct.error, OSError, OverflowError)


def inspect_wheel(fp: SeekableReader, expected: Expected) -> Inspection:
    """Check a wheel read through a seekable file: one `*.dist-info/` with METADATA and RECORD."""
    with content_errors("corrupt zip archive"), _ZipContext(fp, not_a_zip(ArchiveFormat.WHEEL)) as zf:
        infos = zf.infolist()
        check_zip_members(infos)
        top = wheel_dist_info((info.filename for info in infos), expected)
        path = f"{top}/METADATA"
        data = _read_zip_member(zf, zf.getinfo(path), ".dist-info/METADATA")
    return check_metadata(data, path, expected)


def inspect_sdist_zip(fp: SeekableReader, expected: Expected) -> Inspection:
    """Check a `.zip` sdist read through a seekable file: `<top>/PKG-INFO`, one top-level directory."""
    with content_errors("corrupt zip archive"), _ZipContext(fp, not_a_zip(ArchiveFormat.SDIST_ZIP)) as zf:
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
        if len(seen) >= rules.MAX_MEMBERS:
            raise InvalidDistribution("too many members")
        check_member_path(info.filename)
        if info.filename in seen:
            raise InvalidDistribution(f"duplicate member {show(info.filename)}")
        seen.add(info.filename)
        if is_bomb(info.file_size, info.compress_size):
            raise InvalidDistribution(f"member {show(info.filename)} has a suspicious compression ratio (zip bomb)")
        total_size += info.file_size
        total_compressed += info.compress_size
    if is_bomb(total_size, total_compressed):
        raise InvalidDistribution("suspicious compression ratio (zip bomb)")


class _ZipContext:
    """`with _ZipContext(...) as zf`: corrupt central directories become InvalidDistribution."""

    def __init__(self, fp: SeekableReader, not_zip: str) -> None:
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


def _read_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> bytes:
    limit = rules.MAX_METADATA_SIZE
    if info.file_size > limit:
        raise InvalidDistribution(f"{label} is too large")
    try:
        with zf.open(info) as member:
            # Read one byte past the limit: the central directory's size may lie.
            data = member.read(limit + 1)
    except NotImplementedError as exc:
        raise InvalidDistribution(f"{label} uses an unsupported compression method") from exc
    except RuntimeError as exc:  # zipfile's way of saying "encrypted"
        raise InvalidDistribution(f"{label} is encrypted") from exc
    except _ZIP_ERRORS as exc:
        raise InvalidDistribution("corrupt zip archive") from exc
    if len(data) > limit:
        raise InvalidDistribution(f"{label} is too large")
    return data

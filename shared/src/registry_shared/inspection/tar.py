"""`.tar.gz` sdists, read forward only to the end of the archive: every member header is checked as it
passes, with memory bounded whatever the member count."""
from __future__ import annotations

import dataclasses
import re
import tarfile
import zlib
from typing import Self

from registry_shared.adapters.readers import ForwardReader, PullReader

from . import rules
from .rules import (
    Expected,
    Inspection,
    InvalidDistribution,
    check_member_path,
    check_metadata,
    content_errors,
    is_bomb,
    show,
)

NOT_A_TAR_GZ = "a .tar.gz sdist must be a gzip-compressed tar archive"


def inspect_sdist_tar(stream: ForwardReader, expected: Expected) -> Inspection:
    """Check a `.tar.gz` sdist from a forward-only stream, every member to the end of the archive.

    Each member must have a safe path under the one top-level directory, and each link must stay inside
    it: an unsafe member after PKG-INFO is refused as surely as one before it.
    """
    return scan_sdist_tar(stream, expected)


def scan_sdist_tar(stream: ForwardReader, expected: Expected, *, max_metadata: int | None = None) -> Inspection:
    """`inspect_sdist_tar` with its metadata limit. The gzip stream is read to its end, so a file cut
    inside its trailer (CRC-32, size) or with a wrong CRC is refused, and what follows the tar's
    end-of-archive blocks must be zeros (`tar -i` would extract members hidden there). Bytes after the
    gzip stream are padding, as they always were."""
    limit = rules.MAX_METADATA_SIZE if max_metadata is None else max_metadata
    with content_errors("corrupt tar.gz archive"):
        gunzip = GunzipReader(stream)
        try:
            tar = tarfile.open(fileobj=gunzip, mode="r|", tarinfo=_StrictTarInfo)  # noqa: SIM115 - closed below
        except (tarfile.TarError, EOFError) as exc:
            raise InvalidDistribution(NOT_A_TAR_GZ) from exc
        try:
            inspection = _scan_tar(tar, expected, limit)
            _read_past_the_end(tar)
        finally:
            tar.close()
    return dataclasses.replace(inspection, uncompressed_size=gunzip.decompressed)


def _read_past_the_end(tar: tarfile.TarFile) -> None:
    # tarfile stops at the first end-of-archive block; its stream reads the gzip stream on from there.
    while data := tar.fileobj.read(rules.STREAM_CHUNK):
        if data.count(0) != len(data):
            raise InvalidDistribution("corrupt tar.gz archive: data after the end of the archive")


# Not in typeshed's tarfile, though tarfile defines and raises them.
_HEADER_ERRORS = (tarfile.InvalidHeaderError, tarfile.TruncatedHeaderError)  # type: ignore[attr-defined]


class _StrictTarInfo(tarfile.TarInfo):
    """tarfile takes an invalid header after the first member for the end of the archive and stops there,
    while GNU tar skips it and extracts what follows: a member hidden behind a garbage block would go
    unchecked. Only a zero block (or the end of the data) ends an archive here; anything else is corrupt."""

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Self:
        try:
            return super().fromtarfile(tarfile_)
        except _HEADER_ERRORS as exc:
            if tarfile_.offset == 0:
                raise  # not a tar at all: tarfile.open says so
            raise InvalidDistribution("corrupt tar.gz archive: a member header is invalid") from exc


def _scan_tar(tar: tarfile.TarFile, expected: Expected, limit: int) -> Inspection:
    top: str | None = None
    metadata: bytes | None = None
    seen = 0
    while (member := tar.next()) is not None:
        seen += 1
        if seen > rules.MAX_MEMBERS:
            raise InvalidDistribution("too many members")
        # A stream cannot go back, so tarfile's list of members is useless to us; keep memory flat.
        tar.members.clear()  # type: ignore[attr-defined]  # not in typeshed: tarfile's list of members read
        name = _strip_dot_slash(member.name)
        if not name:
            continue
        top = _check_tar_member(name, member, top)
        if name == f"{top}/PKG-INFO":
            # Tools disagree on which of two copies wins (the first, the last), so neither can be trusted.
            if metadata is not None:
                raise InvalidDistribution(f"duplicate member {show(name)}")
            metadata = _read_tar_member(tar, member, limit)
    if top is None or metadata is None:
        raise InvalidDistribution("missing PKG-INFO")
    return dataclasses.replace(check_metadata(metadata, f"{top}/PKG-INFO", expected), members=seen)


def _check_tar_member(name: str, member: tarfile.TarInfo, top: str | None) -> str:
    """Refuse an unsafe member; returns the archive's top-level directory (this member's, if it is the first)."""
    check_member_path(name)
    first, sep, _rest = name.partition("/")
    if not sep and not member.isdir():
        raise InvalidDistribution(f"{show(name)} is outside the top-level directory")
    if top is None:
        top = first
    elif first != top:
        raise InvalidDistribution("several top-level directories")
    if member.issym() or member.islnk():
        _check_link_target(name, member, top)
    elif member.ischr() or member.isblk() or member.isfifo():
        raise InvalidDistribution(f"member {show(name)} is a device or a FIFO")
    return top


def _read_tar_member(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if not member.isfile():
        raise InvalidDistribution("PKG-INFO is not a regular file")
    if member.size > limit:
        raise InvalidDistribution("PKG-INFO is too large")
    extracted = tar.extractfile(member)
    assert extracted is not None
    return extracted.read(limit + 1)


class GunzipReader(PullReader):
    """A blocking `read()` of the gzip-decompressed bytes of `raw`, refusing decompression bombs.

    Decompressing here rather than in tarfile lets the expansion ratio be checked while bytes flow,
    before a bomb has been expanded, and with output bounded to one chunk at a time.
    """

    def __init__(self, raw: ForwardReader, chunk: int | None = None) -> None:
        super().__init__()
        self._raw = raw
        self._chunk = chunk or rules.STREAM_CHUNK
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
                raise InvalidDistribution(NOT_A_TAR_GZ)
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
        if is_bomb(self.decompressed, self.compressed):
            raise InvalidDistribution("suspicious compression ratio (gzip bomb)")
        self._buffer += out


def _check_link_target(name: str, member: tarfile.TarInfo, top: str) -> None:
    """Refuse a link whose target is absolute or resolves outside `top` (or passes through the archive
    root on its way: conservative, as no real sdist needs it). Symlinks resolve from their own
    directory, hard links from the archive root."""
    target = member.linkname
    if target.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", target):
        raise InvalidDistribution(f"link {show(name)} points to an absolute path")
    outside = InvalidDistribution(f"link {show(name)} points outside the top-level directory")
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

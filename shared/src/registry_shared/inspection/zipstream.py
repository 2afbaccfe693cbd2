"""A wheel or `.zip` sdist read forward only, as it is uploaded: each local header as it passes, every
member decompressed (stored or deflate) with its CRC-32, sizes and, for wheels, sha256 checked; then the
central directory, which must describe exactly the members that were checked (pip reads the directory,
so what it sees must be what was checked), and the end records.

Policies (documented in the package's __init__):
- the archive starts with its first local header (or the end record, when empty): bytes prepended to it,
  which zipfile tolerates (self-extracting archives), are refused as "not a zip archive";
- it ends with the end record and its comment: trailing bytes are refused (zipfile would take the last
  end record it finds there), and so is a comment holding an end-record signature;
- nothing between members: each member's data is followed by its data descriptor (if flagged) and then
  the next header;
- a member flagged with a data descriptor is supported when deflated (the deflate stream says where it
  ends); stored, its size is unknown until its end and it is refused.
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass

from ..adapters.readers import ForwardReader
from . import rules
from .record import check_record
from .rules import (
    ArchiveFormat,
    Expected,
    Inspection,
    InvalidDistribution,
    check_member_path,
    check_metadata,
    dist_info_project,
    is_bomb,
    not_a_zip,
    show,
    single_top_level,
    wheel_dist_info,
)

LOCAL = b"PK\x03\x04"
CENTRAL = b"PK\x01\x02"
DESCRIPTOR = b"PK\x07\x08"
END = b"PK\x05\x06"
END64 = b"PK\x06\x06"
LOCATOR64 = b"PK\x06\x07"
MAX_EXTRACT_VERSION = 63  # zipfile refuses anything newer (NotImplementedError)
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_END = struct.Struct("<4sHHHHIIH")
_END64 = struct.Struct("<4sQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<4sIQI")
_FLAG_ENCRYPTED, _FLAG_DESCRIPTOR, _FLAG_PATCHED, _FLAG_STRONG, _FLAG_UTF8 = 0x1, 0x8, 0x20, 0x40, 0x800
STORED, DEFLATED = 0, 8
_MAX32 = 0xFFFFFFFF
CORRUPT = "corrupt zip archive"
DISAGREES = "the central directory disagrees with the local headers"


class Truncated(Exception):
    """The stream ended inside a structure: no end record, so not a zip archive."""


class Input:
    """Forward-only reads over a blocking `read(n)` stream, counting the offset, with a small lookahead."""

    def __init__(self, stream: ForwardReader) -> None:
        self._stream = stream
        self._buf = bytearray()
        self.offset = 0  # of the next byte not yet consumed

    def peek(self, n: int) -> bytes:
        while len(self._buf) < n:
            data = self._stream.read(max(n - len(self._buf), rules.STREAM_CHUNK))
            if not data:
                break
            self._buf += data
        return bytes(self._buf[:n])

    def exact(self, n: int) -> bytes:
        data = self.peek(n)
        if len(data) < n:
            raise Truncated
        del self._buf[:n]
        self.offset += n
        return data

    def some(self, limit: int) -> bytes:
        """Between 1 and `limit` bytes; Truncated at the end of the stream."""
        if self._buf:
            data = bytes(self._buf[:limit])
            del self._buf[:limit]
        else:
            data = self._stream.read(min(limit, rules.STREAM_CHUNK))
            if len(data) > limit:  # a reader may return more than asked: keep the rest
                self._buf += data[limit:]
                data = data[:limit]
        if not data:
            raise Truncated
        self.offset += len(data)
        return data

    def unread(self, data: bytes) -> None:
        self._buf[:0] = data
        self.offset -= len(data)

    def at_end(self) -> bool:
        return not self.peek(1)


@dataclass(frozen=True)
class Member:
    """A member as its local header and its data showed it: what the central directory must repeat."""

    name: str  # as decoded, before zipfile's cut at a NUL
    method: int
    crc: int
    compressed: int
    size: int


class ZipScan:
    """One pass over a zip: `run()` returns the inspection or raises InvalidDistribution."""

    def __init__(self, stream: ForwardReader, fmt: ArchiveFormat, expected: Expected, max_metadata: int) -> None:
        self.inp = Input(stream)
        self.fmt = fmt
        self.expected = expected
        self.max_metadata = max_metadata
        self.members: dict[int, Member] = {}  # by local header offset
        self.names: list[str] = []  # as zipfile names them, in archive order
        self.seen: set[str] = set()
        self.digests: dict[str, tuple[bytes, int]] = {}  # wheels: file member -> sha256, size
        self.captured: dict[str, bytearray] = {}  # metadata (and RECORD) candidates, at most a few
        self.total_size = 0

    def run(self) -> Inspection:
        try:
            if self.inp.peek(4) not in (LOCAL, END, END64):
                raise InvalidDistribution(not_a_zip(self.fmt))
            while self.inp.peek(4) == LOCAL:
                self._member()
            self._central_directory()
        except Truncated as exc:
            raise InvalidDistribution(not_a_zip(self.fmt)) from exc
        return self._verdict()

    # -- local headers and data -------------------------------------------------------------------

    def _member(self) -> None:
        offset = self.inp.offset
        (_sig, version, flags, method, _time, _date, crc, compressed, size, name_len,
         extra_len) = _LOCAL.unpack(self.inp.exact(_LOCAL.size))
        raw_name = self.inp.exact(name_len)
        extra = self.inp.exact(extra_len)
        if version > MAX_EXTRACT_VERSION or flags & _FLAG_PATCHED:
            raise InvalidDistribution(CORRUPT)
        decoded = _decode(raw_name, flags)
        name = decoded.split("\0", 1)[0]  # zipfile's name for it
        if len(self.names) >= rules.MAX_MEMBERS:
            raise InvalidDistribution("too many members")
        check_member_path(name)
        if name in self.seen:
            raise InvalidDistribution(f"duplicate member {show(name)}")
        self.seen.add(name)
        self.names.append(name)
        label = self._label(name)
        if flags & (_FLAG_ENCRYPTED | _FLAG_STRONG):
            raise InvalidDistribution(f"{label} is encrypted")
        if method not in (STORED, DEFLATED):
            raise InvalidDistribution(f"{label} uses an unsupported compression method")
        zip64 = _zip64_extra(extra)
        if zip64 is not None:
            size, compressed, _ = _widen(zip64, size, compressed, None)
        descriptor = bool(flags & _FLAG_DESCRIPTOR)
        if descriptor and method == STORED:
            raise InvalidDistribution(f"{label} is stored with a data descriptor (its size is unknown until its "
                                      "end), which is not supported")
        if not descriptor:
            self._check_declared(name, label, size, compressed)
        data = _MemberData(self, name, label, None if descriptor else compressed, None if descriptor else size)
        if method == STORED:
            data.stored(compressed)
        else:
            data.deflated()
        if descriptor:
            crc, compressed, size = self._descriptor(data, zip64 is not None)
        if data.crc != crc:
            raise InvalidDistribution(self._corrupt(name, "fails its CRC check"))
        if data.size != size or data.compressed != compressed:
            raise InvalidDistribution(self._corrupt(name, "does not match the sizes in its header"))
        self.members[offset] = Member(decoded, method, crc, compressed, size)
        self.total_size += size
        if data.hasher is not None and not name.endswith("/"):
            self.digests[name] = (data.hasher.digest(), size)

    def _label(self, name: str) -> str:
        """How messages name a member: the metadata member as today's messages do."""
        kind = self._candidate(name)
        if kind == "METADATA":
            return ".dist-info/METADATA"
        if kind == "PKG-INFO":
            return "PKG-INFO"
        return f"member {show(name)}"

    def _candidate(self, name: str) -> str | None:
        """Which file this member may be, that the verdict will need: METADATA, RECORD, PKG-INFO or none."""
        top, sep, rest = name.partition("/")
        if not sep or "/" in rest:
            return None
        if self.fmt is ArchiveFormat.WHEEL:
            if top.endswith(".dist-info") and rest in ("METADATA", "RECORD") and dist_info_project(top) == (
                    self.expected.name):
                return rest
            return None
        return "PKG-INFO" if rest == "PKG-INFO" else None

    def _corrupt(self, name: str, what: str) -> str:
        # The metadata member's damage keeps today's reason (zipfile's BadZipFile: "corrupt zip archive").
        return CORRUPT if self._candidate(name) in ("METADATA", "PKG-INFO") else f"member {show(name)} {what}"

    def _check_declared(self, name: str, label: str, size: int, compressed: int) -> None:
        if is_bomb(size, compressed):
            raise InvalidDistribution(f"member {show(name)} has a suspicious compression ratio (zip bomb)")
        if self._candidate(name) in ("METADATA", "PKG-INFO") and size > self.max_metadata:
            raise InvalidDistribution(f"{label} is too large")

    def _descriptor(self, data: _MemberData, zip64: bool) -> tuple[int, int, int]:
        """The data descriptor after a deflated member: its signature is optional, so both layouts are
        tried, and the one agreeing with what was read wins."""
        layout = struct.Struct("<I" + ("QQ" if zip64 else "II"))
        head = self.inp.peek(4 + layout.size)
        actual = (data.crc, data.compressed, data.size)
        candidates = [(4, head[4:])] if head[:4] == DESCRIPTOR else []
        candidates.append((0, head[: layout.size]))
        for skip, body in candidates:
            if len(body) == layout.size and layout.unpack(body) == actual:
                self.inp.exact(skip + layout.size)
                return actual
        skip, body = candidates[0]
        if len(body) < layout.size:
            raise Truncated
        self.inp.exact(skip + layout.size)
        return layout.unpack(body)  # disagrees: the caller says how

    # -- central directory and end records --------------------------------------------------------

    def _central_directory(self) -> None:
        start = self.inp.offset
        referenced: set[int] = set()
        last_entry = b""
        while self.inp.peek(4) == CENTRAL:
            last_entry = self._central_entry(referenced)
            if self.inp.offset - start > rules.MAX_CENTRAL_DIRECTORY:
                raise InvalidDistribution("the central directory is too large")
        if len(referenced) != len(self.members):
            raise InvalidDistribution(DISAGREES)
        size = self.inp.offset - start
        count = len(referenced)
        zip64 = self.inp.peek(4) == END64
        if zip64:
            self._end64(count, size, start)
        elif last_entry[-20:].startswith(LOCATOR64):
            # zipfile would take these bytes for a zip64 locator and read a zip64 record out of the directory.
            raise InvalidDistribution(CORRUPT)
        record = self.inp.exact(_END.size)
        sig, disk, cd_disk, disk_count, total, cd_size, cd_offset, comment_len = _END.unpack(record)
        if sig != END:
            raise InvalidDistribution(CORRUPT)
        agrees = (disk == cd_disk == 0 and _same(disk_count, count, zip64, 0xFFFF)
                  and _same(total, count, zip64, 0xFFFF) and _same(cd_size, size, zip64, _MAX32)
                  and _same(cd_offset, start, zip64, _MAX32))
        if not agrees:
            raise InvalidDistribution(DISAGREES)
        comment = self.inp.exact(comment_len)
        if END in (record + comment)[1:]:
            # zipfile takes the last end record it finds near the end of the file.
            raise InvalidDistribution(CORRUPT)
        if not self.inp.at_end():
            raise InvalidDistribution("data after the end of the zip archive")

    def _central_entry(self, referenced: set[int]) -> bytes:
        fixed = self.inp.exact(_CENTRAL.size)
        (_sig, _made_by, version, flags, method, _time, _date, crc, compressed, size, name_len, extra_len,
         comment_len, disk, _internal, _external, offset) = _CENTRAL.unpack(fixed)
        raw_name = self.inp.exact(name_len)
        extra = self.inp.exact(extra_len)
        comment = self.inp.exact(comment_len)
        if version > MAX_EXTRACT_VERSION or flags & (_FLAG_PATCHED | _FLAG_STRONG):
            raise InvalidDistribution(CORRUPT)
        zip64 = _zip64_extra(extra)
        if zip64 is not None:
            size, compressed, offset = _widen(zip64, size, compressed, offset)
        member = self.members.get(offset)
        if (member is None or offset in referenced or disk != 0 or flags & _FLAG_ENCRYPTED
                or member != Member(_decode(raw_name, flags), method, crc, compressed, size)):
            raise InvalidDistribution(DISAGREES)
        referenced.add(offset)
        return fixed + raw_name + extra + comment

    def _end64(self, count: int, size: int, start: int) -> None:
        at = self.inp.offset
        (_sig, record_size, _made_by, _version, disk, cd_disk, disk_count, total, cd_size,
         cd_offset) = _END64.unpack(self.inp.exact(_END64.size))
        # zipfile reads a fixed-size record right before the locator: no extensible data sector.
        if record_size != _END64.size - 12 or disk != 0 or cd_disk != 0:
            raise InvalidDistribution(CORRUPT)
        if (disk_count, total, cd_size, cd_offset) != (count, count, size, start):
            raise InvalidDistribution(DISAGREES)
        sig, locator_disk, record_at, disks = _LOCATOR64.unpack(self.inp.exact(_LOCATOR64.size))
        if sig != LOCATOR64 or locator_disk != 0 or record_at != at or disks > 1:
            raise InvalidDistribution(CORRUPT)

    # -- the verdict ------------------------------------------------------------------------------

    def _verdict(self) -> Inspection:
        if self.fmt is ArchiveFormat.WHEEL:
            top = wheel_dist_info(self.names, self.expected)
            path = f"{top}/METADATA"
            check_record(bytes(self.captured[f"{top}/RECORD"]), top, self.digests)
        else:
            top = single_top_level(self.names)
            path = f"{top}/PKG-INFO"
            if path not in self.captured:
                raise InvalidDistribution("missing PKG-INFO")
        inspection = check_metadata(bytes(self.captured[path]), path, self.expected)
        return Inspection(inspection.metadata_bytes, inspection.metadata, inspection.metadata_path,
                          members=len(self.names), uncompressed_size=self.total_size)


class _MemberData:
    """A member's data as it streams: decompressed in bounded pieces, CRC-32 (and sha256 for wheels)
    computed, expansion watched, and the metadata candidates kept."""

    def __init__(self, scan: ZipScan, name: str, label: str, compressed: int | None, size: int | None) -> None:
        self.scan = scan
        self.name = name
        self.label = label
        self.declared_compressed = compressed
        self.declared_size = size
        self.crc = 0
        self.size = 0
        self.compressed = 0
        self.hasher = hashlib.sha256() if scan.fmt is ArchiveFormat.WHEEL else None
        kind = scan._candidate(name)
        self.limit = rules.MAX_RECORD_SIZE if kind == "RECORD" else scan.max_metadata
        self.too_large = ".dist-info/RECORD is too large" if kind == "RECORD" else f"{label} is too large"
        # At most two candidates of a kind are kept: a third means several .dist-info directories (or
        # top-level directories), refused anyway, and must not make memory grow.
        self.kept: bytearray | None = None
        if kind is not None and sum(1 for k in scan.captured if k.endswith("/" + kind)) < 2:
            self.kept = scan.captured[name] = bytearray()

    def stored(self, length: int) -> None:
        remaining = length
        while remaining:
            data = self.scan.inp.some(min(remaining, rules.STREAM_CHUNK))
            remaining -= len(data)
            self.compressed += len(data)
            self._output(data)

    def deflated(self) -> None:
        z = zlib.decompressobj(-zlib.MAX_WBITS)
        remaining = self.declared_compressed
        try:
            while not z.eof:
                if remaining == 0:
                    raise InvalidDistribution(self.scan._corrupt(self.name, "does not match the sizes in its header"))
                piece = rules.STREAM_CHUNK if remaining is None else min(remaining, rules.STREAM_CHUNK)
                data = self.scan.inp.some(piece)
                if remaining is not None:
                    remaining -= len(data)
                self._inflate(z, data)
        except zlib.error as exc:
            raise InvalidDistribution(self.scan._corrupt(self.name, "is corrupt (its data does not inflate)")) from exc
        if z.unused_data:
            if self.declared_compressed is not None:
                raise InvalidDistribution(self.scan._corrupt(self.name, "does not match the sizes in its header"))
            self.scan.inp.unread(z.unused_data)
        self.compressed -= len(z.unused_data)

    def _inflate(self, z: zlib._Decompress, data: bytes) -> None:
        self.compressed += len(data)
        while True:
            out = z.decompress(data, rules.STREAM_CHUNK)
            self._output(out)
            data = z.unconsumed_tail
            # A full output piece may leave output pending inside zlib even with no input left.
            if z.eof or (not data and len(out) < rules.STREAM_CHUNK):
                return

    def _output(self, out: bytes) -> None:
        if not out:
            return
        self.size += len(out)
        self.crc = zlib.crc32(out, self.crc)
        if self.hasher is not None:
            self.hasher.update(out)
        self._watch()
        if self.kept is not None:
            self.kept += out
            if len(self.kept) > self.limit:
                raise InvalidDistribution(self.too_large)

    def _watch(self) -> None:
        """Stop a bomb while it expands: against the declared compressed size as today's rule (or what was
        read of it, when a descriptor holds the sizes), and the whole archive against what was read of it."""
        if self.declared_size is not None and self.size > self.declared_size:
            raise InvalidDistribution(self.scan._corrupt(self.name, "does not match the sizes in its header"))
        compressed = self.declared_compressed if self.declared_compressed is not None else self.compressed
        if is_bomb(self.size, compressed):
            raise InvalidDistribution(f"member {show(self.name)} has a suspicious compression ratio (zip bomb)")
        if is_bomb(self.scan.total_size + self.size, self.scan.inp.offset):
            raise InvalidDistribution("suspicious compression ratio (zip bomb)")


def scan_zip(stream: ForwardReader, fmt: ArchiveFormat, expected: Expected, *, max_metadata: int | None = None
             ) -> Inspection:
    """Inspect a wheel (`fmt` WHEEL) or a `.zip` sdist from a forward-only blocking stream, to its end."""
    limit = rules.MAX_METADATA_SIZE if max_metadata is None else max_metadata
    return ZipScan(stream, fmt, expected, limit).run()


def _decode(raw: bytes, flags: int) -> str:
    # As zipfile decodes names: UTF-8 when flagged, cp437 otherwise.
    return raw.decode("utf-8" if flags & _FLAG_UTF8 else "cp437")


def _zip64_extra(extra: bytes) -> bytes | None:
    """The data of the zip64 extended information field, if the extra field has one."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, at)
        if at + 4 + length > len(extra):
            if kind == 1:
                raise InvalidDistribution(CORRUPT)
            return None  # some writers pad the extra field; zipfile ignores what is left
        if kind == 1:
            return extra[at + 4: at + 4 + length]
        at += 4 + length
    return None


def _widen(zip64: bytes, size: int, compressed: int, offset: int | None) -> tuple[int, int, int]:
    """Replace the 32-bit fields set to 0xFFFFFFFF by the zip64 field's values, in the order zipfile reads them."""
    values = []
    for value in (size, compressed, offset):
        if value == _MAX32:
            if len(zip64) < 8:
                raise InvalidDistribution(CORRUPT)
            value = struct.unpack_from("<Q", zip64)[0]
            zip64 = zip64[8:]
        values.append(-1 if value is None else value)
    return values[0], values[1], values[2]


def _same(recorded: int, actual: int, zip64: bool, marker: int) -> bool:
    return recorded == actual or (zip64 and recorded == marker)

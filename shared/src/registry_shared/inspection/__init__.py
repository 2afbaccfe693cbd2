"""Archive inspection: is this file the wheel or sdist its name says, and what is its core metadata?

Pure and blocking; nothing here touches the network or the loop.

- `StreamingInspector` (streaming.py) inspects an upload from its chunks as they pass, in one forward pass
  with flat memory: every member of a wheel or `.zip` sdist decompressed and checked (paths, duplicates,
  CRC-32, sizes, compression ratios, for wheels each member's sha256 against RECORD) and the central
  directory required to agree with the local headers (zipstream.py, record.py); every member of a
  `.tar.gz` sdist (tar.py).
- `inspect_wheel` / `inspect_sdist_zip` (ranged.py) read a stored zip through a seekable file, touching
  only its central directory and metadata member; `inspect_sdist_tar` (tar.py) reads a stored `.tar.gz`
  forward. The metadata worker uses them on files already in storage.
- rules.py holds the verdict types, the limits and the rules every reader applies.

Whatever malformed bytes make a parser raise is `InvalidDistribution` (`reason` follows
`Invalid distribution file: `, always printable); a failing storage read is `ObjectReadError`.

Zip policies of the streaming reader: the archive must start with a local header (prepended bytes are
refused as "not a zip archive") and end with its end record and comment (trailing bytes are refused);
a stored member with a data descriptor is refused (its size is unknown until its end), a deflated one is
read; only stored and deflate members are accepted; RECORD hashes must be sha256; the metadata member's
damage (CRC, bad deflate data) keeps today's reason, "corrupt zip archive".
"""
from .ranged import check_zip_members, inspect_sdist_zip, inspect_wheel
from .rules import (
    BOMB_MIN_SIZE,
    BOMB_RATIO,
    MAX_CENTRAL_DIRECTORY,
    MAX_MEMBERS,
    MAX_METADATA_SIZE,
    MAX_RECORD_SIZE,
    STREAM_CHUNK,
    ArchiveFormat,
    Expected,
    Inspection,
    InvalidDistribution,
    archive_format,
    check_member_path,
    check_metadata,
    content_errors,
    single_top_level,
)
from .streaming import PIPE_LIMIT, StreamingInspector
from .tar import GunzipReader, inspect_sdist_tar, scan_sdist_tar
from .zipstream import scan_zip

__all__ = [
    "BOMB_MIN_SIZE", "BOMB_RATIO", "MAX_CENTRAL_DIRECTORY", "MAX_MEMBERS", "MAX_METADATA_SIZE", "MAX_RECORD_SIZE",
    "PIPE_LIMIT", "STREAM_CHUNK", "ArchiveFormat", "Expected", "GunzipReader", "Inspection", "InvalidDistribution",
    "StreamingInspector", "archive_format", "check_member_path", "check_metadata", "check_zip_members",
    "content_errors", "inspect_sdist_tar", "inspect_sdist_zip", "inspect_wheel", "scan_sdist_tar", "scan_zip",
    "single_top_level",
]

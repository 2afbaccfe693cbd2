"""A wheel's RECORD against the members that streamed by (the wheel spec, "The .dist-info directory"):
every hashed entry must match its member, every member must be listed, every entry must exist."""
from __future__ import annotations

import base64
import csv
import io

from .rules import InvalidDistribution, show

# Not listed in RECORD, or listed without a hash: RECORD itself and its signatures.
UNHASHED = ("RECORD", "RECORD.jws", "RECORD.p7s")


def check_record(record: bytes, top: str, digests: dict[str, tuple[bytes, int]]) -> None:
    """`digests` maps every file member (not directories) to its sha256 digest and size."""
    listed: set[str] = set()
    for row in _rows(record):
        path, hash_, size = (row + ["", ""])[:3]
        if path in listed:
            raise InvalidDistribution(f"RECORD lists {show(path)} twice")
        listed.add(path)
        found = digests.get(path)
        if found is None:
            if path.endswith("/") and not hash_:
                continue  # a directory entry, as some tools list them
            raise InvalidDistribution(f"RECORD lists {show(path)}, which is not in the archive")
        digest, actual_size = found
        if hash_:
            algorithm, _, value = hash_.partition("=")
            if algorithm != "sha256":
                raise InvalidDistribution(
                    f"RECORD gives {show(path)} a hash other than sha256 ({show(algorithm)})")
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != value.rstrip("="):
                raise InvalidDistribution(f"member {show(path)} does not match its RECORD hash")
        if size and size != str(actual_size):
            raise InvalidDistribution(f"member {show(path)} does not match its RECORD size")
    exempt = {f"{top}/{name}" for name in UNHASHED}
    for name in digests:
        if name not in listed and name not in exempt:
            raise InvalidDistribution(f"member {show(name)} is missing from RECORD")


def _rows(record: bytes) -> list[list[str]]:
    try:
        return [row for row in csv.reader(io.StringIO(record.decode("utf-8"), newline="")) if row]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InvalidDistribution(".dist-info/RECORD is unreadable (not UTF-8 CSV)") from exc

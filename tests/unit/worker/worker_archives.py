"""Builders of small distributions for the worker's tests: wheels and sdists made in memory."""
from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from unittest import mock

Entry = tuple[str, bytes]
# A member whose header the test shapes itself (a link, PAX fields), with its data.
Member = tuple[tarfile.TarInfo, bytes]


def core_metadata(name: str = "demo-pkg", version: str = "1.0", *, extra: str = "",
                  description: str = "A demo package.\n") -> bytes:
    return (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: demo summary\n"
        f"Requires-Python: >=3.8\nRequires-Dist: requests>=2\nRequires-Dist: attrs; extra == 'x'\n"
        f"Description-Content-Type: text/markdown\n{extra}\n{description}"
    ).encode()


def zip_of(entries: Iterable[Entry], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data, compress_type=compression)
    return buf.getvalue()


def record_hash(data: bytes) -> str:
    """A RECORD hash as the wheel spec writes it: urlsafe base64 of the sha256 digest, unpadded."""
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def record_of(entries: Iterable[Entry], record_path: str) -> bytes:
    """The RECORD of `entries`: each with its hash and size, RECORD itself last and unhashed."""
    lines = [f"{name},{record_hash(data)},{len(data)}" for name, data in entries if not name.endswith("/")]
    return "\n".join([*lines, f"{record_path},,", ""]).encode()


def wheel_entries(name: str = "demo_pkg", version: str = "1.0", metadata: bytes | None = None,
                  extra: Iterable[Entry] = ()) -> list[Entry]:
    """A wheel's members, `extra` among them, and a RECORD listing them all (the last member)."""
    info = f"{name}-{version}.dist-info"
    entries = [
        (f"{name}/__init__.py", b"VALUE = 1\n"),
        (f"{info}/METADATA", metadata if metadata is not None else core_metadata(name.replace("_", "-"), version)),
        (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
        *extra,
    ]
    return [*entries, (f"{info}/RECORD", record_of(entries, f"{info}/RECORD"))]


def without(entries: Iterable[Entry], suffix: str) -> list[Entry]:
    """The entries but those whose name ends with `suffix`."""
    return [(n, d) for n, d in entries if not n.endswith(suffix)]


def corrupt_wheel() -> bytes:
    """A stored (uncompressed) wheel whose METADATA bytes no longer match their CRC."""
    data = bytearray(zip_of(wheel_entries(), compression=zipfile.ZIP_STORED))
    marker = data.find(b"Summary: demo summary")
    data[marker: marker + 7] = b"XXXXXXX"
    return bytes(data)


def wheel(name: str = "demo_pkg", version: str = "1.0", metadata: bytes | None = None,
          extra: Iterable[Entry] = ()) -> bytes:
    """A wheel whose RECORD lists every member, `extra` (placed before RECORD) included."""
    return zip_of(wheel_entries(name, version, metadata, extra))


@contextlib.contextmanager
def _zip64_everywhere() -> Iterator[None]:
    # zipfile writes zip64 fields only past its limits; lowered, every size, offset and count is zip64.
    with mock.patch.object(zipfile, "ZIP64_LIMIT", 0), mock.patch.object(zipfile, "ZIP_FILECOUNT_LIMIT", 0):
        yield


def zip64_of(entries: Iterable[Entry], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip written with zip64 extra fields in every local header and directory entry, and zip64 end
    records, as a multi-GB upload has them."""
    buf = io.BytesIO()
    with _zip64_everywhere(), zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = compression
            with zf.open(info, "w", force_zip64=True) as member:
                member.write(data)
    return buf.getvalue()


def flip_bit(data: bytes, position: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[position] ^= 1 << bit
    return bytes(out)


def tar_gz_of(entries: Iterable[Entry | Member | tarfile.TarInfo]) -> bytes:
    """A PAX-format .tar.gz; names are encoded as tarfile does (a lone surrogate becomes its raw byte)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
                continue
            if isinstance(entry[0], tarfile.TarInfo):
                info, content = entry
                tar.addfile(info, io.BytesIO(content))
                continue
            name, data = entry
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def symlink(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def pax_member(name: str, data: bytes, fields: dict[str, str]) -> Member:
    """A member preceded by a PAX extended header holding `fields` as written (`{"GNU.sparse.size": "abc"}`)."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.pax_headers = fields
    return info, data


def flip_zip_version(data: bytes) -> bytes:
    """The zip with the "version needed to extract" of its last central directory entry set to 25.5, which
    zipfile refuses with NotImplementedError."""
    out = bytearray(data)
    entry = out.rfind(b"PK\x01\x02")
    out[entry + 6] = 0xFF
    return bytes(out)


def sdist_entries(name: str = "demo_pkg", version: str = "1.0", metadata: bytes | None = None) -> list[Entry]:
    top = f"{name}-{version}"
    return [
        (f"{top}/pyproject.toml", b"[project]\nname = 'demo-pkg'\n"),
        (f"{top}/PKG-INFO", metadata if metadata is not None else core_metadata(name.replace("_", "-"), version)),
        (f"{top}/src/{name}/__init__.py", b"VALUE = 1\n"),
    ]


def sdist_tar(name: str = "demo_pkg", version: str = "1.0", metadata: bytes | None = None) -> bytes:
    return tar_gz_of(sdist_entries(name, version, metadata))


def sdist_zip(name: str = "demo_pkg", version: str = "1.0", metadata: bytes | None = None) -> bytes:
    return zip_of(sdist_entries(name, version, metadata))

"""What benchmarks/fault_run.py sends: valid small distributions, twine's upload form as raw bytes, and the
seeded mutations of both (malformed multipart bodies, damaged archives). Pure functions of a `random.Random`,
so a case is reproduced from the run's seed and its index.
"""
from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import importlib.util
import io
import random
import sys
import tarfile
import zipfile
from dataclasses import dataclass, field
from email.parser import BytesParser
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _load_archives() -> Any:
    """tests/unit/worker/worker_archives.py (not a package): the worker tests' in-memory archive builders."""
    path = REPO / "tests" / "unit" / "worker" / "worker_archives.py"
    spec = importlib.util.spec_from_file_location("fault_worker_archives", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


archives = _load_archives()
KINDS = ("wheel", "sdist_tar", "sdist_zip")


# -- valid distributions -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dist:
    name: str  # the distribution name as the form sends it
    version: str
    kind: str  # one of KINDS
    filename: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def filetype(self) -> str:
        return "bdist_wheel" if self.kind == "wheel" else "sdist"


def filename_of(name: str, version: str, kind: str) -> str:
    stem = f"{name.replace('-', '_')}-{version}"
    return {"wheel": f"{stem}-py3-none-any.whl", "sdist_tar": f"{stem}.tar.gz", "sdist_zip": f"{stem}.zip"}[kind]


def entries_of(name: str, version: str, kind: str) -> list[tuple[str, bytes]]:
    module = name.replace("-", "_")
    if kind == "wheel":
        return archives.wheel_entries(module, version)
    return archives.sdist_entries(module, version)


def pack(entries: list[Any], kind: str) -> bytes:
    return archives.tar_gz_of(entries) if kind == "sdist_tar" else archives.zip_of(entries)


def valid_dist(name: str, version: str, kind: str) -> Dist:
    return Dist(name, version, kind, filename_of(name, version, kind), pack(entries_of(name, version, kind), kind))


# -- twine's form, as bytes ----------------------------------------------------------------------------
@dataclass
class Part:
    headers: bytes
    value: bytes
    is_content: bool = False


@dataclass
class Form:
    boundary: bytes
    parts: list[Part] = field(default_factory=list)

    def body(self, final: bool = True) -> bytes:
        out = b"".join(b"--" + self.boundary + b"\r\n" + p.headers + b"\r\n\r\n" + p.value + b"\r\n"
                       for p in self.parts)
        return out + (b"--" + self.boundary + b"--\r\n" if final else b"")

    def content_span(self) -> tuple[int, int]:
        """Where the file's bytes are in body(): flips outside it hit headers and fields only."""
        offset = 0
        for p in self.parts:
            offset += len(self.boundary) + 4 + len(p.headers) + 4
            if p.is_content:
                return offset, offset + len(p.value)
            offset += len(p.value) + 2
        return offset, offset


def twine_form(dist: Dist, boundary: bytes) -> Form:
    """The fields twine 5+ sends, in its order, the file part last."""
    fields = [("name", dist.name), ("version", dist.version), ("filetype", dist.filetype),
              ("pyversion", "py3" if dist.kind == "wheel" else "source"), ("metadata_version", "2.1"),
              ("summary", "demo summary"), ("sha256_digest", dist.sha256),
              ("md5_digest", hashlib.md5(dist.data).hexdigest()), (":action", "file_upload"),
              ("protocol_version", "1")]
    form = Form(boundary)
    for key, value in fields:
        form.parts.append(Part(f'Content-Disposition: form-data; name="{key}"'.encode(), value.encode()))
    form.parts.append(Part(f'Content-Disposition: form-data; name="content"; filename="{dist.filename}"\r\n'
                           "Content-Type: application/octet-stream".encode(), dist.data, is_content=True))
    return form


@dataclass(frozen=True)
class RawRequest:
    """A POST as sent on the socket: `declared` is the Content-Length header, `body` exactly what is sent;
    `half_close` ends our side after the body (a client that gave up: no answer is a valid outcome)."""

    kind: str
    content_type: bytes
    body: bytes
    declared: int
    half_close: bool = False
    detail: str = ""


def _flip(data: bytes, rng: random.Random, count: int, lo: int = 0, hi: int | None = None) -> tuple[bytes, list[int]]:
    out = bytearray(data)
    hi = len(out) if hi is None else hi
    offsets = sorted(rng.randrange(lo, hi) for _ in range(count)) if hi > lo else []
    for at in offsets:
        out[at] ^= rng.randrange(1, 256)
    return bytes(out), offsets


# The ways of breaking a body. "client-abort" kinds may end with no answer at all (we hung up).
BODY_KINDS = ("truncated", "truncated_abort", "no_final_boundary", "short_content_length", "long_content_length",
              "garbage_headers", "duplicated_part", "form_flips", "wrong_boundary")
ABORT_KINDS = frozenset({"truncated_abort", "long_content_length"})
# Kinds whose result can never be a valid upload: a 2xx for them is a violation. The others (a flipped byte
# in a field nothing reads, an ignored duplicated field) may legitimately be accepted; such a file must then
# be installable like any other.
INVALID_BY_CONSTRUCTION = frozenset({"truncated", "truncated_abort", "no_final_boundary", "short_content_length",
                                     "long_content_length", "wrong_boundary"})


def garbage_header(rng: random.Random) -> bytes:
    choices = [
        bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80))),
        b"Content-Disposition form-data name content",  # no colon
        b"Content-Disposition: form-data; name=\"" + b"n" * rng.randrange(9000, 70000) + b"\"",
        b"Content-Disposition: form-data; name=\"\xff\xfe\"; filename=\"\xc3\x28.whl\"",
        b"Content-Disposition: attachment",
        b"Content-Disposition: form-data; name=\"content\"; filename*=UTF-8''%ZZ",
        b"X-Junk: a\x00b\r\nContent-Disposition: form-data; name=\"version\"",
        b"Content-Disposition: form-data; name=\"name\"\r\n\tfolded: continuation",
        b"",
    ]
    return rng.choice(choices)


def malformed_body(form: Form, kind: str, rng: random.Random) -> RawRequest:
    """One malformed request of `kind` built from a valid twine form."""
    ctype = b"multipart/form-data; boundary=" + form.boundary
    body = form.body()
    if kind == "truncated":
        cut = rng.randrange(1, len(body) - 1)
        return RawRequest(kind, ctype, body[:cut], cut, detail=f"cut at {cut} of {len(body)}")
    if kind == "truncated_abort":
        cut = rng.randrange(1, len(body) - 1)
        return RawRequest(kind, ctype, body[:cut], len(body), half_close=True, detail=f"sent {cut} of {len(body)}")
    if kind == "no_final_boundary":
        cut = form.body(final=False)
        if rng.random() < 0.5:
            cut = cut[:-2]  # without the CRLF that ends the file's bytes either
        return RawRequest(kind, ctype, cut, len(cut), detail=f"{len(cut)} bytes")
    if kind == "short_content_length":
        declared = len(body) - rng.randrange(1, min(300, len(body) - 1))
        return RawRequest(kind, ctype, body[:declared], declared, detail=f"declared {declared} of {len(body)}")
    if kind == "long_content_length":
        declared = len(body) + rng.randrange(1, 5000)
        return RawRequest(kind, ctype, body, declared, half_close=True, detail=f"declared {declared}, sent {len(body)}")
    if kind == "garbage_headers":
        index = rng.randrange(len(form.parts))
        parts = [Part(p.headers, p.value, p.is_content) for p in form.parts]
        parts[index].headers = garbage_header(rng)
        garbled = Form(form.boundary, parts).body()
        return RawRequest(kind, ctype, garbled, len(garbled), detail=f"part {index} headers")
    if kind == "duplicated_part":
        index = rng.randrange(len(form.parts))
        parts = list(form.parts)
        parts.insert(rng.randrange(index, len(parts) + 1), form.parts[index])
        doubled = Form(form.boundary, parts).body()
        return RawRequest(kind, ctype, doubled, len(doubled), detail=f"part {index} twice")
    if kind == "form_flips":
        start, end = form.content_span()
        # Flips in the headers and fields only: before the file's bytes, or in the closing boundary.
        lo, hi = (0, start) if rng.random() < 0.85 else (end, len(body))
        flipped, offsets = _flip(body, rng, rng.randrange(1, 5), lo, hi)
        return RawRequest(kind, ctype, flipped, len(flipped), detail=f"flipped at {offsets}")
    if kind == "wrong_boundary":
        variant = rng.randrange(4)
        if variant == 0:
            ctype = b"multipart/form-data; boundary=" + form.boundary[:-1] + b"x"
        elif variant == 1:
            ctype = b"multipart/form-data; boundary=" + form.boundary[: len(form.boundary) // 2]
        elif variant == 2:
            ctype = b"multipart/form-data; boundary=\"\""
        else:
            ctype = b"multipart/form-data; boundary=" + bytes(rng.randrange(33, 127) for _ in range(70)).replace(
                b";", b"_").replace(b'"', b"_")
        return RawRequest(kind, ctype, body, len(body), detail=f"Content-Type {ctype[-40:]!r}")
    raise ValueError(kind)


# -- damaged archives -------------------------------------------------------------------------------
ARCHIVE_KINDS = ("byte_flips", "truncated", "member_dotdot", "member_absolute", "second_top_dir",
                 "undecodable_name", "bad_pax", "zip_version_flip")
# Mutations that make the file one the SPEC says must be refused: a 2xx for them is a violation.
MUST_REFUSE = frozenset({"truncated", "member_dotdot", "member_absolute", "second_top_dir"})
PAX_FIELDS = ({"size": "abc"}, {"mtime": "yesterday"}, {"uid": "-x"}, {"gid": "1e9x"},
              {"GNU.sparse.size": "abc"}, {"GNU.sparse.map": "1,x"}, {"GNU.sparse.major": "q"},
              {"size": "-1"}, {"mtime": "nan"})


def applicable(kind: str, dist_kind: str) -> bool:
    if kind == "second_top_dir":
        return dist_kind != "wheel"
    if kind in ("bad_pax", "undecodable_name"):
        return dist_kind == "sdist_tar"
    if kind == "zip_version_flip":
        return dist_kind != "sdist_tar"
    return True


def mutated_archive(dist: Dist, kind: str, rng: random.Random) -> tuple[bytes, str]:
    """The damaged bytes of `dist` and a line saying what was done (for a reproduction)."""
    if kind == "byte_flips":
        count = rng.randrange(1, 9)
        data, offsets = _flip(dist.data, rng, count)
        return data, f"flipped bytes at {offsets}"
    if kind == "truncated":
        cut = rng.randrange(1, len(dist.data) - 1)
        return dist.data[:cut], f"cut at {cut} of {len(dist.data)}"
    if kind == "zip_version_flip":
        return archives.flip_zip_version(dist.data), "version needed of the last central entry set to 0xFF"
    entries: list[Any] = list(entries_of(dist.name, dist.version, dist.kind))
    top = f"{dist.name.replace('-', '_')}-{dist.version}"
    position = rng.randrange(len(entries) + 1)  # before or after the metadata file
    if dist.kind == "wheel":
        # A wheel's RECORD (its last member) is written again below so that it lists the new member: the
        # mutation is then the only thing wrong with the file, not a member missing from RECORD.
        entries, position = entries[:-1], min(position, len(entries) - 1)
    if kind == "member_dotdot":
        member = rng.choice(["../x", f"{top}/../../x", "a/../../etc/x"])
        entries.insert(position, (member, b"x"))
    elif kind == "member_absolute":
        member = rng.choice(["/x", "/etc/passwd", f"/{top}/x"])
        entries.insert(position, (member, b"x"))
    elif kind == "second_top_dir":
        member = rng.choice(["other-1.0/x.py", "x.py", "evil/PKG-INFO"])
        entries.insert(position, (member, b"x"))
    elif kind == "undecodable_name":
        member = f"{top}/m\udcff{rng.randrange(1000)}\udc80.py"
        entries.insert(position, (member, b"x"))
    elif kind == "bad_pax":
        fields = dict(rng.choice(PAX_FIELDS))
        member = f"{top}/pax{rng.randrange(1000)}.txt"
        entries.insert(position, archives.pax_member(member, b"pax data\n", fields))
        return pack(entries, dist.kind), f"PAX member {member!r} {fields} at {position}"
    else:
        raise ValueError(kind)
    if dist.kind == "wheel":
        record = f"{top}.dist-info/RECORD"
        entries.append((record, archives.record_of(entries, record)))
    return pack(entries, dist.kind), f"member {member!r} at position {position}"


# -- what an installer makes of accepted bytes ---------------------------------------------------------
def install_problem(dist: Dist, data: bytes) -> str | None:
    """Why an installer would refuse (or silently lose part of) `data` uploaded as `dist`, else None.

    Independent of the registry's own inspection (registry_shared.inspection): only the standard library's
    readers and the wheel spec, as pip and `installer` apply them. A wheel: every member inflates with its
    CRC, RECORD lists every member with its sha256 and size and nothing else, METADATA and WHEEL present
    and METADATA naming `dist`. An sdist: one top directory `<name>-<version>` holding PKG-INFO that names
    `dist`; a .tar.gz is one complete gzip stream (CRC and size trailer) whose tar members all read in full
    and pass tarfile's `data` filter, with nothing but zero blocks after the last member; a .zip's members
    all inflate with their CRCs. No member absolute or with a `..` component."""
    try:
        if dist.kind == "sdist_tar":
            members = _tar_members(data)
        else:
            members = _zip_members(data)
    except Exception as exc:  # noqa: BLE001 - damaged bytes raise anything (zlib.error, struct.error, ...)
        return f"unreadable: {type(exc).__name__}: {str(exc)[:160]}"
    for name in members:
        parts = name.replace("\\", "/").split("/")
        if name.startswith("/") or ".." in parts:
            return f"unsafe member {name!r}"
    top = f"{dist.name.replace('-', '_')}-{dist.version}"
    if dist.kind == "wheel":
        return _wheel_problem(dist, top, members)
    tops = {name.split("/", 1)[0] for name in members}
    if tops != {top}:
        return f"top directories {sorted(tops)[:5]}, not {top!r} alone"
    return _metadata_problem(dist, members.get(f"{top}/PKG-INFO"), "PKG-INFO")


def _zip_members(data: bytes) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            if info.filename in members:
                raise ValueError(f"member {info.filename!r} twice")
            members[info.filename] = b"" if info.is_dir() else zf.read(info)  # BadZipFile on a bad CRC
    return members


def _tar_members(data: bytes) -> dict[str, bytes]:
    raw = gzip.decompress(data)  # EOFError when cut, BadGzipFile on a wrong CRC or size, or trailing bytes
    members: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        for info in tar:
            tarfile.data_filter(info, "/install")  # absolute, '..', links out, devices: FilterError
            if info.name in members:
                raise ValueError(f"member {info.name!r} twice")
            stream = tar.extractfile(info) if info.isreg() else None
            members[info.name] = stream.read() if stream is not None else b""  # ReadError when short
        end = tar.offset
    if raw[end:].strip(b"\0"):
        # tarfile stops at the first header it cannot parse and keeps what it read: the rest is lost.
        raise ValueError(f"{len(raw) - end} bytes after the last member tarfile read are not end-of-archive blocks")
    return members


def _wheel_problem(dist: Dist, top: str, members: dict[str, bytes]) -> str | None:
    info = f"{top}.dist-info"
    record = members.get(f"{info}/RECORD")
    if record is None or f"{info}/WHEEL" not in members:
        return f"{info}/RECORD or WHEEL missing"
    listed: set[str] = set()
    for row in csv.reader(io.StringIO(record.decode("utf-8", errors="replace"), newline="")):
        if not row:
            continue
        path, hash_, size = (row + ["", ""])[:3]
        listed.add(path)
        if path.endswith("/") and not hash_:
            continue
        if path not in members:
            return f"RECORD lists {path!r}, which is not in the wheel"
        if hash_:
            digest = base64.urlsafe_b64encode(hashlib.sha256(members[path]).digest()).rstrip(b"=").decode()
            if hash_ != f"sha256={digest}" or (size and size != str(len(members[path]))):
                return f"member {path!r} does not match its RECORD entry"
    exempt = {f"{info}/{name}" for name in ("RECORD", "RECORD.jws", "RECORD.p7s")}
    unlisted = sorted(name for name in members if not name.endswith("/") and name not in listed | exempt)
    if unlisted:
        return f"members missing from RECORD: {unlisted[:5]}"
    return _metadata_problem(dist, members.get(f"{info}/METADATA"), "METADATA")


def _metadata_problem(dist: Dist, metadata: bytes | None, label: str) -> str | None:
    if metadata is None:
        return f"no {label}"
    fields = BytesParser().parsebytes(metadata, headersonly=True)
    name, version = str(fields.get("Name", "")), str(fields.get("Version", ""))
    if name.lower().replace("_", "-") != dist.name.lower() or version != dist.version:
        return f"{label} names {name!r} {version!r}, not {dist.name!r} {dist.version!r}"
    return None

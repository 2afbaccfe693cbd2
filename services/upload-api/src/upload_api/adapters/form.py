"""Reading twine's multipart form as a stream: small fields into memory (bounded), `content` left unread.

Every read of the request body goes through here, so a body that is not a complete form is the client's
400 (a truncated body, a missing closing boundary, a short Content-Length), and a client that went away
is a ClientDisconnected: routine, never a 5xx or an error-level log line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from aiohttp import BodyPartReader, MultipartReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.multipart import content_disposition_filename, parse_content_disposition

from registry_shared.errors import BadRequest, ParameterInvalid, ParameterMissing

FIELDS = (
    "name", "version", "md5_digest", "sha256_digest", "blake2_256_digest", "filetype", "pyversion",
    "requires_python", "metadata_version", "summary", "description", "description_content_type", "keywords",
    "author_email",
)
MAX_FIELD_BYTES = 8 * 1024 * 1024  # far above any real description; bounds memory per field
# What aiohttp raises on a body that is not a well-formed form (a part header with a control character
# is an HttpProcessingError).
MALFORMED = (ValueError, AssertionError, HttpProcessingError)
TRUNCATED = "malformed multipart body: it ends before the file part's closing boundary (truncated upload?)"
SHA256 = re.compile(r"[0-9a-fA-F]{64}")
# The Content-Disposition every client sends (twine, pip, curl -F): `form-data; name="x"`, and for the file
# `form-data; name="content"; filename="y"`. A quoted value here holds no quote, backslash or semicolon and
# does not start with a slash, so aiohttp's parser would return it unchanged (it unescapes backslashes,
# splits on semicolons and strips leading slashes); anything else goes to that parser.
PLAIN_DISPOSITION = re.compile(r'form-data; name="((?![/])[^"\\;]*)"(?:; filename="((?![/])[^"\\;]*)")?')


def disposition_names(header: str | None) -> tuple[str | None, str | None]:
    """A part's (name, filename) as aiohttp's `BodyPartReader.name` / `.filename` give them: its parser
    costs about 0.1 ms a call (it re-escapes its character table each time), and twine sends 20-25 parts
    per upload, so the plain headers every client sends are read with one regex instead."""
    if header is not None and (plain := PLAIN_DISPOSITION.fullmatch(header)) is not None:
        return plain[1], plain[2]
    _, params = parse_content_disposition(header)
    return content_disposition_filename(params, "name"), content_disposition_filename(params, "filename")


class FormReader(MultipartReader):
    """aiohttp's reader without its per-part `_charset_` lookup.

    aiohttp means to look for RFC 7578's `_charset_` field before the first part only, but its test (no
    previous part) holds before every part, so it parses each part's Content-Disposition once more. Its
    effect, a default charset for `part.text()`, is nothing here: fields are read as UTF-8 and a
    `_charset_` field is an unknown one, drained. The rest is aiohttp's own `next`, step by step.
    """

    async def next(self) -> MultipartReader | BodyPartReader | None:
        if self.at_eof():
            return None
        await self._maybe_release_last_part()
        if self._at_bof:
            await self._read_until_first_boundary()
            self._at_bof = False
        else:
            await self._read_boundary()
        if self.at_eof():
            return None
        self._last_part = await self.fetch_next_part()
        return self._last_part


class ClientDisconnected(BadRequest):
    """The client closed the connection before its body ended: nothing to answer, nothing to alert on."""

    def default_reason(self) -> str:
        return "the client closed the connection during the upload"


class PartContent:
    """The `content` part as the use case's `Content` port (ports.py)."""

    def __init__(self, part: BodyPartReader, filename: str, reader: MultipartReader, form: UploadForm) -> None:
        self._part = part
        self._reader = reader
        self._form = form
        self.filename = filename

    async def read(self, size: int) -> bytes:
        return await read_chunk(self._part, size)

    async def drain(self, limit: int | None = None) -> bool:
        return await drain(self._part, limit)

    async def finish(self) -> None:
        await drain(self._part)  # normally at its end already
        # Fields after the file part (clients other than twine) are read, and a malformed end refused.
        await _read_fields(self._reader, self._form, stop_at_content=False)


@dataclass
class UploadForm:
    fields: dict[str, str] = field(default_factory=dict)
    content: PartContent | None = None

    @property
    def filename(self) -> str:
        return self.content.filename if self.content is not None else ""

    def get(self, key: str) -> str | None:
        value = self.fields.get(key)
        return value if value not in (None, "") else None


async def open_form(request: web.Request) -> UploadForm:
    """Read fields up to the `content` part. 400 when the body is not a multipart form or a parameter is
    missing or malformed, all before any credential is looked at (as GitLab's parameter validation)."""
    if request.content_type == "application/x-www-form-urlencoded":
        raise ParameterMissing("content")  # a form without a file part
    if not request.content_type.startswith("multipart/form-data"):
        raise BadRequest("the upload must be multipart/form-data")
    try:
        # As `request.multipart()` builds aiohttp's reader, with the same limits.
        reader = FormReader(request.headers, request.content, client_max_size=request.client_max_size,
                            max_field_size=request.protocol.max_field_size,
                            max_headers=request.protocol.max_headers,
                            max_size_error_cls=web.HTTPRequestEntityTooLarge)
    except MALFORMED as exc:
        raise BadRequest("malformed multipart body") from exc
    form = UploadForm()
    await _read_fields(reader, form, stop_at_content=True)
    if form.content is None:
        raise ParameterMissing("content")
    for required in ("name", "version"):
        if not form.get(required):
            raise ParameterMissing(required)
    digest = form.get("sha256_digest")
    if digest is not None and not SHA256.fullmatch(digest.strip()):
        raise ParameterInvalid("sha256_digest")
    return form


async def drain(part: BodyPartReader, limit: int | None = None) -> bool:
    """Consume a part without keeping it, so the client can finish sending before we answer.

    With `limit`, stop after that many bytes and return False: the connection is then closed after the
    answer rather than reading gigabytes that will be thrown away.
    """
    seen = 0
    while chunk := await read_chunk(part, 256 * 1024):
        seen += len(chunk)
        if limit is not None and seen > limit:
            return False
    return True


async def read_chunk(part: BodyPartReader, size: int) -> bytes:
    """The next chunk of `part` (b"" at its end); a body that stops short is the client's fault.

    aiohttp answers b"" a first time when the body ends inside the part (and raises only when read again):
    that b"" is the 400 already, so no reader mistakes the cut part for a whole one."""
    try:
        chunk = await part.read_chunk(size)
    except ConnectionResetError as exc:
        raise ClientDisconnected() from exc
    except MALFORMED as exc:
        raise BadRequest(TRUNCATED) from exc
    if not chunk and not part.at_eof():
        raise BadRequest(TRUNCATED)
    return chunk


async def _read_fields(reader: MultipartReader, form: UploadForm, stop_at_content: bool) -> None:
    while True:
        try:
            part = await reader.next()
        except ConnectionResetError as exc:
            raise ClientDisconnected() from exc
        except MALFORMED as exc:
            raise BadRequest("malformed multipart body") from exc
        if part is None:
            return
        if not isinstance(part, BodyPartReader):
            raise BadRequest("nested multipart bodies are not accepted")
        name, filename = disposition_names(part.headers.get(hdrs.CONTENT_DISPOSITION))
        name = name or ""
        if name == "content":
            if form.content is not None or not stop_at_content:
                raise BadRequest("only one file may be uploaded per request")
            form.content = PartContent(part, filename or "", reader, form)
            return
        if name in FIELDS:
            form.fields[name] = await _read_text(part, name)
        else:
            await drain(part)


async def _read_text(part: BodyPartReader, name: str) -> str:
    data = bytearray()
    while chunk := await read_chunk(part, 64 * 1024):
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise BadRequest(f"field {name} is too large")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"field {name} is not valid UTF-8") from exc

"""Reading twine's multipart form as a stream: small fields into memory (bounded), `content` left unread."""
from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from registry_shared.errors import BadRequest, ParameterMissing

FIELDS = (
    "name", "version", "md5_digest", "sha256_digest", "blake2_256_digest", "filetype", "pyversion",
    "requires_python", "metadata_version", "summary", "description", "description_content_type", "keywords",
    "author_email",
)
MAX_FIELD_BYTES = 8 * 1024 * 1024  # far above any real description; bounds memory per field
# What aiohttp raises on a body that is not a well-formed form (a part header with a control character
# is an HttpProcessingError).
MALFORMED = (ValueError, AssertionError, HttpProcessingError)


@dataclass
class UploadForm:
    fields: dict[str, str] = field(default_factory=dict)
    content: BodyPartReader | None = None

    @property
    def filename(self) -> str:
        return (self.content.filename if self.content is not None else None) or ""

    def get(self, key: str) -> str | None:
        value = self.fields.get(key)
        return value if value not in (None, "") else None


async def open_form(request: web.Request) -> tuple[MultipartReader, UploadForm]:
    """Read fields up to the `content` part. 400 when the body is not a multipart form or lacks a field."""
    if request.content_type == "application/x-www-form-urlencoded":
        raise ParameterMissing("content")  # a form without a file part
    if not request.content_type.startswith("multipart/form-data"):
        raise BadRequest("the upload must be multipart/form-data")
    try:
        reader = await request.multipart()
    except MALFORMED as exc:
        raise BadRequest("malformed multipart body") from exc
    form = UploadForm()
    await _read_fields(reader, form, stop_at_content=True)
    if form.content is None:
        raise ParameterMissing("content")
    for required in ("name", "version"):
        if not form.get(required):
            raise ParameterMissing(required)
    return reader, form


async def read_remaining(reader: MultipartReader, form: UploadForm) -> None:
    """After `content` was consumed: read any fields that follow it (clients other than twine)."""
    await _read_fields(reader, form, stop_at_content=False)


async def drain(part: BodyPartReader, limit: int | None = None) -> bool:
    """Consume a part without keeping it, so the client can finish sending before we answer.

    With `limit`, stop after that many bytes and return False: the connection is then closed after the
    answer rather than reading gigabytes that will be thrown away.
    """
    seen = 0
    while chunk := await part.read_chunk(256 * 1024):
        seen += len(chunk)
        if limit is not None and seen > limit:
            return False
    return True


async def _read_fields(reader: MultipartReader, form: UploadForm, stop_at_content: bool) -> None:
    while True:
        try:
            part = await reader.next()
        except MALFORMED as exc:
            raise BadRequest("malformed multipart body") from exc
        if part is None:
            return
        if not isinstance(part, BodyPartReader):
            raise BadRequest("nested multipart bodies are not accepted")
        name = part.name or ""
        if name == "content":
            if form.content is not None or not stop_at_content:
                raise BadRequest("only one file may be uploaded per request")
            form.content = part
            return
        if name in FIELDS:
            form.fields[name] = await _read_text(part, name)
        else:
            await drain(part)


async def _read_text(part: BodyPartReader, name: str) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise BadRequest(f"field {name} is too large")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"field {name} is not valid UTF-8") from exc

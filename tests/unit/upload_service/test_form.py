"""The multipart form's fast paths (upload_api.adapters.form) against aiohttp's own reading."""
from __future__ import annotations

import asyncio
import warnings
from unittest import mock

import pytest
from aiohttp import streams
from aiohttp.multipart import content_disposition_filename, parse_content_disposition
from aiohttp.test_utils import make_mocked_request

from upload_api.adapters.form import PLAIN_DISPOSITION, disposition_names, open_form

PLAIN = [
    'form-data; name="name"',
    'form-data; name="sha256_digest"',
    'form-data; name="content"; filename="demo-1.0-py3-none-any.whl"',
    'form-data; name="content"; filename="demo-1.0.tar.gz"',
    'form-data; name=""',
    'form-data; name="content"; filename=""',
    'form-data; name="a b"',
    'form-data; name="x=y"',
    'form-data; name="dé"; filename="dé-1.0.tar.gz"',
    'form-data; name="content"; filename="dir/x.whl"',
]
OTHERS = [
    None,
    "",
    "form-data",
    "attachment",
    'attachment; name="x"',
    'form data; name="x"',
    'form-data;name="name"',
    'form-data;  name="name"',
    'form-data; name="name" ',
    ' form-data; name="name"',
    'Form-Data; NAME="name"',
    'form-data; Name="name"',
    "form-data; name=name",
    'form-data; name="name"; name="other"',
    'form-data; name="name";',
    'form-data; name',
    'form-data; name="unterminated',
    'form-data; name="content"; filename="/etc/passwd"',
    'form-data; name="content"; filename="//x.whl"',
    'form-data; name="/content"',
    'form-data; name="content"; filename="C:\\\\x\\\\y.whl"',
    'form-data; name="content"; filename="\\\\server\\\\x.whl"',
    'form-data; name="content"; filename="a\\"b.whl"',
    'form-data; name="content"; filename="a;b.whl"',
    'form-data; name="content"; filename="a"b.whl"',
    "form-data; name=\"content\"; filename*=UTF-8''d%C3%A9mo.whl",
    "form-data; name=\"content\"; filename=\"x.whl\"; filename*=UTF-8''y.whl",
    "form-data; name=\"content\"; filename*=bogus''y.whl",
    'form-data; name="content"; filename="x.whl"; size=3',
    'form-data; filename="x.whl"; name="content"',
    'form-data; name*0="con"; name*1="tent"',
    'form-data; name="content"; filename*0="x"; filename*1=".whl"',
    'form-data; name="x\ty"',
    'form-data; name="content"; filename=x.whl',
]


def aiohttp_names(header: str | None) -> tuple[str | None, str | None]:
    """What `BodyPartReader.name` and `.filename` answer for this Content-Disposition."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, params = parse_content_disposition(header)
    return content_disposition_filename(params, "name"), content_disposition_filename(params, "filename")


@pytest.mark.parametrize("header", PLAIN)
def test_plain_headers_take_the_fast_path_and_read_as_aiohttp_reads_them(header: str) -> None:
    assert PLAIN_DISPOSITION.fullmatch(header) is not None
    assert disposition_names(header) == aiohttp_names(header)


@pytest.mark.parametrize("header", OTHERS)
def test_other_headers_read_as_aiohttp_reads_them(header: str | None) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = disposition_names(header)
    assert names == aiohttp_names(header)


def test_headers_the_regex_would_misread_are_left_to_aiohttp() -> None:
    # Each of these differs from its quoted text in aiohttp's reading (stripped slash, unescaped quote, a
    # value cut at a semicolon): the fast path must not match them.
    for header in ('form-data; name="content"; filename="/etc/passwd"', 'form-data; name="a\\"b"',
                   'form-data; name="content"; filename="a;b.whl"'):
        assert PLAIN_DISPOSITION.fullmatch(header) is None
    assert aiohttp_names('form-data; name="content"; filename="/etc/passwd"') == ("content", "etc/passwd")


BOUNDARY = "b0undary"


def _part(disposition: str, body: str) -> str:
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n{body}\r\n"


async def _open(body: str) -> tuple[dict[str, str], str, bytes]:
    payload = streams.StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())
    payload.feed_data(body.encode())
    payload.feed_eof()
    request = make_mocked_request("POST", "/api/v4/projects/1/packages/pypi", payload=payload,
                                  headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
                                  protocol=mock.Mock(max_field_size=8190, max_headers=128))
    form = await open_form(request)
    assert form.content is not None
    data = b""
    while chunk := await form.content.read(64):
        data += chunk
    await form.content.finish()
    return form.fields, form.filename, data


async def test_a_twine_form_reads_its_fields_file_name_and_bytes() -> None:
    body = (_part('form-data; name=":action"', "file_upload") + _part('form-data; name="name"', "demo")
            + _part('form-data; name="version"', "1.0") + _part('form-data; name="summary"', "A démo")
            + _part('form-data; name="content"; filename="demo-1.0.tar.gz"', "archive bytes")
            + f"--{BOUNDARY}--\r\n")
    fields, filename, data = await _open(body)
    assert fields == {"name": "demo", "version": "1.0", "summary": "A démo"}
    assert (filename, data) == ("demo-1.0.tar.gz", b"archive bytes")


async def test_an_rfc_5987_file_name_and_a_charset_field_read_as_before() -> None:
    # `_charset_` is an unknown field here (fields are UTF-8), drained like any other, in any position.
    body = (_part('form-data; name="_charset_"', "utf-8") + _part('form-data; name="name"', "demo")
            + _part('form-data; name="version"', "1.0") + _part('form-data; name="_charset_"', "latin-1")
            + _part("form-data; name=\"content\"; filename*=UTF-8''d%C3%A9mo-1.0.tar.gz", "bytes")
            + f"--{BOUNDARY}--\r\n")
    fields, filename, data = await _open(body)
    assert fields == {"name": "demo", "version": "1.0"} and (filename, data) == ("démo-1.0.tar.gz", b"bytes")

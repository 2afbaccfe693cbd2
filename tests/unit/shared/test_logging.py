"""JSON log lines: redaction, the correlation id, the timestamp format, and stdlib records."""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest
import structlog

from registry_shared.logging import (
    PROCESS_CORRELATION_ID,
    UtcTimeStamper,
    _redact,
    bind_correlation_id,
    configure_logging,
    current_correlation_id,
)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [("token", "glpat-abc", "[redacted]"), ("deploy_token", "x", "[redacted]"), ("Password", "x", "[redacted]"),
     ("client_secret", "x", "[redacted]"), ("authorization", "Basic eA==", "[redacted]"),
     ("token", None, None), ("credential_id", 7, 7), ("user_id", 3, 3),
     ("url", "https://alice:hunter2@host/simple/", "https://[redacted]@host/simple/"),
     ("url", "https://host/simple/", "https://host/simple/"), ("email", "a@b.example", "a@b.example")],
)
def test_redaction(key: str, value: object, expected: object) -> None:
    assert _redact(None, "info", {key: value}) == {key: expected}


def test_timestamps_are_iso_utc_with_microseconds() -> None:
    stamper = UtcTimeStamper()
    first, second = (stamper(None, "info", {})["timestamp"] for _ in range(2))
    for stamp in (first, second):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp)
    assert first <= second


@pytest.fixture
def configured() -> Iterator[None]:
    """configure_logging for one test; structlog's and stdlib's configuration restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:], root.level = handlers, level


def lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_one_json_line_per_event_with_correlation_id_and_no_secret(configured: None, capsys) -> None:
    configure_logging("index-api", "info", "index-api-1")
    bind_correlation_id("corr-12345678")
    log = structlog.get_logger()
    log.info("http_request", status=200, token="glpat-secret", url="https://u:pw@host/")
    log.debug("not_shown")
    logging.getLogger("some.library").warning("retrying %s", "https://u:pw@host/")
    out = capsys.readouterr().out
    assert "glpat-secret" not in out and "pw@" not in out
    request, library = lines(out)
    assert request["event"] == "http_request" and request["status"] == 200 and request["level"] == "info"
    assert request["service"] == "index-api" and request["replica"] == "index-api-1"
    assert request["token"] == "[redacted]" and request["url"] == "https://[redacted]@host/"
    assert library["event"] == "retrying https://[redacted]@host/" and library["level"] == "warning"
    assert request["correlation_id"] == library["correlation_id"] == "corr-12345678"


def test_what_orjson_refuses_is_still_written(configured: None, capsys) -> None:
    configure_logging("index-api")
    structlog.get_logger().info("odd_values", big=2**70, several={1}, raw=b"x")
    (line,) = lines(capsys.readouterr().out)
    assert line["big"] == 2**70 and line["several"] == "{1}" and line["raw"] == "b'x'"


def test_lines_outside_a_request_carry_the_process_id(configured: None, capsys) -> None:
    configure_logging("upload-api")
    bind_correlation_id(None)
    log = structlog.get_logger()
    log.info("shutdown_started")
    assert current_correlation_id() == PROCESS_CORRELATION_ID
    bind_correlation_id("corr-87654321")
    log.info("http_request")
    assert current_correlation_id() == "corr-87654321"
    bind_correlation_id(None)
    log.info("shutdown_finished")
    started, request, finished = lines(capsys.readouterr().out)
    assert started["correlation_id"] == finished["correlation_id"] == PROCESS_CORRELATION_ID
    assert len(PROCESS_CORRELATION_ID) == 32 and request["correlation_id"] == "corr-87654321"

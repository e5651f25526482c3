"""Log lines are JSON off a terminal, keep their fields, and never carry secrets."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from calld.logging import configure_logging

pytestmark = pytest.mark.usefixtures("restore_logging")


def test_json_lines_with_fields_and_redacted_secrets() -> None:
    stream = io.StringIO()
    configure_logging("info", "auto", stream)
    log = structlog.get_logger("calld.test")
    log.info("call event stored", call_id="c-1", event_type="answered", secret="hunter2", token="abc")
    log.debug("hidden at info level")
    logging.getLogger("aiohttp.server").warning("from the standard library", extra={})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["call event stored", "from the standard library"]
    first = lines[0]
    assert first["call_id"] == "c-1"
    assert first["level"] == "info"
    assert first["secret"] == "[redacted]"
    assert first["token"] == "[redacted]"
    assert "hunter2" not in stream.getvalue()
    assert lines[1]["logger"] == "aiohttp.server"
    assert lines[1]["level"] == "warning"


def test_console_format_is_plain_text() -> None:
    stream = io.StringIO()
    configure_logging("debug", "console", stream)
    structlog.get_logger("calld.test").debug("readable", call_id="c-2")
    text = stream.getvalue()
    assert "readable" in text and "call_id" in text and "c-2" in text
    assert not text.lstrip().startswith("{")

"""Log lines as journald entries over a real unix datagram socket (the journal's native protocol)."""

from __future__ import annotations

import io
import logging
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from calld.journal import encode_entry, field_name, stderr_is_journal
from calld.logging import configure_logging

pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A stand-in for /run/systemd/journal/socket: a bound AF_UNIX datagram socket."""
    path = str(tmp_path / "journal.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(5)
        yield sock, path


def decode_entry(data: bytes) -> dict[str, str]:
    """Parse the native protocol: ``KEY=value\\n`` or ``KEY\\n<u64 little-endian length><value>\\n``."""
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        newline = data.index(b"\n", pos)
        line = data[pos:newline]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            pos = newline + 1
        else:
            key = line
            (length,) = struct.unpack("<Q", data[newline + 1 : newline + 9])
            value = data[newline + 9 : newline + 9 + length]
            assert data[newline + 9 + length : newline + 10 + length] == b"\n"
            pos = newline + 10 + length
        fields[key.decode()] = value.decode()
    return fields


def test_call_events_become_indexed_fields(journal: tuple[socket.socket, str]) -> None:
    sock, path = journal
    fallback = io.StringIO()
    configure_logging("info", "journal", fallback, journal_address=path)
    log = structlog.get_logger("calld.calls")
    log.info("call event stored", call_id="c-1", event_type="answered", secret="hunter2")
    entry = decode_entry(sock.recv(65536))
    assert entry["MESSAGE"] == "call event stored"
    assert entry["CALL_ID"] == "c-1" and entry["EVENT_TYPE"] == "answered"
    assert entry["PRIORITY"] == "6" and entry["SYSLOG_IDENTIFIER"] == "calld"
    assert entry["SECRET"] == "[redacted]"
    assert fallback.getvalue() == ""


def test_tracebacks_and_library_records_reach_the_journal(journal: tuple[socket.socket, str]) -> None:
    sock, path = journal
    configure_logging("info", "journal", io.StringIO(), journal_address=path)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        structlog.get_logger("calld.test").exception("storing failed", call_id="c-2")
    entry = decode_entry(sock.recv(65536))
    assert entry["PRIORITY"] == "3" and entry["CALL_ID"] == "c-2"
    assert "RuntimeError: boom" in entry["EXCEPTION"] and "\n" in entry["EXCEPTION"]  # length-prefixed
    logging.getLogger("aiohttp.server").warning("from the standard library")
    entry = decode_entry(sock.recv(65536))
    assert entry["MESSAGE"] == "from the standard library"
    assert (entry["PRIORITY"], entry["LOGGER"]) == ("4", "aiohttp.server")


def test_without_journald_lines_still_reach_stderr(tmp_path: Path) -> None:
    fallback = io.StringIO()
    configure_logging("info", "journal", fallback, journal_address=str(tmp_path / "nobody-listens"))
    structlog.get_logger("calld.test").info("still logged", call_id="c-3")
    assert '"call_id": "c-3"' in fallback.getvalue()


def test_auto_picks_the_journal_only_when_stderr_is_the_journal_stream(tmp_path: Path) -> None:
    with open(tmp_path / "stream", "w") as stream:
        stat = os.fstat(stream.fileno())
        assert stderr_is_journal(stream, {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"})
        assert not stderr_is_journal(stream, {"JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino + 1}"})
        assert not stderr_is_journal(stream, {})
    assert not stderr_is_journal(io.StringIO(), {"JOURNAL_STREAM": "1:2"})


def test_field_names_and_encoding() -> None:
    assert field_name("call_id") == "CALL_ID"
    assert field_name("_private-key.x") == "PRIVATE_KEY_X"
    assert encode_entry({"A": "1", "B": "two\nlines", "C": 3}) == (
        b"A=1\n" + b"B\n" + struct.pack("<Q", 9) + b"two\nlines\n" + b"C=3\n"
    )

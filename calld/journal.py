"""journald's native protocol: each log line as one datagram of fields that journald indexes.

Run by systemd with stderr connected to the journal (``$JOURNAL_STREAM`` names that stream),
calld sends its structured log lines to ``/run/systemd/journal/socket`` instead, so every field
is a journal field: ``journalctl -u calld CALL_ID=<id>``, ``journalctl -u calld EVENT_TYPE=answered``.
Field names are the log keys in upper case (``call_id`` -> ``CALL_ID``); the text is ``MESSAGE``,
the level ``PRIORITY`` (syslog numbers), and ``SYSLOG_IDENTIFIER`` is ``calld``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import sys
from collections.abc import Mapping
from typing import Any, TextIO

JOURNAL_SOCKET = "/run/systemd/journal/socket"
_PRIORITIES = {"critical": 2, "exception": 3, "error": 3, "warning": 4, "info": 6, "debug": 7}
_BAD_NAME_CHARS = re.compile(r"[^A-Z0-9_]")


def stderr_is_journal(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Whether ``stream`` is the journal stream systemd announced in ``$JOURNAL_STREAM`` (dev:inode)."""
    announced = environ.get("JOURNAL_STREAM", "")
    try:
        stat = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False  # not a real file (a test's StringIO)
    return announced == f"{stat.st_dev}:{stat.st_ino}"


def field_name(key: str) -> str:
    """A log key as a journal field name: upper case, letters, digits and '_', not starting with '_'."""
    name = _BAD_NAME_CHARS.sub("_", key.upper()).lstrip("_")[:64]
    return name or "FIELD"


def encode_entry(fields: Mapping[str, Any]) -> bytes:
    """One journal entry in the native protocol; values with a newline use the length-prefixed form."""
    parts: list[bytes] = []
    for key, value in fields.items():
        name = key.encode()
        data = (value if isinstance(value, str) else json.dumps(value, default=str)).encode()
        if b"\n" in data:
            parts.append(name + b"\n" + struct.pack("<Q", len(data)) + data + b"\n")
        else:
            parts.append(name + b"=" + data + b"\n")
    return b"".join(parts)


def journal_fields(event: Mapping[str, Any], identifier: str = "calld") -> dict[str, Any]:
    """A structlog event dict as journal fields."""
    fields: dict[str, Any] = {
        "MESSAGE": str(event.get("event", "")),
        "PRIORITY": str(_PRIORITIES.get(str(event.get("level", "info")), 6)),
        "SYSLOG_IDENTIFIER": identifier,
    }
    for key, value in event.items():
        if key in ("event", "level"):
            continue
        fields.setdefault(field_name(key), value)
    return fields


class JournalWriter:
    """Sends rendered (JSON) log lines to journald; falls back to ``fallback`` if it cannot."""

    def __init__(self, fallback: TextIO | None = None, address: str = JOURNAL_SOCKET) -> None:
        self.address = address
        self.fallback = fallback or sys.stderr
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def write_json(self, line: str) -> None:
        try:
            event = json.loads(line)
            self._socket.sendto(encode_entry(journal_fields(event)), self.address)
        except (OSError, ValueError):
            # journald gone, or an entry too large for one datagram: stderr still reaches it.
            print(line, file=self.fallback, flush=True)

    # structlog calls the logger method named after the level with the rendered line.
    def msg(self, message: str) -> None:
        self.write_json(message)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg

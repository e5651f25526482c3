"""Structured logging: journald fields under systemd, JSON lines off a TTY, readable text on one."""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO, cast

import structlog

from calld.journal import JOURNAL_SOCKET, JournalWriter, stderr_is_journal

# Values under these keys never reach a log line, whatever logs them.
_SECRET_KEYS = frozenset({"secret", "password", "token", "authorization", "api_key"})


def _redact(_logger: object, _name: str, event_dict: structlog.typing.EventDict) -> structlog.typing.EventDict:
    for key in event_dict.keys() & _SECRET_KEYS:
        event_dict[key] = "[redacted]"
    return event_dict


class LogFailures:
    """How many log writes failed (a terminal that went away, a full disk), for ``/metrics``.

    Logging never fails what calld is doing: a request is answered whether or not its log line
    could be written."""

    def __init__(self) -> None:
        self.count = 0


class _SafeStream(io.TextIOBase):
    """``stream`` whose failed writes are counted instead of raised (a log line is not worth a request)."""

    def __init__(self, stream: TextIO, failures: LogFailures) -> None:
        super().__init__()
        self._stream = stream
        self._failures = failures

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError):  # ValueError: the stream was closed
            self._failures.count += 1
            return 0

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            self._failures.count += 1

    def isatty(self) -> bool:
        try:
            return self._stream.isatty()
        except (OSError, ValueError):
            return False


# Secrets inside text (an exception's message quoting a malformed request's headers, a URL): API
# tokens, bearer credentials, credential-carrying headers and URL passwords.
_SECRET_TEXT = (
    (re.compile(r"(calld_[0-9a-f]{12}_)[A-Za-z0-9_-]+"), r"\1[redacted]"),
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s'\",;]+"), r"\1\2[redacted]"),
    (
        re.compile(
            r"(?i)\b(authorization|proxy-authorization|cookie|set-cookie|calld-signature)(['\"]?\s*[:=,]\s*['\"]?)[^\r\n'\"]+"
        ),
        r"\1\2[redacted]",
    ),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s/:@]*:)[^\s/@]+@"), r"\1[redacted]@"),
)


def scrub(text: str) -> str:
    """``text`` with any secret it quotes replaced by ``[redacted]``."""
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


def _scrub_text(_logger: object, _name: str, event_dict: structlog.typing.EventDict) -> structlog.typing.EventDict:
    """The last step before rendering, for calld's lines and the libraries' (aiohttp's error log
    quotes a malformed request's headers, token included): no value carries a secret."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = scrub(value)
        elif isinstance(value, list | tuple | dict):
            event_dict[key] = scrub(str(value)) if _SECRET_HINT.search(str(value)) else value
    return event_dict


_SECRET_HINT = re.compile(r"(?i)calld_|bearer|basic|authorization|cookie|signature|://[^\s/]*@")


class RepeatLimiter(logging.Filter):
    """Lets the same warning or error (logger and message template) through ``burst`` times per
    ``interval_seconds`` and drops the rest, calling ``on_suppressed(logger)`` for each dropped line.

    A fault that repeats per connection or per loop turn (asyncio's ``Too many open files`` on every
    accept) would otherwise write thousands of lines a second; the first lines say what is wrong,
    and the metric says how often it went on.
    """

    def __init__(
        self,
        on_suppressed: Callable[[str], None] = lambda _logger: None,
        *,
        burst: int = 5,
        interval_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.on_suppressed = on_suppressed
        self.burst = burst
        self.interval = interval_seconds
        self.clock = clock
        self._windows: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        # One decision per record, however many handlers it passes through.
        decided: bool | None = getattr(record, "calld_repeat_allowed", None)
        if decided is None:
            decided = self._allow(record)
            record.calld_repeat_allowed = decided
        return decided

    def _allow(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        started, seen = self._windows.get(key, (now, 0))
        if now - started >= self.interval:
            started, seen = now, 0
        self._windows[key] = (started, seen + 1)
        if len(self._windows) > 1000:  # bounded: forget the oldest windows
            for old in list(self._windows)[:500]:
                del self._windows[old]
        if seen < self.burst:
            return True
        self.on_suppressed(record.name)
        return False

    def install(self) -> None:
        """Filter every handler of the root logger (again after ``configure_logging`` replaced them)."""
        for handler in logging.getLogger().handlers:
            if self not in handler.filters:
                handler.addFilter(self)

    def remove(self) -> None:
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self)


class _JournalHandler(logging.Handler):
    """The standard library's records (aiohttp, SQLAlchemy) to journald, rendered like calld's own."""

    def __init__(self, writer: JournalWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        self.writer.write_json(self.format(record))


def configure_logging(
    level: str = "info",
    fmt: str = "auto",
    stream: TextIO | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    journal_address: str = JOURNAL_SOCKET,
    failures: LogFailures | None = None,
) -> None:
    """Set up structlog (and the standard library's logging, for aiohttp and SQLAlchemy).

    ``auto`` sends to journald when stderr is the journal stream systemd set up, else JSON lines off
    a terminal and readable text on one. A write that fails is counted in ``failures``, never raised.
    """
    raw = stream or sys.stderr
    env = os.environ if environ is None else environ
    to_journal = fmt == "journal" or (fmt == "auto" and stderr_is_journal(raw, env))
    # A text stream in all that loggers use of one (write, flush, isatty).
    out = cast(TextIO, _SafeStream(raw, failures if failures is not None else LogFailures()))
    as_json = to_journal or fmt == "json" or (fmt == "auto" and not out.isatty())
    numeric = logging.getLevelNamesMapping()[level.upper()]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    writer = JournalWriter(out, journal_address) if to_journal else None
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, _scrub_text, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # One write per line (print() makes two): a thread logging through the standard library
        # (aiosqlite's, at debug level) cannot land between a line and its newline.
        logger_factory=structlog.WriteLoggerFactory(out) if writer is None else _constant(writer),
        cache_logger_on_first_use=False,
    )
    handler: logging.Handler = logging.StreamHandler(out) if writer is None else _JournalHandler(writer)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _scrub_text,
                renderer,
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO) if numeric > logging.DEBUG else numeric)
    # aiohttp's own access log duplicates calld's request log line.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # Alembic announces every plugin and migration step at INFO; only problems belong in the journal.
    logging.getLogger("alembic").setLevel(max(numeric, logging.WARNING))


def _constant(writer: JournalWriter) -> Any:
    def factory(*_args: Any) -> JournalWriter:
        return writer

    return factory

"""The SQLite database file before calld opens it: created owner-only, checked when it exists.

A damaged file must stop calld with one line that names it, not start "ready" and fail every
request while writes go on into it; an empty file is not a database calld wrote (a truncation, a
mistaken ``touch``), so it is refused rather than silently becoming a new, empty one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from calld.files import make_private

# SQLite's words for a file it cannot trust (sqlite3.DatabaseError messages).
DAMAGE_MESSAGES = ("malformed", "not a database", "file is encrypted", "disk image")


class DatabaseDamaged(Exception):
    """The SQLite file cannot be used; the message is one line naming the file and what to do."""


def prepare(path: Path) -> None:
    """Create ``path`` (mode 0600) if it does not exist; else tighten its mode and that of its WAL
    and SHM files, and raise ``DatabaseDamaged`` if it is empty or fails ``PRAGMA quick_check``."""
    if make_private(path):
        return
    for companion in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if companion.exists():
            make_private(companion)
    if path.stat().st_size == 0:
        raise DatabaseDamaged(
            f"database {path} is an empty file (0 bytes), not a calld database: "
            "restore it from a backup, or move it away to start with a new one"
        )
    check_integrity(path)


def check_integrity(path: Path) -> None:
    """``PRAGMA quick_check`` (every page and index entry, without cross-checking indexes)."""
    try:
        conn = sqlite3.connect(path)
        # A damaged page can put bytes that are not UTF-8 into quick_check's report (names, keys).
        conn.text_factory = lambda raw: raw.decode("utf-8", "replace")
        try:
            rows = [str(row[0]) for row in conn.execute("PRAGMA quick_check(5)")]
        finally:
            conn.close()
    except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
        raise DatabaseDamaged(
            f"database {path} cannot be read as SQLite ({_said(exc)}): restore it from a backup or move it away"
        ) from None
    if rows != ["ok"]:
        raise DatabaseDamaged(
            f"database {path} is damaged (PRAGMA quick_check: {'; '.join(rows)[:300]}): "
            "restore it from a backup or move it away"
        )


def _said(exc: BaseException) -> str:
    """What SQLite said. Its message may quote a damaged page's bytes (``malformed database schema
    (<garbled name>)``), which Python's sqlite3 then fails to decode: read those as best it can."""
    if isinstance(exc, UnicodeDecodeError) and isinstance(exc.object, bytes):
        return exc.object.decode("utf-8", "replace")
    return str(exc)


def is_damage(exc: BaseException) -> bool:
    """Whether a database error says the SQLite file is damaged."""
    error = getattr(exc, "orig", exc)
    text = _said(error).lower()
    said_by_sqlite = isinstance(error, sqlite3.DatabaseError | UnicodeDecodeError)
    return said_by_sqlite and any(m in text for m in DAMAGE_MESSAGES)

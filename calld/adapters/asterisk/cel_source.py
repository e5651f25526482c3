"""Where Asterisk keeps its CEL rows: a ``cel_custom`` CSV file or a ``cel_sqlite3_custom`` table.

Both are read in a worker thread (file and SQLite I/O would block the event loop) and only for the
window calld missed: the CSV from its end backwards, the table by ``eventtime``. The column layout
is the one ``calld.adapters.asterisk.cel.CEL_COLUMNS`` names (README: "After a fault").
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from calld.adapters.asterisk.cel import CEL_COLUMNS, Row, parse_eventtime, window_rows
from calld.adapters.csv_tail import tail_rows


class CelSource(Protocol):
    """Asterisk's CEL rows of the calls that have a row at or after ``since``."""

    async def rows(self, since: datetime) -> list[Row]: ...


class CelCsvFile:
    """``cel_custom``'s CSV (``calld.csv``), read backwards from its end to ``since - lookback``."""

    def __init__(self, path: str, lookback: timedelta, columns: Sequence[str] = CEL_COLUMNS) -> None:
        self.path = Path(path)
        self.lookback = lookback
        self.columns = tuple(columns)
        self._time_at = self.columns.index("eventtime")

    async def rows(self, since: datetime) -> list[Row]:
        return await asyncio.to_thread(self._rows, since)

    def _rows(self, since: datetime) -> list[Row]:
        found = tail_rows(self.path, since - self.lookback, self._row_time)
        return window_rows([dict(zip(self.columns, values, strict=False)) for values in found], since, self.lookback)

    def _row_time(self, values: Sequence[str]) -> datetime | None:
        return parse_eventtime(values[self._time_at]) if len(values) > self._time_at else None


class CelSqliteTable:
    """``cel_sqlite3_custom``'s table (``master.db``, table ``cel``), opened read-only.

    Its ``eventtime`` must be written as unix seconds (``eventtime(float)`` in the mapping), so
    that the window is one indexed comparison in SQL.
    """

    def __init__(self, path: str, lookback: timedelta, table: str = "cel") -> None:
        if not table.replace("_", "").isalnum():
            raise ValueError(f"not a table name: {table!r}")
        self.path = path
        self.lookback = lookback
        self.table = table

    async def rows(self, since: datetime) -> list[Row]:
        return await asyncio.to_thread(self._rows, since)

    def _rows(self, since: datetime) -> list[Row]:
        if not Path(self.path).exists():
            return []
        columns = ", ".join(CEL_COLUMNS)
        earliest = (since - self.lookback).timestamp()
        query = (
            f"SELECT {columns} FROM {self.table} WHERE CAST(eventtime AS REAL) >= ? AND linkedid IN "
            f"(SELECT linkedid FROM {self.table} WHERE CAST(eventtime AS REAL) >= ?)"
        )
        connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5.0)
        try:
            found = connection.execute(query, (earliest, since.timestamp())).fetchall()
        finally:
            connection.close()
        return [
            {name: "" if value is None else str(value) for name, value in zip(CEL_COLUMNS, row, strict=False)}
            for row in found
        ]


def cel_sources(csv_path: str, sqlite_path: str, table: str, lookback: timedelta) -> list[CelSource]:
    """The CEL stores configured (``[asterisk] cel_csv`` / ``cel_sqlite``), in that order."""
    sources: list[CelSource] = []
    if csv_path:
        sources.append(CelCsvFile(csv_path, lookback))
    if sqlite_path:
        sources.append(CelSqliteTable(sqlite_path, lookback, table))
    return sources

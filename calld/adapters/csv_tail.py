"""The end of a switch's CSV record file, read backwards to a point in time.

Switches append call records to one CSV file for years (Asterisk ``cel_custom``, FreeSWITCH
``mod_cdr_csv``); recovering the minutes calld missed must not read all of it.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

_BLOCK = 1 << 16

RowTime = Callable[[Sequence[str]], datetime | None]


def tail_rows(path: Path, earliest: datetime, row_time: RowTime) -> list[list[str]]:
    """The file's rows from the last one older than ``earliest`` on (rows are appended in time
    order); [] when the file does not exist yet (a switch creates it with its first record)."""
    if not path.exists():
        return []
    with open(path, "rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        start, data = end, b""
        while start > 0:
            start = max(0, start - _BLOCK)
            handle.seek(start)
            data = handle.read(end - start)
            first_full = data.find(b"\n") + 1 if start > 0 else 0
            at = row_time(_split(data[first_full : data.find(b"\n", first_full)]))
            if at is not None and at < earliest:
                break
        if start > 0:
            data = data[data.find(b"\n") + 1 :]
    return list(csv.reader(io.StringIO(data.decode("utf-8", errors="replace"))))


def _split(line: bytes) -> list[str]:
    return next(csv.reader([line.decode("utf-8", errors="replace")]), [])

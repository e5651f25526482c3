"""Calls exported as CSV or NDJSON, streamed batch after batch.

Memory stays flat however many calls match: each batch (``BATCH`` calls) is read, turned into text
and handed on before the next is read (``calld.storage.call_export``). The columns are the list's
fields under the same names, then ``client_name``, ``sip_configuration_name`` and ``participants``
(``EXPORT_FIELDS``, in that order; new fields are only ever appended).

CSV is RFC 4180 (a header row, CRLF line ends, fields quoted when they hold a comma, a quote or a line
break) and spreadsheet-safe: a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is prefixed with an apostrophe, so a spreadsheet shows it as text instead of running it as a
formula (this also keeps the ``+`` of E.164 numbers, which spreadsheets would otherwise drop).
NDJSON is one JSON object a line, typed (numbers, booleans, null), never neutralised.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from calld.domain.call_filter import CallFilter
from calld.service.access import AccessCheck, guarded_read
from calld.service.views import EXPORT_FIELDS, REPORT_SERIES_FIELDS, call_export_json
from calld.storage.call_export import Key, export_batch_full, key_of
from calld.storage.database import Database

BATCH = 1000


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(slots=True)
class Tally:
    """How many calls an export has written so far."""

    calls: int = 0


class ExportFormat(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"

    @property
    def content_type(self) -> str:
        return "text/csv" if self is ExportFormat.CSV else "application/x-ndjson"


def file_name(fmt: ExportFormat, now: datetime) -> str:
    """The name an export is offered under: ``calld-calls-20261203T142500Z.csv``."""
    return f"calld-calls-{now:%Y%m%dT%H%M%SZ}.{fmt.value}"


def csv_cell(value: Any) -> str:
    """One CSV cell: empty for null, true/false, numbers as written, text neutralised."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = ";".join(str(item) for item in value) if isinstance(value, list) else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_lines(rows: Iterable[dict[str, Any]], *, header: bool) -> str:
    """RFC 4180 lines (CRLF) for exported calls (the header row first if asked); ``parties`` as text."""
    return csv_rows(EXPORT_FIELDS, ({**row, "parties": parties_text(row["parties"])} for row in rows), header=header)


def parties_text(parties: Iterable[dict[str, Any]]) -> str:
    """The parties in one cell, in the order they joined: ``caller 1000 (Alice) answered
    NORMAL_CLEARING; callee 1002 LOSE_RACE`` (role, number, name where it says more than the number,
    whether the party answered, how its leg ended)."""
    out = []
    for party in parties:
        words = [party["role"], party["number"]]
        if party["name"] and party["name"] != party["number"]:
            words.append(f"({party['name']})")
        if party["answered_at"]:
            words.append("answered")
        if party["end_cause"]:
            words.append(party["end_cause"])
        out.append(" ".join(words))
    return "; ".join(out)


def csv_rows(fields: Sequence[str], rows: Iterable[dict[str, Any]], *, header: bool = True) -> str:
    """RFC 4180 lines (CRLF) of ``fields`` of ``rows``, spreadsheet-safe (``csv_cell``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(fields)
    writer.writerows([csv_cell(row[name]) for name in fields] for row in rows)
    return out.getvalue()


def ndjson_lines(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows)


async def export_chunks(
    db: Database,
    flt: CallFilter,
    ordering: str,
    fmt: ExportFormat,
    guard: AccessCheck | None = None,
    batch: int = BATCH,
    tally: Tally | None = None,
) -> AsyncGenerator[bytes, None]:
    """The export's bytes, a batch of calls at a time; the first chunk (the CSV header with the first
    batch) comes from a read that ``guard`` checks first, so a refused token gets nothing."""
    after: Key | None = None
    first = True
    while True:
        rows, tags, parties = await guarded_read(
            db, guard if first else None, export_batch_full, flt, ordering, after, batch
        )
        shaped = [call_export_json(row, tags.get(row.id, []), parties.get(row.id, [])) for row in rows]
        text = csv_lines(shaped, header=first) if fmt is ExportFormat.CSV else ndjson_lines(shaped)
        if tally is not None:
            tally.calls += len(rows)
        if text:
            yield text.encode()
        if len(rows) < batch:
            return
        after = key_of(rows[-1], ordering)
        first = False


def report_csv(report: dict[str, Any]) -> str:
    """A statistics report's series as RFC 4180 CSV (header row; the cells as an export's)."""
    return csv_rows(REPORT_SERIES_FIELDS, report["series"])

"""The statistics report read from the rollups ``call_stats_hours`` and ``call_stats_groups`` (0023, 0013).

Whole UTC hours come from the hourly level when the zone's offset is whole hours (``levels``), the
quarter hours around them and every quarter hour of other zones from the 15-minute level.

Whole 15-minute buckets inside the range are summed in SQL, grouped by the calendar unit of the
report's interval in its zone: the bucket's local time is ``bucket + offset``, with the offset a CASE
over the zone's DST changes in the range, and the group's first bucket tells Python which report
bucket it belongs to. A year of hourly buckets is then ~8,800 rows out of ~35,000 bucket rows. The
ragged edges of the range (at most a quarter hour at either end) are read from ``call_logs``.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from calld.domain.statistics import (
    BUCKET_SECONDS,
    Binner,
    Bucket,
    CallFacts,
    GroupBy,
    Interval,
    ReportRequest,
    buckets,
    cell_columns,
    contribution,
    epoch,
    extension_of,
    offset_segments,
    report_cell,
)
from calld.storage.models import CallLog
from calld.storage.rollup import HOUR_SECONDS

QUARTERS, HOURS = "call_stats_groups", "call_stats_hours"  # the rollup's two levels
Key = str | None  # a group's key (None: the calls with no value, or no grouping)
_UUID_KEYED = (GroupBy.CLIENT, GroupBy.SIP_CONFIGURATION)


@dataclass(slots=True)
class ReportSums:
    """The report's buckets and, per bucket index and group key, a cell (``cell_columns``)."""

    buckets: list[Bucket]
    cells: dict[tuple[int, Key], tuple[float, ...]] = field(default_factory=dict)

    def add(self, index: int, key: Key, values: Sequence[float]) -> None:
        # Cells are tuples: a tuple of numbers leaves the garbage collector's lists at its first pass,
        # where 8,760 lists (a year of hours) were scanned again on every collection.
        cell = self.cells.get((index, key))
        if cell is None:  # most rows start a cell of their own: kept, not added to zeros
            self.cells[(index, key)] = tuple(values)
        else:
            self.cells[(index, key)] = tuple(map(operator.add, cell, values))


def _offset_sql(segments: list[tuple[int, int]]) -> str:
    if len(segments) == 1:
        return str(segments[0][1])
    branches = " ".join(
        f"WHEN bucket < {start} THEN {offset}" for (start, _), (_, offset) in zip(segments[1:], segments, strict=False)
    )
    return f"(CASE {branches} ELSE {segments[-1][1]} END)"


def _unit_sql(interval: Interval | None, offset: str) -> str:
    """The calendar unit a bucket falls in, as an integer (local hour, day or Monday-based week); ''
    without an interval (a literal would be read by SQLite as a column number)."""
    if interval is None:
        return ""
    if interval is Interval.HOUR:
        return f"(bucket + {offset}) / 3600"
    if interval is Interval.WEEK:
        return f"((bucket + {offset}) / 86400 + 3) / 7"  # 1970-01-01 was a Thursday
    return f"(bucket + {offset}) / 86400"  # days; a month is summed from its days


def levels(first: int, last: int, segments: Sequence[tuple[int, int]]) -> list[tuple[str, int, int]]:
    """The rollup tables that cover the whole quarter hours [first, last), as (table, from, until).

    When the zone's offset is whole hours all over the range and changes only on a whole UTC hour, each
    UTC hour lies in one local hour (and day, week, month): the whole hours come from ``call_stats_hours``
    and only the quarter hours before the first and after the last from ``call_stats_groups``. Other
    zones (India's +05:30, Nepal's +05:45, Lord Howe's half-hour DST) read quarter hours throughout."""
    whole_hours = all(offset % HOUR_SECONDS == 0 for _, offset in segments) and all(
        start % HOUR_SECONDS == 0 for start, _ in segments[1:]
    )
    hour_first = -(-first // HOUR_SECONDS) * HOUR_SECONDS
    hour_last = last // HOUR_SECONDS * HOUR_SECONDS
    if not whole_hours or hour_first >= hour_last:
        return [(QUARTERS, first, last)]
    spans = [(QUARTERS, first, hour_first), (HOURS, hour_first, hour_last), (QUARTERS, hour_last, last)]
    return [span for span in spans if span[1] < span[2]]


def _normal_key(group_by: GroupBy | None, raw: Any) -> Key:
    if group_by is None or raw is None or raw == "":
        return None
    text = str(raw)
    return str(uuid.UUID(text)) if group_by in _UUID_KEYED else text


def report_sums(conn: sa.Connection, request: ReportRequest) -> ReportSums:
    """Per report bucket and group, the sums over calls started in [request.start, request.end)."""
    result = ReportSums(buckets(request))
    binner = Binner(result.buckets)
    first = -(-epoch(request.start) // BUCKET_SECONDS) * BUCKET_SECONDS
    if datetime.fromtimestamp(first, UTC) < request.start:
        first += BUCKET_SECONDS  # start had a fraction of a second past a boundary
    last = max(epoch(request.end) // BUCKET_SECONDS * BUCKET_SECONDS, first)
    dimension = request.group_by.value if request.group_by is not None else "all"
    if first < last:
        segments = offset_segments(request.zone, request.start, request.end)
        offset = _offset_sql(segments)
        unit = _unit_sql(request.interval, offset)
        # The offset splits a local unit seen twice (the repeated hour of an autumn night); SQLite
        # reads an integer literal in GROUP BY as a column number, so a constant one is left out.
        terms = [term for term in (unit, offset if unit and len(segments) > 1 else "") if term]
        # Only the service level asked for: 12 sums a row instead of 19.
        cell_names = cell_columns(request.service_level_seconds)
        columns = ", ".join(cell_names)
        sums = ", ".join(f"sum({column})" for column in cell_names)
        where = "dimension = :dimension AND bucket >= :first AND bucket < :last"
        grouping = ", ".join([*terms, "key"])
        for table, low, high in levels(first, last, segments):
            if table == HOURS and request.interval is Interval.HOUR:
                # An hourly row is one local hour (of a whole-hour zone) and (dimension, bucket, key)
                # its primary key: each row is a cell as it is, read in the key's order (half the
                # time of grouping the same rows).
                statement = f"SELECT bucket, key, {columns} FROM {table} WHERE {where}"
            else:
                statement = f"SELECT min(bucket), key, {sums} FROM {table} WHERE {where} GROUP BY {grouping}"
            rows = conn.execute(
                sa.text(statement), {"dimension": dimension, "first": low, "last": high}
            ).fetchall()  # one call for every row: ~9,000 for a year of hours
            for row in rows:
                result.add(binner.index(row[0]), _normal_key(request.group_by, row[1]), row[2:])
    edges = [(request.start, datetime.fromtimestamp(first, UTC)), (datetime.fromtimestamp(last, UTC), request.end)]
    if first >= last:
        edges = [(request.start, request.end)]
    for lo, hi in edges:
        if lo < hi:
            _add_raw(conn, result, binner, request, lo, hi)
    return result


_RAW = sa.select(
    CallLog.started_at,
    CallLog.direction,
    CallLog.status,
    CallLog.answered_at,
    CallLog.ended_at,
    CallLog.duration_seconds,
    CallLog.ring_seconds,
    CallLog.hold_seconds,
    CallLog.caller_number,
    CallLog.recipient_number,
    CallLog.client_id,
    CallLog.sip_configuration_id,
)


def _raw_key(group_by: GroupBy | None, row: Any) -> Key:
    if group_by is GroupBy.DIRECTION:
        return str(row.direction.value)
    if group_by is GroupBy.EXTENSION:
        return extension_of(row.direction.value, row.caller_number, row.recipient_number) or None
    if group_by is GroupBy.CLIENT:
        return str(row.client_id) if row.client_id is not None else None
    if group_by is GroupBy.SIP_CONFIGURATION:
        return str(row.sip_configuration_id) if row.sip_configuration_id is not None else None
    return None


def _add_raw(
    conn: sa.Connection, result: ReportSums, binner: Binner, request: ReportRequest, lo: datetime, hi: datetime
) -> None:
    """Calls started in [lo, hi), read one by one (a quarter hour's worth at most, or a short range)."""
    for row in conn.execute(_RAW.where(CallLog.started_at >= lo, CallLog.started_at < hi)):
        facts = CallFacts(
            direction=row.direction.value,
            status=row.status.value,
            answered=row.answered_at is not None,
            ended=row.ended_at is not None,
            duration_seconds=row.duration_seconds,
            ring_seconds=row.ring_seconds,
            hold_seconds=row.hold_seconds,
        )
        cell = report_cell(contribution(facts), request.service_level_seconds)
        result.add(binner.index(epoch(row.started_at)), _raw_key(request.group_by, row), cell)

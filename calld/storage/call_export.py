"""Calls read in order, batch after batch, for exports: constant memory however many there are.

Each batch starts after the last row of the one before (keyset pagination on the ordering column and
the id, as the list orders them), so a batch costs the same at row 1 and at row 10M (an OFFSET would
re-read every row before it) and no transaction or cursor stays open between batches.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa

from calld.domain.call_filter import CallFilter
from calld.storage.call_queries import CALL_COLUMNS, conditions, order_by, participants_of_calls, tags_of
from calld.storage.models import CallLog, Client, SipConfiguration

# What an export adds to a call's columns: the names people read in a spreadsheet.
EXPORT_COLUMNS = [
    *CALL_COLUMNS,
    Client.name.label("client_name"),
    SipConfiguration.name.label("sip_configuration_name"),
]

Key = tuple[Any, Any]  # (ordering column's value, id) of the last row exported


def _after(ordering: str, key: Key) -> sa.ColumnElement[bool]:
    """Rows that come after ``key`` in ``ordering`` (ties broken by id in the same direction; NULL
    durations last either way, as ``order_by`` sorts them)."""
    name = ordering.lstrip("-")
    column = getattr(CallLog, name)
    value, last_id = key
    descending = ordering.startswith("-")
    later_id = CallLog.id < last_id if descending else CallLog.id > last_id
    if value is None:  # only NULLs (sorted last) remain
        return sa.and_(column.is_(None), later_id)
    later = column < value if descending else column > value
    after = sa.or_(later, sa.and_(column == value, later_id))
    return sa.or_(after, column.is_(None)) if name == "duration_seconds" else after


class ExportBatch(NamedTuple):
    """One batch of exported calls with what each carries beside its columns."""

    rows: Sequence[sa.Row[Any]]
    tags: dict[uuid.UUID, list[str]]
    parties: dict[uuid.UUID, list[sa.Row[Any]]]


def export_batch_full(
    conn: sa.Connection, flt: CallFilter, ordering: str, after: Key | None, limit: int
) -> ExportBatch:
    """``export_batch`` with the tags and the parties of its calls (two more indexed queries)."""
    rows = export_batch(conn, flt, ordering, after, limit)
    ids = [row.id for row in rows]
    return ExportBatch(rows, tags_of(conn, ids), participants_of_calls(conn, ids))


def export_batch(
    conn: sa.Connection, flt: CallFilter, ordering: str, after: Key | None, limit: int
) -> Sequence[sa.Row[Any]]:
    """Up to ``limit`` calls matching ``flt`` in ``ordering``, after ``after`` (None: from the first)."""
    conds = conditions(flt, conn.dialect.name)
    if after is not None:
        conds.append(_after(ordering, after))
    stmt = (
        sa.select(*EXPORT_COLUMNS)
        .select_from(CallLog)
        .outerjoin(Client, Client.id == CallLog.client_id)
        .outerjoin(SipConfiguration, SipConfiguration.id == CallLog.sip_configuration_id)
        .where(*conds)
        .order_by(*order_by(ordering))
        .limit(limit)
    )
    return list(conn.execute(stmt))


def key_of(row: sa.Row[Any], ordering: str) -> Key:
    """Where the next batch starts: after this row."""
    mapping = row._mapping
    return mapping[ordering.lstrip("-")], mapping["id"]

"""Calls read in order, batch after batch, for exports: constant memory however many there are.

Each batch starts after the last row of the one before (keyset pagination on the ordering column and
the id, as the list orders them), so a batch costs the same at row 1 and at row 10M (an OFFSET would
re-read every row before it) and no transaction or cursor stays open between batches.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from calld.domain.call_filter import CallFilter
from calld.storage.call_queries import CALL_COLUMNS, conditions, order_by, tags_of
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


def export_batch_tags(
    conn: sa.Connection, flt: CallFilter, ordering: str, after: Key | None, limit: int
) -> tuple[Sequence[sa.Row[Any]], dict[uuid.UUID, list[str]]]:
    """``export_batch`` and the tags of its calls (one more indexed query)."""
    rows = export_batch(conn, flt, ordering, after, limit)
    return rows, tags_of(conn, [row.id for row in rows])


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

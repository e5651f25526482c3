"""Read queries over calls: filtered pages, statistics, and the look-ups the call API needs.

Filtering, counting and aggregation happen in SQL; nothing here loads more rows than one page.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from calld.domain.call import TimedEvent
from calld.domain.call_filter import CRITERIA_BY_PARAM, ORDERINGS, CallFilter, ColumnCriterion, Compare
from calld.domain.vocabulary import CallDirection, CallStatus, EventType, RecordingStatus
from calld.storage import search
from calld.storage.models import (
    Base,
    CallEvent,
    CallLog,
    CallParticipant,
    CallRecording,
    CallStatsBucket,
    CallTag,
    CallTotal,
    Client,
    SipConfiguration,
)
from calld.storage.rollup import covered


def conditions(flt: CallFilter, dialect: str) -> list[sa.ColumnElement[bool]]:
    """The WHERE clauses of ``flt`` on ``dialect`` (``sqlite`` or ``postgresql``: the text search differs)."""
    conds: list[sa.ColumnElement[bool]] = []
    if flt.statuses:
        conds.append(CallLog.status.in_(flt.statuses))
    if flt.directions:
        conds.append(CallLog.direction.in_(flt.directions))
    if flt.call_types:
        conds.append(CallLog.call_type.in_(flt.call_types))
    if flt.number is not None:
        conds.append(sa.or_(CallLog.caller_number == flt.number, CallLog.recipient_number == flt.number))
    if flt.client_id is not None:
        conds.append(CallLog.client_id == flt.client_id)
    if flt.started_after is not None:
        conds.append(CallLog.started_at >= flt.started_after)
    if flt.started_before is not None:
        conds.append(CallLog.started_at < flt.started_before)
    if flt.number_pattern is not None:
        conds.append(search.number_pattern_condition(flt.number_pattern, dialect))
    if flt.has_recording is not None:
        conds.append(search.recording_condition(flt.has_recording, dialect))
    if flt.has_transcript is not None:
        conds.append(search.transcript_condition(flt.has_transcript, dialect))
    if flt.text is not None:
        conds.append(search.text_condition(flt.text, dialect))
    if flt.tags:
        conds.append(search.tag_condition(flt.tags, dialect))
    for param, value in flt.criteria.items():
        conds.append(_criterion(CRITERIA_BY_PARAM[param], value))
    return conds


def _criterion(criterion: ColumnCriterion, value: object) -> sa.ColumnElement[bool]:
    column = getattr(CallLog, criterion.column)
    if criterion.compare is Compare.ANY_OF:
        assert isinstance(value, tuple)
        return column.in_([str(v) for v in value])  # type: ignore[no-any-return]
    if criterion.compare is Compare.EQUALS:
        return column == value  # type: ignore[no-any-return]
    if criterion.compare is Compare.AT_LEAST:
        return column >= value  # type: ignore[no-any-return]
    return column <= value  # type: ignore[no-any-return]


def order_by(ordering: str, *, sort_matches: bool = False) -> list[sa.ColumnElement[Any]]:
    """ORDER BY of ``ordering``; ``sort_matches`` orders by an expression no index has, so that the
    database finds the matches through the filters' indexes and sorts them (see ``SORT_MATCHES_UP_TO``)."""
    if ordering not in ORDERINGS:
        raise ValueError(f"unknown ordering {ordering!r}")
    descending = ordering.startswith("-")
    column = getattr(CallLog, ordering.lstrip("-"))
    if sort_matches:
        column = sa.func.coalesce(column, column)
    key = column.desc() if descending else column.asc()
    # NULL durations (calls still live) sort last either way, on both databases alike.
    if ordering.lstrip("-") == "duration_seconds":
        key = key.nulls_last()
    tie = CallLog.id.desc() if descending else CallLog.id.asc()
    return [key, tie]


def _attribute_columns(model: type[Base]) -> list[sa.Label[Any]]:
    """A model's columns labelled by attribute name, so Core rows read like the model
    (``event.meta``, not ``event.metadata``) and serialise like it."""
    return [prop.columns[0].label(prop.key) for prop in sa.inspect(model).column_attrs]


CALL_COLUMNS = _attribute_columns(CallLog)
EVENT_COLUMNS = _attribute_columns(CallEvent)
RECORDING_COLUMNS = _attribute_columns(CallRecording)
PARTICIPANT_COLUMNS = _attribute_columns(CallParticipant)


# At most this many matching calls are sorted rather than found along the ordering's index.
SORT_MATCHES_UP_TO = 5000

_TOTAL = sa.select(CallTotal.calls).where(CallTotal.id == 1)


def call_page(
    conn: sa.Connection, flt: CallFilter, *, ordering: str, limit: int, offset: int
) -> tuple[int, list[sa.Row[Any]]]:
    """The total number of calls matching ``flt`` and one page of them, as Core rows (``tags_of`` has their tags)."""
    conds = conditions(flt, conn.dialect.name)
    if conds:
        total = conn.execute(sa.select(sa.func.count()).select_from(CallLog).where(*conds)).scalar_one()
    else:
        # Unfiltered, the running total kept by triggers (migration 0005) is the count: one row,
        # instead of counting every call (linear in the table, ~0.5 s at 10M). No row yet: no call
        # was ever stored since the tables were emptied.
        total = conn.execute(_TOTAL).scalar_one_or_none() or 0
    # Few matches: read them through the filters' indexes and sort them. Otherwise the planners
    # (estimating a filter's selectivity from no or coarse statistics) may walk the ordering's index
    # through every call looking for a page of rare matches (seen: 0.2 s for 10 matches in 300,000).
    # Many matches lie densely along that index, which finds a page at once.
    sort_matches = bool(conds) and total <= SORT_MATCHES_UP_TO
    page = {"limit": limit, "offset": offset}
    if not conds:
        return int(total), list(conn.execute(_UNFILTERED_PAGES[ordering], page))
    stmt = _page(sa.select(*CALL_COLUMNS).where(*conds), ordering, sort_matches=sort_matches)
    return int(total), list(conn.execute(stmt, page))


def _page(stmt: sa.Select[Any], ordering: str, *, sort_matches: bool = False) -> sa.Select[Any]:
    """``stmt`` in ``ordering``, one page of it (parameters ``limit`` and ``offset``)."""
    return (
        stmt.order_by(*order_by(ordering, sort_matches=sort_matches))
        .limit(sa.bindparam("limit", type_=sa.Integer))
        .offset(sa.bindparam("offset", type_=sa.Integer))
    )


# The unfiltered page (the console's and most clients' first request) in each ordering, built once:
# building a 44-column statement and keying it for the compiled cache costs more than reading it.
_UNFILTERED_PAGES = {ordering: _page(sa.select(*CALL_COLUMNS), ordering) for ordering in ORDERINGS}


def tagged_call_page(
    conn: sa.Connection, flt: CallFilter, *, ordering: str, limit: int, offset: int
) -> tuple[int, list[sa.Row[Any]], dict[uuid.UUID, list[str]]]:
    """``call_page`` and the tags of its calls, on one connection."""
    total, rows = call_page(conn, flt, ordering=ordering, limit=limit, offset=offset)
    return total, rows, tags_of(conn, [row.id for row in rows])


@dataclass(frozen=True, slots=True)
class CallDetail:
    """A call with its events (oldest first) and recordings (oldest first), as Core rows, and its tags."""

    call: sa.Row[Any]
    events: list[sa.Row[Any]]
    recordings: list[sa.Row[Any]]
    participants: list[sa.Row[Any]]
    tags: list[str]


def tags_of(conn: sa.Connection, call_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """The tags of each of ``call_ids`` (sorted; calls without any are absent)."""
    found: dict[uuid.UUID, list[str]] = {}
    if call_ids:
        for call_id, tag in conn.execute(_TAGS_OF, {"ids": list(call_ids)}):
            found.setdefault(call_id, []).append(tag)
    return found


# Built once: a statement made per call costs more to build and key for the cache (~0.1 ms) than a
# detail's other reads cost to run.
_TAGS_OF = (
    sa.select(CallTag.call_id, CallTag.tag)
    .where(CallTag.call_id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(CallTag.tag)
)


_CALL_BY_ID = sa.select(*CALL_COLUMNS).where(CallLog.id == sa.bindparam("call_id"))
_EVENTS_OF = (
    sa.select(*EVENT_COLUMNS)
    .where(CallEvent.call_id == sa.bindparam("call_id"))
    .order_by(CallEvent.timestamp, CallEvent.id)
)
_RECORDINGS_OF = (
    sa.select(*RECORDING_COLUMNS)
    .where(CallRecording.call_id == sa.bindparam("call_id"))
    .order_by(CallRecording.created_at, CallRecording.id)
)

_PARTICIPANTS_OF = (
    sa.select(*PARTICIPANT_COLUMNS)
    .where(CallParticipant.call_id == sa.bindparam("call_id"))
    .order_by(CallParticipant.joined_at, CallParticipant.id)
)


def participants_of(conn: sa.Connection, call_id: uuid.UUID) -> list[sa.Row[Any]]:
    """A call's parties, in the order they joined."""
    return list(conn.execute(_PARTICIPANTS_OF, {"call_id": call_id}))


def participants_of_calls(conn: sa.Connection, call_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[sa.Row[Any]]]:
    """The parties of each of ``call_ids``, each call's in the order they joined (calls the switch
    reported no legs of are absent)."""
    found: dict[uuid.UUID, list[sa.Row[Any]]] = {}
    if call_ids:
        stmt = (
            sa.select(*PARTICIPANT_COLUMNS)
            .where(CallParticipant.call_id.in_(call_ids))
            .order_by(CallParticipant.call_id, CallParticipant.joined_at, CallParticipant.id)
        )
        for row in conn.execute(stmt):
            found.setdefault(row.call_id, []).append(row)
    return found


def call_detail(conn: sa.Connection, call_id: uuid.UUID) -> CallDetail | None:
    """A call, its events, recordings and participants (four indexed queries), or None."""
    params = {"call_id": call_id}
    call = conn.execute(_CALL_BY_ID, params).first()
    if call is None:
        return None
    return CallDetail(
        call,
        list(conn.execute(_EVENTS_OF, params)),
        list(conn.execute(_RECORDINGS_OF, params)),
        list(conn.execute(_PARTICIPANTS_OF, params)),
        tags_of(conn, [call_id]).get(call_id, []),
    )


async def recordings_of(session: AsyncSession, call_id: uuid.UUID) -> list[CallRecording]:
    """A call's recordings, oldest first."""
    return await session.run_sync(recordings_in, call_id)


def recordings_in(session: Session, call_id: uuid.UUID) -> list[CallRecording]:
    """``recordings_of`` in a synchronous session."""
    stmt = (
        sa.select(CallRecording)
        .where(CallRecording.call_id == call_id)
        .order_by(CallRecording.created_at, CallRecording.id)
    )
    return list(session.execute(stmt).scalars())


async def active_recording(session: AsyncSession, call_id: uuid.UUID) -> CallRecording | None:
    """The call's recording that is still being written, if any (the newest one)."""
    return await session.run_sync(active_recording_in, call_id)


def active_recording_in(session: Session, call_id: uuid.UUID) -> CallRecording | None:
    """``active_recording`` in a synchronous session."""
    stmt = (
        sa.select(CallRecording)
        .where(
            CallRecording.call_id == call_id,
            CallRecording.status.in_((RecordingStatus.PENDING, RecordingStatus.RECORDING)),
        )
        .order_by(CallRecording.created_at.desc(), CallRecording.id.desc())
        .limit(1)
    )
    return session.execute(stmt).scalar_one_or_none()


async def events_of_types(session: AsyncSession, call_id: uuid.UUID, types: Sequence[EventType]) -> list[TimedEvent]:
    """A call's events of these types, as the domain folds them, in time order."""
    stmt = (
        sa.select(CallEvent.event_type, CallEvent.timestamp, CallEvent.meta)
        .where(CallEvent.call_id == call_id, CallEvent.event_type.in_(types))
        .order_by(CallEvent.timestamp, CallEvent.id)
    )
    return [TimedEvent(kind, ts, meta) for kind, ts, meta in await session.execute(stmt)]


async def client_exists(session: AsyncSession, client_id: uuid.UUID) -> bool:
    stmt = sa.select(sa.literal(1)).where(Client.id == client_id)
    return (await session.execute(stmt)).first() is not None


async def sip_configuration(session: AsyncSession, config_id: uuid.UUID) -> SipConfiguration | None:
    return await session.get(SipConfiguration, config_id)


async def default_sip_configuration(session: AsyncSession) -> SipConfiguration | None:
    """The default SIP configuration, if there is one and it is active."""
    stmt = sa.select(SipConfiguration).where(SipConfiguration.is_default, SipConfiguration.active)
    return (await session.execute(stmt)).scalars().first()


@dataclass(frozen=True, slots=True)
class CallStatistics:
    total_calls: int
    answered_calls: int
    missed_calls: int
    inbound_calls: int
    outbound_calls: int
    answer_rate: float
    average_duration_seconds: float


def _count_where(cond: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(sa.func.sum(sa.case((cond, 1), else_=0)), 0)


def _raw_statistics(where: sa.ColumnElement[bool]) -> sa.Select[tuple[Any, ...]]:
    """Rollup-shaped sums over the calls ``where`` selects, straight from ``call_logs``."""
    answered = CallLog.answered_at.is_not(None)
    duration = sa.case((sa.and_(answered, CallLog.ended_at.is_not(None)), CallLog.duration_seconds))
    return sa.select(
        sa.func.count(),
        _count_where(answered),
        _count_where(CallLog.status.in_((CallStatus.MISSED, CallStatus.NO_ANSWER))),
        _count_where(CallLog.direction == CallDirection.INBOUND),
        _count_where(CallLog.direction == CallDirection.OUTBOUND),
        sa.func.coalesce(sa.func.sum(duration), 0.0),
        sa.func.count(duration),
    ).where(where)


def _in_range(start: datetime, end: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(CallLog.started_at >= start, CallLog.started_at < end)


def call_statistics(conn: sa.Connection, start: datetime, end: datetime) -> CallStatistics:
    """Counts and averages over calls started in [start, end).

    Whole 15-minute buckets come from the rollup (a few thousand rows for a month, however busy);
    only the partial buckets at either end (the current quarter hour, mostly) are read from
    ``call_logs``, through the ``started_at`` index.
    """
    buckets = covered(start, end)
    sums: tuple[Any, ...]
    if buckets is None:
        sums = tuple(conn.execute(_raw_statistics(_in_range(start, end))).one())
    else:
        first, last = (datetime.fromtimestamp(b, UTC) for b in buckets)
        edges = conn.execute(_raw_statistics(sa.or_(_in_range(start, first), _in_range(last, end)))).one()
        b = CallStatsBucket
        rolled = conn.execute(
            sa.select(
                *(
                    sa.func.coalesce(sa.func.sum(column), 0)
                    for column in (
                        b.total_calls,
                        b.answered_calls,
                        b.missed_calls,
                        b.inbound_calls,
                        b.outbound_calls,
                        b.duration_sum,
                        b.duration_count,
                    )
                )
            ).where(b.bucket >= buckets[0], b.bucket < buckets[1])
        ).one()
        sums = tuple(x + y for x, y in zip(edges, rolled, strict=True))
    total, answered_n, missed, inbound, outbound, duration_sum, duration_count = (
        int(sums[0]),
        int(sums[1]),
        int(sums[2]),
        int(sums[3]),
        int(sums[4]),
        float(sums[5]),
        int(sums[6]),
    )
    return CallStatistics(
        total_calls=total,
        answered_calls=answered_n,
        missed_calls=missed,
        inbound_calls=inbound,
        outbound_calls=outbound,
        answer_rate=round(answered_n * 100 / total, 2) if total else 0.0,
        average_duration_seconds=round(duration_sum / duration_count, 2) if duration_count else 0.0,
    )


def existing_dedup_keys(session: Session, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` are already stored as call events' de-duplication keys."""
    found: set[str] = set()
    for start in range(0, len(keys), 500):  # bounded IN lists
        chunk = keys[start : start + 500]
        rows = session.execute(sa.select(CallEvent.dedup_key).where(CallEvent.dedup_key.in_(chunk)))
        found.update(key for key in rows.scalars() if key is not None)
    return found

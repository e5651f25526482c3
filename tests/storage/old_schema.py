"""Rows stored by an older schema, for migration tests: written with Core statements naming only the
columns every schema since 0001 has, so a newer model's columns do not get in the way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from calld.storage.database import Database
from calld.storage.types import JSONType, UTCDateTime

# call_logs and call_events as every schema since 0001 has them (the models describe the newest).
_OLD_CALLS = sa.table(
    "call_logs",
    *(sa.column(name, sa.String()) for name in ("direction", "call_type", "status")),
    *(sa.column(name, sa.String()) for name in ("caller_number", "recipient_number")),
    *(sa.column(name, UTCDateTime()) for name in ("started_at", "last_event_at", "created_at", "updated_at")),
    sa.column("id", sa.Uuid()),
    sa.column("hold_seconds", sa.Float()),
    *(sa.column(name, sa.Boolean()) for name in ("recording", "seeded")),
    sa.column("notes", sa.Text()),
)
_OLD_EVENTS = sa.table(
    "call_events",
    sa.column("call_id", sa.Uuid()),
    *(sa.column(name, sa.String()) for name in ("event_type", "source")),
    *(sa.column(name, UTCDateTime()) for name in ("timestamp", "created_at")),
    sa.column("metadata", JSONType()),
)
_AT = datetime(2026, 11, 24, tzinfo=UTC)


async def insert_old_call(db: Database, caller: str = "+14155550100") -> uuid.UUID:
    """A call stored by an older schema (any since 0001), by plain SQL: the models describe the newest."""
    call_id = uuid.uuid4()
    times = dict.fromkeys(("started_at", "last_event_at", "created_at", "updated_at"), _AT)
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.insert(_OLD_CALLS).values(
                id=call_id,
                direction="inbound",
                call_type="voice",
                status="ringing",
                caller_number=caller,
                recipient_number="1001",
                hold_seconds=0.0,
                recording=False,
                seeded=False,
                notes="",
                **times,
            )
        )
    return call_id


async def insert_old_event(
    db: Database, call_id: uuid.UUID, source: str, seconds: int, event_type: str = "ringing"
) -> None:
    """An event of ``call_id``, ``seconds`` after the call started, stored by an older schema."""
    at = _AT + timedelta(seconds=seconds)
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.insert(_OLD_EVENTS).values(
                call_id=call_id, event_type=event_type, source=source, timestamp=at, created_at=at, metadata={}
            )
        )

"""Events stored by an older schema, for migration tests (calls: ``tests.support.insert_call_sql``):
written with Core statements naming only the columns every schema since 0001 has."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from calld.storage.database import Database
from calld.storage.types import JSONType, UTCDateTime

# call_events as every schema since 0001 has it (the models describe the newest).
_OLD_EVENTS = sa.table(
    "call_events",
    sa.column("call_id", sa.Uuid()),
    *(sa.column(name, sa.String()) for name in ("event_type", "source")),
    *(sa.column(name, UTCDateTime()) for name in ("timestamp", "created_at")),
    sa.column("metadata", JSONType()),
)
_AT = datetime(2026, 11, 24, tzinfo=UTC)


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

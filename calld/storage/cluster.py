"""The SQL of several calld sharing one PostgreSQL database: leader election per PBX with fencing.

A PBX's leader holds a session-level advisory lock keyed by the PBX's name on a connection of its
own (``pg_try_advisory_lock``); PostgreSQL releases it when that session ends (process killed,
host lost, connection terminated). Holding the lock is not enough to write safely: a leader
paused (SIGSTOP, a long GC, a VM migration) may resume after its session was ended and another
instance took over. So each new leader bumps ``pbx_leaders.epoch`` and every ingest transaction
of the leader reads the row ``FOR SHARE`` and compares the epoch it was elected with
(``check_fence``). The row lock orders the two: either the new leader's bump committed first (the
old leader's transaction sees the newer epoch and rolls back) or the old leader's transaction
committed first (it wrote while it still was the leader, before the new one started reading the
switch).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

# The advisory lock's first key ("call" as a 32-bit integer): keeps calld's locks apart from any
# other application's on the same database; the second key is hashtext(pbx name).
LOCK_CLASS = 0x63616C6C
TRY_LOCK = "SELECT pg_try_advisory_lock($1::int, hashtext($2))"
# A paused leader's transaction holding the row FOR SHARE would hold up the takeover's bump for as
# long as it is paused: its session is ended after this long idle in a transaction.
FENCED_IDLE_TIMEOUT_MS = 5000
TAKE_OFFICE = """
INSERT INTO pbx_leaders (pbx, epoch, holder, elected_at) VALUES ($1, 1, $2, now())
ON CONFLICT (pbx) DO UPDATE
    SET epoch = pbx_leaders.epoch + 1, holder = EXCLUDED.holder, elected_at = EXCLUDED.elected_at
RETURNING epoch
"""
LAST_LEADER = "SELECT holder FROM pbx_leaders WHERE pbx = $1"
_FENCE = sa.text(
    "SELECT set_config('idle_in_transaction_session_timeout', :idle, true), epoch "
    "FROM pbx_leaders WHERE pbx = :pbx FOR SHARE"
)


class NotLeader(Exception):
    """This instance no longer leads the PBX: what it was about to store is not written."""


def driver_dsn(url: str) -> str:
    """``url`` (SQLAlchemy's, any PostgreSQL driver) as the plain DSN asyncpg connects with."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def check_fence(session: Session, pbx: str, epoch: int) -> None:
    """Raise ``NotLeader`` unless ``epoch`` is still ``pbx``'s newest; keeps the row locked (shared)
    until ``session``'s transaction ends, so no takeover commits in between. Synchronous: it runs in
    the ingest's batch function (``Database.transact``), or through ``run_sync``."""
    row: Any = session.execute(_FENCE, {"pbx": pbx, "idle": str(FENCED_IDLE_TIMEOUT_MS)}).first()
    if row is None or row.epoch != epoch:
        raise NotLeader(f"{pbx}: elected with epoch {epoch}, now {row.epoch if row is not None else None}")


async def has_leader(session: AsyncSession, pbx: str) -> bool:
    """Whether a calld instance has ever led ``pbx`` here (its calls' actions go to its leader)."""
    found = await session.execute(sa.text("SELECT 1 FROM pbx_leaders WHERE pbx = :pbx"), {"pbx": pbx})
    return found.first() is not None

"""Leader election per PBX: the one calld instance that connects to the switch and stores its events.

``Elector.run`` loops for the life of the daemon: on a connection of its own it tries the PBX's
advisory lock every ``poll`` seconds (standby); once it holds it, it bumps the PBX's epoch
(``pbx_leaders``) and calls ``on_elected`` (the daemon starts its adapter, which resyncs from the
switch as on any connect). It then checks every ``poll`` seconds that the lock's session is alive;
when it is not (the server ended it, the network cut it), it calls ``on_deposed`` (the daemon stops
its adapter) and stands by again. Between losing the session and noticing, nothing it stores is
written: ``fence`` checks the epoch inside each ingest transaction (``calld.storage.cluster``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog
from sqlalchemy.orm import Session

from calld.storage.cluster import LAST_LEADER, LOCK_CLASS, TAKE_OFFICE, TRY_LOCK, NotLeader, check_fence

Hook = Callable[[], Awaitable[None]]
# Server-side TCP keepalive on the lock's session: a leader whose host vanished (no FIN, no RST)
# has its session ended, and so its lock released, within about idle + interval * count seconds.
_KEEPALIVE = (
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 1",
    "SET tcp_keepalives_count = 3",
)
# How long the takeover's epoch bump waits for a row lock held by the old leader's last transaction.
_TAKEOVER_LOCK_TIMEOUT = "SET lock_timeout = '2s'"


def default_instance_id() -> str:
    """This process's name when ``cluster.instance_id`` is empty: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def connect(dsn: str, timeout_seconds: float) -> asyncpg.Connection:
    """A connection of calld's own (not the pool's), with server-side keepalive set."""
    conn: asyncpg.Connection = await asyncpg.connect(dsn, timeout=timeout_seconds)
    for statement in _KEEPALIVE:
        with contextlib.suppress(asyncpg.PostgresError):  # a Unix socket has no TCP settings
            await conn.execute(statement)
    return conn


class Elector:
    """Elects this instance leader of ``pbx`` (or keeps it standing by); ``leading`` says which."""

    def __init__(self, dsn: str, pbx: str, instance: str, *, poll: float = 0.5, timeout: float = 10.0) -> None:
        self.dsn = dsn
        self.pbx = pbx
        self.instance = instance
        self.poll = poll
        self.timeout = timeout
        self.log = structlog.get_logger("calld.cluster")
        self.epoch: int | None = None  # while leading: the epoch this term was elected with
        self.leader: str | None = None  # who leads (this instance while leading; else the last seen)
        self.changed = asyncio.Event()  # set at each election and deposition (tests, /readyz)
        # Set once the first try for the lock has an answer (won, lost, or the database is away), so
        # that a daemon that starts alone leads by the time its start returns.
        self.tried = asyncio.Event()

    @property
    def leading(self) -> bool:
        return self.epoch is not None

    def fence(self, session: Session) -> None:
        """Inside an ingest transaction: raise ``NotLeader`` unless this instance still leads."""
        epoch = self.epoch
        if epoch is None:
            raise NotLeader(f"{self.pbx}: this instance stands by")
        check_fence(session, self.pbx, epoch)

    async def run(self, on_elected: Hook, on_deposed: Hook) -> None:
        """Stand by, lead, stand by again... until cancelled (which releases the lock)."""
        self.log.info("standing by for the lead", pbx=self.pbx, instance=self.instance)
        while True:
            try:
                conn = await connect(self.dsn, self.timeout)
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                self.log.warning("leader election: database unreachable", pbx=self.pbx, error=str(exc))
                self.tried.set()
                await asyncio.sleep(max(self.poll, 1.0))
                continue
            try:
                await self._term(conn, on_elected, on_deposed)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.tried.set()
                self.log.warning("leader election: lock session lost", pbx=self.pbx, error=str(exc) or repr(exc))
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), self.timeout)
                if not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(self.poll)

    async def _term(self, conn: asyncpg.Connection, on_elected: Hook, on_deposed: Hook) -> None:
        """Wait for the lock, lead while it is held, return (or raise) once it is lost."""
        while not await conn.fetchval(TRY_LOCK, LOCK_CLASS, self.pbx, timeout=self.timeout):
            leader = await conn.fetchval(LAST_LEADER, self.pbx, timeout=self.timeout)
            if leader != self.leader:
                self.leader = leader
                self.changed.set()
            self.tried.set()
            await asyncio.sleep(self.poll)
        await conn.execute(_TAKEOVER_LOCK_TIMEOUT)
        while True:
            try:
                epoch = await conn.fetchval(TAKE_OFFICE, self.pbx, self.instance, timeout=self.timeout)
                break
            except asyncpg.LockNotAvailableError:  # the old leader's last transaction still holds the row
                self.log.info("takeover waits for the old leader's last transaction", pbx=self.pbx)
        self.epoch, self.leader = int(epoch), self.instance
        self.changed.set()
        self.log.info("elected leader", pbx=self.pbx, instance=self.instance, epoch=self.epoch)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        try:
            await on_elected()
            self.tried.set()
            await self._hold(conn, lost)
        finally:
            was = self.epoch
            self.epoch = None
            self.changed.set()
            self.log.warning(
                "lost leadership" if not _cancelling() else "leadership released",
                pbx=self.pbx,
                instance=self.instance,
                epoch=was,
            )
            await asyncio.shield(on_deposed())

    async def _hold(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the lock's session is gone; checked every ``poll`` seconds."""
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self.poll)
                return
            # A slow answer is no lost lock (the session's end is reported at once by the listener
            # above): only one not given within the database timeout is, so a loaded server does not
            # make the leader flap; were it lost meanwhile, the fencing refuses what it writes.
            await conn.fetchval("SELECT 1", timeout=self.timeout)

    def describe(self) -> dict[str, Any]:
        """What /readyz says of the election."""
        return {"role": "leader" if self.leading else "standby", "leader": self.leader, "epoch": self.epoch}


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0

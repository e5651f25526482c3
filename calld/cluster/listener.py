"""One PostgreSQL connection LISTENing on calld's channels for the life of the daemon.

Notifications arrive in commit order (PostgreSQL delivers them when, and only if, the notifying
transaction commits). The connection is reopened when lost; what was notified while it was down is
not replayed (the API still has it: live clients see the changes made after it is back).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
import structlog

from calld.cluster.leadership import connect

Handler = Callable[[str], None]  # called with each payload, on the event loop, in order


class Listener:
    """LISTENs on the channels given to ``on`` (before ``run``) and hands each payload to its handler."""

    def __init__(self, dsn: str, *, timeout: float = 10.0, retry: float = 1.0) -> None:
        self.dsn = dsn
        self.timeout = timeout
        self.retry = retry
        self.log = structlog.get_logger("calld.cluster")
        self._handlers: dict[str, Handler] = {}
        self.listening = asyncio.Event()  # set while the connection listens (tests, /readyz)

    def on(self, channel: str, handler: Handler) -> None:
        self._handlers[channel] = handler

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after ``retry`` seconds when the connection is lost."""
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await connect(self.dsn, self.timeout)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                for channel, handler in self._handlers.items():
                    await conn.add_listener(channel, _deliver(handler))
                self.listening.set()
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), 5.0)
                        break
                    await conn.fetchval("SELECT 1", timeout=self.timeout)  # a cut link is noticed
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.log.warning("cluster notifications: connection lost; reconnecting", error=str(exc) or repr(exc))
            finally:
                self.listening.clear()
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(self.retry)


def _deliver(handler: Handler) -> Callable[[object, int, str, str], None]:
    def callback(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        handler(payload)

    return callback

"""The daemon: owns the database, the HTTP server and (later) the switch adapter; stops cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog
from aiohttp import web

from calld.adapters.port import SwitchPort
from calld.config import Config
from calld.http.app import create_app
from calld.http.context import Services
from calld.ingest import SwitchIngest
from calld.storage.calls import CallStore, Clock, system_clock
from calld.storage.database import Database


class Daemon:
    """calld's running parts, wired from one ``Config``."""

    def __init__(self, config: Config, *, switch: SwitchPort | None = None, clock: Clock = system_clock) -> None:
        self.config = config
        self.log = structlog.get_logger("calld.daemon")
        self.db = Database(config.database.url, pool_size=config.database.pool_size)
        self.services = Services(config=config, db=self.db, calls=CallStore(clock=clock), switch=switch)
        self.switch = switch
        self.ingest = SwitchIngest(self.db, self.services.calls, switch.name) if switch is not None else None
        self._runner: web.AppRunner | None = None
        self._switch_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    @property
    def port(self) -> int:
        """The port the HTTP server listens on (useful when configured as 0)."""
        assert self._runner is not None and self._runner.addresses, "daemon not started"
        return int(self._runner.addresses[0][1])

    async def start(self) -> None:
        """Migrate the database and start serving HTTP."""
        await self.db.migrate()
        self._runner = web.AppRunner(
            create_app(self.services),
            access_log=None,
            shutdown_timeout=self.config.server.shutdown_timeout_seconds,
            handle_signals=False,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.server.host, self.config.server.port)
        await site.start()
        if self.switch is not None and self.ingest is not None:
            self._switch_task = asyncio.create_task(self.switch.run(self.ingest), name=f"switch-{self.switch.name}")
            self._switch_task.add_done_callback(self._switch_stopped)
        self.log.info(
            "calld started",
            host=self.config.server.host,
            port=self.port,
            database=self.db.dialect,
            switch=self.switch.name if self.switch is not None else None,
        )

    def _switch_stopped(self, task: asyncio.Task[None]) -> None:
        # An adapter reconnects by itself; if it ever returns or fails, calld cannot log calls, so
        # stop and let systemd restart us rather than serve a silently deaf API.
        if not task.cancelled():
            self.log.error("switch adapter stopped", switch=task.get_name(), error=repr(task.exception()))
            self.request_stop()

    def request_stop(self) -> None:
        self._stop.set()

    async def stop(self) -> None:
        """Stop accepting requests, let those in flight finish, close the adapter and the database."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._switch_task is not None:
            self._switch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._switch_task
            self._switch_task = None
        await self.db.close()
        self.log.info("calld stopped")

    async def run(self) -> None:
        """Start, wait for SIGTERM or SIGINT, then stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.start()
            await self._stop.wait()
            self.log.info("shutdown requested")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self.stop()

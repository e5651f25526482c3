"""The daemon: owns the database, the HTTP server, the switch adapter and the webhook delivery
worker; stops cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from typing import TextIO

import structlog
from aiohttp import web

from calld.adapters.port import SwitchPort
from calld.config import Config
from calld.domain.scopes import Scope
from calld.http.app import create_app
from calld.http.context import Services
from calld.ingest import SwitchIngest
from calld.outbound.outbox import Outbox
from calld.outbound.worker import DeliveryWorker
from calld.storage.calls import CallIds, CallStore, Clock, system_clock
from calld.storage.database import Database
from calld.storage.tokens import TokenStore


class Daemon:
    """calld's running parts, wired from one ``Config``."""

    def __init__(
        self,
        config: Config,
        *,
        switch: SwitchPort | None = None,
        clock: Clock = system_clock,
        call_ids: CallIds = uuid.uuid4,
        first_token_out: TextIO | None = None,
    ) -> None:
        """``first_token_out``: where to show a generated admin token when no token exists yet
        (a terminal); None creates none and logs how to make one."""
        self.config = config
        self.log = structlog.get_logger("calld.daemon")
        self.db = Database(config.database.url, pool_size=config.database.pool_size)
        self.tokens = TokenStore()
        self.deliveries = DeliveryWorker(self.db, config.outbound_webhooks)
        self.outbox = Outbox(wake=self.deliveries.wake)
        calls = CallStore(clock=clock, call_ids=call_ids, hooks=(self.outbox,))
        self.services = Services(
            config=config, db=self.db, calls=calls, switch=switch, tokens=self.tokens, outbox=self.outbox
        )
        self._first_token_out = first_token_out
        self.switch = switch
        self.ingest = SwitchIngest(self.db, self.services.calls, switch.name) if switch is not None else None
        self._runner: web.AppRunner | None = None
        self._switch_task: asyncio.Task[None] | None = None
        self._deliveries_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    @property
    def port(self) -> int:
        """The port the HTTP server listens on (useful when configured as 0)."""
        assert self._runner is not None and self._runner.addresses, "daemon not started"
        return int(self._runner.addresses[0][1])

    async def start(self) -> None:
        """Migrate the database and start serving HTTP."""
        await self.db.migrate()
        await self._ensure_a_token()
        self._runner = web.AppRunner(
            create_app(self.services),
            access_log=None,
            shutdown_timeout=self.config.server.shutdown_timeout_seconds,
            handle_signals=False,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.server.host, self.config.server.port)
        await site.start()
        self._deliveries_task = asyncio.create_task(self.deliveries.run(), name="webhook-deliveries")
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

    async def _ensure_a_token(self) -> None:
        """On first start nobody could use the API: make an admin token for the person at the terminal."""
        async with self.db.write() as session:
            if await self.tokens.count(session) > 0:
                return
            if self._first_token_out is None:
                self.log.warning(
                    "no API tokens exist: every API request will be refused",
                    hint="create one with: calld token create --name admin --scope admin",
                )
                return
            row, issued = await self.tokens.create(session, "initial-admin", Scope.ADMIN)
        print(
            f"\ncalld: no API token existed, so an admin token named {row.name!r} was created.\n"
            f"It is shown only this once; keep it safe and send it as 'Authorization: Bearer <token>':\n\n"
            f"    {issued.plaintext}\n\n"
            "Make more with `calld token create`, revoke this one with `calld token revoke initial-admin`.\n",
            file=self._first_token_out,
            flush=True,
        )
        self.log.info("initial admin token created", name=row.name, key=row.key)

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
        if self._deliveries_task is not None:
            # Sends in progress are cancelled and their rows handed back: the next start sends them.
            self.deliveries.close()
            self._deliveries_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._deliveries_task
            self._deliveries_task = None
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

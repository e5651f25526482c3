"""The daemon: owns the database, the HTTP server, the switch adapter and the webhook delivery
worker; stops cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import signal
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TextIO

import structlog
from aiohttp import web

from calld.adapters.port import SwitchPort
from calld.cluster.wiring import Cluster
from calld.config import Config, ConfigError, pseudonym_key
from calld.domain.scopes import Scope
from calld.http.app import create_app
from calld.http.server import CappedSite
from calld.ingest.spill import SpillFile
from calld.ingest.switch_ingest import BatchedIngest, SwitchIngest
from calld.logging import LogFailures, RepeatLimiter, configure_logging
from calld.outbound.outbox import Outbox
from calld.outbound.worker import DeliveryWorker
from calld.service.live_feed import LiveHub
from calld.service.metrics import Metrics
from calld.service.retention import Retention
from calld.service.wiring import Services
from calld.storage.calls import CallIds, CallStore, Clock, system_clock
from calld.storage.database import Database
from calld.storage.recording_files import RecordingFiles
from calld.storage.tokens import TokenStore
from calld.systemd import SystemdNotifier

# Settings bound to sockets and tasks opened at start: a change needs a restart.
_RESTART_SECTIONS = (
    "server",
    "database",
    "asterisk",
    "freeswitch",
    "outbound_webhooks",
    "ingest",
    "recordings",
    "retention",
    "cluster",
)
# How long READY=1 waits for the switch to connect before saying it is retrying.
_READY_WAIT_SECONDS = 3.0


def keep_startup_heap_out_of_collections() -> None:
    """Move what exists once calld has started (modules, the ORM's metadata, config, the app) out of
    the garbage collector's reach, as ``calld run`` does.

    Those objects live as long as the process, yet every full collection walked all of them again: a
    year-by-hour report (~50,000 short-lived objects) spent a third of its time in the collector.
    Only cycles that already exist are kept; everything made later is collected as before."""
    gc.collect()
    gc.freeze()


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
        notifier: SystemdNotifier | None = None,
        log_failures: LogFailures | None = None,
    ) -> None:
        """``first_token_out``: where to show a generated admin token when no token exists yet
        (a terminal); None creates none and logs how to make one. ``log_failures``: the counter
        the logging setup keeps (``configure_logging(failures=...)``), shown in ``/metrics``."""
        self.config = config
        self.log = structlog.get_logger("calld.daemon")
        self.db = Database(
            config.database.url, pool_size=config.database.pool_size, timeout_seconds=config.database.timeout_seconds
        )
        self.tokens = TokenStore()
        self.deliveries = DeliveryWorker(self.db, config.outbound_webhooks, egress=config.egress.policy)
        self.outbox = Outbox(wake=self.deliveries.wake)
        self.live = LiveHub(config.live.max_queued_messages)
        self.log_failures = log_failures if log_failures is not None else LogFailures()
        self.metrics = Metrics(self.log_failures)
        self.log_limiter = RepeatLimiter(self.metrics.log_line_suppressed)
        calls = CallStore(
            clock=clock,
            call_ids=call_ids,
            hooks=(self.outbox, self.live, self.metrics.count_event),
            numbers=config.calls.numbers,
            files=RecordingFiles(config.calls.recordings_root),
            mos_threshold=config.calls.mos_threshold,
        )
        self._first_token_out = first_token_out
        self.switch = switch
        # On PostgreSQL several instances may serve one PBX (one leads it) and share one live feed.
        clustered = config.cluster.enabled and self.db.dialect == "postgresql"
        self.cluster = (
            Cluster(self.db, self.live, config.cluster, switch, config.database.timeout_seconds) if clustered else None
        )
        self.elector = self.cluster.elector if self.cluster is not None else None
        self._commands_task: asyncio.Task[None] | None = None
        self.services = Services(
            config=config,
            db=self.db,
            calls=calls,
            switch=self.cluster.routed(switch) if self.cluster is not None and switch is not None else switch,
            tokens=self.tokens,
            outbox=self.outbox,
            live=self.live,
            metrics=self.metrics,
            elector=self.elector,
            remote=self.cluster.remote if self.cluster is not None else None,
        )
        self.ingest = (
            SwitchIngest(
                self.db,
                calls,
                switch.name,
                on_committed=self.metrics.switch_batch,
                fence=self.elector.fence if self.elector is not None else None,
            )
            if switch is not None
            else None
        )
        self.ingest_queue = self._ingest_queue(self.ingest) if self.ingest is not None else None
        self.metrics.watch(switch, self.ingest_queue, self.elector)
        self._runner: web.AppRunner | None = None
        self._switch_task: asyncio.Task[None] | None = None
        self._election_task: asyncio.Task[None] | None = None
        self._deliveries_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self.notifier = notifier if notifier is not None else SystemdNotifier()
        self._supervisor: asyncio.Task[None] | None = None
        self._left_open_task: asyncio.Task[None] | None = None
        retention = config.retention
        self.retention = Retention(
            self.db,
            self.services.recordings,
            retention,
            clock,
            pseudonym_key(retention) if retention.pseudonymise_days else None,
            self.services.live,
        )
        self._retention_task: asyncio.Task[None] | None = None

    def _ingest_queue(self, ingest: SwitchIngest) -> BatchedIngest:
        settings = self.config.ingest
        spill = SpillFile(Path(settings.spill_path), settings.max_spill_bytes) if settings.spill_path else None
        return BatchedIngest(
            ingest, batch_size=settings.batch_size, max_pending=settings.max_memory_events, spill=spill
        )

    @property
    def port(self) -> int:
        """The port the HTTP server listens on (useful when configured as 0)."""
        assert self._runner is not None and self._runner.addresses, "daemon not started"
        return int(self._runner.addresses[0][1])

    async def start(self) -> None:
        """Migrate the database and start serving HTTP."""
        await self.db.migrate()
        await self._ensure_a_token()
        self.log_limiter.install()
        server = self.config.server
        self._runner = web.AppRunner(
            create_app(self.services),
            access_log=None,
            shutdown_timeout=server.shutdown_timeout_seconds,
            handle_signals=False,
            # Runs from accept: closes idle connections and requests whose headers never finish.
            keepalive_timeout=server.idle_timeout_seconds,
        )
        await self._runner.setup()
        site = CappedSite(
            self._runner,
            server.host,
            server.port,
            max_connections=server.max_connections,
            on_refused=self.metrics.connections_refused.inc,
        )
        await site.start()
        self._deliveries_task = asyncio.create_task(self.deliveries.run(), name="webhook-deliveries")
        if self.retention.enabled:
            self._retention_task = asyncio.create_task(self._retain(), name="retention")
        if self.cluster is not None:
            await self.cluster.start()
        if self.elector is not None:
            self._election_task = asyncio.create_task(
                self.elector.run(self._lead, self._stand_by), name=f"election-{self.elector.pbx}"
            )
            # Alone, it leads (and has started its adapter) before it says it started.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.elector.tried.wait(), self.config.database.timeout_seconds)
        elif self.switch is not None:
            await self._lead()
        self.log.info(
            "calld started",
            host=self.config.server.host,
            port=self.port,
            database=self.db.dialect,
            switch=self.switch.name if self.switch is not None else None,
            docs=f"http://{self.config.server.host}:{self.port}/api/docs",
        )
        await self._announce_ready()

    async def _lead(self) -> None:
        """Connect to the switch and store its events (at start, or when elected its PBX's leader).

        The adapter's connect resyncs from the switch (the calls live now, and its own records since
        the last call stored), so a new leader picks up what the old one left."""
        switch, ingest, queue = self.switch, self.ingest, self.ingest_queue
        assert switch is not None and ingest is not None and queue is not None
        # The switch's own records are read from the last call this switch's calld stored.
        switch.recover_since = await ingest.recovery_start()
        switch.resynced.clear()  # a second term waits for its own resync
        queue.start()  # events a killed calld left on disk are stored first
        self._left_open_task = asyncio.create_task(
            self._close_left_open(switch, ingest, queue, self.services.calls.clock()), name="close-left-open"
        )
        self._switch_task = asyncio.create_task(switch.run(queue), name=f"switch-{switch.name}")
        self._switch_task.add_done_callback(self._switch_stopped)
        if self.cluster is not None:
            # Control actions other instances received for this PBX's calls.
            self._commands_task = asyncio.create_task(self.cluster.commands.serve(switch), name="cluster-commands")

    async def _stand_by(self) -> None:
        """Deposed (or stopping): disconnect from the switch; the new leader connects."""
        for task in (self._commands_task, self._switch_task, self._left_open_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._commands_task = self._switch_task = self._left_open_task = None

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

    async def _close_left_open(
        self, switch: SwitchPort, ingest: SwitchIngest, queue: BatchedIngest, started: datetime
    ) -> None:
        """Once the switch has said which calls it has, close the calls an earlier run left open."""
        await switch.resynced.wait()
        await queue.flush()  # what the resync itself adopted or closed is stored first
        try:
            # Live: what the switch listed at the resync (a call ending a moment later did not vanish
            # unseen) and what it has told of since.
            live = switch.live_at_resync() | set(switch.open_calls())
            closed = await ingest.close_left_open(live, started)
        except Exception:  # the database is down: the next start tries again
            self.log.exception("calls left open by an earlier run not checked")
            return
        if closed:
            self.log.warning("calls that ended while calld was down closed", switch=switch.name, calls=closed)

    # --- systemd ------------------------------------------------------------------------------

    def status_line(self) -> str:
        """One line for systemd's STATUS= (``systemctl status calld``)."""
        serving = f"serving on {self.config.server.host}:{self.port}"
        if self.switch is None:
            return f"{serving}; no switch configured"
        if self.elector is not None and not self.elector.leading:
            return f"{serving}; {self.switch.name} standby (leader: {self.elector.leader or 'none'})"
        state = "connected" if self.switch.connected.is_set() else "not connected, retrying"
        return f"{serving}; {self.switch.name} {state}"

    async def _announce_ready(self) -> None:
        """READY=1 once migrated and listening, and once the switch is connected or is retrying."""
        if not self.notifier.enabled:
            return
        if self.switch is not None and (self.elector is None or self.elector.leading):
            # A reachable switch answers at once; one that is down must not hold up the API.
            # (A standby has no connection to wait for.)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.switch.connected.wait(), _READY_WAIT_SECONDS)
        self.notifier.ready(self.status_line())
        self._supervisor = asyncio.create_task(self._supervise(), name="systemd")

    async def _supervise(self) -> None:
        """WATCHDOG=1 from the event loop (a stuck loop stops the pings), STATUS= when it changes."""
        watchdog = self.notifier.watchdog_seconds
        interval = watchdog / 2 if watchdog else 1.0
        last = self.status_line()
        while True:
            await asyncio.sleep(interval)
            if watchdog:
                self.notifier.watchdog()
            status = self.status_line()
            if status != last:
                self.notifier.status(status)
                last = status

    async def _retain(self) -> None:
        """Run retention now and every ``retention.interval_seconds``; a failed run is logged and
        counted, and the next one tries again."""
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            try:
                report = await self.retention.run()
            except Exception as exc:
                self.metrics.retention_run(None)
                self.log.warning("retention run failed", error=repr(exc))
            else:
                done = {k: v for k, v in report.as_dict().items() if k != "dry_run"}
                self.metrics.retention_run(done)
                self.log.info("retention run", seconds=round(loop.time() - began, 3), **done)
            await asyncio.sleep(self.config.retention.interval_seconds)

    async def stop(self) -> None:
        """Stop accepting requests, let those in flight finish, close the adapter and the database."""
        self.notifier.stopping()
        if self._retention_task is not None:
            # Each batch is its own transaction: cancelling between or inside one loses nothing.
            self._retention_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention_task
            self._retention_task = None
        if self._left_open_task is not None:
            self._left_open_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._left_open_task
            self._left_open_task = None
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.cluster is not None:
            await self.cluster.stop()
        await self._stand_by()
        # Storing queued switch events and finishing webhook sends share one grace period, so that
        # the whole stop stays within systemd's TimeoutStopSec (requests in flight had theirs).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.server.shutdown_timeout_seconds
        if self.ingest_queue is not None:
            # What the switch already sent is stored before we exit (unless the database is gone).
            await self.ingest_queue.close(max(0.0, deadline - loop.time()))
        if self._election_task is not None:
            # Released only once what the switch sent is stored: the next leader's epoch would fence it out.
            self._election_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._election_task
            self._election_task = None
        if self._deliveries_task is not None:
            # Nothing new is sent; sends under way may still be answered, the rest are handed back
            # and sent by the next start.
            grace = max(0.0, deadline - loop.time())
            self.deliveries.close(grace)
            done, _ = await asyncio.wait({self._deliveries_task}, timeout=grace + 1.0)
            if not done:
                self._deliveries_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._deliveries_task
            self._deliveries_task = None
        await self.db.close()
        self.log.info("calld stopped")
        self.log_limiter.remove()

    def reload(self, config: Config) -> list[str]:
        """Apply a changed configuration without dropping calls; return the sections that need a restart.

        Request handlers read the configuration per request (webhook secrets and sources, time
        zone, default region), so swapping it applies those at once; the log level is set anew.
        The address, database, switch and worker settings are bound to open sockets and tasks: they
        keep their running values, and the sections returned are those the file has changed from
        what runs (not from the last file read, so a second reload still names a pending change and
        a file put back as it was names none).
        """
        running = self.config
        restart = [name for name in _RESTART_SECTIONS if getattr(running, name) != getattr(config, name)]
        self.config = dataclasses.replace(config, **{name: getattr(running, name) for name in _RESTART_SECTIONS})
        self.services.config = self.config
        configure_logging(config.logging.level, config.logging.format, failures=self.log_failures)
        self.log_limiter.install()  # on the new handlers
        self.log.info("configuration reloaded", log_level=config.logging.level, needs_restart=restart or None)
        return restart

    def _reload_from(self, load: Callable[[], Config]) -> None:
        try:
            config = load()
        except ConfigError as exc:
            self.log.error("configuration not reloaded: it is invalid; keeping the running one", error=str(exc))
            return
        restart = self.reload(config)
        if restart:
            self.log.warning("changed settings take effect after a restart", sections=restart)

    async def run(self, load_config: Callable[[], Config] | None = None) -> None:
        """Start, wait for SIGTERM or SIGINT, then stop. SIGHUP reloads ``load_config()``."""
        loop = asyncio.get_running_loop()
        signals = [signal.SIGTERM, signal.SIGINT]
        for sig in signals:
            loop.add_signal_handler(sig, self.request_stop)
        if load_config is not None:
            loop.add_signal_handler(signal.SIGHUP, self._reload_from, load_config)
            signals.append(signal.SIGHUP)
        try:
            await self.start()
            keep_startup_heap_out_of_collections()
            await self._stop.wait()
            self.log.info("shutdown requested")
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            await self.stop()

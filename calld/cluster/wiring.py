"""The cluster's parts for one daemon (PostgreSQL with ``[cluster] enabled``): one LISTEN
connection, the cross-instance live feed, the command queue and, with a switch, the election."""

from __future__ import annotations

import asyncio
import contextlib

from calld.adapters.port import SwitchPort
from calld.cluster.commands import CommandQueue
from calld.cluster.feed import ClusterFeed, run_all
from calld.cluster.leadership import Elector, default_instance_id
from calld.cluster.listener import Listener
from calld.cluster.routing import RoutedSwitch
from calld.config import ClusterConfig
from calld.service.live_feed import LiveHub
from calld.storage.cluster import driver_dsn
from calld.storage.database import Database


class Cluster:
    """Built by the daemon; ``start`` listens (and returns once it does, or the database timeout)."""

    def __init__(
        self, db: Database, live: LiveHub, settings: ClusterConfig, switch: SwitchPort | None, timeout: float
    ) -> None:
        self.instance_id = settings.instance_id or default_instance_id()
        self.timeout = timeout
        dsn = driver_dsn(db.url)
        self.listener = Listener(dsn, timeout=timeout)
        self.feed = ClusterFeed(db, live, self.instance_id, self.listener)
        live.relay = self.feed
        self.commands = CommandQueue(db, self.instance_id, self.listener, settings.command_timeout_seconds)
        self.elector = (
            Elector(dsn, switch.name, self.instance_id, poll=settings.lock_poll_seconds, timeout=timeout)
            if switch is not None
            else None
        )
        self._task: asyncio.Task[None] | None = None

    def routed(self, switch: SwitchPort) -> SwitchPort:
        """This instance's PBX as the services use it: its adapter while leading, else the leader."""
        return RoutedSwitch(switch.name, self.commands, switch, self.elector)

    def remote(self, pbx: str) -> SwitchPort:
        """Another PBX, reached through its leader."""
        return RoutedSwitch(pbx, self.commands)

    async def start(self) -> None:
        self._task = asyncio.create_task(run_all(self.feed, self.listener), name="cluster-feed")
        with contextlib.suppress(TimeoutError):  # the database may be away: it listens once it is back
            await asyncio.wait_for(self.listener.listening.wait(), self.timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

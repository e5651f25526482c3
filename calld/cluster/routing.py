"""A PBX as the API's services see it: this instance's adapter while this instance leads it, the
PBX's leader (through the command queue) otherwise, so any instance can act on any call."""

from __future__ import annotations

import asyncio
from typing import Any

from calld.adapters.port import EventSink, SwitchPort
from calld.cluster.commands import CommandQueue
from calld.cluster.leadership import Elector


class RoutedSwitch:
    """A ``SwitchPort`` for PBX ``name`` whose control actions go to whichever instance leads it:
    ``adapter`` while ``elector`` says this instance does, else the leader through ``commands``
    (without an adapter: always the leader; an instance configured for another PBX, or none)."""

    def __init__(
        self, name: str, commands: CommandQueue, adapter: SwitchPort | None = None, elector: Elector | None = None
    ) -> None:
        self.adapter = adapter
        self.elector = elector
        self.commands = commands
        self.name = name
        # This instance's own connection (a standby has none), as /readyz reports it.
        self.connected = adapter.connected if adapter is not None else asyncio.Event()
        self.resynced = adapter.resynced if adapter is not None else asyncio.Event()
        self.recover_since = adapter.recover_since if adapter is not None else None

    def open_calls(self) -> list[str]:
        return self.adapter.open_calls() if self.adapter is not None else []

    def live_at_resync(self) -> frozenset[str]:
        return self.adapter.live_at_resync() if self.adapter is not None else frozenset()

    async def run(self, sink: EventSink) -> None:
        raise NotImplementedError("the daemon runs the adapter itself, when elected")

    async def _route(self, action: str, *args: Any) -> Any:
        if self.adapter is not None and (self.elector is None or self.elector.leading):
            return await getattr(self.adapter, action)(*args)
        return await self.commands.ask(self.name, action, list(args))

    async def originate(self, calld_call_id: str, recipient: str, caller: str | None) -> str:
        return str(await self._route("originate", calld_call_id, recipient, caller))

    async def hangup(self, call_ref: str) -> None:
        await self._route("hangup", call_ref)

    async def transfer(self, call_ref: str, target: str, attended: bool = False) -> None:
        await self._route("transfer", call_ref, target, attended)

    async def hold(self, call_ref: str) -> None:
        await self._route("hold", call_ref)

    async def unhold(self, call_ref: str) -> None:
        await self._route("unhold", call_ref)

    async def start_recording(self, call_ref: str, path: str) -> None:
        await self._route("start_recording", call_ref, path)

    async def stop_recording(self, call_ref: str, path: str) -> None:
        await self._route("stop_recording", call_ref, path)

    async def mute(self, call_ref: str, near: bool, on: bool) -> None:
        await self._route("mute", call_ref, near, on)

    async def send_dtmf(self, call_ref: str, near: bool, digits: str, duration_ms: int | None) -> None:
        await self._route("send_dtmf", call_ref, near, digits, duration_ms)

    async def complete_transfer(self, call_ref: str) -> None:
        await self._route("complete_transfer", call_ref)

    async def cancel_transfer(self, call_ref: str) -> None:
        await self._route("cancel_transfer", call_ref)

    async def answer(self, call_ref: str) -> None:
        await self._route("answer", call_ref)

    async def reject(self, call_ref: str) -> None:
        await self._route("reject", call_ref)

    async def pause_recording(self, call_ref: str, path: str, paused: bool) -> None:
        await self._route("pause_recording", call_ref, path, paused)

    async def park(self, call_ref: str, slot: str | None) -> None:
        await self._route("park", call_ref, slot)

    async def pickup(self, call_ref: str, slot: str, to: str) -> None:
        await self._route("pickup", call_ref, slot, to)

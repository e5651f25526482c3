"""A switch double for the control seam: records what calld asks, can refuse, can be slow.

It stands in for a switch adapter (a real Asterisk or FreeSWITCH is exercised by the live and
replay suites); it never sends events, so what it is asked changes nothing until a test says so.
"""

from __future__ import annotations

import asyncio
from typing import Any

from calld.adapters.port import EventSink, SwitchError


class FakeSwitch:
    """Records what calld asks of the switch; ``refuse`` makes every request fail, ``delay_seconds``
    makes every request take that long (a switch slow to answer a command)."""

    name = "fake"

    def __init__(self, delay_seconds: float = 0.0) -> None:
        self.requests: list[tuple[Any, ...]] = []
        self.refuse = False
        self.delay_seconds = delay_seconds
        self.connected = asyncio.Event()
        self.connected.set()
        self.asked = asyncio.Event()  # set when a request arrives (before its delay)

    async def _record(self, *request: Any) -> None:
        self.asked.set()
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self.refuse:
            raise SwitchError("no such extension")
        self.requests.append(request)

    def open_calls(self) -> list[str]:
        return []

    def live_at_resync(self) -> frozenset[str]:
        return frozenset()

    async def run(self, sink: EventSink) -> None:  # pragma: no cover - not used by these tests
        raise NotImplementedError

    async def originate(self, calld_call_id: str, recipient: str, caller: str | None) -> str:
        await self._record("originate", calld_call_id, recipient, caller)
        return "ref-1"

    async def hangup(self, call_ref: str) -> None:
        await self._record("hangup", call_ref)

    async def transfer(self, call_ref: str, target: str, attended: bool = False) -> None:
        await self._record("transfer", call_ref, target, attended)

    async def hold(self, call_ref: str) -> None:
        await self._record("hold", call_ref)

    async def unhold(self, call_ref: str) -> None:
        await self._record("unhold", call_ref)

    async def start_recording(self, call_ref: str, path: str) -> None:
        await self._record("start_recording", call_ref, path)

    async def stop_recording(self, call_ref: str, path: str) -> None:
        await self._record("stop_recording", call_ref, path)

    async def mute(self, call_ref: str, near: bool, on: bool) -> None:
        await self._record("mute" if on else "unmute", call_ref, near)

    async def send_dtmf(self, call_ref: str, near: bool, digits: str, duration_ms: int | None) -> None:
        await self._record("send_dtmf", call_ref, near, digits, duration_ms)

    async def complete_transfer(self, call_ref: str) -> None:
        await self._record("complete_transfer", call_ref)

    async def cancel_transfer(self, call_ref: str) -> None:
        await self._record("cancel_transfer", call_ref)

    async def answer(self, call_ref: str) -> None:
        await self._record("answer", call_ref)

    async def reject(self, call_ref: str) -> None:
        await self._record("reject", call_ref)

    async def pause_recording(self, call_ref: str, path: str, paused: bool) -> None:
        await self._record("pause_recording" if paused else "resume_recording", call_ref, path)

    async def park(self, call_ref: str, slot: str | None) -> None:
        await self._record("park", call_ref, slot)

    async def pickup(self, call_ref: str, slot: str, to: str) -> None:
        await self._record("pickup", call_ref, slot, to)

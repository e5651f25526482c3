"""The switch port: the one interface every switch adapter implements.

Nothing above the adapters knows which switch is behind this interface. Control methods return
once the switch has *accepted* the request; the call's status changes later, when the switch's
own events (delivered to the sink) confirm it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from calld.domain.events import SwitchEvent

EventSink = Callable[[SwitchEvent], Awaitable[None]]


class SwitchError(Exception):
    """The switch refused a request (bad channel, unknown extension...). Maps to HTTP 409/422."""


class SwitchUnavailable(Exception):
    """The switch cannot be reached or did not answer in time. Maps to HTTP 502/503."""


class NoLeader(SwitchUnavailable):
    """No calld instance connected to the call's switch took up the request in time (HTTP 503)."""


class CommandTimedOut(SwitchUnavailable):
    """The instance connected to the call's switch took up the request but did not answer in time (HTTP 504)."""


class SwitchPort(Protocol):
    """A connected switch that reports call events and carries out call control."""

    name: str  # this PBX's name in calld's database
    connected: asyncio.Event  # set while logged in and receiving events
    resynced: asyncio.Event  # set once a resynchronisation after connecting is done
    # Where recovery from the switch's own records starts on the next connect (None: no recovery).
    recover_since: datetime | None

    def open_calls(self) -> list[str]:
        """``call_ref`` of every call open here (right after a resync: the calls the switch has)."""

    def live_at_resync(self) -> frozenset[str]:
        """``call_ref`` of the calls the switch had at the last resync (events after it do not change
        this: a call that ends a moment later was still not one that vanished unseen)."""

    async def run(self, sink: EventSink) -> None:
        """Connect, subscribe and deliver events to ``sink`` until cancelled; reconnect and resync."""

    async def originate(self, calld_call_id: str, recipient: str, caller: str | None) -> str:
        """Place a call; return the switch's reference for it (its ``call_ref``)."""

    async def hangup(self, call_ref: str) -> None:
        """End the call."""

    async def transfer(self, call_ref: str, target: str, attended: bool = False) -> None:
        """Transfer the far party to ``target``."""

    async def hold(self, call_ref: str) -> None:
        """Put the far party on hold (music on hold)."""

    async def unhold(self, call_ref: str) -> None:
        """Take the call off hold."""

    async def start_recording(self, call_ref: str, path: str) -> None:
        """Start recording the call into ``path`` on the switch's file system."""

    async def stop_recording(self, call_ref: str, path: str) -> None:
        """Stop the recording started with ``path``."""

    async def mute(self, call_ref: str, near: bool, on: bool) -> None:
        """Mute (``on``) or unmute what the party on calld's user's leg (``near``) or the far leg
        says; the switch's own report of it (an event, or its answer) confirms it."""

    async def send_dtmf(self, call_ref: str, near: bool, digits: str, duration_ms: int | None) -> None:
        """Play ``digits`` (validated DTMF symbols) to the party on that leg, each ``duration_ms``
        long (None: the switch's default); the switch's report confirms it as a ``dtmf`` event."""

    async def complete_transfer(self, call_ref: str) -> None:
        """Complete the attended transfer ``transfer(..., attended=True)`` began: the far party is
        joined to the target (the switch's transfer events confirm it)."""

    async def cancel_transfer(self, call_ref: str) -> None:
        """Give up the attended transfer in progress: the consultation ends and calld's user is back
        with the far party."""

    async def answer(self, call_ref: str) -> None:
        """Answer the ringing inbound call on the switch (its answer event confirms it)."""

    async def reject(self, call_ref: str) -> None:
        """Turn the ringing inbound call away (the caller is declined; its end event confirms it)."""

    async def pause_recording(self, call_ref: str, path: str, paused: bool) -> None:
        """Pause (``paused``: the file goes on silent) or resume the recording started with ``path``
        (empty: the call's recording); the switch's report confirms it."""

    async def park(self, call_ref: str, slot: str | None) -> None:
        """Park the far party in ``slot`` (None: the switch's default); the switch's park event
        confirms it (a ``hold`` naming the slot)."""

    async def pickup(self, call_ref: str, slot: str, to: str) -> None:
        """Ring ``to``; answered, it takes the call parked in ``slot`` (the switch's event confirms it)."""

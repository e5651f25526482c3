"""The call tracker both switch mappers compose: a shadow of each open call's domain state.

A mapper turns switch events into calld events; the tracker keeps, per call it has open, the state
``calld.domain.call.apply_event`` gives, and emits an event only if the domain accepts it, so a
consumer never sees an illegal sequence (what it refuses is listed in ``dropped``, for logs and
tests). After a reconnect it closes the calls the switch no longer has by the one rule of
``calld.domain.vanished``. ``control_leg`` is the rule for which leg a control command acts on.
Parsing the switch's events, and knowing which legs make up a call, stays in each mapper.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from calld.domain.call import CallState, apply_event
from calld.domain.direction import user_is_caller
from calld.domain.errors import DomainError
from calld.domain.events import SwitchEvent
from calld.domain.participants import ParticipantBook
from calld.domain.vanished import VanishedWhile, vanished_end
from calld.domain.vocabulary import CallDirection, EventType

VANISHED_REASON = "call no longer on the switch after reconnect"
# Dialplan applications that take a call themselves (play to it, record it, seat it in a conference,
# park it; not ``answer``, a mere preamble to what comes next): a party transferred into one of them
# has reached where it was sent, though no phone answered (lowercase: FreeSWITCH's names).
LANDING_APPLICATIONS = frozenset(
    {
        "playback",
        "background",
        "echo",
        "voicemail",
        "confbridge",
        "conference",
        "musiconhold",
        "read",
        "record",
        "ivr",
        "park",
        "valet_park",
    }
)


@dataclass(slots=True, kw_only=True)
class TrackedCall:
    """What the tracker needs of a call; each mapper's call record extends it."""

    ref: str  # the switch's identity of the whole call (``SwitchEvent.call_ref``)
    state: CallState
    calld_call_id: str | None = None
    # Its parties as the mapper sees legs join, answer and leave (``calld.domain.participants``).
    participants: ParticipantBook = field(default_factory=ParticipantBook)


CallT = TypeVar("CallT", bound=TrackedCall)


class CallTracker(Generic[CallT]):
    """The open calls of one switch, by ``ref``, and the only way their events are emitted."""

    def __init__(self) -> None:
        self._calls: dict[str, CallT] = {}
        # (event key, reason) of events the domain refused.
        self.dropped: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self._calls)

    def __contains__(self, ref: object) -> bool:
        return ref in self._calls

    def get(self, ref: str) -> CallT | None:
        return self._calls.get(ref)

    def add(self, call: CallT) -> CallT:
        self._calls[call.ref] = call
        return call

    def forget(self, ref: str) -> None:
        self._calls.pop(ref, None)

    def open_calls(self) -> list[str]:
        """``ref`` of every call not yet ended, oldest first."""
        return list(self._calls)

    def calls(self) -> list[CallT]:
        """The open calls, oldest first (a copy: the caller may forget some while going through)."""
        return list(self._calls.values())

    def vanished(self, live_refs: Collection[str]) -> list[CallT]:
        """The open calls whose ``ref`` the switch no longer lists."""
        return [call for ref, call in self._calls.items() if ref not in live_refs]

    def emit(
        self,
        call: CallT,
        event_type: EventType,
        timestamp: datetime,
        key: str,
        metadata: Mapping[str, Any] | None = None,
        *,
        recovered: str | None = None,
    ) -> SwitchEvent | None:
        """The event, if the call's state machine accepts it (its shadow state moves on); else
        None, and the refusal is listed in ``dropped``."""
        meta = dict(metadata or {})
        try:
            call.state = apply_event(call.state, event_type, timestamp, meta)
        except DomainError as exc:
            self.dropped.append((key, str(exc)))
            return None
        call.participants.annotate(event_type, meta)
        return SwitchEvent(call.ref, event_type, timestamp, key, meta, None, call.calld_call_id, recovered)

    def close_vanished(
        self,
        call: CallT,
        at: datetime,
        key: Callable[[str, EventType], str],
        *,
        marker: VanishedWhile = VanishedWhile.DISCONNECTED,
        recovered: str | None = None,
    ) -> SwitchEvent | None:
        """Close ``call``, gone from the switch unseen, by the vanished-call rule, and forget it.
        ``key(ref, event_type)`` names the closing event (its type is ``ended`` or ``failed``)."""
        end = vanished_end(call.state.answered_at is not None, marker, VANISHED_REASON)
        event = self.emit(call, end.event_type, at, key(call.ref, end.event_type), end.metadata, recovered=recovered)
        self.forget(call.ref)
        return event


def control_leg(first: str | None, others: Sequence[str], direction: CallDirection, *, near: bool) -> str | None:
    """The leg of a call a control command acts on.

    ``first`` is the call's first leg if it is still up, ``others`` its other live legs, oldest
    first. The near party is calld's user: the first leg of an outbound or internal call (the phone that
    dialled, or that calld rang first), the latest other leg of an inbound call (the phone that took
    it, also after a transfer to it). The far party is the other one: the latest other leg of an
    outbound call, the first leg of an inbound one, else the oldest leg that is not the near party's.
    When the wanted party's leg is gone, whichever is left; None when no leg is up.
    """
    latest_other = others[-1] if others else None
    user_first = user_is_caller(direction)
    near_leg = first if user_first else latest_other
    if near_leg is None:
        near_leg = first if first is not None else latest_other
    if near:
        return near_leg
    far_leg = latest_other if user_first else first
    if far_leg is not None and far_leg != near_leg:
        return far_leg
    live = [first, *others] if first is not None else list(others)
    return next((leg for leg in live if leg != near_leg), near_leg)


def party_label(first_leg: bool) -> str:
    """The party a leg is: a call's first leg is its caller's (for an inbound call the far caller,
    for an outbound one calld's user), any other leg the callee's."""
    return "caller" if first_leg else "callee"

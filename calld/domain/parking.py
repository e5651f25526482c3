"""Whether a call is parked now, derived from its events. Pure: no I/O, no clock.

A park is a ``hold`` whose metadata names the slot (``{"parked": "6001"}``, with the lot when the
switch says it); a pickup ends it (``unhold``, or any event that leaves the hold: a transfer, the
end). So ``parked`` is the last park while the call is still on hold from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from calld.domain.call import TimedEvent
from calld.domain.errors import IllegalTransition, InvalidValue
from calld.domain.vocabulary import CallStatus, EventType

# A slot is a parking extension: the digits dialled to take the call.
MAX_SLOT_DIGITS = 16
_SLOT = re.compile(rf"[0-9]{{1,{MAX_SLOT_DIGITS}}}")

# Every event type ``parked_now`` reads (the others may be left out).
PARK_EVENTS = frozenset({EventType.HOLD, EventType.UNHOLD})
# Statuses a call can be parked from: answered (or recording) and not yet on hold.
PARKABLE = frozenset({CallStatus.ANSWERED, CallStatus.RECORDING})


def parked_now(status: CallStatus, events: Iterable[TimedEvent]) -> dict[str, Any] | None:
    """``{"slot", "lot", "since"}`` of the park the call is in, or None. ``events`` oldest first
    (those at one instant in the order they were stored)."""
    if status is not CallStatus.ON_HOLD:
        return None
    holds = [e for e in events if e.event_type in PARK_EVENTS]
    if not holds:
        return None
    last = sorted(holds, key=lambda e: e.timestamp)[-1]  # stable: the later of two at one instant
    slot = last.metadata.get("parked") if last.event_type == EventType.HOLD else None
    if not slot:
        return None
    return {"slot": str(slot), "lot": last.metadata.get("lot") or None, "since": last.timestamp}


def check_park(status: CallStatus) -> None:
    """Refuse (409 naming the status) to park a call that is not answered and off hold."""
    if status not in PARKABLE:
        raise IllegalTransition(status, EventType.HOLD, "only an answered call that is not on hold can be parked")


def check_pickup(status: CallStatus, parked: dict[str, Any] | None) -> str:
    """The slot to pick the call up from; refused (409 naming the status) when it is not parked."""
    if parked is None:
        raise IllegalTransition(status, EventType.UNHOLD, "the call is not parked")
    return str(parked["slot"])


def validate_slot(value: object, field: str = "slot") -> str:
    """A parking slot: 1-16 digits (an extension of the switch's parking lot)."""
    if not isinstance(value, str) or _SLOT.fullmatch(value) is None:
        raise InvalidValue(field, f"must be a parking slot: 1 to {MAX_SLOT_DIGITS} digits")
    return value

"""What a live-call control may ask (mute a party, send DTMF digits), checked without I/O.

A party is named from the call's point of view (``caller`` dialled, ``callee`` was dialled); the
switch adapters act on legs as calld's user (near) or the other party (far). ``near_party`` maps
one to the other by the call's direction: calld's user placed an outbound or internal call and
took an inbound one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from calld.domain.direction import user_is_caller
from calld.domain.errors import IllegalTransition, InvalidValue
from calld.domain.vocabulary import CONNECTED_STATUSES, CallDirection, CallStatus, EventType

# RFC 4733 events 0-15: what both switches can play as DTMF.
DTMF_SYMBOLS = frozenset("0123456789*#ABCD")
MAX_DTMF_DIGITS = 32
DEFAULT_DTMF_MS = 100
# Shorter than 40 ms is below what receivers detect (ITU-T Q.24); longer than 2 s is a held key.
MIN_DTMF_MS = 40
MAX_DTMF_MS = 2000


class Party(StrEnum):
    CALLER = "caller"
    CALLEE = "callee"


def near_party(direction: CallDirection, party: Party | None) -> bool:
    """Whether ``party`` is calld's user's leg; no party means the far one (the usual target)."""
    if party is None:
        return False
    user = Party.CALLER if user_is_caller(direction) else Party.CALLEE
    return party is user


def party_of(direction: CallDirection, near: bool) -> Party:
    """The party a near/far leg is."""
    user = Party.CALLER if user_is_caller(direction) else Party.CALLEE
    other = Party.CALLEE if user is Party.CALLER else Party.CALLER
    return user if near else other


def validate_dtmf(value: Any, field: str = "digits") -> str:
    """1 to 32 DTMF symbols (0-9 * # A-D; a-d are taken as A-D)."""
    if not isinstance(value, str) or not value:
        raise InvalidValue(field, f"must be a string of 1 to {MAX_DTMF_DIGITS} DTMF digits (0-9 * # A-D)")
    digits = value.upper()
    if len(digits) > MAX_DTMF_DIGITS:
        raise InvalidValue(field, f"at most {MAX_DTMF_DIGITS} digits")
    bad = sorted({c for c in digits if c not in DTMF_SYMBOLS})
    if bad:
        raise InvalidValue(field, f"not DTMF digits: {''.join(bad)!r} (allowed: 0-9 * # A-D)")
    return digits


def validate_dtmf_duration(value: Any, field: str = "duration_ms") -> int:
    """Milliseconds each digit sounds, ``MIN_DTMF_MS``..``MAX_DTMF_MS``."""
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_DTMF_MS <= value <= MAX_DTMF_MS:
        raise InvalidValue(field, f"must be a whole number of milliseconds from {MIN_DTMF_MS} to {MAX_DTMF_MS}")
    return value


def require_connected(status: CallStatus, action: EventType) -> None:
    """Refuse (409, naming the status) an in-call action on a call that is not connected."""
    if status not in CONNECTED_STATUSES:
        raise IllegalTransition(status, action, f"only a connected call can take it; the call is {status.value}")


# A ringing inbound call is still being offered: the switch may pick it up or turn it away.
_OFFERED = frozenset({CallStatus.INITIATED, CallStatus.RINGING})


def require_offered_inbound(status: CallStatus, direction: CallDirection, action: EventType) -> None:
    """Refuse (409, naming the state) answering or rejecting a call that is not an inbound (or
    internal: a phone of the PBX rings for it too) call still ringing."""
    if direction is CallDirection.OUTBOUND:
        raise IllegalTransition(status, action, "only an inbound or internal call can be answered or rejected here")
    if status not in _OFFERED:
        raise IllegalTransition(
            status, action, f"only a ringing call can be answered or rejected; it is {status.value}"
        )

"""Normalised call events as adapters hand them to the rest of calld."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from calld.domain.vocabulary import CallDirection, CallType, EventType


@dataclass(frozen=True, slots=True)
class CallParties:
    """Who a call is between, as the switch first reports it (carried on ``initiated``)."""

    direction: CallDirection
    caller_number: str
    recipient_number: str
    call_type: CallType = CallType.VOICE
    sip_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class SwitchEvent:
    """One call event from a switch, already mapped into calld's vocabulary.

    ``call_ref`` is the switch's stable identity of the whole call, shared by all its legs
    (Asterisk ``Linkedid``; FreeSWITCH the originating leg's uuid). ``calld_call_id`` is set when
    calld itself originated the call and the switch echoed the id back in a channel variable.
    ``key`` identifies the switch's own event so a replay after reconnect is not stored twice.
    ``recovered_from`` is set on events that were not seen as they happened but reconstructed
    afterwards: ``"channels"`` from the switch's list of live calls at (re)connect, ``"cel"`` /
    ``"cdr"`` from the switch's own call records. Such an event may repeat what calld already
    stored by other keys, so storage takes it only where it adds to what the call has.
    """

    call_ref: str
    event_type: EventType
    timestamp: datetime
    key: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    parties: CallParties | None = None
    calld_call_id: str | None = None
    recovered_from: str | None = None

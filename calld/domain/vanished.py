"""Closing a call that vanished: the switch no longer has it and nothing told calld how it ended.

That happens to a call open in calld when its switch stops listing it after a reconnect (its hangup
was sent while the link was down, or the switch crashed), when calld starts and finds calls an earlier
run left open, and when the switch's records show a call begun but never ended. Its real end time and
cause are unknown, so every switch closes it the same way, at the moment calld found out: ``ended`` if
it had been answered, else ``failed``, with cause ``UNKNOWN`` and a marker saying when calld was away.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from calld.domain.vocabulary import CallStatus, EventType

UNKNOWN_CAUSE: Final = "UNKNOWN"


class VanishedWhile(StrEnum):
    """The metadata flag an ending calld did not see happen carries: why it did not see it."""

    DISCONNECTED = "ended_while_disconnected"  # found at a reconnect to the switch
    CALLD_WAS_DOWN = "ended_while_calld_was_down"  # found when calld started


@dataclass(frozen=True, slots=True)
class VanishedEnd:
    """The event that closes a vanished call and the metadata stored with it."""

    event_type: EventType
    metadata: Mapping[str, Any]


def vanished_end(answered: bool, marker: VanishedWhile, reason: str | None = None) -> VanishedEnd:
    """How a call that vanished is closed: ``ended`` (outcome ``ended``) if it had been answered,
    else ``failed``; cause ``UNKNOWN``, flagged with ``marker``; ``reason`` says what found it."""
    metadata: dict[str, Any] = {marker.value: True, "cause": UNKNOWN_CAUSE}
    if reason:
        metadata["reason"] = reason
    if answered:
        metadata["outcome"] = CallStatus.ENDED.value
        return VanishedEnd(EventType.ENDED, metadata)
    return VanishedEnd(EventType.FAILED, metadata)


# Outcomes that say nobody answered: an adapter that did not see the answer reports one of these.
_UNANSWERED_OUTCOMES = frozenset({CallStatus.MISSED, CallStatus.NO_ANSWER, CallStatus.CANCELLED, CallStatus.BUSY})


def as_stored(event_type: EventType, metadata: Mapping[str, Any], answered: bool) -> VanishedEnd | None:
    """A switch's ending of a call decided again with what storage knows of it, or None when it stands.

    An adapter decides from what it saw. A call answered while its link was down had its answer
    stored from the switch's records only, which the adapter's shadow state never saw: its vanished
    close says ``failed`` and its live Hangup says ``missed`` (or another unanswered outcome). For a
    call storage knows was answered, both are ``ended`` (the first with the same marker; the second
    keeps what the adapter said as ``adapter_outcome``)."""
    if not answered:
        return None
    marker = next((m for m in VanishedWhile if metadata.get(m.value)), None)
    if event_type is EventType.FAILED and marker is not None:
        reason = metadata.get("reason")
        return vanished_end(True, marker, reason if isinstance(reason, str) else None)
    outcome = metadata.get("outcome")
    if event_type is EventType.ENDED and outcome in {o.value for o in _UNANSWERED_OUTCOMES}:
        return VanishedEnd(EventType.ENDED, {**metadata, "outcome": CallStatus.ENDED.value, "adapter_outcome": outcome})
    return None

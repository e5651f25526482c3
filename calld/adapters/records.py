"""What both adapters do with events recovered from the switch's own call records."""

from __future__ import annotations

from dataclasses import replace

from calld.domain.events import SwitchEvent
from calld.domain.vocabulary import EventType


def marked_missed(event: SwitchEvent, *, first_session: bool) -> SwitchEvent:
    """``event`` (from the records) with an ending marked as one calld did not see happen: while
    it was not running (``ended_while_calld_was_down``, found on its first connect) or while its
    link to the switch was down (``ended_while_disconnected``)."""
    if event.event_type not in (EventType.ENDED, EventType.FAILED):
        return event
    marker = "ended_while_calld_was_down" if first_session else "ended_while_disconnected"
    return replace(event, metadata={**event.metadata, marker: True})

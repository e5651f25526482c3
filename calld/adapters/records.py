"""What both adapters do with events recovered from the switch's own call records."""

from __future__ import annotations

from dataclasses import replace

from calld.domain.events import SwitchEvent
from calld.domain.vanished import VanishedWhile
from calld.domain.vocabulary import ENDING_EVENTS, EventType


def recovered(event: SwitchEvent, source: str, key: str | None = None) -> SwitchEvent:
    """``event``, mapped from the switch's records (``source``: "cel" or "cdr"), marked as such; its
    ending also says so in the metadata stored with it."""
    meta = dict(event.metadata)
    if event.event_type in ENDING_EVENTS:
        meta["recovered_from"] = source
    return replace(event, key=key or event.key, metadata=meta, recovered_from=source)


def missed_marker(*, first_session: bool) -> VanishedWhile:
    """Why calld did not see an ending it found: it was not running (found on its first connect),
    or its link to the switch was down (found at a reconnect)."""
    return VanishedWhile.CALLD_WAS_DOWN if first_session else VanishedWhile.DISCONNECTED


def marked_missed(event: SwitchEvent, *, first_session: bool) -> SwitchEvent:
    """``event`` (from the records) with an ending marked as one calld did not see happen: while
    it was not running (``ended_while_calld_was_down``, found on its first connect) or while its
    link to the switch was down (``ended_while_disconnected``)."""
    if event.event_type not in (EventType.ENDED, EventType.FAILED):
        return event
    marker = missed_marker(first_session=first_session)
    return replace(event, metadata={**event.metadata, marker.value: True})

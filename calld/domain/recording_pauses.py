"""A recording's paused spans (``recording_paused`` .. ``recording_resumed``), derived from the
call's events: what the file has silent. Pure: no I/O, no clock.

A span still open when the recording stops or the call ends closes there; a pause event names
the recording's file (``metadata.path``) when the switch or calld knew it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from calld.domain.call import TimedEvent
from calld.domain.errors import IllegalTransition
from calld.domain.vocabulary import CallStatus, EventType

# Events that close a pause still open: the file is finished.
_CLOSING = frozenset({EventType.RECORDING_STOPPED, EventType.ENDED, EventType.FAILED})
# Every event type ``paused_spans`` reads (the others may be left out).
SPAN_EVENTS = frozenset({EventType.RECORDING_PAUSED, EventType.RECORDING_RESUMED, *_CLOSING})


@dataclass(frozen=True, slots=True)
class PausedSpan:
    """One paused stretch of a recording; ``resumed_at`` None while still paused."""

    paused_at: datetime
    resumed_at: datetime | None
    path: str | None


def paused_spans(events: Iterable[TimedEvent]) -> list[PausedSpan]:
    """Every paused span in ``events`` (any order), oldest first. A second pause before a resume,
    or a resume without a pause, changes nothing (a switch may report twice)."""
    spans: list[PausedSpan] = []
    open_since: tuple[datetime, str | None] | None = None
    for event in sorted(events, key=lambda e: e.timestamp):
        if event.event_type is EventType.RECORDING_PAUSED and open_since is None:
            path = event.metadata.get("path")
            open_since = (event.timestamp, path if isinstance(path, str) and path else None)
        elif open_since is not None and (
            event.event_type is EventType.RECORDING_RESUMED or event.event_type in _CLOSING
        ):
            spans.append(PausedSpan(open_since[0], event.timestamp, open_since[1]))
            open_since = None
    if open_since is not None:
        spans.append(PausedSpan(open_since[0], None, open_since[1]))
    return spans


def is_paused(events: Iterable[TimedEvent]) -> bool:
    """Whether the call's recording is paused now."""
    spans = paused_spans(events)
    return bool(spans) and spans[-1].resumed_at is None


def check_pause(status: CallStatus, recording: bool, paused: bool, pausing: bool) -> None:
    """Refuse (409, naming the state) pausing a recording that is not running or already paused,
    and resuming one that is not paused."""
    kind = EventType.RECORDING_PAUSED if pausing else EventType.RECORDING_RESUMED
    if not recording:
        raise IllegalTransition(status, kind, f"the call is not recording (it is {status.value})")
    if pausing and paused:
        raise IllegalTransition(status, kind, "the recording is already paused")
    if not pausing and not paused:
        raise IllegalTransition(status, kind, "the recording is not paused")

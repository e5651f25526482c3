"""A recording's paused spans, derived from a call's events."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from calld.domain.call import TimedEvent
from calld.domain.errors import IllegalTransition
from calld.domain.recording_pauses import PausedSpan, check_pause, is_paused, paused_spans
from calld.domain.vocabulary import CallStatus, EventType

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def at(seconds: float, kind: EventType, **meta: str) -> TimedEvent:
    return TimedEvent(kind, T0 + timedelta(seconds=seconds), meta)


def test_spans_pair_pauses_with_resumes_whatever_order_the_events_come_in() -> None:
    events = [
        at(30, EventType.RECORDING_RESUMED),
        at(10, EventType.RECORDING_PAUSED, path="/rec/a.wav"),
        at(12, EventType.RECORDING_PAUSED),  # reported twice: still the one span
        at(50, EventType.RECORDING_PAUSED),
        at(55, EventType.RECORDING_STOPPED),  # the file ends paused
        at(56, EventType.RECORDING_RESUMED),  # a resume without a pause changes nothing
    ]
    assert paused_spans(events) == [
        PausedSpan(T0 + timedelta(seconds=10), T0 + timedelta(seconds=30), "/rec/a.wav"),
        PausedSpan(T0 + timedelta(seconds=50), T0 + timedelta(seconds=55), None),
    ]
    assert not is_paused(events)
    assert is_paused([at(1, EventType.RECORDING_PAUSED)])
    assert paused_spans([at(1, EventType.RECORDING_PAUSED), at(9, EventType.ENDED)])[0].resumed_at == T0 + timedelta(
        seconds=9
    )


def test_pausing_needs_a_running_recording_and_resuming_a_paused_one() -> None:
    check_pause(CallStatus.RECORDING, True, False, pausing=True)
    check_pause(CallStatus.ON_HOLD, True, True, pausing=False)
    for status, recording, paused, pausing, why in (
        (CallStatus.ANSWERED, False, False, True, "not recording (it is answered)"),
        (CallStatus.RECORDING, True, True, True, "already paused"),
        (CallStatus.RECORDING, True, False, False, "not paused"),
        (CallStatus.ENDED, False, True, False, "not recording (it is ended)"),
    ):
        with pytest.raises(IllegalTransition, match=re.escape(why)):
            check_pause(status, recording, paused, pausing)

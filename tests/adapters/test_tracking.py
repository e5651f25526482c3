"""The call tracker both switch mappers compose, and the leg rule, on plain data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from calld.adapters.tracking import VANISHED_REASON, CallTracker, TrackedCall, control_leg
from calld.domain.call import new_call
from calld.domain.vanished import VanishedWhile
from calld.domain.vocabulary import CallDirection, CallStatus, EventType

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
IN, OUT = CallDirection.INBOUND, CallDirection.OUTBOUND


@dataclass(slots=True, kw_only=True)
class Call(TrackedCall):
    note: str = ""  # a mapper's own bookkeeping rides along


def tracker_with(*refs: str) -> CallTracker[Call]:
    tracker = CallTracker[Call]()
    for ref in refs:
        tracker.add(Call(ref=ref, state=new_call(IN, START), calld_call_id=f"id-{ref}"))
    return tracker


def at(seconds: int) -> datetime:
    return START + timedelta(seconds=seconds)


def key(ref: str, event_type: EventType) -> str:
    return f"{ref}:lost:{event_type.value}"


def test_emit_moves_the_shadow_state_and_names_the_call() -> None:
    tracker = tracker_with("c1")
    call = tracker.get("c1")
    assert call is not None
    event = tracker.emit(call, EventType.ANSWERED, at(3), "k1", {"by": "phone"})
    assert event is not None
    assert (event.call_ref, event.event_type, event.timestamp, event.key) == ("c1", EventType.ANSWERED, at(3), "k1")
    assert (dict(event.metadata), event.calld_call_id, event.recovered_from) == ({"by": "phone"}, "id-c1", None)
    assert call.state.status is CallStatus.ANSWERED and call.state.answered_at == at(3)
    assert tracker.dropped == []


def test_an_event_the_domain_refuses_is_dropped_and_listed() -> None:
    tracker = tracker_with("c1")
    call = tracker.get("c1")
    assert call is not None
    assert tracker.emit(call, EventType.UNHOLD, at(1), "k-unhold") is None  # never held
    assert call.state.status is CallStatus.INITIATED
    [(dropped_key, reason)] = tracker.dropped
    assert dropped_key == "k-unhold" and reason.startswith("cannot change from initiated")


def test_the_tracker_keeps_open_calls_in_order_until_forgotten() -> None:
    tracker = tracker_with("c1", "c2", "c3")
    assert tracker.open_calls() == ["c1", "c2", "c3"] and len(tracker) == 3 and "c2" in tracker
    tracker.forget("c2")
    tracker.forget("c2")  # forgetting twice is harmless
    assert tracker.open_calls() == ["c1", "c3"] and "c2" not in tracker and tracker.get("c2") is None
    assert [call.ref for call in tracker.vanished({"c3"})] == ["c1"]


def test_a_vanished_answered_call_is_ended_and_forgotten() -> None:
    tracker = tracker_with("c1")
    call = tracker.get("c1")
    assert call is not None
    tracker.emit(call, EventType.ANSWERED, at(2), "k-answer")
    closed = tracker.close_vanished(call, at(60), key, recovered="channels")
    assert closed is not None
    assert (closed.event_type, closed.key, closed.timestamp, closed.recovered_from) == (
        EventType.ENDED,
        "c1:lost:ended",
        at(60),
        "channels",
    )
    assert dict(closed.metadata) == {
        "ended_while_disconnected": True,
        "cause": "UNKNOWN",
        "reason": VANISHED_REASON,
        "outcome": "ended",
    }
    assert call.state.status is CallStatus.ENDED and call.state.duration_seconds == 58
    assert tracker.open_calls() == []


def test_a_vanished_unanswered_call_failed_with_the_marker_asked_for() -> None:
    tracker = tracker_with("c1")
    call = tracker.get("c1")
    assert call is not None
    tracker.emit(call, EventType.RINGING, at(1), "k-ring")
    closed = tracker.close_vanished(call, at(9), key, marker=VanishedWhile.CALLD_WAS_DOWN)
    assert closed is not None and closed.event_type is EventType.FAILED and closed.key == "c1:lost:failed"
    assert closed.metadata["ended_while_calld_was_down"] is True and "outcome" not in closed.metadata
    assert "c1" not in tracker


def test_a_call_already_ended_is_forgotten_without_a_second_end() -> None:
    tracker = tracker_with("c1")
    call = tracker.get("c1")
    assert call is not None
    tracker.emit(call, EventType.FAILED, at(1), "k-failed")
    assert tracker.close_vanished(call, at(5), key) is None
    assert tracker.open_calls() == [] and len(tracker.dropped) == 1


@pytest.mark.parametrize(
    ("first", "others", "direction", "near", "far"),
    [
        # Two parties: the user dialled out (first leg), or took the call (the other leg).
        ("a", ["b"], OUT, "a", "b"),
        ("a", ["b"], IN, "b", "a"),
        # Transferred to a third phone: an inbound call's user is the latest; an outbound call's far
        # party is the latest.
        ("a", ["b", "c"], IN, "c", "a"),
        ("a", ["b", "c"], OUT, "a", "c"),
        # The first leg hung up: the latest other leg is near, the far party the oldest other one.
        (None, ["b", "c"], IN, "c", "b"),
        (None, ["b", "c"], OUT, "c", "b"),
        # One leg left: both parties are that leg (a caller decides whether that is enough).
        ("a", [], IN, "a", "a"),
        ("a", [], OUT, "a", "a"),
        (None, ["b"], OUT, "b", "b"),
        # None up.
        (None, [], IN, None, None),
    ],
)
def test_the_leg_rule(
    first: str | None, others: list[str], direction: CallDirection, near: str | None, far: str | None
) -> None:
    assert control_leg(first, others, direction, near=True) == near
    assert control_leg(first, others, direction, near=False) == far

"""The vanished-call rule, on plain data and through the call state machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calld.domain.call import CallState, apply_event, new_call
from calld.domain.vanished import VanishedWhile, as_stored, vanished_end
from calld.domain.vocabulary import CallDirection, CallStatus, EventType

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def after(events: list[EventType]) -> CallState:
    state = new_call(CallDirection.INBOUND, START)
    for step, event_type in enumerate(events, 1):
        state = apply_event(state, event_type, START + timedelta(seconds=step))
    return state


@pytest.mark.parametrize("marker", list(VanishedWhile))
def test_an_answered_call_is_ended_with_an_unknown_cause_and_the_marker(marker: VanishedWhile) -> None:
    end = vanished_end(True, marker)
    assert end.event_type is EventType.ENDED
    assert dict(end.metadata) == {marker.value: True, "cause": "UNKNOWN", "outcome": "ended"}


@pytest.mark.parametrize("marker", list(VanishedWhile))
def test_an_unanswered_call_failed(marker: VanishedWhile) -> None:
    end = vanished_end(False, marker)
    assert end.event_type is EventType.FAILED
    assert dict(end.metadata) == {marker.value: True, "cause": "UNKNOWN"}


def test_the_markers_are_the_names_stored_in_the_metadata() -> None:
    assert VanishedWhile.DISCONNECTED.value == "ended_while_disconnected"
    assert VanishedWhile.CALLD_WAS_DOWN.value == "ended_while_calld_was_down"


def test_a_reason_is_kept_beside_the_marker() -> None:
    end = vanished_end(False, VanishedWhile.DISCONNECTED, reason="call no longer on the switch after reconnect")
    assert end.metadata["reason"] == "call no longer on the switch after reconnect"
    assert "reason" not in vanished_end(False, VanishedWhile.DISCONNECTED).metadata


@pytest.mark.parametrize(
    ("history", "closed_as"),
    [
        ([], CallStatus.FAILED),
        ([EventType.RINGING], CallStatus.FAILED),
        ([EventType.RINGING, EventType.ANSWERED], CallStatus.ENDED),
        ([EventType.ANSWERED, EventType.HOLD], CallStatus.ENDED),
        ([EventType.ANSWERED, EventType.RECORDING_STARTED], CallStatus.ENDED),
        ([EventType.ANSWERED, EventType.TRANSFER_INITIATED], CallStatus.ENDED),
    ],
)
def test_the_state_machine_accepts_the_closing_from_every_open_status(
    history: list[EventType], closed_as: CallStatus
) -> None:
    state = after(history)
    end = vanished_end(state.answered_at is not None, VanishedWhile.DISCONNECTED)
    closed = apply_event(state, end.event_type, START + timedelta(minutes=5), end.metadata)
    assert closed.status is closed_as
    assert closed.ended_at == START + timedelta(minutes=5)


@pytest.mark.parametrize("marker", list(VanishedWhile))
def test_a_failed_close_of_a_call_storage_knows_answered_becomes_ended(marker: VanishedWhile) -> None:
    """The adapter did not see the answer (it came from the switch's records while the link was down)."""
    adapter_said = vanished_end(False, marker, "call no longer on the switch after reconnect")
    restated = as_stored(adapter_said.event_type, adapter_said.metadata, answered=True)
    assert restated is not None and restated.event_type is EventType.ENDED
    assert dict(restated.metadata) == {
        marker.value: True,
        "cause": "UNKNOWN",
        "reason": "call no longer on the switch after reconnect",
        "outcome": "ended",
    }
    final = apply_event(
        after([EventType.ANSWERED]), restated.event_type, START + timedelta(seconds=9), dict(restated.metadata)
    )
    assert final.status is CallStatus.ENDED


def test_other_endings_stand() -> None:
    failed = vanished_end(False, VanishedWhile.DISCONNECTED)
    assert as_stored(failed.event_type, failed.metadata, answered=False) is None  # never answered: failed
    assert as_stored(EventType.FAILED, {"reason": "switch said so"}, answered=True) is None  # no marker
    ended = vanished_end(True, VanishedWhile.CALLD_WAS_DOWN)
    assert as_stored(ended.event_type, ended.metadata, answered=True) is None


def test_an_unanswered_outcome_for_a_call_storage_knows_answered_becomes_ended() -> None:
    """Seen live after an AMI link cut: the Hangup said missed, CEL had stored the answer."""
    restated = as_stored(EventType.ENDED, {"outcome": "missed", "cause": "16"}, answered=True)
    assert restated is not None and restated.event_type is EventType.ENDED
    assert dict(restated.metadata) == {"outcome": "ended", "adapter_outcome": "missed", "cause": "16"}
    assert as_stored(EventType.ENDED, {"outcome": "missed"}, answered=False) is None
    assert as_stored(EventType.ENDED, {"outcome": "ended"}, answered=True) is None
    assert as_stored(EventType.ENDED, {}, answered=True) is None  # no outcome: the domain decides

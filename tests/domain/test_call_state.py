"""The call state machine, tested directly with plain data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calld.domain.call import TRANSITIONS, CallState, TimedEvent, apply_event, event_for_status, fold, new_call
from calld.domain.errors import IllegalTransition, InvalidValue
from calld.domain.vocabulary import TERMINAL_STATUSES, CallDirection, CallStatus, EventType

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
S, E = CallStatus, EventType


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run(
    events: list[tuple[EventType, float, dict[str, object]]], direction: CallDirection = CallDirection.INBOUND
) -> CallState:
    state = new_call(direction, T0)
    for event_type, seconds, meta in events:
        state = apply_event(state, event_type, at(seconds), meta)
    return state


def test_every_status_has_a_row_and_terminal_rows_are_empty() -> None:
    assert set(TRANSITIONS) == set(CallStatus)
    for status in TERMINAL_STATUSES:
        assert TRANSITIONS[status] == {}


def _reach(status: CallStatus, recording: bool = False) -> CallState:
    """A state in ``status`` reached by legal events only."""
    paths: dict[CallStatus, list[EventType]] = {
        S.INITIATED: [],
        S.RINGING: [E.RINGING],
        S.ANSWERED: [E.ANSWERED],
        S.RECORDING: [E.ANSWERED, E.RECORDING_STARTED],
        S.ON_HOLD: [E.ANSWERED, E.HOLD],
        S.TRANSFERRED: [E.ANSWERED, E.TRANSFER_INITIATED],
    }
    events = list(paths[status])
    if recording and status in (S.ON_HOLD, S.TRANSFERRED):
        events.insert(1, E.RECORDING_STARTED)
    state = new_call(CallDirection.INBOUND, T0)
    for i, event in enumerate(events):
        state = apply_event(state, event, at(i + 1))
    return state


@pytest.mark.parametrize(
    ("current", "target"),
    [(c, t) for c, row in TRANSITIONS.items() for t in row if c not in TERMINAL_STATUSES],
)
def test_each_table_transition_is_accepted_by_the_reducer(current: CallStatus, target: CallStatus) -> None:
    state = _reach(current, recording=target is S.RECORDING)
    event_type, meta = event_for_status(state, target)
    after = apply_event(state, event_type, at(100), meta)
    assert after.status is target


def _reach_any(status: CallStatus) -> CallState:
    """Like ``_reach``, for terminal statuses too."""
    if status is S.ENDED:
        return apply_event(_reach(S.ANSWERED), E.ENDED, at(50))
    if status is S.FAILED:
        return apply_event(_reach(S.RINGING), E.FAILED, at(50))
    if status in TERMINAL_STATUSES:
        return apply_event(_reach(S.RINGING), E.ENDED, at(50), {"outcome": status.value})
    return _reach(status)


@pytest.mark.parametrize(
    ("current", "target"), [(c, t) for c in CallStatus for t in CallStatus if t not in TRANSITIONS[c]]
)
def test_transitions_outside_the_table_are_refused(current: CallStatus, target: CallStatus) -> None:
    state = _reach_any(current)
    assert state.status is current
    with pytest.raises(IllegalTransition) as info:
        event_for_status(state, target)
    assert info.value.current is current
    assert info.value.requested is target


def test_answered_call_derives_ring_hold_and_duration() -> None:
    state = run(
        [
            (E.RINGING, 2, {}),
            (E.ANSWERED, 7, {}),
            (E.HOLD, 20, {}),
            (E.UNHOLD, 32, {}),
            (E.HOLD, 40, {}),
            (E.ENDED, 45, {}),
        ]
    )
    assert state.status is S.ENDED
    assert state.ring_seconds == 5
    assert state.hold_seconds == 12 + 5  # the second hold runs until the call ends
    assert state.answered_at == at(7)
    assert state.ended_at == at(45)
    assert state.duration_seconds == 38
    assert state.held_since is None


def test_unanswered_inbound_defaults_to_missed_and_outbound_to_cancelled() -> None:
    inbound = run([(E.RINGING, 1, {}), (E.ENDED, 31, {})], CallDirection.INBOUND)
    outbound = run([(E.RINGING, 1, {}), (E.ENDED, 31, {})], CallDirection.OUTBOUND)
    assert inbound.status is S.MISSED
    assert outbound.status is S.CANCELLED
    assert inbound.duration_seconds == 0
    assert inbound.ring_seconds == 30


def test_explicit_outcome_is_validated() -> None:
    assert run([(E.ENDED, 3, {"outcome": "busy"})]).status is S.BUSY
    with pytest.raises(InvalidValue) as info:
        run([(E.ENDED, 3, {"outcome": "exploded"})])
    assert info.value.field == "metadata.outcome"
    with pytest.raises(IllegalTransition):  # an unanswered call cannot have ended "normally"
        run([(E.ENDED, 3, {"outcome": "ended"})])


def test_recording_survives_hold_and_unhold_returns_to_recording() -> None:
    state = run([(E.ANSWERED, 1, {}), (E.RECORDING_STARTED, 2, {}), (E.HOLD, 3, {})])
    assert state.status is S.ON_HOLD and state.recording
    state = apply_event(state, E.UNHOLD, at(4))
    assert state.status is S.RECORDING
    state = apply_event(state, E.HOLD, at(5))
    state = apply_event(state, E.RECORDING_STOPPED, at(6))
    assert state.status is S.ON_HOLD and not state.recording
    assert apply_event(state, E.UNHOLD, at(7)).status is S.ANSWERED


def test_double_hold_and_stopping_an_absent_recording_are_refused() -> None:
    held = run([(E.ANSWERED, 1, {}), (E.HOLD, 2, {})])
    with pytest.raises(IllegalTransition):
        apply_event(held, E.HOLD, at(3))
    with pytest.raises(IllegalTransition):
        apply_event(run([(E.ANSWERED, 1, {})]), E.RECORDING_STOPPED, at(2))


def test_transfer_records_target_and_completes_back_to_answered() -> None:
    state = run([(E.ANSWERED, 1, {}), (E.TRANSFER_INITIATED, 5, {"transfer_to": "+14155550177"})])
    assert state.status is S.TRANSFERRED
    assert state.transfer_target == "+14155550177"
    assert apply_event(state, E.TRANSFER_COMPLETED, at(6)).status is S.ANSWERED


def test_neutral_events_keep_status_and_late_quality_reports_are_accepted() -> None:
    state = run([(E.ANSWERED, 1, {}), (E.DTMF, 2, {"digit": "5"}), (E.MUTED, 3, {}), (E.UNMUTED, 4, {})])
    assert state.status is S.ANSWERED
    ended = apply_event(state, E.ENDED, at(10))
    assert apply_event(ended, E.QUALITY_CHANGE, at(11), {"score": 4.2}).call_quality_score == 4.2
    with pytest.raises(IllegalTransition):
        apply_event(ended, E.DTMF, at(12), {"digit": "1"})
    with pytest.raises(IllegalTransition):
        apply_event(new_call(CallDirection.INBOUND, T0), E.MUTED, at(1))
    with pytest.raises(InvalidValue):
        apply_event(state, E.QUALITY_CHANGE, at(5), {"score": 7})


def test_out_of_order_timestamps_are_clamped_so_times_stay_ordered() -> None:
    state = run([(E.ANSWERED, 10, {}), (E.ENDED, 5, {})])
    assert state.ended_at == state.answered_at == at(10)
    assert state.duration_seconds == 0


def test_initiated_only_once() -> None:
    with pytest.raises(IllegalTransition):
        apply_event(new_call(CallDirection.INBOUND, T0), E.INITIATED, at(1))


def test_status_request_that_would_land_elsewhere_is_refused() -> None:
    held_while_recording = run([(E.ANSWERED, 1, {}), (E.RECORDING_STARTED, 2, {}), (E.HOLD, 3, {})])
    with pytest.raises(IllegalTransition) as info:
        event_for_status(held_while_recording, S.ANSWERED)
    assert "leads to recording" in info.value.reason
    assert event_for_status(held_while_recording, S.RECORDING) == (E.UNHOLD, {})


def test_fold_orders_events_by_time_whatever_the_arrival_order() -> None:
    arrived = [
        TimedEvent(EventType.ENDED, at(10)),
        TimedEvent(EventType.ANSWERED, at(5)),
        TimedEvent(EventType.INITIATED, at(0)),
        TimedEvent(EventType.RINGING, at(1)),
    ]
    state = fold(CallDirection.INBOUND, arrived)
    assert state.status is CallStatus.ENDED
    assert (state.started_at, state.answered_at, state.ended_at) == (at(0), at(5), at(10))
    assert (state.ring_seconds, state.duration_seconds) == (4.0, 5.0)


def test_fold_refuses_what_is_impossible_in_time_order() -> None:
    with pytest.raises(IllegalTransition):
        fold(
            CallDirection.INBOUND,
            [
                TimedEvent(EventType.INITIATED, at(0)),
                TimedEvent(EventType.ENDED, at(10), {"outcome": "missed"}),
                TimedEvent(EventType.ANSWERED, at(5)),
            ],
        )
    with pytest.raises(IllegalTransition):
        fold(CallDirection.INBOUND, [TimedEvent(EventType.INITIATED, at(2)), TimedEvent(EventType.RINGING, at(1))])

"""The call state machine: one explicit transition table and a pure reducer.

Every status change of a call is caused by exactly one event. ``apply_event`` folds an event into a
``CallState``; timestamps and durations are derived here from event timestamps only, never taken from
clients. ``TRANSITIONS`` is the single table of allowed status changes, read both by the reducer and
by the API's "set status" action (``event_for_status``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from calld.domain.direction import unanswered
from calld.domain.errors import IllegalTransition, InvalidValue
from calld.domain.vocabulary import (
    END_OUTCOMES,
    TERMINAL_STATUSES,
    CallDirection,
    CallStatus,
    CallType,
    EventType,
)

# current status -> {next status: the event that records that change}
TRANSITIONS: Mapping[CallStatus, Mapping[CallStatus, EventType]] = {
    CallStatus.INITIATED: {
        CallStatus.RINGING: EventType.RINGING,
        CallStatus.ANSWERED: EventType.ANSWERED,
        CallStatus.MISSED: EventType.ENDED,
        CallStatus.BUSY: EventType.ENDED,
        CallStatus.NO_ANSWER: EventType.ENDED,
        CallStatus.CANCELLED: EventType.ENDED,
        CallStatus.FAILED: EventType.FAILED,
    },
    CallStatus.RINGING: {
        CallStatus.ANSWERED: EventType.ANSWERED,
        CallStatus.MISSED: EventType.ENDED,
        CallStatus.BUSY: EventType.ENDED,
        CallStatus.NO_ANSWER: EventType.ENDED,
        CallStatus.CANCELLED: EventType.ENDED,
        CallStatus.FAILED: EventType.FAILED,
    },
    CallStatus.ANSWERED: {
        CallStatus.ON_HOLD: EventType.HOLD,
        CallStatus.RECORDING: EventType.RECORDING_STARTED,
        CallStatus.TRANSFERRED: EventType.TRANSFER_INITIATED,
        CallStatus.ENDED: EventType.ENDED,
        CallStatus.FAILED: EventType.FAILED,
    },
    CallStatus.RECORDING: {
        CallStatus.ANSWERED: EventType.RECORDING_STOPPED,
        CallStatus.ON_HOLD: EventType.HOLD,
        CallStatus.TRANSFERRED: EventType.TRANSFER_INITIATED,
        CallStatus.ENDED: EventType.ENDED,
        CallStatus.FAILED: EventType.FAILED,
    },
    CallStatus.ON_HOLD: {
        CallStatus.ANSWERED: EventType.UNHOLD,
        CallStatus.RECORDING: EventType.UNHOLD,
        CallStatus.TRANSFERRED: EventType.TRANSFER_INITIATED,
        CallStatus.ENDED: EventType.ENDED,
        CallStatus.FAILED: EventType.FAILED,
    },
    CallStatus.TRANSFERRED: {
        CallStatus.ANSWERED: EventType.TRANSFER_COMPLETED,
        CallStatus.RECORDING: EventType.TRANSFER_COMPLETED,
        CallStatus.ENDED: EventType.ENDED,
        CallStatus.FAILED: EventType.FAILED,
    },
    CallStatus.MISSED: {},
    CallStatus.BUSY: {},
    CallStatus.NO_ANSWER: {},
    CallStatus.FAILED: {},
    CallStatus.CANCELLED: {},
    CallStatus.ENDED: {},
}

# Events that never change status. Late quality reports and errors are accepted after a call ended
# (switches send RTCP summaries after hangup); the others only while the call is live.
_NEUTRAL_EVENTS: frozenset[EventType] = frozenset(
    {
        EventType.MUTED,
        EventType.UNMUTED,
        EventType.DTMF,
        EventType.QUALITY_CHANGE,
        EventType.ERROR,
        EventType.PROVIDER_EVENT,
    }
)
# A provider's report (a late recording, a leg's hangup) may come at any time, also after the end.
_ACCEPTED_AFTER_END: frozenset[EventType] = frozenset(
    {EventType.QUALITY_CHANGE, EventType.ERROR, EventType.PROVIDER_EVENT}
)

MAX_QUALITY_SCORE = 5.0


@dataclass(frozen=True, slots=True)
class CallState:
    """What the domain knows of one call, derived from its events."""

    direction: CallDirection
    status: CallStatus
    started_at: datetime
    last_event_at: datetime
    ringing_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    held_since: datetime | None = None
    ring_seconds: float | None = None
    hold_seconds: float = 0.0
    duration_seconds: float | None = None
    recording: bool = False
    transfer_target: str | None = None
    call_quality_score: float | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


def new_call(direction: CallDirection, started_at: datetime) -> CallState:
    """The state of a call that has just been initiated at ``started_at``."""
    return CallState(
        direction=direction,
        status=CallStatus.INITIATED,
        started_at=started_at,
        last_event_at=started_at,
    )


def validate_quality_score(value: Any, field: str = "call_quality_score") -> float:
    """A quality score is a number from 0 to 5 (MOS-like)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(field, "must be a number from 0 to 5")
    score = float(value)
    if not 0.0 <= score <= MAX_QUALITY_SCORE:
        raise InvalidValue(field, "must be a number from 0 to 5")
    return score


@dataclass(slots=True)
class NewCall:
    """What is known of a call when it starts."""

    direction: CallDirection
    caller_number: str
    recipient_number: str
    call_type: CallType = CallType.VOICE
    sip_call_id: str | None = None
    client_id: uuid.UUID | None = None
    sip_configuration_id: uuid.UUID | None = None
    switch_name: str | None = None
    switch_call_ref: str | None = None
    notes: str = ""
    seeded: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    # Set by the number policy (``calld.storage.calls.presented``): the numbers as given, before it read them.
    caller_number_raw: str | None = None
    recipient_number_raw: str | None = None
    caller_withheld: bool = False


def hold_toggle(status: CallStatus) -> EventType:
    """What "toggle hold" means for a call in ``status``: hold a connected call, resume a held one."""
    if status in (CallStatus.ANSWERED, CallStatus.RECORDING):
        return EventType.HOLD
    if status is CallStatus.ON_HOLD:
        return EventType.UNHOLD
    raise IllegalTransition(status, EventType.HOLD, "only an answered, recording or held call can toggle hold")


def event_for_status(state: CallState, requested: CallStatus) -> tuple[EventType, dict[str, Any]]:
    """The event (type and metadata) that moves ``state`` to ``requested``, per ``TRANSITIONS``."""
    event_type = TRANSITIONS[state.status].get(requested)
    if event_type is None:
        raise IllegalTransition(state.status, requested, _why_not(state.status))
    metadata: dict[str, Any] = {}
    if event_type is EventType.ENDED:
        metadata["outcome"] = requested.value
    # The table names the event; the state decides where it lands (un-holding a call that is
    # recording resumes recording), so refuse a request the event would not fulfil.
    landed = apply_event(state, event_type, state.last_event_at, metadata).status
    if landed is not requested:
        raise IllegalTransition(state.status, requested, f"that change leads to {landed.value}")
    return event_type, metadata


def _why_not(status: CallStatus) -> str:
    if status in TERMINAL_STATUSES:
        return f"the call is already {status.value}"
    allowed = ", ".join(s.value for s in TRANSITIONS[status])
    return f"from {status.value} the call can only become one of: {allowed}"


def _default_outcome(state: CallState) -> CallStatus:
    if state.answered_at is not None:
        return CallStatus.ENDED
    return unanswered(state.direction)


def _target_status(state: CallState, event_type: EventType, metadata: Mapping[str, Any]) -> CallStatus:
    if event_type is EventType.RINGING:
        return CallStatus.RINGING
    if event_type is EventType.ANSWERED:
        return CallStatus.ANSWERED
    if event_type is EventType.HOLD:
        return CallStatus.ON_HOLD
    if event_type in (EventType.UNHOLD, EventType.TRANSFER_COMPLETED):
        return CallStatus.RECORDING if state.recording else CallStatus.ANSWERED
    if event_type is EventType.RECORDING_STARTED:
        return CallStatus.RECORDING
    if event_type is EventType.RECORDING_STOPPED:
        return CallStatus.ANSWERED
    if event_type is EventType.TRANSFER_INITIATED:
        return CallStatus.TRANSFERRED
    if event_type is EventType.FAILED:
        return CallStatus.FAILED
    if event_type is EventType.ENDED:
        raw = metadata.get("outcome")
        if raw is None:
            return _default_outcome(state)
        try:
            outcome = CallStatus(raw)
        except ValueError:
            outcome = None
        if outcome is None or outcome not in END_OUTCOMES:
            allowed = ", ".join(sorted(o.value for o in END_OUTCOMES))
            raise InvalidValue("metadata.outcome", f"must be one of: {allowed}")
        return outcome
    raise AssertionError(f"unhandled event type {event_type}")  # pragma: no cover


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


def apply_event(
    state: CallState,
    event_type: EventType,
    timestamp: datetime,
    metadata: Mapping[str, Any] | None = None,
) -> CallState:
    """Fold one event into ``state``; raise ``IllegalTransition`` if the call cannot take it.

    Timestamps earlier than the call's last event are clamped to it, so that the derived
    timestamps stay ordered (started ≤ answered ≤ ended) even when a switch reports two events
    out of order within the same instant.
    """
    meta = metadata or {}
    ts = max(timestamp, state.last_event_at)

    if event_type is EventType.INITIATED:
        raise IllegalTransition(state.status, event_type, "a call is initiated only once, when created")

    if event_type in _NEUTRAL_EVENTS:
        if state.is_terminal and event_type not in _ACCEPTED_AFTER_END:
            raise IllegalTransition(state.status, event_type, f"the call is already {state.status.value}")
        if event_type in (EventType.MUTED, EventType.UNMUTED) and state.status not in (
            CallStatus.ANSWERED,
            CallStatus.RECORDING,
            CallStatus.ON_HOLD,
            CallStatus.TRANSFERRED,
        ):
            raise IllegalTransition(state.status, event_type, "only a connected call can be muted")
        changes: dict[str, Any] = {"last_event_at": ts}
        if event_type is EventType.QUALITY_CHANGE and "score" in meta:
            changes["call_quality_score"] = validate_quality_score(meta["score"], "metadata.score")
        return replace(state, **changes)

    # Pausing a recording changes no status; only a recording can be paused or resumed (whether it
    # is paused already follows from the events: calld.domain.recording_pauses).
    if event_type in (EventType.RECORDING_PAUSED, EventType.RECORDING_RESUMED):
        if not state.recording or state.is_terminal:
            raise IllegalTransition(state.status, event_type, "the call is not recording")
        return replace(state, last_event_at=ts)

    # Recording is orthogonal to hold: starting or stopping it while held keeps the call on hold.
    if state.status is CallStatus.ON_HOLD and event_type in (EventType.RECORDING_STARTED, EventType.RECORDING_STOPPED):
        starting = event_type is EventType.RECORDING_STARTED
        if state.recording == starting:
            already = "already recording" if starting else "not recording"
            raise IllegalTransition(state.status, event_type, f"the call is {already}")
        return replace(state, recording=starting, last_event_at=ts)

    if event_type is EventType.RECORDING_STOPPED and not state.recording:
        raise IllegalTransition(state.status, event_type, "the call is not recording")

    target = _target_status(state, event_type, meta)
    if TRANSITIONS[state.status].get(target) is not event_type:
        raise IllegalTransition(state.status, target, _why_not(state.status))
    return _enter(state, target, event_type, ts, meta)


def _enter(
    state: CallState,
    target: CallStatus,
    event_type: EventType,
    ts: datetime,
    meta: Mapping[str, Any],
) -> CallState:
    changes: dict[str, Any] = {"status": target, "last_event_at": ts}
    if event_type is EventType.RINGING and state.ringing_at is None:
        changes["ringing_at"] = ts
    elif event_type is EventType.ANSWERED:
        changes["answered_at"] = ts
        changes["ring_seconds"] = _seconds(ts, state.ringing_at or state.started_at)
    elif event_type is EventType.HOLD:
        changes["held_since"] = ts
    elif event_type is EventType.UNHOLD and state.held_since is not None:
        changes["held_since"] = None
        changes["hold_seconds"] = state.hold_seconds + _seconds(ts, state.held_since)
    elif event_type is EventType.RECORDING_STARTED:
        changes["recording"] = True
    elif event_type is EventType.RECORDING_STOPPED:
        changes["recording"] = False
    elif event_type is EventType.TRANSFER_INITIATED:
        target_party = meta.get("transfer_to")
        if isinstance(target_party, str) and target_party:
            changes["transfer_target"] = target_party
        if state.held_since is not None:
            changes["held_since"] = None
            changes["hold_seconds"] = state.hold_seconds + _seconds(ts, state.held_since)
    if target in TERMINAL_STATUSES:
        changes.update(_closing(state, ts))
    return replace(state, **changes)


def _closing(state: CallState, ts: datetime) -> dict[str, Any]:
    changes: dict[str, Any] = {"ended_at": ts, "recording": False, "held_since": None}
    if state.held_since is not None:
        changes["hold_seconds"] = state.hold_seconds + _seconds(ts, state.held_since)
    if state.answered_at is not None:
        changes["duration_seconds"] = _seconds(ts, state.answered_at)
    else:
        changes["duration_seconds"] = 0.0
        changes["ring_seconds"] = _seconds(ts, state.ringing_at or state.started_at)
    return changes


@dataclass(frozen=True, slots=True)
class TimedEvent:
    """One stored or arriving event of a call, as ``fold`` reads it."""

    event_type: EventType
    timestamp: datetime
    metadata: Mapping[str, Any] = field(default_factory=dict)


def fold(direction: CallDirection, events: Sequence[TimedEvent]) -> CallState:
    """The state of a call from all its events in timestamp order, whatever order they arrived in
    (events with equal timestamps keep the order given). The earliest must be the ``initiated``
    event; ``IllegalTransition`` if the events are impossible *in time order* (per ``TRANSITIONS``).

    Providers do not guarantee delivery order: a ``call_answered`` delivered after ``call_ended``
    still happened before it, so folding by time turns what looked missed into an answered call.
    """
    ordered = sorted(events, key=lambda event: event.timestamp)
    first = ordered[0]
    if first.event_type is not EventType.INITIATED:
        raise IllegalTransition(
            CallStatus.INITIATED, first.event_type, "no event of a call can come before it was initiated"
        )
    state = new_call(direction, first.timestamp)
    for event in ordered[1:]:
        state = apply_event(state, event.event_type, event.timestamp, event.metadata)
    return state

"""Whether a call is parked, from its events (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calld.domain.call import TimedEvent
from calld.domain.errors import IllegalTransition, InvalidValue
from calld.domain.parking import check_park, check_pickup, parked_now, validate_slot
from calld.domain.vocabulary import CallStatus, EventType

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def at(seconds: int, kind: EventType, **meta: str) -> TimedEvent:
    return TimedEvent(kind, T0 + timedelta(seconds=seconds), meta)


def test_a_hold_naming_a_slot_is_a_park_until_the_pickup() -> None:
    parked = [at(0, EventType.ANSWERED), at(5, EventType.HOLD, parked="701", lot="default")]
    assert parked_now(CallStatus.ON_HOLD, parked) == {
        "slot": "701",
        "lot": "default",
        "since": T0 + timedelta(seconds=5),
    }
    picked = [*parked, at(9, EventType.UNHOLD, picked_up="701")]
    assert parked_now(CallStatus.ANSWERED, picked) is None
    # Parked again later: the newest park counts; a status that is no longer on hold ends it.
    again = [*picked, at(12, EventType.HOLD, parked="705")]
    assert parked_now(CallStatus.ON_HOLD, list(reversed(again)))["slot"] == "705"  # type: ignore[index]
    assert parked_now(CallStatus.ENDED, again) is None


def test_a_plain_hold_is_no_park() -> None:
    events = [at(0, EventType.HOLD, parked="701"), at(3, EventType.UNHOLD), at(4, EventType.HOLD)]
    assert parked_now(CallStatus.ON_HOLD, events) is None
    assert parked_now(CallStatus.ON_HOLD, []) is None


def test_only_an_answered_call_off_hold_can_be_parked_and_only_a_parked_one_picked_up() -> None:
    check_park(CallStatus.ANSWERED)
    check_park(CallStatus.RECORDING)
    for status in (CallStatus.RINGING, CallStatus.ON_HOLD, CallStatus.ENDED):
        with pytest.raises(IllegalTransition, match=status.value):
            check_park(status)
    assert check_pickup(CallStatus.ON_HOLD, {"slot": "701"}) == "701"
    with pytest.raises(IllegalTransition, match="not parked"):
        check_pickup(CallStatus.ANSWERED, None)


@pytest.mark.parametrize("value", ["", "70 1", "70a", "1" * 17, 701, None])
def test_a_slot_is_digits(value: object) -> None:
    with pytest.raises(InvalidValue, match="slot"):
        validate_slot(value)
    assert validate_slot("6001") == "6001"

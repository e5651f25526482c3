"""Control requests checked by the domain: which party, which DTMF digits, in which state."""

from __future__ import annotations

import pytest

from calld.domain.controls import (
    MAX_DTMF_DIGITS,
    Party,
    near_party,
    party_of,
    require_connected,
    validate_dtmf,
    validate_dtmf_duration,
)
from calld.domain.errors import IllegalTransition, InvalidValue
from calld.domain.vocabulary import CallDirection, CallStatus, EventType


def test_the_user_is_the_caller_of_an_outbound_call_and_the_callee_of_an_inbound_one() -> None:
    assert near_party(CallDirection.OUTBOUND, Party.CALLER) is True
    assert near_party(CallDirection.OUTBOUND, Party.CALLEE) is False
    assert near_party(CallDirection.INBOUND, Party.CALLEE) is True
    assert near_party(CallDirection.INBOUND, Party.CALLER) is False
    # No party: the far one, whichever direction.
    assert near_party(CallDirection.INBOUND, None) is False
    assert near_party(CallDirection.OUTBOUND, None) is False
    for direction in CallDirection:
        for near in (True, False):
            assert near_party(direction, party_of(direction, near)) is near


@pytest.mark.parametrize("digits", ["0", "123#", "*9", "ABCD", "abcd", "1" * MAX_DTMF_DIGITS])
def test_dtmf_digits_are_0_to_9_star_hash_and_a_to_d(digits: str) -> None:
    assert validate_dtmf(digits) == digits.upper()


@pytest.mark.parametrize("digits", ["", "12 3", "1E", "1,2", "\uff11", "1" * (MAX_DTMF_DIGITS + 1), 12, None, ["1"]])
def test_anything_else_is_refused_naming_the_field(digits: object) -> None:
    with pytest.raises(InvalidValue) as refused:
        validate_dtmf(digits)
    assert refused.value.field == "digits"


def test_dtmf_duration_is_bounded() -> None:
    assert validate_dtmf_duration(100) == 100
    for bad in (39, 2001, 1.5, True, "100"):
        with pytest.raises(InvalidValue):
            validate_dtmf_duration(bad)


def test_only_a_connected_call_takes_an_in_call_action() -> None:
    for status in (CallStatus.ANSWERED, CallStatus.RECORDING, CallStatus.ON_HOLD, CallStatus.TRANSFERRED):
        require_connected(status, EventType.DTMF)
    for status in (CallStatus.INITIATED, CallStatus.RINGING, CallStatus.ENDED, CallStatus.MISSED):
        with pytest.raises(IllegalTransition) as refused:
            require_connected(status, EventType.MUTED)
        assert refused.value.current is status and status.value in str(refused.value)

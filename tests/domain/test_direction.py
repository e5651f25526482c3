"""calld.domain.direction: internal calls from the PBX's configured contexts and extensions."""

from __future__ import annotations

import pytest

from calld.domain.controls import Party, near_party, party_of, require_offered_inbound
from calld.domain.direction import (
    DEFAULT_INTERNAL_EXTENSIONS,
    extensions_pattern,
    placed_direction,
    unanswered,
    user_is_caller,
)
from calld.domain.errors import IllegalTransition, InvalidValue
from calld.domain.vocabulary import CallDirection, CallStatus, EventType

IN, OUT, INTERNAL = CallDirection.INBOUND, CallDirection.OUTBOUND, CallDirection.INTERNAL
EXTENSIONS = extensions_pattern(DEFAULT_INTERNAL_EXTENSIONS)


@pytest.mark.parametrize(
    ("by_context", "dialled", "expected"),
    [
        (OUT, "1002", INTERNAL),
        (OUT, "9010", INTERNAL),
        (OUT, "+4930123456", OUT),
        (OUT, "004930123456", OUT),  # 12 digits: no extension
        (OUT, "", OUT),
        (OUT, "*97", OUT),
        (IN, "1002", IN),  # a trunk's call dialling an extension stays inbound
    ],
)
def test_a_users_call_to_an_extension_is_internal(
    by_context: CallDirection, dialled: str, expected: CallDirection
) -> None:
    assert placed_direction(by_context, dialled, EXTENSIONS) is expected


def test_without_extensions_configured_no_call_is_internal() -> None:
    assert extensions_pattern("") is None
    assert placed_direction(OUT, "1002", None) is OUT


def test_a_bad_expression_names_the_setting() -> None:
    with pytest.raises(InvalidValue) as raised:
        extensions_pattern("[0-9", "asterisk.internal_extensions")
    assert raised.value.field == "asterisk.internal_extensions"


def test_the_phone_that_dialled_an_internal_call_is_calld_s_user() -> None:
    assert user_is_caller(INTERNAL) and user_is_caller(OUT) and not user_is_caller(IN)
    assert near_party(INTERNAL, Party.CALLER) and not near_party(INTERNAL, Party.CALLEE)
    assert party_of(INTERNAL, near=False) is Party.CALLEE


def test_an_unanswered_internal_call_was_missed_by_the_phone_it_rang() -> None:
    assert unanswered(INTERNAL) is CallStatus.MISSED
    assert unanswered(IN) is CallStatus.MISSED
    assert unanswered(OUT) is CallStatus.CANCELLED


def test_a_ringing_internal_call_may_be_answered_or_rejected_an_outbound_one_not() -> None:
    require_offered_inbound(CallStatus.RINGING, INTERNAL, EventType.ANSWERED)
    with pytest.raises(IllegalTransition):
        require_offered_inbound(CallStatus.RINGING, OUT, EventType.ANSWERED)

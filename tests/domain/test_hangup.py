"""Why a call ended, in one vocabulary, from what each source says (plain metadata)."""

from __future__ import annotations

import pytest

from calld.domain.hangup import HangupBy as B
from calld.domain.hangup import HangupCause as C
from calld.domain.hangup import MissedReason as M
from calld.domain.hangup import cause_of, end_columns, missed_reason
from calld.domain.vocabulary import CallStatus as S
from calld.domain.vocabulary import EventType


@pytest.mark.parametrize(
    ("metadata", "cause", "q850"),
    [
        # FreeSWITCH: the cause name, the leg's raw Q.850 code.
        ({"cause": "USER_BUSY", "hangup_cause_q850": 17}, C.BUSY, 17),
        ({"cause": "LOSE_RACE"}, C.LOSE_RACE, None),  # FreeSWITCH's own code (502) is no Q.850 code
        ({"cause": "NO_ANSWER"}, C.NO_ANSWER, 19),
        # Asterisk: DIALSTATUS says more than the caller channel's cause code.
        ({"cause": "Normal Clearing", "cause_code": 16, "dial_status": "NOANSWER"}, C.NO_ANSWER, 16),
        ({"cause": "Interworking, unspecified", "cause_code": 127, "dial_status": "CANCEL"}, C.ORIGINATOR_CANCEL, 127),
        ({"cause": "Circuit/channel congestion", "cause_code": 34}, C.CONGESTION, 34),
        ({"cause_code": 1}, C.UNALLOCATED_NUMBER, 1),
        ({"cause_code": 99}, C.FAILURE, 99),
        # A provider's webhook: this vocabulary, or only a SIP status.
        ({"hangup_cause": "call_rejected"}, C.CALL_REJECTED, None),
        ({"sip_status": 486}, C.BUSY, None),
        ({"sip_status": "404"}, C.UNALLOCATED_NUMBER, None),
        ({}, None, None),
    ],
)
def test_one_vocabulary_for_every_source(metadata: dict[str, object], cause: C | None, q850: int | None) -> None:
    assert cause_of(metadata) == (cause, q850)


def test_why_an_unanswered_call_was_missed() -> None:
    assert missed_reason(S.ENDED, C.NORMAL_CLEARING, B.CALLER) is None
    assert missed_reason(S.MISSED, C.ORIGINATOR_CANCEL, B.CALLER) is M.ABANDONED
    assert missed_reason(S.CANCELLED, None, None) is M.ABANDONED
    assert missed_reason(S.NO_ANSWER, C.NO_ANSWER, B.SWITCH) is M.NO_ANSWER
    assert missed_reason(S.BUSY, C.NORMAL_CLEARING, B.CALLEE) is M.BUSY
    assert missed_reason(S.MISSED, C.CALL_REJECTED, B.CALLEE) is M.REJECTED
    assert missed_reason(S.FAILED, C.CONGESTION, B.SWITCH) is M.UNREACHABLE
    assert missed_reason(S.MISSED, C.UNALLOCATED_NUMBER, None) is M.UNREACHABLE


def test_the_columns_an_end_sets() -> None:
    assert end_columns(EventType.HOLD, {"cause": "USER_BUSY"}, S.ON_HOLD) == {}
    abandoned = end_columns(EventType.ENDED, {"outcome": "missed"}, S.MISSED)
    assert abandoned == {
        "hangup_cause": None,
        "hangup_cause_q850": None,
        "sip_status": None,
        "hangup_by": "caller",  # a missed call nobody refused: the caller hung up while it rang
        "missed_reason": "abandoned",
    }
    failed = end_columns(EventType.FAILED, {"cause_code": 34, "hangup_by": "caller"}, S.FAILED)
    assert (failed["hangup_by"], failed["missed_reason"]) == ("switch", "unreachable")
    odd = end_columns(EventType.ENDED, {"hangup_by": "someone", "sip_status": 42}, S.ENDED)
    assert (odd["hangup_by"], odd["sip_status"]) == (None, None)

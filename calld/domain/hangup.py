"""Why a call ended, in one vocabulary for both switches and the webhooks (pure).

``hangup_cause`` names the reason (from a Q.850 cause code, a FreeSWITCH cause name, Asterisk's
DIALSTATUS or a SIP status), ``hangup_by`` the party that ended it (``caller``, ``callee``, ``switch``
or ``calld``), and ``missed_reason`` why an unanswered call was not answered: ``abandoned`` (the caller
hung up while it rang; ``ring_seconds`` says after how long), ``no_answer`` (nobody answered within
the timeout), ``busy``, ``rejected`` or ``unreachable``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from calld.domain.vocabulary import ENDING_EVENTS, CallStatus, EventType


class HangupCause(StrEnum):
    NORMAL_CLEARING = "normal_clearing"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    ORIGINATOR_CANCEL = "originator_cancel"
    CALL_REJECTED = "call_rejected"
    UNALLOCATED_NUMBER = "unallocated_number"
    NO_ROUTE = "no_route"
    UNREACHABLE = "unreachable"
    CONGESTION = "congestion"
    LOSE_RACE = "lose_race"
    PICKED_OFF = "picked_off"
    MEDIA_TIMEOUT = "media_timeout"
    TIMEOUT = "timeout"
    FAILURE = "failure"


class HangupBy(StrEnum):
    CALLER = "caller"
    CALLEE = "callee"
    SWITCH = "switch"
    CALLD = "calld"


class MissedReason(StrEnum):
    ABANDONED = "abandoned"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"


C = HangupCause
# ITU-T Q.850 cause values -> the vocabulary (what is not listed is a failure).
Q850: Mapping[int, HangupCause] = {
    1: C.UNALLOCATED_NUMBER,
    2: C.NO_ROUTE,
    3: C.NO_ROUTE,
    16: C.NORMAL_CLEARING,
    17: C.BUSY,
    18: C.NO_ANSWER,
    19: C.NO_ANSWER,
    20: C.UNREACHABLE,
    21: C.CALL_REJECTED,
    22: C.UNALLOCATED_NUMBER,  # number changed
    27: C.UNREACHABLE,  # destination out of order
    28: C.UNALLOCATED_NUMBER,  # invalid number format
    31: C.NORMAL_CLEARING,  # normal, unspecified
    34: C.CONGESTION,
    38: C.UNREACHABLE,  # network out of order
    41: C.FAILURE,  # temporary failure
    42: C.CONGESTION,
    102: C.TIMEOUT,  # recovery on timer expiry
}
# FreeSWITCH's cause names -> (the vocabulary, their Q.850 code; FreeSWITCH's own codes above 127).
FREESWITCH_CAUSES: Mapping[str, tuple[HangupCause, int]] = {
    "NORMAL_CLEARING": (C.NORMAL_CLEARING, 16),
    "USER_BUSY": (C.BUSY, 17),
    "NO_USER_RESPONSE": (C.NO_ANSWER, 18),
    "NO_ANSWER": (C.NO_ANSWER, 19),
    "SUBSCRIBER_ABSENT": (C.UNREACHABLE, 20),
    "CALL_REJECTED": (C.CALL_REJECTED, 21),
    "UNALLOCATED_NUMBER": (C.UNALLOCATED_NUMBER, 1),
    "NO_ROUTE_TRANSIT_NET": (C.NO_ROUTE, 2),
    "NO_ROUTE_DESTINATION": (C.NO_ROUTE, 3),
    "NUMBER_CHANGED": (C.UNALLOCATED_NUMBER, 22),
    "DESTINATION_OUT_OF_ORDER": (C.UNREACHABLE, 27),
    "INVALID_NUMBER_FORMAT": (C.UNALLOCATED_NUMBER, 28),
    "NORMAL_UNSPECIFIED": (C.NORMAL_CLEARING, 31),
    "NORMAL_CIRCUIT_CONGESTION": (C.CONGESTION, 34),
    "NETWORK_OUT_OF_ORDER": (C.UNREACHABLE, 38),
    "NORMAL_TEMPORARY_FAILURE": (C.FAILURE, 41),
    "SWITCH_CONGESTION": (C.CONGESTION, 42),
    "RECOVERY_ON_TIMER_EXPIRE": (C.TIMEOUT, 102),
    "ORIGINATOR_CANCEL": (C.ORIGINATOR_CANCEL, 487),
    "LOSE_RACE": (C.LOSE_RACE, 502),
    "PICKED_OFF": (C.PICKED_OFF, 604),
    "MEDIA_TIMEOUT": (C.MEDIA_TIMEOUT, 604),
    "ALLOTTED_TIMEOUT": (C.TIMEOUT, 602),
}
# Asterisk's DIALSTATUS (why Dial gave up) says more than the caller channel's cause.
DIAL_STATUS: Mapping[str, HangupCause] = {
    "BUSY": C.BUSY,
    "NOANSWER": C.NO_ANSWER,
    "CANCEL": C.ORIGINATOR_CANCEL,
    "CONGESTION": C.CONGESTION,
    "CHANUNAVAIL": C.UNREACHABLE,
    "INVALIDARGS": C.FAILURE,
}
# SIP final responses -> the vocabulary (for a provider's webhook that gives only a SIP status).
SIP_STATUS: Mapping[int, HangupCause] = {
    404: C.UNALLOCATED_NUMBER,
    480: C.UNREACHABLE,
    486: C.BUSY,
    600: C.BUSY,
    408: C.NO_ANSWER,
    487: C.ORIGINATOR_CANCEL,
    403: C.CALL_REJECTED,
    603: C.CALL_REJECTED,
    503: C.CONGESTION,
}
END_COLUMNS = ("hangup_cause", "hangup_cause_q850", "sip_status", "hangup_by", "missed_reason")
_UNANSWERED = frozenset(
    {CallStatus.MISSED, CallStatus.NO_ANSWER, CallStatus.BUSY, CallStatus.CANCELLED, CallStatus.FAILED}
)


def cause_of(metadata: Mapping[str, Any]) -> tuple[HangupCause | None, int | None]:
    """The cause an ``ended``/``failed`` event's metadata gives, and its raw Q.850 code.

    Read in this order: Asterisk's ``dial_status``; a cause name (FreeSWITCH's ``cause`` /
    ``hangup_cause``, or this vocabulary's own value, as a webhook may send); the Q.850 code
    (``hangup_cause_q850``, Asterisk's ``cause_code``); the SIP status.
    """
    q850 = _int(metadata.get("hangup_cause_q850"))
    if q850 is None:
        q850 = _int(metadata.get("cause_code"))
    cause: HangupCause | None = None
    dial_status = metadata.get("dial_status")
    if isinstance(dial_status, str) and dial_status in DIAL_STATUS:
        cause = DIAL_STATUS[dial_status]
    for name in (metadata.get("cause"), metadata.get("hangup_cause")):
        if cause is not None or not isinstance(name, str):
            continue
        if name in FREESWITCH_CAUSES:
            cause, code = FREESWITCH_CAUSES[name]
            q850 = q850 if q850 is not None else (code if code < 128 else None)
        elif name.lower() in HangupCause._value2member_map_:
            cause = HangupCause(name.lower())
    if cause is None and q850 is not None:
        cause = Q850.get(q850, C.FAILURE)
    sip = sip_status_of(metadata)
    if cause is None and sip is not None:
        cause = SIP_STATUS.get(sip, C.FAILURE if sip >= 400 else None)
    return cause, q850


def sip_status_of(metadata: Mapping[str, Any]) -> int | None:
    status = _int(metadata.get("sip_status"))
    return status if status is not None and 100 <= status <= 699 else None


def hangup_by_of(metadata: Mapping[str, Any]) -> HangupBy | None:
    value = metadata.get("hangup_by")
    if isinstance(value, str) and value in HangupBy._value2member_map_:
        return HangupBy(value)
    return None


def missed_reason(status: CallStatus, cause: HangupCause | None, hangup_by: HangupBy | None) -> MissedReason | None:
    """Why an unanswered call was not answered (None for a call that was answered)."""
    if status not in _UNANSWERED:
        return None
    if status is CallStatus.BUSY or cause is C.BUSY:
        return MissedReason.BUSY
    if cause is C.CALL_REJECTED:
        return MissedReason.REJECTED
    if status is CallStatus.FAILED or cause in (C.UNALLOCATED_NUMBER, C.NO_ROUTE, C.UNREACHABLE, C.CONGESTION):
        return MissedReason.UNREACHABLE
    if status is CallStatus.NO_ANSWER or cause in (C.NO_ANSWER, C.TIMEOUT):
        return MissedReason.NO_ANSWER
    if hangup_by in (HangupBy.CALLEE, HangupBy.SWITCH) and cause is not C.ORIGINATOR_CANCEL:
        return MissedReason.NO_ANSWER
    return MissedReason.ABANDONED


def end_columns(event_type: EventType, metadata: Mapping[str, Any], status: CallStatus) -> dict[str, Any]:
    """The ``call_logs`` columns an ``ended`` or ``failed`` event sets (nothing for other events)."""
    if event_type not in ENDING_EVENTS:
        return {}
    cause, q850 = cause_of(metadata)
    by = hangup_by_of(metadata)
    if event_type is EventType.FAILED and by is HangupBy.CALLER:
        by = HangupBy.SWITCH  # a call that failed to connect was not ended by its caller
    if by is None and status in (CallStatus.MISSED, CallStatus.CANCELLED) and cause in (None, C.ORIGINATOR_CANCEL):
        by = HangupBy.CALLER  # hung up while it rang
    reason = missed_reason(status, cause, by)
    return {
        "hangup_cause": cause.value if cause is not None else None,
        "hangup_cause_q850": q850,
        "sip_status": sip_status_of(metadata),
        "hangup_by": by.value if by is not None else None,
        "missed_reason": reason.value if reason is not None else None,
    }


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None

"""Providers' payloads into calld events, from plain data (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calld.domain.vocabulary import CallDirection, EventType, RecordingStatus
from calld.providers import plivo, telnyx, twilio, vonage
from calld.providers.model import PayloadProblem, SignatureRejected, hangup_cause, instant, party
from tests.providers import payloads

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)
T0 = NOW - timedelta(minutes=2)


def kinds(event: object) -> list[tuple[EventType, object]]:
    return [(a.event_type, a.metadata.get("outcome")) for a in event.attempts]  # type: ignore[attr-defined]


def test_twilio_completed_implies_the_answer_its_duration_tells() -> None:
    params = payloads.twilio_call("CA1", "completed", T0, 3, duration=45)
    implied, ended = twilio.parse(params, "US", NOW, WINDOW)
    assert implied.implied and kinds(implied) == [(EventType.ANSWERED, None)]
    assert implied.timestamp == T0 - timedelta(seconds=45)
    assert kinds(ended) == [(EventType.ENDED, None)]
    assert ended.metadata["hangup_cause"] == "normal_clearing" and ended.metadata["duration_seconds"] == 45
    assert (ended.sip_call_id, ended.direction, ended.caller) == ("twilio:CA1", CallDirection.OUTBOUND, "+14155550100")
    assert ended.dedup_key == "twilio:CA1:3:completed"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("busy", [(EventType.ENDED, "busy"), (EventType.ENDED, None)]),
        ("no-answer", [(EventType.ENDED, "no_answer"), (EventType.ENDED, None)]),
        ("canceled", [(EventType.ENDED, "cancelled"), (EventType.ENDED, None)]),
        ("failed", [(EventType.FAILED, None), (EventType.ENDED, None)]),
        ("queued", [(EventType.INITIATED, None)]),
        ("ringing", [(EventType.RINGING, None)]),
        ("in-progress", [(EventType.ANSWERED, None)]),
        ("something-new", []),
    ],
)
def test_twilio_statuses(status: str, expected: list[tuple[EventType, object]]) -> None:
    [event] = twilio.parse(payloads.twilio_call("CA1", status, T0, 1), None, NOW, WINDOW)
    assert kinds(event) == expected


def test_twilio_child_leg_names_its_parent_and_its_end_is_only_the_legs() -> None:
    leg = payloads.twilio_call("CA2", "completed", T0, 3, direction="outbound-dial", parent="CA1", duration=30)
    [event] = twilio.parse(leg, None, NOW, WINDOW)
    assert event.call_ref == "CA1" and event.metadata["leg"] == "CA2" and event.attempts == ()
    answered = payloads.twilio_call("CA2", "in-progress", T0, 2, direction="outbound-dial", parent="CA1")
    assert kinds(twilio.parse(answered, None, NOW, WINDOW)[0]) == [(EventType.ANSWERED, None)]


def test_twilio_recording_and_the_timestamp_bound() -> None:
    params = payloads.twilio_recording("CA1", "RE1", "completed", T0, 29)
    [event] = twilio.parse(params, None, NOW, WINDOW)
    assert event.recording is not None and event.recording.status is RecordingStatus.COMPLETED
    assert event.recording.duration_seconds == 29 and event.attempts == ()
    with pytest.raises(SignatureRejected, match="replay window"):
        twilio.parse(payloads.twilio_call("CA1", "ringing", NOW - timedelta(minutes=6), 1), None, NOW, WINDOW)
    with pytest.raises(PayloadProblem) as problem:
        twilio.parse({"CallStatus": "ringing"}, None, NOW, WINDOW)
    assert problem.value.field == "CallSid"


def test_telnyx_hangup_cause_who_hung_up_sip_status_and_mos() -> None:
    stats = {"inbound": {"mos": "3.9"}, "outbound": {}}
    body = payloads.telnyx(
        "call.hangup",
        "e1",
        T0,
        "s1",
        hangup_cause="user_busy",
        hangup_source="callee",
        sip_hangup_cause="486",
        call_quality_stats=stats,
    )
    ended, quality = telnyx.parse(body, None, NOW)
    assert kinds(ended) == [(EventType.ENDED, "busy"), (EventType.ENDED, None)]
    meta = ended.metadata
    assert (meta["hangup_cause"], meta["hangup_by"], meta["sip_status"], meta["mos"]) == (
        "user_busy",
        "callee",
        486,
        3.9,
    )
    assert kinds(quality) == [(EventType.QUALITY_CHANGE, None)] and quality.attempts[0].metadata["score"] == 3.9
    garbled = payloads.telnyx("call.hangup", "e2", T0, "s1", call_quality_stats={"inbound": {"mos": "n/a"}})
    assert len(telnyx.parse(garbled, None, NOW)) == 1  # no MOS, still the hangup


def test_telnyx_unknown_event_and_missing_fields() -> None:
    [event] = telnyx.parse(payloads.telnyx("call.bridged", "e3", T0, "s1"), None, NOW)
    assert event.attempts == () and event.metadata["provider_event"] == "call.bridged"
    with pytest.raises(PayloadProblem) as problem:
        telnyx.parse({"data": {"id": "e4", "event_type": "call.answered"}}, None, NOW)
    assert problem.value.field == "data.payload"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("started", [(EventType.INITIATED, None)]),
        ("ringing", [(EventType.RINGING, None)]),
        ("answered", [(EventType.ANSWERED, None)]),
        ("completed", [(EventType.ENDED, None)]),
        ("timeout", [(EventType.ENDED, "no_answer"), (EventType.ENDED, None)]),
        ("rejected", [(EventType.ENDED, "busy"), (EventType.ENDED, None)]),
        ("human", []),
    ],
)
def test_vonage_statuses(status: str, expected: list[tuple[EventType, object]]) -> None:
    [event] = vonage.parse(payloads.vonage(status, T0, "leg-1", "CON-1"), None, NOW)
    assert kinds(event) == expected
    assert event.call_ref == "CON-1" and event.caller == "+447911123456"


def test_plivo_hangup_tells_the_answer_and_a_b_leg_folds_into_the_a_leg() -> None:
    hangup = payloads.plivo(
        "Hangup",
        "completed",
        "u1",
        HangupCause="NORMAL_CLEARING",
        HangupSource="Callee",
        AnswerTime=payloads.plivo_time(T0),
        EndTime=payloads.plivo_time(T0 + timedelta(seconds=30)),
    )
    implied, ended = plivo.parse(hangup, None, NOW, WINDOW)
    assert implied.implied and implied.timestamp == T0
    assert ended.metadata["hangup_by"] == "callee" and ended.timestamp == T0 + timedelta(seconds=30)
    b_leg = {**payloads.plivo("Hangup", "completed", "u2"), "ALegUUID": "u1"}
    [event] = plivo.parse(b_leg, None, NOW, WINDOW)
    assert event.call_ref == "u1" and event.attempts == ()


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("+1 (415) 555-0100", "+14155550100"),
        ("14155550100", "+14155550100"),
        ("1001", "1001"),
        ("anonymous", "anonymous"),
        ("client:alice", "client:alice"),
        ("sip:a-very-long-user-name@pbx.example.com", "sip:a-very-long-user-name@pbx.ex"),
        ("", None),
    ],
)
def test_parties_are_kept_whatever_the_caller_id(raw: str, stored: str | None) -> None:
    assert party(raw, None) == stored


def test_times_and_causes() -> None:
    assert instant("Tue, 24 Nov 2026 12:00:00 +0000", "t") == NOW
    assert instant("2026-11-24 12:00:00", "t") == NOW
    assert instant("2026-11-24T13:00:00+01:00", "t") == NOW
    with pytest.raises(PayloadProblem):
        instant("yesterday", "t")
    assert [hangup_cause(c) for c in ("NORMAL_CLEARING", "Busy Line", "mystery", None)] == [
        "normal_clearing",
        "user_busy",
        "unspecified",
        None,
    ]


def test_garbage_is_a_payload_problem_not_a_crash() -> None:
    with pytest.raises(PayloadProblem):
        instant("9999-12-31T23:59:59-01:00", "t")
    with pytest.raises(PayloadProblem) as problem:
        twilio.parse(payloads.twilio_call("CA1", "completed", T0, 3, duration=10**12), None, NOW, WINDOW)
    assert problem.value.field == "CallDuration"
    with pytest.raises(SignatureRejected, match="nan s ago"):
        from calld.providers.model import check_age

        check_age(float("nan"), NOW, WINDOW, "iat")

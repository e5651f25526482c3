"""SIP providers' own webhooks over real HTTP on both databases: each provider's realistic sequences
(answered, busy, no answer, a <Dial> child leg, a recording), signed with the provider's own SDK;
refused signatures store nothing; redeliveries and out-of-order deliveries fold."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from calld.config import Config
from calld.http.app import create_app
from calld.http.context import Services
from calld.providers.settings import ProvidersConfig, TwilioSettings
from tests.providers import payloads, signing
from tests.support import TWILIO_AUTH_TOKEN, SettableClock

AppClient = TestClient[web.Request, web.Application]
PATH = "/api/webhooks/providers/{}/"


async def deliver(api: AppClient, provider: str, raw: bytes, headers: dict[str, str], status: int = 200) -> Any:
    resp = await api.post(PATH.format(provider), data=raw, headers=headers)
    body = await resp.json()
    assert resp.status == status, body
    return body


async def calls(api: AppClient) -> list[dict[str, Any]]:
    resp = await api.get("/api/call-logs/")
    assert resp.status == 200
    return list((await resp.json())["results"])


async def call_detail(api: AppClient, call_id: str) -> dict[str, Any]:
    resp = await api.get(f"/api/call-logs/{call_id}/")
    assert resp.status == 200
    return dict(await resp.json())


async def only_call(api: AppClient) -> dict[str, Any]:
    [call] = await calls(api)
    return await call_detail(api, call["id"])


def seconds(iso: str, since: datetime) -> float:
    return (datetime.fromisoformat(iso.replace("Z", "+00:00")) - since).total_seconds()


def start(clock: SettableClock) -> datetime:
    """An instant two minutes before calld's clock, so a whole sequence lies in its past."""
    begin = clock.now
    clock.advance(120)
    return begin


# --- Twilio ---------------------------------------------------------------------------------------


async def twilio(api: AppClient, params: dict[str, str], status: int = 200) -> Any:
    raw, headers = signing.twilio(params)
    return await deliver(api, "twilio", raw, headers, status)


async def test_twilio_answered_outbound_call(api: AppClient, clock: SettableClock) -> None:
    t0 = start(clock)
    sid = "CAa1b2c3d4e5f60718293a4b5c6d7e8f90"
    for params in (
        payloads.twilio_call(sid, "initiated", t0, 0),
        payloads.twilio_call(sid, "ringing", t0 + timedelta(seconds=2), 1),
        payloads.twilio_call(sid, "in-progress", t0 + timedelta(seconds=8), 2),
        payloads.twilio_call(sid, "completed", t0 + timedelta(seconds=53), 3, duration=45),
    ):
        await twilio(api, params)
    call = await only_call(api)
    assert (call["status"], call["direction"]) == ("ended", "outbound")
    assert (call["caller_number"], call["recipient_number"]) == ("+14155550100", "+14155550199")
    assert call["sip_call_id"] == f"twilio:{sid}"
    assert seconds(call["answered_at"], t0) == pytest.approx(8)
    assert call["ring_seconds"] == pytest.approx(6) and call["duration_seconds"] == pytest.approx(45)
    assert [e["event_type"] for e in call["events"]] == ["initiated", "ringing", "answered", "ended"]
    ended = call["events"][-1]["metadata"]
    assert ended["provider"] == "twilio" and ended["hangup_cause"] == "normal_clearing"
    assert ended["duration_seconds"] == 45 and ended["sequence_number"] == "3"


@pytest.mark.parametrize(("final", "status"), [("busy", "busy"), ("no-answer", "no_answer"), ("canceled", "cancelled")])
async def test_twilio_unanswered_outcomes(api: AppClient, clock: SettableClock, final: str, status: str) -> None:
    t0 = start(clock)
    sid = "CA00000000000000000000000000000b01"
    await twilio(api, payloads.twilio_call(sid, "initiated", t0, 0))
    await twilio(api, payloads.twilio_call(sid, "ringing", t0 + timedelta(seconds=1), 1))
    await twilio(api, payloads.twilio_call(sid, final, t0 + timedelta(seconds=21), 2, duration=0))
    call = await only_call(api)
    assert call["status"] == status
    assert call["answered_at"] is None and call["ring_seconds"] == pytest.approx(20)
    assert call["events"][-1]["metadata"]["hangup_cause"] in ("user_busy", "no_answer", "originator_cancel")


async def test_twilio_dial_child_leg_folds_into_the_parent_call(api: AppClient, clock: SettableClock) -> None:
    t0 = start(clock)
    parent, child = "CA1111111111111111111111111111pare", "CA2222222222222222222222222222chil"
    leg = {"direction": "outbound-dial", "parent": parent, "caller": "+14155550100", "callee": "+14155550123"}
    await twilio(api, payloads.twilio_call(child, "initiated", t0 + timedelta(seconds=1), 0, **leg))
    await twilio(api, payloads.twilio_call(child, "ringing", t0 + timedelta(seconds=2), 1, **leg))
    await twilio(api, payloads.twilio_call(child, "in-progress", t0 + timedelta(seconds=9), 2, **leg))
    await twilio(api, payloads.twilio_call(child, "completed", t0 + timedelta(seconds=69), 3, duration=60, **leg))
    # The number's own status callback: the parent (inbound) leg completed, 70 s after Twilio took it.
    inbound = {"direction": "inbound", "callee": "+14155550199"}
    answer = await twilio(
        api, payloads.twilio_call(parent, "completed", t0 + timedelta(seconds=70), 0, duration=70, **inbound)
    )
    assert [e["status"] for e in answer["events"]] == ["not needed", "stored"]
    listed = await calls(api)
    assert len(listed) == 1
    call = await call_detail(api, listed[0]["id"])
    assert call["sip_call_id"] == f"twilio:{parent}" and call["direction"] == "inbound"
    assert call["status"] == "ended"
    assert seconds(call["answered_at"], t0) == pytest.approx(9)  # when the dialled phone answered
    assert seconds(call["ended_at"], t0) == pytest.approx(70)
    kinds = [(e["event_type"], e["metadata"].get("leg")) for e in call["events"]]
    assert kinds == [
        ("initiated", None),
        ("provider_event", child),
        ("ringing", child),
        ("answered", child),
        ("provider_event", child),
        ("ended", parent),
    ]
    assert call["events"][4]["metadata"]["provider_event"] == "completed"


async def test_twilio_recording_becomes_the_calls_recording(api: AppClient, clock: SettableClock) -> None:
    t0 = start(clock)
    sid = "CA3333333333333333333333333333reco"
    await twilio(api, payloads.twilio_call(sid, "in-progress", t0, 0, direction="inbound"))
    await twilio(
        api, payloads.twilio_call(sid, "completed", t0 + timedelta(seconds=30), 1, direction="inbound", duration=30)
    )
    recording = payloads.twilio_recording(
        sid, "RE4444444444444444444444444444rec1", "completed", t0 + timedelta(seconds=32), 29
    )
    answer = await twilio(api, recording)
    await twilio(api, recording)  # a redelivery changes nothing
    call = await only_call(api)
    [stored] = call["recordings"]
    assert stored["id"] == answer["events"][0]["recording"]
    assert stored["status"] == "completed" and stored["duration_seconds"] == 29
    assert stored["external_url"] == recording["RecordingUrl"] and stored["format"] == "wav"
    assert call["events"][-1]["event_type"] == "provider_event"
    assert call["events"][-1]["metadata"]["recording_id"] == recording["RecordingSid"]


async def test_twilio_redeliveries_and_out_of_order_fold(api: AppClient, clock: SettableClock) -> None:
    t0 = start(clock)
    sid = "CA5555555555555555555555555555oooo"
    sequence = [
        payloads.twilio_call(sid, "initiated", t0, 0),
        payloads.twilio_call(sid, "ringing", t0 + timedelta(seconds=2), 1),
        payloads.twilio_call(sid, "in-progress", t0 + timedelta(seconds=5), 2),
        payloads.twilio_call(sid, "completed", t0 + timedelta(seconds=35), 3, duration=30),
    ]
    for index in (3, 1, 2, 0, 3, 2):
        await twilio(api, sequence[index])
    call = await only_call(api)
    assert call["status"] == "ended"
    assert seconds(call["started_at"], t0) == pytest.approx(0)
    assert seconds(call["answered_at"], t0) == pytest.approx(5)
    assert call["duration_seconds"] == pytest.approx(30)
    # The answer implied by the completed callback's duration came first; the in-progress report that
    # followed says the same and is kept as the provider's event.
    kinds = sorted((e["event_type"], e["metadata"].get("not_applied")) for e in call["events"])
    assert kinds == [
        ("answered", None),
        ("ended", None),
        ("initiated", None),
        ("provider_event", "answered"),
        ("ringing", None),
    ]


async def test_twilio_refused_deliveries_store_nothing(api: AppClient, clock: SettableClock) -> None:
    t0 = start(clock)
    params = payloads.twilio_call("CA6666666666666666666666666666nope", "initiated", t0, 0)
    raw, headers = signing.twilio(params, token="not-the-auth-token")
    answer = await deliver(api, "twilio", raw, headers, 401)
    assert "signature" in answer["detail"]
    raw, headers = signing.twilio(params)
    tampered = raw.replace(b"%2B14155550199", b"%2B19005550199")
    await deliver(api, "twilio", tampered, headers, 401)
    # Signed for the URL calld sees, not the one Twilio was given (public_url): refused.
    raw, headers = signing.twilio(params, url=str(api.make_url(PATH.format("twilio"))))
    await deliver(api, "twilio", raw, headers, 401)
    stale = payloads.twilio_call("CA6666666666666666666666666666nope", "initiated", t0 - timedelta(hours=1), 0)
    answer = await twilio(api, stale, 401)
    assert "replay window" in answer["detail"]["signature"]
    await deliver(api, "twilio", raw, {}, 401)  # no signature at all
    assert await calls(api) == []


async def test_twilio_without_public_url_checks_the_url_calld_sees(
    services: Services,
    config: Config,
    auth_headers: dict[str, str],
    clock: SettableClock,
    aiohttp_client: Callable[..., Awaitable[AppClient]],
) -> None:
    providers = ProvidersConfig(twilio=TwilioSettings(TWILIO_AUTH_TOKEN))
    services.config = replace(config, webhooks=replace(config.webhooks, providers=providers))
    api = await aiohttp_client(create_app(services), headers=auth_headers)
    t0 = start(clock)
    params = payloads.twilio_call("CA7777777777777777777777777777loop", "initiated", t0, 0)
    raw, headers = signing.twilio(params, url=str(api.make_url(PATH.format("twilio"))))
    assert (await deliver(api, "twilio", raw, headers))["events"][0]["status"] == "stored"
    # The other providers are not configured here: their endpoints say so.
    raw, headers = signing.vonage(payloads.vonage("started", t0, "leg", "CON-x"), clock.now)
    answer = await deliver(api, "vonage", raw, headers, 401)
    assert "[webhooks.providers.vonage]" in answer["detail"]["provider"]
    assert len(await calls(api)) == 1


# --- Telnyx ---------------------------------------------------------------------------------------


async def telnyx(api: AppClient, clock: SettableClock, body: dict[str, Any], status: int = 200) -> Any:
    raw, headers = signing.telnyx(body, clock.now)
    return await deliver(api, "telnyx", raw, headers, status)


async def test_telnyx_answered_call_with_cause_who_hung_up_and_mos(api: AppClient, clock: SettableClock) -> None:
    t0 = start(clock)
    session = "428c31b6-7af4-4bcb-b7f5-5013ef9657c1"
    await telnyx(
        api, clock, payloads.telnyx("call.initiated", "e-1", t0, session, direction="incoming", state="parked")
    )
    await telnyx(
        api, clock, payloads.telnyx("call.answered", "e-2", t0 + timedelta(seconds=3), session, state="answered")
    )
    stats = {
        "inbound": {
            "jitter_max_variance": "2.74",
            "jitter_packet_count": "0",
            "mos": "4.31",
            "packet_count": "591",
            "skip_packet_count": "9",
        },
        "outbound": {"packet_count": "0", "skip_packet_count": "0"},
    }
    hangup = payloads.telnyx(
        "call.hangup",
        "e-3",
        t0 + timedelta(seconds=63),
        session,
        state="hangup",
        hangup_cause="normal_clearing",
        hangup_source="callee",
        sip_hangup_cause="200",
        call_quality_stats=stats,
    )
    await telnyx(api, clock, hangup)
    await telnyx(api, clock, hangup)  # Telnyx redelivers: the same data.id
    call = await only_call(api)
    assert (call["status"], call["direction"]) == ("ended", "inbound")
    assert (call["caller_number"], call["recipient_number"]) == ("+13129457420", "+35319605860")
    assert call["duration_seconds"] == pytest.approx(60) and call["call_quality_score"] == pytest.approx(4.31)
    assert [e["event_type"] for e in call["events"]] == ["initiated", "answered", "ended", "quality_change"]
    ended = call["events"][2]["metadata"]
    assert (ended["hangup_cause"], ended["hangup_by"], ended["sip_status"], ended["mos"]) == (
        "normal_clearing",
        "callee",
        200,
        4.31,
    )


@pytest.mark.parametrize(
    ("cause", "sip", "status"),
    [("user_busy", "486", "busy"), ("timeout", "487", "no_answer"), ("call_rejected", "603", "busy")],
)
async def test_telnyx_unanswered_outcomes(
    api: AppClient, clock: SettableClock, cause: str, sip: str, status: str
) -> None:
    t0 = start(clock)
    session = "7a1e0c8e-0000-4bcb-b7f5-5013ef965701"
    await telnyx(
        api, clock, payloads.telnyx("call.initiated", "b-1", t0, session, direction="outgoing", state="bridging")
    )
    hangup = payloads.telnyx(
        "call.hangup",
        "b-2",
        t0 + timedelta(seconds=25),
        session,
        hangup_cause=cause,
        hangup_source="callee",
        sip_hangup_cause=sip,
    )
    await telnyx(api, clock, hangup)
    call = await only_call(api)
    assert (call["status"], call["direction"]) == (status, "outbound")
    assert call["events"][-1]["metadata"]["sip_status"] == int(sip)


async def test_telnyx_out_of_order_unknown_events_and_recording(api: AppClient, clock: SettableClock) -> None:
    t0 = start(clock)
    session = "5a1e0c8e-1111-4bcb-b7f5-5013ef965702"
    hangup = payloads.telnyx(
        "call.hangup",
        "o-3",
        t0 + timedelta(seconds=40),
        session,
        hangup_cause="normal_clearing",
        hangup_source="caller",
        sip_hangup_cause="200",
    )
    await telnyx(api, clock, hangup)  # delivered first: the call looks missed ...
    await telnyx(api, clock, payloads.telnyx("call.answered", "o-2", t0 + timedelta(seconds=10), session))
    await telnyx(api, clock, payloads.telnyx("call.initiated", "o-1", t0, session, direction="incoming"))
    call = await only_call(api)
    assert call["status"] == "ended" and call["duration_seconds"] == pytest.approx(30)  # ... until the answer came
    assert seconds(call["started_at"], t0) == pytest.approx(0)
    unknown = payloads.telnyx("call.speak.started", "o-4", t0 + timedelta(seconds=12), session)
    answer = await telnyx(api, clock, unknown)
    assert answer["events"][0]["status"] == "stored"
    saved = payloads.telnyx(
        "call.recording.saved",
        "o-5",
        t0 + timedelta(seconds=41),
        session,
        channels="single",
        recording_started_at=(t0 + timedelta(seconds=10)).isoformat(),
        recording_ended_at=(t0 + timedelta(seconds=40)).isoformat(),
        recording_urls={"mp3": "https://s3.amazonaws.com/telephony-recorder-prod/recording.mp3"},
    )
    await telnyx(api, clock, saved)
    call = await only_call(api)
    kinds = {e["metadata"].get("provider_event"): e["event_type"] for e in call["events"]}
    assert kinds["call.speak.started"] == "provider_event" and kinds["call.recording.saved"] == "provider_event"
    [recording] = call["recordings"]
    assert (recording["status"], recording["format"], recording["duration_seconds"]) == ("completed", "mp3", 30)


async def test_telnyx_refused_deliveries_store_nothing(api: AppClient, clock: SettableClock) -> None:
    t0 = start(clock)
    body = payloads.telnyx("call.initiated", "r-1", t0, "9a1e0c8e-2222-4bcb-b7f5-5013ef965703", direction="incoming")
    raw, headers = signing.telnyx(body, clock.now, seed=bytes(32))  # another key
    await deliver(api, "telnyx", raw, headers, 401)
    raw, headers = signing.telnyx(body, clock.now)
    await deliver(api, "telnyx", raw.replace(b"+13129457420", b"+13129457421"), headers, 401)
    raw, headers = signing.telnyx(body, clock.now - timedelta(minutes=10))  # stale telnyx-timestamp
    answer = await deliver(api, "telnyx", raw, headers, 401)
    assert "replay window" in answer["detail"]["signature"]
    assert await calls(api) == []


# --- Vonage ---------------------------------------------------------------------------------------


async def vonage(api: AppClient, clock: SettableClock, body: dict[str, Any], status: int = 200) -> Any:
    raw, headers = signing.vonage(body, clock.now)
    return await deliver(api, "vonage", raw, headers, status)


async def test_vonage_answered_call_and_recording(api: AppClient, clock: SettableClock) -> None:
    t0 = start(clock)
    leg, conversation = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab", "CON-aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
    for status, at, extra in (
        ("started", 0, {}),
        ("ringing", 1, {}),
        ("answered", 6, {"start_time": None, "rate": None}),
        (
            "completed",
            36,
            {
                "duration": "30",
                "rate": "0.01",
                "price": "0.005",
                "network": "23410",
                "start_time": (t0 + timedelta(seconds=6)).isoformat(),
                "end_time": (t0 + timedelta(seconds=36)).isoformat(),
            },
        ),
    ):
        await vonage(api, clock, payloads.vonage(status, t0 + timedelta(seconds=at), leg, conversation, **extra))
    recording = {
        "start_time": (t0 + timedelta(seconds=6)).isoformat(),
        "end_time": (t0 + timedelta(seconds=36)).isoformat(),
        "recording_url": "https://api.nexmo.com/v1/files/bbbbbbbb-aaaa-cccc-dddd-0123456789ab",
        "size": 12222,
        "recording_uuid": "cccccccc-aaaa-bbbb-dddd-0123456789ab",
        "conversation_uuid": conversation,
        "timestamp": (t0 + timedelta(seconds=37)).isoformat(),
    }
    await vonage(api, clock, recording)
    call = await only_call(api)
    assert (call["status"], call["direction"]) == ("ended", "outbound")
    assert (call["caller_number"], call["recipient_number"]) == ("+447911123456", "+14155550199")
    assert call["ring_seconds"] == pytest.approx(5) and call["duration_seconds"] == pytest.approx(30)
    [stored] = call["recordings"]
    assert (stored["status"], stored["duration_seconds"], stored["external_url"]) == (
        "completed",
        30,
        recording["recording_url"],
    )


@pytest.mark.parametrize(("final", "status"), [("busy", "busy"), ("timeout", "no_answer"), ("rejected", "busy")])
async def test_vonage_unanswered_outcomes(api: AppClient, clock: SettableClock, final: str, status: str) -> None:
    t0 = start(clock)
    leg, conversation = "dddddddd-bbbb-cccc-dddd-0123456789ab", "CON-dddddddd-bbbb-cccc-dddd-0123456789ab"
    await vonage(api, clock, payloads.vonage("started", t0, leg, conversation))
    await vonage(api, clock, payloads.vonage("ringing", t0 + timedelta(seconds=1), leg, conversation))
    await vonage(api, clock, payloads.vonage(final, t0 + timedelta(seconds=20), leg, conversation))
    assert (await only_call(api))["status"] == status


async def test_vonage_refused_deliveries_store_nothing(api: AppClient, clock: SettableClock) -> None:
    t0 = start(clock)
    body = payloads.vonage("started", t0, "eeeeeeee-bbbb-cccc-dddd-0123456789ab", "CON-eeeeeeee")
    raw, headers = signing.vonage(body, clock.now, secret="another-signature-secret-of-32-bytes")
    await deliver(api, "vonage", raw, headers, 401)
    raw, headers = signing.vonage(body, clock.now)
    answer = await deliver(api, "vonage", raw.replace(b"started", b"ringing"), headers, 401)  # payload_hash
    assert "payload_hash" in answer["detail"]["signature"]
    raw, headers = signing.vonage(body, clock.now - timedelta(minutes=10))  # stale iat
    await deliver(api, "vonage", raw, headers, 401)
    await deliver(api, "vonage", raw, {"Authorization": "Bearer not.a.jwt"}, 401)
    assert await calls(api) == []


# --- Plivo ----------------------------------------------------------------------------------------


async def plivo(api: AppClient, params: dict[str, str], status: int = 200) -> Any:
    raw, headers = signing.plivo(params)
    return await deliver(api, "plivo", raw, headers, status)


async def test_plivo_answered_call(api: AppClient, clock: SettableClock) -> None:
    t0 = clock.now
    uuid = "2e2b5b8a-1b1e-11ee-9a3c-0242ac120002"
    await plivo(api, payloads.plivo("Ring", "ringing", uuid))
    clock.advance(5)
    await plivo(api, payloads.plivo("StartApp", "in-progress", uuid))
    clock.advance(40)
    hangup = payloads.plivo(
        "Hangup",
        "completed",
        uuid,
        Duration="40",
        BillDuration="60",
        HangupCause="NORMAL_CLEARING",
        HangupCauseCode="4000",
        HangupCauseName="Normal Hangup",
        HangupSource="Caller",
        StartTime=payloads.plivo_time(t0),
        AnswerTime=payloads.plivo_time(t0 + timedelta(seconds=5)),
        EndTime=payloads.plivo_time(t0 + timedelta(seconds=45)),
    )
    await plivo(api, hangup)
    await plivo(api, hangup)  # a redelivery
    call = await only_call(api)
    assert call["status"] == "ended" and call["duration_seconds"] == pytest.approx(40)
    assert call["caller_number"] == "+14155550100"
    assert [e["event_type"] for e in call["events"]] == ["initiated", "ringing", "answered", "ended"]
    ended = call["events"][-1]["metadata"]
    assert (ended["hangup_cause"], ended["hangup_by"], ended["provider_hangup_cause"]) == (
        "normal_clearing",
        "caller",
        "NORMAL_CLEARING",
    )


@pytest.mark.parametrize(
    ("final", "cause", "status"), [("busy", "USER_BUSY", "busy"), ("no-answer", "NO_ANSWER", "no_answer")]
)
async def test_plivo_unanswered_outcomes(
    api: AppClient, clock: SettableClock, final: str, cause: str, status: str
) -> None:
    uuid = "3e2b5b8a-1b1e-11ee-9a3c-0242ac120003"
    await plivo(api, payloads.plivo("Ring", "ringing", uuid))
    clock.advance(20)
    hangup = payloads.plivo(
        "Hangup",
        final,
        uuid,
        Duration="0",
        HangupCause=cause,
        HangupSource="Callee",
        EndTime=payloads.plivo_time(clock.now),
    )
    await plivo(api, hangup)
    call = await only_call(api)
    assert call["status"] == status and call["events"][-1]["metadata"]["hangup_by"] == "callee"


async def test_plivo_refused_deliveries_store_nothing(api: AppClient, clock: SettableClock) -> None:
    params = payloads.plivo("Ring", "ringing", "4e2b5b8a-1b1e-11ee-9a3c-0242ac120004")
    raw, headers = signing.plivo(params, token="not-the-auth-token")
    await deliver(api, "plivo", raw, headers, 401)
    raw, headers = signing.plivo(params)
    await deliver(api, "plivo", raw.replace(b"ringing", b"in-progress"), headers, 401)
    stale = payloads.plivo(
        "Hangup",
        "completed",
        "4e2b5b8a-1b1e-11ee-9a3c-0242ac120004",
        EndTime=payloads.plivo_time(clock.now - timedelta(hours=2)),
    )
    await plivo(api, stale, 401)
    assert await calls(api) == []


async def test_provider_events_are_not_added_by_hand(api: AppClient, clock: SettableClock) -> None:
    t0 = start(clock)
    answer = await twilio(api, payloads.twilio_call("CA8888888888888888888888888888hand", "ringing", t0, 1))
    resp = await api.post(f"/api/call-logs/{answer['call']}/add_event/", json={"event_type": "provider_event"})
    assert resp.status == 422
    assert "event_type" in (await resp.json())["detail"]


async def test_a_recording_of_a_call_never_heard_of_is_refused_naming_what_is_missing(
    api: AppClient, clock: SettableClock
) -> None:
    t0 = start(clock)
    recording = payloads.twilio_recording("CA9999999999999999999999999999none", "RE9", "completed", t0, 10)
    answer = await twilio(api, recording, 422)
    assert set(answer["detail"]) == {"caller", "recipient"}
    assert await calls(api) == []


async def test_a_provider_allowlist_refuses_other_addresses(
    services: Services,
    config: Config,
    auth_headers: dict[str, str],
    clock: SettableClock,
    aiohttp_client: Callable[..., Awaitable[AppClient]],
) -> None:
    telnyx_only = replace(config.webhooks.providers.telnyx, allow_ips=("192.76.120.0/24", "2001:db8::/32"))
    providers = replace(config.webhooks.providers, telnyx=telnyx_only)
    services.config = replace(config, webhooks=replace(config.webhooks, providers=providers))
    api = await aiohttp_client(create_app(services), headers=auth_headers)
    t0 = start(clock)
    body = payloads.telnyx("call.initiated", "a-1", t0, "6a1e0c8e-3333-4bcb-b7f5-5013ef965704", direction="incoming")
    raw, headers = signing.telnyx(body, clock.now)
    answer = await deliver(api, "telnyx", raw, headers, 403)  # loopback is not Telnyx
    assert "source" in answer["detail"]
    assert await calls(api) == []


async def test_concurrent_redeliveries_store_one_event(api: AppClient, clock: SettableClock) -> None:
    t0 = start(clock)
    body = payloads.telnyx("call.initiated", "c-1", t0, "8a1e0c8e-4444-4bcb-b7f5-5013ef965705", direction="incoming")
    raw, headers = signing.telnyx(body, clock.now)
    answers = await asyncio.gather(*(deliver(api, "telnyx", raw, headers) for _ in range(4)))
    statuses = sorted(answer["events"][0]["status"] for answer in answers)
    assert statuses == ["duplicate", "duplicate", "duplicate", "stored"]
    call = await only_call(api)
    assert [e["event_type"] for e in call["events"]] == ["initiated"]


async def test_plivo_dial_b_leg_folds_into_the_a_leg(api: AppClient, clock: SettableClock) -> None:
    a_leg, b_leg = "5e2b5b8a-1b1e-11ee-9a3c-0242ac12000a", "6e2b5b8a-1b1e-11ee-9a3c-0242ac12000b"
    t0 = clock.now
    await plivo(api, payloads.plivo("StartApp", "in-progress", a_leg))
    clock.advance(2)
    b = {"ALegUUID": a_leg, "Direction": "outbound", "To": "14155550123"}
    await plivo(api, {**payloads.plivo("Ring", "ringing", b_leg), **b})
    clock.advance(30)
    hangup_b = payloads.plivo(
        "Hangup",
        "completed",
        b_leg,
        Duration="25",
        HangupCause="NORMAL_CLEARING",
        HangupSource="Callee",
        AnswerTime=payloads.plivo_time(t0 + timedelta(seconds=7)),
        EndTime=payloads.plivo_time(clock.now),
    )
    await plivo(api, {**hangup_b, **b})
    hangup_a = payloads.plivo(
        "Hangup",
        "completed",
        a_leg,
        Duration="32",
        HangupCause="NORMAL_CLEARING",
        HangupSource="Callee",
        AnswerTime=payloads.plivo_time(t0),
        EndTime=payloads.plivo_time(clock.now),
    )
    await plivo(api, hangup_a)
    listed = await calls(api)
    assert len(listed) == 1
    call = await call_detail(api, listed[0]["id"])
    assert call["sip_call_id"] == f"plivo:{a_leg}" and call["status"] == "ended"
    assert call["duration_seconds"] == pytest.approx(32)
    b_events = [e["event_type"] for e in call["events"] if e["metadata"].get("leg") == b_leg]
    assert b_events == ["provider_event", "provider_event"]  # its ringing came after the answer; its own end

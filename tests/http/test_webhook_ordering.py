"""SIP provider webhooks arriving out of order, over real HTTP on both databases: events are facts
with their own timestamps, folded in time order whatever the arrival order; the status table still
refuses what is impossible in time order; de-duplication tells distinct events of one second apart."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import pytest

from tests.support import AppClient, SettableClock

SIP = "/api/webhooks/sip/"


@pytest.fixture
def api(signed_webhook_api: AppClient) -> AppClient:
    return signed_webhook_api


def at(clock: SettableClock, seconds: float) -> str:
    return (clock.now.replace(microsecond=0).timestamp() + seconds).__format__(".3f")


def event(
    clock: SettableClock, event_type: str, seconds: float, sip_call_id: str = "ooo@provider", **extra: Any
) -> Any:
    return {
        "event_type": event_type,
        "sip_call_id": sip_call_id,
        "caller_number": "+14155550100",
        "recipient_number": "1001",
        "timestamp": float(at(clock, seconds)),
        **extra,
    }


async def deliver(api: AppClient, body: Any) -> tuple[int, Any]:
    resp = await api.post(SIP, json=body)
    return resp.status, await resp.json()


async def call_of(api: AppClient, call_id: str) -> Any:
    resp = await api.get(f"/api/call-logs/{call_id}/")
    assert resp.status == 200
    return await resp.json()


def seconds_after(clock: SettableClock, iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() - float(at(clock, 0))


async def test_a_late_answer_turns_a_missed_call_into_an_answered_ended_one(
    api: AppClient, clock: SettableClock
) -> None:
    clock.advance(60)  # every event below lies in calld's past
    status, first = await deliver(api, event(clock, "call_initiated", -60))
    assert status == 200
    assert (await deliver(api, event(clock, "call_ended", -50)))[0] == 200
    assert (await call_of(api, first["call"]))["status"] == "missed"
    status, late = await deliver(api, event(clock, "call_answered", -55))
    assert (status, late["status"]) == (200, "stored")
    call = await call_of(api, first["call"])
    assert call["status"] == "ended"
    assert seconds_after(clock, call["answered_at"]) == pytest.approx(-55)
    assert call["duration_seconds"] == pytest.approx(5)
    assert call["ring_seconds"] == pytest.approx(5)
    kinds = [(e["event_type"], round(seconds_after(clock, e["timestamp"]))) for e in call["events"]]
    assert sorted(kinds, key=lambda k: k[1]) == [("initiated", -60), ("answered", -55), ("ended", -50)]


async def test_a_real_initiated_arriving_late_is_stored_and_sets_the_start(
    api: AppClient, clock: SettableClock
) -> None:
    clock.advance(60)
    status, first = await deliver(api, event(clock, "call_ringing", -58))
    assert status == 200
    status, initiated = await deliver(api, event(clock, "call_initiated", -60))
    assert (status, initiated["status"], initiated["call"]) == (200, "stored", first["call"])
    call = await call_of(api, first["call"])
    assert seconds_after(clock, call["started_at"]) == pytest.approx(-60)
    assert call["status"] == "ringing" and call["ring_seconds"] is None
    assert [e["event_type"] for e in call["events"]].count("initiated") == 1
    # A second report of the start is what it always was: refused.
    status, again = await deliver(api, event(clock, "call_initiated", -61, delivery_id="another"))
    assert status == 409, again


async def test_an_event_before_an_implied_start_moves_the_start_back(api: AppClient, clock: SettableClock) -> None:
    clock.advance(60)
    _, first = await deliver(api, event(clock, "call_ended", -40))
    assert (await deliver(api, event(clock, "call_answered", -50)))[0] == 200
    assert (await deliver(api, event(clock, "call_ringing", -55)))[0] == 200
    call = await call_of(api, first["call"])
    assert call["status"] == "ended"
    assert seconds_after(clock, call["started_at"]) == pytest.approx(-55)
    assert call["duration_seconds"] == pytest.approx(10)


async def test_what_is_impossible_in_time_order_is_still_refused(api: AppClient, clock: SettableClock) -> None:
    clock.advance(60)
    _, first = await deliver(api, event(clock, "call_initiated", -60))
    assert (await deliver(api, event(clock, "call_missed", -50)))[0] == 200
    # Answered, then "missed": no call can be answered and then missed.
    status, refused = await deliver(api, event(clock, "call_answered", -55))
    assert status == 409, refused
    assert refused["current_status"] == "missed"
    call = await call_of(api, first["call"])
    assert call["status"] == "missed" and call["answered_at"] is None
    assert [e["event_type"] for e in call["events"]] == ["initiated", "ended"]


ORDER = [("call_initiated", -60), ("call_ringing", -59), ("call_answered", -57), ("call_ended", -47)]


@pytest.mark.parametrize("arrival", list(itertools.permutations(range(4))))
async def test_any_arrival_order_gives_the_same_call(
    api: AppClient, clock: SettableClock, arrival: tuple[int, ...]
) -> None:
    clock.advance(60)
    ids = set()
    for index in arrival:
        kind, when = ORDER[index]
        status, answer = await deliver(api, event(clock, kind, when))
        assert (status, answer["status"]) == (200, "stored"), (kind, answer)
        ids.add(answer["call"])
    [call_id] = ids
    call = await call_of(api, call_id)
    assert call["status"] == "ended"
    assert seconds_after(clock, call["started_at"]) == pytest.approx(-60)
    assert seconds_after(clock, call["answered_at"]) == pytest.approx(-57)
    assert call["ring_seconds"] == pytest.approx(2)
    assert call["duration_seconds"] == pytest.approx(10)
    assert sorted(e["event_type"] for e in call["events"]) == ["answered", "ended", "initiated", "ringing"]


async def test_distinct_dtmf_digits_in_one_second_are_each_stored(api: AppClient, clock: SettableClock) -> None:
    clock.advance(60)
    _, first = await deliver(api, event(clock, "call_initiated", -60))
    assert (await deliver(api, event(clock, "call_answered", -59)))[0] == 200
    for digit in "1234":
        status, answer = await deliver(api, event(clock, "call_dtmf", -58, metadata={"digit": digit}))
        assert (status, answer["status"]) == (200, "stored"), answer
    # A redelivery of one of them is still a duplicate ...
    status, answer = await deliver(api, event(clock, "call_dtmf", -58, metadata={"digit": "3"}))
    assert (status, answer["status"]) == (200, "duplicate")
    # ... and the same digit pressed again a few milliseconds later is another press.
    status, answer = await deliver(api, event(clock, "call_dtmf", -57.995, metadata={"digit": "3"}))
    assert (status, answer["status"]) == (200, "stored")
    call = await call_of(api, first["call"])
    assert [e["metadata"].get("digit") for e in call["events"] if e["event_type"] == "dtmf"] == list("12343")

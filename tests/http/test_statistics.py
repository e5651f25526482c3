"""GET /api/call-logs/statistics/ on known data, across day/week/month boundaries and DST."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from calld.config import CallsConfig, Config
from calld.domain.call_filter import Period, period_start
from tests.support import AppClient, SettableClock

BASE = "/api/call-logs/"
STATS = f"{BASE}statistics/"


@pytest.fixture
def config(request: pytest.FixtureRequest) -> Config:
    """The configured zone, UTC unless a test parametrises ``config`` indirectly with a zone name."""
    return Config(calls=CallsConfig(timezone=getattr(request, "param", "UTC"), default_region="US"))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def call_at(
    api: AppClient,
    clock: SettableClock,
    started: str,
    direction: str = "inbound",
    steps: tuple[tuple[float, str], ...] = (),
) -> str:
    """A call started at ``started`` (UTC), then moved through ``steps`` of (seconds later, status)."""
    clock.now = utc(started)
    resp = await api.post(
        BASE, json={"direction": direction, "caller_number": "+14155550100", "recipient_number": "1001"}
    )
    assert resp.status == 201
    call_id: str = (await resp.json())["id"]
    for seconds, status in steps:
        clock.advance(seconds)
        resp = await api.patch(f"{BASE}{call_id}/update_status/", json={"status": status})
        assert resp.status == 200, await resp.json()
    return call_id


async def stats(api: AppClient, clock: SettableClock, now: str, period: str | None) -> dict[str, Any]:
    clock.now = utc(now)
    resp = await api.get(STATS, params={"period": period} if period else None)
    body = await resp.json()
    assert resp.status == 200, body
    assert isinstance(body, dict)
    return body


ANSWERED_61 = ((2, "ringing"), (3, "answered"), (61, "ended"))


async def test_statistics_over_known_calls(api: AppClient, clock: SettableClock) -> None:
    # Now: Tuesday 2026-11-24 12:00 UTC (zone UTC).
    await call_at(api, clock, "2026-11-24T08:00:00Z", "inbound", ANSWERED_61)
    await call_at(api, clock, "2026-11-24T09:00:00Z", "outbound", ((1, "answered"), (90, "ended")))
    await call_at(api, clock, "2026-11-24T10:00:00Z", "inbound", ((4, "missed"),))
    await call_at(api, clock, "2026-11-24T11:00:00Z", "outbound", ((1, "ringing"), (30, "no_answer")))
    await call_at(api, clock, "2026-11-24T11:30:00Z", "outbound", ((1, "busy"),))
    await call_at(api, clock, "2026-11-24T11:50:00Z", "inbound", ((1, "answered"),))  # still talking
    await call_at(api, clock, "2026-11-23T23:59:59Z", "inbound", ((1, "answered"), (30, "ended")))  # Monday
    await call_at(api, clock, "2026-11-22T12:00:00Z", "inbound", ((1, "missed"),))  # Sunday: last week
    await call_at(api, clock, "2026-10-31T23:59:59Z", "outbound", ((1, "answered"), (120, "ended")))  # last month
    await call_at(api, clock, "2026-11-24T12:00:00Z", "inbound")  # starts at "now": outside [start, now)

    now = "2026-11-24T12:00:00Z"
    assert await stats(api, clock, now, None) == await stats(api, clock, now, "today")
    assert await stats(api, clock, now, "today") == {
        "period": "today",
        "total_calls": 6,
        "answered_calls": 3,
        "missed_calls": 2,
        "inbound_calls": 3,
        "outbound_calls": 3,
        "answer_rate": 50.0,
        "average_duration_seconds": 75.5,
    }
    assert await stats(api, clock, now, "week") == {
        "period": "week",
        "total_calls": 7,
        "answered_calls": 4,
        "missed_calls": 2,
        "inbound_calls": 4,
        "outbound_calls": 3,
        "answer_rate": 57.14,
        "average_duration_seconds": 60.33,
    }
    assert await stats(api, clock, now, "month") == {
        "period": "month",
        "total_calls": 8,
        "answered_calls": 4,
        "missed_calls": 3,
        "inbound_calls": 5,
        "outbound_calls": 3,
        "answer_rate": 50.0,
        "average_duration_seconds": 60.33,
    }
    # One second later the call started at 12:00:00 counts.
    assert (await stats(api, clock, "2026-11-24T12:00:01Z", "today"))["total_calls"] == 7


async def test_statistics_without_calls(api: AppClient, clock: SettableClock) -> None:
    await call_at(api, clock, "2026-10-01T10:00:00Z", "inbound", ((1, "answered"), (5, "ended")))
    assert await stats(api, clock, "2026-11-24T12:00:00Z", "month") == {
        "period": "month",
        "total_calls": 0,
        "answered_calls": 0,
        "missed_calls": 0,
        "inbound_calls": 0,
        "outbound_calls": 0,
        "answer_rate": 0,
        "average_duration_seconds": 0,
    }


async def test_statistics_rejects_bad_queries(api: AppClient) -> None:
    for query, name in (
        ("period=year", "period"),
        ("period=", "period"),
        ("period=week&period=month", "period"),
        ("from=x", "from"),
    ):
        resp = await api.get(f"{STATS}?{query}")
        body = await resp.json()
        assert resp.status == 422, body
        assert body["error"] == "validation failed" and name in body["detail"]


# Calls around New York's local midnights; "now" is Tuesday 2026-11-24 12:00 EST (17:00 UTC).
MIDNIGHT_CALLS = (
    "2026-11-01T03:59:59Z",  # Sat Oct 31 23:59:59 EDT
    "2026-11-01T04:00:00Z",  # Sun Nov 1 00:00 EDT: the month starts (DST ends later that night)
    "2026-11-23T04:59:59Z",  # Sun Nov 22 23:59:59 EST
    "2026-11-23T05:00:00Z",  # Mon Nov 23 00:00 EST: the week starts
    "2026-11-24T04:59:59Z",  # Mon Nov 23 23:59:59 EST
    "2026-11-24T05:00:00Z",  # Tue Nov 24 00:00 EST: the day starts
)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("America/New_York", {"today": 1, "week": 3, "month": 5}),
        ("UTC", {"today": 2, "week": 4, "month": 6}),
    ],
    indirect=["config"],
)
async def test_period_boundaries_follow_the_configured_zone(
    api: AppClient, clock: SettableClock, expected: dict[str, int]
) -> None:
    for started in MIDNIGHT_CALLS:
        await call_at(api, clock, started)
    for period, total in expected.items():
        assert (await stats(api, clock, "2026-11-24T17:00:00Z", period))["total_calls"] == total, period


@pytest.mark.parametrize("config", ["America/New_York"], indirect=True)
async def test_week_across_the_autumn_dst_change(api: AppClient, clock: SettableClock) -> None:
    # Now: Sunday 2026-11-01 12:00 EST; the week began Monday Oct 26 00:00 EDT = 04:00 UTC.
    for started in ("2026-10-26T03:59:59Z", "2026-10-26T04:00:00Z", "2026-11-01T03:59:59Z", "2026-11-01T04:00:00Z"):
        await call_at(api, clock, started)
    now = "2026-11-01T17:00:00Z"
    assert (await stats(api, clock, now, "week"))["total_calls"] == 3
    assert (await stats(api, clock, now, "today"))["total_calls"] == 1
    assert (await stats(api, clock, now, "month"))["total_calls"] == 1


@pytest.mark.parametrize("config", ["America/New_York"], indirect=True)
async def test_month_and_week_across_the_spring_dst_change(api: AppClient, clock: SettableClock) -> None:
    # Now: Friday 2026-03-20 12:00 EDT. The month began Mar 1 00:00 EST (05:00 UTC), before DST;
    # the week began Monday Mar 16 00:00 EDT (04:00 UTC); the day at 04:00 UTC.
    for started in (
        "2026-03-01T04:59:59Z",
        "2026-03-01T05:00:00Z",
        "2026-03-16T03:59:59Z",
        "2026-03-16T04:00:00Z",
        "2026-03-20T03:59:59Z",
        "2026-03-20T04:00:00Z",
    ):
        await call_at(api, clock, started)
    now = "2026-03-20T16:00:00Z"
    assert [(await stats(api, clock, now, p))["total_calls"] for p in ("today", "week", "month")] == [1, 3, 5]


def test_period_start_when_local_midnight_does_not_exist() -> None:
    # Cuba springs forward at midnight: 2026-03-08 begins at 01:00 CDT, which is 05:00 UTC.
    havana = ZoneInfo("America/Havana")
    assert period_start(Period.TODAY, utc("2026-03-08T12:00:00Z"), havana) == datetime(2026, 3, 8, 5, tzinfo=UTC)
    assert period_start(Period.TODAY, utc("2026-03-08T04:59:59Z"), havana) == datetime(2026, 3, 7, 5, tzinfo=UTC)

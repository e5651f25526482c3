"""GET /api/call-logs/statistics/ as a report: from/until, interval, group_by, timezone, service level, CSV.

Known calls check each metric by hand; many calls spread over DST changes (Europe and the US) check
every interval and grouping against a count made here from the calls themselves, after inserts,
changes and deletes went through the rollup's triggers.
"""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from calld.config import CallsConfig, Config
from calld.domain.statistics import CallFacts, contribution, extension_of, metrics, report_cell
from calld.storage.database import Database
from calld.storage.models import CallLog, SipConfiguration
from tests.support import AppClient, SettableClock

BASE = "/api/call-logs/"
STATS = f"{BASE}statistics/"


@pytest.fixture
def config(request: pytest.FixtureRequest) -> Config:
    return Config(calls=CallsConfig(timezone=getattr(request, "param", "UTC"), default_region="US"))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def report(api: AppClient, **params: str) -> dict[str, Any]:
    resp = await api.get(STATS, params=params)
    body = await resp.json()
    assert resp.status == 200, body
    assert isinstance(body, dict)
    return body


async def call_at(
    api: AppClient,
    clock: SettableClock,
    started: str,
    steps: tuple[tuple[float, str], ...],
    direction: str = "inbound",
    caller: str = "+14155550100",
    recipient: str = "1001",
) -> str:
    clock.now = utc(started)
    resp = await api.post(BASE, json={"direction": direction, "caller_number": caller, "recipient_number": recipient})
    assert resp.status == 201
    call_id: str = (await resp.json())["id"]
    for seconds, status in steps:
        clock.advance(seconds)
        resp = await api.patch(f"{BASE}{call_id}/update_status/", json={"status": status})
        assert resp.status == 200, await resp.json()
    return call_id


async def test_metrics_of_known_calls_by_hour_and_direction(api: AppClient, clock: SettableClock) -> None:
    # 09:00-10:00: answered after 5 s of ringing, 60 s talk with 20 s on hold; answered after 25 s, 100 s.
    await call_at(
        api,
        clock,
        "2026-11-24T09:00:00Z",
        ((1, "ringing"), (5, "answered"), (20, "on_hold"), (20, "answered"), (20, "ended")),
    )
    await call_at(api, clock, "2026-11-24T09:30:00Z", ((1, "ringing"), (25, "answered"), (100, "ended")))
    # 10:00-11:00: an inbound call missed, one cancelled (both abandoned), an outbound no answer.
    await call_at(api, clock, "2026-11-24T10:00:00Z", ((1, "ringing"), (30, "missed")))
    await call_at(api, clock, "2026-11-24T10:15:00Z", ((1, "ringing"), (3, "cancelled")))
    await call_at(
        api, clock, "2026-11-24T10:59:59Z", ((1, "ringing"), (40, "no_answer")), "outbound", "1002", "+14155550111"
    )
    clock.now = utc("2026-11-24T12:00:00Z")

    body = await report(api, **{"from": "2026-11-24T09:00:00Z", "until": "2026-11-24T11:00:00Z", "interval": "hour"})
    assert (body["from"], body["until"], body["timezone"], body["interval"]) == (
        "2026-11-24T09:00:00Z",
        "2026-11-24T11:00:00Z",
        "UTC",
        "hour",
    )
    nine, ten = body["series"]
    assert (nine["start"], nine["end"], nine["group"]) == ("2026-11-24T09:00:00Z", "2026-11-24T10:00:00Z", None)
    assert nine == {
        **nine,
        "total_calls": 2,
        "answered_calls": 2,
        "answer_rate": 100.0,
        "total_talk_seconds": 160.0,
        "average_talk_seconds": 80.0,
        "average_ring_seconds": 15.0,
        "average_hold_seconds": 10.0,
        "service_level": 50.0,  # answered within 20 s: one of two
        "answered_within_service_level": 1,
        "abandoned_calls": 0,
    }
    assert ten == {
        **ten,
        "total_calls": 3,
        "answered_calls": 0,
        "missed_calls": 2,  # missed and no answer
        "inbound_calls": 2,
        "outbound_calls": 1,
        "abandoned_calls": 2,
        "abandon_rate": 100.0,
        "service_level": 0.0,
    }
    assert body["totals"]["total_calls"] == 5 and body["totals"]["answer_rate"] == 40.0
    within_30 = await report(api, **{"from": "2026-11-24", "service_level_seconds": "30"})
    assert within_30["totals"]["service_level"] == 40.0 and within_30["interval"] is None

    by_direction = await report(api, **{"from": "2026-11-24", "group_by": "direction"})
    assert [(r["group"], r["total_calls"]) for r in by_direction["series"]] == [("inbound", 4), ("outbound", 1)]
    by_extension = await report(api, **{"from": "2026-11-24", "group_by": "extension"})
    assert [(r["group"], r["total_calls"]) for r in by_extension["series"]] == [("1001", 4), ("1002", 1)]


async def test_the_period_answer_is_unchanged_and_the_report_agrees(api: AppClient, clock: SettableClock) -> None:
    await call_at(api, clock, "2026-11-24T08:00:00Z", ((2, "ringing"), (3, "answered"), (61, "ended")))
    await call_at(api, clock, "2026-11-23T10:00:00Z", ((4, "missed"),))
    clock.now = utc("2026-11-24T12:00:00Z")
    legacy = await report(api, period="week")
    assert set(legacy) == {
        "period",
        "total_calls",
        "answered_calls",
        "missed_calls",
        "inbound_calls",
        "outbound_calls",
        "answer_rate",
        "average_duration_seconds",
    }
    week = await report(api, period="week", interval="day")
    assert week["from"] == "2026-11-23T00:00:00Z" and week["until"] == "2026-11-24T12:00:00Z"
    assert [r["total_calls"] for r in week["series"]] == [1, 1]
    for name in ("total_calls", "answered_calls", "missed_calls", "inbound_calls", "answer_rate"):
        assert week["totals"][name] == legacy[name]
    assert week["totals"]["average_talk_seconds"] == legacy["average_duration_seconds"]


async def test_a_call_counts_the_moment_its_change_commits(api: AppClient, clock: SettableClock) -> None:
    call_id = await call_at(api, clock, "2026-11-24T11:59:00Z", ((1, "ringing"), (5, "answered")))
    params = {"from": "2026-11-24", "interval": "day"}
    assert (await report(api, **params))["totals"]["average_talk_seconds"] == 0.0
    clock.advance(30)
    resp = await api.post(f"{BASE}{call_id}/end_call/")
    assert resp.status == 200
    totals = (await report(api, **params))["totals"]  # no wait, no regeneration
    assert (totals["total_calls"], totals["total_talk_seconds"]) == (1, 30.0)
    assert (await api.delete(f"{BASE}{call_id}/")).status == 204
    assert (await report(api, **params))["totals"]["total_calls"] == 0


async def test_bucket_edges_and_ragged_ranges(api: AppClient, clock: SettableClock) -> None:
    for started in ("2026-11-24T09:59:59Z", "2026-11-24T10:00:00Z", "2026-11-24T10:07:30Z", "2026-11-24T10:14:59Z"):
        await call_at(api, clock, started, ((1, "missed"),))
    clock.now = utc("2026-11-24T12:00:00Z")
    hours = await report(api, **{"from": "2026-11-24T09:00:00Z", "until": "2026-11-24T11:00:00Z", "interval": "hour"})
    assert [r["total_calls"] for r in hours["series"]] == [1, 3]
    ragged = await report(
        api, **{"from": "2026-11-24T09:59:59.5Z", "until": "2026-11-24T10:07:30Z", "interval": "hour"}
    )
    assert [(r["start"], r["end"], r["total_calls"]) for r in ragged["series"]] == [
        ("2026-11-24T09:59:59.500000Z", "2026-11-24T10:00:00Z", 0),
        ("2026-11-24T10:00:00Z", "2026-11-24T10:07:30Z", 1),
    ]
    empty = await report(api, **{"from": "2026-11-20", "until": "2026-11-23", "interval": "day"})
    assert [r["total_calls"] for r in empty["series"]] == [0, 0, 0] and empty["totals"]["total_calls"] == 0
    assert await report(api, **{"from": "2026-11-20", "until": "2026-11-23", "group_by": "client"}) == {
        **empty,
        "interval": None,
        "group_by": "client",
        "series": [],
    }


@pytest.mark.parametrize(
    ("config", "day", "hours"),
    [
        ("Europe/Paris", "2026-03-29", 23),
        ("Europe/Paris", "2026-10-25", 25),
        ("America/New_York", "2026-03-08", 23),
        ("America/New_York", "2026-11-01", 25),
    ],
    indirect=["config"],
)
async def test_local_days_and_hours_across_dst(
    api: AppClient, clock: SettableClock, config: Config, day: str, hours: int
) -> None:
    zone = config.calls.zone
    midnight = datetime.fromisoformat(day).replace(tzinfo=zone).astimezone(UTC)
    # A call each real hour of the local day, and one just before and after it.
    for n in range(-1, hours + 1):
        await call_at(api, clock, (midnight + timedelta(hours=n, minutes=30)).isoformat(), ((1, "missed"),))
    clock.now = midnight + timedelta(days=3)
    hourly = await report(api, **{"from": day, "until": day[:8] + f"{int(day[8:]) + 1:02d}", "interval": "hour"})
    assert len(hourly["series"]) == hours and {r["total_calls"] for r in hourly["series"]} == {1}
    local_starts = [utc(r["start"]).astimezone(zone) for r in hourly["series"]]
    assert all(t.minute == 0 for t in local_starts)
    # Spring: 02:00 never happens (23 local hours); autumn: the repeated hour is two buckets.
    assert len({t.hour for t in local_starts}) == min(hours, 24)
    daily = await report(
        api, **{"from": f"{day[:8]}01", "until": f"{day[:5]}{int(day[5:7]) + 1:02d}-01", "interval": "day"}
    )
    the_day = next(r for r in daily["series"] if r["start"] == midnight.isoformat().replace("+00:00", "Z"))
    assert the_day["total_calls"] == hours
    assert (utc(the_day["end"]) - utc(the_day["start"])) == timedelta(hours=hours)
    monthly = await report(api, **{"from": "2026-01-01", "until": "2027-01-01", "interval": "month"})
    assert len(monthly["series"]) == 12 and sum(r["total_calls"] for r in monthly["series"]) == hours + 2


STATUSES = ("ended", "ended", "ended", "missed", "no_answer", "busy", "cancelled", "failed", "answered")


async def test_internal_calls_are_counted_grouped_and_filtered(api: AppClient, clock: SettableClock) -> None:
    await call_at(api, clock, "2026-11-24T09:00:00Z", ((3, "ringing"), (5, "answered"), (60, "ended")))
    internal = ((2, "ringing"), (4, "answered"), (30, "ended"))
    await call_at(api, clock, "2026-11-24T09:20:00Z", internal, "internal", "1001", "1002")
    # phone 1003 rang 1001, then gave up: the phone it rang missed it (not cancelled, as an outbound call)
    missed = await call_at(api, clock, "2026-11-24T09:40:00Z", ((2, "ringing"),), "internal", "1003", "1001")
    clock.advance(10)
    resp = await api.post(f"{BASE}{missed}/end_call/")
    assert resp.status == 200 and (await resp.json())["status"] == "missed"
    await call_at(api, clock, "2026-11-24T10:10:00Z", ((2, "ringing"),), "outbound", "1001", "+14155550199")
    clock.now = utc("2026-11-24T12:00:00Z")
    body = await report(api, **{"from": "2026-11-24", "interval": "hour"})
    totals = body["totals"]
    assert (totals["total_calls"], totals["inbound_calls"], totals["outbound_calls"], totals["internal_calls"]) == (
        4,
        1,
        1,
        2,
    )
    assert totals["missed_calls"] == 1 and totals["abandoned_calls"] == 0  # abandoned: inbound callers only
    nine = next(row for row in body["series"] if row["start"].startswith("2026-11-24T09:00"))
    assert nine["internal_calls"] == 2
    by_direction = await report(api, **{"from": "2026-11-24", "group_by": "direction"})
    assert sorted((r["group"], r["total_calls"]) for r in by_direction["series"]) == [
        ("inbound", 1),
        ("internal", 2),
        ("outbound", 1),
    ]
    # an internal call's extension is the phone that placed it, as for an outbound call
    by_extension = await report(api, **{"from": "2026-11-24", "group_by": "extension"})
    assert sorted((r["group"], r["total_calls"]) for r in by_extension["series"]) == [("1001", 3), ("1003", 1)]
    listed = await (await api.get(BASE, params={"direction": "internal"})).json()
    assert sorted(c["recipient_number"] for c in listed["results"]) == ["1001", "1002"]
    period = await (await api.get(STATS, params={"period": "today"})).json()
    assert "internal_calls" not in period  # the period answer is the seed's, unchanged
    assert period["total_calls"] - period["inbound_calls"] - period["outbound_calls"] == 2


def random_calls(
    rng: random.Random,
    count: int,
    start: datetime,
    days: int,
    configs: list[uuid.UUID],
    directions: tuple[str, ...] = ("inbound", "outbound", "internal"),
) -> list[dict[str, Any]]:
    rows = []
    for _ in range(count):
        began = start + timedelta(seconds=rng.randrange(days * 86400))
        status = rng.choice(STATUSES)
        answered = status in ("ended", "answered")
        ended = status != "answered"
        ring = round(rng.uniform(1, 40), 1)
        direction = rng.choice(directions)
        extension = rng.choice(("1001", "1002", "1003", "+14155550100"))
        far = rng.choice(("1004", "1005") if direction == "internal" else ("+14155550101", "+442079460123"))
        rows.append(
            {
                "id": uuid.uuid4(),
                "direction": direction,
                "call_type": "voice",
                "status": status,
                "caller_number": far if direction == "inbound" else extension,
                "recipient_number": extension if direction == "inbound" else far,
                "sip_configuration_id": rng.choice([*configs, None]),
                "started_at": began,
                "answered_at": began + timedelta(seconds=ring) if answered else None,
                "ended_at": began + timedelta(seconds=300) if ended else None,
                "last_event_at": began + timedelta(seconds=300),
                "duration_seconds": round(rng.uniform(5, 280), 1) if answered and ended else (0.0 if ended else None),
                "ring_seconds": ring,
                "hold_seconds": rng.choice((0.0, 0.0, 12.5)),
                "recording": False,
                "notes": "",
                "seeded": False,
                "created_at": began,
                "updated_at": began,
            }
        )
    return rows


def facts_of(c: CallLog) -> CallFacts:
    return CallFacts(
        c.direction.value,
        c.status.value,
        c.answered_at is not None,
        c.ended_at is not None,
        c.duration_seconds,
        c.ring_seconds,
        c.hold_seconds,
    )


def expected_series(
    calls: list[Any], zone: ZoneInfo, interval: str, group_by: str | None, level: int
) -> dict[tuple[str, Any], dict[str, Any]]:
    """Per (bucket start, group), the metrics counted here call by call (no rollup)."""
    sums: dict[tuple[str, Any], list[float]] = defaultdict(lambda: [0.0] * 19)
    for c in calls:
        local = c.started_at.astimezone(zone)
        if interval == "hour":
            start = local.replace(minute=0, second=0, microsecond=0)
        else:
            d = local.date()
            if interval == "week":
                d -= timedelta(days=d.weekday())
            elif interval == "month":
                d = d.replace(day=1)
            start = datetime(d.year, d.month, d.day, tzinfo=zone)
        key = start.astimezone(UTC).isoformat().replace("+00:00", "Z")
        group = {
            None: None,
            "direction": c.direction.value,
            "extension": extension_of(c.direction.value, c.caller_number, c.recipient_number) or None,
            "sip_configuration": str(c.sip_configuration_id) if c.sip_configuration_id else None,
        }[group_by]
        facts = facts_of(c)
        for i, v in enumerate(contribution(facts)):
            sums[(key, group)][i] += v
    return {k: metrics(report_cell(v, level)) for k, v in sums.items()}


def approx_metrics(sums: list[float], level: int) -> Any:
    return pytest.approx(metrics(report_cell(sums, level)), abs=0.011)


# Paris and New York (whole-hour offsets, a DST change in the range) read whole hours from the hourly
# rollup and the quarter hours around them from the 15-minute one; Kolkata (+05:30) quarter hours only.
@pytest.mark.parametrize("config", ["Europe/Paris", "America/New_York", "Asia/Kolkata"], indirect=True)
async def test_every_interval_and_grouping_agrees_with_a_count_of_the_calls(
    api: AppClient, db: Database, clock: SettableClock, config: Config
) -> None:
    rng = random.Random(18)
    configs = [uuid.uuid4(), uuid.uuid4()]
    async with db.write() as session:
        for n, config_id in enumerate(configs):
            session.add(
                SipConfiguration(id=config_id, name=f"trunk-{n}", server="sip.example", username="u", secret="s")
            )
        await session.flush()
        await session.execute(
            CallLog.__table__.insert(), random_calls(rng, 1500, datetime(2026, 10, 18, tzinfo=UTC), 20, configs)
        )
    async with db.write() as session:  # changes and deletes go through the triggers too
        ids = list((await session.execute(sa.select(CallLog.id).order_by(CallLog.id).limit(300))).scalars())
        await session.execute(
            sa.update(CallLog)
            .where(CallLog.id.in_(ids[:150]))
            .values(status="missed", answered_at=None, direction="inbound")
        )
        await session.execute(
            sa.update(CallLog)
            .where(CallLog.id.in_(ids[150:200]))
            .values(sip_configuration_id=None, recipient_number="1009")
        )
        await session.execute(sa.delete(CallLog).where(CallLog.id.in_(ids[200:])))
    async with db.read() as session:
        calls = list((await session.execute(sa.select(CallLog))).scalars())
    zone = config.calls.zone
    clock.now = datetime(2026, 11, 30, tzinfo=UTC)
    start, end = "2026-10-19T06:13:20Z", "2026-11-06T17:48:10Z"  # ragged edges, both DST changes inside
    inside = [c for c in calls if utc(start) <= c.started_at < utc(end)]
    for interval in ("hour", "day", "week", "month"):
        for group_by in (None, "direction", "extension", "sip_configuration"):
            params = {"from": start, "until": end, "interval": interval, "service_level_seconds": "10"}
            if group_by:
                params["group_by"] = group_by
            body = await report(api, **params)
            got = {
                (r["start"], r["group"]): {k: v for k, v in r.items() if k not in ("start", "end", "group")}
                for r in body["series"]
                if r["total_calls"] or group_by
            }
            expected = expected_series(inside, zone, interval, group_by, 10)
            # The first bucket starts at `from` (clipped); map the expected calendar start onto it.
            first = body["series"][0]["start"]
            expected = {((k if k >= first else first), g): v for (k, g), v in expected.items()}
            # Sums of floats added in another order may differ in their last rounded digit.
            assert got.keys() == expected.keys(), (interval, group_by)
            for cell, values in got.items():
                assert values == pytest.approx(expected[cell], abs=0.011), (interval, group_by, cell)
            assert body["totals"] == approx_metrics(
                [
                    sum(x)
                    for x in zip(
                        *[contribution(facts_of(c)) for c in inside],
                        strict=True,
                    )
                ],
                10,
            )


async def test_the_series_as_csv(api: AppClient, clock: SettableClock) -> None:
    await call_at(api, clock, "2026-11-24T09:00:00Z", ((1, "missed"),))
    clock.now = utc("2026-11-24T12:00:00Z")
    resp = await api.get(STATS, params={"from": "2026-11-24", "interval": "hour", "format": "csv"})
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert resp.headers["Content-Disposition"].startswith('attachment; filename="calld-statistics-')
    rows = list(csv.DictReader(io.StringIO(await resp.text(), newline="")))
    assert len(rows) == 12
    assert rows[9] == {**rows[9], "start": "2026-11-24T09:00:00Z", "group": "", "total_calls": "1", "missed_calls": "1"}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"interval": "minute"}, "interval"),
        ({"group_by": "colour"}, "group_by"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"service_level_seconds": "17"}, "service_level_seconds"),
        ({"service_level_seconds": "x"}, "service_level_seconds"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-11-24", "until": "2026-11-23"}, "until"),
        ({"from": "1969-12-31"}, "from"),
        ({"until": "9999-01-01"}, "until"),
        ({"period": "week", "from": "2026-11-01"}, "period"),
        ({"period": "year"}, "period"),
        ({"format": "xml", "interval": "day"}, "format"),
        ({"from": "1971-01-01", "until": "2100-01-01", "interval": "hour"}, "interval"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_parameters_are_422_naming_them(api: AppClient, params: dict[str, str], named: str) -> None:
    resp = await api.get(STATS, params=params)
    assert resp.status == 422
    assert named in (await resp.json())["detail"]


def test_whole_hour_zones_read_the_hourly_rollup_between_quarter_hours() -> None:
    from zoneinfo import ZoneInfo

    from calld.domain.statistics import offset_segments
    from calld.storage.stats_report import levels

    def spans(zone: str, start: str, end: str) -> list[tuple[str, int, int]]:
        lo, hi = utc(start), utc(end)
        first, last = -(-int(lo.timestamp()) // 900) * 900, int(hi.timestamp()) // 900 * 900
        return levels(first, last, offset_segments(ZoneInfo(zone), lo, hi))

    at = lambda text: int(utc(text).timestamp())  # noqa: E731
    # Paris over its autumn change (01:00 UTC): quarter hours to 07:00, hours to 17:00, quarter hours after
    assert spans("Europe/Paris", "2026-10-19T06:13:20Z", "2026-11-06T17:48:10Z") == [
        ("call_stats_groups", at("2026-10-19T06:15:00Z"), at("2026-10-19T07:00:00Z")),
        ("call_stats_hours", at("2026-10-19T07:00:00Z"), at("2026-11-06T17:00:00Z")),
        ("call_stats_groups", at("2026-11-06T17:00:00Z"), at("2026-11-06T17:45:00Z")),
    ]
    assert spans("America/New_York", "2026-01-01T05:00:00Z", "2027-01-01T05:00:00Z") == [
        ("call_stats_hours", at("2026-01-01T05:00:00Z"), at("2027-01-01T05:00:00Z"))
    ]
    # +05:30 (Kolkata), +05:45 (Kathmandu): no UTC hour is one of their hours
    for zone in ("Asia/Kolkata", "Asia/Kathmandu"):
        assert [s[0] for s in spans(zone, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")] == ["call_stats_groups"]
    # Lord Howe's DST moves its clock by half an hour (+10:30 / +11:00): a range over the change reads quarters
    assert [s[0] for s in spans("Australia/Lord_Howe", "2026-09-01T00:00:00Z", "2026-11-01T00:00:00Z")] == [
        "call_stats_groups"
    ]


async def test_the_compact_series_holds_the_same_rows(api: AppClient, clock: SettableClock) -> None:
    await call_at(api, clock, "2026-11-24T09:00:00Z", ((3, "ringing"), (5, "answered"), (60, "ended")))
    await call_at(api, clock, "2026-11-24T11:20:00Z", ((2, "missed"),), "internal", "1001", "1002")
    clock.now = utc("2026-11-24T12:30:00Z")
    for group_by in ({}, {"group_by": "direction"}):
        params = {"from": "2026-11-24T08:30:00Z", "interval": "hour", **group_by}
        full = await report(api, **params)
        compact = await report(api, **params, format="compact")
        series = full.pop("series")
        fields, rows = compact.pop("fields"), compact.pop("rows")
        assert compact == full
        assert fields[:3] == ["start", "end", "group"] and len(rows) == len(series) > 1
        assert [dict(zip(fields, row, strict=True)) for row in rows] == series

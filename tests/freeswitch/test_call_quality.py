"""How each recorded FreeSWITCH call sounded, from the real q_rtp_quality (clean RTP both ways) and
q2_rtp_loss (5 % of RTP dropped) captures, checked against the CDRs FreeSWITCH wrote beside them
(mod_cdr_csv and mod_json_cdr); then end to end through storage, the API's fields and filters, the
quality_change event and the metric."""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from calld.domain.call import new_call
from calld.domain.quality import BELOW_THRESHOLD, apply_quality, call_quality, quality_alert
from calld.domain.vocabulary import CallDirection, EventType
from calld.ingest.switch_ingest import SwitchIngest
from calld.service.metrics import Metrics
from calld.storage.calls import CallStore
from calld.storage.database import Database
from calld.storage.models import CallEvent, CallLog
from tests.conftest import AppClient
from tests.fakes.esl_capture import CAPTURE_DIR, mapped
from tests.support import SettableClock, metric_sample

CDR_DIR = CAPTURE_DIR / "cdr"
FIELDS = (CDR_DIR / "cdr_csv_fields.txt").read_text().split()
QUALITY_CAPTURES = ("q_rtp_quality", "q_rtp_quality.json", "q2_rtp_loss", "q2_rtp_loss.json")


def cdr_rows(capture: str) -> dict[str, dict[str, str]]:
    with (CDR_DIR / f"{capture}.cdr.csv").open(newline="") as handle:
        return {row[0]: dict(zip(FIELDS, row, strict=False)) for row in csv.reader(handle)}


def json_cdr_stats(capture: str) -> dict[str, dict[str, float]]:
    """Each leg's callStats.audio.inbound from mod_json_cdr's POSTs (numbers, not rounded)."""
    stats = {}
    for line in (CDR_DIR / f"{capture}.cdr.jsonl").read_text().splitlines():
        body = json.loads(json.loads(line)["body"])
        stats[body["variables"]["uuid"]] = body["callStats"]["audio"]["inbound"]
    return stats


def ended(capture: str) -> dict[str, object]:
    [end] = [e for e in mapped(capture) if e.event_type in (EventType.ENDED, EventType.FAILED)]
    return dict(end.metadata)


@pytest.mark.parametrize("capture", QUALITY_CAPTURES)
def test_each_legs_figures_are_the_cdrs(capture: str) -> None:
    legs = {leg["leg"]: leg for leg in ended(capture)["quality"]["legs"]}  # type: ignore[index]
    rows, stats = cdr_rows(capture), json_cdr_stats(capture)
    assert set(legs) == set(rows) == set(stats)  # both legs, A and B
    for uuid, leg in legs.items():
        row, exact = rows[uuid], stats[uuid]
        assert leg["mos"] == float(row["rtp_audio_in_mos"]) == pytest.approx(exact["mos"], abs=0.005)
        assert leg["packets"] == int(row["rtp_audio_in_media_packet_count"]) == exact["media_packet_count"] > 0
        variance = float(row["rtp_audio_in_jitter_max_variance"])
        assert leg["jitter_ms"] == pytest.approx(math.sqrt(variance), abs=0.01)
        assert leg["packet_loss_pct"] == pytest.approx(exact["jitter_loss_rate"] * 100, abs=0.5)


# capture -> the call's MOS (its worst leg's), its loss; the README: q2 "5 % loss: MOS 3.86-4.17".
CALL_MOS = {
    "q_rtp_quality": (4.5, 0.0),
    "q_rtp_quality.json": (4.5, 0.0),
    "q2_rtp_loss": (4.1, 7.0),
    "q2_rtp_loss.json": (3.86, 8.0),
}


@pytest.mark.parametrize("capture", QUALITY_CAPTURES)
def test_the_calls_quality_is_its_worst_legs(capture: str) -> None:
    quality = call_quality(ended(capture))
    assert quality is not None and quality.source == "freeswitch" and not quality.estimated
    assert (quality.mos, quality.packet_loss_pct) == CALL_MOS[capture]
    assert quality.mos == min(float(row["rtp_audio_in_mos"]) for row in cdr_rows(capture).values())
    assert quality.rtt_ms is None  # FreeSWITCH reports no round trip at hangup


@pytest.mark.parametrize("capture", ["l_calld_originate", "o_ring_group", "p3_trunk_answered"])
def test_legs_without_media_are_no_measurement(capture: str) -> None:
    # The callee phones here sent no RTP after answering (or lost the race): FreeSWITCH still says
    # mos 4.50 for their legs, with 0 media packets, as the CDR shows.
    meta = ended(capture)
    legs = meta["quality"]["legs"]  # type: ignore[index]
    rows = cdr_rows(capture)
    assert {leg["leg"]: leg["packets"] for leg in legs} == {
        uuid: int(row["rtp_audio_in_media_packet_count"])
        for uuid, row in rows.items()
        if row["rtp_audio_in_media_packet_count"]  # a leg that never had media has no statistics
    }
    silent = [leg for leg in legs if leg["packets"] == 0]
    assert silent and all(leg["mos"] == float(rows[leg["leg"]]["rtp_audio_in_mos"]) == 4.5 for leg in silent)
    # Were a silent leg's figure taken, a worse one there would show: it does not.
    worse = {
        "quality": {"source": "freeswitch", "legs": [{**leg, "mos": 1.0} if leg in silent else leg for leg in legs]}
    }
    assert call_quality(worse) == call_quality(meta)
    only_silent = {"quality": {"source": "freeswitch", "legs": silent}}
    assert call_quality(only_silent) is None
    state = new_call(CallDirection.INBOUND, datetime.now(UTC))
    assert apply_quality(state, EventType.ENDED, only_silent, None) == (state, {})


def test_below_the_threshold_a_quality_change_follows() -> None:
    meta = ended("q2_rtp_loss.json")
    alert = quality_alert(EventType.ENDED, meta, 3.9)
    assert (
        alert is not None and alert["reason"] == BELOW_THRESHOLD and (alert["mos"], alert["threshold"]) == (3.86, 3.9)
    )
    assert quality_alert(EventType.ENDED, meta, 3.5) is None
    assert quality_alert(EventType.ENDED, ended("q_rtp_quality"), 5.0) is not None  # 4.5 < 5
    assert quality_alert(EventType.ANSWERED, meta, 5.0) is None


async def ingest(db: Database, clock: SettableClock, store: CallStore, *captures: str) -> None:
    ingest = SwitchIngest(db, store, "freeswitch")
    for capture in captures:
        for event in mapped(capture):
            await ingest(event)


async def test_quality_is_stored_listed_filtered_and_alerted(
    db: Database, clock: SettableClock, api: AppClient
) -> None:
    metrics = Metrics()
    store = CallStore(clock=clock, mos_threshold=4.0, hooks=(metrics.count_event,))
    await ingest(db, clock, store, "q_rtp_quality", "q2_rtp_loss.json", "b_noanswer")
    page = await (await api.get("/api/call-logs/?ordering=started_at")).json()
    figures = {
        (
            c["mos"],
            c["packet_loss_pct"],
            c["rtt_ms"],
            c["quality_source"],
            c["call_quality_score"],
            c["call_quality_score_by"],
        )
        for c in page["results"]
    }
    assert figures == {
        (4.5, 0.0, None, "freeswitch", 4.5, "mos"),
        (3.86, 8.0, None, "freeswitch", 3.86, "mos"),
        (None, None, None, None, None, None),  # b_noanswer: never answered, no media
    }

    async def listed(query: str) -> list[float | None]:
        response = await api.get(f"/api/call-logs/?{query}")
        assert response.status == 200, await response.text()
        return sorted(c["mos"] for c in (await response.json())["results"])

    assert await listed("max_mos=3.9") == [3.86]
    assert await listed("min_mos=4") == [4.5]
    assert await listed("min_mos=3.5&max_mos=4.5") == [3.86, 4.5]
    assert await listed("min_mos=4.6") == []
    for bad in ("min_mos=abc", "max_mos=9", "min_mos=nan", "min_mos=1e1", "min_mos=4.5&max_mos=4"):
        response = await api.get(f"/api/call-logs/?{bad}")
        assert response.status == 422, bad
        assert bad.split("=")[0] in (await response.json())["detail"]

    # Only the lossy call went below 4.0: one quality_change after its end, and the metric counts it.
    async with db.read() as s:
        poor = (await s.execute(sa.select(CallLog).where(CallLog.mos == 3.86))).scalar_one()
        events = list(
            (await s.execute(sa.select(CallEvent).where(CallEvent.call_id == poor.id).order_by(CallEvent.id))).scalars()
        )
        alerts = (
            await s.execute(sa.select(sa.func.count()).where(CallEvent.event_type == EventType.QUALITY_CHANGE))
        ).scalar_one()
    assert [e.event_type for e in events][-2:] == [EventType.ENDED, EventType.QUALITY_CHANGE] and alerts == 1
    assert events[-1].meta["mos"] == 3.86 and events[-1].meta["threshold"] == 4.0
    assert metric_sample(metrics.render().decode(), "calld_poor_quality_calls_total", source="freeswitch") == 1

    # A person's score wins over the measurement; cleared, the MOS scores the call again.
    response = await api.patch(f"/api/call-logs/{poor.id}/", json={"call_quality_score": 2})
    assert response.status == 200, await response.text()
    detail = await response.json()
    assert (detail["call_quality_score"], detail["call_quality_score_by"], detail["mos"]) == (2, "person", 3.86)
    response = await api.patch(f"/api/call-logs/{poor.id}/", json={"call_quality_score": None})
    detail = await response.json()
    assert (detail["call_quality_score"], detail["call_quality_score_by"]) == (3.86, "mos")

"""calld.domain.quality with plain data: the E-model, the worst leg, the score and the alert."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from calld.domain.call import new_call
from calld.domain.quality import (
    SCORED_BY_PERSON,
    LegQuality,
    apply_quality,
    call_quality,
    estimate_mos,
    mos_of_r,
    quality_alert,
    quality_metadata,
)
from calld.domain.vocabulary import CallDirection, EventType

_STATE = new_call(CallDirection.INBOUND, datetime(2026, 12, 3, tzinfo=UTC))


@pytest.mark.parametrize(
    ("loss", "jitter", "rtt", "low", "high"),
    [
        (0, 0, 0, 4.38, 4.42),  # a clean LAN call: G.711's ceiling (R = 92.7)
        (1, 5, 40, 4.25, 4.35),
        (5, 10, 40, 3.8, 3.95),  # FreeSWITCH measured 3.86-4.17 for 5 % random loss
        (10, 20, 100, 3.2, 3.5),
        (0, 0, 600, 3.4, 3.7),  # a satellite hop: 320 ms one way, delay alone
        (40, 50, 400, 1.0, 1.8),
    ],
)
def test_the_e_model_estimates_mos_from_loss_jitter_and_rtt(
    loss: float, jitter: float, rtt: float, low: float, high: float
) -> None:
    assert low <= estimate_mos(loss, jitter, rtt) <= high


def test_more_impairment_never_sounds_better() -> None:
    assert estimate_mos(1, 5, 50) > estimate_mos(2, 5, 50) > estimate_mos(2, 30, 50) > estimate_mos(2, 30, 400)
    assert (mos_of_r(-5), mos_of_r(0), mos_of_r(100), mos_of_r(120)) == (1.0, 1.0, 4.5, 4.5)
    assert estimate_mos(100, 0, 0) >= 1.0


def test_the_call_takes_its_worst_measured_leg() -> None:
    legs = [
        LegQuality("a", mos=4.4, jitter_ms=3, packet_loss_pct=0.5, packets=300),
        LegQuality("b", mos=3.9, jitter_ms=12, packet_loss_pct=4, packets=250),
        LegQuality("c", mos=4.5, packets=0),  # answered, no media: the switch's default, ignored
    ]
    quality = call_quality(quality_metadata("freeswitch", legs))
    assert quality is not None
    assert (quality.mos, quality.jitter_ms, quality.packet_loss_pct, quality.source) == (3.9, 12, 4, "freeswitch")
    assert call_quality(quality_metadata("freeswitch", legs[2:])) is None
    assert call_quality({}) is None and call_quality({"quality": {"legs": "x"}}) is None


def test_without_a_switch_mos_it_is_estimated() -> None:
    meta = quality_metadata("asterisk", [LegQuality("x", jitter_ms=10, packet_loss_pct=5, rtt_ms=40)])
    quality = call_quality(meta)
    assert quality is not None and quality.estimated
    assert quality.mos == round(estimate_mos(5, 10, 40), 2) and quality.rtt_ms == 40


def test_odd_values_are_unknown_not_errors() -> None:
    meta = {"quality": {"source": "x", "legs": [{"leg": "a", "mos": "4.1", "jitter_ms": "nan", "packet_loss_pct": -1}]}}
    quality = call_quality(meta)
    assert quality is not None and (quality.mos, quality.jitter_ms, quality.packet_loss_pct) == (4.1, None, None)


def test_the_mos_scores_the_call_unless_a_person_did() -> None:
    meta = quality_metadata("freeswitch", [LegQuality("a", mos=3.2, packets=100)])
    state, columns = apply_quality(_STATE, EventType.ENDED, meta, None)
    assert state.call_quality_score == 3.2 and columns["quality_score_by"] == "mos" and columns["mos"] == 3.2
    person = _STATE.__class__(**{**{f: getattr(_STATE, f) for f in _STATE.__slots__}, "call_quality_score": 5.0})
    state, columns = apply_quality(person, EventType.ENDED, meta, SCORED_BY_PERSON)
    assert state.call_quality_score == 5.0 and "quality_score_by" not in columns and columns["mos"] == 3.2
    assert apply_quality(_STATE, EventType.ANSWERED, meta, None) == (_STATE, {})


def test_an_alert_only_below_the_threshold_and_only_at_the_end() -> None:
    meta = quality_metadata("asterisk", [LegQuality("a", packet_loss_pct=12, jitter_ms=30, rtt_ms=200)])
    alert = quality_alert(EventType.ENDED, meta, 3.5)
    assert alert is not None and alert["estimated"] and alert["mos"] < 3.5 and "quality" not in alert
    assert quality_alert(EventType.FAILED, meta, 1.0) is None
    assert quality_alert(EventType.QUALITY_CHANGE, meta, 5.0) is None

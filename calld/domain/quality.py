"""How a call sounded, from what the switch measured on each leg (pure).

A switch reports, per leg and direction of media, some of: a MOS (FreeSWITCH computes one), the
jitter, the share of packets lost and the round-trip time (Asterisk's RTCP figures). A call's
figures are its **worst leg's** (the leg with the lowest MOS; a leg that measured no media — no RTP
packets — is not a measurement: FreeSWITCH still reports ``mos 4.50`` for it).

Where the switch gives no MOS, it is estimated with a simplified ITU-T G.107 E-model for G.711
(``estimate_mos``)::

    d      = rtt_ms / 2 + 2 * jitter_ms + 20            one-way delay: half the round trip, a jitter
                                                         buffer of twice the jitter, one 20 ms packet
    Id     = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)     delay impairment (H: 0 below, 1 above)
    Ie_eff = Ie + (95 - Ie) * Ppl / (Ppl + Bpl)          loss impairment, random loss (BurstR = 1);
                                                         G.711 with packet loss concealment: Ie = 0,
                                                         Bpl = 25.1 (ITU-T G.113 Appendix I)
    R      = 93.2 - Id - Ie_eff                          the default R0 - Is, no advantage factor
    MOS    = 1 + 0.035 R + 7e-6 R (R - 60) (100 - R)     for 0 < R < 100 (1 below, 4.5 above)

``call_quality_score`` (0-5) is the call's MOS unless a person set it (``SCORED_BY_PERSON``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from calld.domain.call import CallState
from calld.domain.vocabulary import ENDING_EVENTS, EventType

DEFAULT_MOS_THRESHOLD = 3.5
# The ``call_logs`` columns a call's quality fills (``quality_columns``).
QUALITY_COLUMNS = ("mos", "jitter_ms", "packet_loss_pct", "rtt_ms", "quality_source")
# ``quality_score_by``: who set ``call_quality_score`` — a person (PATCH, a status change with a
# score) or calld from the MOS; a person's value is never replaced by a measurement.
SCORED_BY_PERSON = "person"
SCORED_BY_MOS = "mos"
# Metadata key of an ended / failed (or quality_change) event that carries the switch's measurements.
QUALITY = "quality"
# The quality_change event calld stores when a call's MOS is below the threshold.
BELOW_THRESHOLD = "mos_below_threshold"

# E-model constants (G.107 defaults; G.711 with PLC from G.113 Appendix I).
_R0 = 93.2
_IE = 0.0
_BPL = 25.1
_PACKET_MS = 20.0


@dataclass(frozen=True, slots=True)
class LegQuality:
    """What was measured on one leg's received media (``None``: not reported)."""

    leg: str
    mos: float | None = None
    jitter_ms: float | None = None
    packet_loss_pct: float | None = None
    rtt_ms: float | None = None
    packets: int | None = None

    @property
    def measured(self) -> bool:
        """Media flowed: a leg with no packets carries the switch's defaults, not a measurement."""
        if self.packets is not None and self.packets <= 0:
            return False
        return any(v is not None for v in (self.mos, self.jitter_ms, self.packet_loss_pct, self.rtt_ms))

    def effective_mos(self) -> float:
        """The switch's MOS, else the E-model's estimate from loss, jitter and RTT."""
        if self.mos is not None:
            return self.mos
        return estimate_mos(self.packet_loss_pct or 0.0, self.jitter_ms or 0.0, self.rtt_ms or 0.0)

    def as_json(self) -> dict[str, Any]:
        """The leg as event metadata (what ``leg_from_json`` reads back)."""
        return {
            "leg": self.leg,
            "mos": self.mos,
            "jitter_ms": self.jitter_ms,
            "packet_loss_pct": self.packet_loss_pct,
            "rtt_ms": self.rtt_ms,
            "packets": self.packets,
        }


def estimate_mos(packet_loss_pct: float, jitter_ms: float, rtt_ms: float) -> float:
    """MOS (1-4.5) by the simplified E-model in this module's docstring."""
    delay = max(rtt_ms, 0.0) / 2 + 2 * max(jitter_ms, 0.0) + _PACKET_MS
    impairment_delay = 0.024 * delay + (0.11 * (delay - 177.3) if delay > 177.3 else 0.0)
    loss = min(max(packet_loss_pct, 0.0), 100.0)
    impairment_loss = _IE + (95 - _IE) * loss / (loss + _BPL)
    return mos_of_r(_R0 - impairment_delay - impairment_loss)


def mos_of_r(r: float) -> float:
    """G.107's mapping of the rating factor R to MOS."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r)


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def leg_from_json(value: Mapping[str, Any]) -> LegQuality:
    """A leg from event metadata (numbers or numeric strings; anything else is unknown)."""
    packets = _number(value.get("packets"))
    return LegQuality(
        leg=str(value.get("leg", "")),
        mos=_number(value.get("mos")),
        jitter_ms=_number(value.get("jitter_ms")),
        packet_loss_pct=_number(value.get("packet_loss_pct")),
        rtt_ms=_number(value.get("rtt_ms")),
        packets=int(packets) if packets is not None else None,
    )


def quality_metadata(source: str, legs: Sequence[LegQuality]) -> dict[str, Any]:
    """``{"quality": …}`` for an event's metadata: every leg the switch reported (also those without
    media, marked by their packet count, so a participant's figures can be shown), and the source."""
    if not legs:
        return {}
    return {QUALITY: {"source": source, "legs": [leg.as_json() for leg in legs]}}


def worst_leg(legs: Sequence[LegQuality]) -> LegQuality | None:
    """The measured leg with the lowest MOS (ties: the first); None if no leg measured media."""
    measured = [leg for leg in legs if leg.measured]
    if not measured:
        return None
    return min(measured, key=lambda leg: leg.effective_mos())


@dataclass(frozen=True, slots=True)
class CallQuality:
    """A call's figures: its worst leg's, with the MOS estimated where the switch gave none."""

    mos: float
    jitter_ms: float | None
    packet_loss_pct: float | None
    rtt_ms: float | None
    source: str
    estimated: bool


def call_quality(metadata: Mapping[str, Any]) -> CallQuality | None:
    """The call's quality from an event's ``quality`` metadata (None: no leg measured media)."""
    quality = metadata.get(QUALITY)
    if not isinstance(quality, Mapping):
        return None
    raw_legs = quality.get("legs")
    if not isinstance(raw_legs, Sequence) or isinstance(raw_legs, str):
        return None
    legs = [leg_from_json(leg) for leg in raw_legs if isinstance(leg, Mapping)]
    worst = worst_leg(legs)
    if worst is None:
        return None
    return CallQuality(
        mos=round(worst.effective_mos(), 2),
        jitter_ms=_rounded(worst.jitter_ms),
        packet_loss_pct=_rounded(worst.packet_loss_pct),
        rtt_ms=_rounded(worst.rtt_ms),
        source=str(quality.get("source") or "switch"),
        estimated=worst.mos is None,
    )


def _rounded(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def apply_quality(
    state: CallState, event_type: EventType, metadata: Mapping[str, Any], scored_by: str | None
) -> tuple[CallState, dict[str, Any]]:
    """Fold an event's measurements into the call: its state (``call_quality_score`` from the MOS
    unless a person scored the call) and the quality columns to set (nothing when the event carries
    no measurement)."""
    if event_type not in (EventType.ENDED, EventType.FAILED, EventType.QUALITY_CHANGE):
        return state, {}
    quality = call_quality(metadata)
    if quality is None:
        return state, {}
    columns: dict[str, Any] = {
        "mos": quality.mos,
        "jitter_ms": quality.jitter_ms,
        "packet_loss_pct": quality.packet_loss_pct,
        "rtt_ms": quality.rtt_ms,
        "quality_source": quality.source,
    }
    if scored_by != SCORED_BY_PERSON:
        state = replace(state, call_quality_score=min(quality.mos, 5.0))
        columns["quality_score_by"] = SCORED_BY_MOS
    return state, columns


def quality_alert(event_type: EventType, metadata: Mapping[str, Any], threshold: float) -> dict[str, Any] | None:
    """The metadata of the ``quality_change`` event to store after an ended / failed event whose call
    sounded worse than ``threshold`` (its MOS below it); None otherwise."""
    if event_type not in ENDING_EVENTS:
        return None
    quality = call_quality(metadata)
    if quality is None or quality.mos >= threshold:
        return None
    return {
        "reason": BELOW_THRESHOLD,
        "mos": quality.mos,
        "threshold": threshold,
        "jitter_ms": quality.jitter_ms,
        "packet_loss_pct": quality.packet_loss_pct,
        "rtt_ms": quality.rtt_ms,
        "source": quality.source,
        "estimated": quality.estimated,
    }


def leg_figures(metadata: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each leg's figures from an ending's metadata, by leg (the participants' ``leg``): the MOS the
    switch gave or the E-model's estimate, jitter, loss, round trip and packets; ``measured`` false for a
    leg that received no media (its figures are the switch's defaults)."""
    quality = metadata.get(QUALITY)
    raw_legs = quality.get("legs") if isinstance(quality, Mapping) else None
    if not isinstance(raw_legs, Sequence) or isinstance(raw_legs, str):
        return {}
    figures: dict[str, dict[str, Any]] = {}
    for raw in raw_legs:
        if not isinstance(raw, Mapping):
            continue
        leg = leg_from_json(raw)
        measured = leg.measured
        figures[leg.leg] = {
            "measured": measured,
            "mos": round(leg.effective_mos(), 2) if measured else None,
            "jitter_ms": _rounded(leg.jitter_ms) if measured else None,
            "packet_loss_pct": _rounded(leg.packet_loss_pct) if measured else None,
            "rtt_ms": _rounded(leg.rtt_ms) if measured else None,
            "packets": leg.packets,
        }
    return figures

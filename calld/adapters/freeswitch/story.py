"""What FreeSWITCH events tell of a call beyond its status (pure functions of one event's fields)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from calld.domain.hangup import HangupBy
from calld.domain.quality import LegQuality, quality_metadata
from calld.domain.recording import DURATION, FILE_SIZE

# CHANNEL_HANGUP_COMPLETE fields ``end_story`` reads (the mapper keeps them for each leg).
STORY_HANGUP_FIELDS = (
    "variable_sip_hangup_disposition",
    "variable_hangup_cause_q850",
    "variable_sip_term_status",
)
# The received-media statistics on each leg's CHANNEL_HANGUP_COMPLETE (not on CHANNEL_HANGUP) that
# ``leg_quality`` reads.
QUALITY_HANGUP_FIELDS = (
    "Unique-ID",
    "variable_rtp_audio_in_mos",
    "variable_rtp_audio_in_media_packet_count",
    "variable_rtp_audio_in_jitter_max_variance",
    "variable_rtp_audio_in_jitter_loss_rate",
)

# variable_record_* are channel variables: they stay set after a recording stops, so a later
# RECORD_START (and a RECORD_STOP that did not update them) carries an earlier recording's figures.
# A stop's figures are taken only when its length fits in the time the recording ran.
_SLACK_SECONDS = 1.0


def recording_figures(event: Mapping[str, str], started_at: datetime | None, stopped_at: datetime) -> dict[str, Any]:
    """The size and length of the file a ``RECORD_STOP`` closed (metadata of ``recording_stopped``), from
    ``variable_record_ms`` and ``variable_record_file_size``; nothing when they cannot be this
    recording's (longer than the recording ran). ``Record-Completion-Cause`` is not used: it is unreliable."""
    try:
        length_ms = int(event.get("variable_record_ms", ""))
    except ValueError:
        return {}
    if length_ms < 0:
        return {}
    if started_at is not None and length_ms / 1000 > (stopped_at - started_at).total_seconds() + _SLACK_SECONDS:
        return {}
    figures: dict[str, Any] = {DURATION: length_ms / 1000}
    try:
        size = int(event.get("variable_record_file_size", ""))
    except ValueError:
        return figures
    if size >= 0:
        figures[FILE_SIZE] = size
    return figures


def end_story(
    caller_leg: Mapping[str, str] | None, other_legs: Sequence[Mapping[str, str]], cause: str, answered: bool
) -> dict[str, Any]:
    """Who ended the call and the raw codes, from the legs' CHANNEL_HANGUP_COMPLETE fields (the caller's
    leg: the call's first; ``cause``: the FreeSWITCH cause name the call ended with).

    ``variable_sip_hangup_disposition`` says which side of each leg ended it: ``recv_bye``,
    ``recv_cancel``, ``recv_refuse`` (the phone on that leg hung up, cancelled or refused) against
    ``send_*`` (FreeSWITCH ended the leg: the other side went, or the dialplan or a timeout did).
    """
    legs = [leg for leg in (caller_leg, *other_legs) if leg]
    story: dict[str, Any] = {}
    if caller_leg and caller_leg.get("variable_sip_hangup_disposition", "").startswith("recv_"):
        story["hangup_by"] = HangupBy.CALLER.value
    elif any(leg.get("variable_sip_hangup_disposition", "").startswith("recv_") for leg in other_legs):
        story["hangup_by"] = HangupBy.CALLEE.value
    elif any(leg.get("variable_sip_hangup_disposition") for leg in legs):
        story["hangup_by"] = HangupBy.SWITCH.value
    # The raw Q.850 code of the leg that ended with the call's cause.
    code = next((leg.get("variable_hangup_cause_q850", "") for leg in legs if leg.get("Hangup-Cause") == cause), "")
    if code.isdigit():
        story["hangup_cause_q850"] = int(code)
    failures = [leg.get("variable_sip_invite_failure_status", "") for leg in legs]
    # An answered call's final status is its talking legs' (not the 487 of ring group phones that lost).
    finals = [leg.get("variable_sip_term_status", "") for leg in legs if leg.get("Hangup-Cause") != "LOSE_RACE"]
    statuses = [*finals, *failures] if answered else [*failures, *finals]
    status = next((value for value in statuses if value.isdigit()), None)
    if status is not None:
        story["sip_status"] = int(status)
    return story


def _float(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def leg_quality(hangup: Mapping[str, str]) -> LegQuality | None:
    """What FreeSWITCH measured on the media one leg received (its CHANNEL_HANGUP_COMPLETE), None for
    a leg without RTP statistics (never had media). ``mos``: ``variable_rtp_audio_in_mos``;
    ``packet_loss_pct``: ``_jitter_loss_rate`` (its lost / received packets) times 100; ``jitter_ms``: the
    square root of ``_jitter_max_variance``, the largest variance (ms²) of the packets' inter-arrival
    time FreeSWITCH saw, i.e. its worst standard deviation in milliseconds. No RTT: FreeSWITCH reports
    none at hangup. A leg with no media packets keeps ``packets: 0`` (its 4.50 is no measurement)."""
    packets = hangup.get("variable_rtp_audio_in_media_packet_count", "")
    if not packets.isdigit():
        return None
    variance = _float(hangup.get("variable_rtp_audio_in_jitter_max_variance", ""))
    loss_rate = _float(hangup.get("variable_rtp_audio_in_jitter_loss_rate", ""))
    return LegQuality(
        leg=hangup.get("Unique-ID", ""),
        mos=_float(hangup.get("variable_rtp_audio_in_mos", "")),
        jitter_ms=round(math.sqrt(variance), 2) if variance is not None else None,
        packet_loss_pct=round(loss_rate * 100, 2) if loss_rate is not None else None,
        packets=int(packets),
    )


def call_quality(caller_leg: Mapping[str, str] | None, other_legs: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """``{"quality": …}`` for the call's ended event: every leg's figures (``calld.domain.quality``
    picks the worst measured leg)."""
    legs = [quality for leg in (caller_leg, *other_legs) if leg and (quality := leg_quality(leg)) is not None]
    return quality_metadata("freeswitch", legs)

"""What FreeSWITCH events tell of a call beyond its status (pure functions of one event's fields)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from calld.domain.hangup import HangupBy
from calld.domain.recording import DURATION, FILE_SIZE

# CHANNEL_HANGUP_COMPLETE fields ``end_story`` reads (the mapper keeps them for each leg).
STORY_HANGUP_FIELDS = (
    "variable_sip_hangup_disposition",
    "variable_hangup_cause_q850",
    "variable_sip_term_status",
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

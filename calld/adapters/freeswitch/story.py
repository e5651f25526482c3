"""What FreeSWITCH events tell of a call beyond its status (pure functions of one event's fields)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from calld.domain.recording import DURATION, FILE_SIZE

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

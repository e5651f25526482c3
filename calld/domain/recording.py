"""How a recording ends: what its row says once the switch stopped writing it (pure).

A stop reported by the switch may carry the file's size and length (FreeSWITCH ``RECORD_STOP``);
calld running beside the switch may see the file itself; otherwise only the recording's start and
stop times are known. A recording whose file is known (a size from the switch or the disk) is
``completed``; one known only by its times stays ``processing`` until the recording system's
webhook completes it, with its length taken from the times meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from calld.domain.vocabulary import CallStatus, EventType, RecordingStatus

# Metadata of a recording_stopped event that carries what the switch says of the file.
FILE_SIZE = "file_size"
DURATION = "duration_seconds"
# Metadata of the recording_stopped calld stores itself when a call ends while recording.
ENDED_WITH_CALL = {"reason": "call_ended"}


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What the file on disk says: its size, and its length where the format tells it."""

    size: int
    duration_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class FinishedRecording:
    """The columns of a recording row once its recording stopped."""

    status: RecordingStatus
    file_size: int | None
    duration_seconds: float | None


def finished_recording(
    reported: Mapping[str, Any], disk: FileFacts | None, started_at: datetime | None, stopped_at: datetime
) -> FinishedRecording:
    """The row of a recording that stopped at ``stopped_at``: the switch's figures first (``reported``:
    the stop event's metadata), then the file's, then the time between start and stop for its length."""
    size = _count(reported.get(FILE_SIZE))
    duration = _seconds(reported.get(DURATION))
    if disk is not None:
        size = size if size is not None else disk.size
        duration = duration if duration is not None else disk.duration_seconds
    if duration is None and started_at is not None and stopped_at >= started_at:
        duration = round((stopped_at - started_at).total_seconds(), 3)
    status = RecordingStatus.COMPLETED if size is not None else RecordingStatus.PROCESSING
    return FinishedRecording(status, size, duration)


def implied_events(status: CallStatus, event_type: EventType) -> tuple[tuple[EventType, dict[str, Any]], ...]:
    """Events ``event_type`` implies first: a call that ends or fails while recording stops its
    recording (neither switch reports that stop: Asterisk sends no MixMonitorStop at hangup, and an
    API end_call or a provider's webhook says only that the call ended). A call on hold or being
    transferred while recording cannot take recording_stopped: its row still completes at the end."""
    if status is CallStatus.RECORDING and event_type in (EventType.ENDED, EventType.FAILED):
        return ((EventType.RECORDING_STOPPED, dict(ENDED_WITH_CALL)),)
    return ()


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value)


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)

"""Recordings a SIP provider reports (its own files, at its own URLs), kept as the call's recordings."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from calld.domain.vocabulary import RecordingStatus
from calld.providers.model import RecordingReport
from calld.storage.models import CallRecording

# How far a recording has come; a report never moves it back (providers deliver out of order).
_PROGRESS = {
    RecordingStatus.PENDING: 0,
    RecordingStatus.RECORDING: 1,
    RecordingStatus.PROCESSING: 2,
    RecordingStatus.COMPLETED: 3,
    RecordingStatus.FAILED: 3,
    RecordingStatus.DELETED: 4,
}


async def keep_provider_recording(session: AsyncSession, call_id: uuid.UUID, report: RecordingReport) -> CallRecording:
    """The call's recording at ``report.url`` (else its newest one without a URL, as calld's own
    recording_started made it), created if none, updated with what the provider reported."""
    stmt = sa.select(CallRecording).where(CallRecording.call_id == call_id).with_for_update()
    recording = None
    if report.url is not None:
        recording = (await session.execute(stmt.where(CallRecording.external_url == report.url))).scalars().first()
    if recording is None:
        open_rows = stmt.where(
            CallRecording.external_url.is_(None),
            CallRecording.status.in_([RecordingStatus.PENDING, RecordingStatus.RECORDING, RecordingStatus.PROCESSING]),
        )
        newest = open_rows.order_by(CallRecording.created_at.desc(), CallRecording.id.desc()).limit(1)
        recording = (await session.execute(newest)).scalars().first()
    if recording is None:
        recording = CallRecording(id=uuid.uuid4(), call_id=call_id, status=report.status)
        session.add(recording)
    elif _PROGRESS[report.status] > _PROGRESS[RecordingStatus(recording.status)]:
        recording.status = report.status
    if report.url is not None:
        recording.external_url = report.url
    if report.duration_seconds is not None:
        recording.duration_seconds = report.duration_seconds
    if report.format is not None and recording.format is None:
        recording.format = report.format
    await session.flush()
    return recording

"""Recording media: serving a recording's file and deleting recordings, one or by filter.

calld serves and removes files only inside the configured recording directories
(``[recordings] directories``, by default the switch's ``recording_directory``): a row's
``local_path`` is resolved (symlinks followed, ``..`` folded) and refused unless the real path lies
inside one of those directories, also resolved, so neither a stored path nor a symlink in the
directory can reach other files. A recording whose file is elsewhere is redirected to its
``file_url``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from calld.domain.call_filter import CallFilter
from calld.domain.errors import Conflict, NotFound
from calld.domain.vocabulary import RecordingStatus
from calld.service.views import recording_json
from calld.storage import call_queries as q
from calld.storage.database import Database
from calld.storage.models import CallLog, CallRecording

WHAT = "recording"
# Content types by format (the row's format, else the file's extension). An .opus file is Ogg Opus.
CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "oga": "audio/ogg",
    "opus": 'audio/ogg; codecs="opus"',
}
FALLBACK_TYPE = "application/octet-stream"
# Being written: its file is not finished, so it is neither served as complete nor removed.
ACTIVE = (RecordingStatus.PENDING, RecordingStatus.RECORDING)
BULK_BATCH = 200


def content_type(fmt: str | None, path: str | os.PathLike[str]) -> str:
    """The Content-Type of a recording stored as ``fmt`` at ``path``."""
    key = (fmt or "").lower().lstrip(".") or Path(path).suffix.lower().lstrip(".")
    return CONTENT_TYPES.get(key, FALLBACK_TYPE)


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A recording's file on this host, inside a recording directory."""

    path: Path
    content_type: str


@dataclass(frozen=True, slots=True)
class Elsewhere:
    """A recording that lives at ``url`` (a recording server, a provider)."""

    url: str


class RecordingFiles:
    """The recording-media use cases over ``directories`` (the configured recording directories)."""

    def __init__(self, db: Database, directories: Sequence[str], switch_directory: str | None = None) -> None:
        """``switch_directory``: where the switch writes recordings on its own host; a stored path
        under it is looked for at the same place under each of ``directories`` (a mount of it, or a
        chroot's view of it), as well as where it says."""
        self.db = db
        self.directories = tuple(directories)
        self.switch_directory = switch_directory

    def _roots(self) -> list[Path]:
        return [Path(d).resolve() for d in self.directories if d]

    def inside(self, local_path: str | None) -> Path | None:
        """``local_path`` resolved, if it lies inside a recording directory (a relative path is taken
        in each directory in turn); None otherwise."""
        if not local_path or "\x00" in local_path:
            return None
        roots = self._roots()
        if os.path.isabs(local_path):
            candidates = [Path(local_path)]
            if self.switch_directory and Path(local_path).is_relative_to(self.switch_directory):
                below = Path(local_path).relative_to(self.switch_directory)
                candidates += [root / below for root in roots]
        else:
            candidates = [root / local_path for root in roots]
        for candidate in candidates:
            real = candidate.resolve()
            if any(real.is_relative_to(root) and real != root for root in roots):
                return real
        return None

    async def media(self, call_id: uuid.UUID, recording_id: uuid.UUID) -> LocalFile | Elsewhere:
        """Where the recording's media is: a file here, or a URL elsewhere; NotFound when neither."""
        rec = await self._recording(call_id, recording_id)
        if rec.status is RecordingStatus.DELETED:
            raise NotFound(WHAT, "recording_id", f"{recording_id} (it was deleted)")
        path = self.inside(rec.local_path)
        if path is not None and path.is_file():
            return LocalFile(path, content_type(rec.format, path))
        if rec.external_url:
            return Elsewhere(rec.external_url)
        raise NotFound(f"{WHAT} file", "recording_id", f"{recording_id} on this host")

    async def _recording(self, call_id: uuid.UUID, recording_id: uuid.UUID) -> CallRecording:
        async with self.db.read() as session:
            rec = await session.get(CallRecording, recording_id)
        if rec is None or rec.call_id != call_id:
            raise NotFound(WHAT, "recording_id", recording_id)
        return rec

    async def delete(self, call_id: uuid.UUID, recording_id: uuid.UUID) -> dict[str, Any]:
        """Remove the recording's file and mark it deleted; the recording as the API shows it now,
        with ``file`` saying what became of the file."""
        async with self.db.write() as session:
            rec = await session.get(CallRecording, recording_id, with_for_update=True)
            if rec is None or rec.call_id != call_id:
                raise NotFound(WHAT, "recording_id", recording_id)
            if rec.status in ACTIVE:
                raise Conflict(
                    "recording_active",
                    "the recording is still being written",
                    {"recording_id": f"it is {rec.status.value}: stop the recording first"},
                )
            outcome = self._remove(rec)
            await session.flush()
            return {**recording_json(rec), "file": outcome}

    async def delete_of_call(self, session: AsyncSession, call_id: uuid.UUID) -> dict[str, int]:
        """In ``session``'s transaction (the call's deletion): remove the files of every recording of
        the call, one still being written included (the call is going: nothing will serve it), and
        mark the rows deleted. Counts by what became of each file; a file that cannot be removed
        raises, so the call stays as it was."""
        counts = dict.fromkeys(("recordings", "removed", "missing", "outside", "none", "already_deleted"), 0)
        stmt = sa.select(CallRecording).where(CallRecording.call_id == call_id).with_for_update()
        for rec in (await session.execute(stmt)).scalars():
            counts[self._remove(rec)] += 1
            counts["recordings"] += 1
        return counts

    def _remove(self, rec: CallRecording) -> str:
        """Delete ``rec``'s file (if it is ours) and mark the row deleted. What became of the file:
        ``removed``, ``missing`` (no file here), ``outside`` (not in a recording directory: kept) or
        ``none`` (the row names no local file). A file that cannot be removed raises, so the row
        (in the caller's transaction) stays as it was."""
        outcome = "none"
        if rec.status is not RecordingStatus.DELETED and rec.local_path:
            path = self.inside(rec.local_path)
            if path is None:
                outcome = "outside"
            else:
                try:
                    path.unlink()
                    outcome = "removed"
                except FileNotFoundError:
                    outcome = "missing"
                except OSError as exc:
                    raise Conflict(
                        "recording_file_kept",
                        "the recording's file could not be removed",
                        {"recording_id": f"{path}: {exc.strerror or exc}"},
                    ) from exc
        elif rec.status is RecordingStatus.DELETED:
            outcome = "already_deleted"
        rec.status = RecordingStatus.DELETED
        # What was said in it goes with the file.
        rec.transcript = None
        rec.transcript_confidence = None
        return outcome

    async def delete_matching(self, flt: CallFilter, *, limit: int | None = None) -> dict[str, int]:
        """Delete the recordings (not deleted, not being written) of the calls ``flt`` selects, in
        transactions of ``BULK_BATCH``; at most ``limit`` of them. Counts by what became of each file."""
        counts = dict.fromkeys(("recordings", "removed", "missing", "outside", "none"), 0)
        while limit is None or counts["recordings"] < limit:
            size = BULK_BATCH if limit is None else min(BULK_BATCH, limit - counts["recordings"])
            async with self.db.write() as session:
                batch = await _matching(session, flt, size)
                for rec in batch:
                    counts[self._remove(rec)] += 1
                counts["recordings"] += len(batch)
            if len(batch) < size:
                break
        return counts

    async def count_matching(self, flt: CallFilter) -> int:
        """How many recordings ``delete_matching`` would delete."""
        async with self.db.read() as session:
            return int((await session.execute(_deletable(flt, session, sa.func.count()))).scalar_one())


def _deletable(flt: CallFilter, session: AsyncSession, *columns: Any) -> sa.Select[Any]:
    dialect = session.get_bind().dialect.name
    calls = sa.select(CallLog.id).where(*q.conditions(flt, dialect))
    return sa.select(*columns).where(
        CallRecording.call_id.in_(calls),
        CallRecording.status.not_in((*ACTIVE, RecordingStatus.DELETED)),
    )


async def _matching(session: AsyncSession, flt: CallFilter, size: int) -> list[CallRecording]:
    stmt = _deletable(flt, session, CallRecording).order_by(CallRecording.created_at, CallRecording.id).limit(size)
    return list((await session.execute(stmt.with_for_update())).scalars())

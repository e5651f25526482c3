"""A first-in first-out overflow of switch events on local disk.

When the ingest queue in memory is full (the database is down or slow), events go to this file
instead of being dropped or stalling the switch connection; they are stored from it, in order,
once the database keeps up again. The file survives a crash or kill of calld: what is in it is
stored after the restart.

Format: one JSON object per line, appended; a small ``.offset`` file beside it records how many
bytes have been stored (written after each stored batch, so at worst a batch is read again after a
crash, and its events' keys make the second storing a no-op). When everything is read, both are
emptied. Writes reach the operating system at once (a killed calld loses nothing); they are synced
to the disk when calld stops, so only a power cut can lose the most recent ones.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from calld.domain.events import CallParties, SwitchEvent
from calld.domain.vocabulary import CallDirection, CallType, EventType
from calld.files import private_opener


def encode_event(event: SwitchEvent) -> bytes:
    """One line of the spill file."""
    parties = event.parties
    record: dict[str, Any] = {
        "call_ref": event.call_ref,
        "event_type": event.event_type.value,
        "timestamp": event.timestamp.isoformat(),
        "key": event.key,
        "metadata": dict(event.metadata),
        "calld_call_id": event.calld_call_id,
        "parties": None
        if parties is None
        else {
            "direction": parties.direction.value,
            "caller_number": parties.caller_number,
            "recipient_number": parties.recipient_number,
            "call_type": parties.call_type.value,
            "sip_call_id": parties.sip_call_id,
        },
    }
    return json.dumps(record, separators=(",", ":"), default=str).encode() + b"\n"


def decode_event(line: bytes) -> SwitchEvent:
    record = json.loads(line)
    parties = record["parties"]
    return SwitchEvent(
        call_ref=record["call_ref"],
        event_type=EventType(record["event_type"]),
        timestamp=datetime.fromisoformat(record["timestamp"]),
        key=record["key"],
        metadata=record["metadata"],
        calld_call_id=record["calld_call_id"],
        parties=None
        if parties is None
        else CallParties(
            direction=CallDirection(parties["direction"]),
            caller_number=parties["caller_number"],
            recipient_number=parties["recipient_number"],
            call_type=CallType(parties["call_type"]),
            sip_call_id=parties["sip_call_id"],
        ),
    )


class SpillFile:
    """Switch events waiting on disk, oldest first."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._offset_path = path.with_name(path.name + ".offset")
        self._file: BinaryIO | None = None  # opened when first needed; none while empty
        self._size = self._read_at = 0
        self.spilled = 0  # events written here (since start)
        self.waiting = 0  # events not yet stored
        self.unreadable = 0  # lines that did not decode (skipped)
        if path.exists():  # left by a previous run: stored first
            self._open()
            self._size = self._drop_torn_tail()
            self._read_at = min(self._stored_offset(), self._size)
            self.waiting = self._count_waiting()

    def _open(self) -> BinaryIO:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Call data: owner only, whatever the umask.
            self._file = open(self.path, "ab+", opener=private_opener)  # noqa: SIM115 - kept open while events wait
        return self._file

    @property
    def full(self) -> bool:
        return self._size >= self.max_bytes

    def append(self, event: SwitchEvent) -> None:
        file = self._open()
        file.seek(0, os.SEEK_END)
        data = encode_event(event)
        file.write(data)
        file.flush()
        self._size += len(data)
        self.spilled += 1
        self.waiting += 1

    def peek(self, limit: int) -> tuple[list[SwitchEvent], int, int]:
        """Up to ``limit`` oldest events, and the offset and line count to ``consume`` once they are
        stored. A line that does not decode (a disk error) is skipped and counted in ``unreadable``."""
        file = self._open()
        file.flush()
        file.seek(self._read_at)
        events: list[SwitchEvent] = []
        position = self._read_at
        lines = 0
        while lines < limit:
            line = file.readline()
            if not line.endswith(b"\n"):
                break  # end of file
            lines += 1
            position += len(line)
            try:
                events.append(decode_event(line))
            except (ValueError, KeyError, TypeError):
                self.unreadable += 1
        return events, position, lines

    def consume(self, offset: int, count: int) -> None:
        """Everything before ``offset`` (``count`` lines) is stored."""
        self._read_at = offset
        self.waiting -= count
        if self._read_at >= self._size:
            # All stored: leave nothing behind.
            self._close()
            self.path.unlink(missing_ok=True)
            self._offset_path.unlink(missing_ok=True)
            self._read_at = self._size = self.waiting = 0
            return
        temporary = self._offset_path.with_suffix(".tmp")
        with open(temporary, "w", opener=private_opener) as out:
            out.write(str(offset))
        temporary.replace(self._offset_path)

    def close(self) -> None:
        """Sync what waits to the disk (it is stored after the next start)."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._close()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _drop_torn_tail(self) -> int:
        """Cut a last line left half-written by a crash (it was never acknowledged); the size."""
        file = self._open()
        size = end = file.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - 65536)
            file.seek(start)
            newline = file.read(end - start).rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            end = start
        if end != size:
            file.truncate(end)
        return end

    def _count_waiting(self) -> int:
        file = self._open()
        file.seek(self._read_at)
        return sum(1 for _ in file)

    def _stored_offset(self) -> int:
        try:
            return int(self._offset_path.read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0

"""Where FreeSWITCH keeps its CDRs: ``mod_json_cdr`` documents in a directory (its ``err-log-dir``,
or ``log-dir``) and ``mod_cdr_csv``'s ``Master.csv``. Read in a worker thread, only the legs that
ended in the window calld missed (README: "After a fault")."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from calld.adapters.csv_tail import tail_rows
from calld.adapters.freeswitch.cdr import Leg, leg_from_json_text, legs_from_csv

# The ``mod_cdr_csv`` template the README gives (``calld`` in cdr_csv.conf): one "${var}" per column.
CDR_CSV_COLUMNS: tuple[str, ...] = (
    "uuid",
    "direction",
    "channel_name",
    "context",
    "caller_id_number",
    "caller_id_name",
    "destination_number",
    "dialed_user",
    "start_uepoch",
    "answer_uepoch",
    "end_uepoch",
    "duration",
    "billsec",
    "billmsec",
    "hangup_cause",
    "originate_disposition",
    "DIALSTATUS",
    "sip_invite_failure_status",
    "last_bridge_hangup_cause",
    "originating_leg_uuid",
    "originator",
    "other_loopback_leg_uuid",
    "loopback_leg",
    "bridge_uuid",
    "signal_bond",
    "last_bridge_to",
    "call_uuid",
    "bleg_uuid",
    "sip_call_id",
    "hold_accum_ms",
    "transfer_history",
    "transfer_source",
    "record_ms",
    "sip_hangup_disposition",
    "conference_name",
    "last_app",
    "calld_call_id",
    "origination_uuid",
    "endpoint_disposition",
    "hangup_cause_q850",
    "current_application",
    "sip_req_user",
    "rdnis",
    "origination_caller_id_number",
    "bridge_channel",
    "originate_causes",
    "sip_term_status",
    "proto_specific_hangup_cause",
    "rtp_audio_in_mos",
    "rtp_audio_in_quality_percentage",
    "rtp_audio_in_media_packet_count",
    "rtp_audio_in_skip_packet_count",
    "rtp_audio_in_jitter_max_variance",
    "rtp_audio_in_flaw_total",
    "rtp_audio_out_media_packet_count",
)


class CdrSource(Protocol):
    """FreeSWITCH's leg records of legs that ended at or after ``earliest``."""

    async def legs(self, earliest: datetime) -> list[Leg]: ...


def _ended_since(leg: Leg, earliest: datetime) -> bool:
    end = leg.get("end_uepoch", "")
    if not (end.isascii() and end.isdigit()):
        return False
    return datetime.fromtimestamp(int(end) / 1_000_000, UTC) >= earliest


class CdrCsvFile:
    """``mod_cdr_csv``'s file with the columns of ``columns`` (read backwards from its end)."""

    def __init__(self, path: str, columns: Sequence[str] = CDR_CSV_COLUMNS) -> None:
        self.path = Path(path)
        self.columns = tuple(columns)
        self._end_at = self.columns.index("end_uepoch")

    async def legs(self, earliest: datetime) -> list[Leg]:
        return await asyncio.to_thread(self._legs, earliest)

    def _legs(self, earliest: datetime) -> list[Leg]:
        rows = tail_rows(self.path, earliest, self._row_time)
        return [leg for leg in legs_from_csv(rows, self.columns) if _ended_since(leg, earliest)]

    def _row_time(self, values: Sequence[str]) -> datetime | None:
        end = values[self._end_at] if len(values) > self._end_at else ""
        return datetime.fromtimestamp(int(end) / 1_000_000, UTC) if end.isascii() and end.isdigit() else None


class CdrJsonDirectory:
    """A directory of ``mod_json_cdr`` documents (``<uuid>.cdr.json``, one leg each)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    async def legs(self, earliest: datetime) -> list[Leg]:
        return await asyncio.to_thread(self._legs, earliest)

    def _legs(self, earliest: datetime) -> list[Leg]:
        if not self.path.is_dir():
            return []
        found: list[Leg] = []
        cutoff = earliest.timestamp()
        for file in self.path.iterdir():
            if not file.name.endswith(".json"):
                continue
            try:
                if file.stat().st_mtime < cutoff:
                    continue  # written when the leg ended: older than the window
                leg = leg_from_json_text(file.read_bytes())
            except (OSError, ValueError):
                continue  # half-written or foreign file: the next recovery reads it again
            if _ended_since(leg, earliest):
                found.append(leg)
        return found


def cdr_sources(csv_path: str, json_directories: Sequence[str]) -> list[CdrSource]:
    """The CDR stores configured (``[freeswitch] cdr_csv`` / ``cdr_json_directories``)."""
    sources: list[CdrSource] = [CdrJsonDirectory(path) for path in json_directories]
    if csv_path:
        sources.append(CdrCsvFile(csv_path))
    return sources

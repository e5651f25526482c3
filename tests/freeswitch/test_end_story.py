"""Why each recorded FreeSWITCH call ended, who ended it and why a missed call was missed, from the
real captures, checked against the FreeSWITCH CDR recorded beside each capture; then end to end
through storage and the API's fields and list filters."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import sqlalchemy as sa

from calld.domain.hangup import end_columns
from calld.domain.vocabulary import CallStatus, EventType
from calld.storage.database import Database
from calld.storage.models import CallLog
from tests.conftest import AppClient
from tests.fakes.esl_capture import CAPTURE_DIR
from tests.ingest.test_switch_ingest import ingest_all, mapped
from tests.support import SettableClock

CDR_DIR = CAPTURE_DIR / "cdr"
FIELDS = (CDR_DIR / "cdr_csv_fields.txt").read_text().split()

# capture -> (status, hangup_cause, hangup_by, missed_reason, sip_status)
EXPECTED = {
    # The caller (1000) hangs up while 1004 rings: CANCEL from the A leg (recv_cancel).
    "p_abandon": ("missed", "originator_cancel", "caller", "abandoned", 487),
    # 1004 rings until call_timeout: FreeSWITCH cancels the B leg (send_cancel), refuses A (send_refuse).
    "p2_call_timeout": ("no_answer", "no_answer", "switch", "no_answer", 487),
    "p4_trunk_missed": ("no_answer", "no_answer", "switch", "no_answer", 487),
    # Three phones ring, one answers (the others LOSE_RACE), the caller hangs up (recv_bye on A).
    "o_ring_group": ("ended", "normal_clearing", "caller", None, 200),
    "o2_hunt": ("ended", "normal_clearing", "caller", None, 200),
    # The outside caller hangs up after 3 s.
    "p3_trunk_answered": ("ended", "normal_clearing", "caller", None, 200),
    # calld's originate; the far phone 1001 hangs up (recv_bye on the B leg).
    "l_calld_originate": ("ended", "normal_clearing", "callee", None, 200),
}


def cdr_rows(capture: str) -> dict[str, dict[str, str]]:
    with (CDR_DIR / f"{capture}.cdr.csv").open(newline="") as handle:
        return {row[0]: dict(zip(FIELDS, row, strict=False)) for row in csv.reader(handle)}


@pytest.mark.parametrize("capture", sorted(EXPECTED))
def test_the_end_story_agrees_with_the_cdr(capture: str) -> None:
    [end] = [e for e in mapped(capture) if e.event_type in (EventType.ENDED, EventType.FAILED)]
    status = CallStatus(end.metadata.get("outcome", "failed"))
    columns = end_columns(end.event_type, end.metadata, status)
    story = (status.value, columns["hangup_cause"], columns["hangup_by"], columns["missed_reason"])
    assert (*story, columns["sip_status"]) == EXPECTED[capture]
    rows = cdr_rows(capture)
    caller_leg = rows[end.call_ref]
    others = [row for uuid, row in rows.items() if uuid != end.call_ref]
    # hangup_by: the leg whose phone sent the BYE / CANCEL / refusal, as the CDR's disposition says.
    received = "caller" if caller_leg["sip_hangup_disposition"].startswith("recv_") else None
    if received is None and any(row["sip_hangup_disposition"].startswith("recv_") for row in others):
        received = "callee"
    assert columns["hangup_by"] == (received or "switch")
    # The raw Q.850 code is the CDR's, of a leg that ended with the call's cause.
    causes = {(row["hangup_cause"], row["hangup_cause_q850"]) for row in rows.values()}
    assert any(int(code) == columns["hangup_cause_q850"] for _name, code in causes if code.isdigit())
    # The SIP status is one the CDR recorded (a failure status, or a final one).
    statuses = {row[key] for row in rows.values() for key in ("sip_invite_failure_status", "sip_term_status")}
    assert str(columns["sip_status"]) in statuses
    if capture.startswith("o_"):
        assert sorted(row["hangup_cause"] for row in others).count("LOSE_RACE") == 2


async def test_the_story_is_stored_listed_and_filtered(db: Database, clock: SettableClock, api: AppClient) -> None:
    for capture in ("p_abandon", "p2_call_timeout", "l_calld_originate"):
        await ingest_all(db, mapped(capture), clock)
    page = await (await api.get("/api/call-logs/")).json()
    story = {
        (c["status"], c["hangup_cause"], c["hangup_by"], c["missed_reason"], c["sip_status"], c["hangup_cause_q850"])
        for c in page["results"]
    }
    assert story == {
        ("missed", "originator_cancel", "caller", "abandoned", 487, 16),
        ("no_answer", "no_answer", "switch", "no_answer", 487, 19),
        ("ended", "normal_clearing", "callee", None, 200, 16),
    }

    async def listed(query: str) -> list[str]:
        response = await api.get(f"/api/call-logs/?{query}")
        assert response.status == 200, await response.text()
        return sorted(c["status"] for c in (await response.json())["results"])

    assert await listed("missed_reason=abandoned") == ["missed"]
    assert await listed("missed_reason=abandoned,no_answer") == ["missed", "no_answer"]
    assert await listed("hangup_by=callee") == ["ended"]
    assert await listed("hangup_cause=no_answer&hangup_by=switch") == ["no_answer"]
    bad = await api.get("/api/call-logs/?hangup_by=nobody")
    assert bad.status == 422 and "hangup_by" in (await bad.json())["detail"]
    async with db.read() as s:
        assert (await s.execute(sa.select(sa.func.count()).select_from(CallLog))).scalar_one() == 3


def test_the_captures_are_here() -> None:
    for capture in EXPECTED:
        assert Path(CAPTURE_DIR / f"{capture}.esl").exists(), capture

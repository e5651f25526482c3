"""Live: calls that come and go while calld is not running are recovered from Asterisk's CEL.

The lab Asterisk writes CEL to a cel_custom CSV file and a cel_sqlite3_custom table (lab/asterisk/
etc/cel*.conf). calld stops, phones call while it is away, calld starts again with one of those
CEL stores configured: every call Asterisk recorded is in calld, once, with the status and the
answer-to-end span the CEL rows give. The comparison table is printed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from calld.adapters.asterisk.cel import parse_eventtime
from calld.adapters.asterisk.cel_source import CelSqliteTable
from calld.storage.database import Database
from tests.asterisk.live import LAB_DIR, Live, live_daemon

pytestmark = pytest.mark.asterisk

CEL_CSV = LAB_DIR / "var/log/asterisk/cel-custom/calld.csv"
CEL_SQLITE = LAB_DIR / "var/log/asterisk/master.db"
STORES = {"cel_csv": str(CEL_CSV), "cel_sqlite": str(CEL_SQLITE)}


def phones_only() -> Live:
    """sipp phones without a calld: the calls happen while calld is down."""
    return Live(daemon=cast(Any, None), http=cast(Any, None))


async def cel_truth(callers: set[str]) -> dict[str, dict[str, Any]]:
    """Per caller, its latest call in CEL (one Linkedid): first ANSWER and LINKEDID_END times."""
    rows = await CelSqliteTable(str(CEL_SQLITE), lookback=timedelta(days=1)).rows(datetime(2000, 1, 1, tzinfo=UTC))
    latest: dict[str, str] = {}
    for row in rows:
        if row["eventtype"] == "CHAN_START" and row["uniqueid"] == row["linkedid"] and row["cid_num"] in callers:
            latest[row["cid_num"]] = row["linkedid"]
    truth: dict[str, dict[str, Any]] = {caller: {"answer": None, "end": None} for caller in latest}
    by_ref = {ref: caller for caller, ref in latest.items()}
    for row in rows:
        caller = by_ref.get(row["linkedid"])
        if caller is None:
            continue
        at = parse_eventtime(row["eventtime"])
        if row["eventtype"] == "ANSWER" and truth[caller]["answer"] is None:
            truth[caller]["answer"] = at
        if row["eventtype"] == "LINKEDID_END":
            truth[caller]["end"] = at
    return truth


@pytest.mark.parametrize("store", ["cel_csv", "cel_sqlite"])
async def test_calls_made_while_calld_was_down_are_recovered_from_cel(db: Database, store: str) -> None:
    settings = {store: STORES[store]}
    async with live_daemon(db, **settings) as live:
        await live.answers("1002", "answer")
        await live.dials("1001", "1002", "call", talk_ms=500)
        before = await live.call_from("1001")
        await live.call_reaches(before["id"], "ended")
    # calld is stopped: three calls come and go (answered, busy, answered and longer).
    phones = phones_only()
    await phones.answers("1004", "answer")
    await phones.answers("1006", "busy")
    await phones.answers("1008", "answer")
    await phones.dials("1003", "1004", "call", talk_ms=1500)
    await phones.dials("1005", "1006", "fail")
    await phones.dials("1007", "1008", "call", talk_ms=2500)
    assert await phones.phones_done(30) == [0] * 6
    await asyncio.sleep(0.5)  # CEL rows are written as the channels go away

    async with live_daemon(db, fresh=False, **settings) as live:
        found = await _until_calls(live, 4, since=before["started_at"])
        details = {c["caller_number"]: await live.call(c["id"]) for c in found}
    # The earlier call and the three, each once (the lab's CEL also holds earlier tests' calls,
    # which a fresh test database gets too: they are older than this test's first call).
    assert sorted(c["caller_number"] for c in found) == ["1001", "1003", "1005", "1007"]
    missed = {phone: details[phone] for phone in ("1003", "1005", "1007")}
    truth = await cel_truth(set(missed))
    table = ["caller  status   calld span  CEL answer-to-end"]
    spans: dict[str, float | None] = {}
    for phone, detail in missed.items():
        cel = truth.get(phone, {})
        spans[phone] = (cel["end"] - cel["answer"]).total_seconds() if cel.get("answer") and cel.get("end") else None
        table.append(f"{phone}    {detail['status']:8} {detail['duration_seconds']!s:11} {spans[phone]}")
    print("\n".join(table))
    assert missed["1003"]["status"] == "ended" and missed["1007"]["status"] == "ended"
    assert missed["1005"]["status"] == "busy" and missed["1005"]["answered_at"] is None
    for phone in ("1003", "1007"):
        assert missed[phone]["events"][-1]["metadata"]["recovered_from"] == "cel"
        assert missed[phone]["events"][-1]["metadata"]["ended_while_calld_was_down"] is True
        span = spans[phone]
        assert span is not None and abs(missed[phone]["duration_seconds"] - span) < 1.0


async def _until_calls(live: Live, count: int, since: str, within: float = 15.0) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = [c for c in await live.calls() if _at(c["started_at"]) >= _at(since)]
        if len(found) >= count and all(c["ended_at"] for c in found):
            return found
        if loop.time() > deadline:
            raise AssertionError(f"{len(found)} calls, wanted {count} ended: {found}")
        await asyncio.sleep(0.1)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))

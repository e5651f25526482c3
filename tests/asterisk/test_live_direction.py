"""Live: internal calls on the lab Asterisk. With the phones' context (``lab-inbound``) configured as the
context users dial from, a phone dialling another phone (1001 → 1002) is internal and a phone dialling a
service of the dialplan outside ``internal_extensions`` (9000) is outbound; Asterisk's CEL agrees on what
calld decided from (the caller's channel entered that context dialling that extension, and the call's
other channel is the local endpoint PJSIP/1002)."""

from __future__ import annotations

import csv

import pytest

from calld.storage.database import Database
from tests.asterisk.live import LAB_DIR, event_types, live_daemon

pytestmark = pytest.mark.asterisk

CEL_CSV = LAB_DIR / "var/log/asterisk/cel-custom/calld.csv"
# What this PBX's admin would write: the phones dial from lab-inbound, its phones are 1000-1009.
PHONES_DIAL_OUT = {"inbound_contexts": (), "outbound_contexts": ("lab-inbound", "lab-outbound")}


async def test_phone_to_phone_is_internal_and_cel_agrees(db: Database) -> None:
    async with live_daemon(db, internal_extensions="100[0-9]", **PHONES_DIAL_OUT) as live:
        await live.answers("1002", "answer")
        await live.dials("1001", "1002", "call", talk_ms=1000)
        internal = await live.call_reaches((await live.call_from("1001"))["id"], "ended", within=15)
        await live.dials("1003", "9000", "wait_bye")  # 9000: the dialplan answers, talks 3 s, hangs up
        outbound = await live.call_reaches((await live.call_from("1003"))["id"], "ended", within=15)
        listed = await live.get("/api/call-logs/?direction=internal")
        assert await live.phones_done() == [0, 0, 0]
    assert (internal["direction"], internal["recipient_number"], internal["answered_by"]) == (
        "internal",
        "1002",
        "1002",
    )
    assert event_types(internal) == ["initiated", "ringing", "answered", "ended"]
    assert (outbound["direction"], outbound["recipient_number"]) == ("outbound", "9000")
    assert [c["id"] for c in listed["results"]] == [internal["id"]]
    with CEL_CSV.open(newline="") as handle:
        rows = list(
            csv.reader(handle)
        )  # EventType, EventTime, Name, Num, dnid, Exten, Context, ChanName, ..., LinkedID
    [*_, start] = [row for row in rows if row[0] == "CHAN_START" and row[7].startswith("PJSIP/1001-")]
    assert (start[5], start[6]) == ("1002", "lab-inbound")
    channels = {row[7].split("-")[0] for row in rows if row[11] == start[11] and row[0] == "CHAN_START"}
    assert channels == {"PJSIP/1001", "PJSIP/1002"}  # phone to phone: no trunk in the call

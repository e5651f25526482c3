"""Live: what the lab Asterisk tells of a call beyond its status (recordings ended by a hangup,
withheld callers, who ended it, how it sounded), checked against Asterisk's own files, records and CLI."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import pytest

from calld.config import CallsConfig
from calld.storage.database import Database
from tests.asterisk.live import LAB_DIR, Live, asterisk_cli, event_types, eventually, live_daemon

pytestmark = pytest.mark.asterisk

CEL_CSV = LAB_DIR / "var/log/asterisk/cel-custom/calld.csv"


async def test_a_call_hung_up_while_recording_completes_its_recording(db: Database) -> None:
    """Extension 9004 answers, starts MixMonitor and hangs up 3 s later: Asterisk sends no
    MixMonitorStop, so calld stores recording_stopped at the hangup and completes the row from the
    file it sees through calls.recordings_root (the lab's chroot)."""
    calls = CallsConfig(timezone="UTC", recordings_root=str(LAB_DIR))
    async with live_daemon(db, calls=calls) as live:
        await live.dials("1001", "9004", "wait_bye")
        call = await live.call_from("1001")
        done = await live.call_reaches(call["id"], "ended", within=15)
        assert event_types(done)[-3:] == ["recording_started", "recording_stopped", "ended"]
        stopped = done["events"][-2]
        assert stopped["metadata"] == {"reason": "call_ended"} and stopped["timestamp"] == done["ended_at"]
        recording = done["recording"]
        on_disk = LAB_DIR / Path(recording["local_path"]).relative_to("/")
        assert recording["local_path"].startswith("/var/spool/asterisk/monitor/dialplan-")
        assert on_disk.is_file() and on_disk.read_bytes()[:4] == b"RIFF"
        assert recording["status"] == "completed" and recording["stopped_at"] == done["ended_at"]
        assert 0 < recording["file_size"] <= on_disk.stat().st_size
        assert recording["duration_seconds"] is not None and recording["duration_seconds"] <= 3.5
        assert await live.phones_done() == [0]


async def test_a_withheld_caller_is_logged_and_marked(db: Database) -> None:
    """Phone 1009 (no caller ID of its own in pjsip.conf) calls as ``From: "Anonymous"
    <sip:anonymous@anonymous.invalid>``: the call is logged, its caller withheld, and Asterisk's CEL
    agrees on what was presented."""
    async with live_daemon(db) as live:
        await live.answers("1002", "answer")
        await live.dials("1009", "1002", "call_anonymous", talk_ms=1000)
        call = await live.call_from("anonymous")
        done = await live.call_reaches(call["id"], "ended", within=15)
        assert event_types(done) == ["initiated", "ringing", "answered", "ended"]
        assert (done["caller_number"], done["caller_number_raw"], done["caller_withheld"]) == (
            "anonymous",
            "anonymous",
            True,
        )
        assert (done["recipient_number"], done["direction"]) == ("1002", "inbound")
        assert await live.phones_done() == [0, 0]
    # Asterisk's own record of the call: the caller's channel started presenting "anonymous".
    started = [row for row in _cel_rows() if row[0] == "CHAN_START" and row[7].startswith("PJSIP/1009-")]
    assert started and started[-1][3] == "anonymous"


def _cel_rows() -> list[list[str]]:
    """The lab's CEL (cel_custom.conf: EventType, EventTime, Name, Num, dnid, Exten, Context, ChanName, ...)."""
    with CEL_CSV.open(newline="") as handle:
        return list(csv.reader(handle))


async def test_who_ended_each_call_and_why_the_unanswered_were_missed(db: Database) -> None:
    """Checked against Asterisk's CEL: the HANGUP record of each channel names its cause, and the
    DIALSTATUS of the caller's; calld's hangup_by / missed_reason are the story those tell."""
    async with live_daemon(db) as live:
        await live.answers("1002", "answer")
        await live.answers("1004", "noanswer")
        await live.answers("1006", "busy")
        await live.answers("1008", "noanswer")
        await live.dials("1001", "1002", "call", talk_ms=1000)  # the caller hangs up
        await live.dials("1003", "1004", "fail")  # nobody answers within Dial's 6 s
        await live.dials("1005", "1006", "fail")  # 486 Busy
        await live.dials("1007", "1008", "cancel")  # the caller gives up after 2 s
        await live.dials("1009", "9000", "wait_bye")  # Asterisk answers and hangs up after 3 s
        expected = {
            "1001": ("ended", "normal_clearing", "caller", None),
            "1003": ("no_answer", "no_answer", "switch", "no_answer"),
            "1005": ("busy", "busy", "callee", "busy"),
            "1007": ("cancelled", "originator_cancel", "caller", "abandoned"),
            "1009": ("ended", "normal_clearing", "switch", None),
        }
        for phone, (status, cause, by, missed) in expected.items():
            call = await live.call_from(phone)
            done = await live.call_reaches(call["id"], status, within=15)
            got = (done["status"], done["hangup_cause"], done["hangup_by"], done["missed_reason"])
            assert got == (status, cause, by, missed), phone
        assert await live.phones_done() == [0] * 9
        abandoned = await live.get("/api/call-logs/?missed_reason=abandoned")
        assert [c["caller_number"] for c in abandoned["results"]] == ["1007"]
        assert 1.5 <= abandoned["results"][0]["ring_seconds"] <= 3.5
    hangups = {row[7].split("-")[0]: row for row in _cel_rows() if row[0] == "HANGUP"}
    assert '"dialstatus":"BUSY"' in hangups["PJSIP/1005"][13].replace(" ", "")
    assert '"dialstatus":"NOANSWER"' in hangups["PJSIP/1003"][13].replace(" ", "")
    # CEL's hangupsource: the channel that hung up first (the caller's own, for 1001's call).
    assert '"hangupsource":"PJSIP/1001-' in hangups["PJSIP/1001"][13].replace(" ", "")


async def test_a_ring_group_says_which_phone_answered(db: Database) -> None:
    """Extension 9010 rings 1002, 1004 and 1006 at once; 1004 answers. calld's answered_by and
    participants say so, and Asterisk's CEL agrees: the one dialled channel it saw ANSWER is 1004's,
    the other two were hung up unanswered."""
    async with live_daemon(db) as live:
        await live.answers("1002", "noanswer")
        await live.answers("1004", "answer")
        await live.answers("1006", "noanswer")
        await live.dials("1001", "9010", "call", talk_ms=1000)
        call = await live.call_from("1001")
        done = await live.call_reaches(call["id"], "ended", within=20)
        assert done["answered_by"] == "1004"
        parties = {p["number"]: p for p in done["participants"]}
        assert {n: p["role"] for n, p in parties.items()} == {
            "1001": "caller",
            "1002": "callee",
            "1004": "callee",
            "1006": "callee",
        }
        assert [n for n, p in parties.items() if p["answered_at"] and p["role"] == "callee"] == ["1004"]
        assert all(p["left_at"] is not None and p["endpoint"] == f"PJSIP/{n}" for n, p in parties.items())
        listed = await live.get("/api/call-logs/?answered_by=1004")
        assert [c["id"] for c in listed["results"]] == [call["id"]]
        assert await live.phones_done() == [0, 0, 0, 0]
    rows = _cel_rows()
    [*_, caller_start] = [row for row in rows if row[0] == "CHAN_START" and row[7].startswith("PJSIP/1001-")]
    this_call = [row for row in rows if row[11] == caller_start[11]]  # by linkedid
    answered = {row[7].split("-")[0] for row in this_call if row[0] == "ANSWER"}
    assert answered == {"PJSIP/1001", "PJSIP/1004"}
    rang = {row[7].split("-")[0] for row in this_call if row[0] == "CHAN_START"}
    assert rang == {"PJSIP/1001", "PJSIP/1002", "PJSIP/1004", "PJSIP/1006"}


async def test_a_queue_says_which_agent_answered(db: Database) -> None:
    """Extension 9011 puts the caller in queue calld-support, whose members 1002 and 1004 ring
    together; 1002 answers. Both members take part as queue agents, answered_by is 1002, and Asterisk's
    CEL agrees: of the members' channels only 1002's answered."""
    async with live_daemon(db) as live:
        await live.answers("1002", "answer")
        await live.answers("1004", "noanswer")
        await live.dials("1001", "9011", "call", talk_ms=1000)
        call = await live.call_from("1001")
        done = await live.call_reaches(call["id"], "ended", within=20)
        assert done["answered_by"] == "1002"
        parties = {p["number"]: p for p in done["participants"]}
        assert {n: p["role"] for n, p in parties.items()} == {
            "1001": "caller",
            "1002": "queue_agent",
            "1004": "queue_agent",
        }
        assert [n for n, p in parties.items() if p["answered_at"] and p["role"] == "queue_agent"] == ["1002"]
        listed = await live.get("/api/call-logs/?answered_by=1002")
        assert [c["id"] for c in listed["results"]] == [call["id"]]
        assert await live.phones_done() == [0, 0, 0]
    rows = _cel_rows()
    [*_, caller_start] = [row for row in rows if row[0] == "CHAN_START" and row[7].startswith("PJSIP/1001-")]
    this_call = [row for row in rows if row[11] == caller_start[11]]  # by linkedid
    members = {"PJSIP/1002", "PJSIP/1004"}
    assert {row[7].split("-")[0] for row in this_call if row[0] == "ANSWER"} & members == {"PJSIP/1002"}
    assert {row[7].split("-")[0] for row in this_call if row[0] == "CHAN_START"} >= members


async def test_a_blind_transfer_into_a_conference_completes_there(db: Database) -> None:
    """The caller is sent to 9005 (Answer, ConfBridge): no phone answers, no two-party bridge forms,
    yet the transfer reached where it was sent: transfer_completed when the caller joins the
    conference."""
    async with live_daemon(db) as live:
        await live.answers("1002", "answer")
        await live.dials("1001", "1002", "wait_bye")
        call = await live.call_from("1001")
        await live.call_reaches(call["id"], "answered")
        await live.post(f"/api/call-logs/{call['id']}/transfer_call/", {"transfer_to": "9005"})
        await eventually(lambda: _completed(live, call["id"]), 15, "transfer into the conference completed")
        await live.post(f"/api/call-logs/{call['id']}/end_call/")
        done = await live.call_reaches(call["id"], "ended", within=15)
        assert event_types(done) == [
            "initiated", "ringing", "answered", "transfer_initiated", "transfer_completed", "ended",
        ]  # fmt: skip
        # Asterisk's conference bridge (the caller and the conference's own announcer channel) or its
        # ConfbridgeJoin completes it, whichever comes first.
        assert done["events"][4]["metadata"]["transfer_to"] == "9005"
        assert done["transfer_target"] == "9005"
        assert await live.phones_done() == [0, 0]


async def _completed(live: Live, call_id: str) -> bool | None:
    detail = await live.call(call_id)
    return True if "transfer_completed" in event_types(detail) else None


async def test_how_a_call_with_real_rtp_sounded(db: Database) -> None:
    """Phone 1001 sends a 440 Hz tone as RTP for 4 s (sipp rtp_stream), phone 1002 echoes what it gets
    (-rtp_echo): both of Asterisk's channels receive real media. Mid-call, Asterisk's own
    ``pjsip show channelstats`` counts the packets each channel received; at hangup its RTPAUDIOQOS
    gives calld the totals, the loss, jitter and round trip, and calld estimates the MOS (E-model)."""
    calls = CallsConfig(timezone="UTC", mos_threshold=4.6)  # above any MOS: the quality_change must follow
    async with live_daemon(db, calls=calls) as live:
        await live.answers("1002", "answer", rtp_echo=True)
        await live.dials("1001", "1002", "call_rtp", talk_ms=4000)
        call = await live.call_from("1001")
        await live.call_reaches(call["id"], "answered", within=10)
        await asyncio.sleep(2)
        stats = await asterisk_cli("pjsip show channelstats")
        done = await live.call_reaches(call["id"], "ended", within=20)
        assert await live.phones_done() == [0, 0]
    ended = next(e for e in done["events"] if e["event_type"] == "ended")
    legs = ended["metadata"]["quality"]["legs"]
    assert len(legs) == 2 and all(leg["leg"] for leg in legs)
    # 4 s of 20 ms packets = 200 from the caller (the echo returns about as many); on loopback none lost.
    for leg in legs:
        assert 120 <= leg["packets"] <= 260, legs
        assert leg["packet_loss_pct"] == 0.0 and 0 <= leg["jitter_ms"] < 20, legs
    mid_call = _received_mid_call(stats)
    assert len(mid_call) == 2 and all(count > 0 for count in mid_call), stats
    assert sorted(mid_call) <= sorted(leg["packets"] for leg in legs)  # it only grew until the hangup
    assert done["quality_source"] == "asterisk" and 4.3 <= done["mos"] <= 4.5
    assert done["call_quality_score"] == done["mos"] and done["call_quality_score_by"] == "mos"
    assert done["packet_loss_pct"] == 0.0
    assert event_types(done)[-2:] == ["ended", "quality_change"]
    assert done["events"][-1]["metadata"]["threshold"] == 4.6


def _received_mid_call(stats: str) -> list[int]:
    """Each channel's received-packet count from ``pjsip show channelstats`` (a row per channel:
    ... Receive Count, Lost, Pct, Jitter | Transmit ...)."""
    counts = []
    for line in stats.splitlines():
        fields = line.split()
        if len(fields) > 6 and fields[1].startswith(("1001-", "1002-")):
            counts.append(int(fields[4]))
    return counts

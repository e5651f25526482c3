"""Live: calld's REST actions drive the lab Asterisk; the switch's own events confirm each change."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from calld.storage.database import Database
from tests.asterisk.live import LAB_DIR, Live, event_types, live_daemon

pytestmark = pytest.mark.asterisk


async def _talking(live: Live, caller: str = "1001", callee: str = "1002", talk_ms: int = 0) -> dict[str, Any]:
    """``caller`` calls ``callee``, who answers; the call once calld has seen it answered.
    With ``talk_ms`` 0 the caller never hangs up by itself (the switch must end the call)."""
    await live.answers(callee, "answer")
    if talk_ms:
        await live.dials(caller, callee, "call", talk_ms=talk_ms)
    else:
        await live.dials(caller, callee, "wait_bye")
    call = await live.call_from(caller)
    return await live.call_reaches(call["id"], "answered")


async def _channels_left(live: Live) -> list[str]:
    items = await live.adapter._action("CoreShowChannels", {}, as_list=True)
    return [m.ami.get("Channel", "") for m in items if m.ami.event == "CoreShowChannel"]


async def _bridges(live: Live) -> dict[str, str]:
    """Live channel -> the bridge it is in ("" if none)."""
    items = await live.adapter._action("CoreShowChannels", {}, as_list=True)
    return {m.ami.get("Channel", ""): m.ami.get("BridgeId", "") for m in items if m.ami.event == "CoreShowChannel"}


async def test_end_call_hangs_up_on_the_switch(db: Database) -> None:
    async with live_daemon(db) as live:
        call = await _talking(live)
        await live.post(f"/api/call-logs/{call['id']}/end_call/")
        done = await live.call_reaches(call["id"], "ended")
        assert event_types(done) == ["initiated", "ringing", "answered", "ended"]
        assert done["events"][-1]["source"] == "switch"
        # Both phones got their BYE: their scenarios (which wait for it) ended well.
        assert await live.phones_done() == [0, 0]
        assert await _channels_left(live) == []


async def test_blind_transfer_sends_the_caller_to_the_target(db: Database) -> None:
    async with live_daemon(db) as live:
        await live.answers("1003", "answer")
        call = await _talking(live, talk_ms=4000)
        detail = await live.post(f"/api/call-logs/{call['id']}/transfer_call/", {"transfer_to": "1003"})
        assert detail["status"] == "answered"  # the switch's events, not the request, change it
        await live.call_reaches(call["id"], "transferred")
        done = await live.call_reaches(call["id"], "ended", within=10)
        assert event_types(done) == [
            "initiated", "ringing", "answered", "transfer_initiated", "transfer_completed", "ended",
        ]  # fmt: skip
        initiated = done["events"][3]["metadata"]
        assert (initiated["transfer_to"], initiated["kind"]) == ("1003", "blind")
        assert done["transfer_target"] == "1003"
        # 1002 was hung up by the transfer, 1001 talked to 1003 and hung up: one call log for all of it.
        assert await live.phones_done() == [0, 0, 0]
        assert len(await live.calls()) == 1


async def test_a_call_held_by_calld_is_transferred_from_hold(db: Database) -> None:
    async with live_daemon(db) as live:
        await live.answers("1003", "answer")
        call = await _talking(live, talk_ms=4000)
        await live.post(f"/api/call-logs/{call['id']}/toggle_hold/")
        await live.call_reaches(call["id"], "on_hold")
        # The held legs are in no bridge (BlindTransfer would be refused): the far party leaves its
        # music for 1003, and 1002, waiting in silence, is hung up.
        await live.post(f"/api/call-logs/{call['id']}/transfer_call/", {"transfer_to": "1003"})
        done = await live.call_reaches(call["id"], "ended", within=10)
        assert event_types(done) == [
            "initiated", "ringing", "answered", "hold", "unhold", "transfer_initiated", "transfer_completed", "ended",
        ]  # fmt: skip
        assert done["events"][5]["metadata"] == {"transfer_to": "1003", "kind": "redirect"}
        assert await live.phones_done() == [0, 0, 0]


async def test_a_restarted_calld_can_resume_a_call_it_held(db: Database) -> None:
    async with live_daemon(db) as first:
        call = await _talking(first)
        await first.post(f"/api/call-logs/{call['id']}/toggle_hold/")
        await first.call_reaches(call["id"], "on_hold")
        phones, first.phones = first.phones, []  # they outlive this calld
    async with live_daemon(db, fresh=False) as second:
        second.phones = phones
        # The resync adopted the held call: its legs in the hold context are parted by calld.
        await second.post(f"/api/call-logs/{call['id']}/toggle_hold/")
        resumed = await second.call_reaches(call["id"], "answered")
        assert event_types(resumed) == ["initiated", "ringing", "answered", "hold", "unhold"]
        await second.post(f"/api/call-logs/{call['id']}/end_call/")
        done = await second.call_reaches(call["id"], "ended")
        assert event_types(done) == ["initiated", "ringing", "answered", "hold", "unhold", "ended"]
        assert await second.phones_done() == [0, 0]


async def test_recording_starts_and_stops_and_the_file_is_on_disk(db: Database) -> None:
    async with live_daemon(db) as live:
        call = await _talking(live)
        await live.post(f"/api/call-logs/{call['id']}/start_recording/")
        recording = await live.call_reaches(call["id"], "recording")
        started = recording["events"][-1]
        assert started["event_type"] == "recording_started" and started["source"] == "switch"
        path = started["metadata"]["path"]
        assert path.startswith("/var/spool/asterisk/monitor/")  # [asterisk] recording_directory
        assert recording["recording"]["status"] == "recording"
        assert path.endswith(recording["recording"]["local_path"])
        await asyncio.sleep(0.5)
        await live.post(f"/api/call-logs/{call['id']}/stop_recording/")
        stopped = await live.call_reaches(call["id"], "answered")
        assert event_types(stopped)[-2:] == ["recording_started", "recording_stopped"]
        on_disk = LAB_DIR / path.lstrip("/")
        assert on_disk.is_file()
        data = on_disk.read_bytes()
        assert data[:4] == b"RIFF"  # a WAV file (empty audio: sipp sends no RTP)
        # calld beside the switch serves the file Asterisk wrote, byte for byte, ranges too.
        media = f"/api/call-logs/{call['id']}/recordings/{recording['recording']['id']}/media/"
        async with live.http.get(media) as whole:
            assert whole.status == 200 and whole.headers["Content-Type"] == "audio/wav"
            assert await whole.read() == data
        async with live.http.get(media, headers={"Range": "bytes=8-15"}) as part:
            assert part.status == 206 and await part.read() == data[8:16] == b"WAVEfmt "
        await live.post(f"/api/call-logs/{call['id']}/end_call/")
        await live.call_reaches(call["id"], "ended")
        assert await live.phones_done() == [0, 0]


async def test_hold_and_unhold_and_a_hangup_while_held(db: Database) -> None:
    async with live_daemon(db) as live:
        call = await _talking(live, talk_ms=4000)  # 1001 hangs up 4 s after answering
        url = f"/api/call-logs/{call['id']}/toggle_hold/"
        await live.post(url)
        held = await live.call_reaches(call["id"], "on_hold")
        assert held["events"][-1]["source"] == "switch"
        await asyncio.sleep(0.5)
        await live.post(url)
        resumed = await live.call_reaches(call["id"], "answered")
        assert 0.3 <= resumed["hold_seconds"] <= 2.0
        bridges = await _bridges(live)  # the two phones talk in one bridge again
        assert sorted(c.split("-")[0] for c in bridges) == ["PJSIP/1001", "PJSIP/1002"]
        assert len(set(bridges.values())) == 1 and "" not in bridges.values()
        await live.post(url)
        await live.call_reaches(call["id"], "on_hold")
        # 1001 hangs up while held; calld's hold left 1002 waiting in the dialplan, so it is hung up too.
        done = await live.call_reaches(call["id"], "ended", within=8)
        assert event_types(done) == ["initiated", "ringing", "answered", "hold", "unhold", "hold", "ended"]
        assert await live.phones_done() == [0, 0]
        assert await _channels_left(live) == []


async def test_initiate_call_originates_on_the_switch(db: Database) -> None:
    async with live_daemon(db) as live:
        await live.answers("1001", "answer")
        await live.answers("1002", "answer")
        body = {"recipient_number": "1002", "caller_number": "1001"}
        created = await live.post("/api/call-logs/initiate_call/", body, status=201)
        assert created["switch"] == "asterisk"
        answered = await live.call_reaches(created["id"], "answered")
        # 1001's phone rang and answered first; then the switch dialled 1002.
        assert event_types(answered) == ["initiated", "ringing", "answered"]
        assert answered["events"][0]["source"] == "api"
        assert [e["source"] for e in answered["events"][1:]] == ["switch", "switch"]
        await asyncio.sleep(1.5)  # 1002 answers after ringing 1 s
        await live.post(f"/api/call-logs/{created['id']}/end_call/")
        done = await live.call_reaches(created["id"], "ended")
        assert (done["direction"], done["caller_number"], done["recipient_number"]) == ("outbound", "1001", "1002")
        assert event_types(done) == ["initiated", "ringing", "answered", "ended"]
        assert [c["id"] for c in await live.calls()] == [created["id"]]  # the switch's events found it
        assert await live.phones_done() == [0, 0]


async def test_an_originate_that_fails_on_the_switch_ends_the_call(db: Database) -> None:
    async with live_daemon(db) as live:
        body = {"recipient_number": "1002", "caller_number": "1099"}  # there is no endpoint 1099
        # Originate is asynchronous: Asterisk accepts it, then reports the failure.
        created = await live.post("/api/call-logs/initiate_call/", body, status=201)
        failed = await live.call_reaches(created["id"], "failed")
        assert event_types(failed) == ["initiated", "failed"]
        assert failed["events"][-1]["metadata"]["channel"] == "PJSIP/1099"
        assert len(await live.calls()) == 1

"""Live: mute/unmute, DTMF and recording pauses on the lab Asterisk through calld's REST API (issue 17).

Phone 1010 (lab/asterisk/etc/pjsip_calld_controls.conf) takes DTMF as SIP INFO, so its sipp
scenario (``uac_wait_bye_info.xml``) logs each digit calld has Asterisk play to it. Extension 9017
(extensions_calld_controls.conf) plays music on hold: audio for a recording, as sipp sends none.
"""

from __future__ import annotations

import array
import asyncio
import wave
from pathlib import Path
from typing import Any

import pytest

from calld.storage.database import Database
from tests.asterisk.live import LAB_DIR, SIP_SERVER, Live, event_types, eventually, live_daemon, phone_ip

pytestmark = pytest.mark.asterisk


async def _dials_and_logs_dtmf(live: Live, caller: str, callee: str, log: Path) -> None:
    ip = phone_ip(caller)
    await live.sipp(
        SIP_SERVER, "-sf", "uac_wait_bye_info.xml", "-s", callee, "-key", "caller", caller,
        "-i", ip, "-p", "5070", "-mi", ip, "-m", "1", "-trace_logs", "-log_file", str(log),
    )  # fmt: skip


async def _with_event(live: Live, call_id: str, event_type: str, count: int = 1) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        detail = await live.call(call_id)
        return detail if event_types(detail).count(event_type) >= count else None

    found: dict[str, Any] = await eventually(check, 10, f"{event_type} stored")
    return found


def _last(detail: dict[str, Any], event_type: str) -> dict[str, Any]:
    event: dict[str, Any] = [e for e in detail["events"] if e["event_type"] == event_type][-1]
    return event


async def test_mute_unmute_and_dtmf_reach_the_phones(db: Database, tmp_path: Path) -> None:
    log = tmp_path / "phone-1010.log"
    async with live_daemon(db) as live:
        await live.answers("1002", "answer")
        await _dials_and_logs_dtmf(live, "1010", "1002", log)
        call = await live.call_from("1010")
        await live.call_reaches(call["id"], "answered")
        url = f"/api/call-logs/{call['id']}/"

        await live.post(url + "mute/")  # the far party: the caller, 1010 (an inbound call)
        muted = _last(await _with_event(live, call["id"], "muted"), "muted")
        assert muted["source"] == "switch"
        assert muted["metadata"]["party"] == "caller" and muted["metadata"]["channel"].startswith("PJSIP/1010-")
        await live.post(url + "unmute/", {"party": "callee"})
        unmuted = _last(await _with_event(live, call["id"], "unmuted"), "unmuted")
        assert unmuted["metadata"]["party"] == "callee" and unmuted["metadata"]["channel"].startswith("PJSIP/1002-")

        await live.post(url + "send_dtmf/", {"digits": "12#", "duration_ms": 120})
        dtmf = _last(await _with_event(live, call["id"], "dtmf"), "dtmf")
        assert (dtmf["source"], dtmf["metadata"]["digits"], dtmf["metadata"]["direction"]) == ("switch", "12#", "sent")

        await live.post(url + "end_call/")
        done = await live.call_reaches(call["id"], "ended")
        assert event_types(done) == ["initiated", "ringing", "answered", "muted", "unmuted", "dtmf", "ended"]
        # Both phones got their BYE; 1010 answered each INFO and logged the digits it carried.
        assert await live.phones_done() == [0, 0]
        digits = [line.split("DTMF ", 1)[1].split()[0] for line in log.read_text().splitlines() if "DTMF " in line]
        assert digits == ["1", "2", "#"]

        # On an ended call every one of them is refused, naming the status.
        for action, body in (("mute/", None), ("unmute/", None), ("send_dtmf/", {"digits": "1"})):
            refused = await live.post(url + action, body, status=409)
            assert refused["current_status"] == "ended"


def _silent_runs(wav: Path, window_ms: int = 20) -> tuple[list[tuple[float, float]], float]:
    """(start, end) seconds of each run of silent windows in a 16-bit mono WAV, and its length."""
    with wave.open(str(wav)) as reader:
        assert (reader.getsampwidth(), reader.getnchannels()) == (2, 1)
        rate = reader.getframerate()
        samples = array.array("h", reader.readframes(reader.getnframes()))
    step = rate * window_ms // 1000
    runs: list[tuple[float, float]] = []
    start: float | None = None
    for i in range(0, len(samples) - step + 1, step):
        loud = max(abs(s) for s in samples[i : i + step]) > 64
        t = i / rate
        if not loud and start is None:
            start = t
        elif loud and start is not None:
            runs.append((start, t))
            start = None
    total = len(samples) / rate
    if start is not None:
        runs.append((start, total))
    return runs, total


async def test_a_paused_recording_is_silent_for_the_paused_span(db: Database) -> None:
    async with live_daemon(db) as live:
        await live.dials("1001", "9017", "wait_bye")  # music on hold: something to record
        call = await live.call_from("1001")
        await live.call_reaches(call["id"], "answered")
        url = f"/api/call-logs/{call['id']}/"
        await live.post(url + "pause_recording/", status=409)  # not recording yet
        await live.post(url + "start_recording/")
        await live.call_reaches(call["id"], "recording")
        await asyncio.sleep(1.5)
        await live.post(url + "pause_recording/")  # MixMonitorMute; its MixMonitorMute event confirms it
        paused = await _with_event(live, call["id"], "recording_paused")
        assert paused["recording_paused"] is True and _last(paused, "recording_paused")["source"] == "switch"
        refused = await live.post(url + "pause_recording/", status=409)
        assert "already paused" in str(refused)
        await asyncio.sleep(2.0)
        await live.post(url + "resume_recording/")
        resumed = await _with_event(live, call["id"], "recording_resumed")
        assert resumed["recording_paused"] is False
        await asyncio.sleep(1.5)
        await live.post(url + "stop_recording/")
        stopped = await live.call_reaches(call["id"], "answered")
        await live.post(url + "end_call/")
        await live.call_reaches(call["id"], "ended")
        assert await live.phones_done() == [0]

    [span] = stopped["recording"]["paused_spans"]
    pause, resume = _last(stopped, "recording_paused"), _last(stopped, "recording_resumed")
    assert (span["paused_at"], span["resumed_at"]) == (pause["timestamp"], resume["timestamp"])
    path = _last(stopped, "recording_started")["metadata"]["path"]
    runs, total = _silent_runs(LAB_DIR / path.lstrip("/"))
    # Music before and after; one silent stretch about as long as the pause (2 s) in between.
    longest = max(runs, key=lambda run: run[1] - run[0])
    assert 1.5 <= longest[1] - longest[0] <= 3.0, runs
    assert longest[0] >= 1.0 and total - longest[1] >= 1.0, (runs, total)


async def test_a_ringing_call_is_rejected_and_asterisk_cannot_answer_it(db: Database) -> None:
    async with live_daemon(db) as live:
        await live.answers("1002", "noanswer")  # rings until CANCEL
        await live.dials("1001", "1002", "fail")  # takes any error final response
        call = await live.call_from("1001")
        await live.call_reaches(call["id"], "ringing")
        url = f"/api/call-logs/{call['id']}/"
        await live.post(url + "mute/", status=409)  # not connected yet
        refused = await live.post(url + "answer/", status=409)
        assert "cannot answer" in str(refused)
        await live.post(url + "reject/")  # Hangup, Cause 21: chan_pjsip answers the caller 403, CANCELs 1002
        done = await live.call_reaches(call["id"], "busy")
        assert event_types(done) == ["initiated", "ringing", "ended"]
        assert done["events"][-1]["source"] == "switch" and done["events"][-1]["metadata"]["cause_code"] == 21
        assert await live.phones_done() == [0, 0]
        await live.post(url + "reject/", status=409)


async def _consulting(live: Live) -> dict[str, Any]:
    """1001 calls 1002 (calld's user), who begins an attended transfer to 1003; 1003 answers."""
    await live.answers("1002", "answer")
    await live.answers("1003", "answer")
    await live.dials("1001", "1002", "call", talk_ms=8000)
    call = await live.call_from("1001")
    await live.call_reaches(call["id"], "answered")
    await live.post(f"/api/call-logs/{call['id']}/transfer_call/", {"transfer_to": "1003", "attended": True})
    # Atxfer holds the transferee (Hold on 1002's channel) while 1002 consults 1003.
    held = await live.call_reaches(call["id"], "on_hold")
    await asyncio.sleep(2.0)  # 1003 rings 1 s, then answers
    return held


async def test_an_attended_transfer_is_completed(db: Database) -> None:
    async with live_daemon(db) as live:
        call = await _consulting(live)
        url = f"/api/call-logs/{call['id']}/transfer_call/"
        await live.post(url + "complete/")  # Hangup of 1002's channel: AttendedTransfer
        done = await live.call_reaches(call["id"], "ended", within=15)  # 1001 hangs up after talking to 1003
        types = event_types(done)
        assert types[-3:] == ["transfer_initiated", "transfer_completed", "ended"], types
        assert done["events"][-3]["metadata"]["kind"] == "attended" and done["transfer_target"] == "1003"
        assert await live.phones_done() == [0, 0, 0]
        await live.post(url + "complete/", status=409)


async def test_an_attended_transfer_is_cancelled(db: Database) -> None:
    async with live_daemon(db) as live:
        call = await _consulting(live)
        url = f"/api/call-logs/{call['id']}/"
        await live.post(url + "transfer_call/cancel/")  # the consultation's channels hung up
        back = await live.call_reaches(call["id"], "answered")  # 1002 back with 1001 (Unhold)
        assert "transfer_initiated" not in event_types(back)
        await live.post(url + "transfer_call/cancel/", status=409)  # nothing in progress now
        done = await live.call_reaches(call["id"], "ended", within=15)
        assert "transfer_completed" not in event_types(done)
        assert await live.phones_done() == [0, 0, 0]


async def test_a_call_is_parked_and_picked_up(db: Database) -> None:
    """1001 calls 1002 (calld's user), who parks the caller in space 701 (AMI Park, res_parking's lot
    in lab/asterisk/etc/res_parking.conf); calld has phone 1003 ring and take the caller out of it."""
    async with live_daemon(db) as live:
        await live.answers("1002", "answer")
        await live.answers("1003", "answer")
        await live.dials("1001", "1002", "wait_bye")
        call = await live.call_from("1001")
        await live.call_reaches(call["id"], "answered")
        url = f"/api/call-logs/{call['id']}/"
        refused = await live.post(url + "pickup/", {"to": "1003"}, status=409)  # not parked
        assert refused["current_status"] == "answered"

        await live.post(url + "park/", {"slot": "701"})  # Park of 1001's channel: ParkedCall

        async def parked() -> dict[str, Any] | None:
            detail = await live.call(call["id"])
            return detail if detail["parked"] is not None else None

        detail = await eventually(parked, 10, "the park stored")
        assert detail["status"] == "on_hold"
        assert (detail["parked"]["slot"], detail["parked"]["lot"]) == ("701", "default")
        hold = _last(detail, "hold")
        assert hold["source"] == "switch" and hold["metadata"]["parked"] == "701"
        refused = await live.post(url + "park/", {"slot": "702"}, status=409)  # already parked
        assert refused["current_status"] == "on_hold"

        await live.post(url + "pickup/", {"to": "1003"})  # 1003 rings 1 s, answers, dials 701
        picked = await _with_event(live, call["id"], "unhold")
        assert picked["parked"] is None and picked["status"] == "answered"
        unhold = _last(picked, "unhold")
        assert unhold["metadata"]["picked_up"] == "701" and unhold["metadata"]["picked_up_by"] == "1003"
        await live.post(url + "pickup/", {"to": "1003"}, status=409)  # no longer parked

        await live.post(url + "end_call/")
        done = await live.call_reaches(call["id"], "ended", within=15)
        types = event_types(done)
        assert types[:3] == ["initiated", "ringing", "answered"] and types[-1] == "ended", types
        assert [t for t in types if t in ("hold", "unhold")] == ["hold", "unhold"], types

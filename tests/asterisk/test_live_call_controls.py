"""Live: mute/unmute and DTMF on the lab Asterisk through calld's REST API (issue 17).

Phone 1009 (lab/asterisk/etc/pjsip_calld_controls.conf) takes DTMF as SIP INFO, so its sipp
scenario (``uac_wait_bye_info.xml``) logs each digit calld has Asterisk play to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from calld.storage.database import Database
from tests.asterisk.live import SIP_SERVER, Live, event_types, eventually, live_daemon, phone_ip

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
    log = tmp_path / "phone-1009.log"
    async with live_daemon(db) as live:
        await live.answers("1002", "answer")
        await _dials_and_logs_dtmf(live, "1009", "1002", log)
        call = await live.call_from("1009")
        await live.call_reaches(call["id"], "answered")
        url = f"/api/call-logs/{call['id']}/"

        await live.post(url + "mute/")  # the far party: the caller, 1009 (an inbound call)
        muted = _last(await _with_event(live, call["id"], "muted"), "muted")
        assert muted["source"] == "switch"
        assert muted["metadata"]["party"] == "caller" and muted["metadata"]["channel"].startswith("PJSIP/1009-")
        await live.post(url + "unmute/", {"party": "callee"})
        unmuted = _last(await _with_event(live, call["id"], "unmuted"), "unmuted")
        assert unmuted["metadata"]["party"] == "callee" and unmuted["metadata"]["channel"].startswith("PJSIP/1002-")

        await live.post(url + "send_dtmf/", {"digits": "12#", "duration_ms": 120})
        dtmf = _last(await _with_event(live, call["id"], "dtmf"), "dtmf")
        assert (dtmf["source"], dtmf["metadata"]["digits"], dtmf["metadata"]["direction"]) == ("switch", "12#", "sent")

        await live.post(url + "end_call/")
        done = await live.call_reaches(call["id"], "ended")
        assert event_types(done) == ["initiated", "ringing", "answered", "muted", "unmuted", "dtmf", "ended"]
        # Both phones got their BYE; 1009 answered each INFO and logged the digits it carried.
        assert await live.phones_done() == [0, 0]
        digits = [line.split("DTMF ", 1)[1].split()[0] for line in log.read_text().splitlines() if "DTMF " in line]
        assert digits == ["1", "2", "#"]

        # On an ended call every one of them is refused, naming the status.
        for action, body in (("mute/", None), ("unmute/", None), ("send_dtmf/", {"digits": "1"})):
            refused = await live.post(url + action, body, status=409)
            assert refused["current_status"] == "ended"

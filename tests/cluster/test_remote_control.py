"""Control from any instance: a REST action received by a calld process that is not connected to
the call's switch is carried out by the process that is (the PBX's leader), through PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from calld.adapters.freeswitch.adapter import LIST_CHANNELS, VERSION
from calld.storage.database import Database
from tests.cluster.processes import Instance, admin_token, instance, until
from tests.fakes.esl_capture import connect_answers, load_capture
from tests.fakes.esl_server import FakeEslServer
from tests.support import PG_URL


async def detail(inst: Instance, token: str, call_id: str) -> dict[str, Any]:
    async with inst.client(token).get(f"/api/call-logs/{call_id}/") as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body


async def only_call(inst: Instance, token: str) -> dict[str, Any] | None:
    async with inst.client(token).get("/api/call-logs/") as response:
        found = (await response.json())["results"]
    return found[0] if len(found) == 1 and found[0]["status"] == "answered" else None


async def toggle_hold(inst: Instance, token: str, call_id: str) -> tuple[int, dict[str, Any]]:
    async with inst.client(token).post(f"/api/call-logs/{call_id}/toggle_hold/") as response:
        return response.status, await response.json()


async def test_a_hold_sent_to_any_instance_reaches_the_switch_through_the_leader(tmp_path: Path, pg: Database) -> None:
    capture = load_capture("d_hold.json")
    a_leg = next(m.group(1) for s in capture.sends() if (m := re.search(rb"uuid_hold ([0-9a-f-]{36})", s)))
    token = await admin_token(pg)
    async with FakeEslServer(capture, after_subscribe=[LIST_CHANNELS, VERSION], answers=connect_answers()) as switch:
        a = instance(tmp_path, "a", PG_URL, switch.port)
        b = instance(tmp_path, "b", PG_URL, switch.port)  # the same PBX's standby
        c = instance(tmp_path, "c", PG_URL, None, cluster={"command_timeout_seconds": 2.0})  # API only
        try:
            a.start()
            await until(a.leader, what="a leads")
            b.start()
            c.start()
            await until(b.leader, what="b answers")
            await until(c.ready, what="c answers")
            answered = await until(lambda: only_call(b, token), what="the call answered (read on b)")
            call_id = answered["id"]
            status, body = await toggle_hold(b, token, call_id)  # api uuid_hold <A>, sent by a
            assert status == 200, body
            await until(lambda: _status(a, token, call_id, "on_hold"), what="on hold")
            status, body = await toggle_hold(c, token, call_id)  # api uuid_hold off <A>, sent by a
            assert status == 200, body
            await until(lambda: _status(c, token, call_id, "answered"), what="off hold")
            assert switch.connections == 1 and switch.mismatches == []
            sent = [command for command in switch.received if b"uuid_hold" in command]
            assert sent == [
                f"api uuid_hold {a_leg.decode()}\n\n".encode(),
                f"api uuid_hold off {a_leg.decode()}\n\n".encode(),
            ]
            assert any(line["event"] == "command run for another instance" for line in a.log_lines())
            # Nobody leads the PBX any more: the instance asked says so (503), after its timeout.
            await b.stop()  # the standby first: it would take over and close the call the switch no longer has
            await a.stop()
            status, body = await toggle_hold(c, token, call_id)
            assert (status, body["code"]) == (503, "no_leader"), body
        finally:
            for inst in (a, b, c):
                await inst.stop()


async def _status(inst: Instance, token: str, call_id: str, status: str) -> bool:
    return (await detail(inst, token, call_id))["status"] == status

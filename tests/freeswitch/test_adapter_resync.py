"""calld connecting to a FreeSWITCH that already has calls up, and losing its link mid-call.

Real FreeSWITCH 1.10.12 sessions replayed byte for byte (``m_live_at_connect``: three calls set up
before the connection, so no CHANNEL_CREATE/ANSWER/BRIDGE is ever seen for them; ``m2_reconnect``:
a bridged call whose first connection is cut, held while no connection exists, resumed and hung up
on the second connection). Every call the switch had must be stored once, as one call per call.
"""

from __future__ import annotations

import base64
import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from calld.adapters.freeswitch.adapter import LIST_CHANNELS, VERSION
from calld.adapters.freeswitch.cdr import leg_from_json_text
from calld.adapters.freeswitch.cdr_source import CDR_CSV_COLUMNS
from calld.domain.call import NewCall
from calld.domain.vocabulary import CallDirection, EventSource, EventType
from calld.storage.calls import CallStore
from calld.storage.database import Database
from tests.fakes.esl_capture import (
    CAPTURE_DIR,
    captured_reply,
    chunks_until_answered,
    connect_answers,
    idle_session,
    load_capture,
)
from tests.fakes.esl_server import FakeEslServer
from tests.fakes.freeswitch_daemon import call, calld, calls, eventually, fake_switch, only_call_in


def live_at_connect(name: str, **options: Any) -> FakeEslServer:
    """The capture, with calld's connect queries answered by what the switch said in it."""
    answers = {LIST_CHANNELS: captured_reply(name, LIST_CHANNELS), VERSION: captured_reply("a_answered.json", VERSION)}
    return FakeEslServer(load_capture(name), after_subscribe=[LIST_CHANNELS, VERSION], answers=answers, **options)


async def all_ended(http: Any, count: int) -> list[dict[str, Any]] | None:
    found = await calls(http)
    terminal = [c for c in found if c["ended_at"] is not None]
    return found if len(found) >= count and len(terminal) == len(found) else None


@pytest.mark.parametrize("name", ["m_live_at_connect", "m_live_at_connect.json"])
async def test_calls_up_at_connect_are_stored_once_each(db: Database, name: str) -> None:
    async with (
        live_at_connect(name, stream=True) as server,
        calld(db, server, event_format="json" if name.endswith(".json") else "plain") as (daemon, _adapter, http),
    ):
        stored = await eventually(lambda: all_ended(http, 3))
        ingest = daemon.ingest
        assert ingest is not None
        await eventually(lambda: _settled(daemon))
        refused = ingest.refused
        details = [await call(http, c["id"]) for c in stored]
    assert server.mismatches == []
    # Three calls: 1000 -> 1001 bridged, a loopback call to 9002 (two legs, ONE call), 1002 -> 1004 ringing.
    assert len(stored) == 3, [(c["caller_number"], c["recipient_number"]) for c in stored]
    by_recipient = {c["recipient_number"]: c for c in stored}
    assert set(by_recipient) == {"1001", "9002", "1004"}
    assert by_recipient["1001"]["caller_number"] == "1000"
    assert by_recipient["1001"]["status"] == "ended" and by_recipient["9002"]["status"] == "ended"
    assert by_recipient["1004"]["answered_at"] is None
    assert by_recipient["1004"]["status"] in ("missed", "no_answer")
    for found in details:
        assert found["events"][0]["metadata"] == {"adopted": True}
    assert refused == 0  # every later event found its call


async def _settled(daemon: Any) -> bool:
    queue = daemon.ingest_queue
    await queue.flush()
    return True


@pytest.mark.parametrize("name", ["m2_reconnect", "m2_reconnect.json"])
async def test_a_link_cut_mid_call_keeps_one_call(db: Database, name: str) -> None:
    second = name.replace("m2_reconnect", "m2_reconnect.2")
    server = FakeEslServer(
        load_capture(name),
        after_subscribe=[LIST_CHANNELS, VERSION],
        answers=connect_answers(),  # the switch was idle at the first connect
        stream=True,
        later=[load_capture(second)],
        later_answers={
            LIST_CHANNELS: captured_reply(second, LIST_CHANNELS),
            VERSION: captured_reply("a_answered.json", VERSION),
        },
    )
    async with (
        server,
        calld(db, server, event_format="json" if name.endswith(".json") else "plain", reconnect_max_seconds=0.2) as (
            _daemon,
            adapter,
            http,
        ),
    ):
        stored = await eventually(lambda: all_ended(http, 1))
        assert adapter.sessions >= 2
        detail = await call(http, stored[0]["id"])
    assert len(stored) == 1
    (only,) = stored
    assert only["status"] == "ended" and only["answered_at"] is not None
    assert (only["caller_number"], only["recipient_number"]) == ("1000", "1001")
    assert "adopted" not in detail["events"][0]["metadata"]


CDR_DIR = CAPTURE_DIR / "cdr"


def json_cdr_directory(tmp_path: Path, scenario: str) -> Path:
    """mod_json_cdr's documents of ``scenario`` as FreeSWITCH writes them to a directory (one
    ``<uuid>.cdr.json`` per leg, the POST body plus a newline, as in its err-log-dir)."""
    folder = tmp_path / "json_cdr"
    folder.mkdir(exist_ok=True)
    for line in (CDR_DIR / f"{scenario}.cdr.jsonl").read_text().splitlines():
        body = json.loads(line)["body"]
        uuid = json.loads(body)["variables"]["uuid"]
        (folder / f"{uuid}.cdr.json").write_text(body + "\n")
    return folder


async def stored_before(db: Database, at: datetime) -> str:
    """A call this switch's calld stored earlier (so a restart reads the records from then on)."""
    store = CallStore(clock=lambda: at)
    async with db.write() as session:
        earlier = await store.create(
            session,
            NewCall(CallDirection.INBOUND, "1", "2", switch_name="freeswitch", switch_call_ref="earlier"),
            EventSource.SWITCH,
        )
        await store.apply(session, earlier, EventType.ENDED, EventSource.SWITCH, metadata={"outcome": "missed"})
    return str(earlier.id)


@pytest.mark.parametrize("records", ["json", "csv"])
async def test_calls_made_while_calld_was_down_come_from_the_cdrs(db: Database, tmp_path: Path, records: str) -> None:
    """calld stopped; three calls came and went (m_live_at_connect's, as FreeSWITCH recorded them);
    calld starts on an idle switch: the calls are stored from the switch's own CDRs, once."""
    scenario = "m_live_at_connect.json"
    first_start = min(int(leg["start_uepoch"]) for leg in _csv_legs(scenario))
    await stored_before(db, datetime.fromtimestamp(first_start / 1e6 - 60, UTC))
    settings: dict[str, Any] = {}
    if records == "json":
        settings["cdr_json_directories"] = (str(json_cdr_directory(tmp_path, scenario)),)
    else:
        settings["cdr_csv"] = str(CDR_DIR / f"{scenario}.cdr.csv")
    idle = idle_session(load_capture("a2_bridged.json"))
    for _ in range(2):  # a second start reads the same records and stores nothing twice
        server = FakeEslServer(idle, after_subscribe=[LIST_CHANNELS, VERSION], answers=connect_answers())
        async with server, calld(db, server, **settings) as (_daemon, _adapter, http):
            found = await eventually(lambda: all_ended(http, 4))
            details = {c["recipient_number"]: await call(http, c["id"]) for c in found}
    assert len(found) == 4  # the earlier call and the three
    legs = _csv_legs(scenario)
    by_uuid = {leg["uuid"]: leg for leg in legs}
    bridged = details["1001"]
    a_leg = by_uuid[next(leg["uuid"] for leg in legs if leg["channel_name"] == "sofia/internal/1000@127.0.0.1")]
    # Times are the switch's own: answered when the far phone answered, ended at the last hangup.
    assert _at(bridged["answered_at"]) == _micros_time(a_leg["answer_uepoch"])
    assert _at(bridged["ended_at"]) == _micros_time(a_leg["end_uepoch"])
    assert bridged["status"] == "ended"
    assert details["9002"]["status"] == "ended"  # the loopback call: one call
    assert details["1004"]["status"] in ("missed", "no_answer") and details["1004"]["answered_at"] is None
    for recipient in ("1001", "9002", "1004"):
        last = details[recipient]["events"][-1]["metadata"]
        assert last["recovered_from"] == "cdr" and last["ended_while_calld_was_down"] is True


def _csv_legs(scenario: str) -> list[dict[str, str]]:
    with open(CDR_DIR / f"{scenario}.cdr.csv", newline="") as handle:
        return [dict(zip(CDR_CSV_COLUMNS, row, strict=False)) for row in csv.reader(handle)]


def _micros_time(value: str) -> datetime:
    return datetime.fromtimestamp(int(value) / 1e6, UTC)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_a_call_that_ended_while_calld_was_down_gets_its_real_end(db: Database, tmp_path: Path) -> None:
    """calld saw a call answered, then stopped; the call ended; FreeSWITCH wrote its CDRs to its
    err-log-dir (its JSON-CDR receiver was down: r_cdr_receiver_down, the same call as its capture).
    On the next start the call is closed with the end the switch recorded, not at restart time."""
    capture = load_capture("r_cdr_receiver_down")
    drop = chunks_until_answered(capture)
    async with (
        fake_switch(capture, drop_after=drop, later=[idle_session(capture)]) as server,
        calld(db, server, event_format="plain", reconnect_max_seconds=60) as (_daemon, _adapter, http),
    ):
        answered = await only_call_in(http, "answered")
    errlog = CDR_DIR / "errlog"
    async with (
        FakeEslServer(
            idle_session(capture), after_subscribe=[LIST_CHANNELS, VERSION], answers=connect_answers()
        ) as idle,
        calld(db, idle, event_format="plain", cdr_json_directories=(str(errlog),)) as (_daemon, _adapter, http),
    ):
        done = await eventually(lambda: _ended(http, answered["id"]))
    legs = [leg_from_json_text(path.read_bytes()) for path in errlog.iterdir()]
    end = max(_micros_time(leg["end_uepoch"]) for leg in legs)
    assert done["status"] == "ended"
    assert _at(done["ended_at"]) == end
    assert done["answered_at"] == answered["answered_at"]  # what calld saw live stays
    last = done["events"][-1]
    assert last["event_type"] == "ended" and last["metadata"]["recovered_from"] == "cdr"
    assert [e["event_type"] for e in done["events"]].count("ended") == 1


async def _ended(http: Any, call_id: str) -> dict[str, Any] | None:
    detail = await call(http, call_id)
    return detail if detail["ended_at"] is not None else None


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_mod_json_cdr_posts_are_kept_and_recovered_on_the_next_start(db: Database, tmp_path: Path) -> None:
    """mod_json_cdr posts each leg to calld (its exact requests, m_live_at_connect.json); calld keeps
    them; the next start recovers the calls from them like from FreeSWITCH's err-log-dir."""
    scenario = "m_live_at_connect.json"
    first_start = min(int(leg["start_uepoch"]) for leg in _csv_legs(scenario))
    await stored_before(db, datetime.fromtimestamp(first_start / 1e6 - 60, UTC))
    receiver = {"cdr_receiver_credentials": "fs:cdr-secret", "cdr_receiver_directory": str(tmp_path / "received")}
    requests = [json.loads(line) for line in (CDR_DIR / f"{scenario}.cdr.jsonl").read_text().splitlines()]
    idle = idle_session(load_capture("a2_bridged.json"))
    endpoint = "/api/webhooks/freeswitch/cdr/"
    server = FakeEslServer(idle, after_subscribe=[LIST_CHANNELS, VERSION], answers=connect_answers())
    async with (
        server,
        calld(db, server, **receiver) as (daemon, _adapter, _http),
        aiohttp.ClientSession(base_url=f"http://127.0.0.1:{daemon.port}") as http,  # no API token: FreeSWITCH has none
    ):
        for request in requests:
            headers = {name: value for name, value in request["headers"] if name.lower() != "host"}
            # mod_json_cdr posted to the lab receiver's /cdr; with url = calld's path it adds the same query.
            path = endpoint + "?" + request["path"].partition("?")[2]
            async with http.post(
                path, data=request["body"], headers={**headers, **basic("fs", "cdr-secret")}
            ) as answer:
                assert answer.status == 200, await answer.text()
        async with http.post(endpoint, data=requests[0]["body"], headers=basic("fs", "wrong")) as answer:
            assert answer.status == 401 and answer.headers["WWW-Authenticate"].startswith("Basic")
        async with http.post(endpoint, data=b"{not json", headers=basic("fs", "cdr-secret")) as answer:
            assert answer.status == 422 and "body" in (await answer.json())["detail"]
    kept = sorted(path.name for path in (tmp_path / "received").iterdir())
    assert len(kept) == 6 and all(name.endswith(".cdr.json") for name in kept)
    server = FakeEslServer(idle, after_subscribe=[LIST_CHANNELS, VERSION], answers=connect_answers())
    async with server, calld(db, server, **receiver) as (_daemon, _adapter, http):
        found = await eventually(lambda: all_ended(http, 4))
    assert sorted(c["recipient_number"] for c in found) == ["1001", "1004", "2", "9002"]

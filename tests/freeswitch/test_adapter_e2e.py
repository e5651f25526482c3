"""calld with its FreeSWITCH adapter against real captured Event Socket sessions, end to end.

A real ``Daemon`` (HTTP on loopback, storage on a SQLite file and on PostgreSQL) runs the real
``FreeswitchAdapter``, connected over TCP to ``FakeEslServer`` replaying a FreeSWITCH 1.10.12
capture byte for byte. REST actions must send exactly the commands the recorder sent in that
capture (the fake refuses anything else), and the calls must be stored as the switch's events say.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from calld.adapters.freeswitch.adapter import FreeswitchAdapter, subscription_command
from calld.adapters.freeswitch.settings import FreeswitchConfig
from calld.adapters.port import SwitchError
from calld.config import Config, DatabaseConfig, ServerConfig
from calld.daemon import Daemon
from calld.domain.call import NewCall
from calld.domain.vocabulary import CallDirection, EventSource, EventType
from calld.storage.calls import CallIds, CallStore
from calld.storage.database import Database
from tests.fakes.esl_capture import Capture, chunks_until_answered, idle_session, load_capture
from tests.fakes.esl_server import FakeEslServer, normalise
from tests.fakes.freeswitch_daemon import call, calld, calls, connect_queries, eventually, fake_switch, only_call_in
from tests.support import SettableClock, api_session


def sent_commands(capture: Capture) -> list[bytes]:
    """What calld must have sent: the recorder's commands, with calld's subscription and queries."""
    sends = [normalise(s) for s in capture.sends()]
    event_format = sends[1].split()[1].decode()
    return [sends[0], subscription_command(event_format), *connect_queries(capture), *sends[2:]]


def uuid_in(capture: Capture, pattern: str) -> uuid.UUID:
    """A uuid the recorder put in one of its commands (``pattern`` has one group)."""
    for command in capture.sends():
        match = re.search(pattern, command.decode())
        if match:
            return uuid.UUID(match.group(1))
    raise AssertionError(f"{capture.name}: no command matches {pattern}")


def fixed_ids(*ids: uuid.UUID) -> CallIds:
    """New calls get ``ids`` in order (the ids the capture's switch already used), then random."""
    queue = list(ids)
    return lambda: queue.pop(0) if queue else uuid.uuid4()


async def reaches(http: aiohttp.ClientSession, call_id: str, status: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        detail = await call(http, call_id)
        return detail if detail["status"] == status else None

    result: dict[str, Any] = await eventually(check)
    return result


async def post(http: aiohttp.ClientSession, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    async with http.post(path, json=body or {}) as response:
        assert response.status in (200, 201), await response.text()
        result: dict[str, Any] = await response.json()
        return result


def event_types(detail: dict[str, Any]) -> list[str]:
    return [event["event_type"] for event in detail["events"]]


async def test_initiate_call_originates_exactly_as_recorded(db: Database) -> None:
    capture = load_capture("a_answered.json")
    call_id = uuid_in(capture, r"origination_uuid=([0-9a-f-]{36})")
    # calld's clock reads what it read when the recorder asked for the call.
    asked = next(entry["ts"] for entry in capture.timeline if entry.get("data", "").startswith("bgapi originate"))
    settings = {"originate_caller_id_name": "ESL Test", "originate_caller_id_number": "9000"}
    at_recording = SettableClock(datetime.fromtimestamp(asked, UTC))
    async with (
        fake_switch(capture) as server,
        calld(db, server, fixed_ids(call_id), at_recording, **settings) as (
            _daemon,
            _adapter,
            http,
        ),
    ):
        body = {"recipient_number": "9001", "caller_number": "1000"}
        created = await post(http, "/api/call-logs/initiate_call/", body)
        assert created["id"] == str(call_id)
        detail = await reaches(http, str(call_id), "ended")
    assert server.mismatches == []
    assert server.received == sent_commands(capture)
    assert event_types(detail) == ["initiated", "ringing", "answered", "ended"]
    assert [e["source"] for e in detail["events"]] == ["api", "switch", "switch", "switch"]
    assert detail["direction"] == "outbound"
    # The pbx answered and played a 4.5 s tone; times are the switch's own.
    assert 4.0 < detail["duration_seconds"] < 5.5


async def test_hold_unhold_and_hangup_through_the_api(db: Database) -> None:
    capture = load_capture("d_hold.json")
    a_leg = uuid_in(capture, r"uuid_hold ([0-9a-f-]{36})")
    async with fake_switch(capture) as server, calld(db, server) as (_daemon, adapter, http):
        answered = await only_call_in(http, "answered")
        call_id = answered["id"]
        # Phone 1000 dialled phone 1001 from context default: extension to extension.
        assert (answered["direction"], answered["caller_number"], answered["recipient_number"]) == (
            "internal",
            "1000",
            "1001",
        )
        await post(http, f"/api/call-logs/{call_id}/toggle_hold/")  # api uuid_hold <A>
        await reaches(http, call_id, "on_hold")
        await post(http, f"/api/call-logs/{call_id}/toggle_hold/")  # api uuid_hold off <A>
        await reaches(http, call_id, "answered")
        # The recorder then toggled twice, which calld's API never sends: send them as it did.
        for status in ("on_hold", "answered"):
            await adapter._api(f"uuid_hold toggle {a_leg}")
            await reaches(http, call_id, status)
        await post(http, f"/api/call-logs/{call_id}/end_call/")  # api uuid_kill <A>
        detail = await reaches(http, call_id, "ended")
    assert server.mismatches == []
    assert server.received == sent_commands(capture)
    types = event_types(detail)
    assert types == ["initiated", "ringing", "answered", "hold", "unhold", "hold", "unhold", "ended"]
    assert detail["hold_seconds"] > 3


async def test_blind_transfer_through_the_api(db: Database) -> None:
    capture = load_capture("e_blind_transfer.json")
    # Phone 1000 calls in to the user at 1001, who transfers the caller on to 1002.
    async with (
        fake_switch(capture) as server,
        calld(db, server, inbound_contexts=("default",), outbound_contexts=()) as (_d, _a, http),
    ):
        answered = await only_call_in(http, "answered")
        assert answered["direction"] == "inbound"
        await post(http, f"/api/call-logs/{answered['id']}/transfer_call/", {"transfer_to": "1002"})
        detail = await reaches(http, answered["id"], "ended")
    assert server.mismatches == []
    assert server.received == sent_commands(capture)
    types = event_types(detail)
    assert types[:3] == ["initiated", "ringing", "answered"]
    assert "transfer_initiated" in types and "transfer_completed" in types and types[-1] == "ended"
    assert detail["transfer_target"] == "1002"


async def test_recordings_through_the_api(db: Database) -> None:
    capture = load_capture("g_recording.json")
    a_leg = uuid_in(capture, r"uuid_record ([0-9a-f-]{36})")
    # The recorder named files after the A leg; calld names them after the call id, which the
    # call gets from the capture here so that the paths match.
    async with (
        fake_switch(capture) as server,
        calld(db, server, fixed_ids(a_leg), recording_directory="/opt/fslab/rec") as (_d, _a, http),
    ):
        answered = await only_call_in(http, "answered")
        call_id = answered["id"]
        assert call_id == str(a_leg)
        await post(http, f"/api/call-logs/{call_id}/start_recording/")
        await reaches(http, call_id, "recording")
        await post(http, f"/api/call-logs/{call_id}/stop_recording/")
        await reaches(http, call_id, "answered")
        await post(http, f"/api/call-logs/{call_id}/start_recording/")
        detail = await reaches(http, call_id, "ended")  # hung up while recording
    assert server.mismatches == []
    assert server.received == sent_commands(capture)
    paths = [recording["local_path"] for recording in detail["recordings"]]
    assert paths == [f"/opt/fslab/rec/{a_leg}.wav", f"/opt/fslab/rec/{a_leg}-2.wav"]
    types = event_types(detail)
    # The second recording stops when the call hangs up (FreeSWITCH sends RECORD_STOP then).
    assert types == [
        "initiated",
        "ringing",
        "answered",
        "recording_started",
        "recording_stopped",
        "recording_started",
        "recording_stopped",
        "ended",
    ]
    # Each completes with RECORD_STOP's size and length (the recording system's webhook is not needed).
    done = [(r["status"], r["file_size"], r["duration_seconds"]) for r in detail["recordings"]]
    assert done == [("completed", 128684, 4.02), ("completed", 65324, 2.04)]
    assert detail["recordings"][1]["stopped_at"] == detail["ended_at"]


async def test_phone_driven_hold_is_logged(db: Database) -> None:
    capture = load_capture("d2_phone_hold")  # recorded with "event plain": calld can listen so too
    async with fake_switch(capture) as server, calld(db, server, event_format="plain") as (_d, _a, http):
        detail = await only_call_in(http, "ended")
    assert server.mismatches == []
    assert server.received == sent_commands(capture)
    assert event_types(detail) == ["initiated", "ringing", "answered", "hold", "unhold", "ended"]


async def test_call_that_ended_while_disconnected_is_closed_once(db: Database) -> None:
    capture = load_capture("a2_bridged.json")
    drop = chunks_until_answered(capture)
    async with (
        fake_switch(capture, drop_after=drop, later=[idle_session(capture)]) as server,
        calld(db, server) as (_daemon, adapter, http),
    ):
        detail = await only_call_in(http, "ended")
        assert adapter.sessions == 2
    assert server.mismatches == []
    assert server.connections == 2
    assert event_types(detail) == ["initiated", "ringing", "answered", "ended"]
    assert detail["events"][-1]["metadata"]["ended_while_disconnected"] is True


async def test_wrong_password_is_retried_without_giving_up(db: Database) -> None:
    capture = load_capture("x_auth_fail")
    async with FakeEslServer(capture) as server:
        fs = FreeswitchConfig(host="127.0.0.1", port=server.port, password="WrongPassword", reconnect_max_seconds=0.2)
        adapter = FreeswitchAdapter(fs)
        config = Config(server=ServerConfig(port=0), database=DatabaseConfig(url=db.url), freeswitch=fs)
        daemon = Daemon(config, switch=adapter)
        await daemon.start()
        try:
            await eventually(lambda: _at_least(server, 3))
            assert adapter.sessions == 0 and not adapter.connected.is_set()
            async with api_session(daemon) as http:
                async with http.post(
                    "/api/call-logs/initiate_call/", json={"recipient_number": "9001", "caller_number": "1000"}
                ) as response:
                    assert response.status == 502
                    body = await response.json()
                assert "switch" in body["detail"]
                [stored] = await calls(http)
            assert stored["status"] == "failed"  # the attempt is kept, with the reason
        finally:
            await daemon.stop()
    assert server.mismatches == []
    assert set(server.received) == {b"auth WrongPassword\n\n"}


async def _at_least(server: FakeEslServer, connections: int) -> bool:
    return server.connections >= connections


async def test_an_err_reply_is_a_switch_error(db: Database) -> None:
    capture = load_capture("x_protocol")  # the recorder's first command: api nosuchcommand foo
    async with (
        fake_switch(capture) as server,
        calld(db, server, event_format="plain") as (_daemon, adapter, _http),
    ):
        with pytest.raises(SwitchError, match="nosuchcommand Command not found!"):
            await adapter._api("nosuchcommand foo")
        assert adapter.connected.is_set()  # a refused command leaves the session up
    # The rest of the recorded session tries commands calld never sends; calld said goodbye.
    assert server.received[-2:] == [b"api nosuchcommand foo\n\n", b"exit\n\n"]
    assert server.mismatches == [(normalise(capture.sends()[3]), b"exit\n\n")]


async def test_calls_that_ended_while_calld_was_down_are_closed_once(db: Database) -> None:
    """A restart: the database still has calls of this switch open that the switch no longer has."""
    earlier = datetime.now(UTC) - timedelta(hours=1)
    store = CallStore(clock=lambda: earlier)
    async with db.write() as session:
        talking = await store.create(session, left_open("fs-left-1"), EventSource.SWITCH)
        await store.apply(session, talking, EventType.ANSWERED, EventSource.SWITCH)
        ringing = await store.create(session, left_open("fs-left-2"), EventSource.SWITCH)
        other_pbx = await store.create(session, left_open("pbx2-call", switch="pbx2"), EventSource.SWITCH)
        ids = {"talking": str(talking.id), "ringing": str(ringing.id), "other": str(other_pbx.id)}
    capture = load_capture("a2_bridged.json")  # the switch is idle when calld connects
    async with fake_switch(capture) as server, calld(db, server) as (_daemon, _adapter, http):
        ended = await reaches(http, ids["talking"], "ended")
        failed = await reaches(http, ids["ringing"], "failed")
        untouched = await call(http, ids["other"])
        own = await eventually(lambda: _ended_own_call(http, set(ids.values())))
    for closed in (ended, failed):
        assert closed["events"][-1]["metadata"]["ended_while_calld_was_down"] is True
        assert [e["event_type"] for e in closed["events"]].count(closed["events"][-1]["event_type"]) == 1
    assert untouched["status"] == "initiated"  # another PBX's call: not this calld's to close
    assert event_types(own) == ["initiated", "ringing", "answered", "ended"]  # this run's call, untouched
    assert "ended_while_calld_was_down" not in own["events"][-1]["metadata"]


def left_open(ref: str, switch: str = "freeswitch") -> NewCall:
    return NewCall(CallDirection.INBOUND, "1000", "1001", switch_name=switch, switch_call_ref=ref)


async def _ended_own_call(http: aiohttp.ClientSession, others: set[str]) -> dict[str, Any] | None:
    own = [c for c in await calls(http) if c["id"] not in others and c["status"] == "ended"]
    return await call(http, own[0]["id"]) if own else None


@pytest.mark.parametrize("event_format", ["json", "plain"])
async def test_mute_dtmf_and_recording_pause_through_the_api(db: Database, event_format: str) -> None:
    """n_controls: phone 1000 (calld's user: the call is internal here, placed by that phone) talks to 1001; every
    command acts on 1000's leg, A, as the recorder's did."""
    capture = load_capture("n_controls.json" if event_format == "json" else "n_controls")
    a_leg = uuid_in(capture, r"uuid_audio ([0-9a-f-]{36})")
    rec_dir = "/opt/fslab/inst/pbx/rec"  # the recorder named the file after A: calld's call id here
    async with (
        fake_switch(capture) as server,
        calld(db, server, fixed_ids(a_leg), recording_directory=rec_dir, event_format=event_format) as (
            _d,
            adapter,
            http,
        ),
    ):
        answered = await only_call_in(http, "answered")
        call_id = answered["id"]
        assert (answered["direction"], call_id) == ("internal", str(a_leg))
        # The recorder first tried "mute" without a level: FreeSWITCH's refusal, word for word.
        with pytest.raises(SwitchError, match=r"refused uuid_audio: -USAGE: <uuid> \[start \[read\|write\]"):
            await adapter._api(f"uuid_audio {a_leg} start read mute")
        caller = {"party": "caller"}
        await post(http, f"/api/call-logs/{call_id}/mute/", caller)  # uuid_audio <A> start read mute 1
        muted = await eventually(lambda: _with_event(http, call_id, "muted"))
        await post(http, f"/api/call-logs/{call_id}/unmute/", caller)  # uuid_audio <A> stop
        await eventually(lambda: _with_event(http, call_id, "unmuted"))
        await post(http, f"/api/call-logs/{call_id}/send_dtmf/", {"digits": "12#", **caller})  # uuid_send_dtmf <A> 12#
        await eventually(lambda: _with_event(http, call_id, "dtmf"))
        await post(http, f"/api/call-logs/{call_id}/start_recording/")  # uuid_record <A> start <path>
        await reaches(http, call_id, "recording")
        await post(http, f"/api/call-logs/{call_id}/pause_recording/")  # uuid_record <A> mask <path>
        paused = await eventually(lambda: _with_event(http, call_id, "recording_paused"))
        assert paused["recording_paused"] is True  # from "+OK Success", FreeSWITCH's only report
        async with http.post(f"/api/call-logs/{call_id}/pause_recording/") as again:
            assert again.status == 409 and "already paused" in await again.text()
        await post(http, f"/api/call-logs/{call_id}/resume_recording/")  # ... unmask <path>
        resumed = await eventually(lambda: _with_event(http, call_id, "recording_resumed"))
        assert resumed["recording_paused"] is False
        await post(http, f"/api/call-logs/{call_id}/stop_recording/")  # uuid_record <A> stop <path>
        detail = await reaches(http, call_id, "ended")  # the phones' side hung up
    assert server.mismatches == []
    assert server.received == sent_commands(capture)
    mute_event = next(e for e in muted["events"] if e["event_type"] == "muted")
    assert mute_event["source"] == "switch"
    assert mute_event["metadata"]["party"] == "caller" and mute_event["metadata"]["leg"] == str(a_leg)
    assert event_types(detail) == [
        "initiated",
        "ringing",
        "answered",
        "muted",
        "unmuted",
        "dtmf",
        "recording_started",
        "recording_paused",
        "recording_resumed",
        "recording_stopped",
        "ended",
    ]
    assert all(e["source"] != "api" for e in detail["events"][1:])
    dtmf = next(e for e in detail["events"] if e["event_type"] == "dtmf")
    assert (dtmf["metadata"]["digits"], dtmf["metadata"]["direction"], dtmf["metadata"]["party"]) == (
        "12#",
        "sent",
        "caller",
    )
    [recording] = detail["recordings"]
    assert recording["local_path"] == f"{rec_dir}/{a_leg}.wav"
    [span] = recording["paused_spans"]
    pause, resume = (
        next(e for e in detail["events"] if e["event_type"] == k) for k in ("recording_paused", "recording_resumed")
    )
    assert (span["paused_at"], span["resumed_at"]) == (pause["timestamp"], resume["timestamp"])


async def _with_event(http: aiohttp.ClientSession, call_id: str, event_type: str) -> dict[str, Any] | None:
    detail = await call(http, call_id)
    return detail if event_type in event_types(detail) else None


@pytest.mark.parametrize("event_format", ["json", "plain"])
async def test_answer_a_ringing_inbound_call_through_the_api(db: Database, event_format: str) -> None:
    """n2_uuid_answer: phone 1000 dials 9099, which only rings; calld answers it on the switch."""
    capture = load_capture("n2_uuid_answer.json" if event_format == "json" else "n2_uuid_answer")
    async with (
        fake_switch(capture) as server,
        calld(db, server, inbound_contexts=("default",), outbound_contexts=(), event_format=event_format) as (
            _d,
            _a,
            http,
        ),
    ):
        ringing = await only_call_in(http, "ringing")
        assert (ringing["direction"], ringing["caller_number"], ringing["recipient_number"]) == (
            "inbound",
            "1000",
            "9099",
        )
        asked = await post(http, f"/api/call-logs/{ringing['id']}/answer/")  # api uuid_answer <A>
        assert asked["status"] == "ringing"  # until the switch's CHANNEL_ANSWER
        # Replayed without pauses, the caller's hangup follows the answer at once.
        detail = await reaches(http, ringing["id"], "ended")
        async with http.post(f"/api/call-logs/{ringing['id']}/reject/") as refused:
            assert refused.status == 409 and "ended" in await refused.text()
    assert server.mismatches == []
    assert server.received == sent_commands(capture)
    assert event_types(detail) == ["initiated", "ringing", "answered", "ended"]
    assert detail["events"][2]["source"] == "switch"


@pytest.mark.parametrize("event_format", ["json", "plain"])
async def test_attended_transfer_through_the_api(db: Database, event_format: str) -> None:
    """n3_att_xfer: 1000 calls calld's user at 1001, who consults 1002 (att_xfer on 1001's leg) and
    hangs up: FreeSWITCH bridges 1002 to the caller."""
    capture = load_capture("n3_att_xfer.json" if event_format == "json" else "n3_att_xfer")
    async with (
        fake_switch(capture) as server,
        calld(db, server, inbound_contexts=("default",), outbound_contexts=(), event_format=event_format) as (
            _d,
            _a,
            http,
        ),
    ):
        answered = await only_call_in(http, "answered")
        url = f"/api/call-logs/{answered['id']}/transfer_call/"
        async with http.post(url + "complete/") as refused:  # nothing begun yet
            assert refused.status == 409 and "no attended transfer" in await refused.text()
        # sendmsg <B> execute att_xfer user/1002 ([freeswitch] transfer_endpoint "user/{target}")
        await post(http, url, {"transfer_to": "1002", "attended": True})
        detail = await reaches(http, answered["id"], "ended")  # 1001 hung up, 1000 talked to 1002, hung up
        async with http.post(url + "cancel/") as refused:
            assert refused.status == 409 and "ended" in await refused.text()
    assert server.mismatches == []
    assert server.received == sent_commands(capture)
    assert event_types(detail) == [
        "initiated",
        "ringing",
        "answered",
        "transfer_initiated",
        "transfer_completed",
        "ended",
    ]
    assert detail["transfer_target"] == "1002" and detail["events"][3]["metadata"]["kind"] == "attended"


@pytest.mark.parametrize("event_format", ["json", "plain"])
async def test_park_and_pickup_through_the_api(db: Database, event_format: str) -> None:
    """n5_valet_park: 1000 calls calld's user at 1001, who parks the caller in slot 6001 (uuid_transfer
    into the extension running valet_park); phone 1002 dials 6001 and takes the call."""
    capture = load_capture("n5_valet_park.json" if event_format == "json" else "n5_valet_park")
    a_leg = uuid_in(capture, r"uuid_transfer ([0-9a-f-]{36})")
    async with (
        fake_switch(capture) as server,
        calld(db, server, inbound_contexts=("default",), outbound_contexts=(), event_format=event_format) as (
            _d,
            adapter,
            http,
        ),
    ):
        answered = await only_call_in(http, "answered")
        url = f"/api/call-logs/{answered['id']}/"
        assert answered["parked"] is None
        async with http.post(url + "pickup/", json={"to": "1002"}) as refused:  # not parked yet
            assert refused.status == 409 and "answered" in await refused.text()
        async with http.post(url + "park/", json={"slot": "60 01"}) as bad:
            assert bad.status == 422 and "slot" in await bad.text()
        await post(http, url + "park/", {"slot": "6001"})  # api uuid_transfer <A> 6001 XML default

        async def parked() -> dict[str, Any] | None:
            detail = await call(http, answered["id"])
            return detail if detail["parked"] is not None else None

        detail = await eventually(parked)
        assert detail["status"] == "on_hold"
        assert (detail["parked"]["slot"], detail["parked"]["lot"]) == ("6001", "valet_parking_lot")
        async with http.post(url + "park/", json={"slot": "6001"}) as refused:
            assert refused.status == 409 and "on_hold" in await refused.text()
        # The recorder looked at the lot (calld never asks): the parked leg is in slot 6001.
        assert f'<extension uuid="{a_leg}">6001</extension>' in await adapter._api("valet_info")

        async def picked_up() -> dict[str, Any] | None:
            detail = await call(http, answered["id"])
            return detail if "unhold" in event_types(detail) else None

        detail = await eventually(picked_up)  # phone 1002 dialled 6001
        assert detail["parked"] is None
        async with http.post(url + "pickup/", json={"to": "1002"}) as refused:
            assert refused.status == 409 and "not parked" in await refused.text()
        assert str(a_leg) not in await adapter._api("valet_info")  # the lot is empty again
        detail = await reaches(http, answered["id"], "ended")
    assert server.mismatches == []
    assert server.received == sent_commands(capture)
    assert event_types(detail) == [
        "initiated",
        "ringing",
        "answered",
        "transfer_initiated",
        "transfer_completed",
        "hold",
        "unhold",
        "transfer_initiated",
        "transfer_completed",
        "ended",
    ]
    hold, unhold = detail["events"][5], detail["events"][6]
    assert hold["metadata"] == {"parked": "6001", "lot": "valet_parking_lot"} and hold["source"] == "switch"
    assert unhold["metadata"] == {"picked_up": "6001", "lot": "valet_parking_lot", "picked_up_by": "1002"}
    assert detail["transfer_target"] == "1002"

"""ESL events -> calld SwitchEvents, scenario by scenario, on the real FreeSWITCH captures."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from calld.adapters.freeswitch.esl_codec import EslParser, iter_events
from calld.adapters.freeswitch.mapping import EventMapper, LegCorrelator, event_key, event_time
from calld.domain.call import CallState, apply_event, new_call
from calld.domain.events import SwitchEvent
from calld.domain.vocabulary import CallDirection, CallStatus, EventType
from tests.fakes.esl_capture import load_capture

from .test_esl_codec import EXPECTED_EVENTS


def capture_events(name: str) -> list[dict[str, str]]:
    parser = EslParser()
    frames = [frame for chunk in load_capture(name).chunks() for frame in parser.feed(chunk)]
    return iter_events(frames)


def run(events: Iterable[Mapping[str, str]], mapper: EventMapper | None = None) -> dict[str, list[SwitchEvent]]:
    """Map a whole event stream; calls in the order they were initiated."""
    mapper = mapper or EventMapper()
    calls: dict[str, list[SwitchEvent]] = {}
    for event in events:
        for switch_event in mapper.map(event):
            calls.setdefault(switch_event.call_ref, []).append(switch_event)
    return calls


# Who ended the call and the raw codes are checked against the CDRs in test_end_story, the legs'
# RTP figures in test_call_quality, the parties in test_participants.
STORY_KEYS = frozenset({"hangup_by", "hangup_cause_q850", "sip_status", "answered_by", "participants", "quality"})


def shape(events: list[SwitchEvent]) -> list[Any]:
    return [(e.event_type.value, _without_story(e.metadata)) if e.metadata else e.event_type.value for e in events]


def _without_story(metadata: Any) -> dict[str, Any]:
    return {key: value for key, value in metadata.items() if key not in STORY_KEYS}


def ended(outcome: str, cause: str, billsec: int, duration: int, hangup_cause: str | None = None) -> Any:
    return (
        "ended",
        {
            "outcome": outcome,
            "cause": cause,
            "hangup_cause": hangup_cause or cause,
            "billsec": billsec,
            "duration": duration,
        },
    )


def conf_ended(billsec: int, duration: int) -> Any:
    name, meta = ended("ended", "NORMAL_CLEARING", billsec, duration)
    return (name, {**meta, "conference": "3000"})


OK = "NORMAL_CLEARING"
RING = ["initiated", "ringing", "answered"]
REC = "/opt/fslab/rec/dd924781-aec4-4e16-87ba-a955fc0eaa0c"

# call_ref -> exact event sequence (with metadata), for every call in each capture.
EXPECTED: dict[str, dict[str, list[Any]]] = {
    "a_answered": {
        # bgapi originate {origination_uuid=6e613668...}user/1000 9001: the pbx calls phone 1000.
        "6e613668-7a1e-4eb0-b38f-a1abd7100260": [*RING, ended("ended", OK, 4, 6)],
    },
    "a_answered.json": {
        "4e2d555b-6eaa-41f0-bf06-d701827b92d9": [*RING, ended("ended", OK, 4, 6)],
    },
    "a2_bridged": {
        "6c5a3e8e-5d79-4a42-8e48-d8e80680d6dd": [*RING, ended("ended", OK, 4, 5)],
    },
    "a2_bridged.json": {
        "62754c74-2a20-4439-8d5e-2cdb17a38f7f": [*RING, ended("ended", OK, 5, 6)],
    },
    "b_noanswer": {
        "5d801898-f2bd-4255-bc11-67ed5a8cae95": ["initiated", "ringing", ended("no_answer", "NO_ANSWER", 0, 8)],
        # loopback/9099: two legs (-a, -b), one call.
        "dedbfe99-ec94-42d6-bf7f-8acb6b2cb69c": ["initiated", "ringing", ended("no_answer", "NO_ANSWER", 0, 4)],
    },
    "c_busy": {
        "4adf009f-4842-4912-a192-d25300b0fbbc": ["initiated", ended("busy", "USER_BUSY", 0, 0)],
        # Phone 1000 dials 1003, the bridge fails 486: the A leg itself ends NORMAL_CLEARING.
        "bf61ec4d-5f3a-484a-9227-ed3acc835a2c": ["initiated", ended("busy", "USER_BUSY", 0, 0, OK)],
        "e92c484e-2d1b-48df-8abc-84521395631c": ["initiated", ended("busy", "USER_BUSY", 0, 0)],
    },
    "c_busy.json": {
        "5d3514b5-46ca-4d82-96dc-ffd9500b0253": ["initiated", ended("busy", "USER_BUSY", 0, 0)],
        "f9f3aed3-ad63-430d-bf01-f4e0254d43aa": ["initiated", ended("busy", "USER_BUSY", 0, 0, OK)],
        "f04124bf-f547-4d6f-ba8b-149806efd064": ["initiated", ended("busy", "USER_BUSY", 0, 0)],
    },
    "d_hold": {
        # uuid_hold, uuid_hold off, uuid_hold toggle x2.
        "8f77d873-212b-4067-9e01-c842e30c50c0": [*RING, "hold", "unhold", "hold", "unhold", ended("ended", OK, 10, 11)],
    },
    "d2_phone_hold": {
        "dae122ea-392d-4986-8ca3-0569f5c20c3a": [*RING, "hold", "unhold", ended("ended", OK, 7, 9)],
    },
    "e_blind_transfer": {
        "32160e29-2790-454b-9a8e-96f6d281653a": [
            *RING,
            ("transfer_initiated", {"transfer_to": "1002"}),
            ("transfer_completed", {"transfer_to": "1002"}),
            ended("ended", OK, 6, 8),
        ],
    },
    "e2_refer_blind": {
        "2506fc62-8f00-4d64-9844-f24a1a3fdc53": [
            *RING,
            ("transfer_initiated", {"transfer_to": "1002"}),
            ("transfer_completed", {"transfer_to": "1002"}),
            ended("ended", OK, 7, 8),
        ],
    },
    "f_attended_transfer": {
        # 1000 -> 1001; 1001 holds and consults 1002; REFER/Replaces bridges 1000 with 1002.
        "ac6c45c7-67db-4772-ad20-3be331a831b1": [
            *RING,
            "hold",
            "unhold",
            ("transfer_initiated", {"transfer_to": "1002"}),
            ("transfer_completed", {"transfer_to": "1002"}),
            ended("ended", OK, 13, 15),
        ],
        # The consultation call 1001 -> 1002 ends when its B leg is handed over.
        "f2efa733-4ac6-4ccb-b6ec-219e32fadf74": [*RING, ended("ended", OK, 3, 5)],
    },
    "g_recording": {
        "dd924781-aec4-4e16-87ba-a955fc0eaa0c": [
            *RING,
            ("recording_started", {"path": f"{REC}.wav"}),
            # RECORD_STOP's variable_record_ms / _file_size (the second RECORD_START still carries these).
            ("recording_stopped", {"path": f"{REC}.wav", "duration_seconds": 4.0, "file_size": 128044}),
            ("recording_started", {"path": f"{REC}-2.wav"}),
            # left running into the hangup
            ("recording_stopped", {"path": f"{REC}-2.wav", "duration_seconds": 2.04, "file_size": 65324}),
            ended("ended", OK, 8, 10),
        ],
    },
    "h_dtmf": {
        # Phone 1000 sends 123#; the pbx's own uuid_send_dtmf 456 produces no event.
        "76f368ab-4e47-4547-b546-52c1389fb0fb": [
            *RING,
            *[("dtmf", {"digit": d, "source": "RTP"}) for d in "123#"],
            ended("ended", OK, 7, 9),
        ],
        # loopback/9002: the digits show up on the -b leg, which belongs to the -a leg's call.
        "c2f77087-f968-4687-8b77-79b8d7f6af3f": [
            "initiated",
            "answered",
            *[("dtmf", {"digit": d, "source": "UNKNOWN"}) for d in "78*"],
            ended("ended", OK, 4, 4),
        ],
    },
    "i_conference": {
        "27168b7f-b489-4519-9356-fa3b6c9efb02": [*RING, conf_ended(11, 13)],
        "bdb42d38-b52c-4be1-b089-14ddb2872633": [
            *RING,
            ("muted", {"conference": "3000", "member_id": "2"}),
            ("unmuted", {"conference": "3000", "member_id": "2"}),
            conf_ended(7, 9),
        ],
        "1359971f-7d69-491f-99cf-379270692c89": [*RING, conf_ended(5, 7)],
    },
    "i_conference.json": {
        # Member ids 4-6 in this run: "conference 3000 mute 2" muted nobody.
        "1b844c9f-c1bc-4361-9cce-c49416dd244c": [*RING, conf_ended(12, 13)],
        "7b31de8f-1864-443a-b1cb-e2000bc60f56": [*RING, conf_ended(8, 9)],
        "d9e494a5-6c36-42d8-949c-c86dbe9aa31b": [*RING, conf_ended(6, 7)],
    },
    "k_register": {},
    "x_protocol": {},
    "x_auth_fail": {},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scenario_call_sequences(name: str) -> None:
    mapper = EventMapper()
    calls = run(capture_events(name), mapper)
    assert {ref: shape(events) for ref, events in calls.items()} == EXPECTED[name]
    assert list(calls) == list(EXPECTED[name])  # initiated in this order
    assert mapper.dropped == []
    assert mapper.active_calls == 0
    assert len(mapper.correlator) == 0


JSON_TWINS = ["d_hold", "e_blind_transfer", "f_attended_transfer", "g_recording", "h_dtmf"]


@pytest.mark.parametrize("name", JSON_TWINS)
def test_json_run_maps_like_the_plain_run(name: str) -> None:
    def types(capture: str) -> list[list[str]]:
        return [[e.event_type.value for e in evs] for evs in run(capture_events(capture)).values()]

    assert types(name + ".json") == types(name)


@pytest.mark.parametrize("name", sorted(EXPECTED_EVENTS))
def test_every_mapped_sequence_is_accepted_by_the_domain(name: str) -> None:
    calls = run(capture_events(name))
    for ref, events in calls.items():
        first, *rest = events
        assert first.event_type is EventType.INITIATED
        assert first.parties is not None
        state: CallState = new_call(first.parties.direction, first.timestamp)
        for event in rest:
            assert event.call_ref == ref
            state = apply_event(state, event.event_type, event.timestamp, event.metadata)
        if name.startswith("m2_reconnect") and ".2" not in name:
            continue  # the link was cut mid-call: the call ends on the second connection
        assert state.is_terminal, f"{ref} did not end"
        assert [e.event_type for e in events].count(EventType.ENDED) + [e.event_type for e in events].count(
            EventType.FAILED
        ) == 1
        assert events[-1].event_type in (EventType.ENDED, EventType.FAILED)
        timestamps = [e.timestamp for e in events]
        assert timestamps == sorted(timestamps)


@pytest.mark.parametrize("name", ["j_load", "j_load.json"])
def test_load_burst_200_calls_each_once(name: str) -> None:
    capture = load_capture(name)
    # The 200 origination uuids the recorder chose are the 200 call refs.
    refs = {
        m.group(1)
        for send in capture.sends()
        if (m := re.search(rb"origination_uuid=([0-9a-f-]{36})", send)) is not None
    }
    refs_text = {r.decode() for r in refs}
    assert len(refs_text) == 200
    mapper = EventMapper()
    calls = run(capture_events(name), mapper)
    assert set(calls) == refs_text
    assert Counter(tuple(e.event_type.value for e in evs) for evs in calls.values()) == Counter(
        {("initiated", "answered", "ended"): 200}
    )
    for events in calls.values():
        assert len(events) == 3
        assert events[0].parties is not None
        assert events[0].parties.direction is CallDirection.OUTBOUND
        assert events[0].parties.recipient_number == "9010"
        assert events[-1].metadata["outcome"] == "ended"
        assert events[-1].metadata["billsec"] in (2, 3)  # sleep 2000, whole seconds
    assert mapper.dropped == []
    assert mapper.active_calls == 0


def test_a_legs_create_can_come_after_both_answers() -> None:
    # Why a call may start before CHANNEL_CREATE: in j_load some loopback A legs' CHANNEL_CREATE
    # arrives after CHANNEL_ANSWER of both legs. Without handling that, "answered" is lost.
    events = capture_events("j_load")
    late = 0
    seen_answer: set[str] = set()
    for event in events:
        if event["Event-Name"] == "CHANNEL_ANSWER":
            seen_answer.add(event["Unique-ID"])
        elif event["Event-Name"] == "CHANNEL_CREATE" and event["Unique-ID"] in seen_answer:
            late += 1
    assert late > 0


@pytest.mark.parametrize("name", ["a2_bridged", "f_attended_transfer", "j_load"])
def test_keys_are_unique_and_stable_on_replay(name: str) -> None:
    events = capture_events(name)
    first = [e for evs in run(events).values() for e in evs]
    again = [e for evs in run(events).values() for e in evs]
    keys = [e.key for e in first]
    assert len(set(keys)) == len(keys)
    assert keys == [e.key for e in again]
    assert all(k.startswith("fs:56b25382-a241-4027-9940-c1e23312f8d5:") for k in keys)


def test_parties_and_timestamps() -> None:
    calls = run(capture_events("a2_bridged"))
    (events,) = calls.values()
    parties = events[0].parties
    assert parties is not None
    assert (parties.direction, parties.caller_number, parties.recipient_number) == (
        CallDirection.INBOUND,
        "1000",
        "1001",
    )
    assert parties.sip_call_id == "035455b5-628f-1240-6999-3a1bef5d0861"
    assert events[0].timestamp.tzinfo is UTC
    # The A leg's CHANNEL_CREATE: Event-Date-Timestamp in microseconds.
    create = next(e for e in capture_events("a2_bridged") if e["Event-Name"] == "CHANNEL_CREATE")
    assert events[0].timestamp == event_time(create)
    assert events[0].key == event_key(create)
    assert event_time({"Event-Date-Timestamp": "1795513685759779"}) == datetime(
        2026, 11, 24, 9, 48, 5, 759779, tzinfo=UTC
    )


def test_context_decides_direction_of_inbound_legs() -> None:
    mapper = EventMapper(context_directions={"default": CallDirection.OUTBOUND})
    calls = run(capture_events("c_busy"), mapper)
    directions = [evs[0].parties.direction for evs in calls.values() if evs[0].parties]
    assert directions == [CallDirection.OUTBOUND] * 3
    assert EventMapper().direction_of({"Call-Direction": "inbound", "Caller-Context": "public"}) is (
        CallDirection.INBOUND
    )


def _rewrite(events: list[dict[str, str]], uuid: str, **changes: str) -> list[dict[str, str]]:
    out = []
    for event in events:
        if event.get("Unique-ID") == uuid:
            event = {**event, **changes}
        out.append(event)
    return out


def test_calld_call_id_from_channel_variable() -> None:
    ref = "6e613668-7a1e-4eb0-b38f-a1abd7100260"
    events = _rewrite(capture_events("a_answered"), ref, variable_calld_call_id="call-42")
    (call,) = run(events).values()
    assert {e.calld_call_id for e in call} == {"call-42"}


def test_routing_failure_is_failed() -> None:
    ref = "e92c484e-2d1b-48df-8abc-84521395631c"  # c_busy's "respond 486" call
    events = _rewrite(capture_events("c_busy"), ref, **{"Hangup-Cause": "NO_ROUTE_DESTINATION"})
    events = [e for e in events if e.get("Unique-ID") == ref]
    (call,) = run(events).values()
    assert shape(call) == [
        "initiated",
        (
            "failed",
            {"cause": "NO_ROUTE_DESTINATION", "hangup_cause": "NO_ROUTE_DESTINATION", "billsec": 0, "duration": 0},
        ),
    ]


def test_caller_hanging_up_while_ringing() -> None:
    # Unanswered and neither busy, no answer nor a failure: an outbound call was cancelled,
    # an inbound one missed.
    ref = "5d801898-f2bd-4255-bc11-67ed5a8cae95"  # b_noanswer's first call, outbound
    events = _rewrite(capture_events("b_noanswer"), ref, **{"Hangup-Cause": "ORIGINATOR_CANCEL"})
    events = [e for e in events if e.get("Unique-ID") == ref]
    assert run(events)[ref][-1].metadata["outcome"] == CallStatus.CANCELLED.value
    inbound = [{**e, "Call-Direction": "inbound"} for e in events]
    assert run(inbound)[ref][-1].metadata["outcome"] == CallStatus.MISSED.value


def test_events_of_unknown_calls_and_noise_map_to_nothing() -> None:
    mapper = EventMapper()
    assert mapper.map({"Event-Name": "HEARTBEAT"}) == []
    assert mapper.map({"Event-Name": "CHANNEL_ANSWER", "Unique-ID": "x", "Call-Direction": "inbound"}) == []
    assert mapper.map({"Event-Name": "CHANNEL_HANGUP_COMPLETE", "Unique-ID": "x"}) == []
    assert mapper.map({"Event-Name": "CUSTOM", "Event-Subclass": "sofia::register"}) == []
    assert mapper.active_calls == 0


def test_correlator_links_by_originating_leg_not_channel_call_uuid() -> None:
    correlator = LegCorrelator()
    correlator.start_call("A")
    # B's first event: only Other-Leg-Unique-ID/Other-Type; its Channel-Call-UUID is its own.
    first_b_event = {"Other-Type": "originator", "Other-Leg-Unique-ID": "A", "Channel-Call-UUID": "B"}
    assert correlator.parent_of(first_b_event) == "A"
    assert correlator.parent_of({"variable_originating_leg_uuid": "A", "Channel-Call-UUID": "C"}) == "A"
    assert correlator.parent_of({"variable_originator": "A"}) == "A"
    assert correlator.parent_of({"variable_loopback_leg": "B", "variable_other_loopback_leg_uuid": "A"}) == "A"
    # The loopback A leg names its B leg too; that does not make it a child.
    assert correlator.parent_of({"variable_loopback_leg": "A", "variable_other_loopback_leg_uuid": "B"}) is None
    assert correlator.parent_of({"variable_bridge_uuid": "A"}) == "A"
    assert correlator.parent_of({"variable_signal_bond": "unknown"}) is None
    assert correlator.parent_of({"Other-Type": "originatee", "Other-Leg-Unique-ID": "B"}) is None
    correlator.attach("B", "A")
    assert correlator.legs("A") == {"A", "B"}
    correlator.rename("B", "B2")
    assert correlator.call_of("B2") == "A" and correlator.call_of("B") is None
    assert correlator.detach("A") == "A"
    assert correlator.legs("A") == {"B2"}
    correlator.forget("A")
    assert len(correlator) == 0 and correlator.call_of("B2") is None


def test_channel_call_uuid_really_is_unstable_in_the_captures() -> None:
    # Guard for the design: a2's B leg reverts to its own uuid at HANGUP_COMPLETE, and
    # f's consultation B leg switches to the transferred call.
    events = capture_events("a2_bridged")
    b_leg = "43141ecf-2843-4bb5-a85d-505911456d04"
    values = {e["Channel-Call-UUID"] for e in events if e.get("Unique-ID") == b_leg}
    assert values == {b_leg, "6c5a3e8e-5d79-4a42-8e48-d8e80680d6dd"}


def test_child_leg_seen_before_its_parent_still_joins_the_call() -> None:
    # Move the loopback -b leg's CHANNEL_CREATE ahead of every event of the -a leg.
    a_leg, b_leg = "dedbfe99-ec94-42d6-bf7f-8acb6b2cb69c", "fa043219-1c52-419b-8cbb-397c9339b6a8"
    events = [e for e in capture_events("b_noanswer") if e.get("Unique-ID") in (a_leg, b_leg)]
    create_b = next(e for e in events if e["Event-Name"] == "CHANNEL_CREATE" and e["Unique-ID"] == b_leg)
    events.remove(create_b)
    mapper = EventMapper()
    calls = run([create_b, *events], mapper)
    assert list(calls) == [a_leg]
    assert shape(calls[a_leg]) == EXPECTED["b_noanswer"][a_leg]
    # The call ended on the -b leg's HANGUP_COMPLETE (the last leg), not the -a leg's.
    last_b = [e for e in events if e["Unique-ID"] == b_leg and e["Event-Name"] == "CHANNEL_HANGUP_COMPLETE"][-1]
    assert calls[a_leg][-1].key == event_key(last_b)
    assert mapper.active_calls == 0

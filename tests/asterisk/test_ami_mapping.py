"""AMI events of real Asterisk 22 calls -> calld call events, scenario by scenario."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calld.adapters.asterisk.ami_codec import AmiParser
from calld.adapters.asterisk.mapping import AmiEventMapper, ChannelTimes, cdr_instant, parse_timestamp
from calld.adapters.asterisk.story import leg_quality
from calld.domain.call import CallState, apply_event, new_call
from calld.domain.events import SwitchEvent
from calld.domain.hangup import end_columns
from calld.domain.participants import participants_of
from calld.domain.quality import call_quality, estimate_mos
from calld.domain.vocabulary import CallDirection, CallStatus, EventType
from tests.asterisk.captures import CAPTURES, messages, raw

E = EventType
IN = CallDirection.INBOUND
OUT = CallDirection.OUTBOUND

NORMAL = {"cause": "Normal Clearing", "cause_code": 16}
ANSWERED_END = {**NORMAL, "dial_status": "ANSWER", "outcome": "ended"}
NO_ANSWER_END = {**NORMAL, "dial_status": "NOANSWER", "outcome": "no_answer"}
BUSY_END = {"cause": "User busy", "cause_code": 17, "dial_status": "BUSY", "outcome": "busy"}
CANCELLED_END = {
    "cause": "Interworking, unspecified",
    "cause_code": 127,
    "dial_status": "CANCEL",
    "outcome": "cancelled",
}
CONFERENCE_END = {**NORMAL, "conference": "calld-lab", "outcome": "ended"}
BRIDGED = [(E.RINGING, {}), (E.ANSWERED, {})]  # 1002 rings 1 s, then answers

# scenario -> per call (in order of initiation): (direction, caller, recipient, calld_call_id, events after initiated)
Expected = tuple[CallDirection, str, str, str | None, list[tuple[EventType, dict[str, Any]]]]
EXPECTED: dict[str, list[Expected]] = {
    "answered": [(IN, "1001", "1002", None, [*BRIDGED, (E.ENDED, ANSWERED_END)])],
    # Dial timed out: the caller's leg ends with cause 16, DIALSTATUS tells the truth.
    "no_answer": [(IN, "1001", "1002", None, [(E.RINGING, {}), (E.ENDED, NO_ANSWER_END)])],
    "busy": [(IN, "1001", "1002", None, [(E.ENDED, BUSY_END)])],
    "cancelled": [(IN, "1001", "1002", None, [(E.RINGING, {}), (E.ENDED, CANCELLED_END)])],
    "failed": [(IN, "1001", "9008", None, [(E.FAILED, {"cause": "Circuit/channel congestion", "cause_code": 34})])],
    "hold": [(IN, "1001", "1002", None, [*BRIDGED, (E.HOLD, {}), (E.UNHOLD, {}), (E.ENDED, ANSWERED_END)])],
    # calld's own hold (AsteriskAdapter.hold/unhold): only MusicOnHoldStart/Stop tell; the second hold
    # ends with 1001 hanging up while held (its music stops, but that is no unhold).
    "api_hold": [
        (
            IN, "1001", "1002", None,
            [
                *BRIDGED,
                (E.HOLD, {"music_on_hold": "default"}),
                (E.UNHOLD, {}),
                (E.HOLD, {"music_on_hold": "default"}),
                (E.ENDED, ANSWERED_END),
            ],
        )
    ],
    "blind_transfer": [
        (
            IN, "1001", "1002", None,
            [
                *BRIDGED,  # the Unhold Asterisk sends on 1002 just before the transfer is not passed on
                (E.TRANSFER_INITIATED, {"transfer_to": "1003", "context": "lab-inbound", "kind": "blind"}),
                (E.TRANSFER_COMPLETED, {"transfer_to": "1003"}),
                (E.ENDED, ANSWERED_END),
            ],
        )
    ],
    "redirect_transfer": [
        (
            IN, "1001", "1002", None,
            [
                *BRIDGED,
                (E.TRANSFER_INITIATED, {"transfer_to": "1003", "kind": "redirect"}),
                (E.TRANSFER_COMPLETED, {"transfer_to": "1003"}),
                (E.ENDED, ANSWERED_END),
            ],
        )
    ],
    "attended_transfer": [
        (
            IN, "1001", "1002", None,
            [
                *BRIDGED,
                # AMI Atxfer works by injecting the atxfer feature code and the target as DTMF.
                (E.DTMF, {"digit": "*", "duration_ms": 0}),
                (E.DTMF, {"digit": "2", "duration_ms": 0}),
                (E.HOLD, {}),  # 1001 hears hold music while 1002 consults 1003
                (E.DTMF, {"digit": "1", "duration_ms": 0}),
                (E.DTMF, {"digit": "0", "duration_ms": 0}),
                (E.DTMF, {"digit": "0", "duration_ms": 0}),
                (E.DTMF, {"digit": "3", "duration_ms": 0}),
                (E.TRANSFER_INITIATED, {"transfer_to": "1003", "kind": "attended"}),
                (E.TRANSFER_COMPLETED, {"transfer_to": "1003"}),
                (E.ENDED, ANSWERED_END),
            ],
        )
    ],
    "recording": [
        (
            IN, "1001", "1002", None,
            [
                *BRIDGED,
                (E.RECORDING_STARTED, {"path": "/var/spool/asterisk/monitor/calld-lab-recording.wav"}),
                (E.RECORDING_STOPPED, {"path": "/var/spool/asterisk/monitor/calld-lab-recording.wav"}),
                (E.ENDED, ANSWERED_END),
            ],
        )
    ],
    "dtmf": [
        (
            IN, "1001", "1002", None,
            [
                *BRIDGED,
                (E.DTMF, {"digit": "1", "duration_ms": 250}),
                (E.DTMF, {"digit": "2", "duration_ms": 250}),
                (E.DTMF, {"digit": "#", "duration_ms": 250}),
                # the PlayDTMF sent to 1001 produces no event
                (E.ENDED, ANSWERED_END),
            ],
        )
    ],
    "conference": [
        (IN, phone, "9005", None, [(E.ANSWERED, {}), (E.ENDED, CONFERENCE_END)])
        for phone in ("1001", "1002", "1003")
    ],
    "originate": [
        (OUT, "9999", "1001", "2b8427e5-787c-4771-9e87-c04548e833ab", [*BRIDGED, (E.ENDED, ANSWERED_END)]),
    ],
    "originate_channel_id": [
        (OUT, "9999", "1001", "945130d8-3092-49ce-9cd4-2d591179ab11", [*BRIDGED, (E.ENDED, ANSWERED_END)]),
    ],
    # "core stop now" hangs the call up before the Shutdown event.
    "restart_mid_call": [(IN, "1001", "1002", None, [*BRIDGED, (E.ENDED, ANSWERED_END)])],
    "restart_mid_call.after": [(IN, "1001", "1002", None, [*BRIDGED, (E.ENDED, ANSWERED_END)])],
    # kill -9: no Hangup ever comes; see test_crash_is_reconciled_after_reconnect.
    "crash_mid_call": [(IN, "1001", "1002", None, BRIDGED)],
    "crash_mid_call.after": [(IN, "1001", "1002", None, [*BRIDGED, (E.ENDED, ANSWERED_END)])],
}  # fmt: skip


def new_mapper() -> AmiEventMapper:
    return AmiEventMapper(inbound_contexts={"lab-inbound"}, outbound_contexts={"lab-outbound"})


def map_capture(name: str, mapper: AmiEventMapper | None = None) -> list[SwitchEvent]:
    mapper = mapper or new_mapper()
    return [event for message in messages(name) for event in mapper.map(message)]


def by_call(events: list[SwitchEvent]) -> dict[str, list[SwitchEvent]]:
    calls: dict[str, list[SwitchEvent]] = {}
    for event in events:
        calls.setdefault(event.call_ref, []).append(event)
    return calls


def test_every_capture_has_expectations() -> None:
    assert set(EXPECTED) == set(CAPTURES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scenario_maps_to_expected_call_events(name: str) -> None:
    calls = by_call(map_capture(name))
    assert len(calls) == len(EXPECTED[name])
    for events, expected in zip(calls.values(), EXPECTED[name], strict=True):
        direction, caller, recipient, calld_call_id, rest = expected
        first = events[0]
        assert first.event_type is E.INITIATED
        assert first.parties is not None
        assert (first.parties.direction, first.parties.caller_number, first.parties.recipient_number) == (
            direction,
            caller,
            recipient,
        )
        # Who ended the call is checked in test_who_ended_each_call, its parties in test_participants.
        assert [(e.event_type, _without(e.metadata, *STORY_KEYS)) for e in events[1:]] == rest
        assert all(e.parties is None for e in events[1:])
        assert {e.calld_call_id for e in events} == {calld_call_id}


STORY_KEYS = ("hangup_by", "answered_by", "participants", "quality")


def _without(metadata: Any, *keys: str) -> dict[str, Any]:
    return {name: value for name, value in metadata.items() if name not in keys}


# The recorded lab calls (lab/asterisk/capture.py) and who ended each: the first HangupRequest (the
# phone on that channel hung up) or SoftHangupRequest (Asterisk did: Dial's timeout, calld's AMI Hangup).
WHO_ENDED = {
    "answered": "caller",  # 1001 talks 2 s and sends BYE
    "busy": "callee",  # 1002 answers 486
    "cancelled": "caller",  # 1001 CANCELs while 1002 rings
    "no_answer": "switch",  # Dial(…,6) gives up
    "originate": "switch",  # calld's end_call: AMI Hangup
    "failed": "switch",  # Congestion(): the call failed
}


@pytest.mark.parametrize("name", sorted(WHO_ENDED))
def test_who_ended_each_call(name: str) -> None:
    [events] = by_call(map_capture(name)).values()
    end = events[-1]
    assert end.event_type in (E.ENDED, E.FAILED)
    status = CallStatus(end.metadata.get("outcome", "failed"))
    assert end_columns(end.event_type, end.metadata, status)["hangup_by"] == WHO_ENDED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_domain_accepts_every_mapped_sequence(name: str) -> None:
    states: dict[str, CallState] = {}
    for event in map_capture(name):
        if event.event_type is E.INITIATED:
            assert event.call_ref not in states
            assert event.parties is not None
            states[event.call_ref] = new_call(event.parties.direction, event.timestamp)
        else:
            state = states[event.call_ref]
            states[event.call_ref] = apply_event(state, event.event_type, event.timestamp, event.metadata)
    if name != "crash_mid_call":  # the one capture whose call never got its Hangup
        assert all(state.is_terminal for state in states.values())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_keys_are_unique_and_stable_on_replay(name: str) -> None:
    first = map_capture(name)
    keys = [e.key for e in first]
    assert len(keys) == len(set(keys))
    # Same bytes, different chunking, fresh mapper: same events (a replay is recognised by key).
    parser = AmiParser()
    data = raw(name)
    mapper = new_mapper()
    again = [ev for i in range(0, len(data), 7) for m in parser.feed(data[i : i + 7]) for ev in mapper.map(m)]
    assert again == first


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_timestamps_come_from_the_events_and_never_go_back(name: str) -> None:
    for events in by_call(map_capture(name)).values():
        stamps = [e.timestamp for e in events]
        assert all(ts.tzinfo is UTC for ts in stamps)
        assert stamps == sorted(stamps)
        assert stamps[0].year >= 2026


def test_nothing_is_dropped_in_the_plain_scenarios() -> None:
    plain = ("answered", "busy", "hold", "api_hold", "recording", "dtmf", "attended_transfer", "blind_transfer")
    for name in plain:
        mapper = new_mapper()
        map_capture(name, mapper)
        assert mapper.dropped == [], name
        assert mapper.open_calls() == []


def test_crash_is_reconciled_after_reconnect() -> None:
    mapper = new_mapper()
    events = map_capture("crash_mid_call", mapper)
    ref = events[0].call_ref
    assert mapper.open_calls() == [ref]
    # The new session's first CoreShowChannels lists nothing: the call is gone.
    after = messages("crash_mid_call.after")
    first_list_end = next(i for i, m in enumerate(after) if m.event == "CoreShowChannelsComplete")
    live = {m["Linkedid"] for m in after[:first_list_end] if m.event == "CoreShowChannel"}
    assert live == set()
    now = parse_timestamp(after[-2]["Timestamp"])
    (lost,) = mapper.reconcile(live, now)
    # It had been answered: ended (README "After a fault"), its end unknown, as on FreeSWITCH.
    assert (lost.call_ref, lost.event_type, lost.key) == (ref, E.ENDED, f"{ref}:lost:ended")
    # Its parties as last seen (nobody saw them leave) are checked in test_participants.
    assert _without(lost.metadata, *STORY_KEYS) == {
        "ended_while_disconnected": True,
        "cause": "UNKNOWN",
        "reason": "call no longer on the switch after reconnect",
        "outcome": "ended",
    }
    assert (lost.timestamp, lost.recovered_from) == (now, "channels")
    assert mapper.open_calls() == []
    assert mapper.reconcile(live, now) == []  # closed once
    state = new_call(IN, events[0].timestamp)
    for event in [*events[1:], lost]:
        state = apply_event(state, event.event_type, event.timestamp, event.metadata)
    assert state.status is CallStatus.ENDED


def test_an_unanswered_call_that_vanished_failed() -> None:
    capture = messages("crash_mid_call")
    probe = new_mapper()
    answering = next(i for i, m in enumerate(capture) if any(e.event_type is E.ANSWERED for e in probe.map(m)))
    mapper = new_mapper()
    before = [event for message in capture[:answering] for event in mapper.map(message)]
    ref = before[0].call_ref
    assert mapper.open_calls() == [ref] and E.RINGING in [e.event_type for e in before]
    (lost,) = mapper.reconcile(set(), before[-1].timestamp)
    assert (lost.event_type, lost.key) == (E.FAILED, f"{ref}:lost:failed")
    assert lost.metadata["ended_while_disconnected"] is True and lost.metadata["cause"] == "UNKNOWN"
    assert "outcome" not in lost.metadata


def test_call_up_at_connect_is_adopted_from_core_show_channels() -> None:
    after = messages("crash_mid_call.after")
    second_list = [m for m in after if m.event == "CoreShowChannel"]
    assert len(second_list) == 2  # both legs of the new call
    mapper = new_mapper()
    seen_at = datetime(2026, 11, 25, tzinfo=UTC)
    assert all(mapper.map(item, received_at=seen_at) == [] for item in second_list)  # the list is adopt's
    adopted = mapper.adopt(second_list, seen_at)
    # Stored as a call of its own: initiated (at the oldest channel's age), answered (a channel is up).
    assert [e.event_type for e in adopted] == [E.INITIATED, E.ANSWERED]
    (ref,) = mapper.open_calls()
    assert {e.call_ref for e in adopted} == {ref} and all(e.recovered_from == "channels" for e in adopted)
    initiated = adopted[0]
    assert initiated.parties is not None and initiated.metadata == {"adopted": True}
    age = max(int(m["Duration"].split(":")[2]) for m in second_list)
    assert initiated.timestamp == seen_at - timedelta(seconds=age)
    assert [e.key for e in adopted] == [f"{ref}:adopt:initiated", f"{ref}:adopt:answered"]
    assert mapper.adopt(second_list, seen_at) == []  # listed again: nothing twice
    assert mapper.reconcile({ref}, seen_at) == []
    # Its hangups, seen later, end it as an answered call.
    hangups = [m for m in after if m.event == "Hangup"]
    ended = [e for m in hangups for e in mapper.map(m)]
    assert [(e.event_type, e.metadata["outcome"]) for e in ended] == [(E.ENDED, "ended")]


def test_an_adopted_call_takes_its_start_and_answer_from_the_switchs_cdr() -> None:
    """The channel list gives ages in whole seconds; the channels' CDR (read with Getvar) gives the
    switch's own instants, which an adopted call takes where it has them."""
    listed = [m for m in messages("crash_mid_call.after") if m.event == "CoreShowChannel"]
    seen_at = datetime(2026, 11, 25, 12, 0, 10, tzinfo=UTC)
    started = datetime(2026, 11, 25, 12, 0, 7, 123456, tzinfo=UTC)
    answered = datetime(2026, 11, 25, 12, 0, 8, 654321, tzinfo=UTC)
    caller, callee = (m["Uniqueid"] for m in listed)
    times = {
        caller: ChannelTimes(started, answered + timedelta(milliseconds=20)),  # bridged a moment after
        callee: ChannelTimes(started + timedelta(milliseconds=5), answered),
    }
    adopted = new_mapper().adopt(listed, seen_at, times)
    assert [(e.event_type, e.timestamp) for e in adopted] == [(E.INITIATED, started), (E.ANSWERED, answered)]
    # Without the CDR (off, or unreadable) the age stands for both.
    fallback = new_mapper().adopt(listed, seen_at, {caller: ChannelTimes(None, None)})
    assert fallback[0].timestamp == fallback[1].timestamp < seen_at


def test_cdr_instants_are_read_raw_with_microseconds() -> None:
    assert cdr_instant("1796286459.872415") == datetime(2026, 12, 3, 8, 27, 39, 872415, tzinfo=UTC)
    assert cdr_instant("0.000000") is None  # not answered
    assert cdr_instant("") is None and cdr_instant(None) is None and cdr_instant("2026-12-03") is None


def test_adoption_of_a_call_the_mapper_knows_adds_nothing() -> None:
    after = messages("crash_mid_call.after")
    newchannels = [m for m in after if m.event == "Newchannel"]
    listed = [m for m in after if m.event == "CoreShowChannel"]
    mapper = new_mapper()
    for message in newchannels:
        mapper.map(message)
    assert mapper.adopt(listed, datetime(2026, 11, 25, tzinfo=UTC)) == []


def test_direction_comes_from_configured_contexts() -> None:
    calls = by_call(map_capture("answered", AmiEventMapper(outbound_contexts={"lab-inbound"})))
    (events,) = calls.values()
    assert events[0].parties is not None and events[0].parties.direction is OUT
    calls = by_call(map_capture("answered", AmiEventMapper(default_direction=OUT)))
    (events,) = calls.values()
    assert events[0].parties is not None and events[0].parties.direction is OUT


def test_unanswered_outcome_without_dial_depends_on_direction() -> None:
    # Synthetic: an incoming call hung up normally by the switch before anyone answered.
    base = {"Channel": "PJSIP/1001-00000001", "Uniqueid": "10.1", "Linkedid": "10.1", "Context": "lab-inbound"}
    newchannel = {"Event": "Newchannel", "Timestamp": "10.000001", "ChannelState": "4", "Exten": "9001", **base}
    hangup = {"Event": "Hangup", "Timestamp": "14.000001", "Cause": "16", "Cause-txt": "Normal Clearing", **base}
    for mapper, outcome in ((new_mapper(), "missed"), (AmiEventMapper(outbound_contexts={"lab-inbound"}), "no_answer")):
        events = mapper.map(newchannel) + mapper.map(hangup)
        assert [(e.event_type, e.metadata.get("outcome")) for e in events] == [(E.INITIATED, None), (E.ENDED, outcome)]
        assert events[1].timestamp - events[0].timestamp == timedelta(seconds=4)


def test_event_without_timestamp_uses_received_at() -> None:
    base = {"Channel": "PJSIP/1001-00000001", "Uniqueid": "10.1", "Linkedid": "10.1", "Context": "lab-inbound"}
    at = datetime(2026, 1, 1, tzinfo=UTC)
    (event,) = new_mapper().map({"Event": "Newchannel", "ChannelState": "4", "Exten": "1", **base}, received_at=at)
    assert event.timestamp == at
    with pytest.raises(ValueError, match="timestampevents"):
        new_mapper().map({"Event": "Newchannel", "ChannelState": "4", "Exten": "1", **base})


# The recorded lab calls' parties: capture -> who answered, each party's (role, answered).
PARTIES = {
    "answered": ("1002", {"1001": ("caller", True), "1002": ("callee", True)}),
    "no_answer": (None, {"1001": ("caller", False), "1002": ("callee", False)}),
    "busy": (None, {"1001": ("caller", False), "1002": ("callee", False)}),
    "blind_transfer": (
        "1002",
        {"1001": ("caller", True), "1002": ("callee", True), "1003": ("transfer_target", True)},
    ),
    "attended_transfer": (
        "1002",
        {"1001": ("caller", True), "1002": ("callee", True), "1003": ("transfer_target", True)},
    ),
}


@pytest.mark.parametrize("name", sorted(PARTIES))
def test_participants(name: str) -> None:
    [events] = by_call(map_capture(name)).values()
    end = events[-1]
    answered_by, expected = PARTIES[name]
    assert end.metadata.get("answered_by") == answered_by
    parties = participants_of(end.metadata)
    assert parties is not None
    assert {p.number: (p.role.value, p.answered_at is not None) for p in parties} == expected
    assert all(p.endpoint == f"PJSIP/{p.number}" and p.left_at is not None for p in parties)


def test_conference_members_answer_nobody() -> None:
    for events in by_call(map_capture("conference")).values():
        parties = participants_of(events[-1].metadata)
        assert parties is not None and [p.role.value for p in parties] == ["conference_member"]
        assert "answered_by" not in events[-1].metadata


@pytest.mark.parametrize("name", ["answered", "hold", "blind_transfer", "recording"])
def test_rtp_quality_of_the_recorded_calls_is_no_measurement(name: str) -> None:
    # Each channel's RTPAUDIOQOS reaches AMI (VarSet) before its Hangup; the lab's sipp phones send no
    # RTP, so every leg says rxcount=0: reported, but not a measurement.
    for events in by_call(map_capture(name)).values():
        end = events[-1]
        legs = end.metadata["quality"]["legs"]
        assert legs and {leg["packets"] for leg in legs} == {0}
        assert {leg["leg"] for leg in legs} <= {e.get("Uniqueid") for e in messages(name)}
        assert call_quality(end.metadata) is None


def test_rtp_quality_reads_asterisks_rtpaudioqos() -> None:
    value = (
        "ssrc=1698681438;themssrc=2215414;lp=12;rxjitter=0.004250;rxcount=288;txjitter=0.001000;"
        "txcount=300;rlp=0;rtt=0.061000;rxmes=88.100000;txmes=90.000000"
    )
    leg = leg_quality("1795567147.4", value)
    assert leg is not None
    assert (leg.leg, leg.packets, leg.jitter_ms, leg.packet_loss_pct, leg.rtt_ms) == (
        "1795567147.4",
        288,
        4.25,
        4.0,
        61.0,
    )
    assert leg.mos is None and leg.effective_mos() == estimate_mos(4.0, 4.25, 61.0)
    # No RTCP came back: rtt 0 is unknown, not a perfect round trip.
    quiet = leg_quality("x", "ssrc=1;themssrc=0;lp=0;rxjitter=0.000000;rxcount=0;rtt=0.000000")
    assert quiet is not None and (quiet.rtt_ms, quiet.packet_loss_pct, quiet.measured) == (None, None, False)
    assert leg_quality("x", "garbage") is None

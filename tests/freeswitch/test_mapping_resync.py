"""The mapper's side of reconnecting and of call control, from real captures and plain data."""

from __future__ import annotations

from datetime import UTC, datetime

from calld.adapters.freeswitch.esl_codec import EslParser, iter_events
from calld.adapters.freeswitch.mapping import EventMapper
from calld.domain.events import SwitchEvent
from calld.domain.vocabulary import CallDirection, EventType
from tests.fakes.esl_capture import load_capture

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def events_of(name: str) -> list[dict[str, str]]:
    parser = EslParser()
    return [event for chunk in load_capture(name).chunks() for event in iter_events(parser.feed(chunk))]


def map_until(mapper: EventMapper, events: list[dict[str, str]], wanted: EventType) -> tuple[list[SwitchEvent], int]:
    """Map events up to the one that causes ``wanted``; the mapped events and how many were used."""
    out: list[SwitchEvent] = []
    for index, event in enumerate(events):
        out.extend(mapper.map(event))
        if out and out[-1].event_type is wanted:
            return out, index + 1
    raise AssertionError(f"never {wanted}")


def legs(events: list[dict[str, str]]) -> tuple[str, str]:
    """The A (inbound) and B (outbound) leg uuids of a bridged phone-to-phone capture."""
    created = {e["Call-Direction"]: e["Unique-ID"] for e in events if e.get("Event-Name") == "CHANNEL_CREATE"}
    return created["inbound"], created["outbound"]


def test_control_leg_is_the_users_phone_or_the_far_party() -> None:
    events = events_of("d_hold.json")
    a, b = legs(events)
    outbound = EventMapper({"default": CallDirection.OUTBOUND})
    map_until(outbound, events, EventType.ANSWERED)
    # Phone 1000 (A) placed the call: it is calld's user, 1001 (B) the far party.
    assert (outbound.control_leg(a, near=True), outbound.control_leg(a, near=False)) == (a, b)
    inbound = EventMapper({"default": CallDirection.INBOUND})
    map_until(inbound, events, EventType.ANSWERED)
    # The same call seen as coming in to the user at 1001: the far party is the caller, A.
    assert (inbound.control_leg(a, near=True), inbound.control_leg(a, near=False)) == (b, a)
    assert inbound.control_leg("no-such-call", near=True) is None


def test_reconcile_closes_an_answered_call_that_vanished_once() -> None:
    events = events_of("a2_bridged.json")
    mapper = EventMapper()
    mapped, _ = map_until(mapper, events, EventType.ANSWERED)
    ref = mapped[0].call_ref
    [closed] = mapper.reconcile(set(), NOW)
    assert (closed.call_ref, closed.event_type, closed.timestamp) == (ref, EventType.ENDED, NOW)
    assert closed.metadata["ended_while_disconnected"] is True and closed.metadata["outcome"] == "ended"
    assert mapper.open_calls() == []
    assert mapper.reconcile(set(), NOW) == []
    # A second reconcile of the same call would carry the same key: storage de-duplicates it.
    again = EventMapper()
    map_until(again, events, EventType.ANSWERED)
    assert again.reconcile(set(), NOW)[0].key == closed.key


def test_reconcile_keeps_live_calls_and_forgets_only_dead_legs() -> None:
    events = events_of("a2_bridged.json")
    a, b = legs(events)
    mapper = EventMapper()
    _, used = map_until(mapper, events, EventType.ANSWERED)
    assert mapper.reconcile({a, b}, NOW) == []
    assert mapper.reconcile({a}, NOW) == []  # B hung up while we were away; A is still up
    assert mapper.control_leg(a, near=False) == a  # only A is left to act on
    rest = [e for event in events[used:] for e in mapper.map(event)]
    assert [e.event_type for e in rest] == [EventType.ENDED]  # A's own hangup ends the call
    assert rest[0].metadata["hangup_cause"] == "NORMAL_CLEARING"


def test_reconcile_fails_an_unanswered_call_that_vanished() -> None:
    events = events_of("a2_bridged.json")
    mapper = EventMapper()
    map_until(mapper, events, EventType.RINGING)
    [closed] = mapper.reconcile(set(), NOW)
    assert closed.event_type is EventType.FAILED and closed.metadata["ended_while_disconnected"] is True


def test_adopt_takes_over_a_bridged_call_from_the_channel_list() -> None:
    rows = [
        {
            "uuid": "aaaaaaaa-0000-0000-0000-000000000001",
            "direction": "inbound",
            "created_epoch": "1795513901",
            "cid_num": "1000",
            "dest": "1001",
            "context": "public",
            "callstate": "ACTIVE",
            "call_uuid": "aaaaaaaa-0000-0000-0000-000000000001",
        },
        {
            "uuid": "bbbbbbbb-0000-0000-0000-000000000002",
            "direction": "outbound",
            "created_epoch": "1795513901",
            "cid_num": "1000",
            "dest": "1001",
            "context": "default",
            "callstate": "ACTIVE",
            "call_uuid": "aaaaaaaa-0000-0000-0000-000000000001",
        },
    ]
    mapper = EventMapper({"public": CallDirection.INBOUND})
    adopted = mapper.adopt(rows)
    assert [e.event_type for e in adopted] == [EventType.INITIATED, EventType.ANSWERED]
    initiated = adopted[0]
    assert initiated.call_ref == rows[0]["uuid"]
    assert initiated.parties is not None
    assert (initiated.parties.direction, initiated.parties.caller_number, initiated.parties.recipient_number) == (
        CallDirection.INBOUND,
        "1000",
        "1001",
    )
    assert initiated.timestamp == datetime.fromtimestamp(1795513901, UTC)
    assert mapper.control_leg(rows[0]["uuid"], near=True) == rows[1]["uuid"]
    assert mapper.adopt(rows) == []  # already known: nothing twice
    # Both legs hang up later: the adopted call ends like any other.
    hangups = [
        {
            "Event-Name": "CHANNEL_HANGUP_COMPLETE",
            "Unique-ID": row["uuid"],
            "Hangup-Cause": "NORMAL_CLEARING",
            "Event-Date-Timestamp": "1795513961000000",
            "Core-UUID": "core",
            "Event-Sequence": str(index),
        }
        for index, row in enumerate(rows)
    ]
    ended = [e for event in hangups for e in mapper.map(event)]
    assert [e.event_type for e in ended] == [EventType.ENDED]
    assert mapper.open_calls() == []

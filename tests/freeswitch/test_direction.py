"""Direction from the recorded FreeSWITCH captures, with the lab's configuration (README of the captures:
trunks land in ``public``, the phones 1000-1004 dial from ``default``): a phone dialling another phone or
one of the PBX's own extensions is internal, a trunk's call inbound, a call the switch originated outbound."""

from __future__ import annotations

import pytest

from calld.adapters.freeswitch.esl_codec import EslParser, iter_events
from calld.adapters.freeswitch.mapping import EventMapper
from calld.domain.direction import DEFAULT_INTERNAL_EXTENSIONS, extensions_pattern
from calld.domain.vocabulary import CallDirection, CallStatus, EventType
from tests.fakes.esl_capture import load_capture

IN, OUT, INTERNAL = CallDirection.INBOUND, CallDirection.OUTBOUND, CallDirection.INTERNAL
LAB = {"public": IN, "default": OUT}


def initiated(name: str, extensions: str = DEFAULT_INTERNAL_EXTENSIONS) -> list[tuple[str, str, CallDirection]]:
    """(caller, recipient, direction) of each call of capture ``name``, in order."""
    parser = EslParser()
    mapper = EventMapper(LAB, internal_extensions=extensions_pattern(extensions))
    found = []
    for chunk in load_capture(name).chunks():
        for event in iter_events(parser.feed(chunk)):
            for mapped in mapper.map(event):
                if mapped.event_type is EventType.INITIATED and mapped.parties is not None:
                    p = mapped.parties
                    found.append((p.caller_number, p.recipient_number, p.direction))
    return found


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # phone to phone (sofia/internal/1000 bridged to user/100x): extension to extension
        ("a2_bridged", [("1000", "1001", INTERNAL)]),
        ("a2_bridged.json", [("1000", "1001", INTERNAL)]),
        ("q_rtp_quality.json", [("1000", "1001", INTERNAL)]),
        ("f_attended_transfer", [("1000", "1001", INTERNAL), ("1001", "1002", INTERNAL)]),
        ("p_abandon", [("1000", "1004", INTERNAL)]),
        # a ring group and a hunt group are the PBX's own extensions too
        ("o_ring_group", [("1000", "2000", INTERNAL)]),
        ("o2_hunt", [("1000", "2001", INTERNAL)]),
        # the switch rang a phone (originate user/1003), then phone 1000 dialled 1003 and 9486
        ("c_busy", [("0000000000", "1003", OUT), ("1000", "1003", INTERNAL), ("1000", "9486", INTERNAL)]),
        # calld's initiate_call (originate): outbound, as calld stores it itself
        ("l_calld_originate", [("1001", "1000", OUT)]),
        ("l_calld_originate.json", [("1001", "1000", OUT)]),
        # a trunk's call into public, transferred to a phone: inbound
        ("p3_trunk_answered", [("+4930123456", "5551001", IN)]),
        ("p3_trunk_answered.json", [("+4930123456", "5551001", IN)]),
        ("p4_trunk_missed", [("+4930123456", "5551004", IN)]),
    ],
)
def test_phone_to_phone_captures_are_internal_and_trunk_calls_keep_their_direction(
    name: str, expected: list[tuple[str, str, CallDirection]]
) -> None:
    assert initiated(name) == expected


def test_the_configured_extensions_decide_what_is_internal() -> None:
    # With extensions 2000-2999 only, phone 1000 calling 1001 is a call out of the PBX; with "" none is internal.
    assert initiated("a2_bridged", "2[0-9]{3}") == [("1000", "1001", OUT)]
    assert initiated("o_ring_group", "2[0-9]{3}") == [("1000", "2000", INTERNAL)]
    assert initiated("a2_bridged", "") == [("1000", "1001", OUT)]


def test_an_internal_call_the_caller_gave_up_on_is_missed_not_cancelled() -> None:
    parser = EslParser()
    mapper = EventMapper(LAB, internal_extensions=extensions_pattern(DEFAULT_INTERNAL_EXTENSIONS))
    ended = [
        e
        for chunk in load_capture("p_abandon").chunks()
        for ev in iter_events(parser.feed(chunk))
        for e in mapper.map(ev)
        if e.event_type is EventType.ENDED
    ]
    assert [e.metadata.get("outcome") for e in ended] == [CallStatus.MISSED.value]

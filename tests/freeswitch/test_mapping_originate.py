"""Calls placed through calld's initiate_call on a real FreeSWITCH 1.10.12 (calld as the client:
``l_calld_originate``), and a trunk call transferred out of its inbound context (``p3_trunk_answered``).

FreeSWITCH stamps ``Caller-Transfer-Source: <t>:<uuid>:bl_xfer:<ext>/<ctx>/XML`` on a leg each time
it re-enters the dialplan, and keeps it on every later event of the leg, hangup included. Entering
the dialplan before the call is bridged is the call starting (originate's ``<ext> XML <ctx>``, a
trunk's ``transfer``), not a party being transferred: no transfer may be stored for it.
"""

from __future__ import annotations

import pytest

from calld.adapters.freeswitch.esl_codec import EslParser, iter_events
from calld.adapters.freeswitch.mapping import EventMapper
from calld.domain.vocabulary import CallDirection, EventType
from tests.fakes.esl_capture import load_capture


def call_events(name: str) -> list[EventType]:
    parser = EslParser()
    mapper = EventMapper({"public": CallDirection.INBOUND, "default": CallDirection.OUTBOUND})
    events = [
        e for chunk in load_capture(name).chunks() for ev in iter_events(parser.feed(chunk)) for e in mapper.map(ev)
    ]
    assert len({e.call_ref for e in events}) == 1
    return [e.event_type for e in events]


@pytest.mark.parametrize(
    "name", ["l_calld_originate", "l_calld_originate.json", "p3_trunk_answered", "p3_trunk_answered.json"]
)
def test_entering_the_dialplan_before_the_bridge_is_no_transfer(name: str) -> None:
    types = call_events(name)
    assert EventType.TRANSFER_INITIATED not in types, types
    assert types[0] is EventType.INITIATED and EventType.ANSWERED in types and types[-1] is EventType.ENDED

"""The adapter subscribes to fewer events than the captures recorded (``event json ALL``): mapping
only the subscribed ones must give exactly the call events that mapping everything gives."""

from __future__ import annotations

import pytest

from calld.adapters.freeswitch.adapter import subscription_command, wanted
from calld.adapters.freeswitch.esl_codec import EslParser, iter_events
from calld.adapters.freeswitch.mapping import EventMapper
from calld.domain.events import SwitchEvent
from tests.fakes.esl_capture import capture_names, load_capture

# m_ and m2_ start with calls up before connecting (see test_adapter_resync); l_ is calld itself
# as the client, already subscribed narrowly (see test_mapping_originate).
CALL_CAPTURES = [name for name in capture_names() if not name.startswith(("x_", "k_", "l_", "m_", "m2_"))]


def mapped(name: str, keep_all: bool) -> tuple[list[SwitchEvent], int]:
    parser = EslParser()
    mapper = EventMapper()
    out: list[SwitchEvent] = []
    kept = 0
    for chunk in load_capture(name).chunks():
        for event in iter_events(parser.feed(chunk)):
            if keep_all or wanted(event):
                kept += 1
                out.extend(mapper.map(event))
    return out, kept


@pytest.mark.parametrize("name", CALL_CAPTURES)
def test_subscribed_events_map_to_the_same_call_events(name: str) -> None:
    everything, total = mapped(name, keep_all=True)
    subscribed, kept = mapped(name, keep_all=False)
    assert everything, f"{name} has calls, so it must map to call events"
    assert subscribed == everything
    assert kept < total / 2  # the subscription really is narrower


def test_wanted_follows_the_subscription() -> None:
    command = subscription_command().decode()
    assert command.startswith("event json CHANNEL_CREATE ")
    assert command.endswith(" CUSTOM conference::maintenance valet_parking::info\n\n")
    assert wanted({"Event-Name": "CHANNEL_ANSWER"})
    assert wanted({"Event-Name": "CUSTOM", "Event-Subclass": "conference::maintenance"})
    assert wanted({"Event-Name": "CUSTOM", "Event-Subclass": "valet_parking::info"})  # park/ and pickup/
    assert not wanted({"Event-Name": "CUSTOM", "Event-Subclass": "sofia::register"})
    assert not wanted({"Event-Name": "HEARTBEAT"})
    assert not wanted({"Event-Name": "API"})

"""The codec's fast paths against the slow, obvious way, on every frame of every real capture.

Each fast path (msgspec's typed decoder for text/event-json bodies, ...) must give exactly what the plain
standard-library way gives; the reference implementations here are the codec as it was before.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from calld.adapters.freeswitch.esl_codec import EslParser, EslProtocolError, Frame, decode_json_event
from tests.fakes.esl_capture import capture_names, load_capture

ALL_CAPTURES = capture_names()
JSON_CAPTURES = [name for name in ALL_CAPTURES if name.endswith(".json")]


def frames_of(name: str) -> list[Frame]:
    parser = EslParser()
    return [frame for chunk in load_capture(name).chunks() for frame in parser.feed(chunk)]


def reference_json_event(body: bytes) -> dict[str, str]:
    """decode_json_event as it was: json.loads, arrays in the plain spelling, other values dumped."""
    try:
        obj: Any = json.loads(body)
    except ValueError as exc:
        raise EslProtocolError(str(exc)) from None
    if not isinstance(obj, dict):
        raise EslProtocolError("not an object")

    def plain(value: Any) -> str:
        if isinstance(value, list):
            return "ARRAY::" + "|:".join(plain(item) for item in value)
        return value if isinstance(value, str) else json.dumps(value)

    return {name: plain(value) for name, value in obj.items()}


@pytest.mark.parametrize("name", JSON_CAPTURES)
def test_json_events_decode_as_json_loads_decodes_them(name: str) -> None:
    bodies = [frame.body for frame in frames_of(name) if frame.content_type == "text/event-json"]
    assert bodies
    for body in bodies:
        assert decode_json_event(body) == reference_json_event(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"Event-Name":"X","A":"\\ud800"}',  # a lone surrogate escape: msgspec refuses, json takes it
        b'{"Event-Name":"X","A":NaN}',
        b'{"Event-Name":"X","A":123456789012345678901234567890}',  # past 64 bits
        b'{"Event-Name":"X","A":1.10,"B":[1,"b",["c"]],"C":null,"D":true,"E":{"f":"g"}}',
        b'{"Event-Name":"X","A":"1","A":"2"}',  # a repeated name: the last one wins in both
        b'\xef\xbb\xbf{"Event-Name":"X"}',  # a UTF-8 byte order mark
        '{"Event-Name":"X","A":"é"}'.encode("utf-16"),
        b'{"Event-Name":"X","A":"\\u00e9\\n\\"q\\""}',
    ],
)
def test_json_bodies_the_fast_decoder_refuses_decode_as_json_loads(body: bytes) -> None:
    assert decode_json_event(body) == reference_json_event(body)


@pytest.mark.parametrize("body", [b'{"Event-Name":"X","A":"\xff"}', b"[1]", b"{", b"", b'"text"'])
def test_bad_json_bodies_are_refused_as_before(body: bytes) -> None:
    with pytest.raises(EslProtocolError):
        reference_json_event(body)
    with pytest.raises(EslProtocolError):
        decode_json_event(body)

"""The codec's fast paths against the slow, obvious way, on every frame of every real capture.

Each fast path (msgspec's typed decoder for text/event-json bodies; skipping unwanted events by a
name read off the raw body) must give exactly what the plain standard-library way gives; the
reference implementations here are the codec as it was before.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from calld.adapters.freeswitch.adapter import _WANTED_OR_CUSTOM, wanted
from calld.adapters.freeswitch.esl_codec import EslParser, EslProtocolError, Frame, decode_json_event, not_wanted
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


@pytest.mark.parametrize("name", ALL_CAPTURES)
def test_events_skipped_undecoded_are_never_wanted(name: str) -> None:
    events = [frame for frame in frames_of(name) if frame.is_event]
    names = [frame.event()["Event-Name"] for frame in events]
    wanted_sets = [_WANTED_OR_CUSTOM, frozenset(), *({n} for n in set(names))]
    for names_wanted in wanted_sets:
        skipped = [not_wanted(frame, names_wanted) for frame in events]
        assert not any(skip and n in names_wanted for skip, n in zip(skipped, names, strict=True))
    # What is not skipped although unwanted: CUSTOM events (Event-Subclass comes first), so do
    # PRIVATE_COMMAND and a sendevent echo, and bodies with a backslash (an escape) in them.
    left = {
        event_name
        for frame, event_name in zip(events, names, strict=True)
        if b"\\" not in frame.body and not not_wanted(frame, frozenset())
    }
    assert left <= {"CUSTOM", "PRIVATE_COMMAND"} or name == "x_protocol"


def test_most_unsubscribed_j_load_events_are_skipped_undecoded() -> None:
    events = [frame for frame in frames_of("j_load.json") if frame.is_event]
    unwanted = [frame for frame in events if not wanted(frame.event())]
    skipped = sum(not_wanted(frame, _WANTED_OR_CUSTOM) for frame in unwanted)
    assert skipped > 0.9 * len(unwanted)
    assert not any(not_wanted(frame, _WANTED_OR_CUSTOM) for frame in events if wanted(frame.event()))


def json_frame(body: bytes) -> Frame:
    return Frame({"Content-Type": "text/event-json", "Content-Length": str(len(body))}, body)


def plain_frame(body: bytes) -> Frame:
    return Frame({"Content-Type": "text/event-plain", "Content-Length": str(len(body))}, body)


@pytest.mark.parametrize(
    "frame",
    [
        json_frame(b'{"Event-Name":"API","Event-Name":"CHANNEL_CREATE"}'),  # decoding keeps the last
        json_frame(b'{"Event-Name":"API","Event\\u002dName":"CHANNEL_CREATE"}'),  # the same key, escaped
        json_frame(b'{"Event-Name":"API","Event-Name":["CHANNEL_CREATE"]}'),
        json_frame(b'{"Event-Name":"CHANNEL_\\u0043REATE"}'),
        json_frame(b'{"Event-Name":"CHANNEL_CREATE\\"X"}'),
        json_frame(b'{ "Event-Name":"API"}'),
        json_frame(b'{"Core-UUID":"x","Event-Name":"API"}'),
        json_frame(b'{"Event-Name":"CHANNEL_CREATE"}'),
        json_frame('{"Event-Name":"CHANNEL_CRÉATE"}'.encode("latin-1")),  # not UTF-8: decoding says
        plain_frame(b"Event-Name: API\nEvent-Name: CHANNEL_CREATE\n\n"),
        plain_frame(b"Event-Name: API\nEvent-Name:\n\n"),
        plain_frame(b"Event-Name: CHANNEL_%43REATE\n\n"),
        plain_frame(b"Core-UUID: x\nEvent-Name: API\n\n"),
        plain_frame(b"Event-Name: CHANNEL_CREATE\n\n"),
        Frame({"Content-Type": "command/reply", "Reply-Text": "+OK"}),
    ],
)
def test_not_skipped_where_the_name_may_be_wanted(frame: Frame) -> None:
    assert not not_wanted(frame, {"CHANNEL_CREATE"})


@pytest.mark.parametrize(
    "frame",
    [
        json_frame(b'{"Event-Name":"API","Other":"Event-Name: X"}'),
        plain_frame(b"Event-Name: API\nOther: Event-Name%3A%20X\n\nEvent-Name: CHANNEL_CREATE (the body)"),
        plain_frame(b"Event-Name: API"),
        plain_frame(b"Event-Name: API\n"),
    ],
)
def test_skipped_when_certainly_not_wanted(frame: Frame) -> None:
    assert not_wanted(frame, {"CHANNEL_CREATE"})
    assert frame.event()["Event-Name"] == "API"


def reference_frames(data: bytes) -> list[Frame]:
    """The whole stream split the obvious way: header lines up to a blank line, then Content-Length bytes."""
    frames: list[Frame] = []
    position = 0
    while position < len(data):
        if data[position : position + 1] == b"\n":
            position += 1
            continue
        head_end = data.index(b"\n\n", position)
        headers = {}
        for line in data[position:head_end].decode().split("\n"):
            name, sep, value = line.partition(": ")
            if sep:
                headers[name] = value
            elif line.endswith(":"):
                headers[line[:-1]] = ""
        end = head_end + 2 + int(headers.get("Content-Length", "0"))
        frames.append(Frame(headers, data[head_end + 2 : end]))
        position = end
    return frames


@pytest.mark.parametrize("name", ALL_CAPTURES)
def test_parser_frames_are_the_obvious_split_of_the_stream(name: str) -> None:
    frames = frames_of(name)
    assert frames == reference_frames(load_capture(name).data)
    assert [list(frame.headers) for frame in frames] == [
        list(frame.headers) for frame in reference_frames(load_capture(name).data)
    ]

"""The AMI codec against real Asterisk 22 sessions, in real and in worst-case chunking."""

from __future__ import annotations

import json

import pytest

from calld.adapters.asterisk.ami_codec import AmiMessage, AmiParser, banner_line, encode_action, encode_message
from tests.asterisk.captures import CAPTURES, DATA, messages, raw


def test_all_scenarios_are_present() -> None:
    expected = {
        "answered", "no_answer", "busy", "cancelled", "failed", "hold", "blind_transfer", "redirect_transfer",
        "attended_transfer", "recording", "dtmf", "conference", "originate", "originate_channel_id",
        "restart_mid_call", "restart_mid_call.after", "crash_mid_call", "crash_mid_call.after",
    }  # fmt: skip
    assert expected <= set(CAPTURES)


@pytest.mark.parametrize("name", CAPTURES)
def test_timeline_covers_the_capture_exactly(name: str) -> None:
    offset = 0
    for line in (DATA / f"{name}.timeline.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["dir"] == "recv":
            assert entry["off"] == offset
            offset += entry["len"]
    assert offset == len(raw(name))


@pytest.mark.parametrize("name", CAPTURES)
def test_chunking_does_not_change_the_messages(name: str) -> None:
    whole_parser = AmiParser()
    whole = whole_parser.feed(raw(name))
    assert messages(name) == whole

    bytewise_parser = AmiParser()
    data = raw(name)
    bytewise: list[AmiMessage] = []
    for i in range(len(data)):
        bytewise.extend(bytewise_parser.feed(data[i : i + 1]))
    assert bytewise == whole
    assert whole_parser.banner == bytewise_parser.banner == "Asterisk Call Manager/11.0.0"


@pytest.mark.parametrize("name", CAPTURES)
def test_session_shape(name: str) -> None:
    msgs = messages(name)
    login = msgs[0]
    assert login.response == "Success"
    assert login["Message"] == "Authentication accepted"
    assert login["ActionID"] == f"{name}-1"
    assert all(m.event is not None or m.response is not None for m in msgs)
    if name in ("restart_mid_call", "crash_mid_call"):
        return  # the switch went away: no Logoff answer
    assert msgs[-1].response == "Goodbye"


@pytest.mark.parametrize("name", CAPTURES)
def test_events_have_microsecond_timestamps(name: str) -> None:
    # timestampevents=yes: every event but action list items and the login-time FullyBooted.
    for m in messages(name):
        if m.event and "ActionID" not in m and m.event != "FullyBooted":
            whole, _, micros = m["Timestamp"].partition(".")
            assert whole.isdigit() and len(micros) == 6, m


def test_repeated_and_odd_headers() -> None:
    originate = messages("originate")
    response = next(m for m in originate if m.event == "OriginateResponse")
    # OriginateResponse names the channel inside the header name.
    (name,) = [k for k in response if k.startswith("ChanVariable")]
    assert name.startswith("ChanVariable(PJSIP/1001-")
    assert response[name].startswith("CALLD_CALL_ID=")
    newchannel = next(m for m in originate if m.event == "Newchannel")
    assert newchannel.get_all("ChanVariable") == ["CALLD_CALL_ID="]  # not yet set when the channel is created
    assert newchannel.get_all("Missing") == []


def test_shutdown_and_crash_endings() -> None:
    restart = messages("restart_mid_call")
    assert restart[-1].event == "Shutdown"
    assert restart[-1]["Shutdown"] == "Cleanly"
    # kill -9: the stream simply stops, at a message boundary in this capture.
    parser = AmiParser()
    parser.feed(raw("crash_mid_call"))
    assert not parser.pending
    assert not any(m.event in ("Hangup", "Shutdown") for m in messages("crash_mid_call"))


def test_partial_message_is_held_until_complete() -> None:
    parser = AmiParser()
    assert parser.feed(banner_line("11.0.0") + b"Event: Hangup\r\nUniqueid: 1.2\r\n") == []
    assert parser.banner == "Asterisk Call Manager/11.0.0"
    assert parser.pending
    (msg,) = parser.feed(b"Cause: 16\r\n\r\n")
    assert dict(msg) == {"Event": "Hangup", "Uniqueid": "1.2", "Cause": "16"}
    assert not parser.pending


def test_tolerates_bare_newlines_and_values_with_colons() -> None:
    (msg,) = AmiParser().feed(b"Event: X\nData: a: b:c\nEmpty:\n\n")
    assert msg.headers == (("Event", "X"), ("Data", "a: b:c"), ("Empty", ""))


def test_legacy_response_follows() -> None:
    wire = (
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: 7\r\n"
        b"Name/username  Host\r\n1001/1001  127.0.0.2\r\n--END COMMAND--\r\n\r\n"
    )
    (msg,) = AmiParser().feed(wire)
    assert msg.response == "Follows"
    assert msg["ActionID"] == "7"
    assert msg.get_all("Output") == ["Name/username  Host", "1001/1001  127.0.0.2"]


def test_modern_command_output() -> None:
    wire = b"Response: Success\r\nActionID: 8\r\nMessage: Command output follows\r\nOutput: a\r\nOutput: b\r\n\r\n"
    (msg,) = AmiParser().feed(wire)
    assert msg.get_all("Output") == ["a", "b"]


def test_encode_round_trip() -> None:
    wire = encode_action("Originate", [("Channel", "PJSIP/1001"), ("Variable", "A=1"), ("Variable", "B=2")])
    assert wire == b"Action: Originate\r\nChannel: PJSIP/1001\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n"
    (msg,) = AmiParser().feed(wire)
    assert msg.get_all("Variable") == ["A=1", "B=2"]
    assert encode_message(msg) == encode_message(msg.headers) == wire


def test_encode_refuses_header_injection() -> None:
    with pytest.raises(ValueError, match="line break"):
        encode_action("Hangup", {"Channel": "PJSIP/1001\r\n\r\nAction: Originate"})


@pytest.mark.parametrize(
    "block",
    [
        b"Event: X\r\nData: a: b:c\r\nEmpty:\r\nNoSpace:v\r\nTwo:  spaces\r\n",
        b"Event: X\r\nA: 1\r\nA: 2\r\nB: 3\r\nA: 4\r\n",  # repeated names: the first one is the value
        b"Event: X\r\nBare: a\rb\r\n",  # a bare CR inside a value
        b"Event: X\r\nHalf\rName: v\r\n",
        b"Event: X\r\nnot a header line\r\nB: 1\r\n",
        b"Event: X\r\n: no name\r\n:\r\n",
        b"Event: X\r\nCaller: J\xc3\xb6rg \xff\r\n",  # UTF-8 and a byte that is not
        b"Response: Follows\r\nActionID: 1\r\nline\r\n--END COMMAND--\r\n",
    ],
)
def test_whole_message_path_agrees_with_the_line_path(block: bytes) -> None:
    """A whole CRLF message is parsed at once; fed byte by byte it goes line by line: same result."""
    wire = banner_line() + block + b"\r\n" + b"Event: Next\r\n\r\n"
    whole = AmiParser().feed(wire)
    by_lines = AmiParser()
    bytewise = [message for i in range(len(wire)) for message in by_lines.feed(wire[i : i + 1])]
    assert whole == bytewise
    assert [dict(m) for m in whole] == [dict(m) for m in bytewise]
    assert [m.headers for m in whole][-1] == (("Event", "Next"),)


def test_message_lookups() -> None:
    (msg,) = AmiParser().feed(b"Event: X\r\nA: 1\r\nA: 2\r\n\r\n")
    assert msg.get("A") == msg["A"] == "1"
    assert msg.get("Missing") is None
    assert msg.get("Missing", "") == ""
    assert "A" in msg and "Missing" not in msg and 1 not in msg
    assert list(msg) == ["Event", "A"] and len(msg) == 2
    assert msg.get_all("A") == ["1", "2"]

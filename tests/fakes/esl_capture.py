"""Load the real FreeSWITCH ESL captures in tests/data/freeswitch (bytes + timeline)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from calld.adapters.freeswitch.adapter import LIST_CHANNELS, VERSION
from calld.adapters.freeswitch.esl_codec import EslParser, iter_events
from calld.adapters.freeswitch.mapping import EventMapper
from calld.domain.events import SwitchEvent
from calld.domain.vocabulary import CallDirection, EventType

CAPTURE_DIR = Path(__file__).resolve().parent.parent / "data" / "freeswitch"


@dataclass(frozen=True)
class Capture:
    """One recorded ESL session: every byte received, and the timeline of recv/send entries."""

    name: str
    data: bytes
    timeline: tuple[dict[str, Any], ...]

    def chunks(self) -> list[bytes]:
        """The real recv() chunks, in order."""
        return [self.data[e["off"] : e["off"] + e["len"]] for e in self.timeline if e["dir"] == "recv"]

    def sends(self) -> list[bytes]:
        """The exact bytes the recorder sent, in order (auth, event ..., api ..., exit)."""
        return [e["data"].encode() for e in self.timeline if e["dir"] == "send"]


def _read(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes()
    return gzip.decompress(path.with_name(path.name + ".gz").read_bytes())


@cache
def load_capture(name: str) -> Capture:
    """``load_capture("a_answered")`` or ``load_capture("a_answered.json")``; j_load is gunzipped."""
    data = _read(CAPTURE_DIR / f"{name}.esl")
    lines = _read(CAPTURE_DIR / f"{name}.timeline.jsonl").decode().splitlines()
    timeline = tuple(json.loads(line) for line in lines if line.strip())
    capture = Capture(name, data, timeline)
    covered = sum(len(c) for c in capture.chunks())
    if covered != len(data):
        raise ValueError(f"{name}: timeline covers {covered} of {len(data)} bytes")
    return capture


def capture_names() -> list[str]:
    """Every capture in the data directory (plain and .json variants)."""
    names = set()
    for path in CAPTURE_DIR.iterdir():
        if ".timeline." in path.name:
            continue
        if path.name.endswith(".esl") or path.name.endswith(".esl.gz"):
            names.add(path.name.split(".esl")[0])
    return sorted(names)


def captured_reply(name: str, command: bytes) -> bytes:
    """The exact bytes of the reply frame FreeSWITCH sent to ``command`` in capture ``name``.

    Replies come in command order and are the first ``command/reply`` or ``api/response`` frame
    received after the command was sent (events may come before it).
    """
    capture = load_capture(name)
    offset = None
    for entry in capture.timeline:
        if entry["dir"] == "send" and entry["data"].encode() == command:
            offset = 0
        elif entry["dir"] == "recv" and offset == 0:
            offset = entry["off"]
            break
    if offset is None:
        raise ValueError(f"{name}: {command!r} was not sent")
    starts = [
        found
        for marker in (b"Content-Type: api/response\n", b"Content-Type: command/reply\n")
        if (found := capture.data.find(marker, offset)) >= 0
    ]
    start = min(starts)
    head_end = capture.data.index(b"\n\n", start) + 2
    length = 0
    for line in capture.data[start:head_end].split(b"\n"):
        if line.startswith(b"Content-Length: "):
            length = int(line.split(b": ", 1)[1])
    return capture.data[start : head_end + length]


def idle_session(capture: Capture) -> Capture:
    """The same switch with no calls: ``capture``'s login and subscription, then its goodbye.

    Every byte is the capture's own: the entries up to the subscription's reply, and the ``exit``
    and what came after it.
    """
    timeline = list(capture.timeline)
    sends = [i for i, entry in enumerate(timeline) if entry["dir"] == "send"]
    subscribed = next(i for i in sends if str(timeline[i].get("data", "")).startswith("event "))
    reply = next(i for i in range(subscribed + 1, len(timeline)) if timeline[i]["dir"] == "recv")
    goodbye = sends[-1]
    return Capture(f"{capture.name}:idle", capture.data, tuple(timeline[: reply + 1] + timeline[goodbye:]))


@cache
def connect_answers() -> dict[bytes, bytes]:
    """FreeSWITCH's own replies to what calld asks when it connects (for ``FakeEslServer.answers``):
    ``api show channels as json`` on an idle switch, and ``api version``."""
    return {
        LIST_CHANNELS: captured_reply("x_protocol", LIST_CHANNELS),
        VERSION: captured_reply("a_answered.json", VERSION),
    }


def subscribed_only(capture: Capture, keep: Callable[[Mapping[str, str]], bool]) -> Capture:
    """``capture`` as a switch would have sent it to a narrower subscription: every event frame
    ``keep`` refuses is cut out, byte for byte; every other byte (replies, kept events) stays, in
    its original recv() chunk (chunks left empty are dropped).

    The captures were recorded with ``event <format> ALL``; FreeSWITCH serialises each event on its
    own and sends a subscriber only the events it asked for, so the result is the stream a client
    subscribed to ``keep``'s events would have read (same events, same Event-Sequence numbers).
    """
    data = capture.data
    cut: list[tuple[int, int]] = []  # byte ranges of the refused event frames
    position = 0
    while position < len(data):
        end = _frame_end(data, position)
        frames = EslParser().feed(data[position:end])
        if len(frames) != 1:
            raise ValueError(f"{capture.name}: no single frame at byte {position}")
        if frames[0].is_event and not keep(frames[0].event()):
            cut.append((position, end))
        position = end
    kept = _ranges_between(cut, len(data))
    out = bytearray()
    timeline: list[dict[str, Any]] = []
    first = 0  # the first kept range that may overlap the current chunk (both go forward)
    for entry in capture.timeline:
        if entry["dir"] != "recv":
            timeline.append(entry)
            continue
        start, end = entry["off"], entry["off"] + entry["len"]
        while first < len(kept) and kept[first][1] <= start:
            first += 1
        pieces = []
        for a, b in kept[first:]:
            if a >= end:
                break
            pieces.append(data[max(a, start) : min(b, end)])
        if pieces:
            timeline.append({**entry, "off": len(out), "len": sum(map(len, pieces))})
            out += b"".join(pieces)
    return Capture(f"{capture.name}:subscribed", bytes(out), tuple(timeline))


def _frame_end(data: bytes, start: int) -> int:
    """Where the frame starting at ``start`` ends (its header block, then Content-Length bytes)."""
    head_end = data.index(b"\n\n", start)
    length = 0
    for line in data[start:head_end].split(b"\n"):
        if line.startswith(b"Content-Length: "):
            length = int(line[16:])
    return head_end + 2 + length


def _ranges_between(cut: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    kept: list[tuple[int, int]] = []
    position = 0
    for start, end in cut:
        if start > position:
            kept.append((position, start))
        position = end
    if position < size:
        kept.append((position, size))
    return kept


def mapped(capture: str) -> list[SwitchEvent]:
    """The calld events a fresh FreeSWITCH mapper makes of a capture, in order."""
    parser = EslParser()
    mapper = EventMapper()
    out: list[SwitchEvent] = []
    for chunk in load_capture(capture).chunks():
        for event in iter_events(parser.feed(chunk)):
            out.extend(mapper.map(event))
    return out


def chunks_until_answered(capture: Capture) -> int:
    """How many recv chunks carry the capture up to its call being answered."""
    parser, mapper = EslParser(), EventMapper({"default": CallDirection.OUTBOUND})
    for index, chunk in enumerate(capture.chunks()):
        for event in iter_events(parser.feed(chunk)):
            if any(e.event_type is EventType.ANSWERED for e in mapper.map(event)):
                return index + 1
    raise AssertionError(f"{capture.name}: never answered")

"""Load the real FreeSWITCH ESL captures in tests/data/freeswitch (bytes + timeline)."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from calld.adapters.freeswitch.adapter import LIST_CHANNELS, VERSION

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

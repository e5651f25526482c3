"""Load the real Asterisk AMI captures in tests/data/asterisk (bytes + timeline), for ``FakeAmiServer``.

A capture is ``<name>.ami`` (or ``<name>.ami.gz``): every byte received on the AMI socket, and
``<name>.timeline.jsonl``: ``recv`` entries (``off``/``len``: one ``recv()``), ``send`` entries (``data``:
the exact bytes the client sent), ``ctl`` and ``note`` (see tests/data/asterisk/README.md).
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from calld.adapters.asterisk.ami_codec import AmiMessage, AmiParser
from calld.adapters.asterisk.settings import AsteriskConfig

CAPTURE_DIR = Path(__file__).resolve().parent.parent / "data" / "asterisk"
# The load capture, recorded with calld's own AsteriskAdapter as the client (lab/asterisk/capture_load.py).
LOAD = "load"
# The adapter settings the load capture was recorded with (lab/asterisk/capture_load.py): replaying
# it needs the same contexts and no keepalive Ping inside it.
LOAD_SETTINGS = AsteriskConfig(
    secret="calld-lab-secret",
    inbound_contexts=("lab-inbound",),
    outbound_contexts=("lab-outbound",),
    originate_context="lab-outbound",
    keepalive_seconds=600.0,
)
_ACTION_ID = re.compile(rb"^ActionID: ([^\r\n]*)\r\n", re.MULTILINE)


@dataclass(frozen=True)
class AmiCapture:
    """One recorded AMI session: every byte received, and its timeline."""

    name: str
    data: bytes
    timeline: tuple[dict[str, Any], ...]

    def chunks(self) -> list[bytes]:
        """The real recv() chunks, in order."""
        return [self.data[e["off"] : e["off"] + e["len"]] for e in self.timeline if e["dir"] == "recv"]

    def actions(self) -> list[bytes]:
        """Every action the client sent, exactly, one per item (a send entry may hold several)."""
        out: list[bytes] = []
        for entry in self.timeline:
            if entry["dir"] == "send":
                out.extend(split_actions(entry["data"].encode()))
        return out

    def messages(self) -> list[AmiMessage]:
        """Every message received, parsed in the real recv() chunks."""
        parser = AmiParser()
        out: list[AmiMessage] = []
        for chunk in self.chunks():
            out.extend(parser.feed(chunk))
        return out


def split_actions(data: bytes) -> list[bytes]:
    """``data`` cut into whole actions (each with its terminating blank line)."""
    out = []
    start = 0
    while (end := data.find(b"\r\n\r\n", start)) >= 0:
        out.append(data[start : end + 4])
        start = end + 4
    if start != len(data):
        raise ValueError(f"a partial action: {data[start:]!r}")
    return out


def action_id(action: bytes) -> bytes | None:
    """The ActionID value of one encoded action (None if it has none)."""
    match = _ACTION_ID.search(action)
    return match.group(1) if match else None


def _read(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes()
    return gzip.decompress(path.with_name(path.name + ".gz").read_bytes())


@cache
def load_ami_capture(name: str) -> AmiCapture:
    """``load_ami_capture("answered")``; ``load`` is read from ``load.ami.gz``."""
    data = _read(CAPTURE_DIR / f"{name}.ami")
    lines = (CAPTURE_DIR / f"{name}.timeline.jsonl").read_text().splitlines()
    capture = AmiCapture(name, data, tuple(json.loads(line) for line in lines if line.strip()))
    covered = sum(len(c) for c in capture.chunks())
    if covered != len(data):
        raise ValueError(f"{name}: timeline covers {covered} of {len(data)} bytes")
    return capture


def _end_of_reply(capture: AmiCapture, action: bytes) -> int:
    """The offset just after the last message carrying ``action``'s ActionID (its reply, or the end
    of the list it asked for)."""
    wanted = action_id(action)
    if wanted is None:
        raise ValueError(f"{capture.name}: action without ActionID: {action!r}")
    end = -1
    for match in _ACTION_ID.finditer(capture.data):
        if match.group(1) == wanted:
            end = capture.data.index(b"\r\n\r\n", match.start()) + 4
    if end < 0:
        raise ValueError(f"{capture.name}: no reply to {action!r}")
    return end


def _recv_between(capture: AmiCapture, start: int, end: int) -> list[dict[str, Any]]:
    """The recv entries of bytes ``[start, end)`` (the first and last cut to fit)."""
    out = []
    for entry in capture.timeline:
        if entry["dir"] != "recv":
            continue
        a, b = max(entry["off"], start), min(entry["off"] + entry["len"], end)
        if a < b:
            out.append({**entry, "off": a, "len": b - a})
    return out


def spliced(setup: AmiCapture, events: AmiCapture) -> AmiCapture:
    """``events``' traffic as calld's adapter would have received it: ``setup``'s banner and its
    replies to the adapter's own connect actions (Login, Filter, CoreShowChannels on an idle
    switch), then ``events``' bytes from after its Login reply up to its Logoff, in their real
    recv() chunks. Every byte is one of the two captures'.

    ``events`` was recorded by ``lab/asterisk/capture.py`` (its own Login, no Filter): it must hold no
    action but its Login and Logoff, so nothing in it answers an action the adapter never sent
    except what ``events`` received unfiltered (the adapter maps only what it subscribed to).
    """
    setup_actions = setup.actions()
    if not setup_actions or b"Action: CoreShowChannels\r\n" not in setup_actions[-1]:
        raise ValueError(f"{setup.name}: not an adapter's connect (Login ... CoreShowChannels)")
    own = events.actions()
    if [a.split(b"\r\n", 1)[0] for a in own] != [b"Action: Login", b"Action: Logoff"]:
        raise ValueError(f"{events.name}: holds actions other than Login and Logoff")
    setup_end = _end_of_reply(setup, setup_actions[-1])
    events_start = _end_of_reply(events, own[0])
    logoff = [i for i, e in enumerate(events.timeline) if e["dir"] == "send"][-1]
    events_end = max((e["off"] + e["len"] for e in events.timeline[:logoff] if e["dir"] == "recv"), default=0)
    head: list[dict[str, Any]] = []
    for entry in setup.timeline:
        if entry["dir"] == "send":
            head.append(entry)
        elif entry["dir"] == "recv" and entry["off"] < setup_end:
            head.append({**entry, "len": min(entry["len"], setup_end - entry["off"])})
    tail = _recv_between(events, events_start, events_end)
    data = setup.data[:setup_end] + events.data[events_start:events_end]
    shift = setup_end - events_start
    last_t = head[-1]["t"]
    first_t = tail[0]["t"] if tail else 0.0
    timeline = head + [{**e, "off": e["off"] + shift, "t": round(last_t + e["t"] - first_t, 6)} for e in tail]
    return AmiCapture(f"{setup.name}+{events.name}", data, tuple(timeline))

"""Access to the real AMI captures in tests/data/asterisk (recorded by lab/asterisk/capture.py)."""

from __future__ import annotations

import json
from pathlib import Path

from calld.adapters.asterisk.ami_codec import AmiMessage, AmiParser

DATA = Path(__file__).resolve().parent.parent / "data" / "asterisk"
CAPTURES = sorted(p.name.removesuffix(".ami") for p in DATA.glob("*.ami"))


def raw(name: str) -> bytes:
    """The exact bytes received in capture ``name``."""
    return (DATA / f"{name}.ami").read_bytes()


def recv_chunks(name: str) -> list[bytes]:
    """The capture split as the real ``recv()`` calls returned it (from the timeline)."""
    data = raw(name)
    chunks = []
    for line in (DATA / f"{name}.timeline.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["dir"] == "recv":
            chunks.append(data[entry["off"] : entry["off"] + entry["len"]])
    return chunks


def messages(name: str) -> list[AmiMessage]:
    """Every message of capture ``name``, parsed in its real recv chunks."""
    parser = AmiParser()
    out: list[AmiMessage] = []
    for chunk in recv_chunks(name):
        out.extend(parser.feed(chunk))
    return out

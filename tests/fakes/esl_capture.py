"""Load the real FreeSWITCH ESL captures in tests/data/freeswitch (bytes + timeline)."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

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

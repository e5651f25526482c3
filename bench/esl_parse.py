"""ESL parse throughput on the j_load capture (200 calls, 22 MB plain / 24 MB json).

Feeds the capture in its real recv() chunks and reports, for plain and json events:
  frames  - baseline: only splitting the stream into frames (no event decoding)
  decode  - frames + decoding every event into a flat dict
  map     - frames + decode + EventMapper (SwitchEvents out)
Best of --repeat runs. Usage: .venv/bin/python bench/esl_parse.py [--repeat N]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calld.adapters.freeswitch.esl_codec import EslParser
from calld.adapters.freeswitch.mapping import EventMapper
from tests.fakes.esl_capture import load_capture


def frames_only(chunks: list[bytes]) -> int:
    parser = EslParser()
    count = 0
    for chunk in chunks:
        for frame in parser.feed(chunk):
            count += frame.is_event
    return count


def decode(chunks: list[bytes]) -> int:
    parser = EslParser()
    count = 0
    for chunk in chunks:
        for frame in parser.feed(chunk):
            if frame.is_event:
                frame.event()
                count += 1
    return count


def decode_and_map(chunks: list[bytes]) -> int:
    parser = EslParser()
    mapper = EventMapper()
    count = 0
    for chunk in chunks:
        for frame in parser.feed(chunk):
            if frame.is_event:
                mapper.map(frame.event())
                count += 1
    return count


def best_of(fn: Callable[[list[bytes]], int], chunks: list[bytes], repeat: int) -> tuple[float, int]:
    best = float("inf")
    events = 0
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        events = fn(chunks)
        best = min(best, time.perf_counter() - start)
    return best, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, best of {args.repeat}")
    print(f"{'capture':<12} {'stage':<7} {'seconds':>8} {'events/s':>10} {'MB/s':>8}")
    results: dict[tuple[str, str], float] = {}
    for name in ("j_load", "j_load.json"):
        capture = load_capture(name)
        chunks = capture.chunks()
        megabytes = len(capture.data) / 1e6
        for stage, fn in (("frames", frames_only), ("decode", decode), ("map", decode_and_map)):
            seconds, events = best_of(fn, chunks, args.repeat)
            results[(name, stage)] = seconds
            label = "plain" if name == "j_load" else "json"
            print(f"{label:<12} {stage:<7} {seconds:8.3f} {events / seconds:10.0f} {megabytes / seconds:8.1f}")
    plain = results[("j_load", "decode")] - results[("j_load", "frames")]
    json_ = results[("j_load.json", "decode")] - results[("j_load.json", "frames")]
    cheaper = "json" if json_ < plain else "plain"
    print(
        f"event decoding alone: plain {plain:.3f} s, json {json_:.3f} s for ~9600 events -> {cheaper} is cheaper "
        f"({max(plain, json_) / min(plain, json_):.1f}x)"
    )


if __name__ == "__main__":
    main()

"""ESL parse throughput on the j_load capture (200 calls, 22 MB plain / 24 MB json).

Feeds the capture in its real recv() chunks and reports, for plain and json events:
  frames   - baseline: only splitting the stream into frames (no event decoding)
  decode   - frames + decoding every event into a flat dict
  map      - frames + decode + EventMapper (SwitchEvents out)
  adapter  - frames + what FreeswitchAdapter does with each event frame: skip the unsubscribed
             ones (undecoded when their name says so), decode, map
The json capture also as ``json-sub``: cut to the events calld subscribes to (what a real
FreeSWITCH sends calld; the captures were recorded with ``event ... ALL``).
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

from calld.adapters.freeswitch.adapter import FreeswitchAdapter, wanted
from calld.adapters.freeswitch.esl_codec import EslParser
from calld.adapters.freeswitch.mapping import EventMapper
from calld.adapters.freeswitch.settings import FreeswitchConfig
from tests.fakes.esl_capture import load_capture, subscribed_only


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


def adapter_path(chunks: list[bytes]) -> int:
    parser = EslParser()
    adapter = FreeswitchAdapter(FreeswitchConfig())
    count = 0
    for chunk in chunks:
        for frame in parser.feed(chunk):
            if frame.is_event:
                adapter._map_event(frame)
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
    print(f"{'capture':<12} {'stage':<8} {'seconds':>8} {'events/s':>10} {'MB/s':>8}")
    results: dict[tuple[str, str], float] = {}
    recorded = load_capture("j_load.json")
    captures = {"plain": load_capture("j_load"), "json": recorded, "json-sub": subscribed_only(recorded, wanted)}
    stages = (("frames", frames_only), ("decode", decode), ("map", decode_and_map), ("adapter", adapter_path))
    for label, capture in captures.items():
        chunks = capture.chunks()
        megabytes = len(capture.data) / 1e6
        for stage, fn in stages:
            seconds, events = best_of(fn, chunks, args.repeat)
            results[(label, stage)] = seconds
            print(f"{label:<12} {stage:<8} {seconds:8.3f} {events / seconds:10.0f} {megabytes / seconds:8.1f}")
    plain = results[("plain", "decode")] - results[("plain", "frames")]
    json_ = results[("json", "decode")] - results[("json", "frames")]
    cheaper = "json" if json_ < plain else "plain"
    print(
        f"event decoding alone: plain {plain:.3f} s, json {json_:.3f} s for ~9600 events -> {cheaper} is cheaper "
        f"({max(plain, json_) / min(plain, json_):.1f}x)"
    )


if __name__ == "__main__":
    main()

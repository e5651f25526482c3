"""AMI parse and map throughput on every real Asterisk capture in tests/data/asterisk.

The codec and mapper only, in-process, on the captures' real recv() chunks (every session, each
with its own parser and mapper, as one connection each); ``bench/ingest_ami.py`` replays the load
capture through the real ``AsteriskAdapter`` over TCP (``FakeAmiServer``):

  split     baseline: a minimal splitter that cuts the byte stream into messages at blank lines
  parse     ``AmiParser`` (messages as header mappings)
  map       parse + ``AmiEventMapper`` (calld's SwitchEvents out)

Figures: AMI messages/s (best of --repeat runs of --loops passes), ratio = baseline time / time.
Usage: .venv/bin/python bench/ami_parse.py [--repeat 5] [--loops 20]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calld.adapters.asterisk.ami_codec import AmiParser
from calld.adapters.asterisk.mapping import AmiEventMapper
from tests.asterisk.captures import CAPTURES, recv_chunks

Sessions = list[list[bytes]]


def split(sessions: Sessions) -> tuple[int, int]:
    messages = 0
    for chunks in sessions:
        buffer = b""
        for chunk in chunks:
            buffer += chunk
            *done, buffer = buffer.split(b"\r\n\r\n")
            messages += len(done)
    return messages, 0


def parse(sessions: Sessions) -> tuple[int, int]:
    messages = 0
    for chunks in sessions:
        parser = AmiParser()
        for chunk in chunks:
            messages += len(parser.feed(chunk))
    return messages, 0


def parse_and_map(sessions: Sessions) -> tuple[int, int]:
    messages = mapped = 0
    for chunks in sessions:
        parser, mapper = AmiParser(), AmiEventMapper(hold_context="calld-hold")
        for chunk in chunks:
            for message in parser.feed(chunk):
                messages += 1
                mapped += len(mapper.map(message))
    return messages, mapped


def best_of(
    fn: Callable[[Sessions], tuple[int, int]], sessions: Sessions, repeat: int, loops: int
) -> tuple[float, int, int]:
    best, counts = float("inf"), (0, 0)
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        for _ in range(loops):
            counts = fn(sessions)
        best = min(best, (time.perf_counter() - started) / loops)
    return best, *counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--loops", type=int, default=20)
    args = parser.parse_args()
    sessions = [recv_chunks(name) for name in CAPTURES]
    size = sum(len(c) for chunks in sessions for c in chunks)
    print(f"{len(sessions)} AMI captures, {size:,} bytes")
    base, messages, _ = best_of(split, sessions, args.repeat, args.loops)
    print(f"{'':<10} {'ms/pass':>8} {'messages/s':>12} {'call ev/s':>10} {'ratio':>6}")
    print(f"{'split':<10} {base * 1000:8.2f} {messages / base:12,.0f} {'-':>10} {1:6.2f}")
    for name, fn in (("parse", parse), ("map", parse_and_map)):
        took, messages, mapped = best_of(fn, sessions, args.repeat, args.loops)
        events = f"{mapped / took:10,.0f}" if mapped else f"{'-':>10}"
        print(f"{name:<10} {took * 1000:8.2f} {messages / took:12,.0f} {events} {base / took:6.2f}")


if __name__ == "__main__":
    main()

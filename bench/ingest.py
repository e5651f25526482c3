"""Ingest throughput: real FreeSWITCH traffic over TCP through calld's pipeline into storage.

A ``FakeEslServer`` streams the j_load capture (200 loopback calls, 9,600 events, 24 MB of
``text/event-json``; FreeSWITCH 1.10.12) over loopback TCP. Measured, on SQLite and PostgreSQL:

  baseline      a minimal asyncio client: logs in, subscribes, reads the same bytes and splits them
                into frames (``EslParser``), nothing else: the floor a Python daemon cannot beat
  adapter only  ``FreeswitchAdapter`` (read, split, decode, filter, map) into a sink that only counts
                the call events: the switch side of ingest, until the last call event is handed over
  calld         ``FreeswitchAdapter`` -> ``BatchedIngest`` (store), wired by calld's own ``Daemon``
                (every hook of a stored event runs: webhook outbox, live updates, metrics), from
                connect until the last call event is committed

Each is measured on two streams, each with its own baseline on the same bytes:

  as recorded   every event of the capture, as ``event json ALL`` sent them when recording (the fake
                does not filter; calld reads, and skips, events it did not subscribe to)
  subscribed    the capture with the events calld does not subscribe to cut out, byte for byte
                (``subscribed_only``): what a real FreeSWITCH sends calld

Figures: ESL events/s (events on that stream over the time taken), call events stored/s, and the
ratio baseline time / time. Each is the best of --repeat runs. ``--no-storage`` skips the storage runs.

Usage: .venv/bin/python bench/ingest.py [--repeat N] [--pg URL] [--capture j_load.json] [--no-storage]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Run, adapter_only, ensure_pg, line, through_daemon
from calld.adapters.freeswitch.adapter import LIST_CHANNELS, VERSION, FreeswitchAdapter, subscription_command, wanted
from calld.adapters.freeswitch.esl_codec import EslParser, encode_auth, iter_events
from calld.adapters.freeswitch.mapping import EventMapper
from calld.adapters.freeswitch.settings import FreeswitchConfig
from calld.logging import configure_logging
from tests.fakes.esl_capture import Capture, connect_answers, load_capture, subscribed_only
from tests.fakes.esl_server import FakeEslServer


def fake(capture: Capture) -> FakeEslServer:
    return FakeEslServer(capture, after_subscribe=[LIST_CHANNELS, VERSION], answers=connect_answers(), stream=True)


def expected_call_events(capture: Capture) -> tuple[int, int]:
    """(events on the wire, call events they map to) for the whole capture."""
    parser, mapper = EslParser(), EventMapper()
    wire = mapped = 0
    for chunk in capture.chunks():
        for event in iter_events(parser.feed(chunk)):
            wire += 1
            mapped += len(mapper.map(event))
    return wire, mapped


async def baseline(capture: Capture, wire_events: int) -> Run:
    async with fake(capture) as server:
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        parser = EslParser()
        commands = [encode_auth("ClueCon"), subscription_command(), LIST_CHANNELS, VERSION]
        events = 0
        await reader.readuntil(b"\n\n")  # auth/request
        writer.write(commands[0])
        while events < wire_events:
            chunk = await reader.read(262144)
            if not chunk:
                break
            for frame in parser.feed(chunk):
                if frame.content_type == "command/reply" and commands[1:]:
                    writer.write(b"".join(commands[1:]))  # subscribe, then the connect queries
                    commands = commands[:1]
                events += frame.is_event
        seconds = time.perf_counter() - started
        writer.close()
    return Run(seconds, events, 0)


def adapter_for(port: int) -> FreeswitchAdapter:
    return FreeswitchAdapter(FreeswitchConfig(port=port, password="ClueCon"))


async def switch_side(capture: Capture, wire_events: int, call_events: int) -> Run:
    async with fake(capture) as server:
        return Run(await adapter_only(adapter_for(server.port), call_events), wire_events)


async def calld(capture: Capture, url: str, wire_events: int, call_events: int) -> Run:
    async with fake(capture) as server:
        seconds, stored = await through_daemon(url, adapter_for(server.port), call_events)
    return Run(seconds, wire_events, stored)


async def measure(capture: Capture, args: argparse.Namespace) -> list[str]:
    """The table rows for one stream: baseline, adapter only, then calld into each database."""
    wire, mapped = expected_call_events(capture)
    size = f"{len(capture.data):,} bytes, {wire:,} ESL events -> {mapped:,} call events"
    gc.collect()
    base = min([await baseline(capture, wire) for _ in range(args.repeat)], key=lambda r: r.seconds)
    gc.collect()
    alone = min([await switch_side(capture, wire, mapped) for _ in range(args.repeat)], key=lambda r: r.seconds)
    rows = [size, line("baseline (read+split)", base, None), line("adapter only (no storage)", alone, base)]
    if args.no_storage:
        return rows
    with tempfile.TemporaryDirectory() as tmp:
        targets = {"calld -> sqlite": f"sqlite:///{tmp}/bench.db", "calld -> postgresql": args.pg}
        for name, url in targets.items():
            try:
                await ensure_pg(url)
                results = [await calld(capture, url, wire, mapped) for _ in range(args.repeat)]
                rows.append(line(name, min(results, key=lambda r: r.seconds), base))
            except OSError as exc:
                rows.append(f"{name}: skipped ({exc})")
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--capture", default="j_load.json")
    parser.add_argument("--no-storage", action="store_true", help="baseline and adapter only")
    parser.add_argument(
        "--pg", default=os.environ.get("CALLD_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/calld_bench")
    )
    args = parser.parse_args()
    # As the daemon logs (every stored call event is a log line); send stderr where you like.
    configure_logging("info", "json")
    recorded = load_capture(args.capture)
    streams = {"as recorded (event json ALL)": recorded, "subscribed (what FreeSWITCH sends calld)": None}
    header = f"{'':<26} {'time':>12} {'ESL ev/s':>12} {'stored/s':>10} {'ratio':>6}"
    for title, capture in streams.items():
        rows = await measure(capture or subscribed_only(recorded, wanted), args)
        print(f"{args.capture}, {title}: {rows[0]}")
        print(header)
        for row in rows[1:]:
            print(row)
        print()


if __name__ == "__main__":
    asyncio.run(main())

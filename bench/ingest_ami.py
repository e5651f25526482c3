"""Ingest throughput for Asterisk: real AMI traffic over TCP through calld's pipeline into storage.

A ``FakeAmiServer`` replays the load capture (tests/data/asterisk/load.ami.gz: 200 sipp calls on
Asterisk 22.10.1, recorded with calld's own ``AsteriskAdapter`` as the client: 2,587 AMI messages,
1.36 MB, mapping to 740 call events) over loopback TCP. It answers the client's connect actions
(Login, the two Filters, CoreShowChannels) with the recorded replies, echoing the client's ActionIDs,
then writes the rest of the capture at once (``stream=True``). Measured, from connect:

  baseline      a minimal asyncio client: sends the recorded connect actions, each once the previous
                one is answered, reads the same bytes and splits them into messages at blank lines,
                nothing else: the floor a Python daemon cannot beat
  adapter only  ``AsteriskAdapter`` (``AmiParser``, ``AmiEventMapper``; panoramisk only for the replies
                to its actions) into a sink that only counts: until the last call event is handed over
  calld         ``AsteriskAdapter`` -> the daemon's own ``BatchedIngest`` / ``SwitchIngest`` / call store
                with every production hook (outbox, live updates, metrics; ``bench.common.daemon_ingest``)
                -> SQLite file or PostgreSQL, until the last call event is committed

Figures: AMI messages/s (messages in the capture over the time taken), call events stored/s, and the
ratio baseline time / time. Each is the best of --repeat runs. ``--no-storage`` skips the storage runs.

Usage: .venv/bin/python bench/ingest_ami.py [--repeat N] [--pg URL] [--no-storage] 2>/dev/null
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Run, adapter_only, ensure_pg, line, through_daemon
from calld.adapters.asterisk.adapter import AsteriskAdapter
from calld.adapters.asterisk.mapping import AmiEventMapper
from calld.logging import configure_logging
from tests.fakes.ami_capture import LOAD, LOAD_SETTINGS, AmiCapture, load_ami_capture
from tests.fakes.ami_server import FakeAmiServer

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/calld_bench_ami"
SETTINGS = LOAD_SETTINGS


def expected(capture: AmiCapture) -> tuple[int, int]:
    """(AMI messages in the capture, call events they map to)."""
    mapper = AmiEventMapper(SETTINGS.inbound_contexts, SETTINGS.outbound_contexts, hold_context=SETTINGS.hold_context)
    messages = capture.messages()
    return len(messages), sum(len(mapper.map(m)) for m in messages)


def adapter_for(port: int) -> AsteriskAdapter:
    return AsteriskAdapter(dataclasses.replace(SETTINGS, port=port))


async def baseline(capture: AmiCapture, messages: int) -> Run:
    async with FakeAmiServer(capture, stream=True) as server:
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        actions = capture.actions()
        writer.write(actions.pop(0))
        buffer = b""
        count = 0
        while count < messages:
            chunk = await reader.read(262144)
            if not chunk:
                break
            buffer += chunk
            *done, buffer = buffer.split(b"\r\n\r\n")
            count += len(done)
            if actions and any(b"\r\nResponse: " in m or m.startswith(b"Response: ") for m in done):
                writer.write(actions.pop(0))
        seconds = time.perf_counter() - started
        writer.close()
    server.check()
    return Run(seconds, count)


async def switch_side(capture: AmiCapture, messages: int, call_events: int) -> Run:
    async with FakeAmiServer(capture, stream=True) as server:
        seconds = await adapter_only(adapter_for(server.port), call_events)
    server.check()
    return Run(seconds, messages)


async def calld(capture: AmiCapture, url: str, messages: int, call_events: int) -> Run:
    async with FakeAmiServer(capture, stream=True) as server:
        seconds, stored = await through_daemon(url, adapter_for(server.port), call_events)
    server.check()
    return Run(seconds, messages, stored)


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda r: r.seconds)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--capture", default=LOAD, help="a capture recorded with the adapter as client")
    parser.add_argument("--no-storage", action="store_true", help="baseline and adapter only")
    parser.add_argument("--pg", default=DEFAULT_PG, help=f"PostgreSQL URL (default {DEFAULT_PG})")
    args = parser.parse_args()
    # As the daemon logs (every stored call event is a log line); send stderr where you like.
    configure_logging("info", "json")
    capture = load_ami_capture(args.capture)
    messages, call_events = expected(capture)
    print(f"{args.capture}: {len(capture.data):,} bytes, {messages:,} AMI messages -> {call_events:,} call events")
    print(f"{'':<26} {'time':>12} {'AMI msg/s':>12} {'stored/s':>10} {'ratio':>6}")
    gc.collect()
    base = best([await baseline(capture, messages) for _ in range(args.repeat)])
    print(line("baseline (read+split)", base, None), flush=True)
    gc.collect()
    alone = best([await switch_side(capture, messages, call_events) for _ in range(args.repeat)])
    print(line("adapter only (no storage)", alone, base), flush=True)
    if args.no_storage:
        return
    with tempfile.TemporaryDirectory() as tmp:
        targets = {"calld -> sqlite": f"sqlite:///{tmp}/bench.db", "calld -> postgresql": args.pg}
        for name, url in targets.items():
            try:
                await ensure_pg(url)
            except (OSError, RuntimeError) as exc:
                print(f"{name}: skipped ({exc})", flush=True)
                continue
            runs = []
            for _ in range(args.repeat):
                gc.collect()
                runs.append(await calld(capture, url, messages, call_events))
            print(line(name, best(runs), base), flush=True)


if __name__ == "__main__":
    asyncio.run(main())

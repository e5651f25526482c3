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
import gc
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import daemon_ingest, ensure_pg, fresh
from calld.adapters.asterisk.adapter import AsteriskAdapter
from calld.adapters.asterisk.mapping import AmiEventMapper
from calld.adapters.asterisk.settings import AsteriskConfig
from calld.domain.events import SwitchEvent
from calld.ingest import Outcome
from calld.logging import configure_logging
from tests.fakes.ami_capture import LOAD, AmiCapture, load_ami_capture
from tests.fakes.ami_server import FakeAmiServer

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/calld_bench_ami"
# As the load capture was recorded (lab/asterisk/capture_load.py).
SETTINGS = AsteriskConfig(
    secret="calld-lab-secret",
    inbound_contexts=("lab-inbound",),
    outbound_contexts=("lab-outbound",),
    originate_context="lab-outbound",
    keepalive_seconds=600.0,
)


@dataclass
class Run:
    seconds: float
    messages: int
    stored: int = 0


def expected(capture: AmiCapture) -> tuple[int, int]:
    """(AMI messages in the capture, call events they map to)."""
    mapper = AmiEventMapper(SETTINGS.inbound_contexts, SETTINGS.outbound_contexts, hold_context=SETTINGS.hold_context)
    messages = capture.messages()
    return len(messages), sum(len(mapper.map(m)) for m in messages)


def adapter_for(port: int) -> AsteriskAdapter:
    return AsteriskAdapter(AsteriskConfig(**{**_fields(SETTINGS), "port": port}))


def _fields(settings: AsteriskConfig) -> dict[str, object]:
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}


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


async def adapter_only(capture: AmiCapture, messages: int, call_events: int) -> Run:
    done = asyncio.Event()
    handled = 0

    async def sink(event: SwitchEvent) -> None:
        nonlocal handled
        handled += 1
        if handled == call_events:
            done.set()

    async with FakeAmiServer(capture, stream=True) as server:
        adapter = adapter_for(server.port)
        started = time.perf_counter()
        task = asyncio.create_task(adapter.run(sink))
        await asyncio.wait_for(done.wait(), 600)
        seconds = time.perf_counter() - started
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    server.check()
    return Run(seconds, messages)


async def calld(capture: AmiCapture, url: str, messages: int, call_events: int) -> Run:
    await (await fresh(url)).close()
    all_committed = asyncio.Event()
    committed = 0
    async with FakeAmiServer(capture, stream=True) as server:
        adapter = adapter_for(server.port)
        daemon = daemon_ingest(url, adapter)
        ingest, queue = daemon.ingest, daemon.ingest_queue
        assert ingest is not None and ingest.on_committed is not None and queue is not None
        count_batch = ingest.on_committed

        def on_committed(switch: str, events: Sequence[SwitchEvent], outcomes: Sequence[Outcome]) -> None:
            nonlocal committed
            count_batch(switch, events, outcomes)  # the daemon's metrics, as in production
            committed += len(events)
            if committed >= call_events:
                all_committed.set()

        ingest.on_committed = on_committed
        try:
            started = time.perf_counter()
            task = asyncio.create_task(adapter.run(queue))
            await asyncio.wait_for(all_committed.wait(), 600)
            seconds = time.perf_counter() - started
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await queue.close()
        finally:
            await daemon.db.close()
    server.check()
    if ingest.stored != call_events:
        raise RuntimeError(f"stored {ingest.stored} of {call_events} call events ({ingest.refused} refused)")
    return Run(seconds, messages, ingest.stored)


def line(name: str, run: Run, base: Run | None) -> str:
    ratio = f"{base.seconds / run.seconds:6.3f}" if base is not None else " 1.000"
    stored = f"{run.stored / run.seconds:10,.0f}" if run.stored else f"{'-':>10}"
    return f"{name:<26} {run.seconds * 1000:9.1f} ms {run.messages / run.seconds:12,.0f} {stored} {ratio}"


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
    alone = best([await adapter_only(capture, messages, call_events) for _ in range(args.repeat)])
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

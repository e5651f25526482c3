"""Memory: RSS of calld's daemon holding --calls concurrent live calls, against the idle daemon.

The daemon runs as in production (``Daemon`` with a ``FreeswitchAdapter``, SQLite file, HTTP API
up) connected over TCP to a fake switch. The switch's traffic is made from real FreeSWITCH bytes:
one call of the j_load capture (both legs, from the first CODEC event to CHANNEL_PARK: created,
originated, answered, bridged, parked; ~28 ESL events), cloned --calls times with fresh channel
uuids and event sequence numbers (same JSON, re-framed). No call hangs up, so at the end the daemon
holds every call live: its adapter's leg correlation, the mapper's state, the stored calls.
By default the switch floods (200,000 events/s: calld's queues fill, which is the worst case for
the heap); ``--rate 3000`` paces it below what calld stores, as a busy but steady switch would.

Figures: VmRSS (from /proc/self/status, after a gc) of the idle daemon (started, switch connected)
and with every call stored (initiated + answered committed), and the growth per live call.
Baseline: the idle daemon in the same run; ratio = RSS with calls / idle RSS.

Usage: .venv/bin/python bench/memory.py [--calls 10000] 2>/dev/null
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.latency import PacedServer, Stream
from calld.adapters.freeswitch.adapter import FreeswitchAdapter
from calld.adapters.freeswitch.settings import FreeswitchConfig
from calld.config import Config, DatabaseConfig, ServerConfig
from calld.daemon import Daemon
from calld.logging import configure_logging
from tests.fakes.esl_capture import load_capture

_UNIQUE_ID = re.compile(rb'"Unique-ID":\s*"([0-9a-f-]{36})"')
_SEQUENCE = re.compile(rb'"Event-Sequence":\s*"(\d+)"')


def rss_mb() -> float:
    gc.collect()
    status = Path("/proc/self/status").read_text()
    kb = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
    return kb / 1024


def one_call(stream: Stream) -> tuple[list[bytes], set[bytes]]:
    """The frames of j_load's second call (its first calls do not overlap others), and its channels."""
    mapped = [i for i, keys in enumerate(stream.keys) if keys]  # initiated, answered, initiated, ...
    created, answered = mapped[2], mapped[3]
    window = stream.frames[created - 8 : answered + 12]  # from its first CODEC to its CHANNEL_PARK
    frames = [f for f in window if b'"Unique-ID"' in f]
    legs = {m.group(1) for f in frames for m in [_UNIQUE_ID.search(f)] if m}
    return frames, legs


def body_of(frame: bytes) -> bytes:
    return frame[frame.index(b"\n\n") + 2 :]


def clones(frames: list[bytes], legs: set[bytes], count: int, first_sequence: int) -> list[bytes]:
    """``count`` copies of the call's frames, each with new channel uuids and event sequences."""
    out, sequence = [], first_sequence
    for _ in range(count):
        fresh = {leg: str(uuid.uuid4()).encode() for leg in legs}
        for frame in frames:
            body = body_of(frame)
            for old, new in fresh.items():
                body = body.replace(old, new)
            sequence += 1
            body = _SEQUENCE.sub(b'"Event-Sequence":"%d"' % sequence, body, count=1)
            out.append(b"Content-Length: %d\nContent-Type: text/event-json\n\n%s" % (len(body), body))
    return out


async def switch(calls: int, rate: float) -> None:
    """The fake switch (a child process, so its traffic is not counted in calld's RSS): prints its
    port, waits for a line on stdin, then lets calld log in and streams the calls."""
    base = Stream.of(load_capture("j_load.json"))
    frames, legs = one_call(base)
    traffic = clones(frames, legs, calls, 10_000_000)
    stream = Stream(base.hello, base.auth_reply, base.subscribe_reply, traffic, [True] * len(traffic), [])
    server = PacedServer(stream, rate=rate)
    go = asyncio.Event()
    serve = server._serve

    async def gated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await go.wait()
        await serve(reader, writer)

    server._serve = gated  # type: ignore[method-assign]
    async with server:
        print(server.port, len(frames), len(legs), len(traffic), flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        go.set()
        await asyncio.to_thread(sys.stdin.readline)  # until the bench is done


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=200_000, help="ESL events/s the fake switch sends")
    parser.add_argument("--switch", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.switch:
        await switch(args.calls, args.rate)
        return
    configure_logging("warning", "json")
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--switch", "--calls", str(args.calls), "--rate", str(args.rate),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    port, per_call, legs, events = map(int, (await child.stdout.readline()).split())
    print(
        f"one call: {per_call} ESL events on {legs} channels; {args.calls:,} calls: {events:,} events "
        f"sent at up to {args.rate:,.0f}/s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        daemon = Daemon(
            Config(server=ServerConfig(port=0), database=DatabaseConfig(url=f"sqlite:///{tmp}/memory.db")),
            switch=FreeswitchAdapter(FreeswitchConfig(port=port, password="ClueCon")),
        )
        await daemon.start()
        await asyncio.sleep(0.5)
        idle = rss_mb()
        child.stdin.write(b"go\n")
        started = time.perf_counter()
        assert daemon.ingest is not None and daemon.ingest_queue is not None
        while daemon.ingest.stored < 2 * args.calls:
            await asyncio.sleep(0.2)
            if time.perf_counter() - started > 1800:
                raise TimeoutError(f"only {daemon.ingest.stored} call events stored")
        await daemon.ingest_queue.flush()
        seconds = time.perf_counter() - started
        loaded = rss_mb()
        await daemon.stop()
    child.stdin.write(b"done\n")
    await child.wait()
    print(f"{daemon.ingest.stored:,} call events stored in {seconds:.1f} s ({daemon.ingest.refused} refused)")
    print(f"{'':<28} {'RSS MB':>8} {'ratio':>6}")
    print(f"{'baseline: idle daemon':<28} {idle:8.1f} {1:6.2f}")
    print(f"{f'{args.calls:,} live calls':<28} {loaded:8.1f} {loaded / idle:6.2f}   target < 300 MB: "
          f"{'yes' if loaded < 300 else 'NO'}")  # fmt: skip
    print(f"per live call: {(loaded - idle) * 1024 / args.calls:.1f} KB")


if __name__ == "__main__":
    asyncio.run(main())

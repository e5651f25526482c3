"""calld's CPU at the rates a real PBX sends, and idle with a switch connected.

Three processes: this bench, a fake FreeSWITCH (``--switch``) and the process measured: calld
(``--calld``: its ``Daemon`` as ``calld run`` wires it, SQLite file, HTTP API up, spill file,
webhook worker, logging at info as JSON to stderr) or, for the baseline, a minimal client that only
reads and splits the frames (``--baseline``). The switch logs the client in with FreeSWITCH's
captured replies, then replays the j_load capture cut to calld's subscription (real FreeSWITCH
1.10.12 bytes, 600 call events per 200 calls), cloned as often as needed with fresh uuids and event
sequence numbers, paced at ``--rates`` *call events* per second (the ESL events between them paced
evenly: ~4.7 ESL events per call event) for ``--seconds``.

Figures, per rate and process: CPU (utime + stime from ``/proc/<pid>/stat``: that process alone)
while idle with the switch connected (``--idle`` seconds before the traffic) and while the traffic
runs (from the first frame to the commit of the last call event), as % of one core and µs per
call event; switch -> commit latency p50/p99 of every call event (bytes written to the socket ->
the commit of its transaction; ``time.perf_counter`` is CLOCK_MONOTONIC, the same in every process).
Baseline: the read+split client on the same paced stream in the same run; ratio = baseline CPU /
calld CPU.
Floor (``--floor``): what the targets allow at the least, same stream, same run: the read+split client
plus, for each frame that carries call events, one durable transaction in plain ``sqlite3`` on
calld's own migrated schema (its indexes and rollup triggers; WAL, synchronous=FULL, as calld
stores): a new call for every third call event, else the call updated, and the events inserted with
calld's dedup ``ON CONFLICT … RETURNING``. No decoding, no mapping, no SQLAlchemy: if the floor
alone is above a target, no code in this design (a durable commit per call event, the read model
kept by triggers) meets it.

Targets (issue 21): ≤ 2 % of a core at 40/s, ≤ 10 % at 400/s, p99 ≤ 10 ms at 40/s, idle ≈ 0.

``CALLD_BENCH_PROFILE=FILE`` writes a cProfile of calld's event-loop thread (idle and busy) to FILE.

Usage: .venv/bin/python bench/idle_cost.py [--rates 40,400] [--seconds 60] [--idle 10] 2>/dev/null
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import math
import os
import re
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile
from bench.latency import Stream, _read_frame
from calld.adapters.freeswitch.adapter import wanted
from calld.adapters.freeswitch.esl_codec import EslParser
from tests.fakes.esl_capture import connect_answers, load_capture, subscribed_only

_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SEQUENCE = re.compile(rb'"Event-Sequence":\s*"(\d+)"')
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _write(path: str, value: object) -> None:
    Path(path).write_text(json.dumps(value))


def _read(path: str) -> Any:
    return json.loads(Path(path).read_text())


def traffic(call_events: int) -> tuple[Stream, list[bytes], int]:
    """(the capture's handshake, event frames for at least ``call_events`` call events, ESL events
    per replay): j_load, subscribed, replayed with fresh uuids and sequence numbers."""
    base = Stream.of(subscribed_only(load_capture("j_load.json"), wanted))
    events = [f for f, is_event in zip(base.frames, base.is_event, strict=True) if is_event]
    per_replay = sum(len(k) for k in base.keys)
    frames: list[bytes] = []
    sequence = 1_000_000
    for _ in range(math.ceil(call_events / per_replay)):
        fresh: dict[bytes, bytes] = {}

        def swap(match: re.Match[bytes], fresh: dict[bytes, bytes] = fresh) -> bytes:
            return fresh.setdefault(match.group(0), str(uuid.uuid4()).encode())

        for frame in events:
            body = _UUID.sub(swap, frame[frame.index(b"\n\n") + 2 :])
            sequence += 1
            body = _SEQUENCE.sub(b'"Event-Sequence":"%d"' % sequence, body, count=1)
            frames.append(b"Content-Length: %d\nContent-Type: text/event-json\n\n%s" % (len(body), body))
    return base, frames, len(events) / per_replay


async def switch(rate: float, seconds: float, out: str) -> None:
    """The fake switch: prints its port, logs one client in, waits for "go" on stdin, paces the
    frames, writes {"sent": [...], "keys": [[...]...]} to ``out`` and prints "done"."""
    base, frames, esl_per_call_event = traffic(int(rate * seconds) + 1)
    esl_rate = rate * esl_per_call_event
    frames = frames[: int(esl_rate * seconds)]
    stream = Stream(base.hello, base.auth_reply, base.subscribe_reply, frames, [True] * len(frames), [])
    keys = _keys(frames)
    _write(f"{out}.keys", [len(k) for k in keys])  # which frames carry call events, for --floor
    go, logged_in = asyncio.Event(), asyncio.Event()
    sent = [0.0] * len(frames)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answers = connect_answers()
        writer.write(stream.hello)
        await reader.readuntil(b"\n\n")
        writer.write(stream.auth_reply)
        await reader.readuntil(b"\n\n")
        writer.write(stream.subscribe_reply)
        for _ in answers:
            writer.write(answers[await reader.readuntil(b"\n\n")])
        await writer.drain()
        logged_in.set()
        await go.wait()
        start, at = time.perf_counter(), 0
        while at < len(frames):
            now = time.perf_counter()
            due = min(len(frames), int((now - start) * esl_rate) + 1)
            if due > at:
                writer.write(b"".join(frames[at:due]))
                now = time.perf_counter()
                for i in range(at, due):
                    sent[i] = now
                at = due
                await writer.drain()
            if at < len(frames):
                await asyncio.sleep(max(0.0, start + at / esl_rate - time.perf_counter()))
        _write(out, {"sent": sent, "keys": keys})
        print("done", flush=True)
        await reader.read()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], len(frames), sum(len(k) for k in keys), flush=True)
    await logged_in.wait()
    print("connected", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    go.set()
    await asyncio.to_thread(sys.stdin.readline)  # until the bench is done
    server.close()


def _keys(frames: list[bytes]) -> list[list[str]]:
    from calld.adapters.freeswitch.esl_codec import iter_events
    from calld.adapters.freeswitch.mapping import EventMapper

    parser, mapper = EslParser(), EventMapper()
    return [[e.key for event in iter_events(parser.feed(f)) for e in mapper.map(event)] for f in frames]


async def baseline_client(port: int, out: str, store: Callable[[int], None] | None = None) -> None:
    """Reads and splits the stream; writes each event frame's arrival time to ``out`` on "dump".
    ``store(i)``, if given, runs for the i-th event frame as it arrives (the floor's transaction)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readuntil(b"\n\n")
    writer.write(b"auth ClueCon\n\n")
    await reader.readuntil(b"\n\n")
    writer.write(b"event json ALL\n\n" + b"".join(connect_answers()))
    for _ in range(1 + len(connect_answers())):
        await _read_frame(reader)
    arrived: list[float] = []
    stop = asyncio.create_task(asyncio.to_thread(sys.stdin.readline))
    parser = EslParser()
    while not stop.done():
        read = asyncio.create_task(reader.read(262144))
        await asyncio.wait({read, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not read.done():
            read.cancel()
            break
        chunk = read.result()
        if not chunk:
            break
        if store is None:
            now = time.perf_counter()
            arrived.extend(now for _ in parser.feed(chunk))
            continue
        for _ in parser.feed(chunk):
            store(len(arrived))
            arrived.append(time.perf_counter())
    _write(out, arrived)
    print("dumped", flush=True)


async def floor_client(port: int, folder: str, out: str, counts_file: str) -> None:
    """The floor: ``baseline_client`` plus a plain ``sqlite3`` durable transaction per frame that
    carries call events (``counts_file``: call events per frame), on calld's migrated schema."""
    from calld.storage.database import Database

    path = f"{folder}/floor.db"
    db = Database(f"sqlite:///{path}")
    await db.migrate()
    await db.close()
    counts: list[int] = _read(counts_file)
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
        conn.execute(f"PRAGMA {pragma}")
    now = "2026-12-04 12:00:00.000000"
    stored, call = 0, ""

    def store(frame: int) -> None:
        nonlocal stored, call
        if not counts[frame]:
            return
        conn.execute("BEGIN IMMEDIATE")
        for _ in range(counts[frame]):
            if stored % 3 == 0:
                call = uuid.uuid4().hex
                conn.execute(_FLOOR_NEW_CALL, (call, "+4930123456", "+4930654321", call, now, now, now, now))
            else:
                conn.execute(_FLOOR_CALL_CHANGED, (now, now, now, call))
            conn.execute(_FLOOR_EVENT, (call, now, '{"switch": "freeswitch"}', f"floor:{stored}", now)).fetchall()
            stored += 1
        conn.execute("COMMIT")

    print("connected", flush=True)
    await baseline_client(port, out, store)


_FLOOR_NEW_CALL = (
    "INSERT INTO call_logs (id, direction, call_type, status, caller_number, recipient_number, caller_withheld,"
    " switch_name, switch_call_ref, started_at, last_event_at, hold_seconds, recording, notes, seeded, purging,"
    " created_at, updated_at) VALUES (?, 'inbound', 'voice', 'initiated', ?, ?, 0, 'freeswitch', ?, ?, ?, 0, 0, '',"
    " 0, 0, ?, ?)"
)
_FLOOR_CALL_CHANGED = (
    "UPDATE call_logs SET status = 'answered', answered_at = ?, last_event_at = ?, updated_at = ? WHERE id = ?"
)
_FLOOR_EVENT = (
    "INSERT INTO call_events (call_id, event_type, timestamp, metadata, source, dedup_key, created_at)"
    " VALUES (?, 'answered', ?, ?, 'switch', ?, ?) ON CONFLICT (dedup_key) DO NOTHING RETURNING id"
)


async def calld_process(port: int, folder: str, out: str) -> None:
    """calld's daemon, as ``calld run`` wires it, on a SQLite file in ``folder``; records when each
    call event's transaction committed and writes {key: time} to ``out`` on "dump"."""
    from calld.adapters.freeswitch.adapter import FreeswitchAdapter
    from calld.adapters.freeswitch.settings import FreeswitchConfig
    from calld.config import Config, DatabaseConfig, IngestConfig, ServerConfig
    from calld.daemon import Daemon, keep_startup_heap_out_of_collections
    from calld.logging import configure_logging

    configure_logging("info", "json")
    adapter = FreeswitchAdapter(FreeswitchConfig(port=port, password="ClueCon"))
    config = Config(
        server=ServerConfig(port=0),
        database=DatabaseConfig(url=f"sqlite:///{folder}/calld.db"),
        ingest=IngestConfig(spill_path=f"{folder}/spill.jsonl"),
    )
    daemon = Daemon(config, switch=adapter)
    assert daemon.ingest is not None and daemon.ingest.on_committed is not None
    count, committed = daemon.ingest.on_committed, {}

    def on_committed(name: str, events: object, outcomes: object) -> None:
        count(name, events, outcomes)  # type: ignore[arg-type]
        now = time.perf_counter()
        for event in events:  # type: ignore[attr-defined]
            committed[event.key] = now

    daemon.ingest.on_committed = on_committed
    await daemon.start()
    keep_startup_heap_out_of_collections()  # as `calld run` does
    await adapter.connected.wait()
    print("connected", flush=True)
    profile = os.environ.get("CALLD_BENCH_PROFILE")  # a file: cProfile of calld's event loop thread
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    while (await asyncio.to_thread(sys.stdin.readline)).strip() == "dump":
        _write(out, committed)
        print("dumped", daemon.ingest.stored, daemon.ingest.refused, flush=True)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    await daemon.stop()


@dataclass
class Figures:
    idle_cpu: float  # seconds of CPU per second, idle with the switch connected
    cpu: float  # seconds of CPU per second under traffic
    seconds: float
    call_events: int
    latencies: list[float]

    def row(self, name: str, base: Figures | None) -> str:
        lat = sorted(self.latencies)
        p50, p99 = percentile(lat, 50) * 1000, percentile(lat, 99) * 1000
        per_event = self.cpu * self.seconds / self.call_events * 1e6 if self.call_events else float("nan")
        ratio = f"{base.cpu / self.cpu:7.3f}" if base is not None and self.cpu else "  1.000"
        return (
            f"{name:<22} {self.idle_cpu * 100:8.3f} {self.cpu * 100:8.2f} {per_event:10.0f} "
            f"{p50:8.2f} {p99:8.2f} {ratio}"
        )


async def _line(stream: asyncio.StreamReader) -> str:
    return (await stream.readline()).decode().strip()


async def measure(kind: str, rate: float, seconds: float, idle: float, tmp: str) -> Figures:
    me = [sys.executable, __file__]
    pipe = asyncio.subprocess.PIPE
    sent_file, got_file = f"{tmp}/{kind}-sent.json", f"{tmp}/{kind}-got.json"
    sw = await asyncio.create_subprocess_exec(
        *me, "--switch", "--rate", str(rate), "--seconds", str(seconds), "--out", sent_file, stdin=pipe, stdout=pipe
    )
    assert sw.stdin is not None and sw.stdout is not None
    port = (await _line(sw.stdout)).split()[0]
    folder = tempfile.mkdtemp(dir=tmp)
    child = await asyncio.create_subprocess_exec(
        *me, f"--{kind}", "--port", port, "--folder", folder, "--out", got_file, "--counts", f"{sent_file}.keys",
        stdin=pipe, stdout=pipe, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    assert await _line(sw.stdout) == "connected"
    if kind in ("calld", "floor"):
        assert await _line(child.stdout) == "connected"
    await asyncio.sleep(2.0)  # start-up work (first statements, the switch's channel list) settles
    cpu0, t0 = cpu_seconds(child.pid), time.perf_counter()
    await asyncio.sleep(idle)
    cpu1, t1 = cpu_seconds(child.pid), time.perf_counter()
    sw.stdin.write(b"go\n")
    await sw.stdin.drain()
    assert await _line(sw.stdout) == "done"
    sent = _read(sent_file)
    keys: list[list[str]] = sent["keys"]
    expected = sum(len(k) for k in keys)
    # Until everything is committed (calld) or read (baseline); the CPU stops being counted then.
    deadline = time.perf_counter() + 60
    if kind != "calld":
        await asyncio.sleep(0.5)
    while True:
        child.stdin.write(b"dump\n")
        await child.stdin.drain()
        await _line(child.stdout)
        cpu2, t2 = cpu_seconds(child.pid), time.perf_counter()
        got = _read(got_file)
        done = len(got) >= expected if kind == "calld" else len(got) >= len(keys)
        if done or time.perf_counter() > deadline or kind != "calld":
            break
        await asyncio.sleep(0.2)
    if kind == "calld":
        latencies = [got[k] - sent["sent"][i] for i, ks in enumerate(keys) for k in ks if k in got]
        end = max(got.values(), default=t2)
        if len(latencies) < expected:
            print(f"  calld committed {len(latencies)} of {expected} call events", file=sys.stderr)
    else:
        latencies = [got[i] - sent["sent"][i] for i, ks in enumerate(keys) for _ in ks if i < len(got)]
        end = max(got, default=t2)
    busy = max(end, sent["sent"][-1]) - t1
    # CPU between "go" and the dump, over the time from "go" to the last commit (the dump's own
    # CPU is tiny; the process is idle after its last commit)
    figures = Figures(
        idle_cpu=(cpu1 - cpu0) / (t1 - t0),
        cpu=(cpu2 - cpu1) / busy,
        seconds=busy,
        call_events=expected,
        latencies=latencies,
    )
    if kind == "calld":
        child.stdin.write(b"stop\n")
        await child.stdin.drain()
    await child.wait()
    sw.stdin.write(b"bye\n")
    await sw.stdin.drain()
    await sw.wait()
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="40,400", help="call events per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds measured idle, switch connected")
    parser.add_argument("--switch", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--calld", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--counts", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.switch:
        await switch(args.rate, args.seconds, args.out)
        return
    if args.baseline:
        await baseline_client(args.port, args.out)
        return
    if args.floor:
        await floor_client(args.port, args.folder, args.out, args.counts)
        return
    if args.calld:
        await calld_process(args.port, args.folder, args.out)
        return
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    header = f"{'':<22} {'idle %':>8} {'busy %':>8} {'µs/event':>10} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>7}"
    with tempfile.TemporaryDirectory() as tmp:
        for rate in (float(r) for r in args.rates.split(",")):
            base = await measure("baseline", rate, args.seconds, args.idle, tmp)
            floor = await measure("floor", rate, args.seconds, args.idle, tmp)
            calld = await measure("calld", rate, args.seconds, args.idle, tmp)
            print(f"\n{rate:,.0f} call events/s for {args.seconds:.0f} s ({calld.call_events:,} call events)")
            print(header)
            print(base.row("baseline: read+split", None))
            print(floor.row("floor: + raw sqlite3", base))
            print(calld.row("calld (SQLite)", base))
            limit = 2.0 if rate <= 40 else 10.0
            print(
                f"floor ≤ {limit:g} % of a core: {'yes' if floor.cpu * 100 <= limit else 'NO'}; "
                f"calld / floor CPU: {calld.cpu / floor.cpu:.2f}"
            )
            print(
                f"target: calld busy ≤ {limit:g} % of a core: {'yes' if calld.cpu * 100 <= limit else 'NO'}"
                + (
                    f"; p99 ≤ 10 ms: {'yes' if percentile(sorted(calld.latencies), 99) <= 0.010 else 'NO'}"
                    if rate <= 40
                    else ""
                )
            )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    print("% = CPU seconds per wall second of that process alone (100 = one core busy); ratio = baseline / calld")


if __name__ == "__main__":
    asyncio.run(main())

#!/usr/bin/env python3
"""Record a real AMI load capture: a burst of ~200 sipp calls, with calld's own ``AsteriskAdapter``
as the AMI client, byte for byte in both directions through a recording loopback proxy.

Usage (Asterisk running: lab/asterisk/start.sh; from the repository root):

    .venv/bin/python lab/asterisk/capture_load.py tests/data/asterisk [--name load] [--scale 1.0]

The adapter connects to a proxy on 127.0.0.1 that forwards to the lab's AMI (127.0.0.1:5038) and
records every ``recv()`` from Asterisk (the bytes, and their chunking) and every ``recv()`` from the
adapter (its actions: Login, the two Filters, CoreShowChannels). So the actions and their replies are
the real ones (panoramisk's ActionIDs, Asterisk's answers). The adapter runs with
``keepalive_seconds=600`` so no keepalive Ping falls inside the session (a replay would not send it
at the same point of the stream). Once the phones are done and the last call event has arrived, the
adapter is stopped (it closes the connection, as calld does at shutdown): the capture ends there,
without a Logoff.

Writes ``<name>.ami.gz`` (the bytes received, gzipped) and ``<name>.timeline.jsonl`` (the format of
the other captures: ``recv`` off/len, ``send`` data, ``ctl`` for each sipp phone started, ``note``),
and prints the call events the adapter handed its sink, by type and final status.

Calls (``--scale`` multiplies the counts): phone 1001 -> 1002 answers after 1 s ringing, talk 2 s
(100 calls, 5 calls/s); 1005 -> 1006 answers, talk 4 s (60 calls, 3/s); 1007 -> 1003 rings until
Dial's 6 s timeout (20 calls, 1/s); 1008 -> 1004 busy (486) (20 calls, 1/s). All four streams start
together.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from calld.adapters.asterisk.adapter import AsteriskAdapter  # noqa: E402
from calld.adapters.asterisk.settings import AsteriskConfig  # noqa: E402
from calld.domain.events import SwitchEvent  # noqa: E402

AMI = ("127.0.0.1", 5038)
SIP_SERVER = "127.0.0.1:5060"
SIPP_DIR = HERE / "sipp"


def phone_ip(phone: str) -> str:
    return f"127.0.0.{int(phone) - 999}"


@dataclass(frozen=True)
class Stream:
    caller: str
    callee: str
    behaviour: str  # the callee's uas_<behaviour>.xml
    calls: int
    rate: float  # calls per second
    talk_ms: int = 0  # uac_call.xml's -d; 0: uac_fail.xml


STREAMS = (
    Stream("1001", "1002", "answer", 100, 5.0, 2000),
    Stream("1005", "1006", "answer", 60, 3.0, 4000),
    Stream("1007", "1003", "noanswer", 20, 1.0),
    Stream("1008", "1004", "busy", 20, 1.0),
)


class RecordingProxy:
    """127.0.0.1:<port> -> Asterisk AMI; records one connection's bytes both ways, with a timeline."""

    def __init__(self) -> None:
        self.data = bytearray()  # received from Asterisk
        self.timeline: list[dict[str, object]] = []
        self.t0 = 0.0
        self.done = asyncio.Event()
        self._server: asyncio.Server | None = None
        self.connections = 0

    def log(self, direction: str, **fields: object) -> None:
        now = time.time()
        self.timeline.append({"t": round(now - self.t0, 6), "ts": round(now, 6), "dir": direction, **fields})

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.connections > 1:  # one session only: a reconnect would spoil the capture
            self.log("note", data="a second connection was refused")
            writer.transport.abort()
            return
        self.t0 = time.time()
        up_reader, up_writer = await asyncio.open_connection(*AMI)

        async def client_to_switch() -> None:
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(65536):
                    self.log("send", data=data.decode())
                    up_writer.write(data)
                    await up_writer.drain()
            up_writer.close()

        async def switch_to_client() -> None:
            with contextlib.suppress(ConnectionError):
                while data := await up_reader.read(65536):
                    self.log("recv", off=len(self.data), len=len(data))
                    self.data += data
                    writer.write(data)
                    await writer.drain()
            writer.close()

        await asyncio.gather(client_to_switch(), switch_to_client(), return_exceptions=True)
        self.done.set()


async def sipp(proxy: RecordingProxy, procs: list[asyncio.subprocess.Process], label: str, *args: str) -> None:
    cmd = ["sipp", *args, "-nostdin", "-timeout", "120s", "-timeout_error"]
    proxy.log("ctl", data=f"{label}: {' '.join(cmd)}")
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=SIPP_DIR, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    procs.append(proc)


def save(outdir: Path, name: str, proxy: RecordingProxy) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / f"{name}.ami.gz").write_bytes(gzip.compress(bytes(proxy.data), 9, mtime=0))
    with (outdir / f"{name}.timeline.jsonl").open("w") as f:
        for entry in proxy.timeline:
            f.write(json.dumps(entry) + "\n")


async def run(outdir: Path, name: str, scale: float) -> None:
    proxy = RecordingProxy()
    port = await proxy.start()
    settings = AsteriskConfig(
        port=port,
        secret="calld-lab-secret",
        inbound_contexts=("lab-inbound",),
        outbound_contexts=("lab-outbound",),
        originate_context="lab-outbound",
        keepalive_seconds=600.0,
    )
    adapter = AsteriskAdapter(settings)
    events: list[SwitchEvent] = []

    async def sink(event: SwitchEvent) -> None:
        events.append(event)

    task = asyncio.create_task(adapter.run(sink))
    await asyncio.wait_for(adapter.resynced.wait(), 10)
    streams = [
        Stream(s.caller, s.callee, s.behaviour, max(1, round(s.calls * scale)), s.rate, s.talk_ms) for s in STREAMS
    ]
    total = sum(s.calls for s in streams)
    plan = "; ".join(f"{s.caller} -> {s.callee} {s.behaviour} x{s.calls} at {s.rate}/s" for s in streams)
    proxy.log("note", data=plan)
    procs: list[asyncio.subprocess.Process] = []
    for s in streams:  # the called phones first, so they are bound before anything calls them
        ip = phone_ip(s.callee)
        await sipp(
            proxy,
            procs,
            f"phone {s.callee} ({s.behaviour})",
            "-sf",
            f"uas_{s.behaviour}.xml",
            "-i",
            ip,
            "-p",
            "5060",
            "-mi",
            ip,
            "-m",
            str(s.calls),
        )
    await asyncio.sleep(0.5)
    for s in streams:
        ip = phone_ip(s.caller)
        scenario = ["-sf", "uac_call.xml", "-d", str(s.talk_ms)] if s.talk_ms else ["-sf", "uac_fail.xml"]
        await sipp(
            proxy,
            procs,
            f"phone {s.caller} dials {s.callee} x{s.calls}",
            SIP_SERVER,
            *scenario,
            "-s",
            s.callee,
            "-key",
            "caller",
            s.caller,
            "-i",
            ip,
            "-p",
            "5070",
            "-mi",
            ip,
            "-m",
            str(s.calls),
            "-r",
            str(s.rate),
            "-l",
            "1000",
        )
    codes = [await p.wait() for p in procs]
    proxy.log("note", data=f"sipp exit codes {codes}")
    # The last call events (Hangup of the last legs) follow the last BYE within milliseconds.
    for _ in range(75):
        if not adapter.open_calls():
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    proxy.log("note", data=f"stopping the adapter (open calls: {len(adapter.open_calls())})")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.wait_for(proxy.done.wait(), 5)
    await proxy.close()

    save(outdir, name, proxy)
    calls = {e.call_ref for e in events}
    finals = Counter(e.event_type.value for e in events)
    print(
        f"{name}: {total} calls placed, {len(calls)} calls seen; {len(proxy.data):,} bytes in "
        f"{sum(1 for e in proxy.timeline if e['dir'] == 'recv')} recv chunks; {len(events)} call events"
    )
    print(f"  sipp exit codes {codes}; call events by type: {dict(sorted(finals.items()))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--name", default="load")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every stream's call count")
    args = parser.parse_args()
    asyncio.run(run(args.outdir, args.name, args.scale))


if __name__ == "__main__":
    main()

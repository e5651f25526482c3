#!/usr/bin/env python3
"""Record real AMI sessions of the lab Asterisk, byte for byte, while sipp phones make calls.

Usage (Asterisk running: lab/asterisk/start.sh; from the repository root):

    .venv/bin/python lab/asterisk/capture.py tests/data/asterisk [scenario ...]

For each scenario ``<name>`` it writes ``<name>.ami`` (exactly the bytes received on the AMI socket,
banner to EOF after Logoff) and ``<name>.timeline.jsonl``: one JSON object per line with ``t``
(seconds since connect) and ``ts`` (unix time) and ``dir`` one of ``recv`` (``off``/``len``: the
bytes ``[off, off+len)`` of the .ami were one ``recv()``), ``send`` (``data``: exact bytes sent),
``ctl`` (``data``: a sipp/lab command started) or ``note``.

Phones: sipp on 127.0.0.2 (1001), .3 (1002), .4 (1003), .5 (1004); UAS on port 5060 (called),
UAC from port 5070 (calling). Scenario XML files are in ``lab/asterisk/sipp/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from calld.adapters.asterisk.ami_codec import AmiMessage, AmiParser, encode_action  # noqa: E402

AMI_HOST = "127.0.0.1"
AMI_PORT = 5038
USER = "calld"
SECRET = "calld-lab-secret"
SIPP_DIR = HERE / "sipp"
LAB_DIR = Path(os.environ.get("CALLD_LAB_DIR", "/var/tmp/calld-lab/asterisk-chroot"))
PHONE_IP = {"1001": "127.0.0.2", "1002": "127.0.0.3", "1003": "127.0.0.4", "1004": "127.0.0.5"}

Predicate = Callable[[AmiMessage], bool]


def ev(name: str, **headers: str) -> Predicate:
    """Match an event by name and header values (a value ending in '*' is a prefix)."""

    def match(m: AmiMessage) -> bool:
        if m.event != name:
            return False
        for key, want in headers.items():
            got = m.get(key, "")
            if want.endswith("*") and not got.startswith(want[:-1]):
                return False
            if not want.endswith("*") and got != want:
                return False
        return True

    return match


class Session:
    """One AMI connection whose received bytes and timeline are recorded."""

    def __init__(self, name: str, outdir: Path) -> None:
        self.name = name
        self.outdir = outdir
        self.data = bytearray()
        self.timeline: list[dict[str, object]] = []
        self.messages: list[AmiMessage] = []
        self.parser = AmiParser()
        self.t0 = 0.0
        self.changed = asyncio.Condition()
        self.closed = False
        self.procs: list[asyncio.subprocess.Process] = []
        self._action_id = 0
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._pump: asyncio.Task[None] | None = None
        self.saved = False

    def _log(self, direction: str, **fields: object) -> None:
        now = time.time()
        self.timeline.append({"t": round(now - self.t0, 6), "ts": round(now, 6), "dir": direction, **fields})

    def note(self, text: str) -> None:
        print(f"  [{self.name}] {text}")
        self._log("note", data=text)

    async def connect(self) -> None:
        self.t0 = time.time()
        self.reader, self.writer = await asyncio.open_connection(AMI_HOST, AMI_PORT)
        self._pump = asyncio.create_task(self._read())
        await self.action("Login", {"Username": USER, "Secret": SECRET, "Events": "on"})

    async def _read(self) -> None:
        assert self.reader is not None
        while True:
            chunk = await self.reader.read(65536)
            if not chunk:
                break
            self._log("recv", off=len(self.data), len=len(chunk))
            self.data += chunk
            msgs = self.parser.feed(chunk)
            async with self.changed:
                self.messages.extend(msgs)
                self.changed.notify_all()
        async with self.changed:
            self.closed = True
            self.changed.notify_all()

    async def send(self, raw: bytes) -> None:
        assert self.writer is not None
        self._log("send", data=raw.decode())
        self.writer.write(raw)
        await self.writer.drain()

    async def action(
        self, action: str, headers: Mapping[str, str] | list[tuple[str, str]] = (), wait: bool = True
    ) -> AmiMessage | None:
        """Send an action with a fresh ActionID; return its response (or None if not waiting)."""
        self._action_id += 1
        action_id = f"{self.name}-{self._action_id}"
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        await self.send(encode_action(action, [("ActionID", action_id), *pairs]))
        if not wait:
            return None
        return await self.wait(lambda m: m.response is not None and m.get("ActionID") == action_id, within=10)

    async def wait(self, pred: Predicate, within: float = 15.0, start: int = 0) -> AmiMessage:
        """The first message from index ``start`` on matching ``pred`` (waits for it)."""
        deadline = time.monotonic() + within
        async with self.changed:
            while True:
                for m in self.messages[start:]:
                    if pred(m):
                        return m
                remaining = deadline - time.monotonic()
                if self.closed or remaining <= 0:
                    raise TimeoutError(f"{self.name}: no matching message (closed={self.closed})")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), remaining)

    def mark(self) -> int:
        """Index to pass as ``start`` to wait only for messages after this point."""
        return len(self.messages)

    async def settle(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def sipp(self, *args: str, label: str) -> asyncio.subprocess.Process:
        """Start a sipp process (logged as ``ctl``); it is waited for/terminated at the end."""
        cmd = ["sipp", *args, "-nostdin", "-timeout", "40s", "-timeout_error"]
        self._log("ctl", data=f"{label}: {' '.join(cmd)}")
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=SIPP_DIR, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        self.procs.append(proc)
        return proc

    async def phone_uas(self, phone: str, behaviour: str, calls: int = 1) -> None:
        """Phone ``phone`` waits for calls: behaviour answer | noanswer | busy."""
        await self.sipp(
            "-sf",
            f"uas_{behaviour}.xml",
            "-i",
            PHONE_IP[phone],
            "-p",
            "5060",
            "-mi",
            PHONE_IP[phone],
            "-m",
            str(calls),
            label=f"phone {phone} ({behaviour})",
        )
        await asyncio.sleep(0.3)  # let it bind before anything calls it

    async def phone_call(self, phone: str, dest: str, scenario: str, duration_ms: int = 0) -> None:
        """Phone ``phone`` dials ``dest`` with uac_<scenario>.xml."""
        args = [
            f"{AMI_HOST}:5060",
            "-sf",
            f"uac_{scenario}.xml",
            "-s",
            dest,
            "-key",
            "caller",
            phone,
            "-i",
            PHONE_IP[phone],
            "-p",
            "5070",
            "-mi",
            PHONE_IP[phone],
            "-m",
            "1",
        ]
        if duration_ms:
            args += ["-d", str(duration_ms)]
        await self.sipp(*args, label=f"phone {phone} dials {dest} ({scenario})")

    async def finish_phones(self, within: float = 30.0) -> None:
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), within)
            except TimeoutError:
                self.note(f"sipp pid {proc.pid} still running; terminating it")
                proc.terminate()
                await proc.wait()
        self.procs.clear()

    async def close(self) -> None:
        """Log off and read to EOF, then write the capture files (once)."""
        if self.saved:
            return
        self.saved = True
        if not self.closed:
            with contextlib.suppress(TimeoutError, ConnectionError):
                await self.action("Logoff", wait=False)
                async with self.changed:
                    await asyncio.wait_for(self.changed.wait_for(lambda: self.closed), 5)
        if self._pump is not None:
            await self._pump
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()
        self.save()

    def save(self) -> None:
        self.outdir.mkdir(parents=True, exist_ok=True)
        (self.outdir / f"{self.name}.ami").write_bytes(bytes(self.data))
        with (self.outdir / f"{self.name}.timeline.jsonl").open("w") as f:
            for entry in self.timeline:
                f.write(json.dumps(entry) + "\n")
        events = [m.event for m in self.messages if m.event]
        print(f"  [{self.name}] {len(self.data)} bytes, {len(events)} events")


# --- scenarios ------------------------------------------------------------------------------------


async def bridged_call(s: Session, duration_ms: int, scenario: str = "call") -> tuple[str, str]:
    """1001 calls 1002 (answers after 1 s); return (A channel, B channel) once both are bridged."""
    mark = s.mark()
    await s.phone_uas("1002", "answer")
    await s.phone_call("1001", "1002", scenario, duration_ms)
    a = await s.wait(ev("BridgeEnter", Channel="PJSIP/1001-*"), start=mark)
    b = await s.wait(ev("BridgeEnter", Channel="PJSIP/1002-*"), start=mark)
    return a["Channel"], b["Channel"]


async def answered(s: Session) -> None:
    s.note("1001 calls 1002; 1002 rings 1 s and answers; talk 3 s; 1001 hangs up (BYE)")
    await bridged_call(s, 3000)
    await s.finish_phones()


async def no_answer(s: Session) -> None:
    s.note("1001 calls 1002; 1002 rings and never answers; Dial timeout 6 s; Asterisk gives up")
    await s.phone_uas("1002", "noanswer")
    await s.phone_call("1001", "1002", "fail")
    await s.finish_phones()


async def busy(s: Session) -> None:
    s.note("1001 calls 1002; 1002 answers 486 Busy Here")
    await s.phone_uas("1002", "busy")
    await s.phone_call("1001", "1002", "fail")
    await s.finish_phones()


async def cancelled(s: Session) -> None:
    s.note("1001 calls 1002; 1002 rings; 1001 hangs up (CANCEL) after 2 s of ringing")
    await s.phone_uas("1002", "noanswer")
    await s.phone_call("1001", "1002", "cancel")
    await s.finish_phones()


async def failed(s: Session) -> None:
    s.note("1001 calls 9008 (Congestion(): 503, cause 34)")
    await s.phone_call("1001", "9008", "fail")
    await s.finish_phones()


async def hold(s: Session) -> None:
    s.note("1001 calls 1002, answered; 1001 holds (re-INVITE a=sendonly) 2 s, resumes (sendrecv), hangs up")
    await bridged_call(s, 0, "hold")
    await s.finish_phones()


async def api_hold(s: Session) -> None:
    s.note(
        "1001 calls 1002, answered; calld's hold: AMI Redirect 1001 -> calld-hold,hold (MusicOnHold) with "
        "ExtraChannel 1002 -> calld-hold,wait; 1.5 s; AMI Bridge 1002+1001 (unhold); 1 s; hold again; "
        "1001 hangs up while held (BYE 7 s after answer); AMI Hangup of 1002, left waiting"
    )
    a, b = await bridged_call(s, 7000)

    async def hold() -> None:
        await s.action(
            "Redirect",
            {
                "Channel": a,
                "Context": "calld-hold",
                "Exten": "hold",
                "Priority": "1",
                "ExtraChannel": b,
                "ExtraContext": "calld-hold",
                "ExtraExten": "wait",
                "ExtraPriority": "1",
            },
        )

    await s.settle(1.0)
    s.note(f"Redirect Channel={a} -> calld-hold,hold ExtraChannel={b} -> calld-hold,wait")
    await hold()
    await s.settle(1.5)
    s.note(f"Bridge Channel1={b} Channel2={a} Tone=no")
    await s.action("Bridge", {"Channel1": b, "Channel2": a, "Tone": "no"})
    await s.settle(1.0)
    mark = s.mark()
    s.note("Redirect again (hold); 1001 will hang up while held")
    await hold()
    await s.wait(ev("Hangup", Channel=a), start=mark, within=10)
    s.note(f"Hangup Channel={b} (waiting in calld-hold,wait)")
    await s.action("Hangup", {"Channel": b})
    await s.finish_phones()


async def blind_transfer(s: Session) -> None:
    s.note("1001 calls 1002, answered; AMI BlindTransfer of 1002's channel to 1003: 1001 is sent to 1003")
    await s.phone_uas("1003", "answer")
    _, b = await bridged_call(s, 7000)
    await s.settle(1.5)
    s.note(f"BlindTransfer Channel={b} Exten=1003 Context=lab-inbound")
    await s.action("BlindTransfer", {"Channel": b, "Exten": "1003", "Context": "lab-inbound"})
    await s.finish_phones()


async def redirect_transfer(s: Session) -> None:
    s.note("1001 calls 1002, answered; AMI Redirect of 1001's channel to 1003 (the other way to transfer)")
    await s.phone_uas("1003", "answer")
    a, _ = await bridged_call(s, 7000)
    await s.settle(1.5)
    s.note(f"Redirect Channel={a} Exten=1003 Context=lab-inbound Priority=1")
    await s.action("Redirect", {"Channel": a, "Exten": "1003", "Context": "lab-inbound", "Priority": "1"})
    await s.finish_phones()


async def attended_transfer(s: Session) -> None:
    s.note(
        "1001 calls 1002, answered; AMI Atxfer on 1002's channel to 1003; 1003 answers; "
        "AMI Hangup of 1002's channel completes the transfer: 1001 talks to 1003; 1001 hangs up"
    )
    await s.phone_uas("1003", "answer")
    _, b = await bridged_call(s, 9000)
    await s.settle(1.5)
    mark = s.mark()
    s.note(f"Atxfer Channel={b} Exten=1003 Context=lab-inbound")
    await s.action("Atxfer", {"Channel": b, "Exten": "1003", "Context": "lab-inbound"})
    await s.wait(ev("BridgeEnter", Channel="PJSIP/1003-*"), start=mark, within=10)
    await s.settle(1.5)
    s.note(f"Hangup Channel={b} (transferrer hangs up: transfer completes)")
    await s.action("Hangup", {"Channel": b})
    await s.finish_phones()


async def recording(s: Session) -> None:
    s.note("1001 calls 1002, answered; AMI MixMonitor on 1001's channel for 2 s, StopMixMonitor; hang up")
    a, _ = await bridged_call(s, 5000)
    await s.settle(0.5)
    path = "/var/spool/asterisk/monitor/calld-lab-recording.wav"
    s.note(f"MixMonitor Channel={a} File={path} (inside the chroot: {LAB_DIR}{path})")
    await s.action("MixMonitor", {"Channel": a, "File": path, "Options": "b"})
    await s.settle(2.0)
    await s.action("StopMixMonitor", {"Channel": a})
    await s.finish_phones()


async def dtmf(s: Session) -> None:
    s.note("1001 calls 1002, answered; 1001 sends 1 2 # as SIP INFO; AMI PlayDTMF 5 to 1001's channel")
    mark = s.mark()
    await s.phone_uas("1002", "answer")
    await s.phone_call("1001", "1002", "dtmf")
    a = await s.wait(ev("BridgeEnter", Channel="PJSIP/1001-*"), start=mark)
    await s.settle(0.5)
    await s.action("PlayDTMF", {"Channel": a["Channel"], "Digit": "5", "Duration": "200"})
    await s.finish_phones()


async def conference(s: Session) -> None:
    s.note(
        "1001, 1002, 1003 each call 9005 (ConfBridge calld-lab), 0.5 s apart; they stay 3, 3.5, 4 s; "
        "ConfbridgeList while all are in"
    )
    for i, phone in enumerate(["1001", "1002", "1003"]):
        await s.phone_call(phone, "9005", "call", 3000 + 500 * i)
        await asyncio.sleep(0.5)
    await s.wait(lambda m: m.event == "ConfbridgeJoin" and m.get("CallerIDNum") == "1003", within=10)
    await s.action("ConfbridgeList", {"Conference": "calld-lab"})
    await s.finish_phones()


async def originate(s: Session) -> None:
    call_id = str(uuid.uuid4())
    s.note(
        f"AMI Originate PJSIP/1001 -> lab-outbound 1002 with __CALLD_CALL_ID={call_id}; both phones "
        "answer after 1 s; AMI Hangup of 1001's channel 2 s after the bridge"
    )
    await s.phone_uas("1001", "answer")
    await s.phone_uas("1002", "answer")
    mark = s.mark()
    await s.action(
        "Originate",
        [
            ("Channel", "PJSIP/1001"),
            ("Context", "lab-outbound"),
            ("Exten", "1002"),
            ("Priority", "1"),
            ("CallerID", "calld <9999>"),
            ("Timeout", "10000"),
            ("Async", "true"),
            # "__" makes the variable inherited by the dialled leg too.
            ("Variable", f"__CALLD_CALL_ID={call_id}"),
        ],
    )
    await s.wait(ev("BridgeEnter", Channel="PJSIP/1002-*"), start=mark)
    await s.settle(2.0)
    a = await s.wait(ev("BridgeEnter", Channel="PJSIP/1001-*"), start=mark)
    await s.action("Hangup", {"Channel": a["Channel"]})
    await s.finish_phones()


async def originate_channel_id(s: Session) -> None:
    call_id = str(uuid.uuid4())
    s.note(
        f"AMI Originate PJSIP/1001 -> lab-outbound 9000 with ChannelId={call_id} (sets the Uniqueid, hence "
        f"the Linkedid) and CALLD_CALL_ID={call_id}; 9000 answers, waits 3 s, hangs up"
    )
    await s.phone_uas("1001", "answer")
    await s.action(
        "Originate",
        [
            ("Channel", "PJSIP/1001"),
            ("Context", "lab-outbound"),
            ("Exten", "9000"),
            ("Priority", "1"),
            ("CallerID", "calld <9999>"),
            ("Timeout", "10000"),
            ("Async", "true"),
            ("ChannelId", call_id),
            ("Variable", f"CALLD_CALL_ID={call_id}"),
        ],
    )
    await s.finish_phones()


async def restart_mid_call(s: Session, crash: bool = False) -> None:
    how = "kill -9 of asterisk" if crash else "lab/asterisk/stop.sh (core stop now)"
    s.note(f"1001 calls 1002, answered; {how} while the call is up; AMI closes; start.sh; new session")
    await bridged_call(s, 30000)
    await s.settle(1.0)
    if crash:
        pid = int((LAB_DIR.parent / "asterisk.pid").read_text())
        s._log("ctl", data=f"kill -9 {pid} (asterisk)")
        os.kill(pid, 9)
    else:
        s._log("ctl", data="lab/asterisk/stop.sh")
        proc = await asyncio.create_subprocess_exec(
            str(HERE / "stop.sh"), env={**os.environ, "CALLD_LAB_KEEP_MOUNTS": "1"}
        )
        await proc.wait()
    async with s.changed:
        await asyncio.wait_for(s.changed.wait_for(lambda: s.closed), 10)
    for p in s.procs:  # the phones' dialogs died with the switch
        if p.returncode is None:
            p.terminate()
    await s.finish_phones()
    await s.close()
    print("  restarting asterisk")
    start = await asyncio.create_subprocess_exec(str(HERE / "start.sh"))
    if await start.wait() != 0:
        raise RuntimeError("start.sh failed")
    after = Session(f"{s.name}.after", s.outdir)
    await after.connect()
    after.note("after restart: CoreShowChannels (the call is gone: empty list)")
    mark = after.mark()
    await after.action("CoreShowChannels", wait=False)
    await after.wait(ev("CoreShowChannelsComplete"), start=mark)
    after.note("a new call 1001 -> 1002 (3 s), and CoreShowChannels while it is up (what a resync sees)")
    await bridged_call(after, 3000)
    mark = after.mark()
    await after.action("CoreShowChannels", wait=False)
    await after.wait(ev("CoreShowChannelsComplete"), start=mark)
    await after.finish_phones()
    await after.settle(1.0)
    await after.close()


async def crash_mid_call(s: Session) -> None:
    await restart_mid_call(s, crash=True)


SCENARIOS: dict[str, Callable[[Session], Awaitable[None]]] = {
    "answered": answered,
    "no_answer": no_answer,
    "busy": busy,
    "cancelled": cancelled,
    "failed": failed,
    "hold": hold,
    "api_hold": api_hold,
    "blind_transfer": blind_transfer,
    "redirect_transfer": redirect_transfer,
    "attended_transfer": attended_transfer,
    "recording": recording,
    "dtmf": dtmf,
    "conference": conference,
    "originate": originate,
    "originate_channel_id": originate_channel_id,
    "restart_mid_call": restart_mid_call,
    "crash_mid_call": crash_mid_call,
}


async def run(name: str, outdir: Path) -> None:
    print(f"scenario {name}")
    s = Session(name, outdir)
    await s.connect()
    await s.wait(ev("FullyBooted"))
    await s.settle(0.3)
    try:
        await SCENARIOS[name](s)
        await s.settle(1.0)  # trailing events (Hangup of the last leg, DeviceStateChange...)
    finally:
        for p in s.procs:
            if p.returncode is None:
                p.terminate()
                await p.wait()
        await s.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", type=Path)
    parser.add_argument("scenarios", nargs="*", help=f"default: all of {', '.join(SCENARIOS)}")
    args = parser.parse_args()
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    for name in args.scenarios or list(SCENARIOS):
        asyncio.run(run(name, args.outdir))


if __name__ == "__main__":
    main()

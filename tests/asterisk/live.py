"""Live-test helpers: a real in-process ``Daemon`` wired to the lab Asterisk, sipp phones, polling.

The lab is ``lab/asterisk/`` (provisioned and started by ``lab/asterisk/ci.sh``). Phone ``100N``
is sipp on ``127.0.0.(N+1)``: called on port 5060 (``uas_*.xml``), calling from 5070 (``uac_*.xml``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from sqlalchemy.engine import make_url

from calld.adapters.asterisk.adapter import AsteriskAdapter
from calld.adapters.asterisk.settings import AsteriskConfig
from calld.adapters.factory import make_switch
from calld.config import CallsConfig, Config, DatabaseConfig, RecordingsConfig, ServerConfig, TurnConfig
from calld.daemon import Daemon
from calld.storage.database import Database
from tests.support import api_session

LAB = Path(__file__).resolve().parents[2] / "lab" / "asterisk"
SIPP_DIR = LAB / "sipp"
LAB_DIR = Path(os.environ.get("CALLD_LAB_DIR", "/var/tmp/calld-lab/asterisk-chroot"))
PID_FILE = Path(os.environ.get("CALLD_LAB_PIDFILE", str(LAB_DIR.parent / "asterisk.pid")))
SIP_SERVER = "127.0.0.1:5060"

T = TypeVar("T")


def phone_ip(phone: str) -> str:
    """``1001`` -> ``127.0.0.2`` (lab/asterisk/etc/pjsip.conf)."""
    return f"127.0.0.{int(phone) - 999}"


def lab_settings(**overrides: Any) -> AsteriskConfig:
    """``[asterisk]`` for the lab (lab/asterisk/etc/manager.conf, extensions.conf)."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 5038,
        "username": "calld",
        "secret": "calld-lab-secret",
        "inbound_contexts": ("lab-inbound",),
        "outbound_contexts": ("lab-outbound",),
        "originate_context": "lab-outbound",
        "transfer_context": "lab-inbound",
        "originate_timeout_seconds": 10.0,
        "keepalive_seconds": 2.0,
        "reconnect_max_seconds": 1.0,
        "action_timeout_seconds": 5.0,
        **overrides,
    }
    return AsteriskConfig(**values)


def plain_url(db: Database) -> str:
    """The fixture database's URL as calld's configuration spells it (no asyncio driver)."""
    url = make_url(db.url)
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=False)


@dataclass
class Live:
    """A running daemon connected to the lab Asterisk, its HTTP client and the phones it started."""

    daemon: Daemon
    http: aiohttp.ClientSession
    phones: list[asyncio.subprocess.Process] = field(default_factory=list)

    @property
    def adapter(self) -> AsteriskAdapter:
        switch = self.daemon.switch
        assert isinstance(switch, AsteriskAdapter)
        return switch

    async def sipp(self, *args: str) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            "sipp",
            *args,
            "-nostdin",
            "-timeout",
            "40s",
            "-timeout_error",
            cwd=SIPP_DIR,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.phones.append(proc)
        return proc

    async def answers(
        self, phone: str, behaviour: str = "answer", *extra: str, rtp_echo: bool = False
    ) -> asyncio.subprocess.Process:
        """Phone ``phone`` waits for one call: ``answer`` (after 1 s ringing), ``noanswer``, ``busy``;
        ``extra`` sipp options; ``rtp_echo``: it sends back the RTP it receives (real media towards
        the switch)."""
        ip = phone_ip(phone)
        echo = ("-rtp_echo",) if rtp_echo else ()
        proc = await self.sipp(
            "-sf", f"uas_{behaviour}.xml", "-i", ip, "-p", "5060", "-mi", ip, "-m", "1", *echo, *extra
        )
        await eventually(lambda: _listening(ip, 5060), 5, f"sipp phone {phone} listening")
        return proc

    async def dials(
        self, phone: str, number: str, scenario: str = "call", talk_ms: int = 0
    ) -> asyncio.subprocess.Process:
        """Phone ``phone`` calls ``number`` with ``uac_<scenario>.xml`` (``call``: talk, then BYE)."""
        ip = phone_ip(phone)
        args = [SIP_SERVER, "-sf", f"uac_{scenario}.xml", "-s", number, "-key", "caller", phone]
        args += ["-i", ip, "-p", "5070", "-mi", ip, "-m", "1"]
        if talk_ms:
            args += ["-d", str(talk_ms)]
        return await self.sipp(*args)

    async def phones_done(self, within: float = 20.0) -> list[int | None]:
        """Wait for every phone started so far; their exit codes (0: the scenario went as written)."""
        codes = []
        for proc in self.phones:
            try:
                codes.append(await asyncio.wait_for(proc.wait(), within))
            except TimeoutError:
                proc.kill()
                codes.append(await proc.wait())
        self.phones.clear()
        return codes

    def kill_phones(self) -> None:
        for proc in self.phones:
            if proc.returncode is None:
                proc.kill()

    # --- REST ------------------------------------------------------------------------------------

    async def get(self, path: str) -> Any:
        async with self.http.get(path) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def post(self, path: str, body: dict[str, Any] | None = None, status: int = 200) -> Any:
        async with self.http.post(path, json=body) as response:
            text = await response.text()
            assert response.status == status, f"{path}: {response.status} {text}"
            return await response.json()

    async def calls(self) -> list[dict[str, Any]]:
        page = await self.get("/api/call-logs/?ordering=started_at&limit=200")
        results: list[dict[str, Any]] = page["results"]
        return results

    async def call(self, call_id: str) -> dict[str, Any]:
        detail: dict[str, Any] = await self.get(f"/api/call-logs/{call_id}/")
        return detail

    async def call_from(self, phone: str, within: float = 10.0) -> dict[str, Any]:
        """The (only) call placed by ``phone``, once calld has stored it."""

        async def find() -> dict[str, Any] | None:
            found = [c for c in await self.calls() if c["caller_number"] == phone]
            assert len(found) <= 1, found
            return found[0] if found else None

        return await eventually(find, within, f"a call from {phone}")

    async def call_reaches(self, call_id: str, status: str, within: float = 10.0) -> dict[str, Any]:
        """The call's detail once its status is ``status``."""

        seen: list[str] = []

        async def check() -> dict[str, Any] | None:
            detail = await self.call(call_id)
            seen[:] = [detail["status"], *event_types(detail)]
            return detail if detail["status"] == status else None

        try:
            return await eventually(check, within, f"call {call_id} to be {status}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last seen status and events: {seen}") from None


def _udp_bound(ip: str, port: int) -> bool:
    """Is a UDP socket bound to ``ip:port``? (/proc/net/udp: little-endian hex address.)"""
    want = "".join(f"{int(part):02X}" for part in reversed(ip.split("."))) + f":{port:04X}"
    table = Path("/proc/net/udp").read_text(encoding="ascii").splitlines()[1:]
    return any(line.split()[1] == want for line in table)


async def _listening(ip: str, port: int) -> bool | None:
    return True if await asyncio.to_thread(_udp_bound, ip, port) else None


async def until(condition: Callable[[], bool], within: float, what: str) -> None:
    """Wait until ``condition()`` holds (AssertionError after ``within`` s)."""

    async def probe() -> bool | None:
        return True if condition() else None

    await eventually(probe, within, what)


def event_types(detail: dict[str, Any]) -> list[str]:
    return [e["event_type"] for e in detail["events"]]


async def eventually(probe: Callable[[], Awaitable[T | None]], within: float, what: str) -> T:
    """Poll ``probe`` until it returns something other than None (AssertionError after ``within`` s)."""
    deadline = time.monotonic() + within
    while True:
        result = await probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.1)


async def asterisk_cli(command: str) -> str:
    """Run an Asterisk CLI command in the lab (as root, through the chroot)."""
    proc = await asyncio.create_subprocess_exec(
        "chroot", str(LAB_DIR), "/usr/sbin/asterisk", "-rx", command, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, f"asterisk -rx {command!r} failed"
    return out.decode()


async def lab_script(name: str, **env: str) -> None:
    """Run ``lab/asterisk/<name>.sh`` (start/stop) and require success."""
    proc = await asyncio.create_subprocess_exec(str(LAB / f"{name}.sh"), env={**os.environ, **env})
    assert await proc.wait() == 0, f"lab/asterisk/{name}.sh failed"


async def crash_asterisk() -> None:
    """``kill -9`` the lab Asterisk: no Hangup, no Shutdown, the AMI stream just stops."""
    pid = _lab_pid()
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not _alive(pid):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"asterisk pid {pid} survived SIGKILL")


def signal_asterisk(sig: signal.Signals) -> None:
    """Send ``sig`` to the lab Asterisk (SIGSTOP freezes it: its sockets stay open, nothing answers)."""
    os.kill(_lab_pid(), sig)


def _lab_pid() -> int:
    return int(PID_FILE.read_text(encoding="ascii"))


def _alive(pid: str | int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split()[2] != "Z"  # a zombie is dead
    except FileNotFoundError:
        return False


async def hang_up_everything() -> None:
    """No channel left on the lab Asterisk."""
    await asterisk_cli("channel request hangup all")
    for _ in range(50):
        if "0 active channels" in await asterisk_cli("core show channels count"):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("channels still up on the lab Asterisk after 'channel request hangup all'")


@contextlib.asynccontextmanager
async def live_daemon(
    db: Database,
    *,
    fresh: bool = True,
    calls: CallsConfig | None = None,
    turn: TurnConfig | None = None,
    **settings: Any,
) -> AsyncIterator[Live]:
    """calld as ``calld run`` builds it (config -> ``make_switch`` -> ``Daemon``), on loopback.
    ``fresh``: hang up whatever is on the lab Asterisk first (False: a restarted calld's view);
    ``turn``: its ``[turn]`` (the lab's coturn secret for the WebRTC tests). calld's recording
    directory is the chroot's view of Asterisk's (calld runs beside it)."""
    config = Config(
        turn=turn or TurnConfig(),
        server=ServerConfig(host="127.0.0.1", port=0),
        database=DatabaseConfig(url=plain_url(db), pool_size=5),
        calls=calls if calls is not None else CallsConfig(timezone="UTC"),
        asterisk=lab_settings(**settings),
        recordings=RecordingsConfig(directories=(str(LAB_DIR / "var/spool/asterisk/monitor"),)),
    )
    if fresh:
        await hang_up_everything()  # what an earlier failed test left would be adopted by the resync
    daemon = Daemon(config, switch=make_switch(asterisk=config.asterisk, freeswitch=config.freeswitch))
    await daemon.start()
    http = api_session(daemon)
    live = Live(daemon, http)
    try:
        await asyncio.wait_for(live.adapter.connected.wait(), 10)
        yield live
    finally:
        live.kill_phones()
        await live.phones_done(5)
        await http.close()
        await daemon.stop()

"""systemd's notify protocol over a real unix datagram socket: the notifier, and calld run under it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from calld.adapters.freeswitch.adapter import FreeswitchAdapter
from calld.adapters.freeswitch.settings import FreeswitchConfig
from calld.config import Config, DatabaseConfig, ServerConfig
from calld.daemon import Daemon
from calld.storage.database import Database
from calld.systemd import SystemdNotifier
from tests.support import daemon_env, free_tcp_port


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """What systemd listens on: a bound AF_UNIX datagram socket."""
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(10)
        yield sock, path


def received(sock: socket.socket) -> dict[str, str]:
    message = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in message.split("\n"))


def test_notifier_sends_key_value_lines(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"})
    assert notifier.enabled and notifier.watchdog_seconds == 30.0
    assert notifier.ready("serving\non two lines")
    assert received(sock) == {"READY": "1", "STATUS": "serving on two lines"}
    assert notifier.watchdog()
    assert received(sock) == {"WATCHDOG": "1"}
    assert notifier.stopping()
    assert received(sock) == {"STOPPING": "1", "STATUS": "stopping"}


def test_abstract_socket_names_start_with_at() -> None:
    name = f"calld-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert SystemdNotifier({"NOTIFY_SOCKET": "@" + name}).status("hello")
        assert received(sock) == {"STATUS": "hello"}


def test_outside_systemd_nothing_is_sent() -> None:
    notifier = SystemdNotifier({})
    assert not notifier.enabled and notifier.watchdog_seconds is None
    assert not notifier.ready("serving")
    # A watchdog meant for another process (calld started by a wrapper) is not ours to feed.
    assert SystemdNotifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_seconds is None


def test_calld_run_is_a_notify_service(tmp_path: Path, notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    port = free_tcp_port()
    env = {**daemon_env(tmp_path, port), "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}
    proc = subprocess.Popen([sys.executable, "-m", "calld.cli", "run"], env=env, cwd=tmp_path, stderr=subprocess.PIPE)
    try:
        ready = received(sock)
        assert ready == {"READY": "1", "STATUS": f"serving on 127.0.0.1:{port}; no switch configured"}
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # READY=1 came once the API listens
        started = time.monotonic()
        pings = [received(sock) for _ in range(3)]
        assert pings == [{"WATCHDOG": "1"}] * 3
        assert time.monotonic() - started < 2  # every 0.1 s: half of WATCHDOG_USEC
        proc.send_signal(signal.SIGTERM)
        messages = [received(sock)]
        while "STOPPING" not in messages[-1]:
            messages.append(received(sock))
        assert messages[-1] == {"STOPPING": "1", "STATUS": "stopping"}
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def test_ready_says_when_the_switch_is_not_there(
    tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    sock.setblocking(False)
    nobody = free_tcp_port()  # nothing listens here
    fs = FreeswitchConfig(port=nobody, password="ClueCon", reconnect_max_seconds=0.5)
    db = Database(f"sqlite:///{tmp_path / 'calld.db'}")
    config = Config(server=ServerConfig(port=0), database=DatabaseConfig(url=db.url), freeswitch=fs)
    daemon = Daemon(config, switch=FreeswitchAdapter(fs), notifier=SystemdNotifier({"NOTIFY_SOCKET": path}))
    await daemon.start()  # READY=1 does not wait for a switch that is down
    try:
        status = f"serving on 127.0.0.1:{daemon.port}; freeswitch not connected, retrying"
        assert received(sock) == {"READY": "1", "STATUS": status}
    finally:
        await daemon.stop()
        await db.close()


def test_the_unit_file_lets_the_configuration_file_name_the_database() -> None:
    root = Path(__file__).resolve().parent.parent
    unit = (root / "systemd" / "calld.service").read_text(encoding="utf-8")
    settings = [line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#")]
    # An Environment=CALLD_DATABASE_URL would silently override /etc/calld/calld.toml's [database] url.
    assert [value for key, value in settings if key == "Environment"] == ["CALLD_CONFIG=/etc/calld/calld.toml"]
    assert ("ExecReload", "/bin/kill -HUP $MAINPID") in [(key, value) for key, value in settings]
    # The documentation it names is a file the README's service installation puts there.
    [documentation] = [value for key, value in settings if key == "Documentation"]
    installed = documentation.removeprefix("file://")
    assert f"README.md {installed}" in (root / "README.md").read_text(encoding="utf-8")

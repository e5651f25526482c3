"""The daemon as a real process: starts, serves, stops on SIGTERM with exit 0, keeps its data."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.error import URLError
from urllib.request import Request, urlopen


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(tmp_path: Path, port: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "CALLD_DATABASE_URL": f"sqlite:///{tmp_path / 'daemon.db'}",
        "CALLD_PORT": str(port),
        "CALLD_LOG_FORMAT": "auto",
    }
    env.pop("CALLD_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "calld.cli", "run"], env=env, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urlopen(f"http://127.0.0.1:{port}/api/call-logs/", timeout=1) as response:
                assert response.status == 200
                return proc
        except (URLError, ConnectionError):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("daemon did not start listening within 20 s")


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    return proc.returncode, err


def _post(port: int, path: str, body: dict[str, object]) -> dict[str, object]:
    request = Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urlopen(request, timeout=5) as response:
        result: dict[str, object] = json.load(response)
        return result


def test_sigterm_stops_cleanly_and_data_survives_a_restart(tmp_path: Path) -> None:
    port = _free_port()
    proc = _start(tmp_path, port)
    created = _post(
        port,
        "/api/call-logs/log_incoming_call/",
        {"caller_number": "+14155550100", "recipient_number": "1001", "sip_call_id": "restart-1@pbx"},
    )
    code, err = _stop(proc)
    assert code == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    messages = [line["event"] for line in lines]
    assert "calld started" in messages
    assert "shutdown requested" in messages
    assert messages[-1] == "calld stopped"
    stored = [line for line in lines if line["event"] == "call event stored"]
    assert stored and stored[0]["call_id"] == created["id"]

    proc = _start(tmp_path, port)
    try:
        with urlopen(f"http://127.0.0.1:{port}/api/call-logs/{created['id']}/", timeout=5) as response:
            again = json.load(response)
        assert again["sip_call_id"] == "restart-1@pbx"
        assert [e["event_type"] for e in again["events"]] == ["initiated"]
    finally:
        code, err = _stop(proc)
    assert code == 0, err


def test_a_taken_port_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "CALLD_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "CALLD_PORT": str(port)}
        result = subprocess.run(
            [sys.executable, "-m", "calld.cli", "run"], env=env, capture_output=True, text=True, timeout=30, check=False
        )
    assert result.returncode == 1
    assert f"calld: cannot serve on 127.0.0.1:{port}: " in result.stderr
    assert "address already in use" in result.stderr
    assert "Traceback" not in result.stderr

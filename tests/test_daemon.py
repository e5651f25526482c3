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
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from tests.support import create_token_via_cli, daemon_env, free_tcp_port, post_json


def _get(port: int, path: str, token: str) -> Any:
    request = Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    with urlopen(request, timeout=5) as response:
        return json.load(response)


def _start(tmp_path: Path, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "calld.cli", "run"],
        env=daemon_env(tmp_path, port),
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urlopen(f"http://127.0.0.1:{port}/api/call-logs/", timeout=1):
                raise AssertionError("the API answered a request without a token")
        except HTTPError as exc:
            assert exc.code == 401
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


def test_sigterm_stops_cleanly_and_data_survives_a_restart(tmp_path: Path) -> None:
    port = free_tcp_port()
    token = create_token_via_cli(tmp_path, port)
    proc = _start(tmp_path, port)
    created = post_json(
        port,
        "/api/call-logs/log_incoming_call/",
        {"caller_number": "+14155550100", "recipient_number": "1001", "sip_call_id": "restart-1@pbx"},
        token,
    )
    code, err = _stop(proc)
    assert code == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    messages = [line["event"] for line in lines]
    assert "calld started" in messages
    [started] = [line for line in lines if line["event"] == "calld started"]
    assert started["docs"] == f"http://127.0.0.1:{port}/api/docs"
    assert "shutdown requested" in messages
    assert messages[-1] == "calld stopped"
    stored = [line for line in lines if line["event"] == "call event stored"]
    assert stored and stored[0]["call_id"] == created["id"]

    proc = _start(tmp_path, port)
    try:
        again = _get(port, f"/api/call-logs/{created['id']}/", token)
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


def test_without_any_token_the_daemon_says_how_to_make_one_and_prints_none(tmp_path: Path) -> None:
    # stderr is a pipe here, as under systemd: a generated token would end up in the journal.
    port = free_tcp_port()
    proc = _start(tmp_path, port)
    code, err = _stop(proc)
    assert code == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    [warning] = [line for line in lines if line["event"].startswith("no API tokens exist")]
    assert warning["level"] == "warning"
    assert "calld token create" in warning["hint"]
    assert "calld_" not in err

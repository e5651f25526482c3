"""``calld run > file`` at a terminal, then the terminal goes away (an SSH drop): calld keeps
answering every request in its usual format, and counts the log lines it could not write."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.request import Request, urlopen

from tests.support import create_token_via_cli, daemon_env, free_tcp_port, metric_sample, post_json


def _drain(master: int, stop: threading.Event) -> None:
    """Read what calld writes to the terminal, as a terminal would, until told to stop."""
    while not stop.is_set():
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                os.read(master, 65536)
            except OSError:
                return


def _get(port: int, path: str, token: str | None = None) -> tuple[int, str, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urlopen(Request(f"http://127.0.0.1:{port}{path}", headers=headers), timeout=5) as response:
        return response.status, response.headers.get_content_type(), response.read().decode()


def test_requests_are_answered_after_the_terminal_is_gone(tmp_path: Path) -> None:
    port = free_tcp_port()
    token = create_token_via_cli(tmp_path, port)
    master, terminal = os.openpty()
    stop = threading.Event()
    reader = threading.Thread(target=_drain, args=(master, stop), daemon=True)
    reader.start()
    with open(tmp_path / "calld.out", "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "calld.cli", "run"],
            env=daemon_env(tmp_path, port),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=terminal,
        )
    os.close(terminal)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert _get(port, "/healthz")[0] == 200
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "calld did not start"
                time.sleep(0.1)

        # The terminal hangs up: its processes get SIGHUP, and writes to it fail from now on.
        stop.set()
        reader.join()
        os.close(master)
        proc.send_signal(signal.SIGHUP)

        assert _get(port, "/healthz") == (200, "application/json", '{"status": "ok"}')
        status, kind, body = _get(port, "/api/call-logs/", token)
        assert (status, kind, json.loads(body)["count"]) == (200, "application/json", 0)
        call = {"caller_number": "+14155550100", "recipient_number": "1001", "sip_call_id": "hup-1@pbx"}
        assert post_json(port, "/api/call-logs/log_incoming_call/", call, token)["status"] == "initiated"
        status, _, metrics = _get(port, "/metrics")
        assert status == 200 and metric_sample(metrics, "calld_log_write_failures_total") >= 3
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0

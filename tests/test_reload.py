"""SIGHUP reloads the configuration file into the running daemon, without a restart."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from tests.support import daemon_env, free_tcp_port


def _lines_until(stream: IO[str], wanted: str) -> list[dict[str, Any]]:
    """JSON log lines read from ``stream`` up to the first whose event is ``wanted`` (or its end)."""
    seen: list[dict[str, Any]] = []
    while True:
        line = stream.readline()
        if not line:
            break
        if line.startswith("{"):
            seen.append(json.loads(line))
            if seen[-1]["event"] == wanted:
                return seen
    raise AssertionError(f"no {wanted!r} log line; saw {[entry['event'] for entry in seen]}")


def test_sighup_reloads_and_keeps_serving(tmp_path: Path) -> None:
    port = free_tcp_port()
    config = tmp_path / "calld.toml"
    config.write_text('[logging]\nlevel = "info"\nformat = "json"\n')
    env = {**daemon_env(tmp_path, port), "CALLD_CONFIG": str(config)}
    env.pop("CALLD_LOG_FORMAT")
    proc = subprocess.Popen(
        [sys.executable, "-m", "calld.cli", "run"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    # Reading a line blocks: if an expected line never comes, kill calld so the read ends and fails.
    guard = threading.Timer(60, proc.kill)
    guard.start()
    try:
        _lines_until(proc.stderr, "calld started")
        config.write_text('[logging]\nlevel = "debug"\nformat = "json"\n')
        proc.send_signal(signal.SIGHUP)
        reloaded = _lines_until(proc.stderr, "configuration reloaded")[-1]
        assert reloaded["log_level"] == "debug" and reloaded["needs_restart"] is None
        # A broken file is refused and the running configuration kept.
        config.write_text("[logging\n")
        proc.send_signal(signal.SIGHUP)
        refused = _lines_until(proc.stderr, "configuration not reloaded: it is invalid; keeping the running one")
        assert "not valid TOML" in refused[-1]["error"]
        # What is bound to open sockets waits for a restart, and says so.
        config.write_text('[logging]\nlevel = "info"\nformat = "json"\n[database]\npool_size = 3\n')
        proc.send_signal(signal.SIGHUP)
        warned = _lines_until(proc.stderr, "changed settings take effect after a restart")[-1]
        assert warned["sections"] == ["database"]
        # Compared with what runs, not with the last file read: a second reload still names the
        # pending change, and the file put back as it was needs no restart.
        proc.send_signal(signal.SIGHUP)
        warned = _lines_until(proc.stderr, "changed settings take effect after a restart")[-1]
        assert warned["sections"] == ["database"]
        config.write_text('[logging]\nlevel = "info"\nformat = "json"\n')
        proc.send_signal(signal.SIGHUP)
        assert _lines_until(proc.stderr, "configuration reloaded")[-1]["needs_restart"] is None
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        guard.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.wait()

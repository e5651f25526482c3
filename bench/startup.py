"""How long ``calld run`` takes to answer HTTP after it is started, and to exit after SIGTERM.

Runs the installed ``calld`` command (SQLite in a temporary directory, no switch; a second start
finds the schema migrated), ``--runs`` times, and prints the best and median of each figure next
to the same measure of a baseline process: a bare Python interpreter serving one aiohttp route
(its start) and exiting on SIGTERM. Targets (issue 12): start < 2 s, idle stop < 1 s, on a loaded
2-core machine.
"""

from __future__ import annotations

import argparse
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CALLD = Path(sys.executable).parent / "calld"
BASELINE = """
import asyncio, signal
from aiohttp import web
async def main(port):
    app = web.Application()
    app.router.add_get("/healthz", lambda request: web.json_response({"status": "ok"}))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()
import sys
asyncio.run(main(int(sys.argv[1])))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(command: list[str], port: int) -> tuple[float, float]:
    """(start to the first HTTP answer, SIGTERM to exit), in seconds."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"{command[0]} exited with {proc.returncode}") from None
            time.sleep(0.005)
    up = time.perf_counter() - started
    time.sleep(0.3)
    asked = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    return up, time.perf_counter() - asked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        config = Path(folder) / "calld.toml"
        config.write_text(f'[server]\nport = {port}\n\n[database]\nurl = "sqlite:///{folder}/calld.db"\n')
        subprocess.run([str(CALLD), "--config", str(config), "migrate"], check=True, capture_output=True)
        calld = [measure([str(CALLD), "--config", str(config), "run"], port) for _ in range(runs)]
        base = [measure([sys.executable, "-c", BASELINE, str(port)], port) for _ in range(runs)]
    with open("/proc/loadavg", encoding="ascii") as load:
        print(f"load average: {load.read().split()[0]}   runs: {runs}")
    print(f"{'':24} {'calld best':>10} {'median':>8} {'baseline':>9} {'ratio':>6}")
    for index, name in ((0, "start -> HTTP answer (s)"), (1, "SIGTERM -> exit (s)")):
        mine = [run[index] for run in calld]
        theirs = [run[index] for run in base]
        ratio = statistics.median(mine) / statistics.median(theirs)
        print(
            f"{name:24} {min(mine):10.3f} {statistics.median(mine):8.3f} {statistics.median(theirs):9.3f} {ratio:6.1f}"
        )


if __name__ == "__main__":
    main()

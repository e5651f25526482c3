"""Real calld processes sharing one PostgreSQL database, for the cluster tests and the failover bench."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from calld.domain.scopes import Scope
from calld.storage.database import Database
from calld.storage.tokens import TokenStore
from tests.fakes.sip_peers import free_port


@dataclass
class Instance:
    """One ``calld run`` process: its name (``cluster.instance_id``), HTTP port and log file."""

    name: str
    port: int
    workdir: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    http: aiohttp.ClientSession | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "calld.cli", "run"], env=self.env, cwd=self.workdir, stderr=log
            )

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def stop(self) -> int | None:
        """SIGTERM (a stopped process is continued first) and wait; SIGKILL if it hangs."""
        if self.http is not None:
            await self.http.close()
            self.http = None
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGCONT)
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.proc.wait, 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return await asyncio.to_thread(self.proc.wait)

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            if raw.startswith("{"):
                try:
                    lines.append(json.loads(raw))
                except ValueError:
                    continue
        return lines

    def client(self, token: str) -> aiohttp.ClientSession:
        if self.http is None:
            self.http = aiohttp.ClientSession(
                f"http://127.0.0.1:{self.port}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=aiohttp.ClientTimeout(total=15),
            )
        return self.http

    async def ready(self) -> dict[str, Any] | None:
        """``/readyz``'s body, or None while the process does not answer."""
        try:
            url, timeout = f"http://127.0.0.1:{self.port}/readyz", aiohttp.ClientTimeout(2)
            async with aiohttp.ClientSession() as http, http.get(url, timeout=timeout) as response:
                body: dict[str, Any] = await response.json()
                return body
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def leader(self) -> str | None:
        """Who this instance says leads its PBX (``/readyz``'s ``checks.leader``), once it has tried for the lead."""
        body = await self.ready()
        if body is None or "electing" in body["checks"].get("switch", ""):
            return None
        leader: str | None = body["checks"].get("leader")
        return leader


def instance(tmp_path: Path, name: str, db_url: str, switch_port: int | None, **sections: dict[str, Any]) -> Instance:
    """An instance's configuration file and environment (not started). Its HTTP port is a free one: fixed
    ports collided when two checkouts' suites ran their cluster tests on one machine at once."""
    port = free_port(socket.SOCK_STREAM)
    workdir = tmp_path / name
    workdir.mkdir(exist_ok=True)
    parts = {
        "server": {"host": "127.0.0.1", "port": port},
        "database": {"url": db_url},
        "logging": {"level": "info", "format": "json"},
        "ingest": {"spill_path": str(workdir / "spill.jsonl")},
        "cluster": {"instance_id": name},
    }
    if switch_port is not None:
        parts["freeswitch"] = {"host": "127.0.0.1", "port": switch_port, "password": "ClueCon"}
    for section, values in sections.items():
        parts[section] = {**parts.get(section, {}), **values}
    text = "".join(
        f"[{section}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
        for section, values in parts.items()
    )
    config = workdir / "calld.toml"
    config.write_text(text)
    env = {**os.environ, "CALLD_CONFIG": str(config)}
    for var in ("CALLD_DATABASE_URL", "CALLD_PORT", "CALLD_HOST", "CALLD_LOG_FORMAT", "CALLD_LOG_LEVEL"):
        env.pop(var, None)
    return Instance(name, port, workdir, env)


async def until(check: Callable[[], Awaitable[Any]], within: float = 30.0, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy (what a user would watch: the API, the database)."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {within} s (last: {result!r})")
        await asyncio.sleep(0.02)


async def admin_token(db: Database) -> str:
    """An admin API token, stored in the instances' shared database."""
    async with db.write() as session:
        _row, issued = await TokenStore().create(session, "cluster-test", Scope.ADMIN)
    return issued.plaintext

"""``calld token`` commands, ``api_session`` and the first-start admin token, on both databases."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from calld.cli.main import main
from calld.daemon import Daemon
from calld.domain.scopes import Scope
from calld.storage.database import Database
from tests.support import LogCapture, api_session, bearer, daemon_config, plain_url

CALLS = "/api/call-logs/"


@pytest.fixture
def config_path(tmp_path: Path, db: Database, log_capture: LogCapture) -> str:
    """A config file for ``calld`` pointing at ``db`` (log_capture puts back the logging ``main`` sets up)."""
    path = tmp_path / "calld.toml"
    path.write_text(f'[database]\nurl = "{plain_url(db)}"\n[logging]\nformat = "json"\n')
    return str(path)


async def calld(capsys: pytest.CaptureFixture[str], config_path: str, *args: str) -> tuple[int, str, str]:
    # The command runs its own event loop, as it does from a shell.
    code = await asyncio.to_thread(main, ["--config", config_path, "token", *args])
    out, err = capsys.readouterr()
    return code, out, err


def daemon_for(db: Database, first_token_out: io.StringIO | None = None) -> Daemon:
    return Daemon(daemon_config(db), first_token_out=first_token_out)


@pytest.fixture
async def daemon(db: Database) -> AsyncIterator[Daemon]:
    running = daemon_for(db)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def status_with(daemon: Daemon, token: str, path: str = CALLS) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{daemon.port}{path}", headers=bearer(token)) as resp,
    ):
        return resp.status


async def test_create_list_revoke(daemon: Daemon, config_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = await calld(capsys, config_path, "create", "--name", "crm", "--scope", "write")
    assert code == 0, err
    token = out.strip()
    assert out == token + "\n" and token.startswith("calld_")
    assert "write token 'crm'" in err and token not in err
    assert await status_with(daemon, token) == 200
    assert await status_with(daemon, token, "/api/sip-configurations/") == 403

    code, _, err = await calld(capsys, config_path, "create", "--name", "crm", "--scope", "read")
    assert code == 2 and "already named 'crm'" in err
    code, out, err = await calld(capsys, config_path, "create", "--name", "ops", "--scope", "admin")
    assert code == 0
    ops = out.strip()

    code, out, _ = await calld(capsys, config_path, "list")
    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    assert [(r[1], r[3], r[-1]) for r in rows] == [("write", "active", "crm"), ("admin", "active", "ops")]
    assert token not in out and ops not in out

    code, _, err = await calld(capsys, config_path, "revoke", "crm")
    assert code == 0 and "revoked token 'crm'" in err
    assert await status_with(daemon, token) == 401
    assert await status_with(daemon, ops) == 200
    code, out, _ = await calld(capsys, config_path, "list")
    assert out.splitlines()[0].split()[3] == "revoked"

    # The name is free again once its token is revoked; a key revokes as well as a name.
    code, out, _ = await calld(capsys, config_path, "create", "--name", "crm", "--scope", "read")
    assert code == 0
    assert await status_with(daemon, out.strip()) == 200
    key = out.strip().split("_")[1]
    assert (await calld(capsys, config_path, "revoke", key))[0] == 0
    assert await status_with(daemon, out.strip()) == 401

    code, _, err = await calld(capsys, config_path, "revoke", "nobody")
    assert code == 2 and "no active token" in err


async def test_a_softphone_token_is_bound_to_one_existing_line(
    daemon: Daemon, config_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with api_session(daemon) as http:
        body = {"name": "desk", "server": "pbx.example.com", "username": "2001", "secret": "line-secret-2001"}
        async with http.post("/api/sip-configurations/", json=body) as resp:
            line = (await resp.json())["id"]
    code, _, err = await calld(capsys, config_path, "create", "--name", "alice", "--scope", "softphone")
    assert code == 2 and "--sip-configuration is needed with --scope softphone" in err
    code, _, err = await calld(
        capsys, config_path, "create", "--name", "bob", "--scope", "write", "--sip-configuration", line
    )
    assert code == 2 and "no other scope" in err
    missing = "00000000-0000-4000-8000-000000000000"
    code, _, err = await calld(
        capsys, config_path, "create", "--name", "alice", "--scope", "softphone", "--sip-configuration", missing
    )
    assert code == 2 and f"no SIP configuration {missing}" in err
    code, out, err = await calld(
        capsys, config_path, "create", "--name", "alice", "--scope", "softphone", "--sip-configuration", line
    )
    assert code == 0, err
    token = out.strip()
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{daemon.port}/api/auth/whoami/", headers=bearer(token)) as resp,
    ):
        assert (await resp.json())["sip_configuration_id"] == line
    assert await status_with(daemon, token) == 200  # it watches calls, as write does
    assert await status_with(daemon, token, "/api/sip-configurations/") == 403  # and configures nothing
    code, out, _ = await calld(capsys, config_path, "list")
    assert [row.split()[1] for row in out.splitlines()] == ["admin", "softphone"]  # api_session's, alice's


def test_a_scope_outside_the_list_is_refused(config_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--config", config_path, "token", "create", "--name", "x", "--scope", "root"])
    assert exited.value.code == 2
    assert "invalid choice: 'root'" in capsys.readouterr().err


async def test_api_session_sends_a_token_of_its_scope(daemon: Daemon) -> None:
    async with api_session(daemon) as http, http.get("/api/sip-configurations/") as resp:
        assert resp.status == 200
    async with api_session(daemon, Scope.READ) as http:
        async with http.get(CALLS) as resp:
            assert resp.status == 200
        async with http.post(CALLS, json={}) as resp:
            assert resp.status == 403


async def test_first_start_at_a_terminal_shows_one_admin_token_once(db: Database) -> None:
    shown = io.StringIO()
    first = daemon_for(db, shown)
    await first.start()
    try:
        [token] = [word for word in shown.getvalue().split() if word.startswith("calld_")]
        assert await status_with(first, token, "/api/sip-configurations/") == 200
    finally:
        await first.stop()
    again = io.StringIO()
    second = daemon_for(db, again)
    await second.start()
    try:
        assert again.getvalue() == ""
        assert await status_with(second, token) == 200
    finally:
        await second.stop()


async def test_without_a_terminal_no_token_is_made(db: Database, log_capture: LogCapture) -> None:
    daemon = daemon_for(db)
    await daemon.start()
    try:
        assert await status_with(daemon, "calld_0123456789ab_" + "A" * 43) == 401
    finally:
        await daemon.stop()
    async with db.read() as session:
        assert await daemon.tokens.count(session) == 0
    assert any(line["event"].startswith("no API tokens exist") for line in log_capture.lines())

"""The ``calld`` command as an operator meets it: where options go, which database a command uses,
what a missing secret file or an unusable database looks like (one line, never a traceback)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from calld.cli.main import main
from tests.support import PG_URL

NO_ENV: dict[str, str] = {}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.usefixtures("restore_logging")
def test_check_config_takes_the_file_before_or_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _write(tmp_path / "good.toml", '[database]\nurl = "sqlite:///calls.db"\n')
    bad = _write(tmp_path / "bad.toml", "[server]\nport = 0\n")
    for argv in (
        ["--config", str(good), "check-config"],
        ["check-config", "--config", str(good)],
        ["check-config", str(good)],
    ):
        assert main(argv, NO_ENV) == 0, argv
        out = capsys.readouterr().out
        assert f"configuration OK ({good}; database sqlite:///{Path.cwd() / 'calls.db'})" in out
    for argv in (["check-config", "--config", str(bad)], ["check-config", str(bad)]):
        assert main(argv, NO_ENV) == 2
        assert "server.port: must be 1..65535" in capsys.readouterr().err


@pytest.mark.usefixtures("restore_logging")
def test_check_config_reads_calld_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write(tmp_path / "bad.toml", "[server]\nport = 0\n")
    assert main(["check-config"], {"CALLD_CONFIG": str(bad)}) == 2
    assert "server.port" in capsys.readouterr().err


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(("section", "option"), [("asterisk", "secret_file"), ("freeswitch", "password_file")])
def test_check_config_reads_the_secret_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str, option: str
) -> None:
    secret = tmp_path / "secret"
    config = _write(tmp_path / "calld.toml", f'[{section}]\n{option} = "{secret}"\n')
    assert main(["check-config", str(config)], NO_ENV) == 2
    assert f"{section}.{option}: cannot read {secret}: No such file or directory" in capsys.readouterr().err

    _write(secret, "\n")
    assert main(["check-config", str(config)], NO_ENV) == 2
    assert f"{section}.{option}: {secret} is empty" in capsys.readouterr().err

    _write(secret, "s3cret-from-a-file\n")
    assert main(["check-config", str(config)], NO_ENV) == 0
    capsys.readouterr()
    if os.geteuid() != 0:  # root reads any file
        secret.chmod(0)
        assert main(["check-config", str(config)], NO_ENV) == 2
        assert "Permission denied" in capsys.readouterr().err


@pytest.mark.usefixtures("restore_logging")
def test_token_commands_say_which_database_and_never_make_a_new_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    service = tmp_path / "service"
    service.mkdir()
    config = _write(tmp_path / "calld.toml", f'[database]\nurl = "sqlite:///{service / "calld.db"}"\n')
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    # No configuration: the default ./calld.db does not exist here, so no token is made in it.
    assert main(["token", "create", "--name", "ops", "--scope", "read"], NO_ENV) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"database sqlite:///{elsewhere / 'calld.db'}" in err
    assert f"no database at {elsewhere / 'calld.db'}" in err and "CALLD_CONFIG" in err
    assert not (elsewhere / "calld.db").exists()

    # With the service's configuration ($CALLD_CONFIG, or --config after the command).
    env = {"CALLD_CONFIG": str(config)}
    assert main(["migrate"], env) == 0
    assert f"database sqlite:///{service / 'calld.db'} is up to date" in capsys.readouterr().err
    assert main(["token", "create", "--name", "ops", "--scope", "read"], env) == 0
    out, err = capsys.readouterr()
    assert out.startswith("calld_") and f"configuration {config}; database sqlite:///{service / 'calld.db'}" in err
    assert main(["token", "list", "--config", str(config)], NO_ENV) == 0
    assert out.split("_")[1] in capsys.readouterr().out


def _unusable_databases(tmp_path: Path, closed_port: int) -> list[tuple[str, str]]:
    """(database URL, the one line calld should say) for a PostgreSQL that is down, a PostgreSQL
    database that does not exist and a SQLite file in a directory that does not exist."""
    pg = make_url(PG_URL)
    down = pg.set(port=closed_port, database="calld", password="hunter2-secret")
    missing = pg.set(database="calld_no_such_database_i13", password=None)
    nowhere = tmp_path / "no" / "such" / "dir"
    sqlite = f"sqlite:///{nowhere / 'calld.db'}"
    return [
        (
            down.render_as_string(hide_password=False),
            f"calld: database postgresql://{pg.username}:***@{pg.host}:{closed_port}/calld: cannot connect to "
            f"{pg.host}:{closed_port}: Connect call failed",
        ),
        (
            missing.render_as_string(hide_password=False),
            f'calld: database {missing.render_as_string()}: database "calld_no_such_database_i13" does not exist',
        ),
        (sqlite, f"calld: database {sqlite}: unable to open database file: the directory {nowhere} does not exist"),
    ]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound and never listening: connecting to it is refused."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        yield closed.getsockname()[1]


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("command", ["migrate", "seed"])
def test_an_unusable_database_is_one_line_naming_it(
    tmp_path: Path, closed_port: int, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    for url, said in _unusable_databases(tmp_path, closed_port):
        assert main([command], {"CALLD_DATABASE_URL": url}) == 1
        err = capsys.readouterr().err
        [line] = [line for line in err.splitlines() if line.startswith("calld: database ")]
        assert line.startswith(said), err
        assert "hunter2" not in err and "Traceback" not in err


def test_run_with_an_unusable_database_says_so_not_that_it_cannot_serve(tmp_path: Path, closed_port: int) -> None:
    for url, said in _unusable_databases(tmp_path, closed_port):
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("CALLD_")}, "CALLD_DATABASE_URL": url}
        env["CALLD_PORT"] = "18131"  # the database fails before calld would listen
        result = subprocess.run(
            [sys.executable, "-m", "calld.cli", "run"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr and "cannot serve" not in result.stderr
        [line] = [line for line in result.stderr.splitlines() if line.startswith("calld: database ")]
        assert line.startswith(said), result.stderr

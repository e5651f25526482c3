"""The ``calld`` command: run the daemon, migrate, check the config, seed test data, manage tokens, export calls."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import structlog

from calld.cli import export as cli_export
from calld.cli import tokens as cli_tokens
from calld.config import Config, ConfigError, load_config, pseudonym_key, unreadable_files
from calld.logging import LogFailures, configure_logging
from calld.storage.database import DatabaseUnavailable, display_url


def _config_option(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=default,
        help="TOML configuration file (default: $CALLD_CONFIG; built-in defaults if unset)",
    )


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="calld", description="Call-logging and call-control daemon.")
    _config_option(parser, Path(environ["CALLD_CONFIG"]) if environ.get("CALLD_CONFIG") else None)
    # Every command also takes --config after its name (`calld check-config --config FILE`);
    # SUPPRESS leaves the value given before the command (or $CALLD_CONFIG) when it is absent.
    common = argparse.ArgumentParser(add_help=False)
    _config_option(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", parents=[common], help="run the daemon (the default)")
    sub.add_parser("migrate", parents=[common], help="bring the database schema up to date")
    check = sub.add_parser("check-config", parents=[common], help="validate the configuration and exit")
    check.add_argument("file", nargs="?", type=Path, help="the file to check (same as --config)")
    seed = sub.add_parser("seed", parents=[common], help="create realistic test calls (or remove them with --cleanup)")
    seed.add_argument("--count", type=int, default=10, help="how many calls to create (default 10)")
    seed.add_argument("--cleanup", action="store_true", help="remove seeded data instead of creating it")
    seed.add_argument("--random-seed", type=int, default=None, help="make the generated data repeatable")
    purge = sub.add_parser("purge", parents=[common], help="apply [retention] once (what the daemon runs hourly)")
    purge.add_argument(
        "--dry-run", action="store_true", help="say what would be removed or pseudonymised, change nothing"
    )
    cli_tokens.add_parser(sub, common)
    cli_export.add_parser(sub, common)
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    args = _parser(env).parse_args(argv)
    command = args.command or "run"
    path: Path | None = getattr(args, "file", None) or args.config
    try:
        config = load_config(path, env)
    except ConfigError as exc:
        print(f"calld: configuration error: {exc}", file=sys.stderr)
        return 2
    log_failures = LogFailures()
    configure_logging(config.logging.level, config.logging.format, failures=log_failures)
    source = str(path) if path is not None else "built-in defaults"
    try:
        if command == "check-config":
            return _check_config(config, source)
        if command != "run":
            # An operator's shell is not the service's: say what this command acts on.
            print(f"calld: configuration {source}; database {display_url(config.database.url)}", file=sys.stderr)
        if command == "migrate":
            asyncio.run(_migrate(config))
            return 0
        if command == "seed":
            if args.count < 1 and not args.cleanup:
                print("calld: --count must be at least 1", file=sys.stderr)
                return 2
            asyncio.run(_seed(config, args.count, args.cleanup, args.random_seed))
            return 0
        if command == "token":
            return asyncio.run(cli_tokens.run(config, args))
        if command == "export":
            return asyncio.run(cli_export.run(config, args))
        if command == "purge":
            return asyncio.run(_purge(config, args.dry_run))
        return _run(config, path, log_failures)
    except DatabaseUnavailable as exc:
        print(f"calld: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:  # a secret file read only when it is needed (retention's key)
        print(f"calld: configuration error: {exc}", file=sys.stderr)
        return 2


def _check_config(config: Config, source: str) -> int:
    problems = unreadable_files(config)
    if problems:
        for problem in problems:
            print(f"calld: configuration error: {problem}", file=sys.stderr)
        return 2
    print(f"calld: configuration OK ({source}; database {display_url(config.database.url)})")
    return 0


def _run(config: Config, path: Path | None, log_failures: LogFailures) -> int:
    from calld.adapters.factory import make_switch
    from calld.daemon import Daemon
    from calld.storage.sqlite_file import DatabaseDamaged

    try:
        # A first admin token is shown only to a person at a terminal, never written to the journal.
        first_token_out = sys.stderr if sys.stderr.isatty() else None
        switch = make_switch(asterisk=config.asterisk, freeswitch=config.freeswitch)
        daemon = Daemon(config, switch=switch, first_token_out=first_token_out, log_failures=log_failures)
        asyncio.run(daemon.run(load_config=lambda: load_config(path)))
    except DatabaseDamaged as exc:
        print(f"calld: refusing to start: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        # Most often the port is taken (another calld?) or the address is not this machine's.
        where = f"{config.server.host}:{config.server.port}"
        print(f"calld: cannot serve on {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


async def _migrate(config: Config) -> None:
    from calld.storage.database import Database

    db = Database(config.database.url)
    try:
        await db.migrate()
    finally:
        await db.close()
    print(f"calld: database {db.display} is up to date", file=sys.stderr)


async def _seed(config: Config, count: int, cleanup: bool, random_seed: int | None) -> None:
    from calld.cli.seed import cleanup_seeded, seed_calls
    from calld.storage.calls import CallStore
    from calld.storage.database import Database

    db = Database(config.database.url)
    try:
        await db.migrate()
        if cleanup:
            print(f"calld: removed {await cleanup_seeded(db)}")
        else:
            # One summary line, not a log line per seeded event.
            quiet = structlog.wrap_logger(None, wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
            store = CallStore(logger=quiet, numbers=config.calls.numbers)
            rng = random.Random(random_seed)
            summary = await seed_calls(db, store, count, rng, datetime.now(UTC), config.calls.zone)
            print(f"calld: seeded {summary}")
    finally:
        await db.close()


async def _purge(config: Config, dry_run: bool) -> int:
    from calld.service.recording_files import RecordingFiles
    from calld.service.retention import Retention, purge_summary
    from calld.storage.database import Database

    settings = config.retention
    key = pseudonym_key(settings) if settings.pseudonymise_days else None
    db = Database(config.database.url)
    try:
        await db.migrate()
        retention = Retention(
            db, RecordingFiles(db, config.recording_directories), settings, lambda: datetime.now(UTC), key
        )
        if not retention.enabled:
            print("calld: [retention] keeps everything (every *_days is 0): nothing to purge")
            return 0
        report = await retention.run(dry_run=dry_run)
    finally:
        await db.close()
    print(f"calld: {'would purge' if dry_run else 'purged'}: {purge_summary(settings, report)}")
    return 0


def entry() -> None:
    """The ``calld`` command: ``main``, then exit at once.

    Everything calld opened is closed by then (the daemon stopped, files flushed); tearing down the
    interpreter's modules would add about half a second to every stop and restart for nothing.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

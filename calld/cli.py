"""The ``calld`` command: run the daemon, migrate, check the config, seed test data, manage tokens."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from calld import cli_tokens
from calld.config import Config, ConfigError, load_config
from calld.logging import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="calld", description="Call-logging and call-control daemon.")
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ["CALLD_CONFIG"]) if os.environ.get("CALLD_CONFIG") else None,
        help="TOML configuration file (default: $CALLD_CONFIG; built-in defaults if unset)",
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the daemon (the default)")
    sub.add_parser("migrate", help="bring the database schema up to date")
    sub.add_parser("check-config", help="validate the configuration and exit")
    seed = sub.add_parser("seed", help="create realistic test calls (or remove them with --cleanup)")
    seed.add_argument("--count", type=int, default=10, help="how many calls to create (default 10)")
    seed.add_argument("--cleanup", action="store_true", help="remove seeded data instead of creating it")
    seed.add_argument("--random-seed", type=int, default=None, help="make the generated data repeatable")
    cli_tokens.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"calld: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.logging.level, config.logging.format)
    command = args.command or "run"
    if command == "check-config":
        print(f"calld: configuration OK ({args.config or 'built-in defaults'})")
        return 0
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
    from calld.adapters.factory import make_switch
    from calld.daemon import Daemon
    from calld.storage.sqlite_file import DatabaseDamaged

    try:
        # A first admin token is shown only to a person at a terminal, never written to the journal.
        first_token_out = sys.stderr if sys.stderr.isatty() else None
        daemon = Daemon(config, switch=make_switch(config), first_token_out=first_token_out)
        asyncio.run(daemon.run(load_config=lambda: load_config(args.config)))
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
    print(f"calld: database at {config.database.url.split('@')[-1]} is up to date")


async def _seed(config: Config, count: int, cleanup: bool, random_seed: int | None) -> None:
    from calld.seed import cleanup_seeded, seed_calls
    from calld.storage.calls import CallStore
    from calld.storage.database import Database

    db = Database(config.database.url)
    try:
        await db.migrate()
        if cleanup:
            print(f"calld: removed {await cleanup_seeded(db)}")
        else:
            summary = await seed_calls(db, CallStore(), count, random.Random(random_seed), datetime.now(UTC))
            print(f"calld: seeded {summary}")
    finally:
        await db.close()


if __name__ == "__main__":
    raise SystemExit(main())

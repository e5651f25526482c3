"""``calld token create|revoke|list``: manage the REST API's bearer tokens."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from typing import Any, TextIO

from calld.config import Config
from calld.domain.scopes import Scope
from calld.storage.database import Database, display_url
from calld.storage.tokens import TokenError, TokenStore

_WHEN = "%Y-%m-%dT%H:%M:%SZ"


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``token`` command to ``sub`` (the main parser's sub-parsers); ``common`` holds the
    options every command takes."""
    token = sub.add_parser("token", parents=[common], help="create, revoke or list API tokens")
    actions = token.add_subparsers(dest="token_command", required=True)
    create = actions.add_parser("create", parents=[common], help="create a token and print it (only this once)")
    create.add_argument("--name", required=True, help="who or what uses the token, e.g. 'crm' or 'alice'")
    create.add_argument("--scope", required=True, choices=[s.value for s in Scope], help="what the token may do")
    create.add_argument(
        "--sip-configuration",
        type=uuid.UUID,
        help="softphone tokens only: the SIP configuration (id) whose line the browser registers as",
    )
    revoke = actions.add_parser("revoke", parents=[common], help="revoke a token by name or key")
    revoke.add_argument("token", help="the token's name or key (as `calld token list` shows)")
    actions.add_parser("list", parents=[common], help="list tokens (never their secrets)")


async def run(config: Config, args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Do the token command in ``args``; 0 on success, 2 when it cannot be done. Only the token
    itself goes to ``out`` (stdout), so ``TOKEN=$(calld token create ...)`` captures just it."""
    out = out or sys.stdout
    err = err or sys.stderr
    missing = _missing_sqlite_file(config.database.url)
    if missing is not None:
        # A token in a database no server uses is refused by the real one: say so rather than make it.
        print(
            f"calld: no database at {missing}; tokens belong in the database the server uses: point "
            "--config or $CALLD_CONFIG at its configuration (the service's is /etc/calld/calld.toml), "
            "or run `calld migrate` first to create this one",
            file=err,
        )
        return 2
    db = Database(config.database.url)
    store = TokenStore()
    try:
        await db.migrate()
        async with db.write() as session:
            if args.token_command == "create":
                row, issued = await store.create(
                    session, args.name, Scope(args.scope), sip_configuration_id=args.sip_configuration
                )
                print(f"calld: created {row.scope} token {row.name!r} (key {row.key}); it is shown only now:", file=err)
                print(issued.plaintext, file=out)
            elif args.token_command == "revoke":
                row = await store.revoke(session, args.token)
                print(f"calld: revoked token {row.name!r} (key {row.key})", file=err)
            else:
                for row in await store.all(session):
                    state = f"revoked {row.revoked_at:{_WHEN}}" if row.revoked_at else "active"
                    print(f"{row.key}  {row.scope:<5}  {row.created_at:{_WHEN}}  {state:<28}  {row.name}", file=out)
    except TokenError as exc:
        print(f"calld: {exc}", file=err)
        return 2
    finally:
        await db.close()
    return 0


def _missing_sqlite_file(url: str) -> str | None:
    """The SQLite file ``url`` names when it does not exist yet, else None."""
    shown = display_url(url)
    if not shown.startswith("sqlite:///"):
        return None
    path = shown.removeprefix("sqlite:///")
    return None if not path or path == ":memory:" or path.startswith("file:") or os.path.exists(path) else path

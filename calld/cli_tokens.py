"""``calld token create|revoke|list``: manage the REST API's bearer tokens."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from calld.config import Config
from calld.domain.scopes import Scope
from calld.storage.database import Database
from calld.storage.tokens import TokenError, TokenStore

_WHEN = "%Y-%m-%dT%H:%M:%SZ"


def add_parser(sub: Any) -> None:
    """Add the ``token`` command to ``sub`` (the main parser's sub-parsers)."""
    token = sub.add_parser("token", help="create, revoke or list API tokens")
    actions = token.add_subparsers(dest="token_command", required=True)
    create = actions.add_parser("create", help="create a token and print it (only this once)")
    create.add_argument("--name", required=True, help="who or what uses the token, e.g. 'crm' or 'alice'")
    create.add_argument("--scope", required=True, choices=[s.value for s in Scope], help="what the token may do")
    revoke = actions.add_parser("revoke", help="revoke a token by name or key")
    revoke.add_argument("token", help="the token's name or key (as `calld token list` shows)")
    actions.add_parser("list", help="list tokens (never their secrets)")


async def run(config: Config, args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Do the token command in ``args``; 0 on success, 2 when it cannot be done. Only the token
    itself goes to ``out`` (stdout), so ``TOKEN=$(calld token create ...)`` captures just it."""
    out = out or sys.stdout
    err = err or sys.stderr
    db = Database(config.database.url)
    store = TokenStore()
    try:
        await db.migrate()
        async with db.write() as session:
            if args.token_command == "create":
                row, issued = await store.create(session, args.name, Scope(args.scope))
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

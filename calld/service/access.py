"""Who is asking: API tokens checked against the database, alone or on the connection of the read they guard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa

from calld.domain.scopes import Scope, TokenInfo
from calld.storage.database import Database
from calld.storage.tokens import check

P = ParamSpec("P")
T = TypeVar("T")


class AccessRefused(Exception):
    """The guarding token check refused; the read did not run."""

    def __init__(self, check: AccessCheck) -> None:
        super().__init__("access refused")
        self.check = check


class AccessCheck:
    """A token check waiting to run; ``info`` is what it found once it ran (None: unknown or revoked).

    A read-only request runs it on the connection of its one read (``guarded_read``): one database
    round trip (on SQLite one thread hop) less per request."""

    def __init__(self, token: str, needed: Scope) -> None:
        self.token = token
        self.needed = needed
        self.info: TokenInfo | None = None
        self.ran = False

    def __call__(self, conn: sa.Connection) -> None:
        """Check the token on ``conn``; ``AccessRefused`` when it may not do what it asks."""
        self.info = check(conn, self.token)
        self.ran = True
        if self.info is None or not self.info.scope.allows(self.needed):
            raise AccessRefused(self)


async def check_token(db: Database, token: str) -> TokenInfo | None:
    """The token's owner and scope, or None for an unknown or revoked token."""
    return await db.query(check, token)


async def valid_tokens(db: Database, tokens: set[str], needed: Scope) -> set[str]:
    """Those of ``tokens`` that are known, not revoked and allowed ``needed`` (one read for all)."""

    def still_valid(conn: sa.Connection) -> set[str]:
        valid = set()
        for token in tokens:
            info = check(conn, token)
            if info is not None and info.scope.allows(needed):
                valid.add(token)
        return valid

    return await db.query(still_valid)


async def guarded_read(
    db: Database,
    guard: AccessCheck | None,
    fn: Callable[Concatenate[sa.Connection, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``fn`` on one connection, preceded by ``guard`` if given (``AccessRefused``: ``fn`` did not run)."""
    if guard is None:
        return await db.query(fn, *args, **kwargs)

    def checked(conn: sa.Connection) -> T:
        guard(conn)
        return fn(conn, *args, **kwargs)

    return await db.query(checked)

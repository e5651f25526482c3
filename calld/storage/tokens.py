"""API tokens: issued once in plain text, stored as a SHA-256 digest, checked in constant time.

A token reads ``calld_<key>_<secret>``. ``key`` is public and finds the stored row; the digest of
the whole token is then compared with ``hmac.compare_digest``, so neither the lookup nor the
comparison depends on the secret. Tokens are 256-bit random values, so a fast digest is enough
(a slow password hash protects guessable passwords, not random keys).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from calld.domain.scopes import Scope, TokenInfo
from calld.storage.models import ApiToken, SipConfiguration, utcnow

PREFIX = "calld"
_SHAPE = re.compile(r"calld_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
# Compared against when no row has the presented key, so a miss costs what a hit costs.
_NO_MATCH = "0" * 64


class TokenError(Exception):
    """A token command cannot be done; the message says why."""


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly generated token: ``plaintext`` is shown once and never stored."""

    plaintext: str
    key: str

    @property
    def digest(self) -> str:
        return digest(self.plaintext)


def digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def generate() -> IssuedToken:
    key = secrets.token_hex(6)
    return IssuedToken(f"{PREFIX}_{key}_{secrets.token_urlsafe(32)}", key)


class TokenStore:
    """Creates, lists, revokes and verifies tokens inside the caller's session."""

    def __init__(self, clock: Callable[[], datetime] = utcnow) -> None:
        self.clock = clock

    async def create(
        self,
        session: AsyncSession,
        name: str,
        scope: Scope,
        issued: IssuedToken | None = None,
        sip_configuration_id: uuid.UUID | None = None,
    ) -> tuple[ApiToken, IssuedToken]:
        """Store a new token named ``name`` (refused while an active token has that name); a softphone
        token is bound to the existing SIP configuration ``sip_configuration_id``, no other token is."""
        name = name.strip()
        if not name or len(name) > 100:
            raise TokenError("--name must be 1 to 100 characters")
        if (scope is Scope.SOFTPHONE) != (sip_configuration_id is not None):
            raise TokenError("--sip-configuration is needed with --scope softphone and with no other scope")
        if sip_configuration_id is not None and await session.get(SipConfiguration, sip_configuration_id) is None:
            raise TokenError(f"no SIP configuration {sip_configuration_id}")
        if await self._active_named(session, name) is not None:
            raise TokenError(f"an active token is already named {name!r}; revoke it or pick another name")
        issued = issued or generate()
        row = ApiToken(
            key=issued.key,
            name=name,
            scope=scope,
            token_hash=issued.digest,
            created_at=self.clock(),
            sip_configuration_id=sip_configuration_id,
        )
        session.add(row)
        await session.flush()
        return row, issued

    async def revoke(self, session: AsyncSession, name_or_key: str) -> ApiToken:
        """Revoke the active token with this name or key."""
        stmt = sa.select(ApiToken).where(
            sa.or_(ApiToken.name == name_or_key, ApiToken.key == name_or_key), ApiToken.revoked_at.is_(None)
        )
        row = (await session.execute(stmt)).scalars().first()
        if row is None:
            raise TokenError(f"no active token with name or key {name_or_key!r}")
        row.revoked_at = self.clock()
        return row

    async def all(self, session: AsyncSession) -> list[ApiToken]:
        stmt = sa.select(ApiToken).order_by(ApiToken.created_at, ApiToken.name)
        return list((await session.execute(stmt)).scalars())

    async def count(self, session: AsyncSession) -> int:
        return int((await session.execute(sa.select(sa.func.count()).select_from(ApiToken))).scalar_one())

    async def verify(self, session: AsyncSession, presented: str) -> TokenInfo | None:
        """The active token ``presented`` is, or None."""
        return await session.run_sync(lambda sync: check(sync.connection(), presented))

    async def _active_named(self, session: AsyncSession, name: str) -> ApiToken | None:
        stmt = sa.select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
        return (await session.execute(stmt)).scalars().first()


_BY_KEY = sa.select(
    ApiToken.id, ApiToken.name, ApiToken.scope, ApiToken.token_hash, ApiToken.revoked_at, ApiToken.sip_configuration_id
).where(ApiToken.key == sa.bindparam("key"))


def check(conn: sa.Connection, presented: str) -> TokenInfo | None:
    """The active token ``presented`` is, or None: one indexed Core query, read on every request
    (nothing is cached, so a revoked token is refused from the next request on)."""
    match = _SHAPE.fullmatch(presented)
    if match is None:
        return None
    row = conn.execute(_BY_KEY, {"key": match.group(1)}).first()
    stored = row.token_hash if row is not None else _NO_MATCH
    if not hmac.compare_digest(stored, digest(presented)) or row is None or row.revoked_at is not None:
        return None
    return TokenInfo(row.id, row.name, Scope(row.scope), row.sip_configuration_id)

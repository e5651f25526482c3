"""SIP configuration repository, keeping exactly one default whenever any configuration exists.

Every change that can move the default takes one lock first (a PostgreSQL transaction-level
advisory lock; SQLite writers are already serialised by ``Database.write``), so concurrent
requests cannot leave zero or two defaults. The partial unique index on ``is_default`` is the
database's own guard against two.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from calld.domain.errors import Conflict
from calld.storage.clients import Page
from calld.storage.models import SipConfiguration

# Arbitrary, fixed: identifies "the SIP default" among advisory locks on the PostgreSQL server.
_DEFAULT_LOCK_KEY = 0x5C1D_0001


class NameTaken(Conflict):
    """Another configuration already has this name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            "name_taken", "name already taken", {"name": f"a SIP configuration named {name!r} already exists"}
        )


class DefaultConflict(Conflict):
    """The change would leave an inactive configuration as the chosen default."""

    def __init__(self, reason: str) -> None:
        super().__init__("default_conflict", "default configuration conflict", {"active": reason})


async def _lock_default(session: AsyncSession) -> None:
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(sa.select(sa.func.pg_advisory_xact_lock(_DEFAULT_LOCK_KEY)))


async def get_configuration(session: AsyncSession, config_id: uuid.UUID) -> SipConfiguration | None:
    return await session.get(SipConfiguration, config_id)


async def list_configurations(
    session: AsyncSession, *, active: bool | None, limit: int, offset: int
) -> Page[SipConfiguration]:
    """Configurations oldest first (optionally only active or inactive ones), one page of them."""
    where = [] if active is None else [SipConfiguration.active.is_(active)]
    count = await session.scalar(sa.select(sa.func.count()).select_from(SipConfiguration).where(*where))
    stmt = (
        sa.select(SipConfiguration)
        .where(*where)
        .order_by(SipConfiguration.created_at, SipConfiguration.id)
        .limit(limit)
        .offset(offset)
    )
    return Page(int(count or 0), list((await session.execute(stmt)).scalars()))


async def _check_name(session: AsyncSession, name: str, exclude: uuid.UUID | None) -> None:
    stmt = sa.select(SipConfiguration.id).where(SipConfiguration.name == name)
    if exclude is not None:
        stmt = stmt.where(SipConfiguration.id != exclude)
    if (await session.execute(stmt)).first() is not None:
        raise NameTaken(name)


async def _has_default(session: AsyncSession) -> bool:
    stmt = sa.select(sa.literal(1)).select_from(SipConfiguration).where(SipConfiguration.is_default.is_(True))
    return (await session.execute(stmt)).first() is not None


async def create_configuration(session: AsyncSession, values: Mapping[str, Any]) -> SipConfiguration:
    """Store a configuration; the first one (or any while none is default) becomes the default."""
    await _lock_default(session)
    await _check_name(session, values["name"], None)
    config = SipConfiguration(id=uuid.uuid4(), **values)
    config.is_default = not await _has_default(session)
    session.add(config)
    await session.flush()
    return config


async def load_locked(session: AsyncSession, config_id: uuid.UUID) -> SipConfiguration | None:
    """Take the default lock, then load the configuration (so what is read is what others committed)."""
    await _lock_default(session)
    return await session.get(SipConfiguration, config_id, populate_existing=True)


async def update_configuration(session: AsyncSession, config: SipConfiguration, values: Mapping[str, Any]) -> None:
    """Apply ``values`` to a configuration loaded with ``load_locked``."""
    if "name" in values and values["name"] != config.name:
        await _check_name(session, values["name"], config.id)
    if values.get("active") is False and config.is_default:
        raise DefaultConflict(
            "the default configuration cannot be deactivated; make another configuration the default first"
        )
    for name, value in values.items():
        setattr(config, name, value)
    await session.flush()


async def set_default(session: AsyncSession, config: SipConfiguration) -> None:
    """Make ``config`` (loaded with ``load_locked``) the one default: clear the old one, then set it."""
    if not config.active:
        raise DefaultConflict("an inactive configuration cannot be the default; activate it first")
    if config.is_default:
        return
    await session.execute(
        sa.update(SipConfiguration)
        .where(SipConfiguration.is_default.is_(True), SipConfiguration.id != config.id)
        .values(is_default=False)
        .execution_options(synchronize_session="fetch")
    )
    # Flush the clearing first: the partial unique index allows one default row at any moment.
    await session.flush()
    config.is_default = True
    await session.flush()


async def delete_configuration(session: AsyncSession, config: SipConfiguration) -> SipConfiguration | None:
    """Delete ``config`` (loaded with ``load_locked``); if it was the default, promote the oldest
    remaining active configuration (or the oldest at all) and return it."""
    was_default = config.is_default
    await session.delete(config)
    await session.flush()
    if not was_default:
        return None
    heir = (
        await session.execute(
            sa.select(SipConfiguration)
            .order_by(SipConfiguration.active.desc(), SipConfiguration.created_at, SipConfiguration.id)
            .limit(1)
        )
    ).scalar_one_or_none()
    if heir is not None:
        heir.is_default = True
        await session.flush()
    return heir

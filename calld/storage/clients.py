"""Client repository: clients, the numbers that identify them, and their calls.

Functions take the caller's session, so one request's changes commit (or fail) together.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from calld.domain.errors import Conflict
from calld.domain.vocabulary import CallDirection
from calld.storage.models import CallLog, Client, ClientPhoneNumber, utcnow


class NumberTaken(Conflict):
    """A phone number already identifies another client."""

    def __init__(self, number: str, owner_id: uuid.UUID) -> None:
        self.number = number
        self.owner_id = owner_id
        super().__init__(
            "number_taken",
            "phone number belongs to another client",
            {"phone_numbers": f"{number} already belongs to client {owner_id}"},
            number=number,
            client=str(owner_id),
        )


@dataclass(frozen=True, slots=True)
class ClientFilter:
    """List filters: ``search`` matches name, company or email; ``number`` is one normalised number."""

    search: str | None = None
    number: str | None = None


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of rows and the count of all rows matching."""

    count: int
    rows: list[T]


async def get_client(session: AsyncSession, client_id: uuid.UUID) -> Client | None:
    return await session.get(Client, client_id)


def _filtered(stmt: sa.Select[Client], flt: ClientFilter) -> sa.Select[Client]:
    if flt.search:
        term = flt.search
        stmt = stmt.where(
            sa.or_(
                Client.name.icontains(term, autoescape=True),
                Client.company.icontains(term, autoescape=True),
                Client.email.icontains(term, autoescape=True),
            )
        )
    if flt.number:
        owners = sa.select(ClientPhoneNumber.client_id).where(ClientPhoneNumber.number == flt.number)
        stmt = stmt.where(Client.id.in_(owners))
    return stmt


async def list_clients(session: AsyncSession, flt: ClientFilter, *, limit: int, offset: int) -> Page[Client]:
    """Clients matching ``flt``, by name (case-insensitively), one page of them; counted in SQL."""
    base = _filtered(sa.select(Client), flt)
    count = await session.scalar(sa.select(sa.func.count()).select_from(base.order_by(None).subquery()))
    # Case-insensitive so that SQLite (binary collation) and PostgreSQL list in the same order.
    stmt = (
        base.order_by(sa.func.lower(Client.name), Client.name, Client.created_at, Client.id).limit(limit).offset(offset)
    )
    rows = list((await session.execute(stmt)).scalars())
    return Page(int(count or 0), rows)


async def check_numbers_free(session: AsyncSession, numbers: Sequence[str], client_id: uuid.UUID | None) -> None:
    """Raise ``NumberTaken`` for the first of ``numbers`` owned by a client other than ``client_id``."""
    if not numbers:
        return
    stmt = sa.select(ClientPhoneNumber.number, ClientPhoneNumber.client_id).where(ClientPhoneNumber.number.in_(numbers))
    if client_id is not None:
        stmt = stmt.where(ClientPhoneNumber.client_id != client_id)
    owners = {number: owner for number, owner in (await session.execute(stmt)).all()}
    for number in numbers:
        if number in owners:
            raise NumberTaken(number, owners[number])


async def create_client(
    session: AsyncSession,
    *,
    name: str,
    numbers: Sequence[str],
    email: str | None,
    company: str | None,
    notes: str,
) -> Client:
    """Store a new client with ``numbers`` (already normalised and de-duplicated)."""
    await check_numbers_free(session, numbers, None)
    client = Client(
        id=uuid.uuid4(),
        name=name,
        email=email,
        company=company,
        notes=notes,
        phone_numbers=[ClientPhoneNumber(number=n, position=i) for i, n in enumerate(numbers)],
    )
    session.add(client)
    await session.flush()
    return client


async def replace_numbers(session: AsyncSession, client: Client, numbers: Sequence[str]) -> None:
    """Make ``numbers`` the client's numbers, in this order.

    Kept numbers keep their rows: the unit of work inserts before it deletes, so re-adding a number
    as a new row would collide with the unique constraint on the row it replaces.
    """
    await check_numbers_free(session, numbers, client.id)
    existing = {row.number: row for row in client.phone_numbers}
    for row in list(client.phone_numbers):
        if row.number not in numbers:
            client.phone_numbers.remove(row)
    await session.flush()
    rows: list[ClientPhoneNumber] = []
    for position, number in enumerate(numbers):
        row = existing.get(number) or ClientPhoneNumber(number=number)
        row.position = position
        rows.append(row)
    client.phone_numbers = rows
    client.updated_at = utcnow()
    await session.flush()


async def delete_client(session: AsyncSession, client: Client) -> None:
    """Delete a client and its numbers; its calls stay, unowned (the foreign key is SET NULL)."""
    await session.delete(client)
    await session.flush()


async def call_history(session: AsyncSession, client_id: uuid.UUID, *, limit: int, offset: int) -> Page[CallLog]:
    """The client's calls, newest first, one page of them."""
    where = CallLog.client_id == client_id
    count = await session.scalar(sa.select(sa.func.count()).select_from(CallLog).where(where))
    stmt = (
        sa.select(CallLog)
        .where(where)
        .order_by(CallLog.started_at.desc(), CallLog.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = list((await session.execute(stmt)).scalars())
    return Page(int(count or 0), rows)


async def link_calls(session: AsyncSession, client_id: uuid.UUID) -> int:
    """Give the client every unowned call whose far party is one of its numbers; the count linked.

    The far party is the caller of an inbound call and the recipient of an outbound one, as in
    ``CallStore.create``. One UPDATE, so concurrent requests cannot link a call twice.
    """
    numbers = sa.select(ClientPhoneNumber.number).where(ClientPhoneNumber.client_id == client_id)
    stmt = (
        sa.update(CallLog)
        .where(
            CallLog.client_id.is_(None),
            sa.or_(
                sa.and_(CallLog.direction == CallDirection.INBOUND, CallLog.caller_number.in_(numbers)),
                sa.and_(CallLog.direction == CallDirection.OUTBOUND, CallLog.recipient_number.in_(numbers)),
            ),
        )
        .values(client_id=client_id, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)

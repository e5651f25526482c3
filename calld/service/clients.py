"""Clients: the people and companies behind phone numbers, and their call history."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from calld.domain.errors import NotFound
from calld.service.views import call_log_json, client_json
from calld.storage import clients as repo
from calld.storage.database import Database
from calld.storage.models import Client

WHAT = "client"


async def _load(session: AsyncSession, client_id: uuid.UUID) -> Client:
    client = await repo.get_client(session, client_id)
    if client is None:
        raise NotFound(WHAT, value=client_id)
    return client


class ClientService:
    """List, create, change and delete clients; their calls. A number belongs to one client at most
    (``NumberTaken``, a conflict)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def page(
        self, search: str | None, number: str | None, *, limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        async with self.db.read() as session:
            page = await repo.list_clients(session, repo.ClientFilter(search, number), limit=limit, offset=offset)
            return page.count, [client_json(c) for c in page.rows]

    async def create(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values``: name, numbers, email, company, notes."""
        async with self.db.write() as session:
            client = await repo.create_client(
                session,
                name=values["name"],
                numbers=values["numbers"],
                email=values["email"],
                company=values["company"],
                notes=values["notes"],
            )
            return client_json(client)

    async def get(self, client_id: uuid.UUID) -> dict[str, Any]:
        async with self.db.read() as session:
            return client_json(await _load(session, client_id))

    async def change(self, client_id: uuid.UUID, values: dict[str, Any]) -> dict[str, Any]:
        """Change the fields given; ``numbers`` replaces the list."""
        async with self.db.write() as session:
            client = await _load(session, client_id)
            for name in ("name", "email", "company", "notes"):
                if name in values:
                    setattr(client, name, values[name])
            if "numbers" in values:
                await repo.replace_numbers(session, client, values["numbers"])
            await session.flush()
            return client_json(client)

    async def delete(self, client_id: uuid.UUID) -> None:
        """Delete the client; its calls are kept, without a client."""
        async with self.db.write() as session:
            await repo.delete_client(session, await _load(session, client_id))

    async def call_history(self, client_id: uuid.UUID, *, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
        """The client's calls, newest first."""
        async with self.db.read() as session:
            await _load(session, client_id)
            page = await repo.call_history(session, client_id, limit=limit, offset=offset)
            return page.count, [call_log_json(c) for c in page.rows]

    async def link_calls(self, client_id: uuid.UUID) -> int:
        """Make unowned past calls whose far party is one of the client's numbers the client's."""
        async with self.db.write() as session:
            await _load(session, client_id)
            return await repo.link_calls(session, client_id)

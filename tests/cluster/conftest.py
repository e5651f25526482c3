"""The cluster tests' database: PostgreSQL only (SQLite has no election and no NOTIFY)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from calld.storage.database import Database
from tests.support import fresh_database


@pytest.fixture
async def pg(tmp_path: Path, pg_database: None) -> AsyncIterator[Database]:
    db = await fresh_database("postgres", tmp_path)
    try:
        yield db
    finally:
        await db.close()

"""Alembic environment: run with the connection calld hands over (``Database.migrate``), or
standalone with ``CALLD_DATABASE_URL`` for ``alembic revision --autogenerate`` while developing."""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from calld.storage.models import Base
from calld.storage.search import is_modelled

target_metadata = Base.metadata


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=lambda name, type_, _parent: is_modelled(name, type_),
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = sa.create_engine(os.environ.get("CALLD_DATABASE_URL", "sqlite:///calld-dev.db"))
    with engine.connect() as conn:
        _run(conn)
        conn.commit()

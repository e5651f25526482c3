"""search: full-text indexes (PostgreSQL GIN, SQLite FTS5), call tags, and the indexes of the list's new filters

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-03 14:00:00

Free text ``q`` searches a call's notes, its client's name and its recordings' transcripts.
PostgreSQL: GIN indexes over ``to_tsvector('simple', <text with every run of non-alphanumerics a
space>)`` (calld.storage.search repeats the expression). SQLite: an FTS5 table of documents keyed by
``search_docs`` (kind, owner row, the call it belongs to), kept in step by triggers and filled from
what is stored. Number patterns (``+4930*``) are ranges over the numbers in byte order (PostgreSQL:
an index ``COLLATE "C"``; SQLite's BINARY order is that already). ``min_duration``/``max_duration``,
``has_recording`` and ``has_transcript`` get their indexes. ``call_tags`` holds the labels people put
on calls (``tag``). The SQL is written out here so that
this revision keeps doing what it did when calld changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tsvector(column: str) -> str:
    return f"to_tsvector('simple'::regconfig, regexp_replace({column}, '[^[:alnum:]]+', ' ', 'g'))"


PG_INDEXES = (
    f"CREATE INDEX ix_call_logs_notes_fts ON call_logs USING gin ({_tsvector('notes')})",
    f"CREATE INDEX ix_clients_name_fts ON clients USING gin ({_tsvector('name')})",
    f"CREATE INDEX ix_call_recordings_transcript_fts ON call_recordings USING gin ({_tsvector('transcript')})",
    'CREATE INDEX ix_call_logs_caller_number_c ON call_logs ((caller_number COLLATE "C"))',
    'CREATE INDEX ix_call_logs_recipient_number_c ON call_logs ((recipient_number COLLATE "C"))',
)

# (kind, table, text column, the call a document belongs to)
_SOURCES = (
    ("call", "call_logs", "notes", "{row}.id"),
    ("client", "clients", "name", "NULL"),
    ("recording", "call_recordings", "transcript", "{row}.call_id"),
)


def _add(kind: str, column: str, call_id: str) -> str:
    return f"""INSERT INTO search_docs (kind, owner, call_id)
            SELECT '{kind}', NEW.id, {call_id.format(row="NEW")} WHERE coalesce(NEW.{column}, '') <> '';
        INSERT INTO search_fts (rowid, body)
            SELECT doc, NEW.{column} FROM search_docs WHERE kind = '{kind}' AND owner = NEW.id;"""


def _remove(kind: str) -> str:
    docs = f"SELECT doc FROM search_docs WHERE kind = '{kind}' AND owner = OLD.id"
    return f"""DELETE FROM search_fts WHERE rowid IN ({docs});
        DELETE FROM search_docs WHERE kind = '{kind}' AND owner = OLD.id;"""


def _sqlite_statements() -> list[str]:
    statements = [
        "CREATE VIRTUAL TABLE search_fts USING fts5(body, tokenize = 'unicode61 remove_diacritics 0')",
        """CREATE TABLE search_docs (
            doc INTEGER PRIMARY KEY,
            kind VARCHAR(16) NOT NULL,
            owner CHAR(32) NOT NULL,
            call_id CHAR(32),
            CONSTRAINT uq_search_docs_kind_owner UNIQUE (kind, owner)
        )""",
    ]
    for kind, table, column, call_id in _SOURCES:
        statements += [
            f"INSERT INTO search_docs (kind, owner, call_id) SELECT '{kind}', id, {call_id.format(row=table)} "
            f"FROM {table} WHERE coalesce({column}, '') <> ''",
            f"INSERT INTO search_fts (rowid, body) SELECT d.doc, t.{column} FROM search_docs d "
            f"JOIN {table} t ON t.id = d.owner WHERE d.kind = '{kind}'",
            f"CREATE TRIGGER search_{kind}_insert AFTER INSERT ON {table} BEGIN {_add(kind, column, call_id)} END",
            f"CREATE TRIGGER search_{kind}_update AFTER UPDATE OF {column} ON {table} "
            f"WHEN OLD.{column} IS NOT NEW.{column} BEGIN {_remove(kind)} {_add(kind, column, call_id)} END",
            f"CREATE TRIGGER search_{kind}_delete AFTER DELETE ON {table} BEGIN {_remove(kind)} END",
        ]
    return statements


def upgrade() -> None:
    op.create_table(
        "call_tags",
        sa.Column("call_id", sa.Uuid(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["call_logs.id"], name=op.f("fk_call_tags_call_id_call_logs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("call_id", "tag", name=op.f("pk_call_tags")),
    )
    op.create_index("ix_call_tags_tag", "call_tags", ["tag", "call_id"])
    op.create_index("ix_call_logs_duration_seconds", "call_logs", ["duration_seconds"])
    op.create_index(
        "ix_call_recordings_kept",
        "call_recordings",
        ["call_id"],
        sqlite_where=sa.text("status <> 'deleted'"),
        postgresql_where=sa.text("status <> 'deleted'"),
    )
    op.create_index(
        "ix_call_recordings_transcribed",
        "call_recordings",
        ["call_id"],
        sqlite_where=sa.text("transcript IS NOT NULL"),
        postgresql_where=sa.text("transcript IS NOT NULL"),
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_INDEXES:
            op.execute(statement)
        return
    for statement in _sqlite_statements():
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in ("ix_call_logs_notes_fts", "ix_clients_name_fts", "ix_call_recordings_transcript_fts"):
            op.execute(f"DROP INDEX {name}")
        op.execute("DROP INDEX ix_call_logs_caller_number_c")
        op.execute("DROP INDEX ix_call_logs_recipient_number_c")
    else:
        for kind, _table, _column, _call in _SOURCES:
            for when in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER search_{kind}_{when}")
        op.execute("DROP TABLE search_docs")
        op.execute("DROP TABLE search_fts")
    op.drop_index("ix_call_recordings_transcribed", "call_recordings")
    op.drop_index("ix_call_recordings_kept", "call_recordings")
    op.drop_index("ix_call_logs_duration_seconds", "call_logs")
    op.drop_index("ix_call_tags_tag", "call_tags")
    op.drop_table("call_tags")

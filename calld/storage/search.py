"""The list's search filters in SQL: free text, number patterns and recordings, per dialect.

Free text is PostgreSQL full-text search over GIN expression indexes (``TSVECTOR_SQL``) and, on
SQLite, FTS5: one ``search_fts`` table of documents (a call's notes, a client's name, a recording's
transcript) keyed by ``search_docs``, both kept in step by triggers (migration 0015), so every
writer (API, webhooks, switch ingest, seed) keeps the index right. Both sides read text the same
way: runs of letters and digits, lower-cased, without stemming; a word matches the words it starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from calld.domain.call_filter import NumberPattern, SearchText
from calld.domain.vocabulary import RecordingStatus
from calld.storage.models import CallLog, CallRecording, CallTag

# The SQLite objects that hold the full-text index; they are not models (FTS5 tables and their
# shadow tables), so schema comparisons leave them out.
SQLITE_SEARCH_TABLES = ("search_fts", "search_docs")
# PostgreSQL expression indexes the models cannot describe (migration 0015).
UNMODELLED_INDEXES = (
    "ix_call_logs_notes_fts",
    "ix_clients_name_fts",
    "ix_call_recordings_transcript_fts",
    "ix_call_logs_caller_number_c",
    "ix_call_logs_recipient_number_c",
)


def is_modelled(name: str | None, type_: str) -> bool:
    """Whether a schema object is described by the models (Alembic's ``include_object``/``include_name``)."""
    if name is None:
        return True
    if type_ == "table":
        return not name.startswith(SQLITE_SEARCH_TABLES)
    if type_ == "index":
        return name not in UNMODELLED_INDEXES
    return True


def tsvector_sql(column: str) -> str:
    """The indexed document of a text column on PostgreSQL; queries repeat it character for character
    (constants, not parameters) so the planner matches the index whatever plan it caches."""
    return f"to_tsvector('simple'::regconfig, regexp_replace({column}, '[^[:alnum:]]+', ' ', 'g'))"


def _pg_match(column: str, param: str) -> sa.TextClause:
    return sa.text(f"{tsvector_sql(column)} @@ to_tsquery('simple'::regconfig, :{param})")


def _pg_text(words: tuple[str, ...]) -> sa.ColumnElement[bool]:
    """Calls whose notes, client's name or one of whose transcripts has every word (as a word's start)."""
    value = {"q": " & ".join(f"{word}:*" for word in words)}
    notes = sa.select(CallLog.id).where(_pg_match("call_logs.notes", "q").bindparams(**value))
    clients: sa.Select[Any] = sa.select(sa.literal_column("clients.id")).select_from(sa.table("clients"))
    by_client = sa.select(CallLog.id).where(
        CallLog.client_id.in_(clients.where(_pg_match("clients.name", "q").bindparams(**value)))
    )
    transcripts = sa.select(CallRecording.call_id).where(
        _pg_match("call_recordings.transcript", "q").bindparams(**value)
    )
    return one_of_ids(sa.union(notes, by_client, transcripts), "postgresql")


def one_of_ids(ids: sa.Select[Any] | sa.CompoundSelect[Any], dialect: str) -> sa.ColumnElement[bool]:
    """Calls whose id ``ids`` selects. On PostgreSQL as ``id = ANY(<array of them>)``: an array
    computed once and looked up in the primary key, where ``IN (subquery)`` was planned as a hash join
    over a scan of every call (the planner guessing thousands of matches where there were hundreds)."""
    if dialect != "postgresql":
        return CallLog.id.in_(ids)
    inner = ids.subquery()
    array = sa.select(sa.func.array_agg(inner.c[0])).scalar_subquery()
    return CallLog.id == sa.any_(sa.func.coalesce(array, sa.text("'{}'")))


_DOCS = sa.table("search_docs", sa.column("doc"), sa.column("kind"), sa.column("owner"), sa.column("call_id"))


def _fts_docs(words: tuple[str, ...]) -> sa.Select[Any]:
    # Quoted FTS5 strings with a trailing * are prefix queries, side by side they must all match
    # (one document: one source); the words hold only letters and digits.
    fts = sa.table("search_fts")
    query = " ".join(f'"{word}"*' for word in words)
    return (
        sa.select(sa.literal_column("search_fts.rowid"))
        .select_from(fts)
        .where(sa.literal_column("search_fts").op("MATCH")(query))
    )


def _sqlite_text(words: tuple[str, ...]) -> sa.ColumnElement[bool]:
    direct = sa.select(_DOCS.c.call_id).where(_DOCS.c.doc.in_(_fts_docs(words)), _DOCS.c.call_id.is_not(None))
    clients = sa.select(_DOCS.c.owner).where(_DOCS.c.doc.in_(_fts_docs(words)), _DOCS.c.kind == "client")
    by_client = sa.select(CallLog.id).where(CallLog.client_id.in_(clients))
    return CallLog.id.in_(sa.union_all(direct, by_client))


def text_condition(text: SearchText, dialect: str) -> sa.ColumnElement[bool]:
    """Calls where every word of ``text`` starts a word of the notes, of the client's name, or of one
    transcript (all in the same one: a word common to many clients and another in some notes do not
    make each other's calls match)."""
    if dialect == "postgresql":
        return _pg_text(text.words)
    return _sqlite_text(text.words)


def _number_column(column: sa.orm.InstrumentedAttribute[str], dialect: str) -> sa.ColumnElement[Any]:
    # Byte order, so that a prefix is a range whatever the database's collation (PostgreSQL's
    # default would order "+" and digits by locale rules); indexed as such by migration 0015.
    if dialect == "postgresql":
        return column.collate("C")
    return column.expression


def number_pattern_condition(pattern: NumberPattern, dialect: str) -> sa.ColumnElement[bool]:
    """Calls from or to a number ``pattern`` matches: the prefix as an index range, then LIKE."""
    sides = []
    for attribute in (CallLog.caller_number, CallLog.recipient_number):
        column = _number_column(attribute, dialect)
        conds = [column >= pattern.prefix, column < pattern.upper]
        if pattern.like is not None:
            conds.append(attribute.like(pattern.like))
        sides.append(sa.and_(*conds))
    return sa.or_(*sides)


# Written out (no parameter) so that both databases see the partial index's own predicate.
KEPT_RECORDING = sa.text(f"call_recordings.status <> '{RecordingStatus.DELETED.value}'")


def recording_condition(wanted: bool, dialect: str) -> sa.ColumnElement[bool]:
    """Calls with (or without) a recording that is not deleted."""
    kept = sa.select(CallRecording.call_id).where(KEPT_RECORDING)
    return one_of_ids(kept, dialect) if wanted else CallLog.id.not_in(kept)


def transcript_condition(wanted: bool, dialect: str) -> sa.ColumnElement[bool]:
    """Calls with (or without) a transcribed recording."""
    transcribed = sa.select(CallRecording.call_id).where(CallRecording.transcript.is_not(None))
    return one_of_ids(transcribed, dialect) if wanted else CallLog.id.not_in(transcribed)


def tag_condition(tags: Sequence[str], dialect: str) -> sa.ColumnElement[bool]:
    """Calls with any of ``tags``."""
    return one_of_ids(sa.select(CallTag.call_id).where(CallTag.tag.in_(tags)), dialect)

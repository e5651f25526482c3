"""The database handle: engine, sessions, migrations, and SQLite's single-writer rule."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from calld.domain.errors import AlreadyExists, BreaksARule
from calld.storage import sqlite_file

if TYPE_CHECKING:
    from alembic.config import Config

ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
# Threads (and connections) that run SQLite reads; see ``Database.query``.
SQLITE_READ_THREADS = 4

P = ParamSpec("P")
T = TypeVar("T")
# session.info keys of ``on_commit``: the callbacks waiting for the commit, and whether
# ``Database.transact`` runs them itself (its transaction may commit in another thread).
_ON_COMMIT = "calld.on_commit"
_TRANSACT = "calld.transact"


def on_commit(session: Session | AsyncSession, callback: Callable[[], None]) -> None:
    """Run ``callback`` on the event loop once ``session``'s transaction commits (never if it
    rolls back): waking a worker, publishing to live clients."""
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    pending: list[Callable[[], None]] | None = sync.info.get(_ON_COMMIT)
    if pending is None:
        pending = sync.info[_ON_COMMIT] = []
        if not sync.info.get(_TRANSACT):
            sa.event.listen(sync, "after_commit", _run_committed, once=True)
            sa.event.listen(sync, "after_rollback", _drop_committed, once=True)
    pending.append(callback)


def _run_committed(session: Session) -> None:
    for callback in session.info.pop(_ON_COMMIT, None) or ():
        callback()


def _drop_committed(session: Session) -> None:
    session.info.pop(_ON_COMMIT, None)


def async_url(url: str) -> str:
    """Turn ``sqlite:///x.db`` or ``postgresql://...`` into the asyncio driver's URL."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in ASYNC_DRIVERS:
        raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
    return parsed.set(drivername=ASYNC_DRIVERS[backend]).render_as_string(hide_password=False)


class DatabaseUnavailable(Exception):
    """The database cannot be reached or opened; the message names it (password hidden) and the problem."""


def display_url(url: str) -> str:
    """``url`` as a person should see it: the password hidden, a SQLite file as an absolute path
    (a relative one depends on the directory calld was started in)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            database = os.path.abspath(database)
        return f"sqlite:///{database}"
    return parsed.set(drivername=backend).render_as_string(hide_password=True)


def _problem(url: sa.URL, exc: OSError | sa.exc.DBAPIError) -> str:
    """One line saying why the database at ``url`` could not be used."""
    if isinstance(exc, OSError):
        return f"cannot connect to {url.host}:{url.port or 5432}: {exc.strerror or exc}"
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    if url.get_backend_name() == "sqlite" and url.database:
        folder = os.path.dirname(os.path.abspath(url.database))
        if not os.path.isdir(folder):
            return f"{reason}: the directory {folder} does not exist"
    return reason


def alembic_config() -> Config:
    from alembic.config import Config  # imported only when a migration runs: a third of start-up time

    cfg = Config()
    cfg.set_main_option("script_location", "calld.storage:migrations")
    return cfg


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets readers run beside the writer; synchronous=FULL makes a committed event survive
    # power loss, which is what "acknowledged as stored" promises.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_reader_pragmas(dbapi_conn: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_conn, record)
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA query_only=ON")  # the read path can never write, whatever it is given
    cursor.close()


def _refuse_closed(_dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    """Pool checkout: a connection the server closed while it sat in the pool (restart, idle timeout,
    ``pg_terminate_backend``) is replaced, at no round trip. asyncpg notices the close on the event
    loop, so ``is_closed()`` is a local check; ``pool_pre_ping`` would cost three round trips a
    checkout (BEGIN, a ping, ROLLBACK). A connection lost between checkout and use is caught by
    ``Database.query``'s retry (reads) or fails that one transaction (writes)."""
    driver = record.driver_connection
    if driver is not None and driver.is_closed():
        raise sa.exc.DisconnectionError("connection closed by the server")


class _SqliteReader:
    """SQLite reads on plain ``sqlite3`` connections in a few threads: a read (all its statements)
    is one hop to a thread, where aiosqlite makes four hops per statement (cursor, execute, fetch,
    close), each a thread wake-up and an event-loop wake-up."""

    def __init__(self, url: sa.URL) -> None:
        self.engine = sa.create_engine(
            url.set(drivername="sqlite"), pool_size=SQLITE_READ_THREADS, max_overflow=0, pool_timeout=60
        )
        sa.event.listen(self.engine, "connect", _sqlite_reader_pragmas)
        self.threads = ThreadPoolExecutor(SQLITE_READ_THREADS, thread_name_prefix="calld-sqlite-read")

    def _run(self, fn: Callable[[sa.Connection], T]) -> T:
        with self.engine.connect() as conn:
            return fn(conn)

    async def run(self, fn: Callable[[sa.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.threads, self._run, fn)

    async def close(self) -> None:
        await asyncio.to_thread(self.threads.shutdown, wait=True, cancel_futures=True)
        self.engine.dispose()


class _SqliteWriter:
    """SQLite write transactions on one plain ``sqlite3`` connection in one thread: a whole
    transaction (all its statements and the commit) is one hop to that thread, where aiosqlite
    makes four hops per statement. Writers are serialised by ``Database``'s write lock."""

    def __init__(self, url: sa.URL) -> None:
        self.engine = sa.create_engine(url.set(drivername="sqlite"), pool_size=1, max_overflow=0)
        sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="calld-sqlite-write")

    def _run(self, fn: Callable[[Session], T]) -> tuple[T, list[Callable[[], None]]]:
        with self.sessions() as session:
            session.info[_TRANSACT] = True
            with session.begin():
                result = fn(session)
            return result, session.info.pop(_ON_COMMIT, None) or []

    async def run(self, fn: Callable[[Session], T]) -> tuple[T, list[Callable[[], None]]]:
        return await asyncio.get_running_loop().run_in_executor(self.thread, self._run, fn)

    async def close(self) -> None:
        await asyncio.to_thread(self.thread.shutdown, wait=True, cancel_futures=True)
        self.engine.dispose()


class Database:
    """Owns the engine. ``write()`` opens a transaction; on SQLite writers are serialised here
    because SQLite allows one writer and would otherwise answer concurrent ones with SQLITE_BUSY."""

    def __init__(self, url: str, *, pool_size: int = 10, timeout_seconds: float = 10.0, echo: bool = False) -> None:
        """``timeout_seconds`` bounds, on PostgreSQL, a connection attempt, a statement and the wait
        for a pooled connection, so a cut or hung server is an error in bounded time (503), not a
        request hanging until TCP gives up."""
        self.url = async_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "postgresql":
            kwargs.update(
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_recycle=1800,
                pool_timeout=timeout_seconds,
                connect_args={"timeout": timeout_seconds, "command_timeout": timeout_seconds},
            )
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        self._sqlite_reader: _SqliteReader | None = None
        self._sqlite_writer: _SqliteWriter | None = None
        # Reads need no transaction: PostgreSQL's READ COMMITTED takes a snapshot per statement
        # anyway, and autocommit saves a BEGIN and a ROLLBACK round trip per read.
        self._reads = self.engine
        if self.dialect == "sqlite":
            sa.event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            if self.sqlite_path is not None:
                self._sqlite_reader = _SqliteReader(make_url(self.url))
                self._sqlite_writer = _SqliteWriter(make_url(self.url))
        else:
            sa.event.listen(self.engine.sync_engine, "checkout", _refuse_closed)
            self._reads = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        # Set when SQLite reports its file damaged while running (/readyz reports it).
        self.damage: str | None = None
        # When the database stopped answering (None while it answers): one log line per outage.
        self.unavailable_since: float | None = None
        self._log = structlog.get_logger("calld.storage")

    def note_unavailable(self, exc: BaseException) -> None:
        """A request failed because the database did not answer: log the first such failure only."""
        if self.unavailable_since is None:
            self.unavailable_since = time.monotonic()
            self._log.warning("database unavailable", error=f"{type(exc).__name__}: {exc}"[:300])

    def note_available(self) -> None:
        if self.unavailable_since is not None:
            outage = time.monotonic() - self.unavailable_since
            self.unavailable_since = None
            self._log.info("database available again", outage_seconds=round(outage, 1))

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, if this is one on disk."""
        database = make_url(self.url).database if self.dialect == "sqlite" else None
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for queries only."""
        async with self._sessions() as session, _dropped_when_unavailable(session):
            yield session

    async def query(self, fn: Callable[Concatenate[sa.Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(connection, *args, **kwargs)``: synchronous Core reads, all on one connection.

        The cheap read path the API's hot pages use. ``fn`` must only read: it may run twice (a
        connection found dead is replaced and ``fn`` run again, so a dropped PostgreSQL connection is
        no error), and on SQLite it runs on a read-only connection in another thread (one hop per
        call rather than four per statement).
        """

        def call(conn: sa.Connection) -> T:
            return fn(conn, *args, **kwargs)

        if self._sqlite_reader is not None:
            return await self._sqlite_reader.run(call)
        try:
            result = await self._run_read(call)
        except sa.exc.DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            # The pool has invalidated every connection older than the dead one: one retry suffices.
            result = await self._run_read(call)
        self.note_available()
        return result

    async def _run_read(self, call: Callable[[sa.Connection], T]) -> T:
        async with self._reads.connect() as conn, _dropped_when_unavailable(conn):
            return await conn.run_sync(call)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction, committed on success and rolled back on error. A row the database
        refuses is a domain conflict: ``AlreadyExists`` (a unique value taken) or ``BreaksARule``."""
        try:
            if self._write_lock is None:
                async with self._sessions() as session, _dropped_when_unavailable(session), session.begin():
                    yield session
            else:
                async with self._write_lock, self._sessions() as session, session.begin():
                    yield session
        except sa.exc.IntegrityError as exc:
            if _unique_violation(exc):
                raise AlreadyExists(str(exc.orig)) from exc
            raise BreaksARule(str(exc.orig)) from exc
        self.note_available()

    async def transact(self, fn: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(session, *args, **kwargs)`` in one write transaction and commit it: the cheap write
        path of the switch ingest (one batch of events is one call).

        ``fn`` is synchronous and runs with a plain ORM ``Session``: on a SQLite file in calld's writer
        thread, on its own connection (the whole transaction is one thread hop, not four per statement);
        elsewhere through the async session's ``run_sync`` (on PostgreSQL each statement is a round trip
        anyway). Callbacks ``fn`` registers with ``on_commit`` run here, on the event loop, after the
        commit. Errors are those of ``write()``.
        """

        def call(session: Session) -> T:
            return fn(session, *args, **kwargs)

        if self._sqlite_writer is None:
            async with self.write() as session:
                session.sync_session.info[_TRANSACT] = True
                result = await session.run_sync(call)
            committed = session.sync_session.info.pop(_ON_COMMIT, None) or []
        else:
            assert self._write_lock is not None
            try:
                async with self._write_lock:
                    result, committed = await self._sqlite_writer.run(call)
            except sa.exc.IntegrityError as exc:
                if _unique_violation(exc):
                    raise AlreadyExists(str(exc.orig)) from exc
                raise BreaksARule(str(exc.orig)) from exc
            self.note_available()
        for callback in committed:
            callback()
        return result

    def note_failure(self, exc: BaseException) -> str | None:
        """What a failed request says of the database: "damaged" (the SQLite file is: noted for
        /readyz), "unavailable" (it did not answer: one log line per outage), or None."""
        if sqlite_file.is_damage(exc):
            self.damage = str(getattr(exc, "orig", exc))[:200]
            return "damaged"
        if is_unavailable(exc):
            self.note_unavailable(exc)
            return "unavailable"
        return None

    @property
    def display(self) -> str:
        """This database's URL as a person should see it (``display_url``)."""
        return display_url(self.url)

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (a schema already there costs one query).
        A SQLite file is created owner-only or, if it exists, checked first (``DatabaseDamaged``);
        ``DatabaseUnavailable`` when the database cannot be reached or opened (it is the first thing
        every command does with it)."""
        path = self.sqlite_path
        if path is not None:
            folder = await asyncio.to_thread(_missing_folder, path)
            if folder is not None:  # said as SQLite would, before the file check tries to create it
                raise DatabaseUnavailable(
                    f"database {self.display}: unable to open database file: the directory {folder} does not exist"
                )
            await asyncio.to_thread(sqlite_file.prepare, path)
        try:
            async with self.engine.begin() as conn:
                if await conn.run_sync(_at_head):
                    return
                await conn.run_sync(_upgrade)
        except (OSError, sa.exc.DBAPIError) as exc:
            raise DatabaseUnavailable(f"database {self.display}: {_problem(make_url(self.url), exc)}") from exc

    async def ping(self) -> None:
        async with self.engine.connect() as conn, _dropped_when_unavailable(conn):
            await conn.execute(sa.text("SELECT 1"))
        self.note_available()

    async def close(self) -> None:
        if self._sqlite_reader is not None:
            await self._sqlite_reader.close()
        if self._sqlite_writer is not None:
            await self._sqlite_writer.close()
        await self.engine.dispose()


def _missing_folder(path: Path) -> str | None:
    """The absolute directory ``path`` would live in, if it does not exist."""
    return None if path.parent.is_dir() else os.path.abspath(path.parent)


def head_revision() -> str:
    """The newest migration's revision: revisions are the 4-digit prefix of their file's name."""
    versions = Path(__file__).resolve().parent / "migrations" / "versions"
    return max(path.name[:4] for path in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))


def _at_head(connection: sa.Connection) -> bool:
    if not sa.inspect(connection).has_table("alembic_version"):
        return False
    versions = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    return list(versions) == [head_revision()]


def _upgrade(connection: sa.Connection) -> None:
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


@asynccontextmanager
async def _dropped_when_unavailable(holder: AsyncSession | AsyncConnection) -> AsyncIterator[None]:
    """A connection that timed out or lost its server is discarded, never returned to the pool: a
    statement cut short by a timeout may still be answered later, and that answer must not be read
    as the next statement's."""
    try:
        yield
    except Exception as exc:
        if is_unavailable(exc):
            with contextlib.suppress(Exception):
                await holder.invalidate()
        raise


def _unique_violation(exc: sa.exc.IntegrityError) -> bool:
    """Whether the database refused a row for a unique value already taken (not a CHECK, NOT NULL or
    foreign key: those are bugs, not conflicts)."""
    if getattr(exc.orig, "sqlstate", None) == "23505":  # PostgreSQL's unique_violation
        return True
    return str(exc.orig).startswith("UNIQUE constraint failed")  # SQLite's words


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database did not answer (down, cut, hung, pool exhausted), as
    opposed to refusing a statement."""
    if isinstance(exc, TimeoutError | ConnectionError | sa.exc.TimeoutError):
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        return exc.connection_invalidated or isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)
    return isinstance(exc, OSError)

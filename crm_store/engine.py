"""Engines, sessions and migrations: the one place that knows how to open either database."""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names, absolute; None for an in-memory database."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database).resolve()


def make_engine(url: str, *, schema: str | None = None, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """An async engine for SQLite (WAL, foreign keys) or PostgreSQL (optionally inside one schema)."""
    kwargs: dict[str, Any] = {"echo": echo}
    if is_sqlite(url):
        kwargs["connect_args"] = {"timeout": 30}
        engine = create_async_engine(url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _begin)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # Reads straight from the mapped file instead of a 2 MB page cache per connection: the dashboard's log
            # walks jump between pages (newest first by an index), several times faster this way.
            cur.execute("PRAGMA mmap_size=1073741824")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            # A writer takes the write lock up front: a deferred transaction that reads first and writes later
            # fails at once with SQLITE_BUSY when another writer committed meanwhile, instead of waiting.
            immediate = conn.get_execution_options().get("sqlite_immediate")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    # The application name tells operators (pg_stat_activity) which connections are ours, and of which schema.
    server_settings = {"application_name": f"tierdesk:{schema}" if schema else "tierdesk"}
    if schema:
        server_settings["search_path"] = schema
    # Multi-row inserts and IN-lists render one statement text per row count: a few hundred texts in all, so the
    # prepared-statement cache must hold them or every batch prepares again (a round trip and a server parse).
    kwargs["connect_args"] = {"prepared_statement_cache_size": 1000, "server_settings": server_settings}
    kwargs["pool_size"] = pool_size
    kwargs["max_overflow"] = pool_size
    # No ping per checkout (a round trip for every transaction): a connection that died is invalidated by the
    # error it raises, and the dispatcher and outbox retry on a fresh one; idle ones are recycled before
    # firewalls and poolers drop them.
    kwargs["pool_recycle"] = 1800
    return create_async_engine(url, **kwargs)


class _SerialWriterSession(AsyncSession):
    """A writing session that, on SQLite, holds an in-process lock from open to close.

    SQLite has one writer at a time; waiting for it through SQLite's busy handler means sleeping in steps of up
    to 100 ms. Writers of one process queue on an asyncio lock instead and get the database the moment it is free.
    """

    _write_lock: asyncio.Lock | None = None

    async def __aenter__(self) -> AsyncSession:
        if self._write_lock is not None:
            await self._write_lock.acquire()
        try:
            return await super().__aenter__()
        except BaseException:
            if self._write_lock is not None:
                self._write_lock.release()
            raise

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await super().__aexit__(*exc)
        finally:
            if self._write_lock is not None:
                self._write_lock.release()


_WRITER_CLASSES: weakref.WeakKeyDictionary[Any, type[AsyncSession]] = weakref.WeakKeyDictionary()


def make_sessionmaker(engine: AsyncEngine, *, writer: bool = False) -> async_sessionmaker[AsyncSession]:
    """Sessions on `engine`; `writer=True` for transactions that will write (serialised and BEGIN IMMEDIATE on
    SQLite, plain on PostgreSQL). Use writer sessions as `async with sessions() as s, s.begin():`."""
    if not writer or engine.dialect.name != "sqlite":
        return async_sessionmaker(engine, expire_on_commit=False)
    cls = _WRITER_CLASSES.get(engine.sync_engine)
    if cls is None:
        cls = type("SqliteWriterSession", (_SerialWriterSession,), {"_write_lock": asyncio.Lock()})
        _WRITER_CLASSES[engine.sync_engine] = cls
    return async_sessionmaker(engine.execution_options(sqlite_immediate=True), expire_on_commit=False, class_=cls)


def alembic_config(url: str, schema: str | None = None) -> Config:
    # imported here: a running service never migrates, and Alembic (with Mako) is 11 MB of every worker
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["schema"] = schema
    return cfg


async def upgrade(url: str, *, schema: str | None = None, revision: str = "heads") -> None:
    """Run the migrations up to `revision` (all heads by default)."""
    engine = make_engine(url, schema=schema)
    try:
        async with engine.begin() as conn:
            if schema and not is_sqlite(url):
                await conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')

            def _run(sync_conn: Any) -> None:
                from alembic import command

                cfg = alembic_config(url, schema)
                cfg.attributes["connection"] = sync_conn
                command.upgrade(cfg, revision)

            await conn.run_sync(_run)
    finally:
        await engine.dispose()


async def needs_upgrade(engine: AsyncEngine) -> bool:
    """True when the database has no tables of ours yet (an empty SQLite file, say)."""
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: inspect(c).get_table_names())
    return "contacts" not in names


def upgrade_sync(url: str, schema: str | None = None) -> None:
    asyncio.run(upgrade(url, schema=schema))

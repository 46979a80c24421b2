"""Shared fixtures: a fresh database per test on SQLite and (for real) on PostgreSQL, and Redis with a key
prefix per run. Services come from TIERDESK_TEST_POSTGRES_URL / TIERDESK_TEST_REDIS_URL; with
TIERDESK_REQUIRE_SERVICES=1 a missing service fails the run instead of skipping."""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from crm_store.engine import alembic_config, make_engine, make_sessionmaker, upgrade

PG_URL = os.environ.get("TIERDESK_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("TIERDESK_TEST_REDIS_URL", "")
REQUIRE = os.environ.get("TIERDESK_REQUIRE_SERVICES") == "1"
RUN_ID = uuid.uuid4().hex[:8]


def need_service(what: str, why: str) -> None:
    """Skip, or fail when services are required (CI)."""
    if REQUIRE:
        pytest.fail(f"{what} is required (TIERDESK_REQUIRE_SERVICES=1) but {why}", pytrace=False)
    pytest.skip(f"{what} not available: {why}")


async def migrate(db: Db, revision: str, *, down: bool = False) -> None:
    """Move a test database's schema to `revision` (to test a migration on rows written the old way)."""
    from alembic import command

    async with db.engine.begin() as conn:

        def run(sync_conn) -> None:
            cfg = alembic_config(db.url, db.schema)
            cfg.attributes["connection"] = sync_conn
            (command.downgrade if down else command.upgrade)(cfg, revision)

        await conn.run_sync(run)
    db.dirty = True


class Db:
    """A migrated, empty database for one test: its URL, schema, engine and session factory."""

    def __init__(self, url: str, schema: str | None) -> None:
        self.url = url
        self.schema = schema
        self.engine = make_engine(url, schema=schema)
        self.sessions = make_sessionmaker(self.engine)
        self.dirty = False  # the test changed the schema itself (a migration test): never reused

    @property
    def kind(self) -> str:
        return "sqlite" if self.url.startswith("sqlite") else "postgresql"


# A fresh schema costs a whole migration run (seconds on a loaded machine). A test's schema is emptied and
# reused instead when the test left its structure as it found it (same tables, columns, indexes, triggers,
# constraints and revision); one it changed is dropped.
_PG_POOL: list[tuple[str, str]] = []  # (schema, fingerprint) ready for the next test
_PG_ALL: set[str] = set()

_FINGERPRINT = """
SELECT md5(coalesce(string_agg(x, ',' ORDER BY x), '')) FROM (
  SELECT c.relname || ':' || c.relkind::text AS x FROM pg_class c WHERE c.relnamespace = to_regnamespace($1::text)
  UNION ALL SELECT c.relname || '.' || a.attname || ':' || a.atttypid::text FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid WHERE c.relnamespace = to_regnamespace($1::text) AND a.attnum > 0
    AND NOT a.attisdropped
  UNION ALL SELECT 't:' || t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    WHERE c.relnamespace = to_regnamespace($1::text)
  UNION ALL SELECT 'k:' || conname FROM pg_constraint WHERE connamespace = to_regnamespace($1::text)
) s
"""


async def _raw(url: str, fn):
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            raw = await conn.get_raw_connection()
            return await fn(raw.driver_connection)
    finally:
        await engine.dispose()


async def _fingerprint(conn, schema: str) -> str:
    version = await conn.fetch(f'SELECT version_num FROM "{schema}".alembic_version ORDER BY 1')
    return f"{await conn.fetchval(_FINGERPRINT, schema)}:{','.join(r[0] for r in version)}"


async def _pg_schema(url: str) -> tuple[str, str]:
    if _PG_POOL:
        return _PG_POOL.pop()
    schema = f"t_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    await upgrade(url, schema=schema)
    _PG_ALL.add(schema)

    async def mark(conn) -> str:
        return await _fingerprint(conn, schema)

    return schema, await _raw(url, mark)


async def _release_schema(url: str, schema: str, fingerprint: str, dirty: bool) -> None:
    """Empty the schema for the next test, or drop it when the test changed its structure."""

    async def empty(conn) -> bool:
        if dirty or await _fingerprint(conn, schema) != fingerprint:
            return False
        tables = [
            r[0]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'alembic_version'", schema
            )
        ]
        sequences = [
            r[0] for r in await conn.fetch("SELECT sequencename FROM pg_sequences WHERE schemaname = $1", schema)
        ]
        await conn.execute(
            "SET LOCAL session_replication_role = replica; "  # no foreign-key order to respect
            + " ".join(f'DELETE FROM "{schema}"."{t}";' for t in tables)
            + " ".join(f'ALTER SEQUENCE "{schema}"."{q}" RESTART;' for q in sequences)
        )
        return True

    try:
        reusable = await _raw(url, empty)
    except Exception:
        reusable = False
    if reusable:
        _PG_POOL.append((schema, fingerprint))
    else:
        _PG_ALL.discard(schema)
        await _drop_schema(url, schema)


def _drop_pool() -> None:
    if _PG_ALL and PG_URL:
        for schema in list(_PG_ALL):
            try:
                asyncio.run(_drop_schema(PG_URL, schema))
            except Exception:
                pass


atexit.register(_drop_pool)


async def _drop_schema(url: str, schema: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await engine.dispose()


_SQLITE_TEMPLATE: list[Path] = []


async def _fresh_sqlite(tmp_path: Path) -> str:
    """A migrated SQLite file: a copy of one migrated once per test process (a copy is as fresh as a migration)."""
    if not _SQLITE_TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="tierdesk-template-"))
        atexit.register(shutil.rmtree, folder, True)
        template = folder / "template.db"
        await upgrade(f"sqlite+aiosqlite:///{template}")
        _SQLITE_TEMPLATE.append(template)
    target = tmp_path / "tierdesk.db"
    shutil.copyfile(_SQLITE_TEMPLATE[0], target)
    return f"sqlite+aiosqlite:///{target}"


async def _pg_reachable(url: str) -> str | None:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Db]:
    """The same test on a fresh SQLite file and on a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        database = Db(await _fresh_sqlite(tmp_path), None)
        yield database
        await database.engine.dispose()
        return
    if not PG_URL:
        need_service("PostgreSQL", "TIERDESK_TEST_POSTGRES_URL is not set")
    problem = await _pg_reachable(PG_URL)
    if problem:
        need_service("PostgreSQL", problem)
    schema, fingerprint = await _pg_schema(PG_URL)
    database = Db(PG_URL, schema)
    try:
        yield database
    finally:
        await database.engine.dispose()
        await _release_schema(PG_URL, schema, fingerprint, database.dirty)


@pytest.fixture
async def sqlite_db(tmp_path) -> AsyncIterator[Db]:
    database = Db(await _fresh_sqlite(tmp_path), None)
    yield database
    await database.engine.dispose()


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """A reachable Redis URL; keys the test writes must use the `redis_prefix` fixture."""
    if not REDIS_URL:
        need_service("Redis", "TIERDESK_TEST_REDIS_URL is not set")
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    try:
        await asyncio.wait_for(client.ping(), 5)
    except Exception as exc:
        need_service("Redis", f"{type(exc).__name__}: {exc}")
    finally:
        await client.aclose()
    yield REDIS_URL


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    import redis.asyncio as aioredis

    prefix = f"tdtest:{RUN_ID}:{uuid.uuid4().hex[:8]}"
    yield prefix
    client = aioredis.from_url(redis_url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()

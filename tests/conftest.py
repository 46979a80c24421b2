"""Shared fixtures: a fresh database per test on SQLite and (for real) on PostgreSQL, and Redis with a key
prefix per run. Services come from TIERDESK_TEST_POSTGRES_URL / TIERDESK_TEST_REDIS_URL; with
TIERDESK_REQUIRE_SERVICES=1 a missing service fails the run instead of skipping."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

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


class Db:
    """A migrated, empty database for one test: its URL, schema, engine and session factory."""

    def __init__(self, url: str, schema: str | None) -> None:
        self.url = url
        self.schema = schema
        self.engine = make_engine(url, schema=schema)
        self.sessions = make_sessionmaker(self.engine)

    @property
    def kind(self) -> str:
        return "sqlite" if self.url.startswith("sqlite") else "postgresql"


async def _pg_schema(url: str) -> str:
    schema = f"t_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    await upgrade(url, schema=schema)
    return schema


async def _drop_schema(url: str, schema: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await engine.dispose()


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
        url = f"sqlite+aiosqlite:///{tmp_path / 'tierdesk.db'}"
        await upgrade(url)
        database = Db(url, None)
        yield database
        await database.engine.dispose()
        return
    if not PG_URL:
        need_service("PostgreSQL", "TIERDESK_TEST_POSTGRES_URL is not set")
    problem = await _pg_reachable(PG_URL)
    if problem:
        need_service("PostgreSQL", problem)
    schema = await _pg_schema(PG_URL)
    database = Db(PG_URL, schema)
    try:
        yield database
    finally:
        await database.engine.dispose()
        await _drop_schema(PG_URL, schema)


@pytest.fixture
async def sqlite_db(tmp_path) -> AsyncIterator[Db]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tierdesk.db'}"
    await upgrade(url)
    database = Db(url, None)
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

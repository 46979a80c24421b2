"""Where the benchmarks find PostgreSQL, and whether it is there."""

from __future__ import annotations

import os

from crm_store.engine import make_engine

PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


def pg_url() -> str:
    return os.environ.get("TIERDESK_BENCH_POSTGRES_URL") or os.environ.get("TIERDESK_TEST_POSTGRES_URL") or PG_DEFAULT


async def pg_reachable() -> bool:
    engine = make_engine(pg_url())
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
        return True
    except Exception:  # any failure means "not there": the bench then runs SQLite only
        return False
    finally:
        await engine.dispose()

"""Where the benchmarks find PostgreSQL, and whether it is there."""

from __future__ import annotations

import os
import sys

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


async def databases(choice: str) -> list[str]:
    """The databases a bench runs on for `--db sqlite|postgresql|both`: with `both`, PostgreSQL only if it is
    reachable (said on stderr when it is not); asked for alone and unreachable, the bench stops with why."""
    if choice == "sqlite":
        return ["sqlite"]
    if await pg_reachable():
        return ["postgresql"] if choice == "postgresql" else ["sqlite", "postgresql"]
    if choice == "postgresql":
        sys.exit(f"PostgreSQL at {pg_url()} is not reachable (set TIERDESK_BENCH_POSTGRES_URL)")
    print(f"PostgreSQL at {pg_url()} is not reachable; SQLite only", file=sys.stderr)
    return ["sqlite"]

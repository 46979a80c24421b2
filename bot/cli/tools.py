"""What every CLI command needs: the settings, a migrated database, and a clean exit on expected errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.settings import Settings, get_settings
from crm_store.engine import is_sqlite, make_engine, make_sessionmaker, needs_upgrade, upgrade


@asynccontextmanager
async def open_store(settings: Settings | None = None) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the configured database; an empty SQLite file is migrated first."""
    s = settings or get_settings()
    engine = make_engine(s.database_url, schema=s.database_schema)
    try:
        if await needs_upgrade(engine):
            if not is_sqlite(s.database_url):
                raise SystemExit("the database has no tierdesk tables: run `tierdesk db upgrade` first")
            await upgrade(s.database_url)
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()

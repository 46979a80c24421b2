"""Whether the database answers right now: the one query callers use to tell an outage from a bad row."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


async def database_answers(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """True when a trivial query succeeds; raises the driver's error when it does not."""
    async with sessions() as session:
        await session.execute(text("SELECT 1"))
    return True

"""Failed-login counts per (client, account): the rows behind the dashboard's login throttling (the policy of how
long to wait lives with the login, `bot.web.login_guard`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.repositories._sql import insert_ignoring_conflicts
from crm_store.trust import LoginThrottle


async def ensure(session: AsyncSession, key: str, *, client: str, account: str) -> None:
    """The pair's row, with no failures, unless it has one already."""
    await session.execute(insert_ignoring_conflicts(session, LoginThrottle).values(
        key=key, client=client[:64], account=account, failures=0))


async def state(session: AsyncSession, key: str) -> tuple[int, datetime | None] | None:
    """(failures, next allowed at) of the pair; None when its row is gone."""
    row = (await session.execute(
        select(LoginThrottle.failures, LoginThrottle.next_allowed_at).where(LoginThrottle.key == key)
    )).one_or_none()
    return (row[0], row[1]) if row is not None else None


async def count_failure(session: AsyncSession, key: str, *, seen: int, at: datetime, next_allowed: datetime) -> bool:
    """One more failure, if the count is still `seen` (a compare-and-set: parallel attempts count once each)."""
    counted = await session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.key == key, LoginThrottle.failures == seen)
        .values(failures=seen + 1, last_failed_at=at, next_allowed_at=next_allowed)
    )
    return bool(counted.rowcount)


async def forget(session: AsyncSession, key: str) -> None:
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))


async def pairs(session: AsyncSession, *, account: str = "", limit: int = 200) -> list[LoginThrottle]:
    """The pairs with failures, most recent first."""
    q = (select(LoginThrottle).where(LoginThrottle.failures > 0)
         .order_by(LoginThrottle.last_failed_at.desc(), LoginThrottle.key).limit(limit))
    if account:
        q = q.where(LoginThrottle.account == account)
    return list(await session.scalars(q))


async def clear(session: AsyncSession, *, account: str = "", client: str = "") -> int:
    """Delete the pairs of one account and/or one client (both empty: every pair); how many went."""
    q = delete(LoginThrottle)
    if account:
        q = q.where(LoginThrottle.account == account)
    if client:
        q = q.where(LoginThrottle.client == client[:64])
    return (await session.execute(q)).rowcount or 0

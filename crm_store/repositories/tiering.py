"""Tier runs: the stored result of a segmentation, the tier history, and writing new tiers onto customers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import Customer, TierChange, TierRun, now
from crm_store.repositories._sql import chunks


async def current_tiers(session: AsyncSession) -> dict[int, tuple[str, str]]:
    """(tier, reason) of every live customer, to tell what a run changes."""
    rows = await session.execute(
        select(Customer.id, Customer.tier, Customer.tier_reason).where(Customer.merged_into_id.is_(None))
    )
    return {cid: (tier, reason) for cid, tier, reason in rows}


async def write_tiers(session: AsyncSession, updates: list[dict[str, Any]]) -> None:
    """Set `tier` and `tier_reason` by customer id (`{"id", "tier", "tier_reason"}` rows); the caller commits."""
    at = now()
    for part in chunks(updates, 5_000):
        await session.execute(update(Customer), [{**row, "updated_at": at} for row in part])


async def record_run(
    session: AsyncSession,
    *,
    started_at: datetime,
    method: str,
    k: int | None,
    silhouette: float | None,
    stability_ari: float | None,
    changed: int,
    report: dict[str, Any],
) -> int:
    run = TierRun(
        started_at=started_at, finished_at=now(), method=method, k=k, silhouette=silhouette,
        stability_ari=stability_ari, changed=changed, report=report, status="done",
    )
    session.add(run)
    await session.flush()
    return run.id


async def record_changes(session: AsyncSession, run_id: int | None, changes: list[dict[str, Any]]) -> None:
    """Tier history rows: `{"customer_id", "old_tier", "new_tier", "reason"}` (+ optional `by_agent_id`)."""
    at = now()
    for part in chunks(changes, 5_000):
        rows = [{"by_agent_id": None, **row, "run_id": run_id, "at": at} for row in part]
        await session.execute(insert(TierChange), rows)


async def last_run(session: AsyncSession) -> TierRun | None:
    return await session.scalar(
        select(TierRun).where(TierRun.status == "done").order_by(TierRun.finished_at.desc(), TierRun.id.desc()).limit(1)
    )


async def tier_history(session: AsyncSession, customer_id: int, *, limit: int = 20) -> list[TierChange]:
    rows = await session.scalars(
        select(TierChange)
        .where(TierChange.customer_id == customer_id)
        .order_by(TierChange.at.desc(), TierChange.id.desc())
        .limit(limit)
    )
    return list(rows)


async def set_manual_tier(
    session: AsyncSession, customer_id: int, tier: str | None, *, by_agent_id: int | None = None
) -> None:
    """Pin (or with None, unpin) a customer's tier by hand; the history records who did it."""
    customer = await session.get(Customer, customer_id)
    if customer is None:
        return
    old = customer.tier
    customer.manual_tier = tier
    if tier is not None:
        customer.tier = tier
        customer.tier_reason = f"{tier}: set manually"
        session.add(TierChange(customer_id=customer_id, old_tier=old, new_tier=tier, reason="set manually",
                               by_agent_id=by_agent_id, at=now()))
    await session.execute(update(Customer).where(Customer.id == customer_id).values(updated_at=now()))

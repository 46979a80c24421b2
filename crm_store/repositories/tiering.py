"""Tier runs: the stored result of a segmentation, each run's tier per customer (the history the migration matrix,
the trend and the at-risk list read), and writing new tiers onto customers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import Agent, Customer, Ticket, TierAssignment, TierChange, TierRun, now
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
        started_at=started_at,
        finished_at=now(),
        method=method,
        k=k,
        silhouette=silhouette,
        stability_ari=stability_ari,
        changed=changed,
        report=report,
        status="done",
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
        session.add(
            TierChange(
                customer_id=customer_id,
                old_tier=old,
                new_tier=tier,
                reason="set manually",
                by_agent_id=by_agent_id,
                at=now(),
            )
        )
    await session.execute(update(Customer).where(Customer.id == customer_id).values(updated_at=now()))


async def record_assignments(session: AsyncSession, run_id: int, rows: list[dict[str, Any]]) -> None:
    """This run's tier per customer: `{"customer_id", "tier", "computed_tier", "predicted_value", "p_alive"}`."""
    for part in chunks(rows, 5_000):
        await session.execute(insert(TierAssignment), [{**row, "run_id": run_id} for row in part])


async def recent_runs(session: AsyncSession, limit: int = 12) -> list[TierRun]:
    """The last finished runs, newest first."""
    rows = await session.scalars(
        select(TierRun).where(TierRun.status == "done").order_by(TierRun.id.desc()).limit(limit)
    )
    return list(rows)


async def run_tiers(session: AsyncSession, run_id: int) -> dict[int, tuple[str, float | None]]:
    """(tier, probability alive) per customer in one run."""
    rows = await session.execute(
        select(TierAssignment.customer_id, TierAssignment.tier, TierAssignment.p_alive).where(
            TierAssignment.run_id == run_id
        )
    )
    return {cid: (tier, alive) for cid, tier, alive in rows}


async def migration_counts(session: AsyncSession, from_run: int, to_run: int) -> list[tuple[str | None, str, int]]:
    """(tier in `from_run` or None for customers new since, tier in `to_run`, customers)."""
    before = select(TierAssignment.customer_id, TierAssignment.tier).where(TierAssignment.run_id == from_run).subquery()
    q = (
        select(before.c.tier, TierAssignment.tier, func.count())
        .select_from(TierAssignment)
        .outerjoin(before, before.c.customer_id == TierAssignment.customer_id)
        .where(TierAssignment.run_id == to_run)
        .group_by(before.c.tier, TierAssignment.tier)
    )
    return [(old, new, int(n)) for old, new, n in await session.execute(q)]


async def tier_sizes_by_run(session: AsyncSession, run_ids: list[int]) -> dict[int, dict[str, int]]:
    """Customers per tier in each of the runs."""
    out: dict[int, dict[str, int]] = {rid: {} for rid in run_ids}
    q = (
        select(TierAssignment.run_id, TierAssignment.tier, func.count())
        .where(TierAssignment.run_id.in_(run_ids))
        .group_by(TierAssignment.run_id, TierAssignment.tier)
    )
    for rid, tier, n in await session.execute(q):
        out[rid][tier] = int(n)
    return out


async def moved_customers(
    session: AsyncSession, from_run: int, to_run: int, old_tier: str, new_tier: str, *, limit: int = 1000
) -> list[tuple[int, str, str, float | None, float | None]]:
    """Customers whose tier went from `old_tier` (in `from_run`) to `new_tier` (in `to_run`): (id, name, reason,
    predicted value, probability alive), the most valuable first."""
    before = (
        select(TierAssignment.customer_id)
        .where(TierAssignment.run_id == from_run, TierAssignment.tier == old_tier)
        .subquery()
    )
    q = (
        select(Customer.id, Customer.name, Customer.tier_reason, TierAssignment.predicted_value, TierAssignment.p_alive)
        .join(TierAssignment, TierAssignment.customer_id == Customer.id)
        .join(before, before.c.customer_id == Customer.id)
        .where(TierAssignment.run_id == to_run, TierAssignment.tier == new_tier)
        .order_by(TierAssignment.predicted_value.desc().nulls_last(), Customer.id)
        .limit(limit)
    )
    return [tuple(r) for r in await session.execute(q)]


async def latest_assignment(session: AsyncSession, customer_id: int) -> TierAssignment | None:
    """The customer's row in the newest run that has one (their predicted value and probability alive)."""
    return await session.scalar(
        select(TierAssignment)
        .where(TierAssignment.customer_id == customer_id)
        .order_by(TierAssignment.run_id.desc())
        .limit(1)
    )


async def valuable_customers(session: AsyncSession, run_id: int, tiers: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """(id, name, tier, predicted value, probability alive, key-account manager's name) of the run's customers in
    `tiers`, live ones only."""
    q = (
        select(
            Customer.id,
            Customer.name,
            TierAssignment.tier,
            TierAssignment.predicted_value,
            TierAssignment.p_alive,
            Agent.name,
        )
        .join(TierAssignment, TierAssignment.customer_id == Customer.id)
        .outerjoin(Agent, Agent.id == Customer.key_account_manager_id)
        .where(TierAssignment.run_id == run_id, TierAssignment.tier.in_(tiers), Customer.merged_into_id.is_(None))
    )
    return [tuple(r) for r in await session.execute(q)]


async def recent_ticket_signals(
    session: AsyncSession, customer_ids: list[int], since: datetime
) -> dict[int, tuple[int, int | None]]:
    """(complaint tickets, lowest CSAT) per customer over tickets opened since `since`."""
    out: dict[int, tuple[int, int | None]] = {}
    complaint = func.sum(case((Ticket.intent == "complaint", 1), else_=0))
    for part in chunks(customer_ids, 5_000):
        q = (
            select(Ticket.customer_id, complaint, func.min(Ticket.csat))
            .where(Ticket.customer_id.in_(part), Ticket.created_at >= since)
            .group_by(Ticket.customer_id)
        )
        for cid, n, low in await session.execute(q):
            out[cid] = (int(n or 0), low)
    return out

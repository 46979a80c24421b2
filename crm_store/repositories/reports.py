"""The dashboard's read side: overview aggregates; the searchable, filterable contact log is in contact_search
(re-exported here).

Every function takes plain values and returns plain rows; the web layer only formats them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Float, Integer, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import Agent, Contact, Customer, Ticket, TierRun, ValueEvent
from crm_store.repositories import contact_days
from crm_store.repositories._sql import dialect
from crm_store.repositories.contact_search import (  # noqa: F401 (the log lives there; callers import it here)
    LOG_COLUMNS,
    ContactFilter,
    iter_contacts,
    search_contacts,
)

ACTIVE = ("open", "pending")


def _seconds_between(session: AsyncSession, later: Any, earlier: Any) -> Any:
    if dialect(session) == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


async def known_intents(session: AsyncSession, limit: int = 100) -> list[str]:
    """Intents seen on recent contacts, for the filter's list."""
    intent = Contact.nlu["intent"].as_string()
    recent = select(intent.label("intent")).where(Contact.nlu.is_not(None)).order_by(Contact.id.desc()).limit(5000)
    sub = recent.subquery()
    rows = await session.scalars(select(sub.c.intent).where(sub.c.intent.is_not(None)).distinct().limit(limit))
    return sorted(r for r in rows if r)


# --- overview ---------------------------------------------------------------------------------------------------
async def contacts_per_day(
    session: AsyncSession, since: datetime, until: datetime, *, by: str, scope_tiers: Sequence[str] = ()
) -> list[tuple[str, str, int]]:
    """(day, channel or tier, contacts) for each day in [since, until), from the daily rollup (see contact_days;
    the caller refreshes it)."""
    totals: dict[tuple[str, str], int] = {}
    for day, channel, tier, _direction, n in await contact_days.contacts_by_day(session, since, until):
        if scope_tiers and tier not in scope_tiers:
            continue
        key = (day.isoformat(), channel if by == "channel" else tier)
        totals[key] = totals.get(key, 0) + n
    return [(d, k, n) for (d, k), n in sorted(totals.items())]


async def backlog_by_queue(session: AsyncSession) -> list[tuple[str, str, int]]:
    """(queue, status, tickets) of everything not solved yet."""
    rows = await session.execute(
        select(Ticket.queue, Ticket.status, func.count())
        .where(Ticket.status.in_(ACTIVE))
        .group_by(Ticket.queue, Ticket.status)
        .order_by(Ticket.queue, Ticket.status)
    )
    return [(q, s, int(n)) for q, s, n in rows.all()]


def _interpolate(n: int, at: dict[int, float], p: float) -> float | None:
    """Linear interpolation between the ranked values around position (n-1)*p, as PostgreSQL's percentile_cont."""
    if n == 0:
        return None
    pos = (n - 1) * p
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    return at[lo] + (at[hi] - at[lo]) * (pos - lo)


async def _durations_by_tier(
    session: AsyncSession, since: datetime, until: datetime, end_col: Any
) -> dict[str, dict[str, float | int | None]]:
    seconds = cast(_seconds_between(session, end_col, Ticket.created_at), Float)
    base = (Ticket.created_at >= since, Ticket.created_at < until, end_col.is_not(None))
    if dialect(session) == "postgresql":
        rows = await session.execute(
            select(
                Ticket.tier_at_open,
                func.count(),
                func.percentile_cont(0.5).within_group(seconds),
                func.percentile_cont(0.9).within_group(seconds),
            )
            .where(*base)
            .group_by(Ticket.tier_at_open)
        )
        return {t: {"n": int(n), "p50": p50, "p90": p90} for t, n, p50, p90 in rows.all()}
    # SQLite has no percentile_cont: rank inside the database and fetch only the rows around each percentile.
    ranked = select(
        Ticket.tier_at_open.label("tier"), seconds.label("secs"),
        (func.row_number().over(partition_by=Ticket.tier_at_open, order_by=seconds) - 1).label("pos"),
        func.count().over(partition_by=Ticket.tier_at_open).label("n"),
    ).where(*base).subquery()
    wanted = [cast((ranked.c.n - 1) * p, Integer) + k for p in (0.5, 0.9) for k in (0, 1)]
    picked: dict[str, tuple[int, dict[int, float]]] = {}
    rows = await session.execute(
        select(ranked.c.tier, ranked.c.n, ranked.c.pos, ranked.c.secs).where(ranked.c.pos.in_(wanted))
    )
    for tier, n, pos, secs in rows.all():
        picked.setdefault(tier, (int(n), {}))[1][int(pos)] = float(secs)
    return {
        t: {"n": n, "p50": _interpolate(n, at, 0.5), "p90": _interpolate(n, at, 0.9)} for t, (n, at) in picked.items()
    }


async def response_times(session: AsyncSession, since: datetime, until: datetime) -> dict[str, dict[str, Any]]:
    """First-response and resolution seconds (p50, p90) by tier at open, for tickets opened in the range."""
    first = await _durations_by_tier(session, since, until, Ticket.first_responded_at)
    resolved = await _durations_by_tier(session, since, until, func.coalesce(Ticket.solved_at, Ticket.closed_at))
    return {tier: {"first": first.get(tier), "resolution": resolved.get(tier)} for tier in sorted({*first, *resolved})}


async def ticket_figures_by_tier(session: AsyncSession, since: datetime, until: datetime) -> dict[str, dict[str, Any]]:
    """Tickets opened, SLA breaches and CSAT (mean, answers) by tier at open, for tickets opened in the range."""
    rows = await session.execute(
        select(
            Ticket.tier_at_open,
            func.count(),
            func.count(Ticket.sla_breached_at),
            func.avg(Ticket.csat),
            func.count(Ticket.csat),
        )
        .where(Ticket.created_at >= since, Ticket.created_at < until)
        .group_by(Ticket.tier_at_open)
    )
    return {
        t: {"opened": int(n), "breached": int(b), "csat": float(c) if c is not None else None, "csat_n": int(cn)}
        for t, n, b, c, cn in rows.all()
    }


# --- agents and tiers -------------------------------------------------------------------------------------------
async def agent_figures(session: AsyncSession, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Every agent with open load, capacity, status and tickets handled (solved or closed) in the range."""
    load = dict(
        (await session.execute(
            select(Ticket.assignee_id, func.count())
            .where(Ticket.status.in_(ACTIVE), Ticket.assignee_id.is_not(None))
            .group_by(Ticket.assignee_id)
        )).all()
    )
    done_at = func.coalesce(Ticket.solved_at, Ticket.closed_at)
    handled = dict(
        (await session.execute(
            select(Ticket.assignee_id, func.count())
            .where(Ticket.assignee_id.is_not(None), done_at >= since, done_at < until)
            .group_by(Ticket.assignee_id)
        )).all()
    )
    replies = dict(
        (await session.execute(
            select(Contact.agent_id, func.count())
            .where(Contact.agent_id.is_not(None), Contact.direction == "out", Contact.created_at >= since,
                   Contact.created_at < until)
            .group_by(Contact.agent_id)
        )).all()
    )
    agents = await session.scalars(select(Agent).order_by(Agent.name, Agent.id))
    return [
        {
            "id": a.id, "name": a.name, "role": a.role, "status": a.status, "tiers": list(a.tiers or []),
            "queues": list(a.queues or []), "capacity": a.capacity, "load": int(load.get(a.id, 0)),
            "handled": int(handled.get(a.id, 0)), "replies": int(replies.get(a.id, 0)), "email": a.email,
        }
        for a in agents
    ]


async def tier_figures(session: AsyncSession) -> list[dict[str, Any]]:
    """Per tier: customers, total value and open tickets (customers merged into others are not counted)."""
    live = Customer.merged_into_id.is_(None)
    sizes = dict(
        (await session.execute(select(Customer.tier, func.count()).where(live).group_by(Customer.tier))).all()
    )
    revenue = dict(
        (await session.execute(
            select(Customer.tier, func.coalesce(func.sum(ValueEvent.amount), 0))
            .join(Customer, Customer.id == ValueEvent.customer_id)
            .where(live)
            .group_by(Customer.tier)
        )).all()
    )
    open_t = dict(
        (await session.execute(
            select(Ticket.tier_at_open, func.count()).where(Ticket.status.in_(ACTIVE)).group_by(Ticket.tier_at_open)
        )).all()
    )
    tiers = sorted({*sizes, *revenue, *open_t})
    return [
        {"tier": t, "customers": int(sizes.get(t, 0)), "revenue": float(revenue.get(t, 0) or 0),
         "open_tickets": int(open_t.get(t, 0))}
        for t in tiers
    ]


async def last_tier_run(session: AsyncSession) -> TierRun | None:
    return await session.scalar(select(TierRun).order_by(TierRun.started_at.desc(), TierRun.id.desc()).limit(1))


async def customer_value(session: AsyncSession, customer_id: int) -> dict[str, Any]:
    row = (await session.execute(
        select(func.coalesce(func.sum(ValueEvent.amount), 0), func.count(), func.max(ValueEvent.occurred_at))
        .where(ValueEvent.customer_id == customer_id)
    )).one()
    return {"total": float(row[0] or 0), "events": int(row[1]), "last": row[2]}


async def search_customers_page(
    session: AsyncSession, *, q: str = "", tier: str = "", scope_tiers: Sequence[str] = (), after_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Customers for the dashboard list, with open-ticket counts."""
    open_count = (
        select(func.count()).where(Ticket.customer_id == Customer.id, Ticket.status.in_(ACTIVE))
        .correlate(Customer).scalar_subquery()
    )
    stmt = select(Customer.id, Customer.name, Customer.tier, Customer.external_ref, Customer.language,
                  Customer.created_at, open_count.label("open_tickets")).where(Customer.merged_into_id.is_(None))
    if after_id:
        stmt = stmt.where(Customer.id > after_id)
    if tier:
        stmt = stmt.where(Customer.tier == tier)
    if scope_tiers:
        stmt = stmt.where(Customer.tier.in_(list(scope_tiers)))
    if q:
        from crm_store.models import Identity

        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        ids = select(Identity.customer_id).where(Identity.address.ilike(like, escape="\\"))
        conds = [Customer.name.ilike(like, escape="\\"), Customer.external_ref == q, Customer.id.in_(ids)]
        if q.isdigit() and len(q) < 15:
            conds.append(Customer.id == int(q))
        stmt = stmt.where(or_(*conds))
    return [r._asdict() for r in (await session.execute(stmt.order_by(Customer.id).limit(limit))).all()]

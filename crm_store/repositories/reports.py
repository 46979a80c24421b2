"""The dashboard's read side: contact volumes, backlog, tiers and customers; the searchable, filterable contact
log is in contact_search (re-exported here). Ticket figures (response times, SLA, CSAT, agents) are defined once in
`figures`.

Every function takes plain values and returns plain rows; the web layer only formats them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import Contact, Customer, Ticket, TierRun, ValueEvent
from crm_store.repositories import contact_days
from crm_store.repositories.contact_search import (  # noqa: F401 (the log lives there; callers import it here)
    LOG_COLUMNS,
    ContactFilter,
    iter_contacts,
    search_contacts,
)

ACTIVE = ("open", "pending")


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


# --- tiers ------------------------------------------------------------------------------------------------------
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

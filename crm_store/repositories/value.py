"""Value data: customers and purchases from imports and seeding, and the RFM aggregate tiers are computed from."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import Agent, Customer, Identity, ValueEvent, now
from crm_store.repositories._sql import chunks, dialect, insert_ignoring_conflicts


async def lock_for_writing(session: AsyncSession) -> None:
    """Start the session's transaction holding the write lock (BEGIN IMMEDIATE on SQLite; nothing on PostgreSQL).

    Call first in a transaction that reads before it writes: on SQLite a deferred one fails at once when another
    writer commits in between, instead of waiting its turn.
    """
    await session.connection(execution_options={"sqlite_immediate": True})


@dataclass(slots=True)
class ImportedCustomer:
    external_ref: str
    name: str = ""
    language: str | None = None
    manual_tier: str | None = None
    key_account_manager_id: int | None = None
    identities: tuple[tuple[str, str], ...] = ()


async def customer_ids_by_ref(session: AsyncSession, refs: Iterable[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for part in chunks(sorted(set(refs))):
        rows = await session.execute(select(Customer.external_ref, Customer.id).where(Customer.external_ref.in_(part)))
        found.update({ref: cid for ref, cid in rows})
    return found


async def agent_ids_by_email_or_name(session: AsyncSession, keys: Iterable[str]) -> dict[str, int]:
    """Agents keyed by the email or (case-insensitive) name an import refers to them by."""
    wanted = {k.strip().lower() for k in keys if k.strip()}
    if not wanted:
        return {}
    found: dict[str, int] = {}
    for aid, name, email in await session.execute(select(Agent.id, Agent.name, Agent.email)):
        for key in (name.lower(), (email or "").lower()):
            if key in wanted:
                found.setdefault(key, aid)
    return found


async def upsert_customers(session: AsyncSession, rows: list[ImportedCustomer]) -> tuple[int, int]:
    """Create customers by external ref, or update the fields a row gives; returns (created, updated).

    Identities are attached with the caller having checked they belong to nobody else.
    """
    existing = await customer_ids_by_ref(session, (r.external_ref for r in rows))
    created = updated = 0
    for row in rows:
        cid = existing.get(row.external_ref)
        if cid is None:
            customer = Customer(
                external_ref=row.external_ref,
                name=row.name or row.external_ref,
                language=row.language,
                key_account_manager_id=row.key_account_manager_id,
            )
            if row.manual_tier:
                customer.manual_tier = customer.tier = row.manual_tier
                customer.tier_reason = f"{row.manual_tier}: set manually"
            session.add(customer)
            await session.flush()
            existing[row.external_ref] = cid = customer.id
            created += 1
        else:
            customer = await session.get(Customer, cid)
            assert customer is not None
            changes: dict[str, Any] = {}
            if row.name and row.name != customer.name:
                changes["name"] = row.name
            if row.language and row.language != customer.language:
                changes["language"] = row.language
            if row.key_account_manager_id and row.key_account_manager_id != customer.key_account_manager_id:
                changes["key_account_manager_id"] = row.key_account_manager_id
            if row.manual_tier and row.manual_tier != customer.manual_tier:
                changes.update(
                    manual_tier=row.manual_tier, tier=row.manual_tier, tier_reason=f"{row.manual_tier}: set manually"
                )
            for key, value in changes.items():
                setattr(customer, key, value)
            updated += bool(changes)
        for channel, address in row.identities:
            await session.execute(
                insert_ignoring_conflicts(session, Identity).values(
                    customer_id=cid, channel=channel, address=address, display_name=row.name[:255], created_at=now()
                )
            )
    await session.flush()
    return created, updated


async def customers_for_purchases(session: AsyncSession, keys: Iterable[str]) -> dict[str, int]:
    """Resolve a purchase's `customer` field: an external ref, else an email or phone identity."""
    keys = set(keys)
    found = await customer_ids_by_ref(session, keys)
    rest = [k for k in keys if k not in found]
    for part in chunks(sorted(rest)):
        rows = await session.execute(
            select(Identity.address, Identity.customer_id).where(
                Identity.channel.in_(("email", "phone")), Identity.address.in_(part)
            )
        )
        for addr, cid in rows:
            found.setdefault(addr, cid)
    return found


async def existing_source_keys(session: AsyncSession, keys: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for part in chunks(sorted(set(keys))):
        found.update(await session.scalars(select(ValueEvent.source_key).where(ValueEvent.source_key.in_(part))))
    return found


async def insert_value_events(session: AsyncSession, rows: list[dict[str, Any]], *, chunk: int = 1000) -> int:
    """Insert purchases; a source_key seen before is skipped. Returns how many were new."""
    added = 0
    for part in chunks(rows, chunk):
        result = await session.execute(insert_ignoring_conflicts(session, ValueEvent, ("id",)), part)
        added += len(result.all())
    return added


async def bulk_insert_customers(session: AsyncSession, rows: list[dict[str, Any]]) -> list[int]:
    """Plain multi-row insert for seeding; returns the new ids in order."""
    ids: list[int] = []
    for part in chunks(rows, 2000 if dialect(session) == "postgresql" else 4000):
        result = await session.execute(insert(Customer).returning(Customer.id, sort_by_parameter_order=True), part)
        ids.extend(result.scalars())
    return ids


async def bulk_insert_value_events(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Executemany insert for seeding (the rows' source keys must be new)."""
    for part in chunks(rows, 20_000):
        await session.execute(insert(ValueEvent), part)


async def value_rows(session: AsyncSession, as_of: datetime) -> list[tuple[Any, ...]]:
    """One row per live customer, in one aggregate query over the value events up to `as_of`.

    (id, first purchase, last purchase, orders, net spend, referrals, loyalty points, manual tier, key-account
    manager, tier); refunds count in the net spend only. Customers without value events have None for the
    aggregates; those with refunds only have a spend but no purchase dates.
    """
    bought = ValueEvent.amount > 0
    agg = (
        select(
            ValueEvent.customer_id.label("cid"),
            func.min(case((bought, ValueEvent.occurred_at))).label("first_at"),
            func.max(case((bought, ValueEvent.occurred_at))).label("last_at"),
            func.sum(case((bought, 1), else_=0)).label("orders"),
            func.sum(ValueEvent.amount).label("spend"),
            func.sum(ValueEvent.referrals).label("refs"),
            func.sum(ValueEvent.loyalty_points).label("loyalty"),
        )
        .where(ValueEvent.occurred_at <= as_of)
        .group_by(ValueEvent.customer_id)
        .subquery()
    )
    q = (
        select(
            Customer.id,
            agg.c.first_at,
            agg.c.last_at,
            agg.c.orders,
            agg.c.spend,
            agg.c.refs,
            agg.c.loyalty,
            Customer.manual_tier,
            Customer.key_account_manager_id,
            Customer.tier,
        )
        .outerjoin(agg, agg.c.cid == Customer.id)
        .where(Customer.merged_into_id.is_(None))
        .order_by(Customer.id)
    )
    return [tuple(r) for r in (await session.execute(q)).all()]


async def net_spend_between(session: AsyncSession, since: datetime, until: datetime) -> dict[int, float]:
    """Net spend (purchases minus refunds) per customer with value events in (since, until]."""
    q = (
        select(ValueEvent.customer_id, func.sum(ValueEvent.amount))
        .where(ValueEvent.occurred_at > since, ValueEvent.occurred_at <= until)
        .group_by(ValueEvent.customer_id)
    )
    return {cid: float(total or 0) for cid, total in await session.execute(q)}

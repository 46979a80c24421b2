"""Customers and their identities: recognising who wrote, on any channel."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from sqlalchemy import bindparam, cast, delete, literal, null, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.errors import NotFound
from crm_store.models import AgentAddress, Contact, Customer, Identity, Note, OutboxItem, Ticket, ValueEvent, now
from crm_store.repositories._sql import (
    as_row_id,
    chunks,
    in_values,
    insert_ignoring_conflicts,
    insert_returning_ids,
    is_pg,
    keys_clause,
    keys_params,
    row_chunks,
)

Pair = tuple[str, str]  # (channel, address)


@cache
def _identity_query(pg: bool, groups: int) -> Any:
    return select(Identity.channel, Identity.address, Identity.customer_id).where(
        keys_clause([Identity.channel, Identity.address], vary=1, groups=groups, pg=pg)
    )


async def customers_by_identity(session: AsyncSession, pairs: Iterable[Pair]) -> dict[Pair, int]:
    """Map each known (channel, address) to its customer id, in one query per 500 pairs."""
    found: dict[Pair, int] = {}
    for part in chunks(sorted(set(pairs))):
        groups, params = keys_params(part, vary=1)
        for ch, addr, cid in await session.execute(_identity_query(is_pg(session), groups), params):
            found[(ch, addr)] = cid
    return found


@cache
def _who_wrote_query(pg: bool, groups: int) -> Any:
    no_facts = [cast(null(), column.type) for column in _FACT_COLUMNS]  # agents have none; typed for the UNION
    return union_all(
        select(literal("a"), AgentAddress.channel, AgentAddress.address, AgentAddress.agent_id, *no_facts).where(
            keys_clause([AgentAddress.channel, AgentAddress.address], vary=1, groups=groups, pg=pg)
        ),
        select(literal("c"), Identity.channel, Identity.address, Identity.customer_id, *_FACT_COLUMNS)
        .join(Customer, Customer.id == Identity.customer_id)
        .where(keys_clause([Identity.channel, Identity.address], vary=1, groups=groups, pg=pg)),
    )


async def who_wrote(
    session: AsyncSession, pairs: Iterable[Pair]
) -> tuple[dict[Pair, int], dict[Pair, int], dict[int, dict[str, Any]]]:
    """For each (channel, address): the agent id if an agent writes from it, the customer id if a customer owns
    it, and that customer's facts (see `customer_facts`) — one query for all three, since every message needs
    them."""
    agents: dict[Pair, int] = {}
    customers: dict[Pair, int] = {}
    facts: dict[int, dict[str, Any]] = {}
    for part in chunks(sorted(set(pairs))):
        groups, params = keys_params(part, vary=1)
        for kind, ch, addr, ident, *fact in await session.execute(_who_wrote_query(is_pg(session), groups), params):
            if kind == "a":
                agents[(ch, addr)] = ident
            else:
                customers[(ch, addr)] = ident
                facts[ident] = _facts(*fact)
    return agents, customers, facts


async def resolve_customers(
    session: AsyncSession,
    pairs: dict[Pair, str],
    *,
    language: dict[Pair, str] | None = None,
    known: dict[Pair, int] | None = None,
) -> tuple[dict[Pair, int], set[Pair]]:
    """Customer id for every (channel, address); unknown senders become new customers, in bulk.

    `pairs` maps each pair to a display name. Returns the mapping and the set of pairs created now. If another
    worker registered the same address meanwhile, its customer wins and ours is removed again.
    """
    found = dict(known) if known is not None else await customers_by_identity(session, pairs)
    missing = sorted(p for p in pairs if p not in found)
    created: set[Pair] = set()
    if not missing:
        return found, created
    at = now()
    rows = [
        {
            "name": (pairs[p] or p[1])[:255],
            "language": (language or {}).get(p),
            "tier": "potential",
            "tier_reason": "no purchases yet",
            "lifecycle_stage": "lead",
            "created_at": at,
            "updated_at": at,
        }
        for p in missing
    ]
    new_ids = await insert_returning_ids(session, Customer, rows)
    ident_rows = [
        {"customer_id": cid, "channel": p[0], "address": p[1], "display_name": (pairs[p] or "")[:255], "created_at": at}
        for p, cid in zip(missing, new_ids, strict=True)
    ]
    for part in row_chunks(ident_rows):
        result = await session.execute(
            insert_ignoring_conflicts(session, Identity, ("channel", "address")), part
        )
        created.update((ch, addr) for ch, addr in result.all())
    losers = [cid for p, cid in zip(missing, new_ids, strict=True) if p not in created]
    if losers:
        await session.execute(delete(Customer).where(Customer.id.in_(losers)))
        found.update(await customers_by_identity(session, [p for p in missing if p not in created]))
    found.update({p: cid for p, cid in zip(missing, new_ids, strict=True) if p in created})
    return found, created


async def get_customer(session: AsyncSession, customer_id: int) -> Customer:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    while customer.merged_into_id:
        customer = await session.get(Customer, customer.merged_into_id)
        assert customer is not None
    return customer


async def identities_of(session: AsyncSession, customer_id: int) -> list[Identity]:
    rows = await session.scalars(select(Identity).where(Identity.customer_id == customer_id).order_by(Identity.id))
    return list(rows)


async def find_customer(session: AsyncSession, query: str) -> Customer | None:
    """Find a customer by id, `#id`, external ref, @username, email, phone or any channel address."""
    q = query.strip()
    if not q:
        return None
    bare = q.lstrip("#")
    if (number := as_row_id(bare)) is not None:
        customer = await session.get(Customer, number)
        if customer is not None:
            return await get_customer(session, customer.id)
    candidates = {q, q.lower(), q.lstrip("@"), q.lstrip("@").lower()}
    cid = await session.scalar(select(Identity.customer_id).where(Identity.address.in_(candidates)).limit(1))
    if cid is None:
        cid = await session.scalar(select(Customer.id).where(Customer.external_ref == q).limit(1))
    if cid is None and bare.lower().startswith("c"):
        cid = as_row_id(bare[1:].lstrip("-"))
    return await get_customer(session, cid) if cid is not None else None


USERNAME_CHANNEL = "telegram_username"
"""Telegram usernames, so an agent can name a customer as @username: kept as an identity that never links or
merges anyone (a username can move to another account; the first customer seen with it keeps it)."""


async def remember_usernames(session: AsyncSession, usernames: dict[int, str]) -> None:
    """Record customer id -> Telegram username (without "@"); a username already known is left alone."""
    rows = [
        {"customer_id": cid, "channel": USERNAME_CHANNEL, "address": name.lower()[:255], "display_name": "",
         "created_at": now()}
        for cid, name in usernames.items() if name
    ]
    if rows:
        await session.execute(insert_ignoring_conflicts(session, Identity), rows)


async def link_identity(session: AsyncSession, customer_id: int, channel: str, address: str) -> int:
    """Attach (channel, address) to a customer; if it belongs to another customer, merge them.

    Returns the surviving customer id (the one that already owned the identity, whose history is older).
    """
    owner = (await customers_by_identity(session, [(channel, address)])).get((channel, address))
    if owner is None:
        await session.execute(
            insert_ignoring_conflicts(session, Identity).values(
                customer_id=customer_id, channel=channel, address=address, display_name="", created_at=now()
            )
        )
        return customer_id
    if owner == customer_id:
        return customer_id
    await merge_customers(session, source_id=customer_id, target_id=owner)
    return owner


async def merge_customers(session: AsyncSession, *, source_id: int, target_id: int) -> None:
    """Move everything of `source` to `target` and leave `source` as a pointer to it."""
    for model in (Identity, Contact, Ticket, Note, ValueEvent, OutboxItem):
        await session.execute(update(model).where(model.customer_id == source_id).values(customer_id=target_id))
    await session.execute(update(Customer).where(Customer.id == source_id).values(merged_into_id=target_id))
    target = await session.get(Customer, target_id)
    source = await session.get(Customer, source_id)
    if target is not None:
        target.updated_at = now()  # the merged contacts now count under this customer (daily rollups recount)
    if target is not None and source is not None:
        if not target.language and source.language:
            target.language = source.language
        if (not target.name or target.name == str(target.id)) and source.name:
            target.name = source.name


@cache
def _set_language_statement() -> Any:
    return (
        update(Customer.__table__)
        .where(Customer.__table__.c.id == bindparam("b_id"), Customer.__table__.c.language.is_(None))
        .values(language=bindparam("b_language"), updated_at=bindparam("b_at"))
    )


async def set_languages(session: AsyncSession, languages: dict[int, str]) -> None:
    """Each customer's language where none is known yet (a learned language never overwrites a known one), in
    one statement for all of them."""
    if not languages:
        return
    at = now()
    params = [{"b_id": cid, "b_language": lang, "b_at": at} for cid, lang in sorted(languages.items())]
    await session.execute(_set_language_statement(), params)


_FACT_COLUMNS = (Customer.tier, Customer.manual_tier, Customer.language, Customer.key_account_manager_id, Customer.name)


def _facts(tier: str, manual: str | None, language: str | None, kam: int | None, name: str) -> dict[str, Any]:
    return {"tier": manual or tier, "language": language, "kam": kam, "name": name}


@cache
def _facts_query(pg: bool) -> Any:
    return select(Customer.id, *_FACT_COLUMNS).where(in_values(Customer.id, "ids", pg=pg))


async def customer_facts(session: AsyncSession, customer_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """What routing and replies need of each customer: tier, language, key-account manager, name."""
    facts: dict[int, dict[str, Any]] = {}
    for part in chunks(sorted(set(customer_ids))):
        for cid, *fact in await session.execute(_facts_query(is_pg(session)), {"ids": part}):
            facts[cid] = _facts(*fact)
    return facts


async def create_customer(
    session: AsyncSession, *, name: str, identities: dict[str, str] | None = None, **fields: Any
) -> Customer:
    """A customer known before they write (from the business's CRM), with their addresses on each channel."""
    customer = Customer(name=name, **fields)
    session.add(customer)
    await session.flush()
    for channel, address in (identities or {}).items():
        session.add(Identity(customer_id=customer.id, channel=channel, address=address, display_name=name))
    await session.flush()
    return customer


async def tier_of(session: AsyncSession, customer_id: int | None) -> str | None:
    """A customer's computed tier (None for no customer)."""
    if customer_id is None:
        return None
    return await session.scalar(select(Customer.tier).where(Customer.id == customer_id))


async def customers_by_id(session: AsyncSession, ids: Iterable[int]) -> dict[int, Customer]:
    """The customers of a page of tickets, in one query."""
    wanted = set(ids)
    if not wanted:
        return {}
    return {c.id: c for c in await session.scalars(select(Customer).where(Customer.id.in_(wanted)))}

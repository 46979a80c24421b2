"""The contact log: every message in or out, logged once per (channel, external id, direction).

A contact is a message between the business and a customer. Desk traffic (agent commands, the bot's answers and
notices to agents, alerts, forum posts) is logged in the same table with `desk = true`; every reader here leaves
it out unless asked (`include_desk`), and a customer's history or a ticket's transcript never shows it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, false, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import Contact, Customer
from crm_store.repositories import reply_rollup
from crm_store.repositories._sql import (
    chunks,
    dialect,
    in_values,
    insert_ignoring_conflicts,
    is_pg,
    keys_clause,
    keys_params,
    row_chunks,
)

Key = tuple[str, str, str]  # (channel, external_id, direction)


async def insert_contacts(session: AsyncSession, rows: list[dict[str, Any]]) -> dict[Key, int]:
    """Bulk-insert contact rows, skipping any already logged; return the ids of the rows inserted now.

    A row that conflicts with an existing (channel, external_id, direction) is simply absent from the result:
    that is how the caller learns a message is a repeat, even when another worker logged it a moment ago.
    """
    inserted: dict[Key, int] = {}
    stmt = insert_ignoring_conflicts(session, Contact, ("id", "channel", "external_id", "direction"))
    for part in row_chunks(rows):
        for cid, ch, ext, direction in await session.execute(stmt, part):
            inserted[(ch, ext, direction)] = cid
    reply_rollup.logged(session, rows, inserted)
    return inserted


@cache
def _existing_query(pg: bool, groups: int) -> Any:
    return select(Contact).where(
        keys_clause([Contact.channel, Contact.external_id, Contact.direction], vary=1, groups=groups, pg=pg)
    )


async def existing_contacts(session: AsyncSession, keys: Iterable[Key]) -> dict[Key, Contact]:
    found: dict[Key, Contact] = {}
    for part in chunks(sorted(set(keys))):
        groups, params = keys_params(part, vary=1)
        for contact in await session.scalars(_existing_query(is_pg(session), groups), params):
            found[(contact.channel, contact.external_id, contact.direction)] = contact
    return found


async def update_contacts(session: AsyncSession, changes: list[dict[str, Any]]) -> None:
    """Set ticket, customer, NLU result ... on contacts logged earlier in the same transaction (by id)."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        by_columns.setdefault(tuple(sorted(change)), []).append(change)
    for group in by_columns.values():
        await session.execute(_update_by_id(), group)


@cache
def _update_by_id() -> Any:
    return update(Contact)  # an ORM bulk UPDATE: each parameter set names its row by primary key


async def tickets_for_external_ids(session: AsyncSession, channel: str, external_ids: list[str]) -> dict[str, int]:
    """Ticket of each message id we sent or received on a channel (email threading)."""
    found: dict[str, int] = {}
    for part in chunks(sorted(set(external_ids))):
        rows = await session.execute(
            select(Contact.external_id, Contact.ticket_id).where(
                Contact.channel == channel, Contact.external_id.in_(part), Contact.ticket_id.is_not(None)
            )
        )
        for ext, tid in rows:
            found[ext] = tid
    return found


async def contact_by_external_id(session: AsyncSession, channel: str, external_id: str) -> Contact | None:
    return await session.scalar(
        select(Contact).where(Contact.channel == channel, Contact.external_id == external_id).order_by(Contact.id)
    )


async def customer_history(
    session: AsyncSession, customer_id: int, *, limit: int = 10, offset: int = 0
) -> list[Contact]:
    """A customer's contacts across all channels, newest first."""
    rows = await session.scalars(
        select(Contact)
        .where(Contact.customer_id == customer_id, Contact.desk == false())
        .order_by(Contact.created_at.desc(), Contact.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows)


async def ticket_transcript(session: AsyncSession, ticket_id: int, *, limit: int = 200) -> list[Contact]:
    """The conversation of a ticket, oldest first: its customer contacts (what the desk said about it is not)."""
    rows = await session.scalars(
        select(Contact)
        .where(Contact.ticket_id == ticket_id, Contact.customer_id.is_not(None), Contact.desk == false())
        .order_by(Contact.created_at, Contact.id)
        .limit(limit)
    )
    return list(rows)


async def thread_message_ids(session: AsyncSession, ticket_id: int, channel: str, *, limit: int = 20) -> list[str]:
    """The ticket's message ids on one channel, oldest first (for email References headers)."""
    rows = await session.scalars(
        select(Contact.external_id)
        .where(Contact.ticket_id == ticket_id, Contact.channel == channel)
        .order_by(Contact.created_at.desc(), Contact.id.desc())
        .limit(limit)
    )
    return list(reversed(list(rows)))


@cache
def _threads_query(pg: bool, limit: int) -> Any:
    ranked = (
        select(
            Contact.ticket_id,
            Contact.channel,
            Contact.external_id,
            func.row_number()
            .over(
                partition_by=(Contact.ticket_id, Contact.channel),
                order_by=(Contact.created_at.desc(), Contact.id.desc()),
            )
            .label("newest"),
        )
        .where(in_values(Contact.ticket_id, "ids", pg=pg), Contact.channel.in_(bindparam("channels", expanding=True)))
        .subquery()
    )
    return select(ranked.c.ticket_id, ranked.c.channel, ranked.c.external_id, ranked.c.newest).where(
        ranked.c.newest <= limit
    )


async def thread_message_ids_many(
    session: AsyncSession, ticket_ids: Iterable[int], channels: Iterable[str], *, limit: int = 20
) -> dict[tuple[int, str], list[str]]:
    """`thread_message_ids` of many tickets at once: (ticket, channel) → message ids, oldest first, for every
    pair asked (empty when the ticket has none on that channel)."""
    ids, names = sorted(set(ticket_ids)), sorted(set(channels))
    newest_first: dict[tuple[int, str], list[tuple[int, str]]] = {(t, c): [] for t in ids for c in names}
    query = _threads_query(is_pg(session), limit)
    for part in chunks(ids):
        for ticket_id, channel, external_id, rank in await session.execute(query, {"ids": part, "channels": names}):
            newest_first[(ticket_id, channel)].append((rank, external_id))
    return {key: [ext for _, ext in sorted(found, reverse=True)] for key, found in newest_first.items()}


def _filtered(
    q: Any, customer_id: int | None, channel: str | None, since: datetime | None, until: datetime | None,
    include_desk: bool = False,
) -> Any:
    """The contact-log filters, shared by the table view, the export and the count: customer contacts, plus
    desk traffic when `include_desk`."""
    if not include_desk:
        q = q.where(Contact.desk == false())
    if customer_id is not None:
        q = q.where(Contact.customer_id == customer_id)
    if channel:
        q = q.where(Contact.channel == channel)
    if since is not None:
        q = q.where(Contact.created_at >= since)
    if until is not None:
        q = q.where(Contact.created_at < until)
    return q


def _log_query(
    customer_id: int | None, channel: str | None, since: datetime | None, until: datetime | None, include_desk: bool
) -> Any:
    q = select(Contact, Customer.tier).join(Customer, Customer.id == Contact.customer_id, isouter=True)
    return _filtered(q, customer_id, channel, since, until, include_desk)


async def recent_contacts(
    session: AsyncSession,
    *,
    customer_id: int | None = None,
    channel: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
    include_desk: bool = False,
) -> list[tuple[Contact, str | None]]:
    q = _log_query(customer_id, channel, since, None, include_desk).order_by(
        Contact.created_at.desc(), Contact.id.desc()
    )
    return [(c, tier) for c, tier in (await session.execute(q.limit(limit))).all()]


async def stream_contacts(
    session: AsyncSession,
    *,
    customer_id: int | None = None,
    channel: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_desk: bool = False,
    page: int = 5000,
) -> AsyncIterator[dict[str, Any]]:
    """Every matching contact in id order, in the export's columns (of the NLU result, its intent; with desk
    traffic, a last column `desk`), fetched page by page (keyset), so memory stays flat at any size (inside
    `one_pass` on SQLite, see there)."""
    last_id = 0
    base = _export_query(include_desk)
    while True:
        q = _filtered(base.where(Contact.id > last_id), customer_id, channel, since, until, include_desk)
        result = await session.execute(q.order_by(Contact.id).limit(page))
        names = tuple(result.keys())
        rows = result.all()
        if not rows:
            return
        for row in rows:
            yield dict(zip(names, row, strict=True))
        last_id = rows[-1][0]


@cache
def _export_query(with_desk: bool) -> Any:
    columns = (
        Contact.id,
        Contact.channel,
        Contact.external_id,
        Contact.direction,
        Contact.author,
        Contact.address,
        Contact.customer_id,
        Contact.agent_id,
        Contact.ticket_id,
        Contact.text,
        Contact.nlu["intent"].as_string().label("intent"),
        Contact.created_at,
    )
    return select(*columns, Contact.desk) if with_desk else select(*columns)


@asynccontextmanager
async def one_pass(session: AsyncSession) -> AsyncIterator[None]:
    """For a single pass over the whole log (an export): on SQLite, read through the page cache instead of the
    connection's memory map. Mapped pages count as the process's own memory, so an export of a large log would
    seem to grow to the size of the file."""
    if dialect(session) != "sqlite":
        yield
        return
    mapped = await session.scalar(text("PRAGMA mmap_size"))
    await session.execute(text("PRAGMA mmap_size=0"))
    try:
        yield
    finally:
        await session.execute(text(f"PRAGMA mmap_size={int(mapped or 0)}"))


async def count_contacts(
    session: AsyncSession,
    *,
    customer_id: int | None = None,
    channel: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_desk: bool = False,
) -> int:
    q = _filtered(select(func.count(Contact.id)), customer_id, channel, since, until, include_desk)
    return int(await session.scalar(q) or 0)


async def last_inbound(session: AsyncSession, ticket_id: int) -> Contact | None:
    """The customer's latest message on a ticket: replies go back on its channel, to its address."""
    return await session.scalar(
        select(Contact)
        .where(Contact.ticket_id == ticket_id, Contact.direction == "in", Contact.author == "customer")
        .order_by(Contact.created_at.desc(), Contact.id.desc())
        .limit(1)
    )


async def channel_logged(session: AsyncSession, channel: str) -> bool:
    """Whether any contact was ever logged on `channel` (a channel name the log knows)."""
    return await session.scalar(select(Contact.id).where(Contact.channel == channel).limit(1)) is not None

"""The outbox: replies written with the contact that caused them, delivered later with retries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, String, bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import Contact, OutboxItem, Ticket, UtcDateTime, now
from crm_store.repositories import reply_rollup
from crm_store.repositories._sql import chunks, dialect, in_values, insert_ignoring_conflicts, is_pg, row_chunks


@dataclass(slots=True)
class Reply:
    """An outbox row as its sender needs it: a plain value, cheap to make for every reply a batch writes."""

    id: int
    idempotency_key: str
    channel: str
    recipient: str
    text: str
    author: str
    attempts: int
    subject: str = ""
    reply_to: str = ""
    buttons: list[list[str]] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    ticket_id: int | None = None
    customer_id: int | None = None
    agent_id: int | None = None
    audience: str = "customer"
    """customer | desk | event (see OutboxItem.audience)."""

    @classmethod
    def from_row(cls, item_id: int, row: dict[str, Any]) -> Reply:
        """From the values an outbox row was inserted with."""
        return cls(item_id, *(row.get(name, _DEFAULTS.get(name)) for name in _REPLY_FIELDS))

    @classmethod
    def of(cls, item: OutboxItem) -> Reply:
        return cls(item.id, *(getattr(item, name) for name in _REPLY_FIELDS))


_REPLY_FIELDS = ("idempotency_key", "channel", "recipient", "text", "author", "attempts", "subject", "reply_to",
                 "buttons", "meta", "ticket_id", "customer_id", "agent_id", "audience")

_DEFAULTS = {"audience": "customer"}


async def enqueue(session: AsyncSession, items: list[dict[str, Any]]) -> dict[str, int]:
    """Add outbox rows; a repeated idempotency key is ignored (a retried transaction never sends twice).
    Returns the id of each row added now, by idempotency key."""
    added: dict[str, int] = {}
    stmt = insert_ignoring_conflicts(session, OutboxItem, ("id", "idempotency_key"))
    for part in row_chunks(items):
        for item_id, key in await session.execute(stmt, part):
            added[key] = item_id
    return added


@cache
def _any_due_query(pg: bool) -> Any:
    return (
        select(OutboxItem.id)
        .where(
            OutboxItem.status == "pending",
            OutboxItem.next_attempt_at <= bindparam("at"),
            in_values(OutboxItem.channel, "channels", pg=pg),
        )
        .limit(1)
    )


async def any_due(session: AsyncSession, *, channels: list[str], at: datetime | None = None) -> bool:
    """Whether `claim_due` would find anything: a read, so a worker with nothing to claim takes no write lock."""
    found = await session.scalar(_any_due_query(is_pg(session)), {"at": at or now(), "channels": channels})
    return found is not None


async def claim_due(
    session: AsyncSession,
    *,
    limit: int,
    lease: timedelta,
    at: datetime | None = None,
    channels: list[str] | None = None,
    sender: str | None = None,
) -> list[Reply]:
    """Take up to `limit` due items and lease them to `sender`, so another worker skips them until the lease
    runs out (the sender renews it while it lives, see `renew_leases`).

    Only items for `channels` (those this process can send on) are taken: a process without a channel leaves its
    replies to one that has it. On PostgreSQL rows are locked with SKIP LOCKED; SQLite has one writer, so the
    lease alone suffices.
    """
    at = at or now()
    q = (
        select(OutboxItem)
        .where(OutboxItem.status == "pending", OutboxItem.next_attempt_at <= at)
        .where(OutboxItem.channel.in_(channels) if channels is not None else True)
        .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
        .limit(limit)
    )
    if dialect(session) == "postgresql":
        q = q.with_for_update(skip_locked=True)
    items = list(await session.scalars(q))
    for item in items:
        item.next_attempt_at = at + lease
        item.attempts += 1
        item.claimed_by = sender
    await session.flush()
    return [Reply.of(item) for item in items]


async def mark_retry(session: AsyncSession, item_id: int, error: str, next_at: datetime) -> None:
    await session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item_id)
        .values(last_error=error[:2000], next_attempt_at=next_at, claimed_by=None)
    )


async def renew_leases(session: AsyncSession, sender: str, ids: list[int], until: datetime) -> int:
    """The sender's heartbeat: the pending rows it holds (`ids`, still leased to it) stay its own until `until`."""
    renewed = 0
    for part in chunks(ids, 1000):
        result = await session.execute(
            update(OutboxItem)
            .where(OutboxItem.claimed_by == sender, OutboxItem.status == "pending", OutboxItem.id.in_(part))
            .values(next_attempt_at=until)
        )
        renewed += result.rowcount or 0
    return renewed


async def take_back_own(session: AsyncSession, sender: str, until: datetime) -> list[Reply]:
    """The rows `sender` still held when it last stopped without releasing them (a crash): leased to it again
    until `until`, oldest first, to be sent before anything else."""
    q = select(OutboxItem).where(OutboxItem.claimed_by == sender, OutboxItem.status == "pending")
    if is_pg(session):
        q = q.with_for_update(skip_locked=True)
    items = list(await session.scalars(q.order_by(OutboxItem.id)))
    for item in items:
        item.next_attempt_at = until
    await session.flush()
    return [Reply.of(item) for item in items]


async def release_leases(session: AsyncSession, sender: str, ids: list[int], at: datetime) -> int:
    """Give held rows back (a clean stop): due at `at` for any sender."""
    result = await session.execute(
        update(OutboxItem)
        .where(OutboxItem.claimed_by == sender, OutboxItem.status == "pending", OutboxItem.id.in_(ids))
        .values(next_attempt_at=at, claimed_by=None)
    )
    return result.rowcount or 0


async def mark_failed(session: AsyncSession, item_id: int, error: str) -> OutboxItem | None:
    item = await session.get(OutboxItem, item_id)
    if item is None:
        return None
    item.status = "failed"
    item.last_error = error[:2000]
    item.claimed_by = None
    if item.ticket_id is not None and item.author != "system":
        await session.execute(
            update(Ticket).where(Ticket.id == item.ticket_id).values(delivery_problem=f"{item.channel}: {error[:500]}")
        )
    return item


async def counts_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(OutboxItem.status, func.count(OutboxItem.id)).group_by(OutboxItem.status))
    return {s: n for s, n in rows.all()}


async def list_items(session: AsyncSession, *, status: str | None = None, limit: int = 50) -> list[OutboxItem]:
    q = select(OutboxItem).order_by(OutboxItem.id.desc()).limit(limit)
    if status:
        q = q.where(OutboxItem.status == status)
    return list(await session.scalars(q))


async def item_by_external_id(
    session: AsyncSession, channel: str, recipient: str, external_id: str
) -> OutboxItem | None:
    """The outbox row that produced a message we sent (to map an agent's reply to its ticket)."""
    return await session.scalar(
        select(OutboxItem).where(
            OutboxItem.channel == channel, OutboxItem.recipient == recipient, OutboxItem.external_id == external_id
        )
    )


async def buttons_by_external_id(
    session: AsyncSession, channel: str, recipient: str, external_ids: list[str]
) -> dict[str, list[list[str]]]:
    """The buttons ([label, data] pairs) sent with each of these messages of ours, for those that had any."""
    found: dict[str, list[list[str]]] = {}
    for part in chunks(sorted(set(external_ids))):
        rows = await session.execute(
            select(OutboxItem.external_id, OutboxItem.buttons).where(
                OutboxItem.channel == channel, OutboxItem.recipient == recipient, OutboxItem.external_id.in_(part)
            )
        )
        for external_id, buttons in rows:
            if external_id and buttons:
                found[external_id] = buttons
    return found


async def next_due(session: AsyncSession) -> datetime | None:
    return await session.scalar(select(func.min(OutboxItem.next_attempt_at)).where(OutboxItem.status == "pending"))


async def bot_replies_since(session: AsyncSession, customer_id: int, since: datetime) -> int:
    """How many bot answers a customer got lately (the per-sender rate limit that stops reply storms)."""
    return int(
        await session.scalar(
            select(func.count(OutboxItem.id)).where(
                OutboxItem.customer_id == customer_id, OutboxItem.author == "bot", OutboxItem.created_at >= since
            )
        )
        or 0
    )


@cache
def _unsent_query(pg: bool) -> Any:
    q = select(OutboxItem.id).where(in_values(OutboxItem.id, "ids", pg=pg), OutboxItem.status != "sent")
    return q.with_for_update() if pg else q


@cache
def _mark_sent() -> Any:
    table = OutboxItem.__table__
    return (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            status="sent", external_id=bindparam("b_ext"), sent_at=bindparam("b_at"), last_error=None, claimed_by=None
        )
    )


@cache
def _mark_sent_and_log() -> Any:
    """PostgreSQL, one statement for a group of delivered replies: lock the rows not sent yet, mark them sent, and
    log each as an outbound contact made of its own columns (what `_outbound_contact` builds on SQLite). Rows are
    locked in id order, as every other statement that locks several outbox rows does (the heartbeat, the claim):
    an order of its own could deadlock with them. Returns one row (NULL, how many were marked now), then one per
    agent (agent, replies logged now) for the reply rollup."""
    return text(
        """
WITH locked AS (
    SELECT id FROM outbox WHERE id = ANY(:ids) AND status != 'sent' ORDER BY id FOR UPDATE
), marked AS (
    UPDATE outbox SET status = 'sent', external_id = sent.ext, sent_at = :at, last_error = NULL, claimed_by = NULL
    FROM locked JOIN unnest(:ids, :exts) AS sent(id, ext) ON sent.id = locked.id
    WHERE outbox.id = locked.id
    RETURNING outbox.id, outbox.channel, sent.ext, outbox.author, outbox.recipient, outbox.audience,
              outbox.customer_id, outbox.agent_id, outbox.ticket_id, outbox.text, outbox.subject, outbox.reply_to
), logged AS (
    INSERT INTO contacts (channel, external_id, direction, author, address, customer_id, agent_id, ticket_id,
                          text, subject, attachments, created_at, logged_at, thread_ref, truncated, desk)
    SELECT channel, ext, 'out', author, recipient, CASE WHEN audience = 'desk' THEN NULL ELSE customer_id END,
           agent_id, CASE WHEN audience = 'desk' THEN NULL ELSE ticket_id END, text, NULLIF(subject, ''),
           '[]'::jsonb, :at, :at, NULLIF(reply_to, ''), false, audience = 'desk'
    FROM marked WHERE audience != 'event' ORDER BY id
    ON CONFLICT DO NOTHING
    RETURNING agent_id, author, desk
)
SELECT NULL::bigint AS agent_id, count(*) AS n FROM marked
UNION ALL
SELECT agent_id, count(*) FROM logged WHERE author = 'agent' AND NOT desk AND agent_id IS NOT NULL GROUP BY agent_id
"""
    ).bindparams(
        bindparam("ids", type_=postgresql.ARRAY(BigInteger)),
        bindparam("exts", type_=postgresql.ARRAY(String)),
        bindparam("at", type_=UtcDateTime),
    )


async def mark_sent_many(
    session: AsyncSession, sent: list[tuple[Reply, str]], *, at: datetime | None = None
) -> int:
    """Mark delivered items sent and log each as an outbound contact. Items someone else already marked sent (a
    lease that ran out mid-send) are skipped. Returns how many were marked now."""
    if not sent:
        return 0
    at = at or now()
    if is_pg(session):
        params = {"ids": [item.id for item, _ in sent], "exts": [ext for _, ext in sent], "at": at}
        marked, replies = 0, {}
        for agent_id, n in await session.execute(_mark_sent_and_log(), params):
            if agent_id is None:
                marked = n
            else:
                replies[agent_id] = n
        reply_rollup.count_replies(session, at, replies)
        return marked
    open_ids = set(await session.scalars(_unsent_query(False), {"ids": [item.id for item, _ in sent]}))
    todo = [(item, ext) for item, ext in sent if item.id in open_ids]
    if not todo:
        return 0
    await session.execute(_mark_sent(), [{"b_id": item.id, "b_ext": ext, "b_at": at} for item, ext in todo])
    contacts = [_outbound_contact(item, ext, at) for item, ext in todo if item.audience != "event"]
    if contacts:  # which replies were logged now: the rollup counts them
        stmt = insert_ignoring_conflicts(session, Contact, reply_rollup.KEY_COLUMNS)
        reply_rollup.logged(session, contacts, {tuple(r) for r in await session.execute(stmt, contacts)})
    return len(todo)


def _outbound_contact(item: Reply, external_id: str, at: datetime) -> dict[str, Any]:
    """The contact a delivered item is logged as (a webhook delivery is an event, not a contact; a message to
    agents is logged as desk traffic, not as the customer's conversation)."""
    internal = item.audience == "desk"
    return {
        "channel": item.channel,
        "external_id": external_id,
        "direction": "out",
        "author": item.author,
        "address": item.recipient,
        "customer_id": None if internal else item.customer_id,
        "agent_id": item.agent_id,
        "ticket_id": None if internal else item.ticket_id,
        "text": item.text,
        "subject": item.subject or None,
        "attachments": [],
        "created_at": at,
        "logged_at": at,
        "thread_ref": item.reply_to or None,
        "truncated": False,
        "desk": internal,
    }

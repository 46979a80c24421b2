"""The web inbox's reads and keys: what the live stream reads on every tick (the grouped counts of the active
tickets and a few marks of each ticket someone has open, in one statement however many pages are watching), and
the written form keys that make a ticket form write once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, cast, delete, func, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.inbox_keys import InboxFormKey
from crm_store.models import Contact, Note, Ticket, TicketEvent, now
from crm_store.repositories._sql import insert_ignoring_conflicts

ACTIVE = ("open", "pending")


@dataclass
class LiveState:
    """`groups`: (queue, tier at open, assignee, status, tickets) of the active tickets; `marks`: per watched
    ticket, the newest contact, event and note ids and when it last changed (None when it no longer exists)."""

    groups: list[tuple[str, str, int | None, str, int]] = field(default_factory=list)
    marks: dict[int, tuple[Any, ...] | None] = field(default_factory=dict)


def _no_int() -> Any:
    return cast(null(), Integer)


def _no_str() -> Any:
    return cast(null(), String)


async def live_state(session: AsyncSession, ticket_ids: list[int]) -> LiveState:
    """One statement: the groups' branch and, when tickets are watched, their marks' branch (UNION ALL)."""
    groups = (
        select(
            literal("g").label("kind"),
            Ticket.queue,
            Ticket.tier_at_open,
            Ticket.assignee_id,
            Ticket.status,
            func.count().label("n"),
            _no_int().label("ticket_id"),
            _no_int().label("contact_id"),
            _no_int().label("event_id"),
            _no_int().label("note_id"),
            _no_str().label("updated"),
        )
        .where(Ticket.status.in_(ACTIVE))
        .group_by(Ticket.queue, Ticket.tier_at_open, Ticket.assignee_id, Ticket.status)
    )
    statement: Any = groups
    if ticket_ids:
        newest = [
            select(func.max(model.id)).where(model.ticket_id == Ticket.id).scalar_subquery()
            for model in (Contact, TicketEvent, Note)
        ]
        marks = select(
            literal("m"),
            _no_str(),
            _no_str(),
            _no_int(),
            _no_str(),
            _no_int(),
            Ticket.id,
            *newest,
            cast(Ticket.updated_at, String),
        ).where(Ticket.id.in_(ticket_ids))
        statement = union_all(groups, marks)
    state = LiveState(marks=dict.fromkeys(ticket_ids))
    for row in (await session.execute(statement)).all():
        if row[0] == "g":
            state.groups.append((row[1], row[2], row[3], row[4], int(row[5])))
        else:
            state.marks[int(row[6])] = (row[7], row[8], row[9], row[10])
    return state


async def write_form_key(session: AsyncSession, key: str, ticket_id: int) -> bool:
    """Record a form key in the caller's transaction: False when it was written already (on PostgreSQL a
    concurrent post of the same key waits here for the first one's transaction, then finds it)."""
    stmt = insert_ignoring_conflicts(session, InboxFormKey, returning=("key",))
    found = await session.execute(stmt, {"key": key, "ticket_id": ticket_id, "written_at": now()})
    return found.first() is not None


async def form_key_written(session: AsyncSession, key: str) -> bool:
    return await session.scalar(select(InboxFormKey.key).where(InboxFormKey.key == key)) is not None


async def forget_form_keys(session: AsyncSession, before: datetime) -> int:
    """Drop the keys written before `before` (no browser resends a form that old)."""
    result = await session.execute(delete(InboxFormKey).where(InboxFormKey.written_at < before))
    return int(result.rowcount or 0)

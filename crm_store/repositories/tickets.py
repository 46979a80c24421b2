"""Tickets, their audit trail and notes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import event, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from crm_store.errors import NotFound
from crm_store.models import Contact, Note, Ticket, TicketEvent, now
from crm_store.repositories._sql import chunks, dialect, in_values, is_pg, next_id, row_chunks

ACTIVE = ("open", "pending")


async def active_tickets(session: AsyncSession, customer_ids: Iterable[int]) -> dict[int, Ticket]:
    """Each customer's newest open or pending ticket (the conversation a new message joins)."""
    found: dict[int, Ticket] = {}
    for part in chunks(sorted(set(customer_ids))):
        rows = await session.scalars(
            select(Ticket).where(Ticket.customer_id.in_(part), Ticket.status.in_(ACTIVE)).order_by(Ticket.id)
        )
        for ticket in rows:
            found[ticket.customer_id] = ticket
    return found


@cache
def _conversations_query(pg: bool) -> Any:
    newest = (
        select(func.max(Ticket.id)).where(in_values(Ticket.customer_id, "ids", pg=pg)).group_by(Ticket.customer_id)
    ).scalar_subquery()
    return (
        select(Ticket)
        .where(in_values(Ticket.customer_id, "ids", pg=pg), or_(Ticket.status.in_(ACTIVE), Ticket.id.in_(newest)))
        .order_by(Ticket.id)
    )


async def conversations(
    session: AsyncSession, customer_ids: Iterable[int]
) -> tuple[dict[int, Ticket], dict[int, Ticket]]:
    """Each customer's open-or-pending ticket and most recent ticket, in one query."""
    active: dict[int, Ticket] = {}
    latest: dict[int, Ticket] = {}
    for part in chunks(sorted(set(customer_ids))):
        for ticket in await session.scalars(_conversations_query(is_pg(session)), {"ids": part}):
            latest[ticket.customer_id] = ticket  # ordered by id: the last one seen is the newest
            if ticket.status in ACTIVE:
                active[ticket.customer_id] = ticket
    return active, latest


async def get_ticket(session: AsyncSession, ticket_id: int) -> Ticket:
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"ticket T-{ticket_id} not found")
    return ticket


async def tickets_by_ids(session: AsyncSession, ids: Iterable[int]) -> dict[int, Ticket]:
    found: dict[int, Ticket] = {}
    for part in chunks(sorted(set(ids))):
        for t in await session.scalars(select(Ticket).where(Ticket.id.in_(part))):
            found[t.id] = t
    return found


async def open_tickets(session: AsyncSession, rows: list[dict[str, Any]]) -> list[Ticket]:
    """Open many tickets in a few flushes; returns them, in order, as live objects of the session."""
    tickets = [Ticket(**row) for row in rows]
    if dialect(session) == "sqlite" and len(tickets) > 1:
        # SQLite's flush inserts row by row to learn each id; for several, assign them under the write lock
        # (see insert_returning_ids): one max(id) query and one multi-row INSERT
        start = await next_id(session, Ticket)
        for i, ticket in enumerate(tickets):
            ticket.id = start + i
    session.add_all(tickets)
    for part in row_chunks(tickets):  # a few statement texts, however many tickets a batch opens
        await session.flush(part)
    return tickets


async def open_ticket(session: AsyncSession, **fields: Any) -> Ticket:
    ticket = Ticket(**fields)
    session.add(ticket)
    await session.flush()
    return ticket


_EVENTS = "tierdesk.pending_ticket_events"


def add_event(
    session: AsyncSession,
    ticket_id: int,
    kind: str,
    *,
    actor: str = "system",
    agent_id: int | None = None,
    at: datetime | None = None,
    **data: Any,
) -> None:
    """Record a ticket event; events are written in one statement when the transaction commits."""
    session.sync_session.info.setdefault(_EVENTS, []).append(
        {"ticket_id": ticket_id, "kind": kind, "actor": actor, "agent_id": agent_id, "at": at or now(), "data": data}
    )


_WRITES = "tierdesk.ticket_event_writes"


def _write_pending_events(session: Session) -> None:
    rows = session.info.pop(_EVENTS, None)
    if rows:
        session.execute(insert(TicketEvent.__table__), rows)
        session.info[_WRITES] = session.info.get(_WRITES, 0) + 1


@event.listens_for(Session, "before_commit")
def _events_before_commit(session: Session) -> None:
    _write_pending_events(session)


@event.listens_for(Session, "after_rollback")
def _events_dropped_on_rollback(session: Session) -> None:
    session.info.pop(_EVENTS, None)


async def flush_events(session: AsyncSession) -> None:
    """Write pending events now (to read them back inside the same transaction)."""
    await session.run_sync(_write_pending_events)


async def ticket_events(session: AsyncSession, ticket_id: int) -> list[TicketEvent]:
    await flush_events(session)
    rows = await session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.at, TicketEvent.id)
    )
    return list(rows)


class EventKinds:
    """A batch's look-up of which of some kinds of event its tickets had, oldest first: the stored ones loaded
    for all the batch's tickets in one query, the ones this transaction adds seen as they are added. A ticket
    not loaded, or a look-up after events were written meanwhile, reads the table."""

    def __init__(self, kinds: Iterable[str]) -> None:
        self.kinds = tuple(kinds)
        self._stored: dict[int, list[str]] = {}
        self._writes: int | None = None

    async def load(self, session: AsyncSession, ticket_ids: Iterable[int]) -> None:
        ids = sorted(set(ticket_ids) - self._stored.keys())
        if not ids:
            return
        await flush_events(session)
        found: dict[int, list[str]] = {i: [] for i in ids}
        for part in chunks(ids):
            rows = await session.execute(
                select(TicketEvent.ticket_id, TicketEvent.kind)
                .where(TicketEvent.ticket_id.in_(part), TicketEvent.kind.in_(self.kinds))
                .order_by(TicketEvent.ticket_id, TicketEvent.at, TicketEvent.id)
            )
            for ticket_id, kind in rows:
                found[ticket_id].append(kind)
        self._stored.update(found)
        self._writes = session.sync_session.info.get(_WRITES, 0)

    def opened(self, ticket_ids: Iterable[int]) -> None:
        """Tickets this transaction opened: no stored events."""
        for ticket_id in ticket_ids:
            self._stored.setdefault(ticket_id, [])

    async def of(self, session: AsyncSession, ticket_id: int) -> list[str]:
        info = session.sync_session.info
        if info.get(_WRITES, 0) != self._writes:  # written by someone else meanwhile: no longer known here
            return [e.kind for e in await ticket_events(session, ticket_id) if e.kind in self.kinds]
        stored = self._stored.get(ticket_id)
        if stored is None:  # not loaded: read it, keeping what the others have pending
            for e in info.get(_EVENTS, ()):
                if e["ticket_id"] in self._stored and e["kind"] in self.kinds:
                    self._stored[e["ticket_id"]].append(e["kind"])
            kinds = [e.kind for e in await ticket_events(session, ticket_id) if e.kind in self.kinds]
            self._stored[ticket_id], self._writes = kinds, info.get(_WRITES, 0)
            return list(kinds)
        added = [e["kind"] for e in info.get(_EVENTS, ()) if e["ticket_id"] == ticket_id and e["kind"] in self.kinds]
        return stored + added


async def customer_tickets(session: AsyncSession, customer_id: int, *, active_only: bool = False) -> list[Ticket]:
    q = select(Ticket).where(Ticket.customer_id == customer_id)
    if active_only:
        q = q.where(Ticket.status.in_(ACTIVE))
    return list(await session.scalars(q.order_by(Ticket.id.desc()).limit(50)))


@cache
def load_by_assignee() -> Any:
    """(assignee_id, n): open or pending tickets per assigned agent, the load routing balances."""
    return (
        select(Ticket.assignee_id, func.count(Ticket.id).label("n"))
        .where(Ticket.status.in_(ACTIVE), Ticket.assignee_id.is_not(None))
        .group_by(Ticket.assignee_id)
    )


async def update_if(session: AsyncSession, ticket_id: int, guard: dict[str, Any], changes: dict[str, Any]) -> bool:
    """Write `changes` to the ticket only if its `guard` fields still have those values (None: IS NULL); False
    when a concurrent change made it match nothing."""
    conditions = [Ticket.id == ticket_id]
    for name, value in guard.items():
        column = getattr(Ticket, name)
        conditions.append(column.is_(None) if value is None else column == value)
    result = await session.execute(
        update(Ticket).where(*conditions).values(**changes).execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


async def add_note(
    session: AsyncSession, *, customer_id: int, text: str, ticket_id: int | None = None, agent_id: int | None = None
) -> Note:
    note = Note(customer_id=customer_id, ticket_id=ticket_id, agent_id=agent_id, text=text)
    session.add(note)
    await session.flush()
    return note


async def notes_of(session: AsyncSession, customer_id: int, *, limit: int = 10) -> list[Note]:
    rows = await session.scalars(
        select(Note)
        .where(Note.customer_id == customer_id)
        .order_by(Note.created_at.desc(), Note.id.desc())
        .limit(limit)
    )
    return list(rows)


async def active_groups(session: AsyncSession) -> list[tuple[str, str, int | None, str, int]]:
    """(queue, tier at open, assignee, status, tickets) of the open and pending tickets: one grouped read that a
    caller filters by what its viewer may see."""
    rows = await session.execute(
        select(Ticket.queue, Ticket.tier_at_open, Ticket.assignee_id, Ticket.status, func.count())
        .where(Ticket.status.in_(ACTIVE))
        .group_by(Ticket.queue, Ticket.tier_at_open, Ticket.assignee_id, Ticket.status)
    )
    return [tuple(row) for row in rows.all()]


async def ticket_marks(session: AsyncSession, ticket_id: int) -> tuple[Any, ...]:
    """The newest contact, event and note ids of a ticket and when it last changed: a few numbers that change
    whenever its page would."""
    contacts = await session.scalar(select(func.max(Contact.id)).where(Contact.ticket_id == ticket_id))
    events = await session.scalar(select(func.max(TicketEvent.id)).where(TicketEvent.ticket_id == ticket_id))
    notes = await session.scalar(select(func.max(Note.id)).where(Note.ticket_id == ticket_id))
    updated = await session.scalar(select(Ticket.updated_at).where(Ticket.id == ticket_id))
    return contacts, events, notes, str(updated)

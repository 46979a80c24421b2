"""Agents' replies per UTC day (crm_store.rollups.agent_reply_days), kept in the transaction that logs them, so
the agents page, /report and the API read a row per agent and day instead of counting the contact log.

A reply (figures.AGENT_REPLY: outbound, by an agent, not desk traffic, with its agent) adds one to its
(day, agent) row. Replies are seen where the log is written: the contact inserts that skip a message logged
already (`logged`, given the keys the insert returned: a skipped row is counted by whoever logged it) and the
ORM's flush of a new Contact. Contacts are never deleted, and nothing changes the columns a reply is told by
(only the text, customer and ticket are rewritten), so the counts only grow. A bulk load writing contacts with
SQL alone rebuilds afterwards (`rebuild_on`).

As with the ticket rollups, the counts are collected per session and written at commit (before_commit): one
upsert in key order, so two transactions adding to the same days take their row locks in the same order, and
each holds them only while it commits. A rollback drops them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, event, false, func, inspect, literal_column, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from crm_store.models import Contact
from crm_store.repositories._sql import adding_upserts, as_utc, utc_date
from crm_store.rollups import agent_reply_days

PENDING = "tierdesk.reply_rollup"
Key = tuple[str, str, str]
"""A contact's (channel, external id, direction), as an insert returns it."""
KEY_COLUMNS = ("channel", "external_id", "direction")

AGENT_REPLY = (Contact.direction == literal_column("'out'"), Contact.author == literal_column("'agent'"),
               Contact.desk == false())
"""A person's reply to a customer, written as the partial index ix_contacts_agent_replies_at is (literals, so both
databases see that the index applies)."""


def is_reply(row: Mapping[str, Any]) -> bool:
    """Whether a contact row (as inserted: omitted columns take their defaults) is an agent's reply."""
    return (row.get("direction") == "out" and row.get("author", "customer") == "agent"
            and not row.get("desk", False) and row.get("agent_id") is not None)


def _count(session: Session | AsyncSession, replies: Iterable[tuple[datetime, int]]) -> None:
    pending: dict[tuple[date, int], int] = session.info.setdefault(PENDING, {})
    for at, agent_id in replies:
        key = (as_utc(at).date(), int(agent_id))
        pending[key] = pending.get(key, 0) + 1


def logged(session: AsyncSession, rows: Iterable[Mapping[str, Any]], inserted: Collection[Key]) -> None:
    """Count the agents' replies among contact rows just inserted: those whose key is in `inserted`, the keys the
    insert returned (a row it skipped was logged before, and counted then)."""
    found = []
    for row in rows:
        if is_reply(row) and tuple(row[k] for k in KEY_COLUMNS) in inserted:
            if row.get("created_at") is None:
                raise ValueError("an agent's reply is logged with its time (its day is counted before the insert)")
            found.append((row["created_at"], row["agent_id"]))
    _count(session, found)


def count_replies(session: AsyncSession, at: datetime, per_agent: Mapping[int, int]) -> None:
    """Count replies logged now by SQL alone (`outbox.mark_sent_many` on PostgreSQL): {agent: how many}."""
    _count(session, [(at, agent_id) for agent_id, n in per_agent.items() for _ in range(n)])


def write_counts(conn: Connection, counts: Mapping[tuple[date, int], int], *, empty: bool = False) -> None:
    """Add the counts ({(day, agent): n}) to agent_reply_days: an upsert per 512 rows at most in key order, (agent, day)
    (into an `empty` table, a plain bulk insert)."""
    rows = [{"agent_id": a, "day": d, "replies": n} for a, d, n in sorted((a, d, n) for (d, a), n in counts.items())
            if n]
    if not rows:
        return
    if empty:
        conn.execute(agent_reply_days.insert(), rows)
        return
    for stmt in adding_upserts(conn.dialect.name, agent_reply_days, rows, ["replies"], size=512):
        conn.execute(stmt)


def _write_pending(session: Session) -> None:
    counts = session.info.pop(PENDING, None)
    if counts:
        write_counts(session.connection(), counts)


async def flush_pending(session: AsyncSession) -> None:
    """Write this transaction's counts now (a reader in the same transaction sees its own replies)."""
    if session.info.get(PENDING):
        await session.run_sync(_write_pending)


@event.listens_for(Contact, "after_insert")
def _on_insert(_mapper: Any, _conn: Connection, contact: Contact) -> None:
    """A Contact the ORM flushed (its defaults set by now)."""
    row = {c: getattr(contact, c) for c in ("direction", "author", "desk", "agent_id")}
    session = inspect(contact).session
    if session is not None and is_reply(row):
        _count(session, [(contact.created_at, contact.agent_id)])


@event.listens_for(Session, "before_commit")
def _on_commit(session: Session) -> None:
    session.flush()  # what the commit's own flush would log is counted first
    _write_pending(session)


@event.listens_for(Session, "after_soft_rollback")
def _on_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(PENDING, None)


def rebuild_on(conn: Connection) -> int:
    """Recount agent_reply_days from the contact log (the migration's backfill, a bulk load, a repair); returns
    the replies counted. On PostgreSQL contact writers wait meanwhile (SHARE lock), so none is counted twice or
    missed."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE contacts IN SHARE MODE")
    conn.execute(delete(agent_reply_days))
    day = utc_date(conn.dialect.name, Contact.created_at)
    rows = conn.execute(
        select(day, Contact.agent_id, func.count())
        .where(*AGENT_REPLY, Contact.agent_id.is_not(None)).group_by(day, Contact.agent_id)
    ).all()
    counts = {(d if isinstance(d, date) else date.fromisoformat(str(d)), int(a)): int(n) for d, a, n in rows}
    write_counts(conn, counts, empty=True)
    return sum(counts.values())


async def rebuild_reply_rollup(session: AsyncSession) -> int:
    """`rebuild_on` in the session's transaction (the caller commits)."""
    session.info.pop(PENDING, None)
    return await session.run_sync(lambda s: rebuild_on(s.connection()))


def logged_replies(since: datetime, until: datetime) -> Any:
    """(agent, replies) in [since, until) from the contact log's partial index (part-days; the exact recount)."""
    return (
        select(Contact.agent_id, func.count())
        .where(*AGENT_REPLY, Contact.agent_id.is_not(None), Contact.created_at >= since, Contact.created_at < until)
        .group_by(Contact.agent_id)
    )

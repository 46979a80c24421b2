"""The ticket rollups (crm_store.rollups), kept in the transaction of every ticket change, so the figures read
days and counters instead of the tickets.

Each ticket *contributes* to rows of the rollups, from its own fields alone (`contribute`): its opening day's
counts, its resolution day's "handled", its durations' histogram buckets, its backlog row. A change adds
(contribution after − contribution before), so at every commit the rollups equal a recount from the tickets
(`rebuild_on`). Changes are seen where they are written: the session's flush (a new ticket, a changed or deleted
one: before and after from the ORM's attribute history) and the ticket writer's guarded UPDATE (`changed`), which
bypasses the flush. A bulk load that writes tickets with SQL alone rebuilds afterwards.

The differences are collected per session and written at commit (before_commit), summed per row and sorted by
key: one multi-row upsert per table per transaction, and two transactions touching the same rows take their locks
in the same order. A rollback drops them. (The store uses no savepoints; one would need its own collection.)

Durations are kept in log buckets: `SLOTS` per doubling of seconds, bucket b covering [2^(b/SLOTS),
2^((b+1)/SLOTS)) s, and [0, 1) s below one second, each with its count and the sum of its durations in
milliseconds. A percentile read from summed buckets places a bucket's values evenly around their exact mean,
inside the bucket, so each ranked value (and the percentile interpolated between two) is within one bucket's
width of the exact one: under 2.2 % (`BUCKET_ERROR`), or under 1 s below one second; a bucket holding one
duration gives it exactly.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate
from typing import Any

from sqlalchemy import delete, event, inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.base import NO_VALUE, PASSIVE_NO_RESULT

from crm_store.models import Ticket
from crm_store.repositories._sql import adding_upserts, as_utc
from crm_store.rollups import DAY_COUNTERS, NOBODY, SLOTS, ticket_backlog, ticket_days, ticket_duration_days

ACTIVE = ("open", "pending")
MEASURES = ("first_response", "resolution")
DIMS = ("tier", "channel", "agent")
BUCKET_ERROR = 2 ** (1 / SLOTS) - 1
"""The largest relative error of a percentile read from the buckets (2.2 %)."""
SLOT_COLUMNS = tuple(f"b{i}" for i in range(SLOTS)) + tuple(f"s{i}" for i in range(SLOTS))
"""Counts of the buckets, then the sums of their durations in milliseconds."""
FACT_COLUMNS = (
    "id",
    "created_at",
    "source",
    "tier_at_open",
    "channel",
    "assignee_id",
    "queue",
    "status",
    "handoff_reason",
    "first_responded_at",
    "solved_at",
    "closed_at",
    "sla_breached_at",
    "csat",
    "first_response_due",
    "resolution_due",
)
"""The ticket columns a contribution depends on."""
PENDING = "tierdesk.ticket_rollup"
TABLES = {"d": (ticket_days, DAY_COUNTERS), "h": (ticket_duration_days, SLOT_COLUMNS), "b": (ticket_backlog, ("n",))}
"""Row kind of a difference's key → the table and its counter columns."""

Deltas = dict[tuple[Any, ...], list[int]]
"""(kind, *primary key) → counters to add."""


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the rollups count of one ticket."""

    created_at: datetime
    source: str
    tier: str
    channel: str
    agent_id: int
    queue: str
    status: str
    handed_off: bool
    first_responded_at: datetime | None
    solved_at: datetime | None
    closed_at: datetime | None
    sla_breached_at: datetime | None
    csat: int | None
    first_response_due: datetime | None
    resolution_due: datetime | None

    @property
    def counted(self) -> bool:
        return self.source != "imported"

    @property
    def resolved_at(self) -> datetime | None:
        """closed_at of a closed ticket, solved_at of a solved one (crm_store.repositories.figures.RESOLVED_AT)."""
        return {"closed": self.closed_at, "solved": self.solved_at}.get(self.status)

    def breached(self) -> bool:
        """A breach the facts decide whenever the figures are read. An unresolved ticket with no mark can still
        breach later: the figures count those from the tickets (`figures.unmarked_breaches`)."""
        if not self.handed_off:
            return False
        if self.sla_breached_at is not None:
            return True
        replied, resolved, fr_due, res_due = (
            self.first_responded_at,
            self.resolved_at,
            self.first_response_due,
            self.resolution_due,
        )
        replied_by = replied or resolved
        if fr_due is not None and replied_by is not None and fr_due < replied_by:
            return True
        return res_due is not None and resolved is not None and res_due < resolved


def facts_of(row: Any, values: dict[str, Any] | None = None) -> Facts | None:
    """The facts of a ticket (an ORM object or a row with FACT_COLUMNS); `values` overrides some columns."""
    get = (
        (lambda name: values[name] if name in values else getattr(row, name))
        if values
        else (lambda name: getattr(row, name))
    )
    created = _utc(get("created_at"))
    if created is None:
        return None
    return Facts(
        created,
        get("source") or "live",
        get("tier_at_open") or "",
        get("channel") or "",
        get("assignee_id") or NOBODY,
        get("queue") or "",
        get("status") or "open",
        get("handoff_reason") is not None,
        _utc(get("first_responded_at")),
        _utc(get("solved_at")),
        _utc(get("closed_at")),
        _utc(get("sla_breached_at")),
        get("csat"),
        _utc(get("first_response_due")),
        _utc(get("resolution_due")),
    )


def bucket(seconds: float) -> tuple[int, int]:
    """(octave, slot) of a duration: octave k holds [2^k, 2^(k+1)) s in SLOTS slots; octave -1 holds [0, 1) s."""
    if seconds < 1:
        return -1, 0
    b = min(int(math.log2(seconds) * SLOTS), 40 * SLOTS - 1)
    return b // SLOTS, b % SLOTS


def bounds(octave: int, slot: int) -> tuple[float, float]:
    if octave < 0:
        return 0.0, 1.0
    b = octave * SLOTS + slot
    return 2 ** (b / SLOTS), 2 ** ((b + 1) / SLOTS)


def placed(octave: int, slot: int, count: int, total_ms: int, j: int) -> float:
    """The j-th of a bucket's `count` values: spread evenly around their mean, inside the bucket."""
    lo, hi = bounds(octave, slot)
    mean = min(max(total_ms / 1000 / count, lo), hi)
    step = 2 * min(mean - lo, hi - mean) / count
    return mean + (j + 0.5 - count / 2) * step


def percentiles(hist: dict[tuple[int, int], list[int]], ps: Iterable[float]) -> tuple[int, list[float]]:
    """(n, the percentiles `ps`) from buckets {(octave, slot): [count, sum in ms]}: percentile_cont's
    interpolation between ranked values, each read from its bucket (`placed`)."""
    items = sorted((o, s, c, t) for (o, s), (c, t) in hist.items() if c > 0)
    n = sum(c for _, _, c, _ in items)

    starts = list(accumulate((c for _, _, c, _ in items), initial=0))

    def value(rank: int) -> float:
        i = bisect_right(starts, rank) - 1
        octave, slot, c, t = items[i]
        return placed(octave, slot, c, t, rank - starts[i])

    found = []
    for p in ps if n else ():
        pos = (n - 1) * p
        lo = int(pos)
        a, b = value(lo), value(min(lo + 1, n - 1))
        found.append(a + (b - a) * (pos - lo))
    return n, found


def _add(out: Deltas, key: tuple[Any, ...], counters: Iterable[int]) -> None:
    row = out.get(key)
    if row is None:
        out[key] = list(counters)
    else:
        for i, v in enumerate(counters):
            row[i] += v


def contribute(f: Facts, sign: int, out: Deltas, *, opened: bool = True, handled: bool = True) -> None:
    """Add `sign` × the ticket's contribution to `out`. `opened`: its opening day's rows and its backlog row;
    `handled`: its resolution day's "handled" (both, unless a caller reads a part of a day from the tickets)."""
    resolved = f.resolved_at
    if opened and f.status in ACTIVE:
        _add(out, ("b", f.queue, f.status, f.tier, f.agent_id), (sign,))
    if not f.counted:
        return
    if handled and f.agent_id != NOBODY and resolved is not None:
        _add(out, ("d", resolved.date(), f.tier, f.channel, f.agent_id), (0, 0, 0, 0, 0, 0, sign))
    if not opened:
        return
    day = f.created_at.date()
    csat = f.csat is not None
    _add(
        out,
        ("d", day, f.tier, f.channel, f.agent_id),
        (
            sign,
            sign * f.handed_off,
            sign * (not f.handed_off and f.status in ("solved", "closed")),
            sign * f.breached(),
            sign * csat,
            sign * (f.csat or 0),
            0,
        ),
    )
    if not f.handed_off:
        return
    keys = (("tier", f.tier), ("channel", f.channel), ("agent", str(f.agent_id)))
    for measure, end in (("first_response", f.first_responded_at), ("resolution", resolved)):
        if end is None:
            continue
        seconds = (end - f.created_at).total_seconds()
        octave, slot = bucket(seconds)
        counters = [0] * (2 * SLOTS)
        counters[slot] = sign
        counters[SLOTS + slot] = sign * round(max(seconds, 0) * 1000)
        for dim, key in keys:
            _add(out, ("h", dim, day, key, measure, octave), counters)


def changed(session: AsyncSession | Session, before: Facts | None, after: Facts | None) -> None:
    """Record a ticket change the session's flush does not see (the writer's guarded UPDATE)."""
    if before == after:
        return
    pending = session.info.setdefault(PENDING, {})
    if before is not None:
        contribute(before, -1, pending)
    if after is not None:
        contribute(after, 1, pending)


def write_deltas(conn: Connection, deltas: Deltas, *, empty: bool = False) -> None:
    """Add the differences to the rollups: per table one upsert per few hundred rows, in key order (into `empty`
    tables, a plain bulk insert)."""
    kind_rows: dict[str, list[tuple[tuple[Any, ...], list[int]]]] = {}
    for key, counters in deltas.items():
        if any(counters):
            kind_rows.setdefault(key[0], []).append((key[1:], counters))
    for kind in sorted(kind_rows):
        table, columns = TABLES[kind]
        keys = [c.name for c in table.primary_key.columns]
        ordered = sorted(kind_rows[kind], key=lambda kv: tuple(str(v) for v in kv[0]))
        rows = [{**dict(zip(keys, k, strict=True)), **dict(zip(columns, v, strict=True))} for k, v in ordered]
        if empty:
            conn.execute(table.insert(), rows)
            continue
        for stmt in adding_upserts(conn.dialect.name, table, rows, columns):
            conn.execute(stmt)


def write_pending(session: Session) -> None:
    deltas = session.info.pop(PENDING, None)
    if deltas:
        write_deltas(session.connection(), deltas)


async def flush_pending(session: AsyncSession) -> None:
    """Write this transaction's differences now (a reader in the same transaction sees its own changes)."""
    if session.info.get(PENDING):
        await session.run_sync(write_pending)


def _before(conn: Connection, ticket: Ticket) -> Facts | None:
    """The facts as stored before this flush: what the session loaded (a changed column's value as loaded, kept
    in the state's committed values; an unchanged one's current value), or the row, for a value set without the
    old one loaded. (What the attribute history would say, without building a history per column.)"""
    state = inspect(ticket)
    committed, current = state.committed_state, state.dict
    values = {}
    for name in FACT_COLUMNS[1:]:
        value = committed[name] if name in committed else current.get(name, NO_VALUE)
        if value is NO_VALUE or value is PASSIVE_NO_RESULT:
            stmt = select(*(Ticket.__table__.c[n] for n in FACT_COLUMNS)).where(Ticket.id == ticket.id)
            row = conn.execute(stmt).one_or_none()
            return facts_of(row) if row is not None else None
        values[name] = value
    return facts_of(ticket, values)


def _session_of(ticket: Ticket) -> Session:
    session = inspect(ticket).session
    assert session is not None
    return session


NULL_AT_INSERT = tuple(
    name
    for name in FACT_COLUMNS[1:]
    if Ticket.__table__.c[name].default is None and Ticket.__table__.c[name].server_default is None
)
"""Fact columns with no default: a new ticket that did not set one was written with NULL there."""


@event.listens_for(Ticket, "after_insert")
def _on_insert(_mapper: Any, _conn: Connection, ticket: Ticket) -> None:
    """A new ticket, once its defaults are set. (Per row the flush writes: a flush of some objects counts those.)

    The columns it left unset hold NULL, and the session is told so: a later change of one in the same batch
    (opened, then assigned) needs no SELECT in `_before`. The one statement that changes facts without the ORM,
    the writer's guarded UPDATE, sets its values on the object as committed: the session keeps the row's."""
    state = inspect(ticket)
    for name in NULL_AT_INSERT:
        if name not in state.dict and name not in state.expired_attributes:
            set_committed_value(ticket, name, None)
    changed(_session_of(ticket), None, facts_of(ticket))


@event.listens_for(Ticket, "before_update")
def _on_update(_mapper: Any, conn: Connection, ticket: Ticket) -> None:
    changed(_session_of(ticket), _before(conn, ticket), facts_of(ticket))


@event.listens_for(Ticket, "before_delete")
def _on_delete(_mapper: Any, conn: Connection, ticket: Ticket) -> None:
    changed(_session_of(ticket), _before(conn, ticket), None)


@event.listens_for(Session, "before_commit")
def _on_commit(session: Session) -> None:
    session.flush()  # the commit's own flush comes after this hook: what it would write is counted first
    write_pending(session)


@event.listens_for(Session, "after_soft_rollback")
def _on_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(PENDING, None)


def rebuild_on(conn: Connection) -> int:
    """Recount the rollups from the tickets (the migration's backfill, a bulk load, a repair); returns the tickets
    counted. On PostgreSQL ticket writers wait meanwhile (SHARE lock), so none is counted twice or missed."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("LOCK TABLE tickets IN SHARE MODE")
    for table, _ in TABLES.values():
        conn.execute(delete(table))
    deltas: Deltas = {}
    n = 0
    stmt = select(*(Ticket.__table__.c[c] for c in FACT_COLUMNS)).execution_options(yield_per=20_000)
    for row in conn.execute(stmt):
        f = facts_of(row)
        if f is not None:
            contribute(f, 1, deltas)
            n += 1
    write_deltas(conn, deltas, empty=True)
    return n


async def rebuild_ticket_rollup(session: AsyncSession) -> int:
    """`rebuild_on` in the session's transaction (the caller commits)."""
    session.info.pop(PENDING, None)
    return await session.run_sync(lambda s: rebuild_on(s.connection()))

"""The figures supervisors read, defined once. The dashboard overview and agents page, the desk's /report and
GET /api/v1/reports/figures all call `figures()`; no other code computes them.

Definitions, for a range [since, until) and a moment `at` (now):

- Counted tickets: `source <> 'imported'`. Imported history is in no figure (not in SLA, response, CSAT,
  handled or bot-resolved figures). Ticket figures are over the counted tickets opened in the range
  (`created_at` in [since, until)): the range's "conversations".
- Handed off: `handoff_reason IS NOT NULL` (routed to a person, or a person replied).
- First response = the first reply by a person: `first_responded_at` (the ticket core sets it only on a
  person's reply; the bot's FAQ answer and the hand-off acknowledgement never do). First-response time =
  first_responded_at - created_at, over handed-off tickets a person replied to.
- Bot-resolved conversation: a ticket never handed off (`handoff_reason IS NULL`) that is solved or closed.
  Its own figure (count, and share of the range's conversations); never a breach, never a response time.
- Resolved at: `closed_at` for a closed ticket, `solved_at` for a solved one; an open or pending ticket is not
  resolved. This is coalesce(solved_at, closed_at) read with the status, because a ticket the customer opened
  again keeps its old solved_at (a closed one's solved_at can be the bot's answer before the hand-off).
  Resolution time = resolved at - created_at, over handed-off resolved tickets.
- SLA breach: a handed-off ticket that missed a due time. The SLA clock records one in `sla_breached_at`; the
  figure also counts, from the facts, what the clock has not seen (yet, or ever: it looks every few seconds,
  at open tickets only): no person's reply by `first_response_due` (the reply came later, or none came before
  the ticket was resolved or before `at`), or no resolution by `resolution_due` (resolved later, or still not
  at `at`). So the count does not depend on when the clock last ran. Bot-resolved conversations never breach.
- CSAT: mean and count of `tickets.csat` over counted tickets.
- Agent "replies": their replies to customers, by contact time in the range: outbound contacts with
  author='agent', desk=false, by `agent_id` (never the notices sent to them, which are desk traffic).
- Agent "handled": counted tickets assigned to them and resolved (as above) in the range.
- Agent "load": open or pending tickets assigned to them now (routing's load; not a range figure).
- Ticket figures by tier (`tier_at_open`), by agent (the assignee; None = unassigned) and by channel (the
  ticket's channel), and in total.
- Percentiles (p50, p90) interpolate linearly between ranked values, as PostgreSQL's percentile_cont, with each
  ranked value read from the per-day histograms of the rollup (placed evenly in its log bucket): within 2.2 %
  of the exact percentile (under 1 s below one second; `ticket_rollup.BUCKET_ERROR`). Seconds are rounded to
  milliseconds. `figures_from_tickets` computes them exactly from the tickets, for comparison.

Where they are read: whole UTC days from the rollups the writers keep (ticket_rollup; agents' replies: reply_rollup);
part-days from the tickets of those hours (replies: the log's partial index); breaches that depend on `at` (past a
due time the SLA clock has not marked yet) from the partial index of such tickets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import BigInteger, and_, case, cast, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import TIERS, Agent, Ticket
from crm_store.repositories import reply_rollup
from crm_store.repositories import ticket_rollup as rollup
from crm_store.repositories.reply_rollup import AGENT_REPLY as AGENT_REPLY  # where the figures' tests read it
from crm_store.rollups import NOBODY, SLOTS, agent_reply_days, ticket_backlog, ticket_days, ticket_duration_days

DONE = ("solved", "closed")
PERCENTILES = (0.5, 0.9)
MEASURES = ("first_response", "resolution")

COUNTED = Ticket.source != "imported"
HANDED_OFF = Ticket.handoff_reason.is_not(None)
RESOLVED_AT = case((Ticket.status == "closed", Ticket.closed_at), (Ticket.status == "solved", Ticket.solved_at))
"""When the ticket was resolved, or NULL while it is open or pending (see the module docstring)."""
BOT_RESOLVED = and_(Ticket.handoff_reason.is_(None), Ticket.status.in_(DONE))
_OPEN = [literal_column("'open'"), literal_column("'pending'")]
UNMARKED = (HANDED_OFF, Ticket.sla_breached_at.is_(None), or_(
    Ticket.status.in_(_OPEN), and_(Ticket.status == literal_column("'closed'"), Ticket.closed_at.is_(None)),
    and_(Ticket.status == literal_column("'solved'"), Ticket.solved_at.is_(None))))
"""Handed off, not marked by the SLA clock and not resolved: ix_tickets_unmarked_active's predicate."""


@dataclass(frozen=True, slots=True)
class Durations:
    """How many tickets a duration is over, and its p50 and p90 in seconds (None with no tickets)."""

    n: int = 0
    p50: float | None = None
    p90: float | None = None


@dataclass(slots=True)
class Slice:
    """The ticket figures of one group of counted tickets opened in the range (a tier, an agent, a channel)."""

    conversations: int = 0
    handed_off: int = 0
    bot_resolved: int = 0
    breached: int = 0
    csat_n: int = 0
    csat_sum: int = 0
    first_response: Durations = field(default_factory=Durations)
    resolution: Durations = field(default_factory=Durations)

    @property
    def csat(self) -> float | None:
        return self.csat_sum / self.csat_n if self.csat_n else None

    @property
    def bot_resolved_share(self) -> float | None:
        return self.bot_resolved / self.conversations if self.conversations else None

    def add(self, row: Any) -> None:
        self.conversations += int(row.conversations)
        self.handed_off += int(row.handed_off)
        self.bot_resolved += int(row.bot_resolved)
        self.breached += int(row.breached)
        self.csat_n += int(row.csat_n)
        self.csat_sum += int(row.csat_sum or 0)

    def add_counts(self, counts: list[int]) -> None:
        """Counters in ticket_days' order (conversations, handed_off, bot_resolved, breached, csat_n, csat_sum)."""
        self.conversations += counts[0]
        self.handed_off += counts[1]
        self.bot_resolved += counts[2]
        self.breached += counts[3]
        self.csat_n += counts[4]
        self.csat_sum += counts[5]

    def as_dict(self) -> dict[str, Any]:
        return {
            "conversations": self.conversations, "handed_off": self.handed_off, "bot_resolved": self.bot_resolved,
            "bot_resolved_share": self.bot_resolved_share, "breached": self.breached, "csat": self.csat,
            "csat_n": self.csat_n, "first_response": asdict(self.first_response),
            "resolution": asdict(self.resolution),
        }


@dataclass(slots=True)
class AgentLine:
    """One agent: who they are, their load now, what they did in the range and their tickets' figures."""

    id: int
    name: str
    role: str
    status: str
    email: str | None
    tiers: list[str]
    queues: list[str]
    capacity: int
    load: int = 0
    handled: int = 0
    replies: int = 0
    tickets: Slice = field(default_factory=Slice)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "role": self.role, "status": self.status, "email": self.email,
            "tiers": self.tiers, "queues": self.queues, "capacity": self.capacity, "load": self.load,
            "handled": self.handled, "replies": self.replies, "tickets": self.tickets.as_dict(),
        }


@dataclass(slots=True)
class Figures:
    since: datetime
    until: datetime
    at: datetime
    total: Slice = field(default_factory=Slice)
    by_tier: dict[str, Slice] = field(default_factory=dict)
    by_channel: dict[str, Slice] = field(default_factory=dict)
    by_agent: dict[int | None, Slice] = field(default_factory=dict)
    """By assignee id; None holds the tickets nobody is assigned."""
    agents: list[AgentLine] = field(default_factory=list)

    def tiers(self) -> list[str]:
        """Tiers with tickets, in the tiers' own order (unknown ones last, by name)."""
        return [t for t in TIERS if t in self.by_tier] + sorted(set(self.by_tier) - set(TIERS))

    def channels(self) -> list[str]:
        return sorted(self.by_channel)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON values: what the API returns."""
        return {
            "since": self.since.isoformat(), "until": self.until.isoformat(), "at": self.at.isoformat(),
            "total": self.total.as_dict(),
            "by_tier": [{"tier": t, **self.by_tier[t].as_dict()} for t in self.tiers()],
            "by_channel": [{"channel": c, **self.by_channel[c].as_dict()} for c in self.channels()],
            "unassigned": self.by_agent.get(None, Slice()).as_dict(),
            "agents": [a.as_dict() for a in self.agents],
        }


async def figures(session: AsyncSession, since: datetime, until: datetime, *, at: datetime | None = None,
                  durations: tuple[str, ...] = rollup.DIMS) -> Figures:
    """Every figure for tickets opened in [since, until), as of `at` (default: now). `durations`: the dimensions
    whose response times are read (the agents page needs only ("agent",); the others' then say n=0)."""
    out = Figures(since, until, at or datetime.now(UTC))
    await rollup.flush_pending(session)
    await reply_rollup.flush_pending(session)
    first, end = _whole_days(since, until)
    parts: rollup.Deltas = {}
    replies: dict[int, int] = {}  # the part-days' (the whole days' come with the agents)
    for lo, hi in _part_days(since, until, first, end):
        await _count_part(session, lo, hi, parts)
        for agent_id, n in (await session.execute(reply_rollup.logged_replies(lo, hi))).all():
            replies[agent_id] = replies.get(agent_id, 0) + n
    counts = await _day_counts(session, first, end, parts)
    for (tier, channel, agent), c in counts.items():
        for target in _views(out, tier, channel, agent):
            target.add_counts(c)
    for tier, channel, agent, n in (await session.execute(unmarked_breaches(since, until, out.at))).all():
        for target in _views(out, _key(tier), _key(channel), agent):
            target.breached += int(n)
    await _durations(session, first, end, parts, out, durations)
    handled: dict[int, int] = {}
    for (_tier, _channel, agent), c in counts.items():
        if agent is not None and c[6]:
            handled[agent] = handled.get(agent, 0) + c[6]
    for a, load, n in (await session.execute(_agents_now(first, end))).all():
        out.agents.append(_line(out, a, load or 0, handled.get(a.id, 0), (n or 0) + replies.get(a.id, 0)))
    return out


def _views(out: Figures, tier: str | None, channel: str | None, agent: int | None) -> tuple[Slice, ...]:
    """The slices one group of tickets counts in: the total, its tier's, its channel's and its assignee's."""
    return (out.total, out.by_tier.setdefault(tier, Slice()), out.by_channel.setdefault(channel, Slice()),
            out.by_agent.setdefault(agent, Slice()))


def _key(value: str) -> str | None:
    return value or None


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def _whole_days(since: datetime, until: datetime) -> tuple[date, date]:
    """The UTC days [first, end) that lie wholly inside [since, until) (first >= end: none)."""
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    first = since.date() if since == _day_start(since.date()) else since.date() + timedelta(days=1)
    return first, until.date()


def _part_days(since: datetime, until: datetime, first: date, end: date) -> list[tuple[datetime, datetime]]:
    """The parts of [since, until) outside its whole days."""
    if first >= end:
        return [(since, until)] if since < until else []
    parts = [(since, _day_start(first)), (_day_start(end), until)]
    return [(lo, hi) for lo, hi in parts if lo < hi]


async def _count_part(session: AsyncSession, lo: datetime, hi: datetime, out: rollup.Deltas) -> None:
    """The contributions of a part-day from its tickets: those opened in it, and "handled" of those resolved in
    it (the same `contribute` the rollups are kept with)."""
    columns = [Ticket.__table__.c[c] for c in rollup.FACT_COLUMNS]
    for row in (await session.execute(select(*columns).where(Ticket.created_at >= lo, Ticket.created_at < hi))):
        if (f := rollup.facts_of(row)) is not None:
            rollup.contribute(f, 1, out, handled=False)
    for row in (await session.execute(select(*columns).where(resolved_between(lo, hi)))):
        if (f := rollup.facts_of(row)) is not None:
            rollup.contribute(f, 1, out, opened=False)


async def _day_counts(
    session: AsyncSession, first: date, end: date, parts: rollup.Deltas
) -> dict[tuple[str | None, str | None, int | None], list[int]]:
    """The summed ticket_days counters per (tier, channel, assignee) over [first, end), plus the part-days'."""
    t = ticket_days.c
    found: dict[tuple[Any, ...], list[int]] = {}

    def add(tier: str, channel: str, agent: int, counters: Any) -> None:
        key = (_key(tier), _key(channel), None if agent == NOBODY else int(agent))
        row = found.setdefault(key, [0] * 7)
        for i, v in enumerate(counters):
            row[i] += int(v or 0)

    if first < end:
        rows = await session.execute(
            select(t.tier, t.channel, t.agent_id, *(func.sum(t[c]) for c in rollup.DAY_COUNTERS))
            .where(t.day >= first, t.day < end).group_by(t.tier, t.channel, t.agent_id)
        )
        for tier, channel, agent, *counters in rows.all():
            add(tier, channel, agent, counters)
    for key, counters in parts.items():
        if key[0] == "d":
            add(key[2], key[3], key[4], counters)
    return {k: v for k, v in found.items() if any(v)}


def unmarked_breaches(since: datetime, until: datetime, at: datetime) -> Any:
    """(tier, channel, assignee, n): counted tickets opened in [since, until), handed off, unresolved and not
    marked by the SLA clock, that are past a due time at `at` and not already breached by their facts (a late
    first reply, which ticket_days counts). Reads the partial index ix_tickets_unmarked_active (its predicate is
    written here as its migration writes it, in literals, so both databases see that it applies)."""
    replied, fr_due = Ticket.first_responded_at, Ticket.first_response_due
    return (
        select(Ticket.tier_at_open, Ticket.channel, Ticket.assignee_id, func.count())
        .where(*UNMARKED, Ticket.created_at >= since, Ticket.created_at < until, COUNTED,
               or_(replied.is_(None), fr_due.is_(None), fr_due >= replied),
               or_(and_(replied.is_(None), fr_due < at), Ticket.resolution_due < at))
        .group_by(Ticket.tier_at_open, Ticket.channel, Ticket.assignee_id)
    )


async def _durations(session: AsyncSession, first: date, end: date, parts: rollup.Deltas, out: Figures,
                     dims: tuple[str, ...]) -> None:
    """p50 and p90 of both durations by tier, channel and agent, and in total (the tiers' buckets summed)."""
    h = ticket_duration_days.c
    buckets: dict[tuple[str, str, str], dict[tuple[int, int], list[int]]] = {}

    def add(dim: str, key: str, measure: str, octave: int, counts: Any) -> None:
        names = ((measure, dim, key), (measure, "all", "")) if dim == "tier" else ((measure, dim, key),)
        hists = [buckets.setdefault(name, {}) for name in names]
        for slot, n in enumerate(counts[:SLOTS]):
            if n:
                total = counts[SLOTS + slot] or 0
                for hist in hists:
                    cell = hist.get((octave, slot))
                    if cell is None:
                        hist[(octave, slot)] = [n, total]
                    else:
                        cell[0] += n
                        cell[1] += total

    if first < end:
        rows = await session.execute(
            select(h.dim, h.key, h.measure, h.octave, *(cast(func.sum(h[c]), BigInteger) for c in rollup.SLOT_COLUMNS))
            .where(h.dim.in_(dims), h.day >= first, h.day < end)
            .group_by(h.dim, h.key, h.measure, h.octave)
        )
        for dim, key, measure, octave, *counts in rows.all():
            add(dim, key, measure, int(octave), counts)
    for key, counts in parts.items():
        if key[0] == "h" and key[1] in dims:
            add(key[1], key[3], key[4], key[5], counts)
    for (measure, dim, key), hist in buckets.items():
        n, values = rollup.percentiles(hist, PERCENTILES)
        if not n:
            continue
        durations = Durations(n, *map(ms, values))
        if dim == "agent":
            view = None if key == str(NOBODY) else int(key)
        else:
            view = None if dim == "all" else _key(key)
        target = slice_of(out, dim, view)
        if measure == "first_response":
            target.first_response = durations
        else:
            target.resolution = durations


def _agents_now(first: date, end: date) -> Any:
    """(agent, load now, replies on the whole days [first, end)) in one statement: open or pending tickets from
    ticket_backlog, replies from agent_reply_days."""
    b, r = ticket_backlog.c, agent_reply_days.c
    load = select(func.sum(b.n)).where(b.agent_id == Agent.id).scalar_subquery()
    replies = select(func.sum(r.replies)).where(r.agent_id == Agent.id, r.day >= first, r.day < end).scalar_subquery()
    return select(Agent, load, replies).order_by(Agent.name, Agent.id)


async def backlog_by_queue(session: AsyncSession) -> list[tuple[str, str, int]]:
    """(queue, status, tickets) of everything not solved yet, from ticket_backlog."""
    b = ticket_backlog.c
    rows = await session.execute(
        select(b.queue, b.status, func.sum(b.n)).group_by(b.queue, b.status).order_by(b.queue, b.status)
    )
    return [(q, s, int(n)) for q, s, n in rows.all() if n]


def breached(at: datetime) -> Any:
    """A handed-off ticket that missed a due time: recorded by the SLA clock, or by the facts (see above)."""
    replied_by = func.coalesce(Ticket.first_responded_at, RESOLVED_AT, at)
    resolved_by = func.coalesce(RESOLVED_AT, at)
    return and_(HANDED_OFF, or_(Ticket.sla_breached_at.is_not(None), Ticket.first_response_due < replied_by,
                                Ticket.resolution_due < resolved_by))


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(float(seconds), 3)


def slice_of(out: Figures, dim: str, key: Any) -> Slice:
    if dim == "all":
        return out.total
    views: dict[Any, Slice] = {"tier": out.by_tier, "channel": out.by_channel, "agent": out.by_agent}[dim]
    return views.setdefault(key, Slice())


def resolved_between(since: datetime, until: datetime) -> Any:
    """RESOLVED_AT in [since, until), written so each half walks its (status, closed_at / solved_at) index."""
    return or_(
        and_(Ticket.status == "closed", Ticket.closed_at >= since, Ticket.closed_at < until),
        and_(Ticket.status == "solved", Ticket.solved_at >= since, Ticket.solved_at < until),
    )


async def agent_lines(session: AsyncSession, out: Figures, load: dict[int, int], handled: dict[int, int]) -> None:
    """Every agent with their load now, tickets handled and replies to customers in the range, the replies counted
    from the log (the exact recount; `figures` reads them with the agents)."""
    replies = dict((await session.execute(reply_rollup.logged_replies(out.since, out.until))).all())
    for a in await session.scalars(select(Agent).order_by(Agent.name, Agent.id)):
        out.agents.append(_line(out, a, load.get(a.id, 0), handled.get(a.id, 0), replies.get(a.id, 0)))


def _line(out: Figures, a: Agent, load: int, handled: int, replies: int) -> AgentLine:
    return AgentLine(a.id, a.name, a.role, a.status, a.email, list(a.tiers or []), list(a.queues or []),
                     a.capacity, load=int(load), handled=int(handled), replies=int(replies),
                     tickets=out.by_agent.get(a.id, Slice()))

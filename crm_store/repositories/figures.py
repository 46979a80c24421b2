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
- Percentiles (p50, p90) interpolate linearly between ranked values: PostgreSQL's percentile_cont, and the
  same interpolation here for SQLite. Seconds are rounded to milliseconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Float, and_, case, cast, false, func, literal_column, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import TIERS, Agent, Contact, Ticket
from crm_store.repositories._sql import is_pg
from crm_store.repositories.tickets import load_by_assignee

DONE = ("solved", "closed")
PERCENTILES = (0.5, 0.9)
MEASURES = ("first_response", "resolution")

COUNTED = Ticket.source != "imported"
HANDED_OFF = Ticket.handoff_reason.is_not(None)
RESOLVED_AT = case((Ticket.status == "closed", Ticket.closed_at), (Ticket.status == "solved", Ticket.solved_at))
"""When the ticket was resolved, or NULL while it is open or pending (see the module docstring)."""
BOT_RESOLVED = and_(Ticket.handoff_reason.is_(None), Ticket.status.in_(DONE))


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


async def figures(session: AsyncSession, since: datetime, until: datetime, *, at: datetime | None = None) -> Figures:
    """Every figure for tickets opened in [since, until), as of `at` (default: now)."""
    out = Figures(since, until, at or datetime.now(UTC))
    await _count(session, out)
    await _percentiles(session, out)
    await _agents(session, out)
    return out


def _in_range(since: datetime, until: datetime) -> tuple[Any, ...]:
    return Ticket.created_at >= since, Ticket.created_at < until, COUNTED


def _breached(at: datetime) -> Any:
    """A handed-off ticket that missed a due time: recorded by the SLA clock, or by the facts (see above)."""
    replied_by = func.coalesce(Ticket.first_responded_at, RESOLVED_AT, at)
    resolved_by = func.coalesce(RESOLVED_AT, at)
    return and_(HANDED_OFF, or_(Ticket.sla_breached_at.is_not(None), Ticket.first_response_due < replied_by,
                                Ticket.resolution_due < resolved_by))


async def _count(session: AsyncSession, out: Figures) -> None:
    """The additive figures, grouped once by (tier, channel, assignee) and summed into each view here."""
    rows = await session.execute(
        select(
            Ticket.tier_at_open.label("tier"), Ticket.channel.label("channel"), Ticket.assignee_id.label("agent"),
            func.count().label("conversations"),
            func.count(case((HANDED_OFF, 1))).label("handed_off"),
            func.count(case((BOT_RESOLVED, 1))).label("bot_resolved"),
            func.count(case((_breached(out.at), 1))).label("breached"),
            func.count(Ticket.csat).label("csat_n"),
            func.sum(Ticket.csat).label("csat_sum"),
        )
        .where(*_in_range(out.since, out.until))
        .group_by(Ticket.tier_at_open, Ticket.channel, Ticket.assignee_id)
    )
    for row in rows.all():
        out.total.add(row)
        out.by_tier.setdefault(row.tier, Slice()).add(row)
        out.by_channel.setdefault(row.channel, Slice()).add(row)
        out.by_agent.setdefault(row.agent, Slice()).add(row)


def _seconds(session: AsyncSession, later: Any, earlier: Any) -> Any:
    if is_pg(session):
        return cast(func.extract("epoch", later - earlier), Float)
    return cast((func.julianday(later) - func.julianday(earlier)) * 86400.0, Float)


def _cohort(session: AsyncSession, out: Figures) -> Any:
    """The handed-off counted tickets opened in the range, with both durations in seconds."""
    return select(
        Ticket.tier_at_open.label("tier"), Ticket.channel.label("channel"), Ticket.assignee_id.label("agent"),
        _seconds(session, Ticket.first_responded_at, Ticket.created_at).label("first_response"),
        _seconds(session, RESOLVED_AT, Ticket.created_at).label("resolution"),
    ).where(*_in_range(out.since, out.until), HANDED_OFF)


async def _percentiles(session: AsyncSession, out: Figures) -> None:
    """p50 and p90 of both durations, in total, by tier, channel and agent: percentile_cont on PostgreSQL; on
    SQLite (which has none) the durations are fetched and interpolated here, which measured four times faster
    than ranking them with window functions in SQLite."""
    if is_pg(session):
        found = await _percentile_cont(session, _cohort(session, out).subquery("cohort"))
    else:
        found = _interpolated((await session.execute(_cohort(session, out))).all())
    for (measure, dim, key), durations in found.items():
        target = _slice(out, dim, key)
        if measure == "first_response":
            target.first_response = durations
        else:
            target.resolution = durations


Key = tuple[str, str, Any]
"""(measure, dimension, key): ("first_response", "tier", "VIP"), ("resolution", "agent", 3), (…, "all", None)."""


GROUPING_DIM = {0b011: "tier", 0b101: "channel", 0b110: "agent", 0b111: "all"}
"""grouping(tier, channel, agent) of each grouping set: a bit is set for each column the set leaves out."""


async def _percentile_cont(session: AsyncSession, cohort: Any) -> dict[Key, Durations]:
    """One pass: percentile_cont of both durations over GROUPING SETS ((tier), (channel), (agent), ()) — measured
    twice as fast as a union of one grouping per view."""
    c = cohort.c
    dims = (c.tier, c.channel, c.agent)
    aggregates = [
        agg for m in MEASURES
        for agg in (func.count(c[m]), *(func.percentile_cont(p).within_group(c[m]) for p in PERCENTILES))
    ]
    rows = await session.execute(
        select(func.grouping(*dims), *dims, *aggregates)
        .group_by(func.grouping_sets(*(tuple_(d) for d in dims), tuple_()))
    )
    found: dict[Key, Durations] = {}
    width = 1 + len(PERCENTILES)
    for g, tier, channel, agent, *values in rows.all():
        dim = GROUPING_DIM[g]
        key = {"tier": tier, "channel": channel, "agent": agent, "all": None}[dim]
        for i, measure in enumerate(MEASURES):
            n, *pcts = values[i * width:(i + 1) * width]
            if n:
                found[(measure, dim, key)] = Durations(int(n), *map(_ms, pcts))
    return found


def _interpolated(rows: list[Any]) -> dict[Key, Durations]:
    values: dict[Key, list[float]] = {}
    for row in rows:
        for measure in MEASURES:
            secs = getattr(row, measure)
            if secs is None:
                continue
            for dim, key in (("tier", row.tier), ("channel", row.channel), ("agent", row.agent), ("all", None)):
                values.setdefault((measure, dim, key), []).append(float(secs))
    found = {}
    for k, v in values.items():
        v.sort()
        found[k] = Durations(len(v), *(_ms(interpolate(v, p)) for p in PERCENTILES))
    return found


def interpolate(ordered: list[float], p: float) -> float | None:
    """Linear interpolation between the ranked values around position (n-1)*p, as PostgreSQL's percentile_cont."""
    if not ordered:
        return None
    pos = (len(ordered) - 1) * p
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(float(seconds), 3)


def _slice(out: Figures, dim: str, key: Any) -> Slice:
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


AGENT_REPLY = (Contact.direction == literal_column("'out'"), Contact.author == literal_column("'agent'"),
               Contact.desk == false())
"""A person's reply to a customer, written as the partial index ix_contacts_agent_replies_at is (literals, so both
databases see that the index applies)."""


async def _agents(session: AsyncSession, out: Figures) -> None:
    """Every agent with their load now, tickets handled and replies to customers in the range."""
    load = dict((await session.execute(load_by_assignee())).all())
    handled = dict((await session.execute(
        select(Ticket.assignee_id, func.count())
        .where(Ticket.assignee_id.is_not(None), COUNTED, resolved_between(out.since, out.until))
        .group_by(Ticket.assignee_id)
    )).all())
    replies = dict((await session.execute(
        select(Contact.agent_id, func.count())
        .where(*AGENT_REPLY, Contact.agent_id.is_not(None), Contact.created_at >= out.since,
               Contact.created_at < out.until)
        .group_by(Contact.agent_id)
    )).all())
    for a in await session.scalars(select(Agent).order_by(Agent.name, Agent.id)):
        out.agents.append(AgentLine(
            a.id, a.name, a.role, a.status, a.email, list(a.tiers or []), list(a.queues or []), a.capacity,
            load=int(load.get(a.id, 0)), handled=int(handled.get(a.id, 0)), replies=int(replies.get(a.id, 0)),
            tickets=out.by_agent.get(a.id, Slice()),
        ))

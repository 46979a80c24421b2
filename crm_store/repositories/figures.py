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
  figure also counts, from the facts, what the clock has not seen yet (it runs every few seconds): a first
  reply after `first_response_due`, a resolution after `resolution_due`, and an open or pending ticket already
  past either due time at `at`. So the count does not depend on when the clock last ran.
- CSAT: mean and count of `tickets.csat` over counted tickets.
- Agent "replies": their replies to customers, by contact time in the range: outbound contacts with
  author='agent', desk=false, by `agent_id` (never the notices sent to them, which are desk traffic).
- Agent "handled": counted tickets assigned to them and resolved (as above) in the range.
- Agent "load": open or pending tickets assigned to them now (routing's load; not a range figure).
- Ticket figures by tier (`tier_at_open`), by agent (the assignee; None = unassigned) and by channel (the
  ticket's channel), and in total.
- Percentiles (p50, p90) interpolate linearly between ranked values, as PostgreSQL's percentile_cont; SQLite
  ranks inside the database and the same interpolation is done here. Seconds are rounded to milliseconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Float, Integer, String, and_, case, cast, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from crm_store.models import TIERS, Agent, Contact, Ticket
from crm_store.repositories._sql import is_pg
from crm_store.repositories.tickets import load_by_assignee

ACTIVE = ("open", "pending")
DONE = ("solved", "closed")
PERCENTILES = (0.5, 0.9)
DIMENSIONS = ("tier", "channel", "agent", "all")

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
    unanswered = Ticket.first_responded_at.is_(None)
    return and_(HANDED_OFF, or_(
        Ticket.sla_breached_at.is_not(None),
        Ticket.first_responded_at > Ticket.first_response_due,
        RESOLVED_AT > Ticket.resolution_due,
        and_(Ticket.status.in_(ACTIVE), or_(and_(unanswered, Ticket.first_response_due < at),
                                            Ticket.resolution_due < at)),
    ))


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


def _durations(session: AsyncSession, out: Figures) -> Any:
    """One row per (measure, dimension, key, seconds): both durations, once for each view, as one union."""
    cohort = (
        select(
            Ticket.tier_at_open.label("tier"), Ticket.channel.label("channel"),
            cast(Ticket.assignee_id, String).label("agent"),
            _seconds(session, Ticket.first_responded_at, Ticket.created_at).label("first_response"),
            _seconds(session, RESOLVED_AT, Ticket.created_at).label("resolution"),
        )
        .where(*_in_range(out.since, out.until), HANDED_OFF)
        .cte("cohort")
    )
    keys = {"tier": cohort.c.tier, "channel": cohort.c.channel, "agent": cohort.c.agent,
            "all": cast(literal(""), String)}
    parts = [
        select(literal(measure).label("measure"), literal(dim).label("dim"), key.label("key"),
               cohort.c[measure].label("secs")).where(cohort.c[measure].is_not(None))
        for measure in ("first_response", "resolution") for dim, key in keys.items()
    ]
    return union_all(*parts).subquery("durations")


async def _percentiles(session: AsyncSession, out: Figures) -> None:
    d = _durations(session, out)
    group = (d.c.measure, d.c.dim, d.c.key)
    found: dict[tuple[str, str, str | None], Durations] = {}
    if is_pg(session):
        rows = await session.execute(
            select(*group, func.count(), *(func.percentile_cont(p).within_group(d.c.secs) for p in PERCENTILES))
            .group_by(*group)
        )
        for measure, dim, key, n, *values in rows.all():
            found[(measure, dim, key)] = Durations(int(n), *(_ms(v) for v in values))
    else:
        found = await _ranked_percentiles(session, d)
    for (measure, dim, key), durations in found.items():
        target = _slice(out, dim, key)
        if measure == "first_response":
            target.first_response = durations
        else:
            target.resolution = durations


async def _ranked_percentiles(session: AsyncSession, d: Any) -> dict[tuple[str, str, str | None], Durations]:
    """SQLite has no percentile_cont: rank inside the database and fetch only the rows around each percentile."""
    group = (d.c.measure, d.c.dim, d.c.key)
    ranked = select(
        *group, d.c.secs,
        (func.row_number().over(partition_by=group, order_by=d.c.secs) - 1).label("pos"),
        func.count().over(partition_by=group).label("n"),
    ).subquery("ranked")
    wanted = [cast((ranked.c.n - 1) * p, Integer) + k for p in PERCENTILES for k in (0, 1)]
    picked: dict[tuple[str, str, str | None], tuple[int, dict[int, float]]] = {}
    rows = await session.execute(
        select(ranked.c.measure, ranked.c.dim, ranked.c.key, ranked.c.n, ranked.c.pos, ranked.c.secs)
        .where(ranked.c.pos.in_(wanted))
    )
    for measure, dim, key, n, pos, secs in rows.all():
        picked.setdefault((measure, dim, key), (int(n), {}))[1][int(pos)] = float(secs)
    return {
        k: Durations(n, *(_ms(interpolate(n, at, p)) for p in PERCENTILES)) for k, (n, at) in picked.items()
    }


def interpolate(n: int, at: dict[int, float], p: float) -> float | None:
    """Linear interpolation between the ranked values around position (n-1)*p, as PostgreSQL's percentile_cont."""
    if n == 0:
        return None
    pos = (n - 1) * p
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    return at[lo] + (at[hi] - at[lo]) * (pos - lo)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(float(seconds), 3)


def _slice(out: Figures, dim: str, key: str | None) -> Slice:
    if dim == "all":
        return out.total
    if dim == "tier":
        return out.by_tier.setdefault(key or "", Slice())
    if dim == "channel":
        return out.by_channel.setdefault(key or "", Slice())
    return out.by_agent.setdefault(int(key) if key is not None else None, Slice())


async def _agents(session: AsyncSession, out: Figures) -> None:
    """Every agent with their load now, tickets handled and replies to customers in the range."""
    load = dict((await session.execute(load_by_assignee())).all())
    resolved = RESOLVED_AT
    handled = dict((await session.execute(
        select(Ticket.assignee_id, func.count())
        .where(Ticket.assignee_id.is_not(None), Ticket.status.in_(DONE), COUNTED, resolved >= out.since,
               resolved < out.until)
        .group_by(Ticket.assignee_id)
    )).all())
    replies = dict((await session.execute(
        select(Contact.agent_id, func.count())
        .where(Contact.direction == "out", Contact.author == "agent", Contact.desk.is_(False),
               Contact.agent_id.is_not(None), Contact.created_at >= out.since, Contact.created_at < out.until)
        .group_by(Contact.agent_id)
    )).all())
    for a in await session.scalars(select(Agent).order_by(Agent.name, Agent.id)):
        out.agents.append(AgentLine(
            a.id, a.name, a.role, a.status, a.email, list(a.tiers or []), list(a.queues or []), a.capacity,
            load=int(load.get(a.id, 0)), handled=int(handled.get(a.id, 0)), replies=int(replies.get(a.id, 0)),
            tickets=out.by_agent.get(a.id, Slice()),
        ))

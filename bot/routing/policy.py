"""Routing decisions as plain functions: which queue, which priority, which agent, which SLA deadlines.

The dispatcher gathers the facts (the customer's stored tier, agents and their load) and does the I/O; this
module only decides, so it is tested without a database.

Assignment order: the key-account manager if online and under capacity; otherwise agents who take tickets
automatically (`auto_assign`: agents unless they opt out, supervisors and admins only if they opt in), online and
under capacity, who serve the tier (and queue), speak the customer's language and have the skill, least loaded first
(open tickets / capacity), ties by longest idle, then by id. With nobody free the ticket waits in its tier's
queue; when capacity frees, waiting tickets are offered VIP first, then important, ordinary, potential, and
within a tier by priority, then oldest first (`pick_next`, `assign_waiting`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from bot.routing.sla import BusinessHours, deadline

TIER_ORDER = ("VIP", "important", "ordinary", "potential")
TIER_RANK = {t: i for i, t in enumerate(TIER_ORDER)}


@dataclass(frozen=True, slots=True)
class TierPolicy:
    tier: str
    queue: str
    priority: int
    first_response: timedelta
    resolution: timedelta


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    tiers: dict[str, TierPolicy]
    business_hours: BusinessHours | None = None
    """When set, SLA clocks of the tiers it covers only run inside these hours."""

    def for_tier(self, tier: str) -> TierPolicy:
        return self.tiers.get(tier) or self.tiers.get("ordinary") or next(iter(self.tiers.values()))

    def deadlines(self, tier: str, opened_at: datetime) -> tuple[datetime, datetime]:
        """(first response due, resolution due) for a ticket of `tier` opened at `opened_at`."""
        tp = self.for_tier(tier)
        return (
            deadline(opened_at, tp.first_response, self.business_hours, tier),
            deadline(opened_at, tp.resolution, self.business_hours, tier),
        )

    @classmethod
    def load(cls, path: Path) -> RoutingPolicy:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path.name}: not valid TOML ({exc})") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict) -> RoutingPolicy:
        tiers = {}
        for name, spec in data.get("tiers", {}).items():
            tp = TierPolicy(
                tier=name,
                queue=str(spec.get("queue", "general")),
                priority=int(spec.get("priority", 3)),
                first_response=timedelta(minutes=float(spec.get("first_response_minutes", 240))),
                resolution=timedelta(minutes=float(spec.get("resolution_minutes", 1440))),
            )
            if tp.first_response <= timedelta(0) or tp.resolution <= timedelta(0):
                raise ValueError(f"routing policy: tier {name}: SLA targets must be positive")
            tiers[name] = tp
        if not tiers:
            raise ValueError("routing policy defines no tiers")
        hours = data.get("business_hours")
        return cls(tiers=tiers, business_hours=BusinessHours.from_dict(hours) if hours else None)

    @classmethod
    def default(cls) -> RoutingPolicy:
        return cls.from_dict({"tiers": {t: {"queue": "general", "priority": i + 1} for i, t in enumerate(TIER_ORDER)}})


def serves(tiers: tuple[str, ...] | list[str], queues: tuple[str, ...] | list[str], tier: str | None,
           queue: str | None) -> bool:
    """Whether someone serving `tiers` and `queues` serves a ticket of `tier` in `queue`; an empty list serves
    everything. The one rule: routing, visibility and transfers all read it."""
    return (not tiers or (tier or "potential") in tiers) and (not queues or queue in queues)


@dataclass(frozen=True, slots=True)
class AgentState:
    """An agent as routing sees it: what they serve and how busy they are."""

    id: int
    status: str = "online"
    role: str = "agent"
    tiers: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    capacity: int = 5
    open_tickets: int = 0
    idle_since: datetime | None = None
    """When the agent last got a ticket (None: never); the longest idle wins a tie."""
    auto_assign: bool = True
    """Whether routing, pickup and SLA reassignment may hand this person tickets by themselves (supervisors and
    admins only when they opt in). A key-account manager gets their customers' tickets either way."""

    @property
    def available(self) -> bool:
        return self.status == "online" and self.open_tickets < self.capacity

    def serves(self, tier: str, queue: str) -> bool:
        return serves(self.tiers, self.queues, tier, queue)

    def can_take(self, tier: str, queue: str, language: str | None, skill: str | None) -> bool:
        """Free, and serves this tier, queue, language and skill (an empty list on the agent means any)."""
        if not (self.available and self.serves(tier, queue)):
            return False
        if language and self.languages and language not in self.languages:
            return False
        return not (skill and self.skills and skill not in self.skills)


@dataclass(frozen=True, slots=True)
class RouteRequest:
    tier: str
    opened_at: datetime
    language: str | None = None
    skill: str | None = None
    key_account_manager_id: int | None = None


@dataclass(frozen=True, slots=True)
class RouteDecision:
    queue: str
    priority: int
    first_response_due: datetime
    resolution_due: datetime
    assignee_id: int | None = None
    reason: str = ""
    considered: tuple[int, ...] = field(default=())


def _load_key(agent: AgentState) -> tuple[float, float, int]:
    idle = agent.idle_since.timestamp() if agent.idle_since is not None else float("-inf")
    return (agent.open_tickets / max(agent.capacity, 1), idle, agent.id)


def choose_agent(
    tier: str,
    queue: str,
    language: str | None,
    skill: str | None,
    key_account_manager_id: int | None,
    agents: Iterable[AgentState],
) -> tuple[int | None, str, tuple[int, ...]]:
    """(agent id or None, why, the fitting agents in order of preference)."""
    agents = list(agents)
    kam = next((a for a in agents if a.id == key_account_manager_id), None) if key_account_manager_id else None
    if kam is not None and kam.available:
        return kam.id, "key-account manager", (kam.id,)
    candidates = sorted(
        (a for a in agents if a.auto_assign and a.can_take(tier, queue, language, skill)), key=_load_key
    )
    if candidates:
        why = "least loaded agent serving the tier"
        if key_account_manager_id is not None:
            why += " (key-account manager unavailable)"
        return candidates[0].id, why, tuple(a.id for a in candidates)
    return None, f"waiting in queue {queue}: no agent available", ()


def route(request: RouteRequest, agents: list[AgentState], policy: RoutingPolicy) -> RouteDecision:
    """Queue, priority and deadlines from the tier; the key-account manager first, else the least loaded fit."""
    tp = policy.for_tier(request.tier)
    due_first, due_resolve = policy.deadlines(request.tier, request.opened_at)
    agent_id, why, considered = choose_agent(
        request.tier, tp.queue, request.language, request.skill, request.key_account_manager_id, agents
    )
    return RouteDecision(
        queue=tp.queue, priority=tp.priority, first_response_due=due_first, resolution_due=due_resolve,
        assignee_id=agent_id, reason=why, considered=considered,
    )


@dataclass(frozen=True, slots=True)
class WaitingTicket:
    """An unassigned ticket in a queue, as the pickup sees it."""

    id: int
    tier: str
    priority: int
    opened_at: datetime
    queue: str = "general"
    language: str | None = None
    skill: str | None = None
    key_account_manager_id: int | None = None


def waiting_order(ticket: WaitingTicket) -> tuple[int, int, datetime, int]:
    """VIP before important before ordinary before potential; then priority; then oldest first."""
    return (TIER_RANK.get(ticket.tier, len(TIER_ORDER)), ticket.priority, ticket.opened_at, ticket.id)


def pick_next(waiting: Iterable[WaitingTicket], agent: AgentState) -> WaitingTicket | None:
    """The ticket `agent` should take next: the first in waiting order they can serve, if they have room."""
    if not agent.available:
        return None
    fitting = (t for t in waiting if agent.can_take(t.tier, t.queue, t.language, t.skill))
    return min(fitting, key=waiting_order, default=None)


def assign_waiting(
    waiting: Iterable[WaitingTicket], agents: Iterable[AgentState]
) -> list[tuple[WaitingTicket, int, str]]:
    """Hand waiting tickets to agents with room, best-ranked ticket first; never beyond anyone's capacity.

    Because tickets are taken in waiting order and load only grows, a ticket left waiting could not have been
    served by any agent who got a lower-ranked one.
    """
    states = {a.id: a for a in agents}
    out: list[tuple[WaitingTicket, int, str]] = []
    for ticket in sorted(waiting, key=waiting_order):
        if not any(a.available for a in states.values()):
            break
        agent_id, why, _ = choose_agent(
            ticket.tier, ticket.queue, ticket.language, ticket.skill, ticket.key_account_manager_id, states.values()
        )
        if agent_id is None:
            continue
        state = states[agent_id]
        states[agent_id] = replace(state, open_tickets=state.open_tickets + 1)
        out.append((ticket, agent_id, why))
    return out

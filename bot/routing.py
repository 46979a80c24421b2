"""Routing decisions as plain functions: which queue, which priority, which agent, which SLA deadlines.

The dispatcher gathers the facts (the customer's stored tier, agents and their load) and does the I/O; this
module only decides, so it is tested without a database.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

TIER_ORDER = ("VIP", "important", "ordinary", "potential")


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

    def for_tier(self, tier: str) -> TierPolicy:
        return self.tiers.get(tier) or self.tiers.get("ordinary") or next(iter(self.tiers.values()))

    @classmethod
    def load(cls, path: Path) -> RoutingPolicy:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict) -> RoutingPolicy:
        tiers = {}
        for name, spec in data.get("tiers", {}).items():
            tiers[name] = TierPolicy(
                tier=name,
                queue=str(spec.get("queue", "general")),
                priority=int(spec.get("priority", 3)),
                first_response=timedelta(minutes=float(spec.get("first_response_minutes", 240))),
                resolution=timedelta(minutes=float(spec.get("resolution_minutes", 1440))),
            )
        if not tiers:
            raise ValueError("routing policy defines no tiers")
        return cls(tiers=tiers)

    @classmethod
    def default(cls) -> RoutingPolicy:
        return cls.from_dict({"tiers": {t: {"queue": "general", "priority": i + 1} for i, t in enumerate(TIER_ORDER)}})


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

    @property
    def available(self) -> bool:
        return self.status == "online" and self.open_tickets < self.capacity

    def serves(self, tier: str, queue: str) -> bool:
        return (not self.tiers or tier in self.tiers) and (not self.queues or queue in self.queues)


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


def route(request: RouteRequest, agents: list[AgentState], policy: RoutingPolicy) -> RouteDecision:
    """Queue, priority and deadlines from the tier; the key-account manager first, else the least loaded fit."""
    tp = policy.for_tier(request.tier)
    due_first = request.opened_at + tp.first_response
    due_resolve = request.opened_at + tp.resolution
    base = dict(queue=tp.queue, priority=tp.priority, first_response_due=due_first, resolution_due=due_resolve)

    by_id = {a.id: a for a in agents}
    kam = by_id.get(request.key_account_manager_id) if request.key_account_manager_id else None
    if kam is not None and kam.available:
        return RouteDecision(**base, assignee_id=kam.id, reason="key-account manager")

    def fits(agent: AgentState) -> bool:
        if not (agent.available and agent.serves(request.tier, tp.queue)):
            return False
        if request.language and agent.languages and request.language not in agent.languages:
            return False
        return not (request.skill and agent.skills and request.skill not in agent.skills)

    candidates = sorted((a for a in agents if fits(a)), key=lambda a: (a.open_tickets / max(a.capacity, 1), a.id))
    if candidates:
        chosen = candidates[0]
        why = "least loaded agent serving the tier"
        if kam is not None:
            why += " (key-account manager unavailable)"
        return RouteDecision(**base, assignee_id=chosen.id, reason=why, considered=tuple(a.id for a in candidates))
    return RouteDecision(**base, assignee_id=None, reason=f"waiting in queue {tp.queue}: no agent available")

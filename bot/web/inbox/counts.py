"""The inbox's counts: the active tickets an agent may see, by queue and status, and their own. Pure: the rows
come from one grouped read (the page's, or the live poller's for every open page at once)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from bot.tickets import ACTIVE, Actor, may_see_ticket


@dataclass
class Counts:
    """Active tickets the viewer may see: by queue and status, and their own."""

    queues: dict[str, dict[str, int]]
    mine: int
    unassigned: int


def counts_of(rows: list[tuple[str, str, int | None, str, int]], actor: Actor) -> Counts:
    """The counts `actor` may see, from the grouped rows (queue, tier at open, assignee, status, tickets)."""
    queues: dict[str, dict[str, int]] = {}
    mine = unassigned = 0
    for queue, tier, assignee, status, n in rows:
        if not may_see_ticket(actor, SimpleNamespace(queue=queue, tier_at_open=tier, assignee_id=assignee)):
            continue
        by_status = queues.setdefault(queue or "general", dict.fromkeys(ACTIVE, 0))
        by_status[status] += n
        mine += n if assignee is not None and assignee == actor.agent_id else 0
        unassigned += n if assignee is None else 0
    return Counts(dict(sorted(queues.items())), mine, unassigned)

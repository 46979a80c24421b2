"""What the SLA clock does to a ticket, as plain decisions: escalate a breach, hand a breached ticket on when its
agent is away, give a waiting ticket to an agent with room, and say which tickets have clocks at all.

The worker (`bot.routing.sla_worker`) finds candidates and applies these with the one writer; each decision is
guarded by the value it was made from, so of many workers exactly one wins a change.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bot.core.messages import Button
from bot.routing.policy import RouteDecision, WaitingTicket
from bot.routing.sla import FIRST_RESPONSE, Escalation, SlaTicket
from bot.tickets.decision import AgentNotice, Decision


def has_sla_clock(ticket: Any) -> bool:
    """Only tickets handed to a person run SLA clocks: a conversation the bot answered by itself and imported
    history never breach."""
    return ticket.handoff_reason is not None and getattr(ticket, "source", "live") != "imported"


def sla_view(ticket: Any) -> SlaTicket:
    """What the SLA clock's plain rules (`bot.routing.sla`) need of a ticket."""
    return SlaTicket(
        ticket.id, ticket.status, ticket.priority, ticket.escalation_level, ticket.first_response_due,
        ticket.first_responded_at, ticket.resolution_due, ticket.assignee_id, clocked=has_sla_clock(ticket),
    )


def due_to_wake(ticket: Any, now: datetime) -> bool:
    """A snoozed ticket whose time has come (`bot.tickets.lifecycle.wake` brings it back)."""
    return ticket.status == "pending" and ticket.snoozed_until is not None and ticket.snoozed_until <= now


def _breach_text(ticket: Any, plan: Escalation) -> str:
    what = " and ".join("first response" if b == FIRST_RESPONSE else "resolution" for b in plan.breached)
    due = ticket.first_response_due if plan.breached[0] == FIRST_RESPONSE else ticket.resolution_due
    when = due.strftime("%Y-%m-%d %H:%M UTC") if due else "?"
    return (
        f"SLA breach on T-{ticket.id} ({ticket.tier_at_open}, queue {ticket.queue}): {what} was due {when}. "
        f"Escalated to level {plan.new_level}, priority {plan.new_priority}."
    )


def escalate(ticket: Any, plan: Escalation, *, supervisors: Iterable[int], now: datetime) -> Decision:
    """Raise the level and priority of a breached ticket, once per level, and alert the supervisors (desk
    traffic). `supervisors` are those who can be reached; the audit trail records them."""
    reached = tuple(supervisors)
    d = Decision(
        changes={"escalation_level": plan.new_level, "priority": plan.new_priority,
                 "sla_breached_at": ticket.sla_breached_at or now, "updated_at": now},
        guard={"escalation_level": plan.old_level},
    )
    d.event("sla_breached", breached=list(plan.breached), level=plan.new_level)
    d.event("escalated", from_level=plan.old_level, to_level=plan.new_level, from_priority=plan.old_priority,
            to_priority=plan.new_priority)
    d.event("supervisor_notified", agents=list(reached), level=plan.new_level)
    d.webhook("ticket.sla_breached", breached=list(plan.breached), level=plan.new_level)
    if reached:
        d.notices.append(AgentNotice(reached, _breach_text(ticket, plan), "alert",
                                     (Button("History", f"/history T-{ticket.id}"),)))
    return d


def reassign_away(ticket: Any, routed: RouteDecision, *, now: datetime) -> Decision:
    """The breached ticket's agent is not online: it goes to whoever routing chose among the others, or back to
    its queue when nobody is free. Guarded by the assignee, so an agent who took it meanwhile keeps it."""
    d = Decision(changes={"assignee_id": routed.assignee_id, "updated_at": now},
                 guard={"assignee_id": ticket.assignee_id, "status": ticket.status})
    d.event("reassigned", from_agent=ticket.assignee_id, to_agent=routed.assignee_id,
            reason="assignee not online: " + routed.reason)
    d.webhook("ticket.assigned", reason="reassigned", previous_assignee_id=ticket.assignee_id)
    if routed.assignee_id is not None:
        d.notices.append(AgentNotice(
            (routed.assignee_id,),
            f"T-{ticket.id} ({ticket.tier_at_open}) is yours now: its agent is away and its SLA is breached.",
            "reassign", (Button("Close", f"/close {ticket.id}"), Button("History", f"/history T-{ticket.id}")),
        ))
    return d


def pickup(ticket: Any, waiting: WaitingTicket, agent_id: int, why: str, *, now: datetime) -> Decision:
    """A waiting ticket goes to an agent with free capacity, if it is still open and nobody took it meanwhile."""
    d = Decision(changes={"assignee_id": agent_id, "updated_at": now},
                 guard={"assignee_id": None, "status": "open"})
    d.event("assigned", assignee_id=agent_id, reason=f"picked up from queue {waiting.queue}: {why}")
    d.webhook("ticket.assigned", reason="picked up")
    d.notices.append(AgentNotice(
        (agent_id,), f"T-{ticket.id} ({waiting.tier}) from queue {waiting.queue} is yours.", "pickup",
        (Button("Close", f"/close {ticket.id}"), Button("History", f"/history T-{ticket.id}")),
    ))
    return d

"""The SLA scheduler: escalates breached tickets once, and hands waiting tickets to agents as capacity frees.

Due times live on the tickets, so timers survive restarts; any number of workers may run this loop, because an
escalation or a claim only takes effect through a conditional UPDATE that one of them wins.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.events import ticket_event
from bot.core.outbound import load_agent_states, outbox_row, preferred_address
from bot.routing.policy import RouteRequest, RoutingPolicy, WaitingTicket, assign_waiting, route
from bot.routing.sla import FIRST_RESPONSE, Escalation, SlaTicket, plan_escalation
from bot.settings import Settings
from crm_store.models import Ticket
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import outbox as outbox_repo
from crm_store.repositories import sla as sla_repo
from crm_store.repositories import tickets as tickets_repo

log = logging.getLogger(__name__)
SUPERVISOR_ROLES = ("supervisor",)


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def _notify(
    session: AsyncSession, agent_ids: list[int], text: str, *, key: str, ticket: Ticket
) -> list[int]:
    """One outbox row per agent, to their preferred address; returns who could be reached."""
    addresses = await agents_repo.addresses_of(session, agent_ids)
    rows: list[dict[str, Any]] = []
    for aid in agent_ids:
        where = preferred_address(addresses.get(aid, []))
        if where is None:
            continue
        rows.append(outbox_row(
            key=f"{key}:a{aid}", channel=where[0], recipient=where[1], text=text, author="system", audience="desk",
            at=_utcnow(), ticket_id=ticket.id, customer_id=ticket.customer_id, agent_id=aid,
        ))
    await outbox_repo.enqueue(session, rows)
    return [r["agent_id"] for r in rows]


def _breach_text(ticket: Ticket, plan: Escalation) -> str:
    what = " and ".join("first response" if b == FIRST_RESPONSE else "resolution" for b in plan.breached)
    due = ticket.first_response_due if plan.breached[0] == FIRST_RESPONSE else ticket.resolution_due
    when = due.strftime("%Y-%m-%d %H:%M UTC") if due else "?"
    return (
        f"SLA breach on T-{ticket.id} ({ticket.tier_at_open}, queue {ticket.queue}): {what} was due {when}. "
        f"Escalated to level {plan.new_level}, priority {plan.new_priority}."
    )


async def _escalate_one(
    sessions: async_sessionmaker[AsyncSession], ticket: Ticket, plan: Escalation, policy: RoutingPolicy, at: datetime,
    settings: Settings | None = None,
) -> bool:
    async with sessions() as session, session.begin():
        won = await sla_repo.escalate_if_at_level(
            session, ticket.id, old_level=plan.old_level, new_level=plan.new_level, priority=plan.new_priority, at=at
        )
        if not won:
            return False  # another worker escalated it (or someone changed it) meanwhile
        add = tickets_repo.add_event
        add(session, ticket.id, "sla_breached", at=at, breached=list(plan.breached), level=plan.new_level)
        if settings is not None:
            await ticket_event(session, settings, "ticket.sla_breached", ticket, key=f"L{plan.new_level}",
                               breached=list(plan.breached), level=plan.new_level)
        add(session, ticket.id, "escalated", at=at, from_level=plan.old_level, to_level=plan.new_level,
            from_priority=plan.old_priority, to_priority=plan.new_priority)
        supervisors = [a.id for a in await agents_repo.agents_with_role(session, SUPERVISOR_ROLES)]
        text = _breach_text(ticket, plan)
        reached = await _notify(session, supervisors, text, key=f"sla:{ticket.id}:L{plan.new_level}", ticket=ticket)
        add(session, ticket.id, "supervisor_notified", at=at, agents=reached, level=plan.new_level)
        if plan.reassign:
            await _reassign(session, ticket, policy, at, plan.new_level)
    return True


async def _reassign(session: AsyncSession, ticket: Ticket, policy: RoutingPolicy, at: datetime, level: int) -> None:
    """The assignee is away: route again among the others; nobody free means back to the queue."""
    states = await load_agent_states(session)
    others = [s for aid, s in states.items() if aid != ticket.assignee_id]
    facts = (await customers_repo.customer_facts(session, [ticket.customer_id])).get(ticket.customer_id, {})
    decision = route(
        RouteRequest(ticket.tier_at_open, ticket.created_at, ticket.language, ticket.skill, facts.get("kam")),
        others, policy,
    )
    moved = await sla_repo.reassign_if_assigned_to(
        session, ticket.id, old_agent_id=ticket.assignee_id, new_agent_id=decision.assignee_id
    )
    if not moved:
        return
    reason = "assignee not online: " + decision.reason
    tickets_repo.add_event(session, ticket.id, "reassigned", at=at, from_agent=ticket.assignee_id,
                           to_agent=decision.assignee_id, reason=reason)
    if decision.assignee_id is not None:
        text = f"T-{ticket.id} ({ticket.tier_at_open}) is yours now: its agent is away and its SLA is breached."
        await _notify(session, [decision.assignee_id], text,
                      key=f"sla:{ticket.id}:reassign:L{level}", ticket=ticket)


async def escalation_pass(
    sessions: async_sessionmaker[AsyncSession], policy: RoutingPolicy, *, now: datetime | None = None,
    settings: Settings | None = None,
) -> list[int]:
    """Escalate every ticket whose SLA is breached; returns the ids this worker escalated."""
    at = now or _utcnow()
    async with sessions() as session:
        candidates = await sla_repo.breached_tickets(session, at)
        statuses = {a.id: a.status for a in await agents_repo.list_agents(session)} if candidates else {}
    done = []
    for ticket in candidates:
        plan = plan_escalation(
            SlaTicket(ticket.id, ticket.status, ticket.priority, ticket.escalation_level, ticket.first_response_due,
                      ticket.first_responded_at, ticket.resolution_due, ticket.assignee_id),
            at, statuses.get(ticket.assignee_id) if ticket.assignee_id else None,
        )
        if plan is not None and await _escalate_one(sessions, ticket, plan, policy, at, settings):
            done.append(ticket.id)
    return done


async def pickup_pass(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime | None = None
) -> list[tuple[int, int]]:
    """Assign waiting tickets to agents with free capacity, VIP first; returns (ticket, agent) pairs made."""
    at = now or _utcnow()
    async with sessions() as session:
        rows = await sla_repo.waiting_tickets(session)
        states = await load_agent_states(session) if rows else {}
    waiting = [WaitingTicket(**row) for row in rows]
    made = []
    for ticket, agent_id, why in assign_waiting(waiting, states.values()):
        async with sessions() as session, session.begin():
            if not await sla_repo.claim_for_agent(session, ticket.id, agent_id):
                continue
            tickets_repo.add_event(session, ticket.id, "assigned", at=at, assignee_id=agent_id,
                                   reason=f"picked up from queue {ticket.queue}: {why}")
            full = await session.get(Ticket, ticket.id)
            if full is not None:
                text = f"T-{ticket.id} ({ticket.tier}) from queue {ticket.queue} is yours."
                await _notify(session, [agent_id], text, key=f"pickup:{ticket.id}:{agent_id}", ticket=full)
        made.append((ticket.id, agent_id))
    return made


async def sla_loop(
    sessions: async_sessionmaker[AsyncSession], policy: RoutingPolicy, stop_event: asyncio.Event,
    *, interval_s: float = 30.0, settings: Settings | None = None,
) -> None:
    """Escalate and pick up every `interval_s` until `stop_event` is set; a failing pass is logged, not fatal."""
    while not stop_event.is_set():
        try:
            escalated = await escalation_pass(sessions, policy, settings=settings)
            picked = await pickup_pass(sessions)
            if escalated or picked:
                log.info("SLA: escalated %d tickets, assigned %d waiting", len(escalated), len(picked))
        except Exception:
            log.exception("SLA pass failed; trying again")
        try:
            await asyncio.wait_for(stop_event.wait(), timeout=interval_s)
        except TimeoutError:
            pass


async def sla_job(app: Any, stop_event: asyncio.Event) -> None:
    """`App(background=[sla_job])`: the loop on the app's database and routing policy."""
    await sla_loop(app.sessions, app.dispatcher.policy, stop_event, settings=app.settings)

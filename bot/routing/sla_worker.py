"""The SLA clock: escalates breached tickets once per level, hands a breached ticket on when its agent is away,
gives waiting tickets to agents as capacity frees, and wakes snoozed tickets whose time has come.

Due times and snoozes live on the tickets, so timers survive restarts. Every change is a ticket-core decision
(`bot.tickets.sla`, `bot.tickets.lifecycle.wake`) written by the one writer, one ticket per transaction; each is
guarded by the values it was decided from, so any number of workers may run this loop and exactly one of them
wins each change (the others see a conflict and move on).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.assistant import clarify
from bot.core.messages import utcnow
from bot.core.outbound import BatchContext, load_agent_states, preferred_address
from bot.routing.policy import RouteRequest, RoutingPolicy, WaitingTicket, assign_waiting, route
from bot.routing.sla import plan_escalation
from bot.settings import Settings
from bot.tickets import SYSTEM, TicketError, apply, is_supervisor, lifecycle, ticket_work
from bot.tickets import sla as ticket_sla
from crm_store.models import Ticket
from crm_store.repositories import clarifications as clarifications_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import sla as sla_repo
from crm_store.repositories.value import lock_for_writing

log = logging.getLogger(__name__)

Work = Callable[[BatchContext, Ticket], Awaitable[bool]]


async def _one_ticket(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, policy: RoutingPolicy | None, ticket_id: int,
    work: Work,
) -> bool:
    """Run `work` on one ticket in a transaction of its own that holds the write lock from its start (SQLite);
    False when there was nothing to do or another worker (or a person) changed the ticket first."""
    try:
        async with sessions() as session, session.begin():
            await lock_for_writing(session)
            ticket = await session.get(Ticket, ticket_id)
            if ticket is None:
                return False
            async with ticket_work(session, settings, policy) as ctx:
                return await work(ctx, ticket)
    except TicketError as lost:
        log.debug("SLA: T-%d left as it is: %s", ticket_id, lost.message)
        return False


async def _reachable(ctx: BatchContext, agent_ids: list[int]) -> list[int]:
    """Of these agents, those with an address to send an alert to."""
    addresses = await ctx.agent_addresses(agent_ids)
    return [a for a in agent_ids if preferred_address(addresses.get(a, [])) is not None]


async def _escalate(ctx: BatchContext, ticket: Ticket, at: datetime) -> bool:
    """Escalate the ticket if it is (still) breached beyond its level; alert every supervisor and admin."""
    agents = await ctx.agent_states()
    holder = agents.get(ticket.assignee_id) if ticket.assignee_id is not None else None
    plan = plan_escalation(ticket_sla.sla_view(ticket), at, holder.status if holder is not None else None)
    if plan is None:
        return False
    cause = f"sla:{ticket.id}:L{plan.new_level}"
    supervisors = await _reachable(ctx, [a.id for a in agents.values() if is_supervisor(a.role)])
    await apply(ctx, ticket, ticket_sla.escalate(ticket, plan, supervisors=supervisors, now=at), SYSTEM, cause=cause)
    if plan.reassign:
        await _reassign(ctx, ticket, at, cause)
    return True


async def _reassign(ctx: BatchContext, ticket: Ticket, at: datetime, cause: str) -> None:
    """The assignee is away: route again among the others; nobody free means back to the queue. Someone who
    took the ticket meanwhile keeps it (the escalation stands either way)."""
    others = [s for aid, s in (await ctx.agent_states()).items() if aid != ticket.assignee_id]
    facts = (await customers_repo.customer_facts(ctx.session, [ticket.customer_id])).get(ticket.customer_id, {})
    routed = route(
        RouteRequest(ticket.tier_at_open, ticket.created_at, ticket.language, ticket.skill, facts.get("kam")),
        others, ctx.policy,
    )
    try:
        await apply(ctx, ticket, ticket_sla.reassign_away(ticket, routed, now=at), SYSTEM, cause=cause)
    except TicketError as lost:
        log.debug("SLA: T-%d not reassigned: %s", ticket.id, lost.message)


async def escalation_pass(
    sessions: async_sessionmaker[AsyncSession], policy: RoutingPolicy, *, settings: Settings,
    now: datetime | None = None,
) -> list[int]:
    """Escalate every ticket whose SLA is breached; returns the ids this worker escalated."""
    at = now or utcnow()
    async with sessions() as session:
        candidates = [t.id for t in await sla_repo.breached_tickets(session, at)]

    async def work(ctx: BatchContext, ticket: Ticket) -> bool:
        return await _escalate(ctx, ticket, at)

    return [tid for tid in candidates if await _one_ticket(sessions, settings, policy, tid, work)]


async def pickup_pass(
    sessions: async_sessionmaker[AsyncSession], *, settings: Settings, policy: RoutingPolicy | None = None,
    now: datetime | None = None,
) -> list[tuple[int, int]]:
    """Assign waiting tickets to agents with free capacity, VIP first; returns (ticket, agent) pairs made."""
    at = now or utcnow()
    async with sessions() as session:
        rows = await sla_repo.waiting_tickets(session)
        states = await load_agent_states(session) if rows else {}
    made = []
    for waiting, agent_id, why in assign_waiting([WaitingTicket(**row) for row in rows], states.values()):

        async def work(ctx: BatchContext, ticket: Ticket, waiting: WaitingTicket = waiting, agent_id: int = agent_id,
                       why: str = why) -> bool:
            if not await sla_repo.agent_has_room(ctx.session, agent_id):
                return False
            decision = ticket_sla.pickup(ticket, waiting, agent_id, why, now=at)
            await apply(ctx, ticket, decision, SYSTEM, cause=f"pickup:{ticket.id}:{agent_id}:{int(at.timestamp())}")
            return True

        if await _one_ticket(sessions, settings, policy, waiting.id, work):
            made.append((waiting.id, agent_id))
    return made


async def wake_pass(
    sessions: async_sessionmaker[AsyncSession], *, settings: Settings, now: datetime | None = None
) -> list[int]:
    """Bring back every snoozed ticket whose time has come; returns the ids this worker woke."""
    at = now or utcnow()
    async with sessions() as session:
        candidates = await sla_repo.snoozed_due(session, at)

    async def work(ctx: BatchContext, ticket: Ticket) -> bool:
        if not ticket_sla.due_to_wake(ticket, at):
            return False
        cause = f"wake:{ticket.id}:{int(ticket.snoozed_until.timestamp())}"
        await apply(ctx, ticket, lifecycle.wake(ticket, now=at), SYSTEM, cause=cause)
        return True

    return [tid for tid in candidates if await _one_ticket(sessions, settings, None, tid, work)]


async def clarify_expiry_pass(
    sessions: async_sessionmaker[AsyncSession], *, settings: Settings, policy: RoutingPolicy | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Close the bot's questions left unanswered for `nlu.clarify_expiry_hours`; returns the tickets that went to
    a person because of it (`bot.assistant.clarify.expire_question` decides)."""
    at = now or utcnow()
    async with sessions() as session:
        rows = await clarifications_repo.unanswered(session, at - clarify.choice_ttl(settings))
    handed = []
    for row in rows:
        if row.ticket_id is None:  # its ticket was deleted: nothing waits on it
            async with sessions() as session, session.begin():
                await clarifications_repo.expire(session, row.id, at)
            continue

        async def work(ctx: BatchContext, ticket: Ticket, row: Any = row) -> bool:
            return await clarify.expire_question(ctx, ticket, row)

        if await _one_ticket(sessions, settings, policy, row.ticket_id, work):
            handed.append(row.ticket_id)
    return handed


async def sla_loop(
    sessions: async_sessionmaker[AsyncSession], policy: RoutingPolicy, stop_event: asyncio.Event,
    *, settings: Settings, interval_s: float = 30.0,
) -> None:
    """Escalate, pick up, wake and expire unanswered questions every `interval_s` until `stop_event` is set; a
    failing pass is logged, not fatal."""
    while not stop_event.is_set():
        try:
            escalated = await escalation_pass(sessions, policy, settings=settings)
            picked = await pickup_pass(sessions, settings=settings, policy=policy)
            woke = await wake_pass(sessions, settings=settings)
            unanswered = await clarify_expiry_pass(sessions, settings=settings, policy=policy)
            if escalated or picked or woke or unanswered:
                log.info("SLA: escalated %d tickets, assigned %d waiting, woke %d snoozed, handed on %d unanswered"
                         " questions", len(escalated), len(picked), len(woke), len(unanswered))
        except Exception:
            log.exception("SLA pass failed; trying again")
        try:
            await asyncio.wait_for(stop_event.wait(), timeout=interval_s)
        except TimeoutError:
            pass


async def sla_job(app: Any, stop_event: asyncio.Event) -> None:
    """`App(background=[sla_job])`: the loop on the app's database, routing policy and settings."""
    await sla_loop(app.sessions, app.dispatcher.policy, stop_event, settings=app.settings)

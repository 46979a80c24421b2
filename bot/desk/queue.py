"""/queue, /next and /take: what is waiting, and taking it — only tickets of the tiers and queues one serves."""

from __future__ import annotations

from datetime import datetime

from bot.core.events import ticket_event
from bot.core.messages import Button
from bot.desk.access import may_see_ticket, visible_ticket
from bot.desk.router import DeskCall, DeskError, DeskRouter
from bot.routing.policy import WaitingTicket, pick_next
from crm_store.models import Ticket
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import desk as desk_repo
from crm_store.repositories import sla as sla_repo
from crm_store.repositories import tickets as tickets_repo

router = DeskRouter(__name__)
QUEUE_LINES = 15


def waited(ticket: Ticket, now: datetime) -> str:
    minutes = int((now - ticket.created_at).total_seconds() // 60)
    return f"{minutes}m" if minutes < 120 else f"{minutes // 60}h"


def ticket_buttons(ticket_id: int) -> tuple[Button, ...]:
    return (Button("Close", f"/close {ticket_id}"), Button("History", f"/history T-{ticket_id}"))


async def take_ticket(call: DeskCall, ticket: Ticket, how: str) -> None:
    """Assign `ticket` to the caller if nobody has it (a conditional update: two quick clicks cannot both win)."""
    ctx = call.ctx
    claimed = await sla_repo.reassign_if_assigned_to(ctx.session, ticket.id, old_agent_id=None,
                                                     new_agent_id=call.agent.id)
    if not claimed:
        await ctx.session.refresh(ticket)
        raise DeskError(f"T-{ticket.id} was just taken by someone else.")
    await ctx.session.refresh(ticket)
    await ctx.note_assignment(call.agent.id)
    tickets_repo.add_event(ctx.session, ticket.id, "assigned", actor="agent", agent_id=call.agent.id, at=ctx.now,
                           reason=how)
    await ticket_event(ctx.session, ctx.settings, "ticket.assigned", ticket, key=f"c{call.contact_id}", reason=how)
    names = await desk_repo.customer_names(ctx.session, [ticket.customer_id])
    name = names.get(ticket.customer_id) or "customer"
    call.ticket_id = ticket.id
    call.answer(
        f"T-{ticket.id} is yours ({ticket.tier_at_open}, {ticket.channel}) — {name}: "
        f"{ticket.subject or '(no subject)'}\nAnswer with /reply {ticket.id} <text> or reply to this message.",
        ticket_buttons(ticket.id),
    )


@router.command("queue", "q", usage="/queue [tier|queue]", help="tickets waiting in the tiers and queues you serve")
async def show_queue(call: DeskCall) -> None:
    session = call.ctx.session
    wanted = call.args[0].lower() if call.args else ""
    waiting = [t for t in await desk_repo.waiting_tickets(session) if may_see_ticket(call.agent, t)]
    if wanted:
        waiting = [t for t in waiting if wanted in (t.tier_at_open.lower(), t.queue.lower())]
    mine = await desk_repo.assigned_tickets(session, call.agent.id)
    head = f"Yours: {', '.join(f'T-{t.id}' for t in mine) or 'none'} · status {call.agent.status}"
    if not waiting:
        call.answer(f"{head}\nNothing waiting{' in ' + wanted if wanted else ''}.")
        return
    names = await desk_repo.customer_names(session, [t.customer_id for t in waiting[:QUEUE_LINES]])
    lines = [f"{head}\nWaiting ({len(waiting)}):"]
    for t in waiting[:QUEUE_LINES]:
        lines.append(f"T-{t.id} · {t.tier_at_open} · {t.queue} · {waited(t, call.ctx.now)} · "
                     f"{names.get(t.customer_id) or 'customer'}: {(t.subject or '')[:60]}")
    if len(waiting) > QUEUE_LINES:
        lines.append(f"… and {len(waiting) - QUEUE_LINES} more. /next takes the most urgent.")
    call.answer("\n".join(lines), tuple(Button(f"Take T-{t.id}", f"/take {t.id}") for t in waiting[:3]))


@router.command("next", "n", usage="/next", help="take the most urgent waiting ticket you can serve")
async def take_next(call: DeskCall) -> None:
    ctx = call.ctx
    states = await ctx.agent_states()
    me = states.get(call.agent.id)
    if me is None or not me.available:
        raise DeskError(f"You are {call.agent.status} with {me.open_tickets if me else 0} open tickets "
                        f"(capacity {call.agent.capacity}); /status online or close a ticket first.")
    waiting = [t for t in await desk_repo.waiting_tickets(ctx.session) if may_see_ticket(call.agent, t)]
    choice = pick_next(
        [WaitingTicket(id=t.id, tier=t.tier_at_open, priority=t.priority, opened_at=t.created_at, queue=t.queue,
                       language=t.language, skill=t.skill) for t in waiting],
        me,
    )
    if choice is None:
        call.answer("Nothing waiting that you can take. /queue shows the queue.")
        return
    ticket = next(t for t in waiting if t.id == choice.id)
    await take_ticket(call, ticket, "next")


@router.command("take", "t", usage="/take <ticket>", help="take a ticket (supervisors may take over)")
async def take(call: DeskCall) -> None:
    if not call.args:
        raise DeskError("Usage: /take <ticket>, e.g. /take 12")
    ticket = await visible_ticket(call, call.args[0])
    if ticket.status == "closed":
        raise DeskError(f"T-{ticket.id} is closed.")
    if ticket.assignee_id == call.agent.id:
        call.answer(f"T-{ticket.id} is already yours.", ticket_buttons(ticket.id))
        return
    how = "taken"
    if ticket.assignee_id is not None:
        how = "taken over"
        holder = await agents_repo.get_agent(call.ctx.session, ticket.assignee_id)
        if not call.is_supervisor:
            raise DeskError(f"T-{ticket.id} is being handled by {holder.name}; a supervisor can /transfer it.")
        previous = ticket.assignee_id
        if not await sla_repo.reassign_if_assigned_to(call.ctx.session, ticket.id, old_agent_id=previous,
                                                      new_agent_id=None):
            raise DeskError(f"T-{ticket.id} changed hands just now; try again.")
        await call.ctx.note_assignment(previous, -1)
    await take_ticket(call, ticket, how)

"""/queue, /next and /take: what is waiting, and taking it — only tickets of the tiers and queues one serves.
Whether a take is allowed (someone else's ticket, a stale button) is the ticket core's rule (`work.take`)."""

from __future__ import annotations

from datetime import datetime

from bot.core.messages import Button
from bot.core.names import readable_name
from bot.desk.router import DeskCall, DeskError, DeskRouter
from bot.routing.policy import WaitingTicket, pick_next
from bot.tickets import may_see_ticket, work
from crm_store.models import Ticket
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import desk as desk_repo

router = DeskRouter(__name__)
QUEUE_LINES = 15


def waited(ticket: Ticket, now: datetime) -> str:
    minutes = int((now - ticket.created_at).total_seconds() // 60)
    return f"{minutes}m" if minutes < 120 else f"{minutes // 60}h"


async def take_ticket(call: DeskCall, ticket: Ticket, how: str) -> None:
    """The core decides whether the caller may take `ticket` (and from whom); the writer moves it and its load."""
    ctx = call.ctx
    holder = (await ctx.agent_states()).get(ticket.assignee_id) if ticket.assignee_id else None
    holder_row = await agents_repo.get_agent(ctx.session, ticket.assignee_id) if ticket.assignee_id else None
    decision = work.take(ticket, call.actor, now=ctx.now, how=how, holder=holder,
                         holder_name=holder_row.name if holder_row else "")
    names = await desk_repo.customer_names(ctx.session, [ticket.customer_id])
    await call.apply(ticket, decision, (
        f"T-{ticket.id} is yours ({ticket.tier_at_open}, {ticket.channel}) — "
        f"{readable_name(names.get(ticket.customer_id), ticket.channel)}: {ticket.subject or '(no subject)'}\n"
        f"Answer with /reply {ticket.id} <text> or reply to this message."
    ))


async def waiting_for(call: DeskCall) -> list[Ticket]:
    """Waiting tickets the caller may see (the core's visibility rule)."""
    return [t for t in await desk_repo.waiting_tickets(call.ctx.session) if may_see_ticket(call.actor, t)]


@router.command("queue", "q", usage="/queue [tier|queue]", help="tickets waiting in the tiers and queues you serve")
async def show_queue(call: DeskCall) -> None:
    session = call.ctx.session
    wanted = call.args[0].lower() if call.args else ""
    waiting = await waiting_for(call)
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
                     f"{readable_name(names.get(t.customer_id), t.channel)}: {(t.subject or '')[:60]}")
    if len(waiting) > QUEUE_LINES:
        lines.append(f"… and {len(waiting) - QUEUE_LINES} more. /next takes the most urgent.")
    call.answer("\n".join(lines), tuple(Button(f"Take T-{t.id}", f"/take {t.id}") for t in waiting[:3]))


@router.command("next", "n", usage="/next", help="take the most urgent waiting ticket you can serve")
async def take_next(call: DeskCall) -> None:
    me = (await call.ctx.agent_states()).get(call.agent.id)
    if me is None or not me.available:
        raise DeskError(f"You are {call.agent.status} with {me.open_tickets if me else 0} open tickets "
                        f"(capacity {call.agent.capacity}); /status online or close a ticket first.")
    waiting = await waiting_for(call)
    choice = pick_next(
        [WaitingTicket(id=t.id, tier=t.tier_at_open, priority=t.priority, opened_at=t.created_at, queue=t.queue,
                       language=t.language, skill=t.skill) for t in waiting],
        me,
    )
    if choice is None:
        call.answer("Nothing waiting that you can take. /queue shows the queue.")
        return
    await take_ticket(call, next(t for t in waiting if t.id == choice.id), "next")


@router.command("take", "t", usage="/take <ticket>", help="take a ticket (supervisors may take over)", ticket=True)
async def take(call: DeskCall, ticket: Ticket) -> None:
    await take_ticket(call, ticket, "taken")

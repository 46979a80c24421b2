"""/note, /transfer and /status: private notes, handing a ticket on, and saying whether one takes new work."""

from __future__ import annotations

from dataclasses import replace

from bot.core.events import ticket_event
from bot.core.messages import Button
from bot.core.outbound import notify_agents
from bot.desk.access import may_see_ticket, visible_ticket
from bot.desk.router import DeskCall, DeskError, DeskRouter
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import desk as desk_repo
from crm_store.repositories import sla as sla_repo
from crm_store.repositories import tickets as tickets_repo

router = DeskRouter(__name__)
STATUSES = ("online", "away")


@router.command("note", usage="/note <ticket> <text>", help="a private note on the ticket (never sent)")
async def note(call: DeskCall) -> None:
    parts = call.rest.split(None, 1)
    if len(parts) < 2 or not parts[1].strip():
        raise DeskError("Usage: /note <ticket> <text>")
    ticket = await visible_ticket(call, parts[0])
    ctx = call.ctx
    saved = await tickets_repo.add_note(ctx.session, customer_id=ticket.customer_id, ticket_id=ticket.id,
                                        agent_id=call.agent.id, text=parts[1].strip())
    tickets_repo.add_event(ctx.session, ticket.id, "note", actor="agent", agent_id=call.agent.id, at=ctx.now,
                           note_id=saved.id)
    call.answer(f"Note saved on T-{ticket.id} (the customer does not see it).")


@router.command("transfer", usage="/transfer <ticket> <agent|queue>", help="hand the ticket to an agent or a queue")
async def transfer(call: DeskCall) -> None:
    if len(call.args) < 2:
        raise DeskError("Usage: /transfer <ticket> <agent|queue>, e.g. /transfer 12 Ana or /transfer 12 vip")
    ticket = await visible_ticket(call, call.args[0])
    ctx = call.ctx
    if ticket.status == "closed":
        raise DeskError(f"T-{ticket.id} is closed.")
    if not call.is_supervisor and ticket.assignee_id not in (None, call.agent.id):
        raise DeskError(f"T-{ticket.id} is someone else's; ask a supervisor to transfer it.")
    target_name = " ".join(call.args[1:])
    previous = ticket.assignee_id
    target = await agents_repo.find_agent(ctx.session, target_name)
    if target is not None:
        if target.id == previous:
            raise DeskError(f"T-{ticket.id} is already {target.name}'s.")
        if not may_see_ticket(target, ticket) and target.role == "agent" and (target.tiers or target.queues):
            raise DeskError(f"{target.name} does not serve {ticket.tier_at_open}/{ticket.queue} tickets.")
        new_agent, new_queue, where = target.id, ticket.queue, target.name
    else:
        queues = {p.queue.lower(): p.queue for p in ctx.policy.tiers.values()}
        for agent in (await ctx.agent_states()).values():
            queues.update({q.lower(): q for q in agent.queues})
        if target_name.lower() not in queues:
            raise DeskError(f"No agent or queue named {target_name!r}.")
        new_agent, new_queue, where = None, queues[target_name.lower()], f"queue {queues[target_name.lower()]}"
    if not await sla_repo.reassign_if_assigned_to(ctx.session, ticket.id, old_agent_id=previous,
                                                  new_agent_id=new_agent):
        raise DeskError(f"T-{ticket.id} changed hands just now; try again.")
    await ctx.session.refresh(ticket)
    ticket.queue = new_queue
    await ctx.note_assignment(previous, -1)
    await ctx.note_assignment(new_agent)
    tickets_repo.add_event(ctx.session, ticket.id, "transferred", actor="agent", agent_id=call.agent.id, at=ctx.now,
                           from_agent_id=previous, to_agent_id=new_agent, queue=new_queue)
    await ticket_event(ctx.session, ctx.settings, "ticket.assigned", ticket, key=f"c{call.contact_id}",
                       reason="transferred")
    if new_agent is not None:
        targets = [new_agent]
    else:
        targets = [a.id for a in (await ctx.agent_states()).values()
                   if a.status == "online" and a.serves(ticket.tier_at_open, new_queue) and a.id != call.agent.id]
    buttons = (Button("Take", f"/take {ticket.id}"), Button("History", f"/history T-{ticket.id}"))
    await notify_agents(ctx, targets, f"T-{ticket.id} was transferred to you by {call.agent.name}: "
                        f"{ticket.subject or '(no subject)'}", key=f"c{call.contact_id}:transfer",
                        ticket_id=ticket.id, customer_id=ticket.customer_id,
                        buttons=buttons if new_agent is None else buttons[1:])
    call.ticket_id = ticket.id
    call.answer(f"T-{ticket.id} transferred to {where}.")


@router.command("status", usage="/status online|away", help="whether new tickets may be routed to you")
async def status(call: DeskCall) -> None:
    wanted = call.args[0].lower() if call.args else ""
    if wanted not in STATUSES:
        raise DeskError(f"Usage: /status online|away (you are {call.agent.status}).")
    await desk_repo.set_agent_status(call.ctx.session, call.agent.id, wanted)
    call.agent.status = wanted
    states = await call.ctx.agent_states()
    if call.agent.id in states:
        states[call.agent.id] = replace(states[call.agent.id], status=wanted)
    call.answer(f"You are {wanted}." + (" New tickets will not be routed to you." if wanted == "away" else ""))

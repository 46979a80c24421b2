"""/reply and /close: answering a customer on their own channel and ending the conversation."""

from __future__ import annotations

from bot.assistant.texts import say
from bot.core.events import ticket_event
from bot.core.messages import Button
from bot.core.outbound import reply_to_customer
from bot.desk.access import visible_ticket
from bot.desk.router import TICKET_REF, DeskCall, DeskError, DeskRouter
from crm_store.models import Ticket
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import tickets as tickets_repo

router = DeskRouter(__name__)


async def send_agent_reply(call: DeskCall, ticket: Ticket, text: str) -> None:
    """Relay an agent's words to the customer and keep the ticket's clocks and audit trail right."""
    ctx = call.ctx
    if not text.strip():
        raise DeskError("Nothing to send: write /reply <ticket> <text>.")
    try:
        await reply_to_customer(
            ctx, ticket, text, key=f"c{call.contact_id}:reply", author="agent", agent_id=call.agent.id
        )
    except LookupError as exc:
        raise DeskError(f"Cannot reach the customer of T-{ticket.id}: {exc}") from exc
    if ticket.assignee_id is None:
        ticket.assignee_id = call.agent.id
        await ctx.note_assignment(call.agent.id)
        tickets_repo.add_event(
            ctx.session, ticket.id, "assigned", actor="agent", agent_id=call.agent.id, at=ctx.now, reason="replied"
        )
    ticket.first_responded_at = ticket.first_responded_at or ctx.now
    if ticket.status in ("open", "solved", "closed"):
        ticket.status = "pending"  # waiting for the customer
    ticket.handoff_reason = ticket.handoff_reason or "agent replied"
    ticket.updated_at = ctx.now
    tickets_repo.add_event(
        ctx.session, ticket.id, "replied", actor="agent", agent_id=call.agent.id, at=ctx.now, chars=len(text)
    )
    await ticket_event(ctx.session, ctx.settings, "ticket.replied", ticket, key=f"c{call.contact_id}",
                       agent_id=call.agent.id)
    customer = await customers_repo.get_customer(ctx.session, ticket.customer_id)
    call.answer(f"Sent to {customer.name or 'the customer'} on T-{ticket.id}.")


@router.command("reply", "r", usage="/reply <ticket> <text>", help="answer the customer on their own channel")
async def reply(call: DeskCall) -> None:
    if len(call.args) < 2:
        raise DeskError("Usage: /reply <ticket> <text>")
    ticket = await visible_ticket(call, call.args[0])
    text = call.rest.split(None, 1)[1] if len(call.rest.split(None, 1)) > 1 else ""
    await send_agent_reply(call, ticket, text)


@router.command(
    "close", usage="/close <ticket> [resolution]", help="close the ticket and ask the customer for a rating"
)
async def close(call: DeskCall) -> None:
    from bot.desk.relay import post_to_forum, topic_ticket

    # In a ticket's forum topic the topic names the ticket: "/close" or "/close <resolution>" is enough.
    in_topic = None if call.args and TICKET_REF.match(call.args[0]) else await topic_ticket(call)
    named = in_topic is None
    if named and not call.args:
        raise DeskError("Usage: /close <ticket> [resolution]")
    ticket = await visible_ticket(call, call.args[0]) if named else in_topic
    if ticket.status == "closed":
        raise DeskError(f"T-{ticket.id} is already closed.")
    ctx = call.ctx
    resolution = (call.rest.split(None, 1)[1:] or [""])[0] if named else call.rest
    was_assigned = ticket.assignee_id
    ticket.status, ticket.closed_at = "closed", ctx.now
    ticket.solved_at = ticket.solved_at or ctx.now
    ticket.resolution = resolution or ticket.resolution or "closed by agent"
    ticket.updated_at = ctx.now
    tickets_repo.add_event(
        ctx.session, ticket.id, "closed", actor="agent", agent_id=call.agent.id, at=ctx.now, resolution=resolution
    )
    await ticket_event(ctx.session, ctx.settings, "ticket.closed", ticket, key=f"c{call.contact_id}",
                       resolution=resolution)
    if was_assigned:
        await ctx.note_assignment(was_assigned, -1)
    customer = await customers_repo.get_customer(ctx.session, ticket.customer_id)
    buttons = tuple(Button(str(n), f"/csat {ticket.id} {n}") for n in range(1, 6))
    try:
        await reply_to_customer(
            ctx,
            ticket,
            say("csat_question", customer.language, ticket=ticket.id),
            key=f"c{call.contact_id}:csat",
            author="bot",
            buttons=buttons,
        )
    except LookupError:
        pass  # nobody to ask; closing still counts
    if ticket.topic_ref or ticket.handoff_reason:
        post_to_forum(ctx, ticket, f"T-{ticket.id} closed by {call.agent.name}" + (f": {resolution}" if resolution
                      else "."), key=f"c{call.contact_id}:forumclose", customer_name=customer.name or "",
                      close_topic=True)
    call.answer(f"T-{ticket.id} closed.")

"""/reply, /close and /reopen: answering a customer on their own channel, ending the conversation and taking it
up again. Every rule (who may reply, what closing does) is the ticket core's; this module reads the arguments.

A reply is confirmed twice: "queued" when it is written, then "delivered" (or why not) once the outbox has sent
it (`bot.core.delivery_notices`), so an agent never reads "sent" for a message that was not."""

from __future__ import annotations

from bot.core.delivery_notices import CONFIRM_NAME, CONFIRM_TO, queued_text
from bot.desk.media import agent_files
from bot.desk.router import DeskCall, DeskRouter
from bot.tickets import lifecycle, work
from crm_store.models import Ticket
from crm_store.repositories import customers as customers_repo

router = DeskRouter(__name__)


async def send_reply(call: DeskCall, ticket: Ticket, text: str) -> None:
    """The agent's words (and photo or document) to the ticket's customer, from /reply, /canned or a plain
    reply to the ticket's message."""
    files = await agent_files(call, ticket)
    if files:
        text = files.text(text, call.msg.attachments)
    customer = await customers_repo.get_customer(call.ctx.session, ticket.customer_id)
    name = customer.name or "the customer"
    decision = work.reply(ticket, call.actor, text, now=call.ctx.now, customer_name=customer.name)
    decision.answer = queued_text(name, ticket.id, "; you will hear when it is delivered")
    before = len(call.ctx.outbox)
    await call.apply(ticket, decision)
    rows = call.ctx.outbox[before:]
    prefix = f"{call.cause}:reply"
    for row in rows:
        if row["idempotency_key"].startswith(prefix) and row["audience"] == "customer":
            row["meta"][CONFIRM_TO] = f"{call.msg.channel}:{call.msg.sender}"
            row["meta"][CONFIRM_NAME] = name[:80]
    if files:
        files.mark(rows, prefix, call.msg.channel)


@router.command(
    "reply", "r", usage="/reply <ticket> <text>", help="answer the customer on their own channel", ticket=True
)
async def reply(call: DeskCall, ticket: Ticket) -> None:
    await send_reply(call, ticket, call.rest)


@router.command(
    "close",
    usage="/close <ticket> [resolution]",
    help="close the ticket and ask the customer for a rating",
    ticket=True,
)
async def close(call: DeskCall, ticket: Ticket) -> None:
    customer = await customers_repo.get_customer(call.ctx.session, ticket.customer_id)
    await call.apply(
        ticket,
        lifecycle.close(
            ticket, call.actor, call.rest, now=call.ctx.now, language=customer.language, by_name=call.agent.name
        ),
    )


@router.command("reopen", usage="/reopen <ticket>", help="open a solved or closed ticket again", ticket=True)
async def reopen(call: DeskCall, ticket: Ticket) -> None:
    await call.apply(ticket, lifecycle.reopen(ticket, call.actor, now=call.ctx.now))

"""/reply, /close and /reopen: answering a customer on their own channel, ending the conversation and taking it
up again. Every rule (who may reply, what closing does) is the ticket core's; this module reads the arguments."""

from __future__ import annotations

from bot.desk.router import DeskCall, DeskRouter
from bot.tickets import lifecycle, work
from crm_store.models import Ticket
from crm_store.repositories import customers as customers_repo

router = DeskRouter(__name__)


async def send_reply(call: DeskCall, ticket: Ticket, text: str) -> None:
    """The agent's words to the ticket's customer (from /reply or a plain reply to the ticket's message)."""
    customer = await customers_repo.get_customer(call.ctx.session, ticket.customer_id)
    await call.apply(ticket, work.reply(ticket, call.actor, text, now=call.ctx.now, customer_name=customer.name))


@router.command("reply", "r", usage="/reply <ticket> <text>", help="answer the customer on their own channel",
                ticket=True)
async def reply(call: DeskCall, ticket: Ticket) -> None:
    await send_reply(call, ticket, call.rest)


@router.command("close", usage="/close <ticket> [resolution]",
                help="close the ticket and ask the customer for a rating", ticket=True)
async def close(call: DeskCall, ticket: Ticket) -> None:
    customer = await customers_repo.get_customer(call.ctx.session, ticket.customer_id)
    await call.apply(ticket, lifecycle.close(ticket, call.actor, call.rest, now=call.ctx.now,
                                             language=customer.language, by_name=call.agent.name))


@router.command("reopen", usage="/reopen <ticket>", help="open a solved or closed ticket again", ticket=True)
async def reopen(call: DeskCall, ticket: Ticket) -> None:
    await call.apply(ticket, lifecycle.reopen(ticket, call.actor, now=call.ctx.now))

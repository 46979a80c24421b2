"""The desk's lookups of what an agent names: a ticket, a customer, the ticket a message is about. Who may see
what is the ticket core's rule (`bot.tickets.access`); these only find the row and ask it."""

from __future__ import annotations

import re

from bot.desk.router import DeskCall, DeskError
from bot.identity.linking import normalise
from bot.tickets import may_see_tier, parse_id
from bot.tickets.access import visible_ticket as core_visible_ticket
from crm_store.errors import NotFound
from crm_store.models import Customer, Ticket
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import desk as desk_repo
from crm_store.repositories import outbox as outbox_repo

LOOKS_LIKE_CUSTOMER = re.compile(r"^-?(?:C-?|#)?-?\d+$", re.IGNORECASE)
"""A customer number as typed (the core's `parse_id` then says whether it is one); a phone is "+49...", not this."""
PHONE = re.compile(r"(?:\+|00)[\d ().-]{5,24}")


async def visible_ticket(call: DeskCall, ref: str | int) -> Ticket:
    """The ticket an agent named, if it exists and they may see it (the same answer either way: no leaks)."""
    ticket = await core_visible_ticket(call.ctx.session, call.actor, ref)
    call.ticket_id = ticket.id
    return ticket


async def visible_customer(call: DeskCall, ref: str) -> Customer:
    """A customer by number, @username, email, phone, external ref, or a ticket (T-12) of theirs."""
    session = call.ctx.session
    ref = ref.strip()
    if ref.upper().startswith("T-"):
        ticket = await visible_ticket(call, ref)
        customer = await customers_repo.get_customer(session, ticket.customer_id)
    else:
        if LOOKS_LIKE_CUSTOMER.match(ref):
            parse_id(ref.lstrip("#"), what="customer")  # too large, negative: the core's answer, not a crash
        customer = None
        for spelling in spellings(ref):
            try:
                customer = await customers_repo.find_customer(session, spelling)
            except NotFound:  # "C-99999": a number nobody has (a stale or forged button)
                customer = None
            if customer is not None:
                break
    if customer is None or not may_see_tier(call.actor, customer.manual_tier or customer.tier):
        raise DeskError(f"No customer {ref[:60]!r} in your tiers.")
    return customer


def spellings(ref: str) -> list[str]:
    """What an agent typed, then the one spelling identities are stored in: "+49 151 2345" and "0049-151-2345"
    as "+491512345", an email in lower case (the identity module's `normalise`)."""
    found = [ref]
    digits = "".join(ch for ch in ref if ch.isdigit())
    if PHONE.fullmatch(ref) and len(digits) >= 6:
        found.append("+" + (digits[2:] if ref.startswith("00") else digits))
    if "@" in ref[1:]:
        found.append(normalise("email", ref))
    return list(dict.fromkeys(found))


async def customer_by_number(call: DeskCall, ref: str) -> Customer:
    """A customer named by number only (C-12 or 12), as it is: a merged customer is not followed to the one it
    went into, so a second merge of it can be refused."""
    customer = await call.ctx.session.get(Customer, parse_id(ref, what="customer"))
    if customer is None or not may_see_tier(call.actor, customer.manual_tier or customer.tier):
        raise DeskError(f"No customer {ref[:60]!r} in your tiers.")
    return customer


async def replied_ticket(call: DeskCall) -> Ticket | None:
    """The ticket of the message the agent replied to (a notification, a /take answer, ...), if it had one."""
    msg = call.msg
    if not msg.thread_ref:
        return None
    # Notifications go to the agent's own chat (or the chat they were sent to): that is the outbox recipient.
    recipients = dict.fromkeys([msg.meta_value("chat_id"), msg.sender])
    for recipient in filter(None, recipients):
        item = await outbox_repo.item_by_external_id(call.ctx.session, msg.channel, recipient, msg.thread_ref)
        if item is not None and item.ticket_id is not None:
            return await visible_ticket(call, item.ticket_id)
    return None


async def topic_ticket(call: DeskCall) -> Ticket | None:
    """The ticket mirrored by the forum topic the agent wrote in (forum mode)."""
    thread = call.msg.meta_value("message_thread_id")
    chat = call.msg.meta_value("chat_id")
    if not thread or not chat:
        return None
    ticket = await desk_repo.ticket_by_topic(call.ctx.session, f"{chat}:{thread}")
    return await visible_ticket(call, ticket.id) if ticket is not None else None


async def context_ticket(call: DeskCall) -> Ticket | None:
    """The ticket a message is about without naming it: the one it replies to, else its forum topic's."""
    return await replied_ticket(call) or await topic_ticket(call)

"""Plain messages from agents that answer a ticket without a command: a Telegram reply to a ticket message, or a
message in the ticket's forum topic. Both go to the customer on the customer's own channel.

Forum mode (``telegram.forum_chat_id`` set) mirrors each handed-off ticket in a topic of that supergroup: the new
ticket notice and the customer's later messages are posted there, closing the ticket closes the topic. Topic
creation is I/O, so it happens in the Telegram channel when the first post for a ticket is delivered; the outbox
then remembers the topic on the ticket (``Ticket.topic_ref`` = ``chat:thread``)."""

from __future__ import annotations

from bot.desk.access import visible_ticket
from bot.desk.router import DeskCall
from bot.desk.tickets import send_agent_reply
from crm_store.models import Ticket
from crm_store.repositories import desk as desk_repo
from crm_store.repositories import outbox as outbox_repo


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
            return await visible_ticket(call, str(item.ticket_id))
    return None


async def topic_ticket(call: DeskCall) -> Ticket | None:
    """The ticket mirrored by the forum topic the agent wrote in (forum mode)."""
    thread = call.msg.meta_value("message_thread_id")
    chat = call.msg.meta_value("chat_id")
    if not thread or not chat:
        return None
    ticket = await desk_repo.ticket_by_topic(call.ctx.session, f"{chat}:{thread}")
    return await visible_ticket(call, str(ticket.id)) if ticket is not None else None


async def relay_plain_reply(call: DeskCall) -> bool:
    """Send the agent's plain message to the ticket's customer; False if it answers no ticket."""
    ticket = await replied_ticket(call) or await topic_ticket(call)
    if ticket is None:
        return False
    if ticket.status == "closed":
        call.answer(f"T-{ticket.id} is closed; nothing was sent.")
        return True
    if not call.msg.text.strip():
        call.answer("Only text can be relayed to the customer; nothing was sent.")
        return True
    await send_agent_reply(call, ticket, call.msg.text)
    return True

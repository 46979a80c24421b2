"""Plain messages from agents that answer a ticket without a command: a Telegram reply to a ticket message, or a
message in the ticket's forum topic. Both are a reply on the ticket (the core's `work.reply`: the same rules as
/reply) and go to the customer on the customer's own channel.

Forum mode (``telegram.forum_chat_id`` set) mirrors each handed-off ticket in a topic of that supergroup: the new
ticket notice and the customer's later messages are posted there, closing the ticket closes the topic. Topic
creation is I/O, so it happens in the Telegram channel when the first post for a ticket is delivered; the outbox
then remembers the topic on the ticket (``Ticket.topic_ref`` = ``chat:thread``)."""

from __future__ import annotations

from bot.desk.access import context_ticket
from bot.desk.router import DeskCall
from bot.desk.tickets import send_reply


async def relay_plain_reply(call: DeskCall) -> bool:
    """Send the agent's plain message to the ticket's customer; False if it answers no ticket."""
    ticket = await context_ticket(call)
    if ticket is None:
        return False
    await send_reply(call, ticket, call.msg.text)
    return True

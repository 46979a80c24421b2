"""Forum mode (``telegram.forum_chat_id`` set): each handed-off ticket is mirrored in a topic of that
supergroup. The new-ticket notice and the customer's later messages are posted there, closing the ticket closes
the topic. Topic creation is I/O, so the channel does it when the first post for a ticket is delivered; the outbox
then remembers the topic on the ticket (``Ticket.topic_ref`` = ``chat:thread``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.core.messages import Button
from crm_store.models import Ticket

if TYPE_CHECKING:
    from bot.core.outbound import BatchContext


def forum_chat(ctx: BatchContext) -> int | None:
    """The forum supergroup, when forum mode is on."""
    return ctx.settings.telegram.forum_chat_id


def topic_title(ticket: Ticket, tier: str | None, customer_name: str) -> str:
    return f"T-{ticket.id} · {tier or ticket.tier_at_open or 'potential'} · {customer_name or 'customer'}"[:128]


def post_to_forum(
    ctx: BatchContext,
    ticket: Ticket,
    text: str,
    *,
    key: str,
    customer_name: str,
    tier: str | None = None,
    buttons: tuple[Button, ...] = (),
    close_topic: bool = False,
) -> bool:
    """Queue `text` for the ticket's topic (the channel creates the topic on first use); False when forum mode
    is off. Only agents are in the forum: these messages are internal and never reach the customer."""
    chat = forum_chat(ctx)
    if chat is None:
        return False
    meta = {"forum_topic_for_ticket": str(ticket.id), "topic_title": topic_title(ticket, tier, customer_name)}
    topic_chat, _, thread = (ticket.topic_ref or "").rpartition(":")
    if thread and topic_chat == str(chat):  # a topic in an earlier forum chat is not reused
        meta["message_thread_id"] = thread
    if close_topic:
        meta["close_forum_topic"] = "1"
    ctx.queue_message(
        key=key,
        channel="telegram",
        recipient=str(chat),
        text=text,
        author="system",
        ticket_id=ticket.id,
        customer_id=ticket.customer_id,
        buttons=buttons,
        meta=meta,
    )
    return True

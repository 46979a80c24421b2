"""The desk mirror (forum mode): each handed-off ticket is mirrored in a thread of a desk chat, when a channel
offers one (Telegram: a topic of the supergroup ``telegram.forum_chat_id``). The new-ticket notice and the
customer's later messages are posted there; closing the ticket closes the thread. Creating a thread is I/O, so the
channel does it when the first post for a ticket is delivered; the outbox then remembers it on the ticket
(``Ticket.topic_ref``). Which channel mirrors, and how a post is addressed, is that channel's `mirror_target` /
`mirror_fields` hook."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.core.messages import Button
from channels.base import known_channels, section_of, traits_of
from crm_store.models import Agent, Ticket

if TYPE_CHECKING:
    from bot.core.outbound import BatchContext


def desk_mirror(settings: Any) -> tuple[str, str] | None:
    """(channel, target) of the desk mirror: the first channel whose own settings name a mirror target."""
    for name in known_channels():
        target = traits_of(name).mirror_target(section_of(settings, name))
        if target:
            return name, target
    return None


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
    """Queue `text` for the ticket's mirror thread (the channel creates it on first use); False when no channel
    mirrors. Only agents are in the desk chat: these messages are desk traffic and never reach the customer."""
    mirror = desk_mirror(ctx.settings)
    if mirror is None:
        return False
    channel, target = mirror
    meta = traits_of(channel).mirror_fields(target, ticket.id, topic_title(ticket, tier, customer_name),
                                            ticket.topic_ref or "", close_topic)
    ctx.queue_message(
        key=key,
        channel=channel,
        recipient=target,
        text=text,
        author="system",
        audience="desk",
        ticket_id=ticket.id,
        customer_id=ticket.customer_id,
        buttons=buttons,
        meta=meta,
    )
    return True


async def forum_name_of(ctx: BatchContext, agent_id: int | None) -> str:
    """The agent's name for a forum post ("Assigned to Ana"); looked up only when a channel mirrors tickets."""
    if agent_id is None or desk_mirror(ctx.settings) is None:
        return ""
    agent = await ctx.session.get(Agent, agent_id)
    return agent.name if agent is not None else ""


async def tell_ticket_people(ctx: BatchContext, ticket: Ticket, name: str, said: str, *, key: str) -> bool:
    """What a customer said on a ticket people have, shown to them: posted in its mirror thread and sent to its
    assignee (keys `<key>:forum`, `<key>:fwd`); True when an assignee was told."""
    from bot.core.outbound import notify_agents  # at call time: outbound's BatchContext is only a type here

    post_to_forum(ctx, ticket, f"{name}: {said}", key=f"{key}:forum", customer_name=name)
    if ticket.assignee_id is None:
        return False
    await notify_agents(ctx, [ticket.assignee_id], f"T-{ticket.id} · {name}: {said}", key=f"{key}:fwd",
                        ticket_id=ticket.id, customer_id=ticket.customer_id)
    return True

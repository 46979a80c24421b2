"""What happens to a customer's message once it is logged: join or open its ticket, let the bot answer if it
can, otherwise route the ticket to a human by tier and tell everyone who needs to know."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

from bot.assistant.responder import BotTurn
from bot.assistant.texts import say
from bot.core.events import ticket_event
from bot.core.forum import post_to_forum
from bot.core.messages import Button, InboundMessage
from bot.core.outbound import BatchContext, notify_agents, reply_to_customer
from bot.routing.policy import RouteRequest, route
from crm_store.models import Ticket
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import outbox as outbox_repo
from crm_store.repositories import tickets as tickets_repo

TAG = re.compile(r"\[#T-(\d+)\]")
CSAT = re.compile(r"^\s*(?:/csat\s+(\d+)\s+)?([1-5])\s*$")
REOPEN_WINDOW = timedelta(days=7)


def wants_no_auto_reply(msg: InboundMessage) -> bool:
    return msg.meta_value("no_auto_reply") == "1"


async def find_thread(ctx: BatchContext, msg: InboundMessage, customer_id: int) -> Ticket | None:
    """A ticket named by the message itself: a message id it replies to, else a [#T-n] tag in its subject."""
    refs = msg.thread_ref.split()
    if refs:
        found = await contacts_repo.tickets_for_external_ids(ctx.session, msg.channel, refs)
        for ref in reversed(refs):  # In-Reply-To comes last in our thread_ref convention: most specific
            if ref in found:
                return await ctx.session.get(Ticket, found[ref])
    for text in (msg.meta_value("subject"), msg.thread_ref):
        match = TAG.search(text or "")
        if match:
            ticket = await ctx.session.get(Ticket, int(match.group(1)))
            if ticket is not None and ticket.customer_id == customer_id:
                return ticket
    return None


def _reusable(ctx: BatchContext, ticket: Ticket | None) -> bool:
    """A recently solved conversation is picked up again rather than opening a new ticket."""
    return bool(
        ticket and ticket.status == "solved" and ticket.updated_at and ctx.now - ticket.updated_at < REOPEN_WINDOW
    )


def _needs_per_message_lookup(msg: InboundMessage) -> bool:
    return bool(
        msg.edit_of
        or msg.thread_ref
        or TAG.search(msg.meta_value("subject"))
        or CSAT.match(msg.text)
        or msg.meta_value("claimed_email")
        or msg.meta_value("claimed_phone")
    )


def likely_ticket(ctx: BatchContext, msg: InboundMessage, customer_id: int | None) -> int | None:
    """The ticket a plain message will join (its customer's open conversation), so its contact is logged with it
    and needs no second write; a message that may name another thread gets its ticket when it is handled."""
    if customer_id is None or _needs_per_message_lookup(msg):
        return None
    ticket = ctx.active.get(customer_id)
    return ticket.id if ticket is not None else None


async def open_tickets_in_bulk(ctx: BatchContext, items: list[tuple[InboundMessage, int]]) -> None:
    """Open, with one flush, the tickets that new conversations in this batch need (the common case); messages
    that name a thread, edit, rate or link are left to `ticket_for`."""
    wanted: dict[int, InboundMessage] = {}
    for msg, customer_id in items:
        if customer_id in wanted or customer_id in ctx.active or _needs_per_message_lookup(msg):
            continue
        if _reusable(ctx, ctx.latest.get(customer_id)):
            continue
        wanted[customer_id] = msg
    if not wanted:
        return
    opened = await tickets_repo.open_tickets(
        ctx.session, [_ticket_fields(ctx, msg, cid) for cid, msg in wanted.items()]
    )
    for cid, ticket in zip(wanted, opened, strict=True):
        tickets_repo.add_event(ctx.session, ticket.id, "opened", actor="customer", at=ctx.now, channel=ticket.channel)
        ctx.active[cid] = ctx.latest[cid] = ticket
        ctx.opened.add(ticket.id)


def _ticket_fields(ctx: BatchContext, msg: InboundMessage, customer_id: int) -> dict:
    facts = ctx.facts.get(customer_id, {})
    subject = msg.meta_value("subject") or (msg.text.strip().splitlines() or [""])[0][:120]
    return {
        "customer_id": customer_id,
        "channel": msg.channel,
        "status": "open",
        "subject": subject[:255],
        "tier_at_open": facts.get("tier") or "potential",
        "created_at": ctx.now,
        "updated_at": ctx.now,
    }


async def ticket_for(ctx: BatchContext, msg: InboundMessage, customer_id: int) -> tuple[Ticket, bool]:
    """The conversation this message belongs to; returns (ticket, opened_now)."""
    ticket = await find_thread(ctx, msg, customer_id) or ctx.active.get(customer_id)
    if ticket is None and _reusable(ctx, ctx.latest.get(customer_id)):
        ticket = ctx.latest[customer_id]
    if ticket is not None:
        if ticket.status in ("solved", "pending") or (ticket.status == "closed" and ticket.id == _thread_id(msg)):
            if ticket.status != "pending":
                tickets_repo.add_event(ctx.session, ticket.id, "reopened", actor="customer", at=ctx.now)
            ticket.status = "open"
        if ticket.status != "closed":
            ctx.active[customer_id] = ticket
            return ticket, False
    ticket = await tickets_repo.open_ticket(ctx.session, **_ticket_fields(ctx, msg, customer_id))
    tickets_repo.add_event(ctx.session, ticket.id, "opened", actor="customer", at=ctx.now, channel=msg.channel)
    ctx.active[customer_id] = ctx.latest[customer_id] = ticket
    ctx.opened.add(ticket.id)
    return ticket, True


def _thread_id(msg: InboundMessage) -> int | None:
    match = TAG.search(msg.meta_value("subject") or "")
    return int(match.group(1)) if match else None


async def handle_customer_message(ctx: BatchContext, msg: InboundMessage, contact_id: int, customer_id: int) -> int:
    """Everything after logging; returns the ticket id the contact belongs to."""
    if msg.edit_of:
        original = await contacts_repo.contact_by_external_id(ctx.session, msg.channel, msg.edit_of)
        if original is not None:
            ctx.contact_updates.append({"id": contact_id, "edit_of_id": original.id, "ticket_id": original.ticket_id})
            if original.ticket_id:
                tickets_repo.add_event(ctx.session, original.ticket_id, "edited", actor="customer", at=ctx.now)
                return original.ticket_id
    rated = await _csat_answer(ctx, msg, customer_id, contact_id)
    if rated is not None:
        return rated
    if not msg.text.strip() and all(a.kind == "contact" for a in msg.attachments):
        return _nothing_to_read(ctx, msg, customer_id, contact_id)
    ticket, _opened = await ticket_for(ctx, msg, customer_id)
    facts = ctx.facts.get(customer_id, {})
    turn = _understand(ctx, msg, facts.get("language"))
    update = {"id": contact_id, "ticket_id": ticket.id}
    if turn.nlu is not None:
        update["nlu"] = turn.nlu
    ctx.contact_updates.append(update)
    if turn.language and not facts.get("language"):
        facts["language"] = turn.language
        ctx.facts[customer_id] = facts
        await customers_repo.set_language(ctx.session, customer_id, turn.language)
    language = facts.get("language") or turn.language
    if ticket.handoff_reason is not None:
        await _tell_assignee(ctx, ticket, msg, contact_id, facts)
        return ticket.id
    if turn.answer and not wants_no_auto_reply(msg) and await _bot_may_answer(ctx, customer_id):
        await reply_to_customer(ctx, ticket, turn.answer, key=f"c{contact_id}:bot", author="bot", inbound=msg)
        ticket.status, ticket.solved_at, ticket.resolution = "solved", ctx.now, "answered by the bot"
        ticket.intent = turn.intent
        ticket.first_responded_at = ticket.first_responded_at or ctx.now
        ticket.updated_at = ctx.now
        tickets_repo.add_event(ctx.session, ticket.id, "bot_answered", actor="bot", at=ctx.now, intent=turn.intent)
        return ticket.id
    await hand_off(ctx, ticket, msg, contact_id, turn, language)
    return ticket.id


def _understand(ctx: BatchContext, msg: InboundMessage, language: str | None) -> BotTurn:
    if not msg.text.strip():
        reason = "attachment without text" if msg.attachments else "empty message"
        return BotTurn(answer=None, handoff_reason=reason)
    try:
        return ctx.responder.respond(msg.text[: ctx.settings.nlu.max_chars], customer_language=language)
    except Exception as exc:
        return BotTurn(answer=None, handoff_reason=f"bot error: {type(exc).__name__}")


async def _bot_may_answer(ctx: BatchContext, customer_id: int) -> bool:
    limit = ctx.settings.email.bot_replies_per_sender_per_hour
    recent = await outbox_repo.bot_replies_since(ctx.session, customer_id, ctx.now - timedelta(hours=1))
    pending = sum(1 for row in ctx.outbox if row["customer_id"] == customer_id and row["author"] == "bot")
    return recent + pending < limit


async def hand_off(
    ctx: BatchContext, ticket: Ticket, msg: InboundMessage, contact_id: int, turn: BotTurn, language: str | None
) -> None:
    """Route the ticket by the customer's stored tier, assign or queue it, notify, and acknowledge."""
    facts = ctx.facts.get(ticket.customer_id, {})
    tier = facts.get("tier") or "potential"
    agents = await ctx.agent_states()
    decision = route(
        RouteRequest(
            tier=tier,
            opened_at=ctx.now,
            language=language,
            key_account_manager_id=facts.get("kam"),
        ),
        list(agents.values()),
        ctx.policy,
    )
    imported = msg.meta_value("imported") == "1"  # migrated history: file it, page nobody, start no clock
    first_handoff = ticket.handoff_reason is None
    ticket.handoff_reason = (turn.handoff_reason or "needs a person")[:255]
    ticket.intent, ticket.language = turn.intent, language
    ticket.queue, ticket.priority, ticket.tier_at_open = decision.queue, decision.priority, tier
    if imported:
        decision = replace(decision, assignee_id=None, reason="imported")
    else:
        ticket.first_response_due, ticket.resolution_due = decision.first_response_due, decision.resolution_due
    ticket.assignee_id, ticket.status, ticket.updated_at = decision.assignee_id, "open", ctx.now
    tickets_repo.add_event(
        ctx.session,
        ticket.id,
        "routed",
        at=ctx.now,
        queue=decision.queue,
        tier=tier,
        assignee_id=decision.assignee_id,
        reason=decision.reason,
        handoff=ticket.handoff_reason,
    )
    await ctx.note_assignment(decision.assignee_id)
    if first_handoff:
        await ticket_event(ctx.session, ctx.settings, "ticket.created", ticket, key=f"c{contact_id}")
    if decision.assignee_id:
        await ticket_event(ctx.session, ctx.settings, "ticket.assigned", ticket, key=f"c{contact_id}",
                           reason=decision.reason)
    if imported:
        return
    targets = (
        [decision.assignee_id]
        if decision.assignee_id
        else [a.id for a in agents.values() if a.status == "online" and a.serves(tier, decision.queue)]
    )
    name = facts.get("name") or msg.sender_name or msg.sender
    text = (
        f"New ticket T-{ticket.id} · {tier} · {msg.channel}\nFrom: {name}\n{msg.text[:700]}\n"
        f"Why: {ticket.handoff_reason}" + ("" if decision.assignee_id else f"\nWaiting in queue {decision.queue}")
    )
    buttons = (
        Button("Take", f"/take {ticket.id}"),
        Button("Close", f"/close {ticket.id}"),
        Button("History", f"/history T-{ticket.id}"),
    )
    await notify_agents(
        ctx,
        targets,
        text,
        key=f"c{contact_id}:notify",
        ticket_id=ticket.id,
        customer_id=ticket.customer_id,
        buttons=buttons,
    )
    post_to_forum(ctx, ticket, text, key=f"c{contact_id}:forum", customer_name=name, tier=tier, buttons=buttons)
    if ctx.settings.dispatch.ack_new_ticket and not wants_no_auto_reply(msg):
        await reply_to_customer(
            ctx,
            ticket,
            say("handoff_ack", language, ticket=ticket.id),
            key=f"c{contact_id}:ack",
            author="bot",
            inbound=msg,
        )


async def _tell_assignee(ctx: BatchContext, ticket: Ticket, msg: InboundMessage, contact_id: int, facts: dict) -> None:
    name = facts.get("name") or msg.sender_name or msg.sender
    said = msg.text or " ".join(f"[{a.kind}]" for a in msg.attachments) or "(empty message)"
    post_to_forum(ctx, ticket, f"{name}: {said}", key=f"c{contact_id}:forum", customer_name=name)
    if ticket.assignee_id is None:
        return
    await notify_agents(
        ctx,
        [ticket.assignee_id],
        f"T-{ticket.id} · {name}: {msg.text[:700]}",
        key=f"c{contact_id}:fwd",
        ticket_id=ticket.id,
        customer_id=ticket.customer_id,
    )


async def _csat_answer(ctx: BatchContext, msg: InboundMessage, customer_id: int, contact_id: int) -> int | None:
    """A rating (a button press or a bare 1-5) for the customer's recently closed ticket; None if it is not one."""
    match = CSAT.match(msg.text)
    if not match:
        return None
    if match.group(1):
        ticket = await ctx.session.get(Ticket, int(match.group(1)))
    else:
        ticket = ctx.latest.get(customer_id)
    if ticket is None or ticket.customer_id != customer_id or ticket.status != "closed" or ticket.csat is not None:
        return None
    if ticket.closed_at and ctx.now - ticket.closed_at > REOPEN_WINDOW:
        return None
    ticket.csat = int(match.group(2))
    tickets_repo.add_event(ctx.session, ticket.id, "csat", actor="customer", at=ctx.now, score=ticket.csat)
    ctx.contact_updates.append({"id": contact_id, "ticket_id": ticket.id})
    language = ctx.facts.get(customer_id, {}).get("language")
    await reply_to_customer(
        ctx, ticket, say("csat_thanks", language), key=f"c{contact_id}:csat", author="bot", inbound=msg
    )
    return ticket.id


def _nothing_to_read(ctx: BatchContext, msg: InboundMessage, customer_id: int, contact_id: int) -> int | None:
    """An identity claim (a left email, a shared contact) or an empty message: logged, joined to the open
    conversation if there is one, and never a reason to page a person."""
    ticket = ctx.active.get(customer_id)
    if ticket is not None:
        ctx.contact_updates.append({"id": contact_id, "ticket_id": ticket.id})
    is_claim = msg.meta_value("claimed_email") or msg.meta_value("claimed_phone")
    if not is_claim and not wants_no_auto_reply(msg):
        language = ctx.facts.get(customer_id, {}).get("language")
        ctx.queue_message(
            key=f"c{contact_id}:empty",
            channel=msg.channel,
            recipient=msg.sender,
            text=say("empty_message", language),
            author="bot",
            ticket_id=ticket.id if ticket else None,
            customer_id=customer_id,
            reply_to=msg.external_id,
        )
    return ticket.id if ticket else None

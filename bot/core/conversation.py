"""What happens to a customer's message once it is logged: join or open its ticket, let the bot answer if it
can, otherwise route the ticket to a human by tier and tell everyone who needs to know."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta

from bot.assistant import clarify
from bot.assistant.responder import BotTurn
from bot.assistant.texts import say
from bot.core import attachments as media
from bot.core.forum import tell_ticket_people
from bot.core.messages import InboundMessage
from bot.core.names import notice_name
from bot.core.outbound import BatchContext, bot_reply_cap, notify_agents, reply_to_customer
from bot.identity import carries_identity, looks_like_code
from bot.tickets import BOT, CUSTOMER, DEFAULT_RULES, MAX_ID, CustomerMessage, Decision, TicketError, apply, lifecycle
from bot.tickets.handoff import Handoff
from bot.tickets.handoff import hand_off as tickets_handoff
from crm_store.models import Contact, Ticket
from crm_store.repositories import bot_answers as bot_answers_repo
from crm_store.repositories import contacts as contacts_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import tickets as tickets_repo

BOT_ANSWERS = "bot_answers"
"""Key of a customer's facts: bot answers written to them within `BOT_CAP_WINDOW` before this batch."""
LANGUAGE_UNSAVED = "language_unsaved"
"""Key of a customer's facts: their language was learned in this batch and is not written yet."""
TAG = re.compile(r"\[#T-(\d+)\]")
CSAT = re.compile(r"^\s*(?:/csat\s+(\d{1,30})\s+)?([1-5])\s*$")
RULES = DEFAULT_RULES
BOT_CAP_WINDOW = timedelta(hours=1)
"""The bot answers one sender at most `bot_reply_cap` times within this window."""


def wants_no_auto_reply(msg: InboundMessage) -> bool:
    return msg.meta_value("no_auto_reply") == "1"


async def find_thread(ctx: BatchContext, msg: InboundMessage, customer_id: int) -> Ticket | None:
    """A ticket named by the message itself: a message id it replies to, else a [#T-n] tag in its subject."""
    refs = msg.thread_ref.split()
    if refs:
        found = await contacts_repo.tickets_for_external_ids(ctx.session, msg.channel, refs)
        for ref in reversed(refs):  # In-Reply-To comes last in our thread_ref convention: most specific
            if ref in found:
                ticket = await ctx.session.get(Ticket, found[ref])
                if ticket is not None and ticket.customer_id == customer_id:  # never someone else's thread
                    return ticket
    for text in (msg.meta_value("subject"), msg.thread_ref):
        match = TAG.search(text or "")
        if match:
            ticket = await _ticket_by_number(ctx, match.group(1))
            if ticket is not None and ticket.customer_id == customer_id:
                return ticket
    return None


async def _ticket_by_number(ctx: BatchContext, number: str) -> Ticket | None:
    """A ticket a customer's message names; a number no ticket can have names none."""
    value = int(number)
    return await ctx.session.get(Ticket, value) if 1 <= value <= MAX_ID else None


def _reusable(ctx: BatchContext, ticket: Ticket | None) -> bool:
    """A recently solved conversation is picked up again rather than opening a new ticket."""
    return bool(
        ticket and ticket.status == "solved" and ticket.updated_at and ctx.now - ticket.updated_at < RULES.reopen_window
    )


def _needs_per_message_lookup(msg: InboundMessage) -> bool:
    return bool(
        msg.edit_of
        or msg.thread_ref
        or TAG.search(msg.meta_value("subject"))
        or CSAT.match(msg.text)
        or clarify.is_press(msg.text)
        or carries_identity(msg)
        or looks_like_code(msg.text)
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
        tickets_repo.add_event(ctx.session, ticket.id, "opened", actor="customer", at=ticket.created_at,
                               channel=ticket.channel)
        ctx.active[cid] = ctx.latest[cid] = ticket
        ctx.opened.add(ticket.id)


def _imported(msg: InboundMessage) -> bool:
    """Migrated history: filed on its own date, pages nobody, starts no clock, left out of the figures."""
    return msg.meta_value("imported") == "1"


def _ticket_fields(ctx: BatchContext, msg: InboundMessage, customer_id: int) -> dict:
    imported = _imported(msg)
    return lifecycle.open_fields(
        customer_id=customer_id, channel=msg.channel, tier=ctx.facts.get(customer_id, {}).get("tier"),
        now=min(msg.received_at, ctx.now) if imported else ctx.now, subject=lifecycle.subject_of(msg.text,
        msg.meta_value("subject")), source="imported" if imported else "live",
    )


async def ticket_for(ctx: BatchContext, msg: InboundMessage, customer_id: int) -> tuple[Ticket, str | None]:
    """The conversation this message belongs to; returns (ticket, its status before the message), the status
    None when the ticket was opened now."""
    ticket = await find_thread(ctx, msg, customer_id) or ctx.active.get(customer_id)
    if ticket is None and _reusable(ctx, ctx.latest.get(customer_id)):
        ticket = ctx.latest[customer_id]
    if ticket is not None:
        was = ticket.status
        wrote = lifecycle.customer_wrote(ticket, now=ctx.now, thread_named=ticket.id == _thread_id(msg))
        await apply(ctx, ticket, wrote, CUSTOMER, cause=f"m{msg.channel}:{msg.external_id}")
        if ticket.status != "closed":
            ctx.active[customer_id] = ticket
            return ticket, was
    ticket = await tickets_repo.open_ticket(ctx.session, **_ticket_fields(ctx, msg, customer_id))
    tickets_repo.add_event(ctx.session, ticket.id, "opened", actor="customer", at=ticket.created_at,
                           channel=msg.channel)
    ctx.active[customer_id] = ctx.latest[customer_id] = ticket
    ctx.opened.add(ticket.id)
    return ticket, None


def _thread_id(msg: InboundMessage) -> int | None:
    match = TAG.search(msg.meta_value("subject") or "")
    return int(match.group(1)) if match and int(match.group(1)) <= MAX_ID else None


async def handle_customer_message(ctx: BatchContext, msg: InboundMessage, contact_id: int, customer_id: int) -> int:
    """Everything after logging; returns the ticket id the contact belongs to."""
    if msg.edit_of:
        original = await contacts_repo.contact_by_external_id(ctx.session, msg.channel, msg.edit_of)
        if original is not None and original.customer_id == customer_id:  # only one's own message is edited
            ctx.contact_updates.append({"id": contact_id, "edit_of_id": original.id, "ticket_id": original.ticket_id})
            if original.ticket_id:
                tickets_repo.add_event(ctx.session, original.ticket_id, "edited", actor="customer", at=ctx.now)
                await _tell_edit(ctx, msg, contact_id, original)
                return original.ticket_id
    rated = await _csat_answer(ctx, msg, customer_id, contact_id)
    if rated is not NOT_A_RATING:
        return rated
    chose = await clarify.answer_choice(ctx, msg, customer_id, contact_id)
    if chose != clarify.NOT_A_CHOICE:
        return chose
    if not msg.text.strip() and all(a.kind == "contact" for a in msg.attachments):
        return _nothing_to_read(ctx, msg, customer_id, contact_id)
    ticket, was = await ticket_for(ctx, msg, customer_id)
    facts = ctx.facts.get(customer_id, {})
    turn = _understand(ctx, msg, facts.get("language"))
    update = {"id": contact_id, "ticket_id": ticket.id}
    if turn.nlu is not None:
        update["nlu"] = turn.nlu
    ctx.contact_updates.append(update)
    if turn.language and not facts.get("language"):
        facts["language"] = turn.language
        facts[LANGUAGE_UNSAVED] = True  # written with the batch's others by `save_languages`
        ctx.facts[customer_id] = facts
    language = facts.get("language") or turn.language
    if ticket.handoff_reason is not None:
        await _tell_assignee(ctx, ticket, msg, contact_id, facts)
        await _acknowledge_followup(ctx, ticket, msg, contact_id, was, language)
        return ticket.id
    if turn.answer and not wants_no_auto_reply(msg) and await _bot_may_answer(ctx, customer_id, msg.channel):
        answered = lifecycle.bot_answered(ticket, turn.answer, intent=turn.intent, now=ctx.now)
        await apply(ctx, ticket, answered, BOT, cause=f"c{contact_id}", inbound=msg)
        return ticket.id
    if turn.question and not wants_no_auto_reply(msg) and await _bot_may_answer(ctx, customer_id, msg.channel):
        await clarify.ask(ctx, ticket, msg, contact_id, turn)
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


async def load_bot_answers(ctx: BatchContext, customer_ids: list[int]) -> None:
    """How often the bot answered each of the batch's customers within the window, in one query for the batch
    (kept with their facts; what this batch adds is counted from its outbox rows)."""
    found = await bot_answers_repo.bot_answers_since(ctx.session, customer_ids, ctx.now - BOT_CAP_WINDOW)
    for customer_id, count in found.items():
        ctx.facts.setdefault(customer_id, {})[BOT_ANSWERS] = count


async def _bot_may_answer(ctx: BatchContext, customer_id: int, channel: str) -> bool:
    limit = bot_reply_cap(ctx.settings, channel)
    recent = ctx.facts.get(customer_id, {}).get(BOT_ANSWERS)
    if recent is None:  # a customer the batch did not load (one adopted by a merge)
        found = await bot_answers_repo.bot_answers_since(ctx.session, [customer_id], ctx.now - BOT_CAP_WINDOW)
        recent = found[customer_id]
    pending = sum(1 for row in ctx.outbox if row["customer_id"] == customer_id and row["author"] == "bot")
    return recent + pending < limit


async def save_languages(ctx: BatchContext) -> None:
    """Write, in one statement, the languages learned from this batch's messages so far (a customer's first)."""
    learned = {cid: f["language"] for cid, f in ctx.facts.items() if f.pop(LANGUAGE_UNSAVED, False)}
    if learned:
        await customers_repo.set_languages(ctx.session, learned)


async def hand_off(
    ctx: BatchContext, ticket: Ticket, msg: InboundMessage, contact_id: int, turn: BotTurn, language: str | None
) -> None:
    """Route the ticket by the customer's stored tier, assign or queue it, notify, and acknowledge."""
    facts = ctx.facts.get(ticket.customer_id, {})
    handoff = Handoff(
        tier=facts.get("tier") or "potential", language=language, key_account_manager_id=facts.get("kam"),
        customer_name=notice_name(facts, msg), text=msg.text, channel=msg.channel,
        subject=lifecycle.subject_of(msg.text, msg.meta_value("subject")), reason=turn.handoff_reason,
        intent=turn.intent, imported=_imported(msg),
        ack=ctx.settings.dispatch.ack_new_ticket and not wants_no_auto_reply(msg),
    )
    await tickets_handoff(ctx, ticket, handoff, BOT, cause=f"c{contact_id}", inbound=msg)
    _show_media(ctx, msg, f"c{contact_id}:notify")
    _show_media(ctx, msg, f"c{contact_id}:forum")


async def _tell_assignee(ctx: BatchContext, ticket: Ticket, msg: InboundMessage, contact_id: int, facts: dict) -> None:
    said = lifecycle.excerpt(media.said(msg.text, msg.attachments))
    told = await tell_ticket_people(ctx, ticket, notice_name(facts, msg), said, key=f"c{contact_id}")
    _show_media(ctx, msg, f"c{contact_id}:forum")
    if told:
        _show_media(ctx, msg, f"c{contact_id}:fwd")


FOLLOWUP_ACKED = "followup_acked"
"""Ticket event: the customer was told their follow-up joined the ticket (once per waiting spell)."""
SPELL_STARTS = ("routed", "replied")
"""Ticket events after which the customer waits for a person anew: the hand-off, and each reply by a person."""


def followup_ack_due(status_before: str | None, event_kinds: Sequence[str]) -> bool:
    """Whether a customer's message on a ticket already with people is acknowledged ("added to T-12").

    Once per waiting spell: a spell starts when the ticket is handed off (the hand-off's own acknowledgement
    names the ticket) or when a person replies; the first follow-up within it is acknowledged, later ones are
    not. A message on a ticket that was waiting for the customer (pending: a person replied or asked) is their
    answer to that person, who is in the conversation and sees it: it starts the next spell unacknowledged."""
    if status_before is None or status_before == "pending":
        return False
    for kind in reversed(event_kinds):
        if kind == FOLLOWUP_ACKED:
            return False
        if kind in SPELL_STARTS:
            return True
    return True


async def _acknowledge_followup(ctx: BatchContext, ticket: Ticket, msg: InboundMessage, contact_id: int,
                                status_before: str | None, language: str | None) -> None:
    """Tell the customer, in their language, that their follow-up joined the ticket, when `followup_ack_due`
    and the bot's cap on answers to one sender allows (a loop guard); the event look-up only when it may be."""
    if status_before in (None, "pending") or not ctx.settings.dispatch.ack_new_ticket or wants_no_auto_reply(msg):
        return
    if not await _bot_may_answer(ctx, ticket.customer_id, msg.channel):
        return
    loaded = ctx.followup_events  # the batch's tickets' events, loaded at once
    kinds = await loaded.of(ctx.session, ticket.id) if loaded else [
        e.kind for e in await tickets_repo.ticket_events(ctx.session, ticket.id)]
    if not followup_ack_due(status_before, kinds):
        return
    text = say("followup_added", language, ticket=ticket.id)
    acked = Decision(to_customer=[CustomerMessage(text, "added", optional=True)]).event(FOLLOWUP_ACKED)
    await apply(ctx, ticket, acked, BOT, cause=f"c{contact_id}", inbound=msg)


def _show_media(ctx: BatchContext, msg: InboundMessage, key: str) -> None:
    """A customer's photo, document, voice note or sticker goes to agents on the same channel as that media,
    where the channel can copy a message (Telegram), and as the file where it came as an upload (web chat)."""
    media.show_media(ctx.outbox, msg, key)


async def _tell_edit(ctx: BatchContext, msg: InboundMessage, contact_id: int, original: Contact) -> None:
    """An edited customer message is shown to the ticket's assignee as an edit (the old and the new text)."""
    ticket = await ctx.session.get(Ticket, original.ticket_id)
    if ticket is None or ticket.assignee_id is None or ticket.status == "closed":
        return
    name = notice_name(ctx.facts.get(ticket.customer_id, {}), msg)
    await notify_agents(
        ctx,
        [ticket.assignee_id],
        f"T-{ticket.id} · {name} edited a message:\n{lifecycle.excerpt(media.said(msg.text, msg.attachments))}\n"
        f"(was: {lifecycle.excerpt(media.said(original.text, original.attachments or ()))})",
        key=f"c{contact_id}:edit",
        ticket_id=ticket.id,
        customer_id=ticket.customer_id,
    )


NOT_A_RATING = -1


async def _csat_answer(ctx: BatchContext, msg: InboundMessage, customer_id: int, contact_id: int) -> int | None:
    """A rating: a button press (always), or a bare 1-5 when the customer's newest ticket is closed. It is taken
    once, within the rating window; a late or second one is answered politely and never opens a ticket. Returns
    the ticket the contact belongs to (None: none), or NOT_A_RATING."""
    match = CSAT.match(msg.text)
    if not match:
        return NOT_A_RATING
    pressed = match.group(1) is not None
    ticket = await _ticket_by_number(ctx, match.group(1)) if pressed else ctx.latest.get(customer_id)
    if ticket is None or ticket.customer_id != customer_id:
        if not pressed:
            return NOT_A_RATING
        return await _answer_rating(ctx, msg, None, customer_id, contact_id, "csat_thanks")
    try:
        rated = lifecycle.rate(ticket, int(match.group(2)), now=ctx.now, rules=RULES)
    except TicketError as refused:
        if refused.code == "not_closed" and not pressed:
            return NOT_A_RATING  # a "5" in a conversation that is still going on is just a message
        text = {"already_rated": "csat_already", "window_closed": "csat_late"}.get(refused.code, "csat_thanks")
        return await _answer_rating(ctx, msg, ticket, customer_id, contact_id, text)
    await apply(ctx, ticket, rated, CUSTOMER, cause=f"c{contact_id}")
    return await _answer_rating(ctx, msg, ticket, customer_id, contact_id, "csat_thanks")


async def _answer_rating(ctx: BatchContext, msg: InboundMessage, ticket: Ticket | None, customer_id: int,
                         contact_id: int, text: str) -> int | None:
    """Answer the customer where they wrote from; the contact is logged on the rated ticket."""
    language = ctx.facts.get(customer_id, {}).get("language")
    key = f"c{contact_id}:csat"
    if ticket is None:
        ctx.queue_message(key=key, channel=msg.channel, recipient=msg.sender, author="bot", customer_id=customer_id,
                          text=say(text, language, ticket=""), reply_to=msg.external_id)
        return None
    ctx.contact_updates.append({"id": contact_id, "ticket_id": ticket.id})
    await reply_to_customer(ctx, ticket, say(text, language, ticket=ticket.id), key=key, author="bot", inbound=msg)
    return ticket.id


def _nothing_to_read(ctx: BatchContext, msg: InboundMessage, customer_id: int, contact_id: int) -> int | None:
    """An identity claim (a left email, a shared contact) or an empty message: logged, joined to the open
    conversation if there is one, and never a reason to page a person."""
    ticket = ctx.active.get(customer_id)
    if ticket is not None:
        ctx.contact_updates.append({"id": contact_id, "ticket_id": ticket.id})
    if not carries_identity(msg) and not wants_no_auto_reply(msg):
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

"""Ask, don't guess: the bot's question with buttons, and the customer's choice answering it.

A question is a `clarifications` row with a random token; each button carries `/choose <token> <n>` (Telegram
callback data, a web chat button, or a numbered line in a mail and the console, where a bare "2" picks). The
choice answers from the FAQ (or hands the ticket to a person), and is kept as an example for `tierdesk nlu
review`. A press that names no question of this customer, or one already answered or too old, gets a clear
answer and changes nothing; its contact reads as what was pressed and why it was late ("Chose: Delivery times
(the question had expired)", in the customer's language), and on a ticket a person has, the choice is passed on.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.assistant.responder import BotTurn
from bot.assistant.script import in_script
from bot.assistant.texts import intent_title, say
from bot.core.forum import tell_ticket_people
from bot.core.messages import Button, InboundMessage, utcnow
from bot.core.names import notice_name
from bot.core.outbound import BatchContext, reply_to_customer
from bot.settings import Settings
from bot.tickets import BOT, CUSTOMER, SYSTEM, apply, lifecycle
from bot.tickets.handoff import Handoff, hand_off
from crm_store.clarifications import Clarification
from crm_store.models import Ticket
from crm_store.repositories import clarifications as clarifications_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import outbox as outbox_repo

PRESS = re.compile(r"^\s*/choose\s+(\S{1,64})\s+(\d{1,6})\s*$")
TYPED = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")
EXPIRED_REASON = "no answer to the bot's question about which topic was meant"
NOT_A_CHOICE = -1
PERSON_REASON = "chose to talk to a person when the bot asked which topic"


def is_press(text: str) -> bool:
    return PRESS.match(text) is not None


def choice_ttl(settings: Settings) -> timedelta:
    """How long a question can be answered; after that its buttons are stale and the SLA clock expires it."""
    return timedelta(hours=settings.nlu.clarify_expiry_hours)


def pressed_token(data: str) -> str | None:
    """The question a button's data names, or None for a button that is no choice of ours."""
    pressed = PRESS.match(data)
    return pressed.group(1) if pressed else None


def option_label(row: Clarification, number: int) -> str:
    """The label the customer saw on option `number` (1-based) of the question, in their language and script."""
    return in_script(intent_title(row.options[number - 1], row.language), row.script)


async def ask(ctx: BatchContext, ticket: Ticket, msg: InboundMessage, contact_id: int, turn: BotTurn) -> None:
    """Send the question with one button per option and remember what was offered."""
    token = secrets.token_hex(8)
    buttons = tuple(Button(label, f"/choose {token} {n}") for n, (_, label) in enumerate(turn.options, 1))
    nlu = turn.nlu or {}
    clarifications_repo.add_clarification(
        ctx.session,
        token=token,
        customer_id=ticket.customer_id,
        ticket_id=ticket.id,
        contact_id=contact_id,
        channel=msg.channel,
        text=msg.text[: ctx.settings.nlu.max_chars],
        language=nlu.get("answer_language") or turn.language,
        script=turn.script,
        options=[intent for intent, _ in turn.options],
        ranking=nlu.get("ranking", []),
        created_at=ctx.now,
    )
    asked = lifecycle.bot_asked(ticket, turn.question or "", buttons, now=ctx.now)
    await apply(ctx, ticket, asked, BOT, cause=f"c{contact_id}", inbound=msg)


async def answer_choice(ctx: BatchContext, msg: InboundMessage, customer_id: int, contact_id: int) -> int | None:
    """A button press or a typed option number: answered, refused as stale or unknown, or NOT_A_CHOICE (a bare
    number that answers no open question is just a message). Returns the ticket the contact belongs to."""
    pressed = PRESS.match(msg.text)
    press = msg.text if pressed else None
    if pressed:
        row = await clarifications_repo.by_token(ctx.session, pressed.group(1))
        number = int(pressed.group(2))
        if row is None or row.customer_id != customer_id or not 1 <= number <= len(row.options):
            return await _refuse(ctx, msg, customer_id, contact_id, Refusal("unknown", press=press))
    else:
        typed = TYPED.match(msg.text)
        if typed is None:
            return NOT_A_CHOICE
        row = await clarifications_repo.newest_asked(ctx.session, customer_id, ctx.now - choice_ttl(ctx.settings))
        number = int(typed.group(1))
        active = ctx.active.get(customer_id)
        waiting = active is not None and row is not None and active.id == row.ticket_id and active.status == "pending"
        if not waiting or not 1 <= number <= len(row.options):
            return NOT_A_CHOICE
    ticket = await ctx.session.get(Ticket, row.ticket_id) if row.ticket_id else None
    open_question = row.status == "asked" and row.created_at >= ctx.now - choice_ttl(ctx.settings)
    if ticket is None or ticket.customer_id != customer_id:
        why = stale_reason(row, None, open_question)
        return await _refuse(ctx, msg, customer_id, contact_id, Refusal(why, row, None, number, press))
    if not open_question or ticket.status == "closed" or ticket.handoff_reason is not None:
        why = stale_reason(row, ticket, open_question)
        return await _refuse(ctx, msg, customer_id, contact_id, Refusal(why, row, ticket, number, press))
    intent = row.options[number - 1]
    wants_person = intent in ctx.settings.nlu.handoff_intents
    if not await clarifications_repo.take_choice(ctx.session, row.id, intent, ctx.now, for_review=not wants_person):
        return await _refuse(ctx, msg, customer_id, contact_id, Refusal("answered", row, ticket, number, press))
    ctx.contact_updates.append(_chosen_contact(contact_id, ticket.id, row, number, press))
    await apply(ctx, ticket, lifecycle.customer_wrote(ticket, now=ctx.now), CUSTOMER, cause=f"c{contact_id}")
    ctx.active[customer_id] = ctx.latest[customer_id] = ticket
    answer = None if wants_person else _answer(ctx, intent, row)
    if answer is None:
        await _to_person(ctx, ticket, msg, contact_id, row, intent)
    else:
        answered = lifecycle.bot_answered(ticket, answer, intent=intent, now=ctx.now)
        await apply(ctx, ticket, answered, BOT, cause=f"c{contact_id}", inbound=msg)
    return ticket.id


def stale_reason(row: Clarification, ticket: Ticket | None, open_question: bool) -> str:
    """Why a choice on this customer's question is not taken, as the contact log says it: the question was
    answered, expired, or its conversation was closed (or is gone) or is with a person already."""
    if row.status == "chosen":
        return "answered"
    if not open_question:
        return "expired"
    return "closed" if ticket is None or ticket.status == "closed" else "with_person"


def _chosen_contact(contact_id: int, ticket_id: int, row: Clarification, number: int, press: str | None) -> dict:
    """The contact log's line for a choice: a press reads as what it meant ("Chose: Delivery times", in the
    customer's language), its raw payload kept with the NLU data; a typed number stays as typed."""
    label = option_label(row, number)
    nlu: dict[str, Any] = {"intent": row.options[number - 1], "decision": "chosen", "asked": row.id, "label": label}
    update: dict[str, Any] = {"id": contact_id, "ticket_id": ticket_id, "nlu": nlu}
    if press is not None:
        nlu["payload"] = press
        update["text"] = in_script(say("choice_logged", row.language, label=label), row.script)
    return update


def _answer(ctx: BatchContext, intent: str, row: Clarification) -> str | None:
    answer_for = getattr(ctx.responder, "answer_for", None)
    return answer_for(intent, row.language, row.script) if callable(answer_for) else None


async def _to_person(
    ctx: BatchContext, ticket: Ticket, msg: InboundMessage, contact_id: int, row: Clarification, intent: str
) -> None:
    """Route the ticket like any message that needs a person; the agent reads the question the customer asked."""
    facts: dict[str, Any] = ctx.facts.get(ticket.customer_id, {})
    reason = PERSON_REASON if intent in ctx.settings.nlu.handoff_intents else f"no answer written for intent {intent}"
    handoff = Handoff(
        tier=facts.get("tier") or "potential",
        language=facts.get("language") or row.language,
        key_account_manager_id=facts.get("kam"),
        customer_name=facts.get("name") or msg.sender_name or msg.sender,
        text=row.text,
        channel=msg.channel,
        subject=lifecycle.subject_of(row.text),
        reason=reason,
        intent=intent,
        ack=ctx.settings.dispatch.ack_new_ticket,
    )
    await hand_off(ctx, ticket, handoff, BOT, cause=f"c{contact_id}", inbound=msg)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A choice not taken: why (unknown, answered, expired, closed, with_person), the question and ticket it
    named when they are the customer's own, the option number, and the raw button data of a press."""

    why: str
    row: Clarification | None = None
    ticket: Ticket | None = None
    number: int = 0
    press: str | None = None


async def _refuse(ctx: BatchContext, msg: InboundMessage, customer_id: int, contact_id: int, no: Refusal) -> int | None:
    """Say why the choice was not taken; nothing else changes. The contact joins the question's ticket when that
    is the customer's own, else the conversation going on (if any), and its log line reads as what was pressed
    and why it was late; the raw press stays with the NLU data. On a ticket a person has, the choice is passed
    on to them, as any follow-up is."""
    row = no.row
    language = (row.language if row else None) or ctx.facts.get(customer_id, {}).get("language")
    script = row.script if row else None
    label = option_label(row, no.number) if row is not None else ""
    ticket = no.ticket or ctx.active.get(customer_id)
    update: dict[str, Any] = {"id": contact_id, "nlu": _refused_nlu(no, label)}
    if no.press is not None:
        update["text"] = in_script(say(f"choice_logged_{no.why}", language, label=label), script)
    if ticket is not None:
        update["ticket_id"] = ticket.id
    ctx.contact_updates.append(update)
    key = f"c{contact_id}:choice"
    own = no.ticket
    if own is not None and own.status != "closed" and own.handoff_reason is not None:  # a person has it
        words = in_script(say("choice_with_person", language, label=label, ticket=own.id), script)
        await _pass_on(ctx, own, msg, contact_id, update.get("text") or msg.text)
    elif no.why == "expired":
        words = in_script(say("choice_expired", language, label=label), script)
    else:
        words = in_script(say("choice_unknown" if no.why == "unknown" else "choice_stale", language), script)
    if ticket is None:
        ctx.queue_message(
            key=key,
            channel=msg.channel,
            recipient=msg.sender,
            author="bot",
            customer_id=customer_id,
            text=words,
            reply_to=msg.external_id,
        )
        return None
    await reply_to_customer(ctx, ticket, words, key=key, author="bot", inbound=msg)
    return ticket.id


def _refused_nlu(no: Refusal, label: str) -> dict[str, Any]:
    """What a refused choice meant, for the log and `tierdesk nlu review` (never a training example)."""
    nlu: dict[str, Any] = {"decision": f"choice_{no.why}"}
    if no.row is not None:
        nlu |= {"intent": no.row.options[no.number - 1], "asked": no.row.id, "label": label}
    if no.press is not None:
        nlu["payload"] = no.press
    return nlu


async def _pass_on(ctx: BatchContext, ticket: Ticket, msg: InboundMessage, contact_id: int, said: str) -> None:
    """The people on a ticket see a late choice as they see any follow-up: in its mirror thread, and sent to its
    assignee when it has one."""
    facts: dict[str, Any] = ctx.facts.get(ticket.customer_id, {})
    await tell_ticket_people(ctx, ticket, notice_name(facts, msg), said, key=f"c{contact_id}")


async def expire_question(ctx: BatchContext, ticket: Ticket, row: Clarification) -> bool:
    """A question nobody answered in time is closed; when its ticket still waits on it (pending, no person has
    it, no newer question) the customer's issue is unresolved, so it goes to a person like any message the bot
    could not answer. True when the ticket was handed on."""
    if not await clarifications_repo.expire(ctx.session, row.id, ctx.now):
        return False
    newer = await clarifications_repo.newest_asked(ctx.session, ticket.customer_id, row.created_at)
    waits = ticket.status == "pending" and ticket.handoff_reason is None and ticket.assignee_id is None
    if not waits or (newer is not None and newer.id != row.id):
        return False
    facts = (await customers_repo.customer_facts(ctx.session, [ticket.customer_id])).get(ticket.customer_id, {})
    handoff = Handoff(
        tier=facts.get("tier") or "potential",
        language=facts.get("language") or row.language,
        key_account_manager_id=facts.get("kam"),
        customer_name=facts.get("name") or f"customer {ticket.customer_id}",
        text=row.text,
        channel=row.channel,
        subject=lifecycle.subject_of(row.text),
        reason=EXPIRED_REASON,
        ack=ctx.settings.dispatch.ack_new_ticket,
    )
    await hand_off(ctx, ticket, handoff, SYSTEM, cause=f"clarify-expired:{row.id}")
    return True


async def open_question_buttons(
    session: Any, settings: Settings, channel: str, recipient: str, sent: list[str]
) -> dict[str, list[dict[str, str]]]:
    """Of these messages we sent (external ids), the bot's questions that can still be answered, with their
    buttons, so a reloaded chat page shows them again; an answered or expired question stays text only."""
    found = await outbox_repo.buttons_by_external_id(session, channel, recipient, sent) if sent else {}
    tokens = {ext: {pressed_token(data) for _, data in pairs} - {None} for ext, pairs in found.items()}
    since = utcnow() - choice_ttl(settings)
    still_open = await clarifications_repo.open_tokens(session, [t for ts in tokens.values() for t in ts], since)
    return {
        ext: [{"label": label, "data": data} for label, data in found[ext]]
        for ext, ts in tokens.items()
        if ts and ts <= still_open
    }

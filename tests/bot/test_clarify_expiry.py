"""The bot's question with buttons, after it was asked: left unanswered past `nlu.clarify_expiry_hours` it goes to
a person from the SLA clock's pass (once, and only when the ticket still waits on it); a press reads as its
meaning in the contact log. Through the real dispatcher on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.assistant.clarify import EXPIRED_REASON
from bot.assistant.faq import FaqResponder
from bot.core.messages import utcnow
from bot.routing.sla_worker import clarify_expiry_pass
from crm_store.clarifications import Clarification
from crm_store.models import Contact, Ticket
from tests.bot.test_clarify_flow import RESPONSES, ScriptedClassifier

QUESTION = "how long and how much is shipping?"


@pytest.fixture
async def bot(harness_factory):
    return await harness_factory(responder=FaqResponder(ScriptedClassifier(), RESPONSES))


async def question_row(h) -> Clarification:
    async with h.app.sessions() as s:
        return await s.scalar(select(Clarification).order_by(Clarification.id.desc()))


async def ticket(h, ticket_id: int) -> Ticket:
    async with h.app.sessions() as s:
        return await s.get(Ticket, ticket_id)


async def inbound_contacts(h, sender: str) -> list[Contact]:
    async with h.app.sessions() as s:
        rows = await s.scalars(
            select(Contact).where(Contact.direction == "in", Contact.address == sender).order_by(Contact.id)
        )
        return list(rows)


async def expire(h, after: timedelta) -> list[int]:
    return await clarify_expiry_pass(h.app.sessions, settings=h.app.settings, now=utcnow() + after)


async def test_an_unanswered_question_goes_to_a_person_once_after_the_expiry(bot):
    asked = await bot.ch["telegram"].receive("20", QUESTION)
    await bot.settle()
    assert await expire(bot, timedelta(hours=23)) == []
    assert (await question_row(bot)).status == "asked"
    assert (await ticket(bot, asked.ticket_id)).status == "pending"

    assert await expire(bot, timedelta(hours=25)) == [asked.ticket_id]
    await bot.settle()
    t = await ticket(bot, asked.ticket_id)
    assert (t.status, t.handoff_reason, t.subject) == ("open", EXPIRED_REASON, QUESTION)
    assert t.queue and t.first_response_due is not None
    assert (await question_row(bot)).status == "expired"
    assert bot.ch["telegram"].sent_to("20")[-1] == RESPONSES_ACK.format(ticket=asked.ticket_id)
    assert await expire(bot, timedelta(hours=26)) == []

    [question] = [m for m in bot.ch["telegram"].sent if m.buttons]
    await bot.ch["telegram"].receive("20", question.buttons[0].data)
    await bot.settle()
    told = bot.ch["telegram"].sent_to("20")[-1]
    assert told.startswith(f"A member of our team has your question already (T-{asked.ticket_id})")
    assert (await ticket(bot, asked.ticket_id)).handoff_reason == EXPIRED_REASON


RESPONSES_ACK = "Thanks for your message. A member of our team will reply here soon. Your ticket is T-{ticket}."


async def test_the_expiry_is_a_setting(harness_factory):
    from bot.settings import NluSettings

    h = await harness_factory(
        responder=FaqResponder(ScriptedClassifier(), RESPONSES),
        nlu=NluSettings(enabled=False, clarify_expiry_hours=2),
    )
    asked = await h.ch["telegram"].receive("21", QUESTION)
    await h.settle()
    assert await expire(h, timedelta(hours=1)) == []
    assert await expire(h, timedelta(hours=3)) == [asked.ticket_id]


async def test_a_question_the_customer_moved_on_from_expires_without_a_handoff(bot):
    asked = await bot.ch["telegram"].receive("22", QUESTION)
    await bot.ch["telegram"].receive("22", "where is my order")
    await bot.settle()
    before = await ticket(bot, asked.ticket_id)
    assert before.status == "solved"
    assert await expire(bot, timedelta(hours=25)) == []
    after = await ticket(bot, asked.ticket_id)
    assert (after.status, after.handoff_reason) == ("solved", None)
    assert (await question_row(bot)).status == "expired"


async def test_only_the_newest_question_of_a_ticket_hands_it_on(bot):
    first = await bot.ch["telegram"].receive("23", QUESTION)
    await bot.settle()
    again = await bot.ch["telegram"].receive("23", "доставка сколько?")
    await bot.settle()
    assert again.ticket_id == first.ticket_id
    assert await expire(bot, timedelta(hours=25)) == [first.ticket_id]
    async with bot.app.sessions() as s:
        statuses = list(await s.scalars(select(Clarification.status).order_by(Clarification.id)))
    assert statuses == ["expired", "expired"]


async def test_a_press_reads_as_its_meaning_in_the_contact_log_with_the_payload_kept(bot):
    await bot.ch["telegram"].receive("24", "доставка сколько?")
    await bot.settle()
    [question] = [m for m in bot.ch["telegram"].sent if m.recipient == "24"]
    await bot.ch["telegram"].receive("24", question.buttons[0].data)
    await bot.settle()
    asked, pressed = await inbound_contacts(bot, "24")
    assert asked.text == "доставка сколько?"
    assert pressed.text == "Выбрано: Сроки доставки"
    assert pressed.nlu["payload"] == question.buttons[0].data
    assert (pressed.nlu["intent"], pressed.nlu["decision"], pressed.nlu["label"]) == (
        "delivery",
        "chosen",
        "Сроки доставки",
    )


async def test_a_typed_number_stays_as_typed_with_its_meaning_beside_it(bot):
    await bot.ch["email"].receive("li@example.com", "运费和时间？")
    await bot.ch["email"].receive("li@example.com", "2")
    await bot.settle()
    _, typed = await inbound_contacts(bot, "li@example.com")
    assert typed.text == "2"
    assert (typed.nlu["intent"], typed.nlu["label"]) == ("pricing", "价格")
    assert "payload" not in typed.nlu

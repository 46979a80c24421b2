"""A press on a question that can no longer be answered, through the real dispatcher on both databases: the
contact log reads as what was pressed and why it was late, in the customer's language, the raw press is kept with
its meaning, the customer is told clearly, and on a ticket a person has the choice reaches that person."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.assistant.faq import FaqResponder
from bot.core.messages import utcnow
from bot.routing.sla_worker import clarify_expiry_pass
from crm_store.models import Contact, Ticket
from tests.bot.test_clarify_flow import RESPONSES, ScriptedClassifier


@pytest.fixture
async def bot(harness_factory):
    return await harness_factory(responder=FaqResponder(ScriptedClassifier(), RESPONSES))


async def pressed_contact(h, external_id: str) -> Contact:
    async with h.app.sessions() as s:
        return await s.scalar(select(Contact).where(Contact.direction == "in", Contact.external_id == external_id))


async def ticket(h, ticket_id: int) -> Ticket:
    async with h.app.sessions() as s:
        return await s.get(Ticket, ticket_id)


async def ask(h, sender: str, text: str):
    asked = await h.ch["telegram"].receive(sender, text)
    await h.settle()
    [question] = [m for m in h.ch["telegram"].sent if m.recipient == sender and m.buttons]
    return asked, question


async def press(h, sender: str, data: str, external_id: str):
    await h.ch["telegram"].receive(sender, data, external_id=external_id)
    await h.settle()
    return await pressed_contact(h, external_id)


async def test_a_press_after_the_expiry_reads_as_a_late_choice_and_reaches_the_person(bot):
    await bot.agent("Alice")
    asked, question = await ask(bot, "30", "how long and how much is shipping?")
    assert await clarify_expiry_pass(bot.app.sessions, settings=bot.app.settings, now=utcnow() + timedelta(hours=25))
    await bot.settle()
    handed = await ticket(bot, asked.ticket_id)
    assert handed.assignee_id is not None and handed.handoff_reason is not None

    late = await press(bot, "30", question.buttons[0].data, "late-1")
    assert late.text == "Chose: Delivery times (the question had expired)"
    assert late.ticket_id == asked.ticket_id
    assert late.nlu == {
        "decision": "choice_expired",
        "intent": "delivery",
        "asked": late.nlu["asked"],
        "label": "Delivery times",
        "payload": question.buttons[0].data,
    }
    assert bot.ch["telegram"].sent_to("30")[-1] == (
        f"A member of our team has your question already (T-{asked.ticket_id}) and will reply here; "
        "we have told them you chose “Delivery times”."
    )
    assert bot.ch["console"].sent_to("alice")[-1].endswith(": Chose: Delivery times (the question had expired)")
    assert bot.ch["console"].sent_to("alice")[-1].startswith(f"T-{asked.ticket_id} · ")
    after = await ticket(bot, asked.ticket_id)
    assert (after.status, after.assignee_id, after.handoff_reason) == (
        handed.status,
        handed.assignee_id,
        handed.handoff_reason,
    )


async def test_a_second_press_reads_as_answered_already_in_russian(bot):
    asked, question = await ask(bot, "31", "доставка сколько?")
    first = await press(bot, "31", question.buttons[0].data, "ru-1")
    assert first.text == "Выбрано: Сроки доставки"
    again = await press(bot, "31", question.buttons[1].data, "ru-2")
    assert again.text == "Выбрано: Цены (на этот вопрос уже ответили)"
    assert (again.nlu["decision"], again.nlu["intent"], again.nlu["payload"]) == (
        "choice_answered",
        "pricing",
        question.buttons[1].data,
    )
    assert again.ticket_id == asked.ticket_id
    assert bot.ch["telegram"].sent_to("31")[-1].startswith("На этот вопрос уже ответили")
    assert (await ticket(bot, asked.ticket_id)).intent == "delivery"


async def test_a_question_the_customer_moved_on_from_reads_as_expired_in_chinese(bot):
    asked, question = await ask(bot, "32", "运费和时间？")
    await bot.ch["telegram"].receive("32", "where is my order")
    await bot.settle()
    assert (await ticket(bot, asked.ticket_id)).status == "solved"
    await clarify_expiry_pass(bot.app.sessions, settings=bot.app.settings, now=utcnow() + timedelta(hours=25))
    late = await press(bot, "32", question.buttons[1].data, "zh-1")
    assert late.text == "已选择：价格（该问题已过期）"
    assert late.nlu["decision"] == "choice_expired" and late.nlu["label"] == "价格"
    told = bot.ch["telegram"].sent_to("32")[-1]
    assert told == "该问题已过期，无法再选择“价格”。请重新写下您的问题，我们会为您解答。"
    assert (await ticket(bot, asked.ticket_id)).status == "solved"


async def test_a_press_on_a_closed_conversation_says_so(bot):
    alice = await bot.agent("Alice")
    asked, question = await ask(bot, "33", "how long and how much is shipping?")
    await bot.ch["console"].receive("alice", f"/close {asked.ticket_id}")
    await bot.settle()
    assert (await ticket(bot, asked.ticket_id)).status == "closed", alice
    late = await press(bot, "33", question.buttons[0].data, "closed-1")
    assert late.text == "Chose: Delivery times (the conversation had been closed)"
    assert late.nlu["decision"] == "choice_closed"
    assert bot.ch["telegram"].sent_to("33")[-1].startswith("That question has been answered already")
    assert (await ticket(bot, asked.ticket_id)).status == "closed"


async def test_a_foreign_press_reads_as_unmatched_and_tells_nothing_of_the_question(bot):
    _, question = await ask(bot, "34", "доставка сколько?")
    foreign = await press(bot, "35", question.buttons[0].data, "foreign-1")
    assert foreign.text == "Pressed a button that matches no question of ours"
    assert foreign.nlu == {"decision": "choice_unknown", "payload": question.buttons[0].data}
    assert foreign.ticket_id is None
    assert bot.ch["telegram"].sent_to("35") == [
        "We could not match that choice to a question of ours. Please write your question as text."
    ]


async def test_a_press_after_the_conversation_went_to_a_person_reads_so_and_changes_nothing(bot):
    asked, question = await ask(bot, "36", "how long and how much is shipping?")
    await bot.ch["telegram"].receive("36", "my neighbour's cat is on my roof")  # out of scope: to a person
    await bot.settle()
    handed = await ticket(bot, asked.ticket_id)
    assert handed.handoff_reason is not None
    late = await press(bot, "36", question.buttons[1].data, "person-1")
    assert late.text == "Chose: Prices (the conversation was with our team already)"
    assert (late.nlu["decision"], late.ticket_id) == ("choice_with_person", asked.ticket_id)
    assert bot.ch["telegram"].sent_to("36")[-1].endswith("we have told them you chose “Prices”.")
    after = await ticket(bot, asked.ticket_id)
    assert (after.status, after.handoff_reason, after.intent) == (handed.status, handed.handoff_reason, handed.intent)

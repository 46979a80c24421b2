"""Ask, don't guess, through the real dispatcher on both databases: a close call asks with buttons, a press (or a
typed number) answers and is kept for review, a person when chosen, stale and forged presses change nothing."""

from __future__ import annotations

from pathlib import Path

import opencc
import pytest
from sqlalchemy import select

from bot.assistant.clarify import PERSON_REASON
from bot.assistant.faq import FaqResponder
from crm_store.clarifications import Clarification
from crm_store.models import Ticket
from nlu.language import detect
from nlu.rasa_format import load_responses
from nlu.result import NluResult

CONFIG = Path(__file__).resolve().parents[2] / "config"
RESPONSES = load_responses(CONFIG / "responses.yml")

CLOSE = [("delivery", 0.42), ("pricing", 0.38), ("order_status", 0.10)]
SCRIPTED = {
    "how long and how much is shipping?": ("en", CLOSE),
    "运费和时间？": ("zh", CLOSE),
    "доставка сколько?": ("ru", CLOSE),
    "運費多少": ("zh", [("pricing", 0.91), ("delivery", 0.05)]),
    "where is my order": ("en", [("order_status", 0.93), ("delivery", 0.03)]),
}


class ScriptedClassifier:
    """Hand-built rankings for known texts (the decision and the flow are under test, not the model); the
    language and script are detected as the real classifier does."""

    def parse(self, text: str) -> NluResult:
        language, ranking = SCRIPTED.get(text, ("en", [("out_of_scope", 0.9), ("greeting", 0.05)]))
        detected = detect(text)
        assert text not in SCRIPTED or detected.language == language, f"{text!r} reads as {detected.language}"
        best = next(name for name, _ in ranking if name != "out_of_scope")
        oos = ranking[0][0] == "out_of_scope"
        intent = "out_of_scope" if oos else best
        return NluResult(intent, dict(ranking)[best], ranking, [], language, oos, None, detected.script)


@pytest.fixture
async def bot(harness_factory):
    return await harness_factory(responder=FaqResponder(ScriptedClassifier(), RESPONSES))


async def rows(h) -> list[Clarification]:
    async with h.app.sessions() as s:
        return list(await s.scalars(select(Clarification).order_by(Clarification.id)))


async def ticket(h, ticket_id: int) -> Ticket:
    async with h.app.sessions() as s:
        return await s.get(Ticket, ticket_id)


async def all_tickets(h) -> list[Ticket]:
    async with h.app.sessions() as s:
        return list(await s.scalars(select(Ticket).order_by(Ticket.id)))


LABELS = {
    "en": ["Delivery times", "Prices", "Talk to a person"],
    "zh": ["配送时间", "价格", "转人工客服"],
    "ru": ["Сроки доставки", "Цены", "Поговорить с человеком"],
}


CLOSE_CALLS = {"en": "how long and how much is shipping?", "zh": "运费和时间？", "ru": "доставка сколько?"}


async def test_a_close_call_asks_with_buttons_and_a_press_answers_and_is_logged(bot):
    for n, (language, text) in enumerate(CLOSE_CALLS.items()):
        sender = f"7{n}"
        asked = await bot.ch["telegram"].receive(sender, text)
        await bot.settle()
        [question] = [m for m in bot.ch["telegram"].sent if m.recipient == sender]
        assert [b.label for b in question.buttons] == LABELS[language]
        row = (await rows(bot))[-1]
        assert row.status == "asked" and row.options == ["delivery", "pricing", "human_handoff"]
        assert row.text == text and row.language == language and row.ticket_id == asked.ticket_id
        assert [b.data for b in question.buttons] == [f"/choose {row.token} {k}" for k in (1, 2, 3)]
        waiting = await ticket(bot, asked.ticket_id)
        assert waiting.status == "pending" and waiting.handoff_reason is None and waiting.assignee_id is None

        pressed = await bot.ch["telegram"].receive(sender, question.buttons[1].data)
        await bot.settle()
        assert pressed.ticket_id == asked.ticket_id
        assert bot.ch["telegram"].sent[-1].text == RESPONSES.answer("pricing", language)
        row = (await rows(bot))[-1]
        assert (row.status, row.chosen_intent, row.review) == ("chosen", "pricing", "pending")
        answered = await ticket(bot, asked.ticket_id)
        assert answered.status == "solved" and answered.intent == "pricing" and answered.handoff_reason is None


async def test_a_stale_button_gets_a_clear_answer_and_changes_nothing(bot):
    await bot.ch["telegram"].receive("8", "how long and how much is shipping?")
    await bot.settle()
    [question] = bot.ch["telegram"].sent
    await bot.ch["telegram"].receive("8", question.buttons[0].data)
    await bot.settle()
    before = [(t.id, t.status, t.intent, t.updated_at) for t in await all_tickets(bot)]
    again = await bot.ch["telegram"].receive("8", question.buttons[1].data)
    await bot.settle()
    assert bot.ch["telegram"].sent[-1].text.startswith("That question has been answered already")
    assert [(t.id, t.status, t.intent, t.updated_at) for t in await all_tickets(bot)] == before
    [row] = await rows(bot)
    assert (row.chosen_intent, row.review) == ("delivery", "pending")
    assert again.ticket_id == before[0][0]


async def test_a_forged_or_foreign_button_is_refused_and_opens_no_ticket(bot):
    await bot.ch["telegram"].receive("9", "how long and how much is shipping?")
    await bot.settle()
    [question] = bot.ch["telegram"].sent
    for forged in (question.buttons[0].data, "/choose 0000000000000000 1", question.buttons[0].data[:-1] + "7"):
        await bot.ch["telegram"].receive("10", forged)  # another customer, or an option that was never offered
    await bot.settle()
    replies = bot.ch["telegram"].sent_to("10")
    assert len(replies) == 3 and all(r.startswith("We could not match that choice") for r in replies)
    assert [t.customer_id for t in await all_tickets(bot)] == [(await rows(bot))[0].customer_id]
    [row] = await rows(bot)
    assert row.status == "asked" and row.chosen_intent is None


async def test_a_mail_gets_numbered_options_and_a_typed_number_picks(bot):
    asked = await bot.ch["email"].receive("li@example.com", "运费和时间？")
    await bot.settle()
    [question] = bot.ch["email"].sent
    assert "1. 配送时间\n2. 价格\n3. 转人工客服" in question.text_with_buttons()
    picked = await bot.ch["email"].receive("li@example.com", "1")
    await bot.settle()
    assert picked.ticket_id == asked.ticket_id
    assert bot.ch["email"].sent[-1].text == RESPONSES.answer("delivery", "zh")
    [row] = await rows(bot)
    assert (row.chosen_intent, row.review) == ("delivery", "pending")


async def test_a_bare_number_without_an_open_question_is_just_a_message(bot):
    await bot.ch["telegram"].receive("11", "where is my order")
    typed = await bot.ch["telegram"].receive("11", "2")
    await bot.settle()
    assert await rows(bot) == []
    t = await ticket(bot, typed.ticket_id)
    assert t.handoff_reason and "out of scope" in t.handoff_reason


async def test_choosing_a_person_hands_off_with_the_question_and_is_not_training_data(bot):
    asked = await bot.ch["telegram"].receive("12", "доставка сколько?")
    await bot.settle()
    [question] = bot.ch["telegram"].sent
    await bot.ch["telegram"].receive("12", question.buttons[2].data)
    await bot.settle()
    t = await ticket(bot, asked.ticket_id)
    assert t.handoff_reason == PERSON_REASON and t.intent == "human_handoff" and t.status == "open"
    assert t.subject == "доставка сколько?"
    assert bot.ch["telegram"].sent[-1].text.startswith("Спасибо за сообщение")
    [row] = await rows(bot)
    assert (row.chosen_intent, row.review) == ("human_handoff", None)


async def test_a_new_question_instead_of_a_choice_is_answered_and_the_number_no_longer_picks(bot):
    await bot.ch["telegram"].receive("13", "how long and how much is shipping?")
    await bot.ch["telegram"].receive("13", "where is my order")
    await bot.ch["telegram"].receive("13", "1")
    await bot.settle()
    said = bot.ch["telegram"].sent_to("13")
    assert said[1] == RESPONSES.answer("order_status", "en") and said[2] != RESPONSES.answer("delivery", "en")
    assert (await rows(bot))[0].status == "asked"


async def test_traditional_chinese_is_answered_in_traditional(bot):
    await bot.ch["telegram"].receive("14", "運費多少")
    await bot.settle()
    simplified = RESPONSES.answer("pricing", "zh")
    [reply] = bot.ch["telegram"].sent
    assert reply.text == opencc.OpenCC("s2t").convert(simplified) and reply.text != simplified


async def test_a_customers_questions_are_exported_and_erased_with_them(bot):
    from crm_store.repositories import privacy

    asked = await bot.ch["telegram"].receive("15", "how long and how much is shipping?")
    await bot.settle()
    async with bot.app.sessions() as s, s.begin():
        customer_id = (await s.get(Ticket, asked.ticket_id)).customer_id
        exported = await privacy.export_customer(s, customer_id, actor="test")
    assert [c["text"] for c in exported["clarifications"]] == ["how long and how much is shipping?"]
    async with bot.app.sessions() as s, s.begin():
        await privacy.erase_customer(s, customer_id, actor="test")
    assert await rows(bot) == []

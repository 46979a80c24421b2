"""The bot's question on Telegram end to end: the real App and Telegram channel against the loopback Bot API
server; the question comes with an inline keyboard, a press (callback query) answers and is confirmed. After the
question expired and went to a person, pressing its button is confirmed too, the customer is told a person has
it and was given the choice, and the contact log reads as a sentence."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app import App
from bot.assistant.faq import FaqResponder
from bot.core.messages import utcnow
from bot.routing.sla_worker import clarify_expiry_pass
from crm_store.clarifications import Clarification
from crm_store.models import Contact
from tests.bot.test_clarify_flow import RESPONSES, ScriptedClassifier
from tests.e2e.botapi_server import BotApiServer
from tests.e2e.polling import polling_channel, polling_settings

LI = 5301


@pytest.fixture
async def shop(db):
    async with BotApiServer() as api:
        settings = polling_settings(db.url, db.schema)
        telegram = polling_channel(api)
        app = App(settings, channels=[telegram], responder=FaqResponder(ScriptedClassifier(), RESPONSES))
        await app.start()
        try:
            yield app, api
        finally:
            await app.stop()


async def test_the_question_has_an_inline_keyboard_and_a_press_answers(shop):
    app, api = shop
    li = api.user(LI, "Li")
    api.user_message(li, "运费和时间？")
    question = await api.wait_for(lambda: next(iter(api.sent_to(LI)), None), 8.0)
    keyboard = question["reply_markup"]["inline_keyboard"]
    buttons = [b for row in keyboard for b in row]
    assert [b["text"] for b in buttons] == ["配送时间", "价格", "转人工客服"]
    assert all(b["callback_data"].startswith("/choose ") for b in buttons)
    press = api.press_button(li, question, buttons[1]["callback_data"])
    answer = await api.wait_for(lambda: next((m for m in api.sent_to(LI)[1:]), None), 8.0)
    assert answer["text"] == RESPONSES.answer("pricing", "zh")
    answered = await api.wait_for(lambda: api.calls_of("answerCallbackQuery"), 8.0)
    assert answered[0].params["callback_query_id"] == press["callback_query"]["id"]
    async with app.sessions() as s:
        row = await s.scalar(select(Clarification))
    assert (row.channel, row.chosen_intent, row.review) == ("telegram", "pricing", "pending")


async def test_a_press_after_the_expiry_is_confirmed_answered_and_logged_as_a_late_choice(shop):
    app, api = shop
    li = api.user(LI, "Li")
    api.user_message(li, "运费和时间？")
    question = await api.wait_for(lambda: next(iter(api.sent_to(LI)), None), 8.0)
    buttons = [b for row in question["reply_markup"]["inline_keyboard"] for b in row]
    [ticket_id] = await clarify_expiry_pass(app.sessions, settings=app.settings, now=utcnow() + timedelta(hours=25))
    await api.wait_for(lambda: len(api.sent_to(LI)) >= 2 or None, 8.0)  # the hand-off's acknowledgement

    press = api.press_button(li, question, buttons[1]["callback_data"])
    told = await api.wait_for(lambda: next((m for m in api.sent_to(LI)[2:]), None), 8.0)
    assert told["text"] == (
        f"我们的客服人员已经在处理您的问题（T-{ticket_id}），会在这里回复您；我们已告诉他们您选择了“价格”。"
    )
    answered = await api.wait_for(lambda: api.calls_of("answerCallbackQuery"), 8.0)
    assert answered[0].params["callback_query_id"] == press["callback_query"]["id"]
    async with app.sessions() as s:
        late = await s.scalar(select(Contact).where(Contact.external_id == f"q{press['callback_query']['id']}"))
    assert late.text == "已选择：价格（该问题已过期）"
    assert (late.ticket_id, late.nlu["payload"]) == (ticket_id, buttons[1]["callback_data"])

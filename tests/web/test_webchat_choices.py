"""The bot's question in the web chat over a real WebSocket: real buttons (no numbered list), a press answers."""

from __future__ import annotations

from sqlalchemy import select

from bot.assistant.faq import FaqResponder
from crm_store.clarifications import Clarification
from tests.bot.test_clarify_flow import RESPONSES, ScriptedClassifier
from tests.web.test_webchat import open_visitor


async def test_a_close_call_comes_with_buttons_and_pressing_one_answers(live):
    live.app.dispatcher.responder = FaqResponder(ScriptedClassifier(), RESPONSES)
    v, _, _ = await open_visitor(live)
    await v.send({"type": "message", "client_id": "q1", "text": "доставка сколько?"})
    question = await v.expect(lambda f: f["type"] == "message" and f.get("buttons"))
    assert question["text"].startswith("Чтобы ответить точно") and "1." not in question["text"]
    assert [b["label"] for b in question["buttons"]] == ["Сроки доставки", "Цены", "Поговорить с человеком"]
    await v.send({"type": "message", "client_id": "q2", "text": question["buttons"][0]["data"]})
    answer = await v.expect(lambda f: f["type"] == "message" and f.get("from") == "bot" and f["id"] != question["id"])
    assert answer["text"] == RESPONSES.answer("delivery", "ru") and "buttons" not in answer
    async with live.app.sessions() as s:
        row = await s.scalar(select(Clarification))
    assert (row.channel, row.chosen_intent, row.review) == ("webchat", "delivery", "pending")
    await v.ws.close()

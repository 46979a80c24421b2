"""A late press in the web chat over a real WebSocket: after the question expired and went to a person, pressing
its button is answered clearly, logged as a sentence in the visitor's language, and a reloaded chat shows the
visitor's choice as its label and the question without buttons."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.assistant.faq import FaqResponder
from bot.core.messages import utcnow
from bot.routing.sla_worker import clarify_expiry_pass
from crm_store.models import Contact, Ticket
from tests.bot.test_clarify_flow import RESPONSES, ScriptedClassifier
from tests.web.test_webchat import open_visitor


async def test_a_press_after_the_expiry_is_answered_and_logged_as_a_late_choice(live):
    live.app.dispatcher.responder = FaqResponder(ScriptedClassifier(), RESPONSES)
    v, token, _ = await open_visitor(live)
    await v.send({"type": "message", "client_id": "q1", "text": "доставка сколько?"})
    question = await v.expect(lambda f: f["type"] == "message" and f.get("buttons"))
    later = utcnow() + timedelta(hours=25)
    handed = await clarify_expiry_pass(live.app.sessions, settings=live.app.settings, now=later)
    assert len(handed) == 1
    await v.expect(lambda f: f["type"] == "message" and f["text"].startswith("Спасибо за сообщение"))

    await v.send({"type": "message", "client_id": "q2", "text": question["buttons"][0]["data"]})
    told = await v.expect(lambda f: f["type"] == "message" and f["text"].startswith("Вашим вопросом уже занимается"))
    assert told["text"] == (
        f"Вашим вопросом уже занимается сотрудник (T-{handed[0]}), он ответит вам здесь; мы передали ему, что вы "
        "выбрали «Сроки доставки»."
    )
    async with live.app.sessions() as s:
        late = await s.scalar(select(Contact).where(Contact.direction == "in").order_by(Contact.id.desc()))
        ticket = await s.get(Ticket, handed[0])
    assert late.text == "Выбрано: Сроки доставки (вопрос уже устарел)"
    assert (late.ticket_id, late.nlu["payload"], late.nlu["intent"]) == (
        handed[0],
        question["buttons"][0]["data"],
        "delivery",
    )
    assert ticket.status == "open" and ticket.handoff_reason is not None
    await v.ws.close()

    again, _, history = await open_visitor(live, token)
    mine = [f["text"] for f in history if f["from"] == "visitor"]
    assert mine == ["доставка сколько?", "Сроки доставки"]
    asked = next(f for f in history if f["text"].startswith("Чтобы ответить точно"))
    assert "buttons" not in asked
    await again.ws.close()

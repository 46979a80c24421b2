"""The bot's decision with the real model trained on config/nlu.yml, in English, Chinese and Russian: a person
when asked (even beside a billing topic), anger before topic, and the answer in the script the customer used."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.assistant.faq import FaqResponder, train_classifier
from bot.assistant.script import in_script
from crm_store.models import Ticket
from nlu.rasa_format import load_nlu, load_responses

CONFIG = Path(__file__).resolve().parents[2] / "config"
CHARGED_TWICE = {
    "en": "I was charged twice, I need a person!",
    "zh": "我被重复扣款了，我要找人工！",
    "ru": "с меня списали деньги дважды, мне нужен человек!",
}
ANGRY = {
    "en": "give my money back or I sue",
    "zh": "退钱，不然我就起诉你们",
    "ru": "верните деньги или я подам в суд",
}


@pytest.fixture(scope="module")
def responder() -> FaqResponder:
    return FaqResponder(train_classifier(load_nlu(CONFIG / "nlu.yml")), load_responses(CONFIG / "responses.yml"))


@pytest.mark.parametrize("language", ["en", "zh", "ru"])
def test_a_person_when_asked_and_anger_before_topic(responder: FaqResponder, language: str) -> None:
    person = responder.respond(CHARGED_TWICE[language])
    assert person.answer is None and person.question is None and person.intent == "human_handoff"
    assert person.nlu["decision"] == "handoff" and person.language == language
    angry = responder.respond(ANGRY[language])
    assert angry.answer is None and angry.intent in ("complaint", "human_handoff")


def test_traditional_chinese_is_answered_in_traditional(responder: FaqResponder) -> None:
    answers = responder.responses
    traditional = responder.respond("運費多少")
    assert traditional.language == "zh" and traditional.nlu["script"] == "zh-Hant"
    assert traditional.answer == in_script(answers.answer(traditional.intent, "zh"), "zh-Hant")
    assert traditional.answer != answers.answer(traditional.intent, "zh")


async def test_charged_twice_and_asking_for_a_person_opens_a_ticket_in_each_language(harness_factory, responder):
    h = await harness_factory(responder=responder)
    for n, text in enumerate(CHARGED_TWICE.values()):
        await h.ch["telegram"].receive(str(700 + n), text)
    await h.settle()
    async with h.app.sessions() as s:
        tickets = list(await s.scalars(select(Ticket).order_by(Ticket.id)))
    assert len(tickets) == 3
    assert all(t.status == "open" and t.intent == "human_handoff" and t.handoff_reason for t in tickets)
    assert [t.language for t in tickets] == ["en", "zh", "ru"]


@pytest.mark.parametrize(("text", "intent"), [("gde moy zakaz", "order_status"), ("privet", "greeting")])
def test_russian_typed_in_latin_letters_is_answered_in_russian(responder: FaqResponder, text: str, intent: str) -> None:
    turn = responder.respond(text, customer_language="en")
    assert turn.language == "ru" and turn.answer == responder.responses.answer(intent, "ru")

"""The FAQ responder: answers in the customer's language, hands off when it should, never raises."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from bot.assistant.faq import FaqResponder, load_responder
from bot.assistant.responder import HumanOnly
from bot.settings import NluSettings, Settings
from nlu.rasa_format import load_responses

CONFIG = Path(__file__).resolve().parents[2] / "config"


def nlu_settings(tmp: Path, **overrides) -> Settings:
    values = dict(data=str(tmp / "nlu.yml"), responses=str(tmp / "responses.yml"), model_path=str(tmp / "m.joblib"))
    values.update(overrides)
    return Settings(nlu=NluSettings(**values))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("nlu-config")
    shutil.copy(CONFIG / "nlu.yml", folder / "nlu.yml")
    shutil.copy(CONFIG / "responses.yml", folder / "responses.yml")
    return folder


@pytest.fixture(scope="module")
def responder(data_dir: Path) -> FaqResponder:
    loaded = load_responder(nlu_settings(data_dir))
    assert isinstance(loaded, FaqResponder)
    return loaded


@pytest.fixture(scope="module")
def answers():
    return load_responses(CONFIG / "responses.yml")


@pytest.mark.parametrize(
    ("text", "language"),
    [("where is my order?", "en"), ("我的订单在哪里", "zh"), ("где мой заказ", "ru")],
)
def test_answers_order_status_in_the_language_of_the_message(responder, answers, text: str, language: str) -> None:
    turn = responder.respond(text, customer_language="en" if language != "en" else "ru")
    assert turn.answer == answers.answer("order_status", language)
    assert turn.handoff_reason is None
    assert turn.intent == "order_status" and turn.language == language
    assert turn.nlu is not None
    assert turn.nlu["intent"] == "order_status" and turn.nlu["language"] == language
    assert turn.nlu["out_of_scope"] is False and turn.nlu["confidence"] >= 0.55
    assert 1 <= len(turn.nlu["ranking"]) <= 3


@pytest.mark.parametrize(
    ("text", "intent", "language"),
    [
        ("I want to talk to a person", "human_handoff", "en"),
        ("我要转人工", "human_handoff", "zh"),
        ("соедините меня с оператором", "human_handoff", "ru"),
        ("This is unacceptable, I want to file a complaint", "complaint", "en"),
        ("你们的服务太差了，我要投诉", "complaint", "zh"),
        ("я очень недоволен, хочу подать жалобу", "complaint", "ru"),
    ],
)
def test_hands_off_people_and_complaints_with_a_notice(responder, answers, text, intent, language) -> None:
    turn = responder.respond(text)
    assert turn.answer is None
    assert turn.intent == intent and intent in (turn.handoff_reason or "")
    assert turn.nlu["handoff_message"] == answers.answer(intent, language)


@pytest.mark.parametrize("text", ["blorp fnord zizzle wug", "what's the best pizza topping in Naples", "", "🙂🙂"])
def test_hands_off_nonsense_and_out_of_scope(responder, text: str) -> None:
    turn = responder.respond(text)
    assert turn.answer is None
    assert turn.handoff_reason and ("out of scope" in turn.handoff_reason or "low confidence" in turn.handoff_reason)


def test_entities_and_language_fallback(responder) -> None:
    turn = responder.respond("order #482130 has not arrived")
    assert {"entity": "order_number", "value": "482130"}.items() <= turn.nlu["entities"][0].items()
    no_letters = responder.respond("48213", customer_language="ru")
    assert no_letters.language == "ru" and no_letters.nlu["answer_language"] == "ru"
    unknown = responder.respond("48213", customer_language="fr")
    assert unknown.language is None and unknown.nlu["answer_language"] == "en"
    assert responder.respond("48213").language is None
    japanese = responder.respond("注文はどこですか", customer_language="zh")
    assert japanese.language == "zh", "a language we do not answer in falls back to the customer's"


def test_low_confidence_hands_off(data_dir: Path) -> None:
    strict = load_responder(nlu_settings(data_dir, answer_threshold=1.01))
    turn = strict.respond("where is my order?")
    assert turn.answer is None and "low confidence" in (turn.handoff_reason or "")


def test_never_raises(responder) -> None:
    class Broken:
        def parse(self, text: str):
            raise RuntimeError("model exploded")

    broken = FaqResponder(Broken(), responder.responses)  # type: ignore[arg-type]
    turn = broken.respond("where is my order?")
    assert turn.answer is None and turn.handoff_reason == "bot error: RuntimeError"


def test_disabled_nlu_means_human_only(tmp_path: Path) -> None:
    assert isinstance(load_responder(nlu_settings(tmp_path, enabled=False)), HumanOnly)


def test_malformed_training_data_means_human_only_with_the_line_logged(tmp_path, caplog) -> None:
    (tmp_path / "nlu.yml").write_text("version: '3.1'\nnlu:\n- intent: a\n  examples: [oops\n", encoding="utf-8")
    shutil.copy(CONFIG / "responses.yml", tmp_path / "responses.yml")
    with caplog.at_level(logging.ERROR, logger="bot.assistant.faq"):
        loaded = load_responder(nlu_settings(tmp_path))
    assert isinstance(loaded, HumanOnly)
    assert f"{tmp_path / 'nlu.yml'}:" in caplog.text and "invalid YAML" in caplog.text


def test_model_is_trained_once_and_retrained_when_the_data_changes(tmp_path: Path) -> None:
    shutil.copy(CONFIG / "nlu.yml", tmp_path / "nlu.yml")
    shutil.copy(CONFIG / "responses.yml", tmp_path / "responses.yml")
    settings = nlu_settings(tmp_path)
    model = Path(settings.nlu.model_path)
    load_responder(settings)
    assert model.exists()
    os.utime(model, (1_000_000_000, 2_000_000_000))
    os.utime(tmp_path / "nlu.yml", (1_000_000_000, 1_000_000_000))
    reused = load_responder(settings)
    assert model.stat().st_mtime == 2_000_000_000, "a fresh model must be loaded, not retrained"
    assert reused.respond("где мой заказ").intent == "order_status"
    os.utime(tmp_path / "nlu.yml", (1_000_000_000, 2_100_000_000))
    load_responder(settings)
    assert model.stat().st_mtime != 2_000_000_000, "newer training data must retrain the model"
    from nlu.classifier import IntentClassifier

    stale = IntentClassifier.load(model)
    stale.config.c = 123.0  # as if saved by a release with other settings
    stale.save(model)
    os.utime(model, (1_000_000_000, 2_300_000_000))
    load_responder(settings)
    assert IntentClassifier.load(model).config.c != 123.0, "a model with other settings is retrained"
    model.write_bytes(b"corrupt")
    os.utime(model, (1_000_000_000, 2_400_000_000))
    assert isinstance(load_responder(settings), FaqResponder)  # a damaged model is retrained, not fatal


async def test_through_the_dispatcher_in_three_languages(harness_factory, responder, answers) -> None:
    """End to end: memory channels → dispatcher → FAQ bot → outbox → channel, NLU stored on the contact."""
    from crm_store.models import Contact, Ticket

    h = await harness_factory(responder=responder)
    await h.agent("Alice", languages=["en", "zh", "ru"])
    asked = {
        "en": await h.ch["telegram"].receive("100", "where is my order?"),
        "zh": await h.ch["webchat"].receive("200", "我的订单在哪里"),
        "ru": await h.ch["email"].receive("ru@example.com", "где мой заказ"),
    }
    person = await h.ch["telegram"].receive("300", "I want to talk to a person")
    complaint = await h.ch["telegram"].receive("400", "你们的服务太差了，我要投诉")
    nonsense = await h.ch["telegram"].receive("500", "blorp fnord zizzle wug")
    await h.settle()
    assert h.ch["telegram"].sent_to("100")[0] == answers.answer("order_status", "en")
    assert h.ch["webchat"].sent_to("200")[0] == answers.answer("order_status", "zh")
    assert any(answers.answer("order_status", "ru") in t for t in h.ch["email"].sent_to("ru@example.com"))
    async with h.app.sessions() as s:
        for language, result in asked.items():
            contact = await s.get(Contact, result.contact_id)
            assert contact.nlu["intent"] == "order_status" and contact.nlu["language"] == language
            assert (await s.get(Ticket, result.ticket_id)).status == "solved"
        for result, intent in ((person, "human_handoff"), (complaint, "complaint"), (nonsense, None)):
            ticket = await s.get(Ticket, result.ticket_id)
            assert ticket.status == "open" and ticket.handoff_reason
            if intent:
                assert intent in ticket.handoff_reason
            contact = await s.get(Contact, result.contact_id)
            assert contact.nlu is not None and "confidence" in contact.nlu
    for sender in ("300", "400", "500"):
        assert answers.answer("order_status", "en") not in h.ch["telegram"].sent_to(sender)


def test_each_decision_is_counted_for_metrics_by_action_and_language(responder) -> None:
    from bot.core.metrics import NLU_DECISIONS

    def seen(action: str, language: str) -> float:
        return NLU_DECISIONS.labels(action, language)._value.get()

    before = {(a, lang): seen(a, lang) for a in ("answer", "handoff") for lang in ("en", "ru")}
    responder.respond("where is my order?")
    responder.respond("где мой заказ")
    responder.respond("I want to talk to a human right now")
    assert seen("answer", "en") - before[("answer", "en")] == 1
    assert seen("answer", "ru") - before[("answer", "ru")] == 1
    assert seen("handoff", "en") - before[("handoff", "en")] == 1

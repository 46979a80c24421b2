"""Script-aware language detection by units of meaning, normalisation, and regex/lookup entities."""

from __future__ import annotations

import itertools

import pytest

from nlu.entities import EntityExtractor
from nlu.language import detect_language
from nlu.text import clean, has_words, normalise


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("where is my order?", "en"),
        ("我的订单在哪里", "zh"),
        ("где мой заказ", "ru"),
        ("мой order не пришёл", "ru"),  # 3 Cyrillic words against 1 Latin
        ("我的order在哪里", "zh"),  # 5 Han characters against 1 Latin word
        ("可以用Apple Pay嗎", "zh"),  # 4 Han characters against 2 Latin words (brand names)
        ("iPhone 15 заказ", "ru"),  # 1 word each: the tie goes to the non-Latin script
        ("order iPhone iPad заказ", "en"),  # 3 Latin words against 1 Cyrillic
        ("注文はどこですか", "ja"),
        ("12345 !!! 😀", None),
        ("", None),
    ],
)
def test_language_by_majority_script(text: str, language: str | None) -> None:
    assert detect_language(text) == language


def test_normalisation_folds_width_case_and_control_characters() -> None:
    assert normalise("ＯＲＤＥＲ\x00\x07 Status\u200b\tNOW") == "order status now"
    assert clean("  Hello\r\n\x1bWorld  ") == "Hello World"
    assert len(clean("a" * 100_000, max_chars=50)) == 50
    assert not has_words("😀🙏 ... !!!")
    assert has_words("ok 😀")


@pytest.fixture(scope="module")
def extractor() -> EntityExtractor:
    return EntityExtractor.build(lookups={"payment_method": ["PayPal", "支付宝"]}, synonyms={"支付宝": "alipay"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("where is order #123456?", [("order_number", "123456", "order #123456")]),
        ("status of ORD-778899 please", [("order_number", "ORD-778899", "ORD-778899")]),
        ("заказ № 55555 не пришёл", [("order_number", "55555", "заказ № 55555")]),
        ("我的订单 12345678 在哪里", [("order_number", "12345678", "12345678")]),
        ("mail jd+shop@example.co.uk", [("email", "jd+shop@example.co.uk", "jd+shop@example.co.uk")]),
        ("call me on +44 20 7946 0958", [("phone", "+44 20 7946 0958", "+44 20 7946 0958")]),
        ("I was charged $25.99 twice", [("amount", "$25.99", "$25.99")]),
        ("我的邮箱li@example.cn谢谢", [("email", "li@example.cn", "li@example.cn")]),
        ("电话13812345678，尽快联系", [("phone", "13812345678", "13812345678")]),
        ("звоните +7 (912) 345-67-89", [("phone", "+7 (912) 345-67-89", "+7 (912) 345-67-89")]),
        ("списали 1 200 руб", [("amount", "1 200 руб", "1 200 руб")]),
        ("多收了我 199 元", [("amount", "199 元", "199 元")]),
        ("I paid with paypal", [("payment_method", "paypal", "paypal")]),
        ("用支付宝付的", [("payment_method", "alipay", "支付宝")]),
        ("nothing to see here", []),
    ],
)
def test_entities(extractor: EntityExtractor, text: str, expected: list[tuple[str, str, str]]) -> None:
    found = extractor.extract(text)
    assert [(e.entity, e.value, e.text) for e in found] == expected
    for e in found:
        assert text[e.start : e.end] == e.text


def test_entities_do_not_overlap_and_survive_huge_input(extractor: EntityExtractor) -> None:
    found = extractor.extract("order #12345 and mail a@b.io " * 2000)
    spans = [(e.start, e.end) for e in found]
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    assert {e.entity for e in found} == {"order_number", "email"}

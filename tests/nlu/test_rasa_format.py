"""Rasa formats in (nlu.yml, responses) with file:line errors, and out again (round trip)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from nlu.rasa_export import write_nlu, write_responses
from nlu.rasa_format import NluDataError, load_nlu, load_responses

GOOD_NLU = """\
version: "3.1"
nlu:
- intent: check_balance
  examples: |
    - what is my balance
    - how much money is on my [credit card](account:card)
    - show [savings](account) balance
- intent: check_balance
  metadata: {language: ru}
  examples: |
    - какой у меня баланс
- intent: greet
  examples:
  - text: hello
  - text: 你好
    metadata: {language: zh}
- synonym: card
  examples: |
    - plastic
- regex: account_number
  examples: |
    - \\d{10,12}
- lookup: bank
  examples: |
    - Chase
    - Сбербанк
"""

GOOD_RESPONSES = """\
version: "3.1"
responses:
  utter_greet:
  - text: "Hello!"
  - text: "Привет!"
    condition:
    - type: slot
      name: language
      value: ru
  utter_check_balance:
  - text: "Your balance is in the app."
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_intents_languages_synonyms_regexes_lookups(tmp_path: Path) -> None:
    data = load_nlu(write(tmp_path, "nlu.yml", GOOD_NLU))
    assert data.intents == ["check_balance", "greet"]
    assert data.texts[:3] == ["what is my balance", "how much money is on my credit card", "show savings balance"]
    balance = [(e.text, e.language) for e in data.examples if e.intent == "check_balance"]
    assert balance[-1] == ("какой у меня баланс", "ru")
    assert [(e.text, e.language) for e in data.examples if e.intent == "greet"] == [("hello", None), ("你好", "zh")]
    assert data.synonyms == {"credit card": "card", "plastic": "card"}
    assert data.regexes == {"account_number": ["\\d{10,12}"]}
    assert data.lookups == {"bank": ["Chase", "Сбербанк"]}
    found = {(e.entity, e.value) for e in data.entity_extractor().extract("pay 1234567890 from Сбербанк plastic")}
    assert {("account_number", "1234567890"), ("bank", "Сбербанк")} <= found


def test_responses_pick_the_language_variation_and_fall_back_to_the_default(tmp_path: Path) -> None:
    responses = load_responses(write(tmp_path, "responses.yml", GOOD_RESPONSES))
    assert responses.answer("greet", "ru") == "Привет!"
    assert responses.answer("greet", "en") == "Hello!"
    assert responses.answer("greet", "zh") == "Hello!"
    assert responses.answer("check_balance", "ru") == "Your balance is in the app."
    assert responses.answer("unknown", "en") is None


def test_malformed_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    broken = GOOD_NLU.replace("- intent: greet\n", "- intent: greet\n  examples: [unclosed\n", 1)
    path = write(tmp_path, "nlu.yml", broken)
    with pytest.raises(NluDataError) as caught:
        load_nlu(path)
    line_of_break = broken.splitlines().index("  examples: [unclosed") + 1
    assert caught.value.path == str(path)
    assert caught.value.line is not None and abs(caught.value.line - line_of_break) <= 2
    assert str(caught.value).startswith(f"{path}:{caught.value.line}: invalid YAML")


def test_bad_example_line_names_its_own_line(tmp_path: Path) -> None:
    text = GOOD_NLU.replace("    - show [savings](account) balance\n", "    show savings balance\n")
    path = write(tmp_path, "nlu.yml", text)
    with pytest.raises(NluDataError, match=r"must start with '- '") as caught:
        load_nlu(path)
    assert caught.value.line == text.splitlines().index("    show savings balance") + 1


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("version: '3.1'\nintents: []\n", "expected a mapping with an 'nlu:' list"),
        ("version: '3.1'\nnlu:\n- intent: a\n", "missing 'examples:'"),
        ("version: '3.1'\nnlu:\n- intent: a\n  regex: b\n  examples: |\n    - x\n", "exactly one of"),
        ("version: '9.0'\nnlu:\n- intent: a\n  examples: |\n    - x\n", "unsupported version"),
        ("version: '3.1'\nnlu:\n- regex: r\n  examples: |\n    - (unclosed\n", "invalid pattern"),
    ],
)
def test_structural_errors_are_clear(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, "nlu.yml", text)
    with pytest.raises(NluDataError, match=problem) as caught:
        load_nlu(path)
    assert str(path) in str(caught.value)


def test_missing_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(NluDataError, match="no such file"):
        load_nlu(tmp_path / "absent.yml")
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(NluDataError, match="not UTF-8"):
        load_responses(binary)


def test_responses_without_text_are_an_error_with_line(tmp_path: Path) -> None:
    path = write(tmp_path, "responses.yml", "responses:\n  utter_a:\n  - image: x.png\n")
    with pytest.raises(NluDataError, match="each variation needs 'text:'") as caught:
        load_responses(path)
    assert caught.value.line == 3


def test_starter_data_covers_every_intent_in_three_languages(starter_data, starter_responses) -> None:
    required = {"greeting", "goodbye", "thanks", "order_status", "delivery", "refund_return", "billing_payment",
                "account_access", "pricing", "opening_hours", "complaint", "human_handoff"}
    counts = Counter((e.intent, e.language) for e in starter_data.examples)
    for intent in required:
        for language in ("en", "zh", "ru"):
            assert counts[(intent, language)] >= 20, (intent, language)
            answer = starter_responses.answer(intent, language)
            assert answer
            assert language == "en" or answer != starter_responses.answer(intent, None), (intent, language)
    assert len({e.text for e in starter_data.examples}) == len(starter_data.examples), "duplicate examples"


def test_export_round_trips_through_the_loader(tmp_path: Path, starter_data, starter_responses) -> None:
    nlu_path = write_nlu(starter_data, tmp_path / "out" / "nlu.yml")
    responses_path = write_responses(starter_responses, tmp_path / "out" / "responses.yml")
    again = load_nlu(nlu_path)
    assert again.examples == starter_data.examples
    assert again.synonyms == starter_data.synonyms
    assert again.regexes == starter_data.regexes
    assert again.lookups == starter_data.lookups
    assert load_responses(responses_path).by_intent == starter_responses.by_intent
    assert nlu_path.read_text(encoding="utf-8").startswith("version: '3.1'\nnlu:\n- intent: ")

"""Adding reviewed examples to a Rasa nlu.yml: the right block, layout and comments kept, nothing twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.assistant.training_data import NewExample, add_examples, append_to_file
from nlu.rasa_format import load_nlu

SAMPLE = """# shop data
version: "3.1"
nlu:
- intent: pricing
  metadata: {language: en}
  examples: |
    - how much is it
    - price?
- intent: pricing
  metadata: {language: zh}
  examples: |
    - 多少钱
# delivery, in one language only
- intent: delivery
  metadata:
    language: en
  examples: |
    - when will it arrive

- synonym: card
  examples: |
    - credit card
"""


def test_an_example_goes_to_the_end_of_its_intent_and_language_block() -> None:
    text, added = add_examples(
        SAMPLE, [NewExample("pricing", "zh", "运费\n多少？"), NewExample("delivery", "en", "eta")]
    )
    assert len(added) == 2
    lines = text.splitlines()
    assert lines[lines.index("    - 多少钱") + 1] == "    - 运费 多少？"
    assert lines[lines.index("    - when will it arrive") + 1] == "    - eta"
    assert text.startswith("# shop data\n") and "# delivery, in one language only" in text
    assert len(lines) == len(SAMPLE.splitlines()) + 2


def test_an_example_already_there_is_not_added_twice() -> None:
    text, added = add_examples(
        SAMPLE,
        [NewExample("pricing", "en", "  Price?  "), NewExample("pricing", "en", "x"), NewExample("pricing", "en", "X")],
    )
    assert [e.text for e in added] == ["x"]
    assert text.count("    - x\n") == 1 and "Price?" not in text


def test_a_missing_block_is_created_after_the_last_intent_block(tmp_path: Path) -> None:
    path = tmp_path / "nlu.yml"
    path.write_text(SAMPLE, encoding="utf-8")
    added = append_to_file(path, [NewExample("delivery", "ru", "когда привезут"), NewExample("pricing", "en", "cost")])
    assert len(added) == 2
    data = load_nlu(path)
    found = {(e.intent, e.language, e.text) for e in data.examples}
    assert {("delivery", "ru", "когда привезут"), ("pricing", "en", "cost"), ("delivery", "en", "eta")} - found == {
        ("delivery", "en", "eta")
    }
    assert data.synonyms == {"credit card": "card"}
    text = path.read_text(encoding="utf-8")
    assert text.index("- intent: delivery\n  metadata: {language: ru}") < text.index("- synonym: card")


def test_an_example_that_would_read_differently_is_refused_and_the_file_stays(tmp_path: Path) -> None:
    path = tmp_path / "nlu.yml"
    path.write_text(SAMPLE, encoding="utf-8")
    with pytest.raises(ValueError, match="would read differently"):
        append_to_file(path, [NewExample("pricing", "en", "is [Moscow](city) delivery free")])
    assert path.read_text(encoding="utf-8") == SAMPLE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nlu.yml"]

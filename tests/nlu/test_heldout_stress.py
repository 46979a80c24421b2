"""The held-out stress sets (ru_shop_words.csv, en/zh/ru_off_topic.csv): well formed and never trained on.

`test_training_data.py` guards en/zh/ru.csv; the stress sets measure the same bot, so the same leak rules hold
for them, each against the training examples of its own language.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from nlu.rasa_format import TrainingData
from tests.nlu.test_training_data import NEAR_COPY, key, overlap, trigrams

HELDOUT = Path(__file__).resolve().parent / "heldout"
STRESS = {"ru_shop_words": "ru", "en_off_topic": "en", "zh_off_topic": "zh", "ru_off_topic": "ru"}
"""Each stress set and the language of its messages."""
MIN_OFF_TOPIC = 30


def read(name: str) -> list[dict[str, str]]:
    with (HELDOUT / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["text", "intent", "expect"], name
        return list(reader)


def test_every_csv_in_the_folder_is_a_target_set_or_a_known_stress_set() -> None:
    assert {p.stem for p in HELDOUT.glob("*.csv")} == {"en", "zh", "ru", *STRESS}


@pytest.mark.parametrize("name", [n for n in STRESS if n.endswith("_off_topic")])
def test_an_off_topic_set_is_off_topic_only_and_large_enough(name: str) -> None:
    rows = read(name)
    assert len(rows) >= MIN_OFF_TOPIC
    assert {(row["intent"], row["expect"]) for row in rows} == {("out_of_scope", "handoff")}
    assert all(row["text"] and row["text"].strip() == row["text"] for row in rows)
    repeated = [text for text, n in Counter(key(row["text"]) for row in rows).items() if n > 1]
    assert not repeated, repeated


@pytest.mark.parametrize("name", list(STRESS))
def test_no_stress_message_is_trained_on_or_a_near_copy(name: str, starter_data: TrainingData) -> None:
    language = STRESS[name]
    trained = [(e.text, trigrams(e.text)) for e in starter_data.examples if e.language == language]
    exact = {key(text) for text, _ in trained}
    rows = read(name)
    assert not [row["text"] for row in rows if key(row["text"]) in exact]
    near = [
        (row["text"], text)
        for row in rows
        for text, theirs in trained
        if overlap(trigrams(row["text"]), theirs) >= NEAR_COPY
    ]
    assert not near, near

"""Counting what the bot's decision gave customers, on hand-made decisions with hand-computed rates."""

from __future__ import annotations

import pytest

from nlu.outcomes import Outcome, decision_rates, rates_by_group

NO_ANSWER = {"human_handoff", "complaint", "out_of_scope"}


def test_rates_on_hand_made_decisions() -> None:
    gold = ["delivery", "delivery", "pricing", "pricing", "complaint", "out_of_scope", "human_handoff", "refund"]
    outcomes = [
        Outcome("answer", "delivery"),  # correct
        Outcome("answer", "pricing"),  # wrong: another intent's answer
        Outcome("clarify"),  # asked
        Outcome("handoff"),  # handed off though answerable
        Outcome("answer", "refund"),  # wrong: a complaint got an FAQ answer
        Outcome("handoff"),  # right: off-topic goes to a person
        Outcome("answer", "human_handoff"),  # wrong: no answer may be given to a person request
        Outcome("answer", "refund"),  # correct
    ]
    rates = decision_rates(gold, outcomes, NO_ANSWER)
    # answerable: delivery x2, pricing x2, refund = 5; correct 2 of them
    assert rates.answerable == 5 and rates.messages == 8
    assert rates.correct_answer == pytest.approx(2 / 5)
    assert rates.wrong_answer == pytest.approx(3 / 8)
    assert rates.handoff == pytest.approx(2 / 8)
    assert rates.clarify == pytest.approx(1 / 8)


def test_rates_per_group_and_errors() -> None:
    gold = ["a", "a", "out_of_scope", "a"]
    outcomes = [Outcome("answer", "a"), Outcome("handoff"), Outcome("handoff"), Outcome("answer", "b")]
    by = rates_by_group(gold, outcomes, ["zh", "zh", "ru", "ru"], NO_ANSWER)
    assert list(by) == ["ru", "zh"]
    assert (by["zh"].correct_answer, by["zh"].wrong_answer, by["zh"].handoff) == (0.5, 0.0, 0.5)
    assert (by["ru"].answerable, by["ru"].correct_answer, by["ru"].wrong_answer) == (1, 0.0, 0.5)
    with pytest.raises(ValueError, match="one outcome"):
        decision_rates(["a"], [], NO_ANSWER)
    empty = decision_rates([], [], NO_ANSWER)
    assert (empty.correct_answer, empty.wrong_answer) == (0.0, 0.0)

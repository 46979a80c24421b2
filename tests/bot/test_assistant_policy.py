"""The bot's decision rule on hand-built NLU results: a person when asked, ask when two topics are close."""

from __future__ import annotations

import pytest

from bot.assistant.policy import (
    CLARIFY_MARGIN,
    CLARIFY_MIN_MASS,
    CLARIFY_MIN_SECOND,
    PERSON_FIRST_MIN_PROBABILITY,
    PERSON_FIRST_TOP_K,
    Choice,
    DecisionRules,
    decide,
)
from nlu.result import NluResult


def result(
    *ranking: tuple[str, float], out_of_scope: bool = False, reason: str | None = None, language: str = "en"
) -> NluResult:
    best = next((n for n, _ in ranking if n != "out_of_scope"), "out_of_scope")
    intent = "out_of_scope" if out_of_scope else best
    confidence = dict(ranking).get(best, 0.0)
    return NluResult(intent, confidence, list(ranking), [], language, out_of_scope, reason)


def test_the_rule_is_stated_as_constants() -> None:
    assert (PERSON_FIRST_TOP_K, PERSON_FIRST_MIN_PROBABILITY) == (3, 0.20)
    assert (CLARIFY_MARGIN, CLARIFY_MIN_SECOND, CLARIFY_MIN_MASS) == (0.15, 0.20, 0.50)


def test_a_confident_topic_is_answered() -> None:
    assert decide(result(("delivery", 0.82), ("pricing", 0.10), ("order_status", 0.05))) == Choice(
        "answer", "delivery", (), "delivery 0.82"
    )


@pytest.mark.parametrize("person", ["human_handoff", "complaint"])
def test_a_person_wins_over_the_top_topic_with_real_probability(person: str) -> None:
    # "I was charged twice, I need a person!": billing ranks first, the request for a person second.
    choice = decide(result(("billing_payment", 0.55), (person, 0.30), ("refund_return", 0.10)))
    assert choice.action == "handoff" and choice.intent == person


def test_a_person_in_third_place_still_wins() -> None:
    choice = decide(result(("refund_return", 0.45), ("billing_payment", 0.25), ("complaint", 0.21)))
    assert (choice.action, choice.intent) == ("handoff", "complaint")


def test_a_person_below_the_floor_or_outside_the_top_does_not_win() -> None:
    # 0.19 < 0.20: no real probability.
    assert decide(result(("billing_payment", 0.71), ("complaint", 0.19), ("pricing", 0.05))).action == "answer"
    # Fourth place at 0.20 is not among the top 3.
    ranked = result(("pricing", 0.30), ("delivery", 0.25), ("order_status", 0.22), ("human_handoff", 0.20))
    assert decide(ranked).intent != "human_handoff"


def test_a_person_wins_even_when_the_message_was_judged_out_of_scope() -> None:
    choice = decide(result(("refund_return", 0.40), ("complaint", 0.35), out_of_scope=True, reason="low confidence"))
    assert (choice.action, choice.intent) == ("handoff", "complaint")


def test_two_close_topics_are_asked_about_with_a_person_option() -> None:
    # 0.42 - 0.36 = 0.06 <= 0.15; 0.36 >= 0.20; 0.78 >= 0.50.
    choice = decide(result(("delivery", 0.42), ("pricing", 0.36), ("order_status", 0.12)))
    assert choice == Choice(
        "clarify", None, ("delivery", "pricing", "human_handoff"), "close call: delivery 0.42 / pricing 0.36"
    )


@pytest.mark.parametrize(
    ("p1", "p2", "action"),
    [
        (0.50, 0.35, "clarify"),  # margin exactly 0.15
        (0.51, 0.34, "handoff"),  # margin 0.17: not close, and 0.51 < 0.55 answer threshold
        (0.60, 0.30, "answer"),  # margin 0.30
        (0.30, 0.19, "handoff"),  # second below 0.20
        (0.26, 0.23, "handoff"),  # close, but together 0.49 < 0.50
        (0.27, 0.23, "clarify"),  # together exactly 0.50
    ],
)
def test_the_close_call_boundaries(p1: float, p2: float, action: str) -> None:
    assert decide(result(("delivery", p1), ("pricing", p2), ("thanks", 0.05))).action == action


def test_a_close_call_rescues_a_message_rejected_for_low_confidence_only() -> None:
    split = result(
        ("out_of_scope", 0.10),
        ("delivery", 0.40),
        ("pricing", 0.38),
        out_of_scope=True,
        reason="low confidence (0.40 < threshold 0.45)",
    )
    assert decide(split).action == "clarify"


def test_the_out_of_scope_class_first_is_a_handoff_without_asking() -> None:
    choice = decide(
        result(
            ("out_of_scope", 0.50),
            ("pricing", 0.30),
            ("delivery", 0.15),
            out_of_scope=True,
            reason="classified as out of scope",
        )
    )
    assert choice == Choice("handoff", None, (), "out of scope: classified as out of scope")


def test_the_out_of_scope_class_is_never_an_option() -> None:
    choice = decide(
        result(
            ("pricing", 0.40), ("out_of_scope", 0.38), ("delivery", 0.12), out_of_scope=True, reason="low confidence"
        )
    )
    assert (choice.action, choice.intent) == ("handoff", None)


def test_low_confidence_is_a_handoff() -> None:
    assert decide(result(("pricing", 0.50), ("delivery", 0.20))).reason == "low confidence 0.50 for pricing"
    assert decide(result(("pricing", 0.50), ("delivery", 0.20)), answer_threshold=0.45).action == "answer"


def test_an_intent_without_an_answer_is_a_handoff_and_never_an_option() -> None:
    assert decide(result(("order_status", 0.9), ("pricing", 0.05)), answerable={"pricing"}).action == "handoff"
    close = result(("order_status", 0.40), ("delivery", 0.35), ("pricing", 0.20))
    assert decide(close, answerable={"delivery", "pricing"}).options == ("delivery", "pricing", "human_handoff")


def test_nothing_to_classify_is_a_handoff_with_its_reason() -> None:
    empty = NluResult("out_of_scope", 0.0, [], [], None, True, "empty message")
    assert decide(empty) == Choice("handoff", None, (), "out of scope: empty message")


def test_the_rules_can_be_tuned() -> None:
    strict = DecisionRules(person_first_min_probability=0.5, clarify_margin=0.0)
    assert decide(result(("billing_payment", 0.6), ("human_handoff", 0.3)), rules=strict).action == "answer"
    assert decide(result(("delivery", 0.42), ("pricing", 0.36)), rules=strict).action == "handoff"

"""What the bot does with one NLU result: answer, ask which of two topics was meant, or hand off to a person.

A pure function on the classifier's ranking, so the same rule runs in the dispatcher and in the evaluation
(`decide(result)` with the defaults is the bot's real decision). The rules, in order:

1. A person when asked, anger before topic: if a request for a person or a complaint is among the top
   `PERSON_FIRST_TOP_K` candidates with probability >= `PERSON_FIRST_MIN_PROBABILITY`, the message goes to a
   person, whatever FAQ topic ranks above it ("I was charged twice, I need a person!" opens a ticket).
2. A message the model classifies as out of scope (its own class ranks first) goes to a person.
3. Ask, don't guess: when the two best answerable topics are within `CLARIFY_MARGIN` of each other, the second
   has at least `CLARIFY_MIN_SECOND` and together they hold `CLARIFY_MIN_MASS`, the bot asks which one was meant
   (the two topics and "talk to a person") instead of answering either. This also rescues a message that was
   below the out-of-scope threshold only because two topics split the probability.
4. Otherwise out of scope, below `answer_threshold`, or without a written answer: a person. Else: the answer.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from nlu.result import NluResult

Action = Literal["answer", "clarify", "handoff"]

HANDOFF_INTENTS: tuple[str, ...] = ("complaint", "human_handoff")
"""Intents that mean "a person, please" (an explicit request or a complaint)."""
PERSON_OPTION = "human_handoff"
"""The intent of the "Talk to a person" choice offered with every clarification."""
OOS_LABEL = "out_of_scope"
ANSWER_THRESHOLD = 0.55
"""Default for `settings.nlu.answer_threshold`: below it the bot does not answer on its own."""

PERSON_FIRST_TOP_K = 3
PERSON_FIRST_MIN_PROBABILITY = 0.20
"""Rule 1: a handoff intent this likely, among the top 3, wins over any FAQ topic."""
CLARIFY_MARGIN = 0.15
CLARIFY_MIN_SECOND = 0.20
CLARIFY_MIN_MASS = 0.50
"""Rule 3: p1 - p2 <= 0.15, p2 >= 0.20 and p1 + p2 >= 0.50 between the two best answerable topics: ask."""


@dataclass(frozen=True, slots=True)
class DecisionRules:
    """The thresholds of the rules above, in one value (settings may override them)."""

    handoff_intents: tuple[str, ...] = HANDOFF_INTENTS
    person_first_top_k: int = PERSON_FIRST_TOP_K
    person_first_min_probability: float = PERSON_FIRST_MIN_PROBABILITY
    clarify_margin: float = CLARIFY_MARGIN
    clarify_min_second: float = CLARIFY_MIN_SECOND
    clarify_min_mass: float = CLARIFY_MIN_MASS
    oos_label: str = OOS_LABEL
    person_option: str = PERSON_OPTION


DEFAULT_RULES = DecisionRules()


@dataclass(frozen=True, slots=True)
class Choice:
    """The bot's decision for one message.

    `intent`: the topic answered, the handoff intent that won (or None when no person was asked for).
    `options`: for a clarification, the intents offered in order, the person option last.
    `reason`: one line a supervisor reads on the contact ("close call: delivery 0.41 / pricing 0.37").
    """

    action: Action
    intent: str | None
    options: tuple[str, ...] = ()
    reason: str = ""


def _person_asked(ranking: list[tuple[str, float]], rules: DecisionRules) -> tuple[str, float] | None:
    for name, p in ranking[: rules.person_first_top_k]:
        if name in rules.handoff_intents and p >= rules.person_first_min_probability:
            return name, p
    return None


def _close_call(candidates: list[tuple[str, float]], rules: DecisionRules) -> bool:
    if len(candidates) < 2:
        return False
    (_, p1), (_, p2) = candidates[0], candidates[1]
    # Rounded: 0.50 - 0.35 is 0.15000000000000002 in floating point, and the boundary is part of the rule.
    gap, mass = round(p1 - p2, 9), round(p1 + p2, 9)
    return gap <= rules.clarify_margin and p2 >= rules.clarify_min_second and mass >= rules.clarify_min_mass


def decide(
    result: NluResult,
    *,
    answer_threshold: float = ANSWER_THRESHOLD,
    answerable: Collection[str] | None = None,
    rules: DecisionRules = DEFAULT_RULES,
) -> Choice:
    """The bot's decision for `result`. `answerable`: the intents with a written answer (None: every intent)."""
    ranking = sorted(result.ranking, key=lambda item: -item[1]) or [(result.intent, result.confidence)]
    person = _person_asked(ranking, rules)
    if person is not None:
        return Choice("handoff", person[0], reason=f"{person[0]} among the top candidates ({person[1]:.2f})")
    if not result.ranking and result.out_of_scope:
        return Choice("handoff", None, reason=f"out of scope: {result.reason or 'nothing to classify'}")
    if ranking[0][0] == rules.oos_label:
        return Choice("handoff", None, reason=f"out of scope: {result.reason or 'classified as out of scope'}")
    candidates = [
        (name, p)
        for name, p in ranking
        if name != rules.oos_label and name not in rules.handoff_intents and (answerable is None or name in answerable)
    ]
    if _close_call(candidates, rules):
        (n1, p1), (n2, p2) = candidates[0], candidates[1]
        return Choice("clarify", None, (n1, n2, rules.person_option), f"close call: {n1} {p1:.2f} / {n2} {p2:.2f}")
    if result.out_of_scope:
        return Choice("handoff", None, reason=f"out of scope: {result.reason or 'low confidence'}")
    best, p = ranking[0]
    if best in rules.handoff_intents:
        return Choice("handoff", best, reason=f"{best} {p:.2f}")
    if answerable is not None and best not in answerable:
        return Choice("handoff", None, reason=f"no answer written for intent {best}")
    if p < answer_threshold:
        return Choice("handoff", None, reason=f"low confidence {p:.2f} for {best}")
    return Choice("answer", best, reason=f"{best} {p:.2f}")

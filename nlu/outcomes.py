"""What the bot's decision did for the customer: right answers, wrong answers and handoffs, per language.

Accuracy says how often the top intent was right; a customer sees something else: an FAQ answer, a question
back ("did you mean ...?") or a person. The rule (also in tests/nlu/heldout/README.md): a message whose true
intent is a request for a person, a complaint or out of scope should get no FAQ answer; any other message
should get the answer of its intent. So

- correct answer: the answer of the true intent, on a message that should be answered (share of those);
- wrong answer: any FAQ answer on a message that should not be answered, or the answer of another intent
  (share of all messages: the figure a customer trusts the bot by);
- handoff: no answer, the conversation goes to a person (share of all messages);
- clarify: the bot asked which of two topics was meant (share of all messages).

The decision itself is the bot's; this module only counts, on plain values.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

ANSWER = "answer"
CLARIFY = "clarify"
HANDOFF = "handoff"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The bot's decision for one message: `action` is answer / clarify / handoff; `intent` the one answered."""

    action: str
    intent: str | None = None


@dataclass(frozen=True, slots=True)
class DecisionRates:
    messages: int
    answerable: int
    correct_answer: float
    """Share of answerable messages answered with their own intent's answer."""
    wrong_answer: float
    """Share of all messages given an answer they should not have got."""
    handoff: float
    clarify: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "messages": self.messages,
            "answerable": self.answerable,
            "correct_answer": self.correct_answer,
            "wrong_answer": self.wrong_answer,
            "handoff": self.handoff,
            "clarify": self.clarify,
        }


def should_answer(intent: str, no_answer_intents: Collection[str]) -> bool:
    """True when a message of this true intent should get that intent's FAQ answer."""
    return intent not in no_answer_intents


def decision_rates(
    gold: Sequence[str], outcomes: Sequence[Outcome], no_answer_intents: Collection[str]
) -> DecisionRates:
    """The four rates for messages with true intents `gold` and the bot's `outcomes` (same order)."""
    if len(gold) != len(outcomes):
        raise ValueError("decision_rates needs one outcome per message")
    n = len(gold)
    answerable = correct = wrong = handoffs = clarified = 0
    for intent, outcome in zip(gold, outcomes, strict=True):
        expected = should_answer(intent, no_answer_intents)
        answerable += expected
        if outcome.action == ANSWER:
            if expected and outcome.intent == intent:
                correct += 1
            else:
                wrong += 1
        elif outcome.action == CLARIFY:
            clarified += 1
        else:
            handoffs += 1
    return DecisionRates(
        messages=n,
        answerable=answerable,
        correct_answer=correct / answerable if answerable else 0.0,
        wrong_answer=wrong / n if n else 0.0,
        handoff=handoffs / n if n else 0.0,
        clarify=clarified / n if n else 0.0,
    )


def rates_by_group(
    gold: Sequence[str],
    outcomes: Sequence[Outcome],
    groups: Sequence[str],
    no_answer_intents: Collection[str],
) -> dict[str, DecisionRates]:
    """`decision_rates` for each group of messages (e.g. per language), groups in sorted order."""
    if not len(gold) == len(outcomes) == len(groups):
        raise ValueError("rates_by_group needs one outcome and one group per message")
    rates = {}
    for group in sorted(set(groups)):
        picked = [i for i, g in enumerate(groups) if g == group]
        rates[group] = decision_rates([gold[i] for i in picked], [outcomes[i] for i in picked], no_answer_intents)
    return rates

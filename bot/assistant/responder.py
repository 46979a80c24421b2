"""How the dispatcher asks "can the bot answer this?" without knowing how the answer is found.

The NLU plugs in by implementing `Responder`; without it every customer message goes to a human queue.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BotTurn:
    """What the bot makes of one customer message.

    `answer` set: the bot replies with it. `question` set: the bot asks which of `options` ((intent, label) in
    button order) the customer meant, instead of answering. Neither: a human is needed, for `handoff_reason`.
    `script` is the customer's script when it is not the answer's default ("zh-Hant": Traditional Chinese).
    `nlu` is stored on the contact for supervisors (intent, confidence, language, out_of_scope, decision, ...).
    """

    answer: str | None = None
    handoff_reason: str | None = None
    intent: str | None = None
    language: str | None = None
    nlu: dict[str, Any] | None = field(default=None)
    question: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    script: str | None = None


class Responder(Protocol):
    def respond(self, text: str, *, customer_language: str | None = None) -> BotTurn:
        """Decide for one message; must be quick (called inside the batch transaction) and never raise."""


def prepare(responder: Responder, texts: Sequence[str]) -> None:
    """Let a responder that can (one with `prepare(texts)`) classify a batch's texts in one go before `respond`
    is asked about each; a failure only means each is classified when asked."""
    ahead = getattr(responder, "prepare", None)
    if ahead is None or not texts:
        return
    try:
        ahead(list(texts))
    except Exception:  # respond() still answers each message, and never raises
        log.exception("classifying the batch at once failed; classifying message by message")


class HumanOnly:
    """The configuration without a bot: every message is for a human."""

    def respond(self, text: str, *, customer_language: str | None = None) -> BotTurn:
        return BotTurn(answer=None, handoff_reason="no bot configured: every message goes to a human")

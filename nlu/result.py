"""What the NLU makes of one message: a plain value the bot can store on a contact as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Entity:
    """A span found in the message: `value` is the canonical form (after synonyms), `text` what was written."""

    entity: str
    value: str
    text: str
    start: int
    end: int
    extractor: str


@dataclass(frozen=True, slots=True)
class NluResult:
    """The classifier's answer for one message.

    `intent` is the best in-scope intent, or the out-of-scope label when the model does not know;
    `ranking` keeps the real candidates either way, so a supervisor can see what the bot hesitated between.
    `reason` says why a message was judged out of scope (empty text, low confidence, ...).
    `script` is how the customer wrote: "zh-Hans" / "zh-Hant" for Chinese, "cyrillic" or "latin" for Russian
    (Russian typed in Latin letters is language "ru", script "latin"), "latin" for English; None otherwise.
    """

    intent: str
    confidence: float
    ranking: list[tuple[str, float]] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)
    language: str | None = None
    out_of_scope: bool = False
    reason: str | None = None
    script: str | None = None

    def as_dict(self, *, top: int | None = None) -> dict[str, Any]:
        """JSON-ready form; `top` keeps only the first entries of the ranking."""
        ranking = self.ranking if top is None else self.ranking[:top]
        return {
            "intent": self.intent,
            "confidence": round(float(self.confidence), 4),
            "ranking": [{"intent": name, "confidence": round(float(p), 4)} for name, p in ranking],
            "entities": [asdict(e) for e in self.entities],
            "language": self.language,
            "out_of_scope": self.out_of_scope,
            "reason": self.reason,
            "script": self.script,
        }

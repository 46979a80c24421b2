"""Entities by regular expression and lookup table, canonicalised with Rasa-style synonyms.

Built-in patterns cover what a service desk needs in every message (order numbers, e-mail addresses, phone
numbers, amounts); `nlu.yml` adds its own `regex:` and `lookup:` entries and `synonym:` mappings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from nlu.result import Entity

_CURRENCY = r"(?:\$|€|£|¥|￥|₽|usd|eur|gbp|rub|cny|rmb|руб(?:\.|лей|ля|ль)?|р\.|元|块|dollars?|euros?)"
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_NUMBER = r"\d{1,3}(?:[ ,]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"

BUILTIN_PATTERNS: dict[str, str] = {
    "email": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+",
    "order_number": (
        r"(?i)(?:#\s?\d{4,12}\b|\b(?:ord|order|заказ[а-я]*|订单号?)\s*(?:no\.?|number|№|#|номер|:)?\s*[-:]?\s*"
        r"(?:[A-Z]{2,4}-)?\d{4,12}\b|\b[A-Z]{2,4}-\d{4,12}\b|(?<=订单)\s*\d{4,12}|(?<=订单号)\s*\d{4,12})"
    ),
    "phone": r"(?<![A-Za-z0-9@.+])\+?\d[\d\s().-]{7,16}\d(?![A-Za-z0-9])",
    "amount": rf"(?i)(?:{_CURRENCY}\s?(?:{_NUMBER})|(?:{_NUMBER})\s?{_CURRENCY})",
}
"""Order numbers: '#12345', 'order 12345', 'ORD-123456', '订单 12345', 'заказ № 12345'. E-mail and phone
boundaries are ASCII-only so that Chinese text written without spaces ("邮箱li@x.cn") still matches."""


@dataclass(slots=True)
class EntityExtractor:
    """Runs the patterns and lookup tables over a cleaned (not lower-cased) message."""

    patterns: dict[str, list[re.Pattern[str]]] = field(default_factory=dict)
    lookups: dict[str, list[str]] = field(default_factory=dict)
    synonyms: dict[str, str] = field(default_factory=dict)
    builtin_count: dict[str, int] = field(default_factory=dict)
    """How many of an entity's patterns are built in (they come first); on a tie the data's own win."""
    _lookup_res: dict[str, re.Pattern[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        regexes: Mapping[str, Iterable[str]] | None = None,
        lookups: Mapping[str, Iterable[str]] | None = None,
        synonyms: Mapping[str, str] | None = None,
        *,
        builtins: bool = True,
    ) -> EntityExtractor:
        """Compile the built-in patterns (unless `builtins` is False) plus the data's own."""
        patterns: dict[str, list[re.Pattern[str]]] = {}
        if builtins:
            for name, pattern in BUILTIN_PATTERNS.items():
                patterns.setdefault(name, []).append(re.compile(pattern))
        builtin_count = {name: len(items) for name, items in patterns.items()}
        for name, items in (regexes or {}).items():
            for pattern in items:
                patterns.setdefault(name, []).append(re.compile(pattern))
        extractor = cls(
            builtin_count=builtin_count,
            patterns=patterns,
            lookups={name: list(values) for name, values in (lookups or {}).items()},
            synonyms={k.casefold(): v for k, v in (synonyms or {}).items()},
        )
        extractor._compile_lookups()
        return extractor

    def _compile_lookups(self) -> None:
        for name, values in self.lookups.items():
            words = sorted({v.strip() for v in values if v.strip()}, key=len, reverse=True)
            # Word boundaries only make sense for scripts written with spaces; a Chinese value matches anywhere.
            spaced = "|".join(re.escape(w) for w in words if not _CJK.search(w))
            unspaced = "|".join(re.escape(w) for w in words if _CJK.search(w))
            parts = ([rf"(?<!\w)(?:{spaced})(?!\w)"] if spaced else []) + ([f"(?:{unspaced})"] if unspaced else [])
            if parts:
                self._lookup_res[name] = re.compile("(?i)" + "|".join(parts))

    def extract(self, text: str) -> list[Entity]:
        """All non-overlapping entities, longest first, ordered by position; never raises."""
        found: list[tuple[int, Entity]] = []
        for name, regexes in self.patterns.items():
            for i, regex in enumerate(regexes):
                builtin = int(i < self.builtin_count.get(name, 0))
                found.extend((builtin, self._entity(name, m, "regex")) for m in regex.finditer(text))
        for name, regex in self._lookup_res.items():
            found.extend((0, self._entity(name, m, "lookup")) for m in regex.finditer(text))
        found.sort(key=lambda item: (-(item[1].end - item[1].start), item[0], item[1].start))
        kept: list[Entity] = []
        for _, entity in found:
            if entity.end > entity.start and all(entity.end <= k.start or entity.start >= k.end for k in kept):
                kept.append(entity)
        return sorted(kept, key=lambda e: e.start)

    def _entity(self, name: str, match: re.Match[str], extractor: str) -> Entity:
        raw = match.group(0)
        stripped = raw.strip()
        start = match.start() + (len(raw) - len(raw.lstrip()))
        value = self.synonyms.get(stripped.casefold(), stripped)
        if name == "order_number":
            value = _order_digits(stripped)
        end = start + len(stripped)
        return Entity(entity=name, value=value, text=stripped, start=start, end=end, extractor=extractor)


def _order_digits(text: str) -> str:
    """'order #12345' → '12345'; 'ORD-123456' stays as written (the prefix is part of the number)."""
    prefixed = re.search(r"[A-Z]{2,4}-\d+", text)
    if prefixed:
        return prefixed.group(0)
    digits = re.findall(r"\d+", text)
    return digits[-1] if digits else text

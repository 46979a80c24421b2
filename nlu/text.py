"""Normalisation before classification: one canonical form of the text, bounded in size.

NFKC folds full-width forms (common in Chinese input) and ligatures; control characters become spaces so
words on either side stay apart; the classifier only ever sees a bounded prefix, so a 100 KB message costs
the same as a short one (the whole text is still logged by the caller).
"""

from __future__ import annotations

import re
import unicodedata

DEFAULT_MAX_CHARS = 2000
_SPACES = re.compile(r"\s+")


def clean(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """NFKC, control/format characters → space, whitespace collapsed, cut to `max_chars`; case is kept."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    # Bound before the expensive passes; NFKC can only grow the text by a small factor.
    text = unicodedata.normalize("NFKC", text[: max_chars * 2])
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") else ch for ch in text)
    return _SPACES.sub(" ", text).strip()[:max_chars]


def normalise(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """The classifier's view of a message: `clean` plus case folding."""
    return clean(text, max_chars).casefold()


def has_words(text: str) -> bool:
    """True when the text has at least one letter or digit (emoji and punctuation alone do not count)."""
    return any(ch.isalnum() for ch in text)

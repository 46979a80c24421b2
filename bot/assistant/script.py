"""Answer in the script the customer wrote: Traditional Chinese gets the (Simplified) zh answer converted.

OpenCC's own dictionaries do the conversion both ways (phrase-aware, e.g. 发 → 發 or 髮 by context); a message is
Traditional when converting it to Simplified changes it. Converters are built once per process (~0.1 s each).
"""

from __future__ import annotations

from functools import lru_cache

import opencc

TRADITIONAL = "zh-Hant"


@lru_cache(maxsize=4)
def _converter(config: str) -> opencc.OpenCC:
    return opencc.OpenCC(config)


def _has_han(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in text)


def script_of(text: str, language: str | None, detected: str | None = None) -> str | None:
    """TRADITIONAL for a Chinese message in Traditional characters, else None. `detected` is the NLU's own
    finding when it reports one (then it is trusted as is)."""
    if detected is not None:
        return detected if detected == TRADITIONAL else None
    if language != "zh" or not _has_han(text):
        return None
    return TRADITIONAL if _converter("t2s").convert(text) != text else None


def in_script(text: str, script: str | None) -> str:
    """`text` (written in Simplified where it is Chinese) in the customer's script."""
    if script == TRADITIONAL and _has_han(text):
        return _converter("s2t").convert(text)
    return text

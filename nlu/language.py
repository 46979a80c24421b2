"""Which language a message is written in, from the scripts of its letters (en/zh/ru and a few neighbours).

A script count is enough for a service desk in these languages and costs microseconds; a statistical
detector would be slower and no better on two-word messages ("где заказ?"). Mixed scripts go to the
majority, with a Han character counted as two letters because it usually carries a whole syllable/word.
"""

from __future__ import annotations

import unicodedata

HAN_WEIGHT = 2


def _script(ch: str) -> str | None:
    code = ord(ch)
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF or 0x20000 <= code <= 0x2FFFF:
        return "zh"
    if 0x3040 <= code <= 0x30FF:
        return "ja"
    if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF:
        return "ko"
    if 0x0400 <= code <= 0x052F:
        return "ru"
    if ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN"):
        return "en"
    return None


def detect_language(text: str) -> str | None:
    """'zh', 'ru', 'en' (or 'ja'/'ko') by the majority script of the letters; None when there are none."""
    counts: dict[str, int] = {}
    for ch in text:
        script = _script(ch)
        if script is not None:
            counts[script] = counts.get(script, 0) + (HAN_WEIGHT if script == "zh" else 1)
    if not counts:
        return None
    # Kana means Japanese even when most characters are Han (kanji).
    if counts.get("ja"):
        counts["ja"] += counts.pop("zh", 0)
    return max(counts.items(), key=lambda item: (item[1], item[0] == "en"))[0]

"""Which language a message is written in, and in which script (en/zh/ru and a few neighbours).

Scripts are counted in units that carry meaning: each Han character is one unit (it is usually a syllable or
a word), each word of an alphabet is one unit, so "可以用Apple Pay嗎" (4 Han, 2 Latin words) is Chinese and
"iPhone 15 заказ" is Russian; a tie goes to the non-Latin script, because Latin words in a Chinese or
Russian message are mostly brand and product names. A message in Latin letters only is Russian when it reads
as transliterated Russian (`nlu.translit`). A count is enough for a service desk in these languages and costs
microseconds; a statistical detector is slower and no better on two-word messages ("где заказ?").

`script` says how the customer wrote, so the bot can answer the same way: zh-Hans / zh-Hant for Chinese,
cyrillic or latin for Russian, latin for English. `for_classification` turns the text into the script the
model was trained on (Simplified Chinese, Cyrillic Russian).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nlu.chinese import HANT, chinese_script, to_simplified
from nlu.translit import looks_russian, to_cyrillic

LATIN = "latin"
CYRILLIC = "cyrillic"


@dataclass(frozen=True, slots=True)
class Detected:
    """A message's language ('en', 'zh', 'ru', 'ja', 'ko'; None without letters) and the script it used."""

    language: str | None
    script: str | None = None


_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_KANA = re.compile("[\u3040-\u30ff]")
_HANGUL = re.compile("[\uac00-\ud7af\u1100-\u11ff]")
_CYRILLIC_WORD = re.compile("[\u0400-\u052f]+")
_LATIN_WORD = re.compile("[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]+")


def _units(text: str) -> dict[str, int]:
    """Han, kana and hangul characters one each; Cyrillic and Latin words one each."""
    counts = {
        "zh": len(_HAN.findall(text)),
        "ja": len(_KANA.findall(text)),
        "ko": len(_HANGUL.findall(text)),
        "ru": len(_CYRILLIC_WORD.findall(text)),
        "en": len(_LATIN_WORD.findall(text)),
    }
    # Kana means Japanese even when most characters are Han (kanji).
    if counts["ja"]:
        counts["ja"] += counts.pop("zh")
    return {script: n for script, n in counts.items() if n}


def detect(text: str) -> Detected:
    """The language by the majority of meaning units, and the script it was written in."""
    counts = _units(text)
    if not counts:
        return Detected(None)
    language = max(counts.items(), key=lambda item: (item[1], item[0] != "en"))[0]
    if language == "zh":
        return Detected("zh", chinese_script(text))
    if language == "ru":
        return Detected("ru", CYRILLIC)
    if language == "en":
        return Detected("ru", LATIN) if looks_russian(text) else Detected("en", LATIN)
    return Detected(language)


def detect_language(text: str) -> str | None:
    """Only the language of `detect`."""
    return detect(text).language


def for_classification(text: str, detected: Detected) -> str:
    """The text in the script the model knows: Traditional to Simplified, Latin-letter Russian to Cyrillic."""
    if detected.script == HANT:
        return to_simplified(text)
    if detected.language == "ru" and detected.script == LATIN:
        return to_cyrillic(text)
    return text

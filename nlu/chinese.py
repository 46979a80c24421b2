"""Traditional and Simplified Chinese: which one a message uses, and converting between them (OpenCC).

The classifier is trained on Simplified text, so a Traditional message ("可以用Apple Pay嗎") is converted
before classification; the script it came in is reported so the answer can be given in the same one.
Word segmentation (`words`) uses rjieba, the Rust port of jieba's dictionary and algorithm.
OpenCC's own bindings ship their dictionaries inside the wheel (no download) and convert a message in tens of
microseconds. Converters are built once per process, on first use, and never pickled with a model.
"""

from __future__ import annotations

from functools import cache

import opencc

HANS = "zh-Hans"
HANT = "zh-Hant"


@cache
def _converter(config: str) -> opencc.OpenCC:
    return opencc.OpenCC(config)


def to_simplified(text: str) -> str:
    """Traditional characters and phrases in Simplified form; other text unchanged."""
    return _converter("t2s.json").convert(text)


def to_traditional(text: str) -> str:
    """Simplified text in Traditional characters as written in Taiwan (裡, not OpenCC's standard 裏).

    For answering a customer in the script they used.
    """
    return _converter("s2tw.json").convert(text)


def words(text: str) -> str:
    """Chinese text as words separated by spaces (jieba's dictionary through rjieba), so word n-grams see
    words instead of whole sentences; Latin and other runs come through as they are."""
    import rjieba  # loaded on first Chinese message: a dictionary of ~30 MB, about a second

    return " ".join(w for w in rjieba.cut(text) if not w.isspace())


def chinese_script(text: str) -> str:
    """HANT when converting to Simplified changes any character, else HANS."""
    return HANT if to_simplified(text) != text else HANS

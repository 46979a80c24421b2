"""Traditional and Simplified Chinese: which one a message uses, and converting between them (OpenCC).

The classifier is trained on Simplified text, so a Traditional message ("可以用Apple Pay嗎") is converted
before classification; the script it came in is reported so the answer can be given in the same one.
Word segmentation (`words`) uses rjieba, the Rust port of jieba's dictionary and algorithm.
OpenCC's own bindings ship their dictionaries inside the wheel (no download) and convert a message in tens of
microseconds. Converters are built once per process, on first use, and never pickled with a model.

Memory: the Traditional→Simplified converter costs ~2.5 MB, the Simplified→Traditional one ~43 MB (its phrase
dictionary), and a process never gives that back. The bot's fixed texts (FAQ answers, its own phrases) are the
only Simplified text it converts, so `prepare_traditional` converts them once, in a child process, cached on
disk; a worker then answers in Traditional without ever building that converter.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import opencc

HANS = "zh-Hans"
HANT = "zh-Hant"
TO_TRADITIONAL = "s2tw.json"
TO_SIMPLIFIED = "t2s.json"
HAN = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
"""CJK radicals, ideographs and compatibility ideographs: text without any is the same in both scripts."""

log = logging.getLogger(__name__)
_prepared: dict[str, str] = {}
"""Simplified → Traditional for the fixed texts `prepare_traditional` was given."""
_built: set[str] = set()


@cache
def _converter(config: str) -> opencc.OpenCC:
    return opencc.OpenCC(config)


def converters_built() -> list[str]:
    """The OpenCC configurations this process has built a converter for (each stays in memory)."""
    return sorted(_built)


def to_simplified(text: str) -> str:
    """Traditional characters and phrases in Simplified form; other text unchanged."""
    _built.add(TO_SIMPLIFIED)
    return _converter(TO_SIMPLIFIED).convert(text)


def to_traditional(text: str) -> str:
    """Simplified text in Traditional characters as written in Taiwan (裡, not OpenCC's standard 裏).

    For answering a customer in the script they used: a text `prepare_traditional` converted comes from its
    table; any other (there should be none in a running bot) builds the converter.
    """
    known = _prepared.get(text)
    if known is not None:
        return known
    if not HAN.search(text):
        return text
    _built.add(TO_TRADITIONAL)
    return _converter(TO_TRADITIONAL).convert(text)


def prepare_traditional(texts: Iterable[str], cache_file: Path | None = None) -> int:
    """Convert these fixed texts to Traditional once, so `to_traditional` finds them without a converter.

    Read from `cache_file` (JSON) when it holds them all; otherwise converted in a child process (this one never
    pays for the converter) and written back. Returns how many texts were converted now (0: all came from the
    cache). Never raises for an unusable cache or child: it falls back to converting here.
    """
    wanted = sorted({t for t in texts if t and HAN.search(t)})
    cached = _read_cache(cache_file) if cache_file else {}
    missing = [t for t in wanted if t not in cached]
    if missing:
        cached.update(zip(missing, _convert_elsewhere(missing), strict=True))
        if cache_file:
            _write_cache(cache_file, {t: cached[t] for t in wanted})
    _prepared.update((t, cached[t]) for t in wanted)
    return len(missing)


def _cache_stamp() -> dict[str, str]:
    return {"config": TO_TRADITIONAL, "opencc": getattr(opencc, "__version__", "?")}


def _read_cache(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring the Traditional Chinese texts cached in %s (%s); converting them again", path, exc)
        return {}
    if not isinstance(data, dict) or data.get("stamp") != _cache_stamp() or not isinstance(data.get("texts"), dict):
        return {}
    return {k: v for k, v in data["texts"].items() if isinstance(k, str) and isinstance(v, str)}


def _write_cache(path: Path, texts: dict[str, str]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"stamp": _cache_stamp(), "texts": texts}, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)  # atomic: processes starting together each write a whole file
    except OSError as exc:
        log.warning("could not cache the Traditional Chinese texts in %s (%s)", path, exc)
        tmp.unlink(missing_ok=True)


_CHILD = (
    "import json, sys, opencc\n"
    "convert = opencc.OpenCC(sys.argv[1]).convert\n"
    "sys.stdout.write(json.dumps([convert(t) for t in json.load(sys.stdin)]))\n"
)


def _convert_elsewhere(texts: list[str]) -> list[str]:
    """`texts` in Traditional, converted by a short-lived child process; here when that fails."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, TO_TRADITIONAL],
            input=json.dumps(texts).encode(),
            capture_output=True,
            check=True,
            timeout=120,
        )
        converted = json.loads(done.stdout)
        if isinstance(converted, list) and len(converted) == len(texts) and all(isinstance(t, str) for t in converted):
            return converted
        reason = "unexpected output"
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        reason = str(exc)
    log.warning("converting the fixed texts to Traditional Chinese in this process (the child failed: %s)", reason)
    _built.add(TO_TRADITIONAL)
    return [_converter(TO_TRADITIONAL).convert(t) for t in texts]


def words(text: str) -> str:
    """Chinese text as words separated by spaces (jieba's dictionary through rjieba), so word n-grams see
    words instead of whole sentences; Latin and other runs come through as they are."""
    import rjieba  # loaded on first Chinese message: a dictionary of ~30 MB, about a second

    return " ".join(w for w in rjieba.cut(text) if not w.isspace())


def chinese_script(text: str) -> str:
    """HANT when converting to Simplified changes any character, else HANS."""
    return HANT if to_simplified(text) != text else HANS

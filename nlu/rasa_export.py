"""Our training data and answers written back in Rasa's formats, so an existing Rasa assistant can use them.

The output reads back through `nlu.rasa_format` to the same data (tests hold us to that round trip).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nlu.rasa_format import LANGUAGE_SLOT, Responses, TrainingData

RASA_VERSION = "3.1"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as `|` blocks, the way Rasa's own files look."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _examples_block(texts: list[str]) -> str:
    return "".join(f"- {' '.join(t.split())}\n" for t in texts)


def nlu_document(data: TrainingData) -> dict[str, Any]:
    """The `nlu.yml` document: one intent block per intent and language, then synonyms, regexes, lookups."""
    blocks: dict[tuple[str, str | None], list[str]] = {}
    for example in data.examples:
        blocks.setdefault((example.intent, example.language), []).append(example.text)
    entries: list[dict[str, Any]] = []
    for (intent, language), texts in blocks.items():
        entry: dict[str, Any] = {"intent": intent}
        if language:
            entry["metadata"] = {"language": language}
        entry["examples"] = _examples_block(texts)
        entries.append(entry)
    canonical: dict[str, list[str]] = {}
    for written, value in data.synonyms.items():
        canonical.setdefault(value, []).append(written)
    entries += [{"synonym": value, "examples": _examples_block(words)} for value, words in canonical.items()]
    entries += [{"regex": name, "examples": _examples_block(items)} for name, items in data.regexes.items()]
    entries += [{"lookup": name, "examples": _examples_block(items)} for name, items in data.lookups.items()]
    return {"version": RASA_VERSION, "nlu": entries}


def responses_document(responses: Responses) -> dict[str, Any]:
    """`responses: utter_<intent>:` with the default variation first and a slot condition per language."""
    out: dict[str, list[dict[str, Any]]] = {}
    for intent, variants in responses.by_intent.items():
        items: list[dict[str, Any]] = [{"text": t} for t in variants.get(None, [])]
        for language, texts in variants.items():
            if language is None:
                continue
            condition = [{"type": "slot", "name": LANGUAGE_SLOT, "value": language}]
            items += [{"text": t, "condition": condition} for t in texts]
        out[f"utter_{intent}"] = items
    return {"version": RASA_VERSION, "responses": out}


def dump(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000)


def write_nlu(data: TrainingData, path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dump(nlu_document(data)), encoding="utf-8")
    return target


def write_responses(responses: Responses, path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dump(responses_document(responses)), encoding="utf-8")
    return target

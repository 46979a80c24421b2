"""Training data and answers in Rasa's YAML formats (Rasa 3.x: `version: "3.1"`).

`nlu.yml` — the `nlu:` list with `intent:` (+ `examples: |` lines "- text", or a list of `{text, metadata}`),
`synonym:`, `regex:` and `lookup:` entries. Entity annotations such as `[Moscow](city)` or
`[credit card](payment:card)` are reduced to their text (the latter also adds a synonym). An intent block may
carry `metadata: {language: zh}`; we write one block per intent and language, which Rasa accepts as is.

`responses.yml` (or a domain file) — `responses: utter_<intent>: [{text: ...}, ...]`. The language of a
variation uses Rasa's own conditional response variations: `condition: [{type: slot, name: language,
value: zh}]`. A variation without a condition is the default, used for any language without its own one
(Rasa requires such a default). We chose conditions over a custom `language:` key so that the same file
works unchanged in a Rasa assistant that fills a `language` slot.

A malformed file raises `NluDataError` naming the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nlu.entities import EntityExtractor

LANGUAGE_SLOT = "language"
_ANNOTATION = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<entity>[^)]+)\)|\{[^}]*\})")


class NluDataError(Exception):
    """A training-data or responses file that cannot be used; `str()` reads 'file:line: problem'."""

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        self.path, self.line, self.problem = str(path), line, problem
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    intent: str
    language: str | None = None


@dataclass(slots=True)
class TrainingData:
    examples: list[Example] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)
    """Written form → canonical value."""
    regexes: dict[str, list[str]] = field(default_factory=dict)
    lookups: dict[str, list[str]] = field(default_factory=dict)

    @property
    def texts(self) -> list[str]:
        return [e.text for e in self.examples]

    @property
    def labels(self) -> list[str]:
        return [e.intent for e in self.examples]

    @property
    def intents(self) -> list[str]:
        return sorted({e.intent for e in self.examples})

    def entity_extractor(self) -> EntityExtractor:
        return EntityExtractor.build(self.regexes, self.lookups, self.synonyms)


@dataclass(slots=True)
class Responses:
    """Answers per intent and language; `None` language = the default variation."""

    by_intent: dict[str, dict[str | None, list[str]]] = field(default_factory=dict)

    def answer(self, intent: str, language: str | None) -> str | None:
        """The first variation for this language, else the default one; None when the intent has no answer."""
        variants = self.by_intent.get(intent)
        if not variants:
            return None
        texts = variants.get(language) or variants.get(None)
        return texts[0] if texts else None

    def languages(self, intent: str) -> set[str | None]:
        return set(self.by_intent.get(intent, {}))


# ---- YAML with line numbers -----------------------------------------------------------------------------------


def _read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """The document and its node tree (the nodes keep the line numbers for later errors)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise NluDataError(path, None, "no such file") from exc
    except UnicodeDecodeError as exc:
        raise NluDataError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = " ".join(str(p) for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p)
        raise NluDataError(path, mark.line + 1 if mark else None, f"invalid YAML: {problem or exc}") from exc
    finally:
        loader.dispose()
    return data, node


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if getattr(key_node, "value", None) == key:
                return value_node
    return None


def _line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _items(node: yaml.Node | None, values: list[Any]) -> Iterator[tuple[Any, yaml.Node | None]]:
    nodes = node.value if isinstance(node, yaml.SequenceNode) else []
    for i, value in enumerate(values):
        yield value, nodes[i] if i < len(nodes) else None


def _check_version(path: Path, data: dict, node: yaml.Node | None) -> None:
    version = data.get("version")
    if version is not None and not str(version).startswith(("2.", "3.")):
        raise NluDataError(path, _line(_child(node, "version")), f'unsupported version {version!r} (expected "3.1")')


# ---- nlu.yml --------------------------------------------------------------------------------------------------


def load_nlu(path: str | Path) -> TrainingData:
    """Read a Rasa `nlu.yml` (intents, synonyms, regexes, lookup tables)."""
    path = Path(path)
    data, root = _read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("nlu"), list):
        raise NluDataError(path, _line(root), "expected a mapping with an 'nlu:' list")
    _check_version(path, data, root)
    result = TrainingData()
    for item, node in _items(_child(root, "nlu"), data["nlu"]):
        line = _line(node)
        if not isinstance(item, dict):
            raise NluDataError(path, line, "each 'nlu:' entry must be a mapping (intent/synonym/regex/lookup)")
        kinds = [k for k in ("intent", "synonym", "regex", "lookup") if k in item]
        if len(kinds) != 1:
            raise NluDataError(path, line, "each 'nlu:' entry needs exactly one of intent, synonym, regex, lookup")
        kind, name = kinds[0], item[kinds[0]]
        if not isinstance(name, str | int) or not str(name).strip():
            raise NluDataError(path, line, f"'{kind}:' needs a name")
        name = str(name).strip()
        examples_node = _child(node, "examples")
        examples = _example_lines(path, item.get("examples"), _line(examples_node) or line, kind, name)
        if kind == "intent":
            language = (item.get("metadata") or {}).get("language") if isinstance(item.get("metadata"), dict) else None
            for text, meta in examples:
                clean, synonyms = _strip_annotations(text)
                result.synonyms.update(synonyms)
                lang = meta.get("language", language) if meta else language
                result.examples.append(Example(clean, name, lang))
        elif kind == "synonym":
            result.synonyms.update({text: name for text, _ in examples})
        elif kind == "regex":
            for text, _ in examples:
                try:
                    re.compile(text)
                except re.error as exc:
                    raise NluDataError(path, line, f"regex {name!r}: invalid pattern {text!r} ({exc})") from exc
            result.regexes.setdefault(name, []).extend(text for text, _ in examples)
        else:
            result.lookups.setdefault(name, []).extend(text for text, _ in examples)
    if not result.examples:
        raise NluDataError(path, _line(root), "no intent examples")
    return result


def _example_lines(path: Path, raw: Any, line: int | None, kind: str, name: str) -> list[tuple[str, dict]]:
    """`examples: |` block ("- text" lines) or a list of strings / {text, metadata} mappings."""
    out: list[tuple[str, dict]] = []
    if isinstance(raw, str):
        for offset, row in enumerate(raw.splitlines()):
            row = row.strip()
            if not row:
                continue
            if not row.startswith("- "):
                where = line + 1 + offset if line else None
                raise NluDataError(path, where, f"{kind} {name!r}: example lines must start with '- ', got {row!r}")
            out.append((row[2:].strip(), {}))
    elif isinstance(raw, list):
        for entry in raw:
            if isinstance(entry, str):
                out.append((entry.strip(), {}))
            elif isinstance(entry, dict) and isinstance(entry.get("text"), str):
                meta = entry.get("metadata") if isinstance(entry.get("metadata"), dict) else {}
                out.append((entry["text"].strip(), meta))
            else:
                raise NluDataError(path, line, f"{kind} {name!r}: an example must be text or {{text: ...}}")
    else:
        raise NluDataError(path, line, f"{kind} {name!r}: missing 'examples:'")
    out = [(text, meta) for text, meta in out if text]
    if not out:
        raise NluDataError(path, line, f"{kind} {name!r}: no examples")
    return out


def _strip_annotations(text: str) -> tuple[str, dict[str, str]]:
    """'[credit card](payment:card)' → 'credit card', with the synonym 'credit card' → 'card'."""
    synonyms: dict[str, str] = {}

    def replace(match: re.Match[str]) -> str:
        entity = match.group("entity") or ""
        if ":" in entity:
            synonyms[match.group("text")] = entity.split(":", 1)[1]
        return match.group("text")

    return _ANNOTATION.sub(replace, text), synonyms


# ---- responses.yml --------------------------------------------------------------------------------------------


def load_responses(path: str | Path) -> Responses:
    """Read `responses: utter_<intent>: [...]` with language variations (see the module docstring)."""
    path = Path(path)
    data, root = _read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("responses"), dict):
        raise NluDataError(path, _line(root), "expected a mapping with a 'responses:' mapping")
    _check_version(path, data, root)
    responses_node = _child(root, "responses")
    result = Responses()
    for name, variations in data["responses"].items():
        node = _child(responses_node, name)
        if not isinstance(variations, list) or not variations:
            raise NluDataError(path, _line(node), f"{name}: expected a list of variations (- text: ...)")
        intent = name[len("utter_") :] if str(name).startswith("utter_") else str(name)
        by_language: dict[str | None, list[str]] = {}
        for variation, vnode in _items(node, variations):
            if not isinstance(variation, dict) or not isinstance(variation.get("text"), str):
                raise NluDataError(path, _line(vnode) or _line(node), f"{name}: each variation needs 'text:'")
            language = _condition_language(path, name, variation.get("condition"), _line(vnode))
            by_language.setdefault(language, []).append(variation["text"].strip())
        result.by_intent[intent] = by_language
    return result


def _condition_language(path: Path, name: str, condition: Any, line: int | None) -> str | None:
    if condition is None:
        return None
    if not isinstance(condition, list):
        raise NluDataError(path, line, f"{name}: 'condition:' must be a list of slot conditions")
    for cond in condition:
        if isinstance(cond, dict) and cond.get("type") == "slot" and cond.get("name") == LANGUAGE_SLOT:
            return str(cond.get("value"))
    return None

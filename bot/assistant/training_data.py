"""Adding reviewed examples to a Rasa nlu.yml as a person would: a line at the end of the right intent and
language block, comments and layout kept, nothing else touched.

The file is edited as text, not re-dumped from YAML, so that its comments and hand-made order survive; the
result is parsed again (`nlu.rasa_format.load_nlu`) before it replaces the file, so a broken write never lands.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from nlu.rasa_format import load_nlu

_INTENT = re.compile(r"^- intent:\s*['\"]?([^'\"#\s]+)['\"]?\s*(?:#.*)?$")
_INLINE_LANGUAGE = re.compile(r"^\s+metadata:\s*\{\s*language:\s*['\"]?(\w+)['\"]?\s*\}")
_NESTED_LANGUAGE = re.compile(r"^\s+language:\s*['\"]?(\w+)['\"]?\s*$")
_EXAMPLES = re.compile(r"^\s+examples:\s*\|[-+]?\s*$")
_EXAMPLE = re.compile(r"^(\s+)- (.*)$")


@dataclass(frozen=True, slots=True)
class NewExample:
    intent: str
    language: str | None
    text: str


@dataclass(slots=True)
class _Block:
    intent: str
    start: int
    end: int
    """One past the block's last line."""
    language: str | None = None
    last_example: int | None = None
    indent: str = "    "
    examples: set[str] | None = None


def example_line(text: str) -> str:
    """The example as one line of a literal block: whitespace (newlines too) collapsed."""
    return " ".join(text.split())


def _blocks(lines: list[str]) -> list[_Block]:
    blocks: list[_Block] = []
    current: _Block | None = None
    in_examples = False
    for i, line in enumerate(lines):
        match = _INTENT.match(line)
        if match or (line[:1] not in (" ", "\t", "") and current is not None):
            if current is not None:
                current.end = i
                blocks.append(current)
            current = _Block(match.group(1), i, i + 1, examples=set()) if match else None
            in_examples = False
            continue
        if current is None:
            continue
        current.end = i + 1
        language = _INLINE_LANGUAGE.match(line) or (None if in_examples else _NESTED_LANGUAGE.match(line))
        if language:
            current.language = language.group(1)
        if _EXAMPLES.match(line):
            in_examples = True
            continue
        example = _EXAMPLE.match(line)
        if in_examples and example:
            current.last_example, current.indent = i, example.group(1)
            current.examples.add(example.group(2).strip().casefold())
        elif in_examples and line.strip() and not line.startswith("   "):
            in_examples = False
    if current is not None:
        blocks.append(current)
    return blocks


def add_examples(text: str, examples: list[NewExample]) -> tuple[str, list[NewExample]]:
    """`text` with the examples added; returns the new text and the examples actually added (one already in its
    block is skipped). A missing intent/language block is created after the last block of the `nlu:` list."""
    lines = text.splitlines()
    blocks = _blocks(lines)
    inserts: dict[int, list[str]] = {}
    added: list[NewExample] = []
    for ex in examples:
        line = example_line(ex.text)
        if not line:
            continue
        block = next(
            (b for b in blocks if b.intent == ex.intent and b.language == ex.language and b.last_example is not None),
            None,
        )
        if block is not None:
            if line.casefold() in block.examples:
                continue
            block.examples.add(line.casefold())
            inserts.setdefault(block.last_example, []).append(f"{block.indent}- {line}")
        else:
            at = blocks[-1].end - 1 if blocks else len(lines) - 1
            new = [f"- intent: {ex.intent}"]
            if ex.language:
                new.append(f"  metadata: {{language: {ex.language}}}")
            new += ["  examples: |", f"    - {line}"]
            inserts.setdefault(at, []).extend(new)
            blocks.append(_Block(ex.intent, at, at + 1, ex.language, at, "    ", {line.casefold()}))
        added.append(ex)
    out: list[str] = []
    for i, existing in enumerate(lines):
        out.append(existing)
        out.extend(inserts.get(i, ()))
    if not lines:
        out.extend(inserts.get(-1, ()))
    return "\n".join(out) + "\n", added


def append_to_file(path: Path, examples: list[NewExample]) -> list[NewExample]:
    """Add the examples to the training file, atomically; the new file must load and hold every added example
    (else NluDataError/ValueError and the file stays as it was). Returns the examples added."""
    new_text, added = add_examples(path.read_text(encoding="utf-8"), examples)
    if not added:
        return added
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(new_text)
        loaded = {(e.intent, e.language, e.text) for e in load_nlu(tmp).examples}
        missing = [ex for ex in added if (ex.intent, ex.language, example_line(ex.text)) not in loaded]
        if missing:
            raise ValueError(f"{path}: could not add {missing[0].text!r} as written (it would read differently)")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return added

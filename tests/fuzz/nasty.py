"""What hostile or broken clients send, shared by every fuzz test: NUL bytes, lone surrogates, huge integers,
deep JSON, megabyte strings and values of the wrong type, mixed into otherwise well-shaped input.

Large and deep values are built once and drawn by reference, so ten thousand examples stay quick.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

FUZZ_EXAMPLES = 10_000
MEGABYTE = "A" * 1_000_000
MEGA_UNICODE = "я\u0000\ud800" * 333_334


def _deep_list(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def _deep_dict(depth: int) -> Any:
    value: Any = {"x": 1}
    for _ in range(depth):
        value = {"x": value, "message_id": 1}
    return value


DEEP_LIST = _deep_list(5_000)
DEEP_DICT = _deep_dict(5_000)
DEEP_JSON = "[" * 100_000 + "]" * 100_000
DEEP_JSON_OBJECT = '{"a":' * 50_000 + "1" + "}" * 50_000

NASTY_TEXT = [
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\udc80\udcff", "\u202egnp.exe", "\ufeff", "\r\n\r\n", "\t",
    "\x1b[2J", "\x7f\x85\x9f", "💥" * 20, "ǅ̸̡̛̖" * 10, "%s%n%x", "${jndi:ldap://x}", "<script>alert(1)</script>",
    "' OR 1=1 --", "=HYPERLINK(\"http://x\")", "/start", "/take@tierdesk_bot 1", "@", "a@b.co", "null", "0", "-1",
    "9" * 5000, "é" * 300, MEGABYTE, MEGA_UNICODE,
]
NASTY_INTS = [0, -1, 1, 2**31 - 1, 2**31, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**100, 10**5000, -(10**5000)]
NASTY_FLOATS = [math.nan, math.inf, -math.inf, 1e308, -0.0, 5e-324, 1.5]
WRONG_TYPES = [None, True, False, [], {}, [1, "2"], {"id": None}, (), b"bytes", bytearray(b"\x00"), object(),
               DEEP_LIST, DEEP_DICT]



def one_of_values(values: list[Any]) -> st.SearchStrategy:
    """Draw from `values` by index: hypothesis never has to print a megabyte string or a 5,000-digit number."""
    def pick(index: int) -> Any:
        return values[index]

    return st.integers(min_value=0, max_value=len(values) - 1).map(pick)


nasty_text = one_of_values(NASTY_TEXT) | st.text(max_size=40)
nasty_int = one_of_values(NASTY_INTS) | st.integers()
scalar = nasty_text | nasty_int | one_of_values(NASTY_FLOATS) | one_of_values(WRONG_TYPES) | st.floats()
anything = scalar | st.lists(scalar, max_size=2) | st.dictionaries(nasty_text, scalar, max_size=2)
"""Any value, of any type and shape (deep ones come from WRONG_TYPES, built once)."""


def sometimes(good: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly a well-typed value, sometimes anything at all."""
    return st.one_of(good, good, good, good, good, good, good, anything)


json_scalar = (one_of_values([s for s in NASTY_TEXT if s is not MEGA_UNICODE]) | st.text(max_size=30)
               | nasty_int | st.booleans() | st.none() | st.floats(allow_nan=False, allow_infinity=False))
json_value = st.recursive(json_scalar, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=10), inner, max_size=3), max_leaves=6)


def to_json(value: Any) -> str:
    """JSON text of a generated value; lone surrogates survive as \\ud800 escapes and 5,000-digit numbers as they
    are, as a hostile client sends them."""
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return json.dumps(value)
    finally:
        sys.set_int_max_str_digits(limit)


BATCH = 10
"""Inputs per hypothesis example: the engine's own bookkeeping per example costs more than drawing ten inputs."""


def batches(strategy: st.SearchStrategy, size: int = BATCH) -> st.SearchStrategy:
    return st.lists(strategy, min_size=size, max_size=size)


def fuzz_settings(examples: int = FUZZ_EXAMPLES // BATCH, **extra: Any) -> settings:
    """Reproducible (derandomized), no deadlines, no example database; shrink only after a failure."""
    extra.setdefault("phases", [Phase.explicit, Phase.generate, Phase.shrink])
    return settings(max_examples=examples, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), **extra)


def storable(value: str) -> bool:
    """True if a database accepts the text as it is: no NUL and no lone surrogate."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Recorder(logging.Handler):
    """Collects log records, to tell a logged refusal from a silent drop or a logged traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def tracebacks(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.exc_info]


@contextmanager
def recording(logger: str) -> Iterator[Recorder]:
    handler = Recorder()
    log = logging.getLogger(logger)
    old_level, old_propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False  # ten thousand records (some of a megabyte) are not for pytest's report
    try:
        yield handler
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)
        log.propagate = old_propagate


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place inside a JSON-like value: dict keys and list indexes, depth first."""
    found = [prefix]
    if len(prefix) > 8:  # the deep values built above are broken as a whole, not inside
        return found
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


def _copy(value: Any, depth: int = 0) -> Any:
    if depth > 10:
        return value
    if isinstance(value, dict):
        return {k: _copy(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v, depth + 1) for v in value]
    return value


def _mutate(value: Any, path: tuple, op: int, nasty: Any, key: str) -> Any:
    """Replace, delete or add at `path`; the root itself may be replaced."""
    if not path:
        return nasty if op == 0 else value
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if op == 0:
        parent[last] = nasty
    elif op == 1 and isinstance(parent, dict):
        del parent[last]
    elif op == 2 and isinstance(parent, dict):
        parent[key] = nasty
    elif op == 2 and isinstance(parent, list):
        parent.append(nasty)
    else:
        old = parent[last]
        parent[last] = [old] if op == 3 else old if isinstance(old, str) else nasty
    return value


def mutated(templates: list[Any], values: st.SearchStrategy | None = None, most: int = 4) -> st.SearchStrategy:
    """A real input (one of `templates`) with up to `most` places broken: a value replaced by a nasty one,
    a key deleted or added, a value wrapped in a list or turned into text. Few draws per input, so quick."""
    values = values if values is not None else anything
    @st.composite
    def build(draw: st.DrawFn) -> Any:
        index = draw(st.integers(0, len(templates) - 1))
        value = _copy(templates[index])
        for _ in range(draw(st.integers(0, most))):
            places = _paths(value)
            path = places[draw(st.integers(0, len(places) - 1))]
            op = draw(st.integers(0, 5))
            key = draw(one_of_values(["text", "id", "from", "chat", "type", "message_id", "x", "\x00", "\ud800"]))
            value = _mutate(value, path, op, _copy(draw(values)), key)  # never a shared constant itself
        return value

    return build()


def collect(strategy: st.SearchStrategy, count: int) -> list[Any]:
    """`count` generated inputs, reproducibly, for tests that send them somewhere asynchronously."""
    found: list[Any] = []

    @fuzz_settings(max(1, count // BATCH), phases=[Phase.generate])
    @given(batches(strategy))
    def gather(values: list[Any]) -> None:
        found.extend(values)

    gather()
    return found[:count]


def json_safe(value: Any) -> bool:
    """True if a server can send the value as JSON (Python's own reader takes NaN, NUL and lone surrogates)."""
    try:
        json.dumps(value)
    except (ValueError, TypeError, RecursionError):
        return False
    return True

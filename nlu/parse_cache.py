"""Classifying a batch of messages at once, remembering recent results.

A dispatch batch holds many messages; classifying them one by one pays the per-call overhead each time, and
the same short texts ("hi", "where is my order?") come again and again. `ParseCache.prime` classifies the
batch's distinct texts not seen lately in one `parse_many` call; `parse` then answers from what is
remembered. A result depends on the text alone (its language is detected from the text), so the text is the
key; the cache holds at most `size` results, the least recently used go first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Protocol

from nlu.result import NluResult

DEFAULT_SIZE = 4096
MAX_KEY_CHARS = 4000
"""Longer texts are classified every time: a cache of megabyte-long keys would be the memory problem."""


class Parser(Protocol):
    def parse(self, text: str) -> NluResult: ...

    def parse_many(self, texts: list[str]) -> list[NluResult]: ...


class ParseCache:
    """`prime(texts)` ahead of a batch, then `parse(text)` per message; results are frozen values, shared."""

    def __init__(self, parser: Parser, size: int = DEFAULT_SIZE) -> None:
        self.parser = parser
        self.size = max(size, 0)
        self._results: OrderedDict[str, NluResult] = OrderedDict()
        self._lock = threading.Lock()  # a batch is primed in a thread while the event loop may parse
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._results)

    def prime(self, texts: Iterable[str]) -> int:
        """Classify, in one call, the distinct texts not remembered; returns how many were classified."""
        with self._lock:
            todo = list(dict.fromkeys(t for t in texts if len(t) <= MAX_KEY_CHARS and t not in self._results))
        if not todo or not self.size:
            return 0
        todo = todo[-self.size :]  # more than the cache holds: the last ones are the next to be asked for
        results = self.parser.parse_many(todo)
        with self._lock:
            for text, result in zip(todo, results, strict=True):
                self._remember(text, result)
        return len(todo)

    def parse(self, text: str) -> NluResult:
        with self._lock:
            found = self._results.get(text)
            if found is not None:
                self._results.move_to_end(text)
                self.hits += 1
                return found
            self.misses += 1
        result = self.parser.parse(text)
        if len(text) <= MAX_KEY_CHARS:
            with self._lock:
                self._remember(text, result)
        return result

    def clear(self) -> None:
        with self._lock:
            self._results.clear()

    def _remember(self, text: str, result: NluResult) -> None:
        if not self.size:
            return
        self._results[text] = result
        self._results.move_to_end(text)
        while len(self._results) > self.size:
            self._results.popitem(last=False)

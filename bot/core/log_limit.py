"""Repeated identical log lines, once per interval with a count: an outage must not bury the log.

During a database or Redis outage every message fails the same way; one traceback per message is hundreds of
thousands of lines that say one thing. `RepeatFilter` lets the first record of a kind through, drops the
repeats for `interval_s`, and the first record after the interval carries how many were dropped:

    limit_repeats(logging.getLogger(__name__))

Records are "identical" when logger, level, message template and exception type agree (the arguments — an
entry id, a message id — differ on every line and are not part of it).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_INTERVAL_S = 30.0
MAX_KINDS = 1_000
"""Kinds remembered at most (the oldest is forgotten first), so a filter's memory stays bounded."""

Key = tuple[str, int, str, str]


@dataclass(slots=True)
class _Seen:
    since: float
    dropped: int = 0


def record_key(record: logging.LogRecord) -> Key:
    """What makes two records the same kind of line."""
    exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
    return record.name, record.levelno, str(record.msg), exc


class RepeatFilter(logging.Filter):
    """Passes the first record of each kind per `interval_s`; counts the rest and reports the count on the first
    record let through after the interval. Records below `min_level` always pass."""

    def __init__(
        self,
        interval_s: float = DEFAULT_INTERVAL_S,
        *,
        min_level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.min_level = min_level
        self.clock = clock
        self._seen: OrderedDict[Key, _Seen] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level:
            return True
        key, now = record_key(record), self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen.since < self.interval_s:
            seen.dropped += 1
            return False
        if seen is not None and seen.dropped:
            record.msg = f"{record.msg} [{seen.dropped} more like this in the last {now - seen.since:.0f}s]"
        self._seen[key] = _Seen(since=now)
        self._seen.move_to_end(key)
        while len(self._seen) > MAX_KINDS:
            self._seen.popitem(last=False)
        return True

    def reset(self) -> None:
        """Forget what was seen: the next record of every kind passes."""
        self._seen.clear()

    def dropped(self) -> int:
        """Records dropped so far in the current intervals (for tests and a status line)."""
        return sum(s.dropped for s in self._seen.values())


def limit_repeats(logger: logging.Logger, interval_s: float = DEFAULT_INTERVAL_S) -> RepeatFilter:
    """Attach a `RepeatFilter` to `logger` once (a second call returns the first filter). A logger's filters see
    only records logged on that logger itself, so attach it to each module logger that may flood."""
    for existing in logger.filters:
        if isinstance(existing, RepeatFilter):
            return existing
    repeat_filter = RepeatFilter(interval_s)
    logger.addFilter(repeat_filter)
    return repeat_filter


def limit_all_repeats(interval_s: float = DEFAULT_INTERVAL_S) -> None:
    """A `RepeatFilter` on every handler of the root logger (what `tierdesk run` and `worker` log through), one
    each (a handler's filter sees every record once): every module's repeats are limited, channels' pollers
    included, without them importing this module."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(RepeatFilter(interval_s))

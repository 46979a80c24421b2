"""Repeated identical errors: logged once per interval, with how many were left out."""

from __future__ import annotations

import logging

from bot.core.log_limit import MAX_KINDS, RepeatFilter, limit_all_repeats, limit_repeats


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _logger(name: str, caplog) -> tuple[logging.Logger, Clock, RepeatFilter]:
    logger = logging.getLogger(f"tests.log_limit.{name}")
    clock = Clock()
    repeat = RepeatFilter(10.0, clock=clock)
    logger.addFilter(repeat)
    caplog.set_level(logging.INFO, logger=logger.name)
    return logger, clock, repeat


def test_a_flood_of_one_error_is_one_line_per_interval_with_the_count(caplog):
    logger, clock, repeat = _logger("flood", caplog)
    for i in range(1000):
        logger.warning("entry %s not stored yet: %s", i, "database down")
    assert len(caplog.records) == 1 and repeat.dropped() == 999
    clock.now += 10.0
    logger.warning("entry %s not stored yet: %s", 1000, "database down")
    assert len(caplog.records) == 2
    summary = "entry 1000 not stored yet: database down [999 more like this in the last 10s]"
    assert caplog.records[1].getMessage() == summary
    clock.now += 10.0
    logger.warning("entry %s not stored yet: %s", 1001, "database down")
    assert caplog.records[2].getMessage() == "entry 1001 not stored yet: database down"  # nothing dropped meanwhile


def test_different_kinds_and_levels_are_counted_apart(caplog):
    logger, _clock, _ = _logger("kinds", caplog)
    for _ in range(3):
        logger.warning("outbox pass failed: %s", "x")
        logger.error("outbox pass failed: %s", "x")
        logger.warning("consumer lost its group")
        logger.info("a routine line %s", 1)  # below WARNING: never limited
    assert [r.levelname for r in caplog.records] == ["WARNING", "ERROR", "WARNING", "INFO", "INFO", "INFO"]


def test_the_exception_type_is_part_of_the_kind(caplog):
    logger, _clock, _ = _logger("exc", caplog)
    for exc in (ValueError("a"), ValueError("b"), KeyError("c")):
        try:
            raise exc
        except Exception:
            logger.exception("message failed")
    assert [r.exc_info[0] for r in caplog.records] == [ValueError, KeyError]


def test_memory_stays_bounded(caplog):
    logger, _clock, repeat = _logger("bounded", caplog)
    for i in range(MAX_KINDS + 50):
        logger.warning(f"distinct line {i}")
    assert len(repeat._seen) == MAX_KINDS


def test_limit_repeats_attaches_one_filter():
    logger = logging.getLogger("tests.log_limit.once")
    first = limit_repeats(logger)
    assert limit_repeats(logger) is first
    assert sum(isinstance(f, RepeatFilter) for f in logger.filters) == 1
    logger.removeFilter(first)


def test_limit_all_repeats_filters_each_root_handler_once():
    root = logging.getLogger()
    handlers = [logging.StreamHandler(), logging.StreamHandler()]
    kept, root.handlers = root.handlers, handlers  # only these (the test runner's own stay unfiltered)
    try:
        limit_all_repeats()
        limit_all_repeats()
        assert [sum(isinstance(f, RepeatFilter) for f in h.filters) for h in handlers] == [1, 1]
        assert handlers[0].filters[0] is not handlers[1].filters[0]  # each handler lets the first record through
    finally:
        root.handlers = kept

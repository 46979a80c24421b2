"""SLA clocks: business-hours deadlines, breach and escalation decisions, and the worker on real databases."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.sla import BusinessHours, SlaTicket, breaches, deadline, plan_escalation

BERLIN = BusinessHours(
    timezone="Europe/Berlin", days=frozenset({1, 2, 3, 4, 5}), start=time(9), end=time(18),
    holidays=frozenset({date(2026, 12, 25)}),
)


def berlin(y, m, d, hh, mm=0) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(y, m, d, hh, mm, tzinfo=ZoneInfo("Europe/Berlin"))


@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        (berlin(2026, 3, 2, 10), 15, berlin(2026, 3, 2, 10, 15)),  # inside hours
        (berlin(2026, 3, 2, 7), 15, berlin(2026, 3, 2, 9, 15)),  # before opening
        (berlin(2026, 3, 6, 17, 30), 60, berlin(2026, 3, 9, 9, 30)),  # Friday evening → Monday
        (berlin(2026, 3, 7, 12), 30, berlin(2026, 3, 9, 9, 30)),  # Saturday
        (berlin(2026, 3, 2, 17), 10 * 60, berlin(2026, 3, 3, 18)),  # 1 h Monday + 9 h Tuesday
        (berlin(2026, 12, 24, 17), 120, berlin(2026, 12, 28, 10)),  # Christmas holiday and the weekend skipped
        (berlin(2026, 3, 27, 17), 120, berlin(2026, 3, 30, 10)),  # across the switch to summer time
    ],
)
def test_business_hours_count_only_open_time(start, minutes, due):
    got = BERLIN.add(start.astimezone(UTC), timedelta(minutes=minutes))
    assert got == due.astimezone(UTC)
    assert got.tzinfo == UTC


def test_tiers_outside_the_hours_run_around_the_clock():
    hours = replace(BERLIN, tiers=frozenset({"ordinary"}))
    start = berlin(2026, 3, 7, 12).astimezone(UTC)
    assert deadline(start, timedelta(minutes=15), hours, "VIP") == start + timedelta(minutes=15)
    assert deadline(start, timedelta(minutes=15), hours, "ordinary") == berlin(2026, 3, 9, 9, 15).astimezone(UTC)
    assert deadline(start, timedelta(minutes=15), None, "ordinary") == start + timedelta(minutes=15)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"timezone": "Nowhere/City"}, "unknown timezone"),
        ({"days": [0, 8]}, "ISO weekdays"),
        ({"start": "18:00", "end": "09:00"}, "start must be before end"),
        ({"start": "nine"}, "not a time"),
    ],
)
def test_bad_business_hours_are_refused_clearly(spec, message):
    with pytest.raises(ValueError, match=message):
        BusinessHours.from_dict(spec)


NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def ticket(**kw) -> SlaTicket:
    base = dict(
        id=1, status="open", priority=3, escalation_level=0, first_response_due=NOW + timedelta(minutes=5),
        first_responded_at=None, resolution_due=NOW + timedelta(hours=4), assignee_id=None,
    )
    return SlaTicket(**{**base, **kw})


def test_escalation_levels_follow_what_was_missed():
    assert plan_escalation(ticket(), NOW, None) is None
    late = ticket(first_response_due=NOW - timedelta(minutes=1), assignee_id=4)
    first = plan_escalation(late, NOW, "online")
    assert (first.new_level, first.new_priority, first.breached, first.reassign) == (1, 2, ("first_response",), False)
    assert plan_escalation(replace(late, escalation_level=1), NOW, "online") is None
    both = replace(late, resolution_due=NOW - timedelta(seconds=1))
    straight = plan_escalation(both, NOW, "away")
    assert (straight.new_level, straight.new_priority, straight.reassign) == (2, 1, True)
    answered = ticket(first_response_due=NOW - timedelta(hours=1), first_responded_at=NOW - timedelta(hours=2))
    assert breaches(answered, NOW) == ()
    assert plan_escalation(replace(both, status="solved"), NOW, None) is None
    assert plan_escalation(replace(both, priority=1), NOW, None).new_priority == 1  # never above the top


@settings(max_examples=200, deadline=None)
@given(
    st.integers(-120, 120), st.integers(-600, 600), st.booleans(), st.integers(1, 4),
    st.lists(st.integers(0, 900), min_size=1, max_size=8),
)
def test_property_each_level_is_escalated_at_most_once(fr_min, res_min, responded, priority, ticks):
    t = ticket(
        first_response_due=NOW + timedelta(minutes=fr_min), resolution_due=NOW + timedelta(minutes=res_min),
        first_responded_at=NOW - timedelta(hours=3) if responded else None, priority=priority,
    )
    seen_levels = []
    for minutes in sorted(ticks):
        plan = plan_escalation(t, NOW + timedelta(minutes=minutes), "online")
        if plan is not None:
            assert plan.new_level > t.escalation_level
            seen_levels.append(plan.new_level)
            t = replace(t, escalation_level=plan.new_level, priority=plan.new_priority)
    assert len(seen_levels) == len(set(seen_levels)) <= 2

"""SLA clocks: business-hours deadlines, breach and escalation decisions, and the worker on real databases."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.routing.sla import BusinessHours, SlaTicket, breaches, deadline, plan_escalation

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


# --- the worker on SQLite and PostgreSQL ---

import asyncio  # noqa: E402
from pathlib import Path  # noqa: E402

from sqlalchemy import select  # noqa: E402

from bot.routing.policy import RoutingPolicy  # noqa: E402
from bot.routing.sla_worker import escalation_pass, pickup_pass  # noqa: E402
from crm_store.engine import make_engine, make_sessionmaker  # noqa: E402
from crm_store.models import Customer, OutboxItem, Ticket, TicketEvent  # noqa: E402
from crm_store.repositories.agents import add_agent  # noqa: E402

POLICY = RoutingPolicy.load(Path(__file__).resolve().parents[2] / "config" / "routing.toml")


async def setup_desk(db, n_tickets: int = 6):
    """A supervisor, an away agent holding the tickets, an online agent, and tickets past first response."""
    async with db.sessions() as s, s.begin():
        boss = await add_agent(s, name="Boss", role="supervisor", capacity=0, addresses={"telegram": "900"})
        away = await add_agent(s, name="Away", status="away", capacity=20, addresses={"telegram": "901"})
        online = await add_agent(s, name="Online", capacity=20, addresses={"telegram": "902"})
        customer = Customer(name="Vip", tier="VIP")
        s.add(customer)
        await s.flush()
        opened = NOW - timedelta(minutes=30)
        for _ in range(n_tickets):
            s.add(Ticket(
                customer_id=customer.id, channel="telegram", status="open", priority=1, tier_at_open="VIP",
                queue="vip", assignee_id=away.id, handoff_reason="needs a person", created_at=opened,
                first_response_due=opened + timedelta(minutes=15), resolution_due=opened + timedelta(hours=4),
            ))
    return boss, away, online


async def events(db, kind: str) -> list[TicketEvent]:
    async with db.sessions() as s:
        return list(await s.scalars(select(TicketEvent).where(TicketEvent.kind == kind)))


async def test_two_concurrent_escalation_passes_escalate_each_ticket_once(db):
    _boss, _away, online = await setup_desk(db)
    other = make_engine(db.url, schema=db.schema)
    try:
        first, second = await asyncio.gather(
            escalation_pass(db.sessions, POLICY, now=NOW), escalation_pass(make_sessionmaker(other), POLICY, now=NOW)
        )
    finally:
        await other.dispose()
    assert not set(first) & set(second)
    assert len(first) + len(second) == 6
    escalated = await events(db, "escalated")
    assert sorted(e.ticket_id for e in escalated) == sorted(first + second)
    assert all(e.data["to_level"] == 1 for e in escalated)
    async with db.sessions() as s:
        tickets = list(await s.scalars(select(Ticket)))
        outbox = list(await s.scalars(select(OutboxItem).where(OutboxItem.recipient == "900")))
    assert all(t.escalation_level == 1 and t.sla_breached_at is not None for t in tickets)
    assert all(t.assignee_id == online.id for t in tickets)  # taken from the away agent
    assert len(outbox) == 6 and "SLA breach on T-" in outbox[0].text
    assert len(await events(db, "reassigned")) == 6
    assert len(await events(db, "supervisor_notified")) == 6

    assert await escalation_pass(db.sessions, POLICY, now=NOW) == []  # nothing new to escalate
    later = NOW + timedelta(hours=4)
    again = await escalation_pass(db.sessions, POLICY, now=later)
    assert len(again) == 6
    async with db.sessions() as s:
        assert {t.escalation_level for t in await s.scalars(select(Ticket))} == {2}
    assert await escalation_pass(db.sessions, POLICY, now=later + timedelta(days=1)) == []


async def test_pickup_offers_waiting_vip_before_ordinary_within_capacity(db):
    async with db.sessions() as s, s.begin():
        await add_agent(s, name="Solo", capacity=2, addresses={"telegram": "700"})
        customer = Customer(name="c")
        s.add(customer)
        await s.flush()
        base = dict(customer_id=customer.id, channel="telegram", status="open", handoff_reason="needs a person")
        s.add(Ticket(**base, tier_at_open="ordinary", priority=3, queue="general", created_at=NOW - timedelta(hours=3)))
        s.add(Ticket(**base, tier_at_open="important", priority=2, queue="priority", created_at=NOW))
        s.add(Ticket(**base, tier_at_open="VIP", priority=1, queue="vip", created_at=NOW - timedelta(minutes=1)))
        s.add(Ticket(**{**base, "status": "solved"}, tier_at_open="VIP", priority=1, queue="vip", created_at=NOW))
    made = await pickup_pass(db.sessions, now=NOW)
    async with db.sessions() as s:
        tickets = {t.tier_at_open + ":" + t.status: t for t in await s.scalars(select(Ticket))}
    assert [tid for tid, _ in made] == [tickets["VIP:open"].id, tickets["important:open"].id]
    assert tickets["ordinary:open"].assignee_id is None  # capacity 2 is used up
    assert tickets["VIP:solved"].assignee_id is None
    assert len(await events(db, "assigned")) == 2
    assert await pickup_pass(db.sessions, now=NOW) == []  # still full: nothing changes

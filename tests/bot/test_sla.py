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
    assert breaches(replace(both, clocked=False), NOW) == ()  # bot-resolved or imported: no clock


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


# --- the ticket core's SLA decisions, on plain values ---

from types import SimpleNamespace  # noqa: E402

from bot.routing.policy import RouteDecision, WaitingTicket  # noqa: E402
from bot.routing.sla import Escalation  # noqa: E402
from bot.tickets import sla as ticket_sla  # noqa: E402


def core_ticket(**kw) -> SimpleNamespace:
    base = dict(
        id=7, customer_id=3, status="open", priority=3, escalation_level=0, tier_at_open="VIP", queue="vip",
        first_response_due=NOW - timedelta(minutes=10), first_responded_at=None,
        resolution_due=NOW + timedelta(hours=1),
        assignee_id=4, handoff_reason="needs a person", source="live", sla_breached_at=None, snoozed_until=None,
    )
    return SimpleNamespace(**{**base, **kw})


def test_only_handed_off_live_tickets_run_clocks():
    assert ticket_sla.sla_view(core_ticket()).clocked
    assert not ticket_sla.sla_view(core_ticket(handoff_reason=None)).clocked  # the bot's own conversation
    assert not ticket_sla.sla_view(core_ticket(source="imported")).clocked  # migrated history
    assert plan_escalation(ticket_sla.sla_view(core_ticket(source="imported")), NOW, "online") is None
    assert plan_escalation(ticket_sla.sla_view(core_ticket()), NOW, "online").new_level == 1


def test_escalate_decides_level_priority_events_webhook_and_alert():
    t = core_ticket()
    plan = Escalation(7, ("first_response",), 0, 1, 3, 2, reassign=False)
    d = ticket_sla.escalate(t, plan, supervisors=[1, 9], now=NOW)
    assert d.changes == {"escalation_level": 1, "priority": 2, "sla_breached_at": NOW, "updated_at": NOW}
    assert d.guard == {"escalation_level": 0}
    assert [k for k, _ in d.events] == ["sla_breached", "escalated", "supervisor_notified"]
    assert d.events[2][1] == {"agents": [1, 9], "level": 1}
    assert d.webhooks == [("ticket.sla_breached", {"breached": ["first_response"], "level": 1})]
    assert d.notices[0].agent_ids == (1, 9)
    assert d.notices[0].text == ("SLA breach on T-7 (VIP, queue vip): first response was due 2026-03-02 11:50 UTC. "
                                 "Escalated to level 1, priority 2.")
    earlier = NOW - timedelta(hours=1)
    second = core_ticket(sla_breached_at=earlier, escalation_level=1, priority=2)
    again = ticket_sla.escalate(second, Escalation(7, ("resolution",), 1, 2, 2, 1, False), supervisors=[], now=NOW)
    assert again.changes["sla_breached_at"] == earlier  # the first breach is the one remembered
    assert again.notices == []  # nobody reachable: nobody to page, the event still says so
    assert d.load_change(t) == {}


def test_reassign_and_pickup_move_the_load_and_are_guarded():
    t = core_ticket(assignee_id=4)
    routed = RouteDecision("vip", 1, NOW, NOW, assignee_id=5, reason="least loaded agent serving the tier")
    d = ticket_sla.reassign_away(t, routed, now=NOW)
    assert d.guard == {"assignee_id": 4, "status": "open"} and d.changes["assignee_id"] == 5
    assert d.load_change(t) == {4: -1, 5: 1}
    assert d.events[0] == ("reassigned", {"from_agent": 4, "to_agent": 5,
                                          "reason": "assignee not online: least loaded agent serving the tier"})
    back = ticket_sla.reassign_away(t, RouteDecision("vip", 1, NOW, NOW, reason="waiting"), now=NOW)
    assert back.changes["assignee_id"] is None and back.notices == [] and back.load_change(t) == {4: -1}
    waiting = core_ticket(assignee_id=None)
    p = ticket_sla.pickup(waiting, WaitingTicket(7, "VIP", 1, NOW, queue="vip"), 5, "free", now=NOW)
    assert p.guard == {"assignee_id": None, "status": "open"} and p.load_change(waiting) == {5: 1}
    assert p.notices[0].text == "T-7 (VIP) from queue vip is yours."


def test_due_to_wake():
    assert ticket_sla.due_to_wake(core_ticket(status="pending", snoozed_until=NOW), NOW)
    assert not ticket_sla.due_to_wake(core_ticket(status="pending", snoozed_until=NOW + timedelta(seconds=1)), NOW)
    assert not ticket_sla.due_to_wake(core_ticket(status="pending"), NOW)  # waiting for the customer
    assert not ticket_sla.due_to_wake(core_ticket(status="open", snoozed_until=NOW), NOW)


# --- the worker on SQLite and PostgreSQL ---

import asyncio  # noqa: E402
from pathlib import Path  # noqa: E402

from sqlalchemy import select  # noqa: E402

from bot.routing.policy import RoutingPolicy  # noqa: E402
from bot.routing.sla_worker import escalation_pass, pickup_pass, wake_pass  # noqa: E402
from bot.settings import Settings, WebSettings  # noqa: E402
from crm_store.engine import make_engine, make_sessionmaker  # noqa: E402
from crm_store.models import Customer, OutboxItem, Ticket, TicketEvent  # noqa: E402
from crm_store.repositories.agents import add_agent  # noqa: E402

POLICY = RoutingPolicy.load(Path(__file__).resolve().parents[2] / "config" / "routing.toml")
SETTINGS = Settings()
HOOKED = Settings(web=WebSettings(webhook_url="http://127.0.0.1:9/hook", webhook_secret="s3cret"))


async def setup_desk(db, n_tickets: int = 6):
    """A supervisor, an admin, an away agent holding the tickets, an online agent, and tickets past first
    response."""
    async with db.sessions() as s, s.begin():
        boss = await add_agent(s, name="Boss", role="supervisor", capacity=20, addresses={"telegram": "900"})
        await add_agent(s, name="Root", role="admin", capacity=20, addresses={"telegram": "903"})
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


async def outbox_to(db, recipient: str) -> list[OutboxItem]:
    async with db.sessions() as s:
        return list(await s.scalars(select(OutboxItem).where(OutboxItem.recipient == recipient)
                                    .order_by(OutboxItem.id)))


async def test_two_concurrent_escalation_passes_escalate_each_ticket_once(db):
    _boss, away, online = await setup_desk(db)
    other = make_engine(db.url, schema=db.schema)
    try:
        first, second = await asyncio.gather(
            escalation_pass(db.sessions, POLICY, now=NOW, settings=SETTINGS),
            escalation_pass(make_sessionmaker(other), POLICY, now=NOW, settings=SETTINGS),
        )
    finally:
        await other.dispose()
    assert not set(first) & set(second)
    assert len(first) + len(second) == 6
    escalated = await events(db, "escalated")
    assert sorted(e.ticket_id for e in escalated) == sorted(first + second)
    assert all(e.data["to_level"] == 1 and e.data["to_priority"] == 1 and e.actor == "system" for e in escalated)
    async with db.sessions() as s:
        tickets = list(await s.scalars(select(Ticket)))
    assert all(t.escalation_level == 1 and t.sla_breached_at == NOW for t in tickets)
    assert all(t.assignee_id == online.id for t in tickets)  # taken from the away agent
    # supervisors and admins alike are alerted, as desk traffic; the online agent hears of each reassignment
    for recipient in ("900", "903"):
        alerts = await outbox_to(db, recipient)
        assert len(alerts) == 6 and all(a.audience == "desk" for a in alerts)
        assert alerts[0].text.startswith("SLA breach on T-") and "first response was due" in alerts[0].text
    assert [a.audience for a in await outbox_to(db, "902")] == ["desk"] * 6
    assert await outbox_to(db, "901") == []
    reassigned = await events(db, "reassigned")
    assert len(reassigned) == 6 and {(e.data["from_agent"], e.data["to_agent"]) for e in reassigned} == {
        (away.id, online.id)}
    notified = await events(db, "supervisor_notified")
    assert len(notified) == 6 and all(len(e.data["agents"]) == 2 for e in notified)

    assert await escalation_pass(db.sessions, POLICY, now=NOW, settings=SETTINGS) == []  # nothing new
    later = NOW + timedelta(hours=4)
    again = await escalation_pass(db.sessions, POLICY, now=later, settings=SETTINGS)
    assert len(again) == 6
    async with db.sessions() as s:
        assert {(t.escalation_level, t.sla_breached_at) for t in await s.scalars(select(Ticket))} == {(2, NOW)}
    assert len(await outbox_to(db, "900")) == 12
    assert len(await events(db, "reassigned")) == 6  # the online agent keeps them: nothing to hand on
    assert await escalation_pass(db.sessions, POLICY, now=later + timedelta(days=1), settings=SETTINGS) == []


async def test_breach_queues_a_webhook_event_which_is_no_contact(db):
    await setup_desk(db, n_tickets=1)
    [tid] = await escalation_pass(db.sessions, POLICY, now=NOW, settings=HOOKED)
    async with db.sessions() as s:
        hooks = list(await s.scalars(select(OutboxItem).where(OutboxItem.channel == "webhook")))
    assert [(h.audience, h.meta["event"], h.ticket_id) for h in hooks] == [
        ("event", "ticket.sla_breached", tid), ("event", "ticket.assigned", tid)]


async def test_bot_resolved_and_imported_tickets_never_breach(db):
    async with db.sessions() as s, s.begin():
        await add_agent(s, name="Boss", role="supervisor", addresses={"telegram": "900"})
        customer = Customer(name="c")
        s.add(customer)
        await s.flush()
        past = dict(customer_id=customer.id, channel="email", status="open", tier_at_open="ordinary",
                    queue="general", priority=3, created_at=NOW - timedelta(days=2),
                    first_response_due=NOW - timedelta(days=1), resolution_due=NOW - timedelta(hours=1))
        s.add(Ticket(**past))  # never handed off: the bot's own conversation
        s.add(Ticket(**past, handoff_reason="needs a person", source="imported"))
        live = Ticket(**past, handoff_reason="needs a person")
        s.add(live)
    assert await escalation_pass(db.sessions, POLICY, now=NOW, settings=SETTINGS) == [live.id]
    assert [e.ticket_id for e in await events(db, "sla_breached")] == [live.id]


async def test_pickup_offers_waiting_vip_before_ordinary_within_capacity(db):
    async with db.sessions() as s, s.begin():
        solo = await add_agent(s, name="Solo", capacity=2, addresses={"telegram": "700"})
        await add_agent(s, name="Boss", role="supervisor", capacity=10, addresses={"telegram": "701"})
        customer = Customer(name="c")
        s.add(customer)
        await s.flush()
        base = dict(customer_id=customer.id, channel="telegram", status="open", handoff_reason="needs a person")
        s.add(Ticket(**base, tier_at_open="ordinary", priority=3, queue="general", created_at=NOW - timedelta(hours=3)))
        s.add(Ticket(**base, tier_at_open="important", priority=2, queue="priority", created_at=NOW))
        s.add(Ticket(**base, tier_at_open="VIP", priority=1, queue="vip", created_at=NOW - timedelta(minutes=1)))
        s.add(Ticket(**{**base, "status": "solved"}, tier_at_open="VIP", priority=1, queue="vip", created_at=NOW))
        s.add(Ticket(**base, tier_at_open="VIP", priority=1, queue="vip", created_at=NOW - timedelta(days=300),
                     source="imported"))
    made = await pickup_pass(db.sessions, now=NOW, settings=SETTINGS)
    async with db.sessions() as s:
        tickets = {t.tier_at_open + ":" + t.status + ":" + t.source: t for t in await s.scalars(select(Ticket))}
    vip, important = tickets["VIP:open:live"], tickets["important:open:live"]
    assert made == [(vip.id, solo.id), (important.id, solo.id)]  # the supervisor did not opt in
    assert vip.assignee_id == important.assignee_id == solo.id
    assert tickets["ordinary:open:live"].assignee_id is None  # capacity 2 is used up
    assert tickets["VIP:solved:live"].assignee_id is None
    assert tickets["VIP:open:imported"].assignee_id is None  # history is filed, never paged
    assigned = await events(db, "assigned")
    assert sorted(e.data["reason"] for e in assigned) == [
        "picked up from queue priority: least loaded agent serving the tier",
        "picked up from queue vip: least loaded agent serving the tier",
    ]
    assert [(o.text, o.audience) for o in await outbox_to(db, "700")] == [
        (f"T-{vip.id} (VIP) from queue vip is yours.", "desk"),
        (f"T-{important.id} (important) from queue priority is yours.", "desk"),
    ]
    assert await pickup_pass(db.sessions, now=NOW, settings=SETTINGS) == []  # still full: nothing changes


async def test_a_supervisor_who_opted_in_picks_up_waiting_tickets(db):
    async with db.sessions() as s, s.begin():
        boss = await add_agent(s, name="Boss", role="supervisor", capacity=1, auto_assign=True,
                               addresses={"telegram": "701"})
        await add_agent(s, name="Out", role="agent", capacity=5, auto_assign=False, addresses={"telegram": "702"})
        customer = Customer(name="c")
        s.add(customer)
        await s.flush()
        ticket = Ticket(customer_id=customer.id, channel="telegram", status="open", handoff_reason="needs a person",
                        tier_at_open="ordinary", priority=3, queue="general", created_at=NOW)
        s.add(ticket)
    assert await pickup_pass(db.sessions, now=NOW, settings=SETTINGS) == [(ticket.id, boss.id)]


async def test_snoozed_tickets_wake_once_when_their_time_comes(db):
    async with db.sessions() as s, s.begin():
        agent = await add_agent(s, name="Ann", addresses={"telegram": "800"})
        customer = Customer(name="c")
        s.add(customer)
        await s.flush()
        base = dict(customer_id=customer.id, channel="telegram", status="pending", handoff_reason="needs a person",
                    tier_at_open="ordinary", priority=3, queue="general", created_at=NOW - timedelta(days=1),
                    assignee_id=agent.id, subject="Invoice")
        due = Ticket(**base, snoozed_until=NOW - timedelta(minutes=1))
        later = Ticket(**base, snoozed_until=NOW + timedelta(hours=1))
        waiting = Ticket(**base)  # pending for the customer, no snooze: only the customer wakes it
        s.add_all([due, later, waiting])
    other = make_engine(db.url, schema=db.schema)
    try:
        first, second = await asyncio.gather(wake_pass(db.sessions, now=NOW, settings=SETTINGS),
                                             wake_pass(make_sessionmaker(other), now=NOW, settings=SETTINGS))
    finally:
        await other.dispose()
    assert sorted(first + second) == [due.id]
    async with db.sessions() as s:
        states = {t.id: (t.status, t.snoozed_until) for t in await s.scalars(select(Ticket))}
    assert states == {due.id: ("open", None), later.id: ("pending", NOW + timedelta(hours=1)),
                      waiting.id: ("pending", None)}
    assert [e.ticket_id for e in await events(db, "woke")] == [due.id]
    notices = await outbox_to(db, "800")
    assert [(n.text, n.audience) for n in notices] == [(f"T-{due.id} is back from snooze: Invoice", "desk")]
    assert await wake_pass(db.sessions, now=NOW + timedelta(minutes=30), settings=SETTINGS) == []
    assert await wake_pass(db.sessions, now=NOW + timedelta(hours=2), settings=SETTINGS) == [later.id]

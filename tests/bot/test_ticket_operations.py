"""The ticket core's operations as plain functions: decisions checked without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.routing.policy import AgentState, RouteDecision
from bot.tickets import BOT, CUSTOMER, MAX_ID, Actor, TicketError, lifecycle, parse_id, work
from crm_store.models import Ticket

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ANA = Actor("agent", 1, "agent", "Ana")
BEN = Actor("agent", 2, "agent", "Ben")
VIP_ONLY = Actor("agent", 3, "agent", "Vic", tiers=("VIP",))
SUP = Actor("agent", 9, "supervisor", "Sue")
ADMIN = Actor("agent", 10, "admin", "Adam")


def ticket(**fields) -> Ticket:
    base = dict(id=7, customer_id=1, channel="telegram", status="open", priority=3, tier_at_open="ordinary",
                queue="general", assignee_id=None, subject="", handoff_reason="needs a person", csat=None,
                closed_at=None, solved_at=None, first_responded_at=None, topic_ref=None, tags=[],
                snoozed_until=None, created_at=NOW - timedelta(hours=1), resolution=None)
    base.update(fields)
    return Ticket(**base)


@pytest.mark.parametrize(("text", "expected"), [("12", 12), ("T-12", 12), ("t12", 12), ("#12", 12), (" 3 ", 3)])
def test_ticket_numbers_people_type(text, expected):
    assert parse_id(text) == expected


@pytest.mark.parametrize(("text", "code"), [
    ("abc", "invalid"), ("-3", "invalid"), ("", "invalid"), ("T-", "invalid"), ("1.5", "invalid"),
    ("0", "not_found"), ("99999999999999999999", "not_found"), (str(MAX_ID + 1), "not_found"),
    ("9" * 400, "invalid"), ("12\x00", "invalid"),
])
def test_bad_ticket_numbers_get_a_clear_answer(text, code):
    with pytest.raises(TicketError) as err:
        parse_id(text)
    assert err.value.code == code and "Traceback" not in err.value.message


def test_customer_numbers():
    assert parse_id("C-5", what="customer") == 5
    with pytest.raises(TicketError):
        parse_id("T-5", what="customer")


def test_roles_are_defined_once_and_admins_are_supervisors():
    assert SUP.is_supervisor and ADMIN.is_supervisor and not ANA.is_supervisor
    assert Actor.api().is_supervisor


def test_take_assigns_with_a_guard_and_moves_load():
    t = ticket()
    d = work.take(t, ANA, now=NOW)
    assert d.changes["assignee_id"] == 1 and d.guard == {"assignee_id": None}
    assert d.load_change(t) == {1: 1}
    assert ("assigned", {"reason": "taken", "from_agent_id": None, "assignee_id": 1}) in d.events


def test_take_of_someone_elses_ticket():
    t = ticket(assignee_id=2)
    with pytest.raises(TicketError) as err:
        work.take(t, ANA, now=NOW, holder=AgentState(id=2, status="online"), holder_name="Ben")
    assert err.value.code == "not_allowed" and "Ben" in err.value.message
    away = work.take(t, ANA, now=NOW, holder=AgentState(id=2, status="away"))
    assert away.changes["assignee_id"] == 1 and away.load_change(t) == {2: -1, 1: 1}
    assert work.take(t, SUP, now=NOW).guard == {"assignee_id": 2}


def test_take_twice_is_a_plain_answer():
    d = work.take(ticket(assignee_id=1), ANA, now=NOW)
    assert not d.changes and "already yours" in d.answer


def test_only_the_assignee_or_a_supervisor_replies_on_an_assigned_ticket():
    t = ticket(assignee_id=2)
    with pytest.raises(TicketError) as err:
        work.reply(t, ANA, "hello", now=NOW)
    assert err.value.code == "not_allowed" and err.value.offer[0].data == "/take 7"
    by_sup = work.reply(t, SUP, "hello", now=NOW)
    assert "assignee_id" not in by_sup.changes and by_sup.to_customer[0].author == "agent"
    assert by_sup.changes["first_responded_at"] == NOW


def test_reply_on_an_unassigned_ticket_takes_it_and_stops_the_first_response_clock():
    t = ticket()
    d = work.reply(t, ANA, "on it", now=NOW)
    assert d.changes["assignee_id"] == 1 and d.changes["status"] == "pending"
    assert d.changes["first_responded_at"] == NOW and d.load_change(t) == {1: 1}
    earlier = NOW - timedelta(minutes=5)
    again = work.reply(ticket(assignee_id=1, first_responded_at=earlier), ANA, "more", now=NOW)
    assert again.changes["first_responded_at"] == earlier


def test_reply_refuses_empty_text_and_closed_tickets():
    with pytest.raises(TicketError):
        work.reply(ticket(), ANA, "   ", now=NOW)
    with pytest.raises(TicketError) as err:
        work.reply(ticket(status="closed"), ANA, "hi", now=NOW)
    assert err.value.code == "conflict"


def test_close_frees_load_and_asks_a_rating_only_when_a_person_handled_it():
    t = ticket(assignee_id=1, status="pending")
    d = work_close = lifecycle.close(t, ANA, "fixed", now=NOW, language="en")
    assert work_close.changes["status"] == "closed" and d.load_change(t) == {1: -1}
    assert d.to_customer[0].key == "csat" and d.to_customer[0].optional
    assert [b.data for b in d.to_customer[0].buttons] == [f"/csat 7 {n}" for n in range(1, 6)]
    assert d.webhooks == [("ticket.closed", {"resolution": "fixed"})]
    bot_only = lifecycle.close(ticket(handoff_reason=None, status="solved"), SUP, now=NOW, language="en")
    assert not bot_only.to_customer and bot_only.load_change(ticket(status="solved")) == {}


def test_close_by_someone_else_and_twice():
    with pytest.raises(TicketError) as err:
        lifecycle.close(ticket(assignee_id=2), ANA, now=NOW, language=None)
    assert err.value.code == "not_allowed"
    with pytest.raises(TicketError) as err:
        lifecycle.close(ticket(status="closed"), SUP, now=NOW, language=None)
    assert err.value.code == "conflict"


def test_visibility_is_the_tickets_own_tier_and_queue():
    vip = ticket(tier_at_open="VIP", queue="vip")
    assert work.note(vip, VIP_ONLY, "x", now=NOW).note == "x"
    with pytest.raises(TicketError) as err:
        work.note(ticket(), VIP_ONLY, "x", now=NOW)
    assert err.value.code == "not_found"
    assert work.note(ticket(assignee_id=3), VIP_ONLY, "mine", now=NOW).note == "mine"


def test_rating_once_within_the_window():
    closed = ticket(status="closed", closed_at=NOW - timedelta(days=1))
    assert lifecycle.rate(closed, 4, now=NOW).changes == {"csat": 4}
    for t, code in ((ticket(status="closed", csat=5, closed_at=NOW), "already_rated"),
                    (ticket(status="closed", closed_at=NOW - timedelta(days=8)), "window_closed"),
                    (ticket(status="open"), "not_closed")):
        with pytest.raises(TicketError) as err:
            lifecycle.rate(t, 3, now=NOW)
        assert err.value.code == code


def routed(assignee: int | None) -> RouteDecision:
    return RouteDecision(queue="vip", priority=1, first_response_due=NOW + timedelta(minutes=15),
                         resolution_due=NOW + timedelta(hours=4), assignee_id=assignee, reason="least loaded")


def test_route_takes_the_subject_from_the_message_that_needed_a_person():
    t = ticket(handoff_reason=None, subject="Hi", status="solved")
    d = lifecycle.route(t, routed(1), tier="VIP", reason="out of scope", intent=None, language="en", agents=[],
                        customer_name="Vera", text="My invoice is wrong", channel="telegram",
                        subject=lifecycle.subject_of("My invoice is wrong\nsecond line"), now=NOW)
    assert d.changes["subject"] == "My invoice is wrong" and d.changes["first_response_due"] is not None
    assert d.load_change(t) == {1: 1}
    assert [b.label for b in d.notices[0].buttons] == ["Close", "History"]  # already theirs: no "Take"
    assert d.to_customer[0].key == "ack" and ("ticket.created", {}) in d.webhooks


def test_route_of_imported_history_pages_nobody_and_starts_no_clock():
    agents = [AgentState(id=1)]
    d = lifecycle.route(ticket(handoff_reason=None), routed(1), tier="VIP", reason=None, intent=None,
                        language=None, agents=agents, customer_name="", text="old mail", channel="email",
                        subject="old", now=NOW, imported=True)
    assert d.changes["assignee_id"] is None and "first_response_due" not in d.changes
    assert not d.notices and not d.to_customer


def test_the_bots_answer_is_not_a_first_response():
    d = lifecycle.bot_answered(ticket(handoff_reason=None), "We open at 9.", intent="hours", now=NOW)
    assert "first_responded_at" not in d.changes and d.changes["status"] == "solved"
    assert d.to_customer[0].text == "We open at 9."


def test_customer_writing_again():
    solved = ticket(status="solved", assignee_id=1)
    d = lifecycle.customer_wrote(solved, now=NOW)
    assert d.changes["status"] == "open" and d.load_change(solved) == {1: 1}
    assert d.changes["solved_at"] is None and d.changes["closed_at"] is None  # not resolved any more
    assert not lifecycle.customer_wrote(ticket(status="closed"), now=NOW).changes
    assert lifecycle.customer_wrote(ticket(status="closed"), now=NOW, thread_named=True).changes["status"] == "open"
    assert not lifecycle.customer_wrote(ticket(status="open"), now=NOW).changes


def test_transfer_assign_tag_priority_subject_pending():
    t = ticket(assignee_id=1)
    to_ben = work.transfer(t, ANA, now=NOW, to_agent=AgentState(id=2), to_agent_name="Ben")
    assert to_ben.changes["assignee_id"] == 2 and to_ben.load_change(t) == {1: -1, 2: 1}
    with pytest.raises(TicketError):
        work.transfer(t, BEN, now=NOW, to_queue="vip")
    with pytest.raises(TicketError):
        work.assign(ticket(), ANA, AgentState(id=2), now=NOW)
    assert work.assign(ticket(), SUP, AgentState(id=2), now=NOW).changes["assignee_id"] == 2
    tagged = work.tag(ticket(tags=["a"]), ANA, now=NOW, add=["#Refund", "a"], remove=["a"])
    assert tagged.changes["tags"] == ["refund"]
    with pytest.raises(TicketError):
        work.set_priority(ticket(), ANA, 9, now=NOW)
    assert work.set_subject(ticket(), ANA, "  Broken   invoice ", now=NOW).changes["subject"] == "Broken invoice"
    snooze = lifecycle.pending(t, ANA, now=NOW, until=NOW + timedelta(hours=2))
    assert snooze.changes["status"] == "pending" and snooze.changes["snoozed_until"] == NOW + timedelta(hours=2)
    with pytest.raises(TicketError):
        lifecycle.pending(t, ANA, now=NOW, until=NOW - timedelta(hours=1))


def test_customer_and_bot_actors_are_not_people():
    assert not CUSTOMER.is_person and not BOT.is_person and ANA.is_person

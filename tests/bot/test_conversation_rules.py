"""Rules customers and supervisors expect of a conversation, through the real dispatcher on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from bot.assistant.responder import BotTurn
from crm_store.models import Ticket, TicketEvent


class Faq:
    def respond(self, text, *, customer_language=None):
        if "hours" in text:
            return BotTurn(answer="We are open 9-18.", intent="opening_hours", language="en")
        return BotTurn(handoff_reason="out of scope")


async def tickets_of(h) -> list[Ticket]:
    async with h.app.sessions() as s:
        return list(await s.scalars(select(Ticket).order_by(Ticket.id)))


async def test_the_bots_answer_is_not_a_first_response_and_a_bot_only_chat_is_bot_resolved(harness_factory):
    h = await harness_factory(responder=Faq())
    await h.agent("Ana")
    a = await h.ch["telegram"].receive("3", "what are your hours?")
    await h.settle()
    [t] = await tickets_of(h)
    assert t.status == "solved" and t.handoff_reason is None and t.first_responded_at is None
    b = await h.ch["telegram"].receive("3", "that did not help, my parcel is broken")
    await h.settle()
    [t] = await tickets_of(h)
    assert b.ticket_id == a.ticket_id and t.handoff_reason == "out of scope" and t.first_responded_at is None
    await h.ch["console"].receive("ana", f"/reply {t.id} Sorry, we will send a new one.")
    await h.settle()
    [t] = await tickets_of(h)
    assert t.first_responded_at is not None and t.first_responded_at > t.created_at


async def test_the_subject_comes_from_the_message_that_needed_a_person(harness_factory):
    h = await harness_factory(responder=Faq())
    await h.ch["telegram"].receive("4", "what are your hours?")
    await h.ch["telegram"].receive("4", "Refund for order A-77 please\nit arrived broken")
    await h.settle()
    [t] = await tickets_of(h)
    assert t.subject == "Refund for order A-77 please"


async def test_a_mail_keeps_its_subject_line(h):
    r = await h.ch["email"].receive("m@example.com", "Hello,\nmy order is late.", meta={"subject": "Order A-1"})
    async with h.app.sessions() as s:
        assert (await s.get(Ticket, r.ticket_id)).subject == "Order A-1"


async def _closed_ticket(h) -> int:
    await h.agent("Ana")
    r = await h.ch["telegram"].receive("9", "help me")
    await h.ch["console"].receive("ana", f"/take {r.ticket_id}")
    await h.ch["console"].receive("ana", f"/close {r.ticket_id} done")
    await h.settle()
    return r.ticket_id


async def test_a_second_rating_is_thanked_and_opens_no_ticket(h):
    tid = await _closed_ticket(h)
    first = await h.ch["telegram"].receive("9", f"/csat {tid} 4")
    again = await h.ch["telegram"].receive("9", f"/csat {tid} 1")
    typed = await h.ch["telegram"].receive("9", "2")
    await h.settle()
    assert first.ticket_id == again.ticket_id == typed.ticket_id == tid
    tickets = await tickets_of(h)
    assert len(tickets) == 1 and tickets[0].csat == 4
    said = h.ch["telegram"].sent_to("9")
    assert said[-3] == "Thank you for your rating!" and "rated T-" in said[-2] and "rated T-" in said[-1]


async def test_a_late_rating_opens_no_ticket(h):
    tid = await _closed_ticket(h)
    async with h.app.sessions() as s, s.begin():
        await s.execute(update(Ticket).where(Ticket.id == tid).values(closed_at=datetime.now(UTC) - timedelta(days=9)))
    late = await h.ch["telegram"].receive("9", f"/csat {tid} 5")
    typed = await h.ch["telegram"].receive("9", "5")
    await h.settle()
    assert late.ticket_id == typed.ticket_id == tid
    [t] = await tickets_of(h)
    assert t.csat is None
    assert "closed a while ago" in h.ch["telegram"].sent_to("9")[-1]


async def test_a_rating_for_someone_elses_ticket_is_no_rating(h):
    tid = await _closed_ticket(h)
    r = await h.ch["telegram"].receive("other", f"/csat {tid} 1")
    huge = await h.ch["telegram"].receive("other", "/csat 99999999999999999999999 1")
    await h.settle()
    [t] = await tickets_of(h)
    assert t.csat is None and r.ticket_id is None and huge.ticket_id is None


async def test_a_digit_in_a_running_conversation_is_just_a_message(h):
    r = await h.ch["telegram"].receive("5", "how many parcels can I send?")
    d = await h.ch["telegram"].receive("5", "3")
    assert d.ticket_id == r.ticket_id
    async with h.app.sessions() as s:
        assert (await s.get(Ticket, r.ticket_id)).csat is None


async def test_imported_mail_is_history_on_its_own_date(h):
    sent = datetime(2025, 3, 4, 10, 30, tzinfo=UTC)
    await h.agent("Ana")
    r = await h.ch["email"].receive("old@example.com", "Where is my order?", received_at=sent,
                                    meta={"subject": "Order", "imported": "1", "no_auto_reply": "1"})
    await h.settle()
    async with h.app.sessions() as s:
        t = await s.get(Ticket, r.ticket_id)
        events = int(await s.scalar(select(func.count()).select_from(TicketEvent).where(
            TicketEvent.ticket_id == t.id, TicketEvent.kind == "opened", TicketEvent.at == sent)))
    assert t.source == "imported" and t.created_at == sent and events == 1
    assert t.first_response_due is None and t.assignee_id is None
    assert not h.ch["console"].sent_to("ana") and not h.ch["email"].sent_to("old@example.com")

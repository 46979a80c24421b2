"""The spine on SQLite and PostgreSQL: exactly-once logging, recognition across channels, routing to a human,
replies through the customer's own channel."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.assistant.responder import BotTurn
from crm_store.models import Contact, Customer, OutboxItem, Ticket, TicketEvent
from crm_store.repositories import customers as customers_repo


async def count(h, model, *where) -> int:
    async with h.app.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)))


async def test_repeated_external_id_is_logged_once_and_returns_the_earlier_result(h):
    first = await h.ch["telegram"].receive("111", "my parcel is late", external_id="u1")
    again = await h.ch["telegram"].receive("111", "my parcel is late", external_id="u1")
    assert not first.duplicate and again.duplicate
    assert (again.contact_id, again.ticket_id, again.customer_id) == (first.contact_id, first.ticket_id,
                                                                      first.customer_id)
    assert await count(h, Contact, Contact.external_id == "u1") == 1
    await h.settle()
    assert len(h.ch["telegram"].sent_to("111")) == 1  # one acknowledgement, not two


async def test_same_id_on_another_channel_is_another_contact(h):
    a = await h.ch["telegram"].receive("111", "hello", external_id="x1")
    b = await h.ch["email"].receive("bob@example.com", "hello", external_id="x1")
    assert not a.duplicate and not b.duplicate and a.contact_id != b.contact_id


async def test_customer_recognised_across_channels_joins_the_open_ticket(h):
    async with h.app.sessions() as s, s.begin():
        anna = await customers_repo.create_customer(
            s, name="Anna", identities={"email": "anna@example.com", "telegram": "5001"}
        )
    r1 = await h.ch["email"].receive("anna@example.com", "Order A-1 is late", meta={"subject": "Late order"})
    r2 = await h.ch["telegram"].receive("5001", "any news?")
    assert r1.customer_id == r2.customer_id == anna.id
    assert r1.ticket_id == r2.ticket_id
    assert await count(h, Customer) == 1


async def test_handoff_routes_by_stored_tier_notifies_agent_and_acknowledges(h):
    alice = await h.agent("Alice", tiers=["VIP"])
    await h.agent("Bob")
    async with h.app.sessions() as s, s.begin():
        await customers_repo.create_customer(s, name="Vera", tier="VIP", identities={"telegram": "77"})
    r = await h.ch["telegram"].receive("77", "I need help with an invoice")
    await h.settle()
    async with h.app.sessions() as s:
        ticket = await s.get(Ticket, r.ticket_id)
    assert ticket.queue == "vip" and ticket.priority == 1 and ticket.assignee_id == alice.id
    assert ticket.first_response_due is not None and ticket.tier_at_open == "VIP"
    notes = h.ch["console"].sent_to("alice")
    assert any(f"T-{r.ticket_id}" in t and "invoice" in t for t in notes)
    assert not h.ch["console"].sent_to("bob")  # only the assignee is paged
    assert f"T-{r.ticket_id}" in h.ch["telegram"].sent_to("77")[0]


async def test_agent_reply_reaches_customer_on_their_channel_and_is_logged_outbound(h):
    await h.agent("Alice")
    r = await h.ch["telegram"].receive("555", "where is my refund?")
    await h.ch["console"].receive("alice", f"/reply T-{r.ticket_id} Refund sent today.")
    await h.settle()
    assert "Refund sent today." in h.ch["telegram"].sent_to("555")
    async with h.app.sessions() as s:
        out = (await s.scalars(select(Contact).where(Contact.direction == "out", Contact.author == "agent"))).all()
        ticket = await s.get(Ticket, r.ticket_id)
        kinds = [e.kind for e in await s.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id))]
    assert len(out) == 1 and out[0].channel == "telegram" and out[0].ticket_id == r.ticket_id
    assert ticket.first_responded_at is not None and ticket.status == "pending"
    assert {"opened", "routed", "replied"} <= set(kinds)
    await h.app.outbox.drain()  # a second pass sends nothing again
    assert h.ch["telegram"].sent_to("555").count("Refund sent today.") == 1


async def test_history_and_customer_card_span_channels(h):
    await h.agent("Alice")
    async with h.app.sessions() as s, s.begin():
        await customers_repo.create_customer(s, name="Anna", external_ref="CUST-9",
                                             identities={"email": "anna@example.com", "telegram": "5001"})
    await h.ch["email"].receive("anna@example.com", "first by mail")
    await h.ch["telegram"].receive("5001", "then on telegram")
    await h.ch["console"].receive("alice", "/history CUST-9")
    await h.ch["console"].receive("alice", "/customer anna@example.com")
    await h.settle()
    history, card = h.ch["console"].sent_to("alice")[-2:]
    assert "first by mail" in history and "then on telegram" in history
    assert history.index("then on telegram") < history.index("first by mail")  # newest first
    assert "email:anna@example.com" in card and "telegram:5001" in card and "CUST-9" in card


async def test_close_asks_for_rating_and_stores_it(h):
    await h.agent("Alice")
    r = await h.ch["telegram"].receive("9", "help")
    await h.ch["console"].receive("alice", f"/close {r.ticket_id} solved by phone")
    await h.ch["telegram"].receive("9", f"/csat {r.ticket_id} 4")
    await h.settle()
    async with h.app.sessions() as s:
        ticket = await s.get(Ticket, r.ticket_id)
    assert ticket.status == "closed" and ticket.csat == 4 and ticket.resolution == "solved by phone"
    nxt = await h.ch["telegram"].receive("9", "another question")
    assert nxt.ticket_id != r.ticket_id  # a closed conversation is not reopened by a new question


async def test_agent_commands_refuse_what_the_agent_may_not_see(h):
    await h.agent("Vic", tiers=["VIP"])
    r = await h.ch["telegram"].receive("42", "ordinary question")
    await h.ch["console"].receive("vic", f"/history T-{r.ticket_id}")
    await h.ch["console"].receive("vic", f"/reply {r.ticket_id} hi")
    await h.ch["console"].receive("vic", "/nonsense")
    await h.ch["console"].receive("vic", "/reply")
    await h.settle()
    answers = h.ch["console"].sent_to("vic")
    assert "not in your queues" in answers[0] and "not in your queues" in answers[1]
    assert "Unknown command /nonsense" in answers[2] and "Usage: /reply" in answers[3]
    assert h.ch["telegram"].sent_to("42") == [h.ch["telegram"].sent_to("42")[0]]  # only the acknowledgement


async def test_customer_typing_a_desk_command_is_just_a_customer(h):
    await h.agent("Alice")
    await h.ch["telegram"].receive("1", "secret order details")
    r = await h.ch["telegram"].receive("2", "/history 1")
    await h.settle()
    assert all("secret" not in t for t in h.ch["telegram"].sent_to("2"))
    assert await count(h, Contact, Contact.id == r.contact_id, Contact.author == "customer") == 1


async def test_bot_answers_when_confident_and_hands_off_otherwise(harness_factory):
    class Faq:
        def respond(self, text, *, customer_language=None):
            if "hours" in text:
                return BotTurn(answer="We are open 9-18.", intent="opening_hours", language="en",
                               nlu={"intent": "opening_hours", "confidence": 0.93})
            return BotTurn(handoff_reason="out of scope", nlu={"intent": None, "out_of_scope": True})

    h = await harness_factory(responder=Faq())
    a = await h.ch["telegram"].receive("3", "what are your hours?")
    b = await h.ch["telegram"].receive("3", "my cat ate the parcel")
    await h.settle()
    assert h.ch["telegram"].sent_to("3")[0] == "We are open 9-18."
    assert a.ticket_id == b.ticket_id  # the solved conversation reopens and goes to a person
    async with h.app.sessions() as s:
        ticket = await s.get(Ticket, b.ticket_id)
        first = await s.get(Contact, a.contact_id)
    assert ticket.handoff_reason == "out of scope" and ticket.status == "open"
    assert first.nlu == {"intent": "opening_hours", "confidence": 0.93}


async def test_bursts_are_committed_in_batches(h):
    results = await asyncio.gather(
        *(h.ch["telegram"].receive(str(i % 20), f"msg {i}", external_id=f"b{i}") for i in range(200))
    )
    assert len({r.contact_id for r in results}) == 200
    assert await count(h, Contact, Contact.direction == "in") == 200
    assert h.app.dispatcher.batches < 200  # group commit happened
    assert await count(h, Ticket) == 20  # one conversation per customer


async def test_failed_delivery_is_retried_then_marked_failed_and_reported(h):
    from bot.core.messages import DeliveryError

    await h.agent("Alice")
    r = await h.ch["telegram"].receive("8", "hello")
    await h.settle()
    h.ch["telegram"].fail_next = [DeliveryError("timeout"), DeliveryError("bot was blocked", permanent=True)]
    await h.ch["console"].receive("alice", f"/reply {r.ticket_id} first try")
    await h.settle()
    async with h.app.sessions() as s:
        item = await s.scalar(select(OutboxItem).where(OutboxItem.text == "first try"))
        ticket = await s.get(Ticket, r.ticket_id)
    assert item.status == "failed" and item.attempts == 2 and "blocked" in item.last_error
    assert "blocked" in ticket.delivery_problem
    assert any("could not be delivered" in t for t in h.ch["console"].sent_to("alice"))


async def test_a_command_answering_a_ticket_message_needs_no_ticket_number(h):
    from crm_store.models import Note

    await h.agent("Alice")
    r = await h.ch["telegram"].receive("77", "please call me back")
    await h.settle()
    async with h.app.sessions() as s:
        notice = await s.scalar(select(OutboxItem).where(OutboxItem.recipient == "alice", OutboxItem.ticket_id ==
                                                         r.ticket_id))
    await h.ch["console"].receive("alice", "/note called back at 14:00", thread_ref=notice.external_id)
    await h.ch["console"].receive("alice", "/note without any context")
    await h.settle()
    async with h.app.sessions() as s:
        notes = (await s.scalars(select(Note))).all()
    assert [(n.ticket_id, n.text) for n in notes] == [(r.ticket_id, "called back at 14:00")]
    assert "Usage" in h.ch["console"].sent_to("alice")[-1] or "ticket" in h.ch["console"].sent_to("alice")[-1]

"""/reply and plain replies through the ticket core: only the assignee or a supervisor may answer an assigned
ticket; anyone else's words reach nobody and they are offered to take it over."""

from __future__ import annotations

from crm_store.models import OutboxItem
from tests.bot.test_desk_support import buttons, customer_writes, events, kinds, outbox, say, ticket, to_customer


async def test_reply_reaches_the_customer_and_stops_the_first_response_clock(h):
    tid = await customer_writes(h, "701", "where is my refund?")
    alice = await h.agent("Alice")
    done = await say(h, "alice", f"/reply {tid} Refund sent today.")
    # "queued" at once, "delivered" once the outbox sent it; a new customer is named by their address
    assert [m.text for m in h.ch["console"].sent if m.recipient == "alice"][-2:] == [
        f"Queued for 701 on T-{tid}; you will hear when it is delivered.", f"Delivered to 701 on T-{tid} via telegram."]
    assert done.text == f"Delivered to 701 on T-{tid} via telegram."
    assert "Refund sent today." in h.ch["telegram"].sent_to("701")
    [row] = [o for o in await outbox(h, ticket_id=tid, audience="customer") if o.author == "agent"]
    assert (row.channel, row.recipient, row.agent_id, row.text) == ("telegram", "701", alice.id, "Refund sent today.")
    t = await ticket(h, tid)
    assert (t.status, t.assignee_id) == ("pending", alice.id) and t.first_responded_at is not None
    assert [e.data["reason"] for e in await events(h, tid, "assigned")] == ["replied"]
    assert [e.data["chars"] for e in await events(h, tid, "replied")] == [len("Refund sent today.")]


async def test_another_agents_reply_sends_nothing_and_offers_take_over(h):
    alice = await h.agent("Alice")
    tid = await customer_writes(h, "702", "invoice 12 is wrong")
    await h.agent("Bob")
    before = await to_customer(h, tid)
    refused = await say(h, "bob", f"/reply {tid} I can help!")
    assert refused.text == f"T-{tid} is assigned to someone else; your reply was not sent."
    assert buttons(refused) == [("Take over", f"/take {tid}")]
    [row] = await outbox(h, recipient="bob", text=refused.text)
    assert (row.audience, row.buttons) == ("desk", [["Take over", f"/take {tid}"]])
    # The same words as a plain reply to a message about the ticket: refused the same way.
    shown = await say(h, "bob", f"/history T-{tid}")
    [history_row] = await outbox(h, recipient="bob", text=shown.text)
    plain = await say(h, "bob", "Let me look at it.", thread_ref=history_row.external_id)
    assert plain.text == refused.text and buttons(plain) == [("Take over", f"/take {tid}")]
    assert await to_customer(h, tid) == before and "I can help!" not in h.ch["telegram"].sent_to("702")
    t = await ticket(h, tid)
    assert (t.assignee_id, t.first_responded_at, t.status) == (alice.id, None, "open")
    assert "replied" not in await kinds(h, tid)


async def test_a_supervisor_may_answer_an_assigned_ticket_without_taking_it(h):
    alice = await h.agent("Alice")
    tid = await customer_writes(h, "703", "help please")
    await h.agent("Sam", role="supervisor")
    await say(h, "sam", f"/reply {tid} A supervisor here.")
    assert "A supervisor here." in h.ch["telegram"].sent_to("703")
    t = await ticket(h, tid)
    assert t.assignee_id == alice.id and t.first_responded_at is not None


async def test_a_plain_reply_to_the_notice_goes_to_the_customer(h):
    alice = await h.agent("Alice")
    tid = await customer_writes(h, "704", "please call me")
    async with h.app.sessions() as s:
        from sqlalchemy import select

        notice = await s.scalar(select(OutboxItem).where(OutboxItem.recipient == "alice",
                                                         OutboxItem.ticket_id == tid))
    assert notice.audience == "desk"
    done = await say(h, "alice", "Calling you at 3pm.", thread_ref=notice.external_id)
    assert done.text == f"Delivered to 704 on T-{tid} via telegram."
    assert h.ch["telegram"].sent_to("704")[-1] == "Calling you at 3pm."
    assert [e.agent_id for e in await events(h, tid, "replied")] == [alice.id]


async def test_reply_refuses_closed_empty_and_bad_numbers(h):
    await h.agent("Alice")
    tid = await customer_writes(h, "705", "question")
    empty = await say(h, "alice", f"/reply {tid}")
    assert empty.text == "Nothing to send: write /reply <ticket> <text>."
    await say(h, "alice", f"/close {tid}")
    before = await to_customer(h, tid)
    closed = await say(h, "alice", f"/reply {tid} one more thing")
    assert closed.text == f"T-{tid} is closed; your reply was not sent (/reopen it first)."
    assert await to_customer(h, tid) == before
    for ref, answer in {"T-99999999999999999999": "Ticket T-99999999999999999999 does not exist.",
                        "-3": "'-3' is not a ticket number (write 12 or T-12).",
                        "abc": "'abc' is not a ticket number (write 12 or T-12)."}.items():
        assert (await say(h, "alice", f"/reply {ref} hello")).text == answer
    assert await to_customer(h, tid) == before
    assert (await kinds(h, tid)).count("replied") == 0

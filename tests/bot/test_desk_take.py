"""/take and /next through the ticket core: who may take what, a stale button pressed twice, taking over."""

from __future__ import annotations

from tests.bot.test_desk_support import buttons, customer_writes, events, load_of, outbox, say, ticket


async def test_take_assigns_once_and_a_second_press_changes_nothing(h):
    tid = await customer_writes(h, "501", "my parcel is lost")  # nobody on duty yet: it waits
    alice = await h.agent("Alice")
    first = await say(h, "alice", f"/take {tid}")
    again = await say(h, "alice", f"/take T-{tid}")
    assert first.text.startswith(f"T-{tid} is yours (potential, telegram)")
    assert buttons(first) == [("Close", f"/close {tid}"), ("History", f"/history T-{tid}")]
    assert again.text == f"T-{tid} is already yours."
    assert (await ticket(h, tid)).assignee_id == alice.id
    assigned = await events(h, tid, "assigned")
    assert [(e.agent_id, e.data["reason"]) for e in assigned] == [(alice.id, "taken")]
    assert await load_of(h, alice.id) == 1
    answers = await outbox(h, recipient="alice")
    assert {o.audience for o in answers} == {"desk"} and len(answers) == 2


async def test_an_agent_cannot_take_a_colleagues_ticket_while_they_are_online(h):
    alice = await h.agent("Alice")
    tid = await customer_writes(h, "502", "invoice is wrong")
    assert (await ticket(h, tid)).assignee_id == alice.id  # routed to the one agent on duty
    bob = await h.agent("Bob")
    refused = await say(h, "bob", f"/take {tid}")
    assert refused.text == f"T-{tid} is being handled by Alice; a supervisor can /transfer it."
    assert (await ticket(h, tid)).assignee_id == alice.id
    assert len(await events(h, tid, "assigned")) == 0 and await load_of(h, bob.id) == 0
    await say(h, "alice", "/status away")
    taken = await say(h, "bob", f"/take {tid}")
    assert taken.text.startswith(f"T-{tid} is yours")
    assert (await ticket(h, tid)).assignee_id == bob.id
    [moved] = await events(h, tid, "assigned")
    assert (moved.agent_id, moved.data["reason"], moved.data["from_agent_id"]) == (bob.id, "taken over", alice.id)
    assert (await load_of(h, alice.id), await load_of(h, bob.id)) == (0, 1)
    told = await outbox(h, recipient="alice", ticket_id=tid, audience="desk")
    assert told[-1].text == f"T-{tid} was taken over by Bob."


async def test_a_supervisor_takes_over_and_the_holder_is_told(h):
    alice = await h.agent("Alice")
    tid = await customer_writes(h, "503", "need help")
    sam = await h.agent("Sam", role="supervisor")
    taken = await say(h, "sam", f"/take {tid}")
    assert taken.text.startswith(f"T-{tid} is yours")
    assert (await ticket(h, tid)).assignee_id == sam.id
    assert [e.data["from_agent_id"] for e in await events(h, tid, "assigned")] == [alice.id]
    assert [o.text for o in await outbox(h, recipient="alice", ticket_id=tid)][-1] == f"T-{tid} was taken over by Sam."


async def test_take_refuses_closed_and_invisible_tickets(h):
    await h.agent("Alice")
    tid = await customer_writes(h, "504", "ordinary question")
    await h.agent("Vic", tiers=["VIP"])
    hidden = await say(h, "vic", f"/take {tid}")
    assert hidden.text == f"Ticket T-{tid} does not exist or is not in your queues."
    await say(h, "alice", f"/close {tid}")
    closed = await say(h, "alice", f"/take {tid}")
    assert closed.text == f"T-{tid} is closed; /reopen it first."
    assert len(await events(h, tid, "assigned")) == 0


async def test_next_takes_the_most_urgent_and_refuses_when_full(h):
    from crm_store.repositories import customers as customers_repo

    async with h.app.sessions() as s, s.begin():
        await customers_repo.create_customer(s, name="Vera", tier="VIP", identities={"telegram": "600"})
    plain = await customer_writes(h, "601", "ordinary wait")
    vip = await customer_writes(h, "600", "VIP problem")
    alice = await h.agent("Alice", capacity=1)
    took = await say(h, "alice", "/next")
    assert took.text.startswith(f"T-{vip} is yours (VIP, telegram) — Vera: VIP problem")
    assert [(e.agent_id, e.data["reason"]) for e in await events(h, vip, "assigned")] == [(alice.id, "next")]
    full = await say(h, "alice", "/next")
    assert "capacity 1" in full.text
    assert (await ticket(h, plain)).assignee_id is None

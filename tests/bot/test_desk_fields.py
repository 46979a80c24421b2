"""/note, /tag, /priority, /subject and /transfer through the ticket core: the fields change, the audit trail
says so, the customer sees none of it."""

from __future__ import annotations

from tests.bot.test_desk_support import customer_writes, events, notes, outbox, say, ticket, to_customer


async def test_note_is_saved_and_never_sent(h):
    alice = await h.agent("Alice")
    tid = await customer_writes(h, "901", "call me back")
    before = await to_customer(h, tid)
    assert (await say(h, "alice", f"/note {tid} sounds upset")).text == (
        f"Note saved on T-{tid} (the customer does not see it).")
    assert await notes(h, tid) == ["sounds upset"]
    [event] = await events(h, tid, "note")
    assert event.agent_id == alice.id and event.data["note_id"] > 0
    assert await to_customer(h, tid) == before
    assert (await say(h, "alice", f"/note {tid}")).text == "Usage: /note <ticket> <text>"


async def test_tags_are_added_removed_and_shown(h):
    await h.agent("Alice")
    tid = await customer_writes(h, "902", "refund for a VIP")
    assert (await say(h, "alice", f"/tag {tid} +refund #VIP urgent")).text == f"T-{tid} tags: refund, vip, urgent."
    assert (await say(h, "alice", f"/tag {tid} -vip +refund")).text == f"T-{tid} tags: refund, urgent."
    assert (await say(h, "alice", f"/tag {tid}")).text == f"T-{tid} tags: refund, urgent."
    assert (await ticket(h, tid)).tags == ["refund", "urgent"]
    assert [(e.data["added"], e.data["removed"]) for e in await events(h, tid, "tagged")] == [
        (["refund", "vip", "urgent"], []), ([], ["vip"])]


async def test_priority_is_one_to_five_and_the_assignees(h):
    await h.agent("Alice")
    tid = await customer_writes(h, "903", "slow")
    start = (await ticket(h, tid)).priority
    assert (await say(h, "alice", f"/priority {tid} 2")).text == f"T-{tid} now has priority 2."
    for wrong in ("9", "0", "abc"):
        assert (await say(h, "alice", f"/priority {tid} {wrong}")).text == "Priority is 1 (most urgent) to 5."
    await h.agent("Bob")
    refused = await say(h, "bob", f"/priority {tid} 1")
    assert refused.text == f"T-{tid} is someone else's; ask its agent or a supervisor."
    assert (await ticket(h, tid)).priority == 2
    assert [(e.data["from_priority"], e.data["to_priority"]) for e in await events(h, tid, "priority_set")] == [
        (start, 2)]


async def test_subject_is_set_and_never_empty(h):
    await h.agent("Alice")
    tid = await customer_writes(h, "904", "hi")
    assert (await say(h, "alice", f"/subject {tid}   Refund   for order 12 ")).text == f"T-{tid}: subject set."
    assert (await ticket(h, tid)).subject == "Refund for order 12"
    assert (await say(h, "alice", f"/subject {tid}")).text == "A subject cannot be empty."
    assert [e.data["subject"] for e in await events(h, tid, "subject_set")] == ["Refund for order 12"]


async def test_transfer_to_a_queue_and_to_an_agent(h):
    alice = await h.agent("Alice")
    tid = await customer_writes(h, "905", "needs the VIP desk")
    ana = await h.agent("Ana", queues=["general"])
    await h.agent("Vic", tiers=["VIP"])
    assert (await say(h, "alice", f"/transfer {tid} nowhere")).text == "No agent or queue named 'nowhere'."
    assert (await say(h, "alice", f"/transfer {tid} Vic")).text == "Vic does not serve potential/general tickets."
    assert (await say(h, "alice", f"/transfer {tid} 99999999999999999999")).text == (
        "No agent or queue named '99999999999999999999'.")
    assert (await say(h, "alice", f"/transfer {tid} vip")).text == f"T-{tid} transferred to queue vip."
    t = await ticket(h, tid)
    assert (t.assignee_id, t.queue) == (None, "vip")
    await h.agent("Sam", role="supervisor")
    assert (await say(h, "sam", f"/transfer {tid} Ana")).text == "Ana does not serve potential/vip tickets."
    assert (await say(h, "sam", f"/transfer {tid} Alice")).text == f"T-{tid} transferred to Alice."
    assert (await ticket(h, tid)).assignee_id == alice.id
    moved = [(e.data["from_agent_id"], e.data["to_agent_id"], e.data["queue"])
             for e in await events(h, tid, "transferred")]
    assert moved == [(alice.id, None, "vip"), (None, alice.id, "vip")]
    told = await outbox(h, recipient="alice", ticket_id=tid, audience="desk")
    assert told[-1].text.startswith(f"T-{tid} was transferred to you by Sam")
    refused = await say(h, "ana", f"/transfer {tid} general")
    assert refused.text == f"Ticket T-{tid} does not exist or is not in your queues."
    assert (await ticket(h, tid)).assignee_id == alice.id != ana.id

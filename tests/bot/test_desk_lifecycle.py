"""/close, /reopen and /pending through the ticket core: the rating question, the freed load, the forum topic,
the snooze clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.settings import TelegramSettings
from channels.telegram.traits import CLOSE_TOPIC
from tests.bot.test_desk_support import buttons, customer_writes, events, kinds, load_of, outbox, say, ticket


async def test_close_asks_for_a_rating_frees_the_load_and_is_refused_twice(h):
    alice = await h.agent("Alice")
    tid = await customer_writes(h, "801", "help with my order")
    assert await load_of(h, alice.id) == 1
    done = await say(h, "alice", f"/close {tid} solved by phone")
    assert done.text == f"T-{tid} closed."
    t = await ticket(h, tid)
    assert (t.status, t.resolution) == ("closed", "solved by phone") and t.closed_at is not None
    assert await load_of(h, alice.id) == 0
    [question] = [o for o in await outbox(h, ticket_id=tid, audience="customer") if "/csat" in str(o.buttons)]
    assert question.recipient == "801" and question.buttons == [[str(n), f"/csat {tid} {n}"] for n in range(1, 6)]
    again = await say(h, "alice", f"/close {tid}")
    assert again.text == f"T-{tid} is already closed."
    assert [e.data["resolution"] for e in await events(h, tid, "closed")] == ["solved by phone"]


async def test_only_the_assignee_or_a_supervisor_closes(h):
    await h.agent("Alice")
    tid = await customer_writes(h, "802", "a question")
    await h.agent("Bob")
    refused = await say(h, "bob", f"/close {tid}")
    assert refused.text == f"T-{tid} is someone else's; ask its agent or a supervisor."
    assert buttons(refused) == [("Take over", f"/take {tid}")]
    assert (await ticket(h, tid)).status == "open" and "closed" not in await kinds(h, tid)
    await h.agent("Sam", role="admin")
    assert (await say(h, "sam", f"/close {tid}")).text == f"T-{tid} closed."


async def test_close_closes_the_forum_topic(harness_factory):
    h = await harness_factory(telegram=TelegramSettings(forum_chat_id=-1009))
    await h.agent("Alice")
    tid = await customer_writes(h, "803", "forum please")
    await say(h, "alice", f"/close {tid} done")
    posts = await outbox(h, recipient="-1009", ticket_id=tid)
    assert posts[0].audience == "desk" and posts[-1].text == f"T-{tid} closed by Alice: done"
    assert posts[-1].meta[CLOSE_TOPIC] == "1" and CLOSE_TOPIC not in posts[0].meta


async def test_reopen_brings_a_closed_ticket_back(h):
    alice = await h.agent("Alice")
    tid = await customer_writes(h, "804", "again")
    refused = await say(h, "alice", f"/reopen {tid}")
    assert refused.text == f"T-{tid} is open, not closed."
    await say(h, "alice", f"/close {tid}")
    assert (await say(h, "alice", f"/reopen {tid}")).text == f"T-{tid} is open again."
    t = await ticket(h, tid)
    assert (t.status, t.closed_at, t.assignee_id) == ("open", None, alice.id)
    assert await load_of(h, alice.id) == 1
    assert [e.data["by"] for e in await events(h, tid, "reopened")] == ["agent"]


async def test_pending_and_snooze(h):
    await h.agent("Alice")
    tid = await customer_writes(h, "805", "waiting on me")
    assert (await say(h, "alice", f"/pending {tid}")).text == (
        f"T-{tid} is pending (it opens again when the customer writes).")
    t = await ticket(h, tid)
    assert (t.status, t.snoozed_until) == ("pending", None)
    assert (await say(h, "alice", f"/pending {tid} 2099-12-24T09:00")).text == (
        f"T-{tid} is pending until 2099-12-24 09:00 UTC.")
    assert (await ticket(h, tid)).snoozed_until == datetime(2099, 12, 24, 9, 0, tzinfo=UTC)
    start = datetime.now(UTC)
    await say(h, "alice", f"/pending {tid} 2h")
    until = (await ticket(h, tid)).snoozed_until
    assert start + timedelta(hours=2) - timedelta(seconds=5) <= until <= datetime.now(UTC) + timedelta(hours=2)
    assert [e.kind for e in await events(h, tid) if e.kind in ("pending", "snoozed")] == [
        "pending", "snoozed", "snoozed"]
    bad = await say(h, "alice", f"/pending {tid} soon")
    assert bad.text == "'soon' is not a time like 2h, 30m, 1d or 2026-12-24T09:00 (UTC)."
    past = await say(h, "alice", f"/pending {tid} 2020-01-01T00:00")
    assert past.text == "Snooze until a time in the future."
    assert (await ticket(h, tid)).snoozed_until == until
    await say(h, "alice", f"/close {tid}")
    closed = await say(h, "alice", f"/pending {tid} 1d")
    assert closed.text == f"T-{tid} is closed; /reopen it first."

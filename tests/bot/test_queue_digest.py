"""A burst of waiting tickets reaches each agent as one digest, not one message per ticket; a lone waiting
ticket, and a ticket assigned to someone, are announced as they always were."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from bot.app import App
from bot.core.messages import InboundMessage
from bot.core.notice_digest import LINES, TAKE_BUTTONS, WaitingNotice, merge_waiting
from bot.settings import DispatchSettings, NluSettings, Settings
from channels.memory import MemoryChannel
from crm_store.models import Contact, Ticket
from crm_store.repositories import agents as agents_repo


def settings_for(db) -> Settings:
    # a generous batch wait: the burst below is handled in one transaction, as a burst in production is
    return Settings(
        database_url=db.url,
        database_schema=db.schema,
        nlu=NluSettings(enabled=False),
        channels=[],
        dispatch=DispatchSettings(batch_wait_ms=100),
    )


async def add_agents(db, capacity: int) -> dict[str, int]:
    async with db.sessions() as s, s.begin():
        return {
            name: (await agents_repo.add_agent(s, name=name, addresses={"memory": name}, capacity=capacity)).id
            for name in ("mei", "ravi")
        }


async def bursts(db, *senders: list[str]) -> MemoryChannel:
    """Each list of senders writing at the same moment (one transaction), its replies sent before the next."""
    channel = MemoryChannel("memory")
    app = App(settings_for(db), channels=[channel])
    await app.start()
    try:
        for group in senders:
            await asyncio.gather(
                *(
                    app.deliver(
                        InboundMessage.build(
                            channel="memory", external_id=f"in-{who}", sender=who, text=f"I need a person please, {who}"
                        )
                    )
                    for who in group
                )
            )
            await app.outbox.drain()
    finally:
        await app.stop()
    return channel


async def test_a_burst_of_waiting_tickets_is_one_digest_per_agent(db):
    agents = await add_agents(db, capacity=1)
    channel = await bursts(db, [f"c{i}" for i in range(6)])
    async with db.sessions() as s:
        tickets = list(await s.scalars(select(Ticket).order_by(Ticket.id)))
        desk_log = list(await s.scalars(select(Contact).where(Contact.desk, Contact.direction == "out")))
    waiting = [t.id for t in tickets if t.assignee_id is None]
    assert len(tickets) == 6 and len(waiting) == 4  # one each for the two agents of capacity 1
    for name, agent_id in agents.items():
        got = [m for m in channel.sent if m.recipient == name]
        own = next(t.id for t in tickets if t.assignee_id == agent_id)
        assert len(got) == 2, [m.text for m in got]  # their own ticket's notice and one digest: not 1 + 4
        mine, digest = sorted(got, key=lambda m: m.text.startswith("4 new tickets"))
        assert mine.text.startswith(f"New ticket T-{own} ") and "Waiting in queue" not in mine.text
        lines = digest.text.splitlines()
        assert lines[0] == "4 new tickets are waiting:" and lines[1].startswith("Queue ")
        assert [line.split(" · ")[0] for line in lines[2:6]] == [f"T-{t}" for t in waiting]
        assert "I need a person please" in lines[2]
        assert [b.data for b in digest.buttons] == [*(f"/take {t}" for t in waiting[:TAKE_BUTTONS]), "/queue"]
    assert len(desk_log) == 4  # what was sent is what the log holds: two messages to each agent


async def test_a_lone_waiting_ticket_is_announced_on_its_own(db):
    agents = await add_agents(db, capacity=1)
    channel = await bursts(db, ["c0", "c1"], ["c2"])  # both agents are full after the first two
    async with db.sessions() as s:
        last = await s.scalar(select(Ticket).order_by(Ticket.id.desc()).limit(1))
    assert last.assignee_id is None
    for name in agents:
        notice = [m for m in channel.sent if m.recipient == name][-1]
        assert notice.text.startswith(f"New ticket T-{last.id} ") and "Waiting in queue" in notice.text
        assert [b.data for b in notice.buttons] == [f"/take {last.id}", f"/close {last.id}", f"/history T-{last.id}"]


def test_a_digest_names_the_first_tickets_and_counts_the_rest():
    rows = [
        {
            "idempotency_key": f"c{i}:notify:a1",
            "channel": "memory",
            "recipient": "mei",
            "text": f"New T-{i}",
            "ticket_id": i,
            "customer_id": 100 + i,
            "agent_id": 1,
            "buttons": [],
        }
        for i in range(1, LINES + 3)
    ]
    other = {"idempotency_key": "c1:ack", "channel": "memory", "recipient": "ann", "text": "Thanks"}
    lone = {"idempotency_key": "c1:notify:a2", "channel": "memory", "recipient": "ravi", "text": "New T-1"}
    outbox = [rows[0], other, *rows[1:], lone]
    notices = [
        WaitingNotice(r, "vip" if r["ticket_id"] % 2 else "potential", f"T-{r['ticket_id']} · x", r["ticket_id"])
        for r in rows
    ]
    notices.append(WaitingNotice(lone, "vip", "T-1 · x", 1))
    merge_waiting(outbox, notices)
    digest, kept, alone = outbox
    assert kept is other and alone is lone and notices == []
    assert digest["idempotency_key"] == "digest:c1:notify:a1" and digest["ticket_id"] is None
    assert digest["text"].splitlines() == [
        f"{LINES + 2} new tickets are waiting:",
        "Queue vip:",
        "T-1 · x",
        "T-3 · x",
        "T-5 · x",
        "T-7 · x",
        "T-9 · x",
        "Queue potential:",
        "T-2 · x",
        "T-4 · x",
        "T-6 · x",
        "T-8 · x",
        "T-10 · x",
        "…and 2 more.",
        "/take T-1 takes one; /queue lists everything waiting for you.",
    ]
    assert digest["buttons"] == [
        ["Take T-1", "/take 1"],
        ["Take T-2", "/take 2"],
        ["Take T-3", "/take 3"],
        ["Queue", "/queue"],
    ]

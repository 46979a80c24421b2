"""Two processes routing at the same moment never give an agent more than their capacity: each routing
transaction reads the loads under the routing lock (PostgreSQL) or the one write lock (SQLite)."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.app import App
from bot.core.messages import InboundMessage
from bot.settings import NluSettings, Settings
from channels.memory import MemoryChannel
from crm_store.models import Ticket
from crm_store.repositories import agents as agents_repo


async def test_two_processes_handing_off_at_once_fill_an_agent_to_capacity_and_queue_the_rest(db):
    async with db.sessions() as s, s.begin():
        agent = await agents_repo.add_agent(s, name="Mei", addresses={"memory": "mei"}, languages=["en"])
        capacity = agent.capacity
    settings = Settings(database_url=db.url, database_schema=db.schema, nlu=NluSettings(enabled=False), channels=[])
    apps = [App(settings, channels=[MemoryChannel("memory")]) for _ in range(2)]  # as two workers on one database
    for app in apps:
        await app.start()
    try:
        await asyncio.gather(
            *(
                app.deliver(
                    InboundMessage.build(
                        channel="memory", external_id=f"m{k}-{i}", sender=f"c{k}-{i}", text="I need a person please"
                    )
                )
                for k, app in enumerate(apps)
                for i in range(capacity)
            )
        )
    finally:
        for app in apps:
            await app.stop()
    async with db.sessions() as s:
        assigned = await s.scalar(select(func.count()).where(Ticket.assignee_id == agent.id))
        waiting = await s.scalar(select(func.count()).where(Ticket.assignee_id.is_(None)))
    assert (assigned, waiting) == (capacity, capacity)  # before the lock: all ten assigned to an agent of five

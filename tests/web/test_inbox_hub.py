"""The inbox's one live poller per process, against the real database and Redis: one statement per tick however
many pages are open, each page told only what changed for its viewer, a page that does not keep up dropped
(not buffered), and the Redis stores of presence and form keys with keys that lapse."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from sqlalchemy import event

from bot.web.auth import Viewer
from bot.web.inbox import shared
from bot.web.inbox.hub import LiveHub, Page
from bot.web.inbox.shared import RedisFormClaims, RedisPresence
from crm_store.models import Contact, Customer, Ticket


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


def _viewer(agent_id: int, name: str, role: str = "supervisor") -> Viewer:
    return Viewer(agent_id=agent_id, name=name, role=role, tiers=(), csrf="")


async def _tickets(db, n: int) -> list[int]:
    async with db.sessions() as s, s.begin():
        customer = Customer(name="Vera", tier="VIP")
        s.add(customer)
        await s.flush()
        rows = [
            Ticket(customer_id=customer.id, channel="webchat", tier_at_open="VIP", queue="vip", status="open")
            for _ in range(n)
        ]
        s.add_all(rows)
        await s.flush()
        return [t.id for t in rows]


class Statements:
    """Counts the SQL statements sent on an engine while it is attached (but BEGIN)."""

    def __init__(self, engine) -> None:
        self.engine, self.n = engine.sync_engine, 0

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)

    def _count(self, conn, cursor, statement: str, *args: object) -> None:
        self.n += not statement.startswith("BEGIN")  # SQLite's own transaction start is no read


def _drain(page: Page) -> list[bytes | None]:
    out = []
    while not page.frames.empty():
        out.append(page.frames.get_nowait())
    return out


def _events(frames: list[bytes | None]) -> list[str]:
    return [f.split(b"\n", 1)[0].removeprefix(b"event: ").decode() for f in frames if f]


async def test_one_statement_per_tick_however_many_pages_are_open(db, redis, redis_prefix):
    tids = await _tickets(db, 3)
    hub = LiveHub(db.sessions, RedisPresence(redis, redis_prefix), redis=redis, prefix=redis_prefix)
    first = await hub.join(_viewer(1, "Sue"), None, poll=False)
    with Statements(db.engine) as one_page:
        await hub.tick()
    assert one_page.n == 1 and _events(_drain(first)) == ["queues"]
    pages = [
        await hub.join(_viewer(10 + i, f"Agent {i}"), tids[i % 3] if i % 4 else None, poll=False) for i in range(12)
    ]
    with Statements(db.engine) as thirteen_pages:
        await hub.tick()
    assert thirteen_pages.n == 1
    assert all(_events(_drain(p))[:1] == ["queues"] for p in pages)
    with Statements(db.engine) as quiet:
        await hub.tick()
    assert quiet.n == 1 and not any(_drain(p) for p in [first, *pages])  # nothing changed: nothing sent
    async with db.sessions() as s, s.begin():
        s.add(
            Contact(
                channel="webchat",
                external_id="w-hub-1",
                direction="in",
                author="customer",
                address="v",
                customer_id=(await s.get(Ticket, tids[1])).customer_id,
                ticket_id=tids[1],
                text="Hello?",
            )
        )
    await hub.tick()
    told = {id(p): _events(_drain(p)) for p in pages}
    assert all(told[id(p)] == (["ticket"] if p.ticket_id == tids[1] else []) for p in pages)
    for page in [first, *pages]:
        await hub.leave(page)
    assert await RedisPresence(redis, redis_prefix).viewers(tids) == {t: [] for t in tids}


async def test_a_page_that_does_not_keep_up_is_dropped_and_the_others_go_on(db, redis, redis_prefix):
    [tid] = await _tickets(db, 1)
    presence = RedisPresence(redis, redis_prefix)
    hub = LiveHub(db.sessions, presence, redis=redis, prefix=redis_prefix, queue_frames=4)
    fast = await hub.join(_viewer(1, "Al"), tid, poll=False)
    slow = await hub.join(_viewer(2, "Bo"), tid, poll=False)
    seen: list[str] = []
    for i in range(6):  # each tick someone comes or goes: a presence frame for both pages
        await hub.tick()
        seen += _events(_drain(fast))
        if i % 2 == 0:
            visitor = await hub.join(_viewer(3 + i, f"Cy{i}"), tid, poll=False)
        else:
            await hub.leave(visitor)
    assert slow.dropped and slow not in hub.pages and fast in hub.pages
    assert _drain(slow) == [None]  # what it had waiting is gone; its stream ends at the marker
    assert seen.count("presence") >= 5 and not fast.dropped
    assert "Bo" in (await presence.viewers([tid]))[tid]  # until its stream ends
    await hub.leave(slow)
    assert (await presence.viewers([tid]))[tid] == ["Al"]


async def test_presence_in_redis_lapses_and_leaves(redis, redis_prefix):
    one, two = RedisPresence(redis, redis_prefix), RedisPresence(redis, redis_prefix)  # two processes
    await one.join(7, "page-a", "Al")
    await two.join(7, "page-b", "Bo")
    await two.join(7, "page-c", "Bo")  # Bo in two tabs: named once
    assert await one.viewers([7, 8]) == {7: ["Al", "Bo"], 8: []}
    key = f"{redis_prefix}:inbox:viewing:7"
    assert 0 < await redis.pttl(key) <= shared.PRESENCE_TTL_S * 1000
    await redis.zadd(key, {"page-d|Cy": 1})  # lapsed long ago: its process died without leaving
    assert await two.viewers([7]) == {7: ["Al", "Bo"]}
    assert await redis.zscore(key, "page-d|Cy") is None
    await two.leave(7, "page-b", "Bo")
    assert await one.viewers([7]) == {7: ["Al", "Bo"]}
    await two.leave(7, "page-c", "Bo")
    await one.leave(7, "page-a", "Al")
    assert await one.viewers([7]) == {7: []} and not await redis.exists(key)


async def test_form_keys_in_redis_are_claimed_once_and_released_when_nothing_was_written(redis, redis_prefix):
    one, two = RedisFormClaims(redis, redis_prefix), RedisFormClaims(redis, redis_prefix)
    results = await asyncio.gather(*(c.claim("a" * 32) for c in (one, two, one, two)))
    assert sorted(results) == [False, False, False, True]
    holder = one if one._held else two
    await holder.finish("a" * 32, written=False)  # refused: posting it again runs again
    assert await two.claim("a" * 32)
    await two.finish("a" * 32, written=True)
    assert not await one.claim("a" * 32)
    ttl = await redis.pttl(f"{redis_prefix}:inbox:form:{'a' * 32}")
    assert shared.FORM_HOLD_S * 1000 < ttl <= shared.FORM_DONE_S * 1000

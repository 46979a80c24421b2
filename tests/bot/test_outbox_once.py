"""Effectively-once delivery on SQLite and PostgreSQL: a sender holds at most `outbox.concurrency` sends that are
not yet recorded, keeps the rows it holds leased while it lives, gives them back when it stops, and after a
crash re-sends what it held first, with the same idempotency key (here: a webhook receiver on loopback)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from aiohttp import web
from sqlalchemy import select

from bot.core.messages import OutboundMessage, utcnow
from bot.core.outbox_worker import OutboxWorker
from bot.core.send_recorder import is_outage, retry_delay
from bot.settings import OutboxSettings
from channels.base import ChannelRegistry
from channels.webhook import WebhookChannel
from crm_store.engine import make_sessionmaker
from crm_store.models import OutboxItem
from crm_store.repositories import outbox as outbox_repo


class HeldChannel:
    """Sends only when the test lets them go, and counts how many are in flight meanwhile."""

    name = "held"

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0
        self.sent: list[str] = []
        self._changed = asyncio.Condition()

    async def start(self, deliver) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, message: OutboundMessage) -> str:
        async with self._changed:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self._changed.notify_all()
        await self.go.wait()
        self.in_flight -= 1
        self.sent.append(message.recipient)
        return f"held-{len(self.sent)}"

    async def wait_in_flight(self, n: int) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.in_flight >= n), 10)


def _registry(*channels) -> ChannelRegistry:
    registry = ChannelRegistry()
    for channel in channels:
        registry.add(channel)
    return registry


async def _rows(db, channel: str, n: int, *, claimed_by: str | None = None, leased_for: float = 0.0) -> list[int]:
    at = utcnow()
    async with make_sessionmaker(db.engine, writer=True)() as s, s.begin():
        items = [
            OutboxItem(
                idempotency_key=f"{channel}-{i}",
                channel=channel,
                recipient=f"r{i}",
                text=f"reply {i}",
                author="bot",
                status="pending",
                attempts=1 if claimed_by else 0,
                claimed_by=claimed_by,
                next_attempt_at=at + timedelta(seconds=leased_for),
                created_at=at,
                buttons=[],
                meta={},
            )
            for i in range(n)
        ]
        s.add_all(items)
        await s.flush()
        return [item.id for item in items]


def _sends_counted(channel: str) -> float:
    from bot.core.metrics import REGISTRY

    value = REGISTRY.get_sample_value("tierdesk_outbox_sends_total", {"channel": channel, "outcome": "sent"})
    return value or 0.0


async def _statuses(db) -> dict[str, int]:
    async with db.sessions() as s:
        return await outbox_repo.counts_by_status(s)


def test_a_write_is_retried_only_when_the_database_is_away():
    from sqlalchemy.exc import IntegrityError, OperationalError

    assert is_outage(OperationalError("SELECT 1", {}, ConnectionRefusedError()))
    assert is_outage(ConnectionRefusedError()) and is_outage(TimeoutError())
    assert not is_outage(IntegrityError("INSERT", {}, ValueError("duplicate key")))
    assert not is_outage(ValueError("bad row"))
    assert [retry_delay(n) for n in (1, 2, 3, 5, 9)] == [0.1, 0.2, 0.4, 1.6, 2.0]


async def test_no_more_than_concurrency_sends_are_unrecorded_at_once(db):
    channel = HeldChannel()
    ids = await _rows(db, "held", 20)
    worker = OutboxWorker(
        make_sessionmaker(db.engine, writer=True), _registry(channel), OutboxSettings(concurrency=4, batch=50)
    )
    counted = _sends_counted("held")
    passing = asyncio.create_task(worker.drain_once())
    await channel.wait_in_flight(4)
    await asyncio.sleep(0.2)  # nothing more starts while four are unrecorded
    assert channel.in_flight == 4 and not channel.sent
    channel.go.set()
    assert await passing == 20
    assert channel.most_in_flight == 4 and sorted(channel.sent) == sorted(f"r{i}" for i in range(20))
    assert await _statuses(db) == {"sent": 20}
    assert _sends_counted("held") == counted + 20
    async with db.sessions() as s:
        assert not list(
            await s.scalars(select(OutboxItem).where(OutboxItem.claimed_by.is_not(None), OutboxItem.id.in_(ids)))
        )


async def test_a_sender_renews_what_it_holds_and_nobody_else_takes_it(db):
    channel = HeldChannel()
    await _rows(db, "held", 1)
    cfg = OutboxSettings(lease_s=0.6, sender_id="alive", poll_interval_s=0.05)
    writer = make_sessionmaker(db.engine, writer=True)
    holder = OutboxWorker(writer, _registry(channel), cfg)
    holder.start()
    await channel.wait_in_flight(1)  # claimed and being sent
    other = OutboxWorker(writer, _registry(HeldChannel()), OutboxSettings(sender_id="other"))
    for _ in range(4):  # well past the 0.6 s lease: the heartbeat keeps it
        await asyncio.sleep(0.4)
        async with db.sessions() as s:
            row = await s.scalar(select(OutboxItem))
        assert row.claimed_by == "alive" and row.next_attempt_at > utcnow()
        assert await other.drain_once() == 0
    channel.go.set()
    await holder.stop()
    assert channel.sent == ["r0"] and await _statuses(db) == {"sent": 1}


async def test_a_clean_stop_gives_back_what_was_handed_over_but_not_sent(db):
    ids = await _rows(db, "held", 3, claimed_by="leaving", leased_for=60)
    leaving = OutboxWorker(
        make_sessionmaker(db.engine, writer=True), _registry(HeldChannel()), OutboxSettings(sender_id="leaving")
    )
    async with db.sessions() as s:  # handed over by the dispatcher; the process stops before sending them
        leaving.adopt([outbox_repo.Reply.of(item) for item in await s.scalars(select(OutboxItem))])
    await leaving.stop()
    async with db.sessions() as s:
        rows = list(await s.scalars(select(OutboxItem).where(OutboxItem.id.in_(ids))))
    assert [r.status for r in rows] == ["pending"] * 3
    assert all(r.claimed_by is None and r.next_attempt_at <= utcnow() for r in rows), "due now, for anyone"


async def test_a_restarted_sender_resends_what_it_held_first_with_the_same_key(db, unused_tcp_port):
    seen: list[tuple[str, str]] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append((request.headers["Idempotency-Key"], request.headers["X-Tierdesk-Delivery"]))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    try:
        ids = await _rows(db, "webhook", 3, claimed_by="worker-1", leased_for=60)  # held when it died
        async with make_sessionmaker(db.engine, writer=True)() as s, s.begin():
            for item in await s.scalars(select(OutboxItem).where(OutboxItem.id.in_(ids))):
                item.recipient = f"http://127.0.0.1:{unused_tcp_port}/hook"
        writer = make_sessionmaker(db.engine, writer=True)
        hook_channel = WebhookChannel("secret")
        stranger = OutboxWorker(writer, _registry(hook_channel), OutboxSettings(sender_id="worker-2"))
        assert await stranger.resume() == 0 and await stranger.drain() == 0, "still leased to worker-1"
        restarted = OutboxWorker(writer, _registry(hook_channel), OutboxSettings(sender_id="worker-1"))
        assert await restarted.resume() == 3
        assert await restarted.drain() == 3
        await restarted.recorder.close(1.0)
        await hook_channel.stop()
    finally:
        await runner.cleanup()
    assert sorted(seen) == [(f"webhook-{i}", f"webhook-{i}") for i in range(3)]
    assert await _statuses(db) == {"sent": 3}

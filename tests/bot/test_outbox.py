"""The outbox on SQLite and PostgreSQL: replies this process can send are leased to its worker as they are written
and go out without a claiming transaction; if the process dies before sending, they go out later anyway, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from bot.app import App
from bot.core.messages import InboundMessage, utcnow
from bot.core.outbox_worker import OutboxWorker
from channels.base import ChannelRegistry
from channels.memory import MemoryChannel
from crm_store.models import Contact, OutboxItem
from tests.bot.conftest import settings_for


async def test_a_reply_written_by_the_dispatcher_is_sent_without_claiming_it(h):
    r = await h.ch["telegram"].receive("501", "my parcel is late")
    await h.settle()
    assert h.ch["telegram"].sent_to("501"), "the acknowledgement reached the customer"
    async with h.app.sessions() as s:
        item = await s.scalar(select(OutboxItem).where(OutboxItem.ticket_id == r.ticket_id,
                                                       OutboxItem.recipient == "501"))
        logged = await s.scalar(select(func.count()).select_from(Contact).where(
            Contact.direction == "out", Contact.ticket_id == r.ticket_id))
    # leased at birth for a minute, so only the hand-over can have sent it this soon, and no claim counted a try
    assert item.status == "sent" and item.attempts == 1 and item.external_id
    assert logged == 1  # the delivered reply is an outbound contact, once


async def test_a_reply_whose_process_died_before_sending_goes_out_after_its_lease_once(db):
    lost: list = []
    first = App(settings_for(db), channels=[MemoryChannel("telegram")])
    await first.start()
    first.dispatcher.on_outbox = lost.extend  # the process dies between commit and send: its worker never has them
    try:
        r = await first.dispatcher.deliver(
            InboundMessage.build(channel="telegram", external_id="m1", sender="601", text="hello?"))
    finally:
        first.dispatcher.on_outbox = lambda items: None
        await first.stop()
    assert lost and all(item.attempts == 1 for item in lost)
    async with first.sessions() as s:
        pending = (await s.scalars(select(OutboxItem).where(OutboxItem.status == "pending"))).all()
    assert [p.id for p in pending] == [i.id for i in lost]
    assert all(p.next_attempt_at > utcnow() + timedelta(seconds=30) for p in pending)  # still leased

    channel = MemoryChannel("telegram")
    registry = ChannelRegistry()
    registry.add(channel)
    worker = OutboxWorker(_writer(db), registry, settings_for(db).outbox)
    assert await worker.drain() == 0, "nothing is taken while the lease holds"
    async with _writer(db)() as s, s.begin():  # time passes: the lease runs out
        await s.execute(update(OutboxItem).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    for _ in range(3):
        await worker.drain()
    assert len(channel.sent_to("601")) == 1  # delivered once, by the next worker
    async with db.sessions() as s:
        item = await s.get(OutboxItem, lost[0].id)
        logged = await s.scalar(select(func.count()).select_from(Contact).where(
            Contact.direction == "out", Contact.ticket_id == r.ticket_id))
    assert item.status == "sent" and logged == 1


def _writer(db):
    from crm_store.engine import make_sessionmaker

    return make_sessionmaker(db.engine, writer=True)


async def test_a_database_restart_loses_no_message_and_sends_no_reply_twice(harness_factory, db):
    """Pooled connections die with the server's backends (a restart, a failover): the next batch and the next
    record of sends notice, take a new connection and carry on."""
    if db.kind == "sqlite":
        pytest.skip("an embedded SQLite file has no server to restart")
    h = await harness_factory()
    first = await h.ch["telegram"].receive("701", "before the restart")
    await h.settle()
    async with db.engine.connect() as conn:  # what a restart does to every connection the app holds
        killed = await conn.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE application_name = 'tierdesk:{db.schema}' AND pid <> pg_backend_pid()")
        assert killed.scalar() >= 1
    second = await h.ch["telegram"].receive("702", "after the restart")
    await h.settle()
    assert second.contact_id and second.ticket_id != first.ticket_id
    assert len(h.ch["telegram"].sent_to("702")) == 1  # its acknowledgement, once
    async with db.sessions() as s:
        item = await s.scalar(select(OutboxItem).where(OutboxItem.recipient == "702"))
        logged = await s.scalar(select(func.count()).select_from(Contact).where(
            Contact.direction == "out", Contact.address == "702"))
    assert item.status == "sent" and logged == 1


async def test_a_worker_with_nothing_due_takes_no_write_lock(sqlite_db):
    """On SQLite a claim takes the database's one write lock: a worker polling an empty or fully leased outbox
    looks first with a read, and claims only when something is due."""
    from sqlalchemy import event

    from crm_store.engine import make_sessionmaker

    db = sqlite_db
    registry = ChannelRegistry()
    channel = MemoryChannel("telegram")
    registry.add(channel)
    worker = OutboxWorker(_writer(db), registry, settings_for(db).outbox, readers=make_sessionmaker(db.engine))
    statements: list[str] = []
    event.listen(db.engine.sync_engine, "before_cursor_execute",
                 lambda conn, cur, statement, *rest: statements.append(statement))
    for _ in range(3):
        assert await worker.drain() == 0
    assert statements and not any(s.startswith("BEGIN IMMEDIATE") for s in statements)
    async with _writer(db)() as s, s.begin():
        s.add(OutboxItem(idempotency_key="k1", channel="telegram", recipient="701", text="hi", author="bot",
                         status="pending", attempts=0, next_attempt_at=utcnow() - timedelta(seconds=1),
                         created_at=utcnow(), buttons=[], meta={}))
        s.add(OutboxItem(idempotency_key="k2", channel="email", recipient="x@y.z", text="hi", author="bot",
                         status="pending", attempts=0, next_attempt_at=utcnow() - timedelta(seconds=1),
                         created_at=utcnow(), buttons=[], meta={}))
    statements.clear()
    assert await worker.drain() == 1  # the telegram one; email is not this worker's channel
    assert any(s.startswith("BEGIN IMMEDIATE") for s in statements) and len(channel.sent_to("701")) == 1
    statements.clear()
    assert await worker.drain() == 0
    assert not any(s.startswith("BEGIN IMMEDIATE") for s in statements), "the email reply alone claims nothing"

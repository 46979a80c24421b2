"""The outbox on SQLite and PostgreSQL: replies this process can send are leased to its worker as they are written
and go out without a claiming transaction; if the process dies before sending, they go out later anyway, once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from bot.app import App
from bot.messages import InboundMessage, utcnow
from bot.outbox_worker import OutboxWorker
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

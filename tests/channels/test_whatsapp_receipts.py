"""WhatsApp delivery receipts on both databases: stored once each however often they come, found with the ticket
of the message they are about; the migration that holds them goes down and up again."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import inspect, select

from bot.core import receipts
from crm_store.models import Contact, Customer, OutboxItem, Ticket
from crm_store.receipts import DeliveryReceipt
from tests.conftest import migrate

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


async def seed(s) -> int:
    customer = Customer(name="Mei")
    s.add(customer)
    await s.flush()
    ticket = Ticket(customer_id=customer.id, channel="whatsapp")
    s.add(ticket)
    await s.flush()
    s.add_all(
        [
            Contact(
                channel="whatsapp",
                external_id="wamid.out.1",
                direction="out",
                author="agent",
                address="4915",
                customer_id=customer.id,
                ticket_id=ticket.id,
                text="Shipped",
                created_at=AT,
            ),
            OutboxItem(
                idempotency_key="t1:r1",
                channel="whatsapp",
                recipient="4915",
                text="Shipped",
                status="sent",
                external_id="wamid.out.1",
                ticket_id=ticket.id,
                customer_id=customer.id,
                author="agent",
            ),
        ]
    )
    return ticket.id


async def test_receipts_are_stored_once_with_their_ticket(db):
    async with db.sessions() as s, s.begin():
        ticket_id = await seed(s)
    batch = [
        {"external_id": "wamid.out.1", "status": "delivered"},
        {"external_id": "wamid.out.1", "status": "read"},
        {"external_id": "wamid.out.1", "status": "delivered"},
        {"external_id": "wamid.other", "status": "sent"},
    ]
    async with db.sessions() as s, s.begin():
        assert await receipts.record(s, "whatsapp", batch, at=AT) == 3
    async with db.sessions() as s, s.begin():
        assert await receipts.record(s, "whatsapp", batch[:2], at=AT) == 0  # redelivered: nothing new
        failed = [{"external_id": "wamid.out.1", "status": "failed", "error": "131026 Message undeliverable"}]
        assert await receipts.record(s, "whatsapp", failed, at=AT) == 1
    async with db.sessions() as s:
        rows = list(
            await s.execute(
                select(DeliveryReceipt.external_id, DeliveryReceipt.status, DeliveryReceipt.ticket_id).order_by(
                    DeliveryReceipt.id
                )
            )
        )
        ticket = await s.get(Ticket, ticket_id)
        followups = list(await s.scalars(select(OutboxItem.idempotency_key).where(OutboxItem.id > 1)))
        reply = await s.scalar(select(OutboxItem).where(OutboxItem.idempotency_key == "t1:r1"))
    assert rows == [
        ("wamid.out.1", "delivered", ticket_id),
        ("wamid.out.1", "read", ticket_id),
        ("wamid.other", "sent", None),
        ("wamid.out.1", "failed", ticket_id),
    ]
    assert ticket.delivery_problem == "whatsapp: not delivered (131026 Message undeliverable)"
    assert followups == []  # the reply has no agent to tell
    assert (reply.status, reply.last_error) == (
        "failed",
        "reported by whatsapp after the send: 131026 Message undeliverable",
    )


async def test_a_reply_refused_for_the_window_goes_again_as_the_template_once(db):
    async with db.sessions() as s, s.begin():
        await seed(s)
    refused = [{"external_id": "wamid.out.1", "status": "failed", "error": "131047 Re-engagement message"}]
    for _ in range(2):
        async with db.sessions() as s, s.begin():
            await receipts.record(s, "whatsapp", refused, at=AT, template=True)
    async with db.sessions() as s:
        again = list(await s.scalars(select(OutboxItem).where(OutboxItem.idempotency_key != "t1:r1")))
    assert [(i.idempotency_key, i.recipient, i.text, i.status, i.meta["whatsapp_template"]) for i in again] == [
        ("o1:template", "4915", "Shipped", "pending", "1")
    ]


async def test_the_receipts_migration_goes_down_and_up(db):
    def tables(sync_conn) -> set[str]:
        return set(inspect(sync_conn).get_table_names(schema=db.schema))

    await migrate(db, "0012_tier_history", down=True)
    async with db.engine.connect() as conn:
        assert "delivery_receipts" not in await conn.run_sync(tables)
    await migrate(db, "0013_channels")
    async with db.engine.connect() as conn:
        assert "delivery_receipts" in await conn.run_sync(tables)

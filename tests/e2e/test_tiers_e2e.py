"""Import → tiers compute → a VIP's message reaches their key-account manager with the VIP SLA
(the running App with in-memory channels, on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.app import App
from bot.importers.csv_import import import_customers, import_purchases
from bot.routing.tier_service import compute_and_store
from bot.settings import DispatchSettings, NluSettings, OutboxSettings, Settings
from channels.memory import MemoryChannel
from crm_store.models import Customer, Ticket, TicketEvent
from crm_store.repositories import agents as agents_repo


def value_files(today: datetime) -> tuple[str, str]:
    """ACME-1 and nine other big accounts, 20 mid-size and 20 small customers, 5 who never bought."""
    customers = ["customer,name,email,telegram,language,key_account_manager"]
    customers.append("ACME-1,Acme Corp,buyer@acme.test,4242,en,kim@desk.test")
    purchases = ["customer,amount,currency,occurred_at"]
    groups = [("BIG", 9, 40, 900.0, 3), ("MID", 20, 8, 120.0, 40), ("SMALL", 20, 1, 15.0, 300)]
    for prefix, n, orders, amount, days_ago in groups:
        for i in range(n):
            customers.append(f"{prefix}-{i},{prefix.title()} {i},{prefix.lower()}{i}@example.test,,en,")
            for j in range(orders):
                when = (today - timedelta(days=days_ago + j, minutes=i)).isoformat()
                purchases.append(f"{prefix}-{i},{amount + i:.2f},EUR,{when}")
    for j in range(45):
        when = (today - timedelta(days=1 + j % 4, hours=j)).isoformat()
        purchases.append(f"buyer@acme.test,{1000 + j:.2f},EUR,{when}")
    customers.extend(f"NEW-{i},New {i},,,," for i in range(5))
    return "\n".join(customers) + "\n", "\n".join(purchases) + "\n"


async def test_a_vip_message_goes_to_the_key_account_manager_with_the_vip_sla(db):
    channels = {n: MemoryChannel(n) for n in ("telegram", "console")}
    settings = Settings(
        database_url=db.url, database_schema=db.schema, nlu=NluSettings(enabled=False),
        outbox=OutboxSettings(backoff_base_s=0.0, poll_interval_s=0.05), dispatch=DispatchSettings(batch_wait_ms=1.0),
    )
    app = App(settings, channels=list(channels.values()))
    await app.start()
    try:
        async with app.sessions() as s, s.begin():
            other = await agents_repo.add_agent(s, name="Oscar", addresses={"console": "oscar"})
            kim = await agents_repo.add_agent(s, name="Kim", email="kim@desk.test", tiers=["VIP", "important"],
                                              addresses={"console": "kim"})
        customers_csv, purchases_csv = value_files(datetime.now(UTC))
        imported = await import_customers(app.sessions, customers_csv)
        assert imported.problems == [] and imported.created == 55
        bought = await import_purchases(app.sessions, purchases_csv)
        assert bought.problems == [] and bought.created == 9 * 40 + 20 * 8 + 20 + 45

        summary = await compute_and_store(app.sessions, method="rfm-kmeans", k=3)
        assert summary.report["method"] == "rfm-kmeans"
        async with app.sessions() as s:
            acme = await s.scalar(select(Customer).where(Customer.external_ref == "ACME-1"))
            tiers = dict((await s.execute(select(Customer.external_ref, Customer.tier))).all())
        assert acme.tier == "VIP" and acme.tier_reason.startswith("VIP: spent 45,990 over 45 orders")
        assert acme.key_account_manager_id == kim.id
        assert {tiers[f"BIG-{i}"] for i in range(9)} == {"VIP"}
        assert {tiers[f"SMALL-{i}"] for i in range(20)} == {"ordinary"}
        assert {tiers[f"NEW-{i}"] for i in range(5)} == {"potential"}

        result = await channels["telegram"].receive("4242", "Our invoice is wrong, please call me")
        await app.outbox.drain()
        assert result.customer_id == acme.id
        async with app.sessions() as s:
            ticket = await s.get(Ticket, result.ticket_id)
            routed = await s.scalar(
                select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "routed")
            )
        assert ticket.assignee_id == kim.id != other.id  # the KAM, although Oscar is as free and comes first
        assert routed.data["reason"] == "key-account manager"
        assert ticket.tier_at_open == "VIP" and ticket.queue == "vip" and ticket.priority == 1
        assert ticket.first_response_due - routed.at == timedelta(minutes=15)
        assert ticket.resolution_due - routed.at == timedelta(hours=4)
        assert any(f"T-{ticket.id}" in text for text in channels["console"].sent_to("kim"))
        assert not channels["console"].sent_to("oscar")
    finally:
        await app.stop()

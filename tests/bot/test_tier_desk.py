"""`/atrisk` and the customer card's outlook in the desk, on the hand-built history of tests/bot/test_tier_history.py
(SQLite and PostgreSQL, through the App and the in-memory console channel)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from crm_store.models import ValueEvent
from tests.bot.test_tier_history import two_runs


async def ask(h, who: str, text: str) -> str:
    before = len(h.ch["console"].sent_to(who))
    await h.ch["console"].receive(who, text)
    await h.settle()
    answers = h.ch["console"].sent_to(who)[before:]
    assert answers, f"no answer to {text!r}"
    return "\n".join(answers)


async def test_atrisk_lists_the_hand_built_answer_for_supervisors_only(h, db):
    await h.agent("Sue", role="supervisor")
    await h.agent("Al", role="agent")
    await two_runs(db, datetime.now(UTC))
    shown = await ask(h, "sue", "/atrisk")
    lines = shown.splitlines()
    assert lines[0] == "Valuable customers at risk (most valuable first, 4 shown):"
    assert [line.split(" ", 1)[0] for line in lines[1:]] == ["C-1", "C-6", "C-3", "C-4"]
    assert lines[1] == (
        "C-1 Customer 1 · VIP · 12-month value 900 · alive 50% · KAM Kim — probability alive fell from 90% to 50%"
    )
    assert lines[3].endswith("KAM — — 1 complaint in 30 days")
    assert (await ask(h, "sue", "/atrisk 2")).splitlines()[0].endswith("2 shown):")
    assert "Usage: /atrisk" in await ask(h, "sue", "/atrisk many")
    refused = await ask(h, "al", "/atrisk")
    assert "C-1" not in refused
    assert "/atrisk" in await ask(h, "sue", "/help") and "/atrisk" not in await ask(h, "al", "/help")


async def test_customer_card_shows_predicted_value_and_probability_alive_with_a_reason(h, db):
    await h.agent("Sue", role="supervisor")
    now = datetime.now(UTC)
    await two_runs(db, now)
    async with db.sessions() as s, s.begin():
        for i, days in enumerate((200, 120, 12)):
            s.add(
                ValueEvent(
                    customer_id=1,
                    amount=Decimal("300.00"),
                    occurred_at=now - timedelta(days=days),
                    source_key=f"card-{i}",
                )
            )
    card = await ask(h, "sue", "/customer C-1")
    assert (
        "Outlook: 900.00 predicted over 12 months · probability alive 50% — 3 orders, the last 12 days ago: "
        "buying at their usual pace"
    ) in card
    never = await ask(h, "sue", "/customer C-5")
    assert "Outlook: no purchases yet, nothing to forecast" in never


async def test_checkin_writes_to_the_customer_on_a_new_ticket_of_the_agents(h, db):
    from sqlalchemy import select

    from crm_store.models import Identity, Ticket

    sue = await h.agent("Sue", role="supervisor")
    await two_runs(db, datetime.now(UTC))
    async with db.sessions() as s, s.begin():
        s.add(Identity(customer_id=1, channel="telegram", address="5001"))
    answer = await ask(h, "sue", "/checkin C-1 Hello from your account manager, how are things?")
    assert "Queued for Customer 1" in answer
    assert h.ch["telegram"].sent_to("5001") == ["Hello from your account manager, how are things?"]
    async with db.sessions() as s:
        ticket = await s.scalar(select(Ticket).where(Ticket.customer_id == 1, Ticket.source == "agent"))
    assert ticket.assignee_id == sue.id and ticket.channel == "telegram" and ticket.status == "pending"
    assert "no address to write to" in await ask(h, "sue", "/checkin C-2 Hello?")
    assert "Usage: /checkin" in await ask(h, "sue", "/checkin C-1")
    async with db.sessions() as s:
        assert await s.scalar(select(Ticket).where(Ticket.customer_id == 2, Ticket.source == "agent")) is None

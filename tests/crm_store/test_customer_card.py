"""The customer card's figures in one read (crm_store.repositories.customer_card) agree with the figure-by-figure
reads they replace, on both databases: value, purchases, the newest run's prediction, the key-account manager, a
merged customer followed to its survivor, and a customer nobody has."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.routing import tier_history
from crm_store.errors import NotFound
from crm_store.models import Agent, Customer, TierAssignment, TierRun, ValueEvent
from crm_store.repositories import customer_card, reports
from crm_store.repositories import customers as customers_repo


async def _customer(s, **fields) -> Customer:
    customer = Customer(name=fields.pop("name", "Ann"), tier=fields.pop("tier", "VIP"), **fields)
    s.add(customer)
    await s.flush()
    return customer


async def test_the_card_figures_are_the_ones_read_one_by_one(db):
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    async with db.sessions.begin() as s:
        kam = Agent(name="Kim", role="agent")
        s.add(kam)
        await s.flush()
        ann = await _customer(s, key_account_manager_id=kam.id)
        other = await _customer(s, name="Bo")
        for days, amount in ((40, "120.50"), (10, "80.00"), (5, "-30.25")):
            s.add(
                ValueEvent(
                    customer_id=ann.id,
                    amount=Decimal(amount),
                    occurred_at=at - timedelta(days=days),
                    source_key=f"ann-{days}",
                )
            )
        s.add(ValueEvent(customer_id=other.id, amount=Decimal("999"), occurred_at=at, source_key="bo-1"))
        old, new = TierRun(method="quantiles", status="done"), TierRun(method="quantiles", status="done")
        s.add_all([old, new])
        await s.flush()
        s.add_all(
            [
                TierAssignment(
                    run_id=old.id, customer_id=ann.id, tier="VIP", computed_tier="VIP", predicted_value=1.0, p_alive=0.1
                ),
                TierAssignment(
                    run_id=new.id,
                    customer_id=ann.id,
                    tier="VIP",
                    computed_tier="VIP",
                    predicted_value=310.0,
                    p_alive=0.85,
                ),
            ]
        )
    async with db.sessions() as s:
        card = await customer_card.card_figures(s, ann.id)
        assert card.customer.id == ann.id and card.key_account_manager.name == "Kim"
        assert card.value == await reports.customer_value(s, ann.id)
        assert (card.total, card.events, card.purchases) == (170.25, 3, 2)
        assert card.last == at - timedelta(days=5)
        assert (card.predicted_value, card.p_alive) == (310.0, 0.85)
        assert tier_history.outlook_of(card.predicted_value, card.p_alive, card.purchases, card.last, at) == (
            await tier_history.customer_outlook(s, ann.id, at)
        )
        bare = await customer_card.card_figures(s, (await _customer(s, name="Cy")).id)
        assert (bare.total, bare.events, bare.purchases, bare.last) == (0.0, 0, 0, None)
        assert (bare.predicted_value, bare.key_account_manager) == (None, None)


async def test_a_merged_customer_is_followed_and_nobody_is_not_found(db):
    async with db.sessions.begin() as s:
        survivor = await _customer(s, name="Survivor")
        merged = await _customer(s, name="Merged", merged_into_id=survivor.id)
    async with db.sessions() as s:
        card = await customer_card.card_figures(s, merged.id)
        assert card.customer.id == survivor.id == (await customers_repo.get_customer(s, merged.id)).id
        with pytest.raises(NotFound):
            await customer_card.card_figures(s, 10**9)

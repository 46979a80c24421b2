"""The figures beside a customer's card, in one read: the customer, their value (total, payments, purchases and
the last one), the newest tier run's prediction for them and their key-account manager. The customer page and the
ticket page's customer card read this instead of one statement per figure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from crm_store.errors import NotFound
from crm_store.models import Agent, Customer, TierAssignment, ValueEvent


@dataclass(frozen=True)
class CardFigures:
    customer: Customer
    total: float
    events: int
    purchases: int
    last: datetime | None
    predicted_value: float | None
    p_alive: float | None
    key_account_manager: Agent | None

    @property
    def value(self) -> dict[str, Any]:
        """As reports.customer_value gives it (the templates' `value`)."""
        return {"total": self.total, "events": self.events, "last": self.last}


def _statement(customer_id: int) -> Any:
    value = (
        select(
            func.coalesce(func.sum(ValueEvent.amount), 0).label("total"),
            func.count().label("events"),
            func.count(ValueEvent.id).filter(ValueEvent.amount > 0).label("purchases"),
            func.max(ValueEvent.occurred_at).label("last"),
        )
        .where(ValueEvent.customer_id == customer_id)
        .subquery("v")
    )
    latest = (
        select(TierAssignment.predicted_value, TierAssignment.p_alive)
        .where(TierAssignment.customer_id == customer_id)
        .order_by(TierAssignment.run_id.desc())
        .limit(1)
        .subquery("a")
    )
    kam = aliased(Agent)
    return (
        select(
            Customer,
            value.c.total,
            value.c.events,
            value.c.purchases,
            value.c.last,
            latest.c.predicted_value,
            latest.c.p_alive,
            kam,
        )
        .select_from(Customer)
        .join(value, true())
        .outerjoin(latest, true())
        .outerjoin(kam, kam.id == Customer.key_account_manager_id)
        .where(Customer.id == customer_id)
    )


async def card_figures(session: AsyncSession, customer_id: int) -> CardFigures:
    """The customer's card figures; a merged customer is followed to the one it was merged into."""
    while True:
        row = (await session.execute(_statement(customer_id))).first()
        if row is None:
            raise NotFound(f"customer {customer_id} not found")
        customer, total, events, purchases, last, predicted, alive, kam = row
        if not customer.merged_into_id:
            return CardFigures(
                customer, float(total or 0), int(events or 0), int(purchases or 0), last, predicted, alive, kam
            )
        customer_id = customer.merged_into_id

"""Synthetic value data for demos and benchmarks: heavy-tailed spend, seasonality, lapsed customers, refunds,
customers with refunds only, first purchases spread over two years (tenure) so the last months can be held out.

`synthetic_purchases` makes plain arrays (the benchmark tiers 10 M purchases straight from them);
`seed_database` writes the same data as customers and value events with bulk inserts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_store.repositories import value as repo

HORIZON_DAYS = 730
PROSPECT_SHARE = 0.15
"""Customers who never bought: they become `potential`."""
REFUND_ONLY_SHARE = 0.01
"""Customers whose only events are refunds (of purchases made before the data begins): flagged, potential."""
LANGUAGES = ("en", "zh", "ru")


@dataclass(frozen=True, slots=True)
class SyntheticPurchases:
    n_customers: int
    customer_index: np.ndarray
    amount: np.ndarray
    age_days: np.ndarray
    referrals: np.ndarray
    loyalty: np.ndarray


def seasonal_day_weights(horizon: int, today: datetime) -> np.ndarray:
    """Relative purchase volume per day back from today: a yearly wave, a December peak, quieter weekends."""
    days = np.arange(horizon)
    dates = np.datetime64(today.date()) - days.astype("timedelta64[D]")
    month = dates.astype("datetime64[M]").astype(int) % 12 + 1
    weekday = (dates.astype("datetime64[D]").astype(int) + 3) % 7  # 0 = Monday
    w = 1.0 + 0.25 * np.sin(2 * np.pi * days / 365.0)
    w *= np.where(month == 12, 1.8, np.where(month == 11, 1.3, 1.0))
    w *= np.where(weekday >= 5, 0.8, 1.0)
    return w / w.sum()


def synthetic_purchases(
    n_customers: int, n_purchases: int, *, seed: int = 0, today: datetime | None = None
) -> SyntheticPurchases:
    """Pareto-distributed activity per customer, log-normal basket sizes, some customers lapsed for months."""
    rng = np.random.default_rng(seed)
    today = today or datetime.now(UTC)
    activity = rng.pareto(1.6, n_customers) + 0.05
    activity[rng.random(n_customers) < PROSPECT_SHARE] = 0.0
    if activity.sum() == 0:
        activity[:] = 1.0
    customer_index = rng.choice(n_customers, size=n_purchases, p=activity / activity.sum()).astype(np.int32)
    basket = rng.lognormal(0.0, 0.7, n_customers)
    amount = np.round(rng.lognormal(3.6, 0.9, n_purchases) * basket[customer_index], 2)
    refund = rng.random(n_purchases) < 0.03
    amount[refund] = -np.round(amount[refund] * rng.uniform(0.2, 1.0, int(refund.sum())), 2)
    amount[amount == 0] = 1.0
    age = rng.choice(HORIZON_DAYS, size=n_purchases, p=seasonal_day_weights(HORIZON_DAYS, today)).astype(np.float32)
    lapse = np.where(rng.random(n_customers) < 0.3, rng.uniform(60, 500, n_customers), 0.0).astype(np.float32)
    age = np.minimum(age + lapse[customer_index], HORIZON_DAYS - 1) + rng.random(n_purchases, dtype=np.float32)
    prospects = np.flatnonzero(activity == 0)
    refund_rows = np.flatnonzero(refund)
    refund_only = prospects[: min(len(prospects), len(refund_rows), round(n_customers * REFUND_ONLY_SHARE))]
    customer_index[refund_rows[: len(refund_only)]] = refund_only
    referrals = (rng.random(n_purchases) < 0.01).astype(np.int16)
    loyalty = np.clip(amount // 10, 0, None).astype(np.int32)
    return SyntheticPurchases(n_customers, customer_index, amount, age, referrals, loyalty)


async def seed_database(
    sessions: async_sessionmaker[AsyncSession],
    n_customers: int,
    n_purchases: int,
    *,
    seed: int = 0,
    progress: Callable[[str], None] = lambda _msg: None,
    today: datetime | None = None,
) -> tuple[int, int]:
    """Insert synthetic customers (external refs `seed<seed>-<n>`) and their purchases; refuses to seed twice."""
    if n_customers < 1 or n_purchases < 0:
        raise ValueError("need at least one customer and a non-negative number of purchases")
    today = today or datetime.now(UTC)
    prefix = f"seed{seed}-"
    async with sessions() as session:
        if await repo.customer_ids_by_ref(session, [f"{prefix}1"]):
            raise ValueError(f"customers {prefix}* exist already: use another --seed")
    data = synthetic_purchases(n_customers, n_purchases, seed=seed, today=today)
    rng = np.random.default_rng(seed + 7)
    langs = rng.choice(len(LANGUAGES), size=n_customers)
    ids: list[int] = []
    step = 50_000
    for start in range(0, n_customers, step):
        rows = [
            {
                "external_ref": f"{prefix}{i + 1}",
                "name": f"Customer {i + 1}",
                "language": LANGUAGES[langs[i]],
                "tier": "potential",
                "tier_reason": "no purchases yet",
            }
            for i in range(start, min(start + step, n_customers))
        ]
        async with sessions() as session, session.begin():
            ids.extend(await repo.bulk_insert_customers(session, rows))
        progress(f"customers: {len(ids)}/{n_customers}")
    id_array = np.asarray(ids, dtype=np.int64)
    step = 200_000
    for start in range(0, n_purchases, step):
        end = min(start + step, n_purchases)
        cidx = data.customer_index[start:end]
        at = [today - timedelta(days=float(d)) for d in data.age_days[start:end].tolist()]
        rows = [
            {
                "customer_id": int(cid),
                "amount": Decimal(f"{amt:.2f}"),
                "currency": "USD",
                "occurred_at": when,
                "referrals": int(ref),
                "loyalty_points": int(loy),
                "source_key": f"{prefix}{start + j}",
            }
            for j, (cid, amt, when, ref, loy) in enumerate(
                zip(
                    id_array[cidx].tolist(),
                    data.amount[start:end].tolist(),
                    at,
                    data.referrals[start:end].tolist(),
                    data.loyalty[start:end].tolist(),
                    strict=True,
                )
            )
        ]
        async with sessions() as session, session.begin():
            await repo.bulk_insert_value_events(session, rows)
        progress(f"purchases: {end}/{n_purchases}")
    return n_customers, n_purchases

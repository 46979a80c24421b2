"""The read side of tier runs: who moved between two runs (the migration matrix and the list behind one cell),
how tier sizes trend over runs, and the valuable customers at risk. The dashboard, the CLI and `/atrisk` read
these, so they show the same figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.routing.at_risk import SIGNAL_DAYS, VALUABLE_TIERS, AtRisk, CustomerSignals, customers_at_risk
from bot.routing.tiering import TIERS
from bot.routing.value_outlook import ValueOutlook, value_outlook
from crm_store.repositories import customer_card
from crm_store.repositories import tiering as tier_repo

NEW = "new"
"""The matrix row of customers who were not in the earlier run."""


@dataclass(frozen=True, slots=True)
class Migration:
    from_run: int | None
    to_run: int | None
    matrix: dict[str, dict[str, int]]
    """matrix[tier before][tier now] = customers; the row NEW holds customers who were not in the earlier run."""

    def as_dict(self) -> dict:
        return {"from_run": self.from_run, "to_run": self.to_run, "matrix": self.matrix}


def empty_matrix() -> dict[str, dict[str, int]]:
    return {old: dict.fromkeys(TIERS, 0) for old in (*TIERS, NEW)}


async def last_two_runs(session: AsyncSession) -> tuple[int | None, int | None]:
    """(the run before the last, the last run); None where there is none."""
    runs = await tier_repo.recent_runs(session, limit=2)
    ids = [r.id for r in runs]
    return (ids[1] if len(ids) > 1 else None), (ids[0] if ids else None)


async def migration(session: AsyncSession, from_run: int | None = None, to_run: int | None = None) -> Migration:
    """Customers per (tier in `from_run`, tier in `to_run`); by default the last run against the one before."""
    if to_run is None:
        before, to_run = await last_two_runs(session)
        from_run = before if from_run is None else from_run
    matrix = empty_matrix()
    if to_run is None:
        return Migration(from_run, to_run, matrix)
    if from_run is None:
        for tier, n in (await tier_repo.tier_sizes_by_run(session, [to_run]))[to_run].items():
            matrix[NEW][tier] = n
        return Migration(from_run, to_run, matrix)
    for old, new, n in await tier_repo.migration_counts(session, from_run, to_run):
        matrix[old if old in TIERS else NEW][new] += n
    return Migration(from_run, to_run, matrix)


async def size_trend(session: AsyncSession, runs: int = 12) -> list[dict]:
    """Customers per tier in each of the last `runs` runs, oldest first."""
    recent = list(reversed(await tier_repo.recent_runs(session, limit=runs)))
    sizes = await tier_repo.tier_sizes_by_run(session, [r.id for r in recent])
    return [
        {
            "run_id": r.id,
            "finished_at": r.finished_at,
            "method": r.method,
            "sizes": {t: sizes[r.id].get(t, 0) for t in TIERS},
        }
        for r in recent
    ]


async def moves(session: AsyncSession, old_tier: str, new_tier: str, *, limit: int = 1000) -> tuple[Migration, list]:
    """Customers who went from `old_tier` in the run before the last to `new_tier` in the last run."""
    for tier in (old_tier, new_tier):
        if tier not in TIERS:
            raise ValueError(f"{tier!r} is not a tier; use one of {', '.join(TIERS)}")
    before, last = await last_two_runs(session)
    span = Migration(before, last, {})
    if before is None or last is None:
        return span, []
    return span, await tier_repo.moved_customers(session, before, last, old_tier, new_tier, limit=limit)


async def at_risk(session: AsyncSession, now: datetime, *, limit: int = 100) -> list[AtRisk]:
    """Valuable customers of the last run whose probability alive fell or is low, or who complained or rated
    low lately, most valuable first."""
    before, last = await last_two_runs(session)
    if last is None:
        return []
    rows = await tier_repo.valuable_customers(session, last, VALUABLE_TIERS)
    earlier = await tier_repo.run_tiers(session, before) if before is not None else {}
    signals = await tier_repo.recent_ticket_signals(session, [r[0] for r in rows], now - timedelta(days=SIGNAL_DAYS))
    found = [
        CustomerSignals(
            cid,
            name or f"C-{cid}",
            tier,
            value,
            alive,
            earlier.get(cid, (None, None))[1],
            *signals.get(cid, (0, None)),
            key_account_manager=kam,
        )
        for cid, name, tier, value, alive, kam in rows
    ]
    return customers_at_risk(found, limit=limit)


async def customer_outlook(session: AsyncSession, customer_id: int, now: datetime) -> ValueOutlook:
    """The customer card's predicted 12-month value and probability alive from the newest run, with why."""
    card = await customer_card.card_figures(session, customer_id)
    return outlook_of(card.predicted_value, card.p_alive, card.purchases, card.last, now)


def outlook_of(predicted: float | None, p_alive: float | None, purchases: int, last: datetime | None,
               now: datetime) -> ValueOutlook:
    """The outlook from figures read already (the customer card reads them in one statement)."""
    days = (now - last).total_seconds() / 86_400 if last else None
    return value_outlook(predicted, p_alive, purchases, days)

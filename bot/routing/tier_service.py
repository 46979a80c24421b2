"""Tiering at the edges: load value features with one aggregate query, segment, store in one transaction.

A run writes the new tiers, the run record and the tier history together, so a crash part-way leaves the
previous tiers in force. `retier_loop` re-tiers on a schedule inside `tierdesk run`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.locks import JobTurns
from bot.routing.tiering import TIERS, TierResult, ValueTable, compute_tiers
from crm_store.repositories import tiering as tier_repo
from crm_store.repositories import value as value_repo

log = logging.getLogger(__name__)

REPORT_KEYS = ("method", "k", "silhouette", "stability_ari", "changed_since_last", "tiers")


@dataclass(frozen=True, slots=True)
class LoadedValues:
    values: ValueTable
    manual: dict[int, str]
    key_accounts: set[int]


@dataclass(frozen=True, slots=True)
class RunSummary:
    run_id: int
    customers: int
    changed: int
    report: dict


async def load_values(session: AsyncSession, as_of: datetime) -> LoadedValues:
    """RFM (+ referrals, loyalty) per live customer, manual tiers and key accounts, from one query."""
    rows = await value_repo.value_rows(session, as_of)
    n = len(rows)
    ids = np.empty(n, dtype=np.int64)
    recency = np.full(n, np.inf)
    frequency = np.zeros(n)
    monetary = np.zeros(n)
    referrals = np.zeros(n)
    loyalty = np.zeros(n)
    manual: dict[int, str] = {}
    kams: set[int] = set()
    for i, (cid, last_at, orders, spend, refs, loy, manual_tier, kam, _tier) in enumerate(rows):
        ids[i] = cid
        if last_at is not None:
            recency[i] = max((as_of - last_at).total_seconds() / 86_400, 0.0)
            frequency[i] = float(orders or 0)
            monetary[i] = float(spend or 0)
            referrals[i] = float(refs or 0)
            loyalty[i] = float(loy or 0)
        if manual_tier:
            manual[cid] = manual_tier
        if kam is not None:
            kams.add(cid)
    values = ValueTable(ids, recency, frequency, monetary, referrals, loyalty)
    return LoadedValues(values, manual, kams)


def report_object(run_report: dict, changed: int) -> dict:
    """The `tiers report --json` object: exactly the documented keys."""
    full = {**run_report, "changed_since_last": changed}
    return {key: full.get(key) for key in REPORT_KEYS}


async def compute_and_store(
    sessions: async_sessionmaker[AsyncSession],
    *,
    method: str = "kmeans",
    k: int | None = None,
    as_of: datetime | None = None,
    seed: int = 0,
) -> RunSummary:
    """Compute tiers for every customer and store them, the run and the history in ONE transaction."""
    started = datetime.now(UTC)
    as_of = as_of or started
    async with sessions() as session:
        loaded = await load_values(session, as_of)
    result: TierResult = await asyncio.to_thread(
        compute_tiers, loaded.values, method=method, k=k, manual=loaded.manual, key_accounts=loaded.key_accounts,
        seed=seed,
    )
    async with sessions() as session, session.begin():
        await value_repo.lock_for_writing(session)
        # Read the tiers in force inside the writing transaction, so the history compares with what it replaces.
        current = await tier_repo.current_tiers(session)
        updates, changes = [], []
        for cid, code, reason in zip(result.customer_ids.tolist(), result.codes.tolist(), result.reasons, strict=True):
            tier = TIERS[code]
            old = current.get(cid)
            if old is None:
                continue  # merged away meanwhile
            if old != (tier, reason):
                updates.append({"id": cid, "tier": tier, "tier_reason": reason})
            if old[0] != tier:
                changes.append({"customer_id": cid, "old_tier": old[0], "new_tier": tier, "reason": reason})
        report = result.report()
        report["changed_since_last"] = len(changes)
        report["customers"] = len(result.customer_ids)
        await tier_repo.write_tiers(session, updates)
        run_id = await tier_repo.record_run(
            session, started_at=started, method=result.method, k=result.k, silhouette=result.silhouette,
            stability_ari=result.stability_ari, changed=len(changes), report=report,
        )
        await tier_repo.record_changes(session, run_id, changes)
    return RunSummary(run_id=run_id, customers=len(result.customer_ids), changed=len(changes), report=report)


async def latest_report(sessions: async_sessionmaker[AsyncSession]) -> dict | None:
    """The last finished run's report (with its note), or None before the first run."""
    async with sessions() as session:
        run = await tier_repo.last_run(session)
        if run is None:
            return None
        return {**run.report, "changed_since_last": run.changed, "run_id": run.id,
                "finished_at": run.finished_at.isoformat() if run.finished_at else None}


async def _next_due(sessions: async_sessionmaker[AsyncSession], interval: timedelta) -> datetime:
    async with sessions() as session:
        last = await tier_repo.last_run(session)
    last_at = last.finished_at if last is not None else None
    return last_at + interval if last_at else datetime.now(UTC)


async def retier_loop(
    sessions: async_sessionmaker[AsyncSession], settings, stop_event: asyncio.Event, *, turns: JobTurns | None = None
) -> None:
    """Re-tier every `settings.tiering.schedule_hours`; the first run is due when the last one is that old. With
    several workers, `turns` lets one run while the others wait and then find the run done."""
    interval = timedelta(hours=float(settings.tiering.schedule_hours))
    if interval <= timedelta(0):
        return
    turns = turns or JobTurns(None, "")
    while not stop_event.is_set():
        try:
            due = await _next_due(sessions, interval)
            if due <= datetime.now(UTC):
                async with turns.turn("retier") as ours:
                    # looked at again with the turn held: another worker may have just finished this run
                    if ours and await _next_due(sessions, interval) <= datetime.now(UTC):
                        summary = await compute_and_store(sessions, method=settings.tiering.method)
                        log.info("re-tiered %d customers, %d changed tier", summary.customers, summary.changed)
                due = datetime.now(UTC) + (interval if ours else min(interval, timedelta(seconds=60)))
            wait = (due - datetime.now(UTC)).total_seconds()
        except Exception:
            log.exception("re-tiering failed; trying again later")
            wait = min(interval.total_seconds(), 600.0)
        try:
            await asyncio.wait_for(stop_event.wait(), timeout=max(wait, 1.0))
        except TimeoutError:
            pass


async def retier_job(app, stop_event: asyncio.Event) -> None:
    """`App(background=[retier_job])`: the schedule on the app's database and settings, one worker at a time."""
    await retier_loop(app.sessions, app.settings, stop_event, turns=JobTurns(app.redis, app.settings.redis_prefix))

"""Tiering at the edges: load value measures with aggregate queries, fit the value model, segment, evaluate,
store in one transaction.

A run writes the new tiers, the run record with its evaluation, every customer's tier in this run, the tier
changes and their `customer.tier_changed` webhook events together, so a crash part-way leaves the previous tiers
in force. `retier_loop` re-tiers on a schedule inside `tierdesk run`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.events import customer_event_row
from bot.core.locks import JobTurns
from bot.routing import clv, tier_quality
from bot.routing.policy import RoutingPolicy
from bot.routing.tiering import TIERS, TierResult, ValueTable, compute_tiers
from bot.settings import Settings, get_settings
from crm_store.repositories import outbox as outbox_repo
from crm_store.repositories import tiering as tier_repo
from crm_store.repositories import value as value_repo

log = logging.getLogger(__name__)

REPORT_KEYS = (
    "method",
    "k",
    "customers",
    "vip_recency_days",
    "silhouette",
    "stability_ari",
    "stability_ari_vs_last_run",
    "changed_since_last",
    "tiers",
    "relevance",
    "actionability",
    "clv",
    "note",
)


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
    """Value measures per live customer as of `as_of`, manual tiers and key accounts, from one query."""
    rows = await value_repo.value_rows(session, as_of)
    n = len(rows)
    ids = np.empty(n, dtype=np.int64)
    recency = np.full(n, np.inf)
    tenure = np.zeros(n)
    frequency, monetary, referrals, loyalty = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    manual: dict[int, str] = {}
    kams: set[int] = set()
    for i, (cid, first_at, last_at, orders, spend, refs, loy, manual_tier, kam, _tier) in enumerate(rows):
        ids[i] = cid
        if last_at is not None:
            recency[i] = max((as_of - last_at).total_seconds() / 86_400, 0.0)
            tenure[i] = max((as_of - first_at).total_seconds() / 86_400, 0.0)
            frequency[i] = float(orders or 0)
        if spend is not None:
            monetary[i] = float(spend)
            referrals[i] = float(refs or 0)
            loyalty[i] = float(loy or 0)
        if manual_tier:
            manual[cid] = manual_tier
        if kam is not None:
            kams.add(cid)
    values = ValueTable(ids, recency, frequency, monetary, referrals, loyalty, tenure_days=tenure)
    return LoadedValues(values, manual, kams)


def predict_value(values: ValueTable, seed: int = 0) -> tuple[np.ndarray | None, np.ndarray | None, dict]:
    """Predicted 12-month value and probability alive per customer, and the fitted parameters (None, None and
    the reason when too few customers bought to fit the model)."""
    args = clv.inputs_from_rfm(values.recency_days, values.tenure_days, values.frequency, values.revenue)
    started = time.perf_counter()
    try:
        fit = clv.fit_clv(*args, seed=seed)
    except ValueError as exc:
        return None, None, {"note": str(exc)}
    value, alive = clv.predict(fit, *args)
    bg, gg = fit.bgnbd, fit.gamma_gamma
    info = {
        "bgnbd": {"r": round(bg.r, 4), "alpha": round(bg.alpha, 4), "a": round(bg.a, 4), "b": round(bg.b, 4)},
        "gamma_gamma": None if gg is None else {"p": round(gg.p, 4), "q": round(gg.q, 4), "gamma": round(gg.gamma, 4)},
        "customers_fitted": fit.customers,
        "fit_seconds": round(time.perf_counter() - started, 3),
        "predicted_value_12m": round(float(value.sum()), 2),
    }
    return value, alive, info


@dataclass(frozen=True, slots=True)
class RunInputs:
    now: LoadedValues
    train: ValueTable
    later_spend: np.ndarray
    holdout_days: float


def tier_and_evaluate(
    inputs: RunInputs, method: str, k: int | None, seed: int, settings: Settings, policy: RoutingPolicy
) -> tuple[TierResult, dict]:
    """The CPU part of a run (in a thread): value model, tiers, and the evaluation the report carries."""
    loaded = inputs.now
    predicted, alive, clv_info = predict_value(loaded.values, seed)
    note = ""
    if method == "clv" and predicted is None:
        method, note = "quantiles", f"the clv method could not fit ({clv_info['note']}): used quantiles instead"
    vip_days = float(settings.tiering.vip_recency_days)
    result = compute_tiers(
        loaded.values,
        method=method,
        k=k,
        manual=loaded.manual,
        key_accounts=loaded.key_accounts,
        seed=seed,
        vip_recency_days=vip_days,
        predicted_value=predicted,
    )
    result.p_alive = alive
    result.note = "; ".join(x for x in (note, result.note) if x)
    train_predicted = predict_value(inputs.train, seed)[0] if method == "clv" else None
    relevance: dict | None = None
    if np.any(inputs.train.frequency > 0) and not (method == "clv" and train_predicted is None):
        relevance = tier_quality.relevance(
            inputs.train,
            inputs.later_spend,
            result.method,
            holdout_days=inputs.holdout_days,
            predicted_value=train_predicted,
            vip_recency_days=vip_days,
            k=result.k,
            seed=seed,
        )
    report = result.report()
    report.update(
        customers=len(result.customer_ids),
        vip_recency_days=vip_days,
        relevance=relevance,
        actionability=tier_quality.actionability(policy),
        clv=clv_info,
    )
    return result, report


def load_policy(settings: Settings) -> RoutingPolicy:
    path = settings.config_path(settings.routing_policy)
    return RoutingPolicy.load(path) if path.exists() else RoutingPolicy.default()


async def load_inputs(session: AsyncSession, as_of: datetime, holdout_days: float) -> RunInputs:
    """Today's measures, and for the time split the measures at the cut-off with the net spend after it."""
    now = await load_values(session, as_of)
    cutoff = as_of - timedelta(days=holdout_days)
    train = (await load_values(session, cutoff)).values
    later = await value_repo.net_spend_between(session, cutoff, as_of)
    later_spend = np.array([later.get(int(c), 0.0) for c in train.customer_ids.tolist()])
    return RunInputs(now, train, later_spend, holdout_days)


def report_object(run_report: dict, changed: int) -> dict:
    """The `tiers report --json` object: exactly the documented keys."""
    full = {**run_report, "changed_since_last": changed}
    return {key: full.get(key) for key in REPORT_KEYS}


async def compute_and_store(
    sessions: async_sessionmaker[AsyncSession],
    *,
    method: str = "rfm-kmeans",
    k: int | None = None,
    as_of: datetime | None = None,
    seed: int = 0,
    settings: Settings | None = None,
) -> RunSummary:
    """Compute tiers for every customer and store them, the run, its assignments and the history in ONE
    transaction."""
    settings = settings or get_settings()
    started = datetime.now(UTC)
    as_of = as_of or started
    async with sessions() as session:
        inputs = await load_inputs(session, as_of, float(settings.tiering.holdout_days))
    result, report = await asyncio.to_thread(
        tier_and_evaluate, inputs, method, k, seed, settings, load_policy(settings)
    )
    async with sessions() as session, session.begin():
        await value_repo.lock_for_writing(session)
        # Read the tiers in force inside the writing transaction, so the history compares with what it replaces.
        current = await tier_repo.current_tiers(session)
        last = await tier_repo.last_run(session)
        previous = await tier_repo.run_tiers(session, last.id) if last is not None else {}
        rows = _changes(result, current)
        report["changed_since_last"] = len(rows.changes)
        report["stability_ari_vs_last_run"] = _ari_vs(previous, result)
        await tier_repo.write_tiers(session, rows.updates)
        run_id = await tier_repo.record_run(
            session,
            started_at=started,
            method=result.method,
            k=result.k,
            silhouette=result.silhouette,
            stability_ari=result.stability_ari,
            changed=len(rows.changes),
            report=report,
        )
        await tier_repo.record_changes(session, run_id, rows.changes)
        await tier_repo.record_assignments(session, run_id, rows.assignments)
        events = [
            customer_event_row(
                settings,
                "customer.tier_changed",
                c["customer_id"],
                at=as_of,
                key=f"run{run_id}",
                old_tier=c["old_tier"],
                new_tier=c["new_tier"],
                reason=c["reason"],
            )
            for c in rows.changes
        ]
        if settings.web.webhook_url:
            await outbox_repo.enqueue(session, [e for e in events if e is not None])
    return RunSummary(run_id=run_id, customers=len(result.customer_ids), changed=len(rows.changes), report=report)


@dataclass(slots=True)
class _Rows:
    updates: list[dict]
    changes: list[dict]
    assignments: list[dict]


def _changes(result: TierResult, current: dict[int, tuple[str, str]]) -> _Rows:
    """What the run writes: customers whose tier or reason changed, tier changes, every customer's assignment."""
    out = _Rows([], [], [])
    n = len(result.customer_ids)
    value = result.predicted_value.tolist() if result.predicted_value is not None else [None] * n
    alive = result.p_alive.tolist() if result.p_alive is not None else [None] * n
    computed = result.computed_codes.tolist()
    for i, (cid, code, reason) in enumerate(
        zip(result.customer_ids.tolist(), result.codes.tolist(), result.reasons, strict=True)
    ):
        tier = TIERS[code]
        old = current.get(cid)
        if old is None:
            continue  # merged away meanwhile
        if old != (tier, reason):
            out.updates.append({"id": cid, "tier": tier, "tier_reason": reason})
        if old[0] != tier:
            out.changes.append({"customer_id": cid, "old_tier": old[0], "new_tier": tier, "reason": reason})
        out.assignments.append(
            {
                "customer_id": cid,
                "tier": tier,
                "computed_tier": TIERS[computed[i]],
                "predicted_value": value[i],
                "p_alive": alive[i],
            }
        )
    return out


def _ari_vs(previous: dict[int, tuple[str, float | None]], result: TierResult) -> float | None:
    if not previous:
        return None
    ids = result.customer_ids.tolist()
    both = [i for i, cid in enumerate(ids) if cid in previous]
    before = np.array([TIERS.index(previous[ids[i]][0]) for i in both])
    ari = tier_quality.ari_between_runs(before, result.codes[both])
    return None if ari is None else round(ari, 4)


async def latest_report(sessions: async_sessionmaker[AsyncSession]) -> dict | None:
    """The last finished run's report (with its note), or None before the first run."""
    async with sessions() as session:
        run = await tier_repo.last_run(session)
        if run is None:
            return None
        return {
            **run.report,
            "changed_since_last": run.changed,
            "run_id": run.id,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        }


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
                        summary = await compute_and_store(sessions, method=settings.tiering.method, settings=settings)
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

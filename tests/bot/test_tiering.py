"""Segmentation on plain arrays: ranking, potential, quantile fallback, overrides, evaluation, reasons."""

from __future__ import annotations

import numpy as np
import pytest

from bot.routing.tiering import (
    IMPORTANT,
    ORDINARY,
    TIER_CODE,
    VIP,
    ValueTable,
    aggregate_purchases,
    clusters_to_tiers,
    compute_tiers,
    feature_matrix,
)


def three_groups(n_each: int = 200, n_none: int = 50, seed: int = 3) -> ValueTable:
    """High, middle and low spenders that are clearly apart, plus customers who never bought."""
    rng = np.random.default_rng(seed)
    groups = [(5, 60, 20_000), (60, 8, 800), (400, 1, 40)]
    rec, freq, mon = [], [], []
    for r, f, m in groups:
        rec.append(rng.normal(r, r * 0.1, n_each).clip(0))
        freq.append(np.maximum(1, rng.normal(f, f * 0.1, n_each)).round())
        mon.append(rng.normal(m, m * 0.1, n_each).clip(1))
    rec.append(np.full(n_none, np.inf))
    freq.append(np.zeros(n_none))
    mon.append(np.zeros(n_none))
    total = 3 * n_each + n_none
    return ValueTable(
        customer_ids=np.arange(1, total + 1),
        recency_days=np.concatenate(rec),
        frequency=np.concatenate(freq),
        monetary=np.concatenate(mon),
    )


def test_vip_cluster_holds_the_highest_value_and_no_purchases_is_potential():
    values = three_groups()
    result = compute_tiers(values, method="rfm-kmeans", k=3)
    assert result.method == "rfm-kmeans" and result.k == 3 and result.note == ""
    tiers = [result.tier_of(i) for i in range(len(values.customer_ids))]
    assert set(tiers[:200]) == {"VIP"}
    assert set(tiers[200:400]) == {"important"}
    assert set(tiers[400:600]) == {"ordinary"}
    assert set(tiers[600:]) == {"potential"}
    by_tier = {s.tier: s for s in result.tiers}
    assert by_tier["VIP"].monetary > by_tier["important"].monetary > by_tier["ordinary"].monetary
    assert by_tier["potential"].revenue_share == 0 and by_tier["potential"].recency_days is None
    assert by_tier["VIP"].revenue_share > 0.9
    assert sum(s.customer_share for s in result.tiers) == pytest.approx(1.0)
    assert result.silhouette is not None and result.silhouette > 0.5
    assert result.stability_ari is not None and result.stability_ari > 0.9


def test_k_is_chosen_by_silhouette_when_not_given():
    result = compute_tiers(three_groups(), method="rfm-kmeans")
    assert result.k in (3, 4, 5, 6)
    assert result.tier_of(0) == "VIP" and result.tier_of(599) == "ordinary"


def test_too_few_customers_fall_back_to_quantile_and_say_so():
    values = ValueTable(
        customer_ids=np.arange(1, 11),
        recency_days=np.arange(10, dtype=float),
        frequency=np.arange(1, 11, dtype=float),
        monetary=np.linspace(10, 1000, 10),
    )
    result = compute_tiers(values, method="rfm-kmeans")
    assert result.method == "quantiles"
    assert "only 10 customers with purchases" in result.note and "quantiles" in result.note
    assert result.k is None
    assert result.tier_of(9) == "VIP"  # the biggest spender with the most orders
    assert sum(result.codes == VIP) == 1


def test_quantile_method_cuts_five_and_fifteen_percent():
    rng = np.random.default_rng(0)
    n = 1000
    values = ValueTable(
        customer_ids=np.arange(n),
        recency_days=rng.uniform(0, 300, n),
        frequency=rng.integers(1, 30, n).astype(float),
        monetary=rng.lognormal(4, 1, n),
    )
    result = compute_tiers(values, method="quantiles")
    assert (result.codes == VIP).sum() == 50
    assert (result.codes == IMPORTANT).sum() == 150
    assert (result.codes == ORDINARY).sum() == 800
    x, weights = feature_matrix(values, np.arange(n))
    score = x @ weights
    assert score[result.codes == VIP].min() >= score[result.codes == IMPORTANT].max()
    assert score[result.codes == IMPORTANT].min() >= score[result.codes == ORDINARY].max()
    assert result.stability_ari is not None and 0 < result.stability_ari <= 1


def test_manual_tier_wins_and_key_account_lifts_to_important():
    values = three_groups()
    ordinary_id, potential_id, vip_id, other_ordinary = 401, 601, 1, 402
    result = compute_tiers(
        values,
        k=3,
        manual={vip_id: "ordinary", other_ordinary: "VIP"},
        key_accounts={ordinary_id, potential_id, vip_id, 2},
    )
    tier = dict(zip(result.customer_ids.tolist(), [result.tier_of(i) for i in range(len(result.codes))], strict=True))
    assert tier[ordinary_id] == "important"
    assert tier[potential_id] == "important"
    assert tier[2] == "VIP"  # a KAM never lowers a tier
    assert tier[vip_id] == "ordinary"  # manual beats both computation and KAM
    assert tier[other_ordinary] == "VIP"
    reason = result.reasons[ordinary_id - 1]
    assert reason.startswith("important: has a key-account manager (computed ordinary: spent")
    assert result.reasons[0].startswith("ordinary: set manually (computed VIP: spent")
    assert result.computed_codes[ordinary_id - 1] == TIER_CODE["ordinary"]


def test_reason_string_names_spend_orders_and_recency():
    values = ValueTable(
        customer_ids=np.array([7]),
        recency_days=np.array([4.0]),
        frequency=np.array([31.0]),
        monetary=np.array([12_400.0]),
    )
    result = compute_tiers(values, method="quantiles")
    assert result.reasons == ["VIP: spent 12,400 over 31 orders, last 4 days ago"]


def test_clusters_beyond_three_merge_into_important_up_to_the_share_cap():
    scores = np.array([0.1, 3.0, -2.0, 1.5, 0.5])
    sizes = np.array([400, 50, 300, 100, 150])
    mapping = clusters_to_tiers(scores, sizes)
    assert mapping[1] == VIP and mapping[2] == ORDINARY
    assert mapping[3] == IMPORTANT  # the second-best is always important
    assert mapping[4] == IMPORTANT  # 50 + 100 + 150 = 30 % ≤ 35 %
    assert mapping[0] == ORDINARY  # would push the share to 70 %


def test_aggregate_counts_refunds_in_spend_not_in_orders_nor_as_the_last_purchase():
    rec, freq, mon, refs, _, tenure = aggregate_purchases(
        np.array([0, 0, 0, 2]),
        np.array([100.0, 50.0, -30.0, 10.0]),
        np.array([10.0, 3.0, 1.0, 40.0]),
        3,
        referrals=np.array([1, 0, 0, 2]),
    )
    assert freq.tolist() == [2, 0, 1]
    assert mon.tolist() == [120.0, 0.0, 10.0]
    assert rec[0] == 3.0 and np.isinf(rec[1]) and rec[2] == 40.0  # the refund a day ago is not a purchase
    assert tenure.tolist() == [10.0, 0.0, 40.0]
    assert refs.tolist() == [1, 0, 2]


def test_bad_arguments_are_refused_clearly():
    values = three_groups()
    with pytest.raises(ValueError, match="unknown tiering method"):
        compute_tiers(values, method="kmeans")
    with pytest.raises(ValueError, match="at least 3"):
        compute_tiers(values, k=2)
    with pytest.raises(ValueError, match="unknown manual tier"):
        compute_tiers(values, manual={1: "gold"})
    with pytest.raises(ValueError, match="monetary has 2 values"):
        ValueTable(np.arange(3), np.zeros(3), np.zeros(3), np.zeros(2))


# --- the service around it: load, compute, store in one transaction (SQLite and PostgreSQL) ---

from datetime import UTC, datetime  # noqa: E402

from sqlalchemy import func, select  # noqa: E402

from bot.cli.seed import seed_database  # noqa: E402
from bot.routing import tier_service  # noqa: E402
from crm_store.models import Customer, TierChange, TierRun  # noqa: E402
from crm_store.repositories import tiering as tier_repo  # noqa: E402

TODAY = datetime(2026, 6, 1, tzinfo=UTC)


async def tier_counts(db) -> dict[str, int]:
    async with db.sessions() as s:
        rows = await s.execute(select(Customer.tier, func.count(Customer.id)).group_by(Customer.tier))
        return dict(rows.all())


async def test_compute_stores_tiers_run_and_history_and_a_rerun_changes_nothing(db):
    await seed_database(db.sessions, 300, 3000, seed=1, today=TODAY)
    summary = await tier_service.compute_and_store(db.sessions, method="rfm-kmeans", k=3, as_of=TODAY)
    counts = await tier_counts(db)
    assert set(counts) == {"VIP", "important", "ordinary", "potential"}
    assert sum(counts.values()) == 300
    assert summary.changed == 300 - counts["potential"]  # everyone else moved off the default tier
    async with db.sessions() as s:
        history = await s.scalar(select(func.count(TierChange.id)).where(TierChange.run_id == summary.run_id))
        vip = await s.scalar(select(Customer).where(Customer.tier == "VIP").limit(1))
    assert history == summary.changed
    assert vip.tier_reason.startswith("VIP: spent ")

    report = await tier_service.latest_report(db.sessions)
    shown = tier_service.report_object(report, report["changed_since_last"])
    assert list(shown) == list(tier_service.REPORT_KEYS)
    assert shown["method"] == "rfm-kmeans" and shown["k"] == 3
    assert [t["tier"] for t in shown["tiers"]] == ["VIP", "important", "ordinary", "potential"]
    assert sum(t["customers"] for t in shown["tiers"]) == 300

    again = await tier_service.compute_and_store(db.sessions, method="rfm-kmeans", k=3, as_of=TODAY)
    assert again.changed == 0
    assert await tier_counts(db) == counts


async def test_a_crash_while_storing_leaves_the_previous_tiers_in_force(db, monkeypatch):
    await seed_database(db.sessions, 120, 1200, seed=2, today=TODAY)
    await tier_service.compute_and_store(db.sessions, method="quantiles", as_of=TODAY)
    before = await tier_counts(db)
    async with db.sessions() as s:
        runs_before = await s.scalar(select(func.count(TierRun.id)))
        await s.execute(Customer.__table__.update().values(manual_tier="VIP").where(Customer.tier == "ordinary"))
        await s.commit()

    async def crash(*_args, **_kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(tier_repo, "record_changes", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        await tier_service.compute_and_store(db.sessions, method="quantiles", as_of=TODAY)
    assert await tier_counts(db) == before
    async with db.sessions() as s:
        assert await s.scalar(select(func.count(TierRun.id))) == runs_before


async def test_too_few_customers_fall_back_with_the_reason_in_the_report(sqlite_db):
    await seed_database(sqlite_db.sessions, 8, 40, seed=3, today=TODAY)
    summary = await tier_service.compute_and_store(sqlite_db.sessions, method="rfm-kmeans", as_of=TODAY)
    assert summary.report["method"] == "quantiles"
    assert "used the quantiles method instead" in summary.report["note"]


async def test_retier_loop_runs_when_due_and_stops_on_request(sqlite_db):
    import asyncio

    from bot.settings import Settings, TieringSettings

    await seed_database(sqlite_db.sessions, 60, 600, seed=4)
    settings = Settings(database_url=sqlite_db.url, tiering=TieringSettings(schedule_hours=24, method="quantiles"))
    stop = asyncio.Event()
    task = asyncio.create_task(tier_service.retier_loop(sqlite_db.sessions, settings, stop))
    for _ in range(200):
        async with sqlite_db.sessions() as s:
            if await s.scalar(select(func.count(TierRun.id))):
                break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    async with sqlite_db.sessions() as s:
        runs = list(await s.scalars(select(TierRun)))
    assert len(runs) == 1 and runs[0].method == "quantiles"  # due at once (no run yet), then not for a day

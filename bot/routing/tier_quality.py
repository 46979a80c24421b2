"""How good a segmentation is, in the terms a supervisor acts on: size, share of revenue, relevance (do the
tiers tell later spend apart, against quantile tiers on the same data), interpretability (the rule in words),
stability (ARI) and actionability (the routing and SLA each tier gets). Plain arrays in, plain dicts out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.routing.policy import RoutingPolicy
from bot.routing.tiering import (
    IMPORTANT,
    ORDINARY,
    QUANTILE_IMPORTANT,
    QUANTILE_VIP,
    TIERS,
    VIP,
    ValueTable,
    compute_tiers,
    kmeans,
    quantile_labels,
    sample_rows,
)

SILHOUETTE_SAMPLE = 5_000
FIT_SAMPLE = 100_000


@dataclass(frozen=True, slots=True)
class TierStats:
    tier: str
    customers: int
    customer_share: float
    revenue: float
    revenue_share: float
    recency_days: float | None
    frequency: float
    monetary: float
    refunds_only: int
    predicted_value: float | None

    def as_dict(self) -> dict:
        return {
            "tier": self.tier,
            "customers": self.customers,
            "customer_share": round(self.customer_share, 4),
            "revenue": round(self.revenue, 2),
            "revenue_share": round(self.revenue_share, 4),
            "recency_days": None if self.recency_days is None else round(self.recency_days, 1),
            "frequency": round(self.frequency, 2),
            "monetary": round(self.monetary, 2),
            "refunds_only": self.refunds_only,
            "predicted_value_12m": None if self.predicted_value is None else round(self.predicted_value, 2),
        }


def tier_stats(values: ValueTable, codes: np.ndarray, predicted: np.ndarray | None = None) -> list[TierStats]:
    """Per tier: size, net revenue (never negative), mean recency of its buyers, mean orders and spend."""
    n = max(len(codes), 1)
    revenue = values.revenue
    total_rev = float(revenue.sum()) or 1.0
    refunds = values.refunds_only
    stats = []
    for code, name in enumerate(TIERS):
        mask = codes == code
        count = int(mask.sum())
        bought = mask & (values.frequency > 0)
        stats.append(
            TierStats(
                tier=name,
                customers=count,
                customer_share=count / n,
                revenue=float(revenue[mask].sum()),
                revenue_share=float(revenue[mask].sum()) / total_rev,
                recency_days=float(values.recency_days[bought].mean()) if bought.any() else None,
                frequency=float(values.frequency[mask].mean()) if count else 0.0,
                monetary=float(revenue[mask].mean()) if count else 0.0,
                refunds_only=int((mask & refunds).sum()),
                predicted_value=float(predicted[mask].mean()) if predicted is not None and count else None,
            )
        )
    return stats


def silhouette(x: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> float | None:
    from sklearn.metrics import silhouette_score

    rows = sample_rows(len(x), SILHOUETTE_SAMPLE, rng)
    if len(np.unique(labels[rows])) < 2:
        return None
    return float(silhouette_score(x[rows], labels[rows]))


def bootstrap_stability(x: np.ndarray, k: int | None, score: np.ndarray, seed: int, reruns: int = 3) -> float | None:
    """Mean adjusted Rand index between a reference labelling and reruns fitted on bootstrap samples."""
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(seed + 1)
    n = len(x)
    if n < 10:
        return None
    evaluate = sample_rows(n, SILHOUETTE_SAMPLE, rng)
    size = min(n, FIT_SAMPLE)
    aris = []
    if k is None:  # ranked methods: bootstrap the thresholds
        ref = quantile_labels(score)[evaluate]
        for _ in range(reruns):
            boot = score[rng.integers(0, n, size=size)]
            cut_vip, cut_imp = np.quantile(boot, [1 - QUANTILE_VIP, 1 - QUANTILE_VIP - QUANTILE_IMPORTANT])
            s = score[evaluate]
            lab = np.where(s >= cut_vip, VIP, np.where(s >= cut_imp, IMPORTANT, ORDINARY))
            aris.append(adjusted_rand_score(ref, lab))
    else:
        ref = kmeans(x[rng.integers(0, n, size=size)], k, seed).predict(x[evaluate])
        for r in range(reruns):
            model = kmeans(x[rng.integers(0, n, size=size)], k, seed + 100 + r)
            aris.append(adjusted_rand_score(ref, model.predict(x[evaluate])))
    return float(np.mean(aris))


def ari_between_runs(previous: np.ndarray, current: np.ndarray) -> float | None:
    """Adjusted Rand index between the last run's tiers and this run's, over the customers in both."""
    from sklearn.metrics import adjusted_rand_score

    if len(current) < 2:
        return None
    return float(adjusted_rand_score(previous, current))


def rules_in_words(method: str, stats: list[TierStats], vip_recency_days: float, k: int | None) -> dict[str, str]:
    """Each tier's rule as a sentence, with the typical customer of the tier."""
    window = f"bought within the last {vip_recency_days:,.0f} days"
    how = {
        "rfm-kmeans": f"one of {k} k-means clusters of recency, orders and net spend (log scale), ranked by value",
        "clv": "ranked by predicted 12-month value (BG/NBD + Gamma-Gamma)",
        "quantiles": "ranked by the value score (recent, frequent, high net spend)",
    }[method]
    ranks = {
        "VIP": f"the top {QUANTILE_VIP:.0%}" if method != "rfm-kmeans" else "the best cluster",
        "important": (
            f"the next {QUANTILE_IMPORTANT:.0%}"
            if method != "rfm-kmeans"
            else "the clusters after it, up to 35 % of buyers with VIP"
        ),
        "ordinary": "every other customer with a purchase",
    }
    out = {}
    for s in stats:
        if s.tier == "potential":
            out[s.tier] = "no purchase yet (or refunds only); a manual tier or a key-account manager can lift them"
            continue
        typical = (
            ""
            if not s.customers or s.recency_days is None
            else f"; typically {s.frequency:,.1f} orders, {s.monetary:,.0f} net, last {s.recency_days:,.0f} days ago"
        )
        extra = f", and {window}" if s.tier == "VIP" else ""
        out[s.tier] = f"{ranks[s.tier]}, {how}{extra}{typical}"
    return out


def actionability(policy: RoutingPolicy) -> dict[str, dict]:
    """What routing does for each tier: its queue, priority and SLA targets, read from the routing policy."""
    out = {}
    for tier in TIERS:
        tp = policy.for_tier(tier)
        out[tier] = {
            "queue": tp.queue,
            "priority": tp.priority,
            "first_response_minutes": round(tp.first_response.total_seconds() / 60, 1),
            "resolution_minutes": round(tp.resolution.total_seconds() / 60, 1),
        }
    return out


def how_well_tiers_predict(codes: np.ndarray, future: np.ndarray) -> dict:
    """How well tier codes tell later spend apart: mean later spend per tier, the share of it the VIP and
    important tiers hold, eta squared (share of the spread in later spend explained by the tier) and Spearman's
    rank correlation between tier rank and later spend (higher is better for both)."""
    from scipy.stats import spearmanr

    total = float(future.sum())
    by_tier = {}
    for code, name in enumerate(TIERS):
        mask = codes == code
        by_tier[name] = {
            "customers": int(mask.sum()),
            "mean_later_spend": round(float(future[mask].mean()), 2) if mask.any() else None,
            "later_revenue_share": round(float(future[mask].sum()) / total, 4) if total else None,
        }
    grand = future.mean() if len(future) else 0.0
    between = sum(
        float(((codes == c).sum()) * (future[codes == c].mean() - grand) ** 2)
        for c in range(len(TIERS))
        if (codes == c).any()
    )
    spread = float(((future - grand) ** 2).sum())
    rho = spearmanr(-codes.astype(float), future).statistic if len(future) > 2 and np.ptp(codes) else None
    top = (codes == VIP) | (codes == IMPORTANT)
    return {
        "eta_squared": round(between / spread, 4) if spread > 0 else None,
        "spearman": None if rho is None or np.isnan(rho) else round(float(rho), 4),
        "top_tiers_later_revenue_share": round(float(future[top].sum()) / total, 4) if total else None,
        "by_tier": by_tier,
    }


def relevance(
    train: ValueTable,
    future_spend: np.ndarray,
    method: str,
    *,
    holdout_days: float,
    predicted_value: np.ndarray | None = None,
    vip_recency_days: float,
    k: int | None = None,
    seed: int = 0,
) -> dict:
    """Tier everyone on the data before the hold-out (this method and quantiles, no overrides) and measure how
    each tiering tells apart the net spend in the hold-out (k-means with the k of the run being evaluated)."""
    future = np.clip(future_spend, 0, None)
    out: dict = {"holdout_days": holdout_days, "customers": len(future), "later_revenue": round(float(future.sum()), 2)}
    for label, m in (("method", method), ("quantiles", "quantiles")):
        result = compute_tiers(
            train,
            method=m,
            k=k if m == "rfm-kmeans" else None,
            seed=seed,
            vip_recency_days=vip_recency_days,
            predicted_value=predicted_value,
            evaluate=False,
        )
        out[label] = {"name": result.method, **how_well_tiers_predict(result.codes, future)}
    mine, base = out["method"]["eta_squared"], out["quantiles"]["eta_squared"]
    out["eta_squared_vs_quantiles"] = None if mine is None or not base else round(mine / base, 3)
    return out

"""Customer segmentation by value: plain arrays in, a tier, a reason and an evaluation out.

Value measures, net of refunds: recency (days since the last purchase), frequency (orders), monetary (net spend,
never below zero), and where the data has them tenure (days since the first purchase), average order value,
referrals and loyalty points. Spend is heavy-tailed, so every measure is log1p-transformed and robust-scaled
(median / IQR). The *value score* weighs them, recency negatively, so a long-gone big spender ranks low.

Methods (the `tiering.method` setting):
- ``rfm-kmeans``: k-means on the scaled measures; clusters are ranked by the value score of their centroid.
  The best cluster is VIP, the worst ordinary; those between are important while VIP + important together hold
  at most ``IMPORTANT_SHARE_CAP`` of the buyers (the 20/80 idea with some slack), ordinary after that.
- ``clv``: ranked by predicted 12-month value (BG/NBD + Gamma-Gamma, `bot.routing.clv`): top 5 % VIP, next
  15 % important, the rest ordinary.
- ``quantiles``: ranked by the value score, top 5 % VIP, next 15 % important. Also the fallback when too few
  customers bought for k-means, and the baseline every method is evaluated against.

Whatever the method, a VIP must have bought within ``vip_recency_days``; one who has not is important, and says
why. Customers without purchases are ``potential``; those with only refunds are potential too, flagged, and
count as zero revenue. Overrides, strongest first: a manual tier always wins; a key-account manager lifts the
customer to at least important.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field

import numpy as np

TIERS = ("VIP", "important", "ordinary", "potential")
VIP, IMPORTANT, ORDINARY, POTENTIAL = range(4)
TIER_CODE = {name: i for i, name in enumerate(TIERS)}
METHODS = ("rfm-kmeans", "clv", "quantiles")

QUANTILE_VIP = 0.05
QUANTILE_IMPORTANT = 0.15
IMPORTANT_SHARE_CAP = 0.35
MIN_KMEANS_CUSTOMERS = 30
VIP_RECENCY_DAYS = 180.0
K_CANDIDATES = (3, 4, 5, 6)
SELECTION_SAMPLE = 3_000
"""Silhouette is quadratic in the sample: k is chosen on a smaller one than the reported score uses."""
FIT_SAMPLE = 100_000
FEATURE_WEIGHTS = {
    "recency": -1.5,
    "frequency": 1.0,
    "monetary": 1.0,
    "tenure": 0.25,
    "order_value": 0.25,
    "referrals": 0.5,
    "loyalty": 0.5,
}


@dataclass(frozen=True, slots=True)
class ValueTable:
    """One row per customer. `frequency == 0` means no purchases (recency and tenure are then ignored)."""

    customer_ids: np.ndarray
    recency_days: np.ndarray
    frequency: np.ndarray
    monetary: np.ndarray
    """Net spend: purchases minus refunds (may be negative for a customer with refunds only)."""
    referrals: np.ndarray | None = None
    loyalty: np.ndarray | None = None
    tenure_days: np.ndarray | None = None
    """Days since the first purchase; None when the data has no first-purchase dates."""

    def __post_init__(self) -> None:
        n = len(self.customer_ids)
        for name in ("recency_days", "frequency", "monetary", "referrals", "loyalty", "tenure_days"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != n:
                raise ValueError(f"{name} has {len(arr)} values for {n} customers")

    @property
    def revenue(self) -> np.ndarray:
        """Net spend never below zero: refunds cancel purchases, never make a customer worth less than nothing."""
        return np.clip(self.monetary, 0, None)

    @property
    def refunds_only(self) -> np.ndarray:
        return (self.frequency == 0) & (self.monetary < 0)


@dataclass(slots=True)
class TierResult:
    customer_ids: np.ndarray
    codes: np.ndarray
    """Final tier code per customer (index into TIERS), overrides applied."""
    computed_codes: np.ndarray
    reasons: list[str]
    method: str
    k: int | None
    silhouette: float | None
    stability_ari: float | None
    note: str = ""
    """Why the method differs from the one asked for, if it does."""
    tiers: list = field(default_factory=list)
    """`tier_quality.TierStats` per tier."""
    predicted_value: np.ndarray | None = None
    p_alive: np.ndarray | None = None
    rules: dict[str, str] = field(default_factory=dict)
    """Each tier's rule in words (interpretability)."""

    def tier_of(self, i: int) -> str:
        return TIERS[int(self.codes[i])]

    def report(self) -> dict:
        return {
            "method": self.method,
            "k": self.k,
            "silhouette": None if self.silhouette is None else round(self.silhouette, 4),
            "stability_ari": None if self.stability_ari is None else round(self.stability_ari, 4),
            "note": self.note,
            "tiers": [{**t.as_dict(), "rule": self.rules.get(t.tier, "")} for t in self.tiers],
        }


def aggregate_purchases(
    customer_index: np.ndarray,
    amount: np.ndarray,
    age_days: np.ndarray,
    n_customers: int,
    referrals: np.ndarray | None = None,
    loyalty: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray]:
    """(recency, frequency, net spend, referrals, loyalty, tenure) per customer from purchase arrays (customer
    position, amount, age in days). Refunds count in spend but are neither orders nor a last or first purchase."""
    positive = amount > 0
    frequency = np.bincount(customer_index[positive], minlength=n_customers).astype(np.float64)
    monetary = np.bincount(customer_index, weights=amount, minlength=n_customers)
    recency = np.full(n_customers, np.inf)
    np.minimum.at(recency, customer_index[positive], age_days[positive])
    tenure = np.zeros(n_customers)
    np.maximum.at(tenure, customer_index[positive], age_days[positive])
    refs = np.bincount(customer_index, weights=referrals, minlength=n_customers) if referrals is not None else None
    loy = np.bincount(customer_index, weights=loyalty, minlength=n_customers) if loyalty is not None else None
    return recency, frequency, monetary, refs, loy, tenure


def feature_matrix(values: ValueTable, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log1p + robust scaling of the rows' measures, and the weight vector for the value score."""
    freq = values.frequency[rows]
    revenue = values.revenue[rows]
    cols = [np.log1p(np.clip(values.recency_days[rows], 0, None)), np.log1p(freq), np.log1p(revenue)]
    weights = [FEATURE_WEIGHTS["recency"], FEATURE_WEIGHTS["frequency"], FEATURE_WEIGHTS["monetary"]]
    if values.tenure_days is not None:
        cols.append(np.log1p(np.clip(values.tenure_days[rows], 0, None)))
        weights.append(FEATURE_WEIGHTS["tenure"])
    cols.append(np.log1p(revenue / np.maximum(freq, 1)))
    weights.append(FEATURE_WEIGHTS["order_value"])
    for name in ("referrals", "loyalty"):
        arr = getattr(values, name)
        if arr is not None and np.any(arr[rows] > 0):
            cols.append(np.log1p(np.clip(arr[rows], 0, None)))
            weights.append(FEATURE_WEIGHTS[name])
    x = np.column_stack(cols).astype(np.float64)
    median = np.median(x, axis=0)
    q75, q25 = np.percentile(x, [75, 25], axis=0)
    iqr = q75 - q25
    spread = np.where(iqr > 0, iqr, np.maximum(x.std(axis=0), 1.0))
    x -= median
    x /= spread
    return x, np.asarray(weights)


def sample_rows(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= size else rng.choice(n, size=size, replace=False)


def quantile_labels(score: np.ndarray) -> np.ndarray:
    """Top 5 % VIP, next 15 % important, rest ordinary, by rank (ties broken by position)."""
    n = len(score)
    order = np.argsort(-score, kind="stable")
    labels = np.full(n, ORDINARY, dtype=np.int8)
    n_vip = max(1, round(n * QUANTILE_VIP)) if n else 0
    n_imp = round(n * (QUANTILE_VIP + QUANTILE_IMPORTANT)) - n_vip
    labels[order[:n_vip]] = VIP
    labels[order[n_vip : n_vip + max(n_imp, 0)]] = IMPORTANT
    return labels


def clusters_to_tiers(centroid_scores: np.ndarray, cluster_sizes: np.ndarray) -> np.ndarray:
    """Tier code per cluster: best is VIP, worst ordinary, important in between up to the share cap."""
    k = len(centroid_scores)
    ranked = np.argsort(-centroid_scores, kind="stable")
    mapping = np.full(k, ORDINARY, dtype=np.int8)
    mapping[ranked[0]] = VIP
    total = max(int(cluster_sizes.sum()), 1)
    covered = int(cluster_sizes[ranked[0]])
    for pos, c in enumerate(ranked[1:-1], start=1):
        if pos > 1 and (covered + cluster_sizes[c]) / total > IMPORTANT_SHARE_CAP:
            break
        mapping[c] = IMPORTANT
        covered += int(cluster_sizes[c])
    return mapping


def kmeans(x: np.ndarray, k: int, seed: int):
    from sklearn.cluster import MiniBatchKMeans

    model = MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=4096, random_state=seed, max_no_improvement=10)
    return model.fit(x)


def _choose_k(x: np.ndarray, rng: np.random.Generator, seed: int) -> int:
    """The candidate k with the best silhouette, every k scored on the same sample."""
    from sklearn.metrics import silhouette_score

    fitted = x[sample_rows(len(x), FIT_SAMPLE // 4, rng)]
    scored = sample_rows(len(fitted), SELECTION_SAMPLE, rng)
    best_k, best_s = K_CANDIDATES[0], -2.0
    for k in K_CANDIDATES:
        if k >= len(fitted):
            break
        labels = kmeans(fitted, k, seed).labels_[scored]
        if len(np.unique(labels)) < 2:
            continue
        s = float(silhouette_score(fitted[scored], labels))
        if s > best_s:
            best_k, best_s = k, s
    return best_k


def _reasons(
    values: ValueTable,
    computed: np.ndarray,
    final: np.ndarray,
    why_override: dict[int, str],
    demoted: np.ndarray,
    recency_window: float,
) -> list[str]:
    """ "VIP: spent 12,400 over 31 orders, last 4 days ago" per customer (integers format fastest)."""
    finite = np.isfinite(values.recency_days)
    rec = np.rint(np.where(finite, values.recency_days, 0)).astype(np.int64).tolist()
    freq = np.rint(values.frequency).astype(np.int64).tolist()
    mon = np.rint(values.revenue).astype(np.int64).tolist()
    refunds = values.refunds_only.tolist()
    demoted_l = demoted.tolist()
    window = f"{recency_window:,.0f}"
    out = []
    for i, (c, r, f, m) in enumerate(zip(computed.tolist(), rec, freq, mon, strict=True)):
        if c == POTENTIAL:
            base = "potential: refunds only, no purchase kept" if refunds[i] else "potential: no purchases yet"
        else:
            base = f"{TIERS[c]}: spent {m:,} over {f:,} {'order' if f == 1 else 'orders'}, last {r:,} days ago"
            if demoted_l[i]:
                base += f" (not VIP: no purchase in the last {window} days)"
        if i in why_override:
            base = f"{TIERS[int(final[i])]}: {why_override[i]} (computed {base})"
        out.append(base)
    return out


def compute_tiers(
    values: ValueTable,
    *,
    method: str = "rfm-kmeans",
    k: int | None = None,
    manual: Mapping[int, str] | None = None,
    key_accounts: Set[int] | None = None,
    seed: int = 0,
    min_kmeans_customers: int = MIN_KMEANS_CUSTOMERS,
    vip_recency_days: float = VIP_RECENCY_DAYS,
    predicted_value: np.ndarray | None = None,
    evaluate: bool = True,
    threads: int | None = 1,
) -> TierResult:
    """Segment customers into tiers; `manual` maps customer id → tier, `key_accounts` holds ids with a KAM.

    `predicted_value` (12-month value per customer) is what the clv method ranks by. `threads` bounds the native
    thread pools (one by default: re-tiering runs beside the dispatcher); None leaves them as they are.
    """
    if method not in METHODS:
        raise ValueError(f"unknown tiering method {method!r} (use {', '.join(METHODS)})")
    if method == "clv" and predicted_value is None:
        raise ValueError("the clv method needs the predicted value of every customer")
    if k is not None and k < 3:
        raise ValueError("k must be at least 3 (VIP, important and ordinary each need a cluster)")
    args = (
        values,
        method,
        k,
        manual,
        key_accounts,
        seed,
        min_kmeans_customers,
        vip_recency_days,
        predicted_value,
        evaluate,
    )
    if threads is None:
        return _compute(*args)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        return _compute(*args)


def _compute(
    values: ValueTable,
    method: str,
    k: int | None,
    manual: Mapping[int, str] | None,
    key_accounts: Set[int] | None,
    seed: int,
    min_kmeans_customers: int,
    vip_recency_days: float,
    predicted_value: np.ndarray | None,
    evaluate: bool,
) -> TierResult:
    from bot.routing import tier_quality

    rng = np.random.default_rng(seed)
    n = len(values.customer_ids)
    buyers = np.flatnonzero(values.frequency > 0)
    computed = np.full(n, POTENTIAL, dtype=np.int8)
    note, used_k, silhouette, ari = "", None, None, None
    needed = max(min_kmeans_customers, (k or 3) * 2)
    if method == "rfm-kmeans" and len(buyers) < needed:
        note = (
            f"only {len(buyers)} customers with purchases (k-means needs at least {needed}): "
            "used the quantiles method instead"
        )
        method = "quantiles"
    if len(buyers):
        x, weights = feature_matrix(values, buyers)
        score = x @ weights
        if method == "rfm-kmeans":
            used_k = k or _choose_k(x, rng, seed)
            model = kmeans(x[sample_rows(len(x), FIT_SAMPLE * 4, rng)], used_k, seed)
            labels = model.predict(x)
            mapping = clusters_to_tiers(model.cluster_centers_ @ weights, np.bincount(labels, minlength=used_k))
            computed[buyers] = mapping[labels]
        else:
            ranked_by = predicted_value[buyers] if method == "clv" else score
            labels = quantile_labels(ranked_by)
            computed[buyers] = labels
        if evaluate:
            silhouette = tier_quality.silhouette(x, labels, rng)
            ari = tier_quality.bootstrap_stability(x, used_k, score, seed)
    demoted = (computed == VIP) & (values.recency_days > vip_recency_days)
    computed[demoted] = IMPORTANT
    final, why = apply_overrides(values.customer_ids, computed, manual or {}, key_accounts or set())
    stats = tier_quality.tier_stats(values, final, predicted_value)
    return TierResult(
        customer_ids=values.customer_ids,
        codes=final,
        computed_codes=computed,
        reasons=_reasons(values, computed, final, why, demoted, vip_recency_days),
        method=method,
        k=used_k,
        silhouette=silhouette,
        stability_ari=ari,
        note=note,
        tiers=stats,
        predicted_value=predicted_value,
        rules=tier_quality.rules_in_words(method, stats, vip_recency_days, used_k),
    )


def apply_overrides(
    customer_ids: np.ndarray, computed: np.ndarray, manual: Mapping[int, str], key_accounts: Set[int]
) -> tuple[np.ndarray, dict[int, str]]:
    """A manual tier wins; a key-account manager lifts to at least important. Returns codes and why per row."""
    final = computed.copy()
    why: dict[int, str] = {}
    if not manual and not key_accounts:
        return final, why
    wanted = set(manual) | set(key_accounts)
    positions = {int(c): i for i, c in enumerate(customer_ids.tolist()) if int(c) in wanted}
    for cid in key_accounts:
        i = positions.get(int(cid))
        if i is not None and final[i] > IMPORTANT:
            final[i] = IMPORTANT
            why[i] = "has a key-account manager"
    for cid, tier in manual.items():
        if tier not in TIER_CODE:
            raise ValueError(f"unknown manual tier {tier!r} for customer {cid}")
        i = positions.get(int(cid))
        if i is not None:
            final[i] = TIER_CODE[tier]
            why[i] = "set manually"
    return final, why

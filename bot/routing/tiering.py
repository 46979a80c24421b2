"""Customer segmentation by value: plain arrays in, a tier, a reason and an evaluation out.

Features are recency (days since the last purchase), frequency (orders), monetary (net spend) and, when present,
referrals and loyalty points. Each is log1p-transformed (spend is heavy-tailed) and robust-scaled (median / IQR),
then clustered with k-means. A cluster's *value score* is computed on its centroid in the scaled space:
``monetary + frequency - recency + 0.5 * (referrals + loyalty)``; clusters are ranked by it.

Mapping ranked clusters to tiers (k >= 3): the best cluster is VIP, the worst is ordinary; the clusters in
between are important while VIP + important together hold at most ``IMPORTANT_SHARE_CAP`` of the customers with
purchases (the 20/80 idea with some slack), and ordinary after that. With k = 3 that is simply VIP / important /
ordinary. Customers with no value events are ``potential``.

The quantile method ranks customers by the same value score: the top 5 % are VIP, the next 15 % important, the
rest ordinary. It is also the fallback when there are too few customers with purchases for k-means.

Overrides, strongest first: a manual tier always wins; a key-account manager lifts the customer to at least
important (a KAM is only assigned to accounts worth one, so they must never sit in the ordinary queue).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field

import numpy as np

TIERS = ("VIP", "important", "ordinary", "potential")
VIP, IMPORTANT, ORDINARY, POTENTIAL = range(4)
TIER_CODE = {name: i for i, name in enumerate(TIERS)}

QUANTILE_VIP = 0.05
QUANTILE_IMPORTANT = 0.15
IMPORTANT_SHARE_CAP = 0.35
MIN_KMEANS_CUSTOMERS = 30
K_CANDIDATES = (3, 4, 5, 6)
SILHOUETTE_SAMPLE = 5_000
SELECTION_SAMPLE = 3_000
"""Silhouette is quadratic in the sample: k is chosen on a smaller one than the reported score uses."""
FIT_SAMPLE = 100_000
FEATURE_WEIGHTS = {"recency": -1.0, "frequency": 1.0, "monetary": 1.0, "referrals": 0.5, "loyalty": 0.5}


@dataclass(frozen=True, slots=True)
class ValueTable:
    """One row per customer. `frequency == 0` means no purchases (recency is then ignored)."""

    customer_ids: np.ndarray
    recency_days: np.ndarray
    frequency: np.ndarray
    monetary: np.ndarray
    referrals: np.ndarray | None = None
    loyalty: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.customer_ids)
        for name in ("recency_days", "frequency", "monetary", "referrals", "loyalty"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != n:
                raise ValueError(f"{name} has {len(arr)} values for {n} customers")


@dataclass(frozen=True, slots=True)
class TierStats:
    tier: str
    customers: int
    customer_share: float
    revenue_share: float
    recency_days: float | None
    frequency: float
    monetary: float

    def as_dict(self) -> dict:
        return {
            "tier": self.tier,
            "customers": self.customers,
            "customer_share": round(self.customer_share, 4),
            "revenue_share": round(self.revenue_share, 4),
            "recency_days": None if self.recency_days is None else round(self.recency_days, 1),
            "frequency": round(self.frequency, 2),
            "monetary": round(self.monetary, 2),
        }


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
    tiers: list[TierStats] = field(default_factory=list)

    def tier_of(self, i: int) -> str:
        return TIERS[int(self.codes[i])]

    def report(self) -> dict:
        return {
            "method": self.method,
            "k": self.k,
            "silhouette": None if self.silhouette is None else round(self.silhouette, 4),
            "stability_ari": None if self.stability_ari is None else round(self.stability_ari, 4),
            "note": self.note,
            "tiers": [t.as_dict() for t in self.tiers],
        }


def aggregate_purchases(
    customer_index: np.ndarray,
    amount: np.ndarray,
    age_days: np.ndarray,
    n_customers: int,
    referrals: np.ndarray | None = None,
    loyalty: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """RFM per customer from purchase arrays (customer position, amount, age in days); refunds are not orders."""
    positive = amount > 0
    frequency = np.bincount(customer_index[positive], minlength=n_customers).astype(np.float64)
    monetary = np.bincount(customer_index, weights=amount, minlength=n_customers)
    recency = np.full(n_customers, np.inf)
    np.minimum.at(recency, customer_index, age_days)
    refs = np.bincount(customer_index, weights=referrals, minlength=n_customers) if referrals is not None else None
    loy = np.bincount(customer_index, weights=loyalty, minlength=n_customers) if loyalty is not None else None
    return recency, frequency, monetary, refs, loy


def feature_matrix(values: ValueTable, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log1p + robust scaling of the rows' features, and the weight vector for the value score."""
    cols = [
        np.log1p(np.clip(values.recency_days[rows], 0, None)),
        np.log1p(values.frequency[rows]),
        np.log1p(np.clip(values.monetary[rows], 0, None)),
    ]
    weights = [FEATURE_WEIGHTS["recency"], FEATURE_WEIGHTS["frequency"], FEATURE_WEIGHTS["monetary"]]
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


def _sample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= size else rng.choice(n, size=size, replace=False)


def _quantile_labels(score: np.ndarray) -> np.ndarray:
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


def _kmeans(x: np.ndarray, k: int, seed: int):
    from sklearn.cluster import MiniBatchKMeans

    model = MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=4096, random_state=seed, max_no_improvement=10)
    return model.fit(x)


def _silhouette(x: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> float | None:
    from sklearn.metrics import silhouette_score

    rows = _sample(len(x), SILHOUETTE_SAMPLE, rng)
    if len(np.unique(labels[rows])) < 2:
        return None
    return float(silhouette_score(x[rows], labels[rows]))


def _choose_k(x: np.ndarray, rng: np.random.Generator, seed: int) -> int:
    """The candidate k with the best silhouette, every k scored on the same sample."""
    from sklearn.metrics import silhouette_score

    fitted = x[_sample(len(x), FIT_SAMPLE // 4, rng)]
    scored = _sample(len(fitted), SELECTION_SAMPLE, rng)
    best_k, best_s = K_CANDIDATES[0], -2.0
    for k in K_CANDIDATES:
        if k >= len(fitted):
            break
        labels = _kmeans(fitted, k, seed).labels_[scored]
        if len(np.unique(labels)) < 2:
            continue
        s = float(silhouette_score(fitted[scored], labels))
        if s > best_s:
            best_k, best_s = k, s
    return best_k


def _stability(x: np.ndarray, k: int | None, score: np.ndarray, seed: int, reruns: int = 3) -> float | None:
    """Mean adjusted Rand index between a reference labelling and reruns fitted on bootstrap samples."""
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(seed + 1)
    n = len(x)
    if n < 10:
        return None
    evaluate = _sample(n, SILHOUETTE_SAMPLE, rng)
    size = min(n, FIT_SAMPLE)
    aris = []
    if k is None:  # quantile: bootstrap the thresholds
        ref = _quantile_labels(score)[evaluate]
        for _ in range(reruns):
            boot = score[rng.integers(0, n, size=size)]
            cut_vip, cut_imp = np.quantile(boot, [1 - QUANTILE_VIP, 1 - QUANTILE_VIP - QUANTILE_IMPORTANT])
            s = score[evaluate]
            lab = np.where(s >= cut_vip, VIP, np.where(s >= cut_imp, IMPORTANT, ORDINARY))
            aris.append(adjusted_rand_score(ref, lab))
    else:
        ref = _kmeans(x[rng.integers(0, n, size=size)], k, seed).predict(x[evaluate])
        for r in range(reruns):
            model = _kmeans(x[rng.integers(0, n, size=size)], k, seed + 100 + r)
            aris.append(adjusted_rand_score(ref, model.predict(x[evaluate])))
    return float(np.mean(aris))


def _reasons(values: ValueTable, computed: np.ndarray, final: np.ndarray, why_override: dict[int, str]) -> list[str]:
    """"VIP: spent 12,400 over 31 orders, last 4 days ago" per customer (integers format fastest)."""
    finite = np.isfinite(values.recency_days)
    rec = np.rint(np.where(finite, values.recency_days, 0)).astype(np.int64).tolist()
    freq = np.rint(values.frequency).astype(np.int64).tolist()
    mon = np.rint(values.monetary).astype(np.int64).tolist()
    out = []
    for i, (c, r, f, m) in enumerate(zip(computed.tolist(), rec, freq, mon, strict=True)):
        if c == POTENTIAL:
            base = "potential: no purchases yet"
        else:
            base = f"{TIERS[c]}: spent {m:,} over {f:,} {'order' if f == 1 else 'orders'}, last {r:,} days ago"
        if i in why_override:
            base = f"{TIERS[int(final[i])]}: {why_override[i]} (computed {base})"
        out.append(base)
    return out


def _tier_stats(values: ValueTable, codes: np.ndarray) -> list[TierStats]:
    n = max(len(codes), 1)
    revenue = np.clip(values.monetary, 0, None)
    total_rev = float(revenue.sum()) or 1.0
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
                revenue_share=float(revenue[mask].sum()) / total_rev,
                recency_days=float(values.recency_days[bought].mean()) if bought.any() else None,
                frequency=float(values.frequency[mask].mean()) if count else 0.0,
                monetary=float(values.monetary[mask].mean()) if count else 0.0,
            )
        )
    return stats


def compute_tiers(
    values: ValueTable,
    *,
    method: str = "kmeans",
    k: int | None = None,
    manual: Mapping[int, str] | None = None,
    key_accounts: Set[int] | None = None,
    seed: int = 0,
    min_kmeans_customers: int = MIN_KMEANS_CUSTOMERS,
    evaluate: bool = True,
    threads: int | None = 1,
) -> TierResult:
    """Segment customers into tiers; `manual` maps customer id → tier, `key_accounts` holds ids with a KAM.

    `threads` bounds the native thread pools (one by default: re-tiering runs beside the dispatcher, and
    oversubscribed OpenMP threads spin); None leaves them as they are.
    """
    if threads is None:
        return _compute(values, method, k, manual, key_accounts, seed, min_kmeans_customers, evaluate)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        return _compute(values, method, k, manual, key_accounts, seed, min_kmeans_customers, evaluate)


def _compute(
    values: ValueTable,
    method: str,
    k: int | None,
    manual: Mapping[int, str] | None,
    key_accounts: Set[int] | None,
    seed: int,
    min_kmeans_customers: int,
    evaluate: bool,
) -> TierResult:
    if method not in ("kmeans", "quantile"):
        raise ValueError(f"unknown tiering method {method!r} (use kmeans or quantile)")
    if k is not None and k < 3:
        raise ValueError("k must be at least 3 (VIP, important and ordinary each need a cluster)")
    rng = np.random.default_rng(seed)
    n = len(values.customer_ids)
    buyers = np.flatnonzero(values.frequency > 0)
    computed = np.full(n, POTENTIAL, dtype=np.int8)
    note, used_k, silhouette, ari = "", None, None, None
    if method == "kmeans" and len(buyers) < max(min_kmeans_customers, (k or 3) * 2):
        note = (
            f"only {len(buyers)} customers with purchases (k-means needs at least "
            f"{max(min_kmeans_customers, (k or 3) * 2)}): used the quantile method instead"
        )
        method = "quantile"
    if len(buyers):
        x, weights = feature_matrix(values, buyers)
        score = x @ weights
        if method == "kmeans":
            used_k = k or _choose_k(x, rng, seed)
            model = _kmeans(x[_sample(len(x), FIT_SAMPLE * 4, rng)], used_k, seed)
            labels = model.predict(x)
            sizes = np.bincount(labels, minlength=used_k)
            mapping = clusters_to_tiers(model.cluster_centers_ @ weights, sizes)
            computed[buyers] = mapping[labels]
        else:
            labels = _quantile_labels(score)
            computed[buyers] = labels
        if evaluate:
            silhouette = _silhouette(x, labels, rng)
            ari = _stability(x, used_k, score, seed)
    final, why = apply_overrides(values.customer_ids, computed, manual or {}, key_accounts or set())
    return TierResult(
        customer_ids=values.customer_ids,
        codes=final,
        computed_codes=computed,
        reasons=_reasons(values, computed, final, why),
        method=method,
        k=used_k,
        silhouette=silhouette,
        stability_ari=ari,
        note=note,
        tiers=_tier_stats(values, final),
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

"""Forward-looking value: BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma (Fader & Hardie 2013) fitted by
maximum likelihood with scipy, on plain arrays.

Why hand-fitted: the published likelihoods are a few lines of `gammaln`; pymc-marketing brings pymc and a
compiler for the same point estimates, and `lifetimes` is no longer maintained. The fit is checked against
simulated customers with known parameters and against the closed forms in the papers (tests/bot/test_tier_clv.py).

Units: time in weeks, as in the papers. Per customer: `x` repeat purchases (orders - 1), `t_x` weeks from the first
to the last purchase, `T` weeks from the first purchase to the day the value is measured, and for Gamma-Gamma the
average order value `m` over `orders` orders (net of refunds, never below zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, gammaln, hyp2f1

WEEK_DAYS = 7.0
HORIZON_WEEKS = 365.0 / WEEK_DAYS
FIT_SAMPLE = 500_000
"""Customers the likelihood is maximised on (a uniform sample beyond that: the estimates barely move)."""


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    p: float
    q: float
    gamma: float


@dataclass(frozen=True, slots=True)
class ClvFit:
    bgnbd: BgNbdParams
    gamma_gamma: GammaGammaParams | None
    """None when too few customers bought twice to fit spend (every prediction then uses the plain average)."""
    customers: int
    mean_order_value: float


def bgnbd_log_likelihood(params: BgNbdParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Per-customer log-likelihood, equation (6) of Fader, Hardie & Lee (2005)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    a4 = np.full_like(a3, -np.inf)
    xr = x[repeat]
    a4[repeat] = np.log(a) - np.log(b + xr - 1) - (r + xr) * np.log(alpha + t_x[repeat])
    return a1 + a2 + np.logaddexp(a3, a4)


def _fit(neg_ll, start: np.ndarray) -> np.ndarray:
    """Minimise over log-parameters (all parameters are positive)."""
    result = minimize(neg_ll, np.log(start), method="L-BFGS-B", bounds=[(-12.0, 12.0)] * len(start))
    return np.exp(result.x)


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, *, seed: int = 0) -> BgNbdParams:
    """Maximum-likelihood r, alpha, a, b; identical (x, t_x, T) rows are counted once with a weight."""
    x, t_x, T = _sample(seed, x, t_x, T)
    rows, weights = np.unique(np.column_stack([x, np.round(t_x, 3), np.round(T, 3)]), axis=0, return_counts=True)
    ux, ut, uT = rows[:, 0], rows[:, 1], rows[:, 2]
    total = weights.sum()

    def neg_ll(logp: np.ndarray) -> float:
        ll = bgnbd_log_likelihood(BgNbdParams(*np.exp(logp)), ux, ut, uT)
        return float(-(weights * ll).sum() / total)

    r, alpha, a, b = _fit(neg_ll, np.array([1.0, max(float(np.mean(T)), 1.0), 1.0, 1.0]))
    return BgNbdParams(float(r), float(alpha), float(a), float(b))


def gamma_gamma_log_likelihood(params: GammaGammaParams, orders: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Per-customer log-likelihood of the average order value `m` over `orders` orders (Fader & Hardie 2013)."""
    p, q, g = params.p, params.q, params.gamma
    px = p * orders
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(g)
        + (px - 1) * np.log(m)
        + px * np.log(orders)
        - (px + q) * np.log(g + m * orders)
    )


def fit_gamma_gamma(orders: np.ndarray, m: np.ndarray, *, seed: int = 0) -> GammaGammaParams:
    """Maximum-likelihood p, q, gamma on customers with at least two orders and a positive average."""
    keep = (orders >= 2) & (m > 0)
    orders, m = _sample(seed, orders[keep], m[keep])

    def neg_ll(logp: np.ndarray) -> float:
        return float(-gamma_gamma_log_likelihood(GammaGammaParams(*np.exp(logp)), orders, m).mean())

    p, q, g = _fit(neg_ll, np.array([2.0, 3.0, max(float(np.mean(m)), 1.0)]))
    return GammaGammaParams(float(p), float(q), float(g))


def _sample(seed: int, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    n = len(arrays[0])
    if n <= FIT_SAMPLE:
        return arrays
    rows = np.random.default_rng(seed).choice(n, size=FIT_SAMPLE, replace=False)
    return tuple(arr[rows] for arr in arrays)


def probability_alive(params: BgNbdParams, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """P(still a customer | history), equation (11); 1 for a customer who has not bought again yet (the model
    cannot tell them apart from a new one)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    out = np.ones(len(x))
    rep = x > 0
    xr = x[rep]
    log_odds = np.log(a) - np.log(b + xr - 1) + (r + xr) * (np.log(alpha + T[rep]) - np.log(alpha + t_x[rep]))
    out[rep] = expit(-log_odds)
    return out


def expected_purchases(params: BgNbdParams, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Expected purchases in the next `t` weeks given the history, equation (10) (a = 1 is its limit: nudged).

    The paper's ``((alpha+T)/(alpha+T+t))^(r+x) * 2F1(r+x, b+x; a+b+x-1; z)`` overflows for frequent buyers;
    Euler's transformation turns it into ``(1-z)^(a-1) * 2F1(a+b-1-r, a-1; a+b+x-1; z)``, the same value that
    stays finite for any x."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1) < 1e-6:
        a = 1 + 1e-6
    z = t / (alpha + T + t)
    head = (a + b + x - 1) / (a - 1)
    tail = 1 - (1 - z) ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
    return head * tail * probability_alive(params, x, t_x, T)  # the paper's denominator is 1 / P(alive)


def expected_order_value(
    params: GammaGammaParams | None, orders: np.ndarray, m: np.ndarray, fallback: float
) -> np.ndarray:
    """E[average order value | history]: the population mean shrunk towards the customer's own average."""
    if params is None or params.q <= 1:
        return np.where(orders > 0, np.maximum(m, 0.0), fallback)
    p, q, g = params.p, params.q, params.gamma
    population = p * g / (q - 1)
    weight = p * orders / (p * orders + q - 1)
    return (1 - weight) * population + weight * np.maximum(m, 0.0)


def fit_clv(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray, orders: np.ndarray, m: np.ndarray, *, seed: int = 0
) -> ClvFit:
    """Both models on the customers with at least one order."""
    bought = orders > 0
    if bought.sum() < 2:
        raise ValueError("the value model needs at least two customers with purchases")
    bg = fit_bgnbd(x[bought], t_x[bought], T[bought], seed=seed)
    repeat = int(((orders >= 2) & (m > 0)).sum())
    gg = fit_gamma_gamma(orders, m, seed=seed) if repeat >= 20 else None
    mean_value = float(np.mean(np.maximum(m[bought], 0.0)))
    return ClvFit(bg, gg, int(bought.sum()), mean_value)


def predict(
    fit: ClvFit,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    orders: np.ndarray,
    m: np.ndarray,
    horizon_weeks: float = HORIZON_WEEKS,
) -> tuple[np.ndarray, np.ndarray]:
    """(predicted value over the horizon, probability alive) per customer; zero and None-like 0 for those who
    never bought (the model says nothing about them)."""
    value = np.zeros(len(x))
    alive = np.zeros(len(x))
    b = orders > 0
    purchases = expected_purchases(fit.bgnbd, horizon_weeks, x[b], t_x[b], T[b])
    value[b] = purchases * expected_order_value(fit.gamma_gamma, orders[b], m[b], fit.mean_order_value)
    alive[b] = probability_alive(fit.bgnbd, x[b], t_x[b], T[b])
    return value, alive


def simulate_bgnbd(
    params: BgNbdParams, n: int, T: np.ndarray | float, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Customers drawn from the model itself (Poisson purchases at a gamma rate, a beta dropout chance after
    each purchase): (x, t_x, T). Used to check the fit recovers what it was drawn from."""
    rng = np.random.default_rng(seed)
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    clock = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        clock[idx] += rng.exponential(1.0 / lam[idx])
        in_time = clock[idx] <= T[idx]
        bought = idx[in_time]
        x[bought] += 1
        t_x[bought] = clock[bought]
        active[idx[~in_time]] = False
        active[bought[rng.random(len(bought)) < p[bought]]] = False
    return x, t_x, T


def inputs_from_rfm(
    recency_days: np.ndarray, tenure_days: np.ndarray, orders: np.ndarray, revenue: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T, orders, average order value) from days since the last and first purchase, orders and net
    revenue; customers without orders get zeros (they are left out of the fit and predicted nothing)."""
    bought = orders > 0
    tenure = np.where(bought, np.clip(tenure_days, 0, None), 0.0)
    recency = np.where(bought, np.clip(recency_days, 0, None), 0.0)
    x = np.where(bought, orders - 1, 0.0)
    t_x = np.clip(tenure - recency, 0, None) / WEEK_DAYS
    T = tenure / WEEK_DAYS
    m = np.where(bought, np.clip(revenue, 0, None) / np.maximum(orders, 1), 0.0)
    return x, t_x, T, orders.astype(float), m

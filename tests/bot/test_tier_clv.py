"""The value model: BG/NBD and Gamma-Gamma likelihoods against direct numerical integration of their
definitions, and maximum-likelihood fits recovering the parameters customers were simulated from (the CDNOW
estimates of Fader, Hardie & Lee 2005 and Fader & Hardie 2013)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special

from bot.routing import clv

CDNOW = clv.BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)
CDNOW_SPEND = clv.GammaGammaParams(p=6.25, q=3.74, gamma=15.44)


def integrated_likelihood(p: clv.BgNbdParams, x: int, t_x: float, T: float, *, alive_only: bool = False) -> float:
    """The BG/NBD likelihood from its definition: Poisson purchases at rate lambda ~ Gamma(r, alpha), a dropout
    chance p ~ Beta(a, b) after each purchase, integrated numerically over both (on their quantile scales, where
    the integrand has no singularity)."""

    def given(lam: float, drop: float) -> float:
        alive = (1 - drop) ** x * lam**x * math.exp(-lam * T)
        dropped = drop * (1 - drop) ** (x - 1) * lam**x * math.exp(-lam * t_x) if x > 0 and not alive_only else 0.0
        return alive + dropped

    def at_quantiles(u: float, v: float) -> float:
        return given(special.gammaincinv(p.r, u) / p.alpha, special.betaincinv(p.a, p.b, v))

    return integrate.dblquad(at_quantiles, 0, 1, 0, 1, epsabs=1e-12, epsrel=1e-7)[0]


@pytest.mark.parametrize(("x", "t_x", "T"), [(0, 0.0, 38.86), (2, 30.43, 38.86), (7, 29.43, 38.86)])
def test_bgnbd_likelihood_matches_its_definition(x, t_x, T):
    closed = clv.bgnbd_log_likelihood(CDNOW, np.array([x], float), np.array([t_x]), np.array([T]))[0]
    assert closed == pytest.approx(math.log(integrated_likelihood(CDNOW, x, t_x, T)), abs=1e-6)


def test_probability_alive_is_the_share_of_the_likelihood_where_the_customer_is_still_active():
    x, t_x, T = 2, 30.43, 38.86
    expected = integrated_likelihood(CDNOW, x, t_x, T, alive_only=True) / integrated_likelihood(CDNOW, x, t_x, T)
    got = clv.probability_alive(CDNOW, np.array([2.0, 0.0]), np.array([t_x, 0.0]), np.array([T, T]))
    assert got[0] == pytest.approx(expected, abs=1e-6)
    assert got[1] == 1.0  # no repeat purchase yet: the model cannot tell them from a new customer


def test_a_long_silence_after_many_purchases_lowers_probability_alive():
    alive = clv.probability_alive(CDNOW, np.array([10.0, 10.0]), np.array([38.0, 10.0]), np.array([39.0, 39.0]))
    assert alive[0] > 0.9 > 0.2 > alive[1]


def test_fit_recovers_the_parameters_customers_were_drawn_from():
    rng = np.random.default_rng(7)
    x, t_x, T = clv.simulate_bgnbd(CDNOW, 30_000, rng.uniform(27, 39, 30_000), seed=8)
    fit = clv.fit_bgnbd(x, t_x, T)
    assert fit.r == pytest.approx(CDNOW.r, rel=0.12)
    assert fit.alpha == pytest.approx(CDNOW.alpha, rel=0.15)
    assert fit.a == pytest.approx(CDNOW.a, rel=0.2)
    assert fit.b == pytest.approx(CDNOW.b, rel=0.25)


def test_expected_purchases_of_a_new_customer_match_simulated_customers():
    x, _, _ = clv.simulate_bgnbd(CDNOW, 100_000, 52.0, seed=3)
    expected = clv.expected_purchases(CDNOW, 52.0, np.zeros(1), np.zeros(1), np.zeros(1))[0]
    assert expected == pytest.approx(x.mean(), rel=0.03)


def simulate_two_windows(p: clv.BgNbdParams, n: int, first: float, total: float, seed: int):
    """Purchases of the same simulated customers counted up to week `first` (x, t_x) and up to `total`."""
    rng = np.random.default_rng(seed)
    lam, drop = rng.gamma(p.r, 1 / p.alpha, n), rng.beta(p.a, p.b, n)
    x_first, t_first, x_total = np.zeros(n), np.zeros(n), np.zeros(n)
    clock, active = np.zeros(n), np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        clock[idx] += rng.exponential(1 / lam[idx])
        bought = idx[clock[idx] <= total]
        active[idx[clock[idx] > total]] = False
        early = bought[clock[bought] <= first]
        x_first[early] += 1
        t_first[early] = clock[early]
        x_total[bought] += 1
        active[bought[rng.random(len(bought)) < drop[bought]]] = False
    return x_first, t_first, x_total


def test_expected_purchases_given_a_history_match_what_simulated_look_alikes_do_next():
    """Customers with the same 39-week history (3 purchases, the last in weeks 30-33): the formula's purchases
    in the next 52 weeks against what the simulated ones with that history went on to buy."""
    x39, t39, x91 = simulate_two_windows(CDNOW, 400_000, 39.0, 91.0, seed=5)
    same = (x39 == 3) & (t39 > 30) & (t39 <= 33)
    later = (x91 - x39)[same]
    predicted = clv.expected_purchases(CDNOW, 52.0, np.full(1, 3.0), np.full(1, t39[same].mean()), np.full(1, 39.0))
    assert same.sum() > 300
    assert predicted[0] == pytest.approx(later.mean(), rel=0.12)


def test_gamma_gamma_fit_recovers_spend_parameters_and_shrinks_towards_the_mean():
    rng = np.random.default_rng(11)
    n = 20_000
    orders = rng.integers(2, 12, n).astype(float)
    nu = rng.gamma(CDNOW_SPEND.q, 1 / CDNOW_SPEND.gamma, n)
    m = np.array([rng.gamma(CDNOW_SPEND.p, 1 / v, int(k)).mean() for v, k in zip(nu, orders, strict=True)])
    fit = clv.fit_gamma_gamma(orders, m)
    assert fit.p == pytest.approx(CDNOW_SPEND.p, rel=0.15)
    assert fit.q == pytest.approx(CDNOW_SPEND.q, rel=0.15)
    assert fit.gamma == pytest.approx(CDNOW_SPEND.gamma, rel=0.25)
    population = CDNOW_SPEND.p * CDNOW_SPEND.gamma / (CDNOW_SPEND.q - 1)
    one, many = clv.expected_order_value(CDNOW_SPEND, np.array([1.0, 50.0]), np.array([500.0, 500.0]), 0.0)
    assert population < one < many < 500.0


def test_predict_gives_nothing_to_customers_who_never_bought_and_refuses_too_little_data():
    x, t_x, T, orders, m = clv.inputs_from_rfm(
        np.array([3.0, np.inf, 20.0, 200.0]),
        np.array([300.0, 0.0, 100.0, 400.0]),
        np.array([6.0, 0.0, 2.0, 3.0]),
        np.array([600.0, -40.0, 80.0, 90.0]),
    )
    assert x.tolist() == [5.0, 0.0, 1.0, 2.0]
    assert t_x.tolist() == pytest.approx([297 / 7, 0.0, 80 / 7, 200 / 7])
    assert m.tolist() == [100.0, 0.0, 40.0, 30.0]
    fit = clv.fit_clv(x, t_x, T, orders, m)
    assert fit.gamma_gamma is None  # fewer than 20 repeat buyers: the plain average stands in
    value, alive = clv.predict(fit, x, t_x, T, orders, m)
    assert value[1] == 0.0 and alive[1] == 0.0
    assert value[0] > value[3] > 0  # recent and frequent beats lapsed
    with pytest.raises(ValueError, match="at least two customers with purchases"):
        clv.fit_clv(x[:2], t_x[:2], T[:2], orders[:2], m[:2])

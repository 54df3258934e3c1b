"""LTV interval calibration: interval score, PIT, coverage with atoms, the shock model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from kam_analysis.ltv.backtest import (
    BacktestInputError,
    interval_coverage,
    interval_score,
    pit_values,
)
from kam_analysis.ltv.shocks import (
    RevenueShocks,
    fit_prior_variance,
    local_level_moments,
    trigamma_inverse,
)


def test_interval_score_hand_values():
    # Gneiting & Raftery (2007) eq. 43, alpha = 0.2 (P10-P90): penalty 2 / 0.2 = 10 per unit
    got = interval_score([10, 10, 10], [20, 20, 20], [15, 5, 26], alpha=0.2)
    np.testing.assert_allclose(got, [10.0, 10 + 10 * 5, 10 + 10 * 6])
    with pytest.raises(BacktestInputError, match="alpha"):
        interval_score([0], [1], [0], alpha=1.0)


def test_pit_is_the_cdf_and_spreads_over_an_atom():
    draws = np.column_stack([np.arange(10.0), np.r_[np.zeros(3), np.arange(1.0, 8.0)]])
    pit = pit_values(draws, np.array([4.5, 0.0]), np.random.default_rng(0))
    assert pit[0] == pytest.approx(0.5)  # 5 of 10 draws below 4.5
    assert 0.0 <= pit[1] <= 0.3  # 3 of 10 draws on the atom at 0


def test_pit_is_uniform_for_outcomes_from_the_forecast():
    rng = np.random.default_rng(3)
    n = 4000
    p0 = rng.uniform(0, 0.5, n)  # each account: an atom at 0, else lognormal

    def sample(size):
        return np.where(rng.random((size, n)) < p0, 0.0, rng.lognormal(0, 1, (size, n)))

    draws, actual = sample(400), sample(1)[0]
    pit = pit_values(draws, actual, rng)
    assert stats.kstest(pit, "uniform").pvalue > 0.01
    # closed quantile intervals over-cover with atoms; the randomised count does not
    cov = interval_coverage(draws, actual, 0.8).mean()
    lo, hi = np.quantile(draws, [0.1, 0.9], axis=0)
    closed = np.mean((actual >= lo) & (actual <= hi))
    assert cov == pytest.approx(0.8, abs=0.02)
    assert closed > 0.83


def test_interval_coverage_counts_the_atom_share_inside_the_band():
    draws = np.r_[np.zeros(30), np.linspace(1, 10, 70)][:, None]
    # atom P(0) = 0.3; band [0.1, 0.9] holds 0.2 of it: 2/3 inside
    assert interval_coverage(draws, np.array([0.0]), 0.8)[0] == pytest.approx(2 / 3)
    cont = np.linspace(0, 1, 1001)[:, None]
    np.testing.assert_allclose(
        [interval_coverage(cont, np.array([y]), 0.8)[0] for y in (0.5, 0.95, 0.05)], [1, 0, 0]
    )


def test_local_level_moments_hand_case():
    # two differences: Q0 = (d1 - d2)^2 / 2, E = sigma_eta^2 + 3 sigma_eps^2; Q1 = -Q0 / 2
    np.testing.assert_allclose(local_level_moments(2), [[1, 3], [-0.5, -1.5]])
    # n differences of white noise (sigma_eps = 0): E Q0 = (n - 1) sigma_eta^2
    assert local_level_moments(7)[0, 0] == pytest.approx(6)


def test_trigamma_inverse_and_prior_recovered():
    assert trigamma_inverse(special.polygamma(1, 2.5)) == pytest.approx(2.5)
    rng = np.random.default_rng(1)
    d0, s0, d = 10.0, 0.5, 8.0
    c = d0 * s0 / rng.chisquare(d0, 20_000)
    s2 = c * rng.chisquare(d, 20_000) / d
    d0_hat, s0_hat = fit_prior_variance(s2, np.full(s2.size, d))
    assert d0_hat == pytest.approx(d0, rel=0.2)
    assert s0_hat == pytest.approx(s0, rel=0.05)


def _local_level_monthly(n: int, quarters: int, eta: float, eps: float, seed: int) -> pd.DataFrame:
    """Monthly table whose quarterly log revenue is a random walk with drift plus noise."""
    rng = np.random.default_rng(seed)
    scale = np.sqrt(5 * 1.0 / rng.chisquare(5, n))  # account scales, prior d0 = 5, s0^2 = 1
    drift = rng.normal(0.02, 0.03, n)
    level = np.log(1e6) + np.cumsum(
        drift[:, None] + scale[:, None] * eta * rng.standard_normal((n, quarters)), axis=1
    )
    y = level + scale[:, None] * eps * rng.standard_normal((n, quarters))
    months = pd.date_range("2020-01-01", periods=3 * quarters, freq="MS")
    rev = np.repeat(np.exp(y) / 3, 3, axis=1)
    return pd.DataFrame(
        {
            "account_id": np.repeat([f"A{i}" for i in range(n)], 3 * quarters),
            "month": np.tile(months, n),
            "revenue": rev.ravel(),
        }
    )


def test_shock_model_recovers_planted_persistent_and_transient_sd():
    monthly = _local_level_monthly(3000, 12, eta=0.15, eps=0.25, seed=2)
    m = RevenueShocks(bootstrap=100).fit(monthly, as_of="2022-12-31")
    p = m.params_
    # the scales have mean E[5 / chi2_5] = 5/3: the book's variances carry it
    assert p["sigma_eta"] == pytest.approx(0.15 * np.sqrt(5 / 3), rel=0.1)
    assert p["sigma_eps"] == pytest.approx(0.25 * np.sqrt(5 / 3), rel=0.1)
    assert p["n_accounts"] == 3000 and p["n_quarters"] == 36_000 and p["months"] == 36
    assert 2.5 < p["d0"] < 10  # planted prior d0 = 5 (the scale's spread is recovered roughly)
    eta2, eps2 = m.variance_draws(["A0", "unknown"], 500, np.random.default_rng(0))
    assert eta2.shape == (500, 2) and (eta2 > 0).all() and (eps2 > 0).all()


def test_shock_model_is_a_pure_random_walk_when_planted():
    monthly = _local_level_monthly(2000, 12, eta=0.2, eps=0.0, seed=5)
    p = RevenueShocks(bootstrap=50).fit(monthly, as_of="2022-12-31").params_
    assert p["sigma_eps"] < 0.04
    assert p["sigma_eta"] == pytest.approx(0.2 * np.sqrt(5 / 3), rel=0.1)

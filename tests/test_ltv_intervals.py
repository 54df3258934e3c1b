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
from kam_analysis.ltv.trajectory import quarterly_revenue


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


def _local_level_monthly(
    n: int,
    quarters: int,
    eta: float,
    eps: float,
    seed: int,
    market: float = 0.0,
    season: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0),
) -> pd.DataFrame:
    """Monthly table whose quarterly log revenue is a random walk with drift plus noise.

    ``market``: sd per quarter of a shock shared by every account (added to
    the persistent one); ``season``: log effect of each calendar quarter.
    """
    rng = np.random.default_rng(seed)
    scale = np.sqrt(5 * 1.0 / rng.chisquare(5, n))  # account scales, prior d0 = 5, s0^2 = 1
    drift = rng.normal(0.02, 0.03, n)
    common = market * rng.standard_normal(quarters)
    level = np.log(1e6) + np.cumsum(
        drift[:, None] + scale[:, None] * eta * rng.standard_normal((n, quarters)) + common,
        axis=1,
    )
    y = level + scale[:, None] * eps * rng.standard_normal((n, quarters))
    y = y + np.resize(np.asarray(season), quarters)[None, :]
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


def test_market_factor_recovered_with_its_weight():
    # planted: a shared shock of sd 0.08 a quarter (0.16 a year) on top of account shocks of
    # sd 0.15 x scale (mean scale^2 = E[5 / chi2_5] = 5/3); ten years give 36 degrees of freedom
    monthly = _local_level_monthly(1000, 40, eta=0.15, eps=0.25, seed=7, market=0.08)
    m = RevenueShocks(max_quarters=40, bootstrap=50).fit(monthly, as_of="2029-12-31")
    mk = m.market_
    assert mk["quarters"] == 39 and mk["accounts"] == 1000
    assert mk["lower"] <= 0.16 <= mk["upper"]
    assert mk["volatility_annual"] == pytest.approx(0.16, rel=0.25)
    true_weight = 0.08**2 / (0.08**2 + 0.15**2 * 5 / 3)
    assert mk["weight_lower"] <= true_weight <= mk["weight_upper"]
    assert mk["weight"] == pytest.approx(true_weight, rel=0.5)
    row = m.summary().set_index("term").loc["market_weight"]
    assert row["estimate"] == pytest.approx(mk["weight"])


def test_market_factor_interval_covers_over_repeated_books():
    # three years of quarters (7 degrees of freedom after the seasonal profile): the 90 %
    # interval covers the planted 0.16 in most of 20 books and the variance is unbiased
    hits, b2 = 0, []
    for seed in range(20):
        monthly = _local_level_monthly(400, 12, eta=0.15, eps=0.25, seed=100 + seed, market=0.08)
        mk = RevenueShocks(bootstrap=5).fit(monthly, as_of="2022-12-31").market_
        hits += mk["lower"] <= 0.16 <= mk["upper"]
        b2.append((mk["volatility_annual"] / 2) ** 2)
    assert hits >= 16
    assert np.mean(b2) == pytest.approx(0.08**2, rel=0.3)


def test_no_market_factor_when_none_is_planted():
    monthly = _local_level_monthly(2000, 12, eta=0.15, eps=0.25, seed=8)
    mk = RevenueShocks(bootstrap=50).fit(monthly, as_of="2022-12-31").market_
    assert mk["lower"] == 0.0 and mk["volatility_annual"] < 0.06
    assert mk["weight"] < 0.05


def test_account_volatility_follows_the_planted_scale_and_the_prior_fills_gaps():
    monthly = _local_level_monthly(1500, 12, eta=0.2, eps=0.1, seed=9)
    m = RevenueShocks(bootstrap=50).fit(monthly, as_of="2022-12-31")
    rng = np.random.default_rng(9)
    planted = np.sqrt(5 * 1.0 / rng.chisquare(5, 1500))  # the generator's first draws
    vol = m.annual_volatility([f"A{i}" for i in range(1500)] + ["new"])
    assert np.corrcoef(vol.iloc[:-1], planted)[0, 1] > 0.6
    # unknown account: the book's prior scale
    assert vol["new"] == pytest.approx(np.sqrt(4 * m.params_["s0_sq"]) * m.params_["sigma_eta"])
    assert m.book_volatility == pytest.approx(vol["new"])
    # the median account's annual volatility is about 2 x 0.2 (scale median ~1.1)
    assert 0.3 < float(np.median(vol)) < 0.6


def test_seasonal_profile_is_recovered_despite_growth():
    season = (0.2, -0.1, 0.05, -0.15)
    monthly = _local_level_monthly(1500, 10, eta=0.05, eps=0.05, seed=3, season=season)
    m = RevenueShocks(bootstrap=20).fit(monthly, as_of="2022-06-30")
    q = quarterly_revenue(monthly, as_of="2022-06-30", max_quarters=12)
    # the planted effect of each quarter-of-year index used by the model
    planted = (
        q.assign(effect=[season[(d.month - 1) // 3] for d in pd.to_datetime(q["quarter_end"])])
        .groupby("quarter_of_year")["effect"]
        .first()
        .reindex(range(4))
        .to_numpy()
    )
    planted = planted - planted.mean()
    np.testing.assert_allclose(m.seasonal_profile_, planted, atol=0.01)


def test_spread_estimates_use_only_histories_long_and_wide_enough():
    from kam_analysis.ltv.analysis import spread_estimates

    ids = [f"A{i}" for i in range(40)] + ["new"]
    long = _local_level_monthly(40, 12, eta=0.15, eps=0.2, seed=4)
    est = spread_estimates(long, as_of="2022-12-31", models=None, account_ids=ids)
    assert est.months == 36 and est.accounts == 40
    assert list(est.volatility.index) == ids[:-1]  # the new account is left to the book value
    assert est.book_volatility > 0 and est.market["quarters"] == 11
    assert est.churn_shock == {}  # no hazard model
    # fewer than 30 accounts, or runs shorter than 24 months: nothing is used
    few = spread_estimates(
        long[long["account_id"].isin(ids[:20])], as_of="2022-12-31", models=None, account_ids=ids
    )
    assert few.volatility.empty and few.accounts == 20 and few.market == {}
    short = _local_level_monthly(40, 7, eta=0.15, eps=0.2, seed=4)
    brief = spread_estimates(short, as_of="2021-09-30", models=None, account_ids=ids)
    assert brief.volatility.empty and brief.months == 21
    # no revenue at all: empty, no error
    none = spread_estimates(long.iloc[:0], as_of="2022-12-31", models=None, account_ids=ids)
    assert none.volatility.empty and none.months == 0

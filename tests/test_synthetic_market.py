"""The planted market factor of the synthetic generator (issue 15, section 5).

A random walk on the log of every customer's wallet, shared by all accounts:
its truth in ``ground_truth.json``, its trace in the revenue, and its own
random stream (every other draw is unchanged).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kam_analysis.core.schemas import CANONICAL_TABLES
from kam_analysis.synthetic import SyntheticSettings, generate_dataset
from kam_analysis.synthetic.demo import _market_path

N = 300
SEED = 11
MONTHS = 48  # 2022-04 .. 2026-03, the default window


def _read(folder) -> dict[str, pd.DataFrame]:
    tables = {t: pd.read_parquet(folder / f"{t}.parquet") for t in CANONICAL_TABLES}
    tables["truth"] = pd.read_parquet(folder / "ground_truth_accounts.parquet")
    return tables


def _truth(folder) -> dict:
    return json.loads((folder / "ground_truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    """The same book (seed 11, 300 accounts) without a market, at the default and at 0.3."""
    out = {}
    for name, sigma in (("none", 0.0), ("default", None), ("high", 0.3)):
        folder = tmp_path_factory.mktemp("market") / name
        settings = None if sigma is None else SyntheticSettings(market_volatility_annual=sigma)
        generate_dataset(folder, n_accounts=N, seed=SEED, settings=settings)
        out[name] = (folder, _read(folder), _truth(folder))
    return out


def _scaled(*truths: dict) -> set[str]:
    """Accounts whose wallet the concentration planting scaled (the factor moves with the market)."""
    return {a["account_id"] for t in truths for a in t["concentration"]["scaled_accounts"]}


# --------------------------------------------------------------------------- the truth


def test_setting_defaults_to_ten_percent_and_is_validated():
    assert SyntheticSettings().market_volatility_annual == 0.10
    assert SyntheticSettings(market_volatility_annual=0).market_volatility_annual == 0
    for bad in (-0.01, 1.0):
        with pytest.raises(ValueError, match="market_volatility_annual"):
            SyntheticSettings(market_volatility_annual=bad)


def test_ground_truth_records_the_planted_path(books):
    for name, sigma in (("none", 0.0), ("default", 0.10), ("high", 0.3)):
        market = books[name][2]["market"]
        assert market["volatility_annual"] == sigma
        path = market["monthly_log_path"]
        assert len(path) == len(market["months"]) == MONTHS
        assert market["months"][0] == "2022-04" and market["months"][-1] == "2026-03"
        assert path[0] == 0.0
        assert "random walk" in market["definition"] and "no drift" in market["definition"]
        assert books[name][2]["params"]["settings"]["market_volatility_annual"] == sigma
    assert books["none"][2]["market"]["monthly_log_path"] == [0.0] * MONTHS
    # one stream of standard normal steps per seed, scaled by sigma: the same shape
    high = np.array(books["high"][2]["market"]["monthly_log_path"])
    default = np.array(books["default"][2]["market"]["monthly_log_path"])
    np.testing.assert_allclose(default * 3, high, rtol=1e-12, atol=1e-15)
    # the written path is the generator's
    np.testing.assert_array_equal(
        _market_path(SEED, MONTHS, SyntheticSettings(market_volatility_annual=0.3)), high
    )


def test_monthly_steps_have_the_planted_volatility(tmp_path):
    sigma = 0.4
    folder = tmp_path / "ds"
    generate_dataset(
        folder,
        n_accounts=30,
        seed=3,
        start="2016-04-01",
        settings=SyntheticSettings(market_volatility_annual=sigma),
    )
    path = np.array(_truth(folder)["market"]["monthly_log_path"])
    assert len(path) == 120 and path[0] == 0.0
    # steps ~ N(0, sigma^2 / 12): sum of squares / (sigma^2 / 12) ~ chi-square(k)
    steps = np.diff(path)
    k = len(steps)
    q = np.sum(steps**2) / (sigma**2 / 12)
    assert stats.chi2.ppf(0.0005, k) < q < stats.chi2.ppf(0.9995, k)
    # pooled over 400 seeds (the generator's own function) the bound is much tighter
    s = SyntheticSettings(market_volatility_annual=sigma)
    steps = np.stack([np.diff(_market_path(seed, 48, s)) for seed in range(400)])
    q = np.sum(steps**2) / (sigma**2 / 12)
    assert stats.chi2.ppf(0.0005, steps.size) < q < stats.chi2.ppf(0.9995, steps.size)
    assert abs(steps.mean()) < 4 * sigma / math.sqrt(12 * steps.size)  # no drift
    # independent steps: lag-1 autocorrelation within 4 standard errors of 0
    lag1 = np.sum(steps[:, 1:] * steps[:, :-1]) / np.sum(steps**2)
    assert abs(lag1) < 4 / math.sqrt(steps[:, 1:].size)


def test_market_stream_depends_on_the_seed_only():
    s = SyntheticSettings(market_volatility_annual=0.2)
    a, b = _market_path(0, 48, s), _market_path(1, 48, s)
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(_market_path(0, 48, s), a)
    np.testing.assert_array_equal(_market_path(0, 60, s)[:48], a)  # a longer window extends it
    zero = _market_path(0, 48, SyntheticSettings(market_volatility_annual=0))
    assert (zero == 0).all() and not np.signbit(zero).any()


# --------------------------------------------------------------------------- in the revenue


def test_book_revenue_moves_with_the_planted_path(books):
    path = np.array(books["high"][2]["market"]["monthly_log_path"])
    months = pd.period_range("2022-04", "2026-03", freq="M")

    def monthly(tx: pd.DataFrame) -> pd.Series:
        return tx.groupby(tx.date.dt.to_period("M")).revenue.sum().reindex(months)

    tx0, tx1 = books["none"][1]["transactions"], books["high"][1]["transactions"]
    log_ratio = np.log(monthly(tx1) / monthly(tx0)).to_numpy()
    assert np.isfinite(log_ratio).all()
    assert np.corrcoef(log_ratio, path)[0, 1] > 0.95
    slope = np.polyfit(path, log_ratio, 1)[0]
    assert 0.9 < slope < 1.1
    # the same line draws: outside the (re-)scaled top accounts the ratio is the factor itself
    # up to rounding to whole yen and the 100-yen floor of a line
    keep = ~tx0.account_id.isin(_scaled(books["none"][2], books["high"][2]))
    exact = np.log(monthly(tx1[keep]) / monthly(tx0[keep])).to_numpy()
    np.testing.assert_allclose(exact, path, atol=2e-3)


def test_wallet_truths_and_amounts_carry_the_market(books):
    _, t0, g0 = books["none"]
    _, t1, g1 = books["high"]
    path = np.array(g1["market"]["monthly_log_path"])
    end = math.exp(path[-1])
    scaled = _scaled(g0, g1)
    # truths: the wallet at as-of and the run-rate of the accounts still active move with
    # exp(market[as-of month]); shares of wallet do not move at all
    a0 = t0["truth"].set_index("account_id")
    a1 = t1["truth"].set_index("account_id")
    pd.testing.assert_series_equal(a0.true_share_of_wallet, a1.true_share_of_wallet)
    other = ~a0.index.isin(scaled)
    np.testing.assert_allclose(a1.true_wallet[other] / a0.true_wallet[other], end, rtol=1e-12)
    alive = other & ~a0.churned
    np.testing.assert_allclose(
        a1.true_annual_run_rate[alive] / a0.true_annual_run_rate[alive], end, rtol=1e-12
    )
    # the observed wallet estimate (rounded to 10,000 yen) follows the true wallet
    w0 = t0["accounts"].set_index("account_id").wallet_estimate[other].dropna()
    w1 = t1["accounts"].set_index("account_id").wallet_estimate[w0.index]
    assert (np.abs(w1 - w0 * end) <= 5_000 * (1 + end) + 1).all()
    # contract terms: valued at the wallet of the month the term starts (clipped to the
    # window), rounded to 1,000 yen; pilots ("expired") are valued from an opportunity
    c0, c1 = t0["contracts"], t1["contracts"]
    terms = ~c0.account_id.isin(scaled) & c0.status.ne("expired") & c0.annual_value.gt(0)
    start = c0.start_date.clip(pd.Timestamp("2022-04-01"), pd.Timestamp("2026-03-31"))[terms]
    factor = np.exp(path[((start.dt.year - 2022) * 12 + start.dt.month - 4).to_numpy()])
    gap = np.abs(c1.annual_value[terms] - c0.annual_value[terms] * factor)
    assert terms.sum() > 50 and (gap <= 500 * (1 + factor) + 1).all()


# --------------------------------------------------------------------------- nothing else moves


def test_market_moves_only_the_wallet_dependent_amounts(books):
    f0, t0, g0 = books["none"]
    f1, t1, g1 = books["default"]
    assert g1["market"]["volatility_annual"] == 0.10
    for table in ("stakeholders", "activities", "surveys", "usage"):
        pd.testing.assert_frame_equal(t0[table], t1[table], obj=table)
    # plans: the same team and objectives; revenue objectives read their baseline and target
    # from the transactions (and plans.py draws a status per branch), so those may move
    team = [pd.read_parquet(f / "account_team.parquet") for f in (f0, f1)]
    pd.testing.assert_frame_equal(*team)
    moving = ["baseline_value", "target_value", "status"]
    objectives = [
        pd.read_parquet(f / "account_objectives.parquet").drop(columns=moving) for f in (f0, f1)
    ]
    pd.testing.assert_frame_equal(*objectives)
    pd.testing.assert_frame_equal(
        t0["accounts"].drop(columns="wallet_estimate"),
        t1["accounts"].drop(columns="wallet_estimate"),
    )
    assert t0["accounts"].wallet_estimate.isna().equals(t1["accounts"].wallet_estimate.isna())
    # the churn truths and every other per-account truth are the same draws
    money = ["true_wallet", "true_annual_run_rate"]
    pd.testing.assert_frame_equal(t0["truth"].drop(columns=money), t1["truth"].drop(columns=money))
    assert g0["churn"] == g1["churn"] and g0["tiers"] == g1["tiers"]
    # contracts and opportunities: same rows, only the values
    assert len(t0["contracts"]) == len(t1["contracts"])
    pd.testing.assert_frame_equal(
        t0["contracts"].drop(columns="annual_value"), t1["contracts"].drop(columns="annual_value")
    )
    pd.testing.assert_frame_equal(
        t0["opportunities"].drop(columns="amount"), t1["opportunities"].drop(columns="amount")
    )
    assert not t0["opportunities"].amount.equals(t1["opportunities"].amount)
    # transactions: same rows (ids, dates, product lines), different revenue
    tx0, tx1 = t0["transactions"], t1["transactions"]
    money = ["revenue", "cost", "quantity"]
    pd.testing.assert_frame_equal(tx0.drop(columns=money), tx1.drop(columns=money))
    assert (tx0.revenue != tx1.revenue).mean() > 0.9
    path = np.array(g1["market"]["monthly_log_path"])
    assert np.abs(path).max() > 0.01

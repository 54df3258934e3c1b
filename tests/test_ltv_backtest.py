"""Backtest: metrics on hand examples, diagnostics properties, and an end-to-end run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kam_analysis.ltv import BetaGeo, simulate_beta_geo
from kam_analysis.ltv.backtest import (
    BacktestInputError,
    backtest_ltv,
    calibration_table,
    error_metrics,
    period_transactions_histogram,
    rolling_backtest,
    rolling_cutoffs,
)
from kam_analysis.ltv.value import LtvSettings


def test_error_metrics_hand_example():
    m = error_metrics([10, 20, 30], [12, 18, 40], lower=[5, 19, 0], upper=[15, 25, 35])
    assert m["mae"] == pytest.approx((2 + 2 + 10) / 3)
    assert m["bias"] == pytest.approx((-2 + 2 - 10) / 3)
    assert m["total_error_pct"] == pytest.approx(60 / 70 - 1)
    assert m["wape"] == pytest.approx(14 / 70)
    assert m["coverage"] == pytest.approx(1 / 3)  # 12 in [5, 15]; 18 < 19; 40 > 35
    assert np.isnan(error_metrics([1.0], [1.0])["coverage"])


def test_error_metrics_errors():
    with pytest.raises(BacktestInputError, match="equal length"):
        error_metrics([1, 2], [1])
    with pytest.raises(BacktestInputError, match="finite"):
        error_metrics([np.nan], [1])
    with pytest.raises(BacktestInputError, match="no accounts"):
        error_metrics([], [])


def test_calibration_table_bins_by_prediction_rank():
    p = np.arange(1, 11, dtype=float)
    out = calibration_table(p, 2 * p, n_bins=5)
    assert out["n"].tolist() == [2] * 5
    assert out["predicted_mean"].tolist() == [1.5, 3.5, 5.5, 7.5, 9.5]
    np.testing.assert_allclose(out["ratio"], 2.0)
    with pytest.raises(BacktestInputError, match="n_bins"):
        calibration_table(p, p, n_bins=0)


def test_period_histogram_sums_to_customers_and_fits_simulated_data():
    params = {"r": 0.8, "alpha": 6.0, "a": 0.9, "b": 2.5}
    df = simulate_beta_geo(20_000, **params, T=np.full(20_000, 39.0), seed=4)
    model = BetaGeo.from_params(params)
    h = period_transactions_histogram(model, df["frequency"], df["T"])
    assert h["purchases"].tolist() == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert h["actual"].sum() == pytest.approx(20_000)
    assert h["model"].sum() == pytest.approx(20_000)
    # data simulated from the model: each bin within 5 % of the customers' count or 60
    assert np.all(np.abs(h["difference"]) < np.maximum(0.05 * h["actual"], 60))


def test_rolling_cutoffs_are_calendar_months():
    cuts = rolling_cutoffs("2026-03-31", holdout_months=12, n_origins=3, step_months=6)
    assert cuts == list(pd.to_datetime(["2025-03-31", "2024-09-30", "2024-03-31"]))


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
    from kam_analysis.data import open_dataset
    from kam_analysis.synthetic import generate_dataset

    out = tmp_path_factory.mktemp("bt") / "data"
    generate_dataset(out, n_accounts=500, seed=7)
    ds = open_dataset(out)
    frames = {t: ds.to_pandas(t) for t in ("contracts", "surveys", "activities", "usage")}
    return ds, frames


def test_backtest_end_to_end(small_data):
    ds, frames = small_data
    res = backtest_ltv(
        ds.table("transactions"),
        ds.table("accounts"),
        cutoff="2025-03-31",
        holdout_months=12,
        settings=LtvSettings(draws=200),
        data_end="2026-03-31",
        **frames,
    )
    allm = res.metrics.set_index("group").loc["all"]
    assert allm["n"] > 400
    # the planted data follow the models' assumptions: the total is right within 20 %
    assert abs(allm["total_error_pct"]) < 0.2
    # coverage counts only accounts alive at the cut-off (churned ones have [0, 0])
    churned_n = int((res.accounts["model"] == "churned").sum())
    assert allm["n_alive"] == allm["n"] - churned_n
    live = res.accounts[res.accounts["model"] != "churned"]
    assert allm["coverage"] == pytest.approx(live["inside"].mean())
    assert res.coverage.keys() == set(live["model"])
    assert all(v["n"] == (live["model"] == k).sum() for k, v in res.coverage.items())
    assert set(res.accounts["model"]) <= {
        "contractual_hazard",
        "contractual_sbg",
        "transactional_bgnbd",
        "churned",
    }
    # churned accounts are predicted 0 and (by the generator's event definition) earn 0
    churned = res.accounts[res.accounts["model"] == "churned"]
    assert (churned["predicted"] == 0).all() and (churned["actual"] == 0).all()
    # cumulative tracking: non-decreasing, one row per week, model within 10 % at the end
    tr = res.tracking
    assert (np.diff(tr["actual"]) >= 0).all() and (np.diff(tr["model"]) >= 0).all()
    assert tr["period"].iloc[-1] == 52
    assert tr["model"].iloc[-1] == pytest.approx(tr["actual"].iloc[-1], rel=0.1)
    assert res.histogram["actual"].sum() == pytest.approx(res.histogram["model"].sum())
    assert res.calibration["n"].sum() == len(res.accounts)


def test_backtest_errors(small_data):
    ds, frames = small_data
    with pytest.raises(BacktestInputError, match="ends after the data"):
        backtest_ltv(
            ds.table("transactions"),
            ds.table("accounts"),
            cutoff="2025-12-31",
            data_end="2026-03-31",
        )
    with pytest.raises(BacktestInputError, match="cutoffs is empty"):
        rolling_backtest(ds.table("transactions"), ds.table("accounts"), cutoffs=[])


def test_backtest_without_cost_compares_revenue_with_revenue(small_data):
    ds, frames = small_data
    tx = ds.table("transactions").drop("cost")
    kwargs = dict(
        cutoff="2025-03-31",
        holdout_months=12,
        settings=LtvSettings(draws=100, model="transactional"),
        data_end="2026-03-31",
    )
    res = backtest_ltv(tx, ds.table("accounts"), **kwargs)
    assert res.basis == "revenue"
    # the actual is the holdout revenue (the gross profit is unknown, not 0)
    np.testing.assert_allclose(res.accounts["actual"], res.accounts["actual_revenue"])
    assert res.accounts["actual"].sum() > 0
    allm = res.metrics.set_index("group").loc["all"]
    assert abs(allm["total_error_pct"]) < 0.5  # revenue predicted for revenue, not for 0
    assumed = backtest_ltv(tx, ds.table("accounts"), assumed_gross_margin=0.4, **kwargs)
    assert assumed.basis == "assumed_margin"
    np.testing.assert_allclose(assumed.accounts["actual"], 0.4 * assumed.accounts["actual_revenue"])
    np.testing.assert_allclose(assumed.accounts["predicted"], 0.4 * res.accounts["predicted"])


@pytest.fixture(scope="module")
def demo_backtests(tmp_path_factory):
    """The 12-month backtest from 2025-03-31 on the 2,000-account demo, seeds 0 and 1 (lazy)."""
    from kam_analysis.data import open_dataset
    from kam_analysis.synthetic import generate_dataset

    done = {}

    def run(seed: int):
        if seed not in done:
            folder = tmp_path_factory.mktemp(f"bt{seed}") / "d"
            generate_dataset(folder, n_accounts=2000, seed=seed)
            ds = open_dataset(folder)
            frames = {t: ds.to_pandas(t) for t in ("contracts", "surveys", "activities", "usage")}
            done[seed] = backtest_ltv(
                ds.table("transactions"),
                ds.table("accounts"),
                cutoff="2025-03-31",
                holdout_months=12,
                settings=LtvSettings(draws=300),
                data_end="2026-03-31",
                **frames,
            )
        return done[seed]

    return run


@pytest.mark.slow
@pytest.mark.parametrize(
    ("seed", "group"),
    [
        (0, "contractual_hazard"),
        (0, "transactional_bgnbd"),
        (1, "contractual_hazard"),
        (1, "transactional_bgnbd"),
    ],
)
def test_interval_coverage_per_group_is_nominal_on_the_demo(demo_backtests, seed, group):
    """Each model group's 80 % interval covers 80 % +- 5 points of the live accounts."""
    cov = demo_backtests(seed).coverage
    assert {"contractual_hazard", "transactional_bgnbd"} <= cov.keys()
    v = cov[group]
    assert v["n"] > 300, group
    assert v["coverage"] == pytest.approx(0.8, abs=0.05), (group, v)

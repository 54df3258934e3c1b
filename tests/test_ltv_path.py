"""One LTV path: every report that shows an LTV reads the context's valuation.

The LTV report (``ctx.ltv``), the scenario book (notebook 04,
``ctx.ltv_values``) and the account plan (``account_plan_data``) show the same
numbers: the models are fitted once per context, with the configured settings
and the features' purchase period. A copy that left out ``purchase_period``
read monthly purchase counts as weekly ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kam_analysis.actions import account_plan_data
from kam_analysis.config import ConfigError
from kam_analysis.ltv import analysis
from kam_analysis.ltv.value import LTV_COLUMNS, account_ltv

#: Cheap model settings for the tests that do not compare with the defaults.
FAST = {"draws": 100, "bootstrap_replicates": 20}


@pytest.fixture(scope="module")
def month_ctx(demo_context):
    """A context on a small demo whose features count purchases per month."""
    return demo_context(150, seed=1).with_settings(features={"period": "month"})


def _direct_ltv(ctx, period: str) -> pd.DataFrame:
    """:func:`account_ltv` called on the context's tables, models fitted inside."""
    return account_ltv(
        ctx.features,
        as_of=ctx.as_of,
        contracts=ctx.frame("contracts"),
        surveys=ctx.frame("surveys"),
        activities=ctx.frame("activities"),
        usage=ctx.frame("usage"),
        monthly=ctx.monthly,
        settings=ctx.config.ltv,
        purchase_period=period,
        assumed_gross_margin=ctx.config.data.assumed_gross_margin,
    )


def _by_account(ltv: pd.DataFrame) -> pd.DataFrame:
    return ltv[list(LTV_COLUMNS)].sort_values("account_id", ignore_index=True)


def test_reports_value_accounts_with_the_configured_purchase_period(month_ctx) -> None:
    ctx = month_ctx
    assert ctx.config.features.period == "month"
    report = _by_account(ctx.ltv.ltv)
    # notebook 04 (scenario book) reads ctx.ltv_values: the report's numbers
    pd.testing.assert_frame_equal(_by_account(ctx.ltv_values.ltv), report)
    # ... which are account_ltv's with purchase_period="month"
    pd.testing.assert_frame_equal(_by_account(_direct_ltv(ctx, "month")), report)
    # and not those of a copy that counts months as weeks
    week = _by_account(_direct_ltv(ctx, "week"))
    tx = report["model"].str.startswith("transactional").to_numpy()
    assert tx.any(), "the demo should have accounts valued by their purchases"
    assert not np.allclose(week.loc[tx, "ltv"], report.loc[tx, "ltv"])

    # the account plan of a transactional account shows the same row
    acc_id = str(report.loc[tx, "account_id"].iloc[0])
    plan = account_plan_data(ctx, acc_id)
    assert plan.ltv is not None
    row = report.set_index("account_id").loc[acc_id]
    for col in ("ltv", "ltv_lower", "ltv_upper", "model", "basis", "churn_risk_12m"):
        assert plan.ltv[col] == row[col], col
    assert plan.ltv["ltv"] != week.set_index("account_id").loc[acc_id, "ltv"]


def test_ltv_reuses_the_valuation_without_refitting(demo_context, monkeypatch) -> None:
    fits = []
    fit = analysis.fit_ltv_models

    def counted(*args, **kwargs):
        fits.append(kwargs.get("purchase_period"))
        return fit(*args, **kwargs)

    monkeypatch.setattr(analysis, "fit_ltv_models", counted)
    ctx = demo_context(150, seed=1).with_settings(ltv=FAST)
    values = ctx.ltv_values
    assert fits == ["week"]
    res = ctx.ltv
    assert fits == ["week"]  # the full analysis fitted nothing again
    assert res.models is values.models
    assert res.ltv is values.ltv
    assert res.settings == values.settings == ctx.config.ltv
    assert (res.basis, res.assumed_gross_margin) == (values.basis, values.assumed_gross_margin)


def test_with_settings_overrides_reach_the_ltv(month_ctx) -> None:
    five = month_ctx.with_settings(ltv={**FAST, "horizon_years": 5})
    three = five.with_settings(ltv={"horizon_years": 3})
    assert three.ltv_values.settings.horizon_years == 3
    assert five.config.ltv.horizon_years == 5  # the original context is unchanged
    assert three.ltv_values.settings.draws == FAST["draws"]  # other overrides kept
    total_3 = float(three.ltv_values.valued["ltv"].sum())
    total_5 = float(five.ltv_values.valued["ltv"].sum())
    assert 0 < total_3 < total_5


def test_with_settings_names_an_unknown_setting(month_ctx) -> None:
    with pytest.raises(ConfigError, match="horizon_yeras"):
        month_ctx.with_settings(ltv={"horizon_yeras": 3})
    with pytest.raises(ConfigError, match="lvt"):
        month_ctx.with_settings(lvt={"horizon_years": 3})


def test_the_backtest_sample_is_fixed_by_the_seed_ids_and_sizes() -> None:
    from kam_analysis.ltv.backtest import backtest_sample

    ids = [f"C{i:05d}" for i in range(5000)]
    size = np.arange(5000.0)[::-1]  # C00000 is the largest
    assert backtest_sample(ids, 5000, size=size) is None  # a book this size is backtested whole
    w = backtest_sample(ids, 1000, size=size, seed=3)
    assert len(w) == 1000 and set(w.index) <= set(ids)
    assert list(w.index) == [a for a in ids if a in set(w.index)]  # in the book's order
    # the 100 largest for certain, 900 of the other 4,900 drawn, each standing for 4900 / 900
    assert set(ids[:100]) <= set(w.index) and (w[ids[:100]] == 1).all()
    drawn = w.drop(ids[:100])
    assert len(drawn) == 900 and np.allclose(drawn, 4900 / 900)
    assert w.sum() == pytest.approx(5000)  # the weights stand for the whole book
    again = backtest_sample(ids[::-1], 1000, size=size[::-1], seed=3)
    assert list(again.index) == list(w.index)[::-1]  # whatever the row order
    other = backtest_sample(ids, 1000, size=size, seed=4).drop(ids[:100])
    assert 100 < len(set(drawn.index) & set(other.index)) < 300  # another seed, another draw
    # a random draw: about a fifth of each block of the other ids
    per_block = np.bincount([int(a[1:]) // 1000 for a in drawn.index], minlength=5)
    assert per_block[1:].min() > 130 and per_block[1:].max() < 230
    assert len(backtest_sample(ids, 1000)) == 1000  # without sizes: all drawn at random


def test_weighted_metrics_estimate_the_totals_they_stand_for() -> None:
    from kam_analysis.ltv.backtest import error_metrics, interval_metrics

    predicted, actual = np.array([10.0, 2.0, 4.0]), np.array([8.0, 3.0, 4.0])
    weighted = error_metrics(predicted, actual, weight=[1.0, 3.0, 2.0])
    expanded = error_metrics([10.0, 2, 2, 2, 4, 4], [8.0, 3, 3, 3, 4, 4])
    assert weighted.pop("n") == 3 and expanded.pop("n") == 6
    assert weighted == pytest.approx(expanded, nan_ok=True)
    acc = pd.DataFrame(
        {
            "actual": [1.0, 5.0, 9.0],
            "lower": [0.0, 6.0, 0.0],
            "upper": [2.0, 7.0, 8.0],
            "inside": [1.0, 0.0, 0.0],
            "interval_score": [2.0, 11.0, 13.0],
        }
    )
    m = interval_metrics(acc.assign(weight=[2.0, 1.0, 1.0]), 0.8)
    assert m["coverage"] == pytest.approx(0.5) and m["below"] == pytest.approx(0.25)
    assert m["above"] == pytest.approx(0.25) and m["interval_score"] == pytest.approx(7.0)
    assert interval_metrics(acc, 0.8)["coverage"] == pytest.approx(1 / 3)  # unweighted


@pytest.mark.slow
def test_a_large_book_is_backtested_on_its_sample(demo_context) -> None:
    from kam_analysis.ltv.backtest import backtest_sample

    ctx = demo_context(1500, 0)
    full = analysis.ltv_analysis(ctx, n_origins=1, long_holdout_months=None)
    small = ctx.with_settings(ltv={"backtest_max_accounts": 1000})
    sampled = analysis.ltv_analysis(small, n_origins=1, long_holdout_months=None)
    book = ctx.features
    weights = backtest_sample(
        book["account_id"], 1000, size=book["revenue_12m"], seed=small.config.ltv.seed
    )

    notes = [m for m in sampled.messages if m.key == "backtest_sampled"]
    assert [m.values for m in notes] == [{"n": 1000, "total": 1500}]
    assert not any(m.key == "backtest_sampled" for m in full.messages)
    full_acc = full.backtest.accounts.set_index("account_id")
    got = sampled.backtest.accounts.set_index("account_id")
    assert set(got.index) == set(weights.index) & set(full_acc.index)  # the sample, all of it
    np.testing.assert_allclose(got["weight"], weights[got.index])
    assert (full_acc["weight"] == 1).all()
    # the same accounts' holdout, measured from the sampled lines
    np.testing.assert_allclose(got["actual"], full_acc.loc[got.index, "actual"])
    # the weighted sample estimates what the whole book's backtest measures
    f = full.backtest.metrics.set_index("group").loc["all"]
    s = sampled.backtest.metrics.set_index("group").loc["all"]
    assert s["total_actual"] == pytest.approx(f["total_actual"], rel=0.05)
    assert abs(f["total_error_pct"] - s["total_error_pct"]) < 0.03
    assert abs(f["coverage"] - s["coverage"]) < 0.04


@pytest.mark.parametrize("horizon", [1, 2, 3, 36, 60, 61])
def test_quarterly_path_sums_equal_the_month_by_month_sum(horizon):
    from kam_analysis.ltv.value import _quarterly_path_sums

    rng = np.random.default_rng(horizon)
    c, n, n_q = 4, 50, -(-horizon // 3)
    g = rng.normal(0.05, 0.4, (c, n))
    log_mult = rng.normal(0.0, 0.3, (c, n, n_q))
    months = rng.integers(0, horizon + 1, (c, n))
    months[0, :3] = (0, horizon, 1)  # the ends
    v = 0.992
    k = np.arange(1, horizon + 1)
    monthly = np.exp(g[:, :, None] / 12 * k + log_mult[:, :, (k - 1) // 3]) * v**k
    cum = np.concatenate([np.zeros((c, n, 1)), np.cumsum(monthly, axis=2)], axis=2)
    expected = np.take_along_axis(cum, months[:, :, None], axis=2)[:, :, 0]
    got = _quarterly_path_sums(g, v, log_mult, months)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    assert (got[months == 0] == 0).all()


def test_ltv_without_kept_draws_equals_the_simulation(month_ctx, monkeypatch):
    from kam_analysis.ltv import value

    ctx = month_ctx.with_settings(ltv=FAST)
    kw = dict(
        as_of=ctx.as_of,
        contracts=ctx.frame("contracts"),
        monthly=ctx.monthly,
        settings=ctx.config.ltv,
        purchase_period="month",
    )
    # simulated a few accounts at a time: the blocks' draws land in the kept matrix
    monkeypatch.setattr(value, "_SIM_BLOCK", 7)
    full = value.simulate_ltv(ctx.features, **kw)
    lean = value.simulate_ltv(ctx.features, **kw, keep_draws=False)
    assert lean.draws is None and full.draws.shape == (100, len(ctx.features))
    pd.testing.assert_frame_equal(lean.ltv, full.ltv, check_exact=True)
    valued = full.ltv["model"].str.startswith(("contractual", "transactional")).to_numpy()
    assert valued.sum() > 20
    lo, hi = np.quantile(full.draws[:, valued], ctx.config.ltv.quantiles, axis=0)
    np.testing.assert_array_equal(full.ltv.loc[valued, "ltv_lower"], lo)
    np.testing.assert_array_equal(full.ltv.loc[valued, "ltv_upper"], hi)


def test_the_simulation_blocks_change_the_draws_not_the_intervals(month_ctx, monkeypatch):
    """Accounts simulated 7 at a time get the intervals of one block, up to Monte Carlo error.

    Each block has its own random stream, but the inputs of its accounts, the
    parameter draws and the book's shock variances are the same: a block that
    read another block's accounts, or drew its own parameters, would move
    its accounts' intervals by more than another seed does.
    """
    from kam_analysis.ltv import value

    ctx = month_ctx.with_settings(ltv={"draws": 400, "bootstrap_replicates": 20})
    kw = dict(
        as_of=ctx.as_of,
        **{t: ctx.frame(t) for t in ("contracts", "surveys", "activities", "usage")},
        monthly=ctx.monthly,
        purchase_period="month",
        keep_draws=False,
    )
    one = value.simulate_ltv(ctx.features, settings=ctx.config.ltv, **kw).ltv
    other_seed = ctx.with_settings(ltv={"seed": 1}).config.ltv
    reseeded = value.simulate_ltv(ctx.features, settings=other_seed, **kw).ltv
    monkeypatch.setattr(value, "_SIM_BLOCK", 7)
    many = value.simulate_ltv(ctx.features, settings=ctx.config.ltv, **kw).ltv
    pd.testing.assert_series_equal(many["ltv"], one["ltv"])  # the point value is closed-form

    def log_ratio(t: pd.DataFrame, rows: pd.Series, col: str) -> np.ndarray:
        a, b = one.loc[rows, col].to_numpy(), t.loc[rows, col].to_numpy()
        return np.log(np.maximum(b, 1e-9) / np.maximum(a, 1e-9))

    for model in ("contractual_hazard", "transactional_bgnbd"):
        valued = (one["model"] == model) & (one["ltv"] > 0)
        assert valued.sum() > 30, model
        for col in ("ltv_lower", "ltv_upper"):
            blocks, seed = log_ratio(many, valued, col), log_ratio(reseeded, valued, col)
            assert np.abs(blocks).max() > 0  # other random streams
            assert abs(np.median(blocks)) < 0.05, (model, col)  # no shift
            # the blocks move each account's bound no more than another seed does
            assert np.std(blocks) < 1.5 * np.std(seed), (model, col)

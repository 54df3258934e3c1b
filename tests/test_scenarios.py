"""Tests for kam_analysis.scenarios: engine, scenarios, concentration, stress tests."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pydantic
import pytest

from kam_analysis import scenarios as sc
from kam_analysis.pricing import Range, RoiInputs

K_SE = 4.0  # Monte Carlo tolerance: |estimate - truth| < K_SE standard errors


def make_book(n=6, *, revenue=None, churn=0.0, growth=0.0, vol=0.0, margin=0.3, tiers=None):
    revenue = np.arange(1, n + 1) * 100.0 if revenue is None else np.asarray(revenue, float)
    book = pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(len(revenue))],
            "monthly_revenue": revenue,
            "margin": margin,
            "churn_prob_month": churn,
            "growth_annual": growth,
            "volatility_annual": vol,
        }
    )
    if tiers is not None:
        book["tier"] = tiers
    return book


def deterministic_projection(book, months):
    t = np.arange(1, months + 1)
    g = book["growth_annual"].to_numpy()[:, None]
    return (book["monthly_revenue"].to_numpy()[:, None] * (1 + g) ** (t / 12)).sum(axis=0)


# --- engine: closed-form cases ---------------------------------------------------


@pytest.mark.parametrize(("dtype", "rtol"), [(np.float64, 1e-12), (np.float32, 2e-6)])
def test_zero_volatility_zero_churn_is_the_deterministic_projection(dtype, rtol):
    book = make_book(growth=[0.0, 0.05, 0.1, -0.2, 0.3, 1.0])
    res = sc.simulate_book(book, months=24, draws=5, dtype=dtype)
    expected = deterministic_projection(book, 24)
    np.testing.assert_allclose(res.revenue_paths, np.broadcast_to(expected, (5, 24)), rtol=rtol)
    np.testing.assert_allclose(res.gross_profit_paths, 0.3 * res.revenue_paths, rtol=rtol)


def _survival_check(res, n_accounts, p):
    draws, months = res.revenue_paths.shape
    survival = res.revenue_paths.mean(axis=0) / n_accounts
    truth = (1 - p) ** np.arange(1, months + 1)
    se = np.sqrt(truth * (1 - truth) / (n_accounts * draws))
    assert np.all(np.abs(survival - truth) < K_SE * se), np.abs(survival - truth) / se


def test_churn_survival_matches_geometric_small_book():
    p = 0.05
    book = make_book(20, revenue=np.ones(20), churn=p)
    _survival_check(sc.simulate_book(book, draws=4000, seed=3), 20, p)


def test_churn_survival_matches_geometric_large_book_per_draw_path():
    # > 4096 accounts switches the engine to one draw at a time with the
    # subtracted-churn reduction; the survival law must not change.
    p = 0.03
    book = make_book(5000, revenue=np.ones(5000), churn=p)
    _survival_check(sc.simulate_book(book, months=24, draws=30, seed=5), 5000, p)


def test_churn_probability_one_and_zero():
    book = make_book(2, revenue=[1.0, 2.0], churn=[1.0, 0.0])
    res = sc.simulate_book(book, months=5, draws=50)
    np.testing.assert_allclose(res.revenue_paths, 2.0, rtol=1e-6)


def _quantile_se(x, p):
    lo, hi = np.quantile(x, [max(p - 0.05, 0.001), min(p + 0.05, 0.999)])
    density = 0.1 / (hi - lo)
    return math.sqrt(p * (1 - p) / x.size) / density


@pytest.mark.parametrize("knots", [1, 12])
def test_matches_naive_per_month_model_in_distribution(knots):
    book = make_book(
        6, revenue=[50, 80, 120, 200, 300, 500], churn=0.015, growth=0.08, vol=0.3, margin=0.4
    )
    draws = 6000
    fast = sc.simulate_book(
        book, draws=draws, seed=11, market_factor_weight=0.4, growth_knot_months=knots
    )
    ref_rev, ref_gp = sc.simulate_book_reference(
        book, draws=draws, seed=12, market_factor_weight=0.4
    )
    a, b = fast.total_revenue, ref_rev.sum(axis=1)
    se_mean = math.sqrt(a.var() / a.size + b.var() / b.size)
    assert abs(a.mean() - b.mean()) < K_SE * se_mean
    for p in (0.1, 0.5, 0.9):
        se = math.hypot(_quantile_se(a, p), _quantile_se(b, p))
        assert abs(np.quantile(a, p) - np.quantile(b, p)) < K_SE * se, p
    # the analytic expectation agrees with both
    analytic = fast.account_expected["expected_revenue"].sum()
    assert abs(a.mean() - analytic) < K_SE * a.std() / math.sqrt(a.size)
    assert abs(b.mean() - analytic) < K_SE * b.std() / math.sqrt(b.size)
    np.testing.assert_allclose(
        fast.total_gross_profit, 0.4 * fast.total_revenue, rtol=1e-5
    )  # constant margin


def test_monthly_mean_matches_closed_form_each_month():
    book = make_book(4, churn=0.02, growth=0.1, vol=0.25)
    res = sc.simulate_book(book, draws=8000, seed=2, market_factor_weight=0.5)
    exp_rev, _, _ = sc.expected_account_paths(
        sc.validate_book(book), sc.resolve_scenario(None, book), 36
    )
    truth = exp_rev.sum(axis=0)
    se = res.revenue_paths.std(axis=0) / math.sqrt(8000)
    assert np.all(np.abs(res.revenue_paths.mean(axis=0) - truth) < K_SE * se)


def test_same_seed_same_numbers_and_other_seed_differs():
    book = make_book(churn=0.02, vol=0.2)
    a = sc.simulate_book(book, draws=200, seed=7, market_factor_weight=0.3)
    b = sc.simulate_book(book, draws=200, seed=7, market_factor_weight=0.3)
    c = sc.simulate_book(book, draws=200, seed=8, market_factor_weight=0.3)
    assert np.array_equal(a.revenue_paths, b.revenue_paths)
    assert not np.array_equal(a.revenue_paths, c.revenue_paths)
    # the first draws do not depend on how many draws are run
    d = sc.simulate_book(book, draws=50, seed=7, market_factor_weight=0.3)
    assert np.array_equal(a.revenue_paths[:50], d.revenue_paths)


@pytest.mark.parametrize("n_accounts", [6, 5000])
def test_chunking_and_threads_do_not_change_results(n_accounts):
    book = make_book(n_accounts, revenue=np.linspace(1, 50, n_accounts), churn=0.02, vol=0.2)
    draws = 12 if n_accounts > 100 else 300
    runs = [
        sc.simulate_book(
            book, draws=draws, seed=1, market_factor_weight=0.3, chunk_draws=c, threads=t
        )
        for c, t in ((None, 1), (1, 1), (5, 2), (draws, 2))
    ]
    for other in runs[1:]:
        assert np.array_equal(runs[0].revenue_paths, other.revenue_paths)
        assert np.array_equal(runs[0].gross_profit_paths, other.gross_profit_paths)


def test_result_summary_and_target():
    book = make_book(churn=0.01, vol=0.2)
    res = sc.simulate_book(book, draws=1000, seed=0, target=1e12)
    assert res.prob_miss_target == 1.0
    summary = res.summary()
    assert list(summary["metric"]) == ["total_revenue", "total_gross_profit"]
    row = summary.iloc[0]
    assert row["p10"] <= row["p50"] <= row["p90"]
    monthly = res.monthly()
    assert set(monthly.columns) == {"month", "metric", "mean", "p10", "p50", "p90"}
    assert len(monthly) == 2 * 36
    assert res.seed == 0 and res.settings["draws"] == 1000


# --- scenario shocks ----------------------------------------------------------------


def test_lose_accounts_removes_exactly_that_revenue_from_month_m():
    book = make_book(growth=0.1)
    lose = sc.Scenario(name="lose", shocks=[sc.LoseAccounts(account_ids=["A2"], month=13)])
    base = sc.simulate_book(book, draws=3, dtype=np.float64)
    shocked = sc.simulate_book(book, draws=3, dtype=np.float64, scenario=lose)
    a2 = 300.0 * 1.1 ** (np.arange(1, 37) / 12)
    diff = base.revenue_paths - shocked.revenue_paths
    np.testing.assert_array_equal(diff[:, :12], 0.0)
    np.testing.assert_allclose(diff[:, 12:], np.broadcast_to(a2[12:], (3, 24)), rtol=1e-12)


def test_lose_accounts_with_volatility_keeps_other_months_identical():
    book = make_book(churn=0.01, vol=0.3)
    lose = sc.Scenario(name="lose", shocks=[sc.LoseAccounts(account_ids=["A5"], month=10)])
    base = sc.simulate_book(book, draws=300, seed=4, market_factor_weight=0.2)
    shocked = sc.simulate_book(book, draws=300, seed=4, market_factor_weight=0.2, scenario=lose)
    np.testing.assert_array_equal(base.revenue_paths[:, :9], shocked.revenue_paths[:, :9])
    assert np.all(base.revenue_paths[:, 9:] >= shocked.revenue_paths[:, 9:])


def test_lose_top_k_by_revenue_and_gross_profit():
    book = make_book(3, revenue=[100, 200, 300], margin=[0.9, 0.5, 0.1])
    by_rev = sc.resolve_scenario(
        sc.Scenario(name="x", shocks=[sc.LoseTopK(k=1, month=5)]), book, months=12
    )
    by_gp = sc.resolve_scenario(
        sc.Scenario(name="x", shocks=[sc.LoseTopK(k=1, month=5, by="gross_profit")]),
        book,
        months=12,
    )
    assert list(by_rev.loss_month) == [13, 13, 5]  # A2: 300 revenue
    assert list(by_gp.loss_month) == [13, 5, 13]  # A1: 100 gross profit vs 90 and 30


def test_price_cut_reduces_revenue_by_pct_from_month_and_gp_by_same_amount():
    book = make_book(3, revenue=[100, 200, 300], tiers=["key", "standard", "key"])
    cut = sc.Scenario(name="cut", shocks=[sc.PriceCut(pct=10, tier="key", from_month=7)])
    base = sc.simulate_book(book, months=12, draws=2, dtype=np.float64)
    shocked = sc.simulate_book(book, months=12, draws=2, dtype=np.float64, scenario=cut)
    loss = np.r_[np.zeros(6), np.full(6, 0.1 * (100 + 300))]
    np.testing.assert_allclose(base.revenue_paths - shocked.revenue_paths, [loss, loss], atol=1e-9)
    np.testing.assert_allclose(
        base.gross_profit_paths - shocked.gross_profit_paths, [loss, loss], atol=1e-9
    )


def test_two_price_cuts_multiply():
    book = make_book(1, revenue=[100.0])
    scen = sc.Scenario(
        name="two",
        shocks=[
            sc.PriceCut(pct=10, account_ids=["A0"], from_month=2),
            sc.PriceCut(pct=50, from_month=4),
        ],
    )
    res = sc.simulate_book(book, months=5, draws=1, dtype=np.float64, scenario=scen)
    np.testing.assert_allclose(res.revenue_paths[0], [100, 90, 90, 45, 45], atol=1e-9)
    np.testing.assert_allclose(res.gross_profit_paths[0], [30, 20, 20, -25, -25], atol=1e-9)


def test_churn_multiplier_and_growth_shift_by_tier():
    book = make_book(2, revenue=[100, 100], churn=0.01, growth=0.05, tiers=["key", "growth"])
    resolved = sc.resolve_scenario(
        sc.Scenario(
            name="s",
            shocks=[
                sc.ChurnMultiplier(factor=3, tier="key"),
                sc.GrowthShift(delta_annual=-0.1, tier="growth"),
            ],
        ),
        book,
    )
    np.testing.assert_allclose(resolved.churn_prob_month, [0.03, 0.01])
    np.testing.assert_allclose(resolved.growth_annual, [0.05, -0.05])


def test_new_logos_add_expected_ramped_revenue():
    book = make_book(1, revenue=[1000.0])
    scen = sc.Scenario(
        name="logos",
        shocks=[sc.NewLogos(per_year=12, avg_monthly_revenue=60, margin=0.5, ramp_months=3)],
    )
    res = sc.simulate_book(book, months=6, draws=4000, seed=9, scenario=scen)
    added = res.revenue_paths - 1000.0
    # one logo a month expected; ramp 1/3, 2/3, 1: E[month t] = 60 * sum_{s<=t} min(1, (t-s+1)/3)
    ramp = np.minimum(1, np.arange(1, 7) / 3)
    truth = 60 * np.cumsum(ramp)
    se = added.std(axis=0) / math.sqrt(4000)
    assert np.all(np.abs(added.mean(axis=0) - truth) < K_SE * se)
    np.testing.assert_allclose(res.gross_profit_paths - 300.0, 0.5 * added, atol=1e-6)


# --- validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shock", "message"),
    [
        (sc.LoseAccounts(account_ids=["NOPE"], month=2), "unknown account id(s) ['NOPE']"),
        (sc.LoseAccounts(account_ids=["A1"], month=40), "month=40 is outside the horizon 1..36"),
        (sc.LoseTopK(k=-1), "k=-1 must be between 1 and 6"),
        (sc.PriceCut(pct=100), "pct=100.0 must be in [0, 100)"),
        (sc.PriceCut(pct=-5), "pct=-5.0 must be in [0, 100)"),
        (sc.PriceCut(pct=5, from_month=0), "from_month=0 is outside the horizon"),
        (sc.PriceCut(pct=5, tier="key"), "the book has no 'tier' column"),
        (sc.ChurnMultiplier(factor=-1), "factor=-1.0 must be >= 0"),
        (sc.GrowthShift(delta_annual=-2), "delta_annual=-2.0 takes growth to <= -100 %"),
        (sc.GrowthShift(delta_annual=0.1, tier="vip"), "unknown tier 'vip'"),
        (sc.NewLogos(per_year=-1), "per_year=-1.0 must be >= 0"),
    ],
)
def test_scenario_errors_name_scenario_shock_and_value(shock, message):
    scen = sc.Scenario(name="stress", shocks=[sc.ChurnMultiplier(factor=1.0), shock])
    with pytest.raises(sc.ScenarioError) as err:
        sc.resolve_scenario(scen, make_book())
    text = str(err.value)
    assert "scenario 'stress'" in text and f"shock 2 ({shock.kind})" in text
    assert message in text


def test_scenario_config_rejects_unknown_keys_and_kinds():
    with pytest.raises(pydantic.ValidationError):
        sc.Scenario.model_validate(
            {"name": "x", "shocks": [{"kind": "price_cut", "pct": 5, "frm": 3}]}
        )
    with pytest.raises(pydantic.ValidationError):
        sc.Scenario.model_validate({"name": "x", "shocks": [{"kind": "meteor", "month": 3}]})
    parsed = sc.ScenarioSettings.model_validate(
        {"scenarios": {"cut": {"shocks": [{"kind": "price_cut", "pct": 5, "tier": "key"}]}}}
    )
    assert parsed.scenarios["cut"].name == "cut"
    assert isinstance(parsed.scenarios["cut"].shocks[0], sc.PriceCut)
    with pytest.raises(pydantic.ValidationError, match="different name"):
        sc.ScenarioSettings.model_validate({"scenarios": {"a": {"name": "b"}}})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.drop(columns="margin"), "missing column(s) ['margin']"),
        (lambda b: b.assign(margin=30.0), "'margin' must be a finite number <= 1"),
        (lambda b: b.assign(churn_prob_month=1.5), "'churn_prob_month' must be a finite number"),
        (lambda b: b.assign(account_id="X"), "account_id must be unique"),
        (lambda b: b.assign(monthly_revenue=np.nan), "'monthly_revenue' must be a finite number"),
        (lambda b: b.assign(tier="gold"), "'tier' must be one of"),
    ],
)
def test_book_errors(change, message):
    with pytest.raises(sc.BookError) as err:
        sc.simulate_book(change(make_book()), draws=2)
    assert message in str(err.value)


def test_run_scenarios_compares_with_common_random_numbers():
    book = make_book(churn=0.01, vol=0.2)
    settings = sc.ScenarioSettings(draws=500, months=24)
    run = sc.run_scenarios(book, settings, names=["downside", "upside"])
    table = run.table.set_index("scenario")
    assert list(table.index) == ["base", "downside", "upside"]
    assert table.loc["base", "revenue_p50_delta"] == 0.0
    assert table.loc["downside", "revenue_p50"] < table.loc["base", "revenue_p50"]
    assert table.loc["upside", "revenue_p50"] > table.loc["base", "revenue_p50"]
    # default target: flat run-rate over the horizon
    assert table.loc["base", "target"] == pytest.approx(24 * book["monthly_revenue"].sum())
    assert table.loc["downside", "prob_miss_target"] >= table.loc["base", "prob_miss_target"]
    with pytest.raises(sc.ScenarioError, match="unknown scenario"):
        sc.run_scenarios(book, settings, names=["nope"])


# --- concentration -------------------------------------------------------------------


def test_hhi_hand_computed():
    # shares 50/30/20 -> HHI = 2500 + 900 + 400 = 3800 (0-10,000 scale)
    frame = pd.DataFrame({"account_id": ["a", "b", "c"], "revenue": [50.0, 30, 20]})
    out = sc.concentration(frame).set_index("metric")["value"]
    assert out["hhi"] == pytest.approx(3800)
    assert out["hhi_fraction"] == pytest.approx(0.38)
    assert out["hhi_normalized"] == pytest.approx((0.38 - 1 / 3) / (1 - 1 / 3))
    assert out["top1_share"] == pytest.approx(0.5)
    assert out["top5_share"] == pytest.approx(1.0)
    assert out["equivalent_accounts"] == pytest.approx(1 / 0.38)


def test_hhi_equal_shares_and_flags():
    frame = pd.DataFrame(
        {"account_id": list("abcdefghij"), "revenue": 1.0, "gross_profit": [9.0] + [1.0] * 9}
    )
    limits = sc.ConcentrationThresholds(top1_share=0.2, top5_share=0.6, top10_share=None)
    out = sc.concentration(frame, limits)
    rev = out[out["basis"] == "revenue"].set_index("metric")
    assert rev.loc["hhi", "value"] == pytest.approx(1000)  # 10 x 10%^2
    assert rev.loc["hhi_normalized", "value"] == pytest.approx(0)
    assert not rev["exceeds"].any()
    gp = out[out["basis"] == "gross_profit"].set_index("metric")
    assert gp.loc["top1_share", "value"] == pytest.approx(0.5)
    assert gp.loc["top1_share", "exceeds"]
    assert not gp.loc["hhi", "exceeds"] and np.isnan(gp.loc["hhi", "threshold"])  # context only
    assert (
        gp.loc["top5_share", "value"] == pytest.approx(13 / 18) and gp.loc["top5_share", "exceeds"]
    )
    assert gp.loc["hhi", "value"] == pytest.approx(2500 + 9 * (100 / 18) ** 2)


def test_top_shares_breach_where_hhi_cannot():
    # the case: one account at 35 % of revenue, 65 accounts at 1 % each.
    # HHI = 35^2 + 65 x 1^2 = 1,290: "unconcentrated" by the merger guidelines (< 1,500),
    # yet the largest account is 3.5x the 10 % major-customer line.
    frame = pd.DataFrame(
        {"account_id": [f"a{i:02d}" for i in range(66)], "revenue": [35.0] + [1.0] * 65}
    )
    out = sc.concentration(frame).set_index("metric")
    assert out.loc["top1_share", "value"] == pytest.approx(0.35)
    assert out.loc["top5_share", "value"] == pytest.approx(0.39)  # 35 + 4 x 1
    assert out.loc["top10_share", "value"] == pytest.approx(0.44)  # 35 + 9 x 1
    assert out.loc["hhi", "value"] == pytest.approx(1290)
    assert sc.hhi_band(out.loc["hhi", "value"]) == "unconcentrated"
    assert out.loc["equivalent_accounts", "value"] == pytest.approx(10_000 / 1290)
    # default thresholds 10 % / 30 % / 50 %: top 1 and top 5 breach, top 10 does not
    assert out.loc["top1_share", "threshold"] == 0.10 and out.loc["top1_share", "exceeds"]
    assert out.loc["top5_share", "threshold"] == 0.30 and out.loc["top5_share", "exceeds"]
    assert out.loc["top10_share", "threshold"] == 0.50
    assert not out.loc["top10_share", "exceeds"]
    # HHI and its equivalent number of accounts are context: never a threshold or a breach
    context = out.loc[["hhi", "hhi_fraction", "hhi_normalized", "equivalent_accounts"]]
    assert context["threshold"].isna().all() and not context["exceeds"].any()


def test_share_at_its_threshold_is_not_a_breach():
    # ten equal accounts: top 1 = exactly 10 %, top 5 = 50 %, top 10 = 100 %
    frame = pd.DataFrame({"account_id": list("abcdefghij"), "revenue": 7.0})
    out = sc.concentration(frame).set_index("metric")
    assert out.loc["top1_share", "value"] == pytest.approx(0.10)
    assert not out.loc["top1_share", "exceeds"]
    assert out.loc["top5_share", "exceeds"] and out.loc["top10_share", "exceeds"]
    assert out.loc["equivalent_accounts", "value"] == pytest.approx(10)


def test_concentration_thresholds_reject_an_hhi_test():
    with pytest.raises(ValueError, match="hhi is no longer a threshold"):
        sc.ConcentrationThresholds.model_validate({"hhi": 1500})
    with pytest.raises(ValueError):
        sc.ConcentrationThresholds(top1_share=1.5)
    off = sc.ConcentrationThresholds(top5_share=None)
    frame = pd.DataFrame({"account_id": list("abc"), "revenue": [5.0, 3.0, 2.0]})
    out = sc.concentration(frame, off).set_index("metric")
    assert np.isnan(out.loc["top5_share", "threshold"]) and not out.loc["top5_share", "exceeds"]


def test_concentration_trend_per_quarter():
    monthly = pd.DataFrame(
        {
            "account_id": ["a", "b", "a", "b", "a", "b"],
            "month": pd.to_datetime(
                ["2024-01-01", "2024-01-01", "2024-02-01", "2024-02-01", "2024-04-01", "2024-04-01"]
            ),
            "revenue": [1.0, 1.0, 1.0, 1.0, 3.0, 1.0],
        }
    )
    trend = sc.concentration_trend(monthly, freq="Q")
    assert list(trend["period"]) == ["2024Q1", "2024Q2"]
    np.testing.assert_allclose(trend["hhi"], [5000, 75**2 + 25**2])
    with pytest.raises(ValueError, match="freq"):
        sc.concentration_trend(monthly, freq="W")


def test_concentration_needs_columns():
    with pytest.raises(ValueError, match="'account_id' and 'revenue'"):
        sc.concentration(pd.DataFrame({"account_id": ["a"], "sales": [1.0]}))


# --- account loss stress ----------------------------------------------------------------


def test_account_loss_stress_hand_values():
    book = make_book(4, revenue=[1000, 100, 100, 100])
    out = sc.account_loss_stress(book, top_k=1, months=36, loss_month=[1, 13])
    first = out.iloc[0]
    assert first["account_id"] == "A0"
    assert first["revenue_gap"] == pytest.approx(36_000)
    assert first["gross_profit_gap"] == pytest.approx(0.3 * 36_000)
    assert first["revenue_gap_pct"] == pytest.approx(1000 / 1300)
    # a new logo of 100/month won in month 1, ramp 6: 100 * (15/6 + 31) = 3350 -> ceil(36000/3350) = 11
    assert first["new_logos_needed_avg"] == 11
    assert first["new_logos_needed_median"] == 11
    # 11 new accounts are more than the 4 the book has: said, not hidden
    assert first["new_logos_needed_avg_reason"] == "more_than_book"
    assert first["growth_uplift_reason"] is None
    # uplift d closes the gap: 300 * sum_t ((1+d)^(t/12) - 1) = 36000
    d = first["growth_uplift_needed"]
    t = np.arange(1, 37)
    assert 300 * ((1 + d) ** (t / 12) - 1).sum() == pytest.approx(36_000, rel=1e-8)
    second = out.iloc[1]
    assert second["loss_month"] == 13 and second["revenue_gap"] == pytest.approx(24_000)


def test_account_loss_stress_includes_churn_and_rejects_bad_input():
    book = make_book(2, revenue=[1000, 100], churn=0.1)
    out = sc.account_loss_stress(book, accounts=["A0"], months=12)
    assert out.loc[0, "revenue_gap"] == pytest.approx(1000 * sum(0.9**t for t in range(1, 13)))
    with pytest.raises(sc.ScenarioError, match="unknown account"):
        sc.account_loss_stress(book, accounts=["ZZ"])
    with pytest.raises(sc.ScenarioError, match="loss_month=40"):
        sc.account_loss_stress(book, loss_month=40)


# --- price negotiation ------------------------------------------------------------------


def test_break_even_volume_formula():
    assert sc.break_even_volume_increase(0.30, 0.05) == pytest.approx(0.05 / 0.25)  # +20 %
    assert sc.break_even_volume_increase(0.40, 0.10) == pytest.approx(1 / 3)
    assert math.isinf(sc.break_even_volume_increase(0.30, 0.30))
    assert math.isinf(sc.break_even_volume_increase(0.20, 0.25))


def test_price_negotiation_our_side():
    out = sc.price_negotiation(1000.0, 0.3, 5).set_index("metric")
    assert out.loc["revenue", "after_cut"] == pytest.approx(950)
    assert out.loc["gross_profit", "after_cut"] == pytest.approx(250)
    assert out.loc["gross_profit", "change"] == pytest.approx(-50)
    assert out.loc["gross_margin", "after_cut"] == pytest.approx(0.25 / 0.95)
    assert out.loc["break_even_volume_increase", "after_cut"] == pytest.approx(0.2)
    assert out.loc["break_even_volume_increase", "reason"] == ""
    hopeless = sc.price_negotiation(1000.0, 0.1, 15).set_index("metric")
    # no volume restores the profit: missing with a reason, never infinite
    assert np.isnan(hopeless.loc["break_even_volume_increase", "after_cut"])
    assert hopeless.loc["break_even_volume_increase", "reason"] == "cut_exceeds_margin"
    assert "no volume increase restores" in hopeless.loc["break_even_volume_increase", "note"]
    with pytest.raises(ValueError, match="price_cut_pct"):
        sc.price_negotiation(1000.0, 0.3, 120)


def test_price_negotiation_customer_side_uses_roi():
    value = RoiInputs(cost_reduction_per_year=Range.fixed(240_000), annual_fee=Range.fixed(120_000))
    out = sc.price_negotiation(
        120_000, 0.4, 10, customer_value=value, draws=10, discount_rate_annual=0.0, months=12
    )
    cust = out[out["side"] == "customer"].set_index("metric")
    assert cust.loc["npv_p50", "current"] == pytest.approx(120_000)
    assert cust.loc["npv_p50", "after_cut"] == pytest.approx(132_000)
    assert cust.loc["fee_saving_share_of_npv", "after_cut"] == pytest.approx(0.1)


# --- book from features -------------------------------------------------------------


def test_book_from_features_fallbacks():
    feats = pd.DataFrame(
        {
            "account_id": ["a", "b", "c"],
            "revenue_12m": [1200.0, 2400.0, 0.0],
            "gross_profit_12m": [600.0, 600.0, 0.0],
            "revenue_growth": [0.5, -0.1, np.nan],
        }
    )
    book = sc.book_from_features(
        feats, churn_prob_month=pd.Series({"a": 0.02}), default_volatility=0.2
    )
    np.testing.assert_allclose(book["monthly_revenue"], [100, 200, 0])
    # c has no revenue, so no margin of its own: the book's 1200 / 3600, not 0
    np.testing.assert_allclose(book["margin"], [0.5, 0.25, 1 / 3])
    assert book["margin_source"].tolist() == ["account", "account", "book"]
    fallback = 1 - 0.9 ** (1 / 12)
    np.testing.assert_allclose(book["churn_prob_month"], [0.02, fallback, fallback])
    mean = (1200 * 0.5 + 2400 * -0.1) / 3600  # revenue-weighted: 0.1
    np.testing.assert_allclose(
        book["growth_annual"], [0.5 * 0.5 + 0.5 * mean, 0.5 * -0.1 + 0.5 * mean, mean]
    )
    assert (book["volatility_annual"] == 0.2).all()
    with pytest.raises(sc.BookError, match="revenue_growth"):
        sc.book_from_features(feats.drop(columns="revenue_growth"))


# --- report helpers (notebook 04) ----------------------------------------------------


def _ltv_frame():
    return pd.DataFrame(
        {
            "account_id": ["a", "b", "c", "d"],
            "model": ["contractual_hazard", "transactional_bgnbd", "churned", "contractual_sbg"],
            "monthly_churn": [0.01, np.nan, np.nan, 0.02],
            "growth_annual": [0.05, 0.10, 0.0, np.nan],
        }
    )


def test_book_inputs_from_ltv_maps_models():
    out = sc.book_inputs_from_ltv(_ltv_frame())
    np.testing.assert_allclose(out["churn_prob_month"], [0.01, np.nan, 1.0, 0.02])
    assert out["churn_source"].tolist() == ["ltv", None, "ltv_churned", "ltv"]
    np.testing.assert_allclose(out["growth_annual"], [0.05, 0.10, np.nan, np.nan])
    with pytest.raises(ValueError, match="monthly_churn"):
        sc.book_inputs_from_ltv(_ltv_frame().drop(columns="monthly_churn"))


def test_scenario_book_uses_ltv_where_given_and_fallbacks_elsewhere():
    feats = pd.DataFrame(
        {
            "account_id": ["a", "b", "c", "d", "e"],
            "revenue_12m": [1200.0, 2400.0, 600.0, 1200.0, 1200.0],
            "gross_profit_12m": [600.0, 600.0, 300.0, 300.0, 300.0],
            "revenue_growth": [0.5, -0.1, 0.0, 0.2, 3.0],
            "name": list("ABCDE"),
        }
    )
    ltv = pd.concat(
        [
            _ltv_frame(),
            pd.DataFrame(
                [
                    {
                        "account_id": "e",
                        "model": "contractual_hazard",
                        "monthly_churn": 0.03,
                        "growth_annual": 5.0,
                    }
                ]
            ),
        ],
        ignore_index=True,
    )
    plain = sc.scenario_book(feats)
    assert (plain["churn_source"] == "fallback").all()
    assert (plain["growth_source"] == "features").all()
    book = sc.scenario_book(feats, ltv=ltv, growth_bounds=(-0.5, 1.0))
    fallback = 1 - 0.9 ** (1 / 12)
    np.testing.assert_allclose(book["churn_prob_month"], [0.01, fallback, 1.0, 0.02, 0.03])
    assert book["churn_source"].tolist() == ["ltv", "fallback", "ltv_churned", "ltv", "ltv"]
    # LTV growth where finite (clipped to the bounds), the features' shrunk growth elsewhere
    assert book["growth_source"].tolist() == ["ltv", "ltv", "features", "features", "ltv"]
    np.testing.assert_allclose(book.loc[[0, 1, 4], "growth_annual"], [0.05, 0.10, 1.0])
    np.testing.assert_allclose(
        book.loc[[2, 3], "growth_annual"], plain.loc[[2, 3], "growth_annual"]
    )
    assert book["name"].tolist() == list("ABCDE")
    # a churned account earns nothing in the simulation
    res = sc.simulate_book(book.iloc[[2]], months=3, draws=10)
    assert np.all(res.revenue_paths == 0)


def test_parse_scenario_names_and_errors():
    settings = sc.ScenarioSettings()
    assert sc.parse_scenario_names(" downside, base,downside ,", settings) == ["downside", "base"]
    with pytest.raises(sc.ScenarioError, match=r"unknown scenario\(s\) \['crash'\]"):
        sc.parse_scenario_names("base,crash", settings)
    with pytest.raises(sc.ScenarioError, match="no scenario names"):
        sc.parse_scenario_names(" , ", settings)


def test_with_run_settings_overrides_and_validates():
    base = sc.ScenarioSettings(market_factor_weight=0.5)
    out = sc.with_run_settings(base, draws=123, months=24)
    assert (out.draws, out.months, out.seed, out.market_factor_weight) == (123, 24, 0, 0.5)
    assert set(out.scenarios) == set(base.scenarios)
    assert base.draws == 10_000  # input untouched
    with pytest.raises(pydantic.ValidationError):
        sc.with_run_settings(base, months=500)


def test_first_forecast_month():
    assert sc.first_forecast_month("2026-03-31") == pd.Timestamp("2026-04-01")
    assert sc.first_forecast_month("2026-12-01") == pd.Timestamp("2027-01-01")


def test_scenario_monthly_stacks_quantiles_with_dates():
    book = make_book(3)
    results = {
        "base": sc.simulate_book(book, months=4, draws=5),
        "cut": sc.simulate_book(
            book, months=4, draws=5, scenario=sc.Scenario(shocks=[sc.PriceCut(pct=10)])
        ),
    }
    out = sc.scenario_monthly(results, start="2026-11-15")
    assert out["scenario"].tolist() == ["base"] * 4 + ["cut"] * 4
    assert out["date"].iloc[:4].tolist() == list(
        pd.to_datetime(["2026-11-01", "2026-12-01", "2027-01-01", "2027-02-01"])
    )
    # no volatility, no churn: the cut case is exactly 90 % of the base
    np.testing.assert_allclose(out["p50"].iloc[4:], 0.9 * out["p50"].iloc[:4].to_numpy())
    gp = sc.scenario_monthly(results, metric="gross_profit")
    np.testing.assert_allclose(gp["p50"].iloc[:4], 0.3 * out["p50"].iloc[:4].to_numpy())
    with pytest.raises(ValueError, match="metric"):
        sc.scenario_monthly(results, metric="margin")


def test_book_history_sums_accounts_per_month():
    monthly = pd.DataFrame(
        {
            "account_id": ["a", "b", "a", "b", "a"],
            "month": pd.to_datetime(
                ["2026-01-01", "2026-01-01", "2026-02-01", "2026-03-01", "2026-03-01"]
            ),
            "revenue": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    out = sc.book_history(monthly, last=2)
    assert out.index.tolist() == list(pd.to_datetime(["2026-02-01", "2026-03-01"]))
    assert out.tolist() == [3.0, 9.0]
    assert sc.book_history(monthly, last=None).iloc[0] == 3.0
    with pytest.raises(ValueError, match="gross_profit"):
        sc.book_history(monthly, metric="gross_profit")


@pytest.mark.parametrize(
    ("hhi", "band"),
    [
        (0.0, "unconcentrated"),
        (1499.9, "unconcentrated"),
        (1500, "moderate"),
        (2500, "moderate"),
        (2500.1, "high"),
        (10_000, "high"),
    ],
)
def test_hhi_band_merger_guideline_cutoffs(hhi, band):
    assert sc.hhi_band(hhi) == band


def test_concentration_dashboard_pivots_and_flags():
    # shares 0.5 / 0.3 / 0.2 -> HHI 3,800 (hand-computed); GP 0.2 / 0.4 / 0.4 -> 3,600
    frame = pd.DataFrame(
        {
            "account_id": ["a", "b", "c"],
            "revenue": [50.0, 30.0, 20.0],
            "gross_profit": [2.0, 4.0, 4.0],
        }
    )
    conc = sc.concentration(frame, sc.ConcentrationThresholds(top1_share=0.45, top10_share=None))
    dash = sc.concentration_dashboard(conc)
    assert dash["metric"].tolist() == [
        "top1_share",
        "top5_share",
        "top10_share",
        "hhi",
        "equivalent_accounts",
    ]
    assert dash["tested"].tolist() == [True, True, False, False, False]
    row = dash.set_index("metric")
    assert row.loc["hhi", "revenue"] == pytest.approx(3800)
    assert row.loc["hhi", "gross_profit"] == pytest.approx(3600)
    assert row.loc["top1_share", "threshold"] == 0.45
    assert bool(row.loc["top1_share", "exceeds_revenue"]) is True
    assert bool(row.loc["top1_share", "exceeds_gross_profit"]) is False
    assert bool(row.loc["top1_share", "exceeds"]) is True
    assert math.isnan(row.loc["top10_share", "threshold"])
    assert not row.loc["top10_share", "exceeds"]
    with pytest.raises(ValueError, match="unknown metric"):
        sc.concentration_dashboard(conc, ["top3_share"])


def test_pick_focus_account():
    book = make_book(4, revenue=[10.0, 40.0, 0.0, 20.0])
    assert sc.pick_focus_account(book) == "A1"  # largest revenue
    assert sc.pick_focus_account(book, key_accounts=["X9", "A3", "A1"]) == "A3"
    assert sc.pick_focus_account(book, "A0", ["A3"]) == "A0"
    with pytest.raises(sc.ScenarioError, match="'Z' is not in the book"):
        sc.pick_focus_account(book, "Z")
    with pytest.raises(sc.ScenarioError, match="no current revenue"):
        sc.pick_focus_account(book, "A2")


def test_break_even_curve_matches_formula():
    curve = sc.break_even_curve(0.25, max_cut=0.2, points=5)
    np.testing.assert_allclose(curve["price_cut"], [0, 0.05, 0.1, 0.15, 0.2])
    # cut / (margin - cut): 0.05 / 0.20 = 0.25, 0.1 / 0.15, 0.15 / 0.1, 0.2 / 0.05
    np.testing.assert_allclose(curve["volume_increase"], [0, 0.25, 2 / 3, 1.5, 4.0])
    default = sc.break_even_curve(0.25)
    assert default["price_cut"].max() == pytest.approx(0.2)  # 0.8 x margin
    assert np.isnan(sc.break_even_curve(0.1, max_cut=0.1)["volume_increase"].iloc[-1])
    with pytest.raises(ValueError, match="margin"):
        sc.break_even_curve(0.0)


def test_book_tornado_closed_form_swings():
    # no churn, no growth: expected GP = 0.3 x 36 x sum(revenue); a 5 % cut takes
    # 0.05 x 36 x sum(revenue) off; losing the top account its 36 x 600 x 0.3.
    book = make_book(6, margin=0.3)
    total = 36 * book["monthly_revenue"].sum()
    out = sc.book_tornado(book, months=36).set_index("input")
    assert out.loc["price_cut_pct", "output_base"] == pytest.approx(0.3 * total)
    assert out.loc["price_cut_pct", "output_high"] == pytest.approx(0.25 * total)
    assert out.loc["top_accounts_lost", "output_high"] == pytest.approx(0.3 * (total - 36 * 600))
    assert out.loc["churn_multiplier", "swing"] == pytest.approx(0.0)  # zero churn stays zero
    g = out.loc["growth_shift"]
    t = np.arange(1, 37)
    expected_high = 0.3 * book["monthly_revenue"].sum() * (1.05 ** (t / 12)).sum()
    assert g["output_high"] == pytest.approx(expected_high)
    # the top account is 600 / 2,100 of the book: the largest swing, listed first
    assert out.index[0] == "top_accounts_lost"
    assert list(out["swing"]) == sorted(out["swing"], reverse=True)
    revenue = sc.book_tornado(book, months=12, metric="revenue", ranges={"price_cut_pct": (0, 10)})
    assert revenue.set_index("input").loc["price_cut_pct", "output_high"] == pytest.approx(
        0.9 * 12 * book["monthly_revenue"].sum()
    )
    with pytest.raises(ValueError, match="unknown lever"):
        sc.book_tornado(book, ranges={"fx_rate": (0, 1)})


# --- books the demo never produces: no cost, no revenue, one account, closed cohorts ---


def _no_cost_features(revenue, growth=None):
    revenue = np.asarray(revenue, dtype=float)
    return pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(revenue.size)],
            "revenue_12m": revenue,
            "gross_profit_12m": np.nan,
            "margin_12m": np.nan,
            "revenue_growth": np.nan if growth is None else growth,
        }
    )


def _all_numbers(frame: pd.DataFrame) -> np.ndarray:
    return frame.select_dtypes("number").to_numpy(dtype=float)


def test_without_cost_data_gross_profit_is_unknown_not_zero():
    feats = _no_cost_features([1200.0, 2400.0, 600.0])
    book = sc.book_from_features(feats)
    assert book["margin"].isna().all() and book["margin_source"].eq("unknown").all()
    assert not sc.book_margin_known(book)
    res = sc.simulate_book(book, months=12, draws=50, seed=1, scenario=None)
    assert np.isnan(res.gross_profit_paths).all()
    # revenue is simulated exactly as with a known margin (same seed, same draws)
    known = sc.simulate_book(book.assign(margin=0.3), months=12, draws=50, seed=1)
    np.testing.assert_array_equal(res.revenue_paths, known.revenue_paths)
    table = sc.run_scenarios(book, sc.with_run_settings(draws=50, months=24)).table
    assert table["gross_profit_p50"].isna().all() and np.isfinite(table["revenue_p50"]).all()
    # ranking by gross profit falls back to revenue; a new logo's margin is unknown too
    top = sc.resolve_scenario(
        sc.Scenario(name="x", shocks=[sc.LoseTopK(k=1, by="gross_profit")]), book, months=12
    )
    assert top.loss_month.tolist() == [13, 1, 13]
    # with an assumed margin gross profit is back, labelled as assumed
    assumed = sc.book_from_features(feats, assumed_gross_margin=0.25)
    assert assumed["margin"].eq(0.25).all() and assumed["margin_source"].eq("assumed").all()
    # a partly missing margin is still an error in a hand-made book
    with pytest.raises(sc.BookError, match="margin"):
        sc.validate_book(make_book(3).assign(margin=[0.3, np.nan, 0.3]))


def test_concentration_says_what_is_unknown_instead_of_zero():
    frame = pd.DataFrame(
        {"account_id": ["a", "b"], "revenue": [30.0, 10.0], "gross_profit": np.nan}
    )
    conc = sc.concentration(frame)
    assert set(conc["basis"]) == {"revenue"}  # no gross-profit rows, not 0 %
    assert sc.concentration_reason(conc) is None
    assert sc.concentration_reason(conc, "gross_profit") == "gross_profit_unknown"
    dash = sc.concentration_dashboard(conc).set_index("metric")
    assert dash.loc["hhi", "revenue"] == pytest.approx(10_000 * (0.75**2 + 0.25**2))
    assert dash["gross_profit"].isna().all()
    # no revenue at all (as-of date long after the last sale): NaN, not "HHI 0, unconcentrated"
    silent = sc.concentration(frame.assign(revenue=0.0))
    assert sc.concentration_reason(silent) == "no_revenue"
    hhi = float(silent.set_index("metric").loc["hhi", "value"])
    assert np.isnan(hhi) and sc.hhi_band(hhi) == "not_available"
    assert not silent["exceeds"].any()
    metrics = sc.concentration_metrics(np.zeros(3))
    assert metrics["n_accounts"] == 0 and metrics["total"] == 0
    assert np.isnan(metrics["top1_share"]) and np.isnan(metrics["equivalent_accounts"])


def test_closed_cohort_loss_stress_is_finite():
    # CDNOW-like: every customer arrived in the first months, most are silent now; the
    # median account has no current revenue, which made "new accounts needed" infinite
    revenue = np.r_[553.0, 40.0, 25.0, 10.0, np.zeros(46)]
    book = make_book(revenue=revenue)
    out = sc.account_loss_stress(book, top_k=1, months=36)
    row = out.iloc[0]
    assert row["account_id"] == "A0"
    assert np.isfinite(_all_numbers(out)).all()
    # new accounts sized like the other accounts that buy: mean 25, median 25 a month
    per_logo = 15 / 6 + 31  # 36 months, 6-month ramp, won in month 1
    assert row["new_logos_needed_avg"] == math.ceil(row["revenue_gap"] / (25.0 * per_logo))
    assert row["new_logos_needed_median"] == row["new_logos_needed_avg"]
    assert row["new_logos_needed_avg_reason"] is None


def test_one_account_book_gives_reasons_not_infinity():
    book = make_book(revenue=[500.0])
    out = sc.account_loss_stress(book, months=24)
    row = out.iloc[0]
    assert not np.isinf(_all_numbers(out)).any()
    assert np.isnan(row["new_logos_needed_avg"]) and np.isnan(row["growth_uplift_needed"])
    assert row["new_logos_needed_avg_reason"] == "no_reference_accounts"
    assert row["growth_uplift_reason"] == "no_other_revenue"
    dash = sc.concentration_dashboard(
        sc.concentration(pd.DataFrame({"account_id": ["A0"], "revenue": [500.0]}))
    ).set_index("metric")
    assert dash.loc["hhi", "revenue"] == 10_000 and sc.hhi_band(10_000) == "high"


def test_uplift_beyond_range_is_missing_with_a_reason():
    book = make_book(revenue=[10_000.0, 1.0])
    row = sc.account_loss_stress(book, accounts=["A0"], months=12).iloc[0]
    assert np.isnan(row["growth_uplift_needed"])
    assert row["growth_uplift_reason"] == "beyond_uplift_range"


def test_book_without_current_revenue_runs_end_to_end_without_infinity():
    book = sc.book_from_features(_no_cost_features([0.0, 0.0, 0.0]))
    run = sc.run_scenarios(book, sc.with_run_settings(draws=20, months=24))
    assert not np.isinf(_all_numbers(run.table)).any()
    assert run.table["prob_miss_target"].isna().all()  # a target of 0 is not a target
    assert run.results["base"].prob_miss_target is None
    loss = sc.account_loss_stress(book, months=12)
    assert not np.isinf(_all_numbers(loss)).any() and (loss["revenue_gap"] == 0).all()
    assert sc.pick_focus_account(book, required=False) is None
    with pytest.raises(sc.ScenarioError, match="no account has current revenue"):
        sc.pick_focus_account(book)
    tornado = sc.book_tornado(book, months=12)
    assert tornado["metric"].eq("revenue").all() and (tornado["swing"] == 0).all()


def test_price_negotiation_with_unknown_margin():
    out = sc.price_negotiation(1000.0, float("nan"), 5).set_index("metric")
    assert out.loc["revenue", "after_cut"] == pytest.approx(950)
    for metric in ("gross_profit", "gross_margin", "break_even_volume_increase"):
        assert np.isnan(out.loc[metric, "after_cut"])
        assert out.loc[metric, "reason"] == "margin_unknown"
    assert not np.isinf(out[["current", "after_cut", "change"]].to_numpy(float)).any()


def test_focus_account_skips_key_accounts_without_revenue():
    book = make_book(4, revenue=[10.0, 40.0, 0.0, 20.0])
    assert sc.pick_focus_account(book, key_accounts=["A2", "A3"]) == "A3"


def test_book_tornado_uses_revenue_when_margin_unknown():
    book = make_book(4, margin=np.nan)
    out = sc.book_tornado(book, months=12).set_index("input")
    assert out["metric"].eq("revenue").all()
    total = 12 * book["monthly_revenue"].sum()
    assert out.loc["price_cut_pct", "output_base"] == pytest.approx(total)
    with pytest.raises(ValueError, match="margins"):
        sc.book_tornado(book, metric="gross_profit")
    assert sc.book_tornado(make_book(4))["metric"].eq("gross_profit").all()


def test_new_logos_default_size_is_the_median_buying_account():
    book = make_book(revenue=[0.0, 0.0, 0.0, 100.0, 300.0])
    resolved = sc.resolve_scenario(
        sc.Scenario(name="up", shocks=[sc.NewLogos(per_year=4)]), book, months=12
    )
    assert resolved.new_logos[0].monthly_revenue == pytest.approx(200.0)  # not the median 0


def test_loss_stress_reasons_list_each_explanation_once():
    book = make_book(revenue=[500.0])
    one = sc.account_loss_stress(book, months=24)
    assert sc.loss_stress_reasons(one).tolist() == [("no_reference_accounts", "no_other_revenue")]
    plain = sc.account_loss_stress(make_book(revenue=[100.0, 100.0, 100.0]), top_k=1, months=24)
    assert sc.loss_stress_reasons(plain).tolist() == [()]


# --- spreads from the data: shared churn shock, per-account volatility, sources ------


@pytest.mark.parametrize("n", [40, 5000])  # block path and one-draw-at-a-time path
def test_shared_churn_shock_keeps_the_frailty_survival_and_clusters_churn(n):
    p, theta, months = 0.02, 0.5, 24
    book = make_book(n, revenue=np.ones(n), churn=p)
    draws = 4000 if n < 100 else 40
    res = sc.simulate_book(book, months=months, draws=draws, seed=4, churn_shock_variance=theta)
    lam = -math.log1p(-p)
    t = np.arange(1, months + 1)
    m_k = np.clip(t[:, None] - np.arange(0, months, 3)[None, :], 0, 3)
    truth = np.prod((1 + theta * lam * m_k) ** (-1 / theta), axis=1)
    alive = res.revenue_paths / n  # share of accounts alive, per draw and month
    # the mean follows the gamma frailty's Laplace transform ...
    se = alive.std(axis=0, ddof=1) / math.sqrt(draws)
    assert np.all(np.abs(alive.mean(axis=0) - truth) < K_SE * se + 1e-12)
    # ... and closed form agrees: expected_account_paths carries the same survival
    np.testing.assert_allclose(
        res.account_expected["survival_at_horizon"].to_numpy(), truth[-1], rtol=1e-12
    )
    if n > 100:
        # bad quarters hit everyone: the alive share at 24 months varies across draws far
        # more than binomial sampling of independent accounts would allow
        binomial_sd = math.sqrt(truth[-1] * (1 - truth[-1]) / n)
        assert alive[:, -1].std(ddof=1) > 4 * binomial_sd


def test_no_churn_shock_draws_nothing_extra():
    book = make_book(30, revenue=np.ones(30), churn=0.03, vol=0.2)
    a = sc.simulate_book(book, months=12, draws=200, seed=2)
    b = sc.simulate_book(book, months=12, draws=200, seed=2, churn_shock_variance=0.0)
    np.testing.assert_array_equal(a.revenue_paths, b.revenue_paths)
    c = sc.simulate_book(book, months=12, draws=200, seed=2, churn_shock_variance=0.3)
    assert not np.array_equal(a.revenue_paths, c.revenue_paths)
    with pytest.raises(ValueError, match="churn_shock_variance"):
        sc.simulate_book(book, months=12, draws=2, churn_shock_variance=-0.1)


def test_scenario_book_takes_each_accounts_estimated_volatility():
    feats = pd.DataFrame(
        {
            "account_id": ["A", "B", "C"],
            "revenue_12m": [1200.0, 2400.0, 600.0],
            "gross_profit_12m": [300.0, 600.0, 150.0],
            "revenue_growth": [0.1, 0.0, -0.1],
        }
    )
    vol = pd.Series({"A": 0.42, "B": np.nan, "X": 0.9})
    book = sc.scenario_book(feats, volatility=vol)
    assert book["volatility_annual"].tolist() == [0.42, sc.FALLBACK_VOLATILITY, 0.15]
    assert book["volatility_source"].tolist() == ["estimated", "fallback", "fallback"]
    assert (sc.scenario_book(feats)["volatility_source"] == "fallback").all()
    # accounts without their own estimate take the book's typical value when there is one
    book = sc.scenario_book(feats, volatility=vol, book_volatility=0.3)
    assert book["volatility_annual"].tolist() == [0.42, 0.3, 0.3]
    assert book["volatility_source"].tolist() == ["estimated", "book", "book"]
    nan_book = sc.scenario_book(feats, volatility=vol, book_volatility=float("nan"))
    assert nan_book["volatility_source"].tolist() == ["estimated", "fallback", "fallback"]


def test_scenario_spreads_config_beats_estimate_beats_fallback():
    est = {"weight": 0.12, "volatility_annual": 0.08, "quarters": 11}
    shock = {"variance": 0.05, "quarters": 16}
    s = sc.scenario_spreads(sc.ScenarioSettings(), market=est, churn_shock=shock)
    assert (s.market_factor_weight, s.market_source) == (0.12, "estimated")
    assert (s.churn_shock_variance, s.churn_shock_source) == (0.05, "estimated")
    cfg = sc.ScenarioSettings(market_factor_weight=0.4, churn_shock_variance=0.0)
    s = sc.scenario_spreads(cfg, market=est, churn_shock=shock)
    assert (s.market_factor_weight, s.market_source) == (0.4, "config")
    assert (s.churn_shock_variance, s.churn_shock_source) == (0.0, "config")
    s = sc.scenario_spreads(sc.ScenarioSettings(), market={"weight": float("nan")})
    assert (s.market_factor_weight, s.market_source) == (sc.FALLBACK_MARKET_WEIGHT, "fallback")
    assert (s.churn_shock_variance, s.churn_shock_source) == (0.0, "fallback")
    rec = sc.scenario_spreads(market={"weight": float("nan"), "quarters": 2}).record()
    assert rec["market"] == {"weight": None, "quarters": 2}


def test_run_scenarios_uses_the_spreads_it_is_given():
    book = make_book(50, revenue=np.ones(50), churn=0.02, vol=0.3)
    settings = sc.ScenarioSettings(draws=400, months=12)
    calm = sc.scenario_spreads(settings, market={"weight": 0.0}, churn_shock={"variance": 0.0})
    wild = sc.scenario_spreads(settings, market={"weight": 1.0}, churn_shock={"variance": 1.0})
    a = sc.run_scenarios(book, settings, ["base"], spreads=calm).results["base"]
    b = sc.run_scenarios(book, settings, ["base"], spreads=wild).results["base"]
    assert a.settings["market_factor_weight"] == 0.0 and b.settings["churn_shock_variance"] == 1.0
    # a common factor and shared churn widen the book's spread
    assert b.revenue_paths.sum(axis=1).std() > 2 * a.revenue_paths.sum(axis=1).std()

"""Tests for kam_analysis.pricing: ROI simulation, pricing schemes, tornado."""

from __future__ import annotations

import math

import numpy as np
import pydantic
import pytest
from scipy import stats

from kam_analysis import pricing as pr

K_SE = 4.0  # Monte Carlo tolerance in standard errors


def fixed_inputs(**over):
    base = {
        "cost_reduction_per_year": 120_000.0,
        "implementation_cost": 50_000.0,
        "annual_fee": 24_000.0,
    }
    base.update(over)
    return pr.RoiInputs(**base)


# --- ROI -----------------------------------------------------------------------------


def test_roi_degenerate_no_discount_hand_computed():
    # net per month = 120000/12 - 24000/12 = 8000; 12 months: NPV = -50000 + 96000 = 46000
    # cumulative -50000 + 8000 t >= 0 first at t = 7 (6,000 > 0)
    res = pr.simulate_roi(fixed_inputs(), draws=5, seed=0, discount_rate_annual=0.0, months=12)
    np.testing.assert_allclose(res.npv, 46_000)
    np.testing.assert_allclose(res.payback_month, 7)
    np.testing.assert_allclose(res.roi, 46_000 / (50_000 + 24_000))


def test_roi_degenerate_with_discounting_hand_computed():
    r = 0.10
    v = 1.1 ** (-1 / 12)
    annuity = v * (1 - v**12) / (1 - v)  # sum_{t=1}^{12} v^t
    res = pr.simulate_roi(fixed_inputs(), draws=3, discount_rate_annual=r, months=12)
    np.testing.assert_allclose(res.npv, -50_000 + 8_000 * annuity, rtol=1e-12)
    np.testing.assert_allclose(res.roi, (-50_000 + 8_000 * annuity) / (50_000 + 2_000 * annuity))
    np.testing.assert_allclose(res.payback_month, 7)  # payback is undiscounted


def test_roi_ramp_and_drivers_hand_computed():
    inputs = pr.RoiInputs(
        cost_reduction_per_year=12_000.0,
        revenue_uplift_per_year=24_000.0,
        uplift_margin=0.5,
        utilisation_points=3.0,
        value_per_point_per_year=4_000.0,
        adoption_ramp_months=4.0,
    )
    res = pr.simulate_roi(inputs, draws=2, discount_rate_annual=0.0, months=6)
    ramp = np.array([0.25, 0.5, 0.75, 1, 1, 1])
    detail = pr.field_detail(res)
    np.testing.assert_allclose(detail["ramp"], ramp)
    np.testing.assert_allclose(detail["cost_reduction"], 1_000 * ramp)
    np.testing.assert_allclose(detail["revenue_uplift"], 1_000 * ramp)  # 24000 x 0.5 / 12
    np.testing.assert_allclose(detail["utilisation"], 1_000 * ramp)
    np.testing.assert_allclose(res.npv, 3_000 * ramp.sum())
    np.testing.assert_allclose(detail["cumulative_p50"], np.cumsum(3_000 * ramp))


def test_roi_never_pays_back_gives_nan_and_summary():
    res = pr.simulate_roi(
        fixed_inputs(cost_reduction_per_year=10_000.0), draws=4, discount_rate_annual=0.0, months=12
    )
    assert np.isnan(res.payback_month).all()
    summary = pr.executive_summary(res).set_index("metric")
    assert summary.loc["prob_npv_positive", "value"] == 0.0
    assert summary.loc["prob_payback_within_horizon", "value"] == 0.0
    assert math.isnan(summary.loc["payback_month", "value"])
    assert summary.loc["npv", "value"] == pytest.approx(-50_000 + (10_000 - 24_000))


def test_roi_uncertain_inputs_summary_is_consistent_and_seeded():
    inputs = pr.RoiInputs(
        cost_reduction_per_year=pr.Range(low=50_000, mode=100_000, high=200_000),
        implementation_cost=pr.Range(low=30_000, mode=40_000, high=80_000, dist="triangular"),
        annual_fee=36_000.0,
        adoption_ramp_months=pr.Range(low=2, mode=4, high=9),
    )
    a = pr.simulate_roi(inputs, draws=4000, seed=1)
    b = pr.simulate_roi(inputs, draws=4000, seed=1)
    assert np.array_equal(a.npv, b.npv)
    summary = pr.executive_summary(a).set_index("metric")
    assert summary.loc["npv", "p10"] < summary.loc["npv", "value"] < summary.loc["npv", "p90"]
    assert summary.loc["prob_npv_positive", "value"] == pytest.approx(np.mean(a.npv > 0))
    detail = pr.field_detail(a)
    assert len(detail) == 36 and (np.diff(detail["ramp"]) >= 0).all()


@pytest.mark.parametrize(
    ("dist", "mean"), [("pert", (1 + 4 * 2 + 6) / 6), ("triangular", (1 + 2 + 6) / 3)]
)
def test_range_sampling_means(dist, mean):
    r = pr.Range(low=1, mode=2, high=6, dist=dist)
    x = r.sample(np.random.default_rng(0), 20_000)
    assert x.min() >= 1 and x.max() <= 6
    assert abs(x.mean() - mean) < K_SE * x.std() / math.sqrt(x.size)


def test_range_and_input_errors():
    with pytest.raises(pydantic.ValidationError, match="low <= mode <= high"):
        pr.Range(low=3, mode=2, high=4)
    with pytest.raises(pydantic.ValidationError, match="annual_fee must be >= 0"):
        pr.RoiInputs(annual_fee=-5.0)
    with pytest.raises(pydantic.ValidationError):
        pr.RoiInputs(cost_reduction=5.0)  # misspelled field
    with pytest.raises(pr.PricingError, match="discount_rate_annual"):
        pr.simulate_roi(fixed_inputs(), discount_rate_annual=-1.5)


# --- tornado ---------------------------------------------------------------------------


def test_tornado_orders_a_linear_model_by_coefficient():
    def model(x):
        return 3 * x["a"] - 2 * x["b"] + 0.5 * x["c"] + 10

    base = {"a": 1.0, "b": 1.0, "c": 1.0}
    ranges = {"c": (0.0, 2.0), "a": (0.0, 2.0), "b": (0.0, 2.0)}
    out = pr.tornado(model, base, ranges)
    assert list(out["input"]) == ["a", "b", "c"]
    np.testing.assert_allclose(out["swing"], [6.0, 4.0, 1.0])
    row_b = out.set_index("input").loc["b"]
    assert row_b["output_low"] == pytest.approx(13.5) and row_b["output_high"] == pytest.approx(9.5)
    assert (out["output_base"] == 11.5).all()
    with pytest.raises(pr.PricingError, match="unknown input"):
        pr.tornado(model, base, {"d": (0, 1)})
    with pytest.raises(pr.PricingError, match="low 2 > high 1"):
        pr.tornado(model, base, {"a": (2, 1)})


def test_roi_tornado_uses_modes_and_ranges():
    inputs = pr.RoiInputs(
        cost_reduction_per_year=pr.Range(low=60_000, mode=120_000, high=180_000),
        implementation_cost=pr.Range(low=40_000, mode=50_000, high=60_000),
        annual_fee=24_000.0,
    )
    out = pr.roi_tornado(inputs, discount_rate_annual=0.0, months=12)
    assert list(out["input"]) == ["cost_reduction_per_year", "implementation_cost"]
    np.testing.assert_allclose(out["swing"], [120_000, 20_000])
    assert out["output_base"].iloc[0] == pytest.approx(46_000)


# --- pricing schemes -------------------------------------------------------------------


def make_schemes(**over):
    base = {
        "months": 24,
        "fixed_fee_monthly": 1_000.0,
        "outcome_fixed_fee_monthly": 500.0,
        "outcome_share": 0.2,
        "tiers": [
            {"up_to": 100, "unit_price": 10},
            {"up_to": 200, "unit_price": 8},
            {"unit_price": 5},
        ],
        "list_fee_monthly": 1_200.0,
        "intro_discount_pct": 50,
        "intro_months": 6,
        "unit_cost": 1.0,
        "fixed_cost_monthly": 100.0,
        "review_month": None,
    }
    base.update(over)
    return pr.PricingSchemes(**base)


def test_tiered_price_graduated():
    tiers = make_schemes().tiers
    # 100 x 10 + 100 x 8 + 50 x 5 = 2050
    np.testing.assert_allclose(
        pr.tiered_price(np.array([0, 50, 150, 250]), tiers), [0, 500, 1400, 2050]
    )


def test_pricing_schemes_degenerate_hand_values():
    out = pr.simulate_pricing_schemes(
        make_schemes(),
        savings_per_month=pr.Range.fixed(3_000),
        volume_per_month=pr.Range.fixed(150),
        draws=3,
    )
    first = out[out["draw"] == 0].set_index("scheme")
    cost = 24 * (100 + 150)
    expected_revenue = {
        "fixed": 24_000,
        "fixed_plus_outcome": 24 * (500 + 600),
        "tiered": 24 * 1_400,
        "intro_discount": 6 * 600 + 18 * 1_200,
    }
    for scheme, revenue in expected_revenue.items():
        assert first.loc[scheme, "revenue"] == pytest.approx(revenue)
        assert first.loc[scheme, "gross_profit"] == pytest.approx(revenue - cost)
        assert first.loc[scheme, "customer_net_benefit"] == pytest.approx(24 * 3_000 - revenue)


def test_review_month_customer_leaves_when_net_benefit_negative():
    out = pr.simulate_pricing_schemes(
        make_schemes(review_month=6),
        savings_per_month=pr.Range.fixed(1_100),
        volume_per_month=pr.Range.fixed(150),
        draws=1,
    ).set_index("scheme")
    # after the intro the list fee 1200 exceeds savings 1100: the customer leaves at month 6
    assert out.loc["intro_discount", "months_served"] == 6
    assert out.loc["intro_discount", "revenue"] == pytest.approx(6 * 600)
    # fixed 1000 < 1100 and outcome 500 + 220 < 1100: they stay; tiered 1400 > 1100: leaves
    assert out.loc["fixed", "months_served"] == 24
    assert out.loc["fixed_plus_outcome", "months_served"] == 24
    assert out.loc["tiered", "months_served"] == 6


def test_compare_pricing_schemes_distribution_table():
    table = pr.compare_pricing_schemes(
        make_schemes(review_month=12, outcome_cap_monthly=800),
        savings_per_month=pr.Range(low=0, mode=2_000, high=6_000),
        volume_per_month=pr.Range(low=50, mode=150, high=400, dist="triangular"),
        draws=3000,
        seed=4,
    )
    assert set(table["scheme"]) == set(pr.SCHEMES)
    assert (table["p10"] <= table["p50"]).all() and (table["p50"] <= table["p90"]).all()
    fixed = table[(table["scheme"] == "fixed") & (table["metric"] == "revenue")].iloc[0]
    assert fixed["p90"] == pytest.approx(24_000)  # full term when they stay
    outcome = table[(table["scheme"] == "fixed_plus_outcome") & (table["metric"] == "revenue")]
    assert outcome["p90"].iloc[0] <= 24 * (500 + 800) + 1e-9  # the cap binds


def test_pricing_scheme_validation():
    with pytest.raises(pydantic.ValidationError, match="only the last tier"):
        make_schemes(tiers=[{"unit_price": 1}, {"up_to": 5, "unit_price": 1}])
    with pytest.raises(pydantic.ValidationError, match="must increase"):
        make_schemes(tiers=[{"up_to": 10, "unit_price": 1}, {"up_to": 5, "unit_price": 1}])
    with pytest.raises(pydantic.ValidationError):
        make_schemes(outcome_share=1.5)


# --- per-account assumptions (notebook 04) --------------------------------------------


def test_roi_with_time_saved_hand_computed():
    # benefit 1000 h x 60 = 60000 a year -> 5000 a month; fee 2000 a month; net 3000 a month
    inputs = pr.RoiInputs(
        hours_saved_per_year=1000.0,
        cost_per_hour=60.0,
        implementation_cost=12_000.0,
        annual_fee=24_000.0,
    )
    out = pr.roi_at(inputs, discount_rate_annual=0.0, months=12)
    assert out["npv"] == pytest.approx(-12_000 + 12 * 3000)  # 24000
    assert out["roi"] == pytest.approx(24_000 / (12_000 + 24_000))  # 2/3
    assert out["payback_month"] == 4.0  # -12000 + 3000 t >= 0 first at t = 4
    # discounted monthly at (1 + 10 %)^(-t/12)
    factors = sum(1.1 ** (-t / 12) for t in range(1, 13))
    at10 = pr.roi_at(inputs, discount_rate_annual=0.10, months=12)
    assert at10["npv"] == pytest.approx(-12_000 + 3000 * factors)
    assert at10["roi"] == pytest.approx(at10["npv"] / (12_000 + 2000 * factors))
    sim = pr.simulate_roi(inputs, draws=5, discount_rate_annual=0.0, months=12)
    np.testing.assert_allclose(sim.npv, 24_000.0)


def _drivers(**over):
    fixed = {
        "hours_saved_per_employee": pr.Range.fixed(10.0),
        "loaded_cost_per_hour": 50.0,
        "cost_reduction_share_of_wallet": pr.Range.fixed(0.02),
        "revenue_uplift_share_of_wallet": pr.Range.fixed(0.10),
        "uplift_margin": 0.5,
        "implementation_cost": pr.Range.fixed(0.25),
        "adoption_ramp_months": pr.Range.fixed(0.0),
    }
    return pr.ValueAssumptions(**{**fixed, **over})


def test_roi_inputs_for_account_sizes_benefits_from_the_customer():
    value = pr.roi_inputs_for_account(
        100_000.0, employees=200, wallet=1_000_000.0, assumptions=_drivers()
    )
    v = value.inputs
    assert value.sources == {
        "time_saved": "employees",
        "cost_reduction": "wallet",
        "revenue_uplift": "wallet",
    }
    assert v.hours_saved_per_year.mode == 2000.0 and v.cost_per_hour == 50.0  # 10 h x 200
    assert v.cost_reduction_per_year.mode == 20_000.0  # 2 % of the wallet
    assert v.revenue_uplift_per_year.mode == 100_000.0 and v.uplift_margin == 0.5
    assert v.implementation_cost.mode == 25_000.0  # 0.25 x the fee
    assert v.annual_fee == pr.Range.fixed(100_000.0)
    # benefit a year: 2000 x 50 + 20000 + 100000 x 0.5 = 170000; net a year 70000;
    # 36 months undiscounted: -25000 + 3 x 70000 = 185000
    out = pr.roi_at(v, discount_rate_annual=0.0)
    assert out["npv"] == pytest.approx(185_000.0)
    assert out["roi"] == pytest.approx(185_000 / (25_000 + 300_000))
    with pytest.raises(pr.PricingError, match="annual_fee"):
        pr.roi_inputs_for_account(0.0, employees=10)


def test_roi_differs_with_customer_scale_at_the_same_fee():
    # same fee schedule, a small and a large customer: the larger one saves more
    kw = dict(draws=2000, seed=3)
    small = pr.roi_inputs_for_account(5e6, employees=40, wallet=1e7).inputs
    large = pr.roi_inputs_for_account(5e6, employees=2000, wallet=5e8).inputs
    s = pr.executive_summary(pr.simulate_roi(small, **kw)).set_index("metric")
    g = pr.executive_summary(pr.simulate_roi(large, **kw)).set_index("metric")
    assert g.loc["roi", "value"] > s.loc["roi", "value"] + 1.0
    assert g.loc["npv", "value"] > s.loc["npv", "value"]
    assert g.loc["payback_month", "value"] < s.loc["payback_month", "value"]
    # and not by the old fee multiples: equal fee-to-scale ratios give equal ROI
    twice = pr.roi_inputs_for_account(1e7, employees=80, wallet=2e7).inputs
    assert pr.roi_at(twice)["roi"] == pytest.approx(pr.roi_at(small)["roi"])


def test_roi_inputs_sources_degrade_and_measured_values_win():
    fee = 1000.0
    no_scale = pr.roi_inputs_for_account(fee)
    assert no_scale.inputs is None
    assert no_scale.sources == {
        "time_saved": "no_employees",
        "cost_reduction": "no_wallet",
        "revenue_uplift": "no_wallet",
    }
    chf = pr.roi_inputs_for_account(fee, employees=10, wallet=5000.0, currency="CHF")
    assert chf.sources["time_saved"] == "no_cost_per_hour"
    assert chf.inputs.hours_saved_per_year.mode == 0.0
    a = pr.ValueAssumptions.model_validate(
        {"accounts": {"A1": {"cost_reduction_per_year": 700, "implementation_cost": 50}}}
    )
    measured = pr.roi_inputs_for_account(fee, account_id="A1", assumptions=a)
    assert measured.sources["cost_reduction"] == "account"
    assert measured.inputs.cost_reduction_per_year == pr.Range.fixed(700.0)
    assert measured.inputs.implementation_cost == pr.Range.fixed(50.0)
    assert pr.roi_inputs_for_account(fee, account_id="B2", assumptions=a).inputs is None


def test_correlated_uniforms_have_the_asked_correlation():
    rng = np.random.default_rng(0)
    u = pr.correlated_uniforms(rng, 20_000, 3, 0.6)
    assert u.shape == (20_000, 3) and (u > 0).all() and (u < 1).all()
    assert u.mean(axis=0) == pytest.approx([0.5] * 3, abs=0.01)  # uniform margins
    z = np.corrcoef(stats.norm.ppf(u), rowvar=False)
    assert z[0, 1] == pytest.approx(0.6, abs=0.02) and z[1, 2] == pytest.approx(0.6, abs=0.02)
    with pytest.raises(pr.PricingError, match="correlation"):
        pr.correlated_uniforms(rng, 10, 2, 1.0)


def test_benefit_correlation_widens_the_roi_spread():
    base = dict(
        cost_reduction_per_year=pr.Range(low=0, mode=50_000, high=100_000),
        revenue_uplift_per_year=pr.Range(low=0, mode=50_000, high=100_000),
        hours_saved_per_year=pr.Range(low=0, mode=1000, high=2000),
        cost_per_hour=50.0,
        annual_fee=60_000.0,
        implementation_cost=10_000.0,
    )
    spreads = []
    for rho in (0.0, 0.4, 0.8):
        roi = pr.simulate_roi(pr.RoiInputs(**base, benefit_correlation=rho), draws=4000).roi
        p10, p90 = np.quantile(roi, [0.1, 0.9])
        spreads.append(p90 - p10)
    assert spreads[0] < spreads[1] < spreads[2]
    assert spreads[2] > 1.3 * spreads[0]  # three equal drivers: sd ratio sqrt(1 + 2 x 0.8) ~ 1.6
    with pytest.raises(pydantic.ValidationError):
        pr.RoiInputs(benefit_correlation=1.0)


def test_pricing_for_account_builds_schemes_relative_to_today():
    # full-adoption benefit 1.455 x the fee of 12000 a year (low 0.4, high 3.1)
    value = pr.RoiInputs(
        cost_reduction_per_year=pr.Range(low=4800, mode=17_460, high=37_200), annual_fee=12_000
    )
    acct = pr.pricing_for_account(12_000.0, 0.4, value=value, months=24)
    s = acct.schemes
    assert s.fixed_fee_monthly == 1000.0
    assert s.outcome_fixed_fee_monthly == pytest.approx(600.0)
    assert s.outcome_cap_monthly == pytest.approx(1500.0)
    assert s.list_fee_monthly == pytest.approx(1050.0)
    assert s.unit_cost == pytest.approx(6.0)  # (1 - 0.4) x 1000 / 100 units
    assert [t.up_to for t in s.tiers] == [80.0, 120.0, None]
    # today's volume (100 units): 80 x 10.5 + 20 x 9.5 = 1030
    assert pr.tiered_price(np.array([100.0]), s.tiers)[0] == pytest.approx(1030.0)
    assert acct.volume_per_month.mode == 100.0
    assert acct.savings_per_month.mode == pytest.approx(1455.0)
    # fixed scheme, no churn at review: our GP = 24 x (1000 - 6 x volume)
    flat = pr.pricing_for_account(
        12_000.0,
        0.4,
        value=value,
        months=24,
        schemes=pr.SchemeAssumptions(volume=pr.Range.fixed(1.0), review_month=None),
    )
    draws = pr.simulate_pricing_schemes(
        flat.schemes,
        savings_per_month=flat.savings_per_month,
        volume_per_month=flat.volume_per_month,
        draws=50,
    )
    fixed = draws[draws["scheme"] == "fixed"]
    np.testing.assert_allclose(fixed["gross_profit"], 24 * (1000 - 600))
    with pytest.raises(pr.PricingError, match="margin"):
        pr.pricing_for_account(12_000.0, 1.5, value=value)
    with pytest.raises(pydantic.ValidationError, match="one more entry"):
        pr.SchemeAssumptions(tier_breaks=[1.0], tier_prices=[1.0])


def test_pricing_scheme_table_and_best_scheme():
    value = pr.RoiInputs(cost_reduction_per_year=pr.Range(low=0, mode=15_000, high=30_000))
    acct = pr.pricing_for_account(12_000.0, 0.4, value=value, months=12)
    comparison = pr.compare_pricing_schemes(
        acct.schemes,
        savings_per_month=acct.savings_per_month,
        volume_per_month=acct.volume_per_month,
        draws=500,
        seed=1,
    )
    table = pr.pricing_scheme_table(comparison)
    assert table["scheme"].tolist() == list(pr.SCHEMES)
    c = comparison.set_index(["scheme", "metric"])
    assert table.loc[1, "gross_profit_p50"] == c.loc[("fixed_plus_outcome", "gross_profit"), "p50"]
    assert (
        table.loc[2, "customer_loss_prob"]
        == c.loc[("tiered", "customer_net_benefit"), "prob_negative"]
    )
    name, value = pr.best_scheme(table, "revenue_p50")
    assert value == table["revenue_p50"].max()
    assert name == table.loc[table["revenue_p50"].idxmax(), "scheme"]
    with pytest.raises(pr.PricingError, match="missing"):
        pr.pricing_scheme_table(comparison.drop(columns="p90"))
    with pytest.raises(pr.PricingError, match="margin_p50"):
        pr.best_scheme(table, "margin_p50")


def test_field_milestones_selects_months_and_sums_benefit():
    result = pr.simulate_roi(fixed_inputs(adoption_ramp_months=4.0), draws=20, months=10)
    detail = pr.field_detail(result)
    out = pr.field_milestones(detail, months=(1, 3, 12))
    assert out["month"].tolist() == [1, 3, 10]  # 12 is beyond the horizon; the last month added
    # month 1: ramp 1/4 of 120000 / 12 = 2500
    assert out.loc[0, "benefit"] == pytest.approx(2500.0)
    assert list(out.columns[:3]) == ["month", "ramp", "benefit"]
    with pytest.raises(pr.PricingError, match="field_detail"):
        pr.field_milestones(detail.drop(columns="ramp"))


def test_pricing_settings_carry_assumptions():
    settings = pr.PricingSettings.model_validate(
        {"price_cut_pct": 8, "value": {"uplift_margin": 0.4}, "schemes": {"intro_months": 3}}
    )
    assert settings.value.uplift_margin == 0.4 and settings.schemes.intro_months == 3
    with pytest.raises(pydantic.ValidationError):
        pr.PricingSettings(price_cut_pct=100)

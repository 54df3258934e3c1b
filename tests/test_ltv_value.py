"""Account LTV, revenue trajectory and renewal forecast: known answers, properties, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kam_analysis.ltv import BetaGeo, GammaGamma, per_period_discount_rate, simulate_beta_geo
from kam_analysis.ltv.hazard import COVARIATES, ChurnHazardModel
from kam_analysis.ltv.renewal import (
    RenewalInputError,
    contracts_due,
    fiscal_quarter,
    renewal_forecast,
)
from kam_analysis.ltv.trajectory import RevenueTrajectory, TrajectoryInputError, quarterly_revenue
from kam_analysis.ltv.value import (
    LTV_COLUMNS,
    LtvInputError,
    LtvModels,
    LtvSettings,
    _geometric_pv,
    account_ltv,
    annuity_value,
    ltv_basis,
)

AS_OF = pd.Timestamp("2025-12-31")


def _stub_hazard(monthly_hazard: float) -> ChurnHazardModel:
    """A hazard model with a known constant monthly hazard and no parameter uncertainty."""
    m = ChurnHazardModel()
    names = ["const", *COVARIATES]
    m.params_ = {"const": float(np.log(monthly_hazard)), **{c: 0.0 for c in COVARIATES}}
    m.covariance_ = pd.DataFrame(0.0, index=names, columns=names)
    m.covariate_means_ = {c: 0.0 for c in COVARIATES}
    return m


def _features(ids, gp=1_200_000.0, **cols):
    n = len(ids)
    base = {
        "account_id": ids,
        "frequency": np.full(n, 10.0),
        "recency": np.full(n, 50.0),
        "T": np.full(n, 52.0),
        "monetary_value": np.full(n, 100_000.0),
        "revenue_12m": np.full(n, gp * 2),
        "gross_profit_12m": np.full(n, gp),
        "margin_12m": np.full(n, 0.5),
        "tenure_days": np.full(n, 800.0),
        "first_purchase": pd.Timestamp("2023-01-01"),
    }
    base.update(cols)
    return pd.DataFrame(base)


def _contracts(ids, status="active", churn=None):
    n = len(ids)
    return pd.DataFrame(
        {
            "contract_id": [f"K{i}" for i in range(n)],
            "account_id": ids,
            "start_date": pd.Timestamp("2025-06-01"),
            "end_date": pd.Timestamp("2026-05-31"),
            "annual_value": 1_000_000.0,
            "status": status,
            "churn_date": pd.to_datetime(churn),
        }
    )


def _contract_models(h: float, ids) -> LtvModels:
    cov = pd.DataFrame({"account_id": ids, **{c: 0.0 for c in COVARIATES}})
    return LtvModels(as_of=AS_OF, covariates=cov, hazard=_stub_hazard(h), portfolio_margin=0.5)


FLAT = dict(growth="none", interval="parameter", draws=50)


# --------------------------------------------------------------------------- known answers


def test_discount_conversion_is_compound_not_divided():
    d = per_period_discount_rate(0.08, "month")
    assert (1 + d) ** 12 == pytest.approx(1.08, rel=1e-12)
    assert d != pytest.approx(0.08 / 12)


def test_annuity_formula():
    # 100 a month for 12 months at 1 % a month: 100 * (1 - 1.01^-12) / 0.01 = 1125.507747
    assert annuity_value(100, 12, 0.01) == pytest.approx(1125.507747, rel=1e-8)
    assert annuity_value(100, 12, 0.0) == 1200.0


def test_zero_churn_constant_gp_equals_annuity():
    ids = ["A", "B"]
    out = account_ltv(
        _features(ids),
        as_of=AS_OF,
        contracts=_contracts(ids),
        models=_contract_models(1e-300, ids),
        settings=LtvSettings(horizon_years=5, discount_rate_annual=0.08, **FLAT),
    )
    d = per_period_discount_rate(0.08, "month")
    expected = annuity_value(1_200_000 / 12, 60, d)
    assert out["model"].tolist() == ["contractual_hazard"] * 2
    np.testing.assert_allclose(out["ltv"], expected, rtol=1e-10)
    np.testing.assert_allclose(out["ltv_lower"], expected, rtol=1e-10)  # no parameter uncertainty


def test_constant_hazard_matches_brute_force_sum():
    ids = ["A"]
    h, rate = 0.02, 0.10
    out = account_ltv(
        _features(ids),
        as_of=AS_OF,
        contracts=_contracts(ids),
        models=_contract_models(h, ids),
        settings=LtvSettings(horizon_years=3, discount_rate_annual=rate, **FLAT),
    )
    d = per_period_discount_rate(rate, "month")
    k = np.arange(1, 37)
    brute = np.sum(100_000.0 * (1 - h) ** k / (1 + d) ** k)
    assert out["ltv"].iloc[0] == pytest.approx(brute, rel=1e-10)
    assert out["monthly_churn"].iloc[0] == pytest.approx(h)
    assert out["churn_risk_12m"].iloc[0] == pytest.approx(1 - (1 - h) ** 12)


def test_geometric_sum_at_q_equal_one():
    assert _geometric_pv(np.array(2.0), np.array(1.0), np.array(5.0)) == pytest.approx(10.0)
    assert _geometric_pv(np.array(1.0), np.array(0.5), np.array(2.0)) == pytest.approx(0.75)


def test_properties_in_discount_hazard_and_horizon():
    ids = ["A"]

    def value(h=0.01, rate=0.08, years=5):
        return account_ltv(
            _features(ids),
            as_of=AS_OF,
            contracts=_contracts(ids),
            models=_contract_models(h, ids),
            settings=LtvSettings(horizon_years=years, discount_rate_annual=rate, **FLAT),
        )["ltv"].iloc[0]

    assert value(rate=0.15) < value(rate=0.08) < value(rate=0.0)
    assert value(h=0.05) < value(h=0.01)
    assert value(years=3) < value(years=5)


def test_predictive_interval_brackets_the_mean_and_churned_accounts_are_zero():
    ids = ["A", "B", "C"]
    contracts = _contracts(
        ids, status=["active", "churned", "active"], churn=[None, "2025-10-01", None]
    )
    feats = _features(ids)
    out = account_ltv(
        feats,
        as_of=AS_OF,
        contracts=contracts,
        models=_contract_models(0.02, ids),
        settings=LtvSettings(growth="none", interval="predictive", draws=4000, seed=1),
    ).set_index("account_id")
    assert out.loc["B", "model"] == "churned" and out.loc["B", "ltv"] == 0.0
    a = out.loc["A"]
    assert a["ltv_lower"] < a["ltv"] <= a["ltv_upper"] + 1e-6
    # P(no churn in 60 months) = 0.98^60 = 0.30 > 0.1, so P90 is the full 5-year annuity
    full = annuity_value(100_000.0, 60, per_period_discount_rate(0.08, "month"))
    assert a["ltv_upper"] == pytest.approx(full, rel=1e-9)


def test_transactional_path_is_bgnbd_times_gamma_gamma_times_margin():
    ids = ["A", "B"]
    feats = _features(ids, frequency=np.array([3.0, 20.0]), recency=np.array([20.0, 50.0]))
    bg = BetaGeo.from_params({"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 3.0}, time_unit="week")
    gg = GammaGamma.from_params({"p": 6.0, "q": 4.0, "v": 15.0})
    models = LtvModels(as_of=AS_OF, bgnbd=bg, gamma_gamma=gg, portfolio_margin=0.5)
    out = account_ltv(
        feats,
        as_of=AS_OF,
        models=models,
        settings=LtvSettings(discount_rate_annual=0.0, horizon_years=1, **FLAT),
    )
    weeks = 52.1775  # 12 calendar months of 365.2425 / 7 / 12 weeks each
    e = bg.conditional_expected_number_of_purchases_up_to_time(
        weeks, feats["frequency"], feats["recency"], feats["T"]
    )
    spend = gg.conditional_expected_average_profit(feats["frequency"], feats["monetary_value"])
    np.testing.assert_allclose(out["ltv"], np.asarray(e) * np.asarray(spend) * 0.5, rtol=1e-6)
    assert out["model"].eq("transactional_bgnbd").all()
    assert out["p_alive"].between(0, 1).all()
    assert list(out.columns) == list(LTV_COLUMNS)


class _SteepTrajectory:
    """A revenue trajectory saying every account doubles each year."""

    def growth_for(self, ids):
        n = len(ids)
        return pd.DataFrame(
            {"log_growth": np.full(n, 0.7), "log_growth_se": np.zeros(n), "resid_sd": np.zeros(n)}
        )


def test_transactional_spend_is_stationary_whatever_the_revenue_trend():
    """The BG/NBD forecasts the purchase rate; the revenue trend must not count it again."""
    ids = ["A", "B"]
    feats = _features(ids, frequency=np.array([3.0, 20.0]), recency=np.array([20.0, 50.0]))
    bg = BetaGeo.from_params({"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 3.0}, time_unit="week")
    gg = GammaGamma.from_params({"p": 6.0, "q": 4.0, "v": 15.0})
    values = []
    for trajectory, growth in ((None, "none"), (_SteepTrajectory(), "trajectory")):
        models = LtvModels(
            as_of=AS_OF, bgnbd=bg, gamma_gamma=gg, portfolio_margin=0.5, trajectory=trajectory
        )
        settings = LtvSettings(
            discount_rate_annual=0.08,
            horizon_years=5,
            growth=growth,
            interval="parameter",
            draws=50,
        )
        values.append(account_ltv(feats, as_of=AS_OF, models=models, settings=settings))
    np.testing.assert_allclose(values[1]["ltv"], values[0]["ltv"], rtol=1e-9)
    assert (values[1]["growth_annual"] == 0).all()


def test_account_without_data_is_not_valued_and_errors_are_clear():
    feats = _features(["A"], frequency=np.array([np.nan]), T=np.array([np.nan]))
    with pytest.raises(LtvInputError, match="no account could be valued"):
        account_ltv(feats, as_of=AS_OF, models=LtvModels(as_of=AS_OF))
    with pytest.raises(LtvInputError, match="lack column"):
        account_ltv(feats.drop(columns="margin_12m"), as_of=AS_OF)
    with pytest.raises(LtvInputError, match="one row per account"):
        account_ltv(pd.concat([feats, feats]), as_of=AS_OF)
    with pytest.raises(LtvInputError, match="needs the contracts table"):
        account_ltv(
            _features(["A"]),
            as_of=AS_OF,
            models=LtvModels(as_of=AS_OF),
            settings=LtvSettings(model="contractual"),
        )
    with pytest.raises(ValueError):
        LtvSettings(discount_rate_annual=-0.1)
    with pytest.raises(ValueError):
        LtvSettings(model="magic")
    assert LtvSettings().quantiles == pytest.approx((0.1, 0.9))


# --------------------------------------------------------------------------- trajectory


def _monthly(growth: np.ndarray, months: int = 36, noise: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    month = pd.date_range("2023-01-01", periods=months, freq="MS")
    t = np.arange(months) / 12
    rows = []
    for i, g in enumerate(growth):  # test data construction only
        rev = 1e6 * np.exp(np.log1p(g) * t + rng.normal(0, noise, months))
        rows.append(pd.DataFrame({"account_id": f"A{i}", "month": month, "revenue": rev}))
    return pd.concat(rows, ignore_index=True)


def test_quarterly_revenue_uses_complete_quarters_only():
    mo = _monthly(np.array([0.0]), months=14)  # Jan 2023 .. Feb 2024
    q = quarterly_revenue(mo, as_of="2024-02-15")  # Feb is month-to-date: last full month Jan
    assert q["quarter_end"].max() == pd.Timestamp("2024-01-01")
    assert len(q) == 4  # Feb-Apr, May-Jul, Aug-Oct, Nov-Jan (Jan 2023 alone is incomplete)
    assert q["value"].iloc[-1] == pytest.approx(3e6)


def test_trajectory_recovers_exact_growth_and_shrinks_noisy_accounts():
    growth = np.array([0.10, 0.20, -0.05, 0.0, 0.30])
    tr = RevenueTrajectory(seasonal=False).fit(_monthly(growth), as_of="2025-12-31")
    np.testing.assert_allclose(tr.accounts_["log_growth"], np.log1p(growth), atol=1e-9)
    noisy = _monthly(np.full(200, 0.1), noise=0.3, seed=2)
    tr2 = RevenueTrajectory(seasonal=False).fit(noisy, as_of="2025-12-31")
    raw_err = np.abs(tr2.accounts_["log_growth"] - np.log(1.1)).mean()
    shrunk_err = np.abs(tr2.accounts_["log_growth_shrunk"] - np.log(1.1)).mean()
    assert shrunk_err < raw_err
    assert tr2.accounts_["shrink_weight"].between(0, 1).all()
    assert tr2.pooled_["mu"] == pytest.approx(np.log(1.1), abs=0.03)
    unseen = tr2.growth_for(["nobody"])
    assert unseen["log_growth"].iloc[0] == pytest.approx(tr2.pooled_["mu"])
    fc = tr.forecast(4)
    assert len(fc) == 4 * len(growth)


def test_trajectory_errors():
    with pytest.raises(TrajectoryInputError, match="lacks column"):
        RevenueTrajectory().fit(pd.DataFrame({"account_id": ["a"]}), as_of="2024-01-31")
    with pytest.raises(TrajectoryInputError, match="at least 3"):
        RevenueTrajectory().fit(_monthly(np.array([0.1])), as_of="2025-12-31")


# --------------------------------------------------------------------------- renewal


def test_fiscal_quarter_labels():
    d = pd.Series(pd.to_datetime(["2026-04-01", "2026-12-31", "2027-03-15"]))
    fq = fiscal_quarter(d, 4)
    assert fq["quarter"].tolist() == ["FY2026 Q1", "FY2026 Q3", "FY2026 Q4"]
    assert fq["quarter_start"].tolist() == list(
        pd.to_datetime(["2026-04-01", "2026-10-01", "2027-01-01"])
    )
    assert fiscal_quarter(d, 1)["quarter"].tolist() == ["FY2026 Q2", "FY2026 Q4", "FY2027 Q1"]


def test_renewal_expectation_hand_example():
    due = pd.DataFrame(
        {
            "quarter": ["FY2026 Q1", "FY2026 Q1", "FY2026 Q2"],
            "quarter_start": pd.to_datetime(["2026-04-01", "2026-04-01", "2026-07-01"]),
            "annual_value": [100.0, 200.0, 50.0],
        }
    )
    out = renewal_forecast(due, [0.5, 1.0, 0.0], draws=4000, seed=0)
    assert out["expected_renewed_value"].tolist() == [250.0, 0.0]
    assert out["contract_value"].tolist() == [300.0, 50.0]
    assert out["expected_renewals"].tolist() == [1.5, 0.0]
    # Q1 renews 200 for sure and 100 with probability 1/2: P10 = 200, P90 = 300
    assert out.loc[0, ["lower", "upper"]].tolist() == [200.0, 300.0]
    assert out.loc[1, ["lower", "upper"]].tolist() == [0.0, 0.0]


def test_contracts_due_selects_live_terms_in_the_window():
    c = pd.DataFrame(
        {
            "contract_id": ["a", "b", "c", "d", "e"],
            "account_id": ["A", "B", "C", "D", "E"],
            "start_date": pd.to_datetime(
                ["2025-07-01", "2025-01-01", "2025-06-01", "2026-01-01", "2025-09-01"]
            ),
            "end_date": pd.to_datetime(
                ["2026-06-30", "2025-12-31", "2027-05-31", "2026-12-31", "2026-02-01"]
            ),
            "annual_value": [10.0, 20.0, 30.0, 40.0, 50.0],
            "status": ["active", "renewed", "active", "active", "expired"],
            "churn_date": pd.NaT,
        }
    )
    due = contracts_due(c, as_of="2025-12-31", horizon_months=12)
    assert due["contract_id"].tolist() == ["a"]  # b ended, c too late, d not started, e a pilot
    assert due["months_to_end"].iloc[0] == pytest.approx(181 / (365.2425 / 12))
    assert due["quarter"].iloc[0] == "FY2026 Q1"


def test_renewal_errors():
    due = pd.DataFrame(
        {"quarter": ["q"], "quarter_start": [pd.Timestamp("2026-04-01")], "annual_value": [1.0]}
    )
    with pytest.raises(RenewalInputError, match=r"\[0, 1\]"):
        renewal_forecast(due, 1.5)
    with pytest.raises(RenewalInputError, match="shape"):
        renewal_forecast(due, 0.5, p_draws=np.ones((10, 3)))
    with pytest.raises(RenewalInputError, match="lack column"):
        contracts_due(due, as_of="2026-01-01")


# --------------------------------------------------------------------------- basis


def _cdnow_like(n: int = 400, seed: int = 5) -> pd.DataFrame:
    """A B2C book without cost data: gross profit and margin unknown (NaN) for everyone.

    Repeat purchases from a BG/NBD process over 78 weeks (CDNOW: Jan 1997 - Jun 1998,
    first purchases in the first 12 weeks); spend per purchase about 35.
    """
    rng = np.random.default_rng(seed)
    big_t = 78.0 - rng.integers(0, 12, n)
    sim = simulate_beta_geo(n, r=0.25, alpha=4.4, a=0.8, b=2.4, T=big_t, seed=rng)
    weeks_since_last = sim["T"] - sim["recency"]
    spend = np.where(sim["frequency"] > 0, rng.gamma(6.0, 35.0 / 6.0, n), np.nan)
    # revenue of the last 12 months: purchases made in the last 52 weeks, at their spend
    recent = np.where(weeks_since_last <= 52, np.maximum(sim["frequency"], 1) * 20.0, 0.0)
    return pd.DataFrame(
        {
            "account_id": [f"C{i:04d}" for i in range(n)],
            "frequency": sim["frequency"].astype(float),
            "recency": sim["recency"],
            "T": sim["T"],
            "monetary_value": spend,
            "revenue_12m": recent,
            "gross_profit_12m": np.nan,
            "margin_12m": np.nan,
            "tenure_days": sim["T"] * 7,
            "recency_days": weeks_since_last * 7,
        }
    )


def test_without_cost_data_ltv_is_revenue_and_says_so():
    feats = _cdnow_like()
    settings = LtvSettings(draws=100, growth="none")
    out = account_ltv(feats, as_of=AS_OF, settings=settings)
    assert out["basis"].eq("revenue").all()
    assert out["margin"].isna().all()  # unknown, not 0
    recent = (feats["recency_days"] <= 90).to_numpy() & (feats["frequency"] > 0).to_numpy()
    assert recent.sum() > 20
    assert (out.loc[recent, "ltv"] > 0).all()  # the whole book got 0 before
    assert out["ltv"].sum() > 0 and np.isfinite(out[["ltv", "ltv_lower", "ltv_upper"]]).all().all()
    # revenue basis: expected purchases x expected spend, nothing else
    tx = out["model"].eq("transactional_bgnbd").to_numpy()
    flat = account_ltv(
        feats,
        as_of=AS_OF,
        settings=LtvSettings(draws=50, growth="none", discount_rate_annual=0.0, horizon_years=1),
    )
    np.testing.assert_allclose(
        flat.loc[tx, "ltv"],
        flat.loc[tx, "expected_purchases"] * flat.loc[tx, "expected_spend"],
        rtol=1e-9,
    )


def test_assumed_margin_scales_the_revenue_value_exactly():
    feats = _cdnow_like()
    settings = LtvSettings(draws=100, growth="none", seed=3)
    revenue = account_ltv(feats, as_of=AS_OF, settings=settings)
    assumed = account_ltv(feats, as_of=AS_OF, settings=settings, assumed_gross_margin=0.3)
    assert assumed["basis"].eq("assumed_margin").all()
    np.testing.assert_allclose(assumed["margin"], 0.3)
    for col in ("ltv", "ltv_lower", "ltv_upper"):
        np.testing.assert_allclose(assumed[col], 0.3 * revenue[col], rtol=1e-12)
    with pytest.raises(LtvInputError, match="assumed_gross_margin"):
        account_ltv(feats, as_of=AS_OF, settings=settings, assumed_gross_margin=1.5)


def test_ltv_basis_rules():
    with_cost = _features(["A", "B"])
    assert ltv_basis(with_cost, portfolio_margin=0.5) == ("gross_profit", None)
    # costs win over an assumption
    assert ltv_basis(with_cost, assumed_gross_margin=0.2, portfolio_margin=0.5)[0] == "gross_profit"
    no_cost = _features(["A"], gross_profit_12m=np.array([np.nan]), margin_12m=np.array([np.nan]))
    assert ltv_basis(no_cost) == ("revenue", None)
    assert ltv_basis(no_cost, assumed_gross_margin=0.25) == ("assumed_margin", 0.25)
    # features that already applied an assumed margin (gross_profit_assumed) keep that label
    pre = _features(["A"], margin_12m=np.array([0.4]), gross_profit_assumed=np.array([True]))
    assert ltv_basis(pre, portfolio_margin=0.4) == ("assumed_margin", 0.4)
    # cost data but no revenue in any window: the margin is unknown, the value is revenue
    assert ltv_basis(with_cost, portfolio_margin=float("nan")) == ("revenue", None)


def test_gross_profit_basis_is_labelled():
    ids = ["A", "B"]
    out = account_ltv(
        _features(ids),
        as_of=AS_OF,
        contracts=_contracts(ids),
        models=_contract_models(0.01, ids),
        settings=LtvSettings(**FLAT),
    )
    assert out["basis"].eq("gross_profit").all() and out["margin"].eq(0.5).all()

"""Churn hazard model: covariate construction, person-period expansion, planted-HR recovery."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kam_analysis.ltv import ConvergenceError
from kam_analysis.ltv.hazard import (
    COVARIATES,
    ChurnHazardModel,
    HazardInputError,
    build_churn_covariates,
    build_person_months,
    churn_period_shock,
    person_period_table,
)


def _contracts(rows):
    cols = [
        "contract_id",
        "account_id",
        "start_date",
        "end_date",
        "annual_value",
        "status",
        "churn_date",
    ]
    df = pd.DataFrame(rows, columns=cols)
    for c in ("start_date", "end_date", "churn_date"):
        df[c] = pd.to_datetime(df[c])
    return df


@pytest.fixture
def small_tables():
    contracts = _contracts(
        [
            ("C1", "A", "2020-01-15", "2024-01-14", 100.0, "active", None),  # left-truncated
            ("C2", "B", "2023-03-10", "2023-08-20", 50.0, "churned", "2023-08-20"),
            ("C3", "C", "2023-06-01", "2024-05-31", 70.0, "active", None),
            ("C4", "D", "2023-02-01", "2023-12-01", 10.0, "churned", "2024-05-01"),  # after as_of
        ]
    )
    surveys = pd.DataFrame(
        {
            "account_id": ["A", "A", "B", "C"],
            "date": pd.to_datetime(["2023-02-01", "2023-05-01", "2023-04-01", "2024-02-01"]),
            "nps": [9, 7, 4, 8],
        }
    )
    activities = pd.DataFrame(
        {
            "account_id": ["A", "B", "C"],
            "date": pd.to_datetime(["2023-01-05", "2023-04-01", "2024-03-01"]),  # C after as_of
            "kind": ["executive_meeting", "meeting", "executive_meeting"],
        }
    )
    usage = pd.DataFrame(
        {
            "account_id": ["A", "A", "C"],
            "month": pd.to_datetime(["2023-01-01", "2023-02-01", "2023-07-01"]),
            "seats_purchased": [10, 10, 20],
            "seats_active": [8, 6, 18],
        }
    )
    return contracts, surveys, activities, usage


def test_covariates_hand_computed(small_tables):
    """State for January 2024 (the month after as_of), from rows dated up to 2023-12-31."""
    contracts, surveys, activities, usage = small_tables
    cov = build_churn_covariates(
        contracts,
        surveys=surveys,
        activities=activities,
        usage=usage,
        as_of="2023-12-31",
        observation_start="2023-01-01",
    ).set_index("account_id")
    # A: entered at the observation start (Jan 2023), censored at 2023-12-31: Feb..Dec = 11
    assert cov.loc["A", "entry"] == pd.Timestamp("2023-01-01")
    assert cov.loc["A", "months_at_risk"] == 11 and cov.loc["A", "event"] == 0
    assert cov.loc["A", "nps_per_point"] == pytest.approx(7 - 7)  # latest response (May), not mean
    assert cov.loc["A", "no_executive_contact"] == 0.0  # Jan 2023 meeting within 12 months
    assert np.isnan(cov.loc["A", "utilisation"])  # no usage in Oct-Dec 2023
    assert cov.loc["A", "tenure_months"] == 48  # Jan 2020 -> Jan 2024
    assert cov.loc["A", "renewal_month"] == 1 and cov.loc["A", "months_to_renewal"] == 1
    # B: signed March, churned August: Apr..Aug = 5 months, event
    assert cov.loc["B", "event"] == 1 and cov.loc["B", "months_at_risk"] == 5
    assert cov.loc["B", "nps_per_point"] == pytest.approx(-3)
    assert cov.loc["B", "no_executive_contact"] == 1.0
    # C: executive meeting after as_of does not count; survey after as_of neither
    assert cov.loc["C", "no_executive_contact"] == 1.0
    assert cov.loc["C", "n_surveys"] == 0 and np.isnan(cov.loc["C", "nps_per_point"])
    assert cov.loc["C", "tenure_months"] == 7  # Jun 2023 -> Jan 2024
    assert cov.loc["C", "months_to_renewal"] == 5  # term ends May 2024 (Jan = 1)
    yearly = build_churn_covariates(
        contracts, usage=usage, as_of="2023-12-31", utilisation_months=12
    ).set_index("account_id")
    assert yearly.loc["C", "utilisation_per_10pp"] == pytest.approx((18 / 20 - 0.7) * 10)
    assert yearly.loc["A", "utilisation"] == pytest.approx((0.8 + 0.6) / 2)
    # D: churn after as_of is censored at its last contract end (lapsed)
    assert cov.loc["D", "event"] == 0 and cov.loc["D", "exit"] == pd.Timestamp("2023-12-01")


def test_person_months_lag_every_covariate(small_tables):
    """Each month sees only data dated before its first day (hand-computed)."""
    contracts, surveys, activities, usage = small_tables
    pm = build_person_months(
        contracts,
        surveys=surveys,
        activities=activities,
        usage=usage,
        as_of="2023-12-31",
        observation_start="2022-06-01",
        exec_lookback_months=6,
    )
    b = pm[pm["account_id"] == "B"].set_index("month")
    assert b.index.strftime("%Y-%m").tolist() == [
        "2023-04",
        "2023-05",
        "2023-06",
        "2023-07",
        "2023-08",
    ]
    assert b["churned"].tolist() == [0, 0, 0, 0, 1]
    # the survey of 1 April is not known at the start of April
    assert np.isnan(b["nps_per_point"].iloc[0]) and b["nps_per_point"].iloc[1] == -3
    assert b["no_executive_contact"].eq(1.0).all()  # whole life observed, a plain meeting only
    assert b["renewal_month"].eq(0).all()  # churned term of Mar 2023 would end Mar 2024
    a = pm[pm["account_id"] == "A"].set_index("month")
    # left-truncated: look-back reaches before June 2022 and sees no meeting -> unknown
    assert np.isnan(a.loc["2022-07-01", "no_executive_contact"])
    assert a.loc["2023-02-01", "no_executive_contact"] == 0.0  # Jan 2023 meeting
    assert a.loc["2023-07-01", "no_executive_contact"] == 0.0  # Jan..Jun holds it
    assert a.loc["2023-08-01", "no_executive_contact"] == 1.0  # Feb..Jul: none, all observed
    assert a.loc["2023-02-01", "utilisation"] == pytest.approx(0.8)
    assert a.loc["2023-03-01", "utilisation"] == pytest.approx(0.7)
    assert a.loc["2023-03-01", "tenure_months"] == 38


def test_partial_as_of_month_counts_its_fraction(small_tables):
    contracts = small_tables[0]
    cov = build_churn_covariates(
        contracts, as_of="2023-12-15", observation_start="2023-01-01"
    ).set_index("account_id")
    assert cov.loc["A", "months_at_risk"] == pytest.approx(10 + 15 / 31)


def test_person_period_expansion():
    cov = pd.DataFrame(
        {"account_id": ["a", "b"], "event": [1, 0], "months_at_risk": [3.0, 2.5], "x": [1.0, 2.0]}
    )
    pp = person_period_table(cov, covariate_names=["x"])
    assert pp["account_id"].tolist() == ["a", "a", "a", "b", "b"]
    assert pp["month"].tolist() == [1, 2, 3, 1, 2]
    assert pp["churned"].tolist() == [0, 0, 1, 0, 0]
    assert pp["x"].tolist() == [1.0, 1.0, 1.0, 2.0, 2.0]


def _simulated_accounts(n=6000, seed=3):
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "nps_per_point": rng.normal(0, 1.8, n),
            "no_executive_contact": (rng.random(n) < 0.4).astype(float),
            "utilisation_per_10pp": rng.normal(0, 1.4, n),
        }
    )
    beta = np.log([0.8, 2.0, 0.75])
    h = 0.01 * np.exp(x.to_numpy() @ beta)
    k = np.floor(np.log(rng.random(n)) / np.log1p(-h)) + 1  # month of churn (geometric)
    follow = rng.integers(6, 48, n)
    return x.assign(
        account_id=[f"A{i}" for i in range(n)],
        event=(k <= follow).astype(int),
        months_at_risk=np.minimum(k, follow).astype(float),
    )


@pytest.mark.parametrize("link", ["poisson", "cloglog"])
def test_recovers_hazard_ratios_from_geometric_churn(link):
    data = _simulated_accounts()
    m = ChurnHazardModel(link=link, baseline="constant").fit(data)
    truth = {"nps_per_point": 0.8, "no_executive_contact": 2.0, "utilisation_per_10pp": 0.75}
    for k, v in truth.items():
        assert m.hazard_ratios_.loc[k, "lower"] < v < m.hazard_ratios_.loc[k, "upper"], k
    assert m.baseline_hazard_ == pytest.approx(0.01, rel=0.25)


def test_predictions_and_survival():
    m = ChurnHazardModel(baseline="constant").fit(_simulated_accounts())
    prof = pd.DataFrame(0.0, index=["ref", "no_exec"], columns=list(COVARIATES))
    prof.loc["no_exec", "no_executive_contact"] = 1.0
    h = m.predict_monthly_hazard(prof)
    assert h["ref"] == pytest.approx(m.baseline_hazard_)
    assert h["no_exec"] / h["ref"] == pytest.approx(
        m.hazard_ratios_.loc["no_executive_contact", "hr"]
    )
    s = m.survival_function(prof, 24)
    assert s.iloc[:, 0].eq(1.0).all()
    assert np.all(np.diff(s.to_numpy(), axis=1) <= 0)
    assert s.loc["ref", 12] == pytest.approx((1 - h["ref"]) ** 12)
    # no missing value in the fit: no indicator, a missing value counts as the reference
    assert m.predict_monthly_hazard(prof.assign(nps_per_point=np.nan))["ref"] == pytest.approx(
        h["ref"]
    )
    draws = m.monthly_hazard_draws(prof, 500, seed=1)
    assert draws.shape == (500, 2)
    assert np.median(draws[:, 0]) == pytest.approx(h["ref"], rel=0.1)
    summ = m.summary()
    assert summ["term"].tolist() == ["baseline_monthly_hazard", *COVARIATES]


def test_clear_errors():
    data = _simulated_accounts(n=200)
    with pytest.raises(ValueError, match="link must be one of"):
        ChurnHazardModel(link="probit")
    const = ChurnHazardModel(baseline="constant")
    with pytest.raises(HazardInputError, match="lacks column"):
        const.fit(data.drop(columns="nps_per_point"))
    with pytest.raises(HazardInputError, match="no churn event"):
        const.fit(data.assign(event=0))
    with pytest.raises(HazardInputError, match="do not vary"):
        const.fit(data.assign(no_executive_contact=1.0))
    with pytest.raises(HazardInputError, match="missing covariates"):
        ChurnHazardModel(missing="raise", baseline="constant").fit(
            data.assign(nps_per_point=np.nan)
        )
    with pytest.raises(HazardInputError, match="build_person_months"):
        ChurnHazardModel().fit(data)
    with pytest.raises(ValueError, match="missing must be"):
        ChurnHazardModel(missing="mean")
    with pytest.raises(HazardInputError, match="no contract starts"):
        build_churn_covariates(
            _contracts([("C1", "A", "2030-01-01", "2031-01-01", 1.0, "active", None)]),
            as_of="2024-01-01",
        )
    with pytest.raises(Exception, match="not fitted"):
        ChurnHazardModel().predict_monthly_hazard(data)
    assert issubclass(HazardInputError, ValueError)
    assert ConvergenceError is not None


def _missing_rows(seed: int = 4, n: int = 20_000) -> pd.DataFrame:
    """Person-months where NPS is unmeasured in 30 % of months, and riskier there (HR 2)."""
    rng = np.random.default_rng(seed)
    nps = rng.normal(0, 1.8, n)
    miss = rng.random(n) < 0.3
    h = 0.02 * np.exp(np.log(0.8) * np.where(miss, 0.0, nps) + np.log(2.0) * miss)
    return pd.DataFrame(
        {
            "account_id": np.arange(n) % 4000,
            "churned": (rng.random(n) < h).astype(int),
            "nps_per_point": np.where(miss, np.nan, nps),
        }
    )


def test_missing_indicator_keeps_the_baseline_and_prediction_uses_it():
    pm = _missing_rows()
    m = ChurnHazardModel(covariates=["nps_per_point"], baseline="constant").fit(pm)
    summ = m.summary().set_index("term")
    lo, hi = summ.loc["baseline_monthly_hazard", ["lower", "upper"]]
    assert lo < 0.02 < hi
    row = m.hazard_ratios_.loc["survey_missing"]
    assert row["lower"] < 2.0 < row["upper"]
    # the summary counts the months and accounts lacking the measurement
    assert summ.loc["nps_per_point", "missing_person_months"] == pm["nps_per_point"].isna().sum()
    assert m.missingness_.loc["nps_per_point", "share_person_months"] == pytest.approx(
        0.3, abs=0.01
    )
    # prediction: a missing NPS = reference value x the indicator's HR (same rule as the fit)
    prof = pd.DataFrame({"nps_per_point": [0.0, np.nan]})
    h = m.predict_monthly_hazard(prof)
    assert h[1] / h[0] == pytest.approx(row["hr"])


def test_an_indicator_without_events_leaves_the_fit_with_its_months():
    # a few unmeasured months, none of them with a churn: the indicator's HR is not finite
    # (separation). Those months leave the fit with the term, which is the likelihood's
    # limit, so the other estimates equal a fit on the measured months alone.
    pm = _missing_rows(n=8000)
    nps_missing = pm["nps_per_point"].isna()
    few = nps_missing & (np.arange(len(pm)) % 10 == 0)
    pm = pm[~nps_missing | few].copy()
    pm.loc[pm["nps_per_point"].isna(), "churned"] = 0
    m = ChurnHazardModel(covariates=["nps_per_point"], baseline="constant").fit(pm)
    assert m.separated_terms_ == ["survey_missing"]
    assert "survey_missing" not in m.hazard_ratios_.index
    assert np.isfinite(m.hazard_ratios_[["hr", "lower", "upper"]].to_numpy()).all()
    measured = pm[pm["nps_per_point"].notna()]
    alone = ChurnHazardModel(covariates=["nps_per_point"], baseline="constant").fit(measured)
    assert m.params_["nps_per_point"] == pytest.approx(alone.params_["nps_per_point"], rel=1e-6)
    # an account without a measurement is predicted at the reference level
    h = m.predict_monthly_hazard(pd.DataFrame({"nps_per_point": [0.0, np.nan]}))
    assert h[1] == pytest.approx(h[0])


def test_hazard_path_advances_tenure_and_repeats_renewals():
    m = ChurnHazardModel()
    names = ["const", *COVARIATES, "tenure_0_12m", "renewal_month"]
    m.params_ = dict(zip(names, [np.log(0.01), 0, 0, 0, np.log(2.0), np.log(3.0)], strict=True))
    m.covariance_ = pd.DataFrame(0.0, index=names, columns=names)
    cov = pd.DataFrame(
        {
            **{c: [0.0, 0.0] for c in COVARIATES},
            "tenure_months": [10, 40],
            "renewal_month": [0, 1],
            "months_to_renewal": [3, 1],
            "term_months": [12, 12],
        }
    )
    path = m.hazard_path(cov, 16)
    # account 0: tenure 10, 11 -> band 0-12 (x2); renewal in months 3 and 15 (x3)
    expect0 = np.full(16, 0.01)
    expect0[:2] *= 2.0
    expect0[[2, 14]] *= 3.0
    np.testing.assert_allclose(path.iloc[0].to_numpy(), expect0)
    # account 1: tenure 40+, renewals in months 1 and 13
    expect1 = np.full(16, 0.01)
    expect1[[0, 12]] *= 3.0
    np.testing.assert_allclose(path.iloc[1].to_numpy(), expect1)
    np.testing.assert_allclose(path[1].to_numpy(), m.predict_monthly_hazard(cov).to_numpy())
    s = m.survival_function(cov, [0, 16])
    assert s.iloc[0, 1] == pytest.approx(np.prod(1 - expect0))
    assert m.hazard_path_draws(cov, 16, draws=3).shape == (3, 2, 16)


def _tables(folder):
    read = lambda t: pd.read_parquet(folder / f"{t}.parquet")  # noqa: E731
    gt = json.loads((folder / "ground_truth.json").read_text())
    tables = {t: read(t) for t in ("contracts", "surveys", "activities", "usage", "accounts")}
    return tables, gt


def _person_months(tables, gt, activities=None):
    return build_person_months(
        tables["contracts"],
        surveys=tables["surveys"],
        activities=tables["activities"] if activities is None else activities,
        usage=tables["usage"],
        as_of=gt["params"]["as_of"],
        account_start=tables["accounts"].set_index("account_id")["since"],
    )


@pytest.fixture(scope="module", params=[0, 1])
def planted(request, tmp_path_factory):
    from kam_analysis.synthetic import generate_dataset

    out = tmp_path_factory.mktemp(f"hazard{request.param}") / "data"
    generate_dataset(out, n_accounts=2000, seed=request.param)
    return _tables(out)


def test_recovers_planted_time_varying_effects(planted):
    """The generator plants HR 0.80 per NPS point (latest response), 2.0 without an
    executive meeting in the previous 12 months, 0.75 per +10 pp utilisation, tenure
    HRs 1.6 / 1.3 / 1.1 (0-12 / 12-24 / 24-36 months against 36+), 2.5 in the month a
    term ends, baseline 0.006 (ground_truth.json: churn). Each truth must lie inside
    its 95 % interval on seeds 0 and 1 (seed 0: NPS 0.776 [0.746, 0.808], renewal
    1.99 [1.55, 2.58]; seed 1: NPS 0.771 [0.742, 0.801], renewal 2.60 [2.08, 3.26]).
    """
    tables, gt = planted
    truth = gt["churn"]
    m = ChurnHazardModel().fit(_person_months(tables, gt))
    assert m.n_events_ > 300
    planted_hrs = truth["hazard_ratios"] | truth["baseline_hazard_ratios"]
    for name, hr in planted_hrs.items():
        row = m.hazard_ratios_.loc[name]
        assert row["lower"] < hr < row["upper"], (name, row.to_dict())
    base = m.summary().set_index("term").loc["baseline_monthly_hazard"]
    assert base["lower"] < truth["baseline_monthly_hazard"] < base["upper"], base.to_dict()
    # renewal clustering is recovered as an effect, not just covered: interval above 1.3
    assert m.hazard_ratios_.loc["renewal_month", "lower"] > 1.3
    # no shared churn shock is planted: none is found (seeds 0 and 1: 0.0, p 0.96 / 0.77)
    shock = m.period_shock_
    assert shock["quarters"] >= 12 and shock["events"] == m.n_events_
    assert shock["variance"] < 0.02 and shock["p_value"] > 0.05


def test_null_executive_contact_holds_one(planted):
    """Executive meetings redrawn at a constant 0.05 a month over each account's life,
    independent of churn: the lagged covariate's interval holds 1. "Ever had one" (the
    old whole-history covariate) shows the immortal-time bias: HR far above 1.
    """
    tables, gt = planted
    cov = build_churn_covariates(tables["contracts"], as_of=gt["params"]["as_of"])
    rng = np.random.default_rng(11)
    entry = cov["entry"].to_numpy().astype("datetime64[M]")
    months = np.ceil(cov["months_at_risk"].to_numpy()).astype(int) + 1
    acc = np.repeat(np.arange(len(cov)), months)
    offset = np.arange(acc.size) - np.repeat(np.cumsum(months) - months, months)
    hit = rng.random(acc.size) < 0.05
    day = (entry[acc] + offset).astype("datetime64[D]") + np.timedelta64(14, "D")
    keep = hit & (day < cov["exit"].to_numpy()[acc])
    meetings = pd.DataFrame(
        {
            "account_id": cov["account_id"].to_numpy()[acc[keep]],
            "date": day[keep],
            "kind": "executive_meeting",
        }
    )
    m = ChurnHazardModel().fit(_person_months(tables, gt, activities=meetings))
    row = m.hazard_ratios_.loc["no_executive_contact"]
    assert row["lower"] < 1.0 < row["upper"], row.to_dict()
    ever = cov.assign(
        no_executive_contact=(~cov["account_id"].isin(meetings["account_id"])).astype(float),
        nps_per_point=0.0,
        utilisation_per_10pp=0.0,
    )
    old = ChurnHazardModel(covariates=["no_executive_contact"], baseline="constant").fit(ever)
    assert old.hazard_ratios_.loc["no_executive_contact", "lower"] > 1.5


def test_person_months_at_scale_are_fast():
    """100,000 accounts x 36 months (3.6M rows) are built and fitted in seconds."""
    import time

    rng = np.random.default_rng(0)
    n = 100_000
    ids = np.array([f"A{i:06d}" for i in range(n)])
    start = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    contracts = pd.DataFrame(
        {
            "account_id": ids,
            "start_date": start,
            "end_date": start + pd.DateOffset(years=6),
            "status": np.where(rng.random(n) < 0.1, "churned", "active"),
            "churn_date": pd.Timestamp("2024-06-15"),
        }
    )
    act = pd.DataFrame(
        {
            "account_id": rng.choice(ids, 300_000),
            "date": pd.Timestamp("2022-01-01")
            + pd.to_timedelta(rng.integers(0, 1450, 300_000), unit="D"),
            "kind": "executive_meeting",
        }
    )
    t0 = time.perf_counter()
    pm = build_person_months(
        contracts, activities=act, as_of="2025-12-31", observation_start="2022-01-01"
    )
    assert len(pm) > 3_500_000
    m = ChurnHazardModel(covariates=["no_executive_contact"]).fit(pm)
    assert time.perf_counter() - t0 < 60
    assert (
        m.hazard_ratios_.loc["no_executive_contact", "lower"]
        < 1.0
        < m.hazard_ratios_.loc["no_executive_contact", "upper"]
    )


def _person_months_with_quarter_shock(theta: float, seed: int) -> tuple:
    """400 accounts x 120 months at hazard 0.01; each calendar quarter's hazard x Z_q."""
    rng = np.random.default_rng(seed)
    months = pd.date_range("2015-01-01", periods=120, freq="MS")
    z = rng.gamma(1 / theta, theta, 40) if theta > 0 else np.ones(40)
    h = 0.01 * np.repeat(z, 3)
    events = rng.random((400, 120)) < h[None, :]
    return np.tile(months, 400), events.ravel().astype(float), np.full(events.size, 0.01)


def test_churn_period_shock_recovers_a_planted_quarterly_frailty():
    month, observed, expected = _person_months_with_quarter_shock(0.15, seed=1)
    out = churn_period_shock(month, observed, expected)
    assert out["quarters"] == 40 and out["events"] == int(observed.sum())
    # 40 quarters: the moment estimator's sd is about theta * sqrt(2 / 40) + Poisson noise
    assert out["variance"] == pytest.approx(0.15, abs=0.08)
    assert out["p_value"] < 1e-3


def test_churn_period_shock_is_zero_without_a_shared_shock():
    month, observed, expected = _person_months_with_quarter_shock(0.0, seed=2)
    out = churn_period_shock(month, observed, expected)
    assert out["variance"] < 0.02 and out["p_value"] > 0.01
    few = churn_period_shock(month[:3], observed[:3], expected[:3])
    assert few["quarters"] == 1 and np.isnan(few["variance"])

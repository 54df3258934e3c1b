"""Repeat-purchase estimates on the boundary of the parameter space, and the model chain.

Real wholesale data put the BG/NBD ``a`` at 0 (almost nobody drops out); the
strict fit then fails ("Hessian not positive definite"). These tests plant
that boundary in seeded simulations (true dropout probability ~0) and check
that the tolerant fit predicts close to the truth, that its parametric
bootstrap intervals contain it, and that a model that truly cannot be fitted
falls back to the next one with a note.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import ibis
import numpy as np
import pandas as pd
import pytest

from kam_analysis.ltv import (
    BetaGeo,
    ConvergenceError,
    ParetoNBD,
    simulate_beta_geo,
    simulate_pareto_nbd,
)
from kam_analysis.ltv._repeat_purchase import MIN_BOOTSTRAP, bootstrap_replicates
from kam_analysis.ltv.analysis import ltv_analysis
from kam_analysis.ltv.beta_geo import _expected_alive_by_quadrature
from kam_analysis.ltv.fitting import LtvModels, fit_purchase_model
from kam_analysis.ltv.value import LtvSettings, account_ltv

DATA = Path(__file__).parent / "data"

# No dropout: p ~ Beta(1e-6, 1) is 0 for everyone (wholesale-like), weekly buying rate
# lambda ~ Gamma(0.8, 4) (a purchase every 5 weeks on average), one year of history.
NO_DROPOUT = {"r": 0.8, "alpha": 4.0, "a": 1e-6, "b": 1.0}
HORIZON = 52.0


def _no_dropout_sample(n: int = 2000, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    first_purchase_weeks_ago = rng.integers(1, 53, n).astype(float)
    return simulate_beta_geo(n, **NO_DROPOUT, T=first_purchase_weeks_ago, seed=rng)


def _rft(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        df["frequency"].to_numpy(dtype=float),
        df["recency"].to_numpy(dtype=float),
        df["T"].to_numpy(dtype=float),
    )


def _total_expected(model, x, tx, big_t) -> float:
    return float(
        np.asarray(
            model.conditional_expected_number_of_purchases_up_to_time(HORIZON, x, tx, big_t)
        ).sum()
    )


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return _no_dropout_sample()


@pytest.fixture(scope="module")
def boundary_fit(sample: pd.DataFrame) -> BetaGeo:
    return BetaGeo(boundary="bootstrap", n_bootstrap=60, bootstrap_seed=0).fit(*_rft(sample))


# --------------------------------------------------------------------------- BG/NBD at a -> 0


def test_strict_fit_fails_where_nobody_drops_out(sample: pd.DataFrame) -> None:
    # the old behaviour, still the default: the estimate is not identified
    with pytest.raises(ConvergenceError, match="not positive definite|not identified|boundary"):
        BetaGeo().fit(*_rft(sample))


def test_boundary_fit_is_flagged_and_says_which_parameters(boundary_fit: BetaGeo) -> None:
    assert boundary_fit.at_boundary_
    assert "a" in boundary_fit.boundary_params_
    assert boundary_fit.variance_matrix_ is None
    assert boundary_fit.interval_method_ == "parametric_bootstrap"
    p = boundary_fit.params_
    assert p["a"] / (p["a"] + p["b"]) < 1e-6  # mean dropout probability per purchase ~ 0
    assert boundary_fit.bootstrap_["replicates"] >= MIN_BOOTSTRAP
    assert boundary_fit.param_draws_.shape == (boundary_fit.bootstrap_["replicates"], 4)
    assert "boundary" in boundary_fit._repr_html_()


def test_boundary_predictions_are_close_to_the_truth(
    boundary_fit: BetaGeo, sample: pd.DataFrame
) -> None:
    x, tx, big_t = _rft(sample)
    truth = BetaGeo.from_params(NO_DROPOUT)
    p_alive = np.asarray(boundary_fit.conditional_probability_alive(x, tx, big_t))
    assert np.all(np.isfinite(p_alive)) and p_alive.min() > 0.999  # truly nobody dropped out
    e_true = np.asarray(truth.conditional_expected_number_of_purchases_up_to_time(52, x, tx, big_t))
    e_hat = np.asarray(
        boundary_fit.conditional_expected_number_of_purchases_up_to_time(52, x, tx, big_t)
    )
    assert np.all(np.isfinite(e_hat))
    assert e_hat.sum() == pytest.approx(e_true.sum(), rel=0.01)  # a year's purchases, book total
    assert np.max(np.abs(e_hat / e_true - 1)) < 0.1  # every customer within 10 %


def test_bootstrap_intervals_contain_the_truth(boundary_fit: BetaGeo, sample: pd.DataFrame) -> None:
    ci = boundary_fit.confidence_intervals_
    for name in ("r", "alpha"):
        assert ci.loc[name, "lower"] < NO_DROPOUT[name] < ci.loc[name, "upper"]
    # the mean dropout probability per purchase, a / (a + b): the bootstrap says "0, at most
    # a fraction of a percent" (the interval of a itself is not reliable on the boundary,
    # Andrews 2000; the predictions and this mean are)
    a, b = boundary_fit.param_draws_[:, 2], boundary_fit.param_draws_[:, 3]
    dropout_lo, dropout_hi = np.quantile(a / (a + b), [0.025, 0.975])
    assert dropout_lo < 1e-6 and dropout_hi < 0.01
    # the book's expected purchases next year under each bootstrap parameter draw
    x, tx, big_t = _rft(sample)
    totals = [
        _total_expected(
            BetaGeo.from_params(dict(zip(boundary_fit.param_names, th, strict=True))), x, tx, big_t
        )
        for th in boundary_fit.param_draws_
    ]
    lo, hi = np.quantile(totals, [0.025, 0.975])
    truth = _total_expected(BetaGeo.from_params(NO_DROPOUT), x, tx, big_t)
    assert lo < truth < hi
    summary = boundary_fit.summary()
    assert np.isfinite(summary[["lower", "upper"]].to_numpy()).all()


def test_bootstrap_is_seeded(boundary_fit: BetaGeo, sample: pd.DataFrame) -> None:
    again = BetaGeo(boundary="bootstrap", n_bootstrap=60, bootstrap_seed=0).fit(*_rft(sample))
    np.testing.assert_array_equal(again.param_draws_, boundary_fit.param_draws_)


def test_bootstrap_is_bounded_in_time_and_size(sample: pd.DataFrame) -> None:
    # 4,000,000 customer-refits at most, at least 2 x MIN_BOOTSTRAP, at most n_bootstrap
    assert bootstrap_replicates(4_300) == 200
    assert bootstrap_replicates(23_570) == 169
    assert bootstrap_replicates(1_000_000) == 2 * MIN_BOOTSTRAP
    assert bootstrap_replicates(100, n_bootstrap=50) == 50
    # a time limit that stops the bootstrap at once: the point estimate stays, no interval
    quick = BetaGeo(boundary="bootstrap", max_bootstrap_seconds=1e-9).fit(*_rft(sample))
    assert quick.at_boundary_ and quick.bootstrap_["truncated"]
    assert quick.interval_method_ == "none" and quick.param_draws_ is None
    assert quick.confidence_intervals_.isna().all().all()
    draws = quick.parameter_draws(5, np.random.default_rng(0))
    np.testing.assert_allclose(draws, np.tile(list(quick.params_.values()), (5, 1)))


def test_regular_fit_is_unchanged_by_the_boundary_option() -> None:
    # published CDNOW estimates (FHL 2005): r=0.243, alpha=4.414, a=0.793, b=2.426
    cdnow = pd.read_csv(DATA / "cdnow_summary.csv")
    m = BetaGeo(boundary="bootstrap").fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert not m.at_boundary_ and m.interval_method_ == "wald" and m.param_draws_ is None
    for name, value in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        assert m.params_[name] == pytest.approx(value, abs=1e-3)


def test_homogeneous_dropout_boundary_predicts_finite_values() -> None:
    # everyone with the same small dropout probability: a, b -> infinity together, where
    # the closed-form 2F1 overflows; the quadrature over p takes over
    rng = np.random.default_rng(3)
    big_t = rng.integers(1, 53, 3000).astype(float)
    truth = {"r": 0.8, "alpha": 4.0, "a": 5000.0, "b": 5e6}  # p = 0.001 for everyone
    df = simulate_beta_geo(3000, **truth, T=big_t, seed=rng)
    m = BetaGeo(boundary="bootstrap", n_bootstrap=40).fit(*_rft(df))
    x, tx, t = _rft(df)
    e_hat = np.asarray(m.conditional_expected_number_of_purchases_up_to_time(52, x, tx, t))
    assert np.all(np.isfinite(e_hat)) and np.all(e_hat >= 0)
    e_true = _total_expected(BetaGeo.from_params(truth), x, tx, t)
    assert e_hat.sum() == pytest.approx(e_true, rel=0.03)


@pytest.mark.parametrize(
    ("r", "alpha", "a", "b"),
    [(0.243, 4.414, 0.793, 2.426), (0.5, 5.0, 20.0, 200.0), (0.5, 5.0, 0.01, 3000.0)],
)
def test_quadrature_matches_the_closed_form(r, alpha, a, b) -> None:
    x = np.array([0.0, 1, 2, 5, 20, 100])
    big_t = np.array([39.0, 39, 30, 20, 39, 39])
    t = np.array([[10.0], [52.0], [260.0]])
    closed = BetaGeo._expected_factor(t, x, big_t, r, alpha, a, b)
    quad = _expected_alive_by_quadrature(t, x, big_t, r, alpha, a, b)
    np.testing.assert_allclose(quad, closed, rtol=1e-3)


def test_simulate_pareto_nbd_matches_the_model_mean() -> None:
    params = {"r": 0.55, "alpha": 10.6, "s": 0.61, "beta": 11.7}  # CDNOW estimates
    df = simulate_pareto_nbd(40_000, **params, T=39.0, seed=1)
    expected = ParetoNBD.from_params(params).expected_number_of_purchases_up_to_time(39.0)
    assert df["frequency"].mean() == pytest.approx(float(expected), rel=0.03)
    assert (df["recency"] <= df["T"]).all() and (df.loc[df["frequency"] == 0, "recency"] == 0).all()


# --------------------------------------------------------------------------- the chain


def _buyers(df: pd.DataFrame) -> pd.DataFrame:
    return df[["frequency", "recency", "T"]]


def test_chain_keeps_a_boundary_bgnbd_with_a_note(sample: pd.DataFrame) -> None:
    models = LtvModels(as_of=pd.Timestamp("2024-12-31"))
    settings = LtvSettings(bootstrap_replicates=40)
    fit_purchase_model(_buyers(sample), models, period="week", settings=settings)
    assert models.bgnbd is not None and models.pnbd is None
    assert models.purchase_label == "transactional_bgnbd"
    keys = [m.key for m in models.messages]
    assert keys == ["purchase_boundary"]
    note = models.messages[0]
    assert note.values["model"] == "BG/NBD" and "a" in note.values["params"]
    assert "parametric bootstrap" in note.text and str(note) == note.text


def test_chain_falls_back_to_pareto_nbd_when_bgnbd_cannot_be_fitted(monkeypatch) -> None:
    cdnow = pd.read_csv(DATA / "cdnow_summary.csv")

    def optimiser_failure(self, *args, **kwargs):
        raise ConvergenceError("BG/NBD: the optimiser did not converge after 1000 iterations")

    monkeypatch.setattr(BetaGeo, "fit", optimiser_failure)
    models = LtvModels(as_of=pd.Timestamp("1997-09-30"))
    fit_purchase_model(_buyers(cdnow), models, period="week", settings=LtvSettings())
    assert models.bgnbd is None and models.pnbd is not None
    assert models.purchase_label == "transactional_pnbd"
    assert [m.key for m in models.messages] == ["purchase_fallback"]
    assert models.messages[0].values == {
        "model": "BG/NBD",
        "next": "Pareto/NBD",
        "reason": "the optimiser did not converge after 1000 iterations",
    }
    # Pareto/NBD on CDNOW (Fader & Hardie 2005, note 009): r=0.553, alpha=10.58, s=0.606
    assert models.pnbd.params_["r"] == pytest.approx(0.553, abs=2e-3)

    # the accounts are valued with it: expected purchases x spend (revenue basis, factor 1)
    feats = cdnow.head(50).assign(
        account_id=lambda d: d["customer_id"].astype(str),
        monetary_value=40.0,
        revenue_12m=100.0,
        gross_profit_12m=np.nan,
        margin_12m=np.nan,
        tenure_days=273.0,
    )
    settings = LtvSettings(discount_rate_annual=0.0, horizon_years=1, growth="none", draws=50)
    out = account_ltv(feats, as_of="1997-09-30", models=models, settings=settings)
    assert out["model"].eq("transactional_pnbd").all() and out["basis"].eq("revenue").all()
    e = models.pnbd.conditional_expected_number_of_purchases_up_to_time(
        52.1775, feats["frequency"], feats["recency"], feats["T"]
    )
    np.testing.assert_allclose(out["ltv"], np.asarray(e) * 40.0, rtol=1e-6)
    assert np.isfinite(out[["ltv", "ltv_lower", "ltv_upper"]].to_numpy()).all()


def test_chain_without_enough_repeat_buyers_fits_nothing_and_says_so() -> None:
    one_purchase = pd.DataFrame({"frequency": [0.0] * 30 + [1.0] * 5, "recency": 0.0, "T": 20.0})
    one_purchase.loc[one_purchase["frequency"] > 0, "recency"] = 10.0
    models = LtvModels(as_of=pd.Timestamp("2024-12-31"))
    fit_purchase_model(one_purchase, models, period="week", settings=LtvSettings())
    assert models.purchase is None
    assert [m.key for m in models.messages] == ["too_few_repeat"]
    assert models.messages[0].values == {"n": 5, "min": 20}


def test_chain_reports_when_no_model_can_be_fitted(monkeypatch) -> None:
    sample = _no_dropout_sample(300, seed=1)

    def fails(self, *args, **kwargs):
        raise ConvergenceError(f"{self.model_name}: the log-likelihood is not finite")

    monkeypatch.setattr(BetaGeo, "fit", fails)
    monkeypatch.setattr(ParetoNBD, "fit", fails)
    models = LtvModels(as_of=pd.Timestamp("2024-12-31"))
    fit_purchase_model(_buyers(sample), models, period="week", settings=LtvSettings())
    assert models.purchase is None
    assert [m.key for m in models.messages] == ["purchase_fallback", "purchase_none"]


# --------------------------------------------------------------------------- ltv_analysis


def _transactions_from(sample: pd.DataFrame, as_of: pd.Timestamp, seed: int = 0) -> pd.DataFrame:
    """Invoice lines of the simulated customers: the first purchase ``T`` weeks before
    ``as_of``, the last ``recency`` weeks after it, the others uniform in between."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, (x, tx, big_t) in enumerate(zip(*_rft(sample), strict=True)):  # test data only
        first = as_of - pd.Timedelta(days=round(7 * big_t))
        weeks = [0.0, *np.sort(rng.uniform(0, tx, int(x) - 1)), tx] if x > 0 else [0.0]
        for w in weeks:
            rows.append((f"C{i:05d}", first + pd.Timedelta(days=round(7 * w)), 30.0 + (i % 7)))
    return pd.DataFrame(rows, columns=["account_id", "date", "revenue"])


def _context(transactions: pd.DataFrame, as_of: pd.Timestamp):
    """The parts of an AnalysisContext that ltv_analysis reads (no cost, no product line)."""
    from kam_analysis.data.features import build_account_features, monthly_revenue

    accounts = pd.DataFrame({"account_id": sorted(transactions["account_id"].unique())})
    tables = {"transactions": ibis.memtable(transactions), "accounts": ibis.memtable(accounts)}
    features = build_account_features(tables["transactions"], tables["accounts"], as_of)
    monthly = monthly_revenue(tables["transactions"], as_of, months=36)
    frames = {"accounts": accounts}
    return SimpleNamespace(
        as_of=as_of.date(),
        features=features,
        monthly=monthly,
        frame=lambda t: frames.get(t),
        kpi_tables=lambda account_ids=None: dict.fromkeys(
            ("contracts", "opportunities", "activities", "surveys", "usage")
        ),
        has=lambda t: t in tables,
        dataset=SimpleNamespace(table=lambda t: tables[t]),
        config=SimpleNamespace(
            features=SimpleNamespace(period="week"),
            data=SimpleNamespace(fiscal_year_start_month=4, assumed_gross_margin=None),
        ),
    )


@pytest.fixture(scope="module")
def wholesale_context():
    as_of = pd.Timestamp("2011-12-09")
    sample = _no_dropout_sample(600, seed=4)
    return _context(_transactions_from(sample, as_of), as_of)


def test_ltv_analysis_on_a_boundary_book_values_everyone_and_explains(wholesale_context) -> None:
    settings = LtvSettings(draws=100, bootstrap_replicates=40)
    res = ltv_analysis(wholesale_context, settings, n_origins=1)
    assert res.basis == "revenue"
    keys = [m.key for m in res.messages]
    assert "purchase_boundary" in keys and "basis_revenue" in keys
    assert "backtest_skipped" in keys  # one year of history: no cut-off with 12 months before it
    assert res.notes == [m.text for m in res.messages]
    valued = res.valued
    assert len(valued) == 600 and valued["model"].eq("transactional_bgnbd").all()
    values = valued[["ltv", "ltv_lower", "ltv_upper"]].to_numpy()
    assert np.isfinite(values).all() and (valued["ltv"] > 0).all()
    assert (valued["ltv_lower"] <= valued["ltv"] + 1e-9).all()


def test_ltv_analysis_never_raises_when_nobody_bought_twice() -> None:
    as_of = pd.Timestamp("2011-12-09")
    tx = pd.DataFrame(
        {
            "account_id": [f"C{i}" for i in range(40)],
            "date": pd.date_range("2011-01-03", periods=40, freq="W"),
            "revenue": 25.0,
        }
    )
    res = ltv_analysis(_context(tx, as_of), LtvSettings(draws=50), n_origins=1)
    assert res.valued.empty and res.ltv["model"].eq("none").all()
    keys = [m.key for m in res.messages]
    assert "too_few_repeat" in keys and "nothing_valued" in keys
    assert res.ltv["basis"].eq("revenue").all()

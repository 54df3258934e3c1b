"""Backtests of the account LTV: fit before a cut-off, predict the holdout, compare.

:func:`backtest_ltv` rebuilds everything as of a cut-off date (account
features through Ibis/DuckDB with ``as_of = cutoff``, contract covariates
from rows up to the cut-off), runs :func:`~kam_analysis.ltv.value.account_ltv`
over the holdout length without discounting, and compares each account's
predicted value in the holdout with the actual one, aggregated in the engine
from the transaction lines after the cut-off. The value is measured in the
LTV's basis (:func:`~kam_analysis.ltv.value.ltv_basis`): gross profit with
cost data, else revenue (times the assumed gross margin when one is given).
It reports

* error per account and in aggregate (:func:`error_metrics`: MAE, bias,
  relative bias of the total), overall and per model;
* calibration of the intervals over the accounts alive at the cut-off, per
  model (:func:`interval_metrics`: coverage, misses below and above, the
  interval score of Gneiting & Raftery 2007), and each account's PIT;
* calibration by decile of the prediction (:func:`calibration_table`);
* the repeat-purchase diagnostics users of *lifetimes* rely on (BG/NBD, or
  the Pareto/NBD when it replaced it): cumulative tracking
  of repeat purchases in the holdout (model vs actual, per purchase period)
  and the period-transactions histogram of the calibration period
  (:func:`period_transactions_histogram`), also as numeric tables.

:func:`rolling_backtest` repeats it over several cut-offs (rolling origin).

References
----------
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your
customers" the easy way. *Marketing Science* 24(2), 275-284 (figures 2-4:
the calibration histogram, cumulative tracking and conditional expectations).

Tashman, L. J. (2000). Out-of-sample tests of forecasting accuracy: an
analysis and review. *International Journal of Forecasting* 16(4), 437-450
(rolling-origin evaluation).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from kam_analysis.core.errors import InputError
from kam_analysis.data import rows_of_accounts
from kam_analysis.data.features import (
    build_account_features,
    monthly_revenue,
    period_of_day,
    prepared_lines,
)

from ._repeat_purchase import RepeatPurchaseModel
from .shocks import RevenueShocks
from .value import LtvModels, LtvSettings, fit_ltv_models, simulate_ltv

__all__ = [
    "BacktestInputError",
    "BacktestResult",
    "backtest_ltv",
    "backtest_sample",
    "calibration_table",
    "coverage_table",
    "error_metrics",
    "interval_coverage",
    "interval_metrics",
    "interval_score",
    "only_accounts",
    "pit_values",
    "period_transactions_histogram",
    "rolling_backtest",
    "rolling_cutoffs",
]


class BacktestInputError(InputError, ValueError):
    """The backtest cannot be run as asked."""


@dataclass
class BacktestResult:
    """Everything one backtest computed.

    Attributes
    ----------
    cutoff, holdout_end : pandas.Timestamp
        Calibration data up to ``cutoff`` (inclusive); holdout ``(cutoff, holdout_end]``.
    holdout_months : int
    accounts : DataFrame
        Per account: ``account_id``, ``model``, ``predicted`` (value in the
        holdout, in ``basis``), ``lower``, ``upper``, ``actual`` (the same
        basis), ``actual_revenue``, ``predicted_purchases`` and
        ``actual_purchases`` (repeat purchase periods in the holdout,
        transactional accounts); for accounts alive at the cut-off ``pit``
        (:func:`pit_values`), ``inside`` (:func:`interval_coverage`) and
        ``interval_score`` (:func:`interval_score`), NaN for churned ones.
    metrics : DataFrame
        :func:`error_metrics` of all accounts and :func:`interval_metrics` of
        those alive at the cut-off, per ``group`` (``all`` and each model).
    calibration : DataFrame
        :func:`calibration_table` of all valued accounts.
    tracking : DataFrame
        ``period`` (1..), ``model`` and ``actual`` cumulative repeat purchases
        in the holdout over the transactional accounts.
    histogram : DataFrame
        :func:`period_transactions_histogram` of the calibration period.
    models : LtvModels
        The models fitted on the calibration data.
    basis : str
        What ``predicted`` and ``actual`` measure: ``"gross_profit"``,
        ``"assumed_margin"`` or ``"revenue"``.
    interval_level : float
        Nominal central coverage of ``[lower, upper]``.
    shocks : RevenueShocks or None
        The revenue shock model behind the contractual intervals.
    """

    cutoff: pd.Timestamp
    holdout_end: pd.Timestamp
    holdout_months: int
    accounts: pd.DataFrame
    metrics: pd.DataFrame
    calibration: pd.DataFrame
    tracking: pd.DataFrame
    histogram: pd.DataFrame
    models: LtvModels
    basis: str = "gross_profit"
    interval_level: float = 0.8
    shocks: RevenueShocks | None = None

    @property
    def coverage(self) -> dict[str, dict[str, float]]:
        """Per model group of accounts alive at the cut-off: ``{"n": ..., "coverage": ...}``."""
        m = self.metrics
        rows = m[
            m["n_alive"].fillna(0).gt(0) & ~m["group"].isin(["all", "transactional_purchases"])
        ]
        return {
            str(r.group): {"n": int(r.n_alive), "coverage": float(r.coverage)}
            for r in rows.itertuples()
        }


# --------------------------------------------------------------------------- pure metrics


def error_metrics(
    predicted: Any, actual: Any, lower: Any = None, upper: Any = None, weight: Any = None
) -> dict[str, float]:
    """Account-level and aggregate error of a forecast.

    Parameters
    ----------
    predicted, actual : array-like
        Same length, finite.
    lower, upper : array-like, optional
        Interval bounds; gives ``coverage``.
    weight : array-like, optional
        How many accounts each one stands for (a sample's weights,
        :func:`backtest_sample`): means, totals and shares are weighted, so
        they estimate the whole book's; ``n`` stays the count. Default 1.

    Returns
    -------
    dict
        ``n``, ``mae`` (mean absolute error), ``bias`` (mean of predicted -
        actual), ``rmse``, ``mean_actual``, ``total_predicted``,
        ``total_actual``, ``total_error_pct`` (total predicted / total actual
        - 1; NaN when the actual total is 0), ``wape`` (sum |error| / sum
        actual) and ``coverage`` (share of actuals inside [lower, upper];
        NaN without bounds).

    Raises
    ------
    BacktestInputError
        Different lengths, empty or non-finite input.
    """
    p = np.asarray(predicted, dtype=float)
    a = np.asarray(actual, dtype=float)
    if p.shape != a.shape or p.ndim != 1:
        raise BacktestInputError(
            f"predicted and actual must be 1-d of equal length, got {p.shape} and {a.shape}"
        )
    if p.size == 0:
        raise BacktestInputError("no accounts to evaluate")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(a))):
        raise BacktestInputError("predicted and actual must be finite (drop unvalued accounts)")
    w = np.ones(p.size) if weight is None else np.asarray(weight, dtype=float)
    err = p - a
    tot_p, tot_a = float(w @ p), float(w @ a)
    cov = float("nan")
    if lower is not None and upper is not None:
        lo, hi = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
        cov = float(np.average((a >= lo) & (a <= hi), weights=w))
    return {
        "n": int(p.size),
        "mae": float(np.average(np.abs(err), weights=w)),
        "bias": float(np.average(err, weights=w)),
        "rmse": float(np.sqrt(np.average(err**2, weights=w))),
        "mean_actual": float(np.average(a, weights=w)),
        "total_predicted": tot_p,
        "total_actual": tot_a,
        "total_error_pct": tot_p / tot_a - 1 if tot_a != 0 else float("nan"),
        "wape": float(w @ np.abs(err)) / abs(tot_a) if tot_a != 0 else float("nan"),
        "coverage": cov,
    }


def interval_score(lower: Any, upper: Any, actual: Any, alpha: float) -> np.ndarray:
    """Interval score of central ``(1 - alpha)`` intervals (lower is better).

    ``(u - l) + (2 / alpha) (l - y) 1[y < l] + (2 / alpha) (y - u) 1[y > u]``:
    the width, plus a penalty for an outcome outside that grows with the
    miss. A proper score: its expectation is smallest for the true quantiles
    ``alpha / 2`` and ``1 - alpha / 2``.

    Parameters
    ----------
    lower, upper, actual : array-like
        Same shape.
    alpha : float
        In (0, 1); 0.2 for a P10-P90 interval.

    Returns
    -------
    ndarray
        The score per outcome, in the unit of ``actual``.

    References
    ----------
    Gneiting, T. & Raftery, A. E. (2007). Strictly proper scoring rules,
    prediction, and estimation. *JASA* 102(477), 359-378, eq. (43).
    """
    if not 0 < alpha < 1:
        raise BacktestInputError(f"alpha must be in (0, 1), got {alpha!r}")
    lo, hi, y = (np.asarray(v, dtype=float) for v in (lower, upper, actual))
    return (
        (hi - lo) + (2 / alpha) * np.clip(lo - y, 0, None) + (2 / alpha) * np.clip(y - hi, 0, None)
    )


def _cdf_at(draws: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predictive CDF just below and at each actual: ``F(y-)``, ``F(y)`` from the draws."""
    d = np.asarray(draws, dtype=float)
    y = np.asarray(actual, dtype=float)
    if d.ndim != 2 or d.shape[1] != y.size:
        raise BacktestInputError(
            f"draws must be (n_draws, n_accounts) with n_accounts = {y.size}, got {d.shape}"
        )
    return (d < y[None, :]).mean(axis=0), (d <= y[None, :]).mean(axis=0)


def pit_values(draws: Any, actual: Any, rng: np.random.Generator) -> np.ndarray:
    """Randomised probability integral transform of each actual under its draws.

    ``F(y-) + U (F(y) - F(y-))`` with ``U ~ Uniform(0, 1)``: the predictive CDF
    at the outcome, spread uniformly over an atom (an account with no
    purchase, a contract churned at once). Uniform on (0, 1) when the
    forecasts are calibrated; a U shape means intervals too narrow, a hump
    too wide.

    Parameters
    ----------
    draws : array-like, shape (n_draws, n)
        Simulated values per account.
    actual : array-like, shape (n,)
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (n,)

    References
    ----------
    Czado, C., Gneiting, T. & Held, L. (2009). Predictive model assessment for
    count data. *Biometrics* 65(4), 1254-1261 (the randomised PIT).
    """
    lo, hi = _cdf_at(np.asarray(draws, dtype=float), np.asarray(actual, dtype=float))
    return lo + rng.random(lo.size) * (hi - lo)


def interval_coverage(draws: Any, actual: Any, level: float) -> np.ndarray:
    """Probability that each actual counts as inside the central ``level`` interval.

    1 or 0 for an actual that no draw equals (inside the band
    ``[(1 - level) / 2, (1 + level) / 2]`` of the predictive CDF, i.e. the
    quantile interval); for an actual on an atom, the share of the atom's
    probability ``[F(y-), F(y)]`` inside that band: the expected value of the
    randomised PIT's indicator (:func:`pit_values`). With atoms a closed
    quantile interval covers more than ``level`` even for a calibrated
    forecast (an account with a 30 % chance of no purchase has lower bound
    0 and covers its zero outcome always); this count has mean ``level``.

    Parameters
    ----------
    draws : array-like, shape (n_draws, n)
    actual : array-like, shape (n,)
    level : float
        In (0, 1).

    Returns
    -------
    ndarray, shape (n,)
        Values in [0, 1]; their mean is the coverage.
    """
    if not 0 < level < 1:
        raise BacktestInputError(f"level must be in (0, 1), got {level!r}")
    lo, hi = _cdf_at(np.asarray(draws, dtype=float), np.asarray(actual, dtype=float))
    a, b = (1 - level) / 2, (1 + level) / 2
    width = hi - lo
    overlap = np.clip(np.minimum(hi, b) - np.maximum(lo, a), 0.0, None)
    point = ((lo >= a) & (lo <= b)).astype(float)
    return np.where(width > 0, overlap / np.where(width > 0, width, 1.0), point)


def interval_metrics(accounts: pd.DataFrame, level: float) -> dict[str, float]:
    """Calibration of the intervals of accounts alive at the cut-off.

    Parameters
    ----------
    accounts : DataFrame
        ``inside`` (:func:`interval_coverage`), ``lower``, ``upper``,
        ``actual``, ``interval_score``; ``weight`` (optional, see
        :func:`error_metrics`) weights every share and mean.
    level : float

    Returns
    -------
    dict
        ``n_alive``, ``coverage`` (mean of ``inside``), ``coverage_closed``
        (share in the closed interval, ties counted inside), ``below`` and
        ``above`` (shares outside on each side), ``interval_score`` (mean) and
        ``interval_score_rel`` (mean score / mean actual). NaN without accounts.
    """
    n = len(accounts)
    if n == 0:
        nan = float("nan")
        return dict.fromkeys(
            [
                "coverage",
                "coverage_closed",
                "below",
                "above",
                "interval_score",
                "interval_score_rel",
            ],
            nan,
        ) | {"n_alive": 0}
    y, lo, hi = (accounts[c].to_numpy(dtype=float) for c in ("actual", "lower", "upper"))
    w = accounts["weight"].to_numpy(dtype=float) if "weight" in accounts else np.ones(n)

    def mean(values: Any) -> float:
        return float(np.average(np.asarray(values, dtype=float), weights=w))

    score = mean(accounts["interval_score"])
    mean_y = mean(y)
    return {
        "n_alive": int(n),
        "coverage": mean(accounts["inside"]),
        "coverage_closed": mean((y >= lo) & (y <= hi)),
        "below": mean(y < lo),
        "above": mean(y > hi),
        "interval_score": score,
        "interval_score_rel": score / mean_y if mean_y > 0 else float("nan"),
    }


def calibration_table(predicted: Any, actual: Any, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs mean actual by quantile bin of the prediction.

    Parameters
    ----------
    predicted, actual : array-like
    n_bins : int
        Number of (near-)equal-count bins by rank of ``predicted`` (10 = deciles).

    Returns
    -------
    DataFrame
        ``bin`` (1 = lowest predictions), ``n``, ``predicted_mean``,
        ``actual_mean``, ``predicted_total``, ``actual_total``,
        ``ratio`` (actual_total / predicted_total). A well-calibrated model
        has ratios near 1 in every bin.
    """
    p = np.asarray(predicted, dtype=float)
    a = np.asarray(actual, dtype=float)
    if p.shape != a.shape or p.size == 0:
        raise BacktestInputError("predicted and actual must be non-empty and of equal length")
    if int(n_bins) < 1:
        raise BacktestInputError(f"n_bins must be >= 1, got {n_bins!r}")
    k = min(int(n_bins), p.size)
    rank = np.argsort(np.argsort(p, kind="stable"), kind="stable")
    b = rank * k // p.size + 1
    df = pd.DataFrame({"bin": b, "p": p, "a": a}).groupby("bin")
    out = pd.DataFrame(
        {
            "n": df.size(),
            "predicted_mean": df["p"].mean(),
            "actual_mean": df["a"].mean(),
            "predicted_total": df["p"].sum(),
            "actual_total": df["a"].sum(),
        }
    )
    out["ratio"] = out["actual_total"] / out["predicted_total"].where(out["predicted_total"] != 0)
    return out.reset_index()


def period_transactions_histogram(
    model: RepeatPurchaseModel, frequency: Any, T: Any, *, max_count: int = 7
) -> pd.DataFrame:
    """Customers with 0, 1, ..., ``max_count``+ repeat purchases: actual vs the model.

    The model count for ``n`` is ``sum_i P(X(T_i) = n)`` over customers, each
    with her own observation length ``T_i`` (FHL 2005, fig. 2 / eq. 8); the
    last row collects ``max_count`` and more.

    Parameters
    ----------
    model : BetaGeo or ParetoNBD
        Fitted on the same customers.
    frequency, T : array-like
        Calibration repeat purchases and observation lengths (model units).
    max_count : int
        First count pooled into the last bin (7 gives bins 0..6, 7+).

    Returns
    -------
    DataFrame
        ``purchases`` (``"0"``, ..., ``"7+"``), ``actual``, ``model``,
        ``difference`` (model - actual), ``pct_difference`` (of actual).
    """
    x = np.asarray(frequency, dtype=float)
    t = np.asarray(T, dtype=float)
    if x.shape != t.shape or x.size == 0:
        raise BacktestInputError("frequency and T must be non-empty and of equal length")
    if int(max_count) < 1:
        raise BacktestInputError(f"max_count must be >= 1, got {max_count!r}")
    n = np.arange(int(max_count))
    probs = model.probability_of_n_purchases_up_to_time(t[:, None], n[None, :])
    expected = probs.sum(axis=0)
    expected = np.append(expected, x.size - expected.sum())
    actual = np.bincount(np.minimum(x.astype(np.int64), int(max_count)), minlength=max_count + 1)
    labels = [str(i) for i in n] + [f"{int(max_count)}+"]
    out = pd.DataFrame({"purchases": labels, "actual": actual.astype(float), "model": expected})
    out["difference"] = out["model"] - out["actual"]
    out["pct_difference"] = out["difference"] / out["actual"].where(out["actual"] > 0)
    return out


# --------------------------------------------------------------------------- engine side


def _holdout_actuals(
    transactions: ir.Table,
    cutoff: pd.Timestamp,
    end: pd.Timestamp,
    period: str,
    fx_rates: ir.Table | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per account holdout GP / revenue / repeat periods, and repeat periods per holdout period."""
    lines = prepared_lines(transactions, end, period, fx_rates)
    p_cut = period_of_day(cutoff, period)
    after = lines.filter(lines.ts >= ibis.literal(cutoff + pd.Timedelta(days=1), type="timestamp"))
    per = after.group_by(["account_id", "period"]).aggregate(
        _gp=after.gross_profit.sum(), _rev=after.revenue.sum()
    )
    # a purchase in the cut-off's own period was already counted in calibration
    per = per.mutate(_new=(per.period > p_cut).cast("int64"))
    acc = per.group_by("account_id").aggregate(
        actual=per._gp.sum(), actual_revenue=per._rev.sum(), actual_purchases=per._new.sum()
    )
    by_period = (
        per.filter(per._new == 1)
        .mutate(rel=per.period - p_cut)
        .group_by(["account_id", "rel"])
        .aggregate(n=ibis._.count())
    )
    return acc.to_pandas(), by_period.to_pandas()


def backtest_sample(
    account_ids: Sequence[Any], max_accounts: int, *, size: Any = None, seed: int = 0
) -> pd.Series | None:
    """A fixed sample of the accounts to backtest, with weights; None to backtest them all.

    A stratified sample: the ``max_accounts // 10`` largest accounts by
    ``size`` are always in it (weight 1), because a few large accounts make
    most of a book's value and a random draw would leave the total error to
    chance. The rest of the sample is drawn from the other accounts: each
    gets a SHA-256 digest of ``seed`` and its id, and the smallest digests
    are drawn. Each drawn account stands for ``(N - k) / (max_accounts - k)``
    accounts (its weight; ``k`` large accounts of ``N``), so weighted sums
    estimate the book's totals without bias (Horvitz-Thompson). The draw
    depends on nothing but the seed, the ids and their sizes: the same accounts
    at every cut-off and in every run, whatever the order of the rows.

    Parameters
    ----------
    account_ids : sequence
        The book's account ids (distinct).
    max_accounts : int
        The sample size; a book this size or smaller is not sampled.
    size : array-like, optional
        Each account's size (e.g. revenue in the last 12 months), aligned with
        ``account_ids``; without it the whole sample is drawn at random.
    seed : int
        Seed of the draw (``[ltv] seed``).

    Returns
    -------
    pandas.Series or None
        Weight by sampled account id (str), in the order of ``account_ids``.
    """
    ids = np.array([str(a) for a in account_ids], dtype=object)
    n = len(ids)
    if n <= max_accounts:
        return None
    certain = np.zeros(n, dtype=bool)
    if size is not None:
        values = np.nan_to_num(np.asarray(size, dtype=float), nan=-np.inf)
        certain[np.argsort(-values, kind="stable")[: max_accounts // 10]] = True
    k = int(certain.sum())
    prefix = f"{seed}:".encode()
    digest = np.array([hashlib.sha256(prefix + a.encode()).digest()[:8] for a in ids], dtype="S8")
    rest = np.flatnonzero(~certain)
    drawn = rest[np.argsort(digest[rest], kind="stable")[: max_accounts - k]]
    weight = np.zeros(n)
    weight[certain] = 1.0
    weight[drawn] = (n - k) / (max_accounts - k)
    keep = weight > 0
    return pd.Series(weight[keep], index=pd.Index(ids[keep], name="account_id"), name="weight")


def only_accounts(table: Any, account_ids: Sequence[str]) -> Any:
    """The rows of ``table`` (an Ibis table or a DataFrame, or None) of the given accounts.

    An Ibis table is filtered in its engine by a semi-join with the ids (a
    literal ``IN`` list of thousands of ids compiles slowly).
    """
    if table is None:
        return None
    if isinstance(table, pd.DataFrame):
        return table[table["account_id"].astype(str).isin(set(account_ids))]
    return rows_of_accounts(table, list(account_ids))


def rolling_cutoffs(
    as_of: Any, *, holdout_months: int = 12, n_origins: int = 3, step_months: int = 6
) -> list[pd.Timestamp]:
    """Cut-off dates whose holdouts end on or before ``as_of``, latest first.

    The latest cut-off is ``as_of - holdout_months``; each earlier one is
    ``step_months`` before the previous (calendar months, month-end aware).
    """
    if n_origins < 1 or step_months < 1 or holdout_months < 1:
        raise BacktestInputError("n_origins, step_months and holdout_months must be >= 1")
    day = pd.Timestamp(as_of).normalize()
    return [
        (day - pd.DateOffset(months=holdout_months + k * step_months)).normalize()
        for k in range(n_origins)
    ]


def backtest_ltv(
    transactions: ir.Table,
    accounts: ir.Table,
    *,
    cutoff: Any,
    holdout_months: int = 12,
    contracts: pd.DataFrame | None = None,
    surveys: pd.DataFrame | None = None,
    activities: pd.DataFrame | None = None,
    usage: pd.DataFrame | None = None,
    settings: LtvSettings | None = None,
    period: str = "week",
    fx_rates: ir.Table | None = None,
    n_bins: int = 10,
    data_end: Any = None,
    assumed_gross_margin: float | None = None,
    weights: pd.Series | None = None,
) -> BacktestResult:
    """Fit on data up to ``cutoff``, predict the value in the next ``holdout_months``.

    Parameters
    ----------
    transactions, accounts : ibis.Table
        The dataset tables (e.g. ``ctx.dataset.table("transactions")``);
        features are aggregated in their engine.
    cutoff : date-like
        Last day of the calibration period.
    holdout_months : int
        Calendar months after the cut-off that are predicted.
    contracts, surveys, activities, usage : DataFrame, optional
        Full tables; only rows up to the cut-off inform the models.
    settings : LtvSettings, optional
        Model choice, growth, interval and draws; the horizon and discount
        rate are replaced by the holdout length and 0 (the holdout GP is not
        discounted).
    period : {"week", "month"}
        Purchase period of the BG/NBD summary.
    fx_rates : ibis.Table, optional
    n_bins : int
        Calibration bins.
    data_end : date-like, optional
        Last day of data; the holdout must end on or before it.
    assumed_gross_margin : float, optional
        As for :func:`~kam_analysis.ltv.value.account_ltv` (without cost data).
    weights : pandas.Series, optional
        When the tables hold a sample of the book: each account's weight by
        account id (:func:`backtest_sample`); the metrics then estimate the
        whole book's. ``accounts`` of the result has a ``weight`` column (1
        without a sample).

    Returns
    -------
    BacktestResult

    Raises
    ------
    BacktestInputError
        A holdout reaching past ``data_end`` or no account valued.
    """
    settings = settings or LtvSettings()
    cut = pd.Timestamp(cutoff).normalize()
    end = (cut + pd.DateOffset(months=int(holdout_months))).normalize()
    if data_end is not None and end > pd.Timestamp(data_end).normalize():
        raise BacktestInputError(
            f"the holdout {cut.date()}..{end.date()} ends after the data ({pd.Timestamp(data_end).date()}); "
            "choose an earlier cut-off or a shorter holdout"
        )
    bt_settings = settings.model_copy(update={"discount_rate_annual": 0.0})
    features = build_account_features(transactions, accounts, cut, period=period, fx_rates=fx_rates)
    monthly = monthly_revenue(transactions, cut, months=36, fx_rates=fx_rates)
    models = fit_ltv_models(
        features,
        as_of=cut,
        contracts=contracts,
        surveys=surveys,
        activities=activities,
        usage=usage,
        monthly=monthly,
        settings=bt_settings,
        purchase_period=period,
    )
    sim = simulate_ltv(
        features,
        as_of=cut,
        contracts=contracts,
        monthly=monthly,
        settings=bt_settings,
        models=models,
        purchase_period=period,
        horizon_months=int(holdout_months),
        assumed_gross_margin=assumed_gross_margin,
    )
    ltv = sim.ltv
    basis = str(ltv["basis"].iloc[0]) if len(ltv) else "gross_profit"
    acc_actual, by_period = _holdout_actuals(transactions, cut, end, period, fx_rates)
    valued = (ltv["model"] != "none").to_numpy()
    res = ltv[valued][
        ["account_id", "model", "ltv", "ltv_lower", "ltv_upper", "expected_purchases"]
    ].rename(
        columns={
            "ltv": "predicted",
            "ltv_lower": "lower",
            "ltv_upper": "upper",
            "expected_purchases": "predicted_purchases",
        }
    )
    res = res.merge(acc_actual, on="account_id", how="left")
    res[["actual", "actual_revenue", "actual_purchases"]] = res[
        ["actual", "actual_revenue", "actual_purchases"]
    ].fillna(0.0)
    if basis == "revenue":
        res["actual"] = res["actual_revenue"]
    elif basis == "assumed_margin":
        res["actual"] = res["actual_revenue"] * float(assumed_gross_margin)
    draws = sim.draws[:, valued]
    keep = (np.isfinite(res["predicted"]) & np.isfinite(res["actual"])).to_numpy()
    res, draws = res[keep].reset_index(drop=True), draws[:, keep]
    if res.empty:
        raise BacktestInputError(f"no account could be valued at the cut-off {cut.date()}")
    res["weight"] = (
        1.0
        if weights is None
        else res["account_id"].astype(str).map(weights).fillna(1.0).to_numpy(dtype=float)
    )
    res = _score_intervals(res, draws, settings)
    metrics = _group_metrics(res, settings.interval_level)
    metrics.insert(0, "cutoff", cut)

    tracking, histogram = _purchase_diagnostics(models, features, by_period, cut, end, period)
    return BacktestResult(
        cutoff=cut,
        holdout_end=end,
        holdout_months=int(holdout_months),
        accounts=res,
        metrics=metrics,
        calibration=calibration_table(res["predicted"], res["actual"], n_bins),
        tracking=tracking,
        histogram=histogram,
        models=models,
        basis=basis,
        interval_level=settings.interval_level,
        shocks=sim.shocks,
    )


def _score_intervals(res: pd.DataFrame, draws: np.ndarray, settings: LtvSettings) -> pd.DataFrame:
    """Add ``pit``, ``inside`` and ``interval_score`` per account (NaN for churned accounts)."""
    alive = (res["model"] != "churned").to_numpy()
    y = res["actual"].to_numpy(dtype=float)
    out = res.copy()
    for col in ("pit", "inside", "interval_score"):
        out[col] = np.nan
    if alive.any():
        rng = np.random.default_rng(settings.seed)
        out.loc[alive, "pit"] = pit_values(draws[:, alive], y[alive], rng)
        out.loc[alive, "inside"] = interval_coverage(
            draws[:, alive], y[alive], settings.interval_level
        )
        out.loc[alive, "interval_score"] = interval_score(
            res.loc[alive, "lower"], res.loc[alive, "upper"], y[alive], 1 - settings.interval_level
        )
    return out


def _group_metrics(res: pd.DataFrame, level: float) -> pd.DataFrame:
    """:func:`error_metrics` of all accounts and :func:`interval_metrics` of the live ones, per group."""

    def row(name: str, g: pd.DataFrame) -> dict[str, Any]:
        return {
            "group": name,
            **error_metrics(g["predicted"], g["actual"], weight=g["weight"]),
            **interval_metrics(g[g["model"] != "churned"], level),
        }

    rows = [row("all", res)]
    rows += [row(str(name), g) for name, g in res.groupby("model", sort=True)]
    tx = res[res["model"].astype(str).str.startswith("transactional_")]
    if len(tx):
        rows.append(
            {
                "group": "transactional_purchases",
                **error_metrics(
                    tx["predicted_purchases"], tx["actual_purchases"], weight=tx["weight"]
                ),
            }
        )
    return pd.DataFrame(rows)


def _purchase_diagnostics(
    models: LtvModels,
    features: pd.DataFrame,
    by_period: pd.DataFrame,
    cut: pd.Timestamp,
    end: pd.Timestamp,
    period: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    empty_t = pd.DataFrame(columns=["period", "model", "actual"])
    empty_h = pd.DataFrame(columns=["purchases", "actual", "model", "difference", "pct_difference"])
    bg = models.purchase
    if bg is None:
        return empty_t, empty_h
    buyers = features[features["frequency"].notna() & features["T"].gt(0)]
    x, tx, big_t = (buyers[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    n_periods = period_of_day(end, period) - period_of_day(cut, period)
    grid = np.arange(1, n_periods + 1, dtype=float)
    chunks = [
        np.asarray(
            bg.conditional_expected_number_of_purchases_up_to_time(
                grid[:, None], x[i : i + 5000], tx[i : i + 5000], big_t[i : i + 5000]
            )
        ).sum(axis=1)
        for i in range(0, x.size, 5000)
    ]
    model_cum = np.sum(chunks, axis=0)
    ids = set(buyers["account_id"].astype(str))
    bp = by_period[by_period["account_id"].astype(str).isin(ids)]
    per = bp.groupby("rel")["n"].sum().reindex(range(1, n_periods + 1), fill_value=0)
    tracking = pd.DataFrame(
        {
            "period": grid.astype(int),
            "model": model_cum,
            "actual": per.cumsum().to_numpy(dtype=float),
        }
    )
    histogram = period_transactions_histogram(bg, x, big_t)
    return tracking, histogram


def rolling_backtest(
    transactions: ir.Table,
    accounts: ir.Table,
    *,
    cutoffs: Sequence[Any],
    holdout_months: int = 12,
    **kwargs: Any,
) -> tuple[pd.DataFrame, list[BacktestResult]]:
    """:func:`backtest_ltv` at several cut-offs (rolling origin).

    Parameters
    ----------
    transactions, accounts : ibis.Table
    cutoffs : sequence of date-like
        E.g. :func:`rolling_cutoffs`.
    holdout_months : int
    **kwargs
        Passed to :func:`backtest_ltv`.

    Returns
    -------
    (DataFrame, list of BacktestResult)
        The metrics of every cut-off stacked (``cutoff`` column first), and
        the individual results in the order of ``cutoffs``.
    """
    if not len(cutoffs):
        raise BacktestInputError("cutoffs is empty")
    results = [
        backtest_ltv(transactions, accounts, cutoff=c, holdout_months=holdout_months, **kwargs)
        for c in cutoffs
    ]
    return pd.concat([r.metrics for r in results], ignore_index=True), results


def coverage_table(results: Sequence[BacktestResult | None]) -> pd.DataFrame:
    """Interval calibration of several backtests, one row per model group of live accounts.

    Parameters
    ----------
    results : sequence of BacktestResult or None
        E.g. the 12- and 24-month backtests; None entries are skipped.

    Returns
    -------
    DataFrame
        ``holdout_months``, ``cutoff``, ``group`` (model), ``n_alive``,
        ``coverage``, ``below``, ``above``, ``interval_score_rel``; no
        ``all``, ``churned`` or purchase-count rows.
    """
    cols = ["group", "n_alive", "coverage", "below", "above", "interval_score_rel"]
    frames = []
    for r in results:
        if r is None:
            continue
        m = r.metrics
        m = m[m["n_alive"].fillna(0).gt(0) & ~m["group"].isin(["all", "transactional_purchases"])]
        frames.append(m[cols].assign(holdout_months=r.holdout_months, cutoff=r.cutoff))
    if not frames:
        return pd.DataFrame(columns=["holdout_months", "cutoff", *cols])
    out = pd.concat(frames, ignore_index=True)
    out["n_alive"] = out["n_alive"].astype("int64")
    return out[["holdout_months", "cutoff", *cols]]

"""Renewal forecast: expected renewed contract value by quarter, with an interval.

A live contract ending in the forecast window renews when its account has
not churned by the end date. With the churn hazard model, the probability is
``P(renew) = prod_{k <= m} (1 - h_k)`` along the account's hazard path
(:meth:`~kam_analysis.ltv.hazard.ChurnHazardModel.hazard_path`: tenure bands
advance, the renewal month carries its own hazard) for a contract ending
``m`` months (calendar, fractional: the last month counts in part) after the
as-of date. The expected renewed value of a quarter is
``sum_i P_i * annual_value_i`` over the contracts ending in it; its interval
comes from Monte Carlo: per draw, hazard-model coefficients from their
asymptotic normal (parameter uncertainty), then one Bernoulli renewal per
contract (outcome uncertainty).

Quarters are fiscal quarters (``fiscal_year_start_month``, April by
default); a fiscal year is named by the calendar year it starts in
(``FY2026`` = April 2026 - March 2027, the Japanese 年度 convention).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from kam_analysis.core.errors import InputError
from kam_analysis.core.schemas import Contracts

from .hazard import ChurnHazardModel

__all__ = [
    "RenewalInputError",
    "contracts_due",
    "fiscal_quarter",
    "renewal_forecast",
    "renewal_probabilities",
]

_DAYS_PER_MONTH = 365.2425 / 12


class RenewalInputError(InputError, ValueError):
    """The inputs of the renewal forecast cannot be used as given."""


def fiscal_quarter(dates: pd.Series, fiscal_year_start_month: int = 4) -> pd.DataFrame:
    """Fiscal quarter of each date.

    Parameters
    ----------
    dates : Series of datetime
    fiscal_year_start_month : int
        1-12 (4 = April).

    Returns
    -------
    DataFrame
        ``quarter`` (label ``"FY2026 Q1"``; the fiscal year is named by the
        calendar year it starts in) and ``quarter_start`` (first day), aligned
        with ``dates``.
    """
    if not 1 <= int(fiscal_year_start_month) <= 12:
        raise RenewalInputError(
            f"fiscal_year_start_month must be 1-12, got {fiscal_year_start_month!r}"
        )
    d = pd.to_datetime(dates)
    shift = (d.dt.month - int(fiscal_year_start_month)) % 12
    fy = d.dt.year - (d.dt.month < int(fiscal_year_start_month)).astype(int)
    fq = shift // 3 + 1
    start_month_idx = fy * 12 + (int(fiscal_year_start_month) - 1) + (fq - 1) * 3
    start = pd.to_datetime(
        {"year": start_month_idx // 12, "month": start_month_idx % 12 + 1, "day": 1}
    )
    return pd.DataFrame(
        {"quarter": "FY" + fy.astype(str) + " Q" + fq.astype(str), "quarter_start": start},
        index=dates.index,
    )


def contracts_due(
    contracts: pd.DataFrame,
    *,
    as_of: Any,
    horizon_months: int = 12,
    fiscal_year_start_month: int = 4,
) -> pd.DataFrame:
    """Live contracts whose term ends within the horizon after the as-of date.

    Parameters
    ----------
    contracts : DataFrame
        :class:`~kam_analysis.core.schemas.Contracts` rows (``contract_id``,
        ``account_id``, ``start_date``, ``end_date``, ``annual_value``,
        ``status``).
    as_of : date-like
    horizon_months : int
        Calendar months after ``as_of`` (12 = the next year).
    fiscal_year_start_month : int

    Returns
    -------
    DataFrame
        ``contract_id``, ``account_id``, ``end_date``, ``annual_value``,
        ``months_to_end`` (days from as_of to end_date / 30.436875, the mean
        calendar month), ``quarter``, ``quarter_start``; sorted by end date.
        Live = started on or before ``as_of``, ending after it, status not
        ``churned`` or ``expired`` (pilots and lapsed terms do not renew).

    Raises
    ------
    RenewalInputError
        Missing columns or a non-positive horizon.
    """
    need = [
        Contracts.contract_id,
        Contracts.account_id,
        Contracts.start_date,
        Contracts.end_date,
        Contracts.annual_value,
        Contracts.status,
    ]
    missing = [c for c in need if c not in contracts.columns]
    if missing:
        raise RenewalInputError(f"contracts lack column(s) {missing}")
    if int(horizon_months) < 1:
        raise RenewalInputError(f"horizon_months must be >= 1, got {horizon_months!r}")
    day = pd.Timestamp(as_of).normalize()
    until = day + pd.DateOffset(months=int(horizon_months))
    start = pd.to_datetime(contracts[Contracts.start_date])
    end = pd.to_datetime(contracts[Contracts.end_date])
    status = contracts[Contracts.status].astype(str)
    churn = (
        pd.to_datetime(contracts[Contracts.churn_date])
        if Contracts.churn_date in contracts.columns
        else pd.Series(pd.NaT, index=contracts.index)
    )
    already_churned = status.eq("churned") & churn.fillna(end).le(day)
    keep = (start <= day) & (end > day) & (end <= until) & ~status.eq("expired") & ~already_churned
    due = contracts.loc[keep, need[:2]].copy()
    due["end_date"] = end[keep]
    due["annual_value"] = contracts.loc[keep, Contracts.annual_value].astype(float)
    due["months_to_end"] = (end[keep] - day).dt.days / _DAYS_PER_MONTH
    due = pd.concat([due, fiscal_quarter(due["end_date"], fiscal_year_start_month)], axis=1)
    return due.sort_values(["end_date", "contract_id"], ignore_index=True)


def renewal_probabilities(
    due: pd.DataFrame,
    model: ChurnHazardModel,
    covariates: pd.DataFrame,
    *,
    draws: int = 0,
    seed: int | np.random.Generator = 0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """P(renewal) per due contract from the churn hazard model, and optional parameter draws.

    Parameters
    ----------
    due : DataFrame
        From :func:`contracts_due`.
    model : ChurnHazardModel
        Fitted.
    covariates : DataFrame
        ``account_id`` and the model's covariates (accounts missing from it,
        or with missing values, get the fitted sample means).
    draws : int
        Number of parameter draws (0: none).
    seed : int or Generator

    Returns
    -------
    (numpy.ndarray, numpy.ndarray or None)
        Point probabilities ``(n,)`` and draws ``(draws, n)``.
    """
    cov = covariates.drop_duplicates("account_id").set_index("account_id")
    cov = cov.reindex(due["account_id"].astype(str))
    cov = cov.reindex(columns=list(model.input_columns))
    m = np.maximum(due["months_to_end"].to_numpy(dtype=float), 0.0)
    log_surv = _log_survival_to(model, cov, m)
    p = np.exp(log_surv)
    p_draws = None
    if draws:
        h = model.predict_monthly_hazard(cov).to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = model.monthly_hazard_draws(cov, int(draws), seed) / h[None, :]
        p_draws = np.exp(np.nan_to_num(scale, nan=1.0, posinf=1.0) * log_surv[None, :])
    return p, p_draws


def _log_survival_to(model: ChurnHazardModel, cov: pd.DataFrame, months: np.ndarray) -> np.ndarray:
    """``log S(m)`` along each account's hazard path, ``m`` fractional (the last month in part)."""
    if not len(months):
        return np.zeros(0)
    horizon = max(1, int(np.ceil(months.max())))
    logs = np.log1p(-np.minimum(model.hazard_path(cov, horizon).to_numpy(), 1 - 1e-12))
    cum = np.concatenate([np.zeros((len(months), 1)), np.cumsum(logs, axis=1)], axis=1)
    full = np.floor(months).astype(np.int64)
    rows = np.arange(len(months))
    part = logs[rows, np.minimum(full, horizon - 1)] * (months - full)
    return cum[rows, full] + part


def renewal_forecast(
    due: pd.DataFrame,
    p_renewal: Any,
    *,
    p_draws: np.ndarray | None = None,
    draws: int = 2000,
    level: float = 0.8,
    seed: int | np.random.Generator = 0,
) -> pd.DataFrame:
    """Expected renewed value per quarter with a Monte Carlo interval.

    Parameters
    ----------
    due : DataFrame
        :func:`contracts_due` (``quarter``, ``quarter_start``, ``annual_value``).
    p_renewal : float or array-like
        Renewal probability per row of ``due`` (or one for all), in [0, 1].
    p_draws : ndarray, optional
        ``(draws, n)`` probability draws (parameter uncertainty, e.g. from
        :func:`renewal_probabilities`); their count replaces ``draws``.
    draws : int
        Monte Carlo draws when ``p_draws`` is not given.
    level : float
        Central coverage of the interval (0.8 = P10-P90).
    seed : int or Generator

    Returns
    -------
    DataFrame
        One row per quarter with due contracts, in time order: ``quarter``,
        ``quarter_start``, ``n_contracts``, ``contract_value`` (sum of annual
        values up for renewal), ``expected_renewals`` (sum of P),
        ``expected_renewed_value`` (sum of P x value), ``expected_renewal_rate``
        (value-weighted), ``lower``, ``upper`` (quantiles of the simulated
        renewed value).

    Raises
    ------
    RenewalInputError
        Probabilities outside [0, 1] or of the wrong length, bad level.
    """
    if not 0 < level < 1:
        raise RenewalInputError(f"level must be in (0, 1), got {level!r}")
    n = len(due)
    p = np.broadcast_to(np.asarray(p_renewal, dtype=float), (n,)).copy()
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise RenewalInputError("p_renewal must be probabilities in [0, 1]")
    cols = [
        "quarter",
        "quarter_start",
        "n_contracts",
        "contract_value",
        "expected_renewals",
        "expected_renewed_value",
        "expected_renewal_rate",
        "lower",
        "upper",
    ]
    if n == 0:
        return pd.DataFrame(columns=cols)
    rng = np.random.default_rng(seed)
    if p_draws is not None:
        p_draws = np.asarray(p_draws, dtype=float)
        if p_draws.ndim != 2 or p_draws.shape[1] != n:
            raise RenewalInputError(f"p_draws must have shape (draws, {n}), got {p_draws.shape}")
        probs = p_draws
    else:
        probs = np.broadcast_to(p, (int(draws), n))
    value = due["annual_value"].to_numpy(dtype=float)
    codes, labels = pd.factorize(due["quarter_start"], sort=True)
    renewed = (rng.random(probs.shape) < probs) * value[None, :]
    # sum per quarter for every draw: (draws, n) @ (n, quarters)
    onehot = np.zeros((n, len(labels)))
    onehot[np.arange(n), codes] = 1.0
    sims = renewed @ onehot
    tail = (1 - level) / 2
    lo, hi = np.quantile(sims, [tail, 1 - tail], axis=0)
    g = pd.DataFrame(
        {"q": codes, "value": value, "p": p, "pv": p * value, "quarter": due["quarter"].to_numpy()}
    ).groupby("q")
    out = pd.DataFrame(
        {
            "quarter": g["quarter"].first().to_numpy(),
            "quarter_start": pd.to_datetime(labels),
            "n_contracts": g.size().to_numpy().astype("int64"),
            "contract_value": g["value"].sum().to_numpy(),
            "expected_renewals": g["p"].sum().to_numpy(),
            "expected_renewed_value": g["pv"].sum().to_numpy(),
        }
    )
    out["expected_renewal_rate"] = out["expected_renewed_value"] / out["contract_value"].where(
        out["contract_value"] > 0
    )
    out["lower"] = lo
    out["upper"] = hi
    return out[cols]

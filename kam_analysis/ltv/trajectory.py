"""Revenue trajectory per account: log-linear growth with empirical-Bayes shrinkage.

For key accounts, value comes from expansion (cross-sell, growing wallets)
more than from purchase counts. This module estimates each account's annual
revenue growth from its quarterly revenue, vectorised over all accounts:

1. Monthly revenue is summed into quarters counted back from the last
   complete month before the as-of date (so a quarter is always 3 calendar
   months; the month-to-date month is left out).
2. A pooled seasonal profile (mean log deviation by quarter of the year,
   across accounts) is removed.
3. Per account, ordinary least squares of log quarterly revenue on time in
   years gives the log growth rate ``b_i`` and its standard error ``s_i``
   (closed-form sums, no per-account model objects).
4. The slopes are shrunk towards the portfolio mean ``mu`` with the
   between-account variance ``tau^2`` of DerSimonian & Laird (1986):
   ``b_i* = mu + w_i (b_i - mu)``, ``w_i = tau^2 / (tau^2 + s_i^2)``;
   ``mu`` is a statsmodels WLS fit with weights ``1 / (s_i^2 + tau^2)``.
   Accounts with short or noisy histories are pulled towards the mean
   (James-Stein / Efron-Morris shrinkage).

Quarters with zero revenue are left out of the fit (no log), so the slope
describes the trajectory while the account buys; churn is the retention
model's business.

References
----------
DerSimonian, R. & Laird, N. (1986). Meta-analysis in clinical trials.
*Controlled Clinical Trials* 7(3), 177-188.

Efron, B. & Morris, C. (1975). Data analysis using Stein's estimator and its
generalizations. *JASA* 70(350), 311-319.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from kam_analysis.core.errors import InputError

from ._base import NotFittedError

__all__ = ["RevenueTrajectory", "TrajectoryInputError", "quarterly_revenue"]


class TrajectoryInputError(InputError, ValueError):
    """The monthly revenue table cannot be used as given."""


def quarterly_revenue(
    monthly: pd.DataFrame,
    *,
    as_of: dt.date | str | pd.Timestamp,
    value: str = "revenue",
    max_quarters: int | None = None,
) -> pd.DataFrame:
    """Sum monthly values into complete 3-month quarters ending before the as-of month.

    Parameters
    ----------
    monthly : DataFrame
        ``account_id``, ``month`` (first day of the month) and ``value``
        (e.g. :attr:`kam_analysis.context.AnalysisContext.monthly`). Months
        without a row count as zero.
    as_of : date-like
        Analysis date. Its month is used only when ``as_of`` is its last
        day; otherwise the quarters end with the previous month.
    value : str
        Column to sum (``"revenue"`` or ``"gross_profit"``).
    max_quarters : int, optional
        Keep at most this many most recent quarters.

    Returns
    -------
    DataFrame
        ``account_id``, ``quarter`` (0 = most recent complete quarter, 1 =
        the one before, ...), ``quarter_end`` (first day of its last month),
        ``t_years`` (``-quarter / 4``: time relative to the latest quarter),
        ``quarter_of_year`` (``quarter % 4``) and ``value``. Every account of
        ``monthly`` has a row for every quarter from its first month with a
        row to the latest quarter, zeros included.

    Raises
    ------
    TrajectoryInputError
        Missing columns or no complete quarter.
    """
    need = ["account_id", "month", value]
    missing = [c for c in need if c not in monthly.columns]
    if missing:
        raise TrajectoryInputError(
            f"monthly lacks column(s) {missing}; it has {list(monthly.columns)}"
        )
    day = pd.Timestamp(as_of).normalize()
    last = day.year * 12 + day.month - 1
    if day.day != day.days_in_month:
        last -= 1
    m = pd.to_datetime(monthly["month"])
    midx = (m.dt.year * 12 + m.dt.month - 1).to_numpy(dtype=np.int64)
    keep = midx <= last
    q = (last - midx[keep]) // 3
    df = pd.DataFrame(
        {
            "account_id": monthly["account_id"].to_numpy()[keep],
            "quarter": q,
            "value": monthly[value].to_numpy(dtype=float)[keep],
        }
    )
    if max_quarters is not None:
        df = df[df["quarter"] < int(max_quarters)]
    # a quarter is only complete if all its months lie in the table's span
    first_month = midx.min() if midx.size else last
    oldest_complete = (last - first_month + 1) // 3 - 1
    df = df[df["quarter"] <= oldest_complete]
    if df.empty:
        raise TrajectoryInputError("monthly holds no complete quarter up to as_of")
    sums = df.groupby(["account_id", "quarter"], sort=False)["value"].sum()
    first_q = sums.reset_index().groupby("account_id")["quarter"].max()
    counts = first_q.to_numpy() + 1
    acc = np.repeat(first_q.index.to_numpy(), counts)
    starts = np.cumsum(counts) - counts
    quarter = (np.repeat(counts, counts) - 1) - (
        np.arange(counts.sum()) - np.repeat(starts, counts)
    )
    full = pd.DataFrame({"account_id": acc, "quarter": quarter.astype(np.int64)})
    full = full.merge(
        sums.rename("value").reset_index(), on=["account_id", "quarter"], how="left"
    ).fillna({"value": 0.0})
    end_month = last - 3 * full["quarter"].to_numpy()
    full["quarter_end"] = pd.to_datetime(
        {"year": end_month // 12, "month": end_month % 12 + 1, "day": 1}
    )
    full["t_years"] = -full["quarter"] / 4.0
    full["quarter_of_year"] = full["quarter"] % 4
    full = full.sort_values(["account_id", "quarter"], ascending=[True, False], ignore_index=True)
    return full[["account_id", "quarter", "quarter_end", "t_years", "quarter_of_year", "value"]]


class RevenueTrajectory:
    """Per-account log-linear revenue growth with shrinkage to the portfolio mean.

    Parameters
    ----------
    value : str
        Column of the monthly table to model (``"revenue"`` by default).
    max_quarters : int
        Most recent complete quarters used (default 12 = three years).
    min_quarters : int
        Accounts with fewer positive quarters get the pooled growth (weight 0).
    seasonal : bool
        Remove the pooled quarter-of-year profile before fitting.
    max_abs_log_growth : float
        Shrunk log growth rates are clipped to ``[-x, x]`` (default 0.7,
        about -50 % .. +100 % a year) so that no projection explodes.

    Attributes
    ----------
    accounts_ : DataFrame
        One row per account: ``account_id``, ``n_quarters`` (positive
        quarters used), ``log_growth`` (OLS slope per year), ``log_growth_se``,
        ``shrink_weight`` (``w_i`` in [0, 1]), ``log_growth_shrunk``,
        ``log_growth_shrunk_se``, ``growth_annual`` (``exp(shrunk) - 1``),
        ``latest_quarter_value`` (fitted level of the latest quarter,
        de-seasonalised, from the shrunk line) and ``annual_run_rate``
        (sum of the last four quarters), ``resid_sd`` (residual sd of log
        quarterly value around the line; the pooled median when not fitted).
    pooled_ : dict
        ``mu`` (mean log growth), ``mu_se``, ``tau2`` (between-account
        variance), ``n_accounts``, ``resid_sd`` (median residual sd).
    seasonal_profile_ : Series
        Log deviation by quarter of the year (index 0 = the latest quarter's
        position), zero when ``seasonal=False``.
    time_unit : str
        ``"year"``: growth rates are per year.

    References
    ----------
    DerSimonian, R. & Laird, N. (1986). Meta-analysis in clinical trials.
    *Controlled Clinical Trials* 7(3), 177-188.
    """

    time_unit = "year"

    def __init__(
        self,
        *,
        value: str = "revenue",
        max_quarters: int = 12,
        min_quarters: int = 4,
        seasonal: bool = True,
        max_abs_log_growth: float = 0.7,
    ) -> None:
        if int(min_quarters) < 3:
            raise ValueError(
                f"min_quarters must be >= 3 (a slope and its error), got {min_quarters}"
            )
        if int(max_quarters) < int(min_quarters):
            raise ValueError("max_quarters must be >= min_quarters")
        if max_abs_log_growth <= 0:
            raise ValueError("max_abs_log_growth must be > 0")
        self.value = value
        self.max_quarters = int(max_quarters)
        self.min_quarters = int(min_quarters)
        self.seasonal = bool(seasonal)
        self.max_abs_log_growth = float(max_abs_log_growth)

    def fit(self, monthly: pd.DataFrame, *, as_of: Any) -> RevenueTrajectory:
        """Fit on a monthly account table.

        Parameters
        ----------
        monthly : DataFrame
            ``account_id``, ``month``, and the ``value`` column.
        as_of : date-like
            Analysis date (see :func:`quarterly_revenue`).

        Returns
        -------
        RevenueTrajectory
            ``self``, fitted.

        Raises
        ------
        TrajectoryInputError
            Missing columns, no complete quarter, or fewer than three
            accounts with ``min_quarters`` positive quarters.
        """
        import statsmodels.api as sm

        q = quarterly_revenue(
            monthly, as_of=as_of, value=self.value, max_quarters=self.max_quarters
        )
        run_rate = q[q["quarter"] < 4].groupby("account_id")["value"].sum()
        pos = q[q["value"] > 0].copy()
        pos["y"] = np.log(pos["value"])
        if self.seasonal:
            dev = pos["y"] - pos.groupby("account_id")["y"].transform("mean")
            prof = dev.groupby(pos["quarter_of_year"]).mean()
            prof = (prof - prof.mean()).reindex(range(4), fill_value=0.0)
        else:
            prof = pd.Series(0.0, index=range(4))
        prof.index.name = "quarter_of_year"
        self.seasonal_profile_ = prof
        pos["y"] = pos["y"] - prof.to_numpy()[pos["quarter_of_year"].to_numpy()]

        g = pos.groupby("account_id", sort=True)
        n = g.size()
        t_mean = g["t_years"].transform("mean")
        y_mean = g["y"].transform("mean")
        dt_ = pos["t_years"] - t_mean
        dy = pos["y"] - y_mean
        sxx = (dt_ * dt_).groupby(pos["account_id"]).sum()
        sxy = (dt_ * dy).groupby(pos["account_id"]).sum()
        syy = (dy * dy).groupby(pos["account_id"]).sum()
        ok = (n >= self.min_quarters) & (sxx > 0)
        slope = (sxy / sxx.where(sxx > 0)).where(ok)
        rss = (syy - slope * sxy).clip(lower=0.0)
        s2 = rss / (n - 2).where(n > 2)
        se = np.sqrt(s2 / sxx.where(sxx > 0)).where(ok)
        # a perfect fit has se 0; floor it so weights stay finite
        se = se.clip(lower=1e-6)

        b, s = slope[ok].to_numpy(), se[ok].to_numpy()
        if b.size < 3:
            raise TrajectoryInputError(
                f"only {b.size} account(s) have {self.min_quarters} or more quarters with revenue; "
                "at least 3 are needed to estimate the portfolio growth"
            )
        w_fe = 1.0 / s**2
        mu_fe = np.sum(w_fe * b) / np.sum(w_fe)
        q_stat = np.sum(w_fe * (b - mu_fe) ** 2)
        c = np.sum(w_fe) - np.sum(w_fe**2) / np.sum(w_fe)
        tau2 = max(0.0, (q_stat - (b.size - 1)) / c) if c > 0 else 0.0
        wls = sm.WLS(b, np.ones((b.size, 1)), weights=1.0 / (s**2 + tau2)).fit()
        mu = float(wls.params[0])
        mu_se = float(np.sqrt(1.0 / np.sum(1.0 / (s**2 + tau2))))
        self.pooled_ = {"mu": mu, "mu_se": mu_se, "tau2": float(tau2), "n_accounts": int(b.size)}

        weight = (tau2 / (tau2 + se**2)).where(ok, 0.0)
        shrunk = mu + weight * (slope.fillna(mu) - mu)
        shrunk = shrunk.clip(-self.max_abs_log_growth, self.max_abs_log_growth)
        # posterior sd of the account's log growth, with mu estimated too
        shrunk_se = np.sqrt(
            (weight * se.fillna(0.0) ** 2 + (1 - weight) ** 2 * mu_se**2).where(ok, tau2 + mu_se**2)
        )
        first = pos.assign(_t=t_mean, _y=y_mean).groupby("account_id")[["_t", "_y"]].first()
        level = np.exp(first["_y"] - shrunk.reindex(first.index) * first["_t"])

        acc = pd.Index(sorted(q["account_id"].unique()), name="account_id")
        out = pd.DataFrame(index=acc)
        out["n_quarters"] = n.reindex(acc, fill_value=0).astype("int64")
        out["log_growth"] = slope.reindex(acc)
        out["log_growth_se"] = se.where(ok).reindex(acc)
        out["shrink_weight"] = weight.reindex(acc, fill_value=0.0)
        out["log_growth_shrunk"] = shrunk.reindex(acc, fill_value=mu).clip(
            -self.max_abs_log_growth, self.max_abs_log_growth
        )
        out["log_growth_shrunk_se"] = shrunk_se.reindex(
            acc, fill_value=float(np.sqrt(mu_se**2 + tau2))
        )
        out["growth_annual"] = np.expm1(out["log_growth_shrunk"])
        out["latest_quarter_value"] = level.reindex(acc)
        out["annual_run_rate"] = run_rate.reindex(acc, fill_value=0.0)
        resid_sd = np.sqrt(s2.where(ok))
        self.pooled_["resid_sd"] = float(np.nanmedian(resid_sd)) if resid_sd.notna().any() else 0.0
        out["resid_sd"] = resid_sd.reindex(acc).fillna(self.pooled_["resid_sd"])
        self.accounts_ = out.reset_index()
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "accounts_"):
            raise NotFittedError("RevenueTrajectory is not fitted: call .fit(...) first")

    def growth_for(self, account_ids: Any) -> pd.DataFrame:
        """Shrunk log growth and its standard error for given accounts.

        Accounts the model has not seen get the pooled mean with standard
        error ``sqrt(mu_se^2 + tau^2)`` (a new account from the population).

        Returns
        -------
        DataFrame
            Index ``account_id``; columns ``log_growth``, ``log_growth_se`` and
            ``resid_sd`` (the pooled median for unseen accounts).
        """
        self._check_fitted()
        idx = pd.Index(pd.Series(account_ids).astype(str), name="account_id")
        a = self.accounts_.set_index("account_id")
        mu, mu_se, tau2 = self.pooled_["mu"], self.pooled_["mu_se"], self.pooled_["tau2"]
        return pd.DataFrame(
            {
                "log_growth": a["log_growth_shrunk"].reindex(idx, fill_value=mu).to_numpy(),
                "log_growth_se": a["log_growth_shrunk_se"]
                .reindex(idx, fill_value=float(np.sqrt(mu_se**2 + tau2)))
                .to_numpy(),
                "resid_sd": a["resid_sd"]
                .reindex(idx, fill_value=self.pooled_["resid_sd"])
                .to_numpy(),
            },
            index=idx,
        )

    def forecast(self, horizon_quarters: int = 8) -> pd.DataFrame:
        """Projected de-seasonalised quarterly value along the shrunk trend.

        Parameters
        ----------
        horizon_quarters : int
            Quarters ahead (1 = the quarter after the latest complete one).

        Returns
        -------
        DataFrame
            ``account_id``, ``quarters_ahead`` (1..h), ``value`` =
            ``latest_quarter_value * exp(log_growth_shrunk * k / 4)``
            times the seasonal factor of that quarter.
        """
        self._check_fitted()
        h = int(horizon_quarters)
        if h < 1:
            raise ValueError(f"horizon_quarters must be >= 1, got {horizon_quarters!r}")
        a = self.accounts_
        k = np.arange(1, h + 1)
        season = np.exp(self.seasonal_profile_.to_numpy()[(-k) % 4])
        val = (
            a["latest_quarter_value"].to_numpy()[:, None]
            * np.exp(a["log_growth_shrunk"].to_numpy()[:, None] * k[None, :] / 4.0)
            * season[None, :]
        )
        return pd.DataFrame(
            {
                "account_id": np.repeat(a["account_id"].to_numpy(), h),
                "quarters_ahead": np.tile(k, len(a)),
                "value": val.ravel(),
            }
        )

    def summary(self) -> pd.DataFrame:
        """Pooled growth and heterogeneity: ``term``, ``estimate``, ``se``."""
        self._check_fitted()
        p = self.pooled_
        return pd.DataFrame(
            {
                "term": [
                    "mean_log_growth",
                    "mean_growth_annual",
                    "between_account_sd",
                    "n_accounts",
                ],
                "estimate": [
                    p["mu"],
                    float(np.expm1(p["mu"])),
                    float(np.sqrt(p["tau2"])),
                    p["n_accounts"],
                ],
                "se": [p["mu_se"], float(np.exp(p["mu"]) * p["mu_se"]), np.nan, np.nan],
            }
        )

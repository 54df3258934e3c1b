"""Persistent and transient revenue shocks: a local-level model of log quarterly revenue.

Revenue of a key account does not scatter independently around a trend line:
a won product line or a lost budget moves the level for good. The LTV
interval (:mod:`~kam_analysis.ltv.value`) therefore simulates each account's
de-seasonalised log quarterly revenue as a random walk with drift observed
with noise (the local-level model, Harvey 1989, ch. 2):

``y_t = mu_t + eps_t``, ``mu_t = mu_{t-1} + g / 4 + eta_t``, with
``eta_t ~ N(0, c_i sigma_eta^2)`` (persistent) and ``eps_t ~ N(0, c_i sigma_eps^2)``
(transient).

Estimation, from each account's own history (:func:`~kam_analysis.ltv.trajectory.quarterly_revenue`):

1. Log quarterly revenue, less the book's quarter-of-year profile; per
   account the latest run of consecutive quarters with revenue.
2. Its first differences ``d_t = g / 4 + eta_t + eps_t - eps_{t-1}``, less
   their mean (the account's drift), give two quadratic forms: the sum of
   squares ``Q0`` and the lag-1 cross-product ``Q1``. Their expectations are
   linear in ``(sigma_eta^2, sigma_eps^2)`` with known coefficients (traces
   of the demeaning and covariance matrices), so the book's two variances
   solve a 2x2 system of the summed moments (method of moments, unbiased for
   any series length). A bootstrap over accounts gives their uncertainty.
3. Each account's scale ``c_i``: ``s_i^2 = Q0_i / E[Q0_i | c = 1]`` with
   Satterthwaite degrees of freedom ``d_i``, shrunk towards the book with the
   empirical-Bayes scaled inverse-chi-square prior of Smyth (2004):
   ``c_i | s_i^2 ~ (d0 s0^2 + d_i s_i^2) / chi^2_{d0 + d_i}``, ``d0`` and ``s0^2``
   estimated from the spread of ``log s_i^2`` across accounts.

References
----------
Harvey, A. C. (1989). *Forecasting, Structural Time Series Models and the
Kalman Filter*. Cambridge University Press.

Smyth, G. K. (2004). Linear models and empirical Bayes methods for assessing
differential expression in microarray experiments. *Statistical Applications
in Genetics and Molecular Biology* 3(1), article 3 (section 6.2: estimating
``d0`` and ``s0^2``).

Satterthwaite, F. E. (1946). An approximate distribution of estimates of
variance components. *Biometrics Bulletin* 2(6), 110-114.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from ._base import NotFittedError
from .trajectory import TrajectoryInputError, quarterly_revenue

__all__ = [
    "RevenueShocks",
    "fit_prior_variance",
    "local_level_moments",
    "market_factor",
    "trigamma_inverse",
]

_MIN_DIFFS = 3  # differences per account for the lag-1 moment to say anything


def local_level_moments(n_diff: int) -> np.ndarray:
    """Coefficients of ``E[Q0]`` and ``E[Q1]`` in ``(sigma_eta^2, sigma_eps^2)``.

    For ``n_diff`` first differences of a local-level series, demeaned
    (``M = I - 11'/n``), ``Q0 = d'Md`` and ``Q1 = sum_t (Md)_t (Md)_{t+1}``.
    ``Cov(d) = sigma_eta^2 I + sigma_eps^2 K`` with ``K`` tridiagonal (2 on the
    diagonal, -1 beside it), so ``E[Q] = tr(M A M Cov(d))``.

    Parameters
    ----------
    n_diff : int
        Number of differences (>= 2).

    Returns
    -------
    ndarray, shape (2, 2)
        ``[[E Q0 / sigma_eta^2, E Q0 / sigma_eps^2], [E Q1 / sigma_eta^2, E Q1 / sigma_eps^2]]``.
        For ``n_diff = 2``: ``Q0 = (d_1 - d_2)^2 / 2`` and ``Q1 = -Q0 / 2``, so
        ``[[1, 3], [-1/2, -3/2]]``.
    """
    n = int(n_diff)
    if n < 2:
        raise ValueError(f"n_diff must be >= 2, got {n_diff!r}")
    m = np.eye(n) - 1.0 / n
    k = 2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
    lag = (np.eye(n, k=1) + np.eye(n, k=-1)) / 2
    mam = m @ lag @ m
    return np.array([[np.trace(m), np.trace(m @ k)], [np.trace(mam), np.trace(mam @ k)]])


def trigamma_inverse(x: Any) -> np.ndarray:
    """Solve ``trigamma(y) = x`` for ``y > 0`` (Newton iteration of Smyth 2004)."""
    x = np.asarray(x, dtype=float)
    y = 0.5 + 1.0 / x
    for _ in range(50):
        tri = special.polygamma(1, y)
        step = tri * (1 - tri / x) / special.polygamma(2, y)
        y = y + step
        if np.all(np.abs(step / y) < 1e-10):
            break
    return y


def fit_prior_variance(s2: Any, df: Any) -> tuple[float, float]:
    """Prior degrees of freedom and scale of sample variances (Smyth 2004, sec. 6.2).

    Model: ``s_i^2 | c_i ~ c_i chi^2_{d_i} / d_i`` and ``c_i ~ d0 s0^2 / chi^2_{d0}``.

    Parameters
    ----------
    s2 : array-like
        Sample variances (> 0).
    df : array-like
        Their degrees of freedom (> 0).

    Returns
    -------
    (float, float)
        ``d0`` (``inf`` when the variances vary no more than sampling
        explains: no heterogeneity) and ``s0^2``.
    """
    s2 = np.asarray(s2, dtype=float)
    d = np.asarray(df, dtype=float)
    e = np.log(s2) - special.digamma(d / 2) + np.log(d / 2)
    e_mean = float(e.mean())
    e_var = float(e.var(ddof=1)) - float(np.mean(special.polygamma(1, d / 2)))
    if e_var <= 0:
        return float("inf"), float(np.exp(e_mean))
    d0 = 2.0 * float(trigamma_inverse(e_var))
    return d0, float(np.exp(e_mean + special.digamma(d0 / 2) - np.log(d0 / 2)))


class RevenueShocks:
    """Local-level (random walk plus noise) model of each account's log quarterly revenue.

    Parameters
    ----------
    value : str
        Column of the monthly table (``"revenue"``; log gross profit is
        undefined for a month sold at a loss).
    max_quarters : int
        Most recent complete quarters used (12 = three years).
    bootstrap : int
        Bootstrap replicates over accounts for the book's two variances.
    seed : int
        Seed of that bootstrap.

    Attributes
    ----------
    params_ : dict
        ``sigma_eta`` (persistent shock sd per quarter), ``sigma_eps``
        (transient sd), ``d0`` and ``s0_sq`` (prior of the account scale),
        ``n_accounts`` (accounts with ``_MIN_DIFFS`` or more differences),
        ``n_quarters`` (quarters of those accounts), ``months`` (months
        spanned by the quarters used).
    book_draws_ : ndarray, shape (bootstrap, 2)
        Bootstrap draws of ``(sigma_eta^2, sigma_eps^2)``.
    accounts_ : DataFrame
        Index ``account_id``; ``n_diff``, ``s2`` (raw scale), ``df``,
        ``scale`` (shrunk ``c_i``), ``post_df`` (``d0 + d_i``).
    seasonal_profile_ : ndarray
        Log deviation by quarter of the year (as in the trajectory).
    market_ : dict
        The shared part of the persistent shocks (:func:`market_factor`):
        its annual volatility and its share ``weight`` of an account's
        persistent variance, with intervals.
    """

    def __init__(
        self, *, value: str = "revenue", max_quarters: int = 12, bootstrap: int = 200, seed: int = 0
    ) -> None:
        if int(max_quarters) < _MIN_DIFFS + 1:
            raise ValueError(f"max_quarters must be >= {_MIN_DIFFS + 1}")
        self.value = value
        self.max_quarters = int(max_quarters)
        self.bootstrap = int(bootstrap)
        self.seed = int(seed)

    def fit(self, monthly: pd.DataFrame, *, as_of: Any) -> RevenueShocks:
        """Estimate the book's shock variances and each account's scale.

        Parameters
        ----------
        monthly : DataFrame
            ``account_id``, ``month`` and the ``value`` column
            (:func:`~kam_analysis.data.features.monthly_revenue`).
        as_of : date-like
            Analysis date; complete quarters before it are used.

        Returns
        -------
        RevenueShocks
            ``self``, fitted.

        Raises
        ------
        TrajectoryInputError
            Missing columns, no complete quarter, or fewer than 3 accounts
            with ``_MIN_DIFFS`` + 1 consecutive quarters with revenue.
        """
        q = quarterly_revenue(
            monthly, as_of=as_of, value=self.value, max_quarters=self.max_quarters
        )
        runs = _latest_runs(q)
        self.seasonal_profile_ = _seasonal_profile(runs)
        runs["y"] = runs["y"] - self.seasonal_profile_[runs["quarter_of_year"].to_numpy()]
        diffs = _demeaned_differences(runs)
        stats = _difference_moments(diffs)
        use = stats[stats["n_diff"] >= _MIN_DIFFS]
        if len(use) < 3:
            raise TrajectoryInputError(
                f"only {len(use)} account(s) have {_MIN_DIFFS + 1} or more consecutive quarters "
                "with revenue; at least 3 are needed for the revenue shock model"
            )
        coef = {n: local_level_moments(n) for n in use["n_diff"].unique()}
        c = np.stack([coef[n] for n in use["n_diff"]])  # (accounts, 2, 2)
        qq = use[["q0", "q1"]].to_numpy()
        book = _solve_moments(c.sum(axis=0), qq.sum(axis=0))
        rng = np.random.default_rng(self.seed)
        idx = rng.integers(0, len(use), size=(self.bootstrap, len(use)))
        self.book_draws_ = np.array(
            [_solve_moments(c[i].sum(axis=0), qq[i].sum(axis=0)) for i in idx]
        )
        expect = c[:, 0, :] @ book  # E[Q0 | c = 1] per account
        var_q0 = _q0_variance(use["n_diff"].to_numpy(), book)
        s2 = np.clip(use["q0"].to_numpy() / np.where(expect > 0, expect, np.nan), 1e-6, None)
        df = np.where(var_q0 > 0, 2 * expect**2 / np.where(var_q0 > 0, var_q0, 1.0), 1.0)
        d0, s0_sq = fit_prior_variance(s2, df)
        if np.isinf(d0):  # no heterogeneity beyond sampling: every account has the book's scale
            shrunk = np.full_like(s2, s0_sq)
        else:
            shrunk = (d0 * s0_sq + df * s2) / (d0 + df)
        self.accounts_ = pd.DataFrame(
            {"n_diff": use["n_diff"].to_numpy(), "s2": s2, "df": df, "scale": shrunk},
            index=pd.Index(use.index.astype(str), name="account_id"),
        )
        self.accounts_["post_df"] = d0 + df
        self.params_ = {
            "sigma_eta": float(np.sqrt(book[0])),
            "sigma_eps": float(np.sqrt(book[1])),
            "d0": float(d0),
            "s0_sq": float(s0_sq),
            "n_accounts": int(len(use)),
            "n_quarters": int((use["n_diff"] + 1).sum()),
            "months": int(3 * (use["n_diff"].max() + 1)),
        }
        used = diffs[diffs["account_id"].astype(str).isin(self.accounts_.index)]
        self.market_ = market_factor(used, persistent_variance=float(book[0]))
        return self

    def annual_volatility(self, account_ids: Any) -> pd.Series:
        """Each account's persistent volatility of log revenue per year.

        ``sqrt(4 c_i sigma_eta^2)`` with the account's shrunk scale ``c_i``
        (the book's prior scale for an account without enough history): the
        standard deviation of the change in log revenue over a year that
        does not wash out, market part included.

        Parameters
        ----------
        account_ids : array-like

        Returns
        -------
        pandas.Series
            Indexed by ``account_id`` (str).
        """
        self._check_fitted()
        ids = pd.Index(pd.Series(account_ids).astype(str), name="account_id")
        scale = self.accounts_["scale"].reindex(ids).fillna(self.params_["s0_sq"])
        return np.sqrt(4.0 * scale * self.params_["sigma_eta"] ** 2).rename("volatility_annual")

    @property
    def book_volatility(self) -> float:
        """Annual persistent volatility of an account without history: the prior scale's."""
        self._check_fitted()
        return float(np.sqrt(4.0 * self.params_["s0_sq"]) * self.params_["sigma_eta"])

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError("RevenueShocks is not fitted: call .fit(...) first")

    def book_variance_draws(self, draws: int, rng: np.random.Generator) -> np.ndarray:
        """The book's persistent and transient variances, one bootstrap replicate per draw.

        Returns
        -------
        ndarray, shape (draws, 2)
            Replicates drawn with replacement from the bootstrap.
        """
        self._check_fitted()
        return self.book_draws_[rng.integers(0, len(self.book_draws_), size=draws)]

    def variance_draws(
        self,
        account_ids: Any,
        draws: int,
        rng: np.random.Generator,
        *,
        book: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draws of each account's persistent and transient shock variance per quarter.

        The book's variances come from the bootstrap, the account's scale from
        its posterior ``(d0 + d_i) c_i / chi^2_{d0 + d_i}`` (an account without
        enough history from the prior).

        Parameters
        ----------
        account_ids : sequence
        draws : int
        rng : Generator
        book : ndarray, shape (draws, 2), optional
            The book's variances per draw (:meth:`book_variance_draws`), to
            share them between calls for parts of a book; drawn when None.

        Returns
        -------
        (ndarray, ndarray)
            ``sigma_eta^2`` and ``sigma_eps^2``, each of shape ``(draws, n)``.
        """
        self._check_fitted()
        ids = pd.Index(pd.Series(account_ids).astype(str))
        p = self.params_
        a = self.accounts_.reindex(ids)
        scale = a["scale"].fillna(p["s0_sq"]).to_numpy()
        post_df = a["post_df"].fillna(p["d0"]).to_numpy()
        n = len(ids)
        finite = np.isfinite(post_df)
        c = np.broadcast_to(scale, (draws, n)).copy()
        if finite.any():
            nu = post_df[finite]
            c[:, finite] = nu * scale[finite] / rng.chisquare(nu, size=(draws, int(finite.sum())))
        if book is None:
            book = self.book_variance_draws(draws, rng)
        return c * book[:, :1], c * book[:, 1:]

    def summary(self) -> pd.DataFrame:
        """``term``, ``estimate``, ``lower``, ``upper`` (90 %) of the book's shocks.

        Bootstrap intervals for the two variances, chi-square ones for the
        market factor (:func:`market_factor`).
        """
        self._check_fitted()
        sd = np.sqrt(self.book_draws_)
        lo, hi = np.quantile(sd, [0.05, 0.95], axis=0)
        p = self.params_
        share = self.book_draws_[:, 0] / (self.book_draws_[:, 0] + 2 * self.book_draws_[:, 1])
        eta2, eps2 = p["sigma_eta"] ** 2, p["sigma_eps"] ** 2
        m = self.market_
        return pd.DataFrame(
            {
                "term": [
                    "sigma_persistent",
                    "sigma_transient",
                    "persistent_share",
                    "prior_df",
                    "market_volatility_annual",
                    "market_weight",
                ],
                "estimate": [
                    p["sigma_eta"],
                    p["sigma_eps"],
                    eta2 / (eta2 + 2 * eps2) if eta2 + eps2 > 0 else np.nan,
                    p["d0"],
                    m["volatility_annual"],
                    m["weight"],
                ],
                "lower": [
                    lo[0],
                    lo[1],
                    float(np.quantile(share, 0.05)),
                    np.nan,
                    m["lower"],
                    m["weight_lower"],
                ],
                "upper": [
                    hi[0],
                    hi[1],
                    float(np.quantile(share, 0.95)),
                    np.nan,
                    m["upper"],
                    m["weight_upper"],
                ],
            }
        )


def market_factor(
    diffs: pd.DataFrame, *, persistent_variance: float, level: float = 0.90
) -> dict[str, Any]:
    """The market factor: the part of the quarterly revenue shocks that all accounts share.

    Model: each account's persistent shock is ``eta_it = b f_t + u_it`` with
    a common quarterly factor ``f_t ~ N(0, 1)`` (the same loading ``b`` for
    every account) and idiosyncratic ``u_it``. The cross-sectional mean of
    the demeaned differences in quarter ``t``, ``a_t = mean_i dd_it``, is
    ``b f_t`` (less its mean over the window) plus the average of the
    idiosyncratic terms, whose variance is the quarter's cross-sectional
    variance over the number of accounts. So (a random-effects ANOVA, one
    way by quarter)

    ``b^2 = Var_t(a_t) - mean_t(s_t^2 / n_t)``,

    where ``Var_t`` is taken around the quarter-of-year means of ``a_t``
    (the seasonal profile has already absorbed the market's average in each
    quarter of the year), with ``T - 4`` degrees of freedom and a chi-square
    interval from them. The market's share of each account's persistent
    variance is ``w = b^2 / sigma_eta^2`` (the weight of the one-factor
    model in :func:`kam_analysis.scenarios.simulate_book`), clipped to
    [0, 1].

    Parameters
    ----------
    diffs : DataFrame
        ``account_id``, ``quarter``, ``quarter_of_year`` and ``dd``
        (demeaned first differences of de-seasonalised log quarterly
        revenue).
    persistent_variance : float
        The book's persistent shock variance per quarter (``sigma_eta^2``,
        market part included).
    level : float
        Coverage of the interval.

    Returns
    -------
    dict
        ``volatility_annual`` (``2 b``), ``lower`` and ``upper`` (its
        interval), ``weight`` (``w``), ``weight_lower``, ``weight_upper``,
        ``quarters`` (``T``), ``accounts`` (median accounts per quarter).
        NaN values when fewer than 8 quarters have 3 or more accounts.
    """
    g = diffs.groupby("quarter")
    n = g.size()
    keep = n >= 3
    mean, var, n = g["dd"].mean()[keep], g["dd"].var(ddof=1)[keep], n[keep]
    season = g["quarter_of_year"].first()[keep]
    t = len(mean)
    out: dict[str, Any] = {"quarters": int(t), "accounts": int(n.median()) if t else 0}
    nan = float("nan")
    if t < 8:
        return {
            **out,
            **dict.fromkeys(
                ("volatility_annual", "lower", "upper", "weight", "weight_lower", "weight_upper"),
                nan,
            ),
        }
    # the seasonal profile took out one mean per quarter of the year: T - 4 degrees of freedom
    resid = mean - mean.groupby(season).transform("mean")
    dof = t - 4
    between = float((resid**2).sum() / dof)
    noise = float((var / n).mean())
    lo_q, hi_q = stats.chi2.ppf([(1 + level) / 2, (1 - level) / 2], dof)
    b2 = max(between - noise, 0.0)
    b2_lo = max(dof * between / lo_q - noise, 0.0)
    b2_hi = max(dof * between / hi_q - noise, 0.0)
    pv = float(persistent_variance)

    def weight(x: float) -> float:
        return float(min(x / pv, 1.0)) if pv > 0 else nan

    return {
        **out,
        "volatility_annual": float(2 * np.sqrt(b2)),
        "lower": float(2 * np.sqrt(b2_lo)),
        "upper": float(2 * np.sqrt(b2_hi)),
        "weight": weight(b2),
        "weight_lower": weight(b2_lo),
        "weight_upper": weight(b2_hi),
    }


def _latest_runs(q: pd.DataFrame) -> pd.DataFrame:
    """Per account, the quarters of its latest run of consecutive quarters with revenue."""
    q = q.sort_values(["account_id", "quarter"])
    zero_before = (q["value"] <= 0).astype(int).groupby(q["account_id"]).cumsum()
    keep = (zero_before == 0) & (q["value"] > 0)  # quarter 0 backwards until the first zero
    out = q.loc[keep, ["account_id", "quarter", "quarter_of_year"]].copy()
    out["y"] = np.log(q.loc[keep, "value"].to_numpy())
    return out.reset_index(drop=True)


def _seasonal_profile(runs: pd.DataFrame) -> np.ndarray:
    """Log deviation of each quarter of the year, from the mean step into it.

    The mean change of log revenue into quarter-of-year ``q`` is
    ``s_q - s_{q-1}`` plus the book's drift; less the mean over the four
    quarters (the drift), the steps cumulate to the profile. Unlike
    deviations from each account's mean level, steps are not biased by
    growth within a run or by runs that do not cover whole years.
    """
    r = runs.sort_values(["account_id", "quarter"])  # quarter 0 is the latest
    step = r["y"] - r.groupby("account_id")["y"].shift(-1)  # into quarter k from k + 1
    ok = step.notna()
    mean = step[ok].groupby(r.loc[ok, "quarter_of_year"]).mean().reindex(range(4))
    if mean.isna().any():  # a quarter of the year never follows another: no profile
        return np.zeros(4)
    mean = mean.to_numpy() - mean.mean()
    prof = np.zeros(4)
    for q in range(3):  # step[q] = s[q] - s[q + 1]: quarter q + 1 comes before q
        prof[q + 1] = prof[q] - mean[q]
    return prof - prof.mean()


def _demeaned_differences(runs: pd.DataFrame) -> pd.DataFrame:
    """Per account and quarter: the first difference ``d`` less the account's mean (``dd``)."""
    r = runs.sort_values(["account_id", "quarter"], ascending=[True, False])
    d = r.groupby("account_id", sort=False)["y"].diff()
    r = r.assign(d=d).dropna(subset=["d"])
    r["dd"] = r["d"] - r.groupby("account_id")["d"].transform("mean")
    r["lag"] = r.groupby("account_id")["dd"].shift(1)
    return r


def _difference_moments(r: pd.DataFrame) -> pd.DataFrame:
    """Per account: ``n_diff``, ``q0`` and ``q1`` of the demeaned first differences."""
    g = r.groupby("account_id")
    return pd.DataFrame(
        {
            "n_diff": g.size(),
            "q0": (r["dd"] ** 2).groupby(r["account_id"]).sum(),
            "q1": (r["dd"] * r["lag"]).groupby(r["account_id"]).sum(),
        }
    )


def _solve_moments(coef: np.ndarray, moments: np.ndarray) -> np.ndarray:
    """``(sigma_eta^2, sigma_eps^2) >= 0`` from the summed moments; one set to 0 if negative."""
    try:
        sol = np.linalg.solve(coef, moments)
    except np.linalg.LinAlgError:
        sol = np.array([-1.0, -1.0])
    if sol[0] >= 0 and sol[1] >= 0:
        return sol
    only_eta = np.array([moments[0] / coef[0, 0], 0.0])
    only_eps = np.array([0.0, moments[0] / coef[0, 1]])
    # the boundary fit closer to the lag-1 moment
    err_eta = abs(coef[1] @ only_eta - moments[1])
    err_eps = abs(coef[1] @ only_eps - moments[1])
    return only_eta if err_eta <= err_eps else only_eps


def _q0_variance(n_diff: np.ndarray, book: np.ndarray) -> np.ndarray:
    """``Var(Q0) = 2 tr((M Sigma)^2)`` for a Gaussian series with the book's variances."""
    out = np.empty(n_diff.size)
    cache: dict[int, float] = {}
    for i, n in enumerate(n_diff):
        if n not in cache:
            m = np.eye(n) - 1.0 / n
            sigma = book[0] * np.eye(n) + book[1] * (
                2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
            )
            ms = m @ sigma
            cache[n] = 2.0 * float(np.trace(ms @ ms))
        out[i] = cache[n]
    return out

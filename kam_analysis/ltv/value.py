"""Account lifetime value: expected discounted value over a horizon, with an interval.

The value is gross profit when the data have costs, else revenue (or revenue
times an assumed gross margin); the ``basis`` column says which
(:func:`ltv_basis`).

:func:`account_ltv` values every account with the model its data supports
and says which one it used (``model`` column):

``contractual_hazard``
    An account with a live contract. Monthly retention from
    :class:`~kam_analysis.ltv.hazard.ChurnHazardModel` (NPS, executive
    contact, utilisation), times the account's monthly value, grown
    along its revenue trajectory (:class:`~kam_analysis.ltv.trajectory.RevenueTrajectory`).
``contractual_sbg``
    The same when the covariate tables are missing: retention from a
    :class:`~kam_analysis.ltv.ShiftedBetaGeometric` fitted on monthly
    signing cohorts, conditional on the account's tenure.
``transactional_bgnbd``
    An account without a live contract but with purchases: BG/NBD expected
    repeat purchases × Gamma-Gamma expected spend per purchase × the
    account's gross margin (1 on the revenue basis). The spend per purchase
    is stationary, as the Gamma-Gamma model assumes: the revenue trajectory
    is not applied here, because an account's revenue trend is mostly the
    change of its purchase rate, which the BG/NBD already forecasts (applying
    both counted it twice: +101 % a year on CDNOW accounts).
``transactional_pnbd``
    The same with the Pareto/NBD when the BG/NBD cannot be fitted
    (:func:`~kam_analysis.ltv.fitting.fit_purchase_model`).
``churned``
    Its contract ended with status ``churned`` on or before the as-of date: 0.
``none``
    No contract and no purchase, or no model for it: NaN.

Time units are explicit. The contractual path works per calendar month; the
transactional one in the unit of the features' purchase period (week by
default, 52.1775 weeks a year), evaluated on a monthly grid so that both
discount with the same per-month rate, converted from the annual rate by
:func:`~kam_analysis.ltv.per_period_discount_rate`. The value of month
``k`` (``k = 1..12 * horizon_years``) is received at the end of the month
and discounted by ``(1 + d_month) ** -k``; with no churn and constant
value the LTV is the ordinary annuity ``m (1 - (1 + d)^-H) / d``. The
contractual monthly value is ``gp_annual / 12 * exp(g (k + 6) / 12)`` with
``g`` the account's shrunk log growth per year (the trailing-12-month value
is centred six months before the as-of date), times the retention ``S(k)``.

Intervals (``LtvSettings.interval``):

``"predictive"`` (default)
    Quantiles of the account's simulated value: parameter draws (from the
    fitted models' asymptotic covariance, or from the parametric bootstrap
    when a repeat-purchase estimate is on its parameter boundary) *and* the
    account's own chance events (when it churns; for transactional accounts
    whether it is still alive, how many purchases it makes, what they are
    worth). A contractual account's revenue follows a random walk plus noise
    on log quarterly revenue (:class:`~kam_analysis.ltv.shocks.RevenueShocks`,
    estimated from the contractual accounts' own histories and shrunk toward
    the book; its variances are drawn too), so a shock persists into later
    years instead of averaging out. Without the monthly table, the noise is
    independent from year to year.
``"parameter"``
    Quantiles of the expected value under parameter draws only (how well
    the models are pinned down; narrow for a large book).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kam_analysis.core.schemas import Contracts

from ._base import PERIODS_PER_YEAR, per_period_discount_rate
from .beta_geo import BetaGeo
from .fitting import LtvModels, LtvNote, fit_ltv_models, retention_cohorts
from .settings import MONTHS_PER_YEAR, LtvInputError, LtvSettings, check_ltv_features
from .shocks import RevenueShocks
from .trajectory import TrajectoryInputError

__all__ = [
    "LTV_BASES",
    "LTV_COLUMNS",
    "LtvInputError",
    "LtvModels",
    "LtvNote",
    "LtvSettings",
    "LtvSimulation",
    "RevenueShocks",
    "account_ltv",
    "annuity_value",
    "expected_ltv_total",
    "fit_ltv_models",
    "ltv_basis",
    "retention_cohorts",
    "simulate_ltv",
]

LTV_COLUMNS: tuple[str, ...] = (
    "account_id",
    "model",
    "ltv",
    "ltv_lower",
    "ltv_upper",
    "gp_annual",
    "growth_annual",
    "monthly_churn",
    "churn_risk_12m",
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "margin",
    "basis",
)
"""Columns of :func:`account_ltv`, in order."""

LTV_BASES: tuple[str, ...] = ("gross_profit", "assumed_margin", "revenue")
"""What an LTV is measured in (see :func:`ltv_basis`)."""


def ltv_basis(
    features: pd.DataFrame,
    *,
    assumed_gross_margin: float | None = None,
    portfolio_margin: float = float("nan"),
) -> tuple[str, float | None]:
    """What the LTV measures: gross profit, revenue x an assumed margin, or revenue.

    Parameters
    ----------
    features : DataFrame
        ``gross_profit_12m`` (NaN everywhere when the data have no cost) and,
        when present, ``gross_profit_prev_12m`` and ``gross_profit_assumed``
        (True where the features already computed gross profit as revenue x
        an assumed margin).
    assumed_gross_margin : float, optional
        Gross margin to assume when there is no cost data (``[data]
        assumed_gross_margin``), a fraction in (0, 1].
    portfolio_margin : float
        The book's gross margin (:func:`~kam_analysis.ltv.fitting.portfolio_margin`).

    Returns
    -------
    (str, float or None)
        ``("gross_profit", None)`` when some account has a gross profit from
        costs and the book's margin is known (accounts without their own
        margin get the book's); ``("assumed_margin", m)`` without cost data
        when a margin ``m`` is assumed (here, or already in the features);
        ``("revenue", None)`` otherwise (the value is revenue, not profit).

    Raises
    ------
    LtvInputError
        For an assumed margin outside (0, 1].
    """
    if assumed_gross_margin is not None:
        m = float(assumed_gross_margin)
        if not (np.isfinite(m) and 0 < m <= 1):
            raise LtvInputError(
                f"assumed_gross_margin must be a fraction in (0, 1], got {assumed_gross_margin!r}"
            )
    if "gross_profit_assumed" in features.columns and (
        features["gross_profit_assumed"].fillna(False).astype(bool).any()
    ):
        m = assumed_gross_margin if assumed_gross_margin is not None else portfolio_margin
        if m is not None and np.isfinite(m) and 0 < m <= 1:
            return "assumed_margin", float(m)
    cols = [c for c in ("gross_profit_12m", "gross_profit_prev_12m") if c in features.columns]
    has_cost = any(pd.to_numeric(features[c], errors="coerce").notna().any() for c in cols)
    if "gross_profit_assumed" in features.columns:
        has_cost = (
            has_cost and not features["gross_profit_assumed"].fillna(False).astype(bool).any()
        )
    if has_cost and np.isfinite(portfolio_margin):
        return "gross_profit", None
    if assumed_gross_margin is not None:
        return "assumed_margin", float(assumed_gross_margin)
    return "revenue", None


# --------------------------------------------------------------------------- known answers


def annuity_value(monthly_amount: float, months: int, monthly_rate: float) -> float:
    """Present value of ``monthly_amount`` paid at the end of each of ``months`` months.

    ``m (1 - (1 + d)^-n) / d`` (``m n`` when ``d = 0``): the LTV of an account
    that never churns and earns a constant monthly gross profit.
    """
    if monthly_rate < 0 or months < 0:
        raise ValueError("months and monthly_rate must be >= 0")
    if monthly_rate == 0:
        return float(monthly_amount * months)
    return float(monthly_amount * (1 - (1 + monthly_rate) ** -months) / monthly_rate)


def _geometric_pv(m0: np.ndarray, q: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``m0 * sum_{k=1}^{n} q^k`` elementwise (q may equal 1)."""
    q = np.asarray(q, dtype=float)
    n = np.asarray(n, dtype=float)
    near1 = np.abs(q - 1.0) < 1e-12
    qs = np.where(near1, 0.5, q)
    with np.errstate(over="ignore", invalid="ignore"):
        s = np.where(near1, n, qs * (1.0 - qs**n) / (1.0 - qs))
    return m0 * s


# --------------------------------------------------------------------------- valuation


def _contract_status(contracts: pd.DataFrame | None, day: pd.Timestamp) -> pd.DataFrame:
    """Per account: has_contract, churned (on or before day), live (a contract running)."""
    if contracts is None or contracts.empty:
        return pd.DataFrame(columns=["has_contract", "churned", "live", "contract_value"])
    c = contracts[pd.to_datetime(contracts[Contracts.start_date]) <= day]
    end = pd.to_datetime(c[Contracts.end_date])
    churn = pd.to_datetime(c[Contracts.churn_date]) if Contracts.churn_date in c.columns else end
    status = c[Contracts.status].astype(str)
    churned_row = status.eq("churned") & churn.fillna(end).le(day)
    live_row = ~churned_row & (end.isna() | end.ge(day)) & ~status.eq("expired")
    key = c[Contracts.account_id].astype(str)
    g = pd.DataFrame(
        {
            "churned": churned_row,
            "live": live_row,
            "value": c[Contracts.annual_value].astype(float).where(live_row, 0.0),
        }
    ).groupby(key)
    out = pd.DataFrame(
        {
            "has_contract": True,
            "churned": g["churned"].any(),
            "live": g["live"].any(),
            "contract_value": g["value"].sum(),
        }
    )
    out.index.name = "account_id"
    return out


_SIM_BLOCK = 4096
"""Accounts simulated together: a draws x accounts array holds this many accounts at most."""


def _account_blocks(n: int, rng: np.random.Generator) -> list[tuple[slice, np.random.Generator]]:
    """Consecutive blocks of ``n`` accounts, each with a random stream spawned from ``rng``.

    The block size is fixed (:data:`_SIM_BLOCK`), so the same book gets the
    same draws whatever the machine's memory.
    """
    starts = range(0, n, _SIM_BLOCK)
    streams = rng.spawn(len(starts))
    return [(slice(s, min(s + _SIM_BLOCK, n)), r) for s, r in zip(starts, streams, strict=True)]


def _simulate_in_blocks(
    simulate: Callable[[slice, np.random.Generator], np.ndarray],
    n: int,
    settings: LtvSettings,
    rng: np.random.Generator,
    keep_draws: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Interval bounds of ``n`` accounts from ``simulate(block, rng)``, a block at a time.

    Returns the lower and upper quantiles (``settings.quantiles``) and, with
    ``keep_draws``, the simulated values (``settings.draws`` x ``n``; else None).
    """
    lo, hi = np.empty(n), np.empty(n)
    kept = np.empty((settings.draws, n)) if keep_draws else None
    for sl, block_rng in _account_blocks(n, rng):
        sims = simulate(sl, block_rng)
        lo[sl], hi[sl] = np.quantile(sims, settings.quantiles, axis=0)
        if kept is not None:
            kept[:, sl] = sims
    return lo, hi, kept


@dataclass(frozen=True)
class _ContractDraws:
    """The inputs of contractual accounts' simulated values, simulated a block at a time.

    The per-account arrays cover every contractual account; the parameter
    draws (hazard coefficients ``params``, or the sBG's ``a_d``, ``b_d``, and
    the shock book's variances ``book``) are drawn once and shared by every
    block, so that parameter uncertainty stays common to the book.
    """

    m0: np.ndarray
    g: np.ndarray
    g_se: np.ndarray
    resid_sd: np.ndarray
    ids: np.ndarray
    v: float
    horizon: int
    draws: int
    interval: str
    hazard: Any = None
    cov: pd.DataFrame | None = None
    h: np.ndarray | None = None
    cum_hazard: np.ndarray | None = None
    params: np.ndarray | None = None
    a_d: np.ndarray | None = None
    b_d: np.ndarray | None = None
    tenure: np.ndarray | None = None
    shocks: RevenueShocks | None = None
    book: np.ndarray | None = None

    def simulate(self, sl: slice, rng: np.random.Generator) -> np.ndarray:
        """Simulated discounted values of the accounts ``sl``, shape ``(draws, accounts)``."""
        m0 = self.m0[sl]
        g_draws = self.g[sl][None, :] + self.g_se[sl][None, :] * rng.standard_normal(
            (self.draws, m0.size)
        )
        if self.hazard is not None:
            # parameter uncertainty as a factor on each account's hazard, from the next month's
            with np.errstate(divide="ignore", invalid="ignore"):
                hazards = self.hazard.monthly_hazard_draws(
                    self.cov.iloc[sl], self.draws, params=self.params
                )
                scale = np.nan_to_num(hazards / self.h[sl][None, :], nan=1.0, posinf=1.0)
            del hazards
            if self.interval == "parameter":
                return _path_expected_values(m0, g_draws, self.v, self.cum_hazard[sl], scale)
            months = _path_survival_months(self.cum_hazard[sl], scale, rng)
            del scale
        elif self.interval == "parameter":
            return _sbg_expected_values(
                m0, g_draws, self.v, self.a_d, self.b_d, self.tenure[sl], self.horizon
            )
        else:  # each account's churn rate per draw: its posterior Beta(a, b + tenure)
            theta = rng.beta(self.a_d, self.b_d + self.tenure[sl][None, :])
            months = _geometric_survival_months(theta, self.horizon, rng)
            del theta
        if self.shocks is not None:
            eta2, eps2 = self.shocks.variance_draws(self.ids[sl], self.draws, rng, book=self.book)
            return _shock_path_values(m0, g_draws, self.v, months, eta2, eps2, self.horizon, rng)
        sims = _geometric_pv(m0[None, :], np.exp(g_draws / 12) * self.v, months)
        return sims * _iid_level_noise(self.resid_sd[sl], self.horizon, rng, self.draws)


def _contractual_values(
    acc: pd.DataFrame,
    models: LtvModels,
    *,
    horizon: int,
    d_month: float,
    settings: LtvSettings,
    rng: np.random.Generator,
    shocks: RevenueShocks | None = None,
    keep_draws: bool = True,
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Point value, interval and (``keep_draws``) simulated values of contractual accounts.

    The point value is a closed-form geometric sum. The predictive draws
    follow each account's revenue path with persistent and transient shocks
    when ``shocks`` is given (:func:`_shock_path_values`), else with
    independent level noise (:func:`_iid_level_noise`). They are simulated
    a block of accounts at a time (:func:`_account_blocks`), so that memory
    stays at ``draws`` x :data:`_SIM_BLOCK` per array whatever the book's size.
    """
    n = len(acc)
    g = acc["log_growth"].to_numpy()
    # the trailing-12-month profit is centred 6 months before the as-of date
    m0 = acc["gp_annual"].to_numpy() / MONTHS_PER_YEAR * np.exp(g / 2)
    v = 1.0 / (1.0 + d_month)
    draws = settings.draws
    k = np.arange(1, horizon + 1)
    growth_disc = np.exp(np.outer(g / 12, k)) * v ** k[None, :]
    common = dict(
        m0=m0,
        g=g,
        g_se=acc["log_growth_se"].to_numpy(),
        resid_sd=acc["resid_sd"].to_numpy(),
        ids=acc["account_id"].to_numpy(),
        v=v,
        horizon=horizon,
        draws=draws,
        interval=settings.interval,
    )
    path = None
    if models.hazard is not None:
        cov = models.covariates.set_index("account_id").reindex(acc["account_id"])
        # the hazard along the horizon: tenure bands advance, renewal months recur
        path = models.hazard.hazard_path(cov, max(horizon, MONTHS_PER_YEAR)).to_numpy()
        h = path[:, 0]
        model = "contractual_hazard"
        cum_hazard = -np.cumsum(np.log1p(-np.clip(path[:, :horizon], 0.0, 1 - 1e-12)), axis=1)
        point = m0 * (growth_disc * np.exp(-cum_hazard)).sum(axis=1)
        params = models.hazard.sample_params(draws, rng)
        survival = dict(hazard=models.hazard, cov=cov, h=h, cum_hazard=cum_hazard, params=params)
    else:
        sbg = models.sbg
        a, b = sbg.params_["alpha"], sbg.params_["beta"]
        # tenure in months since the customer started (true age, for conditional retention)
        tenure = np.floor(np.nan_to_num(acc["tenure_months"].to_numpy(), nan=0.0))
        point = m0 * (growth_disc * _sbg_conditional_survival(a, b, tenure, k)).sum(axis=1)
        h = 1 - (b + tenure) / (a + b + tenure)  # next-month churn probability
        model = "contractual_sbg"
        # parameter draws on the log scale
        cov_log = sbg.variance_matrix_.to_numpy() / np.outer([a, b], [a, b])
        log_ab = rng.multivariate_normal(np.log([a, b]), cov_log, size=draws)
        survival = dict(a_d=np.exp(log_ab[:, :1]), b_d=np.exp(log_ab[:, 1:]), tenure=tenure)
    if shocks is not None and settings.interval == "predictive":
        survival.update(shocks=shocks, book=shocks.book_variance_draws(draws, rng))
    simulation = _ContractDraws(**common, **survival)
    lo, hi, kept = _simulate_in_blocks(simulation.simulate, n, settings, rng, keep_draws)
    frame = pd.DataFrame(
        {
            "model": model,
            "ltv": point,
            "ltv_lower": lo,
            "ltv_upper": hi,
            "monthly_churn": h,
            "churn_risk_12m": (
                1 - np.prod(1 - path[:, :MONTHS_PER_YEAR], axis=1)
                if path is not None
                else 1 - (1 - h) ** 12
            ),
            "p_alive": 1.0,
        },
        index=acc.index,
    )
    return frame, kept


def _geometric_survival_months(
    theta: np.ndarray, horizon: int, rng: np.random.Generator
) -> np.ndarray:
    """Months survived (0..horizon) with a constant monthly churn rate ``theta`` per draw."""
    u = rng.random(theta.shape)
    with np.errstate(divide="ignore"):
        survived = np.floor(np.log(u) / np.log1p(-np.clip(theta, 1e-12, 1 - 1e-12)))
    return np.minimum(survived, horizon).astype(np.int64)


def _sbg_expected_values(
    m0: np.ndarray,
    g_draws: np.ndarray,
    v: float,
    a_d: np.ndarray,
    b_d: np.ndarray,
    tenure: np.ndarray,
    horizon: int,
) -> np.ndarray:
    """Expected discounted value per sBG parameter draw (chunks of draws).

    The expectation over each account's churn rate ``theta ~ Beta(a, b + t)``
    is the sBG's conditional survival
    ``S(t + k) / S(t) = prod_{j<k} (b + t + j) / (a + b + t + j)``.
    """
    draws, n = g_draws.shape
    k = np.arange(1, horizon + 1, dtype=float)
    t = tenure[None, :, None]
    sims = np.empty((draws, n))
    for lo in range(0, draws, 25):  # chunks of 25 draws x accounts x months
        sl = slice(lo, min(lo + 25, draws))
        a_c, b_c = a_d[sl, :, None], b_d[sl, :, None]
        cond = np.cumprod((b_c + t + k - 1) / (a_c + b_c + t + k - 1), axis=2)
        gd = np.exp(g_draws[sl, :, None] / 12 * k) * v**k
        sims[sl] = m0[None, :] * (gd * cond).sum(axis=2)
    return sims


def _path_survival_months(
    cum_hazard: np.ndarray, scale: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Months each account survives in each draw, along its hazard path.

    With cumulative hazard ``L_k = -sum_{j <= k} log(1 - h_j)`` (so that the
    survival is ``S_k = exp(-L_k)``) and an ``Exp(1)`` draw ``E``, the account
    survives the months with ``s L_k <= E``: ``P(months >= k) = S_k ** s``,
    ``s`` the draw's factor on the account's hazard (parameter uncertainty).
    Vectorised with one ``searchsorted`` on the accounts' paths laid end to end.

    Parameters
    ----------
    cum_hazard : ndarray, shape (n, horizon)
    scale : ndarray, shape (draws, n)

    Returns
    -------
    ndarray of int64, shape (draws, n)
        Months survived, 0..horizon.
    """
    n, horizon = cum_hazard.shape
    e = rng.exponential(size=scale.shape) / np.maximum(scale, 1e-12)
    span = float(cum_hazard[:, -1].max()) + 1.0 if n else 1.0
    offsets = np.arange(n) * span
    flat = (cum_hazard + offsets[:, None]).ravel()
    query = np.minimum(e, cum_hazard[None, :, -1]) + offsets[None, :]
    found = np.searchsorted(flat, query.ravel(), side="right").reshape(scale.shape)
    return (found - np.arange(n)[None, :] * horizon).astype(np.int64)


def _path_expected_values(
    m0: np.ndarray, g_draws: np.ndarray, v: float, cum_hazard: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """Expected discounted value per parameter draw along the hazard path (chunks of draws)."""
    draws, n = g_draws.shape
    k = np.arange(1, cum_hazard.shape[1] + 1, dtype=float)
    sims = np.empty((draws, n))
    for lo in range(0, draws, 25):
        sl = slice(lo, min(lo + 25, draws))
        surv = np.exp(-scale[sl, :, None] * cum_hazard[None, :, :])
        gd = np.exp(g_draws[sl, :, None] / 12 * k) * v**k
        sims[sl] = m0[None, :] * (gd * surv).sum(axis=2)
    return sims


def _iid_level_noise(
    resid_sd: np.ndarray, horizon: int, rng: np.random.Generator, draws: int
) -> np.ndarray:
    """Mean-one level noise without a shock model: independent years (the fallback).

    A quarterly log residual sd ``sigma`` makes a year's sum vary by about
    ``sigma / 2``; the base run-rate carries it once, future years average it out.
    """
    sigma = resid_sd / 2.0 * np.sqrt(1.0 + 1.0 / max(horizon / MONTHS_PER_YEAR, 1.0))
    return np.exp(sigma[None, :] * rng.standard_normal((draws, resid_sd.size)) - sigma**2 / 2)


def _shock_path_values(
    m0: np.ndarray,
    g_draws: np.ndarray,
    v: float,
    months: np.ndarray,
    eta2: np.ndarray,
    eps2: np.ndarray,
    horizon: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Discounted value of simulated revenue paths with persistent and transient shocks.

    Month ``k`` of draw ``j`` earns ``m0 exp(g_j k / 12) exp(L_q)`` while the
    account lives (``k <= months``), ``q`` the quarter of month ``k``. The log
    multiplier ``L_q = e0 + sum_{l <= q} eta_l + eps_q`` (less half its
    variance, so that every month's mean is the point path) has:

    * ``e0 ~ N(0, eps2 / 4 + 14 / 16 eta2)``: the error of the starting level,
      a trailing four-quarter mean, against the current level of a local-level
      series (the transient shocks average over 4 quarters; the persistent
      ones after quarter ``T - l`` are missed by the ``3 - l`` older quarters:
      ``(3/4)^2 + (2/4)^2 + (1/4)^2 = 14/16``);
    * ``eta_l ~ N(0, eta2)`` the persistent and ``eps_q ~ N(0, eps2)`` the
      transient shock of quarter ``q`` (variances per quarter, per draw and account).

    Parameters
    ----------
    m0 : ndarray, shape (n,)
        Monthly value at the start.
    g_draws, eta2, eps2 : ndarray, shape (draws, n)
    v : float
        Monthly discount factor.
    months : ndarray of int, shape (draws, n)
        Months alive in the horizon.
    horizon : int
    rng : Generator

    Returns
    -------
    ndarray, shape (draws, n)
    """
    draws, n = g_draws.shape
    n_q = -(-horizon // 3)
    v0 = eps2 / 4 + 14 / 16 * eta2
    out = np.empty((draws, n))
    step = max(1, 2_000_000 // max(n * horizon, 1))  # draws per chunk (fixes the random stream)
    for lo in range(0, draws, step):
        sl = slice(lo, min(lo + step, draws))
        c = sl.stop - sl.start
        e0 = np.sqrt(v0[sl]) * rng.standard_normal((c, n))
        walk = np.cumsum(np.sqrt(eta2[sl])[:, :, None] * rng.standard_normal((c, n, n_q)), axis=2)
        eps = np.sqrt(eps2[sl])[:, :, None] * rng.standard_normal((c, n, n_q))
        var_q = (v0[sl] + eps2[sl])[:, :, None] + eta2[sl][:, :, None] * np.arange(1, n_q + 1)
        log_mult = e0[:, :, None] + walk + eps - var_q / 2  # (c, n, quarters)
        out[sl] = m0[None, :] * _quarterly_path_sums(g_draws[sl], v, log_mult, months[sl])
    return out


def _quarterly_path_sums(
    g: np.ndarray, v: float, log_mult: np.ndarray, months: np.ndarray
) -> np.ndarray:
    """``sum_{k <= months} r^k exp(L_q(k))`` with ``r = exp(g / 12) v``, a quarter at a time.

    The multiplier is constant within a quarter, so month ``k = 3q + o`` adds
    ``r^(3q+1) exp(L_q) r^(o-1)``: one exponential per quarter instead of one
    per month, and the months of the quarter the account leaves in are summed
    from the quarter's first month.

    Parameters
    ----------
    g : ndarray, shape (c, n)
        Annual log growth per draw and account.
    v : float
        Monthly discount factor.
    log_mult : ndarray, shape (c, n, quarters)
    months : ndarray of int, shape (c, n)
        Months summed, 0..horizon (at most 3 x quarters).

    Returns
    -------
    ndarray, shape (c, n)
    """
    n_q = log_mult.shape[2]
    log_r = g / 12 + np.log(v)
    r = np.exp(log_r)
    first = np.exp(log_r[:, :, None] * (3 * np.arange(n_q) + 1) + log_mult)  # month 3q+1
    whole = first * (1 + r + r * r)[:, :, None]  # the quarter's three months
    before = np.concatenate([np.zeros(whole.shape[:2] + (1,)), np.cumsum(whole, axis=2)], axis=2)
    m = np.asarray(months, dtype=np.int64)
    q = np.clip((m - 1) // 3, 0, n_q - 1)  # the quarter of the last month summed
    o = m - 3 * q  # months summed in it: 1..3 (0 when m = 0)
    within = np.where(o >= 1, 1.0, 0.0) + np.where(o >= 2, r, 0.0) + np.where(o >= 3, r * r, 0.0)
    at = q[:, :, None]
    sums = np.take_along_axis(before, at, axis=2)[:, :, 0]
    sums += np.take_along_axis(first, at, axis=2)[:, :, 0] * within
    return sums


def _sbg_conditional_survival(a: float, b: float, tenure: np.ndarray, k: np.ndarray) -> np.ndarray:
    """S(tenure + k) / S(tenure) of the sBG for k = 1..K, shape (n, K).

    ``prod_{j=0}^{k-1} (b + tenure + j) / (a + b + tenure + j)`` (Fader & Hardie
    2007, eq. 8: the retention rate of period tenure + j + 1).
    """
    t = tenure[:, None]
    steps = np.arange(int(np.max(k)))[None, :]
    return np.cumprod((b + t + steps) / (a + b + t + steps), axis=1)[:, np.asarray(k) - 1]


def _transactional_values(
    acc: pd.DataFrame,
    models: LtvModels,
    *,
    horizon: int,
    d_month: float,
    settings: LtvSettings,
    rng: np.random.Generator,
    keep_draws: bool = True,
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Repeat purchases x Gamma-Gamma spend x margin on a monthly grid: point, interval, draws.

    The draws are simulated a block of accounts at a time (:func:`_account_blocks`)
    and kept only with ``keep_draws``.
    """
    pm, gg = models.purchase, models.gamma_gamma
    x = acc["frequency"].to_numpy(dtype=float)
    tx = acc["recency"].to_numpy(dtype=float)
    big_t = acc["T"].to_numpy(dtype=float)
    n = len(acc)
    per_month = PERIODS_PER_YEAR[pm.time_unit] / MONTHS_PER_YEAR
    k = np.arange(horizon + 1)
    cum = np.asarray(
        pm.conditional_expected_number_of_purchases_up_to_time(
            (k * per_month)[:, None], x, tx, big_t
        )
    )
    inc = np.diff(cum, axis=0)  # expected purchases in month k
    disc = (1.0 + d_month) ** -np.arange(1, horizon + 1)
    # stationary spend per purchase (Gamma-Gamma); the purchase rate is the BG/NBD's
    d_purchases = (disc[:, None] * inc).sum(axis=0)
    total = cum[-1]
    # discounted, grown value per expected purchase (applied to simulated counts)
    ratio = np.where(total > 0, d_purchases / np.where(total > 0, total, 1.0), 0.0)
    p_alive = np.asarray(pm.conditional_probability_alive(x, tx, big_t))
    m = acc["monetary_value"].to_numpy(dtype=float)
    m_ok = np.where((x > 0) & (m > 0), m, 0.0)
    x_gg = np.where((x > 0) & (m > 0), x, 0.0)
    if gg is not None:
        spend = np.asarray(gg.conditional_expected_average_profit(x_gg, m_ok))
    else:  # no spend model: the account's own mean, else the population mean
        spend = np.where(m_ok > 0, m_ok, _mean_positive(m_ok))
    margin = acc["value_factor"].to_numpy(dtype=float)
    point = d_purchases * spend * margin

    draws = settings.draws
    theta_pm = pm.parameter_draws(draws, rng)
    theta_gg = _log_normal_draws(gg, draws, rng) if gg is not None else None
    simulation = _PurchaseDraws(
        pm=pm,
        theta_pm=theta_pm,
        theta_gg=theta_gg,
        per_draw_models=(
            [
                type(pm).from_params(
                    dict(zip(pm.param_names, t, strict=True)), time_unit=pm.time_unit
                )
                for t in theta_pm
            ]
            if settings.interval == "parameter"
            else None
        ),
        horizon_units=horizon * per_month,
        x=x,
        tx=tx,
        big_t=big_t,
        x_gg=x_gg,
        m_ok=m_ok,
        spend=spend,
        value=margin * ratio,
    )
    lo, hi, kept = _simulate_in_blocks(simulation.simulate, n, settings, rng, keep_draws)
    frame = pd.DataFrame(
        {
            "model": models.purchase_label,
            "ltv": point,
            "ltv_lower": lo,
            "ltv_upper": hi,
            "p_alive": p_alive,
            "churn_risk_12m": 1 - p_alive,
            "expected_purchases": total,
            "expected_spend": spend,
        },
        index=acc.index,
    )
    return frame, kept


@dataclass(frozen=True)
class _PurchaseDraws:
    """The inputs of transactional accounts' simulated values, simulated a block at a time.

    ``theta_pm`` and ``theta_gg`` are the repeat-purchase and spend models'
    parameter draws (one row per draw, shared by every block);
    ``per_draw_models`` the purchase model of each draw for parameter
    intervals (None: predictive). ``value`` is the margin times the
    discounted, grown value per expected purchase.
    """

    pm: Any
    theta_pm: np.ndarray
    theta_gg: np.ndarray | None
    per_draw_models: list[Any] | None
    horizon_units: float
    x: np.ndarray
    tx: np.ndarray
    big_t: np.ndarray
    x_gg: np.ndarray
    m_ok: np.ndarray
    spend: np.ndarray
    value: np.ndarray

    def simulate(self, sl: slice, rng: np.random.Generator) -> np.ndarray:
        """Simulated discounted values of the accounts ``sl``, shape ``(draws, accounts)``."""
        x, tx, big_t = self.x[sl], self.tx[sl], self.big_t[sl]
        x_gg, m_ok, spend, value = self.x_gg[sl], self.m_ok[sl], self.spend[sl], self.value[sl]
        pm, theta_gg = self.pm, self.theta_gg
        simulate = _simulate_counts_bgnbd if isinstance(pm, BetaGeo) else _simulate_counts_pnbd
        sims = np.empty((len(self.theta_pm), x.size))
        for j, theta in enumerate(self.theta_pm):  # one vector over accounts per draw
            if self.per_draw_models is not None:
                e_h = np.asarray(
                    self.per_draw_models[j].conditional_expected_number_of_purchases_up_to_time(
                        self.horizon_units, x, tx, big_t
                    )
                )
                if theta_gg is not None:
                    pj, qj, vj = theta_gg[j]
                    s_j = pj * (vj + x_gg * m_ok) / (pj * x_gg + qj - 1.0) if qj > 1 else spend
                else:
                    s_j = spend
                sims[j] = e_h * s_j * value
                continue
            alive = rng.random(x.size) < pm.p_alive_unchecked(theta, x, tx, big_t)
            count = np.where(alive, simulate(theta, x, big_t, self.horizon_units, rng), 0)
            if theta_gg is not None:
                pj, qj, vj = theta_gg[j]
                nu = rng.gamma(pj * x_gg + qj, 1.0 / (vj + x_gg * m_ok))
                total_spend = np.where(
                    count > 0, rng.gamma(np.maximum(count * pj, 1e-12), 1.0 / nu), 0.0
                )
            else:
                total_spend = count * spend
            sims[j] = total_spend * value
        return sims


def _mean_positive(values: np.ndarray) -> float:
    """Mean of the positive entries; 0 when there are none."""
    pos = values[values > 0]
    return float(pos.mean()) if pos.size else 0.0


def _simulate_counts_bgnbd(
    theta: np.ndarray, x: np.ndarray, big_t: np.ndarray, horizon: float, rng: np.random.Generator
) -> np.ndarray:
    """Purchases in the horizon of alive BG/NBD customers (posterior lambda and p)."""
    r, alpha, a, b = theta
    lam = rng.gamma(r + x, 1.0 / (alpha + big_t))
    p = rng.beta(a, b + x)
    return np.minimum(rng.poisson(lam * horizon), rng.geometric(np.clip(p, 1e-300, 1.0)))


def _simulate_counts_pnbd(
    theta: np.ndarray, x: np.ndarray, big_t: np.ndarray, horizon: float, rng: np.random.Generator
) -> np.ndarray:
    """Purchases in the horizon of alive Pareto/NBD customers.

    Given alive at T: ``lambda ~ Gamma(r+x, alpha+T)``, ``mu ~ Gamma(s, beta+T)``
    (survival to T is the only information on mu), the remaining lifetime is
    exponential with rate mu (memoryless) and purchases are Poisson while alive.
    """
    r, alpha, s, beta = theta
    lam = rng.gamma(r + x, 1.0 / (alpha + big_t))
    mu = rng.gamma(s, 1.0 / (beta + big_t))
    e = rng.exponential(size=x.size)
    with np.errstate(divide="ignore", over="ignore"):
        life = np.where(mu > 0, e / np.where(mu > 0, mu, 1.0), np.inf)
    return rng.poisson(lam * np.minimum(life, horizon))


def _log_normal_draws(model: Any, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Parameter draws from the asymptotic normal of log(theta) (keeps them positive)."""
    names = list(model.param_names)
    theta = np.array([model.params_[p] for p in names])
    var = getattr(model, "variance_matrix_", None)  # absent for ``from_params`` models
    if var is None:
        return np.tile(theta, (draws, 1))
    cov = var.loc[names, names].to_numpy() / np.outer(theta, theta)
    return np.exp(rng.multivariate_normal(np.log(theta), cov, size=draws))


def account_ltv(
    features: pd.DataFrame,
    *,
    as_of: Any,
    contracts: pd.DataFrame | None = None,
    surveys: pd.DataFrame | None = None,
    activities: pd.DataFrame | None = None,
    usage: pd.DataFrame | None = None,
    monthly: pd.DataFrame | None = None,
    settings: LtvSettings | None = None,
    models: LtvModels | None = None,
    purchase_period: str = "week",
    horizon_months: int | None = None,
    assumed_gross_margin: float | None = None,
    shocks: RevenueShocks | None = None,
) -> pd.DataFrame:
    """Expected discounted LTV per account with an interval, the model used and the basis.

    Parameters
    ----------
    features : DataFrame
        :func:`~kam_analysis.data.features.build_account_features` as of
        ``as_of`` (``frequency``, ``recency``, ``T`` in ``purchase_period``
        units, ``monetary_value``, ``revenue_12m``, ``gross_profit_12m``,
        ``margin_12m``, ``tenure_days``).
    as_of : date-like
        Valuation date; the value counts months after it.
    contracts, surveys, activities, usage : DataFrame, optional
        As for :func:`fit_ltv_models` (ignored when ``models`` is given).
    monthly : DataFrame, optional
        :func:`~kam_analysis.data.features.monthly_revenue`: fits the revenue
        trajectory (when ``models`` is omitted) and, for the predictive
        interval, the revenue shock model (:class:`RevenueShocks`) unless
        ``shocks`` is given. Without either, contractual revenue noise is
        independent from year to year (the trajectory's residual sd).
    settings : LtvSettings, optional
        Horizon, discount rate, model choice, interval.
    models : LtvModels, optional
        Pre-fitted models (from :func:`fit_ltv_models` with the same
        ``as_of``); fitted here when omitted. ``contracts`` is still used to
        classify accounts.
    purchase_period : {"week", "month"}
        Unit of the features' purchase summary.
    horizon_months : int, optional
        Override the horizon in months (the backtest uses the holdout length).
    assumed_gross_margin : float, optional
        Without cost data, value revenue x this margin (basis
        ``"assumed_margin"``) instead of revenue (basis ``"revenue"``); see
        :func:`ltv_basis`. Ignored when the data have costs.
    shocks : RevenueShocks, optional
        A fitted shock model for the predictive interval of contractual accounts.

    Returns
    -------
    DataFrame
        One row per account of ``features`` (same order):

        ================== ======================================================
        account_id         account key
        model              ``contractual_hazard``, ``contractual_sbg``,
                           ``transactional_bgnbd``, ``transactional_pnbd``,
                           ``churned`` or ``none``
        ltv                expected discounted value over the horizon (in the basis)
        ltv_lower/upper    interval (``settings.quantiles``, P10-P90 by default)
        gp_annual          annual value run-rate the value starts from, in the
                           basis: gross profit, revenue x assumed margin, or
                           revenue (trailing 12 months, annualised for younger
                           accounts)
        growth_annual      annual growth applied to the value (contractual) or
                           spend per purchase (transactional)
        monthly_churn      monthly churn probability (contractual)
        churn_risk_12m     contractual: P(churn within 12 months);
                           transactional: P(already inactive) = 1 - p_alive
        p_alive            P(still a customer now) (1 for live contracts)
        expected_purchases expected repeat purchases in the horizon (transactional)
        expected_spend     expected revenue per purchase period (transactional)
        margin             gross margin used (account's, else the portfolio's;
                           the assumed one; NaN on the revenue basis)
        basis              ``"gross_profit"``, ``"assumed_margin"`` or ``"revenue"``
                           (the same for every row, :func:`ltv_basis`)
        ================== ======================================================

    Raises
    ------
    LtvInputError
        Bad features, a ``"contractual"`` choice without contracts, an
        assumed margin outside (0, 1], or no model able to value any account.
    """
    return simulate_ltv(
        features,
        as_of=as_of,
        contracts=contracts,
        surveys=surveys,
        activities=activities,
        usage=usage,
        monthly=monthly,
        settings=settings,
        models=models,
        purchase_period=purchase_period,
        horizon_months=horizon_months,
        assumed_gross_margin=assumed_gross_margin,
        shocks=shocks,
        keep_draws=False,
    ).ltv


@dataclass
class LtvSimulation:
    """The LTV table with the simulated values behind its intervals.

    Attributes
    ----------
    ltv : DataFrame
        :func:`account_ltv`.
    draws : ndarray, shape (draws, accounts), or None
        Simulated values per account in the order of ``ltv`` (the interval's
        draws: predictive or parameter, ``settings.interval``); 0 for churned
        accounts, NaN for unvalued ones. None when not kept (``keep_draws``).
    shocks : RevenueShocks or None
        The shock model behind the contractual draws (None: independent noise).
    """

    ltv: pd.DataFrame
    draws: np.ndarray | None
    shocks: RevenueShocks | None = None


def simulate_ltv(
    features: pd.DataFrame,
    *,
    as_of: Any,
    contracts: pd.DataFrame | None = None,
    surveys: pd.DataFrame | None = None,
    activities: pd.DataFrame | None = None,
    usage: pd.DataFrame | None = None,
    monthly: pd.DataFrame | None = None,
    settings: LtvSettings | None = None,
    models: LtvModels | None = None,
    purchase_period: str = "week",
    horizon_months: int | None = None,
    assumed_gross_margin: float | None = None,
    shocks: RevenueShocks | None = None,
    keep_draws: bool = True,
) -> LtvSimulation:
    """:func:`account_ltv` with its simulated values (for PIT and interval scores).

    Parameters and errors are those of :func:`account_ltv`; ``keep_draws=False``
    returns ``draws=None`` and never holds the draws of the whole book at
    once (``settings.draws`` x accounts: 0.8 GB at 100,000 accounts).

    Returns
    -------
    LtvSimulation
    """
    settings = settings or LtvSettings()
    check_ltv_features(features)
    day = pd.Timestamp(as_of).normalize()
    if models is None:
        models = fit_ltv_models(
            features,
            as_of=day,
            contracts=contracts,
            surveys=surveys,
            activities=activities,
            usage=usage,
            monthly=monthly,
            settings=settings,
            purchase_period=purchase_period,
        )
    if settings.model == "contractual" and (contracts is None or contracts.empty):
        raise LtvInputError(
            "model='contractual' needs the contracts table; use 'auto' or 'transactional'"
        )
    basis, assumed = ltv_basis(
        features,
        assumed_gross_margin=assumed_gross_margin,
        portfolio_margin=models.portfolio_margin,
    )
    horizon = int(horizon_months) if horizon_months is not None else settings.horizon_months
    d_month = per_period_discount_rate(settings.discount_rate_annual, "month")
    rng = np.random.default_rng(settings.seed)

    acc = features[
        ["account_id", "frequency", "recency", "T", "monetary_value", "tenure_days"]
    ].copy()
    acc["account_id"] = acc["account_id"].astype(str)
    status = _contract_status(contracts, day).reindex(acc["account_id"])
    has_contract = status["has_contract"].fillna(False).astype(bool).to_numpy()
    churned = status["churned"].fillna(False).astype(bool).to_numpy()
    live = status["live"].fillna(False).astype(bool).to_numpy()

    margin, factor, value_12m = _value_inputs(features, basis, assumed, models.portfolio_margin)
    acc["value_factor"] = factor
    tenure = features["tenure_days"].to_numpy(dtype=float)
    annualise = 365.2425 / np.clip(np.nan_to_num(tenure, nan=365.2425), 30.0, 365.2425)
    gp = value_12m * annualise
    contract_gp = status["contract_value"].fillna(0.0).to_numpy() * factor
    gp = np.where(np.isfinite(gp) & (gp > 0), gp, np.nan_to_num(contract_gp))
    acc["gp_annual"] = gp
    acc["tenure_months"] = tenure / (365.2425 / 12)

    if models.trajectory is not None and settings.growth == "trajectory":
        gr = models.trajectory.growth_for(acc["account_id"])
        acc["log_growth"] = gr["log_growth"].to_numpy()
        acc["log_growth_se"] = gr["log_growth_se"].to_numpy()
        acc["resid_sd"] = gr["resid_sd"].to_numpy()
    else:
        acc["log_growth"] = 0.0
        acc["log_growth_se"] = 0.0
        acc["resid_sd"] = 0.0

    buyer = acc["frequency"].notna().to_numpy() & (acc["T"].fillna(0).to_numpy() > 0)
    can_contract = models.hazard is not None or models.sbg is not None
    none = np.zeros(len(acc), dtype=bool)
    if settings.model == "transactional":
        is_churned, use_ct, use_tx = none, none, buyer
    else:
        is_churned = has_contract & churned
        use_ct = has_contract & ~churned & live & can_contract
        # auto: accounts without a live, modelled contract fall back to their purchases
        use_tx = none if settings.model == "contractual" else (~use_ct & ~is_churned & buyer)
    use_tx = use_tx.copy()
    if use_tx.any() and models.purchase is None:
        n_tx = int(use_tx.sum())
        use_tx[:] = False
        if not any(m.key == "transactional_not_valued" for m in models.messages):
            models.note(
                "transactional_not_valued",
                f"{n_tx} account(s) without a live contract are not valued: no repeat-purchase "
                "model could be fitted",
                n=n_tx,
            )

    out = pd.DataFrame(index=acc.index)
    out["account_id"] = acc["account_id"]
    out["model"] = "none"
    for col in _FLOAT_COLUMNS:
        out[col] = np.nan
    out["gp_annual"] = acc["gp_annual"]
    out["margin"] = margin
    out["growth_annual"] = 0.0
    out.loc[is_churned, ["model", "ltv", "ltv_lower", "ltv_upper", "p_alive"]] = [
        "churned",
        0.0,
        0.0,
        0.0,
        0.0,
    ]
    if shocks is None and settings.interval == "predictive" and use_ct.any():
        shocks = _fit_shocks(monthly, acc.loc[use_ct, "account_id"], day, models, settings.seed)
    draws = np.full((settings.draws, len(acc)), np.nan) if keep_draws else None
    if draws is not None:
        draws[:, is_churned] = 0.0
    if use_ct.any():
        sub = acc[use_ct]
        res, sims = _contractual_values(
            sub,
            models,
            horizon=horizon,
            d_month=d_month,
            settings=settings,
            rng=rng,
            shocks=shocks,
            keep_draws=keep_draws,
        )
        out.loc[use_ct, res.columns] = res
        if draws is not None:
            draws[:, use_ct] = sims
        del sims
        out.loc[use_ct, "growth_annual"] = np.expm1(sub["log_growth"].to_numpy())
    if use_tx.any():
        res, sims = _transactional_values(
            acc[use_tx],
            models,
            horizon=horizon,
            d_month=d_month,
            settings=settings,
            rng=rng,
            keep_draws=keep_draws,
        )
        out.loc[use_tx, res.columns] = res
        if draws is not None:
            draws[:, use_tx] = sims  # growth_annual stays 0: stationary spend
        del sims
    if not (use_ct.any() or use_tx.any() or is_churned.any()):
        raise LtvInputError(
            "no account could be valued: no live contract with a retention model and no "
            "purchase history with a repeat-purchase model "
            f"({'; '.join(models.notes) or 'no notes'})"
        )
    out = out.astype({c: float for c in _FLOAT_COLUMNS})
    out["basis"] = basis
    return LtvSimulation(out[list(LTV_COLUMNS)].reset_index(drop=True), draws, shocks)


def _fit_shocks(
    monthly: pd.DataFrame | None,
    account_ids: pd.Series,
    day: pd.Timestamp,
    models: LtvModels,
    seed: int,
) -> RevenueShocks | None:
    """The revenue shock model on the contractual accounts' months, or None (with a note).

    Fitted on the accounts it values: transactional accounts' lumpy
    purchases would inflate the book's transient variance.
    """
    if monthly is None or not len(monthly):
        return None
    own = monthly[monthly["account_id"].astype(str).isin(set(account_ids))]
    try:
        return RevenueShocks(seed=seed).fit(own, as_of=day)
    except TrajectoryInputError as err:
        if not any(m.key == "shocks_not_fitted" for m in models.messages):
            models.note(
                "shocks_not_fitted",
                f"revenue shock model not fitted ({err}); contractual intervals treat revenue "
                "noise as independent from year to year",
                reason=str(err),
            )
        return None


_FLOAT_COLUMNS = tuple(c for c in LTV_COLUMNS[2:] if c != "basis")


def _value_inputs(
    features: pd.DataFrame, basis: str, assumed: float | None, portfolio: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per account: margin shown, factor applied to revenue, value of the trailing 12 months.

    ``gross_profit``: the account's margin, else the book's; the 12-month
    value is the gross profit, else revenue x margin. ``assumed_margin``: the
    assumed margin for everyone. ``revenue``: margin unknown (NaN), factor 1.
    """
    n = len(features)
    revenue = pd.to_numeric(features["revenue_12m"], errors="coerce").to_numpy(dtype=float)
    if basis == "gross_profit":
        own = features["margin_12m"].to_numpy(dtype=float)
        margin = np.where(np.isfinite(own), own, portfolio)
        gp = features["gross_profit_12m"].to_numpy(dtype=float)
        return margin, margin, np.where(np.isfinite(gp), gp, revenue * margin)
    if basis == "assumed_margin":
        margin = np.full(n, float(assumed))
        return margin, margin, revenue * margin
    return np.full(n, np.nan), np.ones(n), revenue


def expected_ltv_total(ltv: pd.DataFrame) -> dict[str, float]:
    """Portfolio totals of :func:`account_ltv`: ``ltv`` and accounts valued per model."""
    counts = ltv["model"].value_counts().to_dict()
    return {"ltv": float(ltv["ltv"].sum()), **{f"n_{k}": int(v) for k, v in counts.items()}}

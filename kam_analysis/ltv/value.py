"""Account lifetime value: expected discounted gross profit over a horizon, with an interval.

:func:`account_ltv` values every account with the model its data supports
and says which one it used (``model`` column):

``contractual_hazard``
    An account with a live contract. Monthly retention from
    :class:`~kam_analysis.ltv.hazard.ChurnHazardModel` (NPS, executive
    contact, utilisation), times the account's monthly gross profit, grown
    along its revenue trajectory (:class:`~kam_analysis.ltv.trajectory.RevenueTrajectory`).
``contractual_sbg``
    The same when the covariate tables are missing: retention from a
    :class:`~kam_analysis.ltv.ShiftedBetaGeometric` fitted on monthly
    signing cohorts, conditional on the account's tenure.
``transactional_bgnbd``
    An account without a live contract but with purchases: BG/NBD expected
    repeat purchases × Gamma-Gamma expected spend per purchase × the
    account's gross margin; the spend grows along the revenue trajectory
    (the history's mean spend is taken to sit ``T / 2`` before the as-of date).
``churned``
    Its contract ended with status ``churned`` on or before the as-of date: 0.
``none``
    No contract and no purchase: NaN.

Time units are explicit. The contractual path works per calendar month; the
transactional one in the unit of the features' purchase period (week by
default, 52.1775 weeks a year), evaluated on a monthly grid so that both
discount with the same per-month rate, converted from the annual rate by
:func:`~kam_analysis.ltv.per_period_discount_rate`. Gross profit of month
``k`` (``k = 1..12 * horizon_years``) is received at the end of the month
and discounted by ``(1 + d_month) ** -k``; with no churn and constant
profit the LTV is the ordinary annuity ``m (1 - (1 + d)^-H) / d``. The
contractual monthly profit is ``gp_annual / 12 * exp(g (k + 6) / 12)`` with
``g`` the account's shrunk log growth per year (the trailing-12-month profit
is centred six months before the as-of date), times the retention ``S(k)``.

Intervals (``LtvSettings.interval``):

``"predictive"`` (default)
    Quantiles of the account's simulated value: parameter draws from the
    fitted models' asymptotic covariance *and* the account's own chance
    events (when it churns; for transactional accounts whether it is still
    alive, how many purchases it makes, what they are worth).
``"parameter"``
    Quantiles of the expected value under parameter draws only (how well
    the models are pinned down; narrow for a large book).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from kam_analysis.schemas import Contracts

from ._base import PERIODS_PER_YEAR, ConvergenceError, per_period_discount_rate
from .beta_geo import BetaGeo
from .gamma_gamma import GammaGamma
from .hazard import ChurnHazardModel, HazardInputError, build_churn_covariates
from .shifted_beta_geometric import ShiftedBetaGeometric
from .trajectory import RevenueTrajectory, TrajectoryInputError

__all__ = [
    "LTV_COLUMNS",
    "LtvInputError",
    "LtvModels",
    "LtvSettings",
    "account_ltv",
    "annuity_value",
    "expected_ltv_total",
    "fit_ltv_models",
    "retention_cohorts",
]

MONTHS_PER_YEAR = 12


class LtvInputError(ValueError):
    """The inputs of the LTV computation cannot be used as given."""


class LtvSettings(BaseModel):
    """LTV settings (the ``[ltv]`` section of ``kam.toml``).

    Attributes
    ----------
    horizon_years
        Years of future gross profit counted (default 5, the guide's 3-5 year view).
    discount_rate_annual
        Effective annual discount rate (0.08 = 8 %), converted per month.
    model
        ``"auto"`` (contractual for accounts with a live contract, else
        transactional), ``"contractual"`` (only accounts with contracts are
        valued) or ``"transactional"`` (BG/NBD for every account with purchases).
    growth
        ``"trajectory"``: grow contractual gross profit along the account's
        shrunk revenue trend; ``"none"``: flat.
    interval
        ``"predictive"`` or ``"parameter"`` (see the module docstring).
    interval_level
        Central coverage of the interval (0.8 = P10-P90).
    draws
        Simulation draws for the interval.
    seed
        Seed of the simulation.
    hazard_link
        Estimator of the churn hazard (``"poisson"``, ``"cloglog"``, ``"logit"``).
    """

    model_config = ConfigDict(extra="forbid")

    horizon_years: int = Field(5, ge=1, le=30, description="years of future gross profit")
    discount_rate_annual: float = Field(
        0.08, ge=0, lt=1, description="effective annual discount rate"
    )
    model: Literal["auto", "contractual", "transactional"] = Field(
        "auto", description="which model values an account"
    )
    growth: Literal["trajectory", "none"] = Field(
        "trajectory", description="grow contractual gross profit along the revenue trend"
    )
    interval: Literal["predictive", "parameter"] = Field(
        "predictive", description="what the interval covers"
    )
    interval_level: float = Field(0.8, gt=0, lt=1, description="central interval coverage")
    draws: int = Field(1000, ge=50, le=100_000, description="simulation draws")
    seed: int = Field(0, description="simulation seed")
    hazard_link: Literal["poisson", "cloglog", "logit"] = Field(
        "poisson", description="churn hazard estimator"
    )

    @property
    def horizon_months(self) -> int:
        """Horizon in calendar months."""
        return MONTHS_PER_YEAR * self.horizon_years

    @property
    def quantiles(self) -> tuple[float, float]:
        """Lower and upper quantile levels of the interval (0.1, 0.9 by default)."""
        tail = (1 - self.interval_level) / 2
        return tail, 1 - tail


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
)
"""Columns of :func:`account_ltv`, in order."""


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


# --------------------------------------------------------------------------- models


@dataclass
class LtvModels:
    """The fitted models behind :func:`account_ltv` (one fit, reused for every account).

    Attributes
    ----------
    as_of : pandas.Timestamp
    covariates : DataFrame or None
        :func:`~kam_analysis.ltv.hazard.build_churn_covariates` output
        (contractual accounts).
    hazard : ChurnHazardModel or None
    sbg : ShiftedBetaGeometric or None
        Monthly retention of signing cohorts (fitted when there are contracts).
    bgnbd : BetaGeo or None
    gamma_gamma : GammaGamma or None
    trajectory : RevenueTrajectory or None
    portfolio_margin : float
        Gross profit / revenue over the trailing 12 months of all accounts
        (used where an account's own margin is unknown).
    notes : list of str
        Why a model was not fitted, warnings raised while fitting.
    """

    as_of: pd.Timestamp
    covariates: pd.DataFrame | None = None
    hazard: ChurnHazardModel | None = None
    sbg: ShiftedBetaGeometric | None = None
    bgnbd: BetaGeo | None = None
    gamma_gamma: GammaGamma | None = None
    trajectory: RevenueTrajectory | None = None
    portfolio_margin: float = float("nan")
    notes: list[str] = field(default_factory=list)


def retention_cohorts(
    covariates: pd.DataFrame, *, as_of: Any, cohort: Literal["year", "quarter"] = "year"
) -> pd.DataFrame:
    """Survivors per month since signing, per signing cohort (for the sBG model and plots).

    Only accounts whose first contract started inside the observation window
    (``entry`` equal to ``first contract start``, i.e. not left-truncated) are
    used; each cohort is followed for the months every member could be
    observed.

    Parameters
    ----------
    covariates : DataFrame
        From :func:`~kam_analysis.ltv.hazard.build_churn_covariates`
        (``entry``, ``event``, ``months_at_risk``); must be built with the
        same ``as_of``.
    as_of : date-like
    cohort : {"year", "quarter"}
        Calendar period of the first contract start that defines a cohort.

    Returns
    -------
    DataFrame
        ``cohort`` (label such as ``"2023"`` or ``"2023Q2"``), ``month``
        (0, 1, ..., K), ``survivors`` (accounts not churned after ``month``
        months), ``share`` (survivors / cohort size). Empty when no cohort
        has a month of follow-up.
    """
    day = pd.Timestamp(as_of).normalize()
    cov = covariates
    first_entry = cov["entry"].min()
    fresh = cov[cov["entry"] > first_entry]  # entered after the window opened
    if fresh.empty:
        return pd.DataFrame(columns=["cohort", "month", "survivors", "share"])
    entry = pd.to_datetime(fresh["entry"])
    label = entry.dt.year.astype(str) if cohort == "year" else entry.dt.to_period("Q").astype(str)
    m_entry = entry.dt.year * 12 + entry.dt.month - 1
    potential = (day.year * 12 + day.month - 1) - m_entry
    event = fresh["event"].to_numpy()
    months = fresh["months_at_risk"].to_numpy()
    rows = []
    for lab in sorted(label.unique()):  # a handful of cohorts, not accounts
        sel = (label == lab).to_numpy()
        k_max = int(np.floor(potential[sel].min()))
        if k_max < 1:
            continue
        grid = np.arange(k_max + 1)
        churn_month = np.where(event[sel] == 1, months[sel], np.inf)
        surv = (churn_month[None, :] > grid[:, None]).sum(axis=1)
        rows.append(
            pd.DataFrame(
                {"cohort": lab, "month": grid, "survivors": surv, "share": surv / sel.sum()}
            )
        )
    if not rows:
        return pd.DataFrame(columns=["cohort", "month", "survivors", "share"])
    return pd.concat(rows, ignore_index=True)


def _portfolio_margin(features: pd.DataFrame) -> float:
    rev = features["revenue_12m"].sum()
    gp = features["gross_profit_12m"].sum(min_count=1)
    if not np.isfinite(gp) or rev <= 0:
        return float("nan")
    return float(gp / rev)


def _check_features(features: pd.DataFrame) -> None:
    need = [
        "account_id",
        "frequency",
        "recency",
        "T",
        "monetary_value",
        "revenue_12m",
        "gross_profit_12m",
        "margin_12m",
        "tenure_days",
    ]
    if not isinstance(features, pd.DataFrame):
        raise LtvInputError(f"features must be a DataFrame, got {type(features).__name__}")
    missing = [c for c in need if c not in features.columns]
    if missing:
        raise LtvInputError(
            f"features lack column(s) {missing}; use kam_analysis.features.build_account_features"
        )
    if features["account_id"].duplicated().any():
        dup = features.loc[features["account_id"].duplicated(), "account_id"].head(3).tolist()
        raise LtvInputError(f"features must have one row per account; repeated: {dup}")


def fit_ltv_models(
    features: pd.DataFrame,
    *,
    as_of: Any,
    contracts: pd.DataFrame | None = None,
    surveys: pd.DataFrame | None = None,
    activities: pd.DataFrame | None = None,
    usage: pd.DataFrame | None = None,
    monthly: pd.DataFrame | None = None,
    settings: LtvSettings | None = None,
    purchase_period: str = "week",
    observation_start: Any = None,
) -> LtvModels:
    """Fit every model :func:`account_ltv` may need, once, as of a date.

    Parameters
    ----------
    features : DataFrame
        :func:`~kam_analysis.features.build_account_features` as of ``as_of``.
    as_of : date-like
    contracts, surveys, activities, usage : DataFrame, optional
        Contract-level tables; without contracts no contractual model is fitted;
        without any covariate table the contractual retention is the sBG.
    monthly : DataFrame, optional
        :func:`~kam_analysis.features.monthly_revenue` for the revenue trajectory.
    settings : LtvSettings, optional
    purchase_period : {"week", "month"}
        Unit of ``frequency``, ``recency`` and ``T`` in ``features``.
    observation_start : date-like, optional
        Start of the data history (see :func:`build_churn_covariates`);
        default: the first transaction date in ``features`` (``first_purchase``).

    Returns
    -------
    LtvModels
        A model that cannot be fitted is None, with the reason in ``notes``.

    Raises
    ------
    LtvInputError
        Bad features or an unsupported ``purchase_period``.
    """
    settings = settings or LtvSettings()
    _check_features(features)
    if purchase_period not in PERIODS_PER_YEAR:
        raise LtvInputError(
            f"purchase_period {purchase_period!r} is not supported by the BG/NBD model; "
            "build the features with period 'week' or 'month'"
        )
    day = pd.Timestamp(as_of).normalize()
    models = LtvModels(as_of=day, portfolio_margin=_portfolio_margin(features))

    if observation_start is None and "first_purchase" in features.columns:
        first = pd.to_datetime(features["first_purchase"]).min()
        observation_start = None if pd.isna(first) else first
    if contracts is not None and len(contracts):
        try:
            cov = build_churn_covariates(
                contracts,
                surveys=surveys,
                activities=activities,
                usage=usage,
                as_of=day,
                observation_start=observation_start,
            )
            models.covariates = cov
        except HazardInputError as err:
            models.notes.append(f"contract covariates not built: {err}")
        if models.covariates is not None:
            if surveys is not None and activities is not None and usage is not None:
                try:
                    models.hazard = ChurnHazardModel(link=settings.hazard_link).fit(cov)
                except (HazardInputError, ConvergenceError) as err:
                    models.notes.append(f"churn hazard model not fitted: {err}")
            else:
                models.notes.append(
                    "churn hazard model not fitted: surveys, activities and usage are all needed"
                )
            cohorts = retention_cohorts(cov, as_of=day, cohort="quarter")
            if len(cohorts):
                seqs = [g["survivors"].to_numpy() for _, g in cohorts.groupby("cohort")]
                try:
                    models.sbg = ShiftedBetaGeometric(time_unit="month").fit(seqs)
                except (ValueError, ConvergenceError) as err:
                    models.notes.append(f"sBG retention not fitted: {err}")

    buyers = features[features["frequency"].notna() & features["T"].gt(0)]
    if len(buyers):
        try:
            models.bgnbd = BetaGeo(time_unit=purchase_period).fit(
                buyers["frequency"], buyers["recency"], buyers["T"]
            )
        except (ValueError, ConvergenceError) as err:
            models.notes.append(f"BG/NBD not fitted: {err}")
        repeat = buyers[(buyers["frequency"] > 0) & (buyers["monetary_value"] > 0)]
        if len(repeat) >= 3:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    models.gamma_gamma = GammaGamma().fit(
                        repeat["frequency"], repeat["monetary_value"]
                    )
                except (ValueError, ConvergenceError) as err:
                    models.notes.append(f"Gamma-Gamma not fitted: {err}")
            models.notes.extend(f"Gamma-Gamma: {w.message}" for w in caught)
    if monthly is not None and settings.growth == "trajectory" and len(monthly):
        try:
            models.trajectory = RevenueTrajectory().fit(monthly, as_of=day)
        except TrajectoryInputError as err:
            models.notes.append(f"revenue trajectory not fitted: {err}")
    return models


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


def _quantiles(draws: np.ndarray, q: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.quantile(draws, q, axis=0)
    return lo, hi


def _contractual_values(
    acc: pd.DataFrame,
    models: LtvModels,
    *,
    horizon: int,
    d_month: float,
    settings: LtvSettings,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Point value and interval for contractual accounts (closed-form geometric sums)."""
    n = len(acc)
    g = acc["log_growth"].to_numpy()
    # the trailing-12-month profit is centred 6 months before the as-of date
    m0 = acc["gp_annual"].to_numpy() / MONTHS_PER_YEAR * np.exp(g / 2)
    g_se = acc["log_growth_se"].to_numpy()
    v = 1.0 / (1.0 + d_month)
    draws = settings.draws
    if models.hazard is not None:
        cov = models.covariates.set_index("account_id").reindex(acc["account_id"])
        h = models.hazard.predict_monthly_hazard(cov).to_numpy()
        h_draws = models.hazard.monthly_hazard_draws(cov, draws, rng)
        model = "contractual_hazard"
        point = _geometric_pv(m0, np.exp(g / 12) * (1 - h) * v, horizon)
        surv_draw = None
    else:
        sbg = models.sbg
        a, b = sbg.params_["alpha"], sbg.params_["beta"]
        # tenure in months since the customer started (true age, for conditional retention)
        tenure = np.floor(np.nan_to_num(acc["tenure_months"].to_numpy(), nan=0.0))
        k = np.arange(1, horizon + 1)
        growth_disc = np.exp(np.outer(g / 12, k)) * v ** k[None, :]
        cond = _sbg_conditional_survival(a, b, tenure, k)
        point = m0 * (growth_disc * cond).sum(axis=1)
        h = 1 - (b + tenure) / (a + b + tenure)  # next-month churn probability
        model = "contractual_sbg"
        # parameter draws (log scale) and, per draw, each account's own theta
        cov_log = sbg.variance_matrix_.to_numpy() / np.outer([a, b], [a, b])
        log_ab = rng.multivariate_normal(np.log([a, b]), cov_log, size=draws)
        a_d, b_d = np.exp(log_ab[:, :1]), np.exp(log_ab[:, 1:])
        surv_draw = (a_d, b_d, tenure)
        h_draws = None
    g_draws = g[None, :] + g_se[None, :] * rng.standard_normal((draws, n))
    if surv_draw is not None:
        a_d, b_d, tenure = surv_draw
        theta = rng.beta(a_d, b_d + tenure[None, :])  # posterior of the account's churn rate
        h_draws = theta
    if settings.interval == "parameter":
        if surv_draw is None:
            sims = _geometric_pv(m0[None, :], np.exp(g_draws / 12) * (1 - h_draws) * v, horizon)
        else:  # expected value over theta ~ Beta(a, b + tenure) per draw: average the Beta draws
            k = np.arange(1, horizon + 1, dtype=float)
            t = tenure[None, :, None]
            sims = np.empty((draws, n))
            for lo_j in range(0, draws, 25):  # chunks of 25 draws x accounts x months
                sl = slice(lo_j, min(lo_j + 25, draws))
                a_c, b_c = a_d[sl, :, None], b_d[sl, :, None]
                # S(t + k) / S(t) = prod_{j<k} (b + t + j) / (a + b + t + j)
                cond = np.cumprod((b_c + t + k - 1) / (a_c + b_c + t + k - 1), axis=2)
                gd = np.exp(g_draws[sl, :, None] / 12 * k) * v**k
                sims[sl] = m0[None, :] * (gd * cond).sum(axis=2)
    else:
        u = rng.random((draws, n))
        with np.errstate(divide="ignore"):
            survived = np.floor(np.log(u) / np.log1p(-np.clip(h_draws, 1e-12, 1 - 1e-12)))
        months = np.minimum(survived, horizon)
        sims = _geometric_pv(m0[None, :], np.exp(g_draws / 12) * v, months)
    if settings.interval == "predictive":
        # level noise: quarterly log residual sd sigma -> a year's sum varies by about
        # sigma / 2; the base run-rate carries it once, future years average it out
        sigma_year = acc["resid_sd"].to_numpy() / 2.0
        years = max(horizon / MONTHS_PER_YEAR, 1.0)
        sigma = sigma_year * np.sqrt(1.0 + 1.0 / years)
        sims = sims * np.exp(sigma[None, :] * rng.standard_normal((draws, n)) - sigma**2 / 2)
    lo, hi = _quantiles(sims, settings.quantiles)
    return pd.DataFrame(
        {
            "model": model,
            "ltv": point,
            "ltv_lower": lo,
            "ltv_upper": hi,
            "monthly_churn": h,
            "churn_risk_12m": 1 - (1 - h) ** 12,
            "p_alive": 1.0,
        },
        index=acc.index,
    )


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
) -> pd.DataFrame:
    """BG/NBD x Gamma-Gamma x margin on a monthly grid, with an interval."""
    bg, gg = models.bgnbd, models.gamma_gamma
    x = acc["frequency"].to_numpy(dtype=float)
    tx = acc["recency"].to_numpy(dtype=float)
    big_t = acc["T"].to_numpy(dtype=float)
    n = len(acc)
    per_month = PERIODS_PER_YEAR[bg.time_unit] / MONTHS_PER_YEAR
    k = np.arange(horizon + 1)
    cum = np.asarray(
        bg.conditional_expected_number_of_purchases_up_to_time(
            (k * per_month)[:, None], x, tx, big_t
        )
    )
    inc = np.diff(cum, axis=0)  # expected purchases in month k
    disc = (1.0 + d_month) ** -np.arange(1, horizon + 1)
    # spend grows along the revenue trajectory: the history's mean spend sits about
    # T/2 before the as-of date, month k lies k months after it
    g = acc["log_growth"].to_numpy(dtype=float)
    t_years = big_t / PERIODS_PER_YEAR[bg.time_unit]
    months = np.arange(1, horizon + 1)[:, None]
    growth = np.exp(g[None, :] * (t_years[None, :] / 2 + months / MONTHS_PER_YEAR))
    d_purchases = (disc[:, None] * inc * growth).sum(axis=0)
    total = cum[-1]
    # discounted, grown value per expected purchase (applied to simulated counts)
    ratio = np.where(total > 0, d_purchases / np.where(total > 0, total, 1.0), 0.0)
    p_alive = np.asarray(bg.conditional_probability_alive(x, tx, big_t))
    m = acc["monetary_value"].to_numpy(dtype=float)
    m_ok = np.where((x > 0) & (m > 0), m, 0.0)
    x_gg = np.where((x > 0) & (m > 0), x, 0.0)
    if gg is not None:
        spend = np.asarray(gg.conditional_expected_average_profit(x_gg, m_ok))
    else:  # no spend model: the account's own mean, else the population mean
        spend = np.where(m_ok > 0, m_ok, np.nanmean(np.where(m_ok > 0, m_ok, np.nan)))
    margin = acc["margin"].to_numpy()
    point = d_purchases * spend * margin

    draws = settings.draws
    r, alpha, a, b = (bg.params_[p] for p in ("r", "alpha", "a", "b"))
    theta_bg = _log_normal_draws(bg, draws, rng)
    horizon_units = horizon * per_month
    if gg is not None:
        theta_gg = _log_normal_draws(gg, draws, rng)
    sims = np.empty((draws, n))
    for j in range(draws):  # one vector over accounts per draw
        rj, alj, aj, bj = theta_bg[j]
        if settings.interval == "parameter":
            model_j = BetaGeo.from_params(
                {"r": rj, "alpha": alj, "a": aj, "b": bj}, time_unit=bg.time_unit
            )
            e_h = np.asarray(
                model_j.conditional_expected_number_of_purchases_up_to_time(
                    horizon_units, x, tx, big_t
                )
            )
            if gg is not None:
                pj, qj, vj = theta_gg[j]
                s_j = pj * (vj + x_gg * m_ok) / (pj * x_gg + qj - 1.0) if qj > 1 else spend
            else:
                s_j = spend
            sims[j] = ratio * e_h * s_j * margin
        else:
            model_j = BetaGeo.from_params(
                {"r": rj, "alpha": alj, "a": aj, "b": bj}, time_unit=bg.time_unit
            )
            alive = rng.random(n) < np.asarray(model_j.conditional_probability_alive(x, tx, big_t))
            lam = rng.gamma(rj + x, 1.0 / (alj + big_t))
            p = rng.beta(aj, bj + x)
            count = np.minimum(
                rng.poisson(lam * horizon_units), rng.geometric(np.clip(p, 1e-12, 1.0))
            )
            count = np.where(alive, count, 0)
            if gg is not None:
                pj, qj, vj = theta_gg[j]
                nu = rng.gamma(pj * x_gg + qj, 1.0 / (vj + x_gg * m_ok))
                total_spend = np.where(
                    count > 0, rng.gamma(np.maximum(count * pj, 1e-12), 1.0 / nu), 0.0
                )
            else:
                total_spend = count * spend
            sims[j] = total_spend * margin * ratio
    lo, hi = _quantiles(sims, settings.quantiles)
    return pd.DataFrame(
        {
            "model": "transactional_bgnbd",
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
) -> pd.DataFrame:
    """Expected discounted gross-profit LTV per account with an interval and the model used.

    Parameters
    ----------
    features : DataFrame
        :func:`~kam_analysis.features.build_account_features` as of
        ``as_of`` (``frequency``, ``recency``, ``T`` in ``purchase_period``
        units, ``monetary_value``, ``revenue_12m``, ``gross_profit_12m``,
        ``margin_12m``, ``tenure_days``).
    as_of : date-like
        Valuation date; the value counts months after it.
    contracts, surveys, activities, usage, monthly : DataFrame, optional
        As for :func:`fit_ltv_models` (ignored when ``models`` is given).
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

    Returns
    -------
    DataFrame
        One row per account of ``features`` (same order):

        ================== ======================================================
        account_id         account key
        model              ``contractual_hazard``, ``contractual_sbg``,
                           ``transactional_bgnbd``, ``churned`` or ``none``
        ltv                expected discounted gross profit over the horizon
        ltv_lower/upper    interval (``settings.quantiles``, P10-P90 by default)
        gp_annual          gross-profit run-rate the value starts from
                           (trailing 12 months, annualised for younger accounts)
        growth_annual      annual growth applied to gross profit (contractual) or
                           spend per purchase (transactional)
        monthly_churn      monthly churn probability (contractual)
        churn_risk_12m     contractual: P(churn within 12 months);
                           transactional: P(already inactive) = 1 - p_alive
        p_alive            P(still a customer now) (1 for live contracts)
        expected_purchases expected repeat purchases in the horizon (transactional)
        expected_spend     expected revenue per purchase period (transactional)
        margin             gross margin used (account's, else the portfolio's)
        ================== ======================================================

    Raises
    ------
    LtvInputError
        Bad features, a ``"contractual"`` choice without contracts, or no
        model able to value any account.
    """
    settings = settings or LtvSettings()
    _check_features(features)
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

    margin = features["margin_12m"].to_numpy(dtype=float)
    port = models.portfolio_margin
    margin = np.where(np.isfinite(margin), margin, port if np.isfinite(port) else np.nan)
    acc["margin"] = margin
    tenure = features["tenure_days"].to_numpy(dtype=float)
    annualise = 365.2425 / np.clip(np.nan_to_num(tenure, nan=365.2425), 30.0, 365.2425)
    gp = features["gross_profit_12m"].to_numpy(dtype=float) * annualise
    contract_gp = status["contract_value"].fillna(0.0).to_numpy() * margin
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
    if use_tx.any() and models.bgnbd is None:
        use_tx[:] = False
        models.notes.append("transactional accounts not valued: BG/NBD model unavailable")

    out = pd.DataFrame(index=acc.index)
    out["account_id"] = acc["account_id"]
    out["model"] = "none"
    for col in LTV_COLUMNS[2:]:
        out[col] = np.nan
    out["gp_annual"] = acc["gp_annual"]
    out["margin"] = acc["margin"]
    out["growth_annual"] = 0.0
    out.loc[is_churned, ["model", "ltv", "ltv_lower", "ltv_upper", "p_alive"]] = [
        "churned",
        0.0,
        0.0,
        0.0,
        0.0,
    ]
    if use_ct.any():
        sub = acc[use_ct]
        res = _contractual_values(
            sub, models, horizon=horizon, d_month=d_month, settings=settings, rng=rng
        )
        out.loc[use_ct, res.columns] = res
        out.loc[use_ct, "growth_annual"] = np.expm1(sub["log_growth"].to_numpy())
    if use_tx.any():
        res = _transactional_values(
            acc[use_tx], models, horizon=horizon, d_month=d_month, settings=settings, rng=rng
        )
        out.loc[use_tx, res.columns] = res
        out.loc[use_tx, "growth_annual"] = np.expm1(acc.loc[use_tx, "log_growth"].to_numpy())
    if not (use_ct.any() or use_tx.any() or is_churned.any()):
        raise LtvInputError(
            "no account could be valued: no live contract with a retention model and no "
            f"purchase history with a BG/NBD model ({'; '.join(models.notes) or 'no notes'})"
        )
    out = out.astype({c: float for c in LTV_COLUMNS[2:]})
    return out[list(LTV_COLUMNS)].reset_index(drop=True)


def expected_ltv_total(ltv: pd.DataFrame) -> dict[str, float]:
    """Portfolio totals of :func:`account_ltv`: ``ltv`` and accounts valued per model."""
    counts = ltv["model"].value_counts().to_dict()
    return {"ltv": float(ltv["ltv"].sum()), **{f"n_{k}": int(v) for k, v in counts.items()}}

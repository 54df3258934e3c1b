"""Account-level churn hazard with covariates (discrete time, monthly).

Contractual accounts are followed month by month from the month after they
enter observation until they churn or the as-of date. The monthly churn
probability depends on account covariates through a proportional model

``h_i = h0 * exp(b_nps * nps_i + b_exec * no_exec_i + b_util * util_i)``,

so ``exp(b)`` is a hazard ratio (HR): the factor by which one unit of the
covariate multiplies the monthly churn probability. Three estimators are
available (statsmodels GLMs):

``"poisson"`` (default)
    Poisson GLM, log link, one row per account with ``log(months at risk)``
    as offset: the piecewise-exponential likelihood, identical to a
    person-month Poisson fit when covariates are constant over time, and a
    consistent estimator of a log-linear monthly probability (quasi-
    likelihood). Its HRs are ratios of monthly churn probabilities.
``"cloglog"``
    Binomial GLM with complementary log-log link on the person-month table:
    the grouped-time proportional hazards model (Prentice & Gloeckler 1978);
    HRs are ratios of the underlying continuous-time hazards.
``"logit"``
    Binomial GLM with logit link on the person-month table; ``exp(b)`` are
    odds ratios, close to HRs when monthly churn is rare.

Time units: one period is one calendar month (never 30 days); a final
partial month at the as-of date counts as the observed fraction of its days
in the ``"poisson"`` fit and is dropped (not yet a full trial) in the
person-month fits.

References
----------
Allison, P. D. (1982). Discrete-time methods for the analysis of event
histories. *Sociological Methodology* 13, 61-98.

Prentice, R. L. & Gloeckler, L. A. (1978). Regression analysis of grouped
survival data with application to breast cancer data. *Biometrics* 34(1),
57-67.

Singer, J. D. & Willett, J. B. (2003). *Applied Longitudinal Data
Analysis*, ch. 10-12 (person-period data sets). Oxford University Press.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from kam_analysis.core.errors import InputError
from kam_analysis.core.schemas import Activities, Contracts, Surveys, Usage

from ._base import ConvergenceError, NotFittedError

__all__ = [
    "COVARIATES",
    "ChurnHazardModel",
    "HazardInputError",
    "build_churn_covariates",
    "person_period_table",
]

Link = Literal["poisson", "cloglog", "logit"]
LINKS: tuple[str, ...] = ("poisson", "cloglog", "logit")

COVARIATES: tuple[str, ...] = ("nps_per_point", "no_executive_contact", "utilisation_per_10pp")
"""Covariates built by :func:`build_churn_covariates`, named as in the synthetic
generator's ``ground_truth.json`` (``churn.covariate_definitions``)."""

#: Reference points the covariates are centred on (NPS 7, 70 % utilisation).
NPS_REFERENCE = 7.0
UTILISATION_REFERENCE = 0.7

_EXEC_KIND = "executive_meeting"


class HazardInputError(InputError, ValueError):
    """The tables given to the churn hazard model cannot be used as given."""


# --------------------------------------------------------------------------- helpers


def _day(value: Any, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise HazardInputError(f"{name} must be a date, got {value!r}") from None
    if ts is pd.NaT:
        raise HazardInputError(f"{name} must be a date, got {value!r}")
    return ts.normalize().tz_localize(None) if ts.tzinfo else ts.normalize()


def _require(df: pd.DataFrame, table: str, columns: Sequence[str]) -> None:
    if not isinstance(df, pd.DataFrame):
        raise HazardInputError(f"{table} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise HazardInputError(
            f"{table} lacks column(s) {missing}; it has {list(df.columns)} "
            "(see kam_analysis.core.schemas)"
        )


def _month_index(dates: pd.Series) -> np.ndarray:
    """Calendar month number (year * 12 + month - 1) of each date."""
    d = pd.to_datetime(dates)
    return (d.dt.year * 12 + d.dt.month - 1).to_numpy(dtype=np.int64)


def _month_fraction(day: pd.Timestamp) -> float:
    """Share of its calendar month elapsed at the end of ``day`` (1.0 on the last day)."""
    return day.day / day.days_in_month


# --------------------------------------------------------------------------- covariates


def build_churn_covariates(
    contracts: pd.DataFrame,
    *,
    surveys: pd.DataFrame | None = None,
    activities: pd.DataFrame | None = None,
    usage: pd.DataFrame | None = None,
    as_of: dt.date | str | pd.Timestamp,
    observation_start: dt.date | str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """One row per contractual account: time at risk, churn event and covariates.

    Only rows dated on or before ``as_of`` are used (surveys, activities,
    usage months; a churn after ``as_of`` is not yet an event), so the same
    function builds the calibration table of a backtest.

    Parameters
    ----------
    contracts : DataFrame
        :class:`~kam_analysis.core.schemas.Contracts` rows; uses ``account_id``,
        ``start_date``, ``end_date``, ``status`` and ``churn_date``.
    surveys : DataFrame, optional
        :class:`~kam_analysis.core.schemas.Surveys` (``account_id``, ``date``, ``nps``).
    activities : DataFrame, optional
        :class:`~kam_analysis.core.schemas.Activities` (``account_id``, ``date``, ``kind``).
    usage : DataFrame, optional
        :class:`~kam_analysis.core.schemas.Usage` (``account_id``, ``month``,
        ``seats_purchased``, ``seats_active``).
    as_of : date-like
        End of observation.
    observation_start : date-like, optional
        First day churn could be observed (the start of the data history).
        Accounts signed earlier are left-truncated: at risk only from this
        date. Default: the latest of the earliest dates of ``activities``,
        ``surveys`` and ``usage`` (the day from which every event table has
        history; robust to a stray early row), else the earliest contract
        start.

    Returns
    -------
    DataFrame
        Sorted by ``account_id``:

        ======================== =================================================
        account_id               account key
        entry                    max(first contract start, observation_start)
        exit                     churn date (event) or the censoring date:
                                 min(as_of, last contract end)
        event                    1 if a contract has status ``churned`` with its
                                 churn date (else end date) on or before as_of
        months_at_risk           calendar months after the entry month up to the
                                 exit month; the as-of month counts as its elapsed
                                 fraction when censored there
        n_surveys                survey responses with an NPS up to as_of
        nps_mean                 mean NPS (NaN without responses)
        nps_per_point            nps_mean - 7
        no_executive_contact     1.0 without an ``executive_meeting`` activity up
                                 to as_of, else 0.0 (NaN without activities table)
        utilisation              mean seats_active / seats_purchased over usage
                                 months (NaN without usage rows)
        utilisation_per_10pp     (utilisation - 0.7) * 10
        ======================== =================================================

    Raises
    ------
    HazardInputError
        Missing columns, an unparsable date, no contracts up to ``as_of``.

    Notes
    -----
    The definitions follow the synthetic generator (``ground_truth.json`` →
    ``churn.covariate_definitions``): covariates summarise the account's
    whole observed history (they are treated as constant traits, not as
    time-varying measurements). An account whose contracts lapsed without a
    ``churned`` status is censored at its last contract end.
    """
    day = _day(as_of, "as_of")
    _require(
        contracts,
        "contracts",
        [
            Contracts.account_id,
            Contracts.start_date,
            Contracts.end_date,
            Contracts.status,
        ],
    )
    con = contracts[pd.to_datetime(contracts[Contracts.start_date]) <= day]
    if con.empty:
        raise HazardInputError(f"contracts: no contract starts on or before as_of {day.date()}")
    if observation_start is None:
        firsts = [
            pd.to_datetime(df[col]).min()
            for df, col in (
                (activities, Activities.date),
                (surveys, Surveys.date),
                (usage, Usage.month),
            )
            if df is not None and col in df.columns and len(df)
        ]
        obs0 = max(firsts) if firsts else pd.to_datetime(con[Contracts.start_date]).min()
    else:
        obs0 = _day(observation_start, "observation_start")

    key = Contracts.account_id
    start = pd.to_datetime(con[Contracts.start_date])
    end = pd.to_datetime(con[Contracts.end_date])
    churn_col = (
        pd.to_datetime(con[Contracts.churn_date])
        if Contracts.churn_date in con.columns
        else pd.Series(pd.NaT, index=con.index)
    )
    is_churn = con[Contracts.status].astype(str).eq("churned")
    churn_day = churn_col.where(churn_col.notna(), end).where(is_churn)
    grouped = pd.DataFrame(
        {"account_id": con[key].astype(str), "start": start, "end": end, "churn": churn_day}
    ).groupby("account_id", sort=True)
    out = pd.DataFrame({"first_start": grouped["start"].min(), "last_end": grouped["end"].max()})
    first_churn = grouped["churn"].min()
    event = first_churn.notna() & (first_churn <= day)
    out["entry"] = out["first_start"].clip(lower=obs0)
    censor = out["last_end"].fillna(day).clip(upper=day)
    out["exit"] = first_churn.where(event, censor)
    out["event"] = event.astype(np.int64)

    m_entry = _month_index(out["entry"])
    m_exit = _month_index(out["exit"])
    months = (m_exit - m_entry).astype(float)
    # a censored exit in the as-of month counts the elapsed fraction of that month
    in_asof_month = (~event.to_numpy()) & (m_exit == day.year * 12 + day.month - 1)
    months = np.where(in_asof_month & (months > 0), months - 1 + _month_fraction(day), months)
    out["months_at_risk"] = np.maximum(months, 0.0)

    n_surveys = pd.Series(0, index=out.index, dtype="int64")
    nps_mean = pd.Series(np.nan, index=out.index)
    if surveys is not None:
        _require(surveys, "surveys", [Surveys.account_id, Surveys.date, Surveys.nps])
        sv = surveys[(pd.to_datetime(surveys[Surveys.date]) <= day) & surveys[Surveys.nps].notna()]
        g = sv.groupby(sv[Surveys.account_id].astype(str))[Surveys.nps]
        n_surveys = g.size().reindex(out.index, fill_value=0).astype("int64")
        nps_mean = g.mean().astype(float).reindex(out.index)
    out["n_surveys"] = n_surveys
    out["nps_mean"] = nps_mean
    out["nps_per_point"] = nps_mean - NPS_REFERENCE

    if activities is not None:
        _require(
            activities, "activities", [Activities.account_id, Activities.date, Activities.kind]
        )
        act = activities[pd.to_datetime(activities[Activities.date]) <= day]
        met = act.loc[act[Activities.kind].astype(str).eq(_EXEC_KIND), Activities.account_id]
        out["no_executive_contact"] = (~out.index.isin(met.astype(str).unique())).astype(float)
    else:
        out["no_executive_contact"] = np.nan

    util = pd.Series(np.nan, index=out.index)
    if usage is not None:
        _require(
            usage,
            "usage",
            [Usage.account_id, Usage.month, Usage.seats_purchased, Usage.seats_active],
        )
        us = usage[(pd.to_datetime(usage[Usage.month]) <= day) & (usage[Usage.seats_purchased] > 0)]
        ratio = us[Usage.seats_active].astype(float) / us[Usage.seats_purchased].astype(float)
        util = ratio.groupby(us[Usage.account_id].astype(str)).mean().reindex(out.index)
    out["utilisation"] = util
    out["utilisation_per_10pp"] = (util - UTILISATION_REFERENCE) * 10.0

    out = out.reset_index()
    cols = [
        "account_id",
        "entry",
        "exit",
        "event",
        "months_at_risk",
        "n_surveys",
        "nps_mean",
        "nps_per_point",
        "no_executive_contact",
        "utilisation",
        "utilisation_per_10pp",
    ]
    return out[cols]


def person_period_table(
    covariates: pd.DataFrame, *, covariate_names: Sequence[str] = COVARIATES
) -> pd.DataFrame:
    """Expand account rows into one row per account-month at risk (vectorised).

    Parameters
    ----------
    covariates : DataFrame
        From :func:`build_churn_covariates` (``account_id``, ``event``,
        ``months_at_risk`` and the covariate columns).
    covariate_names : sequence of str
        Covariate columns copied to every month.

    Returns
    -------
    DataFrame
        ``account_id``, ``month`` (1 = first month at risk), ``churned``
        (1 in the account's churn month, else 0) and the covariates. A
        final partial month of a censored account is dropped (it is not a
        complete trial).
    """
    _require(covariates, "covariates", ["account_id", "event", "months_at_risk", *covariate_names])
    event = covariates["event"].to_numpy(dtype=np.int64)
    months = covariates["months_at_risk"].to_numpy(dtype=float)
    n_rows = np.where(event == 1, np.ceil(months), np.floor(months)).astype(np.int64)
    n_rows = np.maximum(n_rows, 0)
    idx = np.repeat(np.arange(len(covariates)), n_rows)
    starts = np.cumsum(n_rows) - n_rows
    month = np.arange(idx.size) - np.repeat(starts, n_rows) + 1
    last = month == np.repeat(n_rows, n_rows)
    out = {
        "account_id": covariates["account_id"].to_numpy()[idx],
        "month": month.astype(np.int64),
        "churned": (last & (event[idx] == 1)).astype(np.int64),
    }
    for c in covariate_names:
        out[c] = covariates[c].to_numpy(dtype=float)[idx]
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- model


class ChurnHazardModel:
    """Discrete-time (monthly) churn hazard with covariates, fitted by a statsmodels GLM.

    Parameters
    ----------
    covariates : sequence of str
        Covariate columns of the fitting table (default :data:`COVARIATES`).
    link : {"poisson", "cloglog", "logit"}
        Estimator (see the module docstring). ``"poisson"`` estimates ratios
        of monthly churn probabilities (the planted HRs of the synthetic
        data); ``"cloglog"`` continuous-time hazard ratios; ``"logit"`` odds
        ratios.
    confidence_level : float
        Coverage of the Wald intervals of the HRs.
    missing : {"drop", "raise"}
        Accounts with a missing covariate are dropped (counted in
        ``n_dropped_``) or raise.

    Attributes
    ----------
    params_ : dict
        ``{"const": log baseline monthly hazard, covariate: log HR, ...}``.
    hazard_ratios_ : DataFrame
        Index ``covariate``; columns ``hr``, ``lower``, ``upper``, ``coef``,
        ``se``, ``p_value``.
    baseline_hazard_ : float
        Monthly churn probability at covariates 0 (NPS 7, executive contact,
        70 % utilisation).
    covariance_ : DataFrame
        Covariance of the coefficients (const first).
    covariate_means_ : dict
        Mean of each covariate in the fitted sample (used to fill missing
        covariates at prediction).
    log_likelihood_ : float
    n_accounts_, n_events_, n_dropped_ : int
    exposure_months_ : float
        Total months at risk.
    time_unit : str
        Always ``"month"``.

    References
    ----------
    Allison, P. D. (1982). Discrete-time methods for the analysis of event
    histories. *Sociological Methodology* 13, 61-98.
    """

    time_unit = "month"

    def __init__(
        self,
        *,
        covariates: Sequence[str] = COVARIATES,
        link: Link = "poisson",
        confidence_level: float = 0.95,
        missing: Literal["drop", "raise"] = "drop",
    ) -> None:
        if link not in LINKS:
            raise ValueError(f"link must be one of {list(LINKS)}, got {link!r}")
        if not 0 < confidence_level < 1:
            raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level!r}")
        if missing not in ("drop", "raise"):
            raise ValueError(f"missing must be 'drop' or 'raise', got {missing!r}")
        names = list(covariates)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"covariates must be distinct column names, got {names!r}")
        self.covariates = tuple(names)
        self.link = link
        self.confidence_level = float(confidence_level)
        self.missing = missing

    # ------------------------------------------------------------------ fitting
    def fit(self, data: pd.DataFrame) -> ChurnHazardModel:
        """Fit on the account table of :func:`build_churn_covariates`.

        Parameters
        ----------
        data : DataFrame
            Columns ``event`` (0/1), ``months_at_risk`` (> 0) and the
            covariates; other columns are ignored.

        Returns
        -------
        ChurnHazardModel
            ``self``, fitted.

        Raises
        ------
        HazardInputError
            Missing columns, non-0/1 events, missing covariates with
            ``missing="raise"``, no events, or a covariate without variation.
        ConvergenceError
            The GLM did not converge or a coefficient is not finite.
        """
        import statsmodels.api as sm

        _require(data, "data", ["event", "months_at_risk", *self.covariates])
        df = data[(data["months_at_risk"] > 0)]
        bad_event = ~df["event"].isin([0, 1])
        if bad_event.any():
            raise HazardInputError(
                f"event must be 0 or 1; found {df.loc[bad_event, 'event'].unique()[:3].tolist()}"
            )
        na = df[list(self.covariates)].isna().any(axis=1)
        if na.any() and self.missing == "raise":
            cols = [c for c in self.covariates if df[c].isna().any()]
            raise HazardInputError(
                f"{int(na.sum())} account(s) have missing covariates ({cols}); e.g. "
                f"{df.loc[na, 'account_id'].head(3).tolist() if 'account_id' in df else ''}"
            )
        self.n_dropped_ = int(na.sum() + (len(data) - len(df)))
        df = df[~na]
        if df.empty:
            raise HazardInputError("no account with complete covariates and time at risk")
        n_events = int(df["event"].sum())
        if n_events == 0:
            raise HazardInputError(
                "no churn event among the accounts at risk: the hazard is not identified"
            )
        flat = [c for c in self.covariates if df[c].nunique() < 2]
        if flat:
            raise HazardInputError(f"covariate(s) {flat} do not vary: their HR is not identified")

        if self.link == "poisson":
            X = sm.add_constant(df[list(self.covariates)].astype(float), has_constant="add")
            y = df["event"].astype(float)
            model = sm.GLM(
                y,
                X,
                family=sm.families.Poisson(),
                offset=np.log(df["months_at_risk"].to_numpy(dtype=float)),
            )
        else:
            pp = person_period_table(df, covariate_names=self.covariates)
            X = sm.add_constant(pp[list(self.covariates)].astype(float), has_constant="add")
            link = (
                sm.families.links.CLogLog() if self.link == "cloglog" else sm.families.links.Logit()
            )
            model = sm.GLM(pp["churned"].astype(float), X, family=sm.families.Binomial(link=link))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = model.fit()
        params = np.asarray(res.params, dtype=float)
        if not res.converged or not np.all(np.isfinite(params)) or not np.all(np.isfinite(res.bse)):
            raise ConvergenceError(
                f"churn hazard ({self.link}): the GLM did not converge "
                f"(coefficients {dict(zip(X.columns, np.round(params, 4), strict=True))})"
            )
        names = ["const", *self.covariates]
        self.params_ = dict(zip(names, params.tolist(), strict=True))
        cov = np.asarray(res.cov_params(), dtype=float)
        self.covariance_ = pd.DataFrame(cov, index=names, columns=names)
        se = np.sqrt(np.diag(cov))
        z = stats.norm.ppf(0.5 + self.confidence_level / 2)
        coef = params[1:]
        self.hazard_ratios_ = pd.DataFrame(
            {
                "hr": np.exp(coef),
                "lower": np.exp(coef - z * se[1:]),
                "upper": np.exp(coef + z * se[1:]),
                "coef": coef,
                "se": se[1:],
                "p_value": 2 * stats.norm.sf(np.abs(coef / se[1:])),
            },
            index=pd.Index(list(self.covariates), name="covariate"),
        )
        self.baseline_hazard_ = float(self._inverse_link(np.array([params[0]]))[0])
        self.covariate_means_ = {c: float(df[c].mean()) for c in self.covariates}
        self.log_likelihood_ = float(res.llf)
        self.n_accounts_ = len(df)
        self.n_events_ = n_events
        self.exposure_months_ = float(df["months_at_risk"].sum())
        self.result_ = res
        return self

    # ------------------------------------------------------------------ predictions
    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError("ChurnHazardModel is not fitted: call .fit(...) first")

    def _inverse_link(self, eta: np.ndarray) -> np.ndarray:
        if self.link == "poisson":
            return np.minimum(np.exp(eta), 1.0)
        if self.link == "cloglog":
            return -np.expm1(-np.exp(eta))
        return 1.0 / (1.0 + np.exp(-eta))

    def _design(self, covariates: pd.DataFrame) -> np.ndarray:
        self._check_fitted()
        if not isinstance(covariates, pd.DataFrame):
            raise HazardInputError(
                f"covariates must be a DataFrame, got {type(covariates).__name__}"
            )
        missing = [c for c in self.covariates if c not in covariates.columns]
        if missing:
            raise HazardInputError(f"covariates lack column(s) {missing}")
        X = covariates[list(self.covariates)].astype(float)
        X = X.fillna(self.covariate_means_)
        return X.to_numpy()

    def linear_predictor(
        self, covariates: pd.DataFrame, params: np.ndarray | None = None
    ) -> np.ndarray:
        """``const + X b`` per row; ``params`` may be a (draws, k+1) matrix of coefficients.

        Returns shape ``(n,)`` for the fitted parameters, ``(draws, n)`` for a matrix.
        Missing covariates are filled with the fitted sample means.
        """
        X = self._design(covariates)
        if params is None:
            beta = np.array([self.params_[n] for n in ["const", *self.covariates]])
            return beta[0] + X @ beta[1:]
        params = np.atleast_2d(np.asarray(params, dtype=float))
        return params[:, :1] + params[:, 1:] @ X.T

    def predict_monthly_hazard(self, covariates: pd.DataFrame) -> pd.Series:
        """Monthly churn probability per row of ``covariates``.

        Parameters
        ----------
        covariates : DataFrame
            The model's covariate columns; missing values are filled with the
            fitted sample means (documented, so an account without a survey
            gets an average NPS rather than an error).

        Returns
        -------
        Series
            Named ``monthly_hazard``, aligned with ``covariates``; in [0, 1].
        """
        h = self._inverse_link(self.linear_predictor(covariates))
        return pd.Series(h, index=covariates.index, name="monthly_hazard")

    def survival_function(
        self, covariates: pd.DataFrame, months: int | Sequence[int]
    ) -> pd.DataFrame:
        """Probability of not having churned after each number of months.

        Parameters
        ----------
        covariates : DataFrame
            One row per account (as for :meth:`predict_monthly_hazard`).
        months : int or sequence of int
            Horizon ``H`` (gives months ``0..H``) or explicit month counts.

        Returns
        -------
        DataFrame
            Rows aligned with ``covariates``, one column per month count,
            ``S(m) = (1 - h) ** m``.
        """
        grid = np.arange(int(months) + 1) if np.ndim(months) == 0 else np.asarray(months)
        if np.any(grid < 0):
            raise ValueError(f"months must be >= 0, got {months!r}")
        h = self.predict_monthly_hazard(covariates).to_numpy()
        surv = np.exp(np.log1p(-np.minimum(h, 1 - 1e-12))[:, None] * grid[None, :])
        return pd.DataFrame(surv, index=covariates.index, columns=grid)

    def sample_params(self, draws: int, seed: int | np.random.Generator = 0) -> np.ndarray:
        """Draws of the coefficient vector from its asymptotic normal distribution.

        Returns
        -------
        numpy.ndarray
            Shape ``(draws, 1 + n_covariates)``, columns ``const`` then covariates.
        """
        self._check_fitted()
        rng = np.random.default_rng(seed)
        mean = np.array([self.params_[n] for n in ["const", *self.covariates]])
        return rng.multivariate_normal(mean, self.covariance_.to_numpy(), size=int(draws))

    def monthly_hazard_draws(
        self, covariates: pd.DataFrame, draws: int, seed: int | np.random.Generator = 0
    ) -> np.ndarray:
        """Monthly hazards under parameter draws, shape ``(draws, n)``."""
        return self._inverse_link(
            self.linear_predictor(covariates, self.sample_params(draws, seed))
        )

    def summary(self) -> pd.DataFrame:
        """HR table plus the baseline: one row per term.

        Returns
        -------
        DataFrame
            Columns ``term``, ``hr`` (for ``const``: the baseline monthly
            hazard), ``lower``, ``upper``, ``coef``, ``se``, ``p_value``.
        """
        self._check_fitted()
        z = stats.norm.ppf(0.5 + self.confidence_level / 2)
        c0 = self.params_["const"]
        s0 = float(np.sqrt(self.covariance_.iloc[0, 0]))
        base = pd.DataFrame(
            {
                "term": ["baseline_monthly_hazard"],
                "hr": [self.baseline_hazard_],
                "lower": self._inverse_link(np.array([c0 - z * s0])),
                "upper": self._inverse_link(np.array([c0 + z * s0])),
                "coef": [c0],
                "se": [s0],
                "p_value": [np.nan],
            }
        )
        hr = self.hazard_ratios_.reset_index().rename(columns={"covariate": "term"})
        return pd.concat([base, hr], ignore_index=True)

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return f"<ChurnHazardModel({self.link}): not fitted>"
        hrs = ", ".join(f"{k}={v:.3g}" for k, v in self.hazard_ratios_["hr"].items())
        return (
            f"<ChurnHazardModel({self.link}): HR {hrs}; baseline {self.baseline_hazard_:.4f}/month;"
            f" {self.n_events_} events in {self.n_accounts_} accounts>"
        )

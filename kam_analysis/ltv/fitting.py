"""The models behind the LTV, fitted once as of a date, with notes on what was done.

:func:`fit_ltv_models` fits, as the data allow, the contractual models (churn
hazard with covariates, shifted-beta-geometric cohorts), a repeat-purchase
model, the Gamma-Gamma spend model and the revenue trajectory. Nothing here
raises because a model cannot be fitted: the model is None and a
:class:`LtvNote` says why and what was done instead.

Repeat purchases follow a chain: BG/NBD, else Pareto/NBD, else none
(transactional accounts are then not valued). An estimate on the boundary of
the parameter space (e.g. BG/NBD ``a -> 0`` when almost nobody drops out,
common on wholesale data) is kept: predictions come from the point estimate
and intervals from a parametric bootstrap
(:class:`~kam_analysis.ltv._repeat_purchase.RepeatPurchaseModel`). A model
falls back to the next one only when it truly cannot be fitted: too few
repeat buyers, no repeat purchase at all, optimiser failure, or predictions
that are not finite at the estimate.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ._base import PERIODS_PER_YEAR, ConvergenceError
from ._repeat_purchase import RepeatPurchaseModel
from .beta_geo import BetaGeo
from .gamma_gamma import GammaGamma
from .hazard import (
    ChurnHazardModel,
    HazardInputError,
    build_churn_covariates,
    build_person_months,
)
from .pareto_nbd import ParetoNBD
from .settings import LtvInputError, LtvSettings, check_ltv_features
from .shifted_beta_geometric import ShiftedBetaGeometric
from .trajectory import RevenueTrajectory, TrajectoryInputError

__all__ = [
    "MODEL_NAMES",
    "PURCHASE_MODEL_LABELS",
    "LtvModels",
    "LtvNote",
    "fit_ltv_models",
    "fit_purchase_model",
    "portfolio_margin",
    "retention_cohorts",
]

PURCHASE_MODEL_LABELS: dict[str, str] = {
    "BG/NBD": "transactional_bgnbd",
    "Pareto/NBD": "transactional_pnbd",
}
"""``model`` value of :func:`~kam_analysis.ltv.value.account_ltv` per repeat-purchase model."""

#: The Pareto/NBD (numerical gradient) is only the fallback: bound its iterations.
_PNBD_MAX_ITER = 300


@dataclass(frozen=True)
class LtvNote:
    """A note for the report: what could not be done, what was done instead.

    Attributes
    ----------
    key : str
        Locale key under ``ltv.note.`` (e.g. ``"purchase_boundary"``).
    values : dict
        Values for the locale text's placeholders.
    text : str
        The English text (logs, the command line).
    """

    key: str
    values: dict[str, Any]
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass
class LtvModels:
    """The fitted models behind :func:`~kam_analysis.ltv.value.account_ltv` (one fit, reused).

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
    pnbd : ParetoNBD or None
        The repeat-purchase fallback, fitted only when the BG/NBD cannot be.
    gamma_gamma : GammaGamma or None
    trajectory : RevenueTrajectory or None
    portfolio_margin : float
        Gross profit / revenue over the trailing 12 months of all accounts
        (the 12 months before when that is unknown; used where an account's own
        margin is unknown); NaN without cost data.
    notes : list of str
        Why a model was not fitted, what was used instead, warnings (English).
    messages : list of LtvNote
        The same notes with their locale keys, for the report.
    """

    as_of: pd.Timestamp
    covariates: pd.DataFrame | None = None
    hazard: ChurnHazardModel | None = None
    sbg: ShiftedBetaGeometric | None = None
    bgnbd: BetaGeo | None = None
    pnbd: ParetoNBD | None = None
    gamma_gamma: GammaGamma | None = None
    trajectory: RevenueTrajectory | None = None
    portfolio_margin: float = float("nan")
    notes: list[str] = field(default_factory=list)
    messages: list[LtvNote] = field(default_factory=list)

    @property
    def purchase(self) -> RepeatPurchaseModel | None:
        """The repeat-purchase model in use (BG/NBD, else Pareto/NBD), or None."""
        return self.bgnbd if self.bgnbd is not None else self.pnbd

    @property
    def purchase_label(self) -> str | None:
        """``model`` label of transactional accounts (``"transactional_bgnbd"``, ...)."""
        model = self.purchase
        return None if model is None else PURCHASE_MODEL_LABELS[model.model_name]

    def note(self, key: str, text: str, **values: Any) -> None:
        """Record a note (English ``text`` and its locale key ``ltv.note.<key>``)."""
        self.notes.append(text)
        self.messages.append(LtvNote(key, dict(values), text))


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


def portfolio_margin(features: pd.DataFrame) -> float:
    """Gross profit / revenue of the whole book: trailing 12 months, else the 12 before.

    Parameters
    ----------
    features : DataFrame
        ``revenue_12m``, ``gross_profit_12m`` and, optionally,
        ``revenue_prev_12m`` and ``gross_profit_prev_12m``.

    Returns
    -------
    float
        NaN when no window has both a known gross profit and positive revenue
        (no cost data, or no revenue in either window).
    """
    for rev_col, gp_col in (
        ("revenue_12m", "gross_profit_12m"),
        ("revenue_prev_12m", "gross_profit_prev_12m"),
    ):
        if rev_col not in features.columns or gp_col not in features.columns:
            continue
        gp = pd.to_numeric(features[gp_col], errors="coerce")
        known = gp.notna()
        rev = float(pd.to_numeric(features.loc[known, rev_col], errors="coerce").sum())
        if known.any() and rev > 0:
            return float(gp[known].sum() / rev)
    return float("nan")


def _model_settings(
    cls: type[RepeatPurchaseModel],
    period: str,
    settings: LtvSettings,
    max_iter: int,
    max_fit_seconds: float | None,
) -> RepeatPurchaseModel:
    return cls(
        time_unit=period,
        max_iter=max_iter,
        boundary="bootstrap",
        n_bootstrap=settings.bootstrap_replicates,
        bootstrap_seed=settings.seed,
        max_bootstrap_seconds=settings.bootstrap_max_seconds,
        max_fit_seconds=max_fit_seconds,
    )


def _first_sentence(err: Exception) -> str:
    """The error message without the model-name prefix, for a note."""
    text = str(err)
    for prefix in ("BG/NBD: ", "Pareto/NBD: "):
        text = text.removeprefix(prefix)
    return text


def fit_purchase_model(
    buyers: pd.DataFrame, models: LtvModels, *, period: str, settings: LtvSettings
) -> None:
    """Fit the repeat-purchase chain (BG/NBD, else Pareto/NBD) into ``models``, with notes.

    Parameters
    ----------
    buyers : DataFrame
        Accounts with purchases: ``frequency``, ``recency``, ``T`` (in ``period`` units).
    models : LtvModels
        Receives ``bgnbd`` or ``pnbd`` (at most one) and the notes.
    period : str
        Time unit of the summaries.
    settings : LtvSettings
        ``min_repeat_customers``, bootstrap size, time limit and seed.

    Notes
    -----
    Notes written (``LtvNote.key``): ``too_few_repeat`` (fewer repeat buyers
    than ``min_repeat_customers``: no model), ``purchase_fallback`` (a model
    could not be fitted, the next one is tried), ``purchase_none`` (none
    could), ``purchase_boundary`` (estimate on the boundary, bootstrap
    intervals), ``purchase_boundary_no_interval`` (too few bootstrap refits
    succeeded: intervals without parameter uncertainty) and
    ``purchase_boundary_truncated`` (the time limit stopped the bootstrap).
    """
    n_repeat = int((buyers["frequency"] > 0).sum())
    if n_repeat < settings.min_repeat_customers:
        models.note(
            "too_few_repeat",
            f"only {n_repeat} account(s) made a repeat purchase (at least "
            f"{settings.min_repeat_customers} are needed for a repeat-purchase model); "
            "accounts without a live contract are not valued",
            n=n_repeat,
            min=settings.min_repeat_customers,
        )
        return
    # the fallback's fit has a time limit (numerical gradient, slow towards a boundary)
    chain: tuple[tuple[type[RepeatPurchaseModel], int, float | None], ...] = (
        (BetaGeo, 1000, None),
        (ParetoNBD, _PNBD_MAX_ITER, settings.bootstrap_max_seconds),
    )
    failures: list[str] = []
    for i, (cls, max_iter, max_seconds) in enumerate(chain):
        model = _model_settings(cls, period, settings, max_iter, max_seconds)
        try:
            model.fit(buyers["frequency"], buyers["recency"], buyers["T"])
        except (ValueError, ConvergenceError) as err:
            reason = _first_sentence(err)
            failures.append(f"{cls.model_name}: {reason}")
            if i + 1 < len(chain):
                nxt = chain[i + 1][0].model_name
                models.note(
                    "purchase_fallback",
                    f"{cls.model_name} could not be fitted ({reason}); {nxt} is used instead",
                    model=cls.model_name,
                    next=nxt,
                    reason=reason,
                )
            continue
        if isinstance(model, BetaGeo):
            models.bgnbd = model
        else:
            models.pnbd = model
        if model.at_boundary_:
            _note_boundary(models, model)
        return
    models.note(
        "purchase_none",
        "no repeat-purchase model could be fitted ("
        + "; ".join(failures)
        + "); accounts without a live contract are not valued",
        reason="; ".join(failures),
    )


def _note_boundary(models: LtvModels, model: RepeatPurchaseModel) -> None:
    params = ", ".join(model.boundary_params_) or ", ".join(model.param_names)
    boot = model.bootstrap_
    name = model.model_name
    if model.interval_method_ == "parametric_bootstrap":
        models.note(
            "purchase_boundary",
            f"{name}: the estimate is on the boundary of the parameter space ({params} not "
            "identified; typically almost no customer drops out), so standard errors from the "
            "Hessian do not exist. Predictions use the point estimate; intervals come from a "
            f"parametric bootstrap ({boot['replicates']} refits of data simulated from the "
            "fitted model)",
            model=name,
            params=params,
            replicates=boot["replicates"],
        )
    else:
        models.note(
            "purchase_boundary_no_interval",
            f"{name}: the estimate is on the boundary of the parameter space ({params} not "
            "identified) and only "
            f"{boot.get('replicates', 0)} bootstrap refits succeeded; predictions use the point "
            "estimate and the intervals leave out the uncertainty of the parameters",
            model=name,
            params=params,
            replicates=boot.get("replicates", 0),
        )
    if boot.get("truncated"):
        models.note(
            "purchase_boundary_truncated",
            f"{name}: the bootstrap stopped at its time limit after {boot['replicates']} of "
            f"{boot['requested']} refits",
            model=name,
            replicates=boot["replicates"],
            requested=boot["requested"],
        )


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
    """Fit every model :func:`~kam_analysis.ltv.value.account_ltv` may need, once, as of a date.

    Parameters
    ----------
    features : DataFrame
        :func:`~kam_analysis.data.features.build_account_features` as of ``as_of``.
    as_of : date-like
    contracts, surveys, activities, usage : DataFrame, optional
        Contract-level tables; without contracts no contractual model is fitted;
        without any covariate table the contractual retention is the sBG.
    monthly : DataFrame, optional
        :func:`~kam_analysis.data.features.monthly_revenue` for the revenue trajectory.
    settings : LtvSettings, optional
    purchase_period : {"week", "month"}
        Unit of ``frequency``, ``recency`` and ``T`` in ``features``.
    observation_start : date-like, optional
        Start of the data history (see :func:`build_churn_covariates`);
        default: the first transaction date in ``features`` (``first_purchase``).

    Returns
    -------
    LtvModels
        A model that cannot be fitted is None, with the reason in ``notes``
        and ``messages``; the repeat-purchase model follows
        :func:`fit_purchase_model`.

    Raises
    ------
    LtvInputError
        Bad features or an unsupported ``purchase_period``.
    """
    settings = settings or LtvSettings()
    check_ltv_features(features)
    if purchase_period not in PERIODS_PER_YEAR:
        raise LtvInputError(
            f"purchase_period {purchase_period!r} is not supported by the repeat-purchase "
            "models; build the features with period 'week' or 'month'"
        )
    day = pd.Timestamp(as_of).normalize()
    models = LtvModels(as_of=day, portfolio_margin=portfolio_margin(features))

    if observation_start is None and "first_purchase" in features.columns:
        first = pd.to_datetime(features["first_purchase"]).min()
        observation_start = None if pd.isna(first) else first
    if contracts is not None and len(contracts):
        since = None
        if "tenure_days" in features.columns:  # customer since = as_of - tenure
            tenure = pd.to_numeric(features["tenure_days"], errors="coerce")
            since = pd.Series(
                (day - pd.to_timedelta(tenure, unit="D")).to_numpy(),
                index=features["account_id"].astype(str),
            ).dropna()
        _fit_contractual(
            models, contracts, surveys, activities, usage, day, observation_start, settings, since
        )

    buyers = features[features["frequency"].notna() & features["T"].gt(0)]
    if len(buyers):
        fit_purchase_model(buyers, models, period=purchase_period, settings=settings)
        repeat = buyers[(buyers["frequency"] > 0) & (buyers["monetary_value"] > 0)]
        if len(repeat) >= 3:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    models.gamma_gamma = GammaGamma().fit(
                        repeat["frequency"], repeat["monetary_value"]
                    )
                except (ValueError, ConvergenceError) as err:
                    _not_fitted(models, "gamma_gamma", err)
            for w in caught:
                models.note(
                    "gamma_gamma_warning", f"Gamma-Gamma: {w.message}", message=str(w.message)
                )
    if monthly is not None and settings.growth == "trajectory" and len(monthly):
        try:
            models.trajectory = RevenueTrajectory().fit(monthly, as_of=day)
        except TrajectoryInputError as err:
            _not_fitted(models, "revenue_trajectory", err)
    return models


#: Models that may not be fitted, by the id a note carries (locale ``ltv.note_model.<id>``).
MODEL_NAMES: dict[str, str] = {
    "contract_covariates": "contract covariates",
    "churn_hazard": "churn hazard model",
    "sbg": "sBG retention",
    "gamma_gamma": "Gamma-Gamma",
    "revenue_trajectory": "revenue trajectory",
}


def _not_fitted(models: LtvModels, model_id: str, err: Exception | str) -> None:
    what = MODEL_NAMES[model_id]
    models.note("model_not_fitted", f"{what} not fitted: {err}", model=model_id, reason=str(err))


def _fit_contractual(
    models: LtvModels,
    contracts: pd.DataFrame,
    surveys: pd.DataFrame | None,
    activities: pd.DataFrame | None,
    usage: pd.DataFrame | None,
    day: pd.Timestamp,
    observation_start: Any,
    settings: LtvSettings,
    since: pd.Series | None = None,
) -> None:
    """Churn covariates (state at as_of), the person-month hazard model and the sBG cohorts."""
    tables = {
        "surveys": surveys,
        "activities": activities,
        "usage": usage,
        "as_of": day,
        "observation_start": observation_start,
        "account_start": since,
    }
    try:
        models.covariates = build_churn_covariates(contracts, **tables)
    except HazardInputError as err:
        _not_fitted(models, "contract_covariates", err)
        return
    cov = models.covariates
    if surveys is not None and activities is not None and usage is not None:
        try:
            person_months = build_person_months(contracts, **tables)
            models.hazard = ChurnHazardModel(link=settings.hazard_link).fit(person_months)
        except (HazardInputError, ConvergenceError) as err:
            _not_fitted(models, "churn_hazard", err)
    else:
        models.note(
            "hazard_tables_missing",
            "churn hazard model not fitted: surveys, activities and usage are all needed",
        )
    cohorts = retention_cohorts(cov, as_of=day, cohort="quarter")
    if len(cohorts):
        seqs = [g["survivors"].to_numpy() for _, g in cohorts.groupby("cohort")]
        try:
            models.sbg = ShiftedBetaGeometric(time_unit="month").fit(seqs)
        except (ValueError, ConvergenceError) as err:
            _not_fitted(models, "sbg", err)

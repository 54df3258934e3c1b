"""Everything the LTV report shows, computed from an analysis context in one call.

:func:`value_accounts` is the valuation step: it fits the models once as of
the context's date and values every account
(:func:`~kam_analysis.ltv.value.account_ltv`). :func:`ltv_analysis` adds the
retention curves, the renewal forecast, and the backtest at the latest
cut-off plus a rolling-origin summary, so that the notebook only plots and
narrates. Every report that shows an LTV reads these numbers (through the
analysis context: ``ctx.ltv_values``, ``ctx.ltv``).

It does not fail because the data do not support a model: a model that
cannot be fitted falls back to the next one, an estimate on a parameter
boundary gets bootstrap intervals, and when no account can be valued the
table says so (``model == "none"``). Each such event is a note
(:class:`~kam_analysis.ltv.fitting.LtvNote`, ``messages``) for the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._base import ConvergenceError
from .backtest import (
    BacktestInputError,
    BacktestResult,
    backtest_ltv,
    backtest_sample,
    only_accounts,
    rolling_cutoffs,
)
from .fitting import LtvNote
from .renewal import contracts_due, renewal_forecast, renewal_probabilities
from .shocks import RevenueShocks
from .trajectory import TrajectoryInputError
from .value import (
    LTV_COLUMNS,
    LtvInputError,
    LtvModels,
    LtvSettings,
    account_ltv,
    fit_ltv_models,
    ltv_basis,
    retention_cohorts,
)

__all__ = [
    "LtvAnalysis",
    "LtvValues",
    "SpreadEstimates",
    "spread_estimates",
    "hazard_profiles",
    "ltv_analysis",
    "unvalued_ltv",
    "value_accounts",
]


@dataclass
class LtvValues:
    """Results of :func:`value_accounts`: the fitted models and every account's LTV.

    Attributes
    ----------
    settings : LtvSettings
    models : LtvModels
        Fitted once; their ``messages`` include the notes on the basis and,
        when no account could be valued, ``nothing_valued``.
    ltv : DataFrame
        As :attr:`LtvAnalysis.ltv` (:func:`account_ltv` columns plus labels
        and ``value_at_risk``, sorted by descending ``ltv``).
    basis : str
        ``"gross_profit"``, ``"assumed_margin"`` or ``"revenue"`` (:func:`ltv_basis`).
    assumed_gross_margin : float or None
        The margin behind ``"assumed_margin"``.
    not_valued : str or None
        Why no account could be valued (every row then has ``model == "none"``);
        None when the models valued some account.
    """

    settings: LtvSettings
    models: LtvModels
    ltv: pd.DataFrame
    basis: str
    assumed_gross_margin: float | None = None
    not_valued: str | None = None

    @property
    def valued(self) -> pd.DataFrame:
        """The rows of ``ltv`` with a value (model other than ``"none"``)."""
        return self.ltv[self.ltv["model"] != "none"]


@dataclass
class LtvAnalysis:
    """Results of :func:`ltv_analysis`.

    Attributes
    ----------
    settings : LtvSettings
    models : LtvModels
    ltv : DataFrame
        :func:`account_ltv` columns plus ``name`` and ``industry`` (when the
        accounts table has them), ``label`` (name, else account id) and
        ``value_at_risk`` (``ltv * churn_risk_12m``), sorted by descending ``ltv``.
    retention_observed : DataFrame
        :func:`retention_cohorts` by signing year.
    retention_fitted : DataFrame
        ``curve`` (``"sbg"``, ``"hazard_exec"``, ``"hazard_no_exec"``),
        ``month``, ``share``.
    renewal : DataFrame or None
        :func:`renewal_forecast` by fiscal quarter.
    backtest : BacktestResult or None
        At the latest cut-off (``as_of - holdout_months``).
    backtest_long : BacktestResult or None
        Over ``long_holdout_months`` (24) from ``as_of - long_holdout_months``,
        when the data have 12 months of history before that cut-off.
    rolling : DataFrame or None
        ``error_metrics`` of the ``all`` group per cut-off.
    notes : list of str
        Skipped analyses, fallbacks and model warnings (English).
    basis : str
        What the LTV measures: ``"gross_profit"``, ``"assumed_margin"``
        (revenue x ``assumed_gross_margin``) or ``"revenue"`` (no cost data).
    assumed_gross_margin : float or None
        The margin behind ``"assumed_margin"``.
    messages : list of LtvNote
        The notes with their locale keys (``ltv.note.<key>``) and values.
    """

    settings: LtvSettings
    models: LtvModels
    ltv: pd.DataFrame
    retention_observed: pd.DataFrame
    retention_fitted: pd.DataFrame
    renewal: pd.DataFrame | None = None
    backtest: BacktestResult | None = None
    rolling: pd.DataFrame | None = None
    backtest_long: BacktestResult | None = None
    notes: list[str] = field(default_factory=list)
    basis: str = "gross_profit"
    assumed_gross_margin: float | None = None
    messages: list[LtvNote] = field(default_factory=list)

    @property
    def valued(self) -> pd.DataFrame:
        """The rows of ``ltv`` with a value (model other than ``"none"``)."""
        return self.ltv[self.ltv["model"] != "none"]


def hazard_profiles(models: LtvModels, months: int) -> pd.DataFrame:
    """Survival of two reference accounts under the hazard model.

    Both have NPS 7 and 70 % utilisation; one has executive contact, the
    other not. Returns ``curve``, ``month``, ``share``; empty without a
    hazard model.
    """
    if models.hazard is None:
        return pd.DataFrame(columns=["curve", "month", "share"])
    hz = models.hazard
    prof = pd.DataFrame(0.0, index=["hazard_exec", "hazard_no_exec"], columns=list(hz.covariates))
    if "no_executive_contact" in prof.columns:
        prof.loc["hazard_no_exec", "no_executive_contact"] = 1.0
    surv = hz.survival_function(prof, int(months))
    long = surv.stack().rename("share").reset_index()
    long.columns = ["curve", "month", "share"]
    return long


@dataclass
class SpreadEstimates:
    """What the revenue histories and the churn model say about the spread of the book.

    Attributes
    ----------
    volatility : pandas.Series
        Annual persistent volatility of the revenue of each account with
        enough history of its own (index ``account_id``;
        :meth:`RevenueShocks.annual_volatility`); empty when the shock model
        could not be fitted.
    book_volatility : float
        The same for an account without enough history (the book's prior
        scale); NaN without a fit.
    market : dict
        :func:`~kam_analysis.ltv.shocks.market_factor` (empty without a fit).
    churn_shock : dict
        :func:`~kam_analysis.ltv.hazard.churn_period_shock` of the fitted hazard
        model (empty without one).
    months : int
        Months spanned by the longest run of quarters with revenue (0 without
        a fit).
    accounts : int
        Accounts with enough history for their own volatility.
    """

    volatility: pd.Series
    book_volatility: float = float("nan")
    market: dict[str, Any] = field(default_factory=dict)
    churn_shock: dict[str, Any] = field(default_factory=dict)
    months: int = 0
    accounts: int = 0


def spread_estimates(
    monthly: pd.DataFrame,
    *,
    as_of: Any,
    models: LtvModels | None,
    account_ids: Any,
    min_accounts: int = 30,
    min_months: int = 24,
) -> SpreadEstimates:
    """Per-account volatility, the market factor and the shared churn shock, from the data.

    Parameters
    ----------
    monthly : DataFrame
        ``account_id``, ``month``, ``revenue`` (the context's ``monthly``).
    as_of : date-like
    models : LtvModels or None
        The fitted LTV models (their hazard model gives the churn shock).
    account_ids : array-like
        Accounts to give a volatility (the book): those with enough history
        of their own get theirs.
    min_accounts, min_months : int
        The volatilities and the market factor are used only when at least
        ``min_accounts`` accounts have a run of consecutive quarters with
        revenue and the longest run spans ``min_months`` months: shorter
        histories cannot tell lasting changes from noise (a transactional
        book of occasional buyers gives annual volatilities above 100 %).
        ``months`` and ``accounts`` then say what there was.

    Returns
    -------
    SpreadEstimates
        Never raises because the data are too short: the parts that cannot
        be estimated are left empty (the scenario report then uses its
        fallbacks and says so).
    """
    hazard = models.hazard if models is not None else None
    churn_shock = dict(getattr(hazard, "period_shock_", {}) or {})
    try:
        shocks = RevenueShocks().fit(monthly, as_of=as_of)
    except TrajectoryInputError:
        return SpreadEstimates(pd.Series(dtype=float), churn_shock=churn_shock)
    months, accounts = int(shocks.params_["months"]), int(shocks.params_["n_accounts"])
    if accounts < min_accounts or months < min_months:
        return SpreadEstimates(
            pd.Series(dtype=float), churn_shock=churn_shock, months=months, accounts=accounts
        )
    ids = pd.Index(pd.Series(account_ids).astype(str))
    own = ids[ids.isin(shocks.accounts_.index)]
    return SpreadEstimates(
        volatility=shocks.annual_volatility(own),
        book_volatility=shocks.book_volatility,
        market=dict(shocks.market_),
        churn_shock=churn_shock,
        months=months,
        accounts=accounts,
    )


def value_accounts(
    ctx: Any,
    settings: LtvSettings | None = None,
    *,
    assumed_gross_margin: float | None = None,
) -> LtvValues:
    """Fit the LTV models once and value every account: the valuation step of the LTV report.

    Parameters
    ----------
    ctx : kam_analysis.context.AnalysisContext
        Dataset, as-of date and configuration (``ctx.features``, ``ctx.monthly``,
        ``ctx.frame(...)``, ``ctx.config.features.period``: the unit of the
        features' purchase summary, passed to the models as ``purchase_period``).
    settings : LtvSettings, optional
        Default ``ctx.config.ltv`` (the ``[ltv]`` section of ``kam.toml``).
    assumed_gross_margin : float, optional
        Without cost data, value revenue x this margin; default
        ``ctx.config.data.assumed_gross_margin`` when the configuration has it.

    Returns
    -------
    LtvValues
        Never raises because no account can be valued: every row is then
        unvalued (:func:`unvalued_ltv`), with the reason in ``not_valued`` and
        a ``nothing_valued`` note.
    """
    settings = settings or ctx.config.ltv
    margin_setting = _margin_setting(ctx, assumed_gross_margin)
    period = ctx.config.features.period
    frames = _ltv_frames(ctx)
    models = fit_ltv_models(
        ctx.features,
        as_of=ctx.as_of,
        monthly=ctx.monthly,
        settings=settings,
        purchase_period=period,
        **frames,
    )
    basis, margin = ltv_basis(
        ctx.features,
        assumed_gross_margin=margin_setting,
        portfolio_margin=models.portfolio_margin,
    )
    _note_basis(models, basis, margin)
    not_valued = None
    try:
        ltv = account_ltv(
            ctx.features,
            as_of=ctx.as_of,
            contracts=frames["contracts"],
            settings=settings,
            models=models,
            purchase_period=period,
            assumed_gross_margin=margin_setting,
            monthly=ctx.monthly,
        )
    except LtvInputError as err:
        ltv, not_valued = unvalued_ltv(ctx.features, basis), str(err)
        models.note("nothing_valued", f"no account could be valued: {err}", reason=not_valued)
    return LtvValues(
        settings=settings,
        models=models,
        ltv=_with_labels(ltv, ctx.frame("accounts")),
        basis=basis,
        assumed_gross_margin=margin,
        not_valued=not_valued,
    )


def ltv_analysis(
    ctx: Any,
    settings: LtvSettings | None = None,
    *,
    values: LtvValues | None = None,
    holdout_months: int = 12,
    n_origins: int = 3,
    step_months: int = 6,
    renewal_months: int = 12,
    assumed_gross_margin: float | None = None,
    long_holdout_months: int | None = 24,
) -> LtvAnalysis:
    """Run the LTV report's computations on an analysis context.

    Parameters
    ----------
    ctx : kam_analysis.context.AnalysisContext
        Dataset, as-of date, configuration (``ctx.features``,
        ``ctx.monthly``, ``ctx.frame(...)``, ``ctx.dataset.table(...)``).
    settings : LtvSettings, optional
        Default ``values.settings`` when ``values`` is given, else ``ctx.config.ltv``.
    values : LtvValues, optional
        The valuation step already done (:func:`value_accounts` on ``ctx``
        with the same settings and margin); computed here when omitted.
        Its models and table are reused, not refitted.
    holdout_months : int
        Length of the backtest holdout.
    n_origins, step_months : int
        Rolling-origin backtest: number of cut-offs and months between them.
    renewal_months : int
        Renewal forecast horizon.
    assumed_gross_margin : float, optional
        Without cost data, value revenue x this margin; default
        ``ctx.config.data.assumed_gross_margin`` when the configuration has it.
    long_holdout_months : int or None
        A second backtest over this many months (one cut-off); None to skip.

    Returns
    -------
    LtvAnalysis
        Never raises because a model cannot be fitted or no account can be
        valued; those cases are in ``notes`` and ``messages``.

    Raises
    ------
    ValueError
        When ``settings`` and ``values.settings`` differ.
    """
    if values is None:
        values = value_accounts(ctx, settings, assumed_gross_margin=assumed_gross_margin)
    elif settings is not None and settings != values.settings:
        raise ValueError("settings differ from the settings the values were computed with")
    settings, models = values.settings, values.models
    frames = _ltv_frames(ctx)
    observed, fitted_df = _retention_curves(models, ctx.as_of)
    renewal = _renewal(ctx, frames["contracts"], models, values.ltv, settings, renewal_months)
    data, bt_notes = _backtest_data(ctx, frames, settings)
    results, cut_notes = _backtests(
        ctx,
        data,
        settings,
        period=ctx.config.features.period,
        holdout_months=holdout_months,
        n_origins=n_origins,
        step_months=step_months,
        assumed_gross_margin=_margin_setting(ctx, assumed_gross_margin),
    )
    bt_notes = [*bt_notes, *cut_notes]
    long_results: list[BacktestResult] = []
    if long_holdout_months and long_holdout_months != holdout_months:
        long_results, long_notes = _backtests(
            ctx,
            data,
            settings,
            period=ctx.config.features.period,
            holdout_months=long_holdout_months,
            n_origins=1,
            step_months=step_months,
            assumed_gross_margin=_margin_setting(ctx, assumed_gross_margin),
        )
        bt_notes = [*bt_notes, *long_notes]
    rolling = None
    if results:
        rolling = pd.concat(
            [r.metrics[r.metrics["group"] == "all"] for r in results], ignore_index=True
        )
    messages = _unique_messages([*models.messages, *bt_notes])
    return LtvAnalysis(
        settings=settings,
        models=models,
        ltv=values.ltv,
        retention_observed=observed,
        retention_fitted=fitted_df,
        renewal=renewal,
        backtest=results[0] if results else None,
        rolling=rolling,
        backtest_long=long_results[0] if long_results else None,
        notes=[m.text for m in messages],
        basis=values.basis,
        assumed_gross_margin=values.assumed_gross_margin,
        messages=messages,
    )


def _margin_setting(ctx: Any, assumed_gross_margin: float | None) -> float | None:
    """The margin to assume without cost data: the argument, else ``[data] assumed_gross_margin``."""
    if assumed_gross_margin is not None:
        return assumed_gross_margin
    return getattr(ctx.config.data, "assumed_gross_margin", None)


def _ltv_frames(ctx: Any) -> dict[str, pd.DataFrame | None]:
    """The contract-level tables the LTV models read (None where absent).

    As the KPIs read them (``ctx.kpi_tables()``): the churn model counts
    executive meetings only, so the activity log is not loaded whole.
    """
    tables = ctx.kpi_tables()
    return {t: tables[t] for t in ("contracts", "surveys", "activities", "usage")}


def unvalued_ltv(features: pd.DataFrame, basis: str) -> pd.DataFrame:
    """An :func:`~kam_analysis.ltv.value.account_ltv` table in which no account is valued.

    Every row has ``model == "none"`` and NaN values; ``basis`` as given.
    """
    out = pd.DataFrame({"account_id": features["account_id"].astype(str).to_numpy()})
    out["model"] = "none"
    for col in LTV_COLUMNS[2:]:
        out[col] = np.nan
    out["basis"] = basis
    return out[list(LTV_COLUMNS)]


def _note_basis(models: LtvModels, basis: str, margin: float | None) -> None:
    if basis == "revenue":
        models.note(
            "basis_revenue",
            "no cost data: gross profit and margin are unknown, so the LTV is expected "
            "revenue, not gross profit (set [data] assumed_gross_margin to value profit)",
        )
    elif basis == "assumed_margin":
        models.note(
            "basis_assumed_margin",
            f"no cost data: the LTV is expected revenue x an assumed gross margin of "
            f"{100 * float(margin):.1f} %",
            margin=float(margin),
        )


def _unique_messages(messages: list[LtvNote]) -> list[LtvNote]:
    seen: set[str] = set()
    out = []
    for m in messages:
        if m.text not in seen:
            seen.add(m.text)
            out.append(m)
    return out


def _with_labels(ltv: pd.DataFrame, accounts: pd.DataFrame | None) -> pd.DataFrame:
    """Add ``name``/``industry`` (when known), ``label`` and ``value_at_risk``; sort by LTV."""
    if accounts is not None:
        keep = [c for c in ("account_id", "name", "industry") if c in accounts.columns]
        ltv = ltv.merge(accounts[keep].astype({"account_id": str}), on="account_id", how="left")
    label = ltv["account_id"].astype(str)
    if "name" in ltv.columns:
        label = ltv["name"].astype(object).where(ltv["name"].notna(), label).astype(str)
    ltv["label"] = label
    ltv["value_at_risk"] = ltv["ltv"] * ltv["churn_risk_12m"]
    return ltv.sort_values(
        "ltv", ascending=False, kind="stable", na_position="last", ignore_index=True
    )


def _retention_curves(models: LtvModels, as_of: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    observed = pd.DataFrame(columns=["cohort", "month", "share"])
    fitted = []
    if models.covariates is not None:
        observed = retention_cohorts(models.covariates, as_of=as_of, cohort="year")
    horizon = int(observed["month"].max()) if len(observed) else 36
    if models.sbg is not None:
        m = np.arange(horizon + 1)
        fitted.append(
            pd.DataFrame({"curve": "sbg", "month": m, "share": models.sbg.survival_function(m)})
        )
    fitted.append(hazard_profiles(models, horizon))
    fitted_df = (
        pd.concat([f for f in fitted if len(f)], ignore_index=True)
        if any(len(f) for f in fitted)
        else pd.DataFrame(columns=["curve", "month", "share"])
    )
    return observed, fitted_df


def _renewal(
    ctx: Any,
    contracts: pd.DataFrame | None,
    models: LtvModels,
    ltv: pd.DataFrame,
    settings: LtvSettings,
    renewal_months: int,
) -> pd.DataFrame | None:
    if contracts is None:
        return None
    due = contracts_due(
        contracts,
        as_of=ctx.as_of,
        horizon_months=renewal_months,
        fiscal_year_start_month=ctx.config.data.fiscal_year_start_month,
    )
    if models.hazard is not None:
        p, p_draws = renewal_probabilities(
            due, models.hazard, models.covariates, draws=settings.draws, seed=settings.seed
        )
    else:
        h = ltv.set_index("account_id")["monthly_churn"].reindex(due["account_id"]).to_numpy()
        h = np.nan_to_num(
            h,
            nan=float(np.nanmean(ltv["monthly_churn"]))
            if ltv["monthly_churn"].notna().any()
            else 0.0,
        )
        p, p_draws = (1 - h) ** due["months_to_end"].to_numpy(), None
    return renewal_forecast(
        due,
        p,
        p_draws=p_draws,
        draws=settings.draws,
        level=settings.interval_level,
        seed=settings.seed,
    )


@dataclass(frozen=True)
class _BacktestData:
    """What every backtest cut-off reads: the tables, sampled on a large book."""

    transactions: Any
    accounts: Any
    fx_rates: Any
    frames: dict[str, pd.DataFrame | None]
    weights: pd.Series | None = None


def _backtest_data(
    ctx: Any, frames: dict[str, pd.DataFrame | None], settings: LtvSettings
) -> tuple[_BacktestData, list[LtvNote]]:
    """The backtests' tables: the whole book, or ``[ltv] backtest_max_accounts`` of it.

    A sample (:func:`~kam_analysis.ltv.backtest.backtest_sample`: the largest
    accounts by revenue in the last 12 months, and a random draw of the others
    weighted to stand for them all) has its lines copied once into a table of
    the engine (``Table.cache``), which every cut-off then reads instead of the
    whole line table. The note says how many accounts were sampled.
    """
    tx, acc_t = ctx.dataset.table("transactions"), ctx.dataset.table("accounts")
    fx = ctx.dataset.table("fx_rates") if ctx.has("fx_rates") else None
    book = ctx.features
    weights = backtest_sample(
        book["account_id"],
        settings.backtest_max_accounts,
        size=book["revenue_12m"] if "revenue_12m" in book else None,
        seed=settings.seed,
    )
    if weights is None:
        return _BacktestData(tx, acc_t, fx, frames), []
    sample = list(weights.index)
    data = _BacktestData(
        only_accounts(tx, sample).cache(),
        only_accounts(acc_t, sample).cache(),
        fx,
        {name: only_accounts(frame, sample) for name, frame in frames.items()},
        weights,
    )
    note = LtvNote(
        "backtest_sampled",
        {"n": len(sample), "total": len(book)},
        f"the backtests refit the models on a fixed sample of {len(sample):,} of the "
        f"{len(book):,} accounts, weighted to stand for the book ([ltv] backtest_max_accounts)",
    )
    return data, [note]


def _backtests(
    ctx: Any,
    data: _BacktestData,
    settings: LtvSettings,
    *,
    period: str,
    holdout_months: int,
    n_origins: int,
    step_months: int,
    assumed_gross_margin: float | None,
) -> tuple[list[BacktestResult], list[LtvNote]]:
    """Backtests at the rolling cut-offs; a cut-off that cannot be run is a note."""
    bt_settings = settings.model_copy(
        update={
            "draws": min(settings.draws, 300),
            "bootstrap_replicates": min(settings.bootstrap_replicates, 100),
            "bootstrap_max_seconds": min(settings.bootstrap_max_seconds, 30.0),
        }
    )
    start = pd.to_datetime(ctx.features["first_purchase"]).min()
    results: list[BacktestResult] = []
    notes: list[LtvNote] = []
    for cut in rolling_cutoffs(
        ctx.as_of, holdout_months=holdout_months, n_origins=n_origins, step_months=step_months
    ):
        if pd.isna(start) or cut < start + pd.DateOffset(months=12):
            notes.append(
                LtvNote(
                    "backtest_skipped",
                    {"cutoff": str(cut.date())},
                    f"backtest cut-off {cut.date()} skipped: less than 12 months of history "
                    "before it",
                )
            )
            continue
        try:
            results.append(
                backtest_ltv(
                    data.transactions,
                    data.accounts,
                    cutoff=cut,
                    holdout_months=holdout_months,
                    settings=bt_settings,
                    period=period,
                    fx_rates=data.fx_rates,
                    data_end=ctx.as_of,
                    assumed_gross_margin=assumed_gross_margin,
                    weights=data.weights,
                    **data.frames,
                )
            )
        except (BacktestInputError, ValueError, ArithmeticError, ConvergenceError) as err:
            notes.append(
                LtvNote(
                    "backtest_failed",
                    {"cutoff": str(cut.date()), "reason": str(err)},
                    f"backtest cut-off {cut.date()} failed: {err}",
                )
            )
    return results, notes

"""Everything the LTV report shows, computed from an analysis context in one call.

:func:`ltv_analysis` fits the models once as of the context's date, values
every account (:func:`~kam_analysis.ltv.value.account_ltv`), builds the
retention curves, the renewal forecast, and the backtest at the latest
cut-off plus a rolling-origin summary, so that the notebook only plots and
narrates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .backtest import BacktestInputError, BacktestResult, backtest_ltv, rolling_cutoffs
from .renewal import contracts_due, renewal_forecast, renewal_probabilities
from .value import LtvModels, LtvSettings, account_ltv, fit_ltv_models, retention_cohorts

__all__ = ["LtvAnalysis", "hazard_profiles", "ltv_analysis"]


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
    rolling : DataFrame or None
        ``error_metrics`` of the ``all`` group per cut-off.
    notes : list of str
        Skipped analyses and model warnings, for the report.
    """

    settings: LtvSettings
    models: LtvModels
    ltv: pd.DataFrame
    retention_observed: pd.DataFrame
    retention_fitted: pd.DataFrame
    renewal: pd.DataFrame | None = None
    backtest: BacktestResult | None = None
    rolling: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


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


def ltv_analysis(
    ctx: Any,
    settings: LtvSettings | None = None,
    *,
    holdout_months: int = 12,
    n_origins: int = 3,
    step_months: int = 6,
    renewal_months: int = 12,
) -> LtvAnalysis:
    """Run the LTV report's computations on an analysis context.

    Parameters
    ----------
    ctx : kam_analysis.context.AnalysisContext
        Dataset, as-of date, configuration (``ctx.features``,
        ``ctx.monthly``, ``ctx.frame(...)``, ``ctx.dataset.table(...)``).
    settings : LtvSettings, optional
    holdout_months : int
        Length of the backtest holdout.
    n_origins, step_months : int
        Rolling-origin backtest: number of cut-offs and months between them.
    renewal_months : int
        Renewal forecast horizon.

    Returns
    -------
    LtvAnalysis
    """
    settings = settings or LtvSettings()
    period = ctx.config.features.period
    frames = {t: ctx.frame(t) for t in ("contracts", "surveys", "activities", "usage")}
    notes: list[str] = []
    models = fit_ltv_models(
        ctx.features,
        as_of=ctx.as_of,
        monthly=ctx.monthly,
        settings=settings,
        purchase_period=period,
        **frames,
    )
    ltv = account_ltv(
        ctx.features,
        as_of=ctx.as_of,
        contracts=frames["contracts"],
        settings=settings,
        models=models,
        purchase_period=period,
    )
    accounts = ctx.frame("accounts")
    keep = [c for c in ("account_id", "name", "industry") if c in accounts.columns]
    ltv = ltv.merge(accounts[keep].astype({"account_id": str}), on="account_id", how="left")
    label = ltv["name"] if "name" in ltv.columns else pd.Series(np.nan, index=ltv.index)
    ltv["label"] = label.fillna(ltv["account_id"]).astype(str)
    ltv["value_at_risk"] = ltv["ltv"] * ltv["churn_risk_12m"]
    ltv = ltv.sort_values(
        "ltv", ascending=False, kind="stable", na_position="last", ignore_index=True
    )

    observed = pd.DataFrame(columns=["cohort", "month", "share"])
    fitted = []
    if models.covariates is not None:
        observed = retention_cohorts(models.covariates, as_of=ctx.as_of, cohort="year")
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

    renewal = None
    if frames["contracts"] is not None:
        due = contracts_due(
            frames["contracts"],
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
        renewal = renewal_forecast(
            due,
            p,
            p_draws=p_draws,
            draws=settings.draws,
            level=settings.interval_level,
            seed=settings.seed,
        )

    bt_settings = settings.model_copy(update={"draws": min(settings.draws, 300)})
    tx, acc_t = ctx.dataset.table("transactions"), ctx.dataset.table("accounts")
    fx = ctx.dataset.table("fx_rates") if ctx.has("fx_rates") else None
    start = pd.to_datetime(ctx.features["first_purchase"]).min()
    results: list[BacktestResult] = []
    for cut in rolling_cutoffs(
        ctx.as_of, holdout_months=holdout_months, n_origins=n_origins, step_months=step_months
    ):
        if pd.isna(start) or cut < start + pd.DateOffset(months=12):
            notes.append(
                f"backtest cut-off {cut.date()} skipped: less than 12 months of history before it"
            )
            continue
        try:
            results.append(
                backtest_ltv(
                    tx,
                    acc_t,
                    cutoff=cut,
                    holdout_months=holdout_months,
                    settings=bt_settings,
                    period=period,
                    fx_rates=fx,
                    data_end=ctx.as_of,
                    **frames,
                )
            )
        except (BacktestInputError, ValueError) as err:
            notes.append(f"backtest cut-off {cut.date()} failed: {err}")
    rolling = None
    if results:
        rolling = pd.concat(
            [r.metrics[r.metrics["group"] == "all"] for r in results], ignore_index=True
        )
    notes.extend(models.notes)
    return LtvAnalysis(
        settings=settings,
        models=models,
        ltv=ltv,
        retention_observed=observed,
        retention_fitted=fitted_df,
        renewal=renewal,
        backtest=results[0] if results else None,
        rolling=rolling,
        notes=list(dict.fromkeys(notes)),
    )

"""The account table a KAM team imports into its CRM (``kam export``).

:func:`account_export` builds one row per account from an
:class:`~kam_analysis.context.AnalysisContext` with the very numbers the
reports show: status, tier, score and value from ``ctx.scored`` (report 01/02
and the account plans), LTV and churn risk from ``ctx.ltv_values`` (report 03),
the health score from the KPI scorecard's own functions (report 05) and the
objective counts from ``ctx.objective_progress`` (report 05 and the plans).
Nothing is recomputed here; a value the data cannot give stays empty and the
``notes`` column says why (:data:`EXPORT_NOTES`), never a 0.

:func:`write_export` writes the table to ``.csv`` or ``.parquet`` atomically
(a temporary file renamed into place) and refuses to replace an existing file
unless asked. :data:`EXPORT_COLUMNS` documents every column; ``kam dictionary
--table export`` prints it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kam_analysis import kpi, objectives
from kam_analysis.context import AnalysisContext
from kam_analysis.core.errors import InputError

__all__ = [
    "EXPORT_COLUMNS",
    "EXPORT_FORMATS",
    "EXPORT_NOTES",
    "OBJECTIVE_COUNTS",
    "ExportColumn",
    "ExportError",
    "account_export",
    "account_health",
    "check_export_path",
    "export_dictionary",
    "export_format",
    "objective_counts",
    "write_export",
]

EXPORT_FORMATS: tuple[str, ...] = (".csv", ".parquet")
"""File extensions :func:`write_export` writes."""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportError(InputError, ValueError):
    """The export cannot be written as asked (bad file name, existing file)."""


@dataclass(frozen=True)
class ExportColumn:
    """One column of the export: its name, type, where it comes from and what it means."""

    name: str
    type: str
    source: str
    description: str


EXPORT_COLUMNS: tuple[ExportColumn, ...] = (
    ExportColumn("account_id", "text", "ctx.scored", "Account identifier (key)."),
    ExportColumn(
        "name", "text", "ctx.scored", "Account (company) name; the account_id when absent."
    ),
    ExportColumn("as_of", "date", "ctx.as_of", "Analysis date of every number in the row."),
    ExportColumn(
        "currency", "text", "[data] base_currency", "Currency of every amount in the row."
    ),
    ExportColumn(
        "status",
        "text",
        "ctx.scored (status.account_status)",
        "active, lapsed (no purchase in [segmentation] lapse_months) or churned (contracts).",
    ),
    ExportColumn(
        "tier",
        "text",
        "ctx.scored (segmentation.assign_tiers)",
        "key, growth or standard; lapsed and churned accounts are never key or growth.",
    ),
    ExportColumn(
        "tier_reason",
        "text",
        "ctx.scored (segmentation.assign_tiers)",
        "The tier rule that fired, with the account's values (in --lang).",
    ),
    ExportColumn(
        "attractiveness",
        "number",
        "ctx.scored (valuation.customer_attractiveness)",
        "The customer's own attractiveness 0-100 ([valuation] attractiveness_weights: size, "
        "growth, strategic value; our revenue, gross profit and share of wallet left out): what "
        "the tier thresholds read, as percentile ranks among the active accounts by default.",
    ),
    ExportColumn(
        "score",
        "number",
        "ctx.scored (valuation.attractiveness_score)",
        "Account value score 0-100 from all weighted criteria ([valuation] weights); "
        "the key-account capacity goes to the highest score among the eligible.",
    ),
    ExportColumn("rank", "integer", "ctx.scored", "Rank by score, 1 = most attractive."),
    ExportColumn(
        "win_back",
        "boolean",
        "ctx.scored (segmentation.win_back)",
        "A valuable lapsed or churned account worth winning back.",
    ),
    ExportColumn(
        "win_back_reason",
        "text",
        "ctx.scored (segmentation.win_back)",
        "Why the account is on the win-back list; empty when it is not.",
    ),
    ExportColumn(
        "revenue_12m",
        "amount",
        "ctx.scored (valuation.current_value)",
        "Revenue of the trailing 12 months up to as_of.",
    ),
    ExportColumn(
        "gross_profit_12m",
        "amount",
        "ctx.scored (valuation.current_value)",
        "Gross profit of the trailing 12 months; empty without cost data "
        "(note no_cost_data), revenue x [data] assumed_gross_margin when set "
        "(note gross_profit_assumed).",
    ),
    ExportColumn(
        "share_of_wallet",
        "ratio",
        "ctx.scored (valuation.potential_value)",
        "revenue_12m / wallet_estimate (0.25 = 25 %); empty without a wallet estimate "
        "(note no_wallet_estimate).",
    ),
    ExportColumn(
        "ltv",
        "amount",
        "ctx.ltv_values (ltv.account_ltv), as report 03",
        "Expected discounted lifetime value over [ltv] horizon_years, in ltv_basis; "
        "0 for a churned account; empty when no model could value it (note ltv_not_valued).",
    ),
    ExportColumn(
        "ltv_lower",
        "amount",
        "ctx.ltv_values",
        "Lower end of the LTV interval ([ltv] quantiles, P10 by default).",
    ),
    ExportColumn(
        "ltv_upper",
        "amount",
        "ctx.ltv_values",
        "Upper end of the LTV interval ([ltv] quantiles, P90 by default).",
    ),
    ExportColumn(
        "ltv_model",
        "text",
        "ctx.ltv_values",
        "Model behind the LTV: contractual_hazard, contractual_sbg, transactional_bgnbd, "
        "transactional_pnbd, churned or none.",
    ),
    ExportColumn(
        "ltv_basis",
        "text",
        "ctx.ltv_values",
        "What ltv measures: gross_profit, assumed_margin (revenue x the assumed margin) "
        "or revenue (no cost data).",
    ),
    ExportColumn(
        "churn_risk_12m",
        "ratio",
        "ctx.ltv_values (ltv.account_ltv), as report 03",
        "Contract accounts: probability of churning within 12 months (hazard model); "
        "transactional accounts: probability of being already inactive (1 - p_alive). "
        "Empty for churned and unvalued accounts.",
    ),
    ExportColumn(
        "health_score",
        "number",
        "kpi.balanced_scorecard with the kpi.validate_health weights, as report 05",
        "KPI health 0-100 of the latest KPI period (health_period), family weights fitted "
        "to churn when the data allow; empty when no KPI has data (note no_kpi_data).",
    ),
    ExportColumn("health_period", "text", "kpi.balanced_scorecard", "KPI period of health_score."),
    *(
        ExportColumn(
            f"objectives_{status}",
            "integer",
            "ctx.objective_progress (objectives.plan_attainment), as report 05 and the plans",
            f"The account's objectives assessed {text} (account_objectives, [objectives] rules); "
            "0 for an account without objectives; empty when the dataset has no "
            "account_objectives table (note no_objectives_table).",
        )
        for status, text in (
            ("on_track", "on track: progress within tolerance of the straight line to target"),
            ("at_risk", "at risk: behind the straight line to target by more than the tolerance"),
            ("missed", "missed: past the due date short of target"),
            ("achieved", "achieved: target reached, or done"),
        )
    ),
    ExportColumn(
        "notes",
        "text",
        "this table",
        "Why a value is empty or assumed: codes separated by '; ' (see EXPORT_NOTES).",
    ),
)
"""Every column of :func:`account_export`, in order, with its source and meaning."""

EXPORT_NOTES: dict[str, str] = {
    "no_cost_data": "no cost data: gross_profit_12m is empty",
    "gross_profit_assumed": "gross_profit_12m is revenue x [data] assumed_gross_margin",
    "no_wallet_estimate": "no wallet estimate: share_of_wallet is empty",
    "ltv_not_valued": "no LTV model could value the account: ltv and churn_risk_12m are empty",
    "ltv_churned": "the account has churned: ltv is 0, churn_risk_12m is empty",
    "no_kpi_data": "no KPI has data for the account: health_score is empty",
    "no_objectives_table": "the dataset has no account_objectives table: "
    "the objectives_* columns are empty",
}
"""The codes of the ``notes`` column and what they mean."""

_SCORED = (
    "account_id",
    "name",
    "status",
    "tier",
    "tier_reason",
    "attractiveness",
    "score",
    "rank",
    "win_back",
    "win_back_reason",
    "revenue_12m",
    "gross_profit_12m",
    "share_of_wallet",
)
_LTV = {
    "ltv": "ltv",
    "ltv_lower": "ltv_lower",
    "ltv_upper": "ltv_upper",
    "model": "ltv_model",
    "basis": "ltv_basis",
    "churn_risk_12m": "churn_risk_12m",
}


def account_health(ctx: AnalysisContext) -> pd.DataFrame:
    """Each account's KPI health score, computed as the KPI scorecard report computes it.

    The steps of report 05 (``notebooks/05_kpi_scorecard.ipynb``):
    :func:`kam_analysis.kpi.compute_kpis` on ``ctx.monthly_lines`` and the
    optional tables, with ``ctx.kpi_settings`` (``[kpi]`` with the fiscal
    year of ``[data]``) and ``[segmentation] lapse_months``; the family
    weights of ``ctx.health_validation`` (fitted to churn, else the
    configured ones; computed once per run); :func:`kam_analysis.kpi.balanced_scorecard`
    with those weights at the latest period.

    Parameters
    ----------
    ctx : AnalysisContext

    Returns
    -------
    pandas.DataFrame
        ``account_id`` (str), ``health_period`` (str), ``health_score``
        (0-100, NaN when no KPI has data); one row per account the KPIs cover.
    """
    result = kpi.compute_kpis(
        ctx.monthly_lines,
        ctx.frame("accounts"),
        **ctx.kpi_tables(),
        as_of=ctx.as_of,
        settings=ctx.kpi_settings,
        lapse_months=ctx.config.segmentation.lapse_months,
    )
    validation = ctx.health_validation
    card = kpi.balanced_scorecard(result, family_weights=validation.weights)
    period = card["period"] if "period" in card.columns else pd.Series(pd.NA, index=card.index)
    return pd.DataFrame(
        {
            "account_id": card["account_id"].astype(str).to_numpy(),
            "health_period": period.astype("string").to_numpy(),
            "health_score": card["health_score"].to_numpy(dtype=float),
        }
    )


OBJECTIVE_COUNTS: tuple[str, ...] = ("on_track", "at_risk", "missed", "achieved")
"""Assessed statuses counted in the ``objectives_<status>`` columns, in column order."""


def objective_counts(ctx: AnalysisContext, account_ids) -> pd.DataFrame:
    """Each account's objectives by assessed status, as the KPI scorecard counts them.

    :func:`kam_analysis.objectives.plan_attainment` of ``ctx.objective_progress``
    (measured once per context, the numbers of report 05 and the account plans).

    Parameters
    ----------
    ctx : AnalysisContext
    account_ids : sequence of str
        The accounts (0 objectives for those without any).

    Returns
    -------
    pandas.DataFrame
        ``account_id`` and ``objectives_<status>`` for :data:`OBJECTIVE_COUNTS`
        (nullable integers, all missing when the dataset has no
        ``account_objectives`` table).
    """
    ids = [str(a) for a in account_ids]
    names = [f"objectives_{s}" for s in OBJECTIVE_COUNTS]
    progress = ctx.objective_progress
    if progress is None:
        empty = pd.Series(pd.NA, index=range(len(ids)), dtype="Int64")
        return pd.DataFrame({"account_id": ids, **dict.fromkeys(names, empty)})
    counts = objectives.plan_attainment(progress, ids)
    out = pd.DataFrame({"account_id": counts["account_id"].astype(str).to_numpy()})
    for status, name in zip(OBJECTIVE_COUNTS, names, strict=True):
        out[name] = pd.array(counts[status].to_numpy(), dtype="Int64")
    return out


def account_export(ctx: AnalysisContext) -> pd.DataFrame:
    """The CRM table: one row per scored account with the reports' numbers.

    Parameters
    ----------
    ctx : AnalysisContext
        Dataset, as-of date and configuration; its cached ``scored`` and
        ``ltv_values`` are used (and computed when not yet).

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`EXPORT_COLUMNS`, in that order, one row per row
        of ``ctx.scored`` (sorted by ``rank``, then ``account_id``). Values the
        data cannot give are missing and named in ``notes``.
    """
    scored = ctx.scored
    out = scored[list(_SCORED)].copy()
    out["account_id"] = out["account_id"].astype(str)
    out["name"] = out["name"].where(out["name"].notna(), out["account_id"])
    out["win_back"] = out["win_back"].fillna(False).astype(bool)
    out.insert(2, "as_of", ctx.as_of.isoformat())
    out.insert(3, "currency", ctx.config.data.base_currency)
    ltv = ctx.ltv_values.ltv[["account_id", *_LTV]].rename(columns=_LTV)
    out = out.merge(
        ltv.assign(account_id=ltv["account_id"].astype(str)), on="account_id", how="left"
    )
    out = out.merge(account_health(ctx), on="account_id", how="left")
    out = out.merge(objective_counts(ctx, out["account_id"]), on="account_id", how="left")
    assumed = (
        scored["gross_profit_assumed"].fillna(False).astype(bool).to_numpy()
        if "gross_profit_assumed" in scored.columns
        else np.zeros(len(out), dtype=bool)
    )
    out["notes"] = _notes(out, assumed)
    out = out.sort_values(["rank", "account_id"], kind="stable", na_position="last")
    return out[[c.name for c in EXPORT_COLUMNS]].reset_index(drop=True)


def _notes(table: pd.DataFrame, gross_profit_assumed: np.ndarray) -> list[str]:
    """The ``notes`` codes of each row (:data:`EXPORT_NOTES`), joined with ``"; "``."""
    flags = {
        "no_cost_data": table["gross_profit_12m"].isna().to_numpy(),
        "gross_profit_assumed": gross_profit_assumed & table["gross_profit_12m"].notna().to_numpy(),
        "no_wallet_estimate": table["share_of_wallet"].isna().to_numpy(),
        "ltv_not_valued": table["ltv"].isna().to_numpy(),
        "ltv_churned": (table["ltv_model"] == "churned").fillna(False).to_numpy(dtype=bool),
        "no_kpi_data": table["health_score"].isna().to_numpy(),
        "no_objectives_table": table["objectives_on_track"].isna().to_numpy(),
    }
    codes = [[code for code, hit in flags.items() if hit[i]] for i in range(len(table))]
    return ["; ".join(row) for row in codes]


def export_dictionary() -> pd.DataFrame:
    """The export's columns as a table, in the layout of ``kam dictionary``.

    Returns
    -------
    pandas.DataFrame
        ``table`` (``"export"``), ``column``, ``type``, ``source``,
        ``description``; one row per column of :data:`EXPORT_COLUMNS`, then
        one per ``notes`` code (column ``notes:<code>``).
    """
    rows = [
        {
            "table": "export",
            "column": c.name,
            "type": c.type,
            "source": c.source,
            "description": c.description,
        }
        for c in EXPORT_COLUMNS
    ]
    rows += [
        {
            "table": "export",
            "column": f"notes:{code}",
            "type": "code",
            "source": "notes",
            "description": text,
        }
        for code, text in EXPORT_NOTES.items()
    ]
    return pd.DataFrame(rows)


def export_format(path: str | Path, *, excel: bool = False) -> str:
    """The file format of an export path: ``".csv"`` or ``".parquet"``.

    Parameters
    ----------
    path : str or Path
        The ``--out`` file.
    excel : bool
        UTF-8 with BOM for Excel; only for ``.csv``.

    Returns
    -------
    str
        The lower-case extension.

    Raises
    ------
    ExportError
        For another extension, or ``excel`` with Parquet.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise ExportError(
            f"--out {path}: cannot write {suffix or 'a file without extension'}; "
            f"name the file .csv or .parquet"
        )
    if excel and suffix != ".csv":
        raise ExportError(f"--out {path}: --excel writes CSV (UTF-8 with BOM); name the file .csv")
    return suffix


def check_export_path(path: str | Path, *, excel: bool = False, force: bool = False) -> Path:
    """Refuse an ``--out`` that cannot or must not be written, before any work is done.

    Parameters
    ----------
    path : str or Path
    excel, force : bool
        As for :func:`write_export`.

    Returns
    -------
    Path

    Raises
    ------
    ExportError
        A bad extension (:func:`export_format`), a folder, or an existing file
        without ``force``.
    """
    out = Path(path)
    export_format(out, excel=excel)
    if out.is_dir():
        raise ExportError(f"--out {out} is a folder; name a .csv or .parquet file")
    if out.exists() and not force:
        raise ExportError(f"--out {out} exists; pass --force to replace it")
    return out


def write_export(
    table: pd.DataFrame, path: str | Path, *, excel: bool = False, force: bool = False
) -> Path:
    """Write the export atomically: a temporary file in the same folder, renamed into place.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`account_export` output.
    path : str or Path
        ``.csv`` (UTF-8) or ``.parquet``; missing folders are created.
    excel : bool
        CSV in UTF-8 with BOM, so that Excel shows Japanese names, and text
        starting with ``= + - @`` prefixed with ``'`` so that Excel never runs
        it as a formula.
    force : bool
        Replace an existing file.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ExportError
        A bad extension, or an existing file without ``force`` (nothing written).
    """
    out = Path(path)
    suffix = export_format(out, excel=excel)
    check_export_path(out, excel=excel, force=force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        if suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            frame = _excel_safe(table) if excel else table
            frame.to_csv(tmp, index=False, encoding="utf-8-sig" if excel else "utf-8")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _excel_safe(table: pd.DataFrame) -> pd.DataFrame:
    """Text cells that Excel would read as a formula, prefixed with ``'`` (OWASP CSV injection)."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            values = out[col]
            risky = values.astype("string").str.startswith(_FORMULA_START).fillna(False)
            out[col] = values.where(~risky.to_numpy(), "'" + values.astype("string"))
    return out

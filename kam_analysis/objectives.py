"""Account plans you can manage by: objectives against target, our team, the next review.

The KAM guide's steps 4 and 5 run the relationship: objectives with owners
on a 3-5-year roadmap, reviewed regularly, and an account team (with an
executive sponsor on our side) that covers the customer's decision-makers.
This module measures that from the optional tables ``account_objectives``
and ``account_team`` of the contract:

* :func:`measured_values` — the current value of every measurable metric
  (:data:`~kam_analysis.core.schemas.OBJECTIVE_METRICS`) per account, from the
  feature table and the KPI table;
* :func:`expected_progress` and :func:`objective_progress` — progress
  ``(current - baseline) / (target - baseline)`` against the straight-line
  path ``elapsed / (due - start)``, and an assessed status per objective
  (:data:`ASSESSED_STATUSES`);
* :func:`plan_attainment` — objectives achieved, on track, at risk and
  missed per account (the KPI scorecard and ``kam export``);
* :func:`fiscal_year_end` and :func:`fiscal_year_plans` — per account, the
  objective counts and the fiscal year's revenue forecast against the
  straight-line path of its revenue objective (the KPI scorecard);
* :func:`team_coverage` and :func:`team_flags` — who on our side covers which
  of their decision-maker roles (:data:`COVERAGE_MAP`), and the gaps;
* :func:`next_review` — the next account review from the governance cadence
  (``[stakeholders] governance_plan``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from kam_analysis.core.schemas import OBJECTIVE_METRICS, ROLES, TEAM_ROLES

__all__ = [
    "ASSESSED_STATUSES",
    "COVERAGE_MAP",
    "FEATURE_METRICS",
    "FISCAL_PLAN_COLUMNS",
    "PROGRESS_COLUMNS",
    "NextReview",
    "ObjectiveSettings",
    "active_team",
    "expected_progress",
    "fiscal_year_end",
    "fiscal_year_plans",
    "measured_values",
    "next_review",
    "objective_progress",
    "plan_attainment",
    "team_coverage",
    "team_flags",
    "team_members",
]

ASSESSED_STATUSES = ("achieved", "on_track", "at_risk", "missed", "planned", "dropped", "no_data")
"""Assessed status of an objective, in display order (see :func:`objective_progress`)."""

FEATURE_METRICS = ("revenue_12m", "gross_profit_12m")
"""Metrics read from the feature table (the others are KPI ids)."""

PROGRESS_COLUMNS = (
    "account_id",
    "objective_id",
    "objective",
    "owner",
    "metric",
    "baseline_value",
    "target_value",
    "current_value",
    "start_date",
    "due_date",
    "status",
    "measured",
    "progress",
    "expected",
    "behind",
    "assessed",
)
"""Columns of :func:`objective_progress`."""

COVERAGE_MAP: dict[str, tuple[str, ...]] = {
    "executive": ("executive_sponsor", "account_lead"),
    "procurement": ("account_lead",),
    "finance": ("account_lead",),
    "legal": ("account_lead",),
    "business": ("account_lead", "delivery"),
    "it": ("solution_architect", "delivery", "support"),
}
"""Their decision-maker role -> our roles that cover it, the preferred one first."""


class ObjectiveSettings(BaseModel):
    """Rules of objective tracking (composable into ``kam.toml`` as ``[objectives]``).

    Attributes
    ----------
    tolerance : float
        An objective is behind when its progress is below the straight-line
        path minus this (0.10 = ten points of the way to target).
    review_kind : str
        Activity kind whose planned yearly count sets the review cadence.
    exec_window_days : int
        Their executives count as met when one of ours met them this recently.
    """

    model_config = ConfigDict(extra="forbid")

    tolerance: float = Field(0.10, ge=0, le=1)
    review_kind: str = "qbr"
    exec_window_days: int = Field(365, ge=1)


# --------------------------------------------------------------------------- progress


def expected_progress(start, due, as_of) -> float:
    """Share of the way from ``start`` to ``due`` elapsed at ``as_of`` (0-1).

    A straight line: 0 before the start, 1 from the due date; an objective
    due on its start day is 0 before and 1 from that day.
    """
    start, due, as_of = pd.Timestamp(start), pd.Timestamp(due), pd.Timestamp(as_of)
    if as_of >= due:
        return 1.0
    if as_of <= start:
        return 0.0
    return float((as_of - start) / (due - start))


def measured_values(
    accounts: pd.DataFrame | None = None, kpis: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Current value of every measurable metric per account.

    Parameters
    ----------
    accounts : pandas.DataFrame, optional
        Feature rows ``account_id`` plus any of :data:`FEATURE_METRICS` and
        ``share_of_wallet`` (e.g. ``ctx.scored``).
    kpis : pandas.DataFrame, optional
        KPI rows ``account_id, kpi_id, period, value`` (e.g.
        :func:`kam_analysis.kpi.assess_kpis`); the latest period per account
        and KPI is used. ``share_of_wallet`` from the features wins over the KPI's.

    Returns
    -------
    pandas.DataFrame
        ``account_id, metric, value`` (no row where the value is unknown).
    """
    parts = []
    if kpis is not None and len(kpis):
        k = kpis[kpis["kpi_id"].isin(OBJECTIVE_METRICS)].dropna(subset=["value"])
        k = k.sort_values("period").groupby(["account_id", "kpi_id"], as_index=False).last()
        parts.append(k.rename(columns={"kpi_id": "metric"})[["account_id", "metric", "value"]])
    if accounts is not None and len(accounts):
        cols = [c for c in (*FEATURE_METRICS, "share_of_wallet") if c in accounts.columns]
        long = accounts[["account_id", *cols]].melt(
            id_vars="account_id", var_name="metric", value_name="value"
        )
        parts.append(long.dropna(subset=["value"]))
    if not parts:
        return pd.DataFrame({"account_id": [], "metric": [], "value": []})
    out = pd.concat(parts[::-1], ignore_index=True)  # features first: they win
    out["account_id"] = out["account_id"].astype(str)
    out["value"] = out["value"].astype(float)
    return out.drop_duplicates(["account_id", "metric"]).reset_index(drop=True)


def _assess(row: Mapping, as_of: pd.Timestamp, tolerance: float) -> tuple[bool, str]:
    """(behind, assessed status) of one objective row with progress and expected."""
    status, progress = row["status"], row["progress"]
    started, overdue = as_of >= row["start_date"], as_of > row["due_date"]
    if status == "dropped":
        return False, "dropped"
    if row["measured"]:
        behind = bool(started and progress < row["expected"] - tolerance)
        if progress >= 1:
            return False, "achieved"
        if overdue:
            return True, "missed"
        if not started:
            return False, "planned"
        return behind, "at_risk" if behind else "on_track"
    if status == "done":
        return False, "achieved"
    if overdue:
        return True, "missed"
    if isinstance(status, str) and status in ASSESSED_STATUSES:
        return status == "at_risk", status
    return False, "no_data"


def objective_progress(
    objectives: pd.DataFrame,
    values: pd.DataFrame | None,
    as_of,
    *,
    settings: ObjectiveSettings | None = None,
) -> pd.DataFrame:
    """Progress of each objective against target and against its straight-line path.

    Parameters
    ----------
    objectives : pandas.DataFrame
        The ``account_objectives`` table.
    values : pandas.DataFrame or None
        :func:`measured_values` (``account_id, metric, value``).
    as_of : date-like
        The analysis date.
    settings : ObjectiveSettings, optional
        ``tolerance`` of the behind flag (default 0.10).

    Returns
    -------
    pandas.DataFrame
        :data:`PROGRESS_COLUMNS`, sorted by account and due date. ``measured``:
        the metric has a current value, a baseline and a target different
        from the baseline; then ``progress = (current - baseline) / (target -
        baseline)`` (1 = target reached; negative when the metric moved away),
        else ``progress`` is 1 for a ``done`` objective and empty otherwise.
        ``expected`` = :func:`expected_progress`. ``assessed``: ``dropped`` as
        declared; measured objectives are ``achieved`` at progress >= 1, else
        ``missed`` after the due date, ``planned`` before the start, ``at_risk``
        when progress < expected - tolerance (``behind``), else ``on_track``;
        unmeasured ones take their declared status (``done`` = ``achieved``),
        ``missed`` when overdue and not done, ``no_data`` without a status.
    """
    cfg = settings or ObjectiveSettings()
    as_of = pd.Timestamp(as_of)
    o = objectives.copy()
    for c in ("owner", "metric", "status", "baseline_value", "target_value"):
        if c not in o.columns:
            o[c] = None
    o["account_id"] = o["account_id"].astype(str)
    o["start_date"] = pd.to_datetime(o["start_date"])
    o["due_date"] = pd.to_datetime(o["due_date"])
    if values is not None and len(values):
        v = values.assign(account_id=values["account_id"].astype(str))
        o = o.merge(
            v.rename(columns={"value": "current_value"}), on=["account_id", "metric"], how="left"
        )
    else:
        o["current_value"] = np.nan
    base = pd.to_numeric(o["baseline_value"], errors="coerce")
    target = pd.to_numeric(o["target_value"], errors="coerce")
    span = target - base
    o["measured"] = o["current_value"].notna() & base.notna() & target.notna() & (span != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        progress = (o["current_value"] - base) / span
    o["progress"] = np.where(o["measured"], progress, np.where(o["status"] == "done", 1.0, np.nan))
    o["expected"] = [
        expected_progress(s, d, as_of) for s, d in zip(o["start_date"], o["due_date"], strict=True)
    ]
    assessed = [_assess(r, as_of, cfg.tolerance) for r in o.to_dict("records")]
    o["behind"] = [a[0] for a in assessed]
    o["assessed"] = [a[1] for a in assessed]
    o = o.sort_values(["account_id", "due_date", "objective_id"], kind="stable")
    return o[list(PROGRESS_COLUMNS)].reset_index(drop=True)


def plan_attainment(progress: pd.DataFrame, account_ids=None) -> pd.DataFrame:
    """Objectives per assessed status and account.

    Parameters
    ----------
    progress : pandas.DataFrame
        :func:`objective_progress`.
    account_ids : sequence of str, optional
        Accounts to report (0 objectives for those without any); default:
        the accounts in ``progress``.

    Returns
    -------
    pandas.DataFrame
        ``account_id``, one count column per :data:`ASSESSED_STATUSES`,
        ``n_objectives`` and ``attainment`` = (achieved + on track) / the
        objectives that count (not planned, dropped or without data); empty
        when none counts.
    """
    ids = [
        str(a)
        for a in (account_ids if account_ids is not None else progress["account_id"].unique())
    ]
    counts = (
        progress.assign(account_id=progress["account_id"].astype(str))
        .groupby(["account_id", "assessed"])
        .size()
        .unstack(fill_value=0)
        .reindex(index=ids, columns=list(ASSESSED_STATUSES), fill_value=0)
    )
    out = counts.reset_index()
    out["n_objectives"] = counts.sum(axis=1).to_numpy()
    good = counts["achieved"] + counts["on_track"]
    judged = good + counts["at_risk"] + counts["missed"]
    out["attainment"] = (good / judged.where(judged > 0)).to_numpy()
    return out


FISCAL_PLAN_COLUMNS = (
    "account_id",
    "achieved",
    "on_track",
    "at_risk",
    "missed",
    "n_objectives",
    "revenue_12m",
    "growth_annual",
    "growth_known",
    "forecast_fy",
    "planned_fy",
    "vs_plan",
    "target_value",
    "due_date",
)
"""Columns of :func:`fiscal_year_plans`."""


def fiscal_year_end(as_of, fiscal_year_start_month: int = 4) -> pd.Timestamp:
    """The last day of the fiscal year that contains ``as_of``.

    >>> fiscal_year_end("2026-03-31", 4).date(), fiscal_year_end("2026-04-01", 4).date()
    (datetime.date(2026, 3, 31), datetime.date(2027, 3, 31))
    """
    as_of = pd.Timestamp(as_of)
    year = as_of.year - int(as_of.month < fiscal_year_start_month)
    start = pd.Timestamp(year=year, month=fiscal_year_start_month, day=1)
    return start + pd.DateOffset(years=1) - pd.Timedelta(days=1)


def _revenue_objective(progress: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per account, the revenue objective the fiscal year is planned against.

    A ``revenue_12m`` objective with a target, not dropped and not yet due
    (the earliest due one when there are several).
    """
    p = progress[
        (progress["metric"] == "revenue_12m")
        & (progress["assessed"] != "dropped")
        & pd.to_numeric(progress["target_value"], errors="coerce").notna()
        & (pd.to_datetime(progress["due_date"]) >= as_of)
    ]
    p = p.sort_values(["account_id", "due_date", "objective_id"], kind="stable")
    return p.groupby("account_id", as_index=False).first()


def fiscal_year_plans(
    progress: pd.DataFrame,
    accounts: pd.DataFrame,
    account_ids,
    *,
    as_of,
    fiscal_year_start_month: int = 4,
    growth: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Plan attainment and the fiscal year's revenue forecast against plan, per account.

    Parameters
    ----------
    progress : pandas.DataFrame
        :func:`objective_progress`.
    accounts : pandas.DataFrame
        ``account_id, revenue_12m`` (e.g. ``ctx.scored``).
    account_ids : sequence of str
        The accounts reported, in order (e.g. the key accounts).
    as_of : date-like
    fiscal_year_start_month : int, default 4
    growth : pandas.DataFrame, optional
        ``account_id, growth_annual``: the LTV path's annual growth
        (``ctx.ltv_values.ltv``); missing: no growth (a flat forecast).

    Returns
    -------
    pandas.DataFrame
        :data:`FISCAL_PLAN_COLUMNS`, one row per account of ``account_ids``:
        the counts of :func:`plan_attainment`; ``forecast_fy`` = ``revenue_12m
        x (1 + growth_annual) ^ (years to the fiscal-year end)``, the revenue of
        the 12 months up to the fiscal-year end (the fiscal year) on the LTV
        path (``growth_known`` False: no growth estimate, grown by 0);
        ``planned_fy`` = baseline + (target - baseline) x
        :func:`expected_progress` at the fiscal-year end, the point of the
        revenue objective's straight line (a ``revenue_12m`` objective with
        a target, not dropped, not yet due; the earliest due) at the year end;
        ``vs_plan`` = forecast / planned - 1; ``target_value`` and
        ``due_date`` of that objective. Empty forecast-against-plan columns
        for an account without such an objective.
    """
    as_of = pd.Timestamp(as_of)
    ids = [str(a) for a in account_ids]
    end = fiscal_year_end(as_of, fiscal_year_start_month)
    counts = plan_attainment(progress, ids)
    out = counts[["account_id", "achieved", "on_track", "at_risk", "missed", "n_objectives"]]
    out = out.rename_axis(columns=None)
    acc = accounts.assign(account_id=accounts["account_id"].astype(str))
    revenue = acc.drop_duplicates("account_id").set_index("account_id")["revenue_12m"]
    out = out.assign(revenue_12m=revenue.reindex(ids).astype(float).to_numpy())
    g = pd.Series(np.nan, index=ids, dtype=float)
    if growth is not None and len(growth):
        gr = growth.assign(account_id=growth["account_id"].astype(str))
        g = gr.drop_duplicates("account_id").set_index("account_id")["growth_annual"]
        g = pd.to_numeric(g, errors="coerce").reindex(ids)
    out["growth_known"] = g.notna().to_numpy()
    out["growth_annual"] = g.fillna(0.0).to_numpy()
    years = max((end - as_of).days, 0) / 365.25
    out["forecast_fy"] = out["revenue_12m"] * (1.0 + out["growth_annual"]) ** years
    goal = _revenue_objective(progress.assign(account_id=progress["account_id"].astype(str)), as_of)
    goal = goal.set_index("account_id").reindex(ids)
    base = pd.to_numeric(goal["baseline_value"], errors="coerce")
    target = pd.to_numeric(goal["target_value"], errors="coerce")
    share = [
        expected_progress(s, d, end) if pd.notna(d) else np.nan
        for s, d in zip(goal["start_date"], goal["due_date"], strict=True)
    ]
    planned = base + (target - base) * np.asarray(share, dtype=float)
    out["planned_fy"] = planned.to_numpy()
    out["vs_plan"] = (out["forecast_fy"] / out["planned_fy"].where(out["planned_fy"] > 0)) - 1
    out["target_value"] = target.to_numpy()
    out["due_date"] = pd.to_datetime(goal["due_date"]).to_numpy()
    return out[list(FISCAL_PLAN_COLUMNS)].reset_index(drop=True)


# --------------------------------------------------------------------------- team


def active_team(team: pd.DataFrame, as_of) -> pd.DataFrame:
    """Rows of ``account_team`` active at ``as_of`` (started, not ended)."""
    as_of = pd.Timestamp(as_of)
    since = pd.to_datetime(team["since"]) if "since" in team.columns else None
    until = pd.to_datetime(team["until"]) if "until" in team.columns else None
    keep = pd.Series(True, index=team.index)
    if since is not None:
        keep &= since.isna() | (since <= as_of)
    if until is not None:
        keep &= until.isna() | (until >= as_of)
    return team[keep]


def team_members(team: pd.DataFrame, as_of) -> pd.DataFrame:
    """Active members of one account's team with their roles (in :data:`TEAM_ROLES` order).

    Returns
    -------
    pandas.DataFrame
        ``member, roles`` (comma-separated role ids) and ``since`` (earliest).
    """
    active = active_team(team, as_of)
    order = {r: i for i, r in enumerate(TEAM_ROLES)}
    active = active.assign(
        member=active["member"].astype(str),
        _o=active["role"].map(order),
        since=pd.to_datetime(active["since"]) if "since" in active.columns else pd.NaT,
    ).sort_values(["_o", "member"])
    out = active.groupby("member", sort=False).agg(
        roles=("role", lambda r: ", ".join(dict.fromkeys(r))), since=("since", "min")
    )
    return out.reset_index()


def team_coverage(team: pd.DataFrame, stakeholders: pd.DataFrame | None, as_of) -> pd.DataFrame:
    """Who on our side covers each of their decision-maker roles (one account).

    Parameters
    ----------
    team : pandas.DataFrame
        ``account_team`` rows of the account.
    stakeholders : pandas.DataFrame or None
        ``stakeholders`` rows of the account (``role``, ``influence``).
    as_of : date-like

    Returns
    -------
    pandas.DataFrame
        One row per their role of :data:`~kam_analysis.core.schemas.ROLES`
        that has contacts or a planned cover: ``their_role``, ``contacts``,
        ``decision_makers`` (influence >= 4), ``our_role`` (the first of
        :data:`COVERAGE_MAP` held by an active member; empty: uncovered),
        ``covered_by`` (the members holding it, comma-separated) and ``covered``.
    """
    active = active_team(team, as_of)
    by_role = active.groupby("role")["member"].agg(lambda m: ", ".join(sorted(set(map(str, m)))))
    rows = []
    for role in ROLES:
        people = stakeholders[stakeholders["role"] == role] if stakeholders is not None else None
        n = len(people) if people is not None else 0
        dm = int((people["influence"] >= 4).sum()) if people is not None and n else 0
        ours = next((r for r in COVERAGE_MAP[role] if r in by_role.index), None)
        rows.append(
            {
                "their_role": role,
                "contacts": n,
                "decision_makers": dm,
                "our_role": ours or "",
                "covered_by": by_role.get(ours, "") if ours else "",
                "covered": ours is not None,
            }
        )
    out = pd.DataFrame(rows)
    return out[out["contacts"] > 0].reset_index(drop=True)


def _executives_met(
    stakeholders: pd.DataFrame, activities: pd.DataFrame | None, as_of: pd.Timestamp, days: int
) -> tuple[int, int, str]:
    """(their executives, of them not met in ``days``, source of the evidence)."""
    execs = stakeholders[stakeholders["role"] == "executive"]
    since = as_of - pd.Timedelta(days=days)
    if (
        activities is not None
        and "contact_id" in activities.columns
        and activities["contact_id"].notna().any()
    ):
        d = pd.to_datetime(activities["date"])
        met = set(activities.loc[(d > since) & (d <= as_of), "contact_id"].dropna().astype(str))
        source = "activities"
    elif "last_contact_date" in execs.columns:
        last = pd.to_datetime(execs["last_contact_date"])
        met = set(execs.loc[last > since, "contact_id"].astype(str))
        source = "last_contact_date"
    else:
        return len(execs), 0, "none"
    return len(execs), int((~execs["contact_id"].astype(str).isin(met)).sum()), source


def team_flags(
    team: pd.DataFrame,
    stakeholders: pd.DataFrame | None,
    activities: pd.DataFrame | None,
    as_of,
    *,
    key_account: bool,
    settings: ObjectiveSettings | None = None,
) -> dict:
    """The team gaps of one account.

    Returns
    -------
    dict
        ``members`` (active, distinct), ``has_sponsor``, ``no_executive_sponsor``
        (a key account without an active executive sponsor of ours),
        ``one_person`` (one member holds every active role of a team that
        covers their contacts: at least two of their roles, or a key account),
        ``executives``, ``executives_not_met`` (their executives not met by us
        within ``exec_window_days``: a contact-tagged activity, else
        ``last_contact_date``), ``executives_never_met`` (flag) and
        ``met_source``.
    """
    cfg = settings or ObjectiveSettings()
    as_of = pd.Timestamp(as_of)
    active = active_team(team, as_of)
    members = active["member"].astype(str).nunique()
    has_sponsor = bool((active["role"] == "executive_sponsor").any())
    their_roles = stakeholders["role"].nunique() if stakeholders is not None else 0
    n_exec, not_met, source = (0, 0, "none")
    if stakeholders is not None and len(stakeholders):
        n_exec, not_met, source = _executives_met(
            stakeholders, activities, as_of, cfg.exec_window_days
        )
    return {
        "members": int(members),
        "has_sponsor": has_sponsor,
        "no_executive_sponsor": bool(key_account and not has_sponsor),
        "one_person": bool(members == 1 and (key_account or their_roles >= 2)),
        "executives": n_exec,
        "executives_not_met": not_met,
        "executives_never_met": bool(n_exec and not_met),
        "met_source": source,
    }


# --------------------------------------------------------------------------- cadence


@dataclass(frozen=True)
class NextReview:
    """The next account review from the governance cadence."""

    date: dt.date | None
    last: dt.date | None
    interval_months: int | None
    overdue: bool
    kind: str


def _planned_per_year(plan: Mapping, tier: str | None, kind: str) -> int | None:
    per_tier = bool(plan) and all(isinstance(v, Mapping) for v in plan.values())
    p = plan.get(tier, {}) if per_tier else plan
    n = p.get(kind) if isinstance(p, Mapping) else None
    return int(n) if n else None


def next_review(
    activities: pd.DataFrame | None,
    as_of,
    *,
    plan: Mapping,
    tier: str | None = None,
    kind: str = "qbr",
) -> NextReview:
    """Next review of one account: the last ``kind`` activity + 12 / planned per year months.

    Parameters
    ----------
    activities : pandas.DataFrame or None
        The account's activities (``date``, ``kind``).
    as_of : date-like
    plan : mapping
        ``[stakeholders] governance_plan``: touchpoints per year by kind, or
        per tier.
    tier : str, optional
        The account's tier (for a per-tier plan).
    kind : str
        The review activity kind (default ``qbr``).

    Returns
    -------
    NextReview
        ``date`` = last review + interval; the as-of date itself when that
        lies in the past (``overdue``) or no review is on record. ``date`` is
        None when the plan has no such review.
    """
    as_of = pd.Timestamp(as_of)
    n = _planned_per_year(plan, tier, kind)
    if not n:
        return NextReview(None, None, None, False, kind)
    months = max(1, round(12 / n))
    last = None
    if activities is not None and len(activities):
        d = pd.to_datetime(activities.loc[activities["kind"] == kind, "date"])
        d = d[d <= as_of]
        last = d.max() if len(d) else None
    if last is None or pd.isna(last):
        return NextReview(as_of.date(), None, months, True, kind)
    due = last.normalize() + pd.DateOffset(months=months)
    overdue = due < as_of
    return NextReview((as_of if overdue else due).date(), last.date(), months, bool(overdue), kind)

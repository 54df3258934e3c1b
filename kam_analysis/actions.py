"""Account plans: one key account on one page, and the actions its numbers suggest.

The seed guide ends each step with something to *do* for a key account:
secure an executive sponsor, map the decision makers, cross-sell into
whitespace, run co-creation PoCs with agreed success criteria, support
adoption so the customer stays, answer procurement's price pressure with
value rather than discounts, and avoid depending on a single account. This
module turns the numbers of one account into that list:

* :func:`suggest_actions` — rule-based suggested actions, each with the number
  that triggered it (English or Japanese text from the locale files,
  ``actions.<id>.do`` / ``actions.<id>.why``); the rules are listed in
  :data:`ACTION_IDS` in priority order and configured by :class:`ActionSettings`;
* small per-account tables for the plan: :func:`open_opportunities`,
  :func:`poc_summary`, :func:`survey_summary`, :func:`price_cut_table`,
  :func:`account_monthly`, :func:`product_line_view`, :func:`top_criteria`;
* :func:`account_plan_data` — everything the ``10_account_plan`` notebook shows,
  gathered from an :class:`~kam_analysis.context.AnalysisContext`, so the
  notebook stays thin.

Portfolio-relative figures (rank, portfolio quadrant, whitespace peers, KPI
health score) are computed on all accounts and then the account's row is
taken, so they agree with the portfolio reports.
"""

from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from kam_analysis import kpi as kpi_mod
from kam_analysis import objectives as objectives_mod
from kam_analysis import scenarios, stakeholders
from kam_analysis.core.errors import InputError
from kam_analysis.core.formatting import fmt_money, fmt_pct
from kam_analysis.core.i18n import label_for, t, translations
from kam_analysis.core.schemas import OPEN_STAGES, STANCE_SCORE
from kam_analysis.kpi import nps_score
from kam_analysis.scenarios import price_negotiation
from kam_analysis.valuation import ValuationSettings

__all__ = [
    "ACTION_COLUMNS",
    "ACTION_IDS",
    "AccountPlan",
    "AccountPlanError",
    "ActionSettings",
    "account_monthly",
    "account_plan_data",
    "criterion_label",
    "ltv_growth",
    "objective_table",
    "open_opportunities",
    "poc_summary",
    "price_cut_table",
    "product_line_view",
    "resolve_account_id",
    "suggest_actions",
    "survey_summary",
    "top_criteria",
]

ACTION_IDS: tuple[str, ...] = (
    "blocker",
    "executive_sponsor",
    "nps_recovery",
    "revenue_decline",
    "broaden_contacts",
    "review_cadence",
    "adoption",
    "poc_criteria",
    "cross_sell",
    "upsell_headroom",
    "protect_exposure",
    "price_defence",
    "reengage_stale",
    "second_champion",
)
"""Action rules in priority order (1 = most urgent); see :func:`suggest_actions`."""

ACTION_COLUMNS: tuple[str, ...] = ("action_id", "priority", "action", "evidence", "value")
"""Columns of :func:`suggest_actions`."""

_BELOW_TARGET = ("at_risk", "off_track")


class AccountPlanError(InputError, ValueError):
    """An account plan cannot be made as asked (unknown account, bad input)."""


class ActionSettings(BaseModel):
    """Rules of the suggested actions (to be composed into ``kam.toml`` as ``[actions]``).

    Attributes
    ----------
    max_actions : int
        Most actions listed in a plan (highest priority first).
    revenue_decline : float
        Revenue growth over the last 12 months (vs the 12 before) at or below
        which a decline review is suggested (-0.05 = -5 %).
    detractor_share : float
        Share of detractors (NPS answers 0-6) that triggers the NPS recovery
        action even when the NPS itself reaches its target.
    nps_min_responses : int
        Fewest survey answers in the window for an NPS-based action.
    survey_months : int
        Window of the account's survey answers (months up to the as-of date).
    cross_sell_max_lines : int
        Product lines named in the cross-sell action (largest whitespace first).
    upsell_max_share_of_wallet : float
        Without whitespace lines, a share of wallet below this (with headroom
        left) suggests growing the share in the lines already bought.
    exposure_share : float
        Losing the account costing at least this share of the book's expected
        gross profit (revenue, when gross profit is unknown) over the scenario
        horizon suggests protecting it.
    price_cuts_pct : tuple of float
        Price cuts (percent) shown in the plan; the first one drives the
        price-defence rule.
    price_alert_volume : float
        Break-even volume increase of the first price cut at or above which
        the plan advises value-based arguments instead of a discount.
    opportunity_rows : int
        Open opportunities listed in the plan.
    """

    model_config = ConfigDict(extra="forbid")

    max_actions: int = Field(6, ge=1, le=len(ACTION_IDS), description="actions listed")
    revenue_decline: float = Field(-0.05, le=0, description="growth triggering a decline review")
    detractor_share: float = Field(0.3, gt=0, le=1, description="detractor share triggering NPS")
    nps_min_responses: int = Field(5, ge=1, description="fewest answers for NPS rules")
    survey_months: int = Field(12, ge=1, le=60, description="survey window in months")
    cross_sell_max_lines: int = Field(3, ge=1, description="product lines named for cross-sell")
    upsell_max_share_of_wallet: float = Field(0.5, gt=0, le=1, description="upsell rule SoW")
    exposure_share: float = Field(0.02, gt=0, le=1, description="book share to protect")
    price_cuts_pct: tuple[float, ...] = Field((5.0, 10.0), description="price cuts shown (%)")
    price_alert_volume: float = Field(0.15, gt=0, description="break-even volume alert")
    opportunity_rows: int = Field(8, ge=1, description="open opportunities listed")

    @field_validator("price_cuts_pct")
    @classmethod
    def _check_cuts(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value:
            raise ValueError("price_cuts_pct needs at least one cut")
        bad = [c for c in value if not 0 < c < 100]
        if bad:
            raise ValueError(f"price cuts must be percentages in (0, 100), got {bad}")
        return value


# --------------------------------------------------------------------------- helpers


def _num(mapping: Mapping[str, Any] | None, key: str) -> float:
    """A number from a row (dict or Series); NaN when absent or not numeric."""
    if mapping is None or key not in mapping:
        return math.nan
    value = mapping[key]
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def _flag(mapping: Mapping[str, Any] | None, key: str) -> bool:
    if mapping is None or key not in mapping:
        return False
    value = mapping[key]
    if value is None or value is pd.NA:
        return False
    try:
        if isinstance(value, float) and math.isnan(value):
            return False
    except TypeError:
        pass
    return bool(value)


def _kpi_row(kpis: pd.DataFrame | None, kpi_id: str) -> Mapping[str, Any] | None:
    if kpis is None or kpis.empty or "kpi_id" not in kpis.columns:
        return None
    rows = kpis[kpis["kpi_id"] == kpi_id]
    if rows.empty:
        return None
    if len(rows) > 1:
        raise AccountPlanError(
            f"kpis: {len(rows)} rows for KPI {kpi_id!r}; pass the assess_kpis() rows of one account"
        )
    return rows.iloc[0].to_dict()


def _money(x: float, currency: str, lang: str) -> str:
    return fmt_money(x, currency, compact=True, lang=lang)


def _pct(x: float, digits: int = 0, signed: bool = False) -> str:
    return fmt_pct(x, digits, signed=signed)


def _join(items: Sequence[str], lang: str) -> str:
    items = [str(i) for i in items]
    if lang == "ja":
        return "、".join(items)
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _role_names(roles: object, lang: str, limit: int = 3) -> list[str]:
    if roles is None or (isinstance(roles, float) and math.isnan(roles)):
        return []
    if isinstance(roles, str):
        roles = [r.strip() for r in roles.split(",")]
    names = [label_for(r, lang, prefix="stakeholders.") for r in roles if str(r).strip()]
    return names[:limit]


def _action(
    action_id: str, trigger: float, lang: str, *, why: str = "why", **values: str
) -> dict[str, Any]:
    return {
        "action_id": action_id,
        "priority": ACTION_IDS.index(action_id) + 1,
        "action": t(f"actions.{action_id}.do", lang, **values),
        "evidence": t(f"actions.{action_id}.{why}", lang, **values),
        "value": float(trigger) if trigger is not None else math.nan,
    }


# --------------------------------------------------------------------------- the rules


def suggest_actions(
    account: Mapping[str, Any],
    *,
    risks: Mapping[str, Any] | None = None,
    whitespace: pd.DataFrame | None = None,
    kpis: pd.DataFrame | None = None,
    survey: Mapping[str, Any] | None = None,
    governance: Mapping[str, Any] | None = None,
    opportunities: pd.DataFrame | None = None,
    exposure: Mapping[str, Any] | None = None,
    price: pd.DataFrame | None = None,
    currency: str = "JPY",
    lang: Literal["en", "ja"] = "en",
    settings: ActionSettings | None = None,
    max_actions: int | None = None,
) -> pd.DataFrame:
    """Suggested actions for one account, each with the number that triggered it.

    Every input is optional except ``account``: a rule whose input is missing
    does not fire. Rules, in priority order (:data:`ACTION_IDS`):

    ===================== =============================================================
    ``blocker``           ``risks.high_influence_blocker``: plan how to address the
                          blocker's objections, with the sponsor
    ``executive_sponsor`` ``risks.no_executive_sponsor``: arrange an executive
                          sponsor meeting
    ``nps_recovery``      ``survey``: at least ``nps_min_responses`` answers and NPS
                          below ``survey["target"]`` (default +30) or detractors at
                          least ``detractor_share``: follow up the detractors
    ``revenue_decline``   ``account.revenue_growth <= revenue_decline``: decline review
    ``broaden_contacts``  ``risks.single_threaded``: add contacts in the roles not
                          covered (``risks.roles_missing``)
    ``review_cadence``    ``governance.status`` at risk / off track: put the QBRs and
                          executive meetings of the plan in the calendar
    ``adoption``          KPI ``utilisation`` at risk / off track: adoption programme
    ``poc_criteria``      an open PoC in ``opportunities``: agree success criteria
    ``cross_sell``        product lines with ``whitespace_value > 0``: cross-sell them
    ``upsell_headroom``   no whitespace line, ``share_of_wallet`` below
                          ``upsell_max_share_of_wallet`` and headroom > 0: grow share
    ``protect_exposure``  ``exposure.gross_profit_gap_pct >= exposure_share``: protect
                          (``revenue_gap_pct`` when the gross-profit gap is unknown)
    ``price_defence``     break-even volume of the first cut in ``price`` at least
                          ``price_alert_volume``: argue with value, not discounts
    ``reengage_stale``    ``risks.stale_contacts``: re-engage the stale key contacts
    ``second_champion``   ``risks.champion_concentration``: develop another champion
    ===================== =============================================================

    Parameters
    ----------
    account : mapping
        The account's row of ``AnalysisContext.scored`` (dict or Series); read:
        ``revenue_growth``, ``share_of_wallet``, ``headroom``.
    risks : mapping, optional
        Row of :func:`kam_analysis.stakeholders.relationship_risks` (flags,
        ``n_contacts``, ``top_contact_share``, ``n_stale_contacts``), optionally
        extended with ``roles_missing`` (comma list, from
        :func:`~kam_analysis.stakeholders.coverage`), ``n_executives``,
        ``n_blockers``, ``n_champions`` and ``stale_days``.
    whitespace : DataFrame, optional
        The account's rows of :func:`kam_analysis.valuation.whitespace_matrix`
        (``product_line``, ``whitespace_value``).
    kpis : DataFrame, optional
        The account's rows of :func:`kam_analysis.kpi.assess_kpis` (``kpi_id``,
        ``value``, ``target``, ``status``).
    survey : mapping, optional
        :func:`survey_summary` (``nps``, ``n``, ``p_detractors``; ``target``).
    governance : mapping, optional
        Row of :func:`kam_analysis.stakeholders.governance_cadence`
        (``status``, ``<kind>_count``, ``<kind>_plan``).
    opportunities : DataFrame, optional
        :func:`open_opportunities` of the account (``is_poc``, ``amount``,
        ``weighted_value``).
    exposure : mapping, optional
        Row of :func:`kam_analysis.scenarios.account_loss_stress`
        (``gross_profit_gap``, ``gross_profit_gap_pct``; ``revenue_gap`` and
        ``revenue_gap_pct`` when the gross-profit gap is NaN, i.e. without cost
        data), optionally ``months``.
    price : DataFrame, optional
        :func:`price_cut_table` (``price_cut``, ``break_even_volume``).
    currency : str, default "JPY"
    lang : {"en", "ja"}
    settings : ActionSettings, optional
    max_actions : int, optional
        Keep the first ones (default: all that fire).

    Returns
    -------
    pandas.DataFrame
        One row per action that fired, by priority: ``action_id``, ``priority``
        (1 = first), ``action`` (what to do), ``evidence`` (the number behind
        it), ``value`` (that number, for sorting or checks).

    Raises
    ------
    AccountPlanError
        When ``kpis`` holds several rows of one KPI (several accounts).
    """

    translations(lang)  # validates lang
    cfg = settings or ActionSettings()
    out: list[dict[str, Any]] = []

    # relationship: blocker, sponsor
    if _flag(risks, "high_influence_blocker"):
        n = _num(risks, "n_blockers")
        out.append(_action("blocker", n, lang, n="?" if math.isnan(n) else f"{n:.0f}"))
    if _flag(risks, "no_executive_sponsor"):
        n = _num(risks, "n_executives")
        out.append(_action("executive_sponsor", n, lang, n="?" if math.isnan(n) else f"{n:.0f}"))

    # customer voice
    n_answers = _num(survey, "n")
    if not math.isnan(n_answers) and n_answers >= cfg.nps_min_responses:
        nps = _num(survey, "nps")
        det = _num(survey, "p_detractors")
        target = _num(survey, "target")
        target = 30.0 if math.isnan(target) else target
        below = not math.isnan(nps) and nps < target
        many_det = not math.isnan(det) and det >= cfg.detractor_share
        if below or many_det:
            out.append(
                _action(
                    "nps_recovery",
                    nps,
                    lang,
                    nps=f"{nps:+.0f}",
                    n=f"{n_answers:.0f}",
                    detractors=_pct(det),
                    target=f"{target:+.0f}",
                    months=f"{_num(survey, 'months'):.0f}"
                    if not math.isnan(_num(survey, "months"))
                    else "12",
                )
            )

    # revenue
    growth = _num(account, "revenue_growth")
    if not math.isnan(growth) and growth <= cfg.revenue_decline:
        out.append(_action("revenue_decline", growth, lang, growth=_pct(growth, 1, signed=True)))

    # relationship breadth and governance
    if _flag(risks, "single_threaded"):
        roles = _role_names(risks.get("roles_missing") if risks else None, lang)
        n = _num(risks, "n_contacts")
        share = _num(risks, "top_contact_share")
        roles_text = _join(roles, lang) if roles else t("plan.other_roles", lang)
        out.append(
            _action(
                "broaden_contacts",
                n,
                lang,
                # without tagged activities only the number of contacts tells
                why="why" if not math.isnan(share) else "why_few",
                roles=roles_text,
                n="?" if math.isnan(n) else f"{n:.0f}",
                share=_pct(share),
            )
        )
    gov = dict(governance) if governance is not None else {}
    status = str(gov.get("status", ""))
    if status in _BELOW_TARGET:
        kinds = [
            str(k)[: -len("_plan")]
            for k in gov
            if str(k).endswith("_plan") and not math.isnan(_num(gov, k))
        ]
        parts = [
            f"{_num(gov, f'{k}_count'):.0f}/{_num(gov, f'{k}_plan'):.0f} "
            + label_for(k, lang, prefix="plan.kind.")
            for k in kinds
        ]
        out.append(
            _action(
                "review_cadence",
                _num(gov, "attainment"),
                lang,
                detail=", ".join(parts) if lang == "en" else "、".join(parts),
            )
        )

    # adoption
    util = _kpi_row(kpis, "utilisation")
    if util is not None and str(util.get("status")) in _BELOW_TARGET:
        out.append(
            _action(
                "adoption",
                _num(util, "value"),
                lang,
                value=_pct(_num(util, "value")),
                target=_pct(_num(util, "target")),
            )
        )

    # PoCs
    if opportunities is not None and len(opportunities) and "is_poc" in opportunities.columns:
        poc = opportunities[opportunities["is_poc"].fillna(False).astype(bool)]
        if len(poc):
            amount = float(pd.to_numeric(poc["amount"]).sum())
            weighted = (
                float(pd.to_numeric(poc["weighted_value"]).sum())
                if "weighted_value" in poc.columns
                else math.nan
            )
            out.append(
                _action(
                    "poc_criteria",
                    len(poc),
                    lang,
                    n=f"{len(poc):d}",
                    amount=_money(amount, currency, lang),
                    weighted=_money(weighted, currency, lang),
                )
            )

    # potential
    sow = _num(account, "share_of_wallet")
    lines = pd.DataFrame(columns=["product_line", "whitespace_value"])
    if whitespace is not None and len(whitespace):
        ws = whitespace.assign(_v=pd.to_numeric(whitespace["whitespace_value"]).astype(float))
        lines = ws[ws["_v"] > 0].sort_values(["_v", "product_line"], ascending=[False, True])
    if len(lines):
        top = lines.head(cfg.cross_sell_max_lines)
        total = float(lines["_v"].sum())
        out.append(
            _action(
                "cross_sell",
                total,
                lang,
                lines=_join(top["product_line"].astype(str).tolist(), lang),
                sow=_pct(sow),
                whitespace=_money(total, currency, lang),
                n=f"{len(lines):d}",
            )
        )
    else:
        headroom = _num(account, "headroom")
        if (
            not math.isnan(sow)
            and sow < cfg.upsell_max_share_of_wallet
            and not math.isnan(headroom)
            and headroom > 0
        ):
            out.append(
                _action(
                    "upsell_headroom",
                    sow,
                    lang,
                    sow=_pct(sow),
                    headroom=_money(headroom, currency, lang),
                )
            )

    # exposure and price (revenue when gross profit is unknown: no cost data)
    basis = "gross_profit"
    gap_pct = _num(exposure, "gross_profit_gap_pct")
    if math.isnan(_num(exposure, "gross_profit_gap")):
        basis, gap_pct = "revenue", _num(exposure, "revenue_gap_pct")
    if not math.isnan(gap_pct) and gap_pct >= cfg.exposure_share:
        months = _num(exposure, "months")
        out.append(
            _action(
                "protect_exposure",
                gap_pct,
                lang,
                why="why" if basis == "gross_profit" else "why_revenue",
                gap=_money(_num(exposure, f"{basis}_gap"), currency, lang),
                share=_pct(gap_pct, 1),
                months=f"{36 if math.isnan(months) else months:.0f}",
            )
        )
    if price is not None and len(price):
        first = price.iloc[0]
        be = _num(first, "break_even_volume")
        if not math.isnan(be) and be >= cfg.price_alert_volume:
            cut = _num(first, "price_cut")
            volume = t("plan.no_volume", lang) if math.isinf(be) else _pct(be, 0, signed=True)
            out.append(_action("price_defence", be, lang, cut=_pct(cut, 0), volume=volume))

    # relationship upkeep
    if _flag(risks, "stale_contacts"):
        n = _num(risks, "n_stale_contacts")
        days = _num(risks, "stale_days")
        out.append(
            _action(
                "reengage_stale",
                n,
                lang,
                n="?" if math.isnan(n) else f"{n:.0f}",
                days=f"{90 if math.isnan(days) else days:.0f}",
            )
        )
    if _flag(risks, "champion_concentration"):
        n = _num(risks, "n_champions")
        out.append(_action("second_champion", n, lang, n="?" if math.isnan(n) else f"{n:.0f}"))

    frame = pd.DataFrame(out, columns=list(ACTION_COLUMNS))
    frame = frame.sort_values("priority", kind="stable").reset_index(drop=True)
    if max_actions is not None:
        frame = frame.head(int(max_actions))
    return frame.astype({"priority": "int64", "value": "float64"})


# --------------------------------------------------------------------------- per-account tables


def resolve_account_id(scored: pd.DataFrame, account_id: str = "") -> str:
    """The account a plan is for: the given id, or the top key account when empty.

    Parameters
    ----------
    scored : DataFrame
        ``account_id``, ``score`` and (optionally) ``tier``, one row per account.
    account_id : str, default ""
        ``""`` = the key account with the highest score (the highest-scored
        account when there is no key account).

    Returns
    -------
    str

    Raises
    ------
    AccountPlanError
        For an id that is not in ``scored`` (naming it and similar ids), or an
        empty table.
    """
    for col in ("account_id", "score"):
        if col not in scored.columns:
            raise AccountPlanError(f"scored lacks column {col!r}; pass AnalysisContext.scored")
    if scored.empty:
        raise AccountPlanError("no accounts: the scored table is empty")
    ids = scored["account_id"].astype(str)
    wanted = str(account_id).strip()
    if wanted:
        if (ids == wanted).any():
            return wanted
        close = difflib.get_close_matches(wanted, ids.tolist(), n=3, cutoff=0.6)
        hint = f"; similar ids: {', '.join(close)}" if close else ""
        raise AccountPlanError(
            f"account_id {wanted!r} is not in the dataset ({len(ids):,} accounts){hint}"
        )
    pool = scored
    if "tier" in scored.columns and (scored["tier"] == "key").any():
        pool = scored[scored["tier"] == "key"]
    best = pool.assign(_id=pool["account_id"].astype(str)).sort_values(
        ["score", "_id"], ascending=[False, True], kind="stable"
    )
    return str(best["_id"].iloc[0])


def top_criteria(account: Mapping[str, Any], n: int = 3) -> pd.DataFrame:
    """The criteria contributing most to the account's score.

    Parameters
    ----------
    account : mapping
        A row of ``AnalysisContext.scored`` with ``contrib_<criterion>`` columns.
    n : int, default 3

    Returns
    -------
    pandas.DataFrame
        ``criterion``, ``contribution`` (score points), largest first; all
        criteria when ``n`` is larger than their number.
    """
    items = [
        (str(k)[len("contrib_") :], _num(account, k))
        for k in account.keys()
        if str(k).startswith("contrib_")
    ]
    frame = pd.DataFrame(items, columns=["criterion", "contribution"])
    frame = frame.dropna(subset=["contribution"])
    frame = frame.sort_values(["contribution", "criterion"], ascending=[False, True], kind="stable")
    return frame.head(int(n)).reset_index(drop=True)


def criterion_label(name: str, lang: Literal["en", "ja"] = "en") -> str:
    """Display name of a valuation criterion (``criterion.<name>``, else ``plan.criterion.<name>``).

    Parameters
    ----------
    name : str
        Criterion, e.g. ``"gross_profit_12m"`` or ``"strategic_fit"``.
    lang : {"en", "ja"}

    Returns
    -------
    str
        The translation; a readable version of ``name`` when neither key exists.
    """

    table = translations(lang)
    for prefix in ("criterion.", "plan.criterion."):
        if f"{prefix}{name}" in table:
            return table[f"{prefix}{name}"]
    return label_for(name, lang, prefix="criterion.")


def open_opportunities(
    opportunities: pd.DataFrame,
    account_id: str,
    *,
    stage_weights: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Open opportunities of one account with their stage-weighted value.

    Parameters
    ----------
    opportunities : DataFrame
        ``account_id``, ``stage``, ``amount`` (+ ``opportunity_id``, ``type``,
        ``product_line``, ``is_poc``, ``close_date``, ``probability``).
    account_id : str
    stage_weights : mapping, optional
        Win probability per open stage (default: ``ValuationSettings().stage_weights``).
        An opportunity's own ``probability`` wins when present.

    Returns
    -------
    pandas.DataFrame
        ``opportunity_id, type, product_line, stage, is_poc, close_date, amount,
        probability, weighted_value`` (absent input columns are left out, except
        ``is_poc`` which defaults to False), open stages only, largest weighted
        value first.

    Raises
    ------
    AccountPlanError
        For missing columns or an open stage without a weight.
    """

    missing = [c for c in ("account_id", "stage", "amount") if c not in opportunities.columns]
    if missing:
        raise AccountPlanError(f"opportunities lacks column(s) {missing}")
    weights = dict(stage_weights or ValuationSettings().stage_weights)
    lacking = [s for s in OPEN_STAGES if s not in weights]
    if lacking:
        raise AccountPlanError(f"stage_weights: no weight for open stage(s) {lacking}")
    opp = opportunities[
        (opportunities["account_id"].astype(str) == str(account_id))
        & opportunities["stage"].isin(OPEN_STAGES)
    ].copy()
    p = opp["stage"].map(weights).astype(float)
    if "probability" in opp.columns:
        own = pd.to_numeric(opp["probability"]).astype(float)
        p = own.where(own.notna(), p)
    opp["probability"] = p
    opp["amount"] = pd.to_numeric(opp["amount"]).astype(float)
    opp["weighted_value"] = opp["amount"] * p
    opp["is_poc"] = (
        opp["is_poc"].astype("boolean").fillna(False).astype(bool)
        if "is_poc" in opp.columns
        else False
    )
    cols = [
        c
        for c in (
            "opportunity_id",
            "type",
            "product_line",
            "stage",
            "is_poc",
            "close_date",
            "amount",
            "probability",
            "weighted_value",
        )
        if c in opp.columns
    ]
    opp = opp.sort_values("weighted_value", ascending=False, kind="stable")
    return opp[cols].reset_index(drop=True)


def poc_summary(
    opportunities: pd.DataFrame | None,
    account_id: str,
    *,
    as_of: Any,
    months: int = 12,
) -> dict[str, float]:
    """PoCs of one account: open now, won and lost in the last ``months``.

    Parameters
    ----------
    opportunities : DataFrame or None
        ``account_id, stage, close_date, is_poc`` (+ ``amount``).
    account_id : str
    as_of : date-like
    months : int, default 12
        Window of closed PoCs ``(as_of - months, as_of]`` by ``close_date``.

    Returns
    -------
    dict
        ``open``, ``won``, ``lost`` (counts), ``success_rate`` (won / (won + lost),
        NaN when none closed); all 0 / NaN without the table or ``is_poc``.
    """
    out = {"open": 0, "won": 0, "lost": 0, "success_rate": math.nan}
    if opportunities is None or "is_poc" not in opportunities.columns:
        return out
    opp = opportunities[
        (opportunities["account_id"].astype(str) == str(account_id))
        & opportunities["is_poc"].astype("boolean").fillna(False).astype(bool)
    ]
    out["open"] = int(opp["stage"].isin(OPEN_STAGES).sum())
    if "close_date" in opp.columns:
        day = pd.Timestamp(as_of).normalize()
        close = pd.to_datetime(opp["close_date"])
        recent = (close > day - pd.DateOffset(months=int(months))) & (
            close < day + pd.Timedelta(days=1)
        )
        out["won"] = int((recent & (opp["stage"] == "closed_won")).sum())
        out["lost"] = int((recent & (opp["stage"] == "closed_lost")).sum())
    closed = out["won"] + out["lost"]
    out["success_rate"] = out["won"] / closed if closed else math.nan
    return out


def survey_summary(
    surveys: pd.DataFrame | None,
    account_id: str,
    *,
    as_of: Any,
    months: int = 12,
    target: float = 30.0,
) -> dict[str, float]:
    """NPS and CSAT of one account over the last ``months``.

    Parameters
    ----------
    surveys : DataFrame or None
        ``account_id, date, nps`` (+ ``csat``).
    account_id : str
    as_of : date-like
    months : int, default 12
        Window ``(as_of - months, as_of]``.
    target : float, default 30
        NPS target carried along for :func:`suggest_actions`.

    Returns
    -------
    dict
        :func:`kam_analysis.kpi.nps_score` (``nps``, ``n``, ``p_promoters``,
        ``p_detractors``, ``se``, ``ci_low``, ``ci_high``) plus ``csat`` (mean,
        NaN without answers), ``target`` and ``months``; ``n = 0`` without the table.
    """

    if surveys is None:
        out = nps_score([])
    else:
        day = pd.Timestamp(as_of).normalize()
        d = pd.to_datetime(surveys["date"]).dt.normalize()
        rows = surveys[
            (surveys["account_id"].astype(str) == str(account_id))
            & (d > day - pd.DateOffset(months=int(months)))
            & (d <= day)
        ]
        out = nps_score(rows["nps"])
        if "csat" in rows.columns and rows["csat"].notna().any():
            out["csat"] = float(pd.to_numeric(rows["csat"]).mean())
    out.setdefault("csat", math.nan)
    out["target"] = float(target)
    out["months"] = int(months)
    return out


def price_cut_table(revenue: float, margin: float, cuts_pct: Sequence[float]) -> pd.DataFrame:
    """Our side of price cuts on one account's annual revenue.

    Wraps :func:`kam_analysis.scenarios.price_negotiation` for each cut.

    Parameters
    ----------
    revenue : float
        Annual revenue (e.g. trailing 12 months).
    margin : float
        Gross margin, a fraction.
    cuts_pct : sequence of float
        Cuts in percent (e.g. ``(5, 10)``).

    Returns
    -------
    pandas.DataFrame
        One row per cut: ``price_cut`` (fraction), ``revenue_after``,
        ``gross_profit``, ``gross_profit_after``, ``gross_profit_change``
        (per year, negative), ``margin_after``, ``break_even_volume`` (volume
        increase keeping gross profit, inf when the cut reaches the margin).
        Empty when revenue or margin is missing (no cost data and no assumed
        margin: the profit effect of a cut is unknown).
    """

    cols = [
        "price_cut",
        "revenue_after",
        "gross_profit",
        "gross_profit_after",
        "gross_profit_change",
        "margin_after",
        "break_even_volume",
    ]
    if not (np.isfinite(revenue) and np.isfinite(margin)) or revenue < 0:
        return pd.DataFrame(columns=cols)
    rows = []
    for cut in cuts_pct:
        res = price_negotiation(float(revenue), float(margin), float(cut)).set_index("metric")
        be = res.at["break_even_volume_increase", "after_cut"]
        if res.at["break_even_volume_increase", "reason"] == "cut_exceeds_margin":
            be = math.inf  # no volume restores the profit (the plan says so in words)
        rows.append(
            {
                "price_cut": cut / 100,
                "revenue_after": res.at["revenue", "after_cut"],
                "gross_profit": res.at["gross_profit", "current"],
                "gross_profit_after": res.at["gross_profit", "after_cut"],
                "gross_profit_change": res.at["gross_profit", "change"],
                "margin_after": res.at["gross_margin", "after_cut"],
                "break_even_volume": be,
            }
        )
    return pd.DataFrame(rows, columns=cols).astype(float)


def account_monthly(
    monthly: pd.DataFrame, account_id: str, *, as_of: Any, months: int = 24
) -> pd.DataFrame:
    """Revenue and gross profit of one account per month, months without sales as 0.

    Parameters
    ----------
    monthly : DataFrame
        :func:`kam_analysis.data.features.monthly_revenue` (``account_id, month,
        revenue, gross_profit``).
    account_id : str
    as_of : date-like
        The last month shown is the month of ``as_of``.
    months : int, default 24

    Returns
    -------
    pandas.DataFrame
        ``month`` (first day), ``revenue``, ``gross_profit``; ``months`` rows.
        ``gross_profit`` stays NaN when the account's gross profit is unknown
        (no cost data) rather than 0.
    """
    end = pd.Timestamp(as_of).normalize().to_period("M").to_timestamp()
    grid = pd.date_range(end=end, periods=int(months), freq="MS")
    rows = monthly[monthly["account_id"].astype(str) == str(account_id)]
    rows = rows.assign(month=pd.to_datetime(rows["month"])).set_index("month")
    out = rows[["revenue", "gross_profit"]].astype(float).reindex(grid)
    if len(rows):
        out["revenue"] = out["revenue"].fillna(0.0)
        if rows["gross_profit"].notna().any():  # else unknown (no cost data), not 0
            out["gross_profit"] = out["gross_profit"].fillna(0.0)
    out.index.name = "month"
    return out.reset_index()


def product_line_view(
    transactions: pd.DataFrame,
    whitespace: pd.DataFrame,
    account_id: str,
    *,
    as_of: Any,
) -> pd.DataFrame:
    """Per product line: what the account buys now and the whitespace its peers suggest.

    Parameters
    ----------
    transactions : DataFrame
        ``account_id, date, product_line, revenue``.
    whitespace : DataFrame
        :func:`kam_analysis.valuation.whitespace_matrix` (all accounts or this one).
    account_id : str
    as_of : date-like
        End of the trailing 12 months ``(as_of - 12 months, as_of]``.

    Returns
    -------
    pandas.DataFrame
        ``product_line, revenue_12m, whitespace_value, peer_adoption`` for the
        lines bought or with whitespace, largest ``revenue_12m + whitespace_value``
        first; empty when the transactions have no ``product_line`` column.
    """
    day = pd.Timestamp(as_of).normalize()
    start = day - pd.DateOffset(months=12) + pd.Timedelta(days=1)
    columns = ["product_line", "revenue_12m", "whitespace_value", "peer_adoption"]
    if "product_line" not in transactions.columns:  # the export has no product line
        return pd.DataFrame(columns=columns).astype(
            {c: float for c in columns if c != "product_line"}
        )
    tx = transactions[transactions["account_id"].astype(str) == str(account_id)]
    d = pd.to_datetime(tx["date"]).dt.normalize()
    tx = tx[(d >= start) & (d <= day)]
    spend = tx.groupby("product_line")["revenue"].sum().astype(float)
    ws = whitespace[whitespace["account_id"].astype(str) == str(account_id)].set_index(
        "product_line"
    )
    lines = sorted(set(spend.index) | set(ws.index[ws["whitespace_value"] > 0]))
    out = pd.DataFrame({"product_line": lines})
    out["revenue_12m"] = spend.reindex(lines).fillna(0.0).to_numpy()
    out["whitespace_value"] = ws["whitespace_value"].reindex(lines).fillna(0.0).to_numpy(float)
    out["peer_adoption"] = (
        ws["peer_adoption"].reindex(lines).to_numpy(float)
        if "peer_adoption" in ws.columns
        else np.nan
    )
    total = out["revenue_12m"] + out["whitespace_value"]
    return (
        out.assign(_t=total)
        .sort_values(["_t", "product_line"], ascending=[False, True], kind="stable")
        .drop(columns="_t")
        .reset_index(drop=True)
    )


# --------------------------------------------------------------------------- the whole plan


@dataclass
class AccountPlan:
    """Everything the one-page account plan shows, for one account.

    Attributes
    ----------
    account_id, name : str
    as_of : datetime.date
    currency : str
    n_accounts : int
        Accounts in the portfolio (for "rank r of n").
    account : pandas.Series
        The account's row of ``AnalysisContext.scored`` (score, rank, tier,
        tier_reason, contrib_*, revenue_12m, share_of_wallet, headroom, ...).
    criteria : DataFrame
        :func:`top_criteria`.
    portfolio : pandas.Series or None
        Row of :func:`kam_analysis.segmentation.portfolio_matrix` (quadrant,
        resource_level, attractiveness, position).
    ltv : pandas.Series or None
        The account's LTV as the LTV report values it (its row of
        ``ctx.ltv.ltv``; :func:`kam_analysis.ltv.value.account_ltv` columns:
        ltv, ltv_lower, ltv_upper, model, churn_risk_12m, basis, ...); None
        when the account is not valued.
    ltv_level : float
        Central coverage of the LTV interval (0.8 = P10-P90).
    ltv_years : int
    product_lines : DataFrame
        :func:`product_line_view`.
    whitespace : DataFrame
        The account's rows of the whitespace matrix with a positive value.
    monthly : DataFrame
        :func:`account_monthly`.
    kpis : DataFrame or None
        The account's :func:`kam_analysis.kpi.assess_kpis` rows.
    scorecard : DataFrame or None
        :func:`kam_analysis.kpi.scorecard_table` of those rows.
    health : pandas.Series or None
        The account's :func:`kam_analysis.kpi.balanced_scorecard` row.
    kpi_period : str or None
    survey : dict or None
        :func:`survey_summary`.
    risks : dict or None
        :func:`kam_analysis.stakeholders.relationship_risks` row plus
        ``roles_missing``, ``n_executives``, ``n_blockers``, ``n_champions``,
        ``stale_days``.
    governance : pandas.Series or None
        :func:`kam_analysis.stakeholders.governance_cadence` row.
    exposure : pandas.Series
        :func:`kam_analysis.scenarios.account_loss_stress` row plus ``months``.
    price : DataFrame
        :func:`price_cut_table`.
    opportunities : DataFrame or None
        :func:`open_opportunities` (all open ones; the notebook shows the first).
    pocs : dict
        :func:`poc_summary`.
    actions : DataFrame
        :func:`suggest_actions` (at most ``ActionSettings.max_actions``).
    settings : ActionSettings
        The action rules used (``opportunity_rows`` for the pipeline table).
    skipped : dict
        Section -> missing table (``{"relationships": "stakeholders"}``) or, for
        ``"ltv"``, the reason the LTV is not shown.
    objectives : DataFrame or None
        :func:`kam_analysis.objectives.objective_progress` of the account's
        objectives (None without an ``account_objectives`` table).
    team : DataFrame or None
        :func:`kam_analysis.objectives.team_members` (None without ``account_team``).
    coverage : DataFrame or None
        :func:`kam_analysis.objectives.team_coverage`: our roles against their
        decision-maker roles.
    team_flags : dict or None
        :func:`kam_analysis.objectives.team_flags`.
    next_review : NextReview or None
        :func:`kam_analysis.objectives.next_review` from ``[stakeholders] governance_plan``.
    concerns : DataFrame or None
        Contacts with stated concerns (``person`` pseudonym, ``role``,
        ``influence``, ``stance``, ``concerns``); None without a ``concerns`` column.
    """

    account_id: str
    name: str
    as_of: Any
    currency: str
    n_accounts: int
    account: pd.Series
    criteria: pd.DataFrame
    portfolio: pd.Series | None
    ltv: pd.Series | None
    ltv_level: float
    ltv_years: int
    product_lines: pd.DataFrame
    whitespace: pd.DataFrame
    monthly: pd.DataFrame
    kpis: pd.DataFrame | None
    scorecard: pd.DataFrame | None
    health: pd.Series | None
    kpi_period: str | None
    survey: dict | None
    risks: dict | None
    governance: pd.Series | None
    exposure: pd.Series | None
    price: pd.DataFrame
    opportunities: pd.DataFrame | None
    pocs: dict
    actions: pd.DataFrame
    settings: ActionSettings = field(default_factory=ActionSettings)
    skipped: dict[str, str] = field(default_factory=dict)
    objectives: pd.DataFrame | None = None
    team: pd.DataFrame | None = None
    coverage: pd.DataFrame | None = None
    team_flags: dict | None = None
    next_review: objectives_mod.NextReview | None = None
    concerns: pd.DataFrame | None = None


def _plan_concerns(people: pd.DataFrame, salt: str) -> pd.DataFrame | None:
    """Contacts with stated concerns, most influential first, shown by role and pseudonym."""
    if "concerns" not in people.columns:
        return None
    said = people[people["concerns"].notna() & (people["concerns"].astype(str).str.strip() != "")]
    said = said.sort_values("influence", ascending=False, kind="stable")
    return pd.DataFrame(
        {
            "person": [stakeholders.pseudonym(c, salt) for c in said["contact_id"]],
            "role": said["role"].to_numpy(),
            "influence": said["influence"].to_numpy(),
            "stance": said["stance"].to_numpy(),
            "concerns": said["concerns"].astype(str).to_numpy(),
        }
    )


def _plan_objectives(
    ctx, acc_id: str, account: pd.Series, activities
) -> tuple[dict[str, Any], dict[str, str]]:
    """The plan's objectives, team, coverage, next review and concerns (each when the data have it).

    The objectives are the account's rows of ``ctx.objective_progress`` (measured
    once per context for every account, as the KPI scorecard and ``kam export``
    show them); the rules come from ``[objectives]``.

    Returns the :class:`AccountPlan` fields and the sections skipped (section -> table).
    """
    out: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    as_of = ctx.as_of
    rules = ctx.config.objectives
    people = ctx.account_frame("stakeholders", acc_id)
    progress = ctx.objective_progress
    if progress is not None:
        mine = progress["account_id"].astype(str) == acc_id
        out["objectives"] = progress[mine].reset_index(drop=True)
    else:
        skipped["objectives"] = "account_objectives"
    if ctx.has("account_team"):
        team = ctx.account_frame("account_team", acc_id)
        out["team"] = objectives_mod.team_members(team, as_of)
        out["coverage"] = objectives_mod.team_coverage(team, people, as_of)
        out["team_flags"] = objectives_mod.team_flags(
            team,
            people,
            activities,
            as_of,
            key_account=account.get("tier") == "key",
            settings=rules,
        )
    else:
        skipped["team"] = "account_team"
    if activities is not None:  # without activities no review is on record either way
        out["next_review"] = objectives_mod.next_review(
            activities,
            as_of,
            plan=ctx.config.stakeholders.governance_plan,
            tier=account.get("tier"),
            kind=rules.review_kind,
        )
    if people is not None:
        out["concerns"] = _plan_concerns(people, ctx.config.stakeholders.pseudonym_salt)
    return out, skipped


_MONEY_METRICS = ("revenue_12m", "gross_profit_12m", "revenue", "gross_profit", "ltv")
_RATIO_METRICS = tuple(
    d
    for d in kpi_mod.KPI_IDS
    if kpi_mod.KPI_DEFINITIONS.set_index("kpi_id").at[d, "unit"] == "ratio"
)


def _metric_value(value: float, metric: str, currency: str, lang: str) -> str:
    if value is None or not np.isfinite(value):
        return ""
    if metric in _MONEY_METRICS:
        return _money(value, currency, lang)
    if metric in _RATIO_METRICS:
        return _pct(value, 1)
    return f"{value:,.4g}"


def objective_table(
    progress: pd.DataFrame, *, currency: str, lang: Literal["en", "ja"] = "en"
) -> pd.DataFrame:
    """The plan's objectives for display: values formatted by metric, KPI names translated.

    Parameters
    ----------
    progress : DataFrame
        :func:`kam_analysis.objectives.objective_progress`.
    currency, lang : str

    Returns
    -------
    DataFrame
        ``objective, owner, metric, baseline_value, target_value, current_value``
        (text: money for revenue metrics, percent for ratio KPIs), ``due_date``
        (``YYYY-MM-DD``), ``progress``, ``expected`` (floats) and ``assessed``.
    """
    out = progress.copy()
    metric = out["metric"].fillna("").astype(str)
    for col in ("baseline_value", "target_value", "current_value"):
        out[col] = [
            _metric_value(float(v), m, currency, lang) if pd.notna(v) else ""
            for v, m in zip(out[col], metric, strict=True)
        ]
    out["metric"] = [
        label_for(m, prefix="objective_metric.", lang=lang)
        if m in _MONEY_METRICS[:2]
        else kpi_mod.kpi_label(m, lang)
        if m in kpi_mod.KPI_IDS
        else m
        for m in metric
    ]
    out["due_date"] = pd.to_datetime(out["due_date"]).dt.strftime("%Y-%m-%d")
    cols = [
        "objective",
        "owner",
        "metric",
        "baseline_value",
        "target_value",
        "current_value",
        "due_date",
        "progress",
        "expected",
        "assessed",
    ]
    return out[cols].reset_index(drop=True)


def _plan_kpis(ctx, account_id: str, settings) -> Any:
    """KPIs for one account's plan: its own rows only, unless a target is relative.

    An account's KPIs and their attainment depend on its own data only, except
    for targets set as a percentile among the accounts; only then is the
    whole book computed (at 100k accounts that is ~24M KPI rows and several
    GiB per plan).
    """

    # the plan passes no LTV series, so the (percentile-based) LTV KPI is not computed
    relative = any(
        t.basis == "percentile" for kpi_id, t in settings.targets.items() if kpi_id != "ltv"
    )
    if relative:
        lines, accounts, tables = ctx.monthly_lines, ctx.frame("accounts"), ctx.kpi_tables()
    else:
        lines = ctx.account_monthly_lines(account_id)
        accounts = ctx.account_frame("accounts", account_id)
        tables = ctx.kpi_tables([account_id])
    return kpi_mod.compute_kpis(
        lines,  # the lines summed per account, month and product line
        accounts,
        **tables,
        as_of=ctx.as_of,
        settings=settings,
        lapse_months=ctx.config.segmentation.lapse_months,
    )


def _portfolio_ltv(ctx) -> pd.DataFrame:
    """Every account's LTV as the LTV report values it, without the report's backtests.

    ``ctx.ltv_values.ltv``: the context's valuation step
    (:func:`~kam_analysis.ltv.analysis.value_accounts`), which the LTV report
    (``ctx.ltv``) reuses, so the numbers are the LTV report's and the models
    are fitted once per context. Accounts that cannot be valued have
    ``model == "none"``.
    """
    return ctx.ltv_values.ltv


def ltv_growth(ctx) -> pd.DataFrame | None:
    """Every account's annual growth on its LTV path, as the LTV report values it.

    ``account_id, growth_annual`` of ``ctx.ltv_values.ltv`` (see
    :func:`_portfolio_ltv`); the KPI scorecard grows the fiscal year's revenue
    forecast with it. None when the models cannot value the book; the fit's
    warnings are left to the LTV report.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the LTV report shows the fit notes
            ltv = _portfolio_ltv(ctx)
    except (ValueError, ArithmeticError):  # e.g. LtvInputError: features the models reject
        return None
    return ltv[["account_id", "growth_annual"]].reset_index(drop=True)


def _account_ltv(
    ctx, account_id: str, lang: str
) -> tuple[pd.Series | None, float, int, str | None]:
    """The account's row of the portfolio LTV (:func:`_portfolio_ltv`), or why it has none.

    Returns (row, interval level, horizon in years, reason or None).
    """

    settings = ctx.config.ltv
    level, years = settings.interval_level, settings.horizon_years
    try:  # the plan works without an LTV
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the LTV report shows the fit notes
            ltv = _portfolio_ltv(ctx)
    except (ValueError, ArithmeticError):  # e.g. LtvInputError: features the models reject
        return None, level, years, t("plan.ltv_not_valued", lang)
    rows = ltv[ltv["account_id"].astype(str) == str(account_id)]
    if rows.empty or rows["model"].iloc[0] == "none" or pd.isna(rows["ltv"].iloc[0]):
        return None, level, years, t("plan.ltv_not_valued", lang)
    return rows.iloc[0], level, years, None


def account_plan_data(
    ctx,
    account_id: str = "",
    *,
    settings: ActionSettings | None = None,
    lang: Literal["en", "ja"] | None = None,
) -> AccountPlan:
    """Gather everything the one-page plan of one account shows.

    Parameters
    ----------
    ctx : kam_analysis.context.AnalysisContext
        The opened dataset (its config supplies the valuation, segmentation,
        KPI, stakeholder and scenario rules; ``ctx.config.actions`` the action
        rules when the configuration has that section).
    account_id : str, default ""
        The account; ``""`` = the top key account by score.
    settings : ActionSettings, optional
        Overrides ``ctx.config.actions``.
    lang : {"en", "ja"}, optional
        Language of the texts (default ``ctx.lang``).

    Returns
    -------
    AccountPlan

    Raises
    ------
    AccountPlanError
        For an ``account_id`` that is not in the dataset (the message names it).
    """

    lang = lang or ctx.lang
    cfg = settings or getattr(ctx.config, "actions", None) or ActionSettings()
    if not isinstance(cfg, ActionSettings):
        cfg = ActionSettings.model_validate(cfg, from_attributes=True)
    currency = ctx.config.data.base_currency
    scored = ctx.scored
    acc_id = resolve_account_id(scored, account_id)
    ids = scored["account_id"].astype(str)
    account = scored[ids == acc_id].iloc[0]
    skipped: dict[str, str] = {}
    as_of = ctx.as_of
    tx = ctx.account_lines(acc_id)  # this account's lines only (filtered in the engine)
    # this account's rows only, filtered in the engine (millions of activities at 100k)
    people = ctx.account_frame("stakeholders", acc_id)
    act = ctx.account_frame("activities", acc_id)
    opps_of_account = ctx.account_frame("opportunities", acc_id)

    # value and potential
    ws_all = ctx.whitespace
    ws = ws_all[ws_all["account_id"].astype(str) == acc_id]
    lines = product_line_view(tx, ws, acc_id, as_of=as_of)
    ws_pos = ws[ws["whitespace_value"] > 0].sort_values("whitespace_value", ascending=False)

    # portfolio position (with stakeholder coverage when known, as the segmentation report)
    matrix = ctx.portfolio_matrix
    portfolio = matrix[matrix["account_id"].astype(str) == acc_id].iloc[0]

    # LTV
    ltv, ltv_level, ltv_years, why = _account_ltv(ctx, acc_id, lang)
    if why is not None:
        skipped["ltv"] = why

    # KPIs with the fiscal year of the data settings, as in the KPI scorecard report
    kpi_settings = ctx.kpi_settings
    result = _plan_kpis(ctx, acc_id, kpi_settings)
    assessed = kpi_mod.assess_kpis(result)
    kpis = assessed[assessed["account_id"].astype(str) == acc_id].reset_index(drop=True)
    # health with the book's validated family weights, as on the KPI page and in kam export
    card = kpi_mod.balanced_scorecard(result, family_weights=ctx.health_validation.weights)
    health_rows = card[card["account_id"].astype(str) == acc_id]
    health = health_rows.iloc[0] if len(health_rows) else None
    table = kpi_mod.scorecard_table(kpis, lang=lang, currency=currency, settings=kpi_settings)
    period = str(kpis["period"].iloc[0]) if len(kpis) else None

    # customer voice
    nps_target = kpi_settings.targets.get("nps")
    survey = None
    if ctx.has("surveys"):
        survey = survey_summary(
            ctx.account_frame("surveys", acc_id),
            acc_id,
            as_of=as_of,
            months=cfg.survey_months,
            target=nps_target.target if nps_target is not None else 30.0,
        )
    else:
        skipped["survey"] = "surveys"

    # relationships
    risks = governance = None
    sh = ctx.config.stakeholders
    if people is not None:
        one = pd.DataFrame({"account_id": [acc_id]})
        r = stakeholders.relationship_risks(
            people,
            act,
            as_of,
            accounts=one,
            stale_days=sh.stale_days,
            stale_min_influence=sh.stale_min_influence,
            single_thread_share=sh.single_thread_share,
            activity_window_days=sh.activity_window_days,
            sponsor_min_stance=sh.sponsor_min_stance,
            blocker_min_influence=sh.blocker_min_influence,
            lang=lang,
        )
        risks = r.iloc[0].to_dict()
        cov = stakeholders.coverage(people, one, as_of)
        risks["roles_missing"] = cov["roles_missing"].iloc[0]
        risks["role_coverage"] = float(cov["role_coverage"].iloc[0])
        risks["n_executives"] = int((people["role"] == "executive").sum())
        risks["n_blockers"] = int(
            (
                (people["stance"] == "blocker") & (people["influence"] >= sh.blocker_min_influence)
            ).sum()
        )
        risks["n_champions"] = int((people["stance"] == "champion").sum())
        risks["n_supportive"] = int(
            (people["stance"].map(STANCE_SCORE) >= STANCE_SCORE["supporter"]).sum()
        )
        risks["stale_days"] = sh.stale_days
    else:
        skipped["relationships"] = "stakeholders"
    if act is not None:
        g = stakeholders.governance_cadence(
            act,
            as_of,
            plan=sh.governance_plan,
            tier=pd.Series({acc_id: account.get("tier")}),
            accounts=pd.DataFrame({"account_id": [acc_id]}),
            at_risk_share=sh.at_risk_share,
        )
        governance = g.iloc[0]
    else:
        skipped["governance"] = "activities"

    # scenario exposure: the account's loss against the whole book
    months = ctx.config.scenarios.months
    churn = None
    if ltv is not None and np.isfinite(_num(ltv, "monthly_churn")):
        churn = pd.Series({acc_id: float(ltv["monthly_churn"])})
    book = scenarios.book_from_features(
        scored, churn_prob_month=churn, assumed_gross_margin=ctx.config.data.assumed_gross_margin
    )
    stress = scenarios.account_loss_stress(book, [acc_id], months=months)
    exposure = stress.iloc[0].copy()
    exposure["months"] = months
    price = price_cut_table(
        _num(account, "revenue_12m"), _num(account, "margin_12m"), cfg.price_cuts_pct
    )

    # pipeline
    opps = None
    pocs = poc_summary(opps_of_account, acc_id, as_of=as_of)
    if opps_of_account is not None:
        opps = open_opportunities(
            opps_of_account, acc_id, stage_weights=ctx.config.valuation.stage_weights
        )
    else:
        skipped["opportunities"] = "opportunities"

    actions = suggest_actions(
        account,
        risks=risks,
        whitespace=ws,
        kpis=kpis,
        survey=survey,
        governance=governance,
        opportunities=opps,
        exposure=exposure,
        price=price,
        currency=currency,
        lang=lang,
        settings=cfg,
        max_actions=cfg.max_actions,
    )
    managed, not_managed = _plan_objectives(ctx, acc_id, account, act)
    skipped |= not_managed
    name = account.get("name")
    return AccountPlan(
        account_id=acc_id,
        name=str(name) if isinstance(name, str) and name else acc_id,
        as_of=as_of,
        currency=currency,
        n_accounts=len(scored),
        account=account,
        criteria=top_criteria(account),
        portfolio=portfolio,
        ltv=ltv,
        ltv_level=ltv_level,
        ltv_years=ltv_years,
        product_lines=lines,
        whitespace=ws_pos.reset_index(drop=True),
        monthly=account_monthly(ctx.monthly, acc_id, as_of=as_of),
        kpis=kpis,
        scorecard=table,
        health=health,
        kpi_period=period,
        survey=survey,
        risks=risks,
        governance=governance,
        exposure=exposure,
        price=price,
        opportunities=opps,
        pocs=pocs,
        actions=actions,
        settings=cfg,
        skipped=skipped,
        **managed,
    )

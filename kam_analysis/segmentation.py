"""Segmentation: key accounts, growth candidates and the rest; portfolio views.

Step 2 of the seed: segment all customers into key-account candidates,
growth candidates and standard accounts, and allocate resources
accordingly. This module takes the scored table of
:func:`kam_analysis.valuation.attractiveness_score` and gives

* rule-based **tiers** with the rule that fired (:func:`assign_tiers`), and
  the rule as it applied to the book: which conditions had the data to
  apply, which were skipped and why, and why no account is a key account
  when none is (:func:`tier_conditions`, :func:`tier_rule`);
* the **key-account portfolio matrix** (customer attractiveness x our
  relative position with the customer) with a recommended resource level
  per quadrant (:func:`portfolio_matrix`);
* the **Pareto / ABC** view of concentration, with the Gini coefficient
  (:func:`pareto_table`, :func:`pareto_summary`, :func:`gini`);
* a data-driven cross-check of the rules by k-means clustering, with
  agreement measured by the adjusted Rand index and Cohen's kappa
  (:func:`cluster_check`, :func:`adjusted_rand_index`, :func:`cohens_kappa`);
* **tier migration** between two periods (:func:`tier_migration`).

Business rules live in :class:`SegmentationSettings`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator
from scipy.optimize import linear_sum_assignment

from kam_analysis.core.errors import InputError
from kam_analysis.core.i18n import label_for, t
from kam_analysis.data.features import HistoryCoverage, history_coverage
from kam_analysis.stakeholders import coverage
from kam_analysis.status import LOST_STATUSES, account_status, lapse_cutoff
from kam_analysis.valuation import (
    ValuationSettings,
    attractiveness_score,
    customer_attractiveness,
    monthly_from_transactions,
    normalise,
    valuation_table,
)

TIERS: tuple[str, ...] = ("key", "growth", "standard")
"""Tier labels, highest first (the same labels as the synthetic ground truth)."""

QUADRANTS: tuple[str, ...] = ("strategic", "star", "status", "streamline")
"""Quadrants of the key-account portfolio matrix (Woodburn & McDonald)."""

RESOURCE_LEVELS: dict[str, str] = {
    "strategic": "invest",
    "star": "selectively invest",
    "status": "maintain",
    "streamline": "minimise cost-to-serve",
}
"""Recommended resource level per quadrant."""

NEW, GONE = "(new)", "(gone)"


class SegmentationInputError(InputError, ValueError):
    """A table or setting cannot be used for segmentation."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SegmentationSettings(_Section):
    """Business rules of segmentation (composed into ``kam.toml`` as ``[segmentation]``).

    Tiers follow the key-account portfolio matrix: the most attractive
    customers are key accounts where our position is already strong and
    growth candidates where it is still weak. The attractiveness that the
    thresholds apply to is the customer's own (``attractiveness``,
    :func:`kam_analysis.valuation.customer_attractiveness`: its size, growth
    and strategic value, not what we already sell there) when the scored
    table has it, else the valuation ``score``. By default (``thresholds =
    "percentile"``) the two thresholds are percentile ranks (0-100) among
    the active accounts: the top fifth of the live book by attractiveness
    (80) is key or growth, whatever the normalisation (with ``minmax`` a few
    giant accounts compress the scores of everybody else, and an absolute
    threshold may then admit nobody). ``thresholds = "absolute"`` reads
    attractiveness values instead.

    Key accounts are the attractive accounts (at least ``key_min_score``)
    where our position is strong (share of wallet at least
    ``key_min_share_of_wallet``, 50 %: we already hold most of the
    customer's spend), up to the number the account teams can serve: the
    capacity is the smaller of ``key_capacity`` (an absolute head count of
    accounts) and ``key_max_share`` of the active accounts (rounded, at
    least 1); either may be switched off with ``None``. Among the eligible,
    the capacity goes to the highest account value (``score``). McDonald &
    Woodburn advise a small, servable key-account programme (typically tens
    of accounts), so a head count (``key_capacity``) should be set for real
    portfolios; the default share (10 %) is only a ceiling.

    Growth candidates are not key, are as attractive (at least
    ``growth_min_score``), hold a low share of wallet (below
    ``growth_max_share_of_wallet``, the key floor: much of the customer's
    spend still goes elsewhere) and have potential left (headroom or
    whitespace at least at the ``growth_min_potential_pct`` percentile, the
    median by default).

    Measured on the generated demo (2,000 and 3,000 accounts, four seeds),
    these defaults recover the planted tiers of the active accounts with
    Cohen's kappa 0.79-0.81 (``tests/test_segmentation.py``).

    A condition whose data the book does not have (no wallet estimates: no
    share of wallet and no headroom; no product lines: no whitespace; no
    cost: no gross profit) is skipped rather than failed, so key accounts
    still form by score within the capacity; see :func:`assign_tiers`.

    Only active customers can be key accounts or growth candidates: an
    account with no purchase in the last ``lapse_months`` months (and no
    running contract) is lapsed, one the contracts table says left is
    churned (:mod:`kam_analysis.status`); both are standard. The capacity and
    the percentile ranks count active accounts only. A lost account that
    would be key or growth had it stayed active, and that left within the
    last ``win_back_months`` months, is a win-back candidate
    (:func:`win_back`).
    """

    key_min_score: float = Field(
        80.0,
        ge=0,
        le=100,
        description="Lowest attractiveness of a key account (a percentile rank by default).",
    )
    thresholds: Literal["absolute", "percentile"] = Field(
        "percentile",
        description=(
            "How key_min_score and growth_min_score read: attractiveness values (absolute) "
            "or its percentile ranks among the active accounts, 0-100 (percentile)."
        ),
    )
    key_capacity: int | None = Field(
        None, ge=0, description="Most key accounts the teams can serve (None: no head-count cap)."
    )
    key_max_share: float | None = Field(
        0.10,
        gt=0,
        le=1,
        description="Most key accounts as a share of the active accounts (None: no cap).",
    )
    key_min_share_of_wallet: float | None = Field(
        0.5,
        ge=0,
        description=(
            "Lowest share of wallet of a key account (None: no floor): an attractive account "
            "where our position is still weak is a growth candidate, not a key account."
        ),
    )
    key_min_value_pct: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Lowest percentile rank of key_value_column (None: no floor).",
    )
    key_value_column: str = Field(
        "gross_profit_12m", description="Current-value measure of key_min_value_pct."
    )
    growth_min_potential_pct: float = Field(
        0.5, ge=0, le=1, description="Lowest percentile rank of headroom or whitespace."
    )
    growth_max_share_of_wallet: float = Field(
        0.5,
        ge=0,
        description=(
            "Highest share of wallet of a growth candidate (the key floor by default: an "
            "attractive account is key or growth by our position, with no gap between)."
        ),
    )
    growth_min_score: float = Field(
        80.0,
        ge=0,
        le=100,
        description="Lowest attractiveness of a growth candidate (a percentile rank by default).",
    )
    potential_columns: tuple[str, ...] = Field(
        ("headroom", "whitespace"), description="Potential measures of the growth rule."
    )
    position_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "share_of_wallet": 0.5,
            "revenue_12m": 0.3,
            "tenure_days": 0.2,
            "orders_12m": 0.3,
            "stakeholder_coverage": 0.25,
        },
        description=(
            "Our position with the customer: weights of its components (percentile ranks); "
            "absent columns are dropped and the rest renormalised."
        ),
    )
    attractiveness_split: float | None = Field(
        None, description="Score splitting high / low attractiveness (None: median)."
    )
    position_split: float | None = Field(
        None, description="Position (0-100) splitting high / low (None: median)."
    )
    abc_shares: tuple[float, float] = Field(
        (0.8, 0.95), description="Cumulative value shares closing classes A and B."
    )
    lapse_months: int = Field(
        12,
        ge=1,
        description=(
            "Months without a purchase after which an account is lapsed: never key or growth."
        ),
    )
    win_back_months: int = Field(
        24,
        ge=1,
        description=(
            "How recently a lapsed or churned account must have left to be a win-back candidate."
        ),
    )

    @field_validator("position_weights")
    @classmethod
    def _check_position_weights(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: w for k, w in value.items() if not (np.isfinite(w) and w >= 0)}
        if bad:
            raise ValueError(f"position weights must be finite and >= 0; got {bad}")
        if sum(value.values()) <= 0:
            raise ValueError("position weights sum to 0")
        return value

    @field_validator("abc_shares")
    @classmethod
    def _check_abc(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] < value[1] <= 1:
            raise ValueError(f"abc_shares must satisfy 0 < A < B <= 1, got {value}")
        return value


# --------------------------------------------------------------------------- helpers


def _require(df: pd.DataFrame, name: str, columns: Sequence[str]) -> None:
    if not isinstance(df, pd.DataFrame):
        raise SegmentationInputError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SegmentationInputError(
            f"{name} is missing required column(s) {missing}; it has {list(df.columns)}"
        )
    dup = df["account_id"][df["account_id"].duplicated()] if "account_id" in df else []
    if len(dup):
        raise SegmentationInputError(
            f"{name}.account_id must be unique; repeated: {pd.unique(dup)[:5].tolist()}"
        )


def _num(df: pd.DataFrame, col: str) -> np.ndarray:
    try:
        return pd.to_numeric(df[col]).astype("float64").to_numpy()
    except (TypeError, ValueError):
        raise SegmentationInputError(f"column {col!r} must be numeric") from None


def _order_by_score(ids: pd.Series, score: np.ndarray) -> np.ndarray:
    """Positions sorted by score descending, ties by account_id ascending.

    Scores equal to 9 decimals count as tied (floating-point sums of the same
    contributions in another order differ in the last bits).
    """
    return np.lexsort((ids.astype(str).to_numpy(), -np.round(score, 9)))


def key_capacity(n_accounts: int, settings: SegmentationSettings | None = None) -> int | None:
    """Number of key accounts allowed for a portfolio of ``n_accounts`` (None: no cap)."""
    cfg = settings or SegmentationSettings()
    caps = []
    if cfg.key_capacity is not None:
        caps.append(int(cfg.key_capacity))
    if cfg.key_max_share is not None:
        caps.append(max(1, round(cfg.key_max_share * n_accounts)))
    return min(caps) if caps else None


# --------------------------------------------------------------------------- tiers


@dataclass(frozen=True)
class _TierInputs:
    """What the tier rule can use: values, and which conditions have data."""

    score: np.ndarray
    """What the score thresholds apply to (attractiveness, or its percentile rank)."""
    score_label: str
    """Locale key of that measure in the tier reasons."""
    value: np.ndarray
    """The valuation ``score``: the order in which eligible accounts fill the capacity."""
    sow: np.ndarray
    sow_known: bool
    pot_cols: tuple[str, ...]
    """Potential columns with data for at least one account."""
    pct: np.ndarray
    """Largest percentile rank of the potential columns (NaN when none has data)."""
    value_pct: np.ndarray
    value_reason: str
    """Why the key value floor is not applied ("" when it is)."""
    status: np.ndarray
    """Account status (``active`` when ``scored`` has no ``status`` column)."""
    active: np.ndarray
    """Active accounts: the only ones that can be key or growth."""


def _has_data(scored: pd.DataFrame, col: str) -> bool:
    return col in scored.columns and bool(np.isfinite(_num(scored, col)).any())


def _statuses(scored: pd.DataFrame) -> np.ndarray:
    """The ``status`` column (missing: ``active``), validated."""
    if "status" not in scored.columns:
        return np.full(len(scored), "active", dtype=object)
    status = scored["status"].astype(object).where(scored["status"].notna(), "active")
    bad = sorted(set(status) - {"active", *LOST_STATUSES})
    if bad:
        raise SegmentationInputError(f"unknown status {bad}; expected active, lapsed or churned")
    return status.to_numpy()


def _rank_among(values: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Percentile ranks of ``values`` among the ``among`` rows (missing: 0; other rows: NaN)."""
    out = np.full(len(values), np.nan)
    if among.any():
        ranks = normalise(pd.Series(values[among], name="v"), "rank").fillna(0.0)
        out[among] = ranks.to_numpy()
    return out


def tier_score_column(scored: pd.DataFrame) -> str:
    """The column the tier thresholds read: ``attractiveness`` when present, else ``score``."""
    return "attractiveness" if "attractiveness" in scored.columns else "score"


def _tier_inputs(scored: pd.DataFrame, cfg: SegmentationSettings) -> _TierInputs:
    _require(scored, "scored", ["account_id", "score"])
    column = tier_score_column(scored)
    score = _num(scored, column)
    if np.isnan(score).any():
        bad = scored.loc[np.isnan(score), "account_id"].head(3).tolist()
        raise SegmentationInputError(f"{column} is missing for account(s) {bad}")
    n = len(scored)
    status = _statuses(scored)
    active = status == "active"
    label = "score" if column == "score" else "attractiveness"
    if cfg.thresholds == "percentile":
        score = np.nan_to_num(100.0 * _rank_among(score, active), nan=0.0)
        label += "_pct"
    sow = (
        _num(scored, "share_of_wallet")
        if "share_of_wallet" in scored.columns
        else np.full(n, np.nan)
    )
    pot_cols = tuple(c for c in cfg.potential_columns if _has_data(scored, c))
    pct = np.where(active, 0.0, np.nan) if pot_cols else np.full(n, np.nan)
    for c in pot_cols:
        pct = np.fmax(pct, _rank_among(_num(scored, c), active))
    value_pct = np.full(n, np.nan)
    value_reason = "off"
    if cfg.key_min_value_pct is not None:
        col = cfg.key_value_column
        if col not in scored.columns:
            raise SegmentationInputError(f"key_min_value_pct needs column {col!r} in scored")
        if _has_data(scored, col):
            value_reason = ""
            value_pct = _rank_among(_num(scored, col), active)
        else:
            value_reason = "no_cost" if col in _COST_COLUMNS else "no_data"
    return _TierInputs(
        score=score,
        score_label=label,
        value=_num(scored, "score"),
        sow=sow,
        sow_known=bool(np.isfinite(sow).any()),
        pot_cols=pot_cols,
        pct=pct,
        value_pct=value_pct,
        value_reason=value_reason,
        status=status,
        active=active,
    )


_COST_COLUMNS = ("gross_profit_12m", "margin_12m", "gross_profit_growth")


@dataclass(frozen=True)
class _Applied:
    """Which tier conditions apply (see :func:`tier_conditions`)."""

    key_sow: str
    key_value: str
    capacity: str
    growth: str
    growth_sow: str
    """Each field: "" when the condition applies, else the reason key."""


def _applied(inp: _TierInputs, cfg: SegmentationSettings, cap: int | None) -> _Applied:
    growth = "" if inp.pot_cols else "no_potential"
    if cfg.key_min_share_of_wallet is None:
        key_sow = "off"
    else:
        key_sow = "" if inp.sow_known else "no_wallet"
    if growth:
        growth_sow = "rule_off"
    else:
        growth_sow = "" if inp.sow_known else "no_wallet"
    return _Applied(
        key_sow=key_sow,
        key_value=inp.value_reason,
        capacity="" if cap is not None else "off",
        growth=growth,
        growth_sow=growth_sow,
    )


def assign_tiers(
    scored: pd.DataFrame,
    settings: SegmentationSettings | None = None,
    *,
    reasons: bool = True,
    lang: str = "en",
) -> pd.DataFrame:
    """Assign each account to a tier: key account, growth candidate or standard.

    Rules, in order (see :class:`SegmentationSettings` for the defaults):

    1. **key**: eligible accounts (score >= ``key_min_score``, share of
       wallet >= ``key_min_share_of_wallet`` and, when set, percentile rank of
       ``key_value_column`` >= ``key_min_value_pct``), taken by descending
       score (ties broken by ``account_id``) until the capacity
       (:func:`key_capacity`) is full. The share-of-wallet floor follows the
       key-account portfolio matrix: key accounts are the attractive
       customers where we already hold a strong position ("strategic");
       attractive customers where our position is weak ("star") are growth
       candidates;
    2. **growth**: not key, potential percentile >= ``growth_min_potential_pct``
       (the larger of the percentile ranks of the ``potential_columns``
       among all accounts; missing values rank lowest), share of wallet <=
       ``growth_max_share_of_wallet`` (a missing share of wallet fails the
       rule) and score >= ``growth_min_score``;
    3. **standard**: every other account.

    Only **active** accounts can be key or growth (``status``, see
    :mod:`kam_analysis.status`): a lapsed or churned account is standard,
    and its ``tier_reason`` says so (with its last purchase or churn date).
    The capacity (:func:`key_capacity` of the number of active accounts) and
    the percentile ranks count active accounts only, so lost accounts,
    whose whole wallet looks like headroom, take no place from live ones.
    Without a ``status`` column every account is active.

    A condition whose data is missing for every account is skipped, not
    failed (:func:`tier_conditions` says which): without wallet estimates
    the share-of-wallet floor of key accounts and ceiling of growth
    candidates do not apply; without cost data a gross-profit floor does
    not apply; and without any potential measure with data (headroom needs
    wallet estimates, whitespace needs product lines) the growth rule has
    nothing to identify growth with, so there are no growth candidates.
    Key accounts still form by score within the capacity.

    Parameters
    ----------
    scored : pandas.DataFrame
        One row per account: ``account_id``, ``score`` (0-100); used when
        present ``share_of_wallet``, the ``potential_columns``
        (``headroom``, ``whitespace``), ``status`` (``active`` / ``lapsed`` /
        ``churned``; missing: active) and, for the reason of a lost account,
        ``last_purchase`` and ``churn_date``.
    settings : SegmentationSettings, optional
    reasons : bool, default True
        Build the ``tier_reason`` text (switch off inside loops).
    lang : str, default "en"
        Language of ``tier_reason`` (``"en"`` or ``"ja"``).

    Returns
    -------
    pandas.DataFrame
        ``account_id``, ``score``, ``potential_pct`` (percentile among the
        active accounts; NaN when no potential measure has data and for lost
        accounts), ``share_of_wallet`` (NaN when unknown), ``tier``
        (``key`` / ``growth`` / ``standard``) and, with ``reasons``,
        ``tier_reason`` naming the rule that fired with the account's
        numbers (skipped conditions are not named; a growth rule that is not
        applied says why). Rows in the order of ``scored``.

    Raises
    ------
    SegmentationInputError
        Missing ``account_id`` or ``score``, repeated accounts, non-numeric or
        missing scores, an unknown status, or ``key_min_value_pct`` set
        without its column.
    """
    cfg = settings or SegmentationSettings()
    inp = _tier_inputs(scored, cfg)
    score, sow, pct = inp.score, inp.sow, inp.pct
    n = len(scored)
    cap = key_capacity(int(inp.active.sum()), cfg)
    applied = _applied(inp, cfg, cap)

    # key: eligibility conditions, then the capacity among the eligible by score
    cond_score = score >= cfg.key_min_score
    cond_sow = np.ones(n, dtype=bool)
    if not applied.key_sow:
        cond_sow = np.nan_to_num(sow, nan=-np.inf) >= cfg.key_min_share_of_wallet
    cond_value = np.ones(n, dtype=bool)
    if not applied.key_value:
        cond_value = inp.value_pct >= cfg.key_min_value_pct
    eligible = cond_score & cond_sow & cond_value & inp.active
    order = _order_by_score(scored["account_id"], np.where(eligible, inp.value, -np.inf))
    key_rank = np.empty(n, dtype="int64")
    key_rank[order] = np.arange(1, n + 1)  # rank among the eligible (they sort first)
    is_key = eligible & ((key_rank <= cap) if cap is not None else True)

    low_sow = np.ones(n, dtype=bool)
    if not applied.growth_sow:
        low_sow = np.nan_to_num(sow, nan=np.inf) <= cfg.growth_max_share_of_wallet
    high_pot = (
        np.nan_to_num(pct, nan=-np.inf) >= cfg.growth_min_potential_pct
        if not applied.growth
        else np.zeros(n, dtype=bool)
    )
    growth_score = score >= cfg.growth_min_score
    is_growth = ~is_key & high_pot & low_sow & growth_score & inp.active
    tier = np.where(is_key, "key", np.where(is_growth, "growth", "standard")).astype(object)

    out = pd.DataFrame(
        {
            "account_id": scored["account_id"].to_numpy(),
            "score": score,
            "potential_pct": pct,
            "share_of_wallet": sow,
            "tier": tier,
        }
    )
    if reasons:
        checks = pd.DataFrame(
            {
                "tier": tier,
                "score": score,
                "sow": sow,
                "pct": pct,
                "value_pct": inp.value_pct,
                "key_rank": key_rank,
                "cond_score": cond_score,
                "cond_sow": cond_sow,
                "cond_value": cond_value,
                "eligible": eligible,
                "high_pot": high_pot,
                "low_sow": low_sow,
                "growth_score": growth_score,
            }
        )
        growth_off = _why_text(applied.growth, cfg, lang) if applied.growth else ""
        out["tier_reason"] = [
            _reason(r, cfg, cap, lang, applied, growth_off, inp.score_label)
            for r in checks.itertuples(index=False)
        ]
        lost = ~inp.active
        if lost.any():
            out.loc[lost, "tier_reason"] = _lost_reasons(scored[lost], cfg, lang)
    return out


def _day_text(value, lang: str) -> str:
    """A date as ``YYYY-MM-DD`` (``unknown`` in ``lang`` when missing)."""
    day = pd.Timestamp(value) if value is not None else pd.NaT
    return t("tier.reason.unknown", lang) if pd.isna(day) else day.date().isoformat()


def _lost_reasons(lost: pd.DataFrame, cfg: SegmentationSettings, lang: str) -> list[str]:
    """``tier_reason`` of lapsed and churned accounts: standard, and why (with the date)."""
    last = lost["last_purchase"] if "last_purchase" in lost.columns else [None] * len(lost)
    churn = lost["churn_date"] if "churn_date" in lost.columns else [None] * len(lost)
    out = []
    for status, lp, cd in zip(lost["status"], last, churn, strict=True):
        out.append(
            t(
                f"tier.reason.{status}",
                lang,
                months=cfg.lapse_months,
                last=_day_text(lp, lang),
                date=_day_text(cd, lang),
            )
        )
    return out


def _reason(
    r,
    cfg: SegmentationSettings,
    cap: int | None,
    lang: str = "en",
    applied: _Applied | None = None,
    growth_off: str = "",
    score_label: str = "score",
) -> str:
    """Text naming the rule that fired (or every applied rule that failed) for one account."""

    applied = applied or _Applied(
        key_sow="" if cfg.key_min_share_of_wallet is not None else "off",
        key_value="" if cfg.key_min_value_pct is not None else "off",
        capacity="" if cap is not None else "off",
        growth="",
        growth_sow="",
    )

    def rule(key: str, value: str, op: str, limit: float, **extra: str) -> str:
        return t(f"tier.reason.{key}", lang, value=value, op=op, limit=f"{limit:g}", **extra)

    cap_txt = t("tier.reason.no_cap", lang) if cap is None else t("tier.reason.cap", lang, cap=cap)
    sow_txt = t("tier.reason.unknown", lang) if np.isnan(r.sow) else f"{r.sow:.2f}"
    score_txt = f"{r.score:.1f}"
    column = label_for(cfg.key_value_column, lang, prefix="valuation.col.")
    and_ = t("tier.reason.and", lang)
    if r.tier == "key":
        parts = [rule(score_label, score_txt, ">=", cfg.key_min_score)]
        if not applied.key_sow:
            parts.append(rule("sow", sow_txt, ">=", cfg.key_min_share_of_wallet))
        if not applied.key_value:
            parts.append(
                rule("value_pct", f"{r.value_pct:.2f}", ">=", cfg.key_min_value_pct, column=column)
            )
        return t("tier.reason.key", lang, rules=and_.join(parts), rank=r.key_rank, cap=cap_txt)
    if r.tier == "growth":
        parts = [rule("potential_pct", f"{r.pct:.2f}", ">=", cfg.growth_min_potential_pct)]
        if not applied.growth_sow:
            parts.append(rule("sow", sow_txt, "<=", cfg.growth_max_share_of_wallet))
        parts.append(rule(score_label, score_txt, ">=", cfg.growth_min_score))
        return t("tier.reason.growth", lang, rules=and_.join(parts))
    key_fail = []
    if not r.cond_score:
        key_fail.append(rule(score_label, score_txt, "<", cfg.key_min_score))
    if not r.cond_sow:
        key_fail.append(rule("sow", sow_txt, "<", cfg.key_min_share_of_wallet))
    if not r.cond_value:
        key_fail.append(
            rule("value_pct", f"{r.value_pct:.2f}", "<", cfg.key_min_value_pct, column=column)
        )
    if r.eligible:
        key_fail.append(t("tier.reason.beyond_cap", lang, rank=r.key_rank, cap=cap_txt))
    growth_fail = []
    if applied.growth:
        growth_fail.append(t("tier.reason.growth_off", lang, why=growth_off))
    else:
        if not r.high_pot:
            growth_fail.append(
                rule("potential_pct", f"{r.pct:.2f}", "<", cfg.growth_min_potential_pct)
            )
        if not r.low_sow:
            growth_fail.append(rule("sow", sow_txt, ">", cfg.growth_max_share_of_wallet))
        if not r.growth_score:
            growth_fail.append(rule(score_label, score_txt, "<", cfg.growth_min_score))
    sep = t("tier.reason.sep", lang)
    return t(
        "tier.reason.standard",
        lang,
        key_rules=sep.join(key_fail),
        growth_rules=sep.join(growth_fail),
    )


def _why_text(reason: str, cfg: SegmentationSettings, lang: str) -> str:
    """The words for a skipped condition's reason key (``tier.why.<reason>``)."""

    column = label_for(cfg.key_value_column, lang, prefix="valuation.col.")
    return t(f"tier.why.{reason}", lang, column=column)


TIER_CONDITIONS: tuple[tuple[str, str], ...] = (
    ("key", "score"),
    ("key", "share_of_wallet"),
    ("key", "value_pct"),
    ("key", "capacity"),
    ("growth", "potential"),
    ("growth", "share_of_wallet"),
    ("growth", "score"),
)
"""The conditions of the tier rule, as ``(tier, condition)``, in the order they are checked."""

TIER_SKIP_REASONS: tuple[str, ...] = (
    "off",
    "no_wallet",
    "no_cost",
    "no_data",
    "no_potential",
    "rule_off",
)
"""Why a tier condition is not applied (the ``reason`` of :func:`tier_conditions`)."""


def tier_conditions(
    scored: pd.DataFrame,
    settings: SegmentationSettings | None = None,
    *,
    lang: str | None = "en",
) -> pd.DataFrame:
    """Which conditions of the tier rule apply to this book, and why the others are skipped.

    Parameters
    ----------
    scored : pandas.DataFrame
        As for :func:`assign_tiers`.
    settings : SegmentationSettings, optional
    lang : str or None, default "en"
        Language of the ``text`` column; ``None`` leaves it out (no locale
        lookup).

    Returns
    -------
    pandas.DataFrame
        One row per condition of :data:`TIER_CONDITIONS`: ``tier`` (``key``
        or ``growth``), ``condition`` (``score``, ``share_of_wallet``,
        ``value_pct``, ``capacity``, ``potential``), ``setting`` (the
        configured limit; the capacity in accounts; NaN when switched off),
        ``applied`` (bool), ``reason`` ("" when applied, else one of
        :data:`TIER_SKIP_REASONS`: ``off`` switched off in the configuration,
        ``no_wallet`` no share of wallet for any account, ``no_cost`` /
        ``no_data`` no value of ``key_value_column``, ``no_potential`` no
        potential measure with data, ``rule_off`` the growth rule is not
        applied) and, with ``lang``, ``text``: the condition and its status
        in words.

    Raises
    ------
    SegmentationInputError
        As for :func:`assign_tiers`.
    """
    cfg = settings or SegmentationSettings()
    inp = _tier_inputs(scored, cfg)
    cap = key_capacity(int(inp.active.sum()), cfg)
    applied = _applied(inp, cfg, cap)
    growth_on = not applied.growth
    rows = [
        ("key", "score", cfg.key_min_score, ""),
        ("key", "share_of_wallet", cfg.key_min_share_of_wallet, applied.key_sow),
        ("key", "value_pct", cfg.key_min_value_pct, applied.key_value),
        ("key", "capacity", cap, applied.capacity),
        ("growth", "potential", cfg.growth_min_potential_pct, applied.growth),
        ("growth", "share_of_wallet", cfg.growth_max_share_of_wallet, applied.growth_sow),
        ("growth", "score", cfg.growth_min_score, "" if growth_on else "rule_off"),
    ]
    out = pd.DataFrame(
        {
            "tier": [r[0] for r in rows],
            "condition": [r[1] for r in rows],
            "setting": [np.nan if r[2] is None else float(r[2]) for r in rows],
            "applied": [r[3] == "" for r in rows],
            "reason": [r[3] for r in rows],
        }
    )
    if lang is not None:
        out["text"] = [
            _condition_text(tier, cond, setting, reason, cfg, inp, lang)
            for tier, cond, setting, reason in zip(
                out["tier"], out["condition"], out["setting"], out["reason"], strict=True
            )
        ]
    return out


def _condition_text(
    tier: str,
    condition: str,
    setting: float,
    reason: str,
    cfg: SegmentationSettings,
    inp: _TierInputs,
    lang: str,
) -> str:
    fraction = condition in ("share_of_wallet", "value_pct", "potential")
    if np.isnan(setting):
        limit = ""
    elif fraction:  # shares and percentile ranks read as percentages
        limit = f"{setting * 100:g}%"
    else:
        limit = f"{setting:g}"
    key = {
        ("key", "score"): f"tier.cond.{inp.score_label}",
        ("key", "share_of_wallet"): "tier.cond.key_sow",
        ("key", "value_pct"): "tier.cond.value_pct",
        ("key", "capacity"): "tier.cond.capacity",
        ("growth", "potential"): "tier.cond.potential",
        ("growth", "share_of_wallet"): "tier.cond.growth_sow",
        ("growth", "score"): f"tier.cond.{inp.score_label}",
    }[(tier, condition)]
    pot = inp.pot_cols or cfg.potential_columns
    columns = t("tier.reason.and", lang).join(
        label_for(c, lang, prefix="valuation.criterion.") for c in pot
    )
    column = label_for(cfg.key_value_column, lang, prefix="valuation.col.")
    tier_label = label_for(tier, lang, prefix="tier.")
    if reason == "off":  # switched off in the configuration: say so, without a limit
        off_key = {
            "capacity": "tier.reason.no_cap",
            "share_of_wallet": "tier.cond.key_sow_off",
            "value_pct": "tier.cond.value_pct_off",
        }[condition]
        return t("tier.rule.off", lang, tier=tier_label, condition=t(off_key, lang, column=column))
    cap = "" if np.isnan(setting) else f"{int(setting):,}"
    cond_text = t(key, lang, limit=limit, cap=cap, column=column, columns=columns)
    if not reason:
        return t("tier.rule.applied", lang, tier=tier_label, condition=cond_text)
    why = _why_text(reason, cfg, lang)
    return t("tier.rule.skipped", lang, tier=tier_label, condition=cond_text, why=why)


@dataclass(frozen=True)
class TierRule:
    """The tier rule as it applied to one book (:func:`tier_rule`)."""

    conditions: pd.DataFrame
    """:func:`tier_conditions` (with ``text`` when a language was given)."""
    n_accounts: int
    capacity: int | None
    """Most key accounts allowed (:func:`key_capacity`; None: no cap)."""
    n_key: int
    n_growth: int
    no_key_reason: str | None
    """Why there is no key account (None when there is one): ``no_accounts``,
    ``no_active`` (every account is lapsed or churned), ``capacity_zero``,
    ``score_floor`` (no active account's score reaches ``key_min_score``),
    ``sow_floor`` (none of those has the share-of-wallet floor) or
    ``value_floor`` (none of those has the value floor)."""
    no_key_text: str
    """``no_key_reason`` in words ("" when there are key accounts or without a language)."""
    growth_applied: bool
    """The growth rule was applied (a potential measure has data)."""
    n_lapsed: int = 0
    """Accounts lapsed at the as-of date (standard whatever their score)."""
    n_churned: int = 0
    """Accounts churned at the as-of date (standard whatever their score)."""


def tier_rule(
    scored: pd.DataFrame,
    settings: SegmentationSettings | None = None,
    *,
    lang: str | None = "en",
) -> TierRule:
    """The tier rule of :func:`assign_tiers` as it applied to this book, for the report.

    Lists the conditions that applied and those skipped for lack of data
    (:func:`tier_conditions`), counts the key accounts and growth
    candidates, and when no account is a key account says which condition
    left none (checked in the order score floor, share-of-wallet floor,
    value floor), so that a page never shows an empty key-account list
    without a reason.

    Parameters
    ----------
    scored : pandas.DataFrame
        As for :func:`assign_tiers`.
    settings : SegmentationSettings, optional
    lang : str or None, default "en"
        Language of the texts (``None``: keys only).

    Returns
    -------
    TierRule

    Raises
    ------
    SegmentationInputError
        As for :func:`assign_tiers`.
    """

    cfg = settings or SegmentationSettings()
    tiers = assign_tiers(scored, cfg, reasons=False)
    conditions = tier_conditions(scored, cfg, lang=lang)
    inp = _tier_inputs(scored, cfg)
    n = len(scored)
    cap = key_capacity(int(inp.active.sum()), cfg)
    applied = _applied(inp, cfg, cap)
    n_key = int((tiers["tier"] == "key").sum())
    reason: str | None = None
    best = float(np.max(inp.score[inp.active])) if inp.active.any() else float("nan")
    if n_key == 0:
        # the first condition, in the order they are checked, that leaves nobody
        left = (inp.score >= cfg.key_min_score) & inp.active
        if not applied.key_sow:
            after_sow = left & (np.nan_to_num(inp.sow, nan=-np.inf) >= cfg.key_min_share_of_wallet)
        else:
            after_sow = left
        after_value = after_sow
        if not applied.key_value:
            after_value = after_sow & (inp.value_pct >= cfg.key_min_value_pct)
        if n == 0:
            reason = "no_accounts"
        elif not inp.active.any():
            reason = "no_active"
        elif cap == 0:
            reason = "capacity_zero"
        elif not left.any():
            reason = "score_floor"
        elif not after_sow.any():
            reason = "sow_floor"
        elif not after_value.any():
            reason = "value_floor"
    text = ""
    if reason is not None and lang is not None:
        column = label_for(cfg.key_value_column, lang, prefix="valuation.col.")
        key = f"tier.none.{reason}"
        if reason == "score_floor" and cfg.thresholds == "percentile":
            key += "_pct"  # already percentile ranks: the scores barely differ
        why = t(
            key,
            lang,
            limit=(
                f"{_limit_of(reason, cfg) * 100:g}%"
                if reason in ("sow_floor", "value_floor")
                else f"{_limit_of(reason, cfg):g}"
            ),
            best=f"{best:.1f}",
            score=f"{cfg.key_min_score:g}",
            column=column,
        )
        text = t("tier.none.key", lang, why=why)
    return TierRule(
        conditions=conditions,
        n_accounts=n,
        capacity=cap,
        n_key=n_key,
        n_growth=int((tiers["tier"] == "growth").sum()),
        no_key_reason=reason,
        no_key_text=text,
        growth_applied=not applied.growth,
        n_lapsed=int((inp.status == "lapsed").sum()),
        n_churned=int((inp.status == "churned").sum()),
    )


def _limit_of(reason: str, cfg: SegmentationSettings) -> float:
    return {
        "score_floor": cfg.key_min_score,
        "sow_floor": cfg.key_min_share_of_wallet or 0.0,
        "value_floor": cfg.key_min_value_pct or 0.0,
    }.get(reason, 0.0)


# --------------------------------------------------------------------------- portfolio matrix


def portfolio_matrix(
    scored: pd.DataFrame,
    features: pd.DataFrame | None = None,
    *,
    settings: SegmentationSettings | None = None,
) -> pd.DataFrame:
    """Key-account portfolio matrix: customer attractiveness x our relative position.

    The vertical axis is the customer's attractiveness to us, 0-100: the
    customer-side ``attractiveness`` column when ``scored`` has it
    (:func:`kam_analysis.valuation.customer_attractiveness`: the customer's
    size, growth and strategic value), else the valuation ``score``. The
    horizontal axis is our position with the customer ("relative business
    strength" in the literature), 0-100: the weighted mean of the
    percentile ranks (:func:`kam_analysis.valuation.normalise`) of
    ``share_of_wallet`` (how much of its category spend we already win), our
    revenue with it ``revenue_12m``, relationship length ``tenure_days``,
    order frequency ``orders_12m`` and,
    when provided, ``stakeholder_coverage`` (e.g. share of buying-centre
    roles covered, from :mod:`kam_analysis.stakeholders`). A component
    missing for every account (no wallet estimates: no share of wallet) is
    left out and the weights renormalised; an account missing a component
    is placed on the components it has (its weights renormalised over them,
    as in :func:`kam_analysis.valuation.attractiveness_score`), and an
    account with none has an unknown position (NaN, counted as low). Splits
    are the medians unless configured; a value equal to the split counts as
    high.

    ========== ============== ========= ========================================
    quadrant   attractiveness position  resource level
    ========== ============== ========= ========================================
    strategic  high           high      invest (develop the partnership)
    star       high           low       selectively invest (build our position)
    status     low            high      maintain (serve efficiently, keep)
    streamline low            low       minimise cost-to-serve
    ========== ============== ========= ========================================

    Parameters
    ----------
    scored : pandas.DataFrame
        ``account_id`` and ``score``; the position columns are taken from
        here unless ``features`` is given.
    features : pandas.DataFrame, optional
        Account features with the position columns (joined on ``account_id``).
    settings : SegmentationSettings, optional
        ``position_weights``, ``attractiveness_split``, ``position_split``.

    Returns
    -------
    pandas.DataFrame
        ``account_id``, ``attractiveness`` (the vertical axis), ``position`` (0-100;
        NaN when no component is known for the account),
        ``position_<component>`` (percentile rank of each component with
        data; NaN where unknown), ``quadrant``, ``resource_level``; rows in
        the order of ``scored``.

    Raises
    ------
    SegmentationInputError
        Missing ``score`` or none of the position columns available.

    References
    ----------
    .. [1] Woodburn, D., & McDonald, M. (2011). Key Account Management: The
       Definitive Guide (3rd ed.). Wiley. Ch. "Selecting and categorising key
       accounts": strategic, status, star and streamline customers.
    .. [2] McDonald, M., Millman, T., & Rogers, B. (1997). Key account
       management: theory, practice and challenges. Journal of Marketing
       Management, 13(8), 737-757.
    .. [3] Millman, T., & Wilson, K. (1995). From key account selling to key
       account management. Journal of Marketing Practice, 1(1), 9-21
       (account attractiveness x business strengths: invest for growth,
       invest selectively, maintain, manage for cash).
    """
    cfg = settings or SegmentationSettings()
    _require(scored, "scored", ["account_id", "score"])
    axis = tier_score_column(scored)
    base = scored
    if features is not None:
        _require(features, "features", ["account_id"])
        cols = ["account_id"] + [c for c in cfg.position_weights if c in features.columns]
        base = scored[["account_id", axis]].merge(features[cols], on="account_id", how="left")
    present = {c: w for c, w in cfg.position_weights.items() if c in base.columns and w > 0}
    if not present:
        raise SegmentationInputError(
            f"no position column available; need one of {list(cfg.position_weights)}"
        )
    weights = {c: w for c, w in present.items() if _has_data(base, c)}
    out = pd.DataFrame(
        {"account_id": base["account_id"].to_numpy(), "attractiveness": _num(base, axis)}
    )
    num = np.zeros(len(base))
    den = np.zeros(len(base))
    for c, w in weights.items():
        p = normalise(pd.Series(_num(base, c), name=c), "rank").to_numpy()
        out[f"position_{c}"] = p
        known = ~np.isnan(p)
        num += np.where(known, w * p, 0.0)
        den += np.where(known, w, 0.0)
    with np.errstate(all="ignore"):
        out["position"] = np.where(den > 0, 100.0 * num / den, np.nan)
    a_split = (
        np.median(out["attractiveness"])
        if cfg.attractiveness_split is None
        else cfg.attractiveness_split
    )
    p_split = (
        _nanmedian(out["position"].to_numpy()) if cfg.position_split is None else cfg.position_split
    )
    high_a = out["attractiveness"].to_numpy() >= a_split
    high_p = out["position"].to_numpy() >= p_split
    quadrant = np.select(
        [high_a & high_p, high_a & ~high_p, ~high_a & high_p],
        ["strategic", "star", "status"],
        default="streamline",
    ).astype(object)
    out["quadrant"] = quadrant
    out["resource_level"] = pd.Series(quadrant).map(RESOURCE_LEVELS).to_numpy()
    return out


def _nanmedian(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else float("nan")


# --------------------------------------------------------------------------- Pareto / ABC


def gini(values) -> float:
    """Gini coefficient of non-negative values (0 = all equal, (n-1)/n = one holds all).

    ``G = 2 * sum_i i * x_(i) / (n * sum x) - (n + 1) / n`` with the values
    sorted ascending and ``i = 1..n``.

    Parameters
    ----------
    values : array-like
        Non-negative numbers; NaN are dropped.

    Returns
    -------
    float
        NaN when there are no values or they sum to 0.

    Raises
    ------
    SegmentationInputError
        Negative values.
    """
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if (x < 0).any():
        raise SegmentationInputError(f"gini needs non-negative values; got e.g. {x[x < 0][:3]}")
    n = x.size
    if n == 0 or x.sum() == 0:
        return float("nan")
    x = np.sort(x)
    i = np.arange(1, n + 1)
    return float(2.0 * np.sum(i * x) / (n * x.sum()) - (n + 1.0) / n)


def pareto_table(
    features: pd.DataFrame,
    value: str = "revenue_12m",
    *,
    gross_profit: str | None = "gross_profit_12m",
    abc_shares: tuple[float, float] = (0.8, 0.95),
) -> pd.DataFrame:
    """Pareto (concentration) curve and ABC classes of accounts.

    Accounts are sorted by ``value`` descending (ties by ``account_id``). An
    account belongs to class A while the cumulative share *before* it is
    below ``abc_shares[0]`` (so the account that crosses 80 % is still A),
    to B while it is below ``abc_shares[1]``, else to C. An account whose
    value is negative (net revenue after credit notes) holds no share of
    the book: its value counts as 0.

    Parameters
    ----------
    features : pandas.DataFrame
        ``account_id`` and ``value`` (negative values count as 0);
        ``gross_profit`` if given and present.
    value : str, default "revenue_12m"
    gross_profit : str or None, default "gross_profit_12m"
        Column for the cumulative gross-profit curve in the same account
        order (skipped when absent).
    abc_shares : (float, float), default (0.8, 0.95)

    Returns
    -------
    pandas.DataFrame
        Sorted rows: ``rank`` (1 = largest), ``account_id``, ``value``
        (negative values as 0), ``share``, ``cum_share``,
        ``cum_account_share`` (rank / n), ``cum_gp_share`` (when the column
        is present; can exceed 1 or fall when some accounts lose money; NaN
        when no gross profit is known), ``abc``.

    Raises
    ------
    SegmentationInputError
        Missing column, missing values, zero total, bad shares.
    """
    _require(features, "features", ["account_id", value])
    if not 0 < abc_shares[0] < abc_shares[1] <= 1:
        raise SegmentationInputError(f"abc_shares must satisfy 0 < A < B <= 1, got {abc_shares}")
    v = _num(features, value)
    if np.isnan(v).any():
        bad = features.loc[np.isnan(v), ["account_id", value]].head(3)
        raise SegmentationInputError(
            f"{value} must be present for the Pareto table; bad rows: {bad.to_dict('records')}"
        )
    v = np.maximum(v, 0.0)  # a net credit holds no share of the book
    total = v.sum()
    if total <= 0:
        raise SegmentationInputError(f"{value} sums to 0; nothing to rank")
    order = _order_by_score(features["account_id"], v)
    n = len(v)
    vs = v[order]
    cum = np.cumsum(vs) / total
    before = cum - vs / total
    out = pd.DataFrame(
        {
            "rank": np.arange(1, n + 1),
            "account_id": features["account_id"].to_numpy()[order],
            "value": vs,
            "share": vs / total,
            "cum_share": cum,
            "cum_account_share": np.arange(1, n + 1) / n,
        }
    )
    if gross_profit is not None and gross_profit in features.columns:
        gp_raw = _num(features, gross_profit)[order]
        gp = np.nan_to_num(gp_raw)
        gp_total = gp.sum()
        known = np.isfinite(gp_raw).any()
        out["cum_gp_share"] = np.cumsum(gp) / gp_total if known and gp_total != 0 else np.nan
    # small tolerance so that floating sums like 0.8000000001 do not change the class
    eps = 1e-12
    out["abc"] = np.where(
        before < abc_shares[0] - eps, "A", np.where(before < abc_shares[1] - eps, "B", "C")
    )
    return out


def pareto_summary(
    features: pd.DataFrame,
    value: str = "revenue_12m",
    *,
    top: float = 0.2,
    abc_shares: tuple[float, float] = (0.8, 0.95),
) -> pd.DataFrame:
    """Concentration in one row: Gini, share of the top accounts, ABC counts.

    Parameters
    ----------
    features : pandas.DataFrame
        ``account_id`` and ``value``.
    value : str, default "revenue_12m"
    top : float, default 0.2
        Fraction of accounts in the "top" share (the ``ceil(top * n)`` largest).
    abc_shares : (float, float)

    Returns
    -------
    pandas.DataFrame
        One row: ``n_accounts``, ``total``, ``gini``, ``top_share`` (value
        share of the top ``ceil(top * n)`` accounts), ``n_top``, ``n_a``,
        ``n_b``, ``n_c``.
    """
    if not 0 < top <= 1:
        raise SegmentationInputError(f"top must lie in (0, 1], got {top}")
    table = pareto_table(features, value, gross_profit=None, abc_shares=abc_shares)
    n = len(table)
    n_top = int(np.ceil(top * n - 1e-9))
    counts = table["abc"].value_counts()
    return pd.DataFrame(
        [
            {
                "n_accounts": n,
                "total": float(table["value"].sum()),
                "gini": gini(table["value"]),
                "top_share": float(table["share"].iloc[:n_top].sum()),
                "n_top": n_top,
                "n_a": int(counts.get("A", 0)),
                "n_b": int(counts.get("B", 0)),
                "n_c": int(counts.get("C", 0)),
            }
        ]
    )


# --------------------------------------------------------------------------- agreement


def _contingency(a, b) -> np.ndarray:
    a = np.asarray(a, dtype=object)
    b = np.asarray(b, dtype=object)
    if a.shape != b.shape or a.ndim != 1:
        raise SegmentationInputError(
            f"label vectors must be 1-d and of equal length, got {a.shape} and {b.shape}"
        )
    _, ai = np.unique(a.astype(str), return_inverse=True)
    _, bi = np.unique(b.astype(str), return_inverse=True)
    table = np.zeros((ai.max(initial=-1) + 1, bi.max(initial=-1) + 1))
    np.add.at(table, (ai, bi), 1)
    return table


def adjusted_rand_index(labels_a, labels_b) -> float:
    """Adjusted Rand index of two partitions (1 = identical up to renaming, ~0 = chance).

    Parameters
    ----------
    labels_a, labels_b : array-like
        One label per item.

    Returns
    -------
    float
        NaN for fewer than two items; 1.0 when both partitions are trivial
        and equal.

    References
    ----------
    .. [1] Hubert, L., & Arabie, P. (1985). Comparing partitions. Journal of
       Classification, 2(1), 193-218.
    """
    table = _contingency(labels_a, labels_b)
    n = table.sum()
    if n < 2:
        return float("nan")

    def comb2(x):
        return x * (x - 1) / 2.0

    sum_ij = comb2(table).sum()
    sum_a = comb2(table.sum(axis=1)).sum()
    sum_b = comb2(table.sum(axis=0)).sum()
    expected = sum_a * sum_b / comb2(n)
    max_index = 0.5 * (sum_a + sum_b)
    if max_index == expected:
        return 1.0
    return float((sum_ij - expected) / (max_index - expected))


def cohens_kappa(labels_a, labels_b) -> float:
    """Cohen's kappa: agreement of two labelings beyond chance.

    ``kappa = (p_o - p_e) / (1 - p_e)`` with observed agreement ``p_o`` and
    the agreement ``p_e`` expected from the two marginal distributions.

    Parameters
    ----------
    labels_a, labels_b : array-like
        One label per item, from the same label set.

    Returns
    -------
    float
        NaN when there are no items or ``p_e = 1``.

    References
    ----------
    .. [1] Cohen, J. (1960). A coefficient of agreement for nominal scales.
       Educational and Psychological Measurement, 20(1), 37-46.
    .. [2] Landis, J. R., & Koch, G. G. (1977). The measurement of observer
       agreement for categorical data. Biometrics, 33(1), 159-174
       (0.61-0.80 "substantial", 0.81-1 "almost perfect").
    """
    a = np.asarray(labels_a, dtype=object).astype(str)
    b = np.asarray(labels_b, dtype=object).astype(str)
    if a.shape != b.shape or a.ndim != 1:
        raise SegmentationInputError(
            f"label vectors must be 1-d and of equal length, got {a.shape} and {b.shape}"
        )
    n = a.size
    if n == 0:
        return float("nan")
    labels = np.union1d(a, b)
    pa = np.array([(a == lab).mean() for lab in labels])
    pb = np.array([(b == lab).mean() for lab in labels])
    po = (a == b).mean()
    pe = float((pa * pb).sum())
    if pe == 1.0:
        return float("nan")
    return float((po - pe) / (1.0 - pe))


# --------------------------------------------------------------------------- clustering


def kmeans(
    x: np.ndarray, k: int, *, seed: int = 0, n_init: int = 10, max_iter: int = 300
) -> tuple[np.ndarray, np.ndarray, float]:
    """k-means (Lloyd's algorithm, k-means++ seeding), best of ``n_init`` starts.

    Parameters
    ----------
    x : numpy.ndarray
        ``n x d`` data without missing values.
    k : int
        Number of clusters (1 <= k <= n).
    seed : int, default 0
    n_init : int, default 10
    max_iter : int, default 300

    Returns
    -------
    labels : numpy.ndarray
        Cluster index per row.
    centers : numpy.ndarray
        ``k x d`` centres.
    inertia : float
        Sum of squared distances to the nearest centre.

    References
    ----------
    .. [1] Arthur, D., & Vassilvitskii, S. (2007). k-means++: the advantages of
       careful seeding. Proc. SODA, 1027-1035.
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[0]
    if not 1 <= k <= n:
        raise SegmentationInputError(f"k must lie in [1, {n}], got {k}")
    if np.isnan(x).any():
        raise SegmentationInputError("kmeans input has missing values")
    rng = np.random.default_rng(seed)
    best = (None, None, np.inf)
    for _ in range(n_init):
        centers = np.empty((k, x.shape[1]))
        centers[0] = x[rng.integers(n)]
        d2 = ((x - centers[0]) ** 2).sum(axis=1)
        for j in range(1, k):
            p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1.0 / n)
            centers[j] = x[rng.choice(n, p=p)]
            d2 = np.minimum(d2, ((x - centers[j]) ** 2).sum(axis=1))
        labels = np.zeros(n, dtype=int)
        for it in range(max_iter):
            dist = ((x[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
            new = dist.argmin(axis=1)
            if it > 0 and np.array_equal(new, labels):
                break
            labels = new
            for j in range(k):
                members = x[labels == j]
                if len(members):
                    centers[j] = members.mean(axis=0)
                else:  # empty cluster: restart it at the farthest point
                    centers[j] = x[dist.min(axis=1).argmax()]
        inertia = float(((x - centers[labels]) ** 2).sum())
        if inertia < best[2]:
            best = (labels.copy(), centers.copy(), inertia)
    return best


@dataclass(frozen=True)
class ClusterCheck:
    """Result of :func:`cluster_check`."""

    assignments: pd.DataFrame
    """``account_id``, ``tier``, ``cluster`` (``C1`` = highest mean score), ``matched_tier``."""
    crosstab: pd.DataFrame
    """Counts: rule tiers (rows) x clusters (columns)."""
    centers: pd.DataFrame
    """Cluster means of the raw (unstandardised) features, with ``n``."""
    ari: float
    """Adjusted Rand index of clusters vs tiers."""
    kappa: float
    """Cohen's kappa of tiers vs the cluster-matched tiers."""


def cluster_check(
    table: pd.DataFrame,
    tiers: pd.DataFrame | pd.Series,
    *,
    k: int = 3,
    seed: int = 0,
    features: Sequence[str] = ("revenue_12m", "wallet_estimate", "share_of_wallet", "score"),
    log_features: Sequence[str] = ("revenue_12m", "wallet_estimate", "headroom", "whitespace"),
) -> ClusterCheck:
    """Cross-check rule-based tiers against an unsupervised k-means clustering.

    The features are transformed (``log1p`` for amounts in ``log_features``,
    negative amounts clipped to 0), missing values replaced by the median,
    and standardised (z-scores); k-means (:func:`kmeans`) groups the accounts.
    Clusters are named ``C1 .. Ck`` by descending mean score. Agreement with
    the rules: the adjusted Rand index (label-free), and Cohen's kappa after
    matching each cluster to one tier so that agreement is largest
    (Hungarian algorithm; unmatched clusters when ``k`` exceeds the number of
    tiers keep their cluster name).

    Parameters
    ----------
    table : pandas.DataFrame
        ``account_id`` and the ``features``.
    tiers : pandas.DataFrame or pandas.Series
        Output of :func:`assign_tiers` (``account_id``, ``tier``) or a Series
        of tiers indexed by ``account_id``.
    k : int, default 3
    seed : int, default 0
    features : sequence of str
    log_features : sequence of str

    Returns
    -------
    ClusterCheck

    Raises
    ------
    SegmentationInputError
        Missing columns, tiers not covering the accounts, or a bad ``k``.
    """
    _require(table, "table", ["account_id", *features])
    if isinstance(tiers, pd.Series):
        tiers = pd.DataFrame({"account_id": tiers.index.to_numpy(), "tier": tiers.to_numpy()})
    _require(tiers, "tiers", ["account_id", "tier"])
    t = table[["account_id", *features]].merge(
        tiers[["account_id", "tier"]], on="account_id", how="left"
    )
    if t["tier"].isna().any():
        missing = t.loc[t["tier"].isna(), "account_id"].head(3).tolist()
        raise SegmentationInputError(f"tiers has no tier for account(s) {missing}")
    cols = []
    for c in features:
        v = _num(t, c)
        if c in log_features:
            v = np.log1p(np.clip(v, 0, None))
        med = np.nanmedian(v) if np.isfinite(v).any() else 0.0
        v = np.where(np.isnan(v), med, v)
        sd = v.std()
        cols.append((v - v.mean()) / sd if sd > 0 else np.zeros_like(v))
    x = np.column_stack(cols)
    labels, _, _ = kmeans(x, k, seed=seed)

    score_col = "score" if "score" in features else features[0]
    score = _num(t, score_col)
    means = np.array(
        [score[labels == j].mean() if (labels == j).any() else -np.inf for j in range(k)]
    )
    rank_of = np.empty(k, dtype=int)
    rank_of[np.argsort(-means, kind="stable")] = np.arange(k)
    names = np.array([f"C{r + 1}" for r in rank_of], dtype=object)
    cluster = names[labels]

    tier = t["tier"].astype(str).to_numpy()
    crosstab = pd.crosstab(pd.Series(tier, name="tier"), pd.Series(cluster, name="cluster"))
    tier_order = [x for x in TIERS if x in crosstab.index] + sorted(
        set(crosstab.index) - set(TIERS)
    )
    crosstab = crosstab.reindex(
        index=tier_order, columns=sorted(crosstab.columns, key=lambda c: int(c[1:]))
    )
    rows, cols_ = linear_sum_assignment(-crosstab.to_numpy())
    mapping = {crosstab.columns[c]: crosstab.index[r] for r, c in zip(rows, cols_, strict=True)}
    matched = np.array([mapping.get(c, c) for c in cluster], dtype=object)

    centers = (
        t[list(features)].apply(pd.to_numeric).assign(cluster=cluster).groupby("cluster").mean()
    )
    centers["n"] = pd.Series(cluster).value_counts()
    centers = centers.loc[crosstab.columns]
    assignments = pd.DataFrame(
        {
            "account_id": t["account_id"].to_numpy(),
            "tier": tier,
            "cluster": cluster,
            "matched_tier": matched,
        }
    )
    return ClusterCheck(
        assignments=assignments,
        crosstab=crosstab,
        centers=centers,
        ari=adjusted_rand_index(tier, cluster),
        kappa=cohens_kappa(tier, matched),
    )


# --------------------------------------------------------------------------- migration


@dataclass(frozen=True)
class TierMigration:
    """Result of :func:`tier_migration`."""

    counts: pd.DataFrame
    """Accounts by previous tier (rows, incl. ``(new)``) and current tier (columns, incl. ``(gone)``)."""
    shares: pd.DataFrame
    """``counts`` divided by row totals (each row sums to 1; empty rows are NaN)."""
    movers: pd.DataFrame
    """``account_id``, ``tier_prev``, ``tier_now``, ``direction`` (up, down, new, gone)."""


def _as_tier_frame(tiers: pd.DataFrame | pd.Series, name: str, tier_col: str) -> pd.DataFrame:
    if isinstance(tiers, pd.Series):
        tiers = pd.DataFrame({"account_id": tiers.index.to_numpy(), tier_col: tiers.to_numpy()})
    _require(tiers, name, ["account_id", tier_col])
    return tiers[["account_id", tier_col]].rename(columns={tier_col: "tier"})


def tier_migration(
    tiers_prev: pd.DataFrame | pd.Series,
    tiers_now: pd.DataFrame | pd.Series,
    *,
    tier_col: str = "tier",
    order: Sequence[str] = TIERS,
) -> TierMigration:
    """Transition matrix of tiers between two periods, and the accounts that moved.

    Typically ``tiers_prev`` are the tiers recomputed from features as of
    ``as_of - 12 months`` and ``tiers_now`` those as of ``as_of``. Accounts
    only in the current table enter from ``(new)``; accounts only in the
    previous one leave to ``(gone)``.

    Parameters
    ----------
    tiers_prev, tiers_now : pandas.DataFrame or pandas.Series
        ``account_id`` and ``tier_col`` (e.g. :func:`assign_tiers` output), or
        a Series of tiers indexed by ``account_id``.
    tier_col : str, default "tier"
    order : sequence of str, default ("key", "growth", "standard")
        Tier order, highest first (for ``up`` / ``down`` and the matrix layout);
        other labels follow in sorted order.

    Returns
    -------
    TierMigration

    Raises
    ------
    SegmentationInputError
        Missing columns or repeated accounts.
    """
    prev = _as_tier_frame(tiers_prev, "tiers_prev", tier_col)
    now = _as_tier_frame(tiers_now, "tiers_now", tier_col)
    m = prev.merge(now, on="account_id", how="outer", suffixes=("_prev", "_now"))
    m["tier_prev"] = m["tier_prev"].astype(object).where(m["tier_prev"].notna(), NEW)
    m["tier_now"] = m["tier_now"].astype(object).where(m["tier_now"].notna(), GONE)
    seen = set(m["tier_prev"]) | set(m["tier_now"])
    labels = list(order) + sorted(seen - set(order) - {NEW, GONE})
    counts = pd.crosstab(m["tier_prev"], m["tier_now"]).reindex(
        index=labels + [NEW], columns=labels + [GONE], fill_value=0
    )
    counts.index.name, counts.columns.name = "tier_prev", "tier_now"
    row_tot = counts.sum(axis=1).replace(0, np.nan)
    shares = counts.div(row_tot, axis=0)
    level = {t: i for i, t in enumerate(labels)}
    moved = m[m["tier_prev"] != m["tier_now"]].copy()

    def direction(p, q):
        if p == NEW:
            return "new"
        if q == GONE:
            return "gone"
        return "up" if level[q] < level[p] else "down"

    moved["direction"] = [
        direction(p, q) for p, q in zip(moved["tier_prev"], moved["tier_now"], strict=True)
    ]
    moved = moved.sort_values("account_id", ignore_index=True)[
        ["account_id", "tier_prev", "tier_now", "direction"]
    ]
    return TierMigration(counts=counts, shares=shares, movers=moved)


__all__ = [
    "QUADRANTS",
    "RESOURCE_LEVELS",
    "TIERS",
    "TIER_CONDITIONS",
    "TIER_SKIP_REASONS",
    "ClusterCheck",
    "SegmentationInputError",
    "SegmentationSettings",
    "TierMigration",
    "TierRule",
    "adjusted_rand_index",
    "assign_tiers",
    "cluster_check",
    "cohens_kappa",
    "gini",
    "key_capacity",
    "kmeans",
    "pareto_summary",
    "pareto_table",
    "portfolio_matrix",
    "tier_conditions",
    "tier_migration",
    "tier_rule",
]


def score_and_tier(
    features: pd.DataFrame,
    transactions: pd.DataFrame | None,
    *,
    as_of,
    accounts: pd.DataFrame | None = None,
    opportunities: pd.DataFrame | None = None,
    monthly_revenue: pd.DataFrame | None = None,
    valuation: ValuationSettings | None = None,
    segmentation: SegmentationSettings | None = None,
    lang: str = "en",
    spend_12m: pd.DataFrame | None = None,
    coverage: HistoryCoverage | None = None,
    contracts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Valuation, attractiveness score, status and tier in one table (the standard pipeline).

    :func:`kam_analysis.valuation.valuation_table` →
    :func:`kam_analysis.valuation.attractiveness_score` →
    :func:`kam_analysis.status.account_status` (``[segmentation]
    lapse_months``; churn from ``contracts`` when given) →
    :func:`assign_tiers` (``tier_reason`` in ``lang``) → :func:`win_back`.
    ``transactions`` may be ``None`` when
    ``monthly_revenue`` and ``spend_12m`` (engine aggregates, see
    :attr:`kam_analysis.context.AnalysisContext.scored`) are given. Criteria
    without data drop out of the score and tier conditions without data are
    skipped (see :func:`kam_analysis.valuation.criteria_used` and
    :func:`tier_conditions`); ``coverage``
    (:func:`kam_analysis.data.features.history_coverage`) keeps growth and trend
    to the windows the data covers.

    Returns
    -------
    pandas.DataFrame
        One row per account: the valuation columns, ``score``, ``rank``,
        ``weight_known``, ``contrib_<criterion>``, ``attractiveness`` (the
        customer-side score the tier thresholds read,
        :func:`kam_analysis.valuation.customer_attractiveness`), ``status``,
        ``churn_date``,
        ``tier``, ``tier_reason``, ``potential_pct`` and the win-back columns
        (:data:`WIN_BACK_COLUMNS`: ``win_back`` is False and the others
        missing for accounts not on the list).
    """
    vcfg = valuation or ValuationSettings()
    scfg = segmentation or SegmentationSettings()
    table = valuation_table(
        features,
        transactions,
        as_of=as_of,
        accounts=accounts,
        opportunities=opportunities,
        monthly_revenue=monthly_revenue,
        settings=vcfg,
        spend_12m=spend_12m,
        coverage=coverage,
    )
    scored = attractiveness_score(
        table, vcfg.weights, normalisation=vcfg.normalisation, invert=vcfg.invert
    )
    scored["attractiveness"] = _attractiveness(table, vcfg)
    scored = with_status(scored, as_of=as_of, contracts=contracts, settings=scfg)
    tiers = assign_tiers(scored, scfg, lang=lang)[
        ["account_id", "tier", "tier_reason", "potential_pct"]
    ]
    scored = scored.merge(tiers, on="account_id", how="left")
    if monthly_revenue is None and transactions is not None:
        monthly_revenue = monthly_from_transactions(transactions, as_of)
    wins = win_back(scored, monthly_revenue, as_of=as_of, valuation=vcfg, settings=scfg, lang=lang)
    return with_win_back(scored, wins)


def _attractiveness(table: pd.DataFrame, vcfg: ValuationSettings) -> np.ndarray:
    """The customer's attractiveness (:func:`kam_analysis.valuation.customer_attractiveness`)."""
    return customer_attractiveness(
        table,
        vcfg.attractiveness_weights,
        normalisation=vcfg.normalisation,
        invert=vcfg.invert,
        fallback=vcfg.weights,
    ).to_numpy()


def with_status(
    scored: pd.DataFrame,
    *,
    as_of,
    contracts: pd.DataFrame | None = None,
    settings: SegmentationSettings | None = None,
) -> pd.DataFrame:
    """``scored`` with each account's ``status`` and ``churn_date`` (replaced if present).

    :func:`kam_analysis.status.account_status` with ``lapse_months`` of the
    settings, from ``last_purchase`` (without the column no account is
    lapsed).

    Parameters
    ----------
    scored : pandas.DataFrame
        One row per account: ``account_id`` and, normally, ``last_purchase``.
    as_of : date-like
    contracts : pandas.DataFrame, optional
        The contracts table (churn); without it accounts are active or lapsed.
    settings : SegmentationSettings, optional

    Returns
    -------
    pandas.DataFrame
        A copy of ``scored`` with ``status`` and ``churn_date``.
    """
    cfg = settings or SegmentationSettings()
    _require(scored, "scored", ["account_id"])
    out = scored.drop(columns=[c for c in ("status", "churn_date") if c in scored.columns])
    last = out["last_purchase"] if "last_purchase" in out.columns else pd.NaT
    status = account_status(
        pd.DataFrame({"account_id": out["account_id"], "last_purchase": last}),
        as_of=as_of,
        contracts=contracts,
        lapse_months=cfg.lapse_months,
    )
    return out.assign(
        status=status["status"].to_numpy(), churn_date=status["churn_date"].to_numpy()
    )


# --------------------------------------------------------------------------- win-back

WIN_BACK_COLUMNS: tuple[str, ...] = (
    "revenue_before_loss",
    "score_if_active",
    "tier_if_active",
    "win_back_basis",
    "win_back",
    "win_back_reason",
)
"""Columns :func:`score_and_tier` adds from :func:`win_back`."""

_AS_IF_TYPICAL = ("revenue_growth", "gross_profit_growth", "trend", "whitespace")
"""Criteria a lost account, valued as if active, takes from the typical (median) active account."""


def revenue_before_loss(
    scored: pd.DataFrame, monthly_revenue: pd.DataFrame, *, months: int = 12
) -> pd.DataFrame:
    """Revenue and gross profit of each account in the ``months`` months to its last purchase.

    The calendar months ending with the month of ``last_purchase``, from a
    monthly revenue table: what a lost account bought in its last year as a
    customer. Months the table does not hold count as 0, so with a short
    table (``[features] trend_months``) the figure of an account that left
    long ago is a lower bound.

    Parameters
    ----------
    scored : pandas.DataFrame
        ``account_id``, ``last_purchase``.
    monthly_revenue : pandas.DataFrame
        ``account_id``, ``month``, ``revenue``, ``gross_profit``
        (:func:`kam_analysis.data.features.monthly_revenue`).
    months : int, default 12

    Returns
    -------
    pandas.DataFrame
        One row per account of ``scored``, in its order: ``account_id``,
        ``revenue_before_loss`` (0 for an account that never bought),
        ``gross_profit_before_loss`` (NaN when a month of the window has no
        known gross profit).
    """
    _require(scored, "scored", ["account_id", "last_purchase"])
    missing = [c for c in ("account_id", "month", "revenue") if c not in monthly_revenue.columns]
    if missing:
        raise SegmentationInputError(f"monthly_revenue is missing required column(s) {missing}")
    last = pd.to_datetime(scored["last_purchase"])
    end = pd.Series(
        last.dt.to_period("M").dt.to_timestamp().to_numpy(),
        index=scored["account_id"].astype(str).to_numpy(),
    )
    m = monthly_revenue.assign(account_id=monthly_revenue["account_id"].astype(str))
    m = m.assign(_end=m["account_id"].map(end), month=pd.to_datetime(m["month"]))
    inside = (m["month"] <= m["_end"]) & (
        m["month"] > m["_end"] - pd.DateOffset(months=int(months))
    )
    m = m[inside]
    gp = m["gross_profit"] if "gross_profit" in m.columns else pd.Series(np.nan, index=m.index)
    sums = pd.DataFrame(
        {"account_id": m["account_id"], "r": m["revenue"], "g": gp, "unknown": gp.isna()}
    )
    agg = sums.groupby("account_id").agg(r=("r", "sum"), g=("g", "sum"), unknown=("unknown", "any"))
    agg["g"] = agg["g"].mask(agg["unknown"])  # a month without gross profit: unknown
    ids = scored["account_id"].astype(str)
    return pd.DataFrame(
        {
            "account_id": scored["account_id"].to_numpy(),
            "revenue_before_loss": ids.map(agg["r"]).fillna(0.0).astype("float64").to_numpy(),
            "gross_profit_before_loss": ids.map(agg["g"]).astype("float64").to_numpy(),
        }
    )


def as_if_active(scored: pd.DataFrame, before: pd.DataFrame) -> pd.DataFrame:
    """The valuation table with each lost account valued on its last year as a customer.

    For lapsed and churned accounts the current-value criteria are replaced
    by those of the 12 months to the last purchase (:func:`revenue_before_loss`):
    ``revenue_12m``, ``gross_profit_12m``, ``margin_12m``,
    ``share_of_wallet`` and ``headroom`` (``max(wallet - revenue, 0)``, as in
    :func:`kam_analysis.valuation.potential_value`). Growth, trend and
    whitespace, which today's data does not show for an account that stayed
    (its growth is -100 %, every product line whitespace), take the median
    of the active accounts: the account is compared with the live book as a
    typical one of its size. (Left missing, they would drop out of its score
    and rank it on size alone, above live accounts that carry them.)
    Everything else (wallet, qualitative ratings, pipeline) is kept; the
    status is dropped, so every account counts as active. Active accounts
    are unchanged.

    Parameters
    ----------
    scored : pandas.DataFrame
        The scored valuation table with ``account_id``, ``status``.
    before : pandas.DataFrame
        :func:`revenue_before_loss` of the accounts.

    Returns
    -------
    pandas.DataFrame
        A copy of ``scored`` without ``status``, tier and score columns.
    """
    _require(scored, "scored", ["account_id", "status"])
    lost = scored["status"].isin(LOST_STATUSES).to_numpy()
    drop = {"status", "tier", "tier_reason", "potential_pct", "score", "rank", "weight_known"}
    out = scored.drop(columns=[c for c in scored.columns if c in drop or c.startswith("contrib_")])
    b = before.set_index(before["account_id"].astype(str))
    ids = scored["account_id"].astype(str)
    rev = ids.map(b["revenue_before_loss"]).to_numpy(dtype=float)
    gp = ids.map(b["gross_profit_before_loss"]).to_numpy(dtype=float)
    wallet = _num(scored, "wallet_estimate") if "wallet_estimate" in scored else np.nan
    with np.errstate(all="ignore"):
        values = {
            "revenue_12m": rev,
            "gross_profit_12m": gp,
            "margin_12m": np.where(rev > 0, gp / rev, np.nan),
            "share_of_wallet": np.where(wallet > 0, rev / wallet, np.nan),
            "headroom": np.where(np.isnan(wallet), np.nan, np.maximum(wallet - rev, 0.0)),
        }
    for col, value in values.items():
        if col in out.columns:
            out.loc[lost, col] = value[lost]
    for col in _AS_IF_TYPICAL:
        if col in out.columns:
            live = _num(scored, col)[~lost]
            out.loc[lost, col] = _nanmedian(live)
    return out


def _pct_against(values: np.ndarray, book: np.ndarray) -> np.ndarray:
    """Percentile rank each value would have among ``book`` with it added (missing: 0).

    ``(#book < x + #book == x / 2) / n``: the rank of :func:`kam_analysis.valuation.normalise`
    of ``x`` among the ``n`` known book values and ``x``.
    """
    known = np.sort(book[np.isfinite(book)])
    out = np.zeros(len(values))
    if known.size == 0:
        return out
    ok = np.isfinite(values)
    below = np.searchsorted(known, values[ok], side="left")
    upto = np.searchsorted(known, values[ok], side="right")
    out[ok] = (below + (upto - below) / 2.0) / known.size
    return out


def _level_against(
    scored: pd.DataFrame, as_if: pd.DataFrame, active: np.ndarray, cfg: SegmentationSettings
) -> np.ndarray:
    """What the tier thresholds read for each ``as_if`` row, on the scale of the live book.

    The column of :func:`tier_score_column` (``attractiveness`` when the book
    has it, else ``score``) from ``as_if``; with ``thresholds = "percentile"``
    its percentile rank (0-100) among the active accounts of ``scored``.
    """
    column = tier_score_column(scored)
    if column not in as_if.columns:
        raise SegmentationInputError(f"as_if needs column {column!r}, as the scored book has it")
    level = _num(as_if, column)
    if cfg.thresholds == "percentile":
        level = 100.0 * _pct_against(level, _num(scored, column)[active])
    return level


def tiers_if_active(
    scored: pd.DataFrame,
    as_if: pd.DataFrame,
    settings: SegmentationSettings | None = None,
) -> np.ndarray:
    """The tier each lost account would have, valued as if active, in today's live book.

    The rule of :func:`assign_tiers` applied to one lost account at a time
    against the active accounts, with its values from ``as_if``: **key** when
    it meets the key conditions (score, share-of-wallet and value floors that
    apply to the book) and its score reaches the lowest key account's score
    (any score, once past the floor, while the capacity is not full);
    **growth** when not key, its potential would rank at or above
    ``growth_min_potential_pct`` among the active accounts, its share of
    wallet is at most the ceiling and its score at least ``growth_min_score``;
    else **standard**. Conditions are skipped exactly as for the book
    (:func:`tier_conditions`).

    Parameters
    ----------
    scored : pandas.DataFrame
        The scored book with ``status`` and ``tier`` (:func:`assign_tiers`).
    as_if : pandas.DataFrame
        The same accounts, in the same order, re-scored as if active
        (:func:`as_if_active` then
        :func:`kam_analysis.valuation.attractiveness_score`).
    settings : SegmentationSettings, optional

    Returns
    -------
    numpy.ndarray of str
        ``key`` / ``growth`` / ``standard`` for lapsed and churned accounts,
        ``""`` for active ones.
    """
    cfg = settings or SegmentationSettings()
    _require(scored, "scored", ["account_id", "score", "tier"])
    inp = _tier_inputs(scored, cfg)
    cap = key_capacity(int(inp.active.sum()), cfg)
    applied = _applied(inp, cfg, cap)
    lost = ~inp.active
    score = _num(as_if, "score")
    sow = (
        _num(as_if, "share_of_wallet")
        if "share_of_wallet" in as_if
        else np.full(len(as_if), np.nan)
    )
    level = _level_against(scored, as_if, inp.active, cfg)
    is_key = (scored["tier"] == "key").to_numpy()
    full = cap is not None and int(is_key.sum()) >= cap
    cutoff = float(np.min(score[is_key])) if full and is_key.any() else -np.inf
    key = lost & (level >= cfg.key_min_score) & (score >= cutoff) & (cap != 0)
    if not applied.key_sow:
        key &= np.nan_to_num(sow, nan=-np.inf) >= cfg.key_min_share_of_wallet
    if not applied.key_value:
        col = cfg.key_value_column
        pct = _pct_against(_num(as_if, col), _num(scored, col)[inp.active])
        key &= pct >= cfg.key_min_value_pct
    growth = lost & ~key & (level >= cfg.growth_min_score)
    if applied.growth:  # no potential measure with data: no growth candidates in this book
        growth = np.zeros(len(as_if), dtype=bool)
    else:
        pot = np.zeros(len(as_if))
        for c in inp.pot_cols:
            pot = np.maximum(pot, _pct_against(_num(as_if, c), _num(scored, c)[inp.active]))
        growth &= pot >= cfg.growth_min_potential_pct
        if not applied.growth_sow:
            growth &= np.nan_to_num(sow, nan=np.inf) <= cfg.growth_max_share_of_wallet
    tier = np.where(key, "key", np.where(growth, "growth", "standard")).astype(object)
    return np.where(lost, tier, "").astype(object)


WIN_BACK_BASES: tuple[str, ...] = ("key", "growth", "size")
"""Why a lost account is on the win-back list, in list order: it would be a key account or a
growth candidate as if active, or it bought as much as the median key account before it left."""


def win_back(
    scored: pd.DataFrame,
    monthly_revenue: pd.DataFrame | None,
    *,
    as_of,
    valuation: ValuationSettings | None = None,
    settings: SegmentationSettings | None = None,
    lang: str | None = "en",
) -> pd.DataFrame:
    """The win-back list: valuable lapsed and churned accounts, and why.

    A lapsed or churned account that left (its churn date, else its last
    purchase) within the last ``win_back_months`` months is a win-back
    candidate when, valued on its last year as a customer (its revenue in
    the 12 months to its last purchase, :func:`revenue_before_loss`):

    * ``key`` / ``growth``: the tier rule makes it a key account or growth
      candidate against today's active accounts (:func:`as_if_active`
      re-scored with the valuation settings, then :func:`tiers_if_active`);
    * ``size``: otherwise, it bought at least as much in that year as the
      median key account's ``revenue_12m`` today (a large customer the
      score may not rank as key, e.g. when trend weighs heavily and is not
      known for a lost account).

    Lost accounts are otherwise standard (:func:`assign_tiers`), so this
    list is where the valuable ones stay visible.

    Parameters
    ----------
    scored : pandas.DataFrame
        The output of :func:`score_and_tier` before the win-back columns:
        valuation columns, ``score``, ``tier``, ``status``,
        ``last_purchase``, ``churn_date``.
    monthly_revenue : pandas.DataFrame or None
        Revenue per account and month (:func:`revenue_before_loss`); None:
        no list.
    as_of : date-like
    valuation : ValuationSettings, optional
        Weights and normalisation of the re-scoring.
    settings : SegmentationSettings, optional
    lang : str or None, default "en"
        Language of ``win_back_reason`` (None: no reason column).

    Returns
    -------
    pandas.DataFrame
        One row per candidate: ``account_id``, ``status``,
        ``last_purchase``, ``churn_date``, ``revenue_before_loss``,
        ``score_if_active``, ``tier_if_active`` (``key`` / ``growth`` /
        ``standard``), ``win_back_basis`` (:data:`WIN_BACK_BASES`) and, with
        ``lang``, ``win_back_reason``; in the order of the bases, then by
        ``revenue_before_loss`` descending (ties by ``account_id``). Empty
        (with these columns) when no account qualifies.

    Raises
    ------
    SegmentationInputError
        Missing columns.
    """
    cfg = settings or SegmentationSettings()
    vcfg = valuation or ValuationSettings()
    _require(scored, "scored", ["account_id", "status"])
    cols = [
        "account_id",
        "status",
        "last_purchase",
        "churn_date",
        "revenue_before_loss",
        "score_if_active",
        "tier_if_active",
        "win_back_basis",
    ] + (["win_back_reason"] if lang is not None else [])
    lost = scored["status"].isin(LOST_STATUSES).to_numpy()
    if monthly_revenue is None or not lost.any():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    _require(scored, "scored", ["last_purchase", "tier"])
    before = revenue_before_loss(scored, monthly_revenue)
    as_if = as_if_active(scored, before)
    rescored = attractiveness_score(
        as_if, vcfg.weights, normalisation=vcfg.normalisation, invert=vcfg.invert
    )
    if "attractiveness" in scored.columns:
        rescored["attractiveness"] = _attractiveness(as_if, vcfg)
    tier_if = tiers_if_active(scored, rescored, cfg)
    revenue = before["revenue_before_loss"].to_numpy(dtype=float)
    basis = np.where(np.isin(tier_if, ("key", "growth")), tier_if, "")
    key_revenue = _num(scored, "revenue_12m")[(scored["tier"] == "key").to_numpy()]
    if key_revenue.size and "revenue_12m" in scored.columns:
        basis = np.where((basis == "") & (revenue >= np.nanmedian(key_revenue)), "size", basis)
    churn = pd.to_datetime(scored.get("churn_date", pd.Series(pd.NaT, index=scored.index)))
    left = churn.fillna(pd.to_datetime(scored["last_purchase"]))
    recent = (left > lapse_cutoff(as_of, cfg.win_back_months)).to_numpy()
    pick = lost & recent & (basis != "")
    out = pd.DataFrame(
        {
            "account_id": scored["account_id"].to_numpy()[pick],
            "status": scored["status"].to_numpy()[pick],
            "last_purchase": pd.to_datetime(scored["last_purchase"]).to_numpy()[pick],
            "churn_date": churn.to_numpy()[pick],
            "revenue_before_loss": revenue[pick],
            "score_if_active": rescored["score"].to_numpy()[pick],
            "tier_if_active": tier_if[pick],
            "win_back_basis": basis[pick].astype(object),
        }
    )
    order = np.lexsort(
        (
            out["account_id"].astype(str).to_numpy(),
            -out["revenue_before_loss"].to_numpy(),
            out["win_back_basis"].map(WIN_BACK_BASES.index).to_numpy(),
        )
    )
    out = out.iloc[order].reset_index(drop=True)
    if lang is not None:
        out["win_back_reason"] = [_win_back_reason(r, lang) for r in out.itertuples(index=False)]
    return out[cols]


def _win_back_reason(r, lang: str) -> str:
    """Why a lost account is on the win-back list, in words."""
    if r.status == "churned" and not pd.isna(r.churn_date):
        left = t("winback.left.churned", lang, date=_day_text(r.churn_date, lang))
    else:
        left = t("winback.left.lapsed", lang, date=_day_text(r.last_purchase, lang))
    return t(
        f"winback.reason.{r.win_back_basis}", lang, left=left, score=f"{r.score_if_active:.1f}"
    )


def with_win_back(scored: pd.DataFrame, wins: pd.DataFrame) -> pd.DataFrame:
    """``scored`` with the :data:`WIN_BACK_COLUMNS` of a :func:`win_back` list (replaced if present).

    Parameters
    ----------
    scored : pandas.DataFrame
        One row per account with ``account_id``.
    wins : pandas.DataFrame
        :func:`win_back`.

    Returns
    -------
    pandas.DataFrame
        A copy of ``scored``: ``win_back`` (bool), and for accounts on the
        list ``revenue_before_loss``, ``score_if_active``, ``tier_if_active``,
        ``win_back_reason`` (missing elsewhere).
    """
    out = scored.drop(columns=[c for c in WIN_BACK_COLUMNS if c in scored.columns])
    keep = [c for c in WIN_BACK_COLUMNS if c in wins.columns]
    out = out.merge(wins[["account_id", *keep]], on="account_id", how="left")
    out["win_back"] = out["account_id"].isin(wins["account_id"]).to_numpy()
    out["revenue_before_loss"] = pd.to_numeric(out["revenue_before_loss"]).astype("float64")
    out["score_if_active"] = pd.to_numeric(out["score_if_active"]).astype("float64")
    return out


def win_back_list(scored: pd.DataFrame) -> pd.DataFrame:
    """The win-back candidates of a scored table (:func:`score_and_tier`), in list order.

    Parameters
    ----------
    scored : pandas.DataFrame
        With the :data:`WIN_BACK_COLUMNS`.

    Returns
    -------
    pandas.DataFrame
        The rows with ``win_back``, in the order of :func:`win_back`: by
        ``win_back_basis`` (:data:`WIN_BACK_BASES`), then by
        ``revenue_before_loss`` descending, ties by ``account_id``.
    """
    _require(scored, "scored", ["account_id", "win_back", "win_back_basis", "revenue_before_loss"])
    rows = scored[scored["win_back"].astype(bool)]
    order = np.lexsort(
        (
            rows["account_id"].astype(str).to_numpy(),
            -rows["revenue_before_loss"].to_numpy(dtype=float),
            rows["win_back_basis"].map(WIN_BACK_BASES.index).to_numpy(),
        )
    )
    return rows.iloc[order].reset_index(drop=True)


# --------------------------------------------------------------------------- report helpers


def segment_summary(
    table: pd.DataFrame,
    by: str = "tier",
    *,
    order: Sequence[str] | None = None,
    value: str = "revenue_12m",
    gross_profit: str | None = "gross_profit_12m",
) -> pd.DataFrame:
    """Size and value of each segment (tier, quadrant, ...) of the book.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per account: ``account_id``, ``by``, ``value``; ``score`` and
        ``gross_profit`` are used when present.
    by : str, default "tier"
        Segment column.
    order : sequence of str, optional
        Segment order of the rows (default :data:`TIERS` for ``tier``,
        :data:`QUADRANTS` for ``quadrant``, else sorted); segments without
        accounts get a row of zeros, segments not in ``order`` follow sorted.
    value : str, default "revenue_12m"
    gross_profit : str or None, default "gross_profit_12m"

    Returns
    -------
    pandas.DataFrame
        One row per segment: ``<by>``, ``n_accounts``, ``share_of_accounts``,
        ``<value>``, ``value_share``, ``<gross_profit>`` and ``gp_share`` (when
        the column is present; NaN when no account's gross profit is known,
        e.g. without a cost column), ``mean_score`` (when ``score`` is
        present; NaN for an empty segment). Shares are of the whole table
        (NaN for a zero total).

    Raises
    ------
    SegmentationInputError
        Missing columns or repeated accounts.
    """
    _require(table, "table", ["account_id", by, value])
    if order is None:
        order = {"tier": TIERS, "quadrant": QUADRANTS}.get(by, ())
    seen = [str(s) for s in pd.unique(table[by].dropna())]
    labels = list(order) + sorted(set(seen) - set(order))
    seg = table[by].astype(object)
    frame = pd.DataFrame({by: seg.to_numpy(), "_v": np.nan_to_num(_num(table, value))})
    agg = {"n_accounts": ("_v", "size"), value: ("_v", "sum")}
    has_gp = gross_profit is not None and gross_profit in table.columns
    gp_known = has_gp and _has_data(table, gross_profit)
    if has_gp:
        frame["_gp"] = np.nan_to_num(_num(table, gross_profit))
        agg[gross_profit] = ("_gp", "sum")
    if "score" in table.columns:
        frame["_s"] = _num(table, "score")
        agg["mean_score"] = ("_s", "mean")
    out = frame.groupby(by).agg(**agg).reindex(labels)
    out["n_accounts"] = out["n_accounts"].fillna(0).astype("int64")
    out[value] = out[value].fillna(0.0)

    def share(col: str) -> pd.Series:
        total = out[col].sum()
        return out[col] / total if total else pd.Series(np.nan, index=out.index)

    out.insert(1, "share_of_accounts", share("n_accounts"))
    out.insert(3, "value_share", share(value))
    if has_gp and gp_known:
        out[gross_profit] = out[gross_profit].fillna(0.0)
        out.insert(5, "gp_share", share(gross_profit))
    elif has_gp:  # unknown gross profit is not 0
        out[gross_profit] = np.nan
        out.insert(5, "gp_share", np.nan)
    out.index.name = by
    return out.reset_index()


def agreement_level(kappa: float) -> str:
    """Verbal strength of agreement of a kappa (Landis & Koch, 1977).

    Parameters
    ----------
    kappa : float

    Returns
    -------
    str
        ``"poor"`` (< 0), ``"slight"`` (0-0.20), ``"fair"`` (0.21-0.40),
        ``"moderate"`` (0.41-0.60), ``"substantial"`` (0.61-0.80),
        ``"almost perfect"`` (0.81-1), ``"undefined"`` for NaN.

    References
    ----------
    .. [1] Landis, J. R., & Koch, G. G. (1977). The measurement of observer
       agreement for categorical data. Biometrics, 33(1), 159-174.
    """
    k = float(kappa)
    if np.isnan(k):
        return "undefined"
    if k < 0:
        return "poor"
    for upper, name in ((0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial")):
        if k <= upper + 1e-12:
            return name
    return "almost perfect"


def cluster_disagreements(check: ClusterCheck) -> pd.DataFrame:
    """Where the data-driven clusters and the rule tiers disagree, in words a reader can use.

    Each rule tier has a *home* cluster: the cluster holding most of its
    accounts (ties: the lower cluster number). Accounts of a tier outside its
    home cluster are the disagreements. They sit either with most accounts
    of other tiers (``home_of`` names those tiers: they look alike in the
    data but the rules separate them) or in a cluster that is home to no
    tier (``home_of`` is empty: a group the rules do not describe, e.g.
    lapsed customers).

    Parameters
    ----------
    check : ClusterCheck
        Output of :func:`cluster_check`.

    Returns
    -------
    pandas.DataFrame
        One row per (tier, cluster) cell outside the tier's home cluster:
        ``tier``, ``cluster``, ``n_accounts``, ``share_of_tier`` (of the
        accounts in that tier), ``home_of`` (tuple of the tiers whose home the
        cluster is, in tier order); largest cells first (ties by tier order,
        then cluster). Empty when every tier sits in one cluster.
    """
    ct = check.crosstab
    cols = ["tier", "cluster", "n_accounts", "share_of_tier", "home_of"]
    home = {tier: ct.loc[tier].idxmax() for tier in ct.index if ct.loc[tier].sum() > 0}
    rows = []
    for rank, tier in enumerate(ct.index):
        total = ct.loc[tier].sum()
        for cluster in ct.columns:
            n = int(ct.loc[tier, cluster])
            if n == 0 or cluster == home.get(tier):
                continue
            rows.append(
                {
                    "tier": tier,
                    "cluster": cluster,
                    "n_accounts": n,
                    "share_of_tier": n / total,
                    "home_of": tuple(t for t in ct.index if home.get(t) == cluster),
                    "_rank": rank,
                }
            )
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols}).astype(
            {"n_accounts": "int64", "share_of_tier": "float64"}
        )
    out = pd.DataFrame(rows).sort_values(
        ["n_accounts", "_rank", "cluster"], ascending=[False, True, True], ignore_index=True
    )
    return out[cols]


def matrix_splits(
    matrix: pd.DataFrame, settings: SegmentationSettings | None = None
) -> tuple[float, float]:
    """The attractiveness and position values splitting the portfolio matrix into quadrants.

    Parameters
    ----------
    matrix : pandas.DataFrame
        Output of :func:`portfolio_matrix` (``attractiveness``, ``position``).
    settings : SegmentationSettings, optional
        The configured splits; ``None`` splits are the medians (as in
        :func:`portfolio_matrix`).

    Returns
    -------
    (float, float)
        ``(attractiveness_split, position_split)``; a value equal to a split
        counts as high.
    """
    cfg = settings or SegmentationSettings()
    _require(matrix, "matrix", ["attractiveness", "position"])
    a = cfg.attractiveness_split
    p = cfg.position_split
    a = float(np.median(_num(matrix, "attractiveness"))) if a is None else float(a)
    p = _nanmedian(_num(matrix, "position")) if p is None else float(p)
    return a, p


def position_inputs(
    features: pd.DataFrame,
    stakeholders: pd.DataFrame | None = None,
    *,
    as_of=None,
) -> pd.DataFrame:
    """Account features for the position axis, with stakeholder coverage when known.

    Parameters
    ----------
    features : pandas.DataFrame
        One row per account: ``account_id`` and the position columns
        (``share_of_wallet``, ``tenure_days``, ``orders_12m``, ...).
    stakeholders : pandas.DataFrame, optional
        The stakeholders table; when given, ``stakeholder_coverage`` is the
        share of decision roles we know a contact in
        (:func:`kam_analysis.stakeholders.coverage`, ``role_coverage``;
        0 for accounts without contacts).
    as_of : date-like, optional
        Reference date for :func:`kam_analysis.stakeholders.coverage`.

    Returns
    -------
    pandas.DataFrame
        ``features`` (a copy) with ``stakeholder_coverage`` added or replaced
        when ``stakeholders`` is given.
    """
    _require(features, "features", ["account_id"])
    out = features.copy()
    if stakeholders is None:
        return out

    cov = coverage(stakeholders, as_of=as_of)
    cov_map = pd.Series(cov["role_coverage"].to_numpy(), index=cov["account_id"].astype(str))
    out["stakeholder_coverage"] = (
        out["account_id"].astype(str).map(cov_map).fillna(0.0).astype("float64").to_numpy()
    )
    return out


def previous_period_tiers(context, *, months: int = 12) -> pd.DataFrame:
    """Tiers recomputed as of ``months`` before the context's as-of date.

    The same dataset, configuration and pipeline (:func:`score_and_tier`)
    as the context, with every table cut at the earlier date; only accounts
    that had bought something by then are scored (the others enter the
    migration from ``(new)``). Qualitative scores and the stage of each
    opportunity are snapshots of today: an opportunity that was open a year
    ago but has closed since is not counted in the earlier pipeline.

    Parameters
    ----------
    context : kam_analysis.context.AnalysisContext
        The current analysis context.
    months : int, default 12
        How far back.

    Returns
    -------
    pandas.DataFrame
        ``account_id``, ``score``, ``rank``, ``tier`` as of the earlier date,
        and ``as_of`` (that date).

    Raises
    ------
    SegmentationInputError
        ``months < 1`` or no account with a purchase by the earlier date.
    """

    if int(months) < 1:
        raise SegmentationInputError(f"months must be >= 1, got {months}")
    prev_as_of = (pd.Timestamp(context.as_of) - pd.DateOffset(months=int(months))).date()
    prev = context.at(prev_as_of)
    feats = prev.features
    if "first_purchase" in feats.columns:
        feats = feats[feats["first_purchase"].notna()].reset_index(drop=True)
    if feats.empty:
        raise SegmentationInputError(f"no account had bought anything by {prev_as_of}")
    coverage = history_coverage(prev.dataset.table("transactions"), prev_as_of)
    scored = score_and_tier(
        feats,
        None,
        as_of=prev_as_of,
        accounts=prev.frame("accounts"),
        opportunities=prev.frame("opportunities"),
        monthly_revenue=prev.monthly,
        valuation=context.config.valuation,
        segmentation=context.config.segmentation,
        spend_12m=prev.spend_12m,
        coverage=coverage,
        contracts=prev.frame("contracts"),
    )
    out = scored[["account_id", "score", "rank", "tier"]].copy()
    out["as_of"] = prev_as_of
    return out


__all__ += [
    "WIN_BACK_BASES",
    "WIN_BACK_COLUMNS",
    "agreement_level",
    "as_if_active",
    "revenue_before_loss",
    "tiers_if_active",
    "win_back",
    "with_status",
    "with_win_back",
    "win_back_list",
    "cluster_disagreements",
    "matrix_splits",
    "position_inputs",
    "previous_period_tiers",
    "score_and_tier",
    "segment_summary",
]

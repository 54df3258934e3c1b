"""Account valuation: current value, potential value, qualitative value, attractiveness.

Step 1 of the seed: evaluate every customer on numbers *and* judgement,
today *and* in the future, not on revenue share alone. This module turns
the account feature table (:func:`kam_analysis.data.features.build_account_features`),
the transactions, the open pipeline and the qualitative 1-5 scores of the
accounts table into

* **current value** (:func:`current_value`, :func:`trend_from_monthly`):
  trailing-year revenue, gross profit, margin, growth and a robust revenue
  trend;
* **potential value** (:func:`potential_value`, :func:`whitespace_matrix`):
  share of wallet, headroom in the wallet, cross-sell whitespace per product
  line (peer-based) and the expected value of the open expansion pipeline;
* **qualitative value** (:func:`qualitative_value`): strategic fit,
  co-development, reference value, barrier to entry, synergy, decision
  complexity, passed through and range-checked;
* an **attractiveness score** 0-100 (:func:`attractiveness_score`) with one
  ``contrib_<criterion>`` column per criterion so that a reader sees why an
  account ranks where it does, and a check of how much the ranking depends on
  the chosen weights (:func:`weight_robustness`).

All functions are pure: they take pandas DataFrames and keyword arguments
and return new DataFrames. Business rules (weights, stage probabilities,
size bands, peer rules) are gathered in :class:`ValuationSettings`.

Missing data
------------
Real exports lack whole inputs: no cost column, no wallet estimates, no
qualitative ratings, no opportunities, no product lines, or too short a
history for growth and trend. Nothing is invented for them:

* a criterion whose value is missing for **every** account has no data: it
  drops out of the score and the weights are renormalised over the criteria
  with data (:func:`criteria_used` lists each criterion with its stated and
  used weight and, for a dropped one, the reason: ``no_cost``,
  ``no_wallet``, ``no_qualitative``, ``no_opportunities``,
  ``no_product_line``, ``window_not_covered`` or ``no_data``). A criterion
  with the same value for every account (no whitespace anywhere) cannot rank
  anybody and drops out the same way (``no_variation``), rather than adding
  the same 0.5 filler to every score;
* an account missing a value in a criterion that has data is scored on the
  criteria it has: its weights are renormalised over them (the score is the
  weighted mean of its known normalised criteria, "available-case"
  weighting), so an unknown value neither helps nor hurts it. The column
  ``weight_known`` says which share of the used weight was known. Missing
  ``whitespace`` and ``expected_expansion`` values are the exception: when
  the criterion has data, a missing value means no identified potential (0);
* gross profit without a cost column is unknown (NaN), never 0; with an
  assumed gross margin it is revenue x margin and marked as assumed
  (``gross_profit_assumed``);
* growth and trend need history the book may not have
  (:func:`kam_analysis.data.features.history_coverage`): growth is NaN for every
  account when the previous 12 months are not covered, and the trend uses
  only the quarters the data fully covers.

Time conventions follow :mod:`kam_analysis.data.features`: the trailing 12 months
are ``(as_of - 12 calendar months, as_of]`` with the time of day dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from scipy.special import ndtr

from kam_analysis.core.errors import InputError
from kam_analysis.core.schemas import (
    OPEN_STAGES,
    OPPORTUNITY_TYPES,
    QUALITATIVE_CRITERIA,
    Accounts,
    Opportunities,
    Transactions,
)
from kam_analysis.data.features import HistoryCoverage

# Contract column names (pandera returns the field name).
_ACCOUNT_ID = Accounts.account_id
_INDUSTRY = Accounts.industry
_WALLET = Accounts.wallet_estimate
_T_DATE = Transactions.date
_T_LINE = Transactions.product_line
_T_REVENUE = Transactions.revenue
_T_COST = Transactions.cost
_O_STAGE = Opportunities.stage
_O_AMOUNT = Opportunities.amount
_O_TYPE = Opportunities.type
_O_PROB = Opportunities.probability
_O_CREATED = Opportunities.created_date

Normalisation = Literal["rank", "minmax", "zscore"]
NORMALISATIONS: tuple[str, ...] = ("rank", "minmax", "zscore")

QUANTITATIVE_CRITERIA: tuple[str, ...] = (
    "revenue_12m",
    "gross_profit_12m",
    "margin_12m",
    "revenue_growth",
    "gross_profit_growth",
    "trend",
    "share_of_wallet",
    "wallet_estimate",
    "headroom",
    "whitespace",
    "expected_expansion",
)
"""Quantitative criteria produced by :func:`valuation_table`."""

CRITERIA: tuple[str, ...] = QUANTITATIVE_CRITERIA + QUALITATIVE_CRITERIA
"""Every criterion :func:`attractiveness_score` knows by name."""

MISSING_AS_ZERO: tuple[str, ...] = ("whitespace", "expected_expansion")
"""Criteria whose missing value means "no identified potential" = 0, when the criterion has data.

When the whole column is missing (no product lines, no opportunities table)
the criterion has no data and drops out of the score instead. Every other
missing value is left out of the account's score (its weights are
renormalised over the criteria it has; see the module notes).
"""

NEUTRAL = 0.5
"""Normalised value of a constant criterion (one distinct value carries no ranking)."""

UNAVAILABLE_REASONS: tuple[str, ...] = (
    "no_cost",
    "no_wallet",
    "no_qualitative",
    "no_opportunities",
    "no_product_line",
    "window_not_covered",
    "no_data",
    "no_variation",
)
"""Why a criterion is not used (the ``reason`` of :func:`criteria_used`): no data, for the
reason named, or ``no_variation``: the same value for every account (e.g. no whitespace
anywhere), which cannot rank anybody."""

_REASON_OF: dict[str, str] = {
    "gross_profit_12m": "no_cost",
    "margin_12m": "no_cost",
    "gross_profit_growth": "no_cost",
    "wallet_estimate": "no_wallet",
    "share_of_wallet": "no_wallet",
    "headroom": "no_wallet",
    "whitespace": "no_product_line",
    "expected_expansion": "no_opportunities",
    "revenue_growth": "window_not_covered",
    "trend": "window_not_covered",
    **{c: "no_qualitative" for c in QUALITATIVE_CRITERIA},
}
_OPTIONAL_COLUMNS: frozenset[str] = frozenset(QUALITATIVE_CRITERIA) | frozenset(MISSING_AS_ZERO)
"""Criteria whose column may be absent from the table (then: no data)."""

_DEFAULT_WEIGHTS: dict[str, float] = {
    # current value: 45 %
    "gross_profit_12m": 0.25,
    "revenue_12m": 0.10,
    "revenue_growth": 0.06,
    "trend": 0.04,
    # potential value: 28 %
    "wallet_estimate": 0.10,
    "headroom": 0.05,
    "whitespace": 0.08,
    "expected_expansion": 0.05,
    # qualitative (strategic) value: 27 %
    "strategic_fit": 0.08,
    "co_development": 0.05,
    "reference_value": 0.04,
    "barrier_to_entry": 0.04,
    "synergy": 0.06,
}

_DEFAULT_ATTRACTIVENESS_WEIGHTS: dict[str, float] = {
    # the customer's size (its whole category spend): 40 %
    "wallet_estimate": 0.40,
    # the customer's growth (our revenue growth and trend at the customer stand in): 15 %
    "revenue_growth": 0.09,
    "trend": 0.06,
    # the customer's strategic value to us: 45 %
    "strategic_fit": 0.13,
    "co_development": 0.08,
    "reference_value": 0.07,
    "barrier_to_entry": 0.07,
    "synergy": 0.10,
}

_DEFAULT_STAGE_WEIGHTS: dict[str, float] = {
    "prospecting": 0.1,
    "qualification": 0.2,
    "proposal": 0.4,
    "negotiation": 0.7,
}


class ValuationInputError(InputError, ValueError):
    """A table, a weight or a setting cannot be used for valuation."""


# --------------------------------------------------------------------------- settings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SizeBandSettings(_Section):
    """Size bands used to find peers (same industry and same band)."""

    column: Literal["wallet_estimate", "revenue_12m"] = Field(
        "wallet_estimate",
        description="Size measure: the wallet estimate (default) or trailing-year revenue.",
    )
    labels: tuple[str, ...] = Field(("S", "M", "L", "XL"), description="Band labels, small first.")
    quantiles: tuple[float, ...] = Field(
        (0.25, 0.5, 0.75),
        description="Quantiles of the size measure separating the bands (one fewer than labels).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> SizeBandSettings:
        if len(self.labels) != len(self.quantiles) + 1:
            raise ValueError(
                f"size bands need one label more than quantiles; got {len(self.labels)} labels "
                f"and {len(self.quantiles)} quantiles"
            )
        q = np.asarray(self.quantiles, dtype=float)
        if len(q) and (np.any(q <= 0) or np.any(q >= 1) or np.any(np.diff(q) <= 0)):
            raise ValueError(
                f"quantiles must increase strictly inside (0, 1), got {self.quantiles}"
            )
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"band labels must be distinct, got {self.labels}")
        return self


class WhitespaceSettings(_Section):
    """Peer rule of the whitespace matrix (see :func:`whitespace_matrix`)."""

    min_peers: int = Field(5, ge=1, description="Fewest peers for a peer-based estimate.")
    adoption_threshold: float = Field(
        0.5, gt=0, le=1, description="Share of peers buying a line for it to count as whitespace."
    )
    scale_by_size: bool = Field(
        True, description="Scale the peers' median spend by the account's size relative to them."
    )
    max_scale: float = Field(
        4.0, ge=1, description="Size ratio clipped to [1/max_scale, max_scale]."
    )


class TrendSettings(_Section):
    """Revenue trend (see :func:`trend_from_monthly`)."""

    quarters: int = Field(8, ge=2, description="Quarters of history in the slope.")
    min_quarters: int = Field(4, ge=2, description="Fewest quarters (after the first sale).")
    method: Literal["theil_sen", "ols"] = Field("theil_sen", description="Slope estimator.")


ROBUSTNESS_METHODS: tuple[str, ...] = ("smaa", "scale")
"""How :func:`weight_robustness` draws weights: ``smaa`` (Dirichlet around the stated
weights, normalisation varied by draw) or ``scale`` (each weight times a uniform factor)."""


class RobustnessSettings(_Section):
    """Uncertainty in the weights and the normalisation (see :func:`weight_robustness`).

    ``smaa`` (the default) draws each weight vector from a Dirichlet
    distribution centred on the stated weights, ``Dirichlet(concentration *
    w)``, and one of ``normalisations`` per draw, as in stochastic
    multicriteria acceptability analysis (Lahdelma, Hokkanen & Salminen
    1998). ``scale`` is the older check, each weight times ``U(1 - spread, 1 +
    spread)``: it moves the weights much less (a 25 % weight stays within
    about 18-32 %) and keeps the normalisation, so it overstates stability.
    """

    method: Literal["smaa", "scale"] = Field(
        "smaa", description="smaa (Dirichlet weights, varied normalisation) or scale (factors)."
    )
    draws: int = Field(500, ge=1, description="Number of drawn weight vectors.")
    concentration: float = Field(
        20.0,
        gt=0,
        description="smaa: weights ~ Dirichlet(concentration * w); larger stays closer to w.",
    )
    normalisations: tuple[Normalisation, ...] = Field(
        ("rank", "minmax", "zscore"),
        min_length=1,
        description="smaa: normalisations drawn with equal probability, one per draw.",
    )
    spread: float = Field(
        0.3, ge=0, lt=1, description="scale: each weight times U(1-spread, 1+spread)."
    )
    seed: int = Field(0, description="Seed of the random generator.")


class ValuationSettings(_Section):
    """Business rules of account valuation (composed into ``kam.toml`` as ``[valuation]``).

    The default weights put 45 % on current value (gross profit first: the
    seed asks for profit contribution, not revenue share alone), 28 % on
    potential value and 27 % on the qualitative strategic criteria of the
    seed (strategic fit, co-development, reference value, barrier to entry,
    synergy / knock-on deployment).

    Potential value is led by the size of the customer's whole category
    spend (``wallet_estimate``, 10 %; McDonald & Woodburn's first
    attractiveness factor is the volume of the customer's business), then
    cross-sell whitespace (8 %), headroom (5 %) and the expected expansion
    pipeline (5 %). Headroom (wallet - our revenue) and share of wallet mix
    the customer's size with *our position* with the customer, which is
    the other axis of the portfolio matrix; giving them large attractiveness
    weights would count our position twice and push attractive accounts we
    already serve well (high share, little headroom) down the ranking. So
    share of wallet has weight 0 here and headroom a small one; both drive
    the growth rule of :func:`kam_analysis.segmentation.assign_tiers` and the
    position axis of :func:`kam_analysis.segmentation.portfolio_matrix`.
    Decision complexity is described by the seed as a trait of key accounts
    (multi-department buying centres) rather than a benefit, so it has
    weight 0 by default.

    The tier thresholds of :class:`kam_analysis.segmentation.SegmentationSettings`
    read the customer's attractiveness (:func:`customer_attractiveness`),
    weighted by ``attractiveness_weights``: the customer's size 40 %
    (``wallet_estimate``; without wallet estimates our revenue stands in),
    its growth 15 % (our revenue growth and trend at the customer stand in
    for the customer's own) and its strategic value 45 % (the qualitative
    criteria, in about the proportions of ``weights``). The score ranks accounts
    by what they are worth to us; attractiveness describes the customer
    alone, so that our position with it (share of wallet, our revenue) is
    the other, independent axis of the portfolio matrix. With ``rank``
    normalisation (the default) percentile thresholds and absolute ones read
    the same scale; with ``minmax`` a few giant accounts compress everybody
    else's scores towards 0.
    """

    weights: dict[str, float] = Field(
        default_factory=lambda: dict(_DEFAULT_WEIGHTS),
        description="Criterion -> weight (non-negative; normalised to sum 1).",
    )
    attractiveness_weights: dict[str, float] = Field(
        default_factory=lambda: dict(_DEFAULT_ATTRACTIVENESS_WEIGHTS),
        description=(
            "Criterion -> weight of the customer's attractiveness, the axis the tier thresholds "
            "read (customer-side criteria only; normalised to sum 1)."
        ),
    )
    normalisation: Normalisation = Field("rank", description="rank, minmax or zscore.")
    invert: tuple[str, ...] = Field((), description="Criteria where lower is better.")
    stage_weights: dict[str, float] = Field(
        default_factory=lambda: dict(_DEFAULT_STAGE_WEIGHTS),
        description="Win probability per open stage (used when an opportunity has none).",
    )
    expansion_types: tuple[str, ...] = Field(
        ("new", "cross_sell", "upsell"),
        description="Opportunity types counted as expansion (renewals keep, not grow, revenue).",
    )
    size_bands: SizeBandSettings = Field(default_factory=SizeBandSettings)
    whitespace: WhitespaceSettings = Field(default_factory=WhitespaceSettings)
    trend: TrendSettings = Field(default_factory=TrendSettings)
    robustness: RobustnessSettings = Field(default_factory=RobustnessSettings)

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, value: dict[str, float]) -> dict[str, float]:
        _validated_weights(value, known=None)
        return value

    @field_validator("attractiveness_weights")
    @classmethod
    def _check_attractiveness_weights(cls, value: dict[str, float]) -> dict[str, float]:
        _validated_weights(value, known=None)
        ours = sorted(set(value) & set(POSITION_CRITERIA))
        if ours:
            raise ValueError(
                f"attractiveness_weights name {ours}, which measure our position with the "
                "customer, not the customer: the position axis of the portfolio matrix reads "
                "them ([segmentation] position_weights); customer-side criteria are "
                f"{list(CUSTOMER_SIDE_CRITERIA)} or a column of your own"
            )
        return value

    @field_validator("stage_weights")
    @classmethod
    def _check_stage_weights(cls, value: dict[str, float]) -> dict[str, float]:
        _validated_stage_weights(value)
        return value

    @field_validator("expansion_types")
    @classmethod
    def _check_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(OPPORTUNITY_TYPES))
        if unknown:
            raise ValueError(f"unknown opportunity type(s) {unknown}; known: {OPPORTUNITY_TYPES}")
        return value


def _validated_stage_weights(stage_weights: Mapping[str, float]) -> dict[str, float]:
    unknown = sorted(set(stage_weights) - set(OPEN_STAGES))
    if unknown:
        raise ValueError(
            f"stage_weights: unknown open stage(s) {unknown}; open stages: {OPEN_STAGES}"
        )
    missing = [s for s in OPEN_STAGES if s not in stage_weights]
    if missing:
        raise ValueError(f"stage_weights: no weight for open stage(s) {missing}")
    bad = {s: w for s, w in stage_weights.items() if not (0 <= float(w) <= 1)}
    if bad:
        raise ValueError(f"stage_weights must lie in [0, 1]; got {bad}")
    return {s: float(w) for s, w in stage_weights.items()}


def _validated_weights(weights: Mapping[str, float], known: set[str] | None) -> dict[str, float]:
    """Check weights (non-negative, finite, not all zero, known) and normalise to sum 1."""
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError("weights must be a non-empty mapping criterion -> weight")
    clean: dict[str, float] = {}
    for name, w in weights.items():
        try:
            w = float(w)
        except (TypeError, ValueError):
            raise ValueError(f"weight of {name!r} must be a number, got {w!r}") from None
        if not np.isfinite(w):
            raise ValueError(f"weight of {name!r} must be finite, got {w}")
        if w < 0:
            raise ValueError(f"weight of {name!r} is negative ({w}); weights must be >= 0")
        clean[str(name)] = w
    if known is not None:
        unknown = sorted(set(clean) - known)
        if unknown:
            raise ValueError(
                f"unknown criterion {unknown}: not a column of the table and not one of "
                f"{sorted(CRITERIA)}"
            )
    total = sum(clean.values())
    if total <= 0:
        raise ValueError("weights sum to 0; give at least one criterion a positive weight")
    return {k: v / total for k, v in clean.items()}


# --------------------------------------------------------------------------- helpers


def _as_of_day(as_of) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(as_of)
    except (TypeError, ValueError) as exc:
        raise ValuationInputError(f"as_of must be a date, got {as_of!r}") from exc
    if pd.isna(ts):
        raise ValuationInputError(f"as_of must be a date, got {as_of!r}")
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.normalize()


def _require(df: pd.DataFrame, name: str, columns: Sequence[str]) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ValuationInputError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValuationInputError(
            f"{name} is missing required column(s) {missing}; it has {list(df.columns)}"
        )


def _unique_accounts(df: pd.DataFrame, name: str) -> None:
    dup = df[_ACCOUNT_ID][df[_ACCOUNT_ID].duplicated()]
    if len(dup):
        raise ValuationInputError(
            f"{name}.{_ACCOUNT_ID} must be unique; repeated: {dup.unique()[:5].tolist()}"
        )


def _numeric(s: pd.Series, name: str) -> pd.Series:
    try:
        return pd.to_numeric(s).astype("float64")
    except (TypeError, ValueError):
        bad = s[pd.to_numeric(s, errors="coerce").isna() & s.notna()].head(3).tolist()
        raise ValuationInputError(f"column {name!r} must be numeric; bad values {bad}") from None


def _product_line_spend(
    transactions: pd.DataFrame | None, spend_12m: pd.DataFrame | None, as_of
) -> pd.DataFrame:
    """Trailing 12-month revenue per (account, product line): given, or summed from the lines."""
    if spend_12m is not None:
        _require(spend_12m, "spend_12m", [_ACCOUNT_ID, _T_LINE, _T_REVENUE])
        rows = spend_12m
    elif transactions is None:
        raise ValuationInputError(
            "pass the transaction lines or spend_12m (revenue per account and product line "
            "in the trailing 12 months, e.g. kam_analysis.data.features.product_line_revenue)"
        )
    else:
        _require(transactions, "transactions", [_ACCOUNT_ID, _T_DATE, _T_LINE, _T_REVENUE])
        rows = _window_12m(transactions, _as_of_day(as_of))
    spend = pd.DataFrame(
        {
            "account_id": rows[_ACCOUNT_ID].to_numpy(),
            "product_line": rows[_T_LINE].to_numpy(),
            "revenue": _numeric(rows[_T_REVENUE], _T_REVENUE).to_numpy(),
        }
    )
    return spend.groupby(["account_id", "product_line"], as_index=False)["revenue"].sum()


def _window_12m(transactions: pd.DataFrame, as_of_day: pd.Timestamp) -> pd.DataFrame:
    """Lines in ``(as_of - 12 months, as_of]`` (calendar days, as in features)."""
    dates = pd.to_datetime(transactions[_T_DATE]).dt.normalize()
    start = as_of_day - pd.DateOffset(months=12) + pd.Timedelta(days=1)
    return transactions.loc[(dates >= start) & (dates <= as_of_day)]


# --------------------------------------------------------------------------- current value


def monthly_from_transactions(transactions: pd.DataFrame, as_of) -> pd.DataFrame:
    """Revenue and gross profit per account and calendar month, in pandas.

    The small-data equivalent of :func:`kam_analysis.data.features.monthly_revenue`
    (which aggregates in the engine); use that one on large files.

    Parameters
    ----------
    transactions : pandas.DataFrame
        Columns ``account_id``, ``date``, ``revenue`` and optionally ``cost``.
    as_of : date-like
        Lines after this day are ignored.

    Returns
    -------
    pandas.DataFrame
        Columns ``account_id``, ``month`` (first day), ``revenue``,
        ``gross_profit`` (NaN without a cost column).
    """
    _require(transactions, "transactions", [_ACCOUNT_ID, _T_DATE, _T_REVENUE])
    day = _as_of_day(as_of)
    dates = pd.to_datetime(transactions[_T_DATE]).dt.normalize()
    keep = dates <= day
    t = pd.DataFrame(
        {
            "account_id": transactions.loc[keep, _ACCOUNT_ID].to_numpy(),
            "month": dates[keep].dt.to_period("M").dt.to_timestamp().to_numpy(),
            "revenue": _numeric(transactions.loc[keep, _T_REVENUE], _T_REVENUE).to_numpy(),
        }
    )
    if _T_COST in transactions.columns:
        cost = _numeric(transactions.loc[keep, _T_COST], _T_COST).to_numpy()
        t["gross_profit"] = t["revenue"] - cost
    else:
        t["gross_profit"] = np.nan
    t["gp_missing"] = t["gross_profit"].isna()
    out = t.groupby(["account_id", "month"], as_index=False).agg(
        revenue=("revenue", "sum"),
        gross_profit=("gross_profit", "sum"),
        gp_missing=("gp_missing", "any"),
    )
    # a month with any line lacking a cost has an unknown gross profit (as in features)
    out["gross_profit"] = out["gross_profit"].where(~out["gp_missing"])
    out = out.drop(columns="gp_missing")
    return out.sort_values(["account_id", "month"], ignore_index=True)


def _theil_sen_slopes(y: np.ndarray) -> np.ndarray:
    """Row-wise Theil-Sen slope of y (rows with NaN for unused points) against 0..m-1."""
    m = y.shape[1]
    i, j = np.triu_indices(m, k=1)
    pair_slopes = (y[:, j] - y[:, i]) / (j - i)
    with np.errstate(all="ignore"):
        all_nan = np.all(np.isnan(pair_slopes), axis=1)
        out = np.full(y.shape[0], np.nan)
        if (~all_nan).any():
            out[~all_nan] = np.nanmedian(pair_slopes[~all_nan], axis=1)
    return out


def _ols_slopes(y: np.ndarray) -> np.ndarray:
    """Row-wise least-squares slope of y (NaN = unused point) against 0..m-1."""
    x = np.broadcast_to(np.arange(y.shape[1], dtype=float), y.shape)
    used = ~np.isnan(y)
    n = used.sum(axis=1)
    with np.errstate(all="ignore"):
        xm = np.where(used, x, 0).sum(axis=1) / n
        ym = np.where(used, y, 0).sum(axis=1) / n
        dx = np.where(used, x - xm[:, None], 0)
        dy = np.where(used, y - ym[:, None], 0)
        return (dx * dy).sum(axis=1) / (dx * dx).sum(axis=1)


_NEVER = pd.Timestamp("2262-04-11")
"""A day after every quarter (covered_from of a book without lines)."""


def _last_complete_month(as_of_day: pd.Timestamp) -> int:
    """Month index (12 * year + month - 1) of the last complete month up to ``as_of``."""
    last = as_of_day.year * 12 + as_of_day.month - 1
    if as_of_day != as_of_day + pd.offsets.MonthEnd(0):
        last -= 1  # the as-of month is not complete
    return last


def _month_start(index: int) -> pd.Timestamp:
    return pd.Timestamp(year=index // 12, month=index % 12 + 1, day=1)


def trend_window(
    as_of, *, quarters: int = 8, min_quarters: int = 4
) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """The dates the revenue trend of :func:`trend_from_monthly` looks at.

    Parameters
    ----------
    as_of : date-like
        Analysis date; the quarters end with the last complete month.
    quarters, min_quarters : int
        As for :func:`trend_from_monthly`.

    Returns
    -------
    (pandas.Timestamp, pandas.Timestamp, pandas.Timestamp)
        ``(needs_from, window_from, window_to)``: the first day of the
        ``min_quarters``-th quarter back (the trend needs data from there),
        the first day of the oldest of the ``quarters`` quarters, and the last
        day of the last complete month. Example: as of 2011-12-09 with 8 and
        4 quarters: 2010-12-01, 2009-12-01, 2011-11-30.
    """
    last = _last_complete_month(_as_of_day(as_of))
    return (
        _month_start(last - 3 * int(min_quarters) + 1),
        _month_start(last - 3 * int(quarters) + 1),
        _month_start(last + 1) - pd.Timedelta(days=1),
    )


def trend_from_monthly(
    monthly_revenue: pd.DataFrame,
    *,
    as_of=None,
    quarters: int = 8,
    min_quarters: int = 4,
    method: Literal["theil_sen", "ols"] = "theil_sen",
    covered_from=None,
) -> pd.DataFrame:
    """Revenue trend per account: slope of quarterly revenue, in % of the mean per year.

    Monthly revenue is summed into ``quarters`` consecutive three-month
    blocks ending with the last complete month (months without a row count
    as zero revenue). Quarters before the account's first sale inside the
    window are dropped, so a new customer is not credited with growth from
    zero. The slope ``b`` (revenue per quarter) is estimated with the
    Theil-Sen estimator (median of the pairwise slopes; robust to one
    exceptional order) or by ordinary least squares, and expressed as

    ``trend = 4 * b / mean(quarterly revenue)``

    i.e. the fractional change per year relative to the account's average
    quarter: ``0.10`` means revenue grows by about 10 % of an average quarter's
    revenue, per quarter, over a year. Example: quarters 100, 110, ..., 170
    give ``b = 10``, mean 135, trend = 40 / 135 = 0.296.

    History coverage is a property of the book: with ``covered_from`` (the
    earliest day the data covers, :attr:`kam_analysis.data.features.HistoryCoverage.covered_from`)
    the quarters starting before it are left out for every account, since
    a quarter the data only partly covers would look like a fall in sales
    that never happened. With fewer than ``min_quarters`` covered quarters
    every trend is NaN (see :func:`trend_window` for the dates needed).

    Parameters
    ----------
    monthly_revenue : pandas.DataFrame
        Columns ``account_id``, ``month`` (any day of the month) and
        ``revenue`` (e.g. :func:`kam_analysis.data.features.monthly_revenue`).
    as_of : date-like, optional
        Analysis date. Its month counts as complete only when ``as_of`` is
        the last day of the month; otherwise the blocks end with the month
        before. Default: the latest month in the data, taken as complete.
    quarters : int, default 8
        Number of quarters in the slope.
    min_quarters : int, default 4
        Fewest quarters (after the first sale) needed; fewer gives NaN.
    method : {"theil_sen", "ols"}, default "theil_sen"
    covered_from : date-like, optional
        First day the book's data covers; quarters starting earlier are not
        used (default: every quarter counts).

    Returns
    -------
    pandas.DataFrame
        One row per account of the input: ``account_id``, ``trend`` (NaN when
        fewer than ``min_quarters`` quarters or a zero mean),
        ``trend_quarters`` (quarters used), ``quarterly_revenue_mean``.

    Raises
    ------
    ValuationInputError
        Missing columns, ``quarters < 2``, ``min_quarters`` outside
        ``[2, quarters]`` or an unknown method.

    References
    ----------
    .. [1] Sen, P. K. (1968). Estimates of the regression coefficient based on
       Kendall's tau. Journal of the American Statistical Association, 63(324),
       1379-1389.
    """
    _require(monthly_revenue, "monthly_revenue", ["account_id", "month", "revenue"])
    if quarters < 2:
        raise ValuationInputError(f"quarters must be >= 2, got {quarters}")
    if not 2 <= min_quarters <= quarters:
        raise ValuationInputError(f"min_quarters must lie in [2, {quarters}], got {min_quarters}")
    if method not in ("theil_sen", "ols"):
        raise ValuationInputError(f"method must be 'theil_sen' or 'ols', got {method!r}")
    cols = ["account_id", "trend", "trend_quarters", "quarterly_revenue_mean"]
    if monthly_revenue.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols}).astype(
            {"account_id": "object"}
        )
    ts = pd.to_datetime(monthly_revenue["month"])
    month = (ts.dt.year * 12 + ts.dt.month - 1).astype("int64")  # consecutive month index
    last = int(month.max()) if as_of is None else _last_complete_month(_as_of_day(as_of))
    # months back from the last complete month: 0 = last month
    back = last - month
    n_months = 3 * quarters
    keep = (back >= 0) & (back < n_months)
    q_index = quarters - 1 - back[keep] // 3  # 0 = oldest quarter
    accounts = pd.Index(pd.unique(monthly_revenue["account_id"]))
    grid = pd.DataFrame(
        {
            "account_id": monthly_revenue.loc[keep, "account_id"].to_numpy(),
            "q": q_index.to_numpy(),
            "revenue": _numeric(monthly_revenue.loc[keep, "revenue"], "revenue").to_numpy(),
        }
    )
    y = (
        grid.pivot_table(index="account_id", columns="q", values="revenue", aggfunc="sum")
        .reindex(index=accounts, columns=range(quarters))
        .fillna(0.0)
        .to_numpy()
    )
    # quarters the book's data does not fully cover count for nobody
    first_month = last - 3 * quarters + 1 + 3 * np.arange(quarters)
    if covered_from is not None:
        start = _as_of_day(covered_from)
        covered = np.array([_month_start(int(m)) >= start for m in first_month])
    else:
        covered = np.ones(quarters, dtype=bool)
    y = np.where(covered[None, :], y, 0.0)
    # drop the quarters before the first sale in the window
    started = np.cumsum(y > 0, axis=1) > 0
    y = np.where(started, y, np.nan)
    used = started.sum(axis=1)
    with np.errstate(all="ignore"):
        mean = np.nanmean(np.where(used[:, None] > 0, y, 0.0), axis=1)
    mean = np.where(used > 0, mean, np.nan)
    slope = _theil_sen_slopes(y) if method == "theil_sen" else _ols_slopes(y)
    with np.errstate(all="ignore"):
        trend = 4.0 * slope / mean
    trend = np.where((used >= min_quarters) & (mean > 0), trend, np.nan)
    return pd.DataFrame(
        {
            "account_id": accounts.to_numpy(),
            "trend": trend,
            "trend_quarters": used.astype("int64"),
            "quarterly_revenue_mean": mean,
        }
    )


def current_value(
    features: pd.DataFrame,
    monthly_revenue: pd.DataFrame | None = None,
    *,
    coverage: HistoryCoverage | None = None,
    **trend_kw,
) -> pd.DataFrame:
    """Current value of each account: trailing-year revenue, profit, margin, growth, trend.

    Parameters
    ----------
    features : pandas.DataFrame
        Account feature table (:func:`kam_analysis.data.features.build_account_features`).
        Required ``account_id``, ``revenue_12m``; used when present
        ``gross_profit_12m``, ``gross_profit_assumed``, ``revenue_prev_12m``,
        ``revenue_growth``, ``gross_profit_growth``.
    monthly_revenue : pandas.DataFrame, optional
        Monthly revenue per account for the trend (see :func:`trend_from_monthly`);
        without it ``trend`` is NaN.
    coverage : kam_analysis.data.features.HistoryCoverage, optional
        The book's history: when it does not cover the previous 12 months,
        both growth columns are NaN for every account, and the trend leaves
        out the quarters before the data starts. Without it the features'
        growth is taken as given and every trend quarter counts.
    **trend_kw
        Passed to :func:`trend_from_monthly` (``as_of``, ``quarters``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per account of ``features`` (same order): ``account_id``,
        ``revenue_12m``, ``gross_profit_12m``, ``margin_12m`` (GP / revenue,
        NaN unless revenue is positive, and when the gross profit is an
        assumed margin times revenue), ``revenue_growth`` and
        ``gross_profit_growth`` (from the features, or computed from
        ``revenue_prev_12m``: NaN when the previous year is 0 or not
        covered), ``trend`` (fraction of mean revenue per year).

    Raises
    ------
    ValuationInputError
        When a required column is missing or ``account_id`` repeats.
    """
    _require(features, "features", [_ACCOUNT_ID, "revenue_12m"])
    _unique_accounts(features, "features")
    out = pd.DataFrame({"account_id": features[_ACCOUNT_ID].to_numpy()})
    rev = _numeric(features["revenue_12m"], "revenue_12m").to_numpy()
    out["revenue_12m"] = rev
    gp = (
        _numeric(features["gross_profit_12m"], "gross_profit_12m").to_numpy()
        if "gross_profit_12m" in features
        else np.full(len(out), np.nan)
    )
    out["gross_profit_12m"] = gp
    assumed = (
        features["gross_profit_assumed"].fillna(False).astype(bool).to_numpy()
        if "gross_profit_assumed" in features
        else np.zeros(len(out), dtype=bool)
    )
    with np.errstate(all="ignore"):
        out["margin_12m"] = np.where((rev > 0) & ~assumed, gp / rev, np.nan)
        if "revenue_growth" in features:
            out["revenue_growth"] = _numeric(
                features["revenue_growth"], "revenue_growth"
            ).to_numpy()
        elif "revenue_prev_12m" in features:
            prev = _numeric(features["revenue_prev_12m"], "revenue_prev_12m").to_numpy()
            out["revenue_growth"] = np.where(prev > 0, (rev - prev) / prev, np.nan)
        else:
            out["revenue_growth"] = np.nan
    out["gross_profit_growth"] = (
        _numeric(features["gross_profit_growth"], "gross_profit_growth").to_numpy()
        if "gross_profit_growth" in features
        else np.nan
    )
    if coverage is not None and not coverage.covers_prev_12m:
        out["revenue_growth"] = np.nan
        out["gross_profit_growth"] = np.nan
    if monthly_revenue is not None:
        if coverage is not None and "covered_from" not in trend_kw:
            frm = coverage.covered_from  # None: no line at all, nothing is covered
            trend_kw = {**trend_kw, "covered_from": frm if frm is not None else _NEVER}
        trend = trend_from_monthly(monthly_revenue, **trend_kw)
        out = out.merge(trend[["account_id", "trend"]], on="account_id", how="left")
    else:
        out["trend"] = np.nan
    return out


# --------------------------------------------------------------------------- potential value


def size_bands(
    values: pd.Series,
    *,
    labels: Sequence[str] = ("S", "M", "L", "XL"),
    quantiles: Sequence[float] = (0.25, 0.5, 0.75),
) -> pd.Series:
    """Assign size bands by quantiles of a size measure.

    Band ``i`` holds values above the ``i``-th quantile edge and at or below
    the next one (the lowest band includes its lower edge); edges are the
    quantiles of the non-missing values (linear interpolation, numpy default).

    Parameters
    ----------
    values : pandas.Series
        Size measure (wallet estimate or revenue); NaN gives band ``"unknown"``.
    labels : sequence of str
        Band labels from small to large.
    quantiles : sequence of float
        ``len(labels) - 1`` increasing quantiles in (0, 1).

    Returns
    -------
    pandas.Series
        Band label per value (same index), ``"unknown"`` for missing values.

    Raises
    ------
    ValuationInputError
        When labels and quantiles do not match.
    """
    try:
        spec = SizeBandSettings(labels=tuple(labels), quantiles=tuple(quantiles))
    except ValueError as err:
        raise ValuationInputError(str(err)) from None
    return _assign_bands(values, spec)


def _assign_bands(values: pd.Series, spec: SizeBandSettings) -> pd.Series:
    v = _numeric(values, str(values.name or "size"))
    known = v.notna()
    out = pd.Series("unknown", index=values.index, dtype="object")
    if known.any():
        edges = np.quantile(v[known].to_numpy(), spec.quantiles)
        idx = np.searchsorted(edges, v[known].to_numpy(), side="left")
        out[known] = np.asarray(spec.labels, dtype=object)[idx]
    return out


def whitespace_matrix(
    transactions: pd.DataFrame | None,
    accounts: pd.DataFrame,
    *,
    as_of,
    min_peers: int = 5,
    adoption_threshold: float = 0.5,
    size_bands: SizeBandSettings | None = None,
    scale_by_size: bool = True,
    max_scale: float = 4.0,
    spend_12m: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Cross-sell whitespace per account and product line, estimated from peers.

    For every account and every product line sold to anybody in the trailing
    12 months: if the account did not buy the line in those 12 months, its
    *peers* (the other accounts of the same industry and size band) are
    examined. When there are at least ``min_peers`` peers and at least
    ``adoption_threshold`` of them bought the line, the whitespace value is
    the median 12-month spend on the line among the peers who bought it;
    otherwise it is 0. Lines the account already buys have value 0 (their
    growth is in the headroom, not the whitespace).

    With ``scale_by_size`` the peers' median is multiplied by the account's
    size divided by the median size of those buying peers, clipped to
    ``[1/max_scale, max_scale]``: the top size band is open-ended, and a
    company half the size of its peers should not be credited with their
    spend. Accounts (or peers) without a size are not scaled.

    Parameters
    ----------
    transactions : pandas.DataFrame or None
        Columns ``account_id``, ``date``, ``product_line``, ``revenue``;
        ``None`` when ``spend_12m`` is given.
    accounts : pandas.DataFrame
        One row per account: ``account_id``; ``industry`` (absent: all
        accounts form one industry; missing values form an ``"unknown"``
        industry); the size column of ``size_bands`` (``wallet_estimate`` by
        default; ``revenue_12m`` is computed from the transactions when absent).
    as_of : date-like
        End of the trailing 12-month window ``(as_of - 12 months, as_of]``.
    min_peers : int, default 5
        Fewest peers (the account itself excluded) for a peer estimate.
    adoption_threshold : float, default 0.5
        Share of peers that must buy the line, in (0, 1].
    size_bands : SizeBandSettings, optional
        How to band accounts by size (default: quartiles of the wallet estimate,
        labels S, M, L, XL).
    scale_by_size : bool, default True
    max_scale : float, default 4.0
    spend_12m : pandas.DataFrame, optional
        The trailing 12-month revenue per account and product line, already
        aggregated (columns ``account_id``, ``product_line``, ``revenue``;
        :func:`kam_analysis.data.features.product_line_revenue` computes it in
        the engine). Used instead of ``transactions``, so that large line
        tables need not be loaded into pandas; the result is the same.

    Returns
    -------
    pandas.DataFrame
        Long table, one row per account of ``accounts`` and product line,
        sorted by account and line:

        ================== ====================================================
        account_id         account
        product_line       product line
        industry           peer group industry
        size_band          peer group size band
        bought_12m         the account bought the line in the 12 months
        peers              number of peers (same industry and band, self excluded)
        peer_adoption      share of peers who bought the line (NaN without peers)
        peer_median_spend  median 12-month spend of the buying peers (NaN if none,
                           and for lines the account buys)
        whitespace_value   estimated annual spend available on the line, >= 0
        ================== ====================================================

    Raises
    ------
    ValuationInputError
        Missing columns, repeated accounts, or thresholds out of range.
    """
    _require(accounts, "accounts", [_ACCOUNT_ID])
    _unique_accounts(accounts, "accounts")
    if int(min_peers) < 1:
        raise ValuationInputError(f"min_peers must be >= 1, got {min_peers}")
    if not 0 < adoption_threshold <= 1:
        raise ValuationInputError(
            f"adoption_threshold must lie in (0, 1], got {adoption_threshold}"
        )
    if max_scale < 1:
        raise ValuationInputError(f"max_scale must be >= 1, got {max_scale}")
    bands = size_bands or SizeBandSettings()
    spend_long = _product_line_spend(transactions, spend_12m, as_of)
    account_ids = pd.Index(accounts[_ACCOUNT_ID].to_numpy(), name="account_id")
    lines = pd.Index(sorted(spend_long["product_line"].unique()), name="product_line")
    spend = (
        spend_long.pivot(index="account_id", columns="product_line", values="revenue")
        .reindex(index=account_ids, columns=lines)
        .fillna(0.0)
    )

    if bands.column in accounts.columns:
        size = _numeric(accounts[bands.column], bands.column)
    elif bands.column == "revenue_12m":
        size = pd.Series(spend.sum(axis=1).to_numpy(), name="revenue_12m")
    else:
        raise ValuationInputError(
            f"accounts has no column {bands.column!r} for the size bands; add it or set "
            "size_bands.column = 'revenue_12m'"
        )
    size = pd.Series(size.to_numpy(), index=account_ids)
    band = pd.Series(
        _assign_bands(size, bands).to_numpy(),
        index=account_ids,
    )
    if _INDUSTRY in accounts.columns:
        industry = (
            accounts[_INDUSTRY].astype("object").where(accounts[_INDUSTRY].notna(), "unknown")
        )
    else:
        industry = pd.Series("(all)", index=accounts.index)
    industry = pd.Series(industry.astype(str).to_numpy(), index=account_ids)

    group = pd.Series(
        pd.factorize(pd.MultiIndex.from_arrays([industry.to_numpy(), band.to_numpy()]))[0],
        index=account_ids,
    )
    bought = spend.to_numpy() > 0  # accounts x lines
    n_acc, n_lines = bought.shape
    g = group.to_numpy()
    group_size = np.bincount(g)
    peers = group_size[g] - 1  # self excluded
    adopters = np.zeros((group_size.size, n_lines))
    np.add.at(adopters, g, bought.astype(float))
    # For an account not buying a line, buying peers = all buyers of its group.
    with np.errstate(all="ignore"):
        adoption = np.where(peers[:, None] > 0, (adopters[g] - bought) / peers[:, None], np.nan)

    # median spend and median size of buying accounts per group and line
    med_spend = np.full((group_size.size, n_lines), np.nan)
    med_size = np.full((group_size.size, n_lines), np.nan)
    spend_arr = spend.to_numpy()
    size_arr = size.to_numpy()
    if n_lines:
        buyers = pd.DataFrame(
            {
                "g": np.repeat(g, n_lines),
                "line": np.tile(np.arange(n_lines), n_acc),
                "spend": spend_arr.ravel(),
                "size": np.repeat(size_arr, n_lines),
            }
        )
        buyers = buyers[buyers["spend"] > 0]
        agg = buyers.groupby(["g", "line"]).agg(spend=("spend", "median"), size=("size", "median"))
        gi = agg.index.get_level_values("g").to_numpy()
        li = agg.index.get_level_values("line").to_numpy()
        med_spend[gi, li] = agg["spend"].to_numpy()
        med_size[gi, li] = agg["size"].to_numpy()
    peer_median = np.where(
        bought, np.nan, med_spend[g]
    )  # for buyers the group median includes self
    eligible = (~bought) & (peers[:, None] >= int(min_peers)) & (adoption >= adoption_threshold)
    value = np.where(eligible, med_spend[g], 0.0)
    if scale_by_size:
        with np.errstate(all="ignore"):
            ratio = size_arr[:, None] / med_size[g]
        ratio = np.where(np.isfinite(ratio) & (ratio > 0), ratio, 1.0)
        ratio = np.clip(ratio, 1.0 / max_scale, max_scale)
        value = value * np.where(eligible, ratio, 1.0)
    value = np.nan_to_num(value, nan=0.0)

    return pd.DataFrame(
        {
            "account_id": np.repeat(account_ids.to_numpy(), n_lines),
            "product_line": np.tile(lines.to_numpy(), n_acc),
            "industry": np.repeat(industry.to_numpy(), n_lines),
            "size_band": np.repeat(band.to_numpy(), n_lines),
            "bought_12m": bought.ravel(),
            "peers": np.repeat(peers, n_lines).astype("int64"),
            "peer_adoption": adoption.ravel(),
            "peer_median_spend": peer_median.ravel(),
            "whitespace_value": value.ravel(),
        }
    ).sort_values(["account_id", "product_line"], ignore_index=True)


def whitespace_pivot(whitespace: pd.DataFrame, value: str = "whitespace_value") -> pd.DataFrame:
    """Account x product line matrix from the long output of :func:`whitespace_matrix`.

    Parameters
    ----------
    whitespace : pandas.DataFrame
        Output of :func:`whitespace_matrix`.
    value : str, default "whitespace_value"
        Column to spread (e.g. ``peer_adoption``).

    Returns
    -------
    pandas.DataFrame
        Index ``account_id``, one column per product line.
    """
    _require(whitespace, "whitespace", ["account_id", "product_line", value])
    return whitespace.pivot(index="account_id", columns="product_line", values=value)


def expected_expansion(
    opportunities: pd.DataFrame,
    *,
    as_of=None,
    stage_weights: Mapping[str, float] | None = None,
    expansion_types: Sequence[str] = ("new", "cross_sell", "upsell"),
) -> pd.DataFrame:
    """Probability-weighted open expansion pipeline per account.

    ``expected_expansion = sum(amount * p)`` over open opportunities (stage in
    :data:`kam_analysis.core.schemas.OPEN_STAGES`) of the expansion types, where
    ``p`` is the opportunity's ``probability`` when the column exists and the
    value is present, else the weight of its stage.

    Parameters
    ----------
    opportunities : pandas.DataFrame
        Columns ``account_id``, ``stage``, ``amount``; optional ``type``
        (absent: all count), ``probability``, ``created_date`` (with ``as_of``,
        opportunities created after it are ignored).
    as_of : date-like, optional
    stage_weights : mapping, optional
        Win probability per open stage (default prospecting 0.1,
        qualification 0.2, proposal 0.4, negotiation 0.7).
    expansion_types : sequence of str
        Opportunity types counted (renewals keep revenue rather than grow it).

    Returns
    -------
    pandas.DataFrame
        ``account_id``, ``expected_expansion``, ``open_pipeline`` (unweighted
        amount), ``n_open_opportunities``; only accounts with an open
        expansion opportunity.

    Raises
    ------
    ValuationInputError
        Missing columns, bad stage weights, or a probability outside [0, 1].
    """
    _require(opportunities, "opportunities", [_ACCOUNT_ID, _O_STAGE, _O_AMOUNT])
    try:
        weights = _validated_stage_weights(stage_weights or _DEFAULT_STAGE_WEIGHTS)
    except ValueError as err:
        raise ValuationInputError(str(err)) from None
    opp = opportunities
    keep = opp[_O_STAGE].isin(OPEN_STAGES)
    if _O_TYPE in opp.columns:
        keep &= opp[_O_TYPE].isin(list(expansion_types))
    if as_of is not None and _O_CREATED in opp.columns:
        keep &= pd.to_datetime(opp[_O_CREATED]).dt.normalize() <= _as_of_day(as_of)
    opp = opp.loc[keep]
    amount = _numeric(opp[_O_AMOUNT], _O_AMOUNT)
    p = opp[_O_STAGE].map(weights).astype("float64")
    if _O_PROB in opp.columns:
        prob = _numeric(opp[_O_PROB], _O_PROB)
        bad = prob[(prob < 0) | (prob > 1)]
        if len(bad):
            raise ValuationInputError(
                f"opportunities.{_O_PROB} must lie in [0, 1]; got {bad.head(3).tolist()}"
            )
        p = prob.where(prob.notna(), p)
    t = pd.DataFrame(
        {
            "account_id": opp[_ACCOUNT_ID].to_numpy(),
            "exp": (amount * p).to_numpy(),
            "amt": amount.to_numpy(),
        }
    )
    return (
        t.groupby("account_id", as_index=False)
        .agg(
            expected_expansion=("exp", "sum"),
            open_pipeline=("amt", "sum"),
            n_open_opportunities=("amt", "size"),
        )
        .astype({"n_open_opportunities": "int64"})
    )


def product_lines_available(
    table: pd.DataFrame | None = None,
    transactions: pd.DataFrame | None = None,
    spend_12m: pd.DataFrame | None = None,
) -> bool:
    """Whether the product-line analyses (whitespace, cross-sell) have data.

    They do not when the account table says the transactions have no product
    line (``product_lines_total`` present and missing for every account: see
    :func:`kam_analysis.data.features.build_account_features`), or when neither
    ``spend_12m`` nor transaction lines with a ``product_line`` column are
    given.

    Parameters
    ----------
    table : pandas.DataFrame, optional
        Account features or a valuation table.
    transactions : pandas.DataFrame, optional
        Transaction lines.
    spend_12m : pandas.DataFrame, optional
        12-month revenue per account and product line
        (:func:`kam_analysis.data.features.product_line_revenue`).

    Returns
    -------
    bool
    """
    if (
        table is not None
        and "product_lines_total" in table.columns
        and len(table)
        and table["product_lines_total"].isna().all()
    ):
        return False
    if spend_12m is not None:
        return True
    return transactions is not None and _T_LINE in transactions.columns


def _peer_accounts(table: pd.DataFrame, size_column: str) -> pd.DataFrame:
    """Account columns the whitespace peers need; an absent size column is unknown (NaN)."""
    cols = [c for c in (_ACCOUNT_ID, _INDUSTRY, _WALLET, "revenue_12m") if c in table.columns]
    out = table[cols]
    if size_column not in out.columns and size_column == _WALLET:
        out = out.assign(**{_WALLET: np.nan})  # no wallet data: one "unknown" size band
    return out


def potential_value(
    features: pd.DataFrame,
    transactions: pd.DataFrame | None,
    opportunities: pd.DataFrame | None = None,
    *,
    as_of,
    stage_weights: Mapping[str, float] | None = None,
    size_bands: SizeBandSettings | None = None,
    whitespace: WhitespaceSettings | None = None,
    expansion_types: Sequence[str] = ("new", "cross_sell", "upsell"),
    spend_12m: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Future (potential) value of each account.

    Parameters
    ----------
    features : pandas.DataFrame
        One row per account: ``account_id``, ``revenue_12m``; optional
        ``wallet_estimate`` (absent: unknown for every account),
        ``industry`` for the whitespace peers (absent: peers by size band
        only); ``share_of_wallet`` is recomputed.
    transactions : pandas.DataFrame or None
        For the whitespace (see :func:`whitespace_matrix`); ``None`` when
        ``spend_12m`` is given.
    opportunities : pandas.DataFrame, optional
        For the expected expansion (see :func:`expected_expansion`); absent:
        ``expected_expansion`` is NaN for every account (no data: the
        criterion drops out of the score).
    as_of : date-like
        End of the trailing 12 months.
    stage_weights, size_bands, whitespace, expansion_types
        Business rules, defaults as in :class:`ValuationSettings`.
    spend_12m : pandas.DataFrame, optional
        12-month revenue per account and product line, instead of the
        transaction lines (see :func:`whitespace_matrix`).

    Returns
    -------
    pandas.DataFrame
        One row per account of ``features`` (same order):

        ==================== ==================================================
        account_id           account
        wallet_estimate      customer's annual spend in our category
        share_of_wallet      revenue_12m / wallet_estimate (NaN when the wallet
                             is missing or 0; may exceed 1 when the estimate is low)
        headroom             max(wallet_estimate - revenue_12m, 0); NaN without
                             a wallet
        whitespace           sum of :func:`whitespace_matrix` values (annual);
                             NaN for every account when product lines are not
                             available (:func:`product_lines_available`)
        whitespace_lines     product lines with a positive whitespace value
                             (NaN when product lines are not available)
        expected_expansion   probability-weighted open expansion pipeline (0
                             without open opportunities, NaN without an
                             opportunities table)
        open_pipeline        unweighted open expansion amount
        ==================== ==================================================

        Headroom and whitespace overlap (both are spend we do not yet get):
        headroom is top-down (the wallet), whitespace bottom-up (product lines
        peers buy). They are kept apart so that their weights can differ.

    Raises
    ------
    ValuationInputError
        Missing columns or repeated accounts.
    """
    _require(features, "features", [_ACCOUNT_ID, "revenue_12m"])
    _unique_accounts(features, "features")
    ws_cfg = whitespace or WhitespaceSettings()
    bands = size_bands or SizeBandSettings()
    rev = _numeric(features["revenue_12m"], "revenue_12m").to_numpy()
    wallet = (
        _numeric(features[_WALLET], _WALLET).to_numpy()
        if _WALLET in features
        else np.full(len(features), np.nan)
    )
    out = pd.DataFrame({"account_id": features[_ACCOUNT_ID].to_numpy(), "wallet_estimate": wallet})
    with np.errstate(all="ignore"):
        out["share_of_wallet"] = np.where(wallet > 0, rev / wallet, np.nan)
    out["headroom"] = np.where(np.isnan(wallet), np.nan, np.maximum(wallet - rev, 0.0))

    if product_lines_available(features, transactions, spend_12m):
        ws = whitespace_matrix(
            transactions,
            _peer_accounts(features, bands.column),
            as_of=as_of,
            min_peers=ws_cfg.min_peers,
            adoption_threshold=ws_cfg.adoption_threshold,
            size_bands=bands,
            scale_by_size=ws_cfg.scale_by_size,
            max_scale=ws_cfg.max_scale,
            spend_12m=spend_12m,
        )
        ws_total = (
            ws.assign(_open=ws["whitespace_value"] > 0)
            .groupby("account_id")
            .agg(whitespace=("whitespace_value", "sum"), whitespace_lines=("_open", "sum"))
        )
        out = out.merge(ws_total, left_on="account_id", right_index=True, how="left")
        out["whitespace"] = out["whitespace"].fillna(0.0)
        out["whitespace_lines"] = out["whitespace_lines"].fillna(0).astype("int64")
    else:  # no product line: the whitespace is not available, not zero
        out["whitespace"] = np.nan
        out["whitespace_lines"] = np.nan

    if opportunities is None:
        out["expected_expansion"] = np.nan
        out["open_pipeline"] = np.nan
    else:
        exp = expected_expansion(
            opportunities, as_of=as_of, stage_weights=stage_weights, expansion_types=expansion_types
        )
        out = out.merge(
            exp[["account_id", "expected_expansion", "open_pipeline"]], on="account_id", how="left"
        )
        out[["expected_expansion", "open_pipeline"]] = out[
            ["expected_expansion", "open_pipeline"]
        ].fillna(0.0)
    return out


# --------------------------------------------------------------------------- qualitative


def qualitative_value(accounts: pd.DataFrame) -> pd.DataFrame:
    """The qualitative 1-5 criteria of the accounts table, passed through and checked.

    Parameters
    ----------
    accounts : pandas.DataFrame
        ``account_id`` and any of :data:`kam_analysis.core.schemas.QUALITATIVE_CRITERIA`.

    Returns
    -------
    pandas.DataFrame
        ``account_id`` and every qualitative criterion as float (absent
        columns are all NaN: no data, the criterion drops out of the score;
        a missing score stays NaN and is left out of that account's score).

    Raises
    ------
    ValuationInputError
        A score outside 1-5 or not numeric (names the column and examples).
    """
    _require(accounts, "accounts", [_ACCOUNT_ID])
    out = pd.DataFrame({"account_id": accounts[_ACCOUNT_ID].to_numpy()})
    for c in QUALITATIVE_CRITERIA:
        if c in accounts.columns:
            v = _numeric(accounts[c], c)
            bad = accounts.loc[v.notna() & ((v < 1) | (v > 5)), [_ACCOUNT_ID, c]]
            if len(bad):
                raise ValuationInputError(
                    f"accounts.{c} must be a score from 1 to 5; bad rows: "
                    f"{bad.head(3).to_dict('records')}"
                )
            out[c] = v.to_numpy()
        else:
            out[c] = np.nan
    return out


def valuation_table(
    features: pd.DataFrame,
    transactions: pd.DataFrame | None,
    *,
    as_of,
    accounts: pd.DataFrame | None = None,
    opportunities: pd.DataFrame | None = None,
    monthly_revenue: pd.DataFrame | None = None,
    settings: ValuationSettings | None = None,
    spend_12m: pd.DataFrame | None = None,
    coverage: HistoryCoverage | None = None,
) -> pd.DataFrame:
    """Current, potential and qualitative value in one table, ready for scoring.

    Parameters
    ----------
    features : pandas.DataFrame
        Account feature table (one row per account).
    transactions : pandas.DataFrame or None
        Transaction lines (for whitespace and, without ``monthly_revenue``, the
        trend); may be ``None`` when ``monthly_revenue`` and ``spend_12m`` are
        given (the large-data path: both are engine aggregates).
    as_of : date-like
    accounts : pandas.DataFrame, optional
        Accounts table; its ``industry``, ``wallet_estimate`` and qualitative
        columns are added when ``features`` lacks them.
    opportunities : pandas.DataFrame, optional
    monthly_revenue : pandas.DataFrame, optional
        Default: computed from ``transactions`` (:func:`monthly_from_transactions`).
    settings : ValuationSettings, optional
    spend_12m : pandas.DataFrame, optional
        12-month revenue per account and product line for the whitespace
        (:func:`kam_analysis.data.features.product_line_revenue`), instead of the lines.
        Without it and without lines that have a ``product_line`` column,
        the whitespace is not available (NaN).
    coverage : kam_analysis.data.features.HistoryCoverage, optional
        The book's history (:func:`kam_analysis.data.features.history_coverage`):
        growth is NaN when the previous 12 months are not covered, and the
        trend uses only covered quarters (see :func:`current_value`).

    Returns
    -------
    pandas.DataFrame
        ``features`` (plus accounts columns) with the columns of
        :func:`current_value`, :func:`potential_value` and
        :func:`qualitative_value` (replacing same-named feature columns).
    """
    cfg = settings or ValuationSettings()
    _require(features, "features", [_ACCOUNT_ID])
    base = features.copy()
    if accounts is not None:
        _require(accounts, "accounts", [_ACCOUNT_ID])
        extra = [c for c in accounts.columns if c not in base.columns or c == _ACCOUNT_ID]
        base = base.merge(accounts[extra], on=_ACCOUNT_ID, how="left")
    if monthly_revenue is None:
        if transactions is None:
            raise ValuationInputError(
                "pass the transaction lines or monthly_revenue (e.g. "
                "kam_analysis.data.features.monthly_revenue) for the trend"
            )
        monthly_revenue = monthly_from_transactions(transactions, as_of)
    cur = current_value(
        base,
        monthly_revenue,
        coverage=coverage,
        as_of=as_of,
        quarters=cfg.trend.quarters,
        min_quarters=cfg.trend.min_quarters,
        method=cfg.trend.method,
    )
    pot = potential_value(
        base,
        transactions,
        opportunities,
        as_of=as_of,
        stage_weights=cfg.stage_weights,
        size_bands=cfg.size_bands,
        whitespace=cfg.whitespace,
        expansion_types=cfg.expansion_types,
        spend_12m=spend_12m,
    )
    qual = qualitative_value(base)
    out = base
    for part in (cur, pot, qual):
        cols = [c for c in part.columns if c != _ACCOUNT_ID]
        out = out.drop(columns=[c for c in cols if c in out.columns]).merge(
            part, on=_ACCOUNT_ID, how="left"
        )
    return out


# --------------------------------------------------------------------------- scoring


def normalise(values: pd.Series, method: Normalisation = "rank") -> pd.Series:
    """Map a criterion onto [0, 1] (higher = more attractive); NaN stays NaN.

    ``rank``
        Percentile rank ``(r - r_min) / (r_max - r_min)`` where ``r`` is the
        average rank (ties share the mean of their ranks) among the
        non-missing values and ``r_min``, ``r_max`` are the average ranks of
        the smallest and the largest value: the smallest value gets 0 however
        many accounts share it, the largest 1, and one giant account does not
        flatten everybody else. Without ties this is ``(r - 1) / (n - 1)``.
        Zero-inflated criteria (most accounts without whitespace or open
        pipeline) thus give their zeros a contribution of 0, not the
        ``(mean rank of the zeros - 1) / (n - 1)`` filler (0.44 when 88 % of
        accounts are 0) that would change the effective weights.
    ``minmax``
        ``(x - min) / (max - min)``.
    ``zscore``
        ``Phi((x - mean) / sd)`` with the standard normal CDF ``Phi`` and the
        sample standard deviation (ddof = 1).

    A criterion with a single distinct value (or one value) carries no
    information and maps to 0.5 for every account.

    Parameters
    ----------
    values : pandas.Series
    method : {"rank", "minmax", "zscore"}

    Returns
    -------
    pandas.Series
        Same index, float in [0, 1] or NaN.

    Raises
    ------
    ValuationInputError
        Unknown method or infinite values.
    """
    if method not in NORMALISATIONS:
        raise ValuationInputError(f"normalisation must be one of {NORMALISATIONS}, got {method!r}")
    v = _numeric(values, str(values.name))
    if np.isinf(v).any():
        raise ValuationInputError(
            f"criterion {values.name!r} has infinite values; e.g. accounts at positions "
            f"{np.flatnonzero(np.isinf(v.to_numpy()))[:3].tolist()}"
        )
    out = pd.Series(np.nan, index=values.index, dtype="float64")
    known = v.dropna()
    if known.nunique() <= 1:
        out[known.index] = NEUTRAL
        return out
    if method == "rank":
        r = known.rank(method="average")
        out[known.index] = (r - r.min()) / (r.max() - r.min())
    elif method == "minmax":
        out[known.index] = (known - known.min()) / (known.max() - known.min())
    else:
        out[known.index] = ndtr((known - known.mean()) / known.std(ddof=1))
    return out


def _criterion_values(table: pd.DataFrame, criterion: str) -> pd.Series:
    """Raw values of one criterion (all NaN when an optional column is absent)."""
    if criterion in table.columns:
        raw = _numeric(table[criterion], criterion)
    elif criterion in _OPTIONAL_COLUMNS:
        raw = pd.Series(np.nan, index=table.index, dtype="float64")
    else:
        raise ValuationInputError(
            f"criterion {criterion!r} has a weight but the table has no column {criterion!r}; "
            "compute it first (valuation_table) or give it weight 0"
        )
    if criterion in MISSING_AS_ZERO and raw.notna().any():
        raw = raw.fillna(0.0)  # the criterion has data: a missing value is no potential
    return raw.rename(criterion)


def _normalised_criteria(
    table: pd.DataFrame,
    criteria: Sequence[str],
    normalisation: Normalisation,
    invert: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised criteria (accounts x criteria, NaN where unknown) and which are used.

    A criterion is used when it has data; when some criterion also varies
    across accounts, a criterion with a single value for everybody is not
    used either (:func:`_used_mask`).
    """
    cols, raws = [], []
    for c in criteria:
        raw = _criterion_values(table, c)
        n = normalise(raw, normalisation)
        if c in invert:
            n = 1.0 - n
        cols.append(n.to_numpy())
        raws.append(raw)
    m = np.column_stack(cols) if cols else np.empty((len(table), 0))
    return m, _used_mask(raws)


def _used_mask(raws: Sequence[pd.Series]) -> np.ndarray:
    """Which criteria enter the score: those with data that vary across accounts.

    A criterion with one value for every account (e.g. no account has any
    whitespace) carries no information: its normalised value would be the
    same 0.5 for everybody, a filler that only shifts the scores. It is left
    out, unless no criterion varies at all (a book of one account), when the
    criteria with data are kept.
    """
    has_data = np.array([bool(r.notna().any()) for r in raws], dtype=bool)
    varies = np.array([r.nunique(dropna=True) > 1 for r in raws], dtype=bool)
    informative = has_data & varies
    return informative if informative.any() else has_data


def _check_weights_for(table: pd.DataFrame, weights: Mapping[str, float]) -> dict[str, float]:
    known = set(CRITERIA) | {c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])}
    try:
        return _validated_weights(weights, known)
    except ValueError as err:
        raise ValuationInputError(str(err)) from None


def _used_weights(
    table: pd.DataFrame,
    weights: Mapping[str, float] | None,
    normalisation: Normalisation,
    invert: Sequence[str],
) -> tuple[list[str], np.ndarray, np.ndarray, dict[str, float]]:
    """Criteria with data, their renormalised weights and normalised values.

    Returns ``(criteria, weights, matrix, stated)``: the positively weighted
    criteria that have data, their weights renormalised to sum 1, the
    normalised values (accounts x criteria, NaN where unknown) and the stated
    weights of every criterion (normalised over all of them).
    """
    stated = _check_weights_for(table, weights if weights is not None else _DEFAULT_WEIGHTS)
    positive = [c for c, v in stated.items() if v > 0]
    unknown_inv = sorted(set(invert) - set(stated))
    if unknown_inv:
        raise ValuationInputError(f"invert names criteria without a weight: {unknown_inv}")
    m, use = _normalised_criteria(table, positive, normalisation, invert)
    used = [c for c, ok in zip(positive, use, strict=True) if ok]
    if not used and len(table):
        raise ValuationInputError(
            f"no weighted criterion has data: {positive} are missing for every account; "
            "give a weight to a criterion the data has (e.g. revenue_12m)"
        )
    w = np.array([stated[c] for c in used], dtype="float64")
    w = w / w.sum() if w.size else w
    return used, w, m[:, use], stated


def _available_case_scores(m: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Contributions ``100 * w_c * n_ic / W_i`` and the known weight ``W_i`` of each account.

    ``W_i`` is the sum of the weights of the criteria known for account ``i``;
    an account that knows none gets zero contributions.
    """
    known = ~np.isnan(m)
    w_known = known.astype("float64") @ w
    with np.errstate(all="ignore"):
        scale = np.where(w_known > 0, 1.0 / w_known, 0.0)
    contrib = 100.0 * np.nan_to_num(m, nan=0.0) * w[None, :] * scale[:, None]
    return contrib, w_known


_TIE_DECIMALS = 9
"""Scores equal to this many decimals count as tied (sums of the same terms in another
order differ in the last bits), and ties are broken by account_id."""


def _ordinal_rank(table: pd.DataFrame, score: np.ndarray) -> np.ndarray:
    """1 = best; ties broken by account_id (ascending), deterministic."""
    key = np.round(score, _TIE_DECIMALS)
    order = np.lexsort((table[_ACCOUNT_ID].astype(str).to_numpy(), -key))
    rank = np.empty(len(score), dtype="int64")
    rank[order] = np.arange(1, len(score) + 1)
    return rank


def attractiveness_score(
    table: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    *,
    normalisation: Normalisation = "rank",
    invert: Sequence[str] = (),
) -> pd.DataFrame:
    """Weighted attractiveness score 0-100 with one contribution column per criterion.

    Each criterion ``c`` is normalised to ``n_c`` in [0, 1] (:func:`normalise`).
    Criteria without data (missing for every account: no cost column, no
    wallet, no ratings, no opportunities, no product lines, a window the
    history does not cover) drop out, and so do criteria with the same value
    for every account (unless nothing varies at all); the stated weights of
    the others are renormalised to ``w_c`` summing to 1
    (:func:`criteria_used` lists both). For account ``i`` with known criteria ``K_i`` and
    ``W_i = sum_{c in K_i} w_c``,

    ``contrib_ic = 100 * w_c * n_ic / W_i`` for ``c`` in ``K_i`` (else 0),
    ``score_i = sum_c contrib_ic``,

    the weighted mean of the account's known normalised criteria on a 0-100
    scale: an account is scored on what is known about it, and a missing
    value is neither a penalty nor a neutral filler. With complete data
    ``W_i = 1`` and the score is the plain weighted sum. Missing values of
    :data:`MISSING_AS_ZERO` criteria (whitespace, expected expansion) in a
    criterion that has data mean "no identified potential" and count as 0.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per account with ``account_id`` and the weighted criteria
        (e.g. :func:`valuation_table`).
    weights : mapping, optional
        Criterion -> non-negative weight; default :class:`ValuationSettings`
        weights. Criteria with weight 0 are ignored. A criterion may be any
        name of :data:`CRITERIA` or any numeric column of ``table``;
        qualitative, whitespace and expected-expansion columns may be absent
        (no data).
    normalisation : {"rank", "minmax", "zscore"}, default "rank"
    invert : sequence of str
        Criteria where lower is better (normalised value ``1 - n``).

    Returns
    -------
    pandas.DataFrame
        ``table`` with added columns ``score`` (0-100), ``rank`` (1 = most
        attractive; ties broken by ``account_id``), ``weight_known`` (``W_i``:
        the share of the used weight with a value for the account, 1 when
        nothing is missing) and ``contrib_<criterion>`` for every criterion
        used (positively weighted, with data); they sum to ``score``.

    Raises
    ------
    ValuationInputError
        Unknown criterion, negative / non-finite / all-zero weights, a
        weighted quantitative criterion missing from the table, no weighted
        criterion with data, repeated accounts, or an unknown normalisation.

    References
    ----------
    .. [1] OECD & JRC (2008). Handbook on Constructing Composite Indicators:
       Methodology and User Guide. OECD Publishing, section 3 (imputation of
       missing data: case-wise re-weighting over the available indicators).
    """
    _require(table, "table", [_ACCOUNT_ID])
    _unique_accounts(table, "table")
    criteria, wv, m, _ = _used_weights(table, weights, normalisation, invert)
    contrib, w_known = _available_case_scores(m, wv)
    # re-scoring a scored table: stale score, rank and contributions are replaced
    stale = [
        c
        for c in table.columns
        if c in ("score", "rank", "weight_known") or c.startswith("contrib_")
    ]
    out = table.drop(columns=stale)
    out["score"] = contrib.sum(axis=1)
    out["rank"] = _ordinal_rank(table, out["score"].to_numpy())
    out["weight_known"] = w_known
    for j, c in enumerate(criteria):
        out[f"contrib_{c}"] = contrib[:, j]
    return out


CUSTOMER_SIDE_CRITERIA: tuple[str, ...] = (
    "wallet_estimate",
    "revenue_growth",
    "trend",
    "whitespace",
    "expected_expansion",
    *QUALITATIVE_CRITERIA,
)
"""Criteria describing the customer rather than our position with it (:func:`customer_attractiveness`).

The customer's size (its category spend, ``wallet_estimate``), its growth,
its unmet needs (whitespace, expansion pipeline) and the qualitative
criteria. Our revenue, gross profit, margin, share of wallet and headroom
measure what we already win there: they belong to the position axis of the
portfolio matrix (:func:`kam_analysis.segmentation.portfolio_matrix`).
Exports rarely carry the customer's own growth, so our revenue growth and
trend at the customer stand in for it.
"""

POSITION_CRITERIA: tuple[str, ...] = (
    "revenue_12m",
    "gross_profit_12m",
    "margin_12m",
    "gross_profit_growth",
    "share_of_wallet",
    "headroom",
)
"""Criteria that measure our position with the customer: never part of its attractiveness."""

SIZE_STAND_IN: tuple[str, str] = ("wallet_estimate", "revenue_12m")
"""Without wallet estimates, our revenue (the part of the customer's spend we see, a lower
bound of its size) takes the wallet's weight in :func:`customer_attractiveness`."""


def attractiveness_weights(
    table: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    *,
    fallback: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The stated weights of the customer's attractiveness, as used by :func:`customer_attractiveness`.

    The positively weighted criteria of ``weights`` that describe the
    customer (criteria of :data:`POSITION_CRITERIA` are dropped); when
    ``wallet_estimate`` has no data, its weight moves to ``revenue_12m``
    (:data:`SIZE_STAND_IN`). When none of them has data, ``fallback`` is
    returned (attractiveness is then the score).

    Parameters
    ----------
    table : pandas.DataFrame
        The valuation table (:func:`valuation_table`).
    weights : mapping, optional
        Stated attractiveness weights (default
        :attr:`ValuationSettings.attractiveness_weights`).
    fallback : mapping, optional
        The score's stated weights (default :attr:`ValuationSettings.weights`).

    Returns
    -------
    dict
        Criterion -> stated weight (normalised over the criteria the table has
        columns for, before criteria of :data:`POSITION_CRITERIA` are dropped).
    """
    raw = weights if weights is not None else _DEFAULT_ATTRACTIVENESS_WEIGHTS
    # a criterion the table has no column for has no data (custom names must exist)
    present = {c: w for c, w in raw.items() if c in table.columns or c not in CRITERIA}
    size, stand_in = SIZE_STAND_IN
    if size in raw and size not in present and stand_in in table.columns:
        present[size] = raw[size]
    stated = _check_weights_for(table, present) if present else {}
    side = {c: w for c, w in stated.items() if c not in POSITION_CRITERIA and w > 0}
    has_size = size in table.columns and bool(_criterion_values(table, size).notna().any())
    if size in side and not has_size and stand_in in table.columns:
        side[stand_in] = side.pop(size)
    if any(bool(_criterion_values(table, c).notna().any()) for c in side):
        return side
    return _check_weights_for(table, fallback if fallback is not None else _DEFAULT_WEIGHTS)


def customer_attractiveness(
    table: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    *,
    normalisation: Normalisation = "rank",
    invert: Sequence[str] = (),
    fallback: Mapping[str, float] | None = None,
) -> pd.Series:
    """Attractiveness of the customer itself, 0-100: the vertical axis of the portfolio matrix.

    :func:`attractiveness_score` over the customer's own criteria
    (:func:`attractiveness_weights`): its size, growth and strategic value,
    weighted by :attr:`ValuationSettings.attractiveness_weights`. Our own
    revenue, gross profit and share of wallet are left out because they
    measure our position with the customer, the other axis; scoring them on
    both axes correlates the axes and fills the diagonal quadrants (McDonald
    & Woodburn: customer attractiveness against our relative strength).
    Without wallet estimates our revenue stands in for the customer's size
    (:data:`SIZE_STAND_IN`).

    Parameters
    ----------
    table : pandas.DataFrame
        The valuation table (:func:`valuation_table`), one row per account.
    weights : mapping, optional
        Stated attractiveness weights (default
        :attr:`ValuationSettings.attractiveness_weights`).
    normalisation : {"rank", "minmax", "zscore"}, default "rank"
    invert : sequence of str
        Criteria where lower is better (those not weighted here are ignored).
    fallback : mapping, optional
        The score's weights, used when no attractiveness criterion has data.

    Returns
    -------
    pandas.Series
        ``attractiveness`` (0-100), indexed like ``table``.
    """
    used = attractiveness_weights(table, weights, fallback=fallback)
    scored = attractiveness_score(
        table[[c for c in table.columns if not c.startswith("contrib_")]],
        used,
        normalisation=normalisation,
        invert=[c for c in invert if c in used],
    )
    return scored["score"].rename("attractiveness")


def _reason_for(
    table: pd.DataFrame,
    criterion: str,
    coverage: HistoryCoverage | None,
    trend: TrendSettings,
) -> str:
    """Why a criterion has no data (one of :data:`UNAVAILABLE_REASONS`)."""

    def all_missing(col: str) -> bool:
        return col not in table.columns or bool(_numeric(table[col], col).isna().all())

    no_cost = all_missing("gross_profit_12m")
    if criterion in ("gross_profit_12m", "margin_12m") and no_cost:
        return "no_cost"
    if criterion == "margin_12m" and _gp_assumed(table):
        return "no_cost"  # the margin of an assumed gross profit is the assumption itself
    if criterion in ("revenue_growth", "gross_profit_growth"):
        if criterion == "gross_profit_growth" and no_cost:
            return "no_cost"
        window = (coverage is not None and not coverage.covers_prev_12m) or (
            "revenue_prev_12m" in table.columns and all_missing("revenue_prev_12m")
        )
        return "window_not_covered" if window else "no_data"
    if criterion == "trend":
        if coverage is not None and not _trend_covered(coverage, trend):
            return "window_not_covered"
        return "no_data"
    return _REASON_OF.get(criterion, "no_data")


def _gp_assumed(table: pd.DataFrame) -> bool:
    return "gross_profit_assumed" in table.columns and bool(
        table["gross_profit_assumed"].fillna(False).astype(bool).any()
    )


def _trend_covered(coverage: HistoryCoverage, trend: TrendSettings) -> bool:
    needs_from, _, _ = trend_window(
        coverage.as_of, quarters=trend.quarters, min_quarters=trend.min_quarters
    )
    return coverage.covers(needs_from)


def criteria_used(
    table: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    *,
    coverage: HistoryCoverage | None = None,
    trend: TrendSettings | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """Each weighted criterion with its stated and used weight, and why a dropped one has no data.

    The same rule as :func:`attractiveness_score`: a criterion missing for
    every account is dropped and the other weights are renormalised.

    Parameters
    ----------
    table : pandas.DataFrame
        The valuation table that is (or was) scored (:func:`valuation_table`).
    weights : mapping, optional
        Stated weights (default :class:`ValuationSettings` weights).
    coverage : kam_analysis.data.features.HistoryCoverage, optional
        The book's history, to say that growth or trend is missing because
        the data does not reach back far enough, with the dates (without it,
        growth is still recognised as uncovered when ``revenue_prev_12m`` is
        missing for every account).
    trend : TrendSettings, optional
        The trend's quarters (default :class:`TrendSettings`), for its dates.
    groups : mapping, optional
        Family -> criteria (default :data:`CRITERION_GROUPS`).

    Returns
    -------
    pandas.DataFrame
        One row per positively weighted criterion, by family and descending
        stated weight:

        ============= =======================================================
        criterion     criterion name
        family        current, potential, qualitative or other
        stated_weight configured weight, normalised over all criteria
        weight_used   weight in the score (0 when dropped; sums to 1)
        available     the criterion is used: it has data for at least one
                      account and varies across accounts
        reason        why it is not used (:data:`UNAVAILABLE_REASONS`), ""
                      when available
        assumed       its values rest on ``assumed_gross_margin`` (gross
                      profit and its growth without a cost column)
        needs_from    first day of data the criterion needs (growth: the
                      start of the previous 12 months; trend: of its
                      ``min_quarters``-th quarter back); NaT for the others
                      or without ``coverage``
        data_from     first day of the book's data (with ``coverage``, for
                      the rows with ``needs_from``)
        ============= =======================================================

    Raises
    ------
    ValuationInputError
        As for :func:`attractiveness_score`.
    """
    _require(table, "table", [_ACCOUNT_ID])
    trend = trend or TrendSettings()
    stated = _check_weights_for(table, weights if weights is not None else _DEFAULT_WEIGHTS)
    positive = [c for c, v in stated.items() if v > 0]
    raws = [_criterion_values(table, c) for c in positive]
    use = dict(zip(positive, _used_mask(raws).tolist(), strict=True))
    has_data = {c: bool(r.notna().any()) for c, r in zip(positive, raws, strict=True)}
    used_total = sum(stated[c] for c in positive if use[c])
    groups = CRITERION_GROUPS if groups is None else groups
    family_of = {c: f for f, cs in groups.items() for c in cs}
    order = {f: i for i, f in enumerate(groups)}
    assumed = _gp_assumed(table)
    rows = []
    for c in positive:
        needs = data_from = pd.NaT
        if coverage is not None and c in ("revenue_growth", "gross_profit_growth"):
            needs, data_from = coverage.start_prev_12m, coverage.first_date
        elif coverage is not None and c == "trend":
            needs = trend_window(
                coverage.as_of, quarters=trend.quarters, min_quarters=trend.min_quarters
            )[0]
            data_from = coverage.first_date
        rows.append(
            {
                "criterion": c,
                "family": family_of.get(c, "other"),
                "stated_weight": stated[c],
                "weight_used": stated[c] / used_total if use[c] and used_total else 0.0,
                "available": use[c],
                "reason": (
                    ""
                    if use[c]
                    else "no_variation"
                    if has_data[c]
                    else _reason_for(table, c, coverage, trend)
                ),
                "assumed": assumed and c in ("gross_profit_12m", "gross_profit_growth"),
                "needs_from": needs,
                "data_from": data_from if data_from is not None else pd.NaT,
            }
        )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["needs_from"] = pd.to_datetime(out["needs_from"])
    out["data_from"] = pd.to_datetime(out["data_from"])
    out["_f"] = out["family"].map(order).fillna(len(order))
    out = out.sort_values(
        ["_f", "stated_weight", "criterion"], ascending=[True, False, True], kind="stable"
    )
    return out.drop(columns="_f").reset_index(drop=True)


def _check_robustness(
    draws: int, method: str, concentration: float, spread: float, normalisations: Sequence[str]
) -> None:
    if int(draws) < 1:
        raise ValuationInputError(f"draws must be >= 1, got {draws}")
    if method not in ROBUSTNESS_METHODS:
        raise ValuationInputError(f"method must be one of {ROBUSTNESS_METHODS}, got {method!r}")
    if not (np.isfinite(concentration) and concentration > 0):
        raise ValuationInputError(f"concentration must be > 0, got {concentration}")
    if not 0 <= spread < 1:
        raise ValuationInputError(f"spread must lie in [0, 1), got {spread}")
    bad = [n for n in normalisations if n not in NORMALISATIONS]
    if bad or not len(normalisations):
        raise ValuationInputError(
            f"normalisations must be a non-empty selection of {NORMALISATIONS}, got "
            f"{tuple(normalisations)}"
        )


def _weight_matrix(
    w: np.ndarray,
    draws: int,
    rng: np.random.Generator,
    *,
    method: str,
    concentration: float,
    spread: float,
) -> np.ndarray:
    """Drawn weight vectors (criteria x draws), each column summing to 1."""
    if method == "smaa":
        wm = rng.dirichlet(concentration * w, size=int(draws)).T
    else:
        wm = w[:, None] * rng.uniform(1.0 - spread, 1.0 + spread, size=(len(w), int(draws)))
    return wm / wm.sum(axis=0, keepdims=True)


def draw_weights(
    weights: Mapping[str, float] | None = None,
    *,
    draws: int = 500,
    method: Literal["smaa", "scale"] = "smaa",
    concentration: float = 20.0,
    spread: float = 0.3,
    seed: int = 0,
) -> pd.DataFrame:
    """Weight vectors drawn around the stated weights (the draws of :func:`weight_robustness`).

    ``smaa``
        ``w' ~ Dirichlet(concentration * w)`` over the positively weighted
        criteria (``w`` normalised to sum 1): ``E[w'_c] = w_c`` and
        ``Var(w'_c) = w_c (1 - w_c) / (concentration + 1)``
        (:func:`dirichlet_sd`); the weight-space sampling of SMAA, centred on
        the stated preferences instead of uniform over the simplex [1]_.
    ``scale``
        ``w'_c`` proportional to ``w_c * U(1 - spread, 1 + spread)``.

    Parameters
    ----------
    weights : mapping, optional
        Criterion -> non-negative weight (default :class:`ValuationSettings` weights).
    draws : int, default 500
    method : {"smaa", "scale"}, default "smaa"
    concentration : float, default 20
        ``smaa`` only; larger keeps the draws closer to ``w``.
    spread : float, default 0.3
        ``scale`` only, in [0, 1).
    seed : int, default 0

    Returns
    -------
    pandas.DataFrame
        One row per draw, one column per positively weighted criterion;
        every row sums to 1.

    Raises
    ------
    ValuationInputError
        Bad weights or settings.

    References
    ----------
    .. [1] Lahdelma, R., Hokkanen, J. & Salminen, P. (1998). SMAA - Stochastic
       multiobjective acceptability analysis. European Journal of Operational
       Research 106(1), 137-143.
    """
    _check_robustness(draws, method, concentration, spread, NORMALISATIONS)
    try:
        stated = _validated_weights(weights if weights is not None else _DEFAULT_WEIGHTS, None)
    except ValueError as err:
        raise ValuationInputError(str(err)) from None
    names = [c for c, v in stated.items() if v > 0]
    w = np.array([stated[c] for c in names])
    wm = _weight_matrix(
        w / w.sum(),
        draws,
        np.random.default_rng(seed),
        method=method,
        concentration=concentration,
        spread=spread,
    )
    return pd.DataFrame(wm.T, columns=names)


def dirichlet_sd(weight: float, concentration: float = 20.0) -> float:
    """Standard deviation of a drawn weight: ``sqrt(w (1 - w) / (concentration + 1))``.

    The marginal of ``Dirichlet(concentration * w)`` for a weight ``w`` is
    ``Beta(concentration * w, concentration * (1 - w))``; e.g. a weight of
    0.25 with concentration 20 has a standard deviation of 0.094.
    """
    return float(np.sqrt(weight * (1.0 - weight) / (concentration + 1.0)))


def _draw_scores(
    table: pd.DataFrame,
    stated: dict[str, float],
    wm: np.ndarray,
    norm_of_draw: np.ndarray,
    invert: Sequence[str],
) -> np.ndarray:
    """Available-case scores (accounts x draws) with each draw's weights and normalisation.

    ``wm`` has one row per criterion of ``stated`` (all positive). The
    normalised criteria are computed once per normalisation and the scores
    of all its draws are one matrix product (the denominator renormalises the
    weights over the criteria each account has, as in :func:`attractiveness_score`).
    """
    names = list(stated)
    inv = [c for c in invert if c in stated]
    out = np.zeros((len(table), wm.shape[1]))
    for norm in pd.unique(norm_of_draw):
        cols = norm_of_draw == norm
        used, _, m, _ = _used_weights(table, stated, norm, inv)
        w = wm[np.ix_([names.index(c) for c in used], np.flatnonzero(cols))]
        known = (~np.isnan(m)).astype("float64")
        with np.errstate(all="ignore"):
            den = known @ w
            out[:, cols] = np.where(den > 0, 100.0 * (np.nan_to_num(m, nan=0.0) @ w) / den, 0.0)
    return out


def _draw_ranks(scores: np.ndarray, id_pos: np.ndarray) -> np.ndarray:
    """Rank per column (1 = best), ties by ``account_id`` (``id_pos``: position in id order)."""
    key = np.round(scores, _TIE_DECIMALS)
    order = np.lexsort((np.broadcast_to(id_pos[:, None], scores.shape), -key), axis=0)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, len(id_pos) + 1)[:, None], axis=0)
    return ranks


def _on_base_scale(
    table: pd.DataFrame,
    stated: dict[str, float],
    wm: np.ndarray,
    norm_of_draw: np.ndarray,
    normalisation: Normalisation,
    invert: Sequence[str],
    id_pos: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and ranks of every draw, scores on the scale of the base normalisation.

    A draw with another normalisation keeps its ranks, and the account at
    rank ``r`` gets the ``r``-th best score of the same weights under the
    base normalisation: the normalisation changes the order, not the scale
    the tier thresholds read.
    """
    scores = _draw_scores(table, stated, wm, norm_of_draw, invert)
    ranks = _draw_ranks(scores, id_pos)
    moved = norm_of_draw != normalisation
    if moved.any():
        ref = _draw_scores(
            table, stated, wm[:, moved], np.full(int(moved.sum()), normalisation), invert
        )
        scores[:, moved] = np.take_along_axis(-np.sort(-ref, axis=0), ranks[:, moved] - 1, 0)
    return scores, ranks


def _drawn_tiers(
    table: pd.DataFrame,
    tier_fn: Callable[[pd.DataFrame], pd.Series | np.ndarray],
    columns: dict[str, np.ndarray],
    base: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Base tiers, share of draws in the base tier, and share of draws in each tier."""
    scored = table.copy()
    n = len(table)

    def tiers_for(values: dict[str, np.ndarray]) -> np.ndarray:
        for col, v in values.items():
            scored[col] = v
        t = np.asarray(tier_fn(scored), dtype=object)
        if t.shape != (n,):
            raise ValuationInputError(
                f"tier_fn must return one tier per account ({n}), got shape {t.shape}"
            )
        return t

    base_tier = tiers_for(base)
    draws = next(iter(columns.values())).shape[1]
    same = np.zeros(n)
    counts: dict[str, np.ndarray] = {lab: np.zeros(n) for lab in pd.unique(base_tier)}
    for d in range(draws):
        t = tiers_for({col: v[:, d] for col, v in columns.items()})
        same += t == base_tier
        for lab in pd.unique(t):
            counts.setdefault(lab, np.zeros(n))
            counts[lab] += t == lab
    return base_tier, same / draws, {lab: c / draws for lab, c in counts.items()}


def weight_robustness(
    table: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    tier_fn: Callable[[pd.DataFrame], pd.Series | np.ndarray] | None = None,
    *,
    draws: int = 500,
    method: Literal["smaa", "scale"] = "smaa",
    concentration: float = 20.0,
    normalisations: Sequence[Normalisation] | None = None,
    spread: float = 0.3,
    seed: int = 0,
    normalisation: Normalisation = "rank",
    invert: Sequence[str] = (),
    bands: Sequence[int] = (1, 10),
    attractiveness: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """How much do an account's rank and tier depend on the weights and the normalisation?

    A stochastic multicriteria acceptability analysis (SMAA, [1]_): the
    weights are uncertain, so draw them, re-score the book and count how
    often each account holds each rank and each tier.

    ``method="smaa"`` (default)
        Each draw takes weights from ``Dirichlet(concentration * w)``
        (:func:`draw_weights`; mean ``w``, a 25 % weight has a standard
        deviation of 9.4 points at concentration 20) and a normalisation
        drawn with equal probability from ``normalisations`` (default: the
        three of :data:`NORMALISATIONS`).
    ``method="scale"``
        The older check: each weight times ``U(1 - spread, 1 + spread)``,
        normalisation fixed. It moves the weights far less and so overstates
        stability.

    The weights are drawn for every positively weighted criterion; criteria
    without data drop out of each draw's score as in
    :func:`attractiveness_score` (scores are the weighted mean of an
    account's known normalised criteria). The scores of all draws with one
    normalisation are one matrix product (normalised criteria @ weight
    matrix); ranks follow per draw (1 = best, ties by ``account_id``).

    With ``tier_fn`` the tiers are recomputed in every draw from a copy of
    ``table`` with the draw's ``score`` and ``rank``; when ``table`` has an
    ``attractiveness`` column (the customer-side score the tier thresholds
    read, :func:`customer_attractiveness`) it is recomputed in every draw
    from attractiveness weights drawn the same way around the stated ones
    (``attractiveness``), with the draw's normalisation. Tier thresholds are set on
    the scale of the base ``normalisation`` (with ``minmax`` a few giant
    accounts compress every other score), so in a draw with another
    normalisation the account at rank ``r`` gets the ``r``-th best score of
    the same weights under the base normalisation: the normalisation changes
    the order of the accounts, not the scale the thresholds read.
    ``score_p10`` and ``score_p90`` are on that scale too.

    Parameters
    ----------
    table : pandas.DataFrame
        As for :func:`attractiveness_score`.
    weights : mapping, optional
        Stated weights (default :class:`ValuationSettings` weights).
    tier_fn : callable, optional
        ``tier_fn(scored) -> tiers``, one tier label per row of ``scored``
        (e.g. ``lambda s: assign_tiers(s, settings, reasons=False)["tier"]``).
    draws : int, default 500
    method : {"smaa", "scale"}, default "smaa"
    concentration : float, default 20
        Dirichlet concentration (``smaa``).
    normalisations : sequence of str, optional
        Normalisations drawn per draw (``smaa``; default all three). ``scale``
        always uses ``normalisation``.
    spread : float, default 0.3
        Factor range (``scale``), in [0, 1).
    seed : int, default 0
    normalisation, invert
        The base normalisation and the inverted criteria, as for
        :func:`attractiveness_score`.
    bands : sequence of int, default (1, 10)
        Rank bands ``k`` of the rank acceptability columns ``p_top<k>``.
    attractiveness : mapping, optional
        Stated attractiveness weights (default
        :attr:`ValuationSettings.attractiveness_weights`), drawn around when
        ``table`` has an ``attractiveness`` column.

    Returns
    -------
    pandas.DataFrame
        One row per account (order of ``table``): ``account_id``,
        ``base_score``, ``base_rank``, ``score_p10``, ``score_p90``,
        ``rank_p10``, ``rank_p50``, ``rank_p90`` (rank percentiles over the
        draws, 1 = best) and ``p_top<k>`` for each band: the share of draws
        in which the account ranks ``k`` or better (the cumulative rank
        acceptability ``sum_{r <= k} b^r`` of SMAA-2 [2]_; the rank
        acceptability of rank ``r`` is ``p_top<r> - p_top<r-1>``). With
        ``tier_fn`` also ``base_tier``, ``tier_stability`` (share of draws in
        the base tier), ``modal_tier`` (most frequent tier) and ``p_<tier>``
        for each tier seen (tier acceptability: share of draws in that tier;
        they sum to 1).

    Raises
    ------
    ValuationInputError
        Bad weights or settings, a band below 1, or a ``tier_fn`` that does not
        return one tier per account.

    References
    ----------
    .. [1] Lahdelma, R., Hokkanen, J. & Salminen, P. (1998). SMAA - Stochastic
       multiobjective acceptability analysis. European Journal of Operational
       Research 106(1), 137-143.
    .. [2] Lahdelma, R. & Salminen, P. (2001). SMAA-2: Stochastic multicriteria
       acceptability analysis for group decision making. Operations Research
       49(3), 444-454.
    """
    _require(table, "table", [_ACCOUNT_ID])
    _unique_accounts(table, "table")
    norms = tuple(NORMALISATIONS if normalisations is None else normalisations)
    _check_robustness(draws, method, concentration, spread, norms)
    if any(int(k) < 1 for k in bands):
        raise ValuationInputError(f"bands must be ranks >= 1, got {tuple(bands)}")
    _, base_w, m, stated = _used_weights(table, weights, normalisation, invert)
    base_score = _available_case_scores(m, base_w)[0].sum(axis=1)
    positive = {c: v for c, v in stated.items() if v > 0}
    rng = np.random.default_rng(seed)
    w = np.array(list(positive.values()))
    wm = _weight_matrix(
        w / w.sum(), draws, rng, method=method, concentration=concentration, spread=spread
    )
    norm_of_draw = (
        rng.choice(np.array(norms, dtype=object), size=int(draws))
        if method == "smaa"
        else np.full(int(draws), normalisation, dtype=object)
    )
    ids = table[_ACCOUNT_ID].astype(str).to_numpy()
    id_pos = np.empty(len(ids), dtype="int64")
    id_pos[np.argsort(ids, kind="stable")] = np.arange(len(ids))
    scores, ranks = _on_base_scale(table, positive, wm, norm_of_draw, normalisation, invert, id_pos)

    out = pd.DataFrame(
        {
            "account_id": table[_ACCOUNT_ID].to_numpy(),
            "base_score": base_score,
            "base_rank": _ordinal_rank(table, base_score),
            "score_p10": np.percentile(scores, 10, axis=1),
            "score_p90": np.percentile(scores, 90, axis=1),
            "rank_p10": np.percentile(ranks, 10, axis=1),
            "rank_p50": np.percentile(ranks, 50, axis=1),
            "rank_p90": np.percentile(ranks, 90, axis=1),
        }
    )
    for k in bands:
        out[f"p_top{int(k)}"] = (ranks <= int(k)).mean(axis=1)
    if tier_fn is None:
        return out
    base = {"score": base_score, "rank": out["base_rank"].to_numpy()}
    columns = {"score": scores, "rank": ranks}
    if "attractiveness" in table.columns:
        side = attractiveness_weights(table, attractiveness, fallback=weights)
        side = {c: v for c, v in side.items() if v > 0}
        sw = np.array(list(side.values()))
        side_wm = _weight_matrix(
            sw / sw.sum(), draws, rng, method=method, concentration=concentration, spread=spread
        )
        base["attractiveness"] = customer_attractiveness(
            table, attractiveness, normalisation=normalisation, invert=invert, fallback=weights
        ).to_numpy()
        columns["attractiveness"] = _on_base_scale(
            table, side, side_wm, norm_of_draw, normalisation, invert, id_pos
        )[0]
    base_tier, stability, shares = _drawn_tiers(table, tier_fn, columns, base)
    out["base_tier"] = base_tier
    out["tier_stability"] = stability
    names = list(shares)
    out["modal_tier"] = np.asarray(names, dtype=object)[
        np.column_stack([shares[n] for n in names]).argmax(axis=1)
    ]
    for lab in names:
        out[f"p_{lab}"] = shares[lab]
    return out


def tier_stability_summary(robust: pd.DataFrame, *, threshold: float = 0.9) -> pd.DataFrame:
    """How many accounts of each base tier keep their tier in at least ``threshold`` of the draws.

    Parameters
    ----------
    robust : pandas.DataFrame
        Output of :func:`weight_robustness` with a ``tier_fn`` (``base_tier``,
        ``tier_stability``).
    threshold : float, default 0.9
        Share of draws, in (0, 1].

    Returns
    -------
    pandas.DataFrame
        ``tier``, ``n`` (accounts in the base tier), ``n_stable`` (with
        ``tier_stability >= threshold``) and ``share_stable`` (``n_stable /
        n``), one row per base tier in order of first appearance.

    Raises
    ------
    ValuationInputError
        No tier columns or a threshold outside (0, 1].
    """
    _require(robust, "robust", ["base_tier", "tier_stability"])
    if not 0 < threshold <= 1:
        raise ValuationInputError(f"threshold must lie in (0, 1], got {threshold}")
    stable = robust["tier_stability"].to_numpy() >= threshold
    g = pd.DataFrame({"tier": robust["base_tier"].to_numpy(), "stable": stable}).groupby(
        "tier", sort=False
    )["stable"]
    out = pd.DataFrame({"n": g.size(), "n_stable": g.sum()}).reset_index()
    out["share_stable"] = out["n_stable"] / out["n"]
    return out


__all__ = [
    "CRITERIA",
    "CUSTOMER_SIDE_CRITERIA",
    "MISSING_AS_ZERO",
    "NEUTRAL",
    "NORMALISATIONS",
    "QUANTITATIVE_CRITERIA",
    "RobustnessSettings",
    "SizeBandSettings",
    "TrendSettings",
    "ValuationInputError",
    "ValuationSettings",
    "SIZE_STAND_IN",
    "WhitespaceSettings",
    "attractiveness_score",
    "attractiveness_weights",
    "current_value",
    "customer_attractiveness",
    "expected_expansion",
    "monthly_from_transactions",
    "normalise",
    "potential_value",
    "qualitative_value",
    "size_bands",
    "trend_from_monthly",
    "valuation_table",
    "weight_robustness",
    "whitespace_matrix",
    "whitespace_pivot",
]


# --------------------------------------------------------------------------- report summaries

CRITERION_GROUPS: dict[str, tuple[str, ...]] = {
    "current": (
        "revenue_12m",
        "gross_profit_12m",
        "margin_12m",
        "revenue_growth",
        "gross_profit_growth",
        "trend",
    ),
    "potential": (
        "wallet_estimate",
        "share_of_wallet",
        "headroom",
        "whitespace",
        "expected_expansion",
    ),
    "qualitative": QUALITATIVE_CRITERIA,
}
"""The three families of criteria of the seed: current, potential and qualitative value."""


def contribution_by_group(
    scored: pd.DataFrame, groups: Mapping[str, Sequence[str]] | None = None
) -> pd.DataFrame:
    """Score contributions summed per family of criteria (current, potential, qualitative).

    Parameters
    ----------
    scored : pandas.DataFrame
        Output of :func:`attractiveness_score`: ``account_id`` and
        ``contrib_<criterion>`` columns.
    groups : mapping, optional
        Family -> criteria (default :data:`CRITERION_GROUPS`). Contribution
        columns of criteria in no family are summed into ``contrib_other``.

    Returns
    -------
    pandas.DataFrame
        ``account_id`` and one ``contrib_<family>`` column per family (in the
        order of ``groups``; ``contrib_other`` last, only when needed). The
        family columns sum to the ``score``.

    Raises
    ------
    ValuationInputError
        No ``account_id`` or no contribution column.
    """
    _require(scored, "scored", [_ACCOUNT_ID])
    groups = CRITERION_GROUPS if groups is None else groups
    contrib = [c for c in scored.columns if c.startswith("contrib_")]
    if not contrib:
        raise ValuationInputError(
            "scored has no contrib_<criterion> columns; score it with attractiveness_score first"
        )
    out = pd.DataFrame({"account_id": scored[_ACCOUNT_ID].to_numpy()})
    used: set[str] = set()
    for family, criteria in groups.items():
        cols = [f"contrib_{c}" for c in criteria if f"contrib_{c}" in scored.columns]
        used.update(cols)
        out[f"contrib_{family}"] = scored[cols].sum(axis=1).to_numpy() if cols else 0.0
    rest = [c for c in contrib if c not in used]
    if rest:
        out["contrib_other"] = scored[rest].sum(axis=1).to_numpy()
    return out


def criterion_weights(
    weights: Mapping[str, float] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """The scoring weights as a table: criterion, family and normalised weight.

    Parameters
    ----------
    weights : mapping, optional
        Criterion -> non-negative weight (default :class:`ValuationSettings` weights).
    groups : mapping, optional
        Family -> criteria (default :data:`CRITERION_GROUPS`); criteria in no
        family get family ``"other"``.

    Returns
    -------
    pandas.DataFrame
        ``criterion``, ``family``, ``weight`` (sums to 1) for every positively
        weighted criterion, by family (in the order of ``groups``) and
        descending weight.

    Raises
    ------
    ValuationInputError
        Negative, non-finite or all-zero weights.
    """
    try:
        w = _validated_weights(weights if weights is not None else _DEFAULT_WEIGHTS, known=None)
    except ValueError as err:
        raise ValuationInputError(str(err)) from None
    groups = CRITERION_GROUPS if groups is None else groups
    family_of = {c: f for f, cs in groups.items() for c in cs}
    order = {f: i for i, f in enumerate(groups)}
    out = pd.DataFrame(
        {
            "criterion": list(w),
            "family": [family_of.get(c, "other") for c in w],
            "weight": list(w.values()),
        }
    )
    out = out[out["weight"] > 0]
    out["_f"] = out["family"].map(order).fillna(len(order))
    out = out.sort_values(["_f", "weight", "criterion"], ascending=[True, False, True])
    return out.drop(columns="_f").reset_index(drop=True)


def effective_weights(
    table: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    *,
    normalisation: Normalisation = "rank",
    invert: Sequence[str] = (),
) -> pd.DataFrame:
    """Each criterion's share of the variance of the score, next to its stated weight.

    The effective weight of criterion ``c`` is its contribution's covariance
    with the score over the score's variance,

    ``e_c = Cov(contrib_c, score) / Var(score)``,

    which with complete data is ``w_c Cov(n_c, score) / Var(score)``; the
    ``e_c`` sum to 1 because ``score = sum_c contrib_c``. This is the
    classical effective weight of a component in a composite (Wang & Stanley
    1970 [1]_), i.e. the covariance (Euler) decomposition of the score
    variance. Two properties make it readable:

    * independent criteria: ``Cov(n_c, score) = w_c Var(n_c)``, hence
      ``e_c = w_c^2 Var(n_c) / sum_k w_k^2 Var(n_k)``; with equal variances
      (rank normalisation of untied criteria gives every criterion the same
      variance) ``e_c = w_c^2 / sum_k w_k^2``, which equals ``w_c`` when the
      weights are equal. A larger weight counts more than its share;
    * correlated criteria share their influence: two copies of one criterion
      at 0.25 each next to two independent criteria at 0.25 get ``e = 1/3``
      each (2/3 together, against a stated 1/2), because the score moves with
      their sum.

    Effective weights say how much each criterion drives the *differences*
    between accounts, so revenue and gross profit, which rank the accounts
    almost identically, weigh more together than their stated weights. Paruolo,
    Saisana & Saltelli (2013) [2]_ measure importance instead by the
    correlation ratio (first-order sensitivity index) ``Var(E[score | n_c]) /
    Var(score)``, which gives each of two correlated criteria the influence of
    both, so the indices do not add up; the decomposition here adds up to 1.

    Parameters
    ----------
    table : pandas.DataFrame
        As for :func:`attractiveness_score` (a scored table is re-scored).
    weights : mapping, optional
        Stated weights (default :class:`ValuationSettings` weights).
    normalisation, invert
        As for :func:`attractiveness_score`.

    Returns
    -------
    pandas.DataFrame
        One row per positively weighted criterion (order of ``weights``):
        ``criterion``, ``stated_weight`` (normalised to sum 1 over all
        stated criteria), ``weight_used`` (renormalised over the criteria
        with data, 0 for the others) and ``effective_weight`` (0 for criteria
        not used; NaN when every account has the same score).

    Raises
    ------
    ValuationInputError
        As for :func:`attractiveness_score`.

    References
    ----------
    .. [1] Wang, M. W. & Stanley, J. C. (1970). Differential weighting: a review
       of methods and empirical studies. Review of Educational Research 40(5),
       663-705.
    .. [2] Paruolo, P., Saisana, M. & Saltelli, A. (2013). Ratings and rankings:
       voodoo or science? Journal of the Royal Statistical Society A 176(3),
       609-634.
    """
    _require(table, "table", [_ACCOUNT_ID])
    base = table[[c for c in table.columns if not c.startswith("contrib_")]]
    criteria, w, m, stated = _used_weights(base, weights, normalisation, invert)
    contrib = _available_case_scores(m, w)[0]
    centred = contrib - contrib.mean(axis=0)
    score = centred.sum(axis=1)
    var = float(score @ score)
    eff = centred.T @ score / var if var > 0 else np.full(len(criteria), np.nan)
    used = dict(zip(criteria, w, strict=True))
    effective = dict(zip(criteria, eff, strict=True))
    rows = [c for c, v in stated.items() if v > 0]
    return pd.DataFrame(
        {
            "criterion": rows,
            "stated_weight": [stated[c] for c in rows],
            "weight_used": [float(used.get(c, 0.0)) for c in rows],
            "effective_weight": [float(effective.get(c, 0.0)) for c in rows],
        }
    )


def valuation_summary(scored: pd.DataFrame, *, top: int = 20) -> pd.DataFrame:
    """Headline numbers of the book: size, profit, potential and the weight of the top accounts.

    Parameters
    ----------
    scored : pandas.DataFrame
        Output of :func:`attractiveness_score` on a :func:`valuation_table`:
        ``account_id``, ``rank``, ``revenue_12m``, ``gross_profit_12m``; used
        when present ``wallet_estimate``, ``headroom``, ``whitespace``,
        ``expected_expansion``.
    top : int, default 20
        Number of best-ranked accounts in the ``top_*`` shares.

    Returns
    -------
    pandas.DataFrame
        One row: ``n_accounts``, ``n_active`` (revenue in the trailing 12
        months > 0), ``revenue_12m``, ``gross_profit_12m`` (sum over the
        accounts with a known gross profit; NaN when nobody's is known, e.g.
        without a cost column), ``margin_12m`` (GP / revenue of those
        accounts), ``gross_profit_assumed`` (the gross profit is revenue x an
        assumed margin), ``wallet_estimate`` (sum over accounts with an
        estimate; NaN when none has one), ``share_of_wallet`` (their revenue
        / their wallet), ``headroom``, ``whitespace``, ``expected_expansion``
        (sums; NaN when the column is absent or missing for every account:
        not available, not 0), ``n_top`` (``min(top, n_accounts)``),
        ``top_revenue_share`` and ``top_gp_share`` (share of the book's
        revenue and gross profit held by the ``n_top`` best-ranked accounts;
        NaN when the total is 0 or unknown).

    Raises
    ------
    ValuationInputError
        Missing columns or ``top < 1``.
    """
    _require(scored, "scored", [_ACCOUNT_ID, "rank", "revenue_12m", "gross_profit_12m"])
    if int(top) < 1:
        raise ValuationInputError(f"top must be >= 1, got {top}")
    rev = _numeric(scored["revenue_12m"], "revenue_12m").fillna(0.0)
    gp = _numeric(scored["gross_profit_12m"], "gross_profit_12m")
    gp_known = gp.notna()
    is_top = _numeric(scored["rank"], "rank") <= int(top)
    rev_total = float(rev.sum())
    gp_total = float(gp.sum()) if gp_known.any() else np.nan
    gp_rev = float(rev[gp_known].sum())

    def total(col: str) -> float:
        if col not in scored.columns:
            return np.nan
        return float(_numeric(scored[col], col).sum(min_count=1))

    wallet_total, sow = np.nan, np.nan
    if _WALLET in scored.columns:
        wallet = _numeric(scored[_WALLET], _WALLET)
        known = wallet.notna() & (wallet > 0)
        if known.any():
            wallet_total = float(wallet[known].sum())
            sow = float(rev[known].sum()) / wallet_total
    return pd.DataFrame(
        [
            {
                "n_accounts": len(scored),
                "n_active": int((rev > 0).sum()),
                "revenue_12m": rev_total,
                "gross_profit_12m": gp_total,
                "margin_12m": gp_total / gp_rev if gp_rev > 0 else np.nan,
                "gross_profit_assumed": _gp_assumed(scored),
                "wallet_estimate": wallet_total,
                "share_of_wallet": sow,
                "headroom": total("headroom"),
                "whitespace": total("whitespace"),
                "expected_expansion": total("expected_expansion"),
                "n_top": int(is_top.sum()),
                "top_revenue_share": float(rev[is_top].sum()) / rev_total if rev_total else np.nan,
                "top_gp_share": (
                    float(gp[is_top].sum()) / gp_total if gp_total and gp_known.any() else np.nan
                ),
            }
        ]
    )


_WHITESPACE_COLUMNS: dict[str, str] = {
    "account_id": "object",
    "product_line": "object",
    "industry": "object",
    "size_band": "object",
    "bought_12m": "bool",
    "peers": "int64",
    "peer_adoption": "float64",
    "peer_median_spend": "float64",
    "whitespace_value": "float64",
}


def account_whitespace(
    table: pd.DataFrame,
    transactions: pd.DataFrame | None,
    *,
    as_of,
    settings: ValuationSettings | None = None,
    spend_12m: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """:func:`whitespace_matrix` for the accounts of a valuation table, with the configured rules.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per account: ``account_id`` and, when present, ``industry``,
        ``wallet_estimate``, ``revenue_12m`` (e.g. :func:`valuation_table`).
    transactions : pandas.DataFrame or None
        Transaction lines (``account_id``, ``date``, ``product_line``, ``revenue``);
        ``None`` when ``spend_12m`` is given.
    as_of : date-like
    settings : ValuationSettings, optional
        Its ``whitespace`` and ``size_bands`` rules (defaults when omitted).
    spend_12m : pandas.DataFrame, optional
        12-month revenue per account and product line, instead of the lines
        (see :func:`whitespace_matrix`).

    Returns
    -------
    pandas.DataFrame
        The long table of :func:`whitespace_matrix`; the same values that
        :func:`potential_value` sums into ``whitespace``. Empty (with the
        same columns) when product lines are not available
        (:func:`product_lines_available`): the page then says so.
    """
    cfg = settings or ValuationSettings()
    _require(table, "table", [_ACCOUNT_ID])
    if not product_lines_available(table, transactions, spend_12m):
        return pd.DataFrame({c: pd.Series(dtype=d) for c, d in _WHITESPACE_COLUMNS.items()})
    ws = cfg.whitespace
    return whitespace_matrix(
        transactions,
        _peer_accounts(table, cfg.size_bands.column),
        as_of=as_of,
        min_peers=ws.min_peers,
        adoption_threshold=ws.adoption_threshold,
        size_bands=cfg.size_bands,
        scale_by_size=ws.scale_by_size,
        max_scale=ws.max_scale,
        spend_12m=spend_12m,
    )


__all__ += [
    "CRITERION_GROUPS",
    "ROBUSTNESS_METHODS",
    "UNAVAILABLE_REASONS",
    "account_whitespace",
    "contribution_by_group",
    "criteria_used",
    "criterion_weights",
    "dirichlet_sd",
    "draw_weights",
    "effective_weights",
    "product_lines_available",
    "tier_stability_summary",
    "trend_window",
    "valuation_summary",
]

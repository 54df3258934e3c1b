"""Scenario planning for the account book: Monte Carlo engine, scenarios and stress tests.

The guide's risk section asks for portfolio management against over-dependence
on a few accounts and for scenario planning for the loss of an account or a
price negotiation. This module computes:

* :func:`simulate_book` - vectorised, seeded, chunked Monte Carlo of the book's
  monthly revenue and gross profit over a 3-5 year horizon (accounts x months
  x draws), with optional :class:`Scenario` shocks;
* :func:`run_scenarios` / :func:`compare_scenarios` - named scenarios from the
  configuration side by side (P10/P50/P90, probability of missing a target,
  deltas against the base case);
* :func:`concentration` / :func:`concentration_trend` - top-1/5/10 shares of
  revenue and gross profit against thresholds, with the Herfindahl-Hirschman
  index (and its equivalent number of accounts) as context;
* :func:`account_loss_stress` - the gap left by losing a key account and what
  closes it;
* :func:`price_negotiation` - margin impact and break-even volume of a price
  cut, the walk-away comparison (accept the cut, or refuse it and risk the
  account: :func:`walk_away_break_even`), next to the customer's ROI of our
  offer (value-based counter).

The book
--------
One row per account with the columns ``account_id``, ``monthly_revenue``
(current run-rate, base currency), ``margin`` (gross margin, at most 1; NaN
for every account when the data have no cost and no margin is assumed:
gross profit is then unknown and reported as NaN, never as 0),
``churn_prob_month`` (0-1), ``growth_annual`` (> -1) and
``volatility_annual`` (>= 0), optionally ``name`` and ``tier``
(``"key"``, ``"growth"``, ``"standard"``). :func:`book_from_features` builds
it from the account feature table.

The model
---------
Months are numbered ``t = 1..T``. Account ``i`` has revenue in month ``t``

.. math::

    r_{it} = R_i \\, \\exp\\big((\\ln(1+g_i) - \\tfrac12\\beta_i^2)\\,t/12
             - \\tfrac12 s_i^2 v(t) + s_i B_i(t) + \\beta_i M(t)\\big)
             \\, \\mathbf 1[\\tau_i > t]

with ``s_i = sigma_i sqrt(1-w)`` (idiosyncratic) and ``beta_i = sigma_i sqrt(w)``
(loading on a market factor ``M`` shared by all accounts in a draw; ``w`` is
``market_factor_weight``, the share of growth variance that is common).
``M`` is a monthly Brownian path (time in years). ``B_i`` is a Brownian path
observed at knots every ``growth_knot_months`` months and linearly
interpolated between them (its conditional expectation given the knots);
``v(t) = Var B_i(t)``. The drift corrections make
``E[r_it] = R_i (1+g_i)^(t/12) P(tau_i > t)`` exactly. The churn month
``tau_i`` (first month without revenue) is geometric with monthly
probability ``p_i``: ``P(tau_i > t) = (1-p_i)^t``; it is drawn once per account
and draw by the inverse CDF ``ceil(ln U / ln(1-p))``.

With ``growth_knot_months=1`` this is in distribution exactly the per-month
model of :func:`simulate_book_reference` (a churn coin and a growth shock per
account-month). With the default 12-month knots the per-account idiosyncratic
path between knots is smoother: means are unchanged, the variance of the
idiosyncratic part of a 36-month total is 2.7 % lower than with monthly
shocks, and month-level idiosyncratic spread inside a year is understated;
book-level spread is dominated by the (monthly) market factor and churn.

Speed: per account and draw only one uniform (churn) and ``ceil(T/knot)``
normals (Box-Muller on float32 uniforms) are drawn. The log revenue of one
draw (months x accounts) is one matrix product of a small basis (knot
interpolation, drift, variance correction, market path) with per-account
features; after ``exp``, the accounts that churn within the horizon (moved
last) have their dead months zeroed on a contiguous slice, and the book
totals are one more product with the revenue / gross-profit weights. Blocks
stay cache-sized, so the accounts x months x draws cube is never held and the
work is not bound by memory traffic. Every draw has its own random stream
(``SeedSequence(seed, spawn_key=(draw,))``), so results do not depend on the
chunk size or the number of threads.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import optimize
from threadpoolctl import threadpool_limits

from kam_analysis import pricing
from kam_analysis.core.errors import InputError
from kam_analysis.pricing import tornado

TIERS = ("key", "growth", "standard")
"""Account tiers understood by tier-filtered shocks (see segmentation)."""

BOOK_COLUMNS = (
    "account_id",
    "monthly_revenue",
    "margin",
    "churn_prob_month",
    "growth_annual",
    "volatility_annual",
)
"""Required columns of the account book."""

QUANTILES = (0.10, 0.50, 0.90)

# The fallbacks, in one place: used only where the data cannot give the number
# (see :func:`scenario_spreads`); the scenario page says which were used.
FALLBACK_VOLATILITY = 0.15
"""Annual volatility of an account's revenue growth without a revenue history to estimate it."""
FALLBACK_MARKET_WEIGHT = 0.3
"""Share of growth variance common to all accounts when the book cannot estimate it."""
FALLBACK_CHURN_ANNUAL = 0.10
"""Annual churn probability of an account that the churn models give no rate for."""
CHURN_SHOCK_MONTHS = 3
"""Length of the periods of the shared churn shock (calendar quarters, as estimated)."""
_CACHE_ROWS = 8192  # account-draw rows of the revenue cube processed at once (~1 MB)


class BookError(InputError, ValueError):
    """The account book breaks a rule (missing column, value out of range, duplicate id)."""


class ScenarioError(InputError, ValueError):
    """A scenario cannot be applied to the book (unknown account, value out of range, ...)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------
# Book
# ---------------------------------------------------------------------------


def _examples(frame: pd.DataFrame, mask: np.ndarray, column: str, n: int = 3) -> str:
    rows = frame.loc[mask, ["account_id", column]].head(n)
    return ", ".join(f"{a!r}: {v!r}" for a, v in zip(rows["account_id"], rows[column], strict=True))


def validate_book(book: pd.DataFrame) -> pd.DataFrame:
    """Check an account book and return a clean copy.

    Parameters
    ----------
    book : pandas.DataFrame
        One row per account with :data:`BOOK_COLUMNS` (``name`` and ``tier``
        optional).

    Returns
    -------
    pandas.DataFrame
        A copy with ``account_id`` as string and numeric columns as float,
        index reset.

    Raises
    ------
    BookError
        Naming the column, the rule and example accounts. ``margin`` may be
        missing (NaN) only for every account at once: the gross margin of the
        book is unknown (see :func:`book_margin_known`).
    """
    if not isinstance(book, pd.DataFrame):
        raise BookError(f"book must be a pandas DataFrame, got {type(book).__name__}")
    missing = [c for c in BOOK_COLUMNS if c not in book.columns]
    if missing:
        raise BookError(
            f"book is missing column(s) {missing}; required: {list(BOOK_COLUMNS)} "
            "(see book_from_features)"
        )
    if len(book) == 0:
        raise BookError("book has no accounts")
    out = book.reset_index(drop=True).copy()
    out["account_id"] = out["account_id"].astype(str)
    dup = out["account_id"].duplicated(keep=False).to_numpy()
    if dup.any():
        raise BookError(
            f"account_id must be unique; duplicated: {sorted(set(out.loc[dup, 'account_id']))[:5]}"
        )
    rules: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
        "monthly_revenue": (lambda x: x >= 0, ">= 0"),
        "margin": (lambda x: x <= 1, "<= 1 (a fraction, not a percentage)"),
        "churn_prob_month": (lambda x: (x >= 0) & (x <= 1), "between 0 and 1"),
        "growth_annual": (lambda x: x > -1, "> -1 (a fraction per year)"),
        "volatility_annual": (lambda x: x >= 0, ">= 0"),
    }
    for column, (rule, text) in rules.items():
        values = pd.to_numeric(out[column], errors="coerce").to_numpy(dtype=float)
        if column == "margin" and np.isnan(values).all():
            out[column] = values  # gross margin unknown for the whole book
            continue
        bad = ~np.isfinite(values)
        bad[~bad] = ~rule(values[~bad])
        if bad.any():
            raise BookError(
                f"book column {column!r} must be a finite number {text}; "
                f"{int(bad.sum())} account(s) break it, e.g. {_examples(out, bad, column)}"
            )
        out[column] = values
    if "tier" in out.columns:
        tier = out["tier"]
        bad = (~tier.isin(TIERS) & tier.notna()).to_numpy()
        if bad.any():
            raise BookError(
                f"book column 'tier' must be one of {list(TIERS)}; e.g. {_examples(out, bad, 'tier')}"
            )
    return out


def book_from_features(
    features: pd.DataFrame,
    *,
    churn_prob_month: pd.Series | None = None,
    default_churn_annual: float = FALLBACK_CHURN_ANNUAL,
    default_volatility: float = FALLBACK_VOLATILITY,
    growth_shrinkage: float = 0.5,
    growth_bounds: tuple[float, float] = (-0.5, 1.0),
    assumed_gross_margin: float | None = None,
) -> pd.DataFrame:
    """Build the account book for :func:`simulate_book` from the account feature table.

    Parameters
    ----------
    features : pandas.DataFrame
        One row per account: ``account_id`` (column or index), ``revenue_12m``,
        ``gross_profit_12m`` and ``revenue_growth`` (year-on-year, a
        fraction); optional ``margin_12m``, ``name``, ``tier``.
    churn_prob_month : pandas.Series, optional
        Monthly churn probability per account (indexed by ``account_id``),
        e.g. from the LTV churn models. Accounts not in it, or all accounts
        when it is not given, get the fallback
        ``1 - (1 - default_churn_annual) ** (1/12)``.
    default_churn_annual : float, default :data:`FALLBACK_CHURN_ANNUAL`
        Fallback annual churn probability.
    default_volatility : float, default :data:`FALLBACK_VOLATILITY`
        Annual volatility of revenue growth used for every account
        (:func:`scenario_book` replaces it with each account's estimate).
    growth_shrinkage : float, default 0.5
        Weight of the account's own growth; the rest goes to the
        revenue-weighted book mean (shrinkage against one-year noise):
        ``g = k * revenue_growth + (1 - k) * mean``. Missing growth gets the mean.
    growth_bounds : (float, float), default (-0.5, 1.0)
        The shrunk growth is clipped to this range.
    assumed_gross_margin : float, optional
        Gross margin for every account when the features have no gross profit
        (no cost data); without it the book's margin is unknown (NaN).

    Returns
    -------
    pandas.DataFrame
        ``account_id``, ``name`` and ``tier`` (when present), ``monthly_revenue``
        (``revenue_12m / 12``), ``margin``, ``margin_source``,
        ``churn_prob_month``, ``growth_annual``, ``volatility_annual``.
        ``margin`` is the account's (``margin_12m`` or ``gross_profit_12m /
        revenue_12m``; ``margin_source`` ``"account"``), else the book's
        revenue-weighted margin (``"book"``: accounts without revenue or
        without a known gross profit); without any gross profit the assumed
        margin (``"assumed"``), else NaN for everyone (``"unknown"``).

    Raises
    ------
    BookError
        When a needed column is missing or an argument is out of range.
    """
    feats = features
    if "account_id" not in feats.columns:
        if feats.index.name == "account_id":
            feats = feats.reset_index()
        else:
            raise BookError("features need an 'account_id' column (or index)")
    missing = [c for c in ("revenue_12m", "gross_profit_12m", "revenue_growth") if c not in feats]
    if missing:
        raise BookError(f"features are missing column(s) {missing}")
    if not 0 <= default_churn_annual < 1:
        raise BookError(f"default_churn_annual must be in [0, 1), got {default_churn_annual}")
    if default_volatility < 0:
        raise BookError(f"default_volatility must be >= 0, got {default_volatility}")
    if not 0 <= growth_shrinkage <= 1:
        raise BookError(f"growth_shrinkage must be in [0, 1], got {growth_shrinkage}")
    lo, hi = growth_bounds
    if not -1 < lo <= hi:
        raise BookError(f"growth_bounds must satisfy -1 < low <= high, got {growth_bounds}")

    revenue = pd.to_numeric(feats["revenue_12m"], errors="coerce").fillna(0.0).to_numpy(float)
    margin, margin_source = _book_margins(feats, revenue, assumed_gross_margin)

    growth = pd.to_numeric(feats["revenue_growth"], errors="coerce").to_numpy(float)
    ok = np.isfinite(growth)
    weights = np.where(ok, np.maximum(revenue, 0), 0.0)
    mean = float(np.average(growth[ok], weights=weights[ok])) if weights.sum() > 0 else 0.0
    if not np.isfinite(mean):
        mean = 0.0
    shrunk = np.where(ok, growth_shrinkage * growth + (1 - growth_shrinkage) * mean, mean)
    growth_annual = np.clip(shrunk, lo, hi)

    fallback = 1 - (1 - default_churn_annual) ** (1 / 12)
    ids = feats["account_id"].astype(str)
    churn = np.full(len(feats), fallback)
    if churn_prob_month is not None:
        given = pd.Series(churn_prob_month, dtype=float)
        given.index = given.index.astype(str)
        mapped = ids.map(given).to_numpy(float)
        churn = np.where(np.isfinite(mapped), mapped, fallback)

    book = pd.DataFrame({"account_id": ids.to_numpy()})
    for optional in ("name", "tier"):
        if optional in feats:
            book[optional] = feats[optional].to_numpy()
    book["monthly_revenue"] = np.maximum(revenue, 0) / 12
    book["margin"] = np.minimum(margin, 1.0)
    book["margin_source"] = margin_source
    book["churn_prob_month"] = churn
    book["growth_annual"] = growth_annual
    book["volatility_annual"] = float(default_volatility)
    return validate_book(book)


MARGIN_SOURCES = ("account", "book", "assumed", "unknown")
"""Where :func:`book_from_features` took an account's gross margin from."""


def _book_margins(
    feats: pd.DataFrame, revenue: np.ndarray, assumed_gross_margin: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per account: gross margin and its source (see :func:`book_from_features`)."""
    n = len(feats)
    gp = pd.to_numeric(feats["gross_profit_12m"], errors="coerce").to_numpy(float)
    if "margin_12m" in feats:
        own = pd.to_numeric(feats["margin_12m"], errors="coerce").to_numpy(float)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            own = np.where(revenue > 0, gp / revenue, np.nan)
    known = np.isfinite(gp)
    book_rev = float(revenue[known].sum())
    assumed = np.zeros(n, dtype=bool)
    if "gross_profit_assumed" in feats:  # the features already applied an assumed margin
        assumed = feats["gross_profit_assumed"].fillna(False).astype(bool).to_numpy()
    if known.any() and book_rev > 0:
        book_margin = float(gp[known].sum() / book_rev)
        has_own = np.isfinite(own)
        margin = np.where(has_own, own, book_margin)
        source = np.where(assumed, "assumed", np.where(has_own, "account", "book"))
        return margin, source.astype(object)
    if known.any() and np.isfinite(own).any():  # gross profit known, no revenue to weigh it
        has_own = np.isfinite(own)
        fill = float(np.nanmedian(own))
        return np.where(has_own, own, fill), np.where(has_own, "account", "book").astype(object)
    if assumed_gross_margin is not None:
        m = float(assumed_gross_margin)
        if not (np.isfinite(m) and m <= 1):
            raise BookError(f"assumed_gross_margin must be a fraction <= 1, got {m}")
        return np.full(n, m), np.full(n, "assumed", dtype=object)
    return np.full(n, np.nan), np.full(n, "unknown", dtype=object)


def book_margin_known(book: pd.DataFrame) -> bool:
    """True when the book has gross margins (from costs or assumed), False when unknown.

    Parameters
    ----------
    book : pandas.DataFrame
        The account book (``margin`` column).

    Returns
    -------
    bool
        False when every ``margin`` is NaN: gross profit cannot be computed,
        and every gross-profit output of this module is NaN.
    """
    margin = pd.to_numeric(book["margin"], errors="coerce")
    return bool(margin.notna().any())


# ---------------------------------------------------------------------------
# Scenario specification
# ---------------------------------------------------------------------------


class LoseAccounts(_Model):
    """The named accounts leave: no revenue from ``month`` on."""

    kind: Literal["lose_accounts"] = "lose_accounts"
    account_ids: list[str]
    month: int = 1


class LoseTopK(_Model):
    """The ``k`` largest accounts (by current revenue or gross profit) leave from ``month``.

    With the book's gross margin unknown, ``by="gross_profit"`` ranks by revenue.
    """

    kind: Literal["lose_top_k"] = "lose_top_k"
    k: int
    month: int = 1
    by: Literal["revenue", "gross_profit"] = "revenue"


class PriceCut(_Model):
    """Price cut of ``pct`` percent from ``from_month`` for the given accounts or tier.

    Volume is unchanged and costs stay, so gross profit falls by the full
    revenue lost. Give ``account_ids`` or ``tier``, or neither for the whole book.
    """

    kind: Literal["price_cut"] = "price_cut"
    pct: float
    account_ids: list[str] | None = None
    tier: str | None = None
    from_month: int = 1


class ChurnMultiplier(_Model):
    """Monthly churn probability times ``factor`` (capped at 1), for a tier or the book."""

    kind: Literal["churn_multiplier"] = "churn_multiplier"
    factor: float
    tier: str | None = None


class GrowthShift(_Model):
    """Expected annual growth plus ``delta_annual`` (e.g. -0.05), for a tier or the book."""

    kind: Literal["growth_shift"] = "growth_shift"
    delta_annual: float
    tier: str | None = None


class NewLogos(_Model):
    """New accounts won (net of early losses): Poisson with ``per_year`` expected.

    Each ramps linearly to ``avg_monthly_revenue`` over ``ramp_months``
    (a logo won in month ``s`` earns ``min(1, (t-s+1)/ramp)`` of it in month
    ``t``) and then stays flat. ``avg_monthly_revenue`` defaults to the
    median current revenue of the accounts that have some (0 when none has),
    ``margin`` to the book's median margin (NaN when unknown).
    """

    kind: Literal["new_logos"] = "new_logos"
    per_year: float
    avg_monthly_revenue: float | None = None
    margin: float | None = None
    ramp_months: int = 6


Shock = Annotated[
    LoseAccounts | LoseTopK | PriceCut | ChurnMultiplier | GrowthShift | NewLogos,
    Field(discriminator="kind"),
]


class Scenario(_Model):
    """A named set of shocks applied to the book."""

    name: str = ""
    description: str = ""
    shocks: list[Shock] = Field(default_factory=list)


class ConcentrationThresholds(_Model):
    """Flags for over-dependence on few accounts: revenue shares of the top 1, 5 and 10.

    A share above its threshold is a breach (None: not tested). The defaults:

    * ``top1_share`` = 10 %: the level at which a single customer must be
      disclosed as a major customer (US GAAP, FASB ASC 280-10-50-42; IFRS 8,
      paragraph 34), and the usual "high customer concentration" line in
      due diligence;
    * ``top5_share`` = 30 % and ``top10_share`` = 50 %: practitioner rules of
      thumb put a top 5 above 25-30 % and a top 10 above 40-60 % at
      moderate-to-high risk; B2B books usually have a top customer at 5-15 %
      and a top 10 at 30-50 %, so the defaults flag the upper end of usual.

    The Herfindahl-Hirschman index (HHI) is not a test here, only context (see
    :func:`concentration`): its merger-guideline cut-offs (1,500 and 2,500)
    are for markets of a few firms and cannot fire on a book of customers (one
    customer at 35 % of revenue and many small ones give an HHI of about 1,225).
    """

    top1_share: float | None = Field(0.10, gt=0, le=1)
    top5_share: float | None = Field(0.30, gt=0, le=1)
    top10_share: float | None = Field(0.50, gt=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _no_hhi_threshold(cls, data: Any) -> Any:
        if isinstance(data, dict) and "hhi" in data:
            raise ValueError(
                "[scenarios.concentration] hhi is no longer a threshold: the HHI is shown as "
                "context only; set top1_share, top5_share and top10_share instead"
            )
        return data


def default_scenarios() -> dict[str, Scenario]:
    """The default scenario set: ``base``, ``downside``, ``upside``."""
    return {
        "base": Scenario(name="base", description="Current run-rate, churn and growth."),
        "downside": Scenario(
            name="downside",
            description="Largest account lost after a year, churn x1.5, growth -5 pts.",
            shocks=[
                LoseTopK(k=1, month=13),
                ChurnMultiplier(factor=1.5),
                GrowthShift(delta_annual=-0.05),
            ],
        ),
        "upside": Scenario(
            name="upside",
            description="Churn x0.75, growth +3 pts, 4 new logos a year of median size.",
            shocks=[
                ChurnMultiplier(factor=0.75),
                GrowthShift(delta_annual=0.03),
                NewLogos(per_year=4),
            ],
        ),
    }


class ScenarioSettings(_Model):
    """Scenario-planning settings (the ``[scenarios]`` section of ``kam.toml``).

    ``market_factor_weight`` (the share of each account's growth variance
    common to all accounts) and ``churn_shock_variance`` (variance of a
    quarterly shock on every account's churn hazard) are estimated from the
    data when left unset (:func:`scenario_spreads`); a value here overrides
    the estimate. ``target_revenue`` (total over the horizon) defaults to the
    flat run-rate, ``months x current monthly revenue``.
    """

    scenarios: dict[str, Scenario] = Field(default_factory=default_scenarios)
    base_scenario: str = "base"
    draws: int = Field(10_000, ge=1)
    months: int = Field(36, ge=1, le=120)
    seed: int = Field(0, ge=0)
    market_factor_weight: float | None = Field(
        None,
        ge=0,
        le=1,
        description=(
            "Share of each account's growth variance common to all accounts; unset: estimated "
            "from how the accounts' quarterly revenue moved together, else "
            f"{FALLBACK_MARKET_WEIGHT}."
        ),
    )
    churn_shock_variance: float | None = Field(
        None,
        ge=0,
        le=10,
        description=(
            "Variance of a quarterly shock shared by every account's churn hazard; unset: "
            "estimated from churn per quarter against the churn model, else 0 (independent)."
        ),
    )
    growth_knot_months: int = Field(12, ge=1)
    min_history_accounts: int = Field(
        30,
        ge=3,
        description="Accounts with consecutive quarters of revenue needed to estimate the "
        "volatilities and the market factor from the data (else the fallbacks).",
    )
    min_history_months: int = Field(
        24,
        ge=12,
        description="Months the longest run of quarters with revenue must span to estimate the "
        "volatilities and the market factor from the data (else the fallbacks).",
    )
    target_revenue: float | None = None
    concentration: ConcentrationThresholds = Field(default_factory=ConcentrationThresholds)
    loss_stress_top_k: int = Field(10, ge=1)

    @model_validator(mode="after")
    def _names_match_keys(self) -> ScenarioSettings:
        for key, scenario in self.scenarios.items():
            if not scenario.name:
                scenario.name = key
            elif scenario.name != key:
                raise ValueError(f"scenario {key!r} has a different name {scenario.name!r}")
        return self


# ---------------------------------------------------------------------------
# Scenario resolution
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NewLogoStream:
    """A resolved :class:`NewLogos` shock."""

    per_year: float
    monthly_revenue: float
    margin: float
    ramp_months: int


@dataclass(frozen=True)
class ResolvedScenario:
    """A scenario turned into per-account arrays aligned with the validated book.

    ``price_steps`` holds ``(month, delta)`` pairs: from ``month`` on the price
    factor of account ``i`` drops by ``delta[i]`` (price factors of several cuts
    multiply).
    """

    name: str
    churn_prob_month: np.ndarray
    growth_annual: np.ndarray
    loss_month: np.ndarray
    price_steps: tuple[tuple[int, np.ndarray], ...]
    new_logos: tuple[NewLogoStream, ...]

    def price_factor(self, months: int) -> np.ndarray:
        """Price factor per account and month, shape (accounts, months)."""
        factor = np.ones((self.churn_prob_month.size, months))
        t = np.arange(1, months + 1)
        for month, delta in self.price_steps:
            factor -= delta[:, None] * (t >= month)[None, :]
        return factor


def _tier_mask(book: pd.DataFrame, tier: str | None, where: str) -> np.ndarray:
    if tier is None:
        return np.ones(len(book), dtype=bool)
    if tier not in TIERS:
        raise ScenarioError(f"{where}: unknown tier {tier!r}; expected one of {list(TIERS)}")
    if "tier" not in book.columns:
        raise ScenarioError(f"{where}: tier {tier!r} given but the book has no 'tier' column")
    return (book["tier"] == tier).to_numpy()


def _check_month(value: int, months: int, where: str, label: str) -> None:
    if not 1 <= value <= months:
        raise ScenarioError(f"{where}: {label}={value} is outside the horizon 1..{months}")


def _account_mask(book: pd.DataFrame, ids: Sequence[str], where: str) -> np.ndarray:
    if len(ids) == 0:
        raise ScenarioError(f"{where}: account_ids is empty")
    known = book["account_id"]
    unknown = [a for a in ids if a not in set(known)]
    if unknown:
        raise ScenarioError(
            f"{where}: unknown account id(s) {unknown[:5]}; e.g. known ids {list(known.head(3))}"
        )
    return known.isin(list(ids)).to_numpy()


def resolve_scenario(
    scenario: Scenario | None, book: pd.DataFrame, *, months: int = 36
) -> ResolvedScenario:
    """Check a scenario against the book and horizon and turn it into arrays.

    Parameters
    ----------
    scenario : Scenario or None
        ``None`` is the base case (no shocks).
    book : pandas.DataFrame
        The account book (see :func:`validate_book`).
    months : int, default 36
        Horizon; shock months must lie in ``1..months``.

    Returns
    -------
    ResolvedScenario

    Raises
    ------
    ScenarioError
        Naming the scenario, the shock (position and kind) and the bad value:
        unknown account ids or tier, ``pct`` outside [0, 100), ``k`` < 1,
        months outside the horizon, negative factors or rates, growth shifted
        to <= -100 %.
    """
    book = validate_book(book)
    scenario = scenario or Scenario(name="base")
    churn = book["churn_prob_month"].to_numpy(float).copy()
    growth = book["growth_annual"].to_numpy(float).copy()
    loss = np.full(len(book), months + 1, dtype=np.int64)
    price = np.ones(len(book))
    cuts: list[tuple[int, np.ndarray]] = []
    logos: list[NewLogoStream] = []
    revenue = book["monthly_revenue"].to_numpy(float)
    for pos, shock in enumerate(scenario.shocks, start=1):
        where = f"scenario {scenario.name!r}, shock {pos} ({shock.kind})"
        if isinstance(shock, LoseAccounts):
            _check_month(shock.month, months, where, "month")
            mask = _account_mask(book, shock.account_ids, where)
            loss[mask] = np.minimum(loss[mask], shock.month)
        elif isinstance(shock, LoseTopK):
            if shock.k < 1 or shock.k > len(book):
                raise ScenarioError(f"{where}: k={shock.k} must be between 1 and {len(book)}")
            _check_month(shock.month, months, where, "month")
            by_gp = shock.by == "gross_profit" and book_margin_known(book)
            basis = revenue * book["margin"].to_numpy() if by_gp else revenue
            top = np.argsort(-basis, kind="stable")[: shock.k]
            loss[top] = np.minimum(loss[top], shock.month)
        elif isinstance(shock, PriceCut):
            if not 0 <= shock.pct < 100:
                raise ScenarioError(f"{where}: pct={shock.pct} must be in [0, 100)")
            _check_month(shock.from_month, months, where, "from_month")
            if shock.account_ids is not None and shock.tier is not None:
                raise ScenarioError(f"{where}: give account_ids or tier, not both")
            if shock.account_ids is not None:
                mask = _account_mask(book, shock.account_ids, where)
            else:
                mask = _tier_mask(book, shock.tier, where)
            new_price = np.where(mask, price * (1 - shock.pct / 100), price)
            cuts.append((shock.from_month, price - new_price))
            price = new_price
        elif isinstance(shock, ChurnMultiplier):
            if not (np.isfinite(shock.factor) and shock.factor >= 0):
                raise ScenarioError(f"{where}: factor={shock.factor} must be >= 0")
            mask = _tier_mask(book, shock.tier, where)
            churn[mask] = np.minimum(churn[mask] * shock.factor, 1.0)
        elif isinstance(shock, GrowthShift):
            mask = _tier_mask(book, shock.tier, where)
            growth[mask] += shock.delta_annual
            if (growth <= -1).any() or not np.isfinite(shock.delta_annual):
                raise ScenarioError(
                    f"{where}: delta_annual={shock.delta_annual} takes growth to <= -100 %"
                )
        elif isinstance(shock, NewLogos):
            if not (np.isfinite(shock.per_year) and shock.per_year >= 0):
                raise ScenarioError(f"{where}: per_year={shock.per_year} must be >= 0")
            if shock.ramp_months < 1:
                raise ScenarioError(f"{where}: ramp_months={shock.ramp_months} must be >= 1")
            active = revenue[revenue > 0]
            size = (
                (float(np.median(active)) if active.size else 0.0)
                if shock.avg_monthly_revenue is None
                else shock.avg_monthly_revenue
            )
            if not size >= 0:
                raise ScenarioError(f"{where}: avg_monthly_revenue={size} must be >= 0")
            book_margin = book["margin"].to_numpy(float)
            margin = (
                (float(np.median(book_margin)) if book_margin_known(book) else float("nan"))
                if shock.margin is None
                else float(shock.margin)
            )
            if margin > 1:
                raise ScenarioError(f"{where}: margin={margin} must be <= 1")
            logos.append(NewLogoStream(shock.per_year, size, margin, shock.ramp_months))
        else:  # pragma: no cover - the discriminated union admits nothing else
            raise ScenarioError(f"{where}: unknown shock kind")
    # Merge cuts that start in the same month (one reduction column per start month).
    merged: dict[int, np.ndarray] = {}
    for month, delta in cuts:
        merged[month] = merged.get(month, 0.0) + delta
    steps = tuple(sorted(merged.items()))
    return ResolvedScenario(scenario.name or "base", churn, growth, loss, steps, tuple(logos))


# ---------------------------------------------------------------------------
# Engine
# ---------------------------------------------------------------------------


@dataclass
class SimulationResult:
    """Monte Carlo distribution of the book's revenue and gross profit.

    Attributes
    ----------
    scenario : str
    revenue_paths, gross_profit_paths : numpy.ndarray
        Book totals per draw and month, shape (draws, months).
    total_revenue, total_gross_profit : numpy.ndarray
        Totals over the horizon per draw, shape (draws,).
    target : float or None
        Revenue target over the horizon.
    prob_miss_target : float or None
        Share of draws with ``total_revenue < target``; None without a
        positive target.
    account_expected : pandas.DataFrame
        Per account (closed form, no Monte Carlo noise): ``account_id``,
        ``expected_revenue``, ``expected_gross_profit`` (totals over the
        horizon), ``survival_at_horizon`` and ``share_of_expected_revenue``.
    settings : dict
        months, draws, seed, market_factor_weight, growth_knot_months,
        chunk_draws, threads, dtype.
    """

    scenario: str
    revenue_paths: np.ndarray
    gross_profit_paths: np.ndarray
    target: float | None
    account_expected: pd.DataFrame
    settings: dict[str, Any]
    total_revenue: np.ndarray = field(init=False)
    total_gross_profit: np.ndarray = field(init=False)
    prob_miss_target: float | None = field(init=False)

    def __post_init__(self) -> None:
        self.total_revenue = self.revenue_paths.sum(axis=1)
        self.total_gross_profit = self.gross_profit_paths.sum(axis=1)
        # a target of 0 (a book without current revenue) cannot be missed or met
        self.prob_miss_target = (
            None
            if self.target is None or not self.target > 0
            else float(np.mean(self.total_revenue < self.target))
        )

    @property
    def seed(self) -> int:
        """Seed of the run."""
        return int(self.settings["seed"])

    def monthly(self) -> pd.DataFrame:
        """Per-month book quantiles.

        Returns
        -------
        pandas.DataFrame
            Tidy: ``month`` (1..T), ``metric`` (``revenue`` / ``gross_profit``),
            ``mean``, ``p10``, ``p50``, ``p90``.
        """
        frames = []
        for metric, paths in (
            ("revenue", self.revenue_paths),
            ("gross_profit", self.gross_profit_paths),
        ):
            q = np.quantile(paths, QUANTILES, axis=0)
            frames.append(
                pd.DataFrame(
                    {
                        "month": np.arange(1, paths.shape[1] + 1),
                        "metric": metric,
                        "mean": paths.mean(axis=0),
                        "p10": q[0],
                        "p50": q[1],
                        "p90": q[2],
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> pd.DataFrame:
        """Distribution of the horizon totals.

        Returns
        -------
        pandas.DataFrame
            One row per ``metric`` (``total_revenue``, ``total_gross_profit``):
            ``mean``, ``std``, ``p10``, ``p50``, ``p90``; plus ``target`` and
            ``prob_miss_target`` (revenue row only, NaN otherwise).
        """
        rows = []
        for metric, values in (
            ("total_revenue", self.total_revenue),
            ("total_gross_profit", self.total_gross_profit),
        ):
            q = np.quantile(values, QUANTILES)
            rows.append(
                {
                    "scenario": self.scenario,
                    "metric": metric,
                    "mean": values.mean(),
                    "std": values.std(ddof=1) if values.size > 1 else 0.0,
                    "p10": q[0],
                    "p50": q[1],
                    "p90": q[2],
                }
            )
        out = pd.DataFrame(rows)
        out["target"] = [self.target, None]
        out["prob_miss_target"] = [self.prob_miss_target, None]
        return out.astype({"target": float, "prob_miss_target": float})


def _knot_basis(months: int, knot_months: int) -> np.ndarray:
    """Interpolation basis of a Brownian path (time in years) observed every ``knot_months``.

    Row ``k`` is ``sqrt(h_k/12) * clip((t - t_k)/h_k, 0, 1)`` so that
    ``B(t) = sum_k Z_k row_k(t)`` with iid standard normal ``Z_k`` equals the
    path at the knots and interpolates linearly between them.
    """
    t = np.arange(1, months + 1, dtype=float)
    starts = np.arange(0, months, knot_months)
    rows = []
    for start in starts:
        h = min(knot_months, months - start)
        rows.append(np.sqrt(h / 12) * np.clip((t - start) / h, 0, 1))
    return np.array(rows)


def _memory_chunk(
    n_accounts: int, months: int, n_features: int, itemsize: int, budget: float
) -> int:
    """Draws per chunk so that one worker's buffers fit ``budget`` bytes.

    Per draw a worker holds the churn uniforms (8 B), the Box-Muller uniforms
    (4 B each), the features (``n_features x itemsize``) and the churn month
    (2 B) per account, plus per-month totals; the revenue cube itself is one
    cache-sized block whatever the chunk. Capped at 256 draws so that threads
    share the work evenly.
    """
    per_draw = n_accounts * (8 + 4 * n_features + n_features * itemsize + 2) + months * 8 * 6
    fixed = _CACHE_ROWS * months * (itemsize + 1) * 2
    return int(min(256, max(1, (budget - fixed) // per_draw)))


def _draw_rng(seed: int, draw: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(draw,)))


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[bool]:
    """Limit numpy's BLAS to one thread while our own worker threads run.

    Concurrent calls into a multi-threaded OpenBLAS from several Python threads
    oversubscribe the cores (measured here: 5x slower).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        yield True


def _logo_kernel(months: int, ramp: int) -> np.ndarray:
    """(T, T) matrix: column t = revenue factor in month t of a logo won in month s (row)."""
    s = np.arange(1, months + 1)[:, None]
    t = np.arange(1, months + 1)[None, :]
    return np.where(t >= s, np.minimum(1.0, (t - s + 1) / ramp), 0.0)


def expected_account_paths(
    book: pd.DataFrame,
    resolved: ResolvedScenario,
    months: int,
    *,
    churn_shock_variance: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed-form expected revenue and gross profit per account and month.

    ``E[r_it] = R_i (1+g_i)^(t/12) S_i(t) 1[t < loss_i] f_i(t)`` with price
    factor ``f_i(t)``; gross profit uses ``margin_i - (1 - f_i(t))`` per unit of
    pre-cut revenue (a price cut comes straight off the gross profit).
    ``S_i(t) = (1-p_i)^t``; with a shared churn shock of variance ``theta``
    per period, ``S_i(t) = prod_k (1 + theta lambda_i m_k(t))^(-1/theta)``
    (``lambda_i = -ln(1-p_i)``, ``m_k(t)`` the months of period ``k`` up to
    ``t``: the gamma frailty's Laplace transform).

    Returns
    -------
    revenue, gross_profit, survival : numpy.ndarray
        Shape (accounts, months) each.
    """
    t = np.arange(1, months + 1)[None, :]
    r0 = book["monthly_revenue"].to_numpy(float)[:, None]
    margin = book["margin"].to_numpy(float)[:, None]
    p = resolved.churn_prob_month[:, None]
    g = resolved.growth_annual[:, None]
    if churn_shock_variance > 0:
        theta = churn_shock_variance
        with np.errstate(divide="ignore"):
            lam = -np.log1p(-np.minimum(p, 1.0))  # inf when p = 1
        tt = np.arange(1, months + 1)
        starts = np.arange(0, months, CHURN_SHOCK_MONTHS)
        m_k = np.clip(tt[:, None] - starts[None, :], 0, CHURN_SHOCK_MONTHS)  # (T, periods)
        with np.errstate(invalid="ignore"):
            log_s = -np.log1p(theta * lam[:, :, None] * m_k[None, :, :]).sum(axis=2) / theta
        survival = np.exp(np.nan_to_num(log_s, nan=-np.inf))
    else:
        survival = (1 - p) ** t
    survival = survival * (t < resolved.loss_month[:, None])
    volume = r0 * (1 + g) ** (t / 12) * survival
    price = resolved.price_factor(months)
    return volume * price, volume * (margin - (1 - price)), survival


def simulate_book(
    book: pd.DataFrame,
    *,
    months: int = 36,
    draws: int = 10_000,
    seed: int = 0,
    market_factor_weight: float = FALLBACK_MARKET_WEIGHT,
    churn_shock_variance: float = 0.0,
    scenario: Scenario | None = None,
    chunk_draws: int | None = None,
    target: float | None = None,
    growth_knot_months: int = 12,
    memory_budget_mb: float = 128.0,
    threads: int | None = None,
    dtype: type[np.floating] = np.float32,
) -> SimulationResult:
    """Monte Carlo of the book's monthly revenue and gross profit.

    See the module docstring for the model. Work is done in chunks of draws
    (never the whole accounts x months x draws cube), on ``threads`` threads.

    Parameters
    ----------
    book : pandas.DataFrame
        The account book (see :func:`validate_book`).
    months : int, default 36
        Horizon in months.
    draws : int, default 10000
        Monte Carlo draws.
    seed : int, default 0
        Seed; draw ``d`` uses ``SeedSequence(seed, spawn_key=(d,))``.
    market_factor_weight : float, default :data:`FALLBACK_MARKET_WEIGHT`
        Share (0-1) of each account's growth variance driven by a market
        factor common to all accounts (0: none).
    churn_shock_variance : float, default 0.0
        Variance ``theta`` of a gamma frailty (mean 1) that multiplies every
        account's churn hazard in each period of :data:`CHURN_SHOCK_MONTHS`
        months of a draw, so that bad quarters hit many accounts at once
        (0: accounts churn independently). Each account's marginal churn
        probability is slightly lower than ``p`` (Jensen), its expectation
        exact in :func:`expected_account_paths`.
    scenario : Scenario, optional
        Shocks to apply (see :func:`resolve_scenario`); base case when None.
    chunk_draws : int, optional
        Draws per chunk; by default as many as fit ``memory_budget_mb``
        (split across threads). Results do not depend on it.
    target : float, optional
        Revenue target over the horizon for ``prob_miss_target``.
    growth_knot_months : int, default 12
        Spacing of the idiosyncratic growth knots; 1 gives monthly shocks.
    memory_budget_mb : float, default 128
        Working memory for the chunks.
    threads : int, optional
        Worker threads (default: ``min(2, os.cpu_count())``). numpy's bundled
        OpenBLAS is set to one thread for the duration (and restored); when it
        cannot be controlled the run uses one thread.
    dtype : numpy float type, default numpy.float32
        Precision of the cube arithmetic (float64 for exact checks); totals
        are accumulated in float64.

    Returns
    -------
    SimulationResult
        Gross-profit paths are NaN when the book's margin is unknown
        (:func:`book_margin_known`).

    Raises
    ------
    BookError, ScenarioError, ValueError
        On a bad book, scenario or argument.
    """
    book = validate_book(book)
    if months < 1 or draws < 1:
        raise ValueError(f"months and draws must be >= 1, got months={months}, draws={draws}")
    if not 0 <= market_factor_weight <= 1:
        raise ValueError(f"market_factor_weight must be in [0, 1], got {market_factor_weight}")
    if not 0 <= churn_shock_variance < np.inf:
        raise ValueError(f"churn_shock_variance must be >= 0, got {churn_shock_variance}")
    if growth_knot_months < 1:
        raise ValueError(f"growth_knot_months must be >= 1, got {growth_knot_months}")
    if chunk_draws is not None and chunk_draws < 1:
        raise ValueError(f"chunk_draws must be >= 1, got {chunk_draws}")
    resolved = resolve_scenario(scenario, book, months=months)
    dtype = np.dtype(dtype)
    threads = threads or min(2, os.cpu_count() or 1)

    n = len(book)
    revenue0 = book["monthly_revenue"].to_numpy(float)
    margin_known = book_margin_known(book)
    margin = book["margin"].to_numpy(float) if margin_known else np.zeros(n)
    sigma = book["volatility_annual"].to_numpy(float)
    w = market_factor_weight
    s_idio = sigma * math.sqrt(1 - w)
    beta = sigma * math.sqrt(w)
    with np.errstate(divide="ignore"):
        log_keep = np.log1p(-resolved.churn_prob_month)  # -inf when p = 1
    loss = resolved.loss_month

    shared_churn = churn_shock_variance > 0
    n_periods = -(-months // CHURN_SHOCK_MONTHS)

    basis_idio = _knot_basis(months, growth_knot_months)
    k = basis_idio.shape[0]
    h = (k + 1) // 2  # Box-Muller pairs: 2h idiosyncratic columns (one unused when k is odd)
    nf = 2 * h + 3
    t_years = np.arange(1, months + 1) / 12
    # Feature columns: [idio normals x s_i (2h) | drift | idio variance | market loading]
    static = np.zeros((n, 3))
    static[:, 0] = np.log1p(resolved.growth_annual) - 0.5 * beta**2
    static[:, 1] = -0.5 * s_idio**2
    static[:, 2] = beta
    basis = np.zeros((nf, months))
    basis[:k] = basis_idio
    basis[2 * h] = t_years
    basis[2 * h + 1] = (basis_idio**2).sum(axis=0)
    static = static.astype(dtype)
    basis = basis.astype(dtype)
    s_idio_c = s_idio.astype(np.float32)

    # Reduction weights: revenue, gross profit, and one column per price-cut start month.
    weights = np.zeros((n, 2 + len(resolved.price_steps)))
    weights[:, 0] = revenue0
    weights[:, 1] = revenue0 * margin
    for j, (_, delta) in enumerate(resolved.price_steps):
        weights[:, 2 + j] = revenue0 * delta
    weights = weights.astype(dtype)
    n_cols = weights.shape[1]
    steps = np.array(
        [np.arange(1, months + 1) >= month for month, _ in resolved.price_steps], dtype=float
    ).reshape(len(resolved.price_steps), months)
    kernels = [_logo_kernel(months, s.ramp_months) for s in resolved.new_logos]
    t_grid = np.arange(1, months + 1, dtype=np.int16)
    loss16 = np.minimum(loss, months + 1).astype(np.int16)
    with np.errstate(divide="ignore"):
        inv_log_keep = 1.0 / log_keep  # -inf when p = 0 (never churns), -0 when p = 1

    if chunk_draws is None:
        chunk_draws = _memory_chunk(
            n, months, nf, dtype.itemsize, memory_budget_mb * 2**20 / threads
        )
    chunk_draws = int(min(chunk_draws, draws))
    # Large books: one draw at a time (its cube stays in cache) and churn handled
    # by subtracting the dead months of the accounts that churn. Small books:
    # blocks of draws with a full alive mask. The choice depends on the book
    # only, so results do not depend on chunk_draws.
    per_draw = _CACHE_ROWS // n <= 1
    block = 1 if per_draw else _CACHE_ROWS // n

    rev_paths = np.empty((draws, months))
    gp_paths = np.empty((draws, months))

    def run_worker(chunk_starts: Sequence[int]) -> None:
        # Layout: accounts are the last (contiguous) axis everywhere. Buffers are
        # allocated once per worker and reused: first-touch page faults of fresh
        # arrays cost more than the arithmetic on some machines.
        m = chunk_draws
        u = np.empty((m, n))
        clock = np.empty((m, months)) if shared_churn else None
        ubm = np.empty((m, 2 * h, n), dtype=np.float32)
        market = np.empty((m, months))
        logo_rev = np.empty((m, months))
        logo_gp = np.empty((m, months))
        tau = np.empty((m, n), dtype=np.int16)
        features = np.empty((m, nf, n), dtype=dtype)
        features[:, 2 * h :, :] = static.T[None]
        basis_t = np.empty((m, months, nf), dtype=dtype)  # per draw: basis transposed
        basis_t[:] = basis.T
        cube = np.empty((min(block, m), months, n), dtype=dtype)
        alive = None if per_draw else np.empty((min(block, m), months, n), dtype=bool)
        sums = np.empty((m, months, n_cols), dtype=dtype)
        f_buf = np.empty((nf, n), dtype=dtype)
        w_buf = np.empty((n, n_cols), dtype=dtype)
        for start in chunk_starts:
            stop = min(start + m, draws)
            c = stop - start
            logo_rev[:c] = 0.0
            logo_gp[:c] = 0.0
            for j, d in enumerate(range(start, stop)):
                rng = _draw_rng(seed, d)
                rng.random(out=u[j])
                rng.random(out=ubm[j], dtype=np.float32)
                rng.standard_normal(out=market[j])
                for stream, kernel in zip(resolved.new_logos, kernels, strict=True):
                    ramped = rng.poisson(stream.per_year / 12, size=months) @ kernel
                    logo_rev[j] += stream.monthly_revenue * ramped
                    logo_gp[j] += stream.monthly_revenue * np.nan_to_num(stream.margin) * ramped
                if shared_churn:
                    z = rng.gamma(1 / churn_shock_variance, churn_shock_variance, n_periods)
                    clock[j] = np.cumsum(np.repeat(z, CHURN_SHOCK_MONTHS)[:months])
            # Churn month (first month without revenue): ceil(ln U / ln(1-p)), in 1..T+1;
            # with a shared shock, the first month whose shocked clock reaches ln U / ln(1-p).
            uc = u[:c]
            with np.errstate(divide="ignore", invalid="ignore"):
                np.log(uc, out=uc)
                np.multiply(uc, inv_log_keep, out=uc)
            if shared_churn:
                for j in range(c):
                    uc[j] = np.searchsorted(clock[j], uc[j]) + 1.0
            else:
                np.ceil(uc, out=uc)
            np.fmin(uc, months + 1, out=uc)  # NaN (p = 0 and U = 1) -> never
            np.fmax(uc, 1, out=uc)
            tc = tau[:c]
            np.copyto(tc, uc, casting="unsafe")
            np.minimum(tc, loss16, out=tc)
            # Idiosyncratic knot shocks by Box-Muller, scaled by s_i, written into the features.
            r, theta = ubm[:c, :h], ubm[:c, h:]
            np.negative(r, out=r)
            np.log1p(r, out=r)
            np.multiply(r, -2.0, out=r)
            np.sqrt(r, out=r)
            np.multiply(r, s_idio_c, out=r)
            np.multiply(theta, np.float32(2 * np.pi), out=theta)
            fc, fs = features[:c, :h], features[:c, h : 2 * h]
            np.cos(theta, out=fc, casting="same_kind")
            np.multiply(fc, r, out=fc, casting="same_kind")
            np.sin(theta, out=fs, casting="same_kind")
            np.multiply(fs, r, out=fs, casting="same_kind")
            # Market path (monthly Brownian, time in years) as the last basis column.
            np.cumsum(market[:c], axis=1, out=market[:c])
            np.multiply(market[:c], math.sqrt(1 / 12), out=basis_t[:c, :, -1], casting="unsafe")
            if per_draw:
                # Accounts that churn within the horizon go last (stable order, a
                # function of the draw only): their dead months are masked on a
                # contiguous slice, then one product gives the book totals.
                e = cube[0]
                for j in range(c):
                    churned = tc[j] <= months
                    n_churned = int(np.count_nonzero(churned))
                    if n_churned:
                        order = np.concatenate((np.flatnonzero(~churned), np.flatnonzero(churned)))
                        f_j = np.take(features[j], order, axis=1, out=f_buf)
                        w_j = np.take(weights, order, axis=0, out=w_buf)
                    else:
                        f_j, w_j = features[j], weights
                    np.matmul(basis_t[j], f_j, out=e)
                    np.exp(e, out=e)
                    if n_churned:
                        k0 = n - n_churned
                        tail = e[:, k0:]
                        np.multiply(tail, t_grid[:, None] < tc[j, order[k0:]][None, :], out=tail)
                    np.matmul(e, w_j, out=sums[j])
            else:
                for b0 in range(0, c, block):
                    b1 = min(b0 + block, c)
                    cc = cube[: b1 - b0]
                    np.matmul(basis_t[b0:b1], features[b0:b1], out=cc)
                    np.exp(cc, out=cc)
                    al = alive[: b1 - b0]
                    np.less(t_grid[None, :, None], tc[b0:b1, None, :], out=al)
                    np.multiply(cc, al, out=cc)
                    np.matmul(cc, weights, out=sums[b0:b1])
            totals = sums[:c].astype(float)
            cut = np.einsum("dtg,gt->dt", totals[:, :, 2:], steps) if steps.size else 0.0
            rev_paths[start:stop] = totals[:, :, 0] - cut + logo_rev[:c]
            gp_paths[start:stop] = totals[:, :, 1] - cut + logo_gp[:c]

    starts = list(range(0, draws, chunk_draws))
    threads = max(1, min(threads, len(starts)))
    with _single_threaded_blas() as controlled:
        if not controlled:
            threads = 1
        if threads > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(run_worker, [starts[i::threads] for i in range(threads)]))
        else:
            run_worker(starts)

    if not margin_known:
        gp_paths[:] = np.nan  # gross profit unknown: never reported as 0
    exp_rev, exp_gp, survival = expected_account_paths(
        book, resolved, months, churn_shock_variance=churn_shock_variance
    )
    account_expected = book[[c for c in ("account_id", "name", "tier") if c in book]].copy()
    account_expected["expected_revenue"] = exp_rev.sum(axis=1)
    account_expected["expected_gross_profit"] = exp_gp.sum(axis=1)
    account_expected["survival_at_horizon"] = survival[:, -1]
    total = account_expected["expected_revenue"].sum()
    account_expected["share_of_expected_revenue"] = (
        account_expected["expected_revenue"] / total if total > 0 else 0.0
    )
    settings = {
        "months": months,
        "draws": draws,
        "seed": seed,
        "market_factor_weight": market_factor_weight,
        "churn_shock_variance": churn_shock_variance,
        "growth_knot_months": growth_knot_months,
        "chunk_draws": chunk_draws,
        "threads": threads,
        "dtype": dtype.name,
    }
    return SimulationResult(resolved.name, rev_paths, gp_paths, target, account_expected, settings)


def simulate_book_reference(
    book: pd.DataFrame,
    *,
    months: int = 36,
    draws: int = 1_000,
    seed: int = 0,
    market_factor_weight: float = 0.0,
    chunk_draws: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """The straightforward per-month model (slow; for tests and benchmarks).

    Every account-month draws a churn coin (``U < p``) and a growth shock
    (``N(0, 1/12)`` per year of time), and the market factor a monthly shock;
    log revenue moves by ``(ln(1+g) - sigma^2/2)/12 + s_i dW_i + beta_i dM``.
    Base case only (no scenario shocks).

    Parameters
    ----------
    book : pandas.DataFrame
        The account book.
    months, draws, seed, market_factor_weight
        As in :func:`simulate_book`.
    chunk_draws : int, default 100
        Draws per chunk (memory).

    Returns
    -------
    revenue_paths, gross_profit_paths : numpy.ndarray
        Book totals per draw and month, shape (draws, months).
    """
    book = validate_book(book)
    rng = np.random.default_rng(seed)
    r0 = book["monthly_revenue"].to_numpy(float)
    margin = book["margin"].to_numpy(float)
    p = book["churn_prob_month"].to_numpy(float)
    sigma = book["volatility_annual"].to_numpy(float)
    drift = (np.log1p(book["growth_annual"].to_numpy(float)) - 0.5 * sigma**2) / 12
    s_idio = sigma * math.sqrt(1 - market_factor_weight) * math.sqrt(1 / 12)
    beta = sigma * math.sqrt(market_factor_weight) * math.sqrt(1 / 12)
    rev = np.empty((draws, months))
    gp = np.empty((draws, months))
    for start in range(0, draws, chunk_draws):
        c = min(chunk_draws, draws - start)
        alive = np.ones((c, len(book)), dtype=bool)
        log_index = np.zeros((c, len(book)))
        for t in range(months):
            alive &= rng.random((c, len(book))) >= p
            log_index += drift + s_idio * rng.standard_normal((c, len(book)))
            log_index += beta * rng.standard_normal((c, 1))
            level = np.exp(log_index) * alive
            rev[start : start + c, t] = level @ r0
            gp[start : start + c, t] = level @ (r0 * margin)
    return rev, gp


# ---------------------------------------------------------------------------
# Scenario comparison
# ---------------------------------------------------------------------------


SPREAD_SOURCES = ("estimated", "config", "fallback")
"""Where :func:`scenario_spreads` took a number from."""


@dataclass(frozen=True)
class ScenarioSpreads:
    """The numbers behind the spread of the simulated book, and where each came from.

    Attributes
    ----------
    market_factor_weight : float
        Share of each account's growth variance common to all accounts.
    market_source : str
        One of :data:`SPREAD_SOURCES`.
    churn_shock_variance : float
        Variance of the quarterly shock shared by every account's churn hazard.
    churn_shock_source : str
        One of :data:`SPREAD_SOURCES`.
    market : dict
        The estimate behind the weight (``volatility_annual``, ``lower``,
        ``upper``, ``weight``, ``weight_lower``, ``weight_upper``,
        ``quarters``, ``accounts``); empty when there was none.
    churn_shock : dict
        The estimate behind the churn shock (``variance``, ``quarters``,
        ``events``, ``dispersion``, ``p_value``); empty when there was none.
    volatility_months : int
        Months spanned by the revenue histories behind the per-account
        volatilities (0: no revenue history could be used).
    volatility_accounts : int
        Accounts with a revenue history of their own.
    """

    market_factor_weight: float
    market_source: str
    churn_shock_variance: float
    churn_shock_source: str
    market: dict[str, Any] = field(default_factory=dict)
    churn_shock: dict[str, Any] = field(default_factory=dict)
    volatility_months: int = 0
    volatility_accounts: int = 0

    def record(self) -> dict[str, Any]:
        """A JSON-ready summary (the scenario page records it in the run manifest)."""

        def clean(d: dict[str, Any]) -> dict[str, Any]:
            return {
                k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in d.items()
            }

        return {
            "market_factor_weight": float(self.market_factor_weight),
            "market_source": self.market_source,
            "churn_shock_variance": float(self.churn_shock_variance),
            "churn_shock_source": self.churn_shock_source,
            "market": clean(self.market),
            "churn_shock": clean(self.churn_shock),
            "volatility_months": int(self.volatility_months),
            "volatility_accounts": int(self.volatility_accounts),
        }


def _choose(configured: float | None, estimate: Any, fallback: float) -> tuple[float, str]:
    """The configured value, else a finite estimate, else the fallback; with its source."""
    if configured is not None:
        return float(configured), "config"
    if isinstance(estimate, int | float) and np.isfinite(estimate):
        return float(estimate), "estimated"
    return fallback, "fallback"


def scenario_spreads(
    settings: ScenarioSettings | None = None,
    *,
    market: dict[str, Any] | None = None,
    churn_shock: dict[str, Any] | None = None,
    volatility_months: int = 0,
    volatility_accounts: int = 0,
) -> ScenarioSpreads:
    """Choose the market-factor weight and churn-shock variance: configured, estimated, fallback.

    A value set in the configuration wins; otherwise the estimate from the
    data (``market["weight"]`` from the revenue histories,
    :func:`kam_analysis.ltv.shocks.market_factor`; ``churn_shock["variance"]``
    from churn per calendar quarter against the hazard model,
    :func:`kam_analysis.ltv.hazard.churn_period_shock`); without one,
    :data:`FALLBACK_MARKET_WEIGHT` and no churn shock.

    Parameters
    ----------
    settings : ScenarioSettings, optional
    market, churn_shock : dict, optional
        The estimates (None or NaN values: not estimable).
    volatility_months, volatility_accounts : int
        Months and accounts of revenue history behind the per-account
        volatilities (for the page).

    Returns
    -------
    ScenarioSpreads
    """
    settings = settings or ScenarioSettings()
    market = dict(market or {})
    churn_shock = dict(churn_shock or {})
    weight, w_src = _choose(
        settings.market_factor_weight, market.get("weight"), FALLBACK_MARKET_WEIGHT
    )
    theta, c_src = _choose(settings.churn_shock_variance, churn_shock.get("variance"), 0.0)
    return ScenarioSpreads(
        market_factor_weight=weight,
        market_source=w_src,
        churn_shock_variance=theta,
        churn_shock_source=c_src,
        market=market,
        churn_shock=churn_shock,
        volatility_months=int(volatility_months),
        volatility_accounts=int(volatility_accounts),
    )


class ScenarioRun(NamedTuple):
    """Result of :func:`run_scenarios`: the comparison table and the full results."""

    table: pd.DataFrame
    results: dict[str, SimulationResult]


def run_scenarios(
    book: pd.DataFrame,
    settings: ScenarioSettings | None = None,
    names: Iterable[str] | None = None,
    *,
    target: float | None = None,
    spreads: ScenarioSpreads | None = None,
    **engine: Any,
) -> ScenarioRun:
    """Simulate named scenarios with common random numbers and compare them.

    Parameters
    ----------
    book : pandas.DataFrame
        The account book.
    settings : ScenarioSettings, optional
        Scenarios and engine settings (defaults when None).
    names : iterable of str, optional
        Scenarios to run (default: all). The base scenario is added when it
        exists in the settings, for the deltas.
    target : float, optional
        Revenue target over the horizon; default ``settings.target_revenue``,
        else the flat run-rate ``months x sum(monthly_revenue)``.
    spreads : ScenarioSpreads, optional
        The market-factor weight and churn-shock variance to use
        (:func:`scenario_spreads`); default ``scenario_spreads(settings)``:
        the configured values, else the fallbacks.
    **engine
        Passed to :func:`simulate_book` (e.g. ``chunk_draws``, ``threads``).

    Returns
    -------
    ScenarioRun
        ``table`` (see :func:`compare_scenarios`) and ``results`` by name.

    Raises
    ------
    ScenarioError
        For an unknown scenario name or a shock that does not fit the book.
    """
    settings = settings or ScenarioSettings()
    spreads = spreads or scenario_spreads(settings)
    book = validate_book(book)
    names = list(settings.scenarios) if names is None else list(names)
    unknown = [nm for nm in names if nm not in settings.scenarios]
    if unknown:
        raise ScenarioError(f"unknown scenario(s) {unknown}; defined: {list(settings.scenarios)}")
    if settings.base_scenario in settings.scenarios and settings.base_scenario not in names:
        names.insert(0, settings.base_scenario)
    if target is None:
        target = settings.target_revenue
    if target is None:
        target = settings.months * float(book["monthly_revenue"].sum())
    results = {}
    for nm in names:
        results[nm] = simulate_book(
            book,
            months=settings.months,
            draws=settings.draws,
            seed=settings.seed,
            market_factor_weight=spreads.market_factor_weight,
            churn_shock_variance=spreads.churn_shock_variance,
            growth_knot_months=settings.growth_knot_months,
            scenario=settings.scenarios[nm],
            target=target,
            **engine,
        )
    table = compare_scenarios(results, base=settings.base_scenario)
    descriptions = {nm: settings.scenarios[nm].description for nm in names}
    table.insert(1, "description", table["scenario"].map(descriptions))
    return ScenarioRun(table, results)


def compare_scenarios(results: dict[str, SimulationResult], base: str = "base") -> pd.DataFrame:
    """Side-by-side distribution of horizon totals per scenario.

    Parameters
    ----------
    results : dict of str to SimulationResult
    base : str, default "base"
        Scenario the deltas refer to (NaN deltas when absent).

    Returns
    -------
    pandas.DataFrame
        One row per scenario: ``scenario``, ``revenue_mean``, ``revenue_p10``,
        ``revenue_p50``, ``revenue_p90``, the same for ``gross_profit_*``,
        ``target``, ``prob_miss_target``, ``revenue_p50_delta``,
        ``revenue_p50_delta_pct``, ``gross_profit_p50_delta``,
        ``gross_profit_p50_delta_pct`` (against ``base``).
    """
    rows = []
    for name, res in results.items():
        row: dict[str, Any] = {"scenario": name}
        for label, values in (
            ("revenue", res.total_revenue),
            ("gross_profit", res.total_gross_profit),
        ):
            q = np.quantile(values, QUANTILES)
            row[f"{label}_mean"] = values.mean()
            row[f"{label}_p10"], row[f"{label}_p50"], row[f"{label}_p90"] = q
        row["target"] = np.nan if res.target is None else res.target
        row["prob_miss_target"] = np.nan if res.prob_miss_target is None else res.prob_miss_target
        rows.append(row)
    table = pd.DataFrame(rows)
    for label in ("revenue", "gross_profit"):
        col = f"{label}_p50"
        ref = table.loc[table["scenario"] == base, col]
        ref_value = float(ref.iloc[0]) if len(ref) else np.nan
        table[f"{col}_delta"] = table[col] - ref_value
        table[f"{col}_delta_pct"] = (
            table[f"{col}_delta"] / ref_value if ref_value not in (0.0,) else np.nan
        )
    return table


# ---------------------------------------------------------------------------
# Concentration
# ---------------------------------------------------------------------------


def _shares(values: np.ndarray) -> np.ndarray:
    v = np.clip(np.asarray(values, dtype=float), 0, None)
    total = v.sum()
    return v / total if total > 0 else np.zeros_like(v)


def concentration_metrics(values: np.ndarray) -> dict[str, float]:
    """Top-N shares and Herfindahl-Hirschman index of one amount per account.

    Negative amounts (e.g. negative gross profit) count as 0; missing ones
    (NaN) are left out.

    Returns
    -------
    dict
        ``n_accounts`` (accounts with a positive amount), ``total``,
        ``top1_share``, ``top5_share``, ``top10_share`` (fractions), ``hhi``
        (sum of squared percentage shares, 0-10,000), ``hhi_fraction``
        (``hhi / 10,000``), ``hhi_normalized`` (``(H - 1/N) / (1 - 1/N)``, 0
        for equal shares, 1 for one account) and ``equivalent_accounts``
        (``1/H = 10,000 / hhi``: how many equal-sized accounts would give the
        same HHI). When no account has a positive amount (every amount 0 or
        missing) the shares and indices are NaN, not 0: there is nothing to
        be concentrated (see :func:`concentration_reason`); ``total`` is then 0,
        or NaN when every amount is missing.
    """
    v = np.asarray(values, dtype=float)
    known = v[np.isfinite(v)]
    positive = np.clip(known, 0, None)
    if not (positive > 0).any():
        nan = float("nan")
        return {
            "n_accounts": 0.0,
            "total": float(positive.sum()) if known.size else nan,
            "top1_share": nan,
            "top5_share": nan,
            "top10_share": nan,
            "hhi": nan,
            "hhi_fraction": nan,
            "hhi_normalized": nan,
            "equivalent_accounts": nan,
        }
    s = np.sort(_shares(positive))[::-1]
    n = int(np.count_nonzero(s))
    h = float(np.sum(s**2))
    return {
        "n_accounts": float(n),
        "total": float(positive.sum()),
        "top1_share": float(s[:1].sum()),
        "top5_share": float(s[:5].sum()),
        "top10_share": float(s[:10].sum()),
        "hhi": 10_000 * h,
        "hhi_fraction": h,
        "hhi_normalized": (h - 1 / n) / (1 - 1 / n) if n > 1 else (1.0 if n == 1 else 0.0),
        "equivalent_accounts": 1 / h if h > 0 else 0.0,
    }


def _amount_columns(frame: pd.DataFrame, where: str) -> list[str]:
    if "account_id" not in frame.columns or "revenue" not in frame.columns:
        raise ValueError(
            f"{where} needs columns 'account_id' and 'revenue' (gross_profit optional)"
        )
    return [c for c in ("revenue", "gross_profit") if c in frame.columns]


def _known_amount_columns(frame: pd.DataFrame, where: str) -> list[str]:
    """Amount columns, without a gross-profit column that is missing everywhere."""
    columns = _amount_columns(frame, where)
    return [
        c
        for c in columns
        if c == "revenue" or pd.to_numeric(frame[c], errors="coerce").notna().any()
    ]


def concentration(
    revenue_by_account: pd.DataFrame, thresholds: ConcentrationThresholds | None = None
) -> pd.DataFrame:
    """Dependence on few accounts: top-1/5/10 shares tested, HHI as context.

    Parameters
    ----------
    revenue_by_account : pandas.DataFrame
        ``account_id``, ``revenue`` and optionally ``gross_profit`` (summed
        when an account appears more than once).
    thresholds : ConcentrationThresholds, optional
        Flag levels of the shares (default: top-1 > 10 %, top-5 > 30 %,
        top-10 > 50 %). The HHI, its normalised form and the equivalent number
        of accounts (``10,000 / HHI``) are context: no threshold, never flagged.

    Returns
    -------
    pandas.DataFrame
        Tidy: ``basis`` (``revenue`` / ``gross_profit``), ``metric`` (see
        :func:`concentration_metrics`), ``value``, ``threshold`` (NaN for a
        metric without a test) and ``exceeds`` (bool: ``value > threshold``).
        A ``gross_profit`` column that
        is missing for every account (no cost data) gives no rows: gross
        profit concentration is unknown, not 0. Without any positive amount
        the values are NaN (:func:`concentration_reason` says why).

    Raises
    ------
    ValueError
        When a column is missing.

    Notes
    -----
    The HHI is not tested because its cut-offs do not transfer to a customer
    book: one account at 35 % of revenue among many small ones gives
    ``35**2 = 1,225``, under the 1,500 of the merger guidelines, while the
    top-1 share already breaches any dependence threshold.

    References
    ----------
    FASB ASC 280-10-50-42 and IFRS 8, paragraph 34: a single customer with 10 %
    or more of revenue is disclosed as a major customer. U.S. Department of
    Justice and Federal Trade Commission, *Horizontal Merger Guidelines*
    (2010), section 5.3: HHI is the sum of the squared percentage shares
    (below 1,500 unconcentrated, above 2,500 highly concentrated, for markets).
    """
    columns = _known_amount_columns(revenue_by_account, "concentration")
    thresholds = thresholds or ConcentrationThresholds()
    limits = thresholds.model_dump()
    per_account = revenue_by_account.groupby("account_id", sort=False)[columns].sum(min_count=1)
    rows = []
    for basis in columns:
        for metric, value in concentration_metrics(per_account[basis].to_numpy(float)).items():
            limit = limits.get(metric)
            rows.append(
                {
                    "basis": basis,
                    "metric": metric,
                    "value": value,
                    "threshold": np.nan if limit is None else float(limit),
                    "exceeds": bool(limit is not None and np.isfinite(value) and value > limit),
                }
            )
    return pd.DataFrame(rows, columns=["basis", "metric", "value", "threshold", "exceeds"])


CONCENTRATION_REASONS = ("no_revenue", "gross_profit_unknown")
"""Why :func:`concentration_reason` finds a concentration not available."""


def concentration_reason(conc: pd.DataFrame, basis: str = "revenue") -> str | None:
    """Why the concentration of one basis cannot be shown, or None when it can.

    Parameters
    ----------
    conc : pandas.DataFrame
        :func:`concentration` output.
    basis : {"revenue", "gross_profit"}

    Returns
    -------
    str or None
        ``"gross_profit_unknown"`` (no rows for the basis: no cost data),
        ``"no_revenue"`` (no account has a positive amount, e.g. an as-of date
        long after the last sale), else None.
    """
    part = conc[conc["basis"] == basis]
    if part.empty:
        return "gross_profit_unknown" if basis == "gross_profit" else "no_revenue"
    hhi = part.loc[part["metric"] == "hhi", "value"]
    if hhi.empty or not np.isfinite(float(hhi.iloc[0])):
        return "no_revenue"
    return None


def concentration_trend(monthly_revenue: pd.DataFrame, freq: str = "Q") -> pd.DataFrame:
    """Concentration per period (month, quarter or year).

    Parameters
    ----------
    monthly_revenue : pandas.DataFrame
        ``account_id``, ``month`` (date), ``revenue`` and optionally
        ``gross_profit``.
    freq : {"M", "Q", "Y"}, default "Q"
        Period length.

    Returns
    -------
    pandas.DataFrame
        One row per period and basis: ``period`` (label), ``period_start``
        (timestamp), ``basis`` and the metrics of :func:`concentration_metrics`
        as columns.

    Raises
    ------
    ValueError
        For a missing column or an unknown ``freq``.
    """
    columns = _known_amount_columns(monthly_revenue, "concentration_trend")
    if "month" not in monthly_revenue.columns:
        raise ValueError("concentration_trend needs a 'month' column")
    if freq not in ("M", "Q", "Y"):
        raise ValueError(f"freq must be 'M', 'Q' or 'Y', got {freq!r}")
    frame = monthly_revenue.assign(
        _period=pd.to_datetime(monthly_revenue["month"]).dt.to_period(freq)
    )
    grouped = frame.groupby(["_period", "account_id"], sort=True)[columns].sum(min_count=1)
    rows = []
    for period, part in grouped.groupby(level="_period", sort=True):
        for basis in columns:
            row = {"period": str(period), "period_start": period.start_time, "basis": basis}
            row.update(concentration_metrics(part[basis].to_numpy(float)))
            rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# Account-loss stress
# ---------------------------------------------------------------------------


def _logo_contribution(months: int, start: int, ramp: int) -> float:
    t = np.arange(start, months + 1)
    return float(np.minimum(1.0, (t - start + 1) / ramp).sum())


LOSS_REASONS = (
    "more_than_book",
    "no_reference_accounts",
    "beyond_uplift_range",
    "no_other_revenue",
)
"""Why :func:`account_loss_stress` leaves a replacement figure missing (NaN):

* ``more_than_book`` - replacing the account needs more new accounts than the
  book has (the count is still given; the page says so next to it);
* ``no_reference_accounts`` - no other account has current revenue to size a
  new one by;
* ``beyond_uplift_range`` - no growth uplift up to +1,000 % a year closes the gap;
* ``no_other_revenue`` - the other accounts have no revenue to grow.
"""


def account_loss_stress(
    book: pd.DataFrame,
    accounts: Sequence[str] | None = None,
    *,
    top_k: int = 10,
    months: int = 36,
    loss_month: int | Sequence[int] = 1,
    new_logo_ramp_months: int = 6,
) -> pd.DataFrame:
    """What losing one key account costs, and what would close the gap.

    The gap is the account's expected revenue (and gross profit) from the
    loss month to the horizon, in closed form (growth and its own churn
    included, as in :func:`expected_account_paths`), against the book's
    expected totals over the horizon. Every number is finite or missing
    (NaN) with a reason from :data:`LOSS_REASONS`; never infinite.

    Parameters
    ----------
    book : pandas.DataFrame
        The account book.
    accounts : sequence of str, optional
        Accounts to stress; default the ``top_k`` by current monthly revenue.
    top_k : int, default 10
    months : int, default 36
        Horizon.
    loss_month : int or sequence of int, default 1
        Month(s) of the loss (1 = now).
    new_logo_ramp_months : int, default 6
        Ramp of a new account to full size (linear).

    Returns
    -------
    pandas.DataFrame
        One row per account and loss month: ``account_id``, ``name`` (when
        in the book), ``loss_month``, ``revenue_gap``, ``gross_profit_gap``
        (NaN when the book's margin is unknown), ``revenue_gap_pct``,
        ``gross_profit_gap_pct`` (fractions of the book's expected totals),
        ``new_logos_needed_avg`` and ``new_logos_needed_median`` (new
        accounts of the mean / median monthly revenue of the other accounts
        with current revenue, won at the loss month, ramping up, no churn,
        needed to replace the revenue gap; rounded up; NaN when no other
        account has revenue to size a new one by),
        ``new_logos_needed_avg_reason`` and ``new_logos_needed_median_reason``
        (None, ``"more_than_book"`` next to a count above the number of accounts
        in the book, or ``"no_reference_accounts"`` next to NaN; see
        :data:`LOSS_REASONS`), ``growth_uplift_needed``
        (annual growth points to add to every remaining account from month
        1 to close the revenue gap; NaN when no uplift up to +1,000 % does)
        and ``growth_uplift_reason``.

    Raises
    ------
    ScenarioError
        For unknown accounts or loss months outside the horizon.
    """
    book = validate_book(book)
    base = resolve_scenario(None, book, months=months)
    rev, gp, surv = expected_account_paths(book, base, months)
    book_rev, book_gp = rev.sum(), gp.sum()
    revenue0 = book["monthly_revenue"].to_numpy(float)
    if accounts is None:
        idx = np.argsort(-revenue0, kind="stable")[: max(1, top_k)]
    else:
        _account_mask(book, list(accounts), "account_loss_stress")
        order = {a: i for i, a in enumerate(book["account_id"])}
        idx = np.array([order[a] for a in accounts])
    loss_months = [loss_month] if isinstance(loss_month, int) else list(loss_month)
    for m in loss_months:
        _check_month(m, months, "account_loss_stress", "loss_month")
    if new_logo_ramp_months < 1:
        raise ValueError(f"new_logo_ramp_months must be >= 1, got {new_logo_ramp_months}")
    t = np.arange(1, months + 1)

    rows = []
    for i in idx:
        others = np.ones(len(book), dtype=bool)
        others[i] = False
        active = revenue0[others & (revenue0 > 0)]
        sizes = {
            "avg": float(active.mean()) if active.size else 0.0,
            "median": float(np.median(active)) if active.size else 0.0,
        }
        for m in loss_months:
            rev_gap = float(rev[i, m - 1 :].sum())
            gp_gap = float(gp[i, m - 1 :].sum())
            per_logo = _logo_contribution(months, m, new_logo_ramp_months)
            needed = {
                key: _logos_needed(rev_gap, size, per_logo, len(book))
                for key, size in sizes.items()
            }

            def extra(delta: float, others: np.ndarray = others) -> float:
                g = base.growth_annual[others] + delta
                level = revenue0[others, None] * (1 + g[:, None]) ** (t / 12) * surv[others]
                return float(level.sum() - rev[others].sum())

            uplift, uplift_reason = 0.0, None
            if rev_gap > 0 and not (revenue0[others] > 0).any():
                uplift, uplift_reason = np.nan, "no_other_revenue"
            elif rev_gap > 0 and extra(10.0) < rev_gap:
                uplift, uplift_reason = np.nan, "beyond_uplift_range"
            elif rev_gap > 0:
                uplift = float(
                    optimize.brentq(lambda d, gap=rev_gap: extra(d) - gap, 0.0, 10.0, xtol=1e-10)
                )
            row = {"account_id": book["account_id"].iloc[i]}
            if "name" in book:
                row["name"] = book["name"].iloc[i]
            row.update(
                {
                    "loss_month": m,
                    "revenue_gap": rev_gap,
                    "gross_profit_gap": gp_gap,
                    "revenue_gap_pct": rev_gap / book_rev if book_rev > 0 else np.nan,
                    "gross_profit_gap_pct": gp_gap / book_gp if book_gp > 0 else np.nan,
                    "new_logos_needed_avg": needed["avg"][0],
                    "new_logos_needed_median": needed["median"][0],
                    "new_logos_needed_avg_reason": needed["avg"][1],
                    "new_logos_needed_median_reason": needed["median"][1],
                    "growth_uplift_needed": uplift,
                    "growth_uplift_reason": uplift_reason,
                }
            )
            rows.append(row)
    return pd.DataFrame(rows)


def loss_stress_reasons(loss: pd.DataFrame) -> pd.Series:
    """The reasons behind missing or notable figures of each :func:`account_loss_stress` row.

    Parameters
    ----------
    loss : pandas.DataFrame
        :func:`account_loss_stress` output.

    Returns
    -------
    pandas.Series
        Aligned with ``loss``: a tuple of keys of :data:`LOSS_REASONS` (in the
        order of the columns, without repeats; empty when every figure is
        plain), for the page to explain them (``scenarios.loss_reason.<key>``).
    """
    cols = [
        c
        for c in (
            "new_logos_needed_avg_reason",
            "new_logos_needed_median_reason",
            "growth_uplift_reason",
        )
        if c in loss.columns
    ]
    keys = (
        [
            tuple(dict.fromkeys(v for v in values if isinstance(v, str) and v))
            for values in zip(*(loss[c] for c in cols), strict=True)
        ]
        if cols
        else [() for _ in range(len(loss))]
    )
    return pd.Series(keys, index=loss.index, dtype=object, name="reasons")


def _logos_needed(
    gap: float, size: float, per_logo: float, n_book: int
) -> tuple[float, str | None]:
    """New accounts of ``size`` a month needed to replace ``gap`` (NaN without a size), and why."""
    if gap <= 0:
        return 0.0, None
    if not size > 0:
        return float("nan"), "no_reference_accounts"
    needed = float(math.ceil(gap / (size * per_logo) - 1e-9))
    return needed, ("more_than_book" if needed > n_book else None)


# ---------------------------------------------------------------------------
# Price negotiation
# ---------------------------------------------------------------------------


def break_even_volume_increase(margin: float, price_cut: float) -> float:
    """Volume increase that keeps gross profit unchanged after a price cut.

    With gross margin ``m`` and price cut ``c`` (fractions of the current
    price; unit cost unchanged) gross profit per unit falls from ``m`` to
    ``m - c``, so volume must rise by ``c / (m - c)``. When ``c >= m`` no
    volume restores the profit and ``inf`` is returned.

    Parameters
    ----------
    margin : float
        Current gross margin, fraction (e.g. 0.30).
    price_cut : float
        Price cut, fraction (e.g. 0.05).

    Returns
    -------
    float
        Required volume increase as a fraction (0.2 = +20 %), or inf.
    """
    if price_cut >= margin:
        return math.inf
    return price_cut / (margin - price_cut)


WALK_AWAY_REASONS = ("margin_unknown", "no_current_gp", "cut_raises_gp", "cut_leaves_no_gp")
"""Why :func:`walk_away_break_even` is NaN or clipped (``""``: an interior value)."""


def walk_away_break_even(
    margin: float, price_cut: float, volume_change: float = 0.0
) -> tuple[float, str]:
    """The loss probability at which refusing a price cut costs as much as accepting it.

    Accepting keeps the account at gross profit ``GP_cut = R (1 + v)(m - c)``;
    refusing keeps ``GP_now = R m`` with probability ``1 - p`` and loses the
    account (0) otherwise. The two are equal at
    ``p* = 1 - GP_cut / GP_now = 1 - (1 + v)(m - c) / m``: refuse when the
    probability of losing the account is below ``p*``, accept when it is above.

    Parameters
    ----------
    margin : float
        Current gross margin ``m``, fraction (NaN when unknown).
    price_cut : float
        Price cut ``c``, fraction of the current price.
    volume_change : float, default 0.0
        Volume response ``v`` to the cut, fraction (0.1 = +10 %).

    Returns
    -------
    (float, str)
        ``p*`` clipped to [0, 1], and a reason from :data:`WALK_AWAY_REASONS`
        or ``""``: ``"cut_raises_gp"`` (``p* = 0``: the volume response more
        than pays for the cut, so accepting wins even if the customer would
        surely stay), ``"cut_leaves_no_gp"`` (``p* = 1``: gross profit after
        the cut is 0 or negative, so refusing wins even if the loss is
        certain), ``"no_current_gp"`` and ``"margin_unknown"`` (``p*`` NaN).
    """
    if not math.isfinite(margin):
        return math.nan, "margin_unknown"
    if margin <= 0:
        return math.nan, "no_current_gp"
    ratio = (1 + volume_change) * (margin - price_cut) / margin
    if ratio > 1:
        return 0.0, "cut_raises_gp"
    if ratio <= 0:
        return 1.0, "cut_leaves_no_gp"
    return 1 - ratio, ""


def churn_risk_12m(book: pd.DataFrame, account_id: str) -> float | None:
    """The account's modelled 12-month churn risk, ``1 - (1 - p_month)^12``.

    Parameters
    ----------
    book : pandas.DataFrame
        :func:`scenario_book` output (``account_id``, ``churn_prob_month``,
        ``churn_source``).
    account_id : str

    Returns
    -------
    float or None
        None when the account's churn rate is the book's fallback (not
        modelled), the book has no ``churn_source`` or the account is absent.
    """
    if "churn_source" not in book.columns:
        return None
    rows = book[book["account_id"].astype(str) == str(account_id)]
    if rows.empty or rows["churn_source"].iloc[0] not in ("ltv", "ltv_churned"):
        return None
    p = float(rows["churn_prob_month"].iloc[0])
    return 1 - (1 - p) ** 12


def _walk_away_rows(
    gp: float, gp_cut: float, margin: float, c: float, v: float, p_loss: float | None
) -> list[tuple]:
    p_star, reason = walk_away_break_even(margin, c, v)
    notes = {
        "": f"refusing pays while the chance of losing the account is below {p_star:.1%}",
        "cut_raises_gp": "the cut raises gross profit (volume response): accepting wins",
        "cut_leaves_no_gp": "no gross profit is left after the cut: refusing wins",
        "no_current_gp": "no current gross profit to weigh",
        "margin_unknown": "gross margin unknown (no cost data)",
    }
    rows = [("ours", "walk_away_break_even", np.nan, p_star, notes[reason], reason)]
    if p_loss is not None:
        known = math.isfinite(margin)
        rows += [
            ("ours", "loss_prob_if_refused", p_loss, np.nan, "assumed", "" if known else reason),
            (
                "ours",
                "expected_gross_profit",
                (1 - p_loss) * gp if known else np.nan,
                gp_cut if known else np.nan,
                "current: refuse the cut and risk the account; after cut: accept it",
                "" if known else "margin_unknown",
            ),
        ]
    return rows


def price_negotiation(
    revenue: float,
    margin: float,
    price_cut_pct: float,
    customer_value: Any = None,
    *,
    volume_change: float = 0.0,
    p_loss: float | None = None,
    draws: int = 10_000,
    seed: int = 0,
    discount_rate_annual: float = 0.08,
    months: int = 36,
) -> pd.DataFrame:
    """Our side and the customer's side of a requested price cut.

    Parameters
    ----------
    revenue : float
        Current revenue from the account (per year, or any period).
    margin : float
        Current gross margin, fraction <= 1.
    price_cut_pct : float
        Requested cut, percent in [0, 100).
    customer_value : pricing.RoiInputs, optional
        The customer's value from our offer (ranges); its ``annual_fee`` is
        our current price. When given, the customer's ROI at the current and
        the cut price is simulated with the same random numbers
        (:func:`kam_analysis.pricing.simulate_roi`), for the value-based
        counter-argument.
    volume_change : float, default 0.0
        Volume response to the cut (fraction, > -1): revenue and gross profit
        after the cut are ``R (1 - c)(1 + v)`` and ``R (1 + v)(m - c)``.
    p_loss : float, optional
        Probability of losing the account if we refuse the cut, in [0, 1].
        When given, the expected gross profit of refusing, ``(1 - p_loss) GP``,
        is set against the gross profit after the cut.
    draws, seed, discount_rate_annual, months
        Passed to the ROI simulation.

    Returns
    -------
    pandas.DataFrame
        Tidy: ``side`` (``ours`` / ``customer``), ``metric``, ``current``,
        ``after_cut``, ``change``, ``note``, ``reason``. Our metrics:
        ``revenue``, ``gross_profit``, ``gross_margin`` and
        ``break_even_volume_increase`` (``cut / (margin - cut)``),
        ``walk_away_break_even`` (the loss probability ``p*`` above which
        accepting the cut beats refusing it, :func:`walk_away_break_even`, in
        ``after_cut``; its ``reason`` from :data:`WALK_AWAY_REASONS`) and, with
        ``p_loss``, ``loss_prob_if_refused`` (``current``) and
        ``expected_gross_profit`` (``current``: refuse, ``(1 - p_loss) GP``;
        ``after_cut``: accept; ``change``: accept - refuse). No value is
        infinite: the break-even is NaN with ``reason`` ``"cut_exceeds_margin"``
        when the cut is at least the margin (no volume restores the profit),
        and gross profit, margin and break-even are NaN with ``reason``
        ``"margin_unknown"`` when ``margin`` is NaN (no cost data). Customer
        metrics: ``npv_p50``, ``roi_p50``,
        ``payback_month_p50``, ``prob_npv_positive`` and
        ``fee_saving_share_of_npv`` (the cut's saving over the term as a share
        of the customer's P50 NPV at the current price).

    Raises
    ------
    ValueError
        For a cut outside [0, 100), a margin above 1, negative revenue, a
        volume change <= -1 or ``p_loss`` outside [0, 1].
    """
    if not 0 <= price_cut_pct < 100:
        raise ValueError(f"price_cut_pct must be in [0, 100), got {price_cut_pct}")
    if not volume_change > -1:
        raise ValueError(f"volume_change must be > -1, got {volume_change}")
    if p_loss is not None and not 0 <= p_loss <= 1:
        raise ValueError(f"p_loss must be in [0, 1], got {p_loss}")
    margin = float(margin)
    if margin > 1 or np.isinf(margin):
        raise ValueError(f"margin must be a fraction <= 1 (NaN when unknown), got {margin}")
    if not revenue >= 0:
        raise ValueError(f"revenue must be >= 0, got {revenue}")
    c = price_cut_pct / 100
    new_revenue = revenue * (1 - c) * (1 + volume_change)
    gp, new_gp = revenue * margin, revenue * (1 + volume_change) * (margin - c)
    new_margin = (margin - c) / (1 - c)
    if np.isnan(margin):
        be, reason = float("nan"), "margin_unknown"
        note = "gross margin unknown (no cost data): the profit effect cannot be computed"
    else:
        be = break_even_volume_increase(margin, c)
        reason = "cut_exceeds_margin" if math.isinf(be) else ""
        note = (
            "no volume increase restores gross profit: the cut is at least the margin"
            if math.isinf(be)
            else f"volume must rise {be:.1%} to keep gross profit (cut / (margin - cut))"
        )
        be = float("nan") if math.isinf(be) else be
    gp_reason = "margin_unknown" if np.isnan(margin) else ""
    rows = [
        ("ours", "revenue", revenue, new_revenue, "", ""),
        ("ours", "gross_profit", gp, new_gp, "", gp_reason),
        ("ours", "gross_margin", margin, new_margin, "", gp_reason),
        ("ours", "break_even_volume_increase", 0.0, be, note, reason),
        *_walk_away_rows(gp, new_gp, margin, c, volume_change, p_loss),
    ]
    if customer_value is not None:
        kwargs = {
            "draws": draws,
            "seed": seed,
            "discount_rate_annual": discount_rate_annual,
            "months": months,
        }
        now = pricing.simulate_roi(customer_value, **kwargs)
        cut_inputs = customer_value.model_copy(
            update={"annual_fee": customer_value.annual_fee.scaled(1 - c)}
        )
        after = pricing.simulate_roi(cut_inputs, **kwargs)
        npv_now = float(np.median(now.npv))
        saving = float(np.median(after.npv) - npv_now)
        rows += [
            ("customer", "npv_p50", npv_now, float(np.median(after.npv)), "", ""),
            (
                "customer",
                "roi_p50",
                float(np.median(now.roi)),
                float(np.median(after.roi)),
                "",
                "",
            ),
            (
                "customer",
                "payback_month_p50",
                float(np.nanmedian(now.payback_month))
                if np.isfinite(now.payback_month).any()
                else np.nan,
                float(np.nanmedian(after.payback_month))
                if np.isfinite(after.payback_month).any()
                else np.nan,
                "median over draws that pay back within the horizon",
                ""
                if np.isfinite(now.payback_month).any() and np.isfinite(after.payback_month).any()
                else "no_payback_within_horizon",
            ),
            (
                "customer",
                "prob_npv_positive",
                float(np.mean(now.npv > 0)),
                float(np.mean(after.npv > 0)),
                "",
                "",
            ),
            (
                "customer",
                "fee_saving_share_of_npv",
                np.nan,
                saving / npv_now if npv_now > 0 else np.nan,
                "the cut's value to the customer relative to the value our offer already creates",
                "" if npv_now > 0 else "npv_not_positive",
            ),
        ]
    out = pd.DataFrame(rows, columns=["side", "metric", "current", "after_cut", "note", "reason"])
    out.insert(4, "change", out["after_cut"] - out["current"])
    return out


# ---------------------------------------------------------------------------
# Report helpers: the book from the LTV models, settings overrides, tidy tables
# ---------------------------------------------------------------------------

CHURN_SOURCES = ("ltv", "ltv_churned", "fallback")
"""Where :func:`scenario_book` took an account's churn probability from."""


def book_inputs_from_ltv(ltv: pd.DataFrame) -> pd.DataFrame:
    """Churn and growth per account from the LTV models, for :func:`scenario_book`.

    Parameters
    ----------
    ltv : pandas.DataFrame
        :func:`kam_analysis.ltv.value.account_ltv` output: ``account_id``,
        ``model``, ``monthly_churn``, ``growth_annual``.

    Returns
    -------
    pandas.DataFrame
        ``account_id`` (str), ``churn_prob_month`` (the contractual models'
        ``monthly_churn``; 1.0 for accounts whose contract already ended as
        churned - they earn nothing in the horizon; NaN where the models give no
        forward churn rate, e.g. transactional BG/NBD accounts, whose
        ``churn_risk_12m`` is the probability of being inactive *now*),
        ``churn_source`` (``"ltv"``, ``"ltv_churned"`` or NaN) and
        ``growth_annual`` (the models' shrunk annual growth, NaN when missing;
        not used for churned accounts).

    Raises
    ------
    ValueError
        When a column is missing.
    """
    needed = ("account_id", "model", "monthly_churn", "growth_annual")
    missing = [c for c in needed if c not in ltv.columns]
    if missing:
        raise ValueError(
            f"book_inputs_from_ltv needs account_ltv output; missing column(s) {missing}"
        )
    model = ltv["model"].astype(str).to_numpy()
    churn = pd.to_numeric(ltv["monthly_churn"], errors="coerce").to_numpy(float)
    growth = pd.to_numeric(ltv["growth_annual"], errors="coerce").to_numpy(float)
    churned = model == "churned"
    has_rate = np.isfinite(churn) & (churn >= 0) & (churn <= 1) & ~churned
    out = pd.DataFrame({"account_id": ltv["account_id"].astype(str).to_numpy()})
    out["churn_prob_month"] = np.where(churned, 1.0, np.where(has_rate, churn, np.nan))
    out["churn_source"] = pd.Series(
        np.where(churned, "ltv_churned", np.where(has_rate, "ltv", None)), dtype=object
    )
    out["growth_annual"] = np.where(churned | ~np.isfinite(growth), np.nan, growth)
    return out


def scenario_book(
    features: pd.DataFrame,
    *,
    ltv: pd.DataFrame | None = None,
    volatility: pd.Series | None = None,
    book_volatility: float | None = None,
    default_churn_annual: float = FALLBACK_CHURN_ANNUAL,
    default_volatility: float = FALLBACK_VOLATILITY,
    growth_shrinkage: float = 0.5,
    growth_bounds: tuple[float, float] = (-0.5, 1.0),
    assumed_gross_margin: float | None = None,
) -> pd.DataFrame:
    """The account book for the scenario report: features plus the LTV models' churn and growth.

    :func:`book_from_features` builds the book; where ``ltv`` gives a forward
    churn rate or a growth rate (see :func:`book_inputs_from_ltv`) it replaces
    the fallback. Growth from the LTV models is clipped to ``growth_bounds``.

    Parameters
    ----------
    features : pandas.DataFrame
        As for :func:`book_from_features` (``name`` and ``tier`` kept when present,
        e.g. the analysis context's ``scored`` table).
    ltv : pandas.DataFrame, optional
        :func:`kam_analysis.ltv.value.account_ltv` output; without it every account
        gets the fallbacks.
    volatility : pandas.Series, optional
        Annual volatility of each account's revenue growth, indexed by
        ``account_id`` (e.g. the persistent shocks of its revenue history,
        :meth:`kam_analysis.ltv.shocks.RevenueShocks.annual_volatility`).
    book_volatility : float, optional
        Volatility of accounts not in ``volatility`` (e.g. the book's typical
        value); when None or NaN they get ``default_volatility``.
    default_churn_annual, default_volatility, growth_shrinkage, growth_bounds
        Passed to :func:`book_from_features`.
    assumed_gross_margin : float, optional
        Passed to :func:`book_from_features` (used without cost data).

    Returns
    -------
    pandas.DataFrame
        The book (:data:`BOOK_COLUMNS`, ``name``/``tier`` when present) plus
        ``churn_source`` (one of :data:`CHURN_SOURCES`), ``growth_source``
        (``"ltv"`` or ``"features"`` - the shrunk year-on-year revenue growth)
        and ``volatility_source`` (``"estimated"``: the account's own,
        ``"book"``: ``book_volatility``, or ``"fallback"``).

    Raises
    ------
    BookError, ValueError
        For a bad feature table, argument or LTV table.
    """
    book = book_from_features(
        features,
        default_churn_annual=default_churn_annual,
        default_volatility=default_volatility,
        growth_shrinkage=growth_shrinkage,
        growth_bounds=growth_bounds,
        assumed_gross_margin=assumed_gross_margin,
    )
    book["churn_source"] = "fallback"
    book["growth_source"] = "features"
    book["volatility_source"] = "fallback"
    if book_volatility is not None and np.isfinite(book_volatility) and book_volatility >= 0:
        book["volatility_annual"] = float(book_volatility)
        book["volatility_source"] = "book"
    if volatility is not None:
        given = pd.Series(volatility, dtype=float)
        given.index = given.index.astype(str)
        vol = book["account_id"].map(given).to_numpy(float)
        known = np.isfinite(vol) & (vol >= 0)
        book["volatility_annual"] = np.where(known, vol, book["volatility_annual"])
        book["volatility_source"] = np.where(known, "estimated", book["volatility_source"])
    if ltv is None:
        return book
    inputs = book_inputs_from_ltv(ltv).drop_duplicates("account_id").set_index("account_id")
    ids = book["account_id"]
    churn = ids.map(inputs["churn_prob_month"]).to_numpy(float)
    source = ids.map(inputs["churn_source"])
    growth = ids.map(inputs["growth_annual"]).to_numpy(float)
    has_churn = np.isfinite(churn)
    has_growth = np.isfinite(growth)
    book["churn_prob_month"] = np.where(has_churn, churn, book["churn_prob_month"])
    book["churn_source"] = np.where(has_churn, source.to_numpy(dtype=object), "fallback")
    lo, hi = growth_bounds
    book["growth_annual"] = np.where(
        has_growth, np.clip(growth, lo, hi), book["growth_annual"].to_numpy(float)
    )
    book["growth_source"] = np.where(has_growth, "ltv", "features")
    return validate_book(book)


def parse_scenario_names(text: str, settings: ScenarioSettings | None = None) -> list[str]:
    """Scenario names from a comma-separated list, checked against the settings.

    Parameters
    ----------
    text : str
        E.g. ``"base, downside,upside"``; blanks and repeats are dropped.
    settings : ScenarioSettings, optional
        Defined scenarios (defaults when None).

    Returns
    -------
    list of str
        In the given order.

    Raises
    ------
    ScenarioError
        For an empty list or a name that is not defined.
    """
    settings = settings or ScenarioSettings()
    names = list(dict.fromkeys(part.strip() for part in str(text).split(",") if part.strip()))
    if not names:
        raise ScenarioError(
            f"no scenario names given in {text!r}; defined: {list(settings.scenarios)}"
        )
    unknown = [nm for nm in names if nm not in settings.scenarios]
    if unknown:
        raise ScenarioError(
            f"unknown scenario(s) {unknown}; defined in [scenarios.scenarios]: "
            f"{list(settings.scenarios)}"
        )
    return names


def with_run_settings(
    settings: ScenarioSettings | None = None,
    *,
    draws: int | None = None,
    months: int | None = None,
    seed: int | None = None,
) -> ScenarioSettings:
    """A copy of the scenario settings with the run's draws, horizon and seed (validated).

    Parameters
    ----------
    settings : ScenarioSettings, optional
        From the configuration (defaults when None).
    draws, months, seed : int, optional
        Replace the configured value when given.

    Returns
    -------
    ScenarioSettings

    Raises
    ------
    pydantic.ValidationError
        For values outside the allowed ranges (e.g. ``draws < 1``, ``months > 120``).
    """
    settings = settings or ScenarioSettings()
    updates = {
        k: v for k, v in {"draws": draws, "months": months, "seed": seed}.items() if v is not None
    }
    return ScenarioSettings.model_validate({**settings.model_dump(), **updates})


def first_forecast_month(as_of: Any) -> pd.Timestamp:
    """Start of simulated month 1: the calendar month after the as-of date's month."""
    return (pd.Timestamp(as_of).to_period("M") + 1).start_time


def scenario_monthly(
    results: dict[str, SimulationResult],
    *,
    metric: Literal["revenue", "gross_profit"] = "revenue",
    start: Any = None,
) -> pd.DataFrame:
    """Monthly book quantiles of several scenarios in one tidy table (for fan charts).

    Parameters
    ----------
    results : dict of str to SimulationResult
        E.g. ``run_scenarios(...).results``.
    metric : {"revenue", "gross_profit"}
    start : date-like, optional
        Calendar date of month 1 (see :func:`first_forecast_month`); adds ``date``.

    Returns
    -------
    pandas.DataFrame
        ``scenario``, ``month`` (1..T), ``date`` (month start, when ``start``
        is given), ``mean``, ``p10``, ``p50``, ``p90``; scenarios in the order
        of ``results``.

    Raises
    ------
    ValueError
        For an unknown metric or no results.
    """
    if metric not in ("revenue", "gross_profit"):
        raise ValueError(f"metric must be 'revenue' or 'gross_profit', got {metric!r}")
    if not results:
        raise ValueError("scenario_monthly: no scenario results given")
    frames = []
    for name, res in results.items():
        part = res.monthly()
        part = part[part["metric"] == metric].drop(columns="metric")
        part.insert(0, "scenario", name)
        frames.append(part)
    out = pd.concat(frames, ignore_index=True)
    if start is not None:
        first = pd.Timestamp(start).to_period("M")
        out.insert(2, "date", [(first + int(m) - 1).start_time for m in out["month"]])
    return out


def book_history(
    monthly_revenue: pd.DataFrame,
    *,
    metric: Literal["revenue", "gross_profit"] = "revenue",
    last: int | None = 24,
) -> pd.Series:
    """The book's observed monthly total (all accounts), for the history line of a fan chart.

    Parameters
    ----------
    monthly_revenue : pandas.DataFrame
        ``month`` (date) and ``metric`` per account and month.
    metric : {"revenue", "gross_profit"}
    last : int or None, default 24
        Keep the last ``last`` months (None: all).

    Returns
    -------
    pandas.Series
        Indexed by month start (Timestamp), sorted.

    Raises
    ------
    ValueError
        For a missing column.
    """
    missing = [c for c in ("month", metric) if c not in monthly_revenue.columns]
    if missing:
        raise ValueError(f"book_history needs column(s) {missing}")
    months = pd.to_datetime(monthly_revenue["month"]).dt.to_period("M").dt.start_time
    total = monthly_revenue[metric].groupby(months.to_numpy()).sum().sort_index()
    total.index.name = "month"
    total.name = metric
    return total if last is None else total.iloc[-last:]


HHI_BANDS = ("unconcentrated", "moderate", "high")
"""HHI bands of the US merger guidelines (2010): < 1,500, 1,500-2,500, > 2,500."""


def hhi_band(hhi: float, *, moderate: float = 1500.0, high: float = 2500.0) -> str:
    """Band of an HHI value on the 0-10,000 scale (see :data:`HHI_BANDS`).

    Context only: the bands are those of markets, not a dependence test of a
    customer book (see :class:`ConcentrationThresholds`).

    Returns ``"not_available"`` for NaN (no account with revenue, see
    :func:`concentration_reason`).

    References
    ----------
    U.S. DOJ and FTC, *Horizontal Merger Guidelines* (2010), section 5.3.
    """
    if not moderate <= high:
        raise ValueError(f"need moderate <= high, got {moderate}, {high}")
    if np.isnan(hhi):
        return "not_available"
    if not np.isfinite(hhi):
        raise ValueError(f"hhi must be a finite number, got {hhi}")
    return HHI_BANDS[0] if hhi < moderate else HHI_BANDS[1] if hhi <= high else HHI_BANDS[2]


def concentration_dashboard(
    conc: pd.DataFrame,
    metrics: Sequence[str] = (
        "top1_share",
        "top5_share",
        "top10_share",
        "hhi",
        "equivalent_accounts",
    ),
) -> pd.DataFrame:
    """One row per metric with its revenue and gross-profit value and the flags.

    The shares carry the dependence tests; ``hhi`` and ``equivalent_accounts``
    (``10,000 / HHI``: the number of equal-sized accounts with the same HHI)
    are context, with a NaN threshold and never flagged.

    Parameters
    ----------
    conc : pandas.DataFrame
        :func:`concentration` output.
    metrics : sequence of str
        Metrics to keep, in this order.

    Returns
    -------
    pandas.DataFrame
        ``metric``, ``revenue``, ``gross_profit`` (NaN when absent),
        ``threshold`` (NaN when the metric has none), ``tested`` (it has a
        threshold), ``exceeds_revenue``, ``exceeds_gross_profit``, ``exceeds``
        (either basis) - bools.

    Raises
    ------
    ValueError
        For a missing column or a metric not in ``conc``.
    """
    missing = [c for c in ("basis", "metric", "value", "threshold", "exceeds") if c not in conc]
    if missing:
        raise ValueError(f"concentration_dashboard needs concentration() output; missing {missing}")
    unknown = [m for m in metrics if m not in set(conc["metric"])]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; available: {sorted(set(conc['metric']))}")
    part = conc[conc["metric"].isin(list(metrics))]
    value = part.pivot(index="metric", columns="basis", values="value")
    flags = part.pivot(index="metric", columns="basis", values="exceeds")
    out = pd.DataFrame({"metric": list(metrics)})
    for basis in ("revenue", "gross_profit"):
        out[basis] = out["metric"].map(value[basis]) if basis in value else np.nan
        out[f"exceeds_{basis}"] = (
            out["metric"].map(flags[basis]).fillna(False).astype(bool) if basis in flags else False
        )
    out["threshold"] = out["metric"].map(part.groupby("metric")["threshold"].first())
    out["tested"] = out["threshold"].notna()
    out["exceeds"] = out["exceeds_revenue"] | out["exceeds_gross_profit"]
    return out[
        [
            "metric",
            "revenue",
            "gross_profit",
            "threshold",
            "tested",
            "exceeds_revenue",
            "exceeds_gross_profit",
            "exceeds",
        ]
    ]


def pick_focus_account(
    book: pd.DataFrame,
    requested: str = "",
    key_accounts: Sequence[str] = (),
    *,
    required: bool = True,
) -> str | None:
    """The account for the negotiation and pricing analyses.

    Parameters
    ----------
    book : pandas.DataFrame
        The account book.
    requested : str, default ""
        An account id; "" picks the first of ``key_accounts`` that is in the
        book and has current revenue, else the account with the largest
        current revenue.
    key_accounts : sequence of str
        Key-account ids, best first.
    required : bool, default True
        When no account has current revenue (e.g. an as-of date long after
        the last sale): raise (True) or return None (False).

    Returns
    -------
    str or None
        None only with ``required=False`` and no account with current revenue.

    Raises
    ------
    ScenarioError
        When ``requested`` is not in the book or has no current revenue, or
        (with ``required``) no account has current revenue.
    """
    ids = book["account_id"].astype(str)
    revenue = pd.to_numeric(book["monthly_revenue"], errors="coerce").fillna(0.0)
    by_id = dict(zip(ids, revenue.to_numpy(float), strict=True))  # one pass, not per key account
    if requested:
        if requested not in by_id:
            raise ScenarioError(
                f"focus_account {requested!r} is not in the book; e.g. {list(ids.head(3))}"
            )
        if by_id[requested] <= 0:
            raise ScenarioError(
                f"focus_account {requested!r} has no current revenue to negotiate on"
            )
        return requested
    known = next((a for a in key_accounts if by_id.get(a, 0.0) > 0), None)
    if known is not None:
        return known
    if len(revenue) and float(revenue.max()) > 0:
        return str(ids.iloc[int(np.argmax(revenue.to_numpy()))])
    if required:
        raise ScenarioError("no account has current revenue to negotiate on")
    return None


def break_even_curve(margin: float, max_cut: float | None = None, points: int = 41) -> pd.DataFrame:
    """Volume increase needed to keep gross profit for price cuts from 0 to ``max_cut``.

    Parameters
    ----------
    margin : float
        Current gross margin, fraction in (0, 1].
    max_cut : float, optional
        Largest cut (fraction); default ``min(0.3, 0.8 * margin)``, which stays
        below the margin (where no volume is enough).
    points : int, default 41

    Returns
    -------
    pandas.DataFrame
        ``price_cut`` and ``volume_increase`` (fractions,
        :func:`break_even_volume_increase`; NaN at or beyond the margin, where
        no volume increase is enough, so that a chart shows a gap).

    Raises
    ------
    ValueError
        For a margin outside (0, 1], a negative ``max_cut`` or ``points < 2``.
    """
    if not 0 < margin <= 1:
        raise ValueError(f"margin must be in (0, 1] for a break-even curve, got {margin}")
    if points < 2:
        raise ValueError(f"points must be >= 2, got {points}")
    max_cut = min(0.3, 0.8 * margin) if max_cut is None else max_cut
    if not max_cut >= 0:
        raise ValueError(f"max_cut must be >= 0, got {max_cut}")
    cuts = np.linspace(0.0, max_cut, points)
    volume = np.array([break_even_volume_increase(margin, float(c)) for c in cuts])
    volume[np.isinf(volume)] = np.nan
    return pd.DataFrame({"price_cut": cuts, "volume_increase": volume})


BOOK_TORNADO_INPUTS = ("churn_multiplier", "growth_shift", "price_cut_pct", "top_accounts_lost")
"""Levers of :func:`book_tornado`."""


def book_tornado(
    book: pd.DataFrame,
    *,
    months: int = 36,
    metric: Literal["auto", "revenue", "gross_profit"] = "auto",
    ranges: dict[str, tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """Which book-level assumption moves the expected horizon total most (one at a time).

    Expected totals are closed-form (:func:`expected_account_paths`, no Monte
    Carlo noise). The base is the book as it is (multiplier 1, no shift, no
    cut, no loss); each lever moves alone to its low and high value:

    * ``churn_multiplier`` - monthly churn of every account times the factor;
    * ``growth_shift`` - annual growth points added to every account;
    * ``price_cut_pct`` - price cut (percent) on the whole book from month 1;
    * ``top_accounts_lost`` - the largest accounts by revenue lost at month 1
      (rounded to whole accounts).

    Parameters
    ----------
    book : pandas.DataFrame
        The account book.
    months : int, default 36
    metric : {"auto", "revenue", "gross_profit"}, default "auto"
        ``"auto"``: gross profit when the book's margin is known
        (:func:`book_margin_known`), else revenue. ``"gross_profit"`` with
        unknown margins raises.
    ranges : dict, optional
        Lever -> (low, high); defaults ``churn_multiplier`` (0.5, 2.0),
        ``growth_shift`` (-0.05, 0.05), ``price_cut_pct`` (0, 5),
        ``top_accounts_lost`` (0, 1). Given entries replace the defaults.

    Returns
    -------
    pandas.DataFrame
        :func:`kam_analysis.pricing.tornado` columns (``input``, ``base_value``,
        ``low_value``, ``high_value``, ``output_base``, ``output_low``,
        ``output_high``, ``swing``), largest swing first, plus ``metric``
        (the one used).

    Raises
    ------
    ValueError
        For an unknown lever or metric, or ``"gross_profit"`` with the book's
        margin unknown; :class:`ScenarioError` for an impossible value (e.g.
        growth shifted to <= -100 %).
    """

    if metric not in ("auto", "revenue", "gross_profit"):
        raise ValueError(f"metric must be 'auto', 'revenue' or 'gross_profit', got {metric!r}")
    book = validate_book(book)
    if metric == "auto":
        metric = "gross_profit" if book_margin_known(book) else "revenue"
    elif metric == "gross_profit" and not book_margin_known(book):
        raise ValueError("metric 'gross_profit' needs gross margins; the book's are unknown")
    limits = {
        "churn_multiplier": (0.5, 2.0),
        "growth_shift": (-0.05, 0.05),
        "price_cut_pct": (0.0, 5.0),
        "top_accounts_lost": (0.0, 1.0),
    }
    unknown = sorted(set(ranges or {}) - set(limits))
    if unknown:
        raise ValueError(f"unknown lever(s) {unknown}; known: {list(BOOK_TORNADO_INPUTS)}")
    limits.update(ranges or {})
    base = {
        "churn_multiplier": 1.0,
        "growth_shift": 0.0,
        "price_cut_pct": 0.0,
        "top_accounts_lost": 0,
    }

    def expected_total(values: dict[str, float]) -> float:
        shocks: list[Any] = [
            ChurnMultiplier(factor=values["churn_multiplier"]),
            GrowthShift(delta_annual=values["growth_shift"]),
        ]
        if values["price_cut_pct"] > 0:
            shocks.append(PriceCut(pct=values["price_cut_pct"]))
        k = int(round(values["top_accounts_lost"]))
        if k > 0:
            shocks.append(LoseTopK(k=k, month=1))
        resolved = resolve_scenario(Scenario(name="tornado", shocks=shocks), book, months=months)
        rev, gp, _ = expected_account_paths(book, resolved, months)
        return float((rev if metric == "revenue" else gp).sum())

    out = tornado(expected_total, base, limits)
    out["metric"] = metric
    return out

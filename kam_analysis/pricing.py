"""Value-based pricing: pricing-scheme comparison, customer ROI simulation, sensitivity.

The guide's step 3 asks for a value proposition in numbers (cost reduction,
revenue uplift, utilisation improvement) with separate messages for
executives and the field; its practices list flexible pricing schemes (fixed
plus outcome-based, tiered, introductory discounts); and its case patterns
answer procurement-led price pressure with an ROI simulation. This module
computes:

* :func:`simulate_roi` - the customer's payback, NPV and ROI of our offer from
  ranged inputs, with :func:`executive_summary` (one page) and
  :func:`field_detail` (monthly cash flows, ramp, drivers);
* :func:`compare_pricing_schemes` - our revenue and margin and the customer's
  net benefit under four pricing schemes, as distributions;
* :func:`tornado` / :func:`roi_tornado` - one-at-a-time sensitivity.

Uncertain inputs are :class:`Range` objects (low / mode / high, triangular or
PERT). Every simulation is seeded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import stats

from kam_analysis.core.errors import InputError
from kam_analysis.core.schemas import Accounts

QUANTILES = (0.10, 0.50, 0.90)


class PricingError(InputError, ValueError):
    """A pricing or ROI input breaks a rule."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Range(_Model):
    """An uncertain quantity: ``low <= mode <= high``.

    ``dist="pert"`` is the beta-PERT distribution with shape parameters
    ``1 + 4 (mode-low)/(high-low)`` and ``1 + 4 (high-mode)/(high-low)``;
    ``"triangular"`` the triangular one. ``low == high`` is a fixed value.

    References
    ----------
    Malcolm, D. G., Roseboom, J. H., Clark, C. E., Fazar, W. (1959).
    Application of a technique for research and development program
    evaluation. *Operations Research* 7(5), 646-669.
    Vose, D. (2008). *Risk Analysis: A Quantitative Guide*, 3rd ed., Wiley, ch. 9.
    """

    low: float
    mode: float
    high: float
    dist: Literal["pert", "triangular"] = "pert"

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        values = (self.low, self.mode, self.high)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"range values must be finite, got {values}")
        if not self.low <= self.mode <= self.high:
            raise ValueError(f"range must satisfy low <= mode <= high, got {values}")
        return self

    @classmethod
    def fixed(cls, value: float) -> Range:
        """A degenerate range (no uncertainty)."""
        return cls(low=value, mode=value, high=value)

    def scaled(self, factor: float) -> Range:
        """The range times a non-negative factor."""
        return Range(
            low=self.low * factor, mode=self.mode * factor, high=self.high * factor, dist=self.dist
        )

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` values (always consumes ``size`` uniforms, for common random numbers)."""
        return self.quantile(rng.random(size))

    def quantile(self, u: np.ndarray) -> np.ndarray:
        """The value at probability ``u`` (the inverse distribution function), elementwise."""
        u = np.asarray(u, dtype=float)
        if self.high == self.low:
            return np.full(u.shape, float(self.low))
        width = self.high - self.low
        if self.dist == "triangular":
            f = (self.mode - self.low) / width
            left = self.low + np.sqrt(u * width * (self.mode - self.low))
            right = self.high - np.sqrt((1 - u) * width * (self.high - self.mode))
            return np.where(u < f, left, right)
        a = 1 + 4 * (self.mode - self.low) / width
        b = 1 + 4 * (self.high - self.mode) / width
        return self.low + width * stats.beta.ppf(u, a, b)


def _as_range(value: Range | float) -> Range:
    return value if isinstance(value, Range) else Range.fixed(float(value))


class RoiInputs(_Model):
    """The customer's value from our offer, per year unless stated.

    Floats are fixed values; :class:`Range` values are uncertain.
    ``revenue_uplift_per_year`` counts at ``uplift_margin`` (set it to the
    customer's gross margin to count profit rather than revenue);
    ``hours_saved_per_year`` (the customer's staff hours) counts at
    ``cost_per_hour``. ``benefit_correlation`` is the correlation of the
    uncertain benefit inputs (:data:`BENEFIT_FIELDS`) with each other in
    :func:`simulate_roi` (a Gaussian copula); the other inputs are drawn
    independently.
    """

    cost_reduction_per_year: Range = Field(default_factory=lambda: Range.fixed(0.0))
    revenue_uplift_per_year: Range = Field(default_factory=lambda: Range.fixed(0.0))
    uplift_margin: float = Field(1.0, ge=0, le=1)
    utilisation_points: Range = Field(default_factory=lambda: Range.fixed(0.0))
    value_per_point_per_year: Range = Field(default_factory=lambda: Range.fixed(0.0))
    hours_saved_per_year: Range = Field(default_factory=lambda: Range.fixed(0.0))
    cost_per_hour: float = Field(0.0, ge=0)
    implementation_cost: Range = Field(default_factory=lambda: Range.fixed(0.0))
    annual_fee: Range = Field(default_factory=lambda: Range.fixed(0.0))
    adoption_ramp_months: Range = Field(default_factory=lambda: Range.fixed(0.0))
    benefit_correlation: float = Field(0.0, ge=0, lt=1)

    @model_validator(mode="before")
    @classmethod
    def _floats_to_ranges(cls, data: object) -> object:
        if isinstance(data, dict):
            return {
                k: (Range.fixed(v) if isinstance(v, int | float) and k in _RANGE_FIELDS else v)
                for k, v in data.items()
            }
        return data

    def annual_benefit_range(self) -> Range:
        """Full-adoption annual benefit, low / mode / high combined term by term.

        ``cost reduction + uplift x uplift_margin + points x value per point +
        hours x cost_per_hour``. Summing the ends is wider than the joint
        simulation's spread (every input at its low at once): a conservative
        range for engines that take one range (the pricing schemes).
        """
        ends = [
            getattr(self.cost_reduction_per_year, end)
            + getattr(self.revenue_uplift_per_year, end) * self.uplift_margin
            + getattr(self.utilisation_points, end) * getattr(self.value_per_point_per_year, end)
            + getattr(self.hours_saved_per_year, end) * self.cost_per_hour
            for end in ("low", "mode", "high")
        ]
        lo, mode, hi = ends
        return Range(low=min(lo, mode), mode=mode, high=max(hi, mode), dist="pert")

    @model_validator(mode="after")
    def _non_negative(self) -> RoiInputs:
        for name in ("implementation_cost", "annual_fee", "adoption_ramp_months"):
            if getattr(self, name).low < 0:
                raise ValueError(f"{name} must be >= 0, got low={getattr(self, name).low}")
        return self


DRIVERS = ("cost_reduction", "revenue_uplift", "utilisation", "time_saved")
BENEFIT_FIELDS = (
    "cost_reduction_per_year",
    "revenue_uplift_per_year",
    "utilisation_points",
    "value_per_point_per_year",
    "hours_saved_per_year",
)
"""The ranged inputs drawn correlated (``RoiInputs.benefit_correlation``)."""
_RANGE_FIELDS = (
    *BENEFIT_FIELDS,
    "implementation_cost",
    "annual_fee",
    "adoption_ramp_months",
)


@dataclass
class RoiResult:
    """Distribution of the customer's return on our offer.

    Attributes
    ----------
    npv, roi, payback_month : numpy.ndarray
        Per draw. ``roi = NPV / PV(implementation + fees)``; ``payback_month``
        is the first month whose cumulative undiscounted net cash flow
        (implementation included) is >= 0, NaN when not within the horizon.
    monthly_net : numpy.ndarray
        Net cash flow per draw and month (benefits - fee), shape (draws, months).
    monthly_benefit : numpy.ndarray
        Benefit per driver, draw and month, shape (4, draws, months), drivers
        in :data:`DRIVERS` order.
    ramp : numpy.ndarray
        Adoption factor per draw and month (0-1).
    monthly_fee, implementation_cost : numpy.ndarray
        Per draw.
    inputs : RoiInputs
    settings : dict
        draws, seed, discount_rate_annual, months.
    """

    npv: np.ndarray
    roi: np.ndarray
    payback_month: np.ndarray
    monthly_net: np.ndarray
    monthly_benefit: np.ndarray
    ramp: np.ndarray
    monthly_fee: np.ndarray
    implementation_cost: np.ndarray
    inputs: RoiInputs
    settings: dict


def _roi_from_values(
    values: Mapping[str, np.ndarray],
    uplift_margin: float,
    months: int,
    rate: float,
    cost_per_hour: float = 0.0,
):
    """Vectorised cash-flow model shared by the simulation and the deterministic NPV."""
    t = np.arange(1, months + 1)[None, :]
    ramp_m = np.asarray(values["adoption_ramp_months"], dtype=float)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ramp = np.where(ramp_m > 0, np.minimum(1.0, t / ramp_m), 1.0)
    annual = {
        "cost_reduction": np.asarray(values["cost_reduction_per_year"], dtype=float),
        "revenue_uplift": np.asarray(values["revenue_uplift_per_year"], dtype=float)
        * uplift_margin,
        "utilisation": np.asarray(values["utilisation_points"], dtype=float)
        * np.asarray(values["value_per_point_per_year"], dtype=float),
        "time_saved": np.asarray(values["hours_saved_per_year"], dtype=float) * cost_per_hour,
    }
    benefit = np.stack([annual[d][:, None] / 12 * ramp for d in DRIVERS])
    fee = np.asarray(values["annual_fee"], dtype=float) / 12
    impl = np.asarray(values["implementation_cost"], dtype=float)
    net = benefit.sum(axis=0) - fee[:, None]
    discount = (1 + rate) ** (-t / 12)
    npv = -impl + (net * discount).sum(axis=1)
    pv_cost = impl + fee * discount.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        roi = np.where(pv_cost > 0, npv / pv_cost, np.nan)
    cumulative = -impl[:, None] + np.cumsum(net, axis=1)
    paid = cumulative >= 0
    payback = np.where(paid.any(axis=1), paid.argmax(axis=1) + 1.0, np.nan)
    return npv, roi, payback, net, benefit, ramp, fee, impl


def _check_settings(draws: int, months: int, rate: float) -> None:
    if draws < 1 or months < 1:
        raise PricingError(f"draws and months must be >= 1, got draws={draws}, months={months}")
    if not rate > -1:
        raise PricingError(f"discount_rate_annual must be > -1, got {rate}")


def correlated_uniforms(
    rng: np.random.Generator, size: int, k: int, correlation: float
) -> np.ndarray:
    """Uniforms with a Gaussian copula of equal pairwise correlation.

    ``z_j = sqrt(rho) w + sqrt(1 - rho) e_j`` with independent standard normals
    ``w, e_1..e_k``, so ``corr(z_i, z_j) = rho``; the result is ``Phi(z)``.
    Pass the columns to :meth:`Range.quantile` to get correlated inputs with
    the ranges' own marginal distributions.

    Parameters
    ----------
    rng : numpy.random.Generator
    size : int
        Draws (rows).
    k : int
        Variables (columns).
    correlation : float
        ``rho`` in [0, 1).

    Returns
    -------
    numpy.ndarray
        Shape (size, k), values in (0, 1).

    Raises
    ------
    PricingError
        For a correlation outside [0, 1).

    References
    ----------
    Nelsen, R. B. (2006). *An Introduction to Copulas*, 2nd ed., Springer, sec. 5.3.
    """
    if not 0 <= correlation < 1:
        raise PricingError(f"correlation must be in [0, 1), got {correlation}")
    common = rng.standard_normal((size, 1))
    own = rng.standard_normal((size, k))
    z = math.sqrt(correlation) * common + math.sqrt(1 - correlation) * own
    return stats.norm.cdf(z)


def simulate_roi(
    inputs: RoiInputs,
    draws: int = 10_000,
    seed: int = 0,
    discount_rate_annual: float = 0.08,
    months: int = 36,
) -> RoiResult:
    """Monte Carlo of the customer's payback, NPV and ROI of our offer.

    Each month ``t = 1..months`` the customer gains
    ``(cost reduction + uplift x uplift_margin + points x value per point +
    hours saved x cost_per_hour) / 12`` times the adoption ramp
    ``min(1, t / ramp_months)`` (1 when the ramp is 0) and pays
    ``annual_fee / 12``; the implementation cost is paid at month 0. Cash
    flows are discounted at ``(1 + r)^(-t/12)``. The benefit inputs are drawn
    with correlation ``inputs.benefit_correlation`` (:func:`correlated_uniforms`):
    a good year for one driver tends to be a good year for the others, which
    widens the spread of NPV and ROI against independent draws.

    Parameters
    ----------
    inputs : RoiInputs
    draws : int, default 10000
    seed : int, default 0
    discount_rate_annual : float, default 0.08
    months : int, default 36

    Returns
    -------
    RoiResult

    Raises
    ------
    PricingError
        For non-positive draws or months or a rate <= -100 %.
    """
    _check_settings(draws, months, discount_rate_annual)
    rng = np.random.default_rng(seed)
    u = correlated_uniforms(rng, draws, len(BENEFIT_FIELDS), inputs.benefit_correlation)
    values = {
        name: getattr(inputs, name).quantile(u[:, j]) for j, name in enumerate(BENEFIT_FIELDS)
    }
    values |= {
        name: getattr(inputs, name).sample(rng, draws)
        for name in _RANGE_FIELDS
        if name not in BENEFIT_FIELDS
    }
    npv, roi, payback, net, benefit, ramp, fee, impl = _roi_from_values(
        values, inputs.uplift_margin, months, discount_rate_annual, inputs.cost_per_hour
    )
    settings = {
        "draws": draws,
        "seed": seed,
        "discount_rate_annual": discount_rate_annual,
        "months": months,
    }
    return RoiResult(npv, roi, payback, net, benefit, ramp, fee, impl, inputs, settings)


def roi_at(
    inputs: RoiInputs,
    overrides: Mapping[str, float] | None = None,
    *,
    discount_rate_annual: float = 0.08,
    months: int = 36,
) -> dict[str, float]:
    """Deterministic NPV, ROI and payback at the modes (optionally overriding some inputs).

    Parameters
    ----------
    inputs : RoiInputs
    overrides : mapping, optional
        Field name -> fixed value.
    discount_rate_annual, months
        As in :func:`simulate_roi`.

    Returns
    -------
    dict
        ``npv``, ``roi``, ``payback_month``.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(_RANGE_FIELDS))
    if unknown:
        raise PricingError(f"unknown ROI input(s) {unknown}; known: {list(_RANGE_FIELDS)}")
    values = {
        name: np.array([overrides.get(name, getattr(inputs, name).mode)], dtype=float)
        for name in _RANGE_FIELDS
    }
    npv, roi, payback, *_ = _roi_from_values(
        values, inputs.uplift_margin, months, discount_rate_annual, inputs.cost_per_hour
    )
    return {"npv": float(npv[0]), "roi": float(roi[0]), "payback_month": float(payback[0])}


def executive_summary(result: RoiResult) -> pd.DataFrame:
    """The one-page message for executives.

    Returns
    -------
    pandas.DataFrame
        ``metric``, ``value`` (the headline: P50 or a probability), ``p10``,
        ``p90``, ``unit``. Metrics: ``npv``, ``roi``, ``payback_month`` (over
        draws that pay back), ``prob_npv_positive``,
        ``prob_payback_within_horizon``, ``total_benefit`` (undiscounted,
        over the horizon), ``total_cost`` (implementation + fees).
    """
    months = result.settings["months"]
    benefit_total = result.monthly_benefit.sum(axis=(0, 2))
    cost_total = result.implementation_cost + result.monthly_fee * months
    paid = result.payback_month[np.isfinite(result.payback_month)]

    def q(x: np.ndarray) -> tuple[float, float, float]:
        if x.size == 0:
            return (np.nan, np.nan, np.nan)
        a = np.quantile(x, QUANTILES)
        return float(a[1]), float(a[0]), float(a[2])

    rows = [
        ("npv", *q(result.npv), "currency (present value)"),
        ("roi", *q(result.roi[np.isfinite(result.roi)]), "NPV / PV of costs"),
        ("payback_month", *q(paid), "month"),
        ("prob_npv_positive", float(np.mean(result.npv > 0)), np.nan, np.nan, "probability"),
        (
            "prob_payback_within_horizon",
            float(np.isfinite(result.payback_month).mean()),
            np.nan,
            np.nan,
            "probability",
        ),
        ("total_benefit", *q(benefit_total), "currency (undiscounted)"),
        ("total_cost", *q(cost_total), "currency (undiscounted)"),
    ]
    return pd.DataFrame(rows, columns=["metric", "value", "p10", "p90", "unit"])


def field_detail(result: RoiResult) -> pd.DataFrame:
    """Month-by-month detail for the field team.

    Returns
    -------
    pandas.DataFrame
        One row per month: ``month``, ``ramp`` (mean adoption factor), mean
        monthly benefit per driver (:data:`DRIVERS`), ``fee`` (mean), ``net_p10``, ``net_p50``,
        ``net_p90`` and ``cumulative_p10``, ``cumulative_p50``,
        ``cumulative_p90`` (cumulative net cash flow incl. implementation).
    """
    months = result.monthly_net.shape[1]
    out = pd.DataFrame({"month": np.arange(1, months + 1), "ramp": result.ramp.mean(axis=0)})
    for j, driver in enumerate(DRIVERS):
        out[driver] = result.monthly_benefit[j].mean(axis=0)
    out["fee"] = result.monthly_fee.mean()
    net_q = np.quantile(result.monthly_net, QUANTILES, axis=0)
    cumulative = -result.implementation_cost[:, None] + np.cumsum(result.monthly_net, axis=1)
    cum_q = np.quantile(cumulative, QUANTILES, axis=0)
    for label, qs in (("net", net_q), ("cumulative", cum_q)):
        out[f"{label}_p10"], out[f"{label}_p50"], out[f"{label}_p90"] = qs
    return out


# ---------------------------------------------------------------------------
# Sensitivity
# ---------------------------------------------------------------------------


def tornado(
    model_fn: Callable[[dict[str, float]], float],
    base_inputs: Mapping[str, float],
    ranges: Mapping[str, tuple[float, float]],
) -> pd.DataFrame:
    """One-at-a-time sensitivity: the output swing of each input over its range.

    Parameters
    ----------
    model_fn : callable
        Takes a dict of inputs, returns a number.
    base_inputs : mapping
        Every input at its base value.
    ranges : mapping
        Input -> (low, high); each input is moved alone, the rest stay at base.

    Returns
    -------
    pandas.DataFrame
        ``input``, ``base_value``, ``low_value``, ``high_value``,
        ``output_base``, ``output_low``, ``output_high``, ``swing``
        (``|output_high - output_low|``), sorted by swing, largest first.

    Raises
    ------
    PricingError
        When a range names an input not in ``base_inputs`` or low > high.
    """
    unknown = sorted(set(ranges) - set(base_inputs))
    if unknown:
        raise PricingError(f"ranges name unknown input(s) {unknown}; known: {sorted(base_inputs)}")
    base = dict(base_inputs)
    out_base = float(model_fn(dict(base)))
    rows = []
    for name, (low, high) in ranges.items():
        if low > high:
            raise PricingError(f"range of {name!r} has low {low} > high {high}")
        lo_out = float(model_fn({**base, name: low}))
        hi_out = float(model_fn({**base, name: high}))
        rows.append(
            {
                "input": name,
                "base_value": base[name],
                "low_value": low,
                "high_value": high,
                "output_base": out_base,
                "output_low": lo_out,
                "output_high": hi_out,
                "swing": abs(hi_out - lo_out),
            }
        )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    return table.sort_values("swing", ascending=False, kind="stable").reset_index(drop=True)


def roi_tornado(
    inputs: RoiInputs,
    *,
    metric: Literal["npv", "roi", "payback_month"] = "npv",
    discount_rate_annual: float = 0.08,
    months: int = 36,
) -> pd.DataFrame:
    """Tornado of the customer's NPV (or ROI, payback) over each ranged input.

    Base = all modes; each uncertain input (``low < high``) goes to its low and
    high value alone. Columns as in :func:`tornado`.
    """
    base = {name: getattr(inputs, name).mode for name in _RANGE_FIELDS}
    ranges = {
        name: (getattr(inputs, name).low, getattr(inputs, name).high)
        for name in _RANGE_FIELDS
        if getattr(inputs, name).high > getattr(inputs, name).low
    }

    def model(values: dict[str, float]) -> float:
        return roi_at(inputs, values, discount_rate_annual=discount_rate_annual, months=months)[
            metric
        ]

    return tornado(model, base, ranges)


# ---------------------------------------------------------------------------
# Pricing schemes
# ---------------------------------------------------------------------------


class Tier(_Model):
    """Graduated volume tier: ``unit_price`` for units up to ``up_to`` per month (None = no cap)."""

    up_to: float | None = None
    unit_price: float = Field(ge=0)


class PricingSchemes(_Model):
    """Four schemes for one account, per month over a contract of ``months``.

    * ``fixed``: ``fixed_fee_monthly``.
    * ``fixed_plus_outcome``: ``outcome_fixed_fee_monthly`` plus
      ``outcome_share`` of the customer's measured savings (capped at
      ``outcome_cap_monthly``).
    * ``tiered``: graduated price on the monthly volume (``tiers``).
    * ``intro_discount``: ``list_fee_monthly`` less ``intro_discount_pct``
      percent for the first ``intro_months``.

    Our cost per month: ``fixed_cost_monthly + unit_cost x volume``. When
    ``review_month`` is set, a customer whose monthly net benefit (savings -
    price) after that month would be negative leaves at that month.
    """

    months: int = Field(36, ge=1)
    fixed_fee_monthly: float = Field(ge=0)
    outcome_fixed_fee_monthly: float = Field(ge=0)
    outcome_share: float = Field(ge=0, le=1)
    outcome_cap_monthly: float | None = Field(None, ge=0)
    tiers: list[Tier] = Field(min_length=1)
    list_fee_monthly: float = Field(ge=0)
    intro_discount_pct: float = Field(0.0, ge=0, lt=100)
    intro_months: int = Field(0, ge=0)
    unit_cost: float = Field(0.0, ge=0)
    fixed_cost_monthly: float = Field(0.0, ge=0)
    review_month: int | None = Field(12, ge=1)

    @model_validator(mode="after")
    def _tiers_ordered(self) -> PricingSchemes:
        caps = [t.up_to for t in self.tiers]
        if any(c is None for c in caps[:-1]):
            raise ValueError("only the last tier may have up_to = None")
        finite = [c for c in caps if c is not None]
        if finite != sorted(finite) or len(set(finite)) != len(finite):
            raise ValueError(f"tier up_to values must increase, got {caps}")
        return self


SCHEMES = ("fixed", "fixed_plus_outcome", "tiered", "intro_discount")


def tiered_price(volume: np.ndarray, tiers: list[Tier]) -> np.ndarray:
    """Graduated price of a monthly volume: each tier's units at that tier's price."""
    volume = np.asarray(volume, dtype=float)
    price = np.zeros_like(volume)
    lower = 0.0
    for tier in tiers:
        upper = math.inf if tier.up_to is None else tier.up_to
        price += np.clip(volume - lower, 0, upper - lower) * tier.unit_price
        lower = upper
    return price


def simulate_pricing_schemes(
    schemes: PricingSchemes,
    *,
    savings_per_month: Range,
    volume_per_month: Range,
    draws: int = 10_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Per-draw outcome of each pricing scheme over the contract term.

    The customer's measured savings (or uplift) per month and the monthly
    volume are drawn once per draw (independently) and held for the term.

    Parameters
    ----------
    schemes : PricingSchemes
    savings_per_month : Range
        The customer's measured monthly savings / uplift.
    volume_per_month : Range
        Monthly units (drives tiered price and our unit cost).
    draws : int, default 10000
    seed : int, default 0

    Returns
    -------
    pandas.DataFrame
        Tidy: ``draw``, ``scheme``, ``revenue`` (ours over the term),
        ``gross_profit`` (revenue - our costs), ``customer_net_benefit``
        (savings - price over the months served), ``months_served``.
    """
    if draws < 1:
        raise PricingError(f"draws must be >= 1, got {draws}")
    rng = np.random.default_rng(seed)
    savings = savings_per_month.sample(rng, draws)
    volume = volume_per_month.sample(rng, draws)
    if (volume < 0).any():
        raise PricingError("volume_per_month must be >= 0")
    s = schemes
    t = np.arange(1, s.months + 1)[None, :]
    share = s.outcome_share * np.maximum(savings, 0)
    if s.outcome_cap_monthly is not None:
        share = np.minimum(share, s.outcome_cap_monthly)
    intro = np.where(t <= s.intro_months, 1 - s.intro_discount_pct / 100, 1.0)
    prices = {
        "fixed": np.full((draws, 1), s.fixed_fee_monthly) * np.ones_like(t),
        "fixed_plus_outcome": (s.outcome_fixed_fee_monthly + share)[:, None] * np.ones_like(t),
        "tiered": tiered_price(volume, s.tiers)[:, None] * np.ones_like(t),
        "intro_discount": s.list_fee_monthly * intro * np.ones((draws, 1)),
    }
    cost = s.fixed_cost_monthly + s.unit_cost * volume
    frames = []
    for scheme in SCHEMES:
        price = prices[scheme]
        served = np.full(draws, s.months)
        if s.review_month is not None and s.review_month < s.months:
            after = price[:, s.review_month]  # price in the month after the review
            served = np.where(savings - after < 0, s.review_month, s.months)
        active = t <= served[:, None]
        revenue = (price * active).sum(axis=1)
        frames.append(
            pd.DataFrame(
                {
                    "draw": np.arange(draws),
                    "scheme": scheme,
                    "revenue": revenue,
                    "gross_profit": revenue - cost * served,
                    "customer_net_benefit": ((savings[:, None] - price) * active).sum(axis=1),
                    "months_served": served,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def compare_pricing_schemes(
    schemes: PricingSchemes,
    *,
    savings_per_month: Range,
    volume_per_month: Range,
    draws: int = 10_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Distributions of our revenue and margin and the customer's net benefit per scheme.

    Parameters are those of :func:`simulate_pricing_schemes`.

    Returns
    -------
    pandas.DataFrame
        Tidy: ``scheme``, ``metric`` (``revenue``, ``gross_profit``,
        ``customer_net_benefit``, ``months_served``), ``mean``, ``p10``,
        ``p50``, ``p90``, and ``prob_negative`` (share of draws below 0).
    """
    draws_frame = simulate_pricing_schemes(
        schemes,
        savings_per_month=savings_per_month,
        volume_per_month=volume_per_month,
        draws=draws,
        seed=seed,
    )
    rows = []
    for scheme in SCHEMES:
        part = draws_frame[draws_frame["scheme"] == scheme]
        for metric in ("revenue", "gross_profit", "customer_net_benefit", "months_served"):
            x = part[metric].to_numpy(float)
            q = np.quantile(x, QUANTILES)
            rows.append(
                {
                    "scheme": scheme,
                    "metric": metric,
                    "mean": x.mean(),
                    "p10": q[0],
                    "p50": q[1],
                    "p90": q[2],
                    "prob_negative": float(np.mean(x < 0)),
                }
            )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# The customer's value drivers for one account (sized from the customer's scale)
# ---------------------------------------------------------------------------

LOADED_COST_PER_HOUR: dict[str, float] = {"JPY": 3_500.0, "USD": 45.0, "EUR": 35.0, "GBP": 30.0}
"""Default cost of one staff hour (wage plus employer costs) by currency: an assumption.

Rounded from national averages (about 2023-24): Japan (wage statistics plus
social insurance, ~1,900 hours a year), the US BLS *Employer Costs for
Employee Compensation*, Eurostat hourly labour costs (euro area) and the UK.
Other currencies have no default: set ``[pricing.value] loaded_cost_per_hour``.
"""


def _to_range(value: object) -> object:
    return Range.fixed(float(value)) if isinstance(value, int | float) else value


class AccountValueInputs(_Model):
    """Measured value drivers of one account (``[pricing.value.accounts.<id>]``).

    Each field, when given, replaces the one sized from the customer's scale;
    numbers are fixed values, tables ``{low, mode, high}`` ranges. Money per
    year in the base currency.
    """

    cost_reduction_per_year: Range | None = None
    revenue_uplift_per_year: Range | None = None
    hours_saved_per_year: Range | None = None
    implementation_cost: Range | None = None
    adoption_ramp_months: Range | None = None

    @model_validator(mode="before")
    @classmethod
    def _floats_to_ranges(cls, data: object) -> object:
        if isinstance(data, dict):
            return {k: _to_range(v) for k, v in data.items()}
        return data


class ValueAssumptions(_Model):
    """How the customer's value from our offer is sized when it has not been measured.

    The benefits scale with the customer's own size, not with our fee:

    * time saved: ``hours_saved_per_employee x employees`` hours a year at
      ``loaded_cost_per_hour`` (None: :data:`LOADED_COST_PER_HOUR` for the
      base currency);
    * cost reduction: ``cost_reduction_share_of_wallet x wallet`` a year (the
      customer's total cost of ownership in our category falls: fewer
      defects, less stock, lower process cost);
    * revenue uplift: ``revenue_uplift_share_of_wallet x wallet`` a year,
      counted at ``uplift_margin``.

    ``wallet`` is the customer's annual spend in our category (accounts
    ``wallet_estimate``), ``employees`` its headcount. The implementation cost
    is a multiple of the annual fee (the onboarding project grows with the
    contract); the ramp is in months. ``benefit_correlation`` correlates the
    uncertain benefit inputs in the simulation. ``accounts`` holds measured
    values per account id (:class:`AccountValueInputs`), which replace the
    sized ones. The defaults are assumptions, not data (the
    ``[pricing.value]`` section of ``kam.toml``).
    """

    hours_saved_per_employee: Range = Field(
        default_factory=lambda: Range(low=8.0, mode=24.0, high=48.0)
    )
    loaded_cost_per_hour: float | None = Field(None, ge=0)
    cost_reduction_share_of_wallet: Range = Field(
        default_factory=lambda: Range(low=0.05, mode=0.15, high=0.30)
    )
    revenue_uplift_share_of_wallet: Range = Field(
        default_factory=lambda: Range(low=0.0, mode=0.4, high=1.0)
    )
    uplift_margin: float = Field(0.25, ge=0, le=1)
    implementation_cost: Range = Field(default_factory=lambda: Range(low=0.1, mode=0.25, high=0.5))
    adoption_ramp_months: Range = Field(default_factory=lambda: Range(low=3.0, mode=6.0, high=12.0))
    benefit_correlation: float = Field(0.5, ge=0, lt=1)
    accounts: dict[str, AccountValueInputs] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _non_negative(self) -> ValueAssumptions:
        for name in (
            "hours_saved_per_employee",
            "cost_reduction_share_of_wallet",
            "implementation_cost",
            "adoption_ramp_months",
        ):
            if getattr(self, name).low < 0:
                raise ValueError(f"{name} must be >= 0, got low={getattr(self, name).low}")
        return self

    def cost_per_hour(self, currency: str) -> float | None:
        """``loaded_cost_per_hour``, else the default for ``currency`` (None when it has none)."""
        if self.loaded_cost_per_hour is not None:
            return self.loaded_cost_per_hour
        return LOADED_COST_PER_HOUR.get(currency)


VALUE_DRIVERS = ("time_saved", "cost_reduction", "revenue_uplift")
"""The benefit drivers :func:`roi_inputs_for_account` sizes, in page order."""
VALUE_SOURCES = ("account", "employees", "wallet", "no_employees", "no_wallet", "no_cost_per_hour")
"""Where a driver's value comes from: measured (``account``), sized from the
customer's scale (``employees``, ``wallet``), or left at 0 because that scale
(or the cost of an hour) is unknown."""


class AccountValue(NamedTuple):
    """The customer's value model for one account (:func:`roi_inputs_for_account`).

    ``inputs`` is None when no benefit driver could be sized; ``sources`` maps
    each of :data:`VALUE_DRIVERS` to one of :data:`VALUE_SOURCES`.
    """

    inputs: RoiInputs | None
    sources: dict[str, str]


def _known(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x >= 0


def _sized_drivers(
    a: ValueAssumptions, employees: float | None, wallet: float | None, cost_per_hour: float | None
) -> tuple[dict[str, Range], dict[str, str]]:
    """The benefit inputs sized from the customer's scale, and their sources."""
    values: dict[str, Range] = {}
    sources: dict[str, str] = {}
    if not _known(employees):
        sources["time_saved"] = "no_employees"
    elif cost_per_hour is None:
        sources["time_saved"] = "no_cost_per_hour"
    else:
        values["hours_saved_per_year"] = a.hours_saved_per_employee.scaled(float(employees))
        sources["time_saved"] = "employees"
    for driver, field, share in (
        ("cost_reduction", "cost_reduction_per_year", a.cost_reduction_share_of_wallet),
        ("revenue_uplift", "revenue_uplift_per_year", a.revenue_uplift_share_of_wallet),
    ):
        if _known(wallet):
            values[field] = share.scaled(float(wallet))
            sources[driver] = "wallet"
        else:
            sources[driver] = "no_wallet"
    return values, sources


def roi_inputs_for_account(
    annual_fee: float,
    *,
    employees: float | None = None,
    wallet: float | None = None,
    account_id: str = "",
    assumptions: ValueAssumptions | None = None,
    currency: str = "JPY",
) -> AccountValue:
    """ROI inputs for one account, with the benefits sized from the customer's own scale.

    Parameters
    ----------
    annual_fee : float
        What the customer pays us per year for the offer (e.g. its trailing
        12-month revenue with us), > 0.
    employees : float, optional
        The customer's headcount (None / NaN: unknown).
    wallet : float, optional
        The customer's annual spend in our category (None / NaN: unknown).
    account_id : str, default ""
        Looks up measured values in ``assumptions.accounts``.
    assumptions : ValueAssumptions, optional
        Defaults when None.
    currency : str, default "JPY"
        Base currency, for the default cost of an hour.

    Returns
    -------
    AccountValue
        ``inputs``: time saved ``hours_saved_per_employee x employees`` at the
        cost of an hour, cost reduction and revenue uplift as shares of the
        wallet, implementation cost ``multiple x annual_fee``, the ramp, the
        fee fixed at ``annual_fee`` and ``benefit_correlation`` - each replaced
        by a measured value of the account when one is given; None when no
        driver is measured or sizable. ``sources`` per driver.

    Raises
    ------
    PricingError
        For a fee that is not a positive number.
    """
    if not (math.isfinite(annual_fee) and annual_fee > 0):
        raise PricingError(f"annual_fee must be a positive number, got {annual_fee}")
    a = assumptions or ValueAssumptions()
    values, sources = _sized_drivers(a, employees, wallet, a.cost_per_hour(currency))
    measured = a.accounts.get(account_id, AccountValueInputs()).model_dump(exclude_none=True)
    for driver, field in (
        ("time_saved", "hours_saved_per_year"),
        ("cost_reduction", "cost_reduction_per_year"),
        ("revenue_uplift", "revenue_uplift_per_year"),
    ):
        if field in measured:
            values[field] = Range(**measured[field])
            sources[driver] = "account"
    if not values:
        return AccountValue(None, sources)
    cost_per_hour = a.cost_per_hour(currency) or 0.0
    if (
        "hours_saved_per_year" in values
        and sources["time_saved"] == "account"
        and not cost_per_hour
    ):
        sources["time_saved"] = "no_cost_per_hour"
    inputs = RoiInputs(
        **values,
        uplift_margin=a.uplift_margin,
        cost_per_hour=cost_per_hour,
        implementation_cost=Range(**measured["implementation_cost"])
        if "implementation_cost" in measured
        else a.implementation_cost.scaled(annual_fee),
        annual_fee=Range.fixed(annual_fee),
        adoption_ramp_months=Range(**measured["adoption_ramp_months"])
        if "adoption_ramp_months" in measured
        else a.adoption_ramp_months,
        benefit_correlation=a.benefit_correlation,
    )
    return AccountValue(inputs, sources)


def account_scale(accounts: pd.DataFrame | None, account_id: str) -> tuple[float, float]:
    """The customer's headcount and wallet from the accounts table (NaN when unknown).

    Parameters
    ----------
    accounts : pandas.DataFrame or None
        The accounts table (``account_id``; optional ``employees``,
        ``wallet_estimate``); None when the dataset has none.
    account_id : str

    Returns
    -------
    (float, float)
        ``employees``, ``wallet_estimate``; NaN when the table, the column or
        the value is missing.
    """
    if accounts is None or Accounts.account_id not in accounts.columns:
        return math.nan, math.nan
    rows = accounts[accounts[Accounts.account_id].astype(str) == str(account_id)]

    def first(column: str) -> float:
        if column not in rows.columns or rows.empty:
            return math.nan
        value = pd.to_numeric(rows[column], errors="coerce").iloc[0]
        return float(value) if pd.notna(value) else math.nan

    return first(Accounts.employees), first(Accounts.wallet_estimate)


class SchemeAssumptions(_Model):
    """How the four pricing schemes are set for one account, relative to today's price.

    Volume is measured so that the current monthly volume is 100 units at a
    unit price of ``current monthly fee / 100``.

    * ``fixed``: the current monthly fee.
    * ``fixed_plus_outcome``: ``outcome_fixed_share`` of the current fee plus
      ``outcome_share`` of the customer's measured savings, capped at
      ``outcome_cap_multiple`` x the current fee (None: no cap).
    * ``tiered``: graduated unit prices ``tier_prices`` (multiples of the
      current unit price) with breaks at ``tier_breaks`` (multiples of the
      current volume); one more price than breaks.
    * ``intro_discount``: ``list_price_multiple`` x the current fee, less
      ``intro_discount_pct`` percent for the first ``intro_months``.

    ``volume`` is the monthly volume as a multiple of today's; our unit cost is
    ``(1 - margin)`` of the current unit price. ``review_month``: see
    :class:`PricingSchemes`.
    """

    outcome_fixed_share: float = Field(0.6, ge=0)
    outcome_share: float = Field(0.3, ge=0, le=1)
    outcome_cap_multiple: float | None = Field(1.5, ge=0)
    tier_breaks: list[float] = Field(default_factory=lambda: [0.8, 1.2])
    tier_prices: list[float] = Field(default_factory=lambda: [1.05, 0.95, 0.85])
    intro_discount_pct: float = Field(20.0, ge=0, lt=100)
    intro_months: int = Field(6, ge=0)
    list_price_multiple: float = Field(1.05, ge=0)
    volume: Range = Field(default_factory=lambda: Range(low=0.8, mode=1.0, high=1.3))
    review_month: int | None = Field(12, ge=1)

    @model_validator(mode="after")
    def _tiers_match(self) -> SchemeAssumptions:
        if len(self.tier_prices) != len(self.tier_breaks) + 1:
            raise ValueError(
                f"tier_prices needs one more entry than tier_breaks; got "
                f"{len(self.tier_prices)} prices for {len(self.tier_breaks)} breaks"
            )
        if self.tier_breaks != sorted(self.tier_breaks) or any(b <= 0 for b in self.tier_breaks):
            raise ValueError(f"tier_breaks must be positive and increasing, got {self.tier_breaks}")
        if any(p < 0 for p in self.tier_prices):
            raise ValueError(f"tier_prices must be >= 0, got {self.tier_prices}")
        if self.volume.low < 0:
            raise ValueError(f"volume must be >= 0, got low={self.volume.low}")
        return self


class AccountPricing(NamedTuple):
    """Inputs of :func:`compare_pricing_schemes` for one account."""

    schemes: PricingSchemes
    savings_per_month: Range
    volume_per_month: Range


UNITS_AT_CURRENT_VOLUME = 100.0
"""Monthly units that stand for the account's current volume in :func:`pricing_for_account`."""


def pricing_for_account(
    annual_revenue: float,
    margin: float,
    *,
    value: RoiInputs,
    months: int = 36,
    schemes: SchemeAssumptions | None = None,
) -> AccountPricing:
    """The four pricing schemes, the customer's savings and the volume for one account.

    Parameters
    ----------
    annual_revenue : float
        The account's current annual revenue with us (> 0); today's monthly fee
        is a twelfth of it.
    margin : float
        Our current gross margin on the account (fraction <= 1); unit cost
        ``(1 - margin) x`` the current unit price.
    value : RoiInputs
        The customer's value model (:func:`roi_inputs_for_account`); its
        full-adoption benefit range (:meth:`RoiInputs.annual_benefit_range`) / 12
        is the customer's measured monthly savings.
    months : int, default 36
        Contract term.
    schemes : SchemeAssumptions, optional

    Returns
    -------
    AccountPricing
        ``schemes`` (:class:`PricingSchemes`), ``savings_per_month`` and
        ``volume_per_month`` (units, 100 = today) ranges.

    Raises
    ------
    PricingError
        For a non-positive revenue, a margin above 1 or a non-positive term.
    """
    if not (math.isfinite(annual_revenue) and annual_revenue > 0):
        raise PricingError(f"annual_revenue must be a positive number, got {annual_revenue}")
    if not (math.isfinite(margin) and margin <= 1):
        raise PricingError(f"margin must be a fraction <= 1, got {margin}")
    if months < 1:
        raise PricingError(f"months must be >= 1, got {months}")
    s = schemes or SchemeAssumptions()
    fee = annual_revenue / 12
    unit_price = fee / UNITS_AT_CURRENT_VOLUME
    breaks = [b * UNITS_AT_CURRENT_VOLUME for b in s.tier_breaks] + [None]
    tiers = [
        Tier(up_to=b, unit_price=p * unit_price) for b, p in zip(breaks, s.tier_prices, strict=True)
    ]
    review = s.review_month if s.review_month is not None and s.review_month < months else None
    plan = PricingSchemes(
        months=months,
        fixed_fee_monthly=fee,
        outcome_fixed_fee_monthly=s.outcome_fixed_share * fee,
        outcome_share=s.outcome_share,
        outcome_cap_monthly=None
        if s.outcome_cap_multiple is None
        else s.outcome_cap_multiple * fee,
        tiers=tiers,
        list_fee_monthly=s.list_price_multiple * fee,
        intro_discount_pct=s.intro_discount_pct,
        intro_months=min(s.intro_months, months),
        unit_cost=max(0.0, 1 - margin) * unit_price,
        fixed_cost_monthly=0.0,
        review_month=review,
    )
    return AccountPricing(
        plan,
        value.annual_benefit_range().scaled(1 / 12),
        s.volume.scaled(UNITS_AT_CURRENT_VOLUME),
    )


def field_milestones(
    detail: pd.DataFrame, months: tuple[int, ...] = (1, 3, 6, 12, 18, 24, 36)
) -> pd.DataFrame:
    """Selected months of :func:`field_detail` for a compact table (the last month always).

    Parameters
    ----------
    detail : pandas.DataFrame
        :func:`field_detail` output.
    months : tuple of int
        Months to show; those beyond the horizon are dropped.

    Returns
    -------
    pandas.DataFrame
        The rows of ``detail`` for those months plus its last month, in month
        order, with ``benefit`` (sum of the drivers' mean monthly
        benefit) added after ``ramp``.

    Raises
    ------
    PricingError
        When ``detail`` lacks ``month`` or the driver columns.
    """
    needed = ["month", "ramp", *DRIVERS]
    missing = [c for c in needed if c not in detail.columns]
    if missing:
        raise PricingError(f"field_milestones needs field_detail output; missing {missing}")
    last = int(detail["month"].max())
    keep = sorted({m for m in months if 1 <= m <= last} | {last})
    out = detail[detail["month"].isin(keep)].reset_index(drop=True)
    out.insert(out.columns.get_loc("ramp") + 1, "benefit", out[list(DRIVERS)].sum(axis=1))
    return out


class PricingSettings(_Model):
    """Defaults for ROI and pricing simulations (the ``[pricing]`` section of ``kam.toml``).

    ``price_cut_pct`` is the cut procurement asks for in the negotiation
    analysis, ``price_cut_volume_change`` the volume change the cut is
    expected to bring (fraction; 0: none) and ``walk_away_loss_prob`` the
    probability of losing the account if we refuse the cut (an assumption, set
    per negotiation); ``value`` and ``schemes`` set the per-account assumptions
    of :func:`roi_inputs_for_account` and :func:`pricing_for_account`.
    """

    discount_rate_annual: float = Field(0.08, gt=-1)
    months: int = Field(36, ge=1)
    draws: int = Field(10_000, ge=1)
    seed: int = Field(0, ge=0)
    price_cut_pct: float = Field(5.0, ge=0, lt=100)
    price_cut_volume_change: float = Field(0.0, gt=-1)
    walk_away_loss_prob: float = Field(0.2, ge=0, le=1)
    value: ValueAssumptions = Field(default_factory=ValueAssumptions)
    schemes: SchemeAssumptions = Field(default_factory=SchemeAssumptions)


def pricing_scheme_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """One row per scheme with the numbers a pricing discussion needs.

    Parameters
    ----------
    comparison : pandas.DataFrame
        :func:`compare_pricing_schemes` output.

    Returns
    -------
    pandas.DataFrame
        ``scheme`` (in :data:`SCHEMES` order, those present), ``revenue_p50``,
        ``gross_profit_p10``, ``gross_profit_p50``, ``gross_profit_p90``,
        ``customer_net_benefit_p10``, ``customer_net_benefit_p50``,
        ``customer_loss_prob`` (share of draws where the customer's net benefit
        is negative) and ``months_served_mean``.

    Raises
    ------
    PricingError
        When a column or metric is missing.
    """
    missing = [c for c in ("scheme", "metric", "mean", "p10", "p50", "p90", "prob_negative")]
    missing = [c for c in missing if c not in comparison.columns]
    if missing:
        raise PricingError(
            f"pricing_scheme_table needs compare_pricing_schemes output; missing {missing}"
        )
    needed = {"revenue", "gross_profit", "customer_net_benefit", "months_served"}
    absent = sorted(needed - set(comparison["metric"]))
    if absent:
        raise PricingError(f"pricing_scheme_table: metric(s) {absent} missing from the comparison")
    wide = comparison.set_index(["scheme", "metric"])
    schemes = [s for s in SCHEMES if s in set(comparison["scheme"])]
    schemes += [s for s in dict.fromkeys(comparison["scheme"]) if s not in schemes]

    def pick(metric: str, stat: str) -> list[float]:
        return [float(wide.loc[(s, metric), stat]) for s in schemes]

    return pd.DataFrame(
        {
            "scheme": schemes,
            "revenue_p50": pick("revenue", "p50"),
            "gross_profit_p10": pick("gross_profit", "p10"),
            "gross_profit_p50": pick("gross_profit", "p50"),
            "gross_profit_p90": pick("gross_profit", "p90"),
            "customer_net_benefit_p10": pick("customer_net_benefit", "p10"),
            "customer_net_benefit_p50": pick("customer_net_benefit", "p50"),
            "customer_loss_prob": pick("customer_net_benefit", "prob_negative"),
            "months_served_mean": pick("months_served", "mean"),
        }
    )


def best_scheme(table: pd.DataFrame, column: str) -> tuple[str, float]:
    """The scheme with the largest value in ``column`` of :func:`pricing_scheme_table`.

    Ties go to the first scheme in table order.

    Returns
    -------
    (str, float)
        Scheme name and its value.

    Raises
    ------
    PricingError
        For an unknown column or an empty table.
    """
    if column not in table.columns or "scheme" not in table.columns:
        raise PricingError(f"best_scheme: column {column!r} or 'scheme' not in the table")
    values = pd.to_numeric(table[column], errors="coerce").to_numpy(float)
    if values.size == 0 or not np.isfinite(values).any():
        raise PricingError(f"best_scheme: no finite values in {column!r}")
    i = int(np.nanargmax(values))
    return str(table["scheme"].iloc[i]), float(values[i])

"""Key account KPIs per account and for the portfolio, per period, and the balanced scorecard.

The seed guide's KPI section (KPIと評価指標) names four families:

* revenue (収益関連): revenue, gross profit, LTV;
* relationship (関係性関連): CSAT, NPS, executive contact frequency;
* expansion (拡大関連): share of wallet, cross-sell and upsell rates;
* adoption & success (導入・成功関連): time to adoption, PoC success rate,
  utilisation and retention after adoption;

and asks for a scorecard that balances short- and long-term indicators
("短期と中長期のバランスを取ったスコアカード"). Every KPI is defined once, in
:data:`KPI_DEFINITIONS` (unit, direction, horizon, and its names and
definition in English and Japanese from the ``kpi.name.*`` and
``kpi.definition.*`` keys of the locale files); the report reads the
definitions from there.

Texts
-----
Every text this module returns comes from the locale files through
:func:`kam_analysis.core.i18n.t`. Notes of :func:`compute_kpis` are
:class:`KpiNote` values (a locale key and its values), rendered in the report
language by :func:`kpi_notes`.

Workflow::

    result = compute_kpis(transactions, accounts, surveys=surveys, ..., as_of="2026-03-31")
    result.values            # long table: account x period x KPI
    result.portfolio         # the same for the whole portfolio
    result.omitted           # which KPIs were left out and why (locale keys)
    result.notes             # data left out (KpiNote: locale key and values)
    table = assess_kpis(result)        # target, status and trend per account and KPI
    card = balanced_scorecard(result)  # attainment 0-100, family scores, health score

Periods
-------
``month`` (label ``2025-04``), ``quarter`` (fiscal quarters, ``FY2025-Q1``)
or ``fiscal_year`` (``FY2025``). With the default fiscal year start in April
(Japanese 年度), ``FY2025`` runs from 2025-04-01 to 2026-03-31: the label is
the calendar year in which the fiscal year *starts* (``fiscal_year_label =
"start"``). Set ``fiscal_year_label = "end"`` for the convention that names a
fiscal year after the year in which it ends (then the same year is
``FY2026``). With ``fiscal_year_start_month = 1`` both conventions coincide
with the calendar year.

Statuses and trends
-------------------
Each KPI value is compared with its target (:class:`KpiTarget`) in one of three
bases: ``absolute`` (the value itself), ``growth`` (change against the same
period a year earlier, e.g. revenue +5 %) or ``percentile`` (rank among the
accounts in the same period, e.g. LTV). The status is ``on_track`` when the
measure reaches the target, ``at_risk`` when it misses by at most
``at_risk_band`` (in the units of the measure) and ``off_track`` beyond that,
all respecting ``higher_is_better``; ``no_data`` when there is nothing to
measure and ``insufficient`` when a survey KPI rests on fewer than
``min_responses`` answers.

The trend over the last ``trend_periods`` periods is *flat* when either the
90 % confidence interval (``trend_ci_level``) of the OLS slope of the value on
the period number contains 0, or the fitted change over the window is smaller
than ``flat_tolerance`` times the mean absolute value (statistically or
practically no change). Otherwise it is ``improving`` or ``worsening``
according to the sign of the slope and ``higher_is_better``; fewer than three
values give ``insufficient_data``. See :func:`trend_test`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from scipy import optimize, stats

from kam_analysis.core.errors import InputError
from kam_analysis.core.formatting import NA_TEXT, fmt_money, fmt_pct
from kam_analysis.core.i18n import check_language, t
from kam_analysis.core.schemas import ACTIVITY_KINDS
from kam_analysis.status import LOST_STATUSES, account_status, contract_churn

Freq = Literal["month", "quarter", "fiscal_year"]
FREQS: tuple[str, ...] = ("month", "quarter", "fiscal_year")
_MONTHS_PER_PERIOD = {"month": 1, "quarter": 3, "fiscal_year": 12}
_DAYS_PER_YEAR = 365.25
_EPOCH = pd.Timestamp("1970-01-01")

FAMILIES: tuple[str, ...] = ("revenue", "relationship", "expansion", "adoption")
PORTFOLIO_ID = "portfolio"
"""``account_id`` used for portfolio-level rows of :func:`balanced_scorecard`."""

EXECUTIVE_MEETING = "executive_meeting"
assert EXECUTIVE_MEETING in ACTIVITY_KINDS

INPUT_COLUMNS: dict[str, tuple[str, ...]] = {
    "transactions": ("account_id", "date", "product_line", "revenue"),
    "accounts": ("account_id",),
    "contracts": ("account_id", "status"),
    "opportunities": ("account_id", "stage", "close_date"),
    "activities": ("account_id", "date", "kind"),
    "surveys": ("account_id", "date", "nps"),
    "usage": ("account_id", "month", "seats_purchased", "seats_active"),
}
"""Contract columns each table must have for this module (a subset of :mod:`schemas`)."""

OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "transactions": ("cost",),
    "accounts": ("wallet_estimate",),
    "contracts": ("signed_date", "go_live_date", "churn_date", "end_date", "start_date"),
    "opportunities": ("is_poc",),
    "surveys": ("csat",),
}
"""Optional contract columns that switch individual KPIs on."""


class KpiInputError(InputError, ValueError):
    """An input table lacks a column or refers to unknown accounts."""


# --------------------------------------------------------------------------- definitions


@dataclass(frozen=True)
class KpiDefinition:
    """One KPI: identity and how to read it.

    Its display name and definition are the locale keys ``kpi.name.<id>`` and
    ``kpi.definition.<id>`` (:func:`kpi_label`, :func:`kpi_definition`).
    """

    id: str
    family: str
    unit: str
    higher_is_better: bool
    horizon: Literal["short", "long"]
    grain: Literal["period", "snapshot"] = "period"
    requires: tuple[str, ...] = ("transactions",)


_DEFINITIONS: tuple[KpiDefinition, ...] = (
    KpiDefinition("revenue", "revenue", "currency", True, "short"),
    KpiDefinition(
        "gross_profit", "revenue", "currency", True, "short", requires=("transactions.cost",)
    ),
    KpiDefinition(
        "gross_margin", "revenue", "ratio", True, "short", requires=("transactions.cost",)
    ),
    KpiDefinition("ltv", "revenue", "currency", True, "long", grain="snapshot", requires=("ltv",)),
    KpiDefinition("csat", "relationship", "score_1_5", True, "short", requires=("surveys.csat",)),
    KpiDefinition("nps", "relationship", "score_-100_100", True, "long", requires=("surveys",)),
    KpiDefinition(
        "exec_contact", "relationship", "per_quarter", True, "long", requires=("activities",)
    ),
    KpiDefinition(
        "share_of_wallet",
        "expansion",
        "ratio",
        True,
        "long",
        requires=("accounts.wallet_estimate",),
    ),
    KpiDefinition("cross_sell_rate", "expansion", "ratio", True, "short"),
    KpiDefinition("upsell_rate", "expansion", "ratio", True, "short"),
    KpiDefinition("nrr", "expansion", "ratio", True, "long"),
    KpiDefinition(
        "time_to_adoption",
        "adoption",
        "days",
        False,
        "short",
        requires=("contracts.signed_date", "contracts.go_live_date"),
    ),
    KpiDefinition(
        "poc_success_rate", "adoption", "ratio", True, "short", requires=("opportunities.is_poc",)
    ),
    KpiDefinition(
        "poc_conversion", "adoption", "ratio", True, "long", requires=("opportunities.is_poc",)
    ),
    KpiDefinition("utilisation", "adoption", "ratio", True, "short", requires=("usage",)),
    KpiDefinition(
        "retention_after_adoption",
        "adoption",
        "ratio",
        True,
        "long",
        requires=("contracts.go_live_date",),
    ),
)

KPI_IDS: tuple[str, ...] = tuple(d.id for d in _DEFINITIONS)
_DEF: dict[str, KpiDefinition] = {d.id: d for d in _DEFINITIONS}
SURVEY_KPIS: tuple[str, ...] = ("nps", "csat")

KPI_DEFINITIONS = pd.DataFrame(
    [
        {
            "kpi_id": d.id,
            "family": d.family,
            "name_en": t(f"kpi.name.{d.id}", "en"),
            "name_ja": t(f"kpi.name.{d.id}", "ja"),
            "definition": t(f"kpi.definition.{d.id}", "en"),
            "definition_ja": t(f"kpi.definition.{d.id}", "ja"),
            "unit": d.unit,
            "higher_is_better": d.higher_is_better,
            "horizon": d.horizon,
            "grain": d.grain,
            "requires": ", ".join(d.requires),
        }
        for d in _DEFINITIONS
    ]
)
"""One row per KPI: ``kpi_id, family, name_en, name_ja, definition, definition_ja, unit,
higher_is_better, horizon (short/long), grain (period/snapshot), requires``; the names
and definitions are read from the locale files."""


# --------------------------------------------------------------------------- settings


class KpiTarget(BaseModel):
    """Target of one KPI.

    Attributes
    ----------
    basis : {"absolute", "growth", "percentile"}
        What is compared with ``target``: the value itself, its relative change
        against the same period a year earlier (0.05 = +5 %), or its percentile
        rank 0-100 among the accounts in the period.
    target : float
        Target in the units of the basis.
    at_risk_band : float
        Distance short of the target (same units) that is still ``at_risk``.
    floor : float
        Measure that earns 0 attainment in the scorecard (attainment rises
        linearly to 100 at the target and is capped there). For KPIs where lower
        is better, the floor lies above the target.
    """

    model_config = ConfigDict(extra="forbid")

    basis: Literal["absolute", "growth", "percentile"] = "absolute"
    target: float
    at_risk_band: float = Field(0.0, ge=0)
    floor: float

    @model_validator(mode="after")
    def _floor_differs(self) -> KpiTarget:
        if self.floor == self.target:
            raise ValueError("floor must differ from target (it is the 0-attainment point)")
        return self


def _default_targets() -> dict[str, KpiTarget]:
    t = KpiTarget
    return {
        "revenue": t(basis="growth", target=0.05, at_risk_band=0.05, floor=-0.30),
        "gross_profit": t(basis="growth", target=0.05, at_risk_band=0.05, floor=-0.30),
        "gross_margin": t(target=0.30, at_risk_band=0.05, floor=0.0),
        "ltv": t(basis="percentile", target=50.0, at_risk_band=25.0, floor=0.0),
        "csat": t(target=4.0, at_risk_band=0.3, floor=1.0),
        "nps": t(target=30.0, at_risk_band=10.0, floor=-50.0),
        "exec_contact": t(target=0.5, at_risk_band=0.25, floor=0.0),
        "share_of_wallet": t(target=0.40, at_risk_band=0.10, floor=0.0),
        "cross_sell_rate": t(target=0.20, at_risk_band=0.05, floor=0.0),
        "upsell_rate": t(target=0.30, at_risk_band=0.10, floor=0.0),
        "nrr": t(target=1.00, at_risk_band=0.10, floor=0.50),
        "time_to_adoption": t(target=90.0, at_risk_band=30.0, floor=365.0),
        "poc_success_rate": t(target=0.50, at_risk_band=0.15, floor=0.0),
        "poc_conversion": t(target=0.60, at_risk_band=0.15, floor=0.0),
        "utilisation": t(target=0.80, at_risk_band=0.10, floor=0.20),
        "retention_after_adoption": t(target=0.90, at_risk_band=0.05, floor=0.50),
    }


def _default_kpi_weights() -> dict[str, float]:
    # Account-level cross-sell / upsell are 0/1 indicators: half weight keeps one quiet
    # quarter from dominating an account's expansion score.
    return {k: (0.5 if k in ("cross_sell_rate", "upsell_rate") else 1.0) for k in KPI_IDS}


class KpiSettings(BaseModel):
    """Business rules of the KPI scorecard (composed into ``kam.toml`` as ``[kpi]``).

    Attributes
    ----------
    targets : dict of str to KpiTarget
        Target per KPI id; KPIs without a target get no status and stay out of
        the scorecard. Defaults are illustrative starting points.
    period : {"month", "quarter", "fiscal_year"}
        Period of the KPI series (default quarter).
    fiscal_year_start_month : int
        First month of the fiscal year (4 = April, the Japanese 年度).
    fiscal_year_label : {"start", "end"}
        Name a fiscal year after the calendar year in which it starts (``FY2025`` =
        2025-04..2026-03, Japanese usage) or ends.
    min_responses : int
        Survey KPIs (NPS, CSAT) with fewer answers are ``insufficient``; in the
        scorecard their attainment is shrunk towards the neutral 50 with the
        square-root credibility factor ``sqrt(n / min_responses)``.
    ci_level : float
        Confidence level of the NPS interval.
    trend_periods, trend_ci_level, flat_tolerance
        Trend window and the "flat" rule (see :func:`trend_test`).
    long_term_weight : float
        Share of each family's weight on its long-horizon KPIs (LTV, NPS, executive
        contact, share of wallet, NRR, PoC conversion, retention) when the family has
        both kinds available; 0.5 weighs them equally.
    family_weights : dict
        Weight of each family in the health score (renormalised over the families
        with data).
    kpi_weights : dict
        Relative weight of each KPI inside its horizon group.
    poc_conversion_months : int
        Window after a won PoC in which a contract counts as conversion.
    retention_months : int
        Minimum time since go-live for retention after adoption.
    upsell_threshold : float
        An account is upsold when its trailing-12-month revenue in the product
        lines it already bought in the 12 months before grows by more than this
        fraction year over year (0.10 = more than +10 %); see :func:`compute_kpis`.
    health_fit : bool
        Fit the family weights of the health score to subsequent churn
        (:func:`validate_health`); off: validate the configured weights only.
    health_horizon_months : int
        Churn window of the health validation: health at a cut-off, churn in the
        following months.
    health_min_events : int
        Fewest churn events in the fit window for fitted weights; with fewer the
        configured ``family_weights`` are used (and the page says so).
    """

    model_config = ConfigDict(extra="forbid")

    targets: dict[str, KpiTarget] = Field(default_factory=_default_targets)
    period: Freq = "quarter"
    fiscal_year_start_month: int = Field(4, ge=1, le=12)
    fiscal_year_label: Literal["start", "end"] = "start"
    min_responses: int = Field(5, ge=1)
    ci_level: float = Field(0.90, gt=0, lt=1)
    trend_periods: int = Field(4, ge=3)
    trend_ci_level: float = Field(0.90, gt=0, lt=1)
    flat_tolerance: float = Field(0.02, ge=0)
    long_term_weight: float = Field(0.5, ge=0, le=1)
    family_weights: dict[str, float] = Field(default_factory=lambda: dict.fromkeys(FAMILIES, 0.25))
    kpi_weights: dict[str, float] = Field(default_factory=_default_kpi_weights)
    poc_conversion_months: int = Field(12, ge=1)
    retention_months: int = Field(12, ge=1)
    upsell_threshold: float = Field(0.10, ge=0)
    health_fit: bool = True
    health_horizon_months: int = Field(12, ge=1)
    health_min_events: int = Field(20, ge=1)

    @field_validator("targets", "kpi_weights")
    @classmethod
    def _known_kpis(cls, value: dict) -> dict:
        unknown = sorted(set(value) - set(KPI_IDS))
        if unknown:
            raise ValueError(f"unknown KPI id(s) {unknown}; known: {list(KPI_IDS)}")
        return value

    @field_validator("family_weights")
    @classmethod
    def _known_families(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown KPI family(ies) {unknown}; known: {list(FAMILIES)}")
        if any(w < 0 for w in value.values()) or sum(value.values()) <= 0:
            raise ValueError("family_weights must be >= 0 and not all 0")
        return value


# --------------------------------------------------------------------------- periods


def _check_freq(freq: str) -> str:
    if freq == "year":
        return "fiscal_year"
    if freq not in FREQS:
        raise ValueError(f"freq must be one of {FREQS}, got {freq!r}")
    return freq


def _period_start_months(
    dates: pd.Series, freq: str, fiscal_year_start_month: int
) -> tuple[np.ndarray, np.ndarray]:
    """Absolute month number (year*12 + month-1) of each period start, and the fiscal year."""
    y = dates.dt.year.to_numpy(dtype=np.int64)
    m = dates.dt.month.to_numpy(dtype=np.int64)
    fy = y - (m < fiscal_year_start_month)
    if freq == "month":
        return y * 12 + m - 1, fy
    k = (m - fiscal_year_start_month) % 12
    step = _MONTHS_PER_PERIOD[freq]
    return fy * 12 + (fiscal_year_start_month - 1) + (k // step) * step, fy


def _months_to_timestamps(months: np.ndarray) -> pd.DatetimeIndex:
    return pd.to_datetime(
        pd.DataFrame({"year": months // 12, "month": months % 12 + 1, "day": 1})
    ).pipe(pd.DatetimeIndex)


def period_index(
    dates,
    freq: str = "quarter",
    fiscal_year_start_month: int = 4,
    *,
    fiscal_year_label: Literal["start", "end"] = "start",
) -> pd.DataFrame:
    """Label each date with its month, fiscal quarter or fiscal year.

    Parameters
    ----------
    dates : array-like of dates
        Anything :func:`pandas.to_datetime` reads; missing dates give missing periods.
    freq : {"month", "quarter", "fiscal_year"}
        Period length (``"year"`` is accepted for ``"fiscal_year"``).
    fiscal_year_start_month : int, default 4
        First month of the fiscal year (April: the Japanese 年度).
    fiscal_year_label : {"start", "end"}, default "start"
        ``"start"``: ``FY2025`` is the fiscal year that starts in 2025 (with an April
        start 2025-04-01..2026-03-31); ``"end"``: named after the year it ends in.

    Returns
    -------
    pandas.DataFrame
        Index of ``dates`` (a RangeIndex for arrays); columns ``period`` (label:
        ``2025-04``, ``FY2025-Q1`` or ``FY2025``), ``period_start`` and
        ``period_end`` (first and last day, inclusive).

    Raises
    ------
    ValueError
        Unknown ``freq`` or a start month outside 1-12.

    Examples
    --------
    >>> period_index(["2025-03-31", "2025-04-01"], "fiscal_year")["period"].tolist()
    ['FY2024', 'FY2025']
    """
    freq = _check_freq(freq)
    if not 1 <= int(fiscal_year_start_month) <= 12:
        raise ValueError(f"fiscal_year_start_month must be 1-12, got {fiscal_year_start_month}")
    if fiscal_year_label not in ("start", "end"):
        raise ValueError(f"fiscal_year_label must be 'start' or 'end', got {fiscal_year_label!r}")
    s = pd.Series(dates) if not isinstance(dates, pd.Series) else dates
    d = pd.to_datetime(s)
    out = pd.DataFrame(
        {
            "period": pd.Series(pd.NA, index=d.index, dtype="object"),
            "period_start": pd.Series(pd.NaT, index=d.index, dtype="datetime64[us]"),
            "period_end": pd.Series(pd.NaT, index=d.index, dtype="datetime64[us]"),
        }
    )
    ok = d.notna()
    if not ok.any():
        return out
    dd = d[ok]
    start_m, fy = _period_start_months(dd, freq, fiscal_year_start_month)
    starts = _months_to_timestamps(start_m)
    ends = _months_to_timestamps(start_m + _MONTHS_PER_PERIOD[freq]) - pd.Timedelta(days=1)
    fy_named = fy + (1 if (fiscal_year_label == "end" and fiscal_year_start_month != 1) else 0)
    if freq == "month":
        labels = [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in start_m]
    elif freq == "quarter":
        q = ((start_m % 12 + 1 - fiscal_year_start_month) % 12) // 3 + 1
        labels = [f"FY{a}-Q{b}" for a, b in zip(fy_named, q, strict=True)]
    else:
        labels = [f"FY{a}" for a in fy_named]
    out.loc[ok, "period"] = labels
    out.loc[ok, "period_start"] = starts.to_numpy()
    out.loc[ok, "period_end"] = ends.to_numpy()
    return out


def period_range(
    start,
    end,
    freq: str = "quarter",
    fiscal_year_start_month: int = 4,
    *,
    fiscal_year_label: Literal["start", "end"] = "start",
) -> pd.DataFrame:
    """Consecutive periods from the one containing ``start`` to the one containing ``end``.

    Returns
    -------
    pandas.DataFrame
        One row per period, in order: ``period``, ``period_start``, ``period_end``.
    """
    freq = _check_freq(freq)
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if end < start:
        raise ValueError(f"end {end.date()} is before start {start.date()}")
    first = period_index([start], freq, fiscal_year_start_month)["period_start"].iloc[0]
    step = _MONTHS_PER_PERIOD[freq]
    m0 = first.year * 12 + first.month - 1
    m1 = end.year * 12 + end.month - 1
    months = np.arange(m0, m1 + 1, step)
    return period_index(
        pd.Series(_months_to_timestamps(months)),
        freq,
        fiscal_year_start_month,
        fiscal_year_label=fiscal_year_label,
    ).reset_index(drop=True)


# --------------------------------------------------------------------------- NPS


def nps_score(scores, *, ci_level: float = 0.90) -> dict[str, float]:
    """Net Promoter Score of a set of 0-10 answers, with its standard error and interval.

    Parameters
    ----------
    scores : array-like of numbers 0-10
        Missing answers are ignored.
    ci_level : float, default 0.90
        Two-sided level of the normal-approximation interval (clipped to -100..100).

    Returns
    -------
    dict
        ``nps`` (percentage points, NaN without answers), ``n``, ``p_promoters``,
        ``p_detractors``, ``se`` (percentage points), ``ci_low``, ``ci_high``.

    Raises
    ------
    ValueError
        When an answer lies outside 0-10.

    References
    ----------
    Reichheld, F. F. (2003). The one number you need to grow. Harvard Business
    Review 81(12), 46-54.
    Rocks, B. (2016). Interval estimation for the "Net Promoter Score". The American
    Statistician 70(4), 365-372 (the multinomial variance used here).
    """
    a = pd.to_numeric(pd.Series(scores), errors="raise").dropna().to_numpy(dtype=float)
    if ((a < 0) | (a > 10)).any():
        raise ValueError(f"NPS answers must be 0-10; got e.g. {a[(a < 0) | (a > 10)][:3]}")
    n = a.size
    if n == 0:
        nan = float("nan")
        return dict(
            nps=nan, n=0, p_promoters=nan, p_detractors=nan, se=nan, ci_low=nan, ci_high=nan
        )
    p, d = float((a >= 9).mean()), float((a <= 6).mean())
    nps, se, lo, hi = _nps_arrays(np.array([p]), np.array([d]), np.array([n]), ci_level)
    return dict(
        nps=float(nps[0]),
        n=n,
        p_promoters=p,
        p_detractors=d,
        se=float(se[0]),
        ci_low=float(lo[0]),
        ci_high=float(hi[0]),
    )


def _nps_arrays(p: np.ndarray, d: np.ndarray, n: np.ndarray, ci_level: float):
    with np.errstate(invalid="ignore", divide="ignore"):
        nps = 100.0 * (p - d)
        var = np.clip(p + d - (p - d) ** 2, 0.0, None) / n
        se = 100.0 * np.sqrt(var)
    z = stats.norm.ppf(0.5 + ci_level / 2)
    return nps, se, np.clip(nps - z * se, -100, 100), np.clip(nps + z * se, -100, 100)


# --------------------------------------------------------------------------- result


class KpiNote(NamedTuple):
    """A note of :func:`compute_kpis`: a locale key and the values of its placeholders.

    A ``(key, values)`` pair, so ``Page.notes`` renders it in the report language;
    :meth:`text` renders it in any language and ``str()`` in English (logs).

    Attributes
    ----------
    key : str
        Locale key, e.g. ``"kpi.note.later_lines"``.
    values : Mapping[str, Any]
        Values of the text's placeholders (numbers, dates and period labels as text).
    """

    key: str
    values: Mapping[str, Any]

    def text(self, lang: str = "en") -> str:
        """The note in ``lang``.

        Parameters
        ----------
        lang : str, default "en"
            ``"en"`` or ``"ja"``.

        Returns
        -------
        str
        """
        return t(self.key, lang, **self.values)

    def __str__(self) -> str:
        return self.text("en")


@dataclass
class KpiResult:
    """KPI values with the notes that explain what is missing.

    Attributes
    ----------
    values : pandas.DataFrame
        Account level, long: ``account_id, period, period_start, period_end, complete,
        kpi_id, value, n, ci_low, ci_high, quality`` (``quality``: ``ok``,
        ``insufficient`` or ``no_data``). Every account x period x computed KPI has a
        row; ``value`` is NaN where the KPI is undefined (e.g. no survey answers), never 0.
    portfolio : pandas.DataFrame
        The same columns without ``account_id``.
    periods : pandas.DataFrame
        ``period, period_start, period_end, complete`` in order.
    notes : list of KpiNote
        Data left out and KPIs that need a year of history, as locale keys with
        values (:func:`kpi_notes` renders them with the omitted KPIs).
    omitted : dict of str to str
        KPI id -> locale key of the reason (``"kpi.omission.no_usage"``), for the
        KPIs not computed, in definition order.
    settings : KpiSettings
    as_of : pandas.Timestamp
    computed : tuple of str
        The KPIs computed, in definition order.
    active_accounts : pandas.Series
        Per period label: the accounts that are customers in the period (the
        denominator of the book-level KPIs, see :func:`compute_kpis`).
    nps_pooled : pandas.DataFrame or None
        The respondent-weighted portfolio NPS (all answers pooled), in the columns
        of ``portfolio``; ``portfolio`` holds the mean of the per-account NPS.
    """

    values: pd.DataFrame
    portfolio: pd.DataFrame
    periods: pd.DataFrame
    notes: list[KpiNote]
    omitted: dict[str, str]
    settings: KpiSettings
    as_of: pd.Timestamp
    computed: tuple[str, ...] = field(default=())
    active_accounts: pd.Series | None = None
    nps_pooled: pd.DataFrame | None = None

    def wide(self, level: Literal["account", "portfolio"] = "account") -> pd.DataFrame:
        """Values pivoted to one column per KPI (rows: account x period, or period)."""
        if level == "portfolio":
            return self.portfolio.pivot(index="period", columns="kpi_id", values="value").reindex(
                index=self.periods["period"], columns=list(self.computed)
            )
        w = self.values.pivot(
            index=["account_id", "period"], columns="kpi_id", values="value"
        ).reindex(columns=list(self.computed))
        return w


# --------------------------------------------------------------------------- inputs


def _require(df: pd.DataFrame | None, table: str) -> None:
    if df is None:
        return
    if not isinstance(df, pd.DataFrame):
        raise KpiInputError(f"{table}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in INPUT_COLUMNS[table] if c not in df.columns]
    if missing:
        raise KpiInputError(
            f"{table}: missing column(s) {missing}; the data contract (schemas.py) requires "
            f"{list(INPUT_COLUMNS[table])}; found {list(df.columns)[:12]}"
        )


def _days(values) -> np.ndarray:
    """Dates as float days since 1970-01-01 (NaN for missing)."""
    s = pd.to_datetime(pd.Series(values).reset_index(drop=True))
    return (s - _EPOCH).dt.days.to_numpy(dtype=float)


def _codes(ids: pd.Series, index: pd.Index, table: str) -> np.ndarray:
    codes = index.get_indexer(ids.astype(str))
    bad = codes < 0
    if bad.any():
        examples = sorted(ids[bad].astype(str).unique())[:5]
        raise KpiInputError(
            f"{table}.account_id: {int(bad.sum())} row(s) refer to accounts not in accounts, "
            f"e.g. {examples}"
        )
    return codes


class _Grid:
    """Accounts x periods, and how dates fall into periods."""

    def __init__(self, account_ids: pd.Index, periods: pd.DataFrame, as_of: pd.Timestamp, freq):
        self.accounts = account_ids
        self.periods = periods
        self.as_of = as_of
        self.A, self.P = len(account_ids), len(periods)
        self.start_days = _days(periods["period_start"])
        self.next_days = _days(periods["period_end"]) + 1
        self.as_of_day = float((as_of - _EPOCH).days)
        # evaluation date of each period: its last day or the as-of date, whichever is first
        self.eval_days = np.minimum(self.next_days - 1, self.as_of_day)
        self.elapsed = self.eval_days - self.start_days + 1
        complete = (self.next_days - 1) <= self.as_of_day
        # periods per year: 12 / months for complete periods, by elapsed days for the last one
        self.per_year = np.where(
            complete, 12.0 / _MONTHS_PER_PERIOD[freq], _DAYS_PER_YEAR / self.elapsed
        )
        self.year_lag = 12 // _MONTHS_PER_PERIOD[freq]

    def period_of(self, days: np.ndarray) -> np.ndarray:
        """Period position of each day (-1 outside the grid or after the as-of date)."""
        idx = np.searchsorted(self.start_days, days, side="right") - 1
        out = (idx < 0) | np.isnan(days) | (days > self.as_of_day) | (days >= self.next_days[-1])
        return np.where(out, -1, idx)

    def matrix(self, a: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
        keep = p >= 0
        flat = a[keep] * self.P + p[keep]
        weights = None if w is None else np.asarray(w, dtype=float)[keep]
        return (
            np.bincount(flat, weights=weights, minlength=self.A * self.P)
            .reshape(self.A, self.P)
            .astype(float)
        )


@dataclass
class _Kpi:
    value: np.ndarray  # A x P
    n: np.ndarray  # A x P
    portfolio: np.ndarray  # P
    portfolio_n: np.ndarray  # P
    ci: tuple[np.ndarray, np.ndarray] | None = None
    portfolio_ci: tuple[np.ndarray, np.ndarray] | None = None
    survey: bool = False


def _ratio(num, den):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


# --------------------------------------------------------------------------- KPI families


def _line_counts(tx: pd.DataFrame) -> np.ndarray | None:
    """Lines per row: the ``n_lines`` column of pre-aggregated input, else None (one each)."""
    if "n_lines" not in tx.columns:
        return None
    n = pd.to_numeric(tx["n_lines"]).to_numpy(dtype=float)
    if np.isnan(n).any() or (n < 0).any():
        raise KpiInputError(
            f"transactions.n_lines must be a count >= 0; got e.g. {n[np.isnan(n) | (n < 0)][:3]}"
        )
    return n


def _revenue_kpis(
    g: _Grid,
    tx: pd.DataFrame,
    a: np.ndarray,
    p: np.ndarray,
    notes: list[KpiNote],
    w: np.ndarray | None,
):
    out: dict[str, _Kpi] = {}
    rev = tx["revenue"].to_numpy(dtype=float)
    R = g.matrix(a, p, rev)
    lines = g.matrix(a, p, w)
    out["revenue"] = _Kpi(R, lines, R.sum(0), lines.sum(0))
    if "cost" in tx.columns and tx["cost"].notna().any():
        cost = pd.to_numeric(tx["cost"]).to_numpy(dtype=float)
        has = ~np.isnan(cost)
        no_cost = ~has & (p >= 0)
        n_no_cost = int(no_cost.sum() if w is None else w[no_cost].sum())
        if n_no_cost:
            notes.append(KpiNote("kpi.note.no_cost_lines", {"n": n_no_cost}))
        GP = g.matrix(a[has], p[has], rev[has] - cost[has])
        Rc = g.matrix(a[has], p[has], rev[has])
        nc = g.matrix(a[has], p[has], None if w is None else w[has])
        GPv = np.where((lines > 0) & (nc == 0), np.nan, GP)
        out["gross_profit"] = _Kpi(GPv, nc, GP.sum(0), nc.sum(0))
        out["gross_margin"] = _Kpi(_ratio(GP, Rc), nc, _ratio(GP.sum(0), Rc.sum(0)), nc.sum(0))
    return out, R


def _survey_kpis(g: _Grid, surveys: pd.DataFrame, settings: KpiSettings):
    out: dict[str, _Kpi] = {}
    a = _codes(surveys["account_id"], g.accounts, "surveys")
    p = g.period_of(_days(surveys["date"]))
    nps = pd.to_numeric(surveys["nps"]).to_numpy(dtype=float)
    bad = ~np.isnan(nps) & ((nps < 0) | (nps > 10))
    if bad.any():
        raise KpiInputError(f"surveys.nps must be 0-10; got e.g. {nps[bad][:3].tolist()}")
    has = ~np.isnan(nps)
    n = g.matrix(a[has], p[has])
    pro = g.matrix(a[has], p[has], (nps[has] >= 9).astype(float))
    det = g.matrix(a[has], p[has], (nps[has] <= 6).astype(float))
    v, _, lo, hi = _nps_arrays(_ratio(pro, n), _ratio(det, n), n, settings.ci_level)
    out["nps"] = _account_mean_nps(v, n, settings.ci_level)
    out["nps"].ci = (lo, hi)
    pn, pp, pd_ = n.sum(0), pro.sum(0), det.sum(0)
    pv, _, plo, phi = _nps_arrays(_ratio(pp, pn), _ratio(pd_, pn), pn, settings.ci_level)
    pooled = _Kpi(v, n, pv, pn, portfolio_ci=(plo, phi), survey=True)
    if "csat" in surveys.columns and surveys["csat"].notna().any():
        cs = pd.to_numeric(surveys["csat"]).to_numpy(dtype=float)
        hc = ~np.isnan(cs)
        nc = g.matrix(a[hc], p[hc])
        sc = g.matrix(a[hc], p[hc], cs[hc])
        out["csat"] = _Kpi(_ratio(sc, nc), nc, _ratio(sc.sum(0), nc.sum(0)), nc.sum(0), survey=True)
    return out, pooled


def _account_mean_nps(v: np.ndarray, n: np.ndarray, ci_level: float) -> _Kpi:
    """Portfolio NPS as the mean of the per-account NPS of the accounts with answers.

    Each account counts once, whatever its number of respondents; ``n`` of the
    portfolio is the number of accounts, and the interval is the normal one
    of a mean across accounts (``z * sd / sqrt(m)``, m >= 2 accounts).
    """
    rated = n > 0
    m = rated.sum(0).astype(float)
    vals = np.where(rated, v, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(m > 0, np.nansum(vals, 0) / np.where(m > 0, m, 1.0), np.nan)
        dev = np.where(rated, vals - mean, 0.0)
        sd = np.sqrt((dev**2).sum(0) / np.where(m > 1, m - 1, np.nan))
        half = stats.norm.ppf(0.5 + ci_level / 2) * sd / np.sqrt(m)
    ci = (np.clip(mean - half, -100, 100), np.clip(mean + half, -100, 100))
    return _Kpi(v, n, mean, m, portfolio_ci=ci, survey=True)


def _exec_contact(g: _Grid, activities: pd.DataFrame, active: np.ndarray) -> _Kpi:
    ex = activities[activities["kind"].astype(str) == EXECUTIVE_MEETING]
    a = _codes(ex["account_id"], g.accounts, "activities")
    p = g.period_of(_days(ex["date"]))
    C = np.where(active, g.matrix(a, p), 0.0)
    V = np.where(active, C * (g.per_year / 4.0), np.nan)
    n_active = active.sum(0).astype(float)
    return _Kpi(V, C, _ratio(np.nansum(V, 0), n_active), C.sum(0))


def _months_before(days: np.ndarray, months: int) -> np.ndarray:
    """The last day of the calendar month ``months`` months before each day's month.

    Days are counted since 1970-01-01. A trailing window of ``months`` months
    up to day ``e`` is ``(_months_before(e, months), e]``: whole calendar
    months, the month of ``e`` up to ``e``. Whole months, because the lines
    may come summed per calendar month (dated on the 1st,
    :func:`kam_analysis.data.features.monthly_line_summary`) and must then
    give the same sums; a day-exact ``e - months`` would split a month (e.g.
    ``2025-02-28 - 12 months = 2024-02-28`` leaves 29 February 2024 inside).
    """
    d = np.asarray(days, dtype=float)
    out = np.full(d.shape, np.nan)
    ok = ~np.isnan(d)
    month = d[ok].astype("int64").astype("datetime64[D]").astype("datetime64[M]")
    out[ok] = (month - (months - 1)).astype("datetime64[D]").astype("int64") - 1.0
    return out


class _Lines:
    """Purchase rows inside the grid, sorted by day, for sums over trailing windows."""

    def __init__(
        self,
        g: _Grid,
        a: np.ndarray,
        days: np.ndarray,
        rev: np.ndarray,
        line: np.ndarray | None = None,
    ):
        """``line``: the product line of each row as integer codes (None: not needed)."""
        keep = ~np.isnan(days) & (days >= g.start_days[0]) & (days <= g.as_of_day)
        order = np.argsort(days[keep], kind="stable")
        self.a = a[keep][order]
        self.days = days[keep][order]
        self.rev = rev[keep][order]
        self.line = None if line is None else line[keep][order]

    def window(self, lo: float, hi: float) -> slice:
        """The rows dated in ``(lo, hi]``."""
        return slice(
            int(np.searchsorted(self.days, lo, side="right")),
            int(np.searchsorted(self.days, hi, side="right")),
        )


def _trailing_revenue(g: _Grid, lines: _Lines, months: int = 12) -> np.ndarray:
    """A x P: revenue in the ``months`` months up to each period's evaluation date.

    NaN for the periods whose window starts before the first period of the grid
    (history not covered).
    """
    lo = _months_before(g.eval_days, months)
    out = np.full((g.A, g.P), np.nan)
    for i in np.flatnonzero(lo + 1 >= g.start_days[0]):
        w = lines.window(lo[i], g.eval_days[i])
        out[:, i] = np.bincount(lines.a[w], weights=lines.rev[w], minlength=g.A)
    return out


def _active_matrix(
    g: _Grid, lines: _Lines, contracts: pd.DataFrame | None, lapse_months: int
) -> np.ndarray:
    """A x P: whether each account is a customer in each period.

    A customer in a period has made its first purchase (a calendar month with
    positive net revenue) on or before the period's evaluation date and, at
    the day before the period starts, is not lapsed or churned by
    :func:`kam_analysis.status.account_status` (or buys again in the period).
    Purchases are taken by calendar month (dated on the 1st: lapsed means no
    purchase in the ``lapse_months`` whole months before the period), so that
    lines summed per month give the same book as the lines themselves.
    """
    month = lines.days.astype("int64").astype("datetime64[D]").astype("datetime64[M]")
    day = pd.DataFrame(
        {"a": lines.a, "d": month.astype("datetime64[D]").astype("float64"), "r": lines.rev}
    )
    net = day.groupby(["a", "d"], sort=True)["r"].sum()
    net = net[net > 0].reset_index()
    pa, pdays = net["a"].to_numpy(), net["d"].to_numpy(dtype=float)
    first = np.full(g.A, np.inf)
    np.minimum.at(first, pa, pdays)
    bought = g.matrix(pa, g.period_of(pdays)) > 0
    active = np.zeros((g.A, g.P), dtype=bool)
    ids = g.accounts.to_numpy(dtype=object)
    for i in range(g.P):
        before = pdays < g.start_days[i]
        last = np.full(g.A, np.nan)
        np.fmax.at(last, pa[before], pdays[before])
        status = account_status(
            pd.DataFrame({"account_id": ids, "last_purchase": pd.to_datetime(last, unit="D")}),
            as_of=_EPOCH + pd.Timedelta(days=g.start_days[i] - 1),
            contracts=contracts,
            lapse_months=lapse_months,
        )["status"].isin(LOST_STATUSES)
        active[:, i] = (first <= g.eval_days[i]) & (~status.to_numpy() | bought[:, i])
    return active


def _share_of_wallet(g: _Grid, ttm: np.ndarray, wallet: np.ndarray, active: np.ndarray) -> _Kpi:
    """Trailing-12-month revenue / wallet estimate, over the accounts active in the period."""
    known = (wallet > 0) & ~np.isnan(wallet)
    ok = active & known[:, None] & ~np.isnan(ttm)
    w = np.broadcast_to(np.where(known, wallet, 1.0)[:, None], ttm.shape)
    V = np.where(ok, np.nan_to_num(ttm) / w, np.nan)
    num = np.where(ok, ttm, 0.0).sum(0)
    den = np.where(ok, w, 0.0).sum(0)
    n = ok.astype(float)
    return _Kpi(V, n, _ratio(num, den), n.sum(0))


def _upsell(
    g: _Grid,
    lines: _Lines,
    active: np.ndarray,
    threshold: float,
    seats: _Lines | None = None,
) -> _Kpi:
    """Expansion in existing lines (or seats): trailing 12 months vs the 12 months before.

    Existing lines are those with positive revenue in the earlier 12 months; an
    account active in the period with such lines is upsold (1) when its revenue
    in them grew by more than ``threshold``, else 0. An account with seat counts
    in both windows (``seats``: mean seats purchased per usage row) is judged by
    its seats instead.
    """
    # the (account, product line) pairs that occur: sums per pair, not per account x every line
    n_lines = int(lines.line.max(initial=0)) + 1
    pairs, pair_of_row = np.unique(
        lines.a.astype(np.int64) * n_lines + lines.line, return_inverse=True
    )
    pair_account = pairs // n_lines
    hi = g.eval_days
    mid, lo = _months_before(hi, 12), _months_before(hi, 24)
    U = np.full((g.A, g.P), np.nan)
    for i in np.flatnonzero(lo + 1 >= g.start_days[0]):
        before, now = (
            np.bincount(pair_of_row[w], weights=lines.rev[w], minlength=pairs.size)
            for w in (lines.window(lo[i], mid[i]), lines.window(mid[i], hi[i]))
        )
        existing = before > 0
        base = np.bincount(pair_account, weights=np.where(existing, before, 0.0), minlength=g.A)
        grown = np.bincount(pair_account, weights=np.where(existing, now, 0.0), minlength=g.A)
        if seats is not None:
            s0, s1 = (_mean_in(g, seats, a_, b_) for a_, b_ in ((lo[i], mid[i]), (mid[i], hi[i])))
            has = (s0 > 0) & ~np.isnan(s1)
            base, grown = np.where(has, s0, base), np.where(has, s1, grown)
        elig = (base > 0) & active[:, i]
        U[elig, i] = (grown[elig] > (1.0 + threshold) * base[elig]).astype(float)
    n = (~np.isnan(U)).astype(float)
    return _Kpi(U, n, _ratio(np.nansum(U, 0), n.sum(0)), n.sum(0))


def _mean_in(g: _Grid, rows: _Lines, lo: float, hi: float) -> np.ndarray:
    """Per account: mean value of the rows dated in ``(lo, hi]`` (NaN without rows)."""
    w = rows.window(lo, hi)
    total = np.bincount(rows.a[w], weights=rows.rev[w], minlength=g.A)
    count = np.bincount(rows.a[w], minlength=g.A).astype(float)
    return _ratio(total, count)


def _expansion_kpis(g: _Grid, tx: pd.DataFrame, a: np.ndarray, p: np.ndarray, R: np.ndarray):
    """Cross-sell and NRR; undefined where the year-earlier history is not covered."""
    k = g.year_lag
    keep = p >= 0
    lines = pd.DataFrame(
        {
            "a": a[keep],
            "p": p[keep],
            "line": tx["product_line"].astype(str).to_numpy()[keep],
            "rev": tx["revenue"].to_numpy(dtype=float)[keep],
        }
    )
    alp = lines.groupby(["a", "line", "p"], as_index=False)["rev"].sum()
    alp = alp[alp["rev"] > 0]
    history = np.arange(g.P) >= k  # a full year of history inside the grid

    # cross-sell: a line bought now, not in the k preceding periods, by an existing account
    alp = alp.sort_values(["a", "line", "p"])
    prev_line = alp.groupby(["a", "line"])["p"].shift()
    alp = alp.assign(new_line=prev_line.isna() | (alp["p"] - prev_line > k))
    active = R > 0
    ap = np.argwhere(active)
    act = pd.DataFrame({"a": ap[:, 0], "p": ap[:, 1]}).sort_values(["a", "p"])
    act["prev"] = act.groupby("a")["p"].shift()
    existing = np.zeros_like(active)
    ex_rows = act[act["prev"].notna() & (act["p"] - act["prev"] <= k)]
    existing[ex_rows["a"].to_numpy(), ex_rows["p"].to_numpy()] = True
    new_any = np.zeros_like(active)
    nl = alp[alp["new_line"]]
    new_any[nl["a"].to_numpy(), nl["p"].to_numpy()] = True
    elig = existing & history[None, :]
    X = np.where(elig, new_any.astype(float), np.nan)
    xn = elig.sum(0).astype(float)
    cross = _Kpi(X, elig.astype(float), _ratio(np.nansum(X, 0), xn), xn)

    # NRR: revenue now / revenue a year earlier of the year-earlier cohort
    R_prev = np.full_like(R, np.nan)
    R_prev[:, k:] = R[:, :-k] if k < g.P else R_prev[:, k:]
    cohort = (R_prev > 0) & history[None, :]
    V = np.where(cohort, _ratio(R, np.where(cohort, R_prev, 0.0)), np.nan)
    num = np.where(cohort, R, 0.0).sum(0)
    den = np.where(cohort, R_prev, 0.0).sum(0)
    nrr = _Kpi(V, cohort.astype(float), _ratio(num, den), cohort.sum(0).astype(float))
    return {"cross_sell_rate": cross, "nrr": nrr}


def _time_to_adoption(g: _Grid, contracts: pd.DataFrame) -> _Kpi:
    signed, live = _days(contracts["signed_date"]), _days(contracts["go_live_date"])
    ok = ~np.isnan(signed) & ~np.isnan(live)
    a = _codes(contracts["account_id"], g.accounts, "contracts")[ok]
    p = g.period_of(live[ok])
    dur = (live - signed)[ok]
    df = pd.DataFrame({"a": a, "p": p, "d": dur})
    df = df[df["p"] >= 0]
    V = np.full((g.A, g.P), np.nan)
    N = np.zeros((g.A, g.P))
    if len(df):
        med = df.groupby(["a", "p"])["d"].agg(["median", "size"]).reset_index()
        V[med["a"], med["p"]] = med["median"]
        N[med["a"], med["p"]] = med["size"]
    pm = df.groupby("p")["d"].median().reindex(range(g.P)).to_numpy(dtype=float)
    return _Kpi(V, N, pm, N.sum(0))


def _retention_after_adoption(g: _Grid, contracts: pd.DataFrame, months: int) -> _Kpi:
    """Accounts live for ``months`` by the evaluation date, not churned by then.

    Churned by day e: :func:`kam_analysis.status.contract_churn` at e (the one
    contract churn rule of the package).
    """
    a = _codes(contracts["account_id"], g.accounts, "contracts")
    first_live = np.full(g.A, np.inf)
    np.minimum.at(first_live, a, np.nan_to_num(_days(contracts["go_live_date"]), nan=np.inf))
    eval_ts = pd.Series(pd.to_datetime(g.eval_days, unit="D"))
    cutoff = _days(eval_ts - pd.DateOffset(months=months))
    V = np.full((g.A, g.P), np.nan)
    for i in range(g.P):
        churned = contract_churn(contracts, as_of=eval_ts[i]).set_index("account_id")["churned"]
        lost = churned.reindex(g.accounts, fill_value=False).to_numpy(dtype=bool)
        eligible = first_live <= cutoff[i]
        V[:, i] = np.where(eligible, np.where(lost, 0.0, 1.0), np.nan)
    n = (~np.isnan(V)).sum(0).astype(float)
    return _Kpi(V, (~np.isnan(V)).astype(float), _ratio(np.nansum(V, 0), n), n)


def _poc_kpis(
    g: _Grid,
    opps: pd.DataFrame,
    contracts: pd.DataFrame | None,
    months: int,
    notes: list[KpiNote],
) -> dict[str, _Kpi]:
    is_poc = opps["is_poc"].fillna(False).astype(bool).to_numpy()
    stage = opps["stage"].astype(str).to_numpy()
    won, lost = stage == "closed_won", stage == "closed_lost"
    a_all = _codes(opps["account_id"], g.accounts, "opportunities")
    close = _days(opps["close_date"])
    p_all = g.period_of(close)
    sel = is_poc & (won | lost)
    C = g.matrix(a_all[sel], p_all[sel])
    W = g.matrix(a_all[sel & won], p_all[sel & won])
    success = _Kpi(_ratio(W, C), C, _ratio(W.sum(0), C.sum(0)), C.sum(0))

    # conversion events: won non-PoC opportunities and signed contracts
    ev_a = [a_all[won & ~is_poc]]
    ev_d = [close[won & ~is_poc]]
    if contracts is not None:
        ca = _codes(contracts["account_id"], g.accounts, "contracts")
        sign = (
            _days(contracts["signed_date"])
            if "signed_date" in contracts
            else np.full(len(ca), np.nan)
        )
        if "start_date" in contracts:
            sign = np.where(np.isnan(sign), _days(contracts["start_date"]), sign)
        ev_a.append(ca)
        ev_d.append(sign)
    else:
        notes.append(KpiNote("kpi.note.poc_no_contracts", {}))
    ev = pd.DataFrame({"a": np.concatenate(ev_a), "d": np.concatenate(ev_d)}).dropna()
    wp = pd.DataFrame({"a": a_all, "p": p_all, "d": close})[sel & won]
    wp = wp[wp["p"] >= 0].groupby(["a", "p"], as_index=False)["d"].min()
    acc, per = wp["a"].to_numpy(dtype=np.int64), wp["p"].to_numpy(dtype=np.int64)
    d0 = wp["d"].to_numpy(dtype=float)
    # the window of each won PoC: to the same day `months` calendar months later
    start = pd.DatetimeIndex(_EPOCH + pd.to_timedelta(d0, unit="D"))
    d1 = ((start + pd.DateOffset(months=months)) - _EPOCH).days.to_numpy(dtype=float)
    # a conversion event of the same account in (d0, min(d1, as_of)]: accounts and days
    # as one sorted key, so that each window is two binary searches
    scale = 2.0**24  # more days than any date has
    keys = np.sort(ev["a"].to_numpy(dtype=float) * scale + ev["d"].to_numpy(dtype=float))
    after = np.searchsorted(keys, acc * scale + d0, side="right")
    upto = np.searchsorted(keys, acc * scale + np.minimum(d1, g.as_of_day), side="right")
    hit = upto > after
    V = np.full((g.A, g.P), np.nan)
    V[acc[hit], per[hit]] = 1.0
    lost_window = ~hit & (d1 <= g.as_of_day)
    V[acc[lost_window], per[lost_window]] = 0.0
    n = (~np.isnan(V)).sum(0).astype(float)
    conv = _Kpi(V, (~np.isnan(V)).astype(float), _ratio(np.nansum(V, 0), n), n)
    return {"poc_success_rate": success, "poc_conversion": conv}


def _utilisation(g: _Grid, usage: pd.DataFrame) -> _Kpi:
    a = _codes(usage["account_id"], g.accounts, "usage")
    p = g.period_of(_days(usage["month"]))
    act = pd.to_numeric(usage["seats_active"]).to_numpy(dtype=float)
    pur = pd.to_numeric(usage["seats_purchased"]).to_numpy(dtype=float)
    A_ = g.matrix(a, p, act)
    P_ = g.matrix(a, p, pur)
    n = g.matrix(a, p)
    return _Kpi(_ratio(A_, P_), n, _ratio(A_.sum(0), P_.sum(0)), n.sum(0))


def _ltv_kpi(g: _Grid, ltv: pd.Series) -> _Kpi:
    s = pd.Series(ltv)
    s.index = s.index.astype(str)
    unknown = s.index.difference(g.accounts)
    if len(unknown):
        raise KpiInputError(f"ltv: index holds accounts not in accounts, e.g. {list(unknown[:5])}")
    vals = pd.to_numeric(s).reindex(g.accounts).to_numpy(dtype=float)
    V = np.full((g.A, g.P), np.nan)
    V[:, -1] = vals
    n = np.zeros((g.A, g.P))
    n[:, -1] = ~np.isnan(vals)
    pv = np.full(g.P, np.nan)
    pv[-1] = np.nansum(vals) if (~np.isnan(vals)).any() else np.nan
    pn = np.zeros(g.P)
    pn[-1] = n[:, -1].sum()
    return _Kpi(V, n, pv, pn)


# --------------------------------------------------------------------------- compute


def compute_kpis(
    transactions: pd.DataFrame,
    accounts: pd.DataFrame,
    *,
    contracts: pd.DataFrame | None = None,
    opportunities: pd.DataFrame | None = None,
    activities: pd.DataFrame | None = None,
    surveys: pd.DataFrame | None = None,
    usage: pd.DataFrame | None = None,
    ltv: pd.Series | None = None,
    as_of=None,
    start=None,
    settings: KpiSettings | None = None,
    lapse_months: int = 12,
    recent_periods: int | None = None,
) -> KpiResult:
    """Compute every KPI the available tables allow, per account and for the portfolio.

    Book-level KPIs count only the accounts that are customers in the period:
    first purchase on or before the period's end and, at the start of the
    period, neither lapsed nor churned by
    :func:`kam_analysis.status.account_status` (unless they buy in the period).
    This is the denominator of executive contact (mean over accounts), share of
    wallet and upsell; cross-sell and NRR start from accounts that bought.

    *Share of wallet* is trailing-12-month revenue (up to the period's end, or
    the as-of date) over the wallet estimate, so it does not jump in a seasonal
    quarter; undefined until 12 months of history are covered. Trailing windows
    are whole calendar months (the month of the period's end, up to that day,
    and the 11 before), so that lines summed per month give the same KPIs. *Upsell*: an
    account is upsold when its trailing-12-month revenue in its existing product
    lines (lines with revenue in the 12 months before) exceeds that earlier
    revenue by more than ``settings.upsell_threshold`` (revenue at the lines'
    prices measures volume and price tier together); an account with seat
    counts (``usage``) in both 12-month windows is judged by its mean seats
    purchased instead. Needs 24 months of history. *Portfolio NPS* is the mean of the per-account NPS (each account
    once); the respondent-weighted (pooled) figure is ``nps_pooled`` of the
    result (:func:`portfolio_nps`).

    Parameters
    ----------
    transactions : pandas.DataFrame
        Contract columns ``account_id, date, product_line, revenue`` (+ optional ``cost``).
        Lines may come pre-aggregated (for large books): an ``n_lines`` column
        then gives the number of lines each row stands for (the ``n`` of the
        revenue KPIs). Rows summed per account, calendar month and product
        line, with lines without cost in rows of their own
        (:func:`kam_analysis.data.features.monthly_line_summary`), give the same
        KPIs as the lines, since every period is made of whole months.
    accounts : pandas.DataFrame
        ``account_id`` (the account universe) and optional ``wallet_estimate``.
    contracts, opportunities, activities, surveys, usage : pandas.DataFrame, optional
        The optional tables of the contract; ``None`` leaves out the KPIs that need
        them (``omitted``).
    ltv : pandas.Series, optional
        LTV per account (index ``account_id``), e.g. from :mod:`kam_analysis.ltv`.
    as_of : date-like, optional
        Analysis date; data after it is ignored. Default: the last transaction date.
    start : date-like, optional
        First period (the one containing ``start``). Default: the first transaction.
    settings : KpiSettings, optional
        Period, fiscal year, survey and PoC rules.
    lapse_months : int, default 12
        Months without a purchase after which an account is lapsed (as in
        ``[segmentation] lapse_months``).
    recent_periods : int, optional
        Keep the account values of the last ``recent_periods`` complete
        periods only (and of the incomplete period after them). Every value
        kept is the one computed without it: trailing windows still read all
        the data. :func:`assessed_periods` is what :func:`assess_kpis` reads
        for the latest complete period. Default: every period. The portfolio
        table always holds every period.

    Returns
    -------
    KpiResult
        ``values`` (account level), ``portfolio``, ``periods``, ``notes``, ``omitted``,
        ``active_accounts`` (customers per period), ``nps_pooled``.
        Long columns: ``[account_id,] period, period_start, period_end, complete, kpi_id,
        value, n, ci_low, ci_high, quality``. Definitions: :data:`KPI_DEFINITIONS`.

    Raises
    ------
    KpiInputError
        Missing contract columns, account ids not in ``accounts``, NPS outside 0-10,
        no transactions.
    """
    settings = settings or KpiSettings()
    for name, df in {
        "transactions": transactions,
        "accounts": accounts,
        "contracts": contracts,
        "opportunities": opportunities,
        "activities": activities,
        "surveys": surveys,
        "usage": usage,
    }.items():
        _require(df, name)
    if accounts["account_id"].duplicated().any():
        dup = accounts.loc[accounts["account_id"].duplicated(), "account_id"].astype(str)
        raise KpiInputError(f"accounts.account_id must be unique; duplicated e.g. {list(dup[:5])}")
    tx_dates = pd.to_datetime(transactions["date"])
    if tx_dates.notna().sum() == 0:
        raise KpiInputError("transactions: no rows with a date; nothing to compute")
    as_of = pd.Timestamp(as_of) if as_of is not None else tx_dates.max()
    start = pd.Timestamp(start) if start is not None else tx_dates.min()
    freq = settings.period
    periods = period_range(
        start,
        as_of,
        freq,
        settings.fiscal_year_start_month,
        fiscal_year_label=settings.fiscal_year_label,
    )
    periods["complete"] = periods["period_end"] <= as_of
    g = _Grid(pd.Index(accounts["account_id"].astype(str)), periods, as_of, freq)
    notes: list[KpiNote] = []
    omitted: dict[str, str] = {}
    kpis: dict[str, _Kpi] = {}

    a = _codes(transactions["account_id"], g.accounts, "transactions")
    p = g.period_of(_days(transactions["date"]))
    after = _days(transactions["date"]) > g.as_of_day
    w_lines = _line_counts(transactions)
    later = int(after.sum() if w_lines is None else w_lines[after].sum())
    if later:
        notes.append(KpiNote("kpi.note.later_lines", {"n": later, "date": str(as_of.date())}))
    rev_kpis, R = _revenue_kpis(g, transactions, a, p, notes, w_lines)
    kpis.update(rev_kpis)
    lines = _Lines(
        g,
        a,
        _days(transactions["date"]),
        transactions["revenue"].to_numpy(dtype=float),
        pd.factorize(transactions["product_line"], use_na_sentinel=False)[0],
    )
    active = _active_matrix(g, lines, contracts, lapse_months)
    if "gross_profit" not in kpis:
        for k in ("gross_profit", "gross_margin"):
            omitted[k] = "kpi.omission.no_cost"
    if ltv is None:
        omitted["ltv"] = "kpi.omission.no_ltv"
    else:
        kpis["ltv"] = _ltv_kpi(g, ltv)

    if surveys is None:
        omitted["nps"] = omitted["csat"] = "kpi.omission.no_surveys"
    else:
        survey_kpis, nps_pooled_kpi = _survey_kpis(g, surveys, settings)
        kpis.update(survey_kpis)
        if "csat" not in kpis:
            omitted["csat"] = "kpi.omission.no_csat"
    if activities is None:
        omitted["exec_contact"] = "kpi.omission.no_activities"
    else:
        kpis["exec_contact"] = _exec_contact(g, activities, active)

    if "wallet_estimate" in accounts.columns and accounts["wallet_estimate"].notna().any():
        wallet = pd.to_numeric(accounts["wallet_estimate"]).to_numpy(dtype=float)
        kpis["share_of_wallet"] = _share_of_wallet(g, _trailing_revenue(g, lines), wallet, active)
    else:
        omitted["share_of_wallet"] = "kpi.omission.no_wallet"
    kpis.update(_expansion_kpis(g, transactions, a, p, R))
    seats = None
    if usage is not None:
        seats = _Lines(
            g,
            _codes(usage["account_id"], g.accounts, "usage"),
            _days(usage["month"]),
            pd.to_numeric(usage["seats_purchased"]).to_numpy(dtype=float),
        )
    kpis["upsell_rate"] = _upsell(g, lines, active, settings.upsell_threshold, seats)
    if g.P <= g.year_lag:
        notes.append(KpiNote("kpi.note.history_none", {}))
    else:
        first = str(periods["period"].iloc[g.year_lag])
        notes.append(KpiNote("kpi.note.history_from", {"period": first}))

    if contracts is None:
        for k in ("time_to_adoption", "retention_after_adoption"):
            omitted[k] = "kpi.omission.no_contracts"
    else:
        has = [c for c in ("signed_date", "go_live_date") if c in contracts.columns]
        if len(has) == 2:
            kpis["time_to_adoption"] = _time_to_adoption(g, contracts)
        else:
            omitted["time_to_adoption"] = "kpi.omission.no_adoption_dates"
        if "go_live_date" in contracts.columns:
            kpis["retention_after_adoption"] = _retention_after_adoption(
                g, contracts, settings.retention_months
            )
        else:
            omitted["retention_after_adoption"] = "kpi.omission.no_go_live"
    if opportunities is None:
        omitted["poc_success_rate"] = omitted["poc_conversion"] = "kpi.omission.no_opportunities"
    elif "is_poc" not in opportunities.columns:
        omitted["poc_success_rate"] = omitted["poc_conversion"] = "kpi.omission.no_is_poc"
    else:
        kpis.update(_poc_kpis(g, opportunities, contracts, settings.poc_conversion_months, notes))
    if usage is None:
        omitted["utilisation"] = "kpi.omission.no_usage"
    else:
        kpis["utilisation"] = _utilisation(g, usage)

    computed = tuple(k for k in KPI_IDS if k in kpis)
    kept = _recent_positions(periods["complete"].to_numpy(), recent_periods)
    values, portfolio = _to_long(g, kpis, computed, settings.min_responses, kept)  # empties kpis
    nps_pooled = None
    if "nps" in computed:
        _, pooled = _to_long(g, {"nps": nps_pooled_kpi}, ("nps",), settings.min_responses, kept)
        nps_pooled = pooled
    return KpiResult(
        values=values,
        portfolio=portfolio,
        periods=periods,
        notes=notes,
        omitted={k: omitted[k] for k in KPI_IDS if k in omitted},
        settings=settings,
        as_of=as_of,
        computed=computed,
        active_accounts=pd.Series(
            active.sum(0), index=pd.Index(periods["period"], name="period"), name="active"
        ),
        nps_pooled=nps_pooled,
    )


def _recent_positions(complete: np.ndarray, recent: int | None) -> np.ndarray:
    """Positions of the periods whose account values are kept (see ``recent_periods``)."""
    every = np.arange(complete.size)
    if recent is None:
        return every
    if recent < 1:
        raise ValueError(f"recent_periods must be at least 1, got {recent}")
    done = np.flatnonzero(complete)
    first = done[-1] - recent + 1 if done.size else complete.size - 1
    return every[every >= first]


def assessed_periods(settings: KpiSettings) -> int:
    """Complete periods :func:`assess_kpis` reads up to the period it assesses.

    The period itself, the one a year earlier (growth targets) and the trend
    window (``settings.trend_periods``): ``compute_kpis(recent_periods=...)``
    with this number gives the same assessment of the latest complete period
    as the full history.
    """
    return max(12 // _MONTHS_PER_PERIOD[settings.period], settings.trend_periods) + 1


_QUALITY = np.array(["ok", "no_data", "insufficient"], dtype=object)
_PERIOD_COLUMNS = ["period", "period_start", "period_end", "complete"]
_NUMBER_COLUMNS = ["value", "n", "ci_low", "ci_high"]


def _quality_codes(v: np.ndarray, n: np.ndarray, survey: bool, min_responses: int) -> np.ndarray:
    """Data quality as positions in :data:`_QUALITY`: no value, too few survey answers, ok."""
    q = np.isnan(v).astype(np.int8)
    if survey:
        q[~np.isnan(v) & (n < min_responses)] = 2
    return q


def _to_long(g: _Grid, kpis: dict[str, _Kpi], computed, min_responses: int, kept: np.ndarray):
    """The account and portfolio long tables, built column by column.

    Rows run KPI by KPI, then account by account, then period by period. Text
    columns are taken from their few distinct values (one ``take`` each), not
    built row by row. Account rows are kept for the period positions ``kept``
    only; the portfolio has every period. Each KPI is taken out of ``kpis``
    once its cells are read, so that its account x period matrices are freed
    before the tables are built.
    """
    pinfo = g.periods[_PERIOD_COLUMNS].reset_index(drop=True)
    text = "str"  # pandas' default text dtype
    computed = list(computed)

    def frame(lead: dict[str, Any], lead_pos, per_pos, numbers, codes) -> pd.DataFrame:
        k = len(computed)
        if not k:
            return pd.DataFrame(
                columns=[*lead, *_PERIOD_COLUMNS, "kpi_id", *_NUMBER_COLUMNS, "quality"]
            )
        rows_per_kpi = len(per_pos)
        pos = np.tile(per_pos, k)
        cols: dict[str, Any] = {name: col.take(np.tile(lead_pos, k)) for name, col in lead.items()}
        for name in _PERIOD_COLUMNS:
            col = pinfo[name]
            cols[name] = pd.Series(col.to_numpy().take(pos), dtype=col.dtype, copy=False)
        kpi_names = pd.array(computed, dtype=text)
        cols["kpi_id"] = kpi_names.take(np.repeat(np.arange(k), rows_per_kpi))
        cols.update(zip(_NUMBER_COLUMNS, numbers, strict=True))
        cols["quality"] = pd.array(_QUALITY, dtype=text).take(codes)
        return pd.DataFrame(cols, copy=False)  # one block per column: no consolidating copy

    def account_cells(x: np.ndarray) -> np.ndarray:
        return (x if len(kept) == g.P else x[:, kept]).ravel().astype(float)

    def columns(size: int) -> tuple[list[np.ndarray], np.ndarray]:
        return [np.empty(size) for _ in _NUMBER_COLUMNS], np.empty(size, dtype=np.int8)

    def put(store, at: slice, v, n, ci, survey: bool) -> None:
        numbers, codes = store
        numbers[0][at], numbers[1][at] = v, n
        numbers[2][at], numbers[3][at] = ci if ci else (np.nan, np.nan)
        codes[at] = _quality_codes(v, n, survey, min_responses)

    # the number columns are filled KPI by KPI, not concatenated from parts
    cells = g.A * len(kept)
    acc, port = columns(len(computed) * cells), columns(len(computed) * g.P)
    for j, k in enumerate(computed):
        m = kpis.pop(k)
        ci = (account_cells(m.ci[0]), account_cells(m.ci[1])) if m.ci else None
        v, n = account_cells(m.value), account_cells(m.n)
        put(acc, slice(j * cells, (j + 1) * cells), v, n, ci, m.survey)
        pv, pn = m.portfolio.astype(float), m.portfolio_n.astype(float)
        put(port, slice(j * g.P, (j + 1) * g.P), pv, pn, m.portfolio_ci, m.survey)
    accounts = pd.array(g.accounts.astype(str), dtype=text)
    values = frame(
        {"account_id": accounts},
        np.repeat(np.arange(g.A), len(kept)),
        np.tile(kept, g.A),
        *acc,
    )
    portfolio = frame({}, np.zeros(g.P, dtype=np.int64), np.arange(g.P), *port)
    return values, portfolio


# --------------------------------------------------------------------------- status & trend


def kpi_status(
    measure,
    target: float,
    at_risk_band: float,
    higher_is_better: bool = True,
) -> np.ndarray:
    """Status of measures against a target: ``on_track``, ``at_risk``, ``off_track``, ``no_data``.

    ``on_track`` when the measure reaches the target (>= when higher is better,
    <= otherwise); ``at_risk`` when it misses by at most ``at_risk_band``;
    ``off_track`` beyond; ``no_data`` for NaN.

    Parameters
    ----------
    measure : float or array-like
    target, at_risk_band : float or array-like (broadcast against ``measure``)
    higher_is_better : bool

    Returns
    -------
    numpy.ndarray of str
    """
    m = np.atleast_1d(np.asarray(measure, dtype=float))
    gap = (target - m) if higher_is_better else (m - target)  # > 0: short of target
    target = np.asarray(target, dtype=float)
    eps = 1e-12 * np.maximum(1.0, np.abs(target))
    out = np.where(
        gap <= eps, "on_track", np.where(gap <= at_risk_band + eps, "at_risk", "off_track")
    )
    return np.where(np.isnan(m), "no_data", out).astype(object)


def attainment(measure, target: float, floor: float) -> np.ndarray:
    """Attainment 0-100: 0 at ``floor``, 100 at ``target``, linear between, capped.

    Works for both directions: when lower is better, ``floor`` lies above ``target``.
    """
    m = np.asarray(measure, dtype=float)
    return np.clip((m - floor) / (target - floor), 0.0, 1.0) * 100.0


def trend_test(
    values,
    *,
    higher_is_better: bool = True,
    ci_level: float = 0.90,
    flat_tolerance: float = 0.02,
) -> dict[str, float | str]:
    """Classify a short series as improving, flat or worsening.

    The values are regressed on their position 0..k-1 (OLS, NaNs skipped). The
    trend is ``flat`` when the two-sided ``ci_level`` t-interval of the slope
    contains 0 (no statistically clear change), or when the fitted change over
    the window, ``|slope| * (k - 1)``, is below ``flat_tolerance`` times the mean
    absolute value (no practically relevant change). Otherwise the sign of the
    slope and ``higher_is_better`` decide between ``improving`` and ``worsening``.
    Fewer than three values give ``insufficient_data``.

    Parameters
    ----------
    values : array-like of float
        Oldest first.
    higher_is_better : bool
    ci_level : float, default 0.90
    flat_tolerance : float, default 0.02

    Returns
    -------
    dict
        ``trend``, ``slope`` (units per period), ``slope_ci_low``, ``slope_ci_high``,
        ``n`` (values used).
    """
    y = np.asarray(values, dtype=float)
    if y.ndim != 1:
        raise ValueError("trend_test: values must be one-dimensional")
    res = trend_matrix(
        y[None, :],
        higher_is_better=higher_is_better,
        ci_level=ci_level,
        flat_tolerance=flat_tolerance,
    )
    return res.iloc[0].to_dict() | {"n": int(res["n"].iloc[0])}


def trend_matrix(
    values: np.ndarray,
    *,
    higher_is_better: bool = True,
    ci_level: float = 0.90,
    flat_tolerance: float = 0.02,
) -> pd.DataFrame:
    """:func:`trend_test` for every row of a 2-D array at once (columns: periods).

    Returns
    -------
    pandas.DataFrame
        One row per input row: ``trend, slope, slope_ci_low, slope_ci_high, n``.
    """
    Y = np.asarray(values, dtype=float)
    ok = ~np.isnan(Y)
    X = np.where(ok, np.arange(Y.shape[1], dtype=float)[None, :], np.nan)
    n = ok.sum(1)
    pos = np.arange(Y.shape[1], dtype=float)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = (np.where(ok, pos, 0.0).sum(1) / n)[:, None]
        ym = (np.where(ok, Y, 0.0).sum(1) / n)[:, None]
        xc, yc = np.where(ok, X - xm, 0.0), np.where(ok, Y - ym, 0.0)
        sxx = (xc**2).sum(1)
        b = (xc * yc).sum(1) / sxx
        ssr = ((yc - b[:, None] * xc) ** 2).sum(1)
        se = np.sqrt(ssr / (n - 2) / sxx)
        t = stats.t.ppf(0.5 + ci_level / 2, np.maximum(n - 2, 1))
        lo, hi = b - t * se, b + t * se
        span = np.where(ok, pos, -np.inf).max(1, initial=-np.inf) - np.where(ok, pos, np.inf).min(
            1, initial=np.inf
        )
        scale = np.where(ok, np.abs(Y), 0.0).sum(1) / n
    enough = n >= 3
    flat = (lo <= 0) & (hi >= 0) | (np.abs(b) * span < flat_tolerance * scale) | (b == 0)
    up = (b > 0) == higher_is_better
    trend = np.where(flat, "flat", np.where(up, "improving", "worsening")).astype(object)
    trend = np.where(enough, trend, "insufficient_data")
    nan = np.nan
    return pd.DataFrame(
        {
            "trend": trend,
            "slope": np.where(enough, b, nan),
            "slope_ci_low": np.where(enough, lo, nan),
            "slope_ci_high": np.where(enough, hi, nan),
            "n": n,
        }
    )


def _pick_period(result: KpiResult, period: str | None) -> int:
    per = result.periods
    if period is None:
        done = np.flatnonzero(per["complete"].to_numpy())
        return int(done[-1]) if done.size else len(per) - 1
    hits = np.flatnonzero(per["period"].to_numpy() == period)
    if not hits.size:
        raise ValueError(
            f"period {period!r} not in the result; available: {per['period'].tolist()}"
        )
    return int(hits[0])


def assess_kpis(
    result: KpiResult,
    *,
    period: str | None = None,
    level: Literal["account", "portfolio"] = "account",
    settings: KpiSettings | None = None,
    account_targets: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Target, status and trend of every KPI in one period.

    Parameters
    ----------
    result : KpiResult
        From :func:`compute_kpis`.
    period : str, optional
        Period label; default the last complete period (the last one when none is).
    level : {"account", "portfolio"}
    settings : KpiSettings, optional
        Default: the settings the result was computed with.
    account_targets : pandas.DataFrame, optional
        Per-account overrides: ``account_id, kpi_id, target`` (+ optional
        ``at_risk_band``), in the units of the KPI's basis.

    Returns
    -------
    pandas.DataFrame
        One row per account (or one for the portfolio) and KPI: ``[account_id,]
        period, kpi_id, family, horizon, value, n, quality, basis, measure, target,
        at_risk_band, attainment, status, trend, trend_slope``. ``measure`` is the
        value in the basis of the target (value, growth vs a year earlier, or
        percentile); ``attainment`` is 0-100 (:func:`attainment`). Snapshot KPIs (LTV)
        take their latest value.
    """
    settings = settings or result.settings
    i = _pick_period(result, period)
    lag = 12 // _MONTHS_PER_PERIOD[settings.period]
    src = result.values if level == "account" else result.portfolio.assign(account_id=PORTFOLIO_ID)
    labels = result.periods["period"].tolist()
    pos = pd.Series(range(len(labels)), index=labels)
    p_all = pos.reindex(src["period"]).to_numpy()
    first = i - assessed_periods(settings) + 1
    last = len(labels) - 1
    read = ((p_all >= first) & (p_all <= i)) | (p_all == last)
    # one KPI's rows at a time: the account table is not copied whole
    rows_of = src.groupby("kpi_id", sort=False).indices
    rows = []
    for k in result.computed:
        d = _DEF[k]
        at = rows_of[k][read[rows_of[k]]]
        sk = src.take(at).assign(_p=p_all[at])
        if d.grain == "snapshot":
            cur = sk[sk["_p"] == sk["_p"].max()]
        else:
            cur = sk[sk["_p"] == i]
        cur = cur.set_index("account_id")
        tgt = settings.targets.get(k)
        basis = tgt.basis if tgt else None
        value = cur["value"].astype(float)
        if basis == "growth":
            prev = sk[sk["_p"] == i - lag].set_index("account_id")["value"].reindex(cur.index)
            measure = pd.Series(_ratio(value.to_numpy(), prev.to_numpy()), index=cur.index) - 1
        elif basis == "percentile":
            measure = value.rank(pct=True) * 100 if level == "account" else value * np.nan
        else:
            measure = value
        out = pd.DataFrame(
            {
                "period": labels[i],
                "kpi_id": k,
                "family": d.family,
                "horizon": d.horizon,
                "value": value,
                "n": cur["n"],
                "quality": cur["quality"],
                "basis": basis,
                "measure": measure.astype(float),
            },
            index=cur.index,
        )
        if tgt is not None:
            t = pd.Series(tgt.target, index=cur.index, dtype=float)
            band = pd.Series(tgt.at_risk_band, index=cur.index, dtype=float)
            if account_targets is not None and level == "account":
                ov = account_targets[account_targets["kpi_id"] == k].set_index("account_id")
                ov.index = ov.index.astype(str)
                t.update(ov["target"].astype(float))
                if "at_risk_band" in ov:
                    band.update(ov["at_risk_band"].astype(float))
            out["target"] = t
            out["at_risk_band"] = band
            m = out["measure"].to_numpy()
            status = kpi_status(m, t.to_numpy(), band.to_numpy(), d.higher_is_better)
            att = attainment(m, t.to_numpy(), tgt.floor)
            out["attainment"] = att
            out["status"] = np.where(out["quality"] == "insufficient", "insufficient", status)
        else:
            out["target"] = np.nan
            out["at_risk_band"] = np.nan
            out["attainment"] = np.nan
            out["status"] = "no_target"
        tr = _trends(sk, i, settings, d.higher_is_better, cur.index)
        out["trend"] = tr["trend"]
        out["trend_slope"] = tr["slope"]
        rows.append(out.reset_index())
    res = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    if level == "portfolio" and len(res):
        res = res.drop(columns="account_id")
    return res


def _trends(sk: pd.DataFrame, i: int, settings: KpiSettings, hib: bool, index) -> pd.DataFrame:
    lo = i - settings.trend_periods + 1
    win = sk[(sk["_p"] >= lo) & (sk["_p"] <= i)]
    wide = win.pivot(index="account_id", columns="_p", values="value").reindex(
        index=index, columns=range(lo, i + 1)
    )
    res = trend_matrix(
        wide.to_numpy(dtype=float),
        higher_is_better=hib,
        ci_level=settings.trend_ci_level,
        flat_tolerance=settings.flat_tolerance,
    )
    res.index = index
    return res


# --------------------------------------------------------------------------- scorecard


def credibility(n, full: int) -> np.ndarray:
    """Square-root partial credibility ``min(1, sqrt(n / full))``.

    References
    ----------
    Longley-Cook, L. H. (1962). An introduction to credibility theory. Proceedings of the
    Casualty Actuarial Society 49, 194-221 (limited-fluctuation credibility).
    """
    n = np.asarray(n, dtype=float)
    return np.minimum(1.0, np.sqrt(np.clip(n, 0, None) / float(full)))


def balanced_scorecard(
    result: KpiResult,
    *,
    period: str | None = None,
    level: Literal["account", "portfolio"] = "account",
    settings: KpiSettings | None = None,
    account_targets: pd.DataFrame | None = None,
    family_weights: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Balanced scorecard: attainment per KPI, family scores and a 0-100 health score.

    Each KPI with a target is turned into an attainment 0-100 (:func:`attainment`).
    Survey KPIs with few answers are shrunk towards 50 with :func:`credibility`
    (``Z * attainment + (1 - Z) * 50``). Inside a family the long-horizon KPIs
    share ``long_term_weight`` of the family weight and the short-horizon ones the
    rest (all of it when only one kind has data), split by ``kpi_weights``. The
    health score is the family-weighted mean of the family scores over the
    families with data. Missing KPIs drop out and the weights renormalise, so
    the contributions always add up to the score.

    Parameters
    ----------
    result : KpiResult
    period, level, settings, account_targets
        As in :func:`assess_kpis`.
    family_weights : mapping, optional
        Weight of each family in the health score, instead of
        ``settings.family_weights`` (e.g. :attr:`HealthValidation.weights`).

    Returns
    -------
    pandas.DataFrame
        One row per account (``account_id = "portfolio"`` at portfolio level):
        ``account_id, period, health_score, n_kpis``, ``family_score_<family>``
        (0-100), ``family_contrib_<family>`` and ``contrib_<kpi>`` (points of the
        health score; each set sums to ``health_score``), ``attain_<kpi>`` (0-100 after
        credibility) and ``weight_<kpi>`` (share of the score). NaN health when no KPI
        has data.
    """
    settings = settings or result.settings
    table = assess_kpis(
        result, period=period, level=level, settings=settings, account_targets=account_targets
    )
    if level == "portfolio" and len(table):
        table = table.assign(account_id=PORTFOLIO_ID)
    kpis = [k for k in result.computed if k in settings.targets]
    table = table[table["kpi_id"].isin(kpis)]
    if table.empty:
        ids = result.values["account_id"].unique() if level == "account" else [PORTFOLIO_ID]
        return pd.DataFrame({"account_id": ids, "health_score": np.nan, "n_kpis": 0})
    att = table.pivot(index="account_id", columns="kpi_id", values="attainment").reindex(
        columns=kpis
    )
    n = table.pivot(index="account_id", columns="kpi_id", values="n").reindex(columns=kpis)
    for k in SURVEY_KPIS:
        if k in att:
            z = credibility(n[k].fillna(0).to_numpy(), settings.min_responses)
            att[k] = z * att[k] + (1 - z) * 50.0
    A = att.to_numpy(dtype=float)
    avail = ~np.isnan(A)
    kw = np.array([settings.kpi_weights.get(k, 1.0) for k in kpis])
    fam = np.array([_DEF[k].family for k in kpis])
    long_ = np.array([_DEF[k].horizon == "long" for k in kpis])
    W = np.zeros_like(A)  # weight of each KPI inside its family
    fam_score = {}
    fam_avail = {}
    for f in FAMILIES:
        cols = fam == f
        if not cols.any():
            continue
        w_f = np.zeros((A.shape[0], cols.sum()))
        av = avail[:, cols]
        lg = long_[cols]
        kwf = kw[cols]
        lw = np.where(av & lg, kwf, 0.0)
        sw = np.where(av & ~lg, kwf, 0.0)
        lsum, ssum = lw.sum(1, keepdims=True), sw.sum(1, keepdims=True)
        both = (lsum > 0) & (ssum > 0)
        share_long = np.where(both, settings.long_term_weight, np.where(lsum > 0, 1.0, 0.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            w_f = np.where(lsum > 0, lw / np.where(lsum > 0, lsum, 1) * share_long, 0.0) + np.where(
                ssum > 0, sw / np.where(ssum > 0, ssum, 1) * (1 - share_long), 0.0
            )
        W[:, cols] = w_f
        fam_avail[f] = av.any(1)
        fam_score[f] = np.where(fam_avail[f], np.nansum(np.nan_to_num(A[:, cols]) * w_f, 1), np.nan)
    fw_map = settings.family_weights if family_weights is None else family_weights
    fw = np.array([fw_map.get(f, 0.0) for f in fam_score])
    FA = np.column_stack([fam_avail[f] for f in fam_score]).astype(float) * fw
    tot = FA.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        FW = np.where(tot > 0, FA / np.where(tot > 0, tot, 1), 0.0)  # family share of the score
    fam_idx = {f: j for j, f in enumerate(fam_score)}
    kpi_share = np.column_stack(
        [
            W[:, j] * FW[:, fam_idx[fam[j]]] if fam[j] in fam_idx else W[:, j] * 0
            for j in range(len(kpis))
        ]
    )
    contrib_k = np.nan_to_num(A) * kpi_share
    health = np.where(tot[:, 0] > 0, contrib_k.sum(1), np.nan)
    out = pd.DataFrame(
        {
            "account_id": att.index,
            "period": table["period"].iloc[0],
            "health_score": health,
            "n_kpis": avail.sum(1),
        }
    )
    for f in FAMILIES:
        if f in fam_score:
            share = FW[:, fam_idx[f]]
            out[f"family_score_{f}"] = fam_score[f]
            out[f"family_contrib_{f}"] = np.where(
                tot[:, 0] > 0, np.nan_to_num(fam_score[f]) * share, np.nan
            )
    for j, k in enumerate(kpis):
        out[f"attain_{k}"] = A[:, j]
        out[f"contrib_{k}"] = np.where(tot[:, 0] > 0, contrib_k[:, j], np.nan)
        out[f"weight_{k}"] = kpi_share[:, j]
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- health validation


def mann_whitney_auc(score, event) -> float:
    """Area under the ROC curve: P(an event scores higher than a non-event), ties count 1/2.

    Computed from the Mann-Whitney U statistic, ``U / (n1 * n0)`` with
    ``U = R1 - n1 (n1 + 1) / 2`` and ``R1`` the sum of the (mid-)ranks of the
    events. Missing scores are left out.

    Parameters
    ----------
    score : array-like of float
        Risk score (higher: more likely an event). For a health score pass
        ``-health``.
    event : array-like of bool

    Returns
    -------
    float
        0.5 is no better than chance, 1 perfect; NaN without both events and
        non-events.

    References
    ----------
    Hanley, J. A. and McNeil, B. J. (1982). The meaning and use of the area under a
    receiver operating characteristic (ROC) curve. Radiology 143(1), 29-36.
    """
    s = np.asarray(score, dtype=float)
    e = np.asarray(event, dtype=bool)
    if s.shape != e.shape:
        raise ValueError(f"score and event differ in length: {s.shape} vs {e.shape}")
    s, e = s[~np.isnan(s)], e[~np.isnan(s)]
    n1, n0 = int(e.sum()), int((~e).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = stats.rankdata(s)
    return float((ranks[e].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def fit_family_weights(
    scores: pd.DataFrame, event, *, min_events: int = 20, ridge: float = 1.0
) -> dict[str, float] | None:
    """Family weights of the health score fitted to subsequent churn.

    A logistic regression of the churn event on each family's shortfall
    ``(100 - score) / 100``, with coefficients constrained to be >= 0 (a family
    can only lower the risk as its score rises) and a small ridge penalty;
    the weights are the coefficients divided by their sum, so ranking accounts
    by the weighted health score ranks them by the fitted risk. Missing family
    scores are filled with the family's mean.

    Parameters
    ----------
    scores : pandas.DataFrame
        One row per account, a column per family (0-100), e.g. the
        ``family_score_<family>`` columns of :func:`balanced_scorecard` renamed
        to the family names.
    event : array-like of bool
        Churned in the following window.
    min_events : int, default 20
        Fewest events (and non-events) to fit.
    ridge : float, default 1.0
        L2 penalty on the coefficients.

    Returns
    -------
    dict or None
        Family -> weight (sum 1; families without scores get 0); None with too
        few events or when no family is related to churn (all coefficients 0).
    """
    e = np.asarray(event, dtype=float)
    fams = [f for f in scores.columns if scores[f].notna().any()]
    if not fams or e.sum() < min_events or (1 - e).sum() < min_events:
        return None
    X = (100.0 - scores[fams].fillna(scores[fams].mean()).to_numpy(dtype=float)) / 100.0

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] + X @ theta[1:]
        r = stats.logistic.cdf(z) - e
        value = np.logaddexp(0.0, z).sum() - (e * z).sum() + ridge * (theta[1:] ** 2).sum()
        grad = np.concatenate([[r.sum()], X.T @ r + 2 * ridge * theta[1:]])
        return float(value), grad

    x0 = np.zeros(len(fams) + 1)
    x0[0] = np.log(e.mean() / (1 - e.mean()))
    bounds = [(None, None)] + [(0.0, None)] * len(fams)
    fit = optimize.minimize(loss, x0, jac=True, method="L-BFGS-B", bounds=bounds)
    b = np.clip(fit.x[1:], 0.0, None)
    if b.sum() <= 1e-9:
        return None
    w = dict.fromkeys(scores.columns, 0.0)
    w.update(dict(zip(fams, (b / b.sum()).tolist(), strict=True)))
    return w


@dataclass
class HealthValidation:
    """Family weights of the health score and their out-of-time validation.

    Attributes
    ----------
    weights : dict of str to float
        The family weights to use (fitted, or the configured ones when fitting
        was off or had too few events).
    fitted : bool
        Whether ``weights`` were fitted.
    reason : str or None
        Locale key of why the configured weights are used (None when fitted).
    configured : dict of str to float
        ``settings.family_weights``.
    fitted_weights : dict of str to float or None
    fit_window, validation_window : tuple of pandas.Timestamp or None
        ``(cut-off, end)``: health at the cut-off, churn in ``(cut-off, end]``.
    fit_n, fit_events : int
        Accounts at risk and churn events of the fit window.
    summary : pandas.DataFrame
        One row per weighting validated (``configured``, ``fitted``): ``weights,
        cutoff, end, n, events, auc`` (:func:`mann_whitney_auc` of the health
        score against churn in the validation window, accounts that were
        customers at the cut-off).
    """

    weights: dict[str, float]
    fitted: bool
    reason: str | None
    configured: dict[str, float]
    fitted_weights: dict[str, float] | None
    fit_window: tuple[pd.Timestamp, pd.Timestamp] | None
    validation_window: tuple[pd.Timestamp, pd.Timestamp] | None
    fit_n: int
    fit_events: int
    summary: pd.DataFrame

    def weights_table(self) -> pd.DataFrame:
        """``family, configured, fitted`` (fitted NaN when not fitted), one row per family."""
        fitted = self.fitted_weights or {}
        total = sum(self.configured.values()) or 1.0
        return pd.DataFrame(
            {
                "family": list(FAMILIES),
                "configured": [self.configured.get(f, 0.0) / total for f in FAMILIES],
                "fitted": [fitted.get(f, np.nan) for f in FAMILIES],
            }
        )


def _health_window(
    tables: dict[str, pd.DataFrame | None],
    accounts: pd.DataFrame,
    cutoff: pd.Timestamp,
    end: pd.Timestamp,
    settings: KpiSettings,
    lapse_months: int,
) -> pd.DataFrame | None:
    """The scorecard at ``cutoff`` of the customers then, and whether they left by ``end``.

    The scorecard (:func:`balanced_scorecard` with the configured weights)
    indexed by account, with a boolean ``event`` column; None when no line
    precedes ``cutoff``. Only the scorecard is kept: the KPI tables behind it
    are freed before the churn status is read.
    """
    tx = tables["transactions"]
    assert tx is not None
    if not (pd.to_datetime(tx["date"]) <= cutoff).any():
        return None
    res = compute_kpis(
        tx,
        accounts,
        **{k: v for k, v in tables.items() if k != "transactions"},
        as_of=cutoff,
        settings=settings,
        lapse_months=lapse_months,
        recent_periods=assessed_periods(settings),  # the scorecard's periods, not the history
    )
    card = balanced_scorecard(res)
    del res
    status = {
        when: churn_status(
            accounts,
            as_of=when,
            contracts=tables.get("contracts"),
            transactions=tx,
            lapse_months=lapse_months,
        ).set_index("account_id")
        for when in (cutoff, end)
    }
    at = status[cutoff]
    at_risk = at["last_purchase"].notna() & ~at["churned"]
    out = card.set_index(card["account_id"].astype(str))
    out = out[out.index.isin(at_risk.index[at_risk])]
    event = status[end]["churned"].reindex(out.index).to_numpy(dtype=bool)
    return out.assign(event=event)


def _families(card: pd.DataFrame) -> pd.DataFrame:
    cols = {f"family_score_{f}": f for f in FAMILIES if f"family_score_{f}" in card.columns}
    return card[list(cols)].rename(columns=cols)


def _weighted_health(card: pd.DataFrame, weights: Mapping[str, float]) -> np.ndarray:
    """The health score of a scorecard's accounts under other family weights.

    As :func:`balanced_scorecard` scores it: the weighted mean of the
    families with data (a family's score is NaN without), NaN when none has.
    """
    scores = _families(card)
    values = scores.to_numpy(dtype=float)
    w = np.array([weights.get(f, 0.0) for f in scores.columns]) * ~np.isnan(values)
    total = w.sum(axis=1)
    weighted = (np.nan_to_num(values) * w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, weighted / np.where(total > 0, total, 1.0), np.nan)


def _validation_row(name: str, window, val: pd.DataFrame, weights) -> dict:
    health = _weighted_health(val, weights)
    ok = ~np.isnan(health)
    event = val["event"].to_numpy(dtype=bool)
    return {
        "weights": name,
        "cutoff": window[0],
        "end": window[1],
        "n": int(ok.sum()),
        "events": int(event[ok].sum()),
        "auc": mann_whitney_auc(-health, event),
    }


def _weights_reason(settings: KpiSettings, fit, fitted) -> str | None:
    """Locale key of why the configured weights are used (None when fitted)."""
    if fitted is not None:
        return None
    if not settings.health_fit:
        return "kpi.health_reason.off"
    if fit is None or fit.empty:
        return "kpi.health_reason.no_history"
    events = fit["event"].to_numpy(dtype=bool)
    if min(events.sum(), (~events).sum()) < settings.health_min_events:
        return "kpi.health_reason.few_events"
    return "kpi.health_reason.no_signal"


def validate_health(
    transactions: pd.DataFrame,
    accounts: pd.DataFrame,
    *,
    contracts: pd.DataFrame | None = None,
    opportunities: pd.DataFrame | None = None,
    activities: pd.DataFrame | None = None,
    surveys: pd.DataFrame | None = None,
    usage: pd.DataFrame | None = None,
    as_of=None,
    settings: KpiSettings | None = None,
    lapse_months: int = 12,
) -> HealthValidation:
    """Fit the health score's family weights to churn and validate them out of time.

    With horizon ``h = settings.health_horizon_months``:

    * **fit window**: health at ``as_of - 2h``, churn (lapsed or churned by
      :func:`churn_status`) of the then customers by ``as_of - h``; the family
      weights are fitted there (:func:`fit_family_weights`), when
      ``settings.health_fit`` and at least ``settings.health_min_events`` events;
    * **validation window**: health at ``as_of - h``, churn by ``as_of``. The
      configured and the fitted weights are both scored there by AUC
      (:func:`mann_whitney_auc`), with n and the number of events.

    The fit never sees the validation window's outcomes.

    Parameters
    ----------
    transactions, accounts, contracts, opportunities, activities, surveys, usage
        As for :func:`compute_kpis`.
    as_of : date-like, optional
        Default: the last transaction date.
    settings : KpiSettings, optional
    lapse_months : int, default 12
        As ``[segmentation] lapse_months``.

    Returns
    -------
    HealthValidation
    """
    settings = settings or KpiSettings()
    as_of = pd.Timestamp(as_of) if as_of is not None else pd.to_datetime(transactions["date"]).max()
    h = pd.DateOffset(months=settings.health_horizon_months)
    tables = {
        "transactions": transactions,
        "contracts": contracts,
        "opportunities": opportunities,
        "activities": activities,
        "surveys": surveys,
        "usage": usage,
    }
    val_win = (as_of - h, as_of)
    fit_win = (as_of - h - h, as_of - h)
    configured = dict(settings.family_weights)
    fit = _health_window(tables, accounts, *fit_win, settings, lapse_months)
    val = _health_window(tables, accounts, *val_win, settings, lapse_months)
    fitted = None
    if settings.health_fit and fit is not None:
        fitted = fit_family_weights(
            _families(fit), fit["event"], min_events=settings.health_min_events
        )
    reason = _weights_reason(settings, fit, fitted)
    rows = []
    if val is not None:
        for name, w in (("configured", configured), ("fitted", fitted)):
            if w is not None:
                rows.append(_validation_row(name, val_win, val, w))
    rows = [r for r in rows if r["n"] > 0]  # no health score at the cut-off: no check
    cols = ["weights", "cutoff", "end", "n", "events", "auc"]
    return HealthValidation(
        weights=fitted if fitted is not None else configured,
        fitted=fitted is not None,
        reason=reason,
        configured=configured,
        fitted_weights=fitted,
        fit_window=fit_win if fit is not None else None,
        validation_window=val_win if val is not None else None,
        fit_n=0 if fit is None else len(fit),
        fit_events=0 if fit is None else int(fit["event"].sum()),
        summary=pd.DataFrame(rows, columns=cols),
    )


def _check_kpi(kpi_id: str) -> None:
    if kpi_id not in _DEF:
        raise KeyError(f"unknown KPI {kpi_id!r}; known: {list(KPI_IDS)}")


def kpi_label(kpi_id: str, lang: Literal["en", "ja"] = "en") -> str:
    """Display name of a KPI in English or Japanese (locale key ``kpi.name.<id>``).

    Parameters
    ----------
    kpi_id : str
        One of :data:`KPI_IDS`.
    lang : {"en", "ja"}

    Returns
    -------
    str

    Raises
    ------
    KeyError
        For an unknown KPI.
    """
    _check_kpi(kpi_id)
    return t(f"kpi.name.{kpi_id}", lang)


def kpi_definition(kpi_id: str, lang: Literal["en", "ja"] = "en") -> str:
    """Definition of a KPI in English or Japanese (locale key ``kpi.definition.<id>``).

    Parameters
    ----------
    kpi_id : str
        One of :data:`KPI_IDS`.
    lang : {"en", "ja"}

    Returns
    -------
    str

    Raises
    ------
    KeyError
        For an unknown KPI.
    """
    _check_kpi(kpi_id)
    return t(f"kpi.definition.{kpi_id}", lang)


# --------------------------------------------------------------------------- report helpers


def kpi_notes(result: KpiResult, lang: Literal["en", "ja"] = "en") -> list[str]:
    """The notes of a KPI result as report sentences in English or Japanese.

    First one line per omitted KPI (its display name and why it is missing, e.g.
    ``"Utilisation: not shown (no usage table)."``), then the other notes of
    :attr:`KpiResult.notes` (data left out, KPIs that need a year of history),
    each rendered from its locale key in ``lang``.

    Parameters
    ----------
    result : KpiResult
    lang : {"en", "ja"}

    Returns
    -------
    list of str
    """
    check_language(lang)
    out = [
        t("kpi.note.omitted", lang, kpi=kpi_label(k, lang), reason=t(reason, lang))
        for k, reason in result.omitted.items()
    ]
    out += [n.text(lang) if isinstance(n, KpiNote) else str(n) for n in result.notes]
    return out


def portfolio_nps(result: KpiResult, *, period: str | None = None) -> dict[str, Any]:
    """Portfolio NPS both ways: mean of the per-account NPS, and pooled over respondents.

    The mean of the accounts' NPS counts each account once; the pooled figure
    counts each respondent once, so accounts with many respondents weigh more.

    Parameters
    ----------
    result : KpiResult
        From :func:`compute_kpis` with a surveys table.
    period : str, optional
        Period label; default the last complete period (as :func:`assess_kpis`).

    Returns
    -------
    dict
        ``period``, ``account_mean``, ``n_accounts``, ``pooled``, ``n_responses``
        (NaN / 0 without answers in the period, or without surveys).
    """
    i = _pick_period(result, period)
    label = str(result.periods["period"].iloc[i])
    out: dict[str, Any] = {
        "period": label,
        "account_mean": float("nan"),
        "n_accounts": 0,
        "pooled": float("nan"),
        "n_responses": 0,
    }
    if "nps" not in result.computed or result.nps_pooled is None:
        return out
    mean = result.portfolio[
        (result.portfolio["kpi_id"] == "nps") & (result.portfolio["period"] == label)
    ]
    pooled = result.nps_pooled[result.nps_pooled["period"] == label]
    out["account_mean"] = float(mean["value"].iloc[0])
    out["n_accounts"] = int(mean["n"].iloc[0])
    out["pooled"] = float(pooled["value"].iloc[0])
    out["n_responses"] = int(pooled["n"].iloc[0])
    return out


def kpi_target_series(
    result: KpiResult,
    *,
    level: Literal["account", "portfolio"] = "portfolio",
    settings: KpiSettings | None = None,
    complete_only: bool = True,
) -> pd.DataFrame:
    """KPI values per period with the target and the at-risk boundary in the KPI's units.

    For charts that draw a KPI against its target. An ``absolute`` target is the
    target itself; a ``growth`` target becomes the value of the same period a
    year earlier times ``1 + target`` (so revenue is drawn against last year's
    revenue + 5 %); ``percentile`` targets have no line (NaN). The at-risk
    boundary is the target moved by ``at_risk_band`` in the unfavourable
    direction (below it when higher is better).

    Parameters
    ----------
    result : KpiResult
    level : {"account", "portfolio"}, default "portfolio"
    settings : KpiSettings, optional
        Default: the result's settings.
    complete_only : bool, default True
        Leave out periods that end after the as-of date (a partial period would
        read as a drop).

    Returns
    -------
    pandas.DataFrame
        ``[account_id,] period, period_start, complete, kpi_id, value, target_value,
        at_risk_value``, ordered by KPI (definition order) and period.
    """
    settings = settings or result.settings
    if level not in ("account", "portfolio"):
        raise ValueError(f"level must be 'account' or 'portfolio', got {level!r}")
    lag = 12 // _MONTHS_PER_PERIOD[settings.period]
    per = result.periods.reset_index(drop=True)
    src = result.values if level == "account" else result.portfolio.assign(account_id=PORTFOLIO_ID)
    frames = []
    for k in result.computed:
        sk = src[src["kpi_id"] == k]
        wide = sk.pivot(index="account_id", columns="period", values="value").reindex(
            columns=per["period"]
        )
        value = wide.to_numpy(dtype=float)
        tgt = settings.targets.get(k)
        nan = np.full_like(value, np.nan)
        if tgt is None or tgt.basis == "percentile":
            tv, rv = nan, nan.copy()
        else:
            sign = 1.0 if _DEF[k].higher_is_better else -1.0
            boundary = tgt.target - sign * tgt.at_risk_band
            if tgt.basis == "growth":
                prev = np.full_like(value, np.nan)
                if lag < value.shape[1]:
                    prev[:, lag:] = value[:, :-lag]
                tv, rv = prev * (1 + tgt.target), prev * (1 + boundary)
            else:
                tv, rv = np.full_like(value, tgt.target), np.full_like(value, boundary)
        out = pd.DataFrame(
            {
                "account_id": np.repeat(wide.index.to_numpy(dtype=object), len(per)),
                "period": np.tile(per["period"].to_numpy(dtype=object), len(wide)),
                "period_start": np.tile(per["period_start"].to_numpy(), len(wide)),
                "complete": np.tile(per["complete"].to_numpy(dtype=bool), len(wide)),
                "kpi_id": k,
                "value": value.ravel(),
                "target_value": tv.ravel(),
                "at_risk_value": rv.ravel(),
            }
        )
        frames.append(out)
    cols = ["account_id", "period", "period_start", "complete", "kpi_id", "value"]
    cols += ["target_value", "at_risk_value"]
    res = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
    if complete_only:
        res = res[res["complete"].astype(bool)].reset_index(drop=True)
    if level == "portfolio":
        res = res.drop(columns="account_id")
    return res


_UNITS_WITH_TEXT: tuple[str, ...] = ("per_quarter", "days")
"""Units written with a word (locale keys ``kpi.unit.<unit>``)."""


def format_kpi_value(
    value, unit: str, *, lang: Literal["en", "ja"] = "en", currency: str = "JPY"
) -> str:
    """A KPI value as report text, by its unit (see ``KPI_DEFINITIONS.unit``).

    ``currency`` compact money (``¥27.1B`` / ``¥271.2億``), ``ratio`` a percentage,
    ``score_1_5`` two decimals, ``score_-100_100`` signed integer, ``per_quarter``
    and ``days`` with their unit; missing values give ``"–"``.
    """

    check_language(lang)
    if value is None or pd.isna(value):
        return NA_TEXT
    v = float(value)
    if unit == "currency":
        return fmt_money(v, currency, compact=True, lang=lang)
    if unit == "ratio":
        return fmt_pct(v, 1)
    if unit == "score_1_5":
        return f"{v:.2f}"
    if unit == "score_-100_100":
        return f"{v:+.0f}"
    if unit in _UNITS_WITH_TEXT:
        return t(f"kpi.unit.{unit}", lang, v=v)
    return f"{v:,.2f}"


def format_kpi_target(
    kpi_id: str,
    target: KpiTarget | None,
    *,
    lang: Literal["en", "ja"] = "en",
    currency: str = "JPY",
) -> str:
    """A KPI target as report text, e.g. ``"≥ +5.0% vs a year earlier"`` or ``"≤ 90 days"``."""

    check_language(lang)
    _check_kpi(kpi_id)
    if target is None:
        return NA_TEXT
    d = _DEF[kpi_id]
    if target.basis == "growth":
        return t("kpi.target.growth", lang, value=fmt_pct(target.target, 1, signed=True))
    if target.basis == "percentile":
        return t("kpi.target.percentile", lang, value=f"{target.target:.0f}")
    v = format_kpi_value(target.target, d.unit, lang=lang, currency=currency)
    return t("kpi.target.at_least" if d.higher_is_better else "kpi.target.at_most", lang, value=v)


def scorecard_table(
    assessed: pd.DataFrame,
    *,
    lang: Literal["en", "ja"] = "en",
    currency: str = "JPY",
    settings: KpiSettings | None = None,
) -> pd.DataFrame:
    """Report table of a portfolio (or one account) assessment: one row per KPI, as text.

    Parameters
    ----------
    assessed : pandas.DataFrame
        :func:`assess_kpis` output for one entity (``level="portfolio"``, or the rows
        of one account).
    lang : {"en", "ja"}
    currency : str, default "JPY"
    settings : KpiSettings, optional
        For the target texts (default: the default settings; pass ``result.settings``).

    Returns
    -------
    pandas.DataFrame
        ``kpi_id, kpi, family, horizon, value, target, status, trend, definition``:
        display name, family and horizon names and definition in ``lang``; ``value``
        formatted by unit, with the change against a year earlier appended for
        growth targets (``"¥27.1B (+11.4%)"``); ``target`` as text; ``status`` and
        ``trend`` kept as codes (``on_track`` ..., ``improving`` ...) for styling.
        Ordered by family, then definition order.

    Raises
    ------
    ValueError
        When ``assessed`` holds several rows for one KPI (several accounts).
    """

    check_language(lang)
    settings = settings or KpiSettings()
    need = ["kpi_id", "value", "measure", "basis", "status", "trend"]
    missing = [c for c in need if c not in assessed.columns]
    if missing:
        raise ValueError(f"scorecard_table: assessed lacks column(s) {missing}; pass assess_kpis()")
    if assessed["kpi_id"].duplicated().any():
        raise ValueError(
            "scorecard_table: one row per KPI expected; filter assess_kpis() to one account"
        )
    rows = []
    order = {k: (FAMILIES.index(_DEF[k].family), i) for i, k in enumerate(KPI_IDS)}
    for r in sorted(assessed.itertuples(index=False), key=lambda r: order[r.kpi_id]):
        d = _DEF[r.kpi_id]
        value = format_kpi_value(r.value, d.unit, lang=lang, currency=currency)
        if r.basis == "growth" and pd.notna(r.measure):
            value += f" ({fmt_pct(r.measure, 1, signed=True)})"
        rows.append(
            {
                "kpi_id": r.kpi_id,
                "kpi": kpi_label(r.kpi_id, lang),
                "family": t(f"kpi.family.{d.family}", lang),
                "horizon": t(f"kpi.horizon.{d.horizon}", lang),
                "value": value,
                "target": format_kpi_target(
                    r.kpi_id, settings.targets.get(r.kpi_id), lang=lang, currency=currency
                ),
                "status": r.status,
                "trend": r.trend,
                "definition": kpi_definition(r.kpi_id, lang),
            }
        )
    cols = ["kpi_id", "kpi", "family", "horizon", "value", "target", "status", "trend"]
    return pd.DataFrame(rows, columns=[*cols, "definition"])


# --------------------------------------------------------------------------- health & churn


def health_shortfall(card: pd.DataFrame) -> pd.DataFrame:
    """Points of the health score each KPI loses, per account (long).

    In :func:`balanced_scorecard` a KPI with share ``w`` of the score and
    attainment ``a`` contributes ``w * a``; it *loses* ``w * (100 - a)`` points
    against full attainment. Per account the losses add up to
    ``100 - health_score``, so the largest losses are the KPIs that pull the
    health score down.

    Parameters
    ----------
    card : pandas.DataFrame
        :func:`balanced_scorecard` output (``account_id, weight_<kpi>, contrib_<kpi>,
        attain_<kpi>``).

    Returns
    -------
    pandas.DataFrame
        ``account_id, kpi_id, family, attainment, weight, points_lost``; one row per
        account and KPI with a weight > 0, sorted by account and ``points_lost``
        descending.
    """
    if "account_id" not in card.columns:
        raise ValueError(
            "health_shortfall: card has no account_id column; pass balanced_scorecard()"
        )
    kpis = [c[len("weight_") :] for c in card.columns if c.startswith("weight_")]
    unknown = [k for k in kpis if k not in _DEF]
    if unknown:
        raise ValueError(f"health_shortfall: unknown KPI column(s) weight_{unknown[0]}")
    cols = ["account_id", "kpi_id", "family", "attainment", "weight", "points_lost"]
    if not kpis:
        return pd.DataFrame(columns=cols)
    n = len(card)
    w = card[[f"weight_{k}" for k in kpis]].to_numpy(dtype=float)
    c = card[[f"contrib_{k}" for k in kpis]].to_numpy(dtype=float)
    a = card[[f"attain_{k}" for k in kpis]].to_numpy(dtype=float)
    out = pd.DataFrame(
        {
            "account_id": np.repeat(card["account_id"].to_numpy(dtype=object), len(kpis)),
            "kpi_id": np.tile(np.array(kpis, dtype=object), n),
            "family": np.tile(np.array([_DEF[k].family for k in kpis], dtype=object), n),
            "attainment": a.ravel(),
            "weight": w.ravel(),
            "points_lost": np.clip(w * 100.0 - np.nan_to_num(c), 0.0, None).ravel(),
        }
    )
    out = out[out["weight"] > 0]
    return out.sort_values(
        ["account_id", "points_lost", "kpi_id"], ascending=[True, False, True], kind="stable"
    ).reset_index(drop=True)[cols]


def accounts_at_risk(
    card: pd.DataFrame,
    tiers: pd.Series | pd.DataFrame,
    *,
    churn: pd.DataFrame | None = None,
    include_tiers: tuple[str, ...] = ("key", "growth"),
    n: int = 10,
    max_health: float | None = 50.0,
    top_k: int = 3,
    min_points: float = 1.0,
    lang: Literal["en", "ja"] = "en",
) -> pd.DataFrame:
    """The accounts that matter most with the lowest health, and what pulls them down.

    Selects accounts of ``include_tiers`` with a health score at most
    ``max_health``, leaves out accounts that have already left (``churn``), and
    returns the ``n`` lowest, each with its ``top_k`` largest
    :func:`health_shortfall` losses as the reasons.

    Parameters
    ----------
    card : pandas.DataFrame
        :func:`balanced_scorecard` output.
    tiers : pandas.Series or pandas.DataFrame
        Tier per account: a Series indexed by ``account_id`` or a frame with
        ``account_id, tier``.
    churn : pandas.DataFrame, optional
        :func:`churn_status` output (``account_id, churned``); churned accounts are
        not listed (they are lost, not at risk). Their number is in
        ``result.attrs["excluded_churned"]``.
    include_tiers : tuple of str, default ("key", "growth")
    n : int, default 10
    max_health : float or None, default 50
        Only accounts at or below this health score (None: no bound).
    top_k : int, default 3
        Reasons per account.
    min_points : float, default 1
        Losses smaller than this are not named as reasons.
    lang : {"en", "ja"}
        Language of ``drivers``.

    Returns
    -------
    pandas.DataFrame
        ``account_id, tier, health_score, n_kpis, weakest_family, points_lost_top,
        [days_since_purchase,] drivers`` (``"NPS −12 pts; Executive contact frequency
        −8 pts"``), lowest health first (ties by ``account_id``);
        ``days_since_purchase`` when ``churn`` (from :func:`churn_status`) has it. ``attrs["excluded_churned"]``: churned
        accounts of ``include_tiers`` left out.
    """
    check_language(lang)
    if n < 0 or top_k < 1:
        raise ValueError("accounts_at_risk: n must be >= 0 and top_k >= 1")
    for col in ("account_id", "health_score", "n_kpis"):
        if col not in card.columns:
            raise ValueError(f"accounts_at_risk: card lacks {col!r}; pass balanced_scorecard()")
    tier = _tier_series(tiers, "accounts_at_risk")
    ids = card["account_id"].astype(str)
    tier_of = tier.reindex(ids).to_numpy()
    keep = pd.Series(np.isin(tier_of, list(include_tiers)), index=card.index)
    excluded = 0
    if churn is not None:
        if not {"account_id", "churned"} <= set(churn.columns):
            raise ValueError("accounts_at_risk: churn needs columns account_id, churned")
        gone = set(churn.loc[churn["churned"].astype(bool), "account_id"].astype(str))
        is_gone = ids.isin(gone)
        excluded = int((keep & is_gone).sum())
        keep &= ~is_gone
    h = card["health_score"].astype(float)
    keep &= h.notna()
    if max_health is not None:
        keep &= h <= max_health
    sel = card.loc[keep, ["account_id", "health_score", "n_kpis"]].assign(
        account_id=lambda d: d["account_id"].astype(str), tier=tier_of[keep.to_numpy()]
    )
    sel = sel.sort_values(["health_score", "account_id"], kind="stable").head(n)
    fam_cols = [f"family_score_{f}" for f in FAMILIES if f"family_score_{f}" in card.columns]
    fam = card.loc[sel.index, fam_cols]
    weakest = (
        fam.apply(lambda r: r.idxmin() if r.notna().any() else None, axis=1)
        if fam_cols
        else pd.Series(None, index=sel.index)
    )
    sel["weakest_family"] = [
        t(f"kpi.family.{w[len('family_score_') :]}", lang) if isinstance(w, str) else None
        for w in weakest
    ]
    loss = health_shortfall(card.loc[sel.index].assign(account_id=sel["account_id"]))
    loss = loss[loss["points_lost"] >= min_points].groupby("account_id", sort=False).head(top_k)
    text = loss.assign(
        _t=[
            t("kpi.driver", lang, kpi=kpi_label(k, lang), points=p)
            for k, p in zip(loss["kpi_id"], loss["points_lost"], strict=True)
        ]
    )
    sel["points_lost_top"] = (
        loss.groupby("account_id")["points_lost"].max().reindex(sel["account_id"]).to_numpy()
    )
    sel["drivers"] = (
        text.groupby("account_id")["_t"].agg("; ".join).reindex(sel["account_id"]).fillna("")
    ).to_numpy()
    cols = ["account_id", "tier", "health_score", "n_kpis", "weakest_family", "points_lost_top"]
    if churn is not None and "days_since_purchase" in churn.columns:
        days = churn.set_index(churn["account_id"].astype(str))["days_since_purchase"]
        sel["days_since_purchase"] = days.reindex(sel["account_id"]).to_numpy(dtype=float)
        cols.append("days_since_purchase")
    out = sel[[*cols, "drivers"]].reset_index(drop=True)
    out.attrs["excluded_churned"] = excluded
    return out


def tier_health(
    card: pd.DataFrame,
    tiers: pd.Series | pd.DataFrame,
    *,
    churn: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Health score per account with its tier and whether it has already left.

    Parameters
    ----------
    card : pandas.DataFrame
        :func:`balanced_scorecard` output (``account_id, health_score``).
    tiers : pandas.Series or pandas.DataFrame
        As in :func:`accounts_at_risk`.
    churn : pandas.DataFrame, optional
        :func:`churn_status` output; without it no account counts as churned.

    Returns
    -------
    pandas.DataFrame
        ``account_id, tier, health_score, churned`` in the order of ``card``
        (accounts without a tier get a missing tier).
    """
    tier = _tier_series(tiers, "tier_health")
    ids = card["account_id"].astype(str)
    out = pd.DataFrame(
        {
            "account_id": ids.to_numpy(),
            "tier": tier.reindex(ids).to_numpy(),
            "health_score": card["health_score"].to_numpy(dtype=float),
        }
    )
    gone: set[str] = set()
    if churn is not None:
        if not {"account_id", "churned"} <= set(churn.columns):
            raise ValueError("tier_health: churn needs columns account_id, churned")
        gone = set(churn.loc[churn["churned"].astype(bool), "account_id"].astype(str))
    out["churned"] = out["account_id"].isin(gone).to_numpy(dtype=bool)
    return out


def tier_health_summary(health: pd.DataFrame, *, order: tuple[str, ...] = ()) -> pd.DataFrame:
    """Health score distribution per tier over the accounts that have not left.

    Parameters
    ----------
    health : pandas.DataFrame
        :func:`tier_health` output.
    order : tuple of str, optional
        Tiers first in this order (e.g. ``("key", "growth", "standard")``), others after.

    Returns
    -------
    pandas.DataFrame
        One row per tier: ``tier, accounts`` (not churned, with a health score),
        ``churned``, ``median_health``, ``q25_health``, ``q75_health``.
    """
    need = {"tier", "health_score", "churned"}
    if not need <= set(health.columns):
        raise ValueError(f"tier_health_summary: needs columns {sorted(need)}; pass tier_health()")
    h = health[health["tier"].notna()]
    live = h[~h["churned"].astype(bool) & h["health_score"].notna()]
    g = live.groupby("tier")["health_score"]
    present = sorted(h["tier"].unique())
    tiers_seen = list(dict.fromkeys([*[t for t in order if t in set(present)], *present]))
    out = pd.DataFrame(
        {
            "tier": tiers_seen,
            "accounts": g.size().reindex(tiers_seen).fillna(0).astype(int).to_numpy(),
            "churned": h.groupby("tier")["churned"]
            .sum()
            .reindex(tiers_seen)
            .astype(int)
            .to_numpy(),
            "median_health": g.median().reindex(tiers_seen).to_numpy(),
            "q25_health": g.quantile(0.25).reindex(tiers_seen).to_numpy(),
            "q75_health": g.quantile(0.75).reindex(tiers_seen).to_numpy(),
        }
    )
    return out


def _tier_series(tiers: pd.Series | pd.DataFrame, where: str) -> pd.Series:
    if isinstance(tiers, pd.DataFrame):
        if not {"account_id", "tier"} <= set(tiers.columns):
            raise ValueError(f"{where}: tiers frame needs columns account_id, tier")
        return tiers.set_index(tiers["account_id"].astype(str))["tier"]
    tier = pd.Series(tiers)
    tier.index = tier.index.astype(str)
    return tier


def churn_status(
    accounts: pd.DataFrame,
    *,
    as_of,
    contracts: pd.DataFrame | None = None,
    transactions: pd.DataFrame | None = None,
    lapse_months: int = 12,
) -> pd.DataFrame:
    """Which accounts have already left by the as-of date, as far as the data shows.

    The account status of :func:`kam_analysis.status.account_status` (the one
    rule of the package): an account has left when it is *churned* (its
    contracts say it left, none runs at ``as_of``, none started after the
    churn) or *lapsed* (it has bought before, but not in the last
    ``lapse_months`` calendar months, and no contract runs at ``as_of``).
    Accounts that never bought are not churned.

    Parameters
    ----------
    accounts : pandas.DataFrame
        ``account_id`` (the universe).
    as_of : date-like
    contracts : pandas.DataFrame, optional
        ``account_id, status`` (+ ``start_date, end_date, churn_date``).
    transactions : pandas.DataFrame, optional
        ``account_id, date`` (+ ``revenue``: then only days with positive net
        revenue are purchases), e.g. the lines or one row per account with its
        last purchase.
    lapse_months : int, default 12
        As ``[segmentation] lapse_months``.

    Returns
    -------
    pandas.DataFrame
        One row per account: ``account_id, status, last_purchase,
        days_since_purchase, running_contract, contract_churned, lapsed,
        churned`` (``churned``: lapsed or contract-churned).

    Raises
    ------
    KpiInputError
        Missing columns.
    """
    _check_columns(accounts, "accounts", ("account_id",))
    as_of = pd.Timestamp(as_of).normalize()
    ids = pd.Index(accounts["account_id"].astype(str))
    last = pd.Series(pd.NaT, index=ids, dtype="datetime64[ns]")
    if transactions is not None:
        last = _last_purchase(transactions, as_of).reindex(ids)
    if contracts is not None:
        _require(contracts, "contracts")
    st = account_status(
        pd.DataFrame({"account_id": ids, "last_purchase": last.to_numpy()}),
        as_of=as_of,
        contracts=contracts,
        lapse_months=lapse_months,
    )
    status = st["status"].to_numpy(dtype=object)
    return pd.DataFrame(
        {
            "account_id": ids,
            "status": status,
            "last_purchase": st["last_purchase"].to_numpy(),
            "days_since_purchase": (as_of - st["last_purchase"]).dt.days.to_numpy(dtype=float),
            "running_contract": st["running_contract"].to_numpy(dtype=bool),
            "contract_churned": status == "churned",
            "lapsed": status == "lapsed",
            "churned": np.isin(status, LOST_STATUSES),
        }
    )


def _last_purchase(transactions: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """Last purchase day per account up to ``as_of`` (days with positive net revenue)."""
    _check_columns(transactions, "transactions", ("account_id", "date"))
    day = pd.to_datetime(transactions["date"]).dt.normalize()
    keep = (day <= as_of).to_numpy()
    tx = pd.DataFrame(
        {"account_id": transactions["account_id"].astype(str)[keep], "day": day[keep]}
    )
    if "revenue" in transactions.columns:
        tx["revenue"] = pd.to_numeric(transactions["revenue"])[keep].to_numpy(dtype=float)
        net = tx.groupby(["account_id", "day"], sort=False)["revenue"].sum()
        tx = net[net > 0].index.to_frame(index=False)
    return tx.groupby("account_id")["day"].max().astype("datetime64[ns]")


def _check_columns(df: pd.DataFrame, table: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KpiInputError(f"{table}: missing column(s) {missing}; found {list(df.columns)[:12]}")


__all__ = [
    "FAMILIES",
    "HealthValidation",
    "KPI_DEFINITIONS",
    "KPI_IDS",
    "KpiDefinition",
    "KpiInputError",
    "KpiNote",
    "KpiResult",
    "KpiSettings",
    "KpiTarget",
    "accounts_at_risk",
    "assess_kpis",
    "attainment",
    "balanced_scorecard",
    "churn_status",
    "compute_kpis",
    "credibility",
    "fit_family_weights",
    "format_kpi_target",
    "format_kpi_value",
    "health_shortfall",
    "kpi_definition",
    "kpi_label",
    "kpi_notes",
    "kpi_target_series",
    "mann_whitney_auc",
    "kpi_status",
    "nps_score",
    "period_index",
    "portfolio_nps",
    "period_range",
    "scorecard_table",
    "tier_health",
    "tier_health_summary",
    "trend_matrix",
    "trend_test",
    "validate_health",
]

"""Synthetic demo dataset: a realistic B2B account book with planted truths.

:func:`generate_dataset` writes every table of the data contract
(:mod:`kam_analysis.core.schemas`) as Parquet, plus the truths it planted
(``ground_truth.json`` and ``ground_truth_accounts.parquet``) so that the
analyses can test themselves by recovering them:

* **Tiers.** Each account draws a true tier first (key ≈ 5 %, growth ≈ 15 %,
  standard ≈ 80 %); wallet, share of wallet (SoW), qualitative scores and
  cross-sell speed are drawn conditional on it, with overlapping noise.
  Key = large wallet, high SoW, high scores; growth = large wallet, low SoW
  (headroom), high strategic fit and synergy; standard = smaller, middling.
* **Revenue.** Heavy-tailed (lognormal) wallets; monthly run-rate = wallet ×
  SoW × fiscal-year seasonality × continuous annual growth × noise, split
  over the product lines the account has adopted (industry-specific
  preferences, so peers buy alike).
* **Market.** One market factor shared by every account: a Gaussian random
  walk ``market[m]`` on the log of every customer's wallet (annual SD
  ``market_volatility_annual``, monthly steps N(0, σ²/12), ``market[0] = 0``
  in the window's first month, no drift correction), so the revenue of all
  accounts moves together from month to month on top of each account's own
  path. Wallet, revenue, contract and opportunity amounts, the wallet
  estimate and the truths all use ``wallet × exp(market[m])``; shares of
  wallet are unchanged. Recorded in ``ground_truth.json`` (``"market"``).
* **Concentration.** A lognormal book of 2,000 accounts has a largest customer
  at under 2 % of revenue; B2B books usually have one at 5-15 % and a top 10
  at 30-50 %. After every random draw the wallets of the largest (key)
  accounts are scaled up so that the last 12 months' top-1 and top-10 shares
  are at least ``top1_revenue_share`` (8 %) and ``top10_revenue_share``
  (35 %) of :class:`SyntheticSettings` (:func:`zipf_top_shares` spreads the
  top 10); the random stream, so every other table and truth, is unchanged.
* **Churn.** A time-varying proportional monthly hazard
  ``h = h0 · exp(β_nps x_nps + β_exec x_exec + β_util (utilisation − 0.7) · 10)
  · HR_tenure · HR_renewal``: ``x_exec`` = no executive meeting in the previous
  12 months (executive engagement switches on and off), ``x_nps`` = the latest
  survey response of the previous 12 months minus 7 (the latent NPS drifts),
  a hazard ratio per tenure band (0-12, 12-24, 24-36 months against 36+) and
  one in the month a contract term ends (renewal clustering). After churn an
  account has no more transactions, activities, surveys or usage; usage seats
  are Binomial(seats, utilisation).

Scale and determinism
---------------------
Account-level truths (tiers, wallets, churn, adoption months) are drawn for
all accounts at once from one generator; everything per event (transactions,
activities, surveys, usage, opportunities, stakeholders, contracts) is drawn
per block of :data:`RNG_BLOCK_ACCOUNTS` accounts with a generator spawned
from ``np.random.SeedSequence(seed)`` for that block index. The market path
has its own stream (``SeedSequence([seed, _MARKET_STREAM])``, like the plan
tables and the messy export), so ``market_volatility_annual`` moves only the
wallet-dependent amounts and 0 gives the book without a market. The content of
every table therefore depends only on ``seed``, ``n_accounts``, the dates
and ``lines_per_account_month`` — **not** on ``chunk_accounts``, which only
sets how many accounts are written per Parquet row group (and so bounds the
memory used: about ``max(chunk_accounts, RNG_BLOCK_ACCOUNTS)`` accounts of
events are held at a time).

The messy export of the same book is written by
:mod:`kam_analysis.synthetic.messy`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, model_validator

from kam_analysis.core.schemas import (
    ACTIVITY_KINDS,
    CANONICAL_TABLES,
    OPPORTUNITY_STAGES,
    OPPORTUNITY_TYPES,
    PRICING_MODELS,
    QUALITATIVE_CRITERIA,
    ROLES,
    STANCES,
)
from kam_analysis.synthetic.plans import PLAN_TABLES, PLAN_TRUTH_FILE, write_plan_tables

__all__ = [
    "GROUND_TRUTH_FILES",
    "INDUSTRIES",
    "PRODUCT_LINES",
    "REGIONS",
    "RNG_BLOCK_ACCOUNTS",
    "TABLE_SCHEMAS",
    "TIERS",
    "SyntheticSettings",
    "generate_dataset",
    "industry_product_preferences",
    "seasonality_factors",
]

RNG_BLOCK_ACCOUNTS = 1000
"""Accounts per random-number block (fixed, so output does not depend on chunking)."""

TIERS = ("key", "growth", "standard")
INDUSTRIES = (
    "Manufacturing",
    "Retail",
    "Finance",
    "Healthcare",
    "Logistics",
    "IT Services",
    "Energy",
    "Public Sector",
)
REGIONS = ("Kanto", "Kansai", "Chubu", "Kyushu", "Tohoku", "Hokkaido", "Chugoku", "Overseas")
PRODUCT_LINES = (
    "Core Platform",
    "Analytics",
    "Security",
    "Integration",
    "Cloud Storage",
    "IoT Sensors",
    "Managed Services",
    "Consulting",
    "Training",
    "Support Plus",
)
GROUND_TRUTH_FILES = ("ground_truth.json", "ground_truth_accounts.parquet", PLAN_TRUTH_FILE)

_INDUSTRY_SHARES = (0.24, 0.13, 0.11, 0.10, 0.10, 0.14, 0.06, 0.12)
_REGION_SHARES = (0.38, 0.18, 0.14, 0.08, 0.06, 0.04, 0.05, 0.07)
# Gross margin per product line (20-60 %), relative revenue weight, typical unit price (JPY).
_MARGINS = np.array([0.55, 0.60, 0.50, 0.45, 0.35, 0.25, 0.30, 0.35, 0.50, 0.60])
_PRICE_WEIGHT = np.array([3.0, 1.5, 1.5, 1.2, 1.0, 1.2, 2.0, 1.0, 0.4, 0.6])
_UNIT_PRICE = np.array([6e4, 2.5e4, 2e4, 3e4, 5e3, 3e3, 5e4, 1e5, 8e3, 1.2e4])
# Preferred product lines per industry, strongest first (indexes into PRODUCT_LINES).
_INDUSTRY_TOP_LINES = {
    "Manufacturing": (5, 0, 1, 3),
    "Retail": (1, 4, 0, 2),
    "Finance": (2, 0, 1, 6),
    "Healthcare": (2, 4, 3, 9),
    "Logistics": (5, 3, 1, 4),
    "IT Services": (3, 4, 2, 7),
    "Energy": (5, 6, 2, 1),
    "Public Sector": (2, 7, 8, 6),
}
_PREFERENCE_BOOST = (6.0, 4.0, 3.0, 2.0)

_COMPANY_PREFIXES = (
    "Aoba", "Hikari", "Sakura", "Midori", "Asahi", "Tokiwa", "Yamato", "Kaede", "Hinode", "Fujimi",
    "Shirakawa", "Kawanishi", "Minami", "Kitakaze", "Higashiyama", "Nishiki", "Daiichi", "Sanwa",
    "Taiyo", "Heiwa", "Shinsei", "Hoshizora", "Umibe", "Sorano", "Kasumi", "Tsubasa", "Akatsuki",
    "Matsuba", "Izumi", "Kotobuki", "Yutaka", "Mirai", "Nagomi", "Wakaba", "Kohaku", "Ginga",
    "Seiryu", "Hoshino", "Suzukaze", "Harumi",
)  # fmt: skip
_COMPANY_STEMS = {
    "Manufacturing": ("Precision", "Industries", "Machinery", "Electric", "Chemical", "Metal Works"),
    "Retail": ("Retail", "Stores", "Foods", "Trading", "Mart", "Apparel"),
    "Finance": ("Financial", "Securities", "Capital", "Lease", "Credit", "Insurance"),
    "Healthcare": ("Medical", "Pharma", "Healthcare", "Clinics", "Life Sciences", "Care"),
    "Logistics": ("Logistics", "Transport", "Express", "Shipping", "Warehouse", "Freight"),
    "IT Services": ("Systems", "Software", "Solutions", "Digital", "Networks", "Data"),
    "Energy": ("Energy", "Power", "Gas", "Resources", "Solar", "Utilities"),
    "Public Sector": ("Public Services", "Municipal Services", "Infrastructure", "Water Works",
                      "Transit", "Education Services"),
}  # fmt: skip
_LEGAL_FORMS = ("K.K.", "Co., Ltd.", "Corporation", "Holdings Co., Ltd.")
_PLACES = (
    "Tokyo", "Osaka", "Nagoya", "Fukuoka", "Sendai", "Sapporo", "Hiroshima", "Kobe", "Yokohama",
    "Kyoto", "Niigata", "Okayama", "Kumamoto", "Shizuoka", "Chiba", "Nara",
)  # fmt: skip
_FAMILY_NAMES = (
    "Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Kobayashi",
    "Kato", "Yoshida", "Yamada", "Sasaki", "Yamaguchi", "Matsumoto", "Inoue", "Kimura", "Hayashi",
    "Shimizu", "Yamazaki", "Mori", "Abe", "Ikeda", "Hashimoto", "Ishikawa", "Ogawa", "Maeda",
    "Okada", "Hasegawa", "Fujita", "Goto", "Kondo", "Murakami", "Endo", "Aoki", "Sakamoto",
)  # fmt: skip
_GIVEN_NAMES = (
    "Haruto", "Yuto", "Sota", "Minato", "Ren", "Riku", "Hiroshi", "Takashi", "Kenji", "Daiki",
    "Shota", "Kazuki", "Makoto", "Naoki", "Tsubasa", "Yusuke", "Yui", "Himari", "Aoi", "Sakura",
    "Yuna", "Mei", "Yoko", "Keiko", "Naoko", "Emi", "Akiko", "Mio", "Rin", "Haruka", "Ayaka",
    "Misaki",
)  # fmt: skip
_TITLES = {
    "executive": (
        "President",
        "Executive Vice President",
        "Managing Director",
        "Executive Officer",
    ),
    "procurement": ("Purchasing Manager", "Procurement Lead", "Buyer"),
    "it": ("Head of IT", "IT Manager", "Systems Engineer", "CIO Office Lead"),
    "business": ("General Manager", "Division Manager", "Section Chief", "Project Lead"),
    "finance": ("Finance Manager", "Controller", "CFO Office Lead"),
    "legal": ("Legal Counsel", "Legal Manager"),
}

_TABLE_COLUMNS: dict[str, tuple[tuple[str, pa.DataType], ...]] = {
    "accounts": (
        ("account_id", pa.string()),
        ("name", pa.string()),
        ("industry", pa.string()),
        ("region", pa.string()),
        ("since", pa.timestamp("us")),
        ("wallet_estimate", pa.float64()),
        ("employees", pa.int64()),
        ("account_manager", pa.string()),
        *((c, pa.int64()) for c in QUALITATIVE_CRITERIA),
    ),
    "transactions": (
        ("account_id", pa.string()),
        ("date", pa.timestamp("us")),
        ("product_line", pa.string()),
        ("revenue", pa.float64()),
        ("cost", pa.float64()),
        ("currency", pa.string()),
        ("quantity", pa.float64()),
        ("order_id", pa.string()),
    ),
    "contracts": (
        ("contract_id", pa.string()),
        ("account_id", pa.string()),
        ("start_date", pa.timestamp("us")),
        ("end_date", pa.timestamp("us")),
        ("annual_value", pa.float64()),
        ("currency", pa.string()),
        ("pricing_model", pa.string()),
        ("signed_date", pa.timestamp("us")),
        ("go_live_date", pa.timestamp("us")),
        ("status", pa.string()),
        ("churn_date", pa.timestamp("us")),
        ("product_line", pa.string()),
    ),
    "opportunities": (
        ("opportunity_id", pa.string()),
        ("account_id", pa.string()),
        ("created_date", pa.timestamp("us")),
        ("close_date", pa.timestamp("us")),
        ("stage", pa.string()),
        ("amount", pa.float64()),
        ("type", pa.string()),
        ("product_line", pa.string()),
        ("is_poc", pa.bool_()),
        ("probability", pa.float64()),
    ),
    "stakeholders": (
        ("contact_id", pa.string()),
        ("account_id", pa.string()),
        ("role", pa.string()),
        ("influence", pa.int64()),
        ("stance", pa.string()),
        ("reports_to", pa.string()),
        ("last_contact_date", pa.timestamp("us")),
        ("product_line", pa.string()),
        ("name", pa.string()),
        ("email", pa.string()),
        ("title", pa.string()),
    ),
    "activities": (
        ("activity_id", pa.string()),
        ("account_id", pa.string()),
        ("date", pa.timestamp("us")),
        ("kind", pa.string()),
        ("contact_id", pa.string()),
    ),
    "surveys": (
        ("account_id", pa.string()),
        ("date", pa.timestamp("us")),
        ("nps", pa.int64()),
        ("csat", pa.int64()),
        ("contact_id", pa.string()),
    ),
    "usage": (
        ("account_id", pa.string()),
        ("month", pa.timestamp("us")),
        ("seats_purchased", pa.int64()),
        ("seats_active", pa.int64()),
    ),
}
TABLE_SCHEMAS: dict[str, pa.Schema] = {t: pa.schema(list(c)) for t, c in _TABLE_COLUMNS.items()}
"""The Parquet schema written for each table (dates as ``timestamp[us]``)."""

_EVENT_TABLES = tuple(t for t in CANONICAL_TABLES if t not in ("accounts", *PLAN_TABLES))
_NEVER = np.int64(1 << 30)  # "month index" of a product line that is never adopted


class SyntheticSettings(BaseModel):
    """The planted truths of the synthetic dataset (recorded in ``ground_truth.json``).

    Defaults describe a Japanese B2B book in JPY; analyses recover these values.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tier_shares: tuple[float, float, float] = Field(
        (0.05, 0.15, 0.80), description="Shares of key, growth and standard accounts."
    )
    baseline_monthly_hazard: float = Field(0.006, gt=0, lt=1, description="h0 of the churn model.")
    hr_nps_per_point: float = Field(0.80, gt=0, description="Hazard ratio per NPS point above 7.")
    hr_no_executive_contact: float = Field(
        2.0, gt=0, description="Hazard ratio without executive engagement."
    )
    hr_utilisation_per_10pp: float = Field(
        0.75, gt=0, description="Hazard ratio per +10 pp seat utilisation above 70 %."
    )
    hr_tenure: tuple[float, float, float] = Field(
        (1.6, 1.3, 1.1),
        description="Hazard ratios of tenure 0-12, 12-24 and 24-36 months against 36+ months.",
    )
    hr_renewal_month: float = Field(
        2.5, gt=0, description="Hazard ratio in the calendar month a contract term ends."
    )
    exec_lookback_months: int = Field(
        12, ge=1, description="An executive meeting protects for this many following months."
    )
    exec_switch_monthly: float = Field(
        1 / 24, gt=0, lt=1, description="P(executive engagement switches off) per month."
    )
    nps_drift_sd: float = Field(
        1.0, ge=0, description="Stationary SD of the AR(1) drift of the latent NPS."
    )
    nps_drift_ar: float = Field(0.92, ge=0, lt=1, description="AR(1) coefficient of the drift.")
    nps_max_age_months: int = Field(
        12, ge=1, description="A survey response counts for this many following months."
    )
    contractual_share: tuple[float, float, float] = Field(
        (0.85, 0.75, 0.68), description="P(contractual) for key, growth, standard."
    )
    exec_engaged_share: tuple[float, float, float] = Field(
        (0.85, 0.60, 0.52), description="P(executive engagement) for key, growth, standard."
    )
    fy_end_uplift: float = Field(
        0.35, ge=0, description="Revenue uplift in the fiscal-year-end month."
    )
    quarter_end_uplift: float = Field(0.10, ge=0, description="Uplift in other quarter-end months.")
    poc_win_rate: float = Field(
        0.55, gt=0, lt=1, description="Win rate of closed PoC opportunities."
    )
    cost_above_revenue_share: float = Field(
        0.001,
        ge=0,
        lt=1,
        description="Share of transaction lines with cost > revenue (data quirk).",
    )
    wallet_estimate_noise_sd: float = Field(
        0.2, ge=0, description="SD of the lognormal error of the observed wallet estimate."
    )
    default_lines_per_account_month: float = Field(
        7.0, gt=0, description="Mean transaction lines per active account-month."
    )
    market_volatility_annual: float = Field(
        0.10,
        ge=0,
        lt=1,
        description="Annual SD of the market factor: a random walk on the log of every "
        "customer's wallet shared by all accounts (monthly steps N(0, sigma^2 / 12), 0 in the "
        "window's first month, no drift correction); 0: no market factor.",
    )
    top1_revenue_share: float | None = Field(
        0.08,
        gt=0,
        lt=1,
        description="Planted share of the last 12 months' revenue held by the largest account "
        "(at least; None with top10_revenue_share None: the lognormal draw as is).",
    )
    top10_revenue_share: float | None = Field(
        0.35,
        gt=0,
        lt=1,
        description="Planted share of the last 12 months' revenue held by the 10 largest accounts "
        "(at least).",
    )

    @model_validator(mode="after")
    def _concentration_is_consistent(self) -> SyntheticSettings:
        top1, top10 = self.top1_revenue_share, self.top10_revenue_share
        if (top1 is None) != (top10 is None):
            raise ValueError("set both top1_revenue_share and top10_revenue_share, or neither")
        if top1 is not None and top10 is not None and not top10 / 10 <= top1 <= top10:
            raise ValueError(
                "need top10_revenue_share / 10 <= top1_revenue_share <= top10_revenue_share, "
                f"got {top1} and {top10}"
            )
        return self


@dataclass(frozen=True)
class _Calendar:
    """The monthly grid of the window; days are int64 days since 1970-01-01."""

    start: int
    end: int
    month_start: np.ndarray  # (M,) day of the 1st of each month
    month_len: np.ndarray  # (M,) days in the month
    win_lo: np.ndarray  # (M,) first day offset inside the window
    win_hi: np.ndarray  # (M,) last day offset inside the window
    month_of_year: np.ndarray  # (M,) 1..12
    season: np.ndarray  # (M,) seasonality factor (mean 1 over a year)
    t_years: np.ndarray  # (M,) years from start to mid-month
    fq_start: np.ndarray  # (M,) bool, first month of a fiscal quarter
    yymm: np.ndarray  # (M,) e.g. 2404 for April 2024 (used in order ids)
    years_total: float
    market: np.ndarray  # (M,) log market factor of each month (see _market_path); 0 = none

    @property
    def n_months(self) -> int:
        return len(self.month_start)

    def month_of(self, day: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.month_start, day, side="right") - 1


# --------------------------------------------------------------------------- public API


def industry_product_preferences() -> dict[str, dict[str, float]]:
    """Planted purchase preferences: P(product line) per industry, rows sum to 1.

    Returns
    -------
    dict
        ``{industry: {product_line: weight}}``.
    """
    pref = _preference_matrix()
    return {
        ind: {pl: round(float(pref[i, j]), 6) for j, pl in enumerate(PRODUCT_LINES)}
        for i, ind in enumerate(INDUSTRIES)
    }


def seasonality_factors(
    fiscal_year_start_month: int = 4, settings: SyntheticSettings | None = None
) -> dict[int, float]:
    """Planted revenue seasonality by calendar month (mean 1 over the year).

    Parameters
    ----------
    fiscal_year_start_month : int
        First month of the fiscal year; the month before it gets the
        fiscal-year-end uplift, the other fiscal quarter-end months the
        quarter-end uplift.
    settings : SyntheticSettings, optional

    Returns
    -------
    dict
        ``{calendar month 1..12: factor}``.
    """
    s = settings or SyntheticSettings()
    raw = np.ones(12)
    fy_end = (fiscal_year_start_month - 2) % 12  # 0-based calendar month
    for k in range(1, 4):
        raw[(fy_end - 3 * k) % 12] += s.quarter_end_uplift
    raw[fy_end] += s.fy_end_uplift
    raw /= raw.mean()
    return {m + 1: float(raw[m]) for m in range(12)}


def generate_dataset(
    out: str | Path,
    *,
    n_accounts: int = 2000,
    seed: int = 0,
    start: str = "2022-04-01",
    end: str = "2026-03-31",
    fiscal_year_start_month: int = 4,
    chunk_accounts: int = 5000,
    lines_per_account_month: float | None = None,
    overwrite: bool = False,
    settings: SyntheticSettings | None = None,
) -> dict:
    """Generate the synthetic KAM dataset with planted truths into a folder.

    Writes ``accounts``, ``transactions``, ``contracts``, ``opportunities``,
    ``stakeholders``, ``activities``, ``surveys`` and ``usage`` as
    ``<table>.parquet`` (columns exactly those of :mod:`kam_analysis.core.schemas`,
    dates as ``timestamp[us]``, currency ``JPY``), plus ``ground_truth.json``
    (global truths: churn coefficients and how to measure their covariates,
    tier shares, seasonality, growth, product preferences, the planted
    revenue concentration, the market factor's monthly log path) and
    ``ground_truth_accounts.parquet`` (one row per account: ``account_id,
    true_tier, annual_growth, true_wallet, true_share_of_wallet, nps_latent,
    exec_engaged, utilisation, contractual, churned, churn_date,
    monthly_hazard, single_threaded, no_executive_stakeholder,
    high_influence_blocker, n_product_lines, true_annual_run_rate``).

    Files are built in a temporary sub-folder and moved in place at the end,
    so a failure leaves no half-written dataset.

    Parameters
    ----------
    out : str or Path
        Output folder (created).
    n_accounts : int
        Number of accounts.
    seed : int
        Seed; the content depends only on the seed, ``n_accounts``, the dates,
        ``fiscal_year_start_month``, ``lines_per_account_month`` and
        ``settings`` — not on ``chunk_accounts``.
    start, end : str
        First and last day of the history (ISO dates); ``end`` is the as-of
        date. Only contract end dates and the expected close dates of open
        opportunities lie after it.
    fiscal_year_start_month : int
        First month of the fiscal year (4 = April).
    chunk_accounts : int
        Accounts written per Parquet row group; bounds memory.
    lines_per_account_month : float, optional
        Mean transaction lines per active account-month (default 7, about
        500k lines for 2,000 accounts over four years). Raise it to scale the
        transaction volume for benchmarks: the same revenue is split over
        more orders, the accounts table does not change (14 gives about 49M
        lines for 100,000 accounts; memory stays bounded by ``chunk_accounts``,
        about 0.7 GiB peak for that book).
    overwrite : bool
        Replace dataset files already in ``out``.
    settings : SyntheticSettings, optional
        The planted truths (defaults documented on the model).

    Returns
    -------
    dict
        ``{"out", "rows": {table: rows}, "as_of", "seed", "n_accounts", "seconds"}``.

    Raises
    ------
    ValueError
        On bad arguments (named in the message).
    FileExistsError
        When ``out`` already holds dataset files and ``overwrite`` is false.
    """
    started = time.perf_counter()
    s = settings or SyntheticSettings()
    cal = _check_args_and_calendar(
        n_accounts, start, end, fiscal_year_start_month, chunk_accounts, lines_per_account_month, s
    )
    out = Path(out)
    existing = _existing_dataset_files(out)
    if existing and not overwrite:
        raise FileExistsError(
            f"{out} already holds dataset files ({', '.join(existing[:4])}"
            f"{', ...' if len(existing) > 4 else ''}); pass overwrite=True (kam synth --force) "
            "to replace them"
        )
    lines = float(lines_per_account_month or s.default_lines_per_account_month)

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".synth-partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        rows = _write_all(
            tmp,
            n_accounts,
            seed,
            cal,
            fiscal_year_start_month,
            chunk_accounts,
            lines,
            s,
            start,
            end,
        )
        for name in existing:
            (out / name).unlink()
        for f in sorted(tmp.iterdir()):
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "out": str(out),
        "rows": rows,
        "as_of": str(np.datetime64(cal.end, "D")),
        "seed": seed,
        "n_accounts": n_accounts,
        "seconds": round(time.perf_counter() - started, 3),
    }


# --------------------------------------------------------------------------- set-up


def _check_args_and_calendar(
    n_accounts, start, end, fy_start, chunk_accounts, lines, s: SyntheticSettings
) -> _Calendar:
    if (
        isinstance(n_accounts, bool)
        or not isinstance(n_accounts, int | np.integer)
        or n_accounts < 1
    ):
        raise ValueError(f"n_accounts must be a positive integer, got {n_accounts!r}")
    if (
        isinstance(chunk_accounts, bool)
        or not isinstance(chunk_accounts, int | np.integer)
        or chunk_accounts < 1
    ):
        raise ValueError(f"chunk_accounts must be a positive integer, got {chunk_accounts!r}")
    if (
        isinstance(fy_start, bool)
        or not isinstance(fy_start, int | np.integer)
        or not 1 <= fy_start <= 12
    ):
        raise ValueError(f"fiscal_year_start_month must be an integer 1-12, got {fy_start!r}")
    if lines is not None and not (
        isinstance(lines, int | float) and math.isfinite(lines) and lines > 0
    ):
        raise ValueError(f"lines_per_account_month must be a positive number, got {lines!r}")
    days = []
    for label, value in (("start", start), ("end", end)):
        try:
            days.append(int(np.datetime64(str(value), "D").astype(np.int64)))
        except ValueError:
            raise ValueError(
                f"{label} must be an ISO date like 2022-04-01, got {value!r}"
            ) from None
    if days[1] - days[0] < 180:
        raise ValueError(f"the window start={start} .. end={end} must span at least 180 days")
    if abs(sum(s.tier_shares) - 1) > 1e-9:
        raise ValueError(f"settings.tier_shares must sum to 1, got {s.tier_shares}")
    return _calendar(days[0], days[1], fy_start, s)


def _calendar(start: int, end: int, fy_start: int, s: SyntheticSettings) -> _Calendar:
    months = np.arange(
        np.datetime64(start, "D").astype("datetime64[M]"),
        np.datetime64(end, "D").astype("datetime64[M]") + 1,
    )
    month_start = months.astype("datetime64[D]").astype(np.int64)
    month_len = (months + 1).astype("datetime64[D]").astype(np.int64) - month_start
    win_lo = np.zeros(len(months), dtype=np.int64)
    win_lo[0] = start - month_start[0]
    win_hi = month_len - 1
    win_hi[-1] = end - month_start[-1]
    moy = months.astype(np.int64) % 12 + 1
    factors = seasonality_factors(fy_start, s)
    season = np.array([factors[m] for m in moy])
    mid = month_start + month_len / 2.0
    return _Calendar(
        start=start,
        end=end,
        month_start=month_start,
        month_len=month_len,
        win_lo=win_lo,
        win_hi=win_hi,
        month_of_year=moy,
        season=season,
        t_years=(mid - start) / 365.25,
        fq_start=(moy - fy_start) % 3 == 0,
        yymm=(months.astype(np.int64) // 12 + 1970) % 100 * 100 + moy,
        years_total=(end - start + 1) / 365.25,
        market=np.zeros(len(months)),
    )


_MARKET_STREAM = 0x6D61726B  # "mark": second entropy word of the market's own random stream


def _market_path(seed: int, n_months: int, s: SyntheticSettings) -> np.ndarray:
    """The planted log market factor of each window month (a Gaussian random walk).

    ``market[0] = 0``; ``market[m] - market[m - 1] ~ N(0, sigma^2 / 12)`` with
    sigma = ``market_volatility_annual``, no drift correction (``E[exp(market[m])]
    = exp(m sigma^2 / 24)``). Drawn from its own stream,
    ``SeedSequence([seed, _MARKET_STREAM])`` (not a spawn of ``SeedSequence(seed)``,
    whose children draw the accounts and blocks), so no other draw moves; the
    standard normal steps do not depend on sigma (the same seed gives the same
    shape, scaled), and sigma = 0 gives exact zeros.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, _MARKET_STREAM]))
    steps = rng.standard_normal(max(n_months - 1, 0)) * (s.market_volatility_annual / math.sqrt(12))
    return np.cumsum(np.r_[0.0, steps])  # from +0.0, so sigma = 0 gives +0.0 (not -0.0)


def _wallet_at(a: dict, cal: _Calendar, idx, month, t=None) -> np.ndarray:
    """Annual wallet ``wallet0 * (1 + growth)^t * exp(market[month])`` of accounts ``idx``.

    ``month`` is a window month index (clipped to the window; arrays broadcast
    against ``a["wallet0"][idx]``); ``t`` (years since the start) defaults to
    the middle of that month.
    """
    month = np.clip(month, 0, cal.n_months - 1)
    if t is None:
        t = cal.t_years[month]
    return a["wallet0"][idx] * (1 + a["growth"][idx]) ** t * np.exp(cal.market[month])


MESSY_EXPORT_FILE = "invoice_lines.csv"
"""File name of the messy invoice-line export."""
_MESSY_MARKER = "# Written by `kam synth --messy`"


def _existing_dataset_files(out: Path, any_config: bool = False) -> list[str]:
    """Dataset files in ``out`` that a generator would replace.

    ``kam.toml`` counts when the messy export wrote it (it would point at a file
    that is gone), or always with ``any_config`` (the messy export writes its own).
    """
    if not out.exists():
        return []
    if not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    names = [f"{t}.{ext}" for t in CANONICAL_TABLES for ext in ("parquet", "csv", "xlsx")]
    names += [f"{t}.parquet" for t in ("fx_rates",)] + list(GROUND_TRUTH_FILES)
    names.append(MESSY_EXPORT_FILE)
    found = [n for n in names if (out / n).exists()]
    config = out / "kam.toml"
    if config.is_file() and (
        any_config or config.read_text(encoding="utf-8", errors="replace").startswith(_MESSY_MARKER)
    ):
        found.append(config.name)
    return found


def _preference_matrix() -> np.ndarray:
    pref = np.ones((len(INDUSTRIES), len(PRODUCT_LINES)))
    for i, ind in enumerate(INDUSTRIES):
        for boost, line in zip(_PREFERENCE_BOOST, _INDUSTRY_TOP_LINES[ind], strict=True):
            pref[i, line] += boost
    return pref / pref.sum(axis=1, keepdims=True)


# Per-tier parameters (key, growth, standard).
_WALLET_LOG_MEAN = np.log([4.0e8, 2.5e8, 4.0e7])
_WALLET_LOG_SD = np.array([0.6, 0.6, 0.95])
_WALLET_PER_EMPLOYEE = 2.5e5
_SOW_BETA = np.array([[6.0, 4.0], [1.5, 8.5], [3.0, 5.0]])
_SOW_CAP = 0.9
_GROWTH_MEAN = np.array([0.07, 0.15, 0.04])
_GROWTH_SD = np.array([0.08, 0.10, 0.10])
_NPS_SHIFT = np.array([0.4, 0.2, 0.0])
_INITIAL_LINES_P = np.array([[0.2, 0.4, 0.4], [0.4, 0.4, 0.2], [0.6, 0.3, 0.1]])
_XSELL_MONTHLY = np.array([0.045, 0.055, 0.012])
_XSELL_SIZE = 0.6
# Qualitative score means per tier, in QUALITATIVE_CRITERIA order.
_QUAL_MEAN = np.array(
    [
        [4.2, 3.8, 4.2, 4.0, 3.8, 3.8],  # key
        [4.0, 3.2, 3.0, 2.8, 4.1, 3.3],  # growth
        [2.8, 2.4, 2.6, 2.5, 2.6, 2.5],  # standard
    ]
)
_LINES_PER_ORDER = 2.2


# --------------------------------------------------------------------------- account level


def _draw_accounts(
    rng: np.random.Generator, n: int, cal: _Calendar, s: SyntheticSettings, lines: float
) -> dict[str, np.ndarray]:
    """All account-level latents and truths (vectorised over accounts)."""
    M = cal.n_months
    A: dict[str, np.ndarray] = {}
    tier = rng.choice(3, size=n, p=np.asarray(s.tier_shares))
    A["tier"] = tier
    A["industry"] = rng.choice(len(INDUSTRIES), size=n, p=_INDUSTRY_SHARES)
    A["region"] = rng.choice(len(REGIONS), size=n, p=_REGION_SHARES)
    log_w = rng.normal(_WALLET_LOG_MEAN[tier], _WALLET_LOG_SD[tier])
    A["wallet0"] = np.exp(log_w)
    A["growth"] = np.clip(rng.normal(_GROWTH_MEAN[tier], _GROWTH_SD[tier]), -0.3, 0.6)
    A["sow0"] = rng.beta(_SOW_BETA[tier, 0], _SOW_BETA[tier, 1])
    A["employees"] = np.clip(
        np.round(np.exp(log_w - np.log(_WALLET_PER_EMPLOYEE) + rng.normal(0, 0.5, n))), 5, 300_000
    ).astype(np.int64)
    latent = _QUAL_MEAN[tier] + rng.normal(0, 0.85, (n, len(QUALITATIVE_CRITERIA)))
    latent[:, 5] += 0.5 * (np.log10(A["employees"]) - 2.5)
    A["scores"] = np.clip(np.round(latent), 1, 5).astype(np.int64)
    A["scores_missing"] = rng.random((n, len(QUALITATIVE_CRITERIA))) < 0.015
    A["wallet_noise"] = np.exp(rng.normal(0, s.wallet_estimate_noise_sd, n))
    A["wallet_missing"] = rng.random(n) < 0.02

    window_days = cal.end - cal.start + 1
    pre = rng.random(n) < 0.75
    since = np.where(
        pre,
        cal.start - rng.integers(60, 12 * 365, n),
        cal.start + np.floor(rng.random(n) * (window_days - 90)).astype(np.int64),
    )
    A["since"] = since
    first_day = np.maximum(since, cal.start)
    first_m = cal.month_of(first_day)
    A["first_m"], A["first_lo"] = first_m, first_day - cal.month_start[first_m]
    A["first_day"] = first_day

    contractual = rng.random(n) < np.asarray(s.contractual_share)[tier]
    A["contractual"] = contractual
    A["nps_latent"] = np.clip(rng.normal(7.0 + _NPS_SHIFT[tier], 1.8), 0, 10)
    A["exec_engaged"] = rng.random(n) < np.asarray(s.exec_engaged_share)[tier]
    util = rng.beta(7.0, 3.0, n)
    A["utilisation"] = np.where(contractual, util, np.nan)

    # Churn: time-varying monthly hazard from the month after the first active month
    # (engagement, NPS responses, tenure, renewal months; see _churn_dynamics).
    churn_m = _churn_dynamics(rng.spawn(1)[0], A, cal, s, rng.random(n))
    churned = churn_m <= M - 1
    cm = np.minimum(churn_m, M - 1)
    churn_off = np.floor(rng.random(n) * (cal.win_hi[cm] + 1)).astype(np.int64)
    A["churned"] = churned
    A["churn_m"] = np.where(churned, churn_m, _NEVER)
    A["churn_off"] = churn_off
    A["churn_day"] = np.where(churned, cal.month_start[cm] + churn_off, _NEVER)
    A["last_m"] = np.where(churned, churn_m, M - 1)
    A["last_day"] = np.where(churned, A["churn_day"] - 1, cal.end)  # last day with events

    # Product lines: industry-preferred adoption order (Gumbel top-k), 1-3 lines at
    # the start, then cross-sell adoptions with a tier-specific monthly hazard.
    pref = _preference_matrix()[A["industry"]]
    order = np.argsort(-(np.log(pref) + rng.gumbel(size=pref.shape)), axis=1, kind="stable")
    u = rng.random(n)[:, None]
    k0 = 1 + (u > np.cumsum(_INITIAL_LINES_P[tier], axis=1)).sum(axis=1)
    gaps = rng.geometric(_XSELL_MONTHLY[tier][:, None], size=pref.shape)
    pos = np.arange(len(PRODUCT_LINES))[None, :]
    later = pos >= k0[:, None]
    adopt_pos = first_m[:, None] + np.where(later, gaps, 0).cumsum(axis=1)
    last_adopt_m = A["last_m"] - churned  # adoptions strictly before the churn month
    adopt_pos = np.where(adopt_pos <= last_adopt_m[:, None], adopt_pos, _NEVER)
    rows = np.arange(n)[:, None]
    adopt_m = np.empty_like(adopt_pos)
    adopt_m[rows, order] = adopt_pos
    initial = np.zeros(pref.shape, dtype=bool)
    initial[rows, order] = ~later
    A["order"], A["adopt_m"], A["initial"] = order, adopt_m, initial
    A["z"] = _PRICE_WEIGHT[None, :] * np.where(initial, 1.0, _XSELL_SIZE)
    A["z_init"] = (_PRICE_WEIGHT[None, :] * initial).sum(axis=1)
    adopted_last = adopt_m <= A["last_m"][:, None]
    A["sow_last"] = np.minimum(A["sow0"] * (A["z"] * adopted_last).sum(1) / A["z_init"], _SOW_CAP)
    A["n_lines_last"] = adopted_last.sum(axis=1)
    A["wallet_end"] = _wallet_at(A, cal, slice(None), cal.n_months - 1, t=cal.years_total)
    A["run_rate_last"] = _wallet_at(A, cal, slice(None), A["last_m"]) * A["sow_last"]

    size = (A["wallet0"] * A["sow0"]) ** 0.3
    A["lines_lambda"] = np.maximum(lines * size / size.mean(), 0.3)

    # Contracts: pricing model, signing and go-live of the first term.
    A["pricing"] = rng.choice(len(PRICING_MODELS), size=n, p=[0.2, 0.12, 0.06, 0.15, 0.12, 0.35])
    A["signed0"] = since - rng.integers(14, 57, n)
    dc = A["scores"][:, 5]
    adoption_days = np.ceil(rng.gamma(2.0, 12.0 * (1 + 0.4 * (dc - 1)))).astype(np.int64) + 1
    A["go_live"] = A["signed0"] + adoption_days
    A["seats0"] = np.clip(np.round(A["employees"] * rng.uniform(0.05, 0.3, n)), 5, 50_000)
    _plant_concentration(A, cal, s)
    return A


def _expected_recent_revenue(
    A: dict[str, np.ndarray], cal: _Calendar, months: int = 12
) -> np.ndarray:
    """Expected revenue of each account over the last ``months`` months (no noise).

    Wallet x growth x market x share of wallet (with the lines adopted by then) x
    seasonality, summed over the months the account is active; partial first
    and last months count in full. O(accounts x months).
    """
    M = cal.n_months
    total = np.zeros(len(A["wallet0"]))
    for m in range(max(0, M - months), M):
        adopted = A["adopt_m"] <= m
        sow = np.minimum(A["sow0"] * (A["z"] * adopted).sum(1) / A["z_init"], _SOW_CAP)
        active = (A["first_m"] <= m) & (A["last_m"] >= m)
        rate = _wallet_at(A, cal, slice(None), m) * sow * cal.season[m] / 12
        total += np.where(active, rate, 0.0)
    return total


def zipf_top_shares(top1: float, top10: float, k: int = 10) -> np.ndarray:
    """Shares of the ``k`` largest accounts, ``p_i ∝ i**-a``, with ``p_1 = top1`` and sum ``top10``.

    The exponent ``a >= 0`` is found by bisection (``a = 0``: equal shares).

    Raises
    ------
    ValueError
        Unless ``top10 / k <= top1 <= top10``.
    """
    if not top10 / k <= top1 <= top10:
        raise ValueError(f"need top10 / {k} <= top1 <= top10, got {top1} and {top10}")
    ranks = np.arange(1, k + 1, dtype=float)

    def first_share(a: float) -> float:
        w = ranks**-a
        return float(w[0] / w.sum())

    lo, hi = 0.0, 60.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if first_share(mid) < top1 / top10 else (lo, mid)
    w = ranks ** -((lo + hi) / 2)
    return top10 * w / w.sum()


def _plant_concentration(A: dict[str, np.ndarray], cal: _Calendar, s: SyntheticSettings) -> None:
    """Scale the wallets of the largest accounts to the planted top-1 / top-10 shares.

    Runs after every random draw, so the random stream, the tiers, hazards and
    event counts do not change: only ``wallet0`` (and what derives from it,
    ``wallet_end``, ``run_rate_last``) of at most 10 accounts grows. The
    candidates are the accounts still active at the end, key accounts first,
    then by expected revenue of the last 12 months; the i-th gets at least the
    share ``p_i`` of :func:`zipf_top_shares` of the book's expected 12-month
    revenue (a larger account is not shrunk, so a small book that is already
    more concentrated stays as drawn). Employees and transaction counts keep
    their draw. Sets ``A["concentration_factor"]`` (1 for other accounts).
    """
    n = len(A["wallet0"])
    factor = np.ones(n)
    A["concentration_factor"] = factor
    if s.top1_revenue_share is None or s.top10_revenue_share is None:
        return
    expected = _expected_recent_revenue(A, cal)
    alive = np.flatnonzero(~A["churned"] & (expected > 0))
    order = np.lexsort((-expected[alive], A["tier"][alive] != 0))
    top = alive[order[:10]]
    if top.size == 0:
        return
    target = zipf_top_shares(s.top1_revenue_share, s.top10_revenue_share)[: top.size]
    current = expected[top]
    rest = expected.sum() - current.sum()
    total = expected.sum()
    for _ in range(200):  # total = rest + sum(max(current, p * total)): a contraction
        new = rest + np.maximum(current, target * total).sum()
        if abs(new - total) <= 1e-12 * new:
            break
        total = new
    factor[top] = np.maximum(1.0, target * total / current)
    for key in ("wallet0", "wallet_end", "run_rate_last"):
        A[key] = A[key] * factor


def _window_month(days: np.ndarray, cal: _Calendar) -> np.ndarray:
    """Calendar month of each day, counted from the window's first month (negative before)."""
    m0 = np.datetime64(cal.start, "D").astype("datetime64[M]").astype(np.int64)
    months = np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]")
    return months.astype(np.int64) - m0


def _engagement_and_meetings(
    tv: np.random.Generator, A: dict, s: SyntheticSettings, col: np.ndarray, exists: np.ndarray
) -> np.ndarray:
    """Executive meetings per account-month: engagement switches on and off (Markov chain).

    The chain starts in ``A["exec_engaged"]``, switches off with probability
    ``exec_switch_monthly`` and on at the rate that keeps the tier's share
    (``exec_engaged_share``) stationary; an engaged account meets an executive
    with probability 1/3 a month, and always in its first month in the window.
    Sets ``A["exec_engaged_end"]``; returns the meeting matrix (accounts x columns).
    """
    n, T = exists.shape
    share = np.asarray(s.exec_engaged_share)[A["tier"]]
    p_off = s.exec_switch_monthly
    p_on = np.minimum(p_off * share / (1 - share), 1.0)
    engaged = np.empty((n, T), dtype=bool)
    state = A["exec_engaged"].copy()
    for t in range(T):  # loop over months, vectorised over accounts
        if t:
            flip = tv.random(n)
            state = np.where(state, flip >= p_off, flip < p_on)
        engaged[:, t] = state
    A["exec_engaged_end"] = state
    first = col == A["first_m"][:, None]
    return engaged & exists & (first | (tv.random((n, T)) < 1 / 3))


def _survey_responses(
    tv: np.random.Generator, A: dict, s: SyntheticSettings, exists: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Drifting latent NPS and the survey responses drawn from it (NaN: no survey that month).

    Latent NPS = ``nps_latent`` + an AR(1) drift (stationary SD ``nps_drift_sd``),
    clipped to 0-10; an account answers at most one survey a month, with
    probability ``survey_rate / 12``; responses ~ round(N(latent, 1.5)) clipped.
    Sets ``A["survey_rate"]``; returns ``(latent, responses)`` (accounts x columns).
    """
    n, T = exists.shape
    ar, sd = s.nps_drift_ar, s.nps_drift_sd
    drift = np.empty((n, T))
    drift[:, 0] = tv.normal(0.0, sd, n)
    eps = tv.normal(0.0, sd * math.sqrt(1 - ar**2), (n, T))
    for t in range(1, T):
        drift[:, t] = ar * drift[:, t - 1] + eps[:, t]
    latent = np.clip(A["nps_latent"][:, None] + drift, 0, 10)
    A["survey_rate"] = tv.uniform(2.0, 4.0, n)
    has = exists & (tv.random((n, T)) < A["survey_rate"][:, None] / 12)
    resp = np.clip(np.round(tv.normal(latent, 1.5)), 0, 10)
    return latent, np.where(has, resp, np.nan)


def _latest_response(resp: np.ndarray, max_age: int, first_col: int) -> np.ndarray:
    """Latest response strictly before each column from ``first_col`` on, if at most ``max_age`` old."""
    n, T = resp.shape
    out = np.full((n, T - first_col), np.nan)
    last_val = np.full(n, np.nan)
    last_t = np.full(n, -(1 << 30))
    for t in range(T):
        if t >= first_col:
            out[:, t - first_col] = np.where(t - last_t <= max_age, last_val, np.nan)
        upd = ~np.isnan(resp[:, t])
        last_val = np.where(upd, resp[:, t], last_val)
        last_t = np.where(upd, t, last_t)
    return out


def _renewal_months(A: dict, cal: _Calendar) -> np.ndarray:
    """(accounts, months) True in the calendar month a contractual account's annual term ends."""
    n, M = len(A["since"]), cal.n_months
    since = A["since"]
    j0 = np.maximum(0, np.floor((cal.start - since) / 365.25).astype(np.int64) - 1)
    j = j0[:, None] + np.arange(M // 12 + 3)[None, :]
    ends = since[:, None] + np.round(365.25 * (j + 1)).astype(np.int64) - 1
    em = _window_month(ends.ravel(), cal).reshape(ends.shape)
    ok = (em >= 0) & (em < M) & A["contractual"][:, None]
    out = np.zeros((n, M), dtype=bool)
    out[np.nonzero(ok)[0], em[ok]] = True
    return out


def _churn_dynamics(
    tv: np.random.Generator, A: dict, cal: _Calendar, s: SyntheticSettings, u: np.ndarray
) -> np.ndarray:
    """Time-varying monthly churn hazard and the churn month of each account.

    ``h[i, m] = h0 · exp(β_nps x_nps + β_exec x_exec + β_util x_util) · HR_tenure(band)
    · HR_renewal^renewal`` for window month ``m``, where ``x_exec`` = 1 without an
    executive meeting in the previous ``exec_lookback_months`` months, ``x_nps``
    = the latest survey response of the previous ``nps_max_age_months`` months
    minus 7 (the latent NPS of the previous month when there is none),
    ``x_util`` = (utilisation − 0.7) · 10 (0 for transactional accounts), the
    tenure band counts months since ``since`` (0-12, 12-24, 24-36, 36+ = 1) and
    ``renewal`` = 1 in the month a contractual account's annual term ends.
    Meetings and responses are simulated from ``max(lookbacks)`` months before
    the window (not written: the data history starts at the window).

    The account churns in the first month at risk (from the month after its
    first month) where ``prod(1 - h) < u``. Sets ``A["exec_meet"]``,
    ``A["survey_nps"]`` (window months), ``A["hazard"]`` (the hazard of the
    last month at risk) and the engagement / survey truths; returns the churn
    month (``>= M`` when the account survives the window).
    """
    n, M = len(u), cal.n_months
    P = max(s.exec_lookback_months, s.nps_max_age_months)
    since_m = _window_month(A["since"], cal)
    col = np.arange(P + M)[None, :] - P
    exists = col >= since_m[:, None]
    met = _engagement_and_meetings(tv, A, s, col, exists)
    latent, resp = _survey_responses(tv, A, s, exists)
    A["exec_meet"] = met[:, P:]
    A["survey_nps"] = resp[:, P:].astype(np.float32)

    L = s.exec_lookback_months
    cum = np.zeros((n, P + M + 1), dtype=np.int32)
    cum[:, 1:] = np.cumsum(met, axis=1)
    hi = P + np.arange(M)
    no_contact = (cum[:, hi] - cum[:, hi - L]) == 0
    known = _latest_response(resp, s.nps_max_age_months, P)
    x_nps = np.where(np.isnan(known), latent[:, P - 1 : P + M - 1], known) - 7.0
    util = A["utilisation"]
    x_util = np.where(np.isnan(util), 0.0, (np.nan_to_num(util) - 0.7) * 10)
    tenure = np.arange(M)[None, :] - since_m[:, None]
    log_tenure = np.log(np.r_[np.asarray(s.hr_tenure), 1.0])
    band = np.searchsorted(np.array([12, 24, 36]), tenure, side="right")
    lin = (
        np.log(s.baseline_monthly_hazard)
        + np.log(s.hr_nps_per_point) * x_nps
        + np.log(s.hr_no_executive_contact) * no_contact
        + (np.log(s.hr_utilisation_per_10pp) * x_util)[:, None]
        + log_tenure[band]
        + np.log(s.hr_renewal_month) * _renewal_months(A, cal)
    )
    h = np.minimum(np.exp(lin), 0.5)
    at_risk = np.arange(M)[None, :] >= A["first_m"][:, None] + 1
    cum_h = np.cumsum(np.where(at_risk, -np.log1p(-h), 0.0), axis=1)
    gone = cum_h > -np.log(u)[:, None]
    churn_m = np.where(gone[:, -1], np.argmax(gone, axis=1), M)
    A["hazard"] = h[np.arange(n), np.minimum(churn_m, M - 1)]
    return churn_m.astype(np.int64)


def _company_names(rng: np.random.Generator, industry: np.ndarray) -> pa.Array:
    """Unique company names like ``"Aoba Precision K.K."`` (duplicates get a place name)."""
    n = len(industry)
    P, S, F = len(_COMPANY_PREFIXES), 6, len(_LEGAL_FORMS)
    prefix = rng.integers(0, P, n)
    stem = rng.integers(0, S, n)
    form = rng.choice(F, size=n, p=[0.4, 0.35, 0.15, 0.10])
    dup = _cumcount_unsorted(((industry * P + prefix) * S + stem) * F + form)
    tags = [""] + [
        f" {_PLACES[d % len(_PLACES)]}" + (f" {d // len(_PLACES) + 1}" if d >= len(_PLACES) else "")
        for d in range(int(dup.max()))
    ]
    stems = [st for ind in INDUSTRIES for st in _COMPANY_STEMS[ind]]
    head = pc.binary_join_element_wise(
        pa.array(_COMPANY_PREFIXES).take(pa.array(prefix)), pa.array(tags).take(pa.array(dup)), ""
    )
    return pc.binary_join_element_wise(
        head,
        pa.array(stems).take(pa.array(industry * S + stem)),
        pa.array(_LEGAL_FORMS).take(pa.array(form)),
        " ",
    )


def _cumcount_unsorted(key: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each value of ``key``, in order of appearance."""
    idx = np.argsort(key, kind="stable")
    sk = key[idx]
    starts = np.r_[0, np.flatnonzero(sk[1:] != sk[:-1]) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(sk)]))
    out = np.empty(len(key), dtype=np.int64)
    out[idx] = np.arange(len(key)) - group_start
    return out


def _person_names(rng: np.random.Generator, size: int) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Romanised Japanese names ``"Sato Haruto"`` (family first); also family, given."""
    fam = pa.array(_FAMILY_NAMES).take(pa.array(rng.integers(0, len(_FAMILY_NAMES), size)))
    giv = pa.array(_GIVEN_NAMES).take(pa.array(rng.integers(0, len(_GIVEN_NAMES), size)))
    return pc.binary_join_element_wise(fam, giv, " "), fam, giv


def _accounts_table(rng: np.random.Generator, A: dict, ids: pa.Array) -> pa.Table:
    n = len(ids)
    n_managers = max(5, n // 40)
    managers, _, _ = _person_names(rng, n_managers)
    manager_idx = rng.integers(0, n_managers, n)
    names = _company_names(rng, A["industry"])
    wallet_est = np.round(A["wallet_end"] * A["wallet_noise"], -4)
    cols = {
        "account_id": ids,
        "name": names,
        "industry": pa.array(INDUSTRIES).take(pa.array(A["industry"])),
        "region": pa.array(REGIONS).take(pa.array(A["region"])),
        "since": _ts(A["since"]),
        "wallet_estimate": pa.array(wallet_est, mask=A["wallet_missing"]),
        "employees": pa.array(A["employees"]),
        "account_manager": managers.take(pa.array(manager_idx)),
    }
    for j, c in enumerate(QUALITATIVE_CRITERIA):
        cols[c] = pa.array(A["scores"][:, j], mask=A["scores_missing"][:, j])
    return pa.table(cols, schema=TABLE_SCHEMAS["accounts"])


# --------------------------------------------------------------------------- helpers


def _ts(days: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """int days since epoch -> timestamp[us] (masked entries null)."""
    values = np.asarray(days, dtype=np.int64) * 86_400_000_000
    if mask is not None:
        values = np.where(mask, 0, values)
    return pa.array(values, type=pa.timestamp("us"), mask=mask)


def _padded(values: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(
        pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string()), width=width, padding="0"
    )


def _ids(prefix: str, parts: list[tuple[np.ndarray, int]]) -> pa.Array:
    strs = [_padded(v, w) for v, w in parts]
    return pc.binary_join_element_wise(prefix, *strs, "-")


def _seq_within(group: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within runs of equal values of a sorted ``group``."""
    if len(group) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(group[1:] != group[:-1]) + 1]
    return np.arange(len(group)) - np.repeat(starts, np.diff(np.r_[starts, len(group)]))


def _uniform_day(rng, lo, hi) -> np.ndarray:
    """Uniform integer in [lo, hi] (arrays)."""
    return lo + np.floor(rng.random(len(lo)) * (hi - lo + 1)).astype(np.int64)


def _choice_rows(rng, weights: np.ndarray) -> np.ndarray:
    """One draw per row of a (rows, k) weight matrix."""
    cum = np.cumsum(weights, axis=1)
    r = rng.random(len(weights)) * cum[:, -1]
    return np.minimum((cum < r[:, None]).sum(axis=1), weights.shape[1] - 1)


# --------------------------------------------------------------------------- one block


@dataclass
class _Block:
    lo: int
    hi: int
    tables: dict[str, pa.Table]
    acc: dict[str, np.ndarray]  # global account index per row (rows sorted by it)
    truth: dict[str, np.ndarray]


def _generate_block(
    rng: np.random.Generator,
    lo: int,
    hi: int,
    A: dict,
    cal: _Calendar,
    s: SyntheticSettings,
    ids: pa.Array,
    id_width: int,
) -> _Block:
    a = {k: v[lo:hi] for k, v in A.items()}
    B, M = hi - lo, cal.n_months
    m = np.arange(M)[None, :]
    gidx = np.arange(lo, hi)
    lo_d = np.where(m == a["first_m"][:, None], a["first_lo"][:, None], cal.win_lo[None, :])
    hi_d = np.where(m == a["churn_m"][:, None], a["churn_off"][:, None] - 1, cal.win_hi[None, :])
    active = (m >= a["first_m"][:, None]) & (m <= a["last_m"][:, None]) & (hi_d >= lo_d)
    frac = np.where(active, (hi_d - lo_d + 1) / cal.month_len[None, :], 0.0)
    ctx = _Ctx(rng, a, cal, s, B, M, lo_d, hi_d, active, frac, gidx, ids, id_width)

    stake, stake_acc, truth, stk = _stakeholders(ctx)
    trans, trans_acc = _transactions(ctx)
    contracts_rows = _contract_terms(ctx)
    opps, opp_acc, pilots, poc_reviews = _opportunities(ctx, contracts_rows)
    contracts, contracts_acc = _contracts_table(ctx, contracts_rows, pilots)
    acts, acts_acc, last_contact = _activities(ctx, stk, poc_reviews)
    stake = stake.set_column(
        stake.schema.get_field_index("last_contact_date"),
        "last_contact_date",
        _ts(last_contact, mask=last_contact < 0),
    )
    surveys, surveys_acc = _surveys(ctx, stk)
    usage, usage_acc = _usage(ctx)
    return _Block(
        lo,
        hi,
        {
            "transactions": trans,
            "contracts": contracts,
            "opportunities": opps,
            "stakeholders": stake,
            "activities": acts,
            "surveys": surveys,
            "usage": usage,
        },
        {
            "transactions": trans_acc,
            "contracts": contracts_acc,
            "opportunities": opp_acc,
            "stakeholders": stake_acc,
            "activities": acts_acc,
            "surveys": surveys_acc,
            "usage": usage_acc,
        },
        truth,
    )


@dataclass
class _Ctx:
    rng: np.random.Generator
    a: dict
    cal: _Calendar
    s: SyntheticSettings
    B: int
    M: int
    lo_d: np.ndarray
    hi_d: np.ndarray
    active: np.ndarray
    frac: np.ndarray
    gidx: np.ndarray
    ids: pa.Array
    id_width: int

    def account_ids(self, local: np.ndarray) -> pa.Array:
        return self.ids.take(pa.array(self.gidx[local]))

    def expand_cells(self, counts: np.ndarray):
        """Rows for (account, month) cells repeated ``counts`` times, with a uniform day."""
        cell = np.repeat(np.arange(counts.size), counts.ravel())
        acc, mon = np.divmod(cell, self.M)
        day = _uniform_day(self.rng, self.lo_d.ravel()[cell], self.hi_d.ravel()[cell])
        return acc, mon, self.cal.month_start[mon] + day

    def annual_rate(self, local: np.ndarray, month: np.ndarray) -> np.ndarray:
        """Annual wallet (market included) x initial SoW of ``local`` at month index ``month``."""
        return _wallet_at(self.a, self.cal, local, month) * self.a["sow0"][local]


def _stakeholders(ctx: _Ctx):
    rng, a, B = ctx.rng, ctx.a, ctx.B
    tier = a["tier"]
    key = tier == 0
    lam = np.clip(
        1.3
        + 0.9 * (np.log10(a["employees"]) - 2.0)
        + 0.35 * (a["scores"][:, 5] - 3)
        + np.array([2.0, 1.0, 0.0])[tier],
        0.2,
        None,
    )
    k = np.clip(1 + rng.poisson(lam), 1, 8)
    plant_single = key & (rng.random(B) < 0.12)
    k = np.where(plant_single, 1, np.where(key, np.maximum(k, 3), k))
    plant_no_exec = key & ~plant_single & (rng.random(B) < 0.15)
    plant_blocker = key & ~plant_single & (rng.random(B) < 0.15)

    off = np.r_[0, np.cumsum(k)[:-1]]
    acc = np.repeat(np.arange(B), k)
    j = np.arange(len(acc)) - off[acc]
    n = len(acc)
    non_exec_p = np.array([0.0, 0.15, 0.25, 0.33, 0.17, 0.10])
    non_exec = rng.choice(len(ROLES), size=n, p=non_exec_p)
    any_p = np.array([0.12, 0.13, 0.22, 0.29, 0.15, 0.09])
    role = rng.choice(len(ROLES), size=n, p=any_p)
    first_exec_p = np.array([0.95, 0.85, 0.55])[tier][acc]
    role = np.where(j == 0, np.where(rng.random(n) < first_exec_p, 0, non_exec), role)
    role = np.where(plant_no_exec[acc] & (role == 0), non_exec, role)
    # Executives first inside each account, then by draw order.
    srt = np.lexsort((j, role != 0, acc))
    role = role[srt]
    j = np.arange(n) - off[acc]
    is_exec = role == 0
    n_exec = np.bincount(acc, weights=is_exec, minlength=B).astype(np.int64)

    influence = np.select(
        [role == 0, role == 1],
        [4 + (rng.random(n) < 0.6), rng.integers(2, 5, n)],
        rng.integers(1, 5, n),
    ).astype(np.int64)
    stance = rng.choice(len(STANCES), size=n, p=[0.15, 0.30, 0.35, 0.14, 0.06])
    # Planted high-influence blocker: the most senior non-executive (or the last contact).
    target = off + np.minimum(n_exec, k - 1)
    pb = np.flatnonzero(plant_blocker)
    stance[target[pb]] = STANCES.index("blocker")
    influence[target[pb]] = np.maximum(influence[target[pb]], 4)

    # Org chart: first executive at the top; other executives report to it,
    # everyone else to a random executive (or to the first contact if none).
    root = off
    boss = np.where(
        n_exec[acc] > 0,
        off[acc] + np.floor(rng.random(n) * n_exec[acc]).astype(np.int64),
        root[acc],
    )
    boss = np.where(is_exec, root[acc], boss)
    has_boss = j > 0

    gacc = ctx.gidx[acc]
    contact_id = _ids("P", [(gacc + 1, ctx.id_width), (j + 1, 1)])
    full, fam, giv = _person_names(rng, n)
    local = pc.utf8_lower(pc.binary_join_element_wise(giv, fam, "."))
    email = pc.binary_join_element_wise(
        local, ".", _padded(gacc + 1, ctx.id_width), "@example.co.jp", ""
    )
    title_choices = [_TITLES[r] for r in ROLES]
    title_idx = np.floor(rng.random(n) * np.array([len(t) for t in title_choices])[role]).astype(
        np.int64
    )
    flat_titles = [t for ts in title_choices for t in ts]
    title_off = np.cumsum([0] + [len(t) for t in title_choices])[:-1]
    title = pa.array(flat_titles).take(pa.array(title_off[role] + title_idx))
    # Business and IT roles buy for one of the account's adopted lines.
    n_lines = np.maximum((a["adopt_m"] <= a["last_m"][:, None]).sum(axis=1), 1)
    pick = np.floor(rng.random(n) * n_lines[acc]).astype(np.int64)
    line = a["order"][acc, pick]
    has_line = (role == ROLES.index("business")) | (role == ROLES.index("it"))
    table = pa.table(
        {
            "contact_id": contact_id,
            "account_id": ctx.account_ids(acc),
            "role": pa.array(ROLES).take(pa.array(role)),
            "influence": pa.array(influence),
            "stance": pa.array(STANCES).take(pa.array(stance)),
            "reports_to": contact_id.take(pa.array(boss, mask=~has_boss)),
            "last_contact_date": pa.nulls(n, pa.timestamp("us")),
            "product_line": pa.array(PRODUCT_LINES).take(pa.array(line, mask=~has_line)),
            "name": full,
            "email": email,
            "title": title,
        },
        schema=TABLE_SCHEMAS["stakeholders"],
    )
    blocker = (stance == STANCES.index("blocker")) & (influence >= 4)
    truth = {
        "single_threaded": k == 1,
        "no_executive_stakeholder": n_exec == 0,
        "high_influence_blocker": np.bincount(acc, weights=blocker, minlength=B) > 0,
    }
    stk = {"off": off, "k": k, "n_exec": n_exec, "ids": contact_id}
    return table, gacc, truth, stk


def _transactions(ctx: _Ctx):
    rng, a, cal, s, B, M = ctx.rng, ctx.a, ctx.cal, ctx.s, ctx.B, ctx.M
    months = np.arange(M)
    adopted = a["adopt_m"][:, None, :] <= months[None, :, None]  # (B, M, lines)
    zam = a["z"][:, None, :] * adopted
    sow = np.minimum(a["sow0"][:, None] * zam.sum(axis=2) / a["z_init"][:, None], _SOW_CAP)
    wallet = _wallet_at(a, cal, (slice(None), None), months[None, :])
    noise = np.exp(rng.normal(-0.5 * 0.15**2, 0.15, (B, M)))
    mu = wallet / 12.0 * sow * cal.season[None, :] * noise  # full-month revenue
    lam = a["lines_lambda"]

    n_orders = rng.poisson(lam[:, None] / _LINES_PER_ORDER * ctx.frac)
    oacc, omon, oday = ctx.expand_cells(n_orders)
    srt = np.lexsort((oday, omon, oacc))
    oacc, omon, oday = oacc[srt], omon[srt], oday[srt]
    oseq = _seq_within(oacc * M + omon)
    nl = 1 + rng.poisson(_LINES_PER_ORDER - 1, len(oacc))
    li = np.repeat(np.arange(len(oacc)), nl)
    la, lm = oacc[li], omon[li]
    T = len(li)
    cell = la * M + lm
    cum = np.cumsum(zam.reshape(B * M, -1), axis=1)  # per cell, then gathered per line
    draw = rng.random(T) * cum[cell, -1]
    product = np.minimum((cum[cell] < draw[:, None]).sum(axis=1), len(PRODUCT_LINES) - 1)
    line_noise = np.exp(rng.normal(-0.5 * 0.6**2, 0.6, T))
    revenue = np.maximum(np.round(mu.ravel()[cell] / lam[la] * line_noise), 100.0)
    margin = np.clip(_MARGINS[product] + rng.normal(0, 0.04, T), 0.05, 0.95)
    cost = revenue * (1 - margin)
    quirk = rng.random(T) < s.cost_above_revenue_share
    cost[quirk] = revenue[quirk] * rng.uniform(1.02, 1.4, quirk.sum())
    cost = np.round(cost)
    unit = _UNIT_PRICE[product] * np.exp(rng.normal(0, 0.3, T))
    quantity = np.maximum(np.round(revenue / unit), 1.0)
    yymm = cal.yymm[omon][li]
    order_id = _ids("SO", [(ctx.gidx[la] + 1, ctx.id_width), (yymm, 4), (oseq[li] + 1, 3)])
    table = pa.table(
        {
            "account_id": ctx.account_ids(la),
            "date": _ts(oday[li]),
            "product_line": pa.array(PRODUCT_LINES).take(pa.array(product)),
            "revenue": pa.array(revenue),
            "cost": pa.array(cost),
            "currency": pa.repeat(pa.scalar("JPY"), T),
            "quantity": pa.array(quantity),
            "order_id": order_id,
        },
        schema=TABLE_SCHEMAS["transactions"],
    )
    return table, ctx.gidx[la]


def _contract_terms(ctx: _Ctx) -> dict[str, np.ndarray]:
    """Annual terms of the contractual accounts that overlap the window."""
    a, cal = ctx.a, ctx.cal
    con = np.flatnonzero(a["contractual"])
    since = a["since"][con]
    last = a["last_day"][con]
    j_min = np.maximum(0, np.floor((cal.start - since) / 365.25)).astype(np.int64)
    j_max = np.floor((last - since) / 365.25).astype(np.int64)
    n_terms = np.maximum(j_max - j_min + 1, 1)
    acc = np.repeat(con, n_terms)
    first = np.repeat(j_min, n_terms)
    j = first + _seq_within(acc)
    since_r = a["since"][acc]
    start = since_r + np.round(365.25 * j).astype(np.int64)
    end = since_r + np.round(365.25 * (j + 1)).astype(np.int64) - 1
    is_last = np.r_[acc[1:] != acc[:-1], True] if len(acc) else np.zeros(0, bool)
    churned = a["churned"][acc] & is_last
    end = np.where(churned, a["churn_day"][acc], end)
    status = np.where(is_last, np.where(churned, "churned", "active"), "renewed")
    month = ctx.cal.month_of(np.clip(start, cal.start, cal.end))
    month = np.maximum(month, a["first_m"][acc])
    adopted = a["adopt_m"][acc] <= month[:, None]
    sow_f = np.minimum((a["z"][acc] * adopted).sum(1) / a["z_init"][acc], _SOW_CAP / a["sow0"][acc])
    t = (start - cal.start) / 365.25
    value = 12 * 0.85 * _wallet_at(a, cal, acc, month, t=t) * a["sow0"][acc] * sow_f / 12
    signed = np.where(j == 0, a["signed0"][acc], start - ctx.rng.integers(14, 57, len(acc)))
    go_live = np.where(j == 0, a["go_live"][acc], -1)
    go_live = np.where(go_live > cal.end, -1, go_live)
    switch = ctx.rng.random(len(acc)) < 0.1
    pricing = np.where(
        switch & (j > 0), ctx.rng.integers(0, len(PRICING_MODELS), len(acc)), a["pricing"][acc]
    )
    return {
        "acc": acc,
        "start": start,
        "end": end,
        "value": np.round(value, -3),
        "signed": signed,
        "go_live": go_live,
        "status": status,
        "churn": np.where(churned, a["churn_day"][acc], -1),
        "pricing": pricing,
        "line": a["order"][acc, 0],
    }


def _opportunities(ctx: _Ctx, terms: dict[str, np.ndarray]):
    rng, a, cal, s, B = ctx.rng, ctx.a, ctx.cal, ctx.s, ctx.B
    end = cal.end
    parts: list[dict[str, np.ndarray]] = []

    def part(acc, created, close, stage, amount, typ, line, poc):
        parts.append(
            {
                "acc": acc,
                "created": created,
                "close": close,
                "stage": stage,
                "amount": np.round(np.maximum(amount, 1e5), -3),
                "type": typ,
                "line": line,
                "poc": poc,
            }
        )

    # (a) won cross-sell before each adoption inside the window
    acc_x, line_x = np.nonzero(~a["initial"] & (a["adopt_m"] < _NEVER))
    am = a["adopt_m"][acc_x, line_x]
    close = cal.month_start[am] - rng.integers(0, 21, len(acc_x))
    close = np.maximum(close, a["first_day"][acc_x] + 1)
    created = np.maximum(close - rng.integers(30, 151, len(acc_x)), a["since"][acc_x])
    amount = ctx.annual_rate(acc_x, am)
    amount = (
        amount * a["z"][acc_x, line_x] / a["z_init"][acc_x] * rng.uniform(0.85, 1.15, len(acc_x))
    )
    won_poc = rng.random(len(acc_x)) < 0.6
    part(
        acc_x,
        created,
        close,
        np.full(len(acc_x), 4),
        amount,
        np.full(len(acc_x), 1),
        line_x,
        won_poc,
    )

    # (b) won "new" deal for accounts acquired inside the window
    acc_n = np.flatnonzero(a["since"] >= cal.start)
    close = a["since"][acc_n]
    created = close - rng.integers(30, 121, len(acc_n))
    amount = ctx.annual_rate(acc_n, a["first_m"][acc_n])
    new_poc = rng.random(len(acc_n)) < 0.2
    part(
        acc_n,
        created,
        close,
        np.full(len(acc_n), 4),
        amount,
        np.zeros(len(acc_n), np.int64),
        a["order"][acc_n, 0],
        new_poc,
    )

    # (c) pipeline: cross-sell / upsell ideas; lost, won (upsell) or still open at as-of
    active_years = (a["last_day"] - a["first_day"] + 1) / 365.25
    rate = np.array([1.6, 1.4, 0.45])[a["tier"]]
    cnt = rng.poisson(rate * active_years)
    acc_p = np.repeat(np.arange(B), cnt)
    P = len(acc_p)
    created = _uniform_day(rng, a["first_day"][acc_p], a["last_day"][acc_p])
    planned = created + rng.integers(30, 181, P)
    line = _choice_rows(rng, _preference_matrix()[a["industry"][acc_p]])
    cm = cal.month_of(created)
    upsell = a["adopt_m"][acc_p, line] <= cm
    typ = np.where(upsell, 2, 1)
    closed = planned <= a["last_day"][acc_p]
    lost_at_churn = ~closed & a["churned"][acc_p]
    open_ = ~closed & ~lost_at_churn
    won = closed & upsell & (rng.random(P) < 0.45)
    open_stage = rng.choice(4, size=P, p=[0.3, 0.3, 0.25, 0.15])
    stage = np.where(open_, open_stage, np.where(won, 4, 5))
    close = np.where(lost_at_churn, a["churn_day"][acc_p], planned)
    close = np.where(open_ & (rng.random(P) < 0.15), -1, close)  # open, no expected date
    scale = ctx.annual_rate(acc_p, cm) * _PRICE_WEIGHT[line] / a["z_init"][acc_p]
    amount = scale * np.where(
        upsell, rng.uniform(0.1, 0.4, P), _XSELL_SIZE * rng.uniform(0.5, 1.5, P)
    )
    # PoCs: lost cross-sell PoCs so that closed PoCs are won at the planted rate
    poc = open_ & ~upsell & (rng.random(P) < 0.3)
    n_won_poc = int(won_poc.sum() + new_poc.sum())
    lost_xs = np.flatnonzero(closed & ~upsell)
    n_lost_poc = min(len(lost_xs), round(n_won_poc * (1 - s.poc_win_rate) / s.poc_win_rate))
    poc[rng.permutation(lost_xs)[:n_lost_poc]] = True
    part(acc_p, created, close, stage, amount, typ, line, poc)

    # (d) renewals of the contract terms
    tacc = terms["acc"]
    renewed = terms["status"] == "renewed"
    close = np.maximum(terms["end"] - rng.integers(0, 21, len(tacc)), terms["start"])
    created = close - rng.integers(45, 121, len(tacc))
    churn_r = terms["status"] == "churned"
    close = np.where(churn_r, terms["churn"], close)
    created = np.where(churn_r, terms["churn"] - rng.integers(20, 91, len(tacc)), created)
    open_r = (terms["status"] == "active") & (terms["end"] - end <= 120)
    close = np.where(open_r, np.maximum(terms["end"], end + 1), close)
    created = np.where(
        open_r, np.minimum(terms["end"] - 120, end - rng.integers(0, 30, len(tacc))), created
    )
    keep = renewed | churn_r | open_r
    stage = np.where(renewed, 4, np.where(churn_r, 5, rng.choice([2, 3], size=len(tacc))))
    part(
        tacc[keep],
        created[keep],
        close[keep],
        stage[keep],
        terms["value"][keep],
        np.full(keep.sum(), 3),
        terms["line"][keep],
        np.zeros(keep.sum(), bool),
    )

    o = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    o["created"] = np.minimum(o["created"], end)
    srt = np.lexsort((o["close"], o["created"], o["acc"]))
    o = {k: v[srt] for k, v in o.items()}
    n = len(o["acc"])
    is_open = o["stage"] < 4
    prob = np.where(
        is_open,
        np.clip(
            np.array([0.1, 0.25, 0.5, 0.7, 1.0, 0.0])[o["stage"]] + rng.normal(0, 0.05, n),
            0.02,
            0.95,
        ),
        np.where(o["stage"] == 4, 1.0, 0.0),
    )
    prob_null = rng.random(n) < 0.25
    seq = _seq_within(o["acc"])
    gacc = ctx.gidx[o["acc"]]
    table = pa.table(
        {
            "opportunity_id": _ids("OP", [(gacc + 1, ctx.id_width), (seq + 1, 3)]),
            "account_id": ctx.account_ids(o["acc"]),
            "created_date": _ts(o["created"]),
            "close_date": _ts(o["close"], mask=o["close"] < 0),
            "stage": pa.array(OPPORTUNITY_STAGES).take(pa.array(o["stage"])),
            "amount": pa.array(o["amount"]),
            "type": pa.array(OPPORTUNITY_TYPES).take(pa.array(o["type"])),
            "product_line": pa.array(PRODUCT_LINES).take(pa.array(o["line"])),
            "is_poc": pa.array(o["poc"]),
            "probability": pa.array(prob, mask=prob_null),
        },
        schema=TABLE_SCHEMAS["opportunities"],
    )
    # PoC pilots of contractual accounts' won cross-sells run as short contracts ("expired").
    closed_poc = o["poc"] & (o["stage"] >= 4)
    pil = closed_poc & (o["stage"] == 4) & (o["type"] == 1) & a["contractual"][o["acc"]]
    p_acc = o["acc"][pil]
    p_end = o["close"][pil] - 1
    p_start = np.maximum(p_end - rng.integers(60, 91, len(p_acc)), o["created"][pil])
    pilots = {
        "acc": p_acc,
        "start": p_start,
        "end": p_end,
        "value": np.round(o["amount"][pil] * 0.1, -3),
        "signed": p_start - rng.integers(5, 21, len(p_acc)),
        "go_live": np.minimum(p_start + rng.integers(3, 16, len(p_acc)), p_end),
        "status": np.full(len(p_acc), "expired"),
        "churn": np.full(len(p_acc), -1),
        "pricing": np.full(len(p_acc), PRICING_MODELS.index("fixed")),
        "line": o["line"][pil],
    }
    review_day = np.maximum(
        o["close"][closed_poc] - rng.integers(0, 11, closed_poc.sum()), o["created"][closed_poc]
    )
    poc_reviews = (o["acc"][closed_poc], review_day)
    return table, gacc, pilots, poc_reviews


def _contracts_table(ctx: _Ctx, terms: dict, pilots: dict):
    c = {k: np.concatenate([terms[k], pilots[k]]) for k in terms}
    srt = np.lexsort((c["start"], c["acc"]))
    c = {k: v[srt] for k, v in c.items()}
    seq = _seq_within(c["acc"])
    gacc = ctx.gidx[c["acc"]]
    n = len(gacc)
    table = pa.table(
        {
            "contract_id": _ids("CT", [(gacc + 1, ctx.id_width), (seq + 1, 2)]),
            "account_id": ctx.account_ids(c["acc"]),
            "start_date": _ts(c["start"]),
            "end_date": _ts(c["end"]),
            "annual_value": pa.array(np.maximum(c["value"], 0.0)),
            "currency": pa.repeat(pa.scalar("JPY"), n),
            "pricing_model": pa.array(PRICING_MODELS).take(pa.array(c["pricing"])),
            "signed_date": _ts(c["signed"]),
            "go_live_date": _ts(c["go_live"], mask=c["go_live"] < 0),
            "status": pa.array(c["status"].astype(str), type=pa.string()),
            "churn_date": _ts(c["churn"], mask=c["churn"] < 0),
            "product_line": pa.array(PRODUCT_LINES).take(pa.array(c["line"])),
        },
        schema=TABLE_SCHEMAS["contracts"],
    )
    return table, gacc


def _activities(ctx: _Ctx, stk: dict, poc_reviews):
    rng, a, cal, B, M = ctx.rng, ctx.a, ctx.cal, ctx.B, ctx.M
    tier = a["tier"]
    frac, active = ctx.frac, ctx.active
    m = np.arange(M)[None, :]
    kinds, counts = [], []
    # meeting, call, email, support, workshop per full month, by tier
    rates = np.array(
        [[1.5, 1.5, 3.0, 0.5, 0.15], [1.0, 1.0, 2.0, 0.4, 0.10], [0.35, 0.4, 0.8, 0.25, 0.02]]
    )
    for i, kind in enumerate(("meeting", "call", "email", "support", "workshop")):
        kinds.append(kind)
        counts.append(rng.poisson(rates[tier, i][:, None] * frac))
    kinds.append("qbr")
    counts.append(
        ((tier < 2)[:, None] & cal.fq_start[None, :] & active & (rng.random((B, M)) < 0.85)).astype(
            np.int64
        )
    )
    kinds.append("executive_meeting")
    counts.append((a["exec_meet"] & active).astype(np.int64))  # drawn with the churn
    kinds.append("onboarding")
    glm = np.where(
        a["contractual"] & (a["go_live"] >= cal.start) & (a["go_live"] <= cal.end),
        cal.month_of(np.clip(a["go_live"], cal.start, cal.end)),
        -5,
    )
    onb = active & ((m == glm[:, None]) | ((m == glm[:, None] + 1) & (rng.random((B, M)) < 0.5)))
    counts.append(onb.astype(np.int64))

    accs, days, kind_idx = [], [], []
    for kind, cnt in zip(kinds, counts, strict=True):
        acc, _, day = ctx.expand_cells(cnt)
        accs.append(acc)
        days.append(day)
        kind_idx.append(np.full(len(acc), ACTIVITY_KINDS.index(kind)))
    accs.append(poc_reviews[0])
    days.append(poc_reviews[1])
    kind_idx.append(np.full(len(poc_reviews[0]), ACTIVITY_KINDS.index("poc_review")))
    acc, day, kind = np.concatenate(accs), np.concatenate(days), np.concatenate(kind_idx)
    keep = (day < a["churn_day"][acc]) & (day <= cal.end)
    acc, day, kind = acc[keep], day[keep], kind[keep]
    srt = np.lexsort((kind, day, acc))
    acc, day, kind = acc[srt], day[srt], kind[srt]
    n = len(acc)

    is_exec_kind = kind == ACTIVITY_KINDS.index("executive_meeting")
    off, k, n_exec = stk["off"][acc], stk["k"][acc], stk["n_exec"][acc]
    u = rng.random(n)
    contact = np.where(
        is_exec_kind,
        off + np.floor(u * n_exec).astype(np.int64),
        off + np.floor(u * k).astype(np.int64),
    )
    no_contact = np.where(is_exec_kind, n_exec == 0, rng.random(n) < 0.15)
    last_contact = np.full(int(stk["k"].sum()), -1, dtype=np.int64)
    np.maximum.at(last_contact, contact[~no_contact], day[~no_contact])

    seq = _seq_within(acc)
    gacc = ctx.gidx[acc]
    table = pa.table(
        {
            "activity_id": _ids("AC", [(gacc + 1, ctx.id_width), (seq + 1, 5)]),
            "account_id": ctx.account_ids(acc),
            "date": _ts(day),
            "kind": pa.array(ACTIVITY_KINDS).take(pa.array(kind)),
            "contact_id": stk["ids"].take(pa.array(contact, mask=no_contact)),
        },
        schema=TABLE_SCHEMAS["activities"],
    )
    return table, gacc, last_contact


def _surveys(ctx: _Ctx, stk: dict):
    rng, a = ctx.rng, ctx.a
    # responses were drawn with the churn (they drive the hazard): one per month at most
    cnt = (~np.isnan(a["survey_nps"]) & ctx.active).astype(np.int64)
    acc, mon, day = ctx.expand_cells(cnt)
    srt = np.lexsort((day, acc))
    acc, mon, day = acc[srt], mon[srt], day[srt]
    n = len(acc)
    nps = a["survey_nps"][acc, mon].astype(np.int64)
    csat = np.clip(np.round(1 + 0.4 * nps + rng.normal(0, 0.7, n)), 1, 5).astype(np.int64)
    contact = stk["off"][acc] + np.floor(rng.random(n) * stk["k"][acc]).astype(np.int64)
    table = pa.table(
        {
            "account_id": ctx.account_ids(acc),
            "date": _ts(day),
            "nps": pa.array(nps),
            "csat": pa.array(csat, mask=rng.random(n) < 0.05),
            "contact_id": stk["ids"].take(pa.array(contact, mask=rng.random(n) < 0.3)),
        },
        schema=TABLE_SCHEMAS["surveys"],
    )
    return table, ctx.gidx[acc]


def _usage(ctx: _Ctx):
    rng, a, cal, M = ctx.rng, ctx.a, ctx.cal, ctx.M
    m = np.arange(M)[None, :]
    go_m = np.where(a["go_live"] < cal.start, 0, cal.month_of(np.minimum(a["go_live"], cal.end)))
    live = (
        a["contractual"][:, None]
        & (a["go_live"][:, None] <= cal.end)
        & (m >= go_m[:, None])
        & ctx.active
    )
    acc, mon = np.nonzero(live)
    years = np.floor((cal.month_start[mon] - a["since"][acc]) / 365.25)
    seats = np.round(
        a["seats0"][acc] * (1 + np.maximum(a["growth"][acc], 0)) ** np.maximum(years, 0)
    ).astype(np.int64)
    used = rng.binomial(seats, a["utilisation"][acc])
    table = pa.table(
        {
            "account_id": ctx.account_ids(acc),
            "month": _ts(cal.month_start[mon]),
            "seats_purchased": pa.array(seats),
            "seats_active": pa.array(used.astype(np.int64)),
        },
        schema=TABLE_SCHEMAS["usage"],
    )
    return table, ctx.gidx[acc]


# --------------------------------------------------------------------------- writing


def _write_all(
    folder: Path,
    n: int,
    seed: int,
    cal: _Calendar,
    fy_start: int,
    chunk_accounts: int,
    lines: float,
    s: SyntheticSettings,
    start: str,
    end: str,
) -> dict[str, int]:
    n_blocks = -(-n // RNG_BLOCK_ACCOUNTS)
    seeds = np.random.SeedSequence(seed).spawn(2 + n_blocks)
    cal = replace(cal, market=_market_path(seed, cal.n_months, s))  # before the wallets
    rng_accounts = np.random.default_rng(seeds[0])
    A = _draw_accounts(rng_accounts, n, cal, s, lines)
    id_width = max(6, len(str(n)))
    ids = _padded(np.arange(1, n + 1), id_width)
    ids = pc.binary_join_element_wise("C", ids, "")
    accounts = _accounts_table(np.random.default_rng(seeds[1]), A, ids)
    pq.write_table(accounts, folder / "accounts.parquet")

    truth = {
        "single_threaded": np.zeros(n, bool),
        "no_executive_stakeholder": np.zeros(n, bool),
        "high_influence_blocker": np.zeros(n, bool),
    }
    rows = {"accounts": n} | dict.fromkeys(_EVENT_TABLES, 0)
    writers = {
        t: pq.ParquetWriter(folder / f"{t}.parquet", TABLE_SCHEMAS[t]) for t in _EVENT_TABLES
    }
    cache: _Block | None = None
    try:
        for c_lo in range(0, n, chunk_accounts):
            c_hi = min(n, c_lo + chunk_accounts)
            pieces: dict[str, list[pa.Table]] = {t: [] for t in _EVENT_TABLES}
            for b in range(c_lo // RNG_BLOCK_ACCOUNTS, (c_hi - 1) // RNG_BLOCK_ACCOUNTS + 1):
                if cache is None or cache.lo != b * RNG_BLOCK_ACCOUNTS:
                    b_lo, b_hi = b * RNG_BLOCK_ACCOUNTS, min(n, (b + 1) * RNG_BLOCK_ACCOUNTS)
                    rng = np.random.default_rng(seeds[2 + b])
                    cache = _generate_block(rng, b_lo, b_hi, A, cal, s, ids, id_width)
                    for k, v in cache.truth.items():
                        truth[k][b_lo:b_hi] = v
                for t in _EVENT_TABLES:
                    acc = cache.acc[t]
                    i0, i1 = np.searchsorted(acc, [c_lo, c_hi])
                    pieces[t].append(cache.tables[t].slice(i0, i1 - i0))
            for t in _EVENT_TABLES:
                table = pa.concat_tables(pieces[t])
                if table.num_rows:
                    writers[t].write_table(table, row_group_size=max(table.num_rows, 1))
                rows[t] += table.num_rows
    finally:
        for w in writers.values():
            w.close()

    _write_truth(folder, A, ids, truth, cal, s, seed, n, fy_start, start, end)
    rows |= _write_plans(folder, A, ids, seed, cal)
    return rows


def _write_plans(folder: Path, A: dict, ids: pa.Array, seed: int, cal: _Calendar) -> dict:
    """Account team, objectives and concerns (:mod:`.plans`), recorded in the ground truth."""
    plans = write_plan_tables(
        folder,
        seed=seed,
        account_ids=ids.to_pylist(),
        tier=A["tier"],
        churned=A["churned"],
        as_of=str(np.datetime64(cal.end, "D")),
    )
    path = folder / "ground_truth.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["plans"] = plans["truth"]
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return plans["rows"]


def _concentration_truth(A: dict, ids: pa.Array, cal: _Calendar, s: SyntheticSettings) -> dict:
    """The planted concentration: targets, the scaled accounts and the expected shares."""
    expected = _expected_recent_revenue(A, cal)
    total = float(expected.sum())
    shares = np.sort(expected)[::-1] / total if total > 0 else np.zeros(0)
    scaled = np.flatnonzero(A["concentration_factor"] != 1.0)
    scaled = scaled[np.argsort(-expected[scaled], kind="stable")]
    return {
        "top1_revenue_share": s.top1_revenue_share,
        "top10_revenue_share": s.top10_revenue_share,
        "definition": "after every random draw, the wallets of at most 10 accounts active at "
        "as_of (key accounts first, then by expected revenue of the last 12 months) are scaled "
        "up so that the i-th holds at least p_i of the book's expected revenue of the last 12 "
        "months, p_i proportional to i^-a with p_1 = top1_revenue_share and "
        "sum p_i = top10_revenue_share; accounts already larger are not shrunk; employees and "
        "transaction counts keep their draw",
        "scaled_accounts": [
            {
                "account_id": ids[int(i)].as_py(),
                "wallet_factor": float(A["concentration_factor"][i]),
                "expected_share_12m": float(expected[i] / total),
            }
            for i in scaled
        ],
        "expected_top1_share_12m": float(shares[:1].sum()),
        "expected_top5_share_12m": float(shares[:5].sum()),
        "expected_top10_share_12m": float(shares[:10].sum()),
        "expected_hhi_12m": float(10_000 * np.sum(shares**2)),
    }


def _write_truth(
    folder: Path,
    A: dict,
    ids: pa.Array,
    truth: dict,
    cal: _Calendar,
    s: SyntheticSettings,
    seed: int,
    n: int,
    fy_start: int,
    start: str,
    end: str,
) -> None:
    per_account = pa.table(
        {
            "account_id": ids,
            "true_tier": pa.array(TIERS).take(pa.array(A["tier"])),
            "annual_growth": pa.array(A["growth"]),
            "true_wallet": pa.array(A["wallet_end"]),
            "true_share_of_wallet": pa.array(A["sow_last"]),
            "nps_latent": pa.array(A["nps_latent"]),
            "exec_engaged": pa.array(A["exec_engaged"]),
            "utilisation": pa.array(A["utilisation"]),  # NaN (not null) for transactional
            "contractual": pa.array(A["contractual"]),
            "churned": pa.array(A["churned"]),
            "churn_date": _ts(np.where(A["churned"], A["churn_day"], 0), mask=~A["churned"]),
            "monthly_hazard": pa.array(A["hazard"]),
            "single_threaded": pa.array(truth["single_threaded"]),
            "no_executive_stakeholder": pa.array(truth["no_executive_stakeholder"]),
            "high_influence_blocker": pa.array(truth["high_influence_blocker"]),
            "n_product_lines": pa.array(A["n_lines_last"].astype(np.int64)),
            "true_annual_run_rate": pa.array(A["run_rate_last"]),
        }
    )
    pq.write_table(per_account, folder / "ground_truth_accounts.parquet")
    coef = {
        "nps_per_point": math.log(s.hr_nps_per_point),
        "no_executive_contact": math.log(s.hr_no_executive_contact),
        "utilisation_per_10pp": math.log(s.hr_utilisation_per_10pp),
    }
    doc = {
        "params": {
            "seed": seed,
            "n_accounts": n,
            "start": str(np.datetime64(cal.start, "D")),
            "end": str(np.datetime64(cal.end, "D")),
            "as_of": str(np.datetime64(cal.end, "D")),
            "fiscal_year_start_month": fy_start,
            "currency": "JPY",
            "product_lines": list(PRODUCT_LINES),
            "industries": list(INDUSTRIES),
            "regions": list(REGIONS),
            "settings": s.model_dump(mode="json"),
        },
        "churn": {
            "model": "time-varying monthly proportional hazard h[i, m] = h0 * exp(b_nps*x_nps + "
            "b_exec*x_exec + b_util*x_util) * hr_tenure[band] * hr_renewal_month^renewal, at risk "
            "from the month after the account's first month in the window; the account churns "
            "in month m with probability h[i, m]",
            "baseline_monthly_hazard": s.baseline_monthly_hazard,
            "baseline_definition": "h0 is the hazard at NPS 7, an executive meeting in the "
            "previous 12 months, 70 % utilisation, tenure 36+ months, outside a renewal month",
            "coefficients": coef,
            "hazard_ratios": {k: math.exp(v) for k, v in coef.items()},
            "baseline_hazard_ratios": {
                "tenure_0_12m": s.hr_tenure[0],
                "tenure_12_24m": s.hr_tenure[1],
                "tenure_24_36m": s.hr_tenure[2],
                "renewal_month": s.hr_renewal_month,
            },
            "time_varying": {
                "executive_engagement": "two-state Markov chain per account, starting in "
                f"exec_engaged; switches off with probability {s.exec_switch_monthly:.4f} a "
                "month and on at the rate that keeps the tier's exec_engaged_share stationary; "
                "an engaged account has an executive_meeting with probability 1/3 a month (and "
                "always in its first month in the window)",
                "nps": f"latent NPS = nps_latent + AR(1) drift (coefficient {s.nps_drift_ar}, "
                f"stationary SD {s.nps_drift_sd}), clipped to 0-10; at most one survey a month, "
                "with probability survey_rate / 12; response = round(N(latent, 1.5)) clipped",
                "history": f"meetings and responses are simulated from "
                f"{max(s.exec_lookback_months, s.nps_max_age_months)} months before the "
                "window; only those inside the window are written, so the first months of the "
                "window have an incomplete look-back",
            },
            "covariate_definitions": {
                "nps_per_point": "latest surveys.nps dated before the month, if within the "
                f"previous {s.nps_max_age_months} months, minus 7; without one the hazard uses "
                "the latent NPS of the previous month (not observed: a missing measurement)",
                "no_executive_contact": "1 if the account has no activities row with kind "
                f"'executive_meeting' in the {s.exec_lookback_months} calendar months before the "
                "month (months before the account's since date do not exist), else 0",
                "utilisation_per_10pp": "(utilisation - 0.7) * 10, a constant latent per account, "
                "measured by usage.seats_active / usage.seats_purchased (Binomial noise); 0 for "
                "transactional accounts",
            },
            "baseline_definitions": {
                "tenure_band": "calendar months from the month of accounts.since to the month",
                "renewal_month": "the calendar month holding the end date of one of the "
                "account's annual terms (since + round(365.25 * (j + 1)) - 1 days); contractual "
                "accounts only",
            },
            "event_definition": "churned accounts have status 'churned' and churn_date on their "
            "last contract (contractual) and in ground_truth_accounts; no transaction, activity, "
            "survey or usage row on or after churn_date",
        },
        "tiers": {
            "shares": dict(zip(TIERS, s.tier_shares, strict=True)),
            "definition": {
                "key": "large wallet, high share of wallet, high qualitative scores",
                "growth": "large wallet, low share of wallet (headroom), high strategic_fit and "
                "synergy, fast cross-sell",
                "standard": "smaller wallet, middling share of wallet and scores",
            },
            "wallet_lognormal": {
                t: {
                    "median_jpy": float(np.exp(_WALLET_LOG_MEAN[i])),
                    "log_sd": float(_WALLET_LOG_SD[i]),
                }
                for i, t in enumerate(TIERS)
            },
            "share_of_wallet_beta": {
                t: list(map(float, _SOW_BETA[i])) for i, t in enumerate(TIERS)
            },
            "qualitative_score_means": {
                t: dict(zip(QUALITATIVE_CRITERIA, map(float, _QUAL_MEAN[i]), strict=True))
                for i, t in enumerate(TIERS)
            },
            "monthly_cross_sell_hazard": dict(zip(TIERS, map(float, _XSELL_MONTHLY), strict=True)),
            "wallet_estimate": "accounts.wallet_estimate = true_wallet (at as_of) x "
            f"lognormal(0, {s.wallet_estimate_noise_sd}), rounded; ~2 % missing",
        },
        "seasonality": {
            "factors_by_calendar_month": {
                str(k): v for k, v in seasonality_factors(fy_start, s).items()
            },
            "fy_end_uplift": s.fy_end_uplift,
            "quarter_end_uplift": s.quarter_end_uplift,
            "definition": "raw factor 1 + quarter_end_uplift in fiscal quarter-end months, "
            "1 + fy_end_uplift in the fiscal-year-end month, normalised to mean 1",
        },
        "growth": {
            "annual_growth_normal": {
                t: {"mean": float(_GROWTH_MEAN[i]), "sd": float(_GROWTH_SD[i])}
                for i, t in enumerate(TIERS)
            },
            "definition": "run-rate(t) = wallet0 * (1 + annual_growth)^(years since start) * "
            "share_of_wallet(t) * seasonality * lognormal noise; share_of_wallet rises with each "
            "cross-sold line (capped at 0.9)",
        },
        "products": {
            "gross_margin": dict(zip(PRODUCT_LINES, map(float, _MARGINS), strict=True)),
            "industry_preferences": industry_product_preferences(),
            "cost_above_revenue_share": s.cost_above_revenue_share,
        },
        "opportunities": {"poc_win_rate": s.poc_win_rate},
        "concentration": _concentration_truth(A, ids, cal, s),
        "market": {
            "volatility_annual": s.market_volatility_annual,
            "monthly_log_path": [float(x) for x in cal.market],
            "months": [
                str(m) for m in cal.month_start.astype("datetime64[D]").astype("datetime64[M]")
            ],
            "definition": "one market factor shared by every account: the wallet of every "
            "account in window month m (months[m]; its revenue, contract and opportunity "
            "amounts, true_wallet, true_annual_run_rate and wallet_estimate with it) is "
            "multiplied by exp(monthly_log_path[m]), a Gaussian random walk in logs with "
            "monthly_log_path[0] = 0 and independent monthly steps N(0, volatility_annual^2 / 12) "
            "(no drift correction: the expected multiplier grows as exp(m * "
            "volatility_annual^2 / 24)); shares of wallet are unchanged",
        },
        "accounts_file": "ground_truth_accounts.parquet",
    }
    (folder / "ground_truth.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")

"""Account-level features as of a date, aggregated in the engine.

The transaction table can hold tens of millions of lines, so every
transaction-level step (filtering to the as-of date, currency conversion,
trailing-window sums, distinct counts, purchase periods) is an Ibis
expression: it runs inside DuckDB by default, or inside any other Ibis
backend (Spark, Postgres, ...) holding the data. Only the result, one row
per account, comes back as a pandas DataFrame.

Time conventions (used by every function here)
----------------------------------------------
as-of date
    A calendar day; a time of day is dropped. Lines dated on the as-of day
    count, lines dated after it are ignored. Transaction timestamps are
    assigned to their calendar day (naive timestamps; a time zone is not
    interpreted).
Trailing windows
    ``12m`` is ``(as_of - 12 calendar months, as_of]`` and ``prev_12m`` is
    ``(as_of - 24 months, as_of - 12 months]``, with calendar months
    (``pandas.DateOffset(months=12)``; 29 February falls back to 28
    February), never 30-day months. For ``as_of = 2024-06-30`` the windows
    are 2023-07-01..2024-06-30 and 2022-07-01..2023-06-30, both inclusive.
Day counts
    ``recency_days`` and ``tenure_days`` are whole calendar days.
Purchase periods (BG/NBD summary)
    Calendar periods, as in lifetimes' ``summary_data_from_transaction_data``
    (which buckets dates with ``to_period(freq)``): ``"day"`` = calendar day,
    ``"week"`` = calendar week Monday-Sunday (7 days, pandas ``W-SUN``),
    ``"month"`` = calendar month. Periods are integers, so ``frequency``,
    ``recency`` and ``T`` are whole numbers of periods (months are counted
    as integer calendar months, not fractional 30.4-day months).

Credit notes and returns
------------------------
Lines may carry negative revenue, quantity and cost (credit notes, returns,
cancellations). Every sum is net: a credit note reduces the revenue (and
gross profit) of the window it is dated in. Purchases are counted only
where money actually came in:

* an **order** (``order_id``, see :func:`build_account_features`) counts
  when the net revenue over all its lines up to ``as_of`` is > 0. An order
  cancelled by a credit note on the same order number nets to 0 and is not
  an order; a credit note with its own number is never an order (its net is
  negative). An order is dated by its first line;
* a **purchase day** or **purchase period** (BG/NBD summary) is a calendar
  day or period whose net revenue is > 0; ``first_purchase``,
  ``last_purchase`` and ``recency_days`` come from purchase days, so a late
  credit note does not make an account look recently active;
* a **product line** is bought in a window when its net revenue in that
  window is > 0.

History coverage
----------------
A trailing window is *covered* when the book's data (every transaction line
up to ``as_of``, whatever its account) starts on or before the window's
first day, with a tolerance of :data:`COVERAGE_TOLERANCE_DAYS` days (the
first line of an export often falls on the first business day after a
weekend or holiday). Coverage is a property of the book, not of an account:
an account that became a customer inside a covered window really grew.
When the data does not cover the previous 12 months, every year-on-year
column (``revenue_prev_12m``, ``gross_profit_prev_12m``, ``revenue_growth``,
``gross_profit_growth``) is NaN for every account: 8 days of data standing in
for a year would give growth of thousands of percent. See
:func:`history_coverage`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from kam_analysis.core.errors import InputError
from kam_analysis.core.schemas import Accounts, FxRates, Transactions

Period = Literal["day", "week", "month"]
PERIODS: tuple[str, ...] = ("day", "week", "month")

# Column names come from the contract (pandera returns the field name).
_ACCOUNT_ID = Transactions.account_id
_DATE = Transactions.date
_PRODUCT_LINE = Transactions.product_line
_REVENUE = Transactions.revenue
_COST = Transactions.cost
_CURRENCY = Transactions.currency
_ORDER_ID = Transactions.order_id
_SINCE = Accounts.since
_WALLET = Accounts.wallet_estimate
_FX_CURRENCY = FxRates.currency
_FX_RATE = FxRates.rate_to_base

_SECONDS_PER_DAY = 86_400
_FIRST_MONDAY = 4  # day number of 1970-01-05, the first Monday after the epoch
_WINDOW_MONTHS = 12

COVERAGE_TOLERANCE_DAYS = 7
"""Days the data may start after a window's first day and still cover it (see module notes)."""

FEATURE_COLUMNS: tuple[str, ...] = (
    "account_id",
    "revenue_12m",
    "gross_profit_12m",
    "margin_12m",
    "revenue_prev_12m",
    "gross_profit_prev_12m",
    "revenue_growth",
    "gross_profit_growth",
    "orders_12m",
    "orders_total",
    "revenue_total",
    "first_purchase",
    "last_purchase",
    "recency_days",
    "tenure_days",
    "product_lines_12m",
    "product_lines_total",
    "wallet_estimate",
    "share_of_wallet",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "gross_profit_assumed",
)
"""Columns of :func:`build_account_features`, in order."""

_INT_COLUMNS = ("orders_12m", "orders_total", "product_lines_12m", "product_lines_total")
_DATETIME_COLUMNS = ("first_purchase", "last_purchase")


class FeatureSettings(BaseModel):
    """Configuration of the feature table (composed into ``kam.toml``)."""

    model_config = ConfigDict(extra="forbid")

    period: Period = Field(
        "week", description="Purchase period of the BG/NBD summary: day, week or month."
    )
    trend_months: int = Field(
        36, ge=1, description="Calendar months of history in the monthly revenue table."
    )


class FeatureInputError(InputError, ValueError):
    """The transactions, accounts or fx_rates tables cannot be used as given."""


# --------------------------------------------------------------------------- helpers


def _as_of_day(as_of) -> pd.Timestamp:
    """The as-of date as a naive midnight Timestamp."""
    try:
        ts = pd.Timestamp(as_of)
    except (TypeError, ValueError) as exc:
        raise FeatureInputError(f"as_of must be a date, got {as_of!r}") from exc
    if pd.isna(ts):
        raise FeatureInputError(f"as_of must be a date, got {as_of!r}")
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.normalize()


def _day_number(day: pd.Timestamp) -> int:
    return int((day - pd.Timestamp("1970-01-01")) // pd.Timedelta(days=1))


def period_of_day(day: pd.Timestamp, period: str) -> int:
    """Integer index of the calendar period holding ``day`` (see :func:`_period_expr`)."""
    if period == "day":
        return _day_number(day)
    if period == "week":
        return (_day_number(day) - _FIRST_MONDAY) // 7
    return day.year * 12 + day.month - 1


def _as_timestamp(col: ir.Value) -> ir.TimestampValue:
    return col.cast("timestamp") if col.type().is_date() else col


def _day_expr(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Calendar day number (days since 1970-01-01) of a timestamp column."""
    return ts.epoch_seconds() // _SECONDS_PER_DAY


def _period_expr(ts: ir.TimestampValue, day: ir.IntegerValue, period: str) -> ir.IntegerValue:
    """Integer index of the calendar period of each line.

    Consecutive periods have consecutive indices, so differences are counts
    of periods: days since the epoch, Monday-based weeks since 1970-01-05,
    or ``12 * year + month - 1``.
    """
    if period == "day":
        return day
    if period == "week":
        return (day - _FIRST_MONDAY) // 7
    return ts.year() * 12 + ts.month() - 1


def _check_period(period: str) -> None:
    if period not in PERIODS:
        raise FeatureInputError(f"period must be one of {PERIODS}, got {period!r}")


def _require_columns(table: ir.Table, name: str, required: dict[str, str]) -> None:
    """Check that ``table`` has the required columns with usable types."""
    schema = table.schema()
    missing = [c for c in required if c not in schema]
    if missing:
        raise FeatureInputError(
            f"{name} is missing required column(s) {missing}; it has {list(schema.names)}"
        )
    for col, kind in required.items():
        dtype = schema[col]
        ok = {
            "temporal": dtype.is_timestamp() or dtype.is_date(),
            "numeric": dtype.is_numeric(),
            "any": True,
        }[kind]
        if not ok:
            raise FeatureInputError(
                f"{name}.{col} must be {kind} (see kam_analysis.core.schemas), got type {dtype}"
            )


def _rate_map(fx_rates: ir.Table) -> dict[str, float]:
    """Read the (small) fx table and check it: one positive rate per currency."""
    _require_columns(fx_rates, "fx_rates", {_FX_CURRENCY: "any", _FX_RATE: "numeric"})
    fx = fx_rates.select(_FX_CURRENCY, _FX_RATE).to_pandas()
    dup = fx[_FX_CURRENCY][fx[_FX_CURRENCY].duplicated()].unique().tolist()
    if dup:
        raise FeatureInputError(f"fx_rates lists currency {dup} more than once")
    bad = fx[~(fx[_FX_RATE] > 0)]
    if len(bad):
        raise FeatureInputError(
            f"fx_rates.{_FX_RATE} must be > 0; bad rows: {bad.head(5).to_dict('records')}"
        )
    return {str(c): float(r) for c, r in zip(fx[_FX_CURRENCY], fx[_FX_RATE], strict=True)}


def _conversion_rate(lines: ir.Table, fx_rates: ir.Table | None) -> ir.FloatingValue | None:
    """Per-line factor into base currency, or None when no conversion is needed.

    Runs one small query (the distinct currencies up to the as-of date) to
    check that every currency is known.
    """
    if _CURRENCY not in lines.schema():
        return None  # amounts are in the base currency by contract
    currencies = lines.select(_CURRENCY).distinct().to_pandas()[_CURRENCY].dropna()
    currencies = sorted(str(c) for c in currencies)
    if fx_rates is None:
        if len(currencies) > 1:
            raise FeatureInputError(
                f"transactions mix currencies {currencies[:10]}; pass fx_rates "
                f"({_FX_CURRENCY}, {_FX_RATE}) to convert them into the base currency"
            )
        return None
    rates = _rate_map(fx_rates)
    unknown = [c for c in currencies if c not in rates]
    if unknown:
        raise FeatureInputError(
            f"currency {unknown[:10]} of transactions.{_CURRENCY} is missing from fx_rates "
            f"(which has {sorted(rates)[:10]}); add it, with {_FX_RATE} = 1.0 if it is the "
            "base currency"
        )
    cur = lines[_CURRENCY]
    # A missing currency value means the base currency (see schemas.Transactions).
    return cur.substitute(rates, else_=ibis.literal(1.0))


def _check_margin(assumed_gross_margin: float | None) -> float | None:
    """Validate the assumed gross margin (a fraction of revenue)."""
    if assumed_gross_margin is None:
        return None
    try:
        m = float(assumed_gross_margin)
    except (TypeError, ValueError):
        raise FeatureInputError(
            f"assumed_gross_margin must be a number, got {assumed_gross_margin!r}"
        ) from None
    if not (np.isfinite(m) and 0 <= m <= 1):
        raise FeatureInputError(
            f"assumed_gross_margin must be a fraction of revenue in [0, 1], got {m}"
        )
    return m


def prepared_lines(
    transactions: ir.Table,
    as_of_day: pd.Timestamp,
    period: str,
    fx_rates: ir.Table | None,
    assumed_gross_margin: float | None = None,
) -> ir.Table:
    """Lines up to the as-of day with day, period, converted revenue and gross profit.

    ``product_line`` is NULL when the table has no such column; gross profit
    is ``revenue - cost``, ``revenue * assumed_gross_margin`` when there is no
    cost column and a margin is assumed, else NULL.
    """
    _require_columns(
        transactions,
        "transactions",
        {_ACCOUNT_ID: "any", _DATE: "temporal", _REVENUE: "numeric"},
    )
    if _COST in transactions.schema():
        _require_columns(transactions, "transactions", {_COST: "numeric"})
    end = ibis.literal(as_of_day + pd.Timedelta(days=1), type="timestamp")
    date = _as_timestamp(transactions[_DATE])
    lines = transactions.filter(date < end)
    rate = _conversion_rate(lines, fx_rates)

    date = _as_timestamp(lines[_DATE])
    day = _day_expr(date)
    revenue = lines[_REVENUE].cast("float64")
    if _COST in lines.schema():
        gross_profit = revenue - lines[_COST].cast("float64")
    elif assumed_gross_margin is not None:
        gross_profit = revenue * ibis.literal(float(assumed_gross_margin))
    else:
        gross_profit = ibis.null("float64")
    if rate is not None:
        revenue = revenue * rate
        gross_profit = gross_profit * rate
    if _ORDER_ID in lines.schema():
        # Lines without an order number count as one order per account and day.
        order_key = ibis.coalesce(
            lines[_ORDER_ID].cast("string"), ibis.literal("~day:") + day.cast("string")
        )
    else:
        order_key = day
    if _PRODUCT_LINE in lines.schema():
        product_line = lines[_PRODUCT_LINE].cast("string")
    else:
        product_line = ibis.null("string")
    return lines.select(
        account_id=lines[_ACCOUNT_ID],
        ts=date,
        day=day,
        period=_period_expr(date, day, period),
        product_line=product_line,
        order_key=order_key,
        revenue=revenue,
        gross_profit=gross_profit,
    )


def _window_starts(as_of_day: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First day of the trailing 12 months and of the 12 months before."""
    return _window_start(as_of_day, _WINDOW_MONTHS), _window_start(as_of_day, 2 * _WINDOW_MONTHS)


def _window_start(as_of_day: pd.Timestamp, months: int) -> pd.Timestamp:
    """First day of the trailing ``months`` calendar months ending on ``as_of_day``."""
    return as_of_day - pd.DateOffset(months=int(months)) + pd.Timedelta(days=1)


def _daily(lines: ir.Table, period: str) -> ir.Table:
    """Lines summed per account and calendar day (the grain of every window and purchase).

    Windows are whole days, so window sums, purchase days and purchase
    periods all follow from this much smaller table. ``_ts_first`` /
    ``_ts_last`` are the first and last line with positive revenue on the
    day, so a credit note booked later on a purchase day does not move the
    last purchase.
    """
    paid = lines.revenue > 0
    per_day = lines.group_by(["account_id", "day"]).aggregate(
        _rev=lines.revenue.sum(),
        _gp=lines.gross_profit.sum(),
        _gp_missing=lines.gross_profit.isnull().any(),
        _ts=lines.ts.min(),
        _ts_first=lines.ts.min(where=paid),
        _ts_last=lines.ts.max(where=paid),
    )
    return per_day.mutate(period=_period_expr(per_day._ts, per_day.day, period))


def _account_sums(per_day: ir.Table, start_12m: pd.Timestamp, start_prev: pd.Timestamp) -> ir.Table:
    """Net window sums and first / last purchase day per account (one grouping by account).

    A purchase day is a day with positive net revenue.
    """
    in_12m = per_day.day >= _day_number(start_12m)
    in_prev = ~in_12m & (per_day.day >= _day_number(start_prev))
    bought = per_day._rev > 0
    return per_day.group_by("account_id").aggregate(
        _rev_12m=per_day._rev.sum(where=in_12m),
        _gp_12m=per_day._gp.sum(where=in_12m),
        _gp_12m_missing=per_day._gp_missing.any(where=in_12m),
        _rev_prev=per_day._rev.sum(where=in_prev),
        _gp_prev=per_day._gp.sum(where=in_prev),
        _gp_prev_missing=per_day._gp_missing.any(where=in_prev),
        _rev_total=per_day._rev.sum(),
        first_purchase=per_day._ts_first.min(where=bought),
        last_purchase=per_day._ts_last.max(where=bought),
        _first_day=per_day.day.min(where=bought),
        _last_day=per_day.day.max(where=bought),
    )


def _order_counts(lines: ir.Table, start_12m: ir.TimestampScalar) -> ir.Table:
    """Orders per account with positive net revenue, in total and dated in the 12 months.

    An order is dated by its first line; its net revenue is summed over all
    its lines up to the as-of date (a cancellation on the same order number
    nets it out).
    """
    per_order = lines.group_by(["account_id", "order_key"]).aggregate(
        _rev=lines.revenue.sum(), _first=lines.ts.min()
    )
    is_order = per_order._rev > 0
    return per_order.group_by("account_id").aggregate(
        _orders_total=per_order.count(where=is_order),
        _orders_12m=per_order.count(where=is_order & (per_order._first >= start_12m)),
    )


def _product_line_counts(lines: ir.Table, in_12m: ir.BooleanValue) -> ir.Table:
    """Product lines per account with positive net revenue, in total and in the 12 months."""
    per_line = lines.group_by(["account_id", "product_line"]).aggregate(
        _rev=lines.revenue.sum(), _rev_12m=lines.revenue.sum(where=in_12m)
    )
    per_line = per_line.filter(per_line.product_line.notnull())
    return per_line.group_by("account_id").aggregate(
        _pl_total=per_line.count(where=per_line._rev > 0),
        _pl_12m=per_line.count(where=per_line._rev_12m > 0),
    )


def _period_summary(per_day: ir.Table) -> ir.Table:
    """Purchase periods (positive net revenue) per account: count, first, last, revenue."""
    per_period = per_day.group_by(["account_id", "period"]).aggregate(_rev=per_day._rev.sum())
    buying = per_period.filter(per_period._rev > 0)
    return buying.group_by("account_id").aggregate(
        _n_periods=buying.count(),
        _first_period=buying.period.min(),
        _last_period=buying.period.max(),
        _rev_first_period=buying._rev.argmin(buying.period),
        _rev_periods=buying._rev.sum(),
    )


# --------------------------------------------------------------------------- coverage


@dataclass(frozen=True)
class HistoryCoverage:
    """What the book's transaction history covers as of a date (:func:`history_coverage`).

    Dates are naive calendar days (midnight timestamps). A window starting on
    day ``s`` is covered when ``first_date <= s + tolerance_days``.
    """

    as_of: pd.Timestamp
    """The analysis date (time of day dropped)."""
    first_date: pd.Timestamp | None
    """Day of the first transaction line up to ``as_of`` (None without lines)."""
    last_date: pd.Timestamp | None
    """Day of the last transaction line up to ``as_of`` (None without lines)."""
    full_months: int
    """Whole calendar months of history: the largest ``m`` with
    ``first_date <= as_of - m months + 1 day`` (strict, no tolerance; 0 without lines;
    from a month-end ``as_of``, whole calendar months)."""
    tolerance_days: int = COVERAGE_TOLERANCE_DAYS
    """Days the data may start after a window's first day and still cover it."""
    has_cost: bool = True
    """The transactions have a ``cost`` column."""
    has_product_line: bool = True
    """The transactions have a ``product_line`` column."""

    def window_start(self, months: int) -> pd.Timestamp:
        """First day of the trailing ``months`` calendar months ending on ``as_of``."""
        return _window_start(self.as_of, months)

    @property
    def covered_from(self) -> pd.Timestamp | None:
        """Earliest window start that the data covers (``first_date - tolerance_days``)."""
        if self.first_date is None:
            return None
        return self.first_date - pd.Timedelta(days=self.tolerance_days)

    def covers(self, start) -> bool:
        """Whether the data covers a window starting on ``start`` (a date)."""
        frm = self.covered_from
        return frm is not None and _as_of_day(start) >= frm

    @property
    def start_12m(self) -> pd.Timestamp:
        """First day of the trailing 12 months."""
        return self.window_start(_WINDOW_MONTHS)

    @property
    def start_prev_12m(self) -> pd.Timestamp:
        """First day of the previous 12 months: what year-on-year growth needs data from."""
        return self.window_start(2 * _WINDOW_MONTHS)

    @property
    def covers_12m(self) -> bool:
        """The data covers the trailing 12 months."""
        return self.covers(self.start_12m)

    @property
    def covers_prev_12m(self) -> bool:
        """The data covers the previous 12 months (growth is available)."""
        return self.covers(self.start_prev_12m)

    @property
    def days_before_as_of(self) -> int | None:
        """Days from the last line to ``as_of`` (None without lines)."""
        if self.last_date is None:
            return None
        return int((self.as_of - self.last_date) // pd.Timedelta(days=1))


def _full_months(first: pd.Timestamp, as_of_day: pd.Timestamp) -> int:
    """Largest m >= 0 with ``first <= as_of - m months + 1 day``.

    From a month-end ``as_of`` the months are whole calendar months (30 June
    minus 18 months is 31 December, so 1997-01-01 .. 1998-06-30 is 18 months).
    """
    month_end = as_of_day == as_of_day + pd.offsets.MonthEnd(0)

    def start(m: int) -> pd.Timestamp:
        back = as_of_day - pd.DateOffset(months=m)
        if month_end:
            back = back + pd.offsets.MonthEnd(0)
        return back + pd.Timedelta(days=1)

    m = (as_of_day.year - first.year) * 12 + (as_of_day.month - first.month) + 1
    while m > 0 and start(m) < first:
        m -= 1
    return max(m, 0)


def history_coverage(
    transactions: ir.Table, as_of, *, tolerance_days: int = COVERAGE_TOLERANCE_DAYS
) -> HistoryCoverage:
    """The date range of the book's transaction lines up to ``as_of``, and what it covers.

    One small query in the engine (the minimum and maximum line date). Every
    line counts, whatever its account or sign: coverage is about the dates
    the export spans.

    Parameters
    ----------
    transactions : ibis.Table
        Invoice / order lines with a ``date`` column (timestamp or date).
    as_of : date-like
        Analysis date; lines after it are ignored.
    tolerance_days : int, default :data:`COVERAGE_TOLERANCE_DAYS` (7)
        A window counts as covered when the data starts at most this many
        days after its first day.

    Returns
    -------
    HistoryCoverage
        ``first_date`` / ``last_date`` (available range), ``full_months``,
        ``covers_12m`` / ``covers_prev_12m`` and the window starts they need
        (``start_12m``, ``start_prev_12m``), ``has_cost`` and
        ``has_product_line``. Example: data from 2010-12-01 with ``as_of``
        2011-12-09 covers the trailing 12 months (from 2010-12-10) but not the
        previous 12 months, which need data from 2009-12-10.

    Raises
    ------
    FeatureInputError
        No usable ``date`` column, a bad ``as_of`` or a negative tolerance.
    """
    day0 = _as_of_day(as_of)
    if int(tolerance_days) < 0:
        raise FeatureInputError(f"tolerance_days must be >= 0, got {tolerance_days}")
    _require_columns(transactions, "transactions", {_DATE: "temporal"})
    end = ibis.literal(day0 + pd.Timedelta(days=1), type="timestamp")
    lines = transactions.filter(_as_timestamp(transactions[_DATE]) < end)
    date = _as_timestamp(lines[_DATE])
    row = lines.aggregate(first=date.min(), last=date.max()).to_pandas().iloc[0]
    first = None if pd.isna(row["first"]) else pd.Timestamp(row["first"]).normalize()
    last = None if pd.isna(row["last"]) else pd.Timestamp(row["last"]).normalize()
    schema = transactions.schema()
    return HistoryCoverage(
        as_of=day0,
        first_date=first,
        last_date=last,
        full_months=0 if first is None else _full_months(first, day0),
        tolerance_days=int(tolerance_days),
        has_cost=_COST in schema,
        has_product_line=_PRODUCT_LINE in schema,
    )


# --------------------------------------------------------------------------- public API


def account_features_expr(
    transactions: ir.Table,
    accounts: ir.Table,
    as_of,
    *,
    period: Period = "week",
    fx_rates: ir.Table | None = None,
    coverage: HistoryCoverage | None = None,
    assumed_gross_margin: float | None = None,
) -> ir.Table:
    """The lazy Ibis expression behind :func:`build_account_features`.

    Parameters and output columns are those of :func:`build_account_features`
    (rows unordered, missing values as SQL NULL). Building the expression
    runs small queries with tiny results: :func:`history_coverage` (the
    minimum and maximum line date) unless ``coverage`` is given, and, when a
    ``currency`` column exists, its distinct values up to ``as_of`` (one
    scan of that column) and ``fx_rates``. The features themselves are
    computed when the expression is executed, e.g. with ``expr.to_pandas()``
    or ``con.create_table(name, expr)`` on the backend holding the data.

    Raises
    ------
    FeatureInputError
        See :func:`build_account_features`.
    """
    _check_period(period)
    day0 = _as_of_day(as_of)
    margin = _check_margin(assumed_gross_margin)
    _require_columns(accounts, "accounts", {_ACCOUNT_ID: "any"})
    for col, kind in ((_SINCE, "temporal"), (_WALLET, "numeric")):
        if col in accounts.schema():
            _require_columns(accounts, "accounts", {col: kind})
    lines = prepared_lines(transactions, day0, period, fx_rates, margin)
    if coverage is None:
        coverage = history_coverage(transactions, day0)
    start_12m, start_prev = _window_starts(day0)
    start_12m_lit = ibis.literal(start_12m, type="timestamp")
    in_12m = lines.ts >= start_12m_lit
    has_product_line = _PRODUCT_LINE in transactions.schema()

    # Several narrow aggregations rather than one aggregation with COUNT(DISTINCT ...):
    # engines run a distinct aggregate as a separate grouping anyway, and two-level
    # counts let one grouping serve both windows. Windows are whole days, so the sums,
    # purchase days and purchase periods come from one per-day table.
    per_day = _daily(lines, period)
    parts = [
        _account_sums(per_day, start_12m, start_prev),
        _order_counts(lines, start_12m_lit),
        _period_summary(per_day),
    ]
    if has_product_line:
        parts.append(_product_line_counts(lines, in_12m))
    acc = accounts
    acc_cols = {"account_id": acc[_ACCOUNT_ID]}
    acc_cols["_since_day"] = (
        _day_expr(_as_timestamp(acc[_SINCE])) if _SINCE in acc.schema() else ibis.null("int64")
    )
    acc_cols["wallet_estimate"] = (
        acc[_WALLET].cast("float64") if _WALLET in acc.schema() else ibis.null("float64")
    )
    t = acc.select(**acc_cols)
    for i, part in enumerate(parts):  # one join chain, no intermediate projections
        part = part.rename({f"_key{i}": "account_id"})
        t = t.left_join(part, t.account_id == part[f"_key{i}"])

    zero = ibis.literal(0.0)
    null = ibis.null("float64")
    revenue_12m = t._rev_12m.fill_null(zero)
    revenue_prev = t._rev_prev.fill_null(zero)
    has_gp = _COST in transactions.schema() or margin is not None
    if has_gp:
        gp_12m = t._gp_12m_missing.fill_null(False).ifelse(null, t._gp_12m.fill_null(zero))
        gp_prev = t._gp_prev_missing.fill_null(False).ifelse(null, t._gp_prev.fill_null(zero))
    else:  # no cost column: gross profit unknown, also for accounts without lines
        gp_12m = gp_prev = null
    # a margin of a net credit (revenue <= 0) means nothing; an assumed margin is not measured
    margin_12m = (
        null if margin is not None else (revenue_12m > zero).ifelse(gp_12m / revenue_12m, null)
    )
    if coverage.covers_prev_12m:
        # growth on a net credit (previous revenue <= 0) has no meaning
        revenue_growth = (revenue_prev > zero).ifelse(
            (revenue_12m - revenue_prev) / revenue_prev, null
        )
        gp_growth = (gp_12m - gp_prev) / gp_prev.abs().nullif(zero)
    else:  # the data does not cover the previous year: nothing year-on-year is known
        revenue_prev = gp_prev = revenue_growth = gp_growth = null
    if has_product_line:
        pl_12m = t._pl_12m.fill_null(0).cast("int64")
        pl_total = t._pl_total.fill_null(0).cast("int64")
    else:
        pl_12m = pl_total = null
    as_of_day_number = _day_number(day0)
    frequency = (t._n_periods - 1).cast("float64")
    first_day = ibis.coalesce(ibis.least(t._since_day, t._first_day), t._since_day, t._first_day)
    return t.select(
        account_id=t.account_id,
        revenue_12m=revenue_12m,
        gross_profit_12m=gp_12m,
        margin_12m=margin_12m,
        revenue_prev_12m=revenue_prev,
        gross_profit_prev_12m=gp_prev,
        revenue_growth=revenue_growth,
        gross_profit_growth=gp_growth,
        orders_12m=t._orders_12m.fill_null(0).cast("int64"),
        orders_total=t._orders_total.fill_null(0).cast("int64"),
        revenue_total=t._rev_total.fill_null(zero),
        first_purchase=t.first_purchase,
        last_purchase=t.last_purchase,
        recency_days=(as_of_day_number - t._last_day).cast("float64"),
        tenure_days=(as_of_day_number - first_day).cast("float64"),
        product_lines_12m=pl_12m,
        product_lines_total=pl_total,
        wallet_estimate=t.wallet_estimate,
        share_of_wallet=revenue_12m / t.wallet_estimate.nullif(zero),
        frequency=frequency,
        recency=(t._last_period - t._first_period).cast("float64"),
        T=(period_of_day(day0, period) - t._first_period).cast("float64"),
        monetary_value=(t._rev_periods - t._rev_first_period) / frequency.nullif(zero),
        gross_profit_assumed=ibis.literal(_COST not in transactions.schema() and has_gp),
    )


def build_account_features(
    transactions: ir.Table,
    accounts: ir.Table,
    as_of,
    *,
    period: Period = "week",
    fx_rates: ir.Table | None = None,
    coverage: HistoryCoverage | None = None,
    assumed_gross_margin: float | None = None,
) -> pd.DataFrame:
    """Account-level feature table as of a date, aggregated in the engine.

    The aggregation over transaction lines runs in the backend of the Ibis
    tables (DuckDB for ``ibis.memtable`` / ``ibis.duckdb.connect()``, or
    Spark, Postgres, ...); only one row per account is returned. Credit
    notes and returns (negative lines) are netted, and year-on-year columns
    are NaN when the history does not cover the previous 12 months (see the
    module notes).

    Parameters
    ----------
    transactions : ibis.Table
        Invoice / order lines (:class:`kam_analysis.core.schemas.Transactions`).
        Required columns ``account_id``, ``date`` (timestamp or date),
        ``revenue`` (may be negative: credit notes, returns). Optional:
        ``cost`` (absent: every gross-profit column is NaN unless
        ``assumed_gross_margin`` is given), ``product_line`` (absent:
        ``product_lines_12m`` and ``product_lines_total`` are NaN),
        ``currency`` (absent, or a single currency without ``fx_rates``: no
        conversion; a missing value means the base currency), ``order_id``
        (absent: an order is a distinct account and calendar day; lines with
        a missing ``order_id`` count one order per account and day). Lines
        after ``as_of`` and lines of accounts not in ``accounts`` are ignored.
    accounts : ibis.Table
        One row per account (:class:`kam_analysis.core.schemas.Accounts`).
        Required ``account_id``; optional ``since`` and ``wallet_estimate``.
        Other columns are not used.
    as_of : date-like
        Analysis date (``"2024-06-30"``, ``datetime.date``,
        ``pandas.Timestamp``); the time of day is dropped and lines on that
        day count. See the module docstring for the time conventions.
    period : {"week", "day", "month"}, default "week"
        Calendar period of the BG/NBD summary columns.
    fx_rates : ibis.Table, optional
        Columns ``currency`` and ``rate_to_base`` (base-currency units per
        unit; :class:`kam_analysis.core.schemas.FxRates`). When given and
        transactions have a ``currency`` column, ``revenue`` and ``cost``
        are multiplied by the rate of their currency.
    coverage : HistoryCoverage, optional
        The book's history (:func:`history_coverage` of the same
        transactions and ``as_of``); computed (one small query) when omitted.
    assumed_gross_margin : float, optional
        Gross margin in [0, 1] assumed when the transactions have no ``cost``
        column: gross profit = revenue x margin, ``gross_profit_assumed`` is
        True and ``margin_12m`` stays NaN (the margin is an assumption, not a
        measurement). Ignored when a cost column exists.

    Returns
    -------
    pandas.DataFrame
        One row per account of ``accounts``, sorted by ``account_id``.
        Amounts are in the base currency and net of credit notes; ``12m`` =
        trailing 12 calendar months ending on ``as_of``, ``prev_12m`` = the
        12 months before. Accounts without transactions get 0 for sums and
        counts and NaN / NaT for everything else.

        ========================= ==================================================
        account_id                account key
        revenue_12m               net revenue in the trailing 12 months (negative when
                                  credit notes outweigh sales)
        gross_profit_12m          revenue - cost in the 12 months; NaN when the cost
                                  column is absent (and no margin is assumed) or any
                                  line of the window lacks a cost
        margin_12m                gross_profit_12m / revenue_12m (NaN unless revenue
                                  > 0, and when the gross margin is assumed)
        revenue_prev_12m          revenue in the 12 months before the trailing 12; NaN
                                  for every account when the history does not cover
                                  those months
        gross_profit_prev_12m     gross profit in those months (NaN as above)
        revenue_growth            (revenue_12m - revenue_prev_12m) / revenue_prev_12m;
                                  NaN unless revenue_prev_12m > 0
        gross_profit_growth       (gp_12m - gp_prev_12m) / abs(gp_prev_12m); NaN when
                                  the previous gross profit is 0 or NaN
        orders_12m                orders (positive net revenue) dated in the 12 months
        orders_total              orders (positive net revenue) up to as_of (int)
        revenue_total             net revenue of all lines up to as_of
        first_purchase            first line of the first day with positive net
                                  revenue (NaT if none)
        last_purchase             last positive line of the last day with positive net
                                  revenue up to as_of (NaT if none)
        recency_days              days from the last purchase day to as_of
        tenure_days               days from min(since, first purchase) to as_of
        product_lines_12m         product lines with positive net revenue in the
                                  12 months (int; NaN without a product_line column)
        product_lines_total       product lines with positive net revenue up to as_of
                                  (int; NaN without a product_line column)
        wallet_estimate           from accounts (NaN when absent)
        share_of_wallet           revenue_12m / wallet_estimate; NaN when the wallet
                                  is missing or 0
        frequency                 repeat purchase periods: purchase periods (positive
                                  net revenue) - 1 (NaN without purchases)
        recency                   periods from the first to the last purchase period
        T                         periods from the first purchase period to the
                                  period of as_of
        monetary_value            mean net revenue of the repeat purchase periods
                                  (the first purchase period excluded); NaN when
                                  frequency is 0
        gross_profit_assumed      True when gross profit is revenue x
                                  ``assumed_gross_margin`` (no cost column)
        ========================= ==================================================

        ``frequency``, ``recency``, ``T`` and ``monetary_value`` are the
        BG/NBD / Gamma-Gamma summary in calendar ``period`` units and follow
        lifetimes' ``summary_data_from_transaction_data`` (revenue summed
        per period, first period dropped from the mean), except that
        ``monetary_value`` is NaN rather than 0 when there is no repeat
        purchase, so it cannot be mistaken for a zero spend, and that only
        periods with positive net revenue are purchase periods: a credit
        note in a period of its own is not a purchase and is not deducted
        from ``monetary_value`` (the mean spend per purchase the Gamma-Gamma
        model describes), while a return inside a purchase period reduces
        that period's revenue. All amounts and day counts are float64;
        counts are int64.

    Raises
    ------
    FeatureInputError
        (a ``ValueError``) when a required column is missing or mistyped,
        ``period``, ``as_of`` or ``assumed_gross_margin`` is invalid,
        transactions mix currencies without ``fx_rates``, a currency is
        missing from ``fx_rates``, or ``fx_rates`` repeats a currency or has
        a non-positive rate.

    References
    ----------
    .. [1] Fader, P. S., Hardie, B. G. S., & Lee, K. L. (2005). "Counting your
       customers" the easy way: An alternative to the Pareto/NBD model.
       Marketing Science, 24(2), 275-284.
    .. [2] Fader, P. S., & Hardie, B. G. S. (2013). The Gamma-Gamma model of
       monetary value. http://www.brucehardie.com/notes/025/
    .. [3] Davidson-Pilon, C. lifetimes, ``lifetimes.utils.summary_data_from_
       transaction_data``. https://github.com/CamDavidsonPilon/lifetimes
    """
    expr = account_features_expr(
        transactions,
        accounts,
        as_of,
        period=period,
        fx_rates=fx_rates,
        coverage=coverage,
        assumed_gross_margin=assumed_gross_margin,
    )
    df = expr.to_pandas()
    return _tidy_features(df)


def _tidy_features(df: pd.DataFrame) -> pd.DataFrame:
    """Stable order and dtypes for the pandas result."""
    df = df.sort_values("account_id", kind="stable", ignore_index=True)
    out = {}
    for col in FEATURE_COLUMNS:
        s = df[col]
        if col == "account_id":
            out[col] = s
        elif col == "gross_profit_assumed":
            out[col] = s.fillna(False).astype(bool)
        elif col in _INT_COLUMNS and s.notna().all():
            out[col] = s.astype("int64")
        elif col in _DATETIME_COLUMNS:
            out[col] = pd.to_datetime(s)
        else:  # amounts, day counts, and counts that are unknown (NaN)
            out[col] = pd.to_numeric(s).astype("float64")
    return pd.DataFrame(out)


def monthly_revenue(
    transactions: ir.Table,
    as_of,
    months: int = 36,
    *,
    fx_rates: ir.Table | None = None,
    assumed_gross_margin: float | None = None,
) -> pd.DataFrame:
    """Revenue and gross profit per account and calendar month, aggregated in the engine.

    Parameters
    ----------
    transactions : ibis.Table
        As for :func:`build_account_features` (``cost``, ``currency`` and
        ``order_id`` optional).
    as_of : date-like
        Analysis date; lines after it are ignored, so the month of ``as_of``
        is month-to-date.
    months : int, default 36
        Number of calendar months returned: the month of ``as_of`` and the
        ``months - 1`` months before it.
    fx_rates : ibis.Table, optional
        Conversion into the base currency, as for :func:`build_account_features`.
    assumed_gross_margin : float, optional
        Without a cost column, gross profit = revenue x this margin (as for
        :func:`build_account_features`).

    Returns
    -------
    pandas.DataFrame
        Columns ``account_id``, ``month`` (timestamp of the first day of the
        month), ``revenue`` (float, net of credit notes) and ``gross_profit``
        (float; NaN when the cost column is absent and no margin is assumed,
        or when any line of that account-month lacks a cost). One row per account and month with at least one line (months
        without sales have no row; reindex to fill zeros), sorted by
        ``account_id`` and ``month``.

    Raises
    ------
    FeatureInputError
        As for :func:`build_account_features`, or when ``months < 1``.
    """
    if not isinstance(months, (int, np.integer)) or months < 1:
        raise FeatureInputError(f"months must be a positive integer, got {months!r}")
    day0 = _as_of_day(as_of)
    margin = _check_margin(assumed_gross_margin)
    lines = prepared_lines(transactions, day0, "month", fx_rates, margin)
    first_month = day0.replace(day=1) - pd.DateOffset(months=int(months) - 1)
    lines = lines.filter(lines.ts >= ibis.literal(first_month, type="timestamp"))
    lines = lines.mutate(month=lines.ts.truncate("M"))
    agg = lines.group_by(["account_id", "month"]).aggregate(
        revenue=lines.revenue.sum(),
        gross_profit=lines.gross_profit.sum(),
        _gp_missing=lines.gross_profit.isnull().any(),
    )
    agg = agg.select(
        "account_id",
        "month",
        "revenue",
        gross_profit=agg._gp_missing.ifelse(ibis.null("float64"), agg.gross_profit),
    )
    df = agg.to_pandas()
    df = df.sort_values(["account_id", "month"], kind="stable", ignore_index=True)
    df["month"] = pd.to_datetime(df["month"])
    df["revenue"] = df["revenue"].astype("float64")
    df["gross_profit"] = pd.to_numeric(df["gross_profit"]).astype("float64")
    return df


__all__ = [
    "COVERAGE_TOLERANCE_DAYS",
    "FEATURE_COLUMNS",
    "FeatureInputError",
    "FeatureSettings",
    "HistoryCoverage",
    "account_features_expr",
    "build_account_features",
    "history_coverage",
    "monthly_line_summary",
    "monthly_revenue",
    "product_line_revenue",
]


def product_line_revenue(
    transactions: ir.Table,
    as_of,
    *,
    fx_rates: ir.Table | None = None,
) -> pd.DataFrame:
    """Trailing 12-month revenue per account and product line, aggregated in the engine.

    What the cross-sell whitespace needs from the transaction lines
    (:func:`kam_analysis.valuation.whitespace_matrix`, argument
    ``spend_12m``), without pulling the lines into pandas.

    Parameters
    ----------
    transactions : ibis.Table
        As for :func:`build_account_features`.
    as_of : date-like
        End of the window ``(as_of - 12 months, as_of]`` (see the module notes).
    fx_rates : ibis.Table, optional
        Conversion into the base currency, as for :func:`build_account_features`.

    Returns
    -------
    pandas.DataFrame
        Columns ``account_id``, ``product_line``, ``revenue`` (float, net of
        credit notes): one row per account and product line with a line in
        the window (lines without an account or product line are left out),
        sorted by both keys. Empty when the transactions have no
        ``product_line`` column: the product-line analyses are then not
        available (:attr:`HistoryCoverage.has_product_line` tells the two
        kinds of empty apart).

    Raises
    ------
    FeatureInputError
        As for :func:`build_account_features`.
    """
    day0 = _as_of_day(as_of)
    lines = prepared_lines(transactions, day0, "month", fx_rates)
    if _PRODUCT_LINE not in transactions.schema():
        return pd.DataFrame(
            {
                "account_id": pd.Series(dtype="object"),
                "product_line": pd.Series(dtype="object"),
                "revenue": pd.Series(dtype="float64"),
            }
        )
    start_12m, _ = _window_starts(day0)
    lines = lines.filter(
        (lines.ts >= ibis.literal(start_12m, type="timestamp"))
        & lines.account_id.notnull()
        & lines.product_line.notnull()
    )
    agg = lines.group_by(["account_id", "product_line"]).aggregate(revenue=lines.revenue.sum())
    df = agg.to_pandas()
    df = df.sort_values(["account_id", "product_line"], kind="stable", ignore_index=True)
    df["revenue"] = pd.to_numeric(df["revenue"]).astype("float64").fillna(0.0)
    return df


def monthly_line_summary(
    transactions: ir.Table,
    as_of,
    *,
    fx_rates: ir.Table | None = None,
    assumed_gross_margin: float | None = None,
) -> pd.DataFrame:
    """Transaction lines summed per account, calendar month and product line, in the engine.

    A compact stand-in for the line table wherever only monthly (or
    quarterly, fiscal-year) sums and line counts matter, e.g.
    :func:`kam_analysis.kpi.compute_kpis`, which reads the ``n_lines``
    column as the number of lines a row stands for. Lines with and without a
    cost are kept in separate rows, so that "lines without cost" stay
    countable.

    Parameters
    ----------
    transactions : ibis.Table
        As for :func:`build_account_features`.
    as_of : date-like
        Lines after it are left out.
    fx_rates : ibis.Table, optional
        Conversion into the base currency, as for :func:`build_account_features`.
    assumed_gross_margin : float, optional
        Without a cost column, ``cost = revenue x (1 - margin)`` (as for
        :func:`build_account_features`).

    Returns
    -------
    pandas.DataFrame
        Columns ``account_id``, ``date`` (first day of the month),
        ``product_line`` (None when the table has no product_line column),
        ``revenue`` (float, net of credit notes), ``cost`` (float; NaN for
        the lines without a cost, and when the table has no cost column and
        no margin is assumed), ``n_lines`` (int64). Sorted by account, month
        and product line.

    Raises
    ------
    FeatureInputError
        As for :func:`build_account_features`.
    """
    day0 = _as_of_day(as_of)
    margin = _check_margin(assumed_gross_margin)
    lines = prepared_lines(transactions, day0, "month", fx_rates, margin)
    lines = lines.mutate(month=lines.ts.truncate("M"), _no_cost=lines.gross_profit.isnull())
    agg = lines.group_by(["account_id", "month", "product_line", "_no_cost"]).aggregate(
        revenue=lines.revenue.sum(),
        gross_profit=lines.gross_profit.sum(),
        n_lines=lines.count(),
    )
    # sorted in the engine (binary string order, nulls last: as pandas would sort them)
    df = agg.order_by(["account_id", "month", "product_line", "_no_cost"]).to_pandas()
    revenue = pd.to_numeric(df["revenue"]).astype("float64").fillna(0.0)
    gross_profit = pd.to_numeric(df["gross_profit"]).astype("float64")
    return pd.DataFrame(
        {
            "account_id": df["account_id"],
            "date": pd.to_datetime(df["month"]),
            "product_line": df["product_line"],
            "revenue": revenue,
            "cost": (revenue - gross_profit).where(~df["_no_cost"].astype(bool)),
            "n_lines": df["n_lines"].astype("int64"),
        }
    )

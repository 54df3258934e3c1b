"""Account-level churn hazard with time-varying covariates (discrete time, monthly).

Contractual accounts are followed month by month from the month after they
enter observation until they churn or the as-of date: the person-month table
of :func:`build_person_months`. In calendar month ``m`` the churn probability
depends on the account's state *at the start of the month*, measured only from
data dated before it (lagged, time-varying covariates; Allison 1982; Singer &
Willett 2003, ch. 11), through a proportional model

``h_im = h0(tenure band, renewal month) * exp(b_nps x_nps + b_exec x_exec + b_util x_util)``

* ``nps_per_point``: the latest survey NPS of the previous 12 months, minus 7;
* ``no_executive_contact``: 1 without an ``executive_meeting`` activity in the
  previous 12 (or 6) calendar months, else 0;
* ``utilisation_per_10pp``: mean seats_active / seats_purchased over the
  previous 3 usage months, minus 70 %, times 10;
* a piecewise baseline: a hazard ratio per tenure band (0-12, 12-24, 24-36
  months against 36+) and one for the month a contract term ends
  (``renewal_month``).

A covariate summarising the account's whole history ("ever had an executive
meeting") would partly measure survival itself (immortal-time bias): an
account that lives longer has more time to get one. Lagged covariates only use
the past of each month.

**Missing measurements** are never dropped silently: a missing value is set
to the reference (0) and an indicator term flags it (``survey_missing``,
``contact_history_short``: no meeting seen while the look-back reaches before
the data history, ``usage_missing``); prediction applies the same rule, and
``missingness_`` counts the accounts and person-months that lacked each
measurement.

``exp(b)`` is a hazard ratio (HR). Three estimators (statsmodels GLMs on the
person-month table, aggregated over identical rows, which leaves the
likelihood unchanged):

``"poisson"`` (default)
    Poisson GLM, log link: the piecewise-exponential likelihood; its HRs are
    ratios of monthly churn probabilities (the planted HRs of the synthetic
    data).
``"cloglog"``
    Binomial GLM with complementary log-log link: the grouped-time
    proportional hazards model (Prentice & Gloeckler 1978).
``"logit"``
    Binomial GLM with logit link; ``exp(b)`` are odds ratios.

Time units: one period is one calendar month (never 30 days); a final partial
month at the as-of date is dropped (not yet a full trial).

References
----------
Allison, P. D. (1982). Discrete-time methods for the analysis of event
histories. *Sociological Methodology* 13, 61-98.

Prentice, R. L. & Gloeckler, L. A. (1978). Regression analysis of grouped
survival data with application to breast cancer data. *Biometrics* 34(1),
57-67.

Singer, J. D. & Willett, J. B. (2003). *Applied Longitudinal Data
Analysis*, ch. 10-12 (person-period data sets). Oxford University Press.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from kam_analysis.core.errors import InputError
from kam_analysis.core.schemas import Activities, Contracts, Surveys, Usage

from ._base import ConvergenceError, NotFittedError

__all__ = [
    "BASELINE_TERMS",
    "COVARIATES",
    "MISSING_INDICATORS",
    "ChurnHazardModel",
    "HazardInputError",
    "churn_period_shock",
    "build_churn_covariates",
    "build_person_months",
    "hazard_design",
    "person_period_table",
]

Link = Literal["poisson", "cloglog", "logit"]
LINKS: tuple[str, ...] = ("poisson", "cloglog", "logit")

COVARIATES: tuple[str, ...] = ("nps_per_point", "no_executive_contact", "utilisation_per_10pp")
"""Measured covariates, named as in the synthetic generator's ``ground_truth.json``."""

MISSING_INDICATORS: dict[str, str] = {
    "nps_per_point": "survey_missing",
    "no_executive_contact": "contact_history_short",
    "utilisation_per_10pp": "usage_missing",
}
"""Indicator term of each covariate: 1 where the measurement is missing (value set to 0)."""

TENURE_BANDS: tuple[int, ...] = (12, 24, 36)
"""Upper bounds (months) of the tenure bands with their own term; 36+ is the reference."""

BASELINE_TERMS: tuple[str, ...] = (
    "tenure_0_12m",
    "tenure_12_24m",
    "tenure_24_36m",
    "renewal_month",
)
"""Terms of the piecewise baseline (tenure bands against 36+ months, renewal month)."""

#: Reference points the covariates are centred on (NPS 7, 70 % utilisation).
NPS_REFERENCE = 7.0
UTILISATION_REFERENCE = 0.7

#: Default look-backs (calendar months before the month).
EXEC_LOOKBACK_MONTHS = 12
NPS_MAX_AGE_MONTHS = 12
UTILISATION_MONTHS = 3
#: Contracts shorter than this (pilots) do not define renewal months.
MIN_TERM_MONTHS = 6
#: Term assumed for a churned contract without an earlier term to copy.
CONTRACT_TERM_MONTHS = 12

_EXEC_KIND = "executive_meeting"
_KEY = np.int64(1 << 20)  # account code * _KEY + month or day number: one sortable int64


class HazardInputError(InputError, ValueError):
    """The tables given to the churn hazard model cannot be used as given."""


# --------------------------------------------------------------------------- helpers


def _day(value: Any, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise HazardInputError(f"{name} must be a date, got {value!r}") from None
    if ts is pd.NaT:
        raise HazardInputError(f"{name} must be a date, got {value!r}")
    return ts.normalize().tz_localize(None) if ts.tzinfo else ts.normalize()


def _require(df: pd.DataFrame, table: str, columns: Sequence[str]) -> None:
    if not isinstance(df, pd.DataFrame):
        raise HazardInputError(f"{table} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise HazardInputError(
            f"{table} lacks column(s) {missing}; it has {list(df.columns)} "
            "(see kam_analysis.core.schemas)"
        )


def _month_index(dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Calendar month number (year * 12 + month - 1) of each date."""
    d = pd.DatetimeIndex(pd.to_datetime(dates))
    return (d.year * 12 + d.month - 1).to_numpy(dtype=np.int64)


def _day_number(dates: pd.Series | np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of each date."""
    return pd.to_datetime(pd.Series(dates)).to_numpy("datetime64[D]").astype(np.int64)


def _month_first_day(month: np.ndarray) -> np.ndarray:
    """Day number of the first day of calendar month number ``month``."""
    return (
        (np.asarray(month) - 1970 * 12)
        .astype("datetime64[M]")
        .astype("datetime64[D]")
        .astype(np.int64)
    )


def _month_fraction(day: pd.Timestamp) -> float:
    """Share of its calendar month elapsed at the end of ``day`` (1.0 on the last day)."""
    return day.day / day.days_in_month


def _codes(ids: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each id in ``index`` (-1 when absent)."""
    return index.get_indexer(ids.astype(str))


# --------------------------------------------------------------------------- accounts


def _observation_start(
    con: pd.DataFrame,
    activities: pd.DataFrame | None,
    surveys: pd.DataFrame | None,
    usage: pd.DataFrame | None,
    observation_start: Any,
) -> pd.Timestamp:
    if observation_start is not None:
        return _day(observation_start, "observation_start")
    firsts = [
        pd.to_datetime(df[col]).min()
        for df, col in (
            (activities, Activities.date),
            (surveys, Surveys.date),
            (usage, Usage.month),
        )
        if df is not None and col in df.columns and len(df)
    ]
    return max(firsts) if firsts else pd.to_datetime(con[Contracts.start_date]).min()


def _account_spans(
    contracts: pd.DataFrame, day: pd.Timestamp, obs0: pd.Timestamp, account_start: Any
) -> pd.DataFrame:
    """Entry, exit, event, months at risk and start month per account (index account_id)."""
    con = contracts
    start = pd.to_datetime(con[Contracts.start_date])
    end = pd.to_datetime(con[Contracts.end_date])
    churn_col = (
        pd.to_datetime(con[Contracts.churn_date])
        if Contracts.churn_date in con.columns
        else pd.Series(pd.NaT, index=con.index)
    )
    is_churn = con[Contracts.status].astype(str).eq("churned")
    churn_day = churn_col.where(churn_col.notna(), end).where(is_churn)
    grouped = pd.DataFrame(
        {"account_id": con[Contracts.account_id].astype(str), "start": start, "end": end}
        | {"churn": churn_day}
    ).groupby("account_id", sort=True)
    out = pd.DataFrame({"first_start": grouped["start"].min(), "last_end": grouped["end"].max()})
    first_churn = grouped["churn"].min()
    event = first_churn.notna() & (first_churn <= day)
    out["entry"] = out["first_start"].clip(lower=obs0)
    censor = out["last_end"].fillna(day).clip(upper=day)
    out["exit"] = first_churn.where(event, censor)
    out["event"] = event.astype(np.int64)
    m_entry = _month_index(out["entry"])
    m_exit = _month_index(out["exit"])
    months = (m_exit - m_entry).astype(float)
    # a censored exit in the as-of month counts the elapsed fraction of that month
    in_asof_month = (~event.to_numpy()) & (m_exit == day.year * 12 + day.month - 1)
    months = np.where(in_asof_month & (months > 0), months - 1 + _month_fraction(day), months)
    out["months_at_risk"] = np.maximum(months, 0.0)
    since = out["first_start"]
    if account_start is not None:
        given = pd.to_datetime(pd.Series(account_start)).reindex(out.index)
        since = given.where(given.notna() & (given <= since), since)
    out["start_month"] = _month_index(since)
    return out


def _renewal_schedule(
    contracts: pd.DataFrame, index: pd.Index, *, min_term_months: int, term_months: int
) -> tuple[np.ndarray, pd.Series]:
    """Sorted keys (account code * _KEY + month) of renewal months, and each account's term.

    A contract of at least ``min_term_months`` months renews in the calendar
    month of its end date; a churned contract's end date is its churn date,
    so its scheduled end is its start plus the account's usual term (the
    median of its other terms, else ``term_months``).
    """
    start = pd.to_datetime(contracts[Contracts.start_date])
    end = pd.to_datetime(contracts[Contracts.end_date])
    churned = contracts[Contracts.status].astype(str).eq("churned").to_numpy()
    length = (_month_index(end + pd.Timedelta(days=1)) - _month_index(start)).astype(float)
    code = _codes(contracts[Contracts.account_id], index)
    regular = (~churned) & (length >= min_term_months)
    term = (
        pd.Series(length[regular]).groupby(code[regular]).median().round().astype(np.int64)
    ).reindex(range(len(index)), fill_value=term_months)
    term_of = term.to_numpy()[np.maximum(code, 0)]
    sched_end = np.where(
        churned,
        _month_index(start) + term_of - 1 + (start.dt.day.to_numpy() > 1),
        _month_index(end),
    )
    keep = (code >= 0) & (churned | regular)
    keys = np.unique(code[keep].astype(np.int64) * _KEY + sched_end[keep])
    return keys, pd.Series(term.to_numpy(), index=index, name="term_months")


def _in_sorted(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    pos = np.searchsorted(keys, query)
    return (pos < keys.size) & (keys[np.minimum(pos, max(keys.size - 1, 0))] == query)


# --------------------------------------------------------------------------- covariates


class _Measurements:
    """Event tables as sorted int64 keys, to read lagged covariates at (account, month) pairs."""

    def __init__(
        self,
        index: pd.Index,
        day: pd.Timestamp,
        surveys: pd.DataFrame | None,
        activities: pd.DataFrame | None,
        usage: pd.DataFrame | None,
    ) -> None:
        self.has_surveys = surveys is not None
        self.has_activities = activities is not None
        self.has_usage = usage is not None
        self.survey_keys = np.zeros(0, np.int64)
        self.survey_nps = np.zeros(0)
        if surveys is not None:
            _require(surveys, "surveys", [Surveys.account_id, Surveys.date, Surveys.nps])
            sv = surveys[
                (pd.to_datetime(surveys[Surveys.date]) <= day) & surveys[Surveys.nps].notna()
            ]
            code = _codes(sv[Surveys.account_id], index)
            ok = code >= 0
            keys = code[ok].astype(np.int64) * _KEY + _day_number(sv[Surveys.date])[ok]
            order = np.argsort(keys, kind="stable")
            self.survey_keys = keys[order]
            self.survey_nps = sv[Surveys.nps].to_numpy(dtype=float)[ok][order]
        self.exec_keys = np.zeros(0, np.int64)
        if activities is not None:
            _require(
                activities, "activities", [Activities.account_id, Activities.date, Activities.kind]
            )
            act = activities[
                (pd.to_datetime(activities[Activities.date]) <= day)
                & activities[Activities.kind].astype(str).eq(_EXEC_KIND)
            ]
            code = _codes(act[Activities.account_id], index)
            ok = code >= 0
            keys = code[ok].astype(np.int64) * _KEY + _month_index(act[Activities.date])[ok]
            self.exec_keys = np.sort(keys)
        self.usage_keys = np.zeros(0, np.int64)
        self.usage_cum = np.zeros(1)
        if usage is not None:
            _require(
                usage,
                "usage",
                [Usage.account_id, Usage.month, Usage.seats_purchased, Usage.seats_active],
            )
            us = usage[
                (pd.to_datetime(usage[Usage.month]) <= day) & (usage[Usage.seats_purchased] > 0)
            ]
            code = _codes(us[Usage.account_id], index)
            ok = code >= 0
            ratio = us[Usage.seats_active].to_numpy(dtype=float) / us[
                Usage.seats_purchased
            ].to_numpy(dtype=float)
            keys = code[ok].astype(np.int64) * _KEY + _month_index(us[Usage.month])[ok]
            order = np.argsort(keys, kind="stable")
            self.usage_keys = keys[order]
            self.usage_cum = np.r_[0.0, np.cumsum(ratio[ok][order])]

    def nps(self, acc: np.ndarray, month: np.ndarray, max_age: int) -> np.ndarray:
        """Latest NPS dated before ``month`` and in the ``max_age`` months before it, minus 7."""
        if not self.has_surveys:
            return np.full(acc.size, np.nan)
        base = acc.astype(np.int64) * _KEY
        pos = np.searchsorted(self.survey_keys, base + _month_first_day(month), side="left") - 1
        posc = np.maximum(pos, 0)
        found = (pos >= 0) & (self.survey_keys[posc] >= base + _month_first_day(month - max_age))
        return np.where(found, self.survey_nps[posc] - NPS_REFERENCE, np.nan)

    def no_exec_contact(
        self,
        acc: np.ndarray,
        month: np.ndarray,
        lookback: int,
        start_month: np.ndarray,
        obs_month: int,
    ) -> np.ndarray:
        """1 without a meeting in the ``lookback`` months before; NaN when unseen history could hold one."""
        if not self.has_activities:
            return np.full(acc.size, np.nan)
        base = acc.astype(np.int64) * _KEY
        n = np.searchsorted(self.exec_keys, base + month - 1, side="right") - np.searchsorted(
            self.exec_keys, base + month - lookback, side="left"
        )
        seen_all = np.maximum(month - lookback, start_month) >= obs_month
        return np.where(n > 0, 0.0, np.where(seen_all, 1.0, np.nan))

    def utilisation(self, acc: np.ndarray, month: np.ndarray, months: int) -> np.ndarray:
        """Mean seats_active / seats_purchased over the ``months`` usage months before ``month``."""
        if not self.has_usage:
            return np.full(acc.size, np.nan)
        base = acc.astype(np.int64) * _KEY
        hi = np.searchsorted(self.usage_keys, base + month - 1, side="right")
        lo = np.searchsorted(self.usage_keys, base + month - months, side="left")
        n = hi - lo
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (self.usage_cum[hi] - self.usage_cum[lo]) / n
        return np.where(n > 0, mean, np.nan)


def _state_at(
    meas: _Measurements,
    acc: np.ndarray,
    month: np.ndarray,
    start_month: np.ndarray,
    obs_month: int,
    renewal_keys: np.ndarray,
    lookbacks: dict[str, int],
) -> dict[str, np.ndarray]:
    """Covariates, tenure and renewal flag of accounts ``acc`` at the start of calendar ``month``."""
    util = meas.utilisation(acc, month, lookbacks["utilisation"])
    return {
        "nps_per_point": meas.nps(acc, month, lookbacks["nps"]),
        "no_executive_contact": meas.no_exec_contact(
            acc, month, lookbacks["exec"], start_month[acc], obs_month
        ),
        "utilisation": util,
        "utilisation_per_10pp": (util - UTILISATION_REFERENCE) * 10.0,
        "tenure_months": (month - start_month[acc]).astype(np.int64),
        "renewal_month": _in_sorted(renewal_keys, acc.astype(np.int64) * _KEY + month).astype(
            np.int64
        ),
    }


def _prepare(
    contracts: pd.DataFrame,
    surveys: pd.DataFrame | None,
    activities: pd.DataFrame | None,
    usage: pd.DataFrame | None,
    as_of: Any,
    observation_start: Any,
    account_start: Any,
    min_term_months: int,
    contract_term_months: int,
) -> tuple[pd.Timestamp, pd.DataFrame, pd.DataFrame, int, _Measurements, np.ndarray, pd.Series]:
    day = _day(as_of, "as_of")
    _require(
        contracts,
        "contracts",
        [Contracts.account_id, Contracts.start_date, Contracts.end_date, Contracts.status],
    )
    con = contracts[pd.to_datetime(contracts[Contracts.start_date]) <= day]
    if con.empty:
        raise HazardInputError(f"contracts: no contract starts on or before as_of {day.date()}")
    obs0 = _observation_start(con, activities, surveys, usage, observation_start)
    spans = _account_spans(con, day, obs0, account_start)
    meas = _Measurements(spans.index, day, surveys, activities, usage)
    keys, term = _renewal_schedule(
        con, spans.index, min_term_months=min_term_months, term_months=contract_term_months
    )
    obs_month = int(_month_index(pd.Series([obs0]))[0])
    return day, con, spans, obs_month, meas, keys, term


def build_person_months(
    contracts: pd.DataFrame,
    *,
    surveys: pd.DataFrame | None = None,
    activities: pd.DataFrame | None = None,
    usage: pd.DataFrame | None = None,
    as_of: dt.date | str | pd.Timestamp,
    observation_start: dt.date | str | pd.Timestamp | None = None,
    account_start: pd.Series | None = None,
    exec_lookback_months: int = EXEC_LOOKBACK_MONTHS,
    nps_max_age_months: int = NPS_MAX_AGE_MONTHS,
    utilisation_months: int = UTILISATION_MONTHS,
    min_term_months: int = MIN_TERM_MONTHS,
    contract_term_months: int = CONTRACT_TERM_MONTHS,
) -> pd.DataFrame:
    """One row per contractual account and calendar month at risk, with lagged covariates.

    Built vectorised (sorted keys and binary search, no loop per account):
    100,000 accounts x 36 months take a few seconds.

    Parameters
    ----------
    contracts : DataFrame
        :class:`~kam_analysis.core.schemas.Contracts` rows; uses ``account_id``,
        ``start_date``, ``end_date``, ``status`` and ``churn_date``.
    surveys, activities, usage : DataFrame, optional
        :class:`~kam_analysis.core.schemas.Surveys` (``account_id``, ``date``,
        ``nps``), ``Activities`` (``account_id``, ``date``, ``kind``), ``Usage``
        (``account_id``, ``month``, ``seats_purchased``, ``seats_active``).
        Without a table its covariate is missing in every month.
    as_of : date-like
        End of observation; rows dated after it are ignored.
    observation_start : date-like, optional
        First day of the data history; default: the latest of the earliest
        dates of activities, surveys and usage, else the earliest contract start.
        Accounts signed earlier are left-truncated (at risk from this date).
    account_start : Series, optional
        Customer-since date per ``account_id`` (e.g. ``accounts.since``), for the
        tenure of left-truncated accounts; default (and when later): the
        first contract start.
    exec_lookback_months, nps_max_age_months, utilisation_months : int
        Look-backs, in calendar months before the month (12, 12, 3).
    min_term_months : int
        Contracts shorter than this (pilots) define no renewal month.
    contract_term_months : int
        Term assumed for a churned contract when the account has no other term.

    Returns
    -------
    DataFrame
        ======================== =================================================
        account_id               account key
        month                    first day of the calendar month at risk
        period                   1 = the account's first month at risk
        churned                  1 in the churn month, else 0
        nps_per_point            latest NPS dated before the month and within
                                 ``nps_max_age_months`` months, minus 7 (NaN: none)
        no_executive_contact     1 without an executive meeting in the
                                 ``exec_lookback_months`` months before, 0 with one;
                                 NaN when none was seen but the look-back reaches
                                 before ``observation_start`` for an account that
                                 existed then
        utilisation              mean seats_active / seats_purchased over the
                                 usage months among the previous
                                 ``utilisation_months`` (NaN: none)
        utilisation_per_10pp     (utilisation - 0.7) * 10
        tenure_months            calendar months since the account's start month
        renewal_month            1 in the calendar month a contract term ends
        ======================== =================================================

    Raises
    ------
    HazardInputError
        Missing columns, an unparsable date, no contracts up to ``as_of``.
    """
    day, _, spans, obs_month, meas, keys, _ = _prepare(
        contracts,
        surveys,
        activities,
        usage,
        as_of,
        observation_start,
        account_start,
        min_term_months,
        contract_term_months,
    )
    event = spans["event"].to_numpy(dtype=np.int64)
    months = spans["months_at_risk"].to_numpy(dtype=float)
    n_rows = np.maximum(np.where(event == 1, np.ceil(months), np.floor(months)), 0).astype(np.int64)
    acc = np.repeat(np.arange(len(spans)), n_rows)
    starts = np.cumsum(n_rows) - n_rows
    period = np.arange(acc.size) - np.repeat(starts, n_rows) + 1
    month = _month_index(spans["entry"])[acc] + period
    state = _state_at(
        meas,
        acc,
        month,
        spans["start_month"].to_numpy(),
        obs_month,
        keys,
        {
            "exec": exec_lookback_months,
            "nps": nps_max_age_months,
            "utilisation": utilisation_months,
        },
    )
    last = period == np.repeat(n_rows, n_rows)
    out = {
        "account_id": spans.index.to_numpy()[acc],
        "month": _month_first_day(month).astype("datetime64[D]").astype("datetime64[ns]"),
        "period": period.astype(np.int64),
        "churned": (last & (event[acc] == 1)).astype(np.int64),
    }
    return pd.DataFrame(out | state)


def build_churn_covariates(
    contracts: pd.DataFrame,
    *,
    surveys: pd.DataFrame | None = None,
    activities: pd.DataFrame | None = None,
    usage: pd.DataFrame | None = None,
    as_of: dt.date | str | pd.Timestamp,
    observation_start: dt.date | str | pd.Timestamp | None = None,
    account_start: pd.Series | None = None,
    exec_lookback_months: int = EXEC_LOOKBACK_MONTHS,
    nps_max_age_months: int = NPS_MAX_AGE_MONTHS,
    utilisation_months: int = UTILISATION_MONTHS,
    min_term_months: int = MIN_TERM_MONTHS,
    contract_term_months: int = CONTRACT_TERM_MONTHS,
) -> pd.DataFrame:
    """One row per contractual account: time at risk, churn event and its state at ``as_of``.

    The covariates are those of the month after ``as_of`` (the next month at
    risk), measured exactly as in :func:`build_person_months` from rows dated
    on or before ``as_of``, so that
    :meth:`ChurnHazardModel.predict_monthly_hazard` gives each account's
    next-month hazard and :meth:`ChurnHazardModel.hazard_path` its path.

    Parameters
    ----------
    contracts, surveys, activities, usage, as_of, observation_start, account_start
        As for :func:`build_person_months`.
    exec_lookback_months, nps_max_age_months, utilisation_months, min_term_months, contract_term_months : int
        As for :func:`build_person_months`.

    Returns
    -------
    DataFrame
        Sorted by ``account_id``:

        ======================== =================================================
        account_id               account key
        entry                    max(first contract start, observation_start)
        exit                     churn date (event) or the censoring date:
                                 min(as_of, last contract end)
        event                    1 if a contract has status ``churned`` with its
                                 churn date (else end date) on or before as_of
        months_at_risk           calendar months after the entry month up to the
                                 exit month; the as-of month counts as its elapsed
                                 fraction when censored there
        n_surveys                survey responses with an NPS up to as_of
        nps_mean                 mean NPS of those responses (descriptive)
        nps_per_point, no_executive_contact, utilisation, utilisation_per_10pp,
        tenure_months, renewal_month
                                 state for the month after as_of (see
                                 :func:`build_person_months`)
        months_to_renewal        months from as_of to the next renewal month
                                 (1 = next month; NaN without a contract running
                                 past as_of)
        term_months              the account's contract term in months
        ======================== =================================================

    Raises
    ------
    HazardInputError
        Missing columns, an unparsable date, no contracts up to ``as_of``.
    """
    day, con, spans, obs_month, meas, keys, term = _prepare(
        contracts,
        surveys,
        activities,
        usage,
        as_of,
        observation_start,
        account_start,
        min_term_months,
        contract_term_months,
    )
    n = len(spans)
    acc = np.arange(n)
    next_month = np.full(n, day.year * 12 + day.month, dtype=np.int64)
    state = _state_at(
        meas,
        acc,
        next_month,
        spans["start_month"].to_numpy(),
        obs_month,
        keys,
        {
            "exec": exec_lookback_months,
            "nps": nps_max_age_months,
            "utilisation": utilisation_months,
        },
    )
    # next renewal month at or after next_month (sorted keys: the first one of the account)
    pos = np.searchsorted(keys, acc.astype(np.int64) * _KEY + next_month)
    posc = np.minimum(pos, max(keys.size - 1, 0))
    found = (pos < keys.size) & (keys[posc] // _KEY == acc) if keys.size else np.zeros(n, bool)
    to_renewal = np.where(found, (keys[posc] % _KEY) - next_month + 1.0, np.nan)
    out = spans[["entry", "exit", "event", "months_at_risk"]].copy()
    n_surveys = pd.Series(0, index=out.index, dtype="int64")
    nps_mean = pd.Series(np.nan, index=out.index)
    if surveys is not None:
        sv = surveys[(pd.to_datetime(surveys[Surveys.date]) <= day) & surveys[Surveys.nps].notna()]
        g = sv.groupby(sv[Surveys.account_id].astype(str))[Surveys.nps]
        n_surveys = g.size().reindex(out.index, fill_value=0).astype("int64")
        nps_mean = g.mean().astype(float).reindex(out.index)
    out["n_surveys"] = n_surveys
    out["nps_mean"] = nps_mean
    for k, v in state.items():
        out[k] = v
    out["months_to_renewal"] = to_renewal
    out["term_months"] = term.to_numpy()
    out.index.name = "account_id"
    return out.reset_index()


def person_period_table(
    covariates: pd.DataFrame, *, covariate_names: Sequence[str] = COVARIATES
) -> pd.DataFrame:
    """Expand account rows with constant covariates into one row per account-month at risk.

    Parameters
    ----------
    covariates : DataFrame
        ``account_id``, ``event``, ``months_at_risk`` and the covariate columns
        (constant traits; for time-varying covariates use
        :func:`build_person_months`).
    covariate_names : sequence of str
        Covariate columns copied to every month.

    Returns
    -------
    DataFrame
        ``account_id``, ``month`` (1 = first month at risk), ``churned``
        (1 in the account's churn month, else 0) and the covariates. A
        final partial month of a censored account is dropped (it is not a
        complete trial).
    """
    _require(covariates, "covariates", ["account_id", "event", "months_at_risk", *covariate_names])
    event = covariates["event"].to_numpy(dtype=np.int64)
    months = covariates["months_at_risk"].to_numpy(dtype=float)
    n_rows = np.where(event == 1, np.ceil(months), np.floor(months)).astype(np.int64)
    n_rows = np.maximum(n_rows, 0)
    idx = np.repeat(np.arange(len(covariates)), n_rows)
    starts = np.cumsum(n_rows) - n_rows
    month = np.arange(idx.size) - np.repeat(starts, n_rows) + 1
    last = month == np.repeat(n_rows, n_rows)
    out = {
        "account_id": covariates["account_id"].to_numpy()[idx],
        "month": month.astype(np.int64),
        "churned": (last & (event[idx] == 1)).astype(np.int64),
    }
    for c in covariate_names:
        out[c] = covariates[c].to_numpy(dtype=float)[idx]
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- design


def _tenure_dummies(tenure: np.ndarray) -> dict[str, np.ndarray]:
    lows = (0, *TENURE_BANDS[:-1])
    return {
        name: ((tenure >= lo) & (tenure < hi)).astype(float)
        for name, lo, hi in zip(BASELINE_TERMS[:-1], lows, TENURE_BANDS, strict=True)
    }


def hazard_design(
    frame: pd.DataFrame, covariates: Sequence[str] = COVARIATES, *, baseline: bool = True
) -> pd.DataFrame:
    """Every candidate term of the model for the rows of ``frame`` (the one missing-value rule).

    A missing covariate is set to 0 (its reference) and its indicator
    (:data:`MISSING_INDICATORS`, else ``<covariate>_missing``) is 1.

    Parameters
    ----------
    frame : DataFrame
        The covariate columns; with ``baseline``, ``tenure_months`` and
        ``renewal_month`` as well.
    covariates : sequence of str
    baseline : bool
        Add the tenure-band and renewal-month terms (:data:`BASELINE_TERMS`).

    Returns
    -------
    DataFrame
        Float columns: the covariates, their indicators, the baseline terms.

    Raises
    ------
    HazardInputError
        A column is missing.

    Notes
    -----
    A missing ``tenure_months`` value (an account without a contract started
    by the as-of date) counts as tenure 0, a missing ``renewal_month`` as 0;
    without these columns (a covariate profile) the baseline is the reference
    (tenure 36+ months, not a renewal month).
    """
    _require(frame, "covariates", list(covariates))
    out: dict[str, np.ndarray] = {}
    for c in covariates:
        x = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
        miss = np.isnan(x)
        out[c] = np.where(miss, 0.0, x)
        out[MISSING_INDICATORS.get(c, f"{c}_missing")] = miss.astype(float)
    if baseline:
        if "tenure_months" in frame.columns:
            tenure = pd.to_numeric(frame["tenure_months"], errors="coerce").to_numpy(dtype=float)
            tenure = np.where(np.isnan(tenure), 0.0, tenure)  # unknown account: a new one
        else:  # a profile without tenure: the reference band
            tenure = np.full(len(frame), float(TENURE_BANDS[-1]))
        out |= _tenure_dummies(tenure)
        renewal = frame["renewal_month"] if "renewal_month" in frame.columns else 0.0
        out["renewal_month"] = (
            pd.to_numeric(pd.Series(renewal, index=frame.index), errors="coerce")
            .fillna(0)
            .to_numpy(dtype=float)
        )
    return pd.DataFrame(out, index=frame.index)


def _aggregate(design: pd.DataFrame, churned: np.ndarray, exposure: np.ndarray) -> pd.DataFrame:
    """Sum events and exposure over identical design rows (the GLM likelihoods are unchanged)."""
    d = design.copy()
    d["_events"] = churned.astype(float)
    d["_exposure"] = exposure.astype(float)
    d["_trials"] = 1.0
    return d.groupby(list(design.columns), sort=False, as_index=False)[
        ["_events", "_exposure", "_trials"]
    ].sum()


# --------------------------------------------------------------------------- model


def _separated(indicator: np.ndarray, events: np.ndarray) -> bool:
    """Whether a 0/1 term's flagged rows hold no event or only events (no finite HR)."""
    x = np.asarray(indicator, dtype=float)
    if not np.isin(x, (0.0, 1.0)).all():
        return False
    flagged = x == 1.0
    n_events = float(np.asarray(events, dtype=float)[flagged].sum())
    return n_events == 0.0 or n_events == float(flagged.sum())


def churn_period_shock(month: Any, observed: Any, expected: Any) -> dict[str, Any]:
    """Churn shared by all accounts in a quarter, beyond what the hazard model explains.

    With a gamma frailty ``Z_q`` (mean 1, variance ``theta``) multiplying
    every account's hazard in calendar quarter ``q``, the quarter's churn
    count ``O_q`` has ``E[O_q] = E_q`` (the model's expected count) and
    ``Var(O_q) = E_q + theta E_q^2``. The moment estimator is

    ``theta = max(0, sum_q ((O_q - E_q)^2 - E_q) / sum_q E_q^2)``.

    Parameters
    ----------
    month : array-like of datetime
        Calendar month of each person-month.
    observed, expected : array-like
        Churn (0/1) and the fitted hazard x exposure of each person-month.

    Returns
    -------
    dict
        ``variance`` (``theta``; NaN with fewer than 4 quarters),
        ``quarters``, ``events``, ``dispersion`` (Pearson ``X^2 / (Q - 1)``)
        and ``p_value`` (of ``X^2`` against chi-square with ``Q - 1``
        degrees of freedom: no shared shock).
    """
    months = pd.to_datetime(pd.Series(month)).reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "q": months.dt.to_period("Q"),
            "o": np.asarray(observed, dtype=float),
            "e": np.asarray(expected, dtype=float),
        }
    )
    by = frame.groupby("q")[["o", "e"]].sum()
    by = by[by["e"] > 0]
    n_q = len(by)
    out: dict[str, Any] = {"quarters": int(n_q), "events": int(by["o"].sum())}
    if n_q < 4:
        return {
            **out,
            "variance": float("nan"),
            "dispersion": float("nan"),
            "p_value": float("nan"),
        }
    o, e = by["o"].to_numpy(), by["e"].to_numpy()
    theta = max(0.0, float(((o - e) ** 2 - e).sum() / (e**2).sum()))
    x2 = float(((o - e) ** 2 / e).sum())
    return {
        **out,
        "variance": theta,
        "dispersion": x2 / (n_q - 1),
        "p_value": float(stats.chi2.sf(x2, n_q - 1)),
    }


class ChurnHazardModel:
    """Discrete-time (monthly) churn hazard with lagged time-varying covariates (statsmodels GLM).

    Parameters
    ----------
    covariates : sequence of str
        Measured covariate columns (default :data:`COVARIATES`).
    link : {"poisson", "cloglog", "logit"}
        Estimator (see the module docstring).
    confidence_level : float
        Coverage of the Wald intervals of the HRs.
    missing : {"indicator", "drop", "raise"}
        Missing covariates: set to the reference with an indicator term
        (default; prediction applies the same rule), dropped person-months
        (complete-case analysis, counted in ``n_dropped_``; biased when
        missingness is related to churn), or an error.
    baseline : {"piecewise", "constant"}
        Piecewise: hazard ratios per tenure band and for the renewal month
        (needs ``tenure_months`` and ``renewal_month``); constant: one baseline.
    rounding : float
        Continuous covariates are rounded to this step before aggregating
        identical person-months (0.01 on the per-10-pp scale is 0.1 pp of
        utilisation); 0 disables rounding.

    Attributes
    ----------
    terms_ : list of str
        Terms in the fitted design (covariates, the indicators of covariates
        with missing values, baseline terms that vary).
    separated_terms_ : list of str
        Indicator terms left out because their flagged months hold no churn
        (or only churn): no finite HR (e.g. the few months without usage data
        on a small book). Those months leave the fit with the term (the limit
        of the likelihood, so the other estimates are unchanged by it), and
        predictions use the reference level for them.
    params_ : dict
        ``{"const": log baseline monthly hazard, term: log HR, ...}``.
    hazard_ratios_ : DataFrame
        Index ``covariate`` (one row per term); ``hr``, ``lower``, ``upper``,
        ``coef``, ``se``, ``p_value``.
    baseline_hazard_ : float
        Monthly churn probability at every term 0: NPS 7, an executive
        contact in the look-back, 70 % utilisation, measured; tenure 36+
        months; outside a renewal month.
    missingness_ : DataFrame
        Per covariate: ``person_months`` and ``share_person_months`` missing,
        ``accounts`` missing it in at least one month and
        ``accounts_never_measured``.
    covariance_ : DataFrame
    covariate_means_ : dict
        Mean of each covariate where measured (descriptive).
    log_likelihood_ : float
    n_accounts_, n_events_, n_person_months_, n_dropped_ : int
    exposure_months_ : float
    period_shock_ : dict
        Churn shared across accounts beyond the model (:func:`churn_period_shock`):
        the variance of a quarterly gamma frailty, from observed against
        expected churn per calendar quarter.
    time_unit : str
        Always ``"month"``.

    References
    ----------
    Allison, P. D. (1982). Discrete-time methods for the analysis of event
    histories. *Sociological Methodology* 13, 61-98.

    Singer, J. D. & Willett, J. B. (2003). *Applied Longitudinal Data
    Analysis*, ch. 11. Oxford University Press.
    """

    time_unit = "month"

    def __init__(
        self,
        *,
        covariates: Sequence[str] = COVARIATES,
        link: Link = "poisson",
        confidence_level: float = 0.95,
        missing: Literal["indicator", "drop", "raise"] = "indicator",
        baseline: Literal["piecewise", "constant"] = "piecewise",
        rounding: float = 0.01,
    ) -> None:
        if link not in LINKS:
            raise ValueError(f"link must be one of {list(LINKS)}, got {link!r}")
        if not 0 < confidence_level < 1:
            raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level!r}")
        if missing not in ("indicator", "drop", "raise"):
            raise ValueError(f"missing must be 'indicator', 'drop' or 'raise', got {missing!r}")
        if baseline not in ("piecewise", "constant"):
            raise ValueError(f"baseline must be 'piecewise' or 'constant', got {baseline!r}")
        if not rounding >= 0:
            raise ValueError(f"rounding must be >= 0, got {rounding!r}")
        names = list(covariates)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"covariates must be distinct column names, got {names!r}")
        self.covariates = tuple(names)
        self.link = link
        self.confidence_level = float(confidence_level)
        self.missing = missing
        self.baseline = baseline
        self.rounding = float(rounding)

    @property
    def input_columns(self) -> tuple[str, ...]:
        """Columns a covariate frame needs for prediction."""
        extra = ("tenure_months", "renewal_month") if self.baseline == "piecewise" else ()
        return (*self.covariates, *extra)

    # ------------------------------------------------------------------ fitting
    def _person_months(self, data: pd.DataFrame) -> pd.DataFrame:
        if "churned" in data.columns:
            _require(data, "data", ["churned", *self.input_columns])
            return data
        # an account table with constant covariates (build_churn_covariates-like)
        _require(data, "data", ["event", "months_at_risk", *self.covariates])
        if self.baseline == "piecewise":
            raise HazardInputError(
                "data is an account table without tenure_months / renewal_month per month: "
                "fit on build_person_months(...) or use baseline='constant'"
            )
        bad = ~data["event"].isin([0, 1])
        if bad.any():
            raise HazardInputError(
                f"event must be 0 or 1; found {data.loc[bad, 'event'].unique()[:3].tolist()}"
            )
        acc = data if "account_id" in data.columns else data.assign(account_id=data.index)
        return person_period_table(acc[acc["months_at_risk"] > 0], covariate_names=self.covariates)

    def _missingness(self, pm: pd.DataFrame) -> pd.DataFrame:
        ids = (
            pm["account_id"] if "account_id" in pm.columns else pd.Series(pm.index, index=pm.index)
        )
        rows = []
        for c in self.covariates:
            miss = pm[c].isna()
            per_acc = miss.groupby(ids.to_numpy()).agg(["any", "all"])
            rows.append(
                {
                    "covariate": c,
                    "person_months": int(miss.sum()),
                    "share_person_months": float(miss.mean()) if len(miss) else float("nan"),
                    "accounts": int(per_acc["any"].sum()),
                    "accounts_never_measured": int(per_acc["all"].sum()),
                }
            )
        return pd.DataFrame(rows).set_index("covariate")

    def fit(self, data: pd.DataFrame) -> ChurnHazardModel:
        """Fit on the person-month table of :func:`build_person_months`.

        Parameters
        ----------
        data : DataFrame
            ``churned`` (0/1), the covariates, ``tenure_months`` and
            ``renewal_month`` (piecewise baseline); optional ``account_id``
            and ``exposure`` (months, default 1). An account table
            (``event``, ``months_at_risk``, constant covariates) is expanded
            with :func:`person_period_table` (constant baseline only).

        Returns
        -------
        ChurnHazardModel
            ``self``, fitted.

        Raises
        ------
        HazardInputError
            Missing columns, non-0/1 events, missing covariates with
            ``missing="raise"``, no events, or a covariate without variation.
        ConvergenceError
            The GLM did not converge or a coefficient is not finite.
        """
        pm = self._person_months(data)
        churned = pd.to_numeric(pm["churned"], errors="coerce")
        if not churned.isin([0, 1]).all():
            raise HazardInputError(
                f"churned must be 0 or 1; found {churned[~churned.isin([0, 1])].unique()[:3]}"
            )
        self.missingness_ = self._missingness(pm)
        na = pm[list(self.covariates)].isna().any(axis=1)
        if na.any() and self.missing == "raise":
            cols = [c for c in self.covariates if pm[c].isna().any()]
            raise HazardInputError(
                f"{int(na.sum())} person-month(s) have missing covariates ({cols})"
            )
        self.n_dropped_ = int(na.sum()) if self.missing == "drop" else 0
        if self.missing == "drop":
            pm = pm[~na]
        if pm.empty or int(pm["churned"].sum()) == 0:
            raise HazardInputError(
                "no churn event among the months at risk: the hazard is not identified"
            )
        full = hazard_design(pm, self.covariates, baseline=self.baseline == "piecewise")
        flat = [c for c in self.covariates if full[c].nunique() < 2]
        if flat:
            raise HazardInputError(f"covariate(s) {flat} do not vary: their HR is not identified")
        extra = [t for t in full.columns if t not in self.covariates and full[t].nunique() > 1]
        events = pm["churned"].to_numpy()
        # an indicator whose flagged months hold no event (or only events) has no finite
        # HR (separation). Its months carry no information on the other coefficients
        # (the limit of the likelihood as its coefficient diverges), so they leave the
        # fit with the term; predictions for such months use the reference level.
        self.separated_terms_ = [t for t in extra if _separated(full[t].to_numpy(), events)]
        if self.separated_terms_:
            keep = ~(full[self.separated_terms_].to_numpy() == 1).any(axis=1)
            pm, full = pm[keep], full[keep]
        terms = list(self.covariates) + [t for t in extra if t not in self.separated_terms_]
        design = full[terms]
        if self.rounding > 0:
            design = design.round(int(round(-np.log10(self.rounding))))
        exposure = (
            pm["exposure"].to_numpy(dtype=float) if "exposure" in pm.columns else np.ones(len(pm))
        )
        agg = _aggregate(design, pm["churned"].to_numpy(), exposure)
        res = self._glm(agg, terms)
        self._store(res, terms, pm, full)
        return self

    def _glm(self, agg: pd.DataFrame, terms: list[str]) -> Any:
        import statsmodels.api as sm

        X = sm.add_constant(agg[terms].astype(float), has_constant="add")
        if self.link == "poisson":
            model = sm.GLM(
                agg["_events"],
                X,
                family=sm.families.Poisson(),
                offset=np.log(agg["_exposure"].to_numpy()),
            )
        else:
            link = (
                sm.families.links.CLogLog() if self.link == "cloglog" else sm.families.links.Logit()
            )
            endog = np.column_stack([agg["_events"], agg["_trials"] - agg["_events"]])
            model = sm.GLM(endog, X, family=sm.families.Binomial(link=link))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = model.fit()
        params = np.asarray(res.params, dtype=float)
        if not res.converged or not np.all(np.isfinite(params)) or not np.all(np.isfinite(res.bse)):
            raise ConvergenceError(
                f"churn hazard ({self.link}): the GLM did not converge "
                f"(coefficients {dict(zip(X.columns, np.round(params, 4), strict=True))})"
            )
        return res

    def _store(self, res: Any, terms: list[str], pm: pd.DataFrame, full: pd.DataFrame) -> None:
        params = np.asarray(res.params, dtype=float)
        names = ["const", *terms]
        self.terms_ = list(terms)
        self.params_ = dict(zip(names, params.tolist(), strict=True))
        cov = np.asarray(res.cov_params(), dtype=float)
        self.covariance_ = pd.DataFrame(cov, index=names, columns=names)
        se = np.sqrt(np.diag(cov))
        z = stats.norm.ppf(0.5 + self.confidence_level / 2)
        coef = params[1:]
        self.hazard_ratios_ = pd.DataFrame(
            {
                "hr": np.exp(coef),
                "lower": np.exp(coef - z * se[1:]),
                "upper": np.exp(coef + z * se[1:]),
                "coef": coef,
                "se": se[1:],
                "p_value": 2 * stats.norm.sf(np.abs(coef / se[1:])),
            },
            index=pd.Index(terms, name="covariate"),
        )
        self.baseline_hazard_ = float(self._inverse_link(np.array([params[0]]))[0])
        self.covariate_means_ = {c: float(pm[c].mean()) for c in self.covariates}
        self.log_likelihood_ = float(res.llf)
        self.n_accounts_ = int(pm["account_id"].nunique()) if "account_id" in pm else len(pm)
        self.n_events_ = int(pm["churned"].sum())
        self.n_person_months_ = len(pm)
        self.exposure_months_ = (
            float(pm["exposure"].sum()) if "exposure" in pm.columns else float(len(pm))
        )
        self.result_ = res
        if "month" in pm.columns:
            X = np.column_stack([np.ones(len(full)), full[terms].to_numpy(dtype=float)])
            exposure = pm["exposure"].to_numpy(dtype=float) if "exposure" in pm.columns else 1.0
            expected = self._inverse_link(X @ params) * exposure
            self.period_shock_ = churn_period_shock(
                pm["month"], pm["churned"].to_numpy(dtype=float), expected
            )
        else:  # an account table: no calendar months
            self.period_shock_ = churn_period_shock(pd.Series([], dtype="datetime64[ns]"), [], [])

    # ------------------------------------------------------------------ predictions
    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError("ChurnHazardModel is not fitted: call .fit(...) first")

    def _inverse_link(self, eta: np.ndarray) -> np.ndarray:
        if self.link == "poisson":
            return np.minimum(np.exp(eta), 1.0)
        if self.link == "cloglog":
            return -np.expm1(-np.exp(eta))
        return 1.0 / (1.0 + np.exp(-eta))

    def _terms(self) -> list[str]:
        return [k for k in self.params_ if k != "const"]

    def _design(self, covariates: pd.DataFrame) -> np.ndarray:
        self._check_fitted()
        if not isinstance(covariates, pd.DataFrame):
            raise HazardInputError(
                f"covariates must be a DataFrame, got {type(covariates).__name__}"
            )
        terms = self._terms()
        needs_baseline = any(t in BASELINE_TERMS for t in terms)
        full = hazard_design(covariates, self.covariates, baseline=needs_baseline)
        return full.reindex(columns=terms).to_numpy(dtype=float)

    def _eta(self, X: np.ndarray, params: np.ndarray | None) -> np.ndarray:
        if params is None:
            beta = np.array([self.params_[n] for n in ["const", *self._terms()]])
            return beta[0] + X @ beta[1:]
        params = np.atleast_2d(np.asarray(params, dtype=float))
        return params[:, :1] + params[:, 1:] @ X.T

    def linear_predictor(
        self, covariates: pd.DataFrame, params: np.ndarray | None = None
    ) -> np.ndarray:
        """``const + X b`` per row; ``params`` may be a (draws, k+1) matrix of coefficients.

        Returns shape ``(n,)`` for the fitted parameters, ``(draws, n)`` for a
        matrix. Missing covariates follow the fitting rule (reference value and
        indicator; see :func:`hazard_design`).
        """
        return self._eta(self._design(covariates), params)

    def predict_monthly_hazard(self, covariates: pd.DataFrame) -> pd.Series:
        """Next-month churn probability per row of ``covariates``.

        Parameters
        ----------
        covariates : DataFrame
            Each account's state at the as-of date
            (:func:`build_churn_covariates`): the covariate columns and, for a
            piecewise baseline, ``tenure_months`` and ``renewal_month`` of the
            next month. Missing covariates get the reference value and their
            indicator's HR, as in the fit.

        Returns
        -------
        Series
            Named ``monthly_hazard``, aligned with ``covariates``; in [0, 1].
        """
        h = self._inverse_link(self.linear_predictor(covariates))
        return pd.Series(h, index=covariates.index, name="monthly_hazard")

    def _path_frames(self, covariates: pd.DataFrame, horizon: int) -> np.ndarray:
        """Design ``(horizon, n, k)``: month k has tenure + k - 1 and recurring renewals."""
        if int(horizon) < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon!r}")
        terms = self._terms()
        if not any(t in BASELINE_TERMS for t in terms):
            X = self._design(covariates)
            return np.broadcast_to(X, (int(horizon), *X.shape))
        n = len(covariates)
        tenure0 = (
            covariates["tenure_months"].to_numpy(dtype=float)
            if "tenure_months" in covariates.columns
            else np.full(n, float(TENURE_BANDS[-1]))
        )
        if "months_to_renewal" in covariates.columns:
            first = covariates["months_to_renewal"].to_numpy(dtype=float)
        elif "renewal_month" in covariates.columns:  # only the next month's flag: annual from it
            first = np.where(covariates["renewal_month"].to_numpy(dtype=float) > 0, 1.0, np.nan)
        else:
            first = np.full(n, np.nan)
        term = (
            covariates["term_months"].to_numpy(dtype=float)
            if "term_months" in covariates.columns
            else np.full(len(covariates), float(CONTRACT_TERM_MONTHS))
        )
        term = np.where(np.isfinite(term) & (term >= 1), term, CONTRACT_TERM_MONTHS)
        out = []
        for k in range(1, int(horizon) + 1):  # a loop over months, vectorised over accounts
            since = k - first
            renew = np.isfinite(first) & (since >= 0) & (np.mod(since, term) == 0)
            frame = covariates.assign(
                tenure_months=tenure0 + k - 1, renewal_month=renew.astype(float)
            )
            out.append(self._design(frame))
        return np.stack(out)

    def hazard_path(self, covariates: pd.DataFrame, horizon: int) -> pd.DataFrame:
        """Monthly churn probability in each of the next ``horizon`` months, per account.

        The lagged covariates stay at their as-of values; the tenure band
        advances one month a month; renewal months recur every
        ``term_months`` from ``months_to_renewal`` (columns of
        :func:`build_churn_covariates`; without them, annually from the
        next month when ``renewal_month`` is 1).

        Parameters
        ----------
        covariates : DataFrame
            One row per account, as for :meth:`predict_monthly_hazard`.
        horizon : int
            Months ahead (column ``k`` = the k-th month after as_of).

        Returns
        -------
        DataFrame
            Rows aligned with ``covariates``, columns ``1..horizon``; column 1
            equals :meth:`predict_monthly_hazard`.
        """
        X = self._path_frames(covariates, horizon)
        h = self._inverse_link(self._eta(X.reshape(-1, X.shape[-1]), None)).reshape(X.shape[:2])
        return pd.DataFrame(h.T, index=covariates.index, columns=np.arange(1, int(horizon) + 1))

    def hazard_path_draws(
        self,
        covariates: pd.DataFrame,
        horizon: int,
        draws: int,
        seed: int | np.random.Generator = 0,
    ) -> np.ndarray:
        """:meth:`hazard_path` under parameter draws, shape ``(draws, n, horizon)``."""
        X = self._path_frames(covariates, horizon)
        H, n, k = X.shape
        eta = self._eta(X.reshape(-1, k), self.sample_params(draws, seed))
        return np.transpose(self._inverse_link(eta).reshape(-1, H, n), (0, 2, 1))

    def survival_function(
        self, covariates: pd.DataFrame, months: int | Sequence[int]
    ) -> pd.DataFrame:
        """Probability of not having churned after each number of months (along the hazard path).

        Parameters
        ----------
        covariates : DataFrame
            One row per account (as for :meth:`hazard_path`).
        months : int or sequence of int
            Horizon ``H`` (gives months ``0..H``) or explicit month counts.

        Returns
        -------
        DataFrame
            Rows aligned with ``covariates``, one column per month count,
            ``S(m) = prod_{k <= m} (1 - h_k)``.
        """
        grid = np.arange(int(months) + 1) if np.ndim(months) == 0 else np.asarray(months)
        if np.any(grid < 0):
            raise ValueError(f"months must be >= 0, got {months!r}")
        top = int(grid.max()) if grid.size else 0
        cum = np.zeros((len(covariates), top + 1))
        if top > 0:
            h = self.hazard_path(covariates, top).to_numpy()
            cum[:, 1:] = np.cumsum(np.log1p(-np.minimum(h, 1 - 1e-12)), axis=1)
        return pd.DataFrame(np.exp(cum[:, grid]), index=covariates.index, columns=grid)

    def sample_params(self, draws: int, seed: int | np.random.Generator = 0) -> np.ndarray:
        """Draws of the coefficient vector from its asymptotic normal distribution.

        Returns
        -------
        numpy.ndarray
            Shape ``(draws, 1 + n_terms)``, columns ``const`` then the terms.
        """
        self._check_fitted()
        rng = np.random.default_rng(seed)
        names = ["const", *self._terms()]
        mean = np.array([self.params_[n] for n in names])
        cov = self.covariance_.loc[names, names].to_numpy()
        return rng.multivariate_normal(mean, cov, size=int(draws))

    def monthly_hazard_draws(
        self,
        covariates: pd.DataFrame,
        draws: int,
        seed: int | np.random.Generator = 0,
        *,
        params: np.ndarray | None = None,
    ) -> np.ndarray:
        """Next-month hazards under parameter draws, shape ``(draws, n)``.

        ``params`` (a :meth:`sample_params` matrix) gives the draws instead of
        drawing new ones, to share them between calls for parts of a book.
        """
        if params is None:
            params = self.sample_params(draws, seed)
        return self._inverse_link(self.linear_predictor(covariates, params))

    def summary(self) -> pd.DataFrame:
        """HR table plus the baseline: one row per term, with the missing measurements.

        Returns
        -------
        DataFrame
            Columns ``term``, ``hr`` (for the first row, ``baseline_monthly_hazard``:
            the baseline monthly hazard), ``lower``, ``upper``, ``coef``, ``se``,
            ``p_value``, and for the covariates ``missing_person_months`` and
            ``missing_accounts`` (accounts lacking the measurement in at
            least one month).
        """
        self._check_fitted()
        z = stats.norm.ppf(0.5 + self.confidence_level / 2)
        c0 = self.params_["const"]
        s0 = float(np.sqrt(self.covariance_.loc["const", "const"]))
        base = pd.DataFrame(
            {
                "term": ["baseline_monthly_hazard"],
                "hr": [self.baseline_hazard_],
                "lower": self._inverse_link(np.array([c0 - z * s0])),
                "upper": self._inverse_link(np.array([c0 + z * s0])),
                "coef": [c0],
                "se": [s0],
                "p_value": [np.nan],
            }
        )
        hr = self.hazard_ratios_.reset_index().rename(columns={"covariate": "term"})
        out = pd.concat([base, hr], ignore_index=True)
        miss = getattr(self, "missingness_", None)
        if miss is not None:
            out["missing_person_months"] = out["term"].map(miss["person_months"])
            out["missing_accounts"] = out["term"].map(miss["accounts"])
        return out

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return f"<ChurnHazardModel({self.link}): not fitted>"
        hrs = ", ".join(f"{k}={v:.3g}" for k, v in self.hazard_ratios_["hr"].items())
        return (
            f"<ChurnHazardModel({self.link}): HR {hrs}; baseline {self.baseline_hazard_:.4f}/month;"
            f" {self.n_events_} events in {self.n_accounts_} accounts>"
        )

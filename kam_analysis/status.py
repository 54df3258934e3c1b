"""Account status at the as-of date: active, lapsed or churned.

A lost customer looks like a growth candidate to the tier rule: its share
of wallet is near 0 and its whole wallet is headroom. Segmentation
(:func:`kam_analysis.segmentation.assign_tiers`) therefore asks first
whether an account is still a customer, with the one status computed here:

``active``
    Bought in the last ``lapse_months`` months, or has a contract running at
    the as-of date, or never bought (an account with nothing to lapse from,
    e.g. a prospect in the accounts file).
``lapsed``
    Bought before, but not in the last ``lapse_months`` calendar months (the
    window ``(as_of - lapse_months, as_of]`` of
    :mod:`kam_analysis.data.features`), and no contract running at the
    as-of date.
``churned``
    The contracts table says the customer left on or before the as-of date
    (:func:`contract_churn`). Churned wins over lapsed.

Without a contracts table an account is active or lapsed only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kam_analysis.core.errors import InputError

STATUSES: tuple[str, ...] = ("active", "lapsed", "churned")
"""Account statuses, live first."""

LOST_STATUSES: tuple[str, ...] = ("lapsed", "churned")
"""Statuses of accounts that are no longer customers (never key or growth)."""


class StatusInputError(InputError, ValueError):
    """A table or setting cannot be used to compute account status."""


def _require(df: pd.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    if not isinstance(df, pd.DataFrame):
        raise StatusInputError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise StatusInputError(
            f"{name} is missing required column(s) {missing}; it has {list(df.columns)}"
        )


def _dates(df: pd.DataFrame, col: str) -> pd.Series:
    """A date column as day timestamps (NaT where missing or absent)."""
    if col not in df.columns:
        return pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
    return pd.to_datetime(df[col]).dt.normalize()


def _as_of_day(as_of) -> pd.Timestamp:
    day = pd.Timestamp(as_of)
    if pd.isna(day):
        raise StatusInputError(f"as_of must be a date, got {as_of!r}")
    return day.normalize()


def lapse_cutoff(as_of, lapse_months: int = 12) -> pd.Timestamp:
    """The last day of purchase that counts as lapsed: ``as_of - lapse_months`` months.

    A purchase on this day lies just outside the trailing window
    ``(as_of - lapse_months, as_of]``; a purchase one day later is inside.

    Parameters
    ----------
    as_of : date-like
    lapse_months : int, default 12
        Calendar months (``pandas.DateOffset``; 29 February falls back to 28).

    Returns
    -------
    pandas.Timestamp

    Raises
    ------
    StatusInputError
        ``lapse_months < 1``.
    """
    if int(lapse_months) < 1:
        raise StatusInputError(f"lapse_months must be >= 1, got {lapse_months}")
    return _as_of_day(as_of) - pd.DateOffset(months=int(lapse_months))


def contract_churn(contracts: pd.DataFrame, *, as_of) -> pd.DataFrame:
    """Per account: whether the contracts say it left by the as-of date, and when.

    Contracts starting after ``as_of`` are ignored. A contract says the
    customer left when it has a ``churn_date`` on or before ``as_of``, or
    status ``churned`` with no ``churn_date`` and an ``end_date`` on or
    before ``as_of`` (or none): the status is a snapshot of the export, so
    a churn dated after ``as_of`` has not happened yet at ``as_of``. An
    account has churned when one of its contracts says so, no contract is
    running at ``as_of`` (started, not ended before ``as_of``, not churned)
    and none started after its last churn (the customer did not come back).

    Parameters
    ----------
    contracts : pandas.DataFrame
        ``account_id``, ``status``; used when present ``start_date``,
        ``end_date``, ``churn_date``.
    as_of : date-like

    Returns
    -------
    pandas.DataFrame
        One row per account of ``contracts``: ``account_id`` (str),
        ``churned`` (bool), ``churn_date`` (the last churn on or before
        ``as_of``; NaT when not churned or undated), ``running_contract``
        (bool).

    Raises
    ------
    StatusInputError
        Missing ``account_id`` or ``status``.
    """
    _require(contracts, "contracts", ("account_id", "status"))
    day = _as_of_day(as_of)
    c = contracts.assign(account_id=contracts["account_id"].astype(str))
    start = _dates(c, "start_date")
    keep = start.isna() | (start <= day)
    c, start = c[keep], start[keep]
    if c.empty:  # no contract started yet: nobody churned, nothing running
        return pd.DataFrame(
            {
                "account_id": pd.Series([], dtype=str),
                "churned": pd.Series([], dtype=bool),
                "churn_date": pd.Series([], dtype="datetime64[ns]"),
                "running_contract": pd.Series([], dtype=bool),
            }
        )
    end, churn = _dates(c, "end_date"), _dates(c, "churn_date")
    is_churn_status = c["status"].astype(str) == "churned"
    left = churn.where(churn.notna(), end.where(is_churn_status))
    churn_row = (churn.notna() & (churn <= day)) | (
        is_churn_status & churn.isna() & (left.isna() | (left <= day))
    )
    running_row = ~churn_row & (end.isna() | (end >= day))
    acc = c["account_id"]
    last_churn = left.where(churn_row).groupby(acc).max()
    last_start = start.groupby(acc).max()
    ids = pd.Index(pd.unique(acc), name="account_id")
    any_churn = churn_row.groupby(acc).any().reindex(ids, fill_value=False)
    running = running_row.groupby(acc).any().reindex(ids, fill_value=False)
    last_churn = last_churn.reindex(ids)
    came_back = (last_start.reindex(ids) > last_churn).fillna(False).astype(bool)
    churned = any_churn & ~running & ~came_back
    return pd.DataFrame(
        {
            "account_id": ids.astype(str),
            "churned": churned.to_numpy(dtype=bool),
            "churn_date": last_churn.where(churned).to_numpy(dtype="datetime64[ns]"),
            "running_contract": running.to_numpy(dtype=bool),
        }
    )


def account_status(
    accounts: pd.DataFrame,
    *,
    as_of,
    contracts: pd.DataFrame | None = None,
    lapse_months: int = 12,
) -> pd.DataFrame:
    """Each account's status at the as-of date: ``active``, ``lapsed`` or ``churned``.

    See the module docstring for the rules; churn comes from
    :func:`contract_churn`, lapse from the last purchase day (a day with
    positive net revenue, ``last_purchase`` of
    :func:`kam_analysis.data.features.build_account_features`).

    Parameters
    ----------
    accounts : pandas.DataFrame
        One row per account: ``account_id``, ``last_purchase`` (NaT for an
        account that never bought), e.g. the account features.
    as_of : date-like
    contracts : pandas.DataFrame, optional
        The contracts table; without it no account is churned.
    lapse_months : int, default 12
        Calendar months without a purchase after which an account is lapsed.

    Returns
    -------
    pandas.DataFrame
        One row per account, in the order of ``accounts``: ``account_id``,
        ``status``, ``last_purchase`` (day), ``churn_date`` (NaT unless
        churned with a date), ``running_contract`` (bool).

    Raises
    ------
    StatusInputError
        Missing columns, repeated accounts, ``lapse_months < 1``.
    """
    _require(accounts, "accounts", ("account_id", "last_purchase"))
    ids = accounts["account_id"].astype(str)
    if ids.duplicated().any():
        raise StatusInputError(
            f"accounts.account_id must be unique; repeated: {ids[ids.duplicated()].head(3).tolist()}"
        )
    cutoff = lapse_cutoff(as_of, lapse_months)
    last = _dates(accounts, "last_purchase")
    n = len(accounts)
    churned = np.zeros(n, dtype=bool)
    churn_date = pd.Series(pd.NaT, index=accounts.index, dtype="datetime64[ns]")
    running = np.zeros(n, dtype=bool)
    if contracts is not None:
        cc = contract_churn(contracts, as_of=as_of).set_index("account_id")
        churned = cc["churned"].reindex(ids, fill_value=False).to_numpy(dtype=bool)
        churn_date = pd.Series(cc["churn_date"].reindex(ids).to_numpy(dtype="datetime64[ns]"))
        running = cc["running_contract"].reindex(ids, fill_value=False).to_numpy(dtype=bool)
    lapsed = last.notna().to_numpy() & (last <= cutoff).to_numpy() & ~running
    status = np.where(churned, "churned", np.where(lapsed, "lapsed", "active"))
    return pd.DataFrame(
        {
            "account_id": accounts["account_id"].to_numpy(),
            "status": status.astype(object),
            "last_purchase": last.to_numpy(dtype="datetime64[ns]"),
            "churn_date": churn_date.to_numpy(dtype="datetime64[ns]"),
            "running_contract": running,
        }
    )


def is_lost(status) -> np.ndarray:
    """Whether each status is lapsed or churned (missing status: not lost).

    Parameters
    ----------
    status : array-like of str

    Returns
    -------
    numpy.ndarray of bool
    """
    return pd.Series(status, dtype=object).isin(LOST_STATUSES).to_numpy()


__all__ = [
    "LOST_STATUSES",
    "STATUSES",
    "StatusInputError",
    "account_status",
    "contract_churn",
    "is_lost",
    "lapse_cutoff",
]

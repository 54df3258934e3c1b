"""Tests for kam_analysis.data.features: hand-computed values on a tiny dataset."""

from __future__ import annotations

import datetime as dt
import math

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from kam_analysis.data.features import (
    FEATURE_COLUMNS,
    FeatureInputError,
    FeatureSettings,
    account_features_expr,
    build_account_features,
    monthly_line_summary,
    monthly_revenue,
    product_line_revenue,
)

AS_OF = "2024-06-30"
# Windows for AS_OF: 12m = 2023-07-01..2024-06-30, prev = 2022-07-01..2023-06-30.
# Weeks are Monday-Sunday; weekdays noted for the dates that matter.
LINES = [
    # account, date, product_line, revenue, cost, order_id
    ("A", "2022-06-30", "PL4", 50.0, 30.0, "O1"),  # Thu, before prev window
    ("A", "2022-07-01", "PL1", 100.0, 60.0, "O2"),  # Fri, first day of prev, same week
    ("A", "2023-06-30", "PL2", 200.0, 150.0, "O3"),  # Fri, last day of prev
    ("A", "2023-07-01", "PL1", 300.0, 200.0, "O4"),  # Sat, first day of 12m, same week
    ("A", "2023-07-01", "PL3", 100.0, 50.0, "O4"),  # second line of order O4
    ("A", "2024-01-10", "PL2", 400.0, 300.0, "O5"),  # Wed
    ("A", "2024-06-30", "PL1", 50.0, 20.0, "O6"),  # Sun, the as-of day counts
    ("A", "2024-07-01", "PL5", 999.0, 1.0, "O7"),  # after as_of: ignored
    ("B", "2021-03-01", "PL2", 80.0, 40.0, "O8"),  # Mon
    ("B", "2024-03-04", "PL2", 120.0, 100.0, "O9"),  # Mon
    ("B", "2024-03-04", "PL3", 30.0, 30.0, "O9"),  # second line of O9
    ("B", "2024-03-10", "PL2", 60.0, 50.0, "O10"),  # Sun, same week as 03-04
    ("B", "2024-03-11", "PL2", 40.0, 10.0, "O11"),  # Mon, next week, same month
    ("Z", "2024-01-01", "PL1", 500.0, 100.0, "O12"),  # account not in accounts: ignored
]


def _tx_frame() -> pd.DataFrame:
    df = pd.DataFrame(
        LINES, columns=["account_id", "date", "product_line", "revenue", "cost", "order_id"]
    )
    df["date"] = pd.to_datetime(df["date"])
    return df


def _acc_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["A", "B", "C"],
            "name": ["Alpha", "Beta", "Gamma"],
            "industry": ["it", "retail", "it"],
            "region": ["east", "west", "east"],
            "since": pd.to_datetime(["2020-03-15", None, "2024-01-01"]),
            "wallet_estimate": [2000.0, np.nan, 0.0],
        }
    )


@pytest.fixture
def tx() -> ibis.Table:
    return ibis.memtable(_tx_frame())


@pytest.fixture
def acc() -> ibis.Table:
    return ibis.memtable(_acc_frame())


@pytest.fixture(scope="module")
def week() -> pd.DataFrame:
    """Weekly features of the tiny dataset, computed once for the module."""
    return build_account_features(ibis.memtable(_tx_frame()), ibis.memtable(_acc_frame()), AS_OF)


def _row(df: pd.DataFrame, account: str) -> dict:
    return df.set_index("account_id").loc[account].to_dict()


def _assert_row(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected), set(actual) ^ set(expected)
    for col, exp in expected.items():
        got = actual[col]
        if exp is None or (isinstance(exp, float) and math.isnan(exp)):
            assert pd.isna(got), (col, got)
        elif isinstance(exp, pd.Timestamp):
            assert got == exp, (col, got, exp)
        else:
            assert got == pytest.approx(exp, rel=1e-12), (col, got, exp)


NAN = float("nan")
EXPECTED_WEEK = {
    "A": {
        "revenue_12m": 850.0,  # 300 + 100 + 400 + 50
        "gross_profit_12m": 280.0,  # 100 + 50 + 100 + 30
        "margin_12m": 280.0 / 850.0,
        "revenue_prev_12m": 300.0,  # 100 + 200
        "gross_profit_prev_12m": 90.0,  # 40 + 50
        "revenue_growth": 550.0 / 300.0,
        "gross_profit_growth": 190.0 / 90.0,
        "orders_12m": 3,  # O4, O5, O6
        "orders_total": 6,  # O1..O6
        "revenue_total": 1200.0,
        "first_purchase": pd.Timestamp("2022-06-30"),
        "last_purchase": pd.Timestamp("2024-06-30"),
        "recency_days": 0.0,
        "tenure_days": 1568.0,  # since 2020-03-15
        "product_lines_12m": 3,  # PL1, PL2, PL3
        "product_lines_total": 4,  # + PL4 (PL5 is after as_of)
        "wallet_estimate": 2000.0,
        "share_of_wallet": 850.0 / 2000.0,
        # weeks of 2022-06-27, 2023-06-26, 2024-01-08, 2024-06-24
        "frequency": 3.0,
        "recency": 104.0,  # 728 days / 7
        "T": 104.0,  # as_of is in the week of 2024-06-24
        "monetary_value": 350.0,  # (600 + 400 + 50) / 3; first week (150) excluded
        "gross_profit_assumed": False,
    },
    "B": {
        "revenue_12m": 250.0,  # 120 + 30 + 60 + 40
        "gross_profit_12m": 60.0,
        "margin_12m": 0.24,
        "revenue_prev_12m": 0.0,
        "gross_profit_prev_12m": 0.0,
        "revenue_growth": NAN,  # previous revenue 0
        "gross_profit_growth": NAN,
        "orders_12m": 3,  # O9, O10, O11
        "orders_total": 4,
        "revenue_total": 330.0,
        "first_purchase": pd.Timestamp("2021-03-01"),
        "last_purchase": pd.Timestamp("2024-03-11"),
        "recency_days": 111.0,  # 2024-03-11 -> 2024-06-30
        "tenure_days": 1217.0,  # no since: first purchase 2021-03-01
        "product_lines_12m": 2,
        "product_lines_total": 2,
        "wallet_estimate": NAN,
        "share_of_wallet": NAN,
        # weeks of 2021-03-01, 2024-03-04 (three lines), 2024-03-11
        "frequency": 2.0,
        "recency": 158.0,  # 1106 days / 7
        "T": 173.0,  # (2024-06-24 - 2021-03-01) / 7
        "monetary_value": 125.0,  # (210 + 40) / 2
        "gross_profit_assumed": False,
    },
    "C": {  # no transactions at all
        "revenue_12m": 0.0,
        "gross_profit_12m": 0.0,
        "margin_12m": NAN,
        "revenue_prev_12m": 0.0,
        "gross_profit_prev_12m": 0.0,
        "revenue_growth": NAN,
        "gross_profit_growth": NAN,
        "orders_12m": 0,
        "orders_total": 0,
        "revenue_total": 0.0,
        "first_purchase": None,
        "last_purchase": None,
        "recency_days": NAN,
        "tenure_days": 181.0,  # since 2024-01-01
        "product_lines_12m": 0,
        "product_lines_total": 0,
        "wallet_estimate": 0.0,
        "share_of_wallet": NAN,  # wallet 0
        "frequency": NAN,
        "recency": NAN,
        "T": NAN,
        "monetary_value": NAN,
        "gross_profit_assumed": False,
    },
}


def test_every_column_hand_computed(week):
    out = week
    assert list(out.columns) == list(FEATURE_COLUMNS)
    assert out["account_id"].tolist() == ["A", "B", "C"]  # Z is not an account
    for account, expected in EXPECTED_WEEK.items():
        _assert_row(_row(out, account), expected)


def test_dtypes(week):
    out = week
    for col in ["orders_12m", "orders_total", "product_lines_12m", "product_lines_total"]:
        assert out[col].dtype == np.int64
    for col in ["first_purchase", "last_purchase"]:
        assert pd.api.types.is_datetime64_dtype(out[col])
    for col in ["revenue_12m", "recency_days", "frequency", "monetary_value", "T"]:
        assert out[col].dtype == np.float64


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        # A buys in 6 distinct months and on 6 distinct days; B in 2 months, on 5 days.
        (
            "month",
            {
                "A": (5.0, 24.0, 24.0, 230.0),  # (100 + 200 + 400 + 400 + 50) / 5
                "B": (1.0, 36.0, 39.0, 250.0),  # 2021-03 -> 2024-03 -> as_of 2024-06
            },
        ),
        (
            "day",
            {
                "A": (5.0, 731.0, 731.0, 230.0),
                "B": (3.0, 1106.0, 1217.0, 250.0 / 3.0),  # days 03-04, 03-10, 03-11
            },
        ),
        ("week", {"A": (3.0, 104.0, 104.0, 350.0), "B": (2.0, 158.0, 173.0, 125.0)}),
    ],
)
def test_bgnbd_summary_by_period(tx, acc, week, period, expected):
    out = build_account_features(tx, acc, AS_OF, period=period).set_index("account_id")
    cols = ["frequency", "recency", "T", "monetary_value"]
    for account, values in expected.items():
        assert out.loc[account, cols].tolist() == pytest.approx(list(values), rel=1e-12)
    # Non-BG/NBD columns do not depend on the period.
    week = week.set_index("account_id")
    pd.testing.assert_frame_equal(out.drop(columns=cols), week.drop(columns=cols))


def test_single_purchase_period_has_nan_monetary_value(acc):
    one = ibis.memtable(_tx_frame().iloc[[8]])  # B's single 2021 line
    out = build_account_features(one, acc, AS_OF).set_index("account_id")
    assert out.loc["B", "frequency"] == 0.0
    assert out.loc["B", "recency"] == 0.0
    assert math.isnan(out.loc["B", "monetary_value"])


def test_missing_cost_column_gives_nan_gross_profit(acc):
    tx = ibis.memtable(_tx_frame().drop(columns="cost"))
    out = build_account_features(tx, acc, AS_OF).set_index("account_id")
    for col in ["gross_profit_12m", "margin_12m", "gross_profit_prev_12m", "gross_profit_growth"]:
        assert out[col].isna().all(), col
    assert out.loc["A", "revenue_12m"] == 850.0
    assert out.loc["A", "orders_total"] == 6


def test_missing_cost_value_makes_only_its_window_nan(acc):
    df = _tx_frame()
    df.loc[5, "cost"] = np.nan  # A, 2024-01-10, in the 12m window
    out = build_account_features(ibis.memtable(df), acc, AS_OF).set_index("account_id")
    assert math.isnan(out.loc["A", "gross_profit_12m"])
    assert out.loc["A", "gross_profit_prev_12m"] == 90.0
    assert out.loc["B", "gross_profit_12m"] == 60.0


def test_without_order_id_an_order_is_an_account_day(acc):
    df = _tx_frame().drop(columns="order_id")
    out = build_account_features(ibis.memtable(df), acc, AS_OF).set_index("account_id")
    # A: 12m days 2023-07-01, 2024-01-10, 2024-06-30; 6 days in total.
    # B: 12m days 2024-03-04, 03-10, 03-11; plus 2021-03-01.
    assert out.loc["A", ["orders_12m", "orders_total"]].tolist() == [3, 6]
    assert out.loc["B", ["orders_12m", "orders_total"]].tolist() == [3, 4]


def test_lines_without_order_id_count_one_order_per_day(acc):
    df = _tx_frame()
    df.loc[[1, 2], "order_id"] = None  # A's two prev-window lines, on different days
    df.loc[[9, 10], "order_id"] = None  # B's two lines of 2024-03-04: one order
    out = build_account_features(ibis.memtable(df), acc, AS_OF).set_index("account_id")
    assert out.loc["A", "orders_total"] == 6
    assert out.loc["B", ["orders_12m", "orders_total"]].tolist() == [3, 4]


def test_fx_conversion_into_base_currency(acc):
    df = _tx_frame()
    df["currency"] = np.where(df["account_id"] == "A", "EUR", "USD")
    df.loc[12, "currency"] = None  # a missing currency is the base currency
    fx = ibis.memtable(pd.DataFrame({"currency": ["EUR", "USD"], "rate_to_base": [1.5, 1.0]}))
    out = build_account_features(ibis.memtable(df), acc, AS_OF, fx_rates=fx)
    out = out.set_index("account_id")
    assert out.loc["A", "revenue_12m"] == pytest.approx(850.0 * 1.5)
    assert out.loc["A", "gross_profit_12m"] == pytest.approx(280.0 * 1.5)
    assert out.loc["A", "monetary_value"] == pytest.approx(350.0 * 1.5)
    assert out.loc["A", "margin_12m"] == pytest.approx(280.0 / 850.0)
    assert out.loc["B", "revenue_12m"] == pytest.approx(250.0)


def test_unknown_currency_is_a_clear_error(acc):
    df = _tx_frame()
    df["currency"] = np.where(df["account_id"] == "A", "EUR", "USD")
    fx = ibis.memtable(pd.DataFrame({"currency": ["USD"], "rate_to_base": [1.0]}))
    with pytest.raises(ValueError, match=r"currency \['EUR'\].*missing from fx_rates"):
        build_account_features(ibis.memtable(df), acc, AS_OF, fx_rates=fx)


def test_mixed_currencies_need_fx_rates(acc):
    df = _tx_frame()
    df["currency"] = np.where(df["account_id"] == "A", "EUR", "USD")
    with pytest.raises(FeatureInputError, match=r"mix currencies \['EUR', 'USD'\].*fx_rates"):
        build_account_features(ibis.memtable(df), acc, AS_OF)


def test_single_currency_needs_no_conversion(acc, week):
    df = _tx_frame()
    df["currency"] = "JPY"
    out = build_account_features(ibis.memtable(df), acc, AS_OF)
    pd.testing.assert_frame_equal(out, week)


def test_bad_fx_table_is_rejected(tx, acc):
    df = _tx_frame()
    df["currency"] = "EUR"
    dup = ibis.memtable(pd.DataFrame({"currency": ["EUR", "EUR"], "rate_to_base": [1.0, 2.0]}))
    with pytest.raises(FeatureInputError, match=r"more than once"):
        build_account_features(ibis.memtable(df), acc, AS_OF, fx_rates=dup)
    neg = ibis.memtable(pd.DataFrame({"currency": ["EUR"], "rate_to_base": [0.0]}))
    with pytest.raises(FeatureInputError, match=r"rate_to_base must be > 0"):
        build_account_features(ibis.memtable(df), acc, AS_OF, fx_rates=neg)


def test_memtable_and_parquet_give_the_same_features(tmp_path, week):
    _tx_frame().to_parquet(tmp_path / "transactions.parquet")
    _acc_frame().to_parquet(tmp_path / "accounts.parquet")
    con = ibis.duckdb.connect()
    from_files = build_account_features(
        con.read_parquet(tmp_path / "transactions.parquet"),
        con.read_parquet(tmp_path / "accounts.parquet"),
        AS_OF,
    )
    pd.testing.assert_frame_equal(from_files, week)  # week: from in-memory ibis.memtable


def test_date_typed_column_and_date_as_of(acc):
    table = pa.Table.from_pandas(_tx_frame(), preserve_index=False)
    table = table.set_column(1, "date", table["date"].cast(pa.date32()))
    out = build_account_features(ibis.memtable(table), acc, dt.date(2024, 6, 30))
    _assert_row(_row(out, "B"), EXPECTED_WEEK["B"])


def test_as_of_time_of_day_is_dropped(tx, acc, week):
    late = build_account_features(tx, acc, pd.Timestamp("2024-06-30 08:15"))
    pd.testing.assert_frame_equal(late, week)


def test_calendar_month_windows_on_leap_day(acc):
    # as_of 2024-02-29: 12m = 2023-03-01..2024-02-29, prev = 2022-03-01..2023-02-28.
    df = pd.DataFrame(
        {
            "account_id": ["A"] * 4,
            "date": pd.to_datetime(["2022-02-28", "2022-03-01", "2023-02-28", "2023-03-01"]),
            "product_line": ["PL1"] * 4,
            "revenue": [1.0, 10.0, 100.0, 1000.0],
        }
    )
    out = build_account_features(ibis.memtable(df), acc, "2024-02-29").set_index("account_id")
    assert out.loc["A", "revenue_12m"] == 1000.0
    assert out.loc["A", "revenue_prev_12m"] == 110.0
    assert out.loc["A", "revenue_total"] == 1111.0


def test_expression_is_lazy_ibis_table(tx, acc):
    expr = account_features_expr(tx, acc, AS_OF, period="month")
    assert isinstance(expr, ibis.Table)
    assert list(expr.columns) == list(FEATURE_COLUMNS)
    sql = ibis.to_sql(expr, dialect="postgres")  # portable: compiles for another engine
    assert "GROUP BY" in sql


@pytest.mark.parametrize(
    ("drop", "message"), [("revenue", "revenue"), ("date", "date"), ("account_id", "account_id")]
)
def test_missing_required_column(acc, drop, message):
    tx = ibis.memtable(_tx_frame().drop(columns=drop))
    with pytest.raises(FeatureInputError, match=rf"missing required column.*'{message}'"):
        build_account_features(tx, acc, AS_OF)


def test_bad_arguments(tx, acc):
    with pytest.raises(FeatureInputError, match="period must be one of"):
        build_account_features(tx, acc, AS_OF, period="quarter")
    with pytest.raises(FeatureInputError, match="as_of must be a date"):
        build_account_features(tx, acc, "not a date")
    bad = _tx_frame()
    bad["revenue"] = bad["revenue"].astype(str)
    with pytest.raises(FeatureInputError, match=r"transactions.revenue must be numeric"):
        build_account_features(ibis.memtable(bad), acc, AS_OF)


def test_monthly_revenue(tx):
    out = monthly_revenue(tx, AS_OF)  # 2021-07 .. 2024-06
    assert list(out.columns) == ["account_id", "month", "revenue", "gross_profit"]
    a = out[out["account_id"] == "A"]
    assert a["month"].dt.strftime("%Y-%m").tolist() == [
        "2022-06",
        "2022-07",
        "2023-06",
        "2023-07",
        "2024-01",
        "2024-06",
    ]
    assert a["revenue"].tolist() == [50.0, 100.0, 200.0, 400.0, 400.0, 50.0]
    assert a["gross_profit"].tolist() == [20.0, 40.0, 50.0, 150.0, 100.0, 30.0]
    b = out[out["account_id"] == "B"]  # 2021-03 is outside the 36 months
    assert b[["revenue", "gross_profit"]].values.tolist() == [[250.0, 60.0]]
    assert "Z" in set(out["account_id"])  # no accounts table: every account_id


def test_monthly_revenue_short_window_and_no_cost(tx):
    out = monthly_revenue(tx, AS_OF, months=3)  # 2024-04 .. 2024-06 (month to date)
    assert out[["account_id", "revenue"]].values.tolist() == [["A", 50.0]]
    no_cost = monthly_revenue(ibis.memtable(_tx_frame().drop(columns="cost")), AS_OF, months=3)
    assert no_cost["gross_profit"].isna().all()
    with pytest.raises(FeatureInputError, match="months must be a positive integer"):
        monthly_revenue(tx, AS_OF, months=0)


def test_settings_defaults_and_validation():
    assert FeatureSettings().period == "week"
    assert FeatureSettings().trend_months == 36
    with pytest.raises(ValueError):
        FeatureSettings(period="year")


# --------------------------------------------------------------------------- line aggregates


def test_product_line_revenue_sums_the_12m_window(tx):
    out = product_line_revenue(tx, AS_OF)
    # 12m window 2023-07-01..2024-06-30; A's 2024-07-01 line is after as_of.
    assert out.to_dict("list") == {
        "account_id": ["A", "A", "A", "B", "B", "Z"],
        "product_line": ["PL1", "PL2", "PL3", "PL2", "PL3", "PL1"],
        "revenue": [350.0, 400.0, 100.0, 220.0, 30.0, 500.0],
    }


def test_product_line_revenue_converts_currencies():
    df = _tx_frame()
    df["currency"] = np.where(df["account_id"] == "A", "EUR", "USD")
    fx = ibis.memtable(pd.DataFrame({"currency": ["EUR", "USD"], "rate_to_base": [1.5, 1.0]}))
    out = product_line_revenue(ibis.memtable(df), AS_OF, fx_rates=fx).set_index(
        ["account_id", "product_line"]
    )
    assert out.loc[("A", "PL1"), "revenue"] == pytest.approx(350.0 * 1.5)
    assert out.loc[("B", "PL2"), "revenue"] == pytest.approx(220.0)


def test_monthly_line_summary_keeps_lines_without_cost_apart():
    df = _tx_frame()
    df.loc[11, "cost"] = np.nan  # B, 2024-03-10, PL2: 60 without cost
    out = monthly_line_summary(ibis.memtable(df), AS_OF)
    assert out["n_lines"].sum() == len(df) - 1  # A's line after as_of is left out
    assert list(out.columns) == ["account_id", "date", "product_line", "revenue", "cost", "n_lines"]
    b = out[(out["account_id"] == "B") & (out["date"] == pd.Timestamp("2024-03-01"))]
    assert b[["product_line", "revenue", "n_lines"]].values.tolist() == [
        ["PL2", 160.0, 2],
        ["PL2", 60.0, 1],
        ["PL3", 30.0, 1],
    ]
    assert b["cost"].tolist()[0] == 110.0 and math.isnan(b["cost"].tolist()[1])
    a = out[(out["account_id"] == "A") & (out["date"] == pd.Timestamp("2023-07-01"))]
    assert a[["product_line", "revenue", "cost", "n_lines"]].values.tolist() == [
        ["PL1", 300.0, 200.0, 1],
        ["PL3", 100.0, 50.0, 1],
    ]

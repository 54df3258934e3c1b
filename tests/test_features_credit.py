"""Features on real exports: credit notes, missing product lines and cost, history coverage.

Hand-computed values on tiny in-memory DuckDB tables (``ibis.memtable``).
"""

from __future__ import annotations

import math

import ibis
import numpy as np
import pandas as pd
import pytest

from kam_analysis.data.features import (
    COVERAGE_TOLERANCE_DAYS,
    FeatureInputError,
    HistoryCoverage,
    account_features_expr,
    build_account_features,
    history_coverage,
    monthly_line_summary,
    monthly_revenue,
    product_line_revenue,
)

AS_OF = "2024-06-30"
# 12m = 2023-07-01..2024-06-30, prev = 2022-07-01..2023-06-30; as_of is in the week of
# Monday 2024-06-24. Every date below is a Monday unless noted.
CREDIT_LINES = [
    # account, date, product_line, revenue, cost, order_id
    # A: order O1 cancelled by a separate credit-note invoice C1 (its own number),
    # in another week: O1 still counts as an order (nothing links the two), C1 does not,
    # and C1's week is not a purchase period.
    ("A", "2024-01-08", "PL1", 100.0, 60.0, "O1"),
    ("A", "2024-01-17", "PL1", -100.0, -60.0, "C1"),  # Wednesday
    ("A", "2024-03-04", "PL2", 80.0, 50.0, "O2"),
    ("A", "2024-05-06", "PL2", 40.0, 10.0, "O3"),
    # B: a return on the same order (O10, PL2 sent back) and an order cancelled on its
    # own number in the same week (O11 nets to 0: not an order, not a purchase week).
    ("B", "2023-09-04", "PL1", 200.0, 120.0, "O10"),
    ("B", "2023-09-04", "PL2", 100.0, 50.0, "O10"),
    ("B", "2023-09-20", "PL2", -100.0, -50.0, "O10"),  # Wednesday: return, next-but-one week
    ("B", "2023-11-06", "PL1", 300.0, 200.0, "O11"),
    ("B", "2023-11-08", "PL1", -300.0, -200.0, "O11"),  # Wednesday, same week
    ("B", "2024-02-05", "PL3", 60.0, 30.0, "O12"),
    # C: bought in the previous year; its only activity in the 12 months is a credit note.
    ("C", "2023-03-06", "PL1", 500.0, 300.0, "O20"),
    ("C", "2023-10-02", "PL1", -200.0, -120.0, "C20"),
    # Z is not an account; its old line only makes the book cover the previous 12 months.
    ("Z", "2022-05-02", "PL1", 10.0, 5.0, "O30"),
]


def _credit_frame() -> pd.DataFrame:
    df = pd.DataFrame(
        CREDIT_LINES,
        columns=["account_id", "date", "product_line", "revenue", "cost", "order_id"],
    )
    df["date"] = pd.to_datetime(df["date"])
    return df


def _accounts(ids=("A", "B", "C")) -> ibis.Table:
    return ibis.memtable(pd.DataFrame({"account_id": list(ids)}))


@pytest.fixture(scope="module")
def credit() -> pd.DataFrame:
    out = build_account_features(ibis.memtable(_credit_frame()), _accounts(), AS_OF)
    return out.set_index("account_id")


def test_order_cancelled_by_a_separate_credit_note_invoice(credit):
    a = credit.loc["A"]
    assert a["revenue_12m"] == 120.0  # 100 - 100 + 80 + 40
    assert a["gross_profit_12m"] == 60.0  # 40 - 40 + 30 + 30
    assert a["margin_12m"] == pytest.approx(0.5)
    assert a["orders_12m"] == 3 and a["orders_total"] == 3  # O1, O2, O3; C1 is no order
    assert a["product_lines_12m"] == 1  # PL1 nets to 0: not bought; PL2 120
    assert a["first_purchase"] == pd.Timestamp("2024-01-08")
    assert a["last_purchase"] == pd.Timestamp("2024-05-06")
    assert a["recency_days"] == 55.0
    # purchase weeks 2024-01-08 (100), 03-04 (80), 05-06 (40); C1's week (-100) is not one
    assert a["frequency"] == 2.0
    assert a["recency"] == 17.0  # 119 days / 7
    assert a["T"] == 24.0  # 2024-01-08 -> week of 2024-06-24
    assert a["monetary_value"] == 60.0  # (80 + 40) / 2; the credit note is not deducted


def test_return_on_the_same_order_and_a_cancelled_order(credit):
    b = credit.loc["B"]
    assert b["revenue_12m"] == 260.0  # 200 + 100 - 100 + 300 - 300 + 60
    assert b["gross_profit_12m"] == 110.0  # 80 + 50 - 50 + 100 - 100 + 30
    assert b["orders_12m"] == 2 and b["orders_total"] == 2  # O10 (net 200), O12; O11 nets to 0
    assert b["product_lines_12m"] == 2  # PL1 200, PL3 60; PL2 returned (net 0)
    assert b["product_lines_total"] == 2
    assert b["first_purchase"] == pd.Timestamp("2023-09-04")
    assert b["last_purchase"] == pd.Timestamp("2024-02-05")
    assert b["recency_days"] == 146.0
    # purchase weeks 2023-09-04 (300) and 2024-02-05 (60); the return week (-100) and the
    # cancelled week (300 - 300 = 0) are not purchases
    assert b["frequency"] == 1.0
    assert b["recency"] == 22.0
    assert b["T"] == 42.0
    assert b["monetary_value"] == 60.0


def test_only_a_credit_note_in_the_last_12_months(credit):
    c = credit.loc["C"]
    assert c["revenue_12m"] == -200.0  # net revenue, not dropped
    assert c["gross_profit_12m"] == -80.0
    assert math.isnan(c["margin_12m"])  # no margin on a net credit
    assert c["revenue_prev_12m"] == 500.0
    assert c["revenue_growth"] == pytest.approx(-1.4)  # (-200 - 500) / 500
    assert c["gross_profit_growth"] == pytest.approx(-1.4)  # (-80 - 200) / 200
    assert c["orders_12m"] == 0 and c["orders_total"] == 1
    assert c["revenue_total"] == 300.0
    # the credit note does not make C look recently active
    assert c["last_purchase"] == pd.Timestamp("2023-03-06")
    assert c["recency_days"] == 482.0
    assert c["product_lines_12m"] == 0 and c["product_lines_total"] == 1
    assert c["frequency"] == 0.0 and c["recency"] == 0.0 and c["T"] == 68.0
    assert math.isnan(c["monetary_value"])


def test_monthly_purchase_periods_skip_months_without_positive_net():
    # A by month: 2024-01 (100 - 100 = 0: no purchase), 03 (80), 05 (40)
    out = build_account_features(
        ibis.memtable(_credit_frame()), _accounts(), AS_OF, period="month"
    ).set_index("account_id")
    cols = ["frequency", "recency", "T", "monetary_value"]
    assert out.loc["A", cols].tolist() == [1.0, 2.0, 3.0, 40.0]
    # B by month: 2023-09 (200), 2023-11 (0), 2024-02 (60)
    assert out.loc["B", cols].tolist() == [1.0, 5.0, 9.0, 60.0]
    # first_purchase comes from days, not months: A still first bought on 2024-01-08
    assert out.loc["A", "first_purchase"] == pd.Timestamp("2024-01-08")


# --------------------------------------------------------------------------- coverage


def _uk_like() -> pd.DataFrame:
    """12 months + 8 days of data: 2010-12-01 .. 2011-12-09."""
    return pd.DataFrame(
        {
            "account_id": ["u1", "u1", "u2", "u2", "u3"],
            "date": pd.to_datetime(
                [
                    "2010-12-01 08:26",
                    "2011-06-01 00:00",
                    "2010-12-08 00:00",
                    "2011-12-09 12:50",
                    "2011-03-01 00:00",
                ]
            ),
            "product_line": "All products",
            "revenue": [10.0, 1000.0, 20.0, 2000.0, 300.0],
        }
    )


def test_history_coverage_of_12_months_and_8_days():
    cov = history_coverage(ibis.memtable(_uk_like()), "2011-12-09")
    assert isinstance(cov, HistoryCoverage)
    assert cov.first_date == pd.Timestamp("2010-12-01")
    assert cov.last_date == pd.Timestamp("2011-12-09")
    assert cov.start_12m == pd.Timestamp("2010-12-10")
    assert cov.start_prev_12m == pd.Timestamp("2009-12-10")  # what growth needs
    assert cov.covers_12m and not cov.covers_prev_12m
    assert cov.full_months == 12
    assert cov.days_before_as_of == 0
    assert not cov.has_cost and cov.has_product_line
    assert cov.tolerance_days == COVERAGE_TOLERANCE_DAYS == 7


def test_growth_is_nan_for_every_account_when_the_previous_year_is_not_covered():
    out = build_account_features(
        ibis.memtable(_uk_like()), _accounts(["u1", "u2", "u3"]), "2011-12-09"
    ).set_index("account_id")
    # u1 and u2 bought in the 9 days of the "previous 12 months" the data holds: without the
    # coverage rule their growth would be +9,900 % and +9,900 %.
    for col in ("revenue_prev_12m", "gross_profit_prev_12m", "revenue_growth"):
        assert out[col].isna().all(), col
    assert out["gross_profit_growth"].isna().all()
    assert out.loc["u1", "revenue_12m"] == 1000.0
    assert out.loc["u2", "revenue_12m"] == 2000.0


def test_growth_of_an_account_new_inside_a_covered_window_is_real():
    df = _uk_like()
    df.loc[len(df)] = ["old", pd.Timestamp("2009-12-10"), "All products", 5.0]  # book covers
    out = build_account_features(
        ibis.memtable(df), _accounts(["u1", "u2", "u3", "old"]), "2011-12-09"
    ).set_index("account_id")
    assert out.loc["u1", "revenue_prev_12m"] == 10.0
    assert out.loc["u1", "revenue_growth"] == pytest.approx(99.0)  # (1000 - 10) / 10
    assert out.loc["u3", "revenue_prev_12m"] == 0.0
    assert math.isnan(out.loc["u3", "revenue_growth"])  # no previous revenue: undefined


def test_no_growth_on_a_net_credit_year():
    df = pd.concat(
        [
            _credit_frame(),
            pd.DataFrame(
                {
                    "account_id": ["D", "D"],
                    "date": pd.to_datetime(["2023-01-09", "2024-02-05"]),
                    "product_line": "PL1",
                    "revenue": [-50.0, 100.0],  # only a credit note in the previous year
                    "cost": [-30.0, 60.0],
                    "order_id": ["C40", "O41"],
                }
            ),
        ]
    )
    out = build_account_features(ibis.memtable(df), _accounts(["D"]), AS_OF).iloc[0]
    assert out["revenue_prev_12m"] == -50.0 and out["revenue_12m"] == 100.0
    assert math.isnan(out["revenue_growth"])  # not (100 + 50) / -50 = -300 %
    assert out["gross_profit_growth"] == pytest.approx(3.0)  # (40 + 20) / |-20|


@pytest.mark.parametrize(
    ("first", "covered"),
    [("2009-12-10", True), ("2009-12-17", True), ("2009-12-18", False), ("2009-12-09", True)],
)
def test_coverage_tolerance_is_seven_days(first, covered):
    df = pd.DataFrame(
        {
            "account_id": ["x", "x"],
            "date": pd.to_datetime([first, "2011-12-09"]),
            "revenue": [1.0, 2.0],
        }
    )
    cov = history_coverage(ibis.memtable(df), "2011-12-09")
    assert cov.covers_prev_12m is covered
    assert history_coverage(ibis.memtable(df), "2011-12-09", tolerance_days=0).covers_prev_12m is (
        first <= "2009-12-10"
    )


def test_full_months_on_calendar_month_ends():
    df = pd.DataFrame(
        {"account_id": ["x"], "date": pd.to_datetime(["2023-03-01"]), "revenue": [1.0]}
    )
    t = ibis.memtable(df)
    # as_of 2024-02-29: 12 months start 2023-03-01 -> exactly 12 full months
    assert history_coverage(t, "2024-02-29").full_months == 12
    # calendar months: 2024-02-28 minus 12 months is 2023-02-28, so its year starts 2023-03-01
    assert history_coverage(t, "2024-02-28").full_months == 12
    assert history_coverage(t, "2024-02-27").full_months == 11  # would need 2023-02-28
    assert history_coverage(t, "2023-03-01").full_months == 0  # one day of history
    empty = history_coverage(t, "2020-01-01")  # no line up to as_of
    assert empty.first_date is None and empty.full_months == 0
    assert not empty.covers_12m and empty.covered_from is None
    with pytest.raises(FeatureInputError, match="tolerance_days"):
        history_coverage(t, "2024-02-29", tolerance_days=-1)


def test_given_coverage_is_used_without_querying_it_again():
    t = ibis.memtable(_uk_like())
    acc = _accounts(["u1", "u2", "u3"])
    pretend = HistoryCoverage(
        as_of=pd.Timestamp("2011-12-09"),
        first_date=pd.Timestamp("2009-01-01"),
        last_date=pd.Timestamp("2011-12-09"),
        full_months=35,
    )
    out = build_account_features(t, acc, "2011-12-09", coverage=pretend).set_index("account_id")
    assert out.loc["u1", "revenue_growth"] == pytest.approx(99.0)


# --------------------------------------------------------------------------- optional columns


def test_without_product_line_features_build_with_nan_product_line_counts():
    with_pl = build_account_features(ibis.memtable(_credit_frame()), _accounts(), AS_OF)
    no_pl = build_account_features(
        ibis.memtable(_credit_frame().drop(columns="product_line")), _accounts(), AS_OF
    )
    for col in ("product_lines_12m", "product_lines_total"):
        assert no_pl[col].isna().all() and no_pl[col].dtype == np.float64, col
        assert with_pl[col].dtype == np.int64
    same = [c for c in with_pl.columns if not c.startswith("product_lines")]
    pd.testing.assert_frame_equal(no_pl[same], with_pl[same])
    cov = history_coverage(ibis.memtable(_credit_frame().drop(columns="product_line")), AS_OF)
    assert not cov.has_product_line and cov.has_cost


def test_line_aggregates_without_product_line():
    t = ibis.memtable(_credit_frame().drop(columns="product_line"))
    spend = product_line_revenue(t, AS_OF)
    assert spend.empty and list(spend.columns) == ["account_id", "product_line", "revenue"]
    summary = monthly_line_summary(t, AS_OF)
    assert summary["product_line"].isna().all()
    a = summary[summary["account_id"] == "A"].set_index("date")
    # 2024-01: order 100 and its credit note -100 net to 0 in the month, 2 lines
    assert a.loc[pd.Timestamp("2024-01-01"), "revenue"] == 0.0
    assert a.loc[pd.Timestamp("2024-01-01"), "n_lines"] == 2


def test_credit_notes_net_in_product_line_revenue():
    spend = product_line_revenue(ibis.memtable(_credit_frame()), AS_OF)
    got = spend.set_index(["account_id", "product_line"])["revenue"].to_dict()
    assert got[("A", "PL1")] == 0.0 and got[("B", "PL2")] == 0.0
    assert got[("C", "PL1")] == -200.0


def test_assumed_gross_margin_without_cost():
    t = ibis.memtable(_credit_frame().drop(columns="cost"))
    unknown = build_account_features(t, _accounts(), AS_OF).set_index("account_id")
    assert unknown["gross_profit_12m"].isna().all()  # unknown, never 0
    assert not unknown["gross_profit_assumed"].any()
    out = build_account_features(t, _accounts(), AS_OF, assumed_gross_margin=0.4)
    out = out.set_index("account_id")
    assert out.loc["A", "gross_profit_12m"] == pytest.approx(48.0)  # 120 x 0.4
    assert out.loc["C", "gross_profit_12m"] == pytest.approx(-80.0)
    assert out.loc["C", "gross_profit_prev_12m"] == pytest.approx(200.0)
    assert out.loc["C", "gross_profit_growth"] == pytest.approx(out.loc["C", "revenue_growth"])
    assert out["margin_12m"].isna().all()  # the margin is an assumption, not a measurement
    assert out["gross_profit_assumed"].all()
    # with a cost column the assumption is ignored
    real = build_account_features(
        ibis.memtable(_credit_frame()), _accounts(), AS_OF, assumed_gross_margin=0.4
    ).set_index("account_id")
    assert real.loc["A", "gross_profit_12m"] == 60.0 and not real["gross_profit_assumed"].any()
    months = monthly_revenue(t, AS_OF, months=12, assumed_gross_margin=0.4)
    np.testing.assert_allclose(months["gross_profit"], 0.4 * months["revenue"])
    lines = monthly_line_summary(t, AS_OF, assumed_gross_margin=0.4)
    np.testing.assert_allclose(lines["cost"], 0.6 * lines["revenue"])
    with pytest.raises(FeatureInputError, match="assumed_gross_margin"):
        build_account_features(t, _accounts(), AS_OF, assumed_gross_margin=1.5)


def test_features_expression_still_compiles_for_other_engines():
    expr = account_features_expr(
        ibis.memtable(_credit_frame().drop(columns="product_line")), _accounts(), AS_OF
    )
    for dialect in ("postgres", "snowflake", "bigquery"):
        assert "GROUP BY" in ibis.to_sql(expr, dialect=dialect)

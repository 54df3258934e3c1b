"""Tests for kam_analysis.kpi: hand-computed KPI values, status/trend rules, scorecard."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from kam_analysis import kpi
from kam_analysis.core.schemas import column_specs
from kam_analysis.kpi import (
    KPI_DEFINITIONS,
    KpiInputError,
    KpiSettings,
    KpiTarget,
    assess_kpis,
    balanced_scorecard,
    compute_kpis,
    kpi_status,
    nps_score,
    period_index,
    trend_test,
)

FY = KpiSettings(period="fiscal_year")


def _tx(rows):
    """rows: (account, date, line, revenue[, cost])"""
    df = pd.DataFrame(
        [r if len(r) == 5 else (*r, np.nan) for r in rows],
        columns=["account_id", "date", "product_line", "revenue", "cost"],
    )
    df["date"] = pd.to_datetime(df["date"])
    return df


def _acc(ids, wallet=None):
    d = {"account_id": list(ids)}
    if wallet is not None:
        d["wallet_estimate"] = wallet
    return pd.DataFrame(d)


def _val(result, account, period, kpi_id, col="value"):
    v = result.values
    row = v[(v["account_id"] == account) & (v["period"] == period) & (v["kpi_id"] == kpi_id)]
    assert len(row) == 1, (account, period, kpi_id, len(row))
    return row[col].iloc[0]


def _port(result, period, kpi_id, col="value"):
    p = result.portfolio
    row = p[(p["period"] == period) & (p["kpi_id"] == kpi_id)]
    assert len(row) == 1
    return row[col].iloc[0]


# --------------------------------------------------------------------------- periods


@pytest.mark.parametrize(
    ("date", "freq", "label", "start", "end"),
    [
        ("2025-03-31", "fiscal_year", "FY2024", "2024-04-01", "2025-03-31"),
        ("2025-04-01", "fiscal_year", "FY2025", "2025-04-01", "2026-03-31"),
        ("2026-03-31", "fiscal_year", "FY2025", "2025-04-01", "2026-03-31"),
        ("2025-03-31", "quarter", "FY2024-Q4", "2025-01-01", "2025-03-31"),
        ("2025-04-01", "quarter", "FY2025-Q1", "2025-04-01", "2025-06-30"),
        ("2025-10-15", "quarter", "FY2025-Q3", "2025-10-01", "2025-12-31"),
        ("2024-02-29", "month", "2024-02", "2024-02-01", "2024-02-29"),
    ],
)
def test_period_index_fiscal_labels_around_april_first(date, freq, label, start, end):
    out = period_index([date], freq, 4)
    assert out["period"].iloc[0] == label
    assert out["period_start"].iloc[0] == pd.Timestamp(start)
    assert out["period_end"].iloc[0] == pd.Timestamp(end)


def test_period_index_label_conventions_and_calendar_year():
    end = period_index(["2025-04-01", "2025-03-31"], "fiscal_year", 4, fiscal_year_label="end")
    assert end["period"].tolist() == ["FY2026", "FY2025"]
    cal = period_index(["2024-12-31", "2025-01-01"], "fiscal_year", 1)
    assert cal["period"].tolist() == ["FY2024", "FY2025"]
    q = period_index(["2025-01-01", "2025-12-31"], "quarter", 1)
    assert q["period"].tolist() == ["FY2025-Q1", "FY2025-Q4"]
    # October start: 2025-10-01 opens FY2025 quarter 1
    oct_ = period_index(["2025-09-30", "2025-10-01"], "quarter", 10)
    assert oct_["period"].tolist() == ["FY2024-Q4", "FY2025-Q1"]


def test_period_index_missing_dates_and_bad_freq():
    out = period_index(pd.Series(pd.to_datetime(["2025-05-01", None])), "quarter")
    assert out["period"].iloc[0] == "FY2025-Q1"
    assert pd.isna(out["period"].iloc[1]) and pd.isna(out["period_start"].iloc[1])
    with pytest.raises(ValueError, match="freq must be one of"):
        period_index(["2025-01-01"], "week")
    with pytest.raises(ValueError, match="1-12"):
        period_index(["2025-01-01"], "quarter", 13)


def test_period_range_is_contiguous():
    pr = kpi.period_range("2024-05-03", "2025-04-01", "quarter")
    assert pr["period"].tolist() == [
        "FY2024-Q1",
        "FY2024-Q2",
        "FY2024-Q3",
        "FY2024-Q4",
        "FY2025-Q1",
    ]
    gaps = pr["period_start"].iloc[1:].to_numpy() - (pr["period_end"].iloc[:-1].to_numpy())
    assert (gaps == np.timedelta64(1, "D")).all()


# --------------------------------------------------------------------------- NPS


def test_nps_edge_cases():
    assert nps_score([9, 10, 10])["nps"] == 100
    assert nps_score([0, 3, 6])["nps"] == -100
    passive = nps_score([7, 8, 7, 8])
    assert passive["nps"] == 0 and passive["se"] == 0
    empty = nps_score([])
    assert empty["n"] == 0 and math.isnan(empty["nps"])


def test_nps_standard_error_hand_computed():
    # 2 promoters, 2 passives, 1 detractor: p = 0.4, d = 0.2, NPS = 20
    # se = 100 * sqrt((0.4 + 0.2 - 0.2**2) / 5) = 100 * sqrt(0.112)
    r = nps_score([10, 9, 8, 7, 3], ci_level=0.90)
    assert r["nps"] == pytest.approx(20.0)
    assert r["se"] == pytest.approx(100 * math.sqrt(0.112))
    z = stats.norm.ppf(0.95)
    assert r["ci_low"] == pytest.approx(20 - z * 100 * math.sqrt(0.112))
    assert r["ci_high"] == pytest.approx(20 + z * 100 * math.sqrt(0.112))


def test_nps_rejects_out_of_range():
    with pytest.raises(ValueError, match="0-10"):
        nps_score([11, 5])


def _survey_frame():
    tx = _tx([("A", "2025-04-10", "x", 100.0), ("B", "2025-04-10", "x", 100.0)])
    acc = _acc(["A", "B", "C"])
    sv = pd.DataFrame(
        {
            "account_id": ["A"] * 6 + ["B"],
            "date": pd.to_datetime(["2025-05-01"] * 6 + ["2025-05-02"]),
            "nps": [10, 10, 9, 9, 9, 10, 2],
            "csat": [5, 5, 4, 4, 4, 5, None],
        }
    )
    return tx, acc, sv


def test_nps_per_account_insufficient_and_missing_is_nan():
    tx, acc, sv = _survey_frame()
    r = compute_kpis(tx, acc, surveys=sv, as_of="2025-06-30")
    q = "FY2025-Q1"
    assert _val(r, "A", q, "nps") == 100 and _val(r, "A", q, "nps", col="quality") == "ok"
    assert _val(r, "A", q, "nps", col="n") == 6
    # one detractor answer: -100, flagged insufficient (min_responses = 5)
    assert _val(r, "B", q, "nps") == -100
    assert _val(r, "B", q, "nps", col="quality") == "insufficient"
    # no survey at all: NaN, not 0
    assert math.isnan(_val(r, "C", q, "nps"))
    assert _val(r, "C", q, "nps", col="quality") == "no_data"
    assert _val(r, "A", q, "csat") == pytest.approx(27 / 6)
    assert math.isnan(_val(r, "B", q, "csat"))  # the only answer has no csat
    # portfolio: mean of the account NPS, each account once: (100 + -100) / 2 = 0, n = 2
    assert _port(r, q, "nps") == pytest.approx(0.0)
    assert _port(r, q, "nps", col="n") == 2
    # respondent-weighted beside it: 6 promoters, 1 detractor of 7 answers
    both = kpi.portfolio_nps(r, period=q)
    assert both["account_mean"] == pytest.approx(0.0) and both["n_accounts"] == 2
    assert both["pooled"] == pytest.approx(100 * 5 / 7) and both["n_responses"] == 7
    table = assess_kpis(r)
    nps_b = table[(table.account_id == "B") & (table.kpi_id == "nps")]
    assert nps_b["status"].iloc[0] == "insufficient"


def test_csat_omitted_without_answers_column():
    tx, acc, sv = _survey_frame()
    r = compute_kpis(tx, acc, surveys=sv.drop(columns="csat"), as_of="2025-06-30")
    assert "csat" in r.omitted and "nps" not in r.omitted
    assert "csat" not in set(r.values["kpi_id"])


# --------------------------------------------------------------------------- revenue family


def test_revenue_gross_profit_margin_and_empty_period():
    tx = _tx(
        [
            ("A", "2025-04-05", "x", 100.0, 60.0),
            ("A", "2025-05-05", "y", 100.0, 20.0),
            ("B", "2025-06-30", "x", 50.0, np.nan),
            ("A", "2025-12-01", "x", 10.0, 5.0),  # Q3; Q2 is empty for everyone
        ]
    )
    r = compute_kpis(tx, _acc(["A", "B"]), as_of="2025-12-31")
    assert r.periods["period"].tolist() == ["FY2025-Q1", "FY2025-Q2", "FY2025-Q3"]
    assert _val(r, "A", "FY2025-Q1", "revenue") == 200
    assert _val(r, "A", "FY2025-Q1", "gross_profit") == 120
    assert _val(r, "A", "FY2025-Q1", "gross_margin") == pytest.approx(0.6)
    # B's only line lacks a cost: gross profit unknown (NaN), not 0
    assert math.isnan(_val(r, "B", "FY2025-Q1", "gross_profit"))
    assert _port(r, "FY2025-Q1", "revenue") == 250
    assert _port(r, "FY2025-Q1", "gross_margin") == pytest.approx(0.6)  # costed lines only
    # empty period: revenue 0, margin undefined
    assert _val(r, "A", "FY2025-Q2", "revenue") == 0
    assert _port(r, "FY2025-Q2", "revenue") == 0
    assert math.isnan(_val(r, "A", "FY2025-Q2", "gross_margin"))
    assert math.isnan(_port(r, "FY2025-Q2", "gross_margin"))
    assert any("without cost" in str(n) for n in r.notes)
    assert r.wide().loc[("A", "FY2025-Q1"), "revenue"] == 200
    assert r.wide("portfolio").loc["FY2025-Q2", "revenue"] == 0


def test_pre_aggregated_lines_count_with_n_lines():
    lines = _tx(
        [
            ("A", "2025-04-05", "x", 100.0, 60.0),
            ("A", "2025-04-20", "x", 50.0, 10.0),
            ("A", "2025-05-05", "y", 100.0, np.nan),
            ("A", "2025-05-06", "y", 30.0, np.nan),
            ("B", "2025-06-30", "x", 50.0, 30.0),
        ]
    )
    # the same lines summed per account, month and product line, costed lines apart
    summed = _tx(
        [
            ("A", "2025-04-01", "x", 150.0, 70.0),
            ("A", "2025-05-01", "y", 130.0, np.nan),
            ("B", "2025-06-01", "x", 50.0, 30.0),
        ]
    ).assign(n_lines=[2, 2, 1])
    for period in ("month", "quarter"):
        settings = KpiSettings(period=period)
        a = compute_kpis(lines, _acc(["A", "B"]), as_of="2025-06-30", settings=settings)
        b = compute_kpis(summed, _acc(["A", "B"]), as_of="2025-06-30", settings=settings)
        pd.testing.assert_frame_equal(b.values, a.values)
        pd.testing.assert_frame_equal(b.portfolio, a.portfolio)
        assert b.notes == a.notes
    q = compute_kpis(summed, _acc(["A", "B"]), as_of="2025-06-30")
    assert _val(q, "A", "FY2025-Q1", "revenue", "n") == 4  # lines, not rows
    assert _val(q, "A", "FY2025-Q1", "gross_profit", "n") == 2
    assert kpi.KpiNote("kpi.note.no_cost_lines", {"n": 2}) in q.notes
    assert any("2 transaction line(s) without cost" in str(n) for n in q.notes)
    with pytest.raises(KpiInputError, match="n_lines must be a count"):
        compute_kpis(summed.assign(n_lines=[1, -1, 1]), _acc(["A", "B"]), as_of="2025-06-30")


def test_ltv_is_a_snapshot_on_the_last_period():
    tx = _tx([("A", "2025-04-05", "x", 100.0), ("B", "2025-08-05", "x", 10.0)])
    ltv = pd.Series({"A": 1000.0, "B": 500.0})
    r = compute_kpis(tx, _acc(["A", "B"]), ltv=ltv, as_of="2025-09-30")
    assert _val(r, "A", "FY2025-Q2", "ltv") == 1000
    assert math.isnan(_val(r, "A", "FY2025-Q1", "ltv"))
    assert _port(r, "FY2025-Q2", "ltv") == 1500
    with pytest.raises(KpiInputError, match="ltv"):
        compute_kpis(tx, _acc(["A", "B"]), ltv=pd.Series({"Z": 1.0}))


# --------------------------------------------------------------------------- expansion


def _expansion_frame():
    return _tx(
        [
            # A: grows its line x and adds y -> cross-sell 1, upsell 1
            ("A", "2023-05-01", "x", 100.0),
            ("A", "2024-05-01", "x", 150.0),
            ("A", "2024-06-01", "y", 10.0),
            # B: same lines, x shrinks -> cross-sell 0, upsell 0
            ("B", "2023-05-01", "x", 100.0),
            ("B", "2023-06-01", "y", 50.0),
            ("B", "2024-05-01", "x", 90.0),
            ("B", "2024-06-01", "y", 50.0),
            # C: new customer in FY2024 -> neither rate defined
            ("C", "2024-07-01", "z", 30.0),
            # D: bought last year, nothing this year -> upsell 0, cross-sell undefined
            ("D", "2023-07-01", "x", 10.0),
            # E: flat in its old line, big new line -> cross-sell 1, upsell 0
            ("E", "2023-07-01", "x", 100.0),
            ("E", "2024-07-01", "x", 100.0),
            ("E", "2024-08-01", "y", 500.0),
        ]
    )


def test_cross_sell_upsell_nrr_tiny_frame():
    r = compute_kpis(_expansion_frame(), _acc("ABCDE"), as_of="2025-03-31", settings=FY)
    fy = "FY2024"
    cross = {a: _val(r, a, fy, "cross_sell_rate") for a in "ABCDE"}
    assert cross["A"] == 1 and cross["B"] == 0 and cross["E"] == 1
    assert math.isnan(cross["C"]) and math.isnan(cross["D"])
    up = {a: _val(r, a, fy, "upsell_rate") for a in "ABCDE"}
    assert up["A"] == 1 and up["B"] == 0 and up["D"] == 0 and up["E"] == 0
    assert math.isnan(up["C"])
    assert _port(r, fy, "cross_sell_rate") == pytest.approx(2 / 3)
    assert _port(r, fy, "upsell_rate") == pytest.approx(1 / 4)
    # NRR: cohort A, B, D, E; revenue a year earlier 100 + 150 + 10 + 100 = 360,
    # now 160 + 140 + 0 + 600 = 900 (C is new and left out)
    assert _port(r, fy, "nrr") == pytest.approx(900 / 360)
    assert _val(r, "A", fy, "nrr") == pytest.approx(1.6)
    assert _val(r, "D", fy, "nrr") == 0
    assert math.isnan(_val(r, "C", fy, "nrr"))
    # the first year has no history: undefined, not 0
    for k in ("cross_sell_rate", "upsell_rate", "nrr"):
        assert math.isnan(_port(r, "FY2023", k))


def test_nrr_hand_example_quarterly():
    tx = _tx(
        [
            ("A", "2024-04-10", "x", 100.0),
            ("B", "2024-05-10", "x", 50.0),
            ("A", "2025-04-10", "x", 120.0),
            ("C", "2025-04-11", "x", 70.0),
        ]
    )
    r = compute_kpis(tx, _acc("ABC"), as_of="2025-06-30")
    assert _port(r, "FY2025-Q1", "nrr") == pytest.approx(120 / 150)
    assert _val(r, "A", "FY2025-Q1", "nrr") == pytest.approx(1.2)
    assert _val(r, "B", "FY2025-Q1", "nrr") == 0


def _flat_spender_frame():
    # A: 100 every month for two years (flat); C: first purchase in July 2024
    rows = [("A", d, "x", 100.0) for d in pd.date_range("2023-04-01", "2025-03-01", freq="MS")]
    rows = [(a, d + pd.Timedelta(days=9), ln, r) for a, d, ln, r in rows]
    return _tx([*rows, ("C", "2024-07-10", "x", 300.0)])


def test_share_of_wallet_trailing_12_months_flat_spender():
    tx = _flat_spender_frame()
    acc = _acc("ABC", wallet=[2400.0, np.nan, 1000.0])
    r = compute_kpis(tx, acc, as_of="2025-03-31")
    sow = r.wide("account")["share_of_wallet"]
    # 12 x 100 / 2400 = 0.5 in every quarter once 12 months are covered, fiscal Q4 too
    for q in ("FY2023-Q4", "FY2024-Q1", "FY2024-Q2", "FY2024-Q3", "FY2024-Q4"):
        assert sow.loc[("A", q)] == pytest.approx(0.5)
    assert math.isnan(sow.loc[("A", "FY2023-Q3")])  # 9 months of history only
    assert math.isnan(sow.loc[("B", "FY2024-Q4")])  # no wallet estimate
    # C is not yet a customer in FY2024-Q1: out of the portfolio denominator
    assert math.isnan(sow.loc[("C", "FY2024-Q1")])
    assert _port(r, "FY2024-Q1", "share_of_wallet") == pytest.approx(0.5)
    assert _port(r, "FY2024-Q1", "share_of_wallet", col="n") == 1
    assert sow.loc[("C", "FY2024-Q2")] == pytest.approx(0.3)
    assert _port(r, "FY2024-Q2", "share_of_wallet") == pytest.approx(1500 / 3400)
    r2 = compute_kpis(tx, _acc("ABC"), as_of="2025-03-31")
    assert "share_of_wallet" in r2.omitted


def test_active_accounts_per_period():
    tx = _tx(
        [
            ("A", "2023-04-10", "x", 10.0),  # bought once: lapsed from FY2024-Q2 on
            ("B", "2024-01-10", "x", 10.0),  # customer from FY2023-Q4
            ("B", "2024-10-10", "x", 10.0),
        ]
    )
    contracts = pd.DataFrame(
        {
            "account_id": ["B"],
            "status": ["churned"],
            "start_date": pd.to_datetime(["2024-01-01"]),
            "churn_date": pd.to_datetime(["2024-11-30"]),
        }
    )
    r = compute_kpis(tx, _acc("ABC"), contracts=contracts, as_of="2025-03-31")
    act = r.active_accounts
    assert act["FY2023-Q1"] == 1  # A only
    assert act["FY2023-Q4"] == 2  # A (bought 9 months ago) and B
    # FY2024-Q1 starts 2024-04-01: A's last purchase 2023-04-10 is within 12 months
    assert act["FY2024-Q1"] == 2
    # FY2024-Q2 starts 2024-07-01: A lapsed (no purchase since 2023-04-10)
    assert act["FY2024-Q2"] == 1
    # FY2024-Q4 starts 2025-01-01: B's contract churned on 2024-11-30
    assert act["FY2024-Q4"] == 0
    assert act.sum() == 1 + 1 + 1 + 2 + 2 + 1 + 1 + 0  # C never bought: never counted


def _upsell_frame():
    rows = []
    months = pd.date_range("2023-04-01", "2025-03-01", freq="MS") + pd.Timedelta(days=4)
    for i, d in enumerate(months):
        second = i >= 12
        rows += [
            ("A", d, "x", 115.0 if second else 100.0),  # +15 % > 10 %: upsold
            ("B", d, "x", 105.0 if second else 100.0),  # +5 %: not upsold
            ("C", d, "x", 100.0),  # flat in x, adds a big new line y: cross-sell, not upsell
            ("D", d, "x", 110.0 if second else 100.0),  # exactly +10 %: not above it
            ("F", d, "x", 100.0),  # flat revenue, but seats 10 -> 12: upsold by seats
        ]
        if second:
            rows.append(("C", d, "y", 500.0))
    return _tx(rows)


def test_upsell_rate_threshold_hand_computed():
    months = pd.date_range("2023-04-01", "2025-03-01", freq="MS")
    usage = pd.DataFrame(
        {
            "account_id": "F",
            "month": months,
            "seats_purchased": [10] * 12 + [12] * 12,  # +20 % seats
            "seats_active": 5,
        }
    )
    r = compute_kpis(_upsell_frame(), _acc("ABCDEF"), usage=usage, as_of="2025-03-31")
    q = "FY2024-Q4"  # trailing 12 months 2024-04..2025-03 vs 2023-04..2024-03
    up = {a: _val(r, a, q, "upsell_rate") for a in "ABCDEF"}
    # A +15 % > 10 %; B +5 %; C flat in x (its new line y is cross-sell); D exactly +10 %
    assert up["A"] == 1 and up["B"] == 0 and up["C"] == 0 and up["D"] == 0
    assert up["F"] == 1  # seats grew 20 % at flat revenue
    assert math.isnan(up["E"])  # not a customer
    assert _port(r, q, "upsell_rate") == pytest.approx(2 / 5)
    assert _port(r, q, "upsell_rate", col="n") == 5
    # 24 months of history are needed: undefined before
    assert math.isnan(_port(r, "FY2024-Q3", "upsell_rate"))
    # without the seats F is flat; a 4 % threshold counts B (+5 %) and D (+10 %) too
    low = compute_kpis(
        _upsell_frame(),
        _acc("ABCDEF"),
        as_of="2025-03-31",
        settings=KpiSettings(upsell_threshold=0.04),
    )
    assert _val(low, "F", q, "upsell_rate") == 0
    assert _port(low, q, "upsell_rate") == pytest.approx(3 / 5)


# --------------------------------------------------------------------------- adoption & success


def test_time_to_adoption_and_retention_after_adoption():
    tx = _tx([("A", "2023-04-10", "x", 1.0), ("B", "2026-03-01", "x", 1.0)])
    contracts = pd.DataFrame(
        {
            "contract_id": ["k1", "k2", "k3", "k4"],
            "account_id": ["A", "A", "B", "C"],
            "start_date": pd.to_datetime(["2023-04-01", "2023-05-01", "2023-06-01", "2024-01-01"]),
            "end_date": pd.to_datetime([None, None, None, None]),
            "annual_value": [1.0, 1.0, 1.0, 1.0],
            "status": ["active", "active", "churned", "active"],
            "signed_date": pd.to_datetime(["2023-04-01", "2023-05-01", "2023-06-01", "2024-01-01"]),
            "go_live_date": pd.to_datetime(["2023-05-01", "2023-08-01", "2023-09-01", None]),
            "churn_date": pd.to_datetime([None, None, "2024-10-01", None]),
        }
    )
    r = compute_kpis(tx, _acc("ABC"), contracts=contracts, as_of="2026-03-31", settings=FY)
    # A: 30 and 92 days -> median 61; B: 92 days
    assert _val(r, "A", "FY2023", "time_to_adoption") == 61
    assert _port(r, "FY2023", "time_to_adoption") == 92  # median of 30, 92, 92
    assert _val(r, "A", "FY2023", "time_to_adoption", col="n") == 2
    # retention at the end of FY2024 (2025-03-31): A and B live >= 12 months, B churned
    assert _val(r, "A", "FY2024", "retention_after_adoption") == 1
    assert _val(r, "B", "FY2024", "retention_after_adoption") == 0
    assert math.isnan(_val(r, "C", "FY2024", "retention_after_adoption"))  # never live
    assert _port(r, "FY2024", "retention_after_adoption") == pytest.approx(0.5)
    # at the end of FY2023 nobody has been live 12 months yet
    assert math.isnan(_port(r, "FY2023", "retention_after_adoption"))


def test_poc_success_and_conversion():
    tx = _tx([("A", "2024-04-10", "x", 1.0)])
    opp = pd.DataFrame(
        {
            "opportunity_id": [f"o{i}" for i in range(7)],
            "account_id": ["A", "A", "B", "C", "A", "D", "D"],
            "created_date": pd.to_datetime(["2024-01-01"] * 7),
            "close_date": pd.to_datetime(
                [
                    "2024-05-01",  # A PoC won
                    "2024-06-01",  # A PoC lost
                    "2024-05-15",  # B PoC won, never converts
                    "2024-06-10",  # C PoC open: not closed, ignored
                    "2024-09-01",  # A non-PoC won 4 months after its PoC
                    "2025-06-01",  # D PoC won late: window still open at as-of
                    None,
                ]
            ),
            "stage": [
                "closed_won",
                "closed_lost",
                "closed_won",
                "proposal",
                "closed_won",
                "closed_won",
                "prospecting",
            ],
            "amount": [1.0] * 7,
            "type": ["new"] * 7,
            "is_poc": [True, True, True, True, False, True, False],
        }
    )
    r = compute_kpis(tx, _acc("ABCD"), opportunities=opp, as_of="2025-09-30", settings=FY)
    assert _val(r, "A", "FY2024", "poc_success_rate") == 0.5
    assert _val(r, "B", "FY2024", "poc_success_rate") == 1
    assert math.isnan(_val(r, "C", "FY2024", "poc_success_rate"))
    assert _port(r, "FY2024", "poc_success_rate") == pytest.approx(2 / 3)
    assert _val(r, "A", "FY2024", "poc_conversion") == 1
    assert _val(r, "B", "FY2024", "poc_conversion") == 0  # 12-month window ended
    assert math.isnan(_val(r, "D", "FY2025", "poc_conversion"))  # censored
    assert _port(r, "FY2024", "poc_conversion") == pytest.approx(0.5)
    assert kpi.KpiNote("kpi.note.poc_no_contracts", {}) in r.notes
    assert any("no contracts table" in str(n) for n in r.notes)


def test_utilisation_and_exec_contact():
    tx = _tx([("A", "2024-04-10", "x", 1.0)])
    usage = pd.DataFrame(
        {
            "account_id": ["A", "A", "A", "B"],
            "month": pd.to_datetime(["2024-04-01", "2024-05-01", "2024-06-01", "2024-04-01"]),
            "seats_purchased": [10, 10, 20, 5],
            "seats_active": [5, 10, 10, 5],
        }
    )
    act = pd.DataFrame(
        {
            "account_id": ["A", "A", "A", "B"],
            "date": pd.to_datetime(["2024-04-02", "2024-05-02", "2024-05-03", "2024-05-02"]),
            "kind": ["executive_meeting", "executive_meeting", "qbr", "meeting"],
        }
    )
    r = compute_kpis(tx, _acc("AB"), usage=usage, activities=act, as_of="2024-06-30")
    assert _val(r, "A", "FY2024-Q1", "utilisation") == pytest.approx(25 / 40)
    assert _port(r, "FY2024-Q1", "utilisation") == pytest.approx(30 / 45)
    assert _val(r, "A", "FY2024-Q1", "exec_contact") == 2
    # B never bought: not a customer, so no value and not in the portfolio mean
    assert math.isnan(_val(r, "B", "FY2024-Q1", "exec_contact"))
    assert _port(r, "FY2024-Q1", "exec_contact") == 2  # mean over customers (A)
    # per quarter on a fiscal-year grain: 2 meetings in a year = 0.5 per quarter
    ry = compute_kpis(tx, _acc("AB"), activities=act, as_of="2025-03-31", settings=FY)
    assert _val(ry, "A", "FY2024", "exec_contact") == 0.5


# --------------------------------------------------------------------------- notes & errors


def test_missing_optional_tables_give_notes():
    tx = _tx([("A", "2024-04-10", "x", 1.0)])
    r = compute_kpis(tx, _acc("A"), as_of="2024-06-30")
    expected = {
        "gross_profit",
        "gross_margin",
        "ltv",
        "csat",
        "nps",
        "exec_contact",
        "share_of_wallet",
        "time_to_adoption",
        "poc_success_rate",
        "poc_conversion",
        "utilisation",
        "retention_after_adoption",
    }
    assert set(r.omitted) == expected
    # the reasons are locale keys; the notes hold only the other remarks
    assert r.omitted["nps"] == r.omitted["csat"] == "kpi.omission.no_surveys"
    assert r.omitted["utilisation"] == "kpi.omission.no_usage"
    assert all(n.key != "kpi.note.omitted" for n in r.notes)
    assert set(r.values["kpi_id"]) == {"revenue", "cross_sell_rate", "upsell_rate", "nrr"}
    assert "Net Promoter Score (NPS): not shown (no surveys table)." in kpi.kpi_notes(r)


def test_bad_input_messages():
    tx = _tx([("A", "2024-04-10", "x", 1.0)])
    with pytest.raises(KpiInputError, match=r"transactions: missing column\(s\) \['revenue'\]"):
        compute_kpis(tx.drop(columns="revenue"), _acc("A"))
    with pytest.raises(KpiInputError, match=r"refer to accounts not in accounts.*'Z'"):
        compute_kpis(pd.concat([tx, _tx([("Z", "2024-04-10", "x", 1.0)])]), _acc("A"))
    sv = pd.DataFrame({"account_id": ["A"], "date": pd.to_datetime(["2024-04-02"]), "nps": [12]})
    with pytest.raises(KpiInputError, match="surveys.nps must be 0-10"):
        compute_kpis(tx, _acc("A"), surveys=sv)
    with pytest.raises(ValueError, match="unknown KPI id"):
        KpiSettings(targets={"revnue": KpiTarget(target=1, floor=0)})
    with pytest.raises(ValueError, match="floor must differ"):
        KpiTarget(target=1, floor=1)


def test_input_columns_exist_in_the_contract():
    for table, cols in {**kpi.INPUT_COLUMNS}.items():
        known = {s.name for s in column_specs(table)}
        assert set(cols) <= known, table
        assert set(kpi.OPTIONAL_COLUMNS.get(table, ())) <= known, table


def test_definitions_table_is_complete():
    assert list(KPI_DEFINITIONS["kpi_id"]) == list(kpi.KPI_IDS)
    assert KPI_DEFINITIONS["name_ja"].str.len().gt(0).all()
    assert set(KPI_DEFINITIONS["family"]) == set(kpi.FAMILIES)
    long_ = set(KPI_DEFINITIONS.loc[KPI_DEFINITIONS["horizon"] == "long", "kpi_id"])
    assert {"ltv", "nps", "share_of_wallet", "retention_after_adoption", "exec_contact"} <= long_
    assert {"revenue", "gross_profit", "gross_margin"}.isdisjoint(long_)
    assert set(KpiSettings().targets) == set(kpi.KPI_IDS)


# --------------------------------------------------------------------------- status & trend


def test_status_rules_both_directions():
    m = [0.9, 0.85, 0.8, 0.79, np.nan]
    assert list(kpi_status(m, 0.85, 0.05, True)) == [
        "on_track",
        "on_track",
        "at_risk",
        "off_track",
        "no_data",
    ]
    # lower is better (time to adoption, target 90 days, band 30)
    assert list(kpi_status([60, 90, 120, 121], 90, 30, False)) == [
        "on_track",
        "on_track",
        "at_risk",
        "off_track",
    ]


def test_attainment_scale():
    assert list(kpi.attainment([-50, 0, 30, 100], 30, -50)) == pytest.approx([0, 62.5, 100, 100])
    # lower is better: floor above target
    assert list(kpi.attainment([90, 365, 227.5], 90, 365)) == pytest.approx([100, 0, 50])


@pytest.mark.parametrize(
    ("values", "hib", "expected"),
    [
        ([1, 2, 3, 4], True, "improving"),
        ([4, 3, 2, 1], True, "worsening"),
        ([4, 3, 2, 1], False, "improving"),  # e.g. days to adoption falling
        ([5, 5, 5, 5], True, "flat"),
        ([10, 12, 9, 11, 10], True, "flat"),  # noise: slope CI contains 0
        ([100, 100.1, 100.2, 100.3], True, "flat"),  # clear but negligible (< 2 %)
        ([1, np.nan], True, "insufficient_data"),
    ],
)
def test_trend_rules(values, hib, expected):
    assert trend_test(values, higher_is_better=hib)["trend"] == expected


def test_trend_flat_rule_is_the_slope_confidence_interval():
    # slope 0.8; residuals -0.3, -0.1, 1.1, -0.7 (SSR 1.8); se = sqrt(1.8 / 2 / 5); t(0.95, 2) = 2.92
    y = [10.0, 11.0, 13.0, 12.0]
    r = trend_test(y, ci_level=0.90, flat_tolerance=0.0)
    assert r["slope"] == pytest.approx(0.8)
    half = stats.t.ppf(0.95, 2) * math.sqrt(1.8 / 2 / 5)
    assert r["slope_ci_low"] == pytest.approx(0.8 - half)
    assert r["trend"] == "flat"  # 0.8 - 1.239 < 0
    assert trend_test(y, ci_level=0.50, flat_tolerance=0.0)["trend"] == "improving"


def test_assess_growth_target_and_trend():
    rows = []
    for q, rev in zip(
        ["2024-04-10", "2024-07-10", "2024-10-10", "2025-01-10", "2025-04-10"],
        [100, 110, 120, 130, 140],
        strict=True,
    ):
        rows.append(("A", q, "x", float(rev)))
        rows.append(("B", q, "x", 100.0))
    r = compute_kpis(_tx(rows), _acc("AB"), as_of="2025-06-30")
    t = assess_kpis(r).set_index(["account_id", "kpi_id"])
    # A: 140 vs 100 a year earlier = +40 % against the +5 % target
    assert t.loc[("A", "revenue"), "measure"] == pytest.approx(0.4)
    assert t.loc[("A", "revenue"), "status"] == "on_track"
    assert t.loc[("A", "revenue"), "trend"] == "improving"
    # B: flat revenue: growth 0, within the 5-point band -> at risk, trend flat
    assert t.loc[("B", "revenue"), "status"] == "at_risk"
    assert t.loc[("B", "revenue"), "trend"] == "flat"
    port = assess_kpis(r, level="portfolio").set_index("kpi_id")
    assert port.loc["revenue", "measure"] == pytest.approx(240 / 200 - 1)
    with pytest.raises(ValueError, match="not in the result"):
        assess_kpis(r, period="FY1999")


# --------------------------------------------------------------------------- scorecard


def _scorecard_data():
    tx = _tx(
        [
            ("A", "2024-04-10", "x", 100.0, 50.0),
            ("A", "2025-04-10", "x", 110.0, 60.0),
            ("B", "2024-04-10", "x", 100.0, 90.0),
            ("B", "2025-04-10", "x", 60.0, 55.0),
            ("C", "2025-04-10", "x", 10.0, 5.0),
        ]
    )
    sv = pd.DataFrame(
        {
            "account_id": ["A"] * 5 + ["B"],
            "date": pd.to_datetime(["2025-05-01"] * 6),
            "nps": [10, 9, 9, 8, 3, 0],
            "csat": [5, 4, 4, 4, 3, 1],
        }
    )
    acc = _acc("ABC", wallet=[400.0, 1000.0, np.nan])
    return compute_kpis(tx, acc, surveys=sv, as_of="2025-06-30")


def test_scorecard_contributions_sum_to_health():
    card = balanced_scorecard(_scorecard_data())
    kpi_cols = [c for c in card if c.startswith("contrib_")]
    fam_cols = [c for c in card if c.startswith("family_contrib_")]
    ok = card["health_score"].notna()
    assert ok.all()
    np.testing.assert_allclose(card[kpi_cols].sum(axis=1), card["health_score"])
    np.testing.assert_allclose(card[fam_cols].sum(axis=1), card["health_score"])
    w = [c for c in card if c.startswith("weight_")]
    np.testing.assert_allclose(card[w].sum(axis=1), 1.0)
    assert card["health_score"].between(0, 100).all()
    a, b = card.set_index("account_id").loc["A"], card.set_index("account_id").loc["B"]
    assert a["health_score"] > b["health_score"]


def test_scorecard_hand_computed_and_long_term_weight():
    r = _scorecard_data()
    card = balanced_scorecard(r).set_index("account_id")
    a = card.loc["A"]
    # revenue family (all short): growth +10 % -> 100; GP 50 vs 50 = 0 % -> 30/35 of the
    # way from -30 % to +5 %; margin 50/110 >= 30 % -> 100
    assert a["attain_revenue"] == pytest.approx(100)
    assert a["attain_gross_profit"] == pytest.approx(30 / 35 * 100)
    assert a["attain_gross_margin"] == pytest.approx(100)
    # NPS (5 answers: 3 promoters, 1 detractor) = 40 -> 100; CSAT mean 4.0 -> 100
    assert a["attain_nps"] == pytest.approx(100)
    assert a["attain_csat"] == pytest.approx(100)
    # share of wallet: trailing 12 months 110 / 400 = 0.275 -> 0.275 / 0.40 = 68.75;
    # NRR 1.1 -> 100; cross-sell 0; upsell undefined (needs 24 months of history)
    assert a["attain_share_of_wallet"] == pytest.approx(68.75)
    assert a["attain_cross_sell_rate"] == 0
    assert math.isnan(a["attain_upsell_rate"])
    # expansion: long (SoW, NRR) share 0.5 split equally, short (cross-sell only) 0.5
    assert a["family_score_expansion"] == pytest.approx(0.25 * 68.75 + 0.25 * 100 + 0.5 * 0)
    # B has one survey answer (NPS -100 -> attainment 0), shrunk towards 50:
    z = math.sqrt(1 / 5)
    assert card.loc["B", "attain_nps"] == pytest.approx(z * 0 + (1 - z) * 50)
    # all weight on long-term indicators: the short ones drop out where a long one exists
    long_only = balanced_scorecard(r, settings=KpiSettings(long_term_weight=1.0))
    long_only = long_only.set_index("account_id")
    assert long_only.loc["A", "weight_csat"] == 0
    assert long_only.loc["A", "weight_nps"] > 0
    assert long_only.loc["A", "weight_revenue"] > 0  # revenue family has no long KPI here
    assert long_only.loc["A", "family_score_expansion"] == pytest.approx((68.75 + 100) / 2)


def test_scorecard_portfolio_and_account_targets():
    r = _scorecard_data()
    port = balanced_scorecard(r, level="portfolio")
    assert port["account_id"].tolist() == [kpi.PORTFOLIO_ID]
    assert 0 <= port["health_score"].iloc[0] <= 100
    # per-account plan: A must grow revenue 50 % -> +10 % is short of it
    tgt = pd.DataFrame({"account_id": ["A"], "kpi_id": ["revenue"], "target": [0.5]})
    t = assess_kpis(r, account_targets=tgt).set_index(["account_id", "kpi_id"])
    assert t.loc[("A", "revenue"), "status"] == "off_track"
    assert t.loc[("B", "revenue"), "target"] == pytest.approx(0.05)


# --------------------------------------------------------------------------- planted drivers


@pytest.mark.slow
def test_health_score_recovers_planted_drivers(tmp_path):
    """Accounts with bad planted drivers (low latent NPS, no executive engagement, low
    seat utilisation) must score visibly lower health than accounts with good ones.

    The generator makes churn depend on these drivers and makes them observable
    through surveys, executive meetings and usage; the scorecard sees only the
    observed tables. Checked on all accounts (the 15-point bar) and, more strictly,
    on the accounts still alive at the as-of date (so the gap is not only churn).

    Executive engagement is not a constant trait any more (``ground_truth.json``,
    ``churn.time_varying``): a two-state chain per account switches it on and off
    month by month, so the truth's ``exec_engaged`` (the starting state) says
    nothing about the last year. What is planted is that executive meetings
    happen only in engaged months (1/3 a month): an account with one in the 12
    months up to its churn (or the as-of date) was engaged then, and one without
    was almost surely not (an engaged year without a meeting has probability
    (2/3)^12 < 1 %). That recent engagement is the driver checked here."""
    synthetic = pytest.importorskip("kam_analysis.synthetic")
    out = tmp_path / "demo"
    info = synthetic.generate_dataset(out, n_accounts=800, seed=5)
    t = {
        n: pd.read_parquet(out / f"{n}.parquet")
        for n in ("accounts", "transactions", "contracts", "opportunities")
        + ("activities", "surveys", "usage")
    }
    truth = pd.read_parquet(out / "ground_truth_accounts.parquet")
    # engaged in the 12 months before the account's end of observation: [stop - 12 months,
    # stop), stop = churn_date (no row on or after it) or the day after the as-of date
    stop = truth.set_index("account_id")["churn_date"].fillna(
        pd.Timestamp(info["as_of"]) + pd.Timedelta(days=1)
    )
    ex = t["activities"][t["activities"]["kind"] == "executive_meeting"]
    ex_stop = ex["account_id"].map(stop)
    recent = ex[(ex["date"] < ex_stop) & (ex["date"] >= ex_stop - pd.DateOffset(months=12))]
    truth["engaged_12m"] = truth["account_id"].isin(recent["account_id"])
    result = compute_kpis(
        t["transactions"],
        t["accounts"],
        contracts=t["contracts"],
        opportunities=t["opportunities"],
        activities=t["activities"],
        surveys=t["surveys"],
        usage=t["usage"],
        as_of=info["as_of"],
    )
    card = balanced_scorecard(result).merge(truth, on="account_id")
    # every account that has not left has a health score; accounts long gone are no
    # longer customers and may have no KPI left to score
    st = kpi.churn_status(
        t["accounts"],
        as_of=info["as_of"],
        contracts=t["contracts"],
        transactions=t["transactions"],
    ).set_index("account_id")
    live = ~st["churned"].reindex(card["account_id"]).to_numpy(dtype=bool)
    assert len(card) == 800 and card.loc[live, "health_score"].notna().all()
    card = card[card["health_score"].notna()]

    def groups(d):
        bad = (d["nps_latent"] < 6.5) & ~d["engaged_12m"] & (d["utilisation"] < 0.65)
        good = (d["nps_latent"] > 7.5) & d["engaged_12m"] & (d["utilisation"] > 0.75)
        assert bad.sum() >= 5 and good.sum() >= 5
        return d.loc[bad, "health_score"], d.loc[good, "health_score"]

    bad, good = groups(card)
    assert good.mean() - bad.mean() >= 15
    assert stats.mannwhitneyu(good, bad, alternative="greater").pvalue < 1e-3
    bad_alive, good_alive = groups(card[~card["churned"]])
    assert good_alive.mean() - bad_alive.mean() >= 10
    assert stats.mannwhitneyu(good_alive, bad_alive, alternative="greater").pvalue < 0.01
    # the relationship family carries the signal: executive contact (recent engagement)
    # and NPS (the planted latent level, around which the observed NPS drifts)
    rel = card.dropna(subset=["family_score_relationship"])
    score = rel["family_score_relationship"]
    engaged = rel["engaged_12m"].to_numpy(dtype=bool)
    assert score[engaged].mean() - score[~engaged].mean() >= 20
    assert stats.mannwhitneyu(score[engaged], score[~engaged], alternative="greater").pvalue < 1e-6
    promoters, detractors = score[rel["nps_latent"] > 7.5], score[rel["nps_latent"] < 6.5]
    assert promoters.mean() - detractors.mean() >= 5
    assert stats.mannwhitneyu(promoters, detractors, alternative="greater").pvalue < 0.01


# --------------------------------------------------------------------------- report helpers


def test_definitions_in_japanese_and_lookup():
    assert KPI_DEFINITIONS["definition_ja"].str.len().gt(5).all()
    assert "推奨者" in kpi.kpi_definition("nps", "ja")
    assert (
        kpi.kpi_definition("nps", "en")
        == KPI_DEFINITIONS.set_index("kpi_id").loc["nps", "definition"]
    )
    with pytest.raises(KeyError, match="unknown KPI 'foo'"):
        kpi.kpi_definition("foo")


def test_kpi_notes_name_the_hidden_kpis_in_both_languages():
    tx = _tx([("A", "2024-04-10", "x", 100.0), ("A", "2025-04-10", "x", 120.0)])
    r = compute_kpis(tx, _acc("A"), as_of="2025-06-30", settings=FY)
    en = kpi.kpi_notes(r, "en")
    assert "Utilisation: not shown (no usage table)." in en
    assert "Net Promoter Score (NPS): not shown (no surveys table)." in en
    # one line per omitted KPI, nothing repeated from the raw "omitted" notes
    assert not any(": omitted," in n for n in en)
    assert sum("not shown" in n for n in en) == len(r.omitted)
    ja = kpi.kpi_notes(r, "ja")
    assert "利用率: 表示なし(usage テーブルがない)。" in ja
    # the history note is translated, with its period label kept
    assert any(n.startswith("クロスセル率・アップセル率・NRR: FY2025 から算出") for n in ja)
    assert len(ja) == len(en)
    with pytest.raises(ValueError, match="lang"):
        kpi.kpi_notes(r, "de")


def test_kpi_notes_are_locale_keys_rendered_in_both_languages():
    """A note is made as (key, values) and rendered with ``t`` when shown: no translation
    of English sentences."""
    tx = _tx(
        [
            ("A", "2024-04-10", "x", 100.0, 40.0),
            ("A", "2025-04-10", "x", 120.0),
            ("A", "2025-05-10", "x", 80.0),
            ("B", "2025-07-10", "x", 50.0, 10.0),
        ]
    )
    opp = pd.DataFrame(
        {
            "account_id": ["A"],
            "stage": ["closed_won"],
            "close_date": pd.to_datetime(["2025-05-01"]),
            "is_poc": [True],
        }
    )
    r = compute_kpis(tx, _acc("AB"), opportunities=opp, as_of="2025-06-30", settings=FY)
    assert r.notes == [
        kpi.KpiNote("kpi.note.later_lines", {"n": 1, "date": "2025-06-30"}),
        kpi.KpiNote("kpi.note.no_cost_lines", {"n": 2}),
        kpi.KpiNote("kpi.note.history_from", {"period": "FY2025"}),
        kpi.KpiNote("kpi.note.poc_no_contracts", {}),
    ]
    # a (key, values) pair, so Page.notes renders it in the report language
    key, values = r.notes[0]
    assert (key, dict(values)) == ("kpi.note.later_lines", {"n": 1, "date": "2025-06-30"})
    assert str(r.notes[1]) == r.notes[1].text("en")
    en = kpi.kpi_notes(r, "en")
    ja = kpi.kpi_notes(r, "ja")
    omitted = len(r.omitted)
    assert en[omitted:] == [
        "1 transaction line(s) after the as-of date 2025-06-30 ignored.",
        "gross_profit, gross_margin: 2 transaction line(s) without cost left out of both.",
        "cross_sell_rate, upsell_rate, nrr: available from FY2025 (12 months of history needed).",
        "poc_conversion: no contracts table; only won non-PoC opportunities count as conversion.",
    ]
    assert ja[omitted:] == [
        "基準日 2025-06-30 より後の取引明細 1 件は対象外。",
        "粗利・粗利率: 原価のない取引明細 2 件を除外。",
        "クロスセル率・アップセル率・NRR: FY2025 から算出(12か月の履歴が必要)。",
        "PoCから本契約への転換率: contracts テーブルがないため、PoC以外の受注案件のみを転換とみなす。",
    ]
    assert "Lifetime value (LTV): not shown (no LTV estimates were given to the scorecard)." in en
    assert (
        "ライフタイムバリュー(LTV): 表示なし(LTVの推定値が渡されていない(先にLTVモジュールを実行))。"
        in ja
    )
    # without a year of history
    short = compute_kpis(tx, _acc("AB"), as_of="2024-06-30", settings=FY)
    assert kpi.KpiNote("kpi.note.history_none", {}) in short.notes
    assert (
        "クロスセル率・アップセル率・NRR: 12か月の履歴がある期間がないため算出できない。"
        in kpi.kpi_notes(short, "ja")
    )


def test_kpi_names_definitions_and_families_come_from_the_locale_files():
    from kam_analysis.core.i18n import t

    defs = KPI_DEFINITIONS.set_index("kpi_id")
    for k in kpi.KPI_IDS:
        assert kpi.kpi_label(k, "en") == defs.loc[k, "name_en"] == t(f"kpi.name.{k}", "en")
        assert kpi.kpi_label(k, "ja") == defs.loc[k, "name_ja"] == t(f"kpi.name.{k}", "ja")
        assert kpi.kpi_definition(k, "ja") == defs.loc[k, "definition_ja"]
    assert kpi.kpi_label("nps", "ja") == "ネットプロモータースコア(NPS)"
    assert kpi.format_kpi_value(2.5, "per_quarter", lang="ja") == "四半期あたり 2.50 回"
    assert kpi.format_kpi_value(1234, "days") == "1,234 days"
    with pytest.raises(ValueError, match="unknown language"):
        kpi.format_kpi_value(1.0, "days", lang="de")


def test_kpi_target_series_draws_growth_targets_against_last_year():
    tx = _tx(
        [
            ("A", "2024-04-10", "x", 100.0),
            ("B", "2024-05-10", "x", 100.0),
            ("A", "2025-04-10", "x", 150.0),
            ("B", "2025-05-10", "x", 30.0),
            ("A", "2025-07-10", "x", 10.0),
        ]
    )
    sv = pd.DataFrame({"account_id": ["A"], "date": pd.to_datetime(["2025-05-01"]), "nps": [10]})
    r = compute_kpis(tx, _acc("AB"), surveys=sv, as_of="2025-07-15")
    s = kpi.kpi_target_series(r).set_index(["kpi_id", "period"])
    # quarterly: FY2025-Q1 revenue 180 vs 200 a year earlier -> target 200 * 1.05 = 210,
    # at-risk boundary 200 * (1 + 0.05 - 0.05) = 200
    assert s.loc[("revenue", "FY2025-Q1"), "value"] == 180
    assert s.loc[("revenue", "FY2025-Q1"), "target_value"] == pytest.approx(210)
    assert s.loc[("revenue", "FY2025-Q1"), "at_risk_value"] == pytest.approx(200)
    assert np.isnan(s.loc[("revenue", "FY2024-Q1"), "target_value"])  # no year before
    # absolute target: NPS >= 30, at risk down to 20
    assert (s.xs("nps")["target_value"] == 30).all()
    assert (s.xs("nps")["at_risk_value"] == 20).all()
    # the partial quarter FY2025-Q2 (as of 15 July) is left out by default
    assert "FY2025-Q2" not in s.index.get_level_values("period")
    full = kpi.kpi_target_series(r, complete_only=False)
    assert "FY2025-Q2" in set(full["period"])
    # lower is better: the at-risk boundary lies above the target
    settings = KpiSettings(
        targets={"revenue": KpiTarget(target=150.0, at_risk_band=20.0, floor=0.0)}
        | {k: v for k, v in KpiSettings().targets.items() if k != "revenue"}
    )
    acc_level = kpi.kpi_target_series(r, level="account", settings=settings)
    a = acc_level[(acc_level["account_id"] == "A") & (acc_level["kpi_id"] == "revenue")]
    assert (a["target_value"] == 150).all() and (a["at_risk_value"] == 130).all()
    with pytest.raises(ValueError, match="level"):
        kpi.kpi_target_series(r, level="team")


def test_format_kpi_values_and_targets():
    f = kpi.format_kpi_value
    assert f(27_118_070_000, "currency") == "¥27.1B"
    assert f(27_118_070_000, "currency", lang="ja") == "¥271.2億"
    assert f(0.3173, "ratio") == "31.7%"
    assert f(-5.08, "score_-100_100") == "-5"
    assert f(3.873, "score_1_5") == "3.87"
    assert f(0.4285, "per_quarter") == "0.43 per quarter"
    assert f(26, "days", lang="ja") == "26 日"
    assert f(float("nan"), "ratio") == "–"
    targets = KpiSettings().targets
    assert kpi.format_kpi_target("revenue", targets["revenue"]) == "≥ +5.0% vs a year earlier"
    assert (
        kpi.format_kpi_target("revenue", targets["revenue"], lang="ja") == "前年同期比 +5.0% 以上"
    )
    assert kpi.format_kpi_target("time_to_adoption", targets["time_to_adoption"]) == "≤ 90 days"
    assert kpi.format_kpi_target("nps", targets["nps"], lang="ja") == "+30 以上"
    assert kpi.format_kpi_target("ltv", targets["ltv"]) == "≥ percentile 50"
    assert kpi.format_kpi_target("nps", None) == "–"


def test_scorecard_table_rows_text_and_order():
    r = _scorecard_data()
    port = assess_kpis(r, level="portfolio")
    table = kpi.scorecard_table(port, lang="en", settings=r.settings)
    assert list(table.columns) == [
        "kpi_id", "kpi", "family", "horizon", "value", "target", "status", "trend", "definition"
    ]  # fmt: skip
    assert len(table) == len(r.computed)
    fam = [
        kpi.FAMILIES.index(f)
        for f in KPI_DEFINITIONS.set_index("kpi_id").loc[table["kpi_id"], "family"]
    ]
    assert fam == sorted(fam)
    rev = table.set_index("kpi_id").loc["revenue"]
    # portfolio revenue FY2025-Q1: 180 vs 200 a year earlier -> -10 %
    assert rev["value"] == "¥180 (-10.0%)"
    assert rev["status"] == "off_track" and rev["family"] == "Revenue"
    assert rev["horizon"] == "Short term"
    ja = kpi.scorecard_table(port, lang="ja", settings=r.settings).set_index("kpi_id")
    assert ja.loc["nps", "kpi"] == "ネットプロモータースコア(NPS)"
    assert ja.loc["nps", "horizon"] == "中長期" and ja.loc["nps", "family"] == "関係性"
    with pytest.raises(ValueError, match="one row per KPI"):
        kpi.scorecard_table(assess_kpis(r))
    with pytest.raises(ValueError, match="lacks column"):
        kpi.scorecard_table(port.drop(columns="status"))


# --------------------------------------------------------------------------- health & churn


def test_health_shortfall_adds_up_to_the_missing_points():
    card = balanced_scorecard(_scorecard_data())
    loss = kpi.health_shortfall(card)
    total = loss.groupby("account_id")["points_lost"].sum()
    health = card.set_index("account_id")["health_score"]
    np.testing.assert_allclose(total.reindex(health.index), 100 - health)
    # hand check: points lost = weight x (100 - attainment)
    a = loss[loss["account_id"] == "A"].set_index("kpi_id")
    row = card.set_index("account_id").loc["A"]
    assert a.loc["gross_profit", "points_lost"] == pytest.approx(
        row["weight_gross_profit"] * (100 - 30 / 35 * 100)
    )
    assert (a["points_lost"].diff().dropna() <= 0).all()  # largest first
    assert (loss["weight"] > 0).all()
    with pytest.raises(ValueError, match="account_id"):
        kpi.health_shortfall(card.drop(columns="account_id"))


def _card(rows):
    """rows: (account, health, {kpi: (weight, attainment)})"""
    recs = []
    for acc, health, parts in rows:
        rec = {"account_id": acc, "health_score": health, "n_kpis": len(parts)}
        for k, (w, a) in parts.items():
            rec |= {f"weight_{k}": w, f"attain_{k}": a, f"contrib_{k}": w * a}
        recs.append(rec)
    return pd.DataFrame(recs).fillna(
        {c: 0.0 for c in recs[0] if c.startswith(("weight_", "contrib_"))}
    )


def test_accounts_at_risk_picks_lowest_live_key_and_growth_accounts():
    parts = lambda nps, ex: {"nps": (0.5, nps), "exec_contact": (0.5, ex)}  # noqa: E731
    card = _card(
        [
            ("K1", 20.0, parts(0, 40)),  # key, at risk: NPS loses 50, exec 30
            ("K2", 90.0, parts(100, 80)),  # key, healthy
            ("G1", 45.0, parts(50, 40)),  # growth, at risk
            ("G2", 5.0, parts(0, 10)),  # growth, churned
            ("S1", 1.0, parts(0, 2)),  # standard: not listed
            ("K3", 50.0, parts(50, 50)),  # key, exactly at the bound
        ]
    )
    tiers = pd.Series(
        {"K1": "key", "K2": "key", "K3": "key", "G1": "growth", "G2": "growth", "S1": "standard"}
    )
    churn = pd.DataFrame({"account_id": ["G2", "S1", "K1"], "churned": [True, True, False],
                          "days_since_purchase": [400.0, 500.0, 10.0]})  # fmt: skip
    out = kpi.accounts_at_risk(card, tiers, churn=churn, top_k=2)
    assert out["account_id"].tolist() == ["K1", "G1", "K3"]
    assert out.attrs["excluded_churned"] == 1  # G2; S1 is not in the tiers shown
    k1 = out.iloc[0]
    assert k1["drivers"] == "Net Promoter Score (NPS) −50 pts; Executive contact frequency −30 pts"
    assert k1["points_lost_top"] == pytest.approx(50)
    assert k1["days_since_purchase"] == 10 and np.isnan(out.iloc[1]["days_since_purchase"])
    # tiers as a frame, a stricter bound, fewer reasons, Japanese
    frame = tiers.rename_axis("account_id").rename("tier").reset_index()
    strict = kpi.accounts_at_risk(card, frame, churn=churn, max_health=30, top_k=1, lang="ja")
    assert strict["account_id"].tolist() == ["K1"]
    assert strict["drivers"].iloc[0] == "ネットプロモータースコア(NPS) −50点"
    # without churn information the churned account is listed first
    assert kpi.accounts_at_risk(card, tiers)["account_id"].iloc[0] == "G2"
    assert kpi.accounts_at_risk(card, tiers, n=1)["account_id"].tolist() == ["G2"]
    with pytest.raises(ValueError, match="churn needs columns"):
        kpi.accounts_at_risk(card, tiers, churn=churn.drop(columns="churned"))
    with pytest.raises(ValueError, match="health_score"):
        kpi.accounts_at_risk(card.drop(columns="health_score"), tiers)


def test_churn_status_rules():
    acc = _acc(["lapsed", "contract", "came_back", "running", "never", "later", "active"])
    tx = _tx(
        [
            ("lapsed", "2023-01-10", "x", 10.0),
            ("contract", "2025-05-01", "x", 10.0),
            ("came_back", "2025-05-01", "x", 10.0),
            ("running", "2023-01-01", "x", 10.0),
            ("later", "2025-06-01", "x", 10.0),
            ("active", "2025-06-01", "x", 10.0),
        ]
    )
    d = pd.to_datetime
    contracts = pd.DataFrame(
        {
            "account_id": ["contract", "contract", "came_back", "came_back", "running", "later"],
            "status": ["churned", "expired", "churned", "active", "active", "churned"],
            "start_date": d(["2024-01-01", "2024-03-01", "2024-01-01", "2025-02-01", "2023-01-01", "2025-01-01"]),
            "end_date": d(["2025-01-31", "2024-06-30", "2025-01-31", "2026-01-31", "2026-12-31", "2025-12-31"]),
            "churn_date": d(["2025-01-31", None, "2025-01-31", None, None, "2025-09-30"]),
        }
    )  # fmt: skip
    out = kpi.churn_status(acc, as_of="2025-06-30", contracts=contracts, transactions=tx)
    out = out.set_index("account_id")
    # contract churned in January, no later contract, nothing running (the side contract
    # that started before the churn does not count as a return)
    assert out.loc["contract", "contract_churned"] and out.loc["contract", "churned"]
    assert not out.loc["contract", "lapsed"]  # bought in May: only the contract says so
    assert not out.loc["came_back", "churned"]  # new contract after the churn, running
    assert not out.loc["running", "churned"]  # no purchase for 2.5 years, contract runs
    assert out.loc["lapsed", "lapsed"] and out.loc["lapsed", "churned"]
    assert (
        out.loc["lapsed", "days_since_purchase"]
        == (pd.Timestamp("2025-06-30") - pd.Timestamp("2023-01-10")).days
    )
    assert not out.loc["never", "churned"]  # never bought: not a churn
    assert not out.loc["later", "churned"]  # churn date after the as-of date
    assert out.loc["later", "running_contract"]
    assert not out.loc["active", "churned"]
    assert out["churned"].sum() == 2
    # without the contracts and with a 1-month window, the May buyer (60 days ago) has lapsed
    short = kpi.churn_status(acc, as_of="2025-06-30", transactions=tx, lapse_months=1)
    assert short.set_index("account_id").loc["contract", "lapsed"]
    with pytest.raises(KpiInputError, match="account_id"):
        kpi.churn_status(pd.DataFrame({"id": [1]}), as_of="2025-06-30")
    with pytest.raises(ValueError, match="lapse_months"):
        kpi.churn_status(acc, as_of="2025-06-30", lapse_months=0)
    with pytest.raises(KpiInputError, match="status"):
        kpi.churn_status(acc, as_of="2025-06-30", contracts=contracts.drop(columns="status"))


def test_tier_health_and_summary():
    card = pd.DataFrame(
        {"account_id": list("ABCDE"), "health_score": [10.0, 30.0, 50.0, 80.0, np.nan]}
    )
    tiers = pd.Series({"A": "key", "B": "key", "C": "key", "D": "standard", "E": "standard"})
    churn = pd.DataFrame({"account_id": ["A"], "churned": [True]})
    h = kpi.tier_health(card, tiers, churn=churn)
    assert h["churned"].tolist() == [True, False, False, False, False]
    s = kpi.tier_health_summary(h, order=("key", "growth", "standard")).set_index("tier")
    assert list(s.index) == ["key", "standard"]
    assert s.loc["key", "accounts"] == 2 and s.loc["key", "churned"] == 1
    assert s.loc["key", "median_health"] == pytest.approx(40.0)  # A churned: median of 30, 50
    assert s.loc["standard", "accounts"] == 1  # E has no health score
    with pytest.raises(ValueError, match="tier_health"):
        kpi.tier_health_summary(h.drop(columns="churned"))


@pytest.mark.slow
def test_churn_status_recovers_planted_churn(tmp_path):
    """Generated accounts that churned (ground truth) are found from the observed tables
    alone; an account flagged as churned has really left."""
    synthetic = pytest.importorskip("kam_analysis.synthetic")
    out = tmp_path / "demo"
    info = synthetic.generate_dataset(out, n_accounts=400, seed=3)
    t = {
        n: pd.read_parquet(out / f"{n}.parquet") for n in ("accounts", "transactions", "contracts")
    }
    truth = pd.read_parquet(out / "ground_truth_accounts.parquet").set_index("account_id")
    st = kpi.churn_status(
        t["accounts"], as_of=info["as_of"], contracts=t["contracts"], transactions=t["transactions"]
    )
    st = st.set_index("account_id").join(truth[["churned"]].add_suffix("_true"))
    flagged = st[st["churned"]]
    assert len(flagged) >= 50
    assert flagged["churned_true"].mean() >= 0.98  # precision
    assert st.loc[st["churned_true"], "churned"].mean() >= 0.85  # recall
    # contract-based flags are exact for contractual customers
    assert st.loc[st["contract_churned"], "churned_true"].all()


# --------------------------------------------------------------------------- health validation


def test_mann_whitney_auc_hand_computed():
    # event pairs: 0.35 > 0.1 yes, 0.35 > 0.4 no, 0.8 > 0.1 yes, 0.8 > 0.4 yes -> 3 / 4
    assert kpi.mann_whitney_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert kpi.mann_whitney_auc([1.0, 1.0], [True, False]) == 0.5  # a tie counts 1/2
    assert kpi.mann_whitney_auc([3.0, 2.0, np.nan], [False, True, True]) == 0.0
    assert math.isnan(kpi.mann_whitney_auc([1.0, 2.0], [False, False]))
    # agrees with scipy's U statistic
    rng = np.random.default_rng(1)
    x, e = rng.normal(size=200), rng.random(200) < 0.3
    u = stats.mannwhitneyu(x[e], x[~e]).statistic
    assert kpi.mann_whitney_auc(x, e) == pytest.approx(u / (e.sum() * (~e).sum()))
    with pytest.raises(ValueError, match="length"):
        kpi.mann_whitney_auc([1.0], [True, False])


def _planted_families(n, seed):
    """Four family scores; churn driven by the relationship family alone."""
    rng = np.random.default_rng(seed)
    scores = pd.DataFrame(rng.uniform(0, 100, size=(n, 4)), columns=list(kpi.FAMILIES))
    logit = -1.0 - 4.0 * (scores["relationship"] - 50) / 50
    event = rng.random(n) < 1 / (1 + np.exp(-logit))
    return scores, event


def _health(scores, weights):
    w = pd.Series(weights)[scores.columns]
    return (scores * w).sum(axis=1) / w.sum()


def test_fitted_family_weights_recover_the_planted_driver_out_of_sample():
    fit_scores, fit_event = _planted_families(3000, seed=0)
    w = kpi.fit_family_weights(fit_scores, fit_event, min_events=20)
    assert w is not None and sum(w.values()) == pytest.approx(1.0)
    assert w["relationship"] > 0.7
    assert w["relationship"] == max(w.values())
    # validated on a fresh sample: fitted weights rank churn clearly better than chance
    # and better than equal weights
    val_scores, val_event = _planted_families(3000, seed=1)
    auc_fit = kpi.mann_whitney_auc(-_health(val_scores, w), val_event)
    auc_eq = kpi.mann_whitney_auc(-_health(val_scores, dict.fromkeys(kpi.FAMILIES, 1)), val_event)
    assert auc_fit > 0.75
    assert auc_fit > auc_eq + 0.1
    # too few events: no fit
    assert kpi.fit_family_weights(fit_scores[:40], fit_event[:40], min_events=20) is None


def test_health_under_other_weights_is_the_scorecards(demo_dir):
    """The validation scores other family weights from one scorecard, as the scorecard would."""
    d = demo_dir()
    t = {n: pd.read_parquet(d / f"{n}.parquet") for n in ("accounts", "transactions", "surveys")}
    res = kpi.compute_kpis(
        t["transactions"], t["accounts"], surveys=t["surveys"], as_of="2025-12-31"
    )
    card = kpi.balanced_scorecard(res)
    families = [c.removeprefix("family_score_") for c in card if c.startswith("family_score_")]
    assert len(families) >= 3 and card["health_score"].isna().any()  # accounts without data
    rng = np.random.default_rng(3)
    cases = [dict(zip(families, rng.uniform(0, 1, len(families)), strict=True)) for _ in range(3)]
    cases.append({families[0]: 1.0})  # one family: NaN where it has no data
    for weights in cases:
        expected = kpi.balanced_scorecard(res, family_weights=weights)["health_score"]
        got = kpi._weighted_health(card, weights)
        np.testing.assert_allclose(got, expected.to_numpy(), rtol=1e-12, atol=1e-9)
    only_first = kpi._weighted_health(card, {families[0]: 1.0})
    np.testing.assert_array_equal(np.isnan(only_first), card[f"family_score_{families[0]}"].isna())


def test_validate_health_windows_and_fallback(demo_dir):
    d = demo_dir()
    t = {n: pd.read_parquet(d / f"{n}.parquet") for n in ("accounts", "transactions", "contracts")}
    as_of = t["transactions"]["date"].max()
    hv = kpi.validate_health(
        t["transactions"], t["accounts"], contracts=t["contracts"], as_of=as_of
    )
    h = pd.DateOffset(months=12)
    assert hv.validation_window == (as_of - h, as_of)
    assert hv.fit_window == (as_of - h - h, as_of - h)  # fitted strictly before
    row = hv.summary.set_index("weights").loc["configured"]
    assert 0 < row["events"] < row["n"] and 0 <= row["auc"] <= 1
    if hv.fit_events < KpiSettings().health_min_events:
        assert not hv.fitted and hv.reason == "kpi.health_reason.few_events"
        assert hv.weights == hv.configured
    # one event is enough when asked: fitted weights, validated beside the configured
    loose = kpi.validate_health(
        t["transactions"],
        t["accounts"],
        contracts=t["contracts"],
        as_of=as_of,
        settings=KpiSettings(health_min_events=1),
    )
    assert loose.fitted and loose.reason is None
    assert list(loose.summary["weights"]) == ["configured", "fitted"]
    assert sum(loose.weights.values()) == pytest.approx(1.0)
    off = kpi.validate_health(
        t["transactions"], t["accounts"], as_of=as_of, settings=KpiSettings(health_fit=False)
    )
    assert off.reason == "kpi.health_reason.off" and off.weights == off.configured
    early = kpi.validate_health(t["transactions"], t["accounts"], as_of="2000-01-01")
    assert early.reason == "kpi.health_reason.no_history" and early.summary.empty


def test_poc_conversion_window_bounds_and_no_won_poc():
    tx = _tx([("A", "2024-04-10", "x", 1.0)])

    def opp(rows):
        ids, stages, pocs, closes = zip(*rows, strict=True)
        return pd.DataFrame(
            {
                "opportunity_id": [f"o{i}" for i in range(len(rows))],
                "account_id": list(ids),
                "created_date": pd.to_datetime(["2024-01-01"] * len(rows)),
                "close_date": pd.to_datetime(list(closes)),
                "stage": list(stages),
                "amount": [1.0] * len(rows),
                "type": ["new"] * len(rows),
                "is_poc": list(pocs),
            }
        )

    won, lost = "closed_won", "closed_lost"
    rows = [
        ("A", won, True, "2024-05-31"),  # window to 2025-05-31, the last day included
        ("A", won, False, "2025-05-31"),
        ("B", won, True, "2024-05-31"),  # a conversion the same day does not count,
        ("B", won, False, "2024-05-31"),  # nor one a day after the window,
        ("B", won, False, "2025-06-01"),
        ("C", won, False, "2024-06-01"),  # nor another account's
        ("C", lost, True, "2024-05-01"),
    ]
    r = compute_kpis(tx, _acc("ABC"), opportunities=opp(rows), as_of="2025-09-30", settings=FY)
    assert _val(r, "A", "FY2024", "poc_conversion") == 1
    assert _val(r, "B", "FY2024", "poc_conversion") == 0
    assert math.isnan(_val(r, "C", "FY2024", "poc_conversion"))  # no won PoC
    no_won = opp([("A", lost, True, "2024-05-01"), ("B", won, False, "2024-06-01")])
    r = compute_kpis(tx, _acc("AB"), opportunities=no_won, as_of="2025-09-30", settings=FY)
    conv = r.values[r.values["kpi_id"] == "poc_conversion"]
    assert conv["value"].isna().all() and len(conv) > 0


@pytest.mark.parametrize(
    ("period", "as_of"),
    [("quarter", None), ("month", "2025-11-17"), ("quarter", "2025-02-10")],
)
def test_recent_periods_keep_the_full_history_values_and_scorecard(demo_context, period, as_of):
    ctx = demo_context()
    settings = KpiSettings(period=period)
    kw = dict(**ctx.kpi_tables(), as_of=as_of or ctx.as_of, settings=settings)
    full = kpi.compute_kpis(ctx.monthly_lines, ctx.frame("accounts"), **kw)
    n = kpi.assessed_periods(settings)
    part = kpi.compute_kpis(ctx.monthly_lines, ctx.frame("accounts"), **kw, recent_periods=n)
    done = full.periods.loc[full.periods["complete"], "period"].tolist()
    kept = set(done[-n:]) | set(full.periods.loc[~full.periods["complete"], "period"])
    assert set(part.values["period"]) == kept and len(kept) < len(full.periods)
    expected = full.values[full.values["period"].isin(kept)].reset_index(drop=True)
    pd.testing.assert_frame_equal(part.values.reset_index(drop=True), expected)
    pd.testing.assert_frame_equal(part.portfolio, full.portfolio)
    pd.testing.assert_frame_equal(kpi.balanced_scorecard(part), kpi.balanced_scorecard(full))
    pd.testing.assert_frame_equal(kpi.assess_kpis(part), kpi.assess_kpis(full))
    # one period fewer loses a growth target's year-earlier value or a trend point
    short = kpi.compute_kpis(ctx.monthly_lines, ctx.frame("accounts"), **kw, recent_periods=n - 1)
    assert not kpi.assess_kpis(short).equals(kpi.assess_kpis(full))
    with pytest.raises(ValueError, match="recent_periods"):
        kpi.compute_kpis(ctx.monthly_lines, ctx.frame("accounts"), **kw, recent_periods=0)

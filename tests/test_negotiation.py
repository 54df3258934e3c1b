"""Tests for the walk-away side of a price negotiation (kam_analysis.scenarios)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from kam_analysis import pricing as pr
from kam_analysis import scenarios as sc


def test_walk_away_break_even_hand_computed():
    # margin 30 %, cut 5 %, no volume change: GP after = 25/30 of today -> p* = 1/6
    p, reason = sc.walk_away_break_even(0.30, 0.05)
    assert p == pytest.approx(1 / 6) and reason == ""
    # +10 % volume: GP after = 1.1 x 25 / 30 = 0.91667 -> p* = 1/12
    assert sc.walk_away_break_even(0.30, 0.05, 0.10)[0] == pytest.approx(1 / 12)
    # exactly the break-even volume (+20 %): GP unchanged, p* = 0, not "raises"
    assert sc.walk_away_break_even(0.30, 0.05, 0.20) == (pytest.approx(0.0, abs=1e-12), "")


def test_walk_away_break_even_clips_and_explains():
    # +30 % volume more than pays for the cut: 1.3 x 25 / 30 > 1 -> accept whatever the risk
    assert sc.walk_away_break_even(0.30, 0.05, 0.30) == (0.0, "cut_raises_gp")
    # a cut beyond the margin leaves negative GP: refuse even if the loss were certain
    assert sc.walk_away_break_even(0.10, 0.15) == (1.0, "cut_leaves_no_gp")
    p, reason = sc.walk_away_break_even(float("nan"), 0.05)
    assert math.isnan(p) and reason == "margin_unknown"
    p, reason = sc.walk_away_break_even(-0.1, 0.05)
    assert math.isnan(p) and reason == "no_current_gp"


def test_price_negotiation_weighs_the_walk_away():
    # revenue 1000, margin 30 %: GP 300; cut 5 %: GP 250; refuse with p_loss 10 %: 270
    out = sc.price_negotiation(1000.0, 0.30, 5, p_loss=0.10).set_index("metric")
    assert out.loc["walk_away_break_even", "after_cut"] == pytest.approx(1 / 6)
    assert out.loc["loss_prob_if_refused", "current"] == 0.10
    e = out.loc["expected_gross_profit"]
    assert (e["current"], e["after_cut"]) == (pytest.approx(270.0), pytest.approx(250.0))
    assert e["change"] == pytest.approx(-20.0)  # accepting costs 20 in expectation: refuse
    # above p* accepting wins: p_loss 30 % -> refuse 210 < accept 250
    high = sc.price_negotiation(1000.0, 0.30, 5, p_loss=0.30).set_index("metric")
    assert high.loc["expected_gross_profit", "change"] == pytest.approx(40.0)
    # at p* the two are equal
    at = sc.price_negotiation(1000.0, 0.30, 5, p_loss=1 / 6).set_index("metric")
    assert at.loc["expected_gross_profit", "change"] == pytest.approx(0.0, abs=1e-9)


def test_price_negotiation_volume_response_moves_revenue_and_gp():
    out = sc.price_negotiation(1000.0, 0.30, 5, volume_change=0.10).set_index("metric")
    assert out.loc["revenue", "after_cut"] == pytest.approx(1000 * 0.95 * 1.1)  # 1045
    assert out.loc["gross_profit", "after_cut"] == pytest.approx(1000 * 1.1 * 0.25)  # 275
    assert out.loc["gross_margin", "after_cut"] == pytest.approx(0.25 / 0.95)
    assert out.loc["walk_away_break_even", "after_cut"] == pytest.approx(1 / 12)
    assert "expected_gross_profit" not in out.index  # only with a p_loss
    with pytest.raises(ValueError, match="volume_change"):
        sc.price_negotiation(1000.0, 0.30, 5, volume_change=-1.0)
    with pytest.raises(ValueError, match="p_loss"):
        sc.price_negotiation(1000.0, 0.30, 5, p_loss=1.5)


def test_price_negotiation_walk_away_without_margin():
    out = sc.price_negotiation(1000.0, float("nan"), 5, p_loss=0.2).set_index("metric")
    assert out.loc["walk_away_break_even", "reason"] == "margin_unknown"
    assert np.isnan(out.loc["expected_gross_profit", ["current", "after_cut"]].astype(float)).all()
    assert out.loc["expected_gross_profit", "reason"] == "margin_unknown"


def test_price_negotiation_customer_side_with_sized_value():
    value = pr.roi_inputs_for_account(12_000.0, employees=50, wallet=60_000.0, currency="USD")
    out = sc.price_negotiation(12_000.0, 0.3, 10, value.inputs, draws=500, seed=1)
    out = out.set_index("metric")
    # the cut lowers the fee only: the customer's NPV rises, by the same draws
    assert out.loc["npv_p50", "after_cut"] > out.loc["npv_p50", "current"]
    assert out.loc["roi_p50", "after_cut"] > out.loc["roi_p50", "current"]


def test_churn_risk_12m_only_when_modelled():
    book = pd.DataFrame(
        {
            "account_id": ["A", "B"],
            "churn_prob_month": [0.02, 0.01],
            "churn_source": ["ltv", "fallback"],
        }
    )
    assert sc.churn_risk_12m(book, "A") == pytest.approx(1 - 0.98**12)  # 0.2153
    assert sc.churn_risk_12m(book, "B") is None
    assert sc.churn_risk_12m(book, "Z") is None
    assert sc.churn_risk_12m(book.drop(columns="churn_source"), "A") is None

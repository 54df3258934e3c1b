"""The market factor planted by the generator is recovered from the revenue (issue 15, section 5).

The generator moves every customer's wallet with one random walk
(``market_volatility_annual``); :func:`kam_analysis.ltv.shocks.market_factor`
must find it in the accounts' quarterly revenue, and find (almost) none when
none is planted. The scenario book then uses the estimated weight.
"""

from __future__ import annotations

import pytest

from kam_analysis.context import load_context
from kam_analysis.ltv import RevenueShocks
from kam_analysis.synthetic import SyntheticSettings, generate_dataset


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    out = {}
    for sigma in (0.0, 0.25):
        folder = tmp_path_factory.mktemp("mkt") / f"s{sigma}"
        generate_dataset(
            folder,
            n_accounts=800,
            seed=5,
            settings=SyntheticSettings(market_volatility_annual=sigma),
        )
        out[sigma] = load_context(folder)
    return out


@pytest.mark.slow
def test_planted_market_volatility_is_recovered(books):
    ctx = books[0.25]
    m = RevenueShocks(bootstrap=20).fit(ctx.monthly, as_of=ctx.as_of).market_
    # 12 quarters of revenue: 11 differences, 7 degrees of freedom after the seasonal profile
    assert m["quarters"] == 11
    assert m["lower"] <= 0.25 <= m["upper"], m
    assert m["lower"] > 0.1, m
    assert 0 < m["weight_lower"] < m["weight"] < m["weight_upper"] <= 1


@pytest.mark.slow
def test_no_planted_market_leaves_a_small_estimate(books):
    # the demo's own composition (new accounts ramping up, cross-sell early in a tenure)
    # moves the accounts a little together even without a market: a few % a year at most
    ctx = books[0.0]
    m = RevenueShocks(bootstrap=20).fit(ctx.monthly, as_of=ctx.as_of).market_
    assert m["volatility_annual"] < 0.1, m
    planted = RevenueShocks(bootstrap=20).fit(books[0.25].monthly, as_of=ctx.as_of).market_
    assert planted["volatility_annual"] > 2 * m["volatility_annual"]


@pytest.mark.slow
def test_the_scenario_book_uses_the_estimated_market_weight(books):
    ctx = books[0.25]
    book, spreads = ctx.scenario_inputs
    assert spreads.market_source == "estimated"
    assert spreads.market_factor_weight == pytest.approx(spreads.market["weight"])
    assert spreads.volatility_months == 36 and spreads.volatility_accounts > 300
    assert (book["volatility_source"] == "estimated").sum() == spreads.volatility_accounts
    # the contract churn model is there: its quarterly shock estimate is reported
    assert spreads.churn_shock_source == "estimated" and spreads.churn_shock["quarters"] >= 12


@pytest.mark.slow
def test_a_longer_required_history_falls_back_and_says_so(books):
    strict = books[0.25].with_settings(scenarios={"min_history_months": 48})
    book, spreads = strict.scenario_inputs
    assert (book["volatility_source"] == "fallback").all()
    assert spreads.market_source == "fallback" and spreads.volatility_months == 36
    # the churn shock does not depend on the revenue history
    assert spreads.churn_shock_source == "estimated"

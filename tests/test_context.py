"""Tests for kam_analysis.context: the engine aggregates give what the line table gives.

The context never loads the transaction lines into pandas for the reports
(a book can hold tens of millions of them); each aggregate it hands out
instead must reproduce the numbers of the pandas path on the lines.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kam_analysis import kpi
from kam_analysis.actions import product_line_view
from kam_analysis.segmentation import score_and_tier
from kam_analysis.valuation import account_whitespace


@pytest.fixture(scope="module")
def ctx(demo_context):
    return demo_context(150, seed=5)


@pytest.fixture(scope="module")
def lines(ctx) -> pd.DataFrame:
    return ctx.frame("transactions")


def test_scored_from_engine_aggregates_equals_the_line_path(ctx, lines):
    from_lines = score_and_tier(
        ctx.features,
        lines,
        as_of=ctx.as_of,
        accounts=ctx.frame("accounts"),
        contracts=ctx.frame("contracts"),
        opportunities=ctx.frame("opportunities"),
        monthly_revenue=ctx.monthly,
        valuation=ctx.config.valuation,
        segmentation=ctx.config.segmentation,
    )
    assert (ctx.scored["whitespace"] > 0).sum() > 10  # the whitespace really is exercised
    pd.testing.assert_frame_equal(ctx.scored, from_lines, check_exact=False, rtol=1e-12)


def test_whitespace_equals_the_line_path(ctx, lines):
    expected = account_whitespace(ctx.scored, lines, as_of=ctx.as_of, settings=ctx.config.valuation)
    pd.testing.assert_frame_equal(ctx.whitespace, expected, check_exact=False, rtol=1e-12)
    per_account = ctx.whitespace.groupby("account_id")["whitespace_value"].sum()
    scored = ctx.scored.set_index("account_id")["whitespace"]
    np.testing.assert_allclose(per_account.reindex(scored.index).fillna(0), scored, rtol=1e-12)


def test_spend_12m_sums_to_revenue_12m(ctx):
    per_account = ctx.spend_12m.groupby("account_id")["revenue"].sum()
    features = ctx.features.set_index("account_id")["revenue_12m"]
    bought = features[features > 0]
    np.testing.assert_allclose(per_account.reindex(bought.index), bought, rtol=1e-12)


@pytest.mark.parametrize("period", ["month", "quarter", "fiscal_year"])
def test_kpis_from_monthly_lines_equal_the_line_kpis(ctx, lines, period):
    settings = kpi.KpiSettings(period=period)
    kw = dict(
        contracts=ctx.frame("contracts"),
        opportunities=ctx.frame("opportunities"),
        activities=ctx.frame("activities"),
        surveys=ctx.frame("surveys"),
        usage=ctx.frame("usage"),
        as_of=ctx.as_of,
        settings=settings,
    )
    from_lines = kpi.compute_kpis(lines, ctx.frame("accounts"), **kw)
    summed = ctx.monthly_lines
    assert len(summed) < len(lines) / 2 and summed["n_lines"].sum() == len(lines)
    from_summary = kpi.compute_kpis(summed, ctx.frame("accounts"), **kw)
    pd.testing.assert_frame_equal(from_summary.values, from_lines.values, rtol=1e-9)
    pd.testing.assert_frame_equal(from_summary.portfolio, from_lines.portfolio, rtol=1e-9)
    assert from_summary.notes == from_lines.notes


def test_churn_status_from_last_purchases_equals_the_line_path(ctx, lines):
    accounts, contracts = ctx.frame("accounts"), ctx.frame("contracts")
    expected = kpi.churn_status(accounts, as_of=ctx.as_of, contracts=contracts, transactions=lines)
    got = kpi.churn_status(
        accounts, as_of=ctx.as_of, contracts=contracts, transactions=ctx.last_purchases
    )
    assert expected["lapsed"].any()
    pd.testing.assert_frame_equal(got, expected)


def test_account_lines_are_that_accounts_lines(ctx, lines):
    top = ctx.key_accounts(1)[0]
    got = ctx.account_lines(top)
    expected = lines[lines["account_id"] == top].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)
    pd.testing.assert_frame_equal(
        product_line_view(got, ctx.whitespace, top, as_of=ctx.as_of),
        product_line_view(lines, ctx.whitespace, top, as_of=ctx.as_of),
    )

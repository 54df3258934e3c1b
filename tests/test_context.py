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


def test_kpi_tables_hold_the_executive_meetings_and_give_the_same_kpis(ctx):
    full = ctx.frame("activities")
    tables = ctx.kpi_tables()
    act = tables["activities"]
    # only the rows the one activity KPI counts, selected in the engine
    assert (act["kind"] == kpi.EXECUTIVE_MEETING).all()
    assert len(act) == (full["kind"] == kpi.EXECUTIVE_MEETING).sum() < len(full) / 3
    common = dict(as_of=ctx.as_of, settings=ctx.kpi_settings)
    others = {k: v for k, v in tables.items() if k != "activities"}
    whole = kpi.compute_kpis(
        ctx.monthly_lines, ctx.frame("accounts"), **others, activities=full, **common
    )
    slim = kpi.compute_kpis(ctx.monthly_lines, ctx.frame("accounts"), **tables, **common)
    pd.testing.assert_frame_equal(slim.values, whole.values)
    exec_contact = slim.values[slim.values["kpi_id"] == "exec_contact"]["value"]
    assert exec_contact.notna().any() and (exec_contact > 0).any()
    # some accounts: the same rows as the whole table's rows of those accounts
    ids = sorted(act["account_id"].astype(str).unique())[:3]
    some = ctx.kpi_tables(ids)
    assert set(some["activities"]["account_id"].astype(str)) == set(ids)
    pd.testing.assert_frame_equal(
        some["activities"].sort_values(["account_id", "date"]).reset_index(drop=True),
        act[act["account_id"].astype(str).isin(ids)]
        .sort_values(["account_id", "date"])
        .reset_index(drop=True),
    )
    assert len(some["surveys"]) == ctx.frame("surveys")["account_id"].astype(str).isin(ids).sum()
    # one account (a plan): the same rows, read once and kept for the plan's other sections
    one = ctx.kpi_tables(ids[:1])
    pd.testing.assert_frame_equal(
        one["activities"].sort_values("date").reset_index(drop=True),
        act[act["account_id"].astype(str) == ids[0]].sort_values("date").reset_index(drop=True),
    )
    assert one["surveys"] is ctx.account_frame("surveys", ids[0])


def test_kpis_never_load_the_whole_activity_log(demo_context, monkeypatch):
    from kam_analysis import actions

    fresh = demo_context(150, seed=5)
    loaded = type(fresh).frame

    def frame(self, table):
        assert table != "activities", "the whole activity log was loaded"
        return loaded(self, table)

    monkeypatch.setattr(type(fresh), "frame", frame)
    assert fresh.health_validation.weights  # the health weights (state build, every page)
    assert fresh.objective_progress is not None  # objectives measured on KPIs
    assert len(fresh.ltv_values.ltv) == len(fresh.scored)  # the churn model reads them too
    acc = fresh.key_accounts()[0]
    plan = actions.account_plan_data(fresh, acc)
    assert plan.account_id == acc


def test_ltv_from_the_executive_meetings_equals_the_whole_log(demo_context, monkeypatch):
    values = demo_context(150, seed=5).ltv_values
    slim = values.ltv
    whole_ctx = demo_context(150, seed=5)
    tables = whole_ctx.kpi_tables

    def with_whole_log(account_ids=None):
        return {**tables(account_ids), "activities": whole_ctx.frame("activities")}

    monkeypatch.setattr(whole_ctx, "kpi_tables", with_whole_log)
    whole = whole_ctx.ltv_values.ltv
    pd.testing.assert_frame_equal(slim, whole)
    # the contractual churn hazard (the model that reads executive meetings) was fitted
    assert values.models.hazard is not None and (slim["ltv"] > 0).any()

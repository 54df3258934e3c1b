"""One LTV path: every report that shows an LTV reads the context's valuation.

The LTV report (``ctx.ltv``), the scenario book (notebook 04,
``ctx.ltv_values``) and the account plan (``account_plan_data``) show the same
numbers: the models are fitted once per context, with the configured settings
and the features' purchase period. A copy that left out ``purchase_period``
read monthly purchase counts as weekly ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kam_analysis.actions import account_plan_data
from kam_analysis.config import ConfigError
from kam_analysis.ltv import analysis
from kam_analysis.ltv.value import LTV_COLUMNS, account_ltv

#: Cheap model settings for the tests that do not compare with the defaults.
FAST = {"draws": 100, "bootstrap_replicates": 20}


@pytest.fixture(scope="module")
def month_ctx(demo_context):
    """A context on a small demo whose features count purchases per month."""
    return demo_context(150, seed=1).with_settings(features={"period": "month"})


def _direct_ltv(ctx, period: str) -> pd.DataFrame:
    """:func:`account_ltv` called on the context's tables, models fitted inside."""
    return account_ltv(
        ctx.features,
        as_of=ctx.as_of,
        contracts=ctx.frame("contracts"),
        surveys=ctx.frame("surveys"),
        activities=ctx.frame("activities"),
        usage=ctx.frame("usage"),
        monthly=ctx.monthly,
        settings=ctx.config.ltv,
        purchase_period=period,
        assumed_gross_margin=ctx.config.data.assumed_gross_margin,
    )


def _by_account(ltv: pd.DataFrame) -> pd.DataFrame:
    return ltv[list(LTV_COLUMNS)].sort_values("account_id", ignore_index=True)


def test_reports_value_accounts_with_the_configured_purchase_period(month_ctx) -> None:
    ctx = month_ctx
    assert ctx.config.features.period == "month"
    report = _by_account(ctx.ltv.ltv)
    # notebook 04 (scenario book) reads ctx.ltv_values: the report's numbers
    pd.testing.assert_frame_equal(_by_account(ctx.ltv_values.ltv), report)
    # ... which are account_ltv's with purchase_period="month"
    pd.testing.assert_frame_equal(_by_account(_direct_ltv(ctx, "month")), report)
    # and not those of a copy that counts months as weeks
    week = _by_account(_direct_ltv(ctx, "week"))
    tx = report["model"].str.startswith("transactional").to_numpy()
    assert tx.any(), "the demo should have accounts valued by their purchases"
    assert not np.allclose(week.loc[tx, "ltv"], report.loc[tx, "ltv"])

    # the account plan of a transactional account shows the same row
    acc_id = str(report.loc[tx, "account_id"].iloc[0])
    plan = account_plan_data(ctx, acc_id)
    assert plan.ltv is not None
    row = report.set_index("account_id").loc[acc_id]
    for col in ("ltv", "ltv_lower", "ltv_upper", "model", "basis", "churn_risk_12m"):
        assert plan.ltv[col] == row[col], col
    assert plan.ltv["ltv"] != week.set_index("account_id").loc[acc_id, "ltv"]


def test_ltv_reuses_the_valuation_without_refitting(demo_context, monkeypatch) -> None:
    fits = []
    fit = analysis.fit_ltv_models

    def counted(*args, **kwargs):
        fits.append(kwargs.get("purchase_period"))
        return fit(*args, **kwargs)

    monkeypatch.setattr(analysis, "fit_ltv_models", counted)
    ctx = demo_context(150, seed=1).with_settings(ltv=FAST)
    values = ctx.ltv_values
    assert fits == ["week"]
    res = ctx.ltv
    assert fits == ["week"]  # the full analysis fitted nothing again
    assert res.models is values.models
    assert res.ltv is values.ltv
    assert res.settings == values.settings == ctx.config.ltv
    assert (res.basis, res.assumed_gross_margin) == (values.basis, values.assumed_gross_margin)


def test_with_settings_overrides_reach_the_ltv(month_ctx) -> None:
    five = month_ctx.with_settings(ltv={**FAST, "horizon_years": 5})
    three = five.with_settings(ltv={"horizon_years": 3})
    assert three.ltv_values.settings.horizon_years == 3
    assert five.config.ltv.horizon_years == 5  # the original context is unchanged
    assert three.ltv_values.settings.draws == FAST["draws"]  # other overrides kept
    total_3 = float(three.ltv_values.valued["ltv"].sum())
    total_5 = float(five.ltv_values.valued["ltv"].sum())
    assert 0 < total_3 < total_5


def test_with_settings_names_an_unknown_setting(month_ctx) -> None:
    with pytest.raises(ConfigError, match="horizon_yeras"):
        month_ctx.with_settings(ltv={"horizon_yeras": 3})
    with pytest.raises(ConfigError, match="lvt"):
        month_ctx.with_settings(lvt={"horizon_years": 3})

"""Valuation and tiers when inputs are missing: dropped criteria, renormalised weights, no filler.

Hand-computed scores on small tables, and a CDNOW-like book built end to end
in DuckDB (no cost, no wallet, no product line, no ratings, no opportunities,
accounts derived from the transactions, 18 months of history).
"""

from __future__ import annotations

import ibis
import numpy as np
import pandas as pd
import pytest

from kam_analysis import valuation as val
from kam_analysis.data.features import (
    HistoryCoverage,
    build_account_features,
    history_coverage,
    monthly_revenue,
    product_line_revenue,
)
from kam_analysis.segmentation import SegmentationSettings, assign_tiers, score_and_tier, tier_rule
from kam_analysis.valuation import (
    ValuationSettings,
    attractiveness_score,
    criteria_used,
    current_value,
    normalise,
    potential_value,
    trend_from_monthly,
    trend_window,
    valuation_summary,
    weight_robustness,
)

AS_OF = "2024-06-30"


def _book() -> pd.DataFrame:
    """Five accounts; no cost, no wallet, no ratings, no opportunities, no product lines."""
    return pd.DataFrame(
        {
            "account_id": list("abcde"),
            "revenue_12m": [10.0, 20.0, 30.0, 40.0, 50.0],
            "gross_profit_12m": np.nan,
            "margin_12m": np.nan,
            "revenue_growth": [0.5, np.nan, -0.2, 0.1, 0.0],
            "gross_profit_growth": np.nan,
            "trend": [0.1, 0.2, 0.3, np.nan, 0.0],
            "wallet_estimate": np.nan,
            "share_of_wallet": np.nan,
            "headroom": np.nan,
            "whitespace": np.nan,
            "expected_expansion": np.nan,
        }
    )


def test_criteria_without_data_drop_out_and_weights_are_renormalised():
    crit = criteria_used(_book()).set_index("criterion")
    used = crit[crit["available"]]
    # of the default weights only revenue (.10), growth (.06) and trend (.04) have data
    assert used["weight_used"].to_dict() == pytest.approx(
        {"revenue_12m": 0.5, "revenue_growth": 0.3, "trend": 0.2}
    )
    assert crit["weight_used"].sum() == pytest.approx(1.0)
    assert crit["stated_weight"].sum() == pytest.approx(1.0)
    reasons = crit.loc[~crit["available"], "reason"].to_dict()
    assert reasons == {
        "gross_profit_12m": "no_cost",
        "wallet_estimate": "no_wallet",
        "headroom": "no_wallet",
        "whitespace": "no_product_line",
        "expected_expansion": "no_opportunities",
        "strategic_fit": "no_qualitative",
        "synergy": "no_qualitative",
        "co_development": "no_qualitative",
        "reference_value": "no_qualitative",
        "barrier_to_entry": "no_qualitative",
    }
    assert set(crit["reason"]) <= set(val.UNAVAILABLE_REASONS) | {""}
    assert list(crit.columns) == [
        "family",
        "stated_weight",
        "weight_used",
        "available",
        "reason",
        "assumed",
        "needs_from",
        "data_from",
    ]


def test_scores_use_only_known_values_hand_computed():
    out = attractiveness_score(_book()).set_index("account_id")
    # revenue ranks 0 .25 .5 .75 1; growth among a c d e (b unknown): .5 -> 1, -.2 -> 0,
    # .1 -> 2/3, 0 -> 1/3; trend among a b c e (d unknown): .1 -> 1/3, .2 -> 2/3, .3 -> 1, 0 -> 0
    # weights .5 / .3 / .2; b knows revenue + trend (W = .7), d revenue + growth (W = .8)
    expected = {
        "a": 100 * (0.5 * 0 + 0.3 * 1 + 0.2 / 3),
        "b": 100 * (0.5 * 0.25 + 0.2 * 2 / 3) / 0.7,
        "c": 100 * (0.5 * 0.5 + 0.3 * 0 + 0.2 * 1),
        "d": 100 * (0.5 * 0.75 + 0.3 * 2 / 3) / 0.8,
        "e": 100 * (0.5 * 1 + 0.3 / 3 + 0.2 * 0),
    }
    assert out["score"].to_dict() == pytest.approx(expected)
    assert out["weight_known"].to_dict() == pytest.approx(
        {"a": 1, "b": 0.7, "c": 1, "d": 0.8, "e": 1}
    )
    assert sorted(c for c in out.columns if c.startswith("contrib_")) == [
        "contrib_revenue_12m",
        "contrib_revenue_growth",
        "contrib_trend",
    ]
    np.testing.assert_allclose(out.filter(like="contrib_").sum(axis=1), out["score"])


def test_no_filler_an_unknown_value_neither_helps_nor_hurts():
    # property: an account whose value is unknown scores the weighted mean of what is known,
    # so with two equally weighted criteria and one unknown, the score is the known one
    t = pd.DataFrame(
        {
            "account_id": ["x", "y", "z", "u"],
            "revenue_12m": [1.0, 2.0, 3.0, 4.0],
            "trend": [np.nan, 0.1, 0.2, 0.3],
        }
    )
    out = attractiveness_score(t, {"revenue_12m": 1, "trend": 1}).set_index("account_id")
    assert out.loc["x", "score"] == 0.0  # lowest revenue, nothing else known: not 25
    assert out.loc["x", "contrib_trend"] == 0.0
    # adding a criterion nobody has does not change any score
    more = attractiveness_score(
        t.assign(synergy=np.nan), {"revenue_12m": 1, "trend": 1, "synergy": 5}
    )
    np.testing.assert_allclose(more["score"], out["score"].to_numpy())
    for method in ("minmax", "zscore"):
        scored = attractiveness_score(t, {"revenue_12m": 1, "trend": 1}, normalisation=method)
        n = normalise(t["revenue_12m"], method)
        assert scored["score"].iloc[0] == pytest.approx(100 * n.iloc[0])


def test_a_criterion_that_does_not_vary_adds_no_filler():
    # peers found no whitespace anywhere: 0 for everybody ranks nobody
    t = _book().assign(whitespace=0.0)
    crit = criteria_used(t).set_index("criterion")
    assert not crit.loc["whitespace", "available"]
    assert crit.loc["whitespace", "reason"] == "no_variation"
    np.testing.assert_allclose(
        attractiveness_score(t)["score"], attractiveness_score(_book())["score"]
    )
    # a book of one account: nothing varies, the criteria with data are kept (score 50)
    one = attractiveness_score(_book().head(1))
    assert one["score"].iloc[0] == pytest.approx(50.0)
    assert criteria_used(_book().head(1)).set_index("criterion").loc["revenue_12m", "available"]


def test_no_weighted_criterion_with_data_is_an_error():
    with pytest.raises(val.ValuationInputError, match="no weighted criterion has data"):
        attractiveness_score(_book(), {"headroom": 1, "synergy": 1})


def test_weight_robustness_uses_the_same_rule():
    t = _book()
    rob = weight_robustness(t, draws=50, method="scale", spread=0.0)
    base = attractiveness_score(t)
    np.testing.assert_allclose(rob["base_score"], base["score"])
    np.testing.assert_allclose(rob["score_p10"], base["score"])  # no spread: every draw = base
    rob = weight_robustness(t, draws=200, method="scale", spread=0.5, seed=3)
    assert rob["score_p10"].le(rob["score_p90"]).all()


def test_gross_profit_is_unknown_without_cost_and_marked_when_assumed():
    s = valuation_summary(attractiveness_score(_book()).assign(rank=lambda d: d["rank"])).iloc[0]
    assert np.isnan(s["gross_profit_12m"]) and np.isnan(s["margin_12m"])
    assert np.isnan(s["top_gp_share"]) and not s["gross_profit_assumed"]
    for col in ("wallet_estimate", "share_of_wallet", "headroom", "whitespace"):
        assert np.isnan(s[col]), col  # not available, not 0
    assert np.isnan(s["expected_expansion"])
    assumed = _book().assign(
        gross_profit_12m=lambda d: 0.4 * d["revenue_12m"], gross_profit_assumed=True
    )
    s = valuation_summary(attractiveness_score(assumed)).iloc[0]
    assert s["gross_profit_12m"] == pytest.approx(60.0) and s["margin_12m"] == pytest.approx(0.4)
    assert s["gross_profit_assumed"]
    crit = criteria_used(assumed).set_index("criterion")
    assert crit.loc["gross_profit_12m", "available"] and crit.loc["gross_profit_12m", "assumed"]
    assert not crit.loc["revenue_12m", "assumed"]
    # current_value keeps the assumed gross profit but no margin (it is the assumption)
    cur = current_value(assumed.drop(columns=["margin_12m", "trend"]))
    np.testing.assert_allclose(cur["gross_profit_12m"], assumed["gross_profit_12m"])
    assert cur["margin_12m"].isna().all()


def _coverage(first: str, as_of: str = "2011-12-09") -> HistoryCoverage:
    return HistoryCoverage(
        as_of=pd.Timestamp(as_of),
        first_date=pd.Timestamp(first),
        last_date=pd.Timestamp(as_of),
        full_months=12,
    )


def test_growth_not_covered_is_dropped_with_the_dates_it_needs():
    cov = _coverage("2010-12-01")  # 12 months + 8 days
    feats = _book().assign(revenue_growth=[136.79, 0.5, 1.0, 2.0, 0.0])  # +13,679 %
    cur = current_value(feats, coverage=cov)
    assert cur["revenue_growth"].isna().all() and cur["gross_profit_growth"].isna().all()
    crit = criteria_used(feats.assign(revenue_growth=np.nan), coverage=cov).set_index("criterion")
    row = crit.loc["revenue_growth"]
    assert not row["available"] and row["reason"] == "window_not_covered"
    assert row["needs_from"] == pd.Timestamp("2009-12-10")
    assert row["data_from"] == pd.Timestamp("2010-12-01")
    # trend: as of 2011-12-09 its 4 quarters run Dec 2010 - Nov 2011: covered
    assert trend_window("2011-12-09") == (
        pd.Timestamp("2010-12-01"),
        pd.Timestamp("2009-12-01"),
        pd.Timestamp("2011-11-30"),
    )
    assert crit.loc["trend", "available"]
    assert crit.loc["trend", "needs_from"] == pd.Timestamp("2010-12-01")
    # without coverage an all-missing previous year still reads as an uncovered window
    crit = criteria_used(feats.assign(revenue_growth=np.nan, revenue_prev_12m=np.nan)).set_index(
        "criterion"
    )
    assert crit.loc["revenue_growth", "reason"] == "window_not_covered"


def _quarterly(values: list[float], end: str = "2024-06-01") -> pd.DataFrame:
    months = pd.date_range(end=end, periods=3 * len(values), freq="MS")
    return pd.DataFrame({"account_id": "a", "month": months, "revenue": np.repeat(values, 3) / 3})


def test_trend_leaves_out_quarters_the_data_does_not_cover():
    m = _quarterly([100, 110, 120, 130, 140, 150, 160, 170])  # 2022-07 .. 2024-06
    full = trend_from_monthly(m, as_of=AS_OF)["trend"].iloc[0]
    assert full == pytest.approx(40 / 135)
    # data from 2022-08-15: the first quarter (Jul-Sep 2022) is partial and left out
    part = m.assign(revenue=np.where(m["month"] == "2022-07-01", 0.0, m["revenue"]))
    late = trend_from_monthly(part, as_of=AS_OF, covered_from="2022-08-08")
    assert late["trend"].iloc[0] == pytest.approx(40 / 140)  # quarters 110 .. 170
    assert late["trend_quarters"].iloc[0] == 7
    # without the coverage rule the partial quarter (2/3 of 100) bends the slope up
    naive = trend_from_monthly(part, as_of=AS_OF)["trend"].iloc[0]
    assert naive > late["trend"].iloc[0]
    # fewer than min_quarters covered quarters: no trend for anybody
    short = trend_from_monthly(m, as_of=AS_OF, covered_from="2023-10-01")
    assert short["trend"].isna().all() and short["trend_quarters"].iloc[0] == 3


def test_potential_without_wallet_or_product_lines():
    f = pd.DataFrame(
        {
            "account_id": ["a", "b"],
            "revenue_12m": [10.0, 20.0],
            "product_lines_total": [np.nan, np.nan],  # features built without product_line
        }
    )
    spend = pd.DataFrame({"account_id": [], "product_line": [], "revenue": []})
    out = potential_value(f, None, as_of=AS_OF, spend_12m=spend)
    for col in ("wallet_estimate", "share_of_wallet", "headroom", "whitespace", "whitespace_lines"):
        assert out[col].isna().all(), col
    assert not val.product_lines_available(f, None, spend)
    ws = val.account_whitespace(f, None, as_of=AS_OF, spend_12m=spend)
    assert ws.empty and "whitespace_value" in ws.columns
    # with product lines but no wallet: one "unknown" size band, peers by industry
    spend = pd.DataFrame(
        {
            "account_id": ["b", "c", "d"],
            "product_line": ["L1", "L1", "L1"],
            "revenue": [10.0, 20.0, 30.0],
        }
    )
    f2 = pd.DataFrame({"account_id": list("abcd"), "revenue_12m": [0.0, 10.0, 20.0, 30.0]})
    out = potential_value(
        f2, None, as_of=AS_OF, spend_12m=spend, whitespace=val.WhitespaceSettings(min_peers=3)
    ).set_index("account_id")
    assert out.loc["a", "whitespace"] == 20.0  # median of the 3 buying peers, no size scaling
    assert out["headroom"].isna().all()


# --------------------------------------------------------------------------- CDNOW-like book


def _cdnow_like(n: int = 400, seed: int = 7) -> pd.DataFrame:
    """A B2C-like cohort: customers first buy in Q1 1997, data ends 1998-06-30.

    One customer in 20 first buys in Q2 1998 instead: too late for a trend of
    4 quarters, so the book has accounts with and without one.

    Repeat purchases follow a Poisson process with a gamma-distributed rate per
    customer, each customer dropping out after a geometric number of
    purchases (the BG/NBD story); spend is lognormal. Like CDNOW: no cost, no
    product line, no order id, no accounts file.
    """
    rng = np.random.default_rng(seed)
    start, end = pd.Timestamp("1997-01-01"), pd.Timestamp("1998-06-30")
    rows = []
    for i in range(n):
        cid = f"{i + 1:05d}"
        first = pd.Timestamp("1998-04-01") if i % 20 == 19 else start
        t = first + pd.Timedelta(days=int(rng.integers(0, 90)))
        rate = rng.gamma(0.5, 1 / 30)  # purchases per day
        p_drop = rng.beta(1, 3)
        spend = rng.lognormal(3.0, 0.6)
        while t <= end:
            rows.append((cid, t, round(spend * rng.lognormal(0, 0.3), 2)))
            if rng.random() < p_drop or rate <= 0:
                break
            t = t + pd.Timedelta(days=int(rng.exponential(1 / rate)) + 1)
    return pd.DataFrame(rows, columns=["account_id", "date", "revenue"])


@pytest.fixture(scope="module")
def cdnow():
    lines = _cdnow_like()
    as_of = "1998-06-30"
    tx = ibis.memtable(lines)
    ids = sorted(lines["account_id"].unique())
    accounts = pd.DataFrame({"account_id": ids, "name": ids})  # derived: id only
    cov = history_coverage(tx, as_of)
    feats = build_account_features(tx, ibis.memtable(accounts), as_of, coverage=cov)
    scored = score_and_tier(
        feats,
        None,
        as_of=as_of,
        accounts=accounts,
        opportunities=None,
        monthly_revenue=monthly_revenue(tx, as_of, months=36),
        spend_12m=product_line_revenue(tx, as_of),
        coverage=cov,
    )
    return scored, cov


def test_cdnow_like_book_scores_only_on_what_it_has(cdnow):
    scored, cov = cdnow
    assert cov.full_months == 18 and not cov.covers_prev_12m and cov.covers_12m
    crit = criteria_used(scored, coverage=cov).set_index("criterion")
    used = crit[crit["available"]]
    assert used.index.tolist() == ["revenue_12m", "trend"]
    assert used["weight_used"].to_dict() == pytest.approx(
        {"revenue_12m": 0.10 / 0.14, "trend": 0.04 / 0.14}
    )
    assert crit.loc["revenue_growth", "reason"] == "window_not_covered"
    assert crit.loc["revenue_growth", "needs_from"] == pd.Timestamp("1996-07-01")
    assert crit.loc["revenue_growth", "data_from"] == cov.first_date
    assert crit.loc["gross_profit_12m", "reason"] == "no_cost"
    assert crit.loc["whitespace", "reason"] == "no_product_line"
    # growth is missing for everybody and nobody ranks on it; no criterion gets filler
    assert scored["revenue_growth"].isna().all()
    contrib = sorted(c for c in scored.columns if c.startswith("contrib_"))
    assert contrib == ["contrib_revenue_12m", "contrib_trend"]
    # each score is the weighted mean of the account's known normalised criteria
    n_rev = normalise(scored["revenue_12m"]).to_numpy()
    n_trend = normalise(scored["trend"]).to_numpy()
    w_rev, w_trend = 0.10 / 0.14, 0.04 / 0.14
    known = ~np.isnan(n_trend)
    expected = np.where(
        known,
        100 * (w_rev * n_rev + w_trend * np.nan_to_num(n_trend)),
        100 * n_rev,
    )
    np.testing.assert_allclose(scored["score"], expected, atol=1e-9)
    assert known.any() and (~known).any()  # both kinds of account are in the book


def test_cdnow_like_book_forms_key_accounts(cdnow):
    scored, _ = cdnow
    counts = scored["tier"].value_counts()
    cap = round(0.05 * len(scored))
    assert 1 <= counts.get("key", 0) <= cap
    assert counts.get("growth", 0) == 0
    key = scored[scored["tier"] == "key"]
    assert (key["score"] >= 60).all()
    # the share-of-wallet floor is skipped: key accounts are simply the best scores
    best = scored.sort_values(["score", "account_id"], ascending=[False, True]).head(len(key))
    assert set(key["account_id"]) == set(best["account_id"])
    rule = tier_rule(scored, SegmentationSettings())
    assert rule.n_key == counts["key"] and rule.no_key_reason is None
    cond = rule.conditions.set_index(["tier", "condition"])
    assert cond.loc[("key", "share_of_wallet"), "reason"] == "no_wallet"
    assert cond.loc[("growth", "potential"), "reason"] == "no_potential"
    summary = valuation_summary(scored).iloc[0]
    assert np.isnan(summary["gross_profit_12m"]) and np.isnan(summary["headroom"])
    numeric = summary.drop(labels=["gross_profit_assumed"]).astype(float)
    assert not np.isinf(numeric).any()


def test_cdnow_like_robustness_runs_on_the_criteria_with_data(cdnow):
    scored, _ = cdnow
    cfg = SegmentationSettings()
    rob = weight_robustness(
        scored,
        ValuationSettings().weights,
        lambda s: assign_tiers(s, cfg, reasons=False)["tier"],
        draws=20,
        seed=1,
    )
    np.testing.assert_allclose(rob["base_score"], scored["score"])
    assert (rob["base_tier"] == scored["tier"]).all()

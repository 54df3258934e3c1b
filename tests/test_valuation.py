"""Tests of kam_analysis.valuation: hand-computed answers, properties, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from kam_analysis import valuation as val
from kam_analysis.valuation import (
    SizeBandSettings,
    ValuationInputError,
    ValuationSettings,
    attractiveness_score,
    current_value,
    expected_expansion,
    normalise,
    potential_value,
    qualitative_value,
    size_bands,
    trend_from_monthly,
    valuation_table,
    weight_robustness,
    whitespace_matrix,
    whitespace_pivot,
)

AS_OF = "2024-06-30"


# --------------------------------------------------------------------------- normalise


def test_rank_normalisation_averages_ties_and_keeps_nan():
    s = pd.Series([1.0, 2.0, 2.0, 3.0, np.nan], name="x")
    # average ranks 1, 2.5, 2.5, 4 of n = 4 -> (r - 1) / 3
    assert normalise(s, "rank").tolist()[:4] == [0.0, 0.5, 0.5, 1.0]
    assert np.isnan(normalise(s, "rank").iloc[4])


def test_rank_normalisation_is_not_flattened_by_a_giant():
    s = pd.Series([1.0, 2.0, 3.0, 1000.0], name="revenue")
    np.testing.assert_allclose(normalise(s, "rank"), [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(normalise(s, "minmax"), [0, 1 / 999, 2 / 999, 1])


def test_zscore_normalisation_is_normal_cdf_of_z():
    s = pd.Series([1.0, 2.0, 3.0], name="x")
    # mean 2, sd (ddof=1) 1 -> Phi(-1), Phi(0), Phi(1)
    np.testing.assert_allclose(normalise(s, "zscore"), [0.158655254, 0.5, 0.841344746], atol=1e-9)


@pytest.mark.parametrize("method", ["rank", "minmax", "zscore"])
def test_constant_criterion_is_neutral(method):
    assert normalise(pd.Series([7.0, 7.0, np.nan], name="x"), method).tolist()[:2] == [0.5, 0.5]
    assert normalise(pd.Series([7.0], name="x"), method).tolist() == [0.5]


def test_normalise_errors():
    with pytest.raises(ValuationInputError, match="normalisation must be one of"):
        normalise(pd.Series([1.0, 2.0], name="x"), "log")
    with pytest.raises(ValuationInputError, match="infinite"):
        normalise(pd.Series([1.0, np.inf], name="growth"), "rank")
    with pytest.raises(ValuationInputError, match="numeric"):
        normalise(pd.Series(["a", "b"], name="x"), "rank")


# --------------------------------------------------------------------------- attractiveness


def _four_accounts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["a", "b", "c", "d"],
            "revenue_12m": [10.0, 20.0, 30.0, 40.0],
            "strategic_fit": [5.0, np.nan, 1.0, 3.0],
            "expected_expansion": [np.nan, 100.0, 0.0, np.nan],
        }
    )


def test_score_hand_computed_with_contributions():
    out = attractiveness_score(_four_accounts(), {"revenue_12m": 3, "strategic_fit": 1})
    # weights -> 0.75, 0.25; revenue ranks 0, 1/3, 2/3, 1;
    # strategic_fit ranks among 5, 1, 3 -> 1, 0, 0.5; b is unrated: it is scored on revenue
    # alone (its weights renormalised over what is known: 0.75 / 0.75), not given 0.5
    np.testing.assert_allclose(out["contrib_revenue_12m"], [0, 100 / 3, 50, 75])
    np.testing.assert_allclose(out["contrib_strategic_fit"], [25, 0, 0, 12.5])
    np.testing.assert_allclose(out["score"], [25, 100 / 3, 50, 87.5])
    np.testing.assert_allclose(out["weight_known"], [1, 0.75, 1, 1])
    assert out["rank"].tolist() == [4, 3, 2, 1]
    # input columns kept, input not mutated
    assert "expected_expansion" in out
    assert "score" not in _four_accounts()


def test_rescoring_replaces_old_contributions():
    once = attractiveness_score(_four_accounts(), {"revenue_12m": 3, "strategic_fit": 1})
    twice = attractiveness_score(once, {"revenue_12m": 1})
    assert "contrib_strategic_fit" not in twice
    np.testing.assert_allclose(twice["score"], [0, 100 / 3, 200 / 3, 100])


def test_contributions_sum_to_score_for_every_normalisation():
    rng = np.random.default_rng(1)
    t = pd.DataFrame(
        {
            "account_id": [f"A{i:02d}" for i in range(30)],
            "revenue_12m": rng.lognormal(10, 1, 30),
            "gross_profit_12m": rng.lognormal(9, 1, 30),
            "headroom": rng.lognormal(10, 1, 30),
            "synergy": rng.integers(1, 6, 30).astype(float),
        }
    )
    w = {"revenue_12m": 1, "gross_profit_12m": 2, "headroom": 1.5, "synergy": 0.5}
    for method in ("rank", "minmax", "zscore"):
        out = attractiveness_score(t, w, normalisation=method)
        contrib = out.filter(like="contrib_").sum(axis=1)
        np.testing.assert_allclose(contrib, out["score"], rtol=1e-12)
        assert out["score"].between(0, 100).all()
        assert sorted(out["rank"]) == list(range(1, 31))


def test_missing_opportunity_data_counts_as_zero():
    out = attractiveness_score(_four_accounts(), {"expected_expansion": 1})
    # NaN -> 0, so values 0, 100, 0, 0: the three tied zeros are the smallest value -> 0
    # (not the mean-rank filler 1/3); 100 -> 1
    np.testing.assert_allclose(out["score"], [0, 100, 0, 0])
    # ties broken by account_id
    assert out["rank"].tolist() == [2, 1, 3, 4]


def test_absent_qualitative_column_drops_out_but_absent_amount_is_an_error():
    t = _four_accounts()
    out = attractiveness_score(t, {"revenue_12m": 1, "synergy": 1})
    assert "contrib_synergy" not in out  # no data: dropped, not a neutral 0.5 for everybody
    np.testing.assert_allclose(out["score"], [0, 100 / 3, 200 / 3, 100])
    with pytest.raises(ValuationInputError, match="'headroom'.*no column"):
        attractiveness_score(t, {"headroom": 1})


def test_weights_are_normalised_and_zero_weights_ignored():
    t = _four_accounts()
    a = attractiveness_score(t, {"revenue_12m": 2, "strategic_fit": 2, "synergy": 0})
    b = attractiveness_score(t, {"revenue_12m": 0.5, "strategic_fit": 0.5})
    np.testing.assert_allclose(a["score"], b["score"])
    assert "contrib_synergy" not in a


def test_invert_criterion():
    t = pd.DataFrame({"account_id": ["a", "b"], "decision_complexity": [1.0, 5.0]})
    out = attractiveness_score(t, {"decision_complexity": 1}, invert=["decision_complexity"])
    assert out["score"].tolist() == [100.0, 0.0]


def test_custom_numeric_column_can_be_a_criterion():
    t = _four_accounts().assign(nps=[10.0, 0.0, 5.0, 7.0])
    out = attractiveness_score(t, {"nps": 1})
    assert out["rank"].tolist() == [1, 4, 3, 2]


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ({"revenue": 1}, "unknown criterion \\['revenue'\\]"),
        ({"revenue_12m": -1, "strategic_fit": 2}, "'revenue_12m' is negative"),
        ({"revenue_12m": 0}, "sum to 0"),
        ({"revenue_12m": float("nan")}, "must be finite"),
        ({"revenue_12m": "high"}, "must be a number"),
        ({}, "non-empty"),
    ],
)
def test_bad_weights(weights, match):
    with pytest.raises(ValuationInputError, match=match):
        attractiveness_score(_four_accounts(), weights)


def test_score_bad_table():
    t = _four_accounts()
    with pytest.raises(ValuationInputError, match="account_id must be unique"):
        attractiveness_score(pd.concat([t, t.head(1)]), {"revenue_12m": 1})
    with pytest.raises(ValuationInputError, match="missing required column"):
        attractiveness_score(t.drop(columns="account_id"), {"revenue_12m": 1})
    with pytest.raises(ValuationInputError, match="invert"):
        attractiveness_score(t, {"revenue_12m": 1}, invert=["synergy"])


def test_settings_defaults_and_validation():
    s = ValuationSettings()
    assert sum(s.weights.values()) == pytest.approx(1.0)
    assert s.stage_weights == {
        "prospecting": 0.1,
        "qualification": 0.2,
        "proposal": 0.4,
        "negotiation": 0.7,
    }
    with pytest.raises(ValidationError, match="negative"):
        ValuationSettings(weights={"revenue_12m": -0.1})
    with pytest.raises(ValidationError, match="unknown open stage"):
        ValuationSettings(stage_weights={"closed_won": 1.0})
    with pytest.raises(ValidationError, match="Extra inputs"):
        ValuationSettings(wieghts={"revenue_12m": 1})
    with pytest.raises(ValidationError, match="one label more"):
        SizeBandSettings(labels=("S", "L"), quantiles=(0.3, 0.6))


# --------------------------------------------------------------------------- current value


def _monthly(quarterly: list[float], end: str = "2024-06-01", account: str = "a") -> pd.DataFrame:
    months = pd.date_range(end=end, periods=3 * len(quarterly), freq="MS")
    return pd.DataFrame(
        {"account_id": account, "month": months, "revenue": np.repeat(quarterly, 3) / 3}
    )


def test_trend_linear_known_answer():
    m = _monthly([100, 110, 120, 130, 140, 150, 160, 170])
    # slope 10 per quarter, mean 135 -> 4 * 10 / 135 per year
    for method in ("theil_sen", "ols"):
        t = trend_from_monthly(m, as_of=AS_OF, method=method)
        assert t["trend"].iloc[0] == pytest.approx(40 / 135)
        assert t["trend_quarters"].iloc[0] == 8


def test_trend_theil_sen_resists_one_outlier_quarter():
    q = [100, 110, 1000, 130, 140, 150, 160, 170]
    m = _monthly(q)
    ts = trend_from_monthly(m, as_of=AS_OF)["trend"].iloc[0]
    # 21 of the 28 pairwise slopes are exactly 10, so the median is 10
    assert ts == pytest.approx(40 / np.mean(q))
    ols = trend_from_monthly(m, as_of=AS_OF, method="ols")["trend"].iloc[0]
    x = np.arange(8)
    b = np.polyfit(x, q, 1)[0]
    assert ols == pytest.approx(4 * b / np.mean(q))
    assert ols < 0 < ts


def test_trend_ignores_quarters_before_first_sale_and_needs_min_quarters():
    m = pd.concat(
        [
            _monthly([0, 0, 0, 0, 100, 100, 100, 100], account="new4"),
            _monthly([0, 0, 0, 0, 0, 100, 100, 100], account="new3"),
        ]
    )
    m = m[m["revenue"] > 0]  # months without sales have no row
    t = trend_from_monthly(m, as_of=AS_OF).set_index("account_id")
    assert t.loc["new4", "trend"] == 0.0
    assert t.loc["new4", "trend_quarters"] == 4
    assert np.isnan(t.loc["new3", "trend"])
    assert t.loc["new3", "trend_quarters"] == 3


def test_trend_partial_as_of_month_is_excluded():
    # revenue only in June 2024; as of mid-June the month is incomplete and dropped
    m = pd.concat([_monthly([90] * 8, end="2024-05-01"), _monthly([3], end="2024-06-01")])
    full = trend_from_monthly(m, as_of="2024-05-31")["trend"].iloc[0]
    mid = trend_from_monthly(m, as_of="2024-06-15")["trend"].iloc[0]
    assert full == 0.0 and mid == 0.0


def test_trend_errors():
    with pytest.raises(ValuationInputError, match="missing required column"):
        trend_from_monthly(pd.DataFrame({"account_id": [], "month": []}))
    with pytest.raises(ValuationInputError, match="min_quarters"):
        trend_from_monthly(_monthly([1, 2]), min_quarters=9)
    with pytest.raises(ValuationInputError, match="method"):
        trend_from_monthly(_monthly([1, 2]), method="lasso")


def test_current_value_margin_growth_and_trend():
    f = pd.DataFrame(
        {
            "account_id": ["a", "b"],
            "revenue_12m": [200.0, 0.0],
            "gross_profit_12m": [50.0, 0.0],
            "revenue_prev_12m": [100.0, 0.0],
        }
    )
    out = current_value(f, _monthly([100, 110, 120, 130, 140, 150, 160, 170]), as_of=AS_OF)
    assert out["margin_12m"].iloc[0] == 0.25
    assert np.isnan(out["margin_12m"].iloc[1])
    assert out["revenue_growth"].iloc[0] == 1.0
    assert np.isnan(out["revenue_growth"].iloc[1])
    assert out["trend"].iloc[0] == pytest.approx(40 / 135)
    assert np.isnan(out["trend"].iloc[1])


# --------------------------------------------------------------------------- potential value


def test_size_bands_quartiles():
    s = pd.Series([1, 2, 3, 4, 5, 6, 7, 8, np.nan], dtype=float, name="wallet_estimate")
    # quartile edges 2.75, 4.5, 6.25
    assert size_bands(s).tolist() == ["S", "S", "M", "M", "L", "L", "XL", "XL", "unknown"]
    with pytest.raises(ValuationInputError, match="one label more"):
        size_bands(s, labels=("S", "L"), quantiles=(0.3, 0.6))


def _whitespace_data():
    accounts = pd.DataFrame(
        {
            "account_id": list("ABCDEFG"),
            "industry": ["X"] * 6 + ["Y"],
            "wallet_estimate": [2000.0, 1000, 1000, 1000, 1000, 1000, 1000],
        }
    )
    d = pd.Timestamp("2024-03-01")
    rows = [("B", "L1", 100), ("C", "L1", 200), ("D", "L1", 300), ("E", "L1", 400)]
    rows += [("A", "L2", 50), ("G", "L1", 9999)]
    tx = pd.DataFrame(rows, columns=["account_id", "product_line", "revenue"]).assign(date=d)
    # an old purchase of L1 by A, outside the 12-month window: still whitespace
    old = pd.DataFrame(
        {
            "account_id": ["A"],
            "product_line": ["L1"],
            "revenue": [1.0],
            "date": [pd.Timestamp("2023-06-30")],
        }
    )
    return pd.concat([tx, old], ignore_index=True), accounts


ONE_BAND = SizeBandSettings(labels=("all",), quantiles=())


def test_whitespace_matrix_hand_computed():
    tx, acc = _whitespace_data()
    ws = whitespace_matrix(
        tx, acc, as_of=AS_OF, size_bands=ONE_BAND, scale_by_size=False
    ).set_index(["account_id", "product_line"])
    # A and F: 5 peers in industry X, 4 buy L1 -> adoption 0.8; median of 100..400 = 250
    for a in ("A", "F"):
        assert ws.loc[(a, "L1"), "peers"] == 5
        assert ws.loc[(a, "L1"), "peer_adoption"] == pytest.approx(0.8)
        assert ws.loc[(a, "L1"), "whitespace_value"] == 250.0
    # B buys L1 already: value 0, adoption among its peers 3 / 5
    assert ws.loc[("B", "L1"), "whitespace_value"] == 0.0
    assert bool(ws.loc[("B", "L1"), "bought_12m"])
    assert ws.loc[("B", "L1"), "peer_adoption"] == pytest.approx(0.6)
    # L2: 1 of 5 peers -> 0.2 < 0.5
    assert ws.loc[("B", "L2"), "peer_adoption"] == pytest.approx(0.2)
    assert ws.loc[("B", "L2"), "whitespace_value"] == 0.0
    # G (industry Y) has no peers: NaN adoption, value 0; G's 9999 does not count for X
    assert ws.loc[("G", "L2"), "peers"] == 0
    assert np.isnan(ws.loc[("G", "L2"), "peer_adoption"])
    assert ws.loc[("G", "L2"), "whitespace_value"] == 0.0
    pivot = whitespace_pivot(ws.reset_index())
    assert pivot.loc["A"].tolist() == [250.0, 0.0]


def test_whitespace_min_peers_threshold_and_scaling():
    tx, acc = _whitespace_data()
    ws = whitespace_matrix(tx, acc, as_of=AS_OF, size_bands=ONE_BAND, min_peers=6)
    assert ws["whitespace_value"].sum() == 0.0
    ws = whitespace_matrix(tx, acc, as_of=AS_OF, size_bands=ONE_BAND, adoption_threshold=0.9)
    assert ws["whitespace_value"].sum() == 0.0
    # scaling: A's wallet 2000 vs the buying peers' median 1000 -> x2; F equal size -> x1
    ws = whitespace_matrix(tx, acc, as_of=AS_OF, size_bands=ONE_BAND).set_index(
        ["account_id", "product_line"]
    )
    assert ws.loc[("A", "L1"), "whitespace_value"] == 500.0
    assert ws.loc[("F", "L1"), "whitespace_value"] == 250.0
    ws = whitespace_matrix(tx, acc, as_of=AS_OF, size_bands=ONE_BAND, max_scale=1.5)
    assert (
        ws.set_index(["account_id", "product_line"]).loc[("A", "L1"), "whitespace_value"] == 375.0
    )


def test_whitespace_respects_size_bands():
    tx, acc = _whitespace_data()
    # two bands split at the median wallet: A (2000) is alone in the upper band
    bands = SizeBandSettings(labels=("small", "large"), quantiles=(0.9,))
    ws = whitespace_matrix(tx, acc, as_of=AS_OF, size_bands=bands, min_peers=1)
    a = ws[ws["account_id"] == "A"]
    assert (a["size_band"] == "large").all() and (a["peers"] == 0).all()
    assert a["whitespace_value"].sum() == 0.0


def test_whitespace_errors():
    tx, acc = _whitespace_data()
    with pytest.raises(ValuationInputError, match="adoption_threshold"):
        whitespace_matrix(tx, acc, as_of=AS_OF, adoption_threshold=0)
    with pytest.raises(ValuationInputError, match="no column 'wallet_estimate'"):
        whitespace_matrix(tx, acc.drop(columns="wallet_estimate"), as_of=AS_OF)
    with pytest.raises(ValuationInputError, match="product_line"):
        whitespace_matrix(tx.drop(columns="product_line"), acc, as_of=AS_OF)
    with pytest.raises(ValuationInputError, match="as_of"):
        whitespace_matrix(tx, acc, as_of="not a date")


def test_whitespace_from_aggregated_spend_equals_the_lines():
    tx, acc = _whitespace_data()
    # what features.product_line_revenue returns: the 12m window summed per account and line
    spend = pd.DataFrame(
        {
            "account_id": ["A", "B", "C", "D", "E", "G"],
            "product_line": ["L2", "L1", "L1", "L1", "L1", "L1"],
            "revenue": [50.0, 100.0, 200.0, 300.0, 400.0, 9999.0],
        }
    )
    from_lines = whitespace_matrix(tx, acc, as_of=AS_OF, size_bands=ONE_BAND)
    from_spend = whitespace_matrix(None, acc, as_of=AS_OF, size_bands=ONE_BAND, spend_12m=spend)
    pd.testing.assert_frame_equal(from_spend, from_lines)
    assert from_spend.set_index(["account_id", "product_line"]).loc[
        ("A", "L1"), "whitespace_value"
    ] == pytest.approx(500.0)


def test_whitespace_needs_lines_or_spend():
    _, acc = _whitespace_data()
    with pytest.raises(ValuationInputError, match="transaction lines or spend_12m"):
        whitespace_matrix(None, acc, as_of=AS_OF)
    with pytest.raises(ValuationInputError, match="spend_12m.*revenue"):
        whitespace_matrix(
            None, acc, as_of=AS_OF, spend_12m=pd.DataFrame({"account_id": [], "product_line": []})
        )


def _opportunities() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "opportunity_id": [f"o{i}" for i in range(7)],
            "account_id": ["a", "a", "a", "b", "b", "b", "c"],
            "created_date": pd.to_datetime(["2024-01-01"] * 5 + ["2024-12-01", "2024-01-01"]),
            "stage": [
                "proposal",
                "negotiation",
                "closed_won",
                "prospecting",
                "qualification",
                "proposal",
                "negotiation",
            ],
            "amount": [1000.0, 2000.0, 5000.0, 1000.0, 500.0, 9999.0, 3000.0],
            "type": ["upsell", "cross_sell", "upsell", "new", "upsell", "upsell", "renewal"],
            "probability": [np.nan, 0.5, np.nan, np.nan, np.nan, np.nan, np.nan],
        }
    )


def test_expected_expansion_stage_weights_and_probability():
    out = expected_expansion(_opportunities(), as_of=AS_OF).set_index("account_id")
    # a: 1000 * 0.4 (stage) + 2000 * 0.5 (own probability); closed_won ignored
    assert out.loc["a", "expected_expansion"] == pytest.approx(1400)
    assert out.loc["a", "open_pipeline"] == 3000
    # b: 1000 * 0.1 + 500 * 0.2; the opportunity created after as_of is ignored
    assert out.loc["b", "expected_expansion"] == pytest.approx(200)
    assert out.loc["b", "n_open_opportunities"] == 2
    # c: only a renewal -> not expansion
    assert "c" not in out.index
    custom = {"prospecting": 0, "qualification": 0, "proposal": 1, "negotiation": 1}
    out = expected_expansion(_opportunities(), as_of=AS_OF, stage_weights=custom)
    assert out.set_index("account_id").loc["a", "expected_expansion"] == pytest.approx(2000)


def test_expected_expansion_errors():
    with pytest.raises(ValuationInputError, match="no weight for open stage"):
        expected_expansion(_opportunities(), stage_weights={"proposal": 0.5})
    bad = _opportunities().assign(probability=1.5)
    with pytest.raises(ValuationInputError, match="probability must lie in"):
        expected_expansion(bad)


def test_potential_value_headroom_and_share_of_wallet():
    tx, acc = _whitespace_data()
    f = acc.assign(revenue_12m=[50.0, 100, 200, 300, 1400, 0, 9999])
    f.loc[f["account_id"] == "F", "wallet_estimate"] = np.nan
    out = potential_value(
        f,
        tx,
        _opportunities().assign(account_id="A"),
        as_of=AS_OF,
        size_bands=ONE_BAND,
        whitespace=val.WhitespaceSettings(min_peers=4),
    ).set_index("account_id")
    assert out.loc["A", "share_of_wallet"] == 50 / 2000
    assert out.loc["A", "headroom"] == 1950
    assert out.loc["E", "headroom"] == 0.0  # wallet below revenue: no negative headroom
    assert out.loc["E", "share_of_wallet"] == 1.4
    assert np.isnan(out.loc["F", "headroom"]) and np.isnan(out.loc["F", "share_of_wallet"])
    # F has no wallet, so it falls in the "unknown" band: A keeps 4 peers (B-E), all buying L1
    assert out.loc["A", "whitespace"] == 500.0  # 250 scaled by 2000 / 1000
    assert out.loc["A", "whitespace_lines"] == 1
    assert out.loc["A", "expected_expansion"] == pytest.approx(1600)  # 1400 + 200 (all moved to A)
    assert out.loc["B", "expected_expansion"] == 0.0
    none = potential_value(f, tx, None, as_of=AS_OF)
    assert none["expected_expansion"].isna().all()


def test_qualitative_value_passes_through_and_checks_range():
    acc = pd.DataFrame({"account_id": ["a", "b"], "strategic_fit": [5, None], "synergy": [1, 2]})
    out = qualitative_value(acc)
    assert list(out.columns) == ["account_id", *val.QUALITATIVE_CRITERIA]
    assert out["strategic_fit"].iloc[0] == 5.0 and np.isnan(out["strategic_fit"].iloc[1])
    assert out["co_development"].isna().all()
    with pytest.raises(ValuationInputError, match="synergy must be a score from 1 to 5"):
        qualitative_value(acc.assign(synergy=[0, 6]))


def test_valuation_table_end_to_end_scores_with_default_weights():
    tx, acc = _whitespace_data()
    f = pd.DataFrame(
        {
            "account_id": list("ABCDEFG"),
            "revenue_12m": [50.0, 100, 200, 300, 400, 0, 9999],
            "gross_profit_12m": [20.0, 30, 60, 90, 120, 0, 3000],
            "revenue_growth": [0.1, 0.2, np.nan, 0.0, -0.1, np.nan, 0.5],
        }
    )
    table = valuation_table(
        f,
        tx,
        as_of=AS_OF,
        accounts=acc.assign(strategic_fit=[5, 4, 3, 2, 1, 1, 5]),
        opportunities=_opportunities().assign(account_id="B"),
    )
    for c in ("margin_12m", "trend", "headroom", "whitespace", "expected_expansion", "synergy"):
        assert c in table.columns
    scored = attractiveness_score(table)
    np.testing.assert_allclose(scored.filter(like="contrib_").sum(axis=1), scored["score"])
    assert len(scored) == 7


# --------------------------------------------------------------------------- robustness


def _dominant_table() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 40
    t = pd.DataFrame(
        {
            "account_id": [f"A{i:02d}" for i in range(n)],
            "revenue_12m": rng.uniform(1, 100, n),
            "headroom": rng.uniform(1, 100, n),
            "strategic_fit": rng.integers(1, 5, n).astype(float),
        }
    )
    # A00 is best on every criterion
    t.loc[0, ["revenue_12m", "headroom", "strategic_fit"]] = [1000.0, 1000.0, 5.0]
    return t


W = {"revenue_12m": 0.5, "headroom": 0.3, "strategic_fit": 0.2}


def _top1(scored: pd.DataFrame) -> np.ndarray:
    return np.where(scored["rank"] == 1, "key", "standard")


def test_weight_robustness_dominant_account_always_key():
    out = weight_robustness(_dominant_table(), W, _top1, draws=200, spread=0.5, seed=1)
    top = out.set_index("account_id").loc["A00"]
    assert top["base_tier"] == "key"
    assert top["tier_stability"] == 1.0
    assert top["rank_p10"] == top["rank_p90"] == 1
    assert out["tier_stability"].between(0, 1).all()
    # base score equals attractiveness_score
    base = attractiveness_score(_dominant_table(), W)
    np.testing.assert_allclose(out["base_score"], base["score"])
    assert (out["base_rank"] == base["rank"]).all()


def test_weight_robustness_zero_spread_reproduces_base_ranks_and_is_seeded():
    t = _dominant_table()
    out = weight_robustness(t, W, draws=20, method="scale", spread=0.0)
    assert (out["rank_p10"] == out["base_rank"]).all()
    assert (out["rank_p90"] == out["base_rank"]).all()
    a = weight_robustness(t, W, _top1, draws=50, method="scale", spread=0.4, seed=7)
    b = weight_robustness(t, W, _top1, draws=50, method="scale", spread=0.4, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert (a["rank_p10"] <= a["rank_p50"]).all() and (a["rank_p50"] <= a["rank_p90"]).all()


def test_weight_robustness_close_accounts_swap():
    # two accounts, each best on one of two equally weighted criteria: rank flips with the weights
    t = pd.DataFrame({"account_id": ["x", "y"], "revenue_12m": [2.0, 1.0], "headroom": [1.0, 2.0]})
    out = weight_robustness(
        t, {"revenue_12m": 1, "headroom": 1}, _top1, draws=400, method="scale", spread=0.3
    )
    assert 0.3 < out["tier_stability"].iloc[0] < 0.7


def test_weight_robustness_errors():
    t = _dominant_table()
    with pytest.raises(ValuationInputError, match="spread"):
        weight_robustness(t, W, spread=1.0)
    with pytest.raises(ValuationInputError, match="draws"):
        weight_robustness(t, W, draws=0)
    with pytest.raises(ValuationInputError, match="one tier per account"):
        weight_robustness(t, W, lambda s: ["key"], draws=2)


# --------------------------------------------------------------------------- report summaries


def test_contribution_by_group_sums_families_to_score():
    scored = pd.DataFrame(
        {
            "account_id": ["a", "b"],
            "score": [60.0, 30.0],
            "contrib_gross_profit_12m": [20.0, 5.0],
            "contrib_trend": [5.0, 5.0],
            "contrib_headroom": [15.0, 10.0],
            "contrib_strategic_fit": [10.0, 0.0],
            "contrib_employees": [10.0, 10.0],  # a numeric column outside every family
        }
    )
    out = val.contribution_by_group(scored)
    assert list(out.columns) == [
        "account_id",
        "contrib_current",
        "contrib_potential",
        "contrib_qualitative",
        "contrib_other",
    ]
    assert out["contrib_current"].tolist() == [25.0, 10.0]
    assert out["contrib_potential"].tolist() == [15.0, 10.0]
    assert out["contrib_qualitative"].tolist() == [10.0, 0.0]
    np.testing.assert_allclose(out.drop(columns="account_id").sum(axis=1), scored["score"])
    # without stray criteria there is no "other" column
    assert "contrib_other" not in val.contribution_by_group(
        scored.drop(columns="contrib_employees")
    )
    with pytest.raises(ValuationInputError, match="contrib_"):
        val.contribution_by_group(scored[["account_id", "score"]])


def test_valuation_summary_hand_computed():
    scored = pd.DataFrame(
        {
            "account_id": list("abcd"),
            "rank": [2, 1, 3, 4],
            "revenue_12m": [100.0, 300.0, 0.0, 600.0],
            "gross_profit_12m": [50.0, 100.0, -10.0, 60.0],
            "wallet_estimate": [400.0, 600.0, np.nan, 1000.0],
            "headroom": [300.0, 300.0, np.nan, 400.0],
            "whitespace": [10.0, 0.0, 5.0, 0.0],
        }
    )
    s = val.valuation_summary(scored, top=2).iloc[0]
    assert s["n_accounts"] == 4 and s["n_active"] == 3
    assert s["revenue_12m"] == 1000.0 and s["gross_profit_12m"] == 200.0
    assert s["margin_12m"] == pytest.approx(0.2)
    # wallet known for a, b, d: revenue 1000 / wallet 2000
    assert s["wallet_estimate"] == 2000.0 and s["share_of_wallet"] == pytest.approx(0.5)
    assert s["headroom"] == 1000.0 and s["whitespace"] == 15.0
    assert np.isnan(s["expected_expansion"])  # column absent
    # top 2 by rank = b, a: revenue 400 / 1000, GP 150 / 200
    assert s["n_top"] == 2
    assert s["top_revenue_share"] == pytest.approx(0.4)
    assert s["top_gp_share"] == pytest.approx(0.75)
    assert val.valuation_summary(scored, top=10).iloc[0]["top_revenue_share"] == 1.0
    with pytest.raises(ValuationInputError, match="top"):
        val.valuation_summary(scored, top=0)
    with pytest.raises(ValuationInputError, match="rank"):
        val.valuation_summary(scored.drop(columns="rank"))


def test_account_whitespace_uses_the_settings_and_matches_potential_value():
    tx, acc = _whitespace_data()
    table = acc.assign(revenue_12m=[50.0, 100, 200, 300, 400, 0, 9999])
    cfg = ValuationSettings(size_bands=ONE_BAND, whitespace={"scale_by_size": False})
    ws = val.account_whitespace(table, tx, as_of=AS_OF, settings=cfg)
    pivot = whitespace_pivot(ws)
    assert pivot.loc["A"].tolist() == [250.0, 0.0]  # as in the hand-computed matrix test
    pot = val.potential_value(
        table, tx, as_of=AS_OF, size_bands=ONE_BAND, whitespace=cfg.whitespace
    ).set_index("account_id")
    np.testing.assert_allclose(pivot.sum(axis=1).reindex(pot.index), pot["whitespace"])
    # a stricter adoption threshold removes A's whitespace
    strict = ValuationSettings(
        size_bands=ONE_BAND, whitespace={"scale_by_size": False, "adoption_threshold": 0.9}
    )
    assert (
        val.account_whitespace(table, tx, as_of=AS_OF, settings=strict)["whitespace_value"].sum()
        == 0.0
    )


def test_criterion_weights_table_normalised_and_grouped():
    out = val.criterion_weights(
        {"strategic_fit": 1.0, "revenue_12m": 2.0, "headroom": 1.0, "employees": 0.0, "x": 4}
    )
    assert out["criterion"].tolist() == ["revenue_12m", "headroom", "strategic_fit", "x"]
    assert out["family"].tolist() == ["current", "potential", "qualitative", "other"]
    np.testing.assert_allclose(out["weight"], [0.25, 0.125, 0.125, 0.5])
    default = val.criterion_weights()
    assert default["weight"].sum() == pytest.approx(1.0)
    # default families: 45 % current, 28 % potential, 27 % qualitative (ValuationSettings doc)
    fam = default.groupby("family")["weight"].sum()
    assert fam.to_dict() == pytest.approx({"current": 0.45, "potential": 0.28, "qualitative": 0.27})
    with pytest.raises(ValuationInputError, match="negative"):
        val.criterion_weights({"revenue_12m": -1.0})

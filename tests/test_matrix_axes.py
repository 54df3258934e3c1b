"""Scores that mean what they say (issue 17): zero-inflated criteria, customer-side
attractiveness against our position, percentile thresholds, and the rule's capacity order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kam_analysis.segmentation import (
    SegmentationSettings,
    assign_tiers,
    cohens_kappa,
    portfolio_matrix,
    tier_conditions,
    tier_rule,
    tiers_if_active,
)
from kam_analysis.valuation import (
    CUSTOMER_SIDE_CRITERIA,
    ValuationSettings,
    attractiveness_score,
    attractiveness_weights,
    customer_attractiveness,
    normalise,
)

# --------------------------------------------------------------------------- normalisation


def test_rank_normalisation_gives_zero_inflated_zeros_no_contribution():
    # 88 % zeros, then a skewed tail: the zeros are the smallest value and map to 0
    # (mean-rank percentiles would give them (44.5 - 1) / 99 = 0.44)
    values = pd.Series(
        [0.0] * 88 + [1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 55.0, 89.0, 1e6, 2e6]
    )
    n = normalise(values.rename("whitespace"), "rank")
    assert (n.iloc[:88] == 0).all()
    # the positive values keep their order; the largest gets 1
    assert n.iloc[88:].is_monotonic_increasing and n.iloc[-1] == 1.0
    # mean ranks: zeros 44.5, then 89 ... 100: value 1 -> (89 - 44.5) / (100 - 44.5)
    assert n.iloc[88] == pytest.approx(44.5 / 55.5)
    # in a score, an account without whitespace gets no whitespace contribution
    table = pd.DataFrame(
        {"account_id": range(100), "whitespace": values, "revenue_12m": range(100)}
    )
    out = attractiveness_score(table, {"whitespace": 0.5, "revenue_12m": 0.5})
    assert (out["contrib_whitespace"].iloc[:88] == 0).all()
    # minmax agrees that zero is zero
    assert (normalise(values.rename("w"), "minmax").iloc[:88] == 0).all()


def test_rank_normalisation_pins_ties_at_both_ends():
    # ratings 1-5 with ties: the lowest rating -> 0, the highest -> 1, the middle by mean rank
    s = pd.Series([1.0, 1.0, 3.0, 5.0, 5.0, 5.0], name="strategic_fit")
    # mean ranks 1.5, 1.5, 3, 5, 5, 5 -> (r - 1.5) / 3.5
    np.testing.assert_allclose(normalise(s, "rank"), [0, 0, 1.5 / 3.5, 1, 1, 1])
    # without ties it is the plain percentile rank (r - 1) / (n - 1)
    np.testing.assert_allclose(normalise(pd.Series([3.0, 1.0, 2.0], name="x")), [1, 0, 0.5])


# --------------------------------------------------------------------------- the two axes


def _book() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": list("abcd"),
            "revenue_12m": [400.0, 300.0, 200.0, 100.0],
            "gross_profit_12m": [100.0, 80.0, 50.0, 20.0],
            "wallet_estimate": [500.0, 3000.0, 250.0, 2000.0],
            "share_of_wallet": [0.8, 0.1, 0.8, 0.05],
            "strategic_fit": [3.0, 4.0, 2.0, 5.0],
        }
    )


def test_attractiveness_leaves_our_revenue_and_gross_profit_to_the_position_axis():
    w = {"revenue_12m": 0.3, "gross_profit_12m": 0.3, "wallet_estimate": 0.2, "strategic_fit": 0.2}
    assert attractiveness_weights(_book(), w) == {"wallet_estimate": 0.2, "strategic_fit": 0.2}
    att = customer_attractiveness(_book(), w)
    # wallet ranks b 1, d 2/3, a 1/3, c 0; fit ranks d 1, b 2/3, a 1/3, c 0; equal weights
    np.testing.assert_allclose(att, [100 / 3, 250 / 3, 0, 250 / 3])
    # our revenue drives the valuation score instead: a (largest revenue) ranks first there
    assert attractiveness_score(_book(), w)["rank"].tolist()[0] == 1


def test_without_wallet_estimates_our_revenue_stands_in_for_the_customers_size():
    book = _book().drop(columns=["wallet_estimate", "share_of_wallet"])
    w = {"gross_profit_12m": 0.5, "wallet_estimate": 0.3, "strategic_fit": 0.2}
    assert attractiveness_weights(book, w) == {"revenue_12m": 0.3, "strategic_fit": 0.2}
    # no customer-side criterion has data: attractiveness is the score (its fallback weights)
    only_ours = _book()[["account_id", "revenue_12m", "gross_profit_12m"]]
    w2 = {"revenue_12m": 1.0, "gross_profit_12m": 1.0}
    np.testing.assert_allclose(
        customer_attractiveness(only_ours, w2, fallback=w2),
        attractiveness_score(only_ours, w2)["score"],
    )
    # the default attractiveness weights on that book: size falls to our revenue, the
    # criteria without a column have no data
    assert attractiveness_weights(only_ours) == {"revenue_12m": 1.0}
    assert set(CUSTOMER_SIDE_CRITERIA).isdisjoint(
        {"revenue_12m", "gross_profit_12m", "share_of_wallet", "headroom", "margin_12m"}
    )


def test_portfolio_matrix_reads_attractiveness_and_our_revenue_in_the_position():
    scored = _book().assign(score=[90.0, 60.0, 40.0, 50.0])
    scored["attractiveness"] = customer_attractiveness(
        _book(), {"wallet_estimate": 0.5, "strategic_fit": 0.5}
    ).to_numpy()
    cfg = SegmentationSettings(position_weights={"share_of_wallet": 0.5, "revenue_12m": 0.5})
    pm = portfolio_matrix(scored, settings=cfg).set_index("account_id")
    np.testing.assert_allclose(pm["attractiveness"], scored["attractiveness"])
    # position: sow mean ranks a, c 3.5 (the top -> 1), b 2 -> (2 - 1) / 2.5 = 0.4, d 0;
    # revenue ranks 1, 2/3, 1/3, 0; equal weights
    np.testing.assert_allclose(
        pm["position"], [100, 100 * (0.4 + 2 / 3) / 2, 100 * (1 + 1 / 3) / 2, 0]
    )
    # a big customer where we are weak (b) is a star, a small one where we are strong (c) status
    assert pm.loc["b", "quadrant"] == "star" and pm.loc["c", "quadrant"] == "status"


# --------------------------------------------------------------------------- thresholds


def _giant_book(n: int = 40) -> pd.DataFrame:
    """One giant account: minmax compresses everybody else's score towards 0."""
    rng = np.random.default_rng(3)
    revenue = np.r_[1e9, rng.uniform(1e5, 1e6, n - 1)]
    return pd.DataFrame(
        {
            "account_id": [f"A{i:02d}" for i in range(n)],
            "revenue_12m": revenue,
            "share_of_wallet": np.r_[0.9, rng.uniform(0.4, 0.9, n - 1)],
        }
    )


def test_minmax_scores_starve_absolute_thresholds_and_the_rule_says_why():
    scored = attractiveness_score(_giant_book(), {"revenue_12m": 1.0}, normalisation="minmax")
    # everybody but the giant scores under 0.1, so only the giant reaches the floor of 50
    assert (scored["score"].iloc[1:] < 0.1).all()
    absolute = SegmentationSettings(thresholds="absolute", key_min_score=50, growth_min_score=50)
    assert tier_rule(scored, absolute).n_key == 1
    # without the giant on the book (it left), nobody is key, and the rule says why
    lost = scored.assign(status=["churned"] + ["active"] * (len(scored) - 1))
    rule = tier_rule(lost, absolute)
    assert rule.n_key == 0 and rule.no_key_reason == "score_floor"
    assert 'thresholds = "percentile"' in rule.no_key_text


def test_percentile_thresholds_hold_for_any_normalisation():
    book = _giant_book()
    cfg = SegmentationSettings(
        key_max_share=0.1, key_min_score=75, growth_min_score=75, thresholds="percentile"
    )
    tiers = {}
    for method in ("rank", "minmax", "zscore"):
        scored = attractiveness_score(book, {"revenue_12m": 1.0}, normalisation=method)
        tiers[method] = assign_tiers(scored, cfg)["tier"].tolist()
    # one criterion: every normalisation orders the accounts alike, so the tiers agree
    assert tiers["rank"] == tiers["minmax"] == tiers["zscore"]
    assert tiers["rank"].count("key") == 4  # capacity 10 % of 40
    text = tier_conditions(attractiveness_score(book, {"revenue_12m": 1.0}), cfg)
    assert text.loc[0, "text"] == "Key account: score percentile rank at least 75 of 100 (applied)"


def test_capacity_goes_to_the_highest_account_value_among_the_eligible():
    scored = pd.DataFrame(
        {
            "account_id": list("abc"),
            "score": [70.0, 90.0, 80.0],  # account value: b, c, a
            "attractiveness": [95.0, 60.0, 55.0],  # all above the floor of 50
            "share_of_wallet": [0.5, 0.6, 0.7],
        }
    )
    cfg = SegmentationSettings(
        key_capacity=2, key_max_share=None, thresholds="absolute", key_min_score=50
    )
    out = assign_tiers(scored, cfg).set_index("account_id")
    assert out["tier"].to_dict() == {"a": "standard", "b": "key", "c": "key"}
    assert out.loc["a", "tier_reason"].startswith("standard: not key (eligible but rank 3")
    assert "attractiveness 60.0 >= 50" in out.loc["b", "tier_reason"]


def test_attractiveness_weights_are_the_customers_own():
    # the default: size 40 %, growth 15 %, strategic value 45 %, nothing of our position
    w = ValuationSettings().attractiveness_weights
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["wallet_estimate"] == pytest.approx(0.40)
    assert w["revenue_growth"] + w["trend"] == pytest.approx(0.15)
    assert set(w).isdisjoint({"revenue_12m", "gross_profit_12m", "share_of_wallet", "headroom"})
    # our revenue on the attractiveness axis would correlate the two axes: refused, by name
    with pytest.raises(ValueError, match=r"\['revenue_12m'\].*position"):
        ValuationSettings(attractiveness_weights={"wallet_estimate": 0.5, "revenue_12m": 0.5})
    # a column of the user's own (e.g. the customer's own growth from the CRM) is allowed
    own = ValuationSettings(attractiveness_weights={"wallet_estimate": 1, "customer_growth": 1})
    book = _book().assign(customer_growth=[0.1, 0.3, 0.0, 0.2])
    att = customer_attractiveness(book, own.attractiveness_weights)
    assert att.idxmax() == 1  # b: largest wallet and fastest own growth


def test_percentile_thresholds_on_a_flat_book_say_why_nobody_is_key():
    # every account equally attractive: all share the middle percentile rank (50), below 80
    flat = pd.DataFrame({"account_id": list("abcd"), "score": 40.0, "attractiveness": 40.0})
    rule = tier_rule(flat, SegmentationSettings())
    assert rule.n_key == 0 and rule.no_key_reason == "score_floor"
    assert rule.no_key_text == (
        "No key accounts: no active account reaches the attractiveness percentile rank 80 "
        "(highest 50.0): the accounts' attractiveness barely differs, so the data cannot tell "
        "the most attractive apart."
    )
    assert "thresholds" not in rule.no_key_text  # they are percentile ranks already


def test_a_lost_account_is_tiered_as_if_active_on_the_percentile_scale():
    # the book: 10 active accounts, attractiveness 10 ... 100, one lost account
    n = 10
    scored = pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(n)] + ["L"],
            "score": [50.0] * n + [10.0],
            "attractiveness": list(np.linspace(10, 100, n)) + [5.0],
            "share_of_wallet": [0.9] * n + [np.nan],
            "status": ["active"] * n + ["churned"],
        }
    )
    cfg = SegmentationSettings(key_max_share=None)  # percentile thresholds at 80
    scored["tier"] = assign_tiers(scored, cfg, reasons=False)["tier"]
    assert scored["tier"].tolist()[:n] == ["standard"] * 8 + ["key"] * 2
    # as if active: the thresholds read its attractiveness against the live book
    for attractiveness, share, tier in ((95.0, 0.8, "key"), (95.0, 0.1, "growth"), (60.0, 0.8, "")):
        as_if = scored.assign(score=50.0, headroom=1.0)
        as_if.loc[n, ["attractiveness", "share_of_wallet"]] = [attractiveness, share]
        got = tiers_if_active(scored.assign(headroom=1.0), as_if, cfg)
        assert got[n] == (tier or "standard") and (got[:n] == "").all()
    # a high valuation score alone does not make it key: the thresholds read attractiveness
    as_if = scored.assign(score=99.0, headroom=1.0)
    as_if.loc[n, ["attractiveness", "share_of_wallet"]] = [20.0, 0.8]
    assert tiers_if_active(scored.assign(headroom=1.0), as_if, cfg)[n] == "standard"


# --------------------------------------------------------------------------- planted truth


@pytest.mark.slow
def test_axes_are_less_correlated_and_tiers_closer_to_the_planted_ones(demo_context):
    pytest.importorskip("ibis")
    ctx = demo_context(1500, 0)
    truth = pd.read_parquet(ctx.data_dir / "ground_truth_accounts.parquet")
    s = ctx.scored.merge(truth[["account_id", "true_tier"]], on="account_id")
    active = (s["status"] == "active").to_numpy()
    pm = portfolio_matrix(ctx.scored, ctx.features)
    rho_new = pm[["attractiveness", "position"]].corr("spearman").iloc[0, 1]
    old = portfolio_matrix(ctx.scored.drop(columns="attractiveness"), ctx.features)
    rho_old = old[["attractiveness", "position"]].corr("spearman").iloc[0, 1]
    # the valuation score counts our revenue and gross profit, which the position also
    # measures; the customer-side attractiveness does not
    assert rho_new < rho_old - 0.15
    k_new = cohens_kappa(s["true_tier"][active], s["tier"][active])
    by_score = assign_tiers(ctx.scored.drop(columns="attractiveness"))
    k_score = cohens_kappa(s["true_tier"][active], by_score["tier"][active])
    assert k_new > k_score + 0.03

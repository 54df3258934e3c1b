"""SMAA weight robustness and effective weights (kam_analysis.valuation).

Known answers are hand-computed in the comments: the Dirichlet marginal of a
weight ``w`` at concentration ``a`` is ``Beta(a w, a (1 - w))``, and for
independent criteria the effective weight is ``w_c^2 Var(n_c) / sum_k w_k^2 Var(n_k)``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta

from kam_analysis.valuation import (
    RobustnessSettings,
    ValuationInputError,
    attractiveness_score,
    dirichlet_sd,
    draw_weights,
    effective_weights,
    tier_stability_summary,
    weight_robustness,
)

W = {"revenue_12m": 0.5, "headroom": 0.3, "strategic_fit": 0.2}


def _random_table(n: int = 60, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "account_id": [f"A{i:03d}" for i in range(n)],
            "revenue_12m": rng.lognormal(3, 1, n),
            "headroom": rng.uniform(1, 100, n),
            "strategic_fit": rng.integers(1, 6, n).astype(float),
        }
    )


def _top1(scored: pd.DataFrame) -> np.ndarray:
    return np.where(scored["rank"] == 1, "key", "standard")


def _duel() -> pd.DataFrame:
    # x is best on revenue, y on headroom: x ranks first exactly when w_revenue > w_headroom,
    # under every normalisation (rank and minmax give 0/1, zscore Phi(-+1/sqrt 2), symmetric)
    return pd.DataFrame(
        {"account_id": ["x", "y"], "revenue_12m": [2.0, 1.0], "headroom": [1.0, 2.0]}
    )


# --------------------------------------------------------------------------- draws


def test_dirichlet_draws_are_centred_on_the_stated_weights():
    d = draw_weights(W, draws=20_000, concentration=20, seed=1)
    assert list(d.columns) == list(W)
    np.testing.assert_allclose(d.sum(axis=1), 1.0)
    for c, w in W.items():
        sd = dirichlet_sd(w, 20)  # Beta(20 w, 20 (1 - w)): sd = sqrt(w (1 - w) / 21)
        assert abs(d[c].mean() - w) < 4 * sd / np.sqrt(len(d)), c
        assert d[c].std() == pytest.approx(sd, rel=0.03), c
    assert dirichlet_sd(0.25, 20) == pytest.approx(np.sqrt(0.1875 / 21))


def test_dirichlet_draws_tighten_with_the_concentration_and_are_seeded():
    loose = draw_weights(W, draws=2000, concentration=5, seed=2)
    tight = draw_weights(W, draws=2000, concentration=500, seed=2)
    assert (loose.std() > 3 * tight.std()).all()
    pd.testing.assert_frame_equal(draw_weights(W, seed=4), draw_weights(W, seed=4))
    assert not draw_weights(W, seed=4).equals(draw_weights(W, seed=5))


def test_scale_draws_stay_within_the_factor_range():
    d = draw_weights({"a": 1, "b": 1}, draws=5000, method="scale", spread=0.3, seed=0)
    # a / b = U_a / U_b with U in [0.7, 1.3]: the share of a lies in [0.7/2, 1.3/2]
    assert d["a"].between(0.35, 0.65).all()
    assert d["a"].min() < 0.4 and d["a"].max() > 0.6


# --------------------------------------------------------------------------- acceptability


def test_dominant_account_has_rank_one_acceptability_one():
    t = _random_table()
    t.loc[0, ["revenue_12m", "headroom", "strategic_fit"]] = [1e6, 1e3, 5.0]  # best on all
    out = weight_robustness(t, W, _top1, draws=300, concentration=5, seed=0)
    top = out.set_index("account_id").loc["A000"]
    assert top["p_top1"] == 1.0 and top["tier_stability"] == 1.0 and top["p_key"] == 1.0
    assert top["rank_p90"] == 1


def test_two_accounts_that_swap_share_ranks_one_and_two():
    w = {"revenue_12m": 0.6, "headroom": 0.4}
    out = weight_robustness(_duel(), w, _top1, draws=2000, bands=(1, 2))
    assert out["p_top1"].sum() == 1.0  # rank acceptabilities of rank 1 ...
    assert ((out["p_top2"] - out["p_top1"]).sum()) == 1.0  # ... and of rank 2
    assert (out["p_top2"] == 1.0).all()
    # P(x first) = P(W_rev > 1/2) with W_rev ~ Beta(20 * 0.6, 20 * 0.4) = Beta(12, 8)
    p = beta.sf(0.5, 12, 8)  # 0.820
    se = np.sqrt(p * (1 - p) / 2000)
    assert out["p_top1"].iloc[0] == pytest.approx(p, abs=4 * se)
    np.testing.assert_allclose(out["p_key"] + out["p_standard"], 1.0)


def test_top_k_acceptabilities_sum_to_k_over_the_accounts():
    # every draw puts exactly k accounts in the top k
    out = weight_robustness(_random_table(), W, draws=200, bands=(1, 5, 10), seed=2)
    for k in (1, 5, 10):
        assert out[f"p_top{k}"].sum() == pytest.approx(k)
    assert (out["p_top1"] <= out["p_top5"]).all() and (out["p_top5"] <= out["p_top10"]).all()


def test_fixed_weights_and_normalisation_reproduce_the_base():
    t = _random_table()
    out = weight_robustness(
        t, W, _top1, draws=50, concentration=1e12, normalisations=("rank",), seed=0
    )
    base = attractiveness_score(t, W)
    np.testing.assert_allclose(out["base_score"], base["score"])
    assert (out["rank_p10"] == base["rank"]).all() and (out["rank_p90"] == base["rank"]).all()
    assert (out["tier_stability"] == 1.0).all()


def test_another_normalisation_changes_the_order_not_the_scale():
    # weights fixed, every draw minmax: the draw's scores are the base (rank) scores
    # handed out in the minmax order, so the scale the thresholds read is unchanged
    t = _random_table()
    out = weight_robustness(t, W, draws=5, concentration=1e12, normalisations=("minmax",))
    np.testing.assert_allclose(out["score_p10"], out["score_p90"], rtol=1e-5)
    np.testing.assert_allclose(np.sort(out["score_p10"]), np.sort(out["base_score"]), rtol=1e-5)
    minmax = attractiveness_score(t, W, normalisation="minmax")["rank"]
    assert (out["rank_p50"] == minmax).all()
    assert (minmax != out["base_rank"]).any()  # the orders do differ


def test_smaa_is_wider_than_the_old_scaling():
    t = _random_table(200)
    old = weight_robustness(t, W, draws=300, method="scale", spread=0.3, seed=0)
    new = weight_robustness(t, W, draws=300, seed=0)
    width = lambda r: (r["rank_p90"] - r["rank_p10"]).mean()  # noqa: E731
    assert width(new) > 1.5 * width(old)


def test_results_are_deterministic_with_a_seed():
    t = _random_table()
    a = weight_robustness(t, W, _top1, draws=80, seed=7)
    b = weight_robustness(t, W, _top1, draws=80, seed=7)
    pd.testing.assert_frame_equal(a, b)
    c = weight_robustness(t, W, _top1, draws=80, seed=8)
    assert not a["rank_p90"].equals(c["rank_p90"])


def test_customer_attractiveness_is_redrawn_with_the_weights():
    # tiers read the customer-side `attractiveness`; without wallet data our revenue stands in
    # for the customer's size and takes the wallet's drawn weight (not revenue's own, 0)
    t = pd.DataFrame(
        {
            "account_id": ["x", "y"],
            "revenue_12m": [2.0, 1.0],
            "wallet_estimate": [np.nan, np.nan],
            "strategic_fit": [1.0, 5.0],
            "attractiveness": [0.0, 0.0],  # stale: must be recomputed
        }
    )

    def key_by_attractiveness(s: pd.DataFrame) -> np.ndarray:
        return np.where(s["attractiveness"] == s["attractiveness"].max(), "key", "standard")

    weights = {"wallet_estimate": 0.6, "strategic_fit": 0.4, "revenue_12m": 0.0}
    out = weight_robustness(
        t, weights, key_by_attractiveness, draws=2000, seed=3, attractiveness=weights
    )
    # x is key when the wallet's weight beats strategic fit's: P = P(Beta(12, 8) > 1/2)
    p = beta.sf(0.5, 12, 8)
    assert out["base_tier"].tolist() == ["key", "standard"]
    assert out["p_key"].iloc[0] == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / 2000))


def test_tier_stability_summary_counts_stable_accounts_per_tier():
    robust = pd.DataFrame(
        {
            "base_tier": ["key", "key", "key", "standard"],
            "tier_stability": [1.0, 0.9, 0.89, 0.5],
        }
    )
    out = tier_stability_summary(robust).set_index("tier")
    assert out.loc["key", "n"] == 3 and out.loc["key", "n_stable"] == 2
    assert out.loc["key", "share_stable"] == pytest.approx(2 / 3)
    assert out.loc["standard", "n_stable"] == 0
    with pytest.raises(ValuationInputError, match="threshold"):
        tier_stability_summary(robust, threshold=0)


def test_robustness_settings_and_errors():
    cfg = RobustnessSettings()
    assert cfg.method == "smaa" and cfg.concentration == 20
    assert cfg.normalisations == ("rank", "minmax", "zscore")
    t = _random_table()
    with pytest.raises(ValuationInputError, match="concentration"):
        weight_robustness(t, W, concentration=0)
    with pytest.raises(ValuationInputError, match="method"):
        weight_robustness(t, W, method="uniform")
    with pytest.raises(ValuationInputError, match="normalisations"):
        weight_robustness(t, W, normalisations=("log",))
    with pytest.raises(ValuationInputError, match="bands"):
        weight_robustness(t, W, bands=(0,))


# --------------------------------------------------------------------------- effective weights


def _factorial(columns: int) -> pd.DataFrame:
    """Every combination of 4 levels per criterion: uncorrelated, equal variances."""
    grid = np.array(list(itertools.product(range(4), repeat=columns)), dtype=float)
    t = pd.DataFrame(grid, columns=[f"c{j}" for j in range(columns)])
    t.insert(0, "account_id", [f"A{i:03d}" for i in range(len(t))])
    return t


def test_independent_equal_variance_criteria_get_squared_weight_shares():
    t = _factorial(3)
    out = effective_weights(t, {"c0": 0.5, "c1": 0.3, "c2": 0.2}).set_index("criterion")
    # e_c = w_c^2 / sum w_k^2 = (0.25, 0.09, 0.04) / 0.38
    np.testing.assert_allclose(out["effective_weight"], np.array([0.25, 0.09, 0.04]) / 0.38)
    np.testing.assert_allclose(out["stated_weight"], [0.5, 0.3, 0.2])
    equal = effective_weights(t, {"c0": 1, "c1": 1, "c2": 1})
    np.testing.assert_allclose(equal["effective_weight"], equal["stated_weight"])


def test_a_correlated_pair_takes_more_than_its_stated_share():
    t = _factorial(3).assign(copy=lambda d: 2 * d["c0"] + 1)  # same ranks as c0
    # score = 0.5 n0 + 0.25 n1 + 0.25 n2, Var = (0.25 + 2 * 0.0625) v = 0.375 v;
    # Cov(n0, score) = 0.5 v -> e_c0 = e_copy = 0.25 * 0.5 / 0.375 = 1/3, e_c1 = e_c2 = 1/6
    w = {"c0": 0.25, "copy": 0.25, "c1": 0.25, "c2": 0.25}
    out = effective_weights(t, w).set_index("criterion")["effective_weight"]
    np.testing.assert_allclose(out[["c0", "copy", "c1", "c2"]], [1 / 3, 1 / 3, 1 / 6, 1 / 6])
    # pair 0.25 + 0.25 and one independent criterion at 0.5: Var = 0.5 v, Cov(n0, s) = 0.5 v
    # -> the pair takes 0.25 + 0.25 = 1/2, against 1/3 had the two been independent
    out = effective_weights(t, {"c0": 0.25, "copy": 0.25, "c1": 0.5}).set_index("criterion")
    np.testing.assert_allclose(out["effective_weight"], [0.25, 0.25, 0.5])
    indep = effective_weights(t, {"c0": 0.25, "c2": 0.25, "c1": 0.5})["effective_weight"]
    np.testing.assert_allclose(indep, [1 / 6, 1 / 6, 2 / 3])


def test_effective_weights_sum_to_one_and_skip_criteria_without_data():
    t = _random_table().assign(whitespace=np.nan)
    w = {**W, "whitespace": 0.2, "synergy": 0.0}
    out = effective_weights(t, w)
    assert out["criterion"].tolist() == ["revenue_12m", "headroom", "strategic_fit", "whitespace"]
    assert out["effective_weight"].sum() == pytest.approx(1.0)
    ws = out.set_index("criterion").loc["whitespace"]
    assert ws["weight_used"] == 0 and ws["effective_weight"] == 0 and ws["stated_weight"] > 0
    # a scored table gives the same answer (its contributions are recomputed)
    again = effective_weights(attractiveness_score(t, w), w)
    pd.testing.assert_frame_equal(out, again)

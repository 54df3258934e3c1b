"""Chart helpers of the valuation and segmentation reports (kam_analysis.plots)."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba

from kam_analysis import plots
from kam_analysis.segmentation import pareto_table
from kam_analysis.valuation import CRITERION_GROUPS


def _no_glyph_warnings(fn, *args, **kwargs):
    """Draw the figure in the report style, missing-glyph warnings turned into errors."""
    plots.set_report_style(kwargs.get("lang", "en"))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*Glyph.*missing")
        ax = fn(*args, **kwargs)
        ax.figure.canvas.draw()
    return ax


def _top_to_bottom(ax) -> list[str]:
    ticks = zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)
    return [label.get_text() for _, label in sorted(ticks, key=lambda p: -p[0])]


def test_family_colors_one_hue_per_family_darkest_first():
    groups = {"a": ("x", "y", "z"), "b": ("u",)}
    colors = plots.family_colors(groups, cmaps=("Blues", "Greens"), prefix="contrib_")
    assert set(colors) == {"contrib_x", "contrib_y", "contrib_z", "contrib_u"}
    # shades of one family get lighter (larger sum of RGB) down the list
    brightness = [sum(colors[f"contrib_{c}"][:3]) for c in ("x", "y", "z")]
    assert brightness == sorted(brightness)
    # the second family uses the second colour map: green dominates
    r, g, b, _ = colors["contrib_u"]
    assert g > r and g > b
    # every default criterion gets a distinct colour
    default = plots.family_colors(CRITERION_GROUPS)
    assert len(set(default.values())) == len(default) == sum(map(len, CRITERION_GROUPS.values()))


def test_bar_contributions_uses_given_colors():
    df = pd.DataFrame({"gp": [3.0, 1.0], "fit": [1.0, 1.0]}, index=["A", "B"])
    ax = plots.bar_contributions(df, colors={"gp": "red"})
    colors = [p.get_facecolor() for p in ax.patches]
    assert colors[:2] == [to_rgba("red")] * 2  # first criterion: both accounts red
    assert colors[2] != to_rgba("red")  # unlisted criterion keeps the cycle colour


def test_rank_intervals_order_errorbars_and_labels():
    df = pd.DataFrame(
        {
            "name": ["third", "first", "second"],
            "base_rank": [3, 1, 2],
            "rank_p10": [2, 1, 1],
            "rank_p90": [6, 2, 4],
            "tier": ["growth", "key", "key"],
        }
    )
    ax = _no_glyph_warnings(plots.rank_intervals, df, label="name", hue="tier", lang="ja")
    assert _top_to_bottom(ax) == ["first", "second", "third"]  # best at the top
    assert len(ax.containers) == 2  # one error bar container per tier
    # the error bar of "third" spans ranks 2..6
    for cont in ax.containers:
        if cont.get_label() == plots.label_for("growth", "ja", prefix="tier."):
            segs = cont.lines[2][0].get_segments()
            assert segs[0][0][0] == 2 and segs[0][1][0] == 6
    assert ax.get_xlabel() == plots.t("valuation.chart.rank_axis", "ja")
    assert len(plots.rank_intervals(df, label="name", top_n=2).get_yticklabels()) == 2
    with pytest.raises(ValueError, match="rank_p90"):
        plots.rank_intervals(df.drop(columns="rank_p90"), label="name")


def test_wallet_bars_share_labels_and_missing_wallet():
    df = pd.DataFrame(
        {
            "name": ["A", "B", "C"],
            "revenue_12m": [25.0, 50.0, 10.0],
            "wallet_estimate": [100.0, 50.0, np.nan],
        }
    )
    ax = _no_glyph_warnings(plots.wallet_bars, df, label="name", lang="ja")
    wallet, revenue = ax.containers
    assert [p.get_width() for p in wallet] == [100.0, 50.0, 0.0]
    assert [p.get_width() for p in revenue] == [25.0, 50.0, 10.0]
    assert [x.get_text() for x in ax.texts] == ["25%", "100%"]  # C has no wallet: no share
    assert _top_to_bottom(ax) == ["A", "B", "C"]  # the given order, first at the top


def test_quadrant_scatter_names_corners_and_labels_top_points():
    rng = np.random.default_rng(0)
    n = 40
    df = pd.DataFrame(
        {
            "position": rng.uniform(0, 100, n),
            "attractiveness": rng.uniform(0, 100, n),
            "name": [f"acc{i}" for i in range(n)],
        }
    )
    df["quadrant"] = np.select(
        [
            (df["attractiveness"] >= 50) & (df["position"] >= 50),
            df["attractiveness"] >= 50,
            df["position"] >= 50,
        ],
        ["strategic", "star", "status"],
        "streamline",
    )
    ax = _no_glyph_warnings(
        plots.quadrant_scatter,
        df,
        "position",
        "attractiveness",
        "name",
        x_split=50,
        y_split=50,
        top_n=3,
        lang="ja",
    )
    texts = [x.get_text() for x in ax.texts]
    quadrant_names = [plots.t(f"segmentation.quadrant.{q}", "ja") for q in ("strategic", "star")]
    assert texts[0] == quadrant_names[0] and texts[1] == quadrant_names[1]
    top3 = df.nlargest(3, "attractiveness")["name"].tolist()
    assert texts[4:] == top3
    assert ax.get_legend() is None
    # the split lines
    xs = {tuple(line.get_xdata()) for line in ax.lines}
    assert (50, 50) in xs
    with pytest.raises(ValueError, match="corner"):
        plots.quadrant_scatter(
            df, "position", "attractiveness", "name", x_split=50, y_split=50, corners={"top": "x"}
        )


def test_pareto_curves_revenue_and_gross_profit():
    feats = pd.DataFrame(
        {
            "account_id": list("abcde"),
            "revenue_12m": [60.0, 20.0, 10.0, 5.0, 5.0],
            "gross_profit_12m": [10.0, 20.0, 5.0, 5.0, 10.0],
        }
    )
    table = pareto_table(feats)
    ax = _no_glyph_warnings(plots.pareto_curves, table, mark=0.2, lang="ja")
    revenue, _, gp, _, equal = ax.lines[:5]
    np.testing.assert_allclose(revenue.get_ydata(), [0, 0.6, 0.8, 0.9, 0.95, 1.0])
    np.testing.assert_allclose(gp.get_ydata(), [0, 0.2, 0.6, 0.7, 0.8, 1.0])
    np.testing.assert_allclose(equal.get_ydata(), [0, 1])
    # the top 20 % (one account) is marked on both curves
    assert [x.get_text() for x in ax.texts] == ["60%", "20%"]
    # without gross profit only the revenue curve is drawn
    ax2 = plots.pareto_curves(table.drop(columns="cum_gp_share"), mark=None)
    assert len(ax2.lines) == 2
    with pytest.raises(ValueError, match="mark"):
        plots.pareto_curves(table, mark=1.5)


def test_quadrant_scatter_stacks_labels_of_clustered_points():
    # ten accounts at almost the same spot: their labels must not overlap
    df = pd.DataFrame(
        {
            "position": np.r_[np.linspace(80, 81, 10), [10.0, 20.0, 30.0]],
            "attractiveness": np.r_[np.linspace(90, 90.5, 10), [10.0, 20.0, 30.0]],
            "name": [f"acc{i}" for i in range(13)],
            "quadrant": ["strategic"] * 10 + ["streamline"] * 3,
        }
    )
    ax = plots.quadrant_scatter(
        df, "position", "attractiveness", "name", x_split=50, y_split=50, top_n=10
    )
    labels = ax.texts[4:]
    assert len(labels) == 10
    ys = np.array([a.xyann[1] for a in labels])
    y0, y1 = ax.get_ylim()
    assert (np.diff(ys) <= -0.045 * (y1 - y0) + 1e-9).all()  # top to bottom, spaced
    # each label still points at its own account
    points = dict(
        zip(df["name"], zip(df["position"], df["attractiveness"], strict=True), strict=True)
    )
    assert all(tuple(a.xy) == points[a.get_text()] for a in labels)
    # the points are on the right, so the column stands to their left
    assert all(a.xyann[0] < 80 for a in labels)

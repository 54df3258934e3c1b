"""Plot helpers of the one-page account plan: KPI cards, revenue history, product lines."""

from __future__ import annotations

import re
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Rectangle

from kam_analysis import plots
from kam_analysis.plots import (
    CARD_STRIPE_COLOURS,
    kpi_cards,
    product_line_bars,
    revenue_history,
    set_report_style,
)

CARDS = [
    {"label": "Score", "value": "93.1", "note": "rank 1 of 2,000", "status": "on_track"},
    {"label": "Revenue", "value": "¥276.8M", "note": "+11.0%", "status": "at_risk"},
    {"label": "Share of wallet", "value": "62%", "status": "off_track"},
    {"label": "LTV", "value": "A$1$ Corp", "note": ""},
    {"label": "Health", "value": "67", "note": "FY2025-Q4", "status": "no_data"},
]


def test_kpi_cards_grid_texts_and_stripes():
    ax = kpi_cards(CARDS, ncols=3)
    # two rows of three columns: limits are the grid size
    assert ax.get_xlim() == (0, 3) and ax.get_ylim() == (0, 2)
    rects = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(rects) == 2 * len(CARDS)
    stripes = rects[1::2]
    expected = [
        CARD_STRIPE_COLOURS["on_track"],
        CARD_STRIPE_COLOURS["at_risk"],
        CARD_STRIPE_COLOURS["off_track"],
        "#9e9e9e",
        "#9e9e9e",
    ]
    got = [matplotlib.colors.to_hex(s.get_facecolor()) for s in stripes]
    assert got == expected
    texts = [t.get_text() for t in ax.texts]
    # label, value, note per card; empty or missing notes are not drawn
    assert texts[:3] == ["Score", "93.1", "rank 1 of 2,000"]
    assert len(texts) == 3 + 3 + 2 + 2 + 3
    assert r"A\$1\$ Corp" in texts  # data text shown as typed, not as mathtext
    # card 4 (index 3) starts the second row at the left
    card4 = rects[6]
    assert card4.get_x() < 0.1 and card4.get_y() < 1


def test_kpi_cards_one_row_when_fewer_cards_than_columns():
    ax = kpi_cards(CARDS[:2], ncols=4)
    assert ax.get_xlim() == (0, 2) and ax.get_ylim() == (0, 1)
    fig_h = ax.figure.get_size_inches()[1]
    assert fig_h == pytest.approx(1.05)


def test_kpi_cards_rejects_bad_input():
    with pytest.raises(ValueError, match="no cards"):
        kpi_cards([])
    with pytest.raises(ValueError, match=r"card 1 lacks \['value'\]"):
        kpi_cards([{"label": "a", "value": "1"}, {"label": "b"}])
    with pytest.raises(ValueError, match="ncols must be >= 1"):
        kpi_cards(CARDS, ncols=0)


def test_kpi_cards_japanese_without_missing_glyphs():
    set_report_style("ja")
    cards = [
        {"label": "魅力度スコア", "value": "¥2.8億", "note": "2,000社中1位"},
        {"label": "ヘルススコア", "value": "67", "note": "FY2025-Q4、9KPI中5件が目標達成"},
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font(s)" would raise
        ax = kpi_cards(cards)
        ax.figure.canvas.draw()


def _monthly() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "month": pd.date_range("2025-01-01", periods=6, freq="MS"),
            "revenue": [1e6, 2e6, 0.0, 1.5e6, np.nan, 3e6],
            "gross_profit": [4e5, 8e5, 0.0, 6e5, np.nan, 1.2e6],
        }
    )


def test_revenue_history_bars_and_profit_line():
    ax = revenue_history(_monthly(), lang="en", currency="JPY")
    assert len(ax.patches) == 6
    assert [p.get_height() for p in ax.patches][:2] == [1e6, 2e6]
    assert len(ax.lines) == 1
    assert np.allclose(ax.lines[0].get_ydata()[:4], [4e5, 8e5, 0.0, 6e5])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted(labels) == sorted(
        [plots.t("axis.revenue", "en"), plots.t("axis.gross_profit", "en")]
    )
    assert ax.yaxis.get_major_formatter()(2e6, 0) == "¥2M"  # round ticks: no ".0"
    assert ax.yaxis.get_major_formatter()(2.5e6, 0) == "¥2.5M"
    only = revenue_history(_monthly(), gross_profit=None)
    assert len(only.lines) == 0


def test_month_axis_labels_in_japanese_and_english():
    import matplotlib.dates as mdates

    frame = pd.DataFrame(
        {
            "month": pd.date_range("2024-04-01", periods=24, freq="MS"),
            "revenue": 1.0,
            "gross_profit": 0.5,
        }
    )
    with matplotlib.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph (no Japanese font) would raise
        plots.set_report_style("ja")
        ja = revenue_history(frame, lang="ja")
        ja.figure.canvas.draw()
    labels = [t.get_text() for t in ja.get_xticklabels() if t.get_text()]
    assert labels and all(re.fullmatch(r"\d{1,2}月|\d{4}年", x) for x in labels), labels
    fmt = ja.xaxis.get_major_formatter()
    assert fmt(mdates.date2num(pd.Timestamp("2025-01-01"))) == "2025年"
    assert fmt(mdates.date2num(pd.Timestamp("2025-07-01"))) == "7月"
    en = revenue_history(frame, lang="en")
    en.figure.canvas.draw()
    assert "Jul" in [t.get_text() for t in en.get_xticklabels()]


def test_revenue_history_errors():
    with pytest.raises(KeyError, match=r"\['gross_profit'\]"):
        revenue_history(_monthly().drop(columns="gross_profit"))
    with pytest.raises(ValueError, match="no months"):
        revenue_history(_monthly().iloc[:0])


def test_product_line_bars_stack_whitespace_after_bought():
    df = pd.DataFrame(
        {
            "product_line": ["Security", "IoT $ensors", "Training"],
            "revenue_12m": [5e6, 0.0, 1e6],
            "whitespace_value": [0.0, 3e6, 2e6],
        }
    )
    ax = product_line_bars(df, lang="ja")
    bought, ws = ax.containers
    assert [b.get_width() for b in bought] == [5e6, 0.0, 1e6]
    assert [b.get_width() for b in ws] == [0.0, 3e6, 2e6]
    assert [b.get_x() for b in ws] == [5e6, 0.0, 1e6]  # whitespace starts where bought ends
    # first row at the top
    ticks = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks(), strict=True)}
    assert ticks["Security"] > ticks[r"IoT \$ensors"] > ticks["Training"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [plots.t("plan.legend.bought", "ja"), plots.t("plan.legend.whitespace", "ja")]


def test_product_line_bars_errors():
    df = pd.DataFrame({"product_line": ["a"], "revenue_12m": [-1.0], "whitespace_value": [0.0]})
    with pytest.raises(ValueError, match=">= 0"):
        product_line_bars(df)
    with pytest.raises(ValueError, match="no product lines"):
        product_line_bars(df.iloc[:0])
    with pytest.raises(KeyError, match="whitespace"):
        product_line_bars(df.drop(columns="whitespace_value"))


def _roadmap_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "objective": ["Grow revenue", "$x$ <b>PoC</b>", "Steering"],
            "start_date": pd.to_datetime(["2025-04-01", "2026-10-01", "2023-10-01"]),
            "due_date": pd.to_datetime(["2028-03-31", "2030-03-31", "2025-09-30"]),
            "assessed": ["at_risk", "planned", "achieved"],
            "progress": [0.25, np.nan, 1.0],
        }
    )


def test_objective_roadmap_bars_progress_and_review_line():
    import matplotlib.dates as mdates

    ax = plots.objective_roadmap(_roadmap_rows(), as_of="2026-03-31", next_review="2026-04-16")
    light, solid = ax.containers[0], ax.containers[1]
    assert len(light) == len(solid) == 3
    # the first bar spans start..due; its solid part is a quarter of it
    span = mdates.date2num(pd.Timestamp("2028-03-31")) - mdates.date2num(pd.Timestamp("2025-04-01"))
    assert light[0].get_width() == pytest.approx(span)
    assert solid[0].get_width() == pytest.approx(0.25 * span)
    assert solid[1].get_width() == 0  # planned, no progress
    # the axis runs from a year before as-of to the last due date (within 5 years)
    lo, hi = ax.get_xlim()
    assert mdates.num2date(hi).date().isoformat() == "2030-03-31"
    assert mdates.num2date(lo) < pd.Timestamp("2023-10-01", tz="UTC")
    review = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert mdates.num2date(review[0].get_xdata()[0]).date().isoformat() == "2026-04-16"
    assert [t.get_text() for t in ax.get_yticklabels()][1] == r"\$x\$ <b>PoC</b>"  # no mathtext
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["achieved", "at risk", "planned", "next review"]


def test_objective_roadmap_caps_at_five_years_and_errors():
    rows = _roadmap_rows()
    rows.loc[1, "due_date"] = pd.Timestamp("2040-01-01")
    ax = plots.objective_roadmap(rows, as_of="2026-03-31", lang="ja")
    import matplotlib.dates as mdates

    assert mdates.num2date(ax.get_xlim()[1]).date().isoformat() == "2031-03-31"
    with pytest.raises(ValueError, match="no objectives"):
        plots.objective_roadmap(rows.iloc[:0], as_of="2026-03-31")
    with pytest.raises(KeyError, match="progress"):
        plots.objective_roadmap(rows.drop(columns="progress"), as_of="2026-03-31")

"""Chart and table helpers of the scenario-planning report (plots.py)."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from kam_analysis import plots


def _fans():
    months = pd.date_range("2026-04-01", periods=6, freq="MS")
    rows = []
    for k, name in enumerate(["base", "downside", "my_case"]):
        for i, d in enumerate(months):
            mid = 100.0 + i - 10 * k
            rows.append({"scenario": name, "date": d, "p10": mid - 5, "p50": mid, "p90": mid + 5})
    return pd.DataFrame(rows)


def test_scenario_fans_one_panel_per_scenario_shared_axis():
    history = pd.Series([90.0, 95.0], index=pd.to_datetime(["2026-02-01", "2026-03-01"]))
    fig = plots.scenario_fans(_fans(), history=history, target=100.0, lang="ja")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 3
    assert [ax.get_title() for ax in axes] == ["基本", "悲観", "My case"]
    for ax in axes:
        assert len(ax.collections) == 1  # the P10-P90 band
        assert ax.get_legend() is None
    assert axes[0].get_shared_y_axes().joined(axes[0], axes[2])
    median = axes[1].lines[0].get_ydata()
    np.testing.assert_allclose(median, 90.0 + np.arange(6))
    assert any(line.get_linestyle() == "--" for line in axes[0].lines)  # target
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "現在の月間ランレート" in texts and "実績" in texts


def test_scenario_fans_errors():
    with pytest.raises(ValueError, match="p90"):
        plots.scenario_fans(_fans().drop(columns="p90"))
    with pytest.raises(ValueError, match="ncols"):
        plots.scenario_fans(_fans(), ncols=0)


def _tornado():
    return pd.DataFrame(
        {
            "input": ["growth_shift", "churn_multiplier", "my_input"],
            "low_value": [-0.05, 0.5, 0.0],
            "high_value": [0.05, 2.0, 1.0],
            "output_base": [100.0] * 3,
            "output_low": [90.0, 130.0, 99.0],
            "output_high": [110.0, 60.0, 101.0],
            "swing": [20.0, 70.0, 2.0],
        }
    )


def test_tornado_chart_bars_start_at_base_largest_on_top():
    ax = plots.tornado_chart(_tornado(), currency="USD")
    low, high = ax.containers
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["Churn rate (multiplier)", "Growth (points a year)", "My input"]
    # first row (top, largest swing): churn, low -> 130, high -> 60
    assert low[0].get_x() == pytest.approx(100.0) and low[0].get_width() == pytest.approx(30.0)
    assert high[0].get_x() == pytest.approx(100.0) and high[0].get_width() == pytest.approx(-40.0)
    assert low[0].get_y() > low[2].get_y()
    assert "$" in ax.xaxis.get_major_formatter()(1e6, 0)
    assert len(plots.tornado_chart(_tornado(), top_n=1).containers[0]) == 1
    with pytest.raises(ValueError, match="non-empty"):
        plots.tornado_chart(_tornado().iloc[:0])


def _trend():
    return pd.DataFrame(
        {
            "period": ["2025Q1", "2025Q2", "2025Q1", "2025Q2"],
            "basis": ["revenue", "revenue", "gross_profit", "gross_profit"],
            "top1_share": [0.1, 0.2, 0.3, 0.4],
            "top5_share": [0.3, 0.5, 0.6, 0.7],
            "hhi": [800.0, 900.0, 1000.0, 1100.0],
        }
    )


def test_concentration_trend_plot_lines_and_thresholds():
    ax = plots.concentration_trend_plot(
        _trend(), ("top1_share", "top5_share"), thresholds={"top1_share": 0.15, "top5_share": None}
    )
    assert len(ax.lines) == 3  # two metrics + one threshold
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [0.3, 0.5])  # revenue rows only
    assert ax.lines[2].get_linestyle() == "--"
    assert list(ax.lines[2].get_ydata()) == [0.15, 0.15]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["Largest account", "Top 5 accounts", "Threshold: Largest account"]
    gp = plots.concentration_trend_plot(_trend(), ("hhi",), basis="gross_profit", kind="number")
    np.testing.assert_allclose(gp.lines[0].get_ydata(), [1000.0, 1100.0])
    with pytest.raises(ValueError, match="no rows with basis"):
        plots.concentration_trend_plot(_trend(), ("top1_share",), basis="margin")


def test_scheme_boxplot_whiskers_are_p10_p90():
    rng = np.random.default_rng(0)
    values = rng.normal(100, 10, 1000)
    draws = pd.DataFrame(
        {"scheme": ["fixed"] * 1000 + ["tiered"] * 1000, "revenue": np.r_[values, values + 50]}
    )
    ax = plots.scheme_boxplot(draws, "revenue", order=["tiered", "fixed"], lang="ja")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["段階制", "固定"]
    ends = np.array([x for line in ax.lines for x in line.get_xdata()], dtype=float)
    # whiskers end at the data point nearest the percentile (within the sample spacing)
    for target in (np.percentile(values, 10), np.percentile(values, 90) + 50):
        assert np.min(np.abs(ends - target)) < 0.05
    assert np.min(np.abs(ends - values.min())) > 1  # no whisker to the extremes
    with pytest.raises(ValueError, match="no finite"):
        plots.scheme_boxplot(draws, "revenue", order=["fixed", "intro_discount"])


def test_break_even_plot_marks_the_cut():
    curve = pd.DataFrame(
        {"price_cut": [0.0, 0.1, 0.2, 0.3], "volume_increase": [0, 0.5, 2.0, np.inf]}
    )
    ax = plots.break_even_plot(curve, mark=0.15)
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [0.0, 0.1, 0.2])  # inf left out
    assert ax.lines[1].get_ydata()[0] == pytest.approx(1.25)  # interpolated
    assert "15.0%" in ax.texts[0].get_text() and "125.0%" in ax.texts[0].get_text()
    with pytest.raises(ValueError, match="no finite"):
        plots.break_even_plot(curve.iloc[3:])


def test_format_by_row_uses_each_rows_unit():
    df = pd.DataFrame(
        {
            "metric": ["npv", "roi", "other"],
            "current": [1_234_567.0, 0.25, 3.14159],
            "after": [None, 0.5, 1],
        }
    )
    out = plots.format_by_row(df, {"npv": "money_compact", "roi": "pct"}, ["current", "after"])
    assert out["current"].tolist() == ["¥1.2M", "25.0%", "3.14"]
    assert out["after"].tolist() == [plots.NA_TEXT, "50.0%", "1.00"]
    assert df["current"].iloc[0] == 1_234_567.0  # input untouched
    with pytest.raises(ValueError, match="missing"):
        plots.format_by_row(df, {}, ["missing"])


def test_scenario_charts_render_japanese_without_missing_glyphs():
    plots.set_report_style("ja")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*Glyph.*missing.*")
        fig = plots.scenario_fans(_fans(), target=100.0, lang="ja")
        fig.canvas.draw()
        ax = plots.tornado_chart(_tornado(), lang="ja", title="感度分析")
        ax.figure.canvas.draw()
        curve = pd.DataFrame({"price_cut": [0.0, 0.1], "volume_increase": [0.0, 0.5]})
        plots.break_even_plot(curve, mark=0.05, lang="ja").figure.canvas.draw()

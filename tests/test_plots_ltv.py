"""LTV chart helpers: they draw what they are given and reject bad input clearly."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from kam_analysis import plots


@pytest.fixture(autouse=True)
def _close():
    with matplotlib.rc_context():  # the report style set by a test does not leak
        yield
    plt.close("all")


def _top_to_bottom(ax):
    ticks = sorted(ax.get_yticklabels(), key=lambda t: -t.get_position()[1])
    return [t.get_text() for t in ticks]


def test_forest_plot_one_bar_per_covariate_log_axis():
    hr = pd.DataFrame(
        {"hr": [0.8, 2.0], "lower": [0.7, 1.6], "upper": [0.9, 2.5]},
        index=["nps_per_point", "no_executive_contact"],
    )
    ax = plots.forest_plot(hr, lang="ja")
    assert ax.get_xscale() == "log"
    assert _top_to_bottom(ax) == [
        plots.t("ltv.covariate.nps_per_point", "ja"),
        plots.t("ltv.covariate.no_executive_contact", "ja"),
    ]
    assert len(ax.texts) == 2 and "0.80 [0.70, 0.90]" in ax.texts[0].get_text()
    with pytest.raises(ValueError, match="> 0"):
        plots.forest_plot(hr.assign(lower=[0.0, 1.0]))
    with pytest.raises(ValueError, match="missing column"):
        plots.forest_plot(hr.drop(columns="upper"))


def test_interval_ranking_top_n_largest_first():
    df = pd.DataFrame(
        {
            "name": list("abcde"),
            "ltv": [5.0, 1.0, 4.0, np.nan, 3.0],
            "ltv_lower": [4.0, 0.5, 3.0, np.nan, 2.0],
            "ltv_upper": [6.0, 2.0, 5.0, np.nan, 4.0],
            "model": ["x", "y", "x", "y", "y"],
        }
    )
    ax = plots.interval_ranking(df, label="name", hue="model", hue_prefix="none.", top_n=3)
    assert _top_to_bottom(ax) == ["a", "c", "e"]  # largest at the top
    assert len(ax.get_legend().get_texts()) == 2


def test_calibration_tracking_histogram_renewal_retention():
    cal = pd.DataFrame({"predicted_mean": [1.0, 2.0], "actual_mean": [1.1, 1.9]})
    ax = plots.calibration_plot(cal, currency=None)
    assert np.allclose(ax.lines[1].get_xdata(), [1.0, 2.0])
    tr = pd.DataFrame({"period": [1, 2, 3], "model": [1.0, 2.0, 3.0], "actual": [1.0, 2.5, 3.5]})
    ax = plots.tracking_plot(tr, period_label="month")
    assert len(ax.lines) == 2 and ax.get_xlabel() == plots.t("ltv.axis.months_after_cutoff")
    hist = pd.DataFrame({"purchases": ["0", "1+"], "actual": [3.0, 7.0], "model": [4.0, 6.0]})
    ax = plots.period_histogram_plot(hist)
    assert len(ax.containers) == 2
    ren = pd.DataFrame(
        {
            "quarter": ["FY2026 Q1"],
            "contract_value": [10.0],
            "expected_renewed_value": [8.0],
            "lower": [6.0],
            "upper": [10.0],
        }
    )
    ax = plots.renewal_bars(ren)
    assert ax.containers[1].patches[0].get_height() == 8.0
    obs = pd.DataFrame({"cohort": ["2023"] * 3, "month": [0, 1, 2], "share": [1.0, 0.9, 0.8]})
    fit = pd.DataFrame({"curve": ["m"] * 3, "month": [0, 1, 2], "share": [1.0, 0.95, 0.9]})
    ax = plots.retention_plot(obs, fit)
    assert len(ax.lines) == 2
    with pytest.raises(ValueError, match="non-empty"):
        plots.tracking_plot(tr.iloc[:0])

"""Chart and table helpers of the KPI scorecard report (plots.py and stakeholders.py)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from kam_analysis import plots
from kam_analysis import stakeholders as sh

NAMES = ["Taro Yamada", "Hanako Sato", "Ken Ito", "Mika Mori"]


# --------------------------------------------------------------------------- tables


def test_style_categories_translates_and_colours_codes():
    df = pd.DataFrame(
        {"kpi": ["<b>NPS</b>", "CSAT", "x"], "status": ["on_track", "off_track", None]}
    )
    styler = plots.style_categories(plots.styled_table(df), "status", lang="ja")
    out = styler.to_html()
    assert "順調" in out and "未達" in out and "on_track" not in out
    assert plots.STATUS_COLOURS["on_track"] in out and plots.STATUS_COLOURS["off_track"] in out
    assert "&lt;b&gt;NPS&lt;/b&gt;" in out and "<b>NPS</b>" not in out  # still escaped
    assert plots.NA_TEXT in out
    en = plots.style_categories(
        plots.styled_table(df.assign(status=["improving", "flat", "worsening"])),
        "status",
        prefix="kpi.trend.",
        colours=plots.TREND_COLOURS,
    ).to_html()
    assert "↑ improving" in en and plots.TREND_COLOURS["worsening"] in en
    # unknown codes fall back to readable text without colour
    odd = plots.style_categories(plots.styled_table(df.assign(status="weird_code")), "status")
    assert "Weird code" in odd.to_html()
    with pytest.raises(KeyError, match="not in the table"):
        plots.style_categories(plots.styled_table(df), "Status")


# --------------------------------------------------------------------------- charts


def _series():
    periods = ["FY2024-Q1", "FY2024-Q2", "FY2024-Q3", "FY2024-Q4", "FY2025-Q1"]
    rev = pd.DataFrame(
        {
            "kpi_id": "revenue",
            "period": periods,
            "value": [100.0, 110, 120, 130, 140],
            "target_value": [np.nan, np.nan, np.nan, np.nan, 105.0],
            "at_risk_value": [np.nan, np.nan, np.nan, np.nan, 100.0],
        }
    )
    nps = rev.assign(
        kpi_id="nps", value=[10.0, 12, 8, 15, 20], target_value=30.0, at_risk_value=20.0
    )
    ratio = rev.assign(kpi_id="ratio", value=[0.1, 0.2, 0.3, 0.2, 0.25], target_value=np.nan)
    ratio["at_risk_value"] = np.nan
    return pd.concat([rev, nps, ratio], ignore_index=True)


def _title(ax) -> str:
    # the report style may place titles on the left (axes.titlelocation)
    return next((ax.get_title(loc) for loc in ("center", "left", "right") if ax.get_title(loc)), "")


def test_small_multiples_one_panel_per_kpi_with_target_lines():
    fig = plots.small_multiples(
        _series(),
        panel="kpi_id",
        x="period",
        y="value",
        reference="target_value",
        band="at_risk_value",
        titles={"revenue": "Revenue", "nps": "NPS $1$"},
        formats={"revenue": "money", "ratio": "pct"},
        ncols=2,
        legend={"value": "Portfolio", "target": "Target", "at_risk": "At risk"},
    )
    axes = fig.axes
    visible = [ax for ax in axes if ax.get_visible()]
    assert len(axes) == 4 and len(visible) == 3  # 2 x 2 grid, the last cell hidden
    rev, nps, ratio = visible
    assert _title(rev) == "Revenue" and _title(nps) == r"NPS \$1\$"
    assert len(rev.lines) == 3 and len(ratio.lines) == 1  # no target line without data
    np.testing.assert_allclose(nps.lines[1].get_ydata(), 30.0)
    np.testing.assert_allclose(rev.lines[0].get_ydata(), [100, 110, 120, 130, 140])
    assert rev.yaxis.get_major_formatter()(1_500_000, 0) == "¥1.5M"
    assert ratio.yaxis.get_major_formatter()(0.25, 0) == "25%"
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["Portfolio", "Target", "At risk"]
    assert rev.get_xticklabels()[-1].get_text() == "FY2025-Q1"  # last period always named
    with pytest.raises(KeyError, match="not in the frame"):
        plots.small_multiples(_series(), panel="kpi", x="period", y="value")
    with pytest.raises(ValueError, match="no rows"):
        plots.small_multiples(_series().iloc[:0], panel="kpi_id", x="period", y="value")


def test_hist_by_group_stacks_groups_with_translated_legend():
    df = pd.DataFrame(
        {
            "health_score": [5.0, 15, 15, 55, 95, 95, np.nan],
            "tier": ["standard", "standard", "key", "growth", "key", "key", "key"],
        }
    )
    ax = plots.hist_by_group(
        df,
        "health_score",
        "tier",
        bins=10,
        value_range=(0, 100),
        order=["standard", "growth", "key"],
    )
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "Standard",
        "Growth candidate",
        "Key account",
    ]
    # stacked: the top layer's bar tops count every non-missing value per bin
    tops = np.array([p.get_y() + p.get_height() for p in ax.containers[-1]])
    np.testing.assert_allclose(tops, [1, 2, 0, 0, 0, 1, 0, 0, 0, 2])
    assert ax.get_ylabel() == plots.t("axis.accounts")
    ja = plots.hist_by_group(df, "health_score", "tier", lang="ja", xlabel="健全度")
    assert ja.get_xlabel() == "健全度"
    assert "重点顧客" in [t.get_text() for t in ja.get_legend().get_texts()]
    with pytest.raises(KeyError, match="not in the frame"):
        plots.hist_by_group(df, "health", "tier")


@pytest.fixture
def people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "contact_id": ["c1", "c2", "c3", "c4"],
            "account_id": ["A", "A", "A", "B"],
            "role": ["executive", "business", "it", "business"],
            "influence": [5, 4, 3, 2],
            "stance": ["supporter", "champion", "blocker", "neutral"],
            "reports_to": [None, "c1", "c1", None],
            "last_contact_date": pd.to_datetime(["2025-06-01", "2025-01-01", None, "2025-06-25"]),
            "name": NAMES,
            "email": [f"{n.split()[0].lower()}@example.co.jp" for n in NAMES],
        }
    )


def _texts(fig) -> str:
    parts = []
    for ax in fig.axes:
        parts += [t.get_text() for t in ax.texts]
        parts += [ax.get_title(loc=loc) for loc in ("left", "center")]
        parts += [t.get_text() for t in ax.get_xticklabels()]
    return "\n".join(parts)


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_stakeholder_panels_hide_personal_data(people, lang):
    fig = plots.stakeholder_panels(
        people, ["A", "B"], titles={"A": "A Corp $x$"}, lang=lang, as_of="2025-06-30"
    )
    assert len(fig.axes) == 4  # two accounts x (map, org chart)
    text = _texts(fig)
    assert not any(n in text for n in NAMES) and "@example" not in text
    assert sh.pseudonym("c2") in text and "A Corp $x$" in text
    title = fig.axes[0]._left_title  # shown as typed: mathtext is off for data text
    assert title.get_text() == "A Corp $x$" and title.get_parse_math() is False
    fig.canvas.draw()  # a "$" in data never reaches the mathtext parser
    assert fig.axes[2].get_title(loc="left") == "B"  # default heading: the id
    assert plots.t("stakeholders.chart_title", lang) in text


def test_stakeholder_panels_names_on_request_and_without_org_charts(people):
    fig = plots.stakeholder_panels(people, ["A"], show_personal_data=True, as_of="2025-06-30")
    assert "Hanako Sato" in _texts(fig)
    no_lines = plots.stakeholder_panels(people.drop(columns="reports_to"), ["A", "B"])
    assert len(no_lines.axes) == 2  # maps only
    salted = _texts(plots.stakeholder_panels(people, ["A"], salt="secret"))
    assert sh.pseudonym("c2", "secret") in salted and sh.pseudonym("c2") not in salted
    with pytest.raises(ValueError, match="no account_ids"):
        plots.stakeholder_panels(people, [])

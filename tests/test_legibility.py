"""Charts and tables stay legible at report width, in English and Japanese.

Measured with matplotlib's renderer after the layout, as the report draws them:
heat-map values inside their cells, category labels apart, legends off the
data, point labels apart, KPI-card text inside the card; in HTML tables a number
and its unit on one line.
"""

from __future__ import annotations

import io
import itertools
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from kam_analysis.core.formatting import NBSP, fmt_money, fmt_pct
from kam_analysis.report.charts.base import _OmissionNote, heatmap, scatter_labeled
from kam_analysis.report.charts.plan import kpi_cards, product_line_bars
from kam_analysis.report.html import REPORT_CSS
from kam_analysis.report.style import display_width, figure, set_report_style, wrap_label
from kam_analysis.report.tables import style_categories, styled_table

QUALITATIVE_JA = [
    "戦略適合性",
    "共同開発の可能性",
    "リファレンス価値",
    "参入障壁",
    "波及効果（シナジー）",
    "意思決定の複雑さ",
]
ACCOUNTS = [f"Kitakaze Utilities Holdings {i} Co., Ltd." for i in range(15)]


@pytest.fixture(autouse=True)
def _report_style():
    set_report_style("ja")
    yield
    plt.close("all")
    matplotlib.rcdefaults()


def _drawn(ax):
    """Draw the figure as the report does (PNG, tight box); return a renderer of that layout."""
    fig = ax.get_figure(root=True)
    fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _cell(ax, text) -> Bbox:
    x, y = text.get_position()  # cell centre in data coordinates
    corners = ax.transData.transform([(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)])
    return Bbox([corners.min(axis=0), corners.max(axis=0)])


def _inside(inner: Bbox, outer: Bbox) -> bool:
    return (
        inner.x0 >= outer.x0 - 0.01
        and inner.x1 <= outer.x1 + 0.01
        and inner.y0 >= outer.y0 - 0.01
        and inner.y1 <= outer.y1 + 0.01
    )


def _whitespace_grid(columns: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    cells = np.where(rng.random((len(ACCOUNTS), columns)) < 0.3, 0.0, rng.uniform(1e7, 9e7))
    cells[0, 5] = 69_210_000.0  # ¥6,921.0万, the value cut off in the valuation report
    lines = [f"Product line {j}" for j in range(columns)]
    return pd.DataFrame(cells, index=ACCOUNTS, columns=lines)


# --------------------------------------------------------------------------- heat-map values


@pytest.mark.parametrize(
    "fmt",
    [
        "money_compact",
        lambda x: "" if x == 0 else fmt_money(x, compact=True, lang="ja"),  # as notebook 01
    ],
)
def test_heatmap_values_lie_inside_their_cells(fmt):
    ax = heatmap(_whitespace_grid(), fmt=fmt, cmap="Greens", lang="ja", cbar=False)
    renderer = _drawn(ax)
    shown = [text for text in ax.texts if text.get_text()]
    values = [text.get_text() for text in shown]
    # in full, or in whole 万 when that keeps the values larger: the same form in every cell
    assert "¥6,921.0万" in values or "¥6,921万" in values
    assert len({"." in v for v in values if v.endswith("万")}) == 1
    for text in shown:
        extent = text.get_window_extent(renderer)
        assert _inside(extent, _cell(ax, text)), (text.get_text(), extent, _cell(ax, text))
    assert min(text.get_fontsize() for text in shown) >= 7.0  # shrunk, but readable


def test_heatmap_values_fit_at_the_savefig_resolution_too():
    ax = heatmap(_whitespace_grid(), fmt="money_compact", lang="ja", cbar=False)
    fig = ax.get_figure(root=True)
    fig.set_dpi(110)  # the report saves at 110 dpi
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for text in ax.texts:
        if text.get_text():
            assert _inside(text.get_window_extent(renderer), _cell(ax, text))


def test_heatmap_drops_to_a_compact_form_before_leaving_values_out():
    grid = pd.DataFrame([[69_210_000.0, 1_234_567_890.0]], index=["A"], columns=["x", "y"])
    fig, ax = figure(1.6, 1.2)
    heatmap(grid, fmt="money", lang="ja", cbar=False, ax=ax)
    renderer = _drawn(ax)
    texts = [text.get_text() for text in ax.texts]
    assert texts[0] != fmt_money(69_210_000.0) and texts[0].startswith("¥")  # not ¥69,210,000
    assert texts[0] in ("¥6,921.0万", "¥6,921万") and texts[1] in ("¥12.3億", "¥12億")
    for text in ax.texts:
        assert _inside(text.get_window_extent(renderer), _cell(ax, text))
    notes = [a for a in ax.get_children() if isinstance(a, _OmissionNote)]
    assert [note.text for note in notes] == [""]  # nothing left out: no note


def test_heatmap_leaves_out_values_that_never_fit_and_says_so():
    grid = pd.DataFrame(np.full((2, 12), 69_210_000.0), columns=[f"c{i}" for i in range(12)])
    fig, ax = figure(2.4, 1.5)
    heatmap(grid, fmt="money_compact", lang="ja", cbar=False, ax=ax)
    renderer = _drawn(ax)
    assert all(text.get_text() == "" for text in ax.texts)
    (note,) = [a for a in ax.get_children() if isinstance(a, _OmissionNote)]
    assert note.text and note.get_window_extent(renderer).y1 <= ax.bbox.y0  # under the axis


def test_heatmap_rows_are_horizontal_and_missing_cells_have_no_grid():
    grid = pd.DataFrame(
        [[1.0, np.nan], [3.0, 4.0]], index=["重点顧客", "成長候補"], columns=["a", "b"]
    )
    ax = heatmap(grid, fmt="{:.0f}", lang="ja", cbar=False)
    assert all(label.get_rotation() == 0 for label in ax.get_yticklabels())
    assert not any(line.get_visible() for line in ax.get_xgridlines() + ax.get_ygridlines())


# --------------------------------------------------------------------------- category labels


def test_wrapped_japanese_category_labels_do_not_overlap():
    grid = pd.DataFrame(
        np.random.default_rng(0).integers(1, 6, (len(ACCOUNTS), 6)).astype(float),
        index=ACCOUNTS,
        columns=QUALITATIVE_JA,
    )
    ax = heatmap(grid, fmt="{:.0f}", cmap="Oranges", lang="ja", cbar=False)
    assert ax.get_figure(root=True).get_size_inches()[0] == pytest.approx(9.0)
    renderer = _drawn(ax)
    labels = ax.get_xticklabels()
    assert [label.get_text().replace("\n", "") for label in labels] == QUALITATIVE_JA
    assert any("\n" in label.get_text() for label in labels)  # wrapped, not rotated
    assert all(label.get_rotation() == 0 for label in labels)
    boxes = [label.get_window_extent(renderer) for label in labels]
    for (i, a), (j, b) in itertools.combinations(enumerate(boxes), 2):
        assert not a.overlaps(b), (labels[i].get_text(), labels[j].get_text())


def test_wrap_label_breaks_cjk_by_width_and_latin_at_spaces():
    assert wrap_label("波及効果（シナジー）", 12) == "波及効果\n（シナジー）"  # not after （
    assert wrap_label("意思決定の複雑さ", 12) == "意思決定の\n複雑さ"
    assert wrap_label("シェア・オブ・ウォレット", 12) == "シェア・\nオブ・\nウォレット"
    assert wrap_label("Synergy / knock-on deployment", 12) == "Synergy /\nknock-on\ndeployment"
    assert wrap_label("ネットプロモータースコア(NPS)", 12).endswith("(NPS)")  # words stay whole
    assert wrap_label("IoT Sensors", 12) == "IoT Sensors"
    for text in ["売上（直近12か月）", "顧客の支出規模（ウォレット）", "拡大余地（ヘッドルーム）"]:
        lines = wrap_label(text, 10).split("\n")
        assert "".join(lines) == text and len(lines) > 1
        assert all(display_width(line) <= 10 for line in lines)
        assert not any(line[0] in "）ー、。ァィゥェォッャュョ" for line in lines)  # kinsoku
        assert not any(line[-1] == "（" for line in lines)


# --------------------------------------------------------------------------- legends, labels


def _bar_boxes(ax, renderer):
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    boxes = [p.get_bbox().transformed(p.get_data_transform()) for p in bars]
    return [b for b in boxes if b.width > 0.5 and b.height > 0.5]


def test_product_line_legend_covers_no_bar():
    lines = pd.DataFrame(
        {
            "product_line": ["Security", "IoT Sensors", "Training"],
            "revenue_12m": [2.4e8, 0.0, 1.0e8],
            "whitespace_value": [0.0, 6.9e7, 1.5e8],  # every corner of the plot holds a bar
        }
    )
    fig, axes = figure("full", 3.3, ncols=2, squeeze=False)  # as in the account plan
    ax = product_line_bars(lines, ax=axes[0, 1], lang="ja", title="商品群（12か月）")
    renderer = _drawn(ax)
    legend = ax.get_legend().get_window_extent(renderer)
    assert not any(legend.overlaps(box) for box in _bar_boxes(ax, renderer))
    assert legend.y1 <= ax.bbox.y0  # moved below the plotted area


def test_scatter_point_labels_do_not_overlap():
    df = pd.DataFrame(
        {
            "risk": [0.08, 0.082, 0.085, 0.09, 0.3, 0.5],
            "ltv": [3.0e9, 3.05e9, 2.95e9, 2.9e9, 1e9, 0.5e9],
            "name": [f"Asahi Express Holdings {i} Co., Ltd." for i in range(6)],
        }
    )
    ax = scatter_labeled(df, "risk", "ltv", "name", top_n=6, lang="ja")
    renderer = _drawn(ax)
    boxes = [Text.get_window_extent(label, renderer) for label in ax.texts]
    assert len(boxes) == 6
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)


def test_kpi_card_text_stays_inside_its_card():
    cards = [
        {
            "label": "顧客NPV（中央値、36か月）",
            "value": "¥2.2億",
            "note": "P10–P90（80%区間）：-¥6,612.4万 – ¥15.1億",
        },
        {"label": "ROI（中央値）", "value": "27%", "note": "P10–P90：-8% – 63%"},
        {"label": "回収月（中央値）", "value": "13か月目", "note": "85%が36か月以内に回収"},
        {"label": "NPVがプラスの確率", "value": "83%", "note": "便益 ¥11.7億 / 費用 ¥9.0億"},
    ]
    ax = kpi_cards(cards)
    renderer = _drawn(ax)
    rects = [p for p in ax.patches if isinstance(p, Rectangle)][::2]  # card, stripe, card, ...
    cards_px = [r.get_bbox().transformed(r.get_data_transform()) for r in rects]
    for i, text in enumerate(ax.texts):
        assert _inside(text.get_window_extent(renderer), cards_px[i // 3]), text.get_text()


# --------------------------------------------------------------------------- tables


def _cell_rules(page: str, cell_id: str) -> str:
    """The CSS declarations the styler's <style> block gives one cell."""
    rules = re.findall(r"([^{}]+)\{([^}]*)\}", page.split("</style>")[0])
    return ";".join(
        body for selectors, body in rules if f"#{cell_id}" in map(str.strip, selectors.split(","))
    )


def test_money_cells_do_not_wrap_in_html():
    df = pd.DataFrame(
        {
            "account": ["Yamato Electric Co., Ltd.", "Kitakaze Gas Holdings Co., Ltd."],
            "tier": ["重点顧客", "成長候補"],
            "expected_expansion": [20_002_000.0, 2.2e8],
        }
    )
    page = styled_table(df, {"expected_expansion": "money_compact"}, lang="ja").to_html()
    cell = re.search(r'<td id="(T_\w+_row0_col2)" class="([^"]*)" >¥2,000\.2万</td>', page)
    assert cell, page
    assert "kam-num" in cell.group(2).split()
    assert "white-space: nowrap" in _cell_rules(page, cell.group(1))
    assert re.search(r"td\.kam-num[^{]*\{[^}]*white-space: nowrap", REPORT_CSS)
    # short categories stay whole too ("重点顧客", not "重点顧" / "客"); long names may wrap
    tier = re.search(r'<td id="(T_\w+_row0_col1)" class="([^"]*)" >重点顧客</td>', page)
    assert tier and "kam-nowrap" in tier.group(2).split()
    name = re.search(r'<td id="(T_\w+_row1_col0)" class="([^"]*)" >Kitakaze', page)
    assert name and "kam-nowrap" not in name.group(2).split()


def test_category_cells_and_short_headers_do_not_wrap():
    df = pd.DataFrame({"スコア": [93.1], "状況": ["at_risk"]})
    page = style_categories(styled_table(df, lang="ja"), "状況", lang="ja").to_html()
    assert re.search(r"th\.col_heading\.col0 \{\s*white-space: nowrap", page)  # "スコア"
    status = re.search(r'<td id="(T_\w+_row0_col1)"', page).group(1)
    assert "white-space: nowrap" in _cell_rules(page, status)


def test_a_unit_after_the_number_is_joined_by_a_no_break_space():
    assert fmt_money(12, "CHF") == f"12.00{NBSP}CHF"
    assert fmt_pct(686.45) == f">{NBSP}1,000%"
    assert fmt_pct(-20.0) == f"<{NBSP}-1,000%"
    assert " " not in fmt_money(2.0002e7, compact=True, lang="ja")


def test_a_very_long_row_label_does_not_squeeze_the_heatmap():
    import warnings

    from kam_analysis.report.style import shorten_label

    name = "A0001 " + "<script>alert(1)</script>[Open](javascript:alert(1)) " * 4
    frame = pd.DataFrame({"buyer": [1.0, -2.0], "user": [0.0, 3.0]}, index=[name, "A0002 株式会社"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "axes sizes collapsed to zero" is a UserWarning
        ax = heatmap(frame, fmt="{:+.0f}", cbar=False)
        ax.figure.canvas.draw()
    assert ax.get_position().width > 0.3  # the cells keep most of the figure
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0].endswith("…") and len(labels[0]) <= 36
    assert labels[1] == "A0002 株式会社"
    assert shorten_label("株式会社" * 20, 10) == "株式会社…"

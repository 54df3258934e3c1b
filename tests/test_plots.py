"""The presentation layer: fonts, translations, number formats, escaped tables, charts."""

from __future__ import annotations

import json
import re
import string
import warnings
from importlib import resources
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib import font_manager
from matplotlib.collections import PolyCollection

from kam_analysis import plots
from kam_analysis.plots import (
    TranslationKeyError,
    bar_contributions,
    fan_chart,
    fmt_int,
    fmt_money,
    fmt_pct,
    heatmap,
    label_for,
    pareto_curve,
    scatter_labeled,
    set_report_style,
    styled_table,
    t,
)

JAPANESE = "売上高 ㈱髙島屋 ①アカウント評価 −1,234"


# --------------------------------------------------------------------------- fonts


def _render(text: str) -> plt.Text:
    fig, ax = plt.subplots(figsize=(4, 2))
    label = ax.set_title(text)
    ax.set_xlabel(text)
    fig.canvas.draw()
    return label


def test_japanese_text_renders_with_ipaexgothic_without_missing_glyphs():
    set_report_style("ja")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font(s)" would raise
        label = _render(JAPANESE)
    assert label.get_fontname() == "IPAexGothic"
    path = font_manager.findfont(
        font_manager.FontProperties(family=matplotlib.rcParams["font.family"])
    )
    assert Path(path).name == "ipaexg.ttf"


def test_missing_glyph_check_can_fail_without_the_japanese_font():
    # the control: DejaVu Sans has no kanji, so the warning the test above forbids appears
    matplotlib.rcParams["font.family"] = ["DejaVu Sans"]
    with pytest.warns(UserWarning, match="missing from font"):
        _render("売上高")


def test_font_survives_a_later_seaborn_theme_only_if_reapplied():
    import seaborn as sns

    set_report_style("en")
    sns.set_theme()  # resets the family (the pitfall)
    assert matplotlib.rcParams["font.family"][0] != "IPAexGothic"
    set_report_style("en")
    assert matplotlib.rcParams["font.family"][0] == "IPAexGothic"


# --------------------------------------------------------------------------- translations


def _locale(lang: str) -> dict[str, str]:
    return json.loads(
        resources.files("kam_analysis").joinpath("locale", f"{lang}.json").read_text("utf-8")
    )


def test_locales_have_the_same_keys_and_placeholders():
    en, ja = _locale("en"), _locale("ja")
    assert sorted(en) == sorted(ja)
    for key in en:
        fields = {f for _, f, _, _ in string.Formatter().parse(en[key]) if f}
        assert fields == {f for _, f, _, _ in string.Formatter().parse(ja[key]) if f}, key


def test_t_translates_and_fills_placeholders():
    assert t("axis.revenue") == "Revenue"
    assert t("axis.revenue", "ja") == "売上高"
    assert t("pareto.annotation", "en", accounts="20%", share="80%") == (
        "Top 20% of accounts = 80% of revenue"
    )
    assert t("axis.interval", "ja", level=0.9) == "90%区間"


def test_t_missing_key_names_the_key_and_file():
    with pytest.raises(KeyError) as err:
        t("axis.revenu", "ja")
    assert isinstance(err.value, TranslationKeyError)
    message = str(err.value)
    assert "'axis.revenu' missing from kam_analysis/locale/ja.json" in message
    assert "did you mean 'axis.revenue'?" in message
    with pytest.raises(ValueError, match="unknown language 'de'; available: en, ja"):
        t("axis.revenue", "de")


def test_label_for_falls_back_to_readable_names():
    assert label_for("strategic_fit", "ja") == "戦略適合性"
    assert label_for("days_since_contact", "en") == "Days since contact"
    assert label_for("key", "ja", prefix="tier.") == "重点顧客"


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        ((1234567,), {}, "¥1,234,567"),
        ((1234567.4,), {"compact": True}, "¥1.2M"),
        ((123456789,), {"compact": True, "lang": "ja"}, "¥1.2億"),
        ((12345,), {"compact": True, "lang": "ja"}, "¥1.2万"),
        ((999,), {"compact": True}, "¥999"),
        ((-5.5, "GBP"), {}, "-£5.50"),
        ((1234.5, "USD"), {}, "$1,234.50"),
        ((12, "CHF"), {}, "12.00\u00a0CHF"),  # no-break space: never split at a line end
        ((-0.2,), {}, "¥0"),
        ((None,), {}, "–"),
        ((float("nan"),), {}, "–"),
    ],
)
def test_fmt_money(args, kwargs, expected):
    assert fmt_money(*args, **kwargs) == expected


def test_fmt_pct_and_int():
    assert fmt_pct(0.1234) == "12.3%"
    assert fmt_pct(0.5, 0) == "50%"
    assert fmt_pct(0.021, signed=True) == "+2.1%"
    assert fmt_pct(-0.021, signed=True) == "-2.1%"
    assert fmt_pct(pd.NA) == "–"
    assert fmt_int(1234.6) == "1,235"
    assert fmt_int(np.int64(-1000000)) == "-1,000,000"
    assert fmt_int(None) == "–"


SPECIAL = [
    None,
    float("nan"),
    np.nan,
    pd.NA,
    pd.NaT,
    float("inf"),
    -np.inf,
    np.float32("inf"),
    1e400,
]


@pytest.mark.parametrize("value", SPECIAL, ids=repr)
def test_number_formatters_never_raise_or_print_nan_inf_none(value):
    # missing -> NA text; infinite -> "∞" / "-∞" without unit (documented in plots)
    missing = value is None or value is pd.NA or value is pd.NaT or np.isnan(value)
    expected = "–" if missing else ("-∞" if value < 0 else "∞")
    signed = "–" if missing else ("-∞" if value < 0 else "+∞")
    texts = {
        "money": fmt_money(value, "USD"),
        "money_compact": fmt_money(value, "JPY", compact=True, lang="ja"),
        "int": fmt_int(value),
        "num": plots.fmt_num(value, 2),
        "pct": fmt_pct(value),
        "money_axis": plots.money_formatter("USD")(value, 0),
        "pct_axis": plots.pct_formatter()(value, 0),
    }
    assert texts == dict.fromkeys(texts, expected)
    assert fmt_pct(value, signed=True) == signed
    assert plots.fmt_num(value, signed=True) == signed


def test_fmt_int_of_infinity_and_huge_integers():
    # OverflowError: cannot convert float infinity to integer (issue 12, scenario notebook)
    assert fmt_int(float("inf")) == plots.INF_TEXT == "∞"
    assert fmt_int(-(10**400)) == "-" + f"{10**400:,d}"  # exact beyond float range
    assert fmt_money(10**400) == "∞" and fmt_pct(-(10**400)) == "-∞"
    assert plots.fmt_num(12345.678) == "12,345.7" and plots.fmt_num(-0.5, 0, signed=True) == "-0"


def test_table_and_heatmap_formats_show_missing_and_infinite_values():
    df = pd.DataFrame(
        {
            "money": [np.inf, np.nan, 1e6],
            "ratio": [-np.inf, 0.5, None],
            "plain": [np.inf, np.nan, 2.0],
            "spec": [np.inf, 0.123, np.nan],
            "mixed": ["a", None, float("inf")],
        }
    )
    page = styled_table(
        df, {"money": "money_compact", "ratio": "pct", "spec": "{:.0%}"}, currency="USD"
    ).to_html()
    cells = re.findall(r"<td [^>]*>([^<]*)</td>", page)
    assert cells == ["∞", "-∞", "∞", "∞", "a", "–", "50.0%", "–", "12%", "–", "$1.0M", "–"] + [
        "2.00",
        "–",
        "∞",
    ]
    assert not re.search(r">\s*(nan|inf|None|-inf)\s*<", page)
    rows = plots.format_by_row(
        pd.DataFrame({"metric": ["a", "b", "c"], "v": [np.inf, np.nan, -np.inf]}),
        {"a": "int", "b": "pct", "c": "{:.1f}"},
        ["v"],
    )
    assert list(rows["v"]) == ["∞", "–", "-∞"]
    ax = heatmap(pd.DataFrame([[np.inf, np.nan, 0.5]], columns=["x", "y", "z"]), fmt="pct")
    assert [t.get_text() for t in ax.texts] == ["50.0%"]  # seaborn leaves non-finite cells blank


def test_text_cells_escape_values_that_are_not_strings():
    df = pd.DataFrame({"items": [["<script>", "x"], "<b>"]})
    page = styled_table(df).to_html()
    assert "<script>" not in page and "<b>" not in page
    assert "[&#x27;&lt;script&gt;&#x27;, &#x27;x&#x27;]" in page and "&lt;b&gt;" in page


# --------------------------------------------------------------------------- tables


def test_styled_table_escapes_cells_headers_and_index_names():
    df = pd.DataFrame(
        {
            "<b>account</b>": ["<script>alert(1)</script>", "Acme & Co"],
            "revenue": [1234567.0, np.nan],
            "share": [0.25, 0.5],
            "n": [1200, 3],
        },
        index=pd.Index(["a<1>", "b"], name="<i>id</i>"),
    )
    page = styled_table(df, {"revenue": "money", "share": "pct"}, caption="<u>Top</u>").to_html()
    assert "<script>" not in page and "<b>" not in page and "<i>" not in page and "<u>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;account&lt;/b&gt;" in page and "&lt;i&gt;id&lt;/i&gt;" in page
    assert "a&lt;1&gt;" in page and "Acme &amp; Co" in page
    assert "¥1,234,567" in page and "25.0%" in page and "1,200" in page and ">–<" in page
    assert list(df.columns)[0] == "<b>account</b>"  # input not modified


def test_styled_table_rejects_unknown_columns_and_formats():
    df = pd.DataFrame({"a": [1.0]})
    with pytest.raises(KeyError, match=r"unknown column\(s\) \['b'\]"):
        styled_table(df, {"b": "money"})
    with pytest.raises(ValueError, match="unknown format 'dollars'"):
        styled_table(df, {"a": "dollars"})


# --------------------------------------------------------------------------- charts


def test_bar_contributions_stacks_sorted_by_total():
    df = pd.DataFrame(
        {"strategic_fit": [0.1, 0.5, 0.3], "revenue": [0.2, 0.3, -0.1]},
        index=["Small", "Big", "Mid $1$"],
    )
    ax = bar_contributions(df, lang="ja")
    assert len(ax.patches) == 6
    # largest total (Big 0.8, Small 0.3, Mid 0.2) at the top; "$" shown literally
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    top_down = [name for _, name in sorted(zip(ax.get_yticks(), labels, strict=True), reverse=True)]
    assert top_down == ["Big", "Small", r"Mid \$1\$"]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["戦略適合性", "売上高"]
    negative = [p for p in ax.patches if p.get_width() < 0]
    assert (
        len(negative) == 1
        and negative[0].get_x() == 0
        and negative[0].get_width() == pytest.approx(-0.1)
    )
    assert len(bar_contributions(df, top_n=2).patches) == 4
    with pytest.raises(ValueError, match=r"column\(s\) \['name'\] are not numeric"):
        bar_contributions(df.assign(name="x"))


def test_pareto_curve_known_answer():
    ax = pareto_curve(pd.Series([10.0, 50.0, 30.0, 10.0]), mark=0.25)
    x, y = ax.lines[0].get_data()
    np.testing.assert_allclose(x, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(y, [0, 0.5, 0.8, 0.9, 1.0])
    assert ax.texts[0].get_text() == "Top 25% of accounts = 50% of revenue"
    with pytest.raises(ValueError, match="1 negative value"):
        pareto_curve([5.0, -1.0])
    with pytest.raises(ValueError, match="all values are zero"):
        pareto_curve([0.0, 0.0])


def test_fan_chart_bands_and_median():
    idx = pd.period_range("2026-04", periods=6, freq="M").to_timestamp()
    q = pd.DataFrame(
        {lvl: np.linspace(1, 2, 6) * (0.5 + lvl) for lvl in (0.05, 0.25, 0.5, 0.75, 0.95)},
        index=idx,
    )
    actual = pd.Series([1.0, 1.1], index=idx[:2] - pd.DateOffset(months=2))
    ax = fan_chart(q, actual=actual, lang="ja", currency="JPY")
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [
        "90%区間",
        "50%区間",
        "中央値",
        "実績",
    ]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), q[0.5])
    with pytest.raises(ValueError, match="'p50' is not a quantile level"):
        fan_chart(q.rename(columns={0.5: "p50"}))
    with pytest.raises(ValueError, match="need a median"):
        fan_chart(q[[0.05, 0.25]])


def test_heatmap_formats_annotations():
    df = pd.DataFrame([[0.1, 0.25], [0.5, np.nan]], index=["A", "B"], columns=["Core", "Cloud"])
    ax = heatmap(df, fmt="pct")
    assert sorted(text.get_text() for text in ax.texts) == ["10.0%", "25.0%", "50.0%"]


def test_scatter_labeled_labels_top_n_and_rasterises_large_data():
    rng = np.random.default_rng(0)
    n = 100_000
    df = pd.DataFrame(
        {
            "revenue": rng.lognormal(10, 1, n),
            "ltv": rng.lognormal(11, 1, n),
            "name": [f"A{i}" for i in range(n)],
        }
    )
    df.loc[123, "ltv"] = 1e9
    df.loc[456, "name"] = "Cost $5$"
    df.loc[456, "ltv"] = 2e9
    ax = scatter_labeled(df, "revenue", "ltv", "name", top_n=5)
    assert len(ax.texts) == 5
    labels = [text.get_text() for text in ax.texts]
    assert labels[:2] == [r"Cost \$5\$", "A123"]
    assert all(c.get_rasterized() for c in ax.collections)
    assert ax.get_ylabel() == "Lifetime value"
    small = scatter_labeled(df.head(50), "revenue", "ltv", "name", top_n=3)
    assert not small.collections[0].get_rasterized()
    with pytest.raises(KeyError, match=r"\['tier'\]"):
        scatter_labeled(df, "revenue", "ltv", "name", hue="tier")


def test_scatter_labeled_hue_translated():
    df = pd.DataFrame(
        {"x": [1, 2, 3], "y": [3, 2, 1], "name": list("abc"), "tier": ["key", "growth", "key"]}
    )
    ax = scatter_labeled(df, "x", "y", "name", hue="tier", hue_prefix="tier.", lang="ja", top_n=1)
    assert sorted(text.get_text() for text in ax.get_legend().get_texts()) == [
        "成長候補",
        "重点顧客",
    ]
    assert [text.get_text() for text in ax.texts] == ["a"]


def test_figure_sizes():
    fig, _ = plots.figure("half")
    assert fig.get_size_inches()[0] == pytest.approx(plots.FULL_WIDTH_IN / 2)
    with pytest.raises(ValueError, match="width must be"):
        plots.figure("wide")
    assert re.match(r"\d", fmt_pct(0.5))


# --------------------------------------------------------------------------- mathtext off


HOSTILE_LABEL = r"$\unicode{x41}$ & $1.1M … $0.00"


def _shown(text: matplotlib.text.Text) -> str:
    """What a reader sees: escaped "\\$" is drawn as "$" when mathtext is on."""
    raw = text.get_text()
    return raw.replace(r"\$", "$") if text.get_parse_math() else raw


def _dollar_charts(name: str) -> list:
    frame = pd.DataFrame(
        {"x": [1.0, 2.0], "y": [2.0, 1.0], "name": [name, "B"], "tier": ["key", "growth"]}
    )
    contrib = pd.DataFrame({"revenue": [0.3, 0.2]}, index=[name, "B"])
    return [
        scatter_labeled(frame, "x", "y", "name", top_n=2, title=name),
        bar_contributions(contrib, title=name),
        heatmap(pd.DataFrame([[1.0]], index=[name], columns=[name]), title=name),
        plots.kpi_cards([{"label": name, "value": name, "note": name}], title=name),
        plots.wallet_bars(
            pd.DataFrame(
                {
                    "label": [name, "B"],
                    "revenue_12m": [5.0, 3.0],
                    "wallet_estimate": [10.0, np.nan],
                }
            ),
            label="label",
            currency="USD",
            title=name,
        ),
    ]


@pytest.mark.parametrize("report_style", [True, False])
def test_dollar_in_data_labels_is_drawn_as_typed(report_style):
    # "$\unicode{x41}$" in an account name raised ParseFatalException (issue 13)
    if report_style:
        set_report_style("en")
        assert matplotlib.rcParams["text.parse_math"] is False
    for ax in _dollar_charts(HOSTILE_LABEL):
        ax.figure.canvas.draw()  # parses every text: raises on mathtext errors
        texts = [ax.title, *ax.texts, *ax.get_yticklabels(), *ax.get_xticklabels()]
        shown = [_shown(t) for t in texts if t.get_text()]
        assert HOSTILE_LABEL in shown, (ax, shown)
        assert all(t.get_parse_math() is (not report_style) for t in texts if "$" in t.get_text())

"""The page helper: hostile data renders as text, templates render as HTML."""

from __future__ import annotations

import html
import json
import re
from types import SimpleNamespace

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from kam_analysis import plots
from kam_analysis.report import Html, Page, TemplateValueError, render_template
from kam_analysis.report.page import MATH_OFF_CLASSES

# Each of these was seen turning into markup, a fetch, a heading or a crash when
# handed to a Markdown renderer (hardening issue, item 1).
HOSTILE = [
    "[Open](javascript:alert(1))",
    "![x](https://host/p.png)",
    "Acme\n\n## Injected heading",
    "<script>alert(1)</script>",
    "<img src=https://host/q.png onerror=alert(1)>",
    r"$\unicode{x41}$",
    "**not bold** and `not code` and _not em_",
    "A & B <i>Co</i> \"quoted\" 'single'",
]


@pytest.fixture(autouse=True)
def _restore_rc():
    with matplotlib.rc_context():  # Page(style=True) applies the report style
        yield
    plt.close("all")


def make_page(lang: str = "en", **kw) -> tuple[Page, list[dict]]:
    shown: list[dict] = []
    page = Page(lang=lang, currency="USD", style=False, show=shown.append, **kw)
    return page, shown


def html_of(shown: list[dict]) -> str:
    return "\n".join(b["text/html"] for b in shown)


def assert_shown_as_text(markup: str, value: str) -> None:
    """``value`` appears as escaped text and produced no markup of its own."""
    escaped = (
        value.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )
    assert escaped in markup
    assert "<a " not in markup and "href=" not in markup
    assert "<img" not in markup
    assert "<script" not in markup
    assert "<h2" not in markup  # no heading from data (the tests show none)
    assert "<strong>not bold</strong>" not in markup and "<code>not code</code>" not in markup
    assert "<em>not em</em>" not in markup


# --------------------------------------------------------------------------- hostile data


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_value_in_every_template_position_is_text(value):
    page, shown = make_page()
    # plan.headline: plain slots and **bold** slots; plan.skip: a *em* span with a
    # `code` slot; disagree_with: a list item with *em* slots
    page.say(
        "plan.headline",
        name=value,
        tier=value,
        rank=1,
        n=2,
        score=value,
        criteria=value,
        quadrant=value,
        resource=value,
    )
    page.note("plan.skip", what=value, table=value)
    page.say(
        "segmentation.txt.disagree_with", n=3, tier=value, share="10%", cluster=value, home=value
    )
    page.bullets([value, page.text("plan.action_item", action=value, evidence=value)])
    page.notes([value, ("plan.tier_reason", {"reason": value})], title="kpi.notes_title")
    page.show(page.text("plan.tier_reason", reason=value), value, lines=True)
    page.say("plan.kpi_more", names=page.join([value, value]))
    markup = html_of(shown)
    assert_shown_as_text(markup, value)
    # the templates' own emphasis still works around the value
    assert "<strong>" in markup and "<em>" in markup and "<code>" in markup


def cell_texts(markup: str) -> list[str]:
    """The text of every table cell and caption, as a browser shows it."""
    cells = re.findall(r"<(td|th|caption)\b[^>]*>(.*?)</\1>", markup, flags=re.DOTALL)
    return [html.unescape(text) for _, text in cells]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_value_in_headings_tables_and_alt_text_is_text(value):
    shown: list[dict] = []
    page = Page(lang="en", currency="USD", show=shown.append)  # the report style
    page.h1("plan.title", name=value)
    markup = shown[0]["text/html"]
    assert markup.startswith('<h1 id="plan-title"') and markup.count("<h1") == 1
    page.table(
        pd.DataFrame({"name": [value], "revenue_12m": [1.5e6]}, index=[value]),
        {"revenue_12m": "money_compact"},
        prefix="valuation.col.",
        caption=value,
        hide_index=False,
    )
    fig, ax = plt.subplots()
    ax.set_title(value)
    page.chart(fig, alt=value)
    page.chart(plots.kpi_cards([{"label": value, "value": "1"}], title=value))
    rest = html_of(shown[1:])
    assert "<script" not in rest and 'src="http' not in rest and "href=" not in rest
    assert "<h2" not in rest
    # the table cell, its index and the caption show the value as typed
    assert cell_texts(shown[1]["text/html"]).count(value) == 3
    assert "$1.5M" in cell_texts(shown[1]["text/html"])
    alts = [html.unescape(a) for a in re.findall(r'alt="([^"]*)"', rest)]
    assert alts == [value, value]  # the second from the chart's title


def test_dollar_and_markdown_in_values_reach_the_page_as_typed():
    page, shown = make_page()
    page.say("valuation.subtitle", as_of="2026-03-31", n="$1.1M … $0.00", currency="$x$")
    markup = shown[0]["text/html"]
    assert "$1.1M … $0.00" in markup and "$x$" in markup
    assert MATH_OFF_CLASSES in markup  # JupyterLab's MathJax leaves "$" alone
    assert (
        shown[0]["text/plain"] == "Data as of 2026-03-31 · $1.1M … $0.00 accounts · amounts in $x$"
    )


def test_html_fragments_nest_but_plain_strings_are_escaped():
    page, shown = make_page()
    inner = page.text("plan.tier_reason", reason="<b>x</b>")
    assert isinstance(inner, Html) and inner == "Tier rule: &lt;b&gt;x&lt;/b&gt;"
    page.say("plan.kpi_more", names=inner)
    page.say("plan.kpi_more", names=str(inner))  # no longer Html: escaped once more
    first, second = (b["text/html"] for b in shown)
    assert "Tier rule: &lt;b&gt;x&lt;/b&gt;" in first
    assert "Tier rule: &amp;lt;b&amp;gt;" in second


# --------------------------------------------------------------------------- templates


def test_japanese_bold_next_to_cjk_punctuation_renders_as_strong():
    # CommonMark leaves these ** as typed (issue 12, the Japanese scenario report)
    assert render_template("売上が**{x}**（前年比）", {"x": "¥3,293.1億"}) == (
        "<p>売上が<strong>¥3,293.1億</strong>（前年比）</p>"
    )
    page, shown = make_page("ja")
    page.say(
        "scenarios.headline",
        months=36,
        start="2026-04",
        base="基本",
        rev_p50="¥3,293.1億",
        rev_p10="¥3,000億",
        rev_p90="¥3,500億",
        gp_p50="¥900億",
        gp_p10="¥800億",
        gp_p90="¥1,000億",
        target="¥3,100億",
        target_basis="横ばい",
        miss="12%",
    )
    markup = shown[0]["text/html"]
    assert "売上が<strong>¥3,293.1億</strong>（10回中8回" in markup
    assert "**" not in markup and markup.count("<strong>") == 5


def test_light_markdown_of_the_templates():
    out = render_template(
        "Intro *em* and _em too_, `code`, show_personal_data stays.  \n"
        "Next line.\n\n- one **{a}**\n- two\n  continued\n\n3. three\n4. four",
        {"a": "A"},
    )
    assert out == (
        "<p>Intro <em>em</em> and <em>em too</em>, <code>code</code>, "
        "show_personal_data stays.<br>\nNext line.</p>"
        "<ul><li>one <strong>A</strong></li><li>two\ncontinued</li></ul>"
        '<ol start="3"><li>three</li><li>four</li></ol>'
    )
    assert render_template("- only {a}", {"a": 1}, inline=True) == "only 1"
    assert render_template("one *{a}*", {"a": 1}, inline=True) == "one <em>1</em>"


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_every_locale_template_renders_without_leftover_markdown(lang):
    page, _ = make_page(lang)
    for key, template in plots.translations(lang).items():
        names = {m.split(":")[0].split("!")[0] for m in re.findall(r"\{([^{}]*)\}", template)}
        out = page.text(key, **{n: 0.5 for n in names})
        assert "**" not in out and "`" not in out, (key, out)
        assert not re.search(r"(?<![\\\w])\*(?!\s)|(?<![A-Za-z0-9])_\S", out), (key, out)


def test_missing_value_raises_a_clear_error():
    page, _ = make_page()
    with pytest.raises(TemplateValueError) as err:
        page.say("plan.subtitle", account_id="A1")
    message = str(err.value)
    assert "'plan.subtitle' (en.json)" in message and "'as_of', 'dataset'" in message
    assert "given: account_id" in message
    with pytest.raises(TemplateValueError, match="'name'"):
        page.t("plan.title")
    with pytest.raises(KeyError, match="missing from kam_analysis/locale/en.json"):
        page.say("plan.no_such_key")
    with pytest.raises(ValueError, match="positional"):
        render_template("{} and {0}", {})


def test_missing_and_infinite_values_never_show_nan_inf_or_none():
    page, shown = make_page()
    page.say("plan.subtitle", account_id=None, as_of=float("nan"), dataset=float("inf"))
    page.say("axis.interval", level=float("-inf"))  # a format spec ({level:.0%})
    page.say("axis.interval", level=0.9)
    text = " ".join(b["text/plain"] for b in shown)
    assert "– · as of – · dataset ∞" in text and "-∞" in text and "90%" in text
    assert not re.search(r"nan|inf|None", text)
    expected = plots.t("axis.interval").replace("{level:.0%}", plots.NA_TEXT)
    assert page.t("axis.interval", level=np.nan) == expected


# --------------------------------------------------------------------------- headings


def test_headings_are_elements_with_ids_from_their_keys():
    page, shown = make_page("ja")
    page.h1("ltv.title")
    page.h2("ltv.section.risk")
    page.h3("kpi.h.maps", n=3)
    page.h3("kpi.h.maps", n=4)
    ids = [re.match(r'<h(\d) id="([^"]+)"', b["text/html"]).groups() for b in shown]
    assert ids == [
        ("1", "ltv-title"),
        ("2", "ltv-section-risk"),
        ("3", "kpi-h-maps"),
        ("3", "kpi-h-maps-2"),
    ]
    assert shown[0]["text/html"].endswith(f">{plots.t('ltv.title', 'ja')}</h1>")
    assert shown[0]["text/plain"] == plots.t("ltv.title", "ja")
    with pytest.raises(ValueError, match="1 to 4"):
        page.heading(7, "ltv.title")


# --------------------------------------------------------------------------- tables, charts


def test_table_translates_headers_formats_and_colours_categories():
    page, shown = make_page(prefix="kpi.col.")
    df = pd.DataFrame(
        {
            "account_id": ["A1", "A2"],
            "status": ["on_track", "off_track"],
            "attainment": [0.5, np.inf],
            "label": ["x", "y"],
        }
    )
    page.table(
        df,
        {"attainment": "pct"},
        columns={"label": "ltv.col.model"},
        categories={"status": "kpi.status."},
    )
    markup = shown[0]["text/html"]
    assert markup.startswith(f'<div class="kam-table {MATH_OFF_CLASSES}"><style')
    for header in (plots.t("kpi.col.status"), plots.t("kpi.col.attainment"), "Model"):
        assert f">{header}</th>" in markup
    assert plots.t("kpi.status.on_track") in markup and "#d9f0d3" in markup
    assert ">50.0%</td>" in markup and ">∞</td>" in markup
    assert df["attainment"].iloc[1] == np.inf  # input not modified
    with pytest.raises(KeyError, match=r"unknown column\(s\) \['nope'\]"):
        page.table(df, {"nope": "pct"})


def test_chart_shows_png_with_alt_text_and_closes_the_figure():
    page, shown = make_page()
    fig, ax = plt.subplots()
    ax.bar(["a", "b"], [1, 2])
    ax.set_title("Revenue by <line>")
    page.chart(ax)
    assert not plt.fignum_exists(fig.number)
    markup = shown[0]["text/html"]
    assert re.search(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]{200,}" alt="', markup)
    assert 'alt="Revenue by &lt;line&gt;"' in markup
    plt.subplots()
    page.chart()  # the current figure; no title: the generic label
    assert 'alt="Chart"' in shown[1]["text/html"]
    with pytest.raises(TypeError, match="Figure or Axes"):
        page.chart("not a figure")


def test_chart_with_dollar_data_labels_renders_in_report_style():
    shown: list[dict] = []
    page = Page(lang="en", currency="USD", show=shown.append)  # style=True: the report style
    assert matplotlib.rcParams["text.parse_math"] is False
    name = r"$\unicode{x41}$ Corp"
    ax = plots.scatter_labeled(
        pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 1.0], "name": [name, "B"]}),
        "x",
        "y",
        "name",
        top_n=2,
        title=f"Risk — {name}",
    )
    assert ax.texts[0].get_text() == name  # drawn as typed, not parsed
    page.chart(ax)
    assert f'alt="Risk — {name}"' in shown[0]["text/html"]


# --------------------------------------------------------------------------- numbers, context


def test_context_sets_language_currency_and_number_helpers():
    ctx = SimpleNamespace(
        lang="ja", config=SimpleNamespace(data=SimpleNamespace(base_currency="JPY"))
    )
    page = Page(ctx, style=False, show=lambda b: None)
    assert (page.lang, page.currency) == ("ja", "JPY")
    assert page.money(329_310_000_000) == "¥3,293.1億"
    assert page.money(float("inf")) == "∞" and page.money(None) == plots.NA_TEXT
    assert page.pct(0.1234) == "12.3%" and page.pct(float("-inf")) == "-∞"
    assert page.int(float("inf")) == "∞" and page.int(1234.6) == "1,235"
    assert page.num(93.14) == "93.1" and page.num(float("nan")) == plots.NA_TEXT
    assert page.label("key", "tier.") == plots.t("tier.key", "ja")
    assert list(page.labels(pd.Series(["key", "zz_new"]), "tier.")) == [
        plots.t("tier.key", "ja"),
        "Zz new",
    ]
    assert page.join(["a", "b"]) == "a、b"
    assert Page(ctx, lang="en", currency="EUR", style=False).money(5) == "€5.00"
    with pytest.raises(ValueError, match="unknown language"):
        Page(lang="fr", style=False)


def test_record_writes_the_run_sidecar(tmp_path, monkeypatch):
    sidecar = tmp_path / "recorded.json"
    monkeypatch.setenv("KAM_RECORD_FILE", str(sidecar))
    page, _ = make_page()
    page.record("n_accounts", np.int64(12))
    page.record("top", "A$1")
    assert json.loads(sidecar.read_text(encoding="utf-8")) == {"n_accounts": 12, "top": "A$1"}


def test_placeholders_may_share_a_name_with_method_parameters():
    page, shown = make_page()
    page.h2("ltv.section.ranking")
    page.say("ltv.ranking_note", years=5, level="80%", interval="model")  # {level}
    assert "80%" in shown[1]["text/html"]
    assert page.t("axis.interval", level=0.8) == "80% interval"

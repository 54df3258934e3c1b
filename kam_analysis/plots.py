"""The stakeholder-facing presentation layer: style, fonts, labels, numbers, charts.

Everything a reader of the HTML reports sees goes through here, so that all
reports look alike and read in English or Japanese:

* :func:`set_report_style` — a seaborn/matplotlib theme legible at report width,
  with the Japanese font (IPAexGothic from ``matplotlib-fontja``) applied *after*
  the seaborn theme (``sns.set_theme`` resets the font family).
* :func:`t` — the translation table (``kam_analysis/locale/<lang>.json``); every
  label in a chart or table comes from it. :func:`label_for` falls back to a
  readable version of a column name when no translation exists.
* :func:`fmt_money`, :func:`fmt_pct`, :func:`fmt_int` — number formatting for
  narrative text and tables; :func:`money_formatter` / :func:`pct_formatter`
  for chart axes.
* :func:`styled_table` — a pandas ``Styler`` with formatted numbers whose cells
  and headers are HTML-escaped (``Styler`` does not escape by default).
* Chart helpers — :func:`bar_contributions`, :func:`pareto_curve`,
  :func:`fan_chart`, :func:`heatmap`, :func:`scatter_labeled`. Convention: data
  first, ``ax=None`` (a new figure is made when omitted), return the ``Axes``,
  never call ``plt.show()``.

Text coming from data (account names) is drawn with mathtext disabled:
:func:`set_report_style` sets ``text.parse_math = False`` for all text, and
without it the helpers escape ``$``. A name such as ``"A$1$"`` is shown as typed.

Numbers: missing values (None, NaN, NaT, pd.NA) are shown as :data:`NA_TEXT`,
infinite ones as :data:`INF_TEXT` (``∞``, ``-∞``; no currency sign or ``%``),
by every formatter here: the ``fmt_*`` functions, the axis formatters and the
table / heat-map formats. Nothing prints ``nan``, ``inf`` or ``None``.
"""

from __future__ import annotations

import difflib
import functools
import html
import json
import logging
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

__all__ = [
    "JAPANESE_FONT",
    "LANGUAGES",
    "NA_TEXT",
    "INF_TEXT",
    "CARD_STRIPE_COLOURS",
    "STATUS_COLOURS",
    "TREND_COLOURS",
    "TranslationKeyError",
    "apply_japanese_font",
    "bar_contributions",
    "break_even_plot",
    "chart_text",
    "concentration_trend_plot",
    "scenario_fans",
    "scheme_boxplot",
    "tornado_chart",
    "calibration_plot",
    "fan_chart",
    "figure",
    "fmt_int",
    "fmt_money",
    "fmt_num",
    "fmt_pct",
    "forest_plot",
    "format_by_row",
    "heatmap",
    "kpi_cards",
    "hist_by_group",
    "interval_ranking",
    "label_for",
    "money_formatter",
    "pareto_curve",
    "pct_formatter",
    "product_line_bars",
    "revenue_history",
    "period_histogram_plot",
    "renewal_bars",
    "retention_plot",
    "scatter_labeled",
    "set_report_style",
    "small_multiples",
    "style_categories",
    "styled_table",
    "t",
    "tracking_plot",
    "translations",
]

JAPANESE_FONT = "IPAexGothic"
"""Font family used for all report text (covers Latin and Japanese)."""

LANGUAGES = ("en", "ja")
"""Languages with a translation table in ``kam_analysis/locale``."""

NA_TEXT = "–"
"""How a missing number is shown in text and tables."""

INF_TEXT = "∞"
"""How an infinite number is shown (``-∞`` when negative), without unit or sign."""

FULL_WIDTH_IN = 9.0
"""Width of a full-width report figure in inches (≈ 900 px at 100 dpi)."""

_CURRENCY_SYMBOLS = {"JPY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "CNY": "CN¥", "KRW": "₩"}
_ZERO_DECIMAL_CURRENCIES = {"JPY", "KRW"}


# --------------------------------------------------------------------------- translation


class TranslationKeyError(KeyError):
    """A label key is missing from a locale file."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0])


@functools.cache
def translations(lang: str) -> Mapping[str, str]:
    """The translation table of one language.

    Parameters
    ----------
    lang : str
        Language code, one of :data:`LANGUAGES`.

    Returns
    -------
    Mapping[str, str]
        Flat mapping ``key -> text`` read from ``kam_analysis/locale/<lang>.json``.

    Raises
    ------
    ValueError
        For a language without a locale file.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; available: {', '.join(LANGUAGES)}")
    text = resources.files("kam_analysis").joinpath("locale", f"{lang}.json").read_text("utf-8")
    return dict(json.loads(text))


def t(key: str, lang: str = "en", **values: Any) -> str:
    """Translate a label key, optionally filling ``{placeholders}``.

    Parameters
    ----------
    key : str
        Dotted key such as ``"axis.revenue"``.
    lang : str, default "en"
        ``"en"`` or ``"ja"``.
    **values
        Values for ``str.format`` placeholders in the text.

    Returns
    -------
    str

    Raises
    ------
    TranslationKeyError
        (a ``KeyError``) naming the missing key, the locale file and similar keys.
    ValueError
        For an unknown language.
    """
    table = translations(lang)
    try:
        text = table[key]
    except KeyError:
        close = difflib.get_close_matches(key, list(table), n=3, cutoff=0.7)
        hint = f"; did you mean {', '.join(repr(k) for k in close)}?" if close else ""
        raise TranslationKeyError(
            f"translation key {key!r} missing from kam_analysis/locale/{lang}.json "
            f"(add it to every locale file){hint}"
        ) from None
    return text.format(**values) if values else text


def label_for(name: object, lang: str = "en", *, prefix: str = "criterion.") -> str:
    """A display label for a column or category name.

    Looks up ``prefix + name`` in the translation table and falls back to the
    name with underscores turned into spaces and the first letter capitalised.

    Parameters
    ----------
    name : object
        Column or category name.
    lang : str, default "en"
    prefix : str, default "criterion."
        Key prefix in the translation table (``"tier."``, ``"axis."``, ...).

    Returns
    -------
    str
    """
    key = f"{prefix}{name}"
    table = translations(lang)
    if key in table:
        return table[key]
    text = str(name).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


# --------------------------------------------------------------------------- style


def apply_japanese_font() -> str:
    """Make IPAexGothic the font of all text, with DejaVu Sans as glyph fallback.

    Returns
    -------
    str
        Path of the IPAexGothic font file.
    """
    import matplotlib_fontja  # registers the bundled IPAexGothic on import

    matplotlib_fontja.japanize()
    mpl.rcParams["font.family"] = [JAPANESE_FONT, "DejaVu Sans"]
    sans = [f for f in mpl.rcParams["font.sans-serif"] if f != JAPANESE_FONT]
    mpl.rcParams["font.sans-serif"] = [JAPANESE_FONT, *sans]
    return matplotlib_fontja.get_font_ttf_path()


def set_report_style(lang: str = "en") -> None:
    """Apply the report theme: seaborn ``whitegrid``, report-width figures, Japanese font.

    Call it once at the top of every report notebook (:class:`kam_analysis.report.Page`
    does). The font is applied after ``sns.set_theme`` (which resets the font
    family), so Japanese text renders with IPAexGothic instead of boxes in both
    languages (account names may be Japanese in an English report). Mathtext is
    switched off (``text.parse_math = False``): a ``$`` in an account name or a
    title is drawn as typed and can never raise a mathtext parse error.

    Parameters
    ----------
    lang : str, default "en"
        Report language; checked against :data:`LANGUAGES`.

    Raises
    ------
    ValueError
        For an unknown language.
    """
    import seaborn as sns

    translations(lang)  # validates lang
    sns.set_theme(
        context="notebook",
        style="whitegrid",
        palette="colorblind",
        rc={
            "figure.figsize": (FULL_WIDTH_IN, FULL_WIDTH_IN * 0.55),
            "figure.dpi": 100,
            "savefig.dpi": 110,
            "savefig.bbox": "tight",
            "axes.titlesize": 13,
            "axes.titleweight": "normal",  # IPAexGothic has no bold face
            "axes.titlelocation": "left",
            "axes.labelsize": 11,
            "xtick.labelsize": 10,
            "ytick.labelsize": 10,
            "legend.fontsize": 10,
            "legend.frameon": False,
            "axes.spines.top": False,
            "axes.spines.right": False,
            # data labels (account names, ids) are drawn as typed: "$" never starts mathtext
            "text.parse_math": False,
        },
    )
    apply_japanese_font()
    # "findfont: Failed to find font weight bold" would land in the report as log noise
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)


def figure(
    width: str | float = "full",
    height: float | None = None,
    *,
    nrows: int = 1,
    ncols: int = 1,
    **subplots_kw: Any,
) -> tuple[Figure, Any]:
    """A new figure sized for the report page.

    Parameters
    ----------
    width : "full", "half" or float, default "full"
        Full report width (9 in), half width, or inches.
    height : float, optional
        Inches; default 0.55 × width (× rows).
    nrows, ncols : int, default 1
    **subplots_kw
        Passed to ``plt.subplots`` (``sharex``, ``subplot_kw``, ...).

    Returns
    -------
    (Figure, Axes or array of Axes)
    """
    if width == "full":
        w = FULL_WIDTH_IN
    elif width == "half":
        w = FULL_WIDTH_IN / 2
    elif isinstance(width, numbers.Real) and width > 0:
        w = float(width)
    else:
        raise ValueError(f"width must be 'full', 'half' or a positive number, got {width!r}")
    h = height if height is not None else w * 0.55 * max(1, nrows) ** 0.8
    subplots_kw.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, figsize=(w, h), **subplots_kw)


def _interval_rows(
    ax: Axes,
    data: pd.DataFrame,
    value: str,
    lower: str,
    upper: str,
    label: str,
    hue: str | None,
    lang: str,
    hue_prefix: str,
) -> None:
    """One row per record, top first: a point at ``value`` with a ``lower``-``upper`` bar."""
    y = np.arange(len(data))[::-1]
    v = data[value].to_numpy(dtype=float)
    lo = data[lower].to_numpy(dtype=float)
    hi = data[upper].to_numpy(dtype=float)
    cats = data[hue].astype(str).to_numpy() if hue else np.array([""] * len(data))
    for i, cat in enumerate(sorted(set(cats))):  # same colours as scatter_labeled
        m = cats == cat
        ax.errorbar(
            v[m],
            y[m],
            xerr=[np.clip(v[m] - lo[m], 0, None), np.clip(hi[m] - v[m], 0, None)],
            fmt="o",
            color=f"C{i % 10}",
            capsize=3,
            label=_plain(label_for(cat, lang, prefix=hue_prefix)) if hue else None,
        )
    ax.set_yticks(y, [_plain(s) for s in data[label]])


def _new_ax(ax: Axes | None, **kw: Any) -> Axes:
    if ax is not None:
        return ax
    _, ax = figure(**kw)
    return ax


def chart_text(text: object) -> str:
    """Data text for a chart, drawn as typed: ``$`` must not start mathtext.

    Under :func:`set_report_style` mathtext is off for all text
    (``text.parse_math = False``) and the text is returned unchanged; otherwise
    ``$`` is escaped. Either way ``"A$1$"`` or ``"$\\unicode{x41}$"`` is shown
    as typed and never parsed.
    """
    text = str(text)
    return text.replace("$", r"\$") if mpl.rcParams["text.parse_math"] else text


_plain = chart_text


# --------------------------------------------------------------------------- numbers


def _is_missing(x: object) -> bool:
    if x is None or x is pd.NA or x is pd.NaT:
        return True
    try:
        return bool(np.isnan(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _is_infinite(x: object) -> bool:
    try:
        return math.isinf(float(x))  # type: ignore[arg-type]
    except OverflowError:  # an int beyond float range
        return True
    except (TypeError, ValueError):
        return False


def _infinite_text(x: object, *, signed: bool = False) -> str:
    if x < 0:  # type: ignore[operator]
        return f"-{INF_TEXT}"
    return f"+{INF_TEXT}" if signed else INF_TEXT


def _special_text(x: object, *, signed: bool = False) -> str | None:
    """NA text for a missing value, ∞ / -∞ for an infinite one, else None."""
    if _is_missing(x):
        return NA_TEXT
    if _is_infinite(x):
        return _infinite_text(x, signed=signed)
    return None


def _compact(value: float, lang: str) -> tuple[float, str] | None:
    a = abs(value)
    steps = (
        ((1e12, "兆"), (1e8, "億"), (1e4, "万"))
        if lang == "ja"
        else ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))
    )
    for size, suffix in steps:
        if a >= size:
            return value / size, suffix
    return None


def fmt_money(
    x: float | None,
    currency: str = "JPY",
    *,
    compact: bool = False,
    lang: str = "en",
    decimals: int | None = None,
) -> str:
    """Format an amount of money.

    Parameters
    ----------
    x : float or None
        The amount; missing values give :data:`NA_TEXT`, infinite ones
        :data:`INF_TEXT` (``∞`` / ``-∞``, no currency sign).
    currency : str, default "JPY"
        ISO code. JPY/USD/EUR/GBP/CNY/KRW get their symbol in front, other codes
        are written after the number. JPY and KRW have no decimals, others two.
    compact : bool, default False
        Abbreviate large amounts: ``K/M/B/T`` in English, ``万/億/兆`` in Japanese.
    lang : str, default "en"
        Only matters with ``compact``.
    decimals : int, optional
        Override the number of decimals (compact amounts use 1).

    Returns
    -------
    str
        E.g. ``fmt_money(1234567)`` → ``"¥1,234,567"``,
        ``fmt_money(1234567, compact=True)`` → ``"¥1.2M"``,
        ``fmt_money(123456789, compact=True, lang="ja")`` → ``"¥1.2億"``,
        ``fmt_money(-5.5, "GBP")`` → ``"-£5.50"``.
    """
    if (special := _special_text(x)) is not None:
        return special
    value = float(x)  # type: ignore[arg-type]
    sign = "-" if value < 0 else ""
    symbol = _CURRENCY_SYMBOLS.get(currency.upper())
    if compact and (parts := _compact(abs(value), lang)) is not None:
        scaled, suffix = parts
        body = f"{scaled:,.{1 if decimals is None else decimals}f}{suffix}"
    else:
        d = (
            decimals
            if decimals is not None
            else (0 if currency.upper() in _ZERO_DECIMAL_CURRENCIES else 2)
        )
        body = f"{abs(value):,.{d}f}"
    if body.strip("0.,") == "":
        sign = ""
    return f"{sign}{symbol}{body}" if symbol else f"{sign}{body} {currency.upper()}"


PCT_CAP = 10.0
"""Fractions beyond ±10 (±1,000 %) are shown as ``> 1,000%``: growth from a tiny base."""


def fmt_pct(
    x: float | None, digits: int = 1, *, signed: bool = False, cap: float | None = PCT_CAP
) -> str:
    """Format a fraction as a percentage: ``0.1234`` → ``"12.3%"``.

    Parameters
    ----------
    x : float or None
        A fraction (1.0 = 100 %); missing gives :data:`NA_TEXT`, infinite
        ``∞`` / ``-∞`` (``+∞`` when signed).
    digits : int, default 1
    signed : bool, default False
        Prefix ``+`` on positive values (for changes).
    cap : float or None, default :data:`PCT_CAP`
        Beyond ``±cap`` the value is shown as ``> +1,000%`` / ``< -1,000%``: a
        growth of +68,645 % from a tiny base says only "from almost nothing".

    Returns
    -------
    str
    """
    if (special := _special_text(x, signed=signed)) is not None:
        return special
    value = float(x)  # type: ignore[arg-type]
    if cap is not None and abs(value) > cap:
        bound = f"{cap * 100:{'+' if signed or value < 0 else ''},.0f}%"
        bound = bound if value > 0 else f"-{bound.lstrip('+-')}"
        return f"> {bound}" if value > 0 else f"< {bound}"
    return f"{value * 100:{'+' if signed else ''},.{digits}f}%"


def fmt_int(x: float | None) -> str:
    """Format a count with thousands separators: ``1234.6`` → ``"1,235"``.

    Missing values give :data:`NA_TEXT`, infinite ones ``∞`` / ``-∞``.
    """
    if isinstance(x, numbers.Integral) and not isinstance(x, bool):  # exact, beyond float too
        return f"{int(x):,d}"
    if (special := _special_text(x)) is not None:
        return special
    return f"{round(float(x)):,d}"  # type: ignore[arg-type]


def fmt_num(x: float | None, digits: int = 1, *, signed: bool = False) -> str:
    """Format a plain number with ``digits`` decimals: ``93.14`` → ``"93.1"``.

    Parameters
    ----------
    x : float or None
        Missing gives :data:`NA_TEXT`, infinite ``∞`` / ``-∞``.
    digits : int, default 1
    signed : bool, default False
        Prefix ``+`` on positive values.

    Returns
    -------
    str
        With thousands separators (``12,345.6``).
    """
    if (special := _special_text(x, signed=signed)) is not None:
        return special
    return f"{float(x):{'+' if signed else ''},.{digits}f}"  # type: ignore[arg-type]


def money_formatter(
    currency: str = "JPY", *, compact: bool = True, lang: str = "en"
) -> FuncFormatter:
    """An axis tick formatter for amounts (see :func:`fmt_money`)."""
    return FuncFormatter(lambda v, _pos: fmt_money(v, currency, compact=compact, lang=lang))


def pct_formatter(digits: int = 0) -> FuncFormatter:
    """An axis tick formatter for fractions shown as percentages."""
    return FuncFormatter(lambda v, _pos: fmt_pct(v, digits))


# --------------------------------------------------------------------------- tables

_FORMAT_KINDS = ("money", "money_compact", "pct", "int", "float", "text")


def _column_formatter(
    kind: str | Callable[[Any], str], currency: str, lang: str
) -> Callable[[Any], str]:
    if callable(kind):
        return kind
    if kind == "money":
        return lambda v: fmt_money(v, currency)
    if kind == "money_compact":
        return lambda v: fmt_money(v, currency, compact=True, lang=lang)
    if kind == "pct":
        return fmt_pct
    if kind == "int":
        return fmt_int
    if kind == "float":
        return lambda v: fmt_num(v, 2)
    if kind == "text":
        return _text_cell
    if "{" in kind:
        return lambda v: special if (special := _special_text(v)) is not None else kind.format(v)
    raise ValueError(
        f"unknown format {kind!r}; use one of {', '.join(_FORMAT_KINDS)}, "
        "a format string such as '{:.3f}' or a function"
    )


def _text_cell(value: object) -> str:
    """A text cell: strings as given (``styled_table`` escapes them), other values escaped."""
    if (special := _special_text(value)) is not None:
        return special
    return value if isinstance(value, str) else html.escape(str(value))


def _escaped_names(index: pd.Index) -> pd.Index:
    names = [None if n is None else html.escape(str(n)) for n in index.names]
    out = index.copy()
    out.names = names
    return out


def styled_table(
    df: pd.DataFrame,
    formats: Mapping[str, str | Callable[[Any], str]] | None = None,
    *,
    currency: str = "JPY",
    lang: str = "en",
    hide_index: bool = False,
    caption: str | None = None,
) -> pd.io.formats.style.Styler:
    """A report table: formatted numbers, every cell and header HTML-escaped.

    Parameters
    ----------
    df : DataFrame
        Any table; not modified.
    formats : mapping, optional
        Column -> ``"money"``, ``"money_compact"``, ``"pct"`` (fractions),
        ``"int"``, ``"float"``, ``"text"``, a format string (``"{:.3f}"``) or a
        function returning text. Unlisted numeric columns: integers as
        :func:`fmt_int`, floats with two decimals.
    currency : str, default "JPY"
    lang : str, default "en"
        For compact money units.
    hide_index : bool, default False
    caption : str, optional
        Escaped too.

    Returns
    -------
    pandas.io.formats.style.Styler
        Displays as HTML in a notebook; text values such as
        ``"<script>"`` appear as text, not markup.

    Raises
    ------
    KeyError
        When ``formats`` names a column that is not in ``df``.
    ValueError
        For an unknown format kind.
    """
    formats = dict(formats or {})
    missing = [c for c in formats if c not in df.columns]
    if missing:
        raise KeyError(
            f"styled_table: formats name unknown column(s) {missing}; columns: {list(df.columns)}"
        )
    data = df.copy()
    data.index = _escaped_names(data.index)
    data.columns = _escaped_names(data.columns)
    formatters: dict[Any, Callable[[Any], str]] = {}
    numeric: list[Any] = []
    for orig, col in zip(df.columns, data.columns, strict=True):
        series = df[orig]
        is_num = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if orig in formats:
            formatters[col] = _column_formatter(formats[orig], currency, lang)
            is_num = is_num and formats[orig] != "text"
        elif is_num:
            formatters[col] = _column_formatter(
                "int" if pd.api.types.is_integer_dtype(series) else "float", currency, lang
            )
        else:
            formatters[col] = _text_cell
        if is_num:
            numeric.append(col)
    styler = data.style.format(formatters, escape="html", na_rep=NA_TEXT)
    styler = styler.format_index(escape="html", axis=0).format_index(escape="html", axis=1)
    if numeric:
        styler = styler.set_properties(subset=numeric, **{"text-align": "right"})
    text_cols = [c for c in data.columns if c not in numeric]
    if text_cols:
        styler = styler.set_properties(subset=text_cols, **{"text-align": "left"})
    if hide_index:
        styler = styler.hide(axis="index")
    if caption is not None:
        styler = styler.set_caption(html.escape(caption))
    return styler


# --------------------------------------------------------------------------- charts


def _numeric_frame(df: pd.DataFrame, name: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame) or df.empty:
        raise ValueError(f"{name}: expected a non-empty DataFrame")
    bad = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise ValueError(f"{name}: column(s) {bad} are not numeric")
    return df


def bar_contributions(
    df: pd.DataFrame,
    *,
    label: str | None = None,
    top_n: int | None = 20,
    ax: Axes | None = None,
    lang: str = "en",
    label_prefix: str = "criterion.",
    title: str | None = None,
    colors: Mapping[str, Any] | None = None,
) -> Axes:
    """Stacked horizontal bars of score contributions, largest total at the top.

    Parameters
    ----------
    df : DataFrame
        One row per account; one numeric column per criterion holding its
        contribution to the score (weight × normalised value). Row labels come
        from the index, or from the column ``label`` (not stacked).
    label : str, optional
        Column with the account labels.
    top_n : int or None, default 20
        Keep the accounts with the largest totals.
    ax : Axes, optional
    lang : str, default "en"
    label_prefix : str, default "criterion."
        Translation prefix for the legend entries (see :func:`label_for`).
    title : str, optional
    colors : mapping, optional
        Criterion column -> matplotlib colour (e.g. from :func:`family_colors`);
        default the colour cycle ``C0 .. C9``.

    Returns
    -------
    Axes
        One bar segment per (account, criterion); negative contributions are
        stacked to the left of zero.

    Raises
    ------
    ValueError
        For an empty frame or non-numeric criterion columns.
    """
    data = df.set_index(label) if label is not None else df
    data = _numeric_frame(data, "bar_contributions")
    order = data.sum(axis=1).sort_values(ascending=False, kind="stable").index
    data = data.loc[order]
    if top_n is not None:
        data = data.iloc[:top_n]
    height = max(2.5, 0.32 * len(data) + 1.2)
    ax = _new_ax(ax, height=height)
    y = np.arange(len(data))[::-1]  # first row at the top
    pos_left = np.zeros(len(data))
    neg_left = np.zeros(len(data))
    for i, col in enumerate(data.columns):
        values = data[col].to_numpy(dtype=float)
        values = np.nan_to_num(values)
        left = np.where(values >= 0, pos_left, neg_left)
        ax.barh(
            y,
            values,
            left=left,
            color=(colors or {}).get(col, f"C{i % 10}"),
            label=label_for(col, lang, prefix=label_prefix),
        )
        pos_left += np.clip(values, 0, None)
        neg_left += np.clip(values, None, 0)
    ax.set_yticks(y, [_plain(v) for v in data.index])
    ax.set_xlabel(t("axis.score_contribution", lang))
    ax.axvline(0, color="0.3", lw=0.8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", visible=False)
    if title:
        ax.set_title(_plain(title))
    return ax


def pareto_curve(
    values: pd.Series | Sequence[float] | np.ndarray,
    *,
    mark: float | None = 0.2,
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Cumulative share of revenue against share of accounts (largest first).

    Parameters
    ----------
    values : Series or array
        Revenue (or profit) per account, non-negative.
    mark : float or None, default 0.2
        Highlight the share held by the top ``mark`` fraction of accounts
        (the "80/20" check); the annotation text is translated.
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        The first line holds the curve, from (0, 0) to (1, 1).

    Raises
    ------
    ValueError
        For negative, missing-only or all-zero values.
    """
    v = pd.Series(values, dtype=float).dropna().to_numpy()
    if v.size == 0:
        raise ValueError("pareto_curve: no values")
    if (v < 0).any():
        raise ValueError(f"pareto_curve: {int((v < 0).sum())} negative value(s); use revenue ≥ 0")
    total = v.sum()
    if total <= 0:
        raise ValueError("pareto_curve: all values are zero")
    v = np.sort(v)[::-1]
    x = np.arange(0, v.size + 1) / v.size
    y = np.concatenate([[0.0], np.cumsum(v) / total])
    ax = _new_ax(ax)
    ax.plot(x, y, color="C0", lw=2)
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1, label=t("pareto.equality", lang))
    if mark is not None:
        if not 0 < mark < 1:
            raise ValueError(f"pareto_curve: mark must be between 0 and 1, got {mark}")
        k = math.ceil(mark * v.size)
        share = y[k]
        ax.plot([x[k], x[k]], [0, share], color="C3", ls="--", lw=1)
        ax.plot([0, x[k]], [share, share], color="C3", ls="--", lw=1)
        ax.annotate(
            t("pareto.annotation", lang, accounts=fmt_pct(mark, 0), share=fmt_pct(share, 0)),
            xy=(x[k], share),
            xytext=(10, -25),
            textcoords="offset points",
            color="C3",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.xaxis.set_major_formatter(pct_formatter())
    ax.yaxis.set_major_formatter(pct_formatter())
    ax.set_xlabel(t("axis.share_of_accounts", lang))
    ax.set_ylabel(t("axis.cumulative_share", lang))
    ax.legend(loc="lower right")
    if title:
        ax.set_title(_plain(title))
    return ax


def _quantile_levels(columns: pd.Index) -> dict[float, Any]:
    levels: dict[float, Any] = {}
    for col in columns:
        try:
            q = float(col)
        except (TypeError, ValueError):
            raise ValueError(
                f"fan_chart: column {col!r} is not a quantile level; name columns 0.05, 0.5, 0.95, ..."
            ) from None
        if not 0 < q < 1:
            raise ValueError(f"fan_chart: quantile level {q} is not between 0 and 1")
        levels[round(q, 6)] = col
    return levels


def fan_chart(
    quantiles_df: pd.DataFrame,
    *,
    actual: pd.Series | None = None,
    ax: Axes | None = None,
    lang: str = "en",
    currency: str | None = None,
    color: str = "C0",
    title: str | None = None,
) -> Axes:
    """A forecast fan: shaded quantile bands around the median, with history.

    Parameters
    ----------
    quantiles_df : DataFrame
        Index = time (dates or periods), columns = quantile levels as numbers in
        (0, 1), e.g. ``0.05, 0.25, 0.5, 0.75, 0.95``. Each level q < 0.5 with a
        matching 1 − q column becomes a band (inner bands darker); 0.5 is drawn
        as the median line.
    actual : Series, optional
        Observed history (index = time), drawn in black.
    ax : Axes, optional
    lang : str, default "en"
    currency : str, optional
        Format the y axis as money (compact).
    color : str, default "C0"
    title : str, optional

    Returns
    -------
    Axes
        ``ax.collections`` holds one band per quantile pair.

    Raises
    ------
    ValueError
        For column names that are not quantile levels, or no band and no median.
    """
    _numeric_frame(quantiles_df, "fan_chart")
    levels = _quantile_levels(quantiles_df.columns)
    pairs = sorted(q for q in levels if q < 0.5 and round(1 - q, 6) in levels)
    if not pairs and 0.5 not in levels:
        raise ValueError("fan_chart: need a median (0.5) or at least one pair q, 1 - q")
    ax = _new_ax(ax)
    x = quantiles_df.index
    for i, q in enumerate(pairs):  # outer bands first, lighter
        alpha = 0.15 + 0.35 * (i + 1) / len(pairs)
        ax.fill_between(
            x,
            quantiles_df[levels[q]].to_numpy(dtype=float),
            quantiles_df[levels[round(1 - q, 6)]].to_numpy(dtype=float),
            color=color,
            alpha=alpha,
            lw=0,
            label=t("axis.interval", lang, level=1 - 2 * q),
        )
    if 0.5 in levels:
        ax.plot(
            x,
            quantiles_df[levels[0.5]].to_numpy(dtype=float),
            color=color,
            lw=2,
            label=t("axis.median", lang),
        )
    if actual is not None:
        ax.plot(
            actual.index,
            actual.to_numpy(dtype=float),
            color="black",
            lw=1.5,
            label=t("axis.actual", lang),
        )
    if currency:
        ax.yaxis.set_major_formatter(money_formatter(currency, lang=lang))
    ax.legend(loc="upper left")
    if title:
        ax.set_title(_plain(title))
    return ax


def heatmap(
    df: pd.DataFrame,
    *,
    fmt: str | Callable[[Any], str] | None = None,
    annot: bool | None = None,
    cmap: str = "Blues",
    center: float | None = None,
    currency: str = "JPY",
    lang: str = "en",
    ax: Axes | None = None,
    title: str | None = None,
    cbar: bool = True,
) -> Axes:
    """A heat map of a numeric table (e.g. account × product-line whitespace).

    Parameters
    ----------
    df : DataFrame
        Numeric cells; index and columns become the axis labels.
    fmt : str or callable, optional
        Cell annotation format: ``"money"``, ``"money_compact"``, ``"pct"``,
        ``"int"``, ``"float"``, a format string or a function.
    annot : bool, optional
        Write the values in the cells; default when the table has ≤ 400 cells.
    cmap : str, default "Blues"
    center : float, optional
        Diverging colour map centre.
    currency, lang : str
        For money formats.
    ax : Axes, optional
    title : str, optional
    cbar : bool, default True

    Returns
    -------
    Axes
    """
    import seaborn as sns

    _numeric_frame(df, "heatmap")
    if annot is None:
        annot = df.size <= 400
    labels: Any = False
    if annot:
        formatter = _column_formatter(fmt or "float", currency, lang)
        labels = np.vectorize(formatter, otypes=[object])(df.to_numpy(dtype=float))
    ax = _new_ax(ax, height=max(2.5, 0.35 * len(df) + 1.5))
    data = df.copy()
    data.index = [_plain(v) for v in data.index]
    data.columns = [_plain(v) for v in data.columns]
    sns.heatmap(
        data.astype(float),
        annot=labels,
        fmt="",
        cmap=cmap,
        center=center,
        ax=ax,
        cbar=cbar,
        linewidths=0.5,
    )
    if title:
        ax.set_title(_plain(title))
    return ax


def scatter_labeled(
    df: pd.DataFrame,
    x: str,
    y: str,
    label: str,
    *,
    top_n: int = 10,
    rank_by: str | None = None,
    hue: str | None = None,
    hue_prefix: str | None = None,
    size: str | None = None,
    rasterize_above: int = 2000,
    lang: str = "en",
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """A scatter plot that names only the top-N points.

    Parameters
    ----------
    df : DataFrame
        Columns ``x``, ``y`` (numeric), ``label`` (text), optionally ``hue``
        (categories), ``size`` (numeric, scaled to marker area) and ``rank_by``.
    x, y, label : str
        Column names.
    top_n : int, default 10
        Number of points labelled, those with the largest ``rank_by`` (default ``y``).
    rank_by : str, optional
    hue : str, optional
        Categorical column; one colour and legend entry per category.
    hue_prefix : str, optional
        Translation prefix for the hue categories (e.g. ``"tier."``).
    size : str, optional
    rasterize_above : int, default 2000
        Draw the points as a bitmap when there are more of them (100k points
        stay a small, fast figure); labels and axes stay vector.
    lang : str, default "en"
    ax : Axes, optional
    title : str, optional

    Returns
    -------
    Axes
        ``ax.texts`` holds exactly ``min(top_n, len(df))`` labels.

    Raises
    ------
    KeyError
        For a missing column.
    """
    needed = [c for c in (x, y, label, rank_by, hue, size) if c is not None]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise KeyError(
            f"scatter_labeled: column(s) {missing} not in the frame; columns: {list(df.columns)}"
        )
    ax = _new_ax(ax)
    n = len(df)
    raster = n > rasterize_above
    alpha = 0.8 if n <= 500 else max(0.15, 0.8 * (500 / n) ** 0.3)
    if size is not None:
        s_raw = df[size].to_numpy(dtype=float)
        smax = np.nanmax(s_raw) if np.isfinite(s_raw).any() and np.nanmax(s_raw) > 0 else 1.0
        sizes = 10 + 190 * np.clip(np.nan_to_num(s_raw) / smax, 0, 1)
    else:
        sizes = np.full(n, 25.0 if n <= 2000 else 4.0)
    if hue is None:
        ax.scatter(df[x], df[y], s=sizes, alpha=alpha, rasterized=raster, lw=0)
    else:
        for i, (cat, idx) in enumerate(df.groupby(hue, sort=True, observed=True).indices.items()):
            name = label_for(cat, lang, prefix=hue_prefix) if hue_prefix else str(cat)
            ax.scatter(
                df[x].iloc[idx],
                df[y].iloc[idx],
                s=sizes[idx],
                alpha=alpha,
                rasterized=raster,
                lw=0,
                color=f"C{i % 10}",
                label=_plain(name),
            )
        ax.legend(title=_plain(label_for(hue, lang, prefix="axis.")))
    if top_n > 0 and n:
        rank = df[rank_by or y].to_numpy(dtype=float)
        order = np.argsort(np.where(np.isnan(rank), np.inf, -rank), kind="stable")
        order = order[~np.isnan(rank[order])][:top_n]
        for pos in order:
            ax.annotate(
                _plain(df[label].iloc[pos]),
                xy=(df[x].iloc[pos], df[y].iloc[pos]),
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=9,
            )
    ax.set_xlabel(label_for(x, lang, prefix="axis."))
    ax.set_ylabel(label_for(y, lang, prefix="axis."))
    if title:
        ax.set_title(_plain(title))
    return ax


# --------------------------------------------------------------------------- LTV charts


def _require_cols(df: pd.DataFrame, name: str, cols: Sequence[str]) -> None:
    if not isinstance(df, pd.DataFrame) or df.empty:
        raise ValueError(f"{name}: expected a non-empty DataFrame")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {missing}; columns: {list(df.columns)}")


def forest_plot(
    hr: pd.DataFrame,
    *,
    ax: Axes | None = None,
    lang: str = "en",
    label_prefix: str = "ltv.covariate.",
    title: str | None = None,
) -> Axes:
    """Hazard ratios with confidence intervals on a log axis (a forest plot).

    Parameters
    ----------
    hr : DataFrame
        Index = covariate names; columns ``hr``, ``lower``, ``upper``
        (e.g. ``ChurnHazardModel.hazard_ratios_``).
    ax : Axes, optional
    lang : str, default "en"
    label_prefix : str
        Translation prefix of the covariate labels (see :func:`label_for`).
    title : str, optional

    Returns
    -------
    Axes
        One error bar per covariate (first row at the top), a reference line at 1.

    Raises
    ------
    ValueError
        Missing columns or non-positive ratios.
    """
    _require_cols(hr, "forest_plot", ["hr", "lower", "upper"])
    vals = hr[["hr", "lower", "upper"]].to_numpy(dtype=float)
    if not np.all(np.isfinite(vals)) or np.any(vals <= 0):
        raise ValueError("forest_plot: hazard ratios and bounds must be finite and > 0")
    ax = _new_ax(ax, height=max(2.2, 0.5 * len(hr) + 1.2))
    y = np.arange(len(hr))[::-1]
    colors = np.where(vals[:, 2] < 1, "C2", np.where(vals[:, 1] > 1, "C3", "0.5"))
    for yi, (h, lo, hi), c in zip(y, vals, colors, strict=True):
        ax.errorbar(h, yi, xerr=[[h - lo], [hi - h]], fmt="o", color=c, capsize=4, lw=2)
        ax.annotate(
            f"{h:.2f} [{lo:.2f}, {hi:.2f}]",
            xy=(hi, yi),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
        )
    ax.axvline(1.0, color="0.3", lw=0.8, ls="--")
    ax.set_xscale("log")
    lo_x, hi_x = vals[:, 1].min(), vals[:, 2].max()
    ax.set_xlim(min(lo_x, 1.0) / 1.25, max(hi_x, 1.0) * 1.8)
    lo_lim, hi_lim = ax.get_xlim()
    nice = np.array([0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20])
    ax.set_xticks(nice[(nice >= lo_lim) & (nice <= hi_lim)])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _p: ""))
    ax.set_yticks(y, [_plain(label_for(n, lang, prefix=label_prefix)) for n in hr.index])
    ax.set_xlabel(t("ltv.axis.hazard_ratio", lang))
    ax.grid(axis="y", visible=False)
    if title:
        ax.set_title(_plain(title))
    return ax


def interval_ranking(
    df: pd.DataFrame,
    *,
    label: str,
    value: str = "ltv",
    lower: str = "ltv_lower",
    upper: str = "ltv_upper",
    hue: str | None = None,
    hue_prefix: str = "ltv.model.",
    top_n: int = 15,
    currency: str = "JPY",
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Horizontal ranking of the top-N values with their intervals (largest at the top).

    Parameters
    ----------
    df : DataFrame
        Columns ``label``, ``value``, ``lower``, ``upper`` and optionally ``hue``.
    label, value, lower, upper : str
        Column names.
    hue : str, optional
        Categorical column colouring the points (e.g. the model used).
    hue_prefix : str
        Translation prefix of the hue categories.
    top_n : int, default 15
    currency : str, default "JPY"
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        ``min(top_n, len(df))`` rows.
    """
    _require_cols(df, "interval_ranking", [label, value, lower, upper] + ([hue] if hue else []))
    data = df[np.isfinite(df[value].to_numpy(dtype=float))]
    data = data.sort_values(value, ascending=False, kind="stable").head(int(top_n))
    ax = _new_ax(ax, height=max(2.5, 0.34 * len(data) + 1.2))
    _interval_rows(ax, data, value, lower, upper, label, hue, lang, hue_prefix)
    ax.xaxis.set_major_formatter(money_formatter(currency, lang=lang))
    ax.set_xlabel(t("axis.ltv", lang))
    ax.grid(axis="y", visible=False)
    if hue:
        ax.legend(loc="lower right")
    if title:
        ax.set_title(_plain(title))
    return ax


def calibration_plot(
    table: pd.DataFrame,
    *,
    currency: str | None = "JPY",
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Mean actual against mean predicted per bin, with the diagonal of perfect calibration.

    Parameters
    ----------
    table : DataFrame
        ``predicted_mean`` and ``actual_mean`` per bin (e.g.
        :func:`kam_analysis.ltv.backtest.calibration_table`).
    currency : str or None
        Money axes; None for plain numbers.
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        The first line is the diagonal, the second the bins.
    """
    _require_cols(table, "calibration_plot", ["predicted_mean", "actual_mean"])
    p = table["predicted_mean"].to_numpy(dtype=float)
    a = table["actual_mean"].to_numpy(dtype=float)
    ax = _new_ax(ax, width="half", height=FULL_WIDTH_IN / 2)
    top = float(np.nanmax(np.concatenate([p, a]))) * 1.05 or 1.0
    ax.plot([0, top], [0, top], color="0.6", ls=":", lw=1, label=t("ltv.perfect", lang))
    ax.plot(p, a, "o-", color="C0", label=t("ltv.bins", lang))
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(4))
    if currency:
        ax.xaxis.set_major_formatter(money_formatter(currency, lang=lang))
        ax.yaxis.set_major_formatter(money_formatter(currency, lang=lang))
    ax.set_xlabel(t("ltv.axis.predicted", lang))
    ax.set_ylabel(t("ltv.axis.actual", lang))
    ax.legend(loc="upper left")
    if title:
        ax.set_title(_plain(title))
    return ax


def tracking_plot(
    tracking: pd.DataFrame,
    *,
    period_label: str = "week",
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Cumulative repeat purchases in the holdout: model (dashed) vs actual (solid).

    Parameters
    ----------
    tracking : DataFrame
        ``period``, ``model``, ``actual`` (cumulative counts), e.g.
        ``BacktestResult.tracking``.
    period_label : str
        ``"week"`` or ``"month"`` (axis label key ``ltv.axis.<period>s_after_cutoff``).
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        Two lines: actual then model.
    """
    _require_cols(tracking, "tracking_plot", ["period", "model", "actual"])
    ax = _new_ax(ax)
    ax.plot(
        tracking["period"], tracking["actual"], color="black", lw=2, label=t("axis.actual", lang)
    )
    ax.plot(
        tracking["period"],
        tracking["model"],
        color="C0",
        lw=2,
        ls="--",
        label=t("ltv.model_line", lang),
    )
    ax.set_xlabel(t(f"ltv.axis.{period_label}s_after_cutoff", lang))
    ax.set_ylabel(t("ltv.axis.cumulative_purchases", lang))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: fmt_int(v)))
    ax.legend(loc="upper left")
    if title:
        ax.set_title(_plain(title))
    return ax


def period_histogram_plot(
    hist: pd.DataFrame,
    *,
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Customers by number of repeat purchases: actual vs model, side by side.

    Parameters
    ----------
    hist : DataFrame
        ``purchases`` (labels), ``actual``, ``model`` (e.g.
        :func:`kam_analysis.ltv.backtest.period_transactions_histogram`).
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        Two bar containers (actual, model).
    """
    _require_cols(hist, "period_histogram_plot", ["purchases", "actual", "model"])
    ax = _new_ax(ax)
    x = np.arange(len(hist))
    ax.bar(
        x - 0.2,
        hist["actual"].to_numpy(dtype=float),
        width=0.4,
        color="0.3",
        label=t("axis.actual", lang),
    )
    ax.bar(
        x + 0.2,
        hist["model"].to_numpy(dtype=float),
        width=0.4,
        color="C0",
        label=t("ltv.model_line", lang),
    )
    ax.set_xticks(x, [_plain(s) for s in hist["purchases"]])
    ax.set_xlabel(t("ltv.axis.repeat_purchases", lang))
    ax.set_ylabel(t("axis.accounts", lang))
    ax.legend(loc="upper left")
    ax.grid(axis="x", visible=False)
    if title:
        ax.set_title(_plain(title))
    return ax


def retention_plot(
    observed: pd.DataFrame,
    fitted: pd.DataFrame | None = None,
    *,
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Retention curves: observed share retained per cohort and model curves.

    Parameters
    ----------
    observed : DataFrame
        ``cohort``, ``month``, ``share`` (e.g.
        :func:`kam_analysis.ltv.value.retention_cohorts`), drawn as markers.
    fitted : DataFrame, optional
        ``curve`` (legend label), ``month``, ``share``: model curves drawn as lines.
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
    """
    _require_cols(observed, "retention_plot", ["cohort", "month", "share"])
    ax = _new_ax(ax)
    for i, (cohort, g) in enumerate(observed.groupby("cohort", sort=True)):
        ax.plot(
            g["month"], g["share"], "o", ms=3, color=f"C{i % 10}", alpha=0.7, label=_plain(cohort)
        )
    if fitted is not None:
        _require_cols(fitted, "retention_plot", ["curve", "month", "share"])
        for j, (curve, g) in enumerate(fitted.groupby("curve", sort=False)):
            ax.plot(
                g["month"],
                g["share"],
                color="black" if j == 0 else f"C{(j + 5) % 10}",
                lw=2,
                ls="-" if j == 0 else "--",
                label=_plain(curve),
            )
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(pct_formatter())
    ax.set_xlabel(t("ltv.axis.months_since_start", lang))
    ax.set_ylabel(t("ltv.axis.retained", lang))
    ax.legend(loc="lower left", ncols=2, fontsize=9)
    if title:
        ax.set_title(_plain(title))
    return ax


def renewal_bars(
    forecast: pd.DataFrame,
    *,
    currency: str = "JPY",
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Contract value up for renewal vs expected renewed value (with interval) per quarter.

    Parameters
    ----------
    forecast : DataFrame
        ``quarter``, ``contract_value``, ``expected_renewed_value``,
        ``lower``, ``upper`` (e.g. :func:`kam_analysis.ltv.renewal.renewal_forecast`).
    currency : str, default "JPY"
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        Two bar containers (up for renewal, expected) and one error bar.
    """
    _require_cols(
        forecast,
        "renewal_bars",
        ["quarter", "contract_value", "expected_renewed_value", "lower", "upper"],
    )
    ax = _new_ax(ax)
    x = np.arange(len(forecast))
    e = forecast["expected_renewed_value"].to_numpy(dtype=float)
    ax.bar(
        x - 0.2,
        forecast["contract_value"].to_numpy(dtype=float),
        width=0.4,
        color="0.75",
        label=t("ltv.up_for_renewal", lang),
    )
    ax.bar(x + 0.2, e, width=0.4, color="C0", label=t("ltv.expected_renewed", lang))
    ax.errorbar(
        x + 0.2,
        e,
        yerr=[
            np.clip(e - forecast["lower"].to_numpy(dtype=float), 0, None),
            np.clip(forecast["upper"].to_numpy(dtype=float) - e, 0, None),
        ],
        fmt="none",
        color="black",
        capsize=4,
    )
    ax.set_xticks(x, [_plain(q) for q in forecast["quarter"]])
    ax.yaxis.set_major_formatter(money_formatter(currency, lang=lang))
    ax.legend(loc="upper right")
    ax.grid(axis="x", visible=False)
    if title:
        ax.set_title(_plain(title))
    return ax


# --------------------------------------------------------------------------- KPI scorecard

STATUS_COLOURS: dict[str, str] = {
    "on_track": "#d9f0d3",
    "at_risk": "#fee6b3",
    "off_track": "#f6c6c2",
    "no_data": "#eeeeee",
    "insufficient": "#eeeeee",
    "no_target": "#eeeeee",
    "no_plan": "#eeeeee",
}
"""Background colours of target statuses in tables (green / amber / red / grey)."""

TREND_COLOURS: dict[str, str] = {
    "improving": "#d9f0d3",
    "worsening": "#f6c6c2",
    "flat": "#f4f4f4",
    "insufficient_data": "#f4f4f4",
}
"""Background colours of KPI trends in tables."""


def style_categories(
    styler: pd.io.formats.style.Styler,
    column: str,
    *,
    lang: str = "en",
    prefix: str = "kpi.status.",
    colours: Mapping[str, str] | None = None,
) -> pd.io.formats.style.Styler:
    """Show a column of category codes as translated, coloured cells.

    Each cell keeps its code (e.g. ``on_track``) in the data; it is displayed as
    ``label_for(code, lang, prefix=prefix)`` (HTML-escaped) on the background
    colour ``colours[code]`` (no colour for codes not in the mapping).

    Parameters
    ----------
    styler : pandas Styler
        E.g. from :func:`styled_table`.
    column : str
        Column label as shown in the styler.
    lang : str, default "en"
    prefix : str, default "kpi.status."
        Translation key prefix of the codes.
    colours : mapping, optional
        Code -> CSS colour; default :data:`STATUS_COLOURS`.

    Returns
    -------
    pandas Styler
        The same styler, for chaining.

    Raises
    ------
    KeyError
        When ``column`` is not a column of the styled frame.
    """
    if column not in styler.data.columns:
        raise KeyError(
            f"style_categories: column {column!r} not in the table; "
            f"columns: {list(styler.data.columns)}"
        )
    colours = STATUS_COLOURS if colours is None else colours

    def show(code: object) -> str:
        return NA_TEXT if _is_missing(code) else html.escape(label_for(code, lang, prefix=prefix))

    def paint(code: object) -> str:
        colour = None if _is_missing(code) else colours.get(str(code))
        return f"background-color: {colour}" if colour else ""

    return styler.format(show, subset=[column]).map(paint, subset=[column])


def _axis_formatter(kind: str, currency: str, lang: str) -> FuncFormatter | None:
    if kind in ("money", "money_compact"):
        return money_formatter(currency, lang=lang)
    if kind == "pct":
        return pct_formatter(0)
    return None


def small_multiples(
    df: pd.DataFrame,
    *,
    panel: str,
    x: str,
    y: str,
    reference: str | None = None,
    band: str | None = None,
    titles: Mapping[Any, str] | None = None,
    formats: Mapping[Any, str] | None = None,
    ncols: int = 3,
    currency: str = "JPY",
    lang: str = "en",
    legend: Mapping[str, str] | None = None,
    width: float = FULL_WIDTH_IN,
    panel_height: float = 2.3,
    max_xticks: int = 6,
) -> Figure:
    """One small line chart per panel (e.g. per KPI), each with its own y scale.

    Parameters
    ----------
    df : DataFrame
        Long table: columns ``panel``, ``x`` (ordered categories such as period
        labels, drawn in the order they first appear), ``y`` and optionally
        ``reference`` (a target line, dashed) and ``band`` (a second reference,
        dotted, e.g. the at-risk boundary).
    panel, x, y : str
        Column names.
    reference, band : str, optional
    titles : mapping, optional
        Panel value -> title (default: the panel value).
    formats : mapping, optional
        Panel value -> y-axis format: ``"money"`` (compact), ``"pct"``, anything else
        plain numbers.
    ncols : int, default 3
    currency, lang : str
        For money axes.
    legend : mapping, optional
        Legend texts for the keys ``"value"``, ``"target"``, ``"at_risk"``; shown once
        under the figure when given.
    width, panel_height : float
        Inches.
    max_xticks : int, default 6
        At most this many x labels per panel (the last one always shown).

    Returns
    -------
    Figure
        One axes per panel (unused grid cells are hidden), in the order panels first
        appear in ``df``.

    Raises
    ------
    KeyError
        For a missing column.
    ValueError
        For an empty frame or ``ncols < 1``.
    """
    needed = [c for c in (panel, x, y, reference, band) if c is not None]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise KeyError(f"small_multiples: column(s) {missing} not in the frame")
    if df.empty:
        raise ValueError("small_multiples: no rows to draw")
    if ncols < 1:
        raise ValueError(f"small_multiples: ncols must be >= 1, got {ncols}")
    panels = list(dict.fromkeys(df[panel]))
    order = list(dict.fromkeys(df[x]))
    pos = {v: i for i, v in enumerate(order)}
    ncols = min(ncols, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(width, panel_height * nrows + (0.4 if legend else 0.0)),
        squeeze=False,
        layout="constrained",
    )
    step = max(1, math.ceil(len(order) / max_xticks))
    ticks = sorted({*range(len(order) - 1, -1, -step)})
    handles: dict[str, Any] = {}
    for ax, key in zip(axes.flat, panels, strict=False):
        d = df[df[panel] == key]
        xs = d[x].map(pos).to_numpy(dtype=float)
        (line,) = ax.plot(xs, d[y].to_numpy(dtype=float), color="C0", lw=2, marker="o", ms=3)
        handles.setdefault("value", line)
        if reference is not None and d[reference].notna().any():
            (ref,) = ax.plot(xs, d[reference].to_numpy(dtype=float), color="0.25", ls="--", lw=1.2)
            handles.setdefault("target", ref)
        if band is not None and d[band].notna().any():
            (bd,) = ax.plot(xs, d[band].to_numpy(dtype=float), color="C3", ls=":", lw=1.2)
            handles.setdefault("at_risk", bd)
        ax.set_title(_plain((titles or {}).get(key, key)), fontsize=10)
        ax.set_xticks(ticks, [_plain(order[i]) for i in ticks], fontsize=7, rotation=30)
        ax.tick_params(axis="y", labelsize=8)
        fmt = _axis_formatter((formats or {}).get(key, ""), currency, lang)
        if fmt is not None:
            ax.yaxis.set_major_formatter(fmt)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    if legend:
        keys = [k for k in ("value", "target", "at_risk") if k in handles and k in legend]
        fig.legend(
            [handles[k] for k in keys],
            [legend[k] for k in keys],
            loc="outside lower center",
            ncols=len(keys),
            frameon=False,
        )
    return fig


def hist_by_group(
    df: pd.DataFrame,
    value: str,
    group: str,
    *,
    bins: int | Sequence[float] = 20,
    value_range: tuple[float, float] | None = None,
    order: Sequence[Any] | None = None,
    group_prefix: str = "tier.",
    lang: str = "en",
    xlabel: str | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Stacked histogram of a value, one colour per group (e.g. health score by tier).

    Parameters
    ----------
    df : DataFrame
        Columns ``value`` (numeric; missing values are left out) and ``group``.
    value, group : str
    bins : int or sequence, default 20
    value_range : (float, float), optional
        Range of the bins (e.g. ``(0, 100)`` for a score).
    order : sequence, optional
        Groups to draw, bottom first (default: sorted); others are left out.
    group_prefix : str, default "tier."
        Translation prefix of the group names in the legend (see :func:`label_for`).
    lang : str, default "en"
    xlabel : str, optional
        Default: ``label_for(value, prefix="axis.")``.
    ax : Axes, optional
    title : str, optional

    Returns
    -------
    Axes
        One bar container per drawn group; the y axis counts accounts.

    Raises
    ------
    KeyError
        For a missing column.
    """
    missing = [c for c in (value, group) if c not in df.columns]
    if missing:
        raise KeyError(f"hist_by_group: column(s) {missing} not in the frame")
    data = df[df[value].notna()]
    groups = list(order) if order is not None else sorted(data[group].dropna().unique())
    arrays = [data.loc[data[group] == g, value].to_numpy(dtype=float) for g in groups]
    ax = _new_ax(ax)
    ax.hist(
        arrays,
        bins=bins,
        range=value_range,
        stacked=True,
        color=[f"C{i % 10}" for i in range(len(groups))],
        label=[_plain(label_for(g, lang, prefix=group_prefix)) for g in groups],
        edgecolor="white",
        linewidth=0.5,
    )
    ax.set_xlabel(_plain(xlabel) if xlabel is not None else label_for(value, lang, prefix="axis."))
    ax.set_ylabel(t("axis.accounts", lang))
    ax.legend(loc="upper left")
    if title:
        ax.set_title(_plain(title))
    return ax


# --------------------------------------------------------------------------- valuation / segmentation charts


def family_colors(
    groups: Mapping[str, Sequence[str]],
    *,
    cmaps: Sequence[str] = ("Blues", "Greens", "Oranges", "Purples", "Greys"),
    prefix: str = "",
) -> dict[str, tuple[float, float, float, float]]:
    """One colour per criterion, shades of one hue per family of criteria.

    Parameters
    ----------
    groups : mapping
        Family -> criteria (e.g. :data:`kam_analysis.valuation.CRITERION_GROUPS`).
    cmaps : sequence of str
        A matplotlib colour map per family, in order (cycled).
    prefix : str, default ""
        Prepended to every criterion name in the keys (e.g. ``"contrib_"``).

    Returns
    -------
    dict
        ``prefix + criterion`` -> RGBA; the first criterion of a family gets
        the darkest shade.
    """
    out: dict[str, tuple[float, float, float, float]] = {}
    for i, criteria in enumerate(groups.values()):
        cmap = mpl.colormaps[cmaps[i % len(cmaps)]]
        shades = np.linspace(0.85, 0.35, max(len(criteria), 2))
        for name, shade in zip(criteria, shades, strict=False):
            out[f"{prefix}{name}"] = tuple(float(c) for c in cmap(shade))
    return out


def rank_intervals(
    df: pd.DataFrame,
    *,
    label: str,
    rank: str = "base_rank",
    low: str = "rank_p10",
    high: str = "rank_p90",
    hue: str | None = None,
    hue_prefix: str = "tier.",
    top_n: int | None = None,
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Rank of each account with its interval (e.g. P10-P90 over weight draws), best at the top.

    Parameters
    ----------
    df : DataFrame
        Columns ``label``, ``rank``, ``low``, ``high`` (1 = best) and
        optionally ``hue`` (e.g. the base tier).
    label, rank, low, high : str
        Column names.
    hue : str, optional
        Categorical column colouring the points.
    hue_prefix : str, default "tier."
        Translation prefix of the hue categories.
    top_n : int, optional
        Keep the ``top_n`` best-ranked rows.
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        One error bar per row; the x axis runs from rank 1 (left).

    Raises
    ------
    ValueError
        For an empty frame or a missing column.
    """
    _require_cols(df, "rank_intervals", [label, rank, low, high] + ([hue] if hue else []))
    data = df.sort_values(rank, kind="stable")
    if top_n is not None:
        data = data.head(int(top_n))
    ax = _new_ax(ax, height=max(2.5, 0.32 * len(data) + 1.2))
    _interval_rows(ax, data, rank, low, high, label, hue, lang, hue_prefix)
    ax.set_xlim(left=0.5)
    ax.set_xlabel(t("valuation.chart.rank_axis", lang))
    ax.grid(axis="y", visible=False)
    if hue:
        ax.legend(loc="lower right")
    if title:
        ax.set_title(_plain(title))
    return ax


def wallet_bars(
    df: pd.DataFrame,
    *,
    label: str,
    revenue: str = "revenue_12m",
    wallet: str = "wallet_estimate",
    currency: str = "JPY",
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Our revenue inside the customer's wallet: one bar per account, in the given order.

    Parameters
    ----------
    df : DataFrame
        Columns ``label``, ``revenue`` and ``wallet`` (the customer's spend in
        our category; missing: only the revenue bar is drawn). The first row
        is drawn at the top.
    label, revenue, wallet : str
        Column names.
    currency : str, default "JPY"
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        Two bar containers (wallet behind, revenue in front); each bar is
        annotated with the share of wallet.

    Raises
    ------
    ValueError
        For an empty frame or a missing column.
    """
    _require_cols(df, "wallet_bars", [label, revenue, wallet])
    ax = _new_ax(ax, height=max(2.5, 0.32 * len(df) + 1.2))
    y = np.arange(len(df))[::-1]
    rev = np.nan_to_num(df[revenue].to_numpy(dtype=float))
    wal = df[wallet].to_numpy(dtype=float)
    ax.barh(y, np.nan_to_num(wal), color="0.85", label=t("valuation.chart.wallet", lang))
    ax.barh(y, rev, color="C0", height=0.5, label=t("valuation.chart.our_revenue", lang))
    with np.errstate(all="ignore"):
        share = np.where(wal > 0, rev / wal, np.nan)
    for yi, end, s in zip(y, np.fmax(np.nan_to_num(wal), rev), share, strict=True):
        if np.isfinite(s):
            ax.annotate(
                fmt_pct(s, 0),
                xy=(end, yi),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=9,
            )
    ax.set_yticks(y, [_plain(s) for s in df[label]])
    ax.xaxis.set_major_formatter(money_formatter(currency, lang=lang))
    ax.set_xlabel(t("axis.revenue", lang))
    ax.grid(axis="y", visible=False)
    ax.legend(loc="lower right")
    if title:
        ax.set_title(_plain(title))
    return ax


_CORNERS = {
    "upper right": (0.98, 0.98, "right", "top"),
    "upper left": (0.02, 0.98, "left", "top"),
    "lower right": (0.98, 0.02, "right", "bottom"),
    "lower left": (0.02, 0.02, "left", "bottom"),
}


def quadrant_scatter(
    df: pd.DataFrame,
    x: str,
    y: str,
    label: str,
    *,
    x_split: float,
    y_split: float,
    quadrant: str = "quadrant",
    corners: Mapping[str, str] | None = None,
    quadrant_prefix: str = "segmentation.quadrant.",
    top_n: int = 10,
    rank_by: str | None = None,
    lang: str = "en",
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """A 2 x 2 matrix: points coloured by quadrant, split lines, quadrant names, top-N labels.

    Parameters
    ----------
    df : DataFrame
        Columns ``x``, ``y`` (numeric), ``label`` and ``quadrant``.
    x, y, label : str
        Column names (axis titles via :func:`label_for` with prefix ``"axis."``).
    x_split, y_split : float
        Where the quadrants split.
    quadrant : str, default "quadrant"
        Column with the quadrant of each point.
    corners : mapping, optional
        Corner (``"upper right"``, ``"upper left"``, ``"lower right"``,
        ``"lower left"``) -> quadrant name; default the key-account portfolio
        matrix (strategic, star, status, streamline with our position on x).
    quadrant_prefix : str, default "segmentation.quadrant."
        Translation prefix of the quadrant names.
    top_n : int, default 10
        Points labelled (largest ``rank_by``, default ``y``).
    rank_by : str, optional
    lang : str, default "en"
    ax : Axes, optional
    title : str, optional

    Returns
    -------
    Axes
        ``ax.texts``: the four quadrant names, then the point labels (top
        ``rank_by`` first), stacked in a column beside the points so that they
        do not overlap, each joined to its (ringed) point.

    Raises
    ------
    ValueError
        For an empty frame or a missing column.
    ValueError
        For an unknown corner.
    """
    corners = dict(
        corners
        or {
            "upper right": "strategic",
            "upper left": "star",
            "lower right": "status",
            "lower left": "streamline",
        }
    )
    bad = sorted(set(corners) - set(_CORNERS))
    if bad:
        raise ValueError(f"quadrant_scatter: unknown corner(s) {bad}; use {list(_CORNERS)}")
    _require_cols(df, "quadrant_scatter", [x, y, label, quadrant])
    ax = _new_ax(ax, height=FULL_WIDTH_IN * 0.7)
    for corner, name in corners.items():
        cx, cy, ha, va = _CORNERS[corner]
        ax.text(
            cx,
            cy,
            _plain(label_for(name, lang, prefix=quadrant_prefix)),
            transform=ax.transAxes,
            ha=ha,
            va=va,
            fontsize=12,
            color="0.35",
        )
    order = list(corners.values()) + sorted(set(df[quadrant].astype(str)) - set(corners.values()))
    data = df.assign(**{quadrant: pd.Categorical(df[quadrant].astype(str), categories=order)})
    scatter_labeled(
        data, x, y, label, top_n=0, hue=quadrant, hue_prefix=quadrant_prefix, lang=lang, ax=ax
    )
    legend = ax.get_legend()
    if legend is not None:
        legend.remove()  # the corners name the quadrants
    ax.axvline(x_split, color="0.4", ls="--", lw=1)
    ax.axhline(y_split, color="0.4", ls="--", lw=1)
    if top_n > 0 and len(df):
        rank = df[rank_by or y].to_numpy(dtype=float)
        order = np.argsort(np.where(np.isnan(rank), np.inf, -rank), kind="stable")
        order = order[~np.isnan(rank[order])][:top_n]
        _stacked_labels(
            ax,
            df[x].to_numpy(dtype=float)[order],
            df[y].to_numpy(dtype=float)[order],
            [str(v) for v in df[label].to_numpy()[order]],
        )
    if title:
        ax.set_title(_plain(title))
    return ax


def _stacked_labels(
    ax: Axes, xs: np.ndarray, ys: np.ndarray, texts: Sequence[str], gap: float = 0.045
) -> None:
    """Name points in one column beside them, stacked so that no two labels overlap.

    The points are ringed; each label sits at its point's height or lower (at least
    ``gap`` of the axis height below the previous one) and is joined to it by a thin line.
    The column stands on the side of the points with more room.
    """
    if len(xs) == 0:
        return
    ax.scatter(xs, ys, s=45, facecolors="none", edgecolors="black", lw=0.9, zorder=3)
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    dx, dy = 0.05 * (x1 - x0), gap * (y1 - y0)
    left = np.median(xs) > (x0 + x1) / 2
    col_x = xs.min() - dx if left else xs.max() + dx
    order = np.argsort(-ys, kind="stable")
    text_y = min(ys[order[0]], y1 - dy / 2)
    for k, i in enumerate(order):
        if k:
            text_y = min(ys[i], text_y - dy)
        ax.annotate(
            _plain(texts[i]),
            xy=(xs[i], ys[i]),
            xytext=(col_x, text_y),
            textcoords="data",
            ha="right" if left else "left",
            va="center",
            fontsize=9,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
            arrowprops={"arrowstyle": "-", "color": "0.4", "lw": 0.6, "shrinkA": 0, "shrinkB": 3},
            zorder=4,
        )


def pareto_curves(
    table: pd.DataFrame,
    *,
    mark: float | None = 0.2,
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Cumulative revenue (and gross profit) against the share of accounts, largest first.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`kam_analysis.segmentation.pareto_table`:
        ``cum_account_share``, ``cum_share`` and optionally ``cum_gp_share``
        (gross profit in the same account order).
    mark : float or None, default 0.2
        Mark the shares held by the top ``mark`` fraction of accounts.
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        Lines: revenue, gross profit (when available), equal shares.

    Raises
    ------
    ValueError
        For an empty frame or a missing column.
    ValueError
        For ``mark`` outside (0, 1).
    """
    _require_cols(table, "pareto_curves", ["cum_account_share", "cum_share"])
    if mark is not None and not 0 < mark < 1:
        raise ValueError(f"pareto_curves: mark must be between 0 and 1, got {mark}")
    xs = np.concatenate([[0.0], table["cum_account_share"].to_numpy(dtype=float)])
    ax = _new_ax(ax)
    curves = [("cum_share", "axis.revenue", "C0")]
    if "cum_gp_share" in table.columns:
        curves.append(("cum_gp_share", "axis.gross_profit", "C2"))
    top = 1.02
    for col, key, color in curves:
        ys = np.concatenate([[0.0], table[col].to_numpy(dtype=float)])
        top = max(top, float(np.nanmax(ys)) + 0.02)
        first = col == "cum_share"
        ax.plot(xs, ys, color=color, lw=2, ls="-" if first else "--", label=t(key, lang))
        if mark is not None:
            k = math.ceil(mark * (len(xs) - 1) - 1e-9)
            ax.plot([xs[k]], [ys[k]], "o", color=color)
            ax.annotate(
                fmt_pct(ys[k], 0),
                xy=(xs[k], ys[k]),
                xytext=(-8, 6) if first else (8, -14),
                textcoords="offset points",
                ha="right" if first else "left",
                color=color,
            )
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1, label=t("pareto.equality", lang))
    if mark is not None:
        ax.axvline(mark, color="C3", ls="--", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, top)
    ax.xaxis.set_major_formatter(pct_formatter())
    ax.yaxis.set_major_formatter(pct_formatter())
    ax.set_xlabel(t("axis.share_of_accounts", lang))
    ax.set_ylabel(t("segmentation.chart.cumulative_share", lang))
    ax.legend(loc="lower right")
    if title:
        ax.set_title(_plain(title))
    return ax


__all__ += ["family_colors", "pareto_curves", "quadrant_scatter", "rank_intervals", "wallet_bars"]


# --------------------------------------------------------------------------- account plan

CARD_STRIPE_COLOURS: dict[str, str] = {
    "on_track": "#1a9641",
    "at_risk": "#fdae61",
    "off_track": "#d7191c",
}
"""Stripe colour of a :func:`kpi_cards` card by status; any other status is grey."""

_NEUTRAL_STRIPE = "#9e9e9e"


def kpi_cards(
    cards: Sequence[Mapping[str, Any]],
    *,
    ncols: int = 4,
    ax: Axes | None = None,
    card_height: float = 1.05,
    title: str | None = None,
) -> Axes:
    """Headline numbers as a grid of cards: label, large value, small note.

    Parameters
    ----------
    cards : sequence of mappings
        One mapping per card with ``label`` and ``value`` (text, already
        formatted, e.g. with :func:`fmt_money`), optional ``note`` (a second
        line) and ``status`` (``on_track``, ``at_risk``, ``off_track``: the
        colour of the stripe on the left of the card, see
        :data:`CARD_STRIPE_COLOURS`; anything else is grey).
    ncols : int, default 4
        Cards per row; rows follow in reading order.
    ax : Axes, optional
        Drawn into one Axes (axis switched off); a new full-width figure of
        ``rows x card_height`` inches when omitted.
    card_height : float, default 1.05
        Inches per row of a new figure.
    title : str, optional

    Returns
    -------
    Axes
        ``ax.patches`` holds two rectangles per card (card, stripe);
        ``ax.texts`` holds the label, value and note (when given) of each card,
        in card order. Data text is drawn as typed (``$`` escaped).

    Raises
    ------
    ValueError
        For no cards, ``ncols < 1`` or a card without ``label`` or ``value``.
    """
    from matplotlib.patches import Rectangle

    cards = list(cards)
    if not cards:
        raise ValueError("kpi_cards: no cards given")
    if int(ncols) < 1:
        raise ValueError(f"kpi_cards: ncols must be >= 1, got {ncols}")
    for i, card in enumerate(cards):
        missing = [k for k in ("label", "value") if k not in card]
        if missing:
            raise ValueError(f"kpi_cards: card {i} lacks {missing}; keys: {sorted(card)}")
    ncols = min(int(ncols), len(cards))
    nrows = math.ceil(len(cards) / ncols)
    ax = _new_ax(ax, height=nrows * card_height + (0.3 if title else 0.0))
    ax.set_axis_off()
    ax.set_xlim(0, ncols)
    ax.set_ylim(0, nrows)
    gap = 0.06
    for i, card in enumerate(cards):
        row, col = divmod(i, ncols)
        x0, y0 = col + gap / 2, nrows - row - 1 + gap / 2
        w, h = 1 - gap, 1 - gap
        ax.add_patch(Rectangle((x0, y0), w, h, facecolor="#f5f5f5", edgecolor="#dddddd", lw=0.8))
        colour = CARD_STRIPE_COLOURS.get(str(card.get("status")), _NEUTRAL_STRIPE)
        ax.add_patch(Rectangle((x0, y0), 0.025, h, facecolor=colour, edgecolor="none"))
        left = x0 + 0.07
        ax.text(left, y0 + h * 0.80, _plain(card["label"]), fontsize=9.5, color="0.3", va="center")
        ax.text(left, y0 + h * 0.48, _plain(card["value"]), fontsize=15, color="0.1", va="center")
        note = card.get("note")
        if note is not None and str(note) != "":
            ax.text(left, y0 + h * 0.17, _plain(note), fontsize=8.5, color="0.35", va="center")
    if title:
        ax.set_title(_plain(title))
    return ax


def month_axis(axis, lang: str = "en") -> None:
    """Date ticks for a monthly axis: month names, the year at each January.

    English uses matplotlib's concise labels (``Jul``, ``2025``); Japanese
    uses ``7月`` and ``2025年`` (strftime month names are English only).

    Parameters
    ----------
    axis : matplotlib.axis.Axis
        ``ax.xaxis`` of a plot whose x values are dates.
    lang : str, default "en"
    """
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
    axis.set_major_locator(locator)
    if lang != "ja":
        axis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        return

    def label(x: float, _pos: int | None = None) -> str:
        day = mdates.num2date(x)
        return f"{day.year}年" if day.month == 1 else f"{day.month}月"

    axis.set_major_formatter(FuncFormatter(label))


def revenue_history(
    monthly: pd.DataFrame,
    *,
    month: str = "month",
    revenue: str = "revenue",
    gross_profit: str | None = "gross_profit",
    ax: Axes | None = None,
    lang: str = "en",
    currency: str = "JPY",
    title: str | None = None,
) -> Axes:
    """Monthly revenue as bars with gross profit as a line.

    Parameters
    ----------
    monthly : DataFrame
        One row per month: ``month`` (dates), ``revenue`` and optionally
        ``gross_profit`` (numbers; NaN months are drawn as gaps).
    month, revenue, gross_profit : str
        Column names; ``gross_profit=None`` draws revenue only.
    ax : Axes, optional
    lang, currency : str
        Legend language; money axis format.
    title : str, optional

    Returns
    -------
    Axes
        ``ax.patches`` holds one bar per month; ``ax.lines`` the gross-profit line.

    Raises
    ------
    KeyError
        For a missing column.
    ValueError
        For an empty frame.
    """
    cols = [c for c in (month, revenue, gross_profit) if c is not None]
    missing = [c for c in cols if c not in monthly.columns]
    if missing:
        raise KeyError(f"revenue_history: column(s) {missing} not in the frame")
    if monthly.empty:
        raise ValueError("revenue_history: no months to draw")
    ax = _new_ax(ax)
    x = pd.to_datetime(monthly[month])
    ax.bar(
        x,
        monthly[revenue].to_numpy(dtype=float),
        width=20,
        color="C0",
        alpha=0.75,
        label=t("axis.revenue", lang),
    )
    if gross_profit is not None:
        ax.plot(
            x,
            monthly[gross_profit].to_numpy(dtype=float),
            color="C1",
            lw=2,
            marker="o",
            ms=3,
            label=t("axis.gross_profit", lang),
        )
    month_axis(ax.xaxis, lang)
    ax.yaxis.set_major_formatter(money_formatter(currency, lang=lang))
    ax.legend(loc="upper left")
    ax.grid(axis="x", visible=False)
    if title:
        ax.set_title(_plain(title))
    return ax


def product_line_bars(
    df: pd.DataFrame,
    *,
    label: str = "product_line",
    bought: str = "revenue_12m",
    whitespace: str = "whitespace_value",
    ax: Axes | None = None,
    lang: str = "en",
    currency: str = "JPY",
    title: str | None = None,
) -> Axes:
    """Per product line: what the account buys (solid) and its whitespace (hatched).

    Parameters
    ----------
    df : DataFrame
        One row per product line with ``label`` (text), ``bought`` and
        ``whitespace`` (amounts >= 0, e.g. from
        :func:`kam_analysis.actions.product_line_view`); drawn top-down in row order.
    label, bought, whitespace : str
        Column names.
    ax : Axes, optional
    lang, currency : str
    title : str, optional

    Returns
    -------
    Axes
        Two bar containers in ``ax.containers`` (bought, whitespace), one bar
        per row each.

    Raises
    ------
    KeyError
        For a missing column.
    ValueError
        For an empty frame or negative amounts.
    """
    missing = [c for c in (label, bought, whitespace) if c not in df.columns]
    if missing:
        raise KeyError(f"product_line_bars: column(s) {missing} not in the frame")
    if df.empty:
        raise ValueError("product_line_bars: no product lines to draw")
    b = df[bought].to_numpy(dtype=float)
    w = df[whitespace].to_numpy(dtype=float)
    if (np.nan_to_num(b) < 0).any() or (np.nan_to_num(w) < 0).any():
        raise ValueError("product_line_bars: amounts must be >= 0")
    ax = _new_ax(ax, height=max(2.5, 0.38 * len(df) + 1.2))
    y = np.arange(len(df))[::-1]
    ax.barh(y, np.nan_to_num(b), color="C0", label=t("plan.legend.bought", lang))
    ax.barh(
        y,
        np.nan_to_num(w),
        left=np.nan_to_num(b),
        color="white",
        edgecolor="C2",
        hatch="///",
        lw=1.0,
        label=t("plan.legend.whitespace", lang),
    )
    from matplotlib.ticker import MaxNLocator

    ax.set_yticks(y, [_plain(v) for v in df[label]])
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.xaxis.set_major_formatter(money_formatter(currency, lang=lang))
    ax.legend(loc="lower right")
    ax.grid(axis="y", visible=False)
    if title:
        ax.set_title(_plain(title))
    return ax


# --------------------------------------------------------------------------- scenario-planning charts


def scenario_fans(
    frame: pd.DataFrame,
    *,
    x: str = "date",
    history: pd.Series | None = None,
    target: float | None = None,
    titles: Mapping[Any, str] | None = None,
    ncols: int = 3,
    lang: str = "en",
    currency: str = "JPY",
    width: float = FULL_WIDTH_IN,
    panel_height: float = 3.0,
) -> Figure:
    """One fan chart per scenario, side by side on a shared y axis.

    Parameters
    ----------
    frame : DataFrame
        Long table with ``scenario``, ``x`` and ``p10``, ``p50``, ``p90`` (e.g.
        :func:`kam_analysis.scenarios.scenario_monthly`); panels in the order
        scenarios first appear.
    x : str, default "date"
        Time column (dates or month numbers).
    history : Series, optional
        Observed values (index = time) drawn in black in every panel.
    target : float, optional
        A monthly reference level (e.g. today's run-rate), dashed.
    titles : mapping, optional
        Scenario -> panel title (default: translated ``scenarios.scenario.<name>``
        or a readable name).
    ncols : int, default 3
    lang, currency : str
    width, panel_height : float
        Inches.

    Returns
    -------
    Figure
        One visible axes per scenario, each with one band (P10-P90) and the median
        line; the legend is drawn once, under the panels.

    Raises
    ------
    ValueError
        For a missing column, an empty frame or ``ncols < 1``.
    """
    _require_cols(frame, "scenario_fans", ["scenario", x, "p10", "p50", "p90"])
    if ncols < 1:
        raise ValueError(f"scenario_fans: ncols must be >= 1, got {ncols}")
    names = list(dict.fromkeys(frame["scenario"]))
    ncols = min(ncols, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(width, panel_height * nrows + 0.5),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    handles: dict[str, Any] = {}
    for i, (ax, name) in enumerate(zip(axes.flat, names, strict=False)):
        part = frame[frame["scenario"] == name].set_index(x)
        fan_chart(
            part[["p10", "p50", "p90"]].set_axis([0.1, 0.5, 0.9], axis=1),
            actual=history,
            ax=ax,
            lang=lang,
            currency=currency,
            color=f"C{i % 10}",
        )
        if target is not None:
            ax.axhline(target, color="0.3", ls="--", lw=1, label=t("scenarios.legend.target", lang))
        for handle, text in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(text, handle)
        ax.get_legend().remove()
        title = (titles or {}).get(name) or label_for(name, lang, prefix="scenarios.scenario.")
        ax.set_title(_plain(title), fontsize=11)
        ax.tick_params(axis="x", labelsize=8, rotation=30)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="outside lower center",
        ncols=len(handles),
        frameon=False,
    )
    return fig


def tornado_chart(
    table: pd.DataFrame,
    *,
    label_prefix: str = "scenarios.input.",
    kind: str = "money",
    currency: str = "JPY",
    top_n: int | None = None,
    ax: Axes | None = None,
    lang: str = "en",
    xlabel: str | None = None,
    title: str | None = None,
) -> Axes:
    """Tornado chart: the output at each input's low and high value around the base.

    Parameters
    ----------
    table : DataFrame
        :func:`kam_analysis.pricing.tornado` output: ``input``, ``low_value``,
        ``high_value``, ``output_base``, ``output_low``, ``output_high``,
        ``swing``; drawn largest swing at the top.
    label_prefix : str, default "scenarios.input."
        Translation prefix of the input names (see :func:`label_for`).
    kind : {"money", "pct", "number"}, default "money"
        Format of the output axis.
    currency : str, default "JPY"
    top_n : int, optional
        Only the inputs with the largest swings.
    ax : Axes, optional
    lang : str, default "en"
    xlabel, title : str, optional

    Returns
    -------
    Axes
        Two bar containers (input at its low value, at its high value), one bar
        per input each, starting at the base output.

    Raises
    ------
    ValueError
        For a missing column or an empty table.
    """
    cols = ["input", "low_value", "high_value", "output_base", "output_low", "output_high", "swing"]
    _require_cols(table, "tornado_chart", cols)
    data = table.sort_values("swing", ascending=False, kind="stable")
    if top_n is not None:
        data = data.head(int(top_n))
    base = float(data["output_base"].iloc[0])
    ax = _new_ax(ax, height=max(2.5, 0.45 * len(data) + 1.4))
    y = np.arange(len(data))[::-1]
    low = data["output_low"].to_numpy(dtype=float)
    high = data["output_high"].to_numpy(dtype=float)
    ax.barh(y, low - base, left=base, color="C3", alpha=0.8, label=t("scenarios.legend.low", lang))
    ax.barh(
        y, high - base, left=base, color="C0", alpha=0.8, label=t("scenarios.legend.high", lang)
    )
    ax.axvline(base, color="0.2", lw=1)
    ax.set_yticks(y, [_plain(label_for(v, lang, prefix=label_prefix)) for v in data["input"]])
    fmt = _axis_formatter(kind, currency, lang)
    if fmt is not None:
        ax.xaxis.set_major_formatter(fmt)
    if xlabel:
        ax.set_xlabel(_plain(xlabel))
    ax.legend(loc="lower right")
    ax.grid(axis="y", visible=False)
    if title:
        ax.set_title(_plain(title))
    return ax


def concentration_trend_plot(
    trend: pd.DataFrame,
    metrics: Sequence[str] = ("top1_share", "top5_share", "top10_share"),
    *,
    basis: str = "revenue",
    thresholds: Mapping[str, float | None] | None = None,
    kind: str = "pct",
    ax: Axes | None = None,
    lang: str = "en",
    ylabel: str | None = None,
    title: str | None = None,
) -> Axes:
    """Concentration metrics per period, with their over-dependence thresholds dashed.

    Parameters
    ----------
    trend : DataFrame
        :func:`kam_analysis.scenarios.concentration_trend` output (``period``,
        ``basis`` and one column per metric).
    metrics : sequence of str
        Metric columns, one line each (legend: ``scenarios.metric.<name>``).
    basis : str, default "revenue"
        Rows of this basis only.
    thresholds : mapping, optional
        Metric -> flag level (None: no line), in the metric's units.
    kind : {"pct", "number"}, default "pct"
        Shares as percentages, or plain numbers (HHI).
    ax : Axes, optional
    lang : str, default "en"
    ylabel, title : str, optional

    Returns
    -------
    Axes
        One solid line per metric, then one dashed line per threshold drawn.

    Raises
    ------
    ValueError
        For a missing column, an empty frame or no row with the requested basis.
    """
    _require_cols(trend, "concentration_trend_plot", ["period", "basis", *metrics])
    data = trend[trend["basis"] == basis]
    if data.empty:
        raise ValueError(f"concentration_trend_plot: no rows with basis {basis!r}")
    ax = _new_ax(ax)
    x = np.arange(len(data))
    for i, metric in enumerate(metrics):
        ax.plot(
            x,
            data[metric].to_numpy(dtype=float),
            color=f"C{i % 10}",
            lw=2,
            marker="o",
            ms=3,
            label=label_for(metric, lang, prefix="scenarios.metric."),
        )
    for i, metric in enumerate(metrics):
        level = (thresholds or {}).get(metric)
        if level is not None:
            ax.axhline(
                float(level),
                color=f"C{i % 10}",
                ls="--",
                lw=1,
                label=t(
                    "scenarios.legend.threshold",
                    lang,
                    metric=label_for(metric, lang, prefix="scenarios.metric."),
                ),
            )
    step = max(1, math.ceil(len(data) / 8))
    ticks = sorted({*range(len(data) - 1, -1, -step)})
    periods = data["period"].astype(str).to_numpy()
    ax.set_xticks(ticks, [_plain(periods[i]) for i in ticks])
    if kind == "pct":
        ax.yaxis.set_major_formatter(pct_formatter(0))
        ax.set_ylim(bottom=0)
    if ylabel:
        ax.set_ylabel(_plain(ylabel))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(_plain(title))
    return ax


def scheme_boxplot(
    draws: pd.DataFrame,
    metric: str,
    *,
    group: str = "scheme",
    order: Sequence[str] | None = None,
    label_prefix: str = "scenarios.scheme.",
    ax: Axes | None = None,
    lang: str = "en",
    currency: str = "JPY",
    xlabel: str | None = None,
    title: str | None = None,
) -> Axes:
    """Horizontal box plots of one outcome per group: box P25-P75, whiskers P10-P90, median line.

    Parameters
    ----------
    draws : DataFrame
        One row per draw and group (e.g.
        :func:`kam_analysis.pricing.simulate_pricing_schemes`), with ``group``
        and ``metric`` columns.
    metric : str
        Money column to draw.
    group : str, default "scheme"
    order : sequence of str, optional
        Groups from top to bottom (default: order of first appearance).
    label_prefix : str, default "scenarios.scheme."
    ax : Axes, optional
    lang, currency : str
    xlabel, title : str, optional

    Returns
    -------
    Axes
        One box per group; the x axis is money; a thin line marks 0.

    Raises
    ------
    ValueError
        For a missing column, an empty frame or a group without finite values.
    """
    _require_cols(draws, "scheme_boxplot", [group, metric])
    groups = list(order) if order is not None else list(dict.fromkeys(draws[group]))
    values = []
    for g in groups:
        v = draws.loc[draws[group] == g, metric].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            raise ValueError(f"scheme_boxplot: group {g!r} has no finite {metric!r} values")
        values.append(v)
    ax = _new_ax(ax, height=max(2.2, 0.5 * len(groups) + 1.2))
    y = np.arange(len(groups))[::-1] + 1
    ax.boxplot(
        values,
        positions=y,
        orientation="horizontal",
        whis=(10, 90),
        showfliers=False,
        widths=0.55,
        patch_artist=True,
        boxprops={"facecolor": "C0", "alpha": 0.45},
        medianprops={"color": "C3", "lw": 2},
    )
    ax.set_yticks(y, [_plain(label_for(g, lang, prefix=label_prefix)) for g in groups])
    ax.axvline(0, color="0.4", lw=0.8)
    ax.xaxis.set_major_formatter(money_formatter(currency, lang=lang))
    if xlabel:
        ax.set_xlabel(_plain(xlabel))
    ax.grid(axis="y", visible=False)
    if title:
        ax.set_title(_plain(title))
    return ax


def break_even_plot(
    curve: pd.DataFrame,
    *,
    mark: float | None = None,
    ax: Axes | None = None,
    lang: str = "en",
    title: str | None = None,
) -> Axes:
    """Volume increase needed to keep gross profit, against the price cut.

    Parameters
    ----------
    curve : DataFrame
        :func:`kam_analysis.scenarios.break_even_curve` output (``price_cut``,
        ``volume_increase``, fractions; infinite values are left out).
    mark : float, optional
        A price cut (fraction) to highlight with its required volume increase.
    ax : Axes, optional
    lang : str, default "en"
    title : str, optional

    Returns
    -------
    Axes
        The first line is the curve; with ``mark``, a point and its annotation.

    Raises
    ------
    ValueError
        For a missing column, an empty frame or no finite point.
    """
    _require_cols(curve, "break_even_plot", ["price_cut", "volume_increase"])
    cut = curve["price_cut"].to_numpy(dtype=float)
    vol = curve["volume_increase"].to_numpy(dtype=float)
    ok = np.isfinite(cut) & np.isfinite(vol)
    if not ok.any():
        raise ValueError("break_even_plot: no finite points")
    ax = _new_ax(ax)
    ax.plot(cut[ok], vol[ok], color="C0", lw=2)
    if mark is not None and ok.sum() > 1:
        y = float(np.interp(mark, cut[ok], vol[ok]))
        ax.plot([mark], [y], "o", color="C3")
        ax.annotate(
            t("scenarios.break_even_mark", lang, cut=fmt_pct(mark, 1), volume=fmt_pct(y, 1)),
            xy=(mark, y),
            xytext=(10, 10),
            textcoords="offset points",
            color="C3",
        )
    ax.xaxis.set_major_formatter(pct_formatter(0))
    ax.yaxis.set_major_formatter(pct_formatter(0))
    ax.set_xlabel(t("scenarios.axis.price_cut", lang))
    ax.set_ylabel(t("scenarios.axis.volume_increase", lang))
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    if title:
        ax.set_title(_plain(title))
    return ax


def format_by_row(
    df: pd.DataFrame,
    kinds: Mapping[Any, str | Callable[[Any], str]],
    columns: Sequence[str],
    *,
    key: str = "metric",
    default: str = "float",
    currency: str = "JPY",
    lang: str = "en",
) -> pd.DataFrame:
    """Format value columns row by row, for tables whose rows have different units.

    Parameters
    ----------
    df : DataFrame
        Not modified.
    kinds : mapping
        Value of ``key`` -> format kind as in :func:`styled_table` (``"money"``,
        ``"money_compact"``, ``"pct"``, ``"int"``, ``"float"``, ``"text"``, a
        format string or a function).
    columns : sequence of str
        Columns to format.
    key : str, default "metric"
        Column naming each row's quantity.
    default : str, default "float"
        Kind for rows whose key is not in ``kinds``.
    currency, lang : str

    Returns
    -------
    DataFrame
        A copy in which ``columns`` hold text (missing values as :data:`NA_TEXT`).

    Raises
    ------
    ValueError
        For a missing column, an empty frame or an unknown format kind.
    """
    _require_cols(df, "format_by_row", [key, *columns])
    formatters = {k: _column_formatter(v, currency, lang) for k, v in kinds.items()}
    fallback = _column_formatter(default, currency, lang)
    out = df.copy()
    fns = [formatters.get(k, fallback) for k in df[key]]
    for col in columns:
        out[col] = [fn(v) for fn, v in zip(fns, df[col], strict=True)]
    return out

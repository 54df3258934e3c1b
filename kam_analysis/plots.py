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

Text coming from data (account names) is drawn with mathtext disabled (``$`` is
escaped), so a name such as ``"A$1$"`` is shown as typed.
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
    "TranslationKeyError",
    "apply_japanese_font",
    "bar_contributions",
    "fan_chart",
    "figure",
    "fmt_int",
    "fmt_money",
    "fmt_pct",
    "heatmap",
    "label_for",
    "money_formatter",
    "pareto_curve",
    "pct_formatter",
    "scatter_labeled",
    "set_report_style",
    "styled_table",
    "t",
    "translations",
]

JAPANESE_FONT = "IPAexGothic"
"""Font family used for all report text (covers Latin and Japanese)."""

LANGUAGES = ("en", "ja")
"""Languages with a translation table in ``kam_analysis/locale``."""

NA_TEXT = "–"
"""How a missing number is shown in text and tables."""

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

    Call it once at the top of every report notebook. The font is applied after
    ``sns.set_theme`` (which resets the font family), so Japanese text renders with
    IPAexGothic instead of boxes in both languages (account names may be Japanese
    in an English report).

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


def _new_ax(ax: Axes | None, **kw: Any) -> Axes:
    if ax is not None:
        return ax
    _, ax = figure(**kw)
    return ax


def _plain(text: object) -> str:
    """Data text safe for matplotlib: ``$`` would start mathtext."""
    return str(text).replace("$", r"\$")


# --------------------------------------------------------------------------- numbers


def _is_missing(x: object) -> bool:
    if x is None or x is pd.NA or x is pd.NaT:
        return True
    try:
        return bool(np.isnan(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


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
        The amount; missing values give :data:`NA_TEXT`.
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
    if _is_missing(x):
        return NA_TEXT
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


def fmt_pct(x: float | None, digits: int = 1, *, signed: bool = False) -> str:
    """Format a fraction as a percentage: ``0.1234`` → ``"12.3%"``.

    Parameters
    ----------
    x : float or None
        A fraction (1.0 = 100 %); missing gives :data:`NA_TEXT`.
    digits : int, default 1
    signed : bool, default False
        Prefix ``+`` on positive values (for changes).

    Returns
    -------
    str
    """
    if _is_missing(x):
        return NA_TEXT
    return f"{float(x) * 100:{'+' if signed else ''},.{digits}f}%"  # type: ignore[arg-type]


def fmt_int(x: float | None) -> str:
    """Format a count with thousands separators: ``1234.6`` → ``"1,235"``."""
    if _is_missing(x):
        return NA_TEXT
    return f"{round(float(x)):,d}"  # type: ignore[arg-type]


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
        return lambda v: NA_TEXT if _is_missing(v) else f"{float(v):,.2f}"
    if kind == "text":
        return lambda v: NA_TEXT if _is_missing(v) else str(v)
    if "{" in kind:
        return lambda v: NA_TEXT if _is_missing(v) else kind.format(v)
    raise ValueError(
        f"unknown format {kind!r}; use one of {', '.join(_FORMAT_KINDS)}, "
        "a format string such as '{:.3f}' or a function"
    )


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
            color=f"C{i % 10}",
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
        ax.set_title(title)
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
        ax.set_title(title)
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
        ax.set_title(title)
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
        ax.set_title(title)
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
        ax.set_title(title)
    return ax

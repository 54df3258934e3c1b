"""Tables for reports: a pandas ``Styler`` with formatted numbers and escaped cells."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from kam_analysis.core.formatting import (
    NA_TEXT,
    fmt_int,
    fmt_money,
    fmt_num,
    fmt_pct,
    is_missing,
    special_text,
)
from kam_analysis.core.i18n import label_for
from kam_analysis.report.style import _require_cols, clean_break_pieces, display_width

_FORMAT_KINDS = ("money", "money_compact", "pct", "int", "float", "text")

NUMBER_CLASS = "kam-num"
"""CSS class of numeric cells: right-aligned, never wrapped (``¥2,000.2万`` stays on one line)."""

NOWRAP_CLASS = "kam-nowrap"
"""CSS class of short text cells (codes, categories, formatted values) kept on one line."""

SHORT_TEXT_WIDTH = 14
"""Text cells up to this display width (CJK characters count 2) are not wrapped."""

SHORT_HEADER_WIDTH = 8
"""Column headers up to this display width are not wrapped (``スコア``, not ``スコ`` / ``ア``)."""

_NOWRAP = "white-space: nowrap"


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
        return lambda v: special if (special := special_text(v)) is not None else kind.format(v)
    raise ValueError(
        f"unknown format {kind!r}; use one of {', '.join(_FORMAT_KINDS)}, "
        "a format string such as '{:.3f}' or a function"
    )


def _text_cell(value: object) -> str:
    """A text cell: strings as given (``styled_table`` escapes them), other values escaped."""
    if (special := special_text(value)) is not None:
        return special
    return value if isinstance(value, str) else html.escape(str(value))


def _shown(formatter: Callable[[Any], str], value: object) -> str:
    """The text of a cell as displayed (for its width); escaped entities count as one."""
    try:
        text = NA_TEXT if is_missing(value) else formatter(value)
    except (TypeError, ValueError):
        text = str(value)
    return html.unescape(str(text))


def _header_html(label: object) -> str:
    """A column header, escaped, with ``<wbr>`` where a line may break cleanly.

    Shown with ``word-break: keep-all``, a Japanese header such as
    ``シェア・オブ・ウォレット`` wraps after a ``・``, never inside ``ウォレット``.
    """
    return "<wbr>".join(html.escape(piece) for piece in clean_break_pieces(label))


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
    styler = styler.format_index(escape="html", axis=0).format_index(_header_html, axis=1)
    is_numeric = [col in numeric for col in data.columns]
    if numeric:  # a number and its unit stay on one line
        styler = styler.set_properties(
            subset=numeric, **{"text-align": "right", "white-space": "nowrap"}
        )
    text_cols = [c for c in data.columns if c not in numeric]
    if text_cols:
        styler = styler.set_properties(subset=text_cols, **{"text-align": "left"})
    short = [
        [
            not num and display_width(_shown(formatters[col], v)) <= SHORT_TEXT_WIDTH
            for col, num, v in zip(data.columns, is_numeric, row, strict=True)
        ]
        for row in data.itertuples(index=False, name=None)
    ]
    if any(map(any, short)):
        styler = styler.apply(
            lambda _: pd.DataFrame(
                [[_NOWRAP if cell else "" for cell in row] for row in short],
                index=data.index,
                columns=data.columns,
            ),
            axis=None,
        )
    classes = [
        [
            NUMBER_CLASS if num else NOWRAP_CLASS if cell else ""
            for num, cell in zip(is_numeric, row, strict=True)
        ]
        for row in short
    ]
    styler = styler.set_td_classes(pd.DataFrame(classes, index=data.index, columns=data.columns))
    # headers break only between words (<wbr>, see _header_html), short ones not at all
    headers = [{"selector": "th.col_heading, caption", "props": [("word-break", "keep-all")]}] + [
        {"selector": f"th.col_heading.col{j}", "props": [("white-space", "nowrap")]}
        for j, col in enumerate(data.columns)
        if display_width(str(col)) <= SHORT_HEADER_WIDTH
    ]
    styler = styler.set_table_styles(headers, overwrite=False)
    if hide_index:
        styler = styler.hide(axis="index")
    if caption is not None:  # wraps between words, like the headers
        styler = styler.set_caption(_header_html(caption))
    return styler


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
        return NA_TEXT if is_missing(code) else html.escape(label_for(code, lang, prefix=prefix))

    def paint(code: object) -> str:
        colour = None if is_missing(code) else colours.get(str(code))
        props = [f"background-color: {colour}"] if colour else []
        if display_width(html.unescape(show(code))) <= SHORT_TEXT_WIDTH:
            props.append(_NOWRAP)  # "要注意", not "要注" / "意"
        return "; ".join(props)

    return styler.format(show, subset=[column]).map(paint, subset=[column])

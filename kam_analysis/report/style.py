"""Report style: the matplotlib/seaborn theme, the Japanese font, figure sizes, axis formatters.

Text from data is drawn with mathtext disabled (:func:`chart_text`).
"""

from __future__ import annotations

import logging
import numbers
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from kam_analysis.core.formatting import fmt_money, fmt_pct
from kam_analysis.core.i18n import label_for, translations

JAPANESE_FONT = "IPAexGothic"
"""Font family used for all report text (covers Latin and Japanese)."""

FULL_WIDTH_IN = 9.0
"""Width of a full-width report figure in inches (≈ 900 px at 100 dpi)."""


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


_WHOLE_COMPACT = re.compile(r"(\d)\.0(?=\D*$)")


def money_formatter(
    currency: str = "JPY", *, compact: bool = True, lang: str = "en"
) -> FuncFormatter:
    """An axis tick formatter for amounts (see :func:`fmt_money`).

    Compact ticks drop a zero decimal (``¥2億``, ``¥3,000万``, ``$1M``; ``¥2.5億``
    stays): round tick values read shorter and crowd the axis less.
    """

    def tick(v: float, _pos: int | None = None) -> str:
        text = fmt_money(v, currency, compact=compact, lang=lang)
        return _WHOLE_COMPACT.sub(r"\1", text) if compact else text

    return FuncFormatter(tick)


def pct_formatter(digits: int = 0) -> FuncFormatter:
    """An axis tick formatter for fractions shown as percentages."""
    return FuncFormatter(lambda v, _pos: fmt_pct(v, digits))


def display_width(text: object) -> int:
    """Columns a text takes on screen: wide and fullwidth (CJK) characters count 2.

    Combining marks count 0, everything else 1 (``"¥6,921.0万"`` -> 10).
    """
    width = 0
    for ch in str(text):
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


# Kinsoku: characters that may not start a line (closing brackets, punctuation,
# small kana, the prolonged sound mark) and that may not end one (opening brackets).
_NO_LINE_START = frozenset(
    ")]}）］｝〕〉》」』】〙〗〟’”｠»、。，．,.:;：；!?！？‼⁇⁈⁉・ー〜～‐゠–—/%％"
    "ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ々〻ゝゞヽヾ"
)
_NO_LINE_END = frozenset("([{（［｛〔〈《「『【〘〖〝‘“｟«¥$€£#")


_NO_BREAK_SPACES = frozenset("\u00a0\u2007\u202f")


def _breakable(ch: str) -> bool:
    """A character that is a word of its own: a line may break before and after it (CJK)."""
    return unicodedata.east_asian_width(ch) in ("W", "F", "H")


def _wrap_units(text: str) -> list[tuple[str, str]]:
    """Split text into (separator, unit) pairs; a line may break before each unit.

    Latin words (runs of non-space, non-CJK characters) are units, split after
    a hyphen between letters (``Co-`` | ``development``); each CJK character is
    a unit; the separator is ``" "`` after whitespace, else ``""``. Kinsoku
    characters are glued to their neighbour; no-break spaces join too.
    """
    units: list[list[str]] = []  # [separator, unit]
    pending_space = False
    prev_breakable = True
    for ch in text:
        if ch.isspace() and ch not in _NO_BREAK_SPACES:
            pending_space = bool(units)
            prev_breakable = True
            continue
        cjk = _breakable(ch)
        hyphen = (
            bool(units)
            and ch.isalpha()
            and units[-1][1].endswith("-")
            and units[-1][1][-2:-1].isalpha()
        )
        glue = bool(units) and (
            ch in _NO_LINE_START
            or units[-1][1][-1] in _NO_LINE_END
            or (not cjk and not prev_breakable and not pending_space and not hyphen)
        )
        if glue:
            units[-1][1] += (" " if pending_space else "") + ch
        else:
            units.append([" " if pending_space else "", ch])
        pending_space = False
        prev_breakable = cjk
    return [(sep, unit) for sep, unit in units]


def _script(ch: str) -> str:
    """Rough script class of a character for choosing line breaks."""
    code = ord(ch)
    if 0x3040 <= code <= 0x309F:
        return "hiragana"
    if 0x30A0 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9F:
        return "katakana"
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or ch in "々〆〇":
        return "kanji"
    return "cjk" if _breakable(ch) else "latin"


_CLEAN_AFTER = frozenset(")]}）］｝〕〉》」』】、。，．・：；-")
# Breaks between scripts that split a word (kanji + okurigana, katakana + particle, 12 + か月).
_SPLITS_WORD = {
    ("kanji", "hiragana"),
    ("katakana", "hiragana"),
    ("latin", "hiragana"),
    ("latin", "kanji"),
    ("latin", "katakana"),
}


def _break_penalty(prev_unit: str, sep: str, unit: str) -> int:
    """0 for a clean break (space, bracket, punctuation, change of script), else 1."""
    if sep:
        return 0
    before, after = prev_unit[-1], unit[0]
    if before in "かヶカケ" and after == "月":  # the counter か月 is one word
        return 1
    if _script(after) == "hiragana":  # a line should not start with a particle or okurigana
        return 1
    if before in _CLEAN_AFTER or after in _NO_LINE_END:
        return 0
    pair = (_script(before), _script(after))
    if pair[0] == pair[1] or pair in _SPLITS_WORD:
        return 1
    return 0


def clean_break_pieces(text: object) -> list[str]:
    """Split a label where a line may break cleanly: between CJK words, not inside one.

    The pieces joined give the text back. A break between two pieces falls
    before a bracket, after ``・`` or punctuation, or at a change of script
    (``"余地のある"`` | ``"製品"`` | ``"ライン"`` | ``"数"``), never inside a
    katakana word, between kanji and their okurigana or after a number before
    its counter. Spaces stay inside the pieces (they break anyway). For HTML,
    join the escaped pieces with ``<wbr>`` and set ``word-break: keep-all``.
    """
    pieces: list[str] = []
    for sep, unit in _wrap_units(str(text)):
        if pieces and (sep or _break_penalty(pieces[-1], sep, unit)):
            pieces[-1] += sep + unit
        else:
            pieces.append(unit)
    if len(pieces) > 1 and len(pieces[-1]) == 1:  # a one-character suffix (数, 率) stays
        pieces[-2:] = [pieces[-2] + pieces[-1]]
    # _wrap_units drops spaces at the ends and between paragraphs: keep the text whole
    return pieces if "".join(pieces) == str(text) else [str(text)]


ROW_LABEL_COLUMNS = 36
"""Longest row label of a chart, in display columns (:func:`display_width`), before it is cut."""


def shorten_label(text: object, columns: int = ROW_LABEL_COLUMNS) -> str:
    """Cut a label to at most ``columns`` display columns, ending it with ``…`` when cut.

    Row labels come from data (account names can be any length); a label wider
    than the plotting area would squeeze the axes to nothing.

    Parameters
    ----------
    text : object
    columns : int
        Largest width in display columns (CJK characters count 2).

    Returns
    -------
    str
        ``str(text)`` when it fits, else its longest prefix that fits with ``…``.
    """
    text = str(text)
    if display_width(text) <= columns:
        return text
    out, width = [], 1  # the ellipsis takes one column
    for ch in text:
        w = display_width(ch)
        if width + w > columns:
            break
        out.append(ch)
        width += w
    return "".join(out).rstrip() + "…"


def wrap_label(
    text: object,
    width: float,
    *,
    measure: Callable[[str], float] | None = None,
) -> str:
    """Wrap a label into lines no wider than ``width``: Latin text at spaces, CJK by width.

    Japanese and Chinese have no spaces: a line may break between any two CJK
    characters, except before closing brackets, punctuation, small kana and
    ``ー`` and after opening brackets (kinsoku). Latin words and numbers
    (``"(NPS)"``, ``"12"``, ``"1,000%"``) are never split. Among the wrappings
    with the fewest lines, the one with the cleanest breaks (at spaces,
    brackets, ``・``, a change of script) and then the most even lines wins:
    ``"波及効果"`` / ``"（シナジー）"``, not ``"波及効果（シ"`` / ``"ナジー）"``.

    Parameters
    ----------
    text : object
        The label; existing line breaks are kept.
    width : float
        Largest line width, in the unit of ``measure``.
    measure : callable, optional
        Width of a string; default :func:`display_width` (columns, CJK = 2).
        Pass a font measure (e.g. pixels) to wrap to a physical width.

    Returns
    -------
    str
        Lines joined by ``"\\n"``. A word wider than ``width`` gets a line of its
        own and stays too wide: compare the longest line with ``width`` to know.
    """
    measure = measure or display_width
    out: list[str] = []
    for paragraph in str(text).split("\n"):
        units = _wrap_units(paragraph)
        out.extend(_best_lines(units, float(width), measure) if units else [""])
    return "\n".join(out)


def _best_lines(
    units: list[tuple[str, str]], width: float, measure: Callable[[str], float]
) -> list[str]:
    n = len(units)
    cache: dict[tuple[int, int], tuple[str, float]] = {}

    def line(i: int, j: int) -> tuple[str, float]:  # units i .. j-1 on one line
        if (i, j) not in cache:
            text = units[i][1] + "".join(sep + unit for sep, unit in units[i + 1 : j])
            cache[i, j] = (text, measure(text))
        return cache[i, j]

    # best[j]: (lines, penalty, widest line, previous break) for units[:j]
    best: list[tuple[int, int, float, int] | None] = [None] * (n + 1)
    best[0] = (0, 0, 0.0, -1)
    for j in range(1, n + 1):
        for i in range(j - 1, -1, -1):
            prev = best[i]
            text, w = line(i, j)
            if w > width and j - i > 1:
                break  # longer lines only get wider
            if prev is None:
                continue
            penalty = prev[1] + (
                _break_penalty(units[i - 1][1], units[i][0], units[i][1]) if i else 0
            )
            cand = (prev[0] + 1, penalty, max(prev[2], w), i)
            if best[j] is None or cand[:3] < best[j][:3]:  # type: ignore[index]
                best[j] = cand
    lines: list[str] = []
    j = n
    while j > 0:
        i = best[j][3]  # type: ignore[index]
        lines.append(line(i, j)[0])
        j = i
    return lines[::-1]


def _require_cols(df: pd.DataFrame, name: str, cols: Sequence[str]) -> None:
    if not isinstance(df, pd.DataFrame) or df.empty:
        raise ValueError(f"{name}: expected a non-empty DataFrame")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: missing column(s) {missing}; columns: {list(df.columns)}")

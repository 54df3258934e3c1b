"""The page helper: the one way text, tables and charts reach a report page.

Every report notebook builds one :class:`Page` from its analysis context and
uses it for everything a reader sees::

    page = Page(ctx, prefix="valuation.col.")
    page.h1("valuation.title")
    page.say("valuation.headline", leader=leader["name"], revenue=page.money(rev), ...)
    page.note("valuation.note.no_opportunities")
    page.table(top[cols], {"revenue_12m": "money_compact", "margin_12m": "pct"})
    page.chart(plots.wallet_bars(...), alt=page.t("valuation.chart.wallet_title", n=15))
    page.record("n_accounts", n)

Safety rule
-----------
Text from data (account names and ids, folder names, product lines, any value)
reaches a page only through this module, and never through a Markdown renderer:

* Locale templates are rendered to HTML here. Their own light Markdown —
  ``**bold**``, ``*em*`` / ``_em_``, `````code`````, ``-`` and ``1.`` lists,
  blank-line paragraphs, two-space hard breaks — becomes HTML tags. Emphasis is
  emitted as ``<strong>`` / ``<em>``, so it also works next to Japanese
  punctuation, where CommonMark leaves ``**`` as typed.
* Every value is converted to text, HTML-escaped and inserted *after* the
  template's Markdown has been turned into HTML, so Markdown, HTML and TeX in a
  value (``[x](javascript:…)``, ``![x](https://…)``, ``## heading``,
  ``<script>``, ``$…$``, ``**``, backticks) are shown as typed. Missing values
  (None, NaN, NaT) show :data:`kam_analysis.plots.NA_TEXT`, infinite ones
  ``∞`` / ``-∞``.
* Only :class:`Html` (produced by this module) is inserted without escaping:
  use :meth:`Page.text` to nest one rendered template in another.
* Every output sits in an element with the classes ``tex2jax_ignore
  mathjax_ignore``: JupyterLab's MathJax leaves ``$`` alone (the exported
  report has no MathJax at all).

Headings are real ``<h1>``–``<h3>`` elements with ids derived from their
locale key (``valuation.h.current`` → ``valuation-h-current``), so anchors are
the same in every language. The report export drops the first ``<h1>`` (the
page header shows the title instead).
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure

from kam_analysis.core.errors import KamError
from kam_analysis.core.formatting import NA_TEXT, fmt_int, fmt_money, fmt_num, fmt_pct
from kam_analysis.core.i18n import label_for, t, translations
from kam_analysis.report.record import record as _record_value
from kam_analysis.report.style import set_report_style
from kam_analysis.report.tables import style_categories, styled_table

if TYPE_CHECKING:
    from pandas.io.formats.style import Styler

__all__ = [
    "MATH_OFF_CLASSES",
    "Html",
    "Page",
    "TemplateValueError",
    "escape",
    "render_template",
]

MATH_OFF_CLASSES = "tex2jax_ignore mathjax_ignore"
"""CSS classes that keep MathJax (JupyterLab, nbconvert) away from an element."""

INF_TEXT = "∞"
"""How an infinite value is shown in text (``-∞`` when negative)."""

# Private-use characters mark value slots and code spans while a template's
# Markdown is rendered; values are put into the slots afterwards.
_SLOT_OPEN, _SLOT_CLOSE = "\ue000", "\ue001"
_CODE_OPEN, _CODE_CLOSE = "\ue002", "\ue003"
_PRIVATE = re.compile("[\ue000-\ue003]")
_SLOT = re.compile(f"{_SLOT_OPEN}(\\d+){_SLOT_CLOSE}")
_CODE_SLOT = re.compile(f"{_CODE_OPEN}(\\d+){_CODE_CLOSE}")

_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_STRONG = re.compile(r"\*\*(?=\S)([\s\S]*?\S)\*\*")
_EM_STAR = re.compile(r"(?<!\*)\*(?=[^\s*])([\s\S]*?[^\s*])\*(?!\*)")
_EM_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9_])_(?=\S)([\s\S]*?\S)_(?![A-Za-z0-9_])")
_BULLET = re.compile(r"^ {0,3}[-*+][ \t]+(.*)$")
_ORDERED = re.compile(r"^ {0,3}(\d{1,9})[.)][ \t]+(.*)$")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_FORMATTER = string.Formatter()


class Html(str):
    """Markup produced by this module: inserted into a page without escaping.

    Any other ``str`` is text and is escaped. Operations on an ``Html`` value
    (``+``, ``join``) return plain ``str``, which is escaped again: safe, and
    visibly wrong, so combine fragments with :meth:`Page.show` instead.
    """

    __slots__ = ()

    def __html__(self) -> str:  # the markupsafe / Jinja protocol
        return str(self)

    def _repr_html_(self) -> str:
        return str(self)


class TemplateValueError(KamError, KeyError):
    """A locale template needs a value that was not given."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0])


# --------------------------------------------------------------------------- values


def is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    if isinstance(value, np.datetime64 | np.timedelta64):
        return bool(np.isnat(value))
    return False


def _is_inf(value: object) -> bool:
    return isinstance(value, float | np.floating) and math.isinf(value)


def _value_text(value: object) -> str:
    """A value as the text a reader sees: missing → NA text, ±inf → ∞ / -∞."""
    if is_missing(value):
        return NA_TEXT
    if _is_inf(value):
        return INF_TEXT if value > 0 else f"-{INF_TEXT}"  # type: ignore[operator]
    return str(value)


def escape(value: object) -> Html:
    """A value as HTML text: :class:`Html` unchanged, anything else escaped.

    Parameters
    ----------
    value : object
        Missing values give :data:`kam_analysis.plots.NA_TEXT`, infinite
        floats ``∞`` / ``-∞``.

    Returns
    -------
    Html
    """
    if isinstance(value, Html):
        return value
    return Html(html.escape(_value_text(value), quote=True))


def _field_root(name: str) -> str:
    return re.split(r"[.\[]", name, maxsplit=1)[0]


def _field_text(values: Mapping[str, Any], name: str, spec: str, conversion: str | None) -> str:
    """The text of one placeholder: missing → NA text, ±inf → ∞, else formatted."""
    obj, _ = _FORMATTER.get_field(name, (), values)
    if conversion:
        obj = _FORMATTER.convert_field(obj, conversion)
    if is_missing(obj) or _is_inf(obj):
        return _value_text(obj)
    return format(obj, spec) if spec else str(obj)


def _field_html(values: Mapping[str, Any], name: str, spec: str, conversion: str | None) -> str:
    obj, _ = _FORMATTER.get_field(name, (), values)
    if isinstance(obj, Html) and not spec and not conversion:
        return obj
    return html.escape(_field_text(values, name, spec, conversion), quote=True)


def _missing_fields(fields: list[tuple[str, str, str | None]], values: Mapping[str, Any]) -> list:
    return sorted({_field_root(n) for n, _, _ in fields if _field_root(n) not in values})


def _raise_missing(
    missing: list[str], values: Mapping[str, Any], key: str | None, lang: str | None
):
    where = (f"locale key {key!r}" + (f" ({lang}.json)" if lang else "")) if key else "template"
    raise TemplateValueError(
        f"{where} needs a value for {', '.join(repr(m) for m in missing)}; "
        f"given: {', '.join(sorted(values)) or 'none'}"
    )


def _parse_template(template: str) -> tuple[str, list[tuple[str, str, str | None]]]:
    """Template text with numbered slot markers, and the fields of the slots."""
    parts: list[str] = []
    fields: list[tuple[str, str, str | None]] = []
    for literal, name, spec, conversion in _FORMATTER.parse(_PRIVATE.sub("", template)):
        parts.append(literal)
        if name is None:
            continue
        if not name or name.isdigit():
            raise ValueError(f"template {template[:60]!r}: positional fields are not supported")
        parts.append(f"{_SLOT_OPEN}{len(fields)}{_SLOT_CLOSE}")
        fields.append((name, spec or "", conversion))
    return "".join(parts), fields


# --------------------------------------------------------------------------- Markdown subset


def _inline(text: str) -> str:
    """Escape template text and turn its code spans and emphasis into HTML."""
    codes: list[str] = []

    def keep_code(match: re.Match[str]) -> str:
        codes.append(f"<code>{html.escape(match.group(2).strip(), quote=True)}</code>")
        return f"{_CODE_OPEN}{len(codes) - 1}{_CODE_CLOSE}"

    out = _CODE_SPAN.sub(keep_code, text)
    out = html.escape(out, quote=True)
    out = _STRONG.sub(r"<strong>\1</strong>", out)
    out = _EM_STAR.sub(r"<em>\1</em>", out)
    out = _EM_UNDERSCORE.sub(r"<em>\1</em>", out)
    return _CODE_SLOT.sub(lambda m: codes[int(m.group(1))], out)


def _join_lines(lines: list[str]) -> str:
    """Lines of one paragraph: a line ending in two spaces or ``\\`` is a hard break."""
    out = []
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if not last and (line.endswith("  ") or line.endswith("\\")):
            out.append(_inline(line.rstrip(" \\")) + "<br>\n")
        else:
            out.append(_inline(line.strip()) + ("" if last else "\n"))
    return "".join(out)


def _render_block(block: str) -> list[tuple[str, str]]:
    """One blank-line-separated block as (kind, html) parts: paragraphs and lists."""
    parts: list[list[Any]] = []  # [kind, lines or items, start]
    for line in block.split("\n"):
        bullet, ordered = _BULLET.match(line), _ORDERED.match(line)
        if bullet or ordered:
            kind = "ul" if bullet else "ol"
            content = bullet.group(1) if bullet else ordered.group(2)  # type: ignore[union-attr]
            if parts and parts[-1][0] == kind:
                parts[-1][1].append([content])
            else:
                start = int(ordered.group(1)) if ordered else 1
                parts.append([kind, [[content]], start])
        elif not line.strip():
            continue
        elif parts and parts[-1][0] in ("ul", "ol"):
            parts[-1][1][-1].append(line.strip())  # continuation of the list item
        elif parts and parts[-1][0] == "p":
            parts[-1][1].append(line)
        else:
            parts.append(["p", [line], 1])
    rendered = []
    for kind, body, start in parts:
        if kind == "p":
            rendered.append(("p", f"<p>{_join_lines(body)}</p>"))
        else:
            items = "".join(f"<li>{_join_lines(item)}</li>" for item in body)
            first = f' start="{start}"' if kind == "ol" and start != 1 else ""
            rendered.append((kind, f"<{kind}{first}>{items}</{kind}>"))
    return rendered


def _render_blocks(text: str) -> list[tuple[str, str]]:
    blocks: list[tuple[str, str]] = []
    for block in _BLANK_LINE.split(text.replace("\r\n", "\n").strip("\n")):
        blocks += _render_block(block)
    return blocks


def render_template(
    template: str,
    values: Mapping[str, Any] | None = None,
    *,
    inline: bool = False,
    key: str | None = None,
    lang: str | None = None,
) -> Html:
    """Render a locale template to HTML, with every value escaped as text.

    Parameters
    ----------
    template : str
        Text with ``{name}`` / ``{name:spec}`` placeholders and light Markdown
        (bold, emphasis, code spans, lists, paragraphs, hard breaks).
    values : mapping, optional
        Placeholder values. :class:`Html` values are inserted as they are;
        anything else is converted to text (missing → NA text, ±inf → ∞) and
        HTML-escaped. A format spec applies to the raw value
        (``{level:.0%}``). Values the template does not use are ignored.
    inline : bool, default False
        Return a single paragraph without its ``<p>``, and a list of one item
        without its list tags (for nesting a rendered template in another one,
        in a heading or as an item of a list).
    key, lang : str, optional
        Locale key and language, named in error messages.

    Returns
    -------
    Html

    Raises
    ------
    TemplateValueError
        (a ``KeyError``) naming every placeholder without a value.
    ValueError
        For positional placeholders (``{}``, ``{0}``).

    Examples
    --------
    >>> render_template("Top: **{name}**", {"name": "[x](javascript:alert(1))"})
    '<p>Top: <strong>[x](javascript:alert(1))</strong></p>'
    """
    values = dict(values or {})
    text, fields = _parse_template(template)
    if missing := _missing_fields(fields, values):
        _raise_missing(missing, values, key, lang)
    slots = [_field_html(values, name, spec, conv) for name, spec, conv in fields]
    blocks = _render_blocks(text)
    if inline and len(blocks) == 1 and blocks[0][0] == "p":
        body = blocks[0][1][len("<p>") : -len("</p>")]
    elif inline and len(blocks) == 1 and blocks[0][1].count("<li>") == 1:
        body = blocks[0][1][blocks[0][1].index("<li>") + 4 : -len("</li></ul>")]
    else:
        body = "".join(part for _, part in blocks)
    return Html(_SLOT.sub(lambda m: slots[int(m.group(1))], body))


def _plain_text(markup: str) -> str:
    """Readable plain text of rendered HTML (the ``text/plain`` fallback)."""
    text = re.sub(r"<br>\n?|</p>|</li>|</h\d>", "\n", markup)
    text = re.sub(r"<li>", "- ", text)
    text = re.sub(r"<[^>]+>", "", text)
    return html.unescape(text).strip()


def _fill_plain(template: str, values: Mapping[str, Any], key: str, lang: str) -> str:
    """A template filled with values as plain text (charts, table headers)."""
    text, fields = _parse_template(template)
    if missing := _missing_fields(fields, values):
        _raise_missing(missing, values, key, lang)
    slots = [_field_text(values, name, spec, conv) for name, spec, conv in fields]
    return _SLOT.sub(lambda m: slots[int(m.group(1))], text)


def _display(bundle: dict[str, str]) -> None:
    display(bundle, raw=True)


def _root_figure(obj: Any) -> Figure:
    if obj is None:
        return plt.gcf()
    if isinstance(obj, Axes):
        obj = obj.figure
    elif isinstance(obj, np.ndarray | list | tuple):
        first = np.asarray(obj, dtype=object).ravel()
        if not len(first):
            raise ValueError("Page.chart: empty sequence of axes")
        return _root_figure(first[0])
    while isinstance(obj, SubFigure):
        obj = obj.figure
    if not isinstance(obj, Figure):
        raise TypeError(f"Page.chart: expected a Figure or Axes, got {type(obj).__name__}")
    return obj


def _figure_titles(fig: Figure) -> list[str]:
    titles = []
    suptitle = fig.get_suptitle()
    if suptitle:
        titles.append(suptitle)
    for ax in fig.axes:
        titles += [t for loc in ("left", "center", "right") if (t := ax.get_title(loc=loc))]
    return [t.replace(r"\$", "$") for t in titles]


# --------------------------------------------------------------------------- the page


def _repeated_text_columns(df: pd.DataFrame) -> list[Any]:
    """Text columns whose every value equals an earlier text column's (name = id)."""
    text = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    repeated = []
    for i, col in enumerate(text):
        values = df[col].astype("string")
        if any(values.equals(df[other].astype("string")) for other in text[:i]):
            repeated.append(col)
    return repeated


class Page:
    """The page of one report notebook: headings, text, notes, tables, charts, numbers.

    Parameters
    ----------
    ctx : AnalysisContext, optional
        Gives the language (``ctx.lang``) and the reporting currency
        (``ctx.config.data.base_currency``).
    lang : {"en", "ja"}, optional
        Overrides ``ctx.lang``; default "en" without a context.
    currency : str, optional
        ISO code; overrides the context's base currency; default "JPY".
    prefix : str, optional
        Default locale key prefix of table column headers (``"valuation.col."``).
    style : bool, default True
        Apply :func:`kam_analysis.plots.set_report_style` for ``lang`` (fonts,
        theme, mathtext off for chart text).
    show : callable, optional
        Receives each output as a MIME bundle ``{"text/html": ..., "text/plain":
        ...}``; default ``IPython.display.display(bundle, raw=True)``.

    Attributes
    ----------
    lang, currency, prefix : str
    ctx : AnalysisContext or None

    Notes
    -----
    Methods that show something (``h1``, ``say``, ``note``, ``table``,
    ``chart`` ...) return None, so a call as the last line of a cell does not
    show its output twice.
    """

    def __init__(
        self,
        ctx: Any = None,
        *,
        lang: str | None = None,
        currency: str | None = None,
        prefix: str | None = None,
        style: bool = True,
        show: Callable[[dict[str, str]], Any] | None = None,
    ) -> None:
        if ctx is not None:
            lang = lang or ctx.lang
            currency = currency or ctx.config.data.base_currency
        self.ctx = ctx
        if ctx is not None and getattr(ctx, "state_status", "none") != "none":
            _record_value("run_state", ctx.state_status)  # did this page read the run's state?
        self.lang: str = lang or "en"
        translations(self.lang)  # validates the language
        self.currency: str = currency or "JPY"
        self.prefix: str | None = prefix
        self._show = show or _display
        self._ids: Counter[str] = Counter()
        if style:
            set_report_style(self.lang)

    # ------------------------------------------------------------------ text

    def _template(self, key: str) -> str:
        t(key, self.lang)  # raises TranslationKeyError naming the key
        return translations(self.lang)[key]

    def t(self, key: str, /, **values: Any) -> str:
        """Plain text of a locale key (chart titles, axis labels, card labels).

        Not for page text: use :meth:`say` / :meth:`text`, which escape values.

        Raises
        ------
        TranslationKeyError
            For a key missing from the locale file.
        TemplateValueError
            For a placeholder without a value.
        """
        return _fill_plain(self._template(key), values, key, self.lang)

    def text(self, key: str, /, **values: Any) -> Html:
        """A locale template rendered as HTML (inline when it is one paragraph).

        For nesting one template in another (``say("a", detail=page.text("b"))``)
        or for the items of :meth:`bullets`.
        """
        return render_template(self._template(key), values, inline=True, key=key, lang=self.lang)

    def _emit(self, markup: str, *, kind: str = "text") -> None:
        wrapped = f'<div class="kam-{kind} {MATH_OFF_CLASSES}">{markup}</div>'
        self._show({"text/html": wrapped, "text/plain": _plain_text(markup)})

    def say(self, key: str, /, **values: Any) -> None:
        """Show a locale template with values: the narrative text of a page."""
        self._emit(render_template(self._template(key), values, key=key, lang=self.lang))

    def note(self, key: str, /, **values: Any) -> None:
        """Show a note: something not available, and what was done instead.

        Same rendering as :meth:`say`, set apart as a note (class ``kam-note``).
        """
        markup = render_template(self._template(key), values, key=key, lang=self.lang)
        self._emit(markup, kind="note")

    def notes(self, items: Iterable[Any], /, *, title: str | None = None, **values: Any) -> None:
        """Show a list of notes (e.g. the notes an analysis returns), if there are any.

        Parameters
        ----------
        items : iterable
            Each a text (escaped), an :class:`Html` fragment, or a
            ``(key, values)`` pair rendered from the locale file.
        title : str, optional
            Locale key of a line above the list; ``values`` fill it.
        """
        rendered = [self._item(i) for i in items]
        if not rendered:
            return
        head = (
            render_template(self._template(title), values, key=title, lang=self.lang)
            if title
            else ""
        )
        body = "".join(f"<li>{r}</li>" for r in rendered)
        self._emit(f"{head}<ul>{body}</ul>", kind="note")

    def _item(self, item: Any) -> Html:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            key, values = item
            return self.text(key, **dict(values))
        return escape(item)

    def bullets(self, items: Iterable[Any], *, numbered: bool = False) -> None:
        """Show a bullet (or numbered) list of items (see :meth:`notes` for item kinds)."""
        rendered = [self._item(i) for i in items]
        if not rendered:
            return
        tag = "ol" if numbered else "ul"
        self._emit(f"<{tag}>{''.join(f'<li>{r}</li>' for r in rendered)}</{tag}>")

    def show(self, *fragments: Any, lines: bool = False) -> None:
        """Show fragments (from :meth:`text`, or text to escape) as one paragraph.

        Parameters
        ----------
        *fragments
            :class:`Html` from :meth:`text`, or any value (escaped as text).
            Empty strings are skipped.
        lines : bool, default False
            Put each fragment on its own line (``<br>``) instead of separating
            them with a space.
        """
        parts = [escape(f) for f in fragments if not (isinstance(f, str) and f == "")]
        if not parts:
            return
        body = ("<br>\n" if lines else " ").join(parts)
        block = re.search(r"<(?:p|ul|ol|div|h\d)\b", body) is not None
        self._emit(body if block else f"<p>{body}</p>")

    # ------------------------------------------------------------------ headings

    def _anchor(self, key: str) -> str:
        base = re.sub(r"[^A-Za-z0-9]+", "-", key).strip("-").lower() or "section"
        self._ids[base] += 1
        n = self._ids[base]
        return base if n == 1 else f"{base}-{n}"

    def heading(self, level: int, key: str, /, **values: Any) -> None:
        """Show a heading ``<h{level} id=...>`` from a locale key (level 1 to 4).

        The id is the key in lower case with runs of other characters turned
        into ``-`` (``-2``, ``-3`` ... when a key repeats on the page).
        """
        if level not in (1, 2, 3, 4):
            raise ValueError(f"heading level must be 1 to 4, got {level!r}")
        text = self.text(key, **values)
        anchor = self._anchor(key)
        markup = f'<h{level} id="{anchor}" class="{MATH_OFF_CLASSES}">{text}</h{level}>'
        self._show({"text/html": markup, "text/plain": _plain_text(text)})

    def h1(self, key: str, /, **values: Any) -> None:
        """The page title (dropped from the exported report, whose header shows it).

        Warnings about the data the whole page rests on (an as-of date long
        after the last transaction) follow it as notes.
        """
        self.heading(1, key, **values)
        data_notes = getattr(self.ctx, "data_notes", None)
        if callable(data_notes):
            for note_key, note_values in data_notes():
                self.note(note_key, **note_values)

    def h2(self, key: str, /, **values: Any) -> None:
        """A section heading."""
        self.heading(2, key, **values)

    def h3(self, key: str, /, **values: Any) -> None:
        """A sub-section heading."""
        self.heading(3, key, **values)

    # ------------------------------------------------------------------ numbers and labels

    def money(self, x: Any, *, compact: bool = True, decimals: int | None = None) -> str:
        """An amount in the page currency, compact by default (``¥1.2億``, ``$3.4M``)."""
        return fmt_money(x, self.currency, compact=compact, lang=self.lang, decimals=decimals)

    def pct(self, x: Any, digits: int = 1, *, signed: bool = False) -> str:
        """A fraction as a percentage (``0.123`` → ``12.3%``)."""
        return fmt_pct(x, digits, signed=signed)

    def int(self, x: Any) -> str:
        """A count with thousands separators."""
        return fmt_int(x)

    def num(self, x: Any, digits: int = 1, *, signed: bool = False) -> str:
        """A plain number with ``digits`` decimals (scores, ratios)."""
        return fmt_num(x, digits, signed=signed)

    def date(self, x: Any) -> str:
        """A date as ``2024-04-01`` (a time of day dropped); missing gives the NA text."""
        if is_missing(x):
            return NA_TEXT
        return pd.Timestamp(x).strftime("%Y-%m-%d")

    def join(self, items: Iterable[Any]) -> str:
        """Items as one plain-text list: ``a, b, c`` (``a、b、c`` in Japanese)."""
        return self.t("page.list_sep").join(_value_text(i) for i in items)

    def label(self, value: Any, prefix: str) -> str:
        """The display label of a code (``label("key", "tier.")`` → ``Key account``)."""
        return label_for(value, self.lang, prefix=prefix)

    def labels(self, values: Any, prefix: str) -> Any:
        """:meth:`label` of each value: a Series for a Series, else a list."""
        if isinstance(values, pd.Series | pd.Index):
            return values.map(lambda v: self.label(v, prefix))
        return [self.label(v, prefix) for v in values]

    def record(self, name: str, value: Any) -> None:
        """Record a key number for the run manifest (:func:`kam_analysis.report.record.record`)."""
        _record_value(name, value)

    # ------------------------------------------------------------------ tables

    def styled(
        self,
        df: pd.DataFrame,
        formats: Mapping[str, Any] | None = None,
        *,
        prefix: str | None = None,
        columns: Mapping[str, str] | None = None,
        categories: Mapping[str, str | tuple[str, Mapping[str, str] | None]] | None = None,
        caption: str | None = None,
        hide_index: bool = True,
    ) -> Styler:
        """The styled table :meth:`table` shows (see there), without showing it."""
        prefix = self.prefix if prefix is None else prefix
        columns = dict(columns or {})
        unknown = [c for c in [*columns, *(formats or {}), *(categories or {})] if c not in df]
        if unknown:
            raise KeyError(f"Page.table: unknown column(s) {unknown}; columns: {list(df.columns)}")
        names = {
            c: self.t(columns[c]) if c in columns else label_for(c, self.lang, prefix=prefix or "")
            for c in df.columns
        }
        fmts = {names[c]: f for c, f in (formats or {}).items()}
        styler = styled_table(
            df.rename(columns=names),
            fmts,
            currency=self.currency,
            lang=self.lang,
            hide_index=hide_index,
            caption=caption,
        )
        for column, spec in (categories or {}).items():
            cat_prefix, colours = (spec, None) if isinstance(spec, str) else spec
            styler = style_categories(
                styler, names[column], lang=self.lang, prefix=cat_prefix, colours=colours
            )
        return styler

    def table(
        self,
        df: pd.DataFrame,
        formats: Mapping[str, Any] | None = None,
        *,
        prefix: str | None = None,
        columns: Mapping[str, str] | None = None,
        categories: Mapping[str, str | tuple[str, Mapping[str, str] | None]] | None = None,
        caption: str | None = None,
        hide_index: bool = True,
        drop_empty: bool = True,
    ) -> None:
        """Show a table with translated headers and formatted, escaped cells.

        Parameters
        ----------
        df : DataFrame
            Not modified.
        formats : mapping, optional
            Column (as in ``df``) -> format kind of
            :func:`kam_analysis.plots.styled_table` (``"money_compact"``,
            ``"pct"``, ``"int"``, ``"{:.1f}"``, a function ...).
        prefix : str, optional
            Header labels are ``label_for(column, prefix=prefix)``; default the
            page's ``prefix``.
        columns : mapping, optional
            Column -> full locale key of its header, for columns whose key does
            not follow the prefix (``{"label": "ltv.col.account"}``).
        categories : mapping, optional
            Column -> key prefix of its codes (``"kpi.status."``), or ``(prefix,
            colours)``: shown as translated, coloured cells
            (:func:`kam_analysis.plots.style_categories`).
        caption : str, optional
            Plain text (escaped), e.g. from :meth:`t`.
        hide_index : bool, default True
        drop_empty : bool, default True
            Leave out columns without a single value (a measure the data does
            not provide, e.g. gross profit without a cost column; the page says
            elsewhere why it is not available), and text columns repeating an
            earlier one (account names that are just the ids, when the
            accounts were derived from the transactions).

        Raises
        ------
        KeyError
            When ``formats``, ``columns`` or ``categories`` name a column not in ``df``.
        """
        if drop_empty and len(df):
            empty = [c for c in df.columns if df[c].isna().all()] + _repeated_text_columns(df)
            df = df.drop(columns=empty)
            formats = {c: f for c, f in (formats or {}).items() if c not in empty}
            columns = {c: k for c, k in (columns or {}).items() if c not in empty}
            categories = {c: v for c, v in (categories or {}).items() if c not in empty}
        styler = self.styled(
            df,
            formats,
            prefix=prefix,
            columns=columns,
            categories=categories,
            caption=caption,
            hide_index=hide_index,
        )
        self._show(
            {
                "text/html": f'<div class="kam-table {MATH_OFF_CLASSES}">{styler.to_html()}</div>',
                "text/plain": df.to_string(max_rows=30, max_cols=12),
            }
        )

    # ------------------------------------------------------------------ charts

    def chart(self, fig: Figure | Axes | Any = None, *, alt: str | None = None) -> None:
        """Show a matplotlib figure as an image with alt text, then close it.

        Parameters
        ----------
        fig : Figure, Axes or array of Axes, optional
            What a plot helper returned; default the current figure.
        alt : str, optional
            Plain text for the ``alt`` attribute (escaped); default the
            figure's titles, else the generic ``page.chart_alt`` label.
        """
        figure = _root_figure(fig)
        if alt is None:
            alt = " / ".join(_figure_titles(figure)) or self.t("page.chart_alt")
        buffer = io.BytesIO()
        try:
            figure.savefig(
                buffer,
                format="png",
                dpi=figure.dpi,
                bbox_inches="tight",
                facecolor=figure.get_facecolor(),
                edgecolor=figure.get_edgecolor(),
            )
        finally:
            plt.close(figure)
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        markup = (
            f'<div class="kam-chart {MATH_OFF_CLASSES}">'
            f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt, quote=True)}">'
            "</div>"
        )
        self._show({"text/html": markup, "text/plain": f"[{alt}]"})

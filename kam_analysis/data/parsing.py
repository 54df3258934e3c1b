"""Turning the text of an export into contract types: one rule table for every engine.

Files (read by the embedded DuckDB) and tables of an engine source (Spark,
PostgreSQL, a warehouse) are parsed by the same Ibis expressions built
here, so a value is read the same way wherever the data lives.

Rules, by column kind (:mod:`kam_analysis.core.schemas`):

amount
    Blanks, currency signs (``¥ ￥ $ € £ 円``) and apostrophes are removed;
    ``(1,234.50)`` and a trailing minus ``1234.50-`` (SAP) are negative.
    With the decimal mark ``"."`` (default) a comma is accepted only as a
    thousands separator in groups of three (``1,709.58``); with ``","``
    a dot is accepted only as a thousands separator (``1.709,58``). Any
    other comma or dot makes the value unreadable, never a silently wrong
    number (``1709,58`` is not 170958). ``NaN``, ``inf``, exponents of more
    than two digits and texts longer than :data:`MAX_NUMBER_TEXT` characters
    are unreadable too, so every engine can cast what is accepted.
integer
    An amount that is a whole number of at most 2**53 in magnitude (whole
    numbers a float holds exactly); ``2.5`` is unreadable.
date
    The configured ``date_format`` list first (strptime syntax; unpadded
    ``12/1/2010 8:26`` parses with ``%m/%d/%Y %H:%M``), then the built-in
    unambiguous forms :data:`BUILTIN_DATE_FORMATS`. Day/month orders such as
    ``01/02/2024`` are never guessed. A value is read by the first format
    whose shape (:func:`date_format_regex`) it has and whose fields form a
    real date and time: ``2024-02-30`` and ``2024-04-01 24:00`` are
    unreadable, and so is the year 0.
flag
    true/false, yes/no, 1/0, はい/いいえ, 有/無.
text
    Trimmed; empty text is missing.

Column formulas
---------------
A column-map value starting with ``=`` is an expression over the export's
columns (:func:`parse_formula`): column names (bare, or in backticks when
they hold spaces or symbols), numbers, single-quoted strings, ``+ - * /``
and parentheses. The formula is parsed into a tree and compiled into the
engine's expression (:func:`compile_formula`); its text never becomes SQL.

Engines
-------
The rules are the same everywhere; how a date is read depends on what the
engine offers. DuckDB (files, and DuckDB sources) has ``TRY_STRPTIME``.
Other engines get the portable form (:func:`_portable_dates`): the fields
are cut out with a regular expression, checked against the calendar with
arithmetic, and only a checked ISO text is cast. Their own date parsers are
not used: Spark refuses formats holding letters such as the ``T`` of
``2024-04-01T08:30:00``, and Spark (ANSI mode) and PostgreSQL fail the whole
query on one impossible date instead of reading it as missing. Numbers are
cast only after their shape was checked, for the same reason (PostgreSQL has
no *try* cast). ``tests/test_parser_parity.py`` checks that files, a DuckDB
source, the portable form, Spark and PostgreSQL read the same values.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import ibis
import ibis.expr.types as ir

from kam_analysis.core.errors import InputError

__all__ = [
    "BUILTIN_DATE_FORMATS",
    "FormulaError",
    "Formula",
    "ParseOptions",
    "ParseRequest",
    "compile_formula",
    "date_format_regex",
    "is_formula",
    "parse_columns",
    "parse_formula",
]

BUILTIN_DATE_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y%m%d",
    "%Y年%m月%d日",
)
"""Date forms read without configuration: each is unambiguous (year first)."""

AMOUNT_NOISE = "[\\s\u00a0\u3000¥￥$€£円']"
"""Characters removed from an amount before it is read (blanks including the no-break
and ideographic spaces, currency signs, apostrophes). The spaces are written as
themselves: PostgreSQL's regular expressions do not know ``\\x{00A0}``."""

MAX_NUMBER_TEXT = 100
"""Longest number text read (after blanks and signs are removed); with exponents of at
most two digits, every accepted number is far inside the float range, so no engine's
cast can overflow."""

_FLOAT_MAX = 1.7976931348623157e308
_EXACT_INTEGER = float(2**53)

TRUE_WORDS = ("true", "t", "yes", "y", "1", "はい", "有")
FALSE_WORDS = ("false", "f", "no", "n", "0", "いいえ", "無")

_GROUPED_DOT = r"^[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?$"  # 1,709.58
_GROUPED_COMMA = r"^[+-]?[0-9]{1,3}(\.[0-9]{3})+(,[0-9]*)?$"  # 1.709,58


@dataclass(frozen=True)
class ParseOptions:
    """How text values are read.

    Parameters
    ----------
    decimal : {".", ","}
        Decimal mark of amounts.
    refuse_commas : bool
        Refuse any comma in an amount (a semicolon-delimited file whose
        decimal mark was not configured: ``1,709`` could be 1.709 or 1709).
    date_formats : tuple of str
        Configured strptime formats, tried before :data:`BUILTIN_DATE_FORMATS`.
    engine : str
        Ibis backend name: ``"duckdb"`` reads dates with ``TRY_STRPTIME``,
        any other engine with the portable form (see the module notes).
    """

    decimal: Literal[".", ","] = "."
    refuse_commas: bool = False
    date_formats: tuple[str, ...] = ()
    engine: str = "duckdb"

    @property
    def all_date_formats(self) -> tuple[str, ...]:
        """Configured formats first, then the built-in ones (no repeats)."""
        return tuple(dict.fromkeys((*self.date_formats, *BUILTIN_DATE_FORMATS)))


# --------------------------------------------------------------------------- values


@ibis.udf.scalar.builtin(name="try_strptime")
def _duckdb_try_strptime(value: str, fmt: str) -> dt.datetime:  # pragma: no cover
    """DuckDB's TRY_STRPTIME (NULL where the value does not match the format)."""


_YEAR_1_TO_9999 = "(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"

_REGEX_FOR_DIRECTIVE = {
    "Y": _YEAR_1_TO_9999,
    "y": "[0-9]{2}",
    "m": "[0-9]{1,2}",
    "d": "[0-9]{1,2}",
    "H": "[0-9]{1,2}",
    "I": "[0-9]{1,2}",
    "M": "[0-9]{1,2}",
    "S": "[0-9]{1,2}",
    "f": "[0-9]{1,9}",
    "j": "[0-9]{1,3}",
    "p": "(?:AM|PM|am|pm)",
    "b": "[A-Za-z]{3}",
    "B": "[A-Za-z]+",
    "z": "[+-][0-9]{2}:?[0-9]{2}",
}
_LITERAL_AS_IS = " /:-年月日時分秒"


def _format_parts(fmt: str) -> list[tuple[str, str]]:
    """``("directive", letter)`` and ``("literal", character)`` parts of a strptime format."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            j = i + 1
            if fmt[j] in "-#" and j + 1 < len(fmt):
                j += 1
            if fmt[j] == "%":
                out.append(("literal", "%"))
            elif fmt[j] in _REGEX_FOR_DIRECTIVE:
                out.append(("directive", fmt[j]))
            else:  # not a directive kam reads (the settings refuse them): literal text
                out.extend(("literal", c) for c in "%" + fmt[j])
            i = j + 1
        else:
            out.append(("literal", fmt[i]))
            i += 1
    return out


def _format_regex(fmt: str, *, capture: bool) -> str:
    out = []
    for part, value in _format_parts(fmt):
        if part == "directive":
            regex = _REGEX_FOR_DIRECTIVE[value]
            out.append(f"({regex})" if capture else regex)
        else:
            out.append(value if value.isalnum() or value in _LITERAL_AS_IS else re.escape(value))
    return "^" + "".join(out) + "$"


def date_format_regex(fmt: str) -> str:
    """An anchored regular expression matching the values ``fmt`` can parse.

    Only values of this shape are parsed with ``fmt``: a regular expression
    costs far less than a failed parse, and engines without a *try* parse
    never see text of the wrong shape. Years are 0001-9999.

    Examples
    --------
    >>> date_format_regex("%m/%d/%Y %H:%M")[:40]
    '^[0-9]{1,2}/[0-9]{1,2}/(?:[1-9][0-9]{3}|'
    >>> import re
    >>> bool(re.search(date_format_regex("%m/%d/%Y %H:%M"), "4/1/2024 8:26"))
    True
    """
    return _format_regex(fmt, capture=False)


def _parse_date(text: ir.StringValue, options: ParseOptions) -> ir.TimestampValue:
    """DuckDB: the first format whose shape matches and that parses (TRY_STRPTIME)."""
    attempts = [
        ibis.ifelse(
            text.re_search(date_format_regex(fmt)),
            _duckdb_try_strptime(text, fmt),
            ibis.null("timestamp"),
        )
        for fmt in options.all_date_formats
    ]
    return ibis.coalesce(*attempts)


# ---- the portable form: fields cut out by a regular expression, checked, cast from ISO text

_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_DAYS_BEFORE_MONTH = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)  # common year


def _portable_supported(fmt: str) -> bool:
    """Whether the portable form reads ``fmt`` (all directives but the UTC offset %z)."""
    return all(value != "z" for part, value in _format_parts(fmt) if part == "directive")


def _int(text: ir.StringValue) -> ir.IntegerValue:
    """Digits (checked by the format's regular expression) as an integer."""
    return text.cast("int64")


def _leap(year: ir.IntegerValue) -> ir.BooleanValue:
    return ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)


def _month_from_name(name: ir.StringValue, letter: str) -> ir.IntegerValue:
    """``%b`` (Jan, case-insensitive) or ``%B`` (January) as the month number; NULL otherwise."""
    low = name.lower()
    return ibis.cases(
        *[(low == (m[:3] if letter == "b" else m), i + 1) for i, m in enumerate(_MONTHS)],
        else_=ibis.null("int64"),
    )


def _portable_fields(groups: dict[str, ir.StringValue]) -> dict[str, ir.Value]:
    """Integer fields of one format's captured groups (directive letter -> text).

    Missing fields take strptime's defaults (January, the 1st, midnight); ``ok``
    is False where a field is out of its range.
    """
    checks: list[ir.BooleanValue] = []
    if "Y" in groups:
        year = _int(groups["Y"])
    elif "y" in groups:  # 69-99 -> 19xx, 00-68 -> 20xx (as strptime)
        short = _int(groups["y"])
        year = ibis.ifelse(short < 69, short + 2000, short + 1900)
    else:  # the settings refuse formats without a year
        year = ibis.literal(1900, type="int64")
    if "m" in groups:
        month = _int(groups["m"])
    elif "b" in groups or "B" in groups:
        letter = "b" if "b" in groups else "B"
        month = _month_from_name(groups[letter], letter)
        checks.append(month.notnull())
    else:
        month = ibis.literal(1, type="int64")
    day = _int(groups["d"]) if "d" in groups else ibis.literal(1, type="int64")
    hour_text = groups.get("H", groups.get("I"))
    hour = _int(hour_text) if hour_text is not None else ibis.literal(0, type="int64")
    if "p" in groups:  # 12-hour clock: 1-12, 12 AM is midnight
        pm = groups["p"].lower() == "pm"
        checks.append((hour >= 1) & (hour <= 12))
        hour = hour % 12 + ibis.ifelse(pm, 12, 0)
    elif "I" in groups:
        checks.append((hour >= 1) & (hour <= 12))
    minute = _int(groups["M"]) if "M" in groups else ibis.literal(0, type="int64")
    second = _int(groups["S"]) if "S" in groups else ibis.literal(0, type="int64")
    if "f" in groups:
        checks.append(groups["f"].length() <= 6)
        micro = _int(groups["f"].rpad(6, "0"))
    else:
        micro = ibis.literal(0, type="int64")
    checks += [
        (hour >= 0) & (hour <= 23),
        (minute >= 0) & (minute <= 59),
        (second >= 0) & (second <= 59),
    ]
    fields = {"year": year, "month": month, "day": day, "hour": hour}
    fields |= {"minute": minute, "second": second, "micro": micro}
    if "j" in groups:
        fields["yday"] = _int(groups["j"])
    fields["ok"] = ibis.and_(*checks)
    return fields


def _portable_timestamp(f: dict[str, ir.Value]) -> ir.TimestampValue:
    """The timestamp of checked integer fields; NULL for an impossible date."""
    year, month, day = f["year"], f["month"], f["day"]
    leap = ibis.ifelse(_leap(year), 1, 0)  # PostgreSQL casts no boolean to bigint
    ok = f["ok"]
    if "yday" in f:  # %j: day of the year
        yday = f["yday"]
        ok = ok & (yday >= 1) & (yday <= 365 + leap)
        starts = [start + (leap if m >= 2 else 0) for m, start in enumerate(_DAYS_BEFORE_MONTH)]
        month = ibis.cases(
            *[(yday <= starts[m + 1], m + 1) for m in range(11)], else_=ibis.literal(12)
        )
        day = yday - ibis.cases(*[(month == m + 1, starts[m]) for m in range(12)], else_=0)
    days_in_month = ibis.cases(
        (month == 2, 28 + leap),
        (month.isin([4, 6, 9, 11]), 30),
        else_=31,
    )
    ok = ok & (month >= 1) & (month <= 12) & (day >= 1) & (day <= days_in_month)

    def padded(value: ir.IntegerValue, width: int) -> ir.StringValue:
        return value.cast("string").lpad(width, "0")

    iso = (
        padded(year, 4)
        + "-"
        + padded(month, 2)
        + "-"
        + padded(day, 2)
        + " "
        + padded(f["hour"], 2)
        + ":"
        + padded(f["minute"], 2)
        + ":"
        + padded(f["second"], 2)
        + "."
        + padded(f["micro"], 6)
    )
    return ibis.ifelse(ok.fill_null(False), iso.try_cast("timestamp"), ibis.null("timestamp"))


def _portable_dates(
    t: ir.Table, requests: list[ParseRequest], options: ParseOptions, carry: list[str]
) -> ir.Table:
    """Dates read without the engine's date parser, in staged projections.

    Per request and format: the groups of the format's regular expression
    (only on rows of its shape), then their integer fields, then the checked
    timestamp; the first format giving one wins (``__d_<key>``). A format
    the portable form does not read (``%z``) goes to the engine's parser,
    on rows of its shape only.
    """
    formats = options.all_date_formats

    def keep(table: ir.Table) -> dict[str, ir.Value]:
        return {c: table[c] for c in carry}

    groups: dict[str, ir.Value] = {}
    fallback: dict[str, ir.Value] = {}
    for r in requests:
        text = t[f"__t_{r.key}"]
        for n, fmt in enumerate(formats):
            if not _portable_supported(fmt):
                fallback[f"__dx_{r.key}_{n}"] = ibis.ifelse(
                    text.re_search(date_format_regex(fmt)),
                    text.as_timestamp(fmt),
                    ibis.null("timestamp"),
                )
                continue
            regex = _format_regex(fmt, capture=True)
            n_groups = sum(part == "directive" for part, _ in _format_parts(fmt))
            shape = text.re_search(regex)
            for g in range(n_groups):
                group = text.re_extract(regex, g + 1).nullif("")
                groups[f"__dg_{r.key}_{n}_{g}"] = ibis.ifelse(  # numbered: m and M differ
                    shape, group, ibis.null("string")
                )
    t = t.select(**keep(t), **groups, **fallback)
    fields: dict[str, ir.Value] = {}
    names: dict[tuple[str, int], list[str]] = {}
    for r in requests:
        for n, fmt in enumerate(formats):
            if not _portable_supported(fmt):
                continue
            letters = [v for part, v in _format_parts(fmt) if part == "directive"]
            found = {letter: t[f"__dg_{r.key}_{n}_{g}"] for g, letter in enumerate(letters)}
            computed = _portable_fields(found)
            names[r.key, n] = list(computed)
            for name, value in computed.items():
                fields[f"__df_{r.key}_{n}_{name}"] = value
    t = t.select(**keep(t), **fields, **{c: t[c] for c in fallback})
    dates: dict[str, ir.Value] = {}
    for r in requests:
        attempts = []
        for n in range(len(formats)):
            if (r.key, n) not in names:
                attempts.append(t[f"__dx_{r.key}_{n}"])
                continue
            f = {name: t[f"__df_{r.key}_{n}_{name}"] for name in names[r.key, n]}
            attempts.append(_portable_timestamp(f))
        dates[f"__d_{r.key}"] = ibis.coalesce(*attempts)
    return t.select(**keep(t), **dates)


_NUMBER_SHAPE = r"^\(.+\)$|^[^-].*-$"
_NUMBER = {  # the whole accepted number text, after signs in parentheses / trailing are removed
    ".": r"^[+-]?([0-9]+|[0-9]{1,3}(,[0-9]{3})+)(\.[0-9]*)?([eE][+-]?[0-9]{1,2})?$|^[+-]?\.[0-9]+$",
    ",": r"^[+-]?([0-9]+|[0-9]{1,3}(\.[0-9]{3})+)(,[0-9]*)?$|^[+-]?,[0-9]+$",
    "none": r"^[+-]?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]{1,2})?$|^[+-]?\.[0-9]+$",
}


def _number_pattern(options: ParseOptions) -> str:
    if options.decimal == ",":
        return _NUMBER[","]
    return _NUMBER["none"] if options.refuse_commas else _NUMBER["."]


def _plain_number(core: ir.StringValue, options: ParseOptions) -> ir.StringValue:
    if options.decimal == ",":
        return core.replace(".", "").replace(",", ".")
    return core.replace(",", "")


def _finite(number: ir.FloatingValue) -> ir.FloatingValue:
    """NULL for NaN and the infinities.

    Written as a range check, not ``isinf()``: Ibis compiles ``isinf()`` to
    FALSE for Spark. NaN is above every number on DuckDB, Spark and
    PostgreSQL, and unordered elsewhere: outside the range either way.
    """
    inside = (number >= -_FLOAT_MAX) & (number <= _FLOAT_MAX)
    return ibis.ifelse(inside, number, ibis.null("float64"))


def _whole(number: ir.FloatingValue) -> ir.IntegerValue:
    """A whole number of at most 2**53 in magnitude as an integer, else NULL.

    The magnitude is checked first: casting 1e300 to an integer (or taking
    its floor, which Ibis casts) is an error, not NULL, on most engines.
    """
    exact = ibis.ifelse(number.abs() <= _EXACT_INTEGER, number, ibis.null("float64"))
    return ibis.ifelse(exact == exact.floor(), exact.cast("int64"), ibis.null("int64"))


def _trim(value: ir.StringValue, engine: str) -> ir.StringValue:
    """Leading and trailing blanks removed.

    Ibis compiles ``strip()`` for Spark with a character set that also strips
    the letter ``f`` (``'finance'`` became ``'inance'``), so other engines
    trim with a regular expression.
    """
    if engine == "duckdb":
        return value.strip()
    return value.re_replace(r"^\s+|\s+$", "")


@dataclass(frozen=True)
class ParseRequest:
    """One source column to read as a kind: its parsed value becomes ``__v_<key>``."""

    key: str
    column: str
    kind: str


def parse_columns(raw: ir.Table, requests: list[ParseRequest], options: ParseOptions) -> ir.Table:
    """Parse source columns into contract types, in a few staged projections.

    Every rule is applied in its own projection (trim, strip noise, split
    the sign, check the shape, cast), so that each intermediate value is
    computed once per row: written as one nested expression, the rules
    would repeat each input many times in the engine's SQL.

    Parameters
    ----------
    raw : ibis Table
        The source as read; ``__row`` (line numbers) is kept when present.
    requests : list of ParseRequest
    options : ParseOptions

    Returns
    -------
    ibis Table
        ``__row`` (when present) and, per request, ``__v_<key>`` (the typed
        value, NULL where missing or unreadable), ``__b_<key>`` (True where a
        value is present but unreadable) and ``__r_<key>`` (the source text).
    """
    keep = ["__row"] if "__row" in raw.columns else []
    stage: dict[str, ir.Value] = {c: raw[c] for c in keep}
    typed_sources: dict[str, ParseRequest] = {}
    for r in requests:
        value = raw[r.column]
        stage[f"__r_{r.key}"] = value.cast("string")
        if value.type().is_string():
            stage[f"__t_{r.key}"] = _trim(value, options.engine).nullif("")
        else:
            typed_sources[r.key] = r
            stage[f"__t_{r.key}"] = value
    t = raw.select(**stage)
    carry = [*keep, *(f"__r_{r.key}" for r in requests), *(f"__t_{r.key}" for r in requests)]

    def passthrough(table: ir.Table) -> dict[str, ir.Value]:
        return {c: table[c] for c in carry}

    portable = [
        r
        for r in requests
        if r.kind == "date" and r.key not in typed_sources and options.engine != "duckdb"
    ]
    if portable:
        t = _portable_dates(t, portable, options, carry)
        carry += [f"__d_{r.key}" for r in portable]

    numeric = [
        r for r in requests if r.kind in ("amount", "integer") and r.key not in typed_sources
    ]
    if numeric:
        t = t.select(
            **passthrough(t),
            **{f"__c_{r.key}": t[f"__t_{r.key}"].re_replace(AMOUNT_NOISE, "") for r in numeric},
        )
        t = t.select(
            **passthrough(t),
            **{f"__neg_{r.key}": t[f"__c_{r.key}"].re_search(_NUMBER_SHAPE) for r in numeric},
            **{f"__core_{r.key}": t[f"__c_{r.key}"].re_replace(r"^\(|\)$|-$", "") for r in numeric},
        )
        pattern = _number_pattern(options)
        t = t.select(
            **passthrough(t),
            **{f"__neg_{r.key}": t[f"__neg_{r.key}"] for r in numeric},
            **{f"__core_{r.key}": t[f"__core_{r.key}"] for r in numeric},
            **{
                f"__ok_{r.key}": t[f"__core_{r.key}"].re_search(pattern)
                & (t[f"__core_{r.key}"].length() <= MAX_NUMBER_TEXT)
                for r in numeric
            },
        )
        t = t.select(  # only text of a number's shape is cast (PostgreSQL has no try cast)
            **passthrough(t),
            **{f"__neg_{r.key}": t[f"__neg_{r.key}"] for r in numeric},
            **{f"__ok_{r.key}": t[f"__ok_{r.key}"] for r in numeric},
            **{
                f"__n_{r.key}": ibis.ifelse(
                    t[f"__ok_{r.key}"].fill_null(False),
                    _plain_number(t[f"__core_{r.key}"], options).try_cast("float64"),
                    ibis.null("float64"),
                )
                for r in numeric
            },
        )
    values: dict[str, ir.Value] = {}
    for r in requests:
        text = t[f"__t_{r.key}"]
        if r.key in typed_sources:
            values[f"__v_{r.key}"] = _typed_value(r.kind, text)
        elif r.kind in ("amount", "integer"):
            n = t[f"__n_{r.key}"]
            signed = ibis.ifelse(t[f"__neg_{r.key}"].fill_null(False), -n, n)
            number = ibis.ifelse(t[f"__ok_{r.key}"].fill_null(False), signed, ibis.null("float64"))
            values[f"__v_{r.key}"] = number
        elif r.kind == "date":
            parsed = t[f"__d_{r.key}"] if r in portable else _parse_date(text, options)
            values[f"__v_{r.key}"] = parsed
        elif r.kind == "flag":
            low = text.lower()
            values[f"__v_{r.key}"] = ibis.cases(
                (low.isin(list(TRUE_WORDS)), True),
                (low.isin(list(FALSE_WORDS)), False),
                else_=ibis.null("boolean"),
            )
        else:
            values[f"__v_{r.key}"] = text
    t = t.select(**passthrough(t), **values)
    final: dict[str, ir.Value] = {}
    for r in requests:
        v = t[f"__v_{r.key}"]
        if r.kind in ("amount", "integer"):
            v = _finite(v.cast("float64"))
        final[f"__v_{r.key}"] = v
    t = t.select(**passthrough(t), **final)
    out: dict[str, ir.Value] = {c: t[c] for c in keep}
    for r in requests:
        v = t[f"__v_{r.key}"]
        if r.kind == "integer":
            v = _whole(v)
        out[f"__v_{r.key}"] = v
        out[f"__r_{r.key}"] = t[f"__r_{r.key}"]
        out[f"__b_{r.key}"] = (t[f"__t_{r.key}"].notnull() & v.isnull()).fill_null(False)
    return t.select(**out)


def _typed_value(kind: str, value: ir.Value) -> ir.Value:
    """A column that is already typed (Parquet, a database) cast to the contract type."""
    dtype = value.type()
    if kind in ("amount", "integer"):
        return value.cast("float64")
    if kind == "date":
        return value.cast("timestamp")
    if kind == "flag":
        return value if dtype.is_boolean() else value != 0
    return value.cast("string")


# --------------------------------------------------------------------------- formulas


class FormulaError(InputError, ValueError):
    """A column formula cannot be parsed or does not fit its column."""


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Text:
    value: str


@dataclass(frozen=True)
class Column:
    name: str


@dataclass(frozen=True)
class Negate:
    operand: Node


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Node
    right: Node


Node = Number | Text | Column | Negate | BinOp


@dataclass(frozen=True)
class Formula:
    """A parsed column formula: its source text and expression tree."""

    source: str
    root: Node

    @property
    def columns(self) -> tuple[str, ...]:
        """Export columns the formula reads, in order of first use."""
        return tuple(dict.fromkeys(_columns_of(self.root)))


def _columns_of(node: Node) -> Iterable[str]:
    if isinstance(node, Column):
        yield node.name
    elif isinstance(node, Negate):
        yield from _columns_of(node.operand)
    elif isinstance(node, BinOp):
        yield from _columns_of(node.left)
        yield from _columns_of(node.right)


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
      | (?P<string>'(?:[^']|'')*')
      | (?P<backtick>`[^`]+`)
      | (?P<name>[^\W\d][\w.]*)
      | (?P<op>[-+*/()])
    )""",
    re.VERBOSE,
)


def is_formula(value: str) -> bool:
    """Whether a column-map value is a formula (starts with ``=``)."""
    return str(value).lstrip().startswith("=")


def _tokens(text: str, source: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            bad = text[pos:].strip()
            bad = bad.split()[0] if bad.split() else bad
            raise FormulaError(
                f"formula {source!r}: unexpected {bad[:20]!r}; allowed are column names "
                "(in `backticks` when they hold spaces or symbols), numbers, 'text', "
                "+ - * / and parentheses"
            )
        kind = m.lastgroup
        assert kind is not None
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, body: str, source: str):
        self.text = source
        self.tokens = _tokens(body, source)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FormulaError(f"formula {self.text!r} ends too early")
        self.i += 1
        return token

    def expr(self) -> Node:
        node = self.term()
        while (tok := self.peek()) in (("op", "+"), ("op", "-")):
            self.take()
            node = BinOp(tok[1], node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while (tok := self.peek()) in (("op", "*"), ("op", "/")):
            self.take()
            node = BinOp(tok[1], node, self.unary())
        return node

    def unary(self) -> Node:
        if self.peek() == ("op", "-"):
            self.take()
            return Negate(self.unary())
        if self.peek() == ("op", "+"):
            self.take()
            return self.unary()
        return self.atom()

    def atom(self) -> Node:
        kind, text = self.take()
        if kind == "number":
            return Number(float(text))
        if kind == "string":
            return Text(text[1:-1].replace("''", "'"))
        if kind == "backtick":
            return Column(text[1:-1])
        if kind == "name":
            return self.check_call(Column(text))
        if text == "(":
            node = self.expr()
            if self.take() != ("op", ")"):
                raise FormulaError(f"formula {self.text!r}: missing ')'")
            return node
        raise FormulaError(f"formula {self.text!r}: unexpected {text!r}")

    def check_call(self, node: Node) -> Node:
        if isinstance(node, Column) and self.peek() == ("op", "("):
            raise FormulaError(
                f"formula {self.text!r}: {node.name}(...) looks like a function call; "
                "functions are not supported (use + - * / and parentheses)"
            )
        return node


def parse_formula(value: str) -> Formula:
    """Parse a column formula such as ``= Quantity * UnitPrice``.

    Parameters
    ----------
    value : str
        The column-map value, with its leading ``=``.

    Returns
    -------
    Formula

    Raises
    ------
    FormulaError
        Naming the first token that is not allowed.

    Examples
    --------
    >>> parse_formula("= Quantity * `Unit Price`").columns
    ('Quantity', 'Unit Price')
    """
    text = str(value).strip()
    if not text.startswith("="):
        raise FormulaError(f"formula {value!r} must start with '='")
    body = text[1:]
    parser = _Parser(body, text)
    if not parser.tokens:
        raise FormulaError(f"formula {value!r} is empty")
    root = parser.expr()
    if parser.peek() is not None:
        raise FormulaError(f"formula {value!r}: unexpected {parser.peek()[1]!r}")  # type: ignore[index]
    return Formula(text, root)


def check_formula_kind(formula: Formula, kind: str, target: str) -> None:
    """Check that a formula can produce a contract column of ``kind``.

    Numbers (amount, integer) take arithmetic over columns and numbers;
    text takes columns and strings joined with ``+``; dates and flags take
    a single column or string.

    Raises
    ------
    FormulaError
    """
    _kind_of(formula.root, kind, formula.source, target)


def _kind_of(node: Node, kind: str, source: str, target: str) -> None:
    numeric = kind in ("amount", "integer")
    if isinstance(node, Number) and not numeric and kind != "text":
        raise FormulaError(f"{target} = {source!r}: a number cannot be a {kind}")
    if isinstance(node, Text) and numeric:
        raise FormulaError(f"{target} = {source!r}: text {node.value!r} in a number formula")
    if isinstance(node, Negate):
        if not numeric:
            raise FormulaError(f"{target} = {source!r}: '-' needs a number column")
        _kind_of(node.operand, kind, source, target)
    if isinstance(node, BinOp):
        if kind == "text" and node.op != "+":
            raise FormulaError(f"{target} = {source!r}: text joins with '+' only")
        if kind in ("date", "flag"):
            raise FormulaError(f"{target} = {source!r}: a {kind} formula is one column or 'text'")
        _kind_of(node.left, kind, source, target)
        _kind_of(node.right, kind, source, target)


def compile_formula(formula: Formula, kind: str, leaf: Callable[[str], ir.Value]) -> ir.Value:
    """The engine expression of a formula.

    Parameters
    ----------
    formula : Formula
    kind : str
        Kind of the contract column it fills.
    leaf : callable
        Export column name -> its parsed value (see :func:`parse_columns`;
        amounts for number formulas, text for text formulas).

    Returns
    -------
    ibis Value
        NULL where an input is missing or unreadable, and for a division by 0.
    """

    def build(node: Node) -> ir.Value:
        if isinstance(node, Number):
            return ibis.literal(node.value, type="float64")
        if isinstance(node, Text):
            return ibis.literal(node.value, type="string")
        if isinstance(node, Column):
            return leaf(node.name)
        if isinstance(node, Negate):
            return -build(node.operand)
        left, right = build(node.left), build(node.right)
        if kind == "text":
            return left.cast("string").concat(right.cast("string"))
        if node.op == "+":
            return left + right
        if node.op == "-":
            return left - right
        if node.op == "*":
            return left * right
        return left / right.nullif(0)

    value = build(formula.root)
    if kind in ("amount", "integer"):
        value = _finite(value.cast("float64"))
        if kind == "integer":
            value = _whole(value)
    return value


def formula_input_kind(kind: str) -> str:
    """How the columns a formula reads are parsed, for a contract column of ``kind``."""
    return "amount" if kind in ("amount", "integer") else kind


def formula_raw_text(formula: Formula, raw: Callable[[str], ir.Value]) -> ir.StringValue:
    """``Quantity=6, UnitPrice=2.55``: the inputs of a formula, for error examples."""
    if not formula.columns:
        return ibis.literal(formula.source)
    parts: list[ir.StringValue] = []
    for i, name in enumerate(formula.columns):
        prefix = ("" if i == 0 else ", ") + f"{name}="
        parts.append(ibis.literal(prefix) + raw(name).fill_null(""))
    text = parts[0]
    for part in parts[1:]:
        text = text + part
    return text

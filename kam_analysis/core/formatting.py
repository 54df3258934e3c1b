"""Number formatting for text and tables: money (compact 万/億 or k/M), percentages, counts.

Missing values are shown as :data:`NA_TEXT`, infinite ones as :data:`INF_TEXT`;
nothing prints ``nan``, ``inf`` or ``None``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

NA_TEXT = "–"
"""How a missing number is shown in text and tables."""

INF_TEXT = "∞"
"""How an infinite number is shown (``-∞`` when negative), without unit or sign."""

NBSP = "\u00a0"
"""No-break space: joins a number to a unit written after it (``12.00 CHF``) and a
bound to its number (``> 1,000%``), so that a line never breaks between them."""

_CURRENCY_SYMBOLS = {"JPY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "CNY": "CN¥", "KRW": "₩"}
_ZERO_DECIMAL_CURRENCIES = {"JPY", "KRW"}


def is_missing(x: object) -> bool:
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


def special_text(x: object, *, signed: bool = False) -> str | None:
    """NA text for a missing value, ∞ / -∞ for an infinite one, else None."""
    if is_missing(x):
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
        ``fmt_money(-5.5, "GBP")`` → ``"-£5.50"``; a code written after the
        number is joined to it by a no-break space (:data:`NBSP`).
    """
    if (special := special_text(x)) is not None:
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
    return f"{sign}{symbol}{body}" if symbol else f"{sign}{body}{NBSP}{currency.upper()}"


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
        Beyond ``±cap`` the value is shown as ``> +1,000%`` / ``< -1,000%`` (the
        space a no-break one, :data:`NBSP`): a
        growth of +68,645 % from a tiny base says only "from almost nothing".

    Returns
    -------
    str
    """
    if (special := special_text(x, signed=signed)) is not None:
        return special
    value = float(x)  # type: ignore[arg-type]
    if cap is not None and abs(value) > cap:
        bound = f"{cap * 100:{'+' if signed or value < 0 else ''},.0f}%"
        bound = bound if value > 0 else f"-{bound.lstrip('+-')}"
        return f">{NBSP}{bound}" if value > 0 else f"<{NBSP}{bound}"
    return f"{value * 100:{'+' if signed else ''},.{digits}f}%"


def fmt_int(x: float | None) -> str:
    """Format a count with thousands separators: ``1234.6`` → ``"1,235"``.

    Missing values give :data:`NA_TEXT`, infinite ones ``∞`` / ``-∞``.
    """
    if isinstance(x, numbers.Integral) and not isinstance(x, bool):  # exact, beyond float too
        return f"{int(x):,d}"
    if (special := special_text(x)) is not None:
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
    if (special := special_text(x, signed=signed)) is not None:
        return special
    return f"{float(x):{'+' if signed else ''},.{digits}f}"  # type: ignore[arg-type]

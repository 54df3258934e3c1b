"""Translation: every label and sentence in the reports comes from the locale files.

:func:`t` looks a key up in ``kam_analysis/locale/<lang>.json`` and fills
placeholders; :func:`label_for` falls back to a readable column name.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from kam_analysis.core.errors import KamError

LANGUAGES = ("en", "ja")
"""Languages with a translation table in ``kam_analysis/locale``."""


class TranslationKeyError(KamError, KeyError):
    """A label key is missing from a locale file."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0])


def check_language(lang: object) -> str:
    """Check a language code against :data:`LANGUAGES`.

    Parameters
    ----------
    lang : object
        Language code such as ``"en"`` or ``"ja"``.

    Returns
    -------
    str
        ``lang`` itself, for use in an expression.

    Raises
    ------
    ValueError
        For a language without a locale file.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; available: {', '.join(LANGUAGES)}")
    return str(lang)


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
    check_language(lang)
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

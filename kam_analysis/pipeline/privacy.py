"""Personal data: scan a run's output files for stakeholder names and e-mail addresses."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


_TEXT_SUFFIXES = {".ipynb", ".html", ".json", ".log", ".txt", ".csv", ".md", ".svg"}
"""Output files scanned for personal data."""


def _mask(value: str) -> str:
    return f"{value[:1]}*** ({len(value)} chars)"


_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def normalise_for_scan(text: str) -> str:
    """Text as a reader sees it, for the personal-data scan.

    HTML entities in any form (``O&#39;Brien``, ``&amp;``) and JSON ``\\u00e9``
    escapes are decoded, Unicode is NFKC-normalised (full-width letters,
    no-break spaces), runs of blanks become one space, and case is folded.
    """
    text = html.unescape(text)
    text = _JSON_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"\s+", " ", text).casefold()


def _scan_text(path: Path) -> str:
    text = path.read_text(encoding="utf-8", errors="replace")
    # skip what cannot hold names but makes the text large: inline images and CSS
    text = re.sub(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\\n]+", "", text)
    text = re.sub(r'"image/(?:png|jpeg)": "[A-Za-z0-9+/=\\n]*"', "", text)
    text = re.sub(r"<style[^>]*>.*?</style>", "", text, flags=re.DOTALL | re.IGNORECASE)
    return normalise_for_scan(text)


def find_personal_data(folder: Path, values: Iterable[str]) -> list[tuple[str, str]]:
    """Files under ``folder`` that contain one of ``values`` (names, e-mail addresses).

    Both the files and the values are compared after
    :func:`normalise_for_scan` (entities, JSON escapes, NFKC, blanks, case).
    ASCII values match as whole words only (``"Ann"`` does not match
    ``"Annual"``) and need at least 2 characters; other values (Japanese names
    such as 田中) match anywhere.
    Inline images and ``<style>`` blocks are skipped.

    Parameters
    ----------
    folder : Path
    values : iterable of str

    Returns
    -------
    list of (relative file path, masked value)
        Masked like ``"J*** (10 chars)"``, so the list can be logged.
    """
    needles: dict[str, tuple[str, re.Pattern[str] | None]] = {}
    for raw in values:
        if raw is None:
            continue
        value = str(raw).strip()
        form = normalise_for_scan(value).strip()
        if len(form) < 2:
            continue
        is_word = form.isascii() and form[:1].isalnum() and form[-1:].isalnum()
        pattern = (
            re.compile(r"(?<![a-z0-9])" + re.escape(form) + r"(?![a-z0-9])") if is_word else None
        )
        needles[value] = (form, pattern)
    hits: list[tuple[str, str]] = []
    if not needles:
        return hits
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in _TEXT_SUFFIXES:
            continue
        text = _scan_text(path)
        for value, (form, pattern) in needles.items():
            if form in text and (pattern is None or pattern.search(text)):
                hits.append((path.relative_to(folder).as_posix(), _mask(value)))
    return hits

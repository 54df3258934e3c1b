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
    needles: dict[str, tuple[str, bool]] = {}
    for raw in values:
        if raw is None:
            continue
        value = str(raw).strip()
        form = normalise_for_scan(value).strip()
        if len(form) < 2:
            continue
        needles[value] = (form, form.isascii() and form[:1].isalnum() and form[-1:].isalnum())
    hits: list[tuple[str, str]] = []
    if not needles:
        return hits
    index = _NeedleIndex(list(needles.values()))
    names = list(needles)
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in _TEXT_SUFFIXES:
            continue
        text = _scan_text(path)
        for i in index.candidates(text):
            form, is_word = needles[names[i]]
            if form in text and (not is_word or _whole_word(form).search(text)):
                hits.append((path.relative_to(folder).as_posix(), _mask(names[i])))
    return hits


_WORD = re.compile(r"[a-z0-9]+")


def _whole_word(form: str) -> re.Pattern[str]:
    """``form`` not inside a longer run of ASCII letters and digits."""
    return re.compile(r"(?<![a-z0-9])" + re.escape(form) + r"(?![a-z0-9])")


class _NeedleIndex:
    """Which needles can occur in a text, found without searching for each one.

    Every run of ``[a-z0-9]`` of a whole-word needle (:func:`_whole_word`)
    is a whole run of the text where the needle occurs, so the needle is
    indexed under its rarest run and searched only when all its runs are
    runs of the text. Any other needle can only occur where its first two
    characters do. A book with 270,000 stakeholders gives half a million
    names and addresses, too many to search every page for each.
    """

    def __init__(self, needles: list[tuple[str, bool]]) -> None:
        self.runs: dict[int, frozenset[str]] = {}
        self.by_word: dict[str, list[int]] = {}
        self.by_pair: dict[str, list[int]] = {}
        for i, (form, is_word) in enumerate(needles):
            if is_word:
                self.runs[i] = frozenset(_WORD.findall(form))
            else:
                self.by_pair.setdefault(form[:2], []).append(i)
        counts: dict[str, int] = {}
        for runs in self.runs.values():
            for run in runs:
                counts[run] = counts.get(run, 0) + 1
        for i, runs in self.runs.items():
            rarest = min(runs, key=lambda run: (counts[run], run))
            self.by_word.setdefault(rarest, []).append(i)

    def candidates(self, text: str) -> list[int]:
        """Needle numbers that may occur in ``text``, in the order they were given."""
        found: list[int] = []
        if self.by_word:
            words = set(_WORD.findall(text))
            for word in words & self.by_word.keys():
                found.extend(i for i in self.by_word[word] if self.runs[i] <= words)
        if self.by_pair:
            pairs = {text[k : k + 2] for k in range(len(text) - 1)}
            for pair in pairs & self.by_pair.keys():
                found.extend(self.by_pair[pair])
        return sorted(found)

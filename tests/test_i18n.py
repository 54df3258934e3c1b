"""One translation path: the texts of the KPI and stakeholder modules come from the locale
files through kam_analysis.core.i18n, never from inline English/Japanese tables."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from kam_analysis import kpi
from kam_analysis.core.i18n import LANGUAGES, check_language, t, translations
from kam_analysis.core.schemas import ROLES, STANCES

PACKAGE = Path(kpi.__file__).resolve().parent
TRANSLATED_MODULES = (
    PACKAGE / "kpi.py",
    PACKAGE / "stakeholders.py",
    PACKAGE / "report" / "charts" / "stakeholders.py",
)
KEY = re.compile(r"(?:kpi|stakeholders)(?:\.[a-z0-9_]+)+")
"""A literal locale key of these modules (text with a space or a trailing dot is not)."""

EXPANSIONS: dict[str, tuple[str, ...]] = {
    "kpi.name.": kpi.KPI_IDS,
    "kpi.definition.": kpi.KPI_IDS,
    "kpi.family.": kpi.FAMILIES,
    "kpi.horizon.": tuple(dict.fromkeys(kpi.KPI_DEFINITIONS["horizon"])),
    "kpi.unit.": kpi._UNITS_WITH_TEXT,
    "stakeholders.": (*ROLES, *STANCES),
}
"""Prefix of each computed key (``t(f"kpi.name.{kpi_id}", ...)``) -> the values it takes."""


def _is_t_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and bool(node.args)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "t")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "t")
        )
    )


def _keys_in(path: Path) -> tuple[set[str], set[str]]:
    """Literal keys and the prefixes of f-string keys passed to ``t`` in a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    literal: set[str] = set()
    prefixes: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if KEY.fullmatch(node.value):
                literal.add(node.value)
        if _is_t_call(node) and isinstance(node.args[0], ast.JoinedStr):
            head = node.args[0].values[0]
            assert isinstance(head, ast.Constant), ast.unparse(node)
            prefixes.add(head.value)
    return literal, prefixes


def test_every_key_used_by_kpi_and_stakeholders_exists_in_every_locale():
    literal: set[str] = set()
    prefixes: set[str] = set()
    for path in TRANSLATED_MODULES:
        keys, pre = _keys_in(path)
        literal |= keys
        prefixes |= pre
    # the scan sees the keys (a sanity check on the parser, not a count to keep)
    assert {"kpi.note.later_lines", "kpi.omission.no_usage", "kpi.driver"} <= literal
    assert {"stakeholders.risk.single_threaded", "stakeholders.map_title"} <= literal
    unknown = prefixes - set(EXPANSIONS)
    assert not unknown, f"computed keys {unknown}: add their values to EXPANSIONS"
    expanded = {p + v for p in prefixes for v in EXPANSIONS[p]}
    for lang in LANGUAGES:
        table = translations(lang)
        missing = sorted(k for k in literal | expanded if k not in table)
        assert not missing, f"missing from {lang}.json: {missing}"


def test_kpi_texts_render_in_both_languages_with_the_same_placeholders():
    """Each kpi.* text the module fills has the values the code passes."""
    values = {"kpi": "NPS", "reason": "x", "n": 3, "date": "2025-06-30", "period": "FY2025"}
    for key in ("kpi.note.omitted", "kpi.note.later_lines", "kpi.note.history_from"):
        for lang in LANGUAGES:
            assert "{" not in t(key, lang, **values), (key, lang)
    assert t("kpi.driver", "en", kpi="NPS", points=12.4) == "NPS −12 pts"
    assert t("kpi.driver", "ja", kpi="NPS", points=12.4) == "NPS −12点"
    assert t("stakeholders.risk.detail_share", "ja", share=0.75) == "1名が活動の75%を占める"


def test_no_inline_japanese_tables_outside_i18n():
    """No ``{"en": ..., "ja": ...}`` dict (or ``dict(ja=...)``) in the package: texts live
    in the locale files. Exceptions: none."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "core" / "i18n.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict) and any(
                isinstance(k, ast.Constant) and k.value == "ja" for k in node.keys
            ):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "dict"
                and any(kw.arg == "ja" for kw in node.keywords)
            ):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, offenders


def test_kpi_and_stakeholders_do_not_read_the_locale_files_themselves():
    for path in TRANSLATED_MODULES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        # no own reading of the locale JSON, no translation of English text by pattern
        assert not imported & {"json", "importlib", "importlib.resources", "re"}, path.name


def test_check_language():
    assert check_language("ja") == "ja"
    with pytest.raises(ValueError, match="unknown language 'de'; available: en, ja"):
        check_language("de")
    with pytest.raises(ValueError, match="unknown language"):
        t("kpi.driver", "fr")

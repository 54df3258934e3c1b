"""Notebook parameters: read the tagged parameters cell, check and convert ``-p`` values."""

from __future__ import annotations

import ast
import contextlib
import io
import keyword
import math
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kam_analysis.pipeline.errors import ParameterError, ReportError

if TYPE_CHECKING:
    pass


RUNNER_PARAMETERS = ("data_dir", "as_of", "config_path", "lang", "show_personal_data", "account_id")
"""Parameters the runner sets itself (not settable with ``-p``)."""


@dataclass(frozen=True)
class ParameterInfo:
    """One parameter declared in a notebook's ``parameters`` cell."""

    name: str
    type: str
    """``"str"``, ``"int"``, ``"float"``, ``"bool"`` or ``"any"``."""
    optional: bool
    """Accepts None."""
    default: Any
    """The literal default (None when it is not a literal)."""
    help: str
    """The comment on the declaration line."""
    source: str
    """The declaration as written."""
    minimum: float | None = None
    """Smallest allowed value, from a ``[min, max]`` range at the end of the comment."""
    maximum: float | None = None
    """Largest allowed value (``[1, ]`` leaves it open)."""

    def range_text(self) -> str:
        """``[1, 10000]``, ``>= 1`` or ``<= 1`` for messages ("" without a range)."""
        if self.minimum is not None and self.maximum is not None:
            return f"[{self.minimum:g}, {self.maximum:g}]"
        if self.minimum is not None:
            return f">= {self.minimum:g}"
        if self.maximum is not None:
            return f"<= {self.maximum:g}"
        return ""


_RANGE = re.compile(r"\[\s*(-?[0-9.]+(?:e-?[0-9]+)?)?\s*,\s*(-?[0-9.]+(?:e-?[0-9]+)?)?\s*\]\s*$")


def _declared_range(comment: str) -> tuple[float | None, float | None]:
    """``[min, max]`` at the end of a parameter's comment (either bound may be empty)."""
    m = _RANGE.search(comment)
    if not m:
        return None, None
    low, high = (float(x) if x else None for x in m.groups())
    return low, high


_SIMPLE_TYPES = {"str", "int", "float", "bool"}


def _annotation_type(node: ast.expr | None) -> tuple[str | None, bool]:
    if node is None:
        return None, False
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return _annotation_type(ast.parse(node.value, mode="eval").body)
        except SyntaxError:
            return "any", False
    if isinstance(node, ast.Name):
        return (node.id if node.id in _SIMPLE_TYPES else "any"), False
    if isinstance(node, ast.Constant) and node.value is None:
        return None, True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, lopt = _annotation_type(node.left)
        right, ropt = _annotation_type(node.right)
        kinds = {k for k in (left, right) if k is not None}
        return (kinds.pop() if len(kinds) == 1 else "any"), lopt or ropt
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name | ast.Attribute):
        outer = node.value.id if isinstance(node.value, ast.Name) else node.value.attr
        if outer == "Optional":
            inner, _ = _annotation_type(node.slice)
            return inner, True
        if outer == "Union" and isinstance(node.slice, ast.Tuple):
            kinds, opt = set(), False
            for elt in node.slice.elts:
                k, o = _annotation_type(elt)
                opt = opt or o
                if k is not None:
                    kinds.add(k)
            return (kinds.pop() if len(kinds) == 1 else "any"), opt
    return "any", False


def _line_comments(source: str) -> dict[int, str]:
    comments: dict[int, str] = {}
    with contextlib.suppress(tokenize.TokenError, IndentationError):
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = tok.string.lstrip("#").strip()
    return comments


def _parameters_cell(nb: Any, path: Path) -> str:
    cells = [
        c
        for c in nb.cells
        if c.cell_type == "code" and "parameters" in c.get("metadata", {}).get("tags", [])
    ]
    if not cells:
        raise ReportError(f"{path}: no cell tagged 'parameters' (see the notebook contract)")
    if len(cells) > 1:
        raise ReportError(f"{path}: {len(cells)} cells tagged 'parameters'; keep exactly one")
    return cells[0].source


def notebook_parameters(path: Path) -> dict[str, ParameterInfo]:
    """Parameters declared in a notebook's ``parameters`` cell.

    Parsed with :mod:`ast` (papermill's own inspection misses ``str | None``).

    Parameters
    ----------
    path : Path
        The notebook.

    Returns
    -------
    dict
        Name -> :class:`ParameterInfo`, in declaration order.

    Raises
    ------
    ReportError
        When the notebook is missing, has no or several parameters cells, or the
        cell is not valid Python.
    """
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise ReportError(f"notebook not found: {path}")
    nb = nbformat.read(path, as_version=4)
    source = _parameters_cell(nb, path)
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise ReportError(f"{path}: parameters cell is not valid Python: {err}") from None
    comments = _line_comments(source)
    lines = source.splitlines()
    out: dict[str, ParameterInfo] = {}
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, annotation, value = node.target.id, node.annotation, node.value
        elif (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            name, annotation, value = node.targets[0].id, None, node.value
        else:
            continue
        try:
            default = ast.literal_eval(value) if value is not None else None
            literal = True
        except ValueError:
            default, literal = None, False
        kind, optional = _annotation_type(annotation)
        if kind is None:
            if literal and isinstance(default, bool):
                kind = "bool"
            elif literal and type(default).__name__ in _SIMPLE_TYPES:
                kind = type(default).__name__
            else:
                kind = "str" if literal and default is None else "any"
        optional = optional or (literal and default is None)
        comment = comments.get(node.lineno, "")
        low, high = _declared_range(comment)
        out[name] = ParameterInfo(
            name=name,
            type=kind,
            optional=optional,
            default=default,
            help=comment,
            source=lines[node.lineno - 1].strip() if node.lineno <= len(lines) else "",
            minimum=low,
            maximum=high,
        )
    return out


_TRUE = {"true", "yes", "on", "1", "y", "t"}
_FALSE = {"false", "no", "off", "0", "n", "f"}


def coerce_parameter(value: Any, info: ParameterInfo, *, notebook: str = "") -> Any:
    """Convert a parameter value (usually a ``-p`` string) to the declared type and range.

    A number must lie in the range the declaration's comment ends with
    (``draws: int = 2000  # simulated paths [100, 100000]``).

    Parameters
    ----------
    value : str or scalar
        ``"3"``, ``"true"``, ``"none"``, ... Non-strings are type-checked only.
    info : ParameterInfo
        The declaration.
    notebook : str
        For messages.

    Returns
    -------
    bool, int, float, str or None

    Raises
    ------
    ParameterError
        Naming the parameter, the notebook, the declaration and the value.
    """
    converted = _coerce_type(value, info, notebook)
    if isinstance(converted, int | float) and not isinstance(converted, bool):
        low, high = info.minimum, info.maximum
        if isinstance(converted, float) and not math.isfinite(converted):
            raise ParameterError(f"parameter {info.name!r} must be a finite number, got {value!r}")
        if (low is not None and converted < low) or (high is not None and converted > high):
            where = f" of {notebook}" if notebook else ""
            raise ParameterError(
                f"parameter {info.name!r}{where} must be in {info.range_text()} "
                f"(declared `{info.source}`), got {value!r}"
            )
    return converted


def _coerce_type(value: Any, info: ParameterInfo, notebook: str) -> Any:
    def bad(expected: str) -> ParameterError:
        where = f" of {notebook}" if notebook else ""
        return ParameterError(
            f"parameter {info.name!r}{where} expects {expected} (declared `{info.source}`), "
            f"got {value!r}"
        )

    if not isinstance(value, str):
        if value is None:
            if info.optional or info.type == "any":
                return None
            raise bad(info.type)
        ok = {
            "bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, int | float) and not isinstance(value, bool),
            "str": isinstance(value, str),
            "any": True,
        }[info.type]
        if not ok:
            raise bad(info.type)
        return float(value) if info.type == "float" else value
    text = value.strip()
    if info.optional and text.lower() in ("none", "null", ""):
        return None
    if info.type == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise bad("true/false")
    if info.type == "int":
        try:
            return int(text)
        except ValueError:
            raise bad("an integer") from None
    if info.type == "float":
        try:
            return float(text)
        except ValueError:
            raise bad("a number") from None
    return value


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ParameterError(
            f"parameter name {name!r} is not a Python identifier (letters, digits, underscore)"
        )

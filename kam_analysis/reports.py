"""The report pipeline: run the report notebooks for one dataset and date, publish HTML.

:func:`run_reports` is what ``kam run`` calls. It validates the data, executes
every report notebook with papermill in a child process, exports each executed
notebook to a code-free, offline HTML page, writes ``manifest.json`` and
publishes the run folder atomically. :func:`list_runs` and :func:`show_run` back
``kam reports list`` / ``kam reports show``.

Notebook contract
-----------------
Every report notebook (``notebooks/*.ipynb``) follows these rules; the runner
checks the first two.

1. **One parameters cell**, tagged ``parameters`` (papermill), declaring typed,
   commented parameters with defaults that run on the demo data::

       data_dir: str = "../data/demo"  # dataset folder
       as_of: str = "2026-03-31"  # analysis date, YYYY-MM-DD
       config_path: str | None = None  # kam.toml, None = defaults
       lang: str = "en"  # "en" or "ja"
       show_personal_data: bool = False  # True only for internal runs
       account_id: str = "A0001"  # per-account plans only

   The runner passes only the names a notebook declares. ``data_dir`` and
   ``config_path`` arrive as absolute paths, ``as_of`` as ``YYYY-MM-DD``. Extra
   ``-p name=value`` parameters must be declared by at least one selected
   notebook; the string value is converted to the type of the declaration
   (annotation, else the default's type): ``bool`` (true/false/yes/no/1/0),
   ``int``, ``float``, ``str``; ``none``/``null`` for optional ones.
2. **Every code cell runs top to bottom.** A cell that raises, a kernel that
   dies, a cell over the cell timeout, a notebook over the run timeout, or a
   notebook that stops early (``sys.exit()``) fails the run.
3. **No code, warnings or logs for stakeholders**: input cells are hidden in
   the HTML and stderr output is dropped, but notebooks should still silence
   warnings at the source. Tag a cell ``remove-cell`` to drop it from the HTML,
   ``remove-output`` to drop its output. Do not use LaTeX (no MathJax offline).
4. **Text reaches a page only through** :class:`kam_analysis.report.page.Page`
   (``page.say``, ``page.note``, ``page.table``, ``page.chart``): it renders the
   locale templates to HTML itself and escapes every value, so data can never
   become a link, an image, a heading or math.
5. **Personal data**: with ``show_personal_data=False`` show stakeholders as
   :func:`kam_analysis.stakeholders.pseudonym` values. The runner scans every output file for the
   dataset's names and e-mail addresses and fails the run if one appears.
6. **Key numbers for the manifest** are recorded with :func:`record` (written
   to the JSON file named by the ``KAM_RECORD_FILE`` environment variable, which
   the runner sets per notebook; a no-op in JupyterLab). scrapbook is not used.
7. Labels come from the locale files through ``Page``, which also applies
   :func:`kam_analysis.plots.set_report_style(lang)`.

Run folder
----------
``reports/<run_id>/`` holds ``<name>.ipynb`` (executed), ``<name>.html``,
optional ``<name>.png`` screenshots, ``logs/<name>.log`` (papermill's stderr),
``index.html`` and ``manifest.json``. Per-account plans are named
``<plan>--<account>`` with the account id reduced to ``[A-Za-z0-9_-]`` (plus a
short hash when that changed it). The run id is a UTC timestamp
``YYYYMMDDTHHMMSSZ`` plus the sanitised label, plus a random suffix when needed,
so ids sort by start time and two concurrent runs never share a folder.

The run is built in ``reports/.tmp-<run_id>-<pid>/`` and published with one
``os.rename``; ``reports/latest`` (a symlink, replaced atomically) moves only to
successful runs; failed runs are published with ``status: failed`` for
debugging. Invalid data, bad parameters and interruptions publish nothing.

Exit codes of :class:`RunResult` follow the CLI: 0 success, 1 a notebook or
check failed, 2 invalid data (parameter problems raise :class:`ParameterError`,
also exit 2 in the CLI), 130 interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import hashlib
import html
import io
import json
import keyword
import math
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tokenize
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_OK",
    "RECORD_ENV",
    "NotebookSpec",
    "ParameterError",
    "PageCheck",
    "ParameterInfo",
    "ReportError",
    "ReportSettings",
    "RunResult",
    "browser_check",
    "coerce_parameter",
    "find_chromium",
    "find_personal_data",
    "list_runs",
    "make_run_id",
    "notebook_parameters",
    "record",
    "record_path",
    "run_reports",
    "safe_name",
    "show_run",
]

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130
RECORD_ENV = "KAM_RECORD_FILE"
"""Environment variable naming the JSON sidecar that :func:`record` writes."""

RUNNER_PARAMETERS = ("data_dir", "as_of", "config_path", "lang", "show_personal_data", "account_id")
"""Parameters the runner sets itself (not settable with ``-p``)."""

_TEXT_SUFFIXES = {".ipynb", ".html", ".json", ".log", ".txt", ".csv", ".md", ".svg"}
_RUN_ID = re.compile(r"^\d{8}T\d{6}Z(?:-[A-Za-z0-9_-]+)?$")


class ReportError(ValueError):
    """The report run cannot start: bad settings, missing notebook, missing tool."""


class ParameterError(ReportError):
    """A parameter is unknown to every selected notebook, malformed or of the wrong type."""


# --------------------------------------------------------------------------- notebook helpers


def record_path() -> Path | None:
    """The JSON sidecar :func:`record` writes to, or None outside a report run.

    Returns
    -------
    Path or None
        ``$KAM_RECORD_FILE`` when set (the runner sets it per notebook).
    """
    value = os.environ.get(RECORD_ENV)
    return Path(value) if value else None


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()  # numpy / pandas scalars
    if isinstance(value, dt.date):  # datetime and pandas Timestamp too
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def record(name: str, value: Any) -> None:
    """Record a key number of a report for the run manifest.

    A no-op outside a report run (no ``KAM_RECORD_FILE``), so notebooks call it
    unconditionally.

    Parameters
    ----------
    name : str
        Identifier-like key (``"n_key_accounts"``); a second call replaces the value.
    value : JSON-serialisable
        Numbers, strings, booleans, lists, dicts; numpy scalars and dates are converted.

    Raises
    ------
    ValueError
        For an empty name or a value that cannot be stored as JSON.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError("record: name must be a non-empty string")
    path = record_path()
    value = _jsonable(value)
    try:
        json.dumps(value, allow_nan=True)
    except TypeError as err:
        raise ValueError(f"record({name!r}): value is not JSON-serialisable: {err}") from None
    if path is None:
        return
    data: dict[str, Any] = {}
    if path.is_file():
        with contextlib.suppress(ValueError, OSError):
            data = json.loads(path.read_text(encoding="utf-8"))
    data[name] = value
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- settings

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"


class NotebookSpec(BaseModel):
    """One report notebook of the run."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=_NAME_PATTERN, description="Output file stem, e.g. 01_account_valuation."
    )
    path: str = Field(description="Notebook path relative to the project root.")
    title_en: str = Field(description="Report title in English.")
    title_ja: str = Field(description="Report title in Japanese.")
    parameters: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="Extra parameters for this notebook (declared in it)."
    )

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        p = Path(value)
        if p.is_absolute() or ".." in p.parts:
            raise ValueError("must be a path inside the project (relative, without '..')")
        if p.suffix != ".ipynb":
            raise ValueError("must name a .ipynb file")
        return value

    def title(self, lang: str) -> str:
        """The title in ``lang`` (``"ja"`` → Japanese, otherwise English)."""
        return self.title_ja if lang == "ja" else self.title_en


def _spec(name: str, en: str, ja: str) -> NotebookSpec:
    return NotebookSpec(name=name, path=f"notebooks/{name}.ipynb", title_en=en, title_ja=ja)


def default_notebooks() -> list[NotebookSpec]:
    """The portfolio report notebooks, in run order."""
    return [
        _spec("01_account_valuation", "Account valuation", "アカウント評価"),
        _spec("02_segmentation", "Segmentation", "セグメンテーション"),
        _spec("03_ltv_forecasting", "LTV forecasting", "LTV予測"),
        _spec("04_scenario_planning", "Scenario planning", "シナリオプランニング"),
        _spec("05_kpi_scorecard", "KPI scorecard", "KPIスコアカード"),
    ]


class ReportSettings(BaseModel):
    """``[reports]`` in ``kam.toml``: which notebooks run and how."""

    model_config = ConfigDict(extra="forbid")

    notebooks: list[NotebookSpec] = Field(
        default_factory=default_notebooks, description="Portfolio reports, in order."
    )
    account_plan: NotebookSpec | None = Field(
        default_factory=lambda: _spec("10_account_plan", "Account plan", "アカウントプラン"),
        description="Per-account plan notebook, run once per key account (None: no plans).",
    )
    account_plan_top_n: int = Field(
        10, ge=0, description="Account plans for this many top key accounts (0: none)."
    )
    jobs: int = Field(1, ge=1, le=64, description="Notebooks run in parallel.")
    kernel_name: str = Field("kam-analysis", description="Jupyter kernel for the notebooks.")
    cell_timeout: int = Field(600, ge=1, description="Seconds one cell may run.")
    run_timeout: int = Field(3600, ge=1, description="Seconds one notebook may run in total.")
    show_personal_data: bool = Field(
        False, description="Show stakeholder names (internal runs only); off = scan and refuse."
    )
    screenshots: bool = Field(False, description="PNG screenshot of every page (needs Chromium).")

    @model_validator(mode="after")
    def _unique_names(self) -> ReportSettings:
        names = [nb.name for nb in self.notebooks]
        if self.account_plan is not None:
            names.append(self.account_plan.name)
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"notebook names must be unique; repeated: {dupes}")
        return self


# --------------------------------------------------------------------------- parameters


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


# --------------------------------------------------------------------------- names and ids


def safe_name(value: str, *, max_length: int = 40) -> str:
    """A file-name-safe form of a value: ``[A-Za-z0-9_-]`` only, hash-suffixed when changed.

    Parameters
    ----------
    value : str
        E.g. an account id such as ``"ACME/01"``.
    max_length : int, default 40

    Returns
    -------
    str
        ``"A0001"`` stays ``"A0001"``; ``"ACME/01"`` → ``"ACME_01-1b2c3d"``; two
        different values never map to the same name unless they already were one.
    """
    text = str(value)
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", text)[:max_length].strip("_-")
    if clean == text and clean:
        return clean
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:6]
    return f"{clean}-{digest}" if clean else f"id-{digest}"


def _safe_label(label: str | None) -> str:
    if not label:
        return ""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", label).strip("-_")[:40]


def make_run_id(
    label: str | None = None, *, now: dt.datetime | None = None, suffix: bool = False
) -> str:
    """A sortable run id: ``20261129T021500Z`` + ``-<label>`` (+ ``-<4 hex>``).

    Parameters
    ----------
    label : str, optional
        Free text; reduced to ``[A-Za-z0-9_-]`` (never used raw in a path).
    now : datetime, optional
        Start time (UTC); default now.
    suffix : bool, default False
        Append a random 4-hex-digit suffix.

    Returns
    -------
    str
    """
    now = now or dt.datetime.now(dt.UTC)
    run_id = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    if clean := _safe_label(label):
        run_id += f"-{clean}"
    if suffix:
        run_id += f"-{secrets.token_hex(2)}"
    return run_id


def _reserve_run_id(reports_dir: Path, label: str | None, now: dt.datetime) -> tuple[str, Path]:
    for attempt in range(50):
        run_id = make_run_id(label, now=now, suffix=attempt > 0)
        if (reports_dir / run_id).exists():
            continue
        marker = reports_dir / f".reserve-{run_id}"
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{os.getpid()}\n")  # the owner, for the clean-up of a killed run
        return run_id, marker
    raise ReportError(f"could not reserve a run id in {reports_dir}")  # pragma: no cover


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_work(reports_dir: Path) -> list[str]:
    """Remove the build folders and run-id reservations of runs whose process is gone.

    A run killed with ``kill -9`` (what a scheduler does after its timeout)
    cannot clean up after itself: its ``.tmp-<run_id>-<pid>`` folder and
    ``.reserve-<run_id>`` marker stay behind. The next run removes those whose
    process no longer exists; live runs' folders are left alone.

    Returns
    -------
    list of str
        Names removed.
    """
    removed: list[str] = []
    if not reports_dir.is_dir():
        return removed
    for path in sorted(reports_dir.glob(".tmp-*")):
        pid_text = path.name.rsplit("-", 1)[-1]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    for path in sorted(reports_dir.glob(".reserve-*")):
        try:
            pid_text = path.read_text().strip()
        except OSError:
            continue
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


# --------------------------------------------------------------------------- manifest parts


def _utc(ts: float | None = None) -> str:
    moment = dt.datetime.fromtimestamp(ts if ts is not None else time.time(), dt.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _input_files(data_dir: Path) -> list[dict[str, Any]]:
    """Every data file (not hidden, not in ``_``/``.`` folders) with size and SHA-256."""
    files = []
    for path in sorted(data_dir.rglob("*")):
        rel = path.relative_to(data_dir)
        if any(part.startswith((".", "_")) for part in rel.parts) or not path.is_file():
            continue
        files.append({"path": rel.as_posix(), "size": path.stat().st_size, "sha256": _sha256(path)})
    return files


def _config_record(config_path: Path | None) -> dict[str, Any] | None:
    if config_path is None:
        return None
    raw = config_path.read_bytes()
    entry: dict[str, Any] = {
        "path": str(config_path),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "content": _SECRET_SETTING.sub(r"\1\"***\"", raw.decode("utf-8", errors="replace")),
        "parsed": None,
    }
    if config_path.suffix == ".toml":
        import tomllib

        with contextlib.suppress(tomllib.TOMLDecodeError, UnicodeDecodeError):
            parsed = tomllib.loads(raw.decode("utf-8-sig"))
            if parsed.get("stakeholders", {}).get("pseudonym_salt"):
                parsed["stakeholders"]["pseudonym_salt"] = "***"
            entry["parsed"] = parsed
    return entry


_SECRET_SETTING = re.compile(r"(?m)^(\s*pseudonym_salt\s*=\s*).*$")
"""A salt written into kam.toml: never copied into a run's manifest."""


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in (
        "kam-analysis",
        "pandas",
        "numpy",
        "duckdb",
        "ibis-framework",
        "papermill",
        "nbconvert",
        "matplotlib",
        "pandera",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _git(project_root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=project_root, capture_output=True, text=True, timeout=15
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _git_state(project_root: Path) -> tuple[str | None, bool | None]:
    commit = _git(project_root, "rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = _git(project_root, "status", "--porcelain", "--untracked-files=no")
    return commit, (None if status is None else bool(status))


# --------------------------------------------------------------------------- personal data


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


# --------------------------------------------------------------------------- screenshots

_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary, or None (install with ``apt-get install chromium``)."""
    for candidate in ("/usr/bin/chromium", *_CHROMIUM_NAMES):
        found = shutil.which(candidate)
        if found:
            return found
    return None


_CONSOLE_LINE = re.compile(r":CONSOLE(?::|\()\d*\)?\]\s*(.*)$")


@dataclass
class PageCheck:
    """What headless Chromium saw when it loaded a report page."""

    console: list[str]
    """Console messages (``console.error``/``warn``/``log``, uncaught exceptions)."""
    dom: str
    """The document after load, serialised (empty when a screenshot was taken)."""
    error: str | None = None
    """Chromium could not load the page (timeout, crash); None when it did."""
    requests: list[str] = field(default_factory=list)
    """Network requests the page made (``GET http://...``, ``CONNECT host:443``): every
    one is refused by a local proxy, so a report can never reach the network, and
    listed here (a report should make none)."""
    browser_requests: list[str] = field(default_factory=list)
    """Requests Chromium makes on its own, for any page (component updates, sign-in):
    refused too, listed apart (:data:`CHROMIUM_OWN_HOSTS`)."""


CHROMIUM_OWN_HOSTS = (
    "update.googleapis.com",
    "accounts.google.com",
    "clients2.google.com",
    "clientservices.googleapis.com",
    "optimizationguide-pa.googleapis.com",
    "safebrowsing.googleapis.com",
    "redirector.gvt1.com",
    "edgedl.me.gvt1.com",
)
"""Hosts headless Chromium contacts whatever the page (seen on a blank page here)."""


def _request_host(request: str) -> str:
    target = request.split(" ", 1)[-1]
    target = target.split("://", 1)[-1]
    return target.split("/", 1)[0].rsplit(":", 1)[0].lower()


class _RefusingProxy:
    """A local HTTP proxy that refuses and records every request Chromium makes."""

    def __init__(self) -> None:
        import socketserver

        self.requests: list[str] = []
        requests = self.requests

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(8192).decode("latin-1").strip()
                if line:
                    requests.append(" ".join(line.split()[:2]))
                self.wfile.write(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> _RefusingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def browser_check(
    page: Path, *, chromium: str | None = None, screenshot: Path | None = None, timeout: int = 120
) -> PageCheck:
    """Load a page in headless Chromium; collect console messages and the DOM or a PNG.

    Parameters
    ----------
    page : Path
        An HTML file.
    chromium : str, optional
        Browser binary; default :func:`find_chromium`.
    screenshot : Path, optional
        Write a 1280 px wide PNG here instead of returning the DOM.
    timeout : int, default 120
        Seconds before Chromium is stopped.

    Returns
    -------
    PageCheck

    Raises
    ------
    ReportError
        When no Chromium is installed.
    """
    binary = chromium or find_chromium()
    if binary is None:
        raise ReportError("Chromium is not installed (apt-get install -y chromium)")
    profile = tempfile.mkdtemp(prefix="kam-chromium-")
    action = (
        [f"--screenshot={screenshot}", "--window-size=1280,2000"]
        if screenshot is not None
        else ["--dump-dom"]
    )
    try:
        with _RefusingProxy() as proxy:
            proc = _run_chromium(binary, profile, proxy.address, action, page, timeout)
            seen = list(proxy.requests)
    except subprocess.TimeoutExpired:
        return PageCheck([], "", f"Chromium timed out after {timeout} s")
    except OSError as err:
        return PageCheck([], "", f"Chromium failed to start: {err}")
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    console = [m.group(1) for line in proc.stderr.splitlines() if (m := _CONSOLE_LINE.search(line))]
    own = [r for r in seen if _request_host(r) in CHROMIUM_OWN_HOSTS]
    requests = [r for r in seen if r not in own]
    failed = proc.returncode != 0 or (screenshot is not None and not screenshot.is_file())
    if failed:
        tail = (proc.stderr or "").strip().splitlines()[-1:] or [""]
        error = f"Chromium exit {proc.returncode}: {tail[0][:200]}"
        return PageCheck(console, "", error, requests, own)
    dom = "" if screenshot is not None else proc.stdout
    return PageCheck(console, dom, None, requests, own)


def _run_chromium(
    binary: str, profile: str, proxy: str, action: list[str], page: Path, timeout: int
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            f"--user-data-dir={profile}",
            f"--proxy-server={proxy}",
            "--proxy-bypass-list=<-loopback>",  # loopback goes through the proxy too
            *action,
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        start_new_session=True,
    )


# --------------------------------------------------------------------------- progress


class _Progress:
    """A single updating line on a terminal; timestamped log lines otherwise."""

    def __init__(self, mode: Literal["tty", "log", "off"], stream: TextIO, total: int):
        self.mode, self.stream, self.total = mode, stream, total
        self._last = 0.0
        self._shown = False

    def log(self, message: str, *, important: bool = False) -> None:
        """One event: a timestamped line (log mode); on a terminal only important ones."""
        if self.mode == "off" or (self.mode == "tty" and not important):
            return
        if self.mode == "log":
            self.stream.write(f"{_utc()} {message}\n")
        else:
            self._clear()
            self.stream.write(f"{message}\n")
        self.stream.flush()

    def update(self, done: int, running: Sequence[tuple[str, float]]) -> None:
        if self.mode != "tty" or not running:
            return
        now = time.monotonic()
        if now - self._last < 0.2:
            return
        self._last = now
        name, elapsed = running[0]
        more = f" (+{len(running) - 1})" if len(running) > 1 else ""
        line = f"[{min(done + 1, self.total)}/{self.total}] {name}{more} … {elapsed:.1f} s"
        width = shutil.get_terminal_size((100, 20)).columns - 1
        self.stream.write("\r" + line[:width] + "\x1b[K")
        self.stream.flush()
        self._shown = True

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self._shown = False

    def close(self) -> None:
        if self.mode == "tty":
            self._clear()
            self.stream.flush()


def _progress_mode(progress: bool | str, stream: TextIO) -> Literal["tty", "log", "off"]:
    if progress is False:
        return "off"
    if progress is True:
        return "tty"
    if progress != "auto":
        raise ReportError(f"progress must be 'auto', True or False, got {progress!r}")
    try:
        return "tty" if stream.isatty() else "log"
    except (AttributeError, ValueError):
        return "log"


# --------------------------------------------------------------------------- execution


@dataclass
class _Task:
    key: str
    spec: NotebookSpec
    title: str
    source: Path
    account_id: str | None
    account_name: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    log_handle: Any = None
    started: float | None = None
    ended: float | None = None
    status: str = "not_run"
    error: str | None = None
    killed: bool = False
    outputs: list[str] = field(default_factory=list)
    recorded: dict[str, Any] = field(default_factory=dict)
    screenshot_error: str | None = None
    browser_console: list[str] = field(default_factory=list)
    browser_requests: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        return round((self.ended or time.time()) - self.started, 2)


def _kill_tree(proc: subprocess.Popen) -> None:
    """Stop a child and everything it started (the kernel included)."""
    import psutil

    try:
        parent = psutil.Process(proc.pid)
        procs = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        procs = []
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=3)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=3)
    with contextlib.suppress(Exception):
        proc.wait(timeout=5)


def _start(task: _Task, build: Path, *, kernel_name: str, cell_timeout: int) -> None:
    work = build / ".work"
    spec = {
        "input": str(task.source),
        "output": str(build / f"{task.key}.ipynb"),
        "parameters": task.parameters,
        "kernel_name": kernel_name,
        "cell_timeout": cell_timeout,
        "cwd": str(task.source.parent),
    }
    spec_file = work / f"{task.key}.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    env = dict(os.environ)
    env[RECORD_ENV] = str(work / f"{task.key}.record.json")
    task.log_handle = (build / "logs" / f"{task.key}.log").open("wb")
    task.started = time.time()
    task.proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD_CODE, str(spec_file)],
        stdin=subprocess.DEVNULL,
        stdout=task.log_handle,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # Ctrl-C reaches the runner only; it stops the children
    )


_CHILD_CODE = r"""
import ctypes, json, logging, os, signal, sys, threading, time

_PARENT = os.getppid()


def _stop(*_):
    # the runner is gone or stops us: take the kernel down too, it is not ours to leave
    try:
        import psutil

        for child in psutil.Process().children(recursive=True):
            child.kill()
    finally:
        os._exit(143)


signal.signal(signal.SIGTERM, _stop)
try:  # Linux: SIGTERM as soon as the runner dies, even by SIGKILL
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass


def _watch_parent():  # elsewhere, and as a second line: poll for the runner
    while True:
        if os.getppid() != _PARENT:
            _stop()
        time.sleep(1)


threading.Thread(target=_watch_parent, daemon=True).start()

# jsonschema (imported by nbformat) builds an IRI grammar at import when rfc3987-syntax is
# installed: seconds per notebook. nbformat never checks that format; skip the import.
sys.modules.setdefault("rfc3987_syntax", None)
spec = json.load(open(sys.argv[1], encoding="utf-8"))
import papermill as pm
from papermill.exceptions import PapermillExecutionError

# the runner checked the parameters itself; papermill's own inspection misses
# `x: str | None` declarations and would log "Passed unknown parameter"
logging.getLogger("papermill").setLevel(logging.ERROR)
try:
    pm.execute_notebook(
        spec["input"],
        spec["output"],
        parameters=spec["parameters"],
        kernel_name=spec["kernel_name"],
        language="python",
        execution_timeout=spec["cell_timeout"],
        cwd=spec["cwd"],
        progress_bar=False,
        log_output=False,
    )
except PapermillExecutionError as err:
    print(f"kam-runner: cell {err.exec_count}: {err.ename}: {err.evalue}", file=sys.stderr)
    sys.exit(1)
except Exception as err:
    print(f"kam-runner: {type(err).__name__}: {err}", file=sys.stderr)
    sys.exit(138 if type(err).__name__ == "DeadKernelError" else 1)
"""
"""Child process: execute one notebook with papermill (spec file in ``sys.argv[1]``).

A separate process so that a kernel crash, ``os._exit`` or a hang cannot take the
runner down; it imports only papermill (fast start)."""


def _first_error(nb: Any) -> str | None:
    for i, cell in enumerate(nb.cells, 1):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "error":
                return f"cell {i}: {out.get('ename')}: {str(out.get('evalue'))[:500]}"
    return None


def _unexecuted_cell(nb: Any) -> int | None:
    for i, cell in enumerate(nb.cells, 1):
        if cell.cell_type == "code" and cell.source.strip() and cell.get("execution_count") is None:
            return i
    return None


def _log_tail(path: Path, lines: int = 3) -> str:
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    marked = [ln for ln in text if ln.startswith("kam-runner:")]
    return " | ".join((marked or text)[-lines:])[:600]


def _outcome(
    task: _Task, build: Path, *, cell_timeout: int, run_timeout: int
) -> tuple[str, str | None]:
    import nbformat

    rc = task.proc.returncode if task.proc else None
    nb_path = build / f"{task.key}.ipynb"
    log = _log_tail(build / "logs" / f"{task.key}.log")
    if task.killed:
        return "timeout", f"stopped after the run timeout of {run_timeout} s"
    nb = None
    if nb_path.is_file():
        with contextlib.suppress(Exception):
            nb = nbformat.read(nb_path, as_version=4)
    if nb is None:
        return "failed", f"no executed notebook was written (exit code {rc}): {log}"
    exception = nb.metadata.get("papermill", {}).get("exception")
    error = _first_error(nb)
    skipped = _unexecuted_cell(nb)
    if rc == 0 and not exception and error is None and skipped is None:
        return "ok", None
    if "CellTimeoutError" in log or "timed out" in log.lower():
        return "timeout", f"a cell ran longer than the cell timeout of {cell_timeout} s"
    if error:
        return "failed", error
    if rc == 138 or "DeadKernelError" in log:
        return "failed", f"the kernel died (exit code {rc}; out of memory or os._exit?): {log}"
    if rc not in (0, None):
        return "failed", f"papermill exited with code {rc}: {log}"
    if skipped is not None:
        return "failed", f"cell {skipped} never ran: the notebook stopped early (sys.exit()?)"
    return "failed", f"papermill reported an exception: {log}"  # pragma: no cover


def _execute_all(
    tasks: list[_Task],
    build: Path,
    *,
    jobs: int,
    kernel_name: str,
    cell_timeout: int,
    run_timeout: int,
    progress: _Progress,
) -> None:
    pending: deque[_Task] = deque(tasks)
    running: list[_Task] = []
    done = 0
    try:
        while pending or running:
            while pending and len(running) < jobs:
                task = pending.popleft()
                _start(task, build, kernel_name=kernel_name, cell_timeout=cell_timeout)
                progress.log(f"start {task.key}")
                running.append(task)
            for task in list(running):
                assert task.proc is not None
                if task.proc.poll() is None and time.time() - (task.started or 0) > run_timeout:
                    task.killed = True
                    _kill_tree(task.proc)
                if task.proc.poll() is None:
                    continue
                task.ended = time.time()
                task.log_handle.close()
                task.status, task.error = _outcome(
                    task, build, cell_timeout=cell_timeout, run_timeout=run_timeout
                )
                running.remove(task)
                done += 1
                word = "ok" if task.status == "ok" else task.status.upper()
                detail = f": {task.error}" if task.error else ""
                progress.log(
                    f"{word} {task.key} {task.duration:.1f} s{detail}",
                    important=task.status != "ok",
                )
            progress.update(done, [(t.key, time.time() - (t.started or 0)) for t in running])
            time.sleep(0.05)
    except BaseException:
        with _ignore_interrupts():  # a second Ctrl-C must not leave kernels behind
            for task in running:
                if task.proc is not None and task.proc.poll() is None:
                    _kill_tree(task.proc)
                if task.log_handle:
                    task.log_handle.close()
        raise


# --------------------------------------------------------------------------- results


@dataclass
class RunResult:
    """What :func:`run_reports` returns."""

    run_id: str | None
    """None when nothing was published (invalid data, interrupted)."""
    status: Literal["ok", "failed", "invalid", "interrupted"]
    code: int
    """Process exit code: 0 ok, 1 failed, 2 invalid data, 130 interrupted."""
    run_dir: Path | None
    message: str = ""
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True for a successful run."""
        return self.code == EXIT_OK


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _ignore_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = (
        signal.signal(signal.SIGINT, signal.SIG_IGN),
        signal.signal(signal.SIGTERM, signal.SIG_IGN),
    )
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old[0])
        signal.signal(signal.SIGTERM, old[1])


@contextlib.contextmanager
def _reports_lock(reports_dir: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with (reports_dir / ".lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _latest_target(reports_dir: Path) -> str | None:
    link = reports_dir / "latest"
    if link.is_symlink():
        return os.readlink(link).rstrip("/").split("/")[-1]
    return None


def _point_latest(reports_dir: Path, run_id: str) -> str | None:
    """Point ``latest`` at ``run_id`` unless a later run is already there; a problem text."""
    link = reports_dir / "latest"
    if link.exists() and not link.is_symlink():
        return f"{link} is not a symlink; left unchanged"
    current = _latest_target(reports_dir)
    if current is not None and current > run_id and (reports_dir / current).is_dir():
        return None  # a newer run (started later) already published
    tmp = reports_dir / f".latest-{os.getpid()}-{secrets.token_hex(3)}"
    os.symlink(run_id, tmp)
    os.replace(tmp, link)
    return None


_MANIFEST_TYPES: dict[str, type | tuple[type, ...]] = {
    "status": str,
    "label": (str, type(None)),
    "as_of": (str, type(None)),
    "lang": (str, type(None)),
    "dataset": (str, type(None)),
    "started": (str, type(None)),
    "duration_s": (int, float, type(None)),
    "notebooks": list,
    "recorded": (dict, type(None)),
    "error": (str, type(None)),
}


def _manifest_problem(manifest: Any) -> str | None:
    """Why a manifest cannot be listed (a field of an unexpected type), or None."""
    if not isinstance(manifest, dict):
        return "manifest.json is not an object"
    for key, kind in _MANIFEST_TYPES.items():
        if key not in manifest:
            continue
        value = manifest[key]
        if not isinstance(value, kind) or (key == "duration_s" and isinstance(value, bool)):
            return f"manifest.json: {key} has an unexpected type ({type(value).__name__})"
    if not all(isinstance(nb, dict) for nb in manifest.get("notebooks", [])):
        return "manifest.json: notebooks holds something other than entries"
    return None


def _read_manifests(reports_dir: Path) -> list[dict[str, Any]]:
    out = []
    if not reports_dir.is_dir():
        return out
    for entry in reports_dir.iterdir():
        if entry.name.startswith(".") or entry.is_symlink() or not entry.is_dir():
            continue
        path = entry / "manifest.json"
        if not path.is_file():
            continue
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            problem = _manifest_problem(manifest)
        except (OSError, ValueError) as err:
            manifest, problem = {}, f"manifest.json cannot be read: {type(err).__name__}"
        if problem:
            manifest = {"status": "unreadable", "notebooks": [], "error": problem}
        manifest["run_id"] = entry.name
        out.append(manifest)
    out.sort(key=lambda m: m["run_id"], reverse=True)
    return out


def _write_runs_index(reports_dir: Path, lang: str) -> None:
    from kam_analysis.report_html import runs_index_page, write_text_atomic

    page = runs_index_page(
        _read_manifests(reports_dir), latest=_latest_target(reports_dir), lang=lang
    )
    write_text_atomic(reports_dir / "index.html", page)


def list_runs(reports_dir: Path) -> pd.DataFrame:
    """Every published run, newest first (``kam reports list``).

    Parameters
    ----------
    reports_dir : Path

    Returns
    -------
    DataFrame
        Columns ``run_id``, ``status``, ``label``, ``as_of``, ``dataset``,
        ``started`` (UTC ISO), ``duration_s``, ``n_notebooks``, ``n_failed``,
        ``latest`` (bool). Empty (with these columns) when there are no runs.
    """
    import pandas as pd

    reports_dir = Path(reports_dir)
    latest = _latest_target(reports_dir)
    rows = []
    for m in _read_manifests(reports_dir):
        notebooks = m.get("notebooks", [])
        rows.append(
            {
                "run_id": m["run_id"],
                "status": m.get("status"),
                "label": m.get("label"),
                "as_of": m.get("as_of"),
                "dataset": m.get("dataset"),
                "started": m.get("started"),
                "duration_s": m.get("duration_s"),
                "n_notebooks": len(notebooks),
                "n_failed": sum(1 for nb in notebooks if nb.get("status") != "ok"),
                "latest": m["run_id"] == latest,
            }
        )
    columns = [
        "run_id",
        "status",
        "label",
        "as_of",
        "dataset",
        "started",
        "duration_s",
        "n_notebooks",
        "n_failed",
        "latest",
    ]
    return pd.DataFrame(rows, columns=columns)


def show_run(reports_dir: Path, run_id: str) -> dict[str, Any]:
    """The manifest of one run (``kam reports show``); ``"latest"`` is accepted.

    Parameters
    ----------
    reports_dir : Path
    run_id : str
        A run folder name or ``"latest"``.

    Returns
    -------
    dict
        The manifest, with ``run_dir`` (absolute path) added.

    Raises
    ------
    ReportError
        For a name that is not a run id (path separators, ``..``).
    FileNotFoundError
        When there is no such run; the message lists the newest runs.
    """
    reports_dir = Path(reports_dir)
    if run_id == "latest":
        target = _latest_target(reports_dir)
        if target is None:
            raise FileNotFoundError(f"{reports_dir}: no successful run yet (no 'latest' link)")
        run_id = target
    if not _RUN_ID.match(run_id):
        raise ReportError(f"{run_id!r} is not a run id (expected e.g. 20261129T021500Z-nightly)")
    path = reports_dir / run_id / "manifest.json"
    if not path.is_file():
        newest = [m["run_id"] for m in _read_manifests(reports_dir)[:5]]
        raise FileNotFoundError(
            f"no run {run_id!r} in {reports_dir}; newest: {', '.join(newest) or 'none'}"
        )
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["run_dir"] = str(path.parent.resolve())
    return manifest


# --------------------------------------------------------------------------- the run


def _build_tasks(
    *,
    project_root: Path,
    notebooks: Sequence[NotebookSpec],
    account_plan: NotebookSpec | None,
    account_ids: Sequence[str],
    lang: str,
    account_names: Mapping[str, str] | None = None,
) -> list[_Task]:
    tasks = [
        _Task(
            key=spec.name,
            spec=spec,
            title=spec.title(lang),
            source=project_root / spec.path,
            account_id=None,
        )
        for spec in notebooks
    ]
    ids = list(dict.fromkeys(str(a) for a in account_ids))
    if ids:
        if account_plan is None:
            raise ReportError("account ids were given but no account plan notebook is configured")
        names = account_names or {}
        for account in ids:
            name = names.get(account) or None
            tasks.append(
                _Task(
                    key=f"{account_plan.name}--{safe_name(account)}",
                    spec=account_plan,
                    title=f"{account_plan.title(lang)}: {name or account}",
                    source=project_root / account_plan.path,
                    account_id=account,
                    account_name=name,
                )
            )
    if not tasks:
        raise ReportError("nothing to run: no notebooks and no account plans selected")
    keys = [task.key for task in tasks]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ReportError(f"two reports would be written to the same file: {dupes}")
    missing = sorted({str(task.source) for task in tasks if not task.source.is_file()})
    if missing:
        raise ReportError(f"notebook(s) not found: {', '.join(missing)}")
    return tasks


def _resolve_parameters(
    tasks: list[_Task], *, common: dict[str, Any], params: Mapping[str, str]
) -> None:
    """Fill ``task.parameters``; raise before anything runs when a parameter is wrong."""
    for name in params:
        _check_name(name)
        if name in RUNNER_PARAMETERS:
            raise ParameterError(
                f"parameter {name!r} is set by the runner; use its own option, not -p"
            )
    declared: dict[Path, dict[str, ParameterInfo]] = {}
    for task in tasks:
        if task.source not in declared:
            declared[task.source] = notebook_parameters(task.source)
    used: set[str] = set()
    for task in tasks:
        decl = declared[task.source]
        if task.account_id is not None and "account_id" not in decl:
            raise ReportError(
                f"{task.spec.path}: the account plan notebook must declare `account_id: str`"
            )
        values: dict[str, Any] = {}
        for name, value in common.items():
            if name == "account_id":
                if task.account_id is None or name not in decl:
                    continue
                value = task.account_id
            if name in decl:
                values[name] = coerce_parameter(value, decl[name], notebook=task.spec.name)
        for name, value in task.spec.parameters.items():
            _check_name(name)
            if name not in decl:
                raise ParameterError(
                    f"{task.spec.name}: configured parameter {name!r} is not declared in "
                    f"{task.spec.path}; declared: {', '.join(decl) or 'none'}"
                )
            if name in RUNNER_PARAMETERS:
                raise ParameterError(f"{task.spec.name}: {name!r} is set by the runner")
            values[name] = coerce_parameter(value, decl[name], notebook=task.spec.name)
        for name, value in params.items():
            if name in decl:
                values[name] = coerce_parameter(value, decl[name], notebook=task.spec.name)
                used.add(name)
        task.parameters = values
    unknown = sorted(set(params) - used)
    if unknown:
        known = sorted({n for d in declared.values() for n in d} - set(RUNNER_PARAMETERS))
        raise ParameterError(
            f"parameter(s) {unknown} not declared by any selected notebook "
            f"(misspelled?); declared: {', '.join(known) or 'none'}"
        )


def _collect_records(tasks: list[_Task], build: Path) -> None:
    for task in tasks:
        path = build / ".work" / f"{task.key}.record.json"
        if path.is_file():
            try:
                task.recorded = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                task.recorded = {"_error": "unreadable record file"}


def _export(
    tasks: list[_Task],
    build: Path,
    *,
    as_of: str,
    dataset: str,
    run_id: str,
    lang: str,
    progress: _Progress,
) -> None:
    import nbformat

    from kam_analysis.plots import t
    from kam_analysis.report_html import export_notebook_html, report_header, write_text_atomic

    nav = [("index.html", t("header.all_reports", lang))]
    nav += [(f"{task.key}.html", task.title) for task in tasks if task.account_id is None]
    for task in tasks:
        nb_path = build / f"{task.key}.ipynb"
        if not nb_path.is_file():
            continue
        task.outputs.append(nb_path.name)
        nb = nbformat.read(nb_path, as_version=4)
        header = report_header(
            title=task.title,
            as_of=as_of,
            dataset=dataset,
            run_id=run_id,
            nav=nav,
            current=f"{task.key}.html",
            failed=task.status != "ok",
            lang=lang,
        )
        page = export_notebook_html(
            nb, title=task.title, header=header, resources_path=task.source.parent
        )
        write_text_atomic(build / f"{task.key}.html", page)
        task.outputs.append(f"{task.key}.html")
    progress.log(f"exported {sum(1 for task in tasks if task.outputs)} HTML page(s)")


def _check_personal_data(
    tasks: list[_Task],
    build: Path,
    *,
    show_personal_data: bool,
    values: Callable[[], Iterable[str]] | Iterable[str] | None,
    progress: _Progress,
) -> tuple[str, str | None]:
    """Scan the run folder; remove offending files. Returns (check status, run error)."""
    if show_personal_data:
        return "disabled (show_personal_data)", None
    if values is None:
        return "skipped (no values given)", None
    hits = find_personal_data(build, list(values() if callable(values) else values))
    if not hits:
        return "passed", None
    files = sorted({f for f, _ in hits})
    error = (
        f"personal data found in {len(files)} file(s): "
        + "; ".join(f"{f} ({v})" for f, v in hits[:10])
        + ". The files were removed; pseudonymise in the notebook or run "
        "with show_personal_data for internal use."
    )
    progress.log(f"PERSONAL DATA FOUND: {error}", important=True)
    for rel in files:
        if not rel.startswith(".work/"):  # work files are deleted before publishing anyway
            (build / rel).unlink(missing_ok=True)
    for task in tasks:
        if f".work/{task.key}.record.json" in files:
            task.recorded = {}
            task.status, task.error = "failed", "personal data in recorded values (dropped)"
        if any(o in files for o in task.outputs):
            task.outputs = [o for o in task.outputs if o not in files]
            task.status, task.error = "failed", "personal data in the output (files removed)"
    return "failed", error


def _take_screenshots(
    tasks: list[_Task], build: Path, chromium: str, *, progress: _Progress
) -> None:
    for task in tasks:
        page = build / f"{task.key}.html"
        if page.is_file():
            seen = browser_check(page, chromium=chromium, screenshot=build / f"{task.key}.png")
            task.screenshot_error = seen.error
            task.browser_console = seen.console
            if seen.error is None:
                task.outputs.append(f"{task.key}.png")
            task.browser_requests = seen.requests
            if seen.console:
                progress.log(
                    f"browser console on {task.key}.html: {seen.console[0][:200]}", important=True
                )
            if seen.requests:  # refused by the proxy; a report page should make none
                progress.log(
                    f"{task.key}.html tried to reach the network: {seen.requests[0][:200]}",
                    important=True,
                )
    progress.log("screenshots done")


def _notebook_entry(task: _Task, project_root: Path) -> dict[str, Any]:
    try:
        source = task.source.relative_to(project_root).as_posix()
    except ValueError:
        source = str(task.source)
    return {
        "name": task.key,
        "notebook": task.spec.name,
        "title": task.title,
        "source": source,
        "account_id": task.account_id,
        "account_name": task.account_name,
        "status": task.status,
        "started": _utc(task.started) if task.started else None,
        "ended": _utc(task.ended) if task.ended else None,
        "duration_s": task.duration,
        "parameters": task.parameters,
        "outputs": task.outputs,
        "error": task.error,
        "screenshot_error": task.screenshot_error,
        "browser_console": task.browser_console,
        "browser_requests": task.browser_requests,
        "recorded": task.recorded,
    }


def run_reports(
    *,
    data_dir: Path,
    as_of: dt.date,
    notebooks: list[NotebookSpec],
    reports_dir: Path = Path("reports"),
    lang: str = "en",
    label: str | None = None,
    params: dict[str, str] | None = None,
    jobs: int = 1,
    account_plan: NotebookSpec | None = None,
    account_ids: Sequence[str] = (),
    account_names: Mapping[str, str] | None = None,
    config_path: Path | None = None,
    validate: Callable[[Path, dt.date], tuple[bool, str]] | None = None,
    data_summary: Mapping[str, Any] | None = None,
    kernel_name: str = "kam-analysis",
    cell_timeout: int = 600,
    run_timeout: int = 3600,
    show_personal_data: bool = False,
    personal_data_values: Callable[[], Iterable[str]] | Iterable[str] | None = None,
    screenshots: bool = False,
    progress: Literal["auto"] | bool = "auto",
    progress_stream: TextIO | None = None,
    project_root: Path | None = None,
) -> RunResult:
    """Run the report notebooks for one dataset and as-of date and publish the run.

    Steps: check parameters (before anything runs) → validate the data (invalid:
    nothing runs, nothing is published, code 2) → hash the inputs → execute the
    notebooks in child processes (``jobs`` at a time, account plans fanned out
    over ``account_ids``) → export HTML → personal-data scan → optional
    screenshots → ``manifest.json`` and ``index.html`` → atomic publish →
    ``latest`` (successful runs only) → ``reports/index.html``.

    Parameters
    ----------
    data_dir : Path
        Dataset folder; passed to notebooks as an absolute path.
    as_of : date
        Analysis date; passed as ``YYYY-MM-DD``.
    notebooks : list of NotebookSpec
        Portfolio reports, in navigation order.
    reports_dir : Path, default "reports"
        Where runs are published (created when missing).
    lang : {"en", "ja"}, default "en"
    label : str, optional
        Free text shown in the indexes; its sanitised form is part of the run id.
    params : dict of str, optional
        ``-p name=value`` overrides; each name must be declared by at least one
        selected notebook and is passed only to those, converted to the declared type.
    jobs : int, default 1
        Notebooks run in parallel.
    account_plan : NotebookSpec, optional
        The per-account notebook; required when ``account_ids`` is not empty.
    account_ids : sequence of str
        One account plan per id (duplicates dropped).
    account_names : mapping of str to str, optional
        Display names (account id → company name) for the plans' titles and the index.
    config_path : Path, optional
        ``kam.toml``; its content and hash go into the manifest.
    validate : callable, optional
        ``validate(data_dir, as_of) -> (ok, text)``, e.g. wrapping
        :func:`kam_analysis.data.validate_dataset`.
    data_summary : mapping, optional
        The validation summary and warnings of the data (what was read and
        how: encodings, credit notes, lines without an account, the as-of
        gap); written into the manifest as ``data``.
    kernel_name : str, default "kam-analysis"
    cell_timeout : int, default 600
        Seconds per cell (nbclient).
    run_timeout : int, default 3600
        Seconds per notebook, enforced by the runner (kills the kernel on a hang).
    show_personal_data : bool, default False
        Passed to notebooks; when False, output files are scanned for
        ``personal_data_values`` and the run fails if any appears (offending
        files are deleted before publishing).
    personal_data_values : callable or iterable of str, optional
        Stakeholder names and e-mail addresses of the dataset (a callable is
        called once, after execution).
    screenshots : bool, default False
        Render each page to ``<name>.png`` with headless Chromium.
    progress : "auto", True or False
        "auto": an updating line on a terminal, timestamped log lines otherwise;
        True: the updating line; False: silent.
    progress_stream : text stream, optional
        Default ``sys.stderr``.
    project_root : Path, optional
        Where ``NotebookSpec.path`` is relative to and where ``git`` is asked
        for the commit; default: the folder above the package.

    Returns
    -------
    RunResult
        ``code`` 0 ok / 1 failed / 2 invalid data / 130 interrupted (Ctrl-C or
        SIGTERM: running kernels are stopped, nothing is published).

    Raises
    ------
    ParameterError
        Undeclared, misspelled, non-identifier or ill-typed parameters.
    ReportError
        Missing notebooks, unknown language, Chromium missing for screenshots.

    Notes
    -----
    ``manifest.json`` keys: ``run_id``, ``label``, ``status``, ``started``,
    ``ended``, ``duration_s``, ``as_of``, ``lang``, ``data_dir``, ``dataset``,
    ``input_files`` (path, size, sha256), ``config`` (path, sha256, content,
    parsed), ``parameters`` (common), ``user_parameters``, ``settings``,
    ``versions``, ``git_commit``, ``git_dirty``, ``personal_data_check``,
    ``error``, ``notebooks`` (per notebook: name, notebook, title, source,
    account_id, status, started, ended, duration_s, parameters, outputs, error,
    recorded) and ``recorded`` (name -> values).
    """
    from kam_analysis.plots import LANGUAGES

    t0 = time.time()
    stream = progress_stream if progress_stream is not None else sys.stderr
    if lang not in LANGUAGES:
        raise ReportError(f"unknown language {lang!r}; available: {', '.join(LANGUAGES)}")
    if jobs < 1 or cell_timeout < 1 or run_timeout < 1:
        raise ReportError("jobs, cell_timeout and run_timeout must be at least 1")
    root = Path(project_root) if project_root is not None else Path(__file__).resolve().parents[1]
    data_dir = Path(data_dir).resolve()
    reports_dir = Path(reports_dir).resolve()
    config_path = Path(config_path).resolve() if config_path is not None else None
    as_of_text = as_of.isoformat()
    chromium = None
    if screenshots:
        chromium = find_chromium()
        if chromium is None:
            raise ReportError(
                "screenshots need Chromium; install it (apt-get install -y chromium) "
                "or run without screenshots"
            )
    tasks = _build_tasks(
        project_root=root,
        notebooks=notebooks,
        account_plan=account_plan,
        account_ids=account_ids,
        lang=lang,
        account_names=account_names,
    )
    common = {
        "data_dir": str(data_dir),
        "as_of": as_of_text,
        "config_path": str(config_path) if config_path else "",  # "" = defaults
        "lang": lang,
        "show_personal_data": show_personal_data,
        "account_id": None,
    }
    _resolve_parameters(tasks, common=common, params=dict(params or {}))
    mode = _progress_mode(progress, stream)
    prog = _Progress(mode, stream, len(tasks))

    if validate is not None:
        ok, text = validate(data_dir, as_of)
        if not ok:
            prog.log("data invalid: nothing run, nothing published", important=True)
            return RunResult(None, "invalid", EXIT_INVALID, None, message=text)
    if not data_dir.is_dir():
        return RunResult(None, "invalid", EXIT_INVALID, None, message=f"{data_dir}: not a folder")

    reports_dir.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    for name in remove_stale_work(reports_dir):
        prog.log(f"removed {name}, left by a run that was killed")
    run_id, reservation = _reserve_run_id(reports_dir, label, started)
    build = reports_dir / f".tmp-{run_id}-{os.getpid()}"
    published = False
    try:
        with _sigterm_as_interrupt():
            try:
                build.mkdir()
                (build / ".work").mkdir()
                (build / "logs").mkdir()
                prog.log(f"run {run_id}: {len(tasks)} notebook(s), jobs={jobs}, as of {as_of_text}")
                input_files = _input_files(data_dir)
                config_entry = _config_record(config_path)
                commit, dirty = _git_state(root)
                _execute_all(
                    tasks,
                    build,
                    jobs=jobs,
                    kernel_name=kernel_name,
                    cell_timeout=cell_timeout,
                    run_timeout=run_timeout,
                    progress=prog,
                )
                _collect_records(tasks, build)
                _export(
                    tasks,
                    build,
                    as_of=as_of_text,
                    dataset=data_dir.name,
                    run_id=run_id,
                    lang=lang,
                    progress=prog,
                )
                pd_check, run_error = _check_personal_data(
                    tasks,
                    build,
                    show_personal_data=show_personal_data,
                    values=personal_data_values,
                    progress=prog,
                )
                if chromium is not None:
                    _take_screenshots(tasks, build, chromium, progress=prog)
                status = (
                    "ok" if run_error is None and all(t.status == "ok" for t in tasks) else "failed"
                )
                if run_error is None and status == "failed":
                    bad = [t.key for t in tasks if t.status != "ok"]
                    run_error = f"{len(bad)} notebook(s) failed: {', '.join(bad)}"
                ended = time.time()
                records = {t.key: t.recorded for t in tasks if t.recorded}
                manifest = {
                    "run_id": run_id,
                    "label": label,
                    "status": status,
                    "started": _utc(t0),
                    "ended": _utc(ended),
                    "duration_s": round(ended - t0, 2),
                    "as_of": as_of_text,
                    "lang": lang,
                    "data_dir": str(data_dir),
                    "dataset": data_dir.name,
                    "input_files": input_files,
                    "config": config_entry,
                    "data": dict(data_summary) if data_summary else None,
                    "parameters": {k: v for k, v in common.items() if k != "account_id"},
                    "user_parameters": dict(params or {}),
                    "settings": {
                        "jobs": jobs,
                        "kernel_name": kernel_name,
                        "cell_timeout": cell_timeout,
                        "run_timeout": run_timeout,
                        "screenshots": screenshots,
                    },
                    "versions": _versions(),
                    "git_commit": commit,
                    "git_dirty": dirty,
                    "personal_data_check": pd_check,
                    "error": run_error,
                    "notebooks": [_notebook_entry(t, root) for t in tasks],
                    "recorded": records,
                }
                from kam_analysis.report_html import run_index_page, write_text_atomic

                shutil.rmtree(build / ".work", ignore_errors=True)
                write_text_atomic(
                    build / "manifest.json",
                    json.dumps(manifest, ensure_ascii=False, indent=2, default=str) + "\n",
                )
                write_text_atomic(build / "index.html", run_index_page(manifest, lang=lang))
                final = reports_dir / run_id
                os.rename(build, final)
                published = True
            except KeyboardInterrupt:
                with _ignore_interrupts():
                    if not published:
                        shutil.rmtree(build, ignore_errors=True)
                    prog.log(
                        "interrupted: running notebooks stopped, nothing published", important=True
                    )
                    prog.close()
                return RunResult(None, "interrupted", EXIT_INTERRUPTED, None, message="interrupted")
        with _ignore_interrupts(), _reports_lock(reports_dir):
            if status == "ok" and (problem := _point_latest(reports_dir, run_id)):
                prog.log(problem, important=True)
            _write_runs_index(reports_dir, lang)
        prog.log(
            f"published {final} (status {status})" + ("" if status == "ok" else f": {run_error}"),
            important=True,
        )
        prog.close()
        code = EXIT_OK if status == "ok" else EXIT_FAILED
        return RunResult(run_id, status, code, final, message=run_error or "", manifest=manifest)
    except BaseException:
        if not published:
            shutil.rmtree(build, ignore_errors=True)
        raise
    finally:
        reservation.unlink(missing_ok=True)

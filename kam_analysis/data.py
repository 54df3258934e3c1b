"""Reading and validating a dataset folder.

A dataset is a folder holding one file per table of the contract
(:mod:`kam_analysis.schemas`): ``<table>.csv``, ``<table>.parquet`` or
``<table>.xlsx``. :func:`open_dataset` exposes each table to the embedded
engine (DuckDB, through Ibis) *without* loading it into pandas: files are
scanned where they lie, so a 20-million-line transaction file is validated
and aggregated in bounded memory.

Reading rules
-------------
* CSV encodings: UTF-8, UTF-8 with BOM, and CP932 (the Shift-JIS variant
  Excel writes in Japan), detected strictly in that order. DuckDB reads only
  UTF-8, so CP932 files are converted once into a cache folder
  (``<dataset>/_derived/.cache``; the original file is never touched).
* Dates: ISO ``2024-04-01``, ``2024/04/01``, ``20240401``, ``2024年4月1日``,
  each optionally with a time.
* Amounts: thousands separators, spaces and currency signs (``¥ ￥ $ € £ 円``)
  are stripped before the number is read.
* Column names are matched after trimming, lower-casing and turning spaces
  and hyphens into underscores; ``[columns.<table>]`` in ``kam.toml`` maps
  any other export's names onto the contract. Columns the contract does not
  know are ignored and listed in the summary.

Validation (:func:`validate_dataset`) compiles the contract into one
aggregate query per table plus key, foreign-key and cross-column queries,
all expressed in Ibis so they also run on a warehouse backend; only counts
and at most five example rows per broken rule come back.

Why not ``pandera``'s own ``validate`` for the run: the contract *is*
defined as pandera models, but pandera's Ibis backend reports failures
without row positions, and its lazy mode skipped the uniqueness check in
our probe (see PITFALLS.md, pandera #1993). Users need the file line of
every example, so the validator here interprets the same pandera checks
itself; a test checks both agree on valid data.
"""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import ibis
import ibis.expr.types as ir
import pandas as pd

from kam_analysis.config import KamConfig
from kam_analysis.schemas import (
    CANONICAL_TABLES,
    REQUIRED_TABLES,
    TABLE_MODELS,
    ColumnSpec,
    column_specs,
    describe_check,
    table_key,
)
from kam_analysis.sources import SourceError, connect_source, describe_source

FORMATS = (".csv", ".parquet", ".xlsx")
DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y%m%d",
    "%Y年%m月%d日",
)
_AMOUNT_NOISE = r"[,\s¥￥$€£円]"
_TRUE = ("true", "t", "yes", "y", "1", "はい", "有")
_FALSE = ("false", "f", "no", "n", "0", "いいえ", "無")
MAX_EXAMPLES = 5
ROW = "__row"


class DatasetError(Exception):
    """The dataset cannot be used; ``report`` says why, file by file."""

    def __init__(self, report: ValidationReport):
        super().__init__(report.render_text())
        self.report = report


@dataclass
class Issue:
    """One broken rule: where, what, how many rows, and examples."""

    severity: str  # "error" | "warning"
    table: str
    file: str | None
    column: str | None
    rule: str
    message: str
    n_rows: int = 0
    examples: list[dict] = field(default_factory=list)
    line_label: str = "line"

    def render(self) -> str:
        """Human-readable lines for the terminal."""
        where = self.file or self.table
        col = f', column "{self.column}"' if self.column else ""
        count = f" — {self.n_rows:,} row(s)" if self.n_rows else ""
        head = f"{self.severity.upper()} {where}{col}: {self.message} (rule: {self.rule}){count}"
        lines = [head]
        for ex in self.examples:
            ex = dict(ex)
            pos = ex.pop("_line", None)
            cells = ", ".join(f"{k}={_show(v)}" for k, v in ex.items())
            prefix = f"{self.line_label} {pos}: " if pos is not None else ""
            lines.append(f"    {prefix}{cells}")
        return "\n".join(lines)


def _show(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "(empty)"
    if isinstance(value, pd.Timestamp | dt.datetime):
        midnight = (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0)
        return value.strftime("%Y-%m-%d") if midnight else str(value)
    text = str(value)
    return repr(text) if text.strip() != text or text == "" else text


@dataclass
class ValidationReport:
    """Outcome of :func:`validate_dataset`."""

    folder: Path | str
    """The dataset folder, or a description of the engine source."""
    as_of: dt.date
    issues: list[Issue] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when no rule of severity ``error`` is broken."""
        return not self.errors

    def render_text(self) -> str:
        """The report as plain text (what ``kam validate`` prints)."""
        state = "valid" if self.ok else "INVALID"
        counts = f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        lines = [f"Dataset {self.folder} as of {self.as_of}: {state} ({counts})"]
        if self.summary:
            lines.append("")
            lines.extend(_render_summary(self.summary))
        for issue in self.errors + self.warnings:
            lines.append("")
            lines.append(issue.render())
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-friendly form (for manifests)."""
        return {
            "folder": str(self.folder),
            "as_of": self.as_of.isoformat(),
            "ok": self.ok,
            "summary": self.summary,
            "issues": [
                {
                    "severity": i.severity,
                    "table": i.table,
                    "file": i.file,
                    "column": i.column,
                    "rule": i.rule,
                    "message": i.message,
                    "n_rows": i.n_rows,
                    "examples": [{k: _show(v) for k, v in e.items()} for e in i.examples],
                }
                for i in self.issues
            ],
        }


def _render_summary(summary: dict) -> list[str]:
    lines = []
    for table, info in summary.get("tables", {}).items():
        extra = info.get("ignored_columns") or []
        note = f"; ignored columns: {', '.join(extra)}" if extra else ""
        lines.append(f"  {table:<14} {info['rows']:>12,} rows  ({info['file']}{note})")
    if summary.get("missing_optional"):
        lines.append(
            "  not provided (analyses needing them are skipped): "
            + ", ".join(summary["missing_optional"])
        )
    if "transaction_dates" in summary:
        first, last = summary["transaction_dates"]
        lines.append(f"  transactions from {first} to {last}")
    if "accounts" in summary:
        lines.append(f"  accounts: {summary['accounts']:,}")
    if summary.get("currencies"):
        lines.append("  currencies: " + ", ".join(summary["currencies"]))
    return lines


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class SourceFile:
    """One table's file, and what the engine actually reads."""

    table: str
    path: Path
    format: str
    read_path: Path
    encoding: str | None
    line_offset: int
    line_label: str


def normalise_name(name: str) -> str:
    """Column-name matching key: trimmed, lower case, spaces/hyphens → ``_``."""
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def detect_encoding(path: Path, *, chunk_size: int = 1 << 20) -> str:
    """Return ``"utf-8-sig"``, ``"utf-8"`` or ``"cp932"`` for a text file.

    The whole file is decoded strictly (streamed), UTF-8 first, then CP932
    (Windows Shift-JIS, which also decodes ``㈱``, ``①``, ``髙``).

    Parameters
    ----------
    path : Path
        The file.
    chunk_size : int
        Bytes read at a time.

    Returns
    -------
    str
        A Python codec name.

    Raises
    ------
    UnicodeDecodeError
        Neither encoding decodes the file; the error carries the CP932 failure.
    """
    with open(path, "rb") as fh:
        head = fh.read(3)
    first = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    last_error: UnicodeDecodeError | None = None
    for encoding in (first, "cp932"):
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(chunk_size):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError as err:
            last_error = err
    assert last_error is not None
    raise last_error


def _cache_key(path: Path) -> str:
    stat = path.stat()
    text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _writable_cache(folder: Path, cache_dir: Path | None) -> Path:
    candidates = [cache_dir] if cache_dir else [folder / "_derived" / ".cache"]
    candidates.append(Path(tempfile.gettempdir()) / "kam-analysis-cache")
    for candidate in candidates:
        try:
            candidate.mkdir(parents=True, exist_ok=True)
            probe = candidate / ".write-test"
            probe.write_text("")
            probe.unlink()
            return candidate
        except OSError:
            continue
    raise OSError(f"no writable cache folder (tried {candidates})")


def _utf8_copy(path: Path, encoding: str, cache: Path) -> Path:
    target = cache / f"{path.stem}.{_cache_key(path)}.utf8.csv"
    if not target.exists():
        tmp = target.with_suffix(".tmp")
        with (
            open(path, encoding=encoding, newline="") as src,
            open(tmp, "w", encoding="utf-8", newline="") as dst,
        ):
            shutil.copyfileobj(src, dst, 1 << 20)
        tmp.replace(target)
    return target


def _excel_copy(path: Path, cache: Path) -> Path:
    target = cache / f"{path.stem}.{_cache_key(path)}.xlsx.parquet"
    if not target.exists():
        frame = pd.read_excel(path, sheet_name=0, dtype=object)
        frame.columns = [str(c) for c in frame.columns]
        as_text = frame.apply(lambda s: s.map(_excel_cell_text))
        tmp = target.with_suffix(".tmp")
        as_text.to_parquet(tmp, index=False)
        tmp.replace(target)
    return target


def _excel_cell_text(value) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, dt.datetime | pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def find_table_files(folder: Path, config: KamConfig) -> tuple[dict[str, Path], list[Issue]]:
    """Locate each contract table's file in ``folder``.

    Returns
    -------
    files : dict
        Table name → file path, for the tables found.
    issues : list of Issue
        Missing required tables, ambiguous files (``x.csv`` and ``x.parquet``).
    """
    files: dict[str, Path] = {}
    issues: list[Issue] = []
    for table in TABLE_MODELS:
        if table in config.data.files:
            path = folder / config.data.files[table]
            candidates = [path] if path.exists() else []
            if not candidates:
                issues.append(
                    Issue(
                        "error",
                        table,
                        path.name,
                        None,
                        "file exists",
                        f"file configured in [data.files] not found in {folder}",
                    )
                )
                continue
        else:
            candidates = [
                folder / f"{table}{ext}" for ext in FORMATS if (folder / f"{table}{ext}").exists()
            ]
        if len(candidates) > 1:
            issues.append(
                Issue(
                    "error",
                    table,
                    None,
                    None,
                    "one file per table",
                    "several files for one table: "
                    + ", ".join(p.name for p in candidates)
                    + " (keep one, or name it in [data.files])",
                )
            )
            continue
        if candidates:
            files[table] = candidates[0]
        elif table in REQUIRED_TABLES:
            issues.append(
                Issue(
                    "error",
                    table,
                    None,
                    None,
                    "required table",
                    f"required table missing: expected {table}.csv, {table}.parquet or "
                    f"{table}.xlsx in {folder}",
                )
            )
    return files, issues


def prepare_source(table: str, path: Path, cache: Path) -> SourceFile:
    """Decide how the engine reads ``path`` (converting CP932 or Excel once).

    Raises
    ------
    UnicodeDecodeError
        For a CSV in neither UTF-8 nor CP932.
    ValueError
        For an unsupported extension or an unreadable Excel file.
    """
    suffix = path.suffix.lower()
    if suffix == ".csv":
        encoding = detect_encoding(path)
        read_path = path if encoding.startswith("utf-8") else _utf8_copy(path, encoding, cache)
        return SourceFile(table, path, "csv", read_path, encoding, 1, "line")
    if suffix == ".parquet":
        return SourceFile(table, path, "parquet", path, None, 0, "row")
    if suffix == ".xlsx":
        return SourceFile(table, path, "xlsx", _excel_copy(path, cache), None, 1, "row")
    raise ValueError(f"unsupported file type {suffix!r}; use .csv, .parquet or .xlsx")


def _sql_str(text: str | Path) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _raw_select(src: SourceFile) -> str:
    if src.format == "csv":
        return (
            f"SELECT row_number() OVER () AS {ROW}, * FROM read_csv({_sql_str(src.read_path)}, "
            "all_varchar=true, header=true)"
        )
    return (
        f"SELECT file_row_number + 1 AS {ROW}, * EXCLUDE (file_row_number) "
        f"FROM read_parquet({_sql_str(src.read_path)}, file_row_number=true)"
    )


def _parse_expr(spec: ColumnSpec, src_col: str, src_type: str) -> tuple[str, str | None]:
    """SQL turning the source column into the contract type.

    Returns the parsed expression and, for text sources of typed columns,
    the expression that flags a value that could not be parsed.
    """
    col = _ident(src_col)
    is_text = src_type.upper().startswith("VARCHAR")
    trimmed = f"NULLIF(TRIM({col}), '')"
    if spec.kind == "text":
        return (trimmed if is_text else f"CAST({col} AS VARCHAR)"), None
    if spec.kind in ("amount", "integer"):
        if is_text:
            number = f"TRY_CAST(NULLIF(REGEXP_REPLACE(TRIM({col}), '{_AMOUNT_NOISE}', '', 'g'), '') AS DOUBLE)"
        else:
            number = f"TRY_CAST({col} AS DOUBLE)"
        if spec.kind == "amount":
            parsed = number
        else:
            parsed = f"CASE WHEN {number} = FLOOR({number}) THEN CAST({number} AS BIGINT) END"
    elif spec.kind == "date":
        if is_text:
            formats = ", ".join(_sql_str(f) for f in DATE_FORMATS)
            parsed = f"TRY_STRPTIME(TRIM({col}), [{formats}])"
        else:
            parsed = f"TRY_CAST({col} AS TIMESTAMP)"
    elif spec.kind == "flag":
        if is_text:
            low = f"LOWER(TRIM({col}))"
            parsed = (
                f"CASE WHEN {low} IN ({', '.join(map(_sql_str, _TRUE))}) THEN TRUE "
                f"WHEN {low} IN ({', '.join(map(_sql_str, _FALSE))}) THEN FALSE END"
            )
        elif src_type.upper() == "BOOLEAN":
            parsed = col
        else:
            parsed = f"CAST({col} <> 0 AS BOOLEAN)"
    else:  # pragma: no cover - schemas only use the kinds above
        raise ValueError(f"unknown column kind {spec.kind}")
    bad = (
        f"({col} IS NOT NULL AND {trimmed if is_text else col} IS NOT NULL AND ({parsed}) IS NULL)"
    )
    return parsed, bad


# --------------------------------------------------------------------------- dataset


@dataclass
class Dataset:
    """A dataset folder opened on the embedded engine.

    Use :meth:`table` for a typed Ibis table (contract column names) and
    :meth:`to_pandas` to bring a small table into pandas.
    """

    folder: Path
    config: KamConfig
    con: ibis.BaseBackend
    sources: dict[str, SourceFile]
    columns: dict[str, dict[str, str]]
    ignored_columns: dict[str, list[str]]
    missing_columns: dict[str, list[str]]
    typed: dict[str, ir.Table] = field(default_factory=dict)
    """Typed table expressions of an engine source (files use engine views instead)."""

    @property
    def label(self) -> str:
        """Where the data is: the folder, or the engine and database of a source."""
        source = self.config.data.source
        if source.is_files:
            return str(self.folder)
        return describe_source(source)

    def has(self, table: str) -> bool:
        """Whether the dataset provides ``table``."""
        return table in self.sources and not self.missing_columns.get(table)

    def table(self, table: str) -> ir.Table:
        """The typed table (contract columns present in the source, no helper columns)."""
        t = self.checked_table(table)
        return t.select([c for c in t.columns if not c.startswith("__")])

    def checked_table(self, table: str) -> ir.Table:
        """The typed table with row numbers (files) and parse flags, for validation."""
        self._require(table)
        if table in self.typed:
            return self.typed[table]
        return self.con.table(f"typed_{table}")

    def to_pandas(self, table: str) -> pd.DataFrame | None:
        """Load ``table`` into pandas; ``None`` when the dataset lacks it."""
        if not self.has(table):
            return None
        return self.table(table).to_pandas()

    def _require(self, table: str) -> None:
        if table not in TABLE_MODELS:
            raise KeyError(f"unknown table {table!r}; known: {', '.join(TABLE_MODELS)}")
        if not self.has(table):
            raise KeyError(f"dataset {self.label} has no usable {table} table")


def connect(config: KamConfig | None = None) -> ibis.BaseBackend:
    """An in-process DuckDB connection with the configured memory cap."""
    config = config or KamConfig()
    options = {"memory_limit": config.data.duckdb_memory_limit}
    if config.data.duckdb_threads:
        options["threads"] = config.data.duckdb_threads
    con = ibis.duckdb.connect(**options)
    try:  # no progress bars in logs or reports
        con.raw_sql("SET enable_progress_bar = false")
    except duckdb.Error:  # inside Jupyter DuckDB rejects the setting (ipywidgets); none shows there
        pass
    return con


def open_dataset(
    folder: str | Path,
    *,
    config: KamConfig | None = None,
    cache_dir: Path | None = None,
) -> Dataset:
    """Open a dataset folder: find files, detect encodings, map columns.

    Nothing is loaded into memory; tables become engine views. When the
    configuration names an engine source (``[data.source]``), the tables are
    read there instead (:func:`open_engine_dataset`) and ``folder`` only
    holds derived files.

    Parameters
    ----------
    folder : str or Path
        The dataset folder.
    config : KamConfig, optional
        Column map, file names, engine settings.
    cache_dir : Path, optional
        Where converted copies (CP932 CSV, Excel) go; default
        ``<folder>/_derived/.cache``, or a temporary folder when that is
        not writable.

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetError
        When a file is missing, empty, unreadable, in an unknown encoding,
        or lacks required columns. The error's ``report`` lists every problem.
    """
    folder = Path(folder)
    config = config or KamConfig()
    if not config.data.source.is_files:
        return open_engine_dataset(config, folder=folder)
    report = ValidationReport(folder=folder, as_of=dt.date.today())
    if not folder.is_dir():
        report.issues.append(
            Issue("error", "-", str(folder), None, "folder exists", "dataset folder not found")
        )
        raise DatasetError(report)
    files, issues = find_table_files(folder, config)
    report.issues.extend(issues)
    con = connect(config)
    cache = None
    sources: dict[str, SourceFile] = {}
    columns: dict[str, dict[str, str]] = {}
    ignored: dict[str, list[str]] = {}
    missing: dict[str, list[str]] = {}
    for table, path in files.items():
        if path.stat().st_size == 0:
            report.issues.append(
                Issue("error", table, path.name, None, "not empty", "file is empty")
            )
            continue
        try:
            if path.suffix.lower() in (".csv", ".xlsx") and cache is None:
                cache = _writable_cache(folder, cache_dir)
            src = prepare_source(table, path, cache)  # type: ignore[arg-type]
        except UnicodeDecodeError as err:
            report.issues.append(
                Issue(
                    "error",
                    table,
                    path.name,
                    None,
                    "encoding UTF-8 or CP932",
                    f"text encoding not recognised (not UTF-8 or CP932/Shift-JIS; first bad byte "
                    f"at offset {err.start}); save the file as UTF-8 or CSV (Shift-JIS) from Excel",
                )
            )
            continue
        except Exception as err:
            report.issues.append(
                Issue(
                    "error",
                    table,
                    path.name,
                    None,
                    "readable table",
                    f"cannot read the file as a table: {_short(err)}",
                )
            )
            continue
        try:
            con.raw_sql(f"CREATE OR REPLACE VIEW raw_{table} AS {_raw_select(src)}")
            described = con.raw_sql(f"DESCRIBE raw_{table}").fetchall()
        except Exception as err:
            report.issues.append(
                Issue(
                    "error",
                    table,
                    path.name,
                    None,
                    "readable table",
                    f"cannot read the file as a table: {_short(err)}",
                )
            )
            continue
        source_types = {name: typ for name, typ, *_ in described if name != ROW}
        mapping, extra, required_absent = _map_columns(
            table, path.name, source_types, config, report
        )
        if required_absent:
            missing[table] = required_absent
        sources[table] = src
        columns[table] = mapping
        ignored[table] = extra
        _create_typed_view(con, table, mapping, source_types)
    if report.errors:
        raise DatasetError(report)
    return Dataset(folder, config, con, sources, columns, ignored, missing)


def open_engine_dataset(config: KamConfig, *, folder: str | Path | None = None) -> Dataset:
    """Open the tables of an engine source (``[data.source]``) as typed Ibis tables.

    Nothing is read: each table becomes an expression on the engine (Spark,
    PostgreSQL, a warehouse) with the contract's column names and types, so
    validation and the feature build run there and only results come back.

    Parameters
    ----------
    config : KamConfig
        ``config.data.source`` names the backend, connection, database and
        table names; ``[columns.<table>]`` maps column names as for files.
    folder : str or Path, optional
        Local folder for derived files (features, caches); not read.

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetError
        When the engine cannot be reached, a required table is missing or
        lacks required columns; the report names the table and column.
    """
    source = config.data.source
    where = describe_source(source)
    report = ValidationReport(folder=where, as_of=dt.date.today())
    try:
        con = connect_source(source)
    except SourceError as err:
        report.issues.append(Issue("error", "-", where, None, "connection", str(err)))
        raise DatasetError(report) from None
    database = _database_arg(source.database)
    sources: dict[str, SourceFile] = {}
    columns: dict[str, dict[str, str]] = {}
    ignored: dict[str, list[str]] = {}
    missing: dict[str, list[str]] = {}
    typed: dict[str, ir.Table] = {}
    for table in TABLE_MODELS:
        name = source.tables.get(table, table)
        qualified = f"{source.database}.{name}" if source.database else name
        try:
            t = _engine_table(con, table, name, database)
        except Exception as err:
            if table in REQUIRED_TABLES or table in source.tables:
                report.issues.append(
                    Issue(
                        "error",
                        table,
                        qualified,
                        None,
                        "table exists",
                        f"table not found in {where}: {_short(err, 200)}",
                    )
                )
            continue
        source_types = {col: str(dtype) for col, dtype in t.schema().items()}
        mapping, extra, required_absent = _map_columns(
            table, qualified, source_types, config, report
        )
        if required_absent:
            missing[table] = required_absent
        sources[table] = SourceFile(
            table, Path(qualified), "engine", Path(qualified), None, 0, "row"
        )
        columns[table] = mapping
        ignored[table] = extra
        typed[table] = _typed_expression(t, table, mapping)
    if report.errors:
        raise DatasetError(report)
    return Dataset(
        Path(folder) if folder is not None else Path("."),
        config,
        con,
        sources,
        columns,
        ignored,
        missing,
        typed,
    )


def _engine_table(
    con: ibis.BaseBackend, table: str, name: str, database: str | tuple[str, str] | None
) -> ir.Table:
    """A table of the engine by name, or files the engine reads (a path: Parquet or CSV)."""
    if "/" in name or "\\" in name or name.lower().endswith((".parquet", ".csv")):
        reader = con.read_csv if name.lower().endswith(".csv") else con.read_parquet
        return reader(name, table_name=f"kam_{table}")
    return con.table(name, database=database)


def _database_arg(database: str | None) -> str | tuple[str, str] | None:
    if not database:
        return None
    parts = database.split(".")
    return (parts[0], parts[1]) if len(parts) == 2 else database


def _typed_expression(t: ir.Table, table: str, mapping: dict[str, str]) -> ir.Table:
    """The engine table with contract names and types, plus parse flags for text sources."""
    cols: dict[str, ir.Value] = {}
    for spec in column_specs(table):
        if spec.name not in mapping:
            continue
        value = t[mapping[spec.name]]
        parsed, bad = _parse_value(spec, value)
        cols[spec.name] = parsed
        if bad is not None:
            cols[f"__bad_{spec.name}"] = bad
            cols[f"__raw_{spec.name}"] = value.cast("string")
    return t.select(**cols)


def _parse_value(spec: ColumnSpec, value: ir.Value) -> tuple[ir.Value, ir.BooleanValue | None]:
    """Ibis twin of :func:`_parse_expr` for typed engines: cast, or parse text columns."""
    dtype = value.type()
    if spec.kind == "text":
        return (value if dtype.is_string() else value.cast("string")), None
    if not dtype.is_string():
        if spec.kind == "amount":
            return value.cast("float64"), None
        if spec.kind == "integer":
            return value.cast("int64"), None
        if spec.kind == "date":
            return value.cast("timestamp"), None
        if spec.kind == "flag":
            return (value if dtype.is_boolean() else value != 0), None
    trimmed = value.strip().nullif("")
    if spec.kind == "amount":
        parsed = trimmed.re_replace(_AMOUNT_NOISE, "").nullif("").try_cast("float64")
    elif spec.kind == "integer":
        number = trimmed.re_replace(_AMOUNT_NOISE, "").nullif("").try_cast("float64")
        parsed = ibis.ifelse(number == number.floor(), number.cast("int64"), ibis.null("int64"))
    elif spec.kind == "date":
        parsed = trimmed.replace("/", "-").try_cast("timestamp")
    elif spec.kind == "flag":
        low = trimmed.lower()
        parsed = ibis.cases(
            (low.isin(list(_TRUE)), True),
            (low.isin(list(_FALSE)), False),
            else_=ibis.null("boolean"),
        )
    else:  # pragma: no cover - schemas only use the kinds above
        raise ValueError(f"unknown column kind {spec.kind}")
    return parsed, trimmed.notnull() & parsed.isnull()


def _map_columns(
    table: str,
    where: str,
    source_types: dict[str, str],
    config: KamConfig,
    report: ValidationReport,
) -> tuple[dict[str, str], list[str], list[str]]:
    """Match a source's columns to the contract; report clashes and missing required ones.

    Returns the mapping (contract → source column), the ignored source columns
    and the required contract columns that are absent.
    """
    mapping, extra, absent, dupes = _match_columns(table, source_types, config)
    for norm, names in dupes.items():
        report.issues.append(
            Issue(
                "error",
                table,
                where,
                norm,
                "unique column names",
                "columns " + ", ".join(repr(n) for n in names) + " map to the same contract column",
            )
        )
    required_absent = [c for c in absent if c in _required_columns(table)]
    if required_absent:
        report.issues.append(
            Issue(
                "error",
                table,
                where,
                ", ".join(required_absent),
                "required columns",
                "missing required column(s): "
                + ", ".join(required_absent)
                + _mapping_hint(table, config, source_types),
            )
        )
    return mapping, extra, required_absent


def _short(err: Exception, limit: int = 300) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[:limit] + " …"


def _required_columns(table: str) -> list[str]:
    return [s.name for s in column_specs(table) if s.required]


def _mapping_hint(table: str, config: KamConfig, source_types: dict[str, str]) -> str:
    found = ", ".join(list(source_types)[:12])
    mapped = " (after the [columns] map in the config)" if table in config.columns else ""
    return f"; columns found{mapped}: {found}. Map your names with [columns.{table}] in kam.toml"


def _match_columns(
    table: str, source_types: dict[str, str], config: KamConfig
) -> tuple[dict[str, str], list[str], list[str], dict[str, list[str]]]:
    """Contract column → source column; plus ignored, absent and clashing names."""
    explicit = config.columns.get(table, {})
    by_norm: dict[str, list[str]] = {}
    for name in source_types:
        by_norm.setdefault(normalise_name(name), []).append(name)
    mapping: dict[str, str] = {}
    absent: list[str] = []
    dupes: dict[str, list[str]] = {}
    for spec in column_specs(table):
        if spec.name in explicit:
            wanted = explicit[spec.name]
            hits = [n for n in source_types if n == wanted] or by_norm.get(
                normalise_name(wanted), []
            )
        else:
            hits = by_norm.get(spec.name, [])
        if len(hits) > 1:
            dupes[spec.name] = hits
        if hits:
            mapping[spec.name] = hits[0]
        else:
            absent.append(spec.name)
    used = set(mapping.values())
    extra = [n for n in source_types if n not in used]
    return mapping, extra, absent, dupes


def _create_typed_view(
    con: ibis.BaseBackend, table: str, mapping: dict[str, str], source_types: dict[str, str]
) -> None:
    selects = [ROW]
    for spec in column_specs(table):
        if spec.name not in mapping:
            continue
        src = mapping[spec.name]
        parsed, bad = _parse_expr(spec, src, source_types[src])
        selects.append(f"{parsed} AS {_ident(spec.name)}")
        if bad is not None:
            selects.append(f"{bad} AS {_ident('__bad_' + spec.name)}")
            selects.append(f"CAST({_ident(src)} AS VARCHAR) AS {_ident('__raw_' + spec.name)}")
    con.raw_sql(
        f"CREATE OR REPLACE VIEW typed_{table} AS SELECT {', '.join(selects)} FROM raw_{table}"
    )


# --------------------------------------------------------------------------- validation


@dataclass
class _Rule:
    table: str
    column: str | None
    rule: str
    message: str
    severity: str
    predicate: ir.BooleanValue  # True on a failing row
    show: tuple[str, ...]


def _check_predicate(t: ir.Table, column: str, name: str, stats: dict) -> ir.BooleanValue | None:
    c = t[column]
    if name == "in_range":
        ok = (c >= stats["min_value"]) & (c <= stats["max_value"])
    elif name == "greater_than_or_equal_to":
        ok = c >= stats["min_value"]
    elif name == "greater_than":
        ok = c > stats["min_value"]
    elif name == "less_than_or_equal_to":
        ok = c <= stats["max_value"]
    elif name == "isin":
        ok = c.isin(list(stats["allowed_values"]))
    elif name == "str_matches":
        ok = c.re_search(stats["pattern"])
    else:
        return None
    return c.notnull() & ~ok


_CHECK_MESSAGES = {
    "in_range": "value out of range",
    "greater_than_or_equal_to": "value below the minimum",
    "greater_than": "value not above the minimum",
    "less_than_or_equal_to": "value above the maximum",
    "isin": "value not allowed",
    "str_matches": "value has the wrong form",
}


def _context_columns(table: str, t: ir.Table) -> tuple[str, ...]:
    preferred = [*table_key(table), "account_id", "date"]
    out: list[str] = []
    for c in preferred:
        if c in t.columns and c not in out:
            out.append(c)
    return tuple(out[:3])


def _column_rules(ds: Dataset, table: str, as_of: dt.date) -> list[_Rule]:
    t = ds.checked_table(table)
    context = _context_columns(table, t)
    end_of_day = ibis.timestamp(dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time()))
    rules: list[_Rule] = []
    for spec in column_specs(table):
        if spec.name not in t.columns:
            continue
        c = t[spec.name]
        show = tuple(dict.fromkeys((spec.name, *context)))
        bad_col = f"__bad_{spec.name}"
        parse_failed = t[bad_col] if bad_col in t.columns else ibis.literal(False)
        if bad_col in t.columns:
            kind_words = {
                "amount": "not a number",
                "integer": "not a whole number",
                "date": "not a date (use 2024-04-01 or 2024/04/01)",
                "flag": "not a yes/no value",
            }
            rules.append(
                _Rule(
                    table,
                    spec.name,
                    f"parse {spec.kind}",
                    kind_words[spec.kind],
                    "error",
                    t[bad_col],
                    (f"__raw_{spec.name}", *context),
                )
            )
        if not spec.nullable:
            rules.append(
                _Rule(
                    table,
                    spec.name,
                    "not null",
                    "value missing",
                    "error",
                    c.isnull() & ~parse_failed,
                    show,
                )
            )
        for name, stats in spec.checks:
            pred = _check_predicate(t, spec.name, name, stats)
            if pred is not None:
                message = _CHECK_MESSAGES[name]
                if name == "greater_than_or_equal_to" and stats["min_value"] == 0:
                    message = "negative value"
                rules.append(
                    _Rule(
                        table, spec.name, describe_check(name, stats), message, "error", pred, show
                    )
                )
        if spec.not_after_as_of:
            rules.append(
                _Rule(
                    table,
                    spec.name,
                    f"not after as-of date {as_of}",
                    "date after the as-of date",
                    "error",
                    c.notnull() & (c >= end_of_day),
                    show,
                )
            )
    for rule in _cross_column_rules(t, table):
        rules.append(rule)
    return rules


def _cross_column_rules(t: ir.Table, table: str) -> list[_Rule]:
    out: list[_Rule] = []

    def has(*cols: str) -> bool:
        return all(c in t.columns for c in cols)

    if table == "transactions" and has("cost", "revenue"):
        out.append(
            _Rule(
                table,
                "cost",
                "cost <= revenue",
                "cost above revenue (negative gross profit)",
                "warning",
                t.cost > t.revenue + 1e-9,
                ("cost", "revenue", "account_id", "date"),
            )
        )
    if table == "contracts" and has("start_date", "end_date"):
        out.append(
            _Rule(
                table,
                "end_date",
                "end_date >= start_date",
                "contract ends before it starts",
                "error",
                t.end_date < t.start_date,
                ("end_date", "start_date", "contract_id"),
            )
        )
    if table == "contracts" and has("signed_date", "go_live_date"):
        out.append(
            _Rule(
                table,
                "go_live_date",
                "go_live_date >= signed_date",
                "go-live before signing",
                "error",
                t.go_live_date < t.signed_date,
                ("go_live_date", "signed_date", "contract_id"),
            )
        )
    if table == "usage" and has("seats_active", "seats_purchased"):
        out.append(
            _Rule(
                table,
                "seats_active",
                "seats_active <= seats_purchased",
                "more active seats than purchased",
                "warning",
                t.seats_active > t.seats_purchased,
                ("seats_active", "seats_purchased", "account_id", "month"),
            )
        )
    return out


def _count_failures(t: ir.Table, rules: list[_Rule]) -> tuple[int, list[int]]:
    aggs = {"__n": t.count()}
    for i, rule in enumerate(rules):
        aggs[f"r{i}"] = ibis.ifelse(rule.predicate.fill_null(False), 1, 0).sum()  # any engine
    row = t.aggregate(**aggs).to_pyarrow().to_pylist()[0]
    return int(row["__n"]), [int(row[f"r{i}"] or 0) for i in range(len(rules))]


def _examples(
    t: ir.Table, predicate: ir.BooleanValue, show: Iterable[str], offset: int
) -> list[dict]:
    cols = [c for c in show if c in t.columns]
    numbered = ROW in t.columns  # files: line numbers; engine tables have no row order
    lead = [ROW] if numbered else []
    rows = (
        t.filter(predicate.fill_null(False))
        .select(*lead, *cols)
        .order_by(lead or cols)
        .limit(MAX_EXAMPLES)
        .to_pyarrow()
        .to_pylist()
    )
    out = []
    for r in rows:
        ex = {"_line": int(r.pop(ROW)) + offset} if numbered else {}
        for k, v in r.items():
            name = k.removeprefix("__raw_")
            if k.startswith("__raw_") or name not in ex:
                ex[name] = v
        out.append(ex)
    return out


def _issue_for(ds: Dataset, rule: _Rule, n: int, examples: list[dict]) -> Issue:
    src = ds.sources[rule.table]
    return Issue(
        rule.severity,
        rule.table,
        src.path.name,
        rule.column,
        rule.rule,
        rule.message,
        n,
        examples,
        src.line_label,
    )


def _key_issues(ds: Dataset, table: str) -> list[Issue]:
    key = [k for k in table_key(table) if k in ds.checked_table(table).columns]
    unique_cols = [s.name for s in column_specs(table) if s.unique and s.name not in key]
    t = ds.checked_table(table)
    src = ds.sources[table]
    issues = []
    for cols in ([key] if key else []) + [[c] for c in unique_cols if c in t.columns]:
        present = t.filter(ibis.and_(*[t[c].notnull() for c in cols]))
        dup_keys = present.group_by(cols).aggregate(__k=present.count()).filter(lambda g: g.__k > 1)
        n_dup = int(dup_keys.aggregate(n=dup_keys.__k.sum()).to_pyarrow().to_pylist()[0]["n"] or 0)
        if n_dup:
            joined = present.semi_join(dup_keys, cols)
            examples = _examples(joined, ibis.literal(True), cols, src.line_offset)
            issues.append(
                Issue(
                    "error",
                    table,
                    src.path.name,
                    ", ".join(cols),
                    "unique key",
                    "duplicate key",
                    n_dup,
                    examples,
                    src.line_label,
                )
            )
    return issues


def _foreign_key_issues(ds: Dataset, table: str) -> list[Issue]:
    t = ds.checked_table(table)
    if "account_id" not in t.columns or table == "accounts" or not ds.has("accounts"):
        return []
    accounts = ds.table("accounts").select("account_id").distinct()
    orphans = t.filter(t.account_id.notnull()).anti_join(accounts, "account_id")
    n = int(orphans.count().to_pyarrow().as_py())
    if not n:
        return []
    src = ds.sources[table]
    examples = _examples(orphans, ibis.literal(True), _context_columns(table, t), src.line_offset)
    return [
        Issue(
            "error",
            table,
            src.path.name,
            "account_id",
            "account_id exists in accounts",
            "unknown account (not in accounts)",
            n,
            examples,
            src.line_label,
        )
    ]


def _reports_to_issues(ds: Dataset) -> list[Issue]:
    if not ds.has("stakeholders"):
        return []
    t = ds.checked_table("stakeholders")
    if "reports_to" not in t.columns:
        return []
    known = t.select(reports_to=t.contact_id)
    bad = t.filter(t.reports_to.notnull()).anti_join(known, "reports_to")
    n = int(bad.count().to_pyarrow().as_py())
    if not n:
        return []
    src = ds.sources["stakeholders"]
    return [
        Issue(
            "warning",
            "stakeholders",
            src.path.name,
            "reports_to",
            "reports_to names a contact_id",
            "manager not found among the contacts (org chart will show the person at the top)",
            n,
            _examples(
                bad, ibis.literal(True), ("reports_to", "contact_id", "account_id"), src.line_offset
            ),
            src.line_label,
        )
    ]


def _currency_issues(ds: Dataset, report: ValidationReport) -> list[Issue]:
    base = ds.config.data.base_currency
    seen: set[str] = set()
    issues = []
    for table in ("transactions", "contracts"):
        if not ds.has(table) or "currency" not in ds.checked_table(table).columns:
            continue
        t = ds.checked_table(table)
        values = t.filter(t.currency.notnull()).currency.value_counts().to_pyarrow().to_pylist()
        found = {r["currency"]: r["currency_count"] for r in values}
        seen.update(found)
        foreign = sorted(set(found) - {base})
        if not foreign:
            continue
        if ds.has("fx_rates"):
            rates = {
                r["currency"]
                for r in ds.table("fx_rates").select("currency").to_pyarrow().to_pylist()
            }
            foreign = [c for c in foreign if c not in rates]
            rule, msg = "currency in fx_rates", "currency without a rate in fx_rates"
        else:
            rule = "one currency or an fx_rates table"
            msg = f"amounts in {', '.join(foreign)} besides base currency {base}, and no fx_rates table"
        if foreign:
            src = ds.sources[table]
            pred = t.currency.isin(foreign)
            examples = _examples(
                t, pred, ("currency", *_context_columns(table, t)), src.line_offset
            )
            issues.append(
                Issue(
                    "error",
                    table,
                    src.path.name,
                    "currency",
                    rule,
                    msg,
                    sum(found[c] for c in foreign),
                    examples,
                    src.line_label,
                )
            )
    report.summary["currencies"] = sorted(seen) or [base]
    return issues


def validate_dataset(
    folder: str | Path,
    *,
    as_of: dt.date | str | None = None,
    config: KamConfig | None = None,
    cache_dir: Path | None = None,
) -> ValidationReport:
    """Check a dataset folder against the contract.

    Parameters
    ----------
    folder : str or Path
        The dataset folder.
    as_of : date or str, optional
        Analysis date; dates after it are errors (contract end dates and
        expected close dates excepted). Default: today.
    config : KamConfig, optional
        Column map, file names, base currency.
    cache_dir : Path, optional
        See :func:`open_dataset`.

    Returns
    -------
    ValidationReport
        ``ok`` is False when any error-level rule is broken. Every issue
        names the file, column, rule, number of failing rows and up to five
        example rows with their line (CSV) or row (Parquet, Excel) number.
    """
    as_of = as_date(as_of) if as_of is not None else dt.date.today()
    try:
        ds = open_dataset(folder, config=config, cache_dir=cache_dir)
    except DatasetError as err:
        err.report.as_of = as_of
        return err.report
    return validate_open_dataset(ds, as_of)


def validate_open_dataset(ds: Dataset, as_of: dt.date) -> ValidationReport:
    """Validate an already opened :class:`Dataset` (see :func:`validate_dataset`)."""
    report = ValidationReport(folder=ds.label, as_of=as_of)
    tables_summary = {}
    for table in TABLE_MODELS:
        if table not in ds.sources or ds.missing_columns.get(table):
            continue
        t = ds.checked_table(table)
        rules = _column_rules(ds, table, as_of)
        try:
            n_rows, counts = _count_failures(t, rules)
        except Exception as err:
            src = ds.sources[table]
            report.issues.append(
                Issue(
                    "error",
                    table,
                    src.path.name,
                    None,
                    "readable table",
                    f"cannot read the file as a table: {_short(err)}",
                )
            )
            continue
        src = ds.sources[table]
        tables_summary[table] = {
            "file": src.path.name,
            "rows": n_rows,
            "encoding": src.encoding,
            "ignored_columns": ds.ignored_columns.get(table, []),
        }
        if n_rows == 0 and table in REQUIRED_TABLES:
            report.issues.append(
                Issue(
                    "error",
                    table,
                    src.path.name,
                    None,
                    "has rows",
                    "table has a header but no rows",
                )
            )
            continue
        for rule, n in zip(rules, counts, strict=True):
            if n:
                examples = _examples(t, rule.predicate, rule.show, src.line_offset)
                report.issues.append(_issue_for(ds, rule, n, examples))
        report.issues.extend(_key_issues(ds, table))
        report.issues.extend(_foreign_key_issues(ds, table))
    report.issues.extend(_reports_to_issues(ds))
    report.issues.extend(_currency_issues(ds, report))
    report.summary["tables"] = tables_summary
    report.summary["missing_optional"] = [
        t for t in CANONICAL_TABLES if t not in ds.sources and t not in REQUIRED_TABLES
    ]
    if ds.has("transactions") and tables_summary.get("transactions", {}).get("rows"):
        tx = ds.table("transactions")
        row = tx.aggregate(first=tx.date.min(), last=tx.date.max()).to_pyarrow().to_pylist()[0]
        if row["first"] is not None:
            report.summary["transaction_dates"] = [
                row["first"].date().isoformat(),
                row["last"].date().isoformat(),
            ]
    if ds.has("accounts"):
        report.summary["accounts"] = tables_summary.get("accounts", {}).get("rows", 0)
    return report


def as_date(value: dt.date | str) -> dt.date:
    """Parse an as-of date given as ``2026-03-31``, ``2026/03/31`` or a date object."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).replace("/", "-"))
    except ValueError:
        raise ValueError(f"as-of date {value!r} is not a date like 2026-03-31") from None

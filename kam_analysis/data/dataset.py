"""A dataset opened on an engine: typed tables with the contract's names.

:func:`open_dataset` finds the files of a dataset folder, works out how
each is written (:mod:`kam_analysis.data.files`), maps the export's columns
onto the contract (names, or ``=`` formulas) and parses them with the rule
table of :mod:`kam_analysis.data.parsing`. Nothing is loaded: every table
is an Ibis expression over the files (DuckDB) or over an engine's tables.

Real exports often lack an accounts file: the accounts table is then
derived from the transactions, one row per account_id, with columns named
in ``[columns.accounts]`` carried over from the transaction lines (the most
frequent value per account). Transaction lines without an account are left
out (``[data] unattributed = "drop"``) and counted by validation.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import duckdb
import ibis
import ibis.expr.types as ir
import pyarrow

from kam_analysis.core.schemas import REQUIRED_TABLES, TABLE_MODELS, ColumnSpec, column_specs
from kam_analysis.data.files import (
    ROW,
    EncodingError,
    FileFormatError,
    SourceFile,
    find_table_files,
    missing_required_table,
    prepare_source,
    raw_select,
    writable_cache,
)
from kam_analysis.data.parsing import (
    Formula,
    ParseOptions,
    ParseRequest,
    check_formula_kind,
    compile_formula,
    formula_input_kind,
    formula_raw_text,
    is_formula,
    parse_columns,
    parse_formula,
)
from kam_analysis.data.report import DatasetError, Issue, ValidationReport
from kam_analysis.data.settings import DataSettings
from kam_analysis.data.sources import SourceError, connect_source, describe_source

__all__ = [
    "DERIVED",
    "Dataset",
    "ReadConfig",
    "connect",
    "normalise_name",
    "open_dataset",
    "open_engine_dataset",
    "rows_of_accounts",
]

DERIVED = "derived"
"""``SourceFile.format`` of a table derived from another (accounts from transactions)."""

CARRY = "__acct_"
"""Prefix of transaction columns carried over into a derived accounts table."""


class ReadConfig(Protocol):
    """What reading needs from the configuration: ``data`` and ``columns``."""

    data: DataSettings
    columns: dict[str, dict[str, str]]


@dataclass
class _DefaultConfig:
    data: DataSettings = field(default_factory=DataSettings)
    columns: dict[str, dict[str, str]] = field(default_factory=dict)


ColumnSource = str | Formula
"""Where a contract column comes from: a source column name, or a formula."""


def normalise_name(name: str) -> str:
    """Column-name matching key: trimmed, lower case, spaces/hyphens → ``_``."""
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def _short(err: Exception, limit: int = 300) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[:limit] + " …"


@dataclass
class Dataset:
    """A dataset opened on an engine.

    Use :meth:`table` for a typed Ibis table (contract column names) and
    :meth:`to_pandas` to bring a small table into pandas.
    """

    folder: Path
    config: Any
    con: ibis.BaseBackend
    sources: dict[str, SourceFile]
    columns: dict[str, dict[str, str]]
    """Per table: contract column -> the source column or formula it comes from."""
    ignored_columns: dict[str, list[str]]
    missing_columns: dict[str, list[str]]
    typed: dict[str, ir.Table] = field(default_factory=dict)
    """Typed table expressions (with ``__row`` line numbers for files and parse flags)."""
    all_lines: ir.Table | None = None
    """Every transaction line, including those without an account (dropped from ``typed``)."""
    numbered: dict[str, ir.Table] = field(default_factory=dict)
    """Typed tables of delimited files with ``__row`` line numbers, for example rows only."""
    views: dict[str, ir.Table] = field(default_factory=dict)
    """:meth:`checked_table` results: engine views where the engine is this process's DuckDB."""

    @property
    def label(self) -> str:
        """Where the data is: the folder, or the engine and database of a source."""
        source = self.config.data.source
        if source.is_files:
            return str(self.folder)
        return describe_source(source)

    @property
    def derived(self) -> set[str]:
        """Tables derived from others (the accounts table of an export without one)."""
        return {t for t, s in self.sources.items() if s.format == DERIVED}

    def has(self, table: str) -> bool:
        """Whether the dataset provides ``table`` (a derived accounts table counts)."""
        return table in self.sources and not self.missing_columns.get(table)

    def table(self, table: str) -> ir.Table:
        """The typed table (contract columns present in the source, no helper columns)."""
        t = self.checked_table(table)
        return t.select([c for c in t.columns if not c.startswith("__")])

    def checked_table(self, table: str) -> ir.Table:
        """The typed table with row numbers (files) and parse flags, for validation.

        On a dataset folder (the in-process DuckDB of :func:`connect`) the
        typed expression becomes a view of the connection on first use, and
        the table returned reads the view: every later query, a validation
        rule or an analysis, compiles against one table instead of the whole
        typing expression (casts, parse rules, derived columns), which took
        Ibis most of a small query's time. The engine computes only the
        columns a query reads; the rows and values are the same.
        """
        self._require(table)
        if table not in self.views:
            t = self.typed[table]
            if self.con.name == "duckdb" and self.config.data.source.is_files:
                name = f"kam_typed_{table}"  # not a name _engine_table registers
                self.con.create_view(name, t, overwrite=True)
                t = self.con.table(name)
            self.views[table] = t
        return self.views[table]

    def example_table(self, table: str) -> ir.Table:
        """:meth:`checked_table` with line numbers (``__row``) where the source has them.

        The same columns and values; slower to scan for delimited text, so
        used only to fetch the example rows of a broken rule.
        """
        if table in self.numbered:
            return self.numbered[table]
        return self.checked_table(table)

    def to_pandas(self, table: str):
        """Load ``table`` into pandas; ``None`` when the dataset lacks it."""
        if not self.has(table):
            return None
        return self.table(table).to_pandas()

    def release_memory(self) -> None:
        """Give the memory the engine freed back to the operating system.

        DuckDB keeps freed blocks in its allocator after a query; applying
        its memory limit again flushes them (0.6 GiB at 100,000 accounts
        after the run state's queries). Done before forking a child, which
        would otherwise carry them too. Only for the in-process engine
        :func:`connect` opens on a dataset folder; another source's engine
        keeps its own settings. Arrow's memory pool (pandas' text columns)
        gives back its unused pages in any case.
        """
        pyarrow.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages too
        if self.con.name != "duckdb" or not self.config.data.source.is_files:
            return
        limit = self.config.data.duckdb_memory_limit
        self.con.raw_sql(f"SET memory_limit = '{limit}'")

    def last_transaction_date(self) -> dt.date | None:
        """The date of the latest transaction line with an account (None without lines)."""
        if not self.has("transactions"):
            return None
        t = self.table("transactions")
        value = t.aggregate(last=t.date.max()).to_pyarrow().to_pylist()[0]["last"]
        return None if value is None else value.date()

    def _require(self, table: str) -> None:
        if table not in TABLE_MODELS:
            raise KeyError(f"unknown table {table!r}; known: {', '.join(TABLE_MODELS)}")
        if not self.has(table):
            raise KeyError(f"dataset {self.label} has no usable {table} table")


IN_LIST_MAX = 64
"""Most account ids :func:`rows_of_accounts` filters with a literal ``IN`` list."""


def rows_of_accounts(table: ir.Table, account_ids: list[str]) -> ir.Table:
    """The rows of an engine table whose ``account_id`` is one of ``account_ids``.

    One id is an equality and up to :data:`IN_LIST_MAX` ids an ``IN`` list:
    both keep the rows in the table's order, so that one account's rows of a
    few accounts' query are the rows of its own query. More ids are a
    semi-join with an in-memory table of the ids (a literal ``IN`` list of
    thousands of ids takes Ibis seconds to compile).

    Parameters
    ----------
    table : ibis.expr.types.Table
        With an ``account_id`` column (compared as text).
    account_ids : list of str

    Returns
    -------
    ibis.expr.types.Table
    """
    ids = [str(a) for a in account_ids]
    column = table["account_id"].cast("string")
    if len(ids) == 1:
        return table.filter(column == ids[0])
    if len(ids) <= IN_LIST_MAX:
        return table.filter(column.isin(ids))
    kept = ibis.memtable({"_kept_account": ids})
    return table.semi_join(kept, column == kept["_kept_account"])


def connect(config: ReadConfig | None = None) -> ibis.BaseBackend:
    """An in-process DuckDB connection with the configured memory cap."""
    settings = (config or _DefaultConfig()).data
    options: dict[str, Any] = {"memory_limit": settings.duckdb_memory_limit}
    if settings.duckdb_threads:
        options["threads"] = settings.duckdb_threads
    con = ibis.duckdb.connect(**options)
    try:  # no progress bars in logs or reports
        con.raw_sql("SET enable_progress_bar = false")
    except duckdb.Error:  # inside Jupyter DuckDB rejects the setting (ipywidgets); none shows there
        pass
    return con


def _parse_options(settings: DataSettings, src: SourceFile | None, engine: str) -> ParseOptions:
    semicolon = src is not None and src.detected_delimiter == ";"
    return ParseOptions(
        decimal=settings.decimal or ".",
        refuse_commas=semicolon and settings.decimal is None,
        date_formats=tuple(settings.date_format),
        engine=engine,
    )


# --------------------------------------------------------------------------- column map


@dataclass
class _Mapping:
    sources: dict[str, ColumnSource]
    extra: list[str]
    absent: list[str]


def _find_column(wanted: str, names: list[str]) -> list[str]:
    exact = [n for n in names if n == wanted]
    return exact or [n for n in names if normalise_name(n) == normalise_name(wanted)]


def _map_columns(
    table: str,
    where: str,
    names: list[str],
    explicit: dict[str, str],
    report: ValidationReport,
    *,
    specs: tuple[ColumnSpec, ...] | None = None,
) -> _Mapping:
    """Contract column -> source column or formula; problems go into ``report``."""
    specs = specs if specs is not None else column_specs(table)
    sources: dict[str, ColumnSource] = {}
    absent: list[str] = []
    used: set[str] = set()
    for spec in specs:
        wanted = explicit.get(spec.name)
        if wanted is not None and is_formula(wanted):
            formula = parse_formula(wanted)  # checked when the configuration was read
            unknown = [c for c in formula.columns if not _find_column(c, names)]
            if unknown:
                report.issues.append(
                    Issue(
                        "error",
                        table,
                        where,
                        spec.name,
                        "formula columns exist",
                        f"formula {wanted!r} uses column(s) {unknown} not found in the file"
                        + _found_hint(names),
                    )
                )
                continue
            resolved = [_find_column(c, names)[0] for c in formula.columns]
            used.update(resolved)
            sources[spec.name] = formula
            continue
        hits = _find_column(wanted, names) if wanted is not None else _find_column(spec.name, names)
        if wanted is None:
            hits = [n for n in hits if normalise_name(n) == spec.name]
        if len(hits) > 1:
            report.issues.append(
                Issue(
                    "error",
                    table,
                    where,
                    spec.name,
                    "unique column names",
                    "columns "
                    + ", ".join(repr(n) for n in hits)
                    + " map to the same contract column",
                )
            )
        if hits:
            sources[spec.name] = hits[0]
            used.add(hits[0])
        else:
            absent.append(spec.name)
    extra = [n for n in names if n not in used and n != ROW]
    return _Mapping(sources, extra, absent)


def _found_hint(names: list[str]) -> str:
    shown = ", ".join(n for n in names[:15] if n != ROW)
    return f"; columns found: {shown}"


def _required_columns(table: str) -> list[str]:
    return [s.name for s in column_specs(table) if s.required]


def _report_required(
    table: str, where: str, mapping: _Mapping, names: list[str], explicit: bool, report
) -> list[str]:
    missing = [c for c in mapping.absent if c in _required_columns(table)]
    if missing:
        mapped = " (after the [columns] map in the config)" if explicit else ""
        report.issues.append(
            Issue(
                "error",
                table,
                where,
                ", ".join(missing),
                "required columns",
                "missing required column(s): "
                + ", ".join(missing)
                + f"; columns found{mapped}: "
                + ", ".join(n for n in names[:12] if n != ROW)
                + f". Map your names with [columns.{table}] in kam.toml",
            )
        )
    return missing


# --------------------------------------------------------------------------- typing


def typed_expression(
    raw: ir.Table,
    table: str,
    sources: dict[str, ColumnSource],
    options: ParseOptions,
    *,
    carry: dict[str, ColumnSource] | None = None,
) -> ir.Table:
    """The source table with contract names and types, plus parse flags and raw text.

    Parameters
    ----------
    raw : ibis Table
        The source as read (text columns for CSV; typed for Parquet and engines);
        ``__row`` is kept when present.
    table : str
        Contract table.
    sources : dict
        Contract column -> source column name or :class:`Formula`.
    options : ParseOptions
    carry : dict, optional
        Accounts column -> source column or formula of *this* (transactions)
        table, carried over into a derived accounts table as ``__acct_<name>``.

    Returns
    -------
    ibis Table
        Contract columns, ``__bad_<col>`` (True where a value could not be
        read) and ``__raw_<col>`` (the text as written, for examples).
    """
    names = list(raw.columns)
    kinds = {s.name: s.kind for s in column_specs(table)}
    account_kinds = {s.name: s.kind for s in column_specs("accounts")}
    targets = [(name, kinds[name], source, name) for name, source in sources.items()]
    targets += [
        (name, account_kinds[name], source, CARRY + name) for name, source in (carry or {}).items()
    ]
    requests: list[ParseRequest] = []
    for i, (_, kind, source, _) in enumerate(targets):
        if isinstance(source, Formula):
            for j, col in enumerate(source.columns):
                column = _find_column(col, names)[0]
                requests.append(ParseRequest(f"{i}_{j}", column, formula_input_kind(kind)))
        else:
            requests.append(ParseRequest(f"{i}", _find_column(source, names)[0], kind))
    parsed = parse_columns(raw, requests, options)
    cols: dict[str, ir.Value] = {}
    if ROW in parsed.columns:
        cols[ROW] = parsed[ROW]
    for i, (_, kind, source, out) in enumerate(targets):
        if isinstance(source, Formula):
            keys = {col: f"{i}_{j}" for j, col in enumerate(source.columns)}
            value = compile_formula(source, kind, lambda c, k=keys: parsed[f"__v_{k[c]}"])
            bad = ibis.or_(*[parsed[f"__b_{k}"] for k in keys.values()]) if keys else None
            raw_text = formula_raw_text(source, lambda c, k=keys: parsed[f"__r_{k[c]}"])
        else:
            value = parsed[f"__v_{i}"]
            bad = parsed[f"__b_{i}"]
            raw_text = parsed[f"__r_{i}"]
        cols[out] = value
        if not out.startswith(CARRY) and bad is not None and kind != "text":
            cols[f"__bad_{out}"] = bad
            cols[f"__raw_{out}"] = raw_text
    if table == "accounts" and "name" not in cols and "account_id" in cols:
        cols["name"] = cols["account_id"]
    return parsed.select(**cols)


def derived_accounts(lines: ir.Table, carried: list[str]) -> ir.Table:
    """One row per account of the transaction lines, with carried-over columns.

    Each carried column takes the account's most frequent non-missing value
    (ties: the smallest value, so the result is deterministic). ``name`` is
    the account id unless a name column is carried. Rows are in account order.

    Parameters
    ----------
    lines : ibis Table
        Typed transaction lines (``account_id`` not null) with ``__acct_<col>`` columns.
    carried : list of str
        Accounts columns carried over.

    Returns
    -------
    ibis Table
        ``account_id``, ``name`` and the carried columns.
    """
    ids = lines.select("account_id").distinct()
    out = ids
    for col in carried:
        src = lines.select("account_id", v=lines[CARRY + col]).filter(lambda t: t.v.notnull())
        counts = src.group_by(["account_id", "v"]).aggregate(n=src.count())
        rank = ibis.row_number().over(
            group_by=counts.account_id, order_by=[ibis.desc(counts.n), counts.v]
        )
        top = counts.mutate(_r=rank).filter(lambda t: t._r == 0)
        top = top.select(_k=top.account_id, **{col: top.v})
        out = out.left_join(top, out.account_id == top._k).drop("_k")
    if "name" not in carried:
        out = out.mutate(name=out.account_id.cast("string"))
    else:
        out = out.mutate(name=ibis.coalesce(out["name"], out.account_id.cast("string")))
    return out.order_by("account_id")  # the engine's grouping has no order of its own


def _carry_sources(
    config: ReadConfig, names: list[str], where: str, report: ValidationReport
) -> dict[str, ColumnSource]:
    """``[columns.accounts]`` read as transaction columns (when there is no accounts file)."""
    explicit = dict(config.columns.get("accounts", {}))
    if "account_id" in explicit:
        report.issues.append(
            Issue(
                "error",
                "accounts",
                where,
                "account_id",
                "accounts derived from transactions",
                "there is no accounts file, so account_id comes from the transactions; "
                "remove account_id from [columns.accounts]",
            )
        )
        explicit.pop("account_id")
    specs = tuple(s for s in column_specs("accounts") if s.name in explicit)
    mapping = _map_columns("accounts", where, names, explicit, report, specs=specs)
    for name in mapping.absent:
        report.issues.append(
            Issue(
                "error",
                "accounts",
                where,
                name,
                "carried column exists",
                f"[columns.accounts] {name} = {explicit[name]!r}: no accounts file, so it must "
                "name a column of the transactions, and there is none" + _found_hint(names),
            )
        )
    return mapping.sources


def _finish(ds: Dataset, carried: dict[str, str], settings: DataSettings) -> Dataset:
    """Drop unattributed lines and derive the accounts table when there is no accounts file."""
    if "transactions" in ds.typed:
        lines = ds.typed["transactions"]
        ds.all_lines = lines
        if settings.unattributed == "drop" and "account_id" in lines.columns:
            ds.typed["transactions"] = lines.filter(lines.account_id.notnull())
            if "transactions" in ds.numbered:
                numbered = ds.numbered["transactions"]
                ds.numbered["transactions"] = numbered.filter(numbered.account_id.notnull())
    if "accounts" not in ds.sources and ds.has("transactions"):
        lines = ds.typed["transactions"]
        accounts = derived_accounts(lines, list(carried))
        ds.typed["accounts"] = accounts
        src = ds.sources["transactions"]
        ds.sources["accounts"] = SourceFile(
            "accounts", src.path, DERIVED, src.read_path, None, 0, "row"
        )
        ds.columns["accounts"] = {"account_id": "transactions.account_id"} | {
            c: f"transactions.{label}" for c, label in carried.items()
        }
        ds.ignored_columns["accounts"] = []
    return ds


def _unused(extra: list[str], carry: dict[str, ColumnSource], names: list[str]) -> list[str]:
    """Source columns used by nothing (neither the contract nor carried into accounts)."""
    used: set[str] = set()
    for source in carry.values():
        for col in source.columns if isinstance(source, Formula) else (source,):
            used.update(_find_column(col, names)[:1])
    return [c for c in extra if c not in used]


def _labels(sources: dict[str, ColumnSource]) -> dict[str, str]:
    return {c: (s.source if isinstance(s, Formula) else s) for c, s in sources.items()}


# --------------------------------------------------------------------------- opening


def open_dataset(
    folder: str | Path,
    *,
    config: ReadConfig | None = None,
    cache_dir: Path | None = None,
) -> Dataset:
    """Open a dataset folder: find files, detect how they are written, map columns.

    Nothing is loaded into memory; tables become engine expressions. When
    the configuration names an engine source (``[data.source]``), the tables
    are read there instead (:func:`open_engine_dataset`) and ``folder`` only
    holds derived files.

    Parameters
    ----------
    folder : str or Path
        The dataset folder.
    config : KamConfig, optional
        Reading settings (``config.data``) and column map (``config.columns``).
    cache_dir : Path, optional
        Where converted copies (non-UTF-8 or whitespace-delimited text, Excel)
        go; default ``<folder>/_derived/.cache``, or a temporary folder when
        that is not writable.

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
    config = config or _DefaultConfig()
    settings = config.data
    if not settings.source.is_files:
        return open_engine_dataset(config, folder=folder)
    report = ValidationReport(folder=folder, as_of=dt.date.today())
    if not folder.is_dir():
        report.issues.append(
            Issue("error", "-", str(folder), None, "folder exists", "dataset folder not found")
        )
        raise DatasetError(report)
    files, problems = find_table_files(folder, settings)
    for p in problems:
        report.issues.append(Issue("error", p["table"], p["file"], None, p["rule"], p["message"]))
    configured = {p["table"] for p in problems}
    for table in REQUIRED_TABLES:
        derivable = table == "accounts" and "transactions" in files
        if table not in files and table not in configured and not derivable:
            p = missing_required_table(table, folder)
            report.issues.append(Issue("error", table, None, None, p["rule"], p["message"]))
    con = connect(config)
    cache: Path | None = None
    ds = Dataset(folder, config, con, {}, {}, {}, {})
    carried: dict[str, str] = {}
    for table, path in files.items():
        if path.stat().st_size == 0:
            report.issues.append(
                Issue("error", table, path.name, None, "not empty", "file is empty")
            )
            continue
        try:
            if path.suffix.lower() != ".parquet" and cache is None:
                cache = writable_cache(folder, cache_dir)
            src = prepare_source(table, path, cache, settings)
            con.raw_sql(f"CREATE OR REPLACE VIEW rawn_{table} AS {raw_select(src)}")
            numbered = con.table(f"rawn_{table}")
            if src.format == "csv":
                con.raw_sql(
                    f"CREATE OR REPLACE VIEW raw_{table} AS {raw_select(src, numbered=False)}"
                )
                raw = con.table(f"raw_{table}")
            else:
                raw = numbered
            names = [c for c in numbered.columns if c != ROW]
        except EncodingError as err:
            report.issues.append(Issue("error", table, path.name, None, err.rule, str(err)))
            continue
        except FileFormatError as err:
            report.issues.append(Issue("error", table, path.name, None, err.rule, str(err)))
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
        explicit = config.columns.get(table, {})
        mapping = _map_columns(table, path.name, names, explicit, report)
        missing = _report_required(table, path.name, mapping, names, bool(explicit), report)
        carry: dict[str, ColumnSource] = {}
        if table == "transactions" and "accounts" not in files:
            carry = _carry_sources(config, names, path.name, report)
            carried = _labels(carry)
        if missing:
            ds.missing_columns[table] = missing
        ds.sources[table] = src
        ds.columns[table] = _labels(mapping.sources)
        ds.ignored_columns[table] = _unused(mapping.extra, carry, names)
        if not missing:
            options = _parse_options(settings, src, "duckdb")
            ds.typed[table] = typed_expression(raw, table, mapping.sources, options, carry=carry)
            if raw is not numbered:
                ds.numbered[table] = typed_expression(numbered, table, mapping.sources, options)
    if report.errors:
        raise DatasetError(report)
    return _finish(ds, carried, settings)


def open_engine_dataset(config: ReadConfig, *, folder: str | Path | None = None) -> Dataset:
    """Open the tables of an engine source (``[data.source]``) as typed Ibis tables.

    Nothing is read: each table becomes an expression on the engine (Spark,
    PostgreSQL, a warehouse) with the contract's column names and types,
    parsed by the same rules as files, so validation and the feature build
    run there and only results come back.

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
    settings = config.data
    source = settings.source
    where = describe_source(source)
    report = ValidationReport(folder=where, as_of=dt.date.today())
    try:
        con = connect_source(source)
    except SourceError as err:
        report.issues.append(Issue("error", "-", where, None, "connection", str(err)))
        raise DatasetError(report) from None
    database = _database_arg(source.database)
    ds = Dataset(Path(folder) if folder is not None else Path("."), config, con, {}, {}, {}, {})
    found: dict[str, tuple[str, ir.Table]] = {}
    for table in TABLE_MODELS:
        name = source.tables.get(table, table)
        qualified = f"{source.database}.{name}" if source.database else name
        try:
            found[table] = (qualified, _engine_table(con, table, name, database))
        except Exception as err:
            derivable = table == "accounts"
            if (table in REQUIRED_TABLES and not derivable) or table in source.tables:
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
    engine = con.name
    carried: dict[str, str] = {}
    for table, (qualified, t) in found.items():
        names = list(t.columns)
        explicit = config.columns.get(table, {})
        mapping = _map_columns(table, qualified, names, explicit, report)
        missing = _report_required(table, qualified, mapping, names, bool(explicit), report)
        carry: dict[str, ColumnSource] = {}
        if table == "transactions" and "accounts" not in found:
            carry = _carry_sources(config, names, qualified, report)
            carried = _labels(carry)
        if missing:
            ds.missing_columns[table] = missing
        ds.sources[table] = SourceFile(
            table, Path(qualified), "engine", Path(qualified), None, 0, "row"
        )
        ds.columns[table] = _labels(mapping.sources)
        ds.ignored_columns[table] = _unused(mapping.extra, carry, names)
        if not missing:
            options = _parse_options(settings, None, engine)
            ds.typed[table] = typed_expression(t, table, mapping.sources, options, carry=carry)
    if report.errors:
        raise DatasetError(report)
    return _finish(ds, carried, settings)


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


def check_formulas(columns: dict[str, dict[str, str]]) -> None:
    """Parse every formula of a column map and check it fits its contract column.

    Raises
    ------
    FormulaError
        Naming the table, column and the first problem.
    """
    for table, mapping in columns.items():
        kinds = {s.name: s.kind for s in column_specs(table)}
        for name, value in mapping.items():
            if is_formula(value) and name in kinds:
                check_formula_kind(parse_formula(value), kinds[name], f"columns.{table}.{name}")

"""One parser for files and engines: the same rows read both ways must agree.

The same text rows are written as CSV files into a dataset folder (read by
the embedded DuckDB, the files path) and as VARCHAR tables into a DuckDB
database opened as an engine source (``[data.source] url = "duckdb:///..."``,
the engine path). Both must give identical typed tables, identical parse
flags and identical validation findings (rule, column, message, row counts
and example values; only the file name and line numbers differ).

A review once found the two paths disagreeing: the files path read ten date
forms including ``20240401`` while the engine path only replaced ``/`` with
``-``, and a fractional value in an integer column was refused on files but
silently truncated on engines. The cases below pin each of those down.

Engines other than DuckDB read dates with the portable form of the rules
(fields cut out by a regular expression, checked against the calendar, cast
from ISO text) instead of ``TRY_STRPTIME``. That form runs on DuckDB too, so
it is compared with ``TRY_STRPTIME`` here without any other engine; the
tests marked ``spark`` / ``postgres`` (and ``slow``) repeat every case on
PySpark and on a throw-away PostgreSQL server, value by value and as whole
datasets with their validation findings.
"""

from __future__ import annotations

import csv
import datetime as dt
import glob
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import duckdb
import ibis
import pandas as pd
import pytest

from kam_analysis.config import config_from_dict
from kam_analysis.data import open_dataset, validate_open_dataset
from kam_analysis.data.dataset import Dataset
from kam_analysis.data.parsing import ParseOptions, ParseRequest, parse_columns
from kam_analysis.data.report import MAX_EXAMPLES

AS_OF = dt.date(2025, 3, 31)
HAS_JAVA = shutil.which("java") is not None
try:
    import pyspark  # noqa: F401

    HAS_PYSPARK = True
except ImportError:
    HAS_PYSPARK = False

Rows = list[dict[str, str | None]]


# --------------------------------------------------------------------------- reading both ways


def write_csv(path: Path, rows: Rows, delimiter: str) -> None:
    """Rows as a delimited text file (``None`` and ``""`` both become an empty field)."""
    columns = list(rows[0])
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row[c] is None else row[c] for c in columns])


def write_engine_tables(db: Path, tables: dict[str, Rows]) -> None:
    """Rows as VARCHAR tables of a DuckDB database (``None`` is NULL, ``""`` stays empty text)."""
    con = duckdb.connect(str(db))
    for name, rows in tables.items():
        columns = list(rows[0])
        con.execute(f"CREATE TABLE {name} ({', '.join(f'{c} VARCHAR' for c in columns)})")
        con.executemany(
            f"INSERT INTO {name} VALUES ({', '.join('?' * len(columns))})",
            [[row[c] for c in columns] for row in rows],
        )
    con.close()


def duckdb_source(tmp_path: Path, tables: dict[str, Rows]) -> dict:
    """``[data.source]`` of a DuckDB database file holding ``tables`` as text."""
    db = tmp_path / "warehouse.duckdb"
    write_engine_tables(db, tables)
    return {"url": f"duckdb:///{db}"}


def open_both(
    tmp_path: Path,
    tables: dict[str, Rows],
    *,
    data: dict | None = None,
    columns: dict | None = None,
    delimiter: str = ",",
    source: Callable[[Path, dict[str, Rows]], dict] = duckdb_source,
) -> tuple[Dataset, Dataset]:
    """The same rows opened from CSV files and from an engine source (DuckDB by default)."""
    folder = tmp_path / "files"
    folder.mkdir()
    for name, rows in tables.items():
        write_csv(folder / f"{name}.csv", rows, delimiter)
    data = dict(data or {})
    files = open_dataset(folder, config=config_from_dict({"data": data, "columns": columns or {}}))
    engine_cfg = {"data": {**data, "source": source(tmp_path, tables)}, "columns": columns or {}}
    engine = open_dataset(tmp_path / "derived", config=config_from_dict(engine_cfg))
    assert files.config.data.source.is_files and not engine.config.data.source.is_files
    return files, engine


def parsed(ds: Dataset, table: str, key: str) -> pd.DataFrame:
    """Typed values and parse flags of every row (line numbers left out), in key order.

    The raw text kept for examples is compared with missing and empty alike:
    a CSV field cannot tell them apart, a database column can.
    """
    t = ds.checked_table(table)
    frame = t.select([c for c in t.columns if c != "__row"]).to_pandas()
    for c in frame.columns:
        if c.startswith("__raw_"):
            frame[c] = frame[c].fillna("")
    return frame.sort_values(key).reset_index(drop=True)


def example_rows(issue) -> list[tuple]:
    rows = [
        tuple(sorted((k, str(v)) for k, v in e.items() if k != "_line")) for e in issue.examples
    ]
    return sorted(rows)


def findings(ds: Dataset) -> list[tuple]:
    """Every issue of the validation report, without its file name and line numbers.

    Examples are compared when they are all the failing rows: beyond
    :data:`MAX_EXAMPLES` files show the first lines and engines (whose tables
    have no row order) the smallest values, and the advice drawn from the
    examples (after ``"; "`` in the message) may differ with them.
    """
    report = validate_open_dataset(ds, AS_OF)
    out = []
    for i in report.issues:
        every_row = i.n_rows <= MAX_EXAMPLES
        message = i.message if every_row else i.message.split("; ")[0]
        examples = example_rows(i) if every_row else len(i.examples)
        out.append((i.severity, i.table, i.column, i.rule, message, i.n_rows, examples))
    return sorted(out)


def assert_same(files: Dataset, engine: Dataset, table: str, key: str) -> pd.DataFrame:
    """Identical parsed table and identical findings; returns the parsed table."""
    got, expected = parsed(engine, table, key), parsed(files, table, key)
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, check_dtype=True)
    assert findings(engine) == findings(files)
    return expected


def issue(ds: Dataset, table: str, column: str, rule: str):
    report = validate_open_dataset(ds, AS_OF)
    hits = [i for i in report.issues if (i.table, i.column, i.rule) == (table, column, rule)]
    assert len(hits) == 1, report.render_text()
    return hits[0]


# --------------------------------------------------------------------------- cases

ACCOUNTS: Rows = [
    {"account_id": "A1", "name": "Aoba", "employees": "2"},
    {"account_id": "A2", "name": "Kita", "employees": "2.0"},
    {"account_id": "A3", "name": "Minami", "employees": "2.5"},
    {"account_id": "A4", "name": "Nishi", "employees": "1,200"},
    {"account_id": "A5", "name": "Higashi", "employees": ""},
    {"account_id": "A6", "name": "Chuo", "employees": None},
    {"account_id": "A7", "name": "Kawa", "employees": "NaN"},
    {"account_id": "A8", "name": "Yama", "employees": " 7 "},
    {"account_id": "A9", "name": "Umi", "employees": "3e0"},
    {"account_id": "B1", "name": "Sora", "employees": "1e300"},  # whole, but no integer
]


def lines(dates: list[str | None], revenue: list[str | None] | None = None) -> Rows:
    """Transaction lines of account A1 with the given dates (and revenue), one order each."""
    revenue = revenue or ["100"] * len(dates)
    return [
        {
            "order_id": f"O{i:02d}",
            "account_id": "A1",
            "date": d,
            "product_line": "X",
            "revenue": r,
        }
        for i, (d, r) in enumerate(zip(dates, revenue, strict=True))
    ]


BUILTIN_DATES = {
    "20240401": dt.datetime(2024, 4, 1),
    "2024/04/01": dt.datetime(2024, 4, 1),
    "2024-04-01": dt.datetime(2024, 4, 1),
    "2024-04-01 08:30": dt.datetime(2024, 4, 1, 8, 30),
    "2024/04/01 08:30": dt.datetime(2024, 4, 1, 8, 30),
    "2024-04-01 08:30:15": dt.datetime(2024, 4, 1, 8, 30, 15),
    "2024-04-01T08:30:15": dt.datetime(2024, 4, 1, 8, 30, 15),
    "2024-04-01 08:30:15.250": dt.datetime(2024, 4, 1, 8, 30, 15, 250000),
    "2024年04月01日": dt.datetime(2024, 4, 1),
    " 2024-04-02 ": dt.datetime(2024, 4, 2),
    "2024-4-1": dt.datetime(2024, 4, 1),
    "2024-02-29": dt.datetime(2024, 2, 29),
    # refused: day/month order is never guessed, impossible dates, words
    "01/02/2024": None,
    "4/1/2024 8:26": None,
    "2024-13-45": None,
    "20241345": None,
    "2023-02-29": None,
    "2024-04-01 24:00": None,
    "0000-04-01": None,
    "soon": None,
    # missing, not refused
    "": None,
    None: None,
}


def test_builtin_date_forms_parse_the_same(tmp_path):
    dates = list(BUILTIN_DATES)
    files, engine = open_both(tmp_path, {"accounts": ACCOUNTS[:1], "transactions": lines(dates)})
    table = assert_same(files, engine, "transactions", "order_id")
    assert table["date"].tolist() == [
        pd.NaT if v is None else pd.Timestamp(v) for v in BUILTIN_DATES.values()
    ]
    refused = [d for d, v in BUILTIN_DATES.items() if v is None and d]
    assert table.loc[table["__bad_date"], "__raw_date"].tolist() == refused
    for ds in (files, engine):
        found = issue(ds, "transactions", "date", "parse date")
        assert found.n_rows == len(refused) and found.message.startswith("not a date")
        # the advice is written like the day/month examples, whichever example comes first
        assert 'date_format = "%m/%d/%Y" (month first, US)' in found.message
    assert issue(engine, "transactions", "date", "not null").n_rows == 2  # "" and NULL


def test_configured_date_format_parses_the_same(tmp_path):
    cases = {
        "4/1/2024 8:26": dt.datetime(2024, 4, 1, 8, 26),  # unpadded
        "12/1/2010 8:26": dt.datetime(2010, 12, 1, 8, 26),
        "04/01/2024 08:26": dt.datetime(2024, 4, 1, 8, 26),
        "2024-04-01": dt.datetime(2024, 4, 1),  # built-in forms still read
        "20240401": dt.datetime(2024, 4, 1),
        "13/1/2024 8:26": None,  # month 13
        "4/1/2024": None,  # no time: not the configured form
    }
    files, engine = open_both(
        tmp_path,
        {"accounts": ACCOUNTS[:1], "transactions": lines(list(cases))},
        data={"date_format": "%m/%d/%Y %H:%M"},
    )
    table = assert_same(files, engine, "transactions", "order_id")
    assert table["date"].tolist() == [
        pd.NaT if v is None else pd.Timestamp(v) for v in cases.values()
    ]
    found = issue(engine, "transactions", "date", "parse date")
    assert found.n_rows == 2
    assert sorted(e["date"] for e in found.examples) == ["13/1/2024 8:26", "4/1/2024"]


def test_integer_columns_refuse_fractions_alike(tmp_path):
    files, engine = open_both(
        tmp_path, {"accounts": ACCOUNTS, "transactions": lines(["2024-04-01"] * 9)}
    )
    table = assert_same(files, engine, "accounts", "account_id")
    employees = dict(zip(table["account_id"], table["employees"], strict=True))
    assert employees["A1"] == 2 and employees["A2"] == 2 and employees["A9"] == 3
    assert employees["A4"] == 1200 and employees["A8"] == 7
    for account in ("A3", "A5", "A6", "A7"):
        assert pd.isna(employees[account]), account
    assert sorted(table.loc[table["__bad_employees"], "account_id"]) == ["A3", "A7", "B1"]
    for ds in (files, engine):  # 2.5 refused by both, naming the column and the rule
        found = issue(ds, "accounts", "employees", "parse integer")
        assert found.n_rows == 3 and found.message.startswith("not a whole number")
        assert sorted(e["employees"] for e in found.examples) == ["1e300", "2.5", "NaN"]
        head = found.render().splitlines()[0]
        assert 'column "employees"' in head and "(rule: parse integer)" in head


AMOUNTS = {
    "1234.5": 1234.5,
    "1,234.50": 1234.5,
    "(1,234.50)": -1234.5,
    "1234.50-": -1234.5,
    "¥2,000": 2000.0,
    "$ 12": 12.0,
    "-7": -7.0,
    "1.5e3": 1500.0,
    " 42 ": 42.0,
    "1709,58": None,  # a comma that is not a thousands separator: refused, never 170958
    "1,2,3": None,
    "NaN": None,
    "nan": None,
    "inf": None,
    "-inf": None,
    "Infinity": None,
    "1e400": None,  # beyond the float range
    "n/a": None,
    "": None,
    None: None,
}


def test_amounts_empty_and_non_finite_alike(tmp_path):
    n = len(AMOUNTS)
    files, engine = open_both(
        tmp_path,
        {"accounts": ACCOUNTS, "transactions": lines(["2024-04-01"] * n, list(AMOUNTS))},
    )
    table = assert_same(files, engine, "transactions", "order_id")
    for got, want in zip(table["revenue"], AMOUNTS.values(), strict=True):
        assert (pd.isna(got) and want is None) or got == want
    assert all(math.isfinite(v) for v in table["revenue"].dropna())
    refused = [a for a, v in AMOUNTS.items() if v is None and a]
    assert table.loc[table["__bad_revenue"], "__raw_revenue"].tolist() == refused
    assert issue(engine, "transactions", "revenue", "parse amount").n_rows == len(refused)
    assert issue(engine, "transactions", "revenue", "not null").n_rows == 2


DECIMAL_COMMA = {
    "1.709,58": 1709.58,
    "1709,58": 1709.58,
    "1,5": 1.5,
    ",5": 0.5,
    "1.709": 1709.0,  # a dot only separates thousands
    "(1.234,50)": -1234.5,
    "12": 12.0,
    "1.70": None,
    "1.709.58": None,
    "1709.58": None,
    "NaN": None,
    "": None,
}


def test_decimal_comma_alike(tmp_path):
    n = len(DECIMAL_COMMA)
    files, engine = open_both(
        tmp_path,
        {"accounts": ACCOUNTS, "transactions": lines(["2024-04-01"] * n, list(DECIMAL_COMMA))},
        data={"decimal": ","},
        delimiter=";",
    )
    assert files.sources["transactions"].detected_delimiter == ";"
    table = assert_same(files, engine, "transactions", "order_id")
    for got, want in zip(table["revenue"], DECIMAL_COMMA.values(), strict=True):
        assert (pd.isna(got) and want is None) or got == pytest.approx(want, rel=1e-12)
    bad = issue(engine, "transactions", "revenue", "parse amount")
    assert bad.n_rows == 4
    accounts = parsed(engine, "accounts", "account_id")
    assert accounts.loc[accounts.account_id == "A4", "employees"].isna().all()  # 1,200 is 1.2


def test_flags_and_text_alike(tmp_path):
    opportunities = [
        {
            "opportunity_id": f"P{i}",
            "account_id": "A1",
            "stage": "proposal",
            "type": "new",
            "amount": "10",
            "created_date": "2025-01-15",
            "close_date": "2025-06-30",
            "is_poc": flag,
        }
        for i, flag in enumerate(["yes", "No", " 1 ", "0", "はい", "無", "maybe", "", None])
    ]
    files, engine = open_both(
        tmp_path,
        {
            "accounts": ACCOUNTS[:1],
            "transactions": lines(["2024-04-01"]),
            "opportunities": opportunities,
        },
    )
    table = assert_same(files, engine, "opportunities", "opportunity_id")
    assert table["is_poc"].tolist()[:6] == [True, False, True, False, True, False]
    assert table["__bad_is_poc"].tolist() == [False] * 6 + [True, False, False]


# --------------------------------------------------------------------------- other engines
#
# DuckDB parses dates with TRY_STRPTIME; other engines get the portable form
# of the same rules (shape, components, calendar checks, then a cast). The
# portable form runs on DuckDB too, so it is checked here without Spark or
# PostgreSQL; the marked tests repeat the check on the engines themselves.

ENGINE_CASES = [
    pytest.param("date", list(BUILTIN_DATES), {}, id="builtin-dates"),
    pytest.param(
        "date",
        [
            "4/1/2024 8:26",
            "12/1/2010 8:26",
            "04/01/2024 08:26",
            "2/29/2024 23:59",
            "2/29/2023 10:00",
            "4/31/2024 10:00",
            "13/1/2024 8:26",
            "4/1/2024 24:00",
            "4/1/2024 8:60",
            "20240401",
            "",
        ],
        {"date_formats": ("%m/%d/%Y %H:%M",)},
        id="date-format-us",
    ),
    pytest.param(
        "date",
        ["1.4.2024", "31.12.99", "1.4.69", "29.2.00", "32.1.24", "2024-04-01"],
        {"date_formats": ("%d.%m.%y",)},
        id="date-format-2-digit-year",
    ),
    pytest.param(
        "date",
        [
            "4/1/2024 8:26 PM",
            "4/1/2024 12:26 AM",
            "4/1/2024 12:26 pm",
            "4/1/2024 13:26 pm",
            "4/1/2024 0:26 am",
        ],
        {"date_formats": ("%m/%d/%Y %I:%M %p",)},
        id="date-format-am-pm",
    ),
    pytest.param(
        "date",
        ["1 Apr 2024", "1 apr 2024", "29 FEB 2024", "29 Feb 2023", "1 Sep 2024", "1 Sept 2024"],
        {"date_formats": ("%d %b %Y",)},
        id="date-format-month-abbreviation",
    ),
    pytest.param(
        "date",
        ["1 April 2024", "1 april 2024", "1 Apr 2024", "30 September 2024", "31 June 2024"],
        {"date_formats": ("%d %B %Y",)},
        id="date-format-month-name",
    ),
    pytest.param(
        "date",
        ["2024-001", "2024-032", "2024-366", "2023-366", "2024-000", "2023-059", "2023-060"],
        {"date_formats": ("%Y-%j",)},
        id="date-format-day-of-year",
    ),
    pytest.param(
        "date",
        [
            "2024-04-01 08:30:15.2",
            "2024-04-01 08:30:15.000250",
            "2024-04-01 08:30:15.1234567",
            "2024-04-01 08:30:60",
        ],
        {},
        id="date-fractions-and-seconds",
    ),
    pytest.param("integer", [a["employees"] for a in ACCOUNTS] + ["1e300", "-0"], {}, id="integer"),
    pytest.param("amount", list(AMOUNTS) + ["1e-400", "0.5e2", ".5"], {}, id="amount"),
    pytest.param("amount", list(DECIMAL_COMMA), {"decimal": ","}, id="decimal-comma"),
    pytest.param(
        "amount", ["1,709", "1709", "1.5", "(2)"], {"refuse_commas": True}, id="refuse-commas"
    ),
    pytest.param(
        "flag", ["yes", "No", " 1 ", "0", "はい", "無", "TRUE", "f", "maybe", ""], {}, id="flag"
    ),
    pytest.param("text", ["  finance ", "f", "", " ", None, "a b"], {}, id="text"),
]


def _plain(value):
    """A parsed value as plain Python (naive UTC datetimes, floats for numbers)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def parse_on(con, engine: str, kind: str, values: list[str | None], **options) -> list[tuple]:
    """``(value, unreadable)`` per input, parsed on ``con`` with the rules for ``engine``."""
    frame = pd.DataFrame({"__row": range(len(values)), "v": pd.Series(values, dtype="object")})
    raw = ibis.memtable(frame, schema={"__row": "int64", "v": "string"})
    out = parse_columns(raw, [ParseRequest("x", "v", kind)], ParseOptions(engine=engine, **options))
    rows = con.to_pyarrow(out.select("__row", "__v_x", "__b_x").order_by("__row")).to_pylist()
    return [(_plain(r["__v_x"]), r["__b_x"]) for r in rows]


@pytest.fixture(scope="module")
def duckdb_con():
    return ibis.duckdb.connect()


@pytest.mark.parametrize(("kind", "values", "options"), ENGINE_CASES)
def test_portable_rules_parse_like_duckdb(duckdb_con, kind, values, options):
    expected = parse_on(duckdb_con, "duckdb", kind, values, **options)
    assert parse_on(duckdb_con, "portable", kind, values, **options) == expected


def test_portable_rules_keep_columns_apart(duckdb_con):
    """Several date columns (keys such as 1, 1_1 and 11, as formulas make) in one table."""
    values = {"a": ["2024-04-01", "x"], "b": ["20240402", "2024-02-30"], "c": ["", "2024/4/3"]}
    raw = ibis.memtable(pd.DataFrame({"__row": [0, 1], **values}))
    requests = [ParseRequest(k, c, "date") for k, c in (("1", "a"), ("1_1", "b"), ("11", "c"))]

    def read(engine: str) -> list[dict]:
        out = parse_columns(raw, requests, ParseOptions(engine=engine))
        return duckdb_con.to_pyarrow(out.order_by("__row")).to_pylist()

    expected = read("duckdb")
    assert [r["__v_1_1"] for r in expected] == [dt.datetime(2024, 4, 2), None]
    assert read("portable") == expected


@pytest.fixture(scope="module")
def spark_con():
    if not (HAS_JAVA and HAS_PYSPARK):
        pytest.skip("needs Java 17 and pyspark")
    from kam_analysis.data.sources import spark_session

    session = spark_session({"master": "local[1]", "spark.sql.shuffle.partitions": "1"})
    return ibis.pyspark.connect(session)


@pytest.fixture(scope="module")
def postgres_url():
    """A throw-away PostgreSQL server on a Unix socket (as in test_engines); its URL."""
    initdb = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))), None)
    initdb = initdb or shutil.which("initdb")
    try:
        import psycopg
    except ImportError:
        psycopg = None
    if not (initdb and psycopg):
        pytest.skip("needs postgresql (initdb) and psycopg")

    def as_postgres(cmd: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    root = Path(tempfile.mkdtemp(prefix="kam-pg-parity-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = root / "data", "54331"
    subprocess.run(
        as_postgres([initdb, "-D", str(data), "-A", "trust", "-U", "kam"]),
        check=True,
        capture_output=True,
    )
    pg_ctl = [str(Path(initdb).parent / "pg_ctl"), "-D", str(data), "-l", str(root / "log")]
    options = f"-p {port} -k {root} -c listen_addresses='' -c fsync=off"
    subprocess.run(as_postgres([*pg_ctl, "-o", options, "-w", "start"]), check=True)
    try:
        yield f"postgres://kam@/postgres?host={root}&port={port}"
    finally:
        subprocess.run(as_postgres([*pg_ctl, "-m", "immediate", "stop"]), check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_con(postgres_url):
    con = ibis.connect(postgres_url)
    yield con
    con.disconnect()


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.parametrize(("kind", "values", "options"), ENGINE_CASES)
def test_spark_parses_like_duckdb(spark_con, duckdb_con, kind, values, options):
    expected = parse_on(duckdb_con, "duckdb", kind, values, **options)
    assert parse_on(spark_con, "pyspark", kind, values, **options) == expected


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize(("kind", "values", "options"), ENGINE_CASES)
def test_postgres_parses_like_duckdb(postgres_con, duckdb_con, kind, values, options):
    expected = parse_on(duckdb_con, "duckdb", kind, values, **options)
    assert parse_on(postgres_con, "postgres", kind, values, **options) == expected


# --------------------------------------------------------------------------- whole datasets


def _frame(rows: Rows) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([r[c] for r in rows], dtype="object") for c in rows[0]})


def _dataset_cases() -> list:
    n = max(len(BUILTIN_DATES), len(AMOUNTS))
    dates = [*BUILTIN_DATES, *["2024-04-01"] * (n - len(BUILTIN_DATES))]
    amounts = [*AMOUNTS, *["1"] * (n - len(AMOUNTS))]
    us_dates = ["4/1/2024 8:26", "12/1/2010 8:26", "13/1/2024 8:26", "2024-04-01"]
    us_dates += ["2/30/2024 10:00"] * (len(DECIMAL_COMMA) - len(us_dates))
    return [
        pytest.param({}, lines(dates, amounts), ",", id="defaults"),
        pytest.param(
            {"date_format": "%m/%d/%Y %H:%M", "decimal": ","},
            lines(us_dates, list(DECIMAL_COMMA)),
            ";",
            id="date-format-and-decimal-comma",
        ),
    ]


def _check_dataset(tmp_path, data, transactions, delimiter, source) -> None:
    tables = {"accounts": ACCOUNTS, "transactions": transactions}
    files, engine = open_both(tmp_path, tables, data=data, delimiter=delimiter, source=source)
    for table, key in (("transactions", "order_id"), ("accounts", "account_id")):
        got, expected = parsed(engine, table, key), parsed(files, table, key)
        for frame in (got, expected):  # engines return their own timestamp resolution
            if "date" in frame:
                frame["date"] = frame["date"].astype("datetime64[us]")
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)
        assert got.dtypes.map(str).str[:5].tolist() == expected.dtypes.map(str).str[:5].tolist()
    assert findings(engine) == findings(files)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize(("data", "transactions", "delimiter"), _dataset_cases())
def test_postgres_dataset_reads_like_files(
    postgres_url, postgres_con, tmp_path, data, transactions, delimiter
):
    schema = f"parity_{abs(hash(tmp_path.name)) % 10**8}"

    def source(_: Path, tables: dict[str, Rows]) -> dict:
        postgres_con.raw_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
        for name, rows in tables.items():
            postgres_con.create_table(name, _frame(rows), database=schema)
        return {"url": postgres_url, "database": schema}

    _check_dataset(tmp_path, data, transactions, delimiter, source)


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.parametrize(("data", "transactions", "delimiter"), _dataset_cases())
def test_spark_dataset_reads_like_files(spark_con, tmp_path, data, transactions, delimiter):
    from kam_analysis.core.schemas import TABLE_MODELS

    session = spark_con._session

    def source(_: Path, tables: dict[str, Rows]) -> dict:
        for name in TABLE_MODELS:  # views of an earlier case (or module) must not be found
            session.catalog.dropTempView(name)
        for name, rows in tables.items():
            session.createDataFrame(_frame(rows)).createOrReplaceTempView(name)
        return {"backend": "pyspark"}

    _check_dataset(tmp_path, data, transactions, delimiter, source)

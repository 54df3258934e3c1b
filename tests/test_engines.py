"""The same validation and feature build on other engines: DuckDB file, Spark, PostgreSQL.

A generated dataset is read several ways: the dataset folder (files, the
embedded DuckDB: the reference), a DuckDB database file opened by URL like a
warehouse, PySpark in local mode (one session shared by the module; the
tables are registered as Spark views, or read by Spark from the Parquet
paths), and a throw-away PostgreSQL server on a Unix socket (Debian's
``postgresql``, started by the fixture). Features, monthly revenue and the
validation report on planted errors must come out the same.

The Spark tests are marked ``spark`` and skipped when Java or PySpark is
missing, the PostgreSQL ones ``postgres`` (skipped without ``initdb`` or
psycopg); ``make test`` installs all of them.
"""

from __future__ import annotations

import datetime as dt
import glob
import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import duckdb
import ibis
import pandas as pd
import pandera.errors
import pandera.ibis as pa
import pytest

from kam_analysis.config import config_from_dict
from kam_analysis.core.schemas import TABLE_MODELS
from kam_analysis.data import DatasetError, open_dataset, validate_open_dataset
from kam_analysis.data.features import build_account_features, monthly_revenue
from kam_analysis.data.sources import describe_source

AS_OF = dt.date(2026, 3, 31)
HAS_JAVA = shutil.which("java") is not None
try:
    import pyspark  # noqa: F401

    HAS_PYSPARK = True
except ImportError:
    HAS_PYSPARK = False
INITDB = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))), shutil.which("initdb"))
try:
    import psycopg

    HAS_PSYCOPG = True
except ImportError:
    HAS_PSYCOPG = False
needs_postgres = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.skipif(not (INITDB and HAS_PSYCOPG), reason="needs postgresql and psycopg"),
]
needs_spark = [
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.skipif(not (HAS_JAVA and HAS_PYSPARK), reason="needs Java 17 and pyspark"),
]


def plant_errors(good: Path, bad: Path) -> dict[tuple[str, str, str], int]:
    """Copy the dataset with known broken rows; returns (table, column, rule) -> rows."""
    bad.mkdir(parents=True)
    for f in good.glob("*.parquet"):
        shutil.copy(f, bad / f.name)
    con = duckdb.connect()

    def rewrite(table: str, sql: str) -> None:
        tmp = bad / f"{table}.tmp.parquet"
        con.sql(f"COPY ({sql}) TO '{tmp}' (FORMAT parquet)")
        tmp.replace(bad / f"{table}.parquet")

    src = {t: f"read_parquet('{good / (t + '.parquet')}')" for t in TABLE_MODELS}
    rewrite(
        "transactions",
        f"""SELECT * EXCLUDE (rn) REPLACE (
              CASE WHEN rn <= 4 THEN 'ZZZ-404' ELSE account_id END AS account_id,
              CASE WHEN rn BETWEEN 5 AND 7 THEN TIMESTAMP '2026-05-01' ELSE date END AS date,
              CASE WHEN rn BETWEEN 8 AND 9 THEN NULL ELSE product_line END AS product_line)
            FROM (SELECT *, row_number() OVER (ORDER BY order_id, product_line) AS rn
                  FROM {src["transactions"]})""",
    )
    rewrite(
        "stakeholders",
        f"""SELECT * EXCLUDE (rn) REPLACE (CASE WHEN rn <= 2 THEN 'ceo' ELSE role END AS role)
            FROM (SELECT *, row_number() OVER (ORDER BY contact_id) AS rn
                  FROM {src["stakeholders"]})""",
    )
    rewrite(
        "contracts",
        f"""SELECT * FROM {src["contracts"]}
            UNION ALL (SELECT * FROM {src["contracts"]} ORDER BY contract_id LIMIT 1)""",
    )
    return {
        ("transactions", "account_id", "account_id exists in accounts"): 4,
        ("transactions", "date", f"not after as-of date {AS_OF}"): 3,
        ("transactions", "product_line", "not null"): 2,
        ("stakeholders", "role", "one of executive, procurement, it, business, finance, legal"): 2,
        ("contracts", "contract_id", "unique key"): 2,
    }


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path, dict]:
    from kam_analysis.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("engines")
    good = root / "good"
    generate_dataset(good, n_accounts=250, seed=3)
    planted = plant_errors(good, root / "bad")
    return good, root / "bad", planted


@pytest.fixture(scope="module")
def duckdb_file(folders) -> Path:
    """A DuckDB database holding the good tables and the broken ones (prefix bad_)."""
    good, bad, _ = folders
    path = good.parent / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    for prefix, folder in (("", good), ("bad_", bad)):
        for f in folder.glob("*.parquet"):
            if f.stem in TABLE_MODELS:
                con.sql(f"CREATE TABLE {prefix}{f.stem} AS SELECT * FROM read_parquet('{f}')")
    con.close()
    return path


@pytest.fixture(scope="module")
def spark(folders):
    """One local Spark session for the module; good tables as views, broken ones as bad_*."""
    if not (HAS_JAVA and HAS_PYSPARK):
        pytest.skip("needs Java 17 and pyspark")
    from kam_analysis.data.sources import spark_session

    session = spark_session({"master": "local[2]", "spark.sql.shuffle.partitions": "4"})
    good, bad, _ = folders
    for prefix, folder in (("", good), ("bad_", bad)):
        for f in folder.glob("*.parquet"):
            if f.stem in TABLE_MODELS:
                session.read.parquet(str(f)).createOrReplaceTempView(f"{prefix}{f.stem}")
    return session


def _as_postgres_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def postgres(folders):
    """A PostgreSQL server for this module (Unix socket only), loaded with good and bad_ tables."""
    if not (INITDB and HAS_PSYCOPG):
        pytest.skip("needs postgresql (initdb) and psycopg")
    import pandas as pd

    bin_dir = Path(INITDB).parent
    # outside pytest's private tmp folder, which the postgres user cannot enter
    root = Path(tempfile.mkdtemp(prefix="kam-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data = root / "data"
    subprocess.run(
        _as_postgres_user([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "kam"]),
        check=True,
        capture_output=True,
    )
    port = "54329"
    options = f"-p {port} -k {root} -c listen_addresses='' -c fsync=off"
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log")]
    subprocess.run(_as_postgres_user([*pg_ctl, "-o", options, "-w", "start"]), check=True)
    try:
        dsn = f"host={root} port={port} user=kam dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE DATABASE kam")
        url = f"postgres://kam@/kam?host={root}&port={port}"
        con = ibis.connect(url)
        good, bad, _ = folders
        for prefix, folder in (("", good), ("bad_", bad)):
            for f in sorted(folder.glob("*.parquet")):
                if f.stem not in TABLE_MODELS:
                    continue
                frame = pd.read_parquet(f)
                name = f"{prefix}{f.stem}"
                con.create_table(name, schema=ibis.memtable(frame.head(1)).schema())
                text = io.StringIO()
                frame.to_csv(text, index=False, header=False)
                with psycopg.connect(dsn.replace("postgres", "kam")) as c:
                    with c.cursor().copy(f'COPY "{name}" FROM STDIN (FORMAT csv)') as copy:
                        copy.write(text.getvalue())
        con.disconnect()
        yield url
    finally:
        subprocess.run(_as_postgres_user([*pg_ctl, "-m", "immediate", "stop"]), check=False)
        shutil.rmtree(root, ignore_errors=True)


def engine_config(engine: str, folders, duckdb_file, *, bad: bool = False, spark=None):
    good, bad_dir, _ = folders
    tables = {t: f"bad_{t}" for t in TABLE_MODELS} if bad else {}
    present = {t for t in TABLE_MODELS if (good / f"{t}.parquet").is_file()}
    tables = {t: n for t, n in tables.items() if t in present}
    if engine == "duckdb-url":
        source = {"url": f"duckdb:///{duckdb_file}", "tables": tables}
    elif engine == "postgres":
        source = {"url": spark, "tables": tables}  # the fixture value: the server's URL
    elif engine == "pyspark":
        source = {"backend": "pyspark", "tables": tables}
    elif engine == "pyspark-paths":
        folder = bad_dir if bad else good
        source = {
            "backend": "pyspark",
            "tables": {t: str(folder / f"{t}.parquet") for t in present},
        }
    else:  # pragma: no cover
        raise ValueError(engine)
    return config_from_dict({"data": {"source": source}})


ENGINES = [
    pytest.param("duckdb-url", id="duckdb-url"),
    pytest.param("pyspark", id="pyspark", marks=needs_spark),
    pytest.param("pyspark-paths", id="pyspark-paths", marks=needs_spark),
    pytest.param("postgres", id="postgres", marks=needs_postgres),
]


@pytest.fixture
def engine_spark(request):
    """The Spark session, only for the Spark engines (keeps DuckDB tests Java-free)."""
    engine = request.node.callspec.params["engine"]
    if engine.startswith("pyspark"):
        return request.getfixturevalue("spark")
    if engine == "postgres":
        return request.getfixturevalue("postgres")
    return None


def sorted_frame(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys).reset_index(drop=True)


@pytest.mark.parametrize("engine", ENGINES)
def test_features_and_monthly_revenue_equal_the_files_engine(
    engine, folders, duckdb_file, engine_spark, tmp_path
):
    good = folders[0]
    ref = open_dataset(good)
    ds = open_dataset(
        tmp_path, config=engine_config(engine, folders, duckdb_file, spark=engine_spark)
    )
    assert not ds.config.data.source.is_files and "fx_rates" not in ds.sources

    def features(d):
        return build_account_features(d.table("transactions"), d.table("accounts"), AS_OF)

    expected, got = features(ref), features(ds)
    assert len(got) == 250 and got["revenue_12m"].sum() > 0
    pd.testing.assert_frame_equal(
        sorted_frame(got, ["account_id"]),
        sorted_frame(expected, ["account_id"]),
        check_dtype=False,
        rtol=1e-9,
    )
    months = monthly_revenue(ds.table("transactions"), AS_OF, months=24)
    pd.testing.assert_frame_equal(
        sorted_frame(months, ["account_id", "month"]),
        sorted_frame(
            monthly_revenue(ref.table("transactions"), AS_OF, months=24), ["account_id", "month"]
        ),
        check_dtype=False,
        rtol=1e-9,
    )


def issue_key(issue) -> tuple:
    return (issue.table, issue.column, issue.rule, issue.severity, issue.n_rows)


def example_rows(issue) -> list[tuple]:
    rows = [
        tuple(sorted((k, str(v)) for k, v in e.items() if k != "_line")) for e in issue.examples
    ]
    return sorted(rows)


@pytest.mark.parametrize("engine", ENGINES)
def test_validation_finds_the_same_problems(engine, folders, duckdb_file, engine_spark, tmp_path):
    _, bad, planted = folders
    ref = validate_open_dataset(open_dataset(bad), AS_OF)
    cfg = engine_config(engine, folders, duckdb_file, bad=True, spark=engine_spark)
    report = validate_open_dataset(open_dataset(tmp_path, config=cfg), AS_OF)
    assert not report.ok
    found = {(i.table, i.column, i.rule): i.n_rows for i in ref.issues}
    assert planted.items() <= found.items()  # the reference finds what was planted ...
    # ... and the engine finds exactly the same, with the same example rows (no line numbers)
    assert sorted(map(issue_key, report.issues)) == sorted(map(issue_key, ref.issues))
    by_key = {issue_key(i): i for i in ref.issues}
    for issue in report.issues:
        twin = by_key[issue_key(issue)]
        assert all("_line" not in e for e in issue.examples)
        if issue.n_rows <= 5:
            assert example_rows(issue) == example_rows(twin), issue.render()
    assert (
        report.summary["tables"]["transactions"]["rows"]
        == (ref.summary["tables"]["transactions"]["rows"])
    )
    assert report.summary["transaction_dates"] == ref.summary["transaction_dates"]


def test_text_columns_are_parsed_and_failures_reported(tmp_path):
    """A warehouse table typed as text: amounts with separators, slash dates, junk."""
    db = tmp_path / "text.duckdb"
    con = duckdb.connect(str(db))
    con.sql(
        """CREATE TABLE accounts AS SELECT * FROM (VALUES ('A1', 'Aoba', 'Energy', 'Kanto'),
             ('A2', 'Kita', 'Retail', 'Kansai')) t(account_id, name, industry, region)"""
    )
    con.sql(
        """CREATE TABLE lines AS SELECT * FROM (VALUES
             ('A1', '2025/04/01', '1,234', '1000', 'X'),
             ('A1', '2025-06-30', '¥2,000', ' 500 ', 'X'),
             ('A2', 'soon', '3000', '100', 'Y'),
             ('A2', '2025-07-01', 'n/a', '', 'Y')) t(customer, sold_on, amount, cost, product_line)"""
    )
    con.close()
    cfg = config_from_dict(
        {
            "data": {"source": {"url": f"duckdb:///{db}", "tables": {"transactions": "lines"}}},
            "columns": {
                "transactions": {"account_id": "customer", "date": "sold_on", "revenue": "amount"}
            },
        }
    )
    ds = open_dataset(tmp_path, config=cfg)
    lines = ds.table("transactions").to_pandas().sort_values(["account_id", "date"])
    assert lines["revenue"].tolist()[:2] == [1234.0, 2000.0]
    assert lines["date"].iloc[0] == pd.Timestamp("2025-04-01")
    assert lines["cost"].tolist()[:2] == [1000.0, 500.0]
    report = validate_open_dataset(ds, AS_OF)
    issues = {(i.table, i.column, i.rule): i for i in report.issues}
    date_issue = issues[("transactions", "date", "parse date")]
    assert date_issue.n_rows == 1 and date_issue.examples[0]["date"] == "soon"
    amount_issue = issues[("transactions", "revenue", "parse amount")]
    assert amount_issue.n_rows == 1 and amount_issue.examples[0]["revenue"] == "n/a"
    assert date_issue.file == "lines" and "row " not in date_issue.render()


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.skipif(not (HAS_JAVA and HAS_PYSPARK), reason="needs Java 17 and pyspark")
def test_pandera_contract_validates_a_spark_table(spark, folders, tmp_path):
    """pandera's Ibis backend runs the contract's checks on the Spark table itself."""
    good = open_dataset(
        tmp_path, config=config_from_dict({"data": {"source": {"backend": "pyspark"}}})
    )
    schema = TABLE_MODELS["stakeholders"].to_schema()

    def without_timestamp_dtype(table):
        return pa.DataFrameSchema(
            {
                n: c
                if str(c.dtype) != "timestamp"
                else pa.Column(None, c.checks, nullable=c.nullable)
                for n, c in schema.columns.items()
                if n in table.columns
            }
        )

    ok = good.table("stakeholders")
    without_timestamp_dtype(ok).validate(ok, lazy=True)
    bad_cfg = {
        "data": {"source": {"backend": "pyspark", "tables": {"stakeholders": "bad_stakeholders"}}}
    }
    bad = open_dataset(tmp_path, config=config_from_dict(bad_cfg)).table("stakeholders")
    with pytest.raises(pandera.errors.SchemaErrors, match="isin"):
        without_timestamp_dtype(bad).validate(bad, lazy=True)


def test_connection_problems_are_reported_not_raised(tmp_path, monkeypatch):
    cases = [
        ({"backend": "nosuchengine"}, "unknown Ibis backend 'nosuchengine'"),
        ({"backend": "snowflake"}, "pip install 'ibis-framework[snowflake]'"),
        ({"url": "duckdb:///x.duckdb?x=${KAM_TEST_UNSET}"}, "KAM_TEST_UNSET"),
        ({"url": f"duckdb:///{tmp_path / 'typo.duckdb'}"}, "database does not exist"),
        ({"url": f"duckdb:///{tmp_path / 'empty.duckdb'}"}, "table not found"),
    ]
    duckdb.connect(str(tmp_path / "empty.duckdb")).close()
    monkeypatch.delenv("KAM_TEST_UNSET", raising=False)
    for source, message in cases:
        with pytest.raises(DatasetError) as err:
            open_dataset(tmp_path, config=config_from_dict({"data": {"source": source}}))
        assert message in err.value.report.render_text()


def test_describe_source_hides_passwords():
    cfg = config_from_dict(
        {"data": {"source": {"url": "postgres://kam:s3cret@db:5432/crm?password=s3cret&x=1"}}}
    )
    text = describe_source(cfg.data.source)
    assert "s3cret" not in text and text.startswith("postgres://kam@db:5432/crm")
    assert cfg.data.source.backend == "postgres"
    spark_cfg = config_from_dict({"data": {"source": {"backend": "pyspark", "database": "sales"}}})
    assert describe_source(spark_cfg.data.source) == "pyspark (database sales)"
    with pytest.raises(Exception, match="no scheme"):
        config_from_dict({"data": {"source": {"url": "localhost:5432"}}})
    with pytest.raises(Exception, match="unknown table"):
        config_from_dict({"data": {"source": {"tables": {"sales": "x"}}}})


SECRET = "p/@ss#:?w+rd"  # every character that breaks a URL when pasted raw


@pytest.mark.postgres
def test_password_with_url_characters_is_encoded_into_the_url(postgres, monkeypatch, tmp_path):
    monkeypatch.setenv("KAM_TEST_PW", SECRET)
    url = postgres.replace("postgres://kam@", "postgres://kam:${KAM_TEST_PW}@")
    cfg = config_from_dict({"data": {"source": {"url": url}}})
    ds = open_dataset(tmp_path, config=cfg)  # host and database still parse
    assert ds.table("accounts").count().to_pyarrow().as_py() == 250
    assert SECRET not in ds.label


def test_connection_errors_never_show_the_password(monkeypatch, tmp_path):
    from kam_analysis.data.sources import expand_url, redact, secret_values

    monkeypatch.setenv("KAM_TEST_PW", SECRET)
    url = "postgres://kam:${KAM_TEST_PW}@127.0.0.1:1/crm"  # nothing listens on port 1
    expanded = expand_url(url)
    assert expanded == "postgres://kam:p%2F%40ss%23%3A%3Fw%2Brd@127.0.0.1:1/crm"
    from urllib.parse import unquote_plus, urlsplit

    parts = urlsplit(expanded)
    assert (parts.hostname, parts.port, unquote_plus(parts.password)) == ("127.0.0.1", 1, SECRET)
    text = redact(f"failed for {expanded} with {SECRET}", secret_values(url))
    assert SECRET not in text and "p%2F" not in text
    if HAS_PSYCOPG:
        cfg = config_from_dict({"data": {"source": {"url": url}}})
        with pytest.raises(DatasetError) as err:
            open_dataset(tmp_path, config=cfg)
        message = err.value.report.render_text()
        assert "cannot connect" in message
        assert SECRET not in message and "p%2F" not in message and "ss#" not in message


def test_release_memory_keeps_the_engine_settings(folders, duckdb_file, tmp_path):
    def limit(ds) -> str:
        return ds.con.raw_sql("SELECT current_setting('memory_limit')").fetchall()[0][0]

    files = open_dataset(
        folders[0], config=config_from_dict({"data": {"duckdb_memory_limit": "1GB"}})
    )
    files.to_pandas("transactions")
    before = limit(files)
    files.release_memory()
    assert limit(files) == before and before.endswith("MiB")  # 1 GB, shown as 953.6 MiB
    assert len(files.to_pandas("accounts")) > 0  # the engine still answers
    # another source's engine is left as its owner set it
    remote = open_dataset(tmp_path, config=engine_config("duckdb-url", folders, duckdb_file))
    remote.con.raw_sql("SET memory_limit = '300MB'")
    remote.release_memory()
    assert limit(remote) == "286.1 MiB"


def test_a_folder_dataset_reads_its_typed_tables_through_views(folders, duckdb_file, tmp_path):
    ds = open_dataset(folders[0])
    for table in ("transactions", "accounts"):
        typed = ds.typed[table]
        typed = typed.select([c for c in typed.columns if not c.startswith("__")])
        checked = ds.checked_table(table)
        assert checked.get_name() == f"kam_typed_{table}" and ds.checked_table(table) is checked
        view = ds.table(table)
        assert view.columns == typed.columns  # DuckDB states timestamps' scale, Ibis leaves it open
        pd.testing.assert_frame_equal(view.to_pandas(), typed.to_pandas())  # values and dtypes
    # a database of the user's is never written to
    remote = open_dataset(tmp_path, config=engine_config("duckdb-url", folders, duckdb_file))

    def names() -> set[str]:
        query = "SELECT table_name FROM information_schema.tables"
        return {row[0] for row in remote.con.raw_sql(query).fetchall()}

    before = names()
    assert remote.table("transactions").count().execute() > 0
    assert names() == before and "transactions" in before
    assert not any(name.startswith("kam_typed_") for name in before)

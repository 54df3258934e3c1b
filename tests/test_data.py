"""The data contract: reading rules and every kind of bad input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pandera.ibis as pa
import pytest

from kam_analysis.config import config_from_dict
from kam_analysis.core.schemas import TABLE_MODELS
from kam_analysis.data import (
    DatasetError,
    detect_encoding,
    open_dataset,
    validate_dataset,
)

AS_OF = dt.date(2026, 3, 31)
STRICT_SIGNS = config_from_dict({"data": {"credit_notes": "error"}})


def _accounts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["A1", "A2", "A3"],
            "name": ["Aoba K.K.", "株式会社髙橋製作所", "Beta Ltd."],
            "industry": ["Manufacturing", "Retail", "Finance"],
            "region": ["Kanto", "Kansai", "Kanto"],
            "wallet_estimate": [1_000_000.0, 500_000.0, 250_000.0],
            "strategic_fit": [5, 3, 1],
        }
    )


def _transactions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["A1", "A1", "A2", "A3", "A3"],
            "date": ["2025-04-01", "2025-05-10", "2025-06-01", "2025-07-01", "2026-03-31"],
            "product_line": ["Core", "Analytics", "Core", "Core", "Security"],
            "revenue": [1200.0, 300.0, 800.0, 100.0, 50.0],
            "cost": [600.0, 100.0, 500.0, 40.0, 20.0],
            "currency": ["JPY"] * 5,
        }
    )


def _contracts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "contract_id": ["C1", "C2"],
            "account_id": ["A1", "A2"],
            "start_date": ["2025-04-01", "2025-06-01"],
            "end_date": ["2026-03-31", "2026-05-31"],
            "annual_value": [1_000_000.0, 400_000.0],
            "status": ["active", "active"],
        }
    )


def write_dataset(folder: Path, tables: dict[str, pd.DataFrame], *, encoding="utf-8") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False, encoding=encoding)
    return folder


@pytest.fixture
def valid_tables() -> dict[str, pd.DataFrame]:
    return {"accounts": _accounts(), "transactions": _transactions(), "contracts": _contracts()}


def issues_by_rule(report) -> dict[tuple[str, str | None, str], object]:
    return {(i.table, i.column, i.rule): i for i in report.issues}


def test_valid_dataset_passes_and_summarises(tmp_path, valid_tables):
    folder = write_dataset(tmp_path / "ds", valid_tables)
    report = validate_dataset(folder, as_of=AS_OF)
    assert report.ok, report.render_text()
    assert report.issues == []
    assert report.summary["tables"]["transactions"]["rows"] == 5
    assert report.summary["accounts"] == 3
    assert report.summary["transaction_dates"] == ["2025-04-01", "2026-03-31"]
    assert report.summary["currencies"] == ["JPY"]
    assert "usage" in report.summary["missing_optional"]


def test_typed_tables_match_pandera_schema(tmp_path, valid_tables):
    """The contract's pandera models agree with our validator on valid data."""
    ds = open_dataset(write_dataset(tmp_path / "ds", valid_tables))
    for table in ds.sources:
        schema = TABLE_MODELS[table].to_schema()
        typed = ds.table(table)
        # pandera's Ibis backend checks types, nullability and value rules in the engine;
        # its timestamp check wants an unscaled type, DuckDB gives microseconds: skip dtype there
        columns = {
            n: c if str(c.dtype) != "timestamp" else pa.Column(None, c.checks, nullable=c.nullable)
            for n, c in schema.columns.items()
            if n in typed.columns
        }
        pa.DataFrameSchema(columns).validate(typed, lazy=True)


def test_missing_required_file(tmp_path, valid_tables):
    del valid_tables["transactions"]
    report = validate_dataset(write_dataset(tmp_path / "ds", valid_tables), as_of=AS_OF)
    assert not report.ok
    (issue,) = report.errors
    assert issue.table == "transactions" and issue.rule == "required table"
    assert "transactions.csv" in issue.message


def test_missing_folder(tmp_path):
    report = validate_dataset(tmp_path / "nope", as_of=AS_OF)
    assert not report.ok and "not found" in report.errors[0].message


def test_empty_file(tmp_path, valid_tables):
    folder = write_dataset(tmp_path / "ds", valid_tables)
    (folder / "transactions.csv").write_bytes(b"")
    report = validate_dataset(folder, as_of=AS_OF)
    assert [(i.file, i.rule) for i in report.errors] == [("transactions.csv", "not empty")]


def test_header_only_required_table(tmp_path, valid_tables):
    folder = write_dataset(tmp_path / "ds", valid_tables)
    (folder / "transactions.csv").write_text("account_id,date,product_line,revenue\n")
    report = validate_dataset(folder, as_of=AS_OF)
    assert [i.rule for i in report.errors] == ["has rows"]


def test_file_that_is_not_a_table(tmp_path, valid_tables):
    folder = write_dataset(tmp_path / "ds", valid_tables)
    (folder / "contracts.csv").unlink()
    (folder / "contracts.parquet").write_bytes(b"PK\x03\x04 this is a zip, not parquet" * 10)
    report = validate_dataset(folder, as_of=AS_OF)
    (issue,) = report.errors
    assert issue.file == "contracts.parquet" and issue.rule == "readable table"


def test_two_files_for_one_table(tmp_path, valid_tables):
    folder = write_dataset(tmp_path / "ds", valid_tables)
    valid_tables["contracts"].to_parquet(folder / "contracts.parquet")
    report = validate_dataset(folder, as_of=AS_OF)
    assert report.errors[0].rule == "one file per table"


def test_missing_required_columns_named(tmp_path, valid_tables):
    valid_tables["transactions"] = valid_tables["transactions"].drop(columns=["revenue", "date"])
    report = validate_dataset(write_dataset(tmp_path / "ds", valid_tables), as_of=AS_OF)
    (issue,) = report.errors
    assert issue.rule == "required columns"
    assert issue.column == "date, revenue"
    assert "[columns.transactions]" in issue.message


def test_duplicate_keys_with_line_numbers(tmp_path, valid_tables):
    acc = valid_tables["accounts"]
    valid_tables["accounts"] = pd.concat([acc, acc.iloc[[1]]], ignore_index=True)
    report = validate_dataset(write_dataset(tmp_path / "ds", valid_tables), as_of=AS_OF)
    issue = issues_by_rule(report)[("accounts", "account_id", "unique key")]
    assert issue.n_rows == 2
    # header is line 1: A2 sits on lines 3 and 5
    assert [e["_line"] for e in issue.examples] == [3, 5]


def test_negative_and_non_numeric_amounts(tmp_path, valid_tables):
    tx = valid_tables["transactions"].astype({"revenue": object})
    tx.loc[1, "revenue"] = -300
    tx.loc[3, "revenue"] = "n/a"
    valid_tables["transactions"] = tx
    folder = write_dataset(tmp_path / "ds", valid_tables)
    report = validate_dataset(folder, as_of=AS_OF, config=STRICT_SIGNS)
    found = issues_by_rule(report)
    neg = found[("transactions", "revenue", ">= 0")]
    assert neg.n_rows == 1 and neg.examples[0]["_line"] == 3
    assert neg.message.startswith("negative value (credit note or return")
    bad = found[("transactions", "revenue", "parse amount")]
    assert bad.n_rows == 1 and bad.examples[0]["_line"] == 5 and bad.examples[0]["revenue"] == "n/a"
    # a value that is not a number is not reported a second time as missing
    assert ("transactions", "revenue", "not null") not in found


def test_unparseable_dates(tmp_path, valid_tables):
    valid_tables["transactions"].loc[2, "date"] = "31/13/2025"
    report = validate_dataset(write_dataset(tmp_path / "ds", valid_tables), as_of=AS_OF)
    issue = issues_by_rule(report)[("transactions", "date", "parse date")]
    assert issue.n_rows == 1 and issue.examples[0] == {
        "_line": 4,
        "date": "31/13/2025",
        "account_id": "A2",
    }


def test_dates_after_as_of(tmp_path, valid_tables):
    valid_tables["transactions"].loc[0, "date"] = "2026-04-01"
    report = validate_dataset(write_dataset(tmp_path / "ds", valid_tables), as_of=AS_OF)
    issue = issues_by_rule(report)[("transactions", "date", "not after as-of date 2026-03-31")]
    assert issue.n_rows == 1
    # the same data is valid one day later; contract end dates may lie in the future
    assert validate_dataset(tmp_path / "ds", as_of=dt.date(2026, 4, 1)).ok


def test_orphan_account_ids(tmp_path, valid_tables):
    valid_tables["transactions"].loc[4, "account_id"] = "ZZ9"
    valid_tables["contracts"].loc[0, "account_id"] = "ZZ8"
    report = validate_dataset(write_dataset(tmp_path / "ds", valid_tables), as_of=AS_OF)
    found = issues_by_rule(report)
    assert found[("transactions", "account_id", "account_id exists in accounts")].n_rows == 1
    assert (
        found[("contracts", "account_id", "account_id exists in accounts")].examples[0][
            "account_id"
        ]
        == "ZZ8"
    )


def test_mixed_currencies_need_rates(tmp_path, valid_tables):
    valid_tables["transactions"].loc[[1, 2], "currency"] = "USD"
    folder = write_dataset(tmp_path / "ds", valid_tables)
    report = validate_dataset(folder, as_of=AS_OF)
    issue = issues_by_rule(report)[
        ("transactions", "currency", "one currency or an fx_rates table")
    ]
    assert issue.n_rows == 2 and "USD" in issue.message
    pd.DataFrame({"currency": ["EUR"], "rate_to_base": [160.0]}).to_csv(
        folder / "fx_rates.csv", index=False
    )
    report = validate_dataset(folder, as_of=AS_OF)
    assert issues_by_rule(report)[("transactions", "currency", "currency in fx_rates")].n_rows == 2
    pd.DataFrame({"currency": ["USD"], "rate_to_base": [150.0]}).to_csv(
        folder / "fx_rates.csv", index=False
    )
    assert validate_dataset(folder, as_of=AS_OF).ok


def test_cost_above_revenue_is_a_warning(tmp_path, valid_tables):
    valid_tables["transactions"].loc[0, "cost"] = 5000.0
    report = validate_dataset(write_dataset(tmp_path / "ds", valid_tables), as_of=AS_OF)
    assert report.ok
    (warning,) = report.warnings
    assert warning.rule == "cost <= revenue" and warning.n_rows == 1


def test_value_rules_and_cross_column_rules(tmp_path, valid_tables):
    valid_tables["accounts"].loc[2, "strategic_fit"] = 6
    valid_tables["contracts"].loc[1, "end_date"] = "2025-01-01"
    valid_tables["contracts"].loc[0, "status"] = "lost"
    report = validate_dataset(write_dataset(tmp_path / "ds", valid_tables), as_of=AS_OF)
    found = issues_by_rule(report)
    assert found[("accounts", "strategic_fit", "between 1 and 5")].examples[0]["_line"] == 4
    assert found[("contracts", "end_date", "end_date >= start_date")].n_rows == 1
    status = found[("contracts", "status", "one of active, renewed, expired, churned")]
    assert status.examples[0]["status"] == "lost"


def test_extra_columns_are_ignored_and_listed(tmp_path, valid_tables):
    valid_tables["accounts"]["CRM Owner Memo"] = "x"
    report = validate_dataset(write_dataset(tmp_path / "ds", valid_tables), as_of=AS_OF)
    assert report.ok
    assert report.summary["tables"]["accounts"]["ignored_columns"] == ["CRM Owner Memo"]


def test_slash_dates_and_thousands_separators(tmp_path, valid_tables):
    folder = write_dataset(tmp_path / "ds", valid_tables)
    (folder / "transactions.csv").write_text(
        "account_id,date,product_line,revenue,cost\n"
        'A1,2024/04/01,Core,"1,234,567","¥1,000"\n'
        "A2,2024年4月2日,Core,500,100\n",
        encoding="utf-8",
    )
    ds = open_dataset(folder)
    tx = ds.to_pandas("transactions")
    assert tx["revenue"].tolist() == [1_234_567.0, 500.0]
    assert tx["cost"].tolist() == [1000.0, 100.0]
    assert tx["date"].tolist() == [pd.Timestamp("2024-04-01"), pd.Timestamp("2024-04-02")]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
def test_encodings_detected_and_read(tmp_path, valid_tables, encoding):
    folder = write_dataset(tmp_path / "ds", valid_tables, encoding=encoding)
    (folder / "accounts.csv").write_bytes(
        "account_id,name,industry,region\nA1,㈱青葉①,製造業,関東\nA2,株式会社髙橋製作所,小売,関西\nA3,Beta,金融,関東\n".encode(
            encoding
        )
    )
    assert detect_encoding(folder / "accounts.csv") == encoding
    report = validate_dataset(folder, as_of=AS_OF)
    assert report.ok, report.render_text()
    names = open_dataset(folder).to_pandas("accounts")["name"].tolist()
    assert names == ["㈱青葉①", "株式会社髙橋製作所", "Beta"]
    # the user's file is never rewritten
    assert detect_encoding(folder / "accounts.csv") == encoding


def test_unknown_encoding_is_reported(tmp_path, valid_tables):
    folder = write_dataset(tmp_path / "ds", valid_tables)
    (folder / "accounts.csv").write_bytes(b"account_id,name\nA1,\x81\x7f\xa0\n")
    report = validate_dataset(folder, as_of=AS_OF)
    assert report.errors[0].rule == "text encoding"
    assert "byte 0x81 at line 2" in report.errors[0].message


def test_column_map_for_a_japanese_export(tmp_path, valid_tables):
    folder = write_dataset(tmp_path / "ds", {"accounts": valid_tables["accounts"]})
    tx = valid_tables["transactions"].rename(
        columns={
            "account_id": "得意先コード",
            "date": "売上日",
            "product_line": "商品区分",
            "revenue": "売上金額",
            "cost": "原価",
        }
    )
    tx.to_csv(folder / "transactions.csv", index=False, encoding="cp932")
    assert not validate_dataset(folder, as_of=AS_OF).ok
    config = config_from_dict(
        {
            "columns": {
                "transactions": {
                    "account_id": "得意先コード",
                    "date": "売上日",
                    "product_line": "商品区分",
                    "revenue": "売上金額",
                    "cost": "原価",
                }
            }
        }
    )
    report = validate_dataset(folder, as_of=AS_OF, config=config)
    assert report.ok, report.render_text()
    tx_read = open_dataset(folder, config=config).to_pandas("transactions")
    assert tx_read["revenue"].sum() == pytest.approx(2450.0)


def test_header_names_are_matched_loosely(tmp_path, valid_tables):
    valid_tables["transactions"] = valid_tables["transactions"].rename(
        columns={"account_id": " Account ID ", "product_line": "Product-Line", "revenue": "REVENUE"}
    )
    report = validate_dataset(write_dataset(tmp_path / "ds", valid_tables), as_of=AS_OF)
    assert report.ok, report.render_text()


def test_parquet_and_excel_sources(tmp_path, valid_tables):
    folder = tmp_path / "ds"
    folder.mkdir()
    tx = valid_tables["transactions"].assign(date=lambda d: pd.to_datetime(d["date"]))
    tx.loc[2, "revenue"] = -1.0
    tx.to_parquet(folder / "transactions.parquet", index=False)
    valid_tables["accounts"].to_excel(folder / "accounts.xlsx", index=False)
    report = validate_dataset(folder, as_of=AS_OF, config=STRICT_SIGNS)
    (issue,) = report.errors
    assert issue.file == "transactions.parquet" and issue.line_label == "row"
    assert issue.examples[0]["_line"] == 3  # third data row
    accounts = open_dataset(folder).to_pandas("accounts")
    assert accounts["strategic_fit"].tolist() == [5, 3, 1]
    assert accounts["wallet_estimate"].tolist() == [1_000_000.0, 500_000.0, 250_000.0]


def test_open_dataset_raises_with_report(tmp_path, valid_tables):
    del valid_tables["transactions"]
    with pytest.raises(DatasetError) as err:
        open_dataset(write_dataset(tmp_path / "ds", valid_tables))
    assert "required table missing" in str(err.value)


def test_report_text_names_file_column_rule_and_lines(tmp_path, valid_tables):
    valid_tables["transactions"].loc[1, "revenue"] = -3.0
    folder = write_dataset(tmp_path / "ds", valid_tables)
    report = validate_dataset(folder, as_of=AS_OF, config=STRICT_SIGNS)
    text = report.render_text()
    assert 'ERROR transactions.csv, column "revenue": negative value (credit note or return' in text
    assert "(rule: >= 0) — 1 row(s)" in text
    assert "line 3: revenue=-3.0, account_id=A1, date=2025-05-10" in text
    assert report.to_dict()["ok"] is False


def test_rows_of_accounts_keep_exactly_the_given_accounts():
    import ibis

    from kam_analysis.data import rows_of_accounts

    frame = pd.DataFrame({"account_id": [f"A{i % 50}" for i in range(500)], "x": range(500)})
    table = ibis.duckdb.connect().create_table("t", frame)
    for ids in (["A7"], [f"A{i}" for i in range(0, 50, 3)] + ["nobody"]):
        got = rows_of_accounts(table, ids).to_pandas().sort_values("x", ignore_index=True)
        want = frame[frame["account_id"].isin(ids)].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_dtype=False)

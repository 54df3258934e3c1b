"""Reading real exports as they come: encodings, delimiters, decimal marks, date formats,
formulas, credit notes, lines without an account, no accounts file."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kam_analysis.cli import main
from kam_analysis.config import ConfigError, config_from_dict
from kam_analysis.context import default_as_of
from kam_analysis.data import DatasetError, detect_encoding, open_dataset, validate_dataset
from kam_analysis.data.files import EncodingError, detect_delimiter, plausibility
from kam_analysis.data.parsing import FormulaError, parse_formula

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
# A UK wholesaler's invoice lines as exported: quantity x price, a cancellation (C...),
# a line without a customer, US dates without zero padding, a pound sign in cp1252.
LINES = (
    "536365,85123A,WHITE HANGING HEART,6,12/1/2010 8:26,2.55,17850,United Kingdom\n"
    "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom\n"
    "536366,22633,HAND WARMER £ UNION JACK,6,12/1/2010 8:28,1.85,17850,United Kingdom\n"
    "536367,84879,ASSORTED BIRD ORNAMENT,32,12/1/2010 8:34,1.69,13047,France\n"
    "C536379,D,Discount,-1,12/1/2010 9:41,27.50,13047,France\n"
    "536370,22728,ALARM CLOCK CAFÉ,24,12/1/2010 8:45,3.75,,United Kingdom\n"
    "536371,22086,PAPER CHAIN KIT 50’S,80,12/1/2010 9:00,2.55,13047,United Kingdom\n"
)
WHOLESALER_TOML = """
[data]
base_currency = "GBP"
date_format = "%m/%d/%Y %H:%M"

[data.files]
transactions = "Online Retail.csv"

[columns.transactions]
account_id = "CustomerID"
date = "InvoiceDate"
revenue = "= Quantity * UnitPrice"
quantity = "Quantity"
order_id = "InvoiceNo"

[columns.accounts]
region = "Country"
"""


def wholesaler(folder: Path, *, encoding: str = "cp1252", toml: str = WHOLESALER_TOML) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Online Retail.csv").write_bytes((HEADER + LINES).encode(encoding))
    (folder / "kam.toml").write_text(toml, encoding="utf-8")
    return folder


def cfg(folder: Path):
    from kam_analysis.config import load_config

    return load_config(folder / "kam.toml")


# --------------------------------------------------------------------------- a whole export


def test_wholesaler_export_reads_with_a_kam_toml_only(tmp_path, capsys):
    folder = wholesaler(tmp_path / "retail")
    assert main(["validate", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"configuration: {folder / 'kam.toml'}" in out
    assert "(Online Retail.csv; cp1252; comma-delimited" in out
    # default as-of: the last transaction date, not today
    assert "as of 2010-12-01" in out
    assert "credit notes and returns: 1 lines, amount -27.50" in out
    assert "lines without an account: 1 (14.3% of lines" in out
    assert "2 rows  (derived from Online Retail.csv: one row per account_id, with region" in out

    ds = open_dataset(folder, config=cfg(folder))
    lines = ds.to_pandas("transactions")
    assert len(lines) == 6  # the line without a customer is left out
    per_order = lines.groupby("order_id")["revenue"].sum()
    assert per_order["536365"] == pytest.approx(6 * 2.55 + 6 * 3.39)
    assert per_order["C536379"] == pytest.approx(-27.50)
    assert lines["date"].min() == pd.Timestamp("2010-12-01 08:26")
    accounts = ds.to_pandas("accounts").set_index("account_id")
    assert accounts.loc["17850", "region"] == "United Kingdom"
    assert accounts.loc["13047", "region"] == "France"  # 2 of its 3 lines
    assert accounts.loc["13047", "name"] == "13047"
    assert default_as_of(folder, None, ds) == dt.date(2010, 12, 1)


def test_summary_counts_credit_notes_and_unattributed_lines(tmp_path):
    folder = wholesaler(tmp_path / "retail")
    report = validate_dataset(folder, config=cfg(folder))
    assert report.ok, report.render_text()
    gross = 6 * 2.55 + 6 * 3.39 + 6 * 1.85 + 32 * 1.69 + 24 * 3.75 + 80 * 2.55
    notes = report.summary["credit_notes"]
    assert notes["lines"] == 1 and notes["amount"] == pytest.approx(-27.5)
    assert notes["share"] == pytest.approx(27.5 / gross)
    un = report.summary["unattributed"]
    assert un["lines"] == 1 and un["line_share"] == pytest.approx(1 / 7)
    assert un["revenue_share"] == pytest.approx(24 * 3.75 / gross)


def test_strict_settings_refuse_credit_notes_and_unattributed_lines(tmp_path):
    toml = WHOLESALER_TOML.replace(
        "[data]\n", '[data]\ncredit_notes = "error"\nunattributed = "error"\n'
    )
    folder = wholesaler(tmp_path / "retail", toml=toml)
    report = validate_dataset(folder, config=cfg(folder))
    rules = {(i.column, i.rule): i for i in report.errors}
    neg = rules[("revenue", ">= 0")]
    assert neg.n_rows == 1 and neg.examples[0]["_line"] == 6
    assert neg.examples[0]["revenue"] == -27.5
    blank = rules[("account_id", "not null")]
    assert blank.n_rows == 1 and blank.examples[0]["_line"] == 7
    assert "unattributed" in blank.message


def test_given_as_of_long_after_the_data_warns(tmp_path):
    folder = wholesaler(tmp_path / "retail")
    report = validate_dataset(folder, as_of="2011-12-09", config=cfg(folder))
    assert report.ok
    (gap,) = [w for w in report.warnings if w.column == "date"]
    assert "373 days after the last transaction (2010-12-01)" in gap.message


# --------------------------------------------------------------------------- encodings


def test_cp1252_detected_and_decoded(tmp_path):
    folder = wholesaler(tmp_path / "retail")
    assert detect_encoding(folder / "Online Retail.csv") == "cp1252"
    ds = open_dataset(folder, config=cfg(folder))
    assert ds.sources["transactions"].encoding == "cp1252"
    # the original file is never rewritten; the converted copy lives in the cache
    assert (folder / "Online Retail.csv").read_bytes() == (HEADER + LINES).encode("cp1252")
    assert ds.sources["transactions"].read_path.parent == folder / "_derived" / ".cache"


def test_configured_encoding_wins_and_is_checked(tmp_path):
    folder = wholesaler(tmp_path / "retail")
    toml = WHOLESALER_TOML.replace("[data]\n", '[data]\nencoding = "utf-8"\n')
    (folder / "kam.toml").write_text(toml)
    report = validate_dataset(folder, config=cfg(folder))
    (err,) = report.errors
    assert err.rule == "text encoding"
    assert "not valid utf-8 (the configured encoding): byte 0xA3 at line 4" in err.message


def test_stray_byte_in_utf8_is_an_error_at_that_byte(tmp_path):
    text = (HEADER + LINES).encode("utf-8")  # £, É and ’ are valid UTF-8 here
    broken = text.replace(b"ASSORTED", b"ASSO\xffTED")
    folder = tmp_path / "retail"
    folder.mkdir()
    (folder / "Online Retail.csv").write_bytes(broken)
    (folder / "kam.toml").write_text(WHOLESALER_TOML)
    offset = broken.index(b"\xff")
    with pytest.raises(EncodingError) as err:
        detect_encoding(folder / "Online Retail.csv")
    assert err.value.offset == offset and err.value.line == 5
    assert f"byte 0xFF at line 5 (byte offset {offset:,})" in str(err.value)
    assert "invalid byte in a UTF-8 file" in str(err.value)


def test_japanese_cp932_is_not_mistaken_for_cp1252(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("取引先,金額\n株式会社髙橋製作所,1000\nｶﾌﾞｼｷｶﾞｲｼｬ,20\n".encode("cp932"))
    assert detect_encoding(path) == "cp932"


def test_plausibility_scores_separate_the_code_pages():
    western = "Café crème £12 naïve Zürich – it’s"
    japanese = "株式会社髙橋製作所、東京都"
    assert plausibility(western, "cp1252") == 1.0
    assert plausibility(japanese, "cp932") == 1.0
    # cp1252 text read as CP932 gives isolated kanji between Latin letters
    garbled = "Cr\u9c48e"  # what 'Crème' becomes in CP932
    assert plausibility(garbled, "cp932") == 0.0


# --------------------------------------------------------------------------- delimiters, headers


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["a,b,c", "1,2,3"], ","),
        (["a;b;c", "1;1709,58;3"], ";"),
        (["a\tb", "1\t2"], "\t"),
        (["a|b", "1|2"], "|"),
        (["  00001 19970101  1  11.77", "  00002 19970112  1  12.00"], "whitespace"),
        (["name,city", '"Smith, J",Paris'], ","),
        (["a,b", "1,2,3"], None),
    ],
)
def test_delimiter_detection(lines, expected):
    assert detect_delimiter(lines) == expected


def test_whitespace_file_without_header_named_in_config(tmp_path):
    folder = tmp_path / "cdnow"
    folder.mkdir()
    (folder / "CDNOW.txt").write_text(
        "00001 19970101  1  11.77\r\n00001 19970112  2  89.00\r\n00002 19970112  1  12.00\r\n"
    )
    base = {
        "data": {"files": {"transactions": "CDNOW.txt"}},
        "columns": {
            "transactions": {"account_id": "id", "date": "day", "revenue": "usd", "quantity": "n"}
        },
    }
    with pytest.raises(DatasetError) as err:
        open_dataset(folder, config=config_from_dict(base))
    assert "the first line looks like data" in str(err.value)
    assert "[data.column_names] transactions" in str(err.value)
    named = base | {
        "data": base["data"] | {"column_names": {"transactions": ["id", "day", "n", "usd"]}}
    }
    ds = open_dataset(folder, config=config_from_dict(named))
    tx = ds.to_pandas("transactions")
    assert tx["revenue"].tolist() == [11.77, 89.0, 12.0]
    assert (
        tx["date"].tolist() == pd.to_datetime(["1997-01-01", "1997-01-12", "1997-01-12"]).tolist()
    )
    assert tx["account_id"].tolist() == ["00001", "00001", "00002"]  # ids keep their zeros
    report = validate_dataset(folder, config=config_from_dict(named))
    assert report.ok and report.summary["tables"]["transactions"]["header"] is False
    assert report.summary["tables"]["transactions"]["rows"] == 3  # line numbers start at 1


def test_column_names_on_a_file_with_a_header_are_refused(tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "transactions.csv").write_text("id,day,usd\nA,2024-01-01,5\n")
    config = config_from_dict(
        {
            "data": {"column_names": {"transactions": ["account_id", "date", "revenue"]}},
        }
    )
    with pytest.raises(DatasetError) as err:
        open_dataset(folder, config=config)
    assert "looks like a header row" in str(err.value)


def test_duplicated_header_is_refused(tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "transactions.csv").write_text(
        "account_id,date,product_line,revenue,revenue\nA,2024-01-01,x,10,4\n"
    )
    with pytest.raises(DatasetError) as err:
        open_dataset(folder)
    assert "duplicated column name(s) ['revenue']" in str(err.value)


# --------------------------------------------------------------------------- numbers


def _tx_folder(tmp_path: Path, body: str, name: str = "transactions.csv") -> Path:
    folder = tmp_path / "ds"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(body, encoding="utf-8")
    return folder


def test_semicolon_file_with_decimal_commas_is_refused_then_read(tmp_path):
    body = "account_id;date;revenue\nA;2024-01-05;1.709,58\nB;2024-01-06;12,5\n"
    folder = _tx_folder(tmp_path, body)
    report = validate_dataset(folder)
    (bad,) = [i for i in report.errors if i.rule == "parse amount"]
    assert bad.n_rows == 2 and 'set [data] decimal = ","' in bad.message
    config = config_from_dict({"data": {"decimal": ","}})
    assert validate_dataset(folder, config=config).ok
    tx = open_dataset(folder, config=config).to_pandas("transactions")
    assert tx["revenue"].tolist() == [1709.58, 12.5]


def test_comma_decimal_never_read_as_a_large_number(tmp_path):
    folder = _tx_folder(tmp_path, 'account_id,date,revenue\nA,2024-01-05,"1709,58"\n')
    report = validate_dataset(folder)
    (bad,) = [i for i in report.errors if i.rule == "parse amount"]
    assert bad.examples[0]["revenue"] == "1709,58"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1,709.58", 1709.58),
        ("¥1,234,567", 1234567.0),
        ("(1,234.50)", -1234.5),
        ("1234.50-", -1234.5),
        ("-3", -3.0),
        ("1e3", 1000.0),
        (" 12 ", 12.0),
    ],
)
def test_amount_forms(tmp_path, text, value):
    folder = _tx_folder(tmp_path, f'account_id,date,revenue\nA,2024-01-05,"{text}"\n')
    tx = open_dataset(folder).to_pandas("transactions")
    assert tx["revenue"].tolist() == [value]


@pytest.mark.parametrize("text", ["NaN", "inf", "-Infinity", "1e400", "1,70", "12.3.4", "1 2x"])
def test_non_finite_or_malformed_amounts_are_refused(tmp_path, text):
    folder = _tx_folder(tmp_path, f'account_id,date,revenue\nA,2024-01-05,"{text}"\n')
    report = validate_dataset(folder)
    (bad,) = [i for i in report.errors if i.rule == "parse amount"]
    assert bad.n_rows == 1


# --------------------------------------------------------------------------- dates


def test_us_dates_need_a_format_and_get_advice(tmp_path):
    folder = _tx_folder(
        tmp_path, "account_id,date,revenue\nA,12/1/2010 8:26,1\nB,12/13/2010 18:06,2\n"
    )
    report = validate_dataset(folder)
    (bad,) = [i for i in report.errors if i.rule == "parse date"]
    assert 'put the month first: set [data] date_format = "%m/%d/%Y %H:%M"' in bad.message
    config = config_from_dict({"data": {"date_format": "%m/%d/%Y %H:%M"}})
    tx = open_dataset(folder, config=config).to_pandas("transactions")
    assert tx["date"].tolist() == [
        pd.Timestamp("2010-12-01 08:26"),
        pd.Timestamp("2010-12-13 18:06"),
    ]


def test_ambiguous_day_month_order_is_never_guessed(tmp_path):
    folder = _tx_folder(tmp_path, "account_id,date,revenue\nA,01/02/2024,1\nB,03/04/2024,2\n")
    report = validate_dataset(folder)
    (bad,) = [i for i in report.errors if i.rule == "parse date"]
    assert "never guessed" in bad.message
    assert '"%m/%d/%Y" (month first, US) or "%d/%m/%Y" (day first)' in bad.message


def test_day_first_dates_get_day_first_advice(tmp_path):
    folder = _tx_folder(tmp_path, "account_id,date,revenue\nA,25.12.2024,1\n")
    report = validate_dataset(folder)
    (bad,) = [i for i in report.errors if i.rule == "parse date"]
    assert 'day first: set [data] date_format = "%d.%m.%Y"' in bad.message


# --------------------------------------------------------------------------- formulas


def test_formulas_with_backticks_constants_and_arithmetic(tmp_path):
    body = "Kunde,Datum,Menge,Unit Price,Kosten je Stück\nA,2024-01-05,4,2.50,1.5\nB,2024-01-06,2,10,4\n"
    folder = _tx_folder(tmp_path, body)
    config = config_from_dict(
        {
            "columns": {
                "transactions": {
                    "account_id": "Kunde",
                    "date": "Datum",
                    "revenue": "= Menge * `Unit Price`",
                    "cost": "= Menge * `Kosten je Stück` + 0.5",
                    "product_line": "= 'All products'",
                }
            }
        }
    )
    tx = open_dataset(folder, config=config).to_pandas("transactions")
    assert tx["revenue"].tolist() == [10.0, 20.0]
    assert tx["cost"].tolist() == [6.5, 8.5]
    assert tx["product_line"].tolist() == ["All products", "All products"]


def test_formula_input_that_is_not_a_number_is_reported_with_its_inputs(tmp_path):
    folder = _tx_folder(tmp_path, "c,d,q,p\nA,2024-01-05,4,x\n")
    config = config_from_dict(
        {"columns": {"transactions": {"account_id": "c", "date": "d", "revenue": "= q * p"}}}
    )
    report = validate_dataset(folder, config=config)
    (bad,) = [i for i in report.errors if i.rule == "parse amount"]
    assert bad.examples[0]["revenue"] == "q=4, p=x"


def test_formula_naming_an_unknown_column(tmp_path):
    folder = _tx_folder(tmp_path, "c,d,q\nA,2024-01-05,4\n")
    config = config_from_dict(
        {"columns": {"transactions": {"account_id": "c", "date": "d", "revenue": "= q * Price"}}}
    )
    with pytest.raises(DatasetError) as err:
        open_dataset(folder, config=config)
    assert "uses column(s) ['Price'] not found in the file" in str(err.value)


@pytest.mark.parametrize(
    ("formula", "token"),
    [
        ("= Quantity ^ 2", "'^'"),
        ("= Quantity; DROP TABLE x", "';'"),
        ("= sum(Quantity)", "sum(...)"),
        ("= a +", "ends too early"),
    ],
)
def test_formula_syntax_errors_name_the_token(formula, token):
    with pytest.raises(FormulaError, match=None) as err:
        parse_formula(formula)
    assert token in str(err.value)
    with pytest.raises(ConfigError) as err:
        config_from_dict({"columns": {"transactions": {"revenue": formula}}})
    assert token in str(err.value)


def test_text_in_a_number_formula_is_a_configuration_error():
    with pytest.raises(ConfigError) as err:
        config_from_dict({"columns": {"transactions": {"revenue": "= q * 'x'"}}})
    assert "text 'x' in a number formula" in str(err.value)


# --------------------------------------------------------------------------- tables


def test_accounts_file_with_only_account_id(tmp_path):
    folder = _tx_folder(tmp_path, "account_id,date,revenue\nA,2024-01-05,1\n")
    (folder / "accounts.csv").write_text("account_id\nA\nB\n")
    ds = open_dataset(folder)
    accounts = ds.to_pandas("accounts")
    assert accounts["name"].tolist() == ["A", "B"]
    assert validate_dataset(folder).ok


def test_carried_account_column_must_exist(tmp_path):
    folder = _tx_folder(tmp_path, "account_id,date,revenue\nA,2024-01-05,1\n")
    config = config_from_dict({"columns": {"accounts": {"region": "Country"}}})
    with pytest.raises(DatasetError) as err:
        open_dataset(folder, config=config)
    assert "must name a column of the transactions" in str(err.value)


def test_carried_value_is_the_most_frequent_with_a_stable_tie_break(tmp_path):
    body = (
        "account_id,date,revenue,Country\n"
        "A,2024-01-05,1,Japan\nA,2024-01-06,1,France\nA,2024-01-07,1,Japan\n"
        "B,2024-01-05,1,Spain\nB,2024-01-06,1,Italy\n"
    )
    folder = _tx_folder(tmp_path, body)
    config = config_from_dict({"columns": {"accounts": {"region": "Country"}}})
    accounts = open_dataset(folder, config=config).to_pandas("accounts").set_index("account_id")
    assert accounts.loc["A", "region"] == "Japan"
    assert accounts.loc["B", "region"] == "Italy"  # tie: the smallest value


def test_derived_accounts_come_in_account_order(tmp_path):
    """The accounts table derived from the lines has one row per account, sorted by id."""
    rng = np.random.default_rng(7)
    ids = [f"K{i:04d}" for i in rng.permutation(600)]
    rows = [
        f"{a},2024-0{1 + i % 9}-1{i % 10},{1 + i % 5},Land{i % 3}" for i, a in enumerate(ids * 2)
    ]
    folder = _tx_folder(tmp_path, "account_id,date,revenue,Country\n" + "\n".join(rows) + "\n")
    config = config_from_dict({"columns": {"accounts": {"region": "Country"}}})
    first = open_dataset(folder, config=config).to_pandas("accounts")
    assert first["account_id"].tolist() == sorted(ids)
    again = open_dataset(folder, config=config).to_pandas("accounts")
    pd.testing.assert_frame_equal(again, first)


def test_no_product_line_is_valid(tmp_path):
    folder = _tx_folder(tmp_path, "account_id,date,revenue\nA,2024-01-05,1\n")
    report = validate_dataset(folder)
    assert report.ok, report.render_text()
    assert "product_line" not in open_dataset(folder).table("transactions").columns


def test_tsv_and_txt_files_are_found(tmp_path):
    folder = _tx_folder(
        tmp_path, "account_id\tdate\trevenue\nA\t2024-01-05\t3\n", "transactions.tsv"
    )
    assert open_dataset(folder).to_pandas("transactions")["revenue"].tolist() == [3.0]


def test_edited_converted_copy_is_rebuilt(tmp_path):
    folder = wholesaler(tmp_path / "retail")
    first = open_dataset(folder, config=cfg(folder)).sources["transactions"].read_path
    first.write_text(first.read_text().replace("17850", "99999"))
    os.utime(first, (time.time() + 5, time.time() + 5))
    again = open_dataset(folder, config=cfg(folder))
    ids = set(again.to_pandas("transactions")["account_id"])
    assert ids == {"17850", "13047"}


def test_source_edited_in_place_gets_a_new_copy(tmp_path):
    folder = wholesaler(tmp_path / "retail")
    first = open_dataset(folder, config=cfg(folder)).sources["transactions"].read_path
    source = folder / "Online Retail.csv"
    stat = source.stat()
    edited = source.read_bytes().replace(b"17850", b"17851")  # same size
    source.write_bytes(edited)
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same time
    again = open_dataset(folder, config=cfg(folder))
    assert again.sources["transactions"].read_path != first
    assert "17851" in set(again.to_pandas("transactions")["account_id"])


def test_excel_sheets_are_bounded_and_checked(tmp_path, monkeypatch):
    import kam_analysis.data.files as files

    folder = tmp_path / "ds"
    folder.mkdir()
    rows = pd.DataFrame(
        {"account_id": [f"A{i}" for i in range(300)], "date": "2024-01-05", "revenue": 1.0}
    )
    rows.to_excel(folder / "transactions.xlsx", index=False)
    monkeypatch.setattr(files, "MAX_EXCEL_ROWS", 200)
    with pytest.raises(DatasetError) as err:
        open_dataset(folder)
    text = str(err.value)
    assert "more than kam reads from Excel (200 rows" in text and "export the sheet as CSV" in text
    monkeypatch.setattr(files, "MAX_EXCEL_ROWS", 1_048_576)
    assert len(open_dataset(folder).to_pandas("transactions")) == 300
    # a duplicated header is refused (pandas would have renamed it revenue.1)
    rows.rename(columns={"date": "revenue"}).to_excel(folder / "transactions.xlsx", index=False)
    with pytest.raises(DatasetError) as err:
        open_dataset(folder)
    assert "duplicated column name(s) ['revenue']" in str(err.value)

"""The kam command line: exit codes and messages, never a traceback for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

from kam_analysis.cli import main
from tests.test_data import _accounts, _contracts, _transactions, write_dataset


def _valid(tmp_path):
    return write_dataset(
        tmp_path / "ds",
        {"accounts": _accounts(), "transactions": _transactions(), "contracts": _contracts()},
    )


def test_validate_ok(tmp_path, capsys):
    folder = _valid(tmp_path)
    assert main(["validate", str(folder), "--as-of", "2026-03-31"]) == 0
    out = capsys.readouterr().out
    assert "valid (0 error(s), 0 warning(s))" in out
    assert "transactions" in out and "5 rows" in out


def test_validate_invalid_exits_2_without_traceback(tmp_path):
    folder = _valid(tmp_path)
    (folder / "transactions.csv").write_text(
        "account_id,date,product_line,revenue\nA1,2025-01-01,Core,n/a\n", encoding="utf-8"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kam_analysis.cli",
            "validate",
            str(folder),
            "--as-of",
            "2026-03-31",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    assert 'transactions.csv, column "revenue": not a number' in proc.stdout
    assert "line 2: revenue=n/a" in proc.stdout


def test_bad_as_of_and_bad_config_exit_2(tmp_path, capsys):
    folder = _valid(tmp_path)
    assert main(["validate", str(folder), "--as-of", "31.03.2026"]) == 2
    assert "not a date" in capsys.readouterr().err
    cfg = tmp_path / "kam.toml"
    cfg.write_text("[data]\nbase_curency = 'JPY'\n", encoding="utf-8")
    assert main(["validate", str(folder), "--config", str(cfg)]) == 2
    assert "data.base_curency: unknown setting" in capsys.readouterr().err


def test_features_written_atomically_and_refused_on_invalid_data(tmp_path, capsys):
    folder = _valid(tmp_path)
    out = tmp_path / "features.parquet"
    assert main(["features", str(folder), "--as-of", "2026-03-31", "--out", str(out)]) == 0
    features = pd.read_parquet(out)
    assert sorted(features["account_id"]) == ["A1", "A2", "A3"]
    assert features.set_index("account_id").loc["A1", "revenue_12m"] == 1500.0
    # invalid data: exit 2 and the previous output is untouched
    before = out.read_bytes()
    (folder / "transactions.csv").write_text(
        "account_id,date,product_line,revenue\nA1,2025-01-01,Core,oops\n", encoding="utf-8"
    )
    assert main(["features", str(folder), "--as-of", "2026-03-31", "--out", str(out)]) == 2
    assert out.read_bytes() == before


def test_dictionary_lists_the_contract(capsys):
    assert main(["dictionary", "--table", "usage", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("table,column,type")
    assert [line.split(",")[1] for line in lines[1:]] == [
        "account_id",
        "month",
        "seats_purchased",
        "seats_active",
    ]


def test_synth_density_flag_scales_the_lines(tmp_path, capsys):
    args = ["synth", "--accounts", "40", "--seed", "2"]
    assert main([*args, "--out", str(tmp_path / "base")]) == 0
    assert main([*args, "--out", str(tmp_path / "dense"), "--lines-per-account-month", "14"]) == 0
    base = len(pd.read_parquet(tmp_path / "base" / "transactions.parquet"))
    dense = len(pd.read_parquet(tmp_path / "dense" / "transactions.parquet"))
    assert 1.7 < dense / base < 2.3  # twice the default density of 7
    assert main([*args, "--out", str(tmp_path / "x"), "--lines-per-account-month", "0"]) == 2
    assert "must be above 0 and at most 1,000" in capsys.readouterr().err


def test_synth_market_volatility_flag_reaches_the_ground_truth(tmp_path, capsys):
    args = ["synth", "--accounts", "30", "--seed", "2"]
    assert main([*args, "--out", str(tmp_path / "m"), "--market-volatility", "0.3"]) == 0
    truth = json.loads((tmp_path / "m" / "ground_truth.json").read_text(encoding="utf-8"))
    assert truth["market"]["volatility_annual"] == 0.3
    assert main([*args, "--out", str(tmp_path / "flat"), "--market-volatility", "0"]) == 0
    flat = json.loads((tmp_path / "flat" / "ground_truth.json").read_text(encoding="utf-8"))
    assert set(flat["market"]["monthly_log_path"]) == {0.0}
    assert main([*args, "--out", str(tmp_path / "x"), "--market-volatility", "1.5"]) == 2
    assert "--market-volatility must be at least 0 and below 1" in capsys.readouterr().err


def test_run_on_invalid_data_stops_what_it_started_and_publishes_nothing(tmp_path, capsys):
    import psutil

    folder = _valid(tmp_path)
    with (folder / "transactions.csv").open("a", encoding="utf-8") as fh:
        fh.write("A1,2025-04-02,Core,10.0,5.0,yen\n")
    reports = tmp_path / "reports"
    argv = ["run", "--data", str(folder), "--reports-dir", str(reports), "--as-of", "2026-03-31"]
    # the data are validated while the workers and the run-state builder start
    assert main([*argv, "--jobs", "2"]) == 2
    err = capsys.readouterr().err
    assert 'transactions.csv, column "currency": value has the wrong form' in err
    assert "line 7: currency=yen" in err
    assert err.rstrip().endswith("kam: invalid data, no report was run")
    assert list(reports.iterdir()) == []  # no run, no working folder, no index
    assert psutil.Process().children(recursive=True) == []  # kernels and builder stopped

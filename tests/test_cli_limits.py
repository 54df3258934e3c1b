"""Arguments and limits: refused with exit 2 and a message before anything runs."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from kam_analysis.cli import main
from kam_analysis.pipeline import coerce_parameter, notebook_parameters
from tests.test_cli import _valid

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


def _run(folder, tmp_path, *extra):
    return main(["run", "--data", str(folder), "--reports-dir", str(tmp_path / "reports"), *extra])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--jobs", "0"], "--jobs must be at least 1"),
        (["--account-plans", "-1"], "--account-plans must be 0 or more"),
        (
            ["--only", "01_account_valuation", "-p", "top_n=-5"],
            "'top_n' of 01_account_valuation must be in [1, 200]",
        ),
        (["--only", "01_account_valuation", "-p", "top_n=many"], "expects an integer"),
        (["--only", "01_account_valuation", "-p", "robustness_draws=0"], "must be in [10, 10000]"),
    ],
)
def test_bad_run_arguments_exit_2_before_anything_runs(tmp_path, capsys, extra, message):
    folder = _valid(tmp_path)
    assert _run(folder, tmp_path, "--as-of", "2026-03-31", *extra) == 2
    assert message in capsys.readouterr().err
    assert not list((tmp_path / "reports").glob("2*"))  # no run was published


def test_reports_dir_inside_the_dataset_is_refused(tmp_path, capsys):
    folder = _valid(tmp_path)
    code = main(["run", "--data", str(folder), "--reports-dir", str(folder / "reports")])
    assert code == 2
    assert "lies inside the dataset folder" in capsys.readouterr().err
    assert not (folder / "reports").exists()


def test_reports_dir_that_cannot_be_written(tmp_path, capsys):
    folder = _valid(tmp_path)
    assert main(["run", "--data", str(folder), "--reports-dir", "/proc/kam-reports"]) == 2
    assert "--reports-dir /proc/kam-reports: cannot write there" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["synth", "--start", "garbage"], "garbage"),
        (["synth", "--lines-per-account-month", "1e9"], "at most 1,000"),
        (["synth", "--accounts", "10000000"], "more than the 500,000,000"),
        (["validate", "{folder}", "--as-of", "9999-12-31"], "outside the years 1900-2199"),
        (["validate", "{folder}", "--as-of", "31.03.2026"], "not a date"),
    ],
)
def test_bad_values_give_a_message_not_a_traceback(tmp_path, capsys, argv, message):
    folder = _valid(tmp_path)
    argv = [a.replace("{folder}", str(folder)) for a in argv]
    if argv[0] == "synth":
        argv += ["--out", str(tmp_path / "synth")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "synth").exists()


def test_malformed_memory_limit_is_a_configuration_error(tmp_path, capsys):
    folder = _valid(tmp_path)
    (folder / "kam.toml").write_text('[data]\nduckdb_memory_limit = "lots"\n')
    assert main(["validate", str(folder)]) == 2
    assert "duckdb_memory_limit 'lots' is not a size" in capsys.readouterr().err


def test_full_disk_is_a_message(tmp_path, capsys, monkeypatch):
    folder = _valid(tmp_path)

    def no_space(**_):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "reports"))

    monkeypatch.setattr("kam_analysis.pipeline.run_reports", no_space)
    assert _run(folder, tmp_path, "--as-of", "2026-03-31", "--account-plans", "0") == 1
    err = capsys.readouterr().err
    assert "the disk is full" in err and "Traceback" not in err


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_numeric_notebook_parameters_declare_a_range_their_default_meets(path):
    for info in notebook_parameters(path).values():
        if info.type in ("int", "float"):
            assert info.minimum is not None or info.maximum is not None, info.source
            assert coerce_parameter(info.default, info, notebook=path.stem) == info.default

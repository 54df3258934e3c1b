"""The report pipeline: parameters, execution failures, atomic publishing, HTML safety.

Notebook runs use tiny notebooks written into tmp_path (kernel start ≈ 1–2 s each);
they are marked ``notebook`` and ``slow``. Unit tests of the helpers are fast.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import numpy as np
import psutil
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from kam_analysis import pipeline as reports
from kam_analysis.pipeline import (
    NotebookSpec,
    ParameterError,
    ParameterInfo,
    ReportError,
    ReportSettings,
    coerce_parameter,
    execute,
    find_chromium,
    find_personal_data,
    list_runs,
    make_run_id,
    manifest,
    notebook_parameters,
    record,
    remove_stale_work,
    run_reports,
    safe_name,
    show_run,
)

AS_OF = dt.date(2026, 3, 31)
KERNEL = "kam-analysis" if "kam-analysis" in KernelSpecManager().find_kernel_specs() else "python3"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \S.*$")
PARAMS = """\
data_dir: str = "data"  # dataset folder
as_of: str = "2026-03-31"  # analysis date YYYY-MM-DD
lang: str = "en"  # en or ja
show_personal_data: bool = False  # internal runs only
"""


def write_notebook(root: Path, name: str, cells: list[str], params: str = PARAMS) -> NotebookSpec:
    """A notebook with a tagged parameters cell; a cell starting with '#md' is Markdown."""
    body = [
        new_markdown_cell(c[3:].strip()) if c.startswith("#md") else new_code_cell(c) for c in cells
    ]
    nb = new_notebook(
        cells=[new_code_cell(params, metadata={"tags": ["parameters"]}), *body],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    path = root / "notebooks" / f"{name}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return NotebookSpec(
        name=name, path=f"notebooks/{name}.ipynb", title_en=f"Report {name}", title_ja="レポート"
    )


def make_data(root: Path) -> Path:
    data = root / "data" / "demo"
    data.mkdir(parents=True)
    (data / "accounts.csv").write_text("account_id,name\nA1,Aoba\n", encoding="utf-8")
    (data / "transactions.csv").write_text("account_id,revenue\nA1,10\n", encoding="utf-8")
    (data / "_derived").mkdir()
    (data / "_derived" / "cache.parquet").write_bytes(b"not an input")
    return data


def fake_good_run(reports_dir: Path, run_id: str = "20200101T000000Z-good") -> str:
    """A previously published successful run with `latest` pointing to it."""
    folder = reports_dir / run_id
    folder.mkdir(parents=True)
    manifest = {"run_id": run_id, "status": "ok", "as_of": "2020-01-01", "notebooks": []}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    os.symlink(run_id, reports_dir / "latest")
    return run_id


def published_runs(reports_dir: Path) -> list[str]:
    return sorted(
        p.name
        for p in reports_dir.iterdir()
        if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
    )


# --------------------------------------------------------------------------- parameters


def test_notebook_parameters_reads_types_defaults_and_comments(tmp_path):
    params = PARAMS + textwrap.dedent(
        """\
        config_path: str | None = None  # kam.toml
        top_n: int = 10  # accounts
        ratio = 0.5
        seed: Optional[int] = None
        flag = True
        label: "str" = "x"
        """
    )
    spec = write_notebook(tmp_path, "01_p", ["pass"], params=params)
    info = notebook_parameters(tmp_path / spec.path)
    assert list(info) == [
        "data_dir",
        "as_of",
        "lang",
        "show_personal_data",
        "config_path",
        "top_n",
        "ratio",
        "seed",
        "flag",
        "label",
    ]
    assert (info["config_path"].type, info["config_path"].optional) == ("str", True)
    assert (info["top_n"].type, info["top_n"].default, info["top_n"].help) == (
        "int",
        10,
        "accounts",
    )
    assert (info["ratio"].type, info["flag"].type, info["label"].type) == ("float", "bool", "str")
    assert (info["seed"].type, info["seed"].optional) == ("int", True)
    assert info["show_personal_data"].help == "internal runs only"


def test_notebook_parameters_requires_one_tagged_cell(tmp_path):
    path = tmp_path / "x.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("a = 1")]), path)
    with pytest.raises(ReportError, match="no cell tagged 'parameters'"):
        notebook_parameters(path)
    with pytest.raises(ReportError, match="notebook not found"):
        notebook_parameters(tmp_path / "missing.ipynb")


@pytest.mark.parametrize(
    ("kind", "optional", "text", "expected"),
    [
        ("bool", False, "yes", True),
        ("bool", False, "0", False),
        ("int", False, " 42 ", 42),
        ("float", False, "1e3", 1000.0),
        ("str", True, "None", None),
        ("str", False, "None", "None"),
        ("str", False, "../x", "../x"),
    ],
)
def test_coerce_parameter_converts_to_declared_type(kind, optional, text, expected):
    info = ParameterInfo("p", kind, optional, None, "", f"p: {kind}")
    value = coerce_parameter(text, info)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(("kind", "text"), [("int", "1.5"), ("bool", "maybe"), ("float", "abc")])
def test_coerce_parameter_rejects_wrong_type_with_declaration(kind, text):
    info = ParameterInfo("top_n", kind, False, None, "", f"top_n: {kind} = 1")
    with pytest.raises(ParameterError, match=rf"'top_n' of 01_x expects .*`top_n: {kind} = 1`"):
        coerce_parameter(text, info, notebook="01_x")


def test_parameter_problems_stop_before_anything_runs(tmp_path):
    root = tmp_path / "proj"
    spec = write_notebook(
        root, "01_a", ["raise RuntimeError('must not run')"], PARAMS + "top_n: int = 5\n"
    )
    calls = []

    def validate(folder, as_of):
        calls.append(folder)
        return True, ""

    common = dict(
        data_dir=make_data(tmp_path),
        as_of=AS_OF,
        notebooks=[spec],
        reports_dir=tmp_path / "reports",
        project_root=root,
        validate=validate,
        kernel_name=KERNEL,
        progress=False,
    )
    with pytest.raises(
        ParameterError, match=r"\['top_nn'\] not declared by any selected notebook.*top_n"
    ):
        run_reports(params={"top_nn": "3"}, **common)
    with pytest.raises(ParameterError, match="not a Python identifier"):
        run_reports(params={"top_n\nimport os": "3"}, **common)
    with pytest.raises(ParameterError, match="expects an integer"):
        run_reports(params={"top_n": "many"}, **common)
    with pytest.raises(ParameterError, match="set by the runner"):
        run_reports(params={"as_of": "2020-01-01"}, **common)
    with pytest.raises(ReportError, match="unknown language 'fr'"):
        run_reports(lang="fr", **common)
    bad_path = spec.model_copy(update={"path": "notebooks/missing.ipynb"})
    with pytest.raises(ReportError, match="notebook\\(s\\) not found"):
        run_reports(**{**common, "notebooks": [bad_path]})
    assert calls == []
    assert not (tmp_path / "reports").exists()


def test_invalid_data_exits_2_and_publishes_nothing(tmp_path):
    root = tmp_path / "proj"
    spec = write_notebook(root, "01_a", ["raise RuntimeError('must not run')"])
    reports_dir = tmp_path / "reports"
    reports_dir.mkdir()
    good = fake_good_run(reports_dir)
    data = make_data(tmp_path)
    seen = []

    def validate(folder, as_of):
        seen.append((folder, as_of))
        return False, "transactions.csv, column revenue: negative value (1 row)"

    result = run_reports(
        data_dir=data,
        as_of=AS_OF,
        notebooks=[spec],
        reports_dir=reports_dir,
        project_root=root,
        validate=validate,
        kernel_name=KERNEL,
        progress=False,
    )
    assert (result.code, result.status, result.run_id) == (2, "invalid", None)
    assert "negative value" in result.message
    assert seen == [(data.resolve(), AS_OF)]
    assert published_runs(reports_dir) == [good]
    assert os.readlink(reports_dir / "latest") == good
    assert not any(p.name.startswith(".tmp") for p in reports_dir.iterdir())


# --------------------------------------------------------------------------- small helpers


def test_run_id_and_safe_names():
    now = dt.datetime(2026, 11, 29, 2, 15, 0, tzinfo=dt.UTC)
    assert make_run_id("nightly", now=now) == "20261129T021500Z-nightly"
    assert make_run_id("../../etc <b>", now=now) == "20261129T021500Z-etc-b"
    assert make_run_id(None, now=now) == "20261129T021500Z"
    assert re.fullmatch(r"20261129T021500Z-x-[0-9a-f]{4}", make_run_id("x", now=now, suffix=True))
    assert safe_name("A0001") == "A0001"
    odd = safe_name("ACME/../01 <x>")
    assert re.fullmatch(r"[A-Za-z0-9_-]+", odd) and odd != safe_name("ACME_.._01 _x_")
    assert safe_name("株式会社").startswith("id-")


def test_record_writes_sidecar_only_when_runner_sets_it(tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.delenv(reports.RECORD_ENV, raising=False)
    record("n", 1)  # no-op outside a run
    target = tmp_path / "rec.json"
    monkeypatch.setenv(reports.RECORD_ENV, str(target))
    record("n_key", np.int64(12))
    record("share", np.float64(0.25))
    record("as_of", dt.date(2026, 3, 31))
    record("n_key", 13)
    assert json.loads(target.read_text()) == {"n_key": 13, "share": 0.25, "as_of": "2026-03-31"}
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        record("bad", object())


def test_find_personal_data_whole_words_escaped_and_japanese(tmp_path):
    (tmp_path / "a.html").write_text("<td>O&#x27;Brien</td> Annual report", encoding="utf-8")
    (tmp_path / "b.ipynb").write_text(json.dumps({"text": "担当: 山田太郎"}), encoding="utf-8")
    (tmp_path / "c.json").write_text('{"email": "TARO@example.com"}', encoding="utf-8")
    (tmp_path / "d.html").write_text(
        '<img src="data:image/png;base64,QW5uIFNtaXRo"><style>.Ann{}</style>', encoding="utf-8"
    )
    (tmp_path / "e.html").write_text("<td>O&#39;Connor</td><td>田中</td>", encoding="utf-8")
    (tmp_path / "f.html").write_text("<td>Mary&nbsp;Jane Ｋｉｍ</td>", encoding="utf-8")
    hits = find_personal_data(
        tmp_path,
        [
            "O'Brien",
            "Ann",
            "山田太郎",
            "taro@example.com",
            "",
            "Al",
            "O'Connor",
            "田中",
            "Mary Jane",
            "Kim",
        ],
    )
    assert hits == [
        ("a.html", "O*** (7 chars)"),
        ("b.ipynb", "山*** (4 chars)"),
        ("c.json", "t*** (16 chars)"),
        ("e.html", "O*** (8 chars)"),  # decimal entity, as the table renderer writes it
        ("e.html", "田*** (2 chars)"),  # short Japanese names are scanned too
        ("f.html", "M*** (9 chars)"),  # a no-break space between the names
        ("f.html", "K*** (3 chars)"),  # full-width letters (NFKC)
    ]


def test_list_and_show_runs(tmp_path):
    reports_dir = tmp_path / "reports"
    assert list(list_runs(reports_dir).columns)[:3] == ["run_id", "status", "label"]
    assert list_runs(reports_dir).empty
    good = fake_good_run(reports_dir)
    (reports_dir / "20210101T000000Z-bad").mkdir()
    (reports_dir / "20210101T000000Z-bad" / "manifest.json").write_text(
        json.dumps({"status": "failed", "notebooks": [{"status": "failed"}]})
    )
    runs = list_runs(reports_dir)
    assert list(runs["run_id"]) == ["20210101T000000Z-bad", good]
    assert list(runs["latest"]) == [False, True]
    assert runs["n_failed"].tolist() == [1, 0]
    assert show_run(reports_dir, "latest")["run_id"] == good
    with pytest.raises(ReportError, match="not a run id"):
        show_run(reports_dir, "../secrets")
    with pytest.raises(FileNotFoundError, match="newest: 20210101T000000Z-bad"):
        show_run(reports_dir, "20990101T000000Z")


def test_report_settings_defaults_and_rules():
    s = ReportSettings()
    assert [nb.name for nb in s.notebooks] == [
        "01_account_valuation",
        "02_segmentation",
        "03_ltv_forecasting",
        "04_scenario_planning",
        "05_kpi_scorecard",
    ]
    assert s.notebooks[0].path == "notebooks/01_account_valuation.ipynb"
    assert s.account_plan.name == "10_account_plan" and s.account_plan_top_n == 10
    assert s.show_personal_data is False
    with pytest.raises(ValueError, match="inside the project"):
        NotebookSpec(name="x", path="../x.ipynb", title_en="x", title_ja="x")
    with pytest.raises(ValueError, match="unique"):
        ReportSettings(notebooks=[s.notebooks[0], s.notebooks[0]])


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_commit_recorded_when_available(tmp_path):
    assert manifest._git_state(tmp_path) == (None, None)  # not a checkout
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "f.txt").write_text("x")
    subprocess.run([*git, "add", "f.txt"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=tmp_path, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert manifest._git_state(tmp_path) == (head, False)
    (tmp_path / "f.txt").write_text("changed")
    assert manifest._git_state(tmp_path) == (head, True)


def test_progress_tty_is_one_updating_line():
    stream = io.StringIO()
    p = execute._Progress("tty", stream, total=5)
    p.log("start 03_ltv_forecasting")  # routine events stay off a terminal
    p.update(1, [("03_ltv_forecasting", 12.34)])
    p.log("FAILED 02_x 1.0 s: boom", important=True)
    p.close()
    out = stream.getvalue()
    assert "\r[2/5] 03_ltv_forecasting … 12.3 s" in out
    assert "FAILED 02_x" in out and "\n" in out and "start" not in out


# --------------------------------------------------------------------------- notebook runs

TABLE_CELL = """\
import sys, warnings
import pandas as pd
from kam_analysis.plots import styled_table
from kam_analysis.report.record import record
warnings.warn("stray warning text")
print("stray log line", file=sys.stderr)
df = pd.DataFrame({"account": ["<script>alert(1)</script>", "Acme & Co"], "revenue": [1234567.0, 10.0]})
display(styled_table(df, {"revenue": "money"}))
record("top_n", top_n)
record("ratio", ratio)
"""
PLOT_CELL = """\
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(3, 2))
ax.plot([1, 2, 3])
plt.show()
"""


@pytest.mark.notebook
@pytest.mark.slow
def test_successful_run_publishes_html_manifest_and_latest(tmp_path):
    root = tmp_path / "proj"
    data = make_data(tmp_path)
    config = tmp_path / "kam.toml"
    config.write_text('[data]\nbase_currency = "JPY"\n', encoding="utf-8")
    extra = (
        PARAMS + "config_path: str | None = None  # kam.toml\ntop_n: int = 3\nratio: float = 0.5\n"
    )
    table = write_notebook(root, "01_table", ["#md ## Accounts", TABLE_CELL, PLOT_CELL], extra)
    text = write_notebook(root, "02_text", ["print('as of', as_of)"])
    plan = write_notebook(
        root, "10_plan", ["print('plan for', account_id)"], PARAMS + 'account_id: str = "A1"\n'
    )
    reports_dir = tmp_path / "reports"
    log = io.StringIO()
    result = run_reports(
        data_dir=data,
        as_of=AS_OF,
        notebooks=[table, text],
        reports_dir=reports_dir,
        label="nightly <script>",
        params={"top_n": "7", "ratio": "0.25"},
        jobs=2,
        account_plan=plan,
        account_ids=["A1", "ACME/01 <x>", "A1"],
        account_names={"A1": "Aoba <b>& Co"},
        config_path=config,
        validate=lambda folder, as_of: (True, "ok"),
        kernel_name=KERNEL,
        project_root=root,
        progress="auto",
        progress_stream=log,
    )
    assert (result.code, result.status) == (0, "ok"), result.message
    run_id = result.run_id
    assert re.fullmatch(r"\d{8}T\d{6}Z-nightly-script", run_id)
    run = reports_dir / run_id
    assert result.run_dir == run.resolve() and run.is_dir()
    assert os.readlink(reports_dir / "latest") == run_id
    assert not [p for p in reports_dir.iterdir() if p.name.startswith((".tmp", ".reserve"))]

    # manifest: inputs hashed (caches skipped), config, parameters typed per notebook, records
    m = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert (m["run_id"], m["status"], m["as_of"], m["label"]) == (
        run_id,
        "ok",
        "2026-03-31",
        "nightly <script>",
    )
    files = {f["path"]: f for f in m["input_files"]}
    assert sorted(files) == ["accounts.csv", "transactions.csv"]
    raw = (data / "accounts.csv").read_bytes()
    assert files["accounts.csv"]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert files["accounts.csv"]["size"] == len(raw)
    assert m["config"]["parsed"] == {"data": {"base_currency": "JPY"}}
    assert m["config"]["sha256"] == hashlib.sha256(config.read_bytes()).hexdigest()
    assert m["git_commit"] is None  # tmp project: not a git checkout
    assert {"python", "pandas", "numpy", "duckdb", "ibis-framework", "papermill"} <= set(
        m["versions"]
    )
    assert m["started"].endswith("Z") and m["duration_s"] > 0
    by_name = {nb["name"]: nb for nb in m["notebooks"]}
    plan_odd = f"10_plan--{safe_name('ACME/01 <x>')}"
    assert list(by_name) == ["01_table", "02_text", "10_plan--A1", plan_odd]
    p1 = by_name["01_table"]["parameters"]
    assert p1["top_n"] == 7 and p1["ratio"] == 0.25 and p1["config_path"] == str(config.resolve())
    assert p1["data_dir"] == str(data.resolve()) and p1["as_of"] == "2026-03-31"
    assert "top_n" not in by_name["02_text"]["parameters"]  # passed only where declared
    assert by_name[plan_odd]["parameters"]["account_id"] == "ACME/01 <x>"
    assert m["recorded"] == {"01_table": {"top_n": 7, "ratio": 0.25}}
    assert all(nb["status"] == "ok" and nb["duration_s"] > 0 for nb in m["notebooks"])
    for nb in m["notebooks"]:
        for name in nb["outputs"]:
            assert re.fullmatch(r"[A-Za-z0-9_.-]+", name) and (run / name).is_file()

    # HTML: escaped data, no code, no stderr, offline, embedded figure, header + navigation
    page = (run / "01_table.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    assert "Acme &amp; Co" in page and "¥1,234,567" in page
    assert "stray warning text" not in page and "stray log line" not in page
    assert "styled_table(df" not in page  # no input cells
    assert not re.search(r"<script[^>]+src=", page) and "cdnjs" not in page
    assert not re.search(r"<link[^>]+href=[\"']?(https?:)?//", page)
    assert 'src="data:image/png;base64,' in page
    assert "Report 01_table" in page and "2026-03-31" in page and run_id in page
    assert 'href="02_text.html"' in page and 'href="index.html"' in page
    assert "stray warning text" in (run / "01_table.ipynb").read_text()  # kept in the notebook
    index = (run / "index.html").read_text(encoding="utf-8")
    assert "nightly &lt;script&gt;" in index and "<script>" not in index
    assert "ACME/01 &lt;x&gt;" in index and f'href="{plan_odd}.html"' in index
    assert "Aoba &lt;b&gt;&amp; Co</a>" in index  # the plan is listed by company name
    assert by_name["10_plan--A1"]["account_name"] == "Aoba <b>& Co"
    assert by_name[plan_odd]["account_name"] is None
    plan_page = (run / "10_plan--A1.html").read_text(encoding="utf-8")
    assert "<h1>Report 10_plan: Aoba &lt;b&gt;&amp; Co</h1>" in plan_page
    runs_page = (reports_dir / "index.html").read_text(encoding="utf-8")
    assert f'href="{run_id}/index.html"' in runs_page and "nightly &lt;script&gt;" in runs_page

    # progress without a terminal: timestamped log lines only
    lines = log.getvalue().splitlines()
    assert lines and all(LOG_LINE.match(line) for line in lines), lines
    assert "\r" not in log.getvalue() and "\x1b" not in log.getvalue()
    assert any(line.endswith("start 01_table") for line in lines)
    assert any(" published " in line for line in lines)

    assert show_run(reports_dir, "latest")["run_id"] == run_id
    assert list_runs(reports_dir)["latest"].tolist() == [True]


@pytest.mark.notebook
@pytest.mark.slow
def test_failing_notebooks_fail_the_run_but_keep_the_evidence(tmp_path):
    root = tmp_path / "proj"
    reports_dir = tmp_path / "reports"
    good = fake_good_run(reports_dir)
    specs = [
        # started first: ten 3-s cells, each under the cell timeout, the notebook over the run timeout
        write_notebook(root, "01_hang", ["import time"] + ["time.sleep(3)"] * 10),
        write_notebook(root, "02_error", ["raise ValueError('boom')", "x = 1"]),
        write_notebook(root, "03_exit", ["import sys\nsys.exit(0)", "after = 1"]),
        write_notebook(root, "04_cell_timeout", ["import time\ntime.sleep(60)"]),
        write_notebook(root, "05_kernel_dies", ["import os\nos._exit(1)"]),
        write_notebook(
            root,
            "06_personal",
            [
                "from kam_analysis.report.record import record\nrecord('lead', 'Taro Yamada')",
                "print('Account lead: Taro Yamada, taro@example.com')",
            ],
        ),
    ]
    result = run_reports(
        data_dir=make_data(tmp_path),
        as_of=AS_OF,
        notebooks=specs,
        reports_dir=reports_dir,
        jobs=3,
        kernel_name=KERNEL,
        cell_timeout=5,
        run_timeout=14,
        personal_data_values=lambda: ["Taro Yamada", "taro@example.com", "山田太郎"],
        project_root=root,
        progress=False,
    )
    assert (result.code, result.status) == (1, "failed")
    assert os.readlink(reports_dir / "latest") == good  # latest stays on the good run
    run = reports_dir / result.run_id
    assert published_runs(reports_dir) == sorted([good, result.run_id])
    m = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert m["status"] == "failed"
    status = {nb["name"]: (nb["status"], nb["error"] or "") for nb in m["notebooks"]}
    assert status["01_hang"][0] == "timeout" and "run timeout of 14 s" in status["01_hang"][1]
    assert status["02_error"][0] == "failed" and "ValueError: boom" in status["02_error"][1]
    assert status["03_exit"][0] == "failed" and re.search(
        r"never ran|SystemExit", status["03_exit"][1]
    )
    assert (
        status["04_cell_timeout"][0] == "timeout"
        and "cell timeout of 5 s" in status["04_cell_timeout"][1]
    )
    assert status["05_kernel_dies"][0] == "failed"
    assert status["06_personal"] == ("failed", "personal data in the output (files removed)")
    assert m["personal_data_check"] == "failed" and "T*** (11 chars)" in m["error"]
    assert m["recorded"] == {}  # the recorded name was dropped too
    # the executed notebooks with the errors are kept for debugging
    failed_nb = nbformat.read(run / "02_error.ipynb", as_version=4)
    assert failed_nb.metadata.papermill.exception is True
    assert "boom" in (run / "02_error.html").read_text(encoding="utf-8")
    assert "failed to run completely" in (run / "02_error.html").read_text(encoding="utf-8")
    assert (run / "03_exit.ipynb").is_file() and (run / "logs" / "05_kernel_dies.log").is_file()
    # personal data: offending files removed, the name appears nowhere in the published run
    assert not (run / "06_personal.html").exists() and not (run / "06_personal.ipynb").exists()
    for path in run.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            assert "Taro Yamada" not in text and "taro@example.com" not in text, path
    runs_page = (reports_dir / "index.html").read_text(encoding="utf-8")
    assert result.run_id in runs_page and good in runs_page


PLAN_CELLS = [
    "import os\n"
    "from kam_analysis.report.record import record\n"
    "record('account', account_id)\n"
    "record('kernel_pid', os.getpid())\n"
    "record('saw_previous_plan', 'previous' in globals())",
    "previous = account_id",
    "if account_id == 'B2':\n    raise ValueError('plan B2 fails')",
    "import time\nif account_id == 'C3':\n    time.sleep(120)",
]


@pytest.mark.notebook
@pytest.mark.slow
def test_account_plans_share_a_kernel_but_never_a_namespace(tmp_path):
    root = tmp_path / "proj"
    plan = write_notebook(root, "10_plan", PLAN_CELLS, PARAMS + 'account_id: str = "A1"\n')
    ids = ["A1", "A2", "B2", "A3", "C3", "A4", "A5"]
    result = run_reports(
        data_dir=make_data(tmp_path),
        as_of=AS_OF,
        notebooks=[],
        reports_dir=tmp_path / "reports",
        jobs=1,
        account_plan=plan,
        account_ids=ids,
        kernel_name=KERNEL,
        cell_timeout=300,
        run_timeout=20,
        run_state=False,
        project_root=root,
        progress=False,
    )
    assert result.code == 1
    by_id = {nb["account_id"]: nb for nb in result.manifest["notebooks"]}
    status = {a: by_id[a]["status"] for a in ids}
    assert status == dict.fromkeys(ids, "ok") | {"B2": "failed", "C3": "timeout"}
    assert "ValueError: plan B2 fails" in by_id["B2"]["error"]
    assert "run timeout of 20 s" in by_id["C3"]["error"]
    rec = {a: by_id[a]["recorded"] for a in ids}
    assert all(rec[a]["account"] == a for a in ids)  # each plan wrote its own record
    assert not any(r["saw_previous_plan"] for r in rec.values())  # namespace emptied
    pid = {a: rec[a]["kernel_pid"] for a in ids}
    # one kernel for A1-B2; a fresh one after the failure (A3-C3) and after the timeout (A4-A5)
    assert pid["A1"] == pid["A2"] == pid["B2"] != pid["A3"] == pid["C3"] != pid["A4"] == pid["A5"]
    assert pid["A1"] != pid["A4"]
    for a in ("A2", "A5"):  # cells numbered from 1 as in a fresh kernel
        nb = nbformat.read(result.run_dir / f"10_plan--{a}.ipynb", as_version=4)
        counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
        assert counts == list(range(1, len(counts) + 1))


POOL_CELLS = [
    "import os, sys\n"
    "from kam_analysis.report.record import record\n"
    "record('kernel_pid', os.getpid())\n"
    "record('warm', 'kam_analysis.context' in sys.modules)\n"
    "record('state_env', os.environ.get('KAM_RUN_STATE', 'unset'))",
]


@pytest.mark.notebook
@pytest.mark.slow
def test_reports_and_plans_share_the_job_slots_kernels(tmp_path, monkeypatch):
    monkeypatch.setattr(execute, "NOTEBOOKS_PER_KERNEL", 3)
    monkeypatch.setenv("KAM_RUN_STATE", "/left/over/by/the/shell")
    root = tmp_path / "proj"
    report = write_notebook(root, "01_report", POOL_CELLS)
    plan = write_notebook(root, "10_plan", POOL_CELLS, PARAMS + 'account_id: str = "A1"\n')
    ids = [f"A{i}" for i in range(1, 8)]
    result = run_reports(
        data_dir=make_data(tmp_path),
        as_of=AS_OF,
        notebooks=[report],
        reports_dir=tmp_path / "reports",
        jobs=2,
        account_plan=plan,
        account_ids=ids,
        kernel_name=KERNEL,
        run_state=False,
        project_root=root,
        progress=False,
    )
    assert result.code == 0, result.manifest["notebooks"]
    rec = [nb["recorded"] for nb in result.manifest["notebooks"]]
    assert len(rec) == 8
    pids = [r["kernel_pid"] for r in rec]
    # two job slots, a fresh kernel after three notebooks: 8 notebooks in 3 or 4 kernels
    assert 3 <= len(set(pids)) <= 4
    assert max(pids.count(p) for p in pids) == 3
    assert all(r["warm"] for r in rec)  # the package was imported before each notebook
    assert {r["state_env"] for r in rec} == {"unset"}  # no state: the shell's value is gone
    logs = sorted(p.name for p in (result.run_dir / "logs").iterdir())
    assert "_worker-1.log" in logs and "_worker-2.log" in logs
    # a reused kernel says nothing a fresh one would not (IPython's history database
    # complained on stdout when cell numbers restarted within one history session)
    for executed in sorted(result.run_dir.glob("*.ipynb")):
        nb = nbformat.read(executed, as_version=4)
        streams = [o for c in nb.cells for o in c.get("outputs", []) if "name" in o]
        assert streams == [], (executed.name, streams)


RUNNER_SCRIPT = """\
import datetime as dt, faulthandler, signal, sys
faulthandler.register(signal.SIGUSR1)  # the test asks for a stack dump if the runner hangs
from pathlib import Path
from kam_analysis.pipeline import NotebookSpec, run_reports
data, reports_dir, root, kernel, label, name = sys.argv[1:7]
spec = NotebookSpec(name=name, path=f"notebooks/{name}.ipynb", title_en=name, title_ja=name)
result = run_reports(data_dir=Path(data), as_of=dt.date(2026, 3, 31), notebooks=[spec],
                     reports_dir=Path(reports_dir), project_root=Path(root), kernel_name=kernel,
                     label=label, progress="auto")
print("RESULT", result.run_id, result.status, flush=True)
sys.exit(result.code)
"""


def _runner(tmp_path: Path, reports_dir: Path, root: Path, data: Path, label: str, name: str):
    script = tmp_path / "runner.py"
    script.write_text(RUNNER_SCRIPT, encoding="utf-8")
    args = [str(data), str(reports_dir), str(root), KERNEL, label, name]
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _cmdline(process: psutil.Process) -> list[str]:
    """A child's command line; [] for one that just exited (the run-state builder exits early)."""
    try:
        return process.cmdline()
    except psutil.Error:
        return []


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_kernels_and_publishes_nothing(tmp_path, signum):
    root = tmp_path / "proj"
    write_notebook(root, "01_sleep", ["import time\ntime.sleep(120)"])
    reports_dir = tmp_path / "reports"
    good = fake_good_run(reports_dir)
    proc = _runner(tmp_path, reports_dir, root, make_data(tmp_path), "int", "01_sleep")
    descendants: list[psutil.Process] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the kernel runs the sleeping cell
        kids = psutil.Process(proc.pid).children(recursive=True)
        if any("ipykernel" in " ".join(_cmdline(k)) for k in kids):
            descendants = kids
            break
        time.sleep(0.2)
    assert descendants, "the kernel never started"
    assert any(p.name.startswith(".tmp-") for p in reports_dir.iterdir())
    time.sleep(1.0)
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # show where the runner hangs, then fail
        proc.send_signal(signal.SIGUSR1)
        time.sleep(2)
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the runner ignored the signal for 60 s; its stacks:\n{err[-6000:]}")
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert published_runs(reports_dir) == [good]
    assert os.readlink(reports_dir / "latest") == good
    assert not [p for p in reports_dir.iterdir() if p.name.startswith((".tmp", ".reserve"))]
    psutil.wait_procs(descendants, timeout=5)
    alive = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left running: {[p.cmdline() for p in alive]}"


@pytest.mark.notebook
@pytest.mark.slow
def test_concurrent_runs_get_separate_folders(tmp_path):
    root = tmp_path / "proj"
    write_notebook(root, "01_quick", ["x = 1"])
    reports_dir = tmp_path / "reports"
    reports_dir.mkdir()
    data = make_data(tmp_path)
    procs = [_runner(tmp_path, reports_dir, root, data, "same", "01_quick") for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    runs = published_runs(reports_dir)
    assert len(runs) == 2 and all(r.startswith(tuple("0123456789")) and "-same" in r for r in runs)
    for run in runs:
        m = json.loads((reports_dir / run / "manifest.json").read_text(encoding="utf-8"))
        assert (m["run_id"], m["status"]) == (run, "ok")
    assert os.readlink(reports_dir / "latest") == max(runs)
    page = (reports_dir / "index.html").read_text(encoding="utf-8")
    assert all(run in page for run in runs)


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.skipif(
    find_chromium() is None, reason="Chromium not installed (apt-get install -y chromium)"
)
def test_screenshots_render_each_page(tmp_path):
    root = tmp_path / "proj"
    spec = write_notebook(root, "01_shot", ["#md # 売上高の概要", "print('hello')"])
    result = run_reports(
        data_dir=make_data(tmp_path),
        as_of=AS_OF,
        notebooks=[spec],
        reports_dir=tmp_path / "reports",
        kernel_name=KERNEL,
        project_root=root,
        screenshots=True,
        lang="ja",
        progress=False,
    )
    assert result.code == 0, result.message
    png = result.run_dir / "01_shot.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert "01_shot.png" in result.manifest["notebooks"][0]["outputs"]
    assert "基準日" in (result.run_dir / "01_shot.html").read_text(encoding="utf-8")


@pytest.mark.notebook
@pytest.mark.slow
def test_kill_9_of_the_runner_takes_its_kernels_down_and_the_next_run_cleans_up(tmp_path):
    root = tmp_path / "proj"
    write_notebook(root, "01_sleep", ["import time\ntime.sleep(120)"])
    reports_dir = tmp_path / "reports"
    data = make_data(tmp_path)
    proc = _runner(tmp_path, reports_dir, root, data, "killed", "01_sleep")
    descendants: list[psutil.Process] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        kids = psutil.Process(proc.pid).children(recursive=True)
        if any("ipykernel" in " ".join(_cmdline(k)) for k in kids):
            descendants = kids
            break
        time.sleep(0.2)
    assert descendants, "the kernel never started"
    proc.kill()  # what a scheduler does after its timeout: no chance to clean up
    proc.communicate(timeout=30)
    psutil.wait_procs(descendants, timeout=15)
    alive = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left running: {[p.cmdline() for p in alive]}"
    left = sorted(p.name for p in reports_dir.iterdir() if p.name.startswith("."))
    assert any(n.startswith(".tmp-") for n in left) and any(n.startswith(".reserve-") for n in left)
    write_notebook(root, "01_sleep", ["x = 1"])
    again = _runner(tmp_path, reports_dir, root, data, "next", "01_sleep")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert "left by a run that was killed" in err
    assert not [p for p in reports_dir.iterdir() if p.name.startswith((".tmp", ".reserve"))]


def test_live_runs_work_folders_are_left_alone(tmp_path):
    reports_dir = tmp_path / "reports"
    reports_dir.mkdir()
    mine = reports_dir / f".tmp-20260101T000000Z-{os.getpid()}"
    mine.mkdir()
    dead_pid = 2**22 + 12345  # above the default pid_max: no such process
    gone = reports_dir / f".tmp-20260101T000001Z-{dead_pid}"
    gone.mkdir()
    (reports_dir / ".reserve-20260101T000001Z").write_text(f"{dead_pid}\n")
    (reports_dir / ".reserve-20260101T000000Z").write_text(f"{os.getpid()}\n")
    removed = remove_stale_work(reports_dir)
    assert removed == [gone.name, ".reserve-20260101T000001Z"]
    assert mine.is_dir() and (reports_dir / ".reserve-20260101T000000Z").is_file()


def test_an_unexpected_manifest_is_listed_as_unreadable(tmp_path):
    reports_dir = tmp_path / "reports"
    good = fake_good_run(reports_dir)
    odd = reports_dir / "20210101T000000Z-odd"
    odd.mkdir()
    (odd / "manifest.json").write_text(
        json.dumps({"status": "ok", "duration_s": "12.3", "notebooks": []}), encoding="utf-8"
    )
    broken = reports_dir / "20210102T000000Z-broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json", encoding="utf-8")
    runs = list_runs(reports_dir).set_index("run_id")
    assert runs.loc[odd.name, "status"] == "unreadable"
    assert runs.loc[broken.name, "status"] == "unreadable"
    assert runs.loc[good, "status"] == "ok"
    from kam_analysis.pipeline.run import _write_runs_index

    _write_runs_index(reports_dir, "en")  # the index page is still written
    page = (reports_dir / "index.html").read_text(encoding="utf-8")
    assert odd.name in page and "duration_s has an unexpected type" in page


def _pip_only_python(tmp_path: Path) -> Path:
    """A fresh virtualenv that sees the installed packages but has no Jupyter kernel.

    As after ``pip install kam-analysis`` into a new environment: the packages are
    importable (a ``.pth`` adds this environment's site-packages and the project)
    and their data files are there (nbconvert's templates), but no
    ``kam-analysis`` kernel is registered in its prefix.
    """
    import site
    import venv

    env = tmp_path / "pip-only"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    target = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = [p for p in site.getsitepackages() if Path(p).is_dir()]
    lines = [f"import site; site.addsitedir({p!r})" for p in ours]
    lines.append(str(Path(__file__).resolve().parents[1]))
    (Path(target) / "kam-host.pth").write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = env / "share" / "jupyter"
    data.mkdir(parents=True)
    (data / "nbconvert").symlink_to(Path(sys.prefix) / "share" / "jupyter" / "nbconvert")
    return python


@pytest.mark.notebook
@pytest.mark.slow
def test_kam_run_works_without_a_registered_kernel(tmp_path):
    python = _pip_only_python(tmp_path)
    root = tmp_path / "proj"
    write_notebook(root, "01_hello", ["import sys\nprint(sys.executable)"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env["HOME"] = str(tmp_path / "home")  # no kernels in ~/.local/share/jupyter either
    script = (
        "import datetime as dt, sys\n"
        "from pathlib import Path\n"
        "from kam_analysis.pipeline import NotebookSpec, run_reports\n"
        "spec = NotebookSpec(name='01_hello', path='notebooks/01_hello.ipynb',"
        " title_en='Hello', title_ja='Hello')\n"
        "kernel = sys.argv[4] or None\n"
        "r = run_reports(data_dir=Path(sys.argv[1]), as_of=dt.date(2026, 3, 31),"
        " notebooks=[spec], reports_dir=Path(sys.argv[2]), project_root=Path(sys.argv[3]),"
        " kernel_name=kernel, progress=False)\n"
        "print('RESULT', r.status, r.message)\n"
        "sys.exit(r.code)\n"
    )
    data = make_data(tmp_path)

    def run(kernel: str, reports: str) -> subprocess.CompletedProcess:
        args = [str(python), "-c", script, str(data), str(tmp_path / reports), str(root), kernel]
        return subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)

    named = run("kam-analysis", "named")  # the named kernel is not registered there...
    assert named.returncode != 0
    log = next((tmp_path / "named").glob("2*/logs/01_hello.log")).read_text()
    assert "No such kernel named kam-analysis" in log
    default = run("", "default")  # ...and the default run does not need it
    assert default.returncode == 0, default.stdout + default.stderr
    manifest = json.loads(next((tmp_path / "default").glob("2*/manifest.json")).read_text())
    assert manifest["settings"]["kernel_name"] == f"kam-run ({python})"
    executed = next((tmp_path / "default").glob("2*/01_hello.ipynb")).read_text()
    assert str(python) in executed  # the notebook ran in that environment's Python


def test_default_project_root_holds_the_report_notebooks():
    from kam_analysis.config import ReportSettings
    from kam_analysis.pipeline.run import PROJECT_ROOT, notebook_source, notebooks_dir

    assert notebooks_dir() == PROJECT_ROOT / "notebooks"  # the checkout's own folder
    settings = ReportSettings()
    for spec in [*settings.notebooks, settings.account_plan]:
        assert notebook_source(spec.path) == PROJECT_ROOT / spec.path, spec.path
        assert notebook_source(spec.path).is_file(), spec.path


def test_installed_wheel_reads_the_notebooks_it_ships(tmp_path, monkeypatch):
    """After ``pip install .`` the package folder sits in site-packages, no notebooks/ beside it."""
    from kam_analysis.pipeline import run

    site = tmp_path / "site-packages"
    (site / "kam_analysis" / "notebooks").mkdir(parents=True)
    (site / "notebooks").mkdir()  # some other distribution's top-level folder: not ours
    monkeypatch.setattr(run, "PACKAGE_DIR", site / "kam_analysis")
    monkeypatch.setattr(run, "PROJECT_ROOT", site)
    assert not run.source_checkout()
    assert run.notebooks_dir() == site / "kam_analysis" / "notebooks"
    shipped = site / "kam_analysis" / "notebooks" / "01_account_valuation.ipynb"
    assert run.notebook_source("notebooks/01_account_valuation.ipynb") == shipped
    assert run.notebook_source("mine/x.ipynb") == site / "mine" / "x.ipynb"  # as before
    assert run.notebook_source("notebooks/x.ipynb", tmp_path) == tmp_path / "notebooks" / "x.ipynb"


def test_find_personal_data_finds_what_a_search_for_every_value_finds(tmp_path):
    # the index only skips values that cannot occur: compare with a plain search for each value
    from kam_analysis.pipeline.privacy import _scan_text, _whole_word, normalise_for_scan

    rng = np.random.default_rng(11)
    syllables = ["an", "na", "ann", "o'", "ri", "ka", "山", "田", "太", "郎", "-", ".", "@x"]

    def word(k: int) -> str:
        return "".join(rng.choice(syllables, size=k))

    values = [word(int(rng.integers(1, 4))) for _ in range(400)]
    values += [f"{word(2)} {word(2)}".title() for _ in range(100)]
    for i in range(6):
        parts = [word(int(rng.integers(1, 5))) for _ in range(300)]
        text = " ".join(parts) + " " + "".join(parts[:40])  # words, and words run together
        (tmp_path / f"p{i}.html").write_text(f"<td>{text}</td>", encoding="utf-8")
    expected = []
    for path in sorted(tmp_path.iterdir()):
        text = _scan_text(path)
        seen = set()
        for value in values:
            form = normalise_for_scan(value.strip()).strip()
            if len(form) < 2 or value.strip() in seen:
                continue
            seen.add(value.strip())
            is_word = form.isascii() and form[:1].isalnum() and form[-1:].isalnum()
            if form in text and (not is_word or _whole_word(form).search(text)):
                expected.append((path.name, value.strip()))
    hits = find_personal_data(tmp_path, values)
    assert len(hits) == len(expected) > 100
    masked = [(f, f"{v[:1]}*** ({len(v)} chars)") for f, v in expected]
    assert hits == masked  # per file, in the order the values were given


@pytest.mark.notebook
def test_plans_chosen_once_the_state_is_built_run_after_the_reports(tmp_path):
    root = tmp_path / "proj"
    report = write_notebook(root, "01_report", POOL_CELLS)
    plan_params = PARAMS + 'account_id: str = "A1"\ntop: int = 3\n'
    plan = write_notebook(root, "10_plan", [*POOL_CELLS, "record('top', top)"], plan_params)
    asked: list[Path | None] = []

    def choose(state_folder):
        asked.append(state_folder)
        return ["A2", "A1", "A2"], {"A2": "Kita <b>Co</b>"}

    result = run_reports(
        data_dir=make_data(tmp_path),
        as_of=AS_OF,
        notebooks=[report],
        reports_dir=tmp_path / "reports",
        jobs=2,
        account_plan=plan,
        choose_accounts=choose,
        params={"top": "7"},
        kernel_name=KERNEL,
        run_state=False,
        project_root=root,
        progress=False,
    )
    assert result.code == 0, result.manifest["notebooks"]
    assert asked == [None]  # once, after the (here absent) run state
    entries = result.manifest["notebooks"]
    assert [e["name"] for e in entries] == ["01_report", "10_plan--A2", "10_plan--A1"]
    assert [e["account_id"] for e in entries] == [None, "A2", "A1"]
    assert entries[1]["title"].endswith(": Kita <b>Co</b>") and entries[2]["title"].endswith(": A1")
    assert entries[1]["parameters"]["account_id"] == "A2"
    assert [e["recorded"].get("top") for e in entries] == [None, 7, 7]  # -p reached the plans


def test_a_bad_plan_parameter_is_refused_before_the_plans_are_chosen(tmp_path):
    root = tmp_path / "proj"
    report = write_notebook(root, "01_report", ["x = 1"])
    plan = write_notebook(
        root, "10_plan", ["x = 1"], PARAMS + 'account_id: str = "A1"\ntop: int = 3\n'
    )
    chosen = []
    with pytest.raises(ParameterError, match="top"):
        run_reports(
            data_dir=make_data(tmp_path),
            as_of=AS_OF,
            notebooks=[report],
            reports_dir=tmp_path / "reports",
            account_plan=plan,
            choose_accounts=lambda folder: chosen.append(folder) or (["A1"], {}),
            params={"top": "many"},
            project_root=root,
            progress=False,
        )
    assert chosen == [] and not (tmp_path / "reports").exists()


@pytest.mark.notebook
def test_no_notebook_and_no_chosen_account_is_refused_and_leaves_nothing(tmp_path):
    root = tmp_path / "proj"
    plan = write_notebook(root, "10_plan", ["x = 1"], PARAMS + 'account_id: str = "A1"\n')
    reports = tmp_path / "reports"
    with pytest.raises(ReportError, match="no account was chosen"):
        run_reports(
            data_dir=make_data(tmp_path),
            as_of=AS_OF,
            notebooks=[],
            reports_dir=reports,
            account_plan=plan,
            choose_accounts=lambda folder: ([], {}),
            kernel_name=KERNEL,
            run_state=False,
            project_root=root,
            progress=False,
        )
    assert sorted(p.name for p in reports.iterdir()) == []

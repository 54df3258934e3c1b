"""The pip-only route: ``pip install`` the repository into a fresh virtualenv, then ``kam run``.

No ``make``, no editable install, no extras and no registered Jupyter kernel: a
new virtualenv (without system site-packages) made by the interpreter running
the tests gets ``pip install -c constraints.txt <checkout>``, and its own
``kam`` generates a small dataset and runs every report plus one account plan
in an environment that sees no other kernels and no other home folder. The
run must succeed end to end with the notebooks executing in that virtualenv.

Skipped only when the package index cannot be reached; any other failure fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIP_TIMEOUT = 900
KAM_TIMEOUT = 1800
REPORTS = ["01_account_valuation", "02_segmentation", "03_ltv_forecasting"]
# pip's messages when the index (PyPI or the configured mirror) cannot be reached
OFFLINE = re.compile(
    r"Could not find a version|No matching distribution|Failed to establish a new connection"
    r"|Temporary failure in name resolution|Network is unreachable|Max retries exceeded"
    r"|NewConnectionError|ConnectTimeout"
)
# left out of the copy pip builds from: caches, virtualenvs, build output, local data and runs
NOT_SHIPPED_ANYWHERE = {"__pycache__", ".venv", "build", "dist", ".ipynb_checkpoints"}
NOT_SHIPPED_AT_ROOT = {
    ".git",
    ".pytest_cache",
    ".ruff_cache",
    ".import_linter_cache",
    ".kam-cache",
    "data",
    "reports",
    "spark-warehouse",
    "benchmarks",
}

pytestmark = pytest.mark.slow


def _tail(proc: subprocess.CompletedProcess, n: int = 4000) -> str:
    return (
        f"exit code {proc.returncode}: {' '.join(map(str, proc.args))}\n"
        f"--- stdout (tail) ---\n{(proc.stdout or '')[-n:]}\n"
        f"--- stderr (tail) ---\n{(proc.stderr or '')[-n:]}"
    )


def _run(args: list, *, env: dict | None = None, cwd: Path, timeout: int):
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


def _source_copy(dest: Path) -> Path:
    """The checkout as a fresh clone would have it (plus uncommitted edits), outside the repo.

    pip builds a local directory in place: building a copy keeps ``build/`` and
    ``*.egg-info`` out of the working tree, and stale files there out of the wheel.
    """

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n in NOT_SHIPPED_ANYWHERE or n.endswith(".egg-info")}
        if Path(folder) == ROOT:
            skip |= NOT_SHIPPED_AT_ROOT & set(names)
        return skip

    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
    return dest


def _isolated_env(tmp: Path, venv: Path) -> dict[str, str]:
    """The fresh virtualenv first on PATH, an empty home and no other Jupyter kernels."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env = {k: v for k, v in env.items() if not k.startswith(("JUPYTER", "IPYTHON", "MPL"))}
    for name in ("home", "jupyter-path", "jupyter-data"):
        (tmp / name).mkdir()
    env.update(
        HOME=str(tmp / "home"),
        JUPYTER_PATH=str(tmp / "jupyter-path"),
        JUPYTER_DATA_DIR=str(tmp / "jupyter-data"),
        PATH=os.pathsep.join([str(venv / "bin"), env.get("PATH", os.defpath)]),
    )
    return env


def test_pip_install_then_kam_run_in_a_fresh_virtualenv(tmp_path):
    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", venv], cwd=tmp_path, timeout=300)
    assert made.returncode == 0, _tail(made)
    python, kam = venv / "bin" / "python", venv / "bin" / "kam"
    assert python.exists(), f"no interpreter in the new virtualenv: {sorted(venv.iterdir())}"

    source = _source_copy(tmp_path / "src")
    pip_env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    installed = _run(
        [python, "-m", "pip", "install", "--quiet", "-c", ROOT / "constraints.txt", source],
        env=pip_env,
        cwd=tmp_path,
        timeout=PIP_TIMEOUT,
    )
    if installed.returncode != 0 and OFFLINE.search(installed.stdout + installed.stderr):
        pytest.skip(f"package index unreachable, nothing installed:\n{_tail(installed, 1500)}")
    assert installed.returncode == 0, _tail(installed)
    assert kam.exists(), "pip install did not create the kam console script"

    env = _isolated_env(tmp_path, venv)
    work = tmp_path / "work"  # the current folder of the kam steps: nothing is written in the repo
    work.mkdir()
    data, reports = tmp_path / "data", tmp_path / "reports"

    synth = _run(
        [kam, "synth", "--out", data, "--accounts", 80, "--seed", 3],
        env=env,
        cwd=work,
        timeout=KAM_TIMEOUT,
    )
    assert synth.returncode == 0, _tail(synth)

    # nothing but the virtualenv's own python3 kernel is registered anywhere it can see
    kernels = _run(
        [venv / "bin" / "jupyter", "kernelspec", "list", "--json"], env=env, cwd=work, timeout=300
    )
    assert kernels.returncode == 0, _tail(kernels)
    visible = json.loads(kernels.stdout)["kernelspecs"]
    assert "kam-analysis" not in visible, visible

    run = _run(
        [
            kam,
            "run",
            "--data",
            data,
            "--reports-dir",
            reports,
            "--label",
            "pip",
            "--jobs",
            2,
            "--account-plans",
            1,
        ],
        env=env,
        cwd=work,
        timeout=KAM_TIMEOUT,
    )
    assert run.returncode == 0, _tail(run)

    runs = [
        p
        for p in reports.iterdir()
        if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
    ]
    assert len(runs) == 1, sorted(p.name for p in reports.iterdir())
    run_dir = runs[0]
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    entries = manifest["notebooks"]
    names = [nb["name"] for nb in entries]
    summary = json.dumps(
        {"status": manifest["status"], "error": manifest["error"], "notebooks": entries},
        indent=1,
        default=str,
    )[-4000:]
    assert manifest["status"] == "ok", summary
    assert all(nb["status"] == "ok" for nb in entries), summary
    assert names[:3] == REPORTS, names
    assert sum(n.startswith("10_account_plan--") for n in names) == 1, names

    # the notebooks ran in the fresh virtualenv's Python, through the run's own kernelspec
    assert manifest["settings"]["kernel_name"] == f"kam-run ({python})", manifest["settings"]
    assert manifest["versions"]["kam-analysis"], manifest["versions"]

    for nb in entries:
        pages = [o for o in nb["outputs"] if o.endswith(".html")]
        assert pages == [f"{nb['name']}.html"], nb["outputs"]
        page = run_dir / pages[0]
        assert page.stat().st_size > 20_000, f"{page.name}: {page.stat().st_size} bytes"
        text = page.read_text(encoding="utf-8")
        assert "<table" in text and "data:image/png;base64," in text, page.name
        assert "Traceback (most recent call last)" not in text, page.name
    assert (run_dir / "index.html").stat().st_size > 1_000
    assert not (ROOT / "reports" / manifest["run_id"]).exists()

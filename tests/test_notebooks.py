"""Every notebook runs top to bottom in a fresh kernel on a small generated dataset.

Notebooks are executed with papermill (parameters injected like ``kam run``
does), in the ``kam-analysis`` kernel that ``make`` registers. A notebook
passes when no cell raised, every code cell ran (a ``sys.exit(0)`` would
stop silently), and no warning or log line leaked into the outputs a
stakeholder would read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "kam-analysis"
# per-notebook extra parameters for the smoke run
EXTRA_PARAMETERS: dict[str, dict] = {}

pytestmark = [pytest.mark.notebook, pytest.mark.slow]


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    from kam_analysis.synthetic import generate_dataset

    out = tmp_path_factory.mktemp("nb") / "demo"
    generate_dataset(out, n_accounts=400, seed=11)
    return out


def _executed_problems(nb: dict) -> list[str]:
    problems = []
    for i, cell in enumerate(nb["cells"]):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] != "code" or not source.strip():
            continue
        if cell.get("execution_count") is None:
            problems.append(f"cell {i} did not run")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"cell {i} raised {out.get('ename')}: {out.get('evalue')}")
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                problems.append(f"cell {i} wrote to stderr: {''.join(out.get('text', ''))[:300]}")
    return problems


def run_notebook(name: str, data_dir: Path, out_dir: Path, **parameters) -> dict:
    import papermill as pm

    output = out_dir / name
    pm.execute_notebook(
        str(ROOT / "notebooks" / name),
        str(output),
        parameters={"data_dir": str(data_dir), **parameters},
        kernel_name=KERNEL,
        cwd=str(ROOT / "notebooks"),
        progress_bar=False,
        execution_timeout=600,
    )
    return json.loads(output.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_clean(name, small_dataset, tmp_path):
    nb = run_notebook(name, small_dataset, tmp_path, **EXTRA_PARAMETERS.get(name, {}))
    assert _executed_problems(nb) == []

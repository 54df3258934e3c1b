"""Packaging: pyproject.toml and environment.yml declare the same dependencies."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI = {"python-duckdb": "duckdb"}


def _split(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+(?:\[[^\]]+\])?)\s*(.*)$", requirement)
    assert match, requirement
    name, spec = match.groups()
    name = re.sub(r"\[.*\]", "", name).lower().replace("_", "-")
    return CONDA_TO_PYPI.get(name, name), spec.replace(" ", "")


def _pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return dict(_split(r) for r in reqs)


def _environment_requirements() -> dict[str, str]:
    out = {}
    text = (ROOT / "environment.yml").read_text()
    section = text.split("dependencies:", 1)[1]
    for line in section.splitlines():
        item = line.split("#", 1)[0].strip()
        if not item.startswith("- ") or item.endswith(":"):
            continue
        value = item[2:].strip()
        if value in ("pip", "-e .") or value.startswith("python>="):
            continue
        name, spec = _split(value)
        out[name] = spec
    return out


def test_environment_yml_matches_pyproject():
    assert _environment_requirements() == _pyproject_requirements()


def test_split_handles_extras_and_conda_names():
    assert _split("ibis-framework[duckdb]>=10,<13") == ("ibis-framework", ">=10,<13")
    assert _split("python-duckdb>=1.1,<3") == ("duckdb", ">=1.1,<3")


def test_known_breaking_pins_present():
    reqs = _pyproject_requirements()
    assert reqs["sqlglot"] == "<30.18"  # Ibis 12 fails with sqlglot >= 30.18
    assert reqs["nbconvert"].startswith(">=7.17.1")  # path-traversal fixes


def test_console_script_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["kam"] == "kam_analysis.cli:main"


def test_committed_notebooks_have_no_outputs():
    import json

    from kam_analysis.pipeline.notebook_tools import has_outputs

    dirty = [
        p.name
        for p in (ROOT / "notebooks").glob("*.ipynb")
        if has_outputs(json.loads(p.read_text(encoding="utf-8")))
    ]
    assert dirty == []


def test_notebook_markdown_cells_are_analyst_only():
    """Report text is translated (locale files): a static Markdown cell would stay English."""
    import json

    untagged = [
        f"{p.name} cell {i}"
        for p in sorted((ROOT / "notebooks").glob("*.ipynb"))
        for i, c in enumerate(json.loads(p.read_text(encoding="utf-8"))["cells"])
        if c["cell_type"] == "markdown" and "remove-cell" not in c["metadata"].get("tags", [])
    ]
    assert untagged == []


def test_papermill_sees_every_notebook_parameter():
    """Papermill's own parser (used by papermill CLI and Airflow's operator) must agree."""
    import papermill as pm

    from kam_analysis.pipeline import notebook_parameters

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        ours = set(notebook_parameters(path))
        assert set(pm.inspect_notebook(str(path))) == ours, path.name


def _import_graph_tool():
    spec = importlib.util.spec_from_file_location(
        "import_graph", Path(__file__).resolve().parents[1] / "tools" / "import_graph.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_import_graph_finds_cycles_through_other_parts():
    tool = _import_graph_tool()
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert tool.import_cycles(edges) == [["a", "b", "c"]]
    assert tool.import_cycles({"a": {"b"}, "b": set()}) == []


def test_package_parts_import_without_cycles_or_private_names(capsys):
    tool = _import_graph_tool()
    root = Path(__file__).resolve().parents[1] / "kam_analysis"
    assert tool.main([str(root)]) == 0
    out = capsys.readouterr().out
    assert "import cycles between parts: none" in out
    assert "[private:" not in out
    inside = [line for line in out.splitlines() if re.search(r"\[\d+ inside functions\]", line)]
    assert all(line.strip().startswith("cli ") for line in inside), inside


def _setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_wheel_lists_every_subpackage_and_the_notebooks():
    """``packages`` is listed (find cannot map notebooks/): a new subpackage must be added."""
    import setuptools

    listed = _setuptools_config()["packages"]
    found = setuptools.find_packages(where=str(ROOT), include=["kam_analysis*"])
    assert len(listed) == len(set(listed)), listed
    assert sorted(listed) == sorted([*found, "kam_analysis.notebooks"])


def test_wheel_ships_every_default_notebook_from_the_root_folder():
    """The root notebooks/ is the one source; a wheel carries it as kam_analysis/notebooks/."""
    from fnmatch import fnmatch

    from kam_analysis.config import ReportSettings

    config = _setuptools_config()
    assert config["package-dir"] == {"kam_analysis.notebooks": "notebooks"}
    patterns = config["package-data"]["kam_analysis.notebooks"]
    settings = ReportSettings()
    for spec in [*settings.notebooks, settings.account_plan]:
        folder, name = Path(spec.path).parent, Path(spec.path).name
        assert folder == Path("notebooks"), spec.path
        assert (ROOT / spec.path).is_file(), spec.path
        assert any(fnmatch(name, p) for p in patterns), (name, patterns)
    assert {"*.toml", "locale/*.json"} <= set(config["package-data"]["kam_analysis"])

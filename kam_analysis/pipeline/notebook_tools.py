"""Notebook hygiene: notebooks are committed without outputs.

``python -m kam_analysis.pipeline.notebook_tools strip FILE...`` removes outputs,
execution counts and per-run metadata in place (the pre-commit hook);
``check FILE...`` exits 1 listing notebooks that still carry outputs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

_RUN_METADATA = ("papermill", "execution", "widgets")


def strip_outputs(notebook: dict) -> dict:
    """Return a copy of a notebook (as JSON dict) without outputs or run metadata."""
    nb = json.loads(json.dumps(notebook))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        for key in _RUN_METADATA:
            cell.get("metadata", {}).pop(key, None)
    for key in _RUN_METADATA:
        nb.get("metadata", {}).pop(key, None)
    return nb


def has_outputs(notebook: dict) -> bool:
    """Whether any code cell carries outputs or an execution count."""
    return any(
        c.get("outputs") or c.get("execution_count")
        for c in notebook.get("cells", [])
        if c.get("cell_type") == "code"
    )


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: ``strip`` or ``check`` the given notebooks."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("strip", "check"):
        print(
            "usage: python -m kam_analysis.pipeline.notebook_tools strip|check FILE...",
            file=sys.stderr,
        )
        return 2
    action, files = args[0], [Path(a) for a in args[1:]]
    dirty = []
    for path in files:
        nb = _load(path)
        if action == "strip":
            clean = strip_outputs(nb)
            if clean != nb:
                path.write_text(
                    json.dumps(clean, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
                )
        elif has_outputs(nb):
            dirty.append(str(path))
    if dirty:
        print("notebooks with outputs: " + ", ".join(dirty), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Fixtures shared by the test modules.

* ``demo_dir(n_accounts, seed)`` -- a generated demo dataset, made once per
  session for each (size, seed) and shared read-only by every test asking for it.
* ``demo_context(n_accounts, seed)`` -- an analysis context on it (a fresh one
  per call, so cached results never leak between tests).
* Every test runs with the matplotlib settings restored afterwards, all figures
  closed, and ``plt.show()`` forbidden: chart helpers return axes, never show.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pytest

from kam_analysis.context import AnalysisContext, load_context
from kam_analysis.synthetic import generate_dataset

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Factory: the folder of a generated demo dataset with ``n_accounts`` and ``seed``."""
    made: dict[tuple[int, int], Path] = {}

    def make(n_accounts: int = 150, seed: int = 5) -> Path:
        key = (int(n_accounts), int(seed))
        if key not in made:
            out = tmp_path_factory.mktemp(f"demo-{key[0]}-{key[1]}") / "ds"
            generate_dataset(out, n_accounts=key[0], seed=key[1])
            made[key] = out
        return made[key]

    return make


@pytest.fixture(scope="session")
def demo_context(demo_dir: Callable[..., Path]) -> Callable[..., AnalysisContext]:
    """Factory: a new analysis context on ``demo_dir(n_accounts, seed)``."""

    def make(n_accounts: int = 150, seed: int = 5, **kwargs) -> AnalysisContext:
        return load_context(demo_dir(n_accounts, seed), **kwargs)

    return make


@pytest.fixture(autouse=True)
def _figure_hygiene(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def no_show(*args, **kwargs):
        raise AssertionError("chart helpers must not call plt.show()")

    monkeypatch.setattr(plt, "show", no_show)
    with matplotlib.rc_context():  # a report style set by a test does not leak
        yield
    plt.close("all")

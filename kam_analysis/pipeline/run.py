"""The run: build, execute, export, check, publish; list and show published runs."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from kam_analysis.config import NotebookSpec
from kam_analysis.core.i18n import LANGUAGES, t
from kam_analysis.pipeline.browser import browser_check, find_chromium
from kam_analysis.pipeline.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    ParameterError,
    ReportError,
)
from kam_analysis.pipeline.execute import (
    RUN_KERNEL,
    _execute_all,
    _ignore_interrupts,
    _Progress,
    _progress_mode,
    _sigterm_as_interrupt,
    _Task,
)
from kam_analysis.pipeline.manifest import _config_record, _git_state, _utc, _versions
from kam_analysis.pipeline.names import _RUN_ID, _reserve_run_id, remove_stale_work, safe_name
from kam_analysis.pipeline.parameters import (
    RUNNER_PARAMETERS,
    ParameterInfo,
    _check_name,
    coerce_parameter,
    notebook_parameters,
)
from kam_analysis.pipeline.privacy import find_personal_data
from kam_analysis.pipeline.state import start_run_state
from kam_analysis.report.html import (
    export_notebook_html,
    report_header,
    run_index_page,
    runs_index_page,
    write_text_atomic,
)
from kam_analysis.state import STATE_ENV, input_files

if TYPE_CHECKING:
    import pandas as pd


PACKAGE_DIR = Path(__file__).resolve().parents[1]
"""The installed ``kam_analysis/`` folder."""
PROJECT_ROOT = PACKAGE_DIR.parent
"""The folder holding ``kam_analysis/``: the repository in a source checkout or an
editable install (with ``notebooks/`` and ``pyproject.toml``), ``site-packages``
after a plain ``pip install``. ``NotebookSpec.path`` values are relative to it,
except those under ``notebooks/`` (see :func:`notebook_source`)."""


def source_checkout() -> bool:
    """Whether the package runs from the repository (a checkout or an editable install)."""
    return (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "notebooks").is_dir()


def notebooks_dir() -> Path:
    """The folder of the report notebooks that come with the package.

    The repository's ``notebooks/`` in a source checkout or an editable install
    (the one source, the folder analysts open in JupyterLab); else the copy a
    wheel ships as package data, ``kam_analysis/notebooks/``.
    """
    return PROJECT_ROOT / "notebooks" if source_checkout() else PACKAGE_DIR / "notebooks"


def notebook_source(path: str, project_root: Path | None = None) -> Path:
    """The file a ``NotebookSpec.path`` names.

    With ``project_root``: ``project_root / path``. Without it, a path under
    ``notebooks/`` (the defaults, ``notebooks/<name>.ipynb``) is in
    :func:`notebooks_dir`, any other path is relative to :data:`PROJECT_ROOT`;
    in a source checkout both read ``PROJECT_ROOT / path``.
    """
    if project_root is not None:
        return project_root / path
    parts = Path(path).parts
    if len(parts) > 1 and parts[0] == "notebooks":
        return notebooks_dir().joinpath(*parts[1:])
    return PROJECT_ROOT / path


@dataclass
class RunResult:
    """What :func:`run_reports` returns."""

    run_id: str | None
    """None when nothing was published (invalid data, interrupted)."""
    status: Literal["ok", "failed", "invalid", "interrupted"]
    code: int
    """Process exit code: 0 ok, 1 failed, 2 invalid data, 130 interrupted."""
    run_dir: Path | None
    message: str = ""
    manifest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True for a successful run."""
        return self.code == EXIT_OK


@contextlib.contextmanager
def _reports_lock(reports_dir: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with (reports_dir / ".lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _latest_target(reports_dir: Path) -> str | None:
    link = reports_dir / "latest"
    if link.is_symlink():
        return os.readlink(link).rstrip("/").split("/")[-1]
    return None


def _point_latest(reports_dir: Path, run_id: str) -> str | None:
    """Point ``latest`` at ``run_id`` unless a later run is already there; a problem text."""
    link = reports_dir / "latest"
    if link.exists() and not link.is_symlink():
        return f"{link} is not a symlink; left unchanged"
    current = _latest_target(reports_dir)
    if current is not None and current > run_id and (reports_dir / current).is_dir():
        return None  # a newer run (started later) already published
    tmp = reports_dir / f".latest-{os.getpid()}-{secrets.token_hex(3)}"
    os.symlink(run_id, tmp)
    os.replace(tmp, link)
    return None


_MANIFEST_TYPES: dict[str, type | tuple[type, ...]] = {
    "status": str,
    "label": (str, type(None)),
    "as_of": (str, type(None)),
    "lang": (str, type(None)),
    "dataset": (str, type(None)),
    "started": (str, type(None)),
    "duration_s": (int, float, type(None)),
    "notebooks": list,
    "recorded": (dict, type(None)),
    "error": (str, type(None)),
}


def _manifest_problem(manifest: Any) -> str | None:
    """Why a manifest cannot be listed (a field of an unexpected type), or None."""
    if not isinstance(manifest, dict):
        return "manifest.json is not an object"
    for key, kind in _MANIFEST_TYPES.items():
        if key not in manifest:
            continue
        value = manifest[key]
        if not isinstance(value, kind) or (key == "duration_s" and isinstance(value, bool)):
            return f"manifest.json: {key} has an unexpected type ({type(value).__name__})"
    if not all(isinstance(nb, dict) for nb in manifest.get("notebooks", [])):
        return "manifest.json: notebooks holds something other than entries"
    return None


def _read_manifests(reports_dir: Path) -> list[dict[str, Any]]:
    out = []
    if not reports_dir.is_dir():
        return out
    for entry in reports_dir.iterdir():
        if entry.name.startswith(".") or entry.is_symlink() or not entry.is_dir():
            continue
        path = entry / "manifest.json"
        if not path.is_file():
            continue
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            problem = _manifest_problem(manifest)
        except (OSError, ValueError) as err:
            manifest, problem = {}, f"manifest.json cannot be read: {type(err).__name__}"
        if problem:
            manifest = {"status": "unreadable", "notebooks": [], "error": problem}
        manifest["run_id"] = entry.name
        out.append(manifest)
    out.sort(key=lambda m: m["run_id"], reverse=True)
    return out


def _write_runs_index(reports_dir: Path, lang: str) -> None:

    page = runs_index_page(
        _read_manifests(reports_dir), latest=_latest_target(reports_dir), lang=lang
    )
    write_text_atomic(reports_dir / "index.html", page)


def list_runs(reports_dir: Path) -> pd.DataFrame:
    """Every published run, newest first (``kam reports list``).

    Parameters
    ----------
    reports_dir : Path

    Returns
    -------
    DataFrame
        Columns ``run_id``, ``status``, ``label``, ``as_of``, ``dataset``,
        ``started`` (UTC ISO), ``duration_s``, ``n_notebooks``, ``n_failed``,
        ``latest`` (bool). Empty (with these columns) when there are no runs.
    """
    import pandas as pd

    reports_dir = Path(reports_dir)
    latest = _latest_target(reports_dir)
    rows = []
    for m in _read_manifests(reports_dir):
        notebooks = m.get("notebooks", [])
        rows.append(
            {
                "run_id": m["run_id"],
                "status": m.get("status"),
                "label": m.get("label"),
                "as_of": m.get("as_of"),
                "dataset": m.get("dataset"),
                "started": m.get("started"),
                "duration_s": m.get("duration_s"),
                "n_notebooks": len(notebooks),
                "n_failed": sum(1 for nb in notebooks if nb.get("status") != "ok"),
                "latest": m["run_id"] == latest,
            }
        )
    columns = [
        "run_id",
        "status",
        "label",
        "as_of",
        "dataset",
        "started",
        "duration_s",
        "n_notebooks",
        "n_failed",
        "latest",
    ]
    return pd.DataFrame(rows, columns=columns)


def show_run(reports_dir: Path, run_id: str) -> dict[str, Any]:
    """The manifest of one run (``kam reports show``); ``"latest"`` is accepted.

    Parameters
    ----------
    reports_dir : Path
    run_id : str
        A run folder name or ``"latest"``.

    Returns
    -------
    dict
        The manifest, with ``run_dir`` (absolute path) added.

    Raises
    ------
    ReportError
        For a name that is not a run id (path separators, ``..``).
    FileNotFoundError
        When there is no such run; the message lists the newest runs.
    """
    reports_dir = Path(reports_dir)
    if run_id == "latest":
        target = _latest_target(reports_dir)
        if target is None:
            raise FileNotFoundError(f"{reports_dir}: no successful run yet (no 'latest' link)")
        run_id = target
    if not _RUN_ID.match(run_id):
        raise ReportError(f"{run_id!r} is not a run id (expected e.g. 20261129T021500Z-nightly)")
    path = reports_dir / run_id / "manifest.json"
    if not path.is_file():
        newest = [m["run_id"] for m in _read_manifests(reports_dir)[:5]]
        raise FileNotFoundError(
            f"no run {run_id!r} in {reports_dir}; newest: {', '.join(newest) or 'none'}"
        )
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["run_dir"] = str(path.parent.resolve())
    return manifest


def _build_tasks(
    *,
    project_root: Path | None,
    notebooks: Sequence[NotebookSpec],
    account_plan: NotebookSpec | None,
    account_ids: Sequence[str],
    lang: str,
    account_names: Mapping[str, str] | None = None,
    plans_later: bool = False,
) -> list[_Task]:
    tasks = [
        _Task(
            key=spec.name,
            spec=spec,
            title=spec.title(lang),
            source=notebook_source(spec.path, project_root),
            account_id=None,
        )
        for spec in notebooks
    ]
    ids = list(dict.fromkeys(str(a) for a in account_ids))
    if ids:
        if account_plan is None:
            raise ReportError("account ids were given but no account plan notebook is configured")
        names = account_names or {}
        tasks.extend(
            _plan_task(account_plan, account, names.get(account), lang, project_root)
            for account in ids
        )
    if not tasks and not plans_later:
        raise ReportError("nothing to run: no notebooks and no account plans selected")
    _check_tasks(tasks)
    return tasks


def _plan_task(
    account_plan: NotebookSpec,
    account: str,
    name: str | None,
    lang: str,
    project_root: Path | None,
) -> _Task:
    """The account plan of one account."""
    return _Task(
        key=f"{account_plan.name}--{safe_name(account)}",
        spec=account_plan,
        title=f"{account_plan.title(lang)}: {name or account}",
        source=notebook_source(account_plan.path, project_root),
        account_id=account,
        account_name=name or None,
    )


def _data_summary(
    summary: Mapping[str, Any] | Callable[[], Mapping[str, Any] | None] | None,
) -> dict[str, Any] | None:
    value = summary() if callable(summary) else summary
    return dict(value) if value else None


class _InvalidData(Exception):
    """The data failed validation: the run stops, nothing is published."""


def _validate(
    validate: Callable[[Path, dt.date], tuple[bool, str]] | None, data_dir: Path, as_of: dt.date
) -> None:
    """Raise :class:`_InvalidData` with the validation's text when the data are invalid."""
    if validate is None:
        return
    ok, text = validate(data_dir, as_of)
    if not ok:
        raise _InvalidData(text)


def _start_prefetch(
    fn: Callable[[Path, Sequence[str]], object], folder: Path, ids: list[str], prog: _Progress
) -> threading.Thread:
    """Run ``fn(folder, ids)`` in a thread; an error is logged, never raised."""

    def work() -> None:
        try:
            fn(folder, ids)
        except Exception as err:  # the plans then query the engine themselves
            prog.log(f"account rows not stored ({type(err).__name__}: {err})")
        else:
            prog.log(f"rows of {len(ids)} account(s) stored for their plans")

    thread = threading.Thread(target=work, name="kam-prefetch", daemon=True)
    thread.start()
    return thread


def _chosen_plans(
    template: _Task,
    chosen: tuple[Sequence[str], Mapping[str, str]],
    *,
    lang: str,
    project_root: Path | None,
) -> list[_Task]:
    """The plans of the chosen accounts, with the stand-in plan's checked parameters."""
    ids, names = chosen
    plans = []
    for account in dict.fromkeys(str(a) for a in ids):
        task = _plan_task(template.spec, account, names.get(account), lang, project_root)
        task.parameters = {**template.parameters, "account_id": account}
        plans.append(task)
    return plans


def _check_tasks(tasks: list[_Task]) -> None:
    """Raise when two tasks would write the same report or a notebook is missing."""
    keys = [task.key for task in tasks]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ReportError(f"two reports would be written to the same file: {dupes}")
    missing = sorted({str(task.source) for task in tasks if not task.source.is_file()})
    if missing:
        raise ReportError(f"notebook(s) not found: {', '.join(missing)}")


def _resolve_parameters(
    tasks: list[_Task], *, common: dict[str, Any], params: Mapping[str, str]
) -> None:
    """Fill ``task.parameters``; raise before anything runs when a parameter is wrong."""
    for name in params:
        _check_name(name)
        if name in RUNNER_PARAMETERS:
            raise ParameterError(
                f"parameter {name!r} is set by the runner; use its own option, not -p"
            )
    declared: dict[Path, dict[str, ParameterInfo]] = {}
    for task in tasks:
        if task.source not in declared:
            declared[task.source] = notebook_parameters(task.source)
    used: set[str] = set()
    for task in tasks:
        decl = declared[task.source]
        if task.account_id is not None and "account_id" not in decl:
            raise ReportError(
                f"{task.spec.path}: the account plan notebook must declare `account_id: str`"
            )
        values: dict[str, Any] = {}
        for name, value in common.items():
            if name == "account_id":
                if task.account_id is None or name not in decl:
                    continue
                value = task.account_id
            if name in decl:
                values[name] = coerce_parameter(value, decl[name], notebook=task.spec.name)
        for name, value in task.spec.parameters.items():
            _check_name(name)
            if name not in decl:
                raise ParameterError(
                    f"{task.spec.name}: configured parameter {name!r} is not declared in "
                    f"{task.spec.path}; declared: {', '.join(decl) or 'none'}"
                )
            if name in RUNNER_PARAMETERS:
                raise ParameterError(f"{task.spec.name}: {name!r} is set by the runner")
            values[name] = coerce_parameter(value, decl[name], notebook=task.spec.name)
        for name, value in params.items():
            if name in decl:
                values[name] = coerce_parameter(value, decl[name], notebook=task.spec.name)
                used.add(name)
        task.parameters = values
    unknown = sorted(set(params) - used)
    if unknown:
        known = sorted({n for d in declared.values() for n in d} - set(RUNNER_PARAMETERS))
        raise ParameterError(
            f"parameter(s) {unknown} not declared by any selected notebook "
            f"(misspelled?); declared: {', '.join(known) or 'none'}"
        )


def _collect_records(tasks: list[_Task], build: Path) -> None:
    for task in tasks:
        path = build / ".work" / f"{task.key}.record.json"
        if path.is_file():
            try:
                task.recorded = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                task.recorded = {"_error": "unreadable record file"}


class _Exporter:
    """Exports each notebook to HTML as soon as it has finished, in one thread beside the run.

    The pages of the first notebooks are written while the last ones still
    run, instead of all of them after the run (about 0.25 s of CPU a page).
    :meth:`close` waits for the pages and raises what an export raised.
    """

    def __init__(
        self,
        tasks: list[_Task],
        build: Path,
        *,
        as_of: str,
        dataset: str,
        run_id: str,
        lang: str,
    ) -> None:
        self.tasks, self.build, self.lang = tasks, build, lang
        self.page = {"as_of": as_of, "dataset": dataset, "run_id": run_id}
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kam-export")
        self.pending: list[Future] = []

    def submit(self, task: _Task) -> None:
        """Export ``task``'s notebook (in the thread)."""
        self.pending.append(self.pool.submit(self._export, task))

    def close(self, progress: _Progress | None = None) -> None:
        """Wait for every page (``progress``: log how many); shut the thread down."""
        try:
            for future in self.pending:
                future.result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
        if progress is not None:
            n = sum(1 for task in self.tasks if task.outputs)
            progress.log(f"exported {n} HTML page(s)")

    def _export(self, task: _Task) -> None:
        import nbformat

        nb_path = self.build / f"{task.key}.ipynb"
        if not nb_path.is_file():
            return
        nav = [("index.html", t("header.all_reports", self.lang))]
        nav += [(f"{x.key}.html", x.title) for x in self.tasks if x.account_id is None]
        nb = nbformat.read(nb_path, as_version=4)
        header = report_header(
            title=task.title,
            **self.page,
            nav=nav,
            current=f"{task.key}.html",
            failed=task.status != "ok",
            lang=self.lang,
        )
        page = export_notebook_html(
            nb, title=task.title, header=header, resources_path=task.source.parent
        )
        write_text_atomic(self.build / f"{task.key}.html", page)
        task.outputs.extend([nb_path.name, f"{task.key}.html"])


def _check_personal_data(
    tasks: list[_Task],
    build: Path,
    *,
    show_personal_data: bool,
    values: Callable[[], Iterable[str]] | Iterable[str] | None,
    progress: _Progress,
) -> tuple[str, str | None]:
    """Scan the run folder; remove offending files. Returns (check status, run error)."""
    if show_personal_data:
        return "disabled (show_personal_data)", None
    if values is None:
        return "skipped (no values given)", None
    hits = find_personal_data(build, list(values() if callable(values) else values))
    if not hits:
        return "passed", None
    files = sorted({f for f, _ in hits})
    error = (
        f"personal data found in {len(files)} file(s): "
        + "; ".join(f"{f} ({v})" for f, v in hits[:10])
        + ". The files were removed; pseudonymise in the notebook or run "
        "with show_personal_data for internal use."
    )
    progress.log(f"PERSONAL DATA FOUND: {error}", important=True)
    for rel in files:
        if not rel.startswith(".work/"):  # work files are deleted before publishing anyway
            (build / rel).unlink(missing_ok=True)
    for task in tasks:
        if f".work/{task.key}.record.json" in files:
            task.recorded = {}
            task.status, task.error = "failed", "personal data in recorded values (dropped)"
        if any(o in files for o in task.outputs):
            task.outputs = [o for o in task.outputs if o not in files]
            task.status, task.error = "failed", "personal data in the output (files removed)"
    return "failed", error


def _take_screenshots(
    tasks: list[_Task], build: Path, chromium: str, *, progress: _Progress
) -> None:
    for task in tasks:
        page = build / f"{task.key}.html"
        if page.is_file():
            seen = browser_check(page, chromium=chromium, screenshot=build / f"{task.key}.png")
            task.screenshot_error = seen.error
            task.browser_console = seen.console
            if seen.error is None:
                task.outputs.append(f"{task.key}.png")
            task.browser_requests = seen.requests
            if seen.console:
                progress.log(
                    f"browser console on {task.key}.html: {seen.console[0][:200]}", important=True
                )
            if seen.requests:  # refused by the proxy; a report page should make none
                progress.log(
                    f"{task.key}.html tried to reach the network: {seen.requests[0][:200]}",
                    important=True,
                )
    progress.log("screenshots done")


def _notebook_entry(task: _Task, project_root: Path) -> dict[str, Any]:
    try:
        source = task.source.relative_to(project_root).as_posix()
    except ValueError:
        source = str(task.source)
    return {
        "name": task.key,
        "notebook": task.spec.name,
        "title": task.title,
        "source": source,
        "account_id": task.account_id,
        "account_name": task.account_name,
        "status": task.status,
        "started": _utc(task.started) if task.started else None,
        "ended": _utc(task.ended) if task.ended else None,
        "duration_s": task.duration,
        "parameters": task.parameters,
        "outputs": task.outputs,
        "error": task.error,
        "screenshot_error": task.screenshot_error,
        "browser_console": task.browser_console,
        "browser_requests": task.browser_requests,
        "recorded": task.recorded,
    }


def run_reports(
    *,
    data_dir: Path,
    as_of: dt.date,
    notebooks: list[NotebookSpec],
    reports_dir: Path = Path("reports"),
    lang: str = "en",
    label: str | None = None,
    params: dict[str, str] | None = None,
    jobs: int = 1,
    account_plan: NotebookSpec | None = None,
    account_ids: Sequence[str] = (),
    account_names: Mapping[str, str] | None = None,
    choose_accounts: Callable[[Path | None], tuple[Sequence[str], Mapping[str, str]]] | None = None,
    prefetch_accounts: Callable[[Path, Sequence[str]], object] | None = None,
    config_path: Path | None = None,
    validate: Callable[[Path, dt.date], tuple[bool, str]] | None = None,
    data_summary: Mapping[str, Any] | Callable[[], Mapping[str, Any] | None] | None = None,
    kernel_name: str | None = None,
    cell_timeout: int = 600,
    run_timeout: int = 3600,
    show_personal_data: bool = False,
    personal_data_values: Callable[[], Iterable[str]] | Iterable[str] | None = None,
    screenshots: bool = False,
    progress: Literal["auto"] | bool = "auto",
    progress_stream: TextIO | None = None,
    project_root: Path | None = None,
    run_state: bool = True,
) -> RunResult:
    """Run the report notebooks for one dataset and as-of date and publish the run.

    Steps: check parameters (before anything runs) → hash the inputs → start
    ``jobs`` workers, which start and warm up their kernels, and the run-state
    builder → validate the data meanwhile (invalid: the children are stopped,
    no notebook runs, nothing is published, code 2) → choose the account plans
    (``choose_accounts``) → execute the notebooks on the workers (account plans
    fanned out over the accounts) → export HTML → personal-data scan → optional
    screenshots → ``manifest.json`` and ``index.html`` → atomic publish →
    ``latest`` (successful runs only) → ``reports/index.html``.

    Parameters
    ----------
    data_dir : Path
        Dataset folder; passed to notebooks as an absolute path.
    as_of : date
        Analysis date; passed as ``YYYY-MM-DD``.
    notebooks : list of NotebookSpec
        Portfolio reports, in navigation order.
    reports_dir : Path, default "reports"
        Where runs are published (created when missing).
    lang : {"en", "ja"}, default "en"
    label : str, optional
        Free text shown in the indexes; its sanitised form is part of the run id.
    params : dict of str, optional
        ``-p name=value`` overrides; each name must be declared by at least one
        selected notebook and is passed only to those, converted to the declared type.
    jobs : int, default 1
        Notebooks run in parallel.
    account_plan : NotebookSpec, optional
        The per-account notebook; required when ``account_ids`` is not empty.
    account_ids : sequence of str
        One account plan per id (duplicates dropped).
    account_names : mapping of str to str, optional
        Display names (account id → company name) for the plans' titles and the index.
    choose_accounts : callable, optional
        Instead of ``account_ids``: ``choose_accounts(state_folder)`` picks the
        accounts that get a plan once the run state is built (its folder, or
        None when the run has no state) and returns their ids and display
        names; their plans run after the reports. ``kam run`` passes one that
        reads the key accounts from the state, so the book is scored once per run.
    prefetch_accounts : callable, optional
        ``prefetch_accounts(state_folder, ids)``, called in a thread of this
        process once ``choose_accounts`` chose (with a run state), while the
        reports run: ``kam run`` stores the chosen accounts' rows in the state
        (:meth:`kam_analysis.context.AnalysisContext.save_account_rows`). The
        run waits for it before it ends; an error is logged and changes nothing
        else (the plans then query the engine).
    config_path : Path, optional
        ``kam.toml``; its content and hash go into the manifest.
    validate : callable, optional
        ``validate(data_dir, as_of) -> (ok, text)``, e.g. wrapping
        :func:`kam_analysis.data.validate_dataset`; called while the run state
        is built, before any notebook runs.
    data_summary : mapping or callable, optional
        The validation summary and warnings of the data (what was read and
        how: encodings, credit notes, lines without an account, the as-of
        gap); written into the manifest as ``data``. A callable is called
        after the notebooks ran (so it can return what ``validate`` found).
    kernel_name : str, optional
        A registered Jupyter kernel; by default the Python running this function
        (a kernelspec written into the run's working folder, so the run needs no
        kernel registration).
    cell_timeout : int, default 600
        Seconds per cell (nbclient).
    run_timeout : int, default 3600
        Seconds per notebook, enforced by the runner (kills the kernel on a hang).
    show_personal_data : bool, default False
        Passed to notebooks; when False, output files are scanned for
        ``personal_data_values`` and the run fails if any appears (offending
        files are deleted before publishing).
    personal_data_values : callable or iterable of str, optional
        Stakeholder names and e-mail addresses of the dataset (a callable is
        called once, after execution).
    screenshots : bool, default False
        Render each page to ``<name>.png`` with headless Chromium.
    progress : "auto", True or False
        "auto": an updating line on a terminal, timestamped log lines otherwise;
        True: the updating line; False: silent.
    progress_stream : text stream, optional
        Default ``sys.stderr``.
    project_root : Path, optional
        Where ``NotebookSpec.path`` is relative to and where ``git`` is asked
        for the commit; default: the folder above the package, with paths under
        ``notebooks/`` in :func:`notebooks_dir` (:func:`notebook_source`) and
        ``git`` asked only in a source checkout (a wheel has no commit).
    run_state : bool, default True
        Compute the portfolio once before the notebooks (features, scored
        book, LTV fit; :mod:`kam_analysis.state`) and let every notebook read
        it; False: every notebook computes what it needs itself.

    Returns
    -------
    RunResult
        ``code`` 0 ok / 1 failed / 2 invalid data / 130 interrupted (Ctrl-C or
        SIGTERM: running kernels are stopped, nothing is published).

    Raises
    ------
    ParameterError
        Undeclared, misspelled, non-identifier or ill-typed parameters.
    ReportError
        Missing notebooks, unknown language, Chromium missing for screenshots.

    Notes
    -----
    ``manifest.json`` keys: ``run_id``, ``label``, ``status``, ``started``,
    ``ended``, ``duration_s``, ``as_of``, ``lang``, ``data_dir``, ``dataset``,
    ``input_files`` (path, size, sha256), ``config`` (path, sha256, content,
    parsed), ``parameters`` (common), ``user_parameters``, ``settings``,
    ``versions``, ``git_commit``, ``git_dirty``, ``personal_data_check``,
    ``state`` (the run state computed once before the notebooks:
    ``status`` ok / failed / off, ``seconds``, ``key``, ``tables``, ``objects``; see
    :mod:`kam_analysis.state`), ``error``, ``notebooks`` (per notebook: name, notebook, title, source,
    account_id, status, started, ended, duration_s, parameters, outputs, error,
    recorded) and ``recorded`` (name -> values).
    """

    t0 = time.time()
    stream = progress_stream if progress_stream is not None else sys.stderr
    if lang not in LANGUAGES:
        raise ReportError(f"unknown language {lang!r}; available: {', '.join(LANGUAGES)}")
    if jobs < 1 or cell_timeout < 1 or run_timeout < 1:
        raise ReportError("jobs, cell_timeout and run_timeout must be at least 1")
    project_root = Path(project_root) if project_root is not None else None
    root = project_root if project_root is not None else PROJECT_ROOT
    data_dir = Path(data_dir).resolve()
    reports_dir = Path(reports_dir).resolve()
    config_path = Path(config_path).resolve() if config_path is not None else None
    as_of_text = as_of.isoformat()
    chromium = None
    if screenshots:
        chromium = find_chromium()
        if chromium is None:
            raise ReportError(
                "screenshots need Chromium; install it (apt-get install -y chromium) "
                "or run without screenshots"
            )
    if choose_accounts is not None and (account_plan is None or account_ids):
        raise ReportError("choose_accounts needs an account plan notebook and no account_ids")
    tasks = _build_tasks(
        project_root=project_root,
        notebooks=notebooks,
        account_plan=account_plan,
        account_ids=account_ids,
        lang=lang,
        account_names=account_names,
        plans_later=choose_accounts is not None,
    )
    # the plans chosen later are checked now, through one stand-in plan
    plan_template = None
    if choose_accounts is not None and account_plan is not None:
        plan_template = _plan_task(account_plan, "?", None, lang, project_root)
        _check_tasks([plan_template])
    common = {
        "data_dir": str(data_dir),
        "as_of": as_of_text,
        "config_path": str(config_path) if config_path else "",  # "" = defaults
        "lang": lang,
        "show_personal_data": show_personal_data,
        "account_id": None,
    }
    _resolve_parameters(
        tasks + ([plan_template] if plan_template else []),
        common=common,
        params=dict(params or {}),
    )
    mode = _progress_mode(progress, stream)
    prog = _Progress(mode, stream, len(tasks))

    if not data_dir.is_dir():
        return RunResult(None, "invalid", EXIT_INVALID, None, message=f"{data_dir}: not a folder")

    reports_dir.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    for name in remove_stale_work(reports_dir):
        prog.log(f"removed {name}, left by a run that was killed")
    run_id, reservation = _reserve_run_id(reports_dir, label, started)
    build = reports_dir / f".tmp-{run_id}-{os.getpid()}"
    published = False
    try:
        with _sigterm_as_interrupt():
            try:
                build.mkdir()
                (build / ".work").mkdir()
                (build / "logs").mkdir()
                later = ", account plans once the run state is built" if plan_template else ""
                prog.log(
                    f"run {run_id}: {len(tasks)} notebook(s){later}, jobs={jobs}, as of {as_of_text}"
                )
                files = input_files(data_dir)
                config_entry = _config_record(config_path)
                # site-packages may sit in some other repository (a project's .venv/)
                in_repo = project_root is not None or source_checkout()
                commit, dirty = _git_state(root) if in_repo else (None, None)
                state_dir = build / ".work" / "state"
                state: dict[str, Any] = {"status": "off"}
                prefetch: list[threading.Thread] = []

                def prepare() -> tuple[dict[str, str | None], list[_Task]]:
                    """Build the run state while the workers start their kernels; choose the plans."""
                    nonlocal state
                    builder = None
                    if run_state:
                        builder = start_run_state(
                            data_dir=data_dir,
                            as_of=as_of,
                            config_path=config_path,
                            lang=lang,
                            folder=state_dir,
                            log_path=build / "logs" / "_state.log",
                            timeout=run_timeout,
                        )
                    try:  # the data are validated while the state is built
                        _validate(validate, data_dir, as_of)
                        if builder is not None:
                            state = builder.result()
                    finally:
                        if builder is not None:
                            builder.stop()
                    if state["status"] == "ok":
                        prog.log(
                            f"run state built in {state['seconds']} s: {', '.join(state['tables'])}"
                        )
                    elif state["status"] == "failed":
                        prog.log(
                            f"run state not built ({state['error']}): notebooks compute on demand"
                        )
                    built = state["status"] == "ok"
                    env = {STATE_ENV: str(state_dir) if built else None}
                    if plan_template is None:
                        return env, []
                    chosen = choose_accounts(state_dir if built else None)
                    plans = _chosen_plans(
                        plan_template, chosen, lang=lang, project_root=project_root
                    )
                    if prefetch_accounts is not None and built and plans:
                        prefetch.append(
                            _start_prefetch(
                                prefetch_accounts,
                                state_dir,
                                [str(task.parameters["account_id"]) for task in plans],
                                prog,
                            )
                        )
                    if not tasks and not plans:
                        raise ReportError(
                            "nothing to run: no notebooks selected and no account was chosen "
                            "for an account plan"
                        )
                    _check_tasks(tasks + plans)
                    prog.total += len(plans)
                    prog.log(f"{len(plans)} account plan(s) chosen")
                    return env, plans

                exporter = _Exporter(
                    tasks, build, as_of=as_of_text, dataset=data_dir.name, run_id=run_id, lang=lang
                )
                try:
                    _execute_all(
                        tasks,
                        build,
                        jobs=jobs if plan_template is not None else min(jobs, len(tasks)),
                        kernel_name=kernel_name,
                        cell_timeout=cell_timeout,
                        run_timeout=run_timeout,
                        progress=prog,
                        cwd=plan_template.source.parent if plan_template else None,
                        prepare=prepare,
                        on_finished=exporter.submit,
                    )
                except BaseException:
                    exporter.pool.shutdown(wait=True, cancel_futures=True)
                    raise
                finally:  # the state folder outlives the thread writing into it
                    for thread in prefetch:
                        thread.join()
                _collect_records(tasks, build)
                exporter.close(prog)
                pd_check, run_error = _check_personal_data(
                    tasks,
                    build,
                    show_personal_data=show_personal_data,
                    values=personal_data_values,
                    progress=prog,
                )
                if chromium is not None:
                    _take_screenshots(tasks, build, chromium, progress=prog)
                status = (
                    "ok" if run_error is None and all(t.status == "ok" for t in tasks) else "failed"
                )
                if run_error is None and status == "failed":
                    bad = [t.key for t in tasks if t.status != "ok"]
                    run_error = f"{len(bad)} notebook(s) failed: {', '.join(bad)}"
                ended = time.time()
                records = {t.key: t.recorded for t in tasks if t.recorded}
                manifest = {
                    "run_id": run_id,
                    "label": label,
                    "status": status,
                    "started": _utc(t0),
                    "ended": _utc(ended),
                    "duration_s": round(ended - t0, 2),
                    "as_of": as_of_text,
                    "lang": lang,
                    "data_dir": str(data_dir),
                    "dataset": data_dir.name,
                    "input_files": files,
                    "config": config_entry,
                    "data": _data_summary(data_summary),
                    "parameters": {k: v for k, v in common.items() if k != "account_id"},
                    "user_parameters": dict(params or {}),
                    "settings": {
                        "jobs": jobs,
                        "kernel_name": kernel_name or f"{RUN_KERNEL} ({sys.executable})",
                        "cell_timeout": cell_timeout,
                        "run_timeout": run_timeout,
                        "screenshots": screenshots,
                    },
                    "versions": _versions(),
                    "git_commit": commit,
                    "git_dirty": dirty,
                    "personal_data_check": pd_check,
                    "state": state,
                    "error": run_error,
                    "notebooks": [_notebook_entry(t, root) for t in tasks],
                    "recorded": records,
                }

                shutil.rmtree(build / ".work", ignore_errors=True)
                write_text_atomic(
                    build / "manifest.json",
                    json.dumps(manifest, ensure_ascii=False, indent=2, default=str) + "\n",
                )
                write_text_atomic(build / "index.html", run_index_page(manifest, lang=lang))
                final = reports_dir / run_id
                os.rename(build, final)
                published = True
            except _InvalidData as invalid:
                with _ignore_interrupts():
                    shutil.rmtree(build, ignore_errors=True)
                    prog.log("data invalid: nothing run, nothing published", important=True)
                    prog.close()
                return RunResult(None, "invalid", EXIT_INVALID, None, message=str(invalid))
            except KeyboardInterrupt:
                with _ignore_interrupts():
                    if not published:
                        shutil.rmtree(build, ignore_errors=True)
                    prog.log(
                        "interrupted: running notebooks stopped, nothing published", important=True
                    )
                    prog.close()
                return RunResult(None, "interrupted", EXIT_INTERRUPTED, None, message="interrupted")
        with _ignore_interrupts(), _reports_lock(reports_dir):
            if status == "ok" and (problem := _point_latest(reports_dir, run_id)):
                prog.log(problem, important=True)
            _write_runs_index(reports_dir, lang)
        prog.log(
            f"published {final} (status {status})" + ("" if status == "ok" else f": {run_error}"),
            important=True,
        )
        prog.close()
        code = EXIT_OK if status == "ok" else EXIT_FAILED
        return RunResult(run_id, status, code, final, message=run_error or "", manifest=manifest)
    except BaseException:
        if not published:
            shutil.rmtree(build, ignore_errors=True)
        raise
    finally:
        reservation.unlink(missing_ok=True)

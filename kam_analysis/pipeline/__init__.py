"""The report pipeline: run the report notebooks for one dataset and date, publish HTML.

:func:`run_reports` is what ``kam run`` calls. It validates the data, executes
every report notebook with papermill in a child process, exports each executed
notebook to a code-free, offline HTML page, writes ``manifest.json`` and
publishes the run folder atomically. :func:`list_runs` and :func:`show_run` back
``kam reports list`` / ``kam reports show``.

Notebook contract
-----------------
Every report notebook (``notebooks/*.ipynb``) follows these rules; the runner
checks the first two.

1. **One parameters cell**, tagged ``parameters`` (papermill), declaring typed,
   commented parameters with defaults that run on the demo data::

       data_dir: str = "../data/demo"  # dataset folder
       as_of: str = "2026-03-31"  # analysis date, YYYY-MM-DD
       config_path: str | None = None  # kam.toml, None = defaults
       lang: str = "en"  # "en" or "ja"
       show_personal_data: bool = False  # True only for internal runs
       account_id: str = "A0001"  # per-account plans only

   The runner passes only the names a notebook declares. ``data_dir`` and
   ``config_path`` arrive as absolute paths, ``as_of`` as ``YYYY-MM-DD``. Extra
   ``-p name=value`` parameters must be declared by at least one selected
   notebook; the string value is converted to the type of the declaration
   (annotation, else the default's type): ``bool`` (true/false/yes/no/1/0),
   ``int``, ``float``, ``str``; ``none``/``null`` for optional ones.
2. **Every code cell runs top to bottom.** A cell that raises, a kernel that
   dies, a cell over the cell timeout, a notebook over the run timeout, or a
   notebook that stops early (``sys.exit()``) fails the run.
3. **No code, warnings or logs for stakeholders**: input cells are hidden in
   the HTML and stderr output is dropped, but notebooks should still silence
   warnings at the source. Tag a cell ``remove-cell`` to drop it from the HTML,
   ``remove-output`` to drop its output. Do not use LaTeX (no MathJax offline).
4. **Text reaches a page only through** :class:`kam_analysis.report.page.Page`
   (``page.say``, ``page.note``, ``page.table``, ``page.chart``): it renders the
   locale templates to HTML itself and escapes every value, so data can never
   become a link, an image, a heading or math.
5. **Personal data**: with ``show_personal_data=False`` show stakeholders as
   :func:`kam_analysis.stakeholders.pseudonym` values. The runner scans every output file for the
   dataset's names and e-mail addresses and fails the run if one appears.
6. **Key numbers for the manifest** are recorded with :func:`kam_analysis.report.record.record` (written
   to the JSON file named by the ``KAM_RECORD_FILE`` environment variable, which
   the runner sets per notebook; a no-op in JupyterLab). scrapbook is not used.
7. Labels come from the locale files through ``Page``, which also applies
   :func:`kam_analysis.plots.set_report_style(lang)`.

Run folder
----------
``reports/<run_id>/`` holds ``<name>.ipynb`` (executed), ``<name>.html``,
optional ``<name>.png`` screenshots, ``logs/<name>.log`` (why a notebook failed),
``logs/_worker-N.log`` (the output of worker N and its kernels),
``logs/_state.log`` (the run-state builder), ``index.html`` and ``manifest.json``. Per-account plans are named
``<plan>--<account>`` with the account id reduced to ``[A-Za-z0-9_-]`` (plus a
short hash when that changed it). The run id is a UTC timestamp
``YYYYMMDDTHHMMSSZ`` plus the sanitised label, plus a random suffix when needed,
so ids sort by start time and two concurrent runs never share a folder.

The run is built in ``reports/.tmp-<run_id>-<pid>/`` and published with one
``os.rename``; ``reports/latest`` (a symlink, replaced atomically) moves only to
successful runs; failed runs are published with ``status: failed`` for
debugging. Invalid data, bad parameters and interruptions publish nothing.

Exit codes of :class:`RunResult` follow the CLI: 0 success, 1 a notebook or
check failed, 2 invalid data (parameter problems raise :class:`ParameterError`,
also exit 2 in the CLI), 130 interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

from kam_analysis.config import NotebookSpec, ReportSettings
from kam_analysis.pipeline.browser import PageCheck, browser_check, find_chromium
from kam_analysis.pipeline.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_OK,
    ParameterError,
    ReportError,
)
from kam_analysis.pipeline.names import make_run_id, remove_stale_work, safe_name
from kam_analysis.pipeline.parameters import ParameterInfo, coerce_parameter, notebook_parameters
from kam_analysis.pipeline.privacy import find_personal_data
from kam_analysis.pipeline.run import RunResult, list_runs, run_reports, show_run
from kam_analysis.report.record import RECORD_ENV, record, record_path

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_OK",
    "RECORD_ENV",
    "NotebookSpec",
    "PageCheck",
    "ParameterError",
    "ParameterInfo",
    "ReportError",
    "ReportSettings",
    "RunResult",
    "browser_check",
    "coerce_parameter",
    "find_chromium",
    "find_personal_data",
    "list_runs",
    "make_run_id",
    "notebook_parameters",
    "record",
    "record_path",
    "remove_stale_work",
    "run_reports",
    "safe_name",
    "show_run",
]

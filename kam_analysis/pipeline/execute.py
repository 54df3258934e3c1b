"""Execute notebooks with papermill in child processes, with progress and time limits."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from kam_analysis.config import NotebookSpec
from kam_analysis.pipeline.errors import ReportError
from kam_analysis.pipeline.manifest import _utc
from kam_analysis.report.record import RECORD_ENV

if TYPE_CHECKING:
    pass


class _Progress:
    """A single updating line on a terminal; timestamped log lines otherwise."""

    def __init__(self, mode: Literal["tty", "log", "off"], stream: TextIO, total: int):
        self.mode, self.stream, self.total = mode, stream, total
        self._last = 0.0
        self._shown = False

    def log(self, message: str, *, important: bool = False) -> None:
        """One event: a timestamped line (log mode); on a terminal only important ones."""
        if self.mode == "off" or (self.mode == "tty" and not important):
            return
        if self.mode == "log":
            self.stream.write(f"{_utc()} {message}\n")
        else:
            self._clear()
            self.stream.write(f"{message}\n")
        self.stream.flush()

    def update(self, done: int, running: Sequence[tuple[str, float]]) -> None:
        if self.mode != "tty" or not running:
            return
        now = time.monotonic()
        if now - self._last < 0.2:
            return
        self._last = now
        name, elapsed = running[0]
        more = f" (+{len(running) - 1})" if len(running) > 1 else ""
        line = f"[{min(done + 1, self.total)}/{self.total}] {name}{more} … {elapsed:.1f} s"
        width = shutil.get_terminal_size((100, 20)).columns - 1
        self.stream.write("\r" + line[:width] + "\x1b[K")
        self.stream.flush()
        self._shown = True

    def _clear(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self._shown = False

    def close(self) -> None:
        if self.mode == "tty":
            self._clear()
            self.stream.flush()


def _progress_mode(progress: bool | str, stream: TextIO) -> Literal["tty", "log", "off"]:
    if progress is False:
        return "off"
    if progress is True:
        return "tty"
    if progress != "auto":
        raise ReportError(f"progress must be 'auto', True or False, got {progress!r}")
    try:
        return "tty" if stream.isatty() else "log"
    except (AttributeError, ValueError):
        return "log"


@dataclass
class _Task:
    key: str
    spec: NotebookSpec
    title: str
    source: Path
    account_id: str | None
    account_name: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    started: float | None = None
    ended: float | None = None
    rc: int | None = None
    status: str = "not_run"
    error: str | None = None
    killed: bool = False
    outputs: list[str] = field(default_factory=list)
    recorded: dict[str, Any] = field(default_factory=dict)
    screenshot_error: str | None = None
    browser_console: list[str] = field(default_factory=list)
    browser_requests: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        return round((self.ended or time.time()) - self.started, 2)


@dataclass
class _Worker:
    """A child process with one kernel that executes the notebooks it is handed, in turn."""

    index: int
    proc: subprocess.Popen
    log_handle: Any
    task: _Task | None = None  # handed over, not finished

    def alive(self) -> bool:
        return self.proc.poll() is None


NOTEBOOKS_PER_KERNEL = 10
"""Most notebooks one kernel executes in turn (then a fresh kernel starts)."""

WARM_UP = (
    "try:\n"
    "    import matplotlib.pyplot, pandas, kam_analysis.context, kam_analysis.plots\n"
    "    import kam_analysis.report\n"
    "except Exception:\n"
    "    pass\n"
)
"""Run in each new kernel before its first notebook: the imports every report makes.

A worker starts its kernel and runs this while the runner builds the run state,
so the first notebook of each kernel does not pay for them."""


def _kill_tree(proc: subprocess.Popen) -> None:
    """Stop a child and everything it started (the kernel included)."""
    import psutil

    try:
        parent = psutil.Process(proc.pid)
        procs = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        procs = []
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=3)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=3)
    with contextlib.suppress(Exception):
        proc.wait(timeout=5)


RUN_KERNEL = "kam-run"
"""Name of the kernelspec each run writes for the interpreter running ``kam``."""


def run_kernel_name(kernel_name: str | None) -> str:
    """The kernel a run executes its notebooks with.

    Parameters
    ----------
    kernel_name : str or None
        ``[reports] kernel_name``: a registered Jupyter kernel, or None (the
        default) for the Python that runs ``kam`` itself.

    Returns
    -------
    str
        ``kernel_name``, or :data:`RUN_KERNEL` for the run's own kernelspec.
    """
    return kernel_name or RUN_KERNEL


def write_run_kernel(work: Path) -> Path:
    """Write a kernelspec for ``sys.executable`` under ``work/kernels``; return ``work``.

    The run's notebooks then execute in the environment ``kam`` runs in, whether
    it was installed with ``make``, ``pip install`` or conda, without any kernel
    registered with Jupyter (the named kernel stays for JupyterLab). The folder is
    put first on ``JUPYTER_PATH`` of the child processes only.

    Parameters
    ----------
    work : Path
        The run's private working folder.

    Returns
    -------
    Path
        The folder to put on ``JUPYTER_PATH``.
    """
    folder = work / "kernels" / RUN_KERNEL
    folder.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python ({sys.executable})",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (folder / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return work


def _start_worker(
    index: int,
    build: Path,
    *,
    kernel_name: str | None,
    cwd: Path,
    jupyter_path: str | None = None,
) -> _Worker:
    """Start a worker child; it starts its kernel at once and waits for notebooks on stdin."""
    work = build / ".work"
    spec = {
        "kernel_name": run_kernel_name(kernel_name),
        "cwd": str(cwd),
        "record_env": RECORD_ENV,
        "warm_up": WARM_UP,
        "per_kernel": NOTEBOOKS_PER_KERNEL,
    }
    spec_file = work / f"_worker-{index}.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    env = dict(os.environ)
    if jupyter_path is not None:
        env["JUPYTER_PATH"] = jupyter_path
    # the kernels' own output: one log per worker
    log_handle = (build / "logs" / f"_worker-{index}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD_CODE, str(spec_file)],
        stdin=subprocess.PIPE,
        stdout=log_handle,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # Ctrl-C reaches the runner only; it stops the children
    )
    return _Worker(index, proc, log_handle)


def _hand_over(
    worker: _Worker,
    task: _Task,
    build: Path,
    *,
    cell_timeout: int,
    env: Mapping[str, str | None],
) -> bool:
    """Send a notebook to an idle worker (one JSON line); False when the worker is gone."""
    work = build / ".work"
    line = {
        "input": str(task.source),
        "output": str(build / f"{task.key}.ipynb"),
        "cwd": str(task.source.parent),
        "parameters": task.parameters,
        "cell_timeout": cell_timeout,
        "env": dict(env),
        "record": str(work / f"{task.key}.record.json"),
        "log": str(build / "logs" / f"{task.key}.log"),
        "started": str(work / f"{task.key}.started"),
        "done": str(work / f"{task.key}.done"),
    }
    assert worker.proc.stdin is not None
    try:
        worker.proc.stdin.write((json.dumps(line) + "\n").encode("utf-8"))
        worker.proc.stdin.flush()
    except (BrokenPipeError, OSError):
        return False
    worker.task = task
    return True


def _close_worker(worker: _Worker, *, kill: bool = False) -> None:
    """End a worker: close its input (it stops its kernel and exits) or kill it."""
    if kill:
        _kill_tree(worker.proc)
    else:
        with contextlib.suppress(OSError):
            assert worker.proc.stdin is not None
            worker.proc.stdin.close()
        try:
            worker.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _kill_tree(worker.proc)
    with contextlib.suppress(OSError):
        if worker.proc.stdin is not None:
            worker.proc.stdin.close()
    worker.log_handle.close()


_CHILD_CODE = r"""
import contextlib, ctypes, json, logging, os, signal, sys, threading, time

_PARENT = os.getppid()


def _stop(*_):
    # the runner is gone or stops us: take the kernel down too, it is not ours to leave
    try:
        import psutil

        for child in psutil.Process().children(recursive=True):
            child.kill()
    finally:
        os._exit(143)


signal.signal(signal.SIGTERM, _stop)
try:  # Linux: SIGTERM as soon as the runner dies, even by SIGKILL
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass


def _watch_parent():  # elsewhere, and as a second line: poll for the runner
    while True:
        if os.getppid() != _PARENT:
            _stop()
        time.sleep(1)


threading.Thread(target=_watch_parent, daemon=True).start()

# jsonschema (imported by nbformat) builds an IRI grammar at import when rfc3987-syntax is
# installed: seconds per notebook. nbformat never checks that format; skip the import.
sys.modules.setdefault("rfc3987_syntax", None)
spec = json.load(open(sys.argv[1], encoding="utf-8"))
import papermill as pm
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from papermill.exceptions import PapermillExecutionError

# the runner checked the parameters itself; papermill's own inspection misses
# `x: str | None` declarations and would log "Passed unknown parameter"
logging.getLogger("papermill").setLevel(logging.ERROR)

# before each notebook: an empty namespace (modules stay imported), a new history
# session with cell numbers from 1 (restarting the numbers in the same session makes
# IPython's history database print an error into the next cell's output), garbage
# collected, no open figure, the notebook's own record file and environment, as in a
# fresh kernel
PREPARE = (
    "get_ipython().reset(new_session=True)\n"
    "import gc as _g, os as _k, sys as _s\n"
    "_g.collect()\n"
    "for _n, _v in {env!r}.items():\n"
    "    _k.environ.pop(_n, None) if _v is None else _k.environ.__setitem__(_n, _v)\n"
    "_p = _s.modules.get('matplotlib.pyplot')\n"
    "_p is not None and _p.close('all')\n"
    "del _g, _k, _s, _p, _n, _v\n"
)


class Kernel:
    km = kc = cwd = None
    runs = 0

    def start(self, cwd):
        self.km = AsyncKernelManager(kernel_name=spec["kernel_name"])
        self.cwd, self.runs = cwd, 0
        run_sync(self.km.start_kernel)(cwd=cwd)
        self.kc = BlockingKernelClient()
        self.kc.load_connection_info(self.km.get_connection_info())
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.run(spec["warm_up"], "warm up")

    def ready(self, cwd):
        # a fresh kernel after too many notebooks, or for a notebook in another folder
        if self.km is not None and (self.cwd != cwd or self.runs >= spec["per_kernel"]):
            self.stop()
        if self.km is None:
            self.start(cwd)

    def run(self, code, what):
        reply = self.kc.execute_interactive(code, silent=True, store_history=False, timeout=120)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"the kernel could not {what}: {reply['content']}")

    def stop(self):
        if self.kc is not None:
            self.kc.stop_channels()
        if self.km is not None:
            with contextlib.suppress(Exception):
                run_sync(self.km.shutdown_kernel)(now=True)
        self.km = self.kc = None


def _write(path, text):
    with open(path + ".part", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".part", path)


kernel = Kernel()
try:  # start the kernel while the runner prepares the run; a failure is retried per notebook
    kernel.start(spec["cwd"])
except Exception as err:
    print(f"kam-runner: the kernel did not start: {type(err).__name__}: {err}", flush=True)
    kernel.stop()
while True:
    line = sys.stdin.readline()
    if not line:  # the runner has no more notebooks
        break
    task = json.loads(line)
    _write(task["started"], repr(time.time()))
    rc, message = 0, None
    env = {**task["env"], spec["record_env"]: task["record"]}
    try:
        kernel.ready(task["cwd"])
        kernel.runs += 1
        kernel.run(PREPARE.format(env=env), "be prepared")
        pm.execute_notebook(
            task["input"],
            task["output"],
            parameters=task["parameters"],
            kernel_name=spec["kernel_name"],
            language="python",
            execution_timeout=task["cell_timeout"],
            cwd=task["cwd"],
            progress_bar=False,
            log_output=False,
            km=kernel.km,
        )
    except PapermillExecutionError as err:
        rc, message = 1, f"cell {err.exec_count}: {err.ename}: {err.evalue}"
    except Exception as err:
        rc = 138 if type(err).__name__ == "DeadKernelError" else 1
        message = f"{type(err).__name__}: {err}"
    if rc:  # the next notebook gets a fresh kernel: this one may be dead, busy or dirty
        with open(task["log"], "a", encoding="utf-8") as log:
            log.write(f"kam-runner: {message}\n")
        kernel.stop()
    _write(task["done"], json.dumps({"rc": rc}))
kernel.stop()
"""
"""Worker process: execute the notebooks the runner hands over, with papermill.

The spec file (``sys.argv[1]``) names the kernel; each line on stdin is one
notebook, and the end of stdin ends the worker. A separate process so that a
kernel crash, ``os._exit`` or a hang cannot take the runner down; it imports only
papermill (fast start). It starts its kernel at once and runs :data:`WARM_UP` in
it. The notebooks run in turn in that kernel, its namespace emptied before each;
after a failure, after :data:`NOTEBOOKS_PER_KERNEL` notebooks or for a notebook in
another folder the next notebook gets a fresh kernel. The worker marks each
notebook's start and end in the run's working folder (``KEY.started``, ``KEY.done``
with the exit code) for the runner."""


def _first_error(nb: Any) -> str | None:
    for i, cell in enumerate(nb.cells, 1):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "error":
                return f"cell {i}: {out.get('ename')}: {str(out.get('evalue'))[:500]}"
    return None


def _unexecuted_cell(nb: Any) -> int | None:
    for i, cell in enumerate(nb.cells, 1):
        if cell.cell_type == "code" and cell.source.strip() and cell.get("execution_count") is None:
            return i
    return None


def _log_tail(path: Path, lines: int = 3) -> str:
    if not path.is_file():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    marked = [ln for ln in text if ln.startswith("kam-runner:")]
    return " | ".join((marked or text)[-lines:])[:600]


def _outcome(
    task: _Task, build: Path, *, cell_timeout: int, run_timeout: int
) -> tuple[str, str | None]:
    import nbformat

    rc = task.rc
    nb_path = build / f"{task.key}.ipynb"
    log = _log_tail(build / "logs" / f"{task.key}.log")
    if task.killed:
        return "timeout", f"stopped after the run timeout of {run_timeout} s"
    nb = None
    if nb_path.is_file():
        with contextlib.suppress(Exception):
            nb = nbformat.read(nb_path, as_version=4)
    if nb is None:
        return "failed", f"no executed notebook was written (exit code {rc}): {log}"
    exception = nb.metadata.get("papermill", {}).get("exception")
    error = _first_error(nb)
    skipped = _unexecuted_cell(nb)
    if rc == 0 and not exception and error is None and skipped is None:
        return "ok", None
    if "CellTimeoutError" in log or "timed out" in log.lower():
        return "timeout", f"a cell ran longer than the cell timeout of {cell_timeout} s"
    if error:
        return "failed", error
    if rc == 138 or "DeadKernelError" in log:
        return "failed", f"the kernel died (exit code {rc}; out of memory or os._exit?): {log}"
    if rc not in (0, None):
        return "failed", f"papermill exited with code {rc}: {log}"
    if skipped is not None:
        return "failed", f"cell {skipped} never ran: the notebook stopped early (sys.exit()?)"
    return "failed", f"papermill reported an exception: {log}"  # pragma: no cover


def _read_marker(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def _execute_all(
    tasks: list[_Task],
    build: Path,
    *,
    jobs: int,
    kernel_name: str | None,
    cell_timeout: int,
    run_timeout: int,
    progress: _Progress,
    cwd: Path | None = None,
    prepare: Callable[[], tuple[Mapping[str, str | None], list[_Task]]] | None = None,
    on_finished: Callable[[_Task], None] | None = None,
) -> None:
    """Execute the notebooks on a pool of ``jobs`` workers, each with one kernel.

    The workers start first and warm their kernels up while ``prepare`` runs
    (the run state is built then); ``prepare`` returns the environment every
    notebook runs with (a None value unsets a variable) and more notebooks to
    run after ``tasks`` (appended to ``tasks``; ``cwd`` is their folder when
    ``tasks`` is empty until then). The notebooks are
    handed out in order, each to the next idle worker. A notebook that runs
    longer than ``run_timeout`` seconds is stopped with its worker; a worker
    that is gone is replaced while notebooks are waiting. ``on_finished(task)``
    is called as each notebook ends (its status set), failed or not.
    """
    pending: deque[_Task] = deque(tasks)
    done = 0
    work = build / ".work"
    jupyter_path = None  # the run's own kernelspec, written once, when no kernel is named
    if not kernel_name:
        own = str(write_run_kernel(work))
        jupyter_path = os.pathsep.join(p for p in (own, os.environ.get("JUPYTER_PATH")) if p)
    cwd = tasks[0].source.parent if tasks else cwd or build
    started = 0

    def new_worker() -> _Worker:
        nonlocal started
        started += 1
        return _start_worker(
            started, build, kernel_name=kernel_name, cwd=cwd, jupyter_path=jupyter_path
        )

    def finish(task: _Task, rc: int | None) -> None:
        nonlocal done
        task.ended, task.rc = time.time(), rc
        task.status, task.error = _outcome(
            task, build, cell_timeout=cell_timeout, run_timeout=run_timeout
        )
        done += 1
        word = "ok" if task.status == "ok" else task.status.upper()
        detail = f": {task.error}" if task.error else ""
        progress.log(
            f"{word} {task.key} {task.duration:.1f} s{detail}", important=task.status != "ok"
        )
        if on_finished is not None:
            on_finished(task)

    def follow(worker: _Worker) -> None:
        """Take in the start and end of the worker's notebook, when they happened."""
        task = worker.task
        if task is None:
            return
        if task.started is None:
            mark = _read_marker(work / f"{task.key}.started")
            if mark is None:
                return
            task.started = float(mark)
            progress.log(f"start {task.key}")
        mark = _read_marker(work / f"{task.key}.done")
        if mark is not None:
            finish(task, int(json.loads(mark)["rc"]))
            worker.task = None

    workers: list[_Worker] = []
    try:
        workers = [new_worker() for _ in range(jobs if prepare else min(jobs, len(tasks)))]
        env: dict[str, str | None] = {}
        if prepare is not None:
            prepared, more = prepare()
            env = dict(prepared)
            tasks.extend(more)
            pending.extend(more)
        while pending or any(w.task is not None for w in workers):
            for i, worker in enumerate(workers):
                follow(worker)
                task = worker.task
                if (
                    task is not None
                    and task.started is not None
                    and worker.alive()
                    and time.time() - task.started > run_timeout
                ):
                    task.killed = True
                    _kill_tree(worker.proc)
                if not worker.alive():
                    follow(worker)  # what it finished just before it exited
                    if worker.task is not None:  # killed, or died with it
                        worker.task.started = worker.task.started or time.time()
                        finish(worker.task, worker.proc.returncode)
                        worker.task = None
                    if not pending:
                        continue
                    _close_worker(worker, kill=True)
                    workers[i] = worker = new_worker()  # a fresh worker for the rest
                if worker.task is None and pending:
                    task = pending.popleft()
                    if not _hand_over(worker, task, build, cell_timeout=cell_timeout, env=env):
                        task.started = time.time()  # the worker died as it started
                        _kill_tree(worker.proc)
                        finish(task, worker.proc.returncode)
            progress.update(
                done,
                [
                    (t.key, time.time() - (t.started or 0))
                    for w in workers
                    if (t := w.task) and t.started
                ],
            )
            time.sleep(0.05)
        for worker in workers:
            _close_worker(worker)
    except BaseException:
        with _ignore_interrupts():  # a second Ctrl-C must not leave kernels behind
            for worker in workers:
                _close_worker(worker, kill=True)
        raise


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _ignore_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = (
        signal.signal(signal.SIGINT, signal.SIG_IGN),
        signal.signal(signal.SIGTERM, signal.SIG_IGN),
    )
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old[0])
        signal.signal(signal.SIGTERM, old[1])

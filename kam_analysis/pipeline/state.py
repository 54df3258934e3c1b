"""Build a report run's state once, in a child process, before the notebooks start.

The child opens the dataset as every notebook will (same folder, as-of date,
configuration and language) and writes
:meth:`kam_analysis.context.AnalysisContext.save_state` into the run's
working folder. Running it in a child keeps the runner small: the memory of
the feature table and the LTV fit is returned when the child exits. A state
that cannot be built is not an error of the run: the notebooks then compute
on demand and report their own errors.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kam_analysis.context import load_context
from kam_analysis.state import read_state_meta

_CHILD_CODE = (
    "import json, os, sys, threading, time\n"
    "_parent = os.getppid()\n"
    "def _watch():  # a killed runner takes its state builder down with it\n"
    "    while os.getppid() == _parent:\n"
    "        time.sleep(0.5)\n"
    "    os._exit(1)\n"
    "threading.Thread(target=_watch, daemon=True).start()\n"
    "from kam_analysis.pipeline.state import build_in_child\n"
    "build_in_child(json.loads(sys.argv[1]))\n"
)


def build_in_child(spec: dict[str, Any]) -> None:
    """Compute and write the state described by ``spec`` (runs in the child process).

    Parameters
    ----------
    spec : dict
        ``data_dir``, ``as_of`` (ISO date), ``config_path`` ("" for the
        dataset's own kam.toml or the defaults), ``lang`` and ``folder``.
    """
    ctx = load_context(
        spec["data_dir"],
        as_of=spec["as_of"],
        config_path=spec["config_path"] or None,
        lang=spec["lang"],
    )
    ctx.save_state(spec["folder"])


class RunStateBuild:
    """The run state being built in a child process (see :func:`start_run_state`)."""

    def __init__(self, proc: subprocess.Popen, *, folder: Path, log_path: Path, timeout: float):
        self._proc, self._folder, self._log_path = proc, folder, log_path
        self._deadline = time.monotonic() + timeout
        self._timeout = timeout

    def result(self) -> dict[str, Any]:
        """Wait for the child (at most until the timeout) and say what it built.

        Returns
        -------
        dict
            For the manifest: ``status`` (``"ok"`` or ``"failed"``), ``seconds``
            (build time inside the child), ``key``, ``tables``, ``objects`` and,
            when it failed, ``error`` (the last line of the child's output).
        """
        try:
            code: int | None = self._proc.wait(max(0.0, self._deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.stop()
            code = None
        meta = read_state_meta(self._folder)
        if code == 0 and meta is not None:
            return {
                "status": "ok",
                "seconds": meta.get("seconds"),
                "key": meta.get("key"),
                "tables": meta.get("tables", []),
                "objects": meta.get("objects", []),
            }
        tail = self._log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        error = (
            f"timed out after {self._timeout:.0f} s" if code is None else (tail[-1] if tail else "")
        )
        return {"status": "failed", "error": error}

    def stop(self) -> None:
        """Stop the child (and its forked LTV fit) when it is still running."""
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()


def start_run_state(
    *,
    data_dir: Path,
    as_of: dt.date,
    config_path: Path | None,
    lang: str,
    folder: Path,
    log_path: Path,
    timeout: float,
) -> RunStateBuild:
    """Start building the run state in a child process; the caller goes on meanwhile.

    Parameters
    ----------
    data_dir : Path
    as_of : date
    config_path : Path or None
    lang : str
    folder : Path
        Where the state is written (the run's working folder).
    log_path : Path
        The child's output (kept with the run's logs).
    timeout : float
        Seconds before the child is stopped.

    Returns
    -------
    RunStateBuild
        :meth:`RunStateBuild.result` waits for it; :meth:`RunStateBuild.stop`
        stops it (the run was interrupted or its data are invalid).
    """
    spec = {
        "data_dir": str(data_dir),
        "as_of": as_of.isoformat(),
        "config_path": str(config_path) if config_path is not None else "",
        "lang": lang,
        "folder": str(folder),
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD_CODE, json.dumps(spec)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopped with its forked child as one group
        )
    return RunStateBuild(proc, folder=folder, log_path=log_path, timeout=timeout)


__all__ = ["RunStateBuild", "build_in_child", "start_run_state"]

"""Run ids, safe file names, reservations of run folders, stale work folders."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from kam_analysis.pipeline.errors import ReportError

if TYPE_CHECKING:
    pass


_RUN_ID = re.compile(r"^\d{8}T\d{6}Z(?:-[A-Za-z0-9_-]+)?$")


def safe_name(value: str, *, max_length: int = 40) -> str:
    """A file-name-safe form of a value: ``[A-Za-z0-9_-]`` only, hash-suffixed when changed.

    Parameters
    ----------
    value : str
        E.g. an account id such as ``"ACME/01"``.
    max_length : int, default 40

    Returns
    -------
    str
        ``"A0001"`` stays ``"A0001"``; ``"ACME/01"`` → ``"ACME_01-1b2c3d"``; two
        different values never map to the same name unless they already were one.
    """
    text = str(value)
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", text)[:max_length].strip("_-")
    if clean == text and clean:
        return clean
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:6]
    return f"{clean}-{digest}" if clean else f"id-{digest}"


def _safe_label(label: str | None) -> str:
    if not label:
        return ""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", label).strip("-_")[:40]


def make_run_id(
    label: str | None = None, *, now: dt.datetime | None = None, suffix: bool = False
) -> str:
    """A sortable run id: ``20261129T021500Z`` + ``-<label>`` (+ ``-<4 hex>``).

    Parameters
    ----------
    label : str, optional
        Free text; reduced to ``[A-Za-z0-9_-]`` (never used raw in a path).
    now : datetime, optional
        Start time (UTC); default now.
    suffix : bool, default False
        Append a random 4-hex-digit suffix.

    Returns
    -------
    str
    """
    now = now or dt.datetime.now(dt.UTC)
    run_id = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    if clean := _safe_label(label):
        run_id += f"-{clean}"
    if suffix:
        run_id += f"-{secrets.token_hex(2)}"
    return run_id


def _reserve_run_id(reports_dir: Path, label: str | None, now: dt.datetime) -> tuple[str, Path]:
    for attempt in range(50):
        run_id = make_run_id(label, now=now, suffix=attempt > 0)
        if (reports_dir / run_id).exists():
            continue
        marker = reports_dir / f".reserve-{run_id}"
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{os.getpid()}\n")  # the owner, for the clean-up of a killed run
        return run_id, marker
    raise ReportError(f"could not reserve a run id in {reports_dir}")  # pragma: no cover


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_work(reports_dir: Path) -> list[str]:
    """Remove the build folders and run-id reservations of runs whose process is gone.

    A run killed with ``kill -9`` (what a scheduler does after its timeout)
    cannot clean up after itself: its ``.tmp-<run_id>-<pid>`` folder and
    ``.reserve-<run_id>`` marker stay behind. The next run removes those whose
    process no longer exists; live runs' folders are left alone.

    Returns
    -------
    list of str
        Names removed.
    """
    removed: list[str] = []
    if not reports_dir.is_dir():
        return removed
    for path in sorted(reports_dir.glob(".tmp-*")):
        pid_text = path.name.rsplit("-", 1)[-1]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    for path in sorted(reports_dir.glob(".reserve-*")):
        try:
            pid_text = path.read_text().strip()
        except OSError:
            continue
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed

"""Run state: the portfolio computed once per report run, read by every notebook.

``kam run`` builds the analysis state of the book before any notebook starts
(:func:`kam_analysis.context.AnalysisContext.save_state`): the feature table,
the monthly revenue, the scored book with status and tiers, and the LTV
models with every account's LTV. Each notebook's context then reads these
instead of computing them again (:func:`kam_analysis.context.load_context`
finds the state through :data:`STATE_ENV`).

A state is used only when its key matches the context asking for it
(:func:`state_key`): the SHA-256 of every input file of the dataset, the
resolved configuration, the as-of date, the language and the package and
state-format versions. A changed input file or setting gives another key,
so a stale state is never read; the context then computes on demand, as it
does in JupyterLab without a run.

Layout of a state folder::

    state.json          key, tables, objects, build seconds
    <table>.parquet     pandas tables (features, monthly, scored, ltv)
    <object>.pickle     fitted models (written and read by the same run only)

The pickles are written by the run into its own working folder and read by
the notebooks of that run; a state folder from anywhere else is never
opened, because :func:`open_state` requires the key it recomputes from the
inputs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import pickle
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kam_analysis import __version__
from kam_analysis.config import KamConfig

STATE_ENV = "KAM_RUN_STATE"
"""Environment variable naming the state folder of the running report run."""

STATE_VERSION = 1
"""Format version of the state folder; part of the key."""

STATE_FILE = "state.json"


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def input_files(data_dir: Path) -> list[dict[str, Any]]:
    """Every data file of a dataset folder with its size and SHA-256.

    Hidden files and files in folders starting with ``.`` or ``_`` (caches,
    converted copies) are left out.

    Parameters
    ----------
    data_dir : Path
        The dataset folder.

    Returns
    -------
    list of dict
        ``path`` (relative, POSIX), ``size`` (bytes) and ``sha256``, sorted by path.
    """
    files = []
    for path in sorted(Path(data_dir).rglob("*")):
        rel = path.relative_to(data_dir)
        if any(part.startswith((".", "_")) for part in rel.parts) or not path.is_file():
            continue
        files.append({"path": rel.as_posix(), "size": path.stat().st_size, "sha256": _sha256(path)})
    return files


def state_key(files: list[dict[str, Any]], config: KamConfig, as_of: dt.date, lang: str) -> str:
    """The key a state is stored and found under.

    Parameters
    ----------
    files : list of dict
        :func:`input_files` of the dataset.
    config : KamConfig
        The resolved configuration (every setting, defaults included).
    as_of : date
    lang : str

    Returns
    -------
    str
        SHA-256 (hex) of the inputs' hashes, the configuration, the as-of
        date, the language, the package version and :data:`STATE_VERSION`.
    """
    return _digest(files, as_of, config=json.loads(config.model_dump_json()), lang=lang)


def _digest(files: list[dict[str, Any]], as_of: dt.date, **parts: Any) -> str:
    """SHA-256 (hex) of the inputs' hashes, the as-of date, the versions and ``parts``."""
    payload = {
        "inputs": [(f["path"], f["sha256"]) for f in files],
        "as_of": as_of.isoformat(),
        "package": __version__,
        "state_version": STATE_VERSION,
        **parts,
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


FEATURES_KEY = b"kam_features_key"
"""Parquet schema metadata holding a feature file's :func:`features_key`."""


def features_key(files: list[dict[str, Any]], config: KamConfig, as_of: dt.date) -> str:
    """The key a ``kam features`` output is reused under.

    Like :func:`state_key`, restricted to what the feature table depends on:
    the inputs' hashes, the ``[features]`` and ``[data]`` settings, the
    as-of date and the package and state-format versions (not the language
    or the report settings).
    """
    return _digest(
        files,
        as_of,
        features=json.loads(config.features.model_dump_json()),
        data=json.loads(config.data.model_dump_json()),
        table="account_features",
    )


def derived_features_path(data_dir: Path, as_of: dt.date) -> Path:
    """Where ``kam features`` writes the feature table of a dataset folder by default."""
    return Path(data_dir) / "_derived" / f"account_features_{as_of.isoformat()}.parquet"


def write_features(path: Path, features: pd.DataFrame, key: str) -> Path:
    """Write a feature table with its key in the Parquet metadata (atomically).

    Parameters
    ----------
    path : Path
    features : DataFrame
    key : str
        :func:`features_key` of the context that computed it.

    Returns
    -------
    Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(features, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[FEATURES_KEY] = key.encode()
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table.replace_schema_metadata(meta), tmp)
    os.replace(tmp, path)
    return path


def read_features(path: Path, key: str) -> pd.DataFrame | None:
    """A feature table written by :func:`write_features` for ``key``, else None.

    A missing or unreadable file, one without a key (written by something
    else) or with another key (other inputs, settings, as-of date or
    version) gives None: it is never used.
    """
    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException):
        return None
    if meta.get(FEATURES_KEY) != key.encode():
        return None
    return pd.read_parquet(path)


@dataclass
class RunState:
    """An opened state folder whose key matched (see :func:`open_state`)."""

    folder: Path
    key: str
    tables: tuple[str, ...]
    objects: tuple[str, ...]
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def table(self, name: str) -> pd.DataFrame | None:
        """A stored table (read once), or None when the state does not hold it."""
        if name not in self.tables:
            return None
        if name not in self._cache:
            self._cache[name] = pd.read_parquet(self.folder / f"{name}.parquet")
        return self._cache[name]

    def object(self, name: str) -> Any:
        """A stored object (read once), or None when the state does not hold it."""
        if name not in self.objects:
            return None
        if name not in self._cache:
            self._cache[name] = _read_pickle(self.folder / f"{name}.pickle")
        return self._cache[name]

    def account_rows(self, table: str, account_id: str) -> pd.DataFrame | None:
        """One account's rows of ``table`` stored by :func:`write_account_rows`, else None.

        None when no rows were stored (yet: they are written while the first
        notebooks run), for another key, or without this account or table.
        The rows keep their stored order, with a new index.
        """
        meta = self._cache.get(ACCOUNT_ROWS_FILE)
        if meta is None:  # read again until found: written while the run goes on
            meta = read_state_meta(self.folder / ACCOUNT_ROWS, ACCOUNT_ROWS_FILE)
            if meta is None or meta.get("key") != self.key:
                return None
            self._cache[ACCOUNT_ROWS_FILE] = meta
        if account_id not in meta.get("accounts", ()) or table not in meta.get("tables", ()):
            return None
        name = f"{ACCOUNT_ROWS}/{table}"
        if name not in self._cache:
            self._cache[name] = _read_pickle(self.folder / ACCOUNT_ROWS / f"{table}.pickle")
        rows = self._cache[name]
        return rows[rows["account_id"].astype(str) == account_id].reset_index(drop=True)


ACCOUNT_ROWS = "account_rows"
"""Subfolder of a state folder holding the rows of the accounts the run makes plans for."""

ACCOUNT_ROWS_FILE = "account_rows.json"


def write_account_rows(
    folder: Path, key: str, account_ids: list[str], frames: Mapping[str, pd.DataFrame]
) -> Path:
    """Store some accounts' rows of each table beside a run state.

    Written with pickle (the exact frames, read by the same run only), and
    ``account_rows.json`` last, so that a reader finds them whole or not at all.

    Parameters
    ----------
    folder : Path
        The state folder.
    key : str
        The state's key (:func:`state_key`).
    account_ids : list of str
    frames : mapping of str to DataFrame
        Per table, the rows of those accounts, with an ``account_id`` column.

    Returns
    -------
    Path
        The ``account_rows.json`` written.
    """
    sub = Path(folder) / ACCOUNT_ROWS
    sub.mkdir(parents=True, exist_ok=True)
    _write_pickles(sub, frames)
    meta = {
        "key": key,
        "state_version": STATE_VERSION,
        "accounts": sorted(str(a) for a in account_ids),
        "tables": sorted(frames),
    }
    return _write_json_atomic(sub / ACCOUNT_ROWS_FILE, meta)


def _write_pickles(folder: Path, objects: Mapping[str, Any]) -> None:
    """``<name>.pickle`` in ``folder`` for every object."""
    for name, obj in objects.items():
        with (folder / f"{name}.pickle").open("wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)


def _read_pickle(path: Path) -> Any:
    with path.open("rb") as fh:
        return pickle.load(fh)


def _write_json_atomic(target: Path, meta: Mapping[str, Any]) -> Path:
    """Write ``meta`` as JSON through a temporary file, so a reader never sees half of it."""
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


class ForkedResult:
    """A value computed in a forked child process, while this process goes on.

    Started by :func:`compute_forked`; :meth:`get` waits for the child and
    returns its value, or computes it here when the child failed (or when
    forking is not available: not Linux, or too little free memory; see
    :func:`fork_fits_in_memory`). The child must not use anything that is
    unsafe after ``fork`` (an open database connection, threads): load what
    it reads before forking. :attr:`forked` says whether a child was started.
    """

    def __init__(self, fn: Callable[[], Any], path: Path):
        self._fn, self._path, self._pid = fn, path, None
        self.forked = False
        if sys.platform != "linux" or not fork_fits_in_memory():
            return
        pid = os.fork()
        if pid == 0:  # the child: compute, pickle, exit without running the parent's cleanup
            code = 1
            try:
                _die_with_parent()
                with path.open("wb") as fh:
                    pickle.dump(fn(), fh, protocol=pickle.HIGHEST_PROTOCOL)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        self._pid, self.forked = pid, True

    def get(self) -> Any:
        """The value: the child's when it succeeded, else computed in this process."""
        if self._pid is not None:
            _, status = os.waitpid(self._pid, 0)
            self._pid = None
            value, ok = None, status == 0 and self._path.is_file()
            if ok:
                with self._path.open("rb") as fh:
                    value = pickle.load(fh)
            self._path.unlink(missing_ok=True)
            if ok:
                return value
        return self._fn()


FORK_MEMORY_FACTOR = 2.0
"""A child is forked only when the free memory is this many times this process's RSS."""


def fork_fits_in_memory(factor: float = FORK_MEMORY_FACTOR) -> bool:
    """Whether a forked child can run beside this process without exhausting memory.

    A child shares its parent's pages until it writes them, then allocates as
    much as the parent would for the same work: at 100,000 accounts the LTV
    fit's child peaks near 2.2 GiB (about 1 GiB of it shared) beside a state
    builder of up to 3.5 GiB. The fork is safe
    when the memory available now is at least ``factor`` times this
    process's resident size; otherwise the work runs in this process, in turn
    (slower, the same result).

    Parameters
    ----------
    factor : float
        Required free memory as a multiple of this process's resident set.

    Returns
    -------
    bool
    """
    import psutil

    rss = psutil.Process().memory_info().rss
    return psutil.virtual_memory().available >= factor * rss


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (a killed run leaves nothing)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def compute_forked(fn: Callable[[], Any], path: str | Path) -> ForkedResult:
    """Compute ``fn()`` in a forked child (Linux) while the caller goes on.

    Parameters
    ----------
    fn : callable
        Computes the value (picklable) from what this process holds.
    path : str or Path
        Where the child pickles the value (removed once read).

    Returns
    -------
    ForkedResult
        ``.get()`` waits for the value.
    """
    return ForkedResult(fn, Path(path))


def write_state(
    folder: Path,
    key: str,
    *,
    tables: Mapping[str, pd.DataFrame],
    objects: Mapping[str, Any] | None = None,
    seconds: float | None = None,
) -> Path:
    """Write a state folder; ``state.json`` last, so a half-written state is never opened.

    Parameters
    ----------
    folder : Path
        Created when missing.
    key : str
        :func:`state_key` of the context that computed the contents.
    tables : mapping of str to DataFrame
        Stored as Parquet.
    objects : mapping of str to object
        Stored with pickle (fitted models).
    seconds : float, optional
        Build time, recorded in ``state.json``.

    Returns
    -------
    Path
        The ``state.json`` written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    objects = dict(objects or {})
    _write_pickles(folder, objects)
    meta = {
        "key": key,
        "state_version": STATE_VERSION,
        "tables": sorted(tables),
        "objects": sorted(objects),
        "seconds": None if seconds is None else round(seconds, 2),
        "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    return _write_json_atomic(folder / STATE_FILE, meta)


def read_state_meta(folder: Path, name: str = STATE_FILE) -> dict[str, Any] | None:
    """``state.json`` (or the JSON file ``name``) of a folder, or None when missing or unreadable."""
    try:
        meta = json.loads((Path(folder) / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def open_state(folder: Path, key: str) -> tuple[RunState | None, str]:
    """Open a state folder if it was written for ``key``.

    Parameters
    ----------
    folder : Path
    key : str
        :func:`state_key` of the context that wants to read it.

    Returns
    -------
    (RunState or None, str)
        The state and ``"used"``, or None and why not: ``"missing"`` (no
        readable ``state.json``) or ``"stale"`` (written for other inputs,
        settings, as-of date, language or version).
    """
    meta = read_state_meta(folder)
    if meta is None:
        return None, "missing"
    if meta.get("key") != key or meta.get("state_version") != STATE_VERSION:
        return None, "stale"
    state = RunState(
        folder=Path(folder),
        key=key,
        tables=tuple(meta.get("tables", ())),
        objects=tuple(meta.get("objects", ())),
    )
    return state, "used"


__all__ = [
    "ACCOUNT_ROWS",
    "FEATURES_KEY",
    "STATE_ENV",
    "STATE_VERSION",
    "ForkedResult",
    "RunState",
    "compute_forked",
    "fork_fits_in_memory",
    "derived_features_path",
    "features_key",
    "input_files",
    "open_state",
    "read_features",
    "read_state_meta",
    "state_key",
    "write_account_rows",
    "write_features",
    "write_state",
]

"""Key numbers of a report, recorded for the run manifest (a no-op in JupyterLab)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


RECORD_ENV = "KAM_RECORD_FILE"
"""Environment variable naming the JSON sidecar that :func:`record` writes."""


def record_path() -> Path | None:
    """The JSON sidecar :func:`record` writes to, or None outside a report run.

    Returns
    -------
    Path or None
        ``$KAM_RECORD_FILE`` when set (the runner sets it per notebook).
    """
    value = os.environ.get(RECORD_ENV)
    return Path(value) if value else None


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()  # numpy / pandas scalars
    if isinstance(value, dt.date):  # datetime and pandas Timestamp too
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def record(name: str, value: Any) -> None:
    """Record a key number of a report for the run manifest.

    A no-op outside a report run (no ``KAM_RECORD_FILE``), so notebooks call it
    unconditionally.

    Parameters
    ----------
    name : str
        Identifier-like key (``"n_key_accounts"``); a second call replaces the value.
    value : JSON-serialisable
        Numbers, strings, booleans, lists, dicts; numpy scalars and dates are converted.

    Raises
    ------
    ValueError
        For an empty name or a value that cannot be stored as JSON.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError("record: name must be a non-empty string")
    path = record_path()
    value = _jsonable(value)
    try:
        json.dumps(value, allow_nan=True)
    except TypeError as err:
        raise ValueError(f"record({name!r}): value is not JSON-serialisable: {err}") from None
    if path is None:
        return
    data: dict[str, Any] = {}
    if path.is_file():
        with contextlib.suppress(ValueError, OSError):
            data = json.loads(path.read_text(encoding="utf-8"))
    data[name] = value
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)

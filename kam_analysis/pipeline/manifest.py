"""Parts of a run manifest: input hashes, configuration, versions, git state."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import platform
import re
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


def _utc(ts: float | None = None) -> str:
    moment = dt.datetime.fromtimestamp(ts if ts is not None else time.time(), dt.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _config_record(config_path: Path | None) -> dict[str, Any] | None:
    if config_path is None:
        return None
    raw = config_path.read_bytes()
    entry: dict[str, Any] = {
        "path": str(config_path),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "content": _SECRET_SETTING.sub(r"\1\"***\"", raw.decode("utf-8", errors="replace")),
        "parsed": None,
    }
    if config_path.suffix == ".toml":
        import tomllib

        with contextlib.suppress(tomllib.TOMLDecodeError, UnicodeDecodeError):
            parsed = tomllib.loads(raw.decode("utf-8-sig"))
            if parsed.get("stakeholders", {}).get("pseudonym_salt"):
                parsed["stakeholders"]["pseudonym_salt"] = "***"
            entry["parsed"] = parsed
    return entry


_SECRET_SETTING = re.compile(r"(?m)^(\s*pseudonym_salt\s*=\s*).*$")
"""A salt written into kam.toml: never copied into a run's manifest."""


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in (
        "kam-analysis",
        "pandas",
        "numpy",
        "duckdb",
        "ibis-framework",
        "papermill",
        "nbconvert",
        "matplotlib",
        "pandera",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _git(project_root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=project_root, capture_output=True, text=True, timeout=15
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _git_state(project_root: Path) -> tuple[str | None, bool | None]:
    commit = _git(project_root, "rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = _git(project_root, "status", "--porcelain", "--untracked-files=no")
    return commit, (None if status is None else bool(status))

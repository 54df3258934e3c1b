"""What validation found: issues (file, column, rule, example rows) and a summary."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kam_analysis.core.errors import InputError

__all__ = ["DatasetError", "Issue", "ValidationReport", "clean_text"]

MAX_EXAMPLES = 5
_CONTROL = dict.fromkeys(
    [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, *range(0x80, 0xA0)]
)


def clean_text(text: str) -> str:
    """Text safe for a terminal: control characters (ANSI escapes, bells) removed."""
    return str(text).translate(_CONTROL)


class DatasetError(InputError):
    """The dataset cannot be used; ``report`` says why, file by file."""

    def __init__(self, report: ValidationReport):
        super().__init__(report.render_text())
        self.report = report


@dataclass
class Issue:
    """One broken rule: where, what, how many rows, and examples."""

    severity: str  # "error" | "warning"
    table: str
    file: str | None
    column: str | None
    rule: str
    message: str
    n_rows: int = 0
    examples: list[dict] = field(default_factory=list)
    line_label: str = "line"

    def render(self) -> str:
        """Human-readable lines for the terminal."""
        where = self.file or self.table
        col = f', column "{self.column}"' if self.column else ""
        count = f" — {self.n_rows:,} row(s)" if self.n_rows else ""
        head = f"{self.severity.upper()} {where}{col}: {self.message} (rule: {self.rule}){count}"
        lines = [clean_text(head)]
        for ex in self.examples:
            ex = dict(ex)
            pos = ex.pop("_line", None)
            cells = ", ".join(f"{k}={show_value(v)}" for k, v in ex.items())
            prefix = f"{self.line_label} {pos}: " if pos is not None else ""
            lines.append(clean_text(f"    {prefix}{cells}"))
        return "\n".join(lines)


def show_value(value) -> str:
    """A value as shown in an example row (dates without midnight, blanks quoted)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "(empty)"
    if isinstance(value, pd.Timestamp | dt.datetime):
        midnight = (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0)
        return value.strftime("%Y-%m-%d") if midnight else str(value)
    text = str(value)
    return repr(text) if text.strip() != text or text == "" else text


@dataclass
class ValidationReport:
    """Outcome of :func:`kam_analysis.data.validate_dataset`."""

    folder: Path | str
    """The dataset folder, or a description of the engine source."""
    as_of: dt.date
    issues: list[Issue] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when no rule of severity ``error`` is broken."""
        return not self.errors

    def render_text(self) -> str:
        """The report as plain text (what ``kam validate`` prints)."""
        state = "valid" if self.ok else "INVALID"
        counts = f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        lines = [clean_text(f"Dataset {self.folder} as of {self.as_of}: {state} ({counts})")]
        if self.summary:
            lines.append("")
            lines.extend(clean_text(line) for line in render_summary(self.summary))
        for issue in self.errors + self.warnings:
            lines.append("")
            lines.append(issue.render())
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-friendly form (for manifests)."""
        return {
            "folder": str(self.folder),
            "as_of": self.as_of.isoformat(),
            "ok": self.ok,
            "summary": self.summary,
            "issues": [
                {
                    "severity": i.severity,
                    "table": i.table,
                    "file": i.file,
                    "column": i.column,
                    "rule": i.rule,
                    "message": i.message,
                    "n_rows": i.n_rows,
                    "examples": [{k: show_value(v) for k, v in e.items()} for e in i.examples],
                }
                for i in self.issues
            ],
        }


_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def _file_note(info: dict) -> str:
    parts = [info["file"]]
    if info.get("encoding"):
        parts.append(info["encoding"])
    if info.get("delimiter"):
        parts.append(_DELIMITER_NAMES.get(info["delimiter"], info["delimiter"]) + "-delimited")
    if info.get("header") is False:
        parts.append("no header row")
    if info.get("derived"):
        parts = [info["derived"]]
    if "rows_used" in info:
        parts.append(f"{info['rows_used']:,} with an account")
    extra = info.get("ignored_columns") or []
    note = "; ".join(parts)
    if extra:
        note += "; ignored columns: " + ", ".join(extra)
    return note


def render_summary(summary: dict) -> list[str]:
    """Summary lines of a validation report."""
    lines = []
    if "config" in summary:
        lines.append(f"  configuration: {summary['config'] or 'defaults (no kam.toml)'}")
    for table, info in summary.get("tables", {}).items():
        lines.append(f"  {table:<14} {info['rows']:>12,} rows  ({_file_note(info)})")
    if summary.get("missing_optional"):
        lines.append(
            "  not provided (analyses needing them are skipped): "
            + ", ".join(summary["missing_optional"])
        )
    if "transaction_dates" in summary:
        first, last = summary["transaction_dates"]
        lines.append(f"  transactions from {first} to {last}")
    if "accounts" in summary:
        lines.append(f"  accounts: {summary['accounts']:,}")
    if summary.get("currencies"):
        lines.append("  currencies: " + ", ".join(summary["currencies"]))
    notes = summary.get("credit_notes")
    if notes and notes.get("lines"):
        lines.append(
            f"  credit notes and returns: {notes['lines']:,} lines, amount {notes['amount']:,.2f} "
            f"({notes['share']:.1%} of gross revenue), netted"
        )
    unattributed = summary.get("unattributed")
    if unattributed and unattributed.get("lines"):
        lines.append(
            f"  lines without an account: {unattributed['lines']:,} "
            f"({unattributed['line_share']:.1%} of lines, {unattributed['revenue_share']:.1%} of "
            "revenue), left out"
        )
    return lines

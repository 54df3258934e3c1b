"""Errors and exit codes of report runs (the CLI exits with the same codes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kam_analysis.core.errors import InputError

if TYPE_CHECKING:
    pass


EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130


class ReportError(InputError, ValueError):
    """The report run cannot start: bad settings, missing notebook, missing tool."""


class ParameterError(ReportError):
    """A parameter is unknown to every selected notebook, malformed or of the wrong type."""

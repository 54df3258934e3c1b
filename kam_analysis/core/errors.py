"""The error hierarchy: every error kam-analysis raises on purpose derives from :class:`KamError`.

* :class:`InputError` -- the input is wrong (data, settings, parameters, a
  command line). The CLI prints the message, which names the file, column or
  setting, and exits with 2. Most subclasses are also ``ValueError``\\ s, as they
  were before the hierarchy existed, so ``except ValueError`` keeps working.
* Any other :class:`KamError` (a model that did not converge, a data source that
  cannot be reached) is a failure of the analysis, not of the input.

An exception that is not a :class:`KamError` is a bug.
"""

from __future__ import annotations

__all__ = ["InputError", "KamError"]


class KamError(Exception):
    """Base of every error that kam-analysis raises on purpose."""


class InputError(KamError):
    """Wrong input: data, settings, parameters or arguments (CLI exit code 2)."""

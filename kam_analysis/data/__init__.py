"""The data layer: reading a dataset folder (or an engine), and validating it.

A dataset is a folder holding one file per table of the contract
(:mod:`kam_analysis.core.schemas`): ``<table>.csv`` (``.tsv``, ``.txt``),
``<table>.parquet`` or ``<table>.xlsx``. :func:`open_dataset` exposes each
table to the embedded engine (DuckDB, through Ibis) *without* loading it
into pandas: files are scanned where they lie, so a 20-million-line
transaction file is validated and aggregated in bounded memory.

Modules
-------
settings
    ``[data]`` and ``[data.source]`` of ``kam.toml``.
files
    Finding files; encoding, delimiter and header detection; converted copies.
parsing
    One rule table turning export text into contract types, and column formulas.
dataset
    :class:`Dataset` and :func:`open_dataset` (column map, derived accounts).
validation
    :func:`validate_dataset`: every rule of the contract, with example rows.
sources
    Connections to engines (Spark, PostgreSQL, warehouses).
"""

from kam_analysis.data.dataset import (
    Dataset,
    connect,
    normalise_name,
    open_dataset,
    open_engine_dataset,
    rows_of_accounts,
)
from kam_analysis.data.files import FORMATS, SourceFile, detect_delimiter, detect_encoding
from kam_analysis.data.report import DatasetError, Issue, ValidationReport
from kam_analysis.data.settings import DataSettings, SourceSettings
from kam_analysis.data.validation import as_date, validate_dataset, validate_open_dataset

__all__ = [
    "FORMATS",
    "DataSettings",
    "Dataset",
    "DatasetError",
    "Issue",
    "SourceFile",
    "SourceSettings",
    "ValidationReport",
    "as_date",
    "connect",
    "detect_delimiter",
    "detect_encoding",
    "normalise_name",
    "open_dataset",
    "open_engine_dataset",
    "rows_of_accounts",
    "validate_dataset",
    "validate_open_dataset",
]

"""Settings of the data layer: ``[data]`` and ``[data.source]`` of ``kam.toml``.

They live with the code that reads the data; :mod:`kam_analysis.config`
composes them into the whole configuration. Nothing here imports from
above the data layer.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kam_analysis.core.schemas import TABLE_MODELS

__all__ = ["DELIMITERS", "DataSettings", "SourceSettings", "known_table_keys"]

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", "whitespace": "whitespace"}
"""Delimiters of text files: the character (or ``"whitespace"`` for runs of blanks) and its name."""

_DELIMITER_ALIASES = {
    "comma": ",",
    "semicolon": ";",
    "tab": "\t",
    "\\t": "\t",
    "pipe": "|",
    "space": "whitespace",
    "spaces": "whitespace",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def known_table_keys(value: dict[str, Any]) -> dict[str, Any]:
    """Check that every key names a table of the contract."""
    unknown = sorted(set(value) - set(TABLE_MODELS))
    if unknown:
        raise ValueError(f"unknown table(s) {unknown}; known: {sorted(TABLE_MODELS)}")
    return value


class SourceSettings(_Section):
    """Where the tables live: the dataset folder (default) or a database/engine via Ibis.

    With ``backend = "files"`` (the default) the tables are the files of the
    dataset folder, read by the embedded DuckDB. Any other value names an Ibis
    backend (``"pyspark"``, ``"postgres"``, ``"duckdb"``, ``"snowflake"``,
    ``"bigquery"``, ...); validation and the feature build then run as queries
    on that engine and only account-level results come back.

    Example (Spark)::

        [data.source]
        backend = "pyspark"
        params = { master = "local[4]", "spark.driver.memory" = "8g" }
        database = "sales"                      # schema of the tables
        tables = { transactions = "order_lines", accounts = "customers" }

    Example (PostgreSQL; secrets from the environment, never in the file)::

        [data.source]
        url = "postgres://kam@db.internal:5432/crm?password=${KAM_DB_PASSWORD}"
    """

    backend: str = Field(
        "files",
        pattern=r"^[a-z][a-z0-9_]*$",
        description='"files" (the dataset folder) or an Ibis backend name such as "pyspark".',
    )
    url: str | None = Field(
        None,
        description="Connection URL for ibis.connect (postgres://..., duckdb:///file.db); "
        "${VAR} is replaced by the environment variable VAR.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments of ibis.<backend>.connect; for pyspark, Spark settings "
        '("master", "spark.driver.memory", ...) for the session kam starts.',
    )
    database: str | None = Field(
        None, description='Database or schema holding the tables ("catalog.schema" allowed).'
    )
    tables: dict[str, str] = Field(
        default_factory=dict,
        description="Contract table -> table name in the engine, when not the same; a path "
        "(containing /, or ending in .parquet or .csv) is read as files by the engine.",
    )

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, value: dict[str, str]) -> dict[str, str]:
        return known_table_keys(value)

    @model_validator(mode="after")
    def _url_backend(self) -> SourceSettings:
        if self.url is not None:
            scheme = self.url.split("://", 1)[0] if "://" in self.url else ""
            if not scheme:
                raise ValueError(f"url {self.url!r} has no scheme (postgres://..., duckdb://...)")
            if self.backend == "files":
                self.backend = scheme.replace("postgresql", "postgres")
        return self

    @property
    def is_files(self) -> bool:
        """Whether the tables are the files of the dataset folder."""
        return self.backend == "files"


_STRPTIME_DIRECTIVE = re.compile(r"%[-#]?([a-zA-Z%])")
_SUPPORTED_DIRECTIVES = set("YmdHMSfyIpbBjz%")


def _check_date_format(fmt: str) -> str:
    directives = _STRPTIME_DIRECTIVE.findall(fmt)
    if not directives:
        raise ValueError(f"date_format {fmt!r} has no strptime directive such as %Y, %m, %d")
    unsupported = sorted({d for d in directives if d not in _SUPPORTED_DIRECTIVES})
    if unsupported:
        raise ValueError(
            f"date_format {fmt!r}: unsupported directive(s) "
            + ", ".join("%" + d for d in unsupported)
            + "; use %Y %y %m %d %H %I %M %S %f %p %b %B %j"
        )
    has_year = bool({"Y", "y"} & set(directives))
    has_day = bool({"m", "b", "B", "j"} & set(directives))
    if not (has_year and has_day):
        raise ValueError(f"date_format {fmt!r} needs a year (%Y or %y) and a month (%m, %b)")
    return fmt


class DataSettings(_Section):
    """Where the data is and how to read it (``[data]``).

    Real exports differ in encoding, delimiter, decimal mark and date
    format; each can be stated here, and what is not stated is detected
    strictly (never guessed when ambiguous, see :mod:`kam_analysis.data.files`).
    """

    base_currency: str = Field("JPY", pattern=r"^[A-Z]{3}$", description="Reporting currency.")
    fiscal_year_start_month: int = Field(
        4, ge=1, le=12, description="First month of the fiscal year (4 = April, common in Japan)."
    )
    files: dict[str, str] = Field(
        default_factory=dict,
        description="Table name -> file name inside the dataset folder, when not <table>.<ext>.",
    )
    encoding: str | None = Field(
        None,
        description='Text encoding of CSV/TXT files (any Python codec, e.g. "cp1252", "cp932", '
        '"utf-8"); default: detected (UTF-8, UTF-8 with BOM, CP932, cp1252).',
    )
    delimiter: str | None = Field(
        None,
        description='Field delimiter of text files: ",", ";", "\\t" (tab), "|" or "whitespace" '
        "(runs of blanks); default: detected among these.",
    )
    decimal: Literal[".", ","] | None = Field(
        None,
        description='Decimal mark of amounts: "." (1,709.58) or "," (1.709,58); default "." '
        "except that a semicolon-delimited file with commas in amounts is refused.",
    )
    date_format: list[str] = Field(
        default_factory=list,
        description="strptime format(s) of dates that are neither ISO, YYYY/MM/DD nor YYYYMMDD, "
        'e.g. "%m/%d/%Y %H:%M" (unpadded 12/1/2010 8:26 parses); a string or a list.',
    )
    column_names: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Table -> column names, for text files without a header row.",
    )
    credit_notes: Literal["net", "error"] = Field(
        "net",
        description='"net": negative lines (credit notes, returns, cancellations) are accepted '
        'and netted; "error": negative revenue, cost or quantity is refused.',
    )
    unattributed: Literal["drop", "error"] = Field(
        "drop",
        description='"drop": transaction lines without an account_id are left out and counted '
        'in the summary; "error": they are refused.',
    )
    assumed_gross_margin: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="Gross margin assumed when there is no cost column (e.g. 0.3); "
        "without it gross profit is unknown and criteria needing it are dropped.",
    )
    duckdb_memory_limit: str = Field(
        "4GB", description="Memory cap for the embedded engine; larger data spills to disk."
    )
    duckdb_threads: int | None = Field(None, ge=1, description="Engine threads (default: all).")
    source: SourceSettings = Field(
        default_factory=SourceSettings,
        description="Dataset folder (default) or a database/engine connection.",
    )

    @field_validator("files")
    @classmethod
    def _known_files(cls, value: dict[str, str]) -> dict[str, str]:
        known_table_keys(value)
        for table, name in value.items():
            if Path(name).name != name:
                raise ValueError(f"files.{table} must be a file name inside the dataset folder")
        return value

    @field_validator("duckdb_memory_limit")
    @classmethod
    def _memory_size(cls, value: str) -> str:
        if not re.fullmatch(r"\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", value, re.I):
            raise ValueError(
                f'duckdb_memory_limit {value!r} is not a size such as "4GB", "512MB" or "8GiB"'
            )
        return value.strip()

    @field_validator("column_names")
    @classmethod
    def _known_column_names(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        known_table_keys(value)
        for table, names in value.items():
            if not names:
                raise ValueError(f"column_names.{table} is empty")
            stripped = [str(n).strip() for n in names]
            if any(not n for n in stripped):
                raise ValueError(f"column_names.{table} has an empty name")
            dupes = sorted({n for n in stripped if stripped.count(n) > 1})
            if dupes:
                raise ValueError(f"column_names.{table}: {dupes} named twice")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return codecs.lookup(value).name
        except LookupError:
            raise ValueError(f"unknown encoding {value!r} (any Python codec name)") from None

    @field_validator("delimiter", mode="before")
    @classmethod
    def _known_delimiter(cls, value: Any) -> Any:
        if value is None:
            return None
        text = _DELIMITER_ALIASES.get(str(value).lower(), str(value))
        if text not in DELIMITERS:
            raise ValueError(
                f"delimiter {value!r} not supported; use one of "
                '",", ";", "\\t" (tab), "|", "whitespace"'
            )
        return text

    @field_validator("date_format", mode="before")
    @classmethod
    def _formats_as_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            return [_check_date_format(str(v)) for v in value]
        return value

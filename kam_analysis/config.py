"""Project configuration (``kam.toml``), validated with pydantic.

Business rules live here, not in code: column maps for real CRM/ERP
exports, weights, tier thresholds, KPI targets, scenarios, report
settings. Every section has documented defaults, so an empty file (or no
file) is a valid configuration. Unknown keys are errors: a misspelled
setting must not be silently ignored.

Example::

    [data]
    base_currency = "JPY"
    fiscal_year_start_month = 4

    [data.files]
    transactions = "uriage_meisai.csv"   # file name when it is not <table>.csv

    [columns.transactions]               # contract column = column in your export
    account_id = "得意先コード"
    date = "売上日"
    revenue = "売上金額"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kam_analysis.actions import ActionSettings
from kam_analysis.features import FeatureSettings
from kam_analysis.kpi import KpiSettings
from kam_analysis.ltv import LTVModelSettings
from kam_analysis.ltv.value import LtvSettings
from kam_analysis.pricing import PricingSettings
from kam_analysis.reports import ReportSettings
from kam_analysis.scenarios import ScenarioSettings
from kam_analysis.schemas import TABLE_MODELS, column_specs
from kam_analysis.segmentation import SegmentationSettings
from kam_analysis.stakeholders import StakeholderSettings
from kam_analysis.valuation import ValuationSettings


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or breaks a rule."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _known_table_keys(value: dict[str, str]) -> dict[str, str]:
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
        return _known_table_keys(value)

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


class DataSettings(_Section):
    """Where the data is and how to read it."""

    base_currency: str = Field("JPY", pattern=r"^[A-Z]{3}$", description="Reporting currency.")
    fiscal_year_start_month: int = Field(
        4, ge=1, le=12, description="First month of the fiscal year (4 = April, common in Japan)."
    )
    files: dict[str, str] = Field(
        default_factory=dict,
        description="Table name -> file name inside the dataset folder, when not <table>.<ext>.",
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
    def _known_tables(cls, value: dict[str, str]) -> dict[str, str]:
        _known_table_keys(value)
        for table, name in value.items():
            if Path(name).name != name:
                raise ValueError(f"files.{table} must be a file name inside the dataset folder")
        return value


class KamConfig(_Section):
    """The whole ``kam.toml``."""

    data: DataSettings = Field(default_factory=DataSettings)
    columns: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Per table: contract column name -> column name in the source file.",
    )
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    valuation: ValuationSettings = Field(default_factory=ValuationSettings)
    segmentation: SegmentationSettings = Field(default_factory=SegmentationSettings)
    kpi: KpiSettings = Field(default_factory=KpiSettings)
    ltv: LtvSettings = Field(default_factory=LtvSettings)
    ltv_models: LTVModelSettings = Field(default_factory=LTVModelSettings)
    stakeholders: StakeholderSettings = Field(default_factory=StakeholderSettings)
    scenarios: ScenarioSettings = Field(default_factory=ScenarioSettings)
    pricing: PricingSettings = Field(default_factory=PricingSettings)
    actions: ActionSettings = Field(default_factory=ActionSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    show_personal_data: bool = Field(
        False,
        description="Show stakeholder names and e-mails in reports (off: role + pseudonym).",
    )
    source_path: Path | None = Field(None, exclude=True, description="Where it was read from.")

    @model_validator(mode="after")
    def _known_columns(self) -> KamConfig:
        for table, mapping in self.columns.items():
            if table not in TABLE_MODELS:
                raise ValueError(
                    f"columns.{table}: unknown table; known: {', '.join(sorted(TABLE_MODELS))}"
                )
            known = {spec.name for spec in column_specs(table)}
            unknown = sorted(set(mapping) - known)
            if unknown:
                raise ValueError(
                    f"columns.{table}: {unknown} not in the contract; known: {sorted(known)}"
                )
            sources = list(mapping.values())
            duplicated = sorted({s for s in sources if sources.count(s) > 1})
            if duplicated:
                raise ValueError(f"columns.{table}: source column(s) {duplicated} mapped twice")
        return self


def _format_validation_error(path: Path | None, err: ValidationError) -> str:
    where = str(path) if path else "configuration"
    lines = [f"{where}: invalid configuration"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown setting (misspelled?)"
        lines.append(f"  - {loc}: {msg}")
    return "\n".join(lines)


def config_from_dict(raw: dict[str, Any], *, path: Path | None = None) -> KamConfig:
    """Validate a configuration given as a dictionary.

    Parameters
    ----------
    raw : dict
        Parsed TOML content.
    path : Path, optional
        File it came from, for messages.

    Returns
    -------
    KamConfig

    Raises
    ------
    ConfigError
        With one line per broken setting, naming its dotted path.
    """
    try:
        cfg = KamConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(path, err)) from None
    return cfg.model_copy(update={"source_path": path})


def load_config(path: str | Path | None = None) -> KamConfig:
    """Read and validate ``kam.toml``; no path gives the defaults.

    Parameters
    ----------
    path : str or Path, optional
        The TOML file.

    Returns
    -------
    KamConfig

    Raises
    ------
    ConfigError
        When the file is missing, is not valid TOML, or breaks a rule.
    """
    if path is None:
        return KamConfig()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: configuration file not found")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return config_from_dict(raw, path=path)

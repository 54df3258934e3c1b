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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kam_analysis.actions import ActionSettings
from kam_analysis.core.errors import InputError
from kam_analysis.core.schemas import TABLE_MODELS, column_specs
from kam_analysis.data.dataset import check_formulas
from kam_analysis.data.features import FeatureSettings
from kam_analysis.data.parsing import FormulaError
from kam_analysis.data.settings import DataSettings
from kam_analysis.kpi import KpiSettings
from kam_analysis.ltv import LTVModelSettings
from kam_analysis.ltv.value import LtvSettings
from kam_analysis.objectives import ObjectiveSettings
from kam_analysis.pricing import PricingSettings
from kam_analysis.scenarios import ScenarioSettings
from kam_analysis.segmentation import SegmentationSettings
from kam_analysis.stakeholders import StakeholderSettings
from kam_analysis.valuation import ValuationSettings

# --------------------------------------------------------------------------- report settings

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"


class NotebookSpec(BaseModel):
    """One report notebook of the run."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=_NAME_PATTERN, description="Output file stem, e.g. 01_account_valuation."
    )
    path: str = Field(
        description="Notebook path relative to the project root; notebooks/<name>.ipynb: "
        "the report notebooks that come with the package (also after pip install)."
    )
    title_en: str = Field(description="Report title in English.")
    title_ja: str = Field(description="Report title in Japanese.")
    parameters: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="Extra parameters for this notebook (declared in it)."
    )

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        p = Path(value)
        if p.is_absolute() or ".." in p.parts:
            raise ValueError("must be a path inside the project (relative, without '..')")
        if p.suffix != ".ipynb":
            raise ValueError("must name a .ipynb file")
        return value

    def title(self, lang: str) -> str:
        """The title in ``lang`` (``"ja"`` → Japanese, otherwise English)."""
        return self.title_ja if lang == "ja" else self.title_en


def _spec(name: str, en: str, ja: str) -> NotebookSpec:
    return NotebookSpec(name=name, path=f"notebooks/{name}.ipynb", title_en=en, title_ja=ja)


def default_notebooks() -> list[NotebookSpec]:
    """The portfolio report notebooks, in run order."""
    return [
        _spec("01_account_valuation", "Account valuation", "アカウント評価"),
        _spec("02_segmentation", "Segmentation", "セグメンテーション"),
        _spec("03_ltv_forecasting", "LTV forecasting", "LTV予測"),
        _spec("04_scenario_planning", "Scenario planning", "シナリオプランニング"),
        _spec("05_kpi_scorecard", "KPI scorecard", "KPIスコアカード"),
    ]


class ReportSettings(BaseModel):
    """``[reports]`` in ``kam.toml``: which notebooks run and how."""

    model_config = ConfigDict(extra="forbid")

    notebooks: list[NotebookSpec] = Field(
        default_factory=default_notebooks, description="Portfolio reports, in order."
    )
    account_plan: NotebookSpec | None = Field(
        default_factory=lambda: _spec("10_account_plan", "Account plan", "アカウントプラン"),
        description="Per-account plan notebook, run once per key account (None: no plans).",
    )
    account_plan_top_n: int = Field(
        10, ge=0, description="Account plans for this many top key accounts (0: none)."
    )
    jobs: int = Field(1, ge=1, le=64, description="Notebooks run in parallel.")
    kernel_name: str | None = Field(
        None,
        description="Jupyter kernel for the notebooks; none: the Python running kam "
        "(works wherever kam is installed, no kernel registration needed).",
    )
    cell_timeout: int = Field(600, ge=1, description="Seconds one cell may run.")
    run_timeout: int = Field(3600, ge=1, description="Seconds one notebook may run in total.")
    show_personal_data: bool = Field(
        False, description="Show stakeholder names (internal runs only); off = scan and refuse."
    )
    screenshots: bool = Field(False, description="PNG screenshot of every page (needs Chromium).")

    @model_validator(mode="after")
    def _unique_names(self) -> ReportSettings:
        names = [nb.name for nb in self.notebooks]
        if self.account_plan is not None:
            names.append(self.account_plan.name)
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"notebook names must be unique; repeated: {dupes}")
        return self


class ConfigError(InputError, ValueError):
    """The configuration file is missing, unreadable or breaks a rule."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KamConfig(_Section):
    """The whole ``kam.toml``."""

    data: DataSettings = Field(default_factory=DataSettings)
    columns: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Per table: contract column name -> column name in the source file, "
        'or a formula over its columns starting with = (e.g. "= Quantity * UnitPrice").',
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
    objectives: ObjectiveSettings = Field(default_factory=ObjectiveSettings)
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
            sources = [v for v in mapping.values() if not str(v).lstrip().startswith("=")]
            duplicated = sorted({s for s in sources if sources.count(s) > 1})
            if duplicated:
                raise ValueError(f"columns.{table}: source column(s) {duplicated} mapped twice")
        try:
            check_formulas(self.columns)
        except FormulaError as err:
            raise ValueError(str(err)) from None
        return self


def with_overrides(config: KamConfig, **sections: Mapping[str, Any]) -> KamConfig:
    """A copy of ``config`` with some settings of some sections replaced, validated.

    Parameters
    ----------
    config : KamConfig
    **sections : mapping
        Section name -> {setting: value}, e.g. ``ltv={"horizon_years": 5}``; a
        nested setting is given as a nested mapping and merged the same way.

    Returns
    -------
    KamConfig
        The other settings as in ``config`` (same ``source_path``).

    Raises
    ------
    ConfigError
        For an unknown section or setting, or a value that breaks a rule; the
        message names the dotted path.
    """
    raw = config.model_dump()
    for name, values in sections.items():
        if name not in KamConfig.model_fields or name == "source_path":
            known = sorted(set(KamConfig.model_fields) - {"source_path"})
            raise ConfigError(f"unknown settings section {name!r}; known: {', '.join(known)}")
        raw[name] = _merged(raw[name], values)
    where = config.source_path or Path("overrides")
    return config_from_dict(raw, path=where).model_copy(update={"source_path": config.source_path})


def _merged(base: Any, values: Any) -> Any:
    if isinstance(base, dict) and isinstance(values, Mapping):
        return {**base, **{k: _merged(base.get(k), v) for k, v in values.items()}}
    return values


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


CONFIG_NAME = "kam.toml"
"""A configuration file of this name inside a dataset folder is read by default."""


def find_config(data_dir: str | Path | None, explicit: str | Path | None = None) -> Path | None:
    """The configuration to read: the explicit one, else ``kam.toml`` in the dataset folder.

    Parameters
    ----------
    data_dir : str or Path, optional
        The dataset folder.
    explicit : str or Path, optional
        A path given with ``--config`` (or a notebook's ``config_path``).

    Returns
    -------
    Path or None
        None when neither exists (defaults apply).
    """
    if explicit not in (None, ""):
        return Path(explicit)  # type: ignore[arg-type]
    if data_dir is not None:
        candidate = Path(data_dir) / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


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

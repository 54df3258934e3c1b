"""kam.toml: defaults, validation, clear errors."""

from __future__ import annotations

import pytest

from kam_analysis.config import ConfigError, KamConfig, config_from_dict, load_config


def test_no_file_gives_defaults():
    cfg = load_config(None)
    assert cfg == KamConfig()
    assert cfg.data.base_currency == "JPY" and cfg.data.fiscal_year_start_month == 4


def test_reads_toml_with_japanese_column_names(tmp_path):
    path = tmp_path / "kam.toml"
    path.write_text(
        '[data]\nfiscal_year_start_month = 1\n\n[columns.transactions]\nrevenue = "売上金額"\n',
        encoding="utf-8",
    )
    cfg = load_config(path)
    assert cfg.data.fiscal_year_start_month == 1
    assert cfg.columns == {"transactions": {"revenue": "売上金額"}}
    assert cfg.source_path == path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"data": {"base_curency": "JPY"}}, "data.base_curency: unknown setting (misspelled?)"),
        ({"data": {"fiscal_year_start_month": 13}}, "data.fiscal_year_start_month"),
        ({"columns": {"invoices": {"revenue": "x"}}}, "columns.invoices: unknown table"),
        ({"columns": {"transactions": {"turnover": "x"}}}, "['turnover'] not in the contract"),
        (
            {"columns": {"transactions": {"revenue": "x", "cost": "x"}}},
            "source column(s) ['x'] mapped twice",
        ),
        ({"data": {"files": {"transactions": "../etc/passwd"}}}, "must be a file name"),
    ],
)
def test_bad_settings_are_named(raw, expected):
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert expected in str(err.value)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


@pytest.mark.parametrize(
    "section",
    [
        "data",
        "features",
        "valuation",
        "segmentation",
        "kpi",
        "ltv_models",
        "stakeholders",
        "scenarios",
        "pricing",
        "actions",
        "objectives",
        "reports",
    ],
)
def test_every_section_rejects_misspelled_settings(section):
    with pytest.raises(ConfigError, match="unknown setting"):
        config_from_dict({section: {"zz_misspelled": 1}})


def test_objectives_section_is_read_and_checked(tmp_path):
    path = tmp_path / "kam.toml"
    path.write_text(
        '[objectives]\ntolerance = 0.25\nreview_kind = "executive_meeting"\n'
        "exec_window_days = 90\n",
        encoding="utf-8",
    )
    cfg = load_config(path).objectives
    assert (cfg.tolerance, cfg.review_kind, cfg.exec_window_days) == (
        0.25, "executive_meeting", 90,
    )  # fmt: skip
    assert KamConfig().objectives.tolerance == 0.10  # the default of ObjectiveSettings
    with pytest.raises(ConfigError, match=r"objectives\.tolerance"):
        config_from_dict({"objectives": {"tolerance": 1.5}})
    with pytest.raises(ConfigError, match=r"objectives\.exec_window_days"):
        config_from_dict({"objectives": {"exec_window_days": 0}})

"""``kam export``: the account table for the CRM (kam_analysis/pipeline/export.py).

End to end on a dataset written by ``kam synth`` (with a Japanese and a
formula-like account name put in), the numbers against the context the
reports read (ctx.scored, ctx.ltv_values, the KPI page's health), the file
formats, the refusals, and the real CDNOW sample (no cost, no wallet).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kam_analysis import objectives as ob
from kam_analysis.cli import main
from kam_analysis.context import load_context
from kam_analysis.pipeline.export import (
    EXPORT_COLUMNS,
    EXPORT_NOTES,
    ExportError,
    account_export,
    write_export,
)

README = Path(__file__).parents[1] / "README.md"
KPI_NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "05_kpi_scorecard.ipynb"
CDNOW = Path(__file__).parent / "data" / "real" / "cdnow"
JA_NAME = "株式会社やまと電機"
FORMULA_NAME = '=HYPERLINK("http://x","y")'
COLUMNS = [c.name for c in EXPORT_COLUMNS]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """80 accounts from ``kam synth``; account 1 renamed in Japanese, account 2 like a formula.

    Its kam.toml lowers ``[kpi] health_min_events`` so that the health weights are fitted.
    """
    folder = tmp_path_factory.mktemp("export") / "ds"
    assert main(["synth", "--out", str(folder), "--accounts", "80", "--seed", "7"]) == 0
    accounts = pd.read_parquet(folder / "accounts.parquet")
    accounts.loc[0, "name"] = JA_NAME
    accounts.loc[1, "name"] = FORMULA_NAME
    accounts.to_parquet(folder / "accounts.parquet", index=False)
    # few churn events at 80 accounts: let the KPI page fit its health weights anyway
    (folder / "kam.toml").write_text("[kpi]\nhealth_min_events = 2\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def exported(synth: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """``kam export`` of the synthetic dataset, read back from Parquet."""
    out = tmp_path_factory.mktemp("out") / "accounts_crm.parquet"
    assert main(["export", str(synth), "--out", str(out)]) == 0
    return pd.read_parquet(out)


@pytest.fixture(scope="module")
def ctx(synth: Path):
    """The context a report notebook opens on the same folder (fresh, own caches)."""
    return load_context(synth)


@pytest.fixture(scope="module")
def direct(ctx) -> pd.DataFrame:
    """:func:`account_export` on ``ctx``: the same fitted models as ``ctx``'s reports."""
    return account_export(ctx)


# Two contexts on one folder agree to ~1e-13 on sums (DuckDB adds floats in thread
# order), which model fits carry to ~1e-7 of an LTV; within a context they are identical.
ACROSS_RUNS = 1e-6


# --------------------------------------------------------------------------- the numbers


def test_one_row_per_account_with_every_documented_column(exported, synth):
    accounts = pd.read_parquet(synth / "accounts.parquet")
    assert len(exported) == len(accounts) == 80
    assert exported["account_id"].is_unique
    assert set(exported["account_id"]) == set(accounts["account_id"].astype(str))
    assert list(exported.columns) == COLUMNS
    assert (exported["as_of"] == "2026-03-31").all()
    assert (exported["currency"] == "JPY").all()


def test_the_cli_writes_what_account_export_gives(exported, direct):
    assert list(exported.columns) == list(direct.columns)
    for col in exported.columns:
        if pd.api.types.is_float_dtype(direct[col]):
            np.testing.assert_allclose(
                exported[col].to_numpy(dtype=float),
                direct[col].to_numpy(dtype=float),
                rtol=ACROSS_RUNS,
                err_msg=col,
            )
        else:
            assert exported[col].tolist() == direct[col].tolist(), col


def test_tiers_scores_and_value_equal_ctx_scored(direct, ctx):
    scored = ctx.scored.assign(account_id=lambda d: d["account_id"].astype(str))
    scored = scored.set_index("account_id").loc[direct["account_id"]]
    for col in ("status", "tier", "tier_reason", "name", "win_back"):
        assert direct[col].tolist() == scored[col].tolist(), col
    for col in ("score", "rank", "revenue_12m", "gross_profit_12m", "share_of_wallet"):
        np.testing.assert_array_equal(
            direct[col].to_numpy(dtype=float), scored[col].to_numpy(dtype=float), err_msg=col
        )
    assert direct["rank"].tolist() == sorted(direct["rank"])  # best first
    assert set(direct["tier"]) <= {"key", "growth", "standard"}
    lost = direct["status"].isin(["lapsed", "churned"])
    assert lost.any() and not direct.loc[lost, "tier"].isin(["key", "growth"]).any()
    assert direct["tier"].eq("key").any()


def test_ltv_and_churn_risk_equal_the_ltv_report(direct, ctx):
    # notebook 03 shows res = ctx.ltv, whose table is ctx.ltv_values.ltv (context.py; not
    # asserted here: ctx.ltv also runs the backtests)
    ltv = ctx.ltv_values.ltv.assign(account_id=lambda d: d["account_id"].astype(str))
    ltv = ltv.set_index("account_id").loc[direct["account_id"]]
    for col in ("ltv", "ltv_lower", "ltv_upper", "churn_risk_12m"):
        np.testing.assert_array_equal(
            direct[col].to_numpy(dtype=float), ltv[col].to_numpy(dtype=float), err_msg=col
        )
    assert direct["ltv_model"].tolist() == ltv["model"].tolist()
    assert (direct["ltv_basis"] == "gross_profit").all()
    churned = direct["ltv_model"] == "churned"
    assert churned.any() and (direct.loc[churned, "ltv"] == 0).all()
    assert direct.loc[churned, "notes"].str.contains("ltv_churned").all()
    assert direct.loc[~churned, "ltv"].notna().all()


def _kpi_page_cells(synth: Path, *, plans: bool = False) -> dict:
    """Run the parameters, setup and health cells of the KPI report itself (and its plan
    attainment cell); their variables."""
    nb = json.loads(KPI_NOTEBOOK.read_text(encoding="utf-8"))
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    health_cell = next(c for c in code if "kpi.balanced_scorecard(" in c)
    namespace: dict = {}
    exec(code[0], namespace)  # parameters (papermill would inject these)
    namespace.update(data_dir=str(synth), as_of="", config_path="", lang="en")
    exec(code[1], namespace)  # load_context, Page, the page's KPI settings
    exec(health_cell, namespace)
    if plans:
        exec(next(c for c in code if "objectives.fiscal_year_plans(" in c), namespace)
    return namespace


def test_health_equals_the_kpi_page(direct, synth):
    page = _kpi_page_cells(synth)
    assert page["validation"].fitted  # fitted weights, not the configured ones
    shown = page["health"].set_index("account_id")["health_score"]
    shown = shown.reindex(direct["account_id"])
    assert shown.notna().sum() > 40
    np.testing.assert_array_equal(direct["health_score"].to_numpy(dtype=float), shown.to_numpy())
    assert (direct["health_period"] == str(page["card"]["period"].iloc[0])).all()


OBJECTIVE_COLUMNS = [
    "objectives_on_track",
    "objectives_at_risk",
    "objectives_missed",
    "objectives_achieved",
]


def test_objective_counts_equal_plan_attainment(direct, ctx, synth):
    progress = ctx.objective_progress
    assert progress is not None and len(progress) > 10
    counts = ob.plan_attainment(progress, direct["account_id"])
    for col in OBJECTIVE_COLUMNS:
        assert direct[col].dtype == "Int64", col
        assert direct[col].tolist() == counts[col.removeprefix("objectives_")].tolist(), col
    # every objective of the table is counted once, under its assessed status
    goals = pd.read_parquet(synth / "account_objectives.parquet")
    per_account = goals.groupby("account_id").size()
    others = counts[["planned", "dropped", "no_data"]].sum(axis=1).to_numpy()
    total = direct[OBJECTIVE_COLUMNS].sum(axis=1).to_numpy() + others
    np.testing.assert_array_equal(total, per_account.reindex(direct["account_id"]).fillna(0))
    assert direct[OBJECTIVE_COLUMNS].to_numpy().sum() > 0
    assert (direct.loc[~direct["account_id"].isin(per_account.index), OBJECTIVE_COLUMNS] == 0).all(
        axis=None
    )
    assert not direct["notes"].str.contains("no_objectives_table").any()


def test_objective_counts_equal_the_kpi_page(direct, synth):
    page = _kpi_page_cells(synth, plans=True)
    shown = page["fy"].set_index("account_id")
    assert len(shown) == len(page["key_ids"]) > 0 and shown["n_objectives"].sum() > 0
    mine = direct.set_index("account_id").loc[shown.index]
    for col in OBJECTIVE_COLUMNS:
        assert mine[col].tolist() == shown[col.removeprefix("objectives_")].tolist(), col


def test_notes_name_every_empty_value_and_nothing_else(exported):
    notes = exported["notes"].fillna("")
    for code, col in (
        ("no_cost_data", "gross_profit_12m"),
        ("no_wallet_estimate", "share_of_wallet"),
        ("ltv_not_valued", "ltv"),
        ("no_kpi_data", "health_score"),
        ("no_objectives_table", "objectives_on_track"),
    ):
        assert (notes.str.contains(code) == exported[col].isna()).all(), code
    used = {c for n in notes for c in n.split("; ") if c}
    assert used <= set(EXPORT_NOTES)


# --------------------------------------------------------------------------- files


def test_csv_excel_and_parquet_round_trip(synth, exported, direct, tmp_path):
    csv, xl, pq = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.parquet"
    assert main(["export", str(synth), "--out", str(xl), "--excel"]) == 0  # end to end
    write_export(direct, csv)
    write_export(direct, pq)
    assert not csv.read_bytes().startswith(b"\xef\xbb\xbf")
    assert xl.read_bytes().startswith(b"\xef\xbb\xbf")
    assert JA_NAME.encode("utf-8") in xl.read_bytes()
    read = {"dtype": {"account_id": str}, "keep_default_na": False, "na_values": [""]}
    plain = pd.read_csv(csv, encoding="utf-8", **read)
    excel = pd.read_csv(xl, encoding="utf-8-sig", **read)
    pd.testing.assert_frame_equal(pd.read_parquet(pq), direct)
    for col in ("score", "revenue_12m", "ltv", "ltv_upper", "health_score"):
        np.testing.assert_array_equal(plain[col].to_numpy(), direct[col].to_numpy(dtype=float))
        np.testing.assert_allclose(
            excel[col], exported[col].to_numpy(dtype=float), rtol=ACROSS_RUNS
        )
    assert (
        plain["account_id"].tolist()
        == excel["account_id"].tolist()
        == exported["account_id"].tolist()
    )
    assert plain["notes"].fillna("").tolist() == direct["notes"].tolist()
    assert JA_NAME in plain["name"].tolist() and JA_NAME in excel["name"].tolist()
    # Excel would run a cell that starts with "=": the --excel file carries it as text
    assert FORMULA_NAME in plain["name"].tolist()
    assert "'" + FORMULA_NAME in excel["name"].tolist()
    assert FORMULA_NAME not in excel["name"].tolist()


def test_write_export_is_atomic_and_keeps_an_existing_file(tmp_path):
    table = pd.DataFrame({"account_id": ["A1"], "name": [JA_NAME], "ltv": [np.nan]})
    out = tmp_path / "sub" / "x.csv"
    write_export(table, out)
    assert out.read_text(encoding="utf-8") == f"account_id,name,ltv\nA1,{JA_NAME},\n"
    with pytest.raises(ExportError, match="exists; pass --force"):
        write_export(table.assign(account_id="B2"), out)
    assert "A1" in out.read_text(encoding="utf-8")
    write_export(table.assign(account_id="B2"), out, force=True)
    assert "B2" in out.read_text(encoding="utf-8")
    assert sorted(p.name for p in out.parent.iterdir()) == ["x.csv"]  # no temporary left


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("name", "extra", "message"),
    [
        ("accounts.xlsx", [], "cannot write .xlsx; name the file .csv or .parquet"),
        ("accounts", [], "cannot write a file without extension"),
        ("accounts.parquet", ["--excel"], "--excel writes CSV"),
    ],
)
def test_bad_out_is_refused_before_any_work(tmp_path, capsys, name, extra, message):
    out = tmp_path / name
    assert main(["export", str(tmp_path / "no-such-folder"), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and str(out) in err
    assert not out.exists()


def test_missing_dataset_folder_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "x.csv"
    assert main(["export", str(tmp_path / "missing"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "dataset folder not found" in err and "missing" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_existing_out_needs_force(synth, tmp_path, capsys):
    out = tmp_path / "crm.csv"
    out.write_text("mine\n")
    assert main(["export", str(synth), "--out", str(out)]) == 2
    assert "exists; pass --force to replace it" in capsys.readouterr().err
    assert out.read_text() == "mine\n"
    assert main(["export", str(synth), "--out", str(out), "--force", "--skip-validation"]) == 0
    assert len(pd.read_csv(out)) == 80


def test_out_named_like_a_table_inside_the_dataset_is_refused(synth, capsys):
    out = synth / "transactions.csv"
    assert main(["export", str(synth), "--out", str(out)]) == 2
    assert "would be read as its transactions table" in capsys.readouterr().err
    assert not out.exists()


# --------------------------------------------------------------------------- documentation


def test_every_column_and_note_is_documented(capsys):
    assert main(["dictionary", "--table", "export", "--format", "csv"]) == 0
    listed = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert listed["column"].tolist()[: len(COLUMNS)] == COLUMNS
    assert listed["description"].notna().all()
    section = (
        README.read_text(encoding="utf-8").split("### `kam export`", 1)[1].split("\n## ", 1)[0]
    )
    for name in [*COLUMNS, *EXPORT_NOTES]:
        assert f"`{name}`" in section, name


# --------------------------------------------------------------------------- real data


def test_cdnow_sample_without_cost_or_wallet(tmp_path):
    folder = Path(shutil.copytree(CDNOW, tmp_path / "cdnow"))  # readers cache next to the data
    out = tmp_path / "cdnow.csv"
    assert main(["export", str(folder), "--out", str(out)]) == 0
    table = pd.read_csv(out, dtype={"account_id": str, "name": str})  # ids like 00010
    ctx = load_context(folder)
    assert len(table) == len(ctx.scored) == 2357
    assert table["gross_profit_12m"].isna().all()  # empty, never 0
    assert table["share_of_wallet"].isna().all()
    assert table["notes"].str.contains("no_cost_data; no_wallet_estimate").all()
    # no account_objectives table: the counts are empty, never 0, and notes say why
    assert ctx.objective_progress is None
    assert table[["objectives_on_track", "objectives_at_risk"]].isna().all(axis=None)
    assert table[["objectives_missed", "objectives_achieved"]].isna().all(axis=None)
    assert table["notes"].str.endswith("no_objectives_table").all()
    assert (table["ltv_basis"] == "revenue").all()
    unvalued = table["ltv_model"] == "none"
    assert table.loc[unvalued, "ltv"].isna().all()
    assert table.loc[unvalued, "notes"].str.contains("ltv_not_valued").all()
    assert table.loc[~unvalued, "ltv"].notna().all()
    assert (table["account_id"] == table["name"]).all()  # no accounts file: the id
    scored = ctx.scored.set_index("account_id").loc[table["account_id"]]
    assert table["tier"].tolist() == scored["tier"].tolist()
    assert table["status"].tolist() == scored["status"].tolist()
    np.testing.assert_array_equal(table["score"], scored["score"].to_numpy(dtype=float))

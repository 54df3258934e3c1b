"""The whole chain on data we did not design: the real CDNOW sample, the Superstore
order lines and the messy ERP export of the demo (tests/data/real/README.md).

Fast tests read each export with its kam.toml only and check the numbers the
reports rest on against sums computed independently with pandas; the slow test
runs ``kam run`` on them and reads every page.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kam_analysis.cli import main
from kam_analysis.config import find_config, load_config
from kam_analysis.context import load_context
from kam_analysis.data import validate_dataset as _validate


def validate_dataset(folder: Path):
    """Validate with the folder's own kam.toml, as ``kam validate`` does."""
    return _validate(folder, config=load_config(find_config(folder)))


REAL = Path(__file__).parent / "data" / "real"


def copy_sample(name: str, tmp_path: Path) -> Path:
    """A private copy: readers write their caches next to the data."""
    return Path(shutil.copytree(REAL / name, tmp_path / name))


def cdnow_lines(folder: Path) -> pd.DataFrame:
    """The CDNOW sample read independently of the reader."""
    return pd.read_csv(
        folder / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["id", "date", "cds", "amount"],
        dtype={"id": str, "date": str},
    ).assign(date=lambda d: pd.to_datetime(d["date"], format="%Y%m%d"))


# --------------------------------------------------------------------------- CDNOW


def test_cdnow_sample_validates_with_its_kam_toml(tmp_path, capsys):
    folder = copy_sample("cdnow", tmp_path)
    assert main(["validate", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "as of 1998-06-30" in out  # the last purchase, not today
    assert "whitespace-delimited; no header row" in out
    assert "2,357 rows  (derived from CDNOW_sample.txt" in out


def test_cdnow_sample_scores_on_what_it_has(tmp_path):
    folder = copy_sample("cdnow", tmp_path)
    lines = cdnow_lines(folder)
    ctx = load_context(folder)
    assert ctx.as_of.isoformat() == "1998-06-30"
    features = ctx.features.set_index("account_id")
    # trailing 12 months 1997-07-01..1998-06-30, computed here with pandas
    recent = lines[lines["date"] >= "1997-07-01"].groupby("id")["amount"].sum()
    assert features["revenue_12m"].sum() == pytest.approx(recent.sum())
    assert features.loc[recent.index, "revenue_12m"].to_numpy() == pytest.approx(recent.to_numpy())
    assert features["gross_profit_12m"].isna().all()  # no cost: unknown, not 0
    assert features["revenue_growth"].isna().all()  # 18 months: no previous year
    assert not ctx.coverage.covers_prev_12m
    crit = ctx.criteria.set_index("criterion")
    used = set(crit.index[crit["available"]])
    assert used == {"revenue_12m", "trend"}
    assert crit.loc["gross_profit_12m", "reason"] == "no_cost"
    assert crit.loc["revenue_growth", "reason"] == "window_not_covered"
    assert crit.loc[list(used), "weight_used"].sum() == pytest.approx(1.0)
    scored = ctx.scored
    assert (scored["tier"] == "key").sum() >= 1
    key = scored[scored["tier"] == "key"]
    # key accounts are the best scores, and the score follows the 12-month revenue
    assert key["score"].min() >= scored.loc[scored["tier"] != "key", "score"].max()
    rho = scored["score"].rank().corr(scored["revenue_12m"].rank())
    assert rho > 0.6


def test_cdnow_sample_ltv_is_revenue_and_positive(tmp_path):
    folder = copy_sample("cdnow", tmp_path)
    ctx = load_context(folder)
    res = ctx.ltv
    assert res.basis == "revenue"
    valued = res.valued
    assert len(valued) > 2000 and valued["ltv"].sum() > 0
    recent = ctx.features.loc[ctx.features["recency_days"] <= 90, "account_id"]
    assert (valued.set_index("account_id").loc[recent, "ltv"] > 0).all()
    assert np.isfinite(valued["ltv"]).all()


# --------------------------------------------------------------------------- Superstore


def test_superstore_cost_formula_and_carried_accounts(tmp_path):
    folder = copy_sample("superstore", tmp_path)
    raw = pd.read_csv(folder / "superstore_sample.csv", parse_dates=["Order Date"])
    report = validate_dataset(folder)
    assert report.ok, report.render_text()
    ctx = load_context(folder)
    as_of = pd.Timestamp(ctx.as_of)
    assert as_of == raw["Order Date"].max()
    window = raw[raw["Order Date"] > as_of - pd.DateOffset(months=12)]
    features = ctx.features.set_index("account_id")
    # cost = Sales - Profit, so gross profit is the export's own profit
    assert features["gross_profit_12m"].sum() == pytest.approx(window["Profit"].sum())
    assert features["revenue_12m"].sum() == pytest.approx(window["Sales"].sum())
    orders = window.groupby("Customer ID")["Order ID"].nunique()
    assert features.loc[orders.index, "orders_12m"].tolist() == orders.tolist()
    accounts = ctx.frame("accounts").set_index("account_id")
    mode = raw.groupby("Customer ID")["Segment"].agg(lambda s: s.value_counts().index[0])
    assert accounts.loc[mode.index, "industry"].tolist() == mode.tolist()
    assert accounts.loc["AA-10315", "name"] == "Alex Avila"
    assert (ctx.scored["tier"] == "key").sum() >= 1


# --------------------------------------------------------------------------- the messy export


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    from kam_analysis.synthetic import generate_dataset, generate_messy_export

    root = tmp_path_factory.mktemp("messy")
    generate_messy_export(root / "messy", n_accounts=200, seed=3)
    generate_dataset(root / "clean", n_accounts=200, seed=3)
    return root / "messy", root / "clean"


def test_messy_export_reads_back_to_the_clean_book(messy):
    folder, clean = messy
    report = validate_dataset(folder)
    assert report.ok, report.render_text()
    summary = report.summary
    assert summary["tables"]["transactions"]["encoding"] == "cp1252"
    assert summary["credit_notes"]["lines"] > 0
    assert summary["unattributed"]["line_share"] == pytest.approx(0.20, abs=0.01)
    ctx = load_context(folder)
    truth = json.loads((clean / "ground_truth.json").read_text())
    assert ctx.as_of.isoformat() == truth["params"]["as_of"]
    tx = pd.read_parquet(clean / "transactions.parquet")
    tx = tx[tx["date"] <= pd.Timestamp(ctx.as_of)]
    expected = tx.groupby("account_id")["revenue"].sum()
    got = ctx.dataset.to_pandas("transactions").groupby("account_id")["revenue"].sum()
    assert set(got.index) == set(expected.index)
    # unit prices have two decimals: at most half a cent per unit sold off
    assert got.to_numpy() == pytest.approx(expected.loc[got.index].to_numpy(), rel=1e-6)
    assert (ctx.scored["tier"] == "key").sum() >= 1


# --------------------------------------------------------------------------- end to end

FORBIDDEN = [
    (re.compile(r"\bnan\b", re.I), "nan"),
    (re.compile(r"\binf\b|∞", re.I), "inf"),
    (re.compile(r"\bNone\b"), "None"),
    (re.compile(r"\*\*"), "**"),
]
PERCENT = re.compile(r"(?<![<>] )(?<![<>])([-+]?[\d,]+(?:\.\d+)?)\s?%")


def page_text(path: Path) -> str:
    """The visible text of a report page (no tags, scripts or styles)."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S | re.I)
    text = re.sub(r'src="data:[^"]*"', "", text)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


def page_problems(path: Path) -> list[str]:
    text = page_text(path)
    found = [label for pattern, label in FORBIDDEN if pattern.search(text)]
    for m in PERCENT.finditer(text):
        if abs(float(m.group(1).replace(",", ""))) > 1000:
            found.append(f"{m.group(0)} > 1,000 %")
    return found


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.parametrize("dataset", ["cdnow", "messy"])
def test_kam_run_on_real_exports(dataset, tmp_path, messy):
    if dataset == "cdnow":
        folder = copy_sample("cdnow", tmp_path)
    else:
        folder = Path(shutil.copytree(messy[0], tmp_path / "messy"))
    reports = tmp_path / "reports"
    code = main(
        [
            "run",
            "--data",
            str(folder),
            "--reports-dir",
            str(reports),
            "--account-plans",
            "2",
            "--jobs",
            "2",
        ]
    )
    manifest = json.loads((reports / "latest" / "manifest.json").read_text())
    assert code == 0, manifest.get("error")
    assert all(nb["status"] == "ok" for nb in manifest["notebooks"])
    recorded = manifest["recorded"]
    assert recorded["02_segmentation"]["n_key_accounts"] >= 1
    assert recorded["03_ltv_forecasting"]["ltv_total"] > 0
    assert manifest["data"]["summary"]["tables"]["transactions"]["rows"] > 0
    problems = {
        page.name: page_problems(page)
        for page in (reports / "latest").glob("*.html")
        if page.name != "index.html"
    }
    assert not any(problems.values()), problems

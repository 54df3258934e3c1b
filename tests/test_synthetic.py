"""Tests for the synthetic dataset generator: contract conformity and planted truths."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import math
import re
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kam_analysis import synthetic
from kam_analysis.cli import main
from kam_analysis.core.schemas import (
    CANONICAL_TABLES,
    OPEN_STAGES,
    STANCES,
    column_specs,
)
from kam_analysis.synthetic import (
    MESSY_EXPORT_COLUMNS,
    MESSY_EXPORT_DATE_FORMAT,
    MESSY_EXPORT_FILE,
    PRODUCT_LINES,
    generate_dataset,
    generate_messy_export,
    industry_product_preferences,
)

AS_OF = pd.Timestamp("2026-03-31")
N_SMALL = 300
TRUTH_COLUMNS = [
    "account_id",
    "true_tier",
    "annual_growth",
    "true_wallet",
    "true_share_of_wallet",
    "nps_latent",
    "exec_engaged",
    "utilisation",
    "contractual",
    "churned",
    "churn_date",
    "monthly_hazard",
    "single_threaded",
    "no_executive_stakeholder",
    "high_influence_blocker",
]


def _read(folder) -> dict[str, pd.DataFrame]:
    tables = {t: pd.read_parquet(folder / f"{t}.parquet") for t in CANONICAL_TABLES}
    tables["truth"] = pd.read_parquet(folder / "ground_truth_accounts.parquet")
    return tables


@pytest.fixture(scope="session")
def small(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth") / "small"
    summary = generate_dataset(folder, n_accounts=N_SMALL, seed=11)
    return folder, summary, _read(folder)


@pytest.fixture(scope="session")
def default_size(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth") / "n2000"
    generate_dataset(folder, n_accounts=2000, seed=0)
    return folder, _read(folder)


# --------------------------------------------------------------------------- files and contract


def test_writes_every_table_and_a_matching_summary(small):
    folder, summary, t = small
    for table in CANONICAL_TABLES:
        assert (folder / f"{table}.parquet").is_file()
        assert summary["rows"][table] == len(t[table]) > 0
    assert summary["as_of"] == "2026-03-31"
    assert summary["rows"]["accounts"] == N_SMALL
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_columns_are_exactly_those_of_the_contract(small):
    _, _, t = small
    for table in CANONICAL_TABLES:
        expected = [spec.name for spec in column_specs(table)]
        assert list(t[table].columns) == expected, table


def test_date_columns_are_parquet_timestamps(small):
    folder, _, _ = small
    n_dates = 0
    for table in CANONICAL_TABLES:
        schema = pq.read_schema(folder / f"{table}.parquet")
        for spec in column_specs(table):
            field_type = schema.field(spec.name).type
            if spec.kind == "date":
                n_dates += 1
                assert pa.types.is_timestamp(field_type), (table, spec.name, field_type)
                assert field_type.unit in ("us", "ns")
            elif spec.kind == "integer":
                assert pa.types.is_integer(field_type), (table, spec.name)
            elif spec.kind == "amount":
                assert pa.types.is_floating(field_type), (table, spec.name)
    assert n_dates == 17  # 13 + account_team since, until + objective start_date, due_date
    truth_schema = pq.read_schema(folder / "ground_truth_accounts.parquet")
    assert pa.types.is_timestamp(truth_schema.field("churn_date").type)


def _check_column(values: pd.Series, spec, as_of: pd.Timestamp) -> list[str]:
    """Apply one contract column's rules (a plain re-implementation of the pandera checks)."""
    problems = []
    present = values.dropna()
    if not spec.nullable and len(present) != len(values):
        problems.append("nulls in a non-nullable column")
    if spec.unique and values.duplicated().any():
        problems.append("duplicates in a unique column")
    for name, stats in spec.checks:
        if name == "isin":
            bad = ~present.isin(stats["allowed_values"])
        elif name == "in_range":
            bad = (present < stats["min_value"]) | (present > stats["max_value"])
        elif name == "greater_than_or_equal_to":
            bad = present < stats["min_value"]
        elif name == "greater_than":
            bad = present <= stats["min_value"]
        elif name == "str_matches":
            bad = ~present.astype(str).str.fullmatch(stats["pattern"].strip("^$"))
        else:
            raise AssertionError(f"unhandled check {name}")
        if bad.any():
            problems.append(f"{name} fails for {present[bad].head(3).tolist()}")
    if spec.kind == "integer" and len(present):
        assert np.allclose(present, np.round(present))
    if spec.not_after_as_of and (present > as_of).any():
        problems.append(f"dates after as-of: {present[present > as_of].head(3).tolist()}")
    return problems


def test_every_column_follows_the_contract_rules(small):
    _, _, t = small
    problems = {}
    for table in CANONICAL_TABLES:
        for spec in column_specs(table):
            found = _check_column(t[table][spec.name], spec, AS_OF)
            if found:
                problems[(table, spec.name)] = found
    assert problems == {}


def test_cross_table_rules(small):
    _, _, t = small
    ids = set(t["accounts"].account_id)
    for table in CANONICAL_TABLES:
        assert set(t[table].account_id) <= ids, table
    c = t["contracts"]
    assert (c.end_date >= c.start_date).all()
    has = c.go_live_date.notna()
    assert (c.go_live_date[has] >= c.signed_date[has]).all()
    assert set(c.currency) == {"JPY"} and set(t["transactions"].currency) == {"JPY"}
    u = t["usage"]
    assert (u.seats_active <= u.seats_purchased).all()
    assert (u.month.dt.day == 1).all()
    assert not u.duplicated(["account_id", "month"]).any()
    s = t["stakeholders"]
    assert set(s.reports_to.dropna()) <= set(s.contact_id)
    boss_account = s.set_index("contact_id").account_id
    with_boss = s[s.reports_to.notna()]
    assert (
        with_boss.reports_to.map(boss_account).to_numpy() == with_boss.account_id.to_numpy()
    ).all()
    a = t["activities"]
    assert set(a.contact_id.dropna()) <= set(s.contact_id)


def test_org_chart_is_a_tree_with_executives_on_top(small):
    _, _, t = small
    s = t["stakeholders"].set_index("contact_id")
    counts = s.groupby("account_id").size()
    assert counts.between(1, 8).all()
    roots = s[s.reports_to.isna()]
    assert roots.account_id.is_unique and set(roots.account_id) == set(s.account_id)
    has_exec = s.groupby("account_id").role.agg(lambda r: (r == "executive").any())
    assert (roots.set_index("account_id").role[has_exec[has_exec].index] == "executive").all()
    assert s.loc[s.role == "executive", "influence"].min() >= 4
    # Every path climbs to a root within two steps (no cycles).
    boss = s.reports_to
    up2 = boss.map(boss)
    assert up2.map(boss).isna().all()


def test_opportunity_stages_and_dates(small):
    _, _, t = small
    o = t["opportunities"]
    open_ = o.stage.isin(OPEN_STAGES)
    assert open_.any() and (~open_).any()
    assert (o.loc[open_ & o.close_date.notna(), "close_date"] > AS_OF).all()
    assert (o.loc[~open_, "close_date"] <= AS_OF).all()
    assert (o.loc[~open_, "created_date"] <= o.loc[~open_, "close_date"]).all()
    assert o.probability.isna().any()
    won = o.stage == "closed_won"
    assert (o.loc[won & o.probability.notna(), "probability"] == 1).all()
    assert 0.08 < o.is_poc.mean() < 0.25


def test_fake_personal_data_looks_japanese_and_uses_example_domain(small):
    _, _, t = small
    s = t["stakeholders"]
    assert s.name.str.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+").all()
    assert s.email.str.fullmatch(r"[a-z]+\.[a-z]+\.\d+@example\.co\.jp").all()
    a = t["accounts"]
    assert a.name.is_unique
    assert a.name.str.contains(r"(?:K\.K\.|Co\., Ltd\.|Corporation)$").all()
    assert a.account_manager.notna().all()


# --------------------------------------------------------------------------- determinism, chunking


def test_same_seed_gives_identical_tables(small, tmp_path):
    _, _, first = small
    generate_dataset(tmp_path / "again", n_accounts=N_SMALL, seed=11)
    again = _read(tmp_path / "again")
    for table, df in first.items():
        pd.testing.assert_frame_equal(df, again[table], obj=table)
    a = json.loads((tmp_path / "again" / "ground_truth.json").read_text())
    assert a["params"]["seed"] == 11


def test_different_seed_gives_different_data(small, tmp_path):
    _, _, first = small
    generate_dataset(tmp_path / "other", n_accounts=N_SMALL, seed=12)
    other = _read(tmp_path / "other")
    assert (
        not first["transactions"].revenue.head(100).equals(other["transactions"].revenue.head(100))
    )
    assert not first["truth"].true_tier.equals(other["truth"].true_tier)


def test_chunking_changes_row_groups_but_not_content(tmp_path, monkeypatch):
    # Small RNG blocks so that 250 accounts span three of them.
    monkeypatch.setattr(synthetic, "RNG_BLOCK_ACCOUNTS", 100)
    generate_dataset(tmp_path / "one", n_accounts=250, seed=5, chunk_accounts=5000)
    generate_dataset(tmp_path / "many", n_accounts=250, seed=5, chunk_accounts=40)
    one, many = _read(tmp_path / "one"), _read(tmp_path / "many")
    for table in one:
        pd.testing.assert_frame_equal(one[table], many[table], obj=table)
    assert pq.ParquetFile(tmp_path / "many" / "transactions.parquet").num_row_groups == 7
    assert pq.ParquetFile(tmp_path / "one" / "transactions.parquet").num_row_groups == 1
    assert pq.read_schema(tmp_path / "many" / "transactions.parquet").equals(
        pq.read_schema(tmp_path / "one" / "transactions.parquet")
    )


def test_lines_per_account_month_scales_transaction_volume(tmp_path):
    low = generate_dataset(tmp_path / "low", n_accounts=120, seed=2, lines_per_account_month=3)
    high = generate_dataset(tmp_path / "high", n_accounts=120, seed=2, lines_per_account_month=12)
    assert 3.2 < high["rows"]["transactions"] / low["rows"]["transactions"] < 4.8


def test_denser_lines_keep_the_accounts_and_the_revenue(tmp_path):
    # the scale knob for benchmarks (benchmarks/README.md: 2.5x the default ~ 50M lines at
    # 100k accounts) splits the same revenue over more lines; the accounts do not change
    base = generate_dataset(tmp_path / "base", n_accounts=200, seed=3)
    dense = generate_dataset(
        tmp_path / "dense", n_accounts=200, seed=3, lines_per_account_month=17.5
    )
    ratio = dense["rows"]["transactions"] / base["rows"]["transactions"]
    assert 2.3 < ratio < 2.7
    assert pq.read_table(tmp_path / "dense" / "accounts.parquet").equals(
        pq.read_table(tmp_path / "base" / "accounts.parquet")
    )
    rev = [
        pq.read_table(tmp_path / d / "transactions.parquet", columns=["revenue"])["revenue"]
        .to_numpy()
        .sum()
        for d in ("base", "dense")
    ]
    assert rev[1] / rev[0] == pytest.approx(1.0, abs=0.05)


# --------------------------------------------------------------------------- errors


def test_refuses_to_overwrite_without_permission(small, tmp_path):
    folder = tmp_path / "ds"
    generate_dataset(folder, n_accounts=30, seed=1)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        generate_dataset(folder, n_accounts=30, seed=1)
    summary = generate_dataset(folder, n_accounts=40, seed=1, overwrite=True)
    assert len(pd.read_parquet(folder / "accounts.parquet")) == 40 == summary["rows"]["accounts"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_accounts": 0}, "n_accounts must be a positive integer"),
        ({"chunk_accounts": 0}, "chunk_accounts must be a positive integer"),
        ({"fiscal_year_start_month": 13}, "fiscal_year_start_month must be an integer 1-12"),
        ({"start": "2022/13/01"}, "start must be an ISO date"),
        ({"end": "2022-05-01"}, "must span at least 180 days"),
        ({"lines_per_account_month": -1.0}, "lines_per_account_month must be a positive number"),
    ],
)
def test_bad_arguments_raise_clear_errors(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        generate_dataset(tmp_path / "x", **({"n_accounts": 10} | kwargs))
    assert not (tmp_path / "x" / "accounts.parquet").exists()


# --------------------------------------------------------------------------- planted truths


def test_ground_truth_json_has_the_documented_keys(small):
    folder, _, t = small
    truth = json.loads((folder / "ground_truth.json").read_text())
    params = truth["params"]
    assert params["as_of"] == "2026-03-31" and params["n_accounts"] == N_SMALL
    assert params["fiscal_year_start_month"] == 4
    assert params["product_lines"] == list(PRODUCT_LINES) and len(params["industries"]) == 8
    churn = truth["churn"]
    keys = {"nps_per_point", "no_executive_contact", "utilisation_per_10pp"}
    assert set(churn["coefficients"]) == set(churn["hazard_ratios"]) == keys
    assert set(churn["covariate_definitions"]) == keys
    assert churn["baseline_monthly_hazard"] == pytest.approx(0.006)
    assert churn["hazard_ratios"]["nps_per_point"] == pytest.approx(0.80)
    assert churn["hazard_ratios"]["no_executive_contact"] == pytest.approx(2.0)
    assert churn["hazard_ratios"]["utilisation_per_10pp"] == pytest.approx(0.75)
    assert churn["coefficients"]["no_executive_contact"] == pytest.approx(math.log(2))
    assert set(truth["tiers"]["shares"]) == {"key", "growth", "standard"}
    assert {"seasonality", "growth", "accounts_file"} <= set(truth)
    assert truth["accounts_file"] == "ground_truth_accounts.parquet"
    assert list(t["truth"].columns[: len(TRUTH_COLUMNS)]) == TRUTH_COLUMNS
    assert len(t["truth"]) == N_SMALL


def test_truth_is_internally_consistent(small):
    _, _, t = small
    g = t["truth"]
    assert g.utilisation.isna().equals(~g.contractual)
    assert g.churn_date.isna().equals(~g.churned)
    # The last month's hazard lies within the documented formula's range: NPS 0-10,
    # executive contact or not, the account's utilisation, tenure and renewal factors.
    x_util = np.where(g.contractual, (g.utilisation - 0.7) * 10, 0.0)
    util_factor = np.exp(math.log(0.75) * x_util)
    lo = 0.006 * 0.8**3 * util_factor
    hi = 0.006 * 0.8**-7 * 2.0 * 1.6 * 2.5 * util_factor
    assert (g.monthly_hazard >= lo * (1 - 1e-9)).all()
    assert (g.monthly_hazard <= np.minimum(hi, 0.5) * (1 + 1e-9)).all()
    # Transactional accounts have no contracts and no usage.
    transactional = set(g.account_id[~g.contractual])
    assert not transactional & set(t["contracts"].account_id)
    assert not transactional & set(t["usage"].account_id)


def test_no_events_on_or_after_churn(small):
    _, _, t = small
    churn = t["truth"].set_index("account_id").churn_date
    for table, col in (
        ("transactions", "date"),
        ("activities", "date"),
        ("surveys", "date"),
        ("usage", "month"),
    ):
        df = t[table]
        after = df[col] >= df.account_id.map(churn)
        assert not after.any(), table
    s = t["stakeholders"]
    assert not (s.last_contact_date > s.account_id.map(churn)).any()
    o = t["opportunities"]
    assert not (o.created_date > o.account_id.map(churn)).any()
    # The last contract of a churned contractual account says so.
    c = t["contracts"].sort_values(["account_id", "start_date"])
    last = c[c.status != "expired"].groupby("account_id").tail(1).set_index("account_id")
    g = t["truth"].set_index("account_id")
    churned_c = g.index[g.churned & g.contractual]
    assert (last.loc[churned_c, "status"] == "churned").all()
    assert (last.loc[churned_c, "churn_date"] == g.loc[churned_c, "churn_date"]).all()
    alive = g.index[~g.churned & g.contractual]
    assert (last.loc[alive, "status"] == "active").all()
    assert (c.status == "churned").sum() == len(churned_c)
    assert g.churned.any()


def test_executive_meetings_follow_the_engagement_state(small):
    """Engagement (``exec_engaged``: the state 12 months before the window) mostly
    persists into the window, but switches on for some others, so "ever met" is not
    the trait."""
    _, _, t = small
    a = t["activities"]
    met = set(a.loc[a.kind == "executive_meeting", "account_id"])
    g = t["truth"]
    assert g.account_id[g.exec_engaged].isin(met).mean() > 0.8
    assert g.account_id[~g.exec_engaged].isin(met).any()
    assert 0.4 < g.exec_engaged.mean() < 0.75


def test_executive_engagement_switches_on_and_off(small):
    """Engagement is time-varying: some accounts engaged at the start stop meeting
    executives, and some not engaged at the start begin (ground_truth: time_varying)."""
    _, _, t = small
    g = t["truth"].set_index("account_id")
    a = t["activities"]
    met = a[a.kind == "executive_meeting"]
    first_year = met[met.date < pd.Timestamp("2023-04-01")].account_id.unique()
    last_year = met[met.date >= pd.Timestamp("2025-04-01")].account_id.unique()
    alive = g.index[~g.churned]
    engaged0 = g.index[g.exec_engaged]
    stopped = alive.intersection(engaged0).intersection(first_year).difference(last_year)
    started = alive.difference(engaged0).intersection(last_year)
    assert len(stopped) > 0 and len(started) > 0


def test_observed_signals_track_the_latents(small):
    _, _, t = small
    g = t["truth"].set_index("account_id")
    nps = t["surveys"].groupby("account_id").nps.mean()
    assert np.corrcoef(nps, g.nps_latent[nps.index])[0, 1] > 0.6
    u = t["usage"]
    util = (u.seats_active / u.seats_purchased).groupby(u.account_id).mean()
    assert np.corrcoef(util, g.utilisation[util.index])[0, 1] > 0.9
    acc = t["accounts"].set_index("account_id")
    est = acc.wallet_estimate.dropna()
    log_err = np.log(est / g.true_wallet[est.index])
    assert abs(log_err.mean()) < 0.05 and 0.15 < log_err.std() < 0.25
    per_year = t["surveys"].groupby("account_id").size().mean() / 4
    assert 1.5 < per_year < 4.5


def test_tiers_are_planted_with_their_profiles(small):
    _, _, t = small
    g = t["truth"].set_index("account_id")
    acc = t["accounts"].set_index("account_id")
    by = g.groupby("true_tier")
    shares = g.true_tier.value_counts(normalize=True)
    assert 0.02 < shares["key"] < 0.10 and 0.10 < shares["growth"] < 0.22
    wallet = by.true_wallet.median()
    assert wallet["key"] > 3 * wallet["standard"] and wallet["growth"] > 3 * wallet["standard"]
    sow = by.true_share_of_wallet.mean()
    assert sow["key"] > sow["standard"] > sow["growth"]
    scores = acc[["strategic_fit", "synergy", "reference_value"]].groupby(g.true_tier).mean()
    assert (scores.loc["key"] > scores.loc["standard"]).all()
    assert scores.loc["growth", "strategic_fit"] > scores.loc["standard", "strategic_fit"]
    assert scores.loc["growth", "synergy"] > scores.loc["standard", "synergy"]
    assert (g.true_share_of_wallet <= 0.9).all()


def test_fiscal_year_end_seasonality(small):
    _, _, t = small
    tx = t["transactions"]
    by_month = tx.groupby(tx.date.dt.month).revenue.sum()
    assert by_month[3] / by_month.drop(3).mean() > 1.2
    quarter_ends = by_month[[6, 9, 12]].mean()
    others = by_month.drop([3, 6, 9, 12]).mean()
    assert quarter_ends > others


def test_cost_quirk_and_margins(small):
    _, _, t = small
    tx = t["transactions"]
    above = (tx.cost > tx.revenue).mean()
    assert 0 < above < 0.005
    margin = 1 - tx.cost.sum() / tx.revenue.sum()
    assert 0.2 < margin < 0.6


def test_cross_sell_adoptions_follow_won_opportunities(small):
    _, _, t = small
    tx = t["transactions"]
    first_line = tx.groupby(["account_id", "product_line"]).date.min()
    o = t["opportunities"]
    won_xs = o[(o.type == "cross_sell") & (o.stage == "closed_won")]
    won_close = won_xs.groupby(["account_id", "product_line"]).close_date.min()
    assert len(won_close) > 30
    # A cross-sold line is never bought before its opportunity was won ...
    bought = won_close.index.intersection(first_line.index)
    assert len(bought) > 0.8 * len(won_close)
    assert (first_line[bought] >= won_close[bought]).all()
    # ... and most lines first bought late in an account's history were cross-sold.
    first_any = tx.groupby("account_id").date.min()
    start_of_account = first_any.reindex(first_line.index.get_level_values(0)).to_numpy()
    late = first_line[first_line.to_numpy() > start_of_account + np.timedelta64(180, "D")]
    assert late.index.isin(won_close.index).mean() > 0.8
    per_account = tx.groupby("account_id").product_line.nunique()
    assert per_account.min() >= 1 and per_account.max() <= len(PRODUCT_LINES)


def test_poc_win_rate_is_planted(small):
    _, _, t = small
    o = t["opportunities"]
    closed_poc = o[o.is_poc & o.stage.isin(["closed_won", "closed_lost"])]
    assert len(closed_poc) > 30
    assert (closed_poc.stage == "closed_won").mean() == pytest.approx(0.55, abs=0.05)


def test_relationship_risk_flags_match_the_stakeholder_map(small):
    _, _, t = small
    s = t["stakeholders"]
    g = t["truth"].set_index("account_id")
    per = s.groupby("account_id")
    np.testing.assert_array_equal(per.size()[g.index] == 1, g.single_threaded)
    np.testing.assert_array_equal(
        ~per.role.agg(lambda r: (r == "executive").any())[g.index], g.no_executive_stakeholder
    )
    blocker = (s.stance == STANCES[-1]) & (s.influence >= 4)
    np.testing.assert_array_equal(
        blocker.groupby(s.account_id).any()[g.index], g.high_influence_blocker
    )
    size = per.size()[g.index]
    assert size.groupby(g.true_tier).mean()["key"] > size.groupby(g.true_tier).mean()["standard"]


def test_industry_preferences_are_planted():
    pref = industry_product_preferences()
    assert set(pref) == set(synthetic.INDUSTRIES)
    for weights in pref.values():
        assert sum(weights.values()) == pytest.approx(1.0, abs=1e-5)
        assert max(weights.values()) > 3 * min(weights.values())


@pytest.mark.slow
def test_default_size_book_is_pareto_and_industry_peers_buy_alike(default_size):
    _, t = default_size
    tx = t["transactions"]
    revenue = tx.groupby("account_id").revenue.sum().reindex(t["accounts"].account_id, fill_value=0)
    top = revenue.sort_values(ascending=False).iloc[: len(revenue) // 5].sum() / revenue.sum()
    assert 0.65 <= top <= 0.85
    assert 400_000 <= len(tx) <= 800_000
    # Whitespace structure: each industry's most-bought line is one of its planted top two.
    pref = industry_product_preferences()
    industry = t["accounts"].set_index("account_id").industry
    adopters = tx.drop_duplicates(["account_id", "product_line"]).assign(
        industry=lambda d: d.account_id.map(industry)
    )
    for ind, counts in adopters.groupby("industry").product_line.value_counts().groupby(level=0):
        top_two = sorted(pref[ind], key=pref[ind].get, reverse=True)[:2]
        assert counts.droplevel(0).idxmax() in top_two, ind


@pytest.mark.slow
def test_planted_hazard_ratios_are_recovered(default_size):
    """The person-month model with lagged covariates recovers the planted HRs (the
    detailed checks, two seeds and a planted null, are in tests/test_ltv_hazard.py)."""
    from kam_analysis.ltv.hazard import ChurnHazardModel, build_person_months

    _, t = default_size
    pm = build_person_months(
        t["contracts"],
        surveys=t["surveys"],
        activities=t["activities"],
        usage=t["usage"],
        as_of=AS_OF,
        account_start=t["accounts"].set_index("account_id").since,
    )
    hr = ChurnHazardModel().fit(pm).hazard_ratios_
    for name, truth in {
        "nps_per_point": 0.8,
        "no_executive_contact": 2.0,
        "utilisation_per_10pp": 0.75,
    }.items():
        assert hr.loc[name, "lower"] < truth < hr.loc[name, "upper"], name


# --------------------------------------------------------------------------- concentration


def _last12_shares(folder: Path) -> tuple[pd.Series, dict]:
    """Realised revenue shares of the 12 months to the as-of date, largest first."""
    tx = pd.read_parquet(folder / "transactions.parquet", columns=["account_id", "date", "revenue"])
    recent = tx[tx.date > AS_OF - pd.DateOffset(years=1)]
    revenue = recent.groupby("account_id").revenue.sum().sort_values(ascending=False)
    truth = json.loads((folder / "ground_truth.json").read_text(encoding="utf-8"))
    return revenue / revenue.sum(), truth["concentration"]


def test_zipf_top_shares_hand_computed():
    # k = 2, top1 0.6 of a top-2 0.9: p2 = 0.3 = 0.6 x 2^-a, so a = 1
    np.testing.assert_allclose(synthetic.zipf_top_shares(0.6, 0.9, k=2), [0.6, 0.3])
    # top1 = top10 / 10: equal shares (a = 0)
    np.testing.assert_allclose(synthetic.zipf_top_shares(0.05, 0.5), np.full(10, 0.05))
    p = synthetic.zipf_top_shares(0.08, 0.35)
    assert p[0] == pytest.approx(0.08) and p.sum() == pytest.approx(0.35)
    assert (np.diff(p) < 0).all()
    with pytest.raises(ValueError, match="top10 / 10 <= top1"):
        synthetic.zipf_top_shares(0.02, 0.35)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_default_book_has_a_b2b_concentration(request, tmp_path, seed):
    # the issue: a lognormal book of 2,000 accounts had its largest customer at 1.6 % of
    # revenue (HHI 34); B2B books usually have a top customer at 5-15 %, a top 10 at 30-50 %
    if seed == 0:
        folder = request.getfixturevalue("default_size")[0]
    else:
        folder = tmp_path / "n2000"
        generate_dataset(folder, n_accounts=2000, seed=seed)
    shares, planted = _last12_shares(folder)
    assert 0.05 <= shares.iloc[0] <= 0.15
    assert 0.30 <= shares.iloc[:10].sum() <= 0.50
    assert planted["top1_revenue_share"] == 0.08 and planted["top10_revenue_share"] == 0.35
    assert planted["expected_top1_share_12m"] == pytest.approx(0.08, abs=1e-6)
    assert planted["expected_top10_share_12m"] == pytest.approx(0.35, abs=0.01)
    # the planted accounts are the realised top 10: key accounts, active at the as-of date
    scaled = [a["account_id"] for a in planted["scaled_accounts"]]
    assert len(scaled) == 10 and scaled[0] == shares.index[0]
    assert set(scaled) == set(shares.index[:10])
    truth = pd.read_parquet(folder / "ground_truth_accounts.parquet").set_index("account_id")
    assert (truth.loc[scaled, "true_tier"] == "key").all()
    assert not truth.loc[scaled, "churned"].any()
    assert all(a["wallet_factor"] > 1 for a in planted["scaled_accounts"])


def test_concentration_settings_change_only_the_amounts_of_the_top_accounts(small, tmp_path):
    folder, _, planted = small
    off = synthetic.SyntheticSettings(top1_revenue_share=None, top10_revenue_share=None)
    high = synthetic.SyntheticSettings(top1_revenue_share=0.15, top10_revenue_share=0.45)
    generate_dataset(tmp_path / "off", n_accounts=N_SMALL, seed=11, settings=off)
    generate_dataset(tmp_path / "high", n_accounts=N_SMALL, seed=11, settings=high)
    natural = _read(tmp_path / "off")
    top1 = {
        name: _last12_shares(f)[0].iloc[0]
        for name, f in [("off", tmp_path / "off"), ("default", folder), ("high", tmp_path / "high")]
    }
    assert top1["off"] < top1["default"] < top1["high"]
    # realised against the planted (expected) 15 %: one account's orders are lumpy (measured
    # 0.174 on this small book), so the band is wider than the planting's exactness below
    assert top1["high"] == pytest.approx(0.15, abs=0.04)
    _, truth_high = _last12_shares(tmp_path / "high")
    assert truth_high["expected_top1_share_12m"] == pytest.approx(0.15, abs=1e-6)
    assert _last12_shares(tmp_path / "off")[1]["scaled_accounts"] == []
    # the random stream is untouched: same rows, same non-monetary columns, same truths
    planted_accounts = _last12_shares(folder)[1]["scaled_accounts"]
    scaled = [a["account_id"] for a in planted_accounts]
    for table in ("stakeholders", "activities", "surveys", "usage"):
        pd.testing.assert_frame_equal(natural[table], planted[table], obj=table)
    tx, tx0 = planted["transactions"], natural["transactions"]
    pd.testing.assert_frame_equal(
        tx.drop(columns=["revenue", "cost", "quantity"]),
        tx0.drop(columns=["revenue", "cost", "quantity"]),
    )
    moved = tx.revenue != tx0.revenue
    assert moved.any() and set(tx.account_id[moved]) <= set(scaled)
    first = tx.account_id == scaled[0]  # its lines grew by its wallet factor (before rounding)
    factor = planted_accounts[0]["wallet_factor"]
    assert factor > 1
    np.testing.assert_allclose(tx.revenue[first] / tx0.revenue[first], factor, rtol=0.01)
    keep = ["true_tier", "churned", "monthly_hazard", "nps_latent", "exec_engaged"]
    pd.testing.assert_frame_equal(natural["truth"][keep], planted["truth"][keep])


@pytest.mark.parametrize("n_accounts", [3, 30])
def test_planted_concentration_on_tiny_books_is_a_floor(tmp_path, n_accounts):
    # a small book is already concentrated: nothing shrinks, the largest keeps >= 8 %
    folder = tmp_path / "tiny"
    generate_dataset(folder, n_accounts=n_accounts, seed=0)
    shares, planted = _last12_shares(folder)
    assert planted["expected_top1_share_12m"] >= 0.08 - 1e-9
    assert planted["expected_top10_share_12m"] >= 0.35 - 1e-9
    assert all(a["wallet_factor"] >= 1 for a in planted["scaled_accounts"])
    assert shares.iloc[0] >= 0.06 and np.isfinite(shares).all()


def test_concentration_settings_are_validated():
    with pytest.raises(ValueError, match="or neither"):
        synthetic.SyntheticSettings(top1_revenue_share=0.1, top10_revenue_share=None)
    with pytest.raises(ValueError, match="top10_revenue_share / 10"):
        synthetic.SyntheticSettings(top1_revenue_share=0.5, top10_revenue_share=0.3)


def test_kam_synth_plants_the_requested_concentration(tmp_path, capsys):
    out = tmp_path / "c"
    args = ["synth", "--accounts", "200", "--seed", "4", "--out", str(out)]
    assert main([*args, "--top1-share", "0.12", "--top10-share", "0.4"]) == 0
    planted = json.loads((out / "ground_truth.json").read_text())["concentration"]
    assert planted["top1_revenue_share"] == 0.12
    assert planted["expected_top1_share_12m"] == pytest.approx(0.12, abs=1e-6)
    bad = [*args, "--force", "--top1-share", "0.5", "--top10-share", "0.3"]
    assert main(bad) == 2
    assert "top10_revenue_share / 10" in capsys.readouterr().err


# --------------------------------------------------------------------------- messy ERP export

MESSY_FILES = {MESSY_EXPORT_FILE, "kam.toml", "ground_truth.json", "ground_truth_accounts.parquet"}


def _read_export(folder) -> pd.DataFrame:
    """The export read as a user's script would: cp1252, every value as text."""
    raw = (folder / MESSY_EXPORT_FILE).read_bytes()
    lines = pd.read_csv(
        io.BytesIO(raw), encoding="cp1252", dtype=str, keep_default_na=False, na_filter=False
    )
    qty = lines["Quantity"].astype(np.int64)
    price = lines["UnitPrice"].str.replace(",", "", regex=False).astype(float)
    return lines.assign(
        qty=qty,
        price=price,
        amount=qty * price,
        invoice=lines["InvoiceNo"].str.removeprefix("C"),
        is_credit=lines["InvoiceNo"].str.startswith("C"),
        when=pd.to_datetime(lines["InvoiceDate"], format=MESSY_EXPORT_DATE_FORMAT),
        account=lines["Customer ID"],
        line=lines["Category"].str.strip(),
    )


@pytest.fixture(scope="session")
def messy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth") / "messy"
    summary = generate_messy_export(folder, n_accounts=N_SMALL, seed=11)
    truth = json.loads((folder / "ground_truth.json").read_text(encoding="utf-8"))
    return folder, summary, _read_export(folder), truth


def test_messy_export_writes_invoice_lines_config_and_truth_only(messy):
    folder, summary, lines, _ = messy
    assert {p.name for p in folder.iterdir()} == MESSY_FILES  # no accounts, no other table
    assert list(lines.columns[:10]) == list(MESSY_EXPORT_COLUMNS)
    assert summary["rows"]["invoice_lines"] == len(lines)
    assert summary["as_of"] == "2026-03-31"
    raw = (folder / MESSY_EXPORT_FILE).read_bytes()
    assert raw.startswith(b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,")
    assert raw.count(b"\r\n") == len(lines) + 1 and b"\n" not in raw.replace(b"\r\n", b"")


def test_messy_export_is_cp1252_and_not_utf8(messy):
    folder, _, lines, _ = messy
    raw = (folder / MESSY_EXPORT_FILE).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("cp1252")
    for char in "éü£€–’":
        assert char in text, char
    # bytes of cp1252, not of UTF-8: the en dash is 0x96, ü is 0xFC
    assert b"\x96" in raw and b"\xfc" in raw and "–".encode() not in raw
    overseas = lines["Customer Name"].str.contains(
        r"\((?:Zürich|Genève|Köln|München|Málaga|Malmö|Besançon|Düsseldorf)\)"
    )
    assert overseas.any()
    assert set(lines.loc[overseas, "Country"].str.strip()) == {"Overseas"}


def test_messy_dates_parse_with_the_configured_format(messy):
    folder, _, lines, _ = messy
    config = tomllib.loads((folder / "kam.toml").read_text(encoding="utf-8"))
    fmt = config["data"]["date_format"]
    parsed = {s: dt.datetime.strptime(s, fmt) for s in lines["InvoiceDate"].unique()}
    assert min(parsed.values()) >= dt.datetime(2022, 4, 1)
    assert max(parsed.values()) <= dt.datetime(2026, 3, 31, 23, 59)
    # US order, nothing padded: 4/1/2022 9:00, never 04/01/2022 09:00
    assert lines["InvoiceDate"].str.fullmatch(r"\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}").all()
    assert lines["InvoiceDate"].str.match(r"\d/\d/\d{4} \d:").any()
    assert not lines["InvoiceDate"].str.match(r"0|\d+/0|.* 0\d:").any()
    assert lines["when"].dt.day.gt(12).any()  # day and month cannot be swapped unnoticed


def test_messy_net_revenue_per_account_equals_the_clean_demo(small, messy):
    _, _, clean = small
    _, _, lines, _ = messy
    tx = clean["transactions"]
    attributed = lines[lines.account != ""]
    # Quantity x UnitPrice, netted over invoices and credit notes, per account and line:
    net = attributed.groupby(["account", "line"]).amount.sum()
    expected = tx.groupby(["account_id", "product_line"]).revenue.sum()
    expected.index.names = net.index.names
    assert set(net.index) == set(expected.index)
    # unit prices are rounded to cents: at most half a cent per unit invoiced
    tolerance = 0.005 * attributed.qty.abs().groupby([attributed.account, attributed.line]).sum()
    gap = (net - expected.reindex(net.index)).abs()
    assert (gap <= tolerance + 1e-6).all()
    per_account = attributed.groupby("account").amount.sum()
    clean_account = tx.groupby("account_id").revenue.sum()
    assert per_account.sum() == pytest.approx(clean_account.sum(), rel=1e-7)
    account_tolerance = 0.005 * attributed.qty.abs().groupby(attributed.account).sum()
    account_gap = (per_account - clean_account.reindex(per_account.index)).abs()
    assert (account_gap <= account_tolerance + 1e-6).all()
    assert account_gap.max() > 0  # cents rounding is real, so the tolerance is needed
    # ... and the credit notes are part of that equality: without them it breaks
    credit = attributed[attributed.is_credit].groupby("account").amount.sum()
    assert (credit < 0).all() and len(credit) > 0.3 * N_SMALL
    invoiced_only = attributed[~attributed.is_credit].groupby("account").amount.sum()
    assert (invoiced_only[credit.index] - clean_account[credit.index] > 1).all()


def test_messy_cash_sales_are_unattributed_lines_on_their_own_invoices(messy):
    _, _, lines, truth = messy
    blank = lines.account == ""
    assert blank.mean() == pytest.approx(0.20, abs=0.01)
    assert (lines.loc[blank, "Customer Name"] == "").all()
    assert (lines.loc[~blank, "Customer Name"].str.strip() != "").all()
    # ids stay clean: no '12345.0' forms, no spaces
    assert lines.loc[~blank, "Customer ID"].str.fullmatch(r"C\d{6}").all()
    assert not set(lines.loc[blank, "invoice"]) & set(lines.loc[~blank, "invoice"])
    assert (lines.loc[blank, "qty"] > 0).all()
    share = truth["messy_export"]["amounts"]["unattributed_revenue_share"]
    assert 0 < share < 0.2
    assert lines.loc[blank, "amount"].sum() / lines.amount.sum() == pytest.approx(share, abs=1e-4)


def test_messy_credit_notes_are_cancellations_of_earlier_invoices(small, messy):
    _, _, clean = small
    _, _, lines, truth = messy
    credit = lines[lines.is_credit]
    assert 0.015 < len(credit) / len(lines) < 0.03  # ~2 % of lines
    assert (credit.qty < 0).all() and (lines.loc[~lines.is_credit, "qty"] > 0).all()
    assert (lines.price > 0).all()
    invoices = (
        lines[~lines.is_credit]
        .groupby("invoice")
        .agg(when=("when", "first"), account=("account", "first"), net=("amount", "sum"))
    )
    original = invoices.reindex(credit.invoice)
    assert original.when.notna().all()  # every C-invoice cancels an invoice of the file ...
    assert (original.account.to_numpy() == credit.account.to_numpy()).all()  # ... of its customer
    assert (credit.when.to_numpy() > original.when.to_numpy()).all()  # ... and comes later
    delay = credit.when.to_numpy() - original.when.to_numpy()
    assert (delay >= np.timedelta64(7, "D")).mean() > 0.25  # some weeks later
    assert (delay < np.timedelta64(1, "D")).mean() > 0.25  # some the same day
    # partial returns: less comes back than was invoiced for that item
    invoiced = lines[~lines.is_credit].groupby(["invoice", "StockCode"]).qty.sum()
    returned = credit[credit.StockCode != "ADJ"].groupby(["invoice", "StockCode"]).qty.sum()
    kept = invoiced.reindex(returned.index) + returned
    assert (kept >= 0).all() and (kept > 0).mean() > 0.4 and (kept == 0).any()
    # full cancellations: wrong invoices netting to zero, the order invoiced again
    net = lines.groupby("invoice").amount.sum()
    cancelled = net[net.abs() < 0.005].index
    counts = truth["messy_export"]["counts"]
    assert len(cancelled) == counts["wrong_invoices_cancelled"] > 0
    attributed_invoices = lines.loc[lines.account != "", "invoice"].nunique()
    assert attributed_invoices == clean["transactions"].order_id.nunique() + len(cancelled)
    # price adjustments: quantity -1, on the adjusted line's product line
    adj = credit[credit.StockCode == "ADJ"]
    assert len(adj) == counts["price_adjustment_lines"] > 0
    assert (adj.qty == -1).all() and (adj.Description.str.strip() == "Price adjustment").all()


def test_messy_lines_respect_churn_and_keep_first_purchases(small, messy):
    _, _, clean = small
    _, _, lines, _ = messy
    attributed = lines[lines.account != ""]
    churn = clean["truth"].set_index("account_id").churn_date
    assert not (attributed.when >= attributed.account.map(churn)).any()
    first = attributed.groupby("account").when.min().dt.normalize()
    clean_first = clean["transactions"].groupby("account_id").date.min()
    assert (first.reindex(clean_first.index) == clean_first).all()


def test_messy_export_has_excel_style_defects(messy):
    folder, _, lines, truth = messy
    raw = (folder / MESSY_EXPORT_FILE).read_bytes().decode("cp1252")
    grouped = re.findall(r',"(\d{1,3}(?:,\d{3})+\.\d{2})",', raw)
    counts = truth["messy_export"]["counts"]
    assert len(grouped) == counts["thousands_separator_prices"] > 0
    assert lines.UnitPrice.str.fullmatch(r"\d+\.\d{2}|\d{1,3}(?:,\d{3})+\.\d{2}").all()
    assert lines.Quantity.str.fullmatch(r"-?\d+").all()
    for column in ("Description", "Customer Name", "Country", "Category"):
        values = lines[column]
        assert (values != values.str.strip()).any(), column
    assert lines.Description.str.startswith(" ").sum() == counts["padded_description_lines"]
    # the most frequent name per account is the proper (not upper-case) one
    attributed = lines[lines.account != ""]
    upper = attributed["Customer Name"].str.strip()
    assert (upper == upper.str.upper()).sum() >= counts["upper_case_name_lines"] > 0


def test_messy_accounts_carry_over_from_the_lines(small, messy):
    _, _, clean = small
    _, _, lines, _ = messy
    attributed = lines[lines.account != ""]
    mode = attributed.groupby("account").agg(
        name=("Customer Name", lambda s: s.str.strip().mode().iloc[0]),
        region=("Country", lambda s: s.str.strip().mode().iloc[0]),
    )
    accounts = clean["accounts"].set_index("account_id")
    assert set(mode.index) == set(clean["transactions"].account_id)
    assert (mode.region == accounts.region[mode.index]).all()
    domestic = accounts.region[mode.index] != "Overseas"
    assert (mode.name[domestic] == accounts.name[mode.index][domestic]).all()
    overseas = mode.name[~domestic]
    assert len(overseas) > 0
    assert all(n.startswith(accounts.name[i] + " (") for i, n in overseas.items())


def test_messy_kam_toml_reads_the_export(messy):
    folder, _, lines, truth = messy
    text = (folder / "kam.toml").read_text(encoding="utf-8")
    config = tomllib.loads(text)
    assert config["data"] == {
        "base_currency": truth["params"]["currency"],
        "fiscal_year_start_month": 4,
        "encoding": "cp1252",
        "date_format": "%m/%d/%Y %H:%M",
        "credit_notes": "net",
        "unattributed": "drop",
        "files": {"transactions": MESSY_EXPORT_FILE},
    }
    assert config["columns"]["transactions"] == {
        "account_id": "Customer ID",
        "date": "InvoiceDate",
        "revenue": "= Quantity * UnitPrice",
        "quantity": "Quantity",
        "order_id": "InvoiceNo",
        "product_line": "Category",
    }
    assert config["columns"]["accounts"] == {"name": "Customer Name", "region": "Country"}
    named = [v for v in config["columns"]["transactions"].values() if not v.startswith("=")]
    assert set(named) | set(config["columns"]["accounts"].values()) <= set(MESSY_EXPORT_COLUMNS)


def test_messy_ground_truth_keeps_the_clean_truths_and_counts_the_changes(small, messy):
    clean_folder, _, clean = small
    folder, _, lines, truth = messy
    clean_truth = json.loads((clean_folder / "ground_truth.json").read_text(encoding="utf-8"))
    section = truth.pop("messy_export")
    assert truth == clean_truth  # same accounts, same planted truths
    pd.testing.assert_frame_equal(
        pd.read_parquet(folder / "ground_truth_accounts.parquet"), clean["truth"]
    )
    counts = section["counts"]
    assert counts["lines"] == len(lines)
    assert counts["clean_transaction_lines"] == len(clean["transactions"])
    assert counts["credit_note_lines"] == lines.is_credit.sum()
    assert counts["unattributed_lines"] == (lines.account == "").sum()
    assert counts["upper_case_name_lines"] > 0 and counts["return_lines"] > 0
    assert section["amounts"]["clean_revenue"] == pytest.approx(
        clean["transactions"].revenue.sum(), abs=0.01
    )
    assert section["amounts"]["attributed_net_revenue"] == pytest.approx(
        lines.loc[lines.account != "", "amount"].sum(), abs=0.01
    )
    assert section["settings"]["unattributed_share"] == 0.2
    assert section["format"]["encoding"] == "cp1252" and section["changes"]


def test_messy_export_is_deterministic(messy, tmp_path):
    folder, _, _, _ = messy
    generate_messy_export(tmp_path / "again", n_accounts=N_SMALL, seed=11)
    for name in MESSY_FILES:
        assert (tmp_path / "again" / name).read_bytes() == (folder / name).read_bytes(), name
    generate_messy_export(tmp_path / "other", n_accounts=N_SMALL, seed=12)
    assert (tmp_path / "other" / MESSY_EXPORT_FILE).read_bytes() != (
        folder / MESSY_EXPORT_FILE
    ).read_bytes()


def test_messy_and_clean_demos_replace_each_other_only_when_forced(tmp_path):
    folder = tmp_path / "ds"
    generate_dataset(folder, n_accounts=30, seed=1)
    with pytest.raises(FileExistsError, match="accounts.parquet"):
        generate_messy_export(folder, n_accounts=30, seed=1)
    generate_messy_export(folder, n_accounts=30, seed=1, overwrite=True)
    assert {p.name for p in folder.iterdir()} == MESSY_FILES
    with pytest.raises(FileExistsError, match="invoice_lines.csv"):
        generate_dataset(folder, n_accounts=30, seed=1)
    generate_dataset(folder, n_accounts=30, seed=1, overwrite=True)
    names = {p.name for p in folder.iterdir()}
    assert "kam.toml" not in names and MESSY_EXPORT_FILE not in names  # stale config removed
    assert "accounts.parquet" in names
    # a user's own kam.toml is never replaced without --force, and kept by the clean demo
    user = tmp_path / "user"
    user.mkdir()
    (user / "kam.toml").write_text("[data]\nbase_currency = 'EUR'\n")
    with pytest.raises(FileExistsError, match="kam.toml"):
        generate_messy_export(user, n_accounts=30, seed=1)
    generate_dataset(user, n_accounts=30, seed=1)
    assert (user / "kam.toml").read_text() == "[data]\nbase_currency = 'EUR'\n"


def test_messy_bad_arguments_leave_nothing(tmp_path):
    with pytest.raises(ValueError, match="fiscal_year_start_month"):
        generate_messy_export(tmp_path / "x", n_accounts=10, fiscal_year_start_month=0)
    assert not (tmp_path / "x").exists()


def test_kam_synth_messy_writes_the_export(tmp_path, capsys):
    out = tmp_path / "messy"
    assert main(["synth", "--messy", "--accounts", "40", "--seed", "2", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == MESSY_FILES
    printed = capsys.readouterr().out
    assert "and kam.toml" in printed and "invoice lines" in printed
    assert main(["synth", "--messy", "--accounts", "40", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["synth", "--messy", "--out", str(tmp_path / "y"), "--start", "2022/13/01"]) == 2
    assert "start must be an ISO date" in capsys.readouterr().err


# --------------------------------------------------------------------------- real-data samples
# The committed samples of public data (tests/data/real/README.md) are the bytes the README
# describes; reading them through kam_analysis.data is tested with the reader.

REAL = Path(__file__).parent / "data" / "real"
_README_ROW = re.compile(r"^\| `([^`]+)` \| ([\d,]+) \| ([\d,]+) \| `([0-9a-f]{64})` \|$")


def _real_samples() -> dict[str, tuple[int, int, str]]:
    rows = {}
    for line in (REAL / "README.md").read_text(encoding="utf-8").splitlines():
        match = _README_ROW.match(line)
        if match:
            name, size, n_lines, digest = match.groups()
            rows[name] = (int(size.replace(",", "")), int(n_lines.replace(",", "")), digest)
    return rows


def test_real_samples_match_the_readme():
    listed = _real_samples()
    assert set(listed) == {"cdnow/CDNOW_sample.txt", "superstore/superstore_sample.csv"}
    on_disk = {
        p.relative_to(REAL).as_posix()
        for p in REAL.rglob("*")
        if p.is_file()
        and p.suffix in (".txt", ".csv", ".parquet", ".xlsx", ".tsv")
        and "_derived" not in p.relative_to(REAL).parts  # caches kam writes next to the data
    }
    assert on_disk == set(listed)  # every data file is documented
    for name, (size, n_lines, digest) in listed.items():
        data = (REAL / name).read_bytes()
        assert len(data) == size, name
        assert data.count(b"\n") == n_lines, name
        assert hashlib.sha256(data).hexdigest() == digest, name
        assert len(data) < 1_000_000  # small enough to commit


def test_real_samples_follow_their_sampling_rules():
    cdnow = (REAL / "cdnow" / "CDNOW_sample.txt").read_bytes().decode("ascii")
    rows = cdnow.split("\r\n")
    assert rows.pop() == ""  # CRLF after the last line, no header
    pattern = re.compile(r" (\d{5}) (\d{8}) +(\d+) +(\d+\.\d{2})")
    fields = [pattern.fullmatch(r).groups() for r in rows]
    ids = {int(f[0]) for f in fields}
    assert all(i % 10 == 0 for i in ids) and len(ids) == 2357 == 23570 // 10
    assert min(f[1] for f in fields) == "19970101" and max(f[1] for f in fields) == "19980630"
    assert sum(float(f[3]) for f in fields) == pytest.approx(240267.14, abs=0.005)

    store = pd.read_csv(REAL / "superstore" / "superstore_sample.csv", encoding="utf-8")
    assert list(store.columns) == [
        "Row ID", "Order ID", "Order Date", "Ship Date", "Ship Mode", "Customer ID",
        "Customer Name", "Segment", "Country", "City", "State", "Postal Code", "Region",
        "Product ID", "Category", "Sub-Category", "Product Name", "Sales", "Quantity",
        "Discount", "Profit",
    ]  # fmt: skip
    customers = sorted(store["Customer ID"].unique())
    assert len(customers) == 265 and customers[0] == "AA-10315"
    assert store["Row ID"].is_monotonic_increasing  # original order
    assert store["Sales"].sum() == pytest.approx(789470.96, abs=0.01)


@pytest.mark.parametrize(
    ("folder", "file"),
    [("cdnow", "CDNOW_sample.txt"), ("superstore", "superstore_sample.csv")],
)
def test_real_samples_have_a_kam_toml_naming_them(folder, file):
    config = tomllib.loads((REAL / folder / "kam.toml").read_text(encoding="utf-8"))
    assert config["data"]["files"] == {"transactions": file}
    assert config["data"]["base_currency"] == "USD"
    mapped = config["columns"]["transactions"]
    assert {"account_id", "date", "revenue"} <= set(mapped)

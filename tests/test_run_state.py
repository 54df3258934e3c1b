"""Run state (issue 16): computed once, read by every context with the same key, never stale."""

from __future__ import annotations

import os
import shutil
import sys

import pandas as pd
import pytest

from kam_analysis import context as context_module
from kam_analysis import state as state_module
from kam_analysis.context import load_context
from kam_analysis.state import STATE_ENV, compute_forked, open_state, read_state_meta


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """A small generated book and its run state, written once for the module."""
    from kam_analysis.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("state")
    data = root / "demo"
    generate_dataset(data, n_accounts=120, seed=3)
    ctx = load_context(data)
    meta = ctx.save_state(root / "state")
    return data, root / "state", ctx, meta


def _no_fit(*args, **kwargs):
    raise AssertionError("computed again although the run state holds the result")


def test_a_context_reads_the_state_instead_of_computing(book, monkeypatch):
    data, folder, fresh, meta = book
    assert read_state_meta(folder)["key"] == meta["key"] == fresh.state_key
    monkeypatch.setenv(STATE_ENV, str(folder))
    monkeypatch.setattr(context_module, "value_accounts", _no_fit)
    monkeypatch.setattr(context_module, "score_and_tier", _no_fit)
    monkeypatch.setattr(context_module, "validate_health", _no_fit)
    monkeypatch.setattr(context_module, "monthly_line_summary", _no_fit)
    ctx = load_context(data)
    assert ctx.state_status == "used"
    for name in ("features", "monthly", "spend_12m", "scored", "monthly_lines"):
        pd.testing.assert_frame_equal(getattr(ctx, name), getattr(fresh, name))
    pd.testing.assert_frame_equal(ctx.ltv_values.ltv, fresh.ltv_values.ltv)
    assert ctx.coverage == fresh.coverage
    assert ctx.health_validation.weights == fresh.health_validation.weights
    # same settings through with_settings: the same key, the state is still used
    same = ctx.with_settings(ltv={"horizon_years": fresh.config.ltv.horizon_years})
    assert same.state_status == "used"


def test_other_settings_date_or_language_never_read_the_state(book, monkeypatch):
    data, folder, fresh, _ = book
    monkeypatch.setenv(STATE_ENV, str(folder))
    ctx = load_context(data)
    other = ctx.with_settings(segmentation={"key_capacity": 1, "key_max_share": None})
    assert other.state_status == "stale" and other.state is None
    assert ctx.at("2025-12-31").state_status == "stale"
    assert load_context(data, lang="ja").state_status == "stale"
    # computed on demand: a capacity of one key account, where the state holds more
    assert (ctx.scored["tier"] == "key").sum() > 1
    assert (other.scored["tier"] == "key").sum() == 1


def test_a_changed_input_file_makes_the_state_stale(book, tmp_path, monkeypatch):
    data, folder, fresh, _ = book
    copy = tmp_path / "demo"
    shutil.copytree(data, copy)
    monkeypatch.setenv(STATE_ENV, str(folder))
    assert load_context(copy).state_status == "used"  # same content, another folder
    accounts = pd.read_parquet(copy / "accounts.parquet")
    accounts.loc[0, "name"] = accounts.loc[0, "name"] + " (renamed)"
    accounts.to_parquet(copy / "accounts.parquet", index=False)
    ctx = load_context(copy)
    assert ctx.state_status == "stale"
    assert ctx.scored.loc[ctx.scored["account_id"] == accounts.loc[0, "account_id"], "name"].item()


def test_a_missing_or_half_written_state_is_not_opened(book, tmp_path):
    _, folder, fresh, _ = book
    assert open_state(tmp_path, fresh.state_key) == (None, "missing")
    half = tmp_path / "half"
    shutil.copytree(folder, half)
    (half / "state.json").unlink()  # state.json is written last
    assert open_state(half, fresh.state_key)[1] == "missing"
    assert open_state(folder, "0" * 64)[1] == "stale"


def _no_build(*args, **kwargs):
    raise AssertionError("features built again although kam features wrote them")


def test_kam_features_output_is_reused_while_inputs_and_settings_match(
    book, tmp_path, monkeypatch, capsys
):
    from kam_analysis.cli import main
    from kam_analysis.state import FEATURES_KEY, derived_features_path

    data, _, fresh, _ = book
    copy = tmp_path / "demo"
    shutil.copytree(data, copy)
    as_of = fresh.as_of.isoformat()
    assert main(["features", str(copy), "--as-of", as_of]) == 0
    assert "wrote" in capsys.readouterr().out
    path = derived_features_path(copy, fresh.as_of)
    import pyarrow.parquet as pq

    assert pq.read_schema(path).metadata[FEATURES_KEY] == fresh.features_key.encode()
    monkeypatch.setattr(context_module, "build_account_features", _no_build)
    ctx = load_context(copy, as_of=as_of)
    pd.testing.assert_frame_equal(ctx.features, fresh.features)
    assert ctx.features_source == "kam_features"
    # a second kam features finds it up to date and does not write
    mtime = path.stat().st_mtime_ns
    assert main(["features", str(copy), "--as-of", as_of]) == 0
    assert "up to date" in capsys.readouterr().out and path.stat().st_mtime_ns == mtime
    # the language and report settings do not matter; feature settings and inputs do
    assert load_context(copy, as_of=as_of, lang="ja").features_source == "none"
    assert load_context(copy, as_of=as_of, lang="ja").features is not None
    other_period = ctx.with_settings(features={"period": "month"})
    with pytest.raises(AssertionError, match="built again"):
        _ = other_period.features
    accounts = pd.read_parquet(copy / "accounts.parquet")
    accounts.loc[0, "name"] = accounts.loc[0, "name"] + " (renamed)"
    accounts.to_parquet(copy / "accounts.parquet", index=False)
    with pytest.raises(AssertionError, match="built again"):
        _ = load_context(copy, as_of=as_of).features


def test_a_feature_file_without_our_key_is_never_read(book, tmp_path, monkeypatch):
    from kam_analysis.state import derived_features_path

    data, _, fresh, _ = book
    copy = tmp_path / "demo"
    shutil.copytree(data, copy)
    path = derived_features_path(copy, fresh.as_of)
    path.parent.mkdir(parents=True)
    fresh.features.head(3).to_parquet(path, index=False)  # written by something else
    ctx = load_context(copy, as_of=fresh.as_of.isoformat())
    assert len(ctx.features) == len(fresh.features) and ctx.features_source == "computed"


@pytest.mark.skipif(sys.platform != "linux", reason="forks on Linux only")
def test_a_forked_computation_returns_the_childs_value_or_falls_back(tmp_path):
    here = os.getpid()
    value, pid = compute_forked(lambda: ("from", os.getpid()), tmp_path / "v").get()
    assert value == "from" and pid != here  # computed in the child
    assert not (tmp_path / "v").exists()  # the hand-over file is removed

    def fails_in_a_child():
        if os.getpid() != here:
            raise RuntimeError("the child fails")
        return "computed here"

    assert compute_forked(fails_in_a_child, tmp_path / "w").get() == "computed here"
    assert not (tmp_path / "w").exists()


@pytest.mark.skipif(sys.platform != "linux", reason="forks on Linux only")
def test_no_child_is_forked_without_the_memory_for_it(tmp_path, monkeypatch):
    import psutil

    rss = psutil.Process().memory_info().rss
    free = type("Free", (), {"available": int(1.5 * rss)})
    monkeypatch.setattr(psutil, "virtual_memory", lambda: free)
    assert not state_module.fork_fits_in_memory()  # 1.5 x RSS free, 2 x needed
    result = compute_forked(os.getpid, tmp_path / "v")
    assert not result.forked and result.get() == os.getpid()  # computed here, in turn
    free.available = int(2.5 * rss)
    result = compute_forked(os.getpid, tmp_path / "v")
    assert result.forked and result.get() != os.getpid()


def test_the_plans_rows_come_from_the_state_as_the_engine_gives_them(book, tmp_path, monkeypatch):
    data, folder, fresh, _ = book
    monkeypatch.delenv(STATE_ENV, raising=False)
    copy = tmp_path / "state"
    shutil.copytree(folder, copy)
    writer = load_context(data)
    assert writer.attach_state(copy) == "used"
    ids = fresh.key_accounts(3)
    stored = set(writer.save_account_rows(ids))
    assert {"accounts", "transactions", "stakeholders", "activities", "monthly_lines"} <= stored
    reader = load_context(data)
    reader.attach_state(copy)
    monkeypatch.setattr(reader, "_account_rows", _no_fit)  # no engine query for these accounts
    for account in ids:
        engine = load_context(data)  # no state: every frame from its own query
        for table in sorted(stored - {"monthly_lines"}):
            got, expected = (
                reader.account_frame(table, account),
                engine.account_frame(table, account),
            )
            pd.testing.assert_frame_equal(got, expected, obj=f"{table} of {account}")
        assert len(reader.account_frame("transactions", account)) > 0
        lines = reader.account_monthly_lines(account)
        pd.testing.assert_frame_equal(lines, engine.account_monthly_lines(account))
        for name, frame in reader.kpi_tables([account]).items():
            expected = engine.kpi_tables([account])[name]
            pd.testing.assert_frame_equal(frame, expected, obj=name)
    # another account, or rows written for another key, are asked from the engine
    other = next(a for a in fresh.scored["account_id"] if a not in ids)
    with pytest.raises(AssertionError, match="computed again"):
        reader.account_frame("stakeholders", other)
    meta = copy / state_module.ACCOUNT_ROWS / "account_rows.json"
    meta.write_text(meta.read_text().replace(fresh.state_key, "0" * 64))
    later = load_context(data)
    later.attach_state(copy)
    monkeypatch.setattr(later, "_account_rows", _no_fit)
    with pytest.raises(AssertionError, match="computed again"):
        later.account_frame("stakeholders", ids[0])


def test_the_state_holds_what_a_context_computes_alone(book):
    data, folder, _, _ = book
    alone = load_context(data)  # no state: everything computed in this process, in turn
    state = open_state(folder, alone.state_key)[0]
    assert state is not None
    pd.testing.assert_frame_equal(state.object("ltv_values").ltv, alone.ltv_values.ltv)
    assert state.object("health_validation").weights == alone.health_validation.weights
    for name in ("portfolio_matrix", "whitespace", "scored", "monthly_lines"):
        pd.testing.assert_frame_equal(state.table(name), getattr(alone, name))


@pytest.mark.notebook
@pytest.mark.slow
def test_kam_run_scores_the_book_once_in_the_state_and_picks_the_plans_from_it(
    book, tmp_path, monkeypatch, capsys
):
    import json

    from kam_analysis.cli import main

    data, _, fresh, _ = book
    monkeypatch.delenv(STATE_ENV, raising=False)
    # the runner process must not score the book: the state builder (a child) does it once
    monkeypatch.setattr(context_module, "score_and_tier", _no_fit)
    reports = tmp_path / "reports"
    argv = ["run", "--data", str(data), "--reports-dir", str(reports), "--jobs", "1"]
    assert main([*argv, "--only", "account_plan", "--account-plans", "2"]) == 0
    manifest = json.loads((reports / "latest" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["state"]["status"] == "ok"
    plans = manifest["notebooks"]
    assert [p["account_id"] for p in plans] == fresh.key_accounts(2)
    assert {p["recorded"]["run_state"] for p in plans} == {"used"}
    # the plans' rows were queried once for both, beside the state
    assert "rows of 2 account(s) stored for their plans" in capsys.readouterr().err

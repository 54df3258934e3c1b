"""Run state (issue 16): computed once, read by every context with the same key, never stale."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from kam_analysis import context as context_module
from kam_analysis.context import load_context
from kam_analysis.state import STATE_ENV, open_state, read_state_meta


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
    ctx = load_context(data)
    assert ctx.state_status == "used"
    for name in ("features", "monthly", "spend_12m", "scored"):
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

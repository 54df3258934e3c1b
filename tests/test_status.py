"""Tests of account status (kam_analysis.status) and its use in segmentation (issue 17).

Lost customers look like growth candidates (share of wallet near 0, the whole wallet as
headroom): only active accounts may be key or growth, and valuable lost accounts go to a
win-back list. Hand-made frames pin the rules; a generated book checks them against the
planted churn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kam_analysis import kpi
from kam_analysis.segmentation import (
    WIN_BACK_BASES,
    SegmentationSettings,
    assign_tiers,
    revenue_before_loss,
    tier_rule,
    win_back,
)
from kam_analysis.status import StatusInputError, account_status, contract_churn, lapse_cutoff
from kam_analysis.valuation import ValuationSettings

AS_OF = pd.Timestamp("2024-06-30")


def _accounts(**last: str | None) -> pd.DataFrame:
    return pd.DataFrame(
        {"account_id": list(last), "last_purchase": pd.to_datetime(list(last.values()))}
    )


def _status(accounts: pd.DataFrame, **kwargs) -> dict[str, str]:
    out = account_status(accounts, as_of=AS_OF, **kwargs)
    return dict(zip(out["account_id"], out["status"], strict=True))


# --------------------------------------------------------------------------- status rules


def test_lapsed_boundary_is_exactly_lapse_months_before_as_of():
    # the trailing window is (as_of - 12 months, as_of]: 2023-06-30 is outside, 07-01 inside
    acc = _accounts(
        edge="2023-06-30", inside="2023-07-01", old="2021-01-05", today="2024-06-30", never=None
    )
    assert lapse_cutoff(AS_OF, 12) == pd.Timestamp("2023-06-30")
    assert _status(acc) == {
        "edge": "lapsed",
        "inside": "active",
        "old": "lapsed",
        "today": "active",
        "never": "active",  # nothing to lapse from (a prospect)
    }
    # a shorter window moves the boundary: 2023-12-30 is exactly 6 months back
    six = _accounts(edge="2023-12-30", inside="2023-12-31")
    assert _status(six, lapse_months=6) == {"edge": "lapsed", "inside": "active"}
    with pytest.raises(StatusInputError, match="lapse_months"):
        account_status(acc, as_of=AS_OF, lapse_months=0)


def test_churn_date_after_as_of_is_still_active():
    acc = _accounts(
        later="2024-06-01", on_day="2024-06-01", expired="2024-06-01", undated="2024-06-01"
    )
    contracts = pd.DataFrame(
        {
            "contract_id": ["c1", "c2", "c3", "c4"],
            "account_id": ["later", "on_day", "expired", "undated"],
            "start_date": pd.to_datetime(["2022-01-01"] * 4),
            "end_date": pd.to_datetime(["2024-07-15", "2024-06-30", "2024-05-31", None]),
            # the status is a snapshot of the export, the churn date says when
            "status": ["churned", "churned", "expired", "churned"],
            "churn_date": pd.to_datetime(["2024-07-15", "2024-06-30", "2024-05-31", None]),
        }
    )
    out = account_status(acc, as_of=AS_OF, contracts=contracts).set_index("account_id")
    assert out["status"].to_dict() == {
        "later": "active",  # churns after the as-of date: still a customer then
        "on_day": "churned",  # on the as-of date counts
        "expired": "churned",  # a churn date on or before as-of, whatever the status
        "undated": "churned",  # status churned without any date
    }
    assert out.loc["on_day", "churn_date"] == pd.Timestamp("2024-06-30")
    assert pd.isna(out.loc["undated", "churn_date"]) and pd.isna(out.loc["later", "churn_date"])


def test_without_contracts_accounts_are_active_or_lapsed_only():
    acc = _accounts(a="2024-06-30", b="2022-02-01", c="2023-09-15")
    out = account_status(acc, as_of=AS_OF)
    assert out["status"].tolist() == ["active", "lapsed", "active"]
    assert out["churn_date"].isna().all() and not out["running_contract"].any()


def test_a_running_or_later_contract_overrides_churn_and_lapse():
    acc = _accounts(back="2024-05-01", running="2022-01-10", other_line="2024-05-01")
    contracts = pd.DataFrame(
        {
            "contract_id": ["c1", "c2", "c3", "c4", "c5"],
            "account_id": ["back", "back", "running", "other_line", "other_line"],
            "start_date": pd.to_datetime(
                ["2021-01-01", "2023-03-01", "2023-01-01", "2022-01-01", "2022-01-01"]
            ),
            "end_date": pd.to_datetime(
                ["2022-12-31", "2024-02-28", "2025-12-31", "2023-06-30", "2025-06-30"]
            ),
            "status": ["churned", "expired", "active", "churned", "active"],
            "churn_date": pd.to_datetime(["2022-12-31", None, None, "2023-06-30", None]),
        }
    )
    churn = contract_churn(contracts, as_of=AS_OF).set_index("account_id")
    assert not churn["churned"].any()
    assert churn["running_contract"].to_dict() == {
        "back": False,
        "running": True,
        "other_line": True,
    }
    assert _status(acc, contracts=contracts) == {
        "back": "active",  # a contract started after the churn: the customer came back
        "running": "active",  # no purchase for two years, but a contract runs (billed ahead)
        "other_line": "active",  # one line churned, another contract still runs
    }


# --------------------------------------------------------------------------- tiers


RULES = SegmentationSettings(
    thresholds="absolute",
    key_min_score=60,
    key_capacity=None,
    key_max_share=0.25,
    key_min_share_of_wallet=None,
    growth_min_potential_pct=0.55,
    growth_max_share_of_wallet=0.2,
    growth_min_score=50,
)


def _book(status: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": list("abcdefghi"),
            "score": [95.0, 90.0, 85.0, 80.0, 75.0, 70.0, 55.0, 30.0, 20.0],
            "share_of_wallet": [0.0, 0.5, 0.4, 0.1, 0.1, 0.1, 0.1, 0.5, 0.5],
            "headroom": [900.0, 10.0, 20.0, 500.0, 400.0, 300.0, 200.0, 30.0, 40.0],
            "status": status,
            "last_purchase": pd.to_datetime(["2022-03-04"] + ["2024-06-01"] * 8),
            "churn_date": pd.to_datetime([None] * 9),
        }
    )


def test_lost_accounts_are_standard_and_give_their_place_to_live_ones():
    live = _book(["active"] * 9)
    lost = _book(["lapsed"] + ["active"] * 8)
    before = assign_tiers(live, RULES).set_index("account_id")
    after = assign_tiers(lost, RULES).set_index("account_id")
    # all active: a, the lost-looking account (sow 0, largest headroom), is a key account
    assert before.loc["a", "tier"] == "key"
    assert before.index[before["tier"] == "key"].tolist() == ["a", "b"]
    # headroom percentile of g among all nine: 4/8 = 0.5 < 0.55, not growth
    assert before.index[before["tier"] == "growth"].tolist() == ["d", "e", "f"]
    # lapsed: a is standard and says why; the capacity (25 % of 8 active = 2) goes to b, c
    assert after.loc["a", "tier"] == "standard"
    assert after.loc["a", "tier_reason"] == (
        "standard: lapsed, no purchase in the last 12 months (last purchase 2022-03-04)"
    )
    assert after.index[after["tier"] == "key"].tolist() == ["b", "c"]
    # potential is ranked among the 8 active accounts: d (500) tops it, and g (200) now
    # ranks 4/7 >= 0.55, no longer pushed down by the lost account's whole-wallet headroom
    assert np.isnan(after.loc["a", "potential_pct"])
    assert after.loc["d", "potential_pct"] == pytest.approx(1.0)
    assert after.loc["g", "potential_pct"] == pytest.approx(4 / 7)
    assert after.index[after["tier"] == "growth"].tolist() == ["d", "e", "f", "g"]


def test_churned_reason_and_a_book_of_lost_accounts_has_no_key_account():
    book = _book(["churned"] * 9).assign(churn_date=pd.Timestamp("2024-01-31"))
    tiers = assign_tiers(book, RULES)
    assert (tiers["tier"] == "standard").all()
    assert tiers["tier_reason"].iloc[0] == "standard: churned on 2024-01-31 (contracts)"
    assert "解約" in assign_tiers(book, RULES, lang="ja")["tier_reason"].iloc[0]
    rule = tier_rule(book, RULES)
    assert (rule.n_key, rule.n_churned, rule.n_lapsed) == (0, 9, 0)
    assert rule.no_key_reason == "no_active"
    assert rule.no_key_text == "No key accounts: every account is lapsed or churned."


# --------------------------------------------------------------------------- win-back


def test_revenue_before_loss_sums_the_12_months_to_the_last_purchase():
    scored = _accounts(x="2023-05-20", y=None)
    monthly = pd.DataFrame(
        {
            "account_id": ["x"] * 4 + ["y"],
            "month": pd.to_datetime(
                ["2022-05-01", "2022-06-01", "2023-05-01", "2023-07-01", "2023-01-01"]
            ),
            "revenue": [1000.0, 10.0, 20.0, 5000.0, 7.0],
            "gross_profit": [100.0, 1.0, 2.0, 500.0, np.nan],
        }
    )
    out = revenue_before_loss(scored, monthly).set_index("account_id")
    # June 2022 .. May 2023: not May 2022 (13 months back), not July 2023 (after)
    assert out.loc["x", "revenue_before_loss"] == 30.0
    assert out.loc["x", "gross_profit_before_loss"] == 3.0
    assert out.loc["y", "revenue_before_loss"] == 0.0  # never bought


def _win_back_book() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ten active accounts (revenue 10..100) and four lost ones, scored on revenue and trend."""
    ids = [f"A{i}" for i in range(10)] + ["big", "small", "old", "huge"]
    revenue = [10.0 * (i + 1) for i in range(10)] + [0.0] * 4
    trend = [float(i) for i in range(10)] + [-1.0] * 4
    scored = pd.DataFrame(
        {
            "account_id": ids,
            "revenue_12m": revenue,
            "trend": trend,
            "status": ["active"] * 10 + ["lapsed", "lapsed", "churned", "lapsed"],
            "last_purchase": pd.to_datetime(
                ["2024-06-01"] * 10 + ["2023-05-15", "2023-03-10", "2021-11-30", "2023-04-02"]
            ),
            "churn_date": pd.to_datetime([None] * 12 + ["2021-12-31", None]),
        }
    )
    months = {"big": ("2023-04-01", 94.0), "small": ("2023-02-01", 5.0)}
    months |= {"old": ("2021-06-01", 500.0), "huge": ("2023-03-01", 1000.0)}
    monthly = pd.DataFrame(
        {
            "account_id": list(months),
            "month": pd.to_datetime([m for m, _ in months.values()]),
            "revenue": [r for _, r in months.values()],
            "gross_profit": np.nan,
        }
    )
    return scored, monthly


def test_win_back_lists_lost_accounts_that_were_large_before_they_left():
    from kam_analysis.valuation import attractiveness_score

    scored, monthly = _win_back_book()
    rules = SegmentationSettings(
        key_min_score=0, key_capacity=2, key_max_share=None, key_min_share_of_wallet=None
    )
    only_revenue = ValuationSettings(weights={"revenue_12m": 1.0})
    tiers = assign_tiers(attractiveness_score(scored, only_revenue.weights), rules)
    book = attractiveness_score(scored, only_revenue.weights).assign(tier=tiers["tier"].to_numpy())
    wins = win_back(book, monthly, as_of=AS_OF, valuation=only_revenue, settings=rules)
    # big (94 in its last year) would rank between the two key accounts (90, 100): key;
    # huge (1000) too; small (5) would not; old (500) left 30 months ago, beyond 24 months
    assert wins["account_id"].tolist() == ["huge", "big"]
    assert set(wins["tier_if_active"]) == {"key"} and set(wins["win_back_basis"]) == {"key"}
    assert wins["revenue_before_loss"].tolist() == [1000.0, 94.0]
    assert (
        wins["win_back_reason"].iloc[1].startswith("no purchase since 2023-05-15; would be a key")
    )
    longer = rules.model_copy(update={"win_back_months": 36})
    again = win_back(book, monthly, as_of=AS_OF, valuation=only_revenue, settings=longer)
    assert again["account_id"].tolist() == ["huge", "old", "big"]  # old left within 36 months

    # scored half on trend (unknown for a lost account: the active median), the key places go
    # to the growing accounts; huge still bought more than the median key account (95):
    # "size"; big (94) did not
    with_trend = ValuationSettings(weights={"revenue_12m": 0.5, "trend": 0.5})
    book2 = attractiveness_score(scored, with_trend.weights)
    book2 = book2.assign(tier=assign_tiers(book2, rules)["tier"].to_numpy())
    wins2 = win_back(book2, monthly, as_of=AS_OF, valuation=with_trend, settings=rules)
    assert wins2.set_index("account_id")["win_back_basis"].to_dict() == {"huge": "size"}
    assert wins2["tier_if_active"].tolist() == ["standard"]


# --------------------------------------------------------------------------- generated book


@pytest.fixture(scope="module")
def book(demo_context):
    """The scored demo book (400 accounts, seed 3) joined with its planted truth."""
    ctx = demo_context(400, 3)
    truth = pd.read_parquet(ctx.data_dir / "ground_truth_accounts.parquet")
    truth = truth[["account_id", "true_tier", "churned", "churn_date", "contractual"]]
    scored = ctx.scored.merge(
        truth.rename(columns={"churn_date": "true_churn_date"}), on="account_id"
    )
    return ctx, scored


@pytest.mark.slow
def test_no_account_lost_in_the_ground_truth_is_key_or_growth(book):
    ctx, s = book
    as_of = pd.Timestamp(ctx.as_of)
    gone = s["churned"] & (s["true_churn_date"] <= as_of)
    # lost in a way the data shows: a contract customer that churned, or one that has not
    # bought for 12 months (a transactional customer that left last month still looks live)
    shown = gone & (s["contractual"] | (s["true_churn_date"] <= lapse_cutoff(as_of, 12)))
    assert shown.sum() > 50
    assert s.loc[shown, "status"].isin(["lapsed", "churned"]).all()
    assert (s.loc[~gone, "status"] == "active").all()  # no live account is called lost
    assert (s.loc[shown, "tier"] == "standard").all()
    assert s.loc[shown, "tier_reason"].str.match(r"standard: (lapsed|churned)").all()
    # the bug of issue 17: the same scores without the status make lost accounts growth
    old = assign_tiers(s.drop(columns="status"), ctx.config.segmentation, reasons=False)
    assert old.loc[shown.to_numpy(), "tier"].eq("growth").sum() >= 5
    # only active accounts count in the capacity (10 % of the active accounts)
    assert ctx.tier_rule.capacity == round(0.10 * (s["status"] == "active").sum())
    assert ctx.tier_rule.n_churned == (s["status"] == "churned").sum() > 0


@pytest.mark.slow
def test_win_back_list_holds_lost_accounts_that_were_large(book):
    ctx, s = book
    wins = ctx.win_back
    assert 3 <= len(wins) == s["win_back"].sum()
    on_list = s.set_index("account_id").loc[wins["account_id"]]
    # only lost accounts (lost in the truth too), standard, that left in the last 24 months
    assert on_list["status"].isin(["lapsed", "churned"]).all()
    assert on_list["churned"].all()
    assert (on_list["tier"] == "standard").all()
    left = on_list["churn_date"].fillna(on_list["last_purchase"])
    assert (left > lapse_cutoff(ctx.as_of, 24)).all()
    assert on_list["win_back_reason"].str.contains("would be a|median key account").all()
    # large before they left: the first bought several times what a typical live account buys
    live_median = s.loc[s["status"] == "active", "revenue_12m"].median()
    assert wins["revenue_before_loss"].iloc[0] > 5 * live_median
    # in list order: key, growth, size; largest first within each
    assert wins["win_back_basis"].map(WIN_BACK_BASES.index).is_monotonic_increasing
    for _, rows in wins.groupby("win_back_basis"):
        assert rows["revenue_before_loss"].is_monotonic_decreasing
    # and mostly planted key or growth accounts, far above their share among recent losses
    lost = s["status"].isin(["lapsed", "churned"])
    recent = s["churn_date"].fillna(s["last_purchase"]) > lapse_cutoff(ctx.as_of, 24)
    base = s.loc[lost & recent, "true_tier"].isin(["key", "growth"]).mean()
    share = on_list["true_tier"].isin(["key", "growth"]).mean()
    assert share >= 0.5 and share > 2 * base


def test_kpi_churn_status_is_account_status():
    """One churn rule: kpi.churn_status reports account_status, not a rule of its own."""
    accounts = pd.DataFrame({"account_id": ["old", "recent", "left", "never"]})
    tx = pd.DataFrame(
        {
            "account_id": ["old", "recent", "left", "recent"],
            "date": pd.to_datetime(["2024-06-29", "2025-06-01", "2025-05-01", "2024-01-01"]),
            "revenue": [10.0, 10.0, 10.0, 10.0],
        }
    )
    contracts = pd.DataFrame(
        {
            "account_id": ["left"],
            "status": ["churned"],
            "start_date": pd.to_datetime(["2024-01-01"]),
            "churn_date": pd.to_datetime(["2025-06-15"]),
        }
    )
    last = tx.groupby("account_id")["date"].max()
    expected = account_status(
        pd.DataFrame(
            {
                "account_id": accounts["account_id"],
                "last_purchase": accounts["account_id"].map(last),
            }
        ),
        as_of="2025-06-30",
        contracts=contracts,
    )
    got = kpi.churn_status(accounts, as_of="2025-06-30", contracts=contracts, transactions=tx)
    assert got["status"].tolist() == expected["status"].tolist()
    # 2024-06-29 is more than 12 calendar months before 2025-06-30: lapsed
    assert got["status"].tolist() == ["lapsed", "active", "churned", "active"]
    assert got["churned"].tolist() == [True, False, True, False]
    assert got["lapsed"].tolist() == [True, False, False, False]
    assert got["contract_churned"].tolist() == [False, False, True, False]

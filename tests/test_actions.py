"""Account plans: the suggested-action rules on hand-made rows, the per-account tables,
and the whole plan on a small generated dataset."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from kam_analysis.actions import (
    ACTION_COLUMNS,
    ACTION_IDS,
    AccountPlanError,
    ActionSettings,
    account_monthly,
    account_plan_data,
    criterion_label,
    open_opportunities,
    poc_summary,
    price_cut_table,
    product_line_view,
    resolve_account_id,
    suggest_actions,
    survey_summary,
    top_criteria,
)

# --------------------------------------------------------------------------- hand-made rows

HEALTHY_ACCOUNT = {"revenue_growth": 0.08, "share_of_wallet": 0.70, "headroom": 3e6}
QUIET_RISKS = {
    "n_contacts": 6,
    "top_contact_share": 0.3,
    "n_stale_contacts": 0,
    "single_threaded": False,
    "no_executive_sponsor": False,
    "high_influence_blocker": False,
    "stale_contacts": False,
    "champion_concentration": False,
}


def _kpis(utilisation_status: str = "on_track", value: float = 0.85) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "kpi_id": ["revenue", "utilisation"],
            "value": [1e8, value],
            "target": [0.05, 0.80],
            "status": ["on_track", utilisation_status],
        }
    )


def _quiet_inputs() -> dict:
    """Inputs for which no rule fires."""
    return dict(
        risks=dict(QUIET_RISKS),
        whitespace=pd.DataFrame({"product_line": ["A", "B"], "whitespace_value": [0.0, 0.0]}),
        kpis=_kpis(),
        survey={"nps": 45.0, "n": 12, "p_detractors": 0.1, "target": 30.0, "months": 12},
        governance={
            "qbr_count": 4,
            "qbr_plan": 4.0,
            "executive_meeting_count": 2,
            "executive_meeting_plan": 2.0,
            "attainment": 1.0,
            "status": "on_track",
        },
        opportunities=pd.DataFrame(
            {"is_poc": [False], "amount": [5e6], "weighted_value": [2e6], "stage": ["proposal"]}
        ),
        exposure={"gross_profit_gap": 1e6, "gross_profit_gap_pct": 0.001, "months": 36},
        price=pd.DataFrame({"price_cut": [0.05], "break_even_volume": [0.05 / 0.45]}),
    )


def _fired(account=HEALTHY_ACCOUNT, **changes) -> pd.DataFrame:
    inputs = _quiet_inputs()
    inputs.update(changes)
    return suggest_actions(account, **inputs)


def test_no_rule_fires_for_a_healthy_account():
    out = _fired()
    assert list(out.columns) == list(ACTION_COLUMNS)
    assert out.empty


def test_nothing_given_but_the_account_row_fires_nothing():
    assert suggest_actions(HEALTHY_ACCOUNT).empty


RULE_CASES = [
    (
        "blocker",
        {"risks": {**QUIET_RISKS, "high_influence_blocker": True, "n_blockers": 2}},
        None,
        "2 blocker(s)",
    ),
    (
        "executive_sponsor",
        {"risks": {**QUIET_RISKS, "no_executive_sponsor": True, "n_executives": 1}},
        None,
        "(1 executive contact(s) known)",
    ),
    (
        "nps_recovery",
        {"survey": {"nps": 10.0, "n": 8, "p_detractors": 0.25, "target": 30.0, "months": 12}},
        None,
        "NPS +10 from 8 answers in the last 12 months, 25% detractors (target +30)",
    ),
    ("revenue_decline", {}, {**HEALTHY_ACCOUNT, "revenue_growth": -0.123}, "-12.3%"),
    (
        "broaden_contacts",
        {
            "risks": {
                **QUIET_RISKS,
                "single_threaded": True,
                "n_contacts": 1,
                "top_contact_share": float("nan"),
                "roles_missing": "executive, it, finance, legal",
            }
        },
        None,
        "single-threaded: only 1 known contact(s)",
    ),
    (
        "review_cadence",
        {
            "governance": {
                "qbr_count": 1,
                "qbr_plan": 4.0,
                "executive_meeting_count": 0,
                "executive_meeting_plan": 2.0,
                "attainment": 0.0,
                "status": "off_track",
            }
        },
        None,
        "0/2 executive meetings",
    ),
    ("adoption", {"kpis": _kpis("off_track", 0.55)}, None, "seat utilisation 55%"),
    (
        "poc_criteria",
        {
            "opportunities": pd.DataFrame(
                {
                    "is_poc": [True, True, False],
                    "amount": [4e6, 6e6, 9e6],
                    "weighted_value": [1e6, 2e6, 5e6],
                }
            )
        },
        None,
        "2 open PoC(s) worth ¥10.0M (¥3.0M stage-weighted)",
    ),
    (
        "cross_sell",
        {"whitespace": pd.DataFrame({"product_line": ["X"], "whitespace_value": [2.5e6]})},
        {**HEALTHY_ACCOUNT, "share_of_wallet": 0.18},
        "share of wallet 18%",
    ),
    (
        "upsell_headroom",
        {},
        {**HEALTHY_ACCOUNT, "share_of_wallet": 0.2, "headroom": 4e6},
        "share of wallet 20%, headroom ¥4.0M",
    ),
    (
        "protect_exposure",
        {"exposure": {"gross_profit_gap": 5e8, "gross_profit_gap_pct": 0.045, "months": 36}},
        None,
        "¥500.0M gross profit over 36 months (4.5% of the book)",
    ),
    (
        "price_defence",
        {"price": pd.DataFrame({"price_cut": [0.05], "break_even_volume": [0.25]})},
        None,
        "after a 5% price cut: +25%",
    ),
    (
        "reengage_stale",
        {
            "risks": {
                **QUIET_RISKS,
                "stale_contacts": True,
                "n_stale_contacts": 3,
                "stale_days": 120,
            }
        },
        None,
        "3 influential contact(s) not touched in 120 days",
    ),
    (
        "second_champion",
        {"risks": {**QUIET_RISKS, "champion_concentration": True, "n_champions": 1}},
        None,
        "1 champion(s)",
    ),
]


@pytest.mark.parametrize(("action_id", "changes", "account", "evidence"), RULE_CASES)
def test_each_rule_fires_alone_with_its_number(action_id, changes, account, evidence):
    out = _fired(account or HEALTHY_ACCOUNT, **changes)
    assert out["action_id"].tolist() == [action_id]
    assert evidence in out["evidence"].iloc[0]
    assert out["priority"].iloc[0] == ACTION_IDS.index(action_id) + 1


def test_every_rule_is_covered_by_the_parametrised_test():
    ids = {case[0] for case in RULE_CASES}
    assert ids == set(ACTION_IDS)


def test_cross_sell_names_the_largest_lines_with_the_share_of_wallet():
    # the guide's example: "share of wallet 18% with whitespace in X and Y"
    ws = pd.DataFrame(
        {
            "product_line": ["Small", "Y", "Zero", "X", "Tiny"],
            "whitespace_value": [1e6, 3e6, 0.0, 5e6, 0.5e6],
        }
    )
    account = {**HEALTHY_ACCOUNT, "share_of_wallet": 0.18}
    out = _fired(account, whitespace=ws)
    row = out.set_index("action_id").loc["cross_sell"]
    assert row["action"] == "Cross-sell X, Y and Small"  # largest first, at most 3
    assert row["evidence"].startswith("share of wallet 18%")
    assert "¥9.5M a year in 4 line(s)" in row["evidence"]
    assert row["value"] == pytest.approx(9.5e6)
    two = _fired(account, whitespace=ws, settings=ActionSettings(cross_sell_max_lines=2))
    assert two.set_index("action_id").loc["cross_sell", "action"] == "Cross-sell X and Y"


def test_upsell_only_without_whitespace_and_below_the_share_threshold():
    low = {**HEALTHY_ACCOUNT, "share_of_wallet": 0.2, "headroom": 4e6}
    ws = pd.DataFrame({"product_line": ["X"], "whitespace_value": [1e6]})
    assert _fired(low, whitespace=ws)["action_id"].tolist() == ["cross_sell"]
    assert _fired({**low, "share_of_wallet": 0.6})["action_id"].tolist() == []
    assert _fired({**low, "headroom": 0.0})["action_id"].tolist() == []
    assert _fired({**low, "share_of_wallet": float("nan")})["action_id"].tolist() == []


def test_nps_rule_needs_enough_answers_and_fires_on_detractors():
    few = {"nps": -20.0, "n": 4, "p_detractors": 0.5, "target": 30.0, "months": 12}
    assert _fired(survey=few).empty  # 4 < 5 answers
    assert _fired(survey=few, settings=ActionSettings(nps_min_responses=4))[
        "action_id"
    ].tolist() == ["nps_recovery"]
    # NPS above target but a third detractors
    split = {"nps": 35.0, "n": 30, "p_detractors": 0.3, "target": 30.0, "months": 12}
    assert _fired(survey=split)["action_id"].tolist() == ["nps_recovery"]
    assert _fired(survey={**split, "p_detractors": 0.29}).empty
    # the KPI target is used
    assert _fired(survey={**split, "p_detractors": 0.1, "target": 40.0})["action_id"].tolist() == [
        "nps_recovery"
    ]


def test_revenue_decline_threshold_is_inclusive():
    assert _fired({**HEALTHY_ACCOUNT, "revenue_growth": -0.05})["action_id"].tolist() == [
        "revenue_decline"
    ]
    assert _fired({**HEALTHY_ACCOUNT, "revenue_growth": -0.049}).empty
    assert _fired({**HEALTHY_ACCOUNT, "revenue_growth": None}).empty


def test_broaden_contacts_names_the_missing_roles_translated():
    risks = {
        **QUIET_RISKS,
        "single_threaded": True,
        "n_contacts": 3,
        "top_contact_share": 0.72,
        "roles_missing": "executive, it, finance, legal",
    }
    en = _fired(risks=risks).iloc[0]
    assert en["action"] == "Broaden the relationship: add contacts in Executive, IT and Finance"
    assert (
        en["evidence"]
        == "single-threaded: 3 contact(s), the top contact holds 72% of the activities"
    )
    ja = suggest_actions(HEALTHY_ACCOUNT, risks=risks, lang="ja").iloc[0]
    assert "経営層" in ja["action"] and "72%" in ja["evidence"]
    none_missing = _fired(risks={**risks, "roles_missing": ""}).iloc[0]
    assert none_missing["action"].endswith("other decision roles")


def test_utilisation_at_risk_fires_but_no_data_does_not():
    assert _fired(kpis=_kpis("at_risk", 0.75))["action_id"].tolist() == ["adoption"]
    assert _fired(kpis=_kpis("no_data", float("nan"))).empty


def test_price_defence_when_the_cut_reaches_the_margin():
    price = price_cut_table(1e8, 0.04, (5.0,))
    assert math.isinf(price["break_even_volume"].iloc[0])
    out = _fired(price=price)
    assert out["action_id"].tolist() == ["price_defence"]
    assert out["evidence"].iloc[0].endswith("impossible (the cut reaches the margin)")


def test_protect_exposure_falls_back_to_the_revenue_share_without_gross_profit():
    # no cost data: the gross-profit gap is unknown (NaN), the revenue share decides
    exposure = {
        "gross_profit_gap": math.nan,
        "gross_profit_gap_pct": math.nan,
        "revenue_gap": 2.5e6,
        "revenue_gap_pct": 0.05,
        "months": 24,
    }
    out = _fired(exposure=exposure)
    assert out["action_id"].tolist() == ["protect_exposure"]
    assert out["value"].iloc[0] == pytest.approx(0.05)
    evidence = out["evidence"].iloc[0]
    assert "of revenue over 24 months (5.0% of the book; gross profit unknown)" in evidence
    assert "¥2.5M" in evidence
    # below the threshold (2 % of the book by default) nothing fires
    assert _fired(exposure={**exposure, "revenue_gap_pct": 0.019}).empty
    # a known gross-profit gap still decides, even when the revenue share is large
    known = {**exposure, "gross_profit_gap": 1e5, "gross_profit_gap_pct": 0.001}
    assert _fired(exposure=known).empty


def test_actions_come_in_priority_order_and_are_capped():
    risks = {
        **QUIET_RISKS,
        "high_influence_blocker": True,
        "no_executive_sponsor": True,
        "single_threaded": True,
        "stale_contacts": True,
        "champion_concentration": True,
    }
    account = {"revenue_growth": -0.3, "share_of_wallet": 0.1, "headroom": 1e7}
    out = _fired(account, risks=risks, kpis=_kpis("off_track", 0.4))
    assert out["action_id"].tolist() == [
        "blocker",
        "executive_sponsor",
        "revenue_decline",
        "broaden_contacts",
        "adoption",
        "upsell_headroom",
        "reengage_stale",
        "second_champion",
    ]
    assert out["priority"].is_monotonic_increasing
    capped = suggest_actions(account, risks=risks, max_actions=3)
    assert capped["action_id"].tolist() == ["blocker", "executive_sponsor", "revenue_decline"]


def test_japanese_texts_have_the_same_rules():
    risks = {**QUIET_RISKS, "no_executive_sponsor": True, "n_executives": 0}
    account = {**HEALTHY_ACCOUNT, "share_of_wallet": 0.18}
    ws = pd.DataFrame({"product_line": ["X", "Y"], "whitespace_value": [2e6, 1e6]})
    en = suggest_actions(account, risks=risks, whitespace=ws)
    ja = suggest_actions(account, risks=risks, whitespace=ws, lang="ja")
    assert ja["action_id"].tolist() == en["action_id"].tolist()
    assert ja["action"].iloc[0] == "経営層スポンサーとの面談を設定する"
    assert ja["action"].iloc[1] == "X、Yをクロスセルする"
    assert "¥300.0万" in ja["evidence"].iloc[1]  # compact Japanese money units


def test_bad_inputs_are_rejected_with_clear_messages():
    two_accounts = pd.concat([_kpis(), _kpis()], ignore_index=True)
    with pytest.raises(AccountPlanError, match="2 rows for KPI 'utilisation'"):
        suggest_actions(HEALTHY_ACCOUNT, kpis=two_accounts)
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        suggest_actions(HEALTHY_ACCOUNT, lang="fr")
    with pytest.raises(ValueError, match="price cuts must be percentages"):
        ActionSettings(price_cuts_pct=(5.0, 120.0))
    with pytest.raises(ValueError, match="max_actions"):
        ActionSettings(max_actions=0)
    with pytest.raises(ValueError, match="extra"):
        ActionSettings(max_action=3)


# --------------------------------------------------------------------------- per-account tables


def _scored() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["A1", "A2", "A3", "B9"],
            "score": [90.0, 95.0, 80.0, 80.0],
            "tier": ["key", "growth", "key", "key"],
        }
    )


def test_resolve_account_id_defaults_to_the_top_key_account():
    assert resolve_account_id(_scored()) == "A1"  # A2 scores higher but is not key
    assert resolve_account_id(_scored(), "  A3 ") == "A3"
    no_key = _scored().assign(tier="standard")
    assert resolve_account_id(no_key) == "A2"
    tie = _scored().drop(index=0)  # A3 and B9 tie on 80: smallest id
    assert resolve_account_id(tie.assign(tier="key")) == "A2"
    assert resolve_account_id(tie[tie["account_id"] != "A2"]) == "A3"


def test_unknown_account_id_names_it_and_similar_ids():
    with pytest.raises(
        AccountPlanError, match=r"account_id 'A4' is not in the dataset \(4 accounts\)"
    ):
        resolve_account_id(_scored(), "A4")
    with pytest.raises(AccountPlanError, match="similar ids: A1"):
        resolve_account_id(_scored(), "A11")
    with pytest.raises(AccountPlanError, match="is empty"):
        resolve_account_id(_scored().iloc[:0])
    with pytest.raises(AccountPlanError, match="lacks column 'score'"):
        resolve_account_id(_scored().drop(columns="score"))


def test_criterion_label_uses_the_shared_then_the_plan_keys():
    assert criterion_label("strategic_fit") == "Strategic fit"  # criterion.*
    assert criterion_label("gross_profit_12m", "ja") == "粗利（12か月）"  # plan.criterion.*
    assert criterion_label("no_such_thing") == "No such thing"


def test_top_criteria_sorted_by_contribution():
    row = pd.Series({"score": 70, "contrib_a": 5.0, "contrib_b": 12.0, "contrib_c": np.nan, "x": 1})
    out = top_criteria(row, n=2)
    assert out["criterion"].tolist() == ["b", "a"]
    assert out["contribution"].tolist() == [12.0, 5.0]


def _opportunities() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "opportunity_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
            "account_id": ["A", "A", "A", "A", "B", "A"],
            "stage": [
                "proposal",
                "negotiation",
                "closed_won",
                "prospecting",
                "proposal",
                "closed_lost",
            ],
            "amount": [100.0, 50.0, 999.0, 1000.0, 10.0, 20.0],
            "probability": [np.nan, 0.9, np.nan, np.nan, np.nan, np.nan],
            "is_poc": [True, False, True, None, True, True],
            "close_date": pd.to_datetime(
                ["2026-06-01", "2026-05-01", "2025-12-01", "2026-09-01", "2026-06-01", "2024-12-01"]
            ),
        }
    )


def test_open_opportunities_weights_by_stage_unless_a_probability_is_given():
    out = open_opportunities(_opportunities(), "A")
    assert out["opportunity_id"].tolist() == ["o4", "o2", "o1"]
    # prospecting 0.1 * 1000 = 100; o2 own probability 0.9 * 50 = 45; proposal 0.4 * 100 = 40
    assert out["weighted_value"].tolist() == pytest.approx([100.0, 45.0, 40.0])
    assert out["is_poc"].tolist() == [False, False, True]
    custom = open_opportunities(
        _opportunities(),
        "A",
        stage_weights={
            "prospecting": 0.0,
            "qualification": 0.2,
            "proposal": 1.0,
            "negotiation": 0.5,
        },
    )
    assert custom["opportunity_id"].tolist() == ["o1", "o2", "o4"]
    with pytest.raises(AccountPlanError, match="no weight for open stage"):
        open_opportunities(_opportunities(), "A", stage_weights={"proposal": 0.4})
    with pytest.raises(AccountPlanError, match=r"lacks column\(s\) \['amount'\]"):
        open_opportunities(_opportunities().drop(columns="amount"), "A")


def test_poc_summary_counts_open_and_recently_closed_pocs():
    out = poc_summary(_opportunities(), "A", as_of="2026-03-31")
    # o1 open PoC; o3 won 2025-12 (in window); o6 lost 2024-12 (outside 12 months)
    assert out == {"open": 1, "won": 1, "lost": 0, "success_rate": 1.0}
    assert poc_summary(None, "A", as_of="2026-03-31")["open"] == 0
    longer = poc_summary(_opportunities(), "A", as_of="2026-03-31", months=24)
    assert (longer["won"], longer["lost"], longer["success_rate"]) == (1, 1, 0.5)


def test_survey_summary_known_nps_in_the_window():
    surveys = pd.DataFrame(
        {
            "account_id": ["A"] * 5 + ["B"],
            "date": pd.to_datetime(
                ["2025-05-01", "2025-09-01", "2026-01-10", "2026-03-31", "2024-01-01", "2026-01-01"]
            ),
            "nps": [10, 9, 8, 3, 0, 0],
            "csat": [5, 4, np.nan, 2, 1, 1],
        }
    )
    out = survey_summary(surveys, "A", as_of="2026-03-31", target=40)
    # in window: 10, 9 (promoters), 8 (passive), 3 (detractor): NPS = 100 * (2 - 1) / 4
    assert out["n"] == 4
    assert out["nps"] == pytest.approx(25.0)
    assert out["p_detractors"] == pytest.approx(0.25)
    assert out["csat"] == pytest.approx(11 / 3)
    assert (out["target"], out["months"]) == (40.0, 12)
    empty = survey_summary(None, "A", as_of="2026-03-31")
    assert empty["n"] == 0 and math.isnan(empty["nps"])


def test_price_cut_table_known_answers():
    out = price_cut_table(1_000_000, 0.30, (5, 10))
    assert out["price_cut"].tolist() == [0.05, 0.10]
    assert out["gross_profit"].tolist() == pytest.approx([300_000, 300_000])
    assert out["gross_profit_change"].tolist() == pytest.approx([-50_000, -100_000])
    assert out["margin_after"].tolist() == pytest.approx([0.25 / 0.95, 0.20 / 0.90])
    # break-even volume c / (m - c)
    assert out["break_even_volume"].tolist() == pytest.approx([0.05 / 0.25, 0.10 / 0.20])
    assert price_cut_table(float("nan"), 0.3, (5,)).empty
    assert price_cut_table(1_000_000, float("nan"), (5,)).empty  # no cost data: unknown margin


def test_account_monthly_fills_months_without_sales():
    monthly = pd.DataFrame(
        {
            "account_id": ["A", "A", "B"],
            "month": pd.to_datetime(["2026-01-01", "2026-03-01", "2026-02-01"]),
            "revenue": [10.0, 30.0, 99.0],
            "gross_profit": [4.0, 12.0, 50.0],
        }
    )
    out = account_monthly(monthly, "A", as_of="2026-03-15", months=4)
    assert out["month"].dt.strftime("%Y-%m").tolist() == [
        "2025-12",
        "2026-01",
        "2026-02",
        "2026-03",
    ]
    assert out["revenue"].tolist() == [0.0, 10.0, 0.0, 30.0]
    assert out["gross_profit"].tolist() == [0.0, 4.0, 0.0, 12.0]


def test_account_monthly_keeps_unknown_gross_profit_unknown():
    # no cost data: gross profit is NaN in every month; months without sales stay NaN, not 0
    monthly = pd.DataFrame(
        {
            "account_id": ["A", "A"],
            "month": pd.to_datetime(["2026-01-01", "2026-03-01"]),
            "revenue": [10.0, 30.0],
            "gross_profit": [np.nan, np.nan],
        }
    )
    out = account_monthly(monthly, "A", as_of="2026-03-15", months=3)
    assert out["revenue"].tolist() == [10.0, 0.0, 30.0]
    assert out["gross_profit"].isna().all()


def test_product_line_view_joins_spend_and_whitespace():
    tx = pd.DataFrame(
        {
            "account_id": ["A", "A", "A", "B"],
            "date": pd.to_datetime(["2025-06-01", "2026-03-01", "2024-01-01", "2026-01-01"]),
            "product_line": ["P", "P", "Old", "Q"],
            "revenue": [100.0, 50.0, 500.0, 70.0],
        }
    )
    ws = pd.DataFrame(
        {
            "account_id": ["A", "A", "A"],
            "product_line": ["P", "Q", "Old"],
            "whitespace_value": [0.0, 400.0, 0.0],
            "peer_adoption": [0.9, 0.7, 0.1],
        }
    )
    out = product_line_view(tx, ws, "A", as_of="2026-03-31")
    assert out["product_line"].tolist() == [
        "Q",
        "P",
    ]  # "Old" not bought in 12 months, no whitespace
    assert out["revenue_12m"].tolist() == [0.0, 150.0]
    assert out["whitespace_value"].tolist() == [400.0, 0.0]
    assert out["peer_adoption"].tolist() == [0.7, 0.9]


def test_product_line_view_without_product_lines_is_empty():
    tx = pd.DataFrame(
        {
            "account_id": ["A", "A"],
            "date": pd.to_datetime(["2025-06-01", "2026-03-01"]),
            "revenue": [100.0, 50.0],
        }
    )
    ws = pd.DataFrame(columns=["account_id", "product_line", "whitespace_value"])
    out = product_line_view(tx, ws, "A", as_of="2026-03-31")
    assert out.empty
    assert list(out.columns) == ["product_line", "revenue_12m", "whitespace_value", "peer_adoption"]


# --------------------------------------------------------------------------- the whole plan


@pytest.fixture(scope="module")
def ctx(demo_context):
    return demo_context(150, seed=4)


def test_account_plan_for_the_top_key_account(ctx):
    plan = account_plan_data(ctx)
    top = ctx.key_accounts(1)[0]
    assert plan.account_id == top
    assert plan.account["tier"] == "key"
    assert int(plan.account["rank"]) == int(ctx.scored.set_index("account_id").loc[top, "rank"])
    assert plan.n_accounts == 150
    assert plan.name == ctx.scored.set_index("account_id").loc[top, "name"]
    # whitespace lines are the account's lines of the portfolio whitespace matrix
    assert (plan.whitespace["account_id"] == top).all()
    assert plan.whitespace["whitespace_value"].sum() == pytest.approx(plan.account["whitespace"])
    assert plan.product_lines["revenue_12m"].sum() == pytest.approx(plan.account["revenue_12m"])
    # one KPI row per KPI, the scorecard in the same order of families
    assert plan.kpis["kpi_id"].is_unique and len(plan.scorecard) == len(plan.kpis)
    assert plan.portfolio["quadrant"] in ("strategic", "star", "status", "streamline")
    assert plan.exposure["gross_profit_gap"] > 0
    assert len(plan.price) == 2 and (plan.price["gross_profit_change"] < 0).all()
    assert len(plan.monthly) == 24
    assert (
        plan.ltv is not None and plan.ltv["ltv_lower"] <= plan.ltv["ltv"] <= plan.ltv["ltv_upper"]
    )
    assert list(plan.actions.columns) == list(ACTION_COLUMNS)
    assert len(plan.actions) <= ActionSettings().max_actions
    # the plan's actions are what the rules give on the plan's own numbers
    again = suggest_actions(
        plan.account,
        risks=plan.risks,
        whitespace=plan.whitespace,
        kpis=plan.kpis,
        survey=plan.survey,
        governance=plan.governance,
        opportunities=plan.opportunities,
        exposure=plan.exposure,
        price=plan.price,
        max_actions=ActionSettings().max_actions,
    )
    pd.testing.assert_frame_equal(plan.actions, again)


def test_planted_relationship_gaps_become_actions(ctx):
    truth = pd.read_parquet(ctx.data_dir / "ground_truth_accounts.parquet").set_index("account_id")
    settings = ActionSettings(max_actions=len(ACTION_IDS))
    no_exec = [a for a in ctx.key_accounts() if truth.loc[a, "no_executive_stakeholder"]][:2]
    assert no_exec, "the generated key accounts should include one without an executive contact"
    for acc in no_exec:
        plan = account_plan_data(ctx, acc, settings=settings)
        assert plan.risks["n_executives"] == 0
        assert plan.risks["no_executive_sponsor"]
        assert "executive_sponsor" in plan.actions["action_id"].tolist()
        assert (
            "(0 executive contact(s) known)"
            in plan.actions.set_index("action_id").loc["executive_sponsor", "evidence"]
        )


def test_account_plan_unknown_id_is_a_clear_error(ctx):
    with pytest.raises(AccountPlanError, match="account_id 'NOPE-1' is not in the dataset"):
        account_plan_data(ctx, "NOPE-1")
    with pytest.raises(ValueError, match="C999999"):
        account_plan_data(ctx, "C999999")


def test_account_plan_in_japanese(ctx):
    plan = account_plan_data(ctx, ctx.key_accounts()[-1], lang="ja")
    assert plan.scorecard["kpi"].str.contains("[ぁ-んァ-ン一-龥]", regex=True).any()
    for text in plan.actions["action"]:
        assert any("\u3040" <= ch <= "\u9fff" for ch in text)


def test_plan_kpis_from_the_account_alone_equal_the_whole_book(ctx):
    """The plan computes KPIs on its own account's rows; the numbers match the book's."""
    from kam_analysis import kpi as kpi_mod
    from kam_analysis.actions import _plan_kpis

    settings = ctx.config.kpi.model_copy(
        update={"fiscal_year_start_month": ctx.config.data.fiscal_year_start_month}
    )
    book = kpi_mod.compute_kpis(
        ctx.monthly_lines,
        ctx.frame("accounts"),
        contracts=ctx.frame("contracts"),
        opportunities=ctx.frame("opportunities"),
        activities=ctx.frame("activities"),
        surveys=ctx.frame("surveys"),
        usage=ctx.frame("usage"),
        as_of=ctx.as_of,
        settings=settings,
    )
    book_assessed = kpi_mod.assess_kpis(book)
    book_card = kpi_mod.balanced_scorecard(book)
    ids = ctx.key_accounts(3) + ctx.scored.sort_values("score")["account_id"].head(2).tolist()
    for acc in ids:
        one = _plan_kpis(ctx, acc, settings)
        assert set(one.values["account_id"].astype(str)) == {acc}  # the account alone
        got = kpi_mod.assess_kpis(one).reset_index(drop=True)
        want = book_assessed[book_assessed["account_id"].astype(str) == acc]
        pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_dtype=False)
        card = kpi_mod.balanced_scorecard(one)
        want_card = book_card[book_card["account_id"].astype(str) == acc]
        np.testing.assert_allclose(
            card["health_score"].to_numpy(dtype=float),
            want_card["health_score"].to_numpy(dtype=float),
        )
    relative = settings.model_copy(
        update={"targets": {**settings.targets, "revenue": settings.targets["ltv"]}}
    )
    assert set(_plan_kpis(ctx, ids[0], relative).values["account_id"]) == set(
        book.values["account_id"]
    )  # a percentile target needs the whole book


@pytest.fixture(scope="module")
def cdnow_ctx():
    """The real CDNOW sample: no cost, no product line, no accounts file, 18 months."""
    from pathlib import Path

    from kam_analysis.context import load_context

    return load_context(Path(__file__).parent / "data" / "real" / "cdnow")


def test_account_plan_without_cost_product_lines_or_wallet(cdnow_ctx):
    ctx = cdnow_ctx
    plan = account_plan_data(ctx)
    # the LTV report's numbers (ctx.ltv), valued on revenue
    row = ctx.ltv.ltv.set_index("account_id").loc[plan.account_id]
    assert plan.ltv is not None and plan.ltv["basis"] == "revenue"
    assert plan.ltv["ltv"] == row["ltv"] and plan.ltv["ltv_upper"] == row["ltv_upper"]
    assert plan.ltv["ltv"] > 0
    # gross profit unknown: the exposure is revenue only, no price table, NaN monthly profit
    assert math.isnan(plan.exposure["gross_profit_gap"])
    assert plan.exposure["revenue_gap"] > 0 and 0 < plan.exposure["revenue_gap_pct"] < 1
    assert plan.price.empty
    assert plan.monthly["gross_profit"].isna().all() and plan.monthly["revenue"].sum() > 0
    assert plan.product_lines.empty
    # the revenue share decides the protect rule (top accounts hold well under 2 % of CDNOW)
    assert "protect_exposure" not in plan.actions["action_id"].tolist()
    fired = suggest_actions(
        plan.account, exposure=plan.exposure, settings=ActionSettings(exposure_share=0.001)
    )
    assert fired["action_id"].tolist() == ["protect_exposure"]
    assert fired["value"].iloc[0] == pytest.approx(plan.exposure["revenue_gap_pct"])


def test_account_plan_ltv_is_the_ltv_reports_row(ctx):
    from kam_analysis.context import load_context

    fresh = load_context(ctx.data_dir)  # the plan values the book without the LTV report
    plan = account_plan_data(fresh)
    assert "ltv" not in vars(fresh)  # ... and without its backtests
    row = fresh.ltv.ltv.set_index("account_id").loc[plan.account_id]
    for col in ("ltv", "ltv_lower", "ltv_upper", "model", "basis", "churn_risk_12m"):
        assert plan.ltv[col] == row[col]
    assert plan.ltv["basis"] == "gross_profit"
    # once the context has the LTV analysis, the plan reads it instead of valuing again
    from kam_analysis.actions import _portfolio_ltv

    assert _portfolio_ltv(fresh) is fresh.ltv.ltv

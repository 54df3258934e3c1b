"""Objectives against target, team coverage and the review cadence (hand-computed answers)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kam_analysis import objectives as ob
from kam_analysis.core.schemas import OBJECTIVE_METRICS
from kam_analysis.kpi import KPI_IDS

AS_OF = "2026-04-01"


def _objectives() -> pd.DataFrame:
    # start 2025-04-01, due 2027-04-01: 730 days, 365 elapsed at AS_OF -> expected 0.5
    rows = [
        # id, metric, baseline, target, start, due, status
        ("R-behind", "revenue_12m", 1000, 2000, "2025-04-01", "2027-04-01", "on_track"),
        ("R-ok", "revenue_12m", 1000, 2000, "2025-04-01", "2027-04-01", None),
        ("NPS", "nps", 10, 40, "2025-04-01", "2027-04-01", None),
        ("TTA", "time_to_adoption", 90, 60, "2025-04-01", "2027-04-01", None),
        ("F-risk", "workshop series", None, None, "2025-04-01", "2027-04-01", "at_risk"),
        ("F-late", "contract signed", None, None, "2025-04-01", "2026-01-31", "on_track"),
        ("F-drop", "joint venture", None, None, "2025-04-01", "2026-01-31", "dropped"),
        ("F-done", "steering committee", None, None, "2024-04-01", "2025-03-31", "done"),
        ("U-none", "utilisation", 0.5, 0.8, "2025-04-01", "2027-04-01", None),
        ("R-future", "revenue_12m", 1000, 2000, "2026-10-01", "2028-04-01", "planned"),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "objective_id",
            "metric",
            "baseline_value",
            "target_value",
            "start_date",
            "due_date",
            "status",
        ],
    )
    frame.insert(0, "account_id", ["A1"] * 9 + ["A2"])
    frame.loc[1, "account_id"] = "A2"  # R-ok belongs to A2
    frame["objective"] = frame["objective_id"]
    frame["owner"] = "S-1"
    return frame


def _values() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["A1", "A2", "A1", "A1"],
            "metric": ["revenue_12m", "revenue_12m", "nps", "time_to_adoption"],
            "value": [1300.0, 1450.0, 40.0, 75.0],
        }
    )


def test_every_kpi_is_a_measurable_metric():
    assert set(KPI_IDS) <= set(OBJECTIVE_METRICS)
    assert {"revenue_12m", "share_of_wallet", "nps", "utilisation"} <= set(OBJECTIVE_METRICS)


@pytest.mark.parametrize(
    ("start", "due", "as_of", "expected"),
    [
        ("2025-01-01", "2027-01-01", "2026-01-01", 365 / 730),
        ("2025-01-01", "2027-01-01", "2024-06-01", 0.0),
        ("2025-01-01", "2027-01-01", "2027-06-01", 1.0),
        ("2025-04-01", "2025-04-01", "2025-04-01", 1.0),  # due on its start day
        ("2025-04-01", "2025-04-11", "2025-04-04", 0.3),
    ],
)
def test_expected_progress_is_the_elapsed_share(start, due, as_of, expected):
    assert ob.expected_progress(start, due, as_of) == pytest.approx(expected)


def test_objective_progress_hand_computed():
    p = ob.objective_progress(_objectives(), _values(), AS_OF).set_index("objective_id")
    assert list(ob.objective_progress(_objectives(), _values(), AS_OF).columns) == list(
        ob.PROGRESS_COLUMNS
    )
    # (1300 - 1000) / (2000 - 1000) = 0.30 < 0.5 - 0.1: behind, although declared on_track
    assert p.loc["R-behind", "progress"] == pytest.approx(0.30)
    assert p.loc["R-behind", "expected"] == pytest.approx(0.5)
    assert p.loc["R-behind", ["behind", "assessed"]].tolist() == [True, "at_risk"]
    # (1450 - 1000) / 1000 = 0.45 >= 0.40: on track
    assert p.loc["R-ok", "progress"] == pytest.approx(0.45)
    assert p.loc["R-ok", ["behind", "assessed"]].tolist() == [False, "on_track"]
    assert p.loc["NPS", "progress"] == pytest.approx(1.0) and p.loc["NPS", "assessed"] == "achieved"
    # a metric to lower: (75 - 90) / (60 - 90) = 0.5
    assert p.loc["TTA", "progress"] == pytest.approx(0.5)
    assert p.loc["TTA", "assessed"] == "on_track"
    # free text: the declared status; overdue and not done: missed
    assert p.loc["F-risk", ["measured", "behind", "assessed"]].tolist() == [False, True, "at_risk"]
    assert np.isnan(p.loc["F-risk", "progress"])
    assert p.loc["F-late", "assessed"] == "missed"
    assert p.loc["F-drop", "assessed"] == "dropped"
    assert p.loc["F-done", ["progress", "assessed"]].tolist() == [1.0, "achieved"]
    # a KPI without a value and without a status: no data
    assert p.loc["U-none", ["measured", "assessed"]].tolist() == [False, "no_data"]
    assert p.loc["R-future", ["expected", "assessed"]].tolist() == [0.0, "planned"]


def test_tolerance_moves_the_behind_flag():
    strict = ob.ObjectiveSettings(tolerance=0.0)
    p = ob.objective_progress(_objectives(), _values(), AS_OF, settings=strict)
    p = p.set_index("objective_id")
    assert p.loc["R-ok", "assessed"] == "at_risk"  # 0.45 < 0.5
    assert p.loc["TTA", "assessed"] == "on_track"  # 0.5 = 0.5


def test_plan_attainment_counts():
    p = ob.objective_progress(_objectives(), _values(), AS_OF)
    a = ob.plan_attainment(p, ["A1", "A2", "A3"]).set_index("account_id")
    # A1: achieved NPS, F-done; on_track TTA; at_risk R-behind, F-risk; missed F-late
    assert a.loc["A1", ["achieved", "on_track", "at_risk", "missed", "dropped", "no_data"]].tolist() == [
        2, 1, 2, 1, 1, 1,
    ]  # fmt: skip
    assert a.loc["A1", "n_objectives"] == 8
    assert a.loc["A1", "attainment"] == pytest.approx(3 / 6)
    assert a.loc["A2", ["on_track", "planned"]].tolist() == [1, 1]
    assert a.loc["A2", "attainment"] == pytest.approx(1.0)
    assert a.loc["A3", "n_objectives"] == 0 and np.isnan(a.loc["A3", "attainment"])


def test_measured_values_latest_period_and_features_win():
    accounts = pd.DataFrame(
        {"account_id": ["A1", "A2"], "revenue_12m": [500.0, np.nan], "share_of_wallet": [0.2, 0.3]}
    )
    kpis = pd.DataFrame(
        {
            "account_id": ["A1", "A1", "A1", "A2"],
            "kpi_id": ["nps", "nps", "share_of_wallet", "utilisation"],
            "period": ["FY2024", "FY2025", "FY2025", "FY2025"],
            "value": [10.0, 25.0, 0.9, 0.7],
        }
    )
    v = ob.measured_values(accounts, kpis).set_index(["account_id", "metric"])["value"]
    assert v[("A1", "nps")] == 25.0
    assert v[("A1", "share_of_wallet")] == 0.2
    assert v[("A1", "revenue_12m")] == 500.0
    assert ("A2", "revenue_12m") not in v.index
    assert v[("A2", "utilisation")] == 0.7


def _team() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["A1"] * 4,
            "member": ["S-1", "S-2", "X-1", "S-9"],
            "role": ["account_lead", "solution_architect", "executive_sponsor", "delivery"],
            "since": ["2024-01-01", "2024-01-01", "2024-01-01", "2023-01-01"],
            "until": [None, None, None, "2025-01-31"],  # S-9 left
        }
    )


def _people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "contact_id": ["P1", "P2", "P3", "P4"],
            "account_id": ["A1"] * 4,
            "role": ["executive", "executive", "it", "procurement"],
            "influence": [5, 4, 3, 4],
            "last_contact_date": ["2026-03-01", "2024-01-01", "2026-03-01", "2026-02-01"],
        }
    )


def test_team_coverage_maps_our_roles_to_theirs():
    cov = ob.team_coverage(_team(), _people(), AS_OF).set_index("their_role")
    assert list(cov.index) == ["executive", "procurement", "it"]
    assert cov.loc["executive", ["contacts", "decision_makers", "our_role", "covered_by"]].tolist() == [
        2, 2, "executive_sponsor", "X-1",
    ]  # fmt: skip
    assert cov.loc["procurement", ["our_role", "covered_by"]].tolist() == ["account_lead", "S-1"]
    assert cov.loc["it", ["our_role", "covered"]].tolist() == ["solution_architect", True]
    alone = ob.team_coverage(_team().iloc[[1]], _people(), AS_OF).set_index("their_role")
    assert alone["covered"].tolist() == [False, False, True]


def test_team_members_active_only_in_role_order():
    m = ob.team_members(_team(), AS_OF)
    assert m["member"].tolist() == ["S-1", "X-1", "S-2"]
    assert m["roles"].tolist() == ["account_lead", "executive_sponsor", "solution_architect"]


def test_team_flags():
    acts = pd.DataFrame(
        {
            "account_id": ["A1"],
            "date": ["2026-01-15"],
            "kind": ["executive_meeting"],
            "contact_id": ["P1"],
        }
    )
    f = ob.team_flags(_team(), _people(), acts, AS_OF, key_account=True)
    assert f["members"] == 3 and f["has_sponsor"] and not f["no_executive_sponsor"]
    assert not f["one_person"]
    assert (f["executives"], f["executives_not_met"], f["met_source"]) == (2, 1, "activities")
    assert f["executives_never_met"]
    lead_only = _team().iloc[[0]]
    g = ob.team_flags(lead_only, _people(), None, AS_OF, key_account=True)
    assert g["no_executive_sponsor"] and g["one_person"]
    # without contact-tagged activities: last_contact_date (P2 last met 2024)
    assert (g["executives_not_met"], g["met_source"]) == (1, "last_contact_date")
    assert not ob.team_flags(lead_only, _people(), None, AS_OF, key_account=False)[
        "no_executive_sponsor"
    ]


def test_next_review_from_the_cadence():
    acts = pd.DataFrame(
        {"date": ["2025-11-20", "2026-02-10", "2026-03-05"], "kind": ["qbr", "qbr", "meeting"]}
    )
    r = ob.next_review(acts, AS_OF, plan={"qbr": 4, "executive_meeting": 2})
    assert (r.last, r.interval_months, r.date, r.overdue) == (
        dt.date(2026, 2, 10), 3, dt.date(2026, 5, 10), False,
    )  # fmt: skip
    late = ob.next_review(acts.iloc[[0]], AS_OF, plan={"qbr": 4})
    assert (late.date, late.overdue) == (dt.date(2026, 4, 1), True)  # 2026-02-20 has passed
    tiers = {"key": {"qbr": 6}, "standard": {"qbr": 1}}
    assert ob.next_review(acts, AS_OF, plan=tiers, tier="key").date == dt.date(2026, 4, 10)
    assert ob.next_review(acts, AS_OF, plan={"executive_meeting": 2}).date is None
    none = ob.next_review(None, AS_OF, plan={"qbr": 4})
    assert (none.date, none.last, none.overdue) == (dt.date(2026, 4, 1), None, True)


def test_planted_revenue_objectives_are_recovered(demo_context):
    """On the demo book, measured progress puts every planted objective where it was planted."""
    ctx = demo_context(400, 3)
    objectives = ctx.frame("account_objectives")
    truth = pd.read_parquet(ctx.data_dir / "ground_truth_plans.parquet")
    values = ob.measured_values(ctx.scored)
    p = ob.objective_progress(objectives, values, ctx.as_of)
    revenue = p[p["metric"] == "revenue_12m"].merge(truth, on=["account_id", "objective_id"])
    assert len(revenue) >= 5 and revenue["measured"].all()
    on = revenue["planted_outcome"] == "on_track"
    assert on.any() and (~on).any()
    assert (revenue.loc[on, "assessed"] == "on_track").all()
    assert (revenue.loc[~on, "assessed"] == "at_risk").all()
    planted = revenue.loc[on, "expected_progress"] + 0.20
    np.testing.assert_allclose(revenue.loc[on, "progress"], planted, atol=0.01)
    # the baseline is the features' revenue of the 12 months before the start
    prev = ctx.scored.set_index("account_id")["revenue_prev_12m"]
    np.testing.assert_allclose(
        revenue["baseline_value"], prev.reindex(revenue["account_id"]).round(), atol=1
    )
    doc = json.loads((ctx.data_dir / "ground_truth.json").read_text())
    assert doc["plans"]["revenue_objectives"]["counts"]["on_track"] == int(on.sum())
    team = ctx.frame("account_team")
    for acc in doc["plans"]["team"]["no_executive_sponsor"]:
        flags = ob.team_flags(
            team[team["account_id"] == acc], None, None, ctx.as_of, key_account=True
        )
        assert flags["no_executive_sponsor"]
    for acc in doc["plans"]["team"]["one_person"]:
        assert ob.team_flags(
            team[team["account_id"] == acc], None, None, ctx.as_of, key_account=True
        )["one_person"]
    assert ctx.frame("stakeholders")["concerns"].notna().all()


def test_account_plan_carries_objectives_team_and_concerns(demo_context):
    from kam_analysis import actions

    ctx = demo_context(400, 3)
    goals = ctx.frame("account_objectives")
    acc = str(goals["account_id"].iloc[0])
    plan = actions.account_plan_data(ctx, acc)
    assert set(plan.objectives["objective_id"]) == {"OBJ-1", "OBJ-2", "OBJ-3", "OBJ-4"}
    shown = actions.objective_table(plan.objectives, currency="JPY", lang="en")
    revenue = shown[plan.objectives["metric"] == "revenue_12m"].iloc[0]
    assert revenue["metric"] == "Revenue, last 12 months"
    assert revenue["current_value"].startswith("¥")
    assert plan.team["member"].str.match(r"^[SX]-\d+$").all()
    assert plan.coverage["covered"].dtype == bool and plan.team_flags["members"] == len(plan.team)
    assert plan.concerns["concerns"].str.len().gt(0).all()
    assert plan.concerns["person"].str.match(r"^C-[0-9A-F]{10}$").all()  # never a name
    assert plan.next_review is not None and plan.next_review.interval_months == 3


# --------------------------------------------------------------------------- fiscal year


@pytest.mark.parametrize(
    ("as_of", "start_month", "end"),
    [
        ("2026-03-31", 4, "2026-03-31"),
        ("2026-04-01", 4, "2027-03-31"),
        ("2026-01-15", 1, "2026-12-31"),
        ("2026-02-28", 10, "2026-09-30"),
    ],
)
def test_fiscal_year_end(as_of, start_month, end):
    assert ob.fiscal_year_end(as_of, start_month) == pd.Timestamp(end)


def test_fiscal_year_plans_hand_computed():
    # as of 2025-10-01, fiscal year April-March: the year ends 2026-03-31, 181 days ahead
    rows = [
        # account, id, metric, baseline, target, start, due, status
        ("A1", "R1", "revenue_12m", 1000, 2000, "2025-03-31", "2027-03-31", None),  # 730 days
        ("A1", "R0", "revenue_12m", 500, 2000, "2024-04-01", "2025-06-30", None),  # past due
        ("A2", "R2", "revenue_12m", 800, 1200, "2025-04-01", "2026-03-31", None),
        ("A2", "R3", "revenue_12m", 800, 5000, "2025-04-01", "2025-12-31", "dropped"),
        ("A3", "F1", "workshops held", None, None, "2025-04-01", "2026-03-31", "at_risk"),
    ]
    goals = pd.DataFrame(
        rows,
        columns=[
            "account_id", "objective_id", "metric", "baseline_value", "target_value",
            "start_date", "due_date", "status",
        ],
    )  # fmt: skip
    goals["objective"], goals["owner"] = goals["objective_id"], "S-1"
    values = pd.DataFrame(
        {"account_id": ["A1", "A2"], "metric": ["revenue_12m"] * 2, "value": [1400.0, 900.0]}
    )
    progress = ob.objective_progress(goals, values, "2025-10-01")
    accounts = pd.DataFrame(
        {"account_id": ["A1", "A2", "A3", "A4"], "revenue_12m": [1400.0, 900.0, 50.0, 10.0]}
    )
    growth = pd.DataFrame({"account_id": ["A1", "A3"], "growth_annual": [0.21, -0.5]})
    ids = ["A2", "A1", "A3", "A4"]
    out = ob.fiscal_year_plans(
        progress, accounts, ids, as_of="2025-10-01", fiscal_year_start_month=4, growth=growth
    ).set_index("account_id")
    assert list(out.index) == ids
    years = 181 / 365.25
    # A1: R1 is the plan (R0 is past due): half way (365 of 730 days) at the year end
    assert out.loc["A1", "forecast_fy"] == pytest.approx(1400 * 1.21**years)
    assert out.loc["A1", "planned_fy"] == pytest.approx(1500)
    assert out.loc["A1", "vs_plan"] == pytest.approx(1400 * 1.21**years / 1500 - 1)
    assert out.loc["A1", "target_value"] == 2000
    assert out.loc["A1", "due_date"] == pd.Timestamp("2027-03-31")
    # R1: progress 0.4 against 184/730 expected: on track; R0: 0.6 and past due: missed
    assert out.loc["A1", ["on_track", "at_risk", "missed", "n_objectives"]].tolist() == [
        1, 0, 1, 2,
    ]  # fmt: skip
    # A2: no growth estimate -> flat; due at the year end -> the plan is the target;
    # the dropped objective is not the plan; 0.25 against 183/364 expected: at risk
    assert not out.loc["A2", "growth_known"] and out.loc["A2", "forecast_fy"] == 900
    assert out.loc["A2", "planned_fy"] == pytest.approx(1200)
    assert out.loc["A2", "vs_plan"] == pytest.approx(-0.25)
    assert out.loc["A2", ["at_risk", "n_objectives"]].tolist() == [1, 2]
    # A3: objectives but no revenue objective; A4: none at all
    assert out.loc["A3", "forecast_fy"] == pytest.approx(50 * 0.5**years)
    assert np.isnan(out.loc["A3", "planned_fy"]) and np.isnan(out.loc["A3", "vs_plan"])
    assert out.loc["A3", ["at_risk", "n_objectives"]].tolist() == [1, 1]
    assert out.loc["A4", "n_objectives"] == 0 and pd.isna(out.loc["A4", "due_date"])
    counts = ob.plan_attainment(progress, ids).set_index("account_id")
    for status in ("achieved", "on_track", "at_risk", "missed", "n_objectives"):
        assert out[status].tolist() == counts[status].tolist(), status


# --------------------------------------------------------------------------- the context


def test_context_measures_objectives_once_with_the_configured_rules(demo_context, tmp_path):
    """``[objectives]`` reaches ctx.objective_progress and the plan; the plan reads its rows."""
    from kam_analysis import actions

    ctx = demo_context(400, 3)
    default = ctx.objective_progress
    assert ctx.objective_progress is default  # cached per context
    # a tolerance wider than the median shortfall of the objectives at risk: some move
    at_risk = default["measured"] & (default["assessed"] == "at_risk")
    shortfall = (default["expected"] - default["progress"])[at_risk]
    assert at_risk.sum() >= 2
    tol = float(np.ceil(shortfall.median() * 100) / 100) + 0.01
    loose = ctx.with_settings(
        objectives={"tolerance": tol, "review_kind": "executive_meeting", "exec_window_days": 30}
    )
    p = loose.objective_progress
    assert p[["account_id", "objective_id", "progress"]].equals(
        default[["account_id", "objective_id", "progress"]]
    )
    # hand rule with that tolerance: a started, measured objective below target and not
    # overdue is at risk when progress < expected - tolerance
    live = p["measured"] & (p["progress"] < 1) & (p["assessed"].isin(["on_track", "at_risk"]))
    want = np.where(p["progress"] < p["expected"] - tol, "at_risk", "on_track")
    assert live.sum() > 10 and (p.loc[live, "assessed"] == want[live]).all()
    moved = (default["assessed"] == "at_risk") & (p["assessed"] == "on_track")
    assert moved.any()
    acc = str(p.loc[moved, "account_id"].iloc[0])
    plan = actions.account_plan_data(loose, acc)
    pd.testing.assert_frame_equal(plan.objectives, p[p["account_id"] == acc].reset_index(drop=True))
    assert plan.next_review.kind == "executive_meeting" and plan.next_review.interval_months == 6
    # exec_window_days = 30: their executives count as met only after a recent meeting
    want = ob.team_flags(
        loose.account_frame("account_team", acc),
        loose.account_frame("stakeholders", acc),
        loose.account_frame("activities", acc),
        loose.as_of,
        key_account=plan.account["tier"] == "key",
        settings=loose.config.objectives,
    )
    assert plan.team_flags == want
    wide = actions.account_plan_data(ctx, acc).team_flags["executives_not_met"]
    assert want["executives_not_met"] >= wide


def test_context_objective_progress_measures_kpis_as_the_whole_book(demo_dir, tmp_path):
    """KPI-measured objectives: the context computes the KPIs of their accounts only, with
    the values of the whole book's KPIs; a dataset without objectives gives None."""
    import shutil

    from kam_analysis import actions, kpi
    from kam_analysis.context import load_context

    folder = Path(
        shutil.copytree(demo_dir(400, 3), tmp_path / "ds", ignore=shutil.ignore_patterns("_*"))
    )
    goals = pd.read_parquet(folder / "account_objectives.parquet")
    free = goals["metric"] == "steering meetings held"
    metrics = ["nps", "gross_margin", "exec_contact", "upsell_rate"]
    goals.loc[free, "metric"] = [metrics[i % 4] for i in range(int(free.sum()))]
    goals.loc[free, ["baseline_value", "target_value", "status"]] = [0.1, 0.6, None]
    goals.to_parquet(folder / "account_objectives.parquet", index=False)
    ctx = load_context(folder)
    p = ctx.objective_progress
    book = kpi.assess_kpis(
        kpi.compute_kpis(
            ctx.monthly_lines,
            ctx.frame("accounts"),
            **ctx.kpi_tables(),
            as_of=ctx.as_of,
            settings=ctx.kpi_settings,
            lapse_months=ctx.config.segmentation.lapse_months,
        )
    )
    book = book.dropna(subset=["value"]).set_index(["account_id", "kpi_id"])["value"]
    measured = p[p["metric"].isin(metrics) & p["measured"]]
    assert measured["metric"].nunique() >= 3 and len(measured) > 20
    want = book.reindex(list(zip(measured["account_id"], measured["metric"], strict=True)))
    np.testing.assert_allclose(measured["current_value"], want.to_numpy(), rtol=1e-9)
    acc = str(measured["account_id"].iloc[0])
    pd.testing.assert_frame_equal(
        actions.account_plan_data(ctx, acc).objectives,
        p[p["account_id"] == acc].reset_index(drop=True),
    )
    (folder / "account_objectives.parquet").unlink()
    bare = load_context(folder)
    assert bare.objective_progress is None
    assert actions.account_plan_data(bare, acc).skipped["objectives"] == "account_objectives"

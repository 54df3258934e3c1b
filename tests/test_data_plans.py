"""The account-plan tables of the contract: account_team, account_objectives, concerns."""

from __future__ import annotations

import pandas as pd
import pytest

from kam_analysis.core.schemas import data_dictionary
from kam_analysis.data import open_dataset, validate_dataset
from tests.test_data import (
    AS_OF,
    _accounts,
    _contracts,
    _transactions,
    issues_by_rule,
    write_dataset,
)


def _team() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["A1", "A1", "A1", "A2"],
            "member": ["Sato", "Ito", "Kato", "Sato"],
            "role": ["account_lead", "executive_sponsor", "executive_sponsor", "account_lead"],
            "since": ["2024-04-01", "2024-04-01", "2023-04-01", "2025-01-01"],
            "until": ["", "", "2024-03-31", ""],  # Kato handed over: one active sponsor
        }
    )


def _objectives() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["A1", "A1", "A2"],
            "objective_id": ["O1", "O2", "O1"],
            "objective": ["Grow revenue", "Joint <b>roadmap</b>", "Raise NPS"],
            "owner": ["Sato", "Ito", "Sato"],
            "metric": ["revenue_12m", "co-development agreement", "nps"],
            "baseline_value": [1000.0, None, 10.0],
            "target_value": [2000.0, None, 40.0],
            "start_date": ["2025-04-01", "2025-04-01", "2025-04-01"],
            "due_date": ["2027-03-31", "2026-09-30", "2026-03-31"],
            "status": ["on_track", "planned", ""],
        }
    )


@pytest.fixture
def plan_tables() -> dict[str, pd.DataFrame]:
    return {
        "accounts": _accounts(),
        "transactions": _transactions(),
        "contracts": _contracts(),
        "account_team": _team(),
        "account_objectives": _objectives(),
    }


def test_plan_tables_are_in_the_dictionary():
    d = data_dictionary()
    team = d[d["table"] == "account_team"].set_index("column")
    assert list(team.index) == ["account_id", "member", "role", "since", "until"]
    assert "executive_sponsor" in team.loc["role", "rules"]
    obj = d[d["table"] == "account_objectives"].set_index("column")
    assert obj.loc["status", "rules"] == "one of planned, on_track, at_risk, done, dropped"
    assert obj.loc["due_date", "type"] == "date"
    st = d[d["table"] == "stakeholders"].set_index("column")
    assert not st.loc["concerns", "required"]


def test_valid_plan_tables_pass(tmp_path, plan_tables):
    report = validate_dataset(write_dataset(tmp_path / "ds", plan_tables), as_of=AS_OF)
    assert report.ok and report.issues == [], report.render_text()
    assert report.summary["tables"]["account_objectives"]["rows"] == 3
    ds = open_dataset(tmp_path / "ds")
    assert ds.has("account_team") and ds.has("account_objectives")


def test_due_before_start_is_an_error_with_its_line(tmp_path, plan_tables):
    plan_tables["account_objectives"].loc[1, "due_date"] = "2025-01-31"
    report = validate_dataset(write_dataset(tmp_path / "ds", plan_tables), as_of=AS_OF)
    assert not report.ok
    issue = issues_by_rule(report)[("account_objectives", "due_date", "due_date >= start_date")]
    assert issue.file == "account_objectives.csv" and issue.n_rows == 1
    assert issue.examples[0]["_line"] == 3  # header = line 1
    assert issue.examples[0]["objective_id"] == "O2"
    text = report.render_text()
    assert 'ERROR account_objectives.csv, column "due_date": objective due before it starts' in text


def test_free_text_metric_needs_a_status(tmp_path, plan_tables):
    objectives = plan_tables["account_objectives"]
    objectives.loc[1, "status"] = ""  # free text, no status: an error
    objectives.loc[2, "status"] = ""  # nps is measured: no status needed
    report = validate_dataset(write_dataset(tmp_path / "ds", plan_tables), as_of=AS_OF)
    issue = issues_by_rule(report)[("account_objectives", "status", "metric measured or a status")]
    assert issue.severity == "error" and issue.n_rows == 1
    assert issue.examples[0]["metric"] == "co-development agreement"
    assert issue.examples[0]["_line"] == 3


def test_unknown_status_and_team_role(tmp_path, plan_tables):
    plan_tables["account_objectives"].loc[0, "status"] = "late"
    plan_tables["account_team"].loc[3, "role"] = "ceo"
    report = validate_dataset(write_dataset(tmp_path / "ds", plan_tables), as_of=AS_OF)
    found = issues_by_rule(report)
    status = found[
        ("account_objectives", "status", "one of planned, on_track, at_risk, done, dropped")
    ]
    assert status.examples[0]["status"] == "late" and status.examples[0]["_line"] == 2
    role = [i for i in report.errors if i.table == "account_team" and i.column == "role"][0]
    assert role.examples[0]["role"] == "ceo" and role.examples[0]["_line"] == 5


def test_owner_must_be_in_the_accounts_team(tmp_path, plan_tables):
    plan_tables["account_objectives"].loc[2, "owner"] = "Ito"  # Ito is on A1's team, not A2's
    report = validate_dataset(write_dataset(tmp_path / "ds", plan_tables), as_of=AS_OF)
    issue = issues_by_rule(report)[("account_objectives", "owner", "owner in the account's team")]
    assert issue.severity == "error" and issue.n_rows == 1
    assert issue.examples == [
        {"_line": 4, "owner": "Ito", "account_id": "A2", "objective_id": "O1"}
    ]


def test_two_active_executive_sponsors_is_a_warning(tmp_path, plan_tables):
    plan_tables["account_team"].loc[2, "until"] = ""  # Kato never handed over
    report = validate_dataset(write_dataset(tmp_path / "ds", plan_tables), as_of=AS_OF)
    assert report.ok  # a warning, not an error
    (warning,) = report.warnings
    assert warning.table == "account_team" and warning.rule.startswith("at most one active")
    assert warning.n_rows == 2
    assert [e["member"] for e in warning.examples] == ["Ito", "Kato"]
    assert [e["_line"] for e in warning.examples] == [3, 4]


def test_objective_for_an_unknown_account(tmp_path, plan_tables):
    plan_tables["account_objectives"].loc[0, "account_id"] = "A9"
    plan_tables["account_team"].loc[0, "account_id"] = "A9"
    report = validate_dataset(write_dataset(tmp_path / "ds", plan_tables), as_of=AS_OF)
    found = issues_by_rule(report)
    assert found[("account_objectives", "account_id", "account_id exists in accounts")].n_rows == 1

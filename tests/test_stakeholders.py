"""Tests for kam_analysis.stakeholders (coverage, risk flags, governance) and its charts
in kam_analysis.report.charts.stakeholders (no personal data by default)."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from kam_analysis import plots
from kam_analysis import stakeholders as sh
from kam_analysis.core.i18n import t, translations
from kam_analysis.core.schemas import ROLES, STANCES, column_specs
from kam_analysis.report.charts import stakeholders as charts

AS_OF = pd.Timestamp("2025-06-30")
NAMES = ["Taro Yamada", "Hanako Sato", "Ken Ito", "Jiro Abe", "Mika Mori", "Yuki Kato"]
EMAILS = [f"{n.split()[0].lower()}@example.co.jp" for n in NAMES]


@pytest.fixture
def people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "contact_id": ["c1", "c2", "c3", "c4", "c5", "c6"],
            "account_id": ["A", "A", "A", "A", "B", "C"],
            "role": ["executive", "business", "it", "procurement", "business", "executive"],
            "influence": [5, 4, 3, 4, 2, 5],
            "stance": ["supporter", "champion", "champion", "blocker", "neutral", "champion"],
            "reports_to": [None, "c1", "c1", "c1", None, None],
            "last_contact_date": pd.to_datetime(
                ["2025-06-01", "2025-01-01", None, "2025-06-20", "2025-06-25", "2025-06-29"]
            ),
            "product_line": [None, "x", None, None, "y", None],
            "name": NAMES,
            "email": EMAILS,
            "title": ["CEO", "Plant manager", "CIO", "Buyer", "Engineer", "President"],
        }
    )


def test_pseudonym_is_stable_long_and_keyed():
    p = sh.pseudonym("c1")
    assert re.fullmatch(r"C-[0-9A-F]{10}", p)
    assert p == sh.pseudonym("c1") == sh.pseudonym("c1", "")
    # known value with an explicit key (HMAC-SHA256): stable across runs and machines
    assert (
        sh.pseudonym("c1", salt="secret")
        == "C-" + hmac.new(b"secret", b"c1", hashlib.sha256).hexdigest()[:10].upper()
    )
    assert sh.pseudonym("c1", salt="secret") != p
    assert sh.pseudonym("c2") != p
    assert len(sh.pseudonym("c1", length=8)) == 10
    with pytest.raises(ValueError, match="missing"):
        sh.pseudonym(None)


def test_pseudonyms_use_a_private_installation_key(tmp_path, monkeypatch):
    key = tmp_path / "conf" / "pseudonym.key"
    monkeypatch.setenv(sh.KEY_ENV, str(key))
    first = sh.pseudonym("P-000012-1")
    assert key.is_file() and (key.stat().st_mode & 0o777) == 0o600
    secret = key.read_text().strip()
    assert len(secret) == 64
    # the key, not an empty one: guessing the id does not reveal the pseudonym
    unkeyed = "C-" + hmac.new(b"", b"P-000012-1", hashlib.sha256).hexdigest()[:10].upper()
    assert first != unkeyed
    assert first == sh.pseudonym("P-000012-1", salt=secret)
    monkeypatch.setenv(sh.KEY_ENV, str(tmp_path / "other.key"))
    assert sh.pseudonym("P-000012-1") != first  # another installation, another key


def test_pseudonyms_do_not_collide_at_100k_contacts():
    ids = [f"P-{i:06d}" for i in range(100_000)]
    names = {sh.pseudonym(i, salt="k") for i in ids}
    assert len(names) == len(ids)  # 40 bits: 0.0045 collisions expected (n² / 2·2⁴⁰)


def test_coverage(people):
    cov = sh.coverage(people, pd.DataFrame({"account_id": ["A", "B", "C", "D"]}), AS_OF)
    cov = cov.set_index("account_id")
    assert cov.loc["A", "n_contacts"] == 4
    assert cov.loc["A", "roles_covered"] == 4
    assert cov.loc["A", "role_coverage"] == pytest.approx(4 / len(ROLES))
    assert cov.loc["A", "roles_missing"] == "finance, legal"
    assert cov.loc["A", "executive_best_stance"] == "supporter"
    assert cov.loc["A", "procurement_best_stance"] == "blocker"
    assert cov.loc["A", "business_max_influence"] == 4
    assert cov.loc["A", "days_since_last_contact"] == 10  # c4 on 2025-06-20
    assert cov.loc["A", "business_days_since_contact"] == 180
    assert np.isnan(cov.loc["A", "it_days_since_contact"])  # never recorded
    assert cov.loc["D", "n_contacts"] == 0 and cov.loc["D", "roles_covered"] == 0
    assert not any(c in cov.columns for c in sh.PERSONAL_COLUMNS)


def test_coverage_counts_tagged_activities_as_contact(people):
    act = pd.DataFrame(
        {
            "account_id": ["A"],
            "date": pd.to_datetime(["2025-06-28"]),
            "kind": ["meeting"],
            "contact_id": ["c3"],
        }
    )
    cov = sh.coverage(people, None, AS_OF, activities=act).set_index("account_id")
    assert cov.loc["A", "it_days_since_contact"] == 2
    assert cov.loc["A", "days_since_last_contact"] == 2


def test_relationship_risk_flags(people):
    risks = sh.relationship_risks(
        people, None, AS_OF, accounts=pd.DataFrame({"account_id": ["A", "B", "C", "D"]})
    ).set_index("account_id")
    a, b, c, d = (risks.loc[k] for k in "ABCD")
    # A: 4 contacts, sponsor (executive supporter), procurement blocker with influence 4,
    # c2 (influence 4) untouched for 180 days and c3 (influence 3) never: 2 stale
    assert not a["single_threaded"] and not a["no_executive_sponsor"]
    assert a["high_influence_blocker"]
    assert a["stale_contacts"] and a["n_stale_contacts"] == 2
    assert not a["champion_concentration"]  # champions in business and IT
    assert a["n_flags"] == 2
    assert "high-influence blocker" in a["reasons"] and "not touched in 90 days" in a["reasons"]
    # B: one neutral business contact: single-threaded, no sponsor, no champion
    assert b["single_threaded"] and b["no_executive_sponsor"] and b["champion_concentration"]
    assert not b["stale_contacts"]  # influence 2 is below stale_min_influence 3
    # C: a single executive champion: sponsor present but single-threaded, one champion
    assert c["single_threaded"] and not c["no_executive_sponsor"]
    assert c["champion_concentration"] and "only one" in c["reasons"]
    # D: no stakeholder at all
    assert d["n_contacts"] == 0 and d["single_threaded"] and d["no_executive_sponsor"]
    for text in risks["reasons"]:
        assert not any(n in text for n in NAMES)


def test_single_threaded_by_activity_share_and_champions_in_one_role(people):
    st = pd.concat(
        [
            people,
            pd.DataFrame(
                {
                    "contact_id": ["c7", "c8"],
                    "account_id": ["E", "E"],
                    "role": ["business", "business"],
                    "influence": [3, 3],
                    "stance": ["champion", "champion"],
                    "last_contact_date": pd.to_datetime(["2025-06-01", "2025-06-01"]),
                }
            ),
        ],
        ignore_index=True,
    )
    act = pd.DataFrame(
        {
            "account_id": ["E"] * 5 + ["A"] * 4,
            "date": pd.to_datetime(["2025-05-01"] * 9),
            "kind": ["meeting"] * 9,
            "contact_id": ["c7", "c7", "c7", "c8", None, "c1", "c2", "c3", "c4"],
        }
    )
    risks = sh.relationship_risks(st, act, AS_OF).set_index("account_id")
    assert risks.loc["E", "top_contact_share"] == pytest.approx(0.75)
    assert risks.loc["E", "single_threaded"]  # 75 % >= 60 %
    assert risks.loc["E", "champion_concentration"]
    assert "all in role business" in risks.loc["E", "reasons"]
    assert not risks.loc["A", "single_threaded"]  # 25 % each
    stricter = sh.relationship_risks(st, act, AS_OF, single_thread_share=0.8)
    assert not stricter.set_index("account_id").loc["E", "single_threaded"]
    ja = sh.relationship_risks(st, act, AS_OF, lang="ja").set_index("account_id")
    assert "単一窓口" in ja.loc["E", "reasons"]


def test_buying_centre_whitespace(people):
    ws = pd.DataFrame(
        {
            "account_id": ["A", "A", "B", "B", "C"],
            "product_line": ["x", "z", "y", "x", "x"],
            "whitespace_value": [100.0, 50.0, 30.0, 0.0, 20.0],
        }
    )
    out = sh.buying_centre_whitespace(people, ws).set_index(["account_id", "product_line"])
    assert ("B", "x") not in out.index  # no whitespace
    # A/x: c2 buys x (business champion) + c3 (IT, no product line) -> 2 buyers
    assert out.loc[("A", "x"), "n_buyers"] == 2
    assert out.loc[("A", "x"), "buyer_roles"] == "it, business"
    # A/z: nobody buys z specifically; c3 is a general IT buyer
    assert out.loc[("A", "z"), "n_buyers"] == 1 and out.loc[("A", "z"), "has_supporter"]
    # B/y: c5 buys y but is neutral
    assert out.loc[("B", "y"), "has_buyer"] and not out.loc[("B", "y"), "has_supporter"]
    # C/x: only an executive without product line -> not a buyer
    assert not out.loc[("C", "x"), "has_buyer"] and out.loc[("C", "x"), "n_buyers"] == 0
    assert list(out["whitespace_value"]) == sorted(out["whitespace_value"], reverse=True)


def test_governance_cadence():
    act = pd.DataFrame(
        {
            "account_id": ["A"] * 7 + ["B", "B"],
            "date": pd.to_datetime(
                [
                    "2024-07-15",
                    "2024-10-15",
                    "2025-01-15",
                    "2025-04-15",
                    "2025-02-01",
                    "2025-05-01",
                    "2024-06-30",  # exactly 12 months before: outside the window
                    "2025-01-10",
                    "2025-03-01",
                ]
            ),
            "kind": ["qbr"] * 4 + ["executive_meeting"] * 3 + ["qbr", "executive_meeting"],
        }
    )
    accounts = pd.DataFrame({"account_id": ["A", "B", "C"]})
    g = sh.governance_cadence(act, AS_OF, accounts=accounts).set_index("account_id")
    assert g.loc["A", "qbr_count"] == 4 and g.loc["A", "executive_meeting_count"] == 2
    assert g.loc["A", "status"] == "on_track"
    # B: 1/4 QBR and 1/2 executive meeting -> lowest 25 % < 50 %: off track
    assert g.loc["B", "attainment"] == pytest.approx(0.25)
    assert g.loc["B", "status"] == "off_track"
    assert g.loc["C", "qbr_count"] == 0 and g.loc["C", "status"] == "off_track"
    # per-tier plan
    tier = pd.Series({"A": "key", "B": "growth", "C": "standard"})
    plan = {"key": {"qbr": 4, "executive_meeting": 2}, "growth": {"qbr": 2}}
    gt = sh.governance_cadence(act, AS_OF, plan, tier).set_index("account_id")
    assert gt.loc["B", "qbr_plan"] == 2 and np.isnan(gt.loc["B", "executive_meeting_plan"])
    assert gt.loc["B", "status"] == "at_risk"  # 1 of 2
    assert gt.loc["C", "status"] == "no_plan"
    with pytest.raises(ValueError, match="unknown activity kind"):
        sh.governance_cadence(act, AS_OF, {"lunch": 3})
    with pytest.raises(ValueError, match="pass tier"):
        sh.governance_cadence(act, AS_OF, plan)


def test_tree_layout_tidy_and_cycles():
    lay = sh.tree_layout(pd.Series([None, "a", "a", "b", "b", None], index=list("abcdez")))
    assert lay.loc[["d", "e", "c", "z"], "x"].tolist() == [0, 1, 2, 3]  # leaves in order
    assert lay.loc["b", "x"] == 0.5 and lay.loc["a", "x"] == 1.25  # midpoints of children
    assert lay.loc["d", "depth"] == 2 and lay.loc["d", "y"] == -2
    # no two nodes share a position
    assert not lay[["x", "y"]].duplicated().any()
    # a reporting cycle a -> b -> a is cut at the smallest id
    cyc = sh.tree_layout(pd.Series(["b", "a", "a"], index=list("abc")))
    assert pd.isna(cyc.loc["a", "parent"]) and cyc.loc["b", "parent"] == "a"
    # unknown manager: the node becomes a root
    unk = sh.tree_layout(pd.Series(["zzz"], index=["a"]))
    assert pd.isna(unk.loc["a", "parent"])


def _all_text(ax) -> str:
    fig = ax.figure
    fig.canvas.draw()
    texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    return "\n".join(texts)


@pytest.mark.parametrize("chart", ["map", "org"])
@pytest.mark.parametrize("lang", ["en", "ja"])
def test_charts_carry_no_personal_data_by_default(people, chart, lang):
    if chart == "map":
        ax = charts.stakeholder_map(people, "A", as_of=AS_OF, lang=lang)
    else:
        ax = charts.org_chart(people, "A", lang=lang)
    text = _all_text(ax)
    plt.close(ax.figure)
    for value in [*NAMES, *EMAILS, "CEO", "Plant manager", "c1", "c2"]:
        assert value not in text
    assert sh.pseudonym("c1") in text and sh.pseudonym("c4") in text
    assert "@" not in text


def test_charts_show_names_when_switched_on(people):
    ax = charts.stakeholder_map(people, "A", as_of=AS_OF, show_personal_data=True)
    text = _all_text(ax)
    plt.close(ax.figure)
    assert "Taro Yamada" in text and "@" not in text
    ax = charts.org_chart(people, "A", show_personal_data=True)
    assert "Hanako Sato" in _all_text(ax)
    plt.close(ax.figure)


def test_org_chart_edges_and_colours(people):
    fig, ax = plt.subplots()
    out = charts.org_chart(people, "A", ax=ax)
    assert out is ax
    assert len(ax.lines) == 3  # c2, c3, c4 report to c1
    colours = ax.collections[0].get_facecolors()
    blocker = matplotlib.colors.to_rgba(charts.STANCE_COLOURS["blocker"])
    assert any(np.allclose(c, blocker) for c in colours)
    plt.close(fig)


def test_empty_account_charts_say_so(people):
    ax = charts.stakeholder_map(people, "nobody", as_of=AS_OF)
    assert "no stakeholders recorded" in _all_text(ax)
    plt.close(ax.figure)


def test_bad_input_messages(people):
    with pytest.raises(sh.StakeholderInputError, match=r"missing column\(s\) \['stance'\]"):
        sh.coverage(people.drop(columns="stance"), None, AS_OF)
    bad = people.assign(role=["executive", "ceo", "it", "procurement", "business", "executive"])
    with pytest.raises(sh.StakeholderInputError, match="role must be one of.*'ceo'"):
        sh.relationship_risks(bad, None, AS_OF)
    with pytest.raises(sh.StakeholderInputError, match="influence must be an integer 1-5"):
        sh.coverage(people.assign(influence=[9, 1, 1, 1, 1, 1]), None, AS_OF)
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        charts.stakeholder_map(people, "A", lang="fr")
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        sh.relationship_risks(people, None, AS_OF, lang="fr")
    with pytest.raises(ValueError, match="unknown stance"):
        sh.StakeholderSettings(sponsor_min_stance="friend")


def test_columns_used_exist_in_the_contract():
    known = {s.name for s in column_specs("stakeholders")}
    assert set(sh.STAKEHOLDER_COLUMNS) <= known
    assert set(sh.PERSONAL_COLUMNS) <= known
    assert {"reports_to", "last_contact_date", "product_line"} <= known
    assert set(sh.ACTIVITY_COLUMNS) <= {s.name for s in column_specs("activities")}


def test_risk_flags_recover_planted_truths_and_charts_hide_names(tmp_path):
    """The generator plants single-threaded accounts, accounts without an executive and
    influential blockers; the flags must find every one (the blocker flag exactly)."""
    synthetic = pytest.importorskip("kam_analysis.synthetic")
    out = tmp_path / "demo"
    info = synthetic.generate_dataset(out, n_accounts=200, seed=3)
    st = pd.read_parquet(out / "stakeholders.parquet")
    act = pd.read_parquet(out / "activities.parquet")
    truth = pd.read_parquet(out / "ground_truth_accounts.parquet").set_index("account_id")
    risks = sh.relationship_risks(st, act, info["as_of"]).set_index("account_id")
    truth = truth.loc[risks.index]
    assert truth["single_threaded"].sum() > 0 and truth["high_influence_blocker"].sum() > 0
    assert (risks["high_influence_blocker"] == truth["high_influence_blocker"]).all()
    assert risks.loc[truth["single_threaded"], "single_threaded"].all()
    assert risks.loc[truth["no_executive_stakeholder"], "no_executive_sponsor"].all()
    # charts of the largest buying centre: no names or e-mails
    acc = st["account_id"].value_counts().index[0]
    people = st[st["account_id"] == acc]
    for draw in (charts.org_chart, charts.stakeholder_map):
        ax = draw(st, acc)
        text = _all_text(ax)
        plt.close(ax.figure)
        assert not any(v in text for v in [*people["name"], *people["email"]])
        assert sh.pseudonym(people["contact_id"].iloc[0]) in text


# --------------------------------------------------------------------------- labels & summaries


def test_labels_come_from_the_shared_locale_files():
    # one translation path: core.i18n; the module keeps no label table of its own
    assert not hasattr(sh, "LABELS") and not hasattr(sh, "RISK_REASONS")
    assert t("stakeholders.business") == translations("en")["stakeholders.business"] == "Business"
    assert t("stakeholders.blocker", "ja") == "反対者"
    # every role and stance the charts draw has a label in both languages
    for lang in ("en", "ja"):
        keys = {f"stakeholders.{k}" for k in (*ROLES, *STANCES, "map_title", "chart_title")}
        assert keys <= set(translations(lang))


def test_charts_live_in_the_report_layer():
    """The domain module computes; the report layer draws."""
    for name in ("org_chart", "stakeholder_map", "stakeholder_panels", "STANCE_COLOURS"):
        assert not hasattr(sh, name), name
        assert getattr(plots, name) is getattr(charts, name)
    source = Path(sh.__file__).read_text(encoding="utf-8")
    assert "matplotlib" not in source


def test_rule_defaults_come_from_the_settings(people):
    """Arguments left out take the StakeholderSettings defaults (one place for defaults)."""
    rules = sh.StakeholderSettings()
    accounts = pd.DataFrame({"account_id": ["A", "B", "C", "D"]})
    explicit = sh.relationship_risks(
        people,
        None,
        AS_OF,
        accounts=accounts,
        **rules.model_dump(exclude={"governance_plan", "at_risk_share", "pseudonym_salt"}),
    )
    pd.testing.assert_frame_equal(
        sh.relationship_risks(people, None, AS_OF, accounts=accounts), explicit
    )
    # a rule given as an argument is checked like a setting
    with pytest.raises(ValueError, match="unknown stance"):
        sh.relationship_risks(people, None, AS_OF, sponsor_min_stance="friend")
    act = pd.DataFrame(
        {
            "account_id": ["A", "A"],
            "date": pd.to_datetime(["2025-01-10", "2025-03-01"]),
            "kind": ["qbr", "qbr"],
        }
    )
    default = sh.governance_cadence(act, AS_OF).set_index("account_id")
    planned = sh.governance_cadence(
        act, AS_OF, rules.governance_plan, at_risk_share=rules.at_risk_share
    ).set_index("account_id")
    pd.testing.assert_frame_equal(default, planned)
    assert default.loc["A", "qbr_plan"] == rules.governance_plan["qbr"]
    assert default.loc["A", "status"] == "off_track"  # QBR 2/4 but no executive meeting


def test_risk_reason_details_are_translated(people):
    ja = sh.relationship_risks(people, None, AS_OF, lang="ja").set_index("account_id")
    assert "単一窓口: 窓口1名のみ" in ja.loc["B", "reasons"]
    assert "推進者: 不在" in ja.loc["B", "reasons"]
    assert "推進者: 1名のみ" in ja.loc["C", "reasons"]
    assert not any(w in " ".join(ja["reasons"]) for w in ("contact(s)", "none", "only one"))
    en = sh.relationship_risks(people, None, AS_OF).set_index("account_id")
    assert "single-threaded: 1 contact(s)" in en.loc["B", "reasons"]


def test_risk_summary_counts_flags(people):
    risks = sh.relationship_risks(
        people, None, AS_OF, accounts=pd.DataFrame({"account_id": ["A", "B", "C", "D"]})
    )
    s = sh.risk_summary(risks).set_index("flag")
    assert list(s.index) == list(sh.RISK_FLAGS)
    # single-threaded: B, C, D; no sponsor: B, D; blocker: A; stale: A; champions: B, C, D
    assert s["accounts"].to_dict() == {
        "single_threaded": 3,
        "no_executive_sponsor": 2,
        "high_influence_blocker": 1,
        "stale_contacts": 1,
        "champion_concentration": 3,
    }
    assert s.loc["single_threaded", "share"] == pytest.approx(0.75)
    empty = sh.risk_summary(risks.iloc[:0])
    assert (empty["accounts"] == 0).all() and empty["share"].isna().all()
    with pytest.raises(sh.StakeholderInputError, match="relationship_risks"):
        sh.risk_summary(risks.drop(columns="stale_contacts"))


def test_role_stance_matrix(people):
    cov = sh.coverage(people, pd.DataFrame({"account_id": ["A", "B", "D"]}), AS_OF)
    m = sh.role_stance_matrix(cov)
    # coverage appends accounts that only the stakeholders know (C)
    assert list(m.index) == ["A", "B", "D", "C"] and list(m.columns) == list(ROLES)
    # A: executive supporter (1), procurement blocker (-2), IT and business champions (2)
    assert m.loc["A", "executive"] == 1 and m.loc["A", "procurement"] == -2
    assert m.loc["A", "it"] == 2 and m.loc["A", "business"] == 2
    assert np.isnan(m.loc["A", "finance"]) and m.loc["B", "business"] == 0
    assert m.loc["D"].isna().all()
    with pytest.raises(sh.StakeholderInputError, match="coverage"):
        sh.role_stance_matrix(cov.drop(columns="it_best_stance"))


def test_whitespace_buyer_summary():
    bc = pd.DataFrame(
        {
            "account_id": ["A", "A", "A", "B", "C"],
            "product_line": ["x", "y", "z", "x", "y"],
            "whitespace_value": [100.0, 50.0, 30.0, 20.0, 40.0],
            "has_buyer": [True, False, False, True, False],
        }
    )
    out = sh.whitespace_buyer_summary(bc).set_index("account_id")
    assert list(out.index) == ["A", "C", "B"]  # most whitespace without a buyer first
    a = out.loc["A"]
    assert a["whitespace_total"] == 180 and a["whitespace_no_buyer"] == 80
    assert a["share_no_buyer"] == pytest.approx(80 / 180)
    assert a["n_lines"] == 3 and a["n_lines_no_buyer"] == 2
    assert a["lines_no_buyer"] == "y, z"  # largest first
    assert out.loc["B", "lines_no_buyer"] == "" and out.loc["B", "whitespace_no_buyer"] == 0
    assert sh.whitespace_buyer_summary(bc.iloc[:0]).empty
    with pytest.raises(sh.StakeholderInputError, match="has_buyer"):
        sh.whitespace_buyer_summary(bc.drop(columns="has_buyer"))


def test_contact_list_orders_by_influence_and_hides_names(people):
    hidden = sh.contact_list(people, "A", as_of=AS_OF)
    # influence 5, then the two 4s with the longest-untouched first, then 3
    assert hidden["person"].tolist() == [sh.pseudonym(c) for c in ("c1", "c2", "c4", "c3")]
    assert hidden["role"].tolist() == ["Executive", "Business", "Procurement", "IT"]
    assert hidden["stance"].tolist() == ["Supporter", "Champion", "Blocker", "Champion"]
    assert hidden["days_since_touch"].tolist()[:3] == [29.0, 180.0, 10.0]
    assert np.isnan(hidden["days_since_touch"].iloc[3]) and pd.isna(hidden["last_touch"].iloc[3])
    assert "title" not in hidden.columns
    assert not any(n in hidden.to_string() for n in NAMES + EMAILS)
    # an activity with the contact counts as a touch; later ones are ignored
    acts = pd.DataFrame(
        {"contact_id": ["c3", "c3"], "date": pd.to_datetime(["2025-06-10", "2025-07-05"])}
    )
    touched = sh.contact_list(people, "A", as_of=AS_OF, activities=acts).set_index("role")
    assert touched.loc["IT", "days_since_touch"] == 20.0
    shown = sh.contact_list(people, "A", as_of=AS_OF, show_personal_data=True, lang="ja")
    assert shown["person"].tolist() == ["Taro Yamada", "Hanako Sato", "Jiro Abe", "Ken Ito"]
    assert shown["title"].tolist() == ["CEO", "Plant manager", "Buyer", "CIO"]
    assert shown["role"].iloc[0] == t("stakeholders.executive", "ja")


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_stakeholder_panels_one_row_per_account_without_names(people, lang):
    fig = plots.stakeholder_panels(
        people, ["A", "B"], titles={"A": "A Corp $x$"}, lang=lang, as_of=AS_OF
    )
    assert fig.axes[0].get_gridspec().get_geometry() == (2, 2)  # reports_to: org charts
    fig.canvas.draw()
    text = "\n".join(x.get_text() for x in fig.findobj(matplotlib.text.Text))
    plt.close(fig)
    assert "A Corp $x$" in text and t("stakeholders.chart_title", lang) in text
    assert sh.pseudonym("c2") in text
    assert not any(v in text for v in [*NAMES, *EMAILS])
    with pytest.raises(ValueError, match="no account_ids"):
        plots.stakeholder_panels(people, [])


def test_relationship_risks_take_their_rules_from_the_settings(people):
    """``settings=`` (a kam.toml section) sets every rule; an argument still overrides it."""
    accounts = pd.DataFrame({"account_id": ["A", "B", "C", "D"]})
    default = sh.relationship_risks(people, None, AS_OF, accounts=accounts)
    strict = sh.StakeholderSettings(stale_days=1, stale_min_influence=1)
    tightened = sh.relationship_risks(people, None, AS_OF, accounts=accounts, settings=strict)
    assert tightened["n_stale_contacts"].sum() > default["n_stale_contacts"].sum()
    overridden = sh.relationship_risks(
        people, None, AS_OF, accounts=accounts, settings=strict, stale_days=10_000
    )
    assert overridden["n_stale_contacts"].sum() < tightened["n_stale_contacts"].sum()

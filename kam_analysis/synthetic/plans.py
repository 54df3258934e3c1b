"""Synthetic account plans: our account team, objectives and stakeholder concerns.

:func:`write_plan_tables` runs after the demo book is written
(:func:`kam_analysis.synthetic.demo.generate_dataset`) and adds

* ``account_team.parquet``: our people on every key and growth account
  (staff ids such as ``S-0042``, never person names). Key accounts get an
  account lead, a solution architect, delivery and an executive sponsor,
  except the planted gaps: some key accounts have **no executive sponsor**
  and some are covered by **one person** only (an account lead doing
  everything). Growth accounts get an account lead, sometimes a solution
  architect and an executive sponsor.
* ``account_objectives.parquet``: for every active key and growth account a 3-year
  revenue objective (``revenue_12m``) that started 12 months before the
  as-of date, with its baseline read from the generated transactions (the
  revenue of the 12 months before the start) and its target set so that
  the *measured* progress lands where the plant says: ``on_track``
  objectives at the straight-line path + 0.20, ``behind`` ones at the path
  - 0.25 (some declared ``on_track`` by an optimistic team: the measurement
  must find them); accounts whose revenue fell are behind by construction.
  Plus free-text objectives that make a 3-5-year roadmap: one done, one in
  progress (declared status), one planned to start after the as-of date.
* a ``concerns`` column in ``stakeholders.parquet``: each decision-maker's
  interests, by role.

The tables draw from their own random stream (``SeedSequence([seed, 18])``),
so every other table and truth is unchanged. The planted outcomes go into
``ground_truth.json`` (``plans``) and ``ground_truth_plans.parquet`` (one row
per objective with ``planted_outcome`` and the ``expected_progress`` at the
as-of date).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from kam_analysis.core.schemas import ROLES

__all__ = [
    "PLAN_SCHEMAS",
    "PLAN_TABLES",
    "PLAN_TRUTH_FILE",
    "ROLE_CONCERNS",
    "plan_truth_doc",
    "write_plan_tables",
]

PLAN_TABLES = ("account_team", "account_objectives")
"""Tables written by :func:`write_plan_tables`."""

PLAN_TRUTH_FILE = "ground_truth_plans.parquet"

PLAN_SCHEMAS: dict[str, pa.Schema] = {
    "account_team": pa.schema(
        [
            ("account_id", pa.string()),
            ("member", pa.string()),
            ("role", pa.string()),
            ("since", pa.timestamp("us")),
            ("until", pa.timestamp("us")),
        ]
    ),
    "account_objectives": pa.schema(
        [
            ("account_id", pa.string()),
            ("objective_id", pa.string()),
            ("objective", pa.string()),
            ("owner", pa.string()),
            ("metric", pa.string()),
            ("baseline_value", pa.float64()),
            ("target_value", pa.float64()),
            ("start_date", pa.timestamp("us")),
            ("due_date", pa.timestamp("us")),
            ("status", pa.string()),
        ]
    ),
}
"""Parquet schemas of the plan tables (columns of :mod:`kam_analysis.core.schemas`)."""

ROLE_CONCERNS: dict[str, tuple[str, ...]] = {
    "executive": (
        "Growth in new markets; wants a partner, not a vendor",
        "Cost base and return on the IT budget",
        "Risk of depending on one supplier",
    ),
    "procurement": (
        "Price increases and total cost of ownership",
        "Contract terms and volume discounts",
    ),
    "it": (
        "Integration with the existing systems and security",
        "Support response times and uptime",
    ),
    "business": (
        "Adoption by the teams and training",
        "Faster reporting for the business units",
    ),
    "finance": ("Predictable annual cost", "Payback period of the investment"),
    "legal": ("Data protection and liability clauses",),
}
"""Concerns drawn for a stakeholder of each role (``stakeholders.concerns``)."""

_ON_TRACK_MARGIN = 0.20
_BEHIND_MARGIN = 0.25
_P_ON_TRACK = 0.6  # of growing key accounts
_P_OPTIMISTIC = 0.5  # of behind objectives declared on_track
_P_NO_SPONSOR = 0.15
_P_ONE_PERSON = 0.10
_REVENUE_YEARS = 3
_MAX_TARGET = 1.6  # a target above 1.6 x the current revenue is not credible


def _months(day: pd.Timestamp, n: int) -> pd.Timestamp:
    return day + pd.DateOffset(months=n)


def _revenue_windows(folder: Path, ids: list[str], as_of: pd.Timestamp) -> pd.DataFrame:
    """Revenue of ``(as_of - 12m, as_of]`` and of the 12 months before, per account.

    The windows of :mod:`kam_analysis.data.features` (``revenue_12m``,
    ``revenue_prev_12m``), read from the written transactions of ``ids`` only.
    """
    start = _months(as_of, -12)
    prev = _months(as_of, -24)
    data = pads.dataset(folder / "transactions.parquet")
    day = pc.field("date")
    table = data.to_table(
        columns=["account_id", "date", "revenue"],
        filter=pc.field("account_id").isin(pa.array(ids, type=pa.string()))
        & (day > pa.scalar(prev.to_pydatetime())),
    ).to_pandas()
    d = table["date"].dt.normalize()
    table["now"] = np.where(d > start, table["revenue"], 0.0)
    table["before"] = np.where(d <= start, table["revenue"], 0.0)
    sums = table.groupby("account_id")[["now", "before"]].sum()
    return sums.reindex(ids, fill_value=0.0)


def _staff(rng: np.random.Generator, n: int, pool: int) -> np.ndarray:
    return np.array([f"S-{i:04d}" for i in rng.integers(1, pool + 1, n)])


def _team(
    rng: np.random.Generator, key_ids: list[str], growth_ids: list[str], as_of: pd.Timestamp
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    n_key = len(key_ids)
    pool = max(20, (len(key_ids) + len(growth_ids)) // 3)
    one_person = rng.random(n_key) < _P_ONE_PERSON
    no_sponsor = one_person | (rng.random(n_key) < _P_NO_SPONSOR)
    rows = []
    since = _months(as_of, -30)
    for i, acc in enumerate(key_ids):
        lead, sa, dl, sp = _staff(rng, 4, pool)
        rows.append((acc, lead, "account_lead", since, None))
        if one_person[i]:
            continue
        rows += [
            (acc, sa, "solution_architect", since, None),
            (acc, dl, "delivery", _months(as_of, -18), None),
        ]
        if not no_sponsor[i]:
            rows.append((acc, f"X-{i % 7 + 1:02d}", "executive_sponsor", since, None))
        if rng.random() < 0.3:  # a handed-over support engineer (inactive)
            rows.append((acc, sp, "support", _months(as_of, -36), _months(as_of, -14)))
    for acc in growth_ids:
        rows.append((acc, _staff(rng, 1, pool)[0], "account_lead", since, None))
        if rng.random() < 0.6:
            rows.append((acc, _staff(rng, 1, pool)[0], "solution_architect", since, None))
        if rng.random() < 0.4:
            rows.append((acc, f"X-{rng.integers(1, 8):02d}", "executive_sponsor", since, None))
    team = pd.DataFrame(rows, columns=["account_id", "member", "role", "since", "until"])
    return team, {"one_person": one_person, "no_sponsor": no_sponsor}


def _revenue_target(
    rng: np.random.Generator, base: float, now: float, expected: float
) -> tuple[float, str, str]:
    """Target, planted outcome and declared status of one revenue objective."""
    growing = now > max(base * 1.02, 0.0)  # a new account (no baseline) grows too
    if growing and rng.random() < _P_ON_TRACK:
        progress = expected + _ON_TRACK_MARGIN
        return base + (now - base) / progress, "on_track", "on_track"
    declared = "on_track" if rng.random() < _P_OPTIMISTIC else "at_risk"
    if growing:
        target = base + (now - base) / (expected - _BEHIND_MARGIN)
        if target > _MAX_TARGET * now:  # grew too fast for a credible target it would miss
            return base + (now - base) / (expected + _ON_TRACK_MARGIN), "on_track", "on_track"
        return target, "behind", declared
    return max(base, now) * 1.3 + 1.0, "behind", declared  # falling revenue: behind


def _objectives(
    rng: np.random.Generator,
    key_ids: list[str],
    revenue: pd.DataFrame,
    team: pd.DataFrame,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    start = _months(as_of, -12) + pd.Timedelta(days=1)
    due = _months(start, 12 * _REVENUE_YEARS) - pd.Timedelta(days=1)
    expected = (as_of - start).days / (due - start).days
    lead = team[team["role"] == "account_lead"].drop_duplicates("account_id")
    lead = lead.set_index("account_id")["member"]
    sponsor = team[team["role"] == "executive_sponsor"].drop_duplicates("account_id")
    sponsor = sponsor.set_index("account_id")["member"]
    rows = []
    for acc in key_ids:
        base, now = float(revenue.at[acc, "before"]), float(revenue.at[acc, "now"])
        owner = lead.get(acc)
        target, outcome, declared = _revenue_target(rng, round(base), now, expected)
        rows.append(
            (acc, "OBJ-1", "Grow annual revenue", owner, "revenue_12m", float(round(base)),
             float(round(target)), start, due, declared, outcome, expected)
        )  # fmt: skip
        exec_owner = sponsor.get(acc, owner)
        rows.append(
            (acc, "OBJ-2", "Executive steering committee twice a year", exec_owner,
             "steering meetings held", None, None, _months(as_of, -30), _months(as_of, -6),
             "done", "done", 1.0)
        )  # fmt: skip
        status = rng.choice(["on_track", "at_risk"], p=[0.7, 0.3])
        mid_start, mid_due = _months(as_of, -6), _months(as_of, 18)
        rows.append(
            (acc, "OBJ-3", "Joint roadmap for the next platform generation", owner,
             "roadmap signed off", None, None, mid_start, mid_due, str(status), str(status),
             (as_of - mid_start).days / (mid_due - mid_start).days)
        )  # fmt: skip
        rows.append(
            (acc, "OBJ-4", "Co-development proof of concept", exec_owner, "PoC agreement",
             None, None, _months(as_of, 6), _months(as_of, 48), "planned", "planned", 0.0)
        )  # fmt: skip
    cols = [*PLAN_SCHEMAS["account_objectives"].names, "planted_outcome", "expected_progress"]
    return pd.DataFrame(rows, columns=cols)


def _concerns(folder: Path, seed: int) -> int:
    """Add ``concerns`` to ``stakeholders.parquet`` (one concern by role per person)."""
    path = folder / "stakeholders.parquet"
    table = pq.read_table(path)
    if "concerns" in table.column_names:
        return table.num_rows
    rng = np.random.default_rng(np.random.SeedSequence([seed, 18, 1]))
    roles = table.column("role").to_pylist()
    draw = rng.random(len(roles))
    concerns = [
        ROLE_CONCERNS[r][int(u * len(ROLE_CONCERNS[r]))] if r in ROLES else None
        for r, u in zip(roles, draw, strict=True)
    ]
    table = table.append_column("concerns", pa.array(concerns, pa.string()))
    pq.write_table(table, path)
    return table.num_rows


def write_plan_tables(
    folder: str | Path,
    *,
    seed: int,
    account_ids: list[str],
    tier: np.ndarray,
    churned: np.ndarray,
    as_of: dt.date | str,
) -> dict:
    """Write ``account_team``, ``account_objectives`` and ``stakeholders.concerns``.

    Parameters
    ----------
    folder : str or Path
        The dataset folder, with ``transactions.parquet`` and
        ``stakeholders.parquet`` already written.
    seed : int
        The dataset's seed (the plan tables use ``SeedSequence([seed, 18])``).
    account_ids : list of str
        Every account, in order.
    tier : numpy.ndarray
        True tier index per account (0 = key, 1 = growth, 2 = standard).
    churned : numpy.ndarray
        Whether each account has churned (churned accounts get no objectives).
    as_of : date or str
        The as-of date of the dataset.

    Returns
    -------
    dict
        ``rows`` (per table) and ``truth`` (the ``plans`` section of
        ``ground_truth.json``, see :func:`plan_truth_doc`). Also writes
        :data:`PLAN_TRUTH_FILE`.
    """
    folder = Path(folder)
    day = pd.Timestamp(as_of)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 18]))
    ids = np.asarray(account_ids, dtype=object)
    key_ids = [str(x) for x in ids[(tier == 0) & ~churned]]
    growth_ids = [str(x) for x in ids[(tier == 1) & ~churned]]
    team, planted = _team(rng, key_ids, growth_ids, day)
    planned = key_ids + growth_ids
    revenue = _revenue_windows(folder, planned, day)
    objectives = _objectives(rng, planned, revenue, team, day)
    truth = objectives[["account_id", "objective_id", "planted_outcome", "expected_progress"]]
    pq.write_table(
        pa.Table.from_pandas(team, schema=PLAN_SCHEMAS["account_team"], preserve_index=False),
        folder / "account_team.parquet",
    )
    pq.write_table(
        pa.Table.from_pandas(
            objectives[PLAN_SCHEMAS["account_objectives"].names],
            schema=PLAN_SCHEMAS["account_objectives"],
            preserve_index=False,
        ),
        folder / "account_objectives.parquet",
    )
    pq.write_table(pa.Table.from_pandas(truth, preserve_index=False), folder / PLAN_TRUTH_FILE)
    n_stakeholders = _concerns(folder, seed)
    flags = {
        "no_executive_sponsor": [
            a for a, f in zip(key_ids, planted["no_sponsor"], strict=True) if f
        ],
        "one_person": [a for a, f in zip(key_ids, planted["one_person"], strict=True) if f],
    }
    return {
        "rows": {"account_team": len(team), "account_objectives": len(objectives)},
        "stakeholders": n_stakeholders,
        "truth": plan_truth_doc(objectives, flags),
    }


def plan_truth_doc(objectives: pd.DataFrame, flags: dict[str, list[str]]) -> dict:
    """The ``plans`` section of ``ground_truth.json``."""
    revenue = objectives[objectives["metric"] == "revenue_12m"]
    counts = revenue["planted_outcome"].value_counts()
    return {
        "revenue_objectives": {
            "definition": "one per active key and growth account, objective_id OBJ-1, metric revenue_12m, "
            "start = as_of - 12 months + 1 day, due 3 years later; baseline_value = revenue of "
            "the 12 months before start (features revenue_prev_12m); measured progress = "
            "(revenue_12m - baseline) / (target - baseline)",
            "planted": {
                "on_track": f"target set so that progress = expected + {_ON_TRACK_MARGIN}",
                "behind": f"target set so that progress = expected - {_BEHIND_MARGIN} (planted "
                f"on_track instead when that target exceeds {_MAX_TARGET} x revenue_12m), or "
                "revenue fell (target 1.3 x the larger of baseline and revenue_12m); about half "
                "are declared on_track anyway",
            },
            "counts": {k: int(v) for k, v in counts.items()},
            "expected_progress": float(revenue["expected_progress"].iloc[0])
            if len(revenue)
            else None,
        },
        "other_objectives": "OBJ-2 done (past), OBJ-3 in progress with a declared status, "
        "OBJ-4 planned to start 6 months after as_of and due 4 years after it",
        "team": {
            "definition": "key accounts: account_lead, solution_architect, delivery, "
            "executive_sponsor (X-nn); growth accounts: account_lead (+ solution_architect 60 %, "
            "executive_sponsor 40 %); members are staff ids; the flags below list key accounts",
            "no_executive_sponsor": flags["no_executive_sponsor"],
            "one_person": flags["one_person"],
        },
        "concerns": "stakeholders.concerns drawn from ROLE_CONCERNS by role",
        "objectives_file": PLAN_TRUTH_FILE,
    }

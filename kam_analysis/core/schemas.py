"""The data contract: one pandera schema per canonical table.

Every rule about input data lives here, once: column names, types,
nullability, ranges, allowed values, key uniqueness, and the cross-table
rules. The classes double as the data dictionary (``Field(description=...)``);
:func:`data_dictionary` renders them as a table.

Columns annotated ``X | None`` may be absent from a file (the analyses
that need them are switched off); all other columns are required. Whether a
value may be missing is the separate ``nullable`` flag.

Validation itself runs in :mod:`kam_analysis.data`, which compiles these
schemas into queries on the files (DuckDB through Ibis) so that a
20-million-line file is checked without loading it into pandas.

Field metadata understood by the validator
------------------------------------------
``kind``
    ``"date"`` (parsed from ISO ``2024-04-01`` or ``2024/04/01`` forms),
    ``"amount"`` (thousands separators and currency signs stripped),
    ``"integer"``, ``"flag"`` (true/false, yes/no, 1/0) or ``"text"``.
``not_after_as_of``
    The date may not lie after the as-of date of the analysis.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import pandas as pd
import pandera.ibis as pa

ROLES = ("executive", "procurement", "it", "business", "finance", "legal")
STANCES = ("champion", "supporter", "neutral", "skeptic", "blocker")
STANCE_SCORE = {"champion": 2, "supporter": 1, "neutral": 0, "skeptic": -1, "blocker": -2}
OPPORTUNITY_STAGES = (
    "prospecting",
    "qualification",
    "proposal",
    "negotiation",
    "closed_won",
    "closed_lost",
)
OPEN_STAGES = OPPORTUNITY_STAGES[:4]
OPPORTUNITY_TYPES = ("new", "cross_sell", "upsell", "renewal")
PRICING_MODELS = (
    "fixed",
    "fixed_plus_outcome",
    "outcome_based",
    "tiered",
    "usage_based",
    "subscription",
)
CONTRACT_STATUSES = ("active", "renewed", "expired", "churned")
ACTIVITY_KINDS = (
    "meeting",
    "call",
    "email",
    "qbr",
    "executive_meeting",
    "workshop",
    "poc_review",
    "onboarding",
    "support",
)
OBJECTIVE_STATUSES = ("planned", "on_track", "at_risk", "done", "dropped")
TEAM_ROLES = (
    "account_lead",
    "executive_sponsor",
    "solution_architect",
    "delivery",
    "support",
    "other",
)
OBJECTIVE_METRICS = (
    "revenue_12m",
    "gross_profit_12m",
    "revenue",
    "gross_profit",
    "gross_margin",
    "ltv",
    "csat",
    "nps",
    "exec_contact",
    "share_of_wallet",
    "cross_sell_rate",
    "upsell_rate",
    "nrr",
    "time_to_adoption",
    "poc_success_rate",
    "poc_conversion",
    "utilisation",
    "retention_after_adoption",
)
"""Objective metrics measured from the data: every KPI id of :mod:`kam_analysis.kpi` plus the
trailing-12-month ``revenue_12m`` and ``gross_profit_12m`` of the feature table. Any other
metric is free text, and its progress comes from the objective's status."""
QUALITATIVE_CRITERIA = (
    "strategic_fit",
    "co_development",
    "reference_value",
    "barrier_to_entry",
    "synergy",
    "decision_complexity",
)

_SCORE_1_5 = {"min_value": 1, "max_value": 5}


def _date(description: str, *, nullable: bool = False, not_after_as_of: bool = True):
    return pa.Field(
        nullable=nullable,
        description=description,
        metadata={"kind": "date", "not_after_as_of": not_after_as_of},
    )


def _amount(description: str, *, nullable: bool = False, **checks):
    return pa.Field(
        nullable=nullable, description=description, metadata={"kind": "amount"}, **checks
    )


def _integer(description: str, *, nullable: bool = False, **checks):
    return pa.Field(
        nullable=nullable, description=description, metadata={"kind": "integer"}, **checks
    )


def _score(description: str):
    return _integer(description + " (1 = low, 5 = high)", nullable=True, in_range=_SCORE_1_5)


def _account_ref():
    return pa.Field(description="Account identifier; must exist in accounts.")


class Accounts(pa.DataFrameModel):
    """One row per customer account."""

    account_id: str = pa.Field(unique=True, description="Account identifier (key).")
    name: str | None = pa.Field(
        nullable=True, description="Account (company) name; the account_id when absent."
    )
    industry: str | None = pa.Field(nullable=True, description="Industry of the account.")
    region: str | None = pa.Field(nullable=True, description="Sales region.")
    since: dt.datetime | None = _date("Customer since (first contract or order).", nullable=True)
    wallet_estimate: float | None = _amount(
        "Estimated annual spend of the customer in our category (its wallet), base currency.",
        nullable=True,
        ge=0,
    )
    employees: int | None = _integer("Number of employees.", nullable=True, ge=0)
    account_manager: str | None = pa.Field(nullable=True, description="Account lead.")
    strategic_fit: int | None = _score("Fit with our strategy")
    co_development: int | None = _score("Co-development / co-investment potential")
    reference_value: int | None = _score("Value as a reference customer")
    barrier_to_entry: int | None = _score("Barrier to entry the relationship creates")
    synergy: int | None = _score("Knock-on deployment potential across the customer's business")
    decision_complexity: int | None = _score("Complexity of the customer's decision structure")

    class Config:
        metadata = {"table": "accounts", "required": True, "key": ["account_id"]}
        # required, but derived from the transactions when there is no accounts file


class Transactions(pa.DataFrameModel):
    """One row per invoice or order line."""

    account_id: str = pa.Field(
        description="Account identifier; lines without one are left out "
        '([data] unattributed = "error" refuses them).'
    )
    date: dt.datetime = _date("Invoice or order date.")
    product_line: str | None = pa.Field(
        description="Product line sold (without it, product-line analyses are skipped)."
    )
    revenue: float = _amount(
        "Net revenue of the line; negative on credit notes and returns, which are netted "
        '([data] credit_notes = "error" refuses them).'
    )
    cost: float | None = _amount(
        "Cost of goods sold for the line (gross profit = revenue - cost); negative on returns.",
        nullable=True,
    )
    currency: str | None = pa.Field(
        nullable=True,
        str_matches=r"^[A-Z]{3}$",
        description="ISO 4217 currency code; the configured base currency when absent.",
    )
    quantity: float | None = _amount("Quantity (negative on returns).", nullable=True)
    order_id: str | None = pa.Field(
        nullable=True, description="Order or invoice number; lines of one order share it."
    )

    class Config:
        metadata = {"table": "transactions", "required": True, "key": []}


class Contracts(pa.DataFrameModel):
    """One row per contract (or contract term)."""

    contract_id: str = pa.Field(unique=True, description="Contract identifier (key).")
    account_id: str = _account_ref()
    start_date: dt.datetime = _date("Start of the contract term.", not_after_as_of=False)
    end_date: dt.datetime = _date("End of the contract term.", nullable=True, not_after_as_of=False)
    annual_value: float = _amount("Annual contract value.", ge=0)
    currency: str | None = pa.Field(
        nullable=True, str_matches=r"^[A-Z]{3}$", description="ISO 4217 currency code."
    )
    pricing_model: str | None = pa.Field(
        nullable=True, isin=list(PRICING_MODELS), description="Pricing scheme of the contract."
    )
    signed_date: dt.datetime | None = _date("Date the contract was signed.", nullable=True)
    go_live_date: dt.datetime | None = _date(
        "Date the customer went live (time to adoption = go-live - signed).", nullable=True
    )
    status: str = pa.Field(isin=list(CONTRACT_STATUSES), description="Contract status.")
    churn_date: dt.datetime | None = _date("Date the customer left, if churned.", nullable=True)
    product_line: str | None = pa.Field(nullable=True, description="Product line contracted.")

    class Config:
        metadata = {"table": "contracts", "required": False, "key": ["contract_id"]}


class Opportunities(pa.DataFrameModel):
    """One row per sales opportunity, open or closed."""

    opportunity_id: str = pa.Field(unique=True, description="Opportunity identifier (key).")
    account_id: str = _account_ref()
    created_date: dt.datetime = _date("Date the opportunity was opened.")
    close_date: dt.datetime = _date(
        "Date closed, or expected close date while open.", nullable=True, not_after_as_of=False
    )
    stage: str = pa.Field(isin=list(OPPORTUNITY_STAGES), description="Pipeline stage.")
    amount: float = _amount("Expected (or won) annual amount.", ge=0)
    type: str = pa.Field(isin=list(OPPORTUNITY_TYPES), description="Kind of opportunity.")
    product_line: str | None = pa.Field(nullable=True, description="Product line concerned.")
    is_poc: bool | None = pa.Field(
        nullable=True, description="Proof of concept / pilot.", metadata={"kind": "flag"}
    )
    probability: float | None = _amount(
        "Win probability 0-1; the configured stage weights are used when absent.",
        nullable=True,
        in_range={"min_value": 0, "max_value": 1},
    )

    class Config:
        metadata = {"table": "opportunities", "required": False, "key": ["opportunity_id"]}


class Stakeholders(pa.DataFrameModel):
    """One row per person at the account (the buying centre)."""

    contact_id: str = pa.Field(unique=True, description="Contact identifier (key).")
    account_id: str = _account_ref()
    role: str = pa.Field(isin=list(ROLES), description="Decision role.")
    influence: int = _integer(
        "Influence on the buying decision (1 = low, 5 = high).", in_range=_SCORE_1_5
    )
    stance: str = pa.Field(isin=list(STANCES), description="Stance towards us.")
    reports_to: str | None = pa.Field(
        nullable=True, description="contact_id of the person's manager (for the org chart)."
    )
    last_contact_date: dt.datetime | None = _date("Date of our last contact.", nullable=True)
    product_line: str | None = pa.Field(
        nullable=True, description="Product line the person buys for or influences."
    )
    name: str | None = pa.Field(nullable=True, description="Person's name (personal data).")
    email: str | None = pa.Field(nullable=True, description="E-mail (personal data).")
    title: str | None = pa.Field(nullable=True, description="Job title.")
    concerns: str | None = pa.Field(
        nullable=True,
        description="The person's interests and concerns, free text (shown in account plans).",
    )

    class Config:
        metadata = {"table": "stakeholders", "required": False, "key": ["contact_id"]}


class Activities(pa.DataFrameModel):
    """One row per touchpoint with the account."""

    activity_id: str | None = pa.Field(
        nullable=True, unique=True, description="Activity identifier."
    )
    account_id: str = _account_ref()
    date: dt.datetime = _date("Date of the touchpoint.")
    kind: str = pa.Field(isin=list(ACTIVITY_KINDS), description="Kind of touchpoint.")
    contact_id: str | None = pa.Field(nullable=True, description="Person met, if known.")

    class Config:
        metadata = {"table": "activities", "required": False, "key": []}


class Surveys(pa.DataFrameModel):
    """One row per survey response."""

    account_id: str = _account_ref()
    date: dt.datetime = _date("Response date.")
    nps: int = _integer(
        "Likelihood to recommend, 0-10.", nullable=True, in_range={"min_value": 0, "max_value": 10}
    )
    csat: int | None = _integer("Satisfaction, 1-5.", nullable=True, in_range=_SCORE_1_5)
    contact_id: str | None = pa.Field(nullable=True, description="Respondent, if known.")

    class Config:
        metadata = {"table": "surveys", "required": False, "key": []}


class Usage(pa.DataFrameModel):
    """One row per account and month of product usage."""

    account_id: str = _account_ref()
    month: dt.datetime = _date("First day of the month.")
    seats_purchased: int = _integer("Seats (licences) purchased.", ge=0)
    seats_active: int = _integer("Seats actively used in the month.", ge=0)

    class Config:
        metadata = {"table": "usage", "required": False, "key": ["account_id", "month"]}


class AccountTeam(pa.DataFrameModel):
    """One row per member of our team on an account, and role."""

    account_id: str = _account_ref()
    member: str = pa.Field(description="Our person (name or staff id; personal data).")
    role: str = pa.Field(isin=list(TEAM_ROLES), description="Role on the account.")
    since: dt.datetime | None = _date("Start of the assignment.", nullable=True)
    until: dt.datetime | None = _date(
        "End of the assignment; empty while active.", nullable=True, not_after_as_of=False
    )

    class Config:
        metadata = {"table": "account_team", "required": False, "key": []}


class AccountObjectives(pa.DataFrameModel):
    """One row per objective of an account plan."""

    account_id: str = _account_ref()
    objective_id: str = pa.Field(description="Objective identifier (key with account_id).")
    objective: str = pa.Field(description="What is to be achieved, free text.")
    owner: str | None = pa.Field(
        nullable=True, description="Member of the account team who owns it."
    )
    metric: str | None = pa.Field(
        nullable=True,
        description="A measured metric (" + ", ".join(OBJECTIVE_METRICS) + ") or free text; "
        "progress of a free-text metric comes from status.",
    )
    baseline_value: float | None = _amount("Metric value at start_date.", nullable=True)
    target_value: float | None = _amount("Metric value to reach by due_date.", nullable=True)
    start_date: dt.datetime = _date("Start of the objective.", not_after_as_of=False)
    due_date: dt.datetime = _date("Due date of the objective.", not_after_as_of=False)
    status: str | None = pa.Field(
        nullable=True, isin=list(OBJECTIVE_STATUSES), description="Status set by the team."
    )

    class Config:
        metadata = {
            "table": "account_objectives",
            "required": False,
            "key": ["account_id", "objective_id"],
        }


class FxRates(pa.DataFrameModel):
    """Exchange rates into the base currency (needed when transactions mix currencies)."""

    currency: str = pa.Field(unique=True, str_matches=r"^[A-Z]{3}$", description="Currency code.")
    rate_to_base: float = _amount("Units of base currency per unit of this currency.", gt=0)

    class Config:
        metadata = {"table": "fx_rates", "required": False, "key": ["currency"]}


TABLE_MODELS: dict[str, type[pa.DataFrameModel]] = {
    "accounts": Accounts,
    "transactions": Transactions,
    "contracts": Contracts,
    "opportunities": Opportunities,
    "stakeholders": Stakeholders,
    "activities": Activities,
    "surveys": Surveys,
    "usage": Usage,
    "account_team": AccountTeam,
    "account_objectives": AccountObjectives,
    "fx_rates": FxRates,
}
"""Every table of the contract, by file name (without extension)."""

CANONICAL_TABLES = tuple(t for t in TABLE_MODELS if t != "fx_rates")
REQUIRED_TABLES = tuple(t for t, m in TABLE_MODELS.items() if m.Config.metadata["required"])


@dataclass(frozen=True)
class ColumnSpec:
    """What the validator needs to know about one contract column."""

    table: str
    name: str
    dtype: str
    kind: str
    required: bool
    nullable: bool
    unique: bool
    checks: tuple[tuple[str, dict], ...]
    not_after_as_of: bool
    description: str


@dataclass(frozen=True)
class CrossRule:
    """A rule that involves more than one column or table."""

    table: str
    name: str
    description: str
    severity: Literal["error", "warning"]
    columns: tuple[str, ...]


CROSS_RULES: tuple[CrossRule, ...] = (
    CrossRule(
        "transactions",
        "cost_not_above_revenue",
        "cost should not exceed revenue (negative gross profit)",
        "warning",
        ("cost", "revenue"),
    ),
    CrossRule(
        "contracts",
        "end_not_before_start",
        "end_date must not be before start_date",
        "error",
        ("start_date", "end_date"),
    ),
    CrossRule(
        "contracts",
        "go_live_not_before_signed",
        "go_live_date must not be before signed_date",
        "error",
        ("signed_date", "go_live_date"),
    ),
    CrossRule(
        "usage",
        "active_not_above_purchased",
        "seats_active should not exceed seats_purchased",
        "warning",
        ("seats_active", "seats_purchased"),
    ),
    CrossRule(
        "stakeholders",
        "reports_to_known_contact",
        "reports_to should name a contact_id of the same file",
        "warning",
        ("reports_to",),
    ),
    CrossRule(
        "account_objectives",
        "due_not_before_start",
        "due_date must not be before start_date",
        "error",
        ("start_date", "due_date"),
    ),
    CrossRule(
        "account_objectives",
        "metric_measured_or_status",
        "a free-text metric (not one of OBJECTIVE_METRICS) needs a status",
        "error",
        ("metric", "status"),
    ),
    CrossRule(
        "account_objectives",
        "owner_in_account_team",
        "owner should be a member of the account's team (account_team)",
        "error",
        ("owner",),
    ),
    CrossRule(
        "account_team",
        "one_executive_sponsor",
        "at most one active executive_sponsor per account",
        "warning",
        ("role", "until"),
    ),
)
"""Rules beyond single columns; foreign keys to accounts are implied by ``account_id``."""


def _kind_for(dtype: str, metadata: dict) -> str:
    if "kind" in metadata:
        return metadata["kind"]
    if dtype.startswith("timestamp"):
        return "date"
    if dtype.startswith("int"):
        return "integer"
    if dtype.startswith("float"):
        return "amount"
    if dtype == "boolean":
        return "flag"
    return "text"


def column_specs(table: str) -> tuple[ColumnSpec, ...]:
    """Return the contract columns of ``table`` in declaration order.

    Parameters
    ----------
    table : str
        A key of :data:`TABLE_MODELS`.

    Returns
    -------
    tuple of ColumnSpec
    """
    schema = TABLE_MODELS[table].to_schema()
    specs = []
    for name, col in schema.columns.items():
        meta = col.metadata or {}
        dtype = str(col.dtype)
        specs.append(
            ColumnSpec(
                table=table,
                name=name,
                dtype=dtype,
                kind=_kind_for(dtype, meta),
                required=bool(col.required),
                nullable=bool(col.nullable),
                unique=bool(col.unique),
                checks=tuple((c.name, dict(c.statistics)) for c in col.checks),
                not_after_as_of=bool(meta.get("not_after_as_of", False)),
                description=col.description or "",
            )
        )
    return tuple(specs)


def table_key(table: str) -> list[str]:
    """Columns that identify a row of ``table`` (empty when rows have no key)."""
    return list(TABLE_MODELS[table].Config.metadata["key"])


def data_dictionary() -> pd.DataFrame:
    """The contract as a table: one row per column of every canonical table.

    Returns
    -------
    pandas.DataFrame
        Columns ``table``, ``column``, ``type``, ``required``, ``nullable``,
        ``unique``, ``rules`` and ``description``.
    """
    rows = []
    for table in TABLE_MODELS:
        for spec in column_specs(table):
            rules = [describe_check(n, s) for n, s in spec.checks]
            if spec.not_after_as_of:
                rules.append("not after the as-of date")
            rows.append(
                {
                    "table": table,
                    "column": spec.name,
                    "type": spec.kind,
                    "required": spec.required,
                    "nullable": spec.nullable,
                    "unique": spec.unique,
                    "rules": "; ".join(rules),
                    "description": spec.description,
                }
            )
    return pd.DataFrame(rows)


def describe_check(name: str, stats: dict) -> str:
    """Describe a pandera check in words, e.g. ``between 1 and 5``."""
    if name == "in_range":
        return f"between {stats['min_value']} and {stats['max_value']}"
    if name == "greater_than_or_equal_to":
        return f">= {stats['min_value']}"
    if name == "greater_than":
        return f"> {stats['min_value']}"
    if name == "less_than_or_equal_to":
        return f"<= {stats['max_value']}"
    if name == "isin":
        return "one of " + ", ".join(map(str, stats["allowed_values"]))
    if name == "str_matches":
        return f"matches {stats['pattern']}"
    return name

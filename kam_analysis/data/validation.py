"""Validating an opened dataset against the contract.

Validation (:func:`validate_dataset`) compiles the contract
(:mod:`kam_analysis.core.schemas`) into one aggregate query per table plus key,
foreign-key and cross-column queries, all expressed in Ibis so they also run
on a warehouse backend; only counts and at most five example rows per broken
rule come back.

Why not ``pandera``'s own ``validate`` for the run: the contract *is*
defined as pandera models, but pandera's Ibis backend reports failures
without row positions, and its lazy mode skipped the uniqueness check in
our probe (see PITFALLS.md, pandera #1993). Users need the file line of
every example, so the validator here interprets the same pandera checks
itself; a test checks both agree on valid data.

Real exports are accepted as they are where that is safe, and the summary
says what was done: credit notes and returns (negative lines) are netted
(``[data] credit_notes = "error"`` refuses them), transaction lines without
an account are left out and counted (``[data] unattributed = "error"``
refuses them), and an as-of date far after the last line draws a warning.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir

from kam_analysis.core.schemas import (
    CANONICAL_TABLES,
    OBJECTIVE_METRICS,
    REQUIRED_TABLES,
    TABLE_MODELS,
    column_specs,
    describe_check,
    table_key,
)
from kam_analysis.data.dataset import DERIVED, Dataset, ReadConfig, open_dataset
from kam_analysis.data.files import ROW
from kam_analysis.data.report import MAX_EXAMPLES, DatasetError, Issue, ValidationReport

__all__ = ["AS_OF_GAP_DAYS", "as_date", "validate_dataset", "validate_open_dataset"]

AS_OF_GAP_DAYS = 90
"""An as-of date more than this many days after the last transaction draws a warning."""

SIGNED_COLUMNS = ("revenue", "cost", "quantity")
"""Transaction columns that are negative on credit notes and returns."""


@dataclass
class _Rule:
    table: str
    column: str | None
    rule: str
    message: str
    severity: str
    predicate: ir.BooleanValue  # True on a failing row
    show: tuple[str, ...]


def _check_predicate(t: ir.Table, column: str, name: str, stats: dict) -> ir.BooleanValue | None:
    c = t[column]
    if name == "in_range":
        ok = (c >= stats["min_value"]) & (c <= stats["max_value"])
    elif name == "greater_than_or_equal_to":
        ok = c >= stats["min_value"]
    elif name == "greater_than":
        ok = c > stats["min_value"]
    elif name == "less_than_or_equal_to":
        ok = c <= stats["max_value"]
    elif name == "isin":
        ok = c.isin(list(stats["allowed_values"]))
    elif name == "str_matches":
        ok = c.re_search(stats["pattern"])
    else:
        return None
    return c.notnull() & ~ok


_CHECK_MESSAGES = {
    "in_range": "value out of range",
    "greater_than_or_equal_to": "value below the minimum",
    "greater_than": "value not above the minimum",
    "less_than_or_equal_to": "value above the maximum",
    "isin": "value not allowed",
    "str_matches": "value has the wrong form",
}

_PARSE_MESSAGES = {
    "amount": "not a number",
    "integer": "not a whole number",
    "date": "not a date (2024-04-01, 2024/04/01, 20240401, or a [data] date_format)",
    "flag": "not a yes/no value",
}


def _context_columns(table: str, t: ir.Table) -> tuple[str, ...]:
    preferred = [*table_key(table), "account_id", "date"]
    out: list[str] = []
    for c in preferred:
        if c in t.columns and c not in out:
            out.append(c)
    return tuple(out[:3])


def _column_rules(
    ds: Dataset, table: str, as_of: dt.date, t: ir.Table | None = None
) -> list[_Rule]:
    t = ds.checked_table(table) if t is None else t
    context = _context_columns(table, t)
    end_of_day = ibis.timestamp(dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time()))
    strict_signs = ds.config.data.credit_notes == "error"
    rules: list[_Rule] = []
    for spec in column_specs(table):
        if spec.name not in t.columns:
            continue
        c = t[spec.name]
        show = tuple(dict.fromkeys((spec.name, *context)))
        bad_col = f"__bad_{spec.name}"
        parse_failed = t[bad_col] if bad_col in t.columns else ibis.literal(False)
        if bad_col in t.columns:
            rules.append(
                _Rule(
                    table,
                    spec.name,
                    f"parse {spec.kind}",
                    _PARSE_MESSAGES[spec.kind],
                    "error",
                    t[bad_col],
                    (f"__raw_{spec.name}", *context),
                )
            )
        if not spec.nullable:
            message = "value missing"
            if table == "transactions" and spec.name == "account_id":
                message = 'line without an account (set [data] unattributed = "drop" to leave such lines out)'
            rules.append(
                _Rule(
                    table, spec.name, "not null", message, "error", c.isnull() & ~parse_failed, show
                )
            )
        for name, stats in spec.checks:
            pred = _check_predicate(t, spec.name, name, stats)
            if pred is not None:
                message = _CHECK_MESSAGES[name]
                if name == "greater_than_or_equal_to" and stats["min_value"] == 0:
                    message = "negative value"
                rules.append(
                    _Rule(
                        table, spec.name, describe_check(name, stats), message, "error", pred, show
                    )
                )
        if table == "transactions" and spec.name in SIGNED_COLUMNS and strict_signs:
            rules.append(
                _Rule(
                    table,
                    spec.name,
                    ">= 0",
                    'negative value (credit note or return; [data] credit_notes = "net" accepts '
                    "and nets them)",
                    "error",
                    c.notnull() & (c < 0),
                    show,
                )
            )
        if spec.not_after_as_of:
            rules.append(
                _Rule(
                    table,
                    spec.name,
                    f"not after as-of date {as_of}",
                    "date after the as-of date",
                    "error",
                    c.notnull() & (c >= end_of_day),
                    show,
                )
            )
    rules.extend(_cross_column_rules(t, table))
    return rules


def _cross_column_rules(t: ir.Table, table: str) -> list[_Rule]:
    out: list[_Rule] = []

    def has(*cols: str) -> bool:
        return all(c in t.columns for c in cols)

    if table == "transactions" and has("cost", "revenue"):
        out.append(
            _Rule(
                table,
                "cost",
                "cost <= revenue",
                "cost above revenue (negative gross profit)",
                "warning",
                (t.revenue >= 0) & (t.cost > t.revenue + 1e-9),
                ("cost", "revenue", "account_id", "date"),
            )
        )
    if table == "contracts" and has("start_date", "end_date"):
        out.append(
            _Rule(
                table,
                "end_date",
                "end_date >= start_date",
                "contract ends before it starts",
                "error",
                t.end_date < t.start_date,
                ("end_date", "start_date", "contract_id"),
            )
        )
    if table == "contracts" and has("signed_date", "go_live_date"):
        out.append(
            _Rule(
                table,
                "go_live_date",
                "go_live_date >= signed_date",
                "go-live before signing",
                "error",
                t.go_live_date < t.signed_date,
                ("go_live_date", "signed_date", "contract_id"),
            )
        )
    if table == "usage" and has("seats_active", "seats_purchased"):
        out.append(
            _Rule(
                table,
                "seats_active",
                "seats_active <= seats_purchased",
                "more active seats than purchased",
                "warning",
                t.seats_active > t.seats_purchased,
                ("seats_active", "seats_purchased", "account_id", "month"),
            )
        )
    if table == "account_objectives" and has("start_date", "due_date"):
        out.append(
            _Rule(
                table,
                "due_date",
                "due_date >= start_date",
                "objective due before it starts",
                "error",
                t.due_date < t.start_date,
                ("due_date", "start_date", "account_id", "objective_id"),
            )
        )
    if table == "account_objectives" and has("metric"):
        free_text = t.metric.isnull() | ~t.metric.isin(list(OBJECTIVE_METRICS))
        no_status = t.status.isnull() if has("status") else ibis.literal(True)
        out.append(
            _Rule(
                table,
                "status",
                "metric measured or a status",
                "free-text metric without a status: progress can neither be measured "
                f"(measured metrics: {', '.join(OBJECTIVE_METRICS)}) nor read from status",
                "error",
                free_text & no_status,
                ("metric", "status", "account_id", "objective_id"),
            )
        )
    return out


def _count_failures(t: ir.Table, rules: list[_Rule]) -> tuple[int, list[int]]:
    aggs = {"__n": t.count()}
    for i, rule in enumerate(rules):
        aggs[f"r{i}"] = ibis.ifelse(rule.predicate.fill_null(False), 1, 0).sum()  # any engine
    row = t.aggregate(**aggs).to_pyarrow().to_pylist()[0]
    return int(row["__n"]), [int(row[f"r{i}"] or 0) for i in range(len(rules))]


def _examples(
    t: ir.Table, predicate: ir.BooleanValue, show: Iterable[str], offset: int
) -> list[dict]:
    cols = [c for c in show if c in t.columns]
    numbered = ROW in t.columns  # files: line numbers; engine tables have no row order
    lead = [ROW] if numbered else []
    rows = (
        t.filter(predicate.fill_null(False))
        .select(*lead, *cols)
        .order_by(lead or cols)
        .limit(MAX_EXAMPLES)
        .to_pyarrow()
        .to_pylist()
    )
    out = []
    for r in rows:
        ex = {"_line": int(r.pop(ROW)) + offset} if numbered else {}
        for k, v in r.items():
            name = k.removeprefix("__raw_")
            if k.startswith("__raw_") or name not in ex:
                ex[name] = v
        out.append(ex)
    return out


_DAY_MONTH = re.compile(r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})")


def _date_hint(examples: list[dict], column: str) -> str:
    """Advice for dates written day/month or month/day (never guessed)."""
    firsts, seconds, samples = [], [], []
    for ex in examples:
        m = _DAY_MONTH.match(str(ex.get(column) or ""))
        if m:
            firsts.append(int(m.group(1)))
            seconds.append(int(m.group(2)))
            samples.append(str(ex.get(column)).strip())
    if not firsts:
        return ""
    sample = samples[0]  # a day/month value: the format advised is written like it
    time = (
        " %H:%M"
        if ":" in sample and sample.count(":") == 1
        else (" %H:%M:%S" if ":" in sample else "")
    )
    sep = "/" if "/" in sample else ("." if "." in sample.split()[0] else "-")
    us = f"%m{sep}%d{sep}%Y{time}"
    eu = f"%d{sep}%m{sep}%Y{time}"
    if any(f > 12 for f in firsts):
        return f'; these dates put the day first: set [data] date_format = "{eu}"'
    if any(s > 12 for s in seconds):
        return f'; these dates put the month first: set [data] date_format = "{us}"'
    return (
        "; day and month order is never guessed: set [data] date_format = "
        f'"{us}" (month first, US) or "{eu}" (day first)'
    )


def _amount_hint(ds: Dataset, table: str, examples: list[dict], column: str) -> str:
    texts = [str(ex.get(column) or "") for ex in examples]
    src = ds.sources[table]
    if any("," in x for x in texts) and ds.config.data.decimal is None:
        if src.detected_delimiter == ";":
            return (
                "; this semicolon-delimited file has commas in amounts, which could be "
                'decimal commas (1.709,58): set [data] decimal = ","  (or "." if they separate thousands)'
            )
        return '; for a decimal comma (1.709,58) set [data] decimal = ","'
    if any(x.strip().lower() in ("nan", "inf", "-inf", "infinity") for x in texts):
        return "; NaN and infinity are not amounts"
    return ""


def _issue_for(ds: Dataset, rule: _Rule, n: int, examples: list[dict]) -> Issue:
    src = ds.sources[rule.table]
    message = rule.message
    if rule.rule == "parse date" and rule.column:
        message += _date_hint(examples, rule.column)
    elif rule.rule in ("parse amount", "parse integer") and rule.column:
        message += _amount_hint(ds, rule.table, examples, rule.column)
    return Issue(
        rule.severity,
        rule.table,
        src.path.name,
        rule.column,
        rule.rule,
        message,
        n,
        examples,
        src.line_label,
    )


def _key_issues(ds: Dataset, table: str) -> list[Issue]:
    t = ds.checked_table(table)
    key = [k for k in table_key(table) if k in t.columns]
    unique_cols = [s.name for s in column_specs(table) if s.unique and s.name not in key]
    src = ds.sources[table]
    issues = []
    for cols in ([key] if key else []) + [[c] for c in unique_cols if c in t.columns]:
        present = t.filter(ibis.and_(*[t[c].notnull() for c in cols]))
        dup_keys = present.group_by(cols).aggregate(__k=present.count()).filter(lambda g: g.__k > 1)
        n_dup = int(dup_keys.aggregate(n=dup_keys.__k.sum()).to_pyarrow().to_pylist()[0]["n"] or 0)
        if n_dup:
            numbered = ds.example_table(table)
            joined = numbered.filter(ibis.and_(*[numbered[c].notnull() for c in cols])).semi_join(
                dup_keys, cols
            )
            examples = _examples(joined, ibis.literal(True), cols, src.line_offset)
            issues.append(
                Issue(
                    "error",
                    table,
                    src.path.name,
                    ", ".join(cols),
                    "unique key",
                    "duplicate key",
                    n_dup,
                    examples,
                    src.line_label,
                )
            )
    return issues


def _foreign_key_issues(ds: Dataset, table: str) -> list[Issue]:
    t = ds.checked_table(table)
    if "account_id" not in t.columns or table == "accounts" or not ds.has("accounts"):
        return []
    if "accounts" in ds.derived and table == "transactions":
        return []
    accounts = ds.table("accounts").select("account_id").distinct()
    orphans = t.filter(t.account_id.notnull()).anti_join(accounts, "account_id")
    n = int(orphans.count().to_pyarrow().as_py())
    if not n:
        return []
    src = ds.sources[table]
    numbered = ds.example_table(table)
    orphans = numbered.filter(numbered.account_id.notnull()).anti_join(accounts, "account_id")
    examples = _examples(orphans, ibis.literal(True), _context_columns(table, t), src.line_offset)
    where = "accounts derived from the transactions" if "accounts" in ds.derived else "accounts"
    return [
        Issue(
            "error",
            table,
            src.path.name,
            "account_id",
            "account_id exists in accounts",
            f"unknown account (not in {where})",
            n,
            examples,
            src.line_label,
        )
    ]


def _reports_to_issues(ds: Dataset) -> list[Issue]:
    if not ds.has("stakeholders"):
        return []
    t = ds.example_table("stakeholders")
    if "reports_to" not in t.columns:
        return []
    known = t.select(reports_to=t.contact_id)
    bad = t.filter(t.reports_to.notnull()).anti_join(known, "reports_to")
    n = int(bad.count().to_pyarrow().as_py())
    if not n:
        return []
    src = ds.sources["stakeholders"]
    return [
        Issue(
            "warning",
            "stakeholders",
            src.path.name,
            "reports_to",
            "reports_to names a contact_id",
            "manager not found among the contacts (org chart will show the person at the top)",
            n,
            _examples(
                bad, ibis.literal(True), ("reports_to", "contact_id", "account_id"), src.line_offset
            ),
            src.line_label,
        )
    ]


def _owner_issues(ds: Dataset) -> list[Issue]:
    """Objective owners who are not in the account's team (needs both tables)."""
    if not ds.has("account_objectives") or not ds.has("account_team"):
        return []
    t = ds.example_table("account_objectives")
    team = ds.table("account_team")
    if "owner" not in t.columns or "member" not in team.columns:
        return []
    members = team.select(account_id=team.account_id, owner=team.member).distinct()
    bad = t.filter(t.owner.notnull()).anti_join(members, ["account_id", "owner"])
    n = int(bad.count().to_pyarrow().as_py())
    if not n:
        return []
    src = ds.sources["account_objectives"]
    return [
        Issue(
            "error",
            "account_objectives",
            src.path.name,
            "owner",
            "owner in the account's team",
            "owner is not a member of the account's team in account_team",
            n,
            _examples(
                bad, ibis.literal(True), ("owner", "account_id", "objective_id"), src.line_offset
            ),
            src.line_label,
        )
    ]


def _sponsor_issues(ds: Dataset, as_of: dt.date) -> list[Issue]:
    """Accounts with more than one active executive sponsor on our side (a warning)."""
    if not ds.has("account_team"):
        return []
    t = ds.example_table("account_team")
    if "role" not in t.columns or "member" not in t.columns:
        return []
    day = ibis.timestamp(dt.datetime.combine(as_of, dt.time()))
    active = t.role == "executive_sponsor"
    if "until" in t.columns:
        active &= t.until.isnull() | (t.until >= day)
    if "since" in t.columns:
        active &= t.since.isnull() | (t.since <= day)
    sponsors = t.filter(active)
    many = (
        sponsors.group_by("account_id")
        .aggregate(__n=sponsors.member.nunique())
        .filter(lambda g: g.__n > 1)
    )
    bad = sponsors.semi_join(many, "account_id")
    n = int(bad.count().to_pyarrow().as_py())
    if not n:
        return []
    src = ds.sources["account_team"]
    return [
        Issue(
            "warning",
            "account_team",
            src.path.name,
            "role",
            "at most one active executive_sponsor per account",
            f"more than one active executive sponsor on {as_of} (who escalates?)",
            n,
            _examples(bad, ibis.literal(True), ("role", "account_id", "member"), src.line_offset),
            src.line_label,
        )
    ]


def _currency_issues(ds: Dataset, report: ValidationReport) -> list[Issue]:
    base = ds.config.data.base_currency
    seen: set[str] = set()
    issues = []
    for table in ("transactions", "contracts"):
        if not ds.has(table) or "currency" not in ds.checked_table(table).columns:
            continue
        t = ds.checked_table(table)
        values = t.filter(t.currency.notnull()).currency.value_counts().to_pyarrow().to_pylist()
        found = {r["currency"]: r["currency_count"] for r in values}
        seen.update(found)
        foreign = sorted(set(found) - {base})
        if not foreign:
            continue
        if ds.has("fx_rates"):
            rates = {
                r["currency"]
                for r in ds.table("fx_rates").select("currency").to_pyarrow().to_pylist()
            }
            foreign = [c for c in foreign if c not in rates]
            rule, msg = "currency in fx_rates", "currency without a rate in fx_rates"
        else:
            rule = "one currency or an fx_rates table"
            msg = f"amounts in {', '.join(foreign)} besides base currency {base}, and no fx_rates table"
        if foreign:
            src = ds.sources[table]
            numbered = ds.example_table(table)
            examples = _examples(
                numbered,
                numbered.currency.isin(foreign),
                ("currency", *_context_columns(table, t)),
                src.line_offset,
            )
            issues.append(
                Issue(
                    "error",
                    table,
                    src.path.name,
                    "currency",
                    rule,
                    msg,
                    sum(found[c] for c in foreign),
                    examples,
                    src.line_label,
                )
            )
    report.summary["currencies"] = sorted(seen) or [base]
    return issues


def line_summary(ds: Dataset) -> dict:
    """Credit notes and lines without an account, counted on every transaction line.

    Returns
    -------
    dict
        ``credit_notes``: lines with negative revenue, their amount and its
        share of gross (positive) revenue; ``unattributed``: lines without an
        account_id, their share of lines and of gross revenue. Empty when
        the transactions lack the columns.
    """
    t = ds.all_lines
    if t is None or "revenue" not in t.columns or "account_id" not in t.columns:
        return {}
    positive = t.revenue.sum(where=t.revenue > 0)
    no_account = t.account_id.isnull()
    row = (
        t.aggregate(
            n=t.count(),
            gross=positive,
            neg_lines=t.count(where=t.revenue < 0),
            neg_amount=t.revenue.sum(where=t.revenue < 0),
            un_lines=t.count(where=no_account),
            un_revenue=t.revenue.sum(where=no_account & (t.revenue > 0)),
            un_net=t.revenue.sum(where=no_account),
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    gross = float(row["gross"] or 0.0)
    n = int(row["n"] or 0)

    def share(x) -> float:
        return float(x or 0.0) / gross if gross else 0.0

    return {
        "credit_notes": {
            "lines": int(row["neg_lines"] or 0),
            "amount": float(row["neg_amount"] or 0.0),
            "share": -share(row["neg_amount"]),
        },
        "unattributed": {
            "lines": int(row["un_lines"] or 0),
            "line_share": int(row["un_lines"] or 0) / n if n else 0.0,
            "revenue": float(row["un_net"] or 0.0),
            "revenue_share": share(row["un_revenue"]),
            "action": ds.config.data.unattributed,
        },
    }


def _as_of_issue(ds: Dataset, as_of: dt.date, last: dt.date | None) -> Issue | None:
    if last is None or (as_of - last).days <= AS_OF_GAP_DAYS:
        return None
    src = ds.sources["transactions"]
    return Issue(
        "warning",
        "transactions",
        src.path.name,
        "date",
        f"as-of date within {AS_OF_GAP_DAYS} days of the data",
        f"the as-of date {as_of} is {(as_of - last).days:,} days after the last transaction "
        f"({last}): trailing windows hold little or no data, so revenue, activity and churn "
        "figures describe an empty recent past",
    )


def validate_dataset(
    folder: str | Path,
    *,
    as_of: dt.date | str | None = None,
    config: ReadConfig | None = None,
    cache_dir: Path | None = None,
) -> ValidationReport:
    """Check a dataset folder against the contract.

    Parameters
    ----------
    folder : str or Path
        The dataset folder.
    as_of : date or str, optional
        Analysis date; dates after it are errors (contract end dates and
        expected close dates excepted). Default: the last transaction date.
    config : KamConfig, optional
        Reading settings and column map.
    cache_dir : Path, optional
        See :func:`kam_analysis.data.open_dataset`.

    Returns
    -------
    ValidationReport
        ``ok`` is False when any error-level rule is broken. Every issue
        names the file, column, rule, number of failing rows and up to five
        example rows with their line (CSV) or row (Parquet, Excel) number.
    """
    try:
        ds = open_dataset(folder, config=config, cache_dir=cache_dir)
    except DatasetError as err:
        err.report.as_of = as_date(as_of) if as_of is not None else dt.date.today()
        return err.report
    if as_of is None:
        as_of = ds.last_transaction_date() or dt.date.today()
    return validate_open_dataset(ds, as_date(as_of))


def _table_summary(ds: Dataset, table: str, n_rows: int) -> dict:
    src = ds.sources[table]
    info = {
        "file": src.path.name,
        "rows": n_rows,
        "encoding": src.encoding,
        "ignored_columns": ds.ignored_columns.get(table, []),
    }
    if src.format == "csv":
        info["delimiter"] = src.detected_delimiter
        info["header"] = src.header
    if src.format == DERIVED:
        info["derived"] = f"derived from {src.path.name}: one row per account_id"
        carried = [c for c in ds.columns.get(table, {}) if c != "account_id"]
        if carried:
            info["derived"] += ", with " + ", ".join(
                f"{c} from {ds.columns[table][c].removeprefix('transactions.')}" for c in carried
            )
    return info


def validate_open_dataset(ds: Dataset, as_of: dt.date) -> ValidationReport:
    """Validate an already opened :class:`Dataset` (see :func:`validate_dataset`)."""
    report = ValidationReport(folder=ds.label, as_of=as_of)
    source_path = getattr(ds.config, "source_path", None)
    report.summary["config"] = str(source_path) if source_path else None
    tables_summary = {}
    for table in TABLE_MODELS:
        if table not in ds.sources or ds.missing_columns.get(table):
            continue
        t = ds.checked_table(table)
        src = ds.sources[table]
        if src.format == DERIVED:
            n_rows = int(t.count().to_pyarrow().as_py())
            tables_summary[table] = _table_summary(ds, table, n_rows)
            continue
        rules = _column_rules(ds, table, as_of)
        try:
            n_rows, counts = _count_failures(t, rules)
        except Exception as err:
            report.issues.append(
                Issue(
                    "error",
                    table,
                    src.path.name,
                    None,
                    "readable table",
                    "cannot read the file as a table: " + " ".join(str(err).split())[:300],
                )
            )
            continue
        tables_summary[table] = _table_summary(ds, table, n_rows)
        if n_rows == 0 and table in REQUIRED_TABLES:
            report.issues.append(
                Issue(
                    "error",
                    table,
                    src.path.name,
                    None,
                    "has rows",
                    "table has a header but no rows",
                )
            )
            continue
        if any(counts) and table in ds.numbered:  # examples come with their line numbers
            numbered = ds.example_table(table)
            shown = _column_rules(ds, table, as_of, numbered)
        else:
            numbered, shown = t, rules
        for rule, shown_rule, n in zip(rules, shown, counts, strict=True):
            if n:
                examples = _examples(numbered, shown_rule.predicate, rule.show, src.line_offset)
                report.issues.append(_issue_for(ds, rule, n, examples))
        report.issues.extend(_key_issues(ds, table))
        report.issues.extend(_foreign_key_issues(ds, table))
    report.issues.extend(_reports_to_issues(ds))
    report.issues.extend(_owner_issues(ds))
    report.issues.extend(_sponsor_issues(ds, as_of))
    report.issues.extend(_currency_issues(ds, report))
    report.summary["tables"] = tables_summary
    report.summary["missing_optional"] = [
        t for t in CANONICAL_TABLES if t not in ds.sources and t not in REQUIRED_TABLES
    ]
    if ds.has("transactions") and tables_summary.get("transactions", {}).get("rows"):
        report.summary.update(line_summary(ds))
        unattributed = report.summary.get("unattributed", {})
        if unattributed.get("lines") and ds.config.data.unattributed == "drop":
            info = tables_summary["transactions"]  # rows counted the lines with an account
            info["rows_used"] = info["rows"]
            info["rows"] += unattributed["lines"]
        tx = ds.table("transactions")
        row = tx.aggregate(first=tx.date.min(), last=tx.date.max()).to_pyarrow().to_pylist()[0]
        if row["first"] is not None:
            report.summary["transaction_dates"] = [
                row["first"].date().isoformat(),
                row["last"].date().isoformat(),
            ]
            gap = _as_of_issue(ds, as_of, row["last"].date())
            if gap is not None:
                report.issues.append(gap)
    if ds.has("accounts"):
        report.summary["accounts"] = tables_summary.get("accounts", {}).get("rows", 0)
    return report


def as_date(value: dt.date | str) -> dt.date:
    """Parse an as-of date given as ``2026-03-31``, ``2026/03/31`` or a date object.

    Raises
    ------
    ValueError
        For text that is not a date, or a year outside 1900-2199.
    """
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    else:
        try:
            day = dt.date.fromisoformat(str(value).strip().replace("/", "-"))
        except ValueError:
            raise ValueError(f"as-of date {value!r} is not a date like 2026-03-31") from None
    if not 1900 <= day.year <= 2199:
        raise ValueError(f"as-of date {value!r} is outside the years 1900-2199")
    return day

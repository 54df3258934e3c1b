"""The demo book exported the way an ERP writes invoice lines (``kam synth --messy``).

:func:`generate_messy_export` writes the same book as
:func:`kam_analysis.synthetic.generate_dataset` the way an ERP exports
invoice lines (``invoice_lines.csv``: quantity and unit price but no amount,
credit notes, cash sales without a customer, US dates, cp1252, no accounts
file, no cost) next to the ``kam.toml`` that reads it. Every account's net
revenue stays that of the clean demo, so the planted truths still hold; the
``messy_export`` section of ``ground_truth.json`` lists what was changed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from kam_analysis.synthetic.demo import (
    _MESSY_MARKER,
    _REGION_SHARES,
    _UNIT_PRICE,
    MESSY_EXPORT_FILE,
    PRODUCT_LINES,
    REGIONS,
    SyntheticSettings,
    _check_args_and_calendar,
    _cumcount_unsorted,
    _existing_dataset_files,
    _padded,
    _seq_within,
    generate_dataset,
)

__all__ = [
    "MESSY_EXPORT_COLUMNS",
    "MESSY_EXPORT_DATE_FORMAT",
    "MESSY_EXPORT_ENCODING",
    "MESSY_EXPORT_FILE",
    "MessyExportSettings",
    "generate_messy_export",
    "messy_export_config",
]

MESSY_EXPORT_COLUMNS = (
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "Customer ID",
    "Customer Name",
    "Country",
    "Category",
)
"""Columns of :data:`MESSY_EXPORT_FILE`, in file order."""
MESSY_EXPORT_ENCODING = "cp1252"
MESSY_EXPORT_DATE_FORMAT = "%m/%d/%Y %H:%M"

_MESSY_STREAM = 0x6D657373  # second entropy word of the export's own random stream
_FIRST_INVOICE_NO = 500_001
_ADJUSTMENT_CODE, _ADJUSTMENT_TEXT = "ADJ", "Price adjustment"
_OVERSEAS_CITIES = (
    "Zürich", "Genève", "Köln", "München", "Málaga", "Malmö", "Besançon", "Düsseldorf",
)  # fmt: skip
# Stock items per product line (PRODUCT_LINES order): cp1252 text with the non-ASCII
# characters real European exports carry (– é ü € £ ’); two descriptions keep the
# trailing space of the item master.
_CATALOGUE = (
    ("Core Platform licence – Standard", "Core Platform licence – Enterprise",
     "Core Platform user pack (10 users)", "Core Platform sandbox environment",
     "Core Platform renewal, annual"),
    ("Analytics dashboard pack", "Analytics Café reporting add-on", "Analytics seat, named user",
     "Predictive models module", "Data export connector"),
    ("Security audit – annual", "Endpoint protection, 25 devices", "Identity & access module",
     "Security operations retainer", "Penetration test (external)"),
    ("Integration connector – Müller ERP", "API gateway licence", "EDI mapping service",
     "Integration runtime node", "Workflow automation pack"),
    ("Cloud Storage 1 TB, monthly", "Cloud Storage 10 TB, monthly", "Backup vault – 500 GB",
     "Archive tier 5 TB", "Geo-redundant replica (€ billed)"),
    ("IoT temperature sensor", "IoT vibration sensor", "IoT gateway unit", "Sensor battery pack",
     "IoT sensor calibration kit"),
    ("Managed service – monthly fee", "24/7 monitoring", "Patch management service",
     "Service desk, 50-ticket bundle", "Site reliability retainer"),
    ("Consulting day – senior", "Consulting day – standard", "Solution design workshop",
     "Strategy review (on site)", "Rollout project milestone"),
    ("Training day, on site", "E-learning licence", "Partner’s certification course",
     "Training voucher (£ priced)", "Admin training – half day"),
    ("Support Plus – annual", "Premium support uplift", "Dedicated support engineer",
     "Support Plus renewal ", "Health check visit "),
)  # fmt: skip


class MessyExportSettings(BaseModel):
    """How far the messy export departs from the clean demo (recorded in ``ground_truth.json``).

    Shares are of orders, lines or accounts as named; every departure keeps the
    per-account (and per account x product line) net revenue of the clean demo.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    unattributed_share: float = Field(
        0.20, ge=0, lt=1, description="Share of all lines that are cash sales without a customer."
    )
    returned_order_share: float = Field(
        0.018, ge=0, le=1, description="Share of orders with a partial return (credit note)."
    )
    cancelled_order_share: float = Field(
        0.011,
        ge=0,
        le=1,
        description="Share of orders first invoiced wrongly, cancelled in full and re-invoiced.",
    )
    price_adjustment_share: float = Field(
        0.002, ge=0, le=1, description="Share of lines over-invoiced and later price-adjusted."
    )
    late_credit_share: float = Field(
        0.5, ge=0, le=1, description="Share of returns booked 1-8 weeks after the order."
    )
    thousands_separator_share: float = Field(
        0.002, ge=0, le=1, description="Share of unit prices >= 1,000 written as '1,234.50'."
    )
    padded_text_share: float = Field(
        0.01, ge=0, le=1, description="Share of lines with spaces around a text field."
    )
    padded_name_account_share: float = Field(
        0.03, ge=0, le=1, description="Share of accounts whose name has a trailing space."
    )
    upper_case_name_share: float = Field(
        0.005, ge=0, le=1, description="Share of lines with the customer name in upper case."
    )


def generate_messy_export(
    out: str | Path,
    *,
    n_accounts: int = 2000,
    seed: int = 0,
    start: str = "2022-04-01",
    end: str = "2026-03-31",
    fiscal_year_start_month: int = 4,
    lines_per_account_month: float | None = None,
    overwrite: bool = False,
    settings: SyntheticSettings | None = None,
    messy: MessyExportSettings | None = None,
) -> dict:
    """Write the demo the way an ERP exports invoice lines, with the kam.toml that reads it.

    The clean demo of :func:`generate_dataset` with the same arguments is built
    first (same accounts, transactions and planted truths); its transactions
    are then written as one invoice-line file :data:`MESSY_EXPORT_FILE`
    (columns :data:`MESSY_EXPORT_COLUMNS`, cp1252, CRLF, dates
    ``12/1/2024 8:26``, no amount column: revenue = ``Quantity x UnitPrice``):

    * one invoice number per order (``500001`` upwards in date order), unit
      prices rounded to cents, quantities whole;
    * credit notes on ``C`` + the invoice number with negative quantities:
      partial returns (same day or 1-8 weeks later), orders invoiced wrongly,
      cancelled in full and re-invoiced, and price adjustments (``ADJ``,
      quantity -1) of over-invoiced lines;
    * cash sales without a customer (blank ``Customer ID``) on their own
      invoices, about 20 % of the lines;
    * Excel-style defects: spaces around some text values, a thousands
      separator in a few unit prices (``"1,234.50"``, quoted), upper-case
      variants of some customer names, non-ASCII characters (é ü £ € – ’).

    No accounts file, no cost and no other table is written. Per account (and
    per account x product line) the net of ``Quantity x UnitPrice`` equals the
    clean demo's revenue within the rounding of unit prices to cents (at most
    0.005 x quantity per line). ``ground_truth.json`` (with a ``messy_export``
    section saying what the export changed and counting it) and
    ``ground_truth_accounts.parquet`` are written as for the clean demo, and
    ``kam.toml`` holds the settings that read the file.

    The whole export is built in memory: for the default 2,000-account book
    (about 630k lines, a 74 MB file) the process peaks near 0.75 GB and takes
    about twice as long as the clean demo. It is not meant for the
    100k-account benchmark books.

    Parameters
    ----------
    out : str or Path
        Output folder (created).
    n_accounts, seed, start, end, fiscal_year_start_month, lines_per_account_month, settings
        As for :func:`generate_dataset`; the same values give the same
        underlying accounts, transactions and truths.
    overwrite : bool
        Replace dataset files and a ``kam.toml`` already in ``out``.
    messy : MessyExportSettings, optional
        How messy the export is (defaults documented on the model).

    Returns
    -------
    dict
        ``{"out", "rows": {"invoice_lines", "credit_note_lines",
        "unattributed_lines"}, "as_of", "seed", "n_accounts", "seconds"}``.

    Raises
    ------
    ValueError
        On bad arguments (named in the message).
    FileExistsError
        When ``out`` already holds dataset files or a ``kam.toml`` and
        ``overwrite`` is false.
    """
    started = time.perf_counter()
    m = messy or MessyExportSettings()
    _check_args_and_calendar(
        n_accounts,
        start,
        end,
        fiscal_year_start_month,
        1,
        lines_per_account_month,
        settings or SyntheticSettings(),
    )
    out = Path(out)
    existing = _existing_dataset_files(out, any_config=True)
    if existing and not overwrite:
        raise FileExistsError(
            f"{out} already holds dataset files ({', '.join(existing[:4])}"
            f"{', ...' if len(existing) > 4 else ''}); pass overwrite=True (kam synth --force) "
            "to replace them"
        )
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".synth-messy-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        clean, export = tmp / "clean", tmp / "export"
        info = generate_dataset(
            clean,
            n_accounts=n_accounts,
            seed=seed,
            start=start,
            end=end,
            fiscal_year_start_month=fiscal_year_start_month,
            lines_per_account_month=lines_per_account_month,
            settings=settings,
        )
        export.mkdir()
        rows = _write_messy_export(clean, export, seed, fiscal_year_start_month, m)
        for name in existing:
            (out / name).unlink()
        for f in sorted(export.iterdir()):
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "out": str(out),
        "rows": rows,
        "as_of": info["as_of"],
        "seed": seed,
        "n_accounts": n_accounts,
        "seconds": round(time.perf_counter() - started, 3),
    }


def messy_export_config(fiscal_year_start_month: int = 4, currency: str = "JPY") -> str:
    """The ``kam.toml`` text that reads :data:`MESSY_EXPORT_FILE`.

    Parameters
    ----------
    fiscal_year_start_month : int
        First month of the fiscal year of the demo.
    currency : str
        Currency of the amounts (the demo's ``JPY``).

    Returns
    -------
    str
        TOML text; its first line marks it as written by the generator.
    """
    return f"""{_MESSY_MARKER}: reads {MESSY_EXPORT_FILE}, the demo
# exported the way an ERP exports invoice lines (see ground_truth.json, "messy_export").

[data]
base_currency = "{currency}"
fiscal_year_start_month = {fiscal_year_start_month}
encoding = "{MESSY_EXPORT_ENCODING}"
date_format = "{MESSY_EXPORT_DATE_FORMAT}"
credit_notes = "net"
unattributed = "drop"

[data.files]
transactions = "{MESSY_EXPORT_FILE}"

[columns.transactions]
account_id = "Customer ID"
date = "InvoiceDate"
revenue = "= Quantity * UnitPrice"
quantity = "Quantity"
order_id = "InvoiceNo"
product_line = "Category"

[columns.accounts]          # no accounts file: carried over from the transactions
name = "Customer Name"
region = "Country"
"""


@dataclass(frozen=True)
class _ExportLines:
    """Invoice lines before formatting (aligned arrays, one entry per line).

    ``invoice`` holds an invoice *key* (orders first, then wrongly invoiced
    duplicates, then cash sales) until :func:`_number_invoices` replaces it
    with the invoice number.
    """

    invoice: np.ndarray  # invoice key or number (int64)
    credit: np.ndarray  # bool: credit note, InvoiceNo "C" + number
    minute: np.ndarray  # minutes since 1970-01-01 00:00
    account: np.ndarray  # index into the accounts table, -1 for a cash sale
    region: np.ndarray  # index into REGIONS for a cash sale, -1 (the account's) otherwise
    product: np.ndarray  # index into PRODUCT_LINES
    stock: np.ndarray  # index into the catalogue, -1 for a price adjustment
    quantity: np.ndarray  # int64, negative on credit notes
    cents: np.ndarray  # unit price in cents (int64, positive)
    seq: np.ndarray  # line position inside the invoice

    def __len__(self) -> int:
        return len(self.invoice)

    def take(self, idx: np.ndarray) -> _ExportLines:
        return _ExportLines(**{f: getattr(self, f)[idx] for f in _EXPORT_FIELDS})

    def replace(self, **changes: np.ndarray) -> _ExportLines:
        return _ExportLines(**{f: changes.get(f, getattr(self, f)) for f in _EXPORT_FIELDS})

    @staticmethod
    def concat(parts: list[_ExportLines]) -> _ExportLines:
        return _ExportLines(
            **{f: np.concatenate([getattr(p, f) for p in parts]) for f in _EXPORT_FIELDS}
        )


_EXPORT_FIELDS = tuple(_ExportLines.__dataclass_fields__)
_CATALOGUE_OFFSET = np.cumsum([0] + [len(items) for items in _CATALOGUE])


def _catalogue() -> tuple[list[str], list[str]]:
    """Stock codes and descriptions of the catalogue, flattened in PRODUCT_LINES order."""
    codes, texts = [], []
    for i, items in enumerate(_CATALOGUE):
        for j, text in enumerate(items):
            codes.append(f"{21 + i}{j + 1:02d}{(3 * i + 7 * j) % 10}" + "AB"[j % 2] * (i % 3 == 0))
            texts.append(text)
    return codes, texts


def _draw_stock(rng: np.random.Generator, product: np.ndarray) -> np.ndarray:
    n_items = np.diff(_CATALOGUE_OFFSET)[product]
    return _CATALOGUE_OFFSET[product] + np.floor(rng.random(len(product)) * n_items).astype(
        np.int64
    )


def _days(timestamps: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """timestamp[us] -> int days since 1970-01-01 (nulls as -1)."""
    us = pc.fill_null(pc.cast(timestamps, pa.int64()), -86_400_000_000)
    return np.asarray(us.to_numpy()) // 86_400_000_000


def _write_messy_export(
    clean: Path, folder: Path, seed: int, fy_start: int, m: MessyExportSettings
) -> dict[str, int]:
    """Turn the clean demo in ``clean`` into the messy export in ``folder``; row counts."""
    doc = json.loads((clean / "ground_truth.json").read_text(encoding="utf-8"))
    start_day = int(np.datetime64(doc["params"]["start"], "D").astype(np.int64))
    end_day = int(np.datetime64(doc["params"]["end"], "D").astype(np.int64))
    accounts = pq.read_table(clean / "accounts.parquet", columns=["account_id", "name", "region"])
    tx = pq.read_table(
        clean / "transactions.parquet",
        columns=["account_id", "date", "product_line", "revenue", "quantity", "order_id"],
    ).combine_chunks()
    truth = pq.read_table(
        clean / "ground_truth_accounts.parquet", columns=["account_id", "churn_date"]
    )
    churn_day = _days(
        pc.take(truth["churn_date"], pc.index_in(accounts["account_id"], truth["account_id"]))
    )
    last_day = np.where(churn_day < 0, end_day, churn_day - 1)  # last day an account can trade

    rng = np.random.default_rng(np.random.SeedSequence([seed, _MESSY_STREAM]))
    orders, order_minute = _order_lines(tx, accounts, rng)
    invoiced, credit_parts, counts = _credit_notes(orders, order_minute, last_day, rng, m)
    attributed = _ExportLines.concat([invoiced, *credit_parts])
    n_cash = round(len(attributed) * m.unattributed_share / (1 - m.unattributed_share))
    mix = np.bincount(orders.product, minlength=len(PRODUCT_LINES)) / max(len(orders), 1)
    first_cash_key = int(attributed.invoice.max()) + 1 if len(attributed) else 0
    cash = _cash_sales(rng, n_cash, first_cash_key, start_day, end_day, mix)
    export = _number_invoices(_ExportLines.concat([attributed, cash]))
    rows, format_counts = _format_export(export, accounts, rng, m)
    with open(folder / MESSY_EXPORT_FILE, "wb") as f:
        f.write((",".join(MESSY_EXPORT_COLUMNS) + "\r\n").encode(MESSY_EXPORT_ENCODING))
        f.write(_concatenated(rows))
    del rows
    (folder / "kam.toml").write_text(
        messy_export_config(fy_start, doc["params"]["currency"]), encoding="utf-8"
    )

    is_cash = export.account < 0
    counts = {
        "lines": len(export),
        "clean_transaction_lines": tx.num_rows,
        "orders": int(order_minute.size),
        **counts,
        "credit_note_lines": int(export.credit.sum()),
        "credit_note_invoices": len(np.unique(export.invoice[export.credit])),
        "unattributed_lines": int(is_cash.sum()),
        "unattributed_invoices": len(np.unique(export.invoice[is_cash])),
        **format_counts,
    }
    clean_revenue = float(pc.sum(tx["revenue"]).as_py() or 0.0)
    doc["messy_export"] = _messy_truth(export, counts, clean_revenue, m)
    (folder / "ground_truth.json").write_text(
        json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    shutil.copyfile(
        clean / "ground_truth_accounts.parquet", folder / "ground_truth_accounts.parquet"
    )
    return {
        "invoice_lines": counts["lines"],
        "credit_note_lines": counts["credit_note_lines"],
        "unattributed_lines": counts["unattributed_lines"],
    }


def _order_lines(
    tx: pa.Table, accounts: pa.Table, rng: np.random.Generator
) -> tuple[_ExportLines, np.ndarray]:
    """The clean transaction lines as invoice lines (key = order) and each order's minute."""
    n = tx.num_rows
    order = np.asarray(pc.dictionary_encode(tx["order_id"]).combine_chunks().indices).astype(
        np.int64
    )
    n_orders = int(order.max()) + 1 if n else 0
    first = np.zeros(n_orders, dtype=np.int64)
    first[order[::-1]] = np.arange(n)[::-1]  # first line of each order
    day = _days(tx["date"])
    order_minute = day[first] * 1440 + rng.integers(9 * 60, 18 * 60, n_orders)
    product = np.asarray(pc.index_in(tx["product_line"], pa.array(PRODUCT_LINES))).astype(np.int64)
    quantity = np.asarray(tx["quantity"].to_numpy()).astype(np.int64)
    revenue = np.asarray(tx["revenue"].to_numpy())
    lines = _ExportLines(
        invoice=order,
        credit=np.zeros(n, dtype=bool),
        minute=order_minute[order],
        account=np.asarray(pc.index_in(tx["account_id"], accounts["account_id"])).astype(np.int64),
        region=np.full(n, -1, dtype=np.int64),
        product=product,
        stock=_draw_stock(rng, product),
        quantity=quantity,
        cents=np.maximum(np.rint(revenue * 100 / quantity), 1).astype(np.int64),
        seq=_cumcount_unsorted(order),
    )
    return lines, order_minute


def _credit_notes(
    orders: _ExportLines,
    order_minute: np.ndarray,
    last_day: np.ndarray,
    rng: np.random.Generator,
    m: MessyExportSettings,
) -> tuple[_ExportLines, list[_ExportLines], dict[str, int]]:
    """Credit notes that leave every account's net revenue as in the clean demo.

    Returns the invoiced order lines (returned quantities added, adjusted lines
    over-priced), the extra lines (wrong invoices and every credit note) and
    their counts.
    """
    n_orders, n = len(order_minute), len(orders)
    key, q, cents = orders.invoice, orders.quantity, orders.cents
    order_day = order_minute // 1440
    order_account = np.zeros(n_orders, dtype=np.int64)
    order_account[key] = orders.account
    u = rng.random(n_orders)
    cancelled = u < m.cancelled_order_share
    returned = ~cancelled & (u < m.cancelled_order_share + m.returned_order_share)

    # Partial returns: first line always, others half the time; 1..q units back.
    ret = returned[key] & ((orders.seq == 0) | (rng.random(n) < 0.5))
    back = np.where(ret, 1 + np.floor(rng.random(n) * q).astype(np.int64), 0)
    late = rng.random(n_orders) < m.late_credit_share
    late_day = np.minimum(order_day + rng.integers(7, 57, n_orders), last_day[order_account])
    ret_minute = np.where(
        late,
        late_day * 1440 + rng.integers(9 * 60, 18 * 60, n_orders),
        order_minute + rng.integers(30, 301, n_orders),
    )
    ret_minute = np.maximum(ret_minute, order_minute + 1)

    # Price adjustments: the line was invoiced d cents too high per unit and credited later.
    adj = ~(returned | cancelled)[key] & (rng.random(n) < m.price_adjustment_share)
    over = np.where(adj, np.maximum(np.rint(cents * rng.uniform(0.03, 0.15, n)), 1), 0)
    over = over.astype(np.int64)
    adj_day = np.minimum(order_day + rng.integers(14, 91, n_orders), last_day[order_account])
    adj_minute = np.maximum(
        adj_day * 1440 + rng.integers(9 * 60, 18 * 60, n_orders), order_minute + 1
    )

    # Wrong invoices: invoiced first (sometimes with a wrong quantity), cancelled in full,
    # then the order is invoiced again as in the clean demo.
    wrong_key = np.full(n_orders, -1, dtype=np.int64)
    wrong_key[cancelled] = n_orders + np.arange(int(cancelled.sum()))
    lead = rng.integers(2, 91, n_orders)
    wrong_minute = order_minute - lead
    cancel_minute = wrong_minute + np.floor(rng.random(n_orders) * (lead - 1)).astype(np.int64) + 1
    wrong_q = q + np.where(rng.random(n) < 0.5, 1 + np.floor(rng.random(n) * q), 0).astype(np.int64)

    invoiced = orders.replace(quantity=q + back, cents=cents + over)
    ret_lines = orders.take(np.flatnonzero(ret))
    ret_lines = ret_lines.replace(
        credit=np.ones(len(ret_lines), dtype=bool),
        minute=ret_minute[ret_lines.invoice],
        quantity=-back[ret],
    )
    adj_lines = orders.take(np.flatnonzero(adj))
    adj_lines = adj_lines.replace(
        credit=np.ones(len(adj_lines), dtype=bool),
        minute=adj_minute[adj_lines.invoice],
        stock=np.full(len(adj_lines), -1, dtype=np.int64),
        quantity=np.full(len(adj_lines), -1, dtype=np.int64),
        cents=q[adj] * over[adj],
    )
    in_wrong = np.flatnonzero(cancelled[key])
    wrong = orders.take(in_wrong)
    wrong = wrong.replace(
        invoice=wrong_key[wrong.invoice],
        minute=wrong_minute[wrong.invoice],
        quantity=wrong_q[in_wrong],
    )
    cancel = wrong.replace(
        credit=np.ones(len(wrong), dtype=bool),
        minute=cancel_minute[orders.invoice[in_wrong]],
        quantity=-wrong.quantity,
    )
    counts = {
        "returned_orders": int(returned.sum()),
        "returned_orders_late": int((returned & late).sum()),
        "return_lines": len(ret_lines),
        "wrong_invoices_cancelled": int(cancelled.sum()),
        "wrong_invoice_lines": len(wrong),
        "cancellation_lines": len(cancel),
        "price_adjustment_lines": len(adj_lines),
    }
    return invoiced, [wrong, cancel, ret_lines, adj_lines], counts


def _cash_sales(
    rng: np.random.Generator,
    n_lines: int,
    first_key: int,
    start_day: int,
    end_day: int,
    product_mix: np.ndarray,
) -> _ExportLines:
    """``n_lines`` cash-sale lines (no customer) on invoices of 1-5 lines over the window."""
    per_invoice = 1 + rng.poisson(1.0, n_lines // 2 + 16)
    per_invoice = np.minimum(per_invoice, 5)
    cum = np.cumsum(per_invoice)
    if len(cum) == 0 or cum[-1] < n_lines:  # rare: pad with one-line invoices
        extra = n_lines - (int(cum[-1]) if len(cum) else 0)
        per_invoice = np.r_[per_invoice, np.ones(extra, dtype=per_invoice.dtype)]
        cum = np.cumsum(per_invoice)
    n_inv = int(np.searchsorted(cum, n_lines)) + 1 if n_lines else 0
    per_invoice = per_invoice[:n_inv].copy()
    if n_inv:
        per_invoice[-1] -= int(cum[n_inv - 1]) - n_lines
    inv = np.repeat(np.arange(n_inv), per_invoice)
    minute = rng.integers(start_day, end_day + 1, n_inv) * 1440 + rng.integers(
        9 * 60, 19 * 60, n_inv
    )
    domestic = np.array([r != "Overseas" for r in REGIONS], dtype=float) * _REGION_SHARES
    region = rng.choice(len(REGIONS), size=n_inv, p=domestic / domestic.sum())
    mix = product_mix if product_mix.sum() > 0 else np.full(len(PRODUCT_LINES), 0.1)
    product = rng.choice(len(PRODUCT_LINES), size=n_lines, p=mix / mix.sum())
    unit = _UNIT_PRICE[product] * np.exp(rng.normal(0, 0.3, n_lines))
    return _ExportLines(
        invoice=first_key + inv,
        credit=np.zeros(n_lines, dtype=bool),
        minute=minute[inv],
        account=np.full(n_lines, -1, dtype=np.int64),
        region=region[inv],
        product=product,
        stock=_draw_stock(rng, product),
        quantity=1 + rng.poisson(1.5, n_lines),
        cents=np.maximum(np.rint(unit * 100), 1).astype(np.int64),
        seq=_seq_within(inv),
    )


def _number_invoices(lines: _ExportLines) -> _ExportLines:
    """Invoice numbers from 500001 in order of invoicing time; lines sorted as exported."""
    key = lines.invoice
    n_keys = int(key.max()) + 1 if len(key) else 0
    invoiced_at = np.zeros(n_keys, dtype=np.int64)
    debit = ~lines.credit
    invoiced_at[key[debit]] = lines.minute[debit]  # one time per invoice
    rank = np.empty(n_keys, dtype=np.int64)
    rank[np.lexsort((np.arange(n_keys), invoiced_at))] = np.arange(n_keys)
    numbered = lines.replace(invoice=_FIRST_INVOICE_NO + rank[key])
    order = np.lexsort((numbered.seq, numbered.credit, numbered.invoice, numbered.minute))
    return numbered.take(order)


def _format_export(
    lines: _ExportLines, accounts: pa.Table, rng: np.random.Generator, m: MessyExportSettings
) -> tuple[pa.Array, dict[str, int]]:
    """The export's rows as cp1252 CSV lines ending in CRLF, and the counts of text defects.

    Text values come from small dictionaries (catalogue, account names,
    regions) encoded and quoted once, then taken per line, so the file is
    assembled in Arrow without a Python loop over lines.
    """
    n = len(lines)
    has_account = lines.account >= 0
    codes, texts = _catalogue()
    stock = np.where(lines.stock < 0, len(codes), lines.stock)
    n_stock = len(codes) + 1

    pad_description = rng.random(n) < m.padded_text_share
    descriptions = [*texts, _ADJUSTMENT_TEXT]
    description = _encoded([*descriptions, *(f" {t}  " for t in descriptions)]).take(
        pa.array(stock + n_stock * pad_description)
    )

    n_acc = accounts.num_rows
    upper = (rng.random(n) < m.upper_case_name_share) & has_account
    names = _export_account_names(accounts, rng, m)
    name_index = np.where(has_account, lines.account + n_acc * upper, 2 * n_acc)
    name = _encoded([*names, *(x.upper() for x in names), ""]).take(pa.array(name_index))
    customer = _encoded([*accounts["account_id"].to_pylist(), ""]).take(
        pa.array(np.where(has_account, lines.account, n_acc))
    )

    account_region = np.asarray(pc.index_in(accounts["region"], pa.array(REGIONS)))
    region = np.where(has_account, account_region[np.maximum(lines.account, 0)], lines.region)
    pad_country = rng.random(n) < m.padded_text_share / 2
    country = _encoded([*REGIONS, *(f"{r} " for r in REGIONS)]).take(
        pa.array(region + len(REGIONS) * pad_country)
    )
    pad_category = rng.random(n) < m.padded_text_share / 2
    category = _encoded([*PRODUCT_LINES, *(f"{p} " for p in PRODUCT_LINES)], "\r\n").take(
        pa.array(lines.product + len(PRODUCT_LINES) * pad_category)
    )  # the last column: its values end the line

    invoice = pc.cast(pa.array(lines.invoice), pa.string())
    invoice = pc.if_else(
        pa.array(lines.credit), pc.binary_join_element_wise("C", invoice, ""), invoice
    )
    price, n_thousands = _format_prices(lines.cents, rng, m.thousands_separator_share)
    columns = [
        _as_binary(invoice),
        _encoded([*codes, _ADJUSTMENT_CODE]).take(pa.array(stock)),
        description,
        _as_binary(pc.cast(pa.array(lines.quantity), pa.string())),
        _as_binary(_format_us_datetimes(lines.minute)),
        _as_binary(price),
        customer,
        name,
        country,
        category,
    ]
    rows = pc.binary_join_element_wise(*columns, pa.scalar(b",", pa.large_binary()))
    return rows, {
        "thousands_separator_prices": n_thousands,
        "upper_case_name_lines": int(upper.sum()),
        "padded_description_lines": int(pad_description.sum()),
        "padded_country_lines": int(pad_country.sum()),
        "padded_category_lines": int(pad_category.sum()),
    }


def _csv_value(text: str) -> str:
    """Quote a value the way spreadsheets do: only when it holds a comma or a quote."""
    if "," in text or '"' in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def _encoded(values: list[str], end: str = "") -> pa.Array:
    """CSV-quoted, cp1252-encoded values (a small dictionary to ``take`` lines from)."""
    return pa.array(
        [(_csv_value(v) + end).encode(MESSY_EXPORT_ENCODING) for v in values],
        type=pa.large_binary(),
    )


def _as_binary(values: pa.Array) -> pa.Array:
    """ASCII text (numbers, dates, invoice numbers) as bytes, unchanged."""
    return pc.cast(pc.cast(values, pa.large_string()), pa.large_binary())


def _concatenated(rows: pa.Array) -> memoryview:
    """The values of a large-binary array back to back (a view of its data buffer)."""
    if len(rows) == 0:
        return memoryview(b"")
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64)
    lo, hi = offsets[rows.offset], offsets[rows.offset + len(rows)]
    return memoryview(rows.buffers()[2])[lo:hi]


def _export_account_names(
    accounts: pa.Table, rng: np.random.Generator, m: MessyExportSettings
) -> list[str]:
    """Account names as the ERP holds them: overseas branches with their (non-ASCII) city
    in brackets, a few with a trailing space in the customer master."""
    names = accounts["name"].to_pylist()
    regions = accounts["region"].to_pylist()
    padded = rng.random(len(names)) < m.padded_name_account_share
    out = []
    for i, (name, region) in enumerate(zip(names, regions, strict=True)):
        if region == "Overseas":
            name = f"{name} ({_OVERSEAS_CITIES[i % len(_OVERSEAS_CITIES)]})"
        out.append(name + " " if padded[i] else name)
    return out


def _format_prices(
    cents: np.ndarray, rng: np.random.Generator, thousands_share: float
) -> tuple[pa.Array, int]:
    """``1234.50`` strings; a share of the prices >= 1,000 written ``"1,234.50"`` (quoted)."""
    whole, frac = np.divmod(cents, 100)
    text = pc.binary_join_element_wise(pc.cast(pa.array(whole), pa.string()), _padded(frac, 2), ".")
    grouped = np.flatnonzero((whole >= 1000) & (rng.random(len(cents)) < thousands_share))
    if len(grouped) == 0:
        return text, 0
    values = text.to_numpy(zero_copy_only=False).astype(object)
    values[grouped] = [
        _csv_value(f"{w:,}.{f:02d}") for w, f in zip(whole[grouped], frac[grouped], strict=True)
    ]
    return pa.array(values, type=pa.string()), len(grouped)


def _format_us_datetimes(minute: np.ndarray) -> pa.Array:
    """Minutes since the epoch as ``12/1/2024 8:26`` (month, day and hour not padded).

    Dates and clock times are formatted once per distinct value and taken per line.
    """
    days, day_index = np.unique(minute // 1440, return_inverse=True)
    dates = days.astype("datetime64[D]").tolist()
    date_text = pa.array([f"{d.month}/{d.day}/{d.year} " for d in dates], type=pa.string())
    clock_text = pa.array([f"{t // 60}:{t % 60:02d}" for t in range(1440)], type=pa.string())
    return pc.binary_join_element_wise(
        date_text.take(pa.array(day_index.ravel())),
        clock_text.take(pa.array(minute % 1440)),
        "",
    )


def _messy_truth(
    export: _ExportLines, counts: dict[str, int], clean_revenue: float, m: MessyExportSettings
) -> dict:
    """The ``messy_export`` section of ground_truth.json."""
    amount = export.quantity * export.cents / 100.0
    cash = export.account < 0
    total = float(amount.sum())
    return {
        "file": MESSY_EXPORT_FILE,
        "config": "kam.toml",
        "format": {
            "encoding": MESSY_EXPORT_ENCODING,
            "delimiter": ",",
            "quoting": "only values holding a comma or a quote",
            "line_terminator": "CRLF",
            "date_format": MESSY_EXPORT_DATE_FORMAT,
            "columns": list(MESSY_EXPORT_COLUMNS),
        },
        "source": "the transactions of the clean demo built with the same arguments "
        "(kam synth without --messy); accounts, planted truths and "
        "ground_truth_accounts.parquet are unchanged",
        "invariants": [
            "revenue = Quantity x UnitPrice; there is no amount column",
            "per Customer ID (and per Customer ID x Category) the net revenue equals the clean "
            "demo's revenue within the rounding of UnitPrice to cents (at most 0.005 x Quantity "
            "per line)",
            "every clean order is one invoice; invoice numbers rise with the invoicing time from "
            f"{_FIRST_INVOICE_NO}",
            "no line of an account is dated after its churn date or after as_of",
            "Customer ID is the clean account_id (no '12345.0' forms) or blank",
        ],
        "changes": [
            "partial returns: for returned_orders, the invoice shows the kept quantity plus the "
            "returned units, and a credit note C<invoice> (same StockCode, UnitPrice, Category) "
            "returns them with a negative Quantity, a few hours later or 1-8 weeks later "
            "(never after the account's last trading day)",
            "wrong invoices: for wrong_invoices_cancelled orders, an extra invoice with the "
            "order's lines (half of them with a wrong quantity) is issued up to 90 minutes "
            "before the order's own invoice and cancelled in full by C<that invoice>; these "
            "invoices net to zero and are not orders of the clean demo",
            "price adjustments: price_adjustment_lines lines were invoiced 3-15 % too high; a "
            f"credit note line StockCode {_ADJUSTMENT_CODE!r}, Description "
            f"{_ADJUSTMENT_TEXT!r}, Quantity -1, UnitPrice = quantity x overcharge, dated 2-13 "
            "weeks later, corrects the amount (so summed quantities are lower by one per "
            "adjustment line)",
            "cash sales: unattributed_lines lines with a blank Customer ID and Customer Name, on "
            "their own invoices (never on an account's), products in the book's mix, domestic "
            "regions; they do not change any account's revenue",
            "late credit notes (returns, price adjustments) can be an account's last line: its "
            "last order is then earlier than its last line",
            "times of day: invoices get a time between 9:00 and 17:59 (cash sales until 18:59); "
            "the clean dates are kept",
            "Description and StockCode from a catalogue of five items per product line; "
            "Category is the clean product_line",
            "Customer Name: overseas accounts carry their branch city in brackets (non-ASCII, "
            "e.g. 'Zürich'); padded_name_account_share of the accounts have a trailing space in "
            "every line; upper_case_name_lines lines show the name in upper case (the most "
            "frequent value per account is the proper name)",
            "Country holds the clean region",
            "text defects: padded_description_lines descriptions with spaces around them, "
            "padded_country_lines and padded_category_lines values with a trailing space",
            "thousands_separator_prices unit prices of 1,000 or more are written like "
            '"1,234.50" (quoted)',
            "not exported: the accounts table (derived from Customer ID, Customer Name, "
            "Country), cost, currency and every other table",
        ],
        "settings": m.model_dump(mode="json"),
        "counts": counts,
        "amounts": {
            "clean_revenue": round(clean_revenue, 2),
            "net_revenue": round(total, 2),
            "attributed_net_revenue": round(float(amount[~cash].sum()), 2),
            "credit_note_amount": round(float(amount[export.credit].sum()), 2),
            "unattributed_revenue": round(float(amount[cash].sum()), 2),
            "unattributed_revenue_share": round(float(amount[cash].sum()) / total, 4)
            if total
            else 0.0,
        },
    }

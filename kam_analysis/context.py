"""What every analysis notebook starts from: dataset, as-of date, config, features.

A notebook calls :func:`load_context` once with its parameters and then
asks the context for what it needs; each piece is computed on first use
and kept, so a notebook never repeats the transaction-level work::

    ctx = load_context(data_dir, as_of=as_of, config_path=config_path, lang=lang)
    ctx.features          # one row per account (engine aggregation)
    ctx.scored            # valuation + attractiveness score + tier
    ctx.frame("surveys")  # an optional table as pandas, or None

Transaction lines stay in the engine: the context hands out engine
aggregates of them (``features``, ``monthly``, ``spend_12m``,
``monthly_lines``, ``account_lines(id)``), so that a report on a book with
tens of millions of lines never holds the line table in pandas.
``ctx.frame("transactions")`` still loads every line, for small data only.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from kam_analysis import objectives as objectives_mod
from kam_analysis.config import KamConfig, find_config, load_config, with_overrides
from kam_analysis.core.schemas import CANONICAL_TABLES, REQUIRED_TABLES
from kam_analysis.data import Dataset, as_date, open_dataset, rows_of_accounts
from kam_analysis.data.features import (
    HistoryCoverage,
    build_account_features,
    history_coverage,
    monthly_line_summary,
    monthly_revenue,
    product_line_revenue,
)
from kam_analysis.data.validation import AS_OF_GAP_DAYS
from kam_analysis.kpi import (
    EXECUTIVE_MEETING,
    HealthValidation,
    KpiSettings,
    assess_kpis,
    compute_kpis,
    validate_health,
)
from kam_analysis.ltv.analysis import (
    LtvAnalysis,
    LtvValues,
    ltv_analysis,
    spread_estimates,
    value_accounts,
)
from kam_analysis.scenarios import ScenarioSpreads, scenario_book, scenario_spreads
from kam_analysis.segmentation import (
    portfolio_matrix,
    position_inputs,
    score_and_tier,
    tier_rule,
    win_back_list,
)
from kam_analysis.state import (
    STATE_ENV,
    ForkedResult,
    RunState,
    compute_forked,
    derived_features_path,
    features_key,
    input_files,
    open_state,
    read_features,
    state_key,
    write_account_rows,
    write_state,
)
from kam_analysis.valuation import account_whitespace, criteria_used


def default_as_of(
    folder: str | Path, explicit: dt.date | str | None = None, dataset: Dataset | None = None
) -> dt.date:
    """The as-of date: the explicit one, else the dataset's recorded one, else its last line.

    A generated dataset records its as-of date in ``ground_truth.json``. For
    any other dataset the default is the date of the last transaction line
    (never today: an export analysed months later would otherwise show empty
    trailing windows). Today only when there is no transaction at all.

    Parameters
    ----------
    folder : str or Path
        The dataset folder.
    explicit : date or str, optional
        ``--as-of`` / the notebook parameter; wins when given.
    dataset : Dataset, optional
        The opened dataset, for its last transaction date.

    Returns
    -------
    datetime.date
    """
    if explicit not in (None, ""):
        return as_date(explicit)  # type: ignore[arg-type]
    truth = Path(folder) / "ground_truth.json"
    if truth.is_file():
        try:
            return dt.date.fromisoformat(json.loads(truth.read_text())["params"]["as_of"])
        except (KeyError, ValueError, TypeError):
            pass
    last = dataset.last_transaction_date() if dataset is not None else None
    return last or dt.date.today()


@dataclass
class AnalysisContext:
    """An opened dataset with its as-of date, configuration and derived tables."""

    dataset: Dataset
    as_of: dt.date
    config: KamConfig
    lang: str = "en"
    _frames: dict[str, pd.DataFrame | None] = field(default_factory=dict, repr=False)
    state: RunState | None = field(default=None, repr=False)
    """The run state this context reads (see :mod:`kam_analysis.state`), when one matched."""
    state_status: str = "none"
    """``"used"``, ``"stale"`` (a state for other inputs or settings: ignored), ``"missing"``
    or ``"none"`` (no run state offered: everything is computed on demand)."""
    _state_folder: Path | None = field(default=None, repr=False)
    features_source: str = "none"
    """Where :attr:`features` came from: ``"run_state"``, ``"kam_features"``, ``"computed"``
    (``"none"`` until it is read)."""

    @property
    def data_dir(self) -> Path:
        return self.dataset.folder

    def at(self, as_of: dt.date | str) -> AnalysisContext:
        """The same dataset, configuration and language at another as-of date.

        Parameters
        ----------
        as_of : date or str
            The other analysis date (``YYYY-MM-DD``).

        Returns
        -------
        AnalysisContext
            A fresh context (nothing computed yet).
        """
        return self._derived(self.config, as_date(as_of))

    def with_settings(self, **sections: Mapping[str, Any]) -> AnalysisContext:
        """The same dataset and date with some settings replaced (nothing computed yet).

        Notebooks use it for their parameters, e.g.
        ``ctx.with_settings(ltv={"horizon_years": 5})``; every result of the
        new context (``ltv``, ``scored``, ...) then uses those settings.

        Parameters
        ----------
        **sections : mapping
            Section of ``kam.toml`` -> {setting: value} (see
            :func:`kam_analysis.config.with_overrides`).

        Returns
        -------
        AnalysisContext

        Raises
        ------
        ConfigError
            For an unknown section or setting, or an invalid value.
        """
        return self._derived(with_overrides(self.config, **sections), self.as_of)

    def _derived(self, config: KamConfig, as_of: dt.date) -> AnalysisContext:
        """A fresh context on the same dataset; it reads the run state only if its key matches."""
        ctx = AnalysisContext(self.dataset, as_of, config, self.lang)
        if self._state_folder is not None:
            ctx.attach_state(self._state_folder)
        return ctx

    # ------------------------------------------------------------------ run state

    @cached_property
    def input_files(self) -> list[dict[str, Any]]:
        """:func:`kam_analysis.state.input_files` of the dataset folder (hashed once)."""
        return input_files(self.data_dir)

    @cached_property
    def state_key(self) -> str:
        """:func:`kam_analysis.state.state_key` of this context (hashes every input file)."""
        return state_key(self.input_files, self.config, self.as_of, self.lang)

    @cached_property
    def features_key(self) -> str:
        """:func:`kam_analysis.state.features_key`: the key ``kam features`` output is reused under."""
        return features_key(self.input_files, self.config, self.as_of)

    def _derived_features(self) -> pd.DataFrame | None:
        """The ``kam features`` output of this dataset folder when it is up to date, else None.

        Only for file datasets: a database source has no input files to hash.
        """
        if not self.config.data.source.is_files:
            return None
        path = derived_features_path(self.data_dir, self.as_of)
        if not path.exists():
            return None
        return read_features(path, self.features_key)

    def attach_state(self, folder: str | Path) -> str:
        """Read the portfolio from a run state folder when it was computed for this context.

        The state is used only when its key equals :attr:`state_key` (same
        input files, settings, as-of date and language); otherwise it is
        ignored and everything is computed on demand.

        Parameters
        ----------
        folder : str or Path
            A folder written by :meth:`save_state`.

        Returns
        -------
        str
            :attr:`state_status`: ``"used"``, ``"stale"`` or ``"missing"``.
        """
        self._state_folder = Path(folder)
        self.state, self.state_status = open_state(self._state_folder, self.state_key)
        return self.state_status

    def save_state(self, folder: str | Path) -> dict[str, Any]:
        """Compute the portfolio once and write it as a run state (``kam run`` does this).

        Stores :attr:`features`, :attr:`monthly`, :attr:`spend_12m`,
        :attr:`scored`, :attr:`whitespace`, :attr:`portfolio_matrix`,
        :attr:`monthly_lines` (Parquet), and :attr:`coverage`, :attr:`ltv_values`
        (the fitted LTV models and every account's LTV),
        :attr:`health_validation` (the health score's family weights) and,
        with an objectives table, :attr:`objective_progress`.

        Parameters
        ----------
        folder : str or Path
            The state folder (created; ``state.json`` is written last).

        Returns
        -------
        dict
            ``key``, ``tables``, ``objects``, ``seconds`` (build time) and
            ``ltv_fit_forked`` (whether the LTV fit ran beside the rest of
            the state; see :func:`kam_analysis.state.fork_fits_in_memory`).
        """
        t0 = time.perf_counter()
        ltv = self._start_ltv_fit(Path(folder))
        # beside the fit: the health validation, then the tables
        _ = self.monthly_lines
        self.dataset.release_memory()  # the engine's working memory of the monthly lines
        health_validation = self.health_validation
        tables = {
            "features": self.features,
            "monthly": self.monthly,
            "spend_12m": self.spend_12m,
            "scored": self.scored,
            "whitespace": self.whitespace,
            "portfolio_matrix": self.portfolio_matrix,
            "monthly_lines": self.monthly_lines,
        }
        if self.objective_progress is not None:
            tables["objective_progress"] = self.objective_progress
        self.__dict__["ltv_values"] = ltv_values = ltv.get()  # the cached property, as if computed
        objects = {
            "coverage": self.coverage,
            "ltv_values": ltv_values,
            "health_validation": health_validation,
        }
        seconds = time.perf_counter() - t0
        write_state(Path(folder), self.state_key, tables=tables, objects=objects, seconds=seconds)
        return {
            "key": self.state_key,
            "tables": sorted(tables),
            "objects": sorted(objects),
            "seconds": round(seconds, 2),
            "ltv_fit_forked": ltv.forked,
        }

    def _start_ltv_fit(self, folder: Path) -> ForkedResult:
        """Start :attr:`ltv_values`, the slowest part of a state, in a forked child.

        The child (:func:`kam_analysis.state.compute_forked`) fits the LTV
        models while this process computes the rest of the state, when the
        free memory allows it; else ``get()`` computes it here, in turn.
        Every table the LTV fit reads is loaded first, so the child never
        queries the engine (its connection is not safe across ``fork``);
        the rest (the monthly lines, the scored book) is computed here after
        the fork, so the child does not carry it. Nothing computed here in
        the meantime may read :attr:`ltv_values`.
        """
        self.frame("accounts")
        self.kpi_tables()
        _ = self.features, self.monthly
        self.dataset.release_memory()  # not carried into the child
        folder.mkdir(parents=True, exist_ok=True)
        return compute_forked(lambda: self.ltv_values, folder / ".ltv_values.fork")

    def _stored(self, name: str) -> Any:
        """A table or object of the matched run state (None without one)."""
        if self.state is None:
            return None
        table = self.state.table(name)
        return table if table is not None else self.state.object(name)

    def has(self, table: str) -> bool:
        """Whether the dataset provides ``table``."""
        return self.dataset.has(table)

    def frame(self, table: str) -> pd.DataFrame | None:
        """A table as pandas (rows dated after the as-of date dropped), or None if absent."""
        if table not in self._frames:
            frame = self.dataset.to_pandas(table)
            if frame is not None:
                frame = _up_to(frame, table, self.as_of)
            self._frames[table] = frame
        return self._frames[table]

    @cached_property
    def last_transaction_date(self) -> dt.date | None:
        """The date of the latest transaction line with an account (None without lines)."""
        return self.dataset.last_transaction_date()

    def data_notes(self) -> list[tuple[str, dict]]:
        """Warnings every page of the run shows under its title: (locale key, values).

        An as-of date more than :data:`~kam_analysis.data.validation.AS_OF_GAP_DAYS`
        days after the last transaction: trailing windows then hold no data.
        """
        last = self.last_transaction_date
        if last is None or (self.as_of - last).days <= AS_OF_GAP_DAYS:
            return []
        gap = {
            "as_of": self.as_of.isoformat(),
            "last": last.isoformat(),
            "days": (self.as_of - last).days,
        }
        return [("data.note.as_of_gap", gap)]

    @cached_property
    def coverage(self) -> HistoryCoverage:
        """Which trailing windows the data covers (:func:`kam_analysis.data.features.history_coverage`).

        Growth needs the previous 12 months, the trend its quarters: criteria the
        data does not cover are left out of scores and shown as not available.
        """
        stored = self._stored("coverage")
        if stored is not None:
            return stored
        return history_coverage(self.dataset.table("transactions"), self.as_of)

    @property
    def assumed_gross_margin(self) -> float | None:
        """``[data] assumed_gross_margin``: used only when the transactions have no cost."""
        return self.config.data.assumed_gross_margin

    @cached_property
    def features(self) -> pd.DataFrame:
        """Account feature table (:func:`kam_analysis.data.features.build_account_features`).

        Read from the run state when there is one, else from the ``kam
        features`` output of the dataset folder when its key still matches
        (same input files, ``[features]`` and ``[data]`` settings, as-of date
        and version), else computed. ``features_source`` says which:
        ``"run_state"``, ``"kam_features"`` or ``"computed"``.
        """
        stored = self._stored("features")
        if stored is not None:
            self.features_source = "run_state"
            return stored
        derived = self._derived_features()
        if derived is not None:
            self.features_source = "kam_features"
            return derived
        self.features_source = "computed"
        ds = self.dataset
        return build_account_features(
            ds.table("transactions"),
            ds.table("accounts"),
            self.as_of,
            period=self.config.features.period,
            fx_rates=self._fx_rates(),
            coverage=self.coverage,
            assumed_gross_margin=self.assumed_gross_margin,
        )

    @cached_property
    def monthly(self) -> pd.DataFrame:
        """Revenue and gross profit per account and month (engine aggregation)."""
        stored = self._stored("monthly")
        if stored is not None:
            return stored
        return monthly_revenue(
            self.dataset.table("transactions"),
            self.as_of,
            months=self.config.features.trend_months,
            fx_rates=self._fx_rates(),
            assumed_gross_margin=self.assumed_gross_margin,
        )

    def _fx_rates(self):
        ds = self.dataset
        return ds.table("fx_rates") if ds.has("fx_rates") else None

    @cached_property
    def spend_12m(self) -> pd.DataFrame:
        """Trailing 12-month revenue per account and product line (engine aggregation).

        :func:`kam_analysis.data.features.product_line_revenue`; what the
        cross-sell whitespace needs from the lines.
        """
        stored = self._stored("spend_12m")
        if stored is not None:
            return stored
        return product_line_revenue(
            self.dataset.table("transactions"), self.as_of, fx_rates=self._fx_rates()
        )

    @cached_property
    def monthly_lines(self) -> pd.DataFrame:
        """Lines summed per account, month and product line, with line counts (engine).

        :func:`kam_analysis.data.features.monthly_line_summary`; a stand-in for the
        line table in :func:`kam_analysis.kpi.compute_kpis`.
        """
        stored = self._stored("monthly_lines")
        if stored is not None:
            return stored
        return monthly_line_summary(
            self.dataset.table("transactions"),
            self.as_of,
            fx_rates=self._fx_rates(),
            assumed_gross_margin=self.assumed_gross_margin,
        )

    @property
    def last_purchases(self) -> pd.DataFrame:
        """``account_id``, ``date``: each account's last purchase up to the as-of date.

        From :attr:`features` (``last_purchase``; NaT for accounts that never
        bought): one row per account that stands in for the lines where only
        the latest date counts (:func:`kam_analysis.kpi.churn_status`).
        """
        f = self.features
        return pd.DataFrame({"account_id": f["account_id"], "date": f["last_purchase"]})

    def account_lines(self, account_id: str) -> pd.DataFrame:
        """The transaction lines of one account up to the as-of date (filtered in the engine)."""
        frame = self.account_frame("transactions", account_id)
        assert frame is not None  # transactions are a required table
        return frame

    def account_frame(self, table: str, account_id: str) -> pd.DataFrame | None:
        """One account's rows of a table, filtered in the engine (None if the table is absent).

        Like :meth:`frame` (rows dated after the as-of date dropped) for a
        single account, without loading the other accounts' rows.
        """
        return self.accounts_frame(table, [account_id])

    def account_monthly_lines(self, account_id: str) -> pd.DataFrame:
        """:attr:`monthly_lines` of one account, aggregated in the engine from its lines only."""
        return self._accounts_monthly_lines([account_id])

    def accounts_frame(self, table: str, account_ids: list[str]) -> pd.DataFrame | None:
        """Some accounts' rows of a table, filtered in the engine (None if the table is absent).

        Like :meth:`frame` (rows dated after the as-of date dropped) for the
        given accounts, without loading the other accounts' rows. One account's
        rows are kept for the next call (an account plan reads some tables
        twice: for its own sections and for its KPIs).
        """
        if not self.has(table):
            return None
        one = f"{table}@{account_ids[0]}" if len(account_ids) == 1 else None
        if one is not None and one in self._frames:
            return self._frames[one]
        rows = self._stored_account_rows(table, account_ids)
        if rows is None:
            rows = self._account_rows(table, account_ids).to_pandas()
        rows = _up_to(rows, table, self.as_of)
        if one is not None:
            self._frames[one] = rows
        return rows

    def _accounts_monthly_lines(self, account_ids: list[str]) -> pd.DataFrame:
        """:attr:`monthly_lines` of some accounts, aggregated in the engine from their lines."""
        stored = self._stored_account_rows("monthly_lines", account_ids)
        if stored is not None:
            return stored
        return monthly_line_summary(
            self._account_rows("transactions", account_ids),
            self.as_of,
            fx_rates=self._fx_rates(),
            assumed_gross_margin=self.assumed_gross_margin,
        )

    def _account_rows(self, table: str, account_ids: list[str]):
        return rows_of_accounts(self.dataset.table(table), account_ids)

    def _stored_account_rows(self, table: str, account_ids: list[str]) -> pd.DataFrame | None:
        """One account's rows as the engine gives them, from the state (:meth:`save_account_rows`)."""
        if self.state is None or len(account_ids) != 1:
            return None
        return self.state.account_rows(table, str(account_ids[0]))

    def save_account_rows(self, account_ids: list[str]) -> list[str]:
        """Store the rows of the accounts a run makes plans for beside its run state.

        One engine query per table for all the accounts (an ``IN`` list,
        which keeps the table's row order) and one for their
        :attr:`monthly_lines`. The account plans' contexts then take their
        account's rows from the state (:meth:`accounts_frame`,
        :meth:`account_monthly_lines`): the same frames as their own queries,
        without a query and its compilation per table and plan. ``kam run``
        calls it while the first reports run; a plan that starts before the
        rows are written queries the engine.

        Parameters
        ----------
        account_ids : list of str

        Returns
        -------
        list of str
            The tables stored; none without a matched run state (see :meth:`attach_state`).
        """
        if self.state is None or not account_ids:
            return []
        ids = [str(a) for a in account_ids]
        frames = {
            table: self._account_rows(table, ids).to_pandas()
            for table in _ACCOUNT_TABLES
            if self.has(table)
        }
        frames["monthly_lines"] = self._accounts_monthly_lines(ids)
        write_account_rows(self.state.folder, self.state_key, ids, frames)
        return sorted(frames)

    @cached_property
    def scored(self) -> pd.DataFrame:
        """Valuation table with score, contributions, status, tier, reason and win-back.

        :func:`kam_analysis.segmentation.score_and_tier`: ``status`` (active,
        lapsed or churned, churn from the contracts table when there is one),
        tiers for active accounts only, and the win-back flag and reason of
        valuable lost accounts, computed once so that every report agrees.
        """
        stored = self._stored("scored")
        if stored is not None:
            return stored
        return score_and_tier(
            self.features,
            None,
            as_of=self.as_of,
            accounts=self.frame("accounts"),
            opportunities=self.frame("opportunities"),
            monthly_revenue=self.monthly,
            valuation=self.config.valuation,
            segmentation=self.config.segmentation,
            lang=self.lang,
            spend_12m=self.spend_12m,
            coverage=self.coverage,
            contracts=self.frame("contracts"),
        )

    @property
    def win_back(self) -> pd.DataFrame:
        """Lost accounts worth winning back: the ``win_back`` rows of :attr:`scored`, in order.

        :func:`kam_analysis.segmentation.win_back_list`.
        """
        return win_back_list(self.scored)

    @cached_property
    def criteria(self) -> pd.DataFrame:
        """The score's criteria: stated and used weight, and why a criterion was left out.

        :func:`kam_analysis.valuation.criteria_used` on :attr:`scored`.
        """

        return criteria_used(
            self.scored,
            self.config.valuation.weights,
            coverage=self.coverage,
            trend=self.config.valuation.trend,
        )

    @cached_property
    def tier_rule(self):
        """The tier rule as applied: conditions used and skipped, and why (``TierRule``)."""

        return tier_rule(self.scored, self.config.segmentation, lang=self.lang)

    @cached_property
    def ltv_values(self) -> LtvValues:
        """Every account's LTV with the configured settings, the models fitted once per context.

        :func:`kam_analysis.ltv.analysis.value_accounts` with ``[ltv]``,
        ``[features] period`` and ``[data] assumed_gross_margin``: the fitted
        models, every account's LTV with its basis, and why no account could
        be valued when none could (``LtvValues``). Reports that show an
        account's LTV without the rest of the LTV report (scenarios, account
        plans) read it here, so that they show the numbers of the LTV report
        without paying for its backtests.
        """
        stored = self._stored("ltv_values")
        if stored is not None:
            return stored
        return value_accounts(self, self.config.ltv)

    @cached_property
    def scenario_inputs(self) -> tuple[pd.DataFrame, ScenarioSpreads]:
        """The scenario report's account book and the numbers behind its spread.

        The book (:func:`kam_analysis.scenarios.scenario_book` on
        :attr:`scored`): churn and growth from :attr:`ltv_values`, each
        account's volatility from its own revenue history shrunk toward the
        book, the book's for accounts with too little history
        (:func:`kam_analysis.ltv.analysis.spread_estimates`). The spreads
        (:func:`kam_analysis.scenarios.scenario_spreads`): the market-factor
        weight and the shared churn shock from ``[scenarios]`` when set, else
        estimated, else the fallbacks, each with its source.
        """
        values = self.ltv_values
        ltv = values.ltv if values.not_valued is None else None
        cfg = self.config.scenarios
        est = spread_estimates(
            self.monthly,
            as_of=self.as_of,
            models=values.models,
            account_ids=self.scored["account_id"],
            min_accounts=cfg.min_history_accounts,
            min_months=cfg.min_history_months,
        )
        book = scenario_book(
            self.scored,
            ltv=ltv,
            volatility=est.volatility if len(est.volatility) else None,
            book_volatility=est.book_volatility,
            assumed_gross_margin=self.config.data.assumed_gross_margin,
        )
        spreads = scenario_spreads(
            cfg,
            market=est.market,
            churn_shock=est.churn_shock,
            volatility_months=est.months,
            volatility_accounts=est.accounts,
        )
        return book, spreads

    @cached_property
    def ltv(self) -> LtvAnalysis:
        """The LTV analysis with the configured settings, computed once per context.

        :func:`kam_analysis.ltv.analysis.ltv_analysis` on :attr:`ltv_values`
        (the models are not fitted again): every account's LTV with its basis,
        plus retention, renewals, backtests and notes (``LtvAnalysis``).
        """
        return ltv_analysis(self, values=self.ltv_values)

    @property
    def kpi_settings(self) -> KpiSettings:
        """``[kpi]`` with the fiscal year of ``[data]``: the settings every report computes KPIs with."""
        fiscal_start = self.config.data.fiscal_year_start_month
        return self.config.kpi.model_copy(update={"fiscal_year_start_month": fiscal_start})

    def kpi_tables(self, account_ids: list[str] | None = None) -> dict[str, pd.DataFrame | None]:
        """The optional tables the KPIs read, as pandas (None for an absent table).

        ``contracts``, ``opportunities``, ``activities``, ``surveys`` and
        ``usage`` up to the as-of date, of every account or, with
        ``account_ids``, of those accounts only (filtered in the engine).
        ``activities`` holds the executive meetings only, the rows the one
        activity KPI (``exec_contact``) counts, selected in the engine: an
        activity log of millions of rows is never loaded whole.
        """
        return {name: self._kpi_frame(name, account_ids) for name in _KPI_TABLES}

    def _kpi_frame(self, table: str, account_ids: list[str] | None) -> pd.DataFrame | None:
        if table != "activities":
            return (
                self.frame(table)
                if account_ids is None
                else self.accounts_frame(table, account_ids)
            )
        if not self.has(table):
            return None
        if account_ids is not None and len(account_ids) == 1:  # the account's rows, kept
            rows = self.accounts_frame(table, account_ids)
            assert rows is not None
            return rows[rows["kind"].astype(str) == EXECUTIVE_MEETING].reset_index(drop=True)
        cache = account_ids is None and "activities:kpi" in self._frames
        if cache:
            return self._frames["activities:kpi"]
        t = (
            self.dataset.table(table)
            if account_ids is None
            else self._account_rows(table, account_ids)
        )
        rows = _up_to(
            t.filter(t["kind"].cast("string") == EXECUTIVE_MEETING).to_pandas(), table, self.as_of
        )
        if account_ids is None:
            self._frames["activities:kpi"] = rows
        return rows

    @cached_property
    def health_validation(self) -> HealthValidation:
        """The health score's family weights, fitted to churn and validated out of time, once.

        :func:`kam_analysis.kpi.validate_health` on the book with
        :attr:`kpi_settings` and ``[segmentation] lapse_months``: the weights
        the KPI scorecard, the account plans and ``kam export`` score health
        with, so that an account's health is the same number everywhere.
        """
        stored = self._stored("health_validation")
        if stored is not None:
            return stored
        return validate_health(
            self.monthly_lines,
            self.frame("accounts"),
            **self.kpi_tables(),
            as_of=self.as_of,
            settings=self.kpi_settings,
            lapse_months=self.config.segmentation.lapse_months,
        )

    @cached_property
    def objective_progress(self) -> pd.DataFrame | None:
        """Every account's objectives against target, measured once (None without objectives).

        :func:`kam_analysis.objectives.objective_progress` of the
        ``account_objectives`` table with ``[objectives]``, on the current
        values of :func:`kam_analysis.objectives.measured_values`: the
        accounts' row of :attr:`scored` and their KPIs at the latest complete
        period (computed with :attr:`kpi_settings`, for the accounts that have
        objectives only, and only when an objective measures a KPI). The
        account plans, the KPI scorecard and ``kam export`` read it, so that an
        objective has the same status everywhere.
        """
        goals = self.frame("account_objectives")
        if goals is None:
            return None
        stored = self._stored("objective_progress")
        if stored is not None:
            return stored
        ids = sorted(set(goals["account_id"].astype(str)))
        scored = self.scored
        rows = scored[scored["account_id"].astype(str).isin(ids)]
        kpis = None
        feature_metrics = {*objectives_mod.FEATURE_METRICS, "share_of_wallet"}
        if ids and not set(goals["metric"].dropna().astype(str)) <= feature_metrics:
            kpis = assess_kpis(self._objective_kpis(ids))
        values = objectives_mod.measured_values(rows, kpis)
        return objectives_mod.objective_progress(
            goals, values, self.as_of, settings=self.config.objectives
        )

    def _objective_kpis(self, account_ids: list[str]):
        """:func:`kam_analysis.kpi.compute_kpis` of some accounts, from their rows only.

        An account's KPI values depend on its own data only (relative targets
        change the assessment, not the value).
        """

        return compute_kpis(
            self._accounts_monthly_lines(account_ids),
            self.accounts_frame("accounts", account_ids),
            **self.kpi_tables(account_ids),
            as_of=self.as_of,
            settings=self.kpi_settings,
            lapse_months=self.config.segmentation.lapse_months,
        )

    @cached_property
    def whitespace(self) -> pd.DataFrame:
        """Cross-sell whitespace per account and product line of the scored accounts.

        :func:`kam_analysis.valuation.account_whitespace` with the configured
        rules, from :attr:`spend_12m`: the values that ``scored`` sums into
        ``whitespace``.
        """

        stored = self._stored("whitespace")
        if stored is not None:
            return stored
        return account_whitespace(
            self.scored,
            None,
            as_of=self.as_of,
            settings=self.config.valuation,
            spend_12m=self.spend_12m,
        )

    @cached_property
    def portfolio_matrix(self) -> pd.DataFrame:
        """The key-account portfolio matrix of the scored book, with stakeholder coverage.

        :func:`kam_analysis.segmentation.portfolio_matrix` of :attr:`scored`
        with ``[segmentation]``, its position axis including
        :func:`kam_analysis.segmentation.position_inputs` (the share of
        decision roles we know a contact in) when the dataset has
        stakeholders: the quadrants the segmentation report and every account
        plan show.
        """
        stored = self._stored("portfolio_matrix")
        if stored is not None:
            return stored
        scored = self.scored
        position = position_inputs(scored, self.frame("stakeholders"), as_of=self.as_of)
        return portfolio_matrix(scored, position, settings=self.config.segmentation)

    def key_accounts(self, top_n: int | None = None) -> list[str]:
        """Key-account ids by descending score (the first ``top_n`` when given)."""
        scored = self.scored
        key = scored[scored["tier"] == "key"].sort_values(
            ["score", "account_id"], ascending=[False, True]
        )
        ids = key["account_id"].tolist()
        return ids[:top_n] if top_n is not None else ids

    def account_names(self, account_ids: list[str]) -> dict[str, str]:
        """Company name per account id (ids without a name are left out)."""
        accounts = self.frame("accounts")
        if accounts is None or "name" not in accounts.columns:
            return {}
        named = accounts[accounts["account_id"].isin(account_ids) & accounts["name"].notna()]
        return dict(zip(named["account_id"].astype(str), named["name"].astype(str), strict=True))

    def missing_tables(self) -> list[str]:
        """Optional tables the dataset does not provide."""

        return [t for t in CANONICAL_TABLES if t not in REQUIRED_TABLES and not self.has(t)]


_KPI_TABLES = ("contracts", "opportunities", "activities", "surveys", "usage")
"""The optional tables :func:`kam_analysis.kpi.compute_kpis` reads."""

_ACCOUNT_TABLES = (
    "accounts",
    "transactions",
    "contracts",
    "opportunities",
    "stakeholders",
    "activities",
    "surveys",
    "usage",
    "account_team",
    "account_objectives",
)
"""The tables with one row set per account (:meth:`AnalysisContext.save_account_rows`)."""

_DATE_COLUMN = {
    "transactions": "date",
    "activities": "date",
    "surveys": "date",
    "usage": "month",
    "opportunities": "created_date",
}


def _up_to(frame: pd.DataFrame, table: str, as_of: dt.date) -> pd.DataFrame:
    col = _DATE_COLUMN.get(table)
    if col is None or col not in frame.columns:
        return frame
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    return frame[frame[col] < end].reset_index(drop=True)


def load_context(
    data_dir: str | Path,
    *,
    as_of: dt.date | str | None = None,
    config_path: str | Path | None = None,
    lang: str = "en",
) -> AnalysisContext:
    """Open a dataset for analysis.

    Parameters
    ----------
    data_dir : str or Path
        Dataset folder.
    as_of : date or str, optional
        Analysis date (default: the dataset's recorded as-of date, else the
        date of its last transaction line).
    config_path : str or Path, optional
        ``kam.toml``; when omitted, the dataset folder's own ``kam.toml`` if
        it has one, else the defaults.
    lang : {"en", "ja"}
        Language of labels.

    Returns
    -------
    AnalysisContext
        Inside a report run (:data:`kam_analysis.state.STATE_ENV` set by
        ``kam run``) it reads the portfolio the run computed once, when the
        run's state was computed for the same inputs, settings, as-of date
        and language (:meth:`AnalysisContext.attach_state`).

    Raises
    ------
    kam_analysis.data.DatasetError
        When files are missing or unreadable (its report says which).
    kam_analysis.config.ConfigError
        For a bad configuration.
    """
    if lang not in ("en", "ja"):
        raise ValueError(f"lang must be 'en' or 'ja', not {lang!r}")
    config = load_config(find_config(data_dir, config_path))
    dataset = open_dataset(data_dir, config=config)
    ctx = AnalysisContext(dataset, default_as_of(data_dir, as_of, dataset), config, lang)
    state_folder = os.environ.get(STATE_ENV)
    if state_folder:
        ctx.attach_state(state_folder)
    return ctx

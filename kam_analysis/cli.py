"""The ``kam`` command line.

Exit codes (stable, for cron / Airflow / CI):

* ``0`` — success.
* ``1`` — the job failed (a report notebook failed, an unexpected error).
* ``2`` — bad input: invalid data, a bad configuration or bad arguments.
  Nothing was written.
* ``130`` — interrupted (Ctrl-C); nothing half-written was left behind.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kam_analysis import __version__
from kam_analysis.config import KamConfig, find_config, load_config
from kam_analysis.core.errors import InputError, KamError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
MAX_LINES_PER_ACCOUNT_MONTH = 1_000
MAX_SYNTH_LINES = 500_000_000


class UsageError(InputError):
    """A problem with the command's arguments (exit 2)."""


class InvalidData(InputError):
    """The dataset is unreadable or invalid; its report was printed (exit 2)."""


def _as_of(value: str | None) -> dt.date | None:
    if value is None:
        return None
    from kam_analysis.data import as_date

    try:
        return as_date(value)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _config(folder: Path, path: str | None) -> KamConfig:
    """``--config``, else the dataset folder's own kam.toml, else the defaults."""
    return load_config(find_config(folder, path))


def _open(folder: Path, config: KamConfig, explicit_as_of: str | None):
    """The opened dataset and its as-of date; a DatasetError when it cannot be opened."""
    from kam_analysis.context import default_as_of
    from kam_analysis.data import open_dataset

    explicit = _as_of(explicit_as_of)
    ds = open_dataset(folder, config=config)
    return ds, default_as_of(folder, explicit, ds)


def cmd_validate(args: argparse.Namespace) -> int:
    from kam_analysis.data import DatasetError, validate_open_dataset

    folder = Path(args.data)
    config = _config(folder, args.config)
    try:
        ds, as_of = _open(folder, config, args.as_of)
    except DatasetError as err:
        err.report.summary.setdefault("config", str(config.source_path or "") or None)
        print(err.report.render_text())
        return EXIT_BAD_INPUT
    report = validate_open_dataset(ds, as_of)
    print(report.render_text())
    return EXIT_OK if report.ok else EXIT_BAD_INPUT


def cmd_synth(args: argparse.Namespace) -> int:
    from kam_analysis.synthetic import SyntheticSettings, generate_dataset, generate_messy_export

    if args.accounts < 1:
        raise UsageError("--accounts must be at least 1")
    if not 0 <= args.market_volatility < 1:
        raise UsageError(
            f"--market-volatility must be at least 0 and below 1 (got {args.market_volatility:g})"
        )
    density = args.lines_per_account_month
    if density is not None and not 0 < density <= MAX_LINES_PER_ACCOUNT_MONTH:
        raise UsageError(
            f"--lines-per-account-month must be above 0 and at most {MAX_LINES_PER_ACCOUNT_MONTH:,}"
            f" (got {density:g})"
        )
    expected = args.accounts * 48 * (density or 7)
    if expected > MAX_SYNTH_LINES:
        raise UsageError(
            f"--accounts {args.accounts:,} at {density or 7:g} lines per account-month gives about "
            f"{expected:,.0f} lines over four years, more than the {MAX_SYNTH_LINES:,} kam synth "
            "writes; lower one of them"
        )
    generate = generate_messy_export if args.messy else generate_dataset
    try:
        settings = SyntheticSettings(  # 0 for both: the lognormal draw, no planted concentration
            top1_revenue_share=args.top1_share or None,
            top10_revenue_share=args.top10_share or None,
            market_volatility_annual=args.market_volatility,
        )
        summary = generate(
            Path(args.out),
            n_accounts=args.accounts,
            seed=args.seed,
            start=args.start,
            end=args.end,
            fiscal_year_start_month=args.fiscal_year_start,
            overwrite=args.force,
            settings=settings,
            **(
                {"lines_per_account_month": args.lines_per_account_month}
                if args.lines_per_account_month is not None
                else {}
            ),
        )
    except ValueError as err:  # bad --start/--end/--fiscal-year-start, named in the message
        raise UsageError(str(err)) from None
    rows = ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in summary.get("rows", {}).items())
    extra = " and kam.toml" if args.messy else ""
    print(
        f"wrote {args.out}{extra}: {rows} "
        f"(as of {summary.get('as_of')}, {summary.get('seconds', 0):.1f} s)"
    )
    return EXIT_OK


def _open_validated(
    folder: Path, config, as_of_arg: str | None, *, skip_validation: bool, outcome: str
):
    """The dataset and its as-of date, checked against the contract unless skipped.

    An unreadable or invalid dataset prints its report and raises
    :class:`InvalidData` (exit 2) saying ``outcome`` (what was not done).
    """
    from kam_analysis.data import DatasetError, validate_open_dataset

    try:
        ds, as_of = _open(folder, config, as_of_arg)
    except DatasetError as err:
        print(err.report.render_text(), file=sys.stderr)
        raise InvalidData(f"{folder}: the dataset cannot be read, {outcome}") from None
    if not skip_validation:
        report = validate_open_dataset(ds, as_of)
        if not report.ok:
            print(report.render_text(), file=sys.stderr)
            raise InvalidData(f"invalid data, {outcome}")
    return ds, as_of


def cmd_features(args: argparse.Namespace) -> int:
    from kam_analysis.context import AnalysisContext
    from kam_analysis.state import derived_features_path, write_features

    folder = Path(args.data)
    config = _config(folder, args.config)
    ds, as_of = _open_validated(
        folder,
        config,
        args.as_of,
        skip_validation=args.skip_validation,
        outcome="nothing was written",
    )
    started = time.perf_counter()
    ctx = AnalysisContext(ds, as_of, config)
    features = ctx.features  # the reports' own feature table (reused when up to date)
    out = Path(args.out) if args.out else derived_features_path(folder, as_of)
    took = time.perf_counter() - started
    shape = f"{len(features):,} accounts × {features.shape[1]} features"
    if ctx.features_source == "kam_features" and out == derived_features_path(folder, as_of):
        print(f"{out} is up to date: {shape} (same inputs and settings; {took:.1f} s)")
        return EXIT_OK
    write_features(out, features, ctx.features_key)
    print(f"wrote {out}: {shape} ({took:.1f} s)")
    return EXIT_OK


def _refuse_table_name(out: Path, folder: Path) -> None:
    """An --out in the dataset folder named like a table would be read as input next time."""
    from kam_analysis.core.schemas import CANONICAL_TABLES

    if out.resolve().parent == folder.resolve() and out.stem.lower() in CANONICAL_TABLES:
        raise UsageError(
            f"--out {out}: a file named {out.stem} in the dataset folder would be read as its "
            f"{out.stem} table; choose another name or folder"
        )


def cmd_export(args: argparse.Namespace) -> int:
    from kam_analysis.context import AnalysisContext
    from kam_analysis.pipeline.export import account_export, check_export_path, write_export

    folder, out = Path(args.data), Path(args.out)
    check_export_path(out, excel=args.excel, force=args.force)  # before any work
    _refuse_table_name(out, folder)
    config = _config(folder, args.config)
    ds, as_of = _open_validated(
        folder,
        config,
        args.as_of,
        skip_validation=args.skip_validation,
        outcome="nothing was exported",
    )
    started = time.perf_counter()
    table = account_export(AnalysisContext(ds, as_of, config, args.lang))
    write_export(table, out, excel=args.excel, force=args.force)
    took = time.perf_counter() - started
    size = f"{len(table):,} accounts × {table.shape[1]} columns"
    print(f"wrote {out}: {size}, as of {as_of} ({took:.1f} s)")
    return EXIT_OK


def cmd_dictionary(args: argparse.Namespace) -> int:
    from kam_analysis.core.schemas import data_dictionary

    table = data_dictionary()
    if args.table == "export":  # the columns kam export writes
        from kam_analysis.pipeline.export import export_dictionary

        table = export_dictionary()
    elif args.table:
        table = table[table["table"] == args.table]
    if args.format == "csv":
        print(table.to_csv(index=False), end="")
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", None, "display.max_colwidth", 70):
            print(table.to_string(index=False))
    return EXIT_OK


def _parse_params(pairs: Sequence[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"-p expects name=value, got {pair!r}")
        params[name.strip()] = value
    return params


def _personal_data_values(ds) -> list[str]:
    """Stakeholder names and e-mails: they must not appear in a run unless switched on."""
    if not ds.has("stakeholders"):
        return []
    frame = ds.to_pandas("stakeholders")
    values: list[str] = []
    for column in ("name", "email"):
        if column in frame.columns:
            values.extend(str(v) for v in frame[column].dropna().unique())
    return values


def _key_accounts_chooser(ds, as_of: dt.date, config: KamConfig, lang: str, top_n: int):
    """``choose_accounts`` and ``prefetch_accounts`` for :func:`run_reports`.

    The first picks the top key accounts and their names, read from the run
    state when the run built one (the book is then scored once per run), else
    computed here. The second stores those accounts' rows beside the state
    (:meth:`~kam_analysis.context.AnalysisContext.save_account_rows`).
    """
    from kam_analysis.context import AnalysisContext

    contexts: list[AnalysisContext] = []

    def choose(state_folder: Path | None) -> tuple[list[str], dict[str, str]]:
        ctx = AnalysisContext(ds, as_of, config, lang)
        if state_folder is not None:
            ctx.attach_state(state_folder)
        contexts.append(ctx)
        ids = ctx.key_accounts(top_n)
        return ids, ctx.account_names(ids)

    def prefetch(state_folder: Path, ids) -> None:
        contexts[-1].save_account_rows(list(ids))

    return choose, prefetch


def _reports_dir(path: Path, data_dir: Path) -> Path:
    """The reports folder, refused when it lies inside the dataset or cannot be created."""
    resolved = path.resolve()
    if resolved == data_dir or data_dir in resolved.parents:
        raise UsageError(
            f"--reports-dir {path} lies inside the dataset folder {data_dir}: reports would "
            "become input files of the next run; choose a folder outside it"
        )
    try:
        resolved.mkdir(parents=True, exist_ok=True)
        probe = resolved / f".kam-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UsageError(f"--reports-dir {path}: cannot write there ({err.strerror})") from None
    return resolved


def cmd_run(args: argparse.Namespace) -> int:
    from kam_analysis.data import DatasetError, validate_open_dataset
    from kam_analysis.pipeline import ReportError, run_reports

    folder = Path(args.data).resolve()
    config = _config(folder, args.config)
    settings = config.reports
    if not config.data.source.is_files:  # tables come from the engine; --data holds derived files
        folder.mkdir(parents=True, exist_ok=True)
    params = _parse_params(args.param or [])
    notebooks = settings.notebooks
    if args.only:
        known = {nb.name: nb for nb in notebooks}
        unknown = [n for n in args.only if n not in known and n != "account_plan"]
        if unknown:
            raise UsageError(
                f"--only: unknown notebook(s) {unknown}; known: {', '.join(known)}, account_plan"
            )
        notebooks = [nb for nb in notebooks if nb.name in args.only]
    with_plans = settings.account_plan is not None and (
        not args.only or "account_plan" in args.only
    )
    top_n = settings.account_plan_top_n if args.account_plans is None else args.account_plans
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1 (got {args.jobs})")
    if top_n < 0:
        raise UsageError(f"--account-plans must be 0 or more (got {top_n})")
    reports_dir = _reports_dir(Path(args.reports_dir), folder)

    try:
        ds, as_of = _open(folder, config, args.as_of)
    except DatasetError as err:
        print(err.report.render_text(), file=sys.stderr)
        return EXIT_BAD_INPUT
    checked = []

    def validate(data_dir: Path, as_of: dt.date) -> tuple[bool, str]:
        """Run by :func:`run_reports` while its workers and the run state start."""
        report = validate_open_dataset(ds, as_of)
        ds.release_memory()  # the checks' working memory, beside the run state's build
        checked.append(report)
        if report.ok:
            return True, ""
        return False, f"{report.render_text()}\nkam: invalid data, no report was run"

    def data_summary() -> dict[str, Any]:
        report = checked[-1]
        return {"summary": report.summary, "warnings": [i.render() for i in report.warnings]}

    plans = with_plans and top_n > 0
    show_pd = bool(args.show_personal_data or config.show_personal_data)
    choose, prefetch = (
        _key_accounts_chooser(ds, as_of, config, args.lang, top_n) if plans else (None, None)
    )
    run_kwargs = dict(
        data_dir=folder,
        as_of=as_of,
        notebooks=notebooks,
        reports_dir=reports_dir,
        lang=args.lang,
        label=args.label,
        params=params,
        jobs=args.jobs or settings.jobs,
        account_plan=settings.account_plan if plans else None,
        choose_accounts=choose,
        prefetch_accounts=prefetch,
        config_path=config.source_path.resolve() if config.source_path else None,
        validate=validate,
        data_summary=data_summary,
        kernel_name=settings.kernel_name,
        run_state=not args.no_run_state,
        cell_timeout=settings.cell_timeout,
        run_timeout=settings.run_timeout,
        show_personal_data=show_pd,
        personal_data_values=[] if show_pd else (lambda: _personal_data_values(ds)),
        screenshots=args.screenshots or settings.screenshots,
    )
    try:
        result = run_reports(**run_kwargs)
    except ReportError as err:  # bad parameters, missing notebooks: nothing ran
        raise UsageError(str(err)) from None
    if result.message:
        print(result.message, file=sys.stderr if result.code else sys.stdout)
    return result.code


def cmd_reports_list(args: argparse.Namespace) -> int:
    from kam_analysis.pipeline import list_runs

    runs = list_runs(Path(args.reports_dir))
    if runs.empty:
        print(f"no report runs in {args.reports_dir}")
        return EXIT_OK
    import pandas as pd

    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(runs.to_string(index=False))
    return EXIT_OK


def cmd_reports_show(args: argparse.Namespace) -> int:
    import json

    from kam_analysis.pipeline import show_run

    try:
        info = show_run(Path(args.reports_dir), args.run)
    except (KeyError, FileNotFoundError, ValueError) as err:
        raise UsageError(str(err).strip("'\"")) from None
    print(json.dumps(info, indent=2, ensure_ascii=False, default=str))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``kam``."""
    parser = argparse.ArgumentParser(
        prog="kam",
        description="Key Account Management analytics: validate data, build features, run reports.",
    )
    parser.add_argument("--version", action="version", version=f"kam-analysis {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check a dataset folder against the data contract")
    p.add_argument("data", help="dataset folder (accounts.csv, transactions.parquet, ...)")
    p.add_argument("--as-of", help="analysis date YYYY-MM-DD (default: the dataset's, else today)")
    p.add_argument("--config", help="kam.toml")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("synth", help="generate the synthetic demo dataset")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--accounts", type=int, default=2000, help="number of accounts (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--start", default="2022-04-01", help="first date (default 2022-04-01)")
    p.add_argument("--end", default="2026-03-31", help="last date = as-of (default 2026-03-31)")
    p.add_argument("--fiscal-year-start", type=int, default=4, help="fiscal year start month (4)")
    p.add_argument("--force", action="store_true", help="replace an existing generated dataset")
    p.add_argument(
        "--lines-per-account-month",
        type=float,
        help="transaction density (default 7; 14 with 100k accounts gives about 50M lines)",
    )
    p.add_argument(
        "--top1-share",
        type=float,
        default=0.08,
        help="planted share of the last 12 months' revenue of the largest account (default 0.08)",
    )
    p.add_argument(
        "--top10-share",
        type=float,
        default=0.35,
        help="planted share of the 10 largest accounts (default 0.35); 0 for both shares keeps "
        "the lognormal draw",
    )
    p.add_argument(
        "--market-volatility",
        type=float,
        default=0.10,
        help="annual volatility of the market factor shared by every customer's wallet "
        "(default 0.10; 0: none)",
    )
    p.add_argument(
        "--messy",
        action="store_true",
        help="write the demo as a real ERP export: invoice_lines.csv (quantity x unit price, "
        "credit notes, cash sales without a customer, US dates, cp1252, no accounts file, "
        "no cost) and the kam.toml that reads it",
    )
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("features", help="build the account feature table")
    p.add_argument("data", help="dataset folder")
    p.add_argument("--as-of", help="analysis date YYYY-MM-DD")
    p.add_argument("--config", help="kam.toml")
    p.add_argument(
        "--out", help="output Parquet (default <data>/_derived/account_features_<as-of>.parquet)"
    )
    p.add_argument("--skip-validation", action="store_true", help="do not validate first")
    p.set_defaults(func=cmd_features)

    p = sub.add_parser(
        "export", help="write the account table for the CRM (tier, score, value, LTV, health)"
    )
    p.add_argument("data", help="dataset folder")
    p.add_argument("--as-of", help="analysis date YYYY-MM-DD (default: the dataset's)")
    p.add_argument("--config", help="kam.toml")
    p.add_argument("--out", required=True, help="output file, .csv or .parquet")
    p.add_argument("--excel", action="store_true", help="CSV in UTF-8 with BOM for Excel")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.add_argument("--lang", choices=["en", "ja"], default="en", help="language of the reasons")
    p.add_argument("--skip-validation", action="store_true", help="do not validate first")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("run", help="execute the report notebooks and publish an HTML report run")
    p.add_argument(
        "--data",
        required=True,
        help="dataset folder (with [data.source] in the config: a working folder)",
    )
    p.add_argument("--as-of", help="analysis date YYYY-MM-DD (default: the dataset's, else today)")
    p.add_argument("--config", help="kam.toml")
    p.add_argument("--reports-dir", default="reports", help="where runs are published (reports/)")
    p.add_argument("--lang", choices=["en", "ja"], default="en", help="report language")
    p.add_argument("--label", help="free text label, part of the run id")
    p.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="run only these notebooks")
    p.add_argument(
        "-p", "--param", action="append", metavar="NAME=VALUE", help="notebook parameter"
    )
    p.add_argument("--jobs", type=int, help="notebooks run in parallel (default from config: 1)")
    p.add_argument("--account-plans", type=int, help="plans for the top N key accounts")
    p.add_argument("--show-personal-data", action="store_true", help="show stakeholder names")
    p.add_argument("--screenshots", action="store_true", help="PNG of every page (Chromium)")
    p.add_argument(
        "--no-run-state",
        action="store_true",
        help="every notebook computes the portfolio itself (default: computed once per run)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("reports", help="list or show published report runs")
    rsub = p.add_subparsers(dest="reports_command", required=True, metavar="ACTION")
    q = rsub.add_parser("list", help="every run, newest first")
    q.add_argument("--reports-dir", default="reports")
    q.set_defaults(func=cmd_reports_list)
    q = rsub.add_parser("show", help="one run's manifest")
    q.add_argument("run", help="run id (or 'latest')")
    q.add_argument("--reports-dir", default="reports")
    q.set_defaults(func=cmd_reports_show)

    p = sub.add_parser("dictionary", help="print the data contract (data dictionary)")
    p.add_argument("--table", help="only this table ('export': the columns of kam export)")
    p.add_argument("--format", choices=["text", "csv"], default="text")
    p.set_defaults(func=cmd_dictionary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kam`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except InputError as err:  # data, settings, arguments: the message names what to fix
        print(f"kam: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KamError as err:  # the analysis could not be done (e.g. a source unreachable)
        print(f"kam: {err}", file=sys.stderr)
        return EXIT_FAILED
    except FileExistsError as err:
        print(f"kam: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("kam: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `kam validate ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except OSError as err:  # a full disk, a folder that vanished: a message, not a traceback
        where = f" ({err.filename})" if err.filename else ""
        if err.errno == errno.ENOSPC:
            print(f"kam: the disk is full{where}; nothing was published", file=sys.stderr)
        else:
            print(f"kam: {err.strerror or err}{where}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

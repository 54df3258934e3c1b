"""Benchmark: account features from a transactions Parquet file, ours vs pandas vs Spark.

    .venv/bin/python benchmarks/bench_features.py --lines 1000000 20000000
    .venv/bin/python benchmarks/bench_features.py --lines 1000000 10000000 50000000 \
        --engines ours pandas spark --repeat 1

For each size the script writes (once, then reuses) a realistic
transactions Parquet file and an accounts Parquet file into
``benchmarks/.work/``, then builds the same feature table

* ``ours``:   :func:`kam_analysis.data.features.build_account_features` on DuckDB,
* ``pandas``: ``pd.read_parquet`` + ``groupby``, the code an analyst would write,
* ``spark``:  the same Ibis feature build on PySpark in local mode (``local[2]``,
  what a Spark user would run), the session started before the clock starts,

each run in a fresh subprocess so that its peak resident memory is its own.
Peak memory is the larger of the process's own peak RSS and the peak of its
whole process tree sampled every 50 ms (Spark's JVM is a child process).
It prints the median wall time (reading + computing; interpreter start,
imports and the Spark session start excluded) and the median peak memory of
each, the ratios against ours, and the largest differences between results.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / ".work" / "features"
DATA_START = np.datetime64("2021-01-01")
DATA_END = np.datetime64("2024-12-31")  # four years of lines
AS_OF = "2024-10-31"  # lines after it exist and must be ignored
PERIOD = "week"
CHUNK = 1_000_000  # lines generated at a time
ROW_GROUP = 262_144  # Parquet row group (Polars' default; DuckDB writes 122,880)
SEED = 20241031

PRODUCT_LINES = [f"PL{i:02d}" for i in range(1, 13)]
INDUSTRIES = ["manufacturing", "retail", "finance", "healthcare", "logistics", "energy", "it"]
REGIONS = ["north", "south", "east", "west", "central"]

COMPARED = [
    "revenue_12m",
    "gross_profit_12m",
    "margin_12m",
    "revenue_prev_12m",
    "revenue_growth",
    "orders_12m",
    "orders_total",
    "revenue_total",
    "recency_days",
    "tenure_days",
    "product_lines_12m",
    "product_lines_total",
    "share_of_wallet",
    "frequency",
    "recency",
    "T",
    "monetary_value",
]


# --------------------------------------------------------------------------- data


def default_accounts(lines: int) -> int:
    """10k accounts for 1M lines, 100k for 10M lines and more."""
    return min(100_000, max(1_000, lines // 100))


def account_ids(n: int) -> list[str]:
    return [f"ACC{i:07d}" for i in range(n)]


def write_accounts(path: Path, n: int, rng: np.random.Generator) -> dict:
    """Accounts table plus the per-account parameters that drive the lines."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    days = int((DATA_END - DATA_START).astype(int))
    # Customers since up to 8 years before the data starts, or during it.
    since_offset = rng.integers(-8 * 365, days - 60, size=n)
    since = DATA_START + since_offset.astype("timedelta64[D]")
    since_missing = rng.random(n) < 0.1
    size = rng.lognormal(0.0, 1.4, size=n)
    size[rng.random(n) < 0.05] = 0.0  # prospects without any transaction
    wallet = np.round(size * rng.lognormal(np.log(60_000), 0.6, size=n), -2)
    wallet_missing = rng.random(n) < 0.2
    table = pa.table(
        {
            "account_id": account_ids(n),
            "name": [f"Company {i}" for i in range(n)],
            "industry": rng.choice(INDUSTRIES, size=n),
            "region": rng.choice(REGIONS, size=n),
            "since": pa.array(since.astype("datetime64[us]"), mask=since_missing),
            "wallet_estimate": pa.array(wallet, mask=wallet_missing),
        }
    )
    pq.write_table(table, path)
    start = np.maximum(since_offset, 0)
    churned = rng.random(n) < 0.25
    end = np.where(churned, rng.integers(start + 1, days + 1), days)
    return {"size": size, "start": start, "end": end}


def write_transactions(path: Path, lines: int, params: dict, rng: np.random.Generator) -> None:
    """Write ``lines`` order lines in chunks (orders of 1-6 lines, one account and date)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    n = len(params["size"])
    ids = pa.array(account_ids(n))
    pls = pa.array(PRODUCT_LINES)
    weight = params["size"] / params["size"].sum()
    pl_pref = rng.dirichlet(np.full(len(PRODUCT_LINES), 0.3), size=64)  # 64 buying patterns
    schema = pa.schema(
        [
            ("account_id", pa.string()),
            ("date", pa.timestamp("us")),
            ("product_line", pa.string()),
            ("revenue", pa.float64()),
            ("cost", pa.float64()),
            ("order_id", pa.string()),
        ]
    )
    written, order_no = 0, 0
    with pq.ParquetWriter(path, schema) as writer:
        while written < lines:
            m = min(CHUNK, lines - written)
            n_orders = int(m / 2.2) + 10  # mean 2.4 lines per order: enough lines
            acc = rng.choice(n, size=n_orders, p=weight)
            lo, hi = params["start"][acc], params["end"][acc]
            day = lo + np.floor(rng.random(n_orders) * (hi - lo + 1)).astype(np.int64)
            per_order = 1 + np.minimum(rng.poisson(1.4, size=n_orders), 5)
            line_order = np.repeat(np.arange(n_orders), per_order)[:m]
            m = len(line_order)
            acc_l, day_l = acc[line_order], day[line_order]
            pattern = acc_l % len(pl_pref)
            u = rng.random(m)[:, None]
            pl_idx = (u > np.cumsum(pl_pref[pattern], axis=1)).sum(axis=1)
            pl_idx = np.minimum(pl_idx, len(PRODUCT_LINES) - 1)
            revenue = np.round(rng.lognormal(6.0, 1.1, size=m), 2)
            cost = np.round(revenue * rng.uniform(0.45, 0.9, size=m), 2)
            order_ids = [f"ORD{order_no + i:010d}" for i in range(int(line_order[-1]) + 1)]
            order_no += len(order_ids)
            dates = (DATA_START + day_l.astype("timedelta64[D]")).astype("datetime64[us]")
            batch = pa.table(
                {
                    "account_id": pc.take(ids, pa.array(acc_l)),
                    "date": pa.array(dates),
                    "product_line": pc.take(pls, pa.array(pl_idx)),
                    "revenue": revenue,
                    "cost": cost,
                    "order_id": pc.take(pa.array(order_ids), pa.array(line_order)),
                },
                schema=schema,
            )
            writer.write_table(batch, row_group_size=ROW_GROUP)
            written += m


def ensure_data(lines: int, n_accounts: int) -> tuple[Path, Path]:
    WORK.mkdir(parents=True, exist_ok=True)
    tx = WORK / f"transactions_{lines}_{n_accounts}.parquet"
    acc = WORK / f"accounts_{lines}_{n_accounts}.parquet"
    if tx.exists() and acc.exists():
        return tx, acc
    t0 = time.perf_counter()
    rng = np.random.default_rng([SEED, lines, n_accounts])
    tmp_tx, tmp_acc = tx.with_suffix(".tmp"), acc.with_suffix(".tmp")
    params = write_accounts(tmp_acc, n_accounts, rng)
    write_transactions(tmp_tx, lines, params, rng)
    tmp_acc.replace(acc)
    tmp_tx.replace(tx)
    mib = tx.stat().st_size / 2**20
    print(f"  wrote {tx.name} ({mib:.0f} MiB) in {time.perf_counter() - t0:.1f} s", flush=True)
    return tx, acc


# --------------------------------------------------------------------------- the two contenders


def import_ours() -> None:
    """Import the package and the DuckDB backend of Ibis (loaded lazily on first use)."""
    import ibis

    sys.path.insert(0, str(ROOT))
    import kam_analysis.data.features  # noqa: F401

    ibis.duckdb  # noqa: B018 - ibis imports a backend on first attribute access


def run_ours(tx: Path, acc: Path, threads: int, memory_limit: str):
    import ibis

    from kam_analysis.data.features import build_account_features

    t0 = time.perf_counter()
    con = ibis.duckdb.connect(threads=threads, memory_limit=memory_limit)
    out = build_account_features(con.read_parquet(tx), con.read_parquet(acc), AS_OF, period=PERIOD)
    return out, time.perf_counter() - t0


def start_spark(memory: str):
    """A local Spark session (not timed, like imports)."""
    sys.path.insert(0, str(ROOT))
    import ibis

    from kam_analysis.data.sources import spark_session

    session = spark_session(
        {
            "master": "local[2]",
            "spark.driver.memory": memory,
            "spark.sql.shuffle.partitions": "8",
        }
    )
    return ibis.pyspark.connect(session)


def run_spark(con, tx: Path, acc: Path):
    from kam_analysis.data.features import build_account_features

    t0 = time.perf_counter()
    out = build_account_features(
        con.read_parquet(str(tx)), con.read_parquet(str(acc)), AS_OF, period=PERIOD
    )
    return out, time.perf_counter() - t0


def features_pandas(tx_path: Path, acc_path: Path, as_of: str):
    """The straightforward pandas version, same definitions as build_account_features."""
    import pandas as pd

    as_of = pd.Timestamp(as_of)
    start_12m = as_of - pd.DateOffset(months=12) + pd.Timedelta(days=1)
    start_prev = as_of - pd.DateOffset(months=24) + pd.Timedelta(days=1)
    tx = pd.read_parquet(tx_path)
    acc = pd.read_parquet(acc_path, columns=["account_id", "since", "wallet_estimate"])

    tx = tx[tx["date"] < as_of + pd.Timedelta(days=1)].copy()
    tx["gross_profit"] = tx["revenue"] - tx["cost"]
    tx["day"] = tx["date"].dt.normalize()
    tx["week"] = (tx["day"] - pd.Timestamp("1970-01-05")).dt.days // 7
    in_12m = tx["date"] >= start_12m
    in_prev = (tx["date"] >= start_prev) & ~in_12m

    g = tx.groupby("account_id")
    last12 = tx[in_12m].groupby("account_id")
    prev12 = tx[in_prev].groupby("account_id")
    f = pd.DataFrame(
        {
            "revenue_12m": last12["revenue"].sum(),
            "gross_profit_12m": last12["gross_profit"].sum(),
            "revenue_prev_12m": prev12["revenue"].sum(),
            "gross_profit_prev_12m": prev12["gross_profit"].sum(),
            "orders_12m": last12["order_id"].nunique(),
            "orders_total": g["order_id"].nunique(),
            "revenue_total": g["revenue"].sum(),
            "first_purchase": g["date"].min(),
            "last_purchase": g["date"].max(),
            "product_lines_12m": last12["product_line"].nunique(),
            "product_lines_total": g["product_line"].nunique(),
        }
    )
    # BG/NBD summary in weeks (lifetimes convention)
    weekly = tx.groupby(["account_id", "week"])["revenue"].sum().reset_index()
    w = weekly.groupby("account_id")["week"]
    first_week = w.min()
    f["frequency"] = w.count() - 1
    f["recency"] = w.max() - first_week
    f["T"] = (as_of - pd.Timestamp("1970-01-05")).days // 7 - first_week
    repeat = weekly[weekly["week"] > weekly["account_id"].map(first_week)]
    f["monetary_value"] = repeat.groupby("account_id")["revenue"].mean()

    f = acc.set_index("account_id").join(f).reset_index()
    for col in ["revenue_12m", "revenue_prev_12m", "gross_profit_12m", "gross_profit_prev_12m"]:
        f[col] = f[col].fillna(0.0)
    f["revenue_total"] = f["revenue_total"].fillna(0.0)
    for col in ["orders_12m", "orders_total", "product_lines_12m", "product_lines_total"]:
        f[col] = f[col].fillna(0).astype("int64")
    f["margin_12m"] = f["gross_profit_12m"] / f["revenue_12m"].replace(0, float("nan"))
    prev = f["revenue_prev_12m"].replace(0, float("nan"))
    f["revenue_growth"] = (f["revenue_12m"] - prev) / prev
    gp_prev = f["gross_profit_prev_12m"].abs().replace(0, float("nan"))
    f["gross_profit_growth"] = (f["gross_profit_12m"] - f["gross_profit_prev_12m"]) / gp_prev
    f["recency_days"] = (as_of - f["last_purchase"].dt.normalize()).dt.days
    first = pd.concat([f["since"].dt.normalize(), f["first_purchase"].dt.normalize()], axis=1)
    f["tenure_days"] = (as_of - first.min(axis=1)).dt.days
    f["share_of_wallet"] = f["revenue_12m"] / f["wallet_estimate"].replace(0, float("nan"))
    return f.drop(columns="since").sort_values("account_id", ignore_index=True)


def run_pandas(tx: Path, acc: Path):
    t0 = time.perf_counter()
    out = features_pandas(tx, acc, AS_OF)
    return out, time.perf_counter() - t0


def child(args) -> None:
    """Run one contender, write its result, print wall time and peak RSS as JSON."""
    import resource

    # Imports are not timed: both contenders need pandas and pyarrow's Parquet reader.
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    if args.child == "ours":
        import_ours()
    spark = start_spark(args.spark_memory) if args.child == "spark" else None
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    if args.child == "ours":
        out, seconds = run_ours(args.tx, args.acc, args.threads, args.memory_limit)
    elif args.child == "spark":
        out, seconds = run_spark(spark, args.tx, args.acc)
    else:
        out, seconds = run_pandas(args.tx, args.acc)
    usage = resource.getrusage(resource.RUSAGE_SELF)  # ru_maxrss in KiB on Linux
    cpu = (usage.ru_utime + usage.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    if args.out is not None:
        out.to_parquet(args.out)
    result = {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mib": usage.ru_maxrss / 1024,
        "import_mib": usage0.ru_maxrss / 1024,
        "rows": len(out),
    }
    print(json.dumps(result))


# --------------------------------------------------------------------------- driver


def tree_rss_mib(proc) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    import psutil

    total = 0
    try:
        root = psutil.Process(proc.pid)
        for p in [root, *root.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
    except psutil.NoSuchProcess:
        pass
    return total / 2**20


def measure(impl: str, tx: Path, acc: Path, out: Path | None, args) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", impl]
    cmd += ["--tx", str(tx), "--acc", str(acc), "--threads", str(args.threads)]
    cmd += ["--memory-limit", args.memory_limit, "--spark-memory", args.spark_memory]
    if out is not None:
        cmd += ["--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_tree = 0.0
    while proc.poll() is None:  # sample the process tree (Spark's JVM is a child)
        peak_tree = max(peak_tree, tree_rss_mib(proc))
        time.sleep(0.05)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{impl} failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_mib"] = max(result["peak_mib"], peak_tree)
    return result


def compare(ours_path: Path, pandas_path: Path) -> dict[str, float]:
    import pandas as pd

    a = pd.read_parquet(ours_path).set_index("account_id").sort_index()
    b = pd.read_parquet(pandas_path).set_index("account_id").sort_index()
    if not a.index.equals(b.index):
        raise AssertionError("the two results have different accounts")
    diffs = {}
    for col in COMPARED:
        x, y = a[col].astype("float64"), b[col].astype("float64")
        if not (x.isna() == y.isna()).all():
            diffs[col] = float("inf")  # missing values differ
            continue
        diffs[col] = float((x - y).abs().max())
    for col in ["first_purchase", "last_purchase"]:
        same = (a[col] == b[col]) | (a[col].isna() & b[col].isna())
        diffs[col] = 0.0 if same.all() else float("inf")
    return diffs


def bench(lines: int, args) -> dict:
    n_accounts = args.accounts or default_accounts(lines)
    print(f"\n== {lines:,} lines, {n_accounts:,} accounts ==", flush=True)
    tx, acc = ensure_data(lines, n_accounts)
    results_dir = WORK / "results"
    results_dir.mkdir(exist_ok=True)
    runs: dict[str, list[dict]] = {impl: [] for impl in args.engines}
    for rep in range(args.repeat):
        for impl in args.engines:
            out = results_dir / f"{impl}_{lines}.parquet" if rep == 0 else None
            r = measure(impl, tx, acc, out, args)
            runs[impl].append(r)
            print(
                f"  run {rep + 1} {impl:7s} {r['seconds']:7.2f} s wall {r['cpu_seconds']:7.2f} s cpu "
                f"{r['peak_mib']:7.0f} MiB peak ({r['import_mib']:.0f} after imports)",
                flush=True,
            )
    keys = ("seconds", "cpu_seconds", "peak_mib", "import_mib")
    summary = {
        impl: {k: statistics.median(r[k] for r in rs) for k in keys} for impl, rs in runs.items()
    }
    worst_all = 0.0
    for other in [e for e in args.engines if e != "ours"]:
        diffs = compare(
            results_dir / f"ours_{lines}.parquet", results_dir / f"{other}_{lines}.parquet"
        )
        worst = max(diffs, key=diffs.get)
        worst_all = max(worst_all, diffs[worst])
        print(
            f"  ours vs {other}: max abs diff revenue_12m {diffs['revenue_12m']:.3g}, "
            f"orders_total {diffs['orders_total']:.3g}, "
            f"monetary_value {diffs['monetary_value']:.3g}; "
            f"largest over all {len(diffs)} compared columns: {worst} {diffs[worst]:.3g}"
        )
    return {"lines": lines, "accounts": n_accounts, **summary, "max_abs_diff": worst_all}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, nargs="+", default=[1_000_000])
    p.add_argument("--accounts", type=int, default=None, help="default: lines / 100, max 100k")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    p.add_argument("--memory-limit", default="1GB", help="DuckDB memory_limit")
    p.add_argument(
        "--engines",
        nargs="+",
        choices=["ours", "pandas", "spark"],
        default=["ours", "pandas"],
        help="contenders (ours = Ibis on DuckDB; spark needs pyspark and Java)",
    )
    p.add_argument("--spark-memory", default="4g", help="spark.driver.memory (default 4g)")
    p.add_argument("--child", choices=["ours", "pandas", "spark"], help=argparse.SUPPRESS)
    p.add_argument("--tx", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--acc", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args)
        return 0
    rows = [bench(n, args) for n in args.lines]
    print(
        f"\nmedian of {args.repeat} runs; wall/cpu = read + compute (imports excluded); "
        "memory = peak RSS of the process tree (imports included; Spark: with its JVM)"
    )
    head = f"{'lines':>11} {'accounts':>8}"
    for impl in args.engines:
        head += f" | {impl + ' s':>9} {'cpu s':>6} {'MiB':>6}"
        if impl != "ours":
            head += f" {'x time':>6} {'x mem':>5}"
    print(head + " | max diff")
    for r in rows:
        line = f"{r['lines']:>11,} {r['accounts']:>8,}"
        o = r["ours"]
        for impl in args.engines:
            x = r[impl]
            line += f" | {x['seconds']:9.2f} {x['cpu_seconds']:6.2f} {x['peak_mib']:6.0f}"
            if impl != "ours":
                line += (
                    f" {x['seconds'] / o['seconds']:5.1f}x {x['peak_mib'] / o['peak_mib']:4.1f}x"
                )
        print(line + f" | {r['max_abs_diff']:.1g}")
    print("x time / x mem: the contender's median wall time and peak memory over ours")
    return 0


if __name__ == "__main__":
    sys.exit(main())

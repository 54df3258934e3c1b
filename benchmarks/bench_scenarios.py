"""Benchmark: Monte Carlo of the account book, ours vs a per-month numpy loop.

    .venv/bin/python benchmarks/bench_scenarios.py [--accounts 5000] [--draws 10000]
        [--months 36] [--repeats 3] [--baseline-draws 500]

Workload: a generated book of ``--accounts`` accounts (log-normal revenue,
10 %/year churn, growth and volatility varying by account), ``--draws`` draws
x ``--months`` months, market factor weight 0.3.

* ``ours``: :func:`kam_analysis.scenarios.simulate_book` (one churn time per
  account and draw, annual growth knots, cache-sized blocks, 2 threads).
* ``baseline``: :func:`kam_analysis.scenarios.simulate_book_reference`, the
  straightforward loop over months that draws a churn coin and a growth
  shock per account-month (what one would write first). It runs on
  ``--baseline-draws`` draws and its time is **extrapolated linearly** to
  ``--draws`` (its cost is proportional to the number of draws).

Each run is a fresh subprocess, so its peak resident memory (``ru_maxrss``,
imports included) is its own. The script prints median wall time (compute
only: interpreter start, imports and book generation excluded), median peak
RSS, the ratio baseline / ours, and the machine load while it ran (the
machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
import numpy as np, pandas as pd
sys.path.insert(0, {root!r})
from kam_analysis import scenarios as sc

rng = np.random.default_rng(20241031)
n = {accounts}
book = pd.DataFrame({{
    "account_id": [f"A{{i:05d}}" for i in range(n)],
    "monthly_revenue": rng.lognormal(11, 1.4, n),
    "margin": rng.uniform(0.15, 0.55, n),
    "churn_prob_month": 1 - (1 - 0.10) ** (1 / 12),
    "growth_annual": rng.normal(0.05, 0.10, n).clip(-0.5, 1.0),
    "volatility_annual": rng.uniform(0.10, 0.35, n),
}})
start = time.perf_counter()
cpu0 = resource.getrusage(resource.RUSAGE_SELF)
if {which!r} == "ours":
    res = sc.simulate_book(book, months={months}, draws={draws}, seed=1, market_factor_weight=0.3)
    total = res.total_revenue
else:
    rev, _ = sc.simulate_book_reference(book, months={months}, draws={draws}, seed=1, market_factor_weight=0.3)
    total = rev.sum(axis=1)
elapsed = time.perf_counter() - start
cpu1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
print(json.dumps({{
    "seconds": elapsed,
    "cpu_seconds": cpu,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "mean_total": float(total.mean()),
    "p10": float(np.quantile(total, 0.1)),
    "p90": float(np.quantile(total, 0.9)),
}}))
"""


def run_child(which: str, accounts: int, draws: int, months: int) -> dict:
    code = CHILD.format(root=str(ROOT), accounts=accounts, draws=draws, months=months, which=which)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--draws", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-draws", type=int, default=500)
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    ours = [run_child("ours", args.accounts, args.draws, args.months) for _ in range(args.repeats)]
    base = [
        run_child("baseline", args.accounts, args.baseline_draws, args.months)
        for _ in range(args.repeats)
    ]
    load_after = os.getloadavg()[0]

    scale = args.draws / args.baseline_draws
    ours_s = statistics.median(r["seconds"] for r in ours)
    base_s = statistics.median(r["seconds"] for r in base)
    base_full = base_s * scale
    ours_mem = statistics.median(r["peak_rss_mib"] for r in ours)
    base_mem = statistics.median(r["peak_rss_mib"] for r in base)
    print(
        f"workload: {args.accounts} accounts x {args.months} months x {args.draws} draws, "
        f"{os.cpu_count()} cores, load average {load_before:.1f} -> {load_after:.1f}"
    )
    print(f"{'':10s} {'median s':>10s} {'peak RSS MiB':>13s}   runs (s)")
    print(
        f"{'ours':10s} {ours_s:10.2f} {ours_mem:13.0f}   "
        + ", ".join(f"{r['seconds']:.2f}" for r in ours)
    )
    print(
        f"{'baseline':10s} {base_full:10.2f} {base_mem:13.0f}   "
        f"measured on {args.baseline_draws} draws: "
        + ", ".join(f"{r['seconds']:.2f}" for r in base)
        + f" s, x{scale:g} (linear extrapolation)"
    )
    ours_cpu = statistics.median(r["cpu_seconds"] for r in ours)
    base_cpu = statistics.median(r["cpu_seconds"] for r in base) * scale
    print(f"ratio baseline / ours: {base_full / ours_s:.1f}x (wall)")
    print(
        f"CPU seconds (user + sys, all threads): ours {ours_cpu:.2f}, baseline {base_cpu:.2f} "
        "(extrapolated); on a loaded machine wall time exceeds CPU time / threads"
    )
    print(
        "check (mean total revenue, ours vs baseline): "
        f"{statistics.median(r['mean_total'] for r in ours):,.0f} vs "
        f"{statistics.median(r['mean_total'] for r in base):,.0f}"
    )
    target_ok = ours_s < 10 and ours_mem < 2048
    print(f"target < 10 s and < 2 GiB: {'met' if target_ok else 'NOT met'}")


if __name__ == "__main__":
    main()

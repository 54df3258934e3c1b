"""Benchmark: a report run computes the portfolio once (issue 16), against every notebook alone.

    .venv/bin/python benchmarks/bench_run.py [--accounts 2000] [--seed 0] [--jobs 2]
        [--plans 1 10] [--data DIR]

Runs ``kam run`` on one book (the demo by default: 2,000 accounts, seed 0),
each a fresh process of the command line, for every combination of

* run state on (the default: features, scored book and LTV fit computed once
  before the notebooks, :mod:`kam_analysis.state`) and off
  (``--no-run-state``: every notebook computes them itself, as before);
* the five portfolio reports with 1 and with 10 account plans.

It prints wall time, CPU time and the peak RSS of the process tree for each
run, the ratio of 10 plans to 1 plan (the target: at most 2x), and the time
per notebook from the manifest. The book is generated under
``benchmarks/.work/run/`` unless ``--data`` is given; reports go to a
temporary folder that is removed afterwards. Compare ratios from one
invocation: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from bench_scale import KAM, PYTHON, ROOT, run_step


def _run(data: Path, plans: int, jobs: int, state: bool, work: Path) -> tuple[dict, dict]:
    reports = Path(tempfile.mkdtemp(prefix="kam-bench-run-"))
    try:
        argv = [KAM, "run", "--data", str(data), "--reports-dir", str(reports)]
        argv += ["--jobs", str(jobs), "--account-plans", str(plans), "--label", "bench"]
        if not state:
            argv.append("--no-run-state")
        name = f"{'state' if state else 'no-state'} {plans:>2} plan(s)"
        result = run_step(name, argv, work / f"run_{int(state)}_{plans}.log")
        found = sorted(reports.glob("*/manifest.json"))
        manifest = json.loads(found[-1].read_text()) if found else {}
        return result, manifest
    finally:
        shutil.rmtree(reports, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--plans", type=int, nargs=2, default=(1, 10), metavar=("FEW", "MANY"))
    ap.add_argument("--data", type=Path, help="dataset folder (default: a generated book)")
    args = ap.parse_args()

    work = ROOT / "benchmarks" / ".work" / "run"
    work.mkdir(parents=True, exist_ok=True)
    data = args.data or work / f"book_{args.accounts}_{args.seed}"
    if not (data / "transactions.parquet").exists():
        synth = (
            "from kam_analysis.synthetic import generate_dataset; "
            f"generate_dataset({str(data)!r}, n_accounts={args.accounts}, seed={args.seed})"
        )
        run_step("synth", [PYTHON, "-c", synth], work / "synth.log")
    rows = []
    for state in (True, False):
        for plans in args.plans:
            result, manifest = _run(data, plans, args.jobs, state, work)
            rows.append((state, plans, result, manifest))

    print(f"\nbook {data}, --jobs {args.jobs}")
    print(f"{'run':<22} {'wall s':>8} {'cpu s':>8} {'tree MiB':>9}  ok")
    for _, _, r, _ in rows:
        ok = "yes" if r["code"] == 0 else f"exit {r['code']}"
        print(
            f"{r['step']:<22} {r['wall']:>8.1f} {r['cpu']:>8.1f} {r['tree_peak_mib']:>9.0f}  {ok}"
        )
    wall = {(s, p): r["wall"] for s, p, r, _ in rows}
    few, many = args.plans
    for state in (True, False):
        label = "state" if state else "no-state"
        ratio = wall[(state, many)] / wall[(state, few)]
        print(f"{label}: {many} plans / {few} plan(s) = {ratio:.2f}x wall")
    print(
        f"no-state / state with {many} plans = {wall[(False, many)] / wall[(True, many)]:.2f}x wall"
    )
    for state, plans, _, manifest in rows:
        if plans != many or not manifest:
            continue
        print(f"\n{'state' if state else 'no-state'}, {plans} plans: seconds per notebook")
        st = manifest.get("state") or {}
        if st.get("status") == "ok":
            print(f"{'(run state)':<40} {float(st.get('seconds') or 0):>7.1f}")
        for nb in manifest.get("notebooks", []):
            print(f"{nb['name']:<40} {float(nb['duration_s']):>7.1f}  {nb['status']}")
    return 0 if all(r["code"] == 0 for _, _, r, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

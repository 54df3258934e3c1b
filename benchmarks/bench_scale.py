"""Benchmark: the whole command-line workflow on a 100k-account book.

    .venv/bin/python benchmarks/bench_scale.py [--accounts 100000]
        [--lines-per-account-month 7] [--data DIR] [--jobs 2] [--skip-run]

Steps, each a fresh process of the ``kam`` command line (as a user runs it):

1. ``synth``    generate the book with :func:`kam_analysis.synthetic.generate_dataset`
                (skipped when ``--data`` already holds a dataset);
2. ``validate`` ``kam validate DIR``;
3. ``features`` ``kam features DIR``;
4. ``run``      ``kam run --data DIR --reports-dir <tmp> --jobs N`` (every notebook
                report plus the account plans; left out with ``--skip-run``).

For every step the script prints the wall time, the CPU time of the step's
processes, the peak RSS of its largest process (``ru_maxrss`` of the
children), and the peak of the whole process tree sampled every 0.2 s as
two sums over its processes: RSS (psutil), and PSS (``/proc/<pid>/smaps_rollup``,
Linux), which counts a page shared by the state builder and its forked
LTV child once instead of twice. ``kam run`` executes notebooks in parallel
kernels, whose memory adds up. After ``run`` it prints the run state's build time and the
duration of each notebook from the run's ``manifest.json``. Generated data goes
to ``benchmarks/.work/`` (git-ignored) unless ``--data`` says otherwise; the
reports go to a temporary folder that is removed afterwards.

Default density (7 lines per account-month) gives about 24M transaction
lines at 100k accounts; ``--lines-per-account-month 14`` about 49M (the
out-of-core check of benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
KAM = str(Path(PYTHON).with_name("kam"))

# Runs one step in a fresh process and reports its children's rusage as JSON.
WRAPPER = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
code = subprocess.call(sys.argv[2:], stdout=open(sys.argv[1], "w"), stderr=subprocess.STDOUT)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": code, "wall": wall, "cpu": ru.ru_utime + ru.ru_stime,
                  "maxrss_mib": ru.ru_maxrss / 1024}))
"""


def _pss(pid: int) -> int:
    """Proportional set size (bytes) of a process: shared pages split among their users."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _tree_memory(proc: psutil.Process) -> tuple[int, int]:
    """Sum of RSS and sum of PSS over ``proc`` and its descendants (bytes).

    The RSS sum counts a page shared by a parent and its forked child twice;
    the PSS sum counts every page once (Linux; 0 where smaps_rollup is missing).
    """
    rss = pss = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            rss += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        pss += _pss(p.pid)
    return rss, pss


def run_step(name: str, argv: list[str], log: Path) -> dict:
    """Run ``argv`` through the wrapper; sample the tree RSS while it runs."""
    proc = subprocess.Popen(
        [PYTHON, "-c", WRAPPER, str(log), *argv], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    peak = peak_pss = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_pss
        ps = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                rss, pss = _tree_memory(ps)
            except psutil.NoSuchProcess:
                return
            peak, peak_pss = max(peak, rss), max(peak_pss, pss)
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    stop.set()
    sampler.join()
    result = json.loads(out.strip().splitlines()[-1])
    result["tree_peak_mib"] = peak / 2**20
    result["tree_pss_mib"] = peak_pss / 2**20
    result["step"] = name
    if result["code"] != 0:
        print(f"step {name} failed (exit {result['code']}); log: {log}", file=sys.stderr)
        print(log.read_text()[-3000:], file=sys.stderr)
    return result


def _rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(folder / "transactions.parquet").metadata.num_rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--lines-per-account-month", type=float, default=7.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", type=Path, help="dataset folder (generated when it has none)")
    ap.add_argument("--jobs", type=int, default=2, help="kam run --jobs (default 2)")
    ap.add_argument("--skip-run", action="store_true", help="leave out kam run")
    args = ap.parse_args()

    work = ROOT / "benchmarks" / ".work" / "scale"
    work.mkdir(parents=True, exist_ok=True)
    data = args.data or work / f"book_{args.accounts}_{args.lines_per_account_month:g}"
    results = []
    if not (data / "transactions.parquet").exists():
        synth = (
            "import sys; from kam_analysis.synthetic import generate_dataset; "
            f"generate_dataset({str(data)!r}, n_accounts={args.accounts}, seed={args.seed}, "
            f"lines_per_account_month={args.lines_per_account_month})"
        )
        results.append(run_step("synth", [PYTHON, "-c", synth], work / "synth.log"))
    lines = _rows(data)
    print(f"dataset {data}: {lines:,} transaction lines", flush=True)
    results.append(run_step("validate", [KAM, "validate", str(data)], work / "validate.log"))
    results.append(run_step("features", [KAM, "features", str(data)], work / "features.log"))
    manifest = None
    if not args.skip_run:
        reports = Path(tempfile.mkdtemp(prefix="kam-bench-reports-"))
        try:
            argv = [KAM, "run", "--data", str(data), "--reports-dir", str(reports)]
            argv += ["--jobs", str(args.jobs), "--label", "bench"]
            results.append(run_step("run", argv, work / "run.log"))
            found = sorted(reports.glob("*/manifest.json"))
            manifest = json.loads(found[-1].read_text()) if found else None
        finally:
            shutil.rmtree(reports, ignore_errors=True)

    load = os.getloadavg()
    print(f"\n{lines:,} lines; load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(
        f"{'step':<10} {'wall s':>8} {'cpu s':>8} {'max proc MiB':>13} {'tree MiB':>9} "
        f"{'tree PSS MiB':>13}  ok"
    )
    for r in results:
        ok = "yes" if r["code"] == 0 else f"exit {r['code']}"
        print(
            f"{r['step']:<10} {r['wall']:>8.1f} {r['cpu']:>8.1f} {r['maxrss_mib']:>13.0f} "
            f"{r['tree_peak_mib']:>9.0f} {r['tree_pss_mib']:>13.0f}  {ok}"
        )
    if manifest:
        state = manifest.get("state") or {}
        print(f"\nrun state: {state.get('status')}, built in {state.get('seconds')} s")
        print("\nnotebook                          seconds  status")
        for nb in manifest.get("notebooks", []):
            secs = nb.get("duration_s", nb.get("seconds", float("nan")))
            name = nb.get("output") or nb.get("name")
            print(f"{str(name):<33} {float(secs):>7.1f}  {nb.get('status')}")
    return 0 if all(r["code"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

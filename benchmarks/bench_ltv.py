"""Benchmark the LTV models against lifetimes (and PyMC-Marketing MAP where available).

One command, from the project root::

    .venv/bin/python benchmarks/bench_ltv.py

It creates the peers' virtualenvs on first use (``benchmarks/.venv-lifetimes``:
lifetimes 0.11.3 with the numpy/pandas/scipy it still works with;
``benchmarks/.venv-pymc``: pymc-marketing, skipped with a message if it does
not install), writes the datasets to ``benchmarks/.work/`` (CDNOW from
``tests/data`` and seeded synthetic BG/NBD + Gamma-Gamma samples of 100k and
1M customers), fits BG/NBD and Gamma-Gamma with every tool in the same run,
and prints median wall-clock seconds, the speed ratio (peer / ours) and the
largest relative difference between the parameter estimates. Results are
also written to ``benchmarks/results/ltv.json``.

BLAS is pinned to one thread for every tool (the script re-executes itself
with ``OPENBLAS_NUM_THREADS=1``; the peers' subprocesses inherit it): on a
small shared machine OpenBLAS thread wake-ups inside the optimisers' tiny
matrix operations otherwise dominate and make timings irreproducible.

Options: ``--sizes 100000 1000000`` (synthetic sizes), ``--repeats 3``,
``--no-pymc``, ``--no-lifetimes``, ``--keep-blas-threads``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __name__ == "__main__" and "--keep-blas-threads" not in sys.argv:
    # One BLAS thread for every tool (the peers' subprocesses inherit this): on a
    # small shared machine, OpenBLAS thread wake-ups in the optimisers' tiny
    # matrix calls cost milliseconds each and swamp the measurement.
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        os.environ.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        os.execv(sys.executable, [sys.executable, *sys.argv])

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
WORK = BENCH / ".work"
RESULTS = BENCH / "results"
sys.path.insert(0, str(ROOT))

from kam_analysis.ltv import BetaGeo, GammaGamma, simulate_beta_geo  # noqa: E402

# CDNOW estimates (Fader, Hardie & Lee 2005) used as the synthetic truth
BG_TRUTH = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GG_TRUTH = {"p": 6.25, "q": 3.74, "v": 15.44}

PEERS = {
    "lifetimes": {
        "venv": BENCH / ".venv-lifetimes",
        # lifetimes 0.11.3 (2020, unmaintained) needs pandas < 2 and an older scipy
        "packages": ["lifetimes==0.11.3", "numpy<2", "pandas<2", "scipy<1.12"],
        "check": "import lifetimes",
        "timeout": 900,
    },
    "pymc": {
        "venv": BENCH / ".venv-pymc",
        "packages": ["pymc-marketing"],
        "check": "import pymc_marketing.clv",
        "timeout": 1200,
    },
}

# Worker run inside a peer's venv: fit one model on one .npz dataset `repeats`
# times, print JSON with the wall-clock seconds and the estimates.
LIFETIMES_WORKER = r"""
import json, sys, time, warnings
import numpy as np
warnings.filterwarnings("ignore")
from lifetimes import BetaGeoFitter, GammaGammaFitter

path, model, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = np.load(path)
x, tx, T, m = d["frequency"], d["recency"], d["T"], d["monetary_value"]
rep = x > 0

def fit(k=None):
    s = slice(None, k)
    if model == "bgnbd":
        return BetaGeoFitter().fit(x[s], tx[s], T[s])
    return GammaGammaFitter().fit(x[rep][s], m[rep][s])

fit(2000)  # warm-up on a small slice (autograd tracing, imports)
times, f = [], None
for _ in range(repeats):
    t0 = time.perf_counter()
    f = fit()
    times.append(time.perf_counter() - t0)
print(json.dumps({"times": times, "params": {k: float(v) for k, v in f.params_.items()}}))
"""

PYMC_WORKER = r"""
import json, sys, time, warnings
import numpy as np, pandas as pd
warnings.filterwarnings("ignore")
from pymc_marketing import clv
try:
    from pymc_extras.prior import Prior
except ImportError:
    from pymc_marketing.prior import Prior

path, model, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = np.load(path)
x, tx, T, m = d["frequency"], d["recency"], d["T"], d["monetary_value"]
rep = x > 0
flat = lambda names: {n: Prior("HalfFlat") for n in names}

def fit():
    if model == "bgnbd":
        data = pd.DataFrame({"customer_id": np.arange(x.size), "frequency": x, "recency": tx, "T": T})
        mdl = clv.BetaGeoModel(data=data, model_config=flat(["r", "alpha", "a", "b"]))
        names = ["r", "alpha", "a", "b"]
    else:
        data = pd.DataFrame({"customer_id": np.arange(int(rep.sum())), "frequency": x[rep],
                             "monetary_value": m[rep]})
        mdl = clv.GammaGammaModel(data=data, model_config=flat(["p", "q", "v"]))
        names = ["p", "q", "v"]
    mdl.fit(method="map", progressbar=False)
    post = mdl.idata.posterior
    return {n: float(post[n].values.ravel()[0]) for n in names}

times, params = [], None
for _ in range(repeats):
    t0 = time.perf_counter()
    params = fit()
    times.append(time.perf_counter() - t0)
print(json.dumps({"times": times, "params": params}))
"""


def log(msg: str) -> None:
    print(msg, flush=True)


def ensure_venv(name: str) -> Path | None:
    """Return the peer venv's python, creating the venv on first use; None if it cannot."""
    spec = PEERS[name]
    venv = spec["venv"]
    python = venv / "bin" / "python"
    if python.exists() and _imports(python, spec["check"]):
        return python
    log(f"[setup] creating {venv} with {' '.join(spec['packages'])} ...")
    base = getattr(sys, "_base_executable", sys.executable)
    try:
        if not python.exists():
            subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *spec["packages"]],
            check=True,
            timeout=spec["timeout"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        log(f"[setup] {name}: install failed or timed out ({type(exc).__name__}); skipping {name}")
        return None
    if not _imports(python, spec["check"]):
        log(f"[setup] {name}: installed but `{spec['check']}` fails; skipping {name}")
        return None
    return python


def _imports(python: Path, statement: str) -> bool:
    try:
        res = subprocess.run(
            [str(python), "-c", statement], capture_output=True, timeout=300, check=False
        )
    except subprocess.TimeoutExpired:
        return False
    return res.returncode == 0


def make_datasets(sizes: list[int]) -> dict[str, Path]:
    """CDNOW plus seeded synthetic BG/NBD (+ Gamma-Gamma spend) samples, as .npz."""
    WORK.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    cdnow = pd.read_csv(ROOT / "tests" / "data" / "cdnow_summary.csv")
    paths["CDNOW"] = WORK / "cdnow.npz"
    np.savez(
        paths["CDNOW"],
        frequency=cdnow["frequency"].to_numpy(float),
        recency=cdnow["recency"].to_numpy(float),
        T=cdnow["T"].to_numpy(float),
        monetary_value=cdnow["monetary_value"].to_numpy(float),
    )
    for n in sizes:
        rng = np.random.default_rng(20_261_129 + n)
        T = rng.uniform(26.0, 52.0, size=n)  # acquisition spread over half a year, weeks
        sim = simulate_beta_geo(n, T=T, seed=rng, **BG_TRUTH)
        x = sim["frequency"].to_numpy(float)
        nu = rng.gamma(GG_TRUTH["q"], 1.0 / GG_TRUTH["v"], size=n)
        spend = np.zeros(n)
        rep = x > 0
        spend[rep] = rng.gamma(GG_TRUTH["p"] * x[rep], 1.0 / (nu[rep] * x[rep]))
        label = f"synthetic {n // 1000}k" if n < 1_000_000 else f"synthetic {n // 1_000_000}M"
        paths[label] = WORK / f"synthetic_{n}.npz"
        np.savez(
            paths[label],
            frequency=x,
            recency=sim["recency"].to_numpy(float),
            T=sim["T"].to_numpy(float),
            monetary_value=spend,
        )
    return paths


def fit_ours(path: Path, model: str, repeats: int) -> dict:
    d = np.load(path)
    x, tx, T, m = d["frequency"], d["recency"], d["T"], d["monetary_value"]
    rep = x > 0

    def fit():
        if model == "bgnbd":
            return BetaGeo(time_unit="week").fit(x, tx, T)
        return GammaGamma().fit(x[rep], m[rep])

    times, fitted = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        fitted = fit()
        times.append(time.perf_counter() - t0)
    return {"times": times, "params": dict(fitted.params_)}


def fit_peer(python: Path, worker: str, path: Path, model: str, repeats: int) -> dict | None:
    script = WORK / f"worker_{python.parent.parent.name.lstrip('.')}.py"
    script.write_text(worker)
    try:
        res = subprocess.run(
            [str(python), str(script), str(path), model, str(repeats)],
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    except subprocess.TimeoutExpired:
        log(f"    peer timed out on {path.name} / {model}")
        return None
    if res.returncode != 0:
        tail = (res.stderr or "").strip().splitlines()[-3:]
        log(f"    peer failed on {path.name} / {model}: {' | '.join(tail)}")
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


def max_rel_diff(ours: dict, peer: dict) -> float:
    if {"v"} <= set(ours) and "v" not in peer:
        peer = {**peer, "v": peer.get("gamma", np.nan)}
    return max(abs(ours[k] - peer[k]) / abs(peer[k]) for k in ours)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-lifetimes", action="store_true")
    parser.add_argument("--no-pymc", action="store_true")
    parser.add_argument(
        "--keep-blas-threads",
        action="store_true",
        help="do not pin BLAS to one thread (default: OPENBLAS_NUM_THREADS=1 for all tools)",
    )
    args = parser.parse_args()
    repeats = max(3, args.repeats)

    log(
        f"machine: {platform.platform()}, {os.cpu_count()} cores, "
        f"load average at start {os.getloadavg()[0]:.2f}; python {platform.python_version()}; "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )
    lifetimes_py = None if args.no_lifetimes else ensure_venv("lifetimes")
    pymc_py = None if args.no_pymc else ensure_venv("pymc")
    datasets = make_datasets(args.sizes)
    fit_ours(datasets["CDNOW"], "bgnbd", 1)  # warm-up: imports, scipy special functions

    rows = []
    for label, path in datasets.items():
        n = int(np.load(path)["frequency"].size)
        for model, name in (("bgnbd", "BG/NBD"), ("gg", "Gamma-Gamma")):
            log(f"[run] {label} / {name} ...")
            ours = fit_ours(path, model, repeats)
            row = {
                "dataset": label,
                "n": n,
                "model": name,
                "ours_s": statistics.median(ours["times"]),
                "ours_params": ours["params"],
            }
            if lifetimes_py is not None:
                lt = fit_peer(lifetimes_py, LIFETIMES_WORKER, path, model, repeats)
                if lt is not None:
                    row["lifetimes_s"] = statistics.median(lt["times"])
                    row["lifetimes_params"] = lt["params"]
                    row["lifetimes_ratio"] = row["lifetimes_s"] / row["ours_s"]
                    row["lifetimes_max_rel_diff"] = max_rel_diff(ours["params"], lt["params"])
            if pymc_py is not None:
                pm = fit_peer(pymc_py, PYMC_WORKER, path, model, 1)
                if pm is not None:
                    row["pymc_s"] = statistics.median(pm["times"])
                    row["pymc_params"] = pm["params"]
                    row["pymc_ratio"] = row["pymc_s"] / row["ours_s"]
                    row["pymc_max_rel_diff"] = max_rel_diff(ours["params"], pm["params"])
            rows.append(row)

    print_table(rows, repeats)
    check_goals(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "ltv.json"
    out.write_text(json.dumps({"repeats": repeats, "rows": rows}, indent=2))
    log(f"\nresults written to {out.relative_to(ROOT)}")
    return 0


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def print_table(rows: list[dict], repeats: int) -> None:
    log(
        f"\nMedian wall-clock seconds over {repeats} fits (PyMC-Marketing MAP: one fit, model build and compilation included); "
        "ratio = peer / ours; diff = max relative difference of the estimates\n"
    )
    header = (
        "| dataset | n | model | ours s | lifetimes s | ratio | diff | PyMC MAP s | ratio | diff |"
    )
    log(header)
    log("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        log(
            f"| {r['dataset']} | {r['n']:,} | {r['model']} | {r['ours_s']:.3f} | "
            f"{_fmt(r.get('lifetimes_s'), '.3f')} | {_fmt(r.get('lifetimes_ratio'), '.1f')}x | "
            f"{_fmt(r.get('lifetimes_max_rel_diff'), '.1e')} | {_fmt(r.get('pymc_s'), '.2f')} | "
            f"{_fmt(r.get('pymc_ratio'), '.1f')}x | {_fmt(r.get('pymc_max_rel_diff'), '.1e')} |"
        )


def check_goals(rows: list[dict]) -> None:
    log("\nGoals:")
    big = [r for r in rows if r["n"] >= 100_000]
    for r in big:
        if "lifetimes_ratio" in r:
            ok = r["lifetimes_ratio"] >= 8
            log(
                f"  [{'PASS' if ok else 'FAIL'}] >= 8x faster than lifetimes: {r['dataset']} "
                f"{r['model']} {r['lifetimes_ratio']:.1f}x"
            )
    for r in rows:
        if "lifetimes_max_rel_diff" in r:
            ok = r["lifetimes_max_rel_diff"] <= 1e-3
            log(
                f"  [{'PASS' if ok else 'FAIL'}] estimates equal to lifetimes (rel 1e-3): "
                f"{r['dataset']} {r['model']} {r['lifetimes_max_rel_diff']:.1e}"
            )
    for r in rows:
        if r["n"] >= 1_000_000 and r["model"] == "BG/NBD":
            ok = r["ours_s"] < 1.5
            log(
                f"  [{'PASS' if ok else 'FAIL'}] 1M-customer BG/NBD fit < 1.5 s: {r['ours_s']:.3f} s"
            )


if __name__ == "__main__":
    raise SystemExit(main())

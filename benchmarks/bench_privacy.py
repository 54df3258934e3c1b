"""Benchmark the personal-data scan of a report run against a search for every value.

One command, from the project root::

    .venv/bin/python benchmarks/bench_privacy.py --data DATA --run RUN_FOLDER

``DATA`` is a dataset folder whose stakeholder names and e-mail addresses are
the values (as ``kam run`` collects them); ``RUN_FOLDER`` is a run's output
folder (a published ``reports/<run-id>`` or a copy of a run's build folder).
Without arguments it generates a 100,000-account demo book under
``benchmarks/.work/privacy`` and writes fifteen report-sized pages with a few
of its names in them.

Contenders, each timed ``--repeat`` times (medians printed):

* ``ours``: :func:`kam_analysis.pipeline.privacy.find_personal_data`, which
  looks the page's words and character pairs up in an index of the values
  and searches only for the values that can occur;
* ``every value``: the same normalisation, then a substring search (and the
  whole-word check) for every value in every file, as the scan did before.

Both must report the same hits; the script checks it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kam_analysis.data import open_dataset  # noqa: E402
from kam_analysis.pipeline.privacy import (  # noqa: E402
    _TEXT_SUFFIXES,
    _mask,
    _scan_text,
    _whole_word,
    find_personal_data,
    normalise_for_scan,
)

WORK = ROOT / "benchmarks" / ".work" / "privacy"


def search_every_value(folder: Path, values: list[str]) -> list[tuple[str, str]]:
    """The plain scan: every value searched in every file."""
    needles = {}
    for raw in values:
        value = str(raw).strip()
        form = normalise_for_scan(value).strip()
        if len(form) >= 2:
            is_word = form.isascii() and form[:1].isalnum() and form[-1:].isalnum()
            needles[value] = (form, _whole_word(form) if is_word else None)
    hits = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in _TEXT_SUFFIXES:
            continue
        text = _scan_text(path)
        for value, (form, pattern) in needles.items():
            if form in text and (pattern is None or pattern.search(text)):
                hits.append((path.relative_to(folder).as_posix(), _mask(value)))
    return hits


def personal_values(data: Path) -> list[str]:
    """Stakeholder names and e-mails, as ``kam run`` collects them."""
    frame = open_dataset(data).to_pandas("stakeholders")
    values: list[str] = []
    for column in ("name", "email"):
        if column in frame.columns:
            values.extend(str(v) for v in frame[column].dropna().unique())
    return values


def default_inputs() -> tuple[Path, Path]:
    """A generated 100k-account book and fifteen pages of about 1 MB of table text."""
    from kam_analysis.synthetic import generate_dataset

    data = WORK / "data"
    if not (data / "stakeholders.parquet").exists():
        generate_dataset(data, n_accounts=100_000, seed=0)
    pages = WORK / "run"
    pages.mkdir(parents=True, exist_ok=True)
    names = personal_values(data)[:3]
    row = "<tr><td>C{0:06d}</td><td>Account {0}</td><td>{1:,.0f}</td><td>executive</td></tr>"
    for k in range(15):
        body = "".join(row.format(i, i * 1234.5) for i in range(k * 1000, k * 1000 + 12_000))
        leak = f"<p>{names[k % len(names)]}</p>" if k % 5 == 0 else ""
        (pages / f"page{k:02d}.html").write_text(
            f"<html><body><table>{body}</table>{leak}</body></html>", encoding="utf-8"
        )
    return data, pages


def timed(fn, *args, repeat: int) -> tuple[float, object]:
    seconds, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args)
        seconds.append(time.perf_counter() - t0)
    return statistics.median(seconds), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="dataset folder (stakeholder values)")
    parser.add_argument("--run", type=Path, help="a run's output folder to scan")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if (args.data is None) != (args.run is None):
        parser.error("give both --data and --run, or neither")
    data, run = (args.data, args.run) if args.data else default_inputs()
    values = personal_values(data)
    files = [p for p in run.rglob("*") if p.is_file() and p.suffix.lower() in _TEXT_SUFFIXES]
    size = sum(p.stat().st_size for p in files) / 2**20
    print(f"{len(values):,} values; {len(files)} files, {size:,.0f} MiB, in {run}")
    ours_s, ours = timed(find_personal_data, run, values, repeat=args.repeat)
    plain_s, plain = timed(search_every_value, run, values, repeat=args.repeat)
    if ours != plain:
        print(f"DIFFERENT HITS: ours {ours[:5]} against {plain[:5]}")
        return 1
    print("| scan | median s | hits |")
    print("|---|---:|---:|")
    print(f"| ours (index, then search) | {ours_s:.2f} | {len(ours)} |")
    print(f"| every value searched | {plain_s:.2f} | {len(plain)} |")
    print(f"speed-up: {plain_s / ours_s:.0f}x, same hits")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

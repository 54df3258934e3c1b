"""Files of a dataset folder: finding them, and reading text exports as they come.

Real exports are CSV, TSV or TXT in UTF-8, CP932 (Japanese Excel) or
cp1252 (European Excel), delimited by commas, semicolons, tabs or runs of
blanks, sometimes without a header row. This module works out how a file
is written, strictly: what it cannot tell for certain it refuses with a
message saying which setting of ``[data]`` decides it.

* Encoding (:func:`detect_encoding`): a byte-order mark means UTF-8. A
  file that decodes as UTF-8 is UTF-8. A file holding valid multi-byte
  UTF-8 and an invalid byte is UTF-8 with a stray byte: an error at that
  byte (line and offset), never a silent switch to another code page.
  Otherwise CP932 and cp1252 are tried strictly, and the one whose text
  is plausible (Japanese runs for CP932, accented Latin letters and
  currency signs inside words and amounts for cp1252) wins; when both
  are plausible the file is refused and ``[data] encoding`` decides.
* Delimiter (:func:`detect_delimiter`): among ``,`` ``;`` tab ``|`` and
  whitespace runs, the one splitting the first lines into the same number
  (more than one) of fields.
* Header: a first line whose fields all look like numbers or dates is data,
  not column names; ``[data.column_names]`` names the columns then.

DuckDB reads UTF-8 with a single-character delimiter only, so other files
are converted once into ``<dataset>/_derived/.cache`` (the original is
never touched). A converted copy is keyed by the source file's
content (SHA-256), the reading options and :data:`CONVERTER_VERSION`, and
rebuilt when the copy itself was changed after it was written.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import json
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kam_analysis.core.errors import InputError
from kam_analysis.core.schemas import REQUIRED_TABLES, TABLE_MODELS
from kam_analysis.data.settings import DELIMITERS, DataSettings

__all__ = [
    "CONVERTER_VERSION",
    "FORMATS",
    "TEXT_FORMATS",
    "EncodingError",
    "FileFormatError",
    "SourceFile",
    "detect_delimiter",
    "detect_encoding",
    "find_table_files",
    "prepare_source",
]

TEXT_FORMATS = (".csv", ".tsv", ".txt")
FORMATS = (*TEXT_FORMATS, ".parquet", ".xlsx")
CONVERTER_VERSION = 2
"""Bumped whenever a converted copy would be written differently."""

ROW = "__row"
_SAMPLE_BYTES = 1 << 16
_SAMPLE_LINES = 50
_MAX_NON_ASCII = 20_000


class FileFormatError(InputError, ValueError):
    """A file cannot be read as configured or detected.

    ``rule`` is the reading rule that failed (shown in the validation report).
    """

    def __init__(self, message: str, rule: str = "readable table"):
        super().__init__(message)
        self.rule = rule


class EncodingError(FileFormatError):
    """The text encoding of a file is not recognised, or a byte is invalid in it."""

    def __init__(self, message: str, *, offset: int | None = None, line: int | None = None):
        super().__init__(message, rule="text encoding")
        self.offset = offset
        self.line = line


@dataclass(frozen=True)
class SourceFile:
    """One table's file, and what the engine actually reads."""

    table: str
    path: Path
    format: str
    """``csv`` (any delimited text), ``parquet``, ``xlsx``, ``engine`` or ``derived``."""
    read_path: Path
    encoding: str | None
    line_offset: int
    line_label: str
    delimiter: str | None = None
    """The delimiter the engine reads (``,`` for converted whitespace files)."""
    detected_delimiter: str | None = None
    """The delimiter of the original file (``whitespace`` for runs of blanks)."""
    header: bool = True
    column_names: tuple[str, ...] | None = None


# --------------------------------------------------------------------------- finding files


def find_table_files(folder: Path, settings: DataSettings) -> tuple[dict[str, Path], list[dict]]:
    """Locate each contract table's file in ``folder``.

    Returns
    -------
    files : dict
        Table name -> file path, for the tables found.
    problems : list of dict
        ``table``, ``file``, ``rule``, ``message`` of every file problem
        (a configured file missing, several files for one table). A missing
        required table is not a problem here: the caller decides (the
        accounts table can be derived from the transactions).
    """
    files: dict[str, Path] = {}
    problems: list[dict] = []
    for table in TABLE_MODELS:
        if table in settings.files:
            path = folder / settings.files[table]
            if not path.is_file():
                problems.append(
                    {
                        "table": table,
                        "file": path.name,
                        "rule": "file exists",
                        "message": f"file configured in [data.files] not found in {folder}",
                    }
                )
                continue
            candidates = [path]
        else:
            candidates = [
                folder / f"{table}{ext}" for ext in FORMATS if (folder / f"{table}{ext}").is_file()
            ]
        if len(candidates) > 1:
            problems.append(
                {
                    "table": table,
                    "file": None,
                    "rule": "one file per table",
                    "message": "several files for one table: "
                    + ", ".join(p.name for p in candidates)
                    + " (keep one, or name it in [data.files])",
                }
            )
        elif candidates:
            files[table] = candidates[0]
    return files, problems


def expected_names(table: str) -> str:
    """``transactions.csv, .tsv, .txt, .parquet or .xlsx`` for messages."""
    return f"{table}.csv, .tsv, .txt, .parquet or .xlsx"


# --------------------------------------------------------------------------- encoding


def _line_of(path: Path, offset: int) -> int:
    line = 1
    done = 0
    with open(path, "rb") as fh:
        while done < offset and (chunk := fh.read(min(1 << 20, offset - done))):
            line += chunk.count(b"\n")
            done += len(chunk)
    return line


def _first_bad_byte(path: Path, encoding: str) -> int | None:
    """File offset of the first byte that does not decode (streamed); None if the file is clean."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(1 << 20)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                # err.object is the bytes still pending from the last chunk + this chunk
                return offset - (len(err.object) - len(chunk)) + err.start
            if not chunk:
                return None
            offset += len(chunk)


_NOT_MULTIBYTE = re.compile(r"[\x00-\x7f\udc80-\udcff]+")
_INVALID = re.compile(r"[\udc80-\udcff]")
_EVIDENCE_BYTES = 64 << 20


def _utf8_evidence(path: Path) -> tuple[int, int]:
    """Valid multi-byte UTF-8 characters and invalid bytes in (the first 64 MB of) the file."""
    valid = invalid = 0
    with open(path, "rb") as fh:
        data = fh.read(_EVIDENCE_BYTES)
    text = data.decode("utf-8", errors="surrogateescape")
    valid = len(_NOT_MULTIBYTE.sub("", text))
    invalid = len(_INVALID.findall(text))
    return valid, invalid


_JAPANESE_RANGES = (
    (0x3000, 0x303F),  # CJK punctuation 、。「」
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x3200, 0x32FF),  # ㈱
    (0x2460, 0x24FF),  # ①
    (0x4E00, 0x9FFF),  # kanji
    (0xF900, 0xFAFF),  # compatibility kanji (髙)
    (0xFF01, 0xFF5E),  # full-width ASCII
    (0xFFE0, 0xFFE5),  # ￥
)
_HALF_KATAKANA = (0xFF61, 0xFF9F)
_WESTERN_SIGNS = set("£€¥©®°±²³µ·×÷’‘“”–—…•™§¶«»¿¡ ")


def _is_japanese(ch: str) -> bool:
    o = ord(ch)
    return any(lo <= o <= hi for lo, hi in _JAPANESE_RANGES)


def _is_half_katakana(ch: str) -> bool:
    return _HALF_KATAKANA[0] <= ord(ch) <= _HALF_KATAKANA[1]


def _sample_text(path: Path, encoding: str) -> str:
    """Lines of the file that hold non-ASCII characters (up to a bound), decoded."""
    keep: list[str] = []
    seen = 0
    with open(path, encoding=encoding, errors="strict", newline="") as fh:
        for line in fh:
            if not line.isascii():
                keep.append(line)
                seen += sum(1 for ch in line if ord(ch) > 0x7F)
                if seen >= _MAX_NON_ASCII:
                    break
    return "".join(keep)


def plausibility(text: str, encoding: str) -> float:
    """How much the non-ASCII characters of ``text`` look like real text in ``encoding``.

    Parameters
    ----------
    text : str
        Text decoded with ``encoding``.
    encoding : {"cp932", "cp1252"}

    Returns
    -------
    float
        Share (0-1) of non-ASCII characters that are plausible: for CP932,
        Japanese characters next to another Japanese character (half-width
        katakana only in runs); for cp1252, Latin letters inside words and
        currency signs and typographic punctuation. 1.0 when there is no
        non-ASCII character.
    """
    good = total = 0
    n = len(text)
    for i, ch in enumerate(text):
        if ord(ch) <= 0x7F:
            continue
        total += 1
        prev_ch = text[i - 1] if i > 0 else " "
        next_ch = text[i + 1] if i + 1 < n else " "
        if encoding == "cp932":
            if _is_half_katakana(ch):
                good += _is_half_katakana(prev_ch) or _is_half_katakana(next_ch)
            elif _is_japanese(ch):
                good += (
                    _is_japanese(prev_ch)
                    or _is_japanese(next_ch)
                    or not (
                        prev_ch.isascii()
                        and prev_ch.isalpha()
                        and next_ch.isascii()
                        and next_ch.isalpha()
                    )
                )
        else:
            if ch in _WESTERN_SIGNS:
                good += 1
            elif ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN"):
                good += prev_ch.isalpha() or next_ch.isalpha()
    return good / total if total else 1.0


def detect_encoding(path: Path, *, configured: str | None = None) -> str:
    """The text encoding of a delimited file.

    Parameters
    ----------
    path : Path
        The file.
    configured : str, optional
        ``[data] encoding``: checked (the first undecodable byte is an
        error), not detected.

    Returns
    -------
    str
        A Python codec name: ``utf-8``, ``utf-8-sig``, ``cp932``, ``cp1252``
        or the configured one.

    Raises
    ------
    EncodingError
        Naming the offending byte, its line and offset, and the setting
        that decides.
    """
    with open(path, "rb") as fh:
        head = fh.read(3)
    if configured:
        bad = _first_bad_byte(path, configured)
        if bad is not None:
            raise _byte_error(path, bad, f"not valid {configured} (the configured encoding)")
        return configured
    if head.startswith(codecs.BOM_UTF8):
        bad = _first_bad_byte(path, "utf-8-sig")
        if bad is not None:
            raise _byte_error(path, bad, "invalid byte in a UTF-8 file (it starts with a BOM)")
        return "utf-8-sig"
    utf8_error = _first_bad_byte(path, "utf-8")
    if utf8_error is None:
        return "utf-8"
    valid, invalid = _utf8_evidence(path)
    if valid and valid >= invalid:
        raise _byte_error(
            path,
            utf8_error,
            f"invalid byte in a UTF-8 file ({valid:,} valid UTF-8 characters, {invalid:,} "
            "invalid byte(s)); fix the byte or set [data] encoding",
        )
    candidates = [e for e in ("cp932", "cp1252") if _first_bad_byte(path, e) is None]
    if not candidates:
        raise _byte_error(
            path,
            utf8_error,
            "text encoding not recognised (not UTF-8, CP932/Shift-JIS or cp1252); "
            'save the file as UTF-8, or set [data] encoding = "<codec>"',
        )
    if len(candidates) == 1:
        return candidates[0]
    scores = {e: plausibility(_sample_text(path, e), e) for e in candidates}
    best, other = sorted(candidates, key=lambda e: -scores[e])
    if scores[best] - scores[other] < 0.2:
        raise EncodingError(
            "text encoding ambiguous: the file reads as CP932 (Japanese) and as cp1252 "
            '(Western European) alike; set [data] encoding = "cp932" or "cp1252"'
        )
    return best


def _byte_error(path: Path, offset: int, what: str) -> EncodingError:
    line = _line_of(path, offset)
    with open(path, "rb") as fh:
        fh.seek(offset)
        byte = fh.read(1)
    return EncodingError(
        f"{what}: byte 0x{byte.hex().upper()} at line {line:,} (byte offset {offset:,})",
        offset=offset,
        line=line,
    )


# --------------------------------------------------------------------------- delimiter, header


def _sample_lines(path: Path, encoding: str) -> list[str]:
    with open(path, encoding=encoding, errors="replace", newline="") as fh:
        text = fh.read(_SAMPLE_BYTES)
    lines = text.splitlines()
    if len(text) == _SAMPLE_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    return [ln for ln in lines if ln.strip()][:_SAMPLE_LINES]


def _field_counts(lines: list[str], delimiter: str) -> list[int]:
    if delimiter == "whitespace":
        return [len(ln.split()) for ln in lines]
    return [len(row) for row in csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)]


def detect_delimiter(lines: list[str]) -> str | None:
    """The delimiter splitting every sample line into the same number (> 1) of fields.

    Parameters
    ----------
    lines : list of str
        The first non-empty lines of the file.

    Returns
    -------
    str or None
        ``","``, ``";"``, ``"\\t"``, ``"|"`` or ``"whitespace"``; None when
        no candidate splits the lines consistently (one column, or ragged).
        When several do, the one giving more fields wins, then the order above.
    """
    best: tuple[int, str] | None = None
    for delimiter in DELIMITERS:
        counts = _field_counts(lines, delimiter)
        if not counts or counts[0] < 2 or any(c != counts[0] for c in counts):
            continue
        if best is None or counts[0] > best[0]:
            best = (counts[0], delimiter)
    return best[1] if best else None


_DATA_LIKE = re.compile(r"^[\s+\-]?[0-9][0-9.,:/\-\s]*$")


def looks_like_data(fields: list[str]) -> bool:
    """Whether every field of a first line is a number or a date (so not a header)."""
    cleaned = [f.strip().strip('"') for f in fields]
    return bool(cleaned) and all(_DATA_LIKE.match(f) for f in cleaned if f) and any(cleaned)


def _header_like(lines: list[str], delimiter: str) -> bool:
    """Whether the first line is text where the next lines hold numbers (a header row)."""
    if len(lines) < 2:
        return False
    first = _split(lines[0].lstrip("\ufeff"), delimiter)
    second = _split(lines[1], delimiter)
    if len(first) != len(second) or any(_DATA_LIKE.match(f.strip()) for f in first):
        return False
    return any(_DATA_LIKE.match(v.strip()) for v in second)


def _split(line: str, delimiter: str) -> list[str]:
    if delimiter == "whitespace":
        return line.split()
    return next(csv.reader([line], delimiter=delimiter), [])


# --------------------------------------------------------------------------- conversion cache


def writable_cache(folder: Path, cache_dir: Path | None) -> Path:
    """The cache folder for converted copies (a temporary one when the dataset is read-only)."""
    candidates = [cache_dir] if cache_dir else [folder / "_derived" / ".cache"]
    candidates.append(Path(tempfile.gettempdir()) / "kam-analysis-cache")
    for candidate in candidates:
        try:
            candidate.mkdir(parents=True, exist_ok=True)
            probe = candidate / ".write-test"
            probe.write_text("")
            probe.unlink()
            return candidate
        except OSError:
            continue
    raise OSError(f"no writable cache folder (tried {candidates})")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's content (streamed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _cache_key(path: Path, options: dict) -> str:
    """Key of a converted copy: the source's content, the options and the converter version.

    The content hash (not the modification time) decides, so a source edited
    without changing its size or time still gets a new copy.
    """
    text = json.dumps([file_sha256(path), CONVERTER_VERSION, options], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cached(target: Path) -> bool:
    """Whether ``target`` exists and is the copy we wrote (size and mtime as recorded)."""
    stamp = target.with_name(target.name + ".stamp")
    if not (target.is_file() and stamp.is_file()):
        return False
    try:
        recorded = json.loads(stamp.read_text())
        stat = target.stat()
        return recorded == [stat.st_size, stat.st_mtime_ns]
    except (OSError, ValueError):
        return False


def _publish(tmp: Path, target: Path) -> None:
    tmp.replace(target)
    stat = target.stat()
    stamp = target.with_name(target.name + ".stamp")
    stamp.write_text(json.dumps([stat.st_size, stat.st_mtime_ns]))


def _text_copy(path: Path, encoding: str, delimiter: str, cache: Path) -> Path:
    """A UTF-8, comma- (or original single-character-) delimited copy of a text file."""
    options = {"encoding": encoding, "delimiter": delimiter}
    target = cache / f"{path.stem}.{_cache_key(path, options)}.utf8.csv"
    if _cached(target):
        return target
    tmp = target.with_name(target.name + ".tmp")
    with (
        open(path, encoding=encoding, newline="") as src,
        open(tmp, "w", encoding="utf-8", newline="") as dst,
    ):
        if delimiter == "whitespace":
            writer = csv.writer(dst, lineterminator="\n")
            for line in src:
                if line.strip():
                    writer.writerow(line.split())
        else:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    _publish(tmp, target)
    return target


MAX_EXCEL_ROWS = 1_048_576
"""Excel's own row limit; a sheet claiming more is refused before it is read."""
MAX_EXCEL_CELLS = 20_000_000
"""Cells read from one sheet at most (a small file can expand to millions of cells)."""
_EXCEL_CHUNK = 50_000


def _excel_copy(path: Path, cache: Path) -> Path:
    """The first sheet as a Parquet file of text columns, streamed with bounded memory.

    Raises
    ------
    FileFormatError
        For a workbook that cannot be opened, an empty sheet, duplicated
        header names, or a sheet beyond :data:`MAX_EXCEL_ROWS` rows or
        :data:`MAX_EXCEL_CELLS` cells (export it as CSV instead).
    """
    target = cache / f"{path.stem}.{_cache_key(path, {})}.xlsx.parquet"
    if _cached(target):
        return target
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # not a workbook, encrypted, corrupt zip
        raise FileFormatError(f"cannot open the workbook: {type(err).__name__}: {err}") from None
    tmp = target.with_name(target.name + ".tmp")
    try:
        sheet = workbook.worksheets[0]
        claimed = sheet.max_row or 0
        if claimed > MAX_EXCEL_ROWS:
            raise _too_large(f"the sheet claims {claimed:,} rows")
        rows = sheet.iter_rows(values_only=True)
        names = _excel_header(next(rows, None))
        _write_excel_rows(rows, names, tmp)
    finally:
        workbook.close()
    _publish(tmp, target)
    return target


def _too_large(what: str) -> FileFormatError:
    return FileFormatError(
        f"{what}: more than kam reads from Excel ({MAX_EXCEL_ROWS:,} rows, "
        f"{MAX_EXCEL_CELLS:,} cells); export the sheet as CSV",
        rule="sheet size",
    )


def _excel_header(header: tuple | None) -> list[str]:
    if header is None:
        raise FileFormatError("the first sheet is empty", rule="not empty")
    names = ["" if h is None else str(h).strip() for h in header]
    while names and names[-1] == "":
        names.pop()
    names = [n or f"Unnamed: {i}" for i, n in enumerate(names)]
    if not names:
        raise FileFormatError("the first row of the sheet holds no column names", rule="header row")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise FileFormatError(
            f"duplicated column name(s) {dupes} in the header row: each column needs its own "
            "name (rename one in the file, or map the one you need)",
            rule="unique column names",
        )
    return names


def _write_excel_rows(rows, names: list[str], tmp: Path) -> None:
    """Stream sheet rows into Parquet in chunks; trailing empty rows are left out."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    width = len(names)
    schema = pa.schema([(n, pa.string()) for n in names])
    columns: list[list[str | None]] = [[] for _ in names]
    blank_run = n_rows = 0
    with pq.ParquetWriter(tmp, schema) as writer:

        def flush() -> None:
            if columns[0]:
                writer.write_table(pa.table(columns, schema=schema))
                for col in columns:
                    col.clear()

        for row in rows:
            cells = [_excel_cell_text(row[j] if j < len(row) else None) for j in range(width)]
            if all(c is None for c in cells):
                blank_run += 1  # kept only if data follows (row numbers stay the sheet's)
                continue
            n_rows += blank_run + 1
            if n_rows > MAX_EXCEL_ROWS or n_rows * width > MAX_EXCEL_CELLS:
                raise _too_large(f"the sheet has more than {n_rows - 1:,} rows of {width} columns")
            for _ in range(blank_run):
                for col in columns:
                    col.append(None)
            blank_run = 0
            for col, cell in zip(columns, cells, strict=True):
                col.append(cell)
            if len(columns[0]) >= _EXCEL_CHUNK:
                flush()
        flush()


def _excel_cell_text(value) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, dt.datetime | pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------- one file


def prepare_source(
    table: str, path: Path, cache: Path | None, settings: DataSettings
) -> SourceFile:
    """Decide how the engine reads ``path`` (converting text or Excel once).

    Raises
    ------
    EncodingError
        For a text file whose encoding is not recognised or that holds an invalid byte.
    FileFormatError
        For an unsupported extension, a header problem, or an unreadable Excel file.
    """
    suffix = path.suffix.lower()
    if suffix in TEXT_FORMATS:
        assert cache is not None
        return _prepare_text(table, path, cache, settings)
    if suffix == ".parquet":
        return SourceFile(table, path, "parquet", path, None, 0, "row")
    if suffix == ".xlsx":
        assert cache is not None
        return SourceFile(table, path, "xlsx", _excel_copy(path, cache), None, 1, "row")
    raise FileFormatError(
        f"unsupported file type {suffix!r}; use .csv, .tsv, .txt, .parquet or .xlsx",
        rule="file type",
    )


def _prepare_text(table: str, path: Path, cache: Path, settings: DataSettings) -> SourceFile:
    encoding = detect_encoding(path, configured=settings.encoding)
    lines = _sample_lines(path, encoding)
    if not lines:
        raise FileFormatError("file has no text lines", rule="not empty")
    delimiter = settings.delimiter or detect_delimiter(lines)
    if delimiter is None:
        if path.suffix.lower() == ".tsv":
            delimiter = "\t"
        elif len(lines) >= 1 and len(_split(lines[0], ",")) == 1 and len(lines[0].split()) == 1:
            delimiter = ","  # a one-column file
        else:
            raise FileFormatError(
                "cannot tell the field delimiter (tried comma, semicolon, tab, pipe and runs "
                "of blanks: none splits the first lines into the same number of fields); "
                'set [data] delimiter = ";" (or ",", "\\t", "|", "whitespace")',
                rule="delimiter",
            )
    first = _split(lines[0].lstrip("\ufeff"), delimiter)
    names = settings.column_names.get(table)
    header = names is None
    if header:
        if looks_like_data(first):
            raise FileFormatError(
                f"the first line looks like data, not column names ({_preview(first)}); "
                f"if the file has no header row, name its {len(first)} columns with "
                f'[data.column_names] {table} = ["...", ...]',
                rule="header row",
            )
        stripped = [f.strip() for f in first]
        dupes = sorted({f for f in stripped if f and stripped.count(f) > 1})
        if dupes:
            raise FileFormatError(
                f"duplicated column name(s) {dupes} in the header row: each column needs its "
                "own name (rename one in the file, or map the one you need)",
                rule="unique column names",
            )
    elif len(names) == len(first) and _header_like(lines, delimiter):
        raise FileFormatError(
            f"[data.column_names] {table} is set, but the first line looks like a header row "
            f"({_preview(first)}); remove [data.column_names] {table} and map these names instead",
            rule="header row",
        )
    elif len(names) != len(first):
        raise FileFormatError(
            f"[data.column_names] {table} names {len(names)} columns but the first line has "
            f"{len(first)} fields ({_preview(first)})",
            rule="header row",
        )
    needs_copy = not encoding.startswith("utf-8") or delimiter == "whitespace"
    read_path = _text_copy(path, encoding, delimiter, cache) if needs_copy else path
    read_delim = "," if delimiter == "whitespace" else delimiter
    return SourceFile(
        table,
        path,
        "csv",
        read_path,
        encoding,
        1 if header else 0,
        "line",
        delimiter=read_delim,
        detected_delimiter=delimiter,
        header=header,
        column_names=tuple(names) if names else None,
    )


def _preview(fields: list[str], n: int = 4) -> str:
    shown = ", ".join(repr(f) for f in fields[:n])
    return shown + (", ..." if len(fields) > n else "")


def sql_str(text: str | Path) -> str:
    """A SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def raw_select(src: SourceFile, *, numbered: bool = True) -> str:
    """DuckDB SQL reading the file as text columns, with ``__row`` line numbers.

    Parameters
    ----------
    src : SourceFile
    numbered : bool, default True
        Add ``__row``. For delimited text the numbers come from a window
        function, which keeps the engine from reading only the columns a
        query needs; so aggregates read an unnumbered view and only the
        example rows of a report the numbered one. Parquet row numbers are free.
    """
    if src.format == "csv":
        options = [
            "all_varchar=true",
            f"header={'true' if src.header else 'false'}",
            f"delim={sql_str(src.delimiter or ',')}",
            "quote='\"'",
            "escape='\"'",
        ]
        if src.column_names:
            options.append("names=[" + ", ".join(sql_str(n) for n in src.column_names) + "]")
        scan = f"read_csv({sql_str(src.read_path)}, " + ", ".join(options) + ")"
        if not numbered:
            return f"SELECT * FROM {scan}"
        return f"SELECT row_number() OVER () AS {ROW}, * FROM {scan}"
    return (
        f"SELECT file_row_number + 1 AS {ROW}, * EXCLUDE (file_row_number) "
        f"FROM read_parquet({sql_str(src.read_path)}, file_row_number=true)"
    )


def missing_required_table(table: str, folder: Path) -> dict:
    """The problem record of a required table without a file."""
    return {
        "table": table,
        "file": None,
        "rule": "required table",
        "message": f"required table missing: expected {expected_names(table)} in {folder}",
    }


def is_required(table: str) -> bool:
    """Whether the contract requires ``table`` (accounts can be derived instead)."""
    return table in REQUIRED_TABLES

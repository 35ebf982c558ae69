"""Raw rows of entity and alias files (JSONL, CSV, TSV, gzipped or not), and their fields.

``detect_format`` and ``iter_rows`` turn a file into (line, row, error)
tuples; the field parsers (``_text``, ``_number``, ``_vector``) check one cell
each, and ``_Problems`` raises or collects what is wrong, naming the file and line.
"""

import csv
import gzip
import json
import math
import sys
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from .tables import KBSourceError, PathLike, SkippedRow

# Rows between progress-bar updates.
_PROGRESS_EVERY = 4096


# ------------------------------------------------------------------ raw rows


def detect_format(path: PathLike) -> str:
    """The format of a file from its name: "jsonl", "csv" or "tsv" (".gz" allowed)."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    suffix = name.rsplit(".", 1)[-1] if "." in name else ""
    formats = {"jsonl": "jsonl", "ndjson": "jsonl", "json": "jsonl", "csv": "csv",
               "tsv": "tsv", "tab": "tsv"}
    if suffix not in formats:
        raise KBSourceError(
            "cannot tell the file format from the name: use the extension .jsonl, .csv or "
            ".tsv (optionally followed by .gz).",
            path,
        )
    return formats[suffix]


class _LineReader:
    """Binary lines of a file decoded as UTF-8, with line numbers and byte progress.

    Undecodable lines are decoded with surrogate escapes and remembered, so
    the row that holds them is reported with its line number.
    """

    def __init__(self, path: Path, progress: Optional[Callable[[int], None]] = None):
        self.path = path
        self.line_no = 0
        self.bad_lines: Dict[int, str] = {}
        self.progress = progress

    def __iter__(self) -> Iterator[str]:
        opener = gzip.open if self.path.name.lower().endswith(".gz") else open
        pending = 0
        with opener(self.path, "rb") as file:
            first = True
            for raw in file:
                self.line_no += 1
                pending += len(raw)
                if self.progress is not None and self.line_no % _PROGRESS_EVERY == 0:
                    self.progress(pending)
                    pending = 0
                if first:
                    first = False
                    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                        raise KBSourceError(
                            "the file is UTF-16 encoded; save it as UTF-8.", self.path, 1
                        )
                    if raw.startswith(b"\xef\xbb\xbf"):
                        raw = raw[3:]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    self.bad_lines[self.line_no] = (
                        f"not valid UTF-8 (byte {raw[err.start]:#04x} at column "
                        f"{err.start + 1}); save the file as UTF-8."
                    )
                    line = raw.decode("utf-8", "surrogateescape")
                yield line
        if self.progress is not None and pending:
            self.progress(pending)


Row = Tuple[int, Optional[Dict[str, Any]], Optional[str]]


def iter_rows(path: PathLike, required: Sequence[str] = (),
              progress: Optional[Callable[[int], None]] = None,
              one_of: Sequence[str] = ()) -> Iterator[Row]:
    """Rows of a JSONL, CSV or TSV file as (line, row dict, None) or (line, None, error).

    File-level problems (unknown format, missing columns in the header, UTF-16,
    unreadable file) raise KBSourceError; row-level problems are yielded so the
    caller can raise or skip them.
    """
    path = Path(path)
    fmt = detect_format(path)
    if not path.exists():
        raise KBSourceError("no such file.", path)
    if path.is_dir():
        raise KBSourceError("is a directory, not a file.", path)
    reader = _LineReader(path, progress)
    try:
        if fmt == "jsonl":
            yield from _iter_jsonl(reader)
        else:
            yield from _iter_delimited(reader, "\t" if fmt == "tsv" else ",", required, one_of)
    except (OSError, EOFError, zlib.error) as err:  # e.g. a corrupt or truncated .gz file
        # gzip raises EOFError for a truncated file; escaping the CLI, click would take
        # it for Ctrl-D and print only "Aborted.".
        if isinstance(err, EOFError):
            raise KBSourceError(
                f"the compressed file ends after line {reader.line_no:,}, before its "
                "end-of-stream marker: it is truncated (download or compress it again).",
                path,
            ) from None
        raise KBSourceError(f"cannot read the file ({type(err).__name__}: {err}).", path,
                            reader.line_no or None) from None


def _iter_jsonl(reader: _LineReader) -> Iterator[Row]:
    for line in reader:
        line_no = reader.line_no
        if line_no in reader.bad_lines:
            yield line_no, None, reader.bad_lines[line_no]
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            yield line_no, None, f"invalid JSON: {err.msg} (column {err.colno})."
            continue
        if not isinstance(row, dict):
            yield line_no, None, f"expected a JSON object, got {type(row).__name__}."
            continue
        yield line_no, row, None


def _iter_delimited(reader: _LineReader, delimiter: str, required: Sequence[str],
                    one_of: Sequence[str]) -> Iterator[Row]:
    rows = csv.reader(reader, delimiter=delimiter)
    header: Optional[List[str]] = None
    previous_end = 0
    while True:
        try:
            cells = next(rows)
        except StopIteration:
            break
        except csv.Error as err:
            raise KBSourceError(f"malformed CSV: {err}.", reader.path, reader.line_no) from None
        start, previous_end = previous_end + 1, rows.line_num
        bad = [reader.bad_lines[n] for n in range(start, previous_end + 1) if n in reader.bad_lines]
        if header is None:
            if bad:
                raise KBSourceError(f"the header is {bad[0]}", reader.path, start)
            if not any(cell.strip() for cell in cells):
                continue
            header = [cell.strip().lower() for cell in cells]
            missing = [name for name in required if name not in header]
            if one_of and not any(name in header for name in one_of):
                missing.append(" or ".join(one_of))
            if missing:
                raise KBSourceError(
                    f"missing column{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(repr(m) for m in missing)}: the first line must be a header "
                    f"naming the columns (found: {', '.join(repr(h) for h in header)}).",
                    reader.path,
                    start,
                )
            continue
        if bad:
            yield start, None, bad[0]
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header):
            yield start, None, (
                f"{len(cells)} fields but the header names {len(header)} columns "
                "(an unquoted delimiter in a value?)."
            )
            continue
        row = {}
        for name, cell in zip(header, cells):
            cell = cell.strip()
            if cell != "":
                row[name] = cell
        yield start, row, None


# ------------------------------------------------------------- field parsing


class _RowError(Exception):
    """A bad row: becomes a KBSourceError or a SkippedRow."""


def _text(row: Dict[str, Any], key: str, what: str, required: bool = True) -> Optional[str]:
    value = row.get(key)
    if value is None:
        if required:
            raise _RowError(f"missing {what} (field {key!r}).")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _RowError(f"the {what} must be a string, got {value!r}.")
    value = str(value).strip()
    if not value:
        if required:
            raise _RowError(f"the {what} is empty.")
        return None
    return value


def _number(value: Any, what: str, *, minimum: float = 0.0, maximum: float = math.inf) -> float:
    if isinstance(value, bool):
        raise _RowError(f"the {what} must be a number, got {value!r}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _RowError(f"the {what} must be a number, got {value!r}.") from None
    if not math.isfinite(number):
        raise _RowError(f"the {what} must be finite, got {value!r}.")
    if not minimum <= number <= maximum:
        bounds = f"in [{minimum:g}, {maximum:g}]" if maximum < math.inf else f">= {minimum:g}"
        raise _RowError(f"the {what} must be {bounds}, got {value!r}.")
    return number


def _vector(value: Any) -> List[float]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise _RowError(f"the vector is not a list of numbers: {value[:60]!r}.") from None
        else:
            value = text.replace(",", " ").split()
    if not isinstance(value, (list, tuple)) or not value:
        raise _RowError(f"the vector must be a non-empty list of numbers, got {value!r:.60}.")
    numbers = []
    for i, item in enumerate(value):
        if isinstance(item, bool):
            raise _RowError(f"vector item {i} is not a number: {item!r}.")
        try:
            number = float(item)
        except (TypeError, ValueError):
            raise _RowError(f"vector item {i} is not a number: {item!r}.") from None
        if not math.isfinite(number):
            raise _RowError(f"vector item {i} is not finite: {item!r}.")
        numbers.append(number)
    return numbers


class _Problems:
    """Raises row errors, or records them when skipping invalid rows."""

    def __init__(self, path: PathLike, skip_invalid: bool):
        self.path = str(path)
        self.skip_invalid = skip_invalid
        self.skipped: List[SkippedRow] = []

    def report(self, line: int, reason: str) -> None:
        if not self.skip_invalid:
            raise KBSourceError(reason, self.path, line)
        self.skipped.append(SkippedRow(self.path, line, reason))


def _progress_bar(path: Path, desc: str, enabled: bool):
    """A tqdm bar over the bytes of a file, or None."""
    if not enabled:
        return None
    from tqdm import tqdm

    total = path.stat().st_size if path.exists() and not path.name.endswith(".gz") else None
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, disable=None,
                file=sys.stderr, leave=False)

"""Read entity and alias files (JSONL, CSV, TSV) into arrays for a bulk KB build.

Entity files have one entity per row::

    id (required)  freq  name  description  vector

Alias files have one (alias, entity) pair per row, with either a prior
p(entity | alias) or a raw count (priors are then count / total count of the
alias)::

    alias  entity  prior | count

JSONL alias rows may also list an alias's candidates at once:
``{"alias": "Paris", "entities": ["Q90", "Q830149"], "priors": [0.9, 0.1]}``
(or ``"counts"``). CSV and TSV files need a header row naming the columns;
extra columns are ignored. A ``vector`` cell holds numbers separated by
spaces or commas (a JSON list also works). Files must be UTF-8; ``.gz``
files are decompressed on the fly.

Every problem is reported as a ``KBSourceError`` naming the file and line.
With ``skip_invalid``, bad rows are skipped and collected as ``SkippedRow``s
instead; problems with a whole file (unknown format, missing columns, no
rows, UTF-16) always raise.
"""

import csv
import gzip
import io
import json
import math
import os
import shutil
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy

from .errors import KBError
from .kb import InMemoryLookupKB
from .kb import format as kb_format

PathLike = Union[str, Path]

ENTITY_COLUMNS = ("id", "freq", "name", "description", "vector")
ALIAS_COLUMNS = ("alias", "entity", "prior", "count")
META_FILE = "meta.json"
# Priors of one alias may exceed 1 by rounding in the input.
PRIOR_SUM_TOLERANCE = 1e-4
# Rows between progress-bar updates.
_PROGRESS_EVERY = 4096


class KBSourceError(KBError):
    """A KB source file is malformed; the message names the file and line."""

    def __init__(self, message: str, path: Optional[PathLike] = None, line: Optional[int] = None):
        self.reason = message
        self.path = str(path) if path is not None else None
        self.line = line
        if self.path is not None and line is not None:
            message = f"{self.path}:{line}: {message}"
        elif self.path is not None:
            message = f"{self.path}: {message}"
        super().__init__(message)


@dataclass
class SkippedRow:
    """A row left out of the KB by ``skip_invalid``, and why."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class EntityTable:
    """Entities read from a file, in file order."""

    ids: List[str]
    freqs: numpy.ndarray
    vectors: Optional[numpy.ndarray]  # (n, L) float32, or None when the file has none
    texts: List[str]  # name and description, for an encoder ("" when absent)
    lines: List[int]
    path: str
    skipped: List[SkippedRow] = field(default_factory=list)
    names: List[str] = field(default_factory=list)  # the name column ("" when absent)

    def __len__(self) -> int:
        return len(self.ids)

    def index(self) -> Dict[str, int]:
        """RETURNS (Dict[str, int]): position of every entity id."""
        return {entity: i for i, entity in enumerate(self.ids)}


@dataclass
class AliasTable:
    """Aliases in the CSR layout of ``InMemoryLookupKB.from_arrays``.

    Alias i owns candidates [offsets[i], offsets[i + 1]); ``entities`` holds
    positions in the EntityTable; candidates are sorted by prior, highest first.
    """

    texts: List[str]
    offsets: numpy.ndarray
    entities: numpy.ndarray
    priors: numpy.ndarray
    skipped: List[SkippedRow] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def n_candidates(self) -> int:
        return len(self.entities)


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


# ------------------------------------------------------------------ readers


def read_entities(path: PathLike, *, skip_invalid: bool = False,
                  progress: bool = False) -> EntityTable:
    """Read an entity file.

    path (PathLike): A .jsonl, .csv or .tsv file (optionally .gz).
    skip_invalid (bool): Skip bad rows (listed in ``skipped``) instead of raising.
    progress (bool): Show a progress bar on stderr.
    RETURNS (EntityTable): The entities, in file order.
    """
    path = Path(path)
    problems = _Problems(path, skip_invalid)
    ids: List[str] = []
    freqs: List[float] = []
    vectors: List[List[float]] = []
    texts: List[str] = []
    names: List[str] = []
    lines: List[int] = []
    first_line: Dict[str, int] = {}
    with_vectors: Optional[bool] = None
    vector_line = 0
    bar = _progress_bar(path, f"Reading {path.name}", progress)
    try:
        for line, row, error in iter_rows(path, ("id",), bar.update if bar is not None else None):
            if error is not None:
                problems.report(line, error)
                continue
            try:
                entity = _text(row, "id", "entity id")
                if entity in first_line:
                    raise _RowError(
                        f"duplicate entity id {entity!r} (first defined at line "
                        f"{first_line[entity]})."
                    )
                freq = _number(row["freq"], "freq") if row.get("freq") is not None else 0.0
                name = _text(row, "name", "name", required=False) or ""
                description = _text(row, "description", "description", required=False) or ""
                vector = _vector(row["vector"]) if row.get("vector") is not None else None
                if with_vectors is None:
                    with_vectors, vector_line = vector is not None, line
                elif with_vectors and vector is None:
                    raise _RowError(
                        f"entity {entity!r} has no vector, but the entity at line "
                        f"{vector_line} has one: give every entity a vector, or none (then "
                        "an encoder computes them from the descriptions)."
                    )
                elif not with_vectors and vector is not None:
                    raise _RowError(
                        f"entity {entity!r} has a vector, but the entity at line "
                        f"{vector_line} has none: give every entity a vector, or none."
                    )
                if vector is not None and vectors and len(vector) != len(vectors[0]):
                    raise _RowError(
                        f"the vector of entity {entity!r} has length {len(vector)}, the "
                        f"one at line {vector_line} has length {len(vectors[0])}."
                    )
            except _RowError as err:
                problems.report(line, str(err))
                continue
            first_line[entity] = line
            ids.append(entity)
            freqs.append(freq)
            texts.append(f"{name} {description}".strip())
            names.append(name)
            lines.append(line)
            if vector is not None:
                vectors.append(vector)
    finally:
        if bar is not None:
            bar.close()
    if not ids:
        reason = "no valid entities" if problems.skipped else "the file is empty: no entities"
        raise KBSourceError(f"{reason}.", path)
    matrix = numpy.asarray(vectors, dtype=numpy.float32) if with_vectors else None
    return EntityTable(
        ids=ids,
        freqs=numpy.asarray(freqs, dtype=numpy.float32),
        vectors=matrix,
        texts=texts,
        lines=lines,
        path=str(path),
        skipped=problems.skipped,
        names=names,
    )


def _alias_pairs(row: Dict[str, Any]) -> List[Tuple[str, str, Optional[float]]]:
    """(entity, "prior" | "count", raw value) triples of one alias row."""
    has_prior, has_count = row.get("prior") is not None, row.get("count") is not None
    if "entities" in row:
        entities = row["entities"]
        if not isinstance(entities, list) or not entities:
            raise _RowError("'entities' must be a non-empty list of entity ids.")
        kinds = [k for k in ("priors", "counts") if row.get(k) is not None]
        if len(kinds) != 1:
            raise _RowError("give one of 'priors' or 'counts' with 'entities'.")
        values = row[kinds[0]]
        if not isinstance(values, list) or len(values) != len(entities):
            raise _RowError(
                f"'{kinds[0]}' must be a list with one number per entity "
                f"({len(entities)})."
            )
        kind = kinds[0][:-1]
        return [(_text({"entity": e}, "entity", "entity id"), kind, v)
                for e, v in zip(entities, values)]
    entity = _text(row, "entity", "entity id")
    if has_prior == has_count:
        raise _RowError(
            "give either a prior (p(entity | alias) in [0, 1]) or a count, not "
            f"{'both' if has_prior else 'neither'}."
        )
    kind = "prior" if has_prior else "count"
    return [(entity, kind, row[kind])]


def read_aliases(paths: Union[PathLike, Sequence[PathLike]], entities: EntityTable, *,
                 skip_invalid: bool = False, max_candidates: Optional[int] = None,
                 progress: bool = False) -> AliasTable:
    """Read alias files against the entities they refer to.

    paths: One alias file or several (their pairs are merged; counts of the
        same (alias, entity) pair are added up).
    entities (EntityTable): The entities (from ``read_entities``).
    skip_invalid (bool): Skip bad rows / aliases instead of raising.
    max_candidates (Optional[int]): Keep only this many candidates per alias,
        those with the highest priors (the priors are not renormalised).
    progress (bool): Show a progress bar on stderr.
    RETURNS (AliasTable): The aliases in first-seen order.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise KBSourceError("no alias file given.")
    position = entities.index()
    # alias -> [kind, {entity position: value}, first line, path]
    groups: Dict[str, list] = {}
    skipped: List[SkippedRow] = []
    for path in paths:
        path = Path(path)
        problems = _Problems(path, skip_invalid)
        n_rows = 0
        bar = _progress_bar(path, f"Reading {path.name}", progress)
        try:
            rows = iter_rows(path, ("alias", "entity"), bar.update if bar is not None else None,
                             one_of=("prior", "count"))
            for line, row, error in rows:
                n_rows += 1
                if error is not None:
                    problems.report(line, error)
                    continue
                try:
                    alias = _text(row, "alias", "alias")
                    pairs = _alias_pairs(row)
                    group = groups.get(alias)
                    parsed = []
                    for entity, kind, raw in pairs:
                        if entity not in position:
                            raise _RowError(
                                f"unknown entity {entity!r} for alias {alias!r}: it is not in "
                                f"{entities.path}."
                            )
                        value = (_number(raw, "prior", maximum=1.0) if kind == "prior"
                                 else _number(raw, "count"))
                        if group is not None and group[0] != kind:
                            raise _RowError(
                                f"alias {alias!r} has {group[0]}s elsewhere (line {group[2]} of "
                                f"{group[3]}) and a {kind} here: use one kind per alias."
                            )
                        row_pos = position[entity]
                        if kind == "prior" and (
                            (group is not None and row_pos in group[1])
                            or any(p == row_pos for p, _ in parsed)
                        ):
                            raise _RowError(
                                f"duplicate prior for alias {alias!r} and entity {entity!r}."
                            )
                        parsed.append((row_pos, value))
                except _RowError as err:
                    problems.report(line, str(err))
                    continue
                if group is None:
                    group = groups[alias] = [pairs[0][1], {}, line, str(path)]
                for row_pos, value in parsed:
                    group[1][row_pos] = group[1].get(row_pos, 0.0) + value
        finally:
            if bar is not None:
                bar.close()
        if n_rows == 0:
            raise KBSourceError("the file is empty: no aliases.", path)
        skipped.extend(problems.skipped)
    texts: List[str] = []
    offsets = [0]
    candidate_entities: List[int] = []
    candidate_priors: List[float] = []
    for alias, (kind, values, line, path) in groups.items():
        rows = numpy.fromiter(values.keys(), dtype=numpy.int64, count=len(values))
        numbers = numpy.fromiter(values.values(), dtype=numpy.float64, count=len(values))
        total = float(numbers.sum())
        if kind == "count":
            if total <= 0:
                reason = f"the counts of alias {alias!r} add up to 0: no prior can be computed."
                if not skip_invalid:
                    raise KBSourceError(reason, path, line)
                skipped.append(SkippedRow(path, line, reason))
                continue
            numbers = numbers / total
        elif total > 1.0 + PRIOR_SUM_TOLERANCE:
            reason = (
                f"the priors of alias {alias!r} add up to {total:.6g}, more than 1: they are "
                "p(entity | alias), so they must add up to at most 1 (or give counts)."
            )
            if not skip_invalid:
                raise KBSourceError(reason, path, line)
            skipped.append(SkippedRow(path, line, reason))
            continue
        elif total > 1.0:
            numbers = numbers / total
        order = numpy.lexsort((rows, -numbers))
        if max_candidates is not None:
            order = order[:max_candidates]
        texts.append(alias)
        candidate_entities.extend(rows[order].tolist())
        candidate_priors.extend(numbers[order].tolist())
        offsets.append(len(candidate_entities))
    if not texts:
        raise KBSourceError("no valid aliases in " + ", ".join(str(p) for p in paths) + ".")
    return AliasTable(
        texts=texts,
        offsets=numpy.asarray(offsets, dtype=numpy.int64),
        entities=numpy.asarray(candidate_entities, dtype=numpy.int64),
        priors=numpy.asarray(candidate_priors, dtype=numpy.float32),
        skipped=skipped,
    )


# ------------------------------------------------------------------ building


def entity_texts(entities: EntityTable, aliases: Optional[AliasTable] = None) -> List[str]:
    """The text to encode for each entity: its name and description, else its aliases.

    An entity without name and description is described by up to three of
    its aliases (those where it has the highest priors), else by its id.
    """
    texts = list(entities.texts)
    missing = [i for i, text in enumerate(texts) if not text]
    if missing and aliases is not None and aliases.n_candidates:
        best: Dict[int, List[Tuple[float, str]]] = {i: [] for i in missing}
        counts = numpy.diff(aliases.offsets)
        owners = numpy.repeat(numpy.arange(len(aliases.texts)), counts)
        for owner, entity, prior in zip(owners.tolist(), aliases.entities.tolist(),
                                        aliases.priors.tolist()):
            if entity in best:
                best[entity].append((-prior, aliases.texts[owner]))
        for i, found in best.items():
            texts[i] = " ".join(text for _, text in sorted(found)[:3])
    return [text or entities.ids[i] for i, text in enumerate(texts)]


def build_kb(vocab, entities: EntityTable, aliases: AliasTable, *, encoder=None,
             progress: bool = False) -> InMemoryLookupKB:
    """Build a KB in one bulk call; vectors come from the file or the encoder.

    encoder: Computes the vectors when the entity file has none (see
        ``entity_linker.encoders``); it is an error to give one when the file
        has vectors.
    """
    if entities.vectors is not None:
        if encoder is not None:
            raise KBSourceError(
                "the entities have vectors, so no encoder is used: drop the encoder "
                "option or the vector column.",
                entities.path,
            )
        vectors = entities.vectors
    else:
        if encoder is None:
            from .encoders import get_encoder

            encoder = get_encoder()
        from .encoders import encode_texts

        vectors = encode_texts(encoder, entity_texts(entities, aliases), progress=progress,
                               desc="Encoding descriptions")
    kb = InMemoryLookupKB.from_arrays(
        vocab, entities.ids, entities.freqs, vectors,
        aliases.texts, aliases.offsets, aliases.entities, aliases.priors,
    )
    if any(entities.names):
        kb.set_names(entities.ids, entities.names)
    return kb


# ------------------------------------------------------- writing KB folders


def write_kb_directory(kb: InMemoryLookupKB, output: PathLike, meta: Dict[str, Any],
                       extra_files: Optional[Dict[str, Callable[[Path], None]]] = None) -> Path:
    """Write a KB folder: kb.bin, meta.json and sidecar files, all or nothing.

    Everything is written to a staging folder first. A new folder is then
    renamed into place in one step; in an existing folder the sidecars and
    meta.json replace the old ones and kb.bin goes last, so an interrupted or
    failed build never leaves a partial kb.bin.
    extra_files: file name -> function that writes the file at the given path.
    RETURNS (Path): The KB folder.
    """
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise KBError(f"{output} is a file; a KB is written to a directory.")
    extra_files = dict(extra_files or {})
    names = sorted(extra_files) + [META_FILE]
    meta = dict(meta)
    meta["files"] = [kb_format.FILE_NAME] + sorted(extra_files)
    meta.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    output.parent.mkdir(parents=True, exist_ok=True)
    fresh = not output.exists()
    stage = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp",
                                  dir=output.parent if fresh else output))
    try:
        # mkdtemp/mkstemp make private files; a KB is as readable as any new file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(stage, 0o777 & ~umask)
        kb.to_disk(stage)
        os.chmod(stage / kb_format.FILE_NAME, 0o666 & ~umask)
        meta["kb_file_size"] = (stage / kb_format.FILE_NAME).stat().st_size
        for name, write in extra_files.items():
            write(stage / name)
        (stage / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n",
                                       encoding="utf8")
        if fresh:
            try:
                os.rename(stage, output)
                return output
            except OSError:
                if not output.is_dir():
                    raise
                # Someone created the folder meanwhile: fall back to file moves.
                output.mkdir(exist_ok=True)
        for name in names + [kb_format.FILE_NAME]:
            os.replace(stage / name, output / name)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
    return output


def read_kb_meta(path: PathLike) -> Dict[str, Any]:
    """The meta.json of a KB folder ({} when there is none)."""
    path = Path(path)
    meta_path = (path if path.is_dir() else path.parent) / META_FILE
    if not meta_path.exists():
        return {}
    try:
        return json.loads(meta_path.read_text(encoding="utf8"))
    except (OSError, ValueError) as err:
        raise KBError(f"{meta_path} is not valid JSON: {err}") from None


def skipped_summary(skipped: Sequence[SkippedRow], limit: int = 5) -> str:
    """A short, human-readable list of skipped rows."""
    out = io.StringIO()
    for row in list(skipped)[:limit]:
        out.write(f"  {row}\n")
    if len(skipped) > limit:
        out.write(f"  ... and {len(skipped) - limit} more\n")
    return out.getvalue().rstrip("\n")

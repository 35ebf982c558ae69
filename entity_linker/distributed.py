"""Corpus-scale linking with Dask: many worker processes, one memory-mapped KB.

    from entity_linker.distributed import link_corpus
    summary = link_corpus(["news/*.jsonl"], "linked/", processes=4)
    print(summary.documents, summary.docs_per_second)

How the work is cut and where it runs:

* Inputs are text files (one doc per line) or JSONL files (``.jsonl``,
  ``.ndjson``, ``.json``: one JSON object per line with a ``"text"`` string;
  other fields are kept), given as paths, globs or directories. Blank lines are
  skipped. A bad line (not UTF-8, not a JSON object with a ``"text"`` string)
  stops the run with an ``InputFormatError`` naming ``file:line``; with
  ``skip_invalid=True`` it is skipped and counted instead.
* One partition per input file, or, with ``partition_size=N``, one per N lines
  of each file (the driver scans each file once to find where partitions begin,
  so a worker seeks straight to its lines).
* Each partition is one task. It writes one output file, ``<name>.jsonl`` (or
  ``<name>-00003.jsonl`` with ``partition_size``), where ``<name>`` is the
  input's file stem (with parent folder names prefixed when stems collide).
  Every line is the input record plus ``"ents"``: ``[{"start", "end", "text",
  "label", "kb_id", "score"}]`` (character offsets; ``kb_id`` is ``"NIL"``
  when nothing was linked).
* A task that meets a bad line or a missing pipeline returns the error to the
  driver, which raises it (after cancelling the other tasks): the worker logs
  no "Compute Failed" traceback.
* A task writes to a temporary file in the output folder and renames it into
  place (``os.replace``), so an output file is either complete or absent: a
  re-run skips the partitions whose file exists, and a task retried after its
  worker died starts a fresh temporary file and never duplicates lines.
* Each worker process loads the pipeline once (``load_worker_pipeline``, a
  per-process cache keyed by the pipeline path); the KB is memory-mapped from
  the path the worker sees, so all workers on one machine share its pages in
  the page cache. The pipeline folder (and any KB file its ``nel`` loads) must
  exist at that path on every worker (docs/SCALING.md).

Scores are reproducible for the same partitions and ``batch_size``; another
batch size may change scores in the 7th digit (the matrix products sum in
another order).
"""

import contextlib
import glob
import json
import os
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from .errors import CorpusError  # re-exported: the base of corpus-linking errors

PathLike = Union[str, Path]

DEFAULT_BATCH_SIZE = 256
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
TEXT_SUFFIXES = (".txt", ".text")
KB_FROM_FILE = "entity_linker.KBFromFile.v1"
NEL_FACTORY = "nel"
TMP_SUFFIX = ".tmp"


# ------------------------------------------------------------------- errors


class InputFormatError(CorpusError):
    """An input line is not valid UTF-8, or a JSONL line is not an object with a "text"."""


# FileNotFoundError first: its __new__ must build these (Dask's tblib pickling
# calls the first base's __new__, and ValueError's cannot make an OSError).
class PipelineNotFoundError(FileNotFoundError, CorpusError):
    """A worker cannot find the pipeline folder at the path it was given."""


class KBNotFoundError(FileNotFoundError, CorpusError):
    """A worker cannot find the KB file that a pipeline's ``nel`` component maps."""


# ------------------------------------------------------------ partitions


@dataclass(frozen=True)
class Partition:
    """A slice of one input file: the unit of work and of output.

    path (str): The input file, as the workers see it.
    is_jsonl (bool): JSONL records (else one text per line).
    output_name (str): File name of the partition's output in the output folder.
    first_line (int): 0-based index of the partition's first line in the file.
    offset (int): Byte offset of that line.
    n_lines (Optional[int]): Number of lines; None reads to the end of the file.
    """

    path: str
    is_jsonl: bool
    output_name: str
    first_line: int = 0
    offset: int = 0
    n_lines: Optional[int] = None


@dataclass
class PartitionStats:
    """What linking one partition did (returned by ``link_partition``)."""

    output_name: str
    documents: int = 0
    mentions: int = 0
    linked: int = 0
    seconds: float = 0.0
    startup_seconds: float = 0.0  # pipeline load time if this task loaded it, else 0
    worker: str = ""
    reused_output: bool = False  # the file was already complete when the task started
    skipped: int = 0  # invalid lines skipped (skip_invalid)
    skipped_examples: List[str] = field(default_factory=list)  # the first few, file:line


@dataclass
class CorpusSummary:
    """The result of ``link_corpus``: counts for the partitions linked in this run.

    Partitions skipped because their output already existed are counted in
    ``partitions_skipped`` only.
    """

    output_dir: Path
    documents: int = 0
    mentions: int = 0
    linked: int = 0
    nil: int = 0
    seconds: float = 0.0
    partitions: int = 0
    partitions_skipped: int = 0
    workers: int = 1
    startup_seconds: float = 0.0
    skipped: int = 0  # invalid lines skipped (skip_invalid)
    skipped_examples: List[str] = field(default_factory=list)  # the first few, file:line
    partition_stats: List[PartitionStats] = field(default_factory=list, repr=False)

    @property
    def docs_per_second(self) -> float:
        """Documents linked per second of wall time (0 when nothing ran)."""
        return self.documents / self.seconds if self.seconds > 0 else 0.0

    def rows(self) -> List[Tuple[str, str]]:
        """The summary as (name, value) rows for printing."""
        return [
            ("documents", f"{self.documents:,}"),
            ("mentions", f"{self.mentions:,}"),
            ("linked", f"{self.linked:,}"),
            ("NIL", f"{self.nil:,}"),
            ("docs/s", f"{self.docs_per_second:,.1f}"),
            ("seconds", f"{self.seconds:.2f}"),
            ("partitions linked", f"{self.partitions:,}"),
            ("partitions skipped", f"{self.partitions_skipped:,}"),
            ("invalid lines skipped", f"{self.skipped:,}"),
            ("workers", f"{self.workers}"),
            ("pipeline start-up (s)", f"{self.startup_seconds:.2f}"),
            ("output", str(self.output_dir)),
        ]


def expand_inputs(inputs: Union[PathLike, Sequence[PathLike]]) -> List[Path]:
    """The input files named by paths, globs and folders, in order, without repeats.

    inputs (Union[PathLike, Sequence[PathLike]]): Files, glob patterns (``**``
        allowed) or folders (their ``.txt``, ``.jsonl``, ``.ndjson`` and ``.json`` files).
    RETURNS (List[Path]): The files.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    files: List[Path] = []
    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            matches = sorted(
                p for p in path.iterdir()
                if p.is_file() and p.suffix in JSONL_SUFFIXES + TEXT_SUFFIXES
            )
        elif path.is_file():
            matches = [path]
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True)
                             if Path(p).is_file())
        else:
            matches = []
        if not matches:
            raise FileNotFoundError(f"No input file matches {text!r}.")
        files.extend(matches)
    unique: Dict[Path, None] = {}
    for path in files:
        unique.setdefault(path.resolve(), None)
    return list(unique)


def _output_names(files: Sequence[Path]) -> List[str]:
    """Stems, with as many parent folder names prefixed as needed to make them unique."""
    depth = [1] * len(files)

    def name(i: int) -> str:
        parts = files[i].with_suffix("").parts
        return "_".join(parts[-depth[i]:]).lstrip("/_") or "input"

    while True:
        groups: Dict[str, List[int]] = {}
        for i in range(len(files)):
            groups.setdefault(name(i), []).append(i)
        clashes = [ids for ids in groups.values() if len(ids) > 1]
        if not clashes:
            return [name(i) for i in range(len(files))]
        for ids in clashes:
            for i in ids:
                depth[i] += 1


def _line_offsets(path: Path, every: int) -> List[Tuple[int, int]]:
    """(first line, byte offset) of each block of ``every`` lines of a file."""
    starts = [(0, 0)]
    position = 0
    count = 0
    with path.open("rb") as file:
        for line in file:
            position += len(line)
            count += 1
            if count % every == 0:
                starts.append((count, position))
    if len(starts) > 1 and starts[-1][1] == position:
        starts.pop()  # the file ends exactly at a block boundary
    return starts


def make_partitions(files: Sequence[Path], partition_size: Optional[int] = None
                    ) -> List[Partition]:
    """Cut the input files into partitions (see the module docstring).

    files (Sequence[Path]): Input files (e.g. from ``expand_inputs``).
    partition_size (Optional[int]): Lines per partition; None for one per file.
    RETURNS (List[Partition]): The partitions, in input order.
    """
    if partition_size is not None and partition_size < 1:
        raise ValueError(f"partition_size must be >= 1 or None, got {partition_size}.")
    partitions = []
    for path, name in zip(files, _output_names(files)):
        is_jsonl = path.suffix.lower() in JSONL_SUFFIXES
        if partition_size is None:
            partitions.append(Partition(str(path), is_jsonl, f"{name}.jsonl"))
            continue
        for index, (first_line, offset) in enumerate(_line_offsets(path, partition_size)):
            partitions.append(Partition(str(path), is_jsonl, f"{name}-{index:05d}.jsonl",
                                        first_line, offset, partition_size))
    return partitions


# ------------------------------------------------------- worker: pipeline


_PIPELINES: Dict[Tuple[str, str, int], Any] = {}
_PIPELINE_LOCK = threading.Lock()
_IMPORTED_CODE: Dict[str, Any] = {}
_LOAD_LOG: List[Tuple[str, float]] = []


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()} (pid {os.getpid()})"


def default_pipeline_path() -> Path:
    """The embedded geographic pipeline (the default of ``entity-linker link``)."""
    return Path(__file__).parent / "data" / "geo_pipeline"


def _resolve_pipeline(pipeline: Optional[PathLike]) -> Path:
    if pipeline is None:
        return default_pipeline_path()
    path = Path(pipeline)
    if path.exists():
        return path
    import spacy.util

    if isinstance(pipeline, str) and spacy.util.is_package(pipeline):
        return spacy.util.get_package_path(pipeline)
    raise PipelineNotFoundError(
        f"Worker {_worker_name()}: no pipeline at {path}. Every worker loads the pipeline "
        "from this path: put the pipeline folder on a filesystem all workers share, or "
        "copy it to the same path on every machine."
    )


def _nel_kb_files(path: Path) -> Iterator[Tuple[str, Optional[Path]]]:
    """(component, KB path) of each nel component; None when a loader finds the KB itself."""
    from spacy.util import load_config

    config = load_config(path / "config.cfg", interpolate=False)
    for name in config["nlp"]["pipeline"]:
        component = config["components"].get(name, {})
        if component.get("factory") != NEL_FACTORY:
            continue
        cfg_file = path / name / "cfg"
        cfg = json.loads(cfg_file.read_text(encoding="utf8")) if cfg_file.exists() else {}
        loader = cfg.get("kb_loader")
        if not loader:
            yield name, path / name / "kb" / "kb.bin"
        elif loader.get("@misc") == KB_FROM_FILE:
            kb_path = Path(loader["kb_path"])
            yield name, kb_path / "kb.bin" if kb_path.is_dir() else kb_path
        else:
            yield name, None  # e.g. the GeoNames loader, which builds its cache if needed


def check_kb_files(pipeline: PathLike) -> None:
    """Raise KBNotFoundError if a nel component's KB file is missing at the given path.

    pipeline (PathLike): A pipeline folder.
    """
    path = Path(pipeline)
    for name, kb_file in _nel_kb_files(path):
        if kb_file is not None and not kb_file.is_file():
            raise KBNotFoundError(
                f"Worker {_worker_name()}: the KB of component '{name}' of the pipeline "
                f"{path} should be at {kb_file}, which does not exist. Every worker "
                "memory-maps the KB from this path: put the pipeline folder (with its KB) "
                "on a filesystem all workers share, or copy both to the same paths on "
                "every machine."
            )


def _import_code(code: Optional[str]) -> None:
    """Import a Python file of custom components once per process (like spaCy's --code)."""
    if not code or code in _IMPORTED_CODE:
        return
    from spacy.util import import_file

    if not Path(code).is_file():
        raise FileNotFoundError(f"Worker {_worker_name()}: no code file at {code}.")
    _IMPORTED_CODE[code] = import_file(f"entity_linker_corpus_code_{len(_IMPORTED_CODE)}",
                                       code)


def load_worker_pipeline(pipeline: Optional[PathLike] = None, code: Optional[PathLike] = None):
    """The pipeline for this process, loaded on first use and cached.

    The cache is keyed by the pipeline's path and the modification time of its
    config, so each worker process loads a pipeline once; the KB is
    memory-mapped, so a worker costs the model's weights, not the KB.
    pipeline (Optional[PathLike]): Pipeline folder or package; None for the
        embedded geographic pipeline.
    code (Optional[PathLike]): Python file to import first (custom components).
    RETURNS (Tuple[Language, float]): The pipeline and the seconds spent loading
        it in this call (0.0 when it came from the cache).
    """
    code_key = str(code) if code else ""
    path = _resolve_pipeline(pipeline)
    config_file = path / "config.cfg"
    if not config_file.is_file():
        raise PipelineNotFoundError(
            f"Worker {_worker_name()}: {path} is not a pipeline folder (no config.cfg)."
        )
    key = (str(path.resolve()), code_key, config_file.stat().st_mtime_ns)
    with _PIPELINE_LOCK:
        if key in _PIPELINES:
            return _PIPELINES[key], 0.0
        started = time.perf_counter()
        _import_code(code_key)
        check_kb_files(path)
        import spacy

        import entity_linker  # noqa: F401  (registers the nel factory and loaders)

        nlp = spacy.load(path)
        seconds = time.perf_counter() - started
        _PIPELINES[key] = nlp
        _LOAD_LOG.append((key[0], seconds))
        return nlp, seconds


def worker_state() -> Dict[str, Any]:
    """This process's pid and the pipelines it loaded (path, seconds), for checks."""
    return {"pid": os.getpid(), "loads": list(_LOAD_LOG)}


def process_memory(pid: Optional[int] = None) -> Dict[str, int]:
    """RSS, PSS, USS and anonymous memory of a process in bytes, from /proc (Linux).

    USS counts the pages only this process maps, including clean pages of a
    mapped KB file that no other process has touched yet; "anonymous" is the
    memory not backed by any file (what a process cannot share or drop).
    pid (Optional[int]): The process; None for this one.
    RETURNS (Dict[str, int]): Keys "rss", "pss", "uss", "anonymous".
    """
    fields: Dict[str, int] = {}
    with open(f"/proc/{pid or 'self'}/smaps_rollup") as file:
        for line in file:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return {"rss": fields["Rss"], "pss": fields["Pss"],
            "uss": fields["Private_Clean"] + fields["Private_Dirty"],
            "anonymous": fields.get("Anonymous", 0)}


# ---------------------------------------------------------- worker: linking


MAX_SKIPPED_EXAMPLES = 5


def read_records(partition: Partition, skipped: Optional[PartitionStats] = None
                 ) -> Iterator[Dict[str, Any]]:
    """The records of a partition: ``{"text": line}`` or the JSON object of each line.

    Blank lines are skipped. A bad line raises InputFormatError naming
    ``file:line``, or, with ``skipped``, is counted there (``skipped`` and the
    first few messages in ``skipped_examples``) and left out.
    """
    for record in _read_records(partition):
        if isinstance(record, InputFormatError):
            if skipped is None:
                raise record
            skipped.skipped += 1
            if len(skipped.skipped_examples) < MAX_SKIPPED_EXAMPLES:
                skipped.skipped_examples.append(str(record))
            continue
        yield record


def _read_records(partition: Partition) -> Iterator[Union[Dict[str, Any], InputFormatError]]:
    """The records of a partition, and an InputFormatError in place of each bad line."""
    with open(partition.path, "rb") as file:
        file.seek(partition.offset)
        lines: Iterable[bytes] = file
        if partition.n_lines is not None:
            lines = islice(file, partition.n_lines)
        for number, raw in enumerate(lines, partition.first_line + 1):
            where = f"{partition.path}:{number}"
            try:
                line = raw.decode("utf8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                yield InputFormatError(
                    f"{where}: not valid UTF-8 ({err.reason} at byte {err.start}). "
                    "Re-encode the file as UTF-8.")
                continue
            if not line.strip():
                continue
            if not partition.is_jsonl:
                yield {"text": line}
                continue
            try:
                record = json.loads(line)
            except ValueError as err:
                yield InputFormatError(f"{where}: invalid JSON ({err}).")
                continue
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                yield InputFormatError(f"{where}: expected a JSON object with a \"text\" "
                                       "string (one document per line).")
                continue
            try:
                record["text"].encode("utf8")
            except UnicodeEncodeError as err:  # a \udcxx escape: no text spaCy can hash
                yield InputFormatError(f"{where}: the \"text\" has a lone surrogate "
                                       f"(U+{ord(record['text'][err.start]):04X}).")
                continue
            yield record


def doc_entities(doc) -> List[Dict[str, Any]]:
    """The entities of a linked doc as JSON-able dicts (``kb_id`` "NIL" when unlinked)."""
    return [
        {"start": ent.start_char, "end": ent.end_char, "text": ent.text,
         "label": ent.label_, "kb_id": ent.kb_id_ or "NIL", "score": ent._.kb_score}
        for ent in doc.ents
    ]


def _count_output(path: Path, stats: PartitionStats) -> None:
    with path.open(encoding="utf8") as file:
        for line in file:
            ents = json.loads(line)["ents"]
            stats.documents += 1
            stats.mentions += len(ents)
            stats.linked += sum(ent["kb_id"] != "NIL" for ent in ents)


def _atomic_writer(target: Path):
    """A temporary file next to target (renamed into place by the caller)."""
    handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TMP_SUFFIX,
                                        dir=target.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(handle, 0o666 & ~umask)  # mkstemp makes private files; outputs are ordinary
    return os.fdopen(handle, "w", encoding="utf8"), Path(tmp_name)


def link_partition(partition: Partition, output_dir: str, pipeline: Optional[str] = None,
                   batch_size: int = DEFAULT_BATCH_SIZE, code: Optional[str] = None,
                   skip_invalid: bool = False) -> PartitionStats:
    """Link one partition and write its output file atomically (runs on a worker).

    partition (Partition): What to read.
    output_dir (str): The output folder, as the worker sees it.
    pipeline (Optional[str]): Pipeline folder or package; None for the embedded one.
    batch_size (int): Docs per ``nlp.pipe`` batch.
    code (Optional[str]): Python file with custom components to import first.
    skip_invalid (bool): Skip and count bad lines instead of raising InputFormatError.
    RETURNS (PartitionStats): Counts for the partition.
    """
    started = time.perf_counter()
    stats = PartitionStats(partition.output_name, worker=_worker_name())
    target = Path(output_dir) / partition.output_name
    if target.exists():
        # An earlier attempt finished (e.g. on a worker that died before reporting).
        _count_output(target, stats)
        stats.reused_output = True
        stats.seconds = time.perf_counter() - started
        return stats
    nlp, stats.startup_seconds = load_worker_pipeline(pipeline, code)
    records = ((record["text"], record)
               for record in read_records(partition, stats if skip_invalid else None))
    out, tmp_path = _atomic_writer(target)
    try:
        with out:
            for doc, record in nlp.pipe(records, as_tuples=True, batch_size=batch_size):
                ents = doc_entities(doc)
                stats.documents += 1
                stats.mentions += len(ents)
                stats.linked += sum(ent["kb_id"] != "NIL" for ent in ents)
                out.write(json.dumps({**record, "ents": ents}, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    stats.seconds = time.perf_counter() - started
    return stats


# ----------------------------------------------------------------- driver


def _prepare_default_kb() -> None:
    """Build the GeoNames KB cache once here, so local workers do not race to build it."""
    cfg = json.loads((default_pipeline_path() / "nel" / "cfg").read_text(encoding="utf8"))
    loader = cfg.get("kb_loader") or {}
    if loader.get("@misc") == "entity_linker.GeoNamesKB.v1":
        from .geonames import ensure_geonames_kb

        ensure_geonames_kb(loader.get("vector_length", 64))


def _remove_stale_tmp_files(output_dir: Path, names: Iterable[str]) -> None:
    """Delete the temporary files that killed tasks left behind for these outputs."""
    for name in names:
        for stale in output_dir.glob(f".{glob.escape(name)}.*{TMP_SUFFIX}"):
            stale.unlink(missing_ok=True)


def _link_partition_task(*args) -> Union[PartitionStats, CorpusError]:
    """link_partition on a worker, returning (not raising) the errors of the input.

    A raised exception makes the Dask worker log "Compute Failed" with a long
    traceback before the driver prints its message; a returned one is raised
    by the driver (``_raise_errors``) with nothing logged.
    """
    try:
        return link_partition(*args)
    except CorpusError as err:
        return err


def _raise_errors(results: Iterable[Union[PartitionStats, CorpusError]]) -> None:
    for result in results:
        if isinstance(result, BaseException):
            raise result


def _run_sync(partitions, args, progress):
    import dask
    from dask.diagnostics import ProgressBar

    # In this process: an error stops the run at once, and no worker logs it.
    tasks = [dask.delayed(link_partition, pure=False)(p, *args) for p in partitions]
    if progress:
        with ProgressBar(out=sys.stderr):
            return list(dask.compute(*tasks, scheduler="sync"))
    return list(dask.compute(*tasks, scheduler="sync"))


def _run_distributed(client, partitions, args, progress):
    from distributed import as_completed
    from distributed import progress as show_progress

    run_id = os.urandom(4).hex()
    futures = [
        client.submit(_link_partition_task, p, *args,
                      key=f"link-partition-{p.output_name}-{run_id}", pure=False)
        for p in partitions
    ]
    try:
        if progress:
            with contextlib.redirect_stdout(sys.stderr):  # the bar is no data
                show_progress(futures)
        for future in as_completed(futures):
            _raise_errors([future.result()])  # the first error stops the run
        return client.gather(futures)
    finally:
        client.cancel(futures)  # after an error, stop the rest on a shared cluster


def link_corpus(
    inputs: Union[PathLike, Sequence[PathLike]],
    output_dir: PathLike,
    pipeline: Optional[PathLike] = None,
    *,
    client=None,
    processes: Optional[int] = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    partition_size: Optional[int] = None,
    code: Optional[PathLike] = None,
    overwrite: bool = False,
    progress: bool = True,
    skip_invalid: bool = False,
) -> CorpusSummary:
    """Link every document of a corpus and write one JSONL file per partition.

    With ``client``, the partitions run on that Dask cluster; with ``processes``,
    on a new ``distributed.LocalCluster`` of that many worker processes (one
    thread each), closed at the end; with neither, in this process (Dask's
    synchronous scheduler). Output files that already exist are skipped.

    inputs (Union[PathLike, Sequence[PathLike]]): Text or JSONL files, globs or folders.
    output_dir (PathLike): Folder for the output files (created if needed); the
        workers must see it at the same path.
    pipeline (Optional[PathLike]): Pipeline folder or package with a ``nel``
        component; None for the embedded geographic pipeline. Workers load it
        from this path.
    client (Optional[distributed.Client]): A client of the cluster to use.
    processes (Optional[int]): Start a local cluster with this many workers.
    batch_size (int): Docs per ``nlp.pipe`` batch on a worker.
    partition_size (Optional[int]): Lines per partition; None for one per file.
    code (Optional[PathLike]): Python file with custom components, imported on
        each worker before loading the pipeline.
    overwrite (bool): Link again partitions whose output already exists.
    progress (bool): Show a progress bar (on stderr).
    skip_invalid (bool): Skip and count the bad input lines (``summary.skipped``,
        the first few in ``summary.skipped_examples``) instead of raising
        InputFormatError at the first one.
    RETURNS (CorpusSummary): Counts and throughput of this run.
    """
    if client is not None and processes is not None:
        raise ValueError("Pass either client (an existing cluster) or processes, not both.")
    if processes is not None and processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    files = expand_inputs(inputs)
    output_path = Path(output_dir)
    output_path.mkdir(parents=True, exist_ok=True)
    partitions = make_partitions(files, partition_size)
    input_paths = {str(path) for path in files}
    for partition in partitions:
        if str((output_path / partition.output_name).resolve()) in input_paths:
            raise ValueError(
                f"The output {output_path / partition.output_name} would overwrite an "
                "input file. Choose another output folder."
            )
    if overwrite:
        for partition in partitions:
            (output_path / partition.output_name).unlink(missing_ok=True)
    todo = [p for p in partitions if not (output_path / p.output_name).exists()]
    summary = CorpusSummary(output_dir=output_path, partitions=len(todo),
                            partitions_skipped=len(partitions) - len(todo))
    pipeline_arg = None if pipeline is None else str(pipeline)
    code_arg = None if code is None else str(Path(code).resolve())
    output_arg = str(output_path.resolve())
    if not todo:
        return summary
    if pipeline is None and client is None:
        _prepare_default_kb()
    cluster = None
    try:
        if processes is not None:
            from distributed import Client, LocalCluster

            # No dashboard; the scheduler's HTTP server (health checks) on a free port,
            # not :8787, which another cluster may hold (a warning on stderr).
            cluster = LocalCluster(n_workers=processes, threads_per_worker=1,
                                   processes=True, dashboard_address=None,
                                   scheduler_kwargs={"dashboard_address": ":0"})
            client = Client(cluster)
        started = time.perf_counter()
        args = (output_arg, pipeline_arg, batch_size, code_arg, skip_invalid)
        if client is None:
            results = _run_sync(todo, args, progress)
        else:
            summary.workers = len(client.scheduler_info()["workers"])
            results = _run_distributed(client, todo, args, progress)
        summary.seconds = time.perf_counter() - started
    finally:
        if cluster is not None:
            client.close()
            cluster.close()
    _remove_stale_tmp_files(output_path, (p.output_name for p in todo))
    for stats in results:
        summary.documents += stats.documents
        summary.mentions += stats.mentions
        summary.linked += stats.linked
        summary.startup_seconds = max(summary.startup_seconds, stats.startup_seconds)
        summary.skipped += stats.skipped
        room = MAX_SKIPPED_EXAMPLES - len(summary.skipped_examples)
        summary.skipped_examples.extend(stats.skipped_examples[:max(room, 0)])
    summary.nil = summary.mentions - summary.linked
    summary.partition_stats = list(results)
    return summary


__all__ = [
    "CorpusError",
    "CorpusSummary",
    "InputFormatError",
    "KBNotFoundError",
    "Partition",
    "PartitionStats",
    "PipelineNotFoundError",
    "check_kb_files",
    "expand_inputs",
    "link_corpus",
    "link_partition",
    "load_worker_pipeline",
    "make_partitions",
    "process_memory",
    "read_records",
    "worker_state",
]

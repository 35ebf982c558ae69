"""What runs in a worker process: the per-process pipeline, reading a partition, linking it.

``load_worker_pipeline`` (loaded once per process, KB memory-mapped),
``read_records`` (a partition's lines), ``link_partition`` (one task: read,
link, write one output file atomically), ``process_memory``.
"""

import json
import os
import socket
import tempfile
import threading
import time
from itertools import islice
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from ..geonames import geo_pipeline_path
from .partitions import (
    DEFAULT_BATCH_SIZE,
    KB_FROM_FILE,
    NEL_FACTORY,
    TMP_SUFFIX,
    InputFormatError,
    KBNotFoundError,
    Partition,
    PartitionStats,
    PathLike,
    PipelineNotFoundError,
)

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


def _resolve_pipeline(pipeline: Optional[PathLike]) -> Path:
    if pipeline is None:
        return geo_pipeline_path()
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

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

The package's modules: ``partitions`` (inputs, partitions, statistics,
errors), ``worker`` (the per-process pipeline and one task's linking) and
``driver`` (``link_corpus``). Import the public names from here.
"""

from ..errors import CorpusError  # re-exported: the base of corpus-linking errors
from .driver import link_corpus
from .partitions import (
    CorpusSummary,
    InputFormatError,
    KBNotFoundError,
    Partition,
    PartitionStats,
    PipelineNotFoundError,
    expand_inputs,
    make_partitions,
)
from .worker import (
    check_kb_files,
    link_partition,
    load_worker_pipeline,
    process_memory,
    read_records,
    worker_state,
)

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

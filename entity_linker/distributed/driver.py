"""The driver of a corpus run: ``link_corpus`` on a Dask cluster or in this process.

Cuts the inputs into partitions, skips those already written, submits one
task per partition (``worker.link_partition``), raises the first error a task
returns, and sums the statistics into a ``CorpusSummary``.
"""

import contextlib
import glob
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

from ..errors import CorpusError
from ..geonames import geo_pipeline_path
from .partitions import (
    DEFAULT_BATCH_SIZE,
    TMP_SUFFIX,
    CorpusSummary,
    PartitionStats,
    PathLike,
    expand_inputs,
    make_partitions,
)
from .worker import MAX_SKIPPED_EXAMPLES, link_partition

# ----------------------------------------------------------------- driver


def _prepare_default_kb() -> None:
    """Build the GeoNames KB cache once here, so local workers do not race to build it."""
    cfg = json.loads((geo_pipeline_path() / "nel" / "cfg").read_text(encoding="utf8"))
    loader = cfg.get("kb_loader") or {}
    if loader.get("@misc") == "entity_linker.GeoNamesKB.v1":
        from ..geonames import ensure_geonames_kb

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
            import dask
            from distributed import Client, LocalCluster

            # A worker's heartbeat that races the cluster's shutdown (after an
            # input error stops the run) logs a traceback at ERROR. Input errors
            # come back as task results, so when the log level asked for is
            # "error" or above (the CLI's default), our own workers log only
            # critical messages.
            quiet = str(dask.config.get("logging.distributed", "info")).lower() in (
                "error", "critical")
            # No dashboard; the scheduler's HTTP server (health checks) on a free port,
            # not :8787, which another cluster may hold (a warning on stderr).
            cluster = LocalCluster(n_workers=processes, threads_per_worker=1,
                                   processes=True, dashboard_address=None,
                                   scheduler_kwargs={"dashboard_address": ":0"},
                                   silence_logs=logging.CRITICAL if quiet else logging.WARN)
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

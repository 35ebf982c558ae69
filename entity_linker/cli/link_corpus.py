"""``entity-linker link-corpus``: link a corpus of files on a Dask cluster."""

import logging
import os
from pathlib import Path
from typing import List, Optional

import typer

from . import app, msg, out


@app.command("link-corpus")
def link_corpus_command(
    inputs: List[str] = typer.Argument(
        ..., help="Text files (one doc per line), JSONL files (a 'text' field per line), "
        "globs or folders.", show_default=False,
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Output folder: one JSONL file per partition.",
        show_default=False,
    ),
    processes: Optional[int] = typer.Option(
        None, "--processes", "-n", help="Start a local Dask cluster with this many worker "
        "processes. Without it and --scheduler, link in this process.", show_default=False,
    ),
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", help="Address of a running Dask scheduler "
        "(e.g. tcp://10.0.0.5:8786).", show_default=False,
    ),
    pipeline: Optional[str] = typer.Option(
        None, "--pipeline", "-p", help="Pipeline folder or package with a nel component, at "
        "a path every worker sees (default: the embedded GeoNames linker).",
        show_default=False,
    ),
    batch_size: int = typer.Option(256, "--batch-size", "-b", help="Docs per nlp.pipe batch."),
    partition_size: Optional[int] = typer.Option(
        None, "--partition-size", help="Lines per partition (default: one partition per "
        "file).", show_default=False,
    ),
    code: Optional[Path] = typer.Option(
        None, "--code", help="Python file with custom components, imported on each worker.",
        show_default=False,
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Link again the partitions whose output exists."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress "
                                  "(on stderr)."),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Skip the bad input lines (not UTF-8, a JSONL line that "
        "is not a JSON object with a 'text' string) and report their count and the first "
        "few FILE:LINE at the end. Without it, the first bad line stops the run with "
        "FILE:LINE and exit code 1 (the partitions already written are kept; a re-run "
        "skips them)."),
) -> None:
    """Link every document of a corpus; write one JSONL file per input partition.

    Each output line is the input record plus "ents" (start, end, text, label,
    kb_id, score), the list `entity-linker link --format jsonl` writes. Output
    files are written atomically, so a re-run skips the partitions already
    done. Every worker memory-maps the KB from the pipeline's path, so workers
    on one machine share it. The summary is printed on stdout, messages on
    stderr.
    """
    if processes is not None and scheduler is not None:
        raise typer.BadParameter("use --processes or --scheduler, not both",
                                 param_hint="--processes")
    try:
        import distributed  # noqa: F401
    except ImportError:
        msg.fail("link-corpus needs Dask: pip install 'entity_linker[dask]'", exits=1)
    from ..distributed import CorpusError, link_corpus

    _quiet_dask_logs()
    client = None
    if scheduler is not None:
        from distributed import Client

        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, ValueError, TypeError) as err:
            msg.fail(f"Could not connect to the Dask scheduler at {scheduler}: {err}", exits=1)
    try:
        summary = link_corpus(inputs, output, pipeline, client=client, processes=processes,
                              batch_size=batch_size, partition_size=partition_size,
                              code=code, overwrite=overwrite, progress=progress,
                              skip_invalid=skip_invalid)
    except (CorpusError, FileNotFoundError) as err:
        msg.fail(str(err), exits=1)
    except ValueError as err:  # e.g. an output that would overwrite an input file
        msg.fail(str(err), exits=1)
    finally:
        if client is not None:
            client.close()
    if summary.partitions == 0:
        msg.good(f"Nothing to do: all {summary.partitions_skipped} partitions are in {output} "
                 "(--overwrite links them again).")
        return
    msg.good(f"Linked {summary.documents:,} documents into {output}")
    out.table(summary.rows(), divider=False)
    if summary.skipped:
        msg.warn(f"Skipped {summary.skipped:,} invalid input line(s), e.g.:")
        for example in summary.skipped_examples:
            msg.text(f"  {example}")


def _quiet_dask_logs() -> None:
    """Keep Dask's log lines on stderr to errors (the user can set DASK_LOGGING__DISTRIBUTED).

    Input errors are returned by the tasks, so no worker logs them; this keeps
    out the warnings of a run stopped by one (tasks cancelled on the workers,
    workers closed mid-task). The workers of --processes read the setting from
    the environment when they start; this process's loggers are set directly.
    """
    level = os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    import dask

    dask.config.set({"logging.distributed": level})
    try:
        logging.getLogger("distributed").setLevel(level.upper())
    except (ValueError, TypeError):  # a level name logging does not know: leave it
        pass

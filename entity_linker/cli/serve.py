"""``entity-linker serve``: the linker as an HTTP service (entity_linker.serve)."""

import json
import os
from pathlib import Path
from typing import Optional

import typer

from . import app, msg


@app.command("serve")
def serve_command(
    pipeline: Optional[Path] = typer.Option(
        None, "--pipeline", "-p", help="Pipeline folder with a nel (default: the embedded "
        "GeoNames linker).", show_default=False),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", help="Worker processes, each with the "
                                "pipeline loaded once (its KB memory-mapped)."),
    max_batch: int = typer.Option(64, "--max-batch", help="Link at most this many docs in "
                                  "one nlp.pipe batch."),
    max_wait_ms: float = typer.Option(5.0, "--max-wait-ms", help="Wait at most this long "
                                      "for other requests to batch with."),
    max_body_bytes: int = typer.Option(1_000_000, "--max-body-bytes", help="Largest "
                                       "request body (413 above)."),
    max_text_chars: int = typer.Option(100_000, "--max-text-chars", help="Longest text "
                                       "(413 above)."),
    max_texts: int = typer.Option(128, "--max-texts", help="Most texts (or NIF contexts) "
                                  "per request (413 above)."),
    max_spans: int = typer.Option(1_000, "--max-spans", help="Most given mentions per text."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds a request may wait for "
                                  "its links (503 after)."),
    body_timeout: float = typer.Option(10.0, "--body-timeout", help="Seconds to receive a "
                                       "request body (408 after)."),
    max_queue: int = typer.Option(4_096, "--max-queue", help="Docs waiting to be linked "
                                  "before requests are refused with 503."),
    linker_process: bool = typer.Option(
        False, "--linker-process/--no-linker-process", help="Link in a child process of "
        "each worker, started with it and restarted if it dies (its batch gets 503s): "
        "the worker's event loop only handles HTTP, so HTTP and linking can run on two "
        "cores instead of sharing one GIL, and a second batch is linked while the answers "
        "of one go out. It pays with a core to spare and ~100+ concurrent requests per "
        "worker (0.95x in-process nlp.pipe at 128 clients vs 0.83x); with fewer, or with "
        "the cores busy, linking on a thread of the worker (the default) is as fast or "
        "faster, and takes ~140 MB less per worker (BENCHMARKS.md)."),
    max_connections: int = typer.Option(1_024, "--max-connections", help="Open connections "
                                        "per worker before uvicorn answers 503."),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn's log level."),
) -> None:
    """Serve the linker over HTTP: POST /link (JSON), POST / (REL), POST /nif (NIF 2.1
    for GERBIL), GET /kb/entity/{id}, /kb/alias/{text}, /health, /metrics.

    Concurrent requests are linked together in nlp.pipe batches, on a linking
    thread of each worker (or in a linking process: --linker-process). On SIGTERM or Ctrl-C
    the server stops accepting connections, answers the requests in flight,
    stops the linking processes, then exits.
    """
    import uvicorn

    from ..serve.app import CONFIG_ENV

    if pipeline is not None and not (pipeline / "config.cfg").is_file():
        msg.fail(f"--pipeline {pipeline}: not a pipeline folder (no config.cfg).", exits=1)
    for name, value in (("--workers", workers), ("--max-batch", max_batch),
                        ("--max-body-bytes", max_body_bytes), ("--max-texts", max_texts),
                        ("--max-text-chars", max_text_chars), ("--max-queue", max_queue),
                        ("--max-connections", max_connections)):
        if value < 1:
            raise typer.BadParameter("must be at least 1", param_hint=name)
    for name, value in (("--timeout", timeout), ("--body-timeout", body_timeout)):
        if value <= 0:
            raise typer.BadParameter("must be positive", param_hint=name)
    config = {
        "pipeline": str(pipeline.resolve()) if pipeline is not None else None,
        "max_batch": max_batch, "max_wait": max(0.0, max_wait_ms) / 1000,
        "linker_process": linker_process,
        "limits": {"max_body_bytes": max_body_bytes, "max_text_chars": max_text_chars,
                   "max_texts": max_texts, "max_spans": max_spans,
                   "request_timeout": timeout, "body_timeout": body_timeout,
                   "max_queue_docs": max_queue},
    }
    os.environ[CONFIG_ENV] = json.dumps(config)
    msg.info(f"Serving {'the embedded geo pipeline' if pipeline is None else pipeline} on "
             f"http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''})")
    uvicorn.run("entity_linker.serve.app:app_from_env", factory=True, host=host, port=port,
                workers=workers, log_level=log_level, limit_concurrency=max_connections,
                timeout_graceful_shutdown=int(timeout + body_timeout) + 1,
                lifespan="on", access_log=False)

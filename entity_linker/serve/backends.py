"""Where a worker's batches are linked: a thread of the worker, or a linking
child process of its own.

In the thread (``--no-linker-process``) the HTTP handling (uvicorn, Starlette,
JSON) and ``nlp.pipe`` share the worker's GIL, so under load they take turns
on one core. A linking child (``--linker-process``, started once per worker,
the pipeline loaded in it, its KB memory-mapped) links on a core of its own:
the worker's event loop only reads requests and joins the rendered answers
the child sends back over a pipe.

Both have the batcher's interface: ``run(jobs)`` -> ``[(job, result or
RequestError)]``, called on the batcher's single linking thread. A child that
dies (or outlives ``batch_timeout`` on one batch) fails its batch's jobs with
503 and is started again before the next batch; if it cannot even start
(``MAX_FAILED_STARTS`` times in a row), the worker shuts down cleanly.
"""

import multiprocessing
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import wait
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .errors import RequestError
from .linking import Job, LinkService

MAX_FAILED_STARTS = 3  # child starts in a row that died before ready: the worker stops
START_TIMEOUT = 300.0  # seconds for a child to load its pipeline
STOP_TIMEOUT = 10.0  # seconds for a child to exit after it was told to


class ThreadBackend:
    """Links in the calling thread (the batcher's linking thread) of this process."""

    mode = "thread"
    max_in_flight = 1  # a second batch would only contend for the same GIL

    def __init__(self, links: LinkService):
        self.links = links
        self.restarts = 0
        self.linking_seconds = 0.0  # time spent linking batches

    def start(self) -> None:
        """Nothing to start: the pipeline is loaded."""

    def run(self, jobs: Sequence[Job]) -> List[Tuple[Job, Any]]:
        """Link a batch; per job its rendered results or its RequestError."""
        started = time.perf_counter()
        try:
            return self.links.run(jobs)
        finally:
            self.linking_seconds += time.perf_counter() - started

    def close(self) -> None:
        """Nothing to stop."""

    def info(self) -> Dict[str, Any]:
        return {"mode": self.mode, "pid": os.getpid()}


class LinkerDied(Exception):
    """The linking child exited (or was killed) before answering a batch."""


class _Child:
    """One linking child: its process, its end of the pipe, and the order of its
    answers (it answers the batches in the order they were sent)."""

    def __init__(self, process, conn):
        self.process = process
        self.conn = conn
        self.sent = 0  # batches sent
        self.answered = 0  # batches whose answer has been read (or lost)
        self.turn = threading.Condition()
        self.dead: Optional[str] = None  # why, once it is known to be dead

    def alive(self) -> bool:
        return self.dead is None and self.process.is_alive()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()


class ProcessBackend:
    """Links in a child process that loads the pipeline at ``pipeline``.

    pipeline (Optional[str]): The pipeline folder (None: the embedded one).
    batch_timeout (float): Seconds a batch may take before the child is killed
        and started again (a hung child must not hold the batcher for ever).
    on_exit (Callable): Called (once) when the child cannot be started
        ``MAX_FAILED_STARTS`` times in a row; the default stops this worker
        with SIGTERM, so uvicorn shuts it down cleanly.
    """

    mode = "process"
    # A second batch is handed over while one is linked (batcher.py): it is sent
    # at once and waits in the pipe, so the child starts it as soon as it has
    # answered the first.
    max_in_flight = 2

    def __init__(self, pipeline: Optional[str] = None, *, batch_timeout: float = 120.0,
                 on_exit: Optional[Callable[[], None]] = None):
        self.pipeline = pipeline
        self.batch_timeout = batch_timeout
        self.on_exit = on_exit or _stop_this_worker
        self._context = multiprocessing.get_context("spawn")  # no fork of a threaded loop
        self._child: Optional[_Child] = None
        # Held to start, replace or stop the child and to send it a batch (start,
        # run and close come from different threads); not while waiting for answers.
        self._lock = threading.Lock()
        self._failed_starts = 0
        self._gave_up = False
        self._closed = False
        self.restarts = 0  # children started again after one died
        self.linking_seconds = 0.0  # the children's own time linking batches
        self.child_info: Dict[str, Any] = {}

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the child and wait until its pipeline is loaded (blocking: call
        it off the event loop). Raises RuntimeError if the child fails to start."""
        with self._lock:
            self._start()

    def _start(self) -> None:
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(target=child_main, args=(child_end, self.pipeline),
                                        name="entity-linker-linking", daemon=True)
        process.start()
        # Only the child may hold its end: then a dead child reads as EOF here.
        child_end.close()
        child = _Child(process, parent_end)
        ready = wait([parent_end, process.sentinel], START_TIMEOUT)
        try:
            if parent_end not in ready:
                raise LinkerDied("did not load its pipeline in time" if not ready else
                                 f"exited while loading (exit code {process.exitcode})")
            kind, payload = parent_end.recv()
            if kind != "ready":
                raise LinkerDied(f"could not load the pipeline: {payload}")
        except (LinkerDied, EOFError, OSError) as err:
            child.kill()
            self._failed_starts += 1
            reason = err if isinstance(err, LinkerDied) else "exited while loading"
            raise RuntimeError(f"the linking process {reason}") from None
        self._failed_starts = 0
        self._child = child
        self.child_info = payload
        print(f"entity-linker serve (pid {os.getpid()}): linking process {process.pid} "
              "ready.", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Tell the child to exit once its batches are done; kill it if it does not."""
        with self._lock:
            self._closed = True
            child, self._child = self._child, None
            if child is None:
                return
            try:
                child.conn.send(None)
            except OSError:
                pass
            child.process.join(STOP_TIMEOUT)
            child.kill()

    # ------------------------------------------------------------------- linking

    def run(self, jobs: Sequence[Job]) -> List[Tuple[Job, Any]]:
        """Link a batch in the child; per job its rendered results or its
        RequestError (503 for every job if the child dies meanwhile)."""
        with self._lock:
            child = self._child
            if child is None or not child.alive():
                if self._gave_up or self._closed:
                    return _all(jobs, _unavailable("The linking process could not be "
                                                   "started; this worker is stopping."))
                if child is not None:  # it died since the last batch
                    self.restarts += 1
                    self._note_death(child)
                    child.kill()
                    self._child = None
                try:
                    self._start()
                except RuntimeError as err:
                    if self._failed_starts >= MAX_FAILED_STARTS:
                        self._gave_up = True
                        self.on_exit()
                    return _all(jobs, _unavailable(f"{str(err).capitalize()}."))
                child = self._child
            try:
                child.conn.send([job.spec() for job in jobs])
            except (OSError, ValueError):
                child.dead = child.dead or "exited"
            ticket = child.sent
            child.sent += 1
        try:
            reply = self._answer(child, ticket)
        except LinkerDied as err:
            self._died(child, str(err))
            return _all(jobs, _unavailable(f"The linking process {err} while linking this "
                                           "request; it is being restarted."))
        kind, payload = reply[0], reply[1]
        if kind == "bug":  # an exception in linking: the batch fails as in the thread
            raise RuntimeError(payload)
        self.linking_seconds += reply[2]
        return [(job, _result(item)) for job, item in zip(jobs, payload)]

    def _answer(self, child: _Child, ticket: int) -> Any:
        """The child's answer to batch ``ticket`` (read after the earlier ones)."""
        with child.turn:
            while child.answered != ticket:
                child.turn.wait()
        try:
            if child.dead is not None:
                raise LinkerDied(child.dead)
            ready = wait([child.conn, child.process.sentinel], self.batch_timeout)
            if child.conn in ready:
                try:
                    return child.conn.recv()
                except (EOFError, OSError):
                    pass
            elif not ready:
                child.dead = (f"took longer than {self.batch_timeout:g} s on one batch and "
                              "was stopped")
                child.process.kill()
                raise LinkerDied(child.dead)
            child.process.join(1)
            child.dead = f"exited (exit code {child.process.exitcode})"
            raise LinkerDied(child.dead)
        except (OSError, ValueError):  # its pipe was closed under us: it was replaced
            child.dead = child.dead or "exited"
            raise LinkerDied(child.dead) from None
        finally:
            with child.turn:
                child.answered += 1
                child.turn.notify_all()

    def _died(self, child: _Child, why: str) -> None:
        """A child died with batches in flight: replace it now (in the background),
        so that the next batch need not wait for the new one to load."""
        with self._lock:
            if self._child is not child:
                return  # already replaced
            self._note_death(child, why)
            self.restarts += 1
            self._child = None
        threading.Thread(target=self._replace, args=(child,), daemon=True).start()

    def _replace(self, dead: _Child) -> None:
        with self._lock:
            if self._child is None and not (self._gave_up or self._closed):
                try:
                    self._start()
                except RuntimeError:
                    pass  # the next batch tries again, and counts the failures
        # Killed after the new child is started: a batch still waiting for the old
        # one reads EOF then (503) rather than wait for it.
        dead.kill()

    def _note_death(self, child: _Child, why: str = "") -> None:
        process = child.process
        print(f"entity-linker serve (pid {os.getpid()}): the linking process {process.pid} "
              f"{why or f'exited (exit code {process.exitcode})'}; starting another.",
              file=sys.stderr, flush=True)

    def info(self) -> Dict[str, Any]:
        child = self._child
        alive = child is not None and child.alive()
        return {"mode": self.mode, "pid": child.process.pid if alive else None,
                "status": "ok" if alive else ("stopped" if self._gave_up else "starting"),
                "restarts": self.restarts}


def _all(jobs: Sequence[Job], result: Any) -> List[Tuple[Job, Any]]:
    return [(job, result) for job in jobs]


def _unavailable(message: str) -> RequestError:
    return RequestError(503, "service", message, kind="linker_unavailable")


def _result(item: Any) -> Any:
    """A child's per-job answer: results, or ("error", status, field, message, kind)."""
    if isinstance(item, tuple) and item and item[0] == "error":
        return RequestError(*item[1:])
    return item


def _stop_this_worker() -> None:
    print(f"entity-linker serve (pid {os.getpid()}): the linking process failed to start "
          f"{MAX_FAILED_STARTS} times in a row; stopping.", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)


# ---------------------------------------------------------------------- the child


def child_main(conn, pipeline: Optional[str]) -> None:
    """The linking process: load the pipeline, then link the batches it is sent
    until told to stop (None) or its parent is gone (EOF)."""
    # Ctrl-C reaches the whole process group, and a service manager may send
    # SIGTERM to it: the worker decides when its linker stops (after the
    # requests in flight), so the child ignores both and leaves at EOF or None.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        links = LinkService.load(pipeline)
    except Exception as err:  # a broken pipeline: say why, and exit
        conn.send(("failed", f"{type(err).__name__}: {err}"))
        return
    conn.send(("ready", {"pid": os.getpid(), "finds_mentions": links.finds_mentions}))
    while True:
        try:
            specs = conn.recv()
        except (EOFError, OSError):
            return
        if specs is None:
            return
        started = time.perf_counter()
        try:
            outcome = links.link(specs)
        except Exception as err:  # a bug: the batch's requests fail with 500, as in-thread
            conn.send(("bug", f"{type(err).__name__}: {err}"))
            continue
        # RequestError does not survive pickling (its arguments): send its fields.
        payload = [("error", r.status, r.field, r.message, r.kind)
                   if isinstance(r, RequestError) else r for r in outcome]
        conn.send(("done", payload, time.perf_counter() - started))

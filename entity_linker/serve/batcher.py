"""Dynamic batching: the requests that arrive together are linked together.

Each worker process has one Batcher: handlers ``submit`` jobs (a request's
texts) to a queue; one background task takes the first waiting job, waits up
to ``max_wait`` seconds for more (or until ``max_docs`` docs are waiting),
then links them all in one call of the link function (``nlp.pipe`` batches)
on a linking thread, so the event loop keeps accepting, reading and
answering requests meanwhile; then it resolves the jobs' futures. While a
batch runs, the next one fills up, so under load batches grow by themselves
and with one client a request waits at most ``max_wait`` for company.

With ``max_in_flight`` 2 (a linking process, which links on a core of its
own), a second batch may be handed over while one is linked, so the linker
need not idle while the answers of its last batch go out and the next
requests come in: when it is idle and many docs wait (2 x MIN_HALF_BATCH),
they go as two half batches; while one batch is linked, the next goes as soon
as as many docs wait.

Jobs whose client has gone or whose timeout has passed before their batch
starts are skipped. ``close`` stops taking jobs and links the ones waiting
before it returns (graceful shutdown: nothing accepted is dropped).
"""

import asyncio
import collections
import concurrent.futures
from typing import Any, Callable, Deque, List, Optional, Sequence, Tuple

from .errors import RequestError

FRUITLESS_WAITS = 3  # waits in a row without company before waiting stops paying
# Docs per half batch, at least, to split what waits for an idle linker in two.
# Smaller nlp.pipe batches cost more per doc: at 64 clients, halves of 32 won
# back in overlap what they lost in batch size (0.81x in-process both ways, and
# less under CPU contention), halves of 48 (96 clients) win 0.88x vs 0.82x.
MIN_HALF_BATCH = 40


class Batcher:
    """Collects jobs into batches and runs them on one linking thread.

    run (Callable): Takes a list of jobs, returns [(job, result or RequestError)].
    max_docs (int): Link at most this many docs at once (a single larger job
        is linked alone).
    max_wait (float): Seconds to wait for more jobs after the first one.
    max_queue_docs (int): Refuse jobs (503) while this many docs are waiting.
    on_batch (Callable): Called with each batch's doc count and linking seconds
        (metrics).
    max_in_flight (int): Batches handed to the link function at once (each on
        a thread of its own): 1 for linking in this process, 2 for a linking
        process (the second batch waits in its pipe while the first is linked).
    arriving (Callable): How many requests are being read that will be queued
        soon. When the last few waits found no company (one client alone), the
        batcher waits only while some are being read, and only until they have
        all come; a wait that finds company, or jobs that queued up during a
        batch, turn waiting back on.
    """

    def __init__(self, run: Callable[[List[Any]], List[Tuple[Any, Any]]], *,
                 max_docs: int = 64, max_wait: float = 0.005, max_queue_docs: int = 4096,
                 on_batch: Optional[Callable[[int, float], None]] = None,
                 arriving: Optional[Callable[[], int]] = None, max_in_flight: int = 1):
        if max_docs < 1:
            raise ValueError(f"max_docs must be >= 1, got {max_docs}.")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}.")
        self.max_in_flight = max_in_flight
        self._in_flight: List[int] = []  # the doc counts of the batches being linked
        self._batch_tasks: set = set()
        self.run = run
        self.max_docs = max_docs
        self.max_wait = max(0.0, max_wait)
        self.max_queue_docs = max_queue_docs
        self.on_batch = on_batch
        self.arriving = arriving
        self._pending: Deque[Any] = collections.deque()
        self._queued_docs = 0
        self._wakeup: Optional[asyncio.Event] = None
        self._task: Optional[asyncio.Task] = None
        self._executor: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._closing = False
        self._collecting = False  # waiting for company: wake only when max_docs wait
        self._waits_pay = True  # recent waits found company
        self._fruitless = 0  # waits in a row that found none
        self.batches = 0
        self.docs = 0

    @property
    def queued_docs(self) -> int:
        """Docs waiting for a batch."""
        return self._queued_docs

    async def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            self.max_in_flight, thread_name_prefix="entity-linker-batch")
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def submit(self, job) -> Any:
        """Queue a job and wait for its result (raises its RequestError)."""
        return await self.enqueue(job)

    def enqueue(self, job) -> "asyncio.Future[Any]":
        """Queue a job; its future resolves to its result."""
        if self._closing or self._task is None:
            raise RequestError(503, "service", "The service is shutting down.",
                               kind="shutting_down")
        if self._queued_docs and self._queued_docs + job.n_docs > self.max_queue_docs:
            raise RequestError(503, "service", f"The service is busy ({self._queued_docs:,} "
                               "docs waiting); retry later.", kind="overloaded")
        job.future = asyncio.get_running_loop().create_future()
        self._pending.append(job)
        self._queued_docs += job.n_docs
        if (not self._collecting or self._queued_docs >= self.max_docs
                or (not self._waits_pay and not self._more_coming())):
            self._wakeup.set()
        return job.future

    async def close(self) -> None:
        """Stop taking jobs; link the waiting ones; stop the background task."""
        self._closing = True
        if self._task is None:
            return
        self._wakeup.set()  # also ends a wait for company: the waiting jobs go now
        await self._task
        self._task = None
        self._executor.shutdown(wait=True)

    # ------------------------------------------------------------------ internals

    def _more_coming(self) -> bool:
        return self.arriving is None or self.arriving() > 0

    def _waiting_docs(self, enough: Optional[int] = None) -> int:
        """Docs waiting, counted up to ``enough`` (default max_docs)."""
        enough = self.max_docs if enough is None else enough
        n = 0
        for job in self._pending:
            n += job.n_docs
            if n >= enough:
                break
        return n

    def _may_hand_over(self) -> bool:
        """Whether a batch may go now: the linker is idle, or it has room for a
        second batch and a batch as large as the one it links is waiting."""
        if not self._in_flight:
            return True
        if len(self._in_flight) >= self.max_in_flight:
            return False
        return self._waiting_docs() >= min(self.max_docs, self._in_flight[-1])

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._pending or not self._may_hand_over():
                if self._closing and not self._pending:
                    if self._batch_tasks:  # let the batches being linked finish
                        await asyncio.gather(*self._batch_tasks)
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            limit = self.max_docs
            if not self._in_flight:
                if (self.max_wait > 0 and not self._closing
                        and (self._waits_pay or self._more_coming())
                        and self._waiting_docs() < self.max_docs):
                    # Wait for company: until max_wait has passed or max_docs docs
                    # wait (enqueue wakes us only then, not at every arrival).
                    before = len(self._pending)
                    self._collecting = True
                    self._wakeup.clear()
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), self.max_wait)
                    except asyncio.TimeoutError:
                        pass
                    finally:
                        self._collecting = False
                    if len(self._pending) > before:
                        self._waits_pay, self._fruitless = True, 0
                    else:
                        self._fruitless += 1
                        self._waits_pay = self._fruitless < FRUITLESS_WAITS
                elif len(self._pending) > 1:  # jobs queued up during the last batch
                    self._waits_pay, self._fruitless = True, 0
                waiting = self._waiting_docs(2 * self.max_docs)
                if self.max_in_flight > 1 and waiting >= 2 * MIN_HALF_BATCH:
                    # Half now, half right after: the linker links one half while
                    # the other's answers go out and its clients' next requests
                    # come in, instead of idling meanwhile.
                    limit = min(self.max_docs, (waiting + 1) // 2)
            batch = self._take(limit)
            if not batch:
                continue
            n_docs = sum(job.n_docs for job in batch)
            self._in_flight.append(n_docs)
            task = loop.create_task(self._link(batch, n_docs))
            self._batch_tasks.add(task)
            task.add_done_callback(self._batch_tasks.discard)

    async def _link(self, batch: List[Any], n_docs: int) -> None:
        """Link one batch on a linking thread; resolve its jobs' futures."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            outcome = await loop.run_in_executor(self._executor, self.run, batch)
        except Exception as err:  # a bug in linking: every job of the batch fails
            outcome = [(job, err) for job in batch]
        finally:
            self._in_flight.remove(n_docs)
            self._wakeup.set()  # the linker has room: the loop may hand over a batch
        self.batches += 1
        self.docs += n_docs
        if self.on_batch is not None:
            self.on_batch(n_docs, loop.time() - started)
        for job, result in outcome:
            if job.future.done():
                continue
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)

    def _take(self, limit: int) -> List[Any]:
        """The next batch: waiting jobs up to limit docs (at least one job)."""
        batch: List[Any] = []
        n = 0
        while self._pending:
            job = self._pending[0]
            if batch and n + job.n_docs > limit:
                break
            self._pending.popleft()
            self._queued_docs -= job.n_docs
            if job.abandoned or job.future.done():
                continue
            batch.append(job)
            n += job.n_docs
        return batch


def abandon(jobs: Sequence[Any]) -> None:
    """Mark jobs as no longer wanted (their batch skips them if not started)."""
    for job in jobs:
        job.abandoned = True

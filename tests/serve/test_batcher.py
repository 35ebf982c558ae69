"""The batcher in-process (no server, no pipeline): batching, timeouts, skipped
jobs, overload and draining at close."""

import asyncio
import threading
import time

import pytest

from entity_linker.serve.batcher import Batcher
from entity_linker.serve.errors import RequestError
from entity_linker.serve.linking import Job


def job(*texts, fail=None):
    return Job(list(texts), [None] * len(texts))


class Recorder:
    """A link function: echoes the texts upper-cased, records batch sizes."""

    def __init__(self, delay=0.0):
        self.delay = delay
        self.batches = []
        self.threads = set()

    def __call__(self, jobs):
        self.threads.add(threading.get_ident())
        self.batches.append(sum(j.n_docs for j in jobs))
        time.sleep(self.delay)
        out = []
        for j in jobs:
            if "bad" in j.texts:
                out.append((j, RequestError(422, "texts", "bad text")))
            else:
                out.append((j, [t.upper() for t in j.texts]))
        return out


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_jobs_share_a_batch_and_get_their_own_results():
    recorder = Recorder()

    async def main():
        batcher = Batcher(recorder, max_docs=64, max_wait=0.05)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(job(f"t{i}", f"u{i}"))
                                         for i in range(10)))
        await batcher.close()
        return results

    results = run(main())
    assert results == [[f"T{i}", f"U{i}"] for i in range(10)]
    assert recorder.batches == [20]
    assert threading.get_ident() not in recorder.threads  # linked off the event loop


def test_batches_are_capped_but_a_large_job_runs_alone():
    recorder = Recorder()

    async def main():
        batcher = Batcher(recorder, max_docs=4, max_wait=0.05)
        await batcher.start()
        big = batcher.submit(job(*"abcdefg"))
        small = [batcher.submit(job(c)) for c in "hijkl"]
        results = await asyncio.gather(big, *small)
        await batcher.close()
        return results

    results = run(main())
    assert results[0] == list("ABCDEFG")
    assert recorder.batches == [7, 4, 1]


def test_a_failing_job_does_not_fail_its_batch():
    async def main():
        batcher = Batcher(Recorder(), max_wait=0.05)
        await batcher.start()
        good = asyncio.ensure_future(batcher.submit(job("ok")))
        with pytest.raises(RequestError):
            await batcher.submit(job("bad"))
        assert await good == ["OK"]
        await batcher.close()

    run(main())


def test_a_bug_fails_the_jobs_of_its_batch_and_the_batcher_goes_on():
    calls = []

    def flaky(jobs):
        calls.append(len(jobs))
        if len(calls) == 1:
            raise ZeroDivisionError("bug")
        return [(j, ["fine"]) for j in jobs]

    async def main():
        batcher = Batcher(flaky, max_wait=0)
        await batcher.start()
        with pytest.raises(ZeroDivisionError):
            await batcher.submit(job("a"))
        assert await batcher.submit(job("b")) == ["fine"]
        await batcher.close()

    run(main())


def test_abandoned_jobs_are_skipped():
    recorder = Recorder(delay=0.2)

    async def main():
        batcher = Batcher(recorder, max_wait=0)
        await batcher.start()
        first = batcher.enqueue(job("first"))
        await asyncio.sleep(0.05)  # "first" is being linked
        gone = job("gone")
        future = batcher.enqueue(gone)
        gone.abandoned = True  # its client left (or timed out) while it waited
        future.cancel()
        kept = batcher.enqueue(job("kept"))
        assert await first == ["FIRST"] and await kept == ["KEPT"]
        await batcher.close()

    run(main())
    assert recorder.batches == [1, 1]


def test_overload_is_refused_with_503():
    async def main():
        batcher = Batcher(Recorder(delay=0.1), max_wait=0, max_queue_docs=3)
        await batcher.start()
        futures = [batcher.enqueue(job("a", "b"))]
        await asyncio.sleep(0.02)
        futures.append(batcher.enqueue(job("c", "d", "e")))  # 3 waiting
        with pytest.raises(RequestError) as err:
            batcher.enqueue(job("f"))
        assert err.value.status == 503 and err.value.kind == "overloaded"
        await asyncio.gather(*futures)
        await batcher.close()

    run(main())


def test_close_links_the_waiting_jobs_then_refuses_new_ones():
    recorder = Recorder(delay=0.05)

    async def main():
        batcher = Batcher(recorder, max_docs=2, max_wait=0.01)
        await batcher.start()
        futures = [batcher.enqueue(job(f"t{i}")) for i in range(7)]
        await batcher.close()
        assert all(f.done() for f in futures)
        assert [f.result() for f in futures] == [[f"T{i}"] for i in range(7)]
        with pytest.raises(RequestError) as err:
            batcher.enqueue(job("late"))
        assert err.value.status == 503

    run(main())
    assert sum(recorder.batches) == 7


def test_one_client_waits_at_most_max_wait():
    recorder = Recorder()

    async def main():
        batcher = Batcher(recorder, max_wait=0.005)
        await batcher.start()
        started = time.perf_counter()
        for _ in range(20):
            await batcher.submit(job("x"))
        elapsed = (time.perf_counter() - started) / 20
        await batcher.close()
        return elapsed

    assert run(main()) < 0.05


def test_a_lone_client_stops_waiting_and_company_turns_waiting_back_on():
    recorder = Recorder()
    arriving = {"n": 0}

    async def main():
        batcher = Batcher(recorder, max_wait=0.05, arriving=lambda: arriving["n"])
        await batcher.start()
        started = time.perf_counter()
        for _ in range(3):  # three waits without company ...
            await batcher.submit(job("x"))
        assert time.perf_counter() - started >= 0.15
        started = time.perf_counter()
        for _ in range(10):  # ... then no more waiting
            await batcher.submit(job("x"))
        assert time.perf_counter() - started < 0.1
        # Others being read: the batcher waits for them, until they have come.
        arriving["n"] = 1
        first = batcher.enqueue(job("a"))
        await asyncio.sleep(0.01)
        arriving["n"] = 0
        second = batcher.enqueue(job("b"))
        assert await first == ["A"] and await second == ["B"]
        await batcher.close()

    run(main())
    assert recorder.batches[-1] == 2


# ------------------------------------------- two batches in flight (linking process)


class Overlap(Recorder):
    """A Recorder that also notes how many batches it was linking at once."""

    def __init__(self, delay=0.0):
        super().__init__(delay)
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def __call__(self, jobs):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return super().__call__(jobs)
        finally:
            with self.lock:
                self.running -= 1


def test_an_idle_linker_gets_many_waiting_docs_as_two_half_batches():
    recorder = Overlap(delay=0.05)

    async def main():
        batcher = Batcher(recorder, max_docs=64, max_wait=0.05, max_in_flight=2)
        await batcher.start()
        results = await asyncio.gather(*(batcher.submit(job(f"t{i}")) for i in range(96)))
        await batcher.close()
        return results

    assert run(main()) == [[f"T{i}"] for i in range(96)]
    assert recorder.batches == [48, 48]
    assert recorder.most == 2  # the second half was handed over while the first linked


def test_few_waiting_docs_are_not_split_and_wait_for_the_batch_in_flight():
    recorder = Overlap(delay=0.1)

    async def main():
        batcher = Batcher(recorder, max_docs=64, max_wait=0.01, max_in_flight=2)
        await batcher.start()
        first = [batcher.enqueue(job(f"a{i}")) for i in range(20)]  # too few to split
        await asyncio.sleep(0.03)  # it is being linked
        second = [batcher.enqueue(job(f"b{i}")) for i in range(5)]  # fewer than 20 wait
        await asyncio.sleep(0.03)
        assert recorder.batches == [20]  # not handed over yet
        third = [batcher.enqueue(job(f"c{i}")) for i in range(15)]  # now 20 wait: go
        await asyncio.sleep(0.03)
        assert recorder.batches == [20, 20] and recorder.most == 2
        await asyncio.gather(*first, *second, *third)
        await batcher.close()

    run(main())


def test_close_waits_for_both_batches_in_flight():
    recorder = Overlap(delay=0.05)

    async def main():
        batcher = Batcher(recorder, max_docs=8, max_wait=0, max_in_flight=2)
        await batcher.start()
        futures = [batcher.enqueue(job(f"t{i}")) for i in range(40)]
        await batcher.close()
        assert all(f.done() for f in futures)
        return [f.result() for f in futures]

    assert run(main()) == [[f"T{i}"] for i in range(40)]
    assert sum(recorder.batches) == 40 and recorder.most == 2

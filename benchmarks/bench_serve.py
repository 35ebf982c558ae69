"""Benchmark ``entity-linker serve``: throughput and latency under load, and a fuzz
run of malformed requests, against in-process ``nlp.pipe`` in the same run.

1. In-process baseline: the same pipeline, loaded here, links the same
   one-sentence texts with ``nlp.pipe`` (batch_size 64), one process per
   server worker (--workers) -- docs/s.
2. The server (``python -m entity_linker serve --workers W``, started from the
   temporary folder; with --linker process, thread or both: each worker links
   in a child process, or on a thread of its own) under a load generator on
   localhost: C clients (1, 8, 64)
   each send one-sentence POST /link requests back to back over a keep-alive
   connection, for --seconds each. Reported: requests/s, docs/s, p50/p99
   latency, RSS per worker (and per linking child), the mean nlp.pipe batch
   and the share of the time the linker was busy (from /metrics), and how
   many answers were wrong (every answer is checked against the sequential one).
   The load generator is a minimal HTTP/1.1 client on asyncio streams (httpx
   costs more CPU per request than the server spends linking a sentence, and
   client and server share this machine's cores).
3. Fuzz: --fuzz malformed requests (bad JSON, bad UTF-8, wrong types, offsets
   out of range or inside tokens, overlaps, limits, bad REL, bad Turtle, unknown
   routes and methods, raw protocol garbage, clients that vanish mid-request)
   from 16 clients, with a well-formed request after every 10th, checked
   against its expected answer. Reported: 4xx/5xx counts, transport errors,
   whether the server survived, RSS before and after.

Targets (issue 17): docs/s at 64 clients >= 0.8x in-process nlp.pipe with the
same number of processes; p99 of a one-sentence request at 8 clients <= 50 ms;
10,000 malformed requests: 0 5xx, 0 crashes, memory flat.

Usage (from the repository root):
    python -m benchmarks.bench_serve                   # 10 s per level, 10,000 fuzz
    python -m benchmarks.bench_serve --seconds 5 --fuzz 2000 --json serve.json
    python -m benchmarks.bench_serve --linker both --fuzz 0   # child process vs thread
    python -m benchmarks.bench_serve --workers 2
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

PLACES = ["Paris", "Berlin", "Madrid", "Rome", "Lisbon", "Dublin", "Chicago", "Boston",
          "London", "Tokyo", "Springfield", "Portland", "Sydney", "Toronto", "Cairo",
          "Mumbai", "Texas", "California", "France", "Germany", "Italy", "Spain", "Canada",
          "Brazil", "Kenya", "Illinois", "Ohio", "Georgia", "Victoria", "Munich"]
TEMPLATES = ["We live in {}, a city.", "She moved to {} last year.",
             "The conference in {} was cancelled.", "{} is larger than {}.",
             "Flights from {} to {} were delayed.", "He grew up near {}."]


def sentences(n: int, seed: int = 0) -> List[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        template = rng.choice(TEMPLATES)
        out.append(template.format(*rng.sample(PLACES, template.count("{}"))))
    return out


# ------------------------------------------------------------- in-process


def _pipe_worker(texts: List[str], queue) -> None:
    from entity_linker.serve.linking import LinkService

    nlp = LinkService.load().nlp
    list(nlp.pipe(texts[:64], batch_size=64))  # warm up
    start = time.perf_counter()
    n = sum(1 for _ in nlp.pipe(texts, batch_size=64))
    queue.put(n / (time.perf_counter() - start))


def in_process_docs_per_s(texts: List[str], processes: int) -> float:
    """docs/s of nlp.pipe in `processes` processes, each linking all of texts."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_pipe_worker, args=(texts, queue))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    rates = []
    while len(rates) < len(workers):
        try:
            rates.append(queue.get(timeout=1))
        except Exception:  # queue.Empty: fail if a worker died instead of waiting forever
            dead = [w for w in workers if w.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"an nlp.pipe worker failed (exit {dead[0].exitcode})") \
                    from None
    for worker in workers:
        worker.join()
    return sum(rates)


# ----------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, workers: int, port: int, linker: str = "process"):
        self.port = port
        self.log = tempfile.NamedTemporaryFile(prefix="bench-serve-", suffix=".log",
                                               delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "entity_linker", "serve", "--port", str(port),
             "--workers", str(workers),
             "--linker-process" if linker == "process" else "--no-linker-process"],
            cwd=tempfile.gettempdir(), stdout=self.log, stderr=subprocess.STDOUT)
        self.workers = workers

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        pids = set()
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {open(self.log.name).read()}")
            try:
                status, body = asyncio.run(request_once(self.port, "GET", "/health"))
                if status == 200:
                    pids.add(json.loads(body)["pid"])
                    if len(pids) >= self.workers or self.workers == 1:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not start")

    def _processes(self) -> Tuple[List[Any], List[Any]]:
        """(the worker processes, their linking children)."""
        import psutil

        def own(children):  # not multiprocessing's resource tracker
            return [p for p in children if "resource_tracker" not in " ".join(p.cmdline())]

        main = psutil.Process(self.process.pid)
        workers = own(main.children()) if self.workers > 1 else [main]
        linkers = [c for w in workers for c in own(w.children())]
        return workers, linkers

    def worker_rss(self) -> List[int]:
        """RSS of each worker process (the server itself with one worker)."""
        return [p.memory_info().rss for p in self._processes()[0]]

    def linker_rss(self) -> List[int]:
        """RSS of each worker's linking child (none with --no-linker-process)."""
        return [p.memory_info().rss for p in self._processes()[1]]

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server and all its processes."""
        import psutil

        main = psutil.Process(self.process.pid)
        total = 0.0
        for proc in [main] + main.children(recursive=True):
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> Optional[int]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


# ---------------------------------------------------------- a tiny client


class Connection:
    """One keep-alive HTTP/1.1 connection: requests in, (status, body) out."""

    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def request(self, method: str, path: str, body: bytes = b"",
                      content_type: str = "application/json",
                      headers: str = "") -> Tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        head = (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                f"{content_type}\r\nContent-Length: {len(body)}\r\n{headers}\r\n")
        self.writer.write(head.encode("latin-1") + body)
        try:
            status_line = await self.reader.readuntil(b"\r\n")
            length, close = 0, False
            while True:
                line = await self.reader.readuntil(b"\r\n")
                if line == b"\r\n":
                    break
                name, _, value = line.decode("latin-1").partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and "close" in value.lower():
                    close = True
            payload = await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            await self.close()
            raise ConnectionError("connection closed") from None
        if close:
            await self.close()
        return int(status_line.split()[1]), payload

    async def send_raw(self, data: bytes) -> None:
        if self.writer is None:
            await self.open()
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        self.reader = self.writer = None


async def request_once(port: int, method: str, path: str, body: bytes = b"") -> Tuple[int, bytes]:
    connection = Connection(port)
    try:
        return await connection.request(method, path, body)
    finally:
        await connection.close()


def links_of(body: bytes) -> List[Tuple[int, int, str]]:
    return [(e["start"], e["end"], e["kb_id"]) for e in json.loads(body)["ents"]]


# -------------------------------------------------------------------- load


async def load_level(port: int, clients: int, seconds: float, texts: List[str],
                     expected: Dict[str, Any], per_request: int = 1) -> Dict[str, Any]:
    latencies: List[float] = []
    wrong = errors = 0
    stop_at = time.perf_counter() + seconds

    async def client(k: int) -> None:
        nonlocal wrong, errors
        connection = Connection(port)
        rng = random.Random(k)
        while time.perf_counter() < stop_at:
            batch = [rng.choice(texts) for _ in range(per_request)]
            body = json.dumps({"text": batch[0]} if per_request == 1 else {"texts": batch})
            start = time.perf_counter()
            try:
                status, answer = await connection.request("POST", "/link", body.encode())
            except ConnectionError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - start)
            if status != 200:
                wrong += 1
                continue
            records = [json.loads(answer)] if per_request == 1 else json.loads(answer)["docs"]
            got = [[(e["start"], e["end"], e["kb_id"]) for e in r["ents"]] for r in records]
            if got != [expected[text] for text in batch]:
                wrong += 1
        await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {"clients": clients, "texts_per_request": per_request, "requests": len(latencies),
            "seconds": elapsed, "requests_per_s": len(latencies) / elapsed,
            "docs_per_s": len(latencies) * per_request / elapsed,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "wrong": wrong, "errors": errors}


def _busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy (all processes)."""
    import psutil

    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _own_cpu_seconds() -> float:
    """CPU time of this process (the load generator) and its children."""
    times = os.times()
    return times.user + times.system


def scrape_workers(port: int, workers: int, tries: int = 200) -> str:
    """/metrics of every worker, joined: each scrape reaches one worker (whichever
    accepts the connection), so scrape until every worker's pid has been seen."""
    import re

    seen: Dict[str, str] = {}
    for _ in range(tries):
        text = asyncio.run(request_once(port, "GET", "/metrics"))[1].decode()
        found = re.search(r'pid="(\d+)"', text)
        if found:
            seen[found.group(1)] = text
        if len(seen) >= workers:
            break
    return "".join(seen.values())


def metric_sum(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{"))


# -------------------------------------------------------------------- fuzz


def malformed_requests(n: int, seed: int = 1) -> List[Tuple[str, Any]]:
    """n malformed requests: ("http", (method, path, body, content_type)) or
    ("raw", bytes) or ("vanish", bytes)."""
    rng = random.Random(seed)
    good = json.dumps({"text": "Paris is the capital of France."}).encode()
    turtle = (b'@prefix nif: <http://persistence.uni-leipzig.org/nlp2rdf/ontologies/nif-core#>'
              b' .\n<http://x/d#char=0,5> a nif:Context ; nif:isString "Paris" .\n')
    values = [None, True, 1, -7, 2.5, "x", [], {}, [1, "a"], {"a": 1}, "\ud800"]

    def jdump(obj) -> bytes:
        return json.dumps(obj).encode()

    makers = [
        lambda: ("http", ("POST", "/link", good[:rng.randrange(len(good))], "application/json")),
        lambda: ("http", ("POST", "/link", b'{"text": "' + bytes(rng.randrange(128, 256)
                                                                 for _ in range(4)) + b'"}',
                          "application/json")),
        lambda: ("http", ("POST", "/link", bytes(rng.randrange(256) for _ in range(64)),
                          "application/json")),
        lambda: ("http", ("POST", "/link", jdump({"text": rng.choice(values)}),
                          "application/json")),
        lambda: ("http", ("POST", "/link", jdump({"texts": [rng.choice(values)
                                                            for _ in range(3)]}),
                          "application/json")),
        lambda: ("http", ("POST", "/link", jdump(rng.choice(values)), "application/json")),
        lambda: ("http", ("POST", "/link", jdump({"text": "Paris is nice.", "spans": [
            {"start": rng.randrange(-5, 20), "end": rng.randrange(-5, 40),
             "label": rng.choice(values)}]}), "application/json")),
        lambda: ("http", ("POST", "/link", jdump({"text": "Paris is nice.", "spans": [
            {"start": 1, "end": 4}]}), "application/json")),  # inside a token
        lambda: ("http", ("POST", "/link", jdump({"text": "Paris is nice.", "spans": [
            {"start": 0, "end": 5}, {"start": 2, "end": 8}]}), "application/json")),
        lambda: ("http", ("POST", "/link", jdump({"texts": ["a"] * 500}), "application/json")),
        lambda: ("http", ("POST", "/link", jdump({"text": "b" * 100_001}), "application/json")),
        lambda: ("http", ("POST", "/", jdump({"text": "Paris.", "spans": [
            [rng.randrange(-3, 9), rng.choice(values)]]}), "application/json")),
        lambda: ("http", ("POST", "/", jdump({"text": "Paris.", "spans": [[0, 99]]}),
                          "application/json")),
        lambda: ("http", ("POST", "/nif", turtle[:rng.randrange(len(turtle))], "text/turtle")),
        lambda: ("http", ("POST", "/nif", bytes(rng.randrange(256) for _ in range(40)),
                          "text/turtle")),
        lambda: ("http", ("GET", f"/no/such/{rng.randrange(10**6)}", b"", "text/plain")),
        lambda: ("http", ("DELETE", "/link", b"", "text/plain")),
        lambda: ("http", ("GET", f"/kb/entity/nope{rng.randrange(10**6)}", b"", "text/plain")),
        lambda: ("raw", rng.choice([b"\x00\x01\x02garbage\r\n\r\n", b"GET / HTTP/7.0\r\n\r\n",
                                    b"POST /link HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                                    b"POST /link HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                                    b"chunked\r\n\r\nzz\r\n\r\n"])),
        lambda: ("vanish", b"POST /link HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n"
                           b'{"text": "Par'),
    ]
    big = ("http", ("POST", "/link", b"x" * 1_100_000, "application/json"))
    out = [rng.choice(makers)() for _ in range(n)]
    for i in range(0, n, 1000):  # a few bodies over --max-body-bytes
        out[i] = big
    return out


async def fuzz(port: int, requests: List[Tuple[str, Any]], texts: List[str],
               expected: Dict[str, Any], clients: int = 16) -> Dict[str, Any]:
    counts: Dict[str, int] = {"2xx": 0, "4xx": 0, "5xx": 0, "transport": 0,
                              "raw": 0, "vanished": 0, "good": 0, "good_wrong": 0}
    statuses: Dict[int, int] = {}
    queue = list(enumerate(requests))
    queue.reverse()

    async def client(k: int) -> None:
        connection = Connection(port)
        rng = random.Random(100 + k)
        while queue:
            i, (kind, item) = queue.pop()
            if kind == "http":
                method, path, body, content_type = item
                try:
                    status, _ = await connection.request(method, path, body, content_type)
                except ConnectionError:
                    counts["transport"] += 1
                    continue
                statuses[status] = statuses.get(status, 0) + 1
                counts[f"{status // 100}xx"] = counts.get(f"{status // 100}xx", 0) + 1
            else:
                raw = Connection(port)
                try:
                    await raw.send_raw(item)
                    if kind == "raw":
                        await asyncio.wait_for(raw.reader.read(65536), 5)
                except (ConnectionError, asyncio.TimeoutError, OSError):
                    pass
                await raw.close()
                counts["raw" if kind == "raw" else "vanished"] += 1
            if i % 10 == 9:  # a well-formed request after every 10th
                text = rng.choice(texts)
                try:
                    status, answer = await connection.request(
                        "POST", "/link", json.dumps({"text": text}).encode())
                    counts["good"] += 1
                    if status != 200 or links_of(answer) != expected[text]:
                        counts["good_wrong"] += 1
                except ConnectionError:
                    counts["good_wrong"] += 1
        await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    counts["seconds"] = time.perf_counter() - started
    counts["statuses"] = dict(sorted(statuses.items()))
    return counts


# --------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--seconds", type=float, default=10.0, help="per load level")
    parser.add_argument("--fuzz", type=int, default=10_000)
    parser.add_argument("--texts-per-request", type=int, default=8,
                        help="an extra level: the most clients, each sending this many "
                        "sentences per request (1: no extra level)")
    parser.add_argument("--baseline-docs", type=int, default=3_000)
    parser.add_argument("--linker", choices=["process", "thread", "both"], default="thread",
                        help="where each worker links: a child process (serve's "
                        "--linker-process), a thread of the worker (--no-linker-process), "
                        "or one server of each in turn (the fuzz run on the first)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    texts = sentences(400)
    results: Dict[str, Any] = {"workers": args.workers, "cpus": os.cpu_count(),
                               "load_average": round(os.getloadavg()[0], 1),
                               "texts": "one sentence each (~30 characters, 1-2 places)"}
    print(f"in-process nlp.pipe, {args.workers} process(es) ...", file=sys.stderr)
    baseline_texts = (texts * (args.baseline_docs // len(texts) + 1))[:args.baseline_docs]
    results["in_process_docs_per_s"] = in_process_docs_per_s(baseline_texts, args.workers)

    levels = []
    modes = ["process", "thread"] if args.linker == "both" else [args.linker]
    for n, mode in enumerate(modes):
        run_server(args, mode, texts, baseline_texts, results, levels,
                   fuzz_requests=args.fuzz if n == 0 else 0)
    results["load"] = levels
    print_report(results)
    if args.json:
        with open(args.json, "w", encoding="utf8") as file:
            json.dump(results, file, indent=2)


def run_server(args, mode: str, texts: List[str], baseline_texts: List[str],
               results: Dict[str, Any], levels: List[Dict[str, Any]],
               fuzz_requests: int) -> None:
    """Start a server linking in `mode`, run the load levels (and the fuzz run)."""
    server = Server(args.workers, free_port(), mode)
    try:
        server.wait_ready()
        print(f"server ({mode} linking) on port {server.port}", file=sys.stderr)
        expected = {}
        for text in texts:  # the sequential answers, and a warm-up
            status, body = asyncio.run(request_once(server.port, "POST", "/link",
                                                    json.dumps({"text": text}).encode()))
            assert status == 200, body
            expected[text] = links_of(body)
        plan = [(c, 1) for c in args.clients]
        if args.texts_per_request > 1:
            plan.append((max(args.clients), args.texts_per_request))
        for clients, per_request in plan:
            # This machine may be shared: the in-process rate is measured again right
            # before each level (the server idle), and the level compared with it.
            load_average = round(os.getloadavg()[0], 2)
            rate = in_process_docs_per_s(baseline_texts, args.workers)
            results.setdefault("in_process_samples", []).append(rate)
            before = scrape_workers(server.port, args.workers)
            cpu_before = (_busy_cpu_seconds(), server.cpu_seconds(), _own_cpu_seconds())
            level = asyncio.run(load_level(server.port, clients, args.seconds, texts,
                                           expected, per_request))
            cpu_after = (_busy_cpu_seconds(), server.cpu_seconds(), _own_cpu_seconds())
            after = scrape_workers(server.port, args.workers)
            used = [(a - b) / level["seconds"] for a, b in zip(cpu_after, cpu_before)]
            # Cores busy during the level: the server's, the load generator's, and
            # everything else on the machine (other jobs: the level's competition).
            level["cores_server"] = round(used[1], 2)
            level["cores_client"] = round(used[2], 2)
            level["cores_other"] = round(max(0.0, used[0] - used[1] - used[2]), 2)
            batches = (metric_sum(after, "entity_linker_batch_docs_count")
                       - metric_sum(before, "entity_linker_batch_docs_count"))
            docs = (metric_sum(after, "entity_linker_batch_docs_sum")
                    - metric_sum(before, "entity_linker_batch_docs_sum"))
            level["mean_batch"] = docs / batches if batches else 0.0
            busy = (metric_sum(after, "entity_linker_linking_seconds_total")
                    - metric_sum(before, "entity_linker_linking_seconds_total"))
            level["linking_busy"] = busy / level["seconds"] / args.workers
            level["rss_mb_per_worker"] = [round(r / 2**20) for r in server.worker_rss()]
            level["rss_mb_per_linker"] = [round(r / 2**20) for r in server.linker_rss()]
            level["linker"] = mode
            level["load_average_before"] = load_average
            level["in_process_docs_per_s"] = rate
            level["vs_in_process"] = level["docs_per_s"] / rate
            levels.append(level)
            print(f"  {mode}: {clients} clients x {per_request} texts: "
                  f"{level['docs_per_s']:.0f} "
                  f"docs/s, p99 {level['p99_ms']:.1f} ms", file=sys.stderr)
        if fuzz_requests:
            # Two rounds of the same kind: memory is flat if the second adds nothing.
            requests = malformed_requests(fuzz_requests)
            half = len(requests) // 2
            rss = [server.worker_rss()]
            linker_rss = [server.linker_rss()]
            print(f"fuzz: {len(requests):,} malformed requests ...", file=sys.stderr)
            rounds = []
            for part in (requests[:half], requests[half:]):
                rounds.append(asyncio.run(fuzz(server.port, part, texts, expected)))
                rss.append(server.worker_rss())
                linker_rss.append(server.linker_rss())
            report: Dict[str, Any] = {"statuses": {}, "seconds": 0.0}
            for one in rounds:
                for key, value in one.items():
                    if key == "statuses":
                        for status, n in value.items():
                            report["statuses"][status] = report["statuses"].get(status, 0) + n
                    else:
                        report[key] = report.get(key, 0) + value
            report["server_alive"] = server.alive()
            status, _ = asyncio.run(request_once(server.port, "GET", "/health"))
            report["health_after"] = status
            report["rss_mb"] = [[round(r / 2**20, 1) for r in sample] for sample in rss]
            report["linker_rss_mb"] = [[round(r / 2**20, 1) for r in sample]
                                       for sample in linker_rss]
            results["fuzz"] = report
    finally:
        code = server.stop()
        results.setdefault("server_exit", {})[mode] = code


def print_report(results: Dict[str, Any]) -> None:
    base = results["in_process_docs_per_s"]
    samples = ", ".join(f"{r:,.0f}" for r in results.get("in_process_samples", []))
    print(f"\nworkers: {results['workers']} (cpus: {results['cpus']}, load average "
          f"{results['load_average']}); in-process nlp.pipe: {base:,.0f} docs/s, again before "
          f"each level: {samples}\n")
    print("| linker | clients | texts/request | requests | req/s | docs/s | nlp.pipe docs/s "
          "| vs nlp.pipe | p50 ms | p99 ms | mean batch | linking busy | RSS/worker MB "
          "| RSS/linker MB | load avg | cores server/client/other | wrong |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for level in results["load"]:
        print(f"| {level['linker']} | {level['clients']} | {level['texts_per_request']} "
              f"| {level['requests']:,} "
              f"| {level['requests_per_s']:,.0f} "
              f"| {level['docs_per_s']:,.0f} | {level['in_process_docs_per_s']:,.0f} "
              f"| {level['vs_in_process']:.2f}x "
              f"| {level['p50_ms']:.1f} | {level['p99_ms']:.1f} | {level['mean_batch']:.1f} "
              f"| {level['linking_busy']:.0%} "
              f"| {', '.join(map(str, level['rss_mb_per_worker']))} "
              f"| {', '.join(map(str, level['rss_mb_per_linker'])) or '-'} "
              f"| {level['load_average_before']} "
              f"| {level['cores_server']}/{level['cores_client']}/{level['cores_other']} "
              f"| {level['wrong'] + level['errors']} |")
    fuzz_report = results.get("fuzz")
    if fuzz_report:
        f = fuzz_report
        sent = sum(f["statuses"].values()) + f["raw"] + f["vanished"] + f["transport"]
        print(f"\nfuzz: {sent:,} malformed requests in {f['seconds']:.1f} s: 4xx {f['4xx']:,}, "
              f"5xx {f['5xx']}, 2xx {f['2xx']}, raw protocol garbage {f['raw']}, vanished "
              f"clients {f['vanished']}, transport errors {f['transport']}; statuses "
              f"{f['statuses']}")
        print(f"well-formed interleaved: {fuzz_report['good']:,}, wrong "
              f"{fuzz_report['good_wrong']}; server alive: {fuzz_report['server_alive']}, "
              f"/health after: {fuzz_report['health_after']}; RSS MB per worker before, "
              f"after half, after all: {fuzz_report['rss_mb']}; linking children: "
              f"{fuzz_report.get('linker_rss_mb')}")
    print(f"server exit status: {results['server_exit']}")


if __name__ == "__main__":
    main()

"""Prometheus metrics, kept by hand (a few counters and histograms do not need
prometheus_client). Each worker process keeps its own; with --workers N a
scrape reaches one of them, and every series carries its ``pid``.
"""

import os
import time
from collections import defaultdict
from typing import Dict, Sequence, Tuple

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Histogram:
    def __init__(self, buckets: Sequence[float]):
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
                break

    def lines(self, name: str, labels: str) -> list:
        out, cumulative = [], 0
        sep = "," if labels else ""
        for bound, n in zip(self.buckets, self.counts):
            cumulative += n
            out.append(f'{name}_bucket{{{labels}{sep}le="{_number(bound)}"}} {cumulative}')
        out.append(f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}')
        out.append(f"{name}_sum{{{labels}}} {self.sum:.6f}")
        out.append(f"{name}_count{{{labels}}} {self.count}")
        return out


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Requests by endpoint and status, latency, batch sizes, errors."""

    def __init__(self):
        self.pid = str(os.getpid())
        self.started = time.time()
        self.requests: Dict[Tuple[str, str, int], int] = defaultdict(int)
        self.latency: Dict[str, Histogram] = {}
        self.batch_docs = Histogram(BATCH_BUCKETS)
        self.batch_seconds = Histogram(LATENCY_BUCKETS)
        self.errors: Dict[str, int] = defaultdict(int)
        self.in_flight = 0
        self.docs = 0

    def request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests[(endpoint, method, status)] += 1
        histogram = self.latency.get(endpoint)
        if histogram is None:
            histogram = self.latency[endpoint] = Histogram(LATENCY_BUCKETS)
        histogram.observe(seconds)

    def batch(self, n_docs: int, seconds: float = 0.0) -> None:
        self.batch_docs.observe(n_docs)
        self.batch_seconds.observe(seconds)
        self.docs += n_docs

    def error(self, kind: str) -> None:
        self.errors[kind] += 1

    def render(self, queued_docs: int = 0, linker_restarts: int = 0,
               linking_seconds: float = 0.0) -> str:
        pid = f'pid="{self.pid}"'
        lines = [
            "# HELP entity_linker_requests_total HTTP requests answered, by endpoint, "
            "method and status.",
            "# TYPE entity_linker_requests_total counter",
        ]
        for (endpoint, method, status), n in sorted(self.requests.items()):
            lines.append(f'entity_linker_requests_total{{{pid},endpoint="{_escape(endpoint)}",'
                         f'method="{method}",status="{status}"}} {n}')
        lines += ["# HELP entity_linker_request_duration_seconds Time from the request to "
                  "its answer, by endpoint.",
                  "# TYPE entity_linker_request_duration_seconds histogram"]
        for endpoint, histogram in sorted(self.latency.items()):
            lines += histogram.lines("entity_linker_request_duration_seconds",
                                     f'{pid},endpoint="{_escape(endpoint)}"')
        lines += ["# HELP entity_linker_batch_docs Docs linked together in one nlp.pipe "
                  "batch.", "# TYPE entity_linker_batch_docs histogram"]
        lines += self.batch_docs.lines("entity_linker_batch_docs", pid)
        lines += ["# HELP entity_linker_batch_seconds Time from handing a batch to the linker "
                  "to its answers (linking and rendering, and with a linking process the "
                  "wait behind the batch it links).",
                  "# TYPE entity_linker_batch_seconds histogram"]
        lines += self.batch_seconds.lines("entity_linker_batch_seconds", pid)
        lines += ["# HELP entity_linker_errors_total Requests refused or failed, by kind.",
                  "# TYPE entity_linker_errors_total counter"]
        for kind, n in sorted(self.errors.items()):
            lines.append(f'entity_linker_errors_total{{{pid},kind="{_escape(kind)}"}} {n}')
        lines += [
            "# HELP entity_linker_docs_linked_total Docs linked.",
            "# TYPE entity_linker_docs_linked_total counter",
            f"entity_linker_docs_linked_total{{{pid}}} {self.docs}",
            "# HELP entity_linker_queued_docs Docs waiting for a batch.",
            "# TYPE entity_linker_queued_docs gauge",
            f"entity_linker_queued_docs{{{pid}}} {queued_docs}",
            "# HELP entity_linker_linking_seconds_total Time the linker spent linking "
            "and rendering batches (its busy time).",
            "# TYPE entity_linker_linking_seconds_total counter",
            f"entity_linker_linking_seconds_total{{{pid}}} {linking_seconds:.6f}",
            "# HELP entity_linker_linker_restarts_total Linking processes started again "
            "after one died.",
            "# TYPE entity_linker_linker_restarts_total counter",
            f"entity_linker_linker_restarts_total{{{pid}}} {linker_restarts}",
            "# HELP entity_linker_in_flight_requests Requests being answered.",
            "# TYPE entity_linker_in_flight_requests gauge",
            f"entity_linker_in_flight_requests{{{pid}}} {self.in_flight}",
            "# HELP entity_linker_uptime_seconds Seconds since the worker started.",
            "# TYPE entity_linker_uptime_seconds gauge",
            f"entity_linker_uptime_seconds{{{pid}}} {time.time() - self.started:.3f}",
        ]
        rss = _rss_bytes()
        if rss is not None:
            lines += ["# HELP entity_linker_resident_memory_bytes The worker's resident "
                      "memory.", "# TYPE entity_linker_resident_memory_bytes gauge",
                      f"entity_linker_resident_memory_bytes{{{pid}}} {rss}"]
        return "\n".join(lines) + "\n"


def _rss_bytes():
    """The process's resident set size (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as file:
            return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        return None

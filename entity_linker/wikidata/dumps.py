"""Stream compressed dumps in chunks and parse the chunks on all cores.

A reader thread decompresses the dump (``.gz``, ``.bz2`` or plain; zlib and
bz2 release the GIL, so it runs beside the main thread) into byte chunks of
about ``CHUNK_BYTES`` cut at record boundaries; a process pool parses the
chunks; the main thread merges the results in dump order. At most
``2 * workers + 2`` chunks are in flight, so memory does not grow with the
dump. When ``rapidgzip`` or ``indexed_bzip2`` is installed, the dump is
decompressed by it on several threads; otherwise a ``.gz`` dump is
decompressed by ``isal`` (ISA-L, ~3x faster than zlib) when it is installed.
"""

import bz2
import gzip
import multiprocessing
import os
import queue
import sys
import threading
import zlib
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterator, List, NamedTuple, Optional, Tuple

from ..errors import KBError

CHUNK_BYTES = 4 << 20
# How many bad lines are quoted in a report (all are counted).
MAX_REPORTED = 5


class DumpError(KBError):
    """A dump is missing, truncated, or not of the expected kind."""


class Chunk(NamedTuple):
    data: bytes
    first_line: int  # 1-based number of the chunk's first line in the dump


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _parallel_opener(path: Path, head: bytes, threads: int):
    """A multi-threaded decompressor for .gz/.bz2 when its package is installed
    and the file starts like one: indexed_bzip2 reads a file that is not bzip2
    data as empty, where the standard library's reader raises."""
    name = path.name.lower()
    try:
        if name.endswith(".bz2") and head == b"BZh":
            import indexed_bzip2

            return indexed_bzip2.open(str(path), parallelization=threads)
        if name.endswith(".gz") and head[:2] == b"\x1f\x8b":
            import rapidgzip

            return rapidgzip.open(str(path), parallelization=threads)
    except ImportError:
        return None
    return None


def _isal_gzip(raw):
    """ISA-L's gzip reader over ``raw`` (None when ``isal`` is not installed)."""
    try:
        from isal import igzip
    except ImportError:
        return None
    return igzip.GzipFile(fileobj=raw, mode="rb")


def _read_errors() -> Tuple[type, ...]:
    """The exceptions of a truncated or corrupt compressed stream."""
    errors: Tuple[type, ...] = (EOFError, OSError, zlib.error, ValueError, RuntimeError)
    try:
        from isal.isal_zlib import error as isal_error
    except ImportError:
        return errors
    return errors + (isal_error,)


class DumpReader:
    """Decompressed bytes of a dump with the compressed position, for progress."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        path = Path(path)
        if not path.is_file():
            raise DumpError(f"No dump at {path}." if not path.exists()
                            else f"{path} is not a file.")
        self.path = path
        self.size = path.stat().st_size
        self.raw = open(path, "rb")
        head = self.raw.read(3)
        self.raw.seek(0)
        name = path.name.lower()
        self.parallel = None
        if threads > 1:
            self.parallel = _parallel_opener(path, head, threads)
        if self.parallel is not None:
            self.file = self.parallel
        elif head[:2] == b"\x1f\x8b" or name.endswith(".gz"):
            self.file = _isal_gzip(self.raw)
            if self.file is None:
                self.file = gzip.GzipFile(fileobj=self.raw, mode="rb")
        elif head == b"BZh" or name.endswith(".bz2"):
            self.file = bz2.BZ2File(self.raw, mode="rb")
        else:
            self.file = self.raw
        self.decompressed = 0

    @property
    def compressed_position(self) -> int:
        if self.parallel is not None:  # no compressed position: estimate
            return min(self.size, self.decompressed // 8)
        return self.raw.tell()

    def read(self, n: int) -> bytes:
        try:
            data = self.file.read(n)
        except _read_errors() as err:
            raise DumpError(f"{self.path} could not be read to the end ({type(err).__name__}: "
                            f"{err}). Is it complete? Download it again.") from None
        self.decompressed += len(data)
        return data

    def close(self) -> None:
        try:
            self.file.close()
        finally:
            self.raw.close()


def iter_chunks(reader: DumpReader, boundary: bytes = b"\n",
                chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Chunks of whole records: each chunk ends right after a ``boundary``."""
    pending = b""
    line = 1
    while True:
        data = reader.read(chunk_bytes)
        if not data:
            break
        cut = data.rfind(boundary)
        if cut >= 0:  # the last boundary is in this read: the chunk is copied once
            cut += len(boundary)
            chunk = b"".join((pending, memoryview(data)[:cut])) if pending else data[:cut]
            pending = data[cut:]
        else:  # none, or one across the two reads
            data = pending + data
            cut = data.rfind(boundary)
            if cut < 0:
                pending = data
                continue
            cut += len(boundary)
            chunk, pending = data[:cut], data[cut:]
        yield Chunk(chunk, line)
        line += chunk.count(b"\n")
    if pending:
        yield Chunk(pending, line)


def _reader_thread(reader: DumpReader, boundary: bytes, chunk_bytes: int,
                   out: "queue.Queue", stop: threading.Event) -> None:
    try:
        for chunk in iter_chunks(reader, boundary, chunk_bytes):
            while not stop.is_set():
                try:
                    out.put(chunk, timeout=0.2)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
        out.put(None)
    except BaseException as err:  # handed to the main thread
        out.put(err)


def _pool_context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def parallel_map_chunks(path: Path, parse: Callable[[Chunk], Any], *, workers: int = 0,
                        boundary: bytes = b"\n", chunk_bytes: int = CHUNK_BYTES,
                        initializer: Optional[Callable] = None, initargs: Tuple = (),
                        on_first: Optional[Callable[[bytes], None]] = None,
                        ) -> Iterator[Tuple[Any, DumpReader]]:
    """Yield ``(parse(chunk), reader)`` for the chunks of a dump, in order.

    ``parse`` runs in a process pool of ``workers`` processes (0: one per
    core; 1: no pool, in this process). ``on_first`` sees the first chunk's
    bytes before anything is parsed (to reject a file of the wrong kind).
    """
    workers = workers or cpu_count()
    reader = DumpReader(path, threads=cpu_count() if workers > 1 else 1)
    chunks: queue.Queue = queue.Queue(maxsize=max(2, workers))
    stop = threading.Event()
    thread = threading.Thread(target=_reader_thread,
                              args=(reader, boundary, chunk_bytes, chunks, stop), daemon=True)
    thread.start()
    pool = None
    first = True

    def next_chunk() -> Optional[Chunk]:
        nonlocal first
        item = chunks.get()
        if isinstance(item, BaseException):
            raise item
        if first and item is not None and on_first is not None:
            on_first(item.data)
        first = False
        return item

    try:
        if workers == 1:
            if initializer is not None:
                initializer(*initargs)
            while True:
                chunk = next_chunk()
                if chunk is None:
                    break
                yield parse(chunk), reader
            return
        pool = _pool_context().Pool(workers, initializer=initializer, initargs=initargs)
        pending: deque = deque()
        done = False
        while not done or pending:
            while not done and len(pending) < 2 * workers:
                chunk = next_chunk()
                if chunk is None:
                    done = True
                    break
                pending.append(pool.apply_async(parse, (chunk,)))
            if pending:
                yield pending.popleft().get(), reader
        pool.close()
        pool.join()
        pool = None
    finally:
        stop.set()
        if pool is not None:
            pool.terminate()
            pool.join()
        while True:  # unblock the reader thread
            try:
                chunks.get_nowait()
            except queue.Empty:
                break
        thread.join(timeout=5)
        reader.close()


class BadLines:
    """Bad lines counted, the first few quoted with their line numbers."""

    def __init__(self) -> None:
        self.count = 0
        self.examples: List[str] = []

    def add(self, count: int, examples: List[str]) -> None:
        self.count += count
        room = MAX_REPORTED - len(self.examples)
        if room > 0:
            self.examples.extend(examples[:room])

    def to_json(self) -> dict:
        return {"count": self.count, "examples": self.examples}


def progress_bar(path: Path, size: int, desc: str, enabled: bool):
    """A tqdm bar over the compressed bytes of a dump (None when disabled)."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=size, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                file=sys.stderr, disable=None, dynamic_ncols=True)

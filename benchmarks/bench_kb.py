#!/usr/bin/env python
"""Benchmark entity_linker's InMemoryLookupKB against spaCy's InMemoryLookupKB.

Both KBs are built from the SAME generated data in the same run:

* N entities "Q{i}" with a 64-dim float32 vector and a frequency;
* 2N aliases "alias {j}", each with 1-5 distinct candidate entities whose priors
  sum to at most 0.99 (alias j always has entity j // 2 as its first candidate).

Every build, every load and every memory measurement runs in a fresh
subprocess (this script re-invoked with --worker), so RSS numbers are not
polluted by earlier phases. Memory is the RSS increase caused by building or
loading the KB: RSS after the step minus RSS after importing and generating the
input data. Peak is VmHWM (reset via /proc/self/clear_refs just before the
step) minus the same baseline. USS/PSS come from /proc/<pid>/smaps_rollup.

Usage:
    python -m benchmarks.bench_kb --sizes 100000 1000000 --open-only-sizes 5000000 \
        --json bench_kb.json
    python -m benchmarks.bench_kb --report bench_kb.json      # print the tables again

Our add_entity/add_alias loop is slow (~40 s per 100k entities); it is timed
only up to --ours-add-max entities (default 100k) to keep the full run short.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import mmap
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

VECTOR_LENGTH = 64
DEFAULT_SIZES = (100_000, 1_000_000)
SPACY_BUILDS = ("spacy_add", "spacy_set")
OURS_BUILDS = ("ours_add", "ours_set", "ours_records", "ours_arrays", "ours_arrays_vocab")
BUILD_LABELS = {
    "spacy_add": "spaCy add_entity + add_alias loop",
    "spacy_set": "spaCy set_entities + add_alias loop",
    "ours_add": "ours add_entity + add_alias loop",
    "ours_set": "ours set_entities + add_alias loop",
    "ours_records": "ours from_records (records in)",
    "ours_arrays": "ours from_arrays",
    "ours_arrays_vocab": "ours from_arrays(add_to_vocab=True)",
}
MiB = 2**20


# --------------------------------------------------------------------------- memory


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss() -> int:
    return _status_bytes("VmRSS")


def peak_rss() -> int:
    return _status_bytes("VmHWM")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
        return True
    except OSError:
        return False


def smaps() -> dict:
    """RSS, PSS and USS (private clean + dirty) of this process, in bytes."""
    fields = {}
    with open("/proc/self/smaps_rollup") as file:
        for line in file:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1]) * 1024
    return {
        "rss": fields["Rss"],
        "pss": fields["Pss"],
        "uss": fields["Private_Clean"] + fields["Private_Dirty"],
    }


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


# --------------------------------------------------------------------------- timing


def best_of(fn, repeats: int = 5, budget: float = 10.0) -> float:
    """Best wall time of up to `repeats` calls; stop early once `budget` s are spent."""
    best = float("inf")
    spent = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        spent += elapsed
        if spent > budget:
            break
    return best


# --------------------------------------------------------------------------- data


def make_data(n: int, seed: int) -> dict:
    """The KB contents as Python lists and numpy arrays (deterministic in n, seed)."""
    import numpy

    rng = numpy.random.default_rng(seed)
    ids = [f"Q{i}" for i in range(n)]
    freqs = rng.integers(1, 10_000, size=n).astype(numpy.float32)
    vectors = rng.standard_normal((n, VECTOR_LENGTH), dtype=numpy.float32)
    m = 2 * n
    alias_texts = [f"alias {j}" for j in range(m)]
    counts = rng.integers(1, 6, size=m)
    offsets = numpy.zeros(m + 1, dtype=numpy.int64)
    numpy.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    starts = numpy.repeat(offsets[:-1], counts)
    position = numpy.arange(total, dtype=numpy.int64) - starts
    # Candidate k of alias j: (j // 2 + g_1 + ... + g_k) % n with 1 <= g < n / 8,
    # so the <= 5 candidates of an alias are distinct.
    gaps = rng.integers(1, max(2, n // 8), size=total)
    gaps[position == 0] = 0
    running = numpy.cumsum(gaps)
    within = running - running[starts]
    owner = numpy.repeat(numpy.arange(m, dtype=numpy.int64) // 2, counts)
    cands = (owner + within) % n
    raw = rng.random(total) + 0.01
    sums = numpy.add.reduceat(raw, offsets[:-1])
    scale = rng.uniform(0.5, 0.99, size=m) / sums
    priors = (raw * numpy.repeat(scale, counts)).astype(numpy.float32)
    return {
        "ids": ids,
        "freqs": freqs,
        "vectors": vectors,
        "alias_texts": alias_texts,
        "offsets": offsets,
        "cands": cands,
        "priors": priors,
    }


def make_records(data: dict) -> dict:
    """Per-alias Python lists for the add_alias loops and from_records (not timed)."""
    ids = data["ids"]
    cand_ids = [ids[c] for c in data["cands"].tolist()]
    prior_list = data["priors"].tolist()
    bounds = data["offsets"].tolist()
    pairs = list(zip(bounds[:-1], bounds[1:]))
    return {
        "freqs": data["freqs"].tolist(),
        "alias_entities": [cand_ids[s:e] for s, e in pairs],
        "alias_priors": [prior_list[s:e] for s, e in pairs],
    }


def lookup_sample(n: int, n_lookups: int, seed: int):
    """Random alias texts and entity ids of a KB of size n (no need to build the data)."""
    import numpy

    rng = numpy.random.default_rng(seed + 1)
    aliases = [f"alias {j}" for j in rng.integers(0, 2 * n, size=n_lookups).tolist()]
    entities = [f"Q{i}" for i in rng.integers(0, n, size=n_lookups).tolist()]
    return aliases, entities


# --------------------------------------------------------------------------- builders


class _RowLists:
    """vector_list for spaCy's set_entities: row i as a list, made on demand.

    spaCy converts each row to a C++ vector[float]; a list converts ~2x faster
    than a numpy row, and making the lists lazily avoids a 64 x N list of lists.
    """

    def __init__(self, matrix):
        self.matrix = matrix

    def __len__(self):
        return len(self.matrix)

    def __getitem__(self, i):
        return self.matrix[i].tolist()


def _add_aliases(kb, data, records):
    for alias, entities, priors in zip(
        data["alias_texts"], records["alias_entities"], records["alias_priors"]
    ):
        kb.add_alias(alias, entities, priors)


def build_spacy_add(vocab, data, records):
    from spacy.kb import InMemoryLookupKB

    kb = InMemoryLookupKB(vocab, VECTOR_LENGTH)
    # .tolist(): spaCy's vector[float] argument converts a list ~2x faster than a row.
    for entity, freq, vector in zip(data["ids"], records["freqs"], data["vectors"]):
        kb.add_entity(entity, freq, vector.tolist())
    _add_aliases(kb, data, records)
    return kb


def build_spacy_set(vocab, data, records):
    from spacy.kb import InMemoryLookupKB

    kb = InMemoryLookupKB(vocab, VECTOR_LENGTH)
    kb.set_entities(data["ids"], records["freqs"], _RowLists(data["vectors"]))
    _add_aliases(kb, data, records)
    return kb


def build_ours_add(vocab, data, records):
    from entity_linker import InMemoryLookupKB

    kb = InMemoryLookupKB(vocab, VECTOR_LENGTH)
    # Our add_entity takes a numpy row directly (faster than a list for it).
    for entity, freq, vector in zip(data["ids"], records["freqs"], data["vectors"]):
        kb.add_entity(entity, freq, vector)
    _add_aliases(kb, data, records)
    return kb


def build_ours_set(vocab, data, records):
    from entity_linker import InMemoryLookupKB

    # The same call as spaCy's set build: vectors as a sequence of lists.
    kb = InMemoryLookupKB(vocab, VECTOR_LENGTH)
    kb.set_entities(data["ids"], records["freqs"], _RowLists(data["vectors"]))
    _add_aliases(kb, data, records)
    return kb


def build_ours_records(vocab, data, records):
    from entity_linker import InMemoryLookupKB

    return InMemoryLookupKB.from_records(
        vocab,
        VECTOR_LENGTH,
        zip(data["ids"], records["freqs"], data["vectors"]),
        zip(data["alias_texts"], records["alias_entities"], records["alias_priors"]),
    )


def build_ours_arrays(vocab, data, records, add_to_vocab=False):
    from entity_linker import InMemoryLookupKB

    return InMemoryLookupKB.from_arrays(
        vocab,
        data["ids"],
        data["freqs"],
        data["vectors"],
        data["alias_texts"],
        data["offsets"],
        data["cands"],
        data["priors"],
        add_to_vocab=add_to_vocab,
    )


BUILDERS = {
    "spacy_add": build_spacy_add,
    "spacy_set": build_spacy_set,
    "ours_add": build_ours_add,
    "ours_set": build_ours_set,
    "ours_records": build_ours_records,
    "ours_arrays": build_ours_arrays,
    "ours_arrays_vocab": lambda v, d, r: build_ours_arrays(v, d, r, add_to_vocab=True),
}
NEEDS_RECORDS = {"spacy_add", "spacy_set", "ours_add", "ours_set", "ours_records"}


def kb_class(kind: str):
    if kind == "spacy":
        from spacy.kb import InMemoryLookupKB
    else:
        from entity_linker import InMemoryLookupKB
    return InMemoryLookupKB


# --------------------------------------------------------------------------- checks


def check_kb(kb, data, n_checks: int = 300) -> str:
    """Compare a sample of candidates and vectors with the generated data."""
    import numpy

    rng = numpy.random.default_rng(12345)
    ids, offsets, cands, priors = data["ids"], data["offsets"], data["cands"], data["priors"]
    m = len(data["alias_texts"])
    for j in rng.integers(0, m, size=min(n_checks, m)).tolist():
        got = [(c.entity_, c.prior_prob) for c in kb.get_alias_candidates(f"alias {j}")]
        want = [
            (ids[c], float(p))
            for c, p in zip(
                cands[offsets[j] : offsets[j + 1]].tolist(),
                priors[offsets[j] : offsets[j + 1]].tolist(),
            )
        ]
        if [g[0] for g in got] != [w[0] for w in want] or any(
            abs(g[1] - w[1]) > 1e-6 for g, w in zip(got, want)
        ):
            return f"MISMATCH for alias {j}: got {got}, want {want}"
    for i in rng.integers(0, len(ids), size=min(50, len(ids))).tolist():
        vector = numpy.asarray(kb.get_vector(ids[i]), dtype=numpy.float32)
        if not numpy.array_equal(vector, data["vectors"][i]):
            return f"MISMATCH in the vector of {ids[i]}"
    if kb.get_alias_candidates("no such alias"):
        return "MISMATCH: an unknown alias has candidates"
    return "ok"


def fingerprint(kb, aliases) -> list:
    """(n candidates, sum of priors, crc32 of the entity ids) of some lookups."""
    ids, total, count = [], 0.0, 0
    for alias in aliases:
        for cand in kb.get_alias_candidates(alias):
            ids.append(cand.entity_)
            total += cand.prior_prob
            count += 1
    return [count, round(total, 3), zlib.crc32("\n".join(ids).encode("utf8"))]


# --------------------------------------------------------------------------- measurements


def measure_lookups(kb, kind: str, aliases, entities, prefix: str = "") -> dict:
    """Lookup and vector throughput of a built or loaded KB (best of several runs)."""
    import numpy

    res = {}
    get = kb.get_alias_candidates

    def single():
        for alias in aliases:
            get(alias)

    res[prefix + "single_lookup_s"] = best_of(single, 5, budget=8.0)
    if kind == "ours":
        from entity_linker.kb import hash_string

        hashes = numpy.array([hash_string(a) for a in aliases], dtype=numpy.uint64)
        res[prefix + "batch_str_s"] = best_of(lambda: kb.lookup_aliases(aliases), 5)
        res[prefix + "batch_hash_s"] = best_of(lambda: kb.lookup_aliases(hashes), 5)
    if prefix:
        return res
    get_vector = kb.get_vector

    def vectors():
        for entity in entities:
            get_vector(entity)

    res["get_vector_s"] = best_of(vectors, 5, budget=5.0)
    if kind == "ours":
        rows = kb.get_entity_rows(entities)
        res["gather_s"] = best_of(lambda: kb.vectors[rows], 5)
        res["get_vectors_s"] = best_of(lambda: kb.get_vectors(entities), 5)
    return res


def worker_build(spec: dict) -> dict:
    """Fresh process: generate data, build one KB, measure memory (+ lookups, to_disk)."""
    import numpy  # noqa: F401
    import spacy  # noqa: F401
    from spacy.vocab import Vocab

    import entity_linker  # noqa: F401

    method = spec["method"]
    kind = "spacy" if method.startswith("spacy") else "ours"
    start = time.perf_counter()
    data = make_data(spec["n"], spec["seed"])
    records = make_records(data) if method in NEEDS_RECORDS else None
    aliases, entities = lookup_sample(spec["n"], spec["n_lookups"], spec["seed"])
    vocab = Vocab()
    gen_s = time.perf_counter() - start
    gc.collect()
    rss0 = rss()
    peak_reset = reset_peak()
    start, cpu_start = time.perf_counter(), time.process_time()
    kb = BUILDERS[method](vocab, data, records)
    build_s = time.perf_counter() - start
    build_cpu_s = time.process_time() - cpu_start
    gc.collect()
    res = {
        "method": method,
        "gen_s": gen_s,
        "build_s": build_s,
        "build_cpu_s": build_cpu_s,
        "rss_increase": rss() - rss0,
        "peak_increase": peak_rss() - rss0,
        "peak_reset": peak_reset,
        "vocab_strings": len(vocab.strings),
        "n_entities": kb.get_size_entities(),
        "n_aliases": kb.get_size_aliases(),
    }
    if spec.get("check", True):
        res["check"] = check_kb(kb, data)
    if spec.get("measure"):
        res.update(measure_lookups(kb, kind, aliases, entities))
    if spec.get("save"):
        path = Path(spec["save"])
        if path.exists():
            shutil.rmtree(path)
        res["to_disk_s"] = best_of(lambda: kb.to_disk(path), 3, budget=5.0)
        res["disk_bytes"] = dir_size(path)
        res["disk_files"] = {p.name: p.stat().st_size for p in path.iterdir()}
        if kind == "ours":
            from entity_linker.kb import format as kb_format

            with open(path / kb_format.FILE_NAME, "rb") as file:
                image = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
                header = kb_format.read_header(image, "kb.bin")
                image.close()
            res["sections"] = {name: s[1] for name, s in header.sections.items()}
            res["cells"] = [header.entity_cells_length, header.alias_cells_length]
    return res


def _emit(tag: str, payload) -> None:
    sys.stdout.write(f"{tag} {json.dumps(payload)}\n")
    sys.stdout.flush()


def worker_open(spec: dict) -> None:
    """Fresh process: open a saved KB, do random lookups, report memory; then wait.

    Protocol (stdin/stdout): prints READY {..}; on "measure" prints SMAPS {..};
    then on "exit" exits, on "extras" measures more (primary process only) and
    prints RESULT {..}.
    """
    import numpy  # noqa: F401
    import spacy  # noqa: F401
    from spacy.vocab import Vocab

    import entity_linker  # noqa: F401

    kind = spec["kind"]
    cls = kb_class(kind)
    aliases, entities = lookup_sample(spec["n"], spec["n_lookups"], spec["seed"])
    vocab = Vocab()
    cls(vocab, VECTOR_LENGTH)  # warm up the constructor
    gc.collect()
    mem0 = smaps()
    rss0 = rss()
    reset_peak()
    start = time.perf_counter()
    kb = cls(vocab, VECTOR_LENGTH)
    kb.from_disk(spec["path"])
    open_s = time.perf_counter() - start
    rss_open = rss()
    mem_open = smaps()
    get = kb.get_alias_candidates
    start = time.perf_counter()
    for alias in aliases:
        get(alias)
    first_lookups_s = time.perf_counter() - start
    rss_lookups = rss()
    mem_lookups = smaps()
    res = {
        "kind": kind,
        "open_s": open_s,
        "rss_open": rss_open - rss0,
        "rss_lookups": rss_lookups - rss0,
        "peak_open_lookups": peak_rss() - rss0,
        "uss_open": mem_open["uss"] - mem0["uss"],
        "uss_lookups": mem_lookups["uss"] - mem0["uss"],
        "first_lookups_s": first_lookups_s,
        "n_entities": kb.get_size_entities(),
        "fingerprint": fingerprint(kb, aliases[:2000]),
    }
    _emit("READY", res)
    for line in sys.stdin:
        command = line.strip()
        if command == "measure":
            _emit("SMAPS", smaps())
        elif command == "exit":
            return
        elif command == "extras":
            res.update(measure_lookups(kb, kind, aliases, entities, prefix="mapped_"))
            if kind == "ours":
                res["reopen_s"] = best_of(
                    lambda: cls(vocab, VECTOR_LENGTH).from_disk(spec["path"]), 5
                )
                start = time.perf_counter()
                copy = kb.copy()
                res["copy_s"] = time.perf_counter() - start
                res.update(measure_lookups(copy, kind, aliases, entities, prefix="inmem_"))
                # Mapped again after the copy: the best of both rounds, so that a
                # burst of load on a shared machine does not decide the ratio.
                again = measure_lookups(kb, kind, aliases, entities, prefix="mapped_")
                for key, value in again.items():
                    res[key] = min(res[key], value)
            _emit("RESULT", res)
            return


# --------------------------------------------------------------------------- orchestration


def _worker_cmd(spec: dict) -> list:
    return [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]


def run_build(spec: dict) -> dict:
    start = time.perf_counter()
    proc = subprocess.run(_worker_cmd(spec), stdout=subprocess.PIPE, text=True)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"worker {spec} failed (exit {proc.returncode}):\n{proc.stdout}")
    res = json.loads(lines[-1][len("RESULT ") :])
    res["wall_s"] = time.perf_counter() - start
    if res.get("check", "ok") != "ok":
        print(f"  !! check failed for {spec['method']}: {res['check']}", flush=True)
    return res


class _OpenWorker:
    def __init__(self, spec: dict):
        self.proc = subprocess.Popen(
            _worker_cmd(spec), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def read(self, tag: str):
        for line in self.proc.stdout:
            if line.startswith(tag + " "):
                return json.loads(line[len(tag) + 1 :])
            sys.stdout.write(line)
        raise RuntimeError(f"open worker exited (code {self.proc.wait()}) before {tag}")

    def send(self, command: str):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def finish(self):
        self.proc.stdin.close()
        self.proc.wait()


def run_open_group(spec: dict, n_extra: int) -> dict:
    """Open a saved KB in a fresh process, then in n_extra more at the same time."""
    start = time.perf_counter()
    primary = _OpenWorker(spec)
    res = primary.read("READY")
    extras = []
    for _ in range(n_extra):
        worker = _OpenWorker(spec)
        extras.append((worker, worker.read("READY")))
    workers = [primary] + [w for w, _ in extras]
    for worker in workers:
        worker.send("measure")
    shared = [worker.read("SMAPS") for worker in workers]
    for worker, _ in extras:
        worker.send("exit")
        worker.finish()
    primary.send("extras")
    res = primary.read("RESULT")
    primary.finish()
    res["extra_processes"] = [
        {
            "rss_increase": ready["rss_lookups"],
            "uss_increase": ready["uss_lookups"],
            "open_s": ready["open_s"],
            "pss_all_alive": smap["pss"],
        }
        for (_, ready), smap in zip(extras, shared[1:])
    ]
    res["primary_pss_all_alive"] = shared[0]["pss"]
    res["wall_s"] = time.perf_counter() - start
    return res


# --------------------------------------------------------------------------- report


def fmt_s(x) -> str:
    if x is None:
        return "-"
    if x < 1e-3:
        return f"{x * 1e6:.0f} µs"
    if x < 1:
        return f"{x * 1e3:.1f} ms"
    return f"{x:.2f} s"


def fmt_rate(n: int, seconds) -> str:
    if seconds is None:
        return "-"
    rate = n / seconds
    if rate >= 1e6:
        return f"{rate / 1e6:.2f} M/s"
    return f"{rate / 1e3:.0f} k/s"


def fmt_mb(x) -> str:
    return "-" if x is None else f"{x / MiB:.1f} MiB"


def fmt_build(res: dict) -> str:
    """Wall time of a build, with its CPU time (the machine may be shared)."""
    return f"{fmt_s(res['build_s'])} (CPU {fmt_s(res['build_cpu_s'])})"


def ratio_faster(spacy_s, ours_s) -> str:
    if not spacy_s or not ours_s:
        return ""
    r = spacy_s / ours_s
    return f"{r:.1f}x faster" if r >= 1 else f"{1 / r:.1f}x slower"


def ratio_smaller(spacy_b, ours_b) -> str:
    if not spacy_b or ours_b is None:
        return ""
    r = ours_b / spacy_b
    if r <= 0:
        return f"{r:.3f}x"
    word = f"{1 / r:.1f}x smaller" if r <= 1 else f"{r:.1f}x larger"
    return f"{r:.3f}x ({word})"


def size_label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def table_rows(n: int, r: dict, n_lookups: int) -> list:
    """(metric, spaCy, ours, ours vs spaCy) rows for one size."""
    b = r["builds"]
    sp_add, sp_set = b["spacy_add"], b["spacy_set"]
    sp_fast = min((sp_add, sp_set), key=lambda x: x["build_s"])
    sp_small = min((sp_add, sp_set), key=lambda x: x["rss_increase"])
    spm, om = r["spacy_measure"], r["ours_measure"]
    so, oo = r["spacy_open"], r["ours_open"]
    L = n_lookups
    rows = [
        ("build: spaCy add_entity+add_alias loop", fmt_build(sp_add), "", ""),
        ("build: spaCy set_entities+add_alias loop", fmt_build(sp_set), "", ""),
        (
            "build: ours add_entity+add_alias loop (vs spaCy add loop)",
            fmt_build(sp_add),
            fmt_build(b["ours_add"]) if "ours_add" in b else r["ours_add_note"],
            ratio_faster(sp_add["build_s"], b["ours_add"]["build_s"]) if "ours_add" in b
            else "",
        ),
        (
            "build: ours set_entities+add_alias loop (vs spaCy's)",
            fmt_build(sp_set),
            fmt_build(b["ours_set"]) if "ours_set" in b else "",
            ratio_faster(sp_set["build_s"], b["ours_set"]["build_s"]) if "ours_set" in b
            else "",
        ),
        (
            "build: ours from_records (vs spaCy fastest)",
            fmt_build(sp_fast),
            fmt_build(b["ours_records"]),
            ratio_faster(sp_fast["build_s"], b["ours_records"]["build_s"]),
        ),
        (
            "build: ours from_arrays (vs spaCy fastest)",
            fmt_build(sp_fast),
            fmt_build(b["ours_arrays"]),
            ratio_faster(sp_fast["build_s"], b["ours_arrays"]["build_s"]),
        ),
        ("memory: spaCy KB built by add loop (RSS increase)", fmt_mb(sp_add["rss_increase"]),
         "", ""),
        ("memory: spaCy KB built by set_entities (RSS increase)",
         fmt_mb(sp_set["rss_increase"]), "", ""),
    ]
    for method in ("ours_arrays", "ours_arrays_vocab", "ours_add", "ours_set"):
        if method not in b:
            rows.append((f"memory: {BUILD_LABELS[method]}", "", "skipped", ""))
            continue
        rows.append((
            f"memory: {BUILD_LABELS[method]} (vs smaller spaCy)",
            fmt_mb(sp_small["rss_increase"]),
            fmt_mb(b[method]["rss_increase"]),
            ratio_smaller(sp_small["rss_increase"], b[method]["rss_increase"]),
        ))
    rows += [
        (
            "peak RSS increase during build: fastest spaCy vs from_arrays",
            fmt_mb(sp_fast["peak_increase"]),
            fmt_mb(b["ours_arrays"]["peak_increase"]),
            ratio_smaller(sp_fast["peak_increase"], b["ours_arrays"]["peak_increase"]),
        ),
        (
            f"get_alias_candidates, {L:,} random aliases",
            fmt_rate(L, spm["single_lookup_s"]),
            fmt_rate(L, om["single_lookup_s"]),
            ratio_faster(spm["single_lookup_s"], om["single_lookup_s"]),
        ),
        (
            "ours lookup_aliases(list of str) vs spaCy get_alias_candidates",
            fmt_rate(L, spm["single_lookup_s"]),
            fmt_rate(L, om["batch_str_s"]),
            ratio_faster(spm["single_lookup_s"], om["batch_str_s"]),
        ),
        (
            "ours lookup_aliases(uint64 hashes) vs spaCy get_alias_candidates",
            fmt_rate(L, spm["single_lookup_s"]),
            fmt_rate(L, om["batch_hash_s"]),
            ratio_faster(spm["single_lookup_s"], om["batch_hash_s"]),
        ),
        (
            "get_vector, random entities",
            fmt_rate(L, spm["get_vector_s"]),
            fmt_rate(L, om["get_vector_s"]),
            ratio_faster(spm["get_vector_s"], om["get_vector_s"]),
        ),
        (
            "ours kb.vectors[rows] gather (rows/s) vs spaCy get_vector",
            fmt_rate(L, spm["get_vector_s"]),
            fmt_rate(L, om["gather_s"]),
            ratio_faster(spm["get_vector_s"], om["gather_s"]),
        ),
        (
            "ours get_vectors(list of ids) vs spaCy get_vector",
            fmt_rate(L, spm["get_vector_s"]),
            fmt_rate(L, om["get_vectors_s"]),
            ratio_faster(spm["get_vector_s"], om["get_vectors_s"]),
        ),
        (
            "to_disk",
            fmt_s(spm["to_disk_s"]),
            fmt_s(om["to_disk_s"]),
            ratio_faster(spm["to_disk_s"], om["to_disk_s"]),
        ),
        (
            "size on disk (spaCy: contents + strings.json)",
            fmt_mb(spm["disk_bytes"]),
            fmt_mb(om["disk_bytes"]),
            ratio_smaller(spm["disk_bytes"], om["disk_bytes"]),
        ),
        (
            "from_disk in a fresh process",
            fmt_s(so["open_s"]),
            fmt_s(oo["open_s"]),
            ratio_faster(so["open_s"], oo["open_s"]),
        ),
        ("ours from_disk again in the same process (best of 5)", "", fmt_s(oo["reopen_s"]), ""),
        (
            "RSS increase right after from_disk",
            fmt_mb(so["rss_open"]),
            fmt_mb(oo["rss_open"]),
            ratio_smaller(so["rss_open"], oo["rss_open"]),
        ),
        (
            f"peak RSS increase during from_disk + {L:,} lookups",
            fmt_mb(so["peak_open_lookups"]),
            fmt_mb(oo["peak_open_lookups"]),
            ratio_smaller(so["peak_open_lookups"], oo["peak_open_lookups"]),
        ),
        (
            f"RSS increase after from_disk + {L:,} lookups",
            fmt_mb(so["rss_lookups"]),
            fmt_mb(oo["rss_lookups"]),
            ratio_smaller(so["rss_lookups"], oo["rss_lookups"]),
        ),
        (
            f"first {L:,} get_alias_candidates after from_disk (cold)",
            fmt_rate(L, so["first_lookups_s"]),
            fmt_rate(L, oo["first_lookups_s"]),
            ratio_faster(so["first_lookups_s"], oo["first_lookups_s"]),
        ),
        (
            "get_alias_candidates on the loaded KB (warm)",
            fmt_rate(L, so["mapped_single_lookup_s"]),
            fmt_rate(L, oo["mapped_single_lookup_s"]),
            ratio_faster(so["mapped_single_lookup_s"], oo["mapped_single_lookup_s"]),
        ),
        (
            "ours get_alias_candidates: mapped vs in-memory copy",
            "",
            f"{fmt_rate(L, oo['mapped_single_lookup_s'])} vs "
            f"{fmt_rate(L, oo['inmem_single_lookup_s'])}",
            "mapped/in-memory time "
            f"{oo['mapped_single_lookup_s'] / oo['inmem_single_lookup_s']:.2f}x",
        ),
        (
            "ours lookup_aliases(str): mapped vs in-memory copy",
            "",
            f"{fmt_rate(L, oo['mapped_batch_str_s'])} vs {fmt_rate(L, oo['inmem_batch_str_s'])}",
            f"mapped/in-memory time {oo['mapped_batch_str_s'] / oo['inmem_batch_str_s']:.2f}x",
        ),
        (
            "ours lookup_aliases(hashes): mapped vs in-memory copy",
            "",
            f"{fmt_rate(L, oo['mapped_batch_hash_s'])} vs "
            f"{fmt_rate(L, oo['inmem_batch_hash_s'])}",
            f"mapped/in-memory time {oo['mapped_batch_hash_s'] / oo['inmem_batch_hash_s']:.2f}x",
        ),
    ]
    for key, label in (("rss_increase", "RSS"), ("uss_increase", "USS (private)")):
        sp = [p[key] for p in so["extra_processes"]]
        ou = [p[key] for p in oo["extra_processes"]]
        if sp and ou:
            rows.append((
                f"each of {len(sp)} more processes opening it: {label} increase",
                " / ".join(fmt_mb(x) for x in sp),
                " / ".join(fmt_mb(x) for x in ou),
                ratio_smaller(max(sp), max(ou)),
            ))
    return rows


def open_only_rows(n: int, r: dict) -> list:
    o, oo = r["ours_build"], r["ours_open"]
    sb, so = r.get("spacy_build"), r.get("spacy_open")
    rows = [
        ("build (spaCy: fastest way at the largest size; ours: from_arrays)",
         fmt_build(sb) if sb else "skipped",
         fmt_build(o), ratio_faster(sb["build_s"], o["build_s"]) if sb else ""),
        ("to_disk", fmt_s(sb["to_disk_s"]) if sb else "skipped", fmt_s(o["to_disk_s"]),
         ratio_faster(sb["to_disk_s"], o["to_disk_s"]) if sb else ""),
        ("size on disk", fmt_mb(sb["disk_bytes"]) if sb else "skipped",
         fmt_mb(o["disk_bytes"]), ratio_smaller(sb["disk_bytes"], o["disk_bytes"]) if sb else ""),
        ("from_disk in a fresh process", fmt_s(so["open_s"]) if so else "skipped",
         fmt_s(oo["open_s"]), ratio_faster(so["open_s"], oo["open_s"]) if so else ""),
        ("ours from_disk again in the same process (best of 5)", "", fmt_s(oo["reopen_s"]), ""),
        ("RSS increase right after from_disk", fmt_mb(so["rss_open"]) if so else "skipped",
         fmt_mb(oo["rss_open"]), ratio_smaller(so["rss_open"], oo["rss_open"]) if so else ""),
        ("RSS increase after from_disk + lookups",
         fmt_mb(so["rss_lookups"]) if so else "skipped", fmt_mb(oo["rss_lookups"]),
         ratio_smaller(so["rss_lookups"], oo["rss_lookups"]) if so else ""),
    ]
    for key, label in (
        ("single_lookup_s", "get_alias_candidates"),
        ("batch_str_s", "lookup_aliases(str)"),
        ("batch_hash_s", "lookup_aliases(hashes)"),
    ):
        mapped, inmem = oo["mapped_" + key], oo["inmem_" + key]
        rows.append((
            f"ours {label}: mapped vs in-memory copy",
            "",
            f"{fmt_rate(r['n_lookups'], mapped)} vs {fmt_rate(r['n_lookups'], inmem)}",
            f"mapped/in-memory time {mapped / inmem:.2f}x",
        ))
    return rows


def print_table(title: str, rows: list) -> str:
    header = ("metric", "spaCy", "ours", "ours vs spaCy")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(4)]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    out = [f"### {title}", "", line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(row) for row in rows]
    text = "\n".join(out) + "\n"
    print(text, flush=True)
    return text


def evaluate_targets(results: dict, open_only: dict) -> list:
    """One line per issue target: (target, measured, met)."""
    targets = []

    def add(name, value_text, met):
        targets.append({"target": name, "measured": value_text, "met": met})

    for n, r in sorted(results.items()):
        label = size_label(n)
        b = r["builds"]
        sp_fast = min(b["spacy_add"]["build_s"], b["spacy_set"]["build_s"])
        sp_mem = min(b["spacy_add"]["rss_increase"], b["spacy_set"]["rss_increase"])
        spm, om, so, oo = r["spacy_measure"], r["ours_measure"], r["spacy_open"], r["ours_open"]
        x = sp_fast / b["ours_arrays"]["build_s"]
        add(f"[{label}] bulk build >= 10x faster than spaCy's fastest build", f"{x:.1f}x",
            x >= 10)
        if "ours_add" in b:
            x = b["spacy_add"]["build_s"] / b["ours_add"]["build_s"]
            add(f"[{label}] our add_* loop no slower than spaCy's add_* loop",
                f"{x:.2f}x the speed", x >= 1)
        if "ours_set" in b:
            x = b["spacy_set"]["build_s"] / b["ours_set"]["build_s"]
            y = b["ours_set"]["rss_increase"] / b["spacy_set"]["rss_increase"]
            add(f"[{label}] API build (set_entities + add_alias loop) >= 1x spaCy's speed "
                "and <= 0.6x its memory", f"{x:.2f}x the speed, {y:.2f}x the memory",
                x >= 1 and y <= 0.6)
        x = b["ours_arrays"]["rss_increase"] / sp_mem
        y = b["ours_add"]["rss_increase"] / sp_mem if "ours_add" in b else None
        add(f"[{label}] memory <= 0.6x spaCy's (from_arrays KB; add_* KB in brackets)",
            f"{x:.2f}x" + (f" ({y:.2f}x)" if y is not None else ""), x <= 0.6)
        x = spm["single_lookup_s"] / om["batch_str_s"]
        y = spm["single_lookup_s"] / om["batch_hash_s"]
        add(f"[{label}] batch lookup >= 30x spaCy's get_alias_candidates/s "
            "(str; hashes in brackets)", f"{x:.0f}x ({y:.0f}x)", x >= 30)
        x = so["open_s"] / oo["open_s"]
        add(f"[{label}] open >= 100x faster than spaCy's from_disk", f"{x:.0f}x", x >= 100)
        x = oo["rss_open"] / so["rss_open"]
        add(f"[{label}] RSS right after open <= 5% of spaCy's loaded KB", f"{100 * x:.2f}%",
            x <= 0.05)
        x = spm["to_disk_s"] / om["to_disk_s"]
        add(f"[{label}] to_disk >= 5x faster", f"{x:.1f}x", x >= 5)
        x = om["disk_bytes"] / spm["disk_bytes"]
        add(f"[{label}] file size <= spaCy's", f"{x:.2f}x", x <= 1)
        ratios = {
            "get_alias_candidates": oo["mapped_single_lookup_s"] / oo["inmem_single_lookup_s"],
            "lookup_aliases(str)": oo["mapped_batch_str_s"] / oo["inmem_batch_str_s"],
            "lookup_aliases(hashes)": oo["mapped_batch_hash_s"] / oo["inmem_batch_hash_s"],
        }
        add(f"[{label}] mapped lookups within 1.5x of in-memory (time ratio)",
            ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()),
            all(v <= 1.5 for v in ratios.values()))
    for n, r in sorted(open_only.items()):
        oo = r["ours_open"]
        x = oo["open_s"]
        add(f"[{size_label(n)}] opens in < 50 ms (fresh process)", fmt_s(x), x < 0.05)
        ratios = {
            "get_alias_candidates": oo["mapped_single_lookup_s"] / oo["inmem_single_lookup_s"],
            "lookup_aliases(str)": oo["mapped_batch_str_s"] / oo["inmem_batch_str_s"],
            "lookup_aliases(hashes)": oo["mapped_batch_hash_s"] / oo["inmem_batch_hash_s"],
        }
        add(f"[{size_label(n)}] mapped lookups within 1.5x of in-memory (time ratio)",
            ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()),
            all(v <= 1.5 for v in ratios.values()))
    return targets


# --------------------------------------------------------------------------- main


def bench_size(n: int, args, workdir: Path, results: dict) -> dict:
    label = size_label(n)
    common = {"n": n, "seed": args.seed, "n_lookups": args.n_lookups}
    builds = {}
    measures = {}
    extra = {}
    for method in SPACY_BUILDS + OURS_BUILDS:
        if method == "ours_add" and n > args.ours_add_max:
            note = f"skipped (> --ours-add-max {args.ours_add_max:,})"
            done = [m for m in sorted(results) if "ours_add" in results[m]["builds"]]
            if done:
                m = done[-1]
                estimate = results[m]["builds"]["ours_add"]["build_s"] * n / m
                note = f"skipped, ~{estimate:.0f} s by linear extrapolation from {size_label(m)}"
                extra["ours_add_estimate_s"] = estimate
            extra["ours_add_note"] = note
            print(f"[{label}] {BUILD_LABELS[method]}: {note}", flush=True)
            continue
        spec = dict(common, method=method)
        if method in ("spacy_add", "ours_arrays"):
            kind = method.split("_")[0]
            spec.update(measure=True, save=str(workdir / f"{kind}_{n}"))
        print(f"[{label}] {BUILD_LABELS[method]} ...", flush=True)
        res = run_build(spec)
        builds[method] = res
        if spec.get("measure"):
            measures[method.split("_")[0]] = res
        print(
            f"[{label}]   build {fmt_s(res['build_s'])} (CPU {fmt_s(res['build_cpu_s'])}), "
            f"RSS +{fmt_mb(res['rss_increase'])}, "
            f"check {res.get('check')}, worker wall {res['wall_s']:.1f} s",
            flush=True,
        )
    opens = {}
    for kind in ("spacy", "ours"):
        print(f"[{label}] {kind}: from_disk in 1 + {args.extra_processes} processes ...",
              flush=True)
        spec = dict(common, kind=kind, path=str(workdir / f"{kind}_{n}"))
        opens[kind] = run_open_group(spec, args.extra_processes)
        print(f"[{label}]   open {fmt_s(opens[kind]['open_s'])}, RSS after open "
              f"+{fmt_mb(opens[kind]['rss_open'])}, wall {opens[kind]['wall_s']:.1f} s",
              flush=True)
    if opens["spacy"]["fingerprint"] != opens["ours"]["fingerprint"]:
        print(f"[{label}] !! loaded KBs differ: spaCy {opens['spacy']['fingerprint']} vs "
              f"ours {opens['ours']['fingerprint']}", flush=True)
    for kind in ("spacy", "ours"):
        shutil.rmtree(workdir / f"{kind}_{n}", ignore_errors=True)
    return {
        "builds": builds,
        "spacy_measure": measures["spacy"],
        "ours_measure": measures["ours"],
        "spacy_open": opens["spacy"],
        "ours_open": opens["ours"],
        "fingerprints_equal": opens["spacy"]["fingerprint"] == opens["ours"]["fingerprint"],
        **extra,
    }


def bench_open_only(n: int, args, workdir: Path, results: dict) -> dict:
    label = size_label(n)
    common = {"n": n, "seed": args.seed, "n_lookups": args.n_lookups, "check": False}
    out = {"n_lookups": args.n_lookups}
    print(f"[{label}] ours from_arrays + to_disk ...", flush=True)
    path = workdir / f"ours_{n}"
    out["ours_build"] = run_build(dict(common, method="ours_arrays", save=str(path)))
    print(f"[{label}]   build {fmt_s(out['ours_build']['build_s'])}, to_disk "
          f"{fmt_s(out['ours_build']['to_disk_s'])}", flush=True)
    out["ours_open"] = run_open_group(dict(common, kind="ours", path=str(path)), 0)
    print(f"[{label}]   ours from_disk {fmt_s(out['ours_open']['open_s'])}", flush=True)
    shutil.rmtree(path, ignore_errors=True)
    # spaCy only if a linear extrapolation from the largest measured size fits the budget.
    if not results:
        out["spacy_note"] = "skipped: no smaller size was measured to estimate spaCy's time"
    else:
        m = max(results)
        r = results[m]
        method = min(SPACY_BUILDS, key=lambda k: r["builds"][k]["build_s"])
        estimate = (n / m) * (
            r["builds"][method]["wall_s"]
            + r["spacy_measure"]["to_disk_s"]
            + r["spacy_open"]["open_s"]
        )
        out["spacy_estimate_s"] = estimate
        if estimate > args.spacy_budget:
            out["spacy_note"] = (
                f"skipped: extrapolated from {size_label(m)}, spaCy would need ~{estimate:.0f} s "
                f"(> --spacy-budget {args.spacy_budget:.0f} s)"
            )
        else:
            print(f"[{label}] spaCy {BUILD_LABELS[method]} + to_disk (est. {estimate:.0f} s) ...",
                  flush=True)
            path = workdir / f"spacy_{n}"
            out["spacy_build"] = run_build(dict(common, method=method, save=str(path)))
            out["spacy_open"] = run_open_group(dict(common, kind="spacy", path=str(path)), 0)
            print(f"[{label}]   spaCy from_disk {fmt_s(out['spacy_open']['open_s'])}",
                  flush=True)
            shutil.rmtree(path, ignore_errors=True)
    if "spacy_note" in out:
        print(f"[{label}]   spaCy {out['spacy_note']}", flush=True)
    return out


def _git_state() -> dict:
    """The commit benchmarked, and uncommitted changes to the package (if any)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "entity_linker"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"git_head": head, "git_dirty": [x.strip() for x in dirty if x.strip()]}


def report(meta: dict, results: dict, open_only: dict) -> list:
    """Print the tables and the targets; return the targets."""
    for n, r in results.items():
        print_table(
            f"{size_label(n)} entities, {2 * n:,} aliases, "
            f"{r['builds']['ours_arrays']['n_entities']:,} rows",
            table_rows(n, r, meta["n_lookups"]),
        )
    for n, r in open_only.items():
        print_table(f"{size_label(n)} entities (open-only)", open_only_rows(n, r))
        if "spacy_note" in r:
            print(f"spaCy at {size_label(n)}: {r['spacy_note']}\n")
    targets = evaluate_targets(results, open_only)
    print("### Targets\n")
    for t in targets:
        print(f"- {'MET    ' if t['met'] else 'NOT MET'} {t['target']}: {t['measured']}")
    print(f"\ntotal time {meta['total_s']:.0f} s; git {meta.get('git_head')}, uncommitted "
          f"package changes: {meta.get('git_dirty') or 'none'}", flush=True)
    return targets


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=list(DEFAULT_SIZES),
                        help="numbers of entities for the full comparison (default: 100k 1M)")
    parser.add_argument("--open-only-sizes", type=int, nargs="*", default=[],
                        help="sizes at which only from_arrays, to_disk and from_disk are "
                        "measured (e.g. 5000000)")
    parser.add_argument("--n-lookups", type=int, default=100_000,
                        help="random aliases / entities per lookup measurement")
    parser.add_argument("--extra-processes", type=int, default=2,
                        help="more processes that open the saved KB at the same time")
    parser.add_argument("--ours-add-max", type=int, default=100_000,
                        help="largest size at which our add_entity/add_alias loop is timed "
                        "(it is slow: ~40 s per 100k entities)")
    parser.add_argument("--spacy-budget", type=float, default=240.0,
                        help="seconds spaCy may take at an open-only size (else skipped)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to save the KBs (default: a temporary directory)")
    parser.add_argument("--json", type=Path, default=None, help="write all numbers here")
    parser.add_argument("--report", type=Path, default=None,
                        help="only print the tables of a JSON file written by --json")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:
        spec = json.loads(args.worker)
        if "method" in spec:
            _emit("RESULT", worker_build(spec))
        else:
            worker_open(spec)
        return 0
    if args.report is not None:
        saved = json.loads(args.report.read_text())
        report(
            saved["meta"],
            {int(n): r for n, r in saved["sizes"].items()},
            {int(n): r for n, r in saved["open_only"].items()},
        )
        return 0

    import spacy

    import entity_linker

    started = time.perf_counter()
    meta = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "spacy": spacy.__version__,
        "entity_linker": entity_linker.__version__,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "vector_length": VECTOR_LENGTH,
        "n_lookups": args.n_lookups,
        "seed": args.seed,
        "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
    }
    meta.update(_git_state())
    print(f"spaCy {meta['spacy']}, entity_linker {meta['entity_linker']}, CPython "
          f"{meta['python']}, {meta['cpus']} CPUs", flush=True)
    own_dir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="bench_kb_")) if own_dir else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    results, open_only = {}, {}
    try:
        for n in args.sizes:
            results[n] = bench_size(n, args, workdir, results)
        for n in args.open_only_sizes:
            open_only[n] = bench_open_only(n, args, workdir, results)
    finally:
        if own_dir:
            shutil.rmtree(workdir, ignore_errors=True)
    meta["total_s"] = time.perf_counter() - started

    print()
    targets = report(meta, results, open_only)
    if args.json:
        payload = {
            "meta": meta,
            "sizes": {str(n): r for n, r in results.items()},
            "open_only": {str(n): r for n, r in open_only.items()},
            "targets": targets,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

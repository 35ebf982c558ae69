#!/usr/bin/env python
"""Benchmark corpus-scale linking: processes, a local Dask cluster, and spaCy.

Both linkers get the SAME pipeline around them (sentencizer + entity_ruler
with phrase patterns for the corpus's aliases + the linker, same untrained
tok2vec config, vector length 64) and the SAME KB contents: benchmarks/bench_kb.py's
generated KB (N entities, 2N aliases), built with ``from_arrays`` for ours and
``set_entities`` + ``add_alias`` for spaCy's, both saved with their pipeline.

Measured, each in fresh processes (this script re-invoked with --worker):

* throughput (docs/s, linking only, after a warm-up): ours in 1 process,
  ours with nlp.pipe(n_process=2) (fork), ours with link_corpus on a
  LocalCluster of 1 and of 2 worker processes (1 thread each; one partition per
  input file), spaCy's entity_linker with nlp.pipe(n_process=1 and 2);
* worker start-up: spacy.load of the pipeline in a fresh process (KB ready);
* memory of the KB per worker: two processes each open the KB and look up
  100,000 random aliases, then both report RSS, PSS and USS (private pages)
  from /proc/<pid>/smaps_rollup minus their own values before opening;
* memory of each Dask worker process after linking (whole process).

Usage (1M entities, ~8 min on 2 cores; --quick: 100k entities, ~2 min):
    python -m benchmarks.bench_corpus --entities 1000000 --docs 10000 \
        --json benchmarks/results/corpus_results.json
    python -m benchmarks.bench_corpus --quick
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # workers run as `python -m` from here
MODULE = "benchmarks.bench_corpus"
VECTOR_LENGTH = 64
MiB = 2**20
TOK2VEC = {
    "@architectures": "spacy.HashEmbedCNN.v2", "pretrained_vectors": None, "width": 64,
    "depth": 2, "embed_size": 2000, "window_size": 1, "maxout_pieces": 3,
    "subword_features": True,
}
FILLER = ("the", "mayor", "of", "visited", "and", "near", "river", "in", "said", "people",
          "from", "went", "to", "today", "report", "city", "north", "old", "new", "company")


def smaps(pid: int | None = None) -> dict:
    from entity_linker.distributed import process_memory

    return process_memory(pid)


def load_average() -> list:
    return [round(x, 2) for x in os.getloadavg()]


# --------------------------------------------------------------------------- prepare


def make_texts(n_docs: int, n_entities: int, n_mentioned: int, seed: int):
    """Texts of 15-30 words with 1-4 mentions of n_mentioned aliases; the alias texts."""
    rng = random.Random(seed)
    aliases = [f"alias {j}" for j in rng.sample(range(2 * n_entities), n_mentioned)]
    texts = []
    for _ in range(n_docs):
        words = [rng.choice(FILLER) for _ in range(rng.randint(15, 30))]
        for _ in range(rng.randint(1, 4)):
            words.insert(rng.randint(0, len(words)), rng.choice(aliases))
        texts.append(" ".join(words) + " .")
    return texts, aliases


def _pipeline(factory: str, model: dict, kb_loader, aliases, extra_config=None):
    import spacy
    from spacy.tokens import Doc, Span
    from spacy.training import Example
    from spacy.util import fix_random_seed

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "ORTH"})
    config = {"model": model, "entity_vector_length": VECTOR_LENGTH, **(extra_config or {})}
    linker = nlp.add_pipe(factory, config=config)
    linker.set_kb(kb_loader)
    fix_random_seed(0)
    examples = []
    for alias in aliases[:5]:
        predicted = nlp.make_doc(f"the {alias} said .")
        reference = Doc(nlp.vocab, words=[t.text for t in predicted])
        reference.ents = [Span(reference, 1, 3, label="ENT", kb_id="Q0")]
        examples.append(Example(predicted, reference))
    nlp.initialize(lambda: examples)
    ruler.add_patterns([{"label": "ENT", "pattern": alias} for alias in aliases])
    return nlp


def prepare(spec: dict) -> dict:
    """Build both KBs and pipelines and the corpus files (runs in its own process)."""
    from spacy.vocab import Vocab

    import entity_linker  # noqa: F401

    from . import bench_kb

    workdir = Path(spec["workdir"])
    n = spec["entities"]
    timings = {}
    started = time.perf_counter()
    data = bench_kb.make_data(n, seed=0)
    timings["make_data_s"] = time.perf_counter() - started
    texts, aliases = make_texts(spec["docs"], n, spec["mentioned"], seed=1)
    vocab = Vocab()

    started = time.perf_counter()
    ours_kb = bench_kb.build_ours_arrays(vocab, data, None)
    timings["ours_build_s"] = time.perf_counter() - started
    ours_model = {"@architectures": "entity_linker.EntityLinker.v1", "tok2vec": TOK2VEC}
    nlp = _pipeline("nel", ours_model, lambda v, kb=ours_kb: kb, aliases)
    nlp.to_disk(workdir / "ours_pipeline")
    ours_kb.to_disk(workdir / "ours_kb")

    started = time.perf_counter()
    spacy_kb = bench_kb.build_spacy_set(vocab, data, bench_kb.make_records(data))
    timings["spacy_build_s"] = time.perf_counter() - started
    spacy_model = {"@architectures": "spacy.EntityLinker.v2", "tok2vec": TOK2VEC,
                   "nO": VECTOR_LENGTH}
    nlp = _pipeline("entity_linker", spacy_model, lambda v, kb=spacy_kb: kb, aliases)
    nlp.to_disk(workdir / "spacy_pipeline")
    spacy_kb.to_disk(workdir / "spacy_kb")

    corpus = workdir / "corpus"
    corpus.mkdir()
    n_files = spec["files"]
    for index in range(n_files):
        chunk = texts[index::n_files]
        (corpus / f"part{index:03d}.jsonl").write_text(
            "".join(json.dumps({"id": f"{index}-{i}", "text": t}) + "\n"
                    for i, t in enumerate(chunk)), encoding="utf8")
    (workdir / "warmup.jsonl").write_text(
        "".join(json.dumps({"text": t}) + "\n" for t in texts[:200]), encoding="utf8")
    (workdir / "texts.json").write_text(json.dumps(texts), encoding="utf8")
    return timings


# --------------------------------------------------------------------------- workers


def worker_startup(spec: dict) -> dict:
    started = time.perf_counter()
    import spacy

    import entity_linker  # noqa: F401

    imported = time.perf_counter()
    nlp = spacy.load(spec["pipeline"], exclude=spec.get("exclude", []))
    loaded = time.perf_counter()
    nlp("the alias 1 said .")
    return {"import_s": imported - started, "load_s": loaded - imported,
            "first_doc_s": time.perf_counter() - loaded}


def worker_kb_memory(spec: dict) -> dict:
    """Open the KB, look up aliases, wait for the parent, then report memory."""
    from spacy.vocab import Vocab

    import entity_linker  # noqa: F401


    if spec["kind"] == "spacy":
        from spacy.kb import InMemoryLookupKB
    else:
        from entity_linker import InMemoryLookupKB
    vocab = Vocab()
    # The same aliases in both processes, as workers linking one corpus would touch.
    rng = random.Random(0)
    aliases = [f"alias {rng.randrange(2 * spec['entities'])}" for _ in range(100_000)]
    before = smaps()
    started = time.perf_counter()
    kb = InMemoryLookupKB(vocab, VECTOR_LENGTH)
    kb.from_disk(spec["kb"])
    load_s = time.perf_counter() - started
    n_candidates = 0
    for alias in aliases:
        for candidate in kb.get_alias_candidates(alias):
            n_candidates += 1
            # Touch the vector as linking does (ours: the zero-copy view `vector`;
            # spaCy's Candidate has only `entity_vector`).
            if hasattr(candidate, "vector"):
                candidate.vector  # noqa: B018
            else:
                candidate.entity_vector  # noqa: B018
    print("ready", flush=True)
    sys.stdin.readline()
    after = smaps()
    print(json.dumps({"load_s": load_s, "candidates": n_candidates,
                      **{f"{k}_increase": after[k] - before[k] for k in after}}), flush=True)
    sys.stdin.readline()  # stay alive (and mapped) until the other process has measured too
    return {}


def worker_pipe(spec: dict) -> dict:
    import spacy

    import entity_linker  # noqa: F401

    texts = json.loads(Path(spec["texts"]).read_text(encoding="utf8"))
    nlp = spacy.load(spec["pipeline"])
    list(nlp.pipe(texts[:200], batch_size=spec["batch_size"]))  # warm-up
    started = time.perf_counter()
    n_ents = 0
    for doc in nlp.pipe(texts, batch_size=spec["batch_size"], n_process=spec["n_process"]):
        n_ents += len(doc.ents)
    seconds = time.perf_counter() - started
    return {"docs": len(texts), "mentions": n_ents, "seconds": seconds,
            "docs_per_s": len(texts) / seconds}


def worker_dask(spec: dict) -> dict:
    from distributed import Client, LocalCluster

    from entity_linker.distributed import link_corpus, process_memory

    workdir = Path(spec["workdir"])
    with LocalCluster(n_workers=spec["n_workers"], threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(spec["n_workers"])
        # Every worker loads the pipeline (its start-up) and links a few docs first.
        startup = list(client.run(_warm_worker, spec["pipeline"],
                                  str(workdir / "warmup.jsonl")).values())
        output = tempfile.mkdtemp(dir=workdir)
        summary = link_corpus([workdir / "corpus"], output, spec["pipeline"], client=client,
                              batch_size=spec["batch_size"], progress=False)
        memory = list(client.run(process_memory).values())
    return {"docs": summary.documents, "mentions": summary.mentions,
            "linked": summary.linked, "nil": summary.nil, "seconds": summary.seconds,
            "docs_per_s": summary.docs_per_second, "workers": summary.workers,
            "worker_startup_s": startup,
            "worker_memory": memory}


def _warm_worker(pipeline: str, warmup: str) -> float:
    """On a Dask worker: load the pipeline (cached for the run) and link 200 docs."""
    from entity_linker.distributed import load_worker_pipeline

    nlp, seconds = load_worker_pipeline(pipeline)
    texts = [json.loads(line)["text"] for line in Path(warmup).read_text().splitlines()]
    list(nlp.pipe(texts))
    return seconds


WORKERS = {"prepare": prepare, "startup": worker_startup, "kbmem": worker_kb_memory,
           "pipe": worker_pipe, "dask": worker_dask}


def run_worker(spec: dict) -> dict:
    cmd = [sys.executable, "-m", MODULE, "--worker", json.dumps(spec)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"worker {spec['mode']} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_kb_memory_pair(spec: dict) -> list:
    """Two processes hold the same KB open at once, then both report their memory."""
    cmd = [sys.executable, "-m", MODULE, "--worker", json.dumps(spec)]
    procs = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              cwd=ROOT)
             for _ in range(2)]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        proc.stdin.write("measure\n")
        proc.stdin.flush()
    results = [json.loads(proc.stdout.readline()) for proc in procs]
    for proc in procs:
        proc.communicate("exit\n")
    return results


# --------------------------------------------------------------------------- report


def mib(x: float) -> str:
    return f"{x / MiB:,.1f} MiB"


def report(results: dict) -> str:
    tp = results["throughput"]
    su = results["startup"]
    mem = results["kb_memory"]
    lines = [
        f"KB: {results['entities']:,} entities, {2 * results['entities']:,} aliases; "
        f"corpus: {results['docs']:,} docs in {results['files']} files; "
        f"batch size {results['batch_size']}; {results['cpus']} CPUs; "
        f"load average before/after: {results['load_before']} / {results['load_after']}",
        "",
        "| run | docs/s | vs ours 1 process |",
        "|---|---|---|",
    ]
    base = tp["ours_1"]["docs_per_s"]
    labels = {
        "ours_1": "ours, nlp.pipe, 1 process",
        "ours_2": "ours, nlp.pipe(n_process=2)",
        "dask_1": "ours, link_corpus, LocalCluster 1 worker",
        "dask_2": "ours, link_corpus, LocalCluster 2 workers",
        "spacy_1": "spaCy entity_linker, nlp.pipe, 1 process",
        "spacy_2": "spaCy entity_linker, nlp.pipe(n_process=2)",
    }
    for key, label in labels.items():
        if key in tp:
            rate = tp[key]["docs_per_s"]
            lines.append(f"| {label} | {rate:,.0f} | {rate / base:.2f}x |")
    lines += [
        "",
        f"Dask 2 workers vs 1 worker: "
        f"{tp['dask_2']['docs_per_s'] / tp['dask_1']['docs_per_s']:.2f}x; "
        f"nlp.pipe 2 processes vs 1: {tp['ours_2']['docs_per_s'] / base:.2f}x; "
        f"ours vs spaCy, both n_process=2: "
        f"{tp['ours_2']['docs_per_s'] / tp['spacy_2']['docs_per_s']:.2f}x; "
        f"Dask 2 workers vs spaCy n_process=2: "
        f"{tp['dask_2']['docs_per_s'] / tp['spacy_2']['docs_per_s']:.2f}x",
        "",
        "| per worker | spaCy | ours | ours / spaCy |",
        "|---|---|---|---|",
        f"| start-up: spacy.load of the pipeline (KB ready) | {su['spacy']['load_s']:.2f} s | "
        f"{su['ours']['load_s']:.2f} s | {su['ours']['load_s'] / su['spacy']['load_s']:.3f}x |",
        f"| start-up incl. imports | {su['spacy']['load_s'] + su['spacy']['import_s']:.2f} s | "
        f"{su['ours']['load_s'] + su['ours']['import_s']:.2f} s | |",
    ]
    linker = results.get("startup_linker")
    if linker:
        lines.append(
            f"| start-up without the entity_ruler (linker + KB) | "
            f"{linker['spacy']['load_s']:.2f} s | {linker['ours']['load_s']:.2f} s | "
            f"{linker['ours']['load_s'] / linker['spacy']['load_s']:.3f}x |")
    for field, label in (("rss", "RSS"), ("pss", "PSS"), ("uss", "USS (private)"),
                         ("anonymous", "anonymous (not file-backed)")):
        spacy_values = [m[f"{field}_increase"] for m in mem["spacy"]]
        ours_values = [m[f"{field}_increase"] for m in mem["ours"]]
        ratio = max(ours_values) / max(spacy_values)
        lines.append(
            f"| KB {label} increase, each of 2 processes, after 100k lookups | "
            f"{' / '.join(mib(v) for v in spacy_values)} | "
            f"{' / '.join(mib(v) for v in ours_values)} | {ratio:.4f}x |")
    for m in tp["dask_2"]["worker_memory"]:
        lines.append(f"| Dask worker process after linking (whole process) | | "
                     f"RSS {mib(m['rss'])}, PSS {mib(m['pss'])}, USS {mib(m['uss'])}, "
                     f"anonymous {mib(m['anonymous'])} | |")
    ours_uss = max(m["uss_increase"] for m in mem["ours"])
    spacy_rss = min(m["rss_increase"] for m in mem["spacy"])
    scale = tp["dask_2"]["docs_per_s"] / tp["dask_1"]["docs_per_s"]
    lines += [
        "",
        "Targets:",
        f"- extra worker's private KB memory <= 5% of spaCy's per-process KB memory: "
        f"{ours_uss / spacy_rss:.2%} -> {'met' if ours_uss <= 0.05 * spacy_rss else 'NOT met'}",
        f"- worker start-up <= 1 s: {su['ours']['load_s']:.2f} s -> "
        f"{'met' if su['ours']['load_s'] <= 1.0 else 'NOT met'} "
        f"(spaCy {su['spacy']['load_s']:.1f} s"
        + (f"; linker + KB alone {linker['ours']['load_s']:.2f} s)" if linker else ")"),
        f"- 2 local workers >= 1.7x one worker: {scale:.2f}x -> "
        f"{'met' if scale >= 1.7 else 'NOT met'}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=8, help="corpus files (partitions)")
    parser.add_argument("--mentioned", type=int, default=2000,
                        help="distinct aliases mentioned in the corpus")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="100k entities, 3,000 docs")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--report", type=Path, default=None, help="print a saved result")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        spec = json.loads(args.worker)
        print(json.dumps(WORKERS[spec["mode"]](spec)), flush=True)
        return
    if args.report is not None:
        print(report(json.loads(args.report.read_text(encoding="utf8"))))
        return
    if args.quick:
        args.entities, args.docs = 100_000, 3_000
    results = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "entities": args.entities, "docs": args.docs, "files": args.files,
        "batch_size": args.batch_size, "load_before": load_average(),
        "command": " ".join(sys.argv),
    }
    with tempfile.TemporaryDirectory(prefix="bench_corpus.") as tmp:
        workdir = Path(tmp)
        common = {"workdir": tmp, "entities": args.entities, "batch_size": args.batch_size}
        print("preparing KBs, pipelines and corpus ...", flush=True)
        results["prepare"] = run_worker({**common, "mode": "prepare", "docs": args.docs,
                                         "mentioned": args.mentioned, "files": args.files})
        print(f"  {results['prepare']}", flush=True)
        pipelines = {"ours": str(workdir / "ours_pipeline"),
                     "spacy": str(workdir / "spacy_pipeline")}
        results["startup"] = {kind: run_worker({"mode": "startup", "pipeline": path})
                              for kind, path in pipelines.items()}
        # The same without the entity_ruler, whose thousands of patterns are
        # re-tokenized at load whatever the linker: the linker's own start-up.
        results["startup_linker"] = {
            kind: run_worker({"mode": "startup", "pipeline": path, "exclude": ["entity_ruler"]})
            for kind, path in pipelines.items()
        }
        print(f"start-up: {results['startup']}", flush=True)
        results["kb_memory"] = {
            kind: run_kb_memory_pair({**common, "mode": "kbmem", "kind": kind,
                                      "kb": str(workdir / f"{kind}_kb")})
            for kind in ("ours", "spacy")
        }
        print("KB memory measured", flush=True)
        texts = str(workdir / "texts.json")
        throughput = {}
        for kind in ("ours", "spacy"):
            for n_process in (1, 2):
                throughput[f"{kind}_{n_process}"] = run_worker(
                    {**common, "mode": "pipe", "pipeline": pipelines[kind], "texts": texts,
                     "n_process": n_process})
                print(f"{kind} n_process={n_process}: "
                      f"{throughput[f'{kind}_{n_process}']['docs_per_s']:,.0f} docs/s",
                      flush=True)
        for n_workers in (1, 2):
            throughput[f"dask_{n_workers}"] = run_worker(
                {**common, "mode": "dask", "pipeline": pipelines["ours"],
                 "n_workers": n_workers})
            print(f"dask {n_workers} workers: "
                  f"{throughput[f'dask_{n_workers}']['docs_per_s']:,.0f} docs/s", flush=True)
        results["throughput"] = throughput
    results["load_after"] = load_average()
    print()
    print(report(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")


if __name__ == "__main__":
    main()

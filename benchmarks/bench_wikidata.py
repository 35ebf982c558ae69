"""Benchmark ``kb build --wikidata --wikipedia`` on generated dumps.

Writes a Wikidata JSON dump (.json.gz) and a Wikipedia pages-articles dump
(.xml.bz2) with N entities having an enwiki article (and ``--skipped`` items
without one per entity, skipped by the byte filter: 1 by default, ~13 in a
real dump, where ~7% of the items have an English article), realistic shapes (labels in several
languages, claims, sitelinks) and Zipfian link counts (each article has
~``--links`` links whose targets follow a Zipf law over the entities, shown
by the title or one of the entity's aliases). Then it times the build and
reports throughput against the decompressors' own speed on this machine and
the peak memory (RSS of this process and all its children).

    python -m benchmarks.bench_wikidata --sizes 100000 1000000

``--kb-stage WORK_DIR`` reruns only stage 4 (``kb``) from a work folder whose
stages 1-3 are done (e.g. ``--folder F`` leaves ``F/work-N``) and reports its
peak RSS over the process's RSS before it (imports excluded):

    python -m benchmarks.bench_wikidata --kb-stage F/work-100000

``--wikidata-stage`` times only stage 1 (``wikidata``, the JSON dump) on the
generated dump of each size, ``--repeats`` times, each run right after a
``gzip -dc`` of the same file, and reports the median ratio, the CPU seconds
of both and the load average:

    python -m benchmarks.bench_wikidata --sizes 100000 --folder F --wikidata-stage
"""

import argparse
import bz2
import gzip
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy
import psutil

from entity_linker.wikidata import WikiKBConfig, build_wikidata_kb
from entity_linker.wikidata.build import STAGES

LANGS = ("en", "fr", "de", "es", "it", "nl", "pl", "ru")


def _item(qid, title, n_sitelinks, classes, located, rng):
    labels = {lang: {"language": lang, "value": f"{title} {lang}" if lang != "en" else title}
              for lang in LANGS}
    descriptions = {lang: {"language": lang, "value": f"description of {title} in {lang}"}
                    for lang in LANGS[:4]}
    aliases = {"en": [{"language": "en", "value": f"{title} alias {k}"}
                      for k in range(rng.randint(0, 3))]}

    def claim(prop, target):
        return {"mainsnak": {"snaktype": "value", "property": prop, "datatype": "wikibase-item",
                             "datavalue": {"value": {"entity-type": "item",
                                                     "numeric-id": int(target[1:]),
                                                     "id": target},
                                           "type": "wikibase-entityid"}},
                "type": "statement", "id": f"{qid}$abc", "rank": "normal"}

    claims = {"P31": [claim("P31", c) for c in classes]}
    if located:
        claims["P131"] = [claim("P131", located)]
    claims["P1082"] = [{"mainsnak": {"snaktype": "value", "property": "P1082",
                                     "datavalue": {"value": {"amount": "+123456", "unit": "1"},
                                                   "type": "quantity"}},
                        "type": "statement", "rank": "normal"}]
    sitelinks = {}
    if title is not None:
        sitelinks["enwiki"] = {"site": "enwiki", "title": title, "badges": []}
    for lang in LANGS[1:n_sitelinks]:
        sitelinks[f"{lang}wiki"] = {"site": f"{lang}wiki", "title": title or qid, "badges": []}
    return {"type": "item", "id": qid, "labels": labels, "descriptions": descriptions,
            "aliases": aliases, "claims": claims, "sitelinks": sitelinks}


def write_dumps(folder: Path, n: int, links: int, seed: int = 0, skipped: int = 1):
    """The two generated dumps of ``n`` entities in ``folder``; dumps of the same
    parameters already there (a marker is written after both) are reused, since
    generating them takes ~15 min at 1M entities."""
    wd = folder / f"wikidata-{n}.json.gz"
    wp = folder / f"wikipedia-{n}.xml.bz2"
    marker = folder / f"dumps-{n}.json"
    params = {"n": n, "links": links, "seed": seed, "version": 1}
    if skipped != 1:  # (the markers of the dumps with 1 have no such key)
        params["skipped"] = skipped
    if marker.exists() and wd.exists() and wp.exists():
        try:
            if json.loads(marker.read_text()) == params:
                return wd, wp
        except ValueError:
            pass
    marker.unlink(missing_ok=True)
    rng = random.Random(seed)
    titles = [f"Entity {i} ({rng.choice(('city', 'person', 'band', 'film'))})"
              for i in range(n)]
    with gzip.open(wd, "wt", encoding="utf8", compresslevel=6) as out:
        out.write("[\n")
        per_entity = 1 + skipped
        for i in range(per_entity * n):
            if i % per_entity == 0:
                k = i // per_entity
                entity = _item(f"Q{k + 1}", titles[k], rng.randint(1, 8),
                               [f"Q{rng.randint(1, 50)}"], f"Q{rng.randint(1, n)}", rng)
            else:
                entity = _item(f"Q{n + i + 1}", None, rng.randint(0, 3), ["Q13442814"],
                               None, rng)
            out.write(json.dumps(entity, ensure_ascii=False))
            out.write(",\n" if i < per_entity * n - 1 else "\n")
        out.write("]\n")
    # Zipf over entity ranks (a = 1.1), clipped to n
    np_rng = numpy.random.default_rng(seed)
    # prose of random words (a 20k-word vocabulary), so the dump compresses about as
    # well as real wikitext does with bzip2 (~4x)
    vocab = numpy.array(["".join(rng.choice("abcdefghijklmnopqrstuvwxyz")
                                 for _ in range(rng.randint(2, 10))) for _ in range(20000)])
    with bz2.open(wp, "wt", encoding="utf8", compresslevel=9) as out:
        out.write('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/">\n')
        for k in range(n):
            targets = numpy.minimum(np_rng.zipf(1.1, links), n) - 1
            parts = []
            for t in targets.tolist():
                roll = rng.random()
                if roll < 0.6:
                    parts.append(f"[[{titles[t]}]]")
                elif roll < 0.9:
                    parts.append(f"[[{titles[t]}|{titles[t].split(' (')[0]}]]")
                else:
                    parts.append(f"[[{titles[t]}|{titles[t]} alias 0]]")
                parts.append(" " + " ".join(vocab[np_rng.integers(0, len(vocab), 12)]) + ". ")
            parts.append("{{cite web|title=Source|url=http://example.org}}")
            text = "".join(parts).replace("&", "&amp;").replace("<", "&lt;")
            out.write(f"  <page>\n    <title>{titles[k]}</title>\n    <ns>0</ns>\n"
                      f"    <id>{k + 1}</id>\n    <revision>\n      <text xml:space=\"preserve\">"
                      f"{text}</text>\n    </revision>\n  </page>\n")
            if k % 10 == 0:
                out.write(f"  <page>\n    <title>Redirect {k}</title>\n    <ns>0</ns>\n"
                          f"    <redirect title=\"{titles[k]}\" />\n    <revision>\n"
                          f"      <text>#REDIRECT [[{titles[k]}]]</text>\n    </revision>\n"
                          "  </page>\n")
        out.write("</mediawiki>\n")
    marker.write_text(json.dumps(params))
    return wd, wp


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its waited-for children."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def decompress_seconds(path: Path) -> float:
    return _decompress(path)[0]


def _decompress(path: Path):
    """(wall seconds, CPU seconds) of ``gzip -dc`` / ``bzip2 -dc`` of ``path``."""
    tool = "gzip" if path.suffix == ".gz" else "bzip2"
    cpu = _cpu_seconds()
    started = time.perf_counter()
    subprocess.run(f"{tool} -dc {path} | wc -c > /dev/null", shell=True, check=True)
    return time.perf_counter() - started, _cpu_seconds() - cpu


class PeakRSS:
    """Sample the RSS of this process and all its children (the pool workers);
    with ``work``, also the peak of each build stage (the stage after the last
    one whose ``<stage>.done.json`` marker is in ``work``)."""

    def __init__(self, interval: float = 0.05, work: Path = None) -> None:
        self.peak = 0
        self.stage_peaks = {}
        self.work = work
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            try:
                procs = [me] + me.children(recursive=True)
                for proc in procs:
                    try:
                        total += proc.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            self.peak = max(self.peak, total)
            if self.work is not None:
                stage = next((s for s in STAGES
                              if not (self.work / f"{s}.done.json").exists()), "write")
                self.stage_peaks[stage] = max(self.stage_peaks.get(stage, 0), total)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run(n: int, links: int, folder: Path, memory_limit: int, workers: int,
        skipped: int = 1) -> dict:
    started = time.perf_counter()
    wd, wp = write_dumps(folder, n, links, skipped=skipped)
    generate = time.perf_counter() - started
    wd_mb, wp_mb = wd.stat().st_size / 1e6, wp.stat().st_size / 1e6
    gz_s, bz_s = decompress_seconds(wd), decompress_seconds(wp)
    out = folder / f"kb-{n}"
    work = folder / f"work-{n}"
    shutil.rmtree(work, ignore_errors=True)  # a fresh build, every stage timed
    shutil.rmtree(out, ignore_errors=True)
    load_before = os.getloadavg()
    build_start = time.time()
    cpu_start = _cpu_seconds()
    with PeakRSS(work=work) as rss:
        report = build_wikidata_kb(WikiKBConfig(
            wikidata=wd, wikipedia=wp, output=out, work_dir=work,
            memory_limit=memory_limit, workers=workers, progress=False))
    cpu = _cpu_seconds() - cpu_start
    times = {s: json.loads((folder / f"work-{n}" / f"{s}.done.json").read_text())
             for s in ("wikidata", "wikipedia", "aliases", "kb")}
    stage_s = {}
    previous = build_start
    for stage in ("wikidata", "wikipedia", "aliases", "kb"):
        stamp = time.mktime(time.strptime(times[stage]["finished"], "%Y-%m-%dT%H:%M:%S"))
        stage_s[stage] = round(max(stamp - previous, 0.0))
        previous = stamp
    kb_size = (out / "kb.bin").stat().st_size
    row = {
        "entities": report["kb"]["entities"], "aliases": report["kb"]["aliases"],
        "candidates": report["kb"]["candidates"], "links": report["wikipedia"]["links"],
        "wikidata_gz_mb": round(wd_mb, 1), "wikipedia_bz2_mb": round(wp_mb, 1),
        "gzip_dc_mb_s": round(wd_mb / gz_s, 1), "bzip2_dc_mb_s": round(wp_mb / bz_s, 1),
        "seconds": round(report["seconds"], 1),
        "stage_seconds_approx": stage_s,
        "wikipedia_stage_mb_s": round(wp_mb / max(stage_s["wikipedia"], 1), 2),
        "wikipedia_vs_bzip2": round(bz_s / max(stage_s["wikipedia"], 1), 2),
        "wikidata_vs_gzip": round(gz_s / max(stage_s["wikidata"], 1), 2),
        "peak_rss_mb": round(rss.peak / 1e6), "kb_mb": round(kb_size / 1e6, 1),
        "stage_peak_rss_mb": {s: round(v / 1e6) for s, v in rss.stage_peaks.items()},
        "cpu_seconds": round(cpu, 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "spills": report["wikipedia"]["spills"], "generate_s": round(generate, 1),
        "cores": os.cpu_count(),
    }
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def wikidata_stage(n: int, folder: Path, workers: int, repeats: int) -> dict:
    """Stage 1 alone on the generated dump of ``n`` entities, each run timed
    right after a ``gzip -dc`` of the same file (wall and CPU seconds)."""
    from entity_linker.wikidata.build import _stage_wikidata
    from entity_linker.wikidata.entities import decoder_name

    wd = folder / f"wikidata-{n}.json.gz"
    if not wd.exists():
        raise SystemExit(f"No {wd}: generate it first (--generate-only).")
    runs = []
    for _ in range(repeats):
        work = Path(tempfile.mkdtemp(prefix="bench_wd_stage.", dir=folder))
        try:
            gz_s, gz_cpu = _decompress(wd)
            load = os.getloadavg()[0]
            cpu = _cpu_seconds()
            started = time.perf_counter()
            stats = _stage_wikidata(WikiKBConfig(wikidata=wd, output=work / "kb", work_dir=work,
                                                 workers=workers, progress=False), work)
            seconds = time.perf_counter() - started
            runs.append({"gzip_dc_s": round(gz_s, 2), "gzip_dc_cpu_s": round(gz_cpu, 2),
                         "stage_s": round(seconds, 2),
                         "stage_cpu_s": round(_cpu_seconds() - cpu, 2),
                         "vs_gzip": round(gz_s / seconds, 2),
                         "load_1min": [round(load, 2), round(os.getloadavg()[0], 2)]})
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    ratios = sorted(r["vs_gzip"] for r in runs)
    return {"entities": n, "kept": stats["kept"], "lines": stats["lines"],
            "wikidata_gz_mb": round(wd.stat().st_size / 1e6, 1), "decoder": decoder_name(),
            "workers": workers, "median_vs_gzip": ratios[len(ratios) // 2], "runs": runs}


def kb_stage_peak(work: Path) -> dict:
    """Peak RSS of stage 4 alone (this process only: the stage forks no worker)."""
    import resource

    from spacy.vocab import Vocab  # noqa: F401  (imports before the baseline)

    import entity_linker.encoders  # noqa: F401
    import entity_linker.kb_sources  # noqa: F401
    from entity_linker.wikidata.kb_stage import stage_kb

    out = Path(tempfile.mkdtemp(prefix="bench_kb_stage.")) / "kb"
    base = psutil.Process().memory_info().rss
    started = time.perf_counter()
    try:
        stats = stage_kb(WikiKBConfig(wikidata=work, output=out, work_dir=work,
                                      progress=False), work, {"kind": "wikidata"})
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        kb_size = (out / "kb.bin").stat().st_size
        digest = hashlib.sha256()  # to check that a change leaves the KB as it was
        with open(out / "kb.bin", "rb") as file:
            for block in iter(lambda: file.read(1 << 24), b""):
                digest.update(block)
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
    return {"entities": stats["entities"], "aliases": stats["aliases"],
            "seconds": round(seconds, 1),
            "base_rss_mb": round(base / 1e6), "peak_rss_mb": round(peak / 1e6),
            "stage_peak_mb": round((peak - base) / 1e6), "kb_mb": round(kb_size / 1e6, 1),
            "kb_sha256": digest.hexdigest(), "load_1min": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--links", type=int, default=25, help="links per article")
    parser.add_argument("--skipped", type=int, default=1,
                        help="Wikidata items without an English article per entity (a real "
                             "dump has ~13; use another --folder for each value)")
    parser.add_argument("--memory-limit", type=int, default=2 << 30)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=None, help="JSON results file")
    parser.add_argument("--plain", action="store_true",
                        help="decompress with the standard library even when indexed_bzip2 "
                             "or rapidgzip is installed")
    parser.add_argument("--generate-only", action="store_true",
                        help="only write the dumps into --folder (reused by later runs)")
    parser.add_argument("--wikidata-stage", action="store_true",
                        help="only time stage 1 on the generated dumps of --sizes in --folder")
    parser.add_argument("--repeats", type=int, default=3, help="runs of --wikidata-stage")
    parser.add_argument("--kb-stage", type=Path, default=None, metavar="WORK_DIR",
                        help="only rerun stage 4 from this work folder; report its peak RSS")
    args = parser.parse_args()
    if args.plain:  # their imports then fail, and dumps.py falls back to bz2/gzip
        sys.modules["indexed_bzip2"] = None
        sys.modules["rapidgzip"] = None
    if args.kb_stage is not None:
        print(json.dumps(kb_stage_peak(args.kb_stage)))
        return
    if args.wikidata_stage:
        if args.folder is None:
            raise SystemExit("--wikidata-stage needs --folder (with the generated dumps).")
        rows = [wikidata_stage(n, args.folder, args.workers, args.repeats) for n in args.sizes]
        if args.output:
            args.output.write_text(json.dumps(rows, indent=2) + "\n")
        print(json.dumps(rows, indent=2))
        return
    folder = args.folder or Path(tempfile.mkdtemp(prefix="bench_wikidata."))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    if args.generate_only:
        for n in args.sizes:
            started = time.perf_counter()
            write_dumps(folder, n, args.links, skipped=args.skipped)
            print(json.dumps({"entities": n, "generate_s": round(time.perf_counter() - started)}))
        return
    try:
        for n in args.sizes:
            rows.append(run(n, args.links, folder, args.memory_limit, args.workers,
                            args.skipped))
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)
    if args.output:
        args.output.write_text(json.dumps(rows, indent=2) + "\n")
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

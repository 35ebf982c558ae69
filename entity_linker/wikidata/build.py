"""Build a KB from a Wikidata JSON dump and, optionally, a Wikipedia XML dump.

Stages, each leaving its results in the work folder with a ``<stage>.done.json``
marker that records its inputs (dump path, size and mtime, options, the
markers of the stages it reads), so a rerun skips every finished stage whose
inputs did not change and a crash loses only the stage it was in:

1. ``wikidata``: stream the Wikidata dump (parallel parse) and keep the items
   that pass the filter as compact records in ``entities.jsonl``.
2. ``wikipedia`` (with a Wikipedia dump): stream the pages; (anchor, target
   title) link counts go to sorted run files (``runs/links-*.tsv``, spilled
   when the pair table passes the memory budget), redirects to
   ``redirects.tsv``, disambiguation page titles to ``disambiguations.txt``.
3. ``aliases``: add (label or alias, entity) and (redirect, target) pairs to
   runs of their own, k-way merge all runs, resolve link targets to entities
   (redirects followed, titles mapped through the sitelinks), prune
   (``min_count``, ``top_k``) and normalise counts to priors:
   ``aliases.txt`` + ``aliases.npz``; ``titles.tsv`` maps titles to QIDs.
4. ``kb``: entity vectors (encoder over name + description), names,
   relations (P31, P279, P17, P131 between entities of the KB), the alias
   index, and the KB folder (kb.bin, meta.json, wikipedia_titles.tsv); in
   ``kb_stage``, which streams the entities into arrays and blobs (no Python
   object per entity or alias outside the KB itself).

Memory is bounded by the output KB (entity and alias tables, title hashes)
plus ``memory_limit`` for the pair table, not by the dumps.
"""

import hashlib
import json
import os
import shutil
import sys
import time
from array import array
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy

from . import entities as wd_entities
from . import wikipedia as wp
from .dumps import BadLines, DumpError, parallel_map_chunks, progress_bar
from .pairs import PairSorter, clean_text, merge_runs

TITLES_FILE = "wikipedia_titles.tsv"
STAGES = ("wikidata", "wikipedia", "aliases", "kb")
# Pairs resolved at once in the merge.
_BLOCK = 1 << 16
_ENCODE_BATCH = 8192


@dataclass
class WikiKBConfig:
    """Options of ``build_wikidata_kb`` (the ``kb build --wikidata`` options)."""

    wikidata: Path
    output: Path
    wikipedia: Optional[Path] = None
    work_dir: Optional[Path] = None
    lang: str = "en"
    all_items: bool = False
    min_sitelinks: int = 0
    include_classes: Sequence[str] = ()
    exclude_classes: Sequence[str] = ()
    min_count: int = 1
    top_k: Optional[int] = None
    memory_limit: int = 2 << 30
    workers: int = 0
    strict: bool = False
    progress: bool = True
    encoder: str = "hashing"
    encoder_options: Dict[str, Any] = field(default_factory=dict)
    vector_length: Optional[int] = None
    index: bool = True
    chunk_bytes: int = 4 << 20

    def resolved_work_dir(self) -> Path:
        if self.work_dir is not None:
            return Path(self.work_dir)
        output = Path(self.output)
        return output.parent / f".{output.name}.work"


def title_hash(title: str) -> int:
    """A 64-bit hash of a title (titles are kept as hashes, not strings)."""
    return int.from_bytes(hashlib.blake2b(title.encode("utf8"), digest_size=8).digest(),
                          "little", signed=True)


class IntMap:
    """A read-only int64 -> int64 map on two sorted arrays (vectorised lookups)."""

    def __init__(self, keys, values) -> None:
        keys = numpy.asarray(keys, dtype=numpy.int64)
        values = numpy.asarray(values, dtype=numpy.int64)
        order = numpy.argsort(keys, kind="stable")
        self.keys, self.values = keys[order], values[order]

    def lookup(self, keys) -> numpy.ndarray:
        keys = numpy.asarray(keys, dtype=numpy.int64)
        if not len(self.keys):
            return numpy.full(len(keys), -1, dtype=numpy.int64)
        pos = numpy.searchsorted(self.keys, keys)
        pos[pos >= len(self.keys)] = 0
        found = self.keys[pos] == keys
        return numpy.where(found, self.values[pos], -1)


def _file_key(path: Optional[Path]) -> Optional[Dict[str, Any]]:
    if path is None:
        return None
    stat = Path(path).stat()
    return {"path": str(Path(path).resolve()), "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns}


class Stages:
    """``<stage>.done.json`` markers: a stage is done when its marker's key matches."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def done(self, stage: str, key: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        path = self.folder / f"{stage}.done.json"
        if not path.exists():
            return None
        try:
            marker = json.loads(path.read_text(encoding="utf8"))
        except ValueError:
            return None
        return marker if marker.get("key") == key else None

    def invalidate(self, stage: str) -> None:
        (self.folder / f"{stage}.done.json").unlink(missing_ok=True)

    def finish(self, stage: str, key: Dict[str, Any], stats: Dict[str, Any]) -> Dict[str, Any]:
        marker = {"key": key, "stats": stats, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        path = self.folder / f"{stage}.done.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(marker, indent=1, ensure_ascii=False), encoding="utf8")
        os.replace(tmp, path)
        return marker


def _say(config: WikiKBConfig, text: str) -> None:
    if config.progress:
        print(text, file=sys.stderr, flush=True)


class _Rates:
    """Update a tqdm bar with compressed bytes and items/links per second."""

    def __init__(self, bar, names: Sequence[str]) -> None:
        self.bar = bar
        self.names = names
        self.counts = [0] * len(names)
        self.start = time.perf_counter()
        self.position = 0

    def update(self, position: int, *counts: int) -> None:
        for i, count in enumerate(counts):
            self.counts[i] += count
        if self.bar is None:
            return
        self.bar.update(max(0, position - self.position))
        self.position = max(position, self.position)
        seconds = max(time.perf_counter() - self.start, 1e-6)
        self.bar.set_postfix_str(", ".join(
            f"{name} {n:,} ({n / seconds:,.0f}/s)" for name, n in zip(self.names, self.counts)),
            refresh=False)

    def close(self, size: int) -> None:
        if self.bar is not None:
            self.bar.update(max(0, size - self.position))
            self.bar.close()


# ------------------------------------------------------------------ stage 1


def _stage_wikidata(config: WikiKBConfig, work: Path) -> Dict[str, Any]:
    flt = wd_entities.EntityFilter(config.lang, config.all_items, config.min_sitelinks,
                                   frozenset(config.include_classes),
                                   frozenset(config.exclude_classes))
    path = Path(config.wikidata)
    out_path = work / "entities.jsonl"
    tmp = out_path.with_suffix(".tmp")
    bad = BadLines()
    size = path.stat().st_size
    rates = _Rates(progress_bar(path, size, "Wikidata", config.progress), ("entities", "kept"))
    try:
        with open(tmp, "wb") as out:
            for (data, lines, n_bad, examples), reader in parallel_map_chunks(
                    path, wd_entities.parse_chunk, workers=config.workers,
                    chunk_bytes=config.chunk_bytes, initializer=wd_entities.set_filter,
                    initargs=(flt,), on_first=wd_entities.check_first_chunk(path)):
                if n_bad:
                    bad.add(n_bad, [f"{path}: {e}" for e in examples])
                    if config.strict:
                        raise DumpError(f"{bad.examples[0]} (--strict: stopped at the first "
                                        "bad line).")
                out.write(data)
                rates.update(reader.compressed_position, lines, data.count(b"\n"))
    finally:
        rates.close(size)
    if rates.counts[0] == 0:
        tmp.unlink(missing_ok=True)
        raise DumpError(f"{path} holds no Wikidata entity: is it a Wikidata JSON dump?")
    if bad.count and bad.count == rates.counts[0]:
        tmp.unlink(missing_ok=True)
        raise DumpError(f"{path} is not a Wikidata JSON dump: none of its "
                        f"{bad.count:,} lines is an entity ({bad.examples[0]}).")
    os.replace(tmp, out_path)
    return {"lines": rates.counts[0], "kept": rates.counts[1], "bad_lines": bad.to_json()}


# ------------------------------------------------------------------ stage 2


def _stage_wikipedia(config: WikiKBConfig, work: Path) -> Dict[str, Any]:
    path = Path(config.wikipedia)
    runs_dir = work / "runs"
    for old in runs_dir.glob("links-*") if runs_dir.exists() else ():
        old.unlink()
    sorter = PairSorter(runs_dir, "links", config.memory_limit)
    size = path.stat().st_size
    rates = _Rates(progress_bar(path, size, "Wikipedia", config.progress),
                   ("articles", "links"))
    n_redirects = n_disambiguations = 0
    try:
        with open(work / "redirects.tmp", "w", encoding="utf8") as redirects, \
                open(work / "disambiguations.tmp", "w", encoding="utf8") as disambiguations:
            for result, reader in parallel_map_chunks(
                    path, wp.parse_chunk, workers=config.workers, boundary=wp.PAGE_END,
                    chunk_bytes=config.chunk_bytes, on_first=wp.check_first_chunk(path)):
                sorter.add_counts(result.links)
                for source, target in result.redirects:
                    redirects.write(f"{clean_text(source)}\t{clean_text(target)}\n")
                n_redirects += len(result.redirects)
                for title in result.disambiguations:
                    disambiguations.write(clean_text(title) + "\n")
                n_disambiguations += len(result.disambiguations)
                rates.update(reader.compressed_position, result.articles, result.n_links)
    finally:
        rates.close(size)
    if rates.counts[0] == 0 and n_redirects == 0:
        raise wp.no_article_error(path)
    runs = sorter.finish()
    os.replace(work / "redirects.tmp", work / "redirects.tsv")
    os.replace(work / "disambiguations.tmp", work / "disambiguations.txt")
    return {"articles": rates.counts[0], "links": rates.counts[1], "redirects": n_redirects,
            "disambiguations": n_disambiguations, "runs": [p.name for p in runs],
            "spills": sorter.spills}


# ------------------------------------------------------------------ stage 3


def iter_entity_records(work: Path) -> Iterator[Dict[str, Any]]:
    with open(work / "entities.jsonl", encoding="utf8") as file:
        for line in file:
            if line.strip():
                yield json.loads(line)


def _qnum(qid: str) -> int:
    return int(qid[1:]) if qid[1:].isdigit() else -1


class EntityIndex:
    """Rows of the kept entities: by QID number and by Wikipedia title hash."""

    def __init__(self, work: Path, disambiguations: set) -> None:
        keep = array("b")
        qnums = array("q")
        title_keys = array("q")
        title_rows = array("q")
        sitelinks = array("q")
        row = 0
        for record in iter_entity_records(work):
            title = record.get("title") or ""
            key = title_hash(title) if title else None
            if key is not None and key in disambiguations:
                keep.append(0)
                continue
            keep.append(1)
            qnums.append(_qnum(record["id"]))
            sitelinks.append(record.get("sitelinks", 0))
            if key is not None:
                title_keys.append(key)
                title_rows.append(row)
            row += 1
        self.keep = numpy.frombuffer(keep, dtype=numpy.int8).astype(bool)
        self.n = row
        self.sitelinks = numpy.frombuffer(sitelinks, dtype=numpy.int64).copy()
        self.by_qid = IntMap(numpy.frombuffer(qnums, dtype=numpy.int64),
                             numpy.arange(row, dtype=numpy.int64))
        self.by_title = IntMap(numpy.frombuffer(title_keys, dtype=numpy.int64),
                               numpy.frombuffer(title_rows, dtype=numpy.int64))


def _load_redirects(work: Path) -> IntMap:
    sources, targets = array("q"), array("q")
    path = work / "redirects.tsv"
    if path.exists():
        with open(path, encoding="utf8") as file:
            for line in file:
                source, _, target = line.rstrip("\n").partition("\t")
                sources.append(title_hash(source))
                targets.append(title_hash(target))
    return IntMap(numpy.frombuffer(sources, dtype=numpy.int64),
                  numpy.frombuffer(targets, dtype=numpy.int64))


def _resolve(targets: List[str], index: EntityIndex, redirects: IntMap) -> numpy.ndarray:
    """Entity rows of "q:QID" / "t:Title" targets (-1: not in the KB)."""
    rows = numpy.full(len(targets), -1, dtype=numpy.int64)
    q_pos = [i for i, t in enumerate(targets) if t.startswith("q:")]
    t_pos = [i for i, t in enumerate(targets) if t.startswith("t:")]
    if q_pos:
        rows[q_pos] = index.by_qid.lookup([_qnum(targets[i][2:]) for i in q_pos])
    if t_pos:
        keys = numpy.array([title_hash(targets[i][2:]) for i in t_pos], dtype=numpy.int64)
        found = index.by_title.lookup(keys)
        for _ in range(3):  # follow redirects (and double redirects)
            missing = found < 0
            if not missing.any():
                break
            nxt = redirects.lookup(keys[missing])
            if not (nxt != -1).any():
                break
            keys = keys.copy()
            keys[missing] = numpy.where(nxt != -1, nxt, keys[missing])
            found[missing] = numpy.where(nxt != -1, index.by_title.lookup(keys[missing]), -1)
        rows[t_pos] = found
    return rows


def _label_runs(config: WikiKBConfig, work: Path, index: EntityIndex) -> List[Path]:
    runs_dir = work / "runs"
    for old in runs_dir.glob("labels-*") if runs_dir.exists() else ():
        old.unlink()
    sorter = PairSorter(runs_dir, "labels", config.memory_limit)
    for record, keep in zip(iter_entity_records(work), index.keep.tolist()):
        if not keep:
            continue
        target = "q:" + record["id"]
        for alias in record.get("aliases") or ():
            alias = clean_text(alias)
            if alias and len(alias) <= 200:
                sorter.add(alias, target, 0, 1)
    path = work / "redirects.tsv"
    if path.exists():
        with open(path, encoding="utf8") as file:
            for line in file:
                source, _, target = line.rstrip("\n").partition("\t")
                if source and target:
                    sorter.add(source, "t:" + target, 0, 1)
    return sorter.finish()


def _stage_aliases(config: WikiKBConfig, work: Path, wiki_stats: Optional[Dict[str, Any]]
                   ) -> Dict[str, Any]:
    disambiguations = set()
    path = work / "disambiguations.txt"
    if wiki_stats is not None and path.exists():
        with open(path, encoding="utf8") as file:
            disambiguations = {title_hash(line.rstrip("\n")) for line in file}
    _say(config, "Indexing entities")
    index = EntityIndex(work, disambiguations)
    redirects = _load_redirects(work) if wiki_stats is not None else IntMap([], [])
    runs = _label_runs(config, work, index)
    if wiki_stats is not None:
        runs += [work / "runs" / name for name in wiki_stats["runs"]]
    scratch = work / "merge"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    links_in = numpy.zeros(index.n, dtype=numpy.int64)
    offsets = array("q", [0])
    rows_out = array("q")
    priors_out = array("f")
    n_aliases = pruned = 0
    bar = None
    if config.progress:
        from tqdm import tqdm

        bar = tqdm(desc="Merging pairs", unit=" pairs", unit_scale=True, file=sys.stderr,
                   disable=None)
    with open(work / "aliases.tmp", "w", encoding="utf8", newline="\n") as alias_file:
        def flush_group(alias: str, cands: Dict[int, List[int]]) -> None:
            nonlocal n_aliases, pruned
            kept = []
            for row, (links, flag) in cands.items():
                if flag or links >= config.min_count:
                    kept.append((-(links if links > 0 else 1), row))
                else:
                    pruned += 1
            if not kept:
                return
            kept.sort()
            if config.top_k is not None and len(kept) > config.top_k:
                pruned += len(kept) - config.top_k
                kept = kept[:config.top_k]
            total = -sum(count for count, _ in kept)
            for count, row in kept:
                rows_out.append(row)
                priors_out.append(-count / total)
            offsets.append(len(rows_out))
            alias_file.write(alias + "\n")
            n_aliases += 1

        group_alias: Optional[str] = None
        group: Dict[int, List[int]] = {}
        block: List[Tuple[str, str, int, int]] = []

        def resolve_block() -> None:
            nonlocal group_alias, group
            rows = _resolve([t for _, t, _, _ in block], index, redirects)
            for (alias, target, links, flag), row in zip(block, rows.tolist()):
                if alias != group_alias:
                    if group_alias is not None:
                        flush_group(group_alias, group)
                    group_alias, group = alias, {}
                if row < 0:
                    continue
                if links and target.startswith("t:"):
                    links_in[row] += links
                cand = group.setdefault(row, [0, 0])
                cand[0] += links
                cand[1] |= flag
            if bar is not None:
                bar.update(len(block))
            block.clear()

        for item in merge_runs(runs, scratch):
            block.append(item)
            if len(block) >= _BLOCK:
                resolve_block()
        resolve_block()
        if group_alias is not None:
            flush_group(group_alias, group)
    if bar is not None:
        bar.close()
    shutil.rmtree(scratch, ignore_errors=True)
    freqs = links_in if wiki_stats is not None else index.sitelinks
    numpy.savez(work / "aliases.tmp.npz", offsets=numpy.frombuffer(offsets, dtype=numpy.int64),
                rows=numpy.frombuffer(rows_out, dtype=numpy.int64),
                priors=numpy.frombuffer(priors_out, dtype=numpy.float32),
                freqs=freqs.astype(numpy.float32), keep=index.keep)
    _write_titles(work, index, redirects, wiki_stats is not None)
    os.replace(work / "aliases.tmp.npz", work / "aliases.npz")
    os.replace(work / "aliases.tmp", work / "aliases.txt")
    return {"entities": index.n, "aliases": n_aliases, "candidates": len(rows_out),
            "pruned": pruned, "disambiguation_entities": int((~index.keep).sum())}


def _write_titles(work: Path, index: EntityIndex, redirects: IntMap, wiki: bool) -> None:
    """titles.tsv: Wikipedia title (and redirect) -> QID of the KB's entities."""
    ids = []
    with open(work / "titles.tmp", "w", encoding="utf8", newline="\n") as out:
        for record, keep in zip(iter_entity_records(work), index.keep.tolist()):
            if keep:
                ids.append(record["id"])
                if record.get("title"):
                    out.write(f"{clean_text(record['title'])}\t{record['id']}\n")
        path = work / "redirects.tsv"
        if wiki and path.exists():
            with open(path, encoding="utf8") as file:
                pairs = [line.rstrip("\n").split("\t") for line in file]
            for start in range(0, len(pairs), _BLOCK):
                part = pairs[start:start + _BLOCK]
                rows = _resolve(["t:" + p[1] for p in part], index, redirects)
                for (source, _), row in zip(part, rows.tolist()):
                    if row >= 0:
                        out.write(f"{source}\t{ids[row]}\n")
    os.replace(work / "titles.tmp", work / "titles.tsv")


# ------------------------------------------------------------------ driver


def build_wikidata_kb(config: WikiKBConfig) -> Dict[str, Any]:
    """Run the stages (skipping finished ones); RETURNS stats of every stage."""
    started = time.perf_counter()
    wikidata = Path(config.wikidata)
    for dump in (wikidata, config.wikipedia):
        if dump is not None and not Path(dump).is_file():
            raise DumpError(f"No dump at {dump}." if not Path(dump).exists()
                            else f"{dump} is not a file.")
    work = config.resolved_work_dir()
    stages = Stages(work)
    report: Dict[str, Any] = {"work_dir": str(work), "skipped_stages": []}

    key1 = {"dump": _file_key(wikidata), "lang": config.lang, "all_items": config.all_items,
            "min_sitelinks": config.min_sitelinks,
            "include": sorted(config.include_classes),
            "exclude": sorted(config.exclude_classes), "version": 1}
    marker = stages.done("wikidata", key1)
    if marker is None:
        stages.invalidate("wikidata")
        _say(config, f"Reading the Wikidata dump {wikidata}")
        marker = stages.finish("wikidata", key1, _stage_wikidata(config, work))
    else:
        report["skipped_stages"].append("wikidata")
    report["wikidata"] = marker["stats"]

    wiki_stats = None
    key2 = None
    if config.wikipedia is not None:
        key2 = {"dump": _file_key(Path(config.wikipedia)), "version": 1}
        marker = stages.done("wikipedia", key2)
        if marker is None:
            stages.invalidate("wikipedia")
            _say(config, f"Reading the Wikipedia dump {config.wikipedia}")
            marker = stages.finish("wikipedia", key2, _stage_wikipedia(config, work))
        else:
            report["skipped_stages"].append("wikipedia")
        wiki_stats = report["wikipedia"] = marker["stats"]

    key3 = {"wikidata": key1, "wikipedia": key2, "min_count": config.min_count,
            "top_k": config.top_k, "version": 1}
    marker = stages.done("aliases", key3)
    if marker is None:
        stages.invalidate("aliases")
        _say(config, "Merging aliases and links into priors")
        marker = stages.finish("aliases", key3, _stage_aliases(config, work, wiki_stats))
    else:
        report["skipped_stages"].append("aliases")
    report["aliases"] = marker["stats"]

    key4 = {"aliases": key3, "encoder": config.encoder, "options": config.encoder_options,
            "vector_length": config.vector_length, "index": config.index,
            "output": str(Path(config.output).resolve()), "version": 1}
    marker = stages.done("kb", key4)
    if marker is None or not (Path(config.output) / "kb.bin").exists():
        stages.invalidate("kb")
        meta = {"kind": "wikidata", "lang": config.lang,
                "sources": {"wikidata": str(wikidata),
                            "wikipedia": str(config.wikipedia) if config.wikipedia else None},
                "options": {k: v for k, v in asdict(config).items()
                            if k in ("all_items", "min_sitelinks", "include_classes",
                                     "exclude_classes", "min_count", "top_k")},
                "skipped_rows": report["wikidata"]["bad_lines"]["count"]}
        from .kb_stage import stage_kb  # here: kb_stage imports this module

        marker = stages.finish("kb", key4, stage_kb(config, work, meta))
    else:
        report["skipped_stages"].append("kb")
    report["kb"] = marker["stats"]
    report["seconds"] = time.perf_counter() - started
    return report

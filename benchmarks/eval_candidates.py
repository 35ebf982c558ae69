"""Candidate generators on the geo corpora: recall, speed, a scispaCy-style ANN, nel accuracy.

On LGL and TR-News (../shared/data/geo, every gold toponym with a geonameid)
and the GeoNames KB (``load_geonames_kb``, with its alias index), for each
candidate generator of entity_linker.candidates:

1. recall@1/5/10/all of the gold entity among the candidates (rank = position
   in the generator's order), average candidates per mention, and the ceiling
   (share of gold ids that are in the KB at all);
2. speed in mentions/s on one core (the process is pinned to one CPU): all gold
   mention texts in batches of 256 and in one batch, best of 3, as flat arrays
   (what ``nel`` reads) and as Candidate lists, against spaCy's exact lookup
   (``spacy.kb.InMemoryLookupKB.get_alias_candidates`` per mention) on a spaCy KB
   holding the same aliases and priors (built as benchmarks/bench_el.py does);
3. fuzzy search speed on the GeoNames KB (> 1M aliases), on the mentions as
   written and on copies with one seeded character edit each;
4. the scispaCy approach on the same aliases: char-3gram TF-IDF
   (TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3), min_df=10), as
   scispaCy) over the deduplicated normalised alias keys + nmslib HNSW
   (cosinesimil_sparse, as scispaCy), k=10 neighbours, candidates = the entities
   of those keys; recall, candidates, build time, query speed, index memory; and
   the exact (brute-force) TF-IDF top-10 to separate method from approximation;
5. linking accuracy of the shipped geo pipeline's ``nel`` (gold mention spans
   given, as entity_linker.evaluation.evaluate_linking does) with each generator
   swapped in at prediction time: exact-id accuracy and accuracy@161 km, split
   into mentions whose gold is among the exact-match candidates and the rest.
   ``--heldout NAME=PIPELINE`` adds pipelines trained on LGL only (recipes/train_geo.py
   --train lgl --test trnews --skip-ner), evaluated on TR-News.

    python -m benchmarks.eval_candidates --data ../shared/data/geo \
        --output benchmarks/results/candidates_results.json
    python -m benchmarks.eval_candidates --quick        # LGL only, 3 generators, no ANN, ~2 min
"""

import argparse
import gc
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy
import psutil
import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.vocab import Vocab

from entity_linker.candidates import (
    CandidateArrays,
    CandidateGenerator,
    CascadeCandidates,
    ExactCandidates,
    FuzzyCandidates,
    NormalizedCandidates,
    merge_stages,
)
from entity_linker.cli.link import load_pipeline
from entity_linker.evaluation import gold_mention_docs
from entity_linker.geonames import load_geonames_metadata
from entity_linker.kb import InMemoryLookupKB

from .bench_el import build_spacy_kb, spec_from_our_kb
from .datasets import geo as geo_data  # corpus -> docs with gold ids

RESULTS_DIR = Path(__file__).resolve().parent / "results"

NIL = "NIL"
CORPORA = ("lgl", "trnews")
CORPUS_NAMES = {"lgl": "LGL", "trnews": "TR-News"}
ACCURACY_KM = 161.0
RECALL_AT = (1, 5, 10)
SPEED_BATCH = 256
# The generators compared (name -> factory); --quick keeps QUICK_GENERATORS.
GENERATORS: Dict[str, Callable[[], CandidateGenerator]] = {
    "exact": ExactCandidates,
    "normalized": NormalizedCandidates,
    "fuzzy (min_score 0.7)": lambda: FuzzyCandidates(min_score=0.7),
    "cascade (defaults)": CascadeCandidates,
    "cascade (k=30, fuzzy_below=None)": lambda: CascadeCandidates(k=30, fuzzy_below=None),
}
QUICK_GENERATORS = ("exact", "normalized", "cascade (defaults)")
ANN_NAME = "tfidf + nmslib HNSW (scispaCy)"
EXPERIMENT_NAME = "cascade, non-exact priors x0.01 (experiment)"


class Corpus(NamedTuple):
    """The gold mentions (linked, in doc order) of one corpus."""

    name: str
    docs: List[Doc]  # gold docs: ents with kb ids ("NIL" = none)
    texts: List[str]  # mention texts of the linked gold ents
    gold_ids: List[str]
    gold_rows: numpy.ndarray  # int64, -1 where the gold id is not in the KB
    raw_mentions: int  # corpus toponyms with a geonameid (before span alignment)


# --------------------------------------------------------------------------- data


def load_corpus(nlp: Language, kb: InMemoryLookupKB, data: Path, name: str) -> Corpus:
    records = geo_data.load_corpus(data, name)
    docs = geo_data.to_docs(nlp, records)
    ents = [ent for doc in docs for ent in doc.ents if ent.kb_id_ not in ("", NIL)]
    gold_ids = [ent.kb_id_ for ent in ents]
    return Corpus(
        name=name, docs=docs, texts=[ent.text for ent in ents], gold_ids=gold_ids,
        gold_rows=numpy.asarray(kb.get_entity_rows(gold_ids), dtype=numpy.int64),
        raw_mentions=sum(1 for r in records for m in r["mentions"] if m.get("geonameid")),
    )


def ensure_index(kb: InMemoryLookupKB) -> Dict[str, object]:
    """Build the alias index in memory when the KB file has none (older caches)."""
    if kb.alias_index is not None:
        return {"source": "KB file (memory-mapped)"}
    start = time.perf_counter()
    kb.build_alias_index()
    seconds = time.perf_counter() - start
    print(f"The KB has no alias index: built it in memory in {seconds:.1f} s.")
    return {"source": "built in memory", "build_seconds": seconds}


# --------------------------------------------------------------------------- recall


def gold_ranks(arrays: CandidateArrays, gold_rows: numpy.ndarray) -> numpy.ndarray:
    """Position of each mention's gold entity among its candidates; -1 if absent."""
    offsets = numpy.asarray(arrays.offsets, dtype=numpy.int64)
    counts = numpy.diff(offsets)
    mention = numpy.repeat(numpy.arange(len(counts)), counts)
    position = numpy.arange(offsets[-1]) - numpy.repeat(offsets[:-1], counts)
    hit = numpy.asarray(arrays.entity_rows, dtype=numpy.int64) == gold_rows[mention]
    ranks = numpy.full(len(counts), numpy.iinfo(numpy.int64).max, dtype=numpy.int64)
    numpy.minimum.at(ranks, mention[hit], position[hit])
    ranks[ranks == numpy.iinfo(numpy.int64).max] = -1
    return ranks


def recall_row(ranks: numpy.ndarray, arrays: CandidateArrays) -> Dict[str, float]:
    n = len(ranks)
    found = ranks >= 0
    row = {f"recall@{k}": float(numpy.mean(found & (ranks < k))) for k in RECALL_AT}
    row["recall@all"] = float(numpy.mean(found))
    counts = numpy.diff(arrays.offsets)
    row["avg_candidates"] = float(counts.mean()) if n else 0.0
    row["max_candidates"] = int(counts.max()) if n else 0
    row["no_candidates"] = float(numpy.mean(counts == 0)) if n else 0.0
    return row


# --------------------------------------------------------------------------- speed


def best_rate(run: Callable[[], object], n: int, repeats: int) -> float:
    """Mentions/s of the fastest of ``repeats`` runs."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return n / best


def batched(texts: Sequence[str], size: Optional[int]) -> List[Sequence[str]]:
    if size is None:
        return [texts]
    return [texts[i : i + size] for i in range(0, len(texts), size)]


def speed_table(kb: InMemoryLookupKB, spacy_kb, generators: Dict[str, CandidateGenerator],
                texts: List[str], repeats: int) -> Dict[str, object]:
    """Mentions/s per generator (arrays and Candidate lists) and of spaCy's exact lookup."""
    n = len(texts)
    spacy_get = spacy_kb.get_alias_candidates
    ours_get = kb.get_alias_candidates
    table: Dict[str, object] = {
        "mentions": n,
        "spacy get_alias_candidates per mention": best_rate(
            lambda: [spacy_get(t) for t in texts], n, repeats),
        "ours get_alias_candidates per mention": best_rate(
            lambda: [ours_get(t) for t in texts], n, repeats),
    }
    for name, generator in generators.items():
        row: Dict[str, float] = {}
        for label, size in (("batch256", SPEED_BATCH), ("one_batch", None)):
            batches = batched(texts, size)
            row[f"arrays_{label}"] = best_rate(
                lambda g=generator, bs=batches: [g.arrays(kb, b) for b in bs], n, repeats)
            row[f"candidates_{label}"] = best_rate(
                lambda g=generator, bs=batches: [kb.candidates_from_arrays(*g.arrays(kb, b))
                                                 for b in bs],
                n, repeats)
        spacy_rate = table["spacy get_alias_candidates per mention"]
        row["ratio_vs_spacy_arrays_batch256"] = row["arrays_batch256"] / spacy_rate
        row["ratio_vs_spacy_candidates_batch256"] = row["candidates_batch256"] / spacy_rate
        table[name] = row
    if "exact" in generators:
        for name in generators:
            row = table[name]
            row["ratio_vs_exact_arrays_batch256"] = (
                row["arrays_batch256"] / table["exact"]["arrays_batch256"])
    return table


def one_edit(texts: Sequence[str], seed: int) -> List[str]:
    """Each text with one seeded character deleted, substituted or inserted
    (texts of 3 characters or fewer unchanged): misspelt mentions."""
    rng = numpy.random.default_rng(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = []
    for text in texts:
        if len(text) <= 3:
            out.append(text)
            continue
        i = int(rng.integers(1, len(text)))
        kind = int(rng.integers(3))
        char = letters[int(rng.integers(len(letters)))]
        if kind == 0:
            out.append(text[:i] + text[i + 1 :])
        elif kind == 1:
            out.append(text[:i] + char + text[i + 1 :])
        else:
            out.append(text[:i] + char + text[i:])
    return out


def fuzzy_speed(kb: InMemoryLookupKB, texts: List[str], repeats: int,
                seed: int) -> Dict[str, object]:
    """AliasIndex.search (min_score 0.7, 10 keys) and FuzzyCandidates mentions/s,
    on the mentions as written and with one character edit each."""
    index = kb.alias_index
    result: Dict[str, object] = {
        "kb_aliases": kb.get_size_aliases(), "kb_entities": kb.get_size_entities(),
        "normalised_keys": index.n_keys, "trigrams": index.n_grams,
    }
    generator = FuzzyCandidates(min_score=0.7)
    for label, queries in (("as_written", texts), ("one_edit", one_edit(texts, seed))):
        row: Dict[str, float] = {}
        for batch_label, size in (("batch256", SPEED_BATCH), ("one_batch", None)):
            batches = batched(queries, size)
            row[f"search_{batch_label}"] = best_rate(
                lambda bs=batches: [index.search(b, 0.7, 10) for b in bs], len(queries), repeats)
            row[f"generator_{batch_label}"] = best_rate(
                lambda bs=batches: [generator.arrays(kb, b) for b in bs], len(queries), repeats)
        result[label] = row
    return result


# --------------------------------------------------------------------------- scispaCy


class TfidfAnnCandidates(CandidateGenerator):
    """scispaCy's candidate generation over a KB's normalised alias keys:
    char-3gram TF-IDF + nmslib HNSW (cosine), k nearest keys per mention, each
    expanded to its entities (nearest key first, then by prior; one per entity)."""

    name = "tfidf_ann"

    def __init__(self, kb: InMemoryLookupKB, k: int = 10, m: int = 16,
                 ef_construction: int = 100, ef_search: int = 200, min_df: int = 10,
                 threads: int = 1, key_sample: Optional[int] = None) -> None:
        import nmslib
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.k = k
        index = kb.alias_index
        stats: Dict[str, float] = {}
        start = time.perf_counter()
        keys = sorted({index.normalize(alias) for alias in kb.get_alias_strings()} - {""})
        if key_sample is not None:  # smoke tests only: a seeded sample of the keys
            keys = [keys[i] for i in numpy.random.default_rng(0).choice(len(keys), key_sample)]
        stats["normalize_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3),
                                          min_df=min_df, dtype=numpy.float32)
        vectors = self.vectorizer.fit_transform(keys)
        stats["tfidf_fit_seconds"] = time.perf_counter() - start
        nonempty = numpy.flatnonzero(numpy.diff(vectors.indptr) > 0)  # nmslib rejects zeros
        self.vectors = vectors[nonempty]
        self.key_rows = numpy.asarray(index.key_rows([keys[i] for i in nonempty]),
                                      dtype=numpy.int64)
        stats.update(keys=len(keys), empty_keys=len(keys) - len(nonempty),
                     tfidf_features=len(self.vectorizer.vocabulary_),
                     tfidf_matrix_bytes=int(self.vectors.data.nbytes + self.vectors.indices.nbytes
                                            + self.vectors.indptr.nbytes))
        gc.collect()
        rss = psutil.Process().memory_info().rss
        pinned = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        if pinned is not None and threads > 1:  # the build may use more cores than queries
            os.sched_setaffinity(0, range(os.cpu_count() or 1))
        start = time.perf_counter()
        self.ann = nmslib.init(method="hnsw", space="cosinesimil_sparse",
                               data_type=nmslib.DataType.SPARSE_VECTOR)
        self.ann.addDataPointBatch(self.vectors)
        self.ann.createIndex({"M": m, "efConstruction": ef_construction,
                              "indexThreadQty": threads, "post": 0})
        stats["ann_build_seconds"] = time.perf_counter() - start
        if pinned is not None:
            os.sched_setaffinity(0, pinned)
        stats["ann_rss_bytes"] = psutil.Process().memory_info().rss - rss
        self.ann.setQueryTimeParams({"efSearch": ef_search})
        self.params = {"k": k, "M": m, "efConstruction": ef_construction,
                       "efSearch": ef_search, "min_df": min_df, "build_threads": threads}
        self.stats = stats

    def neighbours(self, texts: Sequence[str]) -> Tuple[numpy.ndarray, List[numpy.ndarray],
                                                        List[numpy.ndarray]]:
        """(offsets, key rows, similarities) of the ANN neighbours of each text."""
        queries = self.vectorizer.transform(list(texts))
        nonempty = numpy.flatnonzero(numpy.diff(queries.indptr) > 0)
        found = self.ann.knnQueryBatch(queries[nonempty], k=self.k, num_threads=1)
        rows: List[numpy.ndarray] = [numpy.zeros(0, numpy.int64)] * len(texts)
        sims: List[numpy.ndarray] = [numpy.zeros(0, numpy.float32)] * len(texts)
        for i, (ids, distances) in zip(nonempty.tolist(), found):
            rows[i] = self.key_rows[ids]
            sims[i] = 1.0 - distances
        return self._flatten(rows, sims)

    def exact_neighbours(self, texts: Sequence[str], chunk: int = 128):
        """The true top-k keys by TF-IDF cosine (brute force), same format."""
        queries = self.vectorizer.transform(list(texts))
        transposed = self.vectors.T.tocsr()
        rows: List[numpy.ndarray] = []
        sims: List[numpy.ndarray] = []
        for begin in range(0, queries.shape[0], chunk):
            scores = (queries[begin : begin + chunk] @ transposed).tocsr()
            for i in range(scores.shape[0]):
                lo, hi = scores.indptr[i], scores.indptr[i + 1]
                values, columns = scores.data[lo:hi], scores.indices[lo:hi]
                top = numpy.argsort(-values, kind="stable")[: self.k]
                rows.append(self.key_rows[columns[top]])
                sims.append(values[top].astype(numpy.float32))
        return self._flatten(rows, sims)

    @staticmethod
    def _flatten(rows: List[numpy.ndarray], sims: List[numpy.ndarray]):
        offsets = numpy.zeros(len(rows) + 1, dtype=numpy.int64)
        numpy.cumsum([len(r) for r in rows], out=offsets[1:])
        flat_rows = numpy.concatenate(rows) if rows else numpy.zeros(0, numpy.int64)
        flat_sims = numpy.concatenate(sims) if sims else numpy.zeros(0, numpy.float32)
        return offsets, flat_rows.astype(numpy.int64), flat_sims.astype(numpy.float32)

    def expand(self, kb: InMemoryLookupKB, offsets, key_rows, sims) -> CandidateArrays:
        """Entities of the keys, in neighbour order, one per entity; prior x similarity."""
        n = len(offsets) - 1
        slot_offsets, entity_rows, priors, alias_rows = kb.alias_index.gather(key_rows)
        slot_counts = numpy.diff(slot_offsets)
        key_mention = numpy.repeat(numpy.arange(n), numpy.diff(offsets))
        mention = numpy.repeat(key_mention, slot_counts)
        counts = numpy.bincount(mention, minlength=n)
        merged_offsets = numpy.zeros(n + 1, dtype=numpy.int64)
        numpy.cumsum(counts, out=merged_offsets[1:])
        spread = CandidateArrays(merged_offsets, entity_rows,
                                 priors * numpy.repeat(sims, slot_counts),
                                 numpy.asarray(alias_rows, dtype=numpy.int64))
        return merge_stages([spread], n)

    def arrays(self, kb: InMemoryLookupKB, texts: Sequence[str]) -> CandidateArrays:
        return self.expand(kb, *self.neighbours(texts))


def ann_section(kb: InMemoryLookupKB, corpora: List[Corpus], texts: List[str],
                fuzzy_texts: Dict[str, CandidateArrays], args) -> Dict[str, object]:
    print(f"\nBuilding the TF-IDF + nmslib HNSW index over the normalised keys "
          f"(M={args.ann_m}, efConstruction={args.ann_ef_construction}, "
          f"{args.ann_threads} thread(s)) ...", flush=True)
    ann = TfidfAnnCandidates(kb, k=10, m=args.ann_m, ef_construction=args.ann_ef_construction,
                             ef_search=args.ann_ef_search, threads=args.ann_threads)
    index_bytes = sum(int(a.nbytes) for a in kb.alias_index.arrays().values())
    out: Dict[str, object] = {"params": ann.params, "build": ann.stats,
                              "our_alias_index_bytes": index_bytes, "corpora": {}}
    print(f"  {ann.stats['keys']:,} keys ({ann.stats['empty_keys']:,} with an empty TF-IDF "
          f"vector dropped), {ann.stats['tfidf_features']:,} trigram features; TF-IDF fit "
          f"{ann.stats['tfidf_fit_seconds']:.1f} s; HNSW build "
          f"{ann.stats['ann_build_seconds']:.1f} s, +{ann.stats['ann_rss_bytes'] / 2**20:.0f} "
          f"MiB RSS (TF-IDF matrix {ann.stats['tfidf_matrix_bytes'] / 2**20:.0f} MiB); our "
          f"whole alias index (normalised + trigram) {index_bytes / 2**20:.0f} MiB", flush=True)
    for corpus in corpora:
        arrays = ann.arrays(kb, corpus.texts)
        row = recall_row(gold_ranks(arrays, corpus.gold_rows), arrays)
        exact = ann.expand(kb, *ann.exact_neighbours(corpus.texts))
        row["brute_force_top10"] = recall_row(gold_ranks(exact, corpus.gold_rows), exact)
        row["ours_fuzzy"] = fuzzy_texts[corpus.name]
        out["corpora"][corpus.name] = row
    out["speed"] = {
        "mentions": len(texts),
        "batch256": best_rate(lambda: [ann.arrays(kb, b) for b in batched(texts, SPEED_BATCH)],
                              len(texts), args.repeats),
        "one_batch": best_rate(lambda: ann.arrays(kb, texts), len(texts), args.repeats),
        "ours_fuzzy_batch256": best_rate(
            lambda: [FuzzyCandidates(0.7).arrays(kb, b) for b in batched(texts, SPEED_BATCH)],
            len(texts), args.repeats),
    }
    out["generator"] = ann
    return out


# --------------------------------------------------------------------------- linking


class ExactPriorsFirst(CandidateGenerator):
    """Experiment, not a package generator: the candidates of ``inner``, where a
    mention that has exact-match candidates gets every other candidate's prior
    multiplied by ``factor``. Normalised matches otherwise bring the prior an
    entity has under another alias ("Califórnia" -> a Brazilian town, prior 1.0)
    into a mention whose exact alias gives the right entity 0.999."""

    name = "exact_priors_first"

    def __init__(self, inner: CandidateGenerator, factor: float = 0.01) -> None:
        self.inner = inner
        self.factor = factor

    def arrays(self, kb: InMemoryLookupKB, texts: Sequence[str]) -> CandidateArrays:
        found = self.inner.arrays(kb, texts)
        exact = ExactCandidates().arrays(kb, texts)
        n_entities = kb.get_size_entities()

        def pairs(arrays: CandidateArrays) -> numpy.ndarray:
            counts = numpy.diff(arrays.offsets)
            mention = numpy.repeat(numpy.arange(len(counts), dtype=numpy.int64), counts)
            return mention * n_entities + numpy.asarray(arrays.entity_rows, dtype=numpy.int64)

        found_pairs = pairs(found)
        has_exact = numpy.diff(exact.offsets) > 0
        discount = has_exact[found_pairs // n_entities] & ~numpy.isin(found_pairs, pairs(exact))
        priors = numpy.array(found.priors, dtype=numpy.float32)
        priors[discount] *= self.factor
        return CandidateArrays(found.offsets, found.entity_rows, priors, found.alias_rows)



def predict_ids(nlp: Language, corpus: Corpus) -> List[str]:
    """The nel's kb id of every linked gold mention, in Corpus order."""
    keep = [name for name in nlp.pipe_names if name in ("sentencizer", "senter", "nel")]
    with nlp.select_pipes(enable=keep):
        predicted = list(nlp.pipe(gold_mention_docs(nlp, corpus.docs), batch_size=64))
    ids = []
    for gold, pred in zip(corpus.docs, predicted):
        if len(gold.ents) != len(pred.ents):
            raise AssertionError("The gold spans did not survive the copy into input docs.")
        ids += [p.kb_id_ for g, p in zip(gold.ents, pred.ents) if g.kb_id_ not in ("", NIL)]
    return ids


def haversine_km(lat1, lon1, lat2, lon2) -> numpy.ndarray:
    p = numpy.pi / 180
    a = (numpy.sin((lat2 - lat1) * p / 2) ** 2
         + numpy.cos(lat1 * p) * numpy.cos(lat2 * p) * numpy.sin((lon2 - lon1) * p / 2) ** 2)
    return 12742 * numpy.arcsin(numpy.sqrt(numpy.clip(a, 0, 1)))


def link_scores(kb: InMemoryLookupKB, metadata, corpus: Corpus, pred_ids: List[str],
                exact_has_gold: numpy.ndarray) -> Dict[str, Dict[str, float]]:
    """Accuracy and acc@161 km, overall and split by exact-match recall.

    acc@161 km is over the mentions whose gold entity has coordinates in the KB
    metadata (as entity_linker.evaluation); a NIL prediction is a miss."""
    gold_rows = corpus.gold_rows
    pred_rows = numpy.asarray(kb.get_entity_rows([p if p else NIL for p in pred_ids]),
                              dtype=numpy.int64)
    correct = numpy.array([p == g for p, g in zip(pred_ids, corpus.gold_ids)])
    lat, lon = metadata.latitude, metadata.longitude
    has_truth = (gold_rows >= 0) & ~numpy.isnan(lat[numpy.maximum(gold_rows, 0)])
    has_guess = (pred_rows >= 0) & ~numpy.isnan(lat[numpy.maximum(pred_rows, 0)])
    g, q = numpy.maximum(gold_rows, 0), numpy.maximum(pred_rows, 0)
    km = haversine_km(lat[g], lon[g], lat[q], lon[q])
    near = correct | (has_truth & has_guess & (km <= ACCURACY_KM))
    out = {}
    for label, mask in (("all", numpy.ones(len(correct), bool)),
                        ("exact_has_gold", exact_has_gold), ("rest", ~exact_has_gold)):
        geo = mask & has_truth
        out[label] = {
            "mentions": int(mask.sum()),
            "accuracy": float(correct[mask].mean()) if mask.any() else 0.0,
            "correct": int(correct[mask].sum()),
            "mentions_161km": int(geo.sum()),
            "acc_161km": float(near[geo].mean()) if geo.any() else 0.0,
        }
    return out


def linking_section(nlp: Language, kb: InMemoryLookupKB, metadata, corpora: List[Corpus],
                    generators: Dict[str, CandidateGenerator],
                    exact_ranks: Dict[str, numpy.ndarray]) -> Dict[str, object]:
    nel = nlp.get_pipe("nel")
    default = nel.get_candidates_batch
    out: Dict[str, object] = {}
    for corpus in corpora:
        exact_has_gold = exact_ranks[corpus.name] >= 0
        rows: Dict[str, object] = {}
        try:
            nel.get_candidates_batch = default
            baseline = predict_ids(nlp, corpus)
            for name, generator in generators.items():
                nel.get_candidates_batch = generator
                start = time.perf_counter()
                ids = predict_ids(nlp, corpus)
                seconds = time.perf_counter() - start
                rows[name] = link_scores(kb, metadata, corpus, ids, exact_has_gold)
                rows[name]["predict_seconds"] = seconds
                if name == "exact":
                    rows[name]["same_as_shipped_generator"] = ids == baseline
        finally:
            nel.get_candidates_batch = default
        out[corpus.name] = rows
    return out


# --------------------------------------------------------------------------- printing


def pct(x: float) -> str:
    return f"{100 * x:5.1f}"


def print_recall(results: Dict[str, object], names: List[str]) -> None:
    for corpus, table in results["recall"].items():
        print(f"\n{CORPUS_NAMES[corpus]}: {table['mentions']:,} gold mentions with a geonameid; "
              f"ceiling (gold id in the KB) {pct(table['ceiling'])}%")
        print(f"  {'generator':34} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'R@all':>6} "
              f"{'cands':>7} {'none':>6}")
        for name in names:
            if name not in table:
                continue
            row = table[name]
            print(f"  {name:34} {pct(row['recall@1'])} {pct(row['recall@5'])} "
                  f"{pct(row['recall@10'])} {pct(row['recall@all'])} "
                  f"{row['avg_candidates']:7.1f} {pct(row['no_candidates'])}")


def print_speed(speed: Dict[str, object], names: List[str]) -> None:
    spacy_rate = speed["spacy get_alias_candidates per mention"]
    print(f"\nSpeed, one core, {speed['mentions']:,} mention texts, mentions/s (best of "
          f"{speed['repeats']}); spaCy get_alias_candidates per mention: {spacy_rate:,.0f}; "
          f"ours per mention: {speed['ours get_alias_candidates per mention']:,.0f}")
    print(f"  {'generator':34} {'arrays/256':>11} {'arrays/all':>11} {'cands/256':>10} "
          f"{'cands/all':>10} {'/spaCy':>7} {'/exact':>7}")
    for name in names:
        row = speed.get(name)
        if row is None:
            continue
        print(f"  {name:34} {row['arrays_batch256']:11,.0f} {row['arrays_one_batch']:11,.0f} "
              f"{row['candidates_batch256']:10,.0f} {row['candidates_one_batch']:10,.0f} "
              f"{row['ratio_vs_spacy_arrays_batch256']:7.2f} "
              f"{row.get('ratio_vs_exact_arrays_batch256', float('nan')):7.2f}")


def print_fuzzy(fuzzy: Dict[str, object]) -> None:
    print(f"\nFuzzy search on the GeoNames KB ({fuzzy['kb_aliases']:,} aliases, "
          f"{fuzzy['normalised_keys']:,} normalised keys, {fuzzy['trigrams']:,} trigrams), "
          "min_score 0.7, 10 keys, mentions/s:")
    for label in ("as_written", "one_edit"):
        row = fuzzy[label]
        print(f"  {label:11} search/256 {row['search_batch256']:8,.0f}  search/all "
              f"{row['search_one_batch']:8,.0f}  generator/256 {row['generator_batch256']:8,.0f}"
              f"  generator/all {row['generator_one_batch']:8,.0f}")


def print_ann(ann: Dict[str, object]) -> None:
    print(f"\nscispaCy-style TF-IDF + HNSW ({ann['params']}):")
    print(f"  {'corpus / system':44} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'R@all':>6} {'cands':>7}")
    for corpus, row in ann["corpora"].items():
        for label, r in ((f"{CORPUS_NAMES[corpus]} HNSW k=10", row),
                         (f"{CORPUS_NAMES[corpus]} brute-force TF-IDF top-10",
                          row["brute_force_top10"]),
                         (f"{CORPUS_NAMES[corpus]} ours fuzzy (0.7, 10 keys)", row["ours_fuzzy"])):
            print(f"  {label:44} {pct(r['recall@1'])} {pct(r['recall@5'])} "
                  f"{pct(r['recall@10'])} {pct(r['recall@all'])} {r['avg_candidates']:7.1f}")
    s = ann["speed"]
    print(f"  query speed, one core: HNSW {s['batch256']:,.0f}/s (batches of 256), "
          f"{s['one_batch']:,.0f}/s (one batch); ours fuzzy {s['ours_fuzzy_batch256']:,.0f}/s "
          f"(batches of 256): ours/HNSW {s['ours_fuzzy_batch256'] / s['batch256']:.1f}x")


def print_linking(linking: Dict[str, object], title: str) -> None:
    print(f"\n{title}")
    print(f"  {'corpus / generator':60} {'acc':>6} {'@161':>6} | {'exact-has-gold':>14} "
          f"{'@161':>6} | {'rest acc':>8} {'@161':>6}")
    for corpus, rows in linking.items():
        for name, row in rows.items():
            a, e, r = row["all"], row["exact_has_gold"], row["rest"]
            print(f"  {CORPUS_NAMES.get(corpus, corpus) + ' / ' + name:60} {pct(a['accuracy'])} "
                  f"{pct(a['acc_161km'])} | {pct(e['accuracy']):>14} {pct(e['acc_161km'])} | "
                  f"{pct(r['accuracy']):>8} {pct(r['acc_161km'])}")
        first = next(iter(rows.values()))
        print(f"  ({CORPUS_NAMES.get(corpus, corpus)}: {first['all']['mentions']:,} mentions, "
              f"{first['exact_has_gold']['mentions']:,} with the gold among exact candidates, "
              f"{first['rest']['mentions']:,} without)")


# --------------------------------------------------------------------------- main


def pin_one_core() -> Optional[int]:
    """Run the whole process on one CPU (speeds are single-core numbers)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/geo"))
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "candidates_results.json")
    parser.add_argument("--quick", action="store_true",
                        help="LGL only, exact/normalized/cascade, no ANN, 1 timing run")
    parser.add_argument("--repeats", type=int, default=3, help="timing runs (best kept)")
    parser.add_argument("--no-ann", action="store_true", help="skip the scispaCy comparison")
    parser.add_argument("--ann-m", type=int, default=16)
    parser.add_argument("--ann-ef-construction", type=int, default=100)
    parser.add_argument("--ann-ef-search", type=int, default=200)
    parser.add_argument("--ann-threads", type=int, default=1,
                        help="threads (and cores) of the HNSW build; queries use one")
    parser.add_argument("--heldout", nargs="*", default=[], metavar="NAME=PIPELINE",
                        help="pipelines trained without TR-News, evaluated on TR-News")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not (args.data / "load_geo.py").exists():
        print(f"Skipped: no geo data at {args.data} (see ../shared/data/README.md).")
        return 0
    if args.quick:
        args.repeats, args.no_ann = 1, True
    cpu = pin_one_core()
    started = time.perf_counter()
    load_before = os.getloadavg()
    nlp = load_pipeline(None)  # the shipped geo pipeline; its nel maps the GeoNames KB
    kb: InMemoryLookupKB = nlp.get_pipe("nel").kb
    index_info = ensure_index(kb)
    metadata = load_geonames_metadata()
    sample = numpy.random.default_rng(args.seed).choice(kb.get_size_entities(), 1000)
    if not all(str(metadata.geonameid[r]) == kb.get_entity_id(int(r)) for r in sample):
        raise AssertionError("The GeoNames metadata rows are not aligned with the KB's.")
    corpus_names = CORPORA[:1] if args.quick else CORPORA
    corpora = [load_corpus(nlp, kb, args.data, name) for name in corpus_names]
    names = list(QUICK_GENERATORS if args.quick else GENERATORS)
    generators = {name: GENERATORS[name]() for name in names}
    results: Dict[str, object] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks.eval_candidates " + " ".join(argv or sys.argv[1:]),
        "machine": {"python": platform.python_version(), "spacy": spacy.__version__,
                    "cpu": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "pinned_to_cpu": cpu},
        "kb": {"entities": kb.get_size_entities(), "aliases": kb.get_size_aliases(),
               "normalised_keys": kb.alias_index.n_keys, "trigrams": kb.alias_index.n_grams,
               "alias_index": index_info},
        "generators": {name: repr(generator) for name, generator in generators.items()},
        "recall": {},
    }

    # 1. recall
    ranks: Dict[str, Dict[str, numpy.ndarray]] = {}
    fuzzy_rows: Dict[str, Dict[str, float]] = {}
    for corpus in corpora:
        in_kb = corpus.gold_rows >= 0
        table: Dict[str, object] = {"mentions": len(corpus.texts),
                                    "corpus_toponyms_with_geonameid": corpus.raw_mentions,
                                    "gold_in_kb": int(in_kb.sum()),
                                    "ceiling": float(in_kb.mean())}
        ranks[corpus.name] = {}
        for name, generator in generators.items():
            arrays = generator.arrays(kb, corpus.texts)
            ranks[corpus.name][name] = gold_ranks(arrays, corpus.gold_rows)
            table[name] = recall_row(ranks[corpus.name][name], arrays)
        fuzzy = FuzzyCandidates(min_score=0.7).arrays(kb, corpus.texts)
        fuzzy_rows[corpus.name] = recall_row(gold_ranks(fuzzy, corpus.gold_rows), fuzzy)
        results["recall"][corpus.name] = table
    print_recall(results, names)

    # 2-3. speed, one core
    texts = [text for corpus in corpora for text in corpus.texts]
    spacy_timings: Dict[str, float] = {}
    print(f"\nBuilding spaCy's KB with the same {kb.get_size_aliases():,} aliases ...", flush=True)
    spacy_kb = build_spacy_kb(Vocab(), spec_from_our_kb(kb), spacy_timings)
    for text in texts[:2000]:  # same exact candidates (entity ids, priors) in both KBs
        ours = [(c.entity_, round(c.prior_prob, 5)) for c in kb.get_alias_candidates(text)]
        theirs = [(c.entity_, round(c.prior_prob, 5))
                  for c in spacy_kb.get_alias_candidates(text)]
        if sorted(ours) != sorted(theirs):
            raise AssertionError(f"The KBs differ on {text!r}: {ours} vs {theirs}")
    speed = speed_table(kb, spacy_kb, generators, texts, args.repeats)
    speed["repeats"] = args.repeats
    speed["spacy_kb_build"] = spacy_timings
    results["speed"] = speed
    print_speed(speed, names)
    del spacy_kb
    gc.collect()
    results["fuzzy_speed"] = fuzzy_speed(kb, texts, args.repeats, args.seed)
    print_fuzzy(results["fuzzy_speed"])

    # 4. scispaCy's approach
    link_generators: Dict[str, CandidateGenerator] = dict(generators)
    if "cascade (defaults)" in generators:
        link_generators[EXPERIMENT_NAME] = ExactPriorsFirst(CascadeCandidates(), 0.01)
    if not args.no_ann:
        ann = ann_section(kb, corpora, texts, fuzzy_rows, args)
        link_generators[ANN_NAME] = ann.pop("generator")
        results["scispacy_ann"] = ann
        print_ann(ann)

    # 5. linking accuracy with each generator swapped in
    exact_ranks = {corpus.name: ranks[corpus.name]["exact"] for corpus in corpora}
    print("\nLinking the gold mentions with the shipped nel and each generator ...", flush=True)
    results["linking_shipped"] = linking_section(nlp, kb, metadata, corpora, link_generators,
                                                 exact_ranks)
    print_linking(results["linking_shipped"],
                  "Linking accuracy, shipped geo pipeline (trained on LGL + TR-News: in-sample), "
                  "gold mentions, %:")
    heldout: Dict[str, object] = {}
    trnews = [corpus for corpus in corpora if corpus.name == "trnews"]
    for spec in args.heldout:
        label, _, path = spec.partition("=")
        held_nlp = spacy.load(path)
        held_kb = held_nlp.get_pipe("nel").kb
        ensure_index(held_kb)
        if held_kb.get_size_aliases() != kb.get_size_aliases():
            raise AssertionError(f"{path} does not use the same GeoNames KB.")
        rows = linking_section(held_nlp, held_kb, metadata, trnews, link_generators,
                               exact_ranks)
        heldout[label] = {"pipeline": path, "trnews": rows["trnews"]}
        print_linking({"trnews": rows["trnews"]},
                      f"Held-out linking on TR-News, nel trained on LGL ({label}: {path}), %:")
    if heldout:
        results["linking_heldout"] = heldout
    results["seconds"] = time.perf_counter() - started
    results["load_average"] = {"start": load_before, "end": os.getloadavg()}
    print(f"\nLoad average at start {load_before[0]:.2f}, at end {os.getloadavg()[0]:.2f} "
          f"({os.cpu_count()} cores); {results['seconds']:.0f} s in all.")
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")
    print(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    numpy.seterr(all="ignore")
    sys.exit(main())

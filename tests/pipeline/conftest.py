"""Fixtures for the tests of the ``nel`` pipeline component.

Test modules are imported with --import-mode=importlib, so they cannot import
this file: helpers are fixtures that return functions. Registered test
functions (a deterministic keyword encoder, recording candidate generators, a
recording empty-KB factory, a constant scorer) live here so that configs in
the tests can name them.

The toy KB (vector length 3):

    entity  freq  vector       aliases (prior)
    QF      100   [1, 0, 0]    Paris (0.8), Twin (0.25), Triple (0.2)
    QT       10   [0, 1, 0]    Paris (0.2), Texas (0.9), Twin (0.25), Triple (0.2),
                               "Paris Texas" (1.0)
    QH       50   [0, 0, 1]    Hilton (0.9), Triple (0.5)
    QZ        1   [0, 0, 0]    Zero (0.5)
    QY        1   [0, 0, 0]    Zero (0.5)

"Twin" lists QT before QF with equal priors and "Zero" lists QZ before QY
with zero vectors and equal priors, so insertion order and the id order
disagree (for the tie-breaking tests).

The keyword encoder encodes a mention as the sum of the vectors of the
keywords in its sentence (the whole doc without sentence boundaries):
"france" -> [1, 0, 0], "texas" -> [0, 1, 0], "hilton" -> [0, 0, 1],
"mixed" -> [1, 1.2, 0] (a bit closer to QT than to QF).
"""

import copy
import random
from typing import Dict, List

import numpy
import pytest
import spacy
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import fix_random_seed, minibatch, registry
from thinc.api import Model

from entity_linker import InMemoryLookupKB
from entity_linker.synthetic import make_task

KEYWORD_VECTORS: Dict[str, tuple] = {
    "france": (1.0, 0.0, 0.0),
    "texas": (0.0, 1.0, 0.0),
    "hilton": (0.0, 0.0, 1.0),
    "mixed": (1.0, 1.2, 0.0),
}

TOY_ENTITIES = (
    ("QF", 100.0, (1.0, 0.0, 0.0)),
    ("QT", 10.0, (0.0, 1.0, 0.0)),
    ("QH", 50.0, (0.0, 0.0, 1.0)),
    ("QZ", 1.0, (0.0, 0.0, 0.0)),
    ("QY", 1.0, (0.0, 0.0, 0.0)),
)
TOY_ALIASES = (
    ("Paris", ("QF", "QT"), (0.8, 0.2)),
    ("Texas", ("QT",), (0.9,)),
    ("Hilton", ("QH",), (0.9,)),
    ("Twin", ("QT", "QF"), (0.25, 0.25)),
    ("Triple", ("QH", "QT", "QF"), (0.5, 0.2, 0.2)),
    ("Zero", ("QZ", "QY"), (0.5, 0.5)),
    ("Paris Texas", ("QT",), (1.0,)),
)

KEYWORD_MODEL = {"@architectures": "test_nel.KeywordEncoder.v1"}

SMALL_TOK2VEC = {
    "@architectures": "spacy.HashEmbedCNN.v2",
    "pretrained_vectors": None,
    "width": 32,
    "depth": 1,
    "embed_size": 500,
    "window_size": 1,
    "maxout_pieces": 2,
    "subword_features": True,
}
SMALL_MODEL = {"@architectures": "entity_linker.EntityLinker.v1", "tok2vec": SMALL_TOK2VEC}


# --------------------------------------------------------- registered helpers


def _keyword_forward(model: Model, docs: List[Doc], is_train: bool):
    rows = []
    for doc in docs:
        for ent in doc.ents:
            context = ent.sent if doc.has_annotation("SENT_START") else doc[:]
            vector = numpy.zeros(model.get_dim("nO"), dtype="float32")
            for token in context:
                vector += numpy.asarray(KEYWORD_VECTORS.get(token.lower_, (0.0, 0.0, 0.0)))
            rows.append(vector)
    Y = model.ops.asarray2f(numpy.asarray(rows, dtype="float32").reshape(-1, 3))
    return Y, lambda dY: []


def _keyword_init(model: Model, X=None, Y=None):
    if Y is not None and Y.shape[1] != 3:
        raise ValueError("the keyword encoder only works with vector length 3")


@registry.architectures("test_nel.KeywordEncoder.v1")
def keyword_encoder() -> Model:
    """A parameter-free encoder: the sum of the keyword vectors of the mention's sentence."""
    return Model("keyword_encoder", _keyword_forward, init=_keyword_init, dims={"nO": 3})


def _canonical(text: str) -> str:
    return text[:1].upper() + text[1:].lower()


@registry.misc("test_nel.CaseInsensitiveCandidates.v1")
def case_insensitive_candidates():
    """Per-mention generator matching "paris"/"PARIS" to the alias "Paris"; records calls."""

    def get_candidates(kb, mention):
        get_candidates.calls.append(mention.text)
        return kb.get_alias_candidates(_canonical(mention.text))

    get_candidates.calls = []
    return get_candidates


@registry.misc("test_nel.CaseInsensitiveCandidatesBatch.v1")
def case_insensitive_candidates_batch():
    """Batch generator matching "paris" to "Paris"; records the mention texts of each call."""

    def get_candidates_batch(kb, mentions):
        mentions = list(mentions)
        get_candidates_batch.calls.append([m.text for m in mentions])
        return [kb.get_alias_candidates(_canonical(m.text)) for m in mentions]

    get_candidates_batch.calls = []
    return get_candidates_batch


class RecordingKB(InMemoryLookupKB):
    """An InMemoryLookupKB that remembers the arguments of the factory that made it."""


@registry.misc("test_nel.RecordingEmptyKB.v1")
def recording_empty_kb():
    """An EmptyKB.v2-style factory whose KBs record the (vocab, length) it was called with."""

    def factory(vocab, entity_vector_length):
        kb = RecordingKB(vocab, entity_vector_length)
        kb.factory_args = (vocab, entity_vector_length)
        return kb

    return factory


@registry.scorers("test_nel.ConstantScorer.v1")
def constant_scorer():
    def score(examples, **kwargs):
        return {"nel_constant": 0.25}

    return score


@registry.tokenizers("test_nel.PlainTokenizer.v1")
def plain_tokenizer():
    """Splits on whitespace only (English's tokenizer exceptions take ~1 s per pipeline)."""

    def create(nlp):
        return Tokenizer(nlp.vocab)

    return create


# ------------------------------------------------------------------- fixtures


def _blank():
    """A blank English pipeline with a whitespace tokenizer (fast to create)."""
    return spacy.blank(
        "en", config={"nlp": {"tokenizer": {"@tokenizers": "test_nel.PlainTokenizer.v1"}}}
    )


@pytest.fixture
def blank():
    """blank() -> a blank English pipeline with a whitespace tokenizer (fast to create)."""
    return _blank



def _build_toy_kb(vocab) -> InMemoryLookupKB:
    kb = InMemoryLookupKB(vocab, entity_vector_length=3)
    for entity, freq, vector in TOY_ENTITIES:
        kb.add_entity(entity, freq, list(vector))
    for alias, entities, priors in TOY_ALIASES:
        kb.add_alias(alias, list(entities), list(priors))
    return kb


@pytest.fixture
def small_model():
    """A fresh config dict of the default architecture with a small tok2vec."""
    return copy.deepcopy(SMALL_MODEL)


@pytest.fixture
def small_tok2vec():
    return copy.deepcopy(SMALL_TOK2VEC)


@pytest.fixture
def keyword_model():
    """The config dict of the deterministic keyword encoder."""
    return dict(KEYWORD_MODEL)


@pytest.fixture
def toy_kb():
    """toy_kb(vocab) -> a fresh writable toy KB (usable as a kb_loader)."""
    return _build_toy_kb


def _make_doc(vocab, words, ents=(), sent_starts=None) -> Doc:
    """A Doc with entities given as (start, end, label) or (start, end, label, kb_id)."""
    doc = Doc(vocab, words=list(words), sent_starts=sent_starts)
    spans = []
    for ent in ents:
        start, end, label = ent[:3]
        kb_id = ent[3] if len(ent) > 3 else 0
        spans.append(Span(doc, start, end, label=label, kb_id=kb_id))
    doc.ents = spans
    return doc


@pytest.fixture
def make_doc():
    """make_doc(vocab, words, ents=[(start, end, label[, kb_id])], sent_starts=None)."""
    return _make_doc


def _toy_examples(vocab) -> List[Example]:
    """Gold examples on the toy KB (predicted docs without entities)."""
    data = [
        (["Paris", "is", "in", "France", "."], [(0, 1, "GPE", "QF")]),
        (["Paris", "is", "in", "Texas", "."], [(0, 1, "GPE", "QT")]),
        (["I", "saw", "Hilton", "in", "Paris", "France"],
         [(2, 3, "PERSON", "QH"), (4, 5, "GPE", "QF")]),
        (["The", "Texas", "town", "of", "Paris", "."],
         [(1, 2, "GPE", "QT"), (4, 5, "GPE", "QT")]),
    ]
    examples = []
    for words, ents in data:
        reference = _make_doc(vocab, words, ents)
        examples.append(Example(Doc(vocab, words=words), reference))
    return examples


@pytest.fixture
def toy_examples():
    """toy_examples(vocab) -> gold Examples on the toy KB (no ents on the predicted side)."""
    return _toy_examples


def _make_nlp(config=None, *, kb=True, initialize=True, pipeline=(), name="nel"):
    """A blank English pipeline with the nel component (small default encoder).

    kb: True for the toy KB, a kb_loader, or False for none.
    pipeline: names of components to add before nel (e.g. "sentencizer").
    """
    config = dict(config or {})
    config.setdefault("model", copy.deepcopy(SMALL_MODEL))
    nlp = _blank()
    for component in pipeline:
        nlp.add_pipe(component)
    nel = nlp.add_pipe("nel", name=name, config=config)
    if kb is True:
        nel.set_kb(_build_toy_kb)
    elif kb:
        nel.set_kb(kb)
    if initialize and kb:
        fix_random_seed(0)
        nlp.initialize(lambda: _toy_examples(nlp.vocab))
    return nlp


@pytest.fixture
def make_nlp():
    """make_nlp(config=None, *, kb=True, initialize=True, pipeline=(), name="nel")."""
    return _make_nlp


@pytest.fixture
def keyword_nlp():
    """keyword_nlp(**config) -> a pipeline with nel on the toy KB and the keyword encoder."""

    def build(**config):
        config.setdefault("model", KEYWORD_MODEL)
        return _make_nlp(config, initialize=False)

    return build


def _unlinked_docs(vocab, examples) -> List[Doc]:
    """Fresh docs with the gold entities of the examples but no kb ids."""
    docs = []
    for eg in examples:
        ref = eg.reference
        ents = [(e.start, e.end, e.label_) for e in ref.ents]
        sent_starts = None
        if ref.has_annotation("SENT_START"):
            sent_starts = [bool(t.is_sent_start) for t in ref]
        docs.append(_make_doc(vocab, [t.text for t in ref], ents, sent_starts))
    return docs


@pytest.fixture
def unlinked_docs():
    """unlinked_docs(vocab, examples) -> docs with the gold ents but without kb ids."""
    return _unlinked_docs


def _accuracy(nlp, examples, batch_size=64) -> float:
    docs = list(nlp.pipe(_unlinked_docs(nlp.vocab, examples), batch_size=batch_size))
    gold = [ent.kb_id_ for eg in examples for ent in eg.reference.ents]
    predicted = [ent.kb_id_ for doc in docs for ent in doc.ents]
    assert len(gold) == len(predicted) > 0
    return float(numpy.mean([g == p for g, p in zip(gold, predicted)]))


@pytest.fixture
def accuracy():
    """accuracy(nlp, examples) -> share of gold mentions linked to the gold kb id."""
    return _accuracy


def _train(nlp, examples, *, epochs, batch_size=16, seed=0, sgd=None, drop=0.0):
    """Train with nlp.update; returns (optimizer, list of per-epoch loss dicts).

    The random seed is fixed first, so the initial weights (and the result) do not
    depend on which tests ran before.
    """
    fix_random_seed(seed)
    optimizer = sgd if sgd is not None else nlp.initialize(lambda: examples)
    examples = list(examples)
    rng = random.Random(seed)
    history = []
    for _ in range(epochs):
        rng.shuffle(examples)
        losses: Dict[str, float] = {}
        for batch in minibatch(examples, batch_size):
            nlp.update(batch, sgd=optimizer, losses=losses, drop=drop)
        history.append(losses)
    return optimizer, history


@pytest.fixture
def train():
    """train(nlp, examples, *, epochs, batch_size=16, seed=0, sgd=None) -> (optimizer, losses)."""
    return _train


def _link_outputs(docs):
    """Everything the linker writes, as plain data (ids, scores, candidates, token ids)."""
    return [
        [
            (ent.start, ent.end, ent.kb_id_, ent._.kb_score, ent._.kb_candidates,
             [token.ent_kb_id_ for token in ent])
            for ent in doc.ents
        ]
        for doc in docs
    ]


@pytest.fixture
def link_outputs():
    """link_outputs(docs) -> the linker's annotations as comparable plain data."""
    return _link_outputs


@pytest.fixture(scope="session")
def trained_synthetic():
    """A small pipeline trained for a few epochs on a synthetic task (do not mutate).

    Returns a dict: nlp, kb, train, test (Examples) and docs (unlinked test docs).
    """
    nlp = spacy.blank("en")
    kb, train_examples, test_examples = make_task(
        nlp, seed=3, n_train=160, n_test=60, n_aliases=20, vector_length=16
    )
    nel = nlp.add_pipe("nel", config={"model": copy.deepcopy(SMALL_MODEL)})
    nel.set_kb(lambda vocab: kb)
    _train(nlp, train_examples, epochs=3)
    return {
        "nlp": nlp,
        "kb": kb,
        "train": train_examples,
        "test": test_examples,
        "docs": _unlinked_docs(nlp.vocab, test_examples),
    }

"""Training's per-doc cache of the doc evidence and the word pairs: the same
evidence as a batch computes, the same learning, bounded memory."""

import copy

import numpy
import pytest
import spacy
from spacy.tokens import Span
from spacy.training import Example

from entity_linker.evidence_cache import EvidenceCache, select_pairs
from entity_linker.kb import InMemoryLookupKB

from .conftest import SMALL_MODEL

IDS = ["Q_CLE", "Q_CAVS", "Q_HOU", "Q_ROCKETS", "Q_OHIO", "Q_TEXAS"]
NAMES = ["Cleveland", "Cleveland Cavaliers", "Houston", "Houston Rockets", "Ohio", "Texas"]


def _nlp(max_bytes=None):
    nlp = spacy.blank("en")
    kb = InMemoryLookupKB(nlp.vocab, entity_vector_length=4)
    rng = numpy.random.default_rng(0)
    kb.set_entities(IDS, [100, 30, 90, 25, 500, 800], rng.normal(size=(6, 4)).tolist())
    kb.set_names(IDS, NAMES)
    kb.add_alias("Cleveland", ["Q_CLE", "Q_CAVS"], [0.7, 0.3])
    kb.add_alias("Houston", ["Q_HOU", "Q_ROCKETS"], [0.6, 0.4])
    kb.add_alias("Ohio", ["Q_OHIO"], [1.0])
    kb.add_alias("Texas", ["Q_TEXAS"], [1.0])
    kb.set_relations(["Q_CLE", "Q_HOU"], ["Q_OHIO", "Q_TEXAS"])
    nel = nlp.add_pipe("nel", config={
        "scoring": "learned", "candidate_loss_weight": 1.0, "coherence": 4.0,
        "entity_vector_length": 4, "word_pairs_rows": 1024,
        "model": copy.deepcopy(SMALL_MODEL)})
    nel.set_kb(lambda vocab: kb)
    if max_bytes is not None:
        nel._evidence_cache.max_bytes = max_bytes
    return nlp, nel


TEXTS = [
    ("Cleveland beat Houston in the basketball game .", ["Q_CAVS", "Q_ROCKETS"]),
    ("The mayor of Cleveland , Ohio opened a school .", ["Q_CLE", "Q_OHIO"]),
    ("Houston , Texas and Cleveland , Ohio raised taxes .",
     ["Q_HOU", "Q_TEXAS", "Q_CLE", "Q_OHIO"]),
    ("Nothing to link here .", []),
    ("Houston lost a basketball game to Cleveland .", ["Q_ROCKETS", "Q_CAVS"]),
]


def _examples(nlp):
    out = []
    for text, gold in TEXTS:
        doc = nlp.make_doc(text)
        starts = [t.i for t in doc if t.text in ("Cleveland", "Houston", "Ohio", "Texas")]
        reference, predicted = doc.copy(), doc.copy()
        reference.ents = [Span(reference, s, s + 1, label="GPE", kb_id=k)
                          for s, k in zip(starts, gold)]
        predicted.ents = [Span(predicted, s, s + 1, label="GPE") for s in starts]
        out.append(Example(predicted, reference))
    return out


def test_cached_evidence_is_the_evidence_of_the_whole_batch():
    nlp, nel = _nlp()
    docs = [eg.predicted for eg in _examples(nlp)]
    mentions = nel._mentions(docs)
    table = nel._candidates(mentions)
    scorer = nel.candidate_scorer
    expected = nel._doc_evidence(docs, mentions, table, nel._discarded(mentions), scorer)
    expected_pairs = nel._pairs(mentions, table, scorer)
    for _ in range(2):  # computed per doc, then read from the cache
        evidence, pairs = nel._training_evidence(docs, mentions, table, scorer)
        for got, want in zip(evidence, expected):
            assert (got is None) == (want is None)
            if want is not None:
                assert numpy.array_equal(got, want)
        for got, want in zip(pairs, expected_pairs):
            assert numpy.array_equal(got, want)
    assert nel._evidence_cache.hits == len(docs)
    assert nel._evidence_cache.misses == len(docs)
    # The evidence of the same docs in another batch order is found too.
    nel._training_evidence(docs[::-1], nel._mentions(docs[::-1]),
                           nel._candidates(nel._mentions(docs[::-1])), scorer)
    assert nel._evidence_cache.misses == len(docs)


def test_training_with_the_cache_learns_what_training_without_it_learns(train):
    nlp, nel = _nlp()
    plain_nlp, plain_nel = _nlp()

    def whole_batch(docs, mentions, table, scorer):  # no cache, no per-doc split
        discard = plain_nel._discarded(mentions)
        return (plain_nel._doc_evidence(docs, mentions, table, discard, scorer),
                plain_nel._pairs(mentions, table, scorer))

    plain_nel._training_evidence = whole_batch
    train(nlp, _examples(nlp), epochs=4, batch_size=2)
    train(plain_nlp, _examples(plain_nlp), epochs=4, batch_size=2)
    assert nel._evidence_cache.hits > 0
    for name in ("ranker", "word_pairs"):
        trained = getattr(nel, name).get_param("W")
        assert numpy.array_equal(trained, getattr(plain_nel, name).get_param("W"))
    assert nel.word_pairs.get_param("W").any()


def test_the_cache_keeps_within_its_budget_and_empties_with_a_new_kb(train):
    nlp, nel = _nlp()
    train(nlp, _examples(nlp), epochs=2, batch_size=2)
    # Every doc with mentions (the one without may sit alone in a batch with
    # nothing to learn, which the loss never reads).
    assert len(nel._evidence_cache) >= len(TEXTS) - 1
    budget = nel._evidence_cache._bytes // 2
    small_nlp, small_nel = _nlp(max_bytes=budget)
    train(small_nlp, _examples(small_nlp), epochs=2, batch_size=2)
    assert 0 < len(small_nel._evidence_cache) < len(nel._evidence_cache)
    assert small_nel._evidence_cache._bytes <= budget
    kb = nel.kb
    nel.set_kb(lambda vocab: kb)
    assert len(nel._evidence_cache) == 0


def test_select_pairs_renumbers_the_owners_of_the_kept_candidates():
    keys = numpy.array([10, 11, 12, 13], dtype=numpy.uint64)
    owners = numpy.array([0, 1, 3, 3])
    shares = numpy.array([0.5, 0.5, 1.0, 1.0])
    got_keys, got_owners, got_shares = select_pairs((keys, owners, shares),
                                                    numpy.array([3, 1]), 4)
    assert got_keys.tolist() == [11, 12, 13]
    assert got_owners.tolist() == [1, 0, 0]
    assert got_shares.tolist() == [0.5, 1.0, 1.0]
    assert select_pairs(None, numpy.array([0]), 1) is None


@pytest.mark.parametrize("max_bytes", [0, 1])
def test_an_entry_larger_than_the_budget_is_not_kept(max_bytes):
    cache = EvidenceCache(max_bytes=max_bytes)
    nlp, nel = _nlp()
    docs = [eg.predicted for eg in _examples(nlp)]
    mentions = nel._mentions(docs)
    cache.batch("g", docs, mentions, nel._candidates(mentions),
                lambda doc, ms, table, where: nel._training_evidence([doc], ms, table,
                                                                     nel.candidate_scorer))
    assert len(cache) == 0 and cache.misses == len(docs)

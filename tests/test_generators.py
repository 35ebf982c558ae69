"""Candidate generators: exact, normalised, fuzzy and cascade, alone and in `nel`."""

import warnings

import pytest
import spacy
from spacy.tokens import Span
from spacy.util import registry

from entity_linker import InMemoryLookupKB
from entity_linker.candidates import (
    CascadeCandidates,
    ExactCandidates,
    FuzzyCandidates,
    NormalizedCandidates,
)
from entity_linker.errors import KBError, KBWarning

ENTITIES = ("Q_STL", "Q_STL_MN", "Q_PIT", "Q_ZRH", "Q_PARIS", "Q_PARIS_TX", "Q_LOUD")
ALIASES = (
    ("St. Louis", ("Q_STL", "Q_STL_MN"), (0.7, 0.2)),
    ("Saint Louis", ("Q_STL_MN", "Q_STL"), (0.6, 0.3)),
    ("Pittsburgh", ("Q_PIT",), (1.0,)),
    ("Zürich", ("Q_ZRH",), (0.9,)),
    ("Paris", ("Q_PARIS", "Q_PARIS_TX"), (0.9, 0.1)),
    ("PARIS", ("Q_LOUD",), (1.0,)),
)


@pytest.fixture
def nlp():
    return spacy.blank("en")


@pytest.fixture
def kb(nlp):
    kb = InMemoryLookupKB(nlp.vocab, 2)
    for i, entity in enumerate(ENTITIES):
        kb.add_entity(entity, 1.0, [1.0, float(i)])
    for alias, entities, priors in ALIASES:
        kb.add_alias(alias, list(entities), list(priors))
    kb.build_alias_index()
    return kb


def ids(candidates):
    return [c.entity_ for c in candidates]


def mentions(nlp, *texts):
    spans = []
    for text in texts:
        doc = nlp(text)
        spans.append(Span(doc, 0, len(doc), label="LOC"))
    return spans


def test_exact_generator_is_spacys_behaviour(nlp, kb):
    spans = mentions(nlp, "Paris", "paris", "St. Louis")
    got = ExactCandidates()(kb, spans)
    assert [ids(c) for c in got] == [ids(kb.get_candidates(s)) for s in spans]
    assert ids(got[0]) == ["Q_PARIS", "Q_PARIS_TX"] and got[1] == []
    assert [c.prior_prob for c in got[0]] == pytest.approx([0.9, 0.1])


def test_normalized_generator_ranks_exact_matches_first_then_merges(nlp, kb):
    [paris_upper, st_louis, zurich] = NormalizedCandidates()(
        kb, mentions(nlp, "PARIS", "ST LOUIS", "Zurich")
    )
    # The exact alias "PARIS" first, then the other aliases that fold to "paris".
    assert ids(paris_upper) == ["Q_LOUD", "Q_PARIS", "Q_PARIS_TX"]
    # "St. Louis" and "Saint Louis" meet on "saint louis"; each entity keeps its best prior.
    assert ids(st_louis) == ["Q_STL", "Q_STL_MN"]
    assert [c.prior_prob for c in st_louis] == pytest.approx([0.7, 0.6])
    assert [c.alias_ for c in st_louis] == ["St. Louis", "Saint Louis"]
    assert ids(zurich) == ["Q_ZRH"] and zurich[0].alias_ == "Zürich"


def test_normalized_generator_limits_candidates(nlp, kb):
    [paris] = NormalizedCandidates(max_candidates=1)(kb, mentions(nlp, "PARIS"))
    assert ids(paris) == ["Q_LOUD"]


def test_fuzzy_generator_finds_misspellings_with_discounted_priors(nlp, kb):
    [pitt] = FuzzyCandidates(min_score=0.7)(kb, mentions(nlp, "Pitsburgh"))
    assert ids(pitt) == ["Q_PIT"]
    assert 0.7 <= pitt[0].prior_prob < 1.0  # prior 1.0 times the trigram cosine
    [none] = FuzzyCandidates(min_score=0.95)(kb, mentions(nlp, "Pitsburgh"))
    assert none == []


def test_cascade_adds_fuzzy_candidates_only_where_needed_and_caps_at_k(nlp, kb):
    got = CascadeCandidates(k=1)(kb, mentions(nlp, "Paris", "Pitsburgh", "Saint-Louis"))
    assert [ids(c) for c in got] == [["Q_PARIS"], ["Q_PIT"], ["Q_STL"]]
    got = CascadeCandidates(k=30)(kb, mentions(nlp, "PARIS", "Pitsburgh", "Nowhere"))
    assert ids(got[0]) == ["Q_LOUD", "Q_PARIS", "Q_PARIS_TX"]
    assert ids(got[1]) == ["Q_PIT"] and got[2] == []


def test_generators_take_one_span_too(nlp, kb):
    [span] = mentions(nlp, "Zurich")
    assert ids(CascadeCandidates()(kb, span)) == ["Q_ZRH"]


@pytest.mark.parametrize("generator", [ExactCandidates(), NormalizedCandidates(),
                                       FuzzyCandidates(), CascadeCandidates()])
def test_generators_handle_empty_punctuation_and_very_long_mentions(nlp, kb, generator):
    texts = ["", "...", "Paris " * 2000, "é" * 300]
    arrays = generator.arrays(kb, texts)
    assert arrays.offsets.tolist() == [0, 0, 0, 0, 0]
    assert generator(kb, []) == []


def test_a_kb_without_index_builds_one_with_a_warning(nlp, kb, tmp_path):
    plain = InMemoryLookupKB(nlp.vocab, 2)
    plain.add_entity("Q1", 1.0, [0.0, 1.0])
    plain.add_alias("St. Louis", ["Q1"], [1.0])
    plain.to_disk(tmp_path)
    mapped = InMemoryLookupKB(nlp.vocab, 1).from_disk(tmp_path)
    with pytest.warns(KBWarning, match="has no alias index"):
        [found] = NormalizedCandidates()(mapped, mentions(nlp, "saint louis"))
    assert ids(found) == ["Q1"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # built once: no second warning
        NormalizedCandidates()(mapped, mentions(nlp, "saint louis"))


def test_fuzzy_needs_the_trigram_index_and_says_so(nlp, kb):
    kb.build_alias_index(fuzzy=False)
    with pytest.raises(KBError, match="without the trigram index"):
        FuzzyCandidates()(kb, mentions(nlp, "Pitsburgh"))


@pytest.mark.parametrize("settings", [{"k": 0}, {"min_score": 0}, {"min_score": 2.0},
                                      {"max_keys": -1}, {"fuzzy_below": 0}, {"k": True}])
def test_bad_generator_settings_raise(settings):
    with pytest.raises(KBError):
        CascadeCandidates(**settings)


def test_spacys_kb_is_refused_clearly(nlp):
    from spacy.kb import InMemoryLookupKB as SpacyKB

    with pytest.raises(KBError, match="needs entity_linker's InMemoryLookupKB"):
        NormalizedCandidates()(SpacyKB(nlp.vocab, 2), mentions(nlp, "Paris"))


def test_registered_generators_are_configurable():
    made = registry.resolve({"g": {"@misc": "entity_linker.CascadeCandidates.v1", "k": 5,
                                   "min_score": 0.8}})["g"]
    assert isinstance(made, CascadeCandidates) and made.k == 5 and made.fuzzy.min_score == 0.8
    for name, cls in (("ExactCandidates", ExactCandidates),
                      ("NormalizedCandidates", NormalizedCandidates),
                      ("FuzzyCandidates", FuzzyCandidates)):
        assert isinstance(registry.resolve({"g": {"@misc": f"entity_linker.{name}.v1"}})["g"],
                          cls)


def test_nel_links_mentions_that_only_normalised_lookup_finds(nlp, kb):
    nel = nlp.add_pipe("nel", config={
        "incl_context": False,
        "get_candidates_batch": {"@misc": "entity_linker.CascadeCandidates.v1", "k": 5},
    })
    nel.set_kb(lambda vocab: kb)
    nlp.initialize()
    doc = nlp.make_doc("SAINT-LOUIS and Zurich and Pitsburgh")
    doc.ents = [Span(doc, 0, 3, label="LOC"), Span(doc, 4, 5, label="LOC"),
                Span(doc, 6, 7, label="LOC")]
    doc = nel(doc)
    assert [ent.kb_id_ for ent in doc.ents] == ["Q_STL", "Q_ZRH", "Q_PIT"]
    # The exact default links none of them.
    nel.get_candidates_batch = registry.resolve(
        {"g": {"@misc": "entity_linker.CandidateBatchGenerator.v1"}})["g"]
    doc = nel(nlp.make_doc("x"))
    assert doc.ents == ()


def test_normalised_priors_are_discounted_next_to_exact_matches(nlp, kb):
    # "PARIS" has an exact alias: the other spellings' priors must not out-rank it.
    [discounted] = NormalizedCandidates()(kb, mentions(nlp, "PARIS"))
    assert [c.prior_prob for c in discounted] == pytest.approx([1.0, 0.009, 0.001])
    [kept] = NormalizedCandidates(discount=1.0)(kb, mentions(nlp, "PARIS"))
    assert [c.prior_prob for c in kept] == pytest.approx([1.0, 0.9, 0.1])
    # Without an exact match the normalised priors are all there is: kept as they are.
    [alone] = CascadeCandidates()(kb, mentions(nlp, "paris"))
    assert [c.prior_prob for c in alone] == pytest.approx([1.0, 0.9, 0.1])
    with pytest.raises(KBError, match="discount"):
        NormalizedCandidates(discount=1.5)

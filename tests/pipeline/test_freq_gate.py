"""``freq_gate``: a small place that the doc does not place cannot win; when
no candidate of a mention may win, the mention is NIL (a place the KB lacks is
not linked to the small namesake it has)."""

import math

import pytest
import spacy

from entity_linker.kb import InMemoryLookupKB

HERE, THERE = [1.0, 0.0], [0.0, 1.0]
# id, population (the freq and the prior), vector, parents
PLACES = [
    ("Q_US", 330_000_000, THERE, []),
    ("Q_GB", 67_000_000, HERE, []),
    ("Q_FL", 21_000_000, THERE, ["Q_US"]),
    ("Q_LONDON", 8_900_000, HERE, ["Q_GB"]),
    ("Q_HEATHROW_FL", 5_896, THERE, ["Q_US", "Q_FL"]),
    ("Q_PARIS_FR", 2_100_000, THERE, []),
    ("Q_PARIS_KY", 10_000, HERE, ["Q_US"]),
]
ALIASES = {"London": ["Q_LONDON"], "Florida": ["Q_FL"], "Heathrow": ["Q_HEATHROW_FL"],
           "Paris": ["Q_PARIS_FR", "Q_PARIS_KY"]}


def _linker(freq_gate, **config):
    """Prior-only softmax linking; a strong coherence pulls Paris to the small
    Paris near London's vector."""
    nlp = spacy.blank("en")
    kb = InMemoryLookupKB(nlp.vocab, entity_vector_length=2)
    kb.set_entities([p[0] for p in PLACES], [p[1] for p in PLACES], [p[2] for p in PLACES])
    population = {p[0]: p[1] for p in PLACES}
    for alias, entities in ALIASES.items():
        total = sum(population[e] for e in entities)
        kb.add_alias(alias, entities, [0.999 * population[e] / total for e in entities])
    kb.set_relations([p[0] for p in PLACES for _ in p[3]],
                     [parent for p in PLACES for parent in p[3]])
    nel = nlp.add_pipe("nel", config={"scoring": "softmax", "incl_context": False,
                                      "containment": 16.0, "freq_gate": freq_gate,
                                      "entity_vector_length": 2, **config})
    nel.set_kb(lambda vocab: kb)
    nel.explain = True
    return nlp, nel


def _ents(nlp, nel, text, names):
    doc = nlp.make_doc(text)
    doc.ents = [doc.char_span(text.index(n), text.index(n) + len(n), label="LOC")
                for n in names]
    return {e.text: e for e in nel(doc).ents}


@pytest.mark.parametrize("threshold", [None, 0.5])
def test_a_lone_small_namesake_the_doc_does_not_place_is_nil(threshold):
    text = "Flights from London 's Heathrow were cancelled"
    nlp, nel = _linker(10_000.0, threshold=threshold)
    ents = _ents(nlp, nel, text, ["London", "Heathrow"])
    heathrow = ents["Heathrow"]
    assert heathrow.kb_id_ == "NIL"
    assert heathrow._.kb_score == 0.0
    assert heathrow._.kb_evidence["decided_by"] == "freq gate"
    assert ents["London"].kb_id_ == "Q_LONDON"  # 8.9M people: above the gate


def test_without_the_gate_the_lone_namesake_is_linked():
    nlp, nel = _linker(None)
    ents = _ents(nlp, nel, "Flights from London 's Heathrow", ["London", "Heathrow"])
    assert ents["Heathrow"].kb_id_ == "Q_HEATHROW_FL"
    assert ents["Heathrow"]._.kb_score == pytest.approx(1.0)


def test_a_small_place_the_doc_places_is_linked_through_the_gate():
    nlp, nel = _linker(10_000.0)
    ents = _ents(nlp, nel, "Heathrow , Florida", ["Heathrow", "Florida"])
    assert ents["Heathrow"].kb_id_ == "Q_HEATHROW_FL"


def test_the_gate_falls_back_to_a_candidate_above_it():
    """A coherence that pulls towards the small Paris cannot make it win when
    the doc does not place it: the capital, above the gate, does."""
    results = {}
    for gate in (None, 100_000.0):
        nlp, nel = _linker(gate, coherence=20.0)
        ents = _ents(nlp, nel, "From London to Paris", ["London", "Paris"])
        results[gate] = ents["Paris"].kb_id_
        if gate:
            assert ents["Paris"]._.kb_evidence["decided_by"] == "freq gate"
            assert ents["Paris"]._.kb_evidence["rival"] == "Q_PARIS_KY"
    assert results == {None: "Q_PARIS_KY", 100_000.0: "Q_PARIS_FR"}


def test_the_gate_is_saved_with_the_pipeline(tmp_path):
    nlp, _ = _linker(10_000.0)
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("nel").freq_gate == 10_000.0


@pytest.mark.parametrize("value", [0, -5.0, math.inf, math.nan, True])
def test_freq_gate_must_be_a_positive_number(value):
    with pytest.raises(ValueError, match="freq_gate"):
        spacy.blank("en").add_pipe("nel", config={"scoring": "softmax", "freq_gate": value})


def test_freq_gate_needs_a_softmax_scoring():
    with pytest.raises(ValueError, match="freq_gate"):
        spacy.blank("en").add_pipe("nel", config={"freq_gate": 1000.0})

"""``prior_gate``: a country is not overturned by a small namesake that the doc
does not place (the sibling evidence and containment are what place it)."""

import numpy
import pytest
import spacy

from entity_linker.kb import InMemoryLookupKB
from entity_linker.scoring import regional_ancestors, sibling

US_TOWN, COUNTRY = [1.0, 0.0], [0.0, 1.0]
# id, population (the prior), vector, parents
PLACES = [
    ("Q_EARTH_NA", 1, COUNTRY, []),
    ("Q_EARTH_SA", 1, COUNTRY, []),
    ("Q_US", 300_000_000, US_TOWN, ["Q_EARTH_NA"]),
    ("Q_IL", 12_000_000, US_TOWN, ["Q_US", "Q_EARTH_NA"]),
    ("Q_TX", 29_000_000, US_TOWN, ["Q_US", "Q_EARTH_NA"]),
    ("Q_MN", 5_000_000, US_TOWN, ["Q_US", "Q_EARTH_NA"]),
    ("Q_PERU", 33_000_000, COUNTRY, ["Q_EARTH_SA"]),
    ("Q_PERU_IL", 10_000, US_TOWN, ["Q_US", "Q_IL", "Q_EARTH_NA"]),
    ("Q_AUSTIN", 960_000, US_TOWN, ["Q_US", "Q_TX", "Q_EARTH_NA"]),
    ("Q_SHAKOPEE", 40_000, US_TOWN, ["Q_US", "Q_MN", "Q_EARTH_NA"]),
    ("Q_JORDAN", 11_000_000, COUNTRY, ["Q_EARTH_SA"]),
    ("Q_JORDAN_MN", 6_000, US_TOWN, ["Q_US", "Q_MN", "Q_EARTH_NA"]),
]
ALIASES = {"Peru": ["Q_PERU", "Q_PERU_IL"], "Jordan": ["Q_JORDAN", "Q_JORDAN_MN"],
           "Austin": ["Q_AUSTIN"], "Shakopee": ["Q_SHAKOPEE"], "Illinois": ["Q_IL"],
           "Texas": ["Q_TX"]}


def _kb(nlp):
    kb = InMemoryLookupKB(nlp.vocab, entity_vector_length=2)
    ids = [p[0] for p in PLACES]
    kb.set_entities(ids, [p[1] for p in PLACES], [p[2] for p in PLACES])
    population = {p[0]: p[1] for p in PLACES}
    for alias, entities in ALIASES.items():
        total = sum(population[e] for e in entities)
        kb.add_alias(alias, entities, [0.999 * population[e] / total for e in entities])
    children = [p[0] for p in PLACES for _ in p[3]]
    parents = [parent for p in PLACES for parent in p[3]]
    kb.set_relations(children, parents)
    return kb


def _linker(prior_gate):
    """Prior-only softmax linking with a strong coherence: the doc's US places
    pull every namesake towards the US town (as a geographic context model does)."""
    nlp = spacy.blank("en")
    kb = _kb(nlp)
    nel = nlp.add_pipe("nel", config={"scoring": "softmax", "incl_context": False,
                                      "coherence": 20.0, "containment": 16.0,
                                      "prior_gate": prior_gate, "entity_vector_length": 2})
    nel.set_kb(lambda vocab: kb)
    return nlp, nel


def _linked(nlp, nel, text, names):
    doc = nlp.make_doc(text)
    doc.ents = [doc.char_span(text.index(n), text.index(n) + len(n), label="LOC")
                for n in names]
    return {e.text: e.kb_id_ for e in nel(doc).ents}


@pytest.mark.parametrize("gate", [None, 0.01])
def test_a_country_is_not_overturned_by_a_namesake_the_doc_does_not_place(gate):
    nlp, nel = _linker(gate)
    linked = _linked(nlp, nel, "Flights from Austin , Texas to Peru", ["Austin", "Texas", "Peru"])
    assert linked["Peru"] == ("Q_PERU_IL" if gate is None else "Q_PERU")


def test_a_namesake_the_doc_places_still_wins_through_the_gate():
    nlp, nel = _linker(0.01)
    # Containment: Illinois is named beside it.
    assert _linked(nlp, nel, "Peru , Illinois", ["Peru", "Illinois"])["Peru"] == "Q_PERU_IL"
    # Sibling: another place of the same state is named in the doc.
    linked = _linked(nlp, nel, "From Shakopee to Jordan", ["Shakopee", "Jordan"])
    assert linked["Jordan"] == "Q_JORDAN_MN"


def test_the_gated_candidate_scores_zero():
    nlp, nel = _linker(0.01)
    text = "Flights from Austin , Texas to Peru"
    doc = nlp.make_doc(text)
    doc.ents = [doc.char_span(text.index("Peru"), text.index("Peru") + 4, label="LOC"),
                doc.char_span(text.index("Austin"), text.index("Austin") + 6, label="LOC")]
    doc.ents = sorted(doc.ents, key=lambda e: e.start)
    peru = [e for e in nel(doc).ents if e.text == "Peru"][0]
    assert dict(peru._.kb_candidates).get("Q_PERU_IL", 0.0) == 0.0
    assert peru._.kb_score == pytest.approx(1.0)


def test_sibling_evidence_is_a_region_shared_with_another_mention():
    nlp = spacy.blank("en")
    kb = _kb(nlp)
    texts = ["Jordan", "Shakopee", "Austin", "Peru"]
    offsets, rows, priors = kb.lookup_aliases(texts)
    ancestors = kb.ancestor_rows(rows)
    regional = regional_ancestors(kb, ancestors)
    # Only the states are regions (the US and the continents are too wide).
    region_ids = {kb.get_entity_id(int(r)) for r in ancestors[1][regional]}
    assert region_ids == {"Q_MN", "Q_TX", "Q_IL"}
    values = sibling(offsets, priors, ancestors, regional, docs=[0, 0, 0, 1],
                     groups=[0, 1, 2, 3])
    by_id = {kb.get_entity_id(int(r)): float(v) for r, v in zip(rows, values)}
    assert by_id["Q_JORDAN_MN"] == pytest.approx(0.999)  # Shakopee's prior
    assert by_id["Q_SHAKOPEE"] > 0  # Jordan, MN's (small) prior
    assert by_id["Q_JORDAN"] == by_id["Q_AUSTIN"] == 0.0
    assert by_id["Q_PERU_IL"] == 0.0  # Peru is alone in doc 1
    # Shakopee does not vote (e.g. its label is discarded): no evidence for Jordan, MN.
    muted = sibling(offsets, priors, ancestors, regional, docs=[0, 0, 0, 1],
                    groups=[0, 1, 2, 3], include=[True, False, True, True])
    jordan_mn = int(numpy.flatnonzero(rows == kb.get_entity_rows(["Q_JORDAN_MN"])[0])[0])
    assert float(muted[jordan_mn]) == 0.0


@pytest.mark.parametrize("value", [0, 1.5, -0.1, True])
def test_prior_gate_must_lie_in_zero_one(value):
    with pytest.raises(ValueError, match="prior_gate"):
        spacy.blank("en").add_pipe("nel", config={"scoring": "softmax", "prior_gate": value})


def test_prior_gate_needs_a_softmax_scoring():
    with pytest.raises(ValueError, match="prior_gate"):
        spacy.blank("en").add_pipe("nel", config={"prior_gate": 0.01})


def test_the_sibling_weight_pulls_a_namesake_to_the_region_the_doc_names():
    results = {}
    for weight in (0.0, 12.0):
        nlp = spacy.blank("en")
        kb = _kb(nlp)
        nel = nlp.add_pipe("nel", config={"scoring": "softmax", "incl_context": False,
                                          "sibling": weight, "entity_vector_length": 2})
        nel.set_kb(lambda vocab, kb=kb: kb)
        nel.explain = True
        text = "From Shakopee to Jordan"
        doc = nlp.make_doc(text)
        doc.ents = [doc.char_span(text.index(n), text.index(n) + len(n), label="LOC")
                    for n in ("Shakopee", "Jordan")]
        jordan = nel(doc).ents[1]
        results[weight] = jordan.kb_id_
        if weight:
            assert "sibling" in str(jordan._.kb_evidence)
    # The prior alone picks the country; Shakopee's state pulls the town.
    assert results == {0.0: "Q_JORDAN", 12.0: "Q_JORDAN_MN"}


def test_the_sibling_weight_needs_the_softmax_scoring():
    with pytest.raises(ValueError, match="sibling"):
        spacy.blank("en").add_pipe("nel", config={"scoring": "learned",
                                                  "candidate_loss_weight": 1.0, "sibling": 4.0})


def test_explain_says_when_the_prior_gate_decided():
    nlp, nel = _linker(0.01)
    nel.explain = True
    text = "Flights from Austin , Texas to Peru"
    doc = nlp.make_doc(text)
    doc.ents = [doc.char_span(text.index(n), text.index(n) + len(n), label="LOC")
                for n in ("Austin", "Texas", "Peru")]
    evidence = nel(doc).ents[-1]._.kb_evidence
    assert evidence["decided_by"] == "prior gate"
    assert evidence["rival"] == "Q_PERU_IL"
    # Where the doc places the town, the gate is not what decided.
    evidence = next(e for e in nel(_doc(nlp, "Peru , Illinois", ["Peru", "Illinois"])).ents
                    if e.text == "Peru")._.kb_evidence
    assert evidence["decided_by"] != "prior gate"


def _doc(nlp, text, names):
    doc = nlp.make_doc(text)
    doc.ents = [doc.char_span(text.index(n), text.index(n) + len(n), label="LOC")
                for n in names]
    return doc

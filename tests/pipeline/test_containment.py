"""Containment: a place named beside (or elsewhere in the doc of) a mention
that contains one of its candidates, read from the KB's relations."""

import numpy
import pytest
import spacy
from spacy.tokens import Span

from entity_linker import InMemoryLookupKB
from entity_linker.pipeline import container_mentions
from entity_linker.scoring import DOC_CONTAINMENT, RELATION_PRIOR_POWER, containment


def ancestors_of(table):
    """(offsets, rows) CSR from a list of ancestor lists."""
    offsets = numpy.zeros(len(table) + 1, dtype=numpy.int64)
    numpy.cumsum([len(a) for a in table], out=offsets[1:])
    return offsets, numpy.asarray([r for a in table for r in a], dtype=numpy.int64)


# Entity rows: 0 Illinois, 1 Missouri, 2 Springfield IL, 3 Springfield MO.
# Mentions: "Springfield" (candidates 2, 3), "Illinois" (candidate 0).
OFFSETS = numpy.array([0, 2, 3])
ROWS = numpy.array([2, 3, 0])
PRIORS = numpy.array([0.4, 0.6, 1.0])
ANCESTORS = ancestors_of([[0], [1], []])


def test_a_container_named_right_after_counts_fully():
    values = containment(OFFSETS, ROWS, PRIORS, ANCESTORS, [0, 0], [0, 1], [1, -1])
    assert values.tolist() == pytest.approx([1.0, 0.0, 1.0])  # Illinois holds a Springfield


def test_a_container_elsewhere_in_the_doc_counts_less():
    values = containment(OFFSETS, ROWS, PRIORS, ANCESTORS, [0, 0], [0, 1], [-1, -1])
    # Illinois's evidence is its prior (1.0); Springfield IL's, for the state, is
    # its prior 0.4 to RELATION_PRIOR_POWER: the relation makes it likelier.
    assert values.tolist() == pytest.approx(
        [DOC_CONTAINMENT, 0.0, DOC_CONTAINMENT * 0.4**RELATION_PRIOR_POWER])
    assert 0.4**RELATION_PRIOR_POWER > 0.4


def test_other_docs_and_excluded_mentions_give_no_evidence():
    assert not containment(OFFSETS, ROWS, PRIORS, ANCESTORS, [0, 1], [0, 1], [-1, -1]).any()
    values = containment(OFFSETS, ROWS, PRIORS, ANCESTORS, [0, 0], [0, 1], [1, -1],
                         include=[True, False])
    assert values.tolist() == pytest.approx([0.0, 0.0, 1.0])


def test_a_mention_gives_no_evidence_to_its_own_group():
    # "Georgia ... Georgia": the state (row 0) of one mention does not contain
    # the town (row 2) of the other mention with the same text.
    offsets = numpy.array([0, 2, 4])
    rows = numpy.array([0, 2, 0, 2])
    priors = numpy.array([0.9, 0.1, 0.9, 0.1])
    ancestors = ancestors_of([[], [0], [], [0]])
    assert not containment(offsets, rows, priors, ancestors, [0, 0], [0, 0], [-1, -1]).any()
    assert containment(offsets, rows, priors, ancestors, [0, 0], [0, 1], [-1, -1]).any()


def test_candidates_unknown_to_the_kb_get_nothing():
    rows = numpy.array([2, -1, 0])
    values = containment(OFFSETS, rows, PRIORS, ancestors_of([[0], [], []]), [0, 0], [0, 1],
                         [1, -1])
    assert values[1] == 0.0 and values[0] == 1.0


@pytest.mark.parametrize("text, expected", [
    ("Springfield, Illinois", [1, -1]),
    ("Paris (Texas)", [1, -1]),
    ("Cambridge in England", [1, -1]),
    ("Springfield and Illinois", [-1, -1]),
    ("Springfield near Illinois", [-1, -1]),
    ("Springfield. Illinois", [-1, -1]),
])
def test_container_mentions_follow_the_patterns_of_news(text, expected):
    nlp = spacy.blank("en")
    doc = nlp(text)
    doc.ents = [Span(doc, 0, 1, label="LOC"), Span(doc, len(doc) - 1 - (text[-1] == ")"),
                                                   len(doc) - (text[-1] == ")"), label="LOC")]
    assert container_mentions(list(doc.ents)) == expected


def places_kb(vocab):
    kb = InMemoryLookupKB(vocab, 2)
    ids = ["US", "IL", "MO", "Spr_IL", "Spr_MO"]
    kb.set_entities(ids, [1.0] * 5, [[1.0, 0.0]] * 5)
    kb.add_alias("Springfield", ["Spr_IL", "Spr_MO"], [0.3, 0.7])
    kb.add_alias("Illinois", ["IL"], [1.0])
    kb.add_alias("Missouri", ["MO"], [1.0])
    kb.set_relations(["IL", "MO", "Spr_IL", "Spr_MO", "Spr_IL", "Spr_MO"],
                     ["US", "US", "IL", "MO", "US", "US"])
    return kb


@pytest.mark.parametrize("weight, text, expected", [
    (0.0, "from Springfield, Illinois", "Spr_MO"),
    (8.0, "from Springfield, Illinois", "Spr_IL"),
    (8.0, "from Springfield, Missouri", "Spr_MO"),
    (8.0, "in Illinois we met at Springfield", "Spr_IL"),
    (8.0, "from Springfield", "Spr_MO"),
])
def test_nel_links_the_place_its_container_names(weight, text, expected):
    nlp = spacy.blank("en")
    nel = nlp.add_pipe("nel", config={"scoring": "softmax", "incl_context": False,
                                      "containment": weight})
    nel.set_kb(places_kb)
    doc = nlp.make_doc(text)
    doc.ents = [Span(doc, i, i + 1, label="LOC") for i, token in enumerate(doc)
                if token.text in ("Springfield", "Illinois", "Missouri")]
    doc = nel(doc)
    assert {e.text: e.kb_id_ for e in doc.ents}["Springfield"] == expected


def test_containment_needs_a_softmax_scoring():
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="containment"):
        nlp.add_pipe("nel", config={"containment": 4.0})
    with pytest.raises(ValueError, match="containment"):
        nlp.add_pipe("nel", name="nel2", config={"scoring": "softmax", "containment": -1.0})


def test_explain_says_containment_overturned_the_prior():
    nlp = spacy.blank("en")
    nel = nlp.add_pipe("nel", config={"scoring": "softmax", "incl_context": False,
                                      "containment": 8.0})
    nel.set_kb(places_kb)
    nel.explain = True
    doc = nlp.make_doc("from Springfield, Illinois")
    doc.ents = [Span(doc, 1, 2, label="LOC"), Span(doc, 3, 4, label="LOC")]
    springfield, illinois = nel(doc).ents
    evidence = springfield._.kb_evidence
    assert springfield.kb_id_ == "Spr_IL" and evidence["rival"] == "Spr_MO"
    assert evidence["decided_by"] == "containment"
    assert evidence["margins"]["prior"] == pytest.approx(numpy.log(0.3 / 0.7), abs=1e-3)
    assert evidence["evidence"]["containment"] == pytest.approx(8.0)
    assert illinois._.kb_evidence["decided_by"] == "only candidate"
    nel.explain = False
    doc = nlp.make_doc("from Springfield, Illinois")
    doc.ents = [Span(doc, 1, 2, label="LOC")]
    assert nel(doc).ents[0]._.kb_evidence is None  # explanations only when asked


def test_scorer_components_add_up_to_the_score():
    from entity_linker.candidates import CandidateTable
    from entity_linker.scoring import CandidateScorer, segment_softmax

    offsets = numpy.array([0, 2, 3])
    priors = numpy.array([0.3, 0.7, 1.0], dtype=numpy.float32)
    table = CandidateTable(None, offsets, priors, numpy.zeros((3, 2), numpy.float32),
                           numpy.array([5, 6, 7], dtype=numpy.uint64))
    sims = numpy.array([0.2, -0.1, 0.5])
    contained = numpy.array([1.0, 0.0, 0.5])
    spacy_scorer = CandidateScorer("spacy", True, True)
    parts = spacy_scorer.components(table, sims)
    assert parts["prior"] + parts["context"] == pytest.approx(spacy_scorer.scores(table, sims))
    softmax = CandidateScorer("softmax", True, True, containment_weight=4.0)
    parts = softmax.components(table, sims, containment_values=contained)
    assert set(parts) == {"prior", "context", "containment"}
    total = sum(parts.values())
    assert segment_softmax(total, offsets) == pytest.approx(
        softmax.scores(table, sims, containment_values=contained), abs=1e-6)


def test_nil_logit_lets_the_threshold_turn_a_lone_weak_candidate_into_nil():
    nlp = spacy.blank("en")
    config = {"scoring": "softmax", "incl_context": False, "threshold": 0.5}
    lone = nlp.add_pipe("nel", name="lone", config=config)
    lone.set_kb(places_kb)
    doc = nlp.make_doc("in Illinois")
    doc.ents = [Span(doc, 1, 2, label="LOC")]
    assert lone(doc).ents[0].kb_id_ == "IL"  # alone, it scores 1 whatever the evidence
    lone.nil_logit = 1.0  # log prior 0 against a NIL logit of 1: score 0.27
    doc.ents = [Span(doc, 1, 2, label="LOC")]
    linked = lone(doc).ents[0]
    assert linked.kb_id_ == "NIL" and linked._.kb_score == pytest.approx(1 / (1 + numpy.e))
    with pytest.raises(ValueError, match="nil_logit"):
        nlp.add_pipe("nel", name="bad", config={"nil_logit": 1.0})  # spaCy scoring

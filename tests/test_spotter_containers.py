"""``kb_spotter``'s ``containers`` setting: the place right after an entity that
contains it ("Portland, Maine") is spotted even below ``min_freq``."""

import pytest
import spacy

from entity_linker import InMemoryLookupKB


def build_kb(vocab, relations: bool = True) -> InMemoryLookupKB:
    kb = InMemoryLookupKB(vocab, entity_vector_length=1)
    ids = ["PDX", "PWM", "OR", "ME", "US", "BOS"]
    kb.set_entities(ids, [650e3, 68e3, 4e6, 1.3e6, 330e6, 650e3], [[1.0]] * len(ids))
    kb.add_alias("Portland", ["PDX", "PWM"], [0.8, 0.2])
    kb.add_alias("Oregon", ["OR"], [1.0])
    kb.add_alias("Maine", ["ME"], [1.0])
    kb.add_alias("United States", ["US"], [1.0])
    kb.add_alias("Boston", ["BOS"], [1.0])
    if relations:
        kb.set_relations(["PDX", "PWM", "OR", "ME"], ["OR", "ME", "US", "US"])
    kb.build_alias_index()
    return kb


def spotted(text: str, first: str, containers: bool = True, relations: bool = True):
    """The entities after the spotter, given an NER that found `first` only."""
    nlp = spacy.blank("en")
    kb = build_kb(nlp.vocab, relations)
    spotter = nlp.add_pipe("kb_spotter", config={"label": "LOC", "min_freq": 1e7,
                                                 "containers": containers})
    spotter.set_kb(lambda vocab: kb)
    doc = nlp.make_doc(text)
    start = text.index(first)
    doc.ents = [doc.char_span(start, start + len(first), label="LOC")]
    return [e.text for e in spotter(doc).ents]


@pytest.mark.parametrize("text", ["She flew from Portland, Maine today.",
                                  "She flew from Portland (Maine) today.",
                                  "She stayed in Portland in Maine."])
def test_a_container_right_after_an_entity_is_spotted(text):
    assert spotted(text, "Portland") == ["Portland", "Maine"]
    assert spotted(text, "Portland", containers=False) == ["Portland"]


def test_any_candidates_container_counts_not_only_the_best_ones():
    assert spotted("Portland, Oregon and Portland, Maine.", "Portland") == ["Portland", "Oregon"]


def test_a_place_that_contains_no_candidate_is_not_spotted():
    # Boston is in no state in this KB.
    assert spotted("From Boston, Maine is a drive.", "Boston") == ["Boston"]
    assert spotted("Portland and Maine.", "Portland") == ["Portland"]  # not ",", "(" or "in"
    assert spotted("Maine, Portland.", "Portland") == ["Portland"]  # before, not after


def test_frequent_places_are_spotted_anyway_and_a_kb_without_relations_is_fine():
    assert spotted("Portland, United States.", "Portland") == ["Portland", "United States"]
    assert spotted("Portland, Maine.", "Portland", relations=False) == ["Portland"]


def test_containers_is_saved_with_the_component(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("kb_spotter", config={"containers": True,
                                       "kb_loader": None}).set_kb(lambda v: build_kb(v))
    nlp.to_disk(tmp_path / "p")
    assert spacy.load(tmp_path / "p").get_pipe("kb_spotter").cfg["containers"] is True


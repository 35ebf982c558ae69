"""entity_linker.candidates: the array-generator protocol and its dispatch, the
flat candidate arrays' maths and CandidateTable.

The KB (``kb``): "Paris" -> P_FR [1, 0] (0.75), P_TX [0, 1] (0.25);
"Texas" -> P_TX (1.0); "Nowhere" has no alias.
"""

import numpy
import pytest
import spacy
from hypothesis import given
from hypothesis import strategies as st
from spacy.tokens import Span
from spacy.util import registry

from entity_linker import InMemoryLookupKB, KnowledgeBase
from entity_linker.candidates import (
    ArrayCandidateGenerator,
    CandidateArrays,
    CandidateGenerator,
    CandidateTable,
    CascadeCandidates,
    ExactCandidates,
    KBBatchCandidates,
    concatenated_ranges,
    get_candidates,
    get_candidates_batch,
    lookup_candidates,
    merge_stages,
)
from entity_linker.candidates.arrays import mention_ids, offsets_of, spread
from entity_linker.kb import Candidate


class RecordingKB(InMemoryLookupKB):
    """An InMemoryLookupKB that records the mention texts its Candidate lookup gets."""

    def get_candidates_batch(self, mentions):
        mentions = list(mentions)
        self.batch_calls.append([m.text for m in mentions])
        return super().get_candidates_batch(mentions)


class OtherKB(KnowledgeBase):
    """A KB that is not an InMemoryLookupKB: candidates through its own lookup only."""

    def __init__(self, vocab, inner):
        super().__init__(vocab, inner.entity_vector_length)
        self.inner = inner
        self.batch_calls = []

    def get_candidates(self, mention):
        return self.inner.get_candidates(mention)

    def get_candidates_batch(self, mentions):
        mentions = list(mentions)
        self.batch_calls.append([m.text for m in mentions])
        return [self.inner.get_candidates(m) for m in mentions]


def _fill(kb):
    kb.add_entity("P_FR", 10.0, [1.0, 0.0])
    kb.add_entity("P_TX", 2.0, [0.0, 1.0])
    kb.add_alias("Paris", ["P_FR", "P_TX"], [0.75, 0.25])
    kb.add_alias("Texas", ["P_TX"], [1.0])
    return kb


def _recording_kb(vocab):
    kb = _fill(RecordingKB(vocab, 2))
    kb.batch_calls = []
    return kb


@pytest.fixture
def kb(nlp):
    return _recording_kb(nlp.vocab)


@pytest.fixture
def spans(nlp):
    doc = nlp.make_doc("Paris Nowhere Texas")
    return [Span(doc, i, i + 1, label="LOC") for i in range(3)]


def _ids(table):
    return table.entity_ids(range(table.n_candidates))


class ArraysOnlyByProtocol:
    """A user's array generator that does not subclass CandidateGenerator:
    every mention gets the candidates of "Texas"."""

    def __init__(self):
        self.array_calls, self.calls = [], []

    def arrays(self, kb, texts):
        self.array_calls.append(list(texts))
        found = ExactCandidates().arrays(kb, ["Texas"] * len(texts))
        return found

    def __call__(self, kb, mentions):
        self.calls.append(list(mentions))
        return kb.candidates_from_arrays(*self.arrays(kb, [m.text for m in mentions]))


def spacy_style_generator(kb, mentions):
    """A plain spaCy-style batch generator: Candidate lists (every mention -> "Paris")."""
    spacy_style_generator.calls.append([m.text for m in mentions])
    return [kb.get_alias_candidates("Paris") for _ in mentions]


# ------------------------------------------------------------------ protocol


def test_which_generators_are_array_generators():
    assert isinstance(get_candidates_batch, ArrayCandidateGenerator)
    assert isinstance(get_candidates_batch, KBBatchCandidates)
    assert isinstance(CascadeCandidates(), ArrayCandidateGenerator)
    assert isinstance(ArraysOnlyByProtocol(), ArrayCandidateGenerator)
    assert not isinstance(spacy_style_generator, ArrayCandidateGenerator)
    assert not isinstance(get_candidates, ArrayCandidateGenerator)

    class NoCall:
        def arrays(self, kb, texts):
            raise AssertionError

    assert not isinstance(NoCall(), ArrayCandidateGenerator)


def test_the_default_is_a_drop_in_spacy_batch_generator(kb, spans):
    got = get_candidates_batch(kb, spans)
    assert kb.batch_calls == [["Paris", "Nowhere", "Texas"]]
    assert [[c.entity_ for c in cands] for cands in got] == [["P_FR", "P_TX"], [], ["P_TX"]]
    assert all(isinstance(c, Candidate) for cands in got for c in cands)
    assert [c.prior_prob for c in got[0]] == pytest.approx([0.75, 0.25])
    # The batch generator registered for configs is the same object.
    resolved = registry.resolve({"g": {"@misc": "entity_linker.CandidateBatchGenerator.v1"}})
    assert resolved["g"] is get_candidates_batch


def test_the_default_takes_the_kbs_batched_array_lookup(kb, spans):
    table = lookup_candidates(kb, get_candidates_batch, spans)
    assert kb.batch_calls == []  # no Candidate objects
    assert table.offsets.tolist() == [0, 2, 2, 3]
    assert _ids(table) == ["P_FR", "P_TX", "P_TX"]
    assert table.priors.tolist() == pytest.approx([0.75, 0.25, 1.0])
    assert table.entity_rows().tolist() == [0, 1, 1]
    assert table.vectors.tolist() == [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]
    assert table.freqs.tolist() == [10.0, 2.0, 2.0]
    # The same table as through Candidate objects.
    slow = CandidateTable.from_candidates(kb, kb.get_candidates_batch(spans))
    assert _ids(slow) == _ids(table)
    assert slow.offsets.tolist() == table.offsets.tolist()
    assert slow.keys.tolist() == table.keys.tolist()


def test_the_default_on_another_kb_calls_its_batch_lookup(nlp, spans):
    other = OtherKB(nlp.vocab, _fill(InMemoryLookupKB(nlp.vocab, 2)))
    table = lookup_candidates(other, get_candidates_batch, spans)
    assert other.batch_calls == [["Paris", "Nowhere", "Texas"]]
    assert _ids(table) == ["P_FR", "P_TX", "P_TX"]


def test_a_users_array_generator_takes_the_array_path(kb, spans):
    generator = ArraysOnlyByProtocol()
    table = lookup_candidates(kb, generator, spans)
    assert generator.array_calls == [["Paris", "Nowhere", "Texas"]]
    assert generator.calls == [] and kb.batch_calls == []
    assert _ids(table) == ["P_TX", "P_TX", "P_TX"]
    assert table.entity_rows().tolist() == [1, 1, 1]


def test_an_array_generator_on_another_kb_is_called(nlp, spans):
    other = OtherKB(nlp.vocab, _fill(InMemoryLookupKB(nlp.vocab, 2)))

    class ThroughTheKB(ArraysOnlyByProtocol):
        def __call__(self, kb, mentions):
            self.calls.append(list(mentions))
            return kb.get_candidates_batch(mentions)

    generator = ThroughTheKB()
    table = lookup_candidates(other, generator, spans)
    assert generator.array_calls == [] and len(generator.calls) == 1
    assert _ids(table) == ["P_FR", "P_TX", "P_TX"]


def test_a_spacy_style_callable_goes_through_candidate_objects(kb, spans):
    spacy_style_generator.calls = []
    table = lookup_candidates(kb, spacy_style_generator, spans)
    assert spacy_style_generator.calls == [["Paris", "Nowhere", "Texas"]]
    assert table._ids == ["P_FR", "P_TX"] * 3 and table._rows is None
    assert table.offsets.tolist() == [0, 2, 4, 6]
    assert table.entity_rows().tolist() == [0, 1] * 3


def test_a_candidate_generator_subclass_needs_only_arrays(kb, spans):
    class TexasOnly(CandidateGenerator):
        name = "texas"

        def arrays(self, kb, texts):
            return ExactCandidates().arrays(kb, ["Texas"] * len(texts))

    generator = TexasOnly()
    assert isinstance(generator, ArrayCandidateGenerator)
    assert [[c.entity_ for c in cands] for cands in generator(kb, spans)] == [["P_TX"]] * 3
    assert [c.entity_ for c in generator(kb, spans[0])] == ["P_TX"]
    assert _ids(lookup_candidates(kb, generator, spans)) == ["P_TX"] * 3


def test_nel_uses_a_registered_array_generator_without_candidate_objects():
    made = []

    @registry.misc("test_candidates.TexasArrays.v1")
    def texas_arrays():
        made.append(ArraysOnlyByProtocol())
        return made[-1]

    nlp = spacy.blank("en")
    nel = nlp.add_pipe("nel", config={
        "incl_context": False,
        "get_candidates_batch": {"@misc": "test_candidates.TexasArrays.v1"},
    })
    kb = _recording_kb(nlp.vocab)
    nel.set_kb(lambda vocab: kb)
    nlp.initialize()
    doc = nlp.make_doc("Paris and Nowhere")
    doc.ents = [Span(doc, 0, 1, label="LOC"), Span(doc, 2, 3, label="LOC")]
    doc = nel(doc)
    assert [ent.kb_id_ for ent in doc.ents] == ["P_TX", "P_TX"]
    assert nel.get_candidates_batch is made[-1]
    assert made[-1].array_calls == [["Paris", "Nowhere"]] and made[-1].calls == []
    assert kb.batch_calls == []


# ------------------------------------------------------------------- arrays


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 5)), max_size=8))
def test_concatenated_ranges_is_the_concatenation_of_aranges(pairs):
    starts = [s for s, _ in pairs]
    counts = [c for _, c in pairs]
    expected = [j for s, c in pairs for j in range(s, s + c)]
    got = concatenated_ranges(starts, counts)
    assert got.dtype == numpy.int64
    assert got.tolist() == expected


def test_concatenated_ranges_of_nothing_is_empty():
    assert concatenated_ranges([], []).tolist() == []
    assert concatenated_ranges([3, 7], [0, 0]).tolist() == []
    assert concatenated_ranges([5, 1], [2, 3]).tolist() == [5, 6, 1, 2, 3]


def _arrays(offsets, entities, priors=None, aliases=None):
    n = len(entities)
    return CandidateArrays(
        numpy.asarray(offsets, numpy.int64), numpy.asarray(entities, numpy.uint32),
        numpy.asarray(priors if priors is not None else [1.0] * n, numpy.float32),
        numpy.asarray(aliases if aliases is not None else [0] * n, numpy.int64))


def test_mention_ids_and_offsets_of_are_inverse():
    offsets = numpy.array([0, 2, 2, 5], dtype=numpy.int64)
    ids = mention_ids(offsets)
    assert ids.tolist() == [0, 0, 2, 2, 2]
    assert offsets_of(ids, 3).tolist() == offsets.tolist()
    assert offsets_of(numpy.zeros(0, numpy.int64), 2).tolist() == [0, 0, 0]


def test_spread_reindexes_a_subset_of_mentions():
    found = _arrays([0, 1, 3], [7, 8, 9])  # mentions 1 and 3 of 5
    spread_out = spread(found, numpy.array([1, 3]), 5)
    assert spread_out.offsets.tolist() == [0, 0, 1, 1, 3, 3]
    assert spread_out.entity_rows.tolist() == [7, 8, 9]


def test_merge_stages_keeps_stage_order_first_occurrences_and_the_limit():
    first = _arrays([0, 2, 2], [5, 6], [0.9, 0.1], [1, 1])
    second = _arrays([0, 2, 4], [6, 7, 5, 3], [0.8, 0.7, 0.6, 0.5], [2, 2, 3, 3])
    merged = merge_stages([first, second], 2)
    assert merged.offsets.tolist() == [0, 3, 5]
    assert merged.entity_rows.tolist() == [5, 6, 7, 5, 3]
    # A duplicate keeps the prior and alias row of its first stage.
    assert merged.priors.tolist() == pytest.approx([0.9, 0.1, 0.7, 0.6, 0.5])
    assert merged.alias_rows.tolist() == [1, 1, 2, 3, 3]
    limited = merge_stages([first, second], 2, limit=1)
    assert limited.offsets.tolist() == [0, 1, 2]
    assert limited.entity_rows.tolist() == [5, 5]
    empty = merge_stages([], 3)
    assert empty.offsets.tolist() == [0, 0, 0, 0] and len(empty.entity_rows) == 0


# -------------------------------------------------------------------- table


def _table():
    """mention 0: A (0.5), B (0.5), C (0.2); mention 1: none; mention 2: D (1.0)."""
    offsets = numpy.array([0, 3, 3, 4], dtype=numpy.int64)
    priors = numpy.array([0.5, 0.5, 0.2, 1.0], dtype=numpy.float32)
    vectors = numpy.arange(8, dtype=numpy.float32).reshape(4, 2)
    keys = numpy.array([11, 12, 13, 14], dtype=numpy.uint64)
    freqs = numpy.array([1.0, 2.0, 3.0, 4.0], dtype=numpy.float32)
    return CandidateTable(None, offsets, priors, vectors, keys, ids=["B", "A", "C", "D"],
                          freqs=freqs)


def test_positions_are_the_candidates_of_the_mentions_in_order():
    table = _table()
    assert table.positions([2, 0]).tolist() == [3, 0, 1, 2]
    assert table.positions([1]).tolist() == []
    assert table.positions([]).tolist() == []


def test_select_keeps_the_chosen_mentions_candidates():
    table = _table()
    picked = table.select([2, 1, 0])
    assert picked.offsets.tolist() == [0, 1, 1, 4]
    assert picked.priors.tolist() == pytest.approx([1.0, 0.5, 0.5, 0.2])
    assert picked.vectors.tolist() == [[6, 7], [0, 1], [2, 3], [4, 5]]
    assert picked.keys.tolist() == [14, 11, 12, 13]
    assert _ids(picked) == ["D", "B", "A", "C"]
    assert picked.freqs.tolist() == [4.0, 1.0, 2.0, 3.0]
    assert picked.n_candidates == 4
    assert table.select([]).offsets.tolist() == [0]


def test_select_of_a_kb_table_keeps_the_rows(kb, spans):
    table = lookup_candidates(kb, get_candidates_batch, spans)
    picked = table.select([2])
    assert picked.entity_rows().tolist() == [1]
    assert _ids(picked) == ["P_TX"] and picked.freqs.tolist() == [2.0]


def test_ranked_sorts_each_mention_by_score_prior_then_entity_id():
    table = _table()
    # A and B tie on score and prior: the entity id decides (A before B).
    scores = numpy.array([0.3, 0.3, 0.9, 0.1])
    assert table.ranked(scores).tolist() == [2, 1, 0, 3]
    # The prior breaks a tie of scores.
    table.priors = numpy.array([0.6, 0.5, 0.2, 1.0], dtype=numpy.float32)
    assert table.ranked(scores).tolist() == [2, 0, 1, 3]
    assert table.ranked(numpy.array([0.1, 0.2, 0.3, 0.0])).tolist() == [2, 1, 0, 3]


def test_entity_ids_of_a_kb_table_read_each_row_once(kb, spans):
    table = lookup_candidates(kb, get_candidates_batch, spans)
    assert table.entity_ids([2, 0, 1, 2]) == ["P_TX", "P_FR", "P_TX", "P_TX"]
    assert table.entity_id(0) == "P_FR"


def test_from_candidates_of_no_mentions_and_no_candidates(kb):
    empty = CandidateTable.from_candidates(kb, [])
    assert empty.offsets.tolist() == [0] and empty.n_candidates == 0
    none = CandidateTable.from_candidates(kb, [[], []])
    assert none.offsets.tolist() == [0, 0, 0] and none.vectors.shape == (0, 2)
    assert lookup_candidates(kb, get_candidates_batch, []).offsets.tolist() == [0]

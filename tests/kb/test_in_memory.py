"""The public API of entity_linker.InMemoryLookupKB (reference: spacy.kb.InMemoryLookupKB)."""

import pickle
import warnings

import numpy
import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entity_linker import Candidate, InMemoryLookupKB
from entity_linker.errors import (
    EmptyStringError,
    KBError,
    KBFormatError,
    KBTypeError,
    KBWarning,
    LengthMismatchError,
    ProbabilityError,
    UnknownAliasError,
    UnknownEntityError,
    VectorError,
)
from entity_linker.kb import hash_string

NON_STR_IDS = [5, None, b"Q1", 1.5, ("Q1",)]


def candidate_tuples(kb, alias):
    return [(c.entity_, pytest.approx(c.prior_prob)) for c in kb.get_alias_candidates(alias)]


# ------------------------------------------------------------------ constructor


def test_constructor_creates_empty_writable_kb_with_given_vector_length(vocab):
    kb = InMemoryLookupKB(vocab, entity_vector_length=7)
    assert kb.entity_vector_length == 7
    assert kb.is_empty()
    assert len(kb) == 0
    assert kb.get_size_aliases() == 0
    assert not kb.is_read_only
    assert kb.path is None
    assert kb.vectors.shape == (0, 7)


def test_constructor_rejects_negative_vector_length_with_vector_error(vocab):
    with pytest.raises(VectorError, match="entity_vector_length"):
        InMemoryLookupKB(vocab, -1)


@pytest.mark.parametrize("bad_length", ["3", None, [3]])
def test_constructor_rejects_non_numeric_vector_length_with_type_error(vocab, bad_length):
    with pytest.raises(TypeError):
        InMemoryLookupKB(vocab, bad_length)


@pytest.mark.parametrize("bad_length", ["3", None])
def test_constructor_non_int_vector_length_raises_kb_type_error(vocab, bad_length):
    with pytest.raises(KBTypeError) as info:
        InMemoryLookupKB(vocab, bad_length)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad_length", [2.5, 3.99, True])
def test_constructor_rejects_float_or_bool_vector_length_instead_of_truncating(
    vocab, bad_length
):
    with pytest.raises(KBTypeError):
        InMemoryLookupKB(vocab, bad_length)


def test_constructor_accepts_zero_vector_length(vocab):
    kb = InMemoryLookupKB(vocab, 0)
    kb.add_entity("Q1", 1.0, [])
    assert kb.get_vector("Q1") == []


def test_constructor_accepts_numpy_integer_vector_length_like_spacy(vocab):
    spacy_kb = spacy.kb.InMemoryLookupKB(vocab, numpy.int64(3))
    kb = InMemoryLookupKB(vocab, numpy.int64(3))
    assert kb.entity_vector_length == spacy_kb.entity_vector_length == 3
    kb.add_entity("Q1", 1.0, [0.0, 0.0, 0.0])


# ------------------------------------------------------------------ add_entity


def test_add_entity_returns_hash_equal_to_vocab_string_hash(vocab):
    kb = InMemoryLookupKB(vocab, 2)
    for entity in ["Q42", "Zürich", "東京", "Q🦄"]:
        entity_hash = kb.add_entity(entity, 3.0, [1.0, 2.0])
        assert entity_hash == vocab.strings[entity]
        assert entity_hash == hash_string(entity)


def test_strings_go_to_the_vocab_only_with_add_to_vocab(fresh_vocab):
    vocab = fresh_vocab
    kb = InMemoryLookupKB(vocab, 1)
    kb.add_entity("Q_not_in_vocab", 1.0, [0.5])
    kb.set_entities(["Q_set_not_in_vocab"], [1.0], [[0.5]])
    kb.add_alias("alias_not_in_vocab", ["Q_set_not_in_vocab"], [0.5])
    for text in ("Q_not_in_vocab", "Q_set_not_in_vocab", "alias_not_in_vocab"):
        assert text not in vocab.strings
    # The KB still names them itself.
    [cand] = kb.get_alias_candidates("alias_not_in_vocab")
    assert (cand.entity_, cand.alias_) == ("Q_set_not_in_vocab", "alias_not_in_vocab")
    spacy_like = InMemoryLookupKB(vocab, 1, add_to_vocab=True)
    spacy_like.add_entity("Q_only_in_this_test", 1.0, [0.5])
    spacy_like.set_entities(["Q_set_in_vocab"], [1.0], [[0.5]])
    spacy_like.add_alias("alias_in_vocab", ["Q_set_in_vocab"], [0.5])
    for text in ("Q_only_in_this_test", "Q_set_in_vocab", "alias_in_vocab"):
        assert text in vocab.strings
    assert "alias_in_vocab" in spacy_like.copy().vocab.strings


def test_add_entity_stores_freq_and_vector(vocab):
    kb = InMemoryLookupKB(vocab, 3)
    kb.add_entity("Q1", 12.5, [1.0, -2.0, 3.25])
    assert kb.contains_entity("Q1")
    assert kb.get_vector("Q1") == [1.0, -2.0, 3.25]
    assert kb.entity_freqs.tolist() == [12.5]


def test_add_entity_duplicate_warns_and_keeps_first(vocab):
    kb = InMemoryLookupKB(vocab, 2)
    kb.add_entity("Q1", 1.0, [1.0, 1.0])
    with pytest.warns(KBWarning, match="Q1"):
        result = kb.add_entity("Q1", 99.0, [9.0, 9.0])
    assert result is None
    assert kb.get_size_entities() == 1
    assert kb.get_vector("Q1") == [1.0, 1.0]
    assert kb.entity_freqs.tolist() == [1.0]


@pytest.mark.parametrize(
    "vector",
    [[1.0, 2.0], [1.0, 2.0, 3.0, 4.0], [], [1.0, float("nan"), 3.0], [1.0, float("inf"), 3.0],
     ["a", "b", "c"], None],
    ids=["too-short", "too-long", "empty", "nan", "inf", "strings", "none"],
)
def test_add_entity_rejects_bad_vector_with_vector_error(vocab, vector):
    kb = InMemoryLookupKB(vocab, 3)
    with pytest.raises(VectorError):
        kb.add_entity("Q1", 1.0, vector)
    assert not kb.contains_entity("Q1")
    assert kb.is_empty()


@pytest.mark.parametrize("freq", [float("nan"), float("inf"), -float("inf")])
def test_add_entity_rejects_non_finite_freq(vocab, freq):
    kb = InMemoryLookupKB(vocab, 1)
    with pytest.raises(KBError, match="finite"):
        kb.add_entity("Q1", freq, [0.0])
    assert kb.is_empty()


@pytest.mark.parametrize("freq", ["often", None, [1.0]])
def test_add_entity_rejects_non_numeric_freq_with_type_error(vocab, freq):
    kb = InMemoryLookupKB(vocab, 1)
    with pytest.raises(TypeError):
        kb.add_entity("Q1", freq, [0.0])
    assert kb.is_empty()


@pytest.mark.parametrize("freq", ["often", None])
def test_add_entity_non_numeric_freq_raises_kb_type_error(vocab, freq):
    kb = InMemoryLookupKB(vocab, 1)
    with pytest.raises(KBTypeError):
        kb.add_entity("Q1", freq, [0.0])


def test_add_entity_rejects_freq_that_is_infinite_as_float32_like_set_entities(vocab):
    with numpy.errstate(over="ignore"):
        reference = InMemoryLookupKB(vocab, 1)
        with pytest.raises(KBError):
            reference.set_entities(["Q1"], [1e39], [[0.0]])
        kb = InMemoryLookupKB(vocab, 1)
        with pytest.raises(KBError):
            kb.add_entity("Q1", 1e39, [0.0])
        assert numpy.isfinite(kb.entity_freqs).all()


def test_add_entity_rejects_empty_id_with_empty_string_error(vocab):
    kb = InMemoryLookupKB(vocab, 1)
    with pytest.raises(EmptyStringError):
        kb.add_entity("", 1.0, [0.0])
    assert kb.is_empty()


@pytest.mark.parametrize("entity", NON_STR_IDS, ids=repr)
def test_add_entity_rejects_non_str_id_with_type_error(vocab, entity):
    kb = InMemoryLookupKB(vocab, 1)
    with pytest.raises(TypeError):
        kb.add_entity(entity, 1.0, [0.0])
    assert kb.is_empty()


# ---------------------------------------------------------------- set_entities


def test_set_entities_replaces_all_entities(vocab):
    kb = InMemoryLookupKB(vocab, 2)
    kb.add_entity("Q1", 1.0, [1.0, 1.0])
    kb.add_entity("Q2", 2.0, [2.0, 2.0])
    kb.set_entities(["Q7", "Q8", "Q9"], [7.0, 8.0, 9.0], [[7, 7], [8, 8], [9, 9]])
    assert sorted(kb.get_entity_strings()) == ["Q7", "Q8", "Q9"]
    assert kb.get_size_entities() == 3
    assert not kb.contains_entity("Q1")
    assert kb.get_vector("Q8") == [8.0, 8.0]
    assert kb.get_vector("Q1") == [0.0, 0.0]
    assert sorted(kb.entity_freqs.tolist()) == [7.0, 8.0, 9.0]


def test_set_entities_accepts_2d_numpy_vectors(vocab):
    kb = InMemoryLookupKB(vocab, 2)
    kb.set_entities(["Q1", "Q2"], numpy.array([1.0, 2.0]), numpy.array([[1, 2], [3, 4]]))
    assert kb.get_vector("Q2") == [3.0, 4.0]


@pytest.mark.parametrize(
    "entities, freqs, vectors",
    [
        (["Q1", "Q2"], [1.0], [[0.0], [0.0]]),
        (["Q1"], [1.0, 2.0], [[0.0]]),
        (["Q1", "Q2"], [1.0, 2.0], [[0.0]]),
    ],
    ids=["few-freqs", "many-freqs", "few-vectors"],
)
def test_set_entities_length_mismatch_raises(vocab, entities, freqs, vectors):
    kb = InMemoryLookupKB(vocab, 1)
    kb.add_entity("Q0", 1.0, [0.0])
    before = kb.to_bytes()
    with pytest.raises(LengthMismatchError):
        kb.set_entities(entities, freqs, vectors)
    assert kb.to_bytes() == before


def test_set_entities_after_add_alias_raises_kb_error(small_kb):
    with pytest.raises(KBError, match="set_entities"):
        small_kb.set_entities(["Q9"], [1.0], [[0.0, 0.0, 0.0]])
    assert small_kb.contains_entity("Q1")


def test_set_entities_duplicate_ids_warn_and_keep_first(vocab):
    kb = InMemoryLookupKB(vocab, 1)
    with pytest.warns(KBWarning, match="Q1"):
        kb.set_entities(["Q1", "Q2", "Q1"], [1.0, 2.0, 3.0], [[1.0], [2.0], [3.0]])
    assert kb.get_size_entities() == 2
    assert kb.get_vector("Q1") == [1.0]
    assert [kb.get_entity_id(i) for i in range(2)] == ["Q1", "Q2"]


def test_set_entities_with_bad_vector_raises_and_keeps_old_entities(vocab):
    kb = InMemoryLookupKB(vocab, 2)
    kb.add_entity("Q1", 1.0, [1.0, 1.0])
    before = kb.to_bytes()
    with pytest.raises(VectorError):
        kb.set_entities(["Q7", "Q8"], [1.0, 2.0], [[1.0, 2.0], [1.0]])
    assert kb.to_bytes() == before
    assert kb.get_entity_strings() == ["Q1"]


def test_vector_returned_before_set_entities_keeps_its_values(vocab):
    kb = InMemoryLookupKB(vocab, 2)
    kb.add_entity("Q1", 1.0, [1.0, 1.0])
    vector = kb.vectors[0]
    matrix = kb.vectors
    kb.set_entities(["Q7"], [7.0], [[7.0, 7.0]])
    assert kb.get_vector("Q7") == [7.0, 7.0]
    assert vector.tolist() == [1.0, 1.0]
    assert matrix.tolist() == [[1.0, 1.0]]


def test_set_entities_then_add_alias_uses_new_entities(vocab):
    kb = InMemoryLookupKB(vocab, 1)
    kb.add_entity("Q1", 1.0, [1.0])
    kb.set_entities(["Q2", "Q3"], [2.0, 3.0], [[2.0], [3.0]])
    kb.add_alias("alias_x", ["Q3", "Q2"], [0.5, 0.5])
    assert [(c.entity_, c.entity_vector) for c in kb.get_alias_candidates("alias_x")] == [
        ("Q3", [3.0]),
        ("Q2", [2.0]),
    ]
    with pytest.raises(UnknownEntityError):
        kb.add_alias("alias_y", ["Q1"], [0.5])


# ------------------------------------------------------------------- add_alias


def test_add_alias_returns_alias_hash_and_adds_alias_to_vocab(fresh_vocab):
    vocab = fresh_vocab
    kb = InMemoryLookupKB(vocab, 1, add_to_vocab=True)
    kb.add_entity("Q1", 1.0, [0.0])
    assert "alias_only_in_this_test" not in vocab.strings
    alias_hash = kb.add_alias("alias_only_in_this_test", ["Q1"], [0.5])
    assert alias_hash == vocab.strings["alias_only_in_this_test"]
    assert "alias_only_in_this_test" in vocab.strings
    assert kb.contains_alias("alias_only_in_this_test")
    assert kb.get_size_aliases() == 1


def test_add_alias_stores_candidates_in_given_order(small_kb):
    assert candidate_tuples(small_kb, "alias_three") == [
        ("Q1", 0.125), ("Q2", 0.25), ("Q3", 0.5)
    ]
    assert candidate_tuples(small_kb, "alias_paris") == [("Q1", 0.75), ("Q2", 0.25)]


def test_add_alias_duplicate_warns_and_keeps_first(small_kb):
    with pytest.warns(KBWarning, match="alias_paris"):
        result = small_kb.add_alias("alias_paris", ["Q3"], [1.0])
    assert result is None
    assert small_kb.get_size_aliases() == 3
    assert candidate_tuples(small_kb, "alias_paris") == [("Q1", 0.75), ("Q2", 0.25)]


def test_add_alias_unknown_entity_raises_unknown_entity_error(small_kb):
    with pytest.raises(UnknownEntityError, match="Q404"):
        small_kb.add_alias("alias_new", ["Q1", "Q404"], [0.5, 0.5])
    assert not small_kb.contains_alias("alias_new")


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), float("inf"), -float("inf")])
def test_add_alias_probability_outside_unit_interval_or_nan_raises(small_kb, bad):
    with pytest.raises(ProbabilityError):
        small_kb.add_alias("alias_new", ["Q1", "Q2"], [0.1, bad])
    assert not small_kb.contains_alias("alias_new")


def test_add_alias_probability_sum_above_tolerance_raises(small_kb):
    with pytest.raises(ProbabilityError, match="sum"):
        small_kb.add_alias("alias_new", ["Q1", "Q2"], [0.5, 0.50002])
    assert not small_kb.contains_alias("alias_new")


def test_add_alias_probability_sum_within_rounding_tolerance_is_accepted(small_kb):
    small_kb.add_alias("alias_new", ["Q1", "Q2"], [0.5, 0.500005])
    assert small_kb.contains_alias("alias_new")


def test_add_alias_length_mismatch_raises(small_kb):
    with pytest.raises(LengthMismatchError):
        small_kb.add_alias("alias_new", ["Q1", "Q2"], [0.5])
    with pytest.raises(LengthMismatchError):
        small_kb.add_alias("alias_new", ["Q1"], [0.5, 0.1])
    assert not small_kb.contains_alias("alias_new")


def test_add_alias_empty_alias_raises_empty_string_error(small_kb):
    with pytest.raises(EmptyStringError):
        small_kb.add_alias("", ["Q1"], [0.5])
    assert small_kb.get_size_aliases() == 3


@pytest.mark.parametrize("bad", NON_STR_IDS, ids=repr)
def test_add_alias_rejects_non_str_alias_with_type_error(small_kb, bad):
    with pytest.raises(TypeError):
        small_kb.add_alias(bad, ["Q1"], [0.5])
    assert small_kb.get_size_aliases() == 3


@pytest.mark.parametrize("bad", NON_STR_IDS, ids=repr)
def test_add_alias_non_str_entity_raises_kb_type_error(small_kb, bad):
    with pytest.raises(KBTypeError) as info:
        small_kb.add_alias("alias_new", ["Q1", bad], [0.5, 0.5])
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)
    assert not small_kb.contains_alias("alias_new")


def test_add_alias_with_no_candidates_is_known_but_has_no_candidates(small_kb):
    small_kb.add_alias("alias_empty", [], [])
    assert small_kb.contains_alias("alias_empty")
    assert small_kb.get_alias_candidates("alias_empty") == []
    assert small_kb.get_prior_prob("Q1", "alias_empty") == 0.0


# ---------------------------------------------------------------- append_alias


def test_append_alias_adds_candidate_at_the_end(small_kb):
    small_kb.append_alias("alias_texas", "Q3", 0.25)
    assert candidate_tuples(small_kb, "alias_texas") == [("Q2", 0.5), ("Q3", 0.25)]
    assert small_kb.get_prior_prob("Q3", "alias_texas") == pytest.approx(0.25)


def test_append_alias_unknown_alias_raises_unknown_alias_error(small_kb):
    before = small_kb.to_bytes()
    with pytest.raises(UnknownAliasError, match="alias_nope"):
        small_kb.append_alias("alias_nope", "Q1", 0.1)
    assert small_kb.to_bytes() == before


def test_append_alias_unknown_entity_raises_unknown_entity_error(small_kb):
    before = small_kb.to_bytes()
    with pytest.raises(UnknownEntityError, match="Q404"):
        small_kb.append_alias("alias_texas", "Q404", 0.1)
    assert small_kb.to_bytes() == before


def test_append_alias_sum_overflow_raises_probability_error(small_kb):
    before = small_kb.to_bytes()
    with pytest.raises(ProbabilityError, match="sum"):
        small_kb.append_alias("alias_paris", "Q3", 0.01)
    assert small_kb.to_bytes() == before
    assert candidate_tuples(small_kb, "alias_paris") == [("Q1", 0.75), ("Q2", 0.25)]


@pytest.mark.parametrize("bad", [-0.1, 1.1, float("nan")])
def test_append_alias_prior_outside_unit_interval_raises_probability_error(small_kb, bad):
    with pytest.raises(ProbabilityError):
        small_kb.append_alias("alias_texas", "Q3", bad)
    assert candidate_tuples(small_kb, "alias_texas") == [("Q2", 0.5)]


def test_append_alias_duplicate_candidate_warns_and_keeps_first_prior(small_kb):
    with pytest.warns(KBWarning, match="already a candidate"):
        small_kb.append_alias("alias_texas", "Q2", 0.25)
    assert candidate_tuples(small_kb, "alias_texas") == [("Q2", 0.5)]


def test_append_alias_duplicate_candidate_with_ignore_warnings_is_silent(small_kb, no_warnings):
    with no_warnings():
        small_kb.append_alias("alias_texas", "Q2", 0.25, ignore_warnings=True)
    assert candidate_tuples(small_kb, "alias_texas") == [("Q2", 0.5)]


@pytest.mark.parametrize(
    "alias, entity", [(5, "Q1"), ("alias_texas", None), ("alias_texas", b"Q1")]
)
def test_append_alias_rejects_non_str_ids_with_type_error(small_kb, alias, entity):
    with pytest.raises(TypeError):
        small_kb.append_alias(alias, entity, 0.1)
    assert candidate_tuples(small_kb, "alias_texas") == [("Q2", 0.5)]


def test_append_alias_rejects_empty_ids(small_kb):
    with pytest.raises(EmptyStringError):
        small_kb.append_alias("", "Q1", 0.1)
    with pytest.raises(EmptyStringError):
        small_kb.append_alias("alias_texas", "", 0.1)
    assert candidate_tuples(small_kb, "alias_texas") == [("Q2", 0.5)]


_NON_STR_CALLS = {
    "add_entity": lambda kb, bad: kb.add_entity(bad, 1.0, [0.0, 0.0, 0.0]),
    "add_alias": lambda kb, bad: kb.add_alias(bad, ["Q1"], [0.5]),
    "append_alias-alias": lambda kb, bad: kb.append_alias(bad, "Q1", 0.1),
    "append_alias-entity": lambda kb, bad: kb.append_alias("alias_texas", bad, 0.1),
}


@pytest.mark.parametrize("bad", [5, None, b"Q1"], ids=repr)
@pytest.mark.parametrize("method", list(_NON_STR_CALLS))
def test_non_str_id_raises_kb_type_error_that_is_type_and_value_error(small_kb, method, bad):
    with pytest.raises(KBTypeError) as info:
        _NON_STR_CALLS[method](small_kb, bad)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_append_alias_to_non_last_alias_keeps_every_alias_correct(small_kb, vocab, snapshot):
    # alias_paris is the first alias: its slots must move, the others must not change.
    small_kb.add_alias("alias_empty", [], [])
    expected = {
        "alias_paris": [("Q1", 0.75), ("Q2", 0.25)],
        "alias_texas": [("Q2", 0.5)],
        "alias_three": [("Q1", 0.125), ("Q2", 0.25), ("Q3", 0.5)],
        "alias_empty": [],
    }
    steps = [
        ("alias_texas", "Q1", 0.25),
        ("alias_empty", "Q4", 0.5),
        ("alias_texas", "Q3", 0.125),
        ("alias_three", "Q4", 0.0625),
        ("alias_empty", "Q1", 0.25),
        ("alias_texas", "Q4", 0.0625),
    ]
    for alias, entity, prior in steps:
        small_kb.append_alias(alias, entity, prior)
        expected[alias].append((entity, prior))
        for name, cands in expected.items():
            assert candidate_tuples(small_kb, name) == cands, (alias, entity, name)
    for name, cands in expected.items():
        for entity, prior in cands:
            assert small_kb.get_prior_prob(entity, name) == pytest.approx(prior)
    offsets, rows, priors = small_kb.lookup_aliases(list(expected))
    for i, cands in enumerate(expected.values()):
        got = [
            (small_kb.get_entity_id(int(r)), float(p))
            for r, p in zip(rows[offsets[i]:offsets[i + 1]], priors[offsets[i]:offsets[i + 1]])
        ]
        assert got == cands
    # Serialisation and copy() compact the moved slots and keep every candidate.
    reloaded = InMemoryLookupKB(vocab, 3).from_bytes(small_kb.to_bytes())
    assert snapshot(reloaded) == snapshot(small_kb)
    assert snapshot(small_kb.copy()) == snapshot(small_kb)


def test_append_alias_then_add_alias_keeps_both_correct(small_kb):
    small_kb.append_alias("alias_paris", "Q3", 0.0)
    small_kb.add_alias("alias_late", ["Q4", "Q3"], [0.5, 0.5])
    small_kb.append_alias("alias_paris", "Q4", 0.0)
    assert [c.entity_ for c in small_kb.get_alias_candidates("alias_paris")] == [
        "Q1", "Q2", "Q3", "Q4"
    ]
    assert [c.entity_ for c in small_kb.get_alias_candidates("alias_late")] == ["Q4", "Q3"]


# ------------------------------------------------------- contains / strings / sizes


def test_contains_entity_and_contains_alias(small_kb):
    assert small_kb.contains_entity("Q1")
    assert small_kb.contains_entity("Q4")
    assert not small_kb.contains_entity("Q5")
    assert not small_kb.contains_entity("")
    assert not small_kb.contains_entity("alias_paris")
    assert small_kb.contains_alias("alias_paris")
    assert not small_kb.contains_alias("alias_nope")
    assert not small_kb.contains_alias("")
    assert not small_kb.contains_alias("Q1")


UNICODE_IDS = ["Zürich", "東京", "🦄", "Q\u0301é", "Ελλάδα", "a b\tc"]


def test_get_entity_and_alias_strings_return_unicode_ids(vocab):
    kb = InMemoryLookupKB(vocab, 1)
    for i, entity in enumerate(UNICODE_IDS):
        kb.add_entity(entity, float(i), [float(i)])
    for entity in UNICODE_IDS:
        kb.add_alias("alias " + entity, [entity], [1.0])
    kb.add_alias(UNICODE_IDS[0], [UNICODE_IDS[1]], [1.0])
    assert kb.get_entity_strings() == UNICODE_IDS
    assert kb.get_alias_strings() == ["alias " + e for e in UNICODE_IDS] + [UNICODE_IDS[0]]
    for i, entity in enumerate(UNICODE_IDS):
        assert kb.contains_entity(entity)
        assert kb.get_entity_id(i) == entity
        [cand] = kb.get_alias_candidates("alias " + entity)
        assert (cand.entity_, cand.alias_) == (entity, "alias " + entity)
        assert cand.entity == vocab.strings[entity]
    assert kb.get_alias_candidates("Zürich")[0].entity_ == "東京"


def test_get_strings_of_empty_kb_are_empty_lists(vocab):
    kb = InMemoryLookupKB(vocab, 2)
    assert kb.get_entity_strings() == []
    assert kb.get_alias_strings() == []


def test_sizes_len_and_is_empty_track_additions(vocab):
    kb = InMemoryLookupKB(vocab, 1)
    assert (kb.get_size_entities(), len(kb), kb.get_size_aliases(), kb.is_empty()) == (
        0, 0, 0, True
    )
    kb.add_entity("Q1", 1.0, [0.0])
    kb.add_entity("Q2", 1.0, [0.0])
    assert (kb.get_size_entities(), len(kb), kb.get_size_aliases(), kb.is_empty()) == (
        2, 2, 0, False
    )
    kb.add_alias("alias_a", ["Q1"], [1.0])
    with pytest.warns(KBWarning):
        kb.add_alias("alias_a", ["Q2"], [1.0])
    assert (kb.get_size_entities(), kb.get_size_aliases()) == (2, 1)


def test_many_entities_and_aliases_survive_table_growth(vocab):
    kb = InMemoryLookupKB(vocab, 2)
    n = 3000
    for i in range(n):
        kb.add_entity(f"Q{i}", float(i), [float(i), -float(i)])
    for i in range(0, n, 3):
        kb.add_alias(f"alias_{i}", [f"Q{i}", f"Q{i + 1}"], [0.5, 0.25])
    assert len(kb) == n and kb.get_size_aliases() == n // 3
    for i in (0, 1, 1500, n - 1):
        assert kb.get_vector(f"Q{i}") == [float(i), -float(i)]
    for i in (0, 1500, n - 3):
        assert candidate_tuples(kb, f"alias_{i}") == [(f"Q{i}", 0.5), (f"Q{i + 1}", 0.25)]


# --------------------------------------------------------------------- vectors


def test_get_vector_returns_a_list_of_floats_like_spacy(small_kb):
    vector = small_kb.get_vector("Q2")
    assert vector == [0.0, 1.0, 0.0] and all(type(x) is float for x in vector)
    vector[0] = 5.0  # a copy: the KB is unchanged
    assert small_kb.get_vector("Q2") == [0.0, 1.0, 0.0]


def test_get_vector_of_unknown_entity_returns_zeros(small_kb):
    assert small_kb.get_vector("Q404") == [0.0, 0.0, 0.0]


def test_get_vectors_returns_matrix_with_zero_rows_for_unknown_entities(small_kb):
    matrix = small_kb.get_vectors(["Q3", "Q404", "Q1", "Q3"])
    assert matrix.shape == (4, 3)
    assert matrix.dtype == numpy.float32
    assert matrix.tolist() == [[0, 0, 1], [0, 0, 0], [1, 0, 0], [0, 0, 1]]


def test_get_vectors_of_no_entities_is_empty_matrix(small_kb):
    assert small_kb.get_vectors([]).shape == (0, 3)


def test_get_vectors_does_not_change_kb_vectors(small_kb):
    matrix = small_kb.get_vectors(["Q1", "Q404"])
    if matrix.flags.writeable:
        matrix[...] = 42.0
    assert small_kb.get_vector("Q1") == [1.0, 0.0, 0.0]


def test_get_vectors_on_empty_kb_returns_zero_rows(vocab):
    kb = InMemoryLookupKB(vocab, 3)
    assert kb.get_vectors(["Q1", "Q2"]).tolist() == [[0.0] * 3, [0.0] * 3]


def test_get_prior_prob_returns_prior_or_zero_for_unknown_pair(small_kb):
    assert small_kb.get_prior_prob("Q1", "alias_paris") == pytest.approx(0.75)
    assert small_kb.get_prior_prob("Q2", "alias_paris") == pytest.approx(0.25)
    assert small_kb.get_prior_prob("Q3", "alias_three") == pytest.approx(0.5)
    assert small_kb.get_prior_prob("Q3", "alias_paris") == 0.0  # both known, not paired
    assert small_kb.get_prior_prob("Q404", "alias_paris") == 0.0
    assert small_kb.get_prior_prob("Q1", "alias_nope") == 0.0
    assert small_kb.get_prior_prob("Q404", "alias_nope") == 0.0


# ------------------------------------------------------------------ candidates


def test_get_alias_candidates_sets_every_candidate_property(small_kb, vocab):
    cands = small_kb.get_alias_candidates("alias_paris")
    assert len(cands) == 2
    first, second = cands
    assert first.entity == vocab.strings["Q1"] == hash_string("Q1")
    assert first.entity_ == "Q1"
    assert first.alias == vocab.strings["alias_paris"]
    assert first.alias_ == "alias_paris"
    assert first.entity_freq == pytest.approx(10.0)
    assert first.prior_prob == pytest.approx(0.75)
    assert numpy.asarray(first.entity_vector).tolist() == [1.0, 0.0, 0.0]
    assert first.kb is small_kb
    assert (second.entity_, second.entity_freq, second.prior_prob) == ("Q2", 5.0, 0.25)
    assert numpy.asarray(second.entity_vector).tolist() == [0.0, 1.0, 0.0]
    assert "Q1" in repr(first) and "alias_paris" in repr(first)


def test_candidate_built_with_spacy_style_constructor_resolves_its_strings(small_kb, vocab):
    cand = Candidate(small_kb, vocab.strings["Q3"], 2.0, [0.0, 0.0, 1.0],
                     vocab.strings["alias_three"], 0.5)
    assert (cand.entity_, cand.alias_) == ("Q3", "alias_three")
    assert (cand.entity, cand.alias) == (vocab.strings["Q3"], vocab.strings["alias_three"])
    assert (cand.entity_freq, cand.prior_prob) == (2.0, 0.5)
    assert list(cand.entity_vector) == [0.0, 0.0, 1.0]


def test_get_alias_candidates_of_unknown_alias_is_empty_list(small_kb):
    assert small_kb.get_alias_candidates("alias_nope") == []
    assert small_kb.get_alias_candidates("") == []


def test_candidate_entity_vector_is_a_list_and_vector_a_read_only_view(small_kb):
    [cand] = small_kb.get_alias_candidates("alias_texas")
    assert cand.entity_vector == [0.0, 1.0, 0.0]  # as spaCy's Candidate
    assert not cand.vector.flags.writeable
    assert numpy.shares_memory(cand.vector, small_kb.vectors)
    with pytest.raises(ValueError):
        cand.vector[0] = 1.0


def test_get_candidates_looks_up_span_text(small_kb, nlp):
    doc = nlp.make_doc("Visit alias_paris and alias_texas today")
    assert [t.text for t in doc][1] == "alias_paris"
    cands = small_kb.get_candidates(doc[1:2])
    assert [(c.entity_, c.alias_) for c in cands] == [
        ("Q1", "alias_paris"), ("Q2", "alias_paris")
    ]
    assert small_kb.get_candidates(doc[0:1]) == []
    assert small_kb.get_candidates(doc[1:3]) == []  # "alias_paris and" is no alias


def test_get_candidates_batch_matches_single_lookups(small_kb, nlp):
    doc = nlp.make_doc("alias_three alias_nope alias_paris alias_three")
    spans = [doc[i:i + 1] for i in range(len(doc))] + [doc[0:2]]
    batch = small_kb.get_candidates_batch(spans)
    assert len(batch) == len(spans)
    for span, cands in zip(spans, batch):
        single = small_kb.get_candidates(span)
        assert [(c.entity_, c.alias_, c.prior_prob) for c in cands] == [
            (c.entity_, c.alias_, c.prior_prob) for c in single
        ]
    assert [len(c) for c in batch] == [3, 0, 2, 3, 0]
    assert small_kb.get_candidates_batch([]) == []


def test_candidate_strings_resolve_without_the_vocab(small_kb, fresh_vocab):
    """A KB loaded into a fresh vocab (add_to_vocab=False) still names its candidates."""
    fresh = fresh_vocab
    kb = InMemoryLookupKB(fresh, 3).from_bytes(small_kb.to_bytes())
    assert "alias_paris" not in fresh.strings and "Q1" not in fresh.strings
    assert [(c.entity_, c.alias_) for c in kb.get_alias_candidates("alias_paris")] == [
        ("Q1", "alias_paris"), ("Q2", "alias_paris")
    ]
    assert sorted(kb.get_entity_strings()) == ["Q1", "Q2", "Q3", "Q4"]


def test_from_bytes_with_add_to_vocab_adds_every_string(small_kb, fresh_vocab):
    fresh = fresh_vocab
    InMemoryLookupKB(fresh, 3).from_bytes(small_kb.to_bytes(), add_to_vocab=True)
    for text in ["Q1", "Q2", "Q3", "Q4", "alias_paris", "alias_texas", "alias_three"]:
        assert text in fresh.strings


# ---------------------------------------------------------------- array views


@pytest.mark.parametrize("kind", ["writable", "mapped"])
@pytest.mark.parametrize("name", ["vectors", "entity_hashes", "entity_freqs"])
def test_array_views_are_read_only_and_zero_copy(small_kb, mapped_kb, kind, name):
    kb = small_kb if kind == "writable" else mapped_kb
    first = getattr(kb, name)
    second = getattr(kb, name)
    assert len(first) == 4
    assert not first.flags.writeable
    assert numpy.shares_memory(first, second)
    with pytest.raises(ValueError):
        first[0] = 0
    if name == "vectors":
        [cand] = kb.get_alias_candidates("alias_texas")
        assert numpy.shares_memory(first, cand.vector)


def test_array_views_hold_rows_in_entity_row_order(small_kb, vocab):
    ids = [small_kb.get_entity_id(i) for i in range(len(small_kb))]
    assert ids == ["Q1", "Q2", "Q3", "Q4"]
    assert small_kb.entity_hashes.dtype == numpy.uint64
    assert small_kb.entity_hashes.tolist() == [vocab.strings[e] for e in ids]
    assert small_kb.entity_freqs.dtype == numpy.float32
    assert small_kb.entity_freqs.tolist() == [10.0, 5.0, 2.0, 1.0]
    assert small_kb.vectors.dtype == numpy.float32
    assert small_kb.vectors.tolist() == [list(small_kb.get_vector(e)) for e in ids]


def test_vectors_view_taken_again_after_growth_sees_new_entities(small_kb):
    before = small_kb.vectors
    for i in range(50):
        small_kb.add_entity(f"Q{100 + i}", 1.0, [float(i), 0.0, 0.0])
    after = small_kb.vectors
    assert before.shape == (4, 3)
    assert after.shape == (54, 3)
    assert before.tolist() == after[:4].tolist()
    assert after[53].tolist() == [49.0, 0.0, 0.0]


# -------------------------------------------------------------- lookup_aliases


def _lookup_as_lists(kb, result):
    offsets, rows, priors = result
    return [
        [(kb.get_entity_id(int(r)), float(p)) for r, p in
         zip(rows[offsets[i]:offsets[i + 1]], priors[offsets[i]:offsets[i + 1]])]
        for i in range(len(offsets) - 1)
    ]


def test_lookup_aliases_with_strings_matches_alias_candidates(small_kb):
    aliases = ["alias_three", "alias_nope", "alias_paris", "", "alias_texas", "alias_three"]
    offsets, rows, priors = small_kb.lookup_aliases(aliases)
    assert offsets.dtype == numpy.int64 and rows.dtype == numpy.uint32
    assert priors.dtype == numpy.float32
    assert offsets.tolist() == [0, 3, 3, 5, 5, 6, 9]
    assert _lookup_as_lists(small_kb, (offsets, rows, priors)) == [
        [(c.entity_, c.prior_prob) for c in small_kb.get_alias_candidates(a)] for a in aliases
    ]
    # entity rows index the vector matrix
    assert small_kb.vectors[rows].tolist() == [
        c.entity_vector for a in aliases for c in small_kb.get_alias_candidates(a)
    ]


@pytest.mark.parametrize("dtype", [numpy.uint64, numpy.int64])
def test_lookup_aliases_with_hash_array_matches_lookup_with_strings(small_kb, vocab, dtype):
    aliases = ["alias_paris", "alias_nope", "alias_three"]
    hashes = numpy.array([vocab.strings[a] for a in aliases], dtype=numpy.uint64).astype(dtype)
    by_hash = small_kb.lookup_aliases(hashes)
    by_text = small_kb.lookup_aliases(aliases)
    for got, expected in zip(by_hash, by_text):
        assert got.tolist() == expected.tolist()


def test_lookup_aliases_of_only_unknown_aliases_has_no_candidates(small_kb):
    offsets, rows, priors = small_kb.lookup_aliases(["alias_x", "alias_y"])
    assert offsets.tolist() == [0, 0, 0]
    assert len(rows) == len(priors) == 0


@pytest.mark.parametrize("empty", [[], (), numpy.zeros(0, dtype=numpy.uint64)], ids=repr)
def test_lookup_aliases_of_empty_input_returns_single_zero_offset(small_kb, empty):
    offsets, rows, priors = small_kb.lookup_aliases(empty)
    assert offsets.tolist() == [0]
    assert len(rows) == len(priors) == 0


def test_lookup_aliases_rejects_non_str_items(small_kb):
    with pytest.raises(KBTypeError):
        small_kb.lookup_aliases(["alias_paris", 7])


def test_lookup_aliases_on_empty_kb_finds_nothing(vocab):
    kb = InMemoryLookupKB(vocab, 2)
    offsets, rows, _ = kb.lookup_aliases(["alias_paris"])
    assert offsets.tolist() == [0, 0] and len(rows) == 0


# ------------------------------------------------------ get_entity_rows / get_entity_id


def test_get_entity_rows_returns_rows_and_minus_one_for_unknown(small_kb, vocab):
    rows = small_kb.get_entity_rows(["Q3", "Q404", "Q1", ""])
    assert rows.dtype == numpy.int64
    assert rows.tolist() == [2, -1, 0, -1]
    hashes = numpy.array([vocab.strings["Q4"], 12345], dtype=numpy.uint64)
    assert small_kb.get_entity_rows(hashes).tolist() == [3, -1]
    assert small_kb.get_entity_rows([]).tolist() == []


def test_get_entity_id_returns_id_of_row_and_rejects_bad_rows(small_kb):
    assert [small_kb.get_entity_id(r) for r in range(4)] == ["Q1", "Q2", "Q3", "Q4"]
    for row in (4, -1, 10**6):
        with pytest.raises(IndexError):
            small_kb.get_entity_id(row)


# ---------------------------------------------------------------- from_arrays


def test_from_arrays_builds_same_kb_as_add_calls(small_kb, vocab, snapshot):
    kb = InMemoryLookupKB.from_arrays(
        vocab,
        ["Q1", "Q2", "Q3", "Q4"],
        [10.0, 5.0, 2.0, 1.0],
        [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]],
        ["alias_paris", "alias_texas", "alias_three"],
        [0, 2, 3, 6],
        [0, 1, 1, 0, 1, 2],
        [0.75, 0.25, 0.5, 0.125, 0.25, 0.5],
    )
    assert not kb.is_read_only
    assert snapshot(kb) == snapshot(small_kb)
    kb.add_entity("Q5", 1.0, [0.0, 0.0, 0.0])  # stays writable
    kb.append_alias("alias_texas", "Q5", 0.5)
    assert candidate_tuples(kb, "alias_texas") == [("Q2", 0.5), ("Q5", 0.5)]


def test_from_arrays_without_aliases_and_with_zero_candidate_alias(vocab):
    kb = InMemoryLookupKB.from_arrays(vocab, ["Q1"], [1.0], numpy.ones((1, 2)))
    assert kb.get_size_aliases() == 0 and kb.entity_vector_length == 2
    kb = InMemoryLookupKB.from_arrays(
        vocab, ["Q1"], [1.0], numpy.ones((1, 2)), ["alias_empty", "alias_one"], [0, 0, 1],
        [0], [1.0]
    )
    assert kb.contains_alias("alias_empty")
    assert kb.get_alias_candidates("alias_empty") == []
    assert candidate_tuples(kb, "alias_one") == [("Q1", 1.0)]


def test_from_arrays_of_nothing_is_empty_kb(vocab):
    kb = InMemoryLookupKB.from_arrays(vocab, [], [], numpy.zeros((0, 4)))
    assert kb.is_empty() and kb.entity_vector_length == 4
    kb = InMemoryLookupKB.from_arrays(vocab, [], [], [])
    assert kb.is_empty()


def test_from_arrays_duplicate_entity_ids_warn_keep_first_and_remap_candidates(vocab):
    with pytest.warns(KBWarning, match="Q1"):
        kb = InMemoryLookupKB.from_arrays(
            vocab,
            ["Q1", "Q2", "Q1", "Q3"],
            [1.0, 2.0, 3.0, 4.0],
            [[1.0], [2.0], [3.0], [4.0]],
            ["alias_a", "alias_b"],
            [0, 2, 4],
            [2, 3, 3, 1],  # index 2 is the duplicate Q1, index 3 is Q3 (row 2 after dedup)
            [0.5, 0.5, 0.25, 0.75],
        )
    assert kb.get_entity_strings() == ["Q1", "Q2", "Q3"]
    assert kb.get_vector("Q1") == [1.0]
    assert kb.get_vector("Q3") == [4.0]
    assert [(c.entity_, c.entity_freq, c.entity_vector, c.prior_prob)
            for c in kb.get_alias_candidates("alias_a")] == [
        ("Q1", 1.0, [1.0], 0.5), ("Q3", 4.0, [4.0], 0.5)
    ]
    assert candidate_tuples(kb, "alias_b") == [("Q3", 0.25), ("Q2", 0.75)]


def test_from_arrays_duplicate_aliases_warn_keep_first_and_keep_later_aliases_right(vocab):
    with pytest.warns(KBWarning, match="alias_a"):
        kb = InMemoryLookupKB.from_arrays(
            vocab,
            ["Q1", "Q2", "Q3"],
            [1.0, 2.0, 3.0],
            [[1.0], [2.0], [3.0]],
            ["alias_a", "alias_b", "alias_a", "alias_c"],
            [0, 1, 3, 6, 7],
            [0, 1, 2, 0, 1, 2, 2],
            [1.0, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125],
        )
    assert kb.get_alias_strings() == ["alias_a", "alias_b", "alias_c"]
    assert candidate_tuples(kb, "alias_a") == [("Q1", 1.0)]
    assert candidate_tuples(kb, "alias_b") == [("Q2", 0.5), ("Q3", 0.5)]
    assert candidate_tuples(kb, "alias_c") == [("Q3", 0.125)]
    offsets, _, _ = kb.lookup_aliases(["alias_a", "alias_b", "alias_c"])
    assert offsets.tolist() == [0, 1, 3, 4]


@pytest.mark.parametrize(
    "offsets",
    [[1, 1, 2], [0, 2, 1], [0, 1, 3], [0, 1], [0, 1, 2, 2], [0, -1, 2]],
    ids=["not-from-0", "decreasing", "past-end", "too-few", "too-many", "negative"],
)
def test_from_arrays_rejects_bad_alias_offsets(vocab, offsets):
    with pytest.raises(KBError):
        InMemoryLookupKB.from_arrays(
            vocab, ["Q1", "Q2"], [1.0, 1.0], [[0.0], [0.0]], ["alias_a", "alias_b"], offsets,
            [0, 1], [0.5, 0.5]
        )


@pytest.mark.parametrize("bad_index", [2, -1, 10**6])
def test_from_arrays_rejects_out_of_range_candidate_index(vocab, bad_index):
    with pytest.raises(UnknownEntityError, match="out of range"):
        InMemoryLookupKB.from_arrays(
            vocab, ["Q1", "Q2"], [1.0, 1.0], [[0.0], [0.0]], ["alias_a"], [0, 2],
            [0, bad_index], [0.5, 0.5]
        )


@pytest.mark.parametrize("priors", [[0.5, 1.5], [-0.5, 0.5], [float("nan"), 0.5], [0.75, 0.5]],
                         ids=["above-1", "negative", "nan", "sum-above-1"])
def test_from_arrays_rejects_bad_priors(vocab, priors):
    with pytest.raises(ProbabilityError):
        InMemoryLookupKB.from_arrays(
            vocab, ["Q1", "Q2"], [1.0, 1.0], [[0.0], [0.0]], ["alias_a"], [0, 2], [0, 1], priors
        )


def test_from_arrays_prior_sums_are_checked_per_alias(vocab):
    kb = InMemoryLookupKB.from_arrays(
        vocab, ["Q1", "Q2"], [1.0, 1.0], [[0.0], [0.0]], ["alias_a", "alias_b"], [0, 2, 4],
        [0, 1, 0, 1], [0.5, 0.5, 0.75, 0.25]
    )
    assert kb.get_size_aliases() == 2


@pytest.mark.parametrize(
    "vectors",
    [numpy.zeros((3, 2)), numpy.zeros((1, 2)), numpy.zeros(2), numpy.zeros((2, 2, 1)),
     [[0.0, float("nan")], [0.0, 0.0]], [[0.0, float("inf")], [0.0, 0.0]]],
    ids=["too-many-rows", "too-few-rows", "1-d", "3-d", "nan", "inf"],
)
def test_from_arrays_rejects_vector_shape_mismatch(vocab, vectors):
    with pytest.raises(VectorError):
        InMemoryLookupKB.from_arrays(vocab, ["Q1", "Q2"], [1.0, 1.0], vectors)


@pytest.mark.parametrize("vectors", [[[0.0, 0.0], [0.0]], [["a", "b"], ["c", "d"]]],
                         ids=["ragged", "strings"])
def test_from_arrays_rejects_ragged_or_non_numeric_vectors_with_vector_error(vocab, vectors):
    with pytest.raises(VectorError):
        InMemoryLookupKB.from_arrays(vocab, ["Q1", "Q2"], [1.0, 1.0], vectors)


def test_from_arrays_with_vectors_but_no_entity_ids_raises_vector_error(vocab):
    with pytest.raises(VectorError):
        InMemoryLookupKB.from_arrays(vocab, [], [], numpy.zeros((2, 3)))


def test_from_arrays_rejects_length_mismatches(vocab):
    with pytest.raises(LengthMismatchError):  # freqs
        InMemoryLookupKB.from_arrays(vocab, ["Q1", "Q2"], [1.0], [[0.0], [0.0]])
    with pytest.raises(LengthMismatchError):  # candidates vs priors
        InMemoryLookupKB.from_arrays(
            vocab, ["Q1"], [1.0], [[0.0]], ["alias_a"], [0, 1], [0], [0.5, 0.5]
        )


def test_from_arrays_rejects_bad_ids(vocab):
    with pytest.raises(EmptyStringError):
        InMemoryLookupKB.from_arrays(vocab, ["Q1", ""], [1.0, 1.0], [[0.0], [0.0]])
    with pytest.raises(KBTypeError):
        InMemoryLookupKB.from_arrays(vocab, ["Q1", 2], [1.0, 1.0], [[0.0], [0.0]])
    with pytest.raises(EmptyStringError):
        InMemoryLookupKB.from_arrays(vocab, ["Q1"], [1.0], [[0.0]], [""], [0, 0])
    with pytest.raises(KBTypeError):
        InMemoryLookupKB.from_arrays(vocab, ["Q1"], [1.0], [[0.0]], [None], [0, 0])


def test_from_arrays_adds_strings_to_vocab_only_when_asked(fresh_vocab):
    vocab = fresh_vocab
    InMemoryLookupKB.from_arrays(vocab, ["Q_fa1"], [1.0], [[0.0]], ["alias_fa1"], [0, 1],
                                 [0], [1.0])
    assert "Q_fa1" not in vocab.strings and "alias_fa1" not in vocab.strings
    InMemoryLookupKB.from_arrays(vocab, ["Q_fa2"], [1.0], [[0.0]], ["alias_fa2"], [0, 1],
                                 [0], [1.0], add_to_vocab=True)
    assert "Q_fa2" in vocab.strings and "alias_fa2" in vocab.strings


# ---------------------------------------------------------------- from_records


def test_from_records_builds_same_kb_as_add_calls(small_kb, small_records, vocab, snapshot):
    entities, aliases = small_records
    kb = InMemoryLookupKB.from_records(vocab, 3, iter(entities), iter(aliases))
    assert not kb.is_read_only
    assert snapshot(kb) == snapshot(small_kb)


def test_from_records_duplicates_warn_and_keep_first(vocab):
    with pytest.warns(KBWarning) as record:
        kb = InMemoryLookupKB.from_records(
            vocab, 1,
            [("Q1", 1.0, [1.0]), ("Q2", 2.0, [2.0]), ("Q1", 3.0, [3.0])],
            [("alias_a", ["Q1"], [1.0]), ("alias_b", ["Q2", "Q1"], [0.5, 0.5]),
             ("alias_a", ["Q2"], [1.0])],
        )
    messages = " ".join(str(w.message) for w in record)
    assert "Q1" in messages and "alias_a" in messages
    assert kb.get_vector("Q1") == [1.0]
    assert candidate_tuples(kb, "alias_a") == [("Q1", 1.0)]
    assert candidate_tuples(kb, "alias_b") == [("Q2", 0.5), ("Q1", 0.5)]


def test_from_records_unknown_entity_raises(vocab):
    with pytest.raises(UnknownEntityError, match="Q9"):
        InMemoryLookupKB.from_records(vocab, 1, [("Q1", 1.0, [1.0])],
                                      [("alias_a", ["Q9"], [1.0])])


def test_from_records_alias_length_mismatch_raises(vocab):
    with pytest.raises(LengthMismatchError):
        InMemoryLookupKB.from_records(vocab, 1, [("Q1", 1.0, [1.0])],
                                      [("alias_a", ["Q1"], [0.5, 0.5])])


@pytest.mark.parametrize("vector", [[1.0, 2.0], [1.0, 2.0, 3.0, 4.0], [[1.0, 2.0, 3.0]] * 2],
                         ids=["short", "long", "2-d"])
def test_from_records_vector_of_wrong_length_raises_vector_error(vocab, vector):
    with pytest.raises(VectorError):
        InMemoryLookupKB.from_records(vocab, 3, [("Q1", 1.0, vector)])


@pytest.mark.parametrize("vector", [[5.0], 5.0], ids=["length-1", "scalar"])
def test_from_records_rejects_length_one_vector_instead_of_broadcasting_it(vocab, vector):
    with pytest.raises(VectorError):
        InMemoryLookupKB.from_records(vocab, 3, [("Q1", 1.0, vector)])


def test_from_records_add_to_vocab(small_records, fresh_vocab):
    vocab = fresh_vocab
    InMemoryLookupKB.from_records(vocab, 1, [("Q_fr1", 1.0, [0.0])])
    assert "Q_fr1" not in vocab.strings
    InMemoryLookupKB.from_records(vocab, 1, [("Q_fr2", 1.0, [0.0])],
                                  [("alias_fr2", ["Q_fr2"], [1.0])], add_to_vocab=True)
    assert "Q_fr2" in vocab.strings and "alias_fr2" in vocab.strings


# ------------------------------------------------- failed calls change nothing


def _failing_calls():
    return [
        ("add_entity-bad-vector", lambda kb: kb.add_entity("Q9", 1.0, [1.0])),
        ("add_entity-nan-vector", lambda kb: kb.add_entity("Q9", 1.0, [1.0, float("nan"), 0])),
        ("add_entity-non-str", lambda kb: kb.add_entity(9, 1.0, [1.0, 1.0, 1.0])),
        ("add_entity-empty", lambda kb: kb.add_entity("", 1.0, [1.0, 1.0, 1.0])),
        ("add_entity-nan-freq", lambda kb: kb.add_entity("Q9", float("nan"), [1.0, 1.0, 1.0])),
        ("set_entities-after-aliases", lambda kb: kb.set_entities(["Q9"], [1.0], [[0, 0, 0]])),
        ("set_entities-mismatch", lambda kb: kb.set_entities(["Q9"], [1.0, 2.0], [[0, 0, 0]])),
        ("add_alias-unknown-last-entity",
         lambda kb: kb.add_alias("alias_new", ["Q1", "Q2", "Q404"], [0.1, 0.1, 0.1])),
        ("add_alias-sum", lambda kb: kb.add_alias("alias_new", ["Q1", "Q2"], [0.6, 0.6])),
        ("add_alias-range", lambda kb: kb.add_alias("alias_new", ["Q1"], [1.2])),
        ("add_alias-mismatch", lambda kb: kb.add_alias("alias_new", ["Q1"], [0.1, 0.1])),
        ("add_alias-non-str-entity", lambda kb: kb.add_alias("alias_new", ["Q1", 3], [0.1, 0.1])),
        ("add_alias-empty", lambda kb: kb.add_alias("", ["Q1"], [0.1])),
        ("append_alias-overflow", lambda kb: kb.append_alias("alias_three", "Q4", 0.2)),
        ("append_alias-unknown-entity", lambda kb: kb.append_alias("alias_three", "Q404", 0.1)),
        ("append_alias-unknown-alias", lambda kb: kb.append_alias("alias_404", "Q1", 0.1)),
        ("append_alias-nan", lambda kb: kb.append_alias("alias_texas", "Q1", float("nan"))),
        ("from_bytes-garbage", lambda kb: kb.from_bytes(b"not a kb" * 100)),
        ("from_bytes-truncated", lambda kb: kb.from_bytes(kb.to_bytes()[:-1])),
    ]


@pytest.mark.parametrize("call", [c for _, c in _failing_calls()],
                         ids=[name for name, _ in _failing_calls()])
def test_failed_call_leaves_kb_unchanged(small_kb, snapshot, call):
    bytes_before = small_kb.to_bytes()
    state_before = snapshot(small_kb)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises((KBError, TypeError)):
            call(small_kb)
    assert small_kb.to_bytes() == bytes_before
    assert snapshot(small_kb) == state_before
    assert not small_kb.is_read_only
    # ... and the KB still works for writing.
    small_kb.add_entity("Q_after", 1.0, [0.0, 0.0, 0.0])
    small_kb.add_alias("alias_after", ["Q_after"], [1.0])
    assert candidate_tuples(small_kb, "alias_after") == [("Q_after", 1.0)]


def test_failed_set_entities_on_kb_without_aliases_leaves_it_unchanged(vocab):
    kb = InMemoryLookupKB(vocab, 2)
    kb.add_entity("Q1", 1.0, [1.0, 1.0])
    before = kb.to_bytes()
    for args in (
        (["Q7", ""], [1.0, 1.0], [[0, 0], [0, 0]]),
        (["Q7", 8], [1.0, 1.0], [[0, 0], [0, 0]]),
        (["Q7", "Q8"], [1.0, float("inf")], [[0, 0], [0, 0]]),
        (["Q7", "Q8"], [1.0, 1.0], [[0, 0], [0, float("nan")]]),
    ):
        with pytest.raises(KBError):
            kb.set_entities(*args)
        assert kb.to_bytes() == before


def test_failed_from_bytes_leaves_mapped_kb_unchanged(mapped_kb, snapshot):
    before = mapped_kb.to_bytes()
    state = snapshot(mapped_kb)
    with pytest.raises(KBFormatError):
        mapped_kb.from_bytes(before[:100])
    assert mapped_kb.to_bytes() == before
    assert snapshot(mapped_kb) == state


# ------------------------------------------------------------------------ copy


def test_copy_of_writable_kb_is_equal_and_independent(small_kb, snapshot):
    state = snapshot(small_kb)
    clone = small_kb.copy()
    assert snapshot(clone) == state
    assert not clone.is_read_only
    clone.add_entity("Q9", 1.0, [9.0, 9.0, 9.0])
    clone.append_alias("alias_texas", "Q9", 0.5)
    clone.add_alias("alias_new", ["Q9"], [1.0])
    assert snapshot(small_kb) == state
    assert not small_kb.contains_entity("Q9")
    small_kb.add_entity("Q10", 1.0, [1.0, 1.0, 1.0])
    assert not clone.contains_entity("Q10")
    assert not numpy.shares_memory(clone.vectors, small_kb.vectors)


def test_copy_of_mapped_kb_is_writable_and_equal(mapped_kb, snapshot):
    clone = mapped_kb.copy()
    assert mapped_kb.is_read_only and not clone.is_read_only
    assert clone.path is None
    assert snapshot(clone) == snapshot(mapped_kb)
    clone.add_entity("Q9", 1.0, [9.0, 9.0, 9.0])
    clone.append_alias("alias_paris", "Q3", 0.0)
    assert [c.entity_ for c in clone.get_alias_candidates("alias_paris")] == ["Q1", "Q2", "Q3"]
    assert not mapped_kb.contains_entity("Q9")


def test_copy_of_empty_kb_is_empty_with_same_vector_length(vocab):
    clone = InMemoryLookupKB(vocab, 5).copy()
    assert clone.is_empty() and clone.entity_vector_length == 5


# -------------------------------------------------------------------- pickling


def test_pickle_in_memory_kb_round_trips_and_stays_writable(small_kb, snapshot):
    small_kb.append_alias("alias_paris", "Q3", 0.0)  # leaves a dead slot behind
    clone = pickle.loads(pickle.dumps(small_kb))
    assert snapshot(clone) == snapshot(small_kb)
    assert not clone.is_read_only
    clone.add_entity("Q9", 1.0, [0.0, 0.0, 0.0])
    assert clone.contains_entity("Q9") and not small_kb.contains_entity("Q9")


def test_pickle_empty_in_memory_kb_keeps_vector_length(vocab):
    clone = pickle.loads(pickle.dumps(InMemoryLookupKB(vocab, 6)))
    assert clone.is_empty() and clone.entity_vector_length == 6
    clone.add_entity("Q1", 1.0, [0.0] * 6)


def test_pickle_mapped_kb_maps_the_same_file_again(mapped_kb, small_kb_dir, snapshot):
    clone = pickle.loads(pickle.dumps(mapped_kb))
    assert clone.is_read_only
    assert clone.path == mapped_kb.path
    assert clone.path.resolve() == (small_kb_dir / "kb.bin").resolve()
    assert snapshot(clone) == snapshot(mapped_kb)


def test_pickle_of_mapped_kb_holds_its_path_not_its_data(vocab, tmp_path):
    rng = numpy.random.default_rng(0)
    ids = [f"Q{i}" for i in range(200)]
    kb = InMemoryLookupKB.from_arrays(vocab, ids, numpy.ones(200), rng.random((200, 1000)))
    kb.to_disk(tmp_path)
    mapped = InMemoryLookupKB(vocab, 1000).from_disk(tmp_path)
    assert len(mapped.to_bytes()) > 800_000
    assert len(pickle.dumps(mapped)) < len(pickle.dumps(vocab)) + 10_000
    assert len(pickle.dumps(kb)) > 800_000


def test_pickle_kb_loaded_from_bytes_keeps_its_content(small_kb, vocab, snapshot):
    kb = InMemoryLookupKB(vocab, 3).from_bytes(small_kb.to_bytes())
    clone = pickle.loads(pickle.dumps(kb))
    assert snapshot(clone) == snapshot(small_kb)



# --------------------------------------------- from_arrays == add_* calls (random)


@st.composite
def bulk_inputs(draw):
    """Random from_arrays input with duplicate ids and aliases (all of it valid)."""
    n = draw(st.integers(1, 8))
    ids = draw(st.lists(st.sampled_from([f"Q{i}" for i in range(6)] + ["Zürich", "東京"]),
                        min_size=n, max_size=n))
    freqs = draw(st.lists(st.integers(0, 100).map(float), min_size=n, max_size=n))
    vectors = [[float(i), float(-i)] for i in range(n)]
    m = draw(st.integers(0, 6))
    aliases = draw(st.lists(st.sampled_from([f"alias_{i}" for i in range(5)]),
                            min_size=m, max_size=m))
    offsets, cands, priors = [0], [], []
    for _ in range(m):
        k = draw(st.integers(0, 3))
        cands += draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k))
        priors += draw(st.lists(st.sampled_from([0.0, 0.125, 0.25]), min_size=k, max_size=k))
        offsets.append(len(cands))
    return ids, freqs, vectors, aliases, offsets, cands, priors


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(inputs=bulk_inputs())
def test_from_arrays_with_duplicates_builds_same_kb_as_add_calls(vocab, snapshot, inputs):
    ids, freqs, vectors, aliases, offsets, cands, priors = inputs
    with warnings.catch_warnings(record=True) as bulk_warnings:
        warnings.simplefilter("always")
        bulk = InMemoryLookupKB.from_arrays(vocab, ids, freqs, vectors, aliases, offsets,
                                            cands, priors)
    with warnings.catch_warnings(record=True) as add_warnings:
        warnings.simplefilter("always")
        one_by_one = InMemoryLookupKB(vocab, 2)
        for entity, freq, vector in zip(ids, freqs, vectors):
            one_by_one.add_entity(entity, freq, vector)
        for i, alias in enumerate(aliases):
            one_by_one.add_alias(alias, [ids[c] for c in cands[offsets[i]:offsets[i + 1]]],
                                 priors[offsets[i]:offsets[i + 1]])
    assert snapshot(bulk) == snapshot(one_by_one)
    assert bulk.get_entity_strings() == one_by_one.get_entity_strings()
    assert bulk.get_alias_strings() == one_by_one.get_alias_strings()
    assert len(bulk_warnings) == len(add_warnings)
    assert all(issubclass(w.category, KBWarning) for w in bulk_warnings)
    for result_bulk, result_add in zip(bulk.lookup_aliases(aliases),
                                       one_by_one.lookup_aliases(aliases)):
        assert result_bulk.tolist() == result_add.tolist()

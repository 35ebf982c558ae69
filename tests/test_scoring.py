"""Unit tests of entity_linker.scoring, the one definition of a candidate's score.

Every formula is checked against a hand computation on a small CandidateTable,
every gradient against central finite differences, and candidate_loss's choice
of mentions and targets against the documented rules.

The small table used throughout (``small_table``):

    mention 0: A (prior 0.6, freq 100), B (0.3, 10), C (0.1, 0)
    mention 1: no candidates
    mention 2: D (1.0, 5)                    a single candidate
    mention 3: E (0.5, 1), F (0.5, 20)       tied priors
"""

import math

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entity_linker.candidates import CandidateTable
from entity_linker.kb import hash_string
from entity_linker.scoring import (
    FEATURES,
    LOGIT_SCALE,
    NAME_FEATURES,
    NAME_WEIGHTS,
    RANKER_GAIN,
    CandidateScorer,
    blend_similarity,
    build_ranker,
    coreference,
    cosine,
    cosine_loss,
    cosine_with_grads,
    feature_matrix,
    reset_ranker,
    segment_max,
    segment_softmax,
    segment_sum,
    spacy_scores,
)

EPS = 1e-6  # scoring's smoothing of log(prior)


def _keys(ids):
    return numpy.asarray([hash_string(i) for i in ids], dtype=numpy.uint64)


def _table(offsets, priors, ids, vectors=None, freqs=None):
    n = len(priors)
    if vectors is None:
        vectors = numpy.zeros((n, 3))
    return CandidateTable(
        None,
        numpy.asarray(offsets, dtype=numpy.int64),
        numpy.asarray(priors, dtype=numpy.float32),
        numpy.asarray(vectors, dtype=numpy.float32),
        _keys(ids),
        ids=list(ids),
        freqs=None if freqs is None else numpy.asarray(freqs, dtype=numpy.float32),
    )


def _mention_of(offsets):
    return numpy.repeat(numpy.arange(len(offsets) - 1), numpy.diff(offsets))


SMALL_OFFSETS = [0, 3, 3, 4, 6]
SMALL_PRIORS = [0.6, 0.3, 0.1, 1.0, 0.5, 0.5]
SMALL_FREQS = [100, 10, 0, 5, 1, 20]
SMALL_IDS = ["A", "B", "C", "D", "E", "F"]
SMALL_SIMS = numpy.array([0.5, -0.2, 0.9, 0.3, 0.0, 0.7])
SMALL_COHERENCE = numpy.array([0.1, 0.4, -0.3, 0.2, 0.6, -0.5])


@pytest.fixture
def small_table():
    return _table(SMALL_OFFSETS, SMALL_PRIORS, SMALL_IDS, freqs=SMALL_FREQS)


def _scorer(scoring, incl_prior=True, incl_context=True, coherence_weight=0.0):
    ranker = build_ranker(coherence_weight) if scoring == "learned" else None
    return CandidateScorer(scoring, incl_prior, incl_context, coherence_weight, ranker)


# ------------------------------------------------------------------ cosine


def test_cosine_matches_hand_computation_and_is_zero_for_zero_vectors():
    # mention 0 (encoding [3, 4]) has 3 candidates, mention 1 none, mention 2
    # (zero encoding) 1, mention 3 ([0, 2]) 2.
    encodings = numpy.array([[3, 4], [1, 0], [0, 0], [0, 2]], dtype=numpy.float32)
    offsets = numpy.array([0, 3, 3, 4, 6])
    vectors = numpy.array(
        [[3, 4], [-4, 3], [0, 0], [1, 1], [1, 1], [0, -5]], dtype=numpy.float32
    )
    sims = cosine(encodings, offsets, vectors)
    assert sims.dtype == numpy.float32
    # [3,4]·[3,4] / 25 = 1; orthogonal = 0; zero vector -> 0; zero encoding -> 0;
    # [0,2]·[1,1] / (2 * sqrt 2) = 1/sqrt 2; opposite = -1.
    expected = [1.0, 0.0, 0.0, 0.0, 1 / math.sqrt(2), -1.0]
    assert sims == pytest.approx(expected, abs=1e-6)


def test_cosine_is_invariant_to_the_scale_of_encodings_and_vectors():
    rng = numpy.random.default_rng(1)
    encodings = rng.normal(size=(3, 4)).astype(numpy.float32)
    vectors = rng.normal(size=(5, 4)).astype(numpy.float32)
    offsets = numpy.array([0, 2, 2, 5])
    sims = cosine(encodings, offsets, vectors)
    scaled = cosine(7 * encodings, offsets, 0.25 * vectors)
    assert scaled == pytest.approx(sims, abs=1e-6)
    mention = _mention_of(offsets)
    for j in range(5):
        a, b = encodings[mention[j]].astype(float), vectors[j].astype(float)
        assert sims[j] == pytest.approx(a @ b / (numpy.linalg.norm(a) * numpy.linalg.norm(b)),
                                        abs=1e-6)


def test_cosine_with_grads_values_match_hand_computation():
    A = numpy.array([[1.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    B = numpy.array([[1.0, 0.0], [1.0, 0.0], [-3.0, 0.0]])
    cos, _, _ = cosine_with_grads(A, B)
    assert cos == pytest.approx([1.0, 1 / math.sqrt(2), -1.0], abs=1e-7)


def _numeric_gradient(f, X, h=1e-6):
    """Central differences of the scalar f at every entry of X."""
    numeric = numpy.zeros_like(X)
    for index in numpy.ndindex(X.shape):
        plus, minus = X.copy(), X.copy()
        plus[index] += h
        minus[index] -= h
        numeric[index] = (f(plus) - f(minus)) / (2 * h)
    return numeric


def test_cosine_with_grads_gradient_matches_finite_differences():
    rng = numpy.random.default_rng(2)
    A = rng.normal(size=(5, 4))
    B = rng.normal(size=(5, 4))
    weights = rng.normal(size=5)  # a scalar of all rows: sum_i w_i cos_i
    _, d_cos, _ = cosine_with_grads(A, B)
    analytic = weights[:, None] * d_cos
    numeric = _numeric_gradient(lambda X: weights @ cosine_with_grads(X, B)[0], A)
    numpy.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


def test_cosine_loss_is_the_mean_of_one_minus_cosine():
    encodings = numpy.array([[1.0, 0.0], [0.0, 1.0]])
    gold = numpy.array([[2.0, 0.0], [1.0, 1.0]])
    loss, _, _ = cosine_loss(encodings, gold)
    assert loss == pytest.approx((0.0 + (1 - 1 / math.sqrt(2))) / 2, abs=1e-7)


def test_cosine_loss_gradients_match_finite_differences():
    rng = numpy.random.default_rng(3)
    encodings = rng.normal(size=(4, 3))
    gold = rng.normal(size=(4, 3))
    _, d_encodings, d_gold = cosine_loss(encodings, gold)
    numpy.testing.assert_allclose(
        d_encodings, _numeric_gradient(lambda X: cosine_loss(X, gold)[0], encodings),
        rtol=1e-5, atol=1e-8)
    numpy.testing.assert_allclose(
        d_gold, _numeric_gradient(lambda X: cosine_loss(encodings, X)[0], gold),
        rtol=1e-5, atol=1e-8)


def test_blend_similarity_is_the_one_to_weight_mean_of_model_and_lexical_cosine():
    model = numpy.array([0.2, 0.8])
    lexical = numpy.array([0.6, 0.0])
    assert blend_similarity(model, lexical, 3.0) == pytest.approx([0.5, 0.2])
    assert blend_similarity(model, lexical, 0.0) == pytest.approx(model)


# ------------------------------------------------------------------ segments


def test_segment_softmax_matches_hand_computation():
    probs = segment_softmax(numpy.array([0.0, math.log(3.0), 2.0]), numpy.array([0, 2, 3]))
    assert probs.dtype == numpy.float64
    assert probs == pytest.approx([0.25, 0.75, 1.0])


def test_segment_softmax_handles_mentions_without_candidates_and_single_candidates():
    # Empty mentions first, in the middle and last (repeated offsets).
    offsets = numpy.array([0, 0, 2, 2, 3, 3])
    probs = segment_softmax(numpy.array([1.0, 1.0, -50.0]), offsets)
    assert probs == pytest.approx([0.5, 0.5, 1.0])
    assert segment_softmax(numpy.array([]), numpy.array([0, 0, 0])).shape == (0,)


def test_segment_softmax_is_stable_for_large_logits():
    probs = segment_softmax(numpy.array([1000.0, 1000.0 + math.log(3.0), -1000.0]),
                            numpy.array([0, 2, 3]))
    assert numpy.all(numpy.isfinite(probs))
    assert probs == pytest.approx([0.25, 0.75, 1.0])


segments = st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=8)


def _offsets_from_counts(counts):
    offsets = numpy.zeros(len(counts) + 1, dtype=numpy.int64)
    numpy.cumsum(counts, out=offsets[1:])
    return offsets


@settings(max_examples=60, deadline=None)
@given(counts=segments, seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_segment_softmax_sums_to_one_per_mention_and_matches_a_loop(counts, seed):
    offsets = _offsets_from_counts(counts)
    logits = numpy.random.default_rng(seed).normal(scale=20, size=int(offsets[-1]))
    probs = segment_softmax(logits, offsets)
    for start, end in zip(offsets[:-1], offsets[1:]):
        if end > start:
            segment = numpy.exp(logits[start:end] - logits[start:end].max())
            assert probs[start:end] == pytest.approx(segment / segment.sum(), abs=1e-12)
            assert probs[start:end].sum() == pytest.approx(1.0, abs=1e-12)


def test_segment_max_matches_hand_computation():
    offsets = numpy.array([0, 3, 3, 4, 6, 6])
    values = numpy.array([0.2, 0.9, -1.0, -3.0, 5.0, 5.0])
    assert segment_max(values, offsets).tolist() == [0.9, 0.9, 0.9, -3.0, 5.0, 5.0]
    assert segment_max(numpy.array([]), numpy.array([0, 0])).shape == (0,)


def test_segment_sum_adds_each_mentions_rows_and_leaves_empty_mentions_zero():
    rows = numpy.arange(12, dtype=numpy.float32).reshape(6, 2)
    offsets = numpy.array([0, 3, 3, 4, 6])  # the second mention has no candidates
    expected = numpy.zeros((4, 2), dtype=numpy.float32)
    numpy.add.at(expected, numpy.repeat(numpy.arange(4), numpy.diff(offsets)), rows)
    assert segment_sum(rows, offsets).tolist() == expected.tolist()
    assert segment_sum(rows, offsets)[1].tolist() == [0.0, 0.0]
    assert segment_sum(numpy.zeros((0, 2)), numpy.array([0, 0, 0])).tolist() == [[0, 0], [0, 0]]


@settings(max_examples=60, deadline=None)
@given(counts=segments, seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_segment_max_matches_a_loop(counts, seed):
    offsets = _offsets_from_counts(counts)
    values = numpy.random.default_rng(seed).normal(size=int(offsets[-1]))
    expected = numpy.concatenate(
        [numpy.full(end - start, values[start:end].max())
         for start, end in zip(offsets[:-1], offsets[1:]) if end > start] or [[]]
    )
    assert segment_max(values, offsets).tolist() == expected.tolist()


# ------------------------------------------------------------------ spaCy scores


# Hand-computed prior + sim - prior * sim of SMALL_PRIORS, SMALL_SIMS.
SPACY_BOTH = [0.8, 0.16, 0.91, 1.0, 0.5, 0.85]


@pytest.mark.parametrize(
    "incl_prior,incl_context,expected",
    [(True, True, SPACY_BOTH), (True, False, SMALL_PRIORS), (False, True, SMALL_SIMS.tolist())],
)
def test_spacy_scores_for_each_incl_prior_incl_context_combination(
    incl_prior, incl_context, expected
):
    priors = numpy.array(SMALL_PRIORS)
    scores = spacy_scores(priors, SMALL_SIMS.copy(), incl_prior, incl_context)
    assert scores == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "incl_prior,incl_context,expected",
    [(True, True, SPACY_BOTH), (True, False, SMALL_PRIORS), (False, True, SMALL_SIMS.tolist())],
)
def test_spacy_scorer_scores_and_logits_are_spacy_scores_and_ten_times_them(
    small_table, incl_prior, incl_context, expected
):
    scorer = _scorer("spacy", incl_prior, incl_context)
    scores = scorer.scores(small_table, SMALL_SIMS)
    assert scores.dtype == numpy.float32
    assert scores == pytest.approx(expected, abs=1e-6)
    logits, _ = scorer.logits(small_table, SMALL_SIMS)
    assert logits == pytest.approx(LOGIT_SCALE * numpy.array(expected), abs=1e-5)


def test_spacy_scores_keep_spacys_formula_for_negative_cosines():
    # Like spaCy's EntityLinker, no clipping: prior 0.2, cosine -0.5 scores
    # 0.2 - 0.5 + 0.1 = -0.2, below 0 (the only way out of [0, 1]).
    table = _table([0, 2], [0.2, 0.0], ["A", "B"])
    scores = _scorer("spacy").scores(table, numpy.array([-0.5, -1.0]))
    assert scores == pytest.approx([-0.2, -1.0], abs=1e-6)


# ------------------------------------------------------------------ softmax logits


def _softmax_logits_by_hand(incl_prior, incl_context, weight, with_coherence):
    logits = []
    for p, s, c in zip(SMALL_PRIORS, SMALL_SIMS, SMALL_COHERENCE):
        logit = 0.0
        if incl_context:
            logit += 10.0 * s
        if incl_prior:
            logit += math.log(p + 1e-6)
        if with_coherence:
            logit += weight * c
        logits.append(logit)
    return logits


@pytest.mark.parametrize("incl_prior,incl_context", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("weight", [0.0, 2.0])
@pytest.mark.parametrize("with_coherence", [True, False])
def test_softmax_logits_are_ten_cosine_plus_log_prior_plus_weighted_coherence(
    small_table, incl_prior, incl_context, weight, with_coherence
):
    scorer = _scorer("softmax", incl_prior, incl_context, weight)
    coherence_values = SMALL_COHERENCE if with_coherence else None
    logits, _ = scorer.logits(small_table, SMALL_SIMS, coherence_values)
    expected = _softmax_logits_by_hand(incl_prior, incl_context, weight, with_coherence)
    assert logits == pytest.approx(expected, abs=1e-6)


def test_softmax_scores_are_the_softmax_of_the_logits_per_mention(small_table):
    scorer = _scorer("softmax", coherence_weight=2.0)
    scores = scorer.scores(small_table, SMALL_SIMS, SMALL_COHERENCE)
    assert scores.dtype == numpy.float32
    logits = numpy.array(_softmax_logits_by_hand(True, True, 2.0, True))
    expected = numpy.exp(logits)
    expected[0:3] /= expected[0:3].sum()
    expected[3:4] /= expected[3:4].sum()
    expected[4:6] /= expected[4:6].sum()
    assert scores == pytest.approx(expected, abs=1e-6)
    assert scores[3] == pytest.approx(1.0)  # the single candidate


@settings(max_examples=40, deadline=None)
@given(
    counts=segments,
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    scoring=st.sampled_from(["spacy", "softmax", "learned"]),
    weight=st.floats(min_value=-3.0, max_value=3.0),
)
def test_scores_lie_in_zero_one(counts, seed, scoring, weight):
    # For "spacy" with non-negative cosines (see the negative-cosine test above).
    rng = numpy.random.default_rng(seed)
    offsets = _offsets_from_counts(counts)
    n = int(offsets[-1])
    table = _table(offsets, rng.uniform(0, 1, n), [f"Q{j}" for j in range(n)],
                   freqs=rng.integers(0, 1000, n))
    low = 0.0 if scoring == "spacy" else -1.0
    sims = rng.uniform(low, 1.0, n)
    scores = _scorer(scoring, coherence_weight=weight).scores(
        table, sims, rng.uniform(-1, 1, n))
    assert scores.shape == (n,)
    assert numpy.all((scores >= 0.0) & (scores <= 1.0))


# ------------------------------------------------------------------ features


def test_feature_matrix_columns_match_hand_computation(small_table):
    features = feature_matrix(small_table.offsets, small_table.priors, small_table.freqs,
                              SMALL_SIMS, SMALL_COHERENCE, True, True)
    assert features.dtype == numpy.float32
    assert features.shape == (6, len(FEATURES))
    column = {name: features[:, FEATURES.index(name)] for name in FEATURES}
    assert column["cosine"] == pytest.approx(SMALL_SIMS, abs=1e-7)
    assert column["log_prior"] == pytest.approx(
        [math.log(p + 1e-6) for p in SMALL_PRIORS], abs=1e-6)
    # Mention 3's equal priors are both the top prior.
    assert column["top_prior"].tolist() == [1, 0, 0, 1, 1, 1]
    assert column["log_freq"] == pytest.approx(
        [0.0, math.log(11 / 101), math.log(1 / 101), 0.0, math.log(2 / 21), 0.0], abs=1e-6)
    assert column["coherence"] == pytest.approx(SMALL_COHERENCE, abs=1e-7)


def test_feature_matrix_log_freq_is_at_most_zero_and_zero_for_the_most_frequent():
    rng = numpy.random.default_rng(4)
    offsets = numpy.array([0, 4, 4, 5, 9, 12])
    freqs = rng.integers(0, 10**6, size=12).astype(numpy.float32)
    freqs[9:12] = 7.0  # a mention whose candidates are all equally frequent
    features = feature_matrix(offsets, rng.uniform(0, 1, 12), freqs, numpy.zeros(12), None,
                              True, True)
    log_freq = features[:, FEATURES.index("log_freq")]
    assert numpy.all(log_freq <= 0.0)
    for start, end in zip(offsets[:-1], offsets[1:]):
        if end > start:
            top = start + int(numpy.argmax(freqs[start:end]))
            assert log_freq[top] == 0.0
    assert log_freq[9:12].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("incl_prior,incl_context", [(True, False), (False, True)])
def test_feature_matrix_columns_of_excluded_terms_are_zero(
    small_table, incl_prior, incl_context
):
    features = feature_matrix(small_table.offsets, small_table.priors, small_table.freqs,
                              SMALL_SIMS, SMALL_COHERENCE, incl_prior, incl_context)
    both = feature_matrix(small_table.offsets, small_table.priors, small_table.freqs,
                          SMALL_SIMS, SMALL_COHERENCE, True, True)
    excluded = {"cosine"} if not incl_context else {"log_prior", "top_prior"}
    for j, name in enumerate(FEATURES):
        if name in excluded:
            assert features[:, j].tolist() == [0.0] * 6, name
        else:
            assert features[:, j].tolist() == both[:, j].tolist(), name


def test_feature_matrix_without_freqs_or_coherence_leaves_those_columns_zero(small_table):
    features = feature_matrix(small_table.offsets, small_table.priors, None, SMALL_SIMS,
                              None, True, True)
    assert features[:, FEATURES.index("log_freq")].tolist() == [0.0] * 6
    assert features[:, FEATURES.index("coherence")].tolist() == [0.0] * 6


# ------------------------------------------------------------------ scorer settings


def test_candidate_scorer_rejects_unknown_scoring_and_learned_without_ranker():
    with pytest.raises(ValueError, match="scoring must be one of"):
        CandidateScorer("dot", True, True)
    with pytest.raises(ValueError, match="needs a ranker"):
        CandidateScorer("learned", True, True)


def test_uses_coherence_only_for_learned_or_a_nonzero_coherence_weight():
    assert not _scorer("spacy").uses_coherence
    assert not _scorer("softmax").uses_coherence
    assert _scorer("softmax", coherence_weight=0.5).uses_coherence
    assert _scorer("learned").uses_coherence


def test_uses_containment_only_for_learned_or_a_nonzero_containment_weight():
    assert not _scorer("softmax").uses_containment
    assert CandidateScorer("softmax", True, True, containment_weight=2.0).uses_containment
    assert _scorer("learned").uses_containment


def test_containment_adds_its_weight_times_the_value_to_the_softmax_logits():
    table, _, sims, _ = _gradient_problem()
    values = numpy.linspace(0, 1, len(sims)).astype(numpy.float32)
    plain, _ = CandidateScorer("softmax", True, True).logits(table, sims)
    scorer = CandidateScorer("softmax", True, True, containment_weight=3.0)
    logits, _ = scorer.logits(table, sims, containment_values=values)
    assert logits - plain == pytest.approx(3.0 * values, abs=1e-6)


def test_build_ranker_starts_as_the_softmax_weights_and_reset_ranker_restores_them():
    """The softmax's weights, plus the name features' initial weights (names
    are not part of the softmax scoring; without KB names they are 0)."""
    ranker = build_ranker(coherence_weight=0.7)
    expected = numpy.zeros(len(FEATURES))
    expected[FEATURES.index("cosine")] = LOGIT_SCALE
    expected[FEATURES.index("log_prior")] = 1.0
    expected[FEATURES.index("coherence")] = 0.7
    for name, weight in zip(NAME_FEATURES, NAME_WEIGHTS):
        expected[FEATURES.index(name)] = weight
    W = ranker.get_param("W")
    assert W.shape == (1, len(FEATURES))
    assert RANKER_GAIN * W[0] == pytest.approx(expected, abs=1e-6)
    assert ranker.get_param("b").tolist() == [0.0]
    ranker.set_param("W", numpy.ones_like(W))
    ranker.set_param("b", numpy.ones_like(ranker.get_param("b")))
    reset_ranker(ranker, 0.7)
    assert RANKER_GAIN * ranker.get_param("W")[0] == pytest.approx(expected, abs=1e-6)
    assert ranker.get_param("b").tolist() == [0.0]


@pytest.mark.parametrize("incl_prior,incl_context", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("weight", [0.0, 1.5])
def test_fresh_learned_scorer_gives_the_softmax_logits_and_scores(
    small_table, incl_prior, incl_context, weight
):
    learned = _scorer("learned", incl_prior, incl_context, weight)
    softmax = _scorer("softmax", incl_prior, incl_context, weight)
    for coherence_values in (SMALL_COHERENCE, None):
        learned_logits, _ = learned.logits(small_table, SMALL_SIMS, coherence_values)
        softmax_logits, _ = softmax.logits(small_table, SMALL_SIMS, coherence_values)
        assert learned_logits == pytest.approx(softmax_logits, rel=1e-5, abs=1e-5)
        assert learned.scores(small_table, SMALL_SIMS, coherence_values) == pytest.approx(
            softmax.scores(small_table, SMALL_SIMS, coherence_values), abs=1e-6)
    gold = _keys(["B", "A", "D", "F"])
    learned_loss, learned_d = learned.candidate_loss(small_table, SMALL_SIMS, gold,
                                                     SMALL_COHERENCE)
    softmax_loss, softmax_d = softmax.candidate_loss(small_table, SMALL_SIMS, gold,
                                                     SMALL_COHERENCE)
    assert learned_loss == pytest.approx(softmax_loss, rel=1e-5)
    assert learned_d == pytest.approx(softmax_d, rel=1e-4, abs=1e-6)


# ------------------------------------------------------------------ gradients


def _gradient_problem():
    """A table of 7 mentions, with usable and unusable ones, random sims and coherence.

    0: 3 candidates, gold the 2nd          1: no candidates
    2: 1 candidate (gold)                  3: 2 candidates, gold absent
    4: 4 candidates, gold the 4th          5: 3 candidates, gold 1st and 3rd (same entity)
    6: 2 candidates, gold the 1st
    """
    rng = numpy.random.default_rng(5)
    counts = [3, 0, 1, 2, 4, 3, 2]
    offsets = _offsets_from_counts(counts)
    ids = ["a0", "a1", "a2", "b0", "c0", "c1", "d0", "d1", "d2", "d3", "e0", "e1", "e0",
           "f0", "f1"]
    n = len(ids)
    priors = rng.dirichlet(numpy.ones(n))  # any values in (0, 1) will do
    table = _table(offsets, priors, ids, freqs=rng.integers(0, 500, n))
    gold = _keys(["a1", "x", "b0", "nope", "d3", "e0", "f0"])
    sims = rng.uniform(-1, 1, n)
    coherence_values = rng.uniform(-1, 1, n)
    return table, gold, sims, coherence_values


GRADIENT_CASES = [
    ("spacy", True, True, 0.0),
    ("spacy", False, True, 0.0),
    ("spacy", True, False, 0.0),
    ("softmax", True, True, 1.5),
    ("softmax", False, True, 1.5),
    ("softmax", True, False, 1.5),
    ("learned", True, True, 1.5),
    ("learned", False, True, 0.0),
]


@pytest.mark.parametrize("scoring,incl_prior,incl_context,weight", GRADIENT_CASES)
def test_candidate_loss_sims_gradient_matches_finite_differences(
    scoring, incl_prior, incl_context, weight
):
    table, gold, sims, coherence_values = _gradient_problem()
    scorer = _scorer(scoring, incl_prior, incl_context, weight)
    loss, d_sims = scorer.candidate_loss(table, sims, gold, coherence_values)
    assert loss > 0
    assert d_sims.shape == sims.shape
    if scoring == "learned":  # the ranker computes in float32
        h, rtol, atol = 1e-3, 1e-3, 1e-4
    else:
        # 1e-5: the loss takes log(p + 1e-12), its gradient is that of log(p)
        h, rtol, atol = 1e-6, 1e-5, 1e-8
    numeric = numpy.zeros_like(sims)
    for j in range(len(sims)):
        plus, minus = sims.copy(), sims.copy()
        plus[j] += h
        minus[j] -= h
        if scoring == "learned":  # the size of the step the float32 features saw
            step = float(numpy.float32(plus[j])) - float(numpy.float32(minus[j]))
        else:
            step = 2 * h
        numeric[j] = (scorer.candidate_loss(table, plus, gold, coherence_values)[0]
                      - scorer.candidate_loss(table, minus, gold, coherence_values)[0]) / step
    numpy.testing.assert_allclose(d_sims, numeric, rtol=rtol, atol=atol)
    if not incl_context:
        assert d_sims.tolist() == [0.0] * len(sims)


def _zero_grads(ranker):
    ranker.set_grad("W", numpy.zeros_like(ranker.get_param("W")))
    ranker.set_grad("b", numpy.zeros_like(ranker.get_param("b")))


@pytest.mark.parametrize("incl_prior,incl_context", [(True, True), (False, True), (True, False)])
def test_learned_ranker_weight_gradients_match_finite_differences(incl_prior, incl_context):
    table, gold, sims, coherence_values = _gradient_problem()
    ranker = build_ranker(coherence_weight=1.5, containment_weight=2.0)
    # Move away from the initial weights so that every column is weighted.
    ranker.set_param("W", ranker.get_param("W") + numpy.array(
        [[0.05, -0.02, 0.03, 0.04, -0.01, 0.02, 0.03, 0.04, -0.03]], dtype=numpy.float32))
    ranker.set_param("b", numpy.array([0.3], dtype=numpy.float32))
    scorer = CandidateScorer("learned", incl_prior, incl_context, 1.5, ranker)
    containment_values = (numpy.arange(len(sims)) % 3 / 2.0).astype(numpy.float32)
    name_values = numpy.stack([numpy.arange(len(sims)) % 4 / 3.0,
                               numpy.arange(len(sims)) % 5 / 4.0], axis=1)

    _zero_grads(ranker)
    scorer.candidate_loss(table, sims, gold, coherence_values,
                          containment_values=containment_values, name_values=name_values)
    d_W = ranker.get_grad("W").astype(numpy.float64).copy()
    d_b = ranker.get_grad("b").astype(numpy.float64).copy()

    def loss_with(name, index, value):
        original = ranker.get_param(name).copy()
        changed = original.copy()
        changed[index] = value
        ranker.set_param(name, changed)
        try:
            return scorer.candidate_loss(table, sims, gold, coherence_values,
                                         containment_values=containment_values,
                                         name_values=name_values)[0]
        finally:
            ranker.set_param(name, original)

    h = 1e-3
    for name, analytic in (("W", d_W), ("b", d_b)):
        param = ranker.get_param(name)
        for index in numpy.ndindex(param.shape):
            plus = numpy.float32(param[index] + h)
            minus = numpy.float32(param[index] - h)
            numeric = (loss_with(name, index, plus) - loss_with(name, index, minus)) / (
                float(plus) - float(minus))
            assert analytic[index] == pytest.approx(numeric, rel=1e-3, abs=1e-4), (name, index)
    # Excluded terms' columns are 0, so their weights get no gradient; b shifts
    # every logit of a mention alike, so the softmax loss does not depend on it.
    if not incl_context:
        assert d_W[0, FEATURES.index("cosine")] == 0.0
    if not incl_prior:
        assert d_W[0, FEATURES.index("log_prior")] == 0.0
        assert d_W[0, FEATURES.index("top_prior")] == 0.0
    assert d_b[0] == pytest.approx(0.0, abs=1e-5)


def test_learned_ranker_gradients_accumulate_over_calls_until_zeroed():
    table, gold, sims, coherence_values = _gradient_problem()
    ranker = build_ranker(coherence_weight=1.5)
    scorer = CandidateScorer("learned", True, True, 1.5, ranker)
    scorer.candidate_loss(table, sims, gold, coherence_values)
    once = ranker.get_grad("W").copy()
    assert numpy.any(once != 0)
    scorer.candidate_loss(table, sims, gold, coherence_values)
    assert ranker.get_grad("W") == pytest.approx(2 * once, rel=1e-6)
    _zero_grads(ranker)
    scorer.candidate_loss(table, sims, gold, coherence_values)
    assert ranker.get_grad("W") == pytest.approx(once, rel=1e-6)


def test_learned_logits_backprop_is_gain_times_cosine_weight():
    table, _, sims, coherence_values = _gradient_problem()
    ranker = build_ranker()
    ranker.set_param("W", numpy.array([[0.3, 0.1, 0.2, -0.1, 0.4, 0.1, 0.2, 0.1, 0.1]],
                                      dtype=numpy.float32))
    scorer = CandidateScorer("learned", True, True, 0.0, ranker)
    _, backprop = scorer.logits(table, sims, coherence_values)
    d_logits = numpy.linspace(-1, 1, len(sims))
    assert backprop(d_logits) == pytest.approx(RANKER_GAIN * 0.3 * d_logits, rel=1e-6)


# ------------------------------------------------------------------ candidate loss


@pytest.fixture
def loss_table():
    """mention 0: A (0.7), B (0.3), gold B       mention 1: C, D, gold absent
    mention 2: E alone, gold E                  mention 3: none, gold A
    mention 4: F (0.5), G (0.3), F (0.2), gold F (listed twice)"""
    table = _table([0, 2, 4, 5, 5, 8], [0.7, 0.3, 0.6, 0.4, 1.0, 0.5, 0.3, 0.2],
                   ["A", "B", "C", "D", "E", "F", "G", "F"], freqs=[3, 9, 1, 1, 4, 2, 8, 2])
    gold = _keys(["B", "Z", "E", "A", "F"])
    return table, gold


def test_candidate_loss_by_hand_counts_only_usable_mentions_and_the_first_gold(loss_table):
    table, gold = loss_table
    sims = numpy.array([0.1, 0.3, 0.5, -0.4, 0.9, 0.2, 0.0, 0.6])
    loss, d_sims = _scorer("softmax").candidate_loss(table, sims, gold)
    logits = 10 * sims + numpy.log(numpy.asarray(table.priors, numpy.float64) + EPS)
    p0 = numpy.exp(logits[0:2]) / numpy.exp(logits[0:2]).sum()
    p4 = numpy.exp(logits[5:8]) / numpy.exp(logits[5:8]).sum()
    # Used: mentions 0 (target B) and 4 (target the first F, position 5).
    assert loss == pytest.approx(-(math.log(p0[1]) + math.log(p4[0])) / 2, rel=1e-9)
    expected = numpy.zeros(8)
    expected[0:2] = 10 * (p0 - [0, 1]) / 2
    expected[5:8] = 10 * (p4 - [1, 0, 0]) / 2
    assert d_sims == pytest.approx(expected, abs=1e-12)
    # Gold absent (1), single candidate (2): no gradient.
    assert d_sims[2:5].tolist() == [0.0, 0.0, 0.0]
    # The second F is not a target: raising its cosine raises the loss.
    assert d_sims[5] < 0 < d_sims[7]


@pytest.mark.parametrize("scoring", ["spacy", "softmax", "learned"])
def test_candidate_loss_is_the_mean_over_the_used_mentions_only(loss_table, scoring):
    table, gold = loss_table
    sims = numpy.array([0.1, 0.3, 0.5, -0.4, 0.9, 0.2, 0.0, 0.6])
    coherence_values = numpy.linspace(-0.5, 0.5, 8)
    scorer = _scorer(scoring, coherence_weight=0.8)
    loss, d_sims = scorer.candidate_loss(table, sims, gold, coherence_values)
    used = numpy.array([0, 4])
    sub = table.select(used)
    positions = table.positions(used)
    sub_loss, sub_d = scorer.candidate_loss(sub, sims[positions], gold[used],
                                            coherence_values[positions])
    assert loss == pytest.approx(sub_loss, rel=1e-6)
    assert d_sims[positions] == pytest.approx(sub_d, rel=1e-5, abs=1e-9)
    others = numpy.setdiff1d(numpy.arange(8), positions)
    assert d_sims[others].tolist() == [0.0] * len(others)


@pytest.mark.parametrize("scoring", ["spacy", "softmax", "learned"])
def test_candidate_loss_without_usable_mentions_is_zero_and_leaves_the_ranker_alone(scoring):
    # Gold absent, a single candidate, no candidates.
    table = _table([0, 2, 3, 3], [0.5, 0.5, 1.0], ["A", "B", "C"])
    gold = _keys(["Z", "C", "A"])
    scorer = _scorer(scoring, coherence_weight=1.0)
    loss, d_sims = scorer.candidate_loss(table, numpy.array([0.2, 0.4, 0.9]), gold,
                                         numpy.zeros(3))
    assert loss == 0.0
    assert d_sims.shape == (3,)
    assert d_sims.tolist() == [0.0, 0.0, 0.0]
    if scoring == "learned":
        assert not scorer.ranker.has_grad("W")
    empty = _table([0, 0], [], [])
    loss, d_sims = scorer.candidate_loss(empty, numpy.array([]), _keys(["A"]))
    assert loss == 0.0
    assert d_sims.shape == (0,)


def test_candidate_loss_target_is_the_first_candidate_with_the_gold_key():
    # The same entity listed twice with equal logits: the first is the target.
    table = _table([0, 3], [0.25, 0.5, 0.25], ["A", "B", "A"])
    loss, d_sims = _scorer("softmax").candidate_loss(table, numpy.zeros(3), _keys(["A"]))
    assert loss == pytest.approx(-math.log(0.25 + EPS) + math.log(1 + 3 * EPS), rel=1e-6)
    assert d_sims == pytest.approx(10 * (numpy.array([0.25, 0.5, 0.25]) - [1, 0, 0]),
                                   abs=1e-4)


# ------------------------------------------------------------------ training


def _toy_training_problem(n_mentions=30, seed=6):
    """The gold is always the lowest-prior candidate, which is the most frequent
    entity; the cosines carry no information."""
    rng = numpy.random.default_rng(seed)
    offsets, priors, freqs, ids, gold, gold_positions = [0], [], [], [], [], []
    for i in range(n_mentions):
        k = int(rng.integers(2, 5))
        p = rng.dirichlet(numpy.ones(k))
        g = int(numpy.argmin(p))
        f = rng.uniform(1, 50, size=k)
        f[g] = 1000.0
        ids += [f"Q{i}_{j}" for j in range(k)]
        priors += p.tolist()
        freqs += f.tolist()
        gold.append(f"Q{i}_{g}")
        gold_positions.append(offsets[-1] + g)
        offsets.append(offsets[-1] + k)
    n = len(priors)
    table = _table(offsets, priors, ids, freqs=freqs)
    sims = rng.uniform(0.2, 0.3, n)
    return table, _keys(gold), sims, numpy.array(gold_positions)


def test_learned_ranker_learns_to_prefer_the_frequent_low_prior_gold():
    table, gold, sims, gold_positions = _toy_training_problem()
    ranker = build_ranker()
    scorer = CandidateScorer("learned", True, True, 0.0, ranker)

    def gold_first_rate():
        order = table.ranked(scorer.scores(table, sims))
        return float(numpy.mean(order[table.offsets[:-1]] == gold_positions))

    assert gold_first_rate() < 0.5  # the prior misleads the initial (softmax) ranker
    lr = 0.002
    losses = []
    for _ in range(300):
        _zero_grads(ranker)
        loss, _ = scorer.candidate_loss(table, sims, gold)
        losses.append(loss)
        ranker.set_param("W", ranker.get_param("W") - lr * ranker.get_grad("W"))
        ranker.set_param("b", ranker.get_param("b") - lr * ranker.get_grad("b"))
    final_loss, _ = scorer.candidate_loss(table, sims, gold)
    assert final_loss < 0.1 * losses[0]
    assert final_loss < 0.1
    assert gold_first_rate() == 1.0
    # It learned to use the frequency.
    assert ranker.get_param("W")[0, FEATURES.index("log_freq")] > 0


# ------------------------------------------------------------------ coreference


def test_coreference_gives_a_short_mention_the_priors_of_the_longer_one_containing_it():
    # doc 0: "Chris Harris" (HC 0.9, HF 0.1), "Harris" (HF 0.6, HC 0.3, HX 0.1);
    # doc 1: "Harris" alone; doc 0 also has "Harris Corporation" (HF 1.0).
    offsets = numpy.array([0, 2, 5, 7, 8])
    ids = ["HC", "HF", "HF", "HC", "HX", "HF", "HC", "HF"]
    priors = numpy.array([0.9, 0.1, 0.6, 0.3, 0.1, 0.7, 0.3, 1.0])
    texts = ["Chris Harris", "Harris", "Harris", "harris corporation"]
    values = coreference(offsets, _keys(ids), priors, [0, 0, 1, 0], texts)
    assert values.dtype == numpy.float32
    # The long mentions contain no longer one; "Harris" in doc 1 has none in its doc.
    assert values[[0, 1, 5, 6, 7]].tolist() == [0.0] * 5
    # "Harris" in doc 0: HF's best prior among the longer mentions is 1.0
    # ("Harris Corporation", matched case-insensitively), HC's 0.9, HX none.
    assert values[2:5] == pytest.approx([1.0, 0.9, 0.0])


def test_coreference_matches_whole_words_only():
    offsets = numpy.array([0, 1, 2])
    values = coreference(offsets, _keys(["A", "A"]), numpy.array([1.0, 1.0]), [0, 0],
                         ["Harrison Ford", "Harris"])
    assert values.tolist() == [0.0, 0.0]


def test_coreference_is_a_ranker_feature_only_with_the_prior():
    offsets = numpy.array([0, 2])
    priors = numpy.array([0.5, 0.5])
    coref = numpy.array([0.9, 0.0])
    with_prior = feature_matrix(offsets, priors, None, numpy.zeros(2), None, True, True, coref)
    assert with_prior[:, FEATURES.index("coreference")].tolist() == pytest.approx([0.9, 0.0])
    without = feature_matrix(offsets, priors, None, numpy.zeros(2), None, False, True, coref)
    assert without[:, FEATURES.index("coreference")].tolist() == [0.0, 0.0]


# ------------------------------------------------------------------ NIL option


def test_a_nil_option_takes_its_share_of_each_mention():
    offsets = numpy.array([0, 1, 3])
    logits = numpy.array([2.0, 1.0, 1.0])
    plain = segment_softmax(logits, offsets)
    assert plain[0] == 1.0  # a lone candidate
    with_nil = segment_softmax(logits, offsets, nil_logit=2.0)
    assert with_nil[0] == pytest.approx(0.5)
    assert with_nil[1:].tolist() == pytest.approx([math.e / (math.e ** 2 + 2 * math.e)] * 2)
    big = segment_softmax(numpy.array([800.0]), numpy.array([0, 1]), nil_logit=700.0)
    assert big[0] == pytest.approx(1.0) and numpy.isfinite(big).all()  # no overflow


def test_scorer_scores_with_a_nil_logit_but_trains_without():
    table, gold, sims, _ = _gradient_problem()
    plain = CandidateScorer("softmax", True, True)
    with_nil = CandidateScorer("softmax", True, True, nil_logit=1.0)
    assert (with_nil.scores(table, sims) < plain.scores(table, sims)).all()
    assert with_nil.candidate_loss(table, sims, gold)[0] == pytest.approx(
        plain.candidate_loss(table, sims, gold)[0])


@pytest.mark.parametrize("scoring", ["softmax", "learned"])
def test_word_pair_weight_gradients_through_the_candidate_loss_match_finite_differences(
        scoring):
    from entity_linker.scoring.word_pairs import build_word_pairs

    table, gold, sims, coherence_values = _gradient_problem()
    rng = numpy.random.default_rng(7)
    pairs_model = build_word_pairs(16)
    pairs_model.initialize()
    pairs_model.set_param("W", rng.normal(0, 0.01, 16).astype(numpy.float32))
    n_pairs = 40
    pairs = (rng.integers(0, 1 << 62, n_pairs).astype(numpy.uint64),
             rng.integers(0, len(sims), n_pairs), rng.uniform(0.1, 1.0, n_pairs))
    ranker = build_ranker(1.5) if scoring == "learned" else None
    scorer = CandidateScorer(scoring, True, True, 1.5, ranker, word_pairs=pairs_model)
    pairs_model.set_grad("W", numpy.zeros(16, dtype=numpy.float32))
    scorer.candidate_loss(table, sims, gold, coherence_values, pairs=pairs)
    analytic = pairs_model.get_grad("W").astype(numpy.float64).copy()
    assert analytic.any()
    weights = pairs_model.get_param("W").copy()
    h = 1e-5  # small: the pair gain (PAIR_GAIN) multiplies every step
    for row in range(16):
        losses, moved = [], []
        for step in (h, -h):
            changed = weights.copy()
            changed[row] += step
            moved.append(float(changed[row]))  # the float32 weight actually used
            pairs_model.set_param("W", changed)
            losses.append(scorer.candidate_loss(table, sims, gold, coherence_values,
                                                pairs=pairs)[0])
        pairs_model.set_param("W", weights)
        numeric = (losses[0] - losses[1]) / (moved[0] - moved[1])
        assert analytic[row] == pytest.approx(numeric, rel=2e-3, abs=1e-5), row

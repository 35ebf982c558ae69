"""Document coherence: the other mentions of a doc as evidence for a candidate.

The toy KB (conftest.py): "Paris" -> QF [1, 0, 0] (0.8), QT [0, 1, 0] (0.2);
"Texas" -> QT (0.9); "Hilton" -> QH [0, 0, 1] (0.9).
"""

import math

import numpy
import pytest

from entity_linker.candidates import CandidateTable
from entity_linker.kb import hash_string
from entity_linker.scoring import LOGIT_SCALE, CandidateScorer, coherence, cosine

KEYWORD_MODEL = {"@architectures": "test_nel.KeywordEncoder.v1"}


def _table(offsets, priors, vectors, ids):
    return CandidateTable(
        None,
        numpy.asarray(offsets, dtype=numpy.int64),
        numpy.asarray(priors, dtype=numpy.float32),
        numpy.asarray(vectors, dtype=numpy.float32),
        numpy.asarray([hash_string(i) for i in ids], dtype=numpy.uint64),
        ids=list(ids),
    )


def _coherence(table, docs, groups, include=None):
    return coherence(table.offsets, table.priors, table.vectors, docs, groups, include)


@pytest.fixture
def table():
    # mention 0: A [1,0,0] (0.75), B [0,2,0] (0.25); mention 1: B (1.0);
    # mention 2: C [0,0,3] (0.5), A (0.5)
    return _table(
        [0, 2, 3, 5],
        [0.75, 0.25, 1.0, 0.5, 0.5],
        [[1, 0, 0], [0, 2, 0], [0, 2, 0], [0, 0, 3], [1, 0, 0]],
        ["A", "B", "B", "C", "A"],
    )


def test_coherence_is_the_cosine_with_the_other_mentions_prior_weighted_summaries(table):
    coherence = _coherence(table, docs=[0, 0, 0], groups=[0, 1, 2])
    # Mention 0's context: B (mention 1) + 0.5 C + 0.5 A (mention 2) = [0.5, 1, 0.5].
    context0 = numpy.array([0.5, 1.0, 0.5]) / math.sqrt(1.5)
    # Mention 1's context: 0.75 A + 0.25 B + 0.5 C + 0.5 A = [1.25, 0.25, 0.5].
    context1 = numpy.array([1.25, 0.25, 0.5]) / math.sqrt(1.25**2 + 0.25**2 + 0.25)
    # Mention 2's context: 0.75 A + 0.25 B + B = [0.75, 1.25, 0].
    context2 = numpy.array([0.75, 1.25, 0.0]) / math.sqrt(0.75**2 + 1.25**2)
    expected = [context0[0], context0[1], context1[1], context2[2], context2[0]]
    assert coherence == pytest.approx(expected, rel=1e-5)
    assert coherence.dtype == numpy.float32


def test_coherence_ignores_other_docs_and_mentions_of_the_same_group(table):
    alone = _coherence(table, docs=[0, 1, 2], groups=[0, 1, 2])
    assert alone.tolist() == [0.0] * 5
    # Mentions 0 and 1 are one group (same text): only mention 2 votes for them.
    grouped = _coherence(table, docs=[0, 0, 0], groups=[0, 0, 1])
    context = numpy.array([0.5, 0.0, 0.5]) / math.sqrt(0.5)
    assert grouped[:3] == pytest.approx([context[0], context[1], context[1]], abs=1e-6)


def test_coherence_without_included_voters_is_zero(table):
    coherence = _coherence(table, docs=[0, 0, 0], groups=[0, 1, 2],
                                include=[True, False, False])
    # Mention 0 has no voter left; mentions 1 and 2 hear mention 0 only.
    assert coherence[:2].tolist() == [0.0, 0.0]
    context = numpy.array([0.75, 0.25, 0.0]) / math.hypot(0.75, 0.25)
    assert coherence[2] == pytest.approx(context[1], rel=1e-5)
    assert coherence[3:] == pytest.approx([0.0, context[0]], abs=1e-6)


def test_coherence_of_candidates_without_priors_weighs_them_equally():
    table = _table([0, 2, 3], [0.0, 0.0, 1.0], [[1, 0], [0, 1], [1, 1]], ["A", "B", "C"])
    coherence = _coherence(table, docs=[0, 0], groups=[0, 1])
    assert coherence[2] == pytest.approx(1.0, rel=1e-5)  # context [0.5, 0.5]


def test_select_and_positions_keep_the_chosen_mentions_candidates(table):
    assert table.positions([2, 0]).tolist() == [3, 4, 0, 1]
    sub = table.select([2, 0])
    assert sub.offsets.tolist() == [0, 2, 4]
    assert [sub.entity_id(j) for j in range(4)] == ["C", "A", "A", "B"]
    assert sub.priors.tolist() == [0.5, 0.5, 0.75, 0.25]
    assert table.select([]).n_candidates == 0


def test_candidate_loss_adds_the_weighted_coherence_to_the_logits(table):
    encodings = numpy.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 1.0]],
                            dtype=numpy.float32)
    sims = cosine(encodings, table.offsets, table.vectors)
    fit = numpy.array([0.0, 1.5, 0.0, -0.5, 1.0])
    gold = numpy.asarray([hash_string(g) for g in ["A", "B", "C"]], dtype=numpy.uint64)
    scorer = CandidateScorer("softmax", True, True, coherence_weight=2.0)
    loss, d_sims = scorer.candidate_loss(table, sims, gold, fit)

    # Mention 1 has one candidate and adds nothing; mentions 0 and 2 are averaged.
    def cross_entropy(cosines, priors, bias, gold):
        logits = LOGIT_SCALE * numpy.array(cosines) + numpy.log(
            numpy.array(priors) + 1e-6) + numpy.array(bias)
        return -(logits[gold] - numpy.log(numpy.exp(logits).sum()))
    s = 1 / math.sqrt(2)
    expected = (cross_entropy([s, s], [0.75, 0.25], [0.0, 3.0], 0)
                + cross_entropy([s, 0.0], [0.5, 0.5], [-1.0, 2.0], 0)) / 2
    assert loss == pytest.approx(expected, rel=1e-5)
    assert d_sims[2] == 0.0
    without, _ = scorer.candidate_loss(table, sims, gold)
    assert without != pytest.approx(loss)


def test_coherence_lets_the_docs_other_places_overrule_the_prior(keyword_nlp, make_doc, blank):
    words, ents = ["Paris", "and", "Texas"], [(0, 1, "GPE"), (2, 3, "GPE")]
    config = {"scoring": "softmax", "incl_context": False}
    assert keyword_nlp(**config)(make_doc(blank().vocab, words, ents)).ents[0].kb_id_ == "QF"
    doc = keyword_nlp(coherence=2.0, **config)(make_doc(blank().vocab, words, ents))
    assert [e.kb_id_ for e in doc.ents] == ["QT", "QT"]
    # Paris: QF scores log .8 + 0, QT log .2 + 2 * cos(QT, Texas's QT) = log .2 + 2.
    logits = numpy.array([math.log(0.8 + 1e-6), math.log(0.2 + 1e-6) + 2.0])
    expected = numpy.exp(logits) / numpy.exp(logits).sum()
    assert dict(doc.ents[0]._.kb_candidates)["QT"] == pytest.approx(expected[1], rel=1e-4)


def test_coherence_does_not_cross_docs_or_count_discarded_or_repeated_mentions(
    keyword_nlp, make_doc, blank
):
    config = {"scoring": "softmax", "incl_context": False, "coherence": 5.0}
    vocab = blank().vocab
    nlp = keyword_nlp(labels_discard=["ORG"], **config)
    docs = [
        make_doc(vocab, ["Paris"], [(0, 1, "GPE")]),
        make_doc(vocab, ["Texas"], [(0, 1, "GPE")]),  # another doc: no vote for Paris
        make_doc(vocab, ["Paris", "Paris"], [(0, 1, "GPE"), (1, 2, "GPE")]),
        make_doc(vocab, ["Paris", "Texas"], [(0, 1, "GPE"), (1, 2, "ORG")]),  # discarded
    ]
    linked = list(nlp.pipe(docs, batch_size=4))
    assert [e.kb_id_ for doc in linked for e in doc.ents] == [
        "QF", "QT", "QF", "QF", "QF", "NIL"
    ]


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_coherence_must_be_finite_and_not_negative(value, blank):
    with pytest.raises(ValueError, match="coherence"):
        blank().add_pipe("nel", config={"scoring": "softmax", "coherence": value})


def test_coherence_needs_softmax_scoring(blank):
    with pytest.raises(ValueError, match="scoring='softmax'"):
        blank().add_pipe("nel", config={"coherence": 1.0})


def test_the_training_loss_sees_the_coherence_of_all_mentions(make_nlp, toy_examples):
    # In "The Texas town of Paris", coherence with Texas favours QT for Paris.
    nlps = {w: make_nlp({"scoring": "softmax", "coherence": w, "model": KEYWORD_MODEL,
                         "candidate_loss_weight": 1.0}, initialize=False)
            for w in (0.0, 3.0)}
    examples = {w: nlp.get_pipe("nel")._ensure_ents(toy_examples(nlp.vocab)[3:])
                for w, nlp in nlps.items()}
    encodings = numpy.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=numpy.float32)
    losses = {w: nlps[w].get_pipe("nel").get_loss(examples[w], encodings)[0]
              for w in nlps}
    # Paris's gold QT: 10 * 0 + log .2 + 3 * 1 vs QF: 10 * 1 + log .8 + 0.
    qt = math.log(0.2 + 1e-6) + 3.0
    qf = 10.0 + math.log(0.8 + 1e-6)
    without = -(math.log(0.2 + 1e-6) - numpy.logaddexp(math.log(0.2 + 1e-6), qf))
    expected_gap = without - (-(qt - numpy.logaddexp(qt, qf)))
    # Texas has a single candidate: only Paris's cross-entropy changes (averaged over 1).
    assert losses[0.0] - losses[3.0] == pytest.approx(expected_gap, rel=1e-4)


def test_training_with_coherence_lowers_the_loss(make_nlp, toy_examples, train):
    nlp = make_nlp({"scoring": "softmax", "coherence": 4.0, "candidate_loss_weight": 1.0})
    _, losses = train(nlp, toy_examples(nlp.vocab), epochs=8)
    assert losses[-1]["nel"] < losses[0]["nel"]

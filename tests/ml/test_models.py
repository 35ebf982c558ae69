"""The mention encoder: pooling windows, shapes and gradients."""

import numpy
import pytest
import spacy
from spacy.ml.models import build_hash_embed_cnn_tok2vec
from spacy.tokens import Doc, Span
from thinc.api import NumpyOps

from entity_linker.ml.models import build_nel_encoder_v2, doc_windows, mention_pool


@pytest.fixture
def nlp():
    return spacy.blank("en")


def _small_tok2vec():
    return build_hash_embed_cnn_tok2vec(
        pretrained_vectors=None, width=8, depth=1, embed_size=50, window_size=1,
        maxout_pieces=2, subword_features=False)


def _doc(nlp, words, ents, sent_starts=None):
    doc = Doc(nlp.vocab, words=words, sent_starts=sent_starts)
    doc.ents = [Span(doc, s, e, label="X_") for s, e in ents]
    return doc


def test_windows_cover_the_mention_sentence_and_n_neighbours(nlp):
    words = ["a", "b", ".", "c", "Paris", ".", "d", "e", "."]
    starts = [True, False, False, True, False, False, True, False, False]
    doc = _doc(nlp, words, [(4, 5)], sent_starts=starts)
    assert doc_windows(doc, 0) == [(4, 5, 3, 6)]
    assert doc_windows(doc, 1) == [(4, 5, 0, 9)]


def test_windows_span_the_whole_doc_without_sentence_boundaries(nlp):
    doc = Doc(nlp.vocab, words=["x", "Paris", "y"])
    doc.ents = [Span(doc, 1, 2, label="X_")]
    assert doc_windows(doc, 0) == [(1, 2, 0, 3)]


def _reference_windows(doc, n_sents):
    """The windows from doc.ents and doc.sents, spelled out."""
    sents = list(doc.sents) if doc.has_annotation("SENT_START") else [doc[:]]
    rows = []
    for ent in doc.ents:
        touched = [i for i, s in enumerate(sents) if s.start < ent.end and ent.start < s.end]
        first = max(0, touched[0] - n_sents)
        last = min(len(sents) - 1, touched[-1] + n_sents)
        rows.append((ent.start, ent.end, sents[first].start, sents[last].end))
    return rows


@pytest.mark.parametrize("seed", range(30))
def test_windows_match_doc_ents_and_doc_sents(nlp, seed):
    rng = numpy.random.default_rng(seed)
    n = int(rng.integers(1, 30))
    sent_starts = None
    if seed % 3:
        sent_starts = [True] + [bool(x) for x in rng.random(n - 1) < 0.2]
    doc = Doc(nlp.vocab, words=[f"w{i}" for i in range(n)], sent_starts=sent_starts)
    spans, i = [], 0
    while i < n:  # adjacent entities, entities across sentence boundaries, gaps
        length = int(rng.integers(1, 4))
        if rng.random() < 0.4 and i + length <= n:
            spans.append(Span(doc, i, i + length, label=["A", "B"][int(rng.integers(2))]))
            i += length
        else:
            i += 1
    doc.ents = spans
    for n_sents in (0, 1, 2):
        assert doc_windows(doc, n_sents) == _reference_windows(doc, n_sents)


def test_mentions_in_one_sentence_get_different_pooled_vectors():
    model = mention_pool()
    model.initialize()
    X = numpy.arange(12, dtype="float32").reshape(6, 2)
    W = numpy.asarray([[0, 1, 0, 6], [4, 6, 0, 6]], dtype="int32")
    Y, _ = model((([X], [W])), is_train=False)
    assert Y.shape == (2, 6)
    numpy.testing.assert_allclose(Y[0, :2], X[0])
    numpy.testing.assert_allclose(Y[1, :2], X[4:6].mean(axis=0))
    numpy.testing.assert_allclose(Y[0, 2:4], X.mean(axis=0))
    numpy.testing.assert_allclose(Y[:, 4:], numpy.vstack([X.mean(axis=0)] * 2))


def test_pool_gradient_matches_finite_differences():
    ops = NumpyOps()
    rng = numpy.random.default_rng(0)
    model = mention_pool()
    model.initialize()
    Xs = [rng.normal(size=(5, 3)).astype("float32"), rng.normal(size=(4, 3)).astype("float32")]
    Ws = [ops.asarray2i([[1, 3, 0, 5], [4, 5, 2, 5]]), ops.asarray2i([[0, 2, 0, 4]])]
    weights = rng.normal(size=(3, 9)).astype("float32")

    def loss(tokvecs):
        Y, _ = model((tokvecs, Ws), is_train=False)
        return float((Y * weights).sum())

    _, backprop = model((Xs, Ws), is_train=True)
    d_tokvecs, _ = backprop(weights)
    eps = 1e-2
    for doc_index, X in enumerate(Xs):
        for i in range(X.shape[0]):
            for j in range(X.shape[1]):
                plus = [x.copy() for x in Xs]
                minus = [x.copy() for x in Xs]
                plus[doc_index][i, j] += eps
                minus[doc_index][i, j] -= eps
                numeric = (loss(plus) - loss(minus)) / (2 * eps)
                assert d_tokvecs[doc_index][i, j] == pytest.approx(numeric, abs=1e-2)


def test_pool_handles_docs_without_mentions():
    model = mention_pool()
    model.initialize()
    X = numpy.ones((3, 2), dtype="float32")
    empty = numpy.zeros((0, 4), dtype="int32")
    Y, backprop = model(([X, X], [empty, empty]), is_train=True)
    assert Y.shape == (0, 6)
    d_tokvecs, _ = backprop(Y)
    assert [d.shape for d in d_tokvecs] == [(3, 2), (3, 2)]


def test_pool_keeps_only_the_chosen_pools_in_mention_window_doc_order():
    model = mention_pool(["doc", "window"])
    model.initialize()
    X = numpy.arange(12, dtype="float32").reshape(6, 2)
    W = numpy.asarray([[0, 1, 0, 3]], dtype="int32")
    Y, backprop = model(([X], [W]), is_train=True)
    assert Y.shape == (1, 4)
    numpy.testing.assert_allclose(Y[0, :2], X[0:3].mean(axis=0))  # window first
    numpy.testing.assert_allclose(Y[0, 2:], X.mean(axis=0))
    d_tokvecs, _ = backprop(numpy.ones((1, 4), dtype="float32"))
    # Each token gets 1/6 from the doc mean; the window's tokens 1/3 more.
    numpy.testing.assert_allclose(d_tokvecs[0][:, 0], [0.5, 0.5, 0.5, 1 / 6, 1 / 6, 1 / 6],
                                  rtol=1e-6)


@pytest.mark.parametrize("pools", [[], ["window", "window"], ["sentence"]])
def test_v2_rejects_bad_pools(pools):
    tok2vec = _small_tok2vec()
    with pytest.raises(ValueError, match="pools"):
        build_nel_encoder_v2(tok2vec, nO=4, pools=pools)


@pytest.mark.parametrize("residual", [True, False])
def test_v2_encodes_one_row_per_mention_with_the_kb_width(nlp, residual):
    tok2vec = _small_tok2vec()
    model = build_nel_encoder_v2(tok2vec, nO=5, residual=residual)
    docs = [_doc(nlp, ["Paris", "and", "Texas", "."], [(0, 1), (2, 3)]),
            _doc(nlp, ["no", "mention"], [])]
    model.initialize(X=docs)
    encodings = model.predict(docs)
    assert encodings.shape == (2, 5)
    # Window and doc pools only: two mentions of one sentence encode alike.
    numpy.testing.assert_allclose(encodings[0], encodings[1], rtol=1e-6)

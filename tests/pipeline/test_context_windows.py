"""The encoder's context = "windows": the tok2vec reads only the mentions' windows."""

import numpy
import pytest
from spacy.tokens import Doc, Span
from spacy.util import registry


def _encoder(small_tok2vec, context, n_sents=0):
    model = registry.resolve({"m": {
        "@architectures": "entity_linker.EntityLinker.v1", "tok2vec": small_tok2vec,
        "nO": 4, "context": context,
    }})["m"]
    for node in model.walk():
        if node.name in ("mention_windows", "context_windows"):
            node.attrs["n_sents"] = n_sents
    return model


def _doc(vocab, words, sent_starts, ents):
    doc = Doc(vocab, words=words, sent_starts=sent_starts)
    doc.ents = [Span(doc, s, e, label="GPE") for s, e in ents]
    return doc


WORDS = ["Paris", "is", "big", ".", "Rain", "today", ".", "Lyon", "too", "."]
STARTS = [True, False, False, False, True, False, False, True, False, False]


@pytest.mark.parametrize("n_sents", [0, 1])
def test_windows_encodings_ignore_text_outside_the_windows(small_tok2vec, blank, n_sents):
    vocab = blank().vocab
    model = _encoder(small_tok2vec, "windows", n_sents)
    doc = _doc(vocab, WORDS, STARTS, [(0, 1), (7, 8)])
    model.initialize(X=[doc], Y=model.ops.alloc2f(2, 4))
    # The middle sentence lies outside both windows only when n_sents is 0.
    changed = _doc(vocab, WORDS[:4] + ["Snow", "tomorrow", "."] + WORDS[7:], STARTS,
                   [(0, 1), (7, 8)])
    same = numpy.allclose(model.predict([doc]), model.predict([changed]))
    assert same == (n_sents == 0)
    # Each mention's encoding is that of its window cut out as a doc of its own.
    if n_sents == 0:
        alone = [doc[0:4].as_doc(), doc[7:10].as_doc()]
        numpy.testing.assert_allclose(model.predict([doc]), model.predict(alone), rtol=1e-5,
                                      atol=1e-6)


def test_doc_encodings_see_the_whole_doc(small_tok2vec, blank):
    vocab = blank().vocab
    model = _encoder(small_tok2vec, "doc")
    doc = _doc(vocab, WORDS, STARTS, [(0, 1), (7, 8)])
    model.initialize(X=[doc], Y=model.ops.alloc2f(2, 4))
    changed = _doc(vocab, WORDS[:4] + ["Snow", "tomorrow", "."] + WORDS[7:], STARTS,
                   [(0, 1), (7, 8)])
    assert not numpy.allclose(model.predict([doc]), model.predict([changed]))


def test_windows_keep_one_row_per_mention_in_order(small_tok2vec, blank):
    vocab = blank().vocab
    model = _encoder(small_tok2vec, "windows", n_sents=1)
    docs = [
        _doc(vocab, WORDS, STARTS, [(0, 1), (2, 3), (7, 8)]),  # overlapping windows merge
        Doc(vocab, words=["No", "entities"]),
        _doc(vocab, ["Hilton"], [True], [(0, 1)]),
        Doc(vocab, words=["Lyon", "and", "Nice"], ents=["B-GPE", "O", "B-GPE"]),  # no sents
    ]
    model.initialize(X=docs, Y=model.ops.alloc2f(6, 4))
    encodings = model.predict(docs)
    assert encodings.shape == (6, 4)
    single = numpy.vstack([model.predict([doc]) for doc in docs if doc.ents])
    numpy.testing.assert_allclose(encodings, single, rtol=1e-5, atol=1e-6)
    assert model.predict([docs[1]]).shape == (0, 4)


def test_unknown_context_is_rejected(small_tok2vec):
    with pytest.raises(ValueError, match="context must be one of"):
        _encoder(small_tok2vec, "sentence")


def test_windows_context_rejects_a_listener():
    listener = {"@architectures": "spacy.Tok2VecListener.v1", "width": 32, "upstream": "*"}
    with pytest.raises(ValueError, match="own tok2vec"):
        _encoder(listener, "windows")


def test_nel_with_windows_context_trains_links_and_round_trips(make_nlp, small_tok2vec,
                                                               toy_examples, train,
                                                               unlinked_docs, link_outputs):
    model = {"@architectures": "entity_linker.EntityLinker.v1", "tok2vec": small_tok2vec,
             "context": "windows"}
    nlp = make_nlp({"model": model, "n_sents": 1}, initialize=False)
    examples = toy_examples(nlp.vocab)
    _, losses = train(nlp, examples, epochs=4)
    assert losses[-1]["nel"] < losses[0]["nel"]
    assert [n.attrs["n_sents"] for n in nlp.get_pipe("nel").model.walk()
            if n.name == "context_windows"] == [1]
    docs = unlinked_docs(nlp.vocab, examples)
    linked = link_outputs(nlp.pipe([d.copy() for d in docs]))
    restored = nlp.__class__(nlp.vocab).from_config(nlp.config)
    restored.from_bytes(nlp.to_bytes())
    assert link_outputs(restored.pipe([d.copy() for d in docs])) == linked


def test_cut_windows_keep_what_the_encoder_reads(blank):
    from spacy.attrs import ENT_IOB, ENT_KB_ID, ENT_TYPE, NORM, ORTH, SENT_START

    from entity_linker.ml.models import _cut

    vocab = blank().vocab
    doc = Doc(vocab, words=WORDS, spaces=[True, True, False, True] * 2 + [True, False],
              sent_starts=STARTS)
    doc.ents = [Span(doc, 0, 1, "GPE", kb_id="Q90"), Span(doc, 7, 8, "GPE")]
    doc[8].norm_ = "also"  # a token-level norm, as tokenizer exceptions set
    attrs = [ORTH, NORM, ENT_IOB, ENT_TYPE, ENT_KB_ID, SENT_START]
    for (start, end), window in zip([(0, 4), (7, 10)], _cut(doc, [[0, 4], [7, 10]])):
        reference = doc[start:end].as_doc()
        numpy.testing.assert_array_equal(window.to_array(attrs), reference.to_array(attrs))
        assert window.text_with_ws == reference.text_with_ws
        assert [(e.text, e.label_, e.kb_id_) for e in window.ents] == [
            (e.text, e.label_, e.kb_id_) for e in reference.ents]

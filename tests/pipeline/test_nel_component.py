"""The methods of the ``nel`` component and the annotations it sets."""

import numpy
import pytest
from spacy.tokens import Doc, Span
from spacy.training import Example
from thinc.api import Optimizer

from entity_linker import InMemoryLookupKB

# --------------------------------------------------------------- __call__


def test_call_sets_token_and_span_kb_ids_and_scores(keyword_nlp, make_doc):
    nlp = keyword_nlp()
    doc = make_doc(nlp.vocab, ["I", "saw", "Hilton", "in", "Paris", "Texas", "today"],
                   [(2, 3, "PERSON"), (4, 6, "GPE")])
    doc = nlp(doc)
    hilton, paris_texas = doc.ents
    assert hilton.kb_id_ == "QH"
    assert paris_texas.kb_id_ == "QT"
    assert [token.ent_kb_id_ for token in doc] == ["", "", "QH", "", "QT", "QT", ""]
    for ent in doc.ents:
        assert isinstance(ent._.kb_score, float)
        assert all(isinstance(i, str) and isinstance(s, float) for i, s in ent._.kb_candidates)


def test_kb_candidates_are_sorted_by_score_and_led_by_the_chosen_entity(
    trained_synthetic, link_outputs
):
    nlp = trained_synthetic["nlp"]
    docs = list(nlp.pipe(trained_synthetic["docs"]))
    n_checked = 0
    for doc in docs:
        for ent in doc.ents:
            candidates = ent._.kb_candidates
            assert 1 <= len(candidates) <= nlp.get_pipe("nel").top_k
            scores = [score for _, score in candidates]
            assert scores == sorted(scores, reverse=True)
            assert candidates[0] == (ent.kb_id_, ent._.kb_score)
            assert len({kb_id for kb_id, _ in candidates}) == len(candidates)
            n_checked += 1
    assert n_checked == len(trained_synthetic["test"])


def test_kb_candidates_lists_all_candidates_of_the_mention_with_their_scores(
    keyword_nlp, make_doc, blank
):
    doc = keyword_nlp()(make_doc(blank().vocab, ["Paris", "mixed"], [(0, 1, "GPE")]))
    cos = numpy.array([1.0, 1.2]) / numpy.hypot(1, 1.2)
    expected = numpy.array([0.8, 0.2]) + cos - numpy.array([0.8, 0.2]) * cos
    candidates = doc.ents[0]._.kb_candidates
    assert [kb_id for kb_id, _ in candidates] == ["QF", "QT"]
    assert [score for _, score in candidates] == pytest.approx(expected.tolist(), rel=1e-5)


def test_mention_without_candidates_is_nil_with_an_empty_candidate_list(keyword_nlp, make_doc):
    nlp = keyword_nlp()
    doc = nlp(make_doc(nlp.vocab, ["Nowhere", "and", "Texas"], [(0, 1, "GPE"), (2, 3, "GPE")]))
    assert [ent.kb_id_ for ent in doc.ents] == ["NIL", "QT"]
    assert doc.ents[0]._.kb_candidates == []
    assert doc.ents[0]._.kb_score is None


def test_linking_is_deterministic(trained_synthetic, unlinked_docs, link_outputs):
    nlp = trained_synthetic["nlp"]
    first = link_outputs(nlp.pipe(unlinked_docs(nlp.vocab, trained_synthetic["test"])))
    second = link_outputs(nlp.pipe(unlinked_docs(nlp.vocab, trained_synthetic["test"])))
    assert first == second


def test_pipe_with_any_batch_size_gives_the_same_links_as_doc_by_doc(
    trained_synthetic, unlinked_docs, link_outputs
):
    nlp = trained_synthetic["nlp"]
    examples = trained_synthetic["test"]
    one_by_one = link_outputs([nlp(doc) for doc in unlinked_docs(nlp.vocab, examples)])
    for batch_size in (1, 7, 1000):
        piped = link_outputs(nlp.pipe(unlinked_docs(nlp.vocab, examples), batch_size=batch_size))
        assert len(piped) == len(one_by_one)
        for doc_a, doc_b in zip(piped, one_by_one):
            for (s_a, e_a, id_a, score_a, cands_a, toks_a), (s_b, e_b, id_b, score_b, cands_b,
                                                           toks_b) in zip(doc_a, doc_b):
                assert (s_a, e_a, id_a, toks_a) == (s_b, e_b, id_b, toks_b)
                # Scores may differ in the last float32 bit with the batch composition.
                assert score_a == pytest.approx(score_b, rel=1e-5, abs=1e-6)
                assert [c for c, _ in cands_a] == [c for c, _ in cands_b]


def test_pipe_handles_empty_docs_and_docs_without_entities(make_nlp, make_doc):
    nlp = make_nlp()
    docs = [
        make_doc(nlp.vocab, ["Paris", "is", "nice"], [(0, 1, "GPE")]),
        Doc(nlp.vocab, words=[]),
        make_doc(nlp.vocab, ["No", "entities", "here"]),
        make_doc(nlp.vocab, ["Hilton", "and", "Texas"], [(0, 1, "PERSON"), (2, 3, "GPE")]),
    ]
    docs = list(nlp.pipe(docs, batch_size=4))
    assert [[ent.kb_id_ for ent in doc.ents] for doc in docs] == [
        [docs[0].ents[0].kb_id_], [], [], ["QH", "QT"]
    ]
    assert docs[0].ents[0].kb_id_ in {"QF", "QT"}


# ------------------------------------------------------------------ set_kb


@pytest.mark.parametrize("not_callable", [None, "kb", 3])
def test_set_kb_rejects_a_non_callable(not_callable, blank):
    nel = blank().add_pipe("nel")
    with pytest.raises(ValueError, match="set_kb"):
        nel.set_kb(not_callable)


def test_set_kb_rejects_a_kb_instead_of_a_loader(toy_kb, blank):
    nlp = blank()
    nel = nlp.add_pipe("nel")
    with pytest.raises(ValueError):
        nel.set_kb(toy_kb(nlp.vocab))


def test_set_kb_calls_the_loader_with_the_pipeline_vocab(toy_kb, blank):
    nlp = blank()
    nel = nlp.add_pipe("nel")
    seen = []

    def loader(vocab):
        seen.append(vocab)
        return toy_kb(vocab)

    nel.set_kb(loader)
    assert seen == [nlp.vocab]
    assert nel.kb.contains_alias("Paris")


# -------------------------------------------------------------- initialize


def test_initialize_with_kb_loader_sets_the_kb_and_the_model_width(toy_kb, toy_examples,
                                                                   small_model, make_doc, blank):
    nlp = blank()
    nel = nlp.add_pipe("nel", config={"model": small_model})
    examples = toy_examples(nlp.vocab)
    nel.initialize(lambda: examples, nlp=nlp, kb_loader=toy_kb)
    assert nel.kb.contains_alias("Paris")
    assert nel.model.get_dim("nO") == 3
    doc = nlp(make_doc(nlp.vocab, ["Texas"], [(0, 1, "GPE")]))
    assert doc.ents[0].kb_id_ == "QT"


def test_initialize_through_nlp_with_a_kb_loader_in_the_config(tmp_path, toy_kb, toy_examples,
                                                               small_model, blank):
    nlp = blank()
    toy_kb(nlp.vocab).to_disk(tmp_path / "kb")
    nel = nlp.add_pipe("nel", config={"model": small_model})
    nlp.config["initialize"]["components"]["nel"] = {
        "kb_loader": {"@misc": "entity_linker.KBFromFile.v1", "kb_path": str(tmp_path / "kb")}
    }
    nlp.initialize(lambda: toy_examples(nlp.vocab))
    assert nel.kb.is_read_only
    assert nel.kb.contains_alias("Texas")


def test_initialize_without_examples_raises(make_nlp):
    nlp = make_nlp(initialize=False)
    nel = nlp.get_pipe("nel")
    # spaCy's validate_get_examples rejects both (E930, a TypeError).
    with pytest.raises(TypeError, match="get_examples"):
        nel.initialize(lambda: [])
    with pytest.raises(TypeError, match="get_examples"):
        nel.initialize(None)


def test_initialize_with_an_empty_kb_raises(make_nlp, toy_examples):
    nlp = make_nlp(kb=False)
    with pytest.raises(ValueError, match="empty"):
        nlp.initialize(lambda: toy_examples(nlp.vocab))


def test_initialize_with_examples_without_entities_leaves_them_unchanged(make_nlp, make_doc):
    nlp = make_nlp(initialize=False, config={"use_gold_ents": False})
    docs = [make_doc(nlp.vocab, ["The", "sky", "is", "blue"])]
    examples = [Example(doc, doc.copy()) for doc in docs]
    nlp.initialize(lambda: examples)
    assert all(len(eg.predicted.ents) == 0 and len(eg.reference.ents) == 0 for eg in examples)
    assert nlp.get_pipe("nel").model.get_dim("nO") == 3
    doc = nlp(make_doc(nlp.vocab, ["Hilton"], [(0, 1, "PERSON")]))
    assert doc.ents[0].kb_id_ == "QH"


# ----------------------------------------------------------------- predict


def test_predict_returns_one_id_per_entity_in_order_without_changing_the_docs(
    keyword_nlp, make_doc
):
    nlp = keyword_nlp()
    nel = nlp.get_pipe("nel")
    docs = [
        make_doc(nlp.vocab, ["Hilton", ".", "Paris", "texas"],
                 [(0, 1, "PERSON"), (2, 3, "GPE")], sent_starts=[1, 0, 1, 0]),
        make_doc(nlp.vocab, ["No", "entity"]),
        make_doc(nlp.vocab, ["Nowhere", "Paris", "france", "Texas"],
                 [(0, 1, "LOC"), (1, 2, "GPE"), (3, 4, "GPE")]),
    ]
    kb_ids = nel.predict(docs)
    assert list(kb_ids) == ["QH", "QT", "NIL", "QF", "QT"]
    assert len(kb_ids.scores) == len(kb_ids.candidates) == 5
    assert kb_ids.scores[2] is None and kb_ids.candidates[2] == []
    assert all(token.ent_kb_id_ == "" for doc in docs for token in doc)
    assert all(ent._.kb_score is None for doc in docs for ent in doc.ents)


def test_predict_accepts_a_single_doc_and_a_generator(keyword_nlp, make_doc):
    nlp = keyword_nlp()
    nel = nlp.get_pipe("nel")
    doc = make_doc(nlp.vocab, ["Hilton", "and", "Texas"], [(0, 1, "PERSON"), (2, 3, "GPE")])
    assert list(nel.predict(doc)) == ["QH", "QT"]
    assert list(nel.predict(d for d in [doc, doc])) == ["QH", "QT", "QH", "QT"]


@pytest.mark.parametrize("docs_words", [[], [[]], [["no", "ents"]], [[], ["no", "ents"], []]])
def test_predict_without_entities_returns_an_empty_list(make_nlp, docs_words):
    nlp = make_nlp()
    docs = [Doc(nlp.vocab, words=words) for words in docs_words]
    assert list(nlp.get_pipe("nel").predict(docs)) == []


def test_predict_works_with_and_without_sentence_boundaries(make_nlp, make_doc):
    nlp = make_nlp({"n_sents": 1})
    nel = nlp.get_pipe("nel")
    words = ["Paris", "is", "big", ".", "Hilton", "went", "to", "Texas", "."]
    ents = [(0, 1, "GPE"), (4, 5, "PERSON"), (7, 8, "GPE")]
    unsplit = make_doc(nlp.vocab, words, ents)
    assert not unsplit.has_annotation("SENT_START")
    split = make_doc(nlp.vocab, words, ents, sent_starts=[1, 0, 0, 0, 1, 0, 0, 0, 0])
    for doc in (unsplit, split):
        kb_ids = nel.predict([doc])
        assert len(kb_ids) == 3
        assert kb_ids[0] in {"QF", "QT"} and kb_ids[1:] == ["QH", "QT"]


def test_predict_handles_an_entity_crossing_a_sentence_boundary(make_nlp, make_doc):
    nlp = make_nlp({"n_sents": 1})
    words = ["Paris", "Texas", "is", "big", "."]
    doc = make_doc(nlp.vocab, words, [(0, 2, "GPE")], sent_starts=[1, 1, 0, 0, 0])
    assert list(nlp.get_pipe("nel").predict([doc])) == ["QT"]


def test_predict_on_a_batch_equals_predict_per_doc(make_nlp, make_doc):
    nlp = make_nlp()
    nel = nlp.get_pipe("nel")
    docs = [
        make_doc(nlp.vocab, ["Paris", "in", "France"], [(0, 1, "GPE")]),
        Doc(nlp.vocab, words=[]),
        make_doc(nlp.vocab, ["quiet"]),
        make_doc(nlp.vocab, ["Twin", "Paris", "Triple", "Zero"],
                 [(0, 1, "X"), (1, 2, "GPE"), (2, 3, "X"), (3, 4, "X")]),
    ]
    batch = nel.predict(docs)
    per_doc = [kb_id for doc in docs for kb_id in nel.predict([doc])]
    assert list(batch) == per_doc
    assert len(batch) == 5


def test_predict_with_a_missing_kb_raises_a_clear_error(make_nlp, make_doc):
    nlp = make_nlp()
    nel = nlp.get_pipe("nel")
    nel.kb = None
    doc = make_doc(nlp.vocab, ["Paris"], [(0, 1, "GPE")])
    with pytest.raises(ValueError, match="not set"):
        nel.predict([doc])
    with pytest.raises(ValueError, match="not set"):
        nlp(doc)


def test_predict_and_update_with_an_empty_kb_raise_a_clear_error(make_nlp, make_doc,
                                                                  toy_examples):
    nlp = make_nlp(kb=False)
    nel = nlp.get_pipe("nel")
    with pytest.raises(ValueError, match="empty"):
        nlp(make_doc(nlp.vocab, ["Paris"], [(0, 1, "GPE")]))
    with pytest.raises(ValueError, match="empty"):
        nel.update(toy_examples(nlp.vocab))


def test_update_with_a_missing_kb_raises_a_clear_error(make_nlp, toy_examples):
    nlp = make_nlp()
    nel = nlp.get_pipe("nel")
    nel.kb = None
    with pytest.raises(ValueError, match="not set"):
        nel.update(toy_examples(nlp.vocab))


# --------------------------------------------------------- set_annotations


def test_set_annotations_with_the_wrong_number_of_ids_raises(keyword_nlp, make_doc):
    nlp = keyword_nlp()
    nel = nlp.get_pipe("nel")
    doc = make_doc(nlp.vocab, ["Hilton", "and", "Texas"], [(0, 1, "PERSON"), (2, 3, "GPE")])
    with pytest.raises(ValueError, match="Expected 2 kb ids"):
        nel.set_annotations([doc], ["QH"])
    with pytest.raises(ValueError):
        nel.set_annotations([doc], ["QH", "QT", "QF"])
    with pytest.raises(ValueError):
        nel.set_annotations([doc, doc], nel.predict([doc]))


def test_set_annotations_accepts_a_plain_list_of_ids(keyword_nlp, make_doc):
    nlp = keyword_nlp()
    nel = nlp.get_pipe("nel")
    docs = [
        make_doc(nlp.vocab, ["Hilton", "and", "Texas"], [(0, 1, "PERSON"), (2, 3, "GPE")]),
        make_doc(nlp.vocab, ["Paris", "Texas"], [(0, 2, "GPE")]),
    ]
    nel.set_annotations(docs, ["QF", "NIL", "QH"])
    assert [[ent.kb_id_ for ent in doc.ents] for doc in docs] == [["QF", "NIL"], ["QH"]]
    assert [token.ent_kb_id_ for token in docs[1]] == ["QH", "QH"]
    assert docs[0].ents[0]._.kb_score is None


def test_set_annotations_with_predictions_sets_the_scores(keyword_nlp, make_doc):
    nlp = keyword_nlp()
    nel = nlp.get_pipe("nel")
    doc = make_doc(nlp.vocab, ["Paris", "texas"], [(0, 1, "GPE")])
    kb_ids = nel.predict([doc])
    nel.set_annotations([doc], kb_ids)
    assert doc.ents[0].kb_id_ == "QT"
    assert doc.ents[0]._.kb_score == kb_ids.scores[0]
    assert doc.ents[0]._.kb_candidates == kb_ids.candidates[0]


# -------------------------------------------------------------- tie-breaking


def test_equal_scores_and_priors_are_broken_by_the_lower_entity_id(keyword_nlp, make_doc):
    # "Twin" lists QT first; QF and QT have the same prior.
    nlp = keyword_nlp(incl_context=False)
    doc = nlp(make_doc(nlp.vocab, ["Twin"], [(0, 1, "X")]))
    assert doc.ents[0].kb_id_ == "QF"
    assert doc.ents[0]._.kb_candidates == [("QF", 0.25), ("QT", 0.25)]


def test_zero_entity_vectors_tie_is_broken_by_the_lower_entity_id(keyword_nlp, make_doc):
    # "Zero" lists QZ first; both have zero vectors (similarity 0) and prior 0.5.
    nlp = keyword_nlp()
    doc = nlp(make_doc(nlp.vocab, ["Zero", "france", "texas"], [(0, 1, "X")]))
    assert doc.ents[0].kb_id_ == "QY"
    assert doc.ents[0]._.kb_score == 0.5


def test_equal_scores_are_broken_by_the_higher_prior(keyword_nlp, make_doc):
    # Context only and no keyword: every similarity is 0. QH has the highest prior
    # of "Triple" although QF has the lowest id.
    nlp = keyword_nlp(incl_prior=False)
    doc = nlp(make_doc(nlp.vocab, ["Triple"], [(0, 1, "X")]))
    assert doc.ents[0].kb_id_ == "QH"
    assert doc.ents[0]._.kb_score == 0.0


def test_tie_breaking_does_not_depend_on_the_batch(keyword_nlp, make_doc):
    nlp = keyword_nlp(incl_context=False)
    words, ents = ["Twin", "Zero", "Triple"], [(0, 1, "X"), (1, 2, "X"), (2, 3, "X")]
    alone = [nlp(make_doc(nlp.vocab, words, ents)) for _ in range(2)]
    piped = list(nlp.pipe([make_doc(nlp.vocab, words, ents) for _ in range(3)]))
    expected = ["QF", "QY", "QH"]
    assert all([ent.kb_id_ for ent in doc.ents] == expected for doc in alone + piped)


def test_kb_candidates_order_ties_below_the_best_by_entity_id(keyword_nlp, make_doc):
    # "Triple": QH 0.5, then QT 0.2 and QF 0.2 (listed in that order).
    nlp = keyword_nlp(incl_context=False)
    doc = nlp(make_doc(nlp.vocab, ["Triple"], [(0, 1, "X")]))
    assert [kb_id for kb_id, _ in doc.ents[0]._.kb_candidates] == ["QH", "QF", "QT"]


# ------------------------------------------------------------------ update


def test_update_returns_losses_keyed_by_the_component_name(make_nlp, toy_examples):
    nlp = make_nlp(name="my_linker")
    nel = nlp.get_pipe("my_linker")
    losses = nel.update(toy_examples(nlp.vocab), sgd=nlp.resume_training())
    assert set(losses) == {"my_linker"}
    assert isinstance(losses["my_linker"], float) and losses["my_linker"] > 0
    # A given dict is updated in place and its other entries are kept.
    given = {"other": 1.0, "my_linker": 2.0}
    returned = nel.update(toy_examples(nlp.vocab), losses=given)
    assert returned is given
    assert given["other"] == 1.0 and given["my_linker"] > 2.0


def test_update_with_an_empty_batch_changes_nothing(make_nlp):
    nlp = make_nlp()
    nel = nlp.get_pipe("nel")
    before = nel.model.to_bytes()
    assert nel.update([], sgd=nlp.resume_training()) == {"nel": 0.0}
    assert nel.update(iter([])) == {"nel": 0.0}
    assert nel.model.to_bytes() == before


def test_update_without_linkable_gold_ids_has_zero_loss(make_nlp, make_doc):
    nlp = make_nlp()
    nel = nlp.get_pipe("nel")
    reference = make_doc(nlp.vocab, ["Paris", "and", "Texas", "and", "Hilton"],
                         [(0, 1, "GPE", "NIL"), (2, 3, "GPE", "Q_NOT_IN_KB"), (4, 5, "PERSON")])
    example = Example(Doc(nlp.vocab, words=[t.text for t in reference]), reference)
    before = nel.model.to_bytes()
    assert nel.update([example], sgd=nlp.resume_training()) == {"nel": 0.0}
    assert nel.model.to_bytes() == before


def test_update_lowers_the_loss(make_nlp, toy_examples, train):
    nlp = make_nlp()
    _, history = train(nlp, toy_examples(nlp.vocab), epochs=12, batch_size=4,
                       sgd=nlp.resume_training())
    losses = [h["nel"] for h in history]
    assert losses[-1] < 0.5 * losses[0]


def test_create_optimizer_gives_an_optimizer_that_trains_the_model(make_nlp, toy_examples):
    nlp = make_nlp()
    nel = nlp.get_pipe("nel")
    optimizer = nel.create_optimizer()
    assert isinstance(optimizer, Optimizer)
    before = nel.model.to_bytes()
    nel.update(toy_examples(nlp.vocab), sgd=optimizer)
    assert nel.model.to_bytes() != before


# -------------------------------------------------------------- use_params


def test_use_params_predicts_with_the_given_params_and_restores_them(
    trained_synthetic, unlinked_docs, link_outputs
):
    nlp = trained_synthetic["nlp"]
    nel = nlp.get_pipe("nel")
    kb = trained_synthetic["kb"]
    docs = lambda: unlinked_docs(nlp.vocab, trained_synthetic["test"])  # noqa: E731
    before = link_outputs(nlp.pipe(docs()))
    zeros = {
        (node.id, name): nel.model.ops.alloc(node.get_param(name).shape)
        for node in nel.model.walk() for name in node.param_names if node.has_param(name)
    }
    assert zeros
    # spaCy's TrainablePipe.use_params is a generator, not a context manager;
    # nlp.use_params drives it.
    with nlp.use_params(zeros):
        inside = list(nlp.pipe(docs()))
    # An all-zero encoder encodes every mention as 0: similarity 0, score = prior.
    for doc in inside:
        for ent in doc.ents:
            assert ent._.kb_score == pytest.approx(kb.get_prior_prob(ent.kb_id_, ent.text))
            priors = [c.prior_prob for c in kb.get_alias_candidates(ent.text)]
            assert ent._.kb_score == pytest.approx(max(priors))
    assert link_outputs(inside) != before
    assert link_outputs(nlp.pipe(docs())) == before


# ----------------------------------------------------------- misc methods


def test_rehearse_and_add_label_are_not_supported(blank):
    nel = blank().add_pipe("nel")
    with pytest.raises(NotImplementedError):
        nel.add_label("PERSON")
    with pytest.raises(NotImplementedError):
        nel.rehearse([])


def test_kb_score_extensions_are_registered_on_span():
    assert Span.has_extension("kb_score")
    assert Span.has_extension("kb_candidates")


def test_linked_doc_keeps_links_through_doc_serialization(keyword_nlp, make_doc):
    nlp = keyword_nlp()
    doc = nlp(make_doc(nlp.vocab, ["Hilton", ".", "Paris", "texas"],
                       [(0, 1, "PERSON"), (2, 3, "GPE")], sent_starts=[1, 0, 1, 0]))
    restored = Doc(nlp.vocab).from_bytes(doc.to_bytes())
    assert [ent.kb_id_ for ent in restored.ents] == ["QH", "QT"]
    assert restored.ents[1]._.kb_score == doc.ents[1]._.kb_score


def test_custom_kb_instance_of_the_package_kb_class_is_accepted(make_doc, keyword_model, blank):
    nlp = blank()
    nel = nlp.add_pipe("nel", config={"model": keyword_model})
    kb = InMemoryLookupKB(nlp.vocab, 3)
    kb.add_entity("Q1", 1.0, [0.0, 1.0, 0.0])
    kb.add_alias("Austin", ["Q1"], [0.7])
    nel.set_kb(lambda vocab: kb)
    doc = nlp(make_doc(nlp.vocab, ["Austin", "texas"], [(0, 1, "GPE")]))
    assert doc.ents[0].kb_id_ == "Q1"
    assert doc.ents[0]._.kb_score == pytest.approx(1.0)


def test_spacys_own_kb_class_works_for_linking_and_training(make_nlp, toy_examples, make_doc):
    from spacy.kb import InMemoryLookupKB as SpacyKB

    def spacy_kb(vocab):
        kb = SpacyKB(vocab, entity_vector_length=3)
        kb.add_entity("QF", 100, [1.0, 0.0, 0.0])
        kb.add_entity("QT", 10, [0.0, 1.0, 0.0])
        kb.add_entity("QH", 50, [0.0, 0.0, 1.0])
        kb.add_alias("Paris", ["QF", "QT"], [0.8, 0.2])
        kb.add_alias("Texas", ["QT"], [0.9])
        kb.add_alias("Hilton", ["QH"], [0.9])
        return kb

    nlp = make_nlp(kb=spacy_kb)
    losses = nlp.update(toy_examples(nlp.vocab), sgd=nlp.resume_training())
    assert losses["nel"] > 0
    doc = nlp(make_doc(nlp.vocab, ["Hilton", "in", "Paris", "Nowhere"],
                       [(0, 1, "PERSON"), (2, 3, "GPE"), (3, 4, "GPE")]))
    assert [ent.kb_id_ for ent in doc.ents][::2] == ["QH", "NIL"]
    assert doc.ents[1].kb_id_ in {"QF", "QT"}
    assert {kb_id for kb_id, _ in doc.ents[1]._.kb_candidates} == {"QF", "QT"}


def test_context_encoder_matches_the_window_text_against_entity_descriptions():
    """With context_encoder="hashing", the words around a mention pull it towards
    the candidate whose description (encoded by the same encoder) shares them."""
    import numpy
    import spacy
    from spacy.tokens import Span

    from entity_linker import InMemoryLookupKB
    from entity_linker.encoders import get_encoder

    nlp = spacy.blank("en")
    vectors = get_encoder("hashing", dim=64)(
        ["Paris Texas United States city", "Paris Ile-de-France France city"]
    )
    kb = InMemoryLookupKB.from_arrays(
        nlp.vocab, ["TX", "FR"], [1.0, 1.0], numpy.asarray(vectors), ["Paris"], [0, 2],
        [0, 1], [0.5, 0.5],
    )
    doc = nlp.make_doc("We drove to Paris , Texas yesterday .")
    doc.ents = [Span(doc, 3, 4, label="LOC")]
    chosen = {}
    for encoder in (None, "hashing"):
        nel = spacy.blank("en").add_pipe("nel", config={
            "entity_vector_length": 64, "context_encoder": encoder,
            "context_encoder_weight": 10.0,
        })
        nel.set_kb(lambda vocab: kb)
        nel.initialize(lambda: [spacy.training.Example(doc, doc)])
        chosen[encoder] = nel(doc.copy()).ents[0]._.kb_candidates
    assert chosen["hashing"][0][0] == "TX"
    assert chosen["hashing"][0][1] > chosen["hashing"][1][1]

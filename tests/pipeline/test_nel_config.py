"""The ``nel`` factory, its registration and the effect of every config setting."""

import subprocess
import sys
import textwrap

import numpy
import pytest
import spacy
from spacy.language import Language
from spacy.util import registry
from thinc.api import Model

import entity_linker
import entity_linker.registry as el_registry
from entity_linker import EntityLinker, InMemoryLookupKB

MISC_FUNCTIONS = {
    "entity_linker.CandidateGenerator.v1": el_registry.create_candidates,
    "entity_linker.CandidateBatchGenerator.v1": el_registry.create_candidates_batch,
    "entity_linker.EmptyKB.v1": el_registry.empty_kb,
    "entity_linker.EmptyKB.v2": el_registry.empty_kb_for_config,
    "entity_linker.KBFromFile.v1": el_registry.load_kb,
}


# ------------------------------------------------------------ registration


def test_nel_factory_and_registered_functions_load_through_entry_points_after_import_spacy(
    tmp_path,
):
    script = textwrap.dedent(
        """
        import sys
        import spacy
        from spacy.util import registry

        assert "entity_linker" not in sys.modules, "entity_linker imported by import spacy"
        nlp = spacy.blank("en")
        nel = nlp.add_pipe("nel")
        cls = type(nel)
        print("component", cls.__module__, cls.__name__)
        for name in [
            "entity_linker.CandidateGenerator.v1",
            "entity_linker.CandidateBatchGenerator.v1",
            "entity_linker.EmptyKB.v1",
            "entity_linker.EmptyKB.v2",
            "entity_linker.KBFromFile.v1",
        ]:
            func = registry.misc.get(name)
            print("misc", name, func.__module__)
        func = registry.architectures.get("entity_linker.EntityLinker.v1")
        print("architecture", func.__module__)
        print("kb", type(nel.kb).__module__, nel.kb.entity_vector_length)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "component entity_linker.pipeline EntityLinker" in lines
    assert sum(line.startswith("misc entity_linker.") for line in lines) == 5
    assert all(line.endswith("entity_linker.registry") for line in lines if line.startswith("misc"))
    assert "architecture entity_linker.ml.models" in lines
    assert "kb entity_linker.kb.in_memory 64" in lines


def test_nel_factory_works_after_import_entity_linker():
    nlp = spacy.blank("en")
    nel = nlp.add_pipe("nel")
    assert isinstance(nel, entity_linker.EntityLinker)
    assert nlp.pipe_names == ["nel"]
    meta = nlp.get_pipe_meta("nel")
    assert meta.factory == "nel"
    assert "token.ent_kb_id" in meta.assigns
    assert "doc.ents" in meta.requires
    assert meta.default_score_weights["nel_micro_f"] == 1.0


def test_nel_default_config_has_every_setting_of_spacys_entity_linker_with_the_same_values():
    ours = Language.get_factory_meta("nel").default_config
    spacys = Language.get_factory_meta("entity_linker").default_config
    assert set(spacys) <= set(ours)
    for key in ("labels_discard", "n_sents", "incl_prior", "incl_context",
                "entity_vector_length", "overwrite", "use_gold_ents",
                "candidates_batch_size", "threshold"):
        assert ours[key] == spacys[key], key
    assert ours["model"]["@architectures"] == "entity_linker.EntityLinker.v2"
    assert ours["get_candidates"] == {"@misc": "entity_linker.CandidateGenerator.v1"}
    assert ours["generate_empty_kb"] == {"@misc": "entity_linker.EmptyKB.v2"}


def test_component_attributes_reflect_the_config(blank):
    nlp = blank()
    nel = nlp.add_pipe("nel", config={
        "labels_discard": ["DATE"], "n_sents": 2, "incl_prior": False, "threshold": 0.3,
        "top_k": 5, "overwrite": False, "use_gold_ents": False,
    })
    assert nel.labels_discard == ["DATE"]
    assert nel.n_sents == 2
    assert nel.incl_prior is False and nel.incl_context is True
    assert nel.threshold == 0.3
    assert nel.top_k == 5
    assert nel.cfg["overwrite"] is False
    assert nel.use_gold_ents is False
    assert nlp.config["components"]["nel"]["top_k"] == 5


@pytest.mark.parametrize("name", sorted(MISC_FUNCTIONS))
def test_misc_function_is_registered_in_spacy_registry(name):
    assert registry.misc.get(name) is MISC_FUNCTIONS[name]


def test_encoder_architecture_is_registered_in_spacy_registry():
    from entity_linker.ml.models import build_nel_encoder

    assert registry.architectures.get("entity_linker.EntityLinker.v1") is build_nel_encoder


def test_empty_kb_v1_resolves_to_a_vocab_factory_with_the_given_length(blank):
    nlp = blank()
    resolved = registry.resolve(
        {"f": {"@misc": "entity_linker.EmptyKB.v1", "entity_vector_length": 7}}
    )
    kb = resolved["f"](nlp.vocab)
    assert isinstance(kb, InMemoryLookupKB)
    assert kb.entity_vector_length == 7
    assert kb.is_empty()
    assert kb.vocab is nlp.vocab


def test_empty_kb_v2_resolves_to_a_vocab_and_length_factory(blank):
    nlp = blank()
    factory = registry.resolve({"f": {"@misc": "entity_linker.EmptyKB.v2"}})["f"]
    kb = factory(nlp.vocab, 5)
    assert isinstance(kb, InMemoryLookupKB)
    assert kb.entity_vector_length == 5
    assert kb.is_empty()


def test_kb_from_file_v1_resolves_to_a_loader_of_the_memory_mapped_kb(tmp_path, toy_kb, blank):
    nlp = blank()
    toy_kb(nlp.vocab).to_disk(tmp_path / "kb")
    loader = registry.resolve(
        {"f": {"@misc": "entity_linker.KBFromFile.v1", "kb_path": str(tmp_path / "kb")}}
    )["f"]
    kb = loader(nlp.vocab)
    assert kb.is_read_only
    assert kb.path is not None and kb.path.parent == tmp_path / "kb"
    assert kb.entity_vector_length == 3
    assert [c.entity_ for c in kb.get_alias_candidates("Paris")] == ["QF", "QT"]
    assert [c.prior_prob for c in kb.get_alias_candidates("Paris")] == pytest.approx([0.8, 0.2])


def test_candidate_generators_resolve_to_exact_match_lookups(toy_kb, make_doc, blank):
    nlp = blank()
    kb = toy_kb(nlp.vocab)
    resolved = registry.resolve({
        "one": {"@misc": "entity_linker.CandidateGenerator.v1"},
        "many": {"@misc": "entity_linker.CandidateBatchGenerator.v1"},
    })
    doc = make_doc(nlp.vocab, ["Paris", "paris", "Texas"],
                   [(0, 1, "GPE"), (1, 2, "GPE"), (2, 3, "GPE")])
    paris, lower_paris, texas = doc.ents
    assert [c.entity_ for c in resolved["one"](kb, paris)] == ["QF", "QT"]
    assert list(resolved["one"](kb, lower_paris)) == []
    batch = [[c.entity_ for c in cands] for cands in resolved["many"](kb, doc.ents)]
    assert batch == [["QF", "QT"], [], ["QT"]]


def test_encoder_architecture_resolves_to_one_row_per_mention(small_tok2vec, make_doc, blank):
    nlp = blank()
    model = registry.resolve({"m": {
        "@architectures": "entity_linker.EntityLinker.v1", "tok2vec": small_tok2vec, "nO": 4,
    }})["m"]
    assert isinstance(model, Model)
    docs = [
        make_doc(nlp.vocab, ["Paris", "is", "in", "Texas"], [(0, 1, "GPE"), (3, 4, "GPE")]),
        make_doc(nlp.vocab, ["No", "entities"]),
        make_doc(nlp.vocab, ["Hilton"], [(0, 1, "PERSON")]),
    ]
    model.initialize(X=docs, Y=model.ops.alloc2f(1, 4))
    assert model.predict(docs).shape == (3, 4)


# ------------------------------------------------------------------ settings


def test_labels_discard_links_discarded_labels_to_nil(keyword_nlp, make_doc, blank):
    words = ["Paris", "and", "Texas", "in", "France"]
    ents = [(0, 1, "DATE"), (2, 3, "GPE")]
    doc = keyword_nlp(labels_discard=["DATE"])(make_doc(blank().vocab, words, ents))
    assert [ent.kb_id_ for ent in doc.ents] == ["NIL", "QT"]
    assert doc.ents[0]._.kb_score is None
    assert doc.ents[0]._.kb_candidates is None
    assert doc.ents[1]._.kb_score is not None
    # Without labels_discard the same mention is linked.
    nlp = keyword_nlp()
    doc = nlp(make_doc(nlp.vocab, words, ents))
    assert [ent.kb_id_ for ent in doc.ents] == ["QF", "QT"]


def _copy_weights(source, target):
    """Copy the parameters only (model.from_bytes would also copy the attrs)."""
    for src, dst in zip(source.model.walk(), target.model.walk()):
        for name in src.param_names:
            if src.has_param(name):
                dst.set_param(name, src.get_param(name).copy())


def test_n_sents_widens_the_encoder_window_to_neighbouring_sentences(make_nlp, make_doc):
    nlp0 = make_nlp({"n_sents": 0})
    nlp1 = make_nlp({"n_sents": 1})
    nlp5 = make_nlp({"n_sents": 5})
    nel0, nel1, nel5 = (n.get_pipe("nel") for n in (nlp0, nlp1, nlp5))
    _copy_weights(nel0, nel1)
    _copy_weights(nel0, nel5)
    assert nel1.model.get_ref("mention_windows").attrs["n_sents"] == 1
    words = ["I", "like", "France", ".", "Paris", "is", "big", ".", "Texas", "too", "."]
    sent_starts = [True] + [False] * 3 + [True] + [False] * 3 + [True, False, False]
    three = make_doc(nlp0.vocab, words, [(4, 5, "GPE")], sent_starts)
    enc0, enc1, enc5 = (n.model.predict([three]) for n in (nel0, nel1, nel5))
    assert enc0.shape == (1, 3)
    assert not numpy.allclose(enc0, enc1)
    # The window is clipped to the doc: 1 neighbour or 5 is the same here.
    numpy.testing.assert_array_equal(enc1, enc5)
    # One sentence, or no sentence boundaries: the window is the same for any n_sents.
    one = make_doc(nlp0.vocab, ["Paris", "is", "big", "."], [(0, 1, "GPE")], [1, 0, 0, 0])
    numpy.testing.assert_array_equal(nel0.model.predict([one]), nel1.model.predict([one]))
    unsplit = make_doc(nlp0.vocab, words, [(4, 5, "GPE")])
    numpy.testing.assert_array_equal(
        nel0.model.predict([unsplit]), nel1.model.predict([unsplit])
    )
    # The window without boundaries is the whole doc, as n_sents=1 is on `three`.
    numpy.testing.assert_allclose(nel1.model.predict([unsplit]), enc1, rtol=1e-5, atol=1e-6)


def test_negative_n_sents_is_rejected(blank):
    with pytest.raises(ValueError, match="n_sents"):
        blank().add_pipe("nel", config={"n_sents": -1})


def test_n_sents_reaches_the_span_maker_of_spacys_entity_linker_v2_architecture(
    small_tok2vec, blank
):
    config = {"model": {"@architectures": "spacy.EntityLinker.v2", "tok2vec": small_tok2vec},
              "n_sents": 2}
    nel = blank().add_pipe("nel", config=config)
    span_makers = [node for node in nel.model.walk() if node.name == "span_maker"]
    assert len(span_makers) == 1
    assert span_makers[0].attrs["n_sents"] == 2


def _link(nlp, make_doc, words, ents):
    doc = nlp(make_doc(nlp.vocab, words, ents))
    return [(ent.kb_id_, ent._.kb_score) for ent in doc.ents]


def test_incl_context_alone_changes_the_choice(keyword_nlp, make_doc):
    # Context says Texas (sim QT = 1, QF = 0); the prior says France (0.8 vs 0.2).
    words, ents = ["Paris", "near", "texas"], [(0, 1, "GPE")]
    (with_context,) = _link(keyword_nlp(), make_doc, words, ents)
    (prior_only,) = _link(keyword_nlp(incl_context=False), make_doc, words, ents)
    assert with_context[0] == "QT"
    assert with_context[1] == pytest.approx(1.0)
    assert prior_only[0] == "QF"
    assert prior_only[1] == pytest.approx(0.8)


def test_incl_prior_alone_changes_the_choice(keyword_nlp, make_doc):
    # "mixed" is a bit closer to QT (cos 0.768) than QF (cos 0.640); the prior favours QF.
    words, ents = ["Paris", "mixed"], [(0, 1, "GPE")]
    cos_f, cos_t = 1 / numpy.hypot(1, 1.2), 1.2 / numpy.hypot(1, 1.2)
    (with_prior,) = _link(keyword_nlp(), make_doc, words, ents)
    (context_only,) = _link(keyword_nlp(incl_prior=False), make_doc, words, ents)
    assert with_prior[0] == "QF"
    assert with_prior[1] == pytest.approx(0.8 + cos_f - 0.8 * cos_f, rel=1e-5)
    assert context_only[0] == "QT"
    assert context_only[1] == pytest.approx(cos_t, rel=1e-5)


def test_incl_prior_and_incl_context_both_false_is_rejected(blank):
    with pytest.raises(ValueError, match="incl_prior"):
        blank().add_pipe("nel", config={"incl_prior": False, "incl_context": False})


def test_model_setting_uses_the_given_architecture(keyword_nlp, make_doc, keyword_model):
    nlp = keyword_nlp()
    nel = nlp.get_pipe("nel")
    assert nel.model.name == "keyword_encoder"
    assert nlp.config["components"]["nel"]["model"] == keyword_model
    # The keyword encoder decides: "texas" -> QT, "france" -> QF.
    assert _link(nlp, make_doc, ["Paris", "texas"], [(0, 1, "GPE")])[0][0] == "QT"
    assert _link(nlp, make_doc, ["Paris", "france"], [(0, 1, "GPE")])[0][0] == "QF"


def test_entity_vector_length_sets_the_empty_kb_and_the_kb_sets_the_encoder_width(make_nlp):
    nlp = make_nlp({"entity_vector_length": 5}, kb=False)
    nel = nlp.get_pipe("nel")
    assert isinstance(nel.kb, InMemoryLookupKB)
    assert nel.kb.entity_vector_length == 5
    assert nel.kb.is_empty()
    nlp = make_nlp({"entity_vector_length": 5})  # the toy KB (length 3) is set, then initialize
    assert nlp.get_pipe("nel").model.get_dim("nO") == 3


def test_generate_empty_kb_uses_the_configured_factory(blank):
    nlp = blank()
    nel = nlp.add_pipe("nel", config={
        "generate_empty_kb": {"@misc": "test_nel.RecordingEmptyKB.v1"},
        "entity_vector_length": 7,
    })
    assert type(nel.kb).__name__ == "RecordingKB"
    vocab, length = nel.kb.factory_args
    assert vocab is nlp.vocab
    assert length == 7


@pytest.mark.parametrize("overwrite,expected", [(False, "QOLD"), (True, "QF")])
def test_overwrite_false_keeps_an_existing_token_kb_id(keyword_nlp, make_doc, overwrite,
                                                       expected):
    nlp = keyword_nlp(overwrite=overwrite)
    doc = make_doc(nlp.vocab, ["Paris", "france", "Texas"],
                   [(0, 1, "GPE", "QOLD"), (2, 3, "GPE")])
    doc = nlp(doc)
    assert doc.ents[0].kb_id_ == expected
    assert doc[0].ent_kb_id_ == expected
    # A mention without a kb id is linked either way.
    assert doc.ents[1].kb_id_ == "QT"


def test_use_gold_ents_true_copies_gold_entities_in_update(make_nlp, toy_examples):
    nlp = make_nlp({"use_gold_ents": True})
    examples = toy_examples(nlp.vocab)
    losses = nlp.get_pipe("nel").update(examples)
    assert losses["nel"] > 0
    # The examples' own predicted docs are not changed.
    assert all(len(eg.predicted.ents) == 0 for eg in examples)


def test_use_gold_ents_false_learns_only_from_predicted_entities(make_nlp, toy_examples):
    nlp = make_nlp({"use_gold_ents": False})
    assert nlp.get_pipe("nel").update(toy_examples(nlp.vocab))["nel"] == 0.0


def _ruler_nlp(make_nlp):
    nlp = make_nlp({"use_gold_ents": False}, pipeline=["entity_ruler"])
    # nlp.initialize clears the ruler's patterns, so they are added afterwards.
    nlp.get_pipe("entity_ruler").add_patterns([
        {"label": "GPE", "pattern": "Paris"},
        {"label": "GPE", "pattern": "Texas"},
        {"label": "PERSON", "pattern": "Hilton"},
    ])
    return nlp


def test_use_gold_ents_false_links_the_entities_of_an_entity_ruler(make_nlp):
    nlp = _ruler_nlp(make_nlp)
    doc = nlp("Hilton went to Paris in Texas .")
    assert [(ent.text, ent.label_) for ent in doc.ents] == [
        ("Hilton", "PERSON"), ("Paris", "GPE"), ("Texas", "GPE")
    ]
    assert doc.ents[0].kb_id_ == "QH"
    assert doc.ents[1].kb_id_ in {"QF", "QT"}
    assert doc.ents[2].kb_id_ == "QT"
    assert all(ent._.kb_score is not None for ent in doc.ents)


def test_use_gold_ents_false_trains_on_the_entities_of_an_annotating_entity_ruler(
    make_nlp, toy_examples
):
    nlp = _ruler_nlp(make_nlp)
    optimizer = nlp.resume_training()
    examples = toy_examples(nlp.vocab)
    losses = nlp.update(examples, sgd=optimizer, annotates=["entity_ruler"])
    assert losses["nel"] > 0
    # Without the ruler's annotations there is nothing to learn from.
    losses = nlp.update(toy_examples(nlp.vocab), sgd=optimizer)
    assert losses["nel"] == 0.0
    scores = nlp.evaluate(toy_examples(nlp.vocab))
    assert scores["nel_micro_f"] is not None


def test_custom_get_candidates_is_called_for_each_mention(keyword_nlp, make_doc):
    nlp = keyword_nlp(get_candidates={"@misc": "test_nel.CaseInsensitiveCandidates.v1"})
    nel = nlp.get_pipe("nel")
    doc = nlp(make_doc(nlp.vocab, ["paris", "and", "TEXAS", "france"],
                       [(0, 1, "GPE"), (2, 3, "GPE")]))
    assert nel.get_candidates.calls == ["paris", "TEXAS"]
    assert [ent.kb_id_ for ent in doc.ents] == ["QF", "QT"]
    # The default generator matches the alias text exactly.
    nlp = keyword_nlp()
    doc = nlp(make_doc(nlp.vocab, ["paris", "and", "TEXAS", "france"],
                       [(0, 1, "GPE"), (2, 3, "GPE")]))
    assert [ent.kb_id_ for ent in doc.ents] == ["NIL", "NIL"]


def test_custom_get_candidates_batch_is_called_with_the_mentions(keyword_nlp, make_doc):
    nlp = keyword_nlp(
        get_candidates_batch={"@misc": "test_nel.CaseInsensitiveCandidatesBatch.v1"},
        candidates_batch_size=4,
    )
    nel = nlp.get_pipe("nel")
    docs = [
        make_doc(nlp.vocab, ["paris", "texas"], [(0, 1, "GPE")]),
        make_doc(nlp.vocab, ["HILTON", "and", "Texas"], [(0, 1, "PERSON"), (2, 3, "GPE")]),
    ]
    docs = list(nlp.pipe(docs))
    assert [text for call in nel.get_candidates_batch.calls for text in call] == [
        "paris", "HILTON", "Texas"
    ]
    assert [ent.kb_id_ for doc in docs for ent in doc.ents] == ["QT", "QH", "QT"]


def test_custom_get_candidates_is_used_in_training(make_nlp, toy_examples):
    # The candidate loss is what looks candidates up in training.
    nlp = make_nlp({"get_candidates": {"@misc": "test_nel.CaseInsensitiveCandidates.v1"},
                    "candidate_loss_weight": 1.0})
    nel = nlp.get_pipe("nel")
    nel.get_candidates.calls.clear()
    nlp.update(toy_examples(nlp.vocab), sgd=nlp.resume_training())
    assert "Paris" in nel.get_candidates.calls


def test_threshold_links_to_nil_below_and_keeps_the_entity_at_or_above(
    keyword_nlp, make_doc, blank
):
    words, ents = ["Paris", "mixed"], [(0, 1, "GPE")]
    cos_f = 1 / numpy.hypot(1, 1.2)
    score = 0.8 + cos_f - 0.8 * cos_f  # 0.928
    assert _link(keyword_nlp(threshold=0.9), make_doc, words, ents)[0][0] == "QF"
    below = keyword_nlp(threshold=0.95)(make_doc(blank().vocab, words, ents))
    assert below.ents[0].kb_id_ == "NIL"
    assert below.ents[0]._.kb_score == pytest.approx(score, rel=1e-5)
    assert below.ents[0]._.kb_candidates[0][0] == "QF"


def test_threshold_applies_to_a_single_candidate(keyword_nlp, make_doc):
    # "Texas" has one candidate (prior 0.9); prior only, its score is 0.9.
    nlp = keyword_nlp(threshold=0.95, incl_context=False)
    assert _link(nlp, make_doc, ["Texas"], [(0, 1, "GPE")])[0][0] == "NIL"
    nlp = keyword_nlp(threshold=0.85, incl_context=False)
    assert _link(nlp, make_doc, ["Texas"], [(0, 1, "GPE")])[0][0] == "QT"


def test_threshold_equal_to_the_score_keeps_the_entity(keyword_nlp, make_doc):
    # "Zero": priors 0.5 / 0.5 (exact in float32), prior only.
    nlp = keyword_nlp(threshold=0.5, incl_context=False)
    assert _link(nlp, make_doc, ["Zero"], [(0, 1, "GPE")]) == [("QY", 0.5)]
    nlp = keyword_nlp(threshold=0.5001, incl_context=False)
    assert _link(nlp, make_doc, ["Zero"], [(0, 1, "GPE")])[0][0] == "NIL"


@pytest.mark.parametrize("threshold", [-0.1, 1.5])
def test_threshold_outside_zero_one_is_rejected(threshold, blank):
    with pytest.raises(ValueError, match="threshold"):
        blank().add_pipe("nel", config={"threshold": threshold})


@pytest.mark.parametrize("top_k,expected", [(0, 0), (1, 1), (2, 2), (10, 3)])
def test_top_k_limits_kb_candidates(keyword_nlp, make_doc, top_k, expected, blank):
    doc = keyword_nlp(top_k=top_k)(
        make_doc(blank().vocab, ["Triple"], [(0, 1, "MISC")])
    )
    assert len(doc.ents[0]._.kb_candidates) == expected
    assert doc.ents[0].kb_id_ == "QH"


def test_negative_top_k_is_rejected(blank):
    with pytest.raises(ValueError, match="top_k"):
        blank().add_pipe("nel", config={"top_k": -1})


def test_candidates_batch_size_below_one_is_rejected(blank):
    with pytest.raises(ValueError, match="candidates_batch_size"):
        blank().add_pipe("nel", config={"candidates_batch_size": 0})


def test_softmax_scoring_scores_are_a_softmax_over_the_candidates(keyword_nlp, make_doc, blank):
    words, ents = ["Paris", "mixed"], [(0, 1, "GPE")]
    cos = numpy.array([1.0, 1.2]) / numpy.hypot(1, 1.2)
    logits = 10 * cos + numpy.log(numpy.array([0.8, 0.2]) + 1e-6)
    expected = numpy.exp(logits - logits.max())
    expected /= expected.sum()
    doc = keyword_nlp(scoring="softmax")(make_doc(blank().vocab, words, ents))
    candidates = dict(doc.ents[0]._.kb_candidates)
    assert candidates["QF"] == pytest.approx(expected[0], rel=1e-4)
    assert candidates["QT"] == pytest.approx(expected[1], rel=1e-4)
    assert sum(candidates.values()) == pytest.approx(1.0, rel=1e-5)
    assert doc.ents[0]._.kb_score == pytest.approx(expected.max(), rel=1e-4)
    # The default scoring gives spaCy's prior + sim - prior * sim instead.
    spacy_doc = keyword_nlp()(make_doc(blank().vocab, words, ents))
    assert dict(spacy_doc.ents[0]._.kb_candidates)["QF"] == pytest.approx(
        0.8 + cos[0] - 0.8 * cos[0], rel=1e-5
    )


def test_unknown_scoring_is_rejected(blank):
    with pytest.raises(ValueError, match="scoring"):
        blank().add_pipe("nel", config={"scoring": "max"})


def test_default_scorer_reports_micro_scores_of_the_links(keyword_nlp, toy_examples):
    nlp = keyword_nlp()
    scores = nlp.evaluate(toy_examples(nlp.vocab))
    assert scores["nel_micro_f"] == pytest.approx(1.0)
    assert scores["nel_micro_p"] == pytest.approx(1.0)
    # Prior only: both "Paris" mentions that mean Texas go wrong.
    nlp = keyword_nlp(incl_context=False)
    scores = nlp.evaluate(toy_examples(nlp.vocab))
    assert scores["nel_micro_f"] < 0.8


def test_custom_scorer_is_used_by_evaluate(keyword_nlp, toy_examples):
    nlp = keyword_nlp(scorer={"@scorers": "test_nel.ConstantScorer.v1"})
    scores = nlp.evaluate(toy_examples(nlp.vocab))
    assert scores["nel_constant"] == 0.25
    assert "nel_micro_f" not in scores


def test_scorer_none_disables_the_component_scores(keyword_nlp, toy_examples):
    nlp = keyword_nlp(scorer=None)
    scores = nlp.evaluate(toy_examples(nlp.vocab))
    assert "nel_micro_f" not in scores


def test_entity_linker_class_is_exported_at_package_level():
    assert entity_linker.EntityLinker is EntityLinker
    assert EntityLinker.NIL == "NIL"


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_threshold_at_the_bounds_is_accepted(keyword_nlp, make_doc, threshold):
    nlp = keyword_nlp(threshold=threshold, incl_context=False)
    expected = "QT" if threshold == 0.0 else "NIL"  # prior-only score of "Texas" is 0.9
    assert _link(nlp, make_doc, ["Texas"], [(0, 1, "GPE")])[0][0] == expected


def test_spacys_registered_functions_work_as_drop_in_settings(keyword_nlp, make_doc, blank):
    spacy_settings = {
        "get_candidates": {"@misc": "spacy.CandidateGenerator.v1"},
        "get_candidates_batch": {"@misc": "spacy.CandidateBatchGenerator.v1"},
        "generate_empty_kb": {"@misc": "spacy.EmptyKB.v2"},
        "scorer": {"@scorers": "spacy.entity_linker_scorer.v1"},
    }
    words = ["Paris", "texas", ".", "Paris", "france", ".", "Twin", "Triple", "Nowhere"]
    ents = [(0, 1, "GPE"), (3, 4, "GPE"), (6, 7, "X"), (7, 8, "X"), (8, 9, "X")]
    sent_starts = [1, 0, 0, 1, 0, 0, 1, 0, 0]
    links = []
    for batch_size in (1, 3):
        nlp = keyword_nlp(candidates_batch_size=batch_size, **spacy_settings)
        doc = nlp(make_doc(nlp.vocab, words, ents, sent_starts))
        links.append([(e.kb_id_, e._.kb_score, e._.kb_candidates) for e in doc.ents])
    nlp = keyword_nlp()
    doc = nlp(make_doc(nlp.vocab, words, ents, sent_starts))
    ours = [(e.kb_id_, e._.kb_score, e._.kb_candidates) for e in doc.ents]
    assert [kb_id for kb_id, _, _ in ours] == ["QT", "QF", "QF", "QH", "NIL"]
    assert links == [ours, ours]
    empty = blank().add_pipe("nel", config=spacy_settings).kb
    assert type(empty).__module__.startswith("spacy.") and empty.entity_vector_length == 64

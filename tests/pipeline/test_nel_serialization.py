"""Saving and loading the ``nel`` component and pipelines that contain it."""

import json
import subprocess
import sys
import textwrap

import pytest
import spacy

# ----------------------------------------------------------- whole pipeline


def test_to_disk_and_spacy_load_reproduce_the_links_exactly(
    trained_synthetic, unlinked_docs, link_outputs, tmp_path
):
    nlp = trained_synthetic["nlp"]
    examples = trained_synthetic["test"]
    expected = link_outputs(nlp.pipe(unlinked_docs(nlp.vocab, examples)))
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.pipe_names == ["nel"]
    assert link_outputs(loaded.pipe(unlinked_docs(loaded.vocab, examples))) == expected


def test_spacy_load_memory_maps_the_kb(trained_synthetic, tmp_path):
    nlp = trained_synthetic["nlp"]
    nlp.to_disk(tmp_path / "pipeline")
    assert (tmp_path / "pipeline" / "nel" / "kb" / "kb.bin").is_file()
    kb = spacy.load(tmp_path / "pipeline").get_pipe("nel").kb
    assert kb.is_read_only
    assert kb.path == tmp_path / "pipeline" / "nel" / "kb" / "kb.bin"
    original = trained_synthetic["kb"]
    assert kb.get_entity_strings() == original.get_entity_strings()
    assert kb.get_alias_strings() == original.get_alias_strings()


def test_spacy_load_in_a_fresh_process_links_the_same_way(
    trained_synthetic, unlinked_docs, link_outputs, tmp_path
):
    nlp = trained_synthetic["nlp"]
    docs = unlinked_docs(nlp.vocab, trained_synthetic["test"][:20])
    expected = [[(kb_id, score) for _, _, kb_id, score, _, _ in doc]
                for doc in link_outputs(nlp.pipe(docs))]
    nlp.to_disk(tmp_path / "pipeline")
    spacy.tokens.DocBin(docs=docs).to_disk(tmp_path / "docs.spacy")
    script = textwrap.dedent(
        """
        import json, sys
        import spacy
        from spacy.tokens import DocBin

        nlp = spacy.load(sys.argv[1])
        docs = list(DocBin().from_disk(sys.argv[2]).get_docs(nlp.vocab))
        out = [[(e.kb_id_, e._.kb_score) for e in doc.ents] for doc in nlp.pipe(docs)]
        print(json.dumps({"links": out, "mapped": nlp.get_pipe("nel").kb.is_read_only}))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "pipeline"), str(tmp_path / "docs.spacy")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout.strip().splitlines()[-1])
    assert output["mapped"] is True
    assert [[tuple(pair) for pair in doc] for doc in output["links"]] == expected


def test_nlp_to_bytes_and_from_bytes_reproduce_the_links_exactly(
    trained_synthetic, unlinked_docs, link_outputs
):
    nlp = trained_synthetic["nlp"]
    examples = trained_synthetic["test"]
    expected = link_outputs(nlp.pipe(unlinked_docs(nlp.vocab, examples)))
    restored = spacy.blank("en").from_config(nlp.config)
    assert restored.get_pipe("nel").kb.is_empty()
    restored.from_bytes(nlp.to_bytes())
    kb = restored.get_pipe("nel").kb
    assert kb.get_size_entities() == trained_synthetic["kb"].get_size_entities()
    assert link_outputs(restored.pipe(unlinked_docs(restored.vocab, examples))) == expected


def test_loaded_settings_come_from_the_saved_config(make_nlp, tmp_path):
    nlp = make_nlp({"top_k": 2, "threshold": 0.25, "labels_discard": ["DATE"], "n_sents": 1,
                    "overwrite": False, "scoring": "softmax"})
    nlp.to_disk(tmp_path / "pipeline")
    nel = spacy.load(tmp_path / "pipeline").get_pipe("nel")
    assert nel.top_k == 2
    assert nel.threshold == 0.25
    assert nel.labels_discard == ["DATE"]
    assert nel.n_sents == 1
    assert nel.model.get_ref("mention_windows").attrs["n_sents"] == 1
    assert nel.cfg["overwrite"] is False
    assert nel.scoring == "softmax"


def test_n_sents_given_at_load_time_reaches_the_encoder(make_nlp, tmp_path):
    make_nlp({"n_sents": 0}).to_disk(tmp_path / "pipeline")
    nlp = spacy.load(tmp_path / "pipeline", config={"components": {"nel": {"n_sents": 2}}})
    nel = nlp.get_pipe("nel")
    assert nel.n_sents == 2
    assert nel.model.get_ref("mention_windows").attrs["n_sents"] == 2


def test_a_loaded_pipeline_can_be_trained_further(trained_synthetic, tmp_path, train):
    nlp = trained_synthetic["nlp"]
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    nel = loaded.get_pipe("nel")
    before = nel.model.to_bytes()
    _, history = train(loaded, trained_synthetic["train"][:32], epochs=1,
                       sgd=loaded.resume_training())
    assert history[0]["nel"] > 0
    assert nel.model.to_bytes() != before
    assert nel.kb.is_read_only  # training does not write to the mapped KB


# ---------------------------------------------------------------- component


def _fresh_component(blank, small_model):
    nlp = blank()
    return nlp, nlp.add_pipe("nel", config={"model": small_model})


def test_component_to_bytes_and_from_bytes_into_a_fresh_component(
    make_nlp, blank, small_model, make_doc, link_outputs
):
    source = make_nlp({"overwrite": False})
    nel = source.get_pipe("nel")
    nlp, fresh = _fresh_component(blank, small_model)
    fresh.from_bytes(nel.to_bytes())
    assert fresh.cfg["overwrite"] is False
    assert fresh.kb.get_entity_strings() == nel.kb.get_entity_strings()
    assert fresh.model.to_bytes() == nel.model.to_bytes()
    words, ents = ["Paris", "met", "Hilton", "in", "Texas"], [(0, 1, "GPE"), (2, 3, "PERSON")]
    assert link_outputs([nlp(make_doc(nlp.vocab, words, ents))]) == link_outputs(
        [source(make_doc(source.vocab, words, ents))]
    )


def test_component_bytes_without_the_kb_leave_the_kb_empty(make_nlp, blank, small_model,
                                                           make_doc):
    nel = make_nlp().get_pipe("nel")
    nlp, fresh = _fresh_component(blank, small_model)
    fresh.from_bytes(nel.to_bytes(exclude=["kb"]))
    assert fresh.kb.is_empty()
    assert fresh.model.to_bytes() == nel.model.to_bytes()
    with pytest.raises(ValueError, match="empty"):
        nlp(make_doc(nlp.vocab, ["Paris"], [(0, 1, "GPE")]))


def test_component_from_bytes_excluding_the_model_keeps_its_own_model(make_nlp, toy_examples):
    source = make_nlp()
    nel = source.get_pipe("nel")
    source.update(toy_examples(source.vocab), sgd=source.resume_training())
    target = make_nlp(kb=False, initialize=False)
    target_nel = target.get_pipe("nel")
    own_model = target_nel.model.to_bytes()
    target_nel.from_bytes(nel.to_bytes(), exclude=["model"])
    assert target_nel.kb.get_entity_strings() == nel.kb.get_entity_strings()
    assert target_nel.model.to_bytes() == own_model != nel.model.to_bytes()
    # Bytes written without the model do not change the model either.
    target_nel.from_bytes(nel.to_bytes(exclude=["model"]))
    assert target_nel.model.to_bytes() == own_model


def test_component_to_disk_and_from_disk_memory_map_the_kb(make_nlp, blank, small_model,
                                                           tmp_path, make_doc, link_outputs):
    source = make_nlp()
    nel = source.get_pipe("nel")
    nel.to_disk(tmp_path / "nel")
    assert sorted(p.name for p in (tmp_path / "nel").iterdir()) == ["cfg", "kb", "model",
                                                                    "vocab"]
    nlp, fresh = _fresh_component(blank, small_model)
    fresh.from_disk(tmp_path / "nel")
    assert fresh.kb.is_read_only
    assert fresh.kb.path == tmp_path / "nel" / "kb" / "kb.bin"
    words, ents = ["Twin", "Paris", "Texas"], [(0, 1, "X"), (1, 2, "GPE"), (2, 3, "GPE")]
    assert link_outputs([nlp(make_doc(nlp.vocab, words, ents))]) == link_outputs(
        [source(make_doc(source.vocab, words, ents))]
    )


@pytest.mark.parametrize("excluded", ["kb", "model"])
def test_component_to_disk_with_exclude_skips_the_part(make_nlp, blank, small_model,
                                                       tmp_path, excluded):
    nel = make_nlp().get_pipe("nel")
    nel.to_disk(tmp_path / "nel", exclude=[excluded])
    assert not (tmp_path / "nel" / excluded).exists()
    _, fresh = _fresh_component(blank, small_model)
    fresh.from_disk(tmp_path / "nel", exclude=[excluded])
    if excluded == "kb":
        assert fresh.kb.is_empty()
        assert fresh.model.to_bytes() == nel.model.to_bytes()
    else:
        assert fresh.kb.get_entity_strings() == nel.kb.get_entity_strings()
        assert not fresh.model.has_dim("nO")


def test_component_from_bytes_with_an_incompatible_model_raises(make_nlp, blank, small_tok2vec):
    nel = make_nlp().get_pipe("nel")
    wider = dict(small_tok2vec, width=48)
    other = blank().add_pipe(
        "nel", config={"model": {"@architectures": "entity_linker.EntityLinker.v1",
                                 "tok2vec": wider}}
    )
    with pytest.raises(ValueError):
        other.from_bytes(nel.to_bytes())


def test_multiprocess_pipe_of_a_loaded_pipeline_links_like_a_single_process(
    trained_synthetic, unlinked_docs, link_outputs, tmp_path
):
    trained_synthetic["nlp"].to_disk(tmp_path / "pipeline")
    nlp = spacy.load(tmp_path / "pipeline")
    examples = trained_synthetic["test"]
    single = link_outputs(nlp.pipe(unlinked_docs(nlp.vocab, examples), batch_size=8))
    multi = link_outputs(
        nlp.pipe(unlinked_docs(nlp.vocab, examples), batch_size=8, n_process=2)
    )
    assert [[ent[:3] for ent in doc] for doc in multi] == [[ent[:3] for ent in doc]
                                                          for doc in single]
    scores = lambda outputs: [ent[3] for doc in outputs for ent in doc]  # noqa: E731
    assert scores(multi) == pytest.approx(scores(single), rel=1e-5)

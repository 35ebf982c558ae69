"""The models that ``nel`` trains beside its encoder: the ranker of
``scoring = "learned"`` and the per-entity correction of the KB vectors."""

import numpy
import pytest
import spacy

from entity_linker.kb import InMemoryLookupKB
from entity_linker.scoring import FEATURES, LOGIT_SCALE, RANKER_GAIN
from entity_linker.synthetic import make_task

SMALL = {"@architectures": "entity_linker.EntityLinker.v2",
         "tok2vec": {"@architectures": "spacy.HashEmbedCNN.v2", "pretrained_vectors": None,
                     "width": 32, "depth": 1, "embed_size": 500, "window_size": 1,
                     "maxout_pieces": 2, "subword_features": False}}


def _linker(kb, **config):
    nlp = spacy.blank("en")
    nel = nlp.add_pipe("nel", config={"model": SMALL,
                                      "entity_vector_length": kb.entity_vector_length,
                                      **config})
    nel.set_kb(lambda vocab: kb)
    return nlp, nel


def _linked(nlp, docs):
    out = list(nlp.pipe([doc.copy() for doc in docs]))
    return [(e.kb_id_, e._.kb_score) for doc in out for e in doc.ents]


def _input_docs(examples):
    docs = []
    for eg in examples:
        doc = eg.predicted.copy()
        doc.ents = [doc.char_span(e.start_char, e.end_char, label=e.label_)
                    for e in eg.reference.ents]
        docs.append(doc)
    return docs


def test_learned_scoring_trains_its_ranker_and_beats_the_prior(train, accuracy):
    nlp = spacy.blank("en")
    kb, train_examples, test_examples = make_task(nlp, seed=0, n_train=400, n_test=200)
    nlp, nel = _linker(kb, scoring="learned", candidate_loss_weight=1.0)
    _, history = train(nlp, train_examples, epochs=4)
    weights = nel.ranker.get_param("W")[0] * RANKER_GAIN
    assert weights[FEATURES.index("cosine")] != pytest.approx(LOGIT_SCALE, abs=1e-3)
    assert history[-1]["nel"] < 0.5 * history[0]["nel"]
    prior_nlp, _ = _linker(kb, incl_context=False)
    assert accuracy(nlp, test_examples) - accuracy(prior_nlp, test_examples) >= 0.3


LEARNED = {"scoring": "learned", "candidate_loss_weight": 1.0}


@pytest.mark.parametrize("config", [LEARNED, {"entity_correction_rows": 64},
                                    {**LEARNED, "entity_correction_rows": 64}])
def test_trained_scoring_models_survive_bytes_and_disk(config, train, tmp_path):
    nlp = spacy.blank("en")
    kb, train_examples, test_examples = make_task(nlp, seed=1, n_train=120, n_test=40)
    nlp, nel = _linker(kb, **config)
    train(nlp, train_examples, epochs=2)
    docs = _input_docs(test_examples)
    expected = _linked(nlp, docs)
    nlp.to_disk(tmp_path / "pipeline")
    assert sorted(p.name for p in (tmp_path / "pipeline" / "nel").iterdir()) == sorted(
        ["cfg", "kb", "model"] + (["ranker"] if nel.ranker else [])
        + (["entity_correction"] if nel.entity_correction else []))
    loaded = spacy.load(tmp_path / "pipeline")
    assert _linked(loaded, docs) == expected
    fresh, _ = _linker(kb, **config)
    fresh.get_pipe("nel").from_bytes(nel.to_bytes())
    assert _linked(fresh, docs) == expected


def test_a_missing_scoring_model_file_is_a_clear_error(tmp_path):
    nlp = spacy.blank("en")
    kb, train_examples, _ = make_task(nlp, seed=1, n_train=20, n_test=1)
    nlp, _ = _linker(kb, scoring="learned", candidate_loss_weight=1.0)
    nlp.initialize(lambda: train_examples)
    nlp.to_disk(tmp_path / "pipeline")
    for path in (tmp_path / "pipeline" / "nel" / "ranker",):
        path.unlink()
    with pytest.raises(ValueError, match="ranker"):
        spacy.load(tmp_path / "pipeline")


def test_entity_correction_learns_entities_whose_kb_vectors_say_nothing(train, accuracy):
    """KB vectors that are pure noise: only a learned vector per entity can link by context."""
    nlp = spacy.blank("en")
    kb, train_examples, test_examples = make_task(nlp, seed=2, n_train=400, n_test=200)
    rng = numpy.random.default_rng(0)
    noise = rng.normal(size=kb.vectors.shape).astype("float32")
    aliases = kb.get_alias_strings()
    offsets, rows, priors = kb.lookup_aliases(aliases)
    noisy = InMemoryLookupKB.from_arrays(
        nlp.vocab, kb.get_entity_strings(), kb.entity_freqs, noise, aliases, offsets, rows,
        priors)
    results = {}
    for rows_ in (0, 512):
        linker, _ = _linker(noisy, entity_correction_rows=rows_)
        train(linker, train_examples, epochs=10)
        results[rows_] = accuracy(linker, test_examples)
    assert results[512] - results[0] >= 0.15, results


@pytest.mark.parametrize("value", [-1, 1.5, True, "8"])
def test_entity_correction_rows_must_be_a_non_negative_int(value):
    with pytest.raises(ValueError, match="entity_correction_rows"):
        spacy.blank("en").add_pipe("nel", config={"entity_correction_rows": value})


def test_learned_scoring_without_the_candidate_loss_is_refused():
    with pytest.raises(ValueError, match="candidate_loss_weight"):
        spacy.blank("en").add_pipe("nel", config={"scoring": "learned"})


def test_learned_scoring_reads_the_longer_mention_of_the_same_doc():
    from spacy.tokens import Doc, Span

    from entity_linker.scoring import FEATURES, RANKER_GAIN

    nlp = spacy.blank("en")
    kb = InMemoryLookupKB(nlp.vocab, entity_vector_length=2)
    kb.add_entity("Q_CRICKETER", 1, [1.0, 0.0])
    kb.add_entity("Q_COMPANY", 50, [0.0, 1.0])
    kb.add_alias("Chris Harris", ["Q_CRICKETER"], [0.9])
    kb.add_alias("Harris", ["Q_COMPANY", "Q_CRICKETER"], [0.7, 0.3])
    nel = nlp.add_pipe("nel", config={"scoring": "learned", "candidate_loss_weight": 1.0,
                                      "incl_context": False, "entity_vector_length": 2})
    nel.set_kb(lambda vocab: kb)
    weights = nel.ranker.get_param("W").copy()
    weights[0, FEATURES.index("coreference")] = 3.0 / RANKER_GAIN
    nel.ranker.set_param("W", weights)

    def linked(words, spans):
        doc = Doc(nlp.vocab, words=words)
        doc.ents = [Span(doc, start, end, label="PERSON") for start, end in spans]
        return [e.kb_id_ for e in nel(doc).ents]

    # Alone, "Harris" is the company (prior 0.7); after "Chris Harris", the cricketer.
    assert linked(["Harris", "scored"], [(0, 1)]) == ["Q_COMPANY"]
    assert linked(["Chris", "Harris", "batted", ".", "Harris", "scored"],
                  [(0, 2), (4, 5)]) == ["Q_CRICKETER", "Q_CRICKETER"]


def _name_linker(names: bool):
    """A prior-only learned linker over Italy (the country, prior 0.8) and its
    rugby and football teams, whose name words weigh 3 each."""
    nlp = spacy.blank("en")
    kb = InMemoryLookupKB(nlp.vocab, entity_vector_length=2)
    ids = ["Q_COUNTRY", "Q_RUGBY", "Q_FOOTBALL"]
    kb.set_entities(ids, [100, 10, 10], [[1.0, 0.0]] * 3)
    kb.add_alias("Italy", ids, [0.8, 0.1, 0.1])
    if names:
        kb.set_names(ids, ["Italy", "Italy national rugby union team",
                           "Italy national football team"])
    nel = nlp.add_pipe("nel", config={"scoring": "learned", "candidate_loss_weight": 1.0,
                                      "incl_context": False, "entity_vector_length": 2})
    nel.set_kb(lambda vocab: kb)
    weights = nel.ranker.get_param("W").copy()
    weights[0, FEATURES.index("name_context")] = 12.0 / RANKER_GAIN
    nel.ranker.set_param("W", weights)
    return nlp, nel


def test_learned_scoring_reads_the_candidates_names():
    from spacy.tokens import Span

    def linked(nlp, nel, text):
        doc = nlp.make_doc(text)
        doc.ents = [Span(doc, 0, 1, label="ORG")]
        return nel(doc).ents[0].kb_id_

    nlp, nel = _name_linker(names=True)
    assert linked(nlp, nel, "Italy voted .") == "Q_COUNTRY"
    # "rugby": 1 of the rugby team's 4 other words is in the doc, so 12 / 4 = 3
    # on its logit, beyond the prior's log(0.8 / 0.1) = 2.1.
    assert linked(nlp, nel, "Italy won the rugby match .") == "Q_RUGBY"
    assert linked(nlp, nel, "Italy won the football match .") == "Q_FOOTBALL"
    nel.explain = True
    doc = nlp.make_doc("Italy won the rugby match .")
    doc.ents = [Span(doc, 0, 1, label="ORG")]
    evidence = nel(doc).ents[0]._.kb_evidence
    assert "name_context" in str(evidence)
    nlp, nel = _name_linker(names=False)  # the same linker on a KB without names
    assert linked(nlp, nel, "Italy won the rugby match .") == "Q_COUNTRY"

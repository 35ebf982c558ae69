"""Training the ``nel`` component: with nlp.update, its loss, and with `spacy train`."""

import json
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from spacy.util import fix_random_seed

from entity_linker.kb import InMemoryLookupKB
from entity_linker.synthetic import make_task

CONFIG_PATH = Path(__file__).parent / "nel_config.cfg"


def _prior_only_accuracy(kb, test, accuracy):
    nlp = spacy.blank("en")
    nel = nlp.add_pipe("nel", config={"incl_context": False})
    nel.set_kb(lambda vocab: kb)
    return accuracy(nlp, test)


def test_trained_linker_learns_the_synthetic_task_and_beats_the_prior(train, accuracy):
    nlp = spacy.blank("en")
    kb, train_examples, test_examples = make_task(nlp, seed=0, n_train=400, n_test=200)
    nel = nlp.add_pipe("nel")  # the default model
    nel.set_kb(lambda vocab: kb)
    _, history = train(nlp, train_examples, epochs=4)
    trained = accuracy(nlp, test_examples)
    baseline = _prior_only_accuracy(kb, test_examples, accuracy)
    assert history[-1]["nel"] < 0.25 * history[0]["nel"]
    assert trained >= 0.8, (trained, baseline)
    assert trained - baseline >= 0.3, (trained, baseline)


def test_trained_linker_with_only_the_cosine_loss_still_learns(train, accuracy):
    nlp = spacy.blank("en")
    kb, train_examples, test_examples = make_task(nlp, seed=1, n_train=400, n_test=200)
    nel = nlp.add_pipe("nel", config={"candidate_loss_weight": 0.0})
    nel.set_kb(lambda vocab: kb)
    _, history = train(nlp, train_examples, epochs=4)
    trained = accuracy(nlp, test_examples)
    baseline = _prior_only_accuracy(kb, test_examples, accuracy)
    assert history[-1]["nel"] < 0.25 * history[0]["nel"]
    assert trained >= 0.7, (trained, baseline)
    assert trained - baseline >= 0.25, (trained, baseline)


def test_training_with_an_annotating_sentencizer_and_n_sents(train, accuracy):
    nlp = spacy.blank("en")
    kb, train_examples, test_examples = make_task(
        nlp, seed=2, n_train=240, n_test=100, n_aliases=15, vector_length=16
    )
    nlp.add_pipe("sentencizer")
    nel = nlp.add_pipe("nel", config={"n_sents": 1})
    nel.set_kb(lambda vocab: kb)
    fix_random_seed(0)
    optimizer = nlp.initialize(lambda: train_examples)
    seen_sentences = []
    update = nel.update

    def recording_update(examples, **kwargs):
        examples = list(examples)
        seen_sentences.extend(eg.predicted.has_annotation("SENT_START") for eg in examples)
        return update(examples, **kwargs)

    nel.update = recording_update
    first = nlp.update(train_examples[:16], sgd=optimizer, annotates=["sentencizer"])
    assert seen_sentences == [True] * 16  # the linker trained on sentence-split docs
    for _ in range(4):
        losses = {}
        for start in range(0, len(train_examples), 16):
            nlp.update(train_examples[start:start + 16], sgd=optimizer, losses=losses,
                       annotates=["sentencizer"], drop=0.1)
    assert losses["nel"] / 15 < 0.5 * first["nel"]  # 15 batches per epoch
    trained = accuracy(nlp, test_examples)
    baseline = _prior_only_accuracy(kb, test_examples, accuracy)
    assert trained - baseline >= 0.2, (trained, baseline)


def _toy_gold(make_doc, vocab, words, ents):
    """An Example whose predicted doc has the same entities (as after _ensure_ents)."""
    reference = make_doc(vocab, words, ents)
    predicted = make_doc(vocab, words, [ent[:3] for ent in ents])
    return Example(predicted, reference)


@pytest.fixture
def loss_examples(make_nlp, make_doc):
    """A toy pipeline and examples: two mentions with several candidates, one with a
    single candidate, one NIL and one whose gold entity is not in the KB."""
    nlp = make_nlp()
    vocab = nlp.vocab
    examples = [
        _toy_gold(make_doc, vocab, ["Paris", "x", "Triple"],
                  [(0, 1, "GPE", "QT"), (2, 3, "X", "QF")]),
        _toy_gold(make_doc, vocab, ["Texas", "Nowhere", "Hilton"],
                  [(0, 1, "GPE", "QT"), (1, 2, "GPE", "NIL"), (2, 3, "PERSON", "QX")]),
    ]
    # Gold of the mentions in order (None: not learned from), their candidates and priors.
    gold = [
        ("QT", ["QF", "QT"], [0.8, 0.2]),
        ("QF", ["QH", "QT", "QF"], [0.5, 0.2, 0.2]),
        ("QT", ["QT"], [0.9]),
        (None, [], []),
        (None, [], []),
    ]
    return nlp, examples, gold


def _expected_loss(nlp, encodings, gold, weight, incl_prior):
    kb = nlp.get_pipe("nel").kb

    def cos(a, b):
        return float(a @ b / (numpy.linalg.norm(a) * numpy.linalg.norm(b)))

    kept = [(enc, g) for enc, g in zip(encodings, gold) if g[0] is not None]
    cosine = sum(1 - cos(enc, numpy.asarray(kb.get_vector(g[0]))) for enc, g in kept) / len(kept)
    ce_terms = []
    for enc, (gold_id, candidates, priors) in kept:
        if len(candidates) < 2:
            continue
        sims = numpy.array([cos(enc, numpy.asarray(kb.get_vector(c))) for c in candidates])
        p = numpy.array(priors)
        # The default scoring ("spacy") ranks by p + sim - p * sim; the loss uses the same.
        logits = 10 * (p + sims - p * sims) if incl_prior else 10 * sims
        logits -= logits.max()
        log_probs = logits - numpy.log(numpy.exp(logits).sum())
        ce_terms.append(-log_probs[candidates.index(gold_id)])
    return cosine + weight * sum(ce_terms) / len(ce_terms)


@pytest.mark.parametrize("weight", [0.0, 1.0, 0.5])
@pytest.mark.parametrize("incl_prior", [True, False])
def test_get_loss_is_cosine_distance_plus_weighted_candidate_cross_entropy(
    loss_examples, weight, incl_prior
):
    nlp, examples, gold = loss_examples
    nel = nlp.get_pipe("nel")
    nel.candidate_loss_weight = weight
    nel.incl_prior = incl_prior
    encodings = numpy.random.default_rng(0).normal(size=(5, 3))
    loss, gradient = nel.get_loss(examples, encodings)
    assert loss == pytest.approx(_expected_loss(nlp, encodings, gold, weight, incl_prior),
                                 rel=1e-5)
    assert gradient.shape == (5, 3)
    # Mentions without a linkable gold entity get no gradient.
    numpy.testing.assert_array_equal(gradient[3:], 0)


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_get_loss_gradient_matches_finite_differences(loss_examples, weight):
    nlp, examples, _ = loss_examples
    nel = nlp.get_pipe("nel")
    nel.candidate_loss_weight = weight
    encodings = numpy.random.default_rng(1).normal(size=(5, 3))
    _, gradient = nel.get_loss(examples, encodings)
    numeric = numpy.zeros_like(encodings)
    eps = 1e-6
    for i in range(encodings.shape[0]):
        for j in range(encodings.shape[1]):
            plus, minus = encodings.copy(), encodings.copy()
            plus[i, j] += eps
            minus[i, j] -= eps
            numeric[i, j] = (nel.get_loss(examples, plus)[0]
                             - nel.get_loss(examples, minus)[0]) / (2 * eps)
    numpy.testing.assert_allclose(gradient, numeric, rtol=1e-3, atol=1e-5)


def test_update_with_dropout_trains(make_nlp, toy_examples):
    nlp = make_nlp()
    nel = nlp.get_pipe("nel")
    before = nel.model.to_bytes()
    losses = nlp.update(toy_examples(nlp.vocab), sgd=nlp.resume_training(), drop=0.3)
    assert losses["nel"] > 0
    assert nel.model.to_bytes() != before


def test_update_with_a_tokenization_mismatch_does_not_crash(make_nlp):
    # spaCy issue #9575: the predicted and reference tokenizations differ.
    nlp = make_nlp()
    predicted = Doc(nlp.vocab, words=["Texas", "123456"], spaces=[True, False],
                    ents=["B-GPE", "B-CARDINAL"])
    reference = Doc(nlp.vocab, words=["Texas", "123", "456"], spaces=[True, False, False],
                    ents=["B-GPE", "B-CARDINAL", "I-CARDINAL"])
    reference.ents = [reference.char_span(0, 5, label="GPE", kb_id="QT"), reference.ents[1]]
    optimizer = nlp.resume_training()
    losses = nlp.update([Example(predicted, reference)], sgd=optimizer)
    assert losses["nel"] > 0
    nlp.evaluate([Example(predicted, reference)])


def test_gold_entities_are_read_the_same_with_and_without_the_same_tokens(make_nlp):
    # Same words: read directly; other tokenization or spacing: spaCy's alignment.
    nlp = make_nlp()
    nel = nlp.get_pipe("nel")
    words, spaces = ["Paris", "in", "Texas", "!"], [True, True, False, False]
    reference = Doc(nlp.vocab, words=words, spaces=spaces)
    reference.ents = [Span(reference, 0, 1, "GPE", kb_id="QT"),
                      Span(reference, 2, 3, "GPE", kb_id="QT")]
    same = Example(Doc(nlp.vocab, words=words, spaces=spaces), reference)
    split = Example(Doc(nlp.vocab, words=["Par", "is", "in", "Texas!"],
                        spaces=[False, True, True, False]), reference)
    respaced = Example(Doc(nlp.vocab, words=words, spaces=[True, True, True, False]),
                       reference)
    examples = nel._ensure_ents([same, split, respaced])
    assert [[(e.start, e.end, e.label_) for e in eg.predicted.ents] for eg in examples] == [
        [(0, 1, "GPE"), (2, 3, "GPE")], [(0, 2, "GPE")], [(0, 1, "GPE"), (2, 3, "GPE")]
    ]
    assert examples[0].reference is reference  # shared, not copied
    assert same.predicted.ents == ()  # the caller's docs are unchanged
    assert nel._gold_rows(examples) == ([0, 1, 2, 3, 4], ["QT"] * 5)
    # Matching ents of a different label are not learned from.
    relabelled = Doc(nlp.vocab, words=words, spaces=spaces)
    relabelled.ents = [Span(relabelled, 0, 1, "PERSON")]
    assert nel._gold_rows([Example(relabelled, reference)]) == ([], [])


def test_update_ignores_predicted_entities_that_do_not_match_a_gold_entity(make_nlp,
                                                                            make_doc):
    nlp = make_nlp({"use_gold_ents": False})
    words = ["Paris", "Hilton", "is", "here"]
    reference = make_doc(nlp.vocab, words, [(0, 2, "PERSON", "QH")])
    predicted = make_doc(nlp.vocab, words, [(0, 1, "GPE")])
    losses = nlp.get_pipe("nel").update([Example(predicted, reference)])
    assert losses["nel"] == 0.0


def test_update_learns_from_predicted_entities_that_match_a_gold_entity(make_nlp, make_doc):
    nlp = make_nlp({"use_gold_ents": False})
    words = ["Paris", "Hilton", "is", "here"]
    reference = make_doc(nlp.vocab, words, [(0, 2, "PERSON", "QH")])
    predicted = make_doc(nlp.vocab, words, [(0, 2, "PERSON")])
    assert nlp.get_pipe("nel").update([Example(predicted, reference)])["nel"] > 0


# ------------------------------------------------------------ spacy train


@pytest.fixture(scope="module")
def train_corpus(tmp_path_factory):
    """train.spacy / dev.spacy (docs with ents and kb ids) and a KB dir from a synthetic task."""
    path = tmp_path_factory.mktemp("nel_train")
    nlp = spacy.blank("en")
    kb, train_examples, dev_examples = make_task(
        nlp, seed=5, n_train=200, n_test=60, n_aliases=20, vector_length=16
    )
    DocBin(docs=[eg.reference for eg in train_examples]).to_disk(path / "train.spacy")
    DocBin(docs=[eg.reference for eg in dev_examples]).to_disk(path / "dev.spacy")
    kb.to_disk(path / "kb")
    return {"path": path, "kb": kb, "dev": dev_examples}


@pytest.mark.parametrize("pipeline", [["sentencizer", "nel"], ["nel"]],
                         ids=["with_sentencizer", "without_sentencizer"])
def test_spacy_train_cli_trains_a_pipeline_that_loads_and_links(
    train_corpus, tmp_path, pipeline, unlinked_docs
):
    path = train_corpus["path"]
    output = tmp_path / "output"
    command = [
        sys.executable, "-m", "spacy", "train", str(CONFIG_PATH),
        "--output", str(output),
        "--paths.train", str(path / "train.spacy"),
        "--paths.dev", str(path / "dev.spacy"),
        "--paths.kb", str(path / "kb"),
        "--nlp.pipeline", json.dumps(pipeline),
        "--training.max_steps", "40",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    best = output / "model-best"
    assert (best / "nel" / "kb" / "kb.bin").is_file()
    meta = json.loads((best / "meta.json").read_text())
    assert meta["performance"]["nel_micro_f"] is not None

    nlp = spacy.load(best)
    assert nlp.pipe_names == pipeline
    nel = nlp.get_pipe("nel")
    assert nel.kb.is_read_only
    assert nel.kb.path == best / "nel" / "kb" / "kb.bin"
    assert nel.kb.get_size_entities() == train_corpus["kb"].get_size_entities()
    docs = list(nlp.pipe(unlinked_docs(nlp.vocab, train_corpus["dev"])))
    linked = [ent.kb_id_ for doc in docs for ent in doc.ents]
    assert len(linked) == len(train_corpus["dev"])
    entity_ids = set(train_corpus["kb"].get_entity_strings())
    assert all(kb_id in entity_ids for kb_id in linked)
    assert all(ent._.kb_score is not None for doc in docs for ent in doc.ents)


def test_default_linker_overfits_a_tiny_set_as_spacys_does():
    """spaCy's own check of its linker: 50 updates on four sentences bring the
    loss below 0.001 and link every mention right. With the defaults (spaCy's
    loss, no candidate loss) nel must pass it too."""
    nlp = spacy.blank("en")
    data = [
        ("Jordan Smith scored twice for the club on Sunday.", "Q_FOOTBALLER"),
        ("Jordan Smith published a novel about the sea.", "Q_WRITER"),
        ("Critics praised the new book by Jordan Smith.", "Q_WRITER"),
        ("The striker Jordan Smith missed a penalty.", "Q_FOOTBALLER"),
    ]
    examples = []
    for text, kb_id in data:
        doc = nlp(text)
        start = text.index("Jordan Smith")
        entity = (start, start + len("Jordan Smith"))
        examples.append(Example.from_dict(doc, {
            "entities": [(*entity, "PERSON")], "links": {entity: {kb_id: 1.0}}}))

    def create_kb(vocab):
        kb = InMemoryLookupKB(vocab, entity_vector_length=3)
        kb.add_entity("Q_FOOTBALLER", 12, [6.0, -4.0, 3.0])
        kb.add_entity("Q_WRITER", 12, [9.0, 1.0, -7.0])
        kb.add_alias("Jordan Smith", ["Q_FOOTBALLER", "Q_WRITER"], [0.5, 0.5])
        return kb

    nel = nlp.add_pipe("nel", config={"use_gold_ents": True})
    nel.set_kb(create_kb)
    fix_random_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(50):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses)
    assert losses["nel"] < 0.001, losses
    docs = [eg.reference.copy() for eg in examples]
    for doc in docs:
        doc.ents = [Span(doc, e.start, e.end, label=e.label_) for e in doc.ents]
    linked = [e.kb_id_ for doc in nlp.pipe(docs) for e in doc.ents]
    assert linked == [kb_id for _, kb_id in data]

"""The learned (context word, name word) pair weights of ``word_pairs_rows``."""

import numpy
import pytest
import spacy
from spacy.tokens import Span
from spacy.training import Example

from entity_linker.kb import InMemoryLookupKB
from entity_linker.scoring.word_pairs import build_word_pairs, context_words, pair_keys


def _mention(nlp, text, start, end):
    doc = nlp.make_doc(text)
    return Span(doc, start, end, label="ORG")


def test_context_words_leave_out_the_mention_and_stopwords():
    nlp = spacy.blank("en")
    mention = _mention(nlp, "The Cleveland team won the basketball game in Cleveland", 1, 2)
    assert context_words(mention) == ("team", "won", "basketball", "game")
    assert context_words(mention, window=1) == ("team",)


def test_pair_keys_pair_each_context_word_with_each_new_name_word():
    nlp = spacy.blank("en")
    mention = _mention(nlp, "Cleveland won the basketball game", 0, 1)
    names = ["Cleveland", "Cleveland Cavaliers", "Cleveland Browns football"]
    keys, owners, shares = pair_keys(numpy.array([0, 3]), names, [mention])
    # 3 context words (won, basketball, game) x (1 marker, 1 word, 2 words)
    assert numpy.bincount(owners).tolist() == [3, 3, 6]
    assert numpy.allclose(shares, 1 / 3)
    assert len(set(keys.tolist())) == 12
    again, _, _ = pair_keys(numpy.array([0, 3]), names, [mention])
    assert again.tolist() == keys.tolist()
    # The city's pairs (its name adds nothing) are not the team's.
    assert not set(keys[owners == 0].tolist()) & set(keys[owners == 1].tolist())


def test_a_mention_without_candidates_or_context_has_no_pairs():
    nlp = spacy.blank("en")
    alone = _mention(nlp, "Cleveland", 0, 1)
    keys, owners, shares = pair_keys(numpy.array([0, 1]), ["Cleveland Cavaliers"], [alone])
    assert len(keys) == len(owners) == len(shares) == 0
    busy = _mention(nlp, "Cleveland won", 0, 1)
    keys, _, _ = pair_keys(numpy.array([0, 0]), [], [busy])
    assert len(keys) == 0


def test_the_pair_weights_gradient_matches_finite_differences():
    model = build_word_pairs(64)
    model.initialize()
    rng = numpy.random.default_rng(0)
    model.set_param("W", rng.normal(size=64).astype("float32"))
    keys = rng.integers(0, 2**63, size=10, dtype=numpy.uint64)
    owners = numpy.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    shares = rng.uniform(0.1, 1.0, size=10)
    d_out = numpy.array([0.5, -1.0, 2.0])
    out, backprop = model((keys, owners, shares, 3), is_train=True)
    backprop(d_out)
    grad = model.get_grad("W").astype(numpy.float64)
    weights = model.get_param("W").copy()
    eps = 1e-2
    for row in {int(k % numpy.uint64(64)) for k in keys}:
        bumped = weights.copy()
        bumped[row] += eps
        model.set_param("W", bumped)
        moved, _ = model((keys, owners, shares, 3), is_train=False)
        assert (moved - out) @ d_out / eps == pytest.approx(grad[row], rel=1e-3)
    model.set_param("W", weights)


def _cleveland(word_pairs_rows: int, scoring: str = "learned"):
    """A prior-only linker: "Cleveland" is the city (prior 0.7) or its
    basketball team (0.3)."""
    nlp = spacy.blank("en")
    kb = InMemoryLookupKB(nlp.vocab, entity_vector_length=2)
    ids = ["Q_CITY", "Q_TEAM"]
    kb.set_entities(ids, [100, 30], [[1.0, 0.0], [0.0, 1.0]])
    kb.set_names(ids, ["Cleveland", "Cleveland Cavaliers"])
    kb.add_alias("Cleveland", ids, [0.7, 0.3])
    nel = nlp.add_pipe("nel", config={"scoring": scoring, "candidate_loss_weight": 1.0,
                                      "incl_context": False, "entity_vector_length": 2,
                                      "word_pairs_rows": word_pairs_rows})
    nel.set_kb(lambda vocab: kb)
    return nlp, nel


TRAIN = [
    ("Cleveland beat Boston in the basketball game on Friday .", "Q_TEAM"),
    ("Cleveland lost a basketball game to Houston .", "Q_TEAM"),
    ("The basketball season ended badly for Cleveland .", "Q_TEAM"),
    ("Cleveland won the basketball playoff game at home .", "Q_TEAM"),
    ("The mayor of Cleveland opened a new school .", "Q_CITY"),
    ("Cleveland raised taxes , the mayor said .", "Q_CITY"),
    ("Snow closed the schools of Cleveland on Monday .", "Q_CITY"),
    ("Rents in Cleveland rose , said the mayor .", "Q_CITY"),
]


def _examples(nlp, pairs):
    out = []
    for text, kb_id in pairs:
        doc = nlp.make_doc(text)
        start = [t.text for t in doc].index("Cleveland")
        reference = doc.copy()
        reference.ents = [Span(reference, start, start + 1, label="ORG", kb_id=kb_id)]
        predicted = doc.copy()
        predicted.ents = [Span(predicted, start, start + 1, label="ORG")]
        out.append(Example(predicted, reference))
    return out


@pytest.mark.parametrize("scoring", ["learned", "softmax"])
@pytest.mark.parametrize("rows", [0, 1024])
def test_word_pairs_learn_which_kind_of_entity_a_context_wants(rows, scoring, train):
    nlp, nel = _cleveland(rows, scoring)
    train(nlp, _examples(nlp, TRAIN), epochs=30, batch_size=4)
    test = ["Cleveland scored late in the basketball game .",
            "The mayor of Cleveland visited a school ."]
    docs = [eg.predicted for eg in _examples(nlp, [(t, "") for t in test])]
    linked = [doc.ents[0].kb_id_ for doc in nlp.pipe(docs)]
    if rows:
        assert linked == ["Q_TEAM", "Q_CITY"]
    else:  # without pairs, a prior-only linker links both the same way
        assert linked[0] == linked[1]


def test_word_pairs_survive_bytes(train):
    nlp, nel = _cleveland(1024)
    train(nlp, _examples(nlp, TRAIN), epochs=5, batch_size=4)
    fresh, fresh_nel = _cleveland(1024)
    fresh_nel.from_bytes(nel.to_bytes())
    assert numpy.array_equal(fresh_nel.word_pairs.get_param("W"),
                             nel.word_pairs.get_param("W"))
    assert nel.word_pairs.get_param("W").any()


@pytest.mark.parametrize("config", [
    {},  # spaCy's scoring has no logits to add the pairs to
    {"scoring": "softmax"},  # nothing would train them
])
def test_word_pairs_need_a_softmax_scoring_and_the_candidate_loss(config):
    with pytest.raises(ValueError, match="word_pairs_rows"):
        spacy.blank("en").add_pipe("nel", config={"word_pairs_rows": 1024, **config})


@pytest.mark.parametrize("value", [-1, 1.5, True, "8"])
def test_word_pairs_rows_must_be_a_non_negative_int(value):
    with pytest.raises(ValueError, match="word_pairs_rows"):
        spacy.blank("en").add_pipe("nel", config={"scoring": "learned",
                                                  "candidate_loss_weight": 1.0,
                                                  "word_pairs_rows": value})

"""The name features of the learned ranker (scoring.name_evidence) and the
loading of a ranker saved before they existed."""

import numpy
import pytest
from thinc.api import Linear

from entity_linker.scoring import (
    FEATURES,
    NAME_FEATURES,
    build_ranker,
    feature_matrix,
    load_ranker,
    name_evidence,
    name_words,
)

RUGBY = "Italy recalled Cuttitta for the rugby friendly against Scotland at Murrayfield ."
RESULTS = "Soccer results : Chester 1 York 2 , Exeter 0 Leicester 3 ."


def test_name_words_are_lower_cased_distinct_and_skip_stopwords():
    assert name_words("Italy national rugby union team") == (
        "italy", "national", "rugby", "union", "team")
    assert name_words("Bank of the West") == ("bank", "west")
    assert name_words("Chester City F.C.") == ("chester", "city", "f", "c")
    assert name_words("Łódź, Łódź") == ("łódź",)
    assert name_words("") == ()


def test_name_context_is_the_share_of_the_names_other_words_in_the_doc():
    # mention "Italy": candidates Italy, Italy national rugby union team,
    # Italy national football team. The mention's own word does not count.
    names = ["Italy", "Italy national rugby union team", "Italy national football team"]
    out = name_evidence(numpy.array([0, 3]), names, [0], [0], ["Italy"], [RUGBY])
    assert out.dtype == numpy.float32 and out.shape == (3, len(NAME_FEATURES))
    context = out[:, NAME_FEATURES.index("name_context")]
    assert context[0] == 0.0  # no words beyond the mention
    assert context[1] == pytest.approx(1 / 4)  # rugby of national, rugby, union, team
    assert context[2] == 0.0


def test_name_context_matches_a_word_by_its_first_letters():
    names = ["Nathan Astle", "Nathan Astle (cricketer)"]
    text = "New Zealand cricket : Astle made 100 ."
    out = name_evidence(numpy.array([0, 2]), names, [0], [0], ["Astle"], [text])
    # "cricketer" matches "cricket" (the first 5 letters); "nathan" is not in the doc.
    assert out[:, 0].tolist() == pytest.approx([0.0, 0.5])


def test_name_coherence_counts_the_other_mention_groups_sharing_a_name_word():
    # Four mentions, each with a city and a club candidate; "Leicester" twice
    # (one group). The other groups of a Chester candidate: York, Exeter, Leicester.
    texts = ["Chester", "York", "Exeter", "Leicester", "Leicester"]
    names = ["Chester", "Chester City F.C.", "York", "York City F.C.", "Exeter",
             "Exeter City F.C.", "Leicester", "Leicester City F.C.", "Leicester",
             "Leicester City F.C."]
    offsets = numpy.arange(0, 11, 2)
    groups = [0, 1, 2, 3, 3]
    out = name_evidence(offsets, names, [0] * 5, groups, texts, [RESULTS])
    coherence = out[:, NAME_FEATURES.index("name_coherence")]
    assert coherence[0::2].tolist() == [0.0] * 5  # the cities: no words beyond the mention
    assert coherence[1::2].tolist() == pytest.approx([1.0] * 5)  # every other group: city, f, c


def test_name_evidence_stays_within_each_doc():
    texts = ["Chester", "York"]
    names = ["Chester City F.C.", "York City F.C."]
    out = name_evidence(numpy.array([0, 1, 2]), names, [0, 1], [0, 1], texts,
                        ["Chester won .", "York won ."])
    assert out[:, 1].tolist() == [0.0, 0.0]  # alone in its doc
    assert out[:, 0].tolist() == [0.0, 0.0]  # city, f, c: none in the doc


def test_candidates_without_names_get_zeros():
    out = name_evidence(numpy.array([0, 2, 2]), ["", ""], [0, 0], [0, 1], ["a", "b"],
                        ["a b"])
    assert not out.any()
    assert name_evidence(numpy.array([0]), [], [], [], [], []).shape == (0, 2)


def test_the_name_columns_of_the_feature_matrix():
    offsets = numpy.array([0, 2])
    values = numpy.array([[0.25, 1.0], [0.0, 0.5]], dtype=numpy.float32)
    features = feature_matrix(offsets, numpy.array([0.6, 0.4]), None, numpy.zeros(2), None,
                              True, True, name_values=values)
    for column, name in enumerate(NAME_FEATURES):
        assert features[:, FEATURES.index(name)].tolist() == values[:, column].tolist()


def test_a_ranker_saved_before_the_name_features_loads_with_them_at_weight_zero():
    n_old = FEATURES.index(NAME_FEATURES[0])
    old = Linear(nO=1, nI=n_old)
    old.initialize()
    old.set_param("W", numpy.arange(1, n_old + 1, dtype=numpy.float32)[None, :])
    old.set_param("b", numpy.array([0.5], dtype=numpy.float32))
    ranker = build_ranker()
    load_ranker(ranker, old.to_bytes())
    weights = ranker.get_param("W")
    assert ranker.get_dim("nI") == len(FEATURES)
    assert weights[0, :n_old].tolist() == list(range(1, n_old + 1))
    assert weights[0, n_old:].tolist() == [0.0] * (len(FEATURES) - n_old)
    x = numpy.ones((1, len(FEATURES)), dtype=numpy.float32)
    assert float(ranker.predict(x)[0, 0]) == pytest.approx(sum(range(1, n_old + 1)) + 0.5)
    again = build_ranker()
    load_ranker(again, ranker.to_bytes())  # today's rankers load unchanged
    assert again.get_param("W").tolist() == weights.tolist()


def test_a_ranker_with_more_features_than_known_is_refused():
    future = Linear(nO=1, nI=len(FEATURES) + 1)
    future.initialize()
    with pytest.raises(ValueError, match="Upgrade entity_linker"):
        load_ranker(build_ranker(), future.to_bytes())

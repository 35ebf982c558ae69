"""Tests of the ``kb_spotter`` component: finding KB aliases in raw text.

The place KB used throughout (vector length 2):

    entity   freq     aliases (prior)
    NY       8000     New York (0.9), York (0.3)
    NYC      9000     New York City (0.95)
    YK       200      York (0.7)
    STL      3000     St. Louis (1.0)
    USA      300000   US (1.0), U.S.A. (1.0)
    ZRH      4000     Zürich (1.0)
    RDG      1500     Reading (1.0)
    MAY      50       May (1.0)
    WERE     10       Were (1.0)
    KC       5000     Kansas City (0.4)
    KS       2000     Kansas (1.0)
    CH       20       City Hall (0.95)
    HB       100      Hall Bay (0.5)
    LAV      1        Lavalle (0.05)
"""

import time
import warnings

import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example

from entity_linker import InMemoryLookupKB, KBWarning
from entity_linker.spotter import KBSpotter

ENTITIES = (
    ("NY", 8000.0), ("NYC", 9000.0), ("YK", 200.0), ("STL", 3000.0), ("USA", 300000.0),
    ("ZRH", 4000.0), ("RDG", 1500.0), ("MAY", 50.0), ("WERE", 10.0), ("KC", 5000.0),
    ("KS", 2000.0), ("CH", 20.0), ("HB", 100.0), ("LAV", 1.0),
)
ALIASES = (
    ("New York", ("NY",), (0.9,)),
    ("York", ("YK", "NY"), (0.7, 0.3)),
    ("New York City", ("NYC",), (0.95,)),
    ("St. Louis", ("STL",), (1.0,)),
    ("US", ("USA",), (1.0,)),
    ("U.S.A.", ("USA",), (1.0,)),
    ("Zürich", ("ZRH",), (1.0,)),
    ("Reading", ("RDG",), (1.0,)),
    ("May", ("MAY",), (1.0,)),
    ("Were", ("WERE",), (1.0,)),
    ("Kansas City", ("KC",), (0.4,)),
    ("Kansas", ("KS",), (1.0,)),
    ("City Hall", ("CH",), (0.95,)),
    ("Hall Bay", ("HB",), (0.5,)),
    ("Lavalle", ("LAV",), (0.05,)),
)


def build_kb(vocab, index: bool = True) -> InMemoryLookupKB:
    kb = InMemoryLookupKB(vocab, entity_vector_length=2)
    for number, (entity, freq) in enumerate(ENTITIES):
        kb.add_entity(entity, freq, [1.0, float(number)])
    for alias, entities, priors in ALIASES:
        kb.add_alias(alias, list(entities), list(priors))
    if index:
        kb.build_alias_index()
    return kb


def make_nlp(sentencizer: bool = False, **config) -> spacy.Language:
    nlp = spacy.blank("en")
    if sentencizer:
        nlp.add_pipe("sentencizer")
    spotter = nlp.add_pipe("kb_spotter", config=config)
    spotter.set_kb(build_kb)
    return nlp


def found(doc: Doc) -> list:
    return [ent.text for ent in doc.ents]


# ------------------------------------------------------------- matching


def test_longest_match_wins_over_contained_aliases():
    doc = make_nlp()("They moved to New York City from York.")
    assert found(doc) == ["New York City", "York"]
    assert [ent.label_ for ent in doc.ents] == ["ENT", "ENT"]
    assert all(ent.kb_id_ == "" for ent in doc.ents)  # linking is nel's job


def test_overlapping_matches_of_equal_length_go_to_the_higher_prior():
    # "Kansas City" (0.4) and "City Hall" (0.95) overlap on "City".
    assert found(make_nlp()("Visit Kansas City Hall today.")) == ["Kansas", "City Hall"]


def test_more_tokens_beat_a_higher_prior():
    # "New York City" (3 tokens) beats the overlapping "City Hall" (2 tokens, 0.95).
    assert found(make_nlp()("Meet at New York City Hall.")) == ["New York City"]


def test_equal_length_and_prior_goes_to_the_leftmost():
    nlp = make_nlp()
    nlp.get_pipe("kb_spotter").set_kb(_kb_with_equal_overlaps)
    assert found(nlp("Go to Kansas City Hall now.")) == ["Kansas City"]


def _kb_with_equal_overlaps(vocab):
    kb = InMemoryLookupKB(vocab, entity_vector_length=1)
    kb.add_entity("A", 1.0, [1.0])
    kb.add_entity("B", 1.0, [1.0])
    kb.add_alias("Kansas City", ["A"], [0.5])
    kb.add_alias("City Hall", ["B"], [0.5])
    kb.build_alias_index()
    return kb


def test_short_aliases_must_match_case_exactly():
    nlp = make_nlp(skip_lowercase=False, skip_stop_words=False)
    assert found(nlp("Made in the US.")) == ["US"]
    assert found(nlp("Tell us more.")) == []
    assert found(nlp("Us and them.")) == []
    # Longer aliases still match in any case once normalised.
    doc = Doc(nlp.vocab, words=["From", "u.s.a.", "and", "U.S.A.", "and", "USA"])
    assert found(nlp.get_pipe("kb_spotter")(doc)) == ["u.s.a.", "U.S.A."]
    loose = make_nlp(skip_lowercase=False, skip_stop_words=False, case_sensitive_below=0)
    assert found(loose("Us and them.")) == ["Us"]


def test_lowercase_mentions_are_skipped_by_default():
    assert found(make_nlp()("I was reading in Reading.")) == ["Reading"]
    assert found(make_nlp(skip_lowercase=False)("I was reading.")) == ["reading"]


def test_stop_word_mentions_are_skipped_unless_in_capitals():
    nlp = make_nlp()
    # "May" and "We're" (We + 're -> "were") are stop words; "US" is in capitals.
    assert found(nlp("May we're going to the US.")) == ["US"]
    assert found(nlp("We're in May.")) == []
    keep = make_nlp(skip_stop_words=False)
    assert found(keep("We're in May.")) == ["We're", "May"]


def test_min_prior_drops_matches_whose_best_candidate_is_unlikely():
    text = "From Lavalle to Reading."
    assert found(make_nlp()(text)) == ["Lavalle", "Reading"]
    assert found(make_nlp(min_prior=0.1)(text)) == ["Reading"]


def test_min_freq_reads_the_best_candidates_entity_frequency():
    # York's best candidate is YK (freq 200), not NY (8000).
    text = "From York to Kansas City."
    assert found(make_nlp(min_freq=1000)(text)) == ["Kansas City"]
    assert found(make_nlp(min_freq=100)(text)) == ["York", "Kansas City"]


def test_a_filtered_long_match_leaves_room_for_shorter_ones():
    # "Kansas City" fails min_prior 0.5, so "Kansas" and "City Hall" are found.
    doc = make_nlp(min_prior=0.5)("Kansas City Hall.")
    assert found(doc) == ["Kansas", "City Hall"]


def test_min_length_in_characters():
    assert found(make_nlp(min_length=5)("The US and York and Reading.")) == ["Reading"]


def test_exclude_lists_texts_never_matched_nor_split():
    nlp = make_nlp(exclude=["reading", "New York"])
    # An excluded "NEW YORK" is not matched as "YORK" either.
    doc = nlp("Reading and NEW YORK and York and New York City.")
    assert found(doc) == ["York", "New York City"]
    assert found(make_nlp(normalized=False, exclude=["York"])("York, New York")) == [
        "New York"
    ]


def test_normalised_matching_ignores_case_and_punctuation():
    nlp = make_nlp()
    assert found(nlp("Flights to ST. LOUIS and Saint Louis.")) == ["ST. LOUIS", "Saint Louis"]
    assert found(make_nlp(normalized=False)("Flights to ST. LOUIS and St. Louis.")) == [
        "St. Louis"
    ]


def test_accents_and_unicode_forms_match():
    nlp = make_nlp()
    assert found(nlp("Zurich, ZÜRICH and Zürich.")) == ["Zurich", "ZÜRICH", "Zürich"]
    # NFKC: full-width letters are the same word.
    assert found(nlp("Ｚürich is far.")) == ["Ｚürich"]
    assert found(make_nlp(normalized=False)("Zurich and Zürich.")) == ["Zürich"]


def test_character_offsets_survive_non_ascii_text():
    doc = make_nlp()("Café — naïve “quotes” then Zürich and New York City.")
    assert [(ent.text, ent.start_char) for ent in doc.ents] == [
        ("Zürich", doc.text.index("Zürich")), ("New York City", doc.text.index("New York"))
    ]


def test_mentions_do_not_cross_sentences_or_line_breaks():
    nlp = make_nlp(sentencizer=True)
    assert found(nlp("I left New. York is small.")) == ["York"]
    assert found(make_nlp()("I left New\n\nYork behind.")) == ["York"]


def test_mentions_do_not_start_or_end_with_punctuation():
    assert found(make_nlp()("(York), York!")) == ["York", "York"]


def test_max_words_limits_the_alias_length_in_tokens():
    assert found(make_nlp(max_words=2)("New York City")) == ["New York"]
    assert found(make_nlp(max_words=1)("New York City")) == ["York"]


def test_empty_and_whitespace_docs():
    nlp = make_nlp()
    for text in ("", " ", "\n\n", "...", "lowercase words only"):
        assert found(nlp(text)) == []


def test_a_very_long_doc_finds_every_match_quickly():
    nlp = make_nlp()
    sentence = "The mayor of New York City flew to Zürich and then to St. Louis today. "
    text = sentence * 3000  # ~48k tokens
    nlp("warm up New York")
    start = time.perf_counter()
    doc = nlp(text)
    elapsed = time.perf_counter() - start
    assert len(doc.ents) == 3 * 3000
    assert found(doc)[:3] == ["New York City", "Zürich", "St. Louis"]
    assert elapsed < 10.0  # seconds (about 0.5 s on a laptop)


def test_pipe_batches_give_the_same_spans_as_single_calls():
    texts = ["New York City and York.", "", "ST. LOUIS, US", "nothing here", "Zurich."] * 7
    nlp = make_nlp()
    single = [found(nlp(text)) for text in texts]
    batched = [found(doc) for doc in nlp.pipe(texts, batch_size=4)]
    assert batched == single


# ---------------------------------------------------------- annotations


def test_existing_entities_are_kept_and_only_non_overlapping_matches_added():
    nlp = make_nlp()
    doc = nlp.make_doc("Ann lives in New York City near York.")
    doc.ents = [Span(doc, 0, 1, label="PERSON"), Span(doc, 5, 6, label="GPE")]  # Ann, City
    doc = nlp.get_pipe("kb_spotter")(doc)
    assert [(ent.text, ent.label_) for ent in doc.ents] == [
        ("Ann", "PERSON"), ("City", "GPE"), ("York", "ENT")
    ]


def test_overwrite_ents_replaces_existing_entities():
    nlp = make_nlp(overwrite_ents=True, label="LOC")
    doc = nlp.make_doc("Ann lives in New York City.")
    doc.ents = [Span(doc, 0, 1, label="PERSON"), Span(doc, 5, 6, label="GPE")]
    doc = nlp.get_pipe("kb_spotter")(doc)
    assert [(ent.text, ent.label_) for ent in doc.ents] == [("New York City", "LOC")]


def test_spans_key_writes_a_span_group_and_can_leave_ents_alone():
    nlp = make_nlp(spans_key="places", annotate_ents=False)
    doc = nlp("New York City and York.")
    assert [span.text for span in doc.spans["places"]] == ["New York City", "York"]
    assert doc.ents == ()
    both = make_nlp(spans_key="places")("York")
    assert found(both) == ["York"] and [s.text for s in both.spans["places"]] == ["York"]


def test_bad_settings_are_rejected_with_the_setting_named():
    for config, name in (({"max_words": 0}, "max_words"), ({"min_prior": 1.5}, "min_prior"),
                         ({"min_freq": -1.0}, "min_freq"), ({"label": ""}, "label"),
                         ({"annotate_ents": False}, "spans_key")):
        with pytest.raises(ValueError, match=name):
            spacy.blank("en").add_pipe("kb_spotter", config=config)


# ------------------------------------------------------------------- KB


def test_without_a_kb_the_error_says_how_to_give_one():
    nlp = spacy.blank("en")
    nlp.add_pipe("kb_spotter")
    with pytest.raises(ValueError, match="set_kb"):
        nlp("New York")
    assert found(nlp("")) == []  # nothing to look up: no KB needed


def test_an_empty_kb_is_an_error():
    nlp = spacy.blank("en")
    nlp.add_pipe("kb_spotter").set_kb(lambda vocab: InMemoryLookupKB(vocab, 2))
    with pytest.raises(ValueError, match="empty"):
        nlp("New York")


def test_a_kb_without_alias_index_is_indexed_in_memory_with_a_warning():
    nlp = spacy.blank("en")
    nlp.add_pipe("kb_spotter").set_kb(lambda vocab: build_kb(vocab, index=False))
    with pytest.warns(KBWarning, match="no alias index"):
        doc = nlp("ST. LOUIS")
    assert found(doc) == ["ST. LOUIS"]
    # Exact matching needs no index, so no warning.
    exact = spacy.blank("en")
    exact.add_pipe("kb_spotter", config={"normalized": False}).set_kb(
        lambda vocab: build_kb(vocab, index=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert found(exact("St. Louis")) == ["St. Louis"]


def test_initialize_takes_a_kb_loader():
    nlp = spacy.blank("en")
    spotter = nlp.add_pipe("kb_spotter")
    spotter.initialize(lambda: [], nlp=nlp, kb_loader=build_kb)
    assert found(nlp("York")) == ["York"]


def test_kb_loader_setting_loads_a_saved_kb_lazily(tmp_path):
    build_kb(spacy.blank("en").vocab).to_disk(tmp_path / "kb")
    nlp = spacy.blank("en")
    loader = {"@misc": "entity_linker.KBFromFile.v1", "kb_path": str(tmp_path / "kb")}
    spotter = nlp.add_pipe("kb_spotter", config={"kb_loader": loader})
    assert found(nlp("New York City")) == ["New York City"]
    assert spotter.kb.is_read_only  # mapped from the file, not copied


# ------------------------------------------------------ with nel, no NER


def _nel_pipeline():
    """sentencizer + kb_spotter + nel (no NER); nel owns the KB, the spotter shares it."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("kb_spotter", config={"label": "LOC"})
    # Normalised candidates, as the spotter matched "Zurich" to "Zürich".
    nel = nlp.add_pipe("nel", config={
        "entity_vector_length": 2, "incl_context": False,
        "get_candidates_batch": {"@misc": "entity_linker.NormalizedCandidates.v1"},
    })
    nel.set_kb(build_kb)
    examples = [Example.from_dict(nlp.make_doc("I love New York."),
                                  {"entities": [(7, 15, "LOC")], "links": {
                                      (7, 15): {"NY": 1.0}}})]
    nlp.initialize(lambda: examples)
    return nlp


def test_spotter_and_nel_link_raw_text_without_ner():
    nlp = _nel_pipeline()
    doc = nlp("They flew from New York City to York and Zurich.")
    assert [(ent.text, ent.label_, ent.kb_id_) for ent in doc.ents] == [
        ("New York City", "LOC", "NYC"), ("York", "LOC", "YK"), ("Zurich", "LOC", "ZRH")
    ]
    assert nlp.get_pipe("kb_spotter").kb is nlp.get_pipe("nel").kb


def test_spotter_follows_the_nel_kb_when_it_changes():
    nlp = _nel_pipeline()

    def only_reading(vocab):
        kb = InMemoryLookupKB(vocab, entity_vector_length=2)
        kb.add_entity("RDG", 1.0, [1.0, 0.0])
        kb.add_alias("Reading", ["RDG"], [1.0])
        return kb

    nlp.get_pipe("nel").set_kb(only_reading)
    with pytest.warns(KBWarning):  # the new KB has no alias index yet
        doc = nlp("From York to Reading.")
    assert [(ent.text, ent.kb_id_) for ent in doc.ents] == [("Reading", "RDG")]


def test_spotter_scores_unlabelled_spans():
    nlp = make_nlp(label="LOC")
    doc = nlp.make_doc("From York to Reading.")
    gold = Example.from_dict(doc, {"entities": [(5, 9, "GPE")]})
    scores = nlp.evaluate([gold])
    assert scores["spotter_p"] == 0.5 and scores["spotter_r"] == 1.0


# -------------------------------------------------------- serialization


def test_round_trip_with_a_kb_set_in_code(tmp_path):
    nlp = make_nlp(min_freq=100, label="PLACE")
    nlp.to_disk(tmp_path / "pipeline")
    assert (tmp_path / "pipeline" / "kb_spotter" / "kb" / "kb.bin").exists()
    loaded = spacy.load(tmp_path / "pipeline")
    text = "From York to Kansas City and Lavalle."
    assert [(e.text, e.label_) for e in loaded(text).ents] == [
        (e.text, e.label_) for e in nlp(text).ents
    ]
    assert loaded.get_pipe("kb_spotter").kb.is_read_only  # memory-mapped


def test_round_trip_shares_nels_kb_without_copying_it(tmp_path):
    nlp = _nel_pipeline()
    nlp.to_disk(tmp_path / "pipeline")
    assert not (tmp_path / "pipeline" / "kb_spotter" / "kb").exists()
    loaded = spacy.load(tmp_path / "pipeline")
    text = "They flew from New York City to York."
    assert [(e.text, e.kb_id_) for e in loaded(text).ents] == [
        (e.text, e.kb_id_) for e in nlp(text).ents
    ]


def test_round_trip_with_the_kb_loader_setting(tmp_path):
    build_kb(spacy.blank("en").vocab).to_disk(tmp_path / "kb")
    nlp = spacy.blank("en")
    loader = {"@misc": "entity_linker.KBFromFile.v1", "kb_path": str(tmp_path / "kb")}
    nlp.add_pipe("kb_spotter", config={"kb_loader": loader, "exclude": ["York"]})
    nlp.to_disk(tmp_path / "pipeline")
    assert not (tmp_path / "pipeline" / "kb_spotter" / "kb").exists()
    loaded = spacy.load(tmp_path / "pipeline")
    assert found(loaded("York and New York.")) == ["New York"]


def test_to_bytes_round_trip_keeps_settings_and_kb():
    nlp = make_nlp(min_prior=0.1)
    data = nlp.get_pipe("kb_spotter").to_bytes()
    other = spacy.blank("en")
    spotter = other.add_pipe("kb_spotter", config={"min_prior": 0.1})
    spotter.from_bytes(data)
    assert isinstance(spotter, KBSpotter)
    assert found(other("From Lavalle to Reading.")) == ["Reading"]

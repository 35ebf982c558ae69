"""The alias index: normalisation, normalised lookup, and trigram search
(checked against a brute-force cosine over every key)."""

import math
import unicodedata

import numpy
import pytest
from entity_linker.kb.hashing import hash_string
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entity_linker import InMemoryLookupKB
from entity_linker.errors import KBError, KBWarning
from entity_linker.kb.normalize import DEFAULT_EXPANSIONS, AliasNormalizer


@pytest.mark.parametrize(
    "text,expected",
    [
        ("St. Louis", "saint louis"),
        ("SAINT-LOUIS", "saint louis"),
        ("Zürich", "zurich"),
        ("Straße", "strasse"),
        ("U.S.", "us"),
        ("O'Fallon", "ofallon"),
        ("Mt. Hood", "mount hood"),
        ("  New   York ", "new york"),
        ("ＰＡＲＩＳ", "paris"),  # full-width letters (NFKC)
        ("Ft.Worth", "ftworth"),  # a period joins: no word to expand
        ("São Paulo", "sao paulo"),
        ("...", ""),
        ("", ""),
    ],
)
def test_normalizer_folds_case_accents_punctuation_and_expands_words(text, expected):
    assert AliasNormalizer()(text) == expected


def test_normalizer_expansions_are_configurable_and_checked():
    assert AliasNormalizer({})("St. Louis") == "st louis"
    assert AliasNormalizer({"Rd.": "Road"})("Abbey Rd") == "abbey road"
    with pytest.raises(KBError, match="single word"):
        AliasNormalizer({"new york": "nyc"})
    with pytest.raises(KBError, match="must be a dict"):
        AliasNormalizer(["st"])
    with pytest.raises(KBError, match="Expected str"):
        AliasNormalizer()(42)
    assert AliasNormalizer.from_dict(AliasNormalizer().to_dict()) == AliasNormalizer()
    with pytest.raises(KBError, match="version"):
        AliasNormalizer.from_dict({"version": 99})


def _kb_with(vocab, aliases, **index_options):
    """A KB whose alias i has the single entity Ei (prior 1) unless given."""
    kb = InMemoryLookupKB(vocab, 2)
    for i in range(len(aliases)):
        kb.add_entity(f"E{i}", 1.0, [1.0, float(i)])
    for i, alias in enumerate(aliases):
        kb.add_alias(alias, [f"E{i}"], [1.0])
    kb.build_alias_index(**index_options)
    return kb


# Aliases and mentions from a small alphabet, so trigrams collide often.
TEXTS = st.text(alphabet="abcAB .'-é", min_size=0, max_size=9)


SLOW_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


@settings(max_examples=150, deadline=None, suppress_health_check=SLOW_OK)
@given(texts=st.lists(st.text(max_size=12), max_size=20))
def test_c_folding_of_ascii_texts_equals_the_python_normaliser(vocab, texts):
    kb = _kb_with(vocab, ["x"])
    expected = [hash_string(AliasNormalizer()(text)) for text in texts]
    exact = numpy.zeros(len(texts), dtype=numpy.uint64)
    assert kb.alias_index.key_hashes(texts, exact).tolist() == expected
    assert exact.tolist() == [hash_string(text) for text in texts]


def _trigrams(form):
    padded = f" {form} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)} if form else set()


def _brute_force(index, aliases, query, min_score):
    """{key row: cosine} of every key scoring >= min_score (minus rounding)."""
    rows = index.key_rows(aliases).tolist()
    forms = {row: index.normalize(alias) for row, alias in zip(rows, aliases) if row >= 0}
    grams = _trigrams(index.normalize(query))
    scores = {}
    for row, form in forms.items():
        keys = _trigrams(form)
        if grams and keys:
            scores[row] = len(grams & keys) / math.sqrt(len(grams) * len(keys))
    return scores


@settings(max_examples=200, deadline=None, suppress_health_check=SLOW_OK)
@given(
    aliases=st.lists(TEXTS.filter(bool), min_size=1, max_size=25, unique=True),
    queries=st.lists(TEXTS, min_size=1, max_size=5),
    min_score=st.sampled_from([0.2, 0.5, 0.7, 0.9, 1.0]),
)
def test_trigram_search_finds_exactly_the_keys_a_brute_force_cosine_finds(
    vocab, aliases, queries, min_score
):
    kb = _kb_with(vocab, aliases)
    index = kb.alias_index
    offsets, keys, scores = index.search(queries, min_score, max_keys=1000)
    for i, query in enumerate(queries):
        found = dict(zip(keys[offsets[i] : offsets[i + 1]].tolist(),
                         scores[offsets[i] : offsets[i + 1]].tolist()))
        expected = _brute_force(index, aliases, query, min_score)
        must = {row for row, score in expected.items() if score >= min_score + 1e-6}
        may = {row for row, score in expected.items() if score >= min_score - 1e-6}
        assert must <= set(found) <= may, (query, found, expected)
        for row, score in found.items():
            assert score == pytest.approx(expected[row], abs=1e-6)
        listed = scores[offsets[i] : offsets[i + 1]]
        assert numpy.all(numpy.diff(listed) <= 0), "results are best first"


def test_search_keeps_the_best_max_keys_and_ranks_a_misspelling_first(vocab):
    kb = _kb_with(vocab, ["Pittsburgh", "Pittsfield", "Petersburg", "Paris"])
    index = kb.alias_index
    offsets, keys, scores = index.search(["Pittsburg"], 0.3, max_keys=2)
    assert offsets.tolist() == [0, 2]
    assert keys[0] == index.key_rows(["Pittsburgh"])[0]
    assert scores[0] > scores[1] >= 0.3


@pytest.mark.parametrize("query", ["", "...", "x" * 10_000, "\u0301\u0301"])
def test_search_and_lookup_of_empty_or_very_long_mentions_find_nothing(vocab, query):
    kb = _kb_with(vocab, ["Paris", "x" * 20])
    index = kb.alias_index
    assert index.key_rows([query]).tolist() == [-1]
    offsets, keys, _ = index.search([query], 0.5, 5)
    assert offsets.tolist() == [0, 0] and len(keys) == 0


def test_normalised_key_merges_candidates_with_their_best_prior(vocab):
    kb = InMemoryLookupKB(vocab, 1)
    for entity in ("Q1", "Q2", "Q3"):
        kb.add_entity(entity, 1.0, [1.0])
    kb.add_alias("St. Louis", ["Q1", "Q2"], [0.7, 0.2])
    kb.add_alias("Saint Louis", ["Q2", "Q3"], [0.6, 0.3])
    index = kb.build_alias_index()
    offsets, entity_rows, priors, alias_rows = index.gather(index.key_rows(["ST LOUIS"]))
    assert [kb.get_entity_id(int(r)) for r in entity_rows] == ["Q1", "Q2", "Q3"]
    assert priors.tolist() == pytest.approx([0.7, 0.6, 0.3])
    names = kb.get_alias_strings()
    assert [names[a] for a in alias_rows] == ["St. Louis", "Saint Louis", "Saint Louis"]


def test_aliases_that_differ_only_in_case_or_accents_share_a_key(vocab):
    kb = _kb_with(vocab, ["Zürich", "ZURICH", "zurich", "Zurich!"])
    rows = kb.alias_index.key_rows(["Zürich", "ZURICH", "zurich", "Zurich!", "Zurich"])
    assert len(set(rows.tolist())) == 1 and rows[0] >= 0
    assert kb.alias_index.n_keys == 1


def test_index_without_fuzzy_part_refuses_search_with_a_clear_error(vocab):
    kb = _kb_with(vocab, ["Paris"], fuzzy=False)
    assert kb.alias_index.n_grams == 0
    assert kb.alias_index.key_rows(["paris"])[0] >= 0
    with pytest.raises(KBError, match="without the trigram index"):
        kb.alias_index.search(["Paris"])


@pytest.mark.parametrize("min_score,max_keys", [(0.0, 5), (1.5, 5), (0.5, 0)])
def test_search_rejects_bad_settings(vocab, min_score, max_keys):
    kb = _kb_with(vocab, ["Paris"])
    with pytest.raises(KBError):
        kb.alias_index.search(["Paris"], min_score, max_keys)


def test_changing_aliases_drops_the_index_with_a_warning(vocab):
    kb = _kb_with(vocab, ["Paris", "Lyon"])
    with pytest.warns(KBWarning, match="build_alias_index"):
        kb.add_alias("Nice", ["E0"], [1.0])
    assert kb.alias_index is None
    kb.build_alias_index()
    with pytest.warns(KBWarning):
        kb.append_alias("Nice", "E1", 0.0)
    assert kb.alias_index is None


def test_a_bad_alias_add_keeps_the_index(vocab):
    kb = _kb_with(vocab, ["Paris"])
    with pytest.raises(KBError):
        kb.add_alias("Nice", ["unknown entity"], [1.0])
    assert kb.alias_index is not None


def test_index_survives_copy_and_a_mapped_round_trip(vocab, tmp_path):
    kb = _kb_with(vocab, ["St. Louis", "Pittsburgh", "Zürich"], normalizer=AliasNormalizer())
    kb.to_disk(tmp_path)
    mapped = InMemoryLookupKB(vocab, 1).from_disk(tmp_path)
    for other in (mapped, mapped.copy(), kb.copy()):
        for texts in (["saint louis", "ZURICH", "nope"],):
            assert (other.alias_index.key_rows(texts).tolist()
                    == kb.alias_index.key_rows(texts).tolist())
        got = other.alias_index.search(["Pitsburgh"], 0.5, 3)
        want = kb.alias_index.search(["Pitsburgh"], 0.5, 3)
        for a, b in zip(got, want):
            assert a.tolist() == b.tolist()


def test_index_on_a_mapped_kb_is_built_in_memory_and_saved_by_to_disk(vocab, tmp_path):
    kb = InMemoryLookupKB(vocab, 1)
    kb.add_entity("Q1", 1.0, [1.0])
    kb.add_alias("St. Louis", ["Q1"], [1.0])
    kb.to_disk(tmp_path / "plain")
    mapped = InMemoryLookupKB(vocab, 1).from_disk(tmp_path / "plain")
    assert mapped.alias_index is None
    mapped.build_alias_index()
    assert mapped.is_read_only
    mapped.to_disk(tmp_path / "indexed")
    again = InMemoryLookupKB(vocab, 1).from_disk(tmp_path / "indexed")
    assert again.alias_index.key_rows(["saint louis"])[0] == 0


def test_default_expansions_are_single_normalised_words():
    for word, replacement in DEFAULT_EXPANSIONS.items():
        assert word == unicodedata.normalize("NFKC", word).casefold() and " " not in word
        assert replacement.isalpha()

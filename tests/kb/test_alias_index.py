"""The alias index: normalisation, normalised lookup, and trigram search
(checked against a brute-force cosine over every key)."""

import math
import unicodedata

import numpy
import pytest
from entity_linker.kb.hashing import hash_string
from entity_linker.kb.text_fold import _normalize_many
from entity_linker.kb.trigrams import _dense_ids, counting_sort, trigram_keys
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


# Words that expansions match (non-ASCII ones too), marks, ligatures, separators.
PIECES = st.sampled_from(["the", "St", "東京", "Δ", "ß", "e\u0301", "ﬁ", "Ⅻ", "x", " ", ".", "-",
                          "’", "\u0900"])
EXPANSIONS = {"東京": "tokyo", "δ": "delta", "the": "...", "st": "saint louis"}


@settings(max_examples=200, deadline=None, suppress_health_check=SLOW_OK)
@given(texts=st.lists(st.one_of(st.text(max_size=12), st.lists(PIECES, max_size=8).map("".join)),
                      max_size=20))
def test_c_normalisation_of_any_text_equals_the_python_normaliser(vocab, texts):
    for normalizer in (AliasNormalizer(), AliasNormalizer(EXPANSIONS), AliasNormalizer({})):
        expected = [normalizer(text) for text in texts]
        assert _normalize_many(normalizer, texts) == expected
        kb = _kb_with(vocab, ["x"], normalizer=normalizer)
        assert (kb.alias_index.key_hashes(texts).tolist()
                == [hash_string(form) for form in expected])


def test_c_folding_keeps_the_space_of_a_word_expanded_to_nothing(vocab):
    normalizer = AliasNormalizer({"the": "...", "st": "saint"})
    kb = _kb_with(vocab, ["x"], normalizer=normalizer)
    texts = ["the Hague", "Hague the", "a the b", "the", "St the St"]
    assert [normalizer(text) for text in texts][:2] == [" hague", "hague "]
    assert (kb.alias_index.key_hashes(texts).tolist()
            == [hash_string(normalizer(text)) for text in texts])


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


def _trigram_key(a, b, c):
    """docs/FORMAT.md's trigram key, in Python integers."""
    mask = (1 << 64) - 1
    z = (ord(a) << 42) | (ord(b) << 21) | ord(c)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    z ^= z >> 31
    return z + 2 if z < 2 else z


def _reference_trigram_keys(text):
    padded = f" {text} "
    return sorted({_trigram_key(*padded[i : i + 3]) for i in range(len(padded) - 2)}
                  if text else ())


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.one_of(TEXTS, st.text(max_size=30)), max_size=12))
def test_trigram_keys_are_each_texts_distinct_trigram_keys_ascending(texts):
    offsets, keys = trigram_keys(texts)
    assert offsets.dtype == numpy.int64 and keys.dtype == numpy.uint64
    assert len(offsets) == len(texts) + 1 and offsets[-1] == len(keys)
    for i, text in enumerate(texts):
        assert keys[offsets[i] : offsets[i + 1]].tolist() == _reference_trigram_keys(text)


def test_trigram_keys_of_long_texts_and_of_nothing():
    text = "abcdefghij" * 5 + "abc"  # more trigrams than the insertion sort handles
    offsets, keys = trigram_keys([text, "", "😀x"])
    assert keys[: offsets[1]].tolist() == _reference_trigram_keys(text)
    assert offsets.tolist()[1:3] == [offsets[1], offsets[1]]
    assert keys[offsets[2] :].tolist() == _reference_trigram_keys("😀x")
    offsets, keys = trigram_keys([])
    assert offsets.tolist() == [0] and len(keys) == 0
    with pytest.raises(KBError, match="Expected str"):
        trigram_keys(["a", 1])


@pytest.mark.parametrize("values,n_values", [
    ([], 0), ([], 5), ([0], 1), ([3], 4), ([2, 2, 2], 3), ([1, 0, 1, 0, 2], 3),
])
def test_counting_sort_edge_cases_equal_a_stable_argsort(values, n_values):
    order = counting_sort(numpy.asarray(values, dtype=numpy.int64), n_values)
    assert order.dtype == numpy.int64
    assert order.tolist() == numpy.argsort(values, kind="stable").tolist()


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.integers(0, 20), max_size=200))
def test_counting_sort_equals_numpy_stable_argsort(values):
    n_values = max(values, default=-1) + 1
    for array in (numpy.asarray(values, dtype=numpy.int64),
                  numpy.asarray(values, dtype=numpy.uint32)):
        assert (counting_sort(array, n_values).tolist()
                == numpy.argsort(array, kind="stable").tolist())


@pytest.mark.parametrize("values,n_values", [([0, 3], 3), ([-1], 2), ([0], 0)])
def test_counting_sort_rejects_values_out_of_range(values, n_values):
    with pytest.raises(KBError, match="outside"):
        counting_sort(numpy.asarray(values, dtype=numpy.int64), n_values)


@pytest.mark.parametrize("n,n_distinct", [(0, 1), (1, 1), (50, 7), (20_000, 3_000)])
def test_dense_ids_number_keys_in_order_of_first_appearance(n, n_distinct):
    # 3,000 distinct keys outgrow the first slot table several times.
    rng = numpy.random.default_rng(n)
    pool = rng.integers(2, 2**64, size=n_distinct, dtype=numpy.uint64)
    keys = pool[rng.integers(0, n_distinct, size=n)]
    ids, distinct = _dense_ids(keys)
    first = {}
    for key in keys.tolist():
        first.setdefault(key, len(first))
    assert distinct.tolist() == list(first)
    assert ids.tolist() == [first[key] for key in keys.tolist()]


@settings(max_examples=100, deadline=None, suppress_health_check=SLOW_OK)
@given(aliases=st.lists(TEXTS.filter(bool), min_size=1, max_size=25, unique=True))
def test_trigram_postings_list_the_keys_holding_each_trigram_in_row_order(vocab, aliases):
    kb = _kb_with(vocab, aliases)
    index = kb.alias_index
    arrays = index.arrays()
    rows = index.key_rows(aliases).tolist()
    key_grams = {}
    for row, alias in zip(rows, aliases):
        if row >= 0:
            key_grams[row] = _reference_trigram_keys(index.normalize(alias))
    assert sorted(key_grams) == list(range(index.n_keys))
    postings = {}
    for row in sorted(key_grams):
        for gram in key_grams[row]:
            postings.setdefault(gram, []).append(row)
    assert arrays["gram_keys"].tolist() == sorted(postings)
    offsets = arrays["gram_offsets"].tolist()
    assert offsets == [0, *numpy.cumsum([len(postings[g]) for g in sorted(postings)]).tolist()]
    assert arrays["gram_postings"].tolist() == [r for g in sorted(postings) for r in postings[g]]
    counts = [len(key_grams[row]) for row in range(index.n_keys)]
    assert arrays["norm_gram_counts"].tolist() == counts
    assert counts == sorted(counts)  # key rows ascend by trigram count

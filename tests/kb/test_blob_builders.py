"""builders.from_blobs / set_name_blob / set_relation_rows / set_alias_index: the
array entry points give the same KB file as the list ones."""

import numpy
import pytest
from spacy.vocab import Vocab

from entity_linker.errors import EmptyStringError, KBTypeError, ProbabilityError
from entity_linker.kb import InMemoryLookupKB, builders
from entity_linker.wikidata.alias_index import build_index_arrays


def _blob(strings):
    encoded = [s.encode("utf8") for s in strings]
    offsets = numpy.zeros(len(encoded) + 1, dtype=numpy.int64)
    numpy.cumsum([len(b) for b in encoded], out=offsets[1:])
    return offsets, numpy.frombuffer(b"".join(encoded), dtype=numpy.uint8)


IDS = ["Q1", "Q2", "Q3", "Qé4"]
ALIASES = ["Paris", "PARIS", "Saint-Louis", "St. Louis", "Zürich", "...", "Paris, France"]
OFFSETS = [0, 2, 3, 4, 5, 6, 6, 7]
CANDS = [0, 1, 1, 2, 2, 3, 0]
PRIORS = [0.6, 0.4, 1.0, 0.5, 1.0, 1.0, 0.9]


def _arrays():
    vectors = numpy.arange(len(IDS) * 3, dtype=numpy.float32).reshape(len(IDS), 3)
    freqs = numpy.array([3, 2, 1, 7], dtype=numpy.float32)
    return freqs, vectors


def _list_kb():
    freqs, vectors = _arrays()
    kb = InMemoryLookupKB.from_arrays(Vocab(), IDS, freqs, vectors, ALIASES, OFFSETS,
                                      CANDS, PRIORS)
    kb.set_names(IDS, ["Paris", "", "Saint Louis", "Zürich"])
    kb.set_relations(["Q1", "Q2", "Q1"], ["Q2", "Q3", "Q3"])
    kb.build_alias_index()
    return kb


def _blob_kb(chunk=3):
    freqs, vectors = _arrays()
    vectors = vectors.copy()  # owns its data: adopted as the KB's storage
    kb = builders.from_blobs(InMemoryLookupKB, Vocab(), *_blob(IDS), freqs, vectors,
                             *_blob(ALIASES), OFFSETS, CANDS, PRIORS)
    assert numpy.shares_memory(kb.vectors, vectors)
    builders.set_name_blob(kb, *_blob(["Paris", "", "Saint Louis", "Zürich"]))
    builders.set_relation_rows(kb, [0, 1, 0], [1, 2, 2])
    arrays = build_index_arrays(*_blob(ALIASES), OFFSETS, CANDS, PRIORS, chunk=chunk)
    from entity_linker.kb.normalize import AliasNormalizer

    builders.set_alias_index(kb, arrays, AliasNormalizer(), True)
    return kb


@pytest.mark.parametrize("chunk", [1, 3, 1 << 16])
def test_blob_kb_is_the_list_kb(chunk):
    expected = _list_kb()
    kb = _blob_kb(chunk)
    assert kb.to_bytes() == expected.to_bytes()
    assert kb.get_name("Q3") == "Saint Louis"
    assert [c.entity_ for c in kb.get_alias_candidates("Zürich")] == ["Qé4"]


def test_index_arrays_match_build_alias_index_on_many_aliases():
    rng = numpy.random.default_rng(0)
    words = ["saint", "St.", "louis", "Paris", "new", "York", "Zürich", "a", "-", "the"]
    aliases = sorted({" ".join(rng.choice(words, rng.integers(1, 4))) for _ in range(400)})
    n = 50
    counts = rng.integers(0, 4, len(aliases))
    offsets = numpy.concatenate([[0], numpy.cumsum(counts)])
    cands = numpy.concatenate([rng.choice(n, c, replace=False) for c in counts])
    priors = numpy.concatenate([numpy.full(c, 1.0 / max(c, 1)) for c in counts]).astype(
        numpy.float32)
    ids = [f"Q{i}" for i in range(n)]
    kb = InMemoryLookupKB.from_arrays(Vocab(), ids, numpy.ones(n),
                                      numpy.zeros((n, 2)), aliases, offsets, cands, priors)
    for fuzzy in (True, False):
        expected = kb.build_alias_index(fuzzy=fuzzy).arrays()
        got = build_index_arrays(*_blob(aliases), offsets, cands, priors, fuzzy=fuzzy,
                                 chunk=37)
        assert sorted(got) == sorted(expected)
        for name in expected:
            assert got[name].dtype == expected[name].dtype, name
            assert numpy.array_equal(got[name], expected[name]), name


def test_from_blobs_checks():
    freqs, vectors = _arrays()
    ids = _blob(IDS)
    with pytest.raises(EmptyStringError):
        builders.from_blobs(InMemoryLookupKB, Vocab(), *_blob(["Q1", "", "Q3", "Q4"]), freqs,
                            vectors, *_blob(ALIASES), OFFSETS, CANDS, PRIORS)
    with pytest.raises(KBTypeError):
        builders.from_blobs(InMemoryLookupKB, Vocab(), ids[0],
                            numpy.frombuffer(b"Q1Q2Q3\xff4", dtype=numpy.uint8), freqs,
                            vectors, *_blob(ALIASES), OFFSETS, CANDS, PRIORS)
    with pytest.raises(ProbabilityError):
        builders.from_blobs(InMemoryLookupKB, Vocab(), *ids, freqs, vectors,
                            *_blob(ALIASES), OFFSETS, CANDS, [0.6, 0.6, 1, 1, 1, 1, 1])


def test_from_blobs_duplicates_take_the_list_path():
    freqs, vectors = _arrays()
    with pytest.warns(Warning):
        kb = builders.from_blobs(InMemoryLookupKB, Vocab(), *_blob(["Q1", "Q2", "Q1", "Q4"]),
                                 freqs, vectors, *_blob(["a", "b"]), [0, 1, 2], [0, 2],
                                 [1.0, 1.0])
    assert kb.get_size_entities() == 3

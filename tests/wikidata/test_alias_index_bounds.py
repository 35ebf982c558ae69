"""The chunked alias index numbers aliases, keys and entities with int32: the
same sections as ``build_alias_index``, and a clear error past int32."""

import numpy
import pytest
from spacy.vocab import Vocab

from entity_linker.errors import KBError
from entity_linker.kb import InMemoryLookupKB
from entity_linker.wikidata import alias_index

ALIASES = ["Paris", "PARIS", "paris", "Saint-Louis", "St. Louis", "", "Zürich", "zurich"]


def _blob(strings):
    encoded = [s.encode("utf8") for s in strings]
    offsets = numpy.zeros(len(encoded) + 1, dtype=numpy.uint64)
    numpy.cumsum([len(b) for b in encoded], out=offsets[1:])
    return offsets, numpy.frombuffer(b"".join(encoded), dtype=numpy.uint8)


def _expected(aliases, offsets, cands, priors):
    n = max(cands) + 1
    kb = InMemoryLookupKB.from_arrays(
        Vocab(), [f"Q{i}" for i in range(n)], numpy.ones(n), numpy.zeros((n, 2)), aliases,
        offsets, cands, priors)
    return kb.build_alias_index().arrays()


@pytest.mark.parametrize("chunk", [1, 2, 5, 1 << 16])
def test_same_sections_as_build_alias_index(chunk):
    aliases = [a for a in ALIASES if a]
    offsets = [0, 2, 3, 4, 5, 6, 8, 9]
    cands = [0, 1, 1, 2, 2, 3, 3, 1, 1]
    priors = [0.6, 0.4, 1.0, 0.5, 1.0, 1.0, 0.5, 0.5, 1.0]
    expected = _expected(aliases, offsets, cands, priors)
    # the KB's dtypes: uint64 string offsets (read in place), uint32 candidate rows
    got = alias_index.build_index_arrays(*_blob(aliases), numpy.array(offsets, numpy.uint64),
                                         numpy.array(cands, numpy.uint32),
                                         numpy.array(priors, numpy.float32), chunk=chunk)
    assert sorted(got) == sorted(expected)
    for name in expected:
        assert got[name].dtype == expected[name].dtype, name
        assert numpy.array_equal(got[name], expected[name]), name


def test_keys_are_int32_and_skip_empty_forms():
    offsets, blob = _blob(ALIASES)
    forms = alias_index._Forms(offsets.view(numpy.int64), blob,
                               alias_index.AliasNormalizer())
    key_of_alias, key_alias, hashes = alias_index._keys(forms, len(ALIASES), 3)
    assert key_of_alias.dtype == numpy.int32 and key_alias.dtype == numpy.int32
    # forms: paris x3, saint louis x2, (none), zurich x2: keys by first occurrence
    assert key_of_alias.tolist() == [0, 0, 0, 1, 1, -1, 2, 2]
    assert key_alias.tolist() == [0, 3, 6]
    assert hashes.tolist() == alias_index.hash_strings(["paris", "saint louis", "zurich"]).tolist()


def test_int32_bounds_raise_a_clear_error(monkeypatch):
    offsets, blob = _blob(ALIASES[:3])
    with pytest.raises(KBError, match="candidate entity row is out of the int32 range"):
        alias_index.build_index_arrays(offsets, blob, [0, 1, 2, 3],
                                       numpy.array([0, 2**31, 1], dtype=numpy.int64),
                                       [1.0, 1.0, 1.0])
    monkeypatch.setattr(alias_index, "INT32_MAX", 2)
    with pytest.raises(KBError, match=r"Too many aliases for the chunked alias index: 3 "
                                      r"\(it numbers them with 32-bit integers, at most 2\)"):
        alias_index.build_index_arrays(offsets, blob, [0, 1, 2, 3], [0, 1, 2],
                                       [1.0, 1.0, 1.0])
    with pytest.raises(KBError, match="Too many relations"):
        alias_index.check_int32(3, "relations")
    alias_index.check_int32(2, "relations")  # at the bound: fine

"""The KB's alias index built in chunks from the alias blob.

``InMemoryLookupKB.build_alias_index`` holds every alias and every normalised
form as a Python str, a dict of the forms, and three int64 arrays with one
item per trigram of every key: ~2.2 GB at 2.5M aliases. This builds the same
sections (byte for byte) from the UTF-8 blob of the aliases, a chunk of
``CHUNK`` strings at a time: forms are kept only as hashes (the key texts are
normalised again where a pass needs them), the distinct trigrams are merged
chunk by chunk, and the posting lists are filled by a counting sort over the
keys in their final order. What stays is the output (the postings) plus a few
arrays of one item per alias or key.
"""

from typing import Dict, List, Optional

import numpy

from ..errors import KBError
from ..kb.alias_index import _no_trigrams, norm_sections
from ..kb.hashing import hash_strings
from ..kb.normalize import AliasNormalizer
from ..kb.tables import build_slots
from ..kb.text_fold import _normalize_many
from ..kb.trigrams import _trigram_arrays, counting_sort, trigram_keys

CHUNK = 1 << 16


class _Forms:
    """Normalised forms of aliases of a blob, decoded and folded on demand."""

    def __init__(self, offsets: numpy.ndarray, blob: numpy.ndarray,
                 normalizer: AliasNormalizer) -> None:
        self.offsets = offsets
        self.blob = blob
        self.normalizer = normalizer

    def range(self, start: int, stop: int) -> List[str]:
        bounds = self.offsets[start:stop + 1]
        base = int(bounds[0])
        data = self.blob[base:int(bounds[-1])].tobytes()
        bounds = (bounds - base).tolist()
        texts = [data[bounds[i]:bounds[i + 1]].decode("utf8") for i in range(len(bounds) - 1)]
        return _normalize_many(self.normalizer, texts)

    def rows(self, rows: numpy.ndarray) -> List[str]:
        starts, ends = self.offsets[rows].tolist(), self.offsets[rows + 1].tolist()
        blob = self.blob
        texts = [blob[s:e].tobytes().decode("utf8") for s, e in zip(starts, ends)]
        return _normalize_many(self.normalizer, texts)


def _keys(forms: _Forms, m: int, chunk: int):
    """(key of each alias [-1: empty form], alias holding each key's first
    occurrence, key hashes), keys numbered by first occurrence."""
    hashes = numpy.empty(m, dtype=numpy.uint64)
    lengths = numpy.empty(m, dtype=numpy.int32)
    for start in range(0, m, chunk):
        stop = min(start + chunk, m)
        texts = forms.range(start, stop)
        hashes[start:stop] = hash_strings(texts)
        lengths[start:stop] = [len(t) for t in texts]
    valid = numpy.flatnonzero(lengths > 0)
    unique, first, inverse = numpy.unique(hashes[valid], return_index=True,
                                          return_inverse=True)
    del unique
    by_appearance = numpy.argsort(first, kind="stable")
    rank = numpy.empty(len(first), dtype=numpy.int64)
    rank[by_appearance] = numpy.arange(len(first), dtype=numpy.int64)
    key_of_alias = numpy.full(m, -1, dtype=numpy.int64)
    key_of_alias[valid] = rank[inverse.reshape(-1)]
    key_alias = valid[first[by_appearance]]
    del first, inverse, rank, by_appearance
    # Forms are compared by 64-bit hash; two different forms of one hash would
    # merge their candidates. Their lengths at least must agree.
    if (lengths[valid] != lengths[key_alias[key_of_alias[valid]]]).any():
        raise KBError("Two normalised aliases share a 64-bit hash; cannot index them.")
    return key_of_alias, key_alias, hashes[key_alias]


def _trigram_sections(forms: _Forms, key_alias: numpy.ndarray, chunk: int):
    """(order, sections): the key rows by ascending trigram count (new row r is
    key order[r]) and the trigram sections, as ``_trigram_arrays`` makes them."""
    n_keys = len(key_alias)
    counts = numpy.empty(n_keys, dtype=numpy.int64)
    distinct = numpy.zeros(0, dtype=numpy.uint64)
    for start in range(0, n_keys, chunk):  # pass 1: counts and the distinct trigrams
        stop = min(start + chunk, n_keys)
        offsets, grams = trigram_keys(forms.rows(key_alias[start:stop]))
        counts[start:stop] = numpy.diff(offsets)
        distinct = numpy.union1d(distinct, grams)
    order = counting_sort(counts, int(counts.max()) + 1)
    n_grams = len(distinct)
    per_gram = numpy.zeros(n_grams, dtype=numpy.int64)
    for start in range(0, n_keys, chunk):  # pass 2: the length of each posting list
        _, grams = trigram_keys(forms.rows(key_alias[start:min(start + chunk, n_keys)]))
        per_gram += numpy.bincount(numpy.searchsorted(distinct, grams), minlength=n_grams)
    posting_offsets = numpy.zeros(n_grams + 1, dtype=numpy.uint64)
    numpy.cumsum(per_gram, out=posting_offsets[1:])
    del per_gram
    postings = numpy.empty(int(posting_offsets[-1]), dtype=numpy.uint32)
    cursor = posting_offsets[:-1].astype(numpy.int64)
    for start in range(0, n_keys, chunk):  # pass 3: keys in their final order
        stop = min(start + chunk, n_keys)
        offsets, grams = trigram_keys(forms.rows(key_alias[order[start:stop]]))
        rows = numpy.searchsorted(distinct, grams)
        new_rows = numpy.repeat(numpy.arange(start, stop, dtype=numpy.int64),
                                numpy.diff(offsets))
        by_gram = numpy.argsort(rows, kind="stable")  # key rows stay ascending per list
        rows, new_rows = rows[by_gram], new_rows[by_gram]
        firsts = numpy.ones(len(rows), dtype=bool)
        firsts[1:] = rows[1:] != rows[:-1]
        group_start = numpy.maximum.accumulate(
            numpy.where(firsts, numpy.arange(len(rows)), 0)) if len(rows) else rows
        postings[cursor[rows] + numpy.arange(len(rows)) - group_start] = new_rows
        cursor += numpy.bincount(rows, minlength=n_grams)
    if not numpy.array_equal(cursor, posting_offsets[1:].astype(numpy.int64)):
        raise KBError("The trigram lists of the alias index are inconsistent.")
    sections = {
        "norm_gram_counts": counts[order].astype(numpy.uint32),
        "gram_keys": distinct,
        "gram_offsets": posting_offsets,
        "gram_postings": postings,
        "gram_slots": build_slots(distinct),
    }
    return order, sections


def build_index_arrays(string_offsets, blob, alias_offsets, candidate_rows,
                       candidate_priors, normalizer: Optional[AliasNormalizer] = None,
                       fuzzy: bool = True, chunk: int = CHUNK) -> Dict[str, numpy.ndarray]:
    """The alias index sections of aliases given as UTF-8 blob + offsets (alias
    a is ``blob[string_offsets[a]:string_offsets[a + 1]]`` and owns candidate
    slots ``alias_offsets[a]:alias_offsets[a + 1]``): the same arrays as
    ``AliasIndex.build`` (``builders.set_alias_index`` gives them to a KB).
    """
    normalizer = normalizer if normalizer is not None else AliasNormalizer()
    string_offsets = numpy.asarray(string_offsets, dtype=numpy.int64)
    blob = numpy.asarray(blob, dtype=numpy.uint8)
    m = len(string_offsets) - 1
    forms = _Forms(string_offsets, blob, normalizer)
    key_of_alias, key_alias, hashes = _keys(forms, m, chunk)
    n_keys = len(key_alias)
    if fuzzy and n_keys:
        order, trigram_sections = _trigram_sections(forms, key_alias, chunk)
        new_row = numpy.empty(n_keys, dtype=numpy.int64)
        new_row[order] = numpy.arange(n_keys, dtype=numpy.int64)
        key_of_alias = numpy.where(key_of_alias >= 0, new_row[key_of_alias], -1)
        hashes = hashes[order]
        del new_row, order
    elif fuzzy:
        trigram_sections = _trigram_arrays(numpy.zeros(1, dtype=numpy.int64),
                                           numpy.zeros(0, dtype=numpy.uint64),
                                           numpy.zeros(0, dtype=numpy.int64))
    else:
        trigram_sections = _no_trigrams()
    # One (key, entity) slot per pair with its best prior and that prior's alias
    # (AliasIndex.build's two sorts, (key, entity) packed in one int64).
    counts = numpy.diff(numpy.asarray(alias_offsets, dtype=numpy.int64))
    slot_key = numpy.repeat(key_of_alias, counts)
    slot_alias = numpy.repeat(numpy.arange(m, dtype=numpy.int64), counts)
    used = slot_key >= 0
    slot_key, slot_alias = slot_key[used], slot_alias[used]
    slot_entity = numpy.asarray(candidate_rows, dtype=numpy.int64)[used]
    slot_prior = numpy.asarray(candidate_priors, dtype=numpy.float32)[used]
    del used, counts, key_of_alias
    pair = slot_key << 32 | slot_entity
    order = numpy.lexsort((slot_alias, -slot_prior, pair))
    pair, slot_alias, slot_prior = pair[order], slot_alias[order], slot_prior[order]
    first = numpy.ones(len(pair), dtype=bool)
    first[1:] = pair[1:] != pair[:-1]
    pair, slot_alias, slot_prior = pair[first], slot_alias[first], slot_prior[first]
    del order, first
    slot_key, slot_entity = pair >> 32, pair & 0xFFFFFFFF
    del pair
    arrays = norm_sections(hashes, slot_key, slot_entity, slot_prior, slot_alias,
                           normalizer, fuzzy)
    arrays.update(trigram_sections)
    return arrays

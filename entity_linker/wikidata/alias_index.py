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
from .memory import release_memory

CHUNK = 1 << 16
INT32_MAX = 2**31 - 1


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


def check_int32(count: int, what: str) -> None:
    """Raise a KBError when ``count`` items cannot be numbered by int32."""
    if count > INT32_MAX:
        raise KBError(f"Too many {what} for the chunked alias index: {count:,} (it numbers "
                      f"them with 32-bit integers, at most {INT32_MAX:,}).")


def _keys(forms: _Forms, m: int, chunk: int):
    """(key of each alias [-1: empty form], alias holding each key's first
    occurrence, key hashes), keys numbered by first occurrence; int32 numbers."""
    hashes = numpy.empty(m, dtype=numpy.uint64)
    lengths = numpy.empty(m, dtype=numpy.int32)
    for start in range(0, m, chunk):
        stop = min(start + chunk, m)
        texts = forms.range(start, stop)
        hashes[start:stop] = hash_strings(texts)
        lengths[start:stop] = [len(t) for t in texts]
    valid = numpy.flatnonzero(lengths > 0).astype(numpy.int32)
    hashes = hashes[valid]
    # numpy.unique(hashes, return_index=True, return_inverse=True) with fewer
    # arrays of one item per alias: a stable sort puts each form's first
    # occurrence first in its run
    by_hash = numpy.argsort(hashes, kind="stable")
    sorted_hashes = hashes[by_hash]
    del hashes
    starts = numpy.ones(len(sorted_hashes), dtype=bool)
    starts[1:] = sorted_hashes[1:] != sorted_hashes[:-1]
    unique = sorted_hashes[starts]
    del sorted_hashes
    first = by_hash[starts]  # position in valid of each form's first alias
    inverse = numpy.empty(len(valid), dtype=numpy.int32)
    inverse[by_hash] = numpy.cumsum(starts, dtype=numpy.int32) - 1
    del by_hash, starts
    by_appearance = numpy.argsort(first, kind="stable")
    rank = numpy.empty(len(first), dtype=numpy.int32)
    rank[by_appearance] = numpy.arange(len(first), dtype=numpy.int32)
    key_of_alias = numpy.full(m, -1, dtype=numpy.int32)
    key_of_alias[valid] = rank[inverse]
    del inverse, rank
    key_alias = valid[first[by_appearance]]
    key_hashes = unique[by_appearance]
    del first, by_appearance, unique
    # Forms are compared by 64-bit hash; two different forms of one hash would
    # merge their candidates. Their lengths at least must agree.
    if (lengths[valid] != lengths[key_alias[key_of_alias[valid]]]).any():
        raise KBError("Two normalised aliases share a 64-bit hash; cannot index them.")
    return key_of_alias, key_alias, key_hashes


def _trigram_sections(forms: _Forms, key_alias: numpy.ndarray, chunk: int):
    """(order, sections): the key rows by ascending trigram count (new row r is
    key order[r]) and the trigram sections, as ``_trigram_arrays`` makes them."""
    n_keys = len(key_alias)
    counts = numpy.empty(n_keys, dtype=numpy.int32)
    distinct = numpy.zeros(0, dtype=numpy.uint64)
    for start in range(0, n_keys, chunk):  # pass 1: counts and the distinct trigrams
        stop = min(start + chunk, n_keys)
        offsets, grams = trigram_keys(forms.rows(key_alias[start:stop]))
        counts[start:stop] = numpy.diff(offsets)
        distinct = numpy.union1d(distinct, grams)
        del offsets, grams
    order = counting_sort(counts, int(counts.max()) + 1).astype(numpy.int32)
    n_grams = len(distinct)
    per_gram = numpy.zeros(n_grams, dtype=numpy.int64)
    for start in range(0, n_keys, chunk):  # pass 2: the length of each posting list
        _, grams = trigram_keys(forms.rows(key_alias[start:min(start + chunk, n_keys)]))
        per_gram += numpy.bincount(numpy.searchsorted(distinct, grams), minlength=n_grams)
        del grams
    posting_offsets = numpy.zeros(n_grams + 1, dtype=numpy.uint64)
    numpy.cumsum(per_gram, out=posting_offsets[1:])
    del per_gram
    postings = numpy.empty(int(posting_offsets[-1]), dtype=numpy.uint32)
    cursor = posting_offsets[:-1].astype(numpy.int64)
    # pass 3 holds ~10 arrays of one item per trigram of its keys: smaller chunks
    step = max(1, chunk // 4)
    for start in range(0, n_keys, step):  # pass 3: keys in their final order
        stop = min(start + step, n_keys)
        offsets, grams = trigram_keys(forms.rows(key_alias[order[start:stop]]))
        rows = numpy.searchsorted(distinct, grams)
        del grams
        new_rows = numpy.repeat(numpy.arange(start, stop, dtype=numpy.uint32),
                                numpy.diff(offsets))
        del offsets
        by_gram = numpy.argsort(rows, kind="stable")  # key rows stay ascending per list
        rows = rows[by_gram]
        new_rows = new_rows[by_gram]
        del by_gram
        # each item's place in its list: the list's cursor + its rank in this chunk
        place = numpy.arange(len(rows), dtype=numpy.int64)
        firsts = numpy.ones(len(rows), dtype=bool)
        firsts[1:] = rows[1:] != rows[:-1]
        place -= numpy.maximum.accumulate(numpy.where(firsts, place, 0)) if len(rows) else 0
        del firsts
        place += cursor[rows]
        postings[place] = new_rows
        del place, new_rows
        cursor += numpy.bincount(rows, minlength=n_grams)
        del rows
    if not numpy.array_equal(cursor, posting_offsets[1:].astype(numpy.int64)):
        raise KBError("The trigram lists of the alias index are inconsistent.")
    del cursor
    sections = {
        "norm_gram_counts": counts[order].astype(numpy.uint32),
        "gram_keys": distinct,
        "gram_offsets": posting_offsets,
        "gram_postings": postings,
        "gram_slots": build_slots(distinct),
    }
    return order, sections


def _slots(key_of_alias: numpy.ndarray, alias_offsets, candidate_rows, candidate_priors):
    """(key, entity, prior, alias) of each (key, entity) slot with its best prior
    and that prior's alias, in (key, entity) order (AliasIndex.build's two
    sorts, (key, entity) packed in one int64): int32 keys, entities and aliases,
    each array freed as soon as the next one is made."""
    m = len(key_of_alias)
    counts = numpy.diff(numpy.asarray(alias_offsets, dtype=numpy.int64))
    used = numpy.repeat(key_of_alias >= 0, counts)
    slot_alias = numpy.repeat(numpy.arange(m, dtype=numpy.int32), counts)[used]
    pair = numpy.repeat(key_of_alias, counts)[used].astype(numpy.int64)
    del counts
    pair <<= 32
    entities = numpy.asarray(candidate_rows)[used]
    if len(entities) and (entities.min() < 0 or entities.max() > INT32_MAX):
        raise KBError("A candidate entity row is out of the int32 range of the alias index.")
    pair |= entities.astype(numpy.int64)
    del entities
    slot_prior = numpy.asarray(candidate_priors, dtype=numpy.float32)[used]
    del used
    order = numpy.lexsort((slot_alias, -slot_prior, pair))
    pair = pair[order]
    slot_alias = slot_alias[order]
    slot_prior = slot_prior[order]
    del order
    first = numpy.ones(len(pair), dtype=bool)
    first[1:] = pair[1:] != pair[:-1]
    pair = pair[first]
    slot_alias = slot_alias[first]
    slot_prior = slot_prior[first]
    del first
    slot_key = (pair >> 32).astype(numpy.int32)
    pair &= 0xFFFFFFFF
    slot_entity = pair.astype(numpy.int32)
    del pair
    return slot_key, slot_entity, slot_prior, slot_alias


def build_index_arrays(string_offsets, blob, alias_offsets, candidate_rows,
                       candidate_priors, normalizer: Optional[AliasNormalizer] = None,
                       fuzzy: bool = True, chunk: int = CHUNK) -> Dict[str, numpy.ndarray]:
    """The alias index sections of aliases given as UTF-8 blob + offsets (alias
    a is ``blob[string_offsets[a]:string_offsets[a + 1]]`` and owns candidate
    slots ``alias_offsets[a]:alias_offsets[a + 1]``): the same arrays as
    ``AliasIndex.build`` (``builders.set_alias_index`` gives them to a KB).

    Aliases, keys and entity rows are numbered with int32 (half the memory of
    int64): RAISES KBError when there are more than 2**31 - 1 of any of them.
    """
    normalizer = normalizer if normalizer is not None else AliasNormalizer()
    string_offsets = numpy.asarray(string_offsets)
    if string_offsets.dtype == numpy.uint64:  # the KB's (< 2**63): read in place
        string_offsets = string_offsets.view(numpy.int64)
    string_offsets = numpy.asarray(string_offsets, dtype=numpy.int64)
    blob = numpy.asarray(blob, dtype=numpy.uint8)
    m = len(string_offsets) - 1
    check_int32(m, "aliases")
    forms = _Forms(string_offsets, blob, normalizer)
    key_of_alias, key_alias, hashes = _keys(forms, m, chunk)
    release_memory()
    n_keys = len(key_alias)
    if fuzzy and n_keys:
        order, trigram_sections = _trigram_sections(forms, key_alias, chunk)
        del key_alias
        release_memory()
        new_row = numpy.empty(n_keys, dtype=numpy.int32)
        new_row[order] = numpy.arange(n_keys, dtype=numpy.int32)
        valid = key_of_alias >= 0
        key_of_alias[valid] = new_row[key_of_alias[valid]]
        del valid, new_row
        hashes = hashes[order]
        del order
    elif fuzzy:
        trigram_sections = _trigram_arrays(numpy.zeros(1, dtype=numpy.int64),
                                           numpy.zeros(0, dtype=numpy.uint64),
                                           numpy.zeros(0, dtype=numpy.int64))
    else:
        trigram_sections = _no_trigrams()
    slot_key, slot_entity, slot_prior, slot_alias = _slots(
        key_of_alias, alias_offsets, candidate_rows, candidate_priors)
    del key_of_alias
    release_memory()
    arrays = norm_sections(hashes, slot_key, slot_entity, slot_prior, slot_alias,
                           normalizer, fuzzy)
    arrays.update(trigram_sections)
    return arrays

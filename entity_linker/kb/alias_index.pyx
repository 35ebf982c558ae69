# cython: boundscheck=False, wraparound=False
"""Candidate lookup beyond exact string match: normalised keys and trigrams.

Two indexes over the KB's aliases, built together and stored in the KB file:

- the **normalised index** maps the normalised form of an alias (see
  normalize.py: "St. Louis" and "SAINT-LOUIS" -> "saint louis") to the union of
  the candidates of every alias with that form, each with the highest prior it
  has under any of them (CSR: key row -> slots of entity row, prior, alias row);
- the **trigram index** maps each character trigram of a normalised key
  (padded with one space on each side) to the ascending list of keys holding it.
  A fuzzy search scores keys by the cosine of the trigram sets,
  |q & k| / sqrt(|q| |k|), and returns those at or above ``min_score``.

The search reads only the rarest trigrams of the query in full ("prefix
filtering": a key that shares none of the q - ceil(t^2 q) + 1 rarest trigrams
cannot reach score t), then checks the surviving keys against the common
trigrams by merge or binary search. All of it runs without the GIL.

This module holds the normalised index and ``AliasIndex`` (build, lookup,
gather, and the driver of the fuzzy search); the trigram index is in
trigrams.pyx, the C folding of texts in text_fold.pyx, the C layout
(``IndexData``) in alias_structs.pxd.

Every index read from the tables is bounds-checked before use, so a corrupt
file raises KBFormatError instead of reading out of bounds.
"""
import json

import numpy

from cymem.cymem cimport Pool
from libc.stdint cimport int64_t, uint32_t, uint64_t

from ..errors import KBError, KBFormatError
from .format import INDEX_SECTIONS, read_index_config
from .hashing import has_duplicates, hash_strings
from .tables import build_slots
from .normalize import AliasNormalizer
from .text_fold import _checked_str, _normalize_many
from .trigrams import MAX_FUZZY_LENGTH, _trigram_arrays, counting_sort, trigram_keys

from .hashing cimport hash_string, hash_utf8
from .tables cimport CORRUPT, find_slot
from .text_fold cimport TextFolder
from .trigrams cimport _search


cdef class AliasIndex:
    """The normalised and trigram indexes of a KB's aliases (see module docs).

    Built with ``AliasIndex.build`` (usually through
    ``InMemoryLookupKB.build_alias_index``) or read in place from a KB file.
    """

    def __init__(self):
        raise TypeError("Use AliasIndex.build() or InMemoryLookupKB.build_alias_index().")

    @classmethod
    def build(cls, alias_strings, alias_offsets, candidate_rows, candidate_priors,
              uint64_t n_entities, normalizer=None, bint fuzzy=True) -> "AliasIndex":
        """Index aliases given as compact CSR arrays (alias a owns slots
        alias_offsets[a]:alias_offsets[a + 1] of candidate_rows/candidate_priors).
        """
        normalizer = normalizer if normalizer is not None else AliasNormalizer()
        if not isinstance(normalizer, AliasNormalizer):
            raise KBError(f"normalizer must be an AliasNormalizer, got {normalizer!r}.")
        forms = _normalize_many(normalizer, alias_strings)
        key_rows = {}
        key_of_alias = numpy.fromiter(
            (key_rows.setdefault(form, len(key_rows)) if form else -1 for form in forms),
            dtype=numpy.int64, count=len(forms),
        )
        keys = list(key_rows)
        n_keys = len(keys)
        # The keys' trigram lists (CSR) and the list of each key row.
        trigrams = (numpy.zeros(1, dtype=numpy.int64), numpy.zeros(0, dtype=numpy.uint64),
                    numpy.zeros(0, dtype=numpy.int64))
        if fuzzy and n_keys:
            # Number the keys by ascending trigram count: a posting list is then
            # sorted by key length too, so a search reads only the length window
            # of keys that can reach min_score.
            gram_offsets, grams = trigram_keys(keys)
            counts = numpy.diff(gram_offsets)
            order = counting_sort(counts, counts.max() + 1)
            new_row = numpy.empty(n_keys, dtype=numpy.int64)
            new_row[order] = numpy.arange(n_keys, dtype=numpy.int64)
            keys = [keys[i] for i in order]
            key_of_alias = numpy.where(key_of_alias >= 0, new_row[key_of_alias], -1)
            trigrams = (gram_offsets, grams, order)
        # One (key, entity) slot per pair, with the best prior and its alias.
        counts = numpy.diff(numpy.asarray(alias_offsets, dtype=numpy.int64))
        slot_key = numpy.repeat(key_of_alias, counts)
        slot_alias = numpy.repeat(numpy.arange(len(forms), dtype=numpy.int64), counts)
        slot_entity = numpy.asarray(candidate_rows, dtype=numpy.int64)
        slot_prior = numpy.asarray(candidate_priors, dtype=numpy.float32)
        used = slot_key >= 0
        slot_key, slot_alias = slot_key[used], slot_alias[used]
        slot_entity, slot_prior = slot_entity[used], slot_prior[used]
        order = numpy.lexsort((slot_alias, -slot_prior, slot_entity, slot_key))
        slot_key, slot_alias = slot_key[order], slot_alias[order]
        slot_entity, slot_prior = slot_entity[order], slot_prior[order]
        first = numpy.ones(len(slot_key), dtype=bool)
        first[1:] = (slot_key[1:] != slot_key[:-1]) | (slot_entity[1:] != slot_entity[:-1])
        slot_key, slot_alias = slot_key[first], slot_alias[first]
        slot_entity, slot_prior = slot_entity[first], slot_prior[first]
        hashes = hash_strings(keys)
        if has_duplicates(hashes):
            raise KBError("Two normalised aliases share a 64-bit hash; cannot index them.")
        arrays = norm_sections(hashes, slot_key, slot_entity, slot_prior, slot_alias,
                               normalizer, fuzzy)
        arrays.update(_trigram_arrays(*trigrams) if fuzzy else _no_trigrams())
        return _make_index(arrays, normalizer, fuzzy, n_entities, len(forms), "the alias index")

    @classmethod
    def from_views(cls, views, uint64_t n_entities, uint64_t n_aliases, source):
        """The index held in the (already checked) sections of a KB file, or None."""
        if len(views["index_config"]) == 0:
            return None
        normalizer, fuzzy = read_index_config(views["index_config"].tobytes(), source)
        arrays = {name: views[name] for name, _ in INDEX_SECTIONS}
        return _make_index(arrays, normalizer, fuzzy, n_entities, n_aliases, source)

    cdef void _sync(self):
        a = self._arrays
        self.c.n_keys = len(a["norm_hashes"])
        self.c.n_slots = len(a["norm_entity_rows"])
        self.c.n_grams = len(a["gram_keys"])
        self.c.n_postings = len(a["gram_postings"])
        self.c.key_offsets = <const uint64_t*>_address(a["norm_offsets"])
        self.c.entity_rows = <const uint32_t*>_address(a["norm_entity_rows"])
        self.c.priors = <const float*>_address(a["norm_priors"])
        self.c.alias_rows = <const uint32_t*>_address(a["norm_alias_rows"])
        self.c.key_hashes = <const uint64_t*>_address(a["norm_hashes"])
        self.c.key_slots = <const uint32_t*>_address(a["norm_slots"])
        self.c.key_slots_length = len(a["norm_slots"])
        self.c.key_gram_counts = <const uint32_t*>_address(a["norm_gram_counts"])
        self.c.gram_offsets = <const uint64_t*>_address(a["gram_offsets"])
        self.c.postings = <const uint32_t*>_address(a["gram_postings"])
        self.c.gram_keys = <const uint64_t*>_address(a["gram_keys"])
        self.c.gram_slots = <const uint32_t*>_address(a["gram_slots"])
        self.c.gram_slots_length = len(a["gram_slots"])

    def copy(self) -> "AliasIndex":
        """An in-memory copy (e.g. of an index read from a mapped file)."""
        arrays = {name: numpy.array(array) for name, array in self._arrays.items()}
        return _make_index(arrays, self.normalizer, self.has_fuzzy, self.c.n_entities,
                           self.c.n_aliases, "the alias index")

    def arrays(self) -> dict:
        """The index as one array per KB file section (see INDEX_SECTIONS)."""
        return dict(self._arrays)

    @property
    def n_keys(self) -> int:
        """Number of distinct normalised aliases."""
        return self.c.n_keys

    @property
    def n_grams(self) -> int:
        """Number of distinct trigrams (0 without the fuzzy index)."""
        return self.c.n_grams

    def normalize(self, text: str) -> str:
        """The normalised key of text, as this index computes it."""
        return self.normalizer(text)

    def _corrupt(self):
        return KBFormatError(
            f"{self._source}: the alias index is corrupt (an index points outside its "
            "table). Rebuild it with kb.copy().build_alias_index() and save the KB again."
        )

    def key_hashes(self, texts, exact_hashes=None) -> numpy.ndarray:
        """The hash of each text's normalised form (uint64; 0 for an empty form).

        ASCII texts (most mentions) are folded and hashed in C, without a
        Python string per text; others are decomposed by unicodedata, then
        folded in C.
        exact_hashes (Optional[numpy.ndarray]): A uint64 array to fill with the
            hash of each text itself (its exact alias hash) in the same pass.
        """
        texts = texts if isinstance(texts, (list, tuple)) else list(texts)
        cdef int64_t n = len(texts), i
        hashes = numpy.empty(n, dtype=numpy.uint64)
        cdef uint64_t[::1] out = hashes
        cdef uint64_t[::1] exact_out = exact_hashes if exact_hashes is not None else hashes
        cdef bint with_exact = exact_hashes is not None
        if with_exact and exact_out.shape[0] != n:
            raise KBError(f"exact_hashes holds {exact_out.shape[0]} items for {n} texts.")
        cdef const char* utf8
        cdef Py_ssize_t size, length
        for i in range(n):
            size = self._folder.fold(_checked_str(texts[i]), &utf8, &length)
            if with_exact:
                exact_out[i] = hash_utf8(utf8, length)
            if size < 0:  # not ASCII: the full Unicode normalisation
                out[i] = hash_string(self._folder.fold_unicode(texts[i]))
            else:
                out[i] = hash_utf8(self._folder.buffer, size)
        return hashes

    def key_rows(self, texts) -> numpy.ndarray:
        """The key row of each text's normalised form; -1 where there is none."""
        hashes = self.key_hashes(texts)
        cdef const uint64_t[::1] keys = hashes
        cdef int64_t n = len(hashes)
        rows = numpy.empty(n, dtype=numpy.int64)
        offsets = numpy.empty(n + 1, dtype=numpy.int64)
        cdef int64_t[::1] out = rows
        cdef int64_t[::1] counts = offsets
        cdef int status = 0
        if n:
            with nogil:
                status = find_keys(&self.c, &keys[0], n, &out[0], &counts[0])
        if status < 0:
            raise self._corrupt()
        return rows

    def gather(self, key_rows):
        """The candidate slots of many key rows (-1: none) as flat arrays.

        RETURNS (Tuple[ndarray, ...]): (offsets int64 [n + 1], entity_rows uint32,
            priors float32, alias_rows uint32); key i's slots are
            [offsets[i], offsets[i + 1]), best prior first.
        """
        cdef const int64_t[::1] rows = numpy.ascontiguousarray(key_rows, dtype=numpy.int64)
        cdef int64_t n = rows.shape[0], i
        offsets = numpy.zeros(n + 1, dtype=numpy.int64)
        cdef int64_t[::1] offs = offsets
        cdef bint corrupt = False
        cdef uint64_t start, end
        with nogil:
            for i in range(n):
                offs[i + 1] = offs[i]
                if rows[i] < 0:
                    continue
                if <uint64_t>rows[i] >= self.c.n_keys:
                    corrupt = True
                    break
                start = self.c.key_offsets[rows[i]]
                end = self.c.key_offsets[rows[i] + 1]
                if start > end or end > self.c.n_slots:
                    corrupt = True
                    break
                offs[i + 1] += <int64_t>(end - start)
        if corrupt:
            raise self._corrupt()
        total = offsets[n]
        entity_rows = numpy.empty(total, dtype=numpy.uint32)
        priors = numpy.empty(total, dtype=numpy.float32)
        alias_rows = numpy.empty(total, dtype=numpy.uint32)
        cdef uint32_t[::1] entity_out = entity_rows
        cdef float[::1] prior_out = priors
        cdef uint32_t[::1] alias_out = alias_rows
        cdef int64_t out
        cdef uint64_t j
        with nogil:
            for i in range(n):
                if rows[i] < 0:
                    continue
                out = offs[i]
                for j in range(self.c.key_offsets[rows[i]], self.c.key_offsets[rows[i] + 1]):
                    if (self.c.entity_rows[j] >= self.c.n_entities
                            or self.c.alias_rows[j] >= self.c.n_aliases):
                        corrupt = True
                        break
                    entity_out[out] = self.c.entity_rows[j]
                    prior_out[out] = self.c.priors[j]
                    alias_out[out] = self.c.alias_rows[j]
                    out += 1
        if corrupt:
            raise self._corrupt()
        return offsets, entity_rows, priors, alias_rows

    def search(self, texts, double min_score=0.7, int64_t max_keys=10):
        """The normalised keys most similar to each text by trigram cosine.

        texts (Sequence[str]): Mention texts (normalised here).
        min_score (float): Keep keys scoring at least this, in (0, 1].
        max_keys (int): Keep at most this many keys per text (best first).
        RETURNS (Tuple[ndarray, ndarray, ndarray]): (offsets int64 [n + 1],
            key_rows int64, scores float32); text i's keys are
            key_rows[offsets[i]:offsets[i + 1]], best first.
        """
        if not self.has_fuzzy:
            raise KBError(
                "This KB's alias index was built without the trigram index. Rebuild it "
                "with kb.build_alias_index(fuzzy=True) (on a copy if the KB is mapped)."
            )
        if not 0.0 < min_score <= 1.0:
            raise KBError(f"min_score must lie in (0, 1], got {min_score}.")
        if max_keys < 1:
            raise KBError(f"max_keys must be at least 1, got {max_keys}.")
        forms = [form if len(form) <= MAX_FUZZY_LENGTH else ""
                 for form in self.normalizer.normalize_many(texts)]
        cdef int64_t n = len(forms)
        query_offsets, gram_array = trigram_keys(forms)
        found = numpy.zeros(n, dtype=numpy.int64)
        key_out = numpy.empty(max(1, n * max_keys), dtype=numpy.int64)
        score_out = numpy.empty(max(1, n * max_keys), dtype=numpy.float32)
        cdef const uint64_t[::1] grams = gram_array if len(gram_array) else numpy.ones(1, numpy.uint64)
        cdef const int64_t[::1] q_offsets = query_offsets
        cdef int64_t[::1] found_view = found
        cdef int64_t[::1] key_view = key_out
        cdef float[::1] score_view = score_out
        cdef Pool mem = Pool()
        cdef uint64_t n_keys = max(self.c.n_keys, 1)
        cdef uint64_t* state = <uint64_t*>mem.alloc(n_keys, sizeof(uint64_t))
        cdef uint32_t* touched = <uint32_t*>mem.alloc(n_keys, sizeof(uint32_t))
        cdef uint64_t stamp = 0
        cdef int64_t longest = int(numpy.diff(query_offsets).max()) if n else 0
        cdef int64_t* ranges = <int64_t*>mem.alloc(3 * max(longest, 1), sizeof(int64_t))
        cdef int64_t i, result = 0
        with nogil:
            for i in range(n):
                result = _search(&self.c, &grams[q_offsets[i]], q_offsets[i + 1] - q_offsets[i],
                                 min_score, max_keys, state, &stamp,
                                 touched, ranges, &key_view[i * max_keys],
                                 &score_view[i * max_keys])
                if result < 0:
                    break
                found_view[i] = result
        if result < 0:
            raise self._corrupt()
        offsets = numpy.zeros(n + 1, dtype=numpy.int64)
        numpy.cumsum(found, out=offsets[1:])
        take = (numpy.arange(offsets[n]) - numpy.repeat(offsets[:-1], found)
                + numpy.repeat(numpy.arange(n) * max_keys, found))
        return offsets, key_out[take], score_out[take]


_TRIGRAM_SECTIONS = ("norm_gram_counts", "gram_keys", "gram_offsets", "gram_postings",
                     "gram_slots")


def norm_sections(hashes, slot_key, slot_entity, slot_prior, slot_alias, normalizer,
                  bint fuzzy) -> dict:
    """The index's config and normalised-key sections from one (key, entity,
    prior, alias row) per slot: each key's slots sorted by prior (highest
    first, then entity row), their CSR offsets, the key hashes and their
    slot table. Shared by ``build_alias_index`` and the chunked Wikidata
    builder, so both write the same sections."""
    n_keys = len(hashes)
    order = numpy.lexsort((slot_entity, -slot_prior, slot_key))
    norm_offsets = numpy.zeros(n_keys + 1, dtype=numpy.uint64)
    numpy.cumsum(numpy.bincount(slot_key, minlength=n_keys), out=norm_offsets[1:])
    config = {"normalizer": normalizer.to_dict(), "fuzzy": bool(fuzzy)}
    return {
        "index_config": numpy.frombuffer(json.dumps(config).encode("utf8"), dtype="u1"),
        "norm_hashes": hashes,
        "norm_offsets": norm_offsets,
        "norm_entity_rows": slot_entity[order].astype(numpy.uint32),
        "norm_priors": slot_prior[order],
        "norm_alias_rows": slot_alias[order].astype(numpy.uint32),
        "norm_slots": build_slots(hashes),
    }


def _no_trigrams() -> dict:
    return {name: numpy.zeros(0, dtype=dtype) for name, dtype in INDEX_SECTIONS
            if name in _TRIGRAM_SECTIONS}


def _make_index(arrays, normalizer, fuzzy, n_entities, n_aliases, source):
    cdef AliasIndex index = AliasIndex.__new__(AliasIndex)
    index._arrays = {name: arrays[name] for name, _ in INDEX_SECTIONS}
    index.normalizer = normalizer
    index._folder = TextFolder(normalizer)
    index.has_fuzzy = fuzzy and len(arrays["gram_offsets"]) > 0
    index._source = source
    index.c.n_entities = n_entities
    index.c.n_aliases = n_aliases
    index._sync()
    return index


cdef const void* _address(array) except NULL:
    """Address of a C-contiguous array's data (a valid dummy for empty arrays)."""
    cdef const unsigned char[::1] view
    if array.size == 0:
        return <const void*>&_EMPTY
    view = array.reshape(-1).view(numpy.uint8)
    return <const void*>&view[0]


cdef uint64_t _EMPTY = 0


cdef int find_keys(const IndexData* ix, const uint64_t* hashes, int64_t n, int64_t* key_rows,
                   int64_t* offsets) noexcept nogil:
    """Key row of each normalised-form hash (-1: none) and the running count of
    their candidate slots (offsets[n + 1]); -1 if the index is corrupt."""
    cdef int64_t i, row
    cdef uint64_t start, end
    offsets[0] = 0
    for i in range(n):
        offsets[i + 1] = offsets[i]
        row = find_slot(ix.key_slots, ix.key_slots_length, hashes[i], ix.key_hashes, ix.n_keys)
        if row == CORRUPT:
            return -1
        key_rows[i] = row
        if row >= 0:
            start = ix.key_offsets[row]
            end = ix.key_offsets[row + 1]
            if start > end or end > ix.n_slots:
                return -1
            offsets[i + 1] += <int64_t>(end - start)
    return 0


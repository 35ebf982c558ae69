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

Every index read from the tables is bounds-checked before use, so a corrupt
file raises KBFormatError instead of reading out of bounds.
"""
import json

import numpy

from cpython.unicode cimport (PyUnicode_4BYTE_KIND, PyUnicode_AsUTF8AndSize,
                              PyUnicode_FromKindAndData)
from cymem.cymem cimport Pool
from libc.string cimport memcpy
from libc.math cimport sqrt
from libc.stdlib cimport qsort
from libc.stdint cimport int64_t, uint32_t, uint64_t, uintptr_t

from ..errors import KBError, KBFormatError
from .format import INDEX_SECTIONS, read_index_config
from .hashing import has_duplicates, hash_strings
from .tables import MAX_ROWS, build_slots
from .normalize import AliasNormalizer, decompose, fold_char

from .hashing cimport hash_string, hash_utf8
from .tables cimport CORRUPT, fill_slots, find_slot, slot_for

# Normalised mentions longer than this get no fuzzy candidates (names are
# short; a paragraph-long "mention" would cost a scan of most of the index).
MAX_FUZZY_LENGTH = 128


def trigram_keys(strings):
    """The distinct trigram keys of each string (padded with a space each side).

    RETURNS (Tuple[ndarray, ndarray]): (offsets int64 [n + 1], keys uint64);
        string i's keys are keys[offsets[i]:offsets[i + 1]], ascending. Empty
        strings have none.
    A trigram's key mixes its three code points (21 bits each) with the
    splitmix64 finaliser, so keys spread evenly over a hash table.
    """
    strings = tuple(strings)  # immutable: the lengths summed below stay the bound
    cdef Py_ssize_t n = len(strings), i
    cdef int64_t total = 0, used = 0
    for text in strings:
        total += len(_checked_str(text))  # a string of L code points has L trigrams
    offsets = numpy.zeros(n + 1, dtype=numpy.int64)
    keys = numpy.empty(max(total, 1), dtype=numpy.uint64)
    cdef int64_t[::1] offs = offsets
    cdef uint64_t[::1] out = keys
    for i in range(n):
        if strings[i]:
            used += _text_trigrams(strings[i], &out[used])
        offs[i + 1] = used
    return offsets, keys[:used]


def counting_sort(values, int64_t n_values) -> numpy.ndarray:
    """numpy.argsort(values, kind="stable") of integers in [0, n_values), by
    counting: O(len(values) + n_values) with no comparisons.

    RETURNS (numpy.ndarray): int64 positions of values in ascending order,
        equal values in their original order.
    """
    cdef const int64_t[::1] v = numpy.ascontiguousarray(values, dtype=numpy.int64)
    cdef int64_t n = v.shape[0], i, k
    order = numpy.empty(n, dtype=numpy.int64)
    starts = numpy.zeros(max(n_values, 0) + 1, dtype=numpy.int64)
    cdef int64_t[::1] out = order
    cdef int64_t[::1] next_slot = starts
    cdef bint in_range = True
    with nogil:
        for i in range(n):
            if v[i] < 0 or v[i] >= n_values:
                in_range = False
                break
            next_slot[v[i] + 1] += 1
        if in_range:
            for k in range(n_values):
                next_slot[k + 1] += next_slot[k]
            for i in range(n):
                out[next_slot[v[i]]] = i
                next_slot[v[i]] += 1
    if not in_range:
        raise KBError(f"counting_sort: value {v[i]} is outside [0, {n_values}).")
    return order


def _dense_ids(keys):
    """Number distinct 64-bit keys in order of first appearance.

    RETURNS (Tuple[ndarray, ndarray]): (ids int64, the number of each key;
        distinct uint64, the keys in order of their numbers).
    """
    cdef const uint64_t[::1] values = numpy.ascontiguousarray(keys, dtype=numpy.uint64)
    cdef int64_t n = values.shape[0], done = 0, n_distinct = 0
    ids = numpy.empty(n, dtype=numpy.int64)
    distinct = numpy.empty(max(n, 1), dtype=numpy.uint64)
    cdef int64_t[::1] id_out = ids
    cdef uint64_t[::1] distinct_out = distinct
    cdef uint32_t[::1] slots
    cdef uint64_t length = 1024
    # A slot table (as in tables.pyx) that doubles whenever it is half full.
    while done < n:
        if length > 2 * (MAX_ROWS + 1):  # past this, row + 1 would not fit a uint32 slot
            raise KBError(f"A KB table holds at most {MAX_ROWS:,} rows.")
        table = numpy.zeros(length, dtype=numpy.uint32)
        slots = table
        with nogil:
            fill_slots(&slots[0], length, &distinct_out[0], n_distinct)
            done = _number_keys(&values[0], n, done, &slots[0], length, &distinct_out[0],
                                &n_distinct, &id_out[0])
        length *= 2
    return ids, distinct[:n_distinct]


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
        order = numpy.lexsort((slot_entity, -slot_prior, slot_key))
        norm_offsets = numpy.zeros(n_keys + 1, dtype=numpy.uint64)
        numpy.cumsum(numpy.bincount(slot_key, minlength=n_keys), out=norm_offsets[1:])
        hashes = hash_strings(keys)
        if has_duplicates(hashes):
            raise KBError("Two normalised aliases share a 64-bit hash; cannot index them.")
        config = {"normalizer": normalizer.to_dict(), "fuzzy": bool(fuzzy)}
        arrays = {
            "index_config": numpy.frombuffer(json.dumps(config).encode("utf8"), dtype="u1"),
            "norm_hashes": hashes,
            "norm_offsets": norm_offsets,
            "norm_entity_rows": slot_entity[order].astype(numpy.uint32),
            "norm_priors": slot_prior[order],
            "norm_alias_rows": slot_alias[order].astype(numpy.uint32),
            "norm_slots": build_slots(hashes),
        }
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


def _trigram_arrays(gram_offsets, grams, order) -> dict:
    """The trigram sections from the keys' trigram lists (trigram_keys of the
    keys before their renumbering; key row r holds list order[r]). Trigrams are
    numbered by ascending key, then a counting sort gives the postings, in O(n)."""
    ids, distinct = _dense_ids(grams)
    by_value = numpy.argsort(distinct)
    gram_row = numpy.empty(len(distinct), dtype=numpy.int64)
    gram_row[by_value] = numpy.arange(len(distinct), dtype=numpy.int64)
    posting_offsets, postings = _postings(gram_offsets, gram_row[ids], order, len(distinct))
    unique_grams = distinct[by_value]
    return {
        "norm_gram_counts": numpy.diff(gram_offsets)[order].astype(numpy.uint32),
        "gram_keys": unique_grams,
        "gram_offsets": posting_offsets,
        "gram_postings": postings,
        "gram_slots": build_slots(unique_grams),
    }


def _postings(gram_offsets, gram_rows, order, int64_t n_grams):
    """The posting lists of trigram rows 0..n_grams-1, where key row r holds
    trigram rows gram_rows[gram_offsets[order[r]]:gram_offsets[order[r] + 1]].

    RETURNS (Tuple[ndarray, ndarray]): (offsets uint64 [n_grams + 1], postings
        uint32 key rows). A counting sort by trigram row that visits the key
        rows in order, so each posting list comes out ascending.
    """
    cdef const int64_t[::1] lists = gram_offsets
    cdef const int64_t[::1] rows = gram_rows
    cdef const int64_t[::1] key_order = order
    cdef int64_t n_keys = key_order.shape[0], n = rows.shape[0], r, k, p, g
    offsets = numpy.zeros(n_grams + 1, dtype=numpy.uint64)
    next_posting = numpy.zeros(n_grams + 1, dtype=numpy.int64)
    postings = numpy.empty(n, dtype=numpy.uint32)
    cdef uint64_t[::1] starts = offsets
    cdef int64_t[::1] cursor = next_posting
    cdef uint32_t[::1] out = postings
    cdef bint in_range = lists.shape[0] == n_keys + 1
    with nogil:
        for p in range(n if in_range else 0):
            if rows[p] < 0 or rows[p] >= n_grams:
                in_range = False
                break
            cursor[rows[p] + 1] += 1
        for g in range(n_grams if in_range else 0):
            cursor[g + 1] += cursor[g]
            starts[g + 1] = <uint64_t>cursor[g + 1]
        for r in range(n_keys if in_range else 0):
            k = key_order[r]
            if k < 0 or k >= n_keys or lists[k] < 0 or lists[k] > lists[k + 1] \
                    or lists[k + 1] > n:
                in_range = False
                break
            for p in range(lists[k], lists[k + 1]):
                g = rows[p]
                if <uint64_t>cursor[g] >= starts[g + 1]:
                    in_range = False
                    break
                out[cursor[g]] = <uint32_t>r
                cursor[g] += 1
            if not in_range:
                break
        for g in range(n_grams if in_range else 0):
            if <uint64_t>cursor[g] != starts[g + 1]:  # order left out a key row
                in_range = False
    if not in_range:
        raise KBError("The trigram lists of the alias index are inconsistent.")
    return offsets, postings


def _normalize_many(normalizer, texts) -> list:
    """normalizer.normalize_many, folded in C."""
    cdef TextFolder folder = TextFolder(normalizer)
    return [folder.normalize(_checked_str(text)) for text in texts]


def _checked_str(text) -> str:
    if not isinstance(text, str):
        raise KBError(f"Expected str, got {type(text).__name__} {text!r}.")
    return text


cdef class TextFolder:
    """normalize.py's normalisation in C, into buffers it owns: ASCII texts are
    folded from their UTF-8 bytes, others from their code points after
    ``decompose`` (unicodedata's NFKC, case folding and NFD).

    ``fold`` leaves the folded text in ``buffer`` until the next call; read it
    before running any Python code that could use the same folder.
    """

    def __init__(self, normalizer):
        self.expansions = {key.encode("ascii"): value.encode("utf8")
                           for key, value in normalizer.expansions.items() if key.isascii()}
        self.longest_key = max(map(len, self.expansions), default=0)
        self.longest_value = max(map(len, self.expansions.values()), default=0)
        self.words = dict(normalizer.expansions)
        self.longest_word = max(map(len, self.words), default=0)
        self.longest_replacement = max(map(len, self.words.values()), default=0)
        self.mem = Pool()
        self.capacity = 256
        self.buffer = <char*>self.mem.alloc(self.capacity, 1)
        self.wide_capacity = 256
        self.wide = <Py_UCS4*>self.mem.alloc(self.wide_capacity, sizeof(Py_UCS4))

    cdef Py_ssize_t fold(self, str text, const char** utf8, Py_ssize_t* length) except -2:
        """Fold text into buffer; the folded length, or -1 when text is not ASCII.
        Sets utf8/length to the text's own UTF-8 bytes."""
        utf8[0] = PyUnicode_AsUTF8AndSize(text, length)
        cdef size_t needed = length[0] * (self.longest_value + 2) + 1
        if needed > self.capacity:
            self.buffer = <char*>self.mem.realloc(self.buffer, needed)
            self.capacity = needed
        return _fold_ascii(utf8[0], length[0], self.buffer, self.expansions, self.longest_key)

    cdef str fold_unicode(self, str text):
        """The normalised key of a text (any; meant for those not ASCII)."""
        cdef str decomposed = decompose(text)
        cdef size_t needed = len(decomposed) * (self.longest_replacement + 2) + 1
        if needed > self.wide_capacity:
            self.wide = <Py_UCS4*>self.mem.realloc(self.wide, needed * sizeof(Py_UCS4))
            self.wide_capacity = needed
        cdef Py_ssize_t size = _fold_decomposed(decomposed, self.wide, self.words,
                                                self.longest_word)
        return PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, self.wide, size)

    cdef str normalize(self, str text):
        """The normalised key of a text, as the normaliser computes it."""
        cdef const char* utf8
        cdef Py_ssize_t length
        cdef Py_ssize_t size = self.fold(text, &utf8, &length)
        if size < 0:
            return self.fold_unicode(text)
        return self.buffer[:size].decode("utf8")


_TRIGRAM_SECTIONS = ("norm_gram_counts", "gram_keys", "gram_offsets", "gram_postings",
                     "gram_slots")


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
cdef uint64_t _COUNT_MASK = 0xFFFFFFFFUL  # the shared-trigram count in a search state word


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


cdef Py_ssize_t _fold_ascii(const char* text, Py_ssize_t length, char* out,
                            dict expansions, Py_ssize_t longest_key) except -2:
    """normalize.py's folding of an ASCII text into out; its length, or -1 if
    the text is not ASCII. ``out`` holds length * (longest expansion + 2) bytes."""
    cdef Py_ssize_t i, size = 0, token = 0, words = 0
    cdef unsigned char c
    cdef bint in_token = False
    for i in range(length + 1):
        c = <unsigned char>text[i] if i < length else 32
        if c >= 128:
            return -1
        if c == 46 or c == 39 or c == 96:  # . ' ` sit inside words: deleted
            continue
        if (48 <= c <= 57) or (97 <= c <= 122) or (65 <= c <= 90):
            if not in_token:
                words += 1
                if words > 1:  # a space after every word, even one expanded to ""
                    out[size] = 32
                    size += 1
                token = size
                in_token = True
            out[size] = <char>(c + 32 if 65 <= c <= 90 else c)
            size += 1
        elif in_token:
            in_token = False
            if size - token <= longest_key:
                replacement = expansions.get(out[token:size])
                if replacement is not None:
                    size = token + len(replacement)
                    memcpy(out + token, <const char*>replacement, len(replacement))
    return size


# fold_char's verdict on each code point, cached for the C folding.
cdef enum:
    _UNKNOWN = 0
    _KEPT
    _SPACE
    _DELETED
cdef unsigned char[::1] _char_classes = numpy.zeros(0x110000, dtype=numpy.uint8)


cdef unsigned char _char_class(Py_UCS4 c) except 0:
    """How step 4 treats code point c (below 0x110000, so always in the table)."""
    cdef unsigned char kind = _char_classes[c]
    if kind == _UNKNOWN:
        value = fold_char(<uint32_t>c)  # a Py_UCS4 would pass as a str
        kind = _DELETED if value is None else _SPACE if value == " " else _KEPT
        _char_classes[c] = kind
    return kind


cdef Py_ssize_t _fold_decomposed(str text, Py_UCS4* out, dict words,
                                 Py_ssize_t longest_word) except -1:
    """Steps 4 and 5 of normalize.py on a decomposed text, into out (room for
    len(text) * (longest replacement + 2) + 1 code points); the folded length."""
    cdef Py_ssize_t size = 0, token = 0, n_words = 0
    cdef bint in_token = False
    cdef unsigned char kind
    cdef Py_UCS4 c
    for c in text:
        kind = _char_class(c)
        if kind == _DELETED:
            continue
        if kind == _KEPT:
            if not in_token:
                n_words += 1
                if n_words > 1:
                    out[size] = 32
                    size += 1
                token = size
                in_token = True
            out[size] = c
            size += 1
        elif in_token:
            in_token = False
            size = _expand_word(out, token, size, words, longest_word)
    if in_token:
        size = _expand_word(out, token, size, words, longest_word)
    return size


cdef Py_ssize_t _expand_word(Py_UCS4* out, Py_ssize_t token, Py_ssize_t size, dict words,
                             Py_ssize_t longest_word) except -1:
    """Replace the word out[token:size] with its expansion, if it has one;
    the new size."""
    cdef Py_UCS4 c
    if size - token > longest_word:
        return size
    replacement = words.get(PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, out + token,
                                                      size - token))
    if replacement is None:
        return size
    for c in <str>replacement:
        out[token] = c
        token += 1
    return token


cdef inline uint64_t _trigram_key(uint64_t a, uint64_t b, uint64_t c) noexcept nogil:
    """The key of the trigram of code points a, b, c: splitmix64's finaliser of
    their 63 bits, moved off 0 and 1 (never stored in a hash table)."""
    cdef uint64_t key = (a << 42) | (b << 21) | c
    key = (key ^ (key >> 30)) * 0xBF58476D1CE4E5B9ULL
    key = (key ^ (key >> 27)) * 0x94D049BB133111EBULL
    key ^= key >> 31
    return key + 2 if key < 2 else key


cdef int64_t _text_trigrams(str text, uint64_t* out) except -1:
    """The distinct trigram keys of a non-empty text padded with a space each
    side, ascending, into out (room for len(text) keys); their number."""
    cdef Py_UCS4 c
    cdef uint64_t a = 0, b = 32
    cdef int64_t n = 0, i, kept = 1
    for c in text:
        if n:
            out[n - 1] = _trigram_key(a, b, c)
        a = b
        b = c
        n += 1
    out[n - 1] = _trigram_key(a, b, 32)
    _sort_keys(out, n)
    for i in range(1, n):
        if out[i] != out[kept - 1]:
            out[kept] = out[i]
            kept += 1
    return kept


cdef int _compare_keys(const void* a, const void* b) noexcept nogil:
    cdef uint64_t x = (<const uint64_t*>a)[0], y = (<const uint64_t*>b)[0]
    return (x > y) - (x < y)


cdef void _sort_keys(uint64_t* keys, int64_t n) noexcept nogil:
    """Sort keys ascending: insertion sort for the few trigrams of most texts."""
    cdef int64_t i, j
    cdef uint64_t key
    if n > 16:
        qsort(keys, n, sizeof(uint64_t), _compare_keys)
        return
    for i in range(1, n):
        key = keys[i]
        j = i - 1
        while j >= 0 and keys[j] > key:
            keys[j + 1] = keys[j]
            j -= 1
        keys[j + 1] = key


cdef int64_t _number_keys(const uint64_t* keys, int64_t n, int64_t start, uint32_t* slots,
                          uint64_t length, uint64_t* distinct, int64_t* n_distinct,
                          int64_t* ids) noexcept nogil:
    """Number keys[start:n] into ids, appending unseen keys to distinct and the
    slot table; stop at a new key that would fill the table past half. RETURNS
    the position reached (n when done)."""
    cdef uint64_t slot
    cdef int64_t i
    for i in range(start, n):
        slot = slot_for(slots, length, keys[i], distinct)
        if slots[slot] == 0:
            if <uint64_t>(2 * n_distinct[0] + 2) > length:
                return i
            distinct[n_distinct[0]] = keys[i]
            n_distinct[0] += 1
            slots[slot] = <uint32_t>n_distinct[0]
        ids[i] = slots[slot] - 1
    return n


cdef inline uint64_t _lower_bound(const uint32_t* values, uint64_t lo, uint64_t hi,
                                  uint64_t value) noexcept nogil:
    """First position in [lo, hi) whose value is >= value (values ascending)."""
    cdef uint64_t mid
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if values[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef int64_t _search(const IndexData* ix, const uint64_t* query, int64_t q,
                     double min_score, int64_t max_keys, uint64_t* state, uint64_t* stamp,
                     uint32_t* touched, int64_t* ranges,
                     int64_t* out_keys, float* out_scores) noexcept nogil:
    """Top keys for one query's q distinct trigram keys; the number found, or -1
    if the tables are corrupt. ``ranges`` is scratch space for 3q items;
    state[key] holds (stamp << 32 | shared trigrams), one random access per
    posting; ``stamp`` is a counter that is unique per (query, key length).

    Keys are numbered by ascending trigram count, so the keys of one length k
    are one row range, and so is each posting list's part for them. Keys are
    searched one length at a time: a key of k trigrams scores >= t only if it
    shares need = ceil(t sqrt(q k)) trigrams with the query, so it holds one of
    any q - need + 1 of them ("prefix filtering"; unknown trigrams count as the
    rarest). Only the rarest known ones are read in full; each key found is then
    checked against the other trigrams and dropped as soon as it cannot reach need.
    """
    cdef int64_t known = 0, i, j, g, row, need, scan, n_touched, n_out = 0, kept
    cdef uint64_t start, end, p, key, lo, first_key, end_key, band_end, length
    cdef double score, t2 = min_score * min_score
    cdef float fscore
    cdef int64_t* starts = ranges
    cdef int64_t* ends = ranges + q
    cdef int64_t* cursors = ranges + 2 * q
    if q == 0 or ix.n_grams == 0 or ix.n_keys == 0:
        return 0
    # Keys of t^2 q to q / t^2 trigrams can score >= t.
    first_key = _lower_bound(ix.key_gram_counts, 0, ix.n_keys,
                             <uint64_t>(t2 * q - 1e-9) + 1)
    end_key = _lower_bound(ix.key_gram_counts, first_key, ix.n_keys,
                           <uint64_t>(q / t2 + 1e-9) + 1)
    for i in range(q):
        row = find_slot(ix.gram_slots, ix.gram_slots_length, query[i], ix.gram_keys,
                        ix.n_grams)
        if row == CORRUPT:
            return -1
        if row < 0:
            continue
        if ix.gram_offsets[row] > ix.gram_offsets[row + 1] or \
                ix.gram_offsets[row + 1] > ix.n_postings:
            return -1
        start = _lower_bound(ix.postings, ix.gram_offsets[row], ix.gram_offsets[row + 1],
                             first_key)
        end = _lower_bound(ix.postings, start, ix.gram_offsets[row + 1], end_key)
        j = known - 1  # insert, keeping the ranges ordered by length (rarest first)
        while j >= 0 and ends[j] - starts[j] > <int64_t>(end - start):
            starts[j + 1] = starts[j]
            ends[j + 1] = ends[j]
            j -= 1
        starts[j + 1] = <int64_t>start
        ends[j + 1] = <int64_t>end
        known += 1
    for g in range(known):
        cursors[g] = starts[g]
    while first_key < end_key:
        length = ix.key_gram_counts[first_key]
        band_end = _lower_bound(ix.key_gram_counts, first_key, end_key, length + 1)
        if band_end <= first_key:  # counts not ascending: a corrupt file
            return -1
        # This length's part of every posting list (they advance together).
        for g in range(known):
            end = _lower_bound(ix.postings, <uint64_t>cursors[g], <uint64_t>ends[g], band_end)
            starts[g] = cursors[g]
            cursors[g] = <int64_t>end
        need = <int64_t>(min_score * sqrt(<double>q * length) - 1e-9) + 1
        scan = known - need + 1
        first_key = band_end
        if scan <= 0:
            continue
        stamp[0] += 1
        n_touched = 0
        for g in range(scan):
            for p in range(<uint64_t>starts[g], <uint64_t>cursors[g]):
                key = ix.postings[p]
                if key >= ix.n_keys:
                    return -1
                if state[key] >> 32 != stamp[0]:
                    state[key] = stamp[0] << 32
                    touched[n_touched] = <uint32_t>key
                    n_touched += 1
                state[key] += 1
        for g in range(scan, known + 1):
            kept = 0
            for j in range(n_touched):
                key = touched[j]
                if <int64_t>(state[key] & _COUNT_MASK) + (known - g) >= need:
                    touched[kept] = <uint32_t>key
                    kept += 1
            n_touched = kept
            if g == known or n_touched == 0:
                break
            start = <uint64_t>starts[g]
            end = <uint64_t>cursors[g]
            if end - start <= <uint64_t>(n_touched * 16):
                for p in range(start, end):  # merge: walk this part of the posting list
                    key = ix.postings[p]
                    if key < ix.n_keys and state[key] >> 32 == stamp[0]:
                        state[key] += 1
            else:
                for j in range(n_touched):  # binary search each surviving key
                    key = touched[j]
                    lo = _lower_bound(ix.postings, start, end, key)
                    if lo < end and ix.postings[lo] == key:
                        state[key] += 1
        for j in range(n_touched):
            key = touched[j]
            score = (state[key] & _COUNT_MASK) / sqrt(<double>q * length)
            if score < min_score:
                continue
            fscore = <float>score
            # Insert into the best-first list (ties: lower key row first).
            i = n_out
            if i == max_keys:
                if fscore < out_scores[i - 1] or (fscore == out_scores[i - 1]
                                                 and <int64_t>key > out_keys[i - 1]):
                    continue
                i -= 1
            else:
                n_out += 1
            while i > 0 and (out_scores[i - 1] < fscore or (out_scores[i - 1] == fscore
                                                            and out_keys[i - 1] > <int64_t>key)):
                out_scores[i] = out_scores[i - 1]
                out_keys[i] = out_keys[i - 1]
                i -= 1
            out_scores[i] = fscore
            out_keys[i] = <int64_t>key
    return n_out

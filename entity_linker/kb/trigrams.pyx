# cython: boundscheck=False, wraparound=False
"""The alias index's trigram index: trigram keys of texts, the posting lists, the fuzzy search.

Each character trigram of a normalised key (padded with one space on each
side) maps to the ascending list of keys holding it. ``_search`` scores keys
by the cosine of the trigram sets, |q & k| / sqrt(|q| |k|), reading only the
rarest trigrams of the query in full ("prefix filtering"), without the GIL.
``trigram_keys``, ``counting_sort`` and ``_dense_ids`` also serve the build
of the index (alias_index.pyx).
"""
import numpy

from libc.math cimport sqrt
from libc.stdlib cimport qsort
from libc.stdint cimport int64_t, uint32_t, uint64_t

from ..errors import KBError
from .tables import MAX_ROWS, build_slots
from .text_fold import _checked_str

from .alias_structs cimport IndexData
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


cdef uint64_t _COUNT_MASK = 0xFFFFFFFFUL  # the shared-trigram count in a search state word


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

"""The nogil batch lookups of a KB (declared in lookup.pxd, with the inline
hash -> row probes ``entity_row_of`` / ``alias_row_of``).

Each kernel reads a ``KBData`` (structs.pxd) and, for the normalised lookup,
an ``IndexData`` (alias_structs.pxd); it writes into arrays the caller owns
(numpy buffers) and returns 0, or -1 when an index read from the tables is
out of range (a corrupt file): the caller raises ``KBFormatError``.
"""
from libc.stdint cimport int64_t, uint32_t, uint64_t


cdef int find_entities(const KBData* kb, const uint64_t* keys, int64_t n,
                       int64_t* rows) noexcept nogil:
    """Row of each entity hash (NOT_FOUND where unknown); -1 if corrupt."""
    cdef int64_t i
    for i in range(n):
        rows[i] = entity_row_of(kb, keys[i])
        if rows[i] == CORRUPT:
            return -1
    return 0


cdef int find_aliases(const KBData* kb, const uint64_t* keys, int64_t n,
                      int64_t* alias_rows, int64_t* offsets) noexcept nogil:
    """Alias row of each key and the running count of candidates; -1 if corrupt."""
    cdef int64_t i, row
    offsets[0] = 0
    for i in range(n):
        row = alias_row_of(kb, keys[i])
        if row == CORRUPT:
            return -1
        alias_rows[i] = row
        if row >= 0:
            if not alias_slots_ok(kb, row):
                return -1
            offsets[i + 1] = offsets[i] + <int64_t>(kb.alias_ends[row] - kb.alias_starts[row])
        else:
            offsets[i + 1] = offsets[i]
    return 0


cdef int gather_candidates(const KBData* kb, const int64_t* alias_rows, int64_t n,
                           const int64_t* offsets, uint32_t* entity_rows,
                           float* priors) noexcept nogil:
    """Copy each alias's candidate rows and priors into place; -1 if corrupt."""
    cdef int64_t i, out
    cdef uint64_t j
    for i in range(n):
        if alias_rows[i] < 0:
            continue
        out = offsets[i]
        for j in range(kb.alias_starts[alias_rows[i]], kb.alias_ends[alias_rows[i]]):
            if kb.candidate_rows[j] >= kb.n_entities:
                return -1
            entity_rows[out] = kb.candidate_rows[j]
            priors[out] = kb.candidate_priors[j]
            out += 1
    return 0


cdef int merge_both(const KBData* kb, const IndexData* ix, const int64_t* alias_rows,
                    const int64_t* key_rows, int64_t n, int64_t limit, bint by_prior,
                    float discount, uint32_t* entity_rows, float* priors,
                    int64_t* found_alias_rows, int64_t* offsets) noexcept nogil:
    """Exact candidates, then the normalised ones that are not among them, at
    most limit per text; -1 if a stored row is corrupt.

    A key lists each entity once, so a normalised candidate is checked against
    the text's exact candidates only (a few: a linear scan beats any table).
    """
    cdef int64_t i, out = 0, first, exact_end, j, k, row
    cdef uint64_t slot
    cdef uint32_t entity
    cdef float prior, weight
    cdef bint duplicate
    offsets[0] = 0
    for i in range(n):
        first = out
        row = alias_rows[i]
        if row >= 0:
            for slot in range(kb.alias_starts[row], kb.alias_ends[row]):
                entity = kb.candidate_rows[slot]
                if entity >= kb.n_entities:
                    return -1
                entity_rows[out] = entity
                priors[out] = kb.candidate_priors[slot]
                found_alias_rows[out] = row
                out += 1
            if by_prior:  # insertion sort, stable: a handful of candidates
                for j in range(first + 1, out):
                    entity = entity_rows[j]
                    prior = priors[j]
                    k = j - 1
                    while k >= first and priors[k] < prior:
                        entity_rows[k + 1] = entity_rows[k]
                        priors[k + 1] = priors[k]
                        k -= 1
                    entity_rows[k + 1] = entity
                    priors[k + 1] = prior
        if limit >= 0 and out - first > limit:
            out = first + limit
        exact_end = out
        weight = discount if exact_end > first else 1.0
        row = key_rows[i]
        if row >= 0:
            for slot in range(ix.key_offsets[row], ix.key_offsets[row + 1]):
                if limit >= 0 and out - first >= limit:
                    break
                entity = ix.entity_rows[slot]
                if entity >= kb.n_entities or ix.alias_rows[slot] >= kb.n_aliases:
                    return -1
                duplicate = False
                for j in range(first, exact_end):
                    if entity_rows[j] == entity:
                        duplicate = True
                        break
                if duplicate:
                    continue
                entity_rows[out] = entity
                priors[out] = ix.priors[slot] * weight
                found_alias_rows[out] = ix.alias_rows[slot]
                out += 1
        offsets[i + 1] = out
    return 0

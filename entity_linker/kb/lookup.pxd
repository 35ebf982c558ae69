"""The nogil lookups of a KB (``KBData``, structs.pxd): hash -> row, and the
batch kernels behind ``lookup_aliases``, ``get_entity_rows`` and
``lookup_normalized`` (lookup.pyx). Other modules ``cimport`` them.

Every index read from the arrays is checked before use: a kernel returns -1
(a row lookup CORRUPT) rather than read out of range.
"""
from libc.stdint cimport int64_t, uint32_t, uint64_t, uintptr_t
from preshed.maps cimport MapStruct, map_get

from .alias_structs cimport IndexData
from .structs cimport KBData
from .tables cimport CORRUPT, NOT_FOUND, find_slot


cdef inline int64_t _map_row(const MapStruct* map_, uint64_t key,
                             uint64_t n_rows) noexcept nogil:
    """Row stored for key in a writable KB's preshed map, NOT_FOUND or CORRUPT."""
    cdef uint64_t value
    if key < 2:  # preshed's empty/deleted markers: never a KB key
        return NOT_FOUND
    value = <uint64_t><uintptr_t>map_get(map_, key)
    if value == 0:
        return NOT_FOUND
    if value > n_rows:
        return CORRUPT
    return <int64_t>(value - 1)


cdef inline int64_t entity_row_of(const KBData* kb, uint64_t key) noexcept nogil:
    """Row of an entity hash, NOT_FOUND or CORRUPT."""
    if kb.entity_map != NULL:
        return _map_row(kb.entity_map, key, kb.n_entities)
    return find_slot(kb.entity_slots, kb.entity_slots_length, key, kb.entity_hashes,
                     kb.n_entities)


cdef inline int64_t alias_row_of(const KBData* kb, uint64_t key) noexcept nogil:
    """Row of an alias hash, NOT_FOUND or CORRUPT."""
    if kb.alias_map != NULL:
        return _map_row(kb.alias_map, key, kb.n_aliases)
    return find_slot(kb.alias_slots, kb.alias_slots_length, key, kb.alias_hashes,
                     kb.n_aliases)


cdef inline bint alias_slots_ok(const KBData* kb, uint64_t alias_row) noexcept nogil:
    """Whether the candidate slots of alias_row lie inside the candidate arrays."""
    cdef uint64_t start = kb.alias_starts[alias_row]
    cdef uint64_t end = kb.alias_ends[alias_row]
    return start <= end and end <= kb.n_slots


cdef int find_entities(const KBData* kb, const uint64_t* keys, int64_t n,
                       int64_t* rows) noexcept nogil

cdef int find_aliases(const KBData* kb, const uint64_t* keys, int64_t n,
                      int64_t* alias_rows, int64_t* offsets) noexcept nogil

cdef int gather_candidates(const KBData* kb, const int64_t* alias_rows, int64_t n,
                           const int64_t* offsets, uint32_t* entity_rows,
                           float* priors) noexcept nogil

cdef int merge_both(const KBData* kb, const IndexData* ix, const int64_t* alias_rows,
                    const int64_t* key_rows, int64_t n, int64_t limit, bint by_prior,
                    float discount, uint32_t* entity_rows, float* priors,
                    int64_t* found_alias_rows, int64_t* offsets) noexcept nogil

"""The C memory layout of a knowledge base, and the lookups that read it.

A KB is a set of row-indexed arrays. Entity row e (0 <= e < n_entities) has a
hash, a frequency and one row of the vector matrix. Alias row a has a hash and
owns the candidate slots [alias_starts[a], alias_ends[a]) of the parallel
arrays candidate_rows (an entity row) and candidate_priors (p(entity | alias)).
In a saved file the slots are compact CSR: alias_ends[a] == alias_starts[a+1],
so both pointers are views into one offsets array.

Two open-addressing hash tables map entity hashes and alias hashes to rows.
Both kinds probe linearly from ``key & (length - 1)``:

- in memory (and in version 1 files) they are preshed PreshMap cells, (key,
  row + 1) pairs of 16 bytes, read by ``find_row``;
- in version 2 files they are *slot tables*: one uint32 row + 1 per slot (0 is
  empty), the key compared through the row's stored hash, read by
  ``find_slot``. A quarter of the size, for one more memory read per probe.

``entity_row_of`` / ``alias_row_of`` pick the table the KB has.

Ownership: KBData only borrows. Every pointer points into memory owned by the
Python object that holds the KBData (numpy arrays, a PreshMap, or an mmap), and
is refreshed by that object whenever the memory moves.

Thread-safety: the lookup functions only read and are safe to run concurrently
without the GIL; any mutation of the owner needs external synchronisation.
"""
from libc.stdint cimport int64_t, uint32_t, uint64_t, uintptr_t
from preshed.maps cimport Cell


cdef struct KBData:
    uint64_t n_entities
    uint64_t n_aliases
    uint64_t n_slots            # used candidate slots (may include dead slots in memory)
    uint64_t vector_length
    const uint64_t* entity_hashes     # [n_entities]
    const float* entity_freqs         # [n_entities]
    const float* vectors              # [n_entities * vector_length], row-major
    const uint64_t* alias_hashes      # [n_aliases]
    const uint64_t* alias_starts      # [n_aliases]
    const uint64_t* alias_ends        # [n_aliases]
    const uint32_t* candidate_rows    # [n_slots] entity rows
    const float* candidate_priors     # [n_slots]
    const Cell* entity_cells          # entity hash -> row + 1
    uint64_t entity_cells_length      # a power of two, or 0
    const Cell* alias_cells           # alias hash -> row + 1
    uint64_t alias_cells_length       # a power of two, or 0
    bint use_slots                    # read the slot tables below, not the cells
    const uint32_t* entity_slots      # row + 1 of entity_hashes[row]
    uint64_t entity_slots_length      # a power of two, or 0
    const uint32_t* alias_slots
    uint64_t alias_slots_length


# Sentinels returned by the lookups below.
cdef enum:
    NOT_FOUND = -1
    CORRUPT = -2    # an index read from the tables is out of range


cdef inline int64_t find_row(
    const Cell* cells, uint64_t length, uint64_t key, uint64_t n_rows
) noexcept nogil:
    """Row stored for key, NOT_FOUND, or CORRUPT when the stored row is out of range.

    The probe is bounded by the table length, so a table without empty cells
    (possible only in a corrupt file) cannot loop forever.
    """
    cdef uint64_t mask, i, probe, value
    if length == 0 or key < 2:  # 0 and 1 are preshed's empty/deleted markers
        return NOT_FOUND
    mask = length - 1
    i = key & mask
    for probe in range(length):
        if cells[i].key == key:
            value = <uint64_t><uintptr_t>cells[i].value
            if value == 0 or value > n_rows:
                return CORRUPT
            return <int64_t>(value - 1)
        if cells[i].key == 0:
            return NOT_FOUND
        i = (i + 1) & mask
    return NOT_FOUND


cdef inline bint alias_slots_ok(const KBData* kb, uint64_t alias_row) noexcept nogil:
    """Whether the candidate slots of alias_row lie inside the candidate arrays."""
    cdef uint64_t start = kb.alias_starts[alias_row]
    cdef uint64_t end = kb.alias_ends[alias_row]
    return start <= end and end <= kb.n_slots


cdef inline int64_t find_slot(
    const uint32_t* slots, uint64_t length, uint64_t key, const uint64_t* hashes,
    uint64_t n_rows
) noexcept nogil:
    """Row whose hashes[row] == key in a slot table, NOT_FOUND, or CORRUPT when a
    stored row is out of range. The probe is bounded by the table length."""
    cdef uint64_t mask, i, probe, value
    if length == 0 or key < 2:  # 0 and 1 are never stored (as in preshed)
        return NOT_FOUND
    mask = length - 1
    i = key & mask
    for probe in range(length):
        value = slots[i]
        if value == 0:
            return NOT_FOUND
        if value > n_rows:
            return CORRUPT
        if hashes[value - 1] == key:
            return <int64_t>(value - 1)
        i = (i + 1) & mask
    return NOT_FOUND


cdef inline int64_t entity_row_of(const KBData* kb, uint64_t key) noexcept nogil:
    """Row of an entity hash, NOT_FOUND or CORRUPT."""
    if kb.use_slots:
        return find_slot(kb.entity_slots, kb.entity_slots_length, key, kb.entity_hashes,
                         kb.n_entities)
    return find_row(kb.entity_cells, kb.entity_cells_length, key, kb.n_entities)


cdef inline int64_t alias_row_of(const KBData* kb, uint64_t key) noexcept nogil:
    """Row of an alias hash, NOT_FOUND or CORRUPT."""
    if kb.use_slots:
        return find_slot(kb.alias_slots, kb.alias_slots_length, key, kb.alias_hashes,
                         kb.n_aliases)
    return find_row(kb.alias_cells, kb.alias_cells_length, key, kb.n_aliases)

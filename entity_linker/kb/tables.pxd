"""Slot tables: the one hash table of 64-bit keys to rows that the KB's
lookups read (tables.pyx documents the layout and builds them).

``find_slot`` is the lookup: bounded by the table length and checking every
stored row, so a corrupt file's table can neither loop forever nor index out
of range. ``slot_for`` is the insertion probe, for tables this package builds
itself (at most half full, so an empty slot always exists).
"""
from libc.stdint cimport int64_t, uint32_t, uint64_t


# Sentinels returned by find_slot and the lookups built on it (lookup.pxd).
cdef enum:
    NOT_FOUND = -1
    CORRUPT = -2    # an index read from the tables is out of range


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


cdef inline uint64_t slot_for(const uint32_t* slots, uint64_t length, uint64_t key,
                              const uint64_t* hashes) noexcept nogil:
    """The slot holding key (hashes[slots[s] - 1] == key), or the empty slot where
    it goes. Only for tables built here: it assumes an empty slot exists."""
    cdef uint64_t mask = length - 1
    cdef uint64_t i = key & mask
    while slots[i] != 0 and hashes[slots[i] - 1] != key:
        i = (i + 1) & mask
    return i


cdef void fill_slots(uint32_t* slots, uint64_t length, const uint64_t* keys,
                     int64_t n) noexcept nogil

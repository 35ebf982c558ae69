# cython: boundscheck=False, wraparound=False
"""Slot tables: the hash tables of a KB file, of the mapped KB and of the alias index.

A slot table maps a set of 64-bit keys, stored in a separate array ``hashes``
(row i's key is hashes[i]), to their rows. It is an array of uint32 slots of
power-of-two length at least twice the number of keys; a slot holds row + 1,
or 0 when empty. A key's home slot is ``key & (length - 1)``; collisions probe
linearly (wrapping). Lookups compare the key with hashes[slot - 1]
(``tables.pxd: find_slot``), so a slot costs 4 bytes where a (key, value) cell
costs 16.

The probes (``find_slot`` to look up, ``slot_for`` to insert) are inline
functions of tables.pxd; this module fills tables (``fill_slots``) and builds
them as numpy arrays, which own their memory (``build_slots``).
"""
import numpy

from libc.stdint cimport int64_t, uint32_t, uint64_t

from ..errors import KBError

# A slot holds row + 1 in 32 bits.
MAX_ROWS = (1 << 32) - 1


cdef void fill_slots(uint32_t* slots, uint64_t length, const uint64_t* keys,
                     int64_t n) noexcept nogil:
    """Put rows 0..n-1 of keys (distinct, n <= length / 2) into an empty table."""
    cdef int64_t i
    for i in range(n):
        slots[slot_for(slots, length, keys[i], keys)] = <uint32_t>(i + 1)


def slot_table_length(uint64_t n) -> int:
    """The length of the slot table the writer builds for n keys."""
    if n > MAX_ROWS:
        raise KBError(f"A KB table holds at most {MAX_ROWS:,} rows, got {n:,}.")
    cdef uint64_t length = 8
    while length < 2 * n:
        length *= 2
    return length


def build_slots(hashes) -> numpy.ndarray:
    """A slot table for ``hashes`` (distinct keys >= 2): uint32 array of row + 1."""
    cdef const uint64_t[::1] keys = numpy.ascontiguousarray(hashes, dtype=numpy.uint64)
    cdef uint64_t n = keys.shape[0]
    cdef uint64_t length = slot_table_length(n)
    slots = numpy.zeros(length, dtype=numpy.uint32)
    cdef uint32_t[::1] out = slots
    if n:
        with nogil:
            fill_slots(&out[0], length, &keys[0], n)
    return slots

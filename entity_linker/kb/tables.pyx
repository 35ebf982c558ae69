# cython: boundscheck=False, wraparound=False
"""The hash tables stored in a KB file: slot tables.

A slot table maps a set of 64-bit keys, stored in a separate array ``hashes``
(row i's key is hashes[i]), to their rows. It is an array of uint32 slots of
power-of-two length at least twice the number of keys; a slot holds row + 1,
or 0 when empty. A key's home slot is ``key & (length - 1)``; collisions probe
linearly (wrapping). Lookups compare the key with hashes[slot - 1]
(``structs.find_slot``), so a slot costs 4 bytes where a (key, value) cell
costs 16.
"""
import numpy

from libc.stdint cimport uint32_t, uint64_t

from ..errors import KBError

# A slot holds row + 1 in 32 bits.
MAX_ROWS = (1 << 32) - 1


def build_slots(hashes) -> numpy.ndarray:
    """A slot table for ``hashes`` (distinct keys >= 2): uint32 array of row + 1."""
    cdef const uint64_t[::1] keys = numpy.ascontiguousarray(hashes, dtype=numpy.uint64)
    cdef uint64_t n = keys.shape[0]
    if n > MAX_ROWS:
        raise KBError(f"A KB table holds at most {MAX_ROWS:,} rows, got {n:,}.")
    cdef uint64_t length = 8
    while length < 2 * n:
        length *= 2
    slots = numpy.zeros(length, dtype=numpy.uint32)
    cdef uint32_t[::1] out = slots
    cdef uint64_t mask = length - 1, i, slot
    with nogil:
        for i in range(n):
            slot = keys[i] & mask
            while out[slot] != 0:
                slot = (slot + 1) & mask
            out[slot] = <uint32_t>(i + 1)
    return slots

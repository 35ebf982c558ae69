"""The C memory layout of a knowledge base: ``KBData``.

A KB is a set of row-indexed arrays. Entity row e (0 <= e < n_entities) has a
hash, a frequency and one row of the vector matrix. Alias row a has a hash and
owns the candidate slots [alias_starts[a], alias_ends[a]) of the parallel
arrays candidate_rows (an entity row) and candidate_priors (p(entity | alias)).
In a saved file the slots are compact CSR: alias_ends[a] == alias_starts[a+1],
so both pointers are views into one offsets array.

Two hash tables map entity hashes and alias hashes to rows:

- while the KB is writable, preshed ``PreshMap``s (hash -> row + 1), read
  through preshed's own ``map_get``;
- once it is a view of a file (or bytes), uint32 *slot tables* (tables.pxd):
  row + 1 per slot, the key compared through the row's stored hash. A version
  1 file's preshed-layout cells are turned into slot tables when it is opened.

Exactly one of the two is set: ``entity_map``/``alias_map`` are NULL for a
mapped KB. The lookups that read this struct are in lookup.pxd.

Ownership: KBData only borrows. Every pointer points into memory owned by the
Python object that holds the KBData (numpy arrays, a PreshMap's cymem Pool, or
an mmap), and is refreshed by that object whenever the memory moves. A
PreshMap's MapStruct itself never moves (preshed resizes its cells inside it).

Thread-safety: the lookups only read and are safe to run concurrently
without the GIL; any mutation of the owner needs external synchronisation.
"""
from libc.stdint cimport uint32_t, uint64_t
from preshed.maps cimport MapStruct


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
    const MapStruct* entity_map       # writable: entity hash -> row + 1; else NULL
    const MapStruct* alias_map        # writable: alias hash -> row + 1; else NULL
    const uint32_t* entity_slots      # mapped: slot table of entity_hashes
    uint64_t entity_slots_length      # a power of two, or 0
    const uint32_t* alias_slots       # mapped: slot table of alias_hashes
    uint64_t alias_slots_length

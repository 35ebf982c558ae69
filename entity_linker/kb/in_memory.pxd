from libc.stdint cimport int64_t, uint32_t, uint64_t
from preshed.maps cimport PreshMap

from .candidate cimport Candidate
from .kb cimport KnowledgeBase
from .strings cimport StringTable
from .structs cimport KBData


cdef class InMemoryLookupKB(KnowledgeBase):
    cdef KBData c
    # Hash -> row + 1 while the KB is writable; None once it is memory-mapped.
    cdef PreshMap _entity_map
    cdef PreshMap _alias_map
    # Storage (numpy arrays with spare capacity, or read-only views of a mapping).
    cdef object _entity_hashes
    cdef object _entity_freqs
    cdef object _vectors
    cdef object _alias_hashes
    cdef object _alias_starts
    cdef object _alias_ends
    cdef object _candidate_rows
    cdef object _candidate_priors
    # The entity ids and alias texts (strings.pyx).
    cdef StringTable _entity_ids
    cdef StringTable _alias_texts
    # The slot tables of a mapped KB (uint32, tables.pyx; built at open from a
    # version 1 file's hashes); None while writable.
    cdef object _entity_table
    cdef object _alias_table
    cdef uint64_t _n_dead_slots
    # The object that owns mapped memory (an mmap or bytes), and where it came from.
    cdef object _buffer
    cdef object _path
    # The normalised/trigram alias index (alias_index.pyx), or None.
    cdef object _index
    # Whether _index is the one stored in the mapped file (to_disk can copy the file).
    cdef bint _index_in_file
    # Each entity's parent rows (relations.py).
    cdef object _relations
    # Each entity's display name (names.py).
    cdef object _names
    # Whether add_entity/set_entities/add_alias also add their strings to the vocab.
    cdef bint _add_to_vocab

    cdef void _sync(self)
    cdef int64_t _entity_row(self, uint64_t entity_hash) except -2
    cdef int64_t _alias_row(self, uint64_t alias_hash) except -2
    cdef Candidate _candidate(self, vectors, uint32_t row, uint64_t alias_hash,
                              int64_t alias_row, float prior)

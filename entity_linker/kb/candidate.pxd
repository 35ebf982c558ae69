from libc.stdint cimport int64_t, uint64_t

from .kb cimport KnowledgeBase


cdef class Candidate:
    cdef readonly KnowledgeBase kb
    cdef uint64_t entity_hash
    cdef float entity_freq
    cdef object _entity_vector
    cdef uint64_t alias_hash
    cdef float prior_prob
    # Rows in the KB's tables (-1 when unknown) to resolve strings without the vocab.
    cdef int64_t entity_row
    cdef int64_t alias_row

cdef class KnowledgeBase:
    cdef readonly object vocab
    cdef public int entity_vector_length

from cymem.cymem cimport Pool


cdef class KnowledgeBase:
    cdef Pool mem
    cdef readonly object vocab
    cdef public int entity_vector_length

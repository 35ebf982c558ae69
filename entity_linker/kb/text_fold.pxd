from cymem.cymem cimport Pool


cdef class TextFolder:
    cdef dict expansions  # the ASCII ones, as UTF-8 bytes
    cdef Py_ssize_t longest_key
    cdef Py_ssize_t longest_value
    cdef dict words  # all expansions, as str
    cdef Py_ssize_t longest_word
    cdef Py_ssize_t longest_replacement
    cdef Pool mem
    cdef char* buffer
    cdef size_t capacity
    cdef Py_UCS4* wide  # the folded code points of a non-ASCII text
    cdef size_t wide_capacity

    cdef Py_ssize_t fold(self, str text, const char** utf8, Py_ssize_t* length) except -2
    cdef str fold_unicode(self, str text)
    cdef str normalize(self, str text)

"""spaCy-compatible string hashes: 64-bit murmurhash of the UTF-8 bytes, seed 1.

These equal ``vocab.strings[s]`` for every string except the empty string
(hash 0) and spaCy's few hundred reserved symbol names (e.g. "PERSON"), which
the StringStore maps to small fixed ids instead.
"""
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport uint64_t
from murmurhash.mrmr cimport hash64


cdef uint64_t hash_utf8(const char* utf8, Py_ssize_t length) noexcept nogil:
    if length == 0:
        return 0
    return hash64(<void*>utf8, <int>length, 1)


cpdef uint64_t hash_string(str string) except? 0:
    """Hash a string the way spaCy's StringStore does.

    string (str): The string to hash.
    RETURNS (int): The unsigned 64-bit hash (0 for the empty string).
    """
    cdef Py_ssize_t length
    cdef const char* utf8 = PyUnicode_AsUTF8AndSize(string, &length)
    return hash_utf8(utf8, length)

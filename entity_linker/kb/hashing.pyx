"""spaCy-compatible string hashes: 64-bit murmurhash of the UTF-8 bytes, seed 1.

These equal ``vocab.strings[s]`` for every string except the empty string
(hash 0) and spaCy's few hundred reserved symbol names (e.g. "PERSON"), which
the StringStore maps to small fixed ids instead.
"""
import numpy

from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport uint64_t
from murmurhash.mrmr cimport hash64

from ..errors import KBTypeError


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


def hash_strings(strings) -> numpy.ndarray:
    """Hash many strings at once.

    strings (Sequence[str]): The strings.
    RETURNS (numpy.ndarray): uint64 hashes, one per string.
    """
    strings = strings if isinstance(strings, (list, tuple)) else list(strings)
    hashes = numpy.empty(len(strings), dtype=numpy.uint64)
    cdef uint64_t[::1] out = hashes
    cdef Py_ssize_t length, i = 0
    cdef const char* utf8
    for text in strings:
        if not isinstance(text, str):
            raise KBTypeError(
                f"Expected str, got {type(text).__name__} {text!r} at position {i}."
            )
        utf8 = PyUnicode_AsUTF8AndSize(text, &length)
        out[i] = hash_utf8(utf8, length)
        i += 1
    return hashes


def has_duplicates(hashes) -> bool:
    """Whether any hash occurs twice (by a sort: numpy.unique is slower here)."""
    ordered = numpy.sort(hashes)
    return bool((ordered[1:] == ordered[:-1]).any())

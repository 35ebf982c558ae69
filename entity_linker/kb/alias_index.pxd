from libc.stdint cimport int64_t, uint64_t

from .alias_structs cimport IndexData
from .text_fold cimport TextFolder


cdef int find_keys(const IndexData* ix, const uint64_t* hashes, int64_t n, int64_t* key_rows,
                   int64_t* offsets) noexcept nogil


cdef class AliasIndex:
    cdef IndexData c
    cdef dict _arrays
    cdef readonly object normalizer
    cdef readonly bint has_fuzzy
    cdef object _source
    # The normaliser, done in C.
    cdef TextFolder _folder

    cdef void _sync(self)

from libc.stdint cimport int64_t, uint64_t


cdef class StringTable:
    # offsets[i]..offsets[i + 1] delimit string i in blob. Writable: numpy
    # arrays with spare capacity (uint64 offsets); mapped: read-only views of
    # the file (uint64 or uint32 offsets), checked where they are read.
    cdef readonly object offsets
    cdef readonly object blob
    cdef readonly uint64_t n         # strings stored
    cdef readonly uint64_t n_bytes   # bytes of blob used
    cdef object path                 # the mapped file (for errors), or None

    cdef void add(self, const char* utf8, uint64_t length)
cdef object grown(object array, uint64_t used, uint64_t needed)

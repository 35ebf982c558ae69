from libc.stdint cimport uint64_t


cdef uint64_t hash_utf8(const char* utf8, Py_ssize_t length) noexcept nogil
cpdef uint64_t hash_string(str string) except? 0

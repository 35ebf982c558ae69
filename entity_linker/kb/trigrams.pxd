from libc.stdint cimport int64_t, uint32_t, uint64_t

from .alias_structs cimport IndexData


cdef int64_t _search(const IndexData* ix, const uint64_t* query, int64_t q,
                     double min_score, int64_t max_keys, uint64_t* state, uint64_t* stamp,
                     uint32_t* touched, int64_t* ranges,
                     int64_t* out_keys, float* out_scores) noexcept nogil

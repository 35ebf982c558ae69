from cymem.cymem cimport Pool
from libc.stdint cimport int64_t, uint32_t, uint64_t


cdef struct IndexData:
    uint64_t n_keys             # distinct normalised aliases
    uint64_t n_slots            # (key, entity) candidate slots
    uint64_t n_grams            # distinct character trigrams (0 without the fuzzy index)
    uint64_t n_postings
    uint64_t n_entities         # bounds for the rows stored in the slots
    uint64_t n_aliases
    const uint64_t* key_offsets       # [n_keys + 1] CSR into the slots
    const uint32_t* entity_rows       # [n_slots]
    const float* priors               # [n_slots] max p(entity | alias) over the key's aliases
    const uint32_t* alias_rows        # [n_slots] the alias that gave the prior
    const uint64_t* key_hashes        # [n_keys] hash of each normalised key
    const uint32_t* key_slots         # slot table: key row + 1 (tables.pyx)
    uint64_t key_slots_length
    const uint32_t* key_gram_counts   # [n_keys] distinct trigrams of each key
    const uint64_t* gram_offsets      # [n_grams + 1] CSR into the postings
    const uint32_t* postings          # [n_postings] key rows, ascending within a gram
    const uint64_t* gram_keys         # [n_grams]
    const uint32_t* gram_slots        # slot table: gram row + 1
    uint64_t gram_slots_length


cdef int find_keys(const IndexData* ix, const uint64_t* hashes, int64_t n, int64_t* key_rows,
                   int64_t* offsets) noexcept nogil


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


cdef class AliasIndex:
    cdef IndexData c
    cdef dict _arrays
    cdef readonly object normalizer
    cdef readonly bint has_fuzzy
    cdef object _source
    # The normaliser, done in C.
    cdef TextFolder _folder

    cdef void _sync(self)

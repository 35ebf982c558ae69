"""The C layout of the alias index (alias_index.pyx, trigrams.pyx): ``IndexData``.

Views of the index's arrays: the normalised keys' CSR of candidate slots and
their hash table, and the trigram index's posting lists and hash table.
"""
from libc.stdint cimport uint32_t, uint64_t


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

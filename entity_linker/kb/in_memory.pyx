# cython: infer_types=True
"""InMemoryLookupKB: spaCy's in-memory KB API on flat, contiguous tables.

Layout (see structs.pxd): entities and aliases are rows of numpy arrays; the
vectors are one float32 matrix; aliases own CSR-style slices of two parallel
candidate arrays; two hash tables map string hashes to rows. While the KB is
writable the hash tables are preshed PreshMaps; after ``from_disk`` or
``from_bytes`` every array is a read-only view of the file's bytes (memory-
mapped from disk) and the hash tables are slot tables (tables.pyx).

This module is the face: the spaCy API, the KB's storage and its growth, and
the mutations. The rest is in its own module:

- strings.pyx: the string tables (entity ids, alias texts);
- lookup.pyx/.pxd: the nogil hash probes and batch lookup kernels;
- builders.pyx: validation and preparation of bulk builds (from_arrays ...);
- serialize.pyx: to_disk/from_disk/to_bytes/from_bytes and pickling;
- alias_index.pyx (with trigrams.pyx, text_fold.pyx), relations.py, names.py:
  the normalised/fuzzy alias index, the entities' parents and their display
  names.

Why this file is over 600 lines: spaCy's KnowledgeBase API is one class
(``InMemoryLookupKB`` subclasses it, and spaCy calls its methods on the one
object), and a cdef class's methods cannot live in another module. What is
left here is that API (add_entity, add_alias, set_entities, get_candidates,
get_vector, ...), its storage (the tables, their growth) and the mutations
that must keep those tables consistent; every part that is not a method of
the class has already moved out (the list above).

The KB keeps its own string table (entity ids and alias texts, UTF-8), so it
resolves its strings without the pipeline's vocab. As in spaCy, ``add_entity``
and ``add_alias`` also add the string to ``vocab.strings``; opening a file does
not, unless asked (``add_to_vocab=True``).
"""
import numbers
import warnings
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy

cimport numpy as cnp
from libc.float cimport FLT_MAX
from libc.math cimport fabs
from libc.stdint cimport int64_t, uint32_t, uint64_t, uintptr_t
from preshed.maps cimport PreshMap

from ..errors import (
    KBError,
    KBTypeError,
    KBWarning,
    LengthMismatchError,
    ProbabilityError,
    ReadOnlyKBError,
    UnknownAliasError,
    UnknownEntityError,
    VectorError,
)
from . import format as kb_format
from . import serialize
from .builders import (
    checked_vectors,
    prepare_arrays,
    prepare_entities,
    records_arrays,
    small_priors,
    spacy_arrays,
    vector_matrix,
)
from .hashing import hash_strings
from .names import EntityNames
from .normalize import AliasNormalizer
from .relations import EntityRelations
from .strings import check_string, check_type, corrupt_error

from .alias_index cimport AliasIndex, find_keys
from .candidate cimport Candidate
from .hashing cimport hash_string
from .kb cimport KnowledgeBase
from .lookup cimport (
    alias_row_of,
    alias_slots_ok,
    entity_row_of,
    find_aliases,
    find_entities,
    gather_candidates,
    merge_both,
)
from .strings cimport StringTable, grown
from .tables cimport CORRUPT

cnp.import_array()

PROB_SUM_TOLERANCE = kb_format.PROB_SUM_TOLERANCE
MAX_VECTOR_LENGTH = kb_format.MAX_VECTOR_LENGTH


cdef inline void* _ptr(object array):
    return cnp.PyArray_DATA(<cnp.ndarray>array)


def _corrupt(kb):
    return corrupt_error(kb.path)


cdef class InMemoryLookupKB(KnowledgeBase):
    """A knowledge base of entities, aliases, priors and entity vectors.

    Same API as ``spacy.kb.InMemoryLookupKB`` (``add_entity``, ``add_alias``,
    ``get_candidates`` ...) plus batch lookups (``lookup_aliases``), bulk
    construction (``from_arrays``, ``from_records``), a zero-copy vector
    matrix (``vectors``) and instant, memory-mapped loading (``from_disk``).
    """

    def __init__(self, vocab, entity_vector_length, *, add_to_vocab: bool = False):
        """Create an empty, writable KB.

        vocab (Vocab): The shared vocab.
        entity_vector_length (int): Length of every entity vector.
        add_to_vocab (bool): Also add every entity id and alias to
            ``vocab.strings`` as add_entity, set_entities and add_alias see
            them, as spaCy's KB does. The KB keeps its own string table, so
            nothing here needs them; they cost about as much memory as the KB
            without its vectors (540 MB for 1M entities and 2M aliases).
        """
        if isinstance(entity_vector_length, bool) or not isinstance(
            entity_vector_length, numbers.Integral
        ):
            raise KBTypeError(
                f"entity_vector_length must be an int, got {entity_vector_length!r}."
            )
        entity_vector_length = int(entity_vector_length)
        if not 0 <= entity_vector_length <= MAX_VECTOR_LENGTH:
            raise VectorError(
                f"entity_vector_length must be in [0, {MAX_VECTOR_LENGTH}], got "
                f"{entity_vector_length}."
            )
        super().__init__(vocab, entity_vector_length)
        self._add_to_vocab = bool(add_to_vocab)
        self._reset()

    def _reset(self):
        """Empty, writable storage."""
        L = self.entity_vector_length
        self._entity_map = PreshMap()
        self._alias_map = PreshMap()
        self._entity_hashes = numpy.zeros(0, dtype=numpy.uint64)
        self._entity_freqs = numpy.zeros(0, dtype=numpy.float32)
        self._vectors = numpy.zeros((0, L), dtype=numpy.float32)
        self._entity_ids = StringTable()
        self._alias_hashes = numpy.zeros(0, dtype=numpy.uint64)
        self._alias_starts = numpy.zeros(0, dtype=numpy.uint64)
        self._alias_ends = numpy.zeros(0, dtype=numpy.uint64)
        self._alias_texts = StringTable()
        self._candidate_rows = numpy.zeros(0, dtype=numpy.uint32)
        self._candidate_priors = numpy.zeros(0, dtype=numpy.float32)
        self._entity_table = None
        self._alias_table = None
        self._n_dead_slots = 0
        self._buffer = None
        self._path = None
        self._index = None
        self._index_in_file = False
        self._relations = EntityRelations()
        self._names = EntityNames()
        self.c.n_entities = 0
        self.c.n_aliases = 0
        self.c.n_slots = 0
        self.c.vector_length = self.entity_vector_length
        self._sync()

    cdef void _sync(self):
        """Point the C view at the current storage (call after any reallocation)."""
        self.c.vector_length = self.entity_vector_length
        self.c.entity_hashes = <const uint64_t*>_ptr(self._entity_hashes)
        self.c.entity_freqs = <const float*>_ptr(self._entity_freqs)
        self.c.vectors = <const float*>_ptr(self._vectors)
        self.c.alias_hashes = <const uint64_t*>_ptr(self._alias_hashes)
        self.c.alias_starts = <const uint64_t*>_ptr(self._alias_starts)
        self.c.alias_ends = <const uint64_t*>_ptr(self._alias_ends)
        self.c.candidate_rows = <const uint32_t*>_ptr(self._candidate_rows)
        self.c.candidate_priors = <const float*>_ptr(self._candidate_priors)
        if self._entity_map is not None:  # writable: preshed maps
            self.c.entity_map = self._entity_map.c_map
            self.c.alias_map = self._alias_map.c_map
            self.c.entity_slots = NULL
            self.c.entity_slots_length = 0
            self.c.alias_slots = NULL
            self.c.alias_slots_length = 0
        else:  # mapped: slot tables
            self.c.entity_map = NULL
            self.c.alias_map = NULL
            self.c.entity_slots = <const uint32_t*>_ptr(self._entity_table)
            self.c.entity_slots_length = len(self._entity_table)
            self.c.alias_slots = <const uint32_t*>_ptr(self._alias_table)
            self.c.alias_slots_length = len(self._alias_table)

    cdef int64_t _entity_row(self, uint64_t entity_hash) except -2:
        row = entity_row_of(&self.c, entity_hash)
        if row == CORRUPT:
            raise _corrupt(self)
        return row

    cdef int64_t _alias_row(self, uint64_t alias_hash) except -2:
        row = alias_row_of(&self.c, alias_hash)
        if row == CORRUPT:
            raise _corrupt(self)
        return row

    # ------------------------------------------------------------------ sizes

    @property
    def is_read_only(self) -> bool:
        """Whether the KB is a read-only view of a file or bytes (see ``copy()``)."""
        return self._entity_map is None

    def is_empty(self) -> bool:
        """RETURNS (bool): whether the KB holds no entities."""
        return self.c.n_entities == 0

    def __len__(self) -> int:
        return self.c.n_entities

    def get_size_entities(self) -> int:
        """RETURNS (int): the number of entities."""
        return self.c.n_entities

    def get_size_aliases(self) -> int:
        """RETURNS (int): the number of aliases."""
        return self.c.n_aliases

    def get_entity_strings(self) -> list:
        """RETURNS (List[str]): every entity id, in row order."""
        return self._entity_ids.decode_all()

    def get_alias_strings(self) -> list:
        """RETURNS (List[str]): every alias, in row order."""
        return self._alias_texts.decode_all()

    def _entity_string(self, entity_hash, entity_row):
        if entity_row < 0:
            entity_row = self._entity_row(entity_hash)
            if entity_row < 0:
                return self.vocab.strings[entity_hash]
        return self._entity_ids.decode(entity_row)

    def _alias_string(self, alias_hash, alias_row):
        if alias_row < 0:
            alias_row = self._alias_row(alias_hash)
            if alias_row < 0:
                return self.vocab.strings[alias_hash]
        return self._alias_texts.decode(alias_row)

    def get_entity_id(self, int64_t row) -> str:
        """The entity id (string) stored at a row (see ``lookup_aliases``)."""
        return self._entity_ids.decode(row)

    # ---------------------------------------------------------- zero-copy views

    @property
    def vectors(self):
        """Read-only (n_entities, entity_vector_length) float32 view of all vectors.

        Row i belongs to the entity at row i (``get_entity_id(i)``). No copy is
        made; after the KB grows, take the view again.
        """
        view = self._vectors[: self.c.n_entities]
        view.flags.writeable = False
        return view

    @property
    def entity_hashes(self):
        """Read-only uint64 view of the entity hashes, in row order."""
        view = self._entity_hashes[: self.c.n_entities]
        view.flags.writeable = False
        return view

    @property
    def entity_freqs(self):
        """Read-only float32 view of the entity frequencies, in row order."""
        view = self._entity_freqs[: self.c.n_entities]
        view.flags.writeable = False
        return view

    # -------------------------------------------------------------- mutation

    def _check_writable(self):
        if self._entity_map is None:
            raise ReadOnlyKBError(
                f"This KB is a read-only memory map of {self._path or 'bytes'} and cannot "
                "change. Call kb.copy() for a writable in-memory copy."
            )

    def _aliases_changed(self):
        """Drop the alias index: it describes the aliases as they were."""
        if self._index is not None:
            warnings.warn(
                "The KB's aliases changed, so its normalised/fuzzy alias index was "
                "dropped. Call kb.build_alias_index() again once the aliases are final.",
                KBWarning,
            )
        self._index = None

    def add_entity(self, entity, freq, entity_vector) -> Optional[int]:
        """Add an entity with its frequency and vector.

        A duplicate entity is not added: a warning is given and the first kept.
        RETURNS (int): the entity hash, or None for a duplicate.
        """
        self._check_writable()
        check_string(entity, "entity id")
        try:
            freq = float(freq)
        except (TypeError, ValueError):
            raise KBTypeError(
                f"The frequency of entity {entity!r} must be a number, got {freq!r}."
            ) from None
        if not fabs(<double>freq) <= FLT_MAX:  # NaN, inf, or inf as a float32
            raise KBError(
                f"The frequency of entity {entity!r} must be a finite float32, got {freq}."
            )
        entity_hash = hash_string(entity)
        if self._entity_row(entity_hash) >= 0:
            warnings.warn(
                f"Entity {entity!r} already exists in the KB; the first one is kept.",
                KBWarning,
            )
            return None
        cdef uint64_t n = self.c.n_entities
        encoded = entity.encode("utf8")
        self._reserve_entities(n + 1, self._entity_ids.n_bytes + len(encoded))
        self._write_vector(n, entity_vector, entity)
        if self._add_to_vocab:
            self.vocab.strings.add(entity)
        (<uint64_t*>_ptr(self._entity_hashes))[n] = entity_hash
        (<float*>_ptr(self._entity_freqs))[n] = freq
        self._entity_ids.add(<char*>encoded, len(encoded))
        self._entity_map.set(entity_hash, <void*><uintptr_t>(n + 1))
        self.c.n_entities = n + 1
        return entity_hash

    def _reserve_entities(self, uint64_t rows, uint64_t n_bytes):
        """Grow the entity arrays (x1.5) to hold ``rows`` rows and ``n_bytes`` of ids."""
        cdef uint64_t n = self.c.n_entities
        # Each array is checked: their capacities need not be equal.
        if (rows > min(self._entity_hashes.shape[0], self._entity_freqs.shape[0],
                       self._vectors.shape[0])
                or rows + 1 > self._entity_ids.offsets.shape[0]
                or n_bytes > self._entity_ids.blob.shape[0]):
            self._entity_hashes = grown(self._entity_hashes, n, rows)
            self._entity_freqs = grown(self._entity_freqs, n, rows)
            self._vectors = grown(self._vectors, n, rows)
            self._entity_ids.reserve(rows, n_bytes)
            self._sync()

    def _write_vector(self, uint64_t row, entity_vector, entity):
        """Check one entity vector and write it to a spare row of the matrix."""
        cdef int L = self.entity_vector_length
        cdef float* out = <float*>_ptr(self._vectors) + row * L
        cdef double value
        cdef int j
        if isinstance(entity_vector, (list, tuple)) and len(entity_vector) == L:
            for j in range(L):
                try:
                    value = entity_vector[j]
                except TypeError:
                    break  # not a number: the numpy path below explains
                if not fabs(value) <= FLT_MAX:
                    raise VectorError(f"The vector of entity {entity!r} holds NaN or inf.")
                out[j] = <float>value
            else:
                return
        vector = checked_vectors(entity_vector, 1, L, f"entity {entity!r}")
        self._vectors[row] = vector[0]

    def _append_entities(self, hashes, freqs, vectors, strings):
        """Append validated, de-duplicated entities (no checks here)."""
        cdef uint64_t n = self.c.n_entities
        cdef uint64_t k = len(hashes)
        cdef uint64_t i
        if hashes.size and int(hashes.min()) < 2:
            raise KBError("An id hashes to a value reserved by preshed (0 or 1); rename it.")
        self._entity_hashes = grown(self._entity_hashes, n, n + k)
        self._entity_freqs = grown(self._entity_freqs, n, n + k)
        self._vectors = grown(self._vectors, n, n + k)
        self._entity_hashes[n : n + k] = hashes
        self._entity_freqs[n : n + k] = freqs
        self._vectors[n : n + k] = vectors
        self._entity_ids.extend(strings)
        cdef const uint64_t[::1] new_hashes = hashes
        for i in range(k):
            self._entity_map.set(new_hashes[i], <void*><uintptr_t>(n + i + 1))
        self.c.n_entities = n + k
        self._sync()

    def set_entities(self, entity_list, freq_list, vector_list) -> None:
        """Replace all entities by the given ones (before any alias is added).

        Duplicate ids are warned about and the first kept, as in spaCy.
        """
        self._check_writable()
        if not (len(entity_list) == len(freq_list) == len(vector_list)):
            raise LengthMismatchError(
                f"set_entities got {len(entity_list)} entities, {len(freq_list)} "
                f"frequencies and {len(vector_list)} vectors; the three lists must "
                "have the same length."
            )
        if self.c.n_aliases:
            raise KBError(
                "set_entities replaces every entity, but this KB already has "
                f"{self.c.n_aliases} aliases pointing at them. Call set_entities before "
                "add_alias, or use add_entity to add more entities."
            )
        entity_list = list(entity_list)
        prepared = prepare_entities(entity_list, freq_list, vector_list,
                                    self.entity_vector_length)
        if self._add_to_vocab:
            for entity in entity_list:
                self.vocab.strings.add(entity)
        self._entity_map = PreshMap(max(8, 2 * len(entity_list)))
        L = self.entity_vector_length
        self._entity_hashes = numpy.zeros(0, dtype=numpy.uint64)
        self._entity_freqs = numpy.zeros(0, dtype=numpy.float32)
        self._vectors = numpy.zeros((0, L), dtype=numpy.float32)
        self._entity_ids = StringTable()
        self.c.n_entities = 0
        self._relations = EntityRelations()
        self._names = EntityNames()
        self._sync()
        self._append_entities(*prepared[:4])

    def contains_entity(self, entity) -> bool:
        """RETURNS (bool): whether the entity id is in the KB."""
        return self._entity_row(hash_string(check_type(entity, "entity id"))) >= 0

    def contains_alias(self, alias) -> bool:
        """RETURNS (bool): whether the alias is in the KB."""
        return self._alias_row(hash_string(check_type(alias, "alias"))) >= 0

    def add_alias(self, alias, entities, probabilities):
        """Add an alias with its candidate entities and their prior probabilities.

        A duplicate alias is not added: a warning is given and the first kept.
        RETURNS (int): the alias hash, or None for a duplicate.
        """
        self._check_writable()
        check_string(alias, "alias")
        if len(entities) != len(probabilities):
            raise LengthMismatchError(
                f"Alias {alias!r} got {len(entities)} entities but {len(probabilities)} "
                "prior probabilities; give one probability per entity."
            )
        priors = small_priors(alias, probabilities)
        alias_hash = hash_string(alias)
        if self._alias_row(alias_hash) >= 0:
            warnings.warn(
                f"Alias {alias!r} already exists in the KB; the first one is kept.",
                KBWarning,
            )
            return None
        rows = []
        for entity in entities:
            check_string(entity, f"entity of alias {alias!r}")
            row = self._entity_row(hash_string(entity))
            if row < 0:
                raise UnknownEntityError(
                    f"Alias {alias!r} refers to entity {entity!r}, which is not in the KB. "
                    "Add the entity with add_entity first."
                )
            rows.append(row)
        self._aliases_changed()
        if self._add_to_vocab:
            self.vocab.strings.add(alias)
        cdef uint64_t n = self.c.n_aliases
        cdef uint64_t slots = self.c.n_slots
        cdef uint64_t k = len(rows)
        cdef uint64_t j
        encoded = alias.encode("utf8")
        self._reserve_aliases(n + 1, slots + k, self._alias_texts.n_bytes + len(encoded))
        cdef uint32_t* cand_rows = <uint32_t*>_ptr(self._candidate_rows)
        cdef float* cand_priors = <float*>_ptr(self._candidate_priors)
        for j in range(k):
            cand_rows[slots + j] = rows[j]
            cand_priors[slots + j] = priors[j]
        (<uint64_t*>_ptr(self._alias_hashes))[n] = alias_hash
        (<uint64_t*>_ptr(self._alias_starts))[n] = slots
        (<uint64_t*>_ptr(self._alias_ends))[n] = slots + k
        self._alias_texts.add(<char*>encoded, len(encoded))
        self._alias_map.set(alias_hash, <void*><uintptr_t>(n + 1))
        self.c.n_aliases = n + 1
        self.c.n_slots = slots + k
        return alias_hash

    def _reserve_aliases(self, uint64_t rows, uint64_t slots, uint64_t n_bytes):
        """Grow the alias and candidate arrays (x1.5) to hold the given sizes."""
        cdef uint64_t n = self.c.n_aliases
        if slots > min(self._candidate_rows.shape[0], self._candidate_priors.shape[0]):
            self._candidate_rows = grown(self._candidate_rows, self.c.n_slots, slots)
            self._candidate_priors = grown(self._candidate_priors, self.c.n_slots, slots)
            self._sync()
        if (rows > min(self._alias_hashes.shape[0], self._alias_starts.shape[0],
                       self._alias_ends.shape[0])
                or rows + 1 > self._alias_texts.offsets.shape[0]
                or n_bytes > self._alias_texts.blob.shape[0]):
            self._alias_hashes = grown(self._alias_hashes, n, rows)
            self._alias_starts = grown(self._alias_starts, n, rows)
            self._alias_ends = grown(self._alias_ends, n, rows)
            self._alias_texts.reserve(rows, n_bytes)
            self._sync()

    def _append_aliases(self, hashes, strings, offsets, rows, priors):
        """Append validated aliases; offsets (len(hashes) + 1) index rows/priors."""
        self._aliases_changed()
        cdef uint64_t n = self.c.n_aliases
        cdef uint64_t k = len(hashes)
        cdef uint64_t slots = self.c.n_slots
        cdef uint64_t n_new = len(rows)
        cdef uint64_t i
        if hashes.size and int(hashes.min()) < 2:
            raise KBError("An alias hashes to a value reserved by preshed (0 or 1).")
        self._candidate_rows = grown(self._candidate_rows, slots, slots + n_new)
        self._candidate_priors = grown(self._candidate_priors, slots, slots + n_new)
        self._candidate_rows[slots : slots + n_new] = rows
        self._candidate_priors[slots : slots + n_new] = priors
        self._alias_hashes = grown(self._alias_hashes, n, n + k)
        self._alias_starts = grown(self._alias_starts, n, n + k)
        self._alias_ends = grown(self._alias_ends, n, n + k)
        self._alias_hashes[n : n + k] = hashes
        self._alias_starts[n : n + k] = slots + offsets[:-1]
        self._alias_ends[n : n + k] = slots + offsets[1:]
        self._alias_texts.extend(strings)
        cdef const uint64_t[::1] new_hashes = hashes
        for i in range(k):
            self._alias_map.set(new_hashes[i], <void*><uintptr_t>(n + i + 1))
        self.c.n_aliases = n + k
        self.c.n_slots = slots + n_new
        self._sync()

    def append_alias(self, alias, entity, prior_prob, ignore_warnings=False) -> None:
        """Add one more candidate entity to an existing alias.

        Prefer add_alias with all candidates at once: it is faster.
        """
        self._check_writable()
        check_string(alias, "alias")
        check_string(entity, "entity id")
        alias_row = self._alias_row(hash_string(alias))
        if alias_row < 0:
            raise UnknownAliasError(
                f"Alias {alias!r} is not in the KB; add it with add_alias first."
            )
        entity_row = self._entity_row(hash_string(entity))
        if entity_row < 0:
            raise UnknownEntityError(
                f"Entity {entity!r} is not in the KB; add it with add_entity first."
            )
        prior = small_priors(alias, [prior_prob])[0]
        start = int(self._alias_starts[alias_row])
        end = int(self._alias_ends[alias_row])
        current = self._candidate_priors[start:end].astype(numpy.float64).sum()
        if current + prior > PROB_SUM_TOLERANCE:
            raise ProbabilityError(
                f"Adding {prior} to alias {alias!r} makes its prior probabilities sum to "
                f"{current + prior:.6g}, more than 1."
            )
        if (self._candidate_rows[start:end] == entity_row).any():
            if not ignore_warnings:
                warnings.warn(
                    f"Entity {entity!r} is already a candidate of alias {alias!r}.",
                    KBWarning,
                )
            return
        self._aliases_changed()
        slots = self.c.n_slots
        count = end - start
        self._candidate_rows = grown(self._candidate_rows, slots, slots + count + 1)
        self._candidate_priors = grown(self._candidate_priors, slots, slots + count + 1)
        if end != slots:
            # Not the last row: move it to the end, where it can grow in place.
            self._candidate_rows[slots : slots + count] = self._candidate_rows[start:end]
            self._candidate_priors[slots : slots + count] = self._candidate_priors[start:end]
            self._alias_starts[alias_row] = slots
            self._n_dead_slots += count
            start, end = slots, slots + count
        self._candidate_rows[end] = entity_row
        self._candidate_priors[end] = prior
        self._alias_ends[alias_row] = end + 1
        self.c.n_slots = end + 1
        self._sync()

    # ------------------------------------------------------------ bulk build

    @classmethod
    def from_spacy(cls, spacy_kb, vocab=None) -> "InMemoryLookupKB":
        """Convert a spaCy ``InMemoryLookupKB`` (e.g. one spaCy loaded from a
        folder it saved): the same entities, vectors, aliases and priors.

        spaCy exposes an entity's frequency only through its candidates, so an
        entity that no alias refers to gets frequency 0.
        spacy_kb: The spaCy KB.
        vocab (Optional[Vocab]): The vocab of the new KB (default: spacy_kb's).
        RETURNS (InMemoryLookupKB): A writable KB; ``to_disk`` it to keep it.
        """
        vocab = spacy_kb.vocab if vocab is None else vocab
        return cls.from_arrays(vocab, *spacy_arrays(spacy_kb))

    @classmethod
    def from_arrays(
        cls,
        vocab,
        entity_ids: Sequence[str],
        freqs,
        vectors,
        alias_texts: Sequence[str] = (),
        alias_offsets=None,
        candidate_entities=None,
        priors=None,
        *,
        add_to_vocab: bool = False,
    ) -> "InMemoryLookupKB":
        """Build a KB in one call from arrays: much faster than add_* loops.

        entity_ids (Sequence[str]): n entity ids.
        freqs (array-like): n frequencies.
        vectors (array-like): (n, L) entity vectors; L becomes entity_vector_length.
        alias_texts (Sequence[str]): m alias texts.
        alias_offsets (array-like): m + 1 offsets; alias i owns candidates
            [alias_offsets[i], alias_offsets[i + 1]).
        candidate_entities (array-like): entity of each candidate, as a position in entity_ids.
        priors (array-like): p(entity | alias) of each candidate.
        add_to_vocab (bool): also add every string to vocab.strings (spaCy does; costs memory).
        RETURNS (InMemoryLookupKB): the new, writable KB.
        """
        matrix = vector_matrix(vectors, len(entity_ids))
        cdef InMemoryLookupKB kb = cls(vocab, int(matrix.shape[1]))
        entity_ids = list(entity_ids)
        alias_texts = list(alias_texts)
        entities, aliases = prepare_arrays(entity_ids, freqs, matrix, alias_texts,
                                           alias_offsets, candidate_entities, priors,
                                           kb.entity_vector_length)
        kb._fill(entities, aliases)
        if add_to_vocab:
            for text in entity_ids + alias_texts:
                vocab.strings.add(text)
        return kb

    def _fill(self, entities, aliases):
        """Fill an empty, writable KB with prepared entities and aliases (the
        arguments of _append_entities and _append_aliases), sizing the maps once."""
        self._entity_map = PreshMap(max(8, 2 * len(entities[0])))
        self._alias_map = PreshMap(max(8, 2 * len(aliases[0])))
        self._sync()
        self._append_entities(*entities)
        self._append_aliases(*aliases)

    @classmethod
    def from_records(
        cls,
        vocab,
        entity_vector_length: int,
        entities: Iterable[Tuple[str, float, Sequence[float]]],
        aliases: Iterable[Tuple[str, Sequence[str], Sequence[float]]] = (),
        *,
        add_to_vocab: bool = False,
    ) -> "InMemoryLookupKB":
        """Build a KB from records: (entity id, freq, vector) and (alias, entity ids, priors).

        RETURNS (InMemoryLookupKB): the new, writable KB.
        """
        return cls.from_arrays(vocab, *records_arrays(entity_vector_length, entities, aliases),
                               add_to_vocab=add_to_vocab)

    # ---------------------------------------------------------------- lookups

    def get_candidates(self, mention) -> Iterable[Candidate]:
        """Candidates for a mention (a Span), by exact match of its text."""
        return self.get_alias_candidates(mention.text)

    def get_candidates_batch(self, mentions) -> Iterable[Iterable[Candidate]]:
        """Candidates for many mentions in one batched lookup."""
        texts = [mention.text for mention in mentions]
        return self._candidates_for_texts(texts)

    def get_alias_candidates(self, alias) -> Iterable[Candidate]:
        """Candidates of an alias (an empty list when the alias is unknown)."""
        cdef uint64_t alias_hash = hash_string(check_type(alias, "alias"))
        cdef int64_t alias_row = self._alias_row(alias_hash)
        if alias_row < 0:
            return []
        if not alias_slots_ok(&self.c, alias_row):
            raise _corrupt(self)
        vectors = self._read_only_vectors()
        cdef uint64_t j
        result = []
        for j in range(self.c.alias_starts[alias_row], self.c.alias_ends[alias_row]):
            if self.c.candidate_rows[j] >= self.c.n_entities:
                raise _corrupt(self)
            result.append(self._candidate(vectors, self.c.candidate_rows[j], alias_hash,
                                          alias_row, self.c.candidate_priors[j]))
        return result

    def _read_only_vectors(self):
        vectors = self._vectors.view()
        vectors.flags.writeable = False
        return vectors

    cdef Candidate _candidate(self, vectors, uint32_t row, uint64_t alias_hash,
                              int64_t alias_row, float prior):
        cdef Candidate cand = Candidate.__new__(Candidate)
        cand.kb = self
        cand.entity_hash = self.c.entity_hashes[row]
        cand.entity_freq = self.c.entity_freqs[row]
        cand._entity_vector = vectors[row]
        cand.alias_hash = alias_hash
        cand.prior_prob = prior
        cand.entity_row = row
        cand.alias_row = alias_row
        return cand

    def _candidates_for_texts(self, texts):
        hashes = hash_strings(texts)
        alias_rows, offsets, entity_rows, priors = self._lookup(hashes)
        vectors = self._read_only_vectors()
        result = []
        offsets_list = offsets.tolist()
        rows_list = entity_rows.tolist()
        priors_list = priors.tolist()
        hash_list = hashes.tolist()
        alias_row_list = alias_rows.tolist()
        for i in range(len(texts)):
            result.append([
                self._candidate(vectors, rows_list[j], hash_list[i], alias_row_list[i],
                                priors_list[j])
                for j in range(offsets_list[i], offsets_list[i + 1])
            ])
        return result

    def lookup_aliases(self, aliases) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
        """Candidates of many aliases at once, as arrays (one nogil loop).

        aliases (Sequence[str] | numpy.ndarray[uint64]): alias texts, or their hashes.
        RETURNS (Tuple[ndarray, ndarray, ndarray]): (offsets int64 [n + 1],
            entity_rows uint32, priors float32); alias i's candidates are
            entity_rows[offsets[i]:offsets[i + 1]] with their priors. Unknown
            aliases have none. Entity rows index ``vectors`` and ``get_entity_id``.
        """
        if isinstance(aliases, numpy.ndarray) and aliases.dtype.kind in "ui":
            hashes = numpy.ascontiguousarray(aliases, dtype=numpy.uint64).reshape(-1)
        else:
            aliases = list(aliases)
            hashes = hash_strings(aliases)
        _, offsets, entity_rows, priors = self._lookup(hashes)
        return offsets, entity_rows, priors

    def _lookup(self, hashes):
        """(alias rows, offsets, entity rows, priors) for an array of alias hashes."""
        cdef int64_t n = len(hashes)
        alias_rows = numpy.empty(n, dtype=numpy.int64)
        offsets = numpy.zeros(n + 1, dtype=numpy.int64)
        cdef const uint64_t[::1] keys = hashes
        cdef int64_t[::1] rows_out = alias_rows
        cdef int64_t[::1] offsets_out = offsets
        cdef int status = 0
        if n:
            with nogil:
                status = find_aliases(&self.c, &keys[0], n, &rows_out[0], &offsets_out[0])
        if status < 0:
            raise _corrupt(self)
        total = offsets[n]
        entity_rows = numpy.empty(total, dtype=numpy.uint32)
        priors = numpy.empty(total, dtype=numpy.float32)
        cdef uint32_t[::1] entity_rows_out = entity_rows
        cdef float[::1] priors_out = priors
        if total:
            with nogil:
                status = gather_candidates(&self.c, &rows_out[0], n, &offsets_out[0],
                                           &entity_rows_out[0], &priors_out[0])
        if status < 0:
            raise _corrupt(self)
        return alias_rows, offsets, entity_rows, priors

    def get_entity_rows(self, entities) -> numpy.ndarray:
        """Rows of many entity ids (or hashes) at once; -1 where unknown."""
        if isinstance(entities, numpy.ndarray) and entities.dtype.kind in "ui":
            hashes = numpy.ascontiguousarray(entities, dtype=numpy.uint64).reshape(-1)
        else:
            entities = list(entities)
            hashes = hash_strings(entities)
        cdef int64_t n = len(hashes)
        rows = numpy.empty(n, dtype=numpy.int64)
        cdef const uint64_t[::1] keys = hashes
        cdef int64_t[::1] out = rows
        cdef int status = 0
        if n:
            with nogil:
                status = find_entities(&self.c, &keys[0], n, &out[0])
        if status < 0:
            raise _corrupt(self)
        return rows

    def get_vector(self, entity) -> List[float]:
        """The entity's vector as a list of floats, as spaCy returns it (zeros if
        the entity is unknown). ``kb.vectors[row]`` and ``get_vectors`` give
        zero-copy float32 views instead."""
        row = self._entity_row(hash_string(check_type(entity, "entity id")))
        if row < 0:
            return [0.0] * self.entity_vector_length
        return self._vectors[row].tolist()

    def get_vectors(self, entities: Iterable[str]) -> numpy.ndarray:
        """Vectors of several entities as one (n, L) float32 matrix (zeros where unknown)."""
        rows = self.get_entity_rows(entities)
        matrix = numpy.zeros((len(rows), self.entity_vector_length), dtype=numpy.float32)
        known = rows >= 0
        matrix[known] = self._vectors[rows[known]]
        return matrix

    def get_prior_prob(self, entity, alias) -> float:
        """p(entity | alias), or 0.0 when the pair is not in the KB."""
        entity_row = self._entity_row(hash_string(check_type(entity, "entity id")))
        alias_row = self._alias_row(hash_string(check_type(alias, "alias")))
        if entity_row < 0 or alias_row < 0:
            return 0.0
        if not alias_slots_ok(&self.c, alias_row):
            raise _corrupt(self)
        cdef uint64_t j
        for j in range(self.c.alias_starts[alias_row], self.c.alias_ends[alias_row]):
            if self.c.candidate_rows[j] == entity_row:
                return float(self.c.candidate_priors[j])
        return 0.0

    # ---------------------------------------------------------- serialization
    # (serialize.pyx: the file image, attaching its views, pickling)

    def _compact_arrays(self):
        """The KB as compact arrays, one per file section."""
        return serialize.compact_arrays(self)

    def to_bytes(self, **kwargs) -> bytes:
        """The KB as bytes: exactly the bytes ``to_disk`` writes to kb.bin."""
        return serialize.to_bytes(self)

    def from_bytes(self, bytes_data: bytes, *, exclude=tuple(), add_to_vocab: bool = False,
                   verify: bool = False):
        """Load the KB from bytes (kept and read in place; the KB becomes read-only).
        ``verify`` also checks every checksum and index first (see from_disk)."""
        serialize.read_bytes(self, bytes_data, add_to_vocab, verify)
        return self

    def to_disk(self, path: Union[str, Path], exclude: Iterable[str] = tuple()) -> None:
        """Write the KB to a directory, as the single file ``kb.bin`` (atomically)."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise KBError(f"{path} is a file; to_disk writes a directory. Pass a directory path.")
        path.mkdir(parents=True, exist_ok=True)
        self.write_contents(path / kb_format.FILE_NAME)

    def write_contents(self, file_path: Union[str, Path]) -> None:
        """Write the KB's contents file (spaCy's name for the file ``to_disk``
        writes; here the whole ``kb.bin`` image), atomically: to a temp file
        beside it, then renamed, so a failure never leaves half a file."""
        serialize.write_file(self, file_path)

    def from_disk(self, path: Union[str, Path], exclude: Iterable[str] = tuple(), *,
                  add_to_vocab: bool = False, verify: bool = False) -> "InMemoryLookupKB":
        """Open a KB written by ``to_disk`` by memory-mapping it: O(1) in the KB's size.

        The KB becomes a read-only view of the file; pages load on demand and
        are shared by every process that maps the same file. ``kb.copy()`` gives
        a writable copy.
        path (Union[str, Path]): The directory (or the kb.bin file in it).
        add_to_vocab (bool): Also add every entity id and alias to vocab.strings.
        verify (bool): Also check every section's checksum and every stored
            index before serving (O(file size): reads the whole file once).
            Without it, opening checks the header and the bounds of every
            section, and each index is checked where it is read, so a damaged
            file never crashes but may answer from damaged data.
        RAISES: KBNotFoundError (a ValueError and a FileNotFoundError) for a
            path that does not exist, KBFormatError for a bad file.
        """
        self.read_contents(path, add_to_vocab=add_to_vocab, verify=verify)
        return self

    def read_contents(self, file_path: Union[str, Path], *, add_to_vocab: bool = False,
                      verify: bool = False) -> None:
        """Open a contents file written by ``write_contents`` (memory-mapped), or
        the folder holding one; the settings are those of ``from_disk``."""
        serialize.read_file(self, file_path, add_to_vocab, verify)

    def copy(self) -> "InMemoryLookupKB":
        """A writable, in-memory copy of this KB (e.g. of a memory-mapped one)."""
        arrays = self._compact_arrays()  # checks a mapped KB's offsets
        cdef InMemoryLookupKB kb = InMemoryLookupKB(self.vocab, self.entity_vector_length,
                                                    add_to_vocab=self._add_to_vocab)
        kb._fill(
            (numpy.array(arrays["entity_hashes"]), numpy.array(arrays["entity_freqs"]),
             numpy.array(arrays["vectors"]), self._entity_ids.block()),
            (numpy.array(arrays["alias_hashes"]), self._alias_texts.block(),
             numpy.array(arrays["alias_offsets"]), numpy.array(arrays["candidate_rows"]),
             numpy.array(arrays["candidate_priors"])),
        )
        if self._index is not None:
            kb._index = self._index.copy()
        kb._relations = self._relations.copy()
        kb._names = self._names.copy()
        return kb

    # -------------------------------------------------------------- relations

    def _known_rows(self, entities, what: str) -> numpy.ndarray:
        """Rows of entity ids that must all be in the KB."""
        entities = [check_string(e, what) for e in entities]
        rows = self.get_entity_rows(entities)
        missing = numpy.flatnonzero(rows < 0)
        if len(missing):
            raise UnknownEntityError(
                f"The {what} {entities[missing[0]]!r} is not in the KB ({len(missing)} "
                "unknown). Add the entities first (add_entity or set_entities)."
            )
        return rows

    def set_parents(self, entity: str, parents: Iterable[str]) -> None:
        """Set the parents of an entity: the entities that contain it (for a
        place, its first-level division and its country; in Wikidata terms
        P131 and P17). Replaces its earlier parents; all must be in the KB.
        """
        self._check_writable()
        row = int(self._known_rows([entity], "entity id")[0])
        parent_rows = self._known_rows(list(parents), "parent entity id")
        if numpy.any(parent_rows == row):
            raise KBError(f"Entity {entity!r} cannot be its own parent.")
        self._relations.set(row, numpy.unique(parent_rows).astype(numpy.uint32)
                            if len(parent_rows) > 1 else parent_rows.astype(numpy.uint32))

    def set_relations(self, children: Sequence[str], parents: Sequence[str]) -> None:
        """Replace every relation of the KB at once by (child, parent) pairs:
        ``children[i]`` is contained by ``parents[i]``. Much faster than a
        ``set_parents`` loop; a repeated pair counts once.
        """
        self._check_writable()
        if len(children) != len(parents):
            raise LengthMismatchError(
                f"set_relations got {len(children)} children and {len(parents)} parents; "
                "give one parent per child (repeat a child for several parents)."
            )
        child_rows = self._known_rows(children, "entity id")
        parent_rows = self._known_rows(parents, "parent entity id")
        if numpy.any(child_rows == parent_rows):
            bad = int(numpy.flatnonzero(child_rows == parent_rows)[0])
            raise KBError(f"Entity {children[bad]!r} cannot be its own parent.")
        self._relations.set_all(child_rows, parent_rows, int(self.c.n_entities))

    @property
    def has_relations(self) -> bool:
        """Whether any entity of the KB has a parent."""
        return bool(self._relations)

    def get_parents(self, entity: str) -> List[str]:
        """The ids of an entity's parents ([] for an unknown entity or none)."""
        row = self._entity_row(hash_string(check_type(entity, "entity id")))
        if row < 0:
            return []
        rows = self._relations.parents_of(row, self.c.n_entities)
        return [self.get_entity_id(int(r)) for r in rows]

    def get_ancestors(self, entity: str) -> List[str]:
        """The ids of an entity's parents, their parents and so on, nearest first."""
        row = self._entity_row(hash_string(check_type(entity, "entity id")))
        if row < 0:
            return []
        _, rows = self.ancestor_rows([row])
        return [self.get_entity_id(int(r)) for r in rows]

    def ancestor_rows(self, rows) -> Tuple[numpy.ndarray, numpy.ndarray]:
        """The ancestors of many entity rows at once (for scorers).

        rows (array-like): Entity rows.
        RETURNS (Tuple[numpy.ndarray, numpy.ndarray]): (offsets, ancestor rows),
            CSR by input row, int64; nearest first, each ancestor once.
        """
        return self._relations.ancestors(rows, self.c.n_entities)

    # ------------------------------------------------------------------ names

    def set_names(self, entities: Sequence[str], names: Sequence[str]) -> None:
        """Give entities display names ("Leicester City F.C." for an id such as
        "Q19481"); "" removes a name. The linker's learned scoring reads the
        names' words as evidence, and tools show them. ``to_disk`` stores them.
        """
        self._check_writable()
        entities, names = list(entities), list(names)
        if len(entities) != len(names):
            raise LengthMismatchError(
                f"set_names got {len(entities)} entities and {len(names)} names; "
                "give one name per entity."
            )
        names = [check_type(name, "entity name") for name in names]
        rows = self._known_rows(entities, "entity id")
        self._names.set(rows.tolist(), names)

    @property
    def has_names(self) -> bool:
        """Whether any entity of the KB has a name."""
        return bool(self._names)

    def get_name(self, entity: str) -> str:
        """The display name of an entity ("" for an unknown entity or none)."""
        row = self._entity_row(hash_string(check_type(entity, "entity id")))
        return self._names.name_of(row) if row >= 0 else ""

    def names_of_rows(self, rows) -> List[str]:
        """The names of many entity rows at once (for scorers; "" where none)."""
        return self._names.names_of(rows)

    # ------------------------------------------------------------ alias index

    def build_alias_index(self, normalizer: Optional[AliasNormalizer] = None,
                          fuzzy: bool = True) -> AliasIndex:
        """Build the normalised (and trigram) alias index used by the normalised,
        fuzzy and cascade candidate generators; ``to_disk`` stores it in the file.

        Build it once the aliases are final: adding aliases drops it. On a
        memory-mapped KB the index is built in memory (the KB stays read-only)
        and ``to_disk`` writes a new file holding it.
        normalizer (Optional[AliasNormalizer]): How aliases are normalised
            (default: AliasNormalizer() with its place-name expansions).
        fuzzy (bool): Also build the character-trigram index for fuzzy search.
        RETURNS (AliasIndex): The index (also kept as ``kb.alias_index``).
        """
        arrays = self._compact_arrays()
        self._index = AliasIndex.build(
            self.get_alias_strings(), arrays["alias_offsets"], arrays["candidate_rows"],
            arrays["candidate_priors"], self.c.n_entities, normalizer=normalizer,
            fuzzy=fuzzy,
        )
        self._index_in_file = False
        return self._index

    def lookup_normalized(self, texts, int64_t limit=-1, bint by_prior=False,
                          float discount=1.0):
        """Exact matches, then the matches of each text's normalised form that are
        not already there, in one nogil pass (the alias index must exist).

        texts (Sequence[str]): Mention texts.
        limit (int): Keep at most this many candidates per text (-1: all).
        by_prior (bool): Order the exact matches by prior (default: KB order).
        discount (float): Multiply the priors of normalised matches by this when
            the text also has exact matches (their priors come from other
            spellings, e.g. "Califórnia" for "California").
        RETURNS (Tuple[ndarray, ...]): (offsets int64 [n + 1], entity_rows uint32,
            priors float32, alias_rows int64), CSR by text.
        """
        if self._index is None:
            raise KBError("This KB has no alias index; call kb.build_alias_index() first.")
        cdef AliasIndex index = <AliasIndex>self._index
        texts = texts if isinstance(texts, (list, tuple)) else list(texts)
        cdef int64_t n = len(texts), i
        exact_hashes = numpy.empty(n, dtype=numpy.uint64)
        norm_hashes = index.key_hashes(texts, exact_hashes)
        cdef const uint64_t[::1] exact_view = exact_hashes
        cdef const uint64_t[::1] norm_view = norm_hashes
        alias_rows = numpy.empty(n, dtype=numpy.int64)
        key_rows = numpy.empty(n, dtype=numpy.int64)
        exact_counts = numpy.zeros(n + 1, dtype=numpy.int64)
        key_counts = numpy.zeros(n + 1, dtype=numpy.int64)
        cdef int64_t[::1] alias_view = alias_rows
        cdef int64_t[::1] key_view = key_rows
        cdef int64_t[::1] exact_count_view = exact_counts
        cdef int64_t[::1] key_count_view = key_counts
        cdef int status = 0
        if n:
            with nogil:
                status = find_aliases(&self.c, &exact_view[0], n, &alias_view[0],
                                       &exact_count_view[0])
                if status == 0:
                    status = find_keys(&index.c, &norm_view[0], n, &key_view[0],
                                       &key_count_view[0])
        if status < 0:
            raise _corrupt(self)
        total = int(exact_counts[n] + key_counts[n])
        entity_rows = numpy.empty(total, dtype=numpy.uint32)
        priors = numpy.empty(total, dtype=numpy.float32)
        found_alias_rows = numpy.empty(total, dtype=numpy.int64)
        offsets = numpy.zeros(n + 1, dtype=numpy.int64)
        cdef uint32_t[::1] entity_out = entity_rows if total else numpy.zeros(1, numpy.uint32)
        cdef float[::1] prior_out = priors if total else numpy.zeros(1, numpy.float32)
        cdef int64_t[::1] alias_out = found_alias_rows if total else numpy.zeros(1, numpy.int64)
        cdef int64_t[::1] offset_view = offsets
        if n and total:
            with nogil:
                status = merge_both(&self.c, &index.c, &alias_view[0], &key_view[0], n,
                                    limit, by_prior, discount, &entity_out[0], &prior_out[0],
                                    &alias_out[0], &offset_view[0])
        if status < 0:
            raise _corrupt(self)
        used = int(offsets[n])
        return offsets, entity_rows[:used], priors[:used], found_alias_rows[:used]

    @property
    def alias_index(self) -> Optional[AliasIndex]:
        """The normalised/trigram alias index, or None when the KB has none."""
        return self._index

    def candidates_from_arrays(self, offsets, entity_rows, priors,
                               alias_rows) -> List[List[Candidate]]:
        """Candidate objects for flat lookup results (CSR by mention).

        offsets (ndarray): int64 [n + 1]; mention i owns items offsets[i]:offsets[i + 1].
        entity_rows, priors, alias_rows (ndarray): one item per candidate; the
            alias row names the KB alias the candidate was found under.
        RETURNS (List[List[Candidate]]): One list per mention.
        """
        vectors = self._read_only_vectors()
        entity_list = numpy.asarray(entity_rows, dtype=numpy.int64).tolist()
        alias_list = numpy.asarray(alias_rows, dtype=numpy.int64).tolist()
        prior_list = numpy.asarray(priors, dtype=numpy.float32).tolist()
        bounds = numpy.asarray(offsets, dtype=numpy.int64).tolist()
        cdef int64_t n_e = self.c.n_entities, n_a = self.c.n_aliases
        for row in entity_list:
            if not 0 <= row < n_e:
                raise KBError(f"Entity row {row} is out of range (the KB has {n_e:,}).")
        for row in alias_list:
            if not 0 <= row < n_a:
                raise KBError(f"Alias row {row} is out of range (the KB has {n_a:,}).")
        return [
            [
                self._candidate(vectors, entity_list[j], self.c.alias_hashes[alias_list[j]],
                                alias_list[j], prior_list[j])
                for j in range(bounds[i], bounds[i + 1])
            ]
            for i in range(len(bounds) - 1)
        ]

    @property
    def path(self) -> Optional[Path]:
        """The file this KB is mapped from, or None."""
        return self._path

    def __reduce__(self):
        # A mapped KB pickles as its path (the child process maps the same file).
        return serialize.reduce(self)

# cython: infer_types=True
"""InMemoryLookupKB: spaCy's in-memory KB API on flat, contiguous tables.

Layout (see structs.pxd): entities and aliases are rows of numpy arrays; the
vectors are one float32 matrix; aliases own CSR-style slices of two parallel
candidate arrays; two hash tables map string hashes to rows. While the KB is
writable the hash tables are preshed PreshMaps; after ``from_disk`` or
``from_bytes`` every table is a read-only view of the file's bytes (memory-
mapped from disk), and the same lookup code reads them.

The KB keeps its own string table (entity ids and alias texts, UTF-8), so it
resolves its strings without the pipeline's vocab. As in spaCy, ``add_entity``
and ``add_alias`` also add the string to ``vocab.strings``; opening a file does
not, unless asked (``add_to_vocab=True``).
"""
import io
import mmap
import numbers
import warnings
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy

cimport numpy as cnp
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from libc.float cimport FLT_MAX
from libc.math cimport fabs
from libc.stdint cimport int64_t, uint32_t, uint64_t, uintptr_t
from libc.string cimport memcpy
from preshed.maps cimport Cell, PreshMap

from ..errors import (
    EmptyStringError,
    KBError,
    KBFormatError,
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
from .normalize import AliasNormalizer
from .names import EntityNames
from .relations import EntityRelations
from .tables import build_slots

from .alias_index cimport AliasIndex, IndexData, find_keys
from .candidate cimport Candidate
from .hashing cimport hash_string, hash_utf8

from .hashing import has_duplicates, hash_strings
from .kb cimport KnowledgeBase
from .structs cimport CORRUPT, NOT_FOUND, KBData, alias_row_of, alias_slots_ok, entity_row_of

cnp.import_array()

PROB_SUM_TOLERANCE = kb_format.PROB_SUM_TOLERANCE
MAX_VECTOR_LENGTH = kb_format.MAX_VECTOR_LENGTH


cdef inline void* _ptr(object array):
    return cnp.PyArray_DATA(<cnp.ndarray>array)


cdef object _grown(object array, uint64_t used, uint64_t needed):
    """The array itself if it holds ``needed`` rows, else a larger copy (x1.5)."""
    cdef uint64_t capacity = array.shape[0]
    if needed <= capacity:
        return array
    capacity = max(needed, capacity + capacity // 2, 16)
    bigger = numpy.empty((capacity,) + array.shape[1:], dtype=array.dtype)
    bigger[:used] = array[:used]
    return bigger


cdef int64_t _fill_rows(object rows, float[:, ::1] out) except -2:
    """Copy rows (lists or tuples of numbers) into out; return -1, or the first
    row that is not a list or tuple of out's width or holds NaN or inf. A
    non-number raises TypeError."""
    cdef Py_ssize_t i, j, width = out.shape[1]
    cdef double value
    for i in range(out.shape[0]):
        row = rows[i]
        if not isinstance(row, (list, tuple)) or len(row) != width:
            return i
        for j in range(width):
            value = row[j]
            if not fabs(value) <= FLT_MAX:
                return i
            out[i, j] = <float>value
    return -1


def _check_type(value, what: str) -> str:
    if not isinstance(value, str):
        raise KBTypeError(
            f"The {what} must be a str, got {type(value).__name__} {value!r}. "
            f"Convert ids to strings first, e.g. str({value!r})."
        )
    return value


def _check_string(value, what: str) -> str:
    _check_type(value, what)
    if len(value) == 0:
        raise EmptyStringError(f"The {what} must not be the empty string.")
    return value


def _corrupt(kb):
    return KBFormatError(
        f"The KB loaded from {kb.path or 'bytes'} holds an index or string out of range. "
        "The file is corrupt: check it with entity_linker.kb.format.validate(path) "
        "and rebuild it."
    )


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
        self._entity_string_offsets = numpy.zeros(1, dtype=numpy.uint64)
        self._entity_strings = numpy.zeros(0, dtype=numpy.uint8)
        self._alias_hashes = numpy.zeros(0, dtype=numpy.uint64)
        self._alias_starts = numpy.zeros(0, dtype=numpy.uint64)
        self._alias_ends = numpy.zeros(0, dtype=numpy.uint64)
        self._alias_string_offsets = numpy.zeros(1, dtype=numpy.uint64)
        self._alias_strings = numpy.zeros(0, dtype=numpy.uint8)
        self._candidate_rows = numpy.zeros(0, dtype=numpy.uint32)
        self._candidate_priors = numpy.zeros(0, dtype=numpy.float32)
        self._entity_table = None
        self._alias_table = None
        self._n_entity_bytes = 0
        self._n_alias_bytes = 0
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
        self.c.use_slots = False
        self.c.entity_slots_length = 0
        self.c.alias_slots_length = 0
        if self._entity_map is not None:
            self._sync_maps()
        elif self._entity_table.dtype.itemsize == 4:  # slot tables (version 2)
            self.c.use_slots = True
            self.c.entity_slots = <const uint32_t*>_ptr(self._entity_table)
            self.c.entity_slots_length = len(self._entity_table)
            self.c.alias_slots = <const uint32_t*>_ptr(self._alias_table)
            self.c.alias_slots_length = len(self._alias_table)
        else:  # preshed-layout cells (version 1)
            self.c.entity_cells = <const Cell*>_ptr(self._entity_table)
            self.c.entity_cells_length = len(self._entity_table) // 2
            self.c.alias_cells = <const Cell*>_ptr(self._alias_table)
            self.c.alias_cells_length = len(self._alias_table) // 2

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
        return self._decode_all(self._entity_string_offsets, self._entity_strings,
                                self.c.n_entities)

    def get_alias_strings(self) -> list:
        """RETURNS (List[str]): every alias, in row order."""
        return self._decode_all(self._alias_string_offsets, self._alias_strings,
                                self.c.n_aliases)

    def _decode_all(self, offsets, blob, int64_t n):
        """The n strings of a UTF-8 blob and its offsets, decoded in one C loop."""
        # uint64 offsets past 2**63 turn negative here, and fail the check.
        cdef const int64_t[::1] bounds = numpy.ascontiguousarray(offsets[: n + 1],
                                                                 dtype=numpy.int64)
        cdef const unsigned char[::1] data = blob
        cdef const char* base = NULL
        cdef int64_t i
        if data.shape[0]:
            base = <const char*>&data[0]
        strings = []
        try:
            for i in range(n):
                if bounds[i] < 0 or bounds[i] > bounds[i + 1] or bounds[i + 1] > data.shape[0]:
                    raise _corrupt(self)
                if bounds[i] == bounds[i + 1]:  # base may be NULL
                    strings.append("")
                else:
                    strings.append(PyUnicode_DecodeUTF8(<char*>base + bounds[i],
                                                        bounds[i + 1] - bounds[i], NULL))
        except UnicodeDecodeError:
            raise _corrupt(self) from None
        return strings

    def _decode(self, offsets, blob, int64_t row, uint64_t n_rows):
        if row < 0 or <uint64_t>row >= n_rows:
            raise IndexError(f"Row {row} is out of range (0..{n_rows - 1}).")
        start = int(offsets[row])
        end = int(offsets[row + 1])
        if not (start <= end <= len(blob)):
            raise _corrupt(self)
        try:
            return blob[start:end].tobytes().decode("utf8")
        except UnicodeDecodeError:
            raise _corrupt(self) from None

    def _entity_string(self, entity_hash, entity_row):
        if entity_row < 0:
            entity_row = self._entity_row(entity_hash)
            if entity_row < 0:
                return self.vocab.strings[entity_hash]
        return self._decode(self._entity_string_offsets, self._entity_strings,
                            entity_row, self.c.n_entities)

    def _alias_string(self, alias_hash, alias_row):
        if alias_row < 0:
            alias_row = self._alias_row(alias_hash)
            if alias_row < 0:
                return self.vocab.strings[alias_hash]
        return self._decode(self._alias_string_offsets, self._alias_strings,
                            alias_row, self.c.n_aliases)

    def get_entity_id(self, int64_t row) -> str:
        """The entity id (string) stored at a row (see ``lookup_aliases``)."""
        return self._decode(self._entity_string_offsets, self._entity_strings, row,
                            self.c.n_entities)

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

    def _checked_vectors(self, vectors, int64_t n, what):
        """vectors as a C-contiguous float32 (n, L) array, or a clear error."""
        L = self.entity_vector_length
        try:
            matrix = numpy.asarray(vectors, dtype=numpy.float32)
        except (TypeError, ValueError) as err:
            raise VectorError(
                f"The vector of {what} is not a sequence of {L} numbers: {err}"
            ) from None
        if n == 1 and matrix.ndim == 1:
            matrix = matrix.reshape(1, -1)
        if matrix.ndim != 2 or matrix.shape[0] != n or matrix.shape[1] != L:
            found = matrix.shape[-1] if matrix.ndim else 0
            raise VectorError(
                f"Entity vectors must have length {L} (the KB's entity_vector_length); "
                f"the vector of {what} has shape {matrix.shape if n != 1 else found}. "
                "Create the KB with a matching entity_vector_length or fix the vector."
            )
        if not numpy.isfinite(matrix).all():
            raise VectorError(f"The vector of {what} holds NaN or inf.")
        return numpy.ascontiguousarray(matrix)

    def add_entity(self, entity, freq, entity_vector) -> Optional[int]:
        """Add an entity with its frequency and vector.

        A duplicate entity is not added: a warning is given and the first kept.
        RETURNS (int): the entity hash, or None for a duplicate.
        """
        self._check_writable()
        _check_string(entity, "entity id")
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
        self._reserve_entities(n + 1, self._n_entity_bytes + len(encoded))
        self._write_vector(n, entity_vector, entity)
        if self._add_to_vocab:
            self.vocab.strings.add(entity)
        cdef uint64_t* offsets = <uint64_t*>_ptr(self._entity_string_offsets)
        (<uint64_t*>_ptr(self._entity_hashes))[n] = entity_hash
        (<float*>_ptr(self._entity_freqs))[n] = freq
        memcpy(<char*>_ptr(self._entity_strings) + self._n_entity_bytes, <char*>encoded,
               len(encoded))
        self._n_entity_bytes += len(encoded)
        offsets[n + 1] = self._n_entity_bytes
        self._entity_map.set(entity_hash, <void*><uintptr_t>(n + 1))
        self.c.n_entities = n + 1
        self._sync_maps()
        return entity_hash

    def _reserve_entities(self, uint64_t rows, uint64_t n_bytes):
        """Grow the entity arrays (x1.5) to hold ``rows`` rows and ``n_bytes`` of ids."""
        cdef uint64_t n = self.c.n_entities
        # Each array is checked: their capacities need not be equal.
        if (rows > min(self._entity_hashes.shape[0], self._entity_freqs.shape[0],
                       self._vectors.shape[0])
                or rows + 1 > self._entity_string_offsets.shape[0]
                or n_bytes > self._entity_strings.shape[0]):
            self._entity_hashes = _grown(self._entity_hashes, n, rows)
            self._entity_freqs = _grown(self._entity_freqs, n, rows)
            self._vectors = _grown(self._vectors, n, rows)
            self._entity_string_offsets = _grown(self._entity_string_offsets, n + 1, rows + 1)
            self._entity_strings = _grown(self._entity_strings, self._n_entity_bytes, n_bytes)
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
        vector = self._checked_vectors(entity_vector, 1, f"entity {entity!r}")
        self._vectors[row] = vector[0]

    cdef void _sync_maps(self):
        self.c.entity_cells = self._entity_map.c_map.cells
        self.c.entity_cells_length = self._entity_map.c_map.length
        self.c.alias_cells = self._alias_map.c_map.cells
        self.c.alias_cells_length = self._alias_map.c_map.length

    def _append_entities(self, hashes, freqs, vectors, strings):
        """Append validated, de-duplicated entities (no checks here)."""
        cdef uint64_t n = self.c.n_entities
        cdef uint64_t k = len(hashes)
        cdef uint64_t i
        if hashes.size and int(hashes.min()) < 2:
            raise KBError("An id hashes to a value reserved by preshed (0 or 1); rename it.")
        lengths, blob = strings
        self._entity_hashes = _grown(self._entity_hashes, n, n + k)
        self._entity_freqs = _grown(self._entity_freqs, n, n + k)
        self._vectors = _grown(self._vectors, n, n + k)
        self._entity_string_offsets = _grown(self._entity_string_offsets, n + 1, n + k + 1)
        self._entity_strings = _grown(
            self._entity_strings, self._n_entity_bytes, self._n_entity_bytes + len(blob)
        )
        self._entity_hashes[n : n + k] = hashes
        self._entity_freqs[n : n + k] = freqs
        self._vectors[n : n + k] = vectors
        self._entity_string_offsets[n + 1 : n + k + 1] = self._n_entity_bytes + numpy.cumsum(
            lengths, dtype=numpy.uint64
        )
        self._entity_strings[self._n_entity_bytes : self._n_entity_bytes + len(blob)] = (
            numpy.frombuffer(blob, dtype=numpy.uint8)
        )
        self._n_entity_bytes += len(blob)
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
        prepared = self._prepare_entities(entity_list, freq_list, vector_list)
        if self._add_to_vocab:
            for entity in entity_list:
                self.vocab.strings.add(entity)
        self._entity_map = PreshMap(max(8, 2 * len(entity_list)))
        L = self.entity_vector_length
        self._entity_hashes = numpy.zeros(0, dtype=numpy.uint64)
        self._entity_freqs = numpy.zeros(0, dtype=numpy.float32)
        self._vectors = numpy.zeros((0, L), dtype=numpy.float32)
        self._entity_string_offsets = numpy.zeros(1, dtype=numpy.uint64)
        self._entity_strings = numpy.zeros(0, dtype=numpy.uint8)
        self.c.n_entities = 0
        self._n_entity_bytes = 0
        self._relations = EntityRelations()
        self._names = EntityNames()
        self._append_entities(*prepared[:4])

    def _bulk_vectors(self, vectors, int64_t n):
        """A sequence of n vectors (lists or tuples of numbers) as one float32
        matrix, copied in one typed loop; None when a row is not a list or tuple
        of the right length, or holds a non-number, NaN or inf (the caller then
        checks row by row, to name the bad entity)."""
        matrix = numpy.empty((n, self.entity_vector_length), dtype=numpy.float32)
        try:
            if _fill_rows(vectors, matrix) >= 0:
                return None
        except TypeError:
            return None
        return matrix

    def _prepare_entities(self, entity_ids, freqs, vectors):
        """Validate entities for a bulk add; return (hashes, freqs, vectors, strings, rows).

        rows[i] is the row entity_ids[i] will have (its first occurrence's row).
        """
        n = len(entity_ids)
        hashes, strings = _encode_strings(entity_ids, "entity id")
        try:
            freqs = numpy.asarray(freqs, dtype=numpy.float32).reshape(-1)
        except (TypeError, ValueError):
            raise KBTypeError("Entity frequencies must be numbers.") from None
        if len(freqs) != n:
            raise LengthMismatchError(f"Got {n} entity ids but {len(freqs)} frequencies.")
        if not numpy.isfinite(freqs).all():
            bad = int(numpy.flatnonzero(~numpy.isfinite(freqs))[0])
            raise KBError(f"The frequency of entity {entity_ids[bad]!r} is not finite.")
        if isinstance(vectors, numpy.ndarray) and vectors.ndim == 2:
            matrix = self._checked_vectors(vectors, n, "some entity")
        else:
            if not (hasattr(vectors, "__getitem__") and hasattr(vectors, "__len__")):
                vectors = list(vectors)  # a generator; a sequence is read row by row
            matrix = self._bulk_vectors(vectors, n)
            if matrix is None:  # ragged, non-numeric or not finite: find and name the row
                matrix = numpy.empty((n, self.entity_vector_length), dtype=numpy.float32)
                for i, vector in enumerate(vectors):
                    matrix[i] = self._checked_vectors(vector, 1, f"entity {entity_ids[i]!r}")
        rows = numpy.arange(n, dtype=numpy.int64)
        if has_duplicates(hashes):
            _, first, inverse = numpy.unique(hashes, return_index=True, return_inverse=True)
            keep = numpy.sort(first)
            for i in sorted(set(range(n)) - set(keep.tolist())):
                warnings.warn(
                    f"Entity {entity_ids[i]!r} already exists in the KB; the first "
                    "one is kept.",
                    KBWarning,
                )
            row_of_unique = numpy.empty(len(first), dtype=numpy.int64)
            row_of_unique[numpy.argsort(first)] = numpy.arange(len(first))
            rows = row_of_unique[inverse.reshape(-1)]
            hashes, freqs, matrix = hashes[keep], freqs[keep], matrix[keep]
            strings = _take_strings(strings, keep)
        return hashes, freqs, matrix, strings, rows

    def contains_entity(self, entity) -> bool:
        """RETURNS (bool): whether the entity id is in the KB."""
        return self._entity_row(hash_string(_check_type(entity, "entity id"))) >= 0

    def contains_alias(self, alias) -> bool:
        """RETURNS (bool): whether the alias is in the KB."""
        return self._alias_row(hash_string(_check_type(alias, "alias"))) >= 0

    def add_alias(self, alias, entities, probabilities):
        """Add an alias with its candidate entities and their prior probabilities.

        A duplicate alias is not added: a warning is given and the first kept.
        RETURNS (int): the alias hash, or None for a duplicate.
        """
        self._check_writable()
        _check_string(alias, "alias")
        if len(entities) != len(probabilities):
            raise LengthMismatchError(
                f"Alias {alias!r} got {len(entities)} entities but {len(probabilities)} "
                "prior probabilities; give one probability per entity."
            )
        priors = _small_priors(alias, probabilities)
        alias_hash = hash_string(alias)
        if self._alias_row(alias_hash) >= 0:
            warnings.warn(
                f"Alias {alias!r} already exists in the KB; the first one is kept.",
                KBWarning,
            )
            return None
        rows = []
        for entity in entities:
            _check_string(entity, f"entity of alias {alias!r}")
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
        self._reserve_aliases(n + 1, slots + k, self._n_alias_bytes + len(encoded))
        cdef uint32_t* cand_rows = <uint32_t*>_ptr(self._candidate_rows)
        cdef float* cand_priors = <float*>_ptr(self._candidate_priors)
        for j in range(k):
            cand_rows[slots + j] = rows[j]
            cand_priors[slots + j] = priors[j]
        (<uint64_t*>_ptr(self._alias_hashes))[n] = alias_hash
        (<uint64_t*>_ptr(self._alias_starts))[n] = slots
        (<uint64_t*>_ptr(self._alias_ends))[n] = slots + k
        memcpy(<char*>_ptr(self._alias_strings) + self._n_alias_bytes, <char*>encoded,
               len(encoded))
        self._n_alias_bytes += len(encoded)
        (<uint64_t*>_ptr(self._alias_string_offsets))[n + 1] = self._n_alias_bytes
        self._alias_map.set(alias_hash, <void*><uintptr_t>(n + 1))
        self.c.n_aliases = n + 1
        self.c.n_slots = slots + k
        self._sync_maps()
        return alias_hash

    def _reserve_aliases(self, uint64_t rows, uint64_t slots, uint64_t n_bytes):
        """Grow the alias and candidate arrays (x1.5) to hold the given sizes."""
        cdef uint64_t n = self.c.n_aliases
        if slots > min(self._candidate_rows.shape[0], self._candidate_priors.shape[0]):
            self._candidate_rows = _grown(self._candidate_rows, self.c.n_slots, slots)
            self._candidate_priors = _grown(self._candidate_priors, self.c.n_slots, slots)
            self._sync()
        if (rows > min(self._alias_hashes.shape[0], self._alias_starts.shape[0],
                       self._alias_ends.shape[0])
                or rows + 1 > self._alias_string_offsets.shape[0]
                or n_bytes > self._alias_strings.shape[0]):
            self._alias_hashes = _grown(self._alias_hashes, n, rows)
            self._alias_starts = _grown(self._alias_starts, n, rows)
            self._alias_ends = _grown(self._alias_ends, n, rows)
            self._alias_string_offsets = _grown(self._alias_string_offsets, n + 1, rows + 1)
            self._alias_strings = _grown(self._alias_strings, self._n_alias_bytes, n_bytes)
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
        lengths, blob = strings
        self._candidate_rows = _grown(self._candidate_rows, slots, slots + n_new)
        self._candidate_priors = _grown(self._candidate_priors, slots, slots + n_new)
        self._candidate_rows[slots : slots + n_new] = rows
        self._candidate_priors[slots : slots + n_new] = priors
        self._alias_hashes = _grown(self._alias_hashes, n, n + k)
        self._alias_starts = _grown(self._alias_starts, n, n + k)
        self._alias_ends = _grown(self._alias_ends, n, n + k)
        self._alias_string_offsets = _grown(self._alias_string_offsets, n + 1, n + k + 1)
        self._alias_strings = _grown(
            self._alias_strings, self._n_alias_bytes, self._n_alias_bytes + len(blob)
        )
        self._alias_hashes[n : n + k] = hashes
        self._alias_starts[n : n + k] = slots + offsets[:-1]
        self._alias_ends[n : n + k] = slots + offsets[1:]
        self._alias_string_offsets[n + 1 : n + k + 1] = self._n_alias_bytes + numpy.cumsum(
            lengths, dtype=numpy.uint64
        )
        self._alias_strings[self._n_alias_bytes : self._n_alias_bytes + len(blob)] = (
            numpy.frombuffer(blob, dtype=numpy.uint8)
        )
        self._n_alias_bytes += len(blob)
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
        _check_string(alias, "alias")
        _check_string(entity, "entity id")
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
        prior = _small_priors(alias, [prior_prob])[0]
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
        self._candidate_rows = _grown(self._candidate_rows, slots, slots + count + 1)
        self._candidate_priors = _grown(self._candidate_priors, slots, slots + count + 1)
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
        length = int(spacy_kb.entity_vector_length)
        ids = list(spacy_kb.get_entity_strings())
        position = {entity: i for i, entity in enumerate(ids)}
        vectors = numpy.asarray([spacy_kb.get_vector(e) for e in ids],
                                dtype=numpy.float32).reshape(len(ids), length)
        freqs = numpy.zeros(len(ids), dtype=numpy.float32)
        aliases = list(spacy_kb.get_alias_strings())
        offsets, entities, priors = [0], [], []
        for alias in aliases:
            for cand in spacy_kb.get_alias_candidates(alias):
                i = position[cand.entity_]
                freqs[i] = cand.entity_freq
                entities.append(i)
                priors.append(cand.prior_prob)
            offsets.append(len(entities))
        return cls.from_arrays(vocab, ids, freqs, vectors, aliases,
                               numpy.asarray(offsets, dtype=numpy.int64),
                               numpy.asarray(entities, dtype=numpy.int64),
                               numpy.asarray(priors, dtype=numpy.float32))

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
        try:
            matrix = numpy.asarray(vectors, dtype=numpy.float32)
        except (TypeError, ValueError) as err:
            raise VectorError(
                f"vectors must be a 2-D (n_entities, vector_length) array of numbers: {err}"
            ) from None
        if matrix.ndim != 2:
            if len(entity_ids) == 0 and matrix.size == 0:
                matrix = matrix.reshape(0, 0)
            else:
                raise VectorError(
                    f"vectors must be a 2-D (n_entities, vector_length) array, got shape "
                    f"{matrix.shape}."
                )
        if matrix.shape[0] != len(entity_ids):
            raise VectorError(
                f"Got {len(entity_ids)} entity ids but {matrix.shape[0]} vectors: give one "
                "vector (row) per entity."
            )
        cdef InMemoryLookupKB kb = cls(vocab, int(matrix.shape[1]))
        entity_ids = list(entity_ids)
        alias_texts = list(alias_texts)
        hashes, freqs32, matrix, strings, rows = kb._prepare_entities(entity_ids, freqs, matrix)
        aliases = kb._prepare_aliases(
            alias_texts, alias_offsets, candidate_entities, priors, rows, len(entity_ids)
        )
        kb._entity_map = PreshMap(max(8, 2 * len(hashes)))
        kb._alias_map = PreshMap(max(8, 2 * len(aliases[0])))
        kb._append_entities(hashes, freqs32, matrix, strings)
        kb._append_aliases(*aliases)
        if add_to_vocab:
            for text in entity_ids + alias_texts:
                vocab.strings.add(text)
        return kb

    def _prepare_aliases(self, alias_texts, alias_offsets, candidate_entities, priors,
                         entity_rows, n_entity_ids):
        """Validate aliases for a bulk build; return the arguments of _append_aliases."""
        m = len(alias_texts)
        if alias_offsets is None:
            alias_offsets = numpy.zeros(m + 1, dtype=numpy.int64)
        offsets = numpy.asarray(alias_offsets, dtype=numpy.int64).reshape(-1)
        cands = numpy.asarray(
            [] if candidate_entities is None else candidate_entities, dtype=numpy.int64
        ).reshape(-1)
        probs = numpy.asarray([] if priors is None else priors, dtype=numpy.float64).reshape(-1)
        if len(offsets) != m + 1:
            raise LengthMismatchError(
                f"alias_offsets must have len(alias_texts) + 1 = {m + 1} items, got "
                f"{len(offsets)}."
            )
        if len(cands) != len(probs):
            raise LengthMismatchError(
                f"Got {len(cands)} candidate entities but {len(probs)} priors; give one "
                "prior per candidate."
            )
        if offsets[0] != 0 or offsets[-1] != len(cands) or (numpy.diff(offsets) < 0).any():
            raise KBError(
                "alias_offsets must start at 0, never decrease, and end at the number "
                f"of candidates ({len(cands)})."
            )
        if len(cands) and (cands.min() < 0 or cands.max() >= n_entity_ids):
            bad = cands[(cands < 0) | (cands >= n_entity_ids)][0]
            raise UnknownEntityError(
                f"Candidate entity index {bad} is out of range: there are "
                f"{n_entity_ids} entity ids."
            )
        bad = ~((probs >= 0) & (probs <= 1))
        if bad.any():
            raise ProbabilityError(
                f"Prior probabilities must be in [0, 1]; got {probs[bad][0]} for alias "
                f"{alias_texts[int(numpy.searchsorted(offsets, numpy.flatnonzero(bad)[0], 'right')) - 1]!r}."
            )
        sums = numpy.diff(numpy.concatenate([[0.0], numpy.cumsum(probs)])[offsets])
        if (sums > PROB_SUM_TOLERANCE).any():
            i = int(numpy.flatnonzero(sums > PROB_SUM_TOLERANCE)[0])
            raise ProbabilityError(
                f"The prior probabilities of alias {alias_texts[i]!r} sum to "
                f"{sums[i]:.6g}, more than 1."
            )
        hashes, strings = _encode_strings(alias_texts, "alias")
        if has_duplicates(hashes):
            # Keep the first of each duplicate alias; the others' slots are dropped.
            _, first = numpy.unique(hashes, return_index=True)
            keep = numpy.sort(first)
            for i in sorted(set(range(m)) - set(keep.tolist())):
                warnings.warn(
                    f"Alias {alias_texts[i]!r} already exists in the KB; the first one "
                    "is kept.",
                    KBWarning,
                )
            counts = numpy.diff(offsets)[keep]
            starts = offsets[keep]
            index = numpy.repeat(starts - numpy.concatenate([[0], numpy.cumsum(counts)[:-1]]),
                                 counts) + numpy.arange(counts.sum())
            cands, probs = cands[index], probs[index]
            offsets = numpy.concatenate([[0], numpy.cumsum(counts)])
            hashes = hashes[keep]
            strings = _take_strings(strings, keep)
        rows = entity_rows[cands].astype(numpy.uint32) if len(cands) else cands.astype(
            numpy.uint32)
        return hashes, strings, offsets.astype(numpy.uint64), rows, probs.astype(numpy.float32)

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
        ids, freqs, vectors = [], [], []
        for record in entities:
            entity, freq, vector = record
            ids.append(entity)
            freqs.append(freq)
            vectors.append(vector)
        matrix = numpy.zeros((len(ids), entity_vector_length), dtype=numpy.float32)
        for i, vector in enumerate(vectors):
            try:
                row = numpy.asarray(vector, dtype=numpy.float32)
                if row.shape != (entity_vector_length,):
                    raise ValueError(row.shape)
                matrix[i] = row
            except (ValueError, TypeError):
                raise VectorError(
                    f"The vector of entity {ids[i]!r} must have length "
                    f"{entity_vector_length}, got {numpy.shape(vector)}."
                ) from None
        position = {}
        for i, entity in enumerate(ids):
            position.setdefault(entity, i)
        alias_texts, offsets, cands, priors = [], [0], [], []
        for alias, alias_entities, probabilities in aliases:
            if len(alias_entities) != len(probabilities):
                raise LengthMismatchError(
                    f"Alias {alias!r} got {len(alias_entities)} entities but "
                    f"{len(probabilities)} prior probabilities."
                )
            for entity in alias_entities:
                if entity not in position:
                    raise UnknownEntityError(
                        f"Alias {alias!r} refers to entity {entity!r}, which is not among "
                        "the entities."
                    )
                cands.append(position[entity])
            priors.extend(probabilities)
            alias_texts.append(alias)
            offsets.append(len(cands))
        return cls.from_arrays(
            vocab, ids, freqs, matrix, alias_texts, offsets, cands, priors,
            add_to_vocab=add_to_vocab,
        )

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
        cdef uint64_t alias_hash = hash_string(_check_type(alias, "alias"))
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
                status = _find_aliases(&self.c, &keys[0], n, &rows_out[0], &offsets_out[0])
        if status < 0:
            raise _corrupt(self)
        total = offsets[n]
        entity_rows = numpy.empty(total, dtype=numpy.uint32)
        priors = numpy.empty(total, dtype=numpy.float32)
        cdef uint32_t[::1] entity_rows_out = entity_rows
        cdef float[::1] priors_out = priors
        if total:
            with nogil:
                status = _gather_candidates(&self.c, &rows_out[0], n, &offsets_out[0],
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
        cdef int64_t n = len(hashes), i
        rows = numpy.empty(n, dtype=numpy.int64)
        cdef const uint64_t[::1] keys = hashes
        cdef int64_t[::1] out = rows
        cdef bint corrupt = False
        with nogil:
            for i in range(n):
                out[i] = entity_row_of(&self.c, keys[i])
                if out[i] == CORRUPT:
                    corrupt = True
        if corrupt:
            raise _corrupt(self)
        return rows

    def get_vector(self, entity) -> List[float]:
        """The entity's vector as a list of floats, as spaCy returns it (zeros if
        the entity is unknown). ``kb.vectors[row]`` and ``get_vectors`` give
        zero-copy float32 views instead."""
        row = self._entity_row(hash_string(_check_type(entity, "entity id")))
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
        entity_row = self._entity_row(hash_string(_check_type(entity, "entity id")))
        alias_row = self._alias_row(hash_string(_check_type(alias, "alias")))
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

    def _compact_arrays(self):
        """The KB as compact arrays, one per file section."""
        if self._buffer is not None:
            return self._mapped_arrays()
        n_e, n_a = self.c.n_entities, self.c.n_aliases
        starts = self._alias_starts[:n_a].astype(numpy.int64)
        counts = self._alias_ends[:n_a].astype(numpy.int64) - starts
        offsets = numpy.zeros(n_a + 1, dtype=numpy.uint64)
        numpy.cumsum(counts, out=offsets[1:])
        total = int(offsets[-1])
        if numpy.array_equal(starts, offsets[:-1].astype(numpy.int64)):
            index = slice(0, total)
        else:
            index = numpy.repeat(starts - offsets[:-1].astype(numpy.int64), counts)
            index += numpy.arange(total, dtype=numpy.int64)
        return {
            "entity_hashes": self._entity_hashes[:n_e],
            "entity_freqs": self._entity_freqs[:n_e],
            "vectors": self._vectors[:n_e],
            "entity_string_offsets": self._entity_string_offsets[: n_e + 1],
            "entity_strings": self._entity_strings[: self._n_entity_bytes],
            "alias_hashes": self._alias_hashes[:n_a],
            "alias_offsets": offsets,
            "alias_string_offsets": self._alias_string_offsets[: n_a + 1],
            "alias_strings": self._alias_strings[: self._n_alias_bytes],
            "candidate_rows": self._candidate_rows[index],
            "candidate_priors": self._candidate_priors[index],
            "entity_slots": build_slots(self._entity_hashes[:n_e]),
            "alias_slots": build_slots(self._alias_hashes[:n_a]),
            **self._index_arrays(),
            **self._relations.arrays(n_e),
            **self._names.arrays(n_e),
        }

    def _mapped_tables(self):
        """The slot tables of a mapped file (built from the hashes for version 1)."""
        if self._entity_table.dtype.itemsize == 4:
            return {"entity_slots": self._entity_table, "alias_slots": self._alias_table}
        return {"entity_slots": build_slots(self._entity_hashes),
                "alias_slots": build_slots(self._alias_hashes)}

    def _index_arrays(self):
        return self._index.arrays() if self._index is not None else {}

    def _mapped_arrays(self):
        """The sections of a mapped KB, after checking every offset (they are read whole)."""
        n_a = self.c.n_aliases
        alias_offsets = numpy.empty(n_a + 1, dtype=numpy.uint64)
        alias_offsets[:n_a] = self._alias_starts
        alias_offsets[n_a] = self.c.n_slots
        for offsets, limit in (
            (self._entity_string_offsets, len(self._entity_strings)),
            (self._alias_string_offsets, len(self._alias_strings)),
            (alias_offsets, self.c.n_slots),
        ):
            if len(offsets) and (numpy.any(offsets[1:] < offsets[:-1]) or offsets[-1] > limit):
                raise _corrupt(self)
        rows = self._candidate_rows
        if len(rows) and int(rows.max()) >= self.c.n_entities:
            raise _corrupt(self)
        for hashes in (self._entity_hashes, self._alias_hashes):
            if len(hashes) and int(hashes.min()) < 2:  # preshed's reserved keys
                raise _corrupt(self)
        return {
            "entity_hashes": self._entity_hashes,
            "entity_freqs": self._entity_freqs,
            "vectors": self._vectors,
            "entity_string_offsets": self._entity_string_offsets,
            "entity_strings": self._entity_strings,
            "alias_hashes": self._alias_hashes,
            "alias_offsets": alias_offsets,
            "alias_string_offsets": self._alias_string_offsets,
            "alias_strings": self._alias_strings,
            "candidate_rows": rows,
            "candidate_priors": self._candidate_priors,
            **self._mapped_tables(),
            **self._index_arrays(),
            **self._relations.arrays(self.c.n_entities),
            **self._names.arrays(self.c.n_entities),
        }

    def to_bytes(self, **kwargs) -> bytes:
        """The KB as bytes: exactly the bytes ``to_disk`` writes to kb.bin."""
        if self._buffer is not None and self._index_in_file:
            return bytes(self._buffer)
        out = io.BytesIO()
        kb_format.write(out, self._compact_arrays(), self.entity_vector_length)
        return out.getvalue()

    def from_bytes(self, bytes_data: bytes, *, exclude=tuple(), add_to_vocab: bool = False,
                   verify: bool = False):
        """Load the KB from bytes (kept and read in place; the KB becomes read-only).
        ``verify`` also checks every checksum and index first (see from_disk)."""
        if not isinstance(bytes_data, bytes):
            bytes_data = bytes(bytes_data)
        if verify:
            kb_format.validate_buffer(bytes_data, "the KB bytes", deep=True)
        self._attach(bytes_data, None, add_to_vocab)
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
        if self._buffer is not None and self._index_in_file:
            kb_format.copy_file(file_path, self._buffer)
        else:
            kb_format.write_file(file_path, self._compact_arrays(), self.entity_vector_length)

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
        file_path = kb_format.resolve_path(file_path)
        with open(file_path, "rb") as file:
            size = file.seek(0, 2)
            if size == 0:
                buffer = b""
            else:
                buffer = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        if verify:
            kb_format.validate_buffer(buffer, str(file_path), deep=True)
        self._attach(buffer, file_path, add_to_vocab)

    def _attach(self, buffer, path, add_to_vocab):
        """Serve the KB from a file image (validated first; nothing copied)."""
        source = str(path) if path is not None else "the KB bytes"
        header, views = kb_format.open_views(buffer, source)
        if header.vector_length > MAX_VECTOR_LENGTH:
            raise KBFormatError(
                f"{source}: vector length {header.vector_length:,} exceeds the maximum "
                f"({MAX_VECTOR_LENGTH:,}); the header is corrupt."
            )
        self.entity_vector_length = header.vector_length
        self._entity_map = None
        self._alias_map = None
        self._entity_hashes = views["entity_hashes"]
        self._entity_freqs = views["entity_freqs"]
        self._vectors = views["vectors"].reshape(header.n_entities, header.vector_length)
        self._entity_string_offsets = views["entity_string_offsets"]
        self._entity_strings = views["entity_strings"]
        self._alias_hashes = views["alias_hashes"]
        self._alias_starts = views["alias_offsets"][:-1]
        self._alias_ends = views["alias_offsets"][1:]
        self._alias_string_offsets = views["alias_string_offsets"]
        self._alias_strings = views["alias_strings"]
        self._candidate_rows = views["candidate_rows"]
        self._candidate_priors = views["candidate_priors"]
        slots = header.format_version >= 2
        self._entity_table = views["entity_slots" if slots else "entity_cells"]
        self._alias_table = views["alias_slots" if slots else "alias_cells"]
        self._n_entity_bytes = len(views["entity_strings"])
        self._n_alias_bytes = len(views["alias_strings"])
        self._n_dead_slots = 0
        self.c.n_entities = header.n_entities
        self.c.n_aliases = header.n_aliases
        self.c.n_slots = header.n_candidates
        self._buffer = buffer
        self._path = path
        self._index = AliasIndex.from_views(views, header.n_entities, header.n_aliases, source)
        self._index_in_file = True
        self._relations = EntityRelations.from_views(views, source)
        self._names = EntityNames.from_views(views, source)
        self._sync()
        if add_to_vocab:
            for text in self.get_entity_strings() + self.get_alias_strings():
                self.vocab.strings.add(text)

    def copy(self) -> "InMemoryLookupKB":
        """A writable, in-memory copy of this KB (e.g. of a memory-mapped one)."""
        arrays = self._compact_arrays()
        cdef InMemoryLookupKB kb = InMemoryLookupKB(self.vocab, self.entity_vector_length,
                                                    add_to_vocab=self._add_to_vocab)
        n_e = self.c.n_entities
        n_a = self.c.n_aliases
        kb._entity_map = PreshMap(max(8, 2 * n_e))
        kb._alias_map = PreshMap(max(8, 2 * n_a))
        kb._append_entities(
            numpy.array(arrays["entity_hashes"]),
            numpy.array(arrays["entity_freqs"]),
            numpy.array(arrays["vectors"]),
            _string_block(arrays["entity_string_offsets"], arrays["entity_strings"]),
        )
        rows = numpy.array(arrays["candidate_rows"])
        kb._append_aliases(
            numpy.array(arrays["alias_hashes"]),
            _string_block(arrays["alias_string_offsets"], arrays["alias_strings"]),
            numpy.array(arrays["alias_offsets"]),
            rows,
            numpy.array(arrays["candidate_priors"]),
        )
        if self._index is not None:
            kb._index = self._index.copy()
        kb._relations = self._relations.copy()
        kb._names = self._names.copy()
        return kb

    # -------------------------------------------------------------- relations

    def _known_rows(self, entities, what: str) -> numpy.ndarray:
        """Rows of entity ids that must all be in the KB."""
        entities = [_check_string(e, what) for e in entities]
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
        row = self._entity_row(hash_string(_check_type(entity, "entity id")))
        if row < 0:
            return []
        rows = self._relations.parents_of(row, self.c.n_entities)
        return [self.get_entity_id(int(r)) for r in rows]

    def get_ancestors(self, entity: str) -> List[str]:
        """The ids of an entity's parents, their parents and so on, nearest first."""
        row = self._entity_row(hash_string(_check_type(entity, "entity id")))
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
        names = [_check_type(name, "entity name") for name in names]
        rows = self._known_rows(entities, "entity id")
        self._names.set(rows.tolist(), names)

    @property
    def has_names(self) -> bool:
        """Whether any entity of the KB has a name."""
        return bool(self._names)

    def get_name(self, entity: str) -> str:
        """The display name of an entity ("" for an unknown entity or none)."""
        row = self._entity_row(hash_string(_check_type(entity, "entity id")))
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
                status = _find_aliases(&self.c, &exact_view[0], n, &alias_view[0],
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
                status = _merge_both(&self.c, &index.c, &alias_view[0], &key_view[0], n,
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
        if self._path is not None:
            return (_unpickle_mapped, (self.vocab, str(self._path)))
        return (_unpickle_bytes, (self.vocab, self.entity_vector_length, self.to_bytes()))


def _unpickle_mapped(vocab, path):
    kb = InMemoryLookupKB(vocab, 0)
    kb.from_disk(path)
    return kb


def _unpickle_bytes(vocab, entity_vector_length, data):
    kb = InMemoryLookupKB(vocab, entity_vector_length)
    if kb.is_empty() and data:
        kb.from_bytes(data)
        kb = kb.copy()  # an in-memory KB stays writable after a round trip
    return kb


def _small_priors(alias, probabilities) -> list:
    """Validate a few priors in plain Python (numpy's overhead dominates for 1-5)."""
    priors = []
    total = 0.0
    for p in probabilities:
        try:
            value = float(p)
        except (TypeError, ValueError):
            raise KBTypeError(
                f"The prior probabilities of alias {alias!r} must be numbers, got "
                f"{probabilities!r}."
            ) from None
        if not 0.0 <= value <= 1.0:
            raise ProbabilityError(
                f"Prior probabilities must be in [0, 1]; alias {alias!r} has {value}. "
                "Normalise the counts of each alias into probabilities."
            )
        total += value
        priors.append(value)
    if total > PROB_SUM_TOLERANCE:
        raise ProbabilityError(
            f"The prior probabilities of alias {alias!r} sum to {total:.6g}, more than 1. "
            "They are p(entity | alias): normalise them over the alias's entities."
        )
    return priors


def _string_block(offsets, blob):
    """(lengths, blob) of a string table given by its offsets."""
    offsets = numpy.asarray(offsets, dtype=numpy.uint64)
    return numpy.diff(offsets), numpy.array(blob[: int(offsets[-1])], dtype=numpy.uint8)


def _take_strings(strings, keep):
    """The (lengths, blob) block of the strings at positions ``keep``."""
    lengths, blob = strings
    starts = numpy.concatenate([[0], numpy.cumsum(lengths)[:-1]]).astype(numpy.int64)
    kept = lengths[keep].astype(numpy.int64)
    index = numpy.repeat(starts[keep] - numpy.concatenate([[0], numpy.cumsum(kept)[:-1]]),
                         kept) + numpy.arange(int(kept.sum()), dtype=numpy.int64)
    return lengths[keep], blob[index]


def _encode_strings(strings, what: str):
    """Check, hash and concatenate many strings in two C loops.

    RETURNS (hashes uint64[n], (lengths uint64[n], blob uint8[total])).
    """
    cdef Py_ssize_t n = len(strings), i = 0, length, total = 0
    cdef const char* utf8
    hashes = numpy.empty(n, dtype=numpy.uint64)
    lengths = numpy.empty(n, dtype=numpy.uint64)
    cdef uint64_t[::1] hash_out = hashes
    cdef uint64_t[::1] length_out = lengths
    for text in strings:
        if not isinstance(text, str) or len(<str>text) == 0:
            _check_string(text, f"{what} at position {i}")
        utf8 = PyUnicode_AsUTF8AndSize(text, &length)
        hash_out[i] = hash_utf8(utf8, length)
        length_out[i] = length
        total += length
        i += 1
    blob = numpy.empty(total, dtype=numpy.uint8)
    cdef char* out = <char*>_ptr(blob)
    i = 0
    total = 0
    for text in strings:
        utf8 = PyUnicode_AsUTF8AndSize(text, &length)
        memcpy(out + total, utf8, length)
        total += length
        i += 1
    return hashes, (lengths, blob)


cdef int _find_aliases(const KBData* kb, const uint64_t* keys, int64_t n,
                       int64_t* alias_rows, int64_t* offsets) noexcept nogil:
    """Alias row of each key and the running count of candidates; -1 if corrupt."""
    cdef int64_t i, row
    offsets[0] = 0
    for i in range(n):
        row = alias_row_of(kb, keys[i])
        if row == CORRUPT:
            return -1
        alias_rows[i] = row
        if row >= 0:
            if not alias_slots_ok(kb, row):
                return -1
            offsets[i + 1] = offsets[i] + <int64_t>(kb.alias_ends[row] - kb.alias_starts[row])
        else:
            offsets[i + 1] = offsets[i]
    return 0


cdef int _gather_candidates(const KBData* kb, const int64_t* alias_rows, int64_t n,
                            const int64_t* offsets, uint32_t* entity_rows,
                            float* priors) noexcept nogil:
    """Copy each alias's candidate rows and priors into place; -1 if corrupt."""
    cdef int64_t i, out
    cdef uint64_t j
    for i in range(n):
        if alias_rows[i] < 0:
            continue
        out = offsets[i]
        for j in range(kb.alias_starts[alias_rows[i]], kb.alias_ends[alias_rows[i]]):
            if kb.candidate_rows[j] >= kb.n_entities:
                return -1
            entity_rows[out] = kb.candidate_rows[j]
            priors[out] = kb.candidate_priors[j]
            out += 1
    return 0


cdef int _merge_both(const KBData* kb, const IndexData* ix, const int64_t* alias_rows,
                     const int64_t* key_rows, int64_t n, int64_t limit, bint by_prior,
                     float discount, uint32_t* entity_rows, float* priors,
                     int64_t* found_alias_rows, int64_t* offsets) noexcept nogil:
    """Exact candidates, then the normalised ones that are not among them, at
    most limit per text; -1 if a stored row is corrupt.

    A key lists each entity once, so a normalised candidate is checked against
    the text's exact candidates only (a few: a linear scan beats any table).
    """
    cdef int64_t i, out = 0, first, exact_end, j, k, row
    cdef uint64_t slot
    cdef uint32_t entity
    cdef float prior, weight
    cdef bint duplicate
    offsets[0] = 0
    for i in range(n):
        first = out
        row = alias_rows[i]
        if row >= 0:
            for slot in range(kb.alias_starts[row], kb.alias_ends[row]):
                entity = kb.candidate_rows[slot]
                if entity >= kb.n_entities:
                    return -1
                entity_rows[out] = entity
                priors[out] = kb.candidate_priors[slot]
                found_alias_rows[out] = row
                out += 1
            if by_prior:  # insertion sort, stable: a handful of candidates
                for j in range(first + 1, out):
                    entity = entity_rows[j]
                    prior = priors[j]
                    k = j - 1
                    while k >= first and priors[k] < prior:
                        entity_rows[k + 1] = entity_rows[k]
                        priors[k + 1] = priors[k]
                        k -= 1
                    entity_rows[k + 1] = entity
                    priors[k + 1] = prior
        if limit >= 0 and out - first > limit:
            out = first + limit
        exact_end = out
        weight = discount if exact_end > first else 1.0
        row = key_rows[i]
        if row >= 0:
            for slot in range(ix.key_offsets[row], ix.key_offsets[row + 1]):
                if limit >= 0 and out - first >= limit:
                    break
                entity = ix.entity_rows[slot]
                if entity >= kb.n_entities or ix.alias_rows[slot] >= kb.n_aliases:
                    return -1
                duplicate = False
                for j in range(first, exact_end):
                    if entity_rows[j] == entity:
                        duplicate = True
                        break
                if duplicate:
                    continue
                entity_rows[out] = entity
                priors[out] = ix.priors[slot] * weight
                found_alias_rows[out] = ix.alias_rows[slot]
                out += 1
        offsets[i + 1] = out
    return 0

# cython: infer_types=True
"""Bulk construction of a KB: validate and prepare whole arrays at once.

``from_arrays``, ``from_records``, ``from_spacy`` and ``set_entities`` of
``InMemoryLookupKB`` call these functions; they check every id, frequency,
vector, offset and prior (with the same errors and warnings as the one-by-one
``add_entity``/``add_alias``), hash and concatenate the strings in C, drop
duplicates (first one kept, with a warning), and return plain numpy arrays.
The KB then appends them to its storage in one step (``_append_entities``,
``_append_aliases``). Nothing here touches a KB.
"""
import warnings

import numpy

from libc.float cimport FLT_MAX
from libc.math cimport fabs
from libc.stdint cimport int64_t, uint64_t

from ..errors import (
    EmptyStringError,
    KBError,
    KBTypeError,
    KBWarning,
    LengthMismatchError,
    ProbabilityError,
    UnknownEntityError,
    VectorError,
)
from .format import PROB_SUM_TOLERANCE
from .hashing import has_duplicates
from .names import EntityNames
from .strings import encode_strings, take_strings

from .hashing cimport hash_utf8
from .in_memory cimport InMemoryLookupKB


def checked_vectors(vectors, int64_t n, int L, what):
    """vectors as a C-contiguous float32 (n, L) array, or a clear error."""
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


def bulk_vectors(vectors, int64_t n, int L):
    """A sequence of n vectors (lists or tuples of numbers) as one float32
    matrix, copied in one typed loop; None when a row is not a list or tuple
    of the right length, or holds a non-number, NaN or inf (the caller then
    checks row by row, to name the bad entity)."""
    matrix = numpy.empty((n, L), dtype=numpy.float32)
    try:
        if _fill_rows(vectors, matrix) >= 0:
            return None
    except TypeError:
        return None
    return matrix


def prepare_entities(entity_ids, freqs, vectors, int L):
    """Validate entities for a bulk add; return (hashes, freqs, vectors, strings, rows).

    rows[i] is the row entity_ids[i] will have (its first occurrence's row).
    """
    n = len(entity_ids)
    hashes, strings = encode_strings(entity_ids, "entity id")
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
        matrix = checked_vectors(vectors, n, L, "some entity")
    else:
        if not (hasattr(vectors, "__getitem__") and hasattr(vectors, "__len__")):
            vectors = list(vectors)  # a generator; a sequence is read row by row
        matrix = bulk_vectors(vectors, n, L)
        if matrix is None:  # ragged, non-numeric or not finite: find and name the row
            matrix = numpy.empty((n, L), dtype=numpy.float32)
            for i, vector in enumerate(vectors):
                matrix[i] = checked_vectors(vector, 1, L, f"entity {entity_ids[i]!r}")
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
        strings = take_strings(strings, keep)
    return hashes, freqs, matrix, strings, rows


def prepare_aliases(alias_texts, alias_offsets, candidate_entities, priors,
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
    hashes, strings = encode_strings(alias_texts, "alias")
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
        strings = take_strings(strings, keep)
    rows = entity_rows[cands].astype(numpy.uint32) if len(cands) else cands.astype(
        numpy.uint32)
    return hashes, strings, offsets.astype(numpy.uint64), rows, probs.astype(numpy.float32)


def prepare_arrays(entity_ids, freqs, matrix, alias_texts, alias_offsets,
                   candidate_entities, priors, int L):
    """Validate a bulk build's arrays; return (entities, aliases): the arguments
    of the KB's ``_append_entities`` and ``_append_aliases``."""
    hashes, freqs32, matrix, strings, rows = prepare_entities(entity_ids, freqs, matrix, L)
    aliases = prepare_aliases(
        alias_texts, alias_offsets, candidate_entities, priors, rows, len(entity_ids)
    )
    return (hashes, freqs32, matrix, strings), aliases


def vector_matrix(vectors, int64_t n_ids):
    """``from_arrays``'s vectors as a 2-D float32 array of n_ids rows, or VectorError."""
    try:
        matrix = numpy.asarray(vectors, dtype=numpy.float32)
    except (TypeError, ValueError) as err:
        raise VectorError(
            f"vectors must be a 2-D (n_entities, vector_length) array of numbers: {err}"
        ) from None
    if matrix.ndim != 2:
        if n_ids == 0 and matrix.size == 0:
            matrix = matrix.reshape(0, 0)
        else:
            raise VectorError(
                f"vectors must be a 2-D (n_entities, vector_length) array, got shape "
                f"{matrix.shape}."
            )
    if matrix.shape[0] != n_ids:
        raise VectorError(
            f"Got {n_ids} entity ids but {matrix.shape[0]} vectors: give one "
            "vector (row) per entity."
        )
    return matrix


def records_arrays(entity_vector_length, entities, aliases):
    """The arguments of ``from_arrays`` (after vocab) for records: (entity id,
    freq, vector) and (alias, entity ids, priors)."""
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
    return ids, freqs, matrix, alias_texts, offsets, cands, priors


def spacy_arrays(spacy_kb):
    """The arguments of ``from_arrays`` (after vocab) for a spaCy KB's content.

    spaCy exposes an entity's frequency only through its candidates, so an
    entity that no alias refers to gets frequency 0.
    """
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
    return (ids, freqs, vectors, aliases, numpy.asarray(offsets, dtype=numpy.int64),
            numpy.asarray(entities, dtype=numpy.int64),
            numpy.asarray(priors, dtype=numpy.float32))


def small_priors(alias, probabilities) -> list:
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


# ------------------------------------------------------------------ from blobs
# Bulk builds whose strings come as one UTF-8 blob + offsets (numpy), so a build
# of millions of ids and aliases never holds a Python str per string.


def blob_hashes(offsets, blob, what: str) -> numpy.ndarray:
    """The hashes of the strings ``blob[offsets[i]:offsets[i + 1]]`` (as
    ``hash_string`` of their text), checking the offsets and that no string is empty.

    offsets (array-like): n + 1 int64 offsets, from 0, increasing.
    blob (array-like): The UTF-8 bytes (uint8).
    RETURNS (numpy.ndarray): uint64 hashes [n].
    """
    cdef const int64_t[::1] bounds = numpy.ascontiguousarray(offsets, dtype=numpy.int64)
    cdef const unsigned char[::1] data = numpy.ascontiguousarray(
        numpy.frombuffer(blob, dtype=numpy.uint8) if isinstance(blob, (bytes, bytearray))
        else blob, dtype=numpy.uint8)
    cdef int64_t n = bounds.shape[0] - 1, i, bad = -1
    if n < 0 or bounds[0] != 0 or bounds[n] > data.shape[0]:
        raise KBError(f"The {what} offsets must start at 0 and end within the blob.")
    hashes = numpy.empty(n, dtype=numpy.uint64)
    cdef uint64_t[::1] out = hashes
    cdef const char* base = <const char*>&data[0] if data.shape[0] else NULL
    with nogil:
        for i in range(n):
            if bounds[i + 1] <= bounds[i]:
                bad = i
                break
            out[i] = hash_utf8(base + bounds[i], bounds[i + 1] - bounds[i])
    if bad >= 0:
        raise EmptyStringError(
            f"The {what} at position {bad} is empty or its offsets decrease.")
    return hashes


def _blob_strings(offsets, blob) -> list:
    """The strings of a blob, decoded (the slow path of duplicate ids)."""
    data = bytes(numpy.asarray(blob, dtype=numpy.uint8))
    bounds = numpy.asarray(offsets, dtype=numpy.int64).tolist()
    return [data[bounds[i]:bounds[i + 1]].decode("utf8") for i in range(len(bounds) - 1)]


def _checked_utf8(blob, offsets, what: str):
    """The blob as a uint8 array, after checking that it is valid UTF-8 and that
    no string starts inside a character (KBTypeError)."""
    array = numpy.ascontiguousarray(
        numpy.frombuffer(blob, dtype=numpy.uint8) if isinstance(blob, (bytes, bytearray))
        else blob, dtype=numpy.uint8)
    cdef int64_t start = 0, end, n = len(array), step = 1 << 24
    try:
        # in 16 MB pieces cut before a character, never one str of the whole blob
        while start < n:
            end = min(start + step, n)
            while end < n and (array[end] & 0xC0) == 0x80:
                end -= 1
            array[start:end].tobytes().decode("utf8")
            start = end
    except UnicodeDecodeError as err:
        raise KBTypeError(f"The {what} are not valid UTF-8: {err}.") from None
    starts = numpy.asarray(offsets, dtype=numpy.int64)[:-1]
    starts = starts[(starts >= 0) & (starts < n)]
    if len(starts) and ((array[starts] & 0xC0) == 0x80).any():
        raise KBTypeError(f"Some of the {what} start inside a UTF-8 character.")
    return array


def from_blobs(cls, vocab, entity_offsets, entity_blob, freqs, vectors,
               alias_string_offsets, alias_blob, alias_offsets, candidate_entities,
               priors):
    """``cls.from_arrays`` for strings given as UTF-8 blob + offsets.

    The same checks as ``from_arrays`` (offsets, priors, vectors, frequencies,
    candidates), the strings hashed and copied in C. Duplicate ids or aliases
    (warned about, the first kept) take ``from_arrays``'s path, decoding the
    strings. A C-contiguous float32 ``vectors`` array that owns its data
    becomes the KB's vector storage without a copy: do not modify it afterwards.
    RETURNS (InMemoryLookupKB): the new, writable KB.
    """
    entity_offsets = numpy.ascontiguousarray(entity_offsets, dtype=numpy.int64)
    alias_string_offsets = numpy.ascontiguousarray(alias_string_offsets, dtype=numpy.int64)
    entity_blob = _checked_utf8(entity_blob, entity_offsets, "entity ids")
    alias_blob = _checked_utf8(alias_blob, alias_string_offsets, "alias texts")
    n = len(entity_offsets) - 1
    m = len(alias_string_offsets) - 1
    entity_hashes = blob_hashes(entity_offsets, entity_blob, "entity id")
    alias_hashes = blob_hashes(alias_string_offsets, alias_blob, "alias")
    if has_duplicates(entity_hashes) or has_duplicates(alias_hashes):
        return cls.from_arrays(vocab, _blob_strings(entity_offsets, entity_blob), freqs,
                               vectors, _blob_strings(alias_string_offsets, alias_blob),
                               alias_offsets, candidate_entities, priors)
    matrix = vector_matrix(vectors, n)
    cdef InMemoryLookupKB kb = cls(vocab, int(matrix.shape[1]))
    freqs = numpy.asarray(freqs, dtype=numpy.float32).reshape(-1)
    if len(freqs) != n:
        raise LengthMismatchError(f"Got {n} entity ids but {len(freqs)} frequencies.")
    if not numpy.isfinite(freqs).all():
        raise KBError("Some entity frequency is not finite.")
    matrix = checked_vectors(matrix, n, kb.entity_vector_length, "some entity")
    entity_block = (numpy.diff(entity_offsets).astype(numpy.uint64),
                    entity_blob[: int(entity_offsets[-1])])
    alias_block = (numpy.diff(alias_string_offsets).astype(numpy.uint64),
                   alias_blob[: int(alias_string_offsets[-1])])
    aliases = _checked_alias_arrays(alias_hashes, alias_block, alias_offsets,
                                    candidate_entities, priors, n)
    if matrix.flags.writeable and matrix.flags.owndata:
        # Adopted as the KB's storage (_append_entities then copies it onto itself):
        # at millions of entities a second matrix is the build's largest transient.
        kb._vectors = matrix
    kb._fill((entity_hashes, freqs, matrix, entity_block), aliases)
    return kb


def _checked_alias_arrays(hashes, block, alias_offsets, candidate_entities, priors,
                          int64_t n_entities):
    """prepare_aliases's checks for distinct aliases; the arguments of _append_aliases."""
    m = len(hashes)
    offsets = numpy.asarray(alias_offsets, dtype=numpy.int64).reshape(-1)
    cands = numpy.asarray(candidate_entities, dtype=numpy.int64).reshape(-1)
    probs = numpy.asarray(priors, dtype=numpy.float32).reshape(-1)
    if len(offsets) != m + 1:
        raise LengthMismatchError(
            f"alias_offsets must have {m + 1} items (one more than the aliases), got "
            f"{len(offsets)}.")
    if len(cands) != len(probs):
        raise LengthMismatchError(
            f"Got {len(cands)} candidate entities but {len(probs)} priors.")
    if offsets[0] != 0 or offsets[-1] != len(cands) or (numpy.diff(offsets) < 0).any():
        raise KBError("alias_offsets must start at 0, never decrease, and end at the "
                      f"number of candidates ({len(cands)}).")
    if len(cands) and (cands.min() < 0 or cands.max() >= n_entities):
        raise UnknownEntityError(
            f"A candidate entity index is out of range: there are {n_entities} entity ids.")
    if not ((probs >= 0) & (probs <= 1)).all():
        raise ProbabilityError("Prior probabilities must be in [0, 1].")
    sums = numpy.diff(numpy.concatenate([[0.0], numpy.cumsum(probs, dtype=numpy.float64)])[offsets])
    if (sums > PROB_SUM_TOLERANCE).any():
        raise ProbabilityError("The prior probabilities of some alias sum to more than 1.")
    del sums
    return (hashes, block, offsets.astype(numpy.uint64), cands.astype(numpy.uint32),
            probs)


def set_name_blob(InMemoryLookupKB kb, offsets, blob) -> None:
    """Name every entity row of ``kb`` at once: row e is named
    ``blob[offsets[e]:offsets[e + 1]]`` (UTF-8; empty: no name)."""
    offsets = numpy.ascontiguousarray(offsets, dtype=numpy.uint64)
    if len(offsets) != kb.c.n_entities + 1:
        raise LengthMismatchError(
            f"Got {len(offsets) - 1} names for a KB of {kb.c.n_entities} entities.")
    blob = _checked_utf8(blob, offsets.view(numpy.int64), "entity names")
    if int(offsets[0]) != 0 or (numpy.diff(offsets.view(numpy.int64)) < 0).any() \
            or int(offsets[-1]) > len(blob):
        raise KBError("Name offsets must start at 0, never decrease and end within the names.")
    kb._check_writable()
    kb._names = EntityNames(offsets, numpy.array(blob[: int(offsets[-1])]))


def set_relation_rows(InMemoryLookupKB kb, child_rows, parent_rows) -> None:
    """``kb.set_relations`` for entity rows instead of ids."""
    kb._check_writable()
    child_rows = numpy.asarray(child_rows, dtype=numpy.int64)
    parent_rows = numpy.asarray(parent_rows, dtype=numpy.int64)
    n = kb.c.n_entities
    if len(child_rows) != len(parent_rows):
        raise LengthMismatchError(
            f"Got {len(child_rows)} children and {len(parent_rows)} parents.")
    for rows in (child_rows, parent_rows):
        if len(rows) and (rows.min() < 0 or rows.max() >= n):
            raise UnknownEntityError(f"An entity row is out of range (0..{n - 1}).")
    if numpy.any(child_rows == parent_rows):
        raise KBError("An entity cannot be its own parent.")
    kb._relations.set_all(child_rows, parent_rows, int(n))


def set_alias_index(InMemoryLookupKB kb, arrays, normalizer, bint fuzzy):
    """Give ``kb`` the alias index held in ``arrays`` (the sections
    ``AliasIndex.build`` makes, e.g. built in chunks elsewhere)."""
    from .alias_index import _make_index

    index = _make_index(arrays, normalizer, fuzzy, kb.c.n_entities, kb.c.n_aliases,
                        "the alias index")
    kb._index = index
    kb._index_in_file = False
    return index

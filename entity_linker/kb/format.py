"""The KB binary file format: write, open (zero-copy), validate.

One little-endian file: a 1024-byte header, then 29 sections, each starting at
a 64-byte aligned offset (still read: format version 3, the first 27 sections,
without the entity names; version 2, the first 25, without the entity
relations; version 1, a 512-byte header and the first 13 sections, without
the alias index). The header holds the counts, the vector length, the
offset, length and CRC-32 of every section, and a CRC-32 of itself. Opening a
file checks the header and every offset and length against the file size
before any view is formed (O(1): no section is read); ``validate(deep=True)``
also checks every checksum and every index in the tables. The layout is
documented field by field in docs/FORMAT.md.
"""

import json
import os
import struct
import sys
import tempfile
import zlib
from pathlib import Path
from typing import IO, Callable, Dict, NamedTuple, Optional, Union

import numpy

from ..errors import KBFormatError, KBNotFoundError

MAGIC = b"ELKBFMT\x00"
FORMAT_VERSION = 4
ENDIAN_MARKER = 0x01020304
# Header size of each version this module reads (the header grew with the index).
HEADER_SIZES = {1: 512, 2: 1024, 3: 1024, 4: 1024}
HEADER_SIZE = HEADER_SIZES[FORMAT_VERSION]
MIN_HEADER_SIZE = min(HEADER_SIZES.values())
_CRC_OFFSET = HEADER_SIZE - 4  # the header checksum of the current version
ALIGNMENT = 64
FILE_NAME = "kb.bin"
# Longest entity vector a KB may hold (a header with more is corrupt).
MAX_VECTOR_LENGTH = 1 << 16
# spaCy accepts prior sums up to this (rounding errors).
PROB_SUM_TOLERANCE = 1.00001

# name, dtype. Order is the order in the file. Version 2 stores the hash tables
# as uint32 slot tables (tables.pyx); version 1 stored preshed-layout cells.
BASE_SECTIONS_V1 = (
    ("entity_hashes", numpy.dtype("<u8")),
    ("entity_freqs", numpy.dtype("<f4")),
    ("vectors", numpy.dtype("<f4")),
    ("entity_string_offsets", numpy.dtype("<u8")),
    ("entity_strings", numpy.dtype("u1")),
    ("alias_hashes", numpy.dtype("<u8")),
    ("alias_offsets", numpy.dtype("<u8")),
    ("alias_string_offsets", numpy.dtype("<u8")),
    ("alias_strings", numpy.dtype("u1")),
    ("candidate_rows", numpy.dtype("<u4")),
    ("candidate_priors", numpy.dtype("<f4")),
    ("entity_cells", numpy.dtype("<u8")),  # (key, row + 1) pairs
    ("alias_cells", numpy.dtype("<u8")),
)
BASE_SECTIONS = BASE_SECTIONS_V1[:11] + (
    ("entity_slots", numpy.dtype("<u4")),  # row + 1 of entity_hashes[row]
    ("alias_slots", numpy.dtype("<u4")),
)
# The alias index (alias_index.pyx): all empty when the KB has none.
INDEX_SECTIONS = (
    ("index_config", numpy.dtype("u1")),  # JSON settings; empty: no index
    ("norm_hashes", numpy.dtype("<u8")),
    ("norm_offsets", numpy.dtype("<u8")),
    ("norm_entity_rows", numpy.dtype("<u4")),
    ("norm_priors", numpy.dtype("<f4")),
    ("norm_alias_rows", numpy.dtype("<u4")),
    ("norm_slots", numpy.dtype("<u4")),  # key row + 1 of norm_hashes[row]
    ("norm_gram_counts", numpy.dtype("<u4")),
    ("gram_keys", numpy.dtype("<u8")),
    ("gram_offsets", numpy.dtype("<u8")),
    ("gram_postings", numpy.dtype("<u4")),
    ("gram_slots", numpy.dtype("<u4")),  # gram row + 1 of gram_keys[row]
)
# The entity relations (relations.py, version 3): CSR of each entity's parent
# rows; both empty when the KB has none.
RELATION_SECTIONS = (
    ("parent_offsets", numpy.dtype("<u8")),  # n_entities + 1, or empty
    ("parent_rows", numpy.dtype("<u4")),
)
# The entity names (names.py, version 4): CSR of UTF-8 bytes over entity rows;
# both empty when the KB has none.
NAME_SECTIONS = (
    ("name_offsets", numpy.dtype("<u8")),  # n_entities + 1, or empty
    ("name_strings", numpy.dtype("u1")),
)
SECTIONS = BASE_SECTIONS + INDEX_SECTIONS + RELATION_SECTIONS + NAME_SECTIONS
# Header flag (version 2 and later): the two string offsets sections are uint32, not
# uint64. Set whenever both string tables are under 4 GiB, which saves 4 bytes
# per entity and alias.
FLAG_NARROW_STRING_OFFSETS = 1
_STRING_OFFSETS = ("entity_string_offsets", "alias_string_offsets")
SECTION_NAMES = tuple(name for name, _ in SECTIONS)
VERSION_SECTIONS = {
    1: BASE_SECTIONS_V1,
    2: BASE_SECTIONS + INDEX_SECTIONS,
    3: BASE_SECTIONS + INDEX_SECTIONS + RELATION_SECTIONS,
    4: SECTIONS,
}

# magic, version, endian, file_size, n_entities, n_aliases, n_candidates,
# vector_length, entity_cells_length, alias_cells_length, n_sections, flags
# (the two table lengths count cells in version 1, slots from version 2)
_HEAD = struct.Struct("<8sIIQQQQQQQII")
# section id, crc32, offset, length, reserved
_SECTION = struct.Struct("<IIQQQ")

if sys.byteorder != "little":  # pragma: no cover - no big-endian CI machine
    raise ImportError("entity_linker's KB format needs a little-endian machine.")


class Header(NamedTuple):
    """The decoded header of a KB file."""

    format_version: int
    file_size: int
    n_entities: int
    n_aliases: int
    n_candidates: int
    vector_length: int
    entity_cells_length: int
    alias_cells_length: int
    sections: Dict[str, tuple]  # name -> (offset, length, crc32)
    flags: int = 0

    @property
    def has_alias_index(self) -> bool:
        """Whether the file holds the normalised/trigram alias index."""
        section = self.sections.get("index_config")
        return section is not None and section[1] > 0


def section_dtype(name: str, dtype: numpy.dtype, flags: int) -> numpy.dtype:
    """The dtype a section has in a file with these header flags."""
    if name in _STRING_OFFSETS and flags & FLAG_NARROW_STRING_OFFSETS:
        return numpy.dtype("<u4")
    return dtype


def _align(offset: int) -> int:
    return (offset + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def _expected_items(name: str, h: Header) -> Union[int, None]:
    """Number of items a section must hold, or None when its offsets decide."""
    return {
        "entity_hashes": h.n_entities,
        "entity_freqs": h.n_entities,
        "vectors": h.n_entities * h.vector_length,
        "entity_string_offsets": h.n_entities + 1,
        "entity_strings": None,
        "alias_hashes": h.n_aliases,
        "alias_offsets": h.n_aliases + 1,
        "alias_string_offsets": h.n_aliases + 1,
        "alias_strings": None,
        "candidate_rows": h.n_candidates,
        "candidate_priors": h.n_candidates,
        "entity_cells": 2 * h.entity_cells_length,
        "alias_cells": 2 * h.alias_cells_length,
        "entity_slots": h.entity_cells_length,
        "alias_slots": h.alias_cells_length,
    }.get(name)  # the index sections are checked by _check_index_shapes


def write(out: IO[bytes], arrays: Dict[str, numpy.ndarray], vector_length: int,
          narrow_strings: Optional[bool] = None) -> int:
    """Write a KB file to a binary file object; return the number of bytes written.

    arrays (Dict[str, numpy.ndarray]): one C-contiguous array per section name,
        already compact and of the section's dtype.
    narrow_strings (Optional[bool]): Store the string offsets as uint32 (None:
        whenever both string tables are under 4 GiB).
    """
    n_entities = len(arrays["entity_hashes"])
    n_aliases = len(arrays["alias_hashes"])
    n_candidates = len(arrays["candidate_rows"])
    fits = max(len(arrays["entity_strings"]), len(arrays["alias_strings"])) < 2**32
    if narrow_strings and not fits:
        raise ValueError("A string table over 4 GiB needs uint64 string offsets.")
    narrow = fits if narrow_strings is None else narrow_strings
    flags = FLAG_NARROW_STRING_OFFSETS if narrow else 0
    blobs = []
    offset = HEADER_SIZE
    table = []
    for index, (name, dtype) in enumerate(SECTIONS):
        array = numpy.ascontiguousarray(arrays.get(name, ()),
                                        dtype=section_dtype(name, dtype, flags))
        data = memoryview(array.reshape(-1)).cast("B") if array.size else memoryview(b"")
        offset = _align(offset)
        table.append(_SECTION.pack(index, zlib.crc32(data), offset, data.nbytes, 0))
        blobs.append((offset, data))
        offset += data.nbytes
    file_size = offset
    head = _HEAD.pack(
        MAGIC,
        FORMAT_VERSION,
        ENDIAN_MARKER,
        file_size,
        n_entities,
        n_aliases,
        n_candidates,
        vector_length,
        len(arrays["entity_slots"]),
        len(arrays["alias_slots"]),
        len(SECTIONS),
        flags,
    )
    header = bytearray(HEADER_SIZE)
    header[: _HEAD.size] = head
    table_bytes = b"".join(table)
    header[_HEAD.size : _HEAD.size + len(table_bytes)] = table_bytes
    crc_offset = HEADER_SIZE - 4
    header[crc_offset:] = struct.pack("<I", zlib.crc32(bytes(header[:crc_offset])))
    out.write(header)
    position = HEADER_SIZE
    for start, data in blobs:
        out.write(b"\0" * (start - position))
        out.write(data)
        position = start + data.nbytes
    return file_size


def write_file(path: Union[str, Path], arrays: Dict[str, numpy.ndarray], vector_length: int):
    """Write a KB file atomically: to a temp file in the same directory, then rename."""
    _atomic_write(path, lambda out: write(out, arrays, vector_length))


def copy_file(path: Union[str, Path], data) -> None:
    """Write an existing KB image (bytes or a buffer) atomically to path."""
    _atomic_write(path, lambda out: out.write(data))


def _atomic_write(path: Union[str, Path], fill: Callable[[IO[bytes]], object]) -> None:
    """Run ``fill`` on a temp file beside ``path``, then rename it into place, so
    a crash or an error never leaves a half-written file under the real name."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        _make_readable(tmp_name)
        with os.fdopen(fd, "wb") as out:
            fill(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


def _make_readable(path: str) -> None:
    """mkstemp creates 0600 files; a KB is meant to be mapped by other users too."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def read_header(buffer, source: str) -> Header:
    """Decode and check the header of a KB image against its size.

    Raises KBFormatError naming ``source`` when anything is wrong.
    """
    size = len(buffer)
    if size < MIN_HEADER_SIZE:
        raise KBFormatError(
            f"{source} is truncated: a KB file starts with a {MIN_HEADER_SIZE}-byte "
            f"header at least, found only {size:,} bytes. Was the file fully written?"
        )
    raw = bytes(buffer[:MIN_HEADER_SIZE])
    (magic, version, endian, file_size, n_entities, n_aliases, n_candidates, vector_length,
     entity_cells_length, alias_cells_length, n_sections, flags) = _HEAD.unpack_from(raw)
    if magic != MAGIC:
        raise KBFormatError(
            f"{source} is not an entity_linker KB file (magic bytes {magic!r}, "
            f"expected {MAGIC!r}). A KB saved by spaCy's InMemoryLookupKB must be "
            "converted: load it with spaCy and pass it to InMemoryLookupKB.from_spacy()."
        )
    if endian != ENDIAN_MARKER:
        raise KBFormatError(f"{source} has a bad byte-order marker {endian:#010x}.")
    if version not in HEADER_SIZES:
        raise KBFormatError(
            f"{source} uses KB format version {version}; this entity_linker reads "
            f"versions {', '.join(map(str, HEADER_SIZES))}. Upgrade entity_linker or "
            "rebuild the KB."
        )
    if vector_length > MAX_VECTOR_LENGTH:
        raise KBFormatError(
            f"{source}: vector length {vector_length:,} exceeds the maximum "
            f"({MAX_VECTOR_LENGTH:,}); the header is corrupt."
        )
    header_size = HEADER_SIZES[version]
    if size < header_size:
        raise KBFormatError(
            f"{source} is truncated: a version {version} KB file starts with a "
            f"{header_size}-byte header, found only {size:,} bytes."
        )
    raw = bytes(buffer[:header_size])
    crc_offset = header_size - 4
    (stored_crc,) = struct.unpack_from("<I", raw, crc_offset)
    if zlib.crc32(raw[:crc_offset]) != stored_crc:
        raise KBFormatError(f"{source} has a corrupt header (checksum mismatch).")
    if file_size != size:
        raise KBFormatError(
            f"{source} is truncated or padded: the header says {file_size:,} bytes, "
            f"found {size:,}. Was the file fully written?"
        )
    if flags & ~(FLAG_NARROW_STRING_OFFSETS if version >= 2 else 0):
        raise KBFormatError(f"{source} has unknown header flags {flags:#x}; the header is corrupt.")
    layout = VERSION_SECTIONS[version]
    if n_sections != len(layout):
        raise KBFormatError(
            f"{source} has {n_sections} sections, format version {version} has "
            f"{len(layout)}."
        )
    sections = {}
    previous_end = header_size
    for index, (name, _) in enumerate(layout):
        section_id, crc, offset, length, _ = _SECTION.unpack_from(
            raw, _HEAD.size + index * _SECTION.size
        )
        if section_id != index:
            raise KBFormatError(f"{source}: section {index} ({name}) has id {section_id}.")
        if offset % ALIGNMENT or offset < previous_end or offset + length > size:
            raise KBFormatError(
                f"{source}: section {name} at offset {offset:,} with {length:,} bytes lies "
                f"outside the file ({size:,} bytes) or overlaps the previous section."
            )
        sections[name] = (offset, length, crc)
        previous_end = offset + length
    header = Header(
        version, file_size, n_entities, n_aliases, n_candidates, vector_length,
        entity_cells_length, alias_cells_length, sections, flags,
    )
    for cells, count, name in (
        (entity_cells_length, n_entities, "entity"),
        (alias_cells_length, n_aliases, "alias"),
    ):
        if cells & (cells - 1) or (count and cells <= count):
            raise KBFormatError(
                f"{source}: the {name} hash table has {cells:,} "
                f"{'slots' if version >= 2 else 'cells'} for {count:,} rows; "
                "it needs a power of two larger than the row count."
            )
    for name, dtype in layout:
        dtype = section_dtype(name, dtype, flags)
        items = _expected_items(name, header)
        length = sections[name][1]
        if length % dtype.itemsize:
            raise KBFormatError(
                f"{source}: section {name} holds {length:,} bytes, not a whole number of "
                f"{dtype.itemsize}-byte items."
            )
        if items is not None and items * dtype.itemsize != length:
            raise KBFormatError(
                f"{source}: section {name} holds {length:,} bytes, the header's counts "
                f"need {items * dtype.itemsize:,}."
            )
    return header


def open_views(buffer, source: str) -> tuple:
    """Check a KB image and return (header, {section name: read-only numpy view}).

    Cheap at any size: reads the header and the last item of each offsets
    array, nothing else; every other index is bounds-checked where it is used.
    """
    header = read_header(buffer, source)
    views = {}
    for name, dtype in VERSION_SECTIONS[header.format_version]:
        dtype = section_dtype(name, dtype, header.flags)
        offset, length, _ = header.sections[name]
        view = numpy.frombuffer(buffer, dtype=dtype, count=length // dtype.itemsize,
                                offset=offset)
        view.flags.writeable = False
        views[name] = view
    for name, dtype in SECTIONS:  # older files: no names (v3), relations (v2), index (v1)
        if name not in views:
            views[name] = numpy.zeros(0, dtype=dtype)
            views[name].flags.writeable = False
    for offsets, blob in (
        ("entity_string_offsets", "entity_strings"),
        ("alias_string_offsets", "alias_strings"),
    ):
        if int(views[offsets][0]) != 0 or int(views[offsets][-1]) != len(views[blob]):
            raise KBFormatError(
                f"{source}: {offsets} must run from 0 to the size of {blob} "
                f"({len(views[blob]):,} bytes)."
            )
    alias_offsets = views["alias_offsets"]
    if int(alias_offsets[0]) != 0 or int(alias_offsets[-1]) != header.n_candidates:
        raise KBFormatError(
            f"{source}: alias_offsets must run from 0 to the candidate count "
            f"({header.n_candidates:,})."
        )
    _check_index_shapes(views, header, source)
    _check_relation_shapes(views, header, source)
    _check_name_shapes(views, header, source)
    return header, views


def _check_index_shapes(views, header: Header, source: str) -> None:
    """The alias index sections agree in length with each other (O(1))."""
    names = [name for name, _ in INDEX_SECTIONS]
    if not header.has_alias_index:
        if any(len(views[name]) for name in names):
            raise KBFormatError(f"{source}: alias index sections without index settings.")
        return
    n_keys = len(views["norm_hashes"])
    n_slots = len(views["norm_entity_rows"])
    n_grams = len(views["gram_keys"])
    problems = []
    if len(views["norm_offsets"]) != n_keys + 1:
        problems.append("norm_offsets needs one more item than norm_hashes")
    elif int(views["norm_offsets"][0]) != 0 or int(views["norm_offsets"][-1]) != n_slots:
        problems.append("norm_offsets must run from 0 to the slot count")
    if len(views["norm_priors"]) != n_slots or len(views["norm_alias_rows"]) != n_slots:
        problems.append("the slot arrays differ in length")
    for table, count in (("norm_slots", n_keys), ("gram_slots", n_grams)):
        length = len(views[table])
        if (length & (length - 1)) or length <= count:
            if table == "gram_slots" and not n_grams and not length:
                continue
            problems.append(f"{table} is not a power-of-two table larger than its keys")
    if n_grams or len(views["gram_offsets"]) or len(views["norm_gram_counts"]):
        if len(views["norm_gram_counts"]) != n_keys:
            problems.append("norm_gram_counts needs one item per key")
        if len(views["gram_offsets"]) != n_grams + 1:
            problems.append("gram_offsets needs one more item than gram_keys")
        elif (int(views["gram_offsets"][0]) != 0
              or int(views["gram_offsets"][-1]) != len(views["gram_postings"])):
            problems.append("gram_offsets must run from 0 to the posting count")
    if problems:
        raise KBFormatError(f"{source}: the alias index is corrupt: {'; '.join(problems)}.")


def _check_relation_shapes(views, header: Header, source: str) -> None:
    """The relation sections are empty, or CSR over every entity (O(1))."""
    offsets, rows = views["parent_offsets"], views["parent_rows"]
    if not len(offsets):
        if len(rows):
            raise KBFormatError(f"{source}: parent_rows without parent_offsets.")
        return
    if (len(offsets) != header.n_entities + 1 or int(offsets[0]) != 0
            or int(offsets[-1]) != len(rows)):
        raise KBFormatError(
            f"{source}: the entity relations are corrupt: parent_offsets must hold one "
            f"item more than the {header.n_entities:,} entities and run from 0 to the "
            f"length of parent_rows ({len(rows):,})."
        )


def _check_name_shapes(views, header: Header, source: str) -> None:
    """The name sections are empty, or CSR over every entity (O(1))."""
    offsets, data = views["name_offsets"], views["name_strings"]
    if not len(offsets):
        if len(data):
            raise KBFormatError(f"{source}: name_strings without name_offsets.")
        return
    if (len(offsets) != header.n_entities + 1 or int(offsets[0]) != 0
            or int(offsets[-1]) != len(data)):
        raise KBFormatError(
            f"{source}: the entity names are corrupt: name_offsets must hold one item "
            f"more than the {header.n_entities:,} entities and run from 0 to the size "
            f"of name_strings ({len(data):,} bytes)."
        )


def _decreases(offsets: numpy.ndarray) -> bool:
    """Whether an unsigned offsets array ever decreases (compared unsigned: a
    cast to int64 would wrap values >= 2**63 and hide the decrease)."""
    return bool(numpy.any(offsets[1:] < offsets[:-1]))


def _check_table(views, source, table_name, hashes_name, n_rows):
    """Every row's hash is stored once, in a cell or slot that a lookup reaches."""
    hashes = views[hashes_name]
    if n_rows and (int(hashes.min()) < 2 or len(numpy.unique(hashes)) != n_rows):
        raise KBFormatError(f"{source}: {hashes_name} holds a reserved (0, 1) or repeated hash.")
    table = views[table_name]
    if table.dtype.itemsize == 8:  # version 1: (key, row + 1) cells
        table = table.reshape(-1, 2)
        occupied = table[:, 0] != 0
        values = table[occupied, 1]
    else:  # slots: row + 1, the key is hashes[row]
        occupied = table != 0
        values = table[occupied].astype(numpy.uint64)
    used = numpy.flatnonzero(occupied)
    if len(used) != n_rows or (n_rows and (values.min() < 1 or values.max() > n_rows)):
        raise KBFormatError(f"{source}: the {table_name} table does not map every row once.")
    if not n_rows:
        return
    keys = hashes[(values - 1).astype(numpy.int64)]
    if table.ndim == 2 and not numpy.array_equal(keys, table[occupied, 0]):
        raise KBFormatError(f"{source}: the {table_name} table disagrees with {hashes_name}.")
    if len(numpy.unique(values)) != n_rows:
        raise KBFormatError(f"{source}: the {table_name} table maps two keys to one row.")
    # Linear probing finds a key only if no empty slot lies between its home slot and it.
    length = len(occupied)
    empty = numpy.concatenate([[0], numpy.cumsum(numpy.tile(~occupied, 2))])
    home = (keys & numpy.uint64(length - 1)).astype(numpy.int64)
    position = numpy.where(used >= home, used, used + length)
    if numpy.any(empty[position] - empty[home] != 0):
        raise KBFormatError(f"{source}: a key of the {table_name} table is off its probe path.")


def _check_strings(views, source, kind, n_rows):
    """Every string is valid UTF-8 and hashes to its row's stored hash."""
    from .hashing import hash_string

    bounds = views[f"{kind}_string_offsets"].tolist()
    data = views[f"{kind}_strings"].tobytes()
    hashes = views[f"{kind}_hashes"]
    for row in range(n_rows):
        try:
            text = data[bounds[row] : bounds[row + 1]].decode("utf8")
        except UnicodeDecodeError:
            raise KBFormatError(f"{source}: {kind} string {row} is not valid UTF-8.") from None
        if hash_string(text) != hashes[row]:
            raise KBFormatError(f"{source}: {kind} string {row} does not match its hash.")


def validate_buffer(buffer, source: str, deep: bool = True) -> Header:
    """Check a KB image; with ``deep``, every checksum and every stored index too."""
    header, views = open_views(buffer, source)
    if not deep:
        return header
    for name, _ in VERSION_SECTIONS[header.format_version]:
        offset, length, crc = header.sections[name]
        if zlib.crc32(memoryview(buffer)[offset : offset + length]) != crc:
            raise KBFormatError(
                f"{source}: checksum mismatch in section {name} (bytes {offset:,} to "
                f"{offset + length:,}). The file is corrupt; rebuild or re-copy it."
            )
    for name in ("entity_string_offsets", "alias_string_offsets", "alias_offsets"):
        if _decreases(views[name]):
            raise KBFormatError(f"{source}: {name} is not monotonic.")
    if header.n_candidates and int(views["candidate_rows"].max()) >= header.n_entities:
        raise KBFormatError(f"{source}: a candidate points past the last entity.")
    priors = views["candidate_priors"]
    if not numpy.all((priors >= 0) & (priors <= 1)):
        raise KBFormatError(f"{source}: a prior probability is outside [0, 1] or NaN.")
    sums = numpy.diff(numpy.concatenate([[0.0], numpy.cumsum(priors, dtype=numpy.float64)])[
        views["alias_offsets"].astype(numpy.int64)])
    if numpy.any(sums > PROB_SUM_TOLERANCE):
        raise KBFormatError(f"{source}: the priors of an alias sum to more than 1.")
    if not numpy.all(numpy.isfinite(views["vectors"])):
        raise KBFormatError(f"{source}: an entity vector holds NaN or inf.")
    if not numpy.all(numpy.isfinite(views["entity_freqs"])):
        raise KBFormatError(f"{source}: an entity frequency is NaN or inf.")
    tables = "slots" if header.format_version >= 2 else "cells"
    _check_table(views, source, f"entity_{tables}", "entity_hashes", header.n_entities)
    _check_table(views, source, f"alias_{tables}", "alias_hashes", header.n_aliases)
    _check_strings(views, source, "entity", header.n_entities)
    _check_strings(views, source, "alias", header.n_aliases)
    if header.has_alias_index:
        _check_index(views, header, source)
    if len(views["parent_offsets"]):
        if _decreases(views["parent_offsets"]):
            raise KBFormatError(f"{source}: parent_offsets is not monotonic.")
        parents = views["parent_rows"]
        if len(parents) and int(parents.max()) >= header.n_entities:
            raise KBFormatError(f"{source}: a parent row points past the last entity.")
    if len(views["name_offsets"]):
        if _decreases(views["name_offsets"]):
            raise KBFormatError(f"{source}: name_offsets is not monotonic.")
        try:
            views["name_strings"].tobytes().decode("utf8")
        except UnicodeDecodeError:
            raise KBFormatError(f"{source}: an entity name is not valid UTF-8.") from None
    return header


def read_index_config(raw: bytes, source: str) -> tuple:
    """The (normalizer, fuzzy) settings stored in an index_config section."""
    from .normalize import AliasNormalizer

    try:
        config = json.loads(raw.decode("utf8"))
        return AliasNormalizer.from_dict(config["normalizer"]), bool(config["fuzzy"])
    except (ValueError, KeyError, TypeError, RecursionError) as err:
        raise KBFormatError(
            f"{source}: the alias index settings are corrupt ({type(err).__name__}: "
            f"{str(err)[:200]})."
        ) from None


def _check_index(views, header: Header, source: str) -> None:
    """Every index stored in the alias index lies in range (deep validation)."""
    read_index_config(views["index_config"].tobytes(), source)
    n_keys = len(views["norm_hashes"])
    for name, limit in (
        ("norm_entity_rows", header.n_entities),
        ("norm_alias_rows", header.n_aliases),
        ("gram_postings", n_keys),
    ):
        if len(views[name]) and int(views[name].max()) >= limit:
            raise KBFormatError(f"{source}: {name} points past the end of its table.")
    for name in ("norm_offsets", "gram_offsets"):
        if _decreases(views[name]):
            raise KBFormatError(f"{source}: {name} is not monotonic.")
    priors = views["norm_priors"]
    if not numpy.all((priors >= 0) & (priors <= 1)):
        raise KBFormatError(f"{source}: an alias index prior is outside [0, 1] or NaN.")
    if len(views["norm_gram_counts"]) and int(views["norm_gram_counts"].min()) < 1:
        raise KBFormatError(f"{source}: a normalised alias has no trigrams.")
    _check_table(views, source, "norm_slots", "norm_hashes", n_keys)
    if len(views["gram_keys"]):
        _check_table(views, source, "gram_slots", "gram_keys", len(views["gram_keys"]))


def validate(path: Union[str, Path], deep: bool = True) -> Header:
    """Check a KB file (or a KB directory written by ``to_disk``).

    path (Union[str, Path]): The kb.bin file or the directory holding it.
    deep (bool): Also verify every section checksum and every stored index.
    RETURNS (Header): The decoded header.
    """
    path = resolve_path(path)
    with open(path, "rb") as file:
        data = file.read()
    return validate_buffer(data, str(path), deep=deep)


# The file spaCy's InMemoryLookupKB.to_disk writes (with strings.json).
SPACY_CONTENTS = "contents"


def resolve_path(path: Union[str, Path]) -> Path:
    """The KB file for a path that is either the file or a directory holding kb.bin.

    Raises KBNotFoundError (a ValueError and a FileNotFoundError) when there is
    none, and KBFormatError for a folder that spaCy's own KB wrote.
    """
    path = Path(path)
    if not path.exists():
        raise KBNotFoundError(
            f"Cannot load a KB from {path}: the path does not exist. Save a KB with "
            "kb.to_disk(directory) first."
        )
    if path.is_dir():
        if not (path / FILE_NAME).exists() and (path / SPACY_CONTENTS).exists():
            raise KBFormatError(
                f"{path} holds a KB saved by spaCy's InMemoryLookupKB ('{SPACY_CONTENTS}', "
                "no kb.bin). Convert it once: load it with spaCy "
                "(spacy.kb.InMemoryLookupKB(vocab, length).from_disk(path)), then "
                "entity_linker.InMemoryLookupKB.from_spacy(that_kb).to_disk(new_path)."
            )
        path = path / FILE_NAME
    if not path.exists():
        raise KBNotFoundError(
            f"No KB file at {path}. Save a KB with kb.to_disk(directory) first."
        )
    return path

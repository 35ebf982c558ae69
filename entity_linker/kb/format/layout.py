"""The KB file's layout: the magic, the versions and their header sizes, the
sections of each version and their dtypes, the header and section-table
structs, and the decoded ``Header``."""

import struct
import sys
from typing import Dict, NamedTuple, Union

import numpy

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

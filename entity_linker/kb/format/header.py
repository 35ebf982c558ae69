"""Opening a KB image: decode and check the header against the file size
(``read_header``) and form the zero-copy section views after the O(1) shape
checks (``open_views``). No section is read."""

import struct
import zlib

import numpy

from ...errors import KBFormatError
from .layout import (
    _HEAD,
    _SECTION,
    ALIGNMENT,
    ENDIAN_MARKER,
    FLAG_NARROW_STRING_OFFSETS,
    HEADER_SIZES,
    INDEX_SECTIONS,
    MAGIC,
    MAX_VECTOR_LENGTH,
    MIN_HEADER_SIZE,
    SECTIONS,
    VERSION_SECTIONS,
    Header,
    _expected_items,
    section_dtype,
)


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

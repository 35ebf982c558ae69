# cython: infer_types=True
"""The KB's file I/O: the kb.bin image, attaching its views, pickling.

``InMemoryLookupKB``'s ``to_bytes``/``to_disk``/``write_contents`` and
``from_bytes``/``from_disk``/``read_contents`` call these functions; the file
layout itself (header, sections, validation) is ``format.py``'s.

- Writing: a writable KB's arrays are compacted (dead candidate slots
  dropped, spare capacity cut) and its slot tables built (``compact_arrays``);
  a mapped KB's sections are checked whole before they are copied
  (``_mapped_arrays``), and a mapped image that holds its alias index is
  copied byte for byte.
- Reading: the file is memory-mapped (or the bytes kept) and every array of
  the KB becomes a read-only numpy view of it (``attach``); opening is O(1)
  but for a version 1 file, whose preshed-layout cells are replaced by slot
  tables built from the hashes (O(n), once). Nothing of the KB changes until
  every view is formed and checked.
- Pickling: a mapped KB pickles as its path, an in-memory one as its bytes.
"""
import io
import mmap

import numpy

from ..errors import KBFormatError
from . import format as kb_format
from .alias_index import AliasIndex
from .names import EntityNames
from .relations import EntityRelations
from .strings import corrupt_error
from .tables import build_slots

from .in_memory cimport InMemoryLookupKB
from .strings cimport StringTable


def compact_arrays(InMemoryLookupKB kb) -> dict:
    """The KB as compact arrays, one per file section."""
    if kb._buffer is not None:
        return _mapped_arrays(kb)
    n_e, n_a = kb.c.n_entities, kb.c.n_aliases
    starts = kb._alias_starts[:n_a].astype(numpy.int64)
    counts = kb._alias_ends[:n_a].astype(numpy.int64) - starts
    offsets = numpy.zeros(n_a + 1, dtype=numpy.uint64)
    numpy.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    if numpy.array_equal(starts, offsets[:-1].astype(numpy.int64)):
        index = slice(0, total)
    else:  # skip the dead slots left by append_alias
        index = numpy.repeat(starts - offsets[:-1].astype(numpy.int64), counts)
        index += numpy.arange(total, dtype=numpy.int64)
    entity_offsets, entity_strings = kb._entity_ids.arrays()
    alias_offsets, alias_strings = kb._alias_texts.arrays()
    return {
        "entity_hashes": kb._entity_hashes[:n_e],
        "entity_freqs": kb._entity_freqs[:n_e],
        "vectors": kb._vectors[:n_e],
        "entity_string_offsets": entity_offsets,
        "entity_strings": entity_strings,
        "alias_hashes": kb._alias_hashes[:n_a],
        "alias_offsets": offsets,
        "alias_string_offsets": alias_offsets,
        "alias_strings": alias_strings,
        "candidate_rows": kb._candidate_rows[index],
        "candidate_priors": kb._candidate_priors[index],
        "entity_slots": build_slots(kb._entity_hashes[:n_e]),
        "alias_slots": build_slots(kb._alias_hashes[:n_a]),
        **_index_arrays(kb),
        **kb._relations.arrays(n_e),
        **kb._names.arrays(n_e),
    }


def _index_arrays(InMemoryLookupKB kb) -> dict:
    return kb._index.arrays() if kb._index is not None else {}


def _mapped_arrays(InMemoryLookupKB kb) -> dict:
    """The sections of a mapped KB, after checking every offset (they are read whole)."""
    n_a = kb.c.n_aliases
    alias_offsets = numpy.empty(n_a + 1, dtype=numpy.uint64)
    alias_offsets[:n_a] = kb._alias_starts
    alias_offsets[n_a] = kb.c.n_slots
    for offsets, limit in (
        (kb._entity_ids.offsets, len(kb._entity_ids.blob)),
        (kb._alias_texts.offsets, len(kb._alias_texts.blob)),
        (alias_offsets, kb.c.n_slots),
    ):
        if len(offsets) and (numpy.any(offsets[1:] < offsets[:-1]) or offsets[-1] > limit):
            raise corrupt_error(kb._path)
    rows = kb._candidate_rows
    if len(rows) and int(rows.max()) >= kb.c.n_entities:
        raise corrupt_error(kb._path)
    for hashes in (kb._entity_hashes, kb._alias_hashes):
        if len(hashes) and int(hashes.min()) < 2:  # preshed's reserved keys
            raise corrupt_error(kb._path)
    return {
        "entity_hashes": kb._entity_hashes,
        "entity_freqs": kb._entity_freqs,
        "vectors": kb._vectors,
        "entity_string_offsets": kb._entity_ids.offsets,
        "entity_strings": kb._entity_ids.blob,
        "alias_hashes": kb._alias_hashes,
        "alias_offsets": alias_offsets,
        "alias_string_offsets": kb._alias_texts.offsets,
        "alias_strings": kb._alias_texts.blob,
        "candidate_rows": rows,
        "candidate_priors": kb._candidate_priors,
        "entity_slots": kb._entity_table,  # for a version 1 file, built at open
        "alias_slots": kb._alias_table,
        **_index_arrays(kb),
        **kb._relations.arrays(kb.c.n_entities),
        **kb._names.arrays(kb.c.n_entities),
    }


def to_bytes(InMemoryLookupKB kb) -> bytes:
    """The kb.bin image (a mapped image holding its index is returned as is)."""
    if kb._buffer is not None and kb._index_in_file:
        return bytes(kb._buffer)
    out = io.BytesIO()
    kb_format.write(out, compact_arrays(kb), kb.entity_vector_length)
    return out.getvalue()


def write_file(InMemoryLookupKB kb, file_path) -> None:
    """Write the kb.bin image to file_path atomically (format.write_file)."""
    if kb._buffer is not None and kb._index_in_file:
        kb_format.copy_file(file_path, kb._buffer)
    else:
        kb_format.write_file(file_path, compact_arrays(kb), kb.entity_vector_length)


def read_bytes(InMemoryLookupKB kb, bytes_data, add_to_vocab, verify) -> None:
    """Serve kb from bytes, kept and read in place."""
    if not isinstance(bytes_data, bytes):
        bytes_data = bytes(bytes_data)
    if verify:
        kb_format.validate_buffer(bytes_data, "the KB bytes", deep=True)
    attach(kb, bytes_data, None, add_to_vocab)


def read_file(InMemoryLookupKB kb, file_path, add_to_vocab, verify) -> None:
    """Serve kb from a memory-mapped kb.bin (or the folder holding one)."""
    file_path = kb_format.resolve_path(file_path)
    with open(file_path, "rb") as file:
        size = file.seek(0, 2)
        if size == 0:
            buffer = b""
        else:
            buffer = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    if verify:
        kb_format.validate_buffer(buffer, str(file_path), deep=True)
    attach(kb, buffer, file_path, add_to_vocab)


def attach(InMemoryLookupKB kb, buffer, path, add_to_vocab) -> None:
    """Make kb a read-only view of a file image (validated first; nothing copied).

    buffer (mmap | bytes): The image; kb keeps it, as the owner of every view.
    path (Optional[Path]): Where it came from (None for bytes).
    """
    source = str(path) if path is not None else "the KB bytes"
    header, views = kb_format.open_views(buffer, source)
    if header.vector_length > kb_format.MAX_VECTOR_LENGTH:
        raise KBFormatError(
            f"{source}: vector length {header.vector_length:,} exceeds the maximum "
            f"({kb_format.MAX_VECTOR_LENGTH:,}); the header is corrupt."
        )
    if header.format_version >= 2:
        entity_table, alias_table = views["entity_slots"], views["alias_slots"]
    else:  # preshed-layout cells: the lookups read slot tables only, built once
        entity_table = build_slots(views["entity_hashes"])
        alias_table = build_slots(views["alias_hashes"])
    index = AliasIndex.from_views(views, header.n_entities, header.n_aliases, source)
    relations = EntityRelations.from_views(views, source)
    names = EntityNames.from_views(views, source)
    vectors = views["vectors"].reshape(header.n_entities, header.vector_length)
    # Every view is formed and checked: now the KB changes, in one step.
    kb.entity_vector_length = header.vector_length
    kb._entity_map = None
    kb._alias_map = None
    kb._entity_hashes = views["entity_hashes"]
    kb._entity_freqs = views["entity_freqs"]
    kb._vectors = vectors
    kb._entity_ids = StringTable.from_views(
        views["entity_string_offsets"], views["entity_strings"], header.n_entities, path)
    kb._alias_hashes = views["alias_hashes"]
    kb._alias_starts = views["alias_offsets"][:-1]
    kb._alias_ends = views["alias_offsets"][1:]
    kb._alias_texts = StringTable.from_views(
        views["alias_string_offsets"], views["alias_strings"], header.n_aliases, path)
    kb._candidate_rows = views["candidate_rows"]
    kb._candidate_priors = views["candidate_priors"]
    kb._entity_table = entity_table
    kb._alias_table = alias_table
    kb._n_dead_slots = 0
    kb.c.n_entities = header.n_entities
    kb.c.n_aliases = header.n_aliases
    kb.c.n_slots = header.n_candidates
    kb._buffer = buffer
    kb._path = path
    kb._index = index
    kb._index_in_file = True
    kb._relations = relations
    kb._names = names
    kb._sync()
    if add_to_vocab:
        for text in kb.get_entity_strings() + kb.get_alias_strings():
            kb.vocab.strings.add(text)


def reduce(InMemoryLookupKB kb):
    """``__reduce__``: a mapped KB pickles as its path (the receiving process
    maps the same file), an in-memory one as its bytes (and arrives writable)."""
    if kb._path is not None:
        return (_unpickle_mapped, (kb.vocab, str(kb._path)))
    return (_unpickle_bytes, (kb.vocab, kb.entity_vector_length, to_bytes(kb)))


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

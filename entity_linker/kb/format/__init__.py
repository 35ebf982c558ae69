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

The package's modules: ``layout`` (versions, sections, dtypes, the header
structs, ``Header``), ``header`` (``read_header``, ``open_views``: the O(1)
checks) and ``validation`` (``validate_buffer``, ``validate``,
``resolve_path``: the deep checks). The writer (``write``, ``write_file``,
``copy_file``) stays in this module: ``write_file`` calls this module's
``write`` and writes through its ``os``, which is where the tests replace
them to simulate a failing disk. Import every name from here.
"""

import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import IO, Callable, Dict, Optional, Union

import numpy

from .header import open_views, read_header
from .layout import _CRC_OFFSET as _CRC_OFFSET
from .layout import (
    _HEAD,
    _SECTION,
    ALIGNMENT,
    BASE_SECTIONS,
    BASE_SECTIONS_V1,
    ENDIAN_MARKER,
    FILE_NAME,
    FLAG_NARROW_STRING_OFFSETS,
    FORMAT_VERSION,
    HEADER_SIZE,
    HEADER_SIZES,
    INDEX_SECTIONS,
    MAGIC,
    MAX_VECTOR_LENGTH,
    MIN_HEADER_SIZE,
    NAME_SECTIONS,
    PROB_SUM_TOLERANCE,
    RELATION_SECTIONS,
    SECTION_NAMES,
    SECTIONS,
    VERSION_SECTIONS,
    Header,
    _align,
    section_dtype,
)
from .layout import _STRING_OFFSETS as _STRING_OFFSETS
from .validation import (
    SPACY_CONTENTS,
    read_index_config,
    resolve_path,
    validate,
    validate_buffer,
)
from .validation import _decreases as _decreases

__all__ = [
    "ALIGNMENT", "BASE_SECTIONS", "BASE_SECTIONS_V1", "ENDIAN_MARKER", "FILE_NAME",
    "FLAG_NARROW_STRING_OFFSETS", "FORMAT_VERSION", "HEADER_SIZE", "HEADER_SIZES",
    "INDEX_SECTIONS", "MAGIC", "MAX_VECTOR_LENGTH", "MIN_HEADER_SIZE", "NAME_SECTIONS",
    "PROB_SUM_TOLERANCE", "RELATION_SECTIONS", "SECTION_NAMES", "SECTIONS", "SPACY_CONTENTS",
    "VERSION_SECTIONS", "Header", "copy_file", "open_views", "read_header",
    "read_index_config", "resolve_path", "section_dtype", "validate", "validate_buffer",
    "write", "write_file",
]


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

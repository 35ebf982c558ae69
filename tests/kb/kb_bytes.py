"""Surgery on KB file bytes for the format tests: overwrite a section or a
header field and keep the checksums valid, so that only the deep checks can
tell. Importable by the tests of this folder (pyproject: pytest pythonpath)."""

import struct
import zlib

import numpy

from entity_linker.kb import format as kb_format


def fix_header_crc(data) -> bytes:
    """data with the header checksum recomputed."""
    out = bytearray(data)
    crc = zlib.crc32(bytes(out[: kb_format._CRC_OFFSET]))
    struct.pack_into("<I", out, kb_format._CRC_OFFSET, crc)
    return bytes(out)


def _dtype(header, name):
    return kb_format.section_dtype(name, dict(kb_format.SECTIONS)[name], header.flags)


def with_section_crc(data, name) -> bytes:
    """data with the checksum of section `name` recomputed, then the header's."""
    offset, length, _ = kb_format.read_header(fix_header_crc(data), "test").sections[name]
    out = bytearray(data)
    entry = kb_format._HEAD.size + kb_format.SECTION_NAMES.index(name) * kb_format._SECTION.size
    section_id, _, start, size, reserved = kb_format._SECTION.unpack_from(out, entry)
    crc = zlib.crc32(bytes(out[offset : offset + length]))
    kb_format._SECTION.pack_into(out, entry, section_id, crc, start, size, reserved)
    return fix_header_crc(out)


def with_section(data, name, values, fix_crc=True) -> bytes:
    """data with section `name` overwritten by `values` (same size); with
    fix_crc, its checksum and the header's are kept valid."""
    header = kb_format.read_header(data, "test")
    offset, length, _ = header.sections[name]
    raw = numpy.asarray(values, dtype=_dtype(header, name)).tobytes()
    assert len(raw) == length
    out = bytearray(data)
    out[offset : offset + length] = raw
    return with_section_crc(out, name) if fix_crc else bytes(out)


def section_values(data, name) -> numpy.ndarray:
    """A writable copy of a section's items."""
    header = kb_format.read_header(data, "test")
    offset, length, _ = header.sections[name]
    dtype = _dtype(header, name)
    return numpy.frombuffer(data, dtype=dtype, count=length // dtype.itemsize,
                            offset=offset).copy()


def downgraded(data, version: int) -> bytes:
    """The image of an older format version: the same sections up to that
    version's count (the later ones must be empty), its version number and
    section count in the header, the header CRC recomputed."""
    header = kb_format.read_header(data, "test")
    n_keep = len(kb_format.VERSION_SECTIONS[version])
    for name, _ in kb_format.SECTIONS[n_keep:]:
        assert not header.sections[name][1], f"{name} is not empty"
    out = bytearray(data)
    struct.pack_into("<I", out, 8, version)  # format_version
    struct.pack_into("<I", out, 72, n_keep)  # n_sections
    first_dropped = kb_format._HEAD.size + n_keep * kb_format._SECTION.size
    n_dropped = len(kb_format.SECTIONS) - n_keep
    out[first_dropped : first_dropped + n_dropped * kb_format._SECTION.size] = bytes(
        n_dropped * kb_format._SECTION.size)
    return fix_header_crc(out)
